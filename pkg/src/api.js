// The scepkit JS client: SCEP (RFC 8894) over fetch, with every protocol rule in the wasm core.
// This file does I/O (HTTP, WebCrypto key generation, timers) and nothing the core could do.

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
  generateKey as generateKeyWasm,
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

const PKI_MESSAGE = 'application/x-pki-message';

function operationUrl(url, operation, extra = '') {
  const u = new URL(url);
  u.searchParams.set('operation', operation);
  return u.toString() + extra;
}

async function http(url, init, options) {
  const doFetch = options.fetch ?? globalThis.fetch;
  let res;
  try {
    res = await doFetch(url, { ...init, signal: options.signal });
  } catch (e) {
    if (e?.name === 'AbortError') throw e;
    throw new ScepHttpError(`Could not reach the SCEP server at ${new URL(url).origin}: ${e?.message ?? e}`, { url });
  }
  const body = new Uint8Array(await res.arrayBuffer());
  if (!res.ok) {
    const text = new TextDecoder().decode(body.slice(0, 500)).trim();
    throw new ScepHttpError(`SCEP server answered HTTP ${res.status}${text ? `: ${text}` : ''}`, { status: res.status, body: text, url });
  }
  return { body, contentType: (res.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase() };
}

/** GetCACaps: `{ text, capabilities, unknown }`. */
export async function getCaCaps(url, options = {}) {
  const { body } = await http(operationUrl(url, 'GetCACaps'), { method: 'GET' }, options);
  const text = new TextDecoder().decode(body);
  return { text, ...core.parseCaCaps(text) };
}

/** GetCACert: `{ body, contentType, ca, recipient, all, caFingerprint, caSubject }` (DER as Uint8Array). */
export async function getCaCert(url, options = {}) {
  const { body, contentType } = await http(operationUrl(url, 'GetCACert'), { method: 'GET' }, options);
  return { body, contentType, ...core.parseCaCert(body) };
}

/** Sends a PKIMessage by POST (or GET when the server lacks POSTPKIOperation) and returns the CertRep bytes. */
async function pkiOperation(url, message, post, options) {
  const { body, contentType } = post
    ? await http(operationUrl(url, 'PKIOperation'), { method: 'POST', headers: { 'content-type': PKI_MESSAGE }, body: message }, options)
    : await http(operationUrl(url, 'PKIOperation', `&message=${core.encodeMessageParam(message)}`), { method: 'GET' }, options);
  if (contentType && contentType !== PKI_MESSAGE) {
    throw new ScepHttpError(`SCEP server answered ${contentType}, not ${PKI_MESSAGE}`, { status: 200, url });
  }
  return body;
}

/** An RSA key as PKCS#8 DER: WebCrypto where it exists (native speed), else the wasm generator. */
export async function generateKey(bits = 2048, { legacy = false, prefer = 'auto' } = {}) {
  const subtle = globalThis.crypto?.subtle;
  if (prefer !== 'wasm' && subtle && bits >= 2048) {
    try {
      const pair = await subtle.generateKey(
        { name: 'RSASSA-PKCS1-v1_5', modulusLength: bits, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
        true,
        ['sign', 'verify'],
      );
      return new Uint8Array(await subtle.exportKey('pkcs8', pair.privateKey));
    } catch (e) {
      if (prefer === 'webcrypto') throw e;
    }
  }
  return core.generateKey(bits, legacy);
}

const WEBCRYPTO_HASH = { sha1: 'SHA-1', sha256: 'SHA-256', sha384: 'SHA-384', sha512: 'SHA-512' };
// PKCS#1 v1.5 decryption is not in WebCrypto: such a reply is opened by the wasm key.
const WEBCRYPTO_OAEP = { 'rsa-oaep-sha1': 'SHA-1', 'rsa-oaep-sha256': 'SHA-256' };

/**
 * Runs `build(key, seed)`, core calls that sign or open a reply, with the RSA private-key operations done by
 * WebCrypto (native and constant-time) instead of the wasm key. `key(pkcs8)` hands the core a host-held key
 * and `seed(i)` a 32-byte seed fixed for the i-th randomised call, so every run builds the same bytes: a run
 * lists what it could not do yet (and may fail for want of it), WebCrypto does that, and the build runs again
 * until nothing is pending (a round per layer of signed data that gets signed again). Without WebCrypto, or
 * for what it will not do, the wasm key does the whole build.
 */
async function withHostKeys(build) {
  const seeds = [];
  const seed = (i) => (seeds[i] ??= globalThis.crypto.getRandomValues(new Uint8Array(32)));
  const subtle = globalThis.crypto?.subtle;
  const held = new Map();
  const key = (pkcs8) => {
    if (!held.has(pkcs8)) held.set(pkcs8, { pkcs8, cryptoKeys: {}, host: { spki: core.publicKeyOf(pkcs8), done: [], pending: [] } });
    return held.get(pkcs8).host;
  };
  const cryptoKey = (h, algorithm, hash, usage) => (h.cryptoKeys[`${algorithm}/${hash}`] ??= subtle.importKey('pkcs8', h.pkcs8, { name: algorithm, hash }, false, [usage]));
  const perform = async (h, op) => {
    const result = op.digest
      ? await subtle.sign('RSASSA-PKCS1-v1_5', await cryptoKey(h, 'RSASSA-PKCS1-v1_5', WEBCRYPTO_HASH[op.digest], 'sign'), op.message)
      : await subtle.decrypt('RSA-OAEP', await cryptoKey(h, 'RSA-OAEP', WEBCRYPTO_OAEP[op.transport], 'decrypt'), op.ciphertext);
    h.host.done.push([op, new Uint8Array(result)]);
  };
  for (let round = 0; subtle && round < 4; round++) {
    for (const h of held.values()) h.host.pending = [];
    let out;
    let failure;
    try {
      out = build(key, seed);
    } catch (e) {
      failure = e;
    }
    const pending = [...held.values()].flatMap((h) => h.host.pending.map((op) => [h, op]));
    if (pending.length === 0) {
      if (failure) throw failure;
      return out;
    }
    try {
      await Promise.all(pending.map(([h, op]) => perform(h, op)));
    } catch {
      break; // WebCrypto will not do this (a PKCS#1 v1.5 decryption, an MD5 key, ...): the wasm key does.
    }
  }
  return build((pkcs8) => pkcs8, () => undefined); // one run, fresh randomness
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new DOMException('Aborted', 'AbortError'));
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(signal.reason ?? new DOMException('Aborted', 'AbortError'));
    }, { once: true });
  });
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

