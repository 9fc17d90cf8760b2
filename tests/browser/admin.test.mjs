// The admin console (/admin/) in Debian's Chromium (playwright-core) against `make run`'s Worker on 127.0.0.1,
// driven by roles and accessible names as a person with a keyboard or a screen reader would, with micromdm's
// scepclient enrolling against what the console set up.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openssl, run, startWorker, launchChromium } from '../interop/helpers.mjs';

const OUT = new URL('../out/admin/', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'scepkit-admin-'));
// scepclient sends its own OU, O and C (and DES with SHA-1): the profiles it enrolls on name them.
const MDM_SUBJECT = 'CN=$USERNAME,OU=MDM,O=scep-client,C=US';
const USED_CODE = 'Challenge password is invalid - does not match the value configured by the Administrator';
let worker;
let browser;

before(async () => {
  mkdirSync(OUT, { recursive: true });
  worker = await startWorker(dir);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  worker?.stop();
});

/** Every request the page makes outside `origin` (blob: and data: stay in the page), and every CSP violation. */
function watch(page, origin) {
  const external = [];
  const violations = [];
  page.on('request', (r) => new URL(r.url()).origin !== origin && !/^(blob|data):/.test(r.url()) && external.push(r.url()));
  page.on('console', (m) => /Content Security Policy/i.test(m.text()) && violations.push(m.text()));
  return { external, violations };
}

async function openConsole(options = {}) {
  const context = await browser.newContext({ acceptDownloads: true, ...options });
  const page = await context.newPage();
  const watched = watch(page, worker.base);
  const response = await page.goto(`${worker.base}/admin/`);
  return { context, page, response, ...watched };
}

async function signIn(page) {
  await page.getByLabel('Admin token').fill(worker.token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Profiles', level: 1 }).waitFor();
}

/** Waits until the live region says something matching `pattern`; returns what it says. */
async function status(page, pattern, timeout = 15_000) {
  const region = page.getByRole('status');
  await region.filter({ hasText: pattern }).waitFor({ timeout });
  return region.textContent();
}

/** The section on screen (fields are looked up in it: several sections have a "Seat ID"). */
const view = (page) => page.locator('section.view:not([hidden])');

/** Follows the navigation link to `section`, checks focus lands on its heading, and waits for it to load. */
async function go(page, section) {
  await page.getByRole('link', { name: section, exact: true }).click();
  await page.getByRole('heading', { name: section, level: 1 }).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.tagName), 'H1', `focus moves to the ${section} heading`);
  await page.locator('section.view:not([hidden])[aria-busy="false"]').waitFor();
}

/** Answers the confirmation dialog with its confirming button, named `name`; returns its question. */
async function confirm(page, name) {
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  const question = await dialog.locator('p').textContent();
  await dialog.getByRole('button', { name, exact: true }).click();
  await dialog.waitFor({ state: 'hidden' });
  return question;
}

async function download(page, trigger, name) {
  const [d] = await Promise.all([page.waitForEvent('download'), trigger()]);
  assert.equal(d.suggestedFilename(), name);
  const path = join(dir, `${Date.now()}-${name}`);
  await d.saveAs(path);
  return path;
}

/** The table row of `region` that contains `text`. */
const row = (page, region, text) => page.getByRole('region', { name: region }).getByRole('row').filter({ hasText: text });

/** Fills the profile form (Profiles section) and creates the profile. */
async function createProfile(page, { name, ca = 'default', subject = MDM_SUBJECT, digest = 'sha1', legacy = true, manual = false }) {
  const form = page.getByRole('form', { name: 'New profile' });
  await form.getByLabel('Name', { exact: true }).fill(name);
  await form.getByLabel('CA identity name').fill(ca);
  await form.getByLabel('Subject', { exact: true }).fill(subject);
  await form.getByLabel('Digest').selectOption(digest);
  await form.getByLabel('Legacy (SHA-1, DES, 1024-bit keys)').setChecked(legacy);
  await form.getByLabel('Manual approval').setChecked(manual);
  await form.getByRole('button', { name: 'Create profile' }).click();
  await status(page, `Profile ${name} created.`);
  await row(page, 'Profile list', name).first().waitFor();
}

