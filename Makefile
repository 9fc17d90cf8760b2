# scepkit: `make run` and `make test` work on a fresh machine; everything they need is installed here.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

TOOLS := $(CURDIR)/.tools
export PATH := $(TOOLS)/bin:$(HOME)/.cargo/bin:$(PATH)
WASM_BINDGEN_VERSION := $(shell awk '/^name = "wasm-bindgen"$$/ { getline; gsub(/[^0-9.]/, "", $$0); print; exit }' Cargo.lock)
APT_PACKAGES := scep openssl
WASM := pkg/wasm/scepkit_bg.wasm
CORE_SOURCES := Cargo.toml Cargo.lock $(shell find src -name '*.rs')

.PHONY: run test deps test-rust test-js test-interop clean

## Install what is missing: Debian packages, the wasm target, wasm-bindgen (cached under .tools/).
deps: $(TOOLS)/apt.stamp $(TOOLS)/wasm-target.stamp $(TOOLS)/bin/wasm-bindgen

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

# wasm-bindgen's CLI must match the library version in Cargo.lock exactly.
$(TOOLS)/bin/wasm-bindgen: Cargo.lock
	@if ! "$@" --version 2>/dev/null | grep -qx "wasm-bindgen $(WASM_BINDGEN_VERSION)"; then \
	  cargo install --quiet wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION) --root $(TOOLS) --force; \
	fi
	@touch $@

## The core as wasm + JS glue in pkg/wasm (used by the package, its CLI and, later, the Worker and page).
$(WASM): $(CORE_SOURCES) deps
	scripts/build-wasm.sh

## Until the Worker exists (next issue), `run` builds the package and shows how to use its CLI.
run: $(WASM)
	@echo
	@echo "scepkit built. The CLI:  node pkg/cli.js --help"
	@echo "Enroll against any SCEP server, e.g.:"
	@echo "  node pkg/cli.js enroll --url http://127.0.0.1:8080/scep --challenge CODE --subject 'CN=device-1' --out ./device-1"

## Every suite: Rust unit/integration (with OpenSSL), the package under Node, interop with micromdm.
test: test-rust test-js test-interop

test-rust: deps
	cargo test --locked --quiet

test-js: $(WASM)
	cd pkg && node --test --test-reporter=spec test/

test-interop: $(WASM)
	node --test --test-reporter=spec tests/interop/

clean:
	cargo clean
	rm -rf pkg/wasm
