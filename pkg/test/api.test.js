// The npm package under Node: the JS client over fetch, the wasm core's exports and the CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as scep from '../entry/node.js';
import { makeCa, scepFetch } from './mock-ca.js';

const FIXTURES = new URL('../../../shared/fixtures/peers/', import.meta.url);
const fixture = (name) => new Uint8Array(readFileSync(new URL(name, FIXTURES)));
const URL_ = 'http://scep.test/scep';
const tmp = () => mkdtempSync(join(tmpdir(), 'scepkit-'));
const openssl = (...args) => spawnSync('openssl', args, { encoding: 'utf8' });

test('inspect reads a certmonger request sent by GET, and a CertRep with its key', () => {
  const meta = new TextDecoder().decode(fixture('certmonger-pkcsreq.http-get.meta'));
  const raw = meta.split('message=')[1].split(/\s/)[0];
  const bytes = scep.decodeMessageParam(raw);
  assert.deepEqual(bytes, fixture('certmonger-pkcsreq.der'));
  const info = scep.inspect(bytes);
  assert.equal(info.type, 'PKIMessage');
  assert.equal(info.messageType.name, 'PKCSReq');
  assert.equal(info.transactionIDForm, 'decimal');
  assert.equal(info.signatureValid, true);
  const rep = scep.inspect(fixture('micromdm-certrep-success.der'), scep.privateKeyToDer(fixture('keys/micromdm-scepclient-peer-client-1.key.pem')));
  assert.equal(rep.pkiStatus, 'SUCCESS');
  assert.equal(rep.content.content.certificates[0].subject, 'CN=peer-client-1,OU=MDM,O=scep-client,C=US');
  const failure = scep.inspect(fixture('micromdm-certrep-failure-badrequest.der'));
  assert.deepEqual(failure.failInfo, { code: 2, name: 'badRequest', meaning: 'Transaction not permitted or supported' });
});

test('keys from WebCrypto and from wasm both build CSRs OpenSSL verifies', async () => {
  for (const prefer of ['webcrypto', 'wasm']) {
    await scep.generateKey(2048, { prefer }).then((key) => {
      const csr = scep.buildCsr(key, { subject: 'CN=node-1,O=scepkit', sans: ['dns:node-1.example.com'], challenge: 'abc' });
      const facts = scep.csrFacts(csr);
      assert.equal(facts.keyBits, 2048);
      assert.equal(facts.challenge, 'abc');
      assert.deepEqual(facts.sans, ['dns:node-1.example.com']);
      const dir = tmp();
      writeFileSync(join(dir, 'csr.der'), csr);
      const r = openssl('req', '-inform', 'DER', '-in', join(dir, 'csr.der'), '-noout', '-verify');
      assert.equal(r.status, 0, r.stderr);
    });
  }
});

test('enroll gets a verified certificate, chain and key from a SCEP server', async () => {
  const ca = makeCa();
  const log = [];
  const steps = [];
  const result = await scep.enroll({
    url: URL_, challenge: 'pass-1', subject: 'CN=laptop-42,O=Example', sans: ['dns:laptop-42.example.com'],
    fetch: scepFetch(ca, (facts) => (facts.csr.challenge === 'pass-1' ? { issue: true } : assert.fail('wrong challenge')), { log }),
    onProgress: (s) => steps.push(s),
  });
  assert.deepEqual(steps, ['key', 'caps', 'cacert', 'request', 'send', 'done']);
  assert.equal(log[0].method, 'POST');
  assert.equal(log[0].facts.cipher, 'aes-128-cbc');
  assert.equal(log[0].facts.digest, 'sha512');
  const cert = scep.inspect(result.certificate);
  assert.equal(cert.subject, 'CN=laptop-42,O=Example');
  assert.match(result.certificatePem, /BEGIN CERTIFICATE/);
  assert.match(result.privateKeyPem, /BEGIN PRIVATE KEY/);
  const dir = tmp();
  writeFileSync(join(dir, 'cert.pem'), result.certificatePem);
  writeFileSync(join(dir, 'chain.pem'), result.chainPem);
  writeFileSync(join(dir, 'key.pem'), result.privateKeyPem);
  assert.equal(openssl('verify', '-CAfile', join(dir, 'chain.pem'), join(dir, 'cert.pem')).status, 0);
  // The key matches the certificate.
  const certKey = openssl('x509', '-in', join(dir, 'cert.pem'), '-noout', '-pubkey').stdout;
  const keyPub = openssl('pkey', '-in', join(dir, 'key.pem'), '-pubout').stdout;
  assert.equal(certKey, keyPub);
  // PKCS#12 export opens with its password.
  writeFileSync(join(dir, 'c.p12'), scep.exportPkcs12(result.privateKeyPkcs8, [result.certificate, ...result.chain], 'pw 1', 'laptop-42'));
  assert.equal(openssl('pkcs12', '-in', join(dir, 'c.p12'), '-passin', 'pass:pw 1', '-noout').status, 0);
});

