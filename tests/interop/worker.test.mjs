// Interop against `make run`'s Worker (wrangler dev, local D1) on 127.0.0.1: micromdm's scepclient and
// scepkit's CLI enroll with fresh enrollment codes, a used code fails, renewals work; every issued
// certificate verifies with OpenSSL against the CA from GetCACert.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, openssl, run, scepkit, startWorker } from './helpers.mjs';

const dir = mkdtempSync(join(tmpdir(), 'scepkit-worker-'));
let worker;
let base;
const api = (...args) => worker.api(...args);
const seatWithCode = async (seat, profileName) => (await worker.seatWithCode(seat, profileName)).enrollment_code;

function verifyIssued(certPath, cn) {
  const v = openssl('verify', '-CAfile', join(dir, 'ca.pem'), '-untrusted', join(dir, 'ca.pem'), certPath);
  assert.equal(v.status, 0, v.stdout + v.stderr);
  assert.match(openssl('x509', '-in', certPath, '-noout', '-subject').stdout, new RegExp(`CN ?= ?${cn}`));
}

before(async () => {
  worker = await startWorker(dir);
  base = worker.base;
  const ca = scepkit('cacert', `${base}/scep`, '--out', join(dir, 'ca.pem'));
  assert.equal(ca.status, 0, ca.stderr);
  await worker.profile('modern');
  // scepclient sends its own OU, O and C: the legacy profile's template names them (csr_names match), while
  // legacy-anytime replaces whatever a client asks for with its template.
  await worker.profile('legacy', { legacy: true, digest: 'sha1', subject: 'CN=$USERNAME,OU=MDM,O=scep-client,C=US' });
  await worker.profile('anytime', { validity_days: 30, renewal_window_days: 30 });
  await worker.profile('legacy-anytime', { legacy: true, digest: 'sha1', validity_days: 30, renewal_window_days: 30, csr_names: 'replace' });
});

after(() => worker?.stop());

test('make run printed a working demo seat and code', () => {
  // run-worker.sh seeds and prints them; the demo profile exists and serves GetCACaps.
  const caps = scepkit('caps', `${base}/scep`);
  assert.equal(caps.status, 0, caps.stderr);
  assert.deepEqual(JSON.parse(caps.stdout).negotiated, { cipher: 'aes-128-cbc', digest: 'sha512', post: true, renewal: true });
});

test('scepkit CLI enrolls with a fresh code read from standard input; the same code again is refused', async () => {
  const code = await seatWithCode('cli-laptop-1', 'modern');
  const out = join(dir, 'cli-1');
  const args = ['enroll', '--url', `${base}/scep/modern`, '--challenge-file', '-', '--subject', 'CN=cli-laptop-1', '--out', out];
  const r = run(process.execPath, [CLI, ...args], { input: `${code}\n` });
  assert.equal(r.status, 0, r.stderr);
  verifyIssued(join(out, 'cert.pem'), 'cli-laptop-1');
  // The files are there: without --force nothing is done (no key made, nothing sent), and they stay as they were.
  const cert = readFileSync(join(out, 'cert.pem'), 'utf8');
  const kept = run(process.execPath, [CLI, ...args], { input: `${code}\n` });
  assert.equal(kept.status, 2, kept.stderr);
  assert.match(kept.stderr, /key\.pem, .*cert\.pem, .*chain\.pem exist: use --force to overwrite/);
  assert.equal(readFileSync(join(out, 'cert.pem'), 'utf8'), cert);
  const again = scepkit('enroll', '--url', `${base}/scep/modern`, '--challenge', code, '--subject', 'CN=cli-laptop-1', '--out', join(dir, 'cli-1b'));
  assert.equal(again.status, 1);
  assert.match(again.stderr, /Challenge password is invalid - does not match the value configured by the Administrator/);
  assert.match(again.stderr, /resolution: use the valid, unredeemed enrollment code of that seat/);
  const audit = await api('GET', '/audit-logs?seat_id=cli-laptop-1&status=Failure');
  assert.equal(audit.json.data[0].message, 'Challenge password is invalid - does not match the value configured by the Administrator');
});

