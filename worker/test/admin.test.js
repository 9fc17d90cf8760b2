// The admin API: auth on every route, the _errors envelope, profiles, seats (CSV), enrollments, and an
// OpenAPI document that matches the routes served.
import { describe, expect, it } from 'vitest';
import { admin } from '../src/admin.js';
import { openapi } from '../src/openapi.js';
import { api, BASE, enrolledSeat, env, fetchWorker, profileBody, unique } from './helpers.js';

const routes = () =>
  admin.routes.filter((r) => r.method !== 'ALL').map((r) => ({ method: r.method.toLowerCase(), path: r.path.replace(/:(\w+)/g, '{$1}') }));

function expectEnvelope(r, status, code, message) {
  expect(r.status).toBe(status);
  expect(r.json._errors[0]).toMatchObject({ code, ...(message ? { message } : {}) });
  expect(r.json._request_id).toMatch(/^[0-9a-f-]{36}$/);
}

describe('auth', () => {
  it('every admin route refuses without a token (Not Authenticated) and with a wrong one (Invalid Credential)', async () => {
    expect(routes().length).toBeGreaterThanOrEqual(15);
    for (const { method, path } of routes()) {
      const url = path.replace(/\{\w+\}/g, 'x');
      expectEnvelope(await api(method.toUpperCase(), url, undefined, { token: null }), 401, 'E016', 'Not Authenticated');
      expectEnvelope(await api(method.toUpperCase(), url, undefined, { token: 'wrong' }), 401, 'E016', 'Invalid Credential');
    }
  });
});

describe('OpenAPI', () => {
  it('documents exactly the routes the admin app serves', async () => {
    const served = new Set(routes().map((r) => `${r.method} ${r.path}`));
    const documented = new Set(Object.entries(openapi.paths).flatMap(([path, ops]) => Object.keys(ops).filter((k) => k !== 'parameters').map((m) => `${m} ${path}`)));
    expect([...documented].sort()).toEqual([...served].sort());
    const res = await fetchWorker(`${BASE}/api/v1/openapi.json`);
    expect((await res.json()).openapi).toBe('3.0.3');
  });
});

describe('profiles', () => {
  it('validates with field details, 409 on a duplicate name, masks secrets, and refuses deleting a profile in use', async () => {
    const bad = await api('POST', '/scep-profiles', { name: 'x'.repeat(40), folder: 'ok' });
    expectEnvelope(bad, 400, 'E003', 'Invalid Object');
    expect(Object.keys(bad.json._errors[0].details)).toEqual(expect.arrayContaining(['name', 'scep_challenge', 'digest', 'scep_url', 'algorithm.rsa.rsa_nbits']));
    expectEnvelope(await api('POST', '/scep-profiles', '{nope'), 400, 'E003', 'Input Format Mismatch: input-format=json');
    expectEnvelope(await api('POST', '/scep-profiles', ''), 400, 'E003', 'Missing Body');
    expectEnvelope(await api('POST', '/scep-profiles', [1, 2]), 400, 'E003', 'Invalid Object');

    const name = unique('prof').slice(0, 31);
    const body = profileBody(name, { scep_challenge: { dynamic: { otp_server_url: 'https://x', username: 'u', password: 'hunter2' } }, digest: 'sha348' });
    const created = await api('POST', '/scep-profiles', body);
    expect(created.status).toBe(201);
    expect(created.json.digest).toBe('sha384');
    expect(created.json.scep_challenge.dynamic.password).toBe('********');
    expect(JSON.stringify((await api('GET', '/scep-profiles')).json)).not.toContain('hunter2');
    expectEnvelope(await api('POST', '/scep-profiles', body), 409, 'E006', 'Name Not Unique');

    const put = await api('PUT', `/scep-profiles/${created.json.id}`, { ...created.json, validity_days: 90 });
    expect(put.status).toBe(200);
    expect(put.json.validity_days).toBe(90);
    expectEnvelope(await api('GET', '/scep-profiles/no-such-id'), 404, 'E005');

    const seat = unique('s');
    await api('POST', '/seats', { id: seat });
    expect((await api('POST', '/enrollments', { seat_id: seat, profile: name })).status).toBe(201);
    expectEnvelope(await api('DELETE', `/scep-profiles/${created.json.id}`), 409, 'E009', 'Reference Not Zero');
    const spare = await api('POST', '/scep-profiles', profileBody(unique('spare').slice(0, 31)));
    expect((await api('DELETE', `/scep-profiles/${spare.json.id}`)).status).toBe(204);
  });
});

