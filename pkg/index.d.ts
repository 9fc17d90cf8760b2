// scepkit: SCEP (RFC 8894) for browsers, Node >= 20 and Cloudflare Workers.

export type Cipher = 'aes-128-cbc' | 'aes-192-cbc' | 'aes-256-cbc' | 'des-ede3-cbc' | 'des-cbc';
export type Digest = 'sha1' | 'sha256' | 'sha384' | 'sha512';
export type KeyTransport = 'rsa-pkcs1v15' | 'rsa-oaep-sha1' | 'rsa-oaep-sha256';
export type Identifier = 'issuerAndSerialNumber' | 'subjectKeyIdentifier';
export type FailInfo = 'badAlg' | 'badMessageCheck' | 'badRequest' | 'badTime' | 'badCertId';
/** `dns:host`, `email:a@b`, `uri:https://…` or `ip:10.0.0.1`. */
export type San = string;
export type ProgressStep = 'key' | 'caps' | 'cacert' | 'request' | 'send' | 'pending' | 'poll' | 'done';

export interface FetchOptions {
  /** Defaults to the global scope's fetch (browsers, workerd, Node >= 20). */
  fetch?: typeof globalThis.fetch;
  /** Aborting ends the call with the signal's reason (an AbortError), also while waiting to poll. */
  signal?: AbortSignal;
}

export interface Negotiated {
  cipher: Cipher;
  digest: Digest;
  post: boolean;
  renewal: boolean;
}

export interface CaCaps {
  text: string;
  capabilities: string[];
  unknown: string[];
}

export interface CaCert {
  body: Uint8Array;
  contentType: string;
  ca: Uint8Array;
  recipient: Uint8Array;
  all: Uint8Array[];
  caFingerprint: string;
  caSubject: string;
}

export interface EnrollOptions extends FetchOptions {
  url: string;
  subject: string;
  challenge?: string;
  sans?: San[];
  keyBits?: 2048 | 3072 | 4096 | 1024;
  /** Pin the CA: SHA-256 (64 hex) or SHA-1 (40 hex), colons allowed. */
  fingerprint?: string;
  digest?: Digest;
  cipher?: Cipher;
  keyTransport?: KeyTransport;
  identifier?: Identifier;
  /** Allows 3DES, SHA-1, RSA 1024, and decrypting single-DES replies (micromdm 2.1). */
  legacy?: boolean;
  /** A key to use (PKCS#8 DER or PEM); generated otherwise. */
  keyPkcs8?: Uint8Array | string;
  keyGenerator?: 'auto' | 'webcrypto' | 'wasm';
  transactionId?: string;
  /** Milliseconds between CertPolls while PENDING (default 5000). */
  pollInterval?: number;
  /** CertPolls before giving up with a ScepError of kind 'still_pending' (default 120). */
  maxPolls?: number;
  onProgress?: (step: ProgressStep, detail?: { transactionId?: string; polls?: number }) => void;
}

export interface RenewOptions extends Omit<EnrollOptions, 'subject' | 'keyPkcs8'> {
  certificate: Uint8Array | string;
  privateKey: Uint8Array | string;
  subject?: string;
  reuseKey?: boolean;
}

export interface Enrollment {
  certificate: Uint8Array;
  chain: Uint8Array[];
  privateKeyPkcs8: Uint8Array;
  certificatePem: string;
  chainPem: string;
  privateKeyPem: string;
  transactionId: string;
  caFingerprint: string;
  /** Who performed the private-key operations (3 signatures, or 2 for a renewal, and the reply's key decryption):
   * WebCrypto where the host has it, the wasm key for what it will not do (PKCS#1 v1.5 decryption, RSA 1024). */
  privateKeyOperations: { webcrypto: number; wasm: number };
}

export class ScepFailure extends Error {
  failInfo: FailInfo;
  failInfoCode: number;
  resolution: string;
  transactionId: string;
}

export class ScepHttpError extends Error {
  status?: number;
  body?: string;
  url?: string;
}

/** Thrown by the core: carries the SCEP failInfo, an HTTP-style status and a resolution. A failed `enroll` or
 * `renew` also carries the transactionId once the request was built. */
export interface ScepError extends Error {
  kind: string;
  transactionId?: string;
  failInfo: FailInfo;
  failInfoCode: number;
  status: number;
  resolution: string;
  details?: { path: string; rule: string }[];
}

