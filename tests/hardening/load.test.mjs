// Load on `make run`'s Worker: 1,000 enrollments at concurrency 16 → 1,000 distinct serials and audit rows,
// no errors; and a restart of the Worker in the middle of a run loses and duplicates nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as scep from '../../pkg/entry/node.js';
import { startWorker } from '../interop/helpers.mjs';

const dir = mkdtempSync(join(tmpdir(), 'scepkit-load-'));
let worker;
let ca;
const keys = [];

before(async () => {
  worker = await startWorker(dir);
  await worker.profile('load');
  ca = new Uint8Array(await (await fetch(`${worker.base}/scep/load?operation=GetCACert`)).arrayBuffer());
  // A pool of keys: each request still has its own seat, code and transactionID.
  for (let i = 0; i < 16; i++) keys.push(await scep.generateKey(2048));
});

after(() => worker?.stop());

async function seats(prefix, n) {
  const csv = ['seat_id,profile', ...Array.from({ length: n }, (_, i) => `${prefix}-${i},load`)].join('\n');
  const res = await fetch(`${worker.base}/api/v1/seats/bulk`, { method: 'POST', headers: { authorization: `Bearer ${worker.token}`, 'content-type': 'text/csv' }, body: csv });
  const body = await res.json();
  assert.equal(body.created, n, JSON.stringify(body.results.find((r) => r.status !== 'created')));
  return body.results.map((r) => ({ seat: r.seat_id, code: r.enrollment_code }));
}

/** One enrollment; a connection failure (the Worker restarting) is retried with the same message. */
async function enrollOne({ seat, code }, i, { onSent } = {}) {
  const key = keys[i % keys.length];
  const now = Math.floor(Date.now() / 1000);
  const signer = scep.selfSignedCertificate(key, `CN=${seat}`, now - 60, now + 3600, 'sha256', 'signer');
  const csr = scep.buildCsr(key, { subject: `CN=${seat}`, challenge: code });
  const req = scep.buildRequest(csr, key, signer, ca, { messageType: 'PKCSReq', cipher: 'aes-128-cbc', digest: 'sha256', transactionId: `load-${seat}` });
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await fetch(`${worker.base}/scep/load?operation=PKIOperation`, { method: 'POST', body: req.message });
      onSent?.();
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
      return { ...scep.readCertRep(new Uint8Array(await res.arrayBuffer()), req, key, signer, ca, undefined, false), attempts: attempt + 1 };
    } catch (e) {
      if (attempt >= 60) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

async function pool(items, concurrency, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  }));
  return out;
}

test('1,000 enrollments at concurrency 16: 1,000 distinct serials, 1,000 audit rows, 0 errors', { timeout: 900_000 }, async () => {
  const work = await seats('load', 1000);
  const started = Date.now();
  const outcomes = await pool(work, 16, enrollOne);
  const seconds = (Date.now() - started) / 1000;
  console.log(`# 1000 enrollments in ${seconds.toFixed(1)} s (${(1000 / seconds).toFixed(1)}/s)`);
  assert.deepEqual(outcomes.filter((o) => o.status !== 'issued'), []);
  const serials = new Set(outcomes.map((o) => scep.inspect(o.certificate).serial));
  assert.equal(serials.size, 1000);
  const stored = (await worker.all('/certificates')).filter((c) => c.seat_id.startsWith('load-'));
  assert.equal(stored.length, 1000);
  assert.equal(new Set(stored.map((c) => c.serial)).size, 1000);
  const audit = (await worker.all('/audit-logs')).filter((a) => a.seat_id?.startsWith('load-'));
  assert.equal(audit.length, 1000);
  assert.ok(audit.every((a) => a.status === 'Success' && a.code === 'issued'));
});

test('a restart of the Worker mid-run loses nothing and duplicates nothing', { timeout: 900_000 }, async () => {
  const work = await seats('restart', 200);
  let sent = 0;
  let restarted = null;
  const outcomes = await pool(work, 8, (item, i) =>
    enrollOne(item, i, {
      onSent: () => {
        if (++sent === 80) restarted = worker.restart();
      },
    }),
  );
  await restarted;
  assert.deepEqual(outcomes.filter((o) => o.status !== 'issued'), []);
  assert.ok(outcomes.some((o) => o.attempts > 1), 'some requests met the restart and were retried');
  const certs = (await worker.all('/certificates')).filter((c) => c.seat_id.startsWith('restart-'));
  assert.equal(certs.length, 200, 'one certificate per seat, none lost');
  assert.equal(new Set(certs.map((c) => c.seat_id)).size, 200, 'no seat has two');
  // A retried request got the certificate the first attempt created: what the client holds is what D1 holds.
  const held = new Set(outcomes.map((o) => scep.inspect(o.certificate).serial));
  assert.deepEqual(new Set(certs.map((c) => c.serial)), held);
  const redeemed = (await worker.all('/enrollments')).filter((e) => e.seat_id.startsWith('restart-') && e.status === 'REDEEMED');
  assert.equal(redeemed.length, 200);
});
