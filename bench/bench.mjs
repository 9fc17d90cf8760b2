// `make bench`: scepkit side by side with micromdm/scep and the platform limits, on this machine, in one run.
// Writes bench/results.json and prints a table. Figures are medians; targets are checked here, not in tests.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as scep from '../pkg/entry/node.js';
// The Worker's build (scepkit/server), which worker/src/ca.js's keys belong to.
import * as server from '../pkg/entry/server-node.js';
import { freePort, startWorker } from '../tests/interop/helpers.mjs';
import { sizeBreakdown } from './size_breakdown.mjs';
import { load, median, prebuild, round, timeEach } from './common.mjs';
import { oursOnWorkerd } from './workerd.mjs';

const ROOT = new URL('../', import.meta.url).pathname;
const N = Number(process.env.BENCH_REQUESTS ?? 200);
const results = { machine: { cores: (await import('node:os')).cpus().length, node: process.version }, date: new Date().toISOString() };

// ---------- core: native vs wasm, the same operations on the same seeded keys ----------
async function core() {
  const native = JSON.parse(execFileSync(join(ROOT, 'target/release/examples/bench_core'), ['30'], { encoding: 'utf8' }));
  const seed = (i) => new Uint8Array(32).fill(i);
  const keygen = median(await timeEach(5, (i) => scep.generateKeyFromSeed(2048, seed(i))));
  const caKey = scep.generateKeyFromSeed(2048, seed(200));
  const ca = scep.selfSignedCertificate(caKey, 'CN=bench CA', 1_700_000_000, 2_000_000_000, 'sha256', 'ca');
  const key = scep.generateKeyFromSeed(2048, seed(201));
  const signer = scep.selfSignedCertificate(key, 'CN=bench', 1_700_000_000, 2_000_000_000, 'sha256', 'signer');
  const request = { subject: 'CN=bench', challenge: 'code', digest: 'sha256' };
  const csrBuild = median(await timeEach(30, () => scep.buildCsr(key, request)));
  const csr = scep.buildCsr(key, request);
  const opts = { messageType: 'PKCSReq', cipher: 'aes-128-cbc', digest: 'sha256' };
  const build = median(await timeEach(30, () => scep.buildRequest(csr, key, signer, ca, opts)));
  const message = scep.buildRequest(csr, key, signer, ca, { ...opts, keyTransport: 'rsa-oaep-sha1' }).message;
  const identity = new scep.ServerIdentity(ca, scep.ServerKey.fromPkcs8(caKey));
  const open = median(await timeEach(30, () => scep.readRequest(message).open(identity, false)));
  // The same work with the host's RSA (node:crypto) behind the seam, as the Worker runs it: the PKIMessage
  // opened by ServerKey.fromCallbacks + useHostPublicKeyOps. (The client's host crypto, WebCrypto, is asked for
  // each signature once by the enrollment's steps; `enroll` in the page measures that end to end.)
  const { createPrivateKey } = await import('node:crypto');
  const { nativeKey, nativePublicKeyOps } = await import('../worker/src/ca.js');
  const caPem = createPrivateKey({ key: Buffer.from(caKey), format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' });
  const hostIdentity = new server.ServerIdentity(ca, nativeKey(caPem));
  hostIdentity.useHostPublicKeyOps(...nativePublicKeyOps);
  const openHost = median(await timeEach(30, () => server.readRequest(message).open(hostIdentity, false)));
  const wasm = { keygen_2048_seeded: keygen, csr_build: csrBuild, pkimessage_build: build, pkimessage_open: open, pkimessage_open_host_rsa: openHost };
  results.core = Object.fromEntries(Object.keys(native).map((k) => [k, { native_ms: round(native[k]), wasm_ms: round(wasm[k]), ratio: round(wasm[k] / native[k]) }]));
}

// ---------- server: our Worker (local workerd) vs micromdm scepserver, same requests ----------
async function ours(dir) {
  const worker = await startWorker(dir);
  try {
    await worker.profile('bench');
    const url = `${worker.base}/scep/bench`;
    const caBody = new Uint8Array(await (await fetch(`${url}?operation=GetCACert`)).arrayBuffer());
    const seats = async (prefix) => {
      const csv = ['seat_id,profile', ...Array.from({ length: N }, (_, i) => `${prefix}-${i},bench`)].join('\n');
      const r = await fetch(`${worker.base}/api/v1/seats/bulk`, { method: 'POST', headers: { authorization: `Bearer ${worker.token}`, 'content-type': 'text/csv' }, body: csv });
      return (await r.json()).results.map((x) => ({ seat: x.seat_id, code: x.enrollment_code }));
    };
    const baseline = median(await timeEach(50, async () => (await fetch(`${url}?operation=GetCACaps`)).text()));
    const c1 = await load(url, await prebuild(caBody, await seats('b1')), 1);
    const c8 = await load(url, await prebuild(caBody, await seats('b8')), 8);
    return { c1, c8, get_ca_caps_p50_ms: round(baseline), pkioperation_minus_loopback_ms: round(c1.latency_p50_ms - baseline) };
  } finally {
    worker.stop();
  }
}

async function micromdm(dir) {
  spawnSync('scepserver', ['ca', '-init', '-keySize', '2048', '-depot', join(dir, 'depot')]);
  const port = await freePort();
  const server = spawn('scepserver', ['-depot', join(dir, 'depot'), '-port', String(port), '-challenge', 'bench-secret', '-allowrenew', '0'], { stdio: 'ignore', detached: true });
  const url = `http://127.0.0.1:${port}/scep`;
  try {
    for (let i = 0; i < 100; i++) {
      try {
        if ((await fetch(`${url}?operation=GetCACaps`)).ok) break;
      } catch {}
      await new Promise((r) => setTimeout(r, 100));
    }
    const caBody = new Uint8Array(await (await fetch(`${url}?operation=GetCACert`)).arrayBuffer());
    const seats = (p) => Array.from({ length: N }, (_, i) => ({ seat: `${p}-${i}`, code: 'bench-secret' }));
    const baseline = median(await timeEach(50, async () => (await fetch(`${url}?operation=GetCACaps`)).text()));
    const c1 = await load(url, await prebuild(caBody, seats('m1')), 1);
    const c8 = await load(url, await prebuild(caBody, seats('m8')), 8);
    return { c1, c8, get_ca_caps_p50_ms: round(baseline), pkioperation_minus_loopback_ms: round(c1.latency_p50_ms - baseline) };
  } finally {
    process.kill(-server.pid, 'SIGTERM');
  }
}

// ---------- latency model: one enrollment when each D1 round trip costs 0, 25 or 100 ms ----------
// In production a Worker far from the D1 primary pays tens to hundreds of ms per trip. BENCH_D1_RTT_MS makes the
// local Worker wait that long before each D1 call to the primary, and BENCH_D1_REPLICA_RTT_MS before each read a
// session sends to the nearest replica (worker/src/bench_d1.js), counted apart (X-Bench-D1-Trips,
// X-Bench-D1-Replica-Trips); the client is on loopback, as micromdm's is in the server step.
const REPLICA_RTT_MS = 5;
async function latency(dir) {
  const out = [];
  for (const rtt of [0, 25, 100]) {
    process.env.BENCH_D1_RTT_MS = String(rtt);
    process.env.BENCH_D1_REPLICA_RTT_MS = String(Math.min(rtt, REPLICA_RTT_MS));
    const worker = await startWorker(join(dir, `rtt-${rtt}`));
    try {
      await worker.profile('bench');
      const url = `${worker.base}/scep/bench`;
      const caBody = new Uint8Array(await (await fetch(`${url}?operation=GetCACert`)).arrayBuffer());
      const csv = ['seat_id,profile', ...Array.from({ length: 21 }, (_, i) => `lat-${i},bench`)].join('\n');
      const seats = (await (await fetch(`${worker.base}/api/v1/seats/bulk`, { method: 'POST', headers: { authorization: `Bearer ${worker.token}`, 'content-type': 'text/csv' }, body: csv })).json()).results;
      const messages = await prebuild(caBody, seats.map((x) => ({ seat: x.seat_id, code: x.enrollment_code })));
      const times = [];
      const trips = [];
      const replicaTrips = [];
      // The first request reads the profile into the isolate's cache: measured apart from the steady state.
      for (const [i, m] of messages.entries()) {
        const t = performance.now();
        const res = await fetch(`${url}?operation=PKIOperation`, { method: 'POST', body: m });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`latency: HTTP ${res.status}`);
        if (i > 0) times.push(performance.now() - t);
        if (i > 0) trips.push(Number(res.headers.get('x-bench-d1-trips')));
        if (i > 0) replicaTrips.push(Number(res.headers.get('x-bench-d1-replica-trips')));
      }
      out.push({ d1_rtt_ms: rtt, replica_rtt_ms: Math.min(rtt, REPLICA_RTT_MS), enrollment_p50_ms: round(median(times)), d1_round_trips: median(trips), d1_replica_round_trips: median(replicaTrips) });
    } finally {
      worker.stop();
      delete process.env.BENCH_D1_RTT_MS;
      delete process.env.BENCH_D1_REPLICA_RTT_MS;
    }
  }
  return out;
}

// ---------- CPU of one PKIOperation: the Worker's exact core calls, with node:crypto behind the seam ----------
// (workerd does not expose per-request CPU locally and freezes timers during execution; Node runs the same wasm
// and the same BoringSSL-class native RSA, so this is the CPU the Worker spends outside D1 and HTTP.)
async function serverCpu() {
  const { generateKeyPairSync, randomBytes } = await import('node:crypto');
  // The Worker's own native crypto (worker/src/ca.js) and its exact core calls (the PKIOperation machine's steps,
  // with the store's answers given), run in Node.
  const { nativeKey, nativePublicKeyOps } = await import('../worker/src/ca.js');
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pkcs8 = new Uint8Array(privateKey.export({ type: 'pkcs8', format: 'der' }));
  const now = Math.floor(Date.now() / 1000);
  const ca = scep.selfSignedCertificate(pkcs8, 'CN=CA', now - 60, now + 86400, 'sha256', 'ca');
  const id = new server.ServerIdentity(ca, nativeKey(privateKey.export({ type: 'pkcs8', format: 'pem' })));
  id.useHostPublicKeyOps(...nativePublicKeyOps);
  const codeKey = randomBytes(32).toString('hex');
  const enrollment = server.newEnrollment(codeKey, now);
  const key = await scep.generateKey(2048);
  const signer = scep.selfSignedCertificate(key, 'CN=x', now - 60, now + 3600, 'sha256', 'signer');
  const csr = scep.buildCsr(key, { subject: 'CN=x', challenge: enrollment.code });
  // OAEP only because Node refuses PKCS#1 v1.5 decryption (CVE-2023-46809); workerd does v1.5 at the same cost.
  const msgs = Array.from({ length: 60 }, () => scep.buildRequest(csr, key, signer, ca, { messageType: 'PKCSReq', cipher: 'aes-128-cbc', digest: 'sha256', keyTransport: 'rsa-oaep-sha1' }).message);
  const body = { name: 'p', folder: 'S', scep_challenge: { dynamic: {} }, ca_identity_name: 'default', algorithm: { rsa: { rsa_nbits: 2048 } }, digest: 'sha256', scep_url: '/scep' };
  const profile = { id: 'p1', name: 'p', body, stored: JSON.stringify(body) };
  const facts = { seatExists: true, openEnrollment: { id: 'e', codeMac: enrollment.codeMac, expiresAt: now + 99 } };
  const totals = await timeEach(msgs.length, (i) => {
    const op = new server.PkiOperation(msgs[i], profile, id, codeKey, now, '192.0.2.1');
    let step = op.step;
    for (let n = 0; n < 16 && step.step !== 'answer'; n++) {
      if (step.step === 'key') step = op.withKey(id);
      else if (step.step === 'needFacts') step = op.withFacts(id, facts);
      else if (step.step === 'write') step = op.written(id, true);
      else throw new Error(`unexpected step ${step.step}: ${JSON.stringify(step)}`);
    }
    op.free();
    return step.body;
  });
  results.server_cpu = { pkioperation_cpu_p50_ms: round(median(totals)), note: 'the PKIOperation machine: open (native decrypt + verifies), facts, decide, issue (native sign), writes, CertRep (native key transport + sign)' };
}

// ---------- browser: Enroll → certificate, next to a bare WebCrypto keygen in the same page ----------
async function browser(dir) {
  const { chromium } = createRequire(join(ROOT, 'worker/package.json'))('playwright-core');
  const worker = await startWorker(dir);
  const b = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  try {
    const page = await b.newPage();
    await page.goto(`${worker.base}/`);
    await page.locator('#enroll:not([disabled])').waitFor();
    const bare = await page.evaluate(async () => {
      const out = [];
      for (let i = 0; i < 15; i++) {
        const t = performance.now();
        await crypto.subtle.generateKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['sign']);
        out.push(performance.now() - t);
      }
      return out;
    });
    const enrolls = [];
    const stages = {};
    for (let i = 0; i < 15; i++) {
      const { enrollment_code: code } = await worker.seatWithCode(`bench-page-${i}`, 'default');
      await page.getByLabel('Seat ID').fill(`bench-page-${i}`);
      await page.getByLabel('Enrollment code').fill(code);
      await page.evaluate(() => performance.clearMarks());
      await page.getByRole('button', { name: 'Enroll' }).click();
      await page.locator('#status:text("Certificate received.")').waitFor({ timeout: 60_000 });
      // The page's own User Timing measure, from its Enroll handler to the certificate on screen (the browser
      // automation's click and polling are not the page's time), and its mark per step: each stage is the time
      // from its mark to the next (key: keygen; request: CSR and PKIMessage; send: the PKIOperation and the reply).
      enrolls.push(await page.evaluate(() => performance.getEntriesByName('scepkit:enroll').at(-1).duration));
      const marks = await page.evaluate(() => performance.getEntriesByType('mark').map((m) => [m.name.replace('scepkit:', ''), m.startTime]));
      for (let j = 0; j + 1 < marks.length; j++) (stages[marks[j][0]] ??= []).push(marks[j + 1][1] - marks[j][1]);
    }
    const keygen = median(bare);
    const enroll = median(enrolls);
    const stages_ms = Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, round(median(v), 1)]));
    return { bare_webcrypto_keygen_ms: round(keygen), enroll_to_certificate_ms: round(enroll), ratio: round(enroll / keygen), stages_ms };
  } finally {
    await b.close();
    worker.stop();
  }
}