test('scepkit CLI renews on a profile whose window is open', async () => {
  const code = await seatWithCode('cli-laptop-2', 'anytime');
  const out = join(dir, 'cli-2');
  assert.equal(scepkit('enroll', '--url', `${base}/scep/anytime`, '--challenge', code, '--subject', 'CN=cli-laptop-2', '--out', out).status, 0);
  const renewed = join(dir, 'cli-2-renewed');
  const r = scepkit('renew', '--url', `${base}/scep/anytime`, '--cert', join(out, 'cert.pem'), '--key', join(out, 'key.pem'), '--out', renewed);
  assert.equal(r.status, 0, r.stderr);
  verifyIssued(join(renewed, 'cert.pem'), 'cli-laptop-2');
});

function scepclient(profileName, cn, code, workdir, extra = []) {
  mkdirSync(workdir, { recursive: true });
  return run('scepclient', ['-server-url', `${base}/scep/${profileName}`, '-challenge', code, '-cn', cn, '-private-key', join(workdir, 'key.pem'), '-certificate', join(workdir, 'cert.pem'), ...extra], { cwd: workdir });
}

test('micromdm scepclient (DES + SHA-1) enrolls on the legacy profile; a used code fails', async () => {
  const code = await seatWithCode('mdm-client-1', 'legacy');
  const work = join(dir, 'mdm-1');
  const r = scepclient('legacy', 'mdm-client-1', code, work);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  verifyIssued(join(work, 'cert.pem'), 'mdm-client-1');
  const again = scepclient('legacy', 'mdm-client-1', code, join(dir, 'mdm-1b'));
  assert.notEqual(again.status, 0);
  const audit = await api('GET', '/audit-logs?seat_id=mdm-client-1');
  assert.equal(audit.json.data[0].status, 'Failure');
  assert.equal(audit.json.data[0].message, 'Challenge password is invalid - does not match the value configured by the Administrator');
});

test('micromdm scepclient asking for names the profile does not issue is refused with what differs; the code stays', async () => {
  const code = await seatWithCode('mdm-client-4', 'legacy');
  const r = scepclient('legacy', 'mdm-client-4', code, join(dir, 'mdm-4'), ['-organization', 'Evil', '-ou', 'Domain Admins']);
  assert.notEqual(r.status, 0);
  const [last] = (await api('GET', '/audit-logs?seat_id=mdm-client-4')).json.data;
  assert.equal(last.status, 'Failure');
  assert.match(last.message, /differs from CN=mdm-client-4,OU=MDM,O=scep-client,C=US/);
  assert.equal((await api('GET', '/enrollments?seat_id=mdm-client-4')).json.data[0].status, 'CREATED');
  assert.equal((await api('GET', '/certificates?seat_id=mdm-client-4')).json.data.length, 0);
});

test('micromdm scepclient is refused on a modern profile: SHA-1 and DES are badAlg', async () => {
  const code = await seatWithCode('mdm-client-2', 'modern');
  const r = scepclient('modern', 'mdm-client-2', code, join(dir, 'mdm-2'));
  assert.notEqual(r.status, 0);
  const [last] = (await api('GET', '/audit-logs?status=Failure')).json.data;
  assert.equal(last.code, 'unsupported_algorithm');
  assert.match(last.message, /^Unsupported algorithm: SHA-1 is only accepted on a legacy profile/);
  // The code was not consumed: on the legacy profile the same seat could still use it.
  assert.equal((await api('GET', '/enrollments?seat_id=mdm-client-2')).json.data[0].status, 'CREATED');
});

