// Node >= 20, the CA side only (`scepkit/server`): the Worker's build of the wasm, read from disk and
// instantiated synchronously at import.
import { readFileSync } from 'node:fs';
import { initSync } from '../wasm-server/scepkit.js';

initSync({ module: readFileSync(new URL('../wasm-server/scepkit_bg.wasm', import.meta.url)) });

export * from '../wasm-server/scepkit.js';
export { ScepError } from '../src/error.js';
