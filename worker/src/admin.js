// The admin API (/api/v1, JSON, Bearer ADMIN_TOKEN). Every error uses the `_errors` envelope of
// shared/spec/scep-profile.md; validation of profiles is the core's (the same the page can run).
import { Hono } from 'hono';
import * as scep from 'scepkit/server';
import * as nodeCrypto from 'node:crypto';
import { caNamed, caOfProfile, defaultCaName, generateCaKey, identity, identityOf, nativeKey, pkcs8Key, SECRETS, wrapKey } from './ca.js';
import { accessConfigured, accessIdentity } from './access.js';
import { documented, PROFILE_NAME, SEAT_ID, SEAT_ID_WORDS } from './openapi.js';
import { callUpstream, currentCrl } from './scep.js';
import { Conflict, Store } from './store.js';
import { csv } from '../../www/csv.js';

const now = () => Math.floor(Date.now() / 1000);

export class ApiError extends Error {
  constructor(status, code, message, details = {}, help) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
    this.help = help;
  }
}

export function errorResponse(c, e) {
  const requestId = crypto.randomUUID();
  const error =
    e instanceof ApiError ? e
    : e instanceof Conflict ? new ApiError(409, e.code, e.message, e.details ?? {})
    : new ApiError(500, 'E003', 'Internal Error', {}, 'retry; if it persists, read the Worker log for this _request_id');
  if (error.status >= 500) console.error(requestId, e);
  const body = { _errors: [{ code: error.code, message: error.message, details: error.details, ...(error.help ? { help: error.help } : {}) }], _request_id: requestId };
  return c.json(body, error.status);
}

/** " by <who>" for an audit message, when Cloudflare Access named who acted. */
const by = (c) => (c.get('actor') ? ` by ${c.get('actor')}` : '');
const notFound = (what) => new ApiError(404, 'E005', 'Object Not Present', { object: what });
const invalid = (details, message = 'Invalid Object') => new ApiError(400, 'E003', message, details);

/** Compares the bearer token in constant time. */
function sameToken(given, expected) {
  const a = new TextEncoder().encode(given);
  const b = new TextEncoder().encode(expected);
  if (a.length !== b.length) return false;
  return crypto.subtle.timingSafeEqual ? crypto.subtle.timingSafeEqual(a, b) : a.every((x, i) => x === b[i]);
}

// A media type as RFC 9110 §8.3.1 spells it: `type/subtype`, then `; name=value` parameters (value a token or
// a quoted string). Returns the lowercased `type/subtype` and the charset, or null when the header is malformed.
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const MEDIA_TYPE = new RegExp(`^(${TOKEN}/${TOKEN})((?:[ \\t]*;[ \\t]*(?:${TOKEN}=(?:${TOKEN}|"(?:[^"\\\\]|\\\\.)*"))?)*)[ \\t]*$`);
const PARAMETER = new RegExp(`;[ \\t]*(${TOKEN})=(${TOKEN}|"(?:[^"\\\\]|\\\\.)*")`, 'g');

function mediaType(header) {
  const m = MEDIA_TYPE.exec(header ?? '');
  if (!m) return null;
  const params = Object.fromEntries([...m[2].matchAll(PARAMETER)].map(([, k, v]) => [k.toLowerCase(), v.replace(/^"|"$/g, '').toLowerCase()]));
  return { type: m[1].toLowerCase(), charset: params.charset };
}

/**
 * Refuses a body whose Content-Type is not exactly `expected` (any case, parameters allowed, a charset only if
 * UTF-8: the body is read as UTF-8). Structured-syntax suffixes (`application/merge-patch+json`) are refused
 * too: they name other semantics than the plain object this API takes.
 */
function requireMediaType(c, expected, format) {
  const given = c.req.header('content-type');
  const m = mediaType(given);
  if (m?.type !== expected || (m.charset && !['utf-8', 'utf8'].includes(m.charset))) {
    throw invalid({ content_type: `must be ${expected} (charset=utf-8 allowed); got ${given === undefined ? 'none' : JSON.stringify(given)}` }, `Input Format Mismatch: input-format=${format}`);
  }
}

async function json(c) {
  requireMediaType(c, 'application/json', 'json');
  const text = await c.req.text();
  if (!text.trim()) throw invalid({}, 'Missing Body');
  let body;
  try {
    body = JSON.parse(text);
  } catch (e) {
    throw invalid({ body: e.message }, 'Input Format Mismatch: input-format=json');
  }
  if (nestedDeeperThan(body, MAX_DEPTH)) throw invalid({ body: `must not nest objects and arrays more than ${MAX_DEPTH} deep` });
  return body;
}

// The core walks a body recursively, and a stack overflow inside wasm leaves the instance broken for every
// later request, so nesting is bounded before it gets there (a profile is 4 deep).
const MAX_DEPTH = 16;
const nestedDeeperThan = (v, depth) => typeof v === 'object' && v !== null && (depth === 0 || Object.values(v).some((x) => nestedDeeperThan(x, depth - 1)));

/**
 * A required string field. Leading or trailing whitespace is refused, never trimmed: a trimmed value could name
 * another seat or profile than the one sent.
 */
