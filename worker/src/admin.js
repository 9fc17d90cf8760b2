// The admin API (/api/v1, JSON, Bearer ADMIN_TOKEN). Every error uses the `_errors` envelope of
// shared/spec/scep-profile.md; validation of profiles is the core's (the same the page can run).
import { Hono } from 'hono';
import * as scep from 'scepkit';
import { identity } from './ca.js';
import { currentCrl, issueCertificate } from './scep.js';
import { Conflict, Store } from './store.js';

const now = () => Math.floor(Date.now() / 1000);
const ENROLLMENT_TTL = 7 * 86400;

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
    : e instanceof Conflict ? new ApiError(409, e.code, e.message)
    : new ApiError(500, 'E003', 'Internal Error', {}, 'retry; if it persists, read the Worker log for this _request_id');
  if (error.status >= 500) console.error(requestId, e);
  const body = { _errors: [{ code: error.code, message: error.message, details: error.details, ...(error.help ? { help: error.help } : {}) }], _request_id: requestId };
  return c.json(body, error.status);
}

const notFound = (what) => new ApiError(404, 'E005', 'Object Not Present', { object: what });
const invalid = (details, message = 'Invalid Object') => new ApiError(400, 'E003', message, details);

/** Compares the bearer token in constant time. */
function sameToken(given, expected) {
  const a = new TextEncoder().encode(given);
  const b = new TextEncoder().encode(expected);
  if (a.length !== b.length) return false;
  return crypto.subtle.timingSafeEqual ? crypto.subtle.timingSafeEqual(a, b) : a.every((x, i) => x === b[i]);
}

async function json(c) {
  if (!(c.req.header('content-type') ?? '').toLowerCase().includes('application/json')) {
    throw invalid({ content_type: c.req.header('content-type') ?? null }, 'Input Format Mismatch: input-format=json');
  }
  const text = await c.req.text();
  if (!text.trim()) throw invalid({}, 'Missing Body');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw invalid({ body: e.message }, 'Input Format Mismatch: input-format=json');
  }
}

function requireString(body, field, { max = 255, pattern } = {}) {
  const v = body?.[field];
  if (typeof v !== 'string' || !v.trim()) throw invalid({ [field]: 'is required and must be a non-empty string' });
  if (v.length > max) throw invalid({ [field]: `must be at most ${max} characters` });
  if (pattern && !pattern.test(v)) throw invalid({ [field]: `must match ${pattern}` });
  return v;
}

const SEAT_ID = /^[A-Za-z0-9][A-Za-z0-9._@+\- ]{0,127}$/;

function validateProfile(body, env) {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid({ $: 'must be a JSON object' });
  try {
    return scep.storedProfile(body, env.CODE_KEY);
  } catch (e) {
    throw invalid(Object.fromEntries((e.details ?? []).map((d) => [d.path, d.rule])));
  }
}

const publicProfile = (p) => ({ ...scep.validateProfile(p.body), id: p.id });

export const admin = new Hono();

admin.use('*', async (c, next) => {
  const header = c.req.header('authorization');
  if (!header) throw new ApiError(401, 'E016', 'Not Authenticated', {}, 'send Authorization: Bearer <ADMIN_TOKEN>');
  const [scheme, token] = header.split(' ');
  if (scheme?.toLowerCase() !== 'bearer' || !token || !c.env.ADMIN_TOKEN || !sameToken(token, c.env.ADMIN_TOKEN)) {
    throw new ApiError(401, 'E016', 'Invalid Credential', {}, 'send Authorization: Bearer <ADMIN_TOKEN>');
  }
  c.set('store', new Store(c.env.DB));
  await next();
});

// ---- SCEP profiles ----
admin.post('/scep-profiles', async (c) => {
  const profile = validateProfile(await json(c), c.env);
  const created = await c.get('store').createProfile(profile, now());
  return c.json(publicProfile(created), 201);
});

admin.get('/scep-profiles', async (c) => c.json({ data: (await c.get('store').profiles()).map(publicProfile) }));

admin.get('/scep-profiles/:id', async (c) => {
  const p = await c.get('store').profile(c.req.param('id'));
  if (!p) throw notFound('scep-profile');
  return c.json(publicProfile(p));
});