test('a FAILURE CertRep becomes a ScepError of kind refused with the text, failInfo and resolution', async () => {
  const ca = makeCa();
  const fetch = scepFetch(ca, () => ({ status: 'failed', failInfo: 'badRequest', message: 'Challenge password is invalid - does not match the value configured by the Administrator' }));
  await assert.rejects(scep.enroll({ url: URL_, challenge: 'used', subject: 'CN=laptop-42', fetch }), (e) => {
    assert.ok(e instanceof scep.ScepError && e.kind === 'refused');
    assert.equal(e.failInfo, 'badRequest');
    assert.equal(e.resolution, 'use the valid, unredeemed enrollment code of that seat');
    assert.match(e.transactionId, /^[0-9a-f]{64}$/);
    return true;
  });
});

test('PENDING is polled with CertPoll under the same transactionID until issued', async () => {
  const ca = makeCa();
  const log = [];
  let heldFacts;
  let polls = 0;
  const decide = (facts) => {
    if (facts.messageType === 'PKCSReq') {
      heldFacts = facts;
      return { status: 'pending' };
    }
    return ++polls < 2 ? { status: 'pending' } : { issue: true, held: heldFacts };
  };
  const steps = [];
  const result = await scep.enroll({ url: URL_, subject: 'CN=approve-me', fetch: scepFetch(ca, decide, { log }), pollInterval: 5, onProgress: (s) => steps.push(s) });
  assert.deepEqual(log.map((l) => l.messageType), ['PKCSReq', 'CertPoll', 'CertPoll']);
  assert.equal(new Set(log.map((l) => l.transactionId)).size, 1);
  assert.ok(steps.includes('pending'));
  assert.equal(scep.inspect(result.certificate).subject, 'CN=approve-me');
});

test('polling stops when aborted', async () => {
  const ca = makeCa();
  const controller = new AbortController();
  const p = scep.enroll({ url: URL_, subject: 'CN=waits', fetch: scepFetch(ca, () => ({ status: 'pending' })), pollInterval: 60_000, signal: controller.signal, onProgress: (s) => s === 'pending' && controller.abort() });
  await assert.rejects(p, { name: 'AbortError' });
});

test('a pinned fingerprint that does not match stops before anything is sent', async () => {
  const ca = makeCa();
  const log = [];
  await assert.rejects(scep.enroll({ url: URL_, subject: 'CN=x', fingerprint: '00'.repeat(32), fetch: scepFetch(ca, () => ({ issue: true }), { log }) }), (e) => e.kind === 'fingerprint_mismatch');
  assert.equal(log.length, 0);
});

test('an unreachable server and an HTTP error are explained', async () => {
  await assert.rejects(scep.getCaCaps('http://127.0.0.1:9/scep'), (e) => e instanceof scep.ScepError && e.kind === 'http' && /Could not reach/.test(e.message));
  const fetch = async () => new Response('pkcs7: Message digest mismatch', { status: 500 });
  await assert.rejects(scep.getCaCert(URL_, { fetch }), (e) => e instanceof scep.ScepError && e.kind === 'http' && e.http.status === 500 && /digest mismatch/.test(e.message));
});

test('the crypto seam: the CA signs, decrypts, verifies and transports keys with node:crypto through host callbacks', async () => {
  const ca = makeCa({ nativeCrypto: true, publicOps: 'native' });
  const log = [];
  const result = await scep.enroll({ url: URL_, subject: 'CN=native', keyTransport: 'rsa-oaep-sha256', fetch: scepFetch(ca, () => ({ issue: true }), { log }) });
  assert.equal(log[0].facts.keyTransport, 'rsa-oaep-sha256');
  assert.equal(scep.inspect(result.certificate).issuer, 'CN=scepkit mock CA,O=scepkit');
});

test('a host that rejects a signature makes the request fail with badMessageCheck', async () => {
  const ca = makeCa({ publicOps: 'lying' });
  await assert.rejects(scep.enroll({ url: URL_, subject: 'CN=x', fetch: scepFetch(ca, () => ({ issue: true })) }), (e) => e.failInfo === 'badMessageCheck' && /signature does not verify/.test(e.message));
});

