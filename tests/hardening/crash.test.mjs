// A crash loses and burns nothing: workerd is SIGKILLed again and again during a burst of enrollments, every
// unanswered request is sent again with the very same bytes (same transactionID and key, as every SCEP client
// does on a timeout), and then every seat holds exactly one certificate, the one D1 holds, with its audit row;
// no code is REDEEMED without a certificate, none is left CREATED while its client holds one.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as scep from '../../pkg/entry/node.js';
import { startWorker } from '../interop/helpers.mjs';

const CONCURRENCY = 16;
const ROUND = 2 * CONCURRENCY; // seats per round: two waves of the clients
// One kill per round, `at` times a wave's life after the round starts (a first round without a kill times one)
// or when its last seat is sent.
// 'runtime' kills the workerd that runs the Worker and its D1: wrangler starts a new one, requests in flight get
// a 5xx. 'all' kills wrangler's proxy workerd too: the port goes dark and wrangler's new proxy hangs, so the
// Worker is restarted as a person restarts `make run`. A wave has codes redeemed but certificates not yet saved
// for ~1/4 of its life, at a point that drifts with the machine's load: hence ten kills, spread over a wave and
// more (on the Worker that redeemed and saved in two writes, 3 to 7 of the ten landed there in every run).
const KILLS = [
  { what: 'runtime', at: 0.4 },
  { what: 'runtime', at: 0.9 },
  { what: 'all', at: 0.6 },
  { what: 'runtime', at: 1.1 },
  { what: 'runtime', at: 0.3 },
  { what: 'runtime', at: 0.8 },
  { what: 'all', at: 1.0 },
  { what: 'runtime', at: 0.5 },
  { what: 'runtime', at: 1.2 },
  { what: 'runtime', at: 0.7 },
];
const SEATS = ROUND * (1 + KILLS.length);
const RESEND_FOR_MS = 90_000; // per request, from its first send: a full restart takes ~20 s here

