// RA mode end to end over loopback: `make run`'s Worker in front of micromdm's scepserver 2.1 as the upstream CA
// (it replies with single DES: read on the edge↔upstream leg only, by the profile's upstream.legacy), with
// micromdm's scepclient and scepkit's CLI as devices. (certmonger verifies the CertRep signer's chain against
// the CA it trusts, the upstream's, and refuses the edge RA that the edge's own CA issued: not supported yet.) Each certificate verifies against micromdm's CA and not the
// edge's; the seed's failures still come from the edge; a PENDING upstream (a scepkit profile with manual
// approval) is relayed and polled through; an unreachable upstream is a clear FAILURE that uses nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, openssl, run, scepkit, startWorker } from './helpers.mjs';

const dir = mkdtempSync(join(tmpdir(), 'scepkit-upstream-'));
const depot = join(dir, 'depot');
let micromdm;
let flaky;
let upstreamUrl;
let worker;
let base;
let holder;
const api = (...args) => worker.api(...args);

const fingerprintOf = (pem) => new X509Certificate(pem).fingerprint256.replaceAll(':', '').toLowerCase();

before(async () => {
  const init = run('scepserver', ['ca', '-init', '-keySize', '2048', '-depot', depot], { encoding: 'utf8' });
  assert.equal(init.status, 0, init.stderr);
  const port = await freePort();
  // micromdm listens on every interface; it is only ever reached at 127.0.0.1. -allowrenew 0: renew at any time.
  micromdm = spawn('scepserver', ['-depot', depot, '-port', String(port), '-challenge', 's3cret', '-allowrenew', '0'], { stdio: 'ignore', detached: true });
  upstreamUrl = `http://127.0.0.1:${port}/scep`;
  let up = false;
  for (let i = 0; i < 100 && !up; i++) {
    try {
      up = (await fetch(`${upstreamUrl}?operation=GetCACaps`)).ok;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  assert.ok(up, 'scepserver did not start');
  worker = await startWorker(dir);
  base = worker.base;
  const upstream = (extra = {}) => ({ scep_url: upstreamUrl, fingerprint: fingerprintOf(readFileSync(join(depot, 'ca.pem'))), challenge: 'fixed', legacy: true, ...extra });
  // micromdm checks its -challenge in the CSR, so the device's challenge is that shared secret (upstream.challenge
  // fixed); the edge checks it too, with the seat's open enrollment claimed once. scepclient speaks DES + SHA-1
  // and sends its own OU, O and C, which the subject template names.
  const ok = (r) => assert.equal(r.status, 201, JSON.stringify(r.json));
  ok(await api('POST', '/scep-profiles', profileBody('ra-mdm', { legacy: true, digest: 'sha1', scep_challenge: { fixed: 's3cret' }, subject: 'CN=$USERNAME,OU=MDM,O=scep-client,C=US', upstream: upstream() })));
  // An upstream that holds requests for approval: a second scepkit Worker (its own D1) with manual approval.
  const ca = scepkit('cacert', `${base}/scep`, '--out', join(dir, 'edge-ca.pem'));
  assert.equal(ca.status, 0, ca.stderr);
  mkdirSync(join(dir, 'holder'));
  holder = await startWorker(join(dir, 'holder'));
  const held = await holder.api('POST', '/scep-profiles', { ...profileBody('held-upstream', { scep_challenge: { none: '' }, manual_approval: true }), scep_url: `${holder.base}/scep/held-upstream` });
  ok(held);
  ok(await api('POST', '/scep-profiles', profileBody('ra-held', { upstream: { scep_url: `${holder.base}/scep/held-upstream`, fingerprint: JSON.parse(ca.stdout).caFingerprint, timeout_ms: 5000 } })));
  // An upstream that answers GetCACaps and GetCACert (micromdm's, relayed) but then fails the PKIOperation: its
  // connection reset, or no answer within the profile's timeout.
  const caps = 'Renewal\nSHA-1\nSHA-256\nAES\nDES3\nSCEPStandard\nPOSTPKIOperation\n';
  const caDer = new X509Certificate(readFileSync(join(depot, 'ca.pem'))).raw;
  flaky = createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const operation = url.searchParams.get('operation');
    if (operation === 'GetCACaps') return res.end(caps);
    if (operation === 'GetCACert') return res.writeHead(200, { 'content-type': 'application/x-x509-ca-cert' }).end(caDer);
    if (url.pathname === '/reset') return req.socket.destroy();
    setTimeout(() => res.end(), 3000).unref(); // /slow: after the edge gave up
  }).listen(0, '127.0.0.1');
  await new Promise((r) => flaky.once('listening', r));
  const flakyUrl = `http://127.0.0.1:${flaky.address().port}`;
  ok(await api('POST', '/scep-profiles', profileBody('ra-reset', { upstream: upstream({ scep_url: `${flakyUrl}/reset`, challenge: 'none' }) })));
  ok(await api('POST', '/scep-profiles', profileBody('ra-slow', { upstream: upstream({ scep_url: `${flakyUrl}/slow`, challenge: 'none', timeout_ms: 1000 }) })));
  ok(await api('POST', '/scep-profiles', profileBody('ra-down', { upstream: { scep_url: `http://127.0.0.1:${await freePort()}/scep`, fingerprint: '00'.repeat(32), timeout_ms: 2000 } })));
});