test('renew signs a RenewalReq with the current certificate', async () => {
  const ca = makeCa();
  const log = [];
  const fetch = scepFetch(ca, () => ({ issue: true }), { log });
  const first = await scep.enroll({ url: URL_, subject: 'CN=renew-me', fetch });
  const second = await scep.renew({ url: URL_, certificate: first.certificatePem, privateKey: first.privateKeyPem, fetch });
  assert.equal(log[1].messageType, 'RenewalReq');
  assert.equal(log[1].facts.signer.selfSigned, false);
  assert.equal(log[1].facts.signer.serial, scep.inspect(first.certificate).serial);
  assert.notEqual(second.privateKeyPem, first.privateKeyPem);
  assert.deepEqual(second.privateKeyOperations, { webcrypto: 2, wasm: 1 }, 'the new key signs the CSR, the current key the RenewalReq and (PKCS#1 v1.5) opens the reply');
  const kept = await scep.renew({ url: URL_, certificate: second.certificate, privateKey: second.privateKeyPkcs8, reuseKey: true, keyTransport: 'rsa-oaep-sha256', fetch });
  assert.equal(kept.privateKeyPem, second.privateKeyPem, 'reuseKey keeps the key');
  assert.deepEqual(kept.privateKeyOperations, { webcrypto: 3, wasm: 0 });
  assert.equal(log[2].messageType, 'RenewalReq');
  assert.equal(log[2].facts.signer.serial, scep.inspect(second.certificate).serial);
});

test('profile validation throws Invalid Object with the failing fields', () => {
  assert.throws(() => scep.validateProfile({ name: 'x' }), (e) => e.message === 'Invalid Object' && e.status === 400 && e.details.some((d) => d.path === 'scep_challenge'));
});

test('inspect takes DER bytes, PEM bytes or PEM text, and says what it is', () => {
  const der = readFileSync(new URL('micromdm-getcacert-resp.der', FIXTURES));
  const pem = scep.certificateToPem(der);
  const seen = [scep.inspect(der), scep.inspect(new TextEncoder().encode(pem)), scep.inspect(pem)];
  for (const s of seen) assert.equal(s.type, 'Certificate');
  assert.deepEqual(seen[2], seen[0]);
  assert.throws(() => scep.inspect(42), (e) => e instanceof scep.ScepError && /Uint8Array or a string/.test(e.message));
});

test('the CLI: usage errors exit 2, inspect exits 0', () => {
  const cli = new URL('../cli.js', import.meta.url).pathname;
  assert.equal(spawnSync(process.execPath, [cli, 'enroll'], { encoding: 'utf8' }).status, 2);
  assert.equal(spawnSync(process.execPath, [cli, 'bogus'], { encoding: 'utf8' }).status, 2);
  const out = execFileSync(process.execPath, [cli, 'inspect', new URL('micromdm-getcacert-resp.der', FIXTURES).pathname], { encoding: 'utf8' });
  assert.equal(JSON.parse(out).type, 'Certificate');
});

