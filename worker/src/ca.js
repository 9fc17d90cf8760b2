// The CA and RA the endpoint answers as. Keys are Worker secrets (`.dev.vars` locally). Every RSA operation,
// private and public, goes through the core's crypto seam to workerd's native node:crypto (BoringSSL): the
// Worker's build of the core (scepkit/server) has no RSA of its own.
import * as nodeCrypto from 'node:crypto';
import * as scep from 'scepkit/server';

const pemToDer = (pem) => scep.toDer(new TextEncoder().encode(pem));

/** node:crypto's padding options for a key-transport name of the core. */
function padding(transport) {
  if (transport === 'rsa-pkcs1v15') return { padding: nodeCrypto.constants.RSA_PKCS1_PADDING };
  return { padding: nodeCrypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: transport === 'rsa-oaep-sha256' ? 'sha256' : 'sha1' };
}

/** A private key (PEM, or a node:crypto KeyObject) behind the core's crypto seam, in node:crypto. */
export function nativeKey(pem) {
  const key = typeof pem === 'string' ? nodeCrypto.createPrivateKey(pem) : pem;
  const spki = new Uint8Array(nodeCrypto.createPublicKey(key).export({ type: 'spki', format: 'der' }));
  return scep.ServerKey.fromCallbacks(
    spki,
    (digest, data) => new Uint8Array(nodeCrypto.sign(digest, data, key)),
    (transport, data) => new Uint8Array(nodeCrypto.privateDecrypt({ key, ...padding(transport) }, data)),
  );
}

const publicKey = (spki) => nodeCrypto.createPublicKey({ key: spki, format: 'der', type: 'spki' });

/** Signature checks and key transport on requesters' public keys, natively too. */
export const nativePublicKeyOps = [
  (digest, spki, data, signature) => nodeCrypto.verify(digest, data, publicKey(spki), signature),
  (transport, spki, data) => new Uint8Array(nodeCrypto.publicEncrypt({ key: publicKey(spki), ...padding(transport) }, data)),
];


let cached = null;

/**
 * The ServerIdentity of the secrets' CA (CA_CERT, CA_KEY, with RA_CERT, RA_KEY). Parsing keys and certificates is
 * kept per isolate as a cache derived from the secrets alone: losing it loses nothing, and a change of secrets
 * makes a new one.
 */
export function identity(env) {
  if (!env.CA_CERT || !env.CA_KEY) throw new Error('CA_CERT and CA_KEY secrets are not set');
  const fingerprint = `${env.CA_CERT}|${env.RA_CERT ?? ''}`;
  if (cached?.fingerprint !== fingerprint) {
    const ra = env.RA_CERT && env.RA_KEY ? [pemToDer(env.RA_CERT), nativeKey(env.RA_KEY)] : [undefined, undefined];
    const id = new scep.ServerIdentity(pemToDer(env.CA_CERT), nativeKey(env.CA_KEY), ...ra);
    id.useHostPublicKeyOps(...nativePublicKeyOps);
    id.setCa(SECRETS, true);
    cached = { fingerprint, identity: id, caDer: pemToDer(env.CA_CERT), ensured: false };
  }
  return cached.identity;
}

/** The CA certificate (DER) of the secrets' CA, from the same cache. */
export function caCertificate(env) {
  identity(env);
  return cached.caDer;
}

// ---- the CA manager's CAs (src/certificate_authority.rs; rows in D1, keys wrapped under CA_KEK) ----
export const SECRETS = 'secrets';
/** The name the secrets' CA goes by (profiles' ca_identity_name). */
export const defaultCaName = (env) => env.CA_NAME || 'default';

/** Writes the secrets' CA row once per isolate (and again when the secrets change). */
async function ensureSecretsCa(env, store) {
  identity(env);
  if (cached.ensured) return;
  const facts = scep.caFacts(cached.caDer);
  await store.ensureSecretsCa(defaultCaName(env), cached.caDer, facts, Math.floor(Date.now() / 1000));
  cached.ensured = true;
}

async function kek(env) {
  if (!env.CA_KEK || !/^[0-9a-fA-F]{64}$/.test(env.CA_KEK)) throw new Error('the CA_KEK secret (64 hex digits, a 256-bit AES key) is not set');
  return crypto.subtle.importKey('raw', Buffer.from(env.CA_KEK, 'hex'), 'AES-GCM', false, ['encrypt', 'decrypt']);
}

/** A CA's PKCS#8 as D1 keeps it: AES-GCM under CA_KEK, its row id as associated data (a key moved to another row does not open). */
export async function wrapKey(env, id, pkcs8) {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: new TextEncoder().encode(id) }, await kek(env), pkcs8));
  const out = new Uint8Array(12 + sealed.length);
  out.set(iv);
  out.set(sealed, 12);
  return out;
}

async function unwrapKey(env, id, wrapped) {
  const bytes = new Uint8Array(wrapped);
  const pkcs8 = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: bytes.slice(0, 12), additionalData: new TextEncoder().encode(id) }, await kek(env), bytes.slice(12));
  return new Uint8Array(pkcs8);
}

/** A node:crypto private key from its PKCS#8 DER. */
export const pkcs8Key = (der) => nodeCrypto.createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' });

/** A new RSA key for a CA, by WebCrypto: PKCS#8 DER. */
export async function generateCaKey(bits) {
  const pair = await crypto.subtle.generateKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: bits, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['sign', 'verify']);
  return new Uint8Array(await crypto.subtle.exportKey('pkcs8', pair.privateKey));
}

// Identities of the CA manager's CAs, per isolate by row id (a row's certificate and key never change).
const identities = new Map();

/** The ServerIdentity of CA row `row`, enabled as the row says now. */
export async function identityOf(env, row) {
  let id;
  if (row.origin === SECRETS) id = identity(env);
  else {
    id = identities.get(row.id);
    if (!id) {
      const pkcs8 = await unwrapKey(env, row.id, row.wrapped_key);
      id = new scep.ServerIdentity(new Uint8Array(row.certificate), nativeKey(pkcs8Key(pkcs8)));
      id.useHostPublicKeyOps(...nativePublicKeyOps);
      identities.set(row.id, id);
    }
  }
  id.setCa(row.id, row.enabled === 1);
  return id;
}

/**
 * The CA a profile issues under: the current CA its ca_identity_name names. A profile saved before the CA manager
 * whose name names none is the secrets' CA's (so an upgrade changes nothing); the admin API refuses such names now.
 */
export async function caOfProfile(env, store, body) {
  await ensureSecretsCa(env, store);
  return store.currentCa(body.ca_identity_name);
}

/** The profile a SCEP GET names (or the default one), its CA as caOfProfile finds it, and its staged next CA. */
export async function profileAndCa(env, store, profileName) {
  await ensureSecretsCa(env, store);
  return store.profileAndCa(profileName, env.DEFAULT_PROFILE);
}

/** The current CA named `name` (the secrets' one written first), or null. */
export async function caNamed(env, store, name) {
  await ensureSecretsCa(env, store);
  return store.caByName(name);
}
