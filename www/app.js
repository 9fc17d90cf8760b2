// The enrollment page: the package's enroll() with a form, named progress steps and downloads.
// Nothing about the key or the code leaves the page except the SCEP request itself.
import * as scep from './scepkit/entry/browser.js';
import { asOrigin } from './origin.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
// The SCEP server: this page's own origin, or ?server=https://scep.example when its operator allows that origin
// (see chooseServer). Null until chosen, and for good when refused.
let server = null;
let profiles = [];
let lastResult = null;
let controller = null;

const STEP_OF = { key: 'key', caps: 'request', cacert: 'request', request: 'request', send: 'send', pending: 'pending', poll: 'pending', done: 'done' };
const STEP_ORDER = ['key', 'request', 'send', 'pending', 'done'];
const LABEL = { key: 'Generating key', request: 'Building request', send: 'Contacting server', pending: 'Waiting for approval', done: 'Certificate received' };

function announce(text) {
  $('status').textContent = text;
}

function showStep(step) {
  const current = STEP_ORDER.indexOf(step);
  for (const li of $('steps').children) {
    const i = STEP_ORDER.indexOf(li.dataset.step);
    const skipped = li.dataset.step === 'pending' && step === 'done' && !li.classList.contains('seen');
    li.classList.toggle('skipped', skipped);
    li.classList.toggle('done', i < current && !skipped);
    if (i === current) {
      li.setAttribute('aria-current', 'step');
      li.classList.add('seen');
    } else {
      li.removeAttribute('aria-current');
    }
  }
  $('cancel').hidden = step !== 'pending';
  announce(`${LABEL[step]}…`);
}

function selectedProfile() {
  return profiles.find((p) => p.name === $('profile').value) ?? profiles[0];
}

