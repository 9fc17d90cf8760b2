// The scepkit JS client: SCEP (RFC 8894) on a Rust/WebAssembly core that drives itself: fetch, WebCrypto,
// timers and AbortSignal are reached from inside the wasm (src/wasm/web.rs). This file re-exports the core and
// turns its errors into the package's two error classes.

// '#core' is the full wasm build under Node and workerd, the client build in browsers (package.json imports).
import * as core from '#core';

export {
  inspect,
  parseCaCaps,
  negotiate,
  parseCaCert,
  checkFingerprint,
  buildCsr,
  csrFacts,
  selfSignedCertificate,
  buildRequest,
  readCertRep,
  exportPkcs12,
  privateKeyToPem,
  privateKeyToDer,
  certificateToPem,
  toDer,
  encodeMessageParam,
  decodeMessageParam,
  generateKey,
  generateKeyWasm,
  csrPublicKey,
  renderTemplate,
  generateKeyFromSeed,
  publicKeyOf,
} from '#core';

/** A FAILURE CertRep: the server refused. Carries failInfo, the server's text and what to do about it. */
export class ScepFailure extends Error {
  constructor({ failInfo, failInfoCode, message, resolution }, transactionId) {
    super(message);
    this.name = 'ScepFailure';
    this.failInfo = failInfo;
    this.failInfoCode = failInfoCode;
    this.resolution = resolution;
    this.transactionId = transactionId;
  }
}

/** The server did not speak SCEP: an HTTP error, a wrong content type, or no answer at all. */
export class ScepHttpError extends Error {
  constructor(message, { status, body, url } = {}) {
    super(message);
    this.name = 'ScepHttpError';
    this.status = status;
    this.body = body;
    this.url = url;
  }
}

/** The one place a core error becomes the package's: a refusal, or a server that did not answer SCEP. */
function packaged(e) {
  if (e?.kind === 'refused') return Object.assign(new ScepFailure(e, e.transactionId), { kind: e.kind, cause: e });
  if (e?.kind === 'http') return Object.assign(new ScepHttpError(e.message, e.http), { kind: e.kind, cause: e });
  return e;
}

const withPackageErrors = (call) => (...args) => call(...args).catch((e) => Promise.reject(packaged(e)));

/**
 * Enrolls: GetCACaps, GetCACert (checked against `fingerprint` when given), key (generated unless
 * `keyPkcs8`), CSR with `challenge`, PKCSReq, PENDING polling, and a verified certificate.
 * Progress goes to `onProgress(step, detail)` with steps: key, caps, cacert, request, send, pending, poll, done.
 */
export const enroll = withPackageErrors(core.enroll);

/**
 * Renews with the current certificate and key: a RenewalReq (or PKCSReq if the server lacks "Renewal")
 * signed by the current certificate, for a fresh key unless `reuseKey`.
 */
export const renew = withPackageErrors(core.renew);

/** GetCACaps: `{ text, capabilities, unknown }`. */
export const getCaCaps = withPackageErrors(core.getCaCaps);

/** GetCACert: `{ body, contentType, ca, recipient, all, caFingerprint, caSubject }` (DER as Uint8Array). */
export const getCaCert = withPackageErrors(core.getCaCert);