export function getCaCaps(url: string, options?: FetchOptions): Promise<CaCaps>;
export function getCaCert(url: string, options?: FetchOptions): Promise<CaCert>;
export function enroll(options: EnrollOptions): Promise<Enrollment>;
export function renew(options: RenewOptions): Promise<Enrollment>;
export function generateKey(bits?: number, options?: { legacy?: boolean; prefer?: 'auto' | 'webcrypto' | 'wasm' }): Promise<Uint8Array>;

// The core, for apps that drive SCEP themselves.
/** A key from the wasm generator alone (`generateKey` prefers WebCrypto). */
export function generateKeyWasm(bits: number, legacy: boolean): Uint8Array;
export function inspect(input: Uint8Array, keyPkcs8?: Uint8Array): any;
export function parseCaCaps(text: string): { capabilities: string[]; unknown: string[] };
export function serverCaCaps(legacy: boolean, nextCa: boolean): string;
export function negotiate(capsText: string, legacy: boolean, cipher?: string, digest?: string): Negotiated;
export function parseCaCert(body: Uint8Array): Omit<CaCert, 'body' | 'contentType'>;
export function checkFingerprint(caCertBody: Uint8Array, fingerprint: string): void;
/** PKCS#8 DER (or PEM bytes, or PKCS#1 PEM bytes) of an RSA private key, used by the wasm core. */
export type PrivateKeyInput = Uint8Array;
/** The SubjectPublicKeyInfo (DER) of a private key. */
export function publicKeyOf(keyPkcs8: Uint8Array): Uint8Array;
export function buildCsr(key: PrivateKeyInput, request: { subject: string; sans?: San[]; challenge?: string; digest?: Digest; digitalSignature?: boolean; keyEncipherment?: boolean }): Uint8Array;
export function csrFacts(der: Uint8Array): any;
export function csrPublicKey(der: Uint8Array): Uint8Array;
export function selfSignedCertificate(key: PrivateKeyInput, subject: string, notBefore: number, notAfter: number, digest: Digest, role: 'signer' | 'ca'): Uint8Array;
export interface PkiRequest {
  messageType: string;
  message: Uint8Array;
  transactionId: string;
  senderNonce: Uint8Array;
}
export function buildRequest(content: Uint8Array, key: PrivateKeyInput, signerCertificate: Uint8Array, caCertBody: Uint8Array, options: {
  messageType: 'PKCSReq' | 'RenewalReq' | 'CertPoll' | 'GetCert' | 'GetCRL';
  cipher: Cipher; digest: Digest; keyTransport?: KeyTransport; identifier?: Identifier; legacy?: boolean;
  transactionId?: string; subject?: string; serial?: string;
}): PkiRequest;
export type CertRepOutcome =
  | { status: 'issued'; certificate: Uint8Array; chain: Uint8Array[] }
  | { status: 'crl'; crls: Uint8Array[] }
  | { status: 'pending' }
  | { status: 'failed'; failInfo: FailInfo; failInfoCode: number; message: string; resolution: string };
export function readCertRep(reply: Uint8Array, request: PkiRequest, key: PrivateKeyInput, signerCertificate: Uint8Array, caCertBody: Uint8Array, expectedSpki: Uint8Array | undefined, legacy: boolean): CertRepOutcome;
export function exportPkcs12(keyPkcs8: Uint8Array, chain: Uint8Array[], password: string, friendlyName: string): Uint8Array;
export function privateKeyToPem(key: Uint8Array): string;
export function privateKeyToDer(key: Uint8Array): Uint8Array;
export function certificateToPem(der: Uint8Array): string;
export function toDer(input: Uint8Array): Uint8Array;
export function renderTemplate(template: string, vars: Record<string, string>): string;
export function encodeMessageParam(message: Uint8Array): string;
export function decodeMessageParam(raw: string): Uint8Array;

// Server side (a SCEP endpoint): exported under Node and workerd only; the browser build of the wasm leaves
// it out, along with DES and 3DES.
/** Validates a profile (the admin API's schema); secrets masked. */
export function validateProfile(profile: object): object;
/**
 * Validates a new profile and returns the form a store keeps: a fixed challenge sealed as its MAC under the code
 * key. A secret sent as the mask `'********'` is refused (there is no stored one to keep).
 */
export function storedProfile(profile: object, codeKeyHex: string): object;
/**
 * Validates the replacement of a stored profile (`stored` as `storedProfile` returned it) and returns the form a
 * store keeps. A secret sent back masked (`scep_challenge.fixed` or `scep_challenge.dynamic.password` equal to
 * `'********'`, as `validateProfile` shows them) keeps the stored one; the id stays the stored one.
 */