// ---------- scale: does a PKIOperation slow down as D1 grows (1k → 100k certificates and audit rows)? ----------
async function scale(dir) {
  const { execFileSync: exec } = await import('node:child_process');
  const { statSync, readdirSync } = await import('node:fs');
  const out = [];
  let worker = await startWorker(dir);
  let have = 0;
  try {
    await worker.profile('scale');
    for (const size of (process.env.BENCH_SCALE ?? '1000,10000,100000').split(',').map(Number)) {
      // Synthetic history: seats, redeemed enrollments, certificates (placeholder DER) and audit rows.
      worker.stop();
      const profileId = (await (async () => {
        const sql = `SELECT id FROM profiles WHERE name = 'scale'`;
        const res = exec(join(ROOT, 'worker/node_modules/.bin/wrangler'), ['d1', 'execute', 'DB', '--local', '--persist-to', join(dir, 'state'), '--json', '--command', sql], { cwd: join(ROOT, 'worker'), encoding: 'utf8' });
        return JSON.parse(res)[0].results[0].id;
      })());
      const rows = [];
      for (let i = have; i < size; i++) {
        const id = `hist-${i}`;
        const serial = (0x10000000 + i).toString(16);
        rows.push(`INSERT INTO seats (id, created_at) VALUES ('${id}', 0);`);
        rows.push(`INSERT INTO enrollments (id, seat_id, profile_id, code_mac, status, expires_at, created_at, redeemed_at, transaction_id) VALUES ('e-${id}', '${id}', '${profileId}', '${'0'.repeat(64)}', 'REDEEMED', 0, 0, 0, 't-${id}');`);
        rows.push(`INSERT INTO certificates (serial, fingerprint, seat_id, profile_id, subject, not_before, not_after, der, transaction_id, created_at) VALUES ('${serial}', 'fp-${i}', '${id}', '${profileId}', 'CN=${id}', 0, 2000000000, x'00', 't-${id}', 0);`);
        rows.push(`INSERT INTO audit_logs (time, profile, seat_id, transaction_id, operation, status, code, message) VALUES (${i}, 'scale', '${id}', 't-${id}', 'PKCSReq', 'Success', 'issued', 'Issued certificate ${serial}');`);
      }
      const file = join(dir, `history-${size}.sql`);
      writeFileSync(file, rows.join('\n'));
      exec(join(ROOT, 'worker/node_modules/.bin/wrangler'), ['d1', 'execute', 'DB', '--local', '--persist-to', join(dir, 'state'), '--file', file, '--yes'], { cwd: join(ROOT, 'worker'), stdio: 'ignore' });
      have = size;
      worker = await startWorker(dir);
      const url = `${worker.base}/scep/scale`;
      const caBody = new Uint8Array(await (await fetch(`${url}?operation=GetCACert`)).arrayBuffer());
      const csv = ['seat_id,profile', ...Array.from({ length: 60 }, (_, i) => `s${size}-${i},scale`)].join('\n');
      const r = await fetch(`${worker.base}/api/v1/seats/bulk`, { method: 'POST', headers: { authorization: `Bearer ${worker.token}`, 'content-type': 'text/csv' }, body: csv });
      const seats = (await r.json()).results.map((x) => ({ seat: x.seat_id, code: x.enrollment_code }));
      const res = await load(url, await prebuild(caBody, seats), 1);
      const d1Dir = join(dir, 'state/v3/d1');
      const d1 = readdirSync(d1Dir, { recursive: true }).filter((f) => /\.sqlite(-wal)?$/.test(String(f))).reduce((n, f) => n + statSync(join(d1Dir, String(f))).size, 0);
      out.push({ certificates_and_audit_rows: size, pkioperation_p50_ms: res.latency_p50_ms, failed: res.failed, d1_bytes: d1 });
    }
  } finally {
    worker.stop();
  }
  return out;
}

