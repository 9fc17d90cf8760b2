// The browser build has no RSA of its own: WebCrypto does its RSA. What WebCrypto lacks (RSAES-PKCS1-v1_5, the
// content-key transport most SCEP servers use; keys it declines) the core asks of scepkit's full build, which is
// loaded and initialised here the first time, and only if, it is needed (src/wasm/web.rs, `fallback`).
// (A namespace import: under Node and workerd '#core' is the full build itself, which has no such hook.)
import * as core from '#core';

/** Registers where the full build's wasm is: a URL, a WebAssembly.Module, or its bytes (default: in the package). */
export function useFullBuildFor(wasm = new URL('../wasm/scepkit_bg.wasm', import.meta.url)) {
  let loaded;
  core.useLegacyCrypto?.(() => (loaded ??= import('../wasm/scepkit.js').then(async (full) => {
    await full.default({ module_or_path: wasm });
    return full;
  })));
}