test('micromdm scepclient renews: a RenewalReq signed by its certificate gets a new one', async () => {
  const code = await seatWithCode('mdm-client-3', 'legacy-anytime');
  const work = join(dir, 'mdm-3');
  assert.equal(scepclient('legacy-anytime', 'mdm-client-3', code, work).status, 0);
  const before = readFileSync(join(work, 'cert.pem'), 'utf8');
  // Same key and certificate paths: scepclient sends a RenewalReq signed by the current certificate.
  const r = scepclient('legacy-anytime', 'mdm-client-3', code, work);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const certs = (await api('GET', '/certificates?seat_id=mdm-client-3')).json.data;
  assert.equal(certs.length, 2);
  assert.equal(certs[0].renewed_by, certs[1].serial);
  const [last] = (await api('GET', '/audit-logs?seat_id=mdm-client-3')).json.data;
  assert.deepEqual([last.operation, last.code], ['RenewalReq', 'renewed']);
  assert.notEqual(readFileSync(join(work, 'cert.pem'), 'utf8'), before);
  verifyIssued(join(work, 'cert.pem'), 'mdm-client-3');
});

test('certmonger enrolls (getcert add-scep-ca + request) and rekeys, on its session bus', async () => {
  const code = await seatWithCode('cm-host-1', 'anytime');
  const home = join(dir, 'cm-home');
  mkdirSync(home, { recursive: true });
  const [key, cert] = [join(dir, 'cm-key.pem'), join(dir, 'cm-cert.pem')];
  const script = [
    'set -e',
    `getcert add-scep-ca -s -c scepkit -u ${base}/scep/anytime`,
    `getcert request -s -c scepkit -I cm1 -k ${key} -f ${cert} -L ${code} -N CN=cm-host-1 -w`,
    `cp ${cert} ${cert}.first`,
    // certmonger's rekey: a new key, sent as PKCSReq signed by the certificate it holds (no code).
    'getcert rekey -s -i cm1 -w',
    'getcert list -s -i cm1',
  ].join('\n');
  writeFileSync(join(dir, 'cm.sh'), script);
  // A private session bus and HOME: certmonger-session is D-Bus activated there and keeps its state in HOME.
  const r = run('dbus-run-session', ['--', 'bash', join(dir, 'cm.sh')], { env: { ...process.env, HOME: home }, timeout: 180_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /status: MONITORING/);
  verifyIssued(cert, 'cm-host-1');
  assert.notEqual(readFileSync(cert, 'utf8'), readFileSync(`${cert}.first`, 'utf8'));
  const certs = (await api('GET', '/certificates?seat_id=cm-host-1')).json.data;
  assert.equal(certs.length, 2);
  assert.equal(certs[0].renewed_by, certs[1].serial);
  const ops = (await api('GET', '/audit-logs?seat_id=cm-host-1')).json.data.map((l) => `${l.operation}:${l.code}`);
  assert.deepEqual(ops.slice(0, 2), ['PKCSReq:renewed', 'PKCSReq:issued']);
});

test('an Apple configuration profile: plistlib reads URL, Challenge and Subject, and micromdm scepclient enrolls with them', async () => {
  const enrollment = await worker.seatWithCode('mdm-apple-1', 'legacy');
  const res = await fetch(`${base}/api/v1/enrollments/${enrollment.id}/mobileconfig`, {
    headers: { authorization: `Bearer ${worker.token}`, 'scep-challenge': enrollment.enrollment_code },
  });
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal(res.headers.get('content-type'), 'application/x-apple-aspen-config');
  const path = join(dir, 'apple.mobileconfig');
  writeFileSync(path, Buffer.from(await res.arrayBuffer()));
  // Read as a device management tool would: Python's plistlib, the payload of type com.apple.security.scep.
  const read = run('python3', ['-c', `
import json, plistlib, sys
top = plistlib.load(open(sys.argv[1], 'rb'))
assert top['PayloadType'] == 'Configuration'
scep = next(p for p in top['PayloadContent'] if p['PayloadType'] == 'com.apple.security.scep')['PayloadContent']
print(json.dumps({'url': scep['URL'], 'challenge': scep['Challenge'], 'subject': scep['Subject'], 'keysize': scep['Keysize'], 'fingerprint': scep['CAFingerprint'].hex()}))
`, path]);
  assert.equal(read.status, 0, read.stderr);
  const payload = JSON.parse(read.stdout);
  assert.equal(payload.url, `${base}/scep/legacy`);
  assert.equal(payload.challenge, enrollment.enrollment_code);
  assert.equal(payload.keysize, 2048);
  // CAFingerprint is SHA-1 of the CA certificate (the self-signed one of GetCACert's CA + RA).
  const certs = readFileSync(join(dir, 'ca.pem'), 'utf8').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g).map((pem) => new X509Certificate(pem));
  const ca = certs.find((c) => c.subject === c.issuer);
  assert.equal(payload.fingerprint, ca.fingerprint.replaceAll(':', '').toLowerCase());
  const name = Object.fromEntries(payload.subject.map(([[type, value]]) => [type, value]));
  assert.deepEqual(name, { C: 'US', O: 'scep-client', OU: 'MDM', CN: 'mdm-apple-1' });
  const work = join(dir, 'mdm-apple');
  mkdirSync(work, { recursive: true });
  const r = run('scepclient', ['-server-url', payload.url, '-challenge', payload.challenge, '-cn', name.CN, '-organization', name.O, '-ou', name.OU, '-country', name.C,
    '-private-key', join(work, 'key.pem'), '-certificate', join(work, 'cert.pem')], { cwd: work });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  verifyIssued(join(work, 'cert.pem'), 'mdm-apple-1');
  const subject = openssl('x509', '-in', join(work, 'cert.pem'), '-noout', '-subject', '-nameopt', 'RFC2253').stdout.trim();
  assert.equal(subject, 'subject=CN=mdm-apple-1,OU=MDM,O=scep-client,C=US');
  // Redeemed now: the payload is no longer handed out.
  const again = await fetch(`${base}/api/v1/enrollments/${enrollment.id}/mobileconfig`, { headers: { authorization: `Bearer ${worker.token}`, 'scep-challenge': enrollment.enrollment_code } });
  assert.equal(again.status, 409);
});

