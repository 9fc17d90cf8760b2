// The declaration of ./error.js: its fields are the Rust core's (ScepErrorFields, generated into scepkit.d.ts).
import type { ScepErrorFields } from '../wasm-client/scepkit.js';

export interface ScepError extends ScepErrorFields {
  /** Set once a request was built. */
  transactionId?: string;
  /** kind 'http': the server could not be reached or did not answer SCEP. */
  http?: { url: string; status?: number; body?: string };
}
export class ScepError extends Error {
  constructor(message: string, fields: ScepErrorFields);
}
