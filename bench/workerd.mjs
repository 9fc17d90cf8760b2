// The server step again, on the Worker bundle exactly as `wrangler deploy` uploads it, run by workerd through
// Miniflare's API: no `wrangler dev`, so none of its proxy (the ProxyWorker in a second workerd) in front.
// `wrangler dev` (startWorker) is still used once, before the clock: it applies the migrations and creates the
// profile in the D1 state that Miniflare then opens.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { freePort, startWorker } from '../tests/interop/helpers.mjs';
import { load, median, prebuild, round, timeEach } from './common.mjs';

const ROOT = new URL('../', import.meta.url).pathname;
const WORKER = join(ROOT, 'worker');

// Stops startWorker's `wrangler dev` and waits until its whole process group has exited (15 s, then SIGKILL), so
// that no workerd of it still has the D1 database open.
async function stopAndWait(worker, dir) {
  const pgid = Number(readFileSync(join(dir, 'pgid'), 'utf8'));
  worker.stop();
  const alive = () => {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (let i = 0; alive(); i++) {
    if (i === 150) process.kill(-pgid, 'SIGKILL');
    if (i > 200) throw new Error(`wrangler dev (process group ${pgid}) did not exit`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `n` PKIOperations at concurrency 1 and again at 8 (fresh seats each), as `ours()` in bench.mjs. */
export async function oursOnWorkerd(dir, n) {
  const wrangler = join(WORKER, 'node_modules/.bin/wrangler');
  const env = { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false' };
  // The bundle as deployed: index.js and the hashed wasm module it imports.
  const bundle = join(dir, 'bundle');
  execFileSync(wrangler, ['deploy', '--dry-run', '--outdir', bundle], { cwd: WORKER, env, stdio: ['ignore', 'ignore', 'pipe'] });
  const modules = [
    { type: 'ESModule', path: join(bundle, 'index.js') },
    ...readdirSync(bundle).filter((f) => f.endsWith('.wasm')).map((f) => ({ type: 'CompiledWasm', path: join(bundle, f) })),
  ];

  // Migrations (run-worker.sh) and the profile, in the D1 state under dir/state.
  const dev = await startWorker(dir);
  try {
    await dev.profile('bench');
  } finally {
    await stopAndWait(dev, dir);
  }

  // wrangler.jsonc and .dev.vars read as `wrangler dev` reads them: compatibility date and flags, vars and secrets,
  // the D1 binding. Not the assets (the page; /scep never reaches them) nor the cron trigger.
  const require = createRequire(join(WORKER, 'package.json'));
  const { workerOptions } = require('wrangler').unstable_getMiniflareWorkerOptions(join(WORKER, 'wrangler.jsonc'));
  const { assets, cronTriggers, modulesRules, rootPath, ...fromConfig } = workerOptions;
  const { Miniflare, convertV4MiniflareOptions } = require('miniflare');
  const [port, directPort] = [await freePort(), await freePort()];
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      host: '127.0.0.1',
      port,
      // The same directory `wrangler dev --persist-to dir/state` keeps its resources in (D1 under v3/d1).
      resourcePersistencePath: join(dir, 'state/v3'),
      ...fromConfig,
      name: 'scepkit',
      modulesRoot: bundle,
      modules,
      // A second socket straight to the Worker, without Miniflare's entry worker: measures that hop alone.
      unsafeDirectSockets: [{ host: '127.0.0.1', port: directPort }],
      handleStructuredLogs: () => {},
    }),
  );
  try {
    const base = (await mf.ready).origin;
    const token = fromConfig.bindings.ADMIN_TOKEN;
    const api = (path, init = {}) => fetch(`${base}/api/v1${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...init.headers } });
    // The state is the one wrangler dev wrote: the profile it created is there.
    const profiles = await (await api('/scep-profiles?limit=10000')).json();
    if (!profiles.data?.some((p) => p.name === 'bench')) throw new Error(`workerd: profile 'bench' not found in the shared D1 state: ${JSON.stringify(profiles).slice(0, 300)}`);
    const url = `${base}/scep/bench`;
    const caBody = new Uint8Array(await (await fetch(`${url}?operation=GetCACert`)).arrayBuffer());
    const seats = async (prefix) => {
      const csv = ['seat_id,profile', ...Array.from({ length: n }, (_, i) => `${prefix}-${i},bench`)].join('\n');
      const r = await api('/seats/bulk', { method: 'POST', headers: { 'content-type': 'text/csv' }, body: csv });
      return (await r.json()).results.map((x) => ({ seat: x.seat_id, code: x.enrollment_code }));
    };
    const get = async (u, status) => {
      const res = await fetch(u);
      if (res.status !== status) throw new Error(`workerd: ${u}: HTTP ${res.status}`);
      return res.text();
    };
    // GetCACaps reads the profile and its CA from D1 (as ours() measures it, the loopback baseline). The Worker's
    // 404 touches neither D1 nor crypto: HTTP and the runtime alone, through the entry worker and past it.
    const baseline = median(await timeEach(50, () => get(`${url}?operation=GetCACaps`, 200)));
    const http = median(await timeEach(50, () => get(`${base}/bench-404`, 404)));
    const httpDirect = median(await timeEach(50, () => get(`http://127.0.0.1:${directPort}/bench-404`, 404)));
    const c1 = await load(url, await prebuild(caBody, await seats('w1')), 1, { verify: true });
    const c8 = await load(url, await prebuild(caBody, await seats('w8')), 8, { verify: true });
    for (const [c, r] of [['c1', c1], ['c8', c8]]) {
      if (r.failed !== 0 || r.issued !== r.requests) throw new Error(`workerd ${c}: ${r.failed} not HTTP 200, ${r.issued}/${r.requests} SUCCESS CertReps`);
    }
    return {
      c1,
      c8,
      get_ca_caps_p50_ms: round(baseline),
      http_404_p50_ms: round(http),
      http_404_direct_socket_p50_ms: round(httpDirect),
      pkioperation_minus_loopback_ms: round(c1.latency_p50_ms - baseline),
      runtime: 'miniflare/workerd (no wrangler dev proxy)',
      request_path: "Node fetch → workerd's entry socket → Miniflare's entry worker (core:entry) → the Worker (service binding, same workerd) → D1 (Miniflare's D1 Durable Object, SQLite on disk); the direct socket (http_404_direct_socket_p50_ms) skips core:entry",
    };
  } finally {
    await mf.dispose();
  }
}
