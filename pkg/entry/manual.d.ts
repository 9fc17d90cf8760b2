// The client build's declarations, with init() to load its wasm from where a bundler serves it.
export * from '../wasm-client/scepkit.js';
export { ScepError } from '../src/error.js';
export interface InitOptions {
  /** Where the bundler serves the wasm (e.g. `import wasmUrl from 'scepkit/wasm?url'` in Vite). */
  wasmUrl?: string | URL;
  /** The wasm compiled already, or its bytes. */
  module?: WebAssembly.Module | BufferSource;
  /**
   * Where the bundler serves the full build's wasm ('scepkit/wasm-full'), fetched only when a SCEP server needs RSA
   * that WebCrypto lacks (RSAES-PKCS1-v1_5 content-key transport). Default: beside this file.
   */
  fullWasmUrl?: string | URL;
  /** The full build's wasm compiled already, or its bytes. */
  fullModule?: WebAssembly.Module | BufferSource;
}
/** Loads the wasm once; call it (and await it) before any other function. */
export function init(options?: InitOptions): Promise<void>;