function checkString(v, field, { max = 255, pattern, rule } = {}) {
  if (typeof v !== 'string' || v === '') throw invalid({ [field]: 'is required and must be a non-empty string' });
  if (v !== v.trim()) throw invalid({ [field]: 'must not start or end with whitespace' });
  if (v.length > max) throw invalid({ [field]: `must be at most ${max} characters` });
  if (pattern && !pattern.test(v)) throw invalid({ [field]: rule ?? `must match ${pattern}` });
  return v;
}

// The core's seat id rule (names::check_seat_id, also applied to a seat a one-time password creates): inner
// spaces are allowed ("Jane Doe"); a space at either end never (checkString says so first, by name).
const seatId = (v, field) => checkString(v, field, { max: 128, pattern: SEAT_ID, rule: SEAT_ID_WORDS });

// A profile name is a path segment of /scep/<name>: a name that breaks the rule cannot exist, so looking it up
// is a 400, not a 404.
const profileName = (v, field) => checkString(v, field, { max: 31, pattern: PROFILE_NAME, rule: 'must be at most 31 of letters, digits, - _ . and inner spaces, without ..' });

/** Runs one of the core's profile checks; its failing fields become the envelope's `details` (path → rule). */
function checkedProfile(check) {
  try {
    return check();
  } catch (e) {
    throw invalid(Object.fromEntries((e.details ?? []).map((d) => [d.path, d.rule])));
  }
}

// As the core shows it: secrets masked, and a dynamic challenge's OTP server this service's page by default.
const publicProfile = (c, p) => ({ ...scep.validateProfile(p.body, new URL(c.req.url).origin), id: p.id });

export const admin = new Hono();

admin.use('*', async (c, next) => {
  const assertion = c.req.header('cf-access-jwt-assertion');
  if (assertion && accessConfigured(c.env)) {
    // Behind Cloudflare Access: its JWT alone lets the request in (and names who acted), or nothing does.
    const { identity: who, error } = await accessIdentity(c.env, assertion);
    if (!who) throw new ApiError(401, 'E016', 'Invalid Credential', { 'Cf-Access-Jwt-Assertion': error }, 'sign in through Cloudflare Access again');
    c.set('actor', who);
    c.set('store', new Store(c.env.DB));
    c.set('query', checkedQuery(c));
    return next();
  }
  const header = c.req.header('authorization');
  if (!header) throw new ApiError(401, 'E016', 'Not Authenticated', {}, 'send Authorization: Bearer <ADMIN_TOKEN>');
  // RFC 6750 §2.1: `Bearer` (any case), spaces, one token68, nothing after it.
  const token = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i.exec(header)?.[1];
  if (!token || !c.env.ADMIN_TOKEN || !sameToken(token, c.env.ADMIN_TOKEN)) {
    throw new ApiError(401, 'E016', 'Invalid Credential', {}, 'send Authorization: Bearer <ADMIN_TOKEN>');
  }
  c.set('store', new Store(c.env.DB));
  c.set('query', checkedQuery(c));
  await next();
});

/**
 * The query parameters of the request as the operation documents them (openapi.js): any other is refused, a
 * parameter given twice is refused, and each value is checked against its schema; a list's `cursor` is decoded.
 * A path or method that is not documented is left to the router (404, 405).
 */
function checkedQuery(c) {
  const operation = documented(c.req.path.replace(/^\/api\/v1/, ''))?.[c.req.method.toLowerCase()];
  if (!operation) return {};
  const params = Object.fromEntries((operation.parameters ?? []).filter((p) => p.in === 'query').map((p) => [p.name, p.schema]));
  const out = {};
  for (const [name, values] of Object.entries(c.req.queries())) {
    const schema = params[name];
    const names = Object.keys(params);
    if (!schema) throw invalid({ [name]: names.length ? `is not a parameter of this operation (it takes ${names.join(', ')})` : 'is not a parameter of this operation (it takes none)' }, `Invalid Query Parameter: ${name}`);
    if (values.length > 1) throw invalid({ [name]: 'is given more than once' }, `Invalid Query Parameter: ${name}`);
    out[name] = queryValue(name, values[0], schema);
  }
  for (const [name, schema] of Object.entries(params)) if (!(name in out) && schema.default !== undefined) out[name] = schema.default;
  if ('cursor' in out) out.cursor = decodeCursor(out.cursor);
  return out;
}

function queryValue(name, value, schema) {
  const bad = (rule) => invalid({ [name]: rule }, `Invalid Query Parameter: ${name}=${value}`);
  if (schema.type === 'integer') {
    if (!/^\d{1,15}$/.test(value) || Number(value) < schema.minimum || Number(value) > schema.maximum) throw bad(`must be an integer from ${schema.minimum} to ${schema.maximum}`);
    return Number(value);
  }
  if (schema.enum) {
    // Values are named without regard to case (status=failure finds the Failure rows), answered as documented.
    const named = schema.enum.find((e) => e.toLowerCase() === value.toLowerCase());
    if (named === undefined) throw bad(`must be one of ${schema.enum.join(', ')}`);
    return named;
  }
  if (value.length > schema.maxLength || value === '') throw bad(`must be 1 to ${schema.maxLength} characters`);
  if (schema.pattern && !new RegExp(schema.pattern).test(value)) throw bad(`must match ${schema.pattern}`);
  if (schema.format === 'unix-seconds-or-rfc3339') {
    const seconds = /^\d+$/.test(value) ? Number(value) : Math.floor(Date.parse(value) / 1000);
    if (!Number.isFinite(seconds)) throw bad('must be Unix seconds or an RFC 3339 time');
    return seconds;
  }
  return value;
}