/** Issues a code in the Enrollments section and reads it from the screen. */
async function issueCode(page, seat, profile) {
  const form = page.getByRole('form', { name: 'Issue an enrollment code' });
  await form.getByLabel('Seat ID').fill(seat);
  await form.getByLabel('Profile').selectOption(profile);
  await form.getByRole('button', { name: 'Issue code' }).click();
  await status(page, `Enrollment code issued for ${seat}. It is not shown again.`);
  const code = await page.getByLabel('Enrollment code', { exact: true }).inputValue();
  assert.match(code, /^[0-9A-Z]{5}(-[0-9A-Z]{5}){3}$/);
  return code;
}

/** micromdm's scepclient, as tests/interop/worker.test.mjs runs it (cwd a fresh directory). */
function scepclientArgs(profile, cn, code, work) {
  mkdirSync(work, { recursive: true });
  return [
    ['-server-url', `${worker.base}/scep/${profile}`, '-challenge', code, '-cn', cn, '-organization', 'scep-client', '-ou', 'MDM', '-country', 'US',
      '-private-key', join(work, 'key.pem'), '-certificate', join(work, 'cert.pem')],
    { cwd: work },
  ];
}
const scepclient = (profile, cn, code, work) => run('scepclient', ...scepclientArgs(profile, cn, code, work));

/** Nothing is wider than the phone (a mobile viewport widens to its content, so the 375 px are the measure). */
async function noHorizontalScroll(page, what) {
  const [scrollWidth, innerWidth] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  assert.ok(scrollWidth <= 375 && innerWidth <= 375, `${what}: ${scrollWidth} px of content in a ${innerWidth} px viewport, wider than the phone`);
}

