// The CA and RA the endpoint answers as. Keys are Worker secrets (`.dev.vars` locally); private-key operations
// go through the core's crypto seam to workerd's native node:crypto (BoringSSL), with the pure-wasm key as
// fallback (CRYPTO=wasm forces it).
import * as nodeCrypto from 'node:crypto';
import * as scep from 'scepkit';

const pemToDer = (pem) => scep.toDer(new TextEncoder().encode(pem));

function nativeKey(pem) {
  const key = nodeCrypto.createPrivateKey(pem);
  const spki = new Uint8Array(nodeCrypto.createPublicKey(key).export({ type: 'spki', format: 'der' }));
  const OAEP_HASH = { 'rsa-oaep-sha1': 'sha1', 'rsa-oaep-sha256': 'sha256' };
  return scep.ServerKey.fromCallbacks(
    spki,
    (digest, data) => new Uint8Array(nodeCrypto.sign(digest, data, key)),
    (transport, data) =>
      new Uint8Array(
        transport === 'rsa-pkcs1v15'
          ? nodeCrypto.privateDecrypt({ key, padding: nodeCrypto.constants.RSA_PKCS1_PADDING }, data)
          : nodeCrypto.privateDecrypt({ key, padding: nodeCrypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: OAEP_HASH[transport] }, data),
      ),
  );
}

const nativeCrypto = (env) => env.CRYPTO !== 'wasm' && typeof nodeCrypto.privateDecrypt === 'function';

/** Signature checks and key transport on requesters' public keys, natively too. */
export const nativePublicKeyOps = [
  (digest, spki, data, signature) => nodeCrypto.verify(digest, data, nodeCrypto.createPublicKey({ key: spki, format: 'der', type: 'spki' }), signature),
  (transport, spki, data) => {
    const key = nodeCrypto.createPublicKey({ key: spki, format: 'der', type: 'spki' });
    return new Uint8Array(
      transport === 'rsa-pkcs1v15'
        ? nodeCrypto.publicEncrypt({ key, padding: nodeCrypto.constants.RSA_PKCS1_PADDING }, data)
        : nodeCrypto.publicEncrypt({ key, padding: nodeCrypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: transport === 'rsa-oaep-sha256' ? 'sha256' : 'sha1' }, data),
    );
  },
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
