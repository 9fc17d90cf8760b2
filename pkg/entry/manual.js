// Browsers through a bundler (Vite, esbuild, webpack, Rollup): the client build, initialised when the app says
// so and from where it says. A bundler rewrites or drops `import.meta.url`, so the default entry's own fetch of
// the wasm beside it cannot work there: give init() the URL your bundler serves the wasm at (import it from
// 'scepkit/wasm' as an asset URL), or a compiled WebAssembly.Module, or its bytes. The same goes for the full
// build ('scepkit/wasm-full'), fetched only when a server needs RSA that WebCrypto lacks (RSAES-PKCS1-v1_5).
import initWasm from '#core';
import { useFullBuildFor } from '../src/full.js';

let ready;

/**
 * Loads the wasm once: `{ wasmUrl }` (a URL or string), `{ module }` (a WebAssembly.Module, or the wasm's bytes).
 * Without either it is fetched beside this file, as the default entry does. `{ fullWasmUrl | fullModule }` say
 * the same of the full build. Every call returns the same promise.
 */
export function init({ wasmUrl, module, fullWasmUrl, fullModule } = {}) {
  ready ??= initWasm({ module_or_path: module ?? wasmUrl ?? new URL('../wasm-client/scepkit_bg.wasm', import.meta.url) }).then(
    (exports) => {
      useFullBuildFor(fullModule ?? fullWasmUrl);
      return exports;
    },
  );
  return ready;
}

export * from '../src/api.js';
