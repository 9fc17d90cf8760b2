// Browsers (and any host with fetch + top-level await): the wasm is fetched next to this file.
import init from '../wasm/scepkit.js';

await init({ module_or_path: new URL('../wasm/scepkit_bg.wasm', import.meta.url) });

export * from '../src/api.js';
