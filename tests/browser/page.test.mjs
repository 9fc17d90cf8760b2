// The enrollment page in Debian's Chromium (playwright-core) against `make run`'s Worker on 127.0.0.1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { freePort, openssl, startWorker, launchChromium } from '../interop/helpers.mjs';

const OUT = new URL('../out/browser/', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'scepkit-page-'));
let worker;
let browser;
// The same Worker under another origin (localhost, not 127.0.0.1): a second SCEP server its operator allows.
let other;

before(async () => {
  mkdirSync(OUT, { recursive: true });
  const port = await freePort();
  other = `http://localhost:${port}`;
  worker = await startWorker(dir, { port, allowedServers: [other, 'http://127.0.0.1:9'] });
  await worker.profile('approval', { manual_approval: true });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  worker?.stop();
});

async function openPage(query = '') {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  const { external, violations } = watch(page, worker.base);
  const wasm = [];
  page.on('request', (r) => r.url().endsWith('.wasm') && wasm.push(new URL(r.url()).pathname));
  const response = await page.goto(`${worker.base}/?poll=300${query}`);
  await ready(page);
  return { page, context, external, wasm, violations, response };
}

/** Every request the page makes outside `origin` (blob: and data: stay in the page), and every CSP violation. */
function watch(page, origin) {
  const external = [];
  const violations = [];
  page.on('request', (r) => new URL(r.url()).origin !== origin && !/^(blob|data):/.test(r.url()) && external.push(r.url()));
  page.on('console', (m) => /Content Security Policy/i.test(m.text()) && violations.push(m.text()));
  return { external, violations };
}

/** The page is ready once it has read the profiles: Enroll becomes enabled. */
const ready = (page) => page.locator('#enroll:not([disabled])').waitFor();

async function enroll(page, seat, code) {
  await page.getByLabel('Seat ID').fill(seat);
  await page.getByLabel('Enrollment code').fill(code);
  await page.getByRole('button', { name: 'Enroll' }).click();
}

async function download(page, trigger, name) {
  const [d] = await Promise.all([page.waitForEvent('download'), trigger()]);
  assert.equal(d.suggestedFilename(), name);
  const path = join(dir, name);
  await d.saveAs(path);
  return path;
}

