#!/usr/bin/env bash
# Builds the core to wasm and generates the JS glue into pkg/wasm (used by the package, the page and the Worker).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --target wasm32-unknown-unknown --release
.tools/bin/wasm-bindgen --target web --out-dir pkg/wasm --out-name scepkit target/wasm32-unknown-unknown/release/scepkit.wasm
