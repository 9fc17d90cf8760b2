// The one error class of scepkit, constructed inside the wasm (src/wasm/mod.rs imports it), so `instanceof
// ScepError` holds for every error the core throws, from any of its builds, in browsers, Node and workerd.
//
// `kind` says what happened: 'refused' (a SCEP server answered FAILURE: `failInfo`, `failInfoCode`, and the
// server's failInfoText as `message`), 'http' (the server could not be reached or did not answer SCEP: `http` is
// `{ url, status?, body? }`), or a check of scepkit's own ('fingerprint_mismatch', 'downgrade', 'malformed', …).
// Every one carries `status` (HTTP-style), `resolution` (what a person can do about it) and `details` (per-field
// issues of an input), and `transactionId` once a request was built.
export class ScepError extends Error {
  constructor(message, fields) {
    super(message);
    this.name = 'ScepError';
    Object.assign(this, fields);
  }
}