// The key is made while the person reads and types (WebCrypto, in the background, for the selected profile's
// size), so Enroll only builds, sends and reads. Each attempt takes the prepared key and a new one is started: a
// key is never used twice. Without WebCrypto (not a secure context) enroll() makes its own.
let prepared = null;
function prepareKey() {
  const bits = selectedProfile()?.rsa_nbits;
  if (!bits || !globalThis.crypto?.subtle || prepared?.bits === bits) return;
  const promise = (async () => {
    performance.mark('scepkit:keygen-start');
    const algorithm = { name: 'RSASSA-PKCS1-v1_5', modulusLength: bits, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' };
    const pair = await crypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
    const pkcs8 = new Uint8Array(await crypto.subtle.exportKey('pkcs8', pair.privateKey));
    performance.measure('scepkit:keygen', 'scepkit:keygen-start');
    return pkcs8;
  })();
  // A failure shows when the key is taken (enroll() then makes its own).
  promise.catch(() => {});
  prepared = { bits, promise };
}

// GetCACaps and GetCACert of the selected profile, fetched ahead and kept as long as the server lets them be kept
// (a minute): enroll()'s own requests for them are answered from here (`fetchAhead`), anything else goes out.
const KEEP_MS = 60_000;
const ahead = new Map();
function prefetchCa() {
  const profile = selectedProfile();
  if (!profile) return;
  const url = `${server}/scep/${encodeURIComponent(profile.name)}`;
  for (const operation of ['GetCACaps', 'GetCACert']) {
    const answer = fetch(`${url}?operation=${operation}`)
      .then(async (res) => (res.ok ? { type: res.headers.get('content-type'), body: await res.arrayBuffer() } : null))
      .catch(() => null);
    ahead.set(`${url}?operation=${operation}`, { at: Date.now(), answer });
  }
}

async function fetchAhead(url, init) {
  const kept = ahead.get(url);
  const answer = kept && Date.now() - kept.at < KEEP_MS && (init?.method ?? 'GET') === 'GET' ? await kept.answer : null;
  if (answer) return new Response(answer.body.slice(0), { status: 200, headers: { 'content-type': answer.type } });
  return fetch(url, init);
}

async function takeKey(bits) {
  prepareKey();
  const taken = prepared?.bits === bits ? prepared.promise : null;
  prepared = null;
  return taken?.catch(() => undefined);
}

const SAN_LABEL = { dnsname: 'DNS name', rfc822name: 'Email address', uniform_resource_identifier: 'URI' };
const SAN_PREFIX = { dnsname: 'dns', rfc822name: 'email', uniform_resource_identifier: 'uri' };

function fill(template, seat) {
  try {
    return scep.renderTemplate(template, { USERNAME: seat, SEAT_ID: seat });
  } catch {
    return '';
  }
}

function updateSanField() {
  const p = selectedProfile();
  $('san-field').hidden = !p?.san;
  if (p?.san) {
    $('san-label').textContent = SAN_LABEL[p.san.type] ?? 'Name in the certificate';
    if (!$('san').dataset.edited) $('san').value = fill(p.san.template, $('seat').value.trim());
  }
}

/**
 * The servers besides its own origin this page may contact, as its operator configured them in page-config.json
 * beside this script: the Worker answers it from PAGE_ALLOWED_SERVERS, another static host serves a file. Only
 * ever read from the page's own origin; missing or unreadable means none.
 */
async function allowedServers() {
  try {
    const res = await fetch(new URL('page-config.json', import.meta.url), { cache: 'no-store' });
    if (!res.ok) return [];
    const list = (await res.json()).allowed_servers;
    return Array.isArray(list) ? list.map(asOrigin).filter(Boolean) : [];
  } catch {
    return [];
  }
}

/**
 * The origin to enroll with, or null when ?server= names one the operator does not allow. A link to this page
 * must not choose where someone's enrollment code goes, so the address is compared as the exact origin the
 * requests would go to (scheme, host, port) and nothing is sent anywhere before it passes.
 */
async function chooseServer() {
  const requested = params.get('server');
  if (requested === null) return location.origin;
  const origin = asOrigin(requested);
  if (origin === location.origin) return origin;
  return origin && (await allowedServers()).includes(origin) ? origin : null;
}

function refuse(requested) {
  const shown = requested.length > 100 ? `${requested.slice(0, 100)}…` : requested;
  fail({
    message: `This page contacts only the SCEP servers its operator allows, and “${shown}” in its address is not one of them. Nothing was sent to it.`,
    resolution: 'open the enrollment page from the link your administrator gave you; if that is the link you used, ask your administrator to allow this server for the page',
  });
}

async function loadProfiles() {
  $('server-name').textContent = new URL(server).host;
  try {
    const res = await fetch(`${server}/scep-profiles.json`);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const body = await res.json();
    profiles = body.profiles;
    $('profile').replaceChildren(...profiles.map((p) => new Option(p.name, p.name, false, p.name === body.default)));
    $('profile-field').hidden = profiles.length < 2;
    updateSanField();
    prepareKey();
    prefetchCa();
    $('enroll').disabled = profiles.length === 0;
  } catch (e) {
    fail({ message: `Could not read the enrollment profiles from ${server}: ${e.message}`, resolution: 'check your network connection and the server address, then reload the page' });
  }
}

function fail({ message, resolution, transactionId }) {
  const current = $('steps').querySelector('[aria-current="step"]');
  if (current && !$('progress').hidden) current.classList.add('failed');
  $('failure-message').textContent = message;
  $('failure-resolution').textContent = resolution;
  $('failure-transaction').hidden = !transactionId;
  $('failure-tid').textContent = transactionId ?? '';
  $('failure').hidden = false;
  $('failure').focus();
  announce(`Enrollment failed: ${message}`);
}

function explain(e) {
  if (e?.name === 'AbortError') return { message: 'Enrollment was cancelled while waiting for approval.', resolution: 'enroll again when your administrator is ready to approve' };
  if (!(e instanceof scep.ScepError)) return { message: String(e?.message ?? e), resolution: 'try again; if it keeps failing, tell your administrator what this page says' };
  if (e.kind === 'refused') return { message: e.message, resolution: e.resolution, transactionId: e.transactionId };
  if (e.kind === 'http') return { message: e.message, resolution: 'check your network connection and the server address, then try again' };
  return { message: e.message, resolution: e.resolution };
  return { message: String(e?.message ?? e), resolution: 'try again; if it keeps failing, tell your administrator what this page says' };
}

function pemLink(id, text) {
  const link = $(id);
  if (link.href) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(new Blob([text], { type: 'application/x-pem-file' }));
}

async function showResult(result) {
  // WebCrypto checks the certificate's signature (the browser build does no RSA of its own), hence the await.
  const info = await scep.inspect(result.certificate);
  $('cert-subject').textContent = info.subject;
  $('cert-issuer').textContent = info.issuer;
  $('cert-serial').textContent = info.serial;
  $('cert-validity').textContent = `${info.notBefore} to ${info.notAfter}`;
  $('cert-fingerprint').textContent = info.sha256Fingerprint.match(/../g).join(':').toUpperCase();
  pemLink('dl-cert', result.certificatePem);
  pemLink('dl-chain', result.chainPem);
  pemLink('dl-key', result.privateKeyPem);
  $('success').hidden = false;
  $('success').focus();
  announce('Certificate received.');
  performance.measure('scepkit:enroll', 'scepkit:enroll-start');
}

async function onEnroll(event) {
  event.preventDefault();
  const seat = $('seat').value.trim();
  const code = $('code').value.trim();
  for (const [input, ok] of [[$('seat'), seat], [$('code'), code]]) input.setAttribute('aria-invalid', ok ? 'false' : 'true');
  if (!seat || !code) {
    (seat ? $('code') : $('seat')).focus();
    announce('Enter your seat ID and enrollment code.');
    return;
  }
  const profile = selectedProfile();
  if (!profile) return;
  $('failure').hidden = true;
  $('success').hidden = true;
  $('progress').hidden = false;
  for (const li of $('steps').children) li.classList.remove('done', 'seen', 'skipped', 'failed');
  $('enroll').disabled = true;
  controller = new AbortController();
  // User Timing: "scepkit:enroll" measures Enroll to certificate on screen (the benchmark reads it).
  performance.mark('scepkit:enroll-start');
  try {
    const san = profile.san && $('san').value.trim() ? [`${SAN_PREFIX[profile.san.type]}:${$('san').value.trim()}`] : [];
    const keyPkcs8 = await takeKey(profile.rsa_nbits);
    lastResult = await scep.enroll({
      url: `${server}/scep/${encodeURIComponent(profile.name)}`,
      challenge: code,
      subject: fill(profile.subject, seat) || `CN=${seat}`,
      sans: san,
      keyBits: profile.rsa_nbits,
      keyPkcs8,
      fetch: fetchAhead,
      // scepkit's service opens RSA-OAEP and answers in kind, so WebCrypto does every RSA operation (the page's
      // wasm has no RSA; the package's full build would be fetched for RSAES-PKCS1-v1_5, which this never needs).
      keyTransport: 'rsa-oaep-sha256',
      fingerprint: params.get('fingerprint') ?? profile.fingerprint ?? undefined,
      signal: controller.signal,
      pollInterval: Number(params.get('poll') ?? 3000),
      // A mark per step (key, caps, cacert, request, send, done): where the time goes, for the benchmark.
      onProgress: (step) => (performance.mark(`scepkit:${step}`), showStep(STEP_OF[step])),
    });
    lastResult.seat = seat;
    await showResult(lastResult);
  } catch (e) {
    fail(explain(e));
  } finally {
    $('enroll').disabled = false;
    $('cancel').hidden = true;
    prepareKey();
    prefetchCa();
  }
}

function onP12(event) {
  event.preventDefault();
  const password = $('p12-password').value;
  if (!password) {
    $('p12-password').setAttribute('aria-invalid', 'true');
    $('p12-password').focus();
    announce('Type a password for the PKCS#12 file.');
    return;
  }
  $('p12-password').setAttribute('aria-invalid', 'false');
  const p12 = scep.exportPkcs12(lastResult.privateKeyPkcs8, [lastResult.certificate, ...lastResult.chain], password, lastResult.seat);
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([p12], { type: 'application/x-pkcs12' }));
  a.download = 'certificate.p12';
  document.body.append(a);
  a.click();
  a.remove();
  announce('certificate.p12 downloaded.');
}

$('enroll-form').addEventListener('submit', onEnroll);
$('p12-form').addEventListener('submit', onP12);
$('cancel').addEventListener('click', () => controller?.abort());
$('profile').addEventListener('change', () => (updateSanField(), prepareKey(), prefetchCa()));
$('seat').addEventListener('input', updateSanField);
$('san').addEventListener('input', () => ($('san').dataset.edited = '1'));
// The seat may be linked (?seat=laptop-42); a code never is: it would travel in the page's URL.
if (params.get('seat')) $('seat').value = params.get('seat');
server = await chooseServer();
if (server) loadProfiles();
else refuse(params.get('server'));