// A cursor is opaque to clients: the page's last row's key, as base64url JSON.
const encodeCursor = (key) => key && btoa(JSON.stringify(key)).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
function decodeCursor(text) {
  try {
    const key = JSON.parse(atob(text.replaceAll('-', '+').replaceAll('_', '/')));
    if (Array.isArray(key) && key.length && key.every((v) => ['string', 'number'].includes(typeof v))) return key;
  } catch {}
  throw invalid({ cursor: 'is not a next_cursor this API gave' }, 'Invalid Query Parameter: cursor');
}

/** A list's answer: a page of rows, as `show` shows each, and where the next page starts. */
const listed = (c, { rows, next }, show = (r) => r) => c.json({ data: rows.map(show), next_cursor: encodeCursor(next) });

/** The page a key of `cursor` of the wrong length cannot name: refused as not given by this API. */
function paged(c, order) {
  const { limit, cursor } = c.get('query');
  if (cursor && cursor.length !== order) throw invalid({ cursor: 'is not a next_cursor this API gave' }, 'Invalid Query Parameter: cursor');
  return { limit, cursor };
}

// ---- SCEP profiles ----
/** A profile's ca_identity_name must name a CA of the CA manager (the secrets' CA is CA_NAME, default "default"). */
async function checkCaName(c, profile) {
  const ca = await caNamed(c.env, c.get('store'), profile.ca_identity_name);
  // RA mode signs for the devices with an RA certificate: only the CA of the Worker's secrets has one.
  if (ca && profile.upstream && !(await identityOf(c.env, ca)).hasRa) {
    throw invalid({ ca_identity_name: `must name the CA of the Worker's secrets (${defaultCaName(c.env)}) with an upstream: its RA signs the requests sent upstream` });
  }
  if (ca) return;
  const known = (await c.get('store').caPage({ role: 'current', limit: 100 })).rows.map((r) => r.name);
  throw invalid({ ca_identity_name: `must name a certificate authority of the CA manager (${known.join(', ')})` });
}

admin.post('/scep-profiles', async (c) => {
  const body = await json(c);
  const profile = checkedProfile(() => scep.storedProfile(body, c.env.CODE_KEY));
  await checkCaName(c, profile);
  const created = await c.get('store').createProfile(profile, now());
  return c.json(publicProfile(c, created), 201);
});

admin.get('/scep-profiles', async (c) => {
  const { name } = c.get('query');
  return listed(c, await c.get('store').profilePage({ name, ...paged(c, 1) }), (p) => publicProfile(c, p));
});

admin.get('/scep-profiles/:id', async (c) => {
  const p = await c.get('store').profile(c.req.param('id'));
  if (!p) throw notFound('scep-profile');
  return c.json(publicProfile(c, p));
});

admin.put('/scep-profiles/:id', async (c) => {
  const store = c.get('store');
  const existing = await store.profile(c.req.param('id'));
  if (!existing) throw notFound('scep-profile');
  const body = await json(c);
  // A secret sent back masked keeps the stored one: the core merges (ScepProfile::update).
  const replacement = checkedProfile(() => scep.updatedProfile(existing.body, body, c.env.CODE_KEY));
  await checkCaName(c, replacement);
  const updated = await store.updateProfile(existing.id, replacement, now());
  return c.json(publicProfile(c, updated));
});

admin.delete('/scep-profiles/:id', async (c) => {
  if (!(await c.get('store').deleteProfile(c.req.param('id')))) throw notFound('scep-profile');
  return c.body(null, 204);
});

// ---- seats ----
admin.post('/seats', async (c) => {
  const body = await json(c);
  const id = seatId(body?.id, 'id');
  return c.json(await c.get('store').createSeat(id, now()), 201);
});

admin.get('/seats', async (c) => listed(c, await c.get('store').seatPage({ prefix: c.get('query').prefix, ...paged(c, 1) })));

admin.get('/seats/:id', async (c) => {
  const seat = await c.get('store').seat(c.req.param('id'), now());
  if (!seat) throw notFound(`seat ${c.req.param('id')}`);
  return c.json(seat);
});

// A seat with a certificate still valid is not deleted (the reference API's E009); otherwise its open codes are
// revoked and it is marked deleted: its old certificates keep it in the CRL and the audit log.
admin.delete('/seats/:id', async (c) => {
  const id = c.req.param('id');
  const t = now();
  const audit = { time: t, seatId: id, operation: 'delete_seat', status: 'Success', code: 'seat_deleted', message: `Seat ${id} deleted${by(c)}; its open enrollment codes revoked` };
  try {
    if (!(await c.get('store').deleteSeat(id, t, audit))) throw notFound(`seat ${id}`);
  } catch (e) {
    if (e instanceof Conflict) throw new ApiError(409, 'E009', 'Reference Not Zero', { seat: 'has a certificate that is neither revoked nor expired: revoke it first' });
    throw e;
  }
  return c.body(null, 204);
});

