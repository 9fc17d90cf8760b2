// Browsers through a bundler (Vite, esbuild, webpack, Rollup): the client build, initialised when the app says
// so and from where it says. A bundler rewrites or drops `import.meta.url`, so the default entry's own fetch of
// the wasm beside it cannot work there: give init() the URL your bundler serves the wasm at (import it from
// 'scepkit/wasm' as an asset URL), or a compiled WebAssembly.Module, or its bytes.
import initWasm from '#core';

let ready;

/**
 * Loads the wasm once: `{ wasmUrl }` (a URL or string), `{ module }` (a WebAssembly.Module, or the wasm's bytes).
 * Without either it is fetched beside this file, as the default entry does. Every call returns the same promise.
 */
export function init({ wasmUrl, module } = {}) {
  ready ??= initWasm({ module_or_path: module ?? wasmUrl ?? new URL('../wasm-client/scepkit_bg.wasm', import.meta.url) });
  return ready;
}

export * from '../src/api.js';
