#!/usr/bin/env bash
# Builds the core to wasm three times and generates the JS glue:
#   pkg/wasm         every feature (client + server + legacy): Node and the CLI;
#   pkg/wasm-client  the browser build (no issuance, policy, CRLs, profile validation, DES/3DES, RSA), optimised
#                    for size;
#   pkg/wasm-server  the Worker's build (`scepkit/server`): the CA side only, no RSA of its own, optimised for size.
# The builds share their dependencies' features, so the later ones mostly recompile the crate.
set -euo pipefail
cd "$(dirname "$0")/.."
bindgen() { .tools/bin/wasm-bindgen --target web --remove-name-section --remove-producers-section --out-dir "$1" --out-name scepkit "$2"; }
out=target/wasm32-unknown-unknown
# Each build's wasm as cargo made it (with its function names) is kept under target/wasm-builds for `make bench`'s
# size breakdown (bench/size_breakdown.mjs).
keep() { mkdir -p target/wasm-builds && cp "$2" "target/wasm-builds/$1.wasm"; }
cargo build --quiet --target wasm32-unknown-unknown --release
bindgen pkg/wasm $out/release/scepkit.wasm && keep node $out/release/scepkit.wasm
cargo build --quiet --target wasm32-unknown-unknown --profile release-size --no-default-features --features client
bindgen pkg/wasm-client $out/release-size/scepkit.wasm && keep client $out/release-size/scepkit.wasm
cargo build --quiet --target wasm32-unknown-unknown --profile release-size --no-default-features --features wasm,server,legacy
bindgen pkg/wasm-server $out/release-size/scepkit.wasm && keep server $out/release-size/scepkit.wasm