test('an NDES-style one-time challenge: a Python reader scrapes the UTF-16 page as MDMs do, and micromdm scepclient enrolls with the password', async () => {
  await worker.profile('ndes', {
    legacy: true, digest: 'sha1', subject: 'CN=$USERNAME,OU=MDM,O=scep-client,C=US',
    scep_challenge: { dynamic: { username: 'jamf', password: 'ndes-page-secret' } }, one_time_passwords: { create_seats: true },
  });
  // The OTP server the admin API reports for the profile is this page.
  const profile = (await api('GET', '/scep-profiles')).json.data.find((p) => p.name === 'ndes');
  const page = profile.scep_challenge.dynamic.otp_server_url;
  assert.equal(page, `${base}/scep/ndes/mscep_admin/`);
  const reader = `
import base64, re, sys, urllib.error, urllib.request
auth = base64.b64encode(f'{sys.argv[2]}:{sys.argv[3]}'.encode()).decode()
try:
    body = urllib.request.urlopen(urllib.request.Request(sys.argv[1], headers={'Authorization': 'Basic ' + auth})).read()
except urllib.error.HTTPError as e:
    print(f'HTTP {e.code}', file=sys.stderr); sys.exit(3)
assert body[:2] == b'\\xff\\xfe', body[:2]
text = body.decode('utf-16')
print(re.search(r'The enrollment challenge password is: <B> ([0-9A-F]{16}) </B>', text).group(1))
`;
  const wrong = run('python3', ['-c', reader, page, 'jamf', 'guess']);
  assert.equal(wrong.status, 3, wrong.stdout + wrong.stderr);
  assert.match(wrong.stderr, /HTTP 401/);
  const read = run('python3', ['-c', reader, page, 'jamf', 'ndes-page-secret']);
  assert.equal(read.status, 0, read.stderr);
  const password = read.stdout.trim();
  // The seat does not exist yet: this profile creates it on the password's first use.
  const r = scepclient('ndes', 'ndes-device-1', password, join(dir, 'ndes-1'), ['-organization', 'scep-client', '-ou', 'MDM', '-country', 'US']);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  verifyIssued(join(dir, 'ndes-1', 'cert.pem'), 'ndes-device-1');
  // Single use: a second device with the same password is refused.
  const again = scepclient('ndes', 'ndes-device-2', password, join(dir, 'ndes-2'), ['-organization', 'scep-client', '-ou', 'MDM', '-country', 'US']);
  assert.notEqual(again.status, 0);
  const audit = (await api('GET', '/audit-logs?seat_id=ndes-device-2&status=Failure')).json.data;
  assert.match(audit[0].message, /^Challenge password is invalid - the one-time challenge password [0-9a-f]{16} was used already$/);
  const issued = (await api('GET', '/audit-logs?seat_id=ndes-device-1')).json.data.find((l) => l.code === 'issued');
  assert.match(issued.message, /with one-time challenge password [0-9a-f]{16} \(issued to user "jamf" from .*\); seat created$/);
});

