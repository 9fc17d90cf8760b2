#!/usr/bin/env bash
# Assembles the page for static hosting: www/ plus the scepkit package (browser entry, JS, wasm) under
# www/dist (what the Worker serves as static assets; any static host can serve it too). Only the client build
# of the wasm goes: index.html maps the package's '#core' import to it.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf www/dist
mkdir -p www/dist/scepkit
cp www/index.html www/app.js www/style.css www/dist/
cp -r pkg/entry pkg/src pkg/wasm-client www/dist/scepkit/
