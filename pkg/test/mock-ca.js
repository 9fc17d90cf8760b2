// An in-process SCEP endpoint built from the package's own server API, reached through a fetch function:
// lets the client tests drive every outcome (success, failure, pending) without a network.
import { createPublicKey, generateKeyPairSync, publicEncrypt, sign as nodeSign, verify as nodeVerify, privateDecrypt, constants } from 'node:crypto';
import * as scep from '../entry/node.js';

export function makeCa({ nativeCrypto = false, publicOps, subject = 'CN=scepkit mock CA,O=scepkit' } = {}) {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pkcs8 = new Uint8Array(privateKey.export({ type: 'pkcs8', format: 'der' }));
  const spki = new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
  const now = Math.floor(Date.now() / 1000);
  const caCert = scep.selfSignedCertificate(pkcs8, subject, now - 3600, now + 365 * 86400, 'sha256', 'ca');
  const key = () =>
    nativeCrypto
      ? scep.ServerKey.fromCallbacks(
          spki,
          (digest, data) => new Uint8Array(nodeSign(digest, data, privateKey)),
          (transport, data) => {
            // Node 20 refuses PKCS#1 v1.5 decryption (CVE-2023-46809); OAEP exercises the same seam.
            const oaepHash = { 'rsa-oaep-sha1': 'sha1', 'rsa-oaep-sha256': 'sha256' }[transport];
            if (!oaepHash) throw new Error(`this host does not decrypt ${transport}`);
            return new Uint8Array(privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, data));
          },
        )
      : scep.ServerKey.fromPkcs8(pkcs8);
  const spkiKey = (der) => createPublicKey({ key: der, format: 'der', type: 'spki' });
  const padding = (t) => (t === 'rsa-pkcs1v15' ? { padding: constants.RSA_PKCS1_PADDING } : { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: t === 'rsa-oaep-sha256' ? 'sha256' : 'sha1' });
  const encrypt = (t, spkiDer, data) => new Uint8Array(publicEncrypt({ key: spkiKey(spkiDer), ...padding(t) }, data));
  const hostPublicOps = {
    native: [(d, spkiDer, data, sig) => nodeVerify(d, data, spkiKey(spkiDer), sig), encrypt],
    // A host that rejects every signature: the core must refuse, not trust.
    lying: [() => false, encrypt],
  }[publicOps];
  const identity = () => {
    const id = new scep.ServerIdentity(caCert, key());
    if (hostPublicOps) id.useHostPublicKeyOps(...hostPublicOps);
    return id;
  };
  return { caCert, pkcs8, identity };
}

/**
 * A fetch function answering SCEP for `ca`. `decide(facts, request)` returns a reply for certRep, or
 * `{ issue: true }` to issue from the CSR. Records every PKIOperation in `log`.
 */
export function scepFetch(ca, decide, { legacy = false, log = [] } = {}) {
  let serial = 0x100;
  return async (url, init = {}) => {
    const u = new URL(url);
    const op = u.searchParams.get('operation');
    if (op === 'GetCACaps') return new Response(scep.serverCaCaps(legacy, false), { headers: { 'content-type': 'text/plain' } });
    const identity = ca.identity();
    if (op === 'GetCACert') {
      const { contentType, body } = identity.caCertResponse();
      return new Response(body, { headers: { 'content-type': contentType } });
    }
    if (op !== 'PKIOperation') return new Response('unknown operation', { status: 400 });
    const bytes = init.method === 'POST' ? new Uint8Array(await new Response(init.body).arrayBuffer()) : scep.decodeMessageParam(u.search.split('message=')[1]);
    let request;
    try {
      request = scep.readRequest(bytes);
    } catch (e) {
      return new Response(e.message, { status: 400 });
    }
    let reply;
    let facts;
    try {
      facts = request.open(identity, legacy, false);
      reply = decide(facts, request);
      if (reply.issue) {
        const now = Math.floor(Date.now() / 1000);
        // A test CA: it certifies the names the CSR (or the held request) asked for.
        const held = facts.csr ? facts : reply.held;
        const cert = identity.issue(held.publicKey, {
          serial: (serial++).toString(16).padStart(4, '0'), subject: held.csr.subject, sans: held.csr.sans, notBefore: now - 60, notAfter: now + 86400, digest: 'sha256',
          digitalSignature: true, keyEncipherment: true,
        });
        reply = { status: 'issued', certificates: [cert, ca.caCert] };
      }
    } catch (e) {
      reply = { status: 'failed', failInfo: e.failInfo ?? 'badRequest', message: e.message };
    }
    log.push({ messageType: request.messageType, transactionId: request.transactionId, method: init.method ?? 'GET', status: reply.status, facts });
    const body = scep.certRep(request, reply, identity, legacy);
    return new Response(body, { headers: { 'content-type': 'application/x-pki-message' } });
  };
}