test('the CLI enrolls from profile objects against our Worker: a fixed challenge, and a dynamic one fetched from the page', async () => {
  await worker.profile('fw-fixed', { scep_challenge: { fixed: 'fw-shared-secret' }, subject: 'CN=$USERNAME,O=Example' });
  await worker.seatWithCode('fw-a', 'fw-fixed');
  const fixed = {
    name: 'fw-fixed', device: 'fw-01', scep_challenge: { fixed: 'fw-shared-secret' }, ca_identity_name: 'dev', subject: 'CN=$USERNAME,O=Example',
    algorithm: { rsa: { rsa_nbits: 2048 } }, digest: 'sha348', use_as_digital_signature: true, use_for_key_encipherment: true, scep_url: `${base}/scep/fw-fixed`,
  };
  writeFileSync(join(dir, 'fw-fixed.json'), JSON.stringify(fixed));
  const a = scepkit('enroll', '--profile', join(dir, 'fw-fixed.json'), '--var', 'USERNAME=fw-a', '--out', join(dir, 'fw-a'));
  assert.equal(a.status, 0, a.stderr);
  verifyIssued(join(dir, 'fw-a', 'cert.pem'), 'fw-a');

  // The dynamic profile as its administrator wrote it (the page credentials in clear), the OTP server this
  // Worker's page: the CLI fetches a one-time password and enrolls a seat the password creates.
  await worker.profile('fw-dynamic', { scep_challenge: { dynamic: { username: 'fw', password: 'fw-page-secret' } }, one_time_passwords: { create_seats: true } });
  const dynamic = {
    name: 'fw-dynamic', device: 'fw-01', ca_identity_name: 'dev', subject: 'CN=$USERNAME', algorithm: { rsa: { rsa_nbits: 2048 } }, digest: 'sha256',
    scep_challenge: { dynamic: { otp_server_url: `${base}/scep/fw-dynamic/mscep_admin/`, username: 'fw', password: 'fw-page-secret' } },
    use_as_digital_signature: true, use_for_key_encipherment: true, scep_url: `${base}/scep/fw-dynamic`,
  };
  writeFileSync(join(dir, 'fw-dynamic.json'), JSON.stringify(dynamic));
  const b = scepkit('enroll', '--profile', join(dir, 'fw-dynamic.json'), '--var', 'USERNAME=fw-b', '--out', join(dir, 'fw-b'));
  assert.equal(b.status, 0, b.stderr);
  verifyIssued(join(dir, 'fw-b', 'cert.pem'), 'fw-b');
  const issued = (await api('GET', '/audit-logs?seat_id=fw-b')).json.data.find((l) => l.code === 'issued');
  assert.match(issued.message, /with one-time challenge password [0-9a-f]{16} \(issued to user "fw"/);
  // Wrong page credentials: the OTP server's 401, before anything reaches the CA.
  writeFileSync(join(dir, 'fw-wrong.json'), JSON.stringify({ ...dynamic, scep_challenge: { dynamic: { ...dynamic.scep_challenge.dynamic, password: 'nope' } } }));
  const c = scepkit('enroll', '--profile', join(dir, 'fw-wrong.json'), '--var', 'USERNAME=fw-c', '--out', join(dir, 'fw-c'));
  assert.equal(c.status, 1);
  assert.match(c.stderr, /The OTP server answered HTTP 401/);
});
