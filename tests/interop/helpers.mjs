// Shared by the interop and browser suites: a free loopback port, the CLIs they drive, and `make run`'s Worker.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

export const CLI = new URL('../../pkg/cli.js', import.meta.url).pathname;

export const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

export const run = (cmd, args, opts = {}) => spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000, ...opts });
export const scepkit = (...args) => run(process.execPath, [CLI, ...args]);
export const openssl = (...args) => run('openssl', args);

const ROOT = new URL('../../', import.meta.url).pathname;

// Workers this process started and has not stopped: killed when it exits however the suite ended (a test that
// hits its timeout, an assertion in a `before` hook), so no `wrangler dev` outlives its test file.
const running = new Set();
process.on('exit', () => {
  for (const pgid of running) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
});

/**
 * Starts `make run`'s Worker (scripts/run-worker.sh) on 127.0.0.1 (`port`, else a free one) with its D1 under `dir`;
 * `allowedServers` are the other origins its page may contact (PAGE_ALLOWED_SERVERS).
 * Returns its base URL, an admin API caller and `stop()` (kills the process group).
 */
export async function startWorker(dir, { port, allowedServers } = {}) {
  port ??= await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = { ...process.env, DETACH: '1', PORT: String(port), PERSIST: `${dir}/state`, LOG: `${dir}/dev.log`, PIDFILE: `${dir}/pgid` };
  if (allowedServers) env.PAGE_ALLOWED_SERVERS = allowedServers.join(',');
  const start = () => {
    const r = run(`${ROOT}scripts/run-worker.sh`, [], { env });
    if (r.status !== 0) throw new Error(`run-worker.sh failed:\n${r.stdout}${r.stderr}`);
    const group = Number(readFileSync(`${dir}/pgid`, 'utf8'));
    running.add(group);
    return group;
  };
  let pgid = start();
  const token = readFileSync(`${ROOT}worker/.dev.vars`, 'utf8').match(/^ADMIN_TOKEN="(.*)"$/m)[1];
  const api = async (method, path, body) => {
    const res = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, json: res.status === 204 ? null : await res.json() };
  };
  // Every row of a list: the API pages by cursor.
  const all = async (path) => {
    const rows = [];
    let cursor = null;
    for (let page = 0; page < 1000; page++) {
      const sep = path.includes('?') ? '&' : '?';
      const r = await api('GET', `${path}${path.includes('limit=') ? '' : `${sep}limit=10000`}${cursor ? `&cursor=${cursor}` : ''}`);
      if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${JSON.stringify(r.json)}`);
      rows.push(...r.json.data);
      cursor = r.json.next_cursor;
      if (!cursor) return rows;
    }
    throw new Error(`GET ${path}: more than 1000 pages`);
  };
  const profile = async (name, extra = {}) => {
    const r = await api('POST', '/scep-profiles', {
      name, folder: 'Shared', scep_challenge: { dynamic: {} }, ca_identity_name: 'default', algorithm: { rsa: { rsa_nbits: 2048 } }, digest: 'sha256',
      use_as_digital_signature: true, use_for_key_encipherment: true, scep_url: `${base}/scep/${name}`, ...extra,
    });
    if (![201, 409].includes(r.status)) throw new Error(JSON.stringify(r.json));
  };
  const seatWithCode = async (seat, profileName) => {
    await api('POST', '/seats', { id: seat });
    const e = await api('POST', '/enrollments', { seat_id: seat, profile: profileName });
    if (e.status !== 201) throw new Error(JSON.stringify(e.json));
    return e.json;
  };
  const signal = (sig) => {
    try {
      process.kill(-pgid, sig);
      return true;
    } catch (e) {
      if (e.code === 'ESRCH') return false; // the group is gone already
      throw e;
    }
  };
  const stop = () => {
    running.delete(pgid);
    return signal('SIGTERM');
  };
  // Stop and start again on the same port and D1 state, as a person restarting `make run` would. It waits until
  // no process of the old group is left: a wrangler busy restarting a crashed workerd can start one after the
  // SIGTERM, which would hold the port; one still there after 15 s is killed.
  const restart = async () => {
    stop();
    for (let i = 0; i < 200 && signal(0); i++) {
      if (i === 150) signal('SIGKILL');
      await new Promise((r) => setTimeout(r, 100));
    }
    pgid = start();
  };
  return { base, token, api, all, profile, seatWithCode, stop, restart };
}

/**
 * Debian's Chromium, headless, through playwright-core (installed with the Worker's npm packages), for the
 * browser suites. Playwright starts every launch with a fresh, empty user-data-dir of its own.
 */
export function launchChromium() {
  const { chromium } = createRequire(new URL('../../worker/package.json', import.meta.url))('playwright-core');
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