test('the browser build: the client without the CA side, no RSA of its own, and no DES or 3DES even with the legacy switch', async () => {
  const client = await import('../wasm-client/scepkit.js');
  client.initSync({ module: readFileSync(new URL('../wasm-client/scepkit_bg.wasm', import.meta.url)) });
  for (const name of ['readRequest', 'certRep', 'ServerIdentity', 'ServerKey', 'PkiOperation', 'decideHeld', 'validateProfile', 'storedProfile', 'updatedProfile', 'newEnrollment', 'raCertificate']) {
    assert.equal(client[name], undefined, `${name} is not in the browser build`);
    assert.equal(typeof scep[name], 'function', `${name} is in the Node build`);
  }
  // What does RSA in the wasm with a key at hand is Node's; WebCrypto does the browser build's RSA.
  for (const name of ['buildCsr', 'buildRequest', 'readCertRep', 'selfSignedCertificate', 'generateKeyWasm', 'csrFacts', 'rsaKeyOperation']) {
    assert.equal(client[name], undefined, `${name} is not in the browser build`);
    assert.equal(typeof scep[name], 'function', `${name} is in the Node build`);
  }
  for (const name of ['enroll', 'renew', 'getCaCaps', 'getCaCert', 'generateKey', 'inspect', 'exportPkcs12', 'privateKeyToPem']) assert.equal(typeof client[name], 'function', `the browser build has ${name}`);
  const ca = makeCa();
  const enroll = (options) => client.enroll({ url: URL_, challenge: 'c', fetch: scepFetch(ca, () => ({ issue: true })), ...options });
  // RSA-OAEP both ways: every RSA operation in WebCrypto, the signatures of the CA's checked there too.
  const subtle = globalThis.crypto.subtle;
  const verify = subtle.verify;
  let verified = 0;
  subtle.verify = function (...args) {
    verified++;
    return verify.apply(this, args);
  };
  let oaep;
  try {
    oaep = await enroll({ subject: 'CN=browser-oaep', keyTransport: 'rsa-oaep-sha256' });
  } finally {
    subtle.verify = verify;
  }
  assert.deepEqual(oaep.privateKeyOperations, { webcrypto: 4, wasm: 0 });
  assert.equal(verified, 5, "WebCrypto checked the three signatures it made, the CertRep's and the certificate's");
  const inspected = await client.inspect(oaep.certificatePem);
  assert.equal(inspected.subject, 'CN=browser-oaep');
  // RSAES-PKCS1-v1_5 (most SCEP servers' content-key transport) is not in WebCrypto: refused until the package's
  // entry registers the full build, then done there.
  await assert.rejects(enroll({ subject: 'CN=browser-pkcs1' }), (e) => e instanceof scep.ScepError && e.failInfo === 'badAlg' && /WebCrypto does not do/.test(e.message));
  let loads = 0;
  client.useLegacyCrypto(async () => (loads++, import('../wasm/scepkit.js')));
  const pkcs1 = await enroll({ subject: 'CN=browser-pkcs1' });
  assert.deepEqual(pkcs1.privateKeyOperations, { webcrypto: 3, wasm: 1 }, 'the reply opened by the full build');
  assert.ok(loads >= 2, 'the content key to the CA and the reply went to the full build');
  assert.equal(scep.inspect(pkcs1.certificate).subject, 'CN=browser-pkcs1');
  // No DES or 3DES in the browser build, even with the legacy switch.
  await assert.rejects(enroll({ subject: 'CN=x', legacy: true, cipher: 'des-ede3-cbc' }), (e) => e.failInfo === 'badAlg' && /not in this build/.test(e.message));
});

test('private-key operations are steps WebCrypto performs once each: three signatures, and an OAEP reply opened by WebCrypto, none in wasm', async () => {
  const { generateKeyPairSync } = await import('node:crypto');
  const pkcs8 = new Uint8Array(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'der' }));
  const subtle = globalThis.crypto.subtle;
  const original = { sign: subtle.sign, decrypt: subtle.decrypt };
  const calls = { sign: 0, decrypt: 0 };
  for (const op of ['sign', 'decrypt']) {
    subtle[op] = function (...args) {
      calls[op]++;
      return original[op].apply(this, args);
    };
  }
  try {
    const ca = makeCa();
    const result = await scep.enroll({ url: URL_, challenge: 'c', subject: 'CN=native', keyPkcs8: pkcs8, fetch: scepFetch(ca, () => ({ issue: true })) });
    assert.equal(scep.inspect(result.certificate).subject, 'CN=native');
    assert.deepEqual(calls, { sign: 3, decrypt: 0 }, 'WebCrypto signs the CSR, the signer certificate and the PKIMessage, once each');
    assert.deepEqual(result.privateKeyOperations, { webcrypto: 3, wasm: 1 }, 'a PKCS#1 v1.5 reply is opened by the wasm key');
    calls.sign = 0;
    const log = [];
    const oaep = await scep.enroll({ url: URL_, challenge: 'c', subject: 'CN=oaep', keyPkcs8: pkcs8, keyTransport: 'rsa-oaep-sha256', fetch: scepFetch(ca, () => ({ issue: true }), { log }) });
    assert.equal(log[0].facts.keyTransport, 'rsa-oaep-sha256');
    assert.equal(scep.inspect(oaep.certificate).subject, 'CN=oaep');
    assert.deepEqual(calls, { sign: 3, decrypt: 1 }, 'the reply, answered in kind with RSA-OAEP, is opened by WebCrypto');
    assert.deepEqual(oaep.privateKeyOperations, { webcrypto: 4, wasm: 0 }, 'no private-key operation runs in wasm');
    const generated = await scep.enroll({ url: URL_, subject: 'CN=generated', keyTransport: 'rsa-oaep-sha1', fetch: scepFetch(ca, () => ({ issue: true })) });
    assert.deepEqual(generated.privateKeyOperations, { webcrypto: 4, wasm: 0 }, 'a key WebCrypto generated is used by WebCrypto');
  } finally {
    Object.assign(subtle, original);
  }
});

