// The admin console: a client of the same-origin admin API (/api/v1). The token lives in this tab's
// sessionStorage only and travels in the Authorization header, never in a URL. No framework: each section is a
// few small functions that fetch, render a table and handle its forms.
import { csv } from '../csv.js';

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = 'scepkit-admin-token';
const token = () => sessionStorage.getItem(TOKEN_KEY);
// Behind Cloudflare Access the edge adds its JWT to every request: no token is needed, and none is sent.
const ACCESS = 'cloudflare-access';

// ---- DOM helpers ----
/** An element: props `class`, `on<event>` listeners, other attributes (true: present; null/false: absent). */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props ?? {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  el.append(...children.flat().filter((c) => c != null && c !== false && c !== ''));
  return el;
}

const button = (text, onclick, props = {}) => h('button', { type: 'button', onclick, ...props }, text);
const time = (s) => (s == null ? '' : h('time', { datetime: new Date(s * 1000).toISOString() }, new Date(s * 1000).toLocaleString()));
const colons = (hex) => (hex ?? '').toUpperCase().match(/../g)?.join(':') ?? '';
const mono = (text) => h('span', { class: 'mono' }, text ?? '');

/**
 * A table in its own scrolling container (a focusable region, so a keyboard can scroll it too). On a phone the
 * CSS stacks each row, each cell under its column's name (data-label); the explicit roles keep it a table.
 */
function table(caption, columns, rows, empty = 'Nothing to show.') {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('div', { class: 'table-wrap', role: 'region', 'aria-label': caption, tabindex: '0' },
    h('table', { role: 'table' }, h('caption', { class: 'visually-hidden' }, caption),
      h('thead', { role: 'rowgroup' }, h('tr', { role: 'row' }, columns.map(([label]) => h('th', { scope: 'col', role: 'columnheader' }, label)))),
      h('tbody', { role: 'rowgroup' }, rows.map((row) => h('tr', { role: 'row' }, columns.map(([label, cell]) => h('td', { role: 'cell', 'data-label': label }, cell(row) ?? '')))))));
}

/** A definition list of [term, value] pairs, skipping empty values. */
const facts = (pairs) => pairs.filter(([, v]) => v != null && v !== '').flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]);

function announce(text, error = false) {
  $('status').textContent = text;
  $('status').classList.toggle('error', error);
}

/** Saves `blob` as a file named `name` (a Blob URL with a download attribute). */
function save(blob, name) {
  const a = h('a', { href: URL.createObjectURL(blob), download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

// ---- the API ----
/** A refusal of the API: its status and the `_errors` envelope. */
class ApiFailure extends Error {
  constructor(status, envelope) {
    const errors = envelope?._errors ?? [{ code: '', message: `HTTP ${status}`, details: {} }];
    super(errors[0].message);
    this.status = status;
    this.errors = errors;
    this.body = envelope;
  }
}

/** Calls /api/v1: JSON in and out by default; `accept` another type to get the Response. Throws ApiFailure. */
async function api(method, path, { body, accept = 'application/json', contentType = 'application/json', headers = {} } = {}) {
  const auth = token() === ACCESS ? {} : { authorization: `Bearer ${token()}` };
  const init = { method, headers: { ...auth, accept, ...headers }, cache: 'no-store' };
  if (body !== undefined) {
    init.headers['content-type'] = contentType;
    init.body = contentType === 'application/json' ? JSON.stringify(body) : body;
  }
  const res = await fetch(`/api/v1${path}`, init);
  if (res.status === 401) {
    signOut('Invalid token');
    throw new ApiFailure(401, null);
  }
  if (!res.ok) throw new ApiFailure(res.status, await res.json().catch(() => null));
  if (res.status === 204) return null;
  return accept === 'application/json' ? res.json() : res;
}

/** `path` with the non-empty `params` as its query. */
function withQuery(path, params) {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v != null && v !== ''));
  return q.size ? `${path}?${q}` : path;
}

function errorText(e) {
  if (!(e instanceof ApiFailure)) return `Could not reach the server: ${e.message}`;
  return e.errors
    .map((x) => [x.message, ...Object.entries(x.details ?? {}).map(([k, v]) => `${k} ${v}`)].join(': ') + (x.help ? ` (${x.help})` : ''))
    .join('; ');
}

/** Shows an error: in the live region, and with a form, each `details` entry next to its field. */
function report(e, form) {
  if (e.status === 401) return;
  const fields = form && e instanceof ApiFailure ? Object.keys(e.errors[0].details ?? {}).length : 0;
  if (form) showErrors(form, e);
  announce(fields ? `${e.message}: ${fields === 1 ? 'one field' : `${fields} fields`} to correct, marked in the form.` : errorText(e), true);
}

function clearErrors(form) {
  for (const p of form.querySelectorAll('.field-error')) p.remove();
  for (const el of form.querySelectorAll('[aria-invalid]')) {
    el.removeAttribute('aria-invalid');
    el.setAttribute('aria-describedby', (el.getAttribute('aria-describedby') ?? '').replace(/\S+-error\b/g, '').trim());
  }
  const box = form.querySelector('.form-errors');
  if (box) box.hidden = true;
}

/** The visible field of `form` whose data-path names `path` (or the nearest parent path). */
function fieldFor(form, path) {
  const fields = [...form.querySelectorAll('[data-path]')].filter((el) => !el.closest('[hidden]'));
  for (let p = path; p; p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '') {
    const found = fields.find((el) => el.dataset.path.split(' ').includes(p));
    if (found) return found;
  }
  return null;
}

function showErrors(form, e) {
  clearErrors(form);
  const unknown = [];
  let first = null;
  for (const [path, rule] of Object.entries(e.errors?.[0]?.details ?? {})) {
    const el = fieldFor(form, path);
    if (!el) {
      unknown.push(`${path}: ${rule}`);
      continue;
    }
    const id = `${el.id}-error`;
    const existing = $(id);
    if (existing) existing.textContent += `; ${rule}`;
    else el.closest('.field, .check').append(h('p', { class: 'field-error', id }, rule));
    el.setAttribute('aria-invalid', 'true');
    el.setAttribute('aria-describedby', `${el.getAttribute('aria-describedby') ?? ''} ${id}`.trim());
    first ??= el;
  }
  const box = form.querySelector('.form-errors');
  if (box) {
    box.replaceChildren(h('p', {}, e instanceof ApiFailure ? e.message : errorText(e)), ...(unknown.length ? [h('ul', {}, unknown.map((u) => h('li', {}, u)))] : []));
    box.hidden = false;
  }
  first?.focus();
}

/** Runs `work` for a submitted form (never submitted to a server: form-action 'none'), reporting its errors. */
function onSubmit(form, work) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const submit = form.querySelector('[type="submit"]');
    submit.disabled = true;
    try {
      await work();
    } catch (e) {
      report(e, form);
    } finally {
      submit.disabled = false;
    }
  });
}

