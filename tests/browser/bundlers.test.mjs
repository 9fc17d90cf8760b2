// The package as a JS developer uses it: a tiny app imports 'scepkit/manual' and 'scepkit/wasm', is built by a
// bundler (esbuild, Vite, webpack 5, Rollup 4) with the configuration its docs suggest for a wasm asset, served
// from a static host on loopback, loaded in Chromium, and enrolls against `make run`'s Worker (CORS). Each app
// checks what it got: a certificate for its key, with the subject it asked for. The bundlers are worker/'s
// devDependencies and run offline; each build is bounded by a timeout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, extname, join } from 'node:path';
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
  rmSync(dir, { recursive: true, force: true });
});

/**
 * An app directory whose node_modules/scepkit is this repository's package, as `npm install` would make it, and
 * whose node_modules/<dep> for each of `deps` is worker/'s copy (what a config file imports, e.g. Rollup plugins).
 */
function app(name, source, files = {}, deps = []) {
  const at = join(dir, name);
  mkdirSync(join(at, 'node_modules'), { recursive: true });
  symlinkSync(join(ROOT, 'pkg'), join(at, 'node_modules', 'scepkit'));
  for (const dep of deps) {
    mkdirSync(dirname(join(at, 'node_modules', dep)), { recursive: true });
    symlinkSync(join(ROOT, 'worker/node_modules', dep), join(at, 'node_modules', dep));
  }
  writeFileSync(join(at, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }));
  writeFileSync(join(at, 'main.js'), source);
  for (const [file, text] of Object.entries(files)) writeFileSync(join(at, file), text);
  return at;
}

// What each app does once its wasm is loaded: enroll with the code in the page's URL, and show the outcome. The
// content key goes as RSAES-PKCS1-v1_5 (the default, what most SCEP servers take), which WebCrypto lacks: the
// client build (no RSA of its own) has the package load its full build for that, through the app's bundler.
const ENROLL = `
const params = new URLSearchParams(location.search);
try {
  const r = await enroll({ url: params.get('url'), challenge: params.get('code'), subject: 'CN=' + params.get('seat') });
  document.body.dataset.subject = (await inspect(r.certificate)).subject;
  document.body.dataset.ops = JSON.stringify(r.privateKeyOperations);
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
  const wasm = [];
  page.on('response', (r) => new URL(r.url()).pathname.endsWith('.wasm') && wasm.push(r.url()));
  try {
    await page.goto(`${host.origin}/?url=${encodeURIComponent(`${worker.base}/scep`)}&code=${code}&seat=${seat}`);
    await page.waitForFunction(() => document.body.dataset.done, null, { timeout: 90_000 });
    const done = await page.evaluate(() => ({ ...document.body.dataset }));
    assert.equal(done.done, 'issued', `${done.done}; failed requests: ${failed.join(', ')}`);
    assert.equal(done.subject, `CN=${seat}`);
    assert.deepEqual(failed, []);
    // WebCrypto signed (CSR, signer certificate, PKIMessage); the full build, fetched second, opened the reply.
    assert.deepEqual(JSON.parse(done.ops), { webcrypto: 3, wasm: 1 });
    assert.equal(wasm.length, 2, wasm.join(', '));
  } finally {
    await context.close();
    host.close();
  }
}

test('esbuild: scepkit/manual + scepkit/wasm (file loader) bundle, load and enroll in Chromium', async () => {
  const at = app('esbuild-app', `import { init, enroll, inspect } from 'scepkit/manual';
import wasmUrl from 'scepkit/wasm';
import fullWasmUrl from 'scepkit/wasm-full';
await init({ wasmUrl: new URL(wasmUrl, import.meta.url), fullWasmUrl: new URL(fullWasmUrl, import.meta.url) });
${ENROLL}`);
  const out = join(at, 'dist');
  const r = spawnSync(join(BIN, 'esbuild'), ['main.js', '--bundle', '--format=esm', '--platform=browser', '--loader:.wasm=file', `--outdir=${out}`], { cwd: at, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  writeFileSync(join(out, 'index.html'), '<!doctype html><script type="module" src="./main.js"></script>');
  await enrollsIn(out, 'bundle-esbuild-1');
});

test('Vite: scepkit/manual + scepkit/wasm?url build, load and enroll in Chromium', async () => {
  const at = app('vite-app', `import { init, enroll, inspect } from 'scepkit/manual';
import wasmUrl from 'scepkit/wasm?url';
import fullWasmUrl from 'scepkit/wasm-full?url';
await init({ wasmUrl, fullWasmUrl });
${ENROLL}`, {
    'index.html': '<!doctype html><script type="module" src="/main.js"></script>',
    // Top-level await needs an ES2022 target; the build makes no network call.
    'vite.config.js': "export default { build: { target: 'es2022', outDir: 'dist' }, logLevel: 'warn' };",
  });
  const r = spawnSync(join(BIN, 'vite'), ['build'], { cwd: at, encoding: 'utf8', timeout: 180_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  await enrollsIn(join(at, 'dist'), 'bundle-vite-1');
});

test('webpack 5: scepkit/manual + scepkit/wasm (asset/resource) build, load and enroll in Chromium', async () => {
  const at = app('webpack-app', `import { init, enroll, inspect } from 'scepkit/manual';
import wasmUrl from 'scepkit/wasm';
import fullWasmUrl from 'scepkit/wasm-full';
await init({ wasmUrl, fullWasmUrl });
${ENROLL}`, {
    // The asset rule copies the wasm to dist/ and gives its URL (resolved against the script: publicPath 'auto').
    'webpack.config.js': `export default {
  mode: 'production',
  entry: './main.js',
  module: { rules: [{ test: /\\.wasm$/, type: 'asset/resource' }] },
};`,
  });
  const r = spawnSync(join(BIN, 'webpack'), ['--no-color'], { cwd: at, encoding: 'utf8', timeout: 180_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  writeFileSync(join(at, 'dist', 'index.html'), '<!doctype html><script src="./main.js"></script>');
  await enrollsIn(join(at, 'dist'), 'bundle-webpack-1');
});

test('Rollup 4: scepkit/manual + scepkit/wasm (node-resolve, plugin-url limit 0) build, load and enroll in Chromium', async () => {
  const at = app('rollup-app', `import { init, enroll, inspect } from 'scepkit/manual';
import wasmUrl from 'scepkit/wasm';            // @rollup/plugin-url copies it beside the bundle and gives its name
import fullWasmUrl from 'scepkit/wasm-full';
await init({ wasmUrl: new URL(wasmUrl, import.meta.url), fullWasmUrl: new URL(fullWasmUrl, import.meta.url) });
${ENROLL}`, {
    'rollup.config.js': `import { nodeResolve } from '@rollup/plugin-node-resolve';
import url from '@rollup/plugin-url';
export default {
  input: 'main.js',
  output: { dir: 'dist', format: 'es' },
  plugins: [nodeResolve({ browser: true }), url({ include: ['**/*.wasm'], limit: 0 })],
};`,
  }, ['@rollup/plugin-node-resolve', '@rollup/plugin-url']);
  const r = spawnSync(join(BIN, 'rollup'), ['--config', '--silent'], { cwd: at, encoding: 'utf8', timeout: 180_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  writeFileSync(join(at, 'dist', 'index.html'), '<!doctype html><script type="module" src="./main.js"></script>');
  await enrollsIn(join(at, 'dist'), 'bundle-rollup-1');
});
