// Bad input against `make run`'s Worker: every malformed, hostile or refused request is a FAILURE CertRep or a
// 4xx; never a 5xx; the Worker keeps serving; nothing is half-written in D1 (the code survives every refusal); a
// stream of them does not flood the audit log.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as scep from '../../pkg/entry/node.js';
import { startWorker } from '../interop/helpers.mjs';

const dir = mkdtempSync(join(tmpdir(), 'scepkit-bad-'));
let worker;
let url;
let seat;
let code;
let ca;
const statuses = [];

async function post(body, headers = {}) {
  const res = await fetch(`${url}?operation=PKIOperation`, { method: 'POST', body, headers });
  statuses.push(res.status);
  return { status: res.status, type: res.headers.get('content-type'), body: new Uint8Array(await res.arrayBuffer()) };
}

/** A requester with its own key; `signerValidity` shapes its self-signed certificate. */
async function requester({ notBefore, notAfter } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const key = await scep.generateKey(2048);
  const signer = scep.selfSignedCertificate(key, `CN=${seat}`, notBefore ?? now - 60, notAfter ?? now + 3600, 'sha256', 'signer');
  const build = (csr, opts = {}) => scep.buildRequest(csr, key, signer, ca, { messageType: 'PKCSReq', cipher: 'aes-128-cbc', digest: 'sha256', ...opts });
  const read = (reply, req) => scep.readCertRep(reply, req, key, signer, ca, undefined, true);
  return { key, signer, build, read, csr: (opts = {}) => scep.buildCsr(key, { subject: `CN=${seat}`, challenge: code, ...opts }) };
}

async function expectFailure(req, r, failInfo) {
  const res = await post(req.message);
  assert.equal(res.status, 200);
  assert.equal(res.type, 'application/x-pki-message');
  const outcome = r.read(res.body, req);
  assert.equal(outcome.status, 'failed', JSON.stringify(outcome));
  if (failInfo) assert.equal(outcome.failInfo, failInfo, outcome.message);
  return outcome;
}

before(async () => {
  worker = await startWorker(dir);
  await worker.profile('modern');
  url = `${worker.base}/scep/modern`;
  seat = 'hard-1';
  code = (await worker.seatWithCode(seat, 'modern')).enrollment_code;
  ca = new Uint8Array(await (await fetch(`${url}?operation=GetCACert`)).arrayBuffer());
});

after(() => worker?.stop());

test('truncated and bit-flipped requests: 400 or a FAILURE, never 5xx', async () => {
  // Its own seat: a flip outside what the signature covers (e.g. in the transient signer certificate's
  // extensions) leaves a valid request, which may enroll once; the main seat stays untouched.
  const flipSeat = 'hard-flip';
  const flipCode = (await worker.seatWithCode(flipSeat, 'modern')).enrollment_code;
  const now = Math.floor(Date.now() / 1000);
  const key = await scep.generateKey(2048);
  const signer = scep.selfSignedCertificate(key, `CN=${flipSeat}`, now - 60, now + 3600, 'sha256', 'signer');
  const csr = scep.buildCsr(key, { subject: `CN=${flipSeat}`, challenge: flipCode });
  const good = scep.buildRequest(csr, key, signer, ca, { messageType: 'PKCSReq', cipher: 'aes-128-cbc', digest: 'sha256' }).message;
  for (const len of [0, 1, 10, good.length >> 1, good.length - 1]) {
    const res = await post(good.slice(0, len));
    assert.equal(res.status, 400, `truncated to ${len}`);
  }
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
  for (let i = 0; i < 60; i++) {
    const flipped = good.slice();
    flipped[random() % flipped.length] ^= 1 << random() % 8;
    const res = await post(flipped);
    assert.ok(res.status === 400 || (res.status === 200 && res.type === 'application/x-pki-message'), `flip ${i}: ${res.status}`);
  }
  assert.ok((await worker.api('GET', `/certificates?seat_id=${flipSeat}`)).json.data.length <= 1, 'one code, at most one certificate');
});

test('oversized bodies and garbage GET parameters are 400', async () => {
  assert.equal((await post(new Uint8Array(1_100_000).fill(0x30))).status, 400);
  for (const q of ['message=%%%', 'message=', 'message=AAAA', `message=${'A'.repeat(3_000_000)}`]) {
    const res = await fetch(`${url}?operation=PKIOperation&${q}`);
    statuses.push(res.status);
    assert.ok(res.status >= 400 && res.status < 500, `${q.slice(0, 20)}: ${res.status}`); // 431 from the runtime for a 3 MB URL
  }
  const wrongType = await post(new TextEncoder().encode('{"hello":"world"}'), { 'content-type': 'application/json' });
  assert.equal(wrongType.status, 400);
});

