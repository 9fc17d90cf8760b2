// Cloudflare Workers, the CA side only (`scepkit/server`): the Worker's build of the wasm, without the client,
// optimised for size. The bundler turns the .wasm import into a compiled WebAssembly.Module.
import wasmModule from '../wasm-server/scepkit_bg.wasm';
import { initSync } from '../wasm-server/scepkit.js';

initSync({ module: wasmModule });

export * from '../wasm-server/scepkit.js';
export { ScepError } from '../src/error.js';