/** Asks in the confirmation dialog; resolves true on Confirm. */
function confirmAction(text, label = 'Confirm') {
  const dialog = $('confirm');
  $('confirm-text').textContent = text;
  $('confirm-yes').textContent = label;
  dialog.returnValue = '';
  dialog.showModal();
  $('confirm-no').focus();
  return new Promise((resolve) => dialog.addEventListener('close', () => resolve(dialog.returnValue === 'yes'), { once: true }));
}
$('confirm-yes').addEventListener('click', () => $('confirm').close('yes'));
$('confirm-no').addEventListener('click', () => $('confirm').close('no'));

/** Fills `box` with one page of `path` as a table, with "Next page" (and back to the first) when there are more. */
async function showPage(box, path, params, caption, columns, { cursor, empty, render } = {}) {
  const page = await api('GET', withQuery(path, { ...params, cursor }));
  const again = (c) => showPage(box, path, params, caption, columns, { cursor: c, empty, render }).catch((e) => report(e));
  const nav = h('div', { class: 'pager' },
    cursor ? button('First page', () => again(undefined), { class: 'secondary' }) : null,
    page.next_cursor ? button('Next page', () => again(page.next_cursor), { class: 'secondary' }) : null);
  box.replaceChildren(render ? render(page.data) : table(caption, columns, page.data, empty), nav);
  return page;
}

/** The first 1000 rows of a list (the choices of a select, the CAs). */
const all = async (path, params = {}) => (await api('GET', withQuery(path, { ...params, limit: 1000 }))).data;

// ---- sign-in and navigation ----
const SECTIONS = { profiles: loadProfiles, seats: loadSeats, enrollments: loadEnrollments, approvals: loadApprovals, certificates: loadCertificates, 'audit-log': loadAudit, 'certificate-authorities': loadCas };

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  forgetCode();
  $('nav').hidden = true;
  $('sign-out').hidden = true;
  for (const view of document.querySelectorAll('.view')) view.hidden = true;
  $('signin').hidden = false;
  announce(message, message !== 'Signed out.');
  $('token').focus();
}

let notice = ''; // said once the next section is on screen (navigation clears the last message)