describe('seats and enrollments', () => {
  it('creates seats one by one and by CSV, where a bad row does not sink the good ones', async () => {
    const a = unique('a');
    expect((await api('POST', '/seats', { id: a })).status).toBe(201);
    expectEnvelope(await api('POST', '/seats', { id: a }), 409, 'E016', 'Object Not Unique');
    expectEnvelope(await api('POST', '/seats', { id: 42 }), 400, 'E003');
    const s = await enrolledSeat();
    const [b, c] = [unique('b'), unique('c')];
    const csv = `seat_id,profile\n${b},${s.profile}\n,${s.profile}\n${c},\n${a},\n`;
    const r = await api('POST', '/seats/bulk', csv, { contentType: 'text/csv' });
    expect(r.status).toBe(201);
    expect(r.json.results.map((x) => x.status)).toEqual(['created', 'error', 'created', 'error']);
    expect(r.json.results[0].enrollment_code).toMatch(/^[A-Z2-7]{5}(-[A-Z2-7]{5}){3}$/);
    const seats = (await api('GET', '/seats')).json.data.map((x) => x.id);
    expect(seats).toEqual(expect.arrayContaining([a, b, c]));
  });

  it('shows the code only at creation, stores only its MAC, and a new code revokes the old one', async () => {
    const s = await enrolledSeat();
    const list = (await api('GET', `/enrollments?seat_id=${s.seat}`)).json.data;
    expect(JSON.stringify(list)).not.toContain(s.code);
    const { results } = await env.DB.prepare('SELECT * FROM enrollments WHERE seat_id = ?').bind(s.seat).all();
    expect(JSON.stringify(results)).not.toContain(s.code);
    expect(results[0].code_mac).toMatch(/^[0-9a-f]{64}$/);
    await api('POST', '/enrollments', { seat_id: s.seat, profile: s.profile });
    const statuses = (await api('GET', `/enrollments?seat_id=${s.seat}`)).json.data.map((e) => e.status);
    expect(statuses).toEqual(['REVOKED', 'CREATED']);
    expectEnvelope(await api('POST', '/enrollments', { seat_id: unique('none'), profile: s.profile }), 404, 'E005');
    expectEnvelope(await api('POST', '/enrollments', { seat_id: s.seat }), 400, 'E003');
  });

  it('filters the audit log and refuses bad query parameters', async () => {
    expectEnvelope(await api('GET', '/audit-logs?status=Maybe'), 400, 'E003', 'Invalid Query Parameter: status=Maybe');
    expectEnvelope(await api('GET', '/audit-logs?since=yesterday'), 400, 'E003');
    const r = await api('GET', '/audit-logs?status=Failure&since=2020-01-01T00:00:00Z');
    expect(r.status).toBe(200);
    expect(r.json.data.every((l) => l.status === 'Failure')).toBe(true);
  });

  it('unknown API paths use the envelope too; no response carries a secret', async () => {
    expectEnvelope(await api('GET', '/nope'), 404, 'E005');
    const everything = JSON.stringify([(await api('GET', '/scep-profiles')).json, (await api('GET', '/certificates')).json, (await api('GET', '/audit-logs')).json]);
    for (const secret of [env.CA_KEY, env.RA_KEY, env.CODE_KEY, env.ADMIN_TOKEN]) expect(everything).not.toContain(secret.length > 80 ? secret.slice(40, 80) : secret);
  });
});
