// The package as a JS developer uses it: a tiny app imports 'scepkit/manual' and 'scepkit/wasm', is built by a
// bundler (esbuild, Vite), served from a static host on loopback, loaded in Chromium, and enrolls against `make
// run`'s Worker (CORS). Each app checks what it got: a certificate for its key, with the subject it asked for.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { startWorker, launchChromium } from '../interop/helpers.mjs';

const ROOT = new URL('../../', import.meta.url).pathname;
const BIN = join(ROOT, 'worker/node_modules/.bin');
const dir = mkdtempSync(join(tmpdir(), 'scepkit-bundlers-'));
let worker;
let browser;

before(async () => {
  worker = await startWorker(join(dir, 'worker'));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  worker?.stop();
});

/** An app directory whose node_modules/scepkit is this repository's package, as `npm install` would make it. */
function app(name, source, files = {}) {
  const at = join(dir, name);
  mkdirSync(join(at, 'node_modules'), { recursive: true });
  symlinkSync(join(ROOT, 'pkg'), join(at, 'node_modules', 'scepkit'));
  writeFileSync(join(at, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }));
  writeFileSync(join(at, 'main.js'), source);
  for (const [file, text] of Object.entries(files)) writeFileSync(join(at, file), text);
  return at;
}

// What each app does once its wasm is loaded: enroll with the code in the page's URL, and show the outcome.
const ENROLL = `
const params = new URLSearchParams(location.search);
try {
  const r = await enroll({ url: params.get('url'), challenge: params.get('code'), subject: 'CN=' + params.get('seat') });
  document.body.dataset.subject = inspect(r.certificate).subject;
  document.body.dataset.done = 'issued';
} catch (e) {
  document.body.dataset.done = 'failed: ' + e.message;
}`;

async function serve(root) {
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css' };
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname.replace(/\/$/, '/index.html');
    let body;
    try {
      body = readFileSync(join(root, path));
    } catch {
      return res.writeHead(404).end();
    }
    res.writeHead(200, { 'content-type': types[extname(path)] ?? 'application/octet-stream' }).end(body);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { origin: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}

async function enrollsIn(root, seat) {
  const { enrollment_code: code } = await worker.seatWithCode(seat, 'default');
  const host = await serve(root);
  const context = await browser.newContext();
  const page = await context.newPage();
  const failed = [];
  page.on('requestfailed', (r) => failed.push(r.url()));
  page.on('response', (r) => r.status() >= 400 && failed.push(`${r.status()} ${r.url()}`));
  try {
    await page.goto(`${host.origin}/?url=${encodeURIComponent(`${worker.base}/scep`)}&code=${code}&seat=${seat}`);
    await page.waitForFunction(() => document.body.dataset.done, null, { timeout: 90_000 });
    const done = await page.evaluate(() => ({ ...document.body.dataset }));
    assert.equal(done.done, 'issued', `${done.done}; failed requests: ${failed.join(', ')}`);
    assert.equal(done.subject, `CN=${seat}`);
    assert.deepEqual(failed, []);
  } finally {
    await context.close();
    host.close();
  }
}

test('esbuild: scepkit/manual + scepkit/wasm (file loader) bundle, load and enroll in Chromium', async () => {
  const at = app('esbuild-app', `import { init, enroll, inspect } from 'scepkit/manual';
import wasmUrl from 'scepkit/wasm';
await init({ wasmUrl: new URL(wasmUrl, import.meta.url) });
${ENROLL}`);
  const out = join(at, 'dist');
  const r = spawnSync(join(BIN, 'esbuild'), ['main.js', '--bundle', '--format=esm', '--platform=browser', '--loader:.wasm=file', `--outdir=${out}`], { cwd: at, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  writeFileSync(join(out, 'index.html'), '<!doctype html><script type="module" src="./main.js"></script>');
  await enrollsIn(out, 'bundle-esbuild-1');
});

test('Vite: scepkit/manual + scepkit/wasm?url build, load and enroll in Chromium', async () => {
  const at = app('vite-app', `import { init, enroll, inspect } from 'scepkit/manual';
import wasmUrl from 'scepkit/wasm?url';
await init({ wasmUrl });
${ENROLL}`, {
    'index.html': '<!doctype html><script type="module" src="/main.js"></script>',
    // Top-level await needs an ES2022 target; the build makes no network call.
    'vite.config.js': "export default { build: { target: 'es2022', outDir: 'dist' }, logLevel: 'warn' };",
  });
  const r = spawnSync(join(BIN, 'vite'), ['build'], { cwd: at, encoding: 'utf8', timeout: 180_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  await enrollsIn(join(at, 'dist'), 'bundle-vite-1');
});
