// Browsers (and any host with fetch + top-level await): the client build of the wasm, fetched next to this
// file. A page without a bundler maps '#core' with an import map (see www/index.html).
import init from '#core';
import { useFullBuildFor } from '../src/full.js';

await init({ module_or_path: new URL('../wasm-client/scepkit_bg.wasm', import.meta.url) });
useFullBuildFor();

export * from '../src/api.js';