test('wrong recipient, unsupported algorithms, bad signer validity, CSR without challenge or with a broken signature', async () => {
  const r = await requester();
  const now = Math.floor(Date.now() / 1000);
  const strangerKey = await scep.generateKey(2048);
  const stranger = scep.selfSignedCertificate(strangerKey, 'CN=stranger', now - 60, now + 60, 'sha256', 'ca');
  const toStranger = scep.buildRequest(r.csr(), r.key, r.signer, stranger, { messageType: 'PKCSReq', cipher: 'aes-128-cbc', digest: 'sha256' });
  assert.equal((await expectFailure(toStranger, r, 'badMessageCheck')).message, 'Failed to decrypt a PKCS7 message');

  await expectFailure(r.build(r.csr(), { cipher: 'des-ede3-cbc', legacy: true }), r, 'badAlg');
  await expectFailure(r.build(r.csr({ digest: 'sha1' }), { digest: 'sha1', legacy: true }), r, 'badAlg');

  const expired = await requester({ notBefore: now - 7200, notAfter: now - 3600 });
  assert.match((await expectFailure(expired.build(expired.csr()), expired, 'badTime')).message, /expired at/);
  const future = await requester({ notBefore: now + 3 * 86400, notAfter: now + 4 * 86400 });
  assert.match((await expectFailure(future.build(future.csr()), future, 'badTime')).message, /is not valid before/);

  assert.equal((await expectFailure(r.build(r.csr({ challenge: undefined })), r, 'badRequest')).message, 'Challenge password is invalid - does not match the value configured by the Administrator');

  const broken = r.csr();
  broken[broken.length - 3] ^= 0x40; // inside the CSR's signature
  assert.match((await expectFailure(r.build(broken), r, 'badMessageCheck')).message, /CSR \(proof of possession\) signature does not verify/);
});

test('every admin route with wrong JSON types answers 4xx with the _errors envelope', async () => {
  const bodies = ['[]', '"text"', 'null', '42', '{"name":5}', '{"id":{}}', '{"seat_id":[],"profile":true}', '{"scep_challenge":"x","algorithm":7}', '{'];
  const routes = [['POST', '/scep-profiles'], ['PUT', '/scep-profiles/x'], ['POST', '/seats'], ['POST', '/enrollments'], ['POST', '/seats/bulk']];
  for (const [method, path] of routes) {
    for (const body of bodies) {
      const res = await fetch(`${worker.base}/api/v1${path}`, { method, headers: { authorization: `Bearer ${worker.token}`, 'content-type': 'application/json' }, body });
      statuses.push(res.status);
      assert.ok(res.status >= 400 && res.status < 500, `${method} ${path} ${body}: ${res.status}`);
      const json = await res.json();
      assert.ok(json._errors?.[0]?.code, `${method} ${path} ${body}: ${JSON.stringify(json)}`);
    }
  }
});

test('afterwards: no 5xx at all, the Worker still serves, nothing was issued, and the code still works', async () => {
  assert.deepEqual(statuses.filter((s) => s >= 500), []);
  // Every bad request above came from 127.0.0.1 (wrangler dev sets CF-Connecting-IP): per minute, at most 10 of its
  // failures are audited one by one and the rest in one summary row (worker/src/limits.js); with fewer than 120
  // failures in any minute, none was refused with 429.
  assert.deepEqual(statuses.filter((s) => s === 429), []);
  const failures = (await worker.api('GET', '/audit-logs?status=Failure&limit=10000')).json.data;
  const minutes = new Map();
  for (const a of failures) minutes.set(Math.floor(a.time / 60), [...(minutes.get(Math.floor(a.time / 60)) ?? []), a]);
  for (const rows of minutes.values()) {
    const summaries = rows.filter((a) => a.code === 'rate_limited');
    assert.ok(rows.length - summaries.length <= 10, `${rows.length - summaries.length} failures audited one by one in a minute`);
    assert.ok(summaries.length <= 1);
  }
  const summaries = failures.filter((a) => a.code === 'rate_limited');
  assert.ok(summaries.length >= 1, 'the flood of bad requests is summarised');
  for (const a of summaries) assert.match(a.message, /^Failed requests from 127\.0\.0\.1 in the 60 s from .*: \d+ \(the first 10 are logged one by one/);
  assert.equal((await fetch(`${url}?operation=GetCACaps`)).status, 200);
  assert.deepEqual((await worker.api('GET', `/certificates?seat_id=${seat}`)).json.data, []);
  assert.equal((await worker.api('GET', `/enrollments?seat_id=${seat}`)).json.data[0].status, 'CREATED');
  const result = await scep.enroll({ url, challenge: code, subject: `CN=${seat}` });
  assert.equal(scep.inspect(result.certificate).subject, `CN=${seat}`);
});

test('no secret and no enrollment code in any log line of the Worker', () => {
  const log = readFileSync(join(dir, 'dev.log'), 'utf8');
  const vars = Object.fromEntries([...readFileSync(new URL('../../worker/.dev.vars', import.meta.url), 'utf8').matchAll(/^(\w+)="(.*)"$/gm)].map((m) => [m[1], m[2]]));
  for (const name of ['CA_KEY', 'RA_KEY']) {
    for (const line of vars[name].split('\\n').filter((l) => l.length > 40)) assert.ok(!log.includes(line), `${name} material in the log`);
  }
  for (const name of ['CODE_KEY', 'ADMIN_TOKEN']) assert.ok(!log.includes(vars[name]), `${name} in the log`);
  assert.ok(!log.includes(code), 'an enrollment code in the log');
});
