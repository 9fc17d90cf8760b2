// The wasm-server build's declarations (generated from the Rust types by wasm-bindgen and tsify), and the error class.
export * from '../wasm-server/scepkit.js';
export { ScepError } from '../src/error.js';
