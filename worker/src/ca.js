// The CA and RA the endpoint answers as. Keys are Worker secrets (`.dev.vars` locally); private-key operations
// go through the core's crypto seam to workerd's native node:crypto (BoringSSL), with the pure-wasm key as
// fallback (CRYPTO=wasm forces it).
import * as nodeCrypto from 'node:crypto';
import * as scep from 'scepkit/server';

const pemToDer = (pem) => scep.toDer(new TextEncoder().encode(pem));

/** node:crypto's padding options for a key-transport name of the core. */
function padding(transport) {
  if (transport === 'rsa-pkcs1v15') return { padding: nodeCrypto.constants.RSA_PKCS1_PADDING };
  return { padding: nodeCrypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: transport === 'rsa-oaep-sha256' ? 'sha256' : 'sha1' };
}

/** A private key (PEM) behind the core's crypto seam, in node:crypto. */
export function nativeKey(pem) {
  const key = nodeCrypto.createPrivateKey(pem);
  const spki = new Uint8Array(nodeCrypto.createPublicKey(key).export({ type: 'spki', format: 'der' }));
  return scep.ServerKey.fromCallbacks(
    spki,
    (digest, data) => new Uint8Array(nodeCrypto.sign(digest, data, key)),
    (transport, data) => new Uint8Array(nodeCrypto.privateDecrypt({ key, ...padding(transport) }, data)),
  );
}

const nativeCrypto = (env) => env.CRYPTO !== 'wasm' && typeof nodeCrypto.privateDecrypt === 'function';
const publicKey = (spki) => nodeCrypto.createPublicKey({ key: spki, format: 'der', type: 'spki' });

/** Signature checks and key transport on requesters' public keys, natively too. */
export const nativePublicKeyOps = [
  (digest, spki, data, signature) => nodeCrypto.verify(digest, data, publicKey(spki), signature),
  (transport, spki, data) => new Uint8Array(nodeCrypto.publicEncrypt({ key: publicKey(spki), ...padding(transport) }, data)),
];

function serverKey(env, pem) {
  if (nativeCrypto(env)) {
    try {
      return nativeKey(pem);
    } catch {
      // fall through to the pure-wasm key
    }
  }
  return scep.ServerKey.fromPkcs8(new TextEncoder().encode(pem));
}

let cached = null;

/**
 * The ServerIdentity for these secrets. Parsing keys and certificates is kept per isolate as a cache derived
 * from the secrets alone: losing it loses nothing, and a change of secrets makes a new one.
 */
export function identity(env) {
  if (!env.CA_CERT || !env.CA_KEY) throw new Error('CA_CERT and CA_KEY secrets are not set');
  const fingerprint = `${env.CA_CERT}|${env.RA_CERT ?? ''}|${env.CRYPTO ?? ''}`;
  if (cached?.fingerprint !== fingerprint) {
    const ra = env.RA_CERT && env.RA_KEY ? [pemToDer(env.RA_CERT), serverKey(env, env.RA_KEY)] : [undefined, undefined];
    const id = new scep.ServerIdentity(pemToDer(env.CA_CERT), serverKey(env, env.CA_KEY), ...ra);
    if (nativeCrypto(env)) id.useHostPublicKeyOps(...nativePublicKeyOps);
    cached = { fingerprint, identity: id, caDer: pemToDer(env.CA_CERT) };
  }
  return cached.identity;
}

/** The CA certificate (DER), from the same cache. */
export function caCertificate(env) {
  identity(env);
  return cached.caDer;
}