after(() => {
  flaky?.close();
  worker?.stop();
  holder?.stop();
  if (micromdm) process.kill(-micromdm.pid, 'SIGTERM');
});

function profileBody(name, extra) {
  return {
    name, folder: 'Shared', scep_challenge: { dynamic: {} }, ca_identity_name: 'default', algorithm: { rsa: { rsa_nbits: 2048 } }, digest: 'sha256',
    scep_url: `${base}/scep/${name}`, ...extra,
  };
}

/** Verifies against micromdm's CA alone, and not against the edge's. */
function issuedByMicromdm(certPath, cn) {
  const v = openssl('verify', '-CAfile', join(depot, 'ca.pem'), certPath);
  assert.equal(v.status, 0, v.stdout + v.stderr);
  assert.notEqual(openssl('verify', '-CAfile', join(dir, 'edge-ca.pem'), certPath).status, 0, 'not issued by the edge');
  assert.match(openssl('x509', '-in', certPath, '-noout', '-subject').stdout, new RegExp(`CN ?= ?${cn}`));
}

/** The CLI, without blocking this process. */
function cli(...args) {
  const child = spawn(process.execPath, [new URL('../../pkg/cli.js', import.meta.url).pathname, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let [stdout, stderr] = ['', ''];
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('exit', (status) => resolve({ status, stdout, stderr })));
}

function scepclient(profileName, cn, challenge, workdir) {
  mkdirSync(workdir, { recursive: true });
  return run('scepclient', ['-server-url', `${base}/scep/${profileName}`, '-challenge', challenge, '-cn', cn, '-private-key', join(workdir, 'key.pem'), '-certificate', join(workdir, 'cert.pem')], { cwd: workdir });
}

test("GetCACert of an RA-mode profile is micromdm's CA with the edge's RA; the device pins micromdm's fingerprint", () => {
  const out = scepkit('cacert', `${base}/scep/ra-mdm`, '--out', join(dir, 'ra-ca.pem'), '--fingerprint', fingerprintOf(readFileSync(join(depot, 'ca.pem'))));
  assert.equal(out.status, 0, out.stdout + out.stderr);
  assert.equal(JSON.parse(out.stdout).caFingerprint, fingerprintOf(readFileSync(join(depot, 'ca.pem'))));
});

test('micromdm scepclient enrolls through the edge; micromdm issues; the edge records it; the used enrollment is refused by the edge', async () => {
  await worker.seatWithCode('ra-mdm-1', 'ra-mdm');
  const work = join(dir, 'mdm-1');
  const r = scepclient('ra-mdm', 'ra-mdm-1', 's3cret', work);
  assert.equal(r.status, 0, r.stdout + r.stderr + JSON.stringify((await api('GET', '/audit-logs?seat_id=ra-mdm-1')).json.data));
  issuedByMicromdm(join(work, 'cert.pem'), 'ra-mdm-1');
  const [cert] = (await api('GET', '/certificates?seat_id=ra-mdm-1')).json.data;
  assert.equal(cert.upstream, upstreamUrl);
  assert.equal(BigInt(`0x${cert.serial}`), BigInt(`0x${new X509Certificate(readFileSync(join(work, 'cert.pem'))).serialNumber}`));
  const [row] = (await api('GET', '/audit-logs?seat_id=ra-mdm-1')).json.data;
  assert.equal(row.code, 'issued');
  assert.match(row.message, new RegExp(`issued by the upstream CA at ${upstreamUrl}`));

  // The seed's failures come from the edge, before the upstream is asked: the enrollment was used; no seat.
  const again = scepclient('ra-mdm', 'ra-mdm-1', 's3cret', join(dir, 'mdm-1b'));
  assert.notEqual(again.status, 0);
  const noSeat = scepclient('ra-mdm', 'ra-nobody', 's3cret', join(dir, 'mdm-1c'));
  assert.notEqual(noSeat.status, 0);
  const codes = (await api('GET', '/audit-logs?status=Failure&limit=50')).json.data.map((l) => `${l.seat_id}:${l.code}`);
  assert.ok(codes.includes('ra-mdm-1:no_open_enrollment'), codes.join(' '));
  assert.ok(codes.includes('ra-nobody:seat_not_found'), codes.join(' '));

  // Revoking it is recorded here, and said not to reach micromdm.
  const revoked = await api('DELETE', `/certificates/${cert.serial}`);
  assert.equal(revoked.status, 200, JSON.stringify(revoked.json));
  assert.equal(revoked.json.propagated, false);
  assert.match(revoked.json.note, /revoke it there too/);
});

test("an Apple payload of an RA-mode profile pins micromdm's CA (CAFingerprint, SHA-1)", async () => {
  const enrollment = await worker.seatWithCode('ra-apple-1', 'ra-mdm');
  const res = await fetch(`${base}/api/v1/enrollments/${enrollment.id}/mobileconfig`, {
    headers: { authorization: `Bearer ${worker.token}`, 'scep-challenge': enrollment.enrollment_code },
  });
  assert.equal(res.status, 200, await res.clone().text());
  const xml = await res.text();
  const pinned = Buffer.from(xml.match(/<key>CAFingerprint<\/key>\s*<data>([^<]+)<\/data>/)[1], 'base64').toString('hex');
  assert.equal(pinned, new X509Certificate(readFileSync(join(depot, 'ca.pem'))).fingerprint.replaceAll(':', '').toLowerCase());
});

test('a wrong shared secret is refused by the edge and never reaches micromdm', async () => {
  const { id } = await worker.seatWithCode('ra-mdm-2', 'ra-mdm');
  const r = scepclient('ra-mdm', 'ra-mdm-2', 'not-the-secret', join(dir, 'mdm-2'));
  assert.notEqual(r.status, 0);
  const [row] = (await api('GET', '/audit-logs?seat_id=ra-mdm-2')).json.data;
  assert.equal(row.code, 'challenge_invalid');
  assert.equal((await api('GET', `/enrollments/${id}`)).json.status, 'CREATED');
});

test('an upstream PENDING is relayed; the device polls through the edge and gets the certificate once the upstream approves', async () => {
  const code = (await worker.seatWithCode('ra-held-1', 'ra-held')).enrollment_code;
  // The upstream profile holds requests of seats it has an open enrollment for.
  await holder.seatWithCode('ra-held-1', 'held-upstream');
  const out = join(dir, 'held-1');
  const exited = cli('enroll', '--url', `${base}/scep/ra-held`, '--challenge', code, '--subject', 'CN=ra-held-1', '--out', out);
  let held;
  for (let i = 0; i < 100 && !held; i++) {
    await new Promise((r) => setTimeout(r, 200));
    held = (await holder.api('GET', '/transactions?status=PENDING&profile=held-upstream')).json.data.find((t) => t.seat_id === 'ra-held-1');
  }
  assert.ok(held, 'the upstream holds the request');
  const edge = (await api('GET', '/transactions?status=PENDING&profile=ra-held')).json.data.find((t) => t.seat_id === 'ra-held-1');
  assert.equal(edge.upstream, `${holder.base}/scep/held-upstream`);
  // The edge's administrator cannot decide what the upstream holds.
  const refused = await api('POST', `/transactions/${edge.transaction_id}/approve`, { profile_id: edge.profile_id, signer_fingerprint: edge.signer_fingerprint });
  assert.ok(refused.status >= 400 && refused.status < 500, JSON.stringify(refused.json));
  assert.equal(refused.status, 409);
  assert.match(refused.json._errors[0].details.transaction, /waits for the upstream CA/);
  const approved = await holder.api('POST', `/transactions/${held.transaction_id}/approve`, { profile_id: held.profile_id, signer_fingerprint: held.signer_fingerprint });
  assert.equal(approved.status, 200, JSON.stringify(approved.json));
  const done = await exited;
  assert.equal(done.status, 0, done.stderr);
  const v = openssl('verify', '-CAfile', join(dir, 'edge-ca.pem'), join(out, 'cert.pem'));
  assert.equal(v.status, 0, v.stdout + v.stderr);
  const ops = (await api('GET', '/audit-logs?seat_id=ra-held-1&profile=ra-held')).json.data.map((l) => `${l.operation}:${l.code}`);
  assert.equal(ops[0], 'CertPoll:issued');
  assert.ok(ops.includes('PKCSReq:pending'), ops.join(' '));
});

for (const [profile, what] of [
  ['ra-reset', /Could not reach the SCEP server at http:\/\/127\.0\.0\.1:\d+: /],
  ['ra-slow', /no answer within 1000 ms/],
]) {
  test(`an upstream that fails the request (${profile}) is a clear FAILURE, audited, and the code stays usable`, async () => {
    const seat = `${profile}-1`;
    const { id, enrollment_code: code } = await worker.seatWithCode(seat, profile);
    // Not spawnSync: the flaky upstream answers from this process's event loop.
    const r = await cli('enroll', '--url', `${base}/scep/${profile}`, '--challenge', code, '--subject', `CN=${seat}`, '--out', join(dir, seat));
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /The upstream CA gave no usable answer \(.*\); nothing was used, try again later/);
    assert.match(r.stderr, what);
    const [row] = (await api('GET', `/audit-logs?seat_id=${seat}`)).json.data;
    assert.equal(row.code, 'upstream_unavailable');
    assert.equal((await api('GET', `/enrollments/${id}`)).json.status, 'CREATED');
    assert.equal((await api('GET', `/transactions?seat_id=${seat}`)).json.data.length, 0, 'the forwarded transaction is withdrawn');
  });
}

test("an upstream that cannot be reached at all: the profile's GetCACert says so (502)", async () => {
  const res = await fetch(`${base}/scep/ra-down?operation=GetCACert`);
  assert.equal(res.status, 502);
  assert.match(await res.text(), /^The upstream CA gave no usable answer \(Could not reach the SCEP server at http:\/\/127\.0\.0\.1:\d+: .*\); nothing was used/);
});