/**
 * CSV (RFC 4180, quoted cells; Request.text()'s UTF-8 decode already drops a leading BOM) with a header naming
 * `seat_id` and optionally `profile`; other columns are ignored. Each row stands alone and is all or nothing: it
 * is checked first, then its seat and its enrollment are written in one batch, so a row reported as failed leaves
 * nothing behind. Cells are taken as they are: a space at either end refuses the row, it is not trimmed into
 * another seat's id.
 */
admin.post('/seats/bulk', async (c) => {
  requireMediaType(c, 'text/csv', 'csv');
  // Row numbers count every record, blank ones too, so they match the file (the header is row 1).
  const rows = parseCsv(await c.req.text())
    .map((cells, i) => ({ row: i + 1, cells }))
    .filter(({ cells }) => cells.length > 1 || cells[0] !== '');
  if (!rows.length) throw invalid({}, 'Missing Body');
  const [{ cells: header }, ...data] = rows;
  const columns = header.map((h) => h.trim().toLowerCase());
  const twice = columns.find((name, i) => name && columns.indexOf(name) !== i);
  if (twice) throw invalid({ header: `names the column ${twice} twice` });
  const seatCol = columns.indexOf('seat_id');
  const profileCol = columns.indexOf('profile');
  if (seatCol < 0) throw invalid({ header: 'must name a seat_id column' });
  const store = c.get('store');
  const profiles = new Map(); // name → profile or null, looked up once per upload
  const results = [];
  for (const { row, cells } of data) {
    const id = cells[seatCol];
    try {
      // A short or long row is a misplaced comma: which cell is the seat id is a guess, so no guess is made.
      if (cells.length !== header.length) throw invalid({ row: `has ${cells.length} cells; the header has ${header.length}` });
      seatId(id, 'seat_id');
      const name = profileCol >= 0 ? cells[profileCol] : '';
      let profile = null;
      if (name !== '') {
        profileName(name, 'profile');
        if (!profiles.has(name)) profiles.set(name, await store.profileByName(name));
        profile = profiles.get(name);
        if (!profile) throw notFound(`scep-profile ${name}`);
      }
      const t = now();
      const fresh = profile && (await freshCode(c, profile, t));
      const seat = await store.createSeat(id, t, profile && enrollmentOf(profile, fresh, t));
      results.push({ row, seat_id: id, status: 'created', ...(profile ? { enrollment: { ...seat.enrollment, profile: profile.name }, enrollment_code: fresh.code } : {}) });
    } catch (e) {
      const known = e instanceof ApiError || e instanceof Conflict;
      if (!known) console.error(e);
      results.push({ row, seat_id: id ?? null, status: 'error', error: known ? e.message : 'Internal Error', details: e.details ?? {} });
    }
  }
  const created = results.filter((r) => r.status === 'created').length;
  return c.json({ created, failed: results.length - created, results }, created ? 201 : 400);
});

/**
 * Splits RFC 4180 text into records of cells: `"` quotes a cell (which may then hold commas and line breaks,
 * `""` is a quote), lines end in CRLF, LF or CR. A quote anywhere else refuses the whole upload with its line:
 * where its rows begin and end would be a guess.
 */