/**
 * Enrolls: GetCACaps, GetCACert (checked against `fingerprint` when given), key (generated unless
 * `keyPkcs8`), CSR with `challenge`, PKCSReq, PENDING polling, and a verified certificate.
 * Progress goes to `onProgress(step, detail)` with steps: key, caps, cacert, request, send, pending, poll, done.
 */
export async function enroll(options) {
  const { url, challenge, subject, sans = [], keyBits = 2048, legacy = false, onProgress = () => {} } = options;
  if (!url) throw new TypeError('enroll: url is required');
  if (!subject) throw new TypeError('enroll: subject is required (e.g. "CN=laptop-42")');
  // GetCACaps and GetCACert travel while the key is generated (the slow step a person sees start).
  const server = prepare(options);
  onProgress('key');
  const keyPkcs8 = options.keyPkcs8 ? core.privateKeyToDer(options.keyPkcs8) : await generateKey(keyBits, { legacy, prefer: options.keyGenerator });
  const ctx = await server(onProgress);
  onProgress('request');
  const now = nowSeconds();
  const { csr, signerCert } = await withHostKeys((key, seed) => ({
    csr: core.buildCsr(key(keyPkcs8), csrRequest(ctx, { subject, sans, challenge })),
    // RFC 8894 §2.3: a transient self-signed certificate signs the request and receives the reply.
    signerCert: core.selfSignedCertificate(key(keyPkcs8), subject, now - 300, now + 7 * 86400, ctx.negotiated.digest, 'signer', seed(0)),
  }));
  return exchange(ctx, { messageType: 'PKCSReq', csr, keyPkcs8, signingKey: keyPkcs8, signerCert, subject }, options, onProgress);
}

/**
 * Renews with the current certificate and key: a RenewalReq (or PKCSReq if the server lacks "Renewal")
 * signed by the current certificate, for a fresh key unless `reuseKey`.
 */