test('a person enrolls with a seat id and a fresh code, and downloads a working certificate, key and .p12', async () => {
  const { enrollment_code: code } = await worker.seatWithCode('page-laptop-1', 'default');
  const { page, context, external, wasm, violations, response } = await openPage();
  assert.match(response.headers()['content-security-policy'], /script-src 'self' 'wasm-unsafe-eval' 'sha256-/, 'the page runs under its CSP');
  assert.deepEqual(wasm, ['/scepkit/wasm-client/scepkit_bg.wasm'], 'the page loads only the client build of the core');
  await enroll(page, 'page-laptop-1', code);
  await page.getByRole('heading', { name: 'Your certificate' }).waitFor({ timeout: 60_000 });
  assert.equal(await page.locator('#cert-subject').textContent(), 'CN=page-laptop-1');
  assert.equal(await page.locator('#cert-issuer').textContent(), 'CN=scepkit dev CA,O=scepkit');
  assert.match(await page.locator('#cert-fingerprint').textContent(), /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  assert.equal(await page.getByRole('status').textContent(), 'Certificate received.');
  await page.screenshot({ path: join(OUT, 'success.png'), fullPage: true });

  const cert = await download(page, () => page.getByRole('link', { name: 'certificate.pem' }).click(), 'certificate.pem');
  const chain = await download(page, () => page.getByRole('link', { name: 'chain.pem' }).click(), 'chain.pem');
  const key = await download(page, () => page.getByRole('link', { name: 'private-key.pem' }).click(), 'private-key.pem');
  const verify = openssl('verify', '-CAfile', chain, cert);
  assert.equal(verify.status, 0, verify.stdout + verify.stderr);
  assert.equal(openssl('x509', '-in', cert, '-noout', '-pubkey').stdout, openssl('pkey', '-in', key, '-pubout').stdout);

  await page.getByLabel('Password for certificate.p12').fill('correct horse');
  const p12 = await download(page, () => page.getByRole('button', { name: 'Download certificate.p12' }).click(), 'certificate.p12');
  const info = openssl('pkcs12', '-info', '-in', p12, '-passin', 'pass:correct horse', '-nodes');
  assert.equal(info.status, 0, info.stderr);
  assert.match(info.stdout, /friendlyName: page-laptop-1/);
  assert.deepEqual(external, [], 'no request leaves for a third party');
  assert.deepEqual(violations, [], 'nothing the page does is blocked by its CSP');
  await context.close();
});

test('a used code, a wrong code and an unknown seat each show the message and resolution, and keep the form', async () => {
  const { enrollment_code: code } = await worker.seatWithCode('page-laptop-2', 'default');
  const { page, context } = await openPage();
  await enroll(page, 'page-laptop-2', code);
  await page.getByRole('heading', { name: 'Your certificate' }).waitFor({ timeout: 60_000 });

  const cases = [
    ['page-laptop-2', code, 'Challenge password is invalid - does not match the value configured by the Administrator', 'use the valid, unredeemed enrollment code of that seat'],
    ['page-laptop-2', 'AAAAA-BBBBB-CCCCC-DDDDD', 'Challenge password is invalid - does not match the value configured by the Administrator', 'use the valid, unredeemed enrollment code of that seat'],
    ['nobody-here', code, 'Could not find seat with identifier = nobody-here using subject.common_name as seat id mapping', 'create the seat and enroll it against the SCEP profile (one by one or by CSV upload)'],
  ];
  for (const [i, [seat, c, message, resolution]] of cases.entries()) {
    // The wrong code is typed for a seat that does have an open enrollment (a fresh one).
    if (i === 1) await worker.api('POST', '/enrollments', { seat_id: seat, profile: 'default' });
    await enroll(page, seat, c);
    const failure = page.getByRole('heading', { name: 'Enrollment failed' });
    await failure.waitFor({ timeout: 60_000 });
    assert.equal(await page.locator('#failure-message').textContent(), message);
    assert.equal(await page.locator('#failure-resolution').textContent(), resolution);
    assert.match(await page.locator('#failure-tid').textContent(), /^[0-9a-f]{64}$/);
    assert.equal(await page.getByLabel('Seat ID').inputValue(), seat, 'the form stays filled');
    assert.equal(await page.getByLabel('Enrollment code').inputValue(), c);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'failure', 'focus moves to the explanation');
    if (i === 0) await page.screenshot({ path: join(OUT, 'failure-used-code.png'), fullPage: true });
  }
  await context.close();
});

test('manual approval: the page waits on the approval step, then receives the certificate', async () => {
  const enrollment = await worker.seatWithCode('page-laptop-3', 'approval');
  const { page, context } = await openPage();
  assert.equal(await page.getByLabel('Profile').isVisible(), true, 'several profiles: a Profile choice');
  await page.getByLabel('Profile').selectOption('approval');
  await enroll(page, 'page-laptop-3', enrollment.enrollment_code);
  await page.locator('#steps li[data-step="pending"][aria-current="step"]').waitFor({ timeout: 60_000 });
  assert.equal(await page.getByRole('button', { name: 'Cancel' }).isVisible(), true);
  await page.screenshot({ path: join(OUT, 'waiting-for-approval.png'), fullPage: true });
  const approved = await worker.api('POST', `/enrollments/${enrollment.id}/approve`);
  assert.equal(approved.status, 200, JSON.stringify(approved.json));
  await page.getByRole('heading', { name: 'Your certificate' }).waitFor({ timeout: 60_000 });
  assert.equal(await page.locator('#cert-subject').textContent(), 'CN=page-laptop-3');
  await context.close();
});

test('keyboard only, at phone width: tab to the fields, type, press Enter', async () => {
  const { enrollment_code: code } = await worker.seatWithCode('page-phone-1', 'default');
  const context = await browser.newContext({ viewport: { width: 375, height: 740 }, isMobile: true });
  const page = await context.newPage();
  await page.goto(`${worker.base}/`);
  await ready(page);
  // Tab order: profile (several exist here) → seat → code → Enroll.
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'profile');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'seat');
  await page.keyboard.type('page-phone-1');
  await page.keyboard.press('Tab');
  await page.keyboard.type(code);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Your certificate' }).waitFor({ timeout: 60_000 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  assert.equal(overflow, false, 'nothing is wider than the phone');
  await page.screenshot({ path: join(OUT, 'phone-success.png'), fullPage: true });
  await context.close();
});

/**
 * www/dist on a plain static host (another origin, no headers of its own); its operator's page-config.json is
 * `config` when set, else there is none.
 */