admin.put('/scep-profiles/:id', async (c) => {
  const store = c.get('store');
  const existing = await store.profile(c.req.param('id'));
  if (!existing) throw notFound('scep-profile');
  const body = await json(c);
  // A masked secret sent back unchanged keeps the stored one.
  const dyn = body?.scep_challenge?.dynamic;
  if (dyn?.password === '********') dyn.password = existing.body.scep_challenge?.dynamic?.password;
  if (body?.scep_challenge?.fixed === '********') body.scep_challenge.fixed = existing.body.scep_challenge?.fixed;
  const updated = await store.updateProfile(existing.id, validateProfile(body, c.env), now());
  return c.json(publicProfile(updated));
});

admin.delete('/scep-profiles/:id', async (c) => {
  if (!(await c.get('store').deleteProfile(c.req.param('id')))) throw notFound('scep-profile');
  return c.body(null, 204);
});

// ---- seats ----
admin.post('/seats', async (c) => {
  const body = await json(c);
  const id = requireString(body, 'id', { max: 128, pattern: SEAT_ID });
  return c.json(await c.get('store').createSeat(id, now()), 201);
});

admin.get('/seats', async (c) => c.json({ data: await c.get('store').seats() }));

/** CSV with header `seat_id` and optional `profile`; each row stands alone. */
admin.post('/seats/bulk', async (c) => {
  if (!(c.req.header('content-type') ?? '').toLowerCase().includes('text/csv')) throw invalid({ content_type: 'must be text/csv' }, 'Input Format Mismatch: input-format=csv');
  const lines = (await c.req.text()).split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  if (!lines.length) throw invalid({}, 'Missing Body');
  const header = lines[0].split(',').map((h) => h.trim().toLowerCase());
  const seatCol = header.indexOf('seat_id');
  const profileCol = header.indexOf('profile');
  if (seatCol < 0) throw invalid({ header: 'must name a seat_id column' });
  const store = c.get('store');
  const results = [];
  for (const [i, line] of lines.slice(1).entries()) {
    const cells = line.split(',').map((x) => x.trim());
    const row = i + 2;
    const id = cells[seatCol];
    try {
      if (!id || !SEAT_ID.test(id)) throw invalid({ seat_id: 'is required and must be a valid seat id' });
      await store.createSeat(id, now());
      const result = { row, seat_id: id, status: 'created' };
      const profileName = profileCol >= 0 ? cells[profileCol] : '';
      if (profileName) {
        const { enrollment_code: code, ...enrollment } = await enroll(c, id, profileName);
        Object.assign(result, { enrollment, enrollment_code: code });
      }
      results.push(result);
    } catch (e) {
      results.push({ row, seat_id: id ?? null, status: 'error', error: e.message, details: e.details ?? {} });
    }
  }
  const created = results.filter((r) => r.status === 'created').length;
  return c.json({ created, failed: results.length - created, results }, created ? 201 : 400);
});

// ---- enrollments ----
async function enroll(c, seatId, profileName) {
  const store = c.get('store');
  const profile = await store.profileByName(profileName);
  if (!profile) throw notFound(`scep-profile ${profileName}`);
  if (!(await store.seatExists(seatId))) throw notFound(`seat ${seatId}`);
  const code = scep.newEnrollmentCode();
  const t = now();
  const e = await store.createEnrollment({ seatId, profileId: profile.id, codeMac: scep.enrollmentCodeMac(c.env.CODE_KEY, code), expiresAt: t + ENROLLMENT_TTL, now: t });
  return { ...e, profile: profile.name, enrollment_code: code };
}

admin.post('/enrollments', async (c) => {
  const body = await json(c);
  const seatId = requireString(body, 'seat_id', { max: 128 });
  const profile = requireString(body, 'profile', { max: 31 });
  return c.json(await enroll(c, seatId, profile), 201);
});

admin.get('/enrollments', async (c) => c.json({ data: await c.get('store').enrollments(c.req.query('seat_id')) }));

admin.get('/transactions', async (c) => c.json({ data: await c.get('store').pendingTransactions() }));

admin.post('/enrollments/:id/approve', async (c) => decidePending(c, 'approve'));
admin.post('/enrollments/:id/reject', async (c) => decidePending(c, 'reject'));