function parseCsv(text) {
  const CELL = /("[^"]*(?:""[^"]*)*"|[^",\r\n]*)(,|\r\n?|\n|$)/y; // unrolled: linear, even on an unclosed quote
  const records = [];
  let record = [];
  while (true) {
    const at = CELL.lastIndex;
    const m = CELL.exec(text);
    if (!m) {
      const line = text.slice(0, at).split(/\r\n?|\n/).length;
      throw invalid({ csv: `line ${line}: a quote may only enclose a whole cell, and must be closed` }, 'Input Format Mismatch: input-format=csv');
    }
    record.push(m[1].startsWith('"') ? m[1].slice(1, -1).replaceAll('""', '"') : m[1]);
    if (m[2] === ',') continue;
    records.push(record);
    record = [];
    if (CELL.lastIndex >= text.length) return records;
  }
}

// ---- enrollments ----
/** What createEnrollment / createSeat need for a new code (the core's newEnrollment) of `profile` at `t`. */
const enrollmentOf = (profile, fresh, t) => ({ profileId: profile.id, codeMac: fresh.codeMac, expiresAt: fresh.expiresAt, now: t });

/**
 * A new code of `profile` at `t`: the core's, or for a profile whose upstream CA hands out one-time passwords
 * (RA mode, NDES's mscep_admin page) one fetched from it. An upstream that gives none is a 502.
 */
async function freshCode(c, profile, t) {
  const request = scep.upstreamChallengeRequest(profile.body);
  if (!request) return scep.newEnrollment(c.env.CODE_KEY, t);
  try {
    return scep.enrollmentFromUpstream(profile.body, await callUpstream(request), c.env.CODE_KEY, t);
  } catch (e) {
    if (!(e instanceof scep.ScepError)) throw e;
    throw new ApiError(502, 'E003', 'Upstream Unavailable', { upstream: e.message }, e.resolution);
  }
}

admin.post('/enrollments', async (c) => {
  const body = await json(c);
  const id = seatId(body?.seat_id, 'seat_id');
  const name = profileName(body?.profile, 'profile');
  const store = c.get('store');
  const profile = await store.profileByName(name);
  if (!profile) throw notFound(`scep-profile ${name}`);
  if (!(await store.seatExists(id))) throw notFound(`seat ${id}`);
  const t = now();
  const fresh = await freshCode(c, profile, t);
  const e = await store.createEnrollment({ seatId: id, ...enrollmentOf(profile, fresh, t) });
  return c.json({ ...e, profile: profile.name, enrollment_code: fresh.code }, 201);
});

admin.get('/enrollments', async (c) => {
  const { seat_id, profile, status } = c.get('query');
  return listed(c, await c.get('store').enrollmentPage({ seat_id, profile, status, ...paged(c, 2) }));
});

admin.get('/enrollments/:id', async (c) => {
  const e = await c.get('store').enrollment(c.req.param('id'));
  if (!e) throw notFound(`enrollment ${c.req.param('id')}`);
  return c.json(e);
});

// Revokes an unused code; a redeemed one is history (its certificate is revoked on its own).
admin.delete('/enrollments/:id', async (c) => {
  const store = c.get('store');
  const e = await store.enrollment(c.req.param('id'));
  if (!e) throw notFound(`enrollment ${c.req.param('id')}`);
  const audit = { time: now(), profile: e.profile, seatId: e.seat_id, operation: 'revoke_code', status: 'Success', code: 'code_revoked', message: `Enrollment code ${e.id} revoked unused${by(c)}` };
  if (!(await store.revokeEnrollment(e.id, audit))) {
    throw new ApiError(409, 'E016', 'Object Not Unique', { status: `is ${(await store.enrollment(e.id)).status}: only an unused (CREATED) code can be revoked` });
  }
  return c.json(await store.enrollment(e.id));
});

// An Apple configuration profile for an open enrollment. The store keeps only the code's MAC, so the caller
// sends the code back (SCEP-Challenge); the core checks it and the enrollment's state (400, 409, 410).
admin.get('/enrollments/:id/mobileconfig', async (c) => {
  const code = c.req.header('scep-challenge');
  if (!code) throw invalid({ 'SCEP-Challenge': 'is required: the enrollment code shown when the enrollment was created' }, 'Missing Header: SCEP-Challenge');
  const store = c.get('store');
  const found = await store.enrollmentForPayload(c.req.param('id'));
  if (!found) throw notFound(`enrollment ${c.req.param('id')}`);
  const url = `${new URL(c.req.url).origin}/scep/${encodeURIComponent(found.profile.name)}`;
  let xml;
  try {
    // Devices pin the CA that issues: in RA mode the upstream's, as the profile pins it.
    const upstream = scep.upstreamCaCertRequest(found.profile.body);
    const ca = upstream ? scep.upstreamCaCertificate(found.profile.body, await callUpstream(upstream)) : new Uint8Array((await caOfProfile(c.env, store, found.profile.body)).certificate);
    xml = scep.mobileconfig(found.profile.body, found.enrollment, code, c.env.CODE_KEY, url, ca, now());
  } catch (e) {
    if (!(e instanceof scep.ScepError)) throw e;
    throw e.status === 400 ? invalid({ 'SCEP-Challenge': e.message }) : new ApiError(e.status, 'E003', e.message, {}, e.resolution);
  }
  return c.body(xml, 200, {
    'content-type': 'application/x-apple-aspen-config',
    'content-disposition': `attachment; filename="${found.enrollment.seatId.replace(/[^A-Za-z0-9._-]/g, '_')}.mobileconfig"`,
  });
});

admin.get('/transactions', async (c) => {
  const { status, profile, seat_id } = c.get('query');
  return listed(c, await c.get('store').transactionPage({ status, profile, seat_id, ...paged(c, 2) }), requested);
});

/** A transaction as an approver sees it: what the certificate would be (the plan) and the key, not their bytes. */
function requested({ plan, public_key: publicKey, ...t }) {
  let key = null;
  try {
    key = publicKey?.length ? scep.publicKeyFacts(new Uint8Array(publicKey)) : null;
  } catch {}
  const p = plan ? JSON.parse(plan) : null;
  return { ...t, requested: p && { subject: p.subject, sans: p.sans, key, not_before: p.not_before, not_after: p.not_after } };
}

admin.post('/enrollments/:id/approve', async (c) => (await decisionBody(c, []), decidePending(c, 'approve', await pendingOfEnrollment(c))));
admin.post('/enrollments/:id/reject', async (c) => (await decisionBody(c, ['reason']), decidePending(c, 'reject', await pendingOfEnrollment(c))));
// A held renewal redeemed no enrollment: it is decided by its transaction (profile_id and signer_fingerprint in
// the body tell apart two requesters that chose the same transactionID).
admin.post('/transactions/:transaction_id/approve', async (c) => decidePending(c, 'approve', await pendingTransaction(c, ['profile_id', 'signer_fingerprint'])));
admin.post('/transactions/:transaction_id/reject', async (c) => decidePending(c, 'reject', await pendingTransaction(c, ['profile_id', 'signer_fingerprint', 'reason'])));

async function pendingOfEnrollment(c) {
  const tx = await c.get('store').pendingByEnrollment(c.req.param('id'));
  if (!tx) throw notFound('pending request for this enrollment');
  return tx;
}

/**
 * A decision's optional JSON body: `reason` (a rejection's, told to the requester at its next poll), and for a
 * decision by transaction `profile_id` and `signer_fingerprint`, which tell apart requesters that chose the same
 * transactionID. Read once per request (c.get('decisionBody')).
 */
async function decisionBody(c, fields) {
  if (!c.get('decisionBody')) {
    const text = await c.req.text();
    let body = {};
    if (text.trim()) {
      requireMediaType(c, 'application/json', 'json');
      try {
        body = JSON.parse(text);
      } catch (e) {
        throw invalid({ body: e.message }, 'Input Format Mismatch: input-format=json');
      }
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid({ body: 'must be a JSON object' });
    c.set('decisionBody', body);
  }
  const body = c.get('decisionBody');
  const extra = Object.keys(body).find((k) => !fields.includes(k));
  if (extra) throw invalid({ [extra]: `is not a field of this decision (it takes ${fields.join(', ')})` });
  for (const field of fields) if (body[field] !== undefined && typeof body[field] !== 'string') throw invalid({ [field]: 'must be a string' });
  if (body.reason !== undefined && body.reason.length > 200) throw invalid({ reason: 'must be at most 200 characters' });
  return body;
}

async function pendingTransaction(c, fields) {
  const body = await decisionBody(c, fields);
  const matches = await c.get('store').pendingByTransaction(c.req.param('transaction_id'), { profileId: body.profile_id, signerFingerprint: body.signer_fingerprint });
  if (!matches.length) throw notFound('pending request with this transaction_id');
  if (matches.length > 1) throw new ApiError(409, 'E016', 'Object Not Unique', { transaction_id: 'several pending requests use it: send profile_id and signer_fingerprint' });
  return matches[0];
}

async function decidePending(c, action, tx) {
  const store = c.get('store');
  const profile = await store.profile(tx.profile_id);
  const issuer = await identityOf(c.env, await caOfProfile(c.env, store, profile.body));
  const reason = action === 'reject' ? (c.get('decisionBody')?.reason ?? null) : null;
  let decision;
  try {
    decision = scep.decideHeld(issuer, Store.held(tx, profile.name), action === 'approve', reason, now());
  } catch (e) {
    // A request forwarded to an upstream CA is decided there.
    if (!(e instanceof scep.ScepError)) throw e;
    throw new ApiError(409, 'E016', 'Object Not Unique', { transaction: e.message }, e.resolution);
  }
  const { writes, serial } = decision;
  if (!(await store.write(writes))) {
    const why = tx.renews ? 'was decided concurrently, or the certificate it renews was renewed or revoked meanwhile' : 'was decided concurrently';
    throw new ApiError(409, 'E016', 'Object Not Unique', { transaction: why });
  }
  return c.json({ transaction_id: tx.transaction_id, status: serial ? 'ISSUED' : 'REJECTED', ...(serial ? { serial } : {}) });
}

// ---- certificates ----
const certificateStatus = (cert, t) => (cert.revoked_at != null ? 'revoked' : cert.not_after <= t ? 'expired' : 'active');
const shownCertificate = (t) => (cert) => ({ ...cert, status: certificateStatus(cert, t) });

admin.get('/certificates', async (c) => {
  const t = now();
  const { seat_id, serial, subject, profile, status } = c.get('query');
  return listed(c, await c.get('store').certificatePage({ seat_id, serial, subject, profile, status, ...paged(c, 2) }, t), shownCertificate(t));
});

admin.get('/certificates/:serial', async (c) => {
  const found = await c.get('store').certificate(c.req.param('serial'));
  if (!found) throw notFound(`certificate ${c.req.param('serial')}`);
  const { der, ...cert } = found;
  const bytes = new Uint8Array(der);
  const accept = c.req.header('accept') ?? '';
  const name = `${cert.serial}`;
  if (/application\/pkix-cert/i.test(accept)) return c.body(bytes, 200, { 'content-type': 'application/pkix-cert', 'content-disposition': `attachment; filename="${name}.cer"` });
  const pem = scep.certificateToPem(bytes);
  if (/application\/x-pem-file/i.test(accept)) return c.body(pem, 200, { 'content-type': 'application/x-pem-file', 'content-disposition': `attachment; filename="${name}.pem"` });
  return c.json({ ...shownCertificate(now())(cert), pem });
});

// Revoking keeps the record: it appears on the CRL with its reason (RFC 5280 CRLReason).
async function revoke(c) {
  const store = c.get('store');
  const text = await c.req.text();
  let reason = 'unspecified';
  if (text.trim()) {
    requireMediaType(c, 'application/json', 'json');
    let body;
    try {
      body = JSON.parse(text);
    } catch (e) {
      throw invalid({ body: e.message }, 'Input Format Mismatch: input-format=json');
    }
    const extra = Object.keys(body ?? {}).find((k) => k !== 'reason');
    if (typeof body !== 'object' || body === null || Array.isArray(body) || extra) throw invalid({ [extra ?? 'body']: 'is not a field of a revocation (it takes reason)' });
    if (body.reason !== undefined) reason = body.reason;
  }
  if (!scep.revocationReasons().includes(reason)) throw invalid({ reason: `must be one of ${scep.revocationReasons().join(', ')}` });
  const serial = c.req.param('serial').toLowerCase();
  const cert = await store.certificate(serial);
  if (!cert) throw notFound(`certificate ${serial}`);
  const t = now();
  // SCEP has no revocation message: an upstream's certificate is revoked here only, and says so.
  const note = cert.upstream && `Revoked at this service only: SCEP cannot ask the upstream CA (${cert.upstream}) to revoke; revoke it there too`;
  const audit = { time: t, profile: cert.profile, seatId: cert.seat_id, operation: 'revoke', status: 'Success', code: 'revoked', message: `Certificate ${serial} revoked (${reason})${by(c)}${note ? `. ${note}` : ''}` };
  if (!(await store.revoke(serial, t, reason, audit))) throw new ApiError(409, 'E016', 'Object Not Unique', { serial: 'is already revoked' });
  return c.json({ serial, revoked: true, reason, ...(cert.upstream ? { propagated: false, note } : {}) });
}

admin.post('/certificates/:serial/revoke', revoke);
admin.delete('/certificates/:serial', revoke);

// ---- certificate authorities (the CA manager: src/certificate_authority.rs) ----
// A CA as the API shows it: never its key, wrapped or not.
const shownCa = ({ wrapped_key: _key, certificate, ...row }) => ({ ...row, enabled: row.enabled === 1, certificate_pem: scep.certificateToPem(new Uint8Array(certificate)) });
const caName = (v) => checkString(v, 'name', { max: 64, pattern: /^[A-Za-z0-9](?:[A-Za-z0-9._\- ]*[A-Za-z0-9._\-])?$/, rule: 'must be at most 64 of letters, digits, - _ . and inner spaces' });

async function caById(c) {
  await caNamed(c.env, c.get('store'), defaultCaName(c.env)); // the secrets' CA has its row
  const row = await c.get('store').ca(c.req.param('id'));
  if (!row) throw notFound(`certificate authority ${c.req.param('id')}`);
  return row;
}

/** A CA's certificate and wrapped key from `{ generate }` or `{ import }`, with its facts. */
async function newCa(c, id, body) {
  const kinds = ['generate', 'import'].filter((k) => body?.[k] !== undefined);
  if (kinds.length !== 1) throw invalid({ generate: 'exactly one of generate ({ subject, key_bits, validity_days }) or import ({ certificate_pem, private_key_pem }) is required' });
  if (!c.env.CA_KEK) throw new ApiError(503, 'E003', 'Service Unavailable', { CA_KEK: 'the key-encryption secret is not set: wrangler secret put CA_KEK (64 hex digits)' });
  const core = (f) => {
    try {
      return f();
    } catch (e) {
      if (!(e instanceof scep.ScepError)) throw e;
      throw invalid(e.details?.length ? Object.fromEntries(e.details.map((d) => [d.path, d.rule])) : { [kinds[0]]: e.message });
    }
  };
  if (kinds[0] === 'generate') {
    const ask = core(() => scep.checkGenerateCa(body.generate));
    const pkcs8 = await generateCaKey(ask.key_bits);
    const certificate = core(() => scep.newCaCertificate(nativeKey(pkcs8Key(pkcs8)), ask, now()));
    return { origin: 'generated', certificate, wrappedKey: await wrapKey(c.env, id, pkcs8), facts: scep.caFacts(certificate) };
  }
  const { certificate_pem: cert, private_key_pem: key, ...extra } = body.import ?? {};
  if (typeof cert !== 'string' || typeof key !== 'string' || Object.keys(extra).length) throw invalid({ import: 'must be { certificate_pem, private_key_pem }, both PEM strings' });
  // node:crypto reads the key (PEM: PKCS#8 or PKCS#1); the core checks that it is the certificate's.
  let keyObject;
  try {
    keyObject = nodeCrypto.createPrivateKey(key);
  } catch (e) {
    throw invalid({ import: `the private key cannot be read: ${e.message}` });
  }
  if (keyObject.asymmetricKeyType !== 'rsa') throw invalid({ import: `the private key is ${keyObject.asymmetricKeyType}, not RSA` });
  const imported = core(() => scep.importCa(new TextEncoder().encode(cert), nativeKey(keyObject)));
  const pkcs8 = new Uint8Array(keyObject.export({ type: 'pkcs8', format: 'der' }));
  return { origin: 'imported', certificate: imported.certificate, wrappedKey: await wrapKey(c.env, id, pkcs8), facts: imported.facts };
}

admin.get('/certificate-authorities', async (c) => {
  await caNamed(c.env, c.get('store'), defaultCaName(c.env));
  const { name, role } = c.get('query');
  return listed(c, await c.get('store').caPage({ name, role, ...paged(c, 3) }), shownCa);
});

admin.get('/certificate-authorities/:id', async (c) => c.json(shownCa(await caById(c))));

admin.post('/certificate-authorities', async (c) => {
  const body = await json(c);
  const extra = Object.keys(body ?? {}).find((k) => !['name', 'generate', 'import'].includes(k));
  if (extra) throw invalid({ [extra]: 'is not a field of a certificate authority (name, generate or import)' });
  const name = caName(body?.name);
  const id = crypto.randomUUID();
  const made = await newCa(c, id, body);
  const audit = { time: now(), operation: 'ca_create', status: 'Success', code: `ca_${made.origin}`, message: `Certificate authority ${name} ${made.origin}${by(c)}: ${made.facts.subject} (SHA-256 ${made.facts.fingerprint})` };
  const row = await c.get('store').createCa({ id, name, role: 'current', ...made, now: now() }, audit);
  return c.json(shownCa(row), 201);
});

for (const [action, enabled] of [['enable', true], ['disable', false]]) {
  admin.post(`/certificate-authorities/:id/${action}`, async (c) => {
    const row = await caById(c);
    const audit = { time: now(), operation: `ca_${action}`, status: 'Success', code: `ca_${action}d`, message: `Certificate authority ${row.name} (${row.subject}) ${enabled ? 'enabled' : 'disabled'} for SCEP${by(c)}` };
    await c.get('store').setCaEnabled(row.id, enabled, audit);
    return c.json(shownCa(await c.get('store').ca(row.id)));
  });
}

// Rollover: the next CA of a name is staged (GetNextCACert serves it, signed by the current one), then promoted.
admin.post('/certificate-authorities/:id/stage-next', async (c) => {
  const current = await caById(c);
  if (current.role !== 'current') throw invalid({ id: `is a ${current.role} CA: stage the next CA of the current one` });
  const body = await json(c);
  const id = crypto.randomUUID();
  const made = await newCa(c, id, body);
  const audit = { time: now(), operation: 'ca_stage', status: 'Success', code: 'ca_staged', message: `Next certificate authority of ${current.name} staged: ${made.facts.subject} (SHA-256 ${made.facts.fingerprint})` };
  try {
    return c.json(shownCa(await c.get('store').createCa({ id, name: current.name, role: 'next', ...made, now: now() }, audit)), 201);
  } catch (e) {
    if (e instanceof Conflict) throw new ApiError(409, 'E016', 'Object Not Unique', { name: `${current.name} has a staged next CA already: promote it first` });
    throw e;
  }
});

admin.post('/certificate-authorities/:id/promote', async (c) => {
  const next = await caById(c);
  if (next.role !== 'next') throw invalid({ id: `is the ${next.role} CA: promote the staged next one` });
  const audit = { time: now(), operation: 'ca_promote', status: 'Success', code: 'ca_promoted', message: `Certificate authority ${next.name} rolled over to ${next.subject} (SHA-256 ${next.fingerprint}); the previous one is retired and still signs the CRL of what it issued` };
  if (!(await c.get('store').promoteCa(next, now(), audit))) throw new ApiError(409, 'E016', 'Object Not Unique', { id: 'was promoted concurrently' });
  return c.json(shownCa(await c.get('store').ca(next.id)));
});

// ---- audit log ----
admin.get('/audit-logs', async (c) => {
  const { status, seat_id, profile, operation, code, since, until } = c.get('query');
  const page = await c.get('store').auditPage({ status, seat_id, profile, operation, code, since, until, ...paged(c, 1) });
  if (!/text\/csv/i.test(c.req.header('accept') ?? '')) return listed(c, page);
  // The export (before the daily prune takes old rows): the page as CSV, the next page's cursor in a header.
  const columns = ['id', 'time', 'status', 'operation', 'code', 'profile', 'seat_id', 'transaction_id', 'message', 'resolution'];
  const rows = page.rows.map((r) => columns.map((k) => (k === 'time' ? new Date(r.time * 1000).toISOString() : r[k])));
  const next = encodeCursor(page.next);
  return c.body(csv([columns, ...rows]), 200, { 'content-type': 'text/csv; charset=utf-8', 'content-disposition': 'attachment; filename="audit-log.csv"', ...(next ? { 'x-next-cursor': next } : {}) });
});

/** The CRL of the secrets' CA (/crl), or of the CA manager's CA `caId` (/crl/<id>; a retired CA's too). */
export async function crlResponse(env, caId = SECRETS) {
  const store = new Store(env.DB);
  const row = caId === SECRETS ? null : await store.ca(caId);
  if (caId !== SECRETS && !row) return new Response('No such certificate authority', { status: 404 });
  const issuer = row ? await identityOf(env, row) : identity(env);
  const crl = await currentCrl(store, issuer, now());
  return new Response(crl, { headers: { 'content-type': 'application/pkix-crl' } });
}