async function staticHost() {
  const root = new URL('../../www/dist/', import.meta.url).pathname;
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.wasm': 'application/wasm' };
  const host = { config: null };
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname.replace(/\/$/, '/index.html');
    if (path === '/page-config.json' && host.config) return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(host.config));
    try {
      const body = readFileSync(join(root, path));
      res.writeHead(200, { 'content-type': types[extname(path)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  host.origin = `http://127.0.0.1:${server.address().port}`;
  host.close = () => server.close();
  return host;
}

/** A server nobody allowed, as an attacker would run it: it answers the page like a SCEP server and counts. */
async function attackerServer() {
  const hits = [];
  const server = createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    const cors = { 'access-control-allow-origin': '*', 'access-control-allow-headers': 'content-type' };
    if (req.url.startsWith('/scep-profiles.json')) return res.writeHead(200, { ...cors, 'content-type': 'application/json' }).end(JSON.stringify({ default: 'default', profiles: [{ name: 'default', subject: 'CN=$USERNAME', rsa_nbits: 2048 }] }));
    res.writeHead(204, cors).end();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { hits, port: server.address().port, close: () => server.close() };
}

/** Opens `url` and waits for the page to refuse its ?server=: the message names it and says what to do. */
async function expectRefusal(page, url, requested) {
  await page.goto(url);
  await page.getByRole('heading', { name: 'Enrollment failed' }).waitFor({ timeout: 10_000 });
  const shown = requested.length > 100 ? `${requested.slice(0, 100)}…` : requested;
  assert.equal(
    await page.locator('#failure-message').textContent(),
    `This page contacts only the SCEP servers its operator allows, and “${shown}” in its address is not one of them. Nothing was sent to it.`,
    requested,
  );
  assert.match(await page.locator('#failure-resolution').textContent(), /^open the enrollment page from the link your administrator gave you; .*ask your administrator to allow this server/);
  assert.equal(await page.locator('#enroll').isDisabled(), true, 'nothing to enroll with');
  assert.equal(await page.locator('#server-name').textContent(), 'the SCEP server', 'the refused server is not presented as the one in use');
}

test('a link that points the page at a server its operator did not allow is refused, and nothing is sent there', async () => {
  const attacker = await attackerServer();
  const evil = `http://127.0.0.1:${attacker.port}`;
  const port = new URL(other).port;
  // Each is refused unless its exact origin (scheme, host, port) is allowed; allowed: this Worker, `other`, :9.
  const links = [
    evil,
    evil.toUpperCase(), // HTTP://127.0.0.1:…: the same origin as evil, in capitals
    `${evil}/`,
    `${other}/scep`, // an allowed origin, but more than an origin
    `${other}?x=1`,
    `${other}#x`,
    `${evil}/${other}`,
    `${other}@127.0.0.1:${attacker.port}`, // userinfo: the host is evil's
    `http://user:pass@localhost:${port}`,
    `//127.0.0.1:${attacker.port}`,
    `127.0.0.1:${attacker.port}`,
    `javascript:fetch('${evil}/x')`,
    `data:text/plain,${evil}`,
    `ftp://localhost:${port}`,
    `ws://localhost:${port}`,
    `https://localhost:${port}`, // an allowed host under another scheme
    `http://localhost:${attacker.port}`, // an allowed host on another port
    `http://localhost.:${port}`, // another origin that resolves to the same host
    `http://*.localhost:${port}`,
    '',
    `${evil}/${'x'.repeat(200)}`,
  ];
  const context = await browser.newContext();
  const page = await context.newPage();
  const { external, violations } = watch(page, worker.base);
  try {
    for (const link of links) await expectRefusal(page, `${worker.base}/?server=${encodeURIComponent(link)}`, link);
    // The page asked its own origin which servers are allowed, and nothing else.
    assert.deepEqual(external, []);
    assert.deepEqual(attacker.hits, [], 'the attacker saw no request at all');
    assert.deepEqual(violations, [], 'refused by the page itself, before its CSP had to');

    // A page on another static host with no page-config.json beside it contacts only its own origin.
    const host = await staticHost();
    try {
      const watched = watch(page, host.origin);
      for (const link of [evil, worker.base]) await expectRefusal(page, `${host.origin}/?server=${encodeURIComponent(link)}`, link);
      assert.deepEqual(watched.external, []);
      assert.deepEqual(attacker.hits, []);
    } finally {
      host.close();
    }
  } finally {
    attacker.close();
    await context.close();
  }
});

test('a server the operator allows is used under the page\'s CSP (its origin in connect-src), and only that server', async () => {
  const { enrollment_code: code } = await worker.seatWithCode('page-other-1', 'default');
  // As written in a link: the host in capitals, a trailing slash. It is still exactly the allowed origin.
  const { page, context, external, violations } = await openPage(`&server=${encodeURIComponent(`${other.toUpperCase()}/`)}`);
  assert.equal(await page.locator('#server-name').textContent(), new URL(other).host);
  await enroll(page, 'page-other-1', code);
  await page.getByRole('heading', { name: 'Your certificate' }).waitFor({ timeout: 60_000 });
  assert.equal(await page.locator('#cert-subject').textContent(), 'CN=page-other-1');
  assert.ok(external.length >= 2, 'profiles and SCEP went to the allowed server');
  assert.deepEqual(external.filter((url) => new URL(url).origin !== other), []);
  assert.deepEqual(violations, []);
  await context.close();
});

test('the Worker sends the page, its scripts and wasm with the CSP, nosniff and no referrer; its API nosniff and no-store', async () => {
  const page = await fetch(`${worker.base}/`);
  const csp = page.headers.get('content-security-policy');
  assert.match(csp, /(^|; )default-src 'self'(;|$)/);
  assert.match(csp, /(^|; )script-src 'self' 'wasm-unsafe-eval' 'sha256-[A-Za-z0-9+/]{43}='(;|$)/);
  assert.match(csp, new RegExp(`(^|; )connect-src 'self' ${other} http://127\\.0\\.0\\.1:9(;|$)`), 'connect-src: itself and exactly the allowed servers');
  assert.match(csp, /(^|; )frame-ancestors 'none'(;|$)/);
  for (const path of ['/', '/app.js', '/scepkit/entry/browser.js', '/scepkit/wasm-client/scepkit.js', '/scepkit/wasm-client/scepkit_bg.wasm', '/style.css']) {
    const res = await fetch(`${worker.base}${path}`);
    assert.equal(res.status, 200, path);
    assert.match(res.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/, path);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer', path);
    await res.arrayBuffer();
  }
  assert.deepEqual(await (await fetch(`${worker.base}/page-config.json`)).json(), { allowed_servers: [other, 'http://127.0.0.1:9'] });
  assert.equal((await fetch(`${worker.base}/_headers`)).status, 404, '_headers configures the assets and is not one');
  for (const path of ['/api/v1/seats', '/api/v1/openapi.json']) {
    const res = await fetch(`${worker.base}${path}`, { headers: { authorization: `Bearer ${worker.token}` } });
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
    assert.equal(res.headers.get('cache-control'), 'no-store', path);
    await res.arrayBuffer();
  }
  const caps = await fetch(`${worker.base}/scep?operation=GetCACaps`);
  assert.equal(caps.headers.get('x-content-type-options'), 'nosniff');
  await caps.arrayBuffer();
});

test('served from another static host whose operator allows the SCEP server in page-config.json, it enrolls (CORS)', async () => {
  const host = await staticHost();
  host.config = { allowed_servers: [worker.base] };
  try {
    const { enrollment_code: code } = await worker.seatWithCode('page-static-1', 'default');
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${host.origin}/?server=${encodeURIComponent(worker.base)}`);
    await ready(page);
    await enroll(page, 'page-static-1', code);
    await page.getByRole('heading', { name: 'Your certificate' }).waitFor({ timeout: 60_000 });
    assert.equal(await page.locator('#cert-subject').textContent(), 'CN=page-static-1');
    await context.close();
  } finally {
    host.close();
  }
});

test('an unreachable server and a CA fingerprint mismatch are explained', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${worker.base}/?server=${encodeURIComponent('http://127.0.0.1:9')}`);
  await page.getByRole('heading', { name: 'Enrollment failed' }).waitFor();
  assert.match(await page.locator('#failure-message').textContent(), /^Could not read the enrollment profiles from http:\/\/127\.0\.0\.1:9/);
  assert.match(await page.locator('#failure-resolution').textContent(), /check your network connection/);

  const { enrollment_code: code } = await worker.seatWithCode('page-pinned-1', 'default');
  await page.goto(`${worker.base}/?fingerprint=${'ab'.repeat(32)}`);
  await ready(page);
  await enroll(page, 'page-pinned-1', code);
  await page.getByRole('heading', { name: 'Enrollment failed' }).waitFor({ timeout: 60_000 });
  assert.match(await page.locator('#failure-message').textContent(), /does not match the pinned/);
  assert.match(await page.locator('#failure-resolution').textContent(), /someone may be intercepting/);
  // Nothing was sent: the code is still unredeemed.
  const enrollments = (await worker.api('GET', '/enrollments?seat_id=page-pinned-1')).json.data;
  assert.equal(enrollments[0].status, 'CREATED');
  await context.close();
});
