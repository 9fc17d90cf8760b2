// The enrollment page in Debian's Chromium (playwright-core) against `make run`'s Worker on 127.0.0.1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { openssl, startWorker } from '../interop/helpers.mjs';

const { chromium } = createRequire(new URL('../../worker/package.json', import.meta.url))('playwright-core');
const OUT = new URL('../out/browser/', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'scepkit-page-'));
let worker;
let browser;

before(async () => {
  mkdirSync(OUT, { recursive: true });
  worker = await startWorker(dir);
  await worker.profile('approval', { manual_approval: true });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    // Playwright starts every launch with a fresh, empty user-data-dir of its own.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  worker?.stop();
});

async function openPage() {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  const external = [];
  const wasm = [];
  page.on('request', (r) => !r.url().startsWith(worker.base) && !r.url().startsWith('blob:') && !r.url().startsWith('data:') && external.push(r.url()));
  page.on('request', (r) => r.url().endsWith('.wasm') && wasm.push(new URL(r.url()).pathname));
  await page.goto(`${worker.base}/?poll=300`);
  await ready(page);
  return { page, context, external, wasm };
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
  const { page, context, external, wasm } = await openPage();
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

test('served from another static host pointed at the SCEP URL, it still enrolls (CORS)', async () => {
  const root = new URL('../../www/dist/', import.meta.url).pathname;
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.wasm': 'application/wasm' };
  const host = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname.replace(/\/$/, '/index.html');
    try {
      const body = readFileSync(join(root, path));
      res.writeHead(200, { 'content-type': types[extname(path)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => host.listen(0, '127.0.0.1', r));
  try {
    const { enrollment_code: code } = await worker.seatWithCode('page-static-1', 'default');
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`http://127.0.0.1:${host.address().port}/?server=${encodeURIComponent(worker.base)}`);
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