test('without WebCrypto the wasm key generates, signs and decrypts, and the result is the same', async () => {
  const descriptor = Object.getOwnPropertyDescriptor(globalThis, 'crypto');
  const { getRandomValues } = globalThis.crypto;
  // A host with crypto.getRandomValues (the core's randomness) but no crypto.subtle.
  Object.defineProperty(globalThis, 'crypto', { value: { getRandomValues: getRandomValues.bind(globalThis.crypto) }, configurable: true, writable: true });
  try {
    const ca = makeCa();
    const steps = [];
    const result = await scep.enroll({ url: URL_, subject: 'CN=no-webcrypto', keyTransport: 'rsa-oaep-sha256', fetch: scepFetch(ca, () => ({ issue: true })), onProgress: (s) => steps.push(s) });
    assert.deepEqual(steps, ['key', 'caps', 'cacert', 'request', 'send', 'done']);
    assert.deepEqual(result.privateKeyOperations, { webcrypto: 0, wasm: 4 });
    assert.equal(scep.inspect(result.certificate).subject, 'CN=no-webcrypto');
    assert.match(result.privateKeyPem, /BEGIN PRIVATE KEY/);
  } finally {
    Object.defineProperty(globalThis, 'crypto', descriptor);
  }
});

test('an enrollment that cannot reach its server fails once, as a ScepError of kind http, with nothing left unhandled', async () => {
  const unhandled = [];
  const onUnhandled = (e) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  try {
    await assert.rejects(scep.enroll({ url: 'http://127.0.0.1:9/scep', subject: 'CN=x' }), (e) => e instanceof scep.ScepError && e.kind === 'http' && /^Could not reach the SCEP server at http:\/\/127\.0\.0\.1:9: /.test(e.message) && e.http.url === 'http://127.0.0.1:9/scep?operation=GetCACaps');
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

test('scepkit/server under Node is the CA side only, with the same error class', async () => {
  const server = await import('scepkit/server');
  for (const name of ['PkiOperation', 'ServerIdentity', 'FailureLimit', 'decideHeld', 'mobileconfig']) assert.equal(typeof server[name], 'function', name);
  for (const name of ['enroll', 'buildRequest', 'generateKeyWasm']) assert.equal(server[name], undefined, name);
  assert.equal(server.ScepError, scep.ScepError);
  assert.throws(() => server.validateProfile({ name: 'x' }), (e) => e instanceof scep.ScepError && e.status === 400);
});

test('enroll({ profile, vars }) enrolls as the profile says, and refuses what would contradict it', async () => {
  const ca = makeCa();
  const profile = {
    name: 'fw', device: 'fw-01', scep_challenge: { fixed: 'fw-secret' }, ca_identity_name: 'ca', subject: 'CN=$USERNAME,O=Example',
    algorithm: { rsa: { rsa_nbits: 2048 } }, digest: 'sha348', certificate_attributes: { dnsname: '$USERNAME.vpn.example' },
    use_as_digital_signature: true, use_for_key_encipherment: false, scep_url: URL_,
  };
  const log = [];
  const fetch = scepFetch(ca, (facts) => (facts.csr.challenge === 'fw-secret' ? { issue: true } : assert.fail('wrong challenge')), { log });
  const result = await scep.enroll({ profile, vars: { USERNAME: 'alice' }, fetch });
  const cert = scep.inspect(result.certificate);
  assert.equal(cert.subject, 'CN=alice,O=Example');
  assert.equal(log[0].facts.digest, 'sha384', 'the profile digest, sha348 read as sha384');
  assert.deepEqual(log[0].facts.csr.sans, ['dns:alice.vpn.example']);
  await assert.rejects(scep.enroll({ profile, vars: { USERNAME: 'alice' }, subject: 'CN=mallory', fetch }), /subject come\(s\) from the profile/);
  await assert.rejects(scep.enroll({ profile, fetch }), (e) => e instanceof scep.ScepError && /USERNAME=alice/.test(e.message));
  const browser = await import('../wasm-client/scepkit.js');
  browser.initSync({ module: readFileSync(new URL('../wasm-client/scepkit_bg.wasm', import.meta.url)) });
  await assert.rejects(browser.enroll({ profile, vars: { USERNAME: 'alice' }, fetch }), /needs scepkit's full build/);
});
