// Cloudflare Workers: the bundler turns the .wasm import into a compiled WebAssembly.Module.
import wasmModule from '../wasm/scepkit_bg.wasm';
import { initSync } from '#core';

initSync({ module: wasmModule });

export * from '../src/api.js';
