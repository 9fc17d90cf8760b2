// Node >= 20: the wasm is read from disk and instantiated synchronously at import.
import { readFileSync } from 'node:fs';
import { initSync } from '#core';

initSync({ module: readFileSync(new URL('../wasm/scepkit_bg.wasm', import.meta.url)) });

export * from '../src/api.js';