export async function renew(options) {
  const { url, certificate, privateKey, keyBits = 2048, legacy = false, onProgress = () => {} } = options;
  if (!url || !certificate || !privateKey) throw new TypeError('renew: url, certificate and privateKey are required');
  const ctx = await prepare(options)(onProgress);
  const currentCert = core.toDer(typeof certificate === 'string' ? new TextEncoder().encode(certificate) : certificate);
  const currentKey = core.privateKeyToDer(typeof privateKey === 'string' ? new TextEncoder().encode(privateKey) : privateKey);
  const info = core.inspect(currentCert);
  const subject = options.subject ?? info.subject;
  onProgress('key');
  const keyPkcs8 = options.reuseKey ? currentKey : await generateKey(keyBits, { legacy, prefer: options.keyGenerator });
  onProgress('request');
  const request = csrRequest(ctx, { subject, sans: options.sans ?? [], challenge: options.challenge });
  const csr = await withHostKeys((key) => core.buildCsr(key(keyPkcs8), request));
  const messageType = ctx.negotiated.renewal ? 'RenewalReq' : 'PKCSReq';
  return exchange(ctx, { messageType, csr, keyPkcs8, signingKey: currentKey, signerCert: currentCert, subject }, options, onProgress);
}

/** The CSR a client sends: signed with the negotiated digest, for signing and key encipherment. */
const csrRequest = (ctx, { subject, sans, challenge }) => ({ subject, sans, challenge, digest: ctx.negotiated.digest, digitalSignature: true, keyEncipherment: true });

/**
 * Sends GetCACaps and GetCACert at once (neither depends on the other) and returns `ready(onProgress)`, which
 * waits for them in order, reporting "caps" and "cacert" as it does, and negotiates and checks the pin.
 */
function prepare(options) {
  const { url, legacy = false } = options;
  const caps = getCaCaps(url, options);
  const cacert = getCaCert(url, options);
  // Awaited by ready(); a failure that comes before then is handled there, not unhandled.
  caps.catch(() => {});
  cacert.catch(() => {});
  return async (onProgress) => {
    onProgress('caps');
    const negotiated = core.negotiate((await caps).text, legacy, options.cipher ?? undefined, options.digest ?? undefined);
    onProgress('cacert');
    const ca = await cacert;
    if (options.fingerprint) core.checkFingerprint(ca.body, options.fingerprint);
    return { url, legacy, negotiated, ca };
  };
}

async function exchange(ctx, req, options, onProgress) {
  const { negotiated, ca, legacy } = ctx;
  const reqOptions = { cipher: negotiated.cipher, digest: negotiated.digest, legacy, keyTransport: options.keyTransport, identifier: options.identifier };
  const expectedSpki = core.csrPublicKey(req.csr);
  const build = (message) => withHostKeys((key, seed) => core.buildRequest(req.csr, key(req.signingKey), req.signerCert, ca.body, { ...reqOptions, ...message, seed: seed(0) }));
  let request = await build({ messageType: req.messageType, transactionId: options.transactionId });
  const transactionId = request.transactionId;
  const pollInterval = options.pollInterval ?? 5000;
  const maxPolls = options.maxPolls ?? 120;
  for (let polls = 0; ; polls++) {
    onProgress(polls === 0 ? 'send' : 'poll', { transactionId, polls });
    const reply = await pkiOperation(ctx.url, request.message, negotiated.post, options);
    const outcome = await withHostKeys((key) => core.readCertRep(reply, request, key(req.signingKey), req.signerCert, ca.body, expectedSpki, legacy));
    if (outcome.status === 'issued') {
      onProgress('done', { transactionId });
      const chain = outcome.chain.length ? outcome.chain : [ca.ca];
      return {
        certificate: outcome.certificate,
        chain,
        privateKeyPkcs8: req.keyPkcs8,
        certificatePem: core.certificateToPem(outcome.certificate),
        chainPem: chain.map((c) => core.certificateToPem(c)).join(''),
        privateKeyPem: core.privateKeyToPem(req.keyPkcs8),
        transactionId,
        caFingerprint: ca.caFingerprint,
      };
    }
    if (outcome.status === 'failed') throw new ScepFailure(outcome, transactionId);
    if (outcome.status !== 'pending') throw new ScepHttpError(`unexpected CertRep status ${outcome.status}`);
    if (polls >= maxPolls) throw new ScepHttpError(`still PENDING after ${maxPolls} polls; transaction ${transactionId}`);
    onProgress('pending', { transactionId, polls });
    await sleep(pollInterval, options.signal);
    // RFC 8894 §3.3.3: poll with CertPoll, same transactionID, IssuerAndSubject.
    request = await build({ messageType: 'CertPoll', transactionId, subject: req.subject });
  }
}