function route() {
  if (!token()) return signOut('');
  announce(notice);
  notice = '';
  const name = location.hash.slice(1) in SECTIONS ? location.hash.slice(1) : 'profiles';
  $('signin').hidden = true;
  $('nav').hidden = false;
  $('sign-out').hidden = false;
  for (const view of document.querySelectorAll('.view')) view.hidden = view.id !== name;
  for (const a of $('nav').querySelectorAll('a')) {
    if (a.hash === `#${name}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (name !== 'enrollments') forgetCode();
  $(`${name}-title`).focus();
  document.title = `${$(`${name}-title`).textContent} · scepkit console`;
  const view = $(name);
  view.setAttribute('aria-busy', 'true');
  SECTIONS[name]()
    .catch((e) => report(e))
    .finally(() => view.setAttribute('aria-busy', 'false'));
}

onSubmit($('signin-form'), async () => {
  const given = $('token').value.trim();
  if (!given) return announce('Type the admin token.', true);
  sessionStorage.setItem(TOKEN_KEY, given);
  await api('GET', '/scep-profiles?limit=1');
  $('token').value = '';
  notice = 'Signed in.';
  if (location.hash.slice(1) in SECTIONS) route();
  else location.hash = '#profiles';
});
$('sign-out').addEventListener('click', () => signOut('Signed out.'));
addEventListener('hashchange', route);
// A link to the section on screen changes no hash: it still moves focus to its heading (and reloads it).
for (const a of $('nav').querySelectorAll('a')) {
  a.addEventListener('click', (event) => {
    if (a.hash !== location.hash) return;
    event.preventDefault();
    route();
  });
}

// ---- profiles ----
let editing = null; // the profile being edited, as read
const PROFILE_FIELDS = ['id', 'name', 'folder', 'snippet', 'device', 'scep_challenge', 'ca_identity_name', 'subject', 'algorithm', 'digest', 'fingerprint', 'certificate_attributes', 'use_as_digital_signature', 'use_for_key_encipherment', 'scep_url', 'validity_days', 'renewal_window_days', 'manual_approval', 'legacy'];
const challengeOf = (p) => Object.keys(p.scep_challenge ?? {})[0] ?? '';

async function loadProfiles() {
  fillCaNames();
  await showPage($('profiles-list'), '/scep-profiles', {}, 'Profile list', [
    ['Name', (p) => p.name],
    ['Container', (p) => ['folder', 'snippet', 'device'].filter((k) => p[k]).map((k) => `${k}: ${p[k]}`).join('')],
    ['CA', (p) => p.ca_identity_name],
    ['Challenge', challengeOf],
    ['Key, digest', (p) => `RSA ${p.algorithm?.rsa?.rsa_nbits}, ${p.digest}`],
    ['Approval', (p) => (p.manual_approval ? 'manual' : 'automatic')],
    ['', (p) => h('div', { class: 'row-actions' },
      button('Edit', () => editProfile(p.id).catch((e) => report(e)), { class: 'secondary', 'aria-label': `Edit profile ${p.name}` }),
      button('Delete', () => deleteProfile(p), { class: 'danger', 'aria-label': `Delete profile ${p.name}` }))],
  ], { empty: 'No profiles yet.' });
}

/** The CA names the profile form suggests (quietly nothing without the CA manager). */
async function fillCaNames() {
  try {
    const names = new Set((await all('/certificate-authorities')).map((ca) => ca.name));
    $('ca-names').replaceChildren(...[...names].map((n) => h('option', { value: n })));
  } catch {}
}

function syncProfileForm() {
  for (const el of $('profile-form').querySelectorAll('[data-when]')) el.hidden = el.dataset.when !== $('p-challenge').value;
  $('p-san').closest('.field').hidden = !$('p-san-kind').value;
}

/** The profile as the form says: required fields always, optional ones only when filled. */
function profileBody() {
  const v = (id) => $(id).value;
  const filled = (id) => v(id).trim() !== '';
  const body = { name: v('p-name'), [v('p-container-kind')]: v('p-container'), ca_identity_name: v('p-ca') };
  const kind = v('p-challenge');
  if (kind === 'none') body.scep_challenge = { none: '' };
  else if (kind === 'fixed') body.scep_challenge = { fixed: v('p-fixed') };
  else {
    const dynamic = {};
    for (const [key, id] of [['otp_server_url', 'p-otp-url'], ['username', 'p-otp-user'], ['password', 'p-otp-password']]) if (filled(id)) dynamic[key] = v(id);
    body.scep_challenge = { dynamic };
  }
  if (filled('p-subject')) body.subject = v('p-subject');
  body.algorithm = { rsa: { rsa_nbits: Number(v('p-bits')) } };
  body.digest = v('p-digest');
  if (filled('p-fingerprint')) body.fingerprint = v('p-fingerprint');
  if (v('p-san-kind')) body.certificate_attributes = { [v('p-san-kind')]: v('p-san') };
  body.use_as_digital_signature = $('p-sign').checked;
  body.use_for_key_encipherment = $('p-encipher').checked;
  body.scep_url = v('p-scep-url');
  for (const [key, id] of [['validity_days', 'p-validity'], ['renewal_window_days', 'p-window']]) if (filled(id)) body[key] = Number(v(id));
  body.manual_approval = $('p-manual').checked;
  body.legacy = $('p-legacy').checked;
  return body;
}

function fillProfile(p) {
  const set = (id, value) => ($(id).value = value ?? '');
  set('p-name', p.name);
  const container = ['folder', 'snippet', 'device'].find((k) => p[k] !== undefined) ?? 'folder';
  set('p-container-kind', container);
  set('p-container', p[container]);
  set('p-ca', p.ca_identity_name);
  const kind = challengeOf(p) || 'dynamic';
  set('p-challenge', kind);
  set('p-fixed', kind === 'fixed' ? p.scep_challenge.fixed : '');
  const dynamic = p.scep_challenge?.dynamic ?? {};
  set('p-otp-url', dynamic.otp_server_url);
  set('p-otp-user', dynamic.username);
  set('p-otp-password', dynamic.password);
  set('p-subject', p.subject);
  set('p-bits', String(p.algorithm?.rsa?.rsa_nbits ?? 2048));
  set('p-digest', p.digest === 'sha348' ? 'sha384' : p.digest);
  set('p-fingerprint', p.fingerprint);
  const san = Object.keys(p.certificate_attributes ?? {})[0] ?? '';
  set('p-san-kind', san);
  set('p-san', san ? p.certificate_attributes[san] : '');
  set('p-scep-url', p.scep_url);
  $('p-scep-url').dataset.edited = '1';
  set('p-validity', p.validity_days);
  set('p-window', p.renewal_window_days);
  $('p-sign').checked = p.use_as_digital_signature !== false;
  $('p-encipher').checked = p.use_for_key_encipherment !== false;
  $('p-manual').checked = Boolean(p.manual_approval);
  $('p-legacy').checked = Boolean(p.legacy);
  syncProfileForm();
}

async function editProfile(id) {
  editing = await api('GET', `/scep-profiles/${encodeURIComponent(id)}`);
  clearErrors($('profile-form'));
  fillProfile(editing);
  $('profile-form-title').textContent = `Edit profile ${editing.name}`;
  $('profile-submit').textContent = 'Save profile';
  $('profile-cancel').hidden = false;
  $('p-name').focus();
  announce(`Editing profile ${editing.name}.`);
}

function resetProfileForm() {
  editing = null;
  $('profile-form').reset();
  delete $('p-scep-url').dataset.edited;
  clearErrors($('profile-form'));
  $('profile-form-title').textContent = 'New profile';
  $('profile-submit').textContent = 'Create profile';
  $('profile-cancel').hidden = true;
  syncProfileForm();
}

onSubmit($('profile-form'), async () => {
  if (editing) {
    // PUT replaces: fields this form does not show (webhook, one_time_passwords, ...) go back as read.
    const kept = Object.fromEntries(Object.entries(editing).filter(([k]) => !PROFILE_FIELDS.includes(k)));
    const saved = await api('PUT', `/scep-profiles/${encodeURIComponent(editing.id)}`, { body: { ...kept, ...profileBody() } });
    announce(`Profile ${saved.name} saved.`);
  } else {
    const created = await api('POST', '/scep-profiles', { body: profileBody() });
    announce(`Profile ${created.name} created.`);
  }
  resetProfileForm();
  await loadProfiles();
});

async function deleteProfile(p) {
  if (!(await confirmAction(`Delete profile ${p.name}? Its SCEP URL stops working.`, 'Delete'))) return;
  try {
    await api('DELETE', `/scep-profiles/${encodeURIComponent(p.id)}`);
    announce(`Profile ${p.name} deleted.`);
    await loadProfiles();
  } catch (e) {
    report(e);
  }
}

$('p-challenge').addEventListener('change', syncProfileForm);
$('p-san-kind').addEventListener('change', syncProfileForm);
$('profile-cancel').addEventListener('click', () => (resetProfileForm(), announce('Editing cancelled.')));
$('p-scep-url').addEventListener('input', () => ($('p-scep-url').dataset.edited = '1'));
$('p-name').addEventListener('input', () => {
  if (!$('p-scep-url').dataset.edited) $('p-scep-url').value = $('p-name').value ? `${location.origin}/scep/${encodeURIComponent($('p-name').value)}` : '';
});

// ---- seats ----
const sessionCodes = []; // { seat_id, profile, enrollment_code } issued in this tab: exportable, never stored

async function loadSeats() {
  await showPage($('seats-list'), '/seats', { prefix: $('seat-prefix').value }, 'Seat list', [
    ['Seat ID', (s) => s.id],
    ['Created', (s) => time(s.created_at)],
    ['', (s) => button('Delete', () => deleteSeat(s.id), { class: 'danger', 'aria-label': `Delete seat ${s.id}` })],
  ], { empty: 'No seats match.' });
}

async function deleteSeat(id) {
  if (!(await confirmAction(`Delete seat ${id}? Its open enrollment codes are revoked.`, 'Delete'))) return;
  try {
    await api('DELETE', `/seats/${encodeURIComponent(id)}`);
    announce(`Seat ${id} deleted.`);
    await loadSeats();
  } catch (e) {
    report(e);
  }
}

onSubmit($('seat-filter'), loadSeats);
onSubmit($('seat-form'), async () => {
  const seat = await api('POST', '/seats', { body: { id: $('seat-id').value } });
  $('seat-id').value = '';
  announce(`Seat ${seat.id} added.`);
  await loadSeats();
});

onSubmit($('csv-form'), async () => {
  const file = $('csv-file').files[0];
  if (!file) throw new ApiFailure(400, { _errors: [{ message: 'Choose a CSV file first', details: { csv: 'choose a file' } }] });
  let outcome;
  try {
    outcome = await api('POST', '/seats/bulk', { body: await file.text(), contentType: 'text/csv' });
  } catch (e) {
    // Every row failed: a 400 that carries the per-row results rather than the envelope.
    if (!e.body?.results) throw e;
    outcome = e.body;
  }
  showCsvResults(outcome);
  $('csv-form').reset();
  await loadSeats();
});

function showCsvResults({ created, failed, results }) {
  const codes = results.filter((r) => r.enrollment_code).map((r) => ({ seat_id: r.seat_id, profile: r.enrollment?.profile ?? '', enrollment_code: r.enrollment_code }));
  sessionCodes.push(...codes);
  $('export-codes').disabled = !sessionCodes.length;
  const problem = (r) => (r.status === 'error' ? [r.error, ...Object.entries(r.details ?? {}).map(([k, v]) => `${k} ${v}`)].join(': ') : '');
  $('csv-results').replaceChildren(
    h('h3', {}, 'Upload results'),
    h('p', {}, `${created} created, ${failed} failed.`),
    table('Upload results', [
      ['Row', (r) => String(r.row)],
      ['Seat ID', (r) => r.seat_id ?? ''],
      ['Status', (r) => h('span', { class: `badge ${r.status}` }, r.status)],
      ['Error', problem],
      ['Profile', (r) => r.enrollment?.profile ?? ''],
      ['Enrollment code', (r) => mono(r.enrollment_code)],
    ], results),
    codes.length ? h('p', { class: 'note' }, 'The codes are not shown again: download them now.') : null,
    codes.length ? button('Download new codes (CSV)', () => exportCodes(codes, 'seat-codes.csv')) : null,
  );
  announce(`Upload: ${created} created, ${failed} failed.`, failed > 0);
}

function exportCodes(codes, name) {
  save(new Blob([csv([['seat_id', 'profile', 'enrollment_code'], ...codes.map((c) => [c.seat_id, c.profile, c.enrollment_code])])], { type: 'text/csv' }), name);
  announce(`${codes.length} codes saved as ${name}.`);
}

// ---- enrollments ----
let issued = null; // the code on screen: { id, seat_id, enrollment_code }

async function loadEnrollments() {
  const choice = $('e-profile').value;
  $('e-profile').replaceChildren(...(await all('/scep-profiles')).map((p) => h('option', { value: p.name, selected: p.name === choice }, p.name)));
  await showPage($('enrollments-list'), '/enrollments', { seat_id: $('ef-seat').value, profile: $('ef-profile').value, status: $('ef-status').value }, 'Enrollment list', [
    ['Seat ID', (e) => e.seat_id],
    ['Profile', (e) => e.profile],
    ['Status', (e) => h('span', { class: `badge ${e.status.toLowerCase()}` }, e.status)],
    ['Created', (e) => time(e.created_at)],
    ['Expires', (e) => time(e.expires_at)],
    ['Redeemed', (e) => time(e.redeemed_at)],
    ['', (e) => (e.status === 'CREATED' ? button('Revoke', () => revokeCode(e), { class: 'danger', 'aria-label': `Revoke code of seat ${e.seat_id} on ${e.profile}` }) : '')],
  ], { empty: 'No enrollments match.' });
}

onSubmit($('enrollment-filter'), loadEnrollments);
onSubmit($('enrollment-form'), async () => {
  const e = await api('POST', '/enrollments', { body: { seat_id: $('e-seat').value, profile: $('e-profile').value } });
  issued = e;
  sessionCodes.push({ seat_id: e.seat_id, profile: e.profile, enrollment_code: e.enrollment_code });
  $('export-codes').disabled = false;
  $('issued-code').value = e.enrollment_code;
  $('new-code-seat').textContent = e.seat_id;
  $('new-code-profile').textContent = e.profile;
  $('new-code-expires').replaceChildren(time(e.expires_at));
  $('new-code').hidden = false;
  $('new-code').focus();
  announce(`Enrollment code issued for ${e.seat_id}. It is not shown again.`);
  await loadEnrollments();
});

function forgetCode() {
  issued = null;
  $('issued-code').value = '';
  $('new-code').hidden = true;
}

$('copy-code').addEventListener('click', async () => {
  try {
    await navigator.clipboard.writeText(issued.enrollment_code);
    announce('Enrollment code copied.');
  } catch {
    announce('Could not copy: select the code and copy it.', true);
  }
});

$('mobileconfig').addEventListener('click', async () => {
  try {
    const res = await api('GET', `/enrollments/${encodeURIComponent(issued.id)}/mobileconfig`, { accept: 'application/x-apple-aspen-config', headers: { 'SCEP-Challenge': issued.enrollment_code } });
    const name = `${issued.seat_id.replace(/[^A-Za-z0-9._-]/g, '_')}.mobileconfig`;
    save(await res.blob(), name);
    announce(`${name} saved.`);
  } catch (e) {
    report(e);
  }
});

$('export-codes').addEventListener('click', () => exportCodes(sessionCodes, 'enrollment-codes.csv'));

async function revokeCode(e) {
  if (!(await confirmAction(`Revoke the unused code of seat ${e.seat_id} on ${e.profile}?`, 'Revoke'))) return;
  try {
    await api('DELETE', `/enrollments/${encodeURIComponent(e.id)}`);
    announce(`Code of seat ${e.seat_id} revoked.`);
    await loadEnrollments();
  } catch (err) {
    report(err);
  }
}

// ---- approvals ----
async function loadApprovals() {
  await showPage($('approvals-list'), '/transactions', { status: 'PENDING' }, 'Pending requests', [], { render: (rows) => (rows.length ? h('ul', { class: 'cards' }, rows.map(approvalCard)) : h('p', { class: 'empty' }, 'No requests wait for approval.')) });
}

function approvalCard(t) {
  const id = `tx-${t.transaction_id.replace(/[^A-Za-z0-9]/g, '').slice(0, 16)}-${t.signer_fingerprint.slice(0, 8)}`;
  const r = t.requested ?? {};
  const reason = h('input', { id: `${id}-reason`, maxlength: '200', spellcheck: 'false', 'aria-describedby': `${id}-reason-help` });
  return h('li', { class: 'card' },
    h('h2', { id }, `${t.seat_id ?? 'Renewal'} on ${t.profile}`),
    h('dl', {}, facts([
      ['Profile', t.profile], ['Seat', t.seat_id], ['Subject', r.subject], ['SANs', (r.sans ?? []).join(', ') || 'none'],
      ['Key', r.key ? `${r.key.type.toUpperCase()} ${r.key.bits} bits` : ''], ['Client address', t.client_address], ['Requested', time(t.created_at)],
      ['Message type', t.message_type], ['Transaction', mono(t.transaction_id)],
    ])),
    h('div', { class: 'field' }, h('label', { for: reason.id }, 'Reason for rejecting'), reason,
      h('p', { class: 'help', id: `${id}-reason-help` }, 'Optional; the requester is told it at its next poll.')),
    h('div', { class: 'actions' },
      button('Approve', () => decide(t, 'approve', ''), { 'aria-describedby': id }),
      button('Reject', () => decide(t, 'reject', reason.value.trim()), { class: 'danger', 'aria-describedby': id })));
}

async function decide(t, action, reason) {
  const who = t.seat_id ?? t.transaction_id;
  if (action === 'reject' && !(await confirmAction(`Reject the request of ${who}?${reason ? ` Reason: ${reason}` : ''}`, 'Reject'))) return;
  try {
    // profile_id and signer_fingerprint tell apart requesters that chose the same transactionID.
    const body = { profile_id: t.profile_id, signer_fingerprint: t.signer_fingerprint, ...(reason ? { reason } : {}) };
    const d = await api('POST', `/transactions/${encodeURIComponent(t.transaction_id)}/${action}`, { body });
    announce(d.status === 'ISSUED' ? `Approved the request of ${who}: certificate ${d.serial} issued.` : `Rejected the request of ${who}${reason ? ` (reason: ${reason})` : ''}.`);
    await loadApprovals();
  } catch (e) {
    report(e);
  }
}

$('approvals-refresh').addEventListener('click', () => loadApprovals().catch((e) => report(e)));

// ---- certificates ----
let shown = null; // the certificate in the details panel

async function loadCertificates() {
  const params = { seat_id: $('cf-seat').value, serial: $('cf-serial').value.replaceAll(':', ''), subject: $('cf-subject').value, status: $('cf-status').value };
  await showPage($('certificates-list'), '/certificates', params, 'Certificate list', [
    ['Serial', (c) => mono(c.serial)],
    ['Seat', (c) => c.seat_id],
    ['Subject', (c) => c.subject],
    ['Status', (c) => h('span', { class: `badge ${c.status}` }, c.status)],
    ['Valid until', (c) => time(c.not_after)],
    ['', (c) => button('Details', () => showCertificate(c.serial).catch((e) => report(e)), { class: 'secondary', 'aria-label': `Details of certificate ${c.serial}` })],
  ], { empty: 'No certificates match.' });
}

async function showCertificate(serial) {
  shown = await api('GET', `/certificates/${encodeURIComponent(serial)}`);
  const c = shown;
  $('cert-details-title').textContent = `Certificate ${c.serial}`;
  $('cert-facts').replaceChildren(...facts([
    ['Subject', c.subject], ['Seat', c.seat_id], ['Profile', c.profile], ['Status', c.status], ['Valid from', time(c.not_before)], ['Valid until', time(c.not_after)],
    ['SHA-256 fingerprint', mono(colons(c.fingerprint))], ['Revoked', time(c.revoked_at)], ['Revocation reason', c.revocation_reason], ['Renewed by', c.renewed_by],
  ]));
  $('cert-pem-text').textContent = c.pem;
  $('revoke-form').hidden = c.status === 'revoked';
  $('cert-details').hidden = false;
  $('cert-details').focus();
}

onSubmit($('cert-filter'), loadCertificates);
$('cert-pem').addEventListener('click', () => save(new Blob([shown.pem], { type: 'application/x-pem-file' }), `${shown.serial}.pem`));
$('cert-der').addEventListener('click', async () => {
  try {
    const res = await api('GET', `/certificates/${encodeURIComponent(shown.serial)}`, { accept: 'application/pkix-cert' });
    save(await res.blob(), `${shown.serial}.cer`);
  } catch (e) {
    report(e);
  }
});
onSubmit($('revoke-form'), async () => {
  const reason = $('revoke-reason').value;
  if (!(await confirmAction(`Revoke certificate ${shown.serial} of ${shown.seat_id} (${reason})? It goes on the CRL; this cannot be undone.`, 'Revoke'))) return;
  await api('POST', `/certificates/${encodeURIComponent(shown.serial)}/revoke`, { body: { reason } });
  announce(`Certificate ${shown.serial} revoked (${reason}).`);
  await Promise.all([showCertificate(shown.serial), loadCertificates()]);
});

// ---- audit log ----
// A Failure row carries what to do about it (its error's resolution, written with the row).
const resolution = (row) => (row.status === 'Failure' ? (row.resolution ?? '') : '');

function auditParams() {
  const rfc3339 = (value) => (value ? new Date(value).toISOString() : '');
  return { status: $('af-status').value, seat_id: $('af-seat').value, since: rfc3339($('af-since').value), until: rfc3339($('af-until').value) };
}

const auditTable = (rows) =>
  table('Audit log entries', [
    ['Time', (r) => time(r.time)],
    ['Status', (r) => h('span', { class: `badge ${r.status.toLowerCase()}` }, r.status)],
    ['Operation', (r) => r.operation],
    ['Code', (r) => mono(r.code)],
    ['Profile', (r) => r.profile],
    ['Seat', (r) => r.seat_id],
    ['Message', (r) => r.message],
    ['Resolution', (r) => resolution(r)],
  ], rows, 'No entries match.');

async function loadAudit() {
  await showPage($('audit-list'), '/audit-logs', auditParams(), 'Audit log entries', [], { render: (rows) => auditTable(rows) });
}

onSubmit($('audit-filter'), loadAudit);
$('audit-export').addEventListener('click', async () => {
  try {
    // Every matching entry, page by page (bounded), as one CSV.
    const parts = [];
    let cursor;
    for (let i = 0; i < 50; i++) {
      const res = await api('GET', withQuery('/audit-logs', { ...auditParams(), limit: 10000, cursor }), { accept: 'text/csv' });
      const text = await res.text();
      parts.push(i === 0 ? text : text.slice(text.indexOf('\n') + 1));
      cursor = res.headers.get('x-next-cursor');
      if (!cursor) break;
    }
    save(new Blob(parts, { type: 'text/csv' }), 'audit-log.csv');
    announce('Audit log saved as audit-log.csv.');
  } catch (e) {
    report(e);
  }
});

// ---- certificate authorities ----
let stagingFor = null; // the current CA whose next one the stage form makes

async function loadCas() {
  let cas;
  try {
    cas = await all('/certificate-authorities');
  } catch (e) {
    const missing = e.status === 404 || e.status === 405;
    $('ca-missing').hidden = !missing;
    $('ca-manager').hidden = missing;
    if (missing) return announce('The CA manager is not available on this server.', true);
    throw e;
  }
  $('ca-missing').hidden = true;
  $('ca-manager').hidden = false;
  const hasNext = new Set(cas.filter((ca) => ca.role === 'next').map((ca) => ca.name));
  const label = (ca) => `${ca.name} (${ca.role})`;
  $('ca-list').replaceChildren(table('Certificate authority list', [
    ['Name', (ca) => ca.name],
    ['Role', (ca) => h('span', { class: `badge ${ca.role}` }, ca.role)],
    ['Enabled for SCEP', (ca) => h('span', { class: `badge ${ca.enabled ? 'enabled' : 'disabled'}` }, ca.enabled ? 'yes' : 'no')],
    ['Subject', (ca) => ca.subject],
    ['SHA-256 fingerprint', (ca) => mono(colons(ca.fingerprint))],
    ['Validity', (ca) => h('span', {}, time(ca.not_before), ' to ', time(ca.not_after))],
    ['Key, origin', (ca) => `RSA ${ca.key_bits}, ${ca.origin}`],
    ['', (ca) => h('div', { class: 'row-actions' },
      ca.role === 'retired' ? null : ca.enabled
        ? button('Disable', () => caAction(ca, 'disable'), { class: 'danger', 'aria-label': `Disable ${label(ca)}` })
        : button('Enable', () => caAction(ca, 'enable'), { 'aria-label': `Enable ${label(ca)}` }),
      ca.role === 'current' && !hasNext.has(ca.name) ? button('Stage next CA', () => openStage(ca), { class: 'secondary', 'aria-label': `Stage next CA of ${ca.name}` }) : null,
      ca.role === 'next' ? button('Promote', () => caAction(ca, 'promote'), { 'aria-label': `Promote ${label(ca)}` }) : null)],
  ], cas, 'No certificate authorities.'));
}

async function caAction(ca, action) {
  const ask = {
    disable: `Disable ${ca.name} for SCEP? Enrollments on its profiles fail ("Failed to decrypt a PKCS7 message") until it is enabled again.`,
    promote: `Promote the next CA of ${ca.name} (${ca.subject})? It issues from now on; the current one retires.`,
  }[action];
  if (ask && !(await confirmAction(ask, action === 'disable' ? 'Disable' : 'Promote'))) return;
  try {
    const done = await api('POST', `/certificate-authorities/${encodeURIComponent(ca.id)}/${action}`);
    announce({ enable: `${done.name} enabled for SCEP.`, disable: `${done.name} disabled for SCEP.`, promote: `${done.name} rolled over: ${done.subject} is the current CA.` }[action]);
    await loadCas();
  } catch (e) {
    report(e);
  }
}

function openStage(ca) {
  stagingFor = ca;
  $('stage-form').reset();
  clearErrors($('stage-form'));
  $('stage-title').textContent = `Stage next CA of ${ca.name}`;
  $('st-subject').value = ca.subject;
  $('st-bits').value = String(ca.key_bits);
  $('stage-panel').hidden = false;
  $('st-subject').focus();
}

/** `{ subject, key_bits, validity_days? }` from the fields with these ids. */
function generateBody(subject, bits, days) {
  const body = { subject: $(subject).value, key_bits: Number($(bits).value) };
  if ($(days).value.trim()) body.validity_days = Number($(days).value);
  return body;
}

onSubmit($('stage-form'), async () => {
  const staged = await api('POST', `/certificate-authorities/${encodeURIComponent(stagingFor.id)}/stage-next`, { body: { generate: generateBody('st-subject', 'st-bits', 'st-days') } });
  $('stage-panel').hidden = true;
  announce(`Next CA of ${staged.name} staged: ${staged.subject}. Promote it when clients have it.`);
  await loadCas();
});
$('stage-cancel').addEventListener('click', () => ($('stage-panel').hidden = true));

onSubmit($('ca-form'), async () => {
  const body = { name: $('ca-name').value };
  if ($('ca-source').value === 'generate') body.generate = generateBody('ca-subject', 'ca-bits', 'ca-days');
  else body.import = { certificate_pem: $('ca-cert').value, private_key_pem: $('ca-key').value };
  const ca = await api('POST', '/certificate-authorities', { body });
  $('ca-form').reset();
  syncCaForm();
  announce(`Certificate authority ${ca.name} created: ${ca.subject}.`);
  await loadCas();
});

function syncCaForm() {
  for (const el of $('ca-form').querySelectorAll('[data-source]')) el.hidden = el.dataset.source !== $('ca-source').value;
}
$('ca-source').addEventListener('change', syncCaForm);

// ---- start ----
syncProfileForm();
// Signed in by Cloudflare Access already? The API then answers without a token (worker/src/access.js).
if (!token()) {
  const res = await fetch('/api/v1/scep-profiles?limit=1', { cache: 'no-store' }).catch(() => null);
  if (res?.ok) sessionStorage.setItem(TOKEN_KEY, ACCESS);
}
route();
