#!/usr/bin/env bash
# Assembles the page for static hosting: www/ plus the scepkit package (browser entry, JS, wasm) under
# www/dist (what the Worker serves as static assets; any static host can serve it too). index.html maps the
# package's '#core' import to the client build. _headers carries the page's CSP and
# other headers.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf www/dist
mkdir -p www/dist/scepkit
cp www/index.html www/app.js www/origin.js www/csv.js www/style.css www/dist/
# The admin console (/admin/): static files of its own, the same headers, no third-party assets.
cp -r www/admin www/dist/admin
# The page's CSP allows its one inline script, the import map, by hash (no 'unsafe-inline').
importmap=$(sed -n 's|.*<script type="importmap">\(.*\)</script>.*|\1|p' www/index.html)
[ -n "$importmap" ] || { echo "build-www.sh: no one-line import map in www/index.html" >&2; exit 1; }
hash=$(printf '%s' "$importmap" | openssl dgst -sha256 -binary | base64)
sed "s|{importmap-sha256}|sha256-$hash|" www/_headers > www/dist/_headers
# The full build goes too: the page's client build loads it only if a server needs RSA that WebCrypto lacks.
cp -r pkg/entry pkg/src pkg/wasm-client pkg/wasm www/dist/scepkit/
