#!/usr/bin/env bash
# Builds the core to wasm twice and generates the JS glue:
#   pkg/wasm         every feature (client + server + legacy): Node, the CLI and the Worker;
#   pkg/wasm-client  the browser build (no issuance, policy, CRLs, profile validation, DES/3DES).
# The second build reuses the first's dependencies (same dependency features), so it only recompiles the crate.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/wasm32-unknown-unknown/release/scepkit.wasm
bindgen() { .tools/bin/wasm-bindgen --target web --remove-name-section --remove-producers-section --out-dir "$1" --out-name scepkit "$out"; }
cargo build --quiet --target wasm32-unknown-unknown --release
bindgen pkg/wasm
cargo build --quiet --target wasm32-unknown-unknown --release --no-default-features --features wasm
bindgen pkg/wasm-client