test('the console: sign in, profiles, seats by CSV, codes, an enrollment, the audit log, an approval, a revocation', async () => {
  const { context, page, response, external, violations } = await openConsole();
  let held;
  let rejected;
  try {
    assert.match(response.headers()['content-security-policy'], /(^|; )form-action 'none'(;|$)/, 'the console runs under the page CSP');

    // A wrong token is refused and nothing is kept; the right one is kept in this tab only.
    await page.getByLabel('Admin token').fill('not-the-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await status(page, 'Invalid token');
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    await signIn(page);
    assert.deepEqual(await page.evaluate(() => [Object.values(sessionStorage), localStorage.length]), [[worker.token], 0]);
    assert.ok(!page.url().includes(worker.token), 'the token is never in a URL');

    // Profiles: a refused field is shown next to it; then two profiles scepclient can enroll on.
    const profileForm = page.getByRole('form', { name: 'New profile' });
    await profileForm.getByLabel('Name', { exact: true }).fill('console-bad');
    await profileForm.getByLabel('OTP password').fill('short');
    await profileForm.getByLabel('RSA key size').selectOption('2048');
    await profileForm.getByRole('button', { name: 'Create profile' }).click();
    await status(page, /Invalid Object/);
    const user = profileForm.getByLabel('OTP username');
    assert.equal(await user.getAttribute('aria-invalid'), 'true');
    assert.match(await page.locator(`#${await user.getAttribute('id')}-error`).textContent(), /is required with a password/);
    assert.equal(await page.evaluate(() => document.activeElement.id), await user.getAttribute('id'), 'focus goes to the first refused field');
    await profileForm.getByLabel('OTP password').fill('');
    await createProfile(page, { name: 'console-legacy' });
    await createProfile(page, { name: 'console-approval', manual: true });
    // Edited: the form shows what is stored, secrets masked; a change keeps everything else.
    await page.getByRole('button', { name: 'Edit profile console-approval' }).click();
    const editForm = page.getByRole('form', { name: 'Edit profile console-approval' });
    await editForm.waitFor();
    assert.equal(await editForm.getByLabel('Subject', { exact: true }).inputValue(), MDM_SUBJECT);
    assert.equal(await editForm.getByLabel('Manual approval').isChecked(), true);
    await editForm.getByLabel('Validity (days)').fill('400');
    await editForm.getByRole('button', { name: 'Save profile' }).click();
    await status(page, 'Profile console-approval saved.');
    const stored = (await worker.api('GET', '/scep-profiles?name=console-approval')).json.data[0];
    assert.deepEqual([stored.validity_days, stored.manual_approval, stored.legacy, stored.digest, stored.subject], [400, true, true, 'sha1', MDM_SUBJECT]);
    await page.screenshot({ path: join(OUT, 'profiles.png'), fullPage: true });

    // Keyboard: from the top of the page, Tab to "Seats" and press Enter.
    await page.getByRole('button', { name: 'Sign out' }).focus();
    for (let i = 0; i < 5 && (await page.evaluate(() => document.activeElement.textContent)) !== 'Seats'; i++) await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Seats');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Seats', level: 1 }).waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.id), 'seats-title', 'focus moves to the section heading');
    assert.equal(new URL(page.url()).hash, '#seats');
    await page.locator('#seats[aria-busy="false"]').waitFor();

    // Seats by CSV: a seat id with a leading space is refused on its row; the others are created.
    const csv = 'seat_id,profile\r\nconsole-mdm-1,\r\n console-space,\r\nconsole-held-1,\r\nconsole-csv-2,console-legacy\r\n';
    await page.getByLabel('CSV file').setInputFiles({ name: 'seats.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await page.getByRole('button', { name: 'Upload' }).click();
    assert.equal(await status(page, /^Upload:/), 'Upload: 3 created, 1 failed.');
    const bad = row(page, 'Upload results', 'console-space');
    assert.match(await bad.textContent(), /error/);
    assert.match(await bad.textContent(), /seat_id must not start or end with whitespace/);
    assert.match(await row(page, 'Upload results', 'console-mdm-1').textContent(), /created/);
    const codes = readFileSync(await download(page, () => page.getByRole('button', { name: 'Download new codes (CSV)' }).click(), 'seat-codes.csv'), 'utf8');
    assert.match(codes, /^seat_id,profile,enrollment_code\r\nconsole-csv-2,console-legacy,[0-9A-Z]{5}(-[0-9A-Z]{5}){3}\r\n$/);
    await view(page).getByLabel('Seat ID', { exact: true }).fill('console-single-1');
    await page.getByRole('button', { name: 'Add seat' }).click();
    await status(page, 'Seat console-single-1 added.');
    await view(page).getByLabel('Seat ID starts with').fill('console-');
    await page.getByRole('button', { name: 'Search' }).click();
    await row(page, 'Seat list', 'console-single-1').waitFor();
    assert.equal(await row(page, 'Seat list', 'console-').count(), 4);
    await page.screenshot({ path: join(OUT, 'seats.png'), fullPage: true });

    // Enrollments: a code shown once, copied, as .mobileconfig, exported.
    await go(page, 'Enrollments');
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: worker.base });
    const code = await issueCode(page, 'console-mdm-1', 'console-legacy');
    assert.equal(await page.locator('#new-code').getByText('it is not shown again').isVisible(), true);
    await page.getByRole('button', { name: 'Copy', exact: true }).click();
    await status(page, 'Enrollment code copied.');
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), code);
    const mobileconfig = readFileSync(await download(page, () => page.getByRole('button', { name: 'Download .mobileconfig' }).click(), 'console-mdm-1.mobileconfig'), 'utf8');
    assert.match(mobileconfig, /com\.apple\.security\.scep/);
    assert.ok(mobileconfig.includes(code), 'the profile carries the challenge');
    const exported = readFileSync(await download(page, () => page.getByRole('button', { name: 'Export codes of this session (CSV)' }).click(), 'enrollment-codes.csv'), 'utf8');
    assert.ok(exported.includes(`console-mdm-1,console-legacy,${code}`), exported);
    await row(page, 'Enrollment list', 'console-mdm-1').filter({ hasText: 'CREATED' }).waitFor();
    await page.screenshot({ path: join(OUT, 'enrollments.png'), fullPage: true });

    // scepclient enrolls with the code from the screen; the same code again is refused.
    const first = scepclient('console-legacy', 'console-mdm-1', code, join(dir, 'mdm-1'));
    assert.equal(first.status, 0, first.stdout + first.stderr);
    const again = scepclient('console-legacy', 'console-mdm-1', code, join(dir, 'mdm-1-again'));
    assert.notEqual(again.status, 0);

    // The audit log opens on Failures, with the resolution; the Success of the enrollment is there too.
    await go(page, 'Audit log');
    assert.equal(await view(page).getByLabel('Status').inputValue(), 'Failure');
    const failure = row(page, 'Audit log entries', 'console-mdm-1').filter({ hasText: USED_CODE }).first();
    await failure.waitFor();
    assert.match(await failure.textContent(), /challenge_invalid/);
    assert.match(await failure.textContent(), /use the valid, unredeemed enrollment code of that seat/);
    await page.screenshot({ path: join(OUT, 'audit-log.png'), fullPage: true });
    await view(page).getByLabel('Status').selectOption({ label: 'All' });
    await view(page).getByLabel('Seat ID').fill('console-mdm-1');
    await page.getByRole('button', { name: 'Apply' }).click();
    const issued = row(page, 'Audit log entries', 'issued').filter({ hasText: 'Success' }).first();
    await issued.waitFor();
    assert.match(await issued.textContent(), /Success/);
    const auditCsv = readFileSync(await download(page, () => page.getByRole('button', { name: 'Export CSV' }).click(), 'audit-log.csv'), 'utf8');
    assert.match(auditCsv, /^id,time,status,operation,code,profile,seat_id,transaction_id,message,resolution\r\n/);
    assert.match(auditCsv, /,Success,[^,]*,issued,console-legacy,console-mdm-1,/);
    assert.ok(auditCsv.includes(USED_CODE));
    // Since tomorrow (a datetime-local, sent as RFC 3339): nothing yet.
    const tomorrow = new Date(Date.now() + 86_400_000);
    const local = new Date(tomorrow.getTime() - tomorrow.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
    await view(page).getByLabel('Since').fill(local);
    await page.getByRole('button', { name: 'Apply' }).click();
    await view(page).getByText('No entries match.').waitFor();

    // A held request: scepclient polls (every 30 s) until it is approved in the console.
    await go(page, 'Enrollments');
    const heldCode = await issueCode(page, 'console-held-1', 'console-approval');
    held = spawn('scepclient', ...scepclientArgs('console-approval', 'console-held-1', heldCode, join(dir, 'held-1')));
    let heldOutput = '';
    held.stdout.on('data', (d) => (heldOutput += d));
    held.stderr.on('data', (d) => (heldOutput += d));
    const exited = new Promise((resolve) => held.on('exit', (code) => resolve(code)));
    await go(page, 'Approvals');
    const card = page.getByRole('listitem').filter({ has: page.getByRole('heading', { name: 'console-held-1 on console-approval' }) });
    for (let i = 0; i < 30 && !(await card.count()); i++) {
      await new Promise((r) => setTimeout(r, 500));
      await page.getByRole('button', { name: 'Refresh' }).click();
    }
    await card.waitFor({ timeout: 5_000 });
    const shown = await card.textContent();
    for (const fact of ['CN=console-held-1,OU=MDM,O=scep-client,C=US', 'RSA 2048 bits', 'PKCSReq', 'console-approval']) assert.ok(shown.includes(fact), `${fact} in ${shown}`);
    await page.screenshot({ path: join(OUT, 'approvals.png'), fullPage: true });
    await card.getByRole('button', { name: 'Approve' }).click();
    await status(page, /^Approved the request of console-held-1: certificate [0-9a-f]+ issued\.$/);
    const exitCode = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 60_000))]);
    assert.equal(exitCode, 0, `scepclient after approval: ${heldOutput}`);
    assert.match(openssl('x509', '-in', join(dir, 'held-1', 'cert.pem'), '-noout', '-subject').stdout, /CN ?= ?console-held-1/);

    // Another held request is rejected with a reason: confirmed, then the requester's next poll and the audit say it.
    await go(page, 'Enrollments');
    const rejectCode = await issueCode(page, 'console-single-1', 'console-approval');
    rejected = spawn('scepclient', ...scepclientArgs('console-approval', 'console-single-1', rejectCode, join(dir, 'rejected-1')));
    await go(page, 'Approvals');
    const other = page.getByRole('listitem').filter({ has: page.getByRole('heading', { name: 'console-single-1 on console-approval' }) });
    for (let i = 0; i < 30 && !(await other.count()); i++) {
      await new Promise((r) => setTimeout(r, 500));
      // Each refresh is awaited: a list rendered late would replace the reason typed below.
      const listed = page.waitForResponse((r) => r.url().includes('/api/v1/transactions'));
      await page.getByRole('button', { name: 'Refresh' }).click();
      await listed;
      await new Promise((r) => setTimeout(r, 200));
    }
    await other.getByLabel('Reason for rejecting').fill('not one of our devices');
    assert.equal(await other.getByLabel('Reason for rejecting').inputValue(), 'not one of our devices');
    await other.getByRole('button', { name: 'Reject' }).click();
    assert.equal(await confirm(page, 'Reject'), 'Reject the request of console-single-1? Reason: not one of our devices');
    await status(page, 'Rejected the request of console-single-1 (reason: not one of our devices).');
    await other.waitFor({ state: 'detached' });
    const decided = await worker.api('GET', '/transactions?seat_id=console-single-1');
    assert.deepEqual(decided.json.data.map((t) => t.status), ['REJECTED']);
    const rejection = (await worker.api('GET', '/audit-logs?seat_id=console-single-1&code=rejected')).json.data;
    assert.equal(rejection[0]?.message, 'Rejected; the next poll gets FAILURE: The request was rejected by an administrator: not one of our devices');

    // Certificates: find, download PEM and DER, revoke with a reason.
    await go(page, 'Certificates');
    await view(page).getByLabel('Seat ID').fill('console-mdm-1');
    await page.getByRole('button', { name: 'Search' }).click();
    const cert = row(page, 'Certificate list', 'console-mdm-1');
    await cert.waitFor();
    await cert.getByRole('button', { name: /^Details of certificate/ }).click();
    await page.getByRole('heading', { name: /^Certificate [0-9a-fA-F]+$/ }).waitFor();
    const serial = (await page.getByRole('heading', { name: /^Certificate [0-9a-fA-F]+$/ }).textContent()).split(' ')[1];
    const pem = await download(page, () => page.getByRole('button', { name: 'Download PEM' }).click(), `${serial}.pem`);
    assert.equal(openssl('x509', '-in', pem, '-noout', '-subject').status, 0);
    const der = await download(page, () => page.getByRole('button', { name: 'Download DER' }).click(), `${serial}.cer`);
    assert.equal(openssl('x509', '-in', der, '-inform', 'DER', '-noout').status, 0);
    assert.equal(openssl('x509', '-in', pem, '-noout', '-fingerprint').stdout, openssl('x509', '-in', join(dir, 'mdm-1', 'cert.pem'), '-noout', '-fingerprint').stdout, 'the certificate scepclient got');
    await view(page).getByLabel('Revocation reason').selectOption('keyCompromise');
    await page.getByRole('button', { name: 'Revoke', exact: true }).click();
    assert.match(await confirm(page, 'Revoke'), /keyCompromise/);
    await status(page, `Certificate ${serial} revoked (keyCompromise).`);
    await cert.filter({ hasText: 'revoked' }).waitFor();
    assert.match(await page.locator('#cert-facts').textContent(), /Revocation reasonkeyCompromise/);
    await page.screenshot({ path: join(OUT, 'certificates.png'), fullPage: true });

    // A seat with a valid certificate cannot be deleted: the API's message is shown.
    await go(page, 'Seats');
    await view(page).getByLabel('Seat ID starts with').fill('console-held');
    await page.getByRole('button', { name: 'Search' }).click();
    await row(page, 'Seat list', 'console-held-1').waitFor();
    await page.getByRole('button', { name: 'Delete seat console-held-1' }).click();
    assert.match(await confirm(page, 'Delete'), /Delete seat console-held-1\?/);
    assert.match(await status(page, 'Reference Not Zero'), /revoke it first/);
    await row(page, 'Seat list', 'console-held-1').waitFor();

    // Certificate authorities: whatever this server has (the CA manager test below drives it).
    await go(page, 'Certificate authorities');
    await page.locator('#ca-list table, #ca-missing:not([hidden])').first().waitFor();
    await page.screenshot({ path: join(OUT, 'certificate-authorities.png'), fullPage: true });

    // Sign out forgets the token.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Admin token').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);

    assert.deepEqual(external, [], 'no request leaves the origin');
    assert.deepEqual(violations, [], 'nothing the console does is blocked by its CSP');
  } finally {
    held?.kill();
    rejected?.kill();
    await context.close();
  }
});

