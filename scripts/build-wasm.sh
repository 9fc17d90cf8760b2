#!/usr/bin/env bash
# Builds the core to wasm three times and generates the JS glue:
#   pkg/wasm         every feature (client + server + legacy): Node and the CLI;
#   pkg/wasm-client  the browser build (no issuance, policy, CRLs, profile validation, DES/3DES);
#   pkg/wasm-server  the Worker's build (`scepkit/server`): the CA side only, optimised for size.
# The builds share their dependencies' features, so the later ones mostly recompile the crate.
set -euo pipefail
cd "$(dirname "$0")/.."
bindgen() { .tools/bin/wasm-bindgen --target web --remove-name-section --remove-producers-section --out-dir "$1" --out-name scepkit "$2"; }
out=target/wasm32-unknown-unknown
cargo build --quiet --target wasm32-unknown-unknown --release
bindgen pkg/wasm $out/release/scepkit.wasm
cargo build --quiet --target wasm32-unknown-unknown --release --no-default-features --features client
bindgen pkg/wasm-client $out/release/scepkit.wasm
cargo build --quiet --target wasm32-unknown-unknown --profile release-server --no-default-features --features wasm,server,legacy
bindgen pkg/wasm-server $out/release-server/scepkit.wasm