const dir = mkdtempSync(join(tmpdir(), 'scepkit-crash-'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let worker;
let ca;
const keys = [];

before(async () => {
  worker = await startWorker(dir);
  await worker.profile('crash');
  ca = new Uint8Array(await (await fetch(`${worker.base}/scep/crash?operation=GetCACert`)).arrayBuffer());
  // A pool of keys: each request still has its own seat, code, signer and transactionID.
  for (let i = 0; i < 16; i++) keys.push(await scep.generateKey(2048));
});

after(() => worker?.stop());

/** The workerd processes of the Worker's process group (run-worker.sh rewrites the pgid file on every start). */
function workerds() {
  const pgid = Number(readFileSync(`${dir}/pgid`, 'utf8'));
  const out = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      // pid (comm) state ppid pgrp …: comm may hold spaces, so the fields are read after the last ')'.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
      if (pgrp !== pgid || comm !== 'workerd') continue;
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      out.push({ pid: Number(pid), proxy: cmdline.includes(`--socket-addr=entry=127.0.0.1:${new URL(worker.base).port}`) });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Whether GetCACaps answers (or `done()` holds, checked meanwhile) within `ms`. Under load one takes ~1 s. */
async function answers(ms, done = () => false) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const stop = new AbortController();
    let ok;
    fetch(`${worker.base}/scep/crash?operation=GetCACaps`, { signal: AbortSignal.any([stop.signal, AbortSignal.timeout(5000)]) })
      .then(async (res) => (await res.arrayBuffer(), res.status === 200))
      .then((v) => (ok = v), () => (ok = false)); // down, or wrangler's proxy holding the request
    while (ok === undefined && !done()) await sleep(20);
    stop.abort();
    if (ok || done()) return true;
    await sleep(100);
  }
  return false;
}

async function seats(prefix, n) {
  const csv = ['seat_id,profile', ...Array.from({ length: n }, (_, i) => `${prefix}-${i},crash`)].join('\n');
  const res = await fetch(`${worker.base}/api/v1/seats/bulk`, { method: 'POST', headers: { authorization: `Bearer ${worker.token}`, 'content-type': 'text/csv' }, body: csv });
  const body = await res.json();
  assert.equal(body.created, n, JSON.stringify(body.results.find((r) => r.status !== 'created')));
  return body.results.map((r) => ({ seat: r.seat_id, code: r.enrollment_code }));
}

/** Built before the burst, so that a resend is byte for byte the first send. */
function message({ seat, code }, i) {
  const key = keys[i % keys.length];
  const now = Math.floor(Date.now() / 1000);
  const signer = scep.selfSignedCertificate(key, `CN=${seat}`, now - 60, now + 3600, 'sha256', 'signer');
  const csr = scep.buildCsr(key, { subject: `CN=${seat}`, challenge: code });
  const transactionId = `crash-tx-${seat}`;
  const req = scep.buildRequest(csr, key, signer, ca, { messageType: 'PKCSReq', cipher: 'aes-128-cbc', digest: 'sha256', transactionId });
  return { seat, transactionId, key, signer, req };
}

test('SIGKILL of workerd during a burst: every resent request gets its certificate, no code burned, nothing half-saved', { timeout: 360_000 }, async () => {
  const started = Date.now();
  const work = (await seats('crash', SEATS)).map(message);
  const url = `${worker.base}/scep/crash?operation=PKIOperation`;
  const inFlight = new Set(); // seats with a request on the wire
  let latestSent = 0; // when the newest request that got its answer was sent
  const kills = [];
  const causes = new Map(); // why answers were lost: connection error code or HTTP status
  let failedRecovery = false;

  const kill = async ({ what }) => {
    const all = workerds();
    const victims = what === 'all' ? all : all.filter((w) => !w.proxy);
    const record = { what, inFlight: [...inFlight], workerds: victims.length, restarted: false, at: Date.now() };
    kills.push(record);
    for (const { pid } of victims) process.kill(pid, 'SIGKILL');
    // wrangler restarts a runtime that died: it is back once a request sent after the kill gets its CertRep, or
    // GetCACaps answers. Its proxy does not come back usable: then the Worker is restarted, same port and D1.
    if (what === 'all' || !(await answers(20_000, () => latestSent > record.at))) {
      await worker.restart();
      record.restarted = true;
      assert.ok(await answers(60_000), `the Worker answers GetCACaps again after kill ${kills.length}`);
    }
    record.down = Date.now() - record.at;
  };

  /** Sends one message until a CertRep comes back; a lost answer (connection error, 5xx) is sent again, same bytes. */
  const enroll = async (m) => {
    const first = Date.now();
    for (let attempt = 1; attempt <= 1000; attempt++) {
      let status;
      let body;
      let cause;
      const sentAt = Date.now();
      inFlight.add(m.seat);
      try {
        const res = await fetch(url, { method: 'POST', body: m.req.message, signal: AbortSignal.timeout(60_000) });
        body = new Uint8Array(await res.arrayBuffer());
        status = res.status; // only once the whole body came: a cut one is a lost answer
      } catch (e) {
        cause = e.cause?.code ?? e.name;
      } finally {
        inFlight.delete(m.seat);
      }
      // Read after the burst: decrypting it here would hold up the kills' timers by ~20 ms an answer.
      if (status === 200) {
        latestSent = Math.max(latestSent, sentAt);
        return { ...m, attempts: attempt, answeredAt: Date.now(), reply: body };
      }
      if (status !== undefined && status < 500) return { ...m, attempts: attempt, status: `HTTP ${status}`, message: new TextDecoder().decode(body) };
      cause ??= `HTTP ${status}`;
      causes.set(cause, (causes.get(cause) ?? 0) + 1);
      // Once a recovery failed nothing will answer: stop at once instead of at the deadline.
      if (failedRecovery || Date.now() - first > RESEND_FOR_MS) return { ...m, attempts: attempt, status: 'unanswered', message: `last: ${cause}` };
      await sleep(250);
    }
    return { ...m, status: 'unanswered', message: 'too many attempts' };
  };

  /** One round: its seats at CONCURRENCY, and the kill `at` ms after the round starts, or once its last seat is
   * sent if that comes first (a faster round than the first one still has its kill land on requests in flight). */
  const outcomes = [];
  const round = async (seats, plan, at) => {
    let next = 0;
    let lastSent;
    const crash = plan && Promise.race([sleep(at), new Promise((r) => (lastSent = r))]).then(() => kill(plan)).catch((e) => {
      failedRecovery = true;
      return e;
    });
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < seats.length) {
        const sending = enroll(seats[next++]);
        if (next === seats.length) lastSent?.();
        outcomes.push(await sending);
      }
    }));
    return crash;
  };
  // The first round times a wave, once the Worker is warm: from the first wave's last answer to the second's.
  assert.equal(await round(work.slice(0, ROUND)), undefined);
  const answeredAt = outcomes.map((o) => o.answeredAt).sort((a, b) => a - b);
  const wave = answeredAt[ROUND - 1] - answeredAt[CONCURRENCY - 1];
  for (const [k, plan] of KILLS.entries()) {
    const error = await round(work.slice(ROUND * (k + 1), ROUND * (k + 2)), plan, plan.at * wave);
    assert.equal(error, undefined, error?.stack);
  }

  // What the clients hold, against what D1 holds.
  const problems = [];
  const lost = new Set();
  const problem = (seat, text) => problems.push(`${seat}: ${text}`) && lost.add(seat);
  const held = new Map();
  assert.equal(outcomes.length, SEATS);
  for (const o of outcomes) {
    if (o.reply) {
      try {
        Object.assign(o, scep.readCertRep(o.reply, o.req, o.key, o.signer, ca, undefined, false));
      } catch (e) {
        Object.assign(o, { status: 'unreadable', message: e.message });
      }
    }
    if (o.status === 'issued') held.set(o.seat, scep.inspect(o.certificate).serial);
    else if (o.status === 'failed') problem(o.seat, `FAILURE ${o.failInfo}: ${o.message} (attempt ${o.attempts})`);
    else problem(o.seat, `${o.status}: ${o.message} (attempt ${o.attempts})`);
  }
  // A keep-alive connection of the burst may be closed under a read: reads are tried again.
  const read = async (path) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await worker.all(path);
      } catch (e) {
        if (attempt === 5) throw e;
        await sleep(500);
      }
    }
  };
  const inBurst = (row) => row.seat_id?.startsWith('crash-');
  const bySeat = (rows) => Map.groupBy(rows.filter(inBurst), (r) => r.seat_id);
  const certsOf = bySeat(await read('/certificates'));
  const enrollmentsOf = bySeat(await read('/enrollments'));
  const issuedRowsOf = bySeat((await read('/audit-logs')).filter((a) => a.status === 'Success' && a.code === 'issued'));
  for (const { seat, transactionId } of work) {
    const certs = certsOf.get(seat) ?? [];
    const codes = enrollmentsOf.get(seat) ?? [];
    const issuedRows = (issuedRowsOf.get(seat) ?? []).filter((a) => a.transaction_id === transactionId);
    if (certs.length !== 1) problem(seat, `${certs.length} certificates in D1`);
    else if (held.has(seat) && certs[0].serial !== held.get(seat)) problem(seat, `D1 holds ${certs[0].serial}, the client ${held.get(seat)}`);
    if (issuedRows.length !== certs.length) problem(seat, `${certs.length} certificates, ${issuedRows.length} 'issued' audit rows`);
    if (codes.length !== 1) problem(seat, `${codes.length} enrollments (expected the bulk one)`);
    else if (codes[0].status === 'REDEEMED' && !certs.length) problem(seat, 'code REDEEMED without a certificate');
    else if (codes[0].status === 'CREATED' && held.has(seat)) problem(seat, 'code still CREATED though its client holds a certificate');
    else if (codes[0].status !== 'REDEEMED' && certs.length) problem(seat, `code ${codes[0].status} though D1 holds a certificate`);
  }

  const resent = outcomes.filter((o) => o.attempts > 1);
  const told = (k) => `${k.what}: ${k.inFlight.length} in flight, ${k.inFlight.filter((seat) => lost.has(seat)).length} lost, back in ${(k.down / 1000).toFixed(1)} s${k.restarted ? ' (restarted)' : ''}`;
  console.log(
    `# ${kills.length} kills (${kills.map(told).join('; ')}); ${resent.length} requests resent, ${resent.reduce((n, o) => n + o.attempts - 1, 0)} times ` +
      `(${[...causes].map(([c, n]) => `${c} ×${n}`).join(', ')}); ${held.size}/${SEATS} certificates held; wave ${wave} ms; ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  assert.deepEqual(problems, [], `${problems.length} problems after ${kills.length} kills`);
  // The kills did happen, mid-request, both kinds, and answers were lost and sent again: else this proved nothing.
  assert.equal(kills.length, KILLS.length);
  for (const k of kills) assert.ok(k.workerds > 0 && k.inFlight.length > 0, `kill of ${k.what}: ${k.workerds} workerd, ${k.inFlight.length} requests in flight`);
  assert.ok(kills.some((k) => k.restarted), 'the Worker was restarted at least once');
  assert.ok(resent.length > 0, 'some requests lost their answer and were sent again');
});
