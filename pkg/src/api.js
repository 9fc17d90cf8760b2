// The scepkit package: the core's functions and classes as its wasm build for this host exports them ('#core'
// resolves per host in package.json: the full build under Node and workerd, the client build in browsers), and
// the one error class every failure is (its types: each build's generated scepkit.d.ts and ./error.d.ts).
export * from '#core';
export { ScepError } from './error.js';