test('at phone width (375 px) every section fits without scrolling sideways', async () => {
  const { context, page, external, violations } = await openConsole({ viewport: { width: 375, height: 740 }, isMobile: true });
  try {
    await signIn(page);
    for (const section of ['Profiles', 'Seats', 'Enrollments', 'Approvals', 'Certificates', 'Audit log', 'Certificate authorities']) {
      await go(page, section);
      await noHorizontalScroll(page, section);
    }
    await go(page, 'Certificates');
    await page.getByRole('button', { name: /^Details of certificate/ }).first().click();
    await page.getByRole('heading', { name: /^Certificate [0-9a-fA-F]+$/ }).waitFor();
    await noHorizontalScroll(page, 'Certificate details');
    await go(page, 'Audit log');
    await view(page).getByLabel('Status').selectOption({ label: 'All' });
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByRole('region', { name: 'Audit log entries' }).waitFor();
    await noHorizontalScroll(page, 'Audit log (all)');
    await page.screenshot({ path: join(OUT, 'phone.png'), fullPage: true });
    assert.deepEqual(external, []);
    assert.deepEqual(violations, []);
  } finally {
    await context.close();
  }
});

test('the CA manager: create a CA, a profile on it, disable it (and see why enrollments fail), roll it over', async () => {
  const list = await worker.api('GET', '/certificate-authorities');
  assert.notEqual(list.status, 404, 'the CA manager API is not there yet');
  assert.equal(list.status, 200, JSON.stringify(list.json));
  const { context, page, external, violations } = await openConsole();
  try {
    await signIn(page);
    await go(page, 'Certificate authorities');
    const caForm = page.getByRole('form', { name: 'New certificate authority' });
    await caForm.getByLabel('CA name').fill('console-ca');
    await caForm.getByLabel('Key and certificate').selectOption('generate');
    await caForm.getByLabel('Subject of the CA').fill('CN=console issuing CA 1,O=scepkit');
    await caForm.getByLabel('Key size').selectOption('2048');
    await caForm.getByRole('button', { name: 'Create CA' }).click();
    await status(page, 'Certificate authority console-ca created: CN=console issuing CA 1,O=scepkit.', 60_000);
    const current = row(page, 'Certificate authority list', 'CN=console issuing CA 1');
    assert.match(await current.textContent(), /current/);
    assert.match(await current.textContent(), /([0-9A-F]{2}:){31}[0-9A-F]{2}/);

    await go(page, 'Profiles');
    await createProfile(page, { name: 'console-on-ca', ca: 'console-ca' });
    const enroll = async (seat, expectOk) => {
      const { enrollment_code: code } = await worker.seatWithCode(seat, 'console-on-ca');
      const r = scepclient('console-on-ca', seat, code, join(dir, seat));
      assert.equal(r.status === 0, expectOk, r.stdout + r.stderr);
      return join(dir, seat, 'cert.pem');
    };
    const issuerOf = (certPath) => openssl('x509', '-in', certPath, '-noout', '-issuer').stdout;
    assert.match(issuerOf(await enroll('console-ca-1', true)), /console issuing CA 1/);

    // Disabled for SCEP: the enrollment fails, and the audit log says why.
    await go(page, 'Certificate authorities');
    await current.getByRole('button', { name: 'Disable console-ca (current)' }).click();
    await confirm(page, 'Disable');
    await status(page, 'console-ca disabled for SCEP.');
    await enroll('console-ca-2', false);
    await go(page, 'Audit log');
    // The envelope is refused before the request inside is read: the row names the profile, not the seat.
    const failure = row(page, 'Audit log entries', 'console-on-ca').filter({ hasText: 'Failed to decrypt a PKCS7 message' }).first();
    await failure.waitFor();
    assert.match(await failure.textContent(), /The CA associated to your profile is not enabled for SCEP operations/);

    // Enabled again, then rolled over: a next CA is staged, then promoted; the old one retires.
    await go(page, 'Certificate authorities');
    await current.getByRole('button', { name: 'Enable console-ca (current)' }).click();
    await status(page, 'console-ca enabled for SCEP.');
    await current.getByRole('button', { name: 'Stage next CA of console-ca' }).click();
    await view(page).getByLabel('Subject of the next CA').fill('CN=console issuing CA 2,O=scepkit');
    await page.getByRole('button', { name: 'Stage', exact: true }).click();
    await status(page, /^Next CA of console-ca staged/, 60_000);
    const next = row(page, 'Certificate authority list', 'CN=console issuing CA 2');
    assert.match(await next.textContent(), /next/);
    await next.getByRole('button', { name: 'Promote console-ca (next)' }).click();
    await confirm(page, 'Promote');
    await status(page, 'console-ca rolled over: CN=console issuing CA 2,O=scepkit is the current CA.');
    await row(page, 'Certificate authority list', 'CN=console issuing CA 1').filter({ hasText: 'retired' }).waitFor();
    assert.match(await next.textContent(), /current/);
    assert.match(issuerOf(await enroll('console-ca-3', true)), /console issuing CA 2/);
    await page.screenshot({ path: join(OUT, 'certificate-authorities.png'), fullPage: true });
    assert.deepEqual(external, []);
    assert.deepEqual(violations, []);
  } finally {
    await context.close();
  }
});