export function updatedProfile(stored: object, profile: object, codeKeyHex: string): object;
export class ServerKey {
  static fromPkcs8(key: Uint8Array): ServerKey;
  static fromCallbacks(publicKeySpki: Uint8Array, sign: (digest: Digest, data: Uint8Array) => Uint8Array, decrypt: (transport: KeyTransport, data: Uint8Array) => Uint8Array): ServerKey;
  free(): void;
}
/** A policy plan plus the serial. */
export interface IssueOptions {
  serial: string;
  /** RFC 4514, rendered from the profile for the seat: the only subject the certificate gets. */
  subject: string;
  not_before: number;
  not_after: number;
  digest: Digest;
  sans: San[];
  digital_signature: boolean;
  key_encipherment: boolean;
  client_auth?: boolean;
}
export class ServerIdentity {
  constructor(caCert: Uint8Array, caKey: ServerKey, raCert?: Uint8Array, raKey?: ServerKey);
  caCertResponse(): { contentType: string; body: Uint8Array };
  nextCaCertResponse(nextCa: Uint8Array, nextRa?: Uint8Array): Uint8Array;
  /** Public-key operations on requesters' keys by the host (e.g. node:crypto) instead of wasm. */
  useHostPublicKeyOps(verify: (digest: Digest, spkiDer: Uint8Array, data: Uint8Array, signature: Uint8Array) => boolean, encrypt: (transport: KeyTransport, spkiDer: Uint8Array, data: Uint8Array) => Uint8Array): void;
  /** Issues for a public key (SubjectPublicKeyInfo DER): every name comes from `options`. */
  issue(publicKey: Uint8Array, options: IssueOptions): Uint8Array;
  crl(revoked: { serial: string; revoked_at: number }[], number: number, now: number, nextUpdate: number): Uint8Array;
  free(): void;
}
export class ScepRequest {
  readonly transactionId: string;
  readonly messageType: string;
  /** Verifies and decrypts under a profile's algorithm rules; the facts (snake_case), with `public_key` and `key_digest` for certificate requests. */
  open(identity: ServerIdentity, legacy: boolean, oaepOnly: boolean): any;
  free(): void;
}
/** A new one-time enrollment code issued at `now` (Unix seconds): shown once; the store keeps its MAC. */
export function newEnrollment(codeKeyHex: string, now: number): { code: string; codeMac: string; expiresAt: number };
/** Whether to sign a new CRL now: its period, or null to serve the kept one. */
export function crlRenewal(kept: { thisUpdate: number; nextUpdate: number; revokedCount: number } | null, revokedCount: number, now: number): { thisUpdate: number; nextUpdate: number } | null;
export function raCertificate(raKeyPkcs8: Uint8Array, subject: string, notBefore: number, notAfter: number, caCert: Uint8Array, caKeyPkcs8: Uint8Array): Uint8Array;
export function readRequest(bytes: Uint8Array): ScepRequest;
/**
 * One PKIOperation at the CA as a step machine: `step` is the first step; feed each step's results back with
 * `withFacts`, `written`, `withCrl` (or `hostFailed` when the store failed) until `answer` or `refuse`.
 */
export class PkiOperation {
  constructor(message: Uint8Array, profile: { id: string; name: string; body: object; stored: string; cached: boolean }, identity: ServerIdentity, codeKeyHex: string, now: number);
  readonly step: PkiStep;
  withFacts(identity: ServerIdentity, facts: object): PkiStep;
  written(identity: ServerIdentity, claimed: boolean): PkiStep;
  withCrl(identity: ServerIdentity, crl: Uint8Array): PkiStep;
  hostFailed(identity: ServerIdentity): PkiStep;
  free(): void;
}
export type PkiStep =
  | { step: 'refuse'; status: number; text: string; audit: object }
  | { step: 'restart' }
  | { step: 'needFacts'; query: object }
  | { step: 'needCrl' }
  | { step: 'write'; writes: object[] }
  | { step: 'answer'; body: Uint8Array; audit?: object };
/** Answers a request; a SUCCESS is enveloped in kind with it (its cipher, 3DES for DES; its key transport). */
export function certRep(request: ScepRequest, reply: { status: 'issued'; certificates: Uint8Array[] } | { status: 'crl'; crls: Uint8Array[] } | { status: 'pending' } | { status: 'failed'; failInfo: FailInfo; message: string }, identity: ServerIdentity, legacy: boolean): Uint8Array;