async function decidePending(c, action) {
  const store = c.get('store');
  const tx = await store.pendingByEnrollment(c.req.param('id'));
  if (!tx) throw notFound('pending request for this enrollment');
  const t = now();
  const profile = await store.profile(tx.profile_id);
  const key = { profileId: tx.profile_id, transactionId: tx.transaction_id, signerFingerprint: tx.signer_fingerprint };
  const audit = (code, message) => ({ time: t, profile: profile.name, seatId: tx.seat_id, transactionId: tx.transaction_id, operation: action, status: 'Success', code, message });
  if (action === 'reject') {
    // No message of our own: the policy answers the next poll with its standard refusal text.
    const decision = { ...key, status: 'REJECTED', now: t };
    const [moved] = await store.batch([store.transactionDecisionStatement(decision), store.auditStatement(audit('rejected', 'Rejected; the next poll gets FAILURE'), store.decidedAs(decision))]);
    if (!moved.meta.changes) throw new ApiError(409, 'E016', 'Object Not Unique', { transaction: 'was decided concurrently' });
    return c.json({ transaction_id: tx.transaction_id, status: 'REJECTED' });
  }
  // The transition, the renewal it completes, the certificate and the audit row: one batch, all or nothing.
  const issued = issueCertificate({ id: identity(c.env), profile, publicKey: new Uint8Array(tx.public_key), plan: JSON.parse(tx.plan), seatId: tx.seat_id, transactionId: tx.transaction_id, t });
  const decision = { ...key, status: 'ISSUED', serial: issued.serial, renews: tx.renews, now: t };
  const guard = store.decidedAs(decision);
  const [moved] = await store.batch([
    store.transactionDecisionStatement(decision),
    ...(tx.renews ? [store.renewalStatement(tx.renews, issued.serial, guard)] : []),
    store.certificateStatement(issued.row, guard),
    store.auditStatement(audit('approved', `Approved; issued certificate ${issued.serial}${tx.renews ? ` renewing ${tx.renews}` : ''}`), guard),
  ]);
  if (!moved.meta.changes) {
    const why = tx.renews ? 'was decided concurrently, or the certificate it renews was renewed or revoked meanwhile' : 'was decided concurrently';
    throw new ApiError(409, 'E016', 'Object Not Unique', { transaction: why });
  }
  return c.json({ transaction_id: tx.transaction_id, status: 'ISSUED', serial: issued.serial });
}

// ---- certificates ----
admin.get('/certificates', async (c) => c.json({ data: await c.get('store').certificates(c.req.query('seat_id')) }));

admin.post('/certificates/:serial/revoke', async (c) => {
  const store = c.get('store');
  const serial = c.req.param('serial').toLowerCase();
  const cert = await store.certificateBySerial(serial);
  if (!cert) throw notFound('certificate');
  if (!(await store.revoke(serial, now()))) throw new ApiError(409, 'E016', 'Object Not Unique', { serial: 'is already revoked' });
  await store.audit({ time: now(), seatId: cert.seat_id, operation: 'revoke', status: 'Success', code: 'revoked', message: `Certificate ${serial} revoked` });
  return c.json({ serial, revoked: true });
});

// ---- audit log ----
admin.get('/audit-logs', async (c) => {
  const { status, seat_id: seatId, since, limit = '500' } = c.req.query();
  if (!/^\d+$/.test(limit) || Number(limit) < 1 || Number(limit) > 10000) throw invalid({ limit: 'must be an integer from 1 to 10000' }, `Invalid Query Parameter: limit=${limit}`);
  if (status && !['Success', 'Failure'].includes(status)) throw invalid({ status: 'must be Success or Failure' }, `Invalid Query Parameter: status=${status}`);
  const sinceSeconds = since === undefined ? undefined : /^\d+$/.test(since) ? Number(since) : Math.floor(Date.parse(since) / 1000);
  if (since !== undefined && !Number.isFinite(sinceSeconds)) throw invalid({ since: 'must be Unix seconds or an RFC 3339 time' }, `Invalid Query Parameter: since=${since}`);
  return c.json({ data: await c.get('store').auditLogs({ status, seatId, since: sinceSeconds, limit: Number(limit) }) });
});

export async function crlResponse(env) {
  const crl = await currentCrl(new Store(env.DB), identity(env), now());
  return new Response(crl, { headers: { 'content-type': 'application/pkix-crl' } });
}
