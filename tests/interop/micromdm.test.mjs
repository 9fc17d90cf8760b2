// Interop: `scepkit` (the package's CLI) enrolls against micromdm's scepserver 2.1 (Debian `scep`) on
// 127.0.0.1, and OpenSSL verifies each issued certificate against the CA from GetCACert.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, openssl, run, scepkit } from './helpers.mjs';

const dir = mkdtempSync(join(tmpdir(), 'scepkit-micromdm-'));
let server;
let url;

before(async () => {
  const init = run('scepserver', ['ca', '-init', '-keySize', '2048', '-depot', join(dir, 'depot')], { encoding: 'utf8' });
  assert.equal(init.status, 0, init.stderr);
  const port = await freePort();
  // micromdm listens on every interface; it is only ever reached at 127.0.0.1. -allowrenew 0: renew at any time.
  server = spawn('scepserver', ['-depot', join(dir, 'depot'), '-port', String(port), '-challenge', 's3cret', '-allowrenew', '0'], { stdio: 'ignore', detached: true });
  url = `http://127.0.0.1:${port}/scep`;
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${url}?operation=GetCACaps`)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('scepserver did not start');
});

after(() => {
  if (server) process.kill(-server.pid, 'SIGTERM');
});

function caFromGetCACert() {
  // Fetched again for each test, over the last one: --force.
  const out = scepkit('cacert', url, '--out', join(dir, 'ca.pem'), '--force');
  assert.equal(out.status, 0, out.stderr);
  return JSON.parse(out.stdout).caFingerprint;
}

function assertIssued(outDir, cn) {
  const verify = openssl('verify', '-CAfile', join(dir, 'ca.pem'), join(outDir, 'cert.pem'));
  assert.equal(verify.status, 0, verify.stderr + verify.stdout);
  const subject = openssl('x509', '-in', join(outDir, 'cert.pem'), '-noout', '-subject').stdout;
  assert.match(subject, new RegExp(`CN = ${cn}`));
  const certKey = openssl('x509', '-in', join(outDir, 'cert.pem'), '-noout', '-pubkey').stdout;
  assert.equal(certKey, openssl('pkey', '-in', join(outDir, 'key.pem'), '-pubout').stdout, 'key.pem matches cert.pem');
}

test('caps: micromdm advertises AES and SHA-256; we negotiate AES-128 + SHA-256, never DES', () => {
  const out = scepkit('caps', url);
  assert.equal(out.status, 0, out.stderr);
  const caps = JSON.parse(out.stdout);
  assert.ok(caps.capabilities.includes('SCEPStandard'));
  assert.deepEqual([caps.negotiated.cipher, caps.negotiated.digest], ['aes-128-cbc', 'sha256']);
});

for (const [bits, pin] of [[2048, false], [3072, true]]) {
  test(`enroll RSA ${bits}, SHA-256, AES${pin ? ', pinned CA fingerprint' : ''}`, () => {
    const fingerprint = caFromGetCACert();
    const out = join(dir, `out-${bits}`);
    const args = ['enroll', '--url', url, '--challenge', 's3cret', '--subject', `CN=interop-${bits},O=scepkit`, '--key-bits', String(bits), '--digest', 'sha256', '--cipher', 'aes-128-cbc', '--out', out];
    // micromdm 2.1 encrypts its reply with single DES: reading it needs the explicit legacy switch.
    const r = scepkit(...args, '--legacy', ...(pin ? ['--fingerprint', fingerprint] : []));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).issued, true);
    assertIssued(out, `interop-${bits}`);
    assert.match(openssl('x509', '-in', join(out, 'cert.pem'), '-noout', '-text').stdout, new RegExp(`Public-Key: \\(${bits} bit\\)`));
  });
}

test('without the legacy switch the DES reply is refused with badAlg and a hint', () => {
  const r = scepkit('enroll', '--url', url, '--challenge', 's3cret', '--subject', 'CN=no-legacy', '--out', join(dir, 'nolegacy'));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /des-cbc is only accepted with the legacy switch/);
  assert.match(r.stderr, /failInfo: badAlg/);
});

test('a wrong fingerprint stops before enrolling', () => {
  const r = scepkit('enroll', '--url', url, '--challenge', 's3cret', '--subject', 'CN=pinned', '--legacy', '--fingerprint', 'ab'.repeat(32), '--out', join(dir, 'pinned'));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /does not match the pinned/);
});

test('a wrong challenge is a FAILURE with failInfo, text and resolution, and a non-zero exit', () => {
  const r = scepkit('enroll', '--url', url, '--challenge', 'WRONG', '--subject', 'CN=wrong', '--legacy', '--out', join(dir, 'wrong'));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /failInfo: badRequest \(2\)/);
  assert.match(r.stderr, /failInfoText: /);
  assert.match(r.stderr, /resolution: /);
});

test('renew: a RenewalReq signed by the issued certificate gets a new one', () => {
  caFromGetCACert();
  const first = join(dir, 'out-2048');
  const out = join(dir, 'renewed');
  // micromdm checks its shared challenge on renewals too (scepclient sends it there as well).
  const r = scepkit('renew', '--url', url, '--cert', join(first, 'cert.pem'), '--key', join(first, 'key.pem'), '--challenge', 's3cret', '--legacy', '--out', out);
  assert.equal(r.status, 0, r.stderr);
  assertIssued(out, 'interop-2048');
  assert.notEqual(readFileSync(join(out, 'cert.pem'), 'utf8'), readFileSync(join(first, 'cert.pem'), 'utf8'));
});

test('enroll from a firewall profile object (fixed challenge, templates, pinned fingerprint, legacy for micromdm)', () => {
  const fingerprint = caFromGetCACert();
  const profile = {
    name: 'fw-vpn', device: 'fw-01', scep_challenge: { fixed: 's3cret' }, ca_identity_name: 'micromdm',
    subject: 'CN=$USERNAME,O=Example', algorithm: { rsa: { rsa_nbits: '3072' } }, digest: 'sha256', fingerprint, legacy: true,
    certificate_attributes: { dnsname: '$USERNAME.vpn.example' }, use_as_digital_signature: true, use_for_key_encipherment: true, scep_url: url,
  };
  const file = join(dir, 'fw-profile.json');
  writeFileSync(file, JSON.stringify(profile));
  const out = join(dir, 'fw-1');
  const r = scepkit('enroll', '--profile', file, '--var', 'USERNAME=fw-user-1', '--out', out);
  assert.equal(r.status, 0, r.stderr);
  assertIssued(out, 'fw-user-1');
  const text = openssl('x509', '-in', join(out, 'cert.pem'), '-noout', '-text').stdout;
  assert.match(text, /Public-Key: \(3072 bit\)/);
  // A wrong pinned fingerprint stops it before anything is sent.
  writeFileSync(file, JSON.stringify({ ...profile, fingerprint: 'ab'.repeat(32) }));
  const pinned = scepkit('enroll', '--profile', file, '--var', 'USERNAME=fw-user-2', '--out', join(dir, 'fw-2'));
  assert.equal(pinned.status, 1);
  assert.match(pinned.stderr, /fingerprint/i);
  // A missing variable is a usage problem said before any key is made.
  writeFileSync(file, JSON.stringify(profile));
  const novar = scepkit('enroll', '--profile', file, '--out', join(dir, 'fw-3'));
  assert.equal(novar.status, 2);
  assert.match(novar.stderr, /give it as a variable, e\.g\. USERNAME=alice/);
});