// ---------- the Worker as Cloudflare loads it: bundle size and startup (cold start) ----------
// `wrangler check startup` bundles the Worker as `wrangler deploy` would and profiles its startup phase in a
// local workerd (compiling and instantiating the wasm, evaluating the modules): a cold isolate's work before
// its first request. Run five times; the median is reported.
function coldStart() {
  const runs = [];
  // The window includes samples where the isolate's thread waits ("(idle)", e.g. for the wasm compiler's own
  // threads): its busy share is reported beside it.
  const busy = [];
  let bundle;
  for (let i = 0; i < 5; i++) {
    const profile = join(scratch, `startup-${i}.cpuprofile`);
    const out = execFileSync(join(ROOT, 'worker/node_modules/.bin/wrangler'), ['check', 'startup', '--outfile', profile], { cwd: join(ROOT, 'worker'), encoding: 'utf8' });
    const m = out.match(/Bundle: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/);
    if (!m) throw new Error(`wrangler check startup printed no bundle size:\n${out}`);
    bundle = { bytes: Math.round(Number(m[1]) * 1024), gz_bytes: Math.round(Number(m[2]) * 1024) };
    const p = JSON.parse(readFileSync(profile, 'utf8'));
    runs.push((p.endTime - p.startTime) / 1000);
    const idle = new Set(p.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
    busy.push(p.samples.reduce((ms, id, i) => ms + (idle.has(id) ? 0 : (p.timeDeltas[i] ?? 0) / 1000), 0));
  }
  return { worker_bundle: bundle, startup_ms: round(median(runs)), startup_busy_ms: round(median(busy)), note: 'wrangler check startup: the startup phase profiled in local workerd (profile window, median of 5; busy: its samples that are not idle)' };
}

// ---------- sizes ----------
function sizes() {
  const gz = (buf) => gzipSync(buf, { level: 9 }).length;
  const wasm = (dir) => {
    const bytes = readFileSync(join(ROOT, dir, 'scepkit_bg.wasm'));
    return { raw_bytes: bytes.length, gz_bytes: gz(bytes) };
  };
  const bundle = (entry) => {
    // esbuild reads the entry from stdin when given no entry point.
    const out = spawnSync(join(ROOT, 'bench/node_modules/.bin/esbuild'), ['--bundle', '--minify', '--format=esm', '--platform=browser', '--loader=js'], { input: entry, cwd: join(ROOT, 'bench'), maxBuffer: 64 << 20 });
    if (out.status !== 0) throw new Error(String(out.stderr));
    return { min_bytes: out.stdout.length, min_gz_bytes: gz(out.stdout) };
  };
  return {
    browser_client_wasm: { ...wasm('pkg/wasm-client'), breakdown: sizeBreakdown(ROOT, 'client'), note: 'cargo --no-default-features --features client at opt-level z: no issuance, policy, CRLs, profile validation or DES/3DES' },
    worker_wasm: { ...wasm('pkg/wasm-server'), breakdown: sizeBreakdown(ROOT, 'server'), note: 'scepkit/server: --features wasm,server,legacy at opt-level z, the CA side only, no RSA of its own' },
    node_wasm: { ...wasm('pkg/wasm'), note: 'every feature: Node and the CLI' },
    pkijs: bundle("export * from 'pkijs';"),
    node_forge: bundle("export { default } from 'node-forge';"),
  };
}

const scratch = mkdtempSync(join(tmpdir(), 'scepkit-bench-'));
const steps = { cold_start: async () => (results.cold_start = coldStart()), scale: async () => (results.scale = await scale(join(scratch, 's'))), core, server_cpu: serverCpu, sizes: async () => (results.size = sizes()), server: async () => (results.server = { scepkit_worker: await ours(join(scratch, 'w')), micromdm: await micromdm(join(scratch, 'm')) }), server_workerd: async () => (results.server_workerd = { scepkit_worker_miniflare: await oursOnWorkerd(join(scratch, 'wd'), N) }), browser: async () => (results.browser = await browser(join(scratch, 'b'))), latency: async () => (results.latency = await latency(join(scratch, 'l'))) };
// BENCH_ONLY=core,sizes runs a subset (the table then shows what ran).
const only = process.env.BENCH_ONLY?.split(',');
for (const [name, step] of Object.entries(steps)) {
  if (only && !only.includes(name)) continue;
  process.stderr.write(`bench: ${name}…\n`);
  await step();
}
const s = results.server;
if (s) results.server.ours_over_theirs = { c1_throughput: round(s.scepkit_worker.c1.per_second / s.micromdm.c1.per_second), c8_throughput: round(s.scepkit_worker.c8.per_second / s.micromdm.c8.per_second) };
// The same Worker on workerd without wrangler dev's proxy, against the server step's micromdm (run before it).
const sw = results.server_workerd;
if (sw && s) sw.ours_over_theirs = { c1_throughput: round(sw.scepkit_worker_miniflare.c1.per_second / s.micromdm.c1.per_second), c8_throughput: round(sw.scepkit_worker_miniflare.c8.per_second / s.micromdm.c8.per_second) };
// By stage, at c1: HTTP and the runtime (the Worker's 404: no D1, no crypto), the CPU of the PKIOperation (server_cpu,
// measured in Node), and what remains of its p50: D1 and the runtime's own work. (GetCACaps is no baseline here: it
// reads the profile and its CA from D1.)
const swc = sw && results.server_cpu && sw.scepkit_worker_miniflare;
if (swc) sw.stages = { http_and_runtime_ms: swc.http_404_p50_ms, entry_worker_hop_ms: round(swc.http_404_p50_ms - swc.http_404_direct_socket_p50_ms), get_ca_caps_p50_ms: swc.get_ca_caps_p50_ms, pkioperation_p50_ms: swc.c1.latency_p50_ms, pkioperation_cpu_p50_ms: results.server_cpu.pkioperation_cpu_p50_ms, remaining_d1_and_runtime_ms: round(swc.c1.latency_p50_ms - swc.http_404_p50_ms - results.server_cpu.pkioperation_cpu_p50_ms) };
// One table: each figure beside its goal (issue 14's, where it sets one) and beside micromdm or another reference
// measured in the same run. `met` is true/false where there is a goal, null where the row only informs.
const KB = 1024;
const rows = [];
const row = (figure, ours, goal, reference, met = null) => rows.push({ figure, ours, goal, reference, met });
const m = s?.micromdm;
const cpu = results.server_cpu?.pkioperation_cpu_p50_ms;
if (cpu !== undefined) row('server CPU per PKIOperation', `${cpu} ms`, '<= 3 ms', 'micromdm 3.98 ms natively (issue)', cpu <= 3);
if (sw?.ours_over_theirs) {
  const w = sw.scepkit_worker_miniflare;
  for (const c of ['c1', 'c8']) row(`throughput ${c}, workerd (no dev proxy)`, `${w[c].per_second}/s`, '>= 1.0x micromdm', `micromdm ${m[c].per_second}/s (${sw.ours_over_theirs[`${c}_throughput`]}x)`, sw.ours_over_theirs[`${c}_throughput`] >= 1);
  row('PKIOperation p50 c1, workerd', `${w.c1.latency_p50_ms} ms`, '', `micromdm ${m.c1.latency_p50_ms} ms`);
  if (sw.stages) row('  by stage: HTTP+runtime / CPU / D1+runtime', `${sw.stages.http_and_runtime_ms} / ${sw.stages.pkioperation_cpu_p50_ms} / ${sw.stages.remaining_d1_and_runtime_ms} ms`, '', `(a Worker 404: ${w.http_404_p50_ms} ms)`);
}
if (s) {
  for (const c of ['c1', 'c8']) row(`throughput ${c}, wrangler dev`, `${s.scepkit_worker[c].per_second}/s`, '(dev proxy: no goal)', `micromdm ${m[c].per_second}/s (${s.ours_over_theirs[`${c}_throughput`]}x)`);
}
for (const l of results.latency ?? []) {
  row(`enrollment p50, D1 primary ${l.d1_rtt_ms} ms away`, `${l.enrollment_p50_ms} ms`, '1 primary trip', `${l.d1_round_trips} primary + ${l.d1_replica_round_trips} replica (${l.replica_rtt_ms} ms)${m ? `; micromdm ${m.c1.latency_p50_ms} ms` : ''}`, l.d1_round_trips <= 1);
}
const b = results.browser;
if (b) {
  row('page: Enroll -> certificate', `${b.enroll_to_certificate_ms} ms`, '<= 1.5x keygen', `bare WebCrypto keygen ${b.bare_webcrypto_keygen_ms} ms (${b.ratio}x)`, b.ratio <= 1.5);
  // The page makes the key while the person types and fetches GetCACaps/GetCACert ahead: both before Enroll.
  row('  with its keygen counted', `${round(b.enroll_to_certificate_ms + b.bare_webcrypto_keygen_ms)} ms`, '', `(${round(1 + b.ratio)}x: the key is made before Enroll)`);
  if (b.stages_ms) row('  by stage', Object.entries(b.stages_ms).map(([k, v]) => `${k} ${v}`).join(', '), '', '(ms, medians; "key" is keygen)');
}
const z = results.size;
if (z) {
  row('browser wasm (client build)', `${z.browser_client_wasm.gz_bytes} B gz`, '<= 150 KB gz', `PKI.js ${z.pkijs.min_gz_bytes} B, forge ${z.node_forge.min_gz_bytes} B`, z.browser_client_wasm.gz_bytes <= 150 * KB);
  row('  largest crates', z.browser_client_wasm.breakdown.by_crate.slice(0, 5).map((c) => `${c.crate} ${c.share}%`).join(', '), '', '(twiggy, bench/size_breakdown.mjs)');
  row('Worker wasm (scepkit/server)', `${z.worker_wasm.gz_bytes} B gz`, '', '');
  row('  largest crates', z.worker_wasm.breakdown.by_crate.slice(0, 5).map((c) => `${c.crate} ${c.share}%`).join(', '), '', '');
}
const cs = results.cold_start;
if (cs) {
  row('Worker bundle as deployed', `${cs.worker_bundle.gz_bytes} B gz`, '<= 350 KB gz', '', cs.worker_bundle.gz_bytes <= 350 * KB);
  row('Worker cold start (startup phase)', `${cs.startup_ms} ms`, '<= 40 ms', '', cs.startup_ms <= 40);
  row('  of which busy (not idle samples)', `${cs.startup_busy_ms} ms`, '', '(the goal is judged on the whole window)');
}
for (const [k, v] of Object.entries(results.core ?? {})) {
  const host = k.endsWith('_host_rsa');
  row(`core ${k}`, `${v.wasm_ms} ms wasm`, host ? '' : '<= 3x native', `native ${v.native_ms} ms (${v.ratio}x)`, host ? null : v.ratio <= 3);
}
for (const x of results.scale ?? []) row(`D1 with ${x.certificates_and_audit_rows} certificates + audit rows`, `${x.pkioperation_p50_ms} ms p50`, 'flat', `D1 ${(x.d1_bytes / 1e6).toFixed(1)} MB`);
results.figures = rows;
results.targets = Object.fromEntries(rows.filter((r) => r.met !== null).map((r) => [`${r.figure} ${r.goal}`, r.met]));
writeFileSync(join(ROOT, only ? 'bench/results.partial.json' : 'bench/results.json'), JSON.stringify(results, null, 2) + '\n');

const widths = [44, 24, 18, 52];
console.log(['figure', 'scepkit', 'goal', 'micromdm / reference'].map((c, i) => c.padEnd(widths[i])).join(' ') + ' met');
for (const r of rows) {
  const met = r.met === null ? '' : r.met ? 'MET' : 'NOT MET';
  console.log([r.figure, r.ours, r.goal, r.reference].map((c, i) => String(c).padEnd(widths[i])).join(' ') + ` ${met}`);
}
