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
    const refused = await api('DELETE', `/scep-profiles/${created.json.id}`);
    expectEnvelope(refused, 409, 'E009', 'Reference Not Zero');
    expect(refused.json._errors[0].details.profile).toBe('is referred to by 1 enrollments');
    const spare = await api('POST', '/scep-profiles', profileBody(unique('spare').slice(0, 31)));
    expect((await api('DELETE', `/scep-profiles/${spare.json.id}`)).status).toBe(204);
  });
});

describe('profile updates', () => {
  const storedChallenge = async (id) => JSON.parse((await env.DB.prepare('SELECT body FROM profiles WHERE id = ?').bind(id).first()).body).scep_challenge;

  it('PUT keeps a secret sent back masked, replaces one sent anew, and refuses the mask with nothing to keep', async () => {
    const created = await api('POST', '/scep-profiles', profileBody(unique('upd').slice(0, 31), { scep_challenge: { fixed: 'first-s3cret' } }));
    expect(created.json.scep_challenge.fixed).toBe('********');
    const sealed = (await storedChallenge(created.json.id)).fixed;
    expect(sealed).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);

    expect((await api('PUT', `/scep-profiles/${created.json.id}`, { ...created.json, validity_days: 90 })).status).toBe(200);
    expect((await storedChallenge(created.json.id)).fixed).toBe(sealed);
    expect((await api('PUT', `/scep-profiles/${created.json.id}`, { ...created.json, scep_challenge: { fixed: 'second-s3cret' } })).status).toBe(200);
    const resealed = (await storedChallenge(created.json.id)).fixed;
    expect(resealed).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
    expect(resealed).not.toBe(sealed);

    const masked = await api('PUT', `/scep-profiles/${created.json.id}`, { ...created.json, scep_challenge: { dynamic: { password: '********' } } });
    expectEnvelope(masked, 400, 'E003', 'Invalid Object');
    expect(Object.keys(masked.json._errors[0].details)).toEqual(['scep_challenge.dynamic.password']);
    expect((await storedChallenge(created.json.id)).fixed).toBe(resealed);
  });

  it('POST and PUT refuse an unknown field, naming its path', async () => {
    const body = profileBody(unique('unk').slice(0, 31));
    const bad = await api('POST', '/scep-profiles', { ...body, colour: 'blue', algorithm: { rsa: { rsa_nbits: 2048, exponent: 3 } } });
    expectEnvelope(bad, 400, 'E003', 'Invalid Object');
    expect(Object.keys(bad.json._errors[0].details).sort()).toEqual(['algorithm.rsa.exponent', 'colour']);
    const created = await api('POST', '/scep-profiles', body);
    const put = await api('PUT', `/scep-profiles/${created.json.id}`, { ...created.json, created_at: 1 });
    expectEnvelope(put, 400, 'E003', 'Invalid Object');
    expect(put.json._errors[0].details).toEqual({ created_at: 'is not a field of a SCEP profile' });
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

// ---- hardening of the admin API: strict auth and media types, no trimmed or impossible names, bulk rows that
// are all or nothing, and 4xx (never 5xx) for every malformed body ----

/** A request with exactly the headers given (helpers.api always sends a well-formed Bearer header). */
async function raw(method, path, headers, body) {
  const res = await fetchWorker(`${BASE}/api/v1${path}`, { method, headers, body });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

const seatIds = async () => (await api('GET', '/seats')).json.data.map((x) => x.id);
const bulk = (csv) => api('POST', '/seats/bulk', csv, { contentType: 'text/csv' });

describe('Authorization header', () => {
  it('is Bearer (any case), spaces, one token68 and nothing after; the token itself compares exactly', async () => {
    const token = env.ADMIN_TOKEN;
    for (const header of [`Bearer ${token} junk`, `Bearer ${token},x`, `Bearer ${token} ${token}`, `Basic ${token}`, `Bearer${token}`, `Bearer ${token.toUpperCase()}`, `Bearer  `, token]) {
      expectEnvelope(await raw('GET', '/seats', { authorization: header }), 401, 'E016', 'Invalid Credential');
    }
    for (const header of [`Bearer ${token}`, `bearer ${token}`, `BEARER  ${token}`]) {
      expect((await raw('GET', '/seats', { authorization: header })).status, header).toBe(200);
    }
  });
});

describe('Content-Type', () => {
  it('must be exactly application/json (any case, parameters and charset=utf-8 allowed), no look-alike', async () => {
    for (const type of ['text/plain; x=application/json', 'application/jsonp', 'application/merge-patch+json', 'application/json; charset=utf-16', 'application/json/x', 'json', 'application/json junk']) {
      const id = unique('ct');
      const r = await raw('POST', '/seats', { authorization: `Bearer ${env.ADMIN_TOKEN}`, 'content-type': type }, JSON.stringify({ id }));
      expectEnvelope(r, 400, 'E003', 'Input Format Mismatch: input-format=json');
      expect(Object.keys(r.json._errors[0].details)).toEqual(['content_type']);
      expect(await seatIds()).not.toContain(id);
    }
    for (const type of ['application/json', 'Application/JSON; charset="UTF-8"', 'application/json;charset=utf-8', 'application/json; charset=utf-8; x="a;b"']) {
      expect((await raw('POST', '/seats', { authorization: `Bearer ${env.ADMIN_TOKEN}`, 'content-type': type }, JSON.stringify({ id: unique('ct') }))).status, type).toBe(201);
    }
  });

  it('must be exactly text/csv on seats/bulk', async () => {
    for (const type of ['text/plain; q=text/csv', 'text/csvx', 'application/json', 'text/csv; charset=latin1']) {
      const id = unique('csv');
      const r = await raw('POST', '/seats/bulk', { authorization: `Bearer ${env.ADMIN_TOKEN}`, 'content-type': type }, `seat_id\n${id}\n`);
      expectEnvelope(r, 400, 'E003', 'Input Format Mismatch: input-format=csv');
      expect(await seatIds()).not.toContain(id);
    }
    const id = unique('csv');
    expect((await raw('POST', '/seats/bulk', { authorization: `Bearer ${env.ADMIN_TOKEN}`, 'content-type': 'Text/CSV; charset=utf-8; header=present' }, `seat_id\n${id}\n`)).status).toBe(201);
  });
});

describe('seat ids', () => {
  it('are refused with a space at either end (naming the field) on POST /seats and POST /enrollments; inner spaces are fine', async () => {
    for (const id of [` ${unique('lead')}`, `${unique('trail')} `, `${unique('tab')}\t`, `${unique('nbsp')}\u00a0`]) {
      const r = await api('POST', '/seats', { id });
      expectEnvelope(r, 400, 'E003', 'Invalid Object');
      expect(r.json._errors[0].details).toHaveProperty('id');
    }
    expect((await api('POST', '/seats', { id: `Jane Doe ${unique('x')}` })).status).toBe(201);
    const s = await enrolledSeat();
    for (const seat_id of [`${s.seat} `, ` ${s.seat}`]) {
      const r = await api('POST', '/enrollments', { seat_id, profile: s.profile });
      expectEnvelope(r, 400, 'E003', 'Invalid Object');
      expect(r.json._errors[0].details).toHaveProperty('seat_id');
    }
  });

  it('are never trimmed by seats/bulk into another id: such a row is refused and creates nothing', async () => {
    const s = await enrolledSeat();
    const [a, b] = [unique('a'), unique('b')];
    const r = await bulk(`seat_id,profile\n ${a},${s.profile}\n${b} ,\n${s.seat} ,${s.profile}\n`);
    expect(r.status).toBe(400);
    expect(r.json.results.map((x) => [x.status, Object.keys(x.details)])).toEqual([['error', ['seat_id']], ['error', ['seat_id']], ['error', ['seat_id']]]);
    const seats = await seatIds();
    expect(seats).not.toContain(a);
    expect(seats).not.toContain(b);
    // The existing seat got no new enrollment from a row that was refused.
    expect((await api('GET', `/enrollments?seat_id=${s.seat}`)).json.data).toHaveLength(1);
  });
});

describe('seats/bulk rows are all or nothing', () => {
  it('a row whose profile is unknown, impossible or padded creates no seat', async () => {
    const s = await enrolledSeat();
    const [a, b, c, d] = [unique('a'), unique('b'), unique('c'), unique('d')];
    const r = await bulk(`seat_id,profile\n${a},no-such-${unique('p')}\n${b},a/b\n${c}, ${s.profile}\n${d},${s.profile}\n`);
    expect(r.status).toBe(201);
    expect(r.json.results.map((x) => [x.row, x.status, x.error])).toEqual([
      [2, 'error', 'Object Not Present'],
      [3, 'error', 'Invalid Object'],
      [4, 'error', 'Invalid Object'],
      [5, 'created', undefined],
    ]);
    expect(r.json.results[1].details).toHaveProperty('profile');
    expect(r.json.results[2].details).toHaveProperty('profile');
    expect(r.json.results[3].enrollment).toMatchObject({ seat_id: d, profile: s.profile, status: 'CREATED' });
    const seats = await seatIds();
    for (const id of [a, b, c]) expect(seats).not.toContain(id);
    expect(seats).toContain(d);
  });

  it('a row whose enrollment fails in D1 leaves no seat behind (seat and enrollment are one batch)', async () => {
    const s = await enrolledSeat();
    const [doomed, fine] = [unique('doomed'), unique('fine')];
    // A failure injected where it would really happen: the enrollment's INSERT, after the seat's.
    await env.DB.prepare(`CREATE TRIGGER fail_enrollment BEFORE INSERT ON enrollments WHEN NEW.seat_id = '${doomed}' BEGIN SELECT RAISE(ABORT, 'injected'); END`).run();
    let r;
    try {
      r = await bulk(`seat_id,profile\n${doomed},${s.profile}\n${fine},${s.profile}\n`);
    } finally {
      await env.DB.prepare('DROP TRIGGER fail_enrollment').run();
    }
    expect(r.json.results.map((x) => [x.seat_id, x.status])).toEqual([[doomed, 'error'], [fine, 'created']]);
    const seats = await seatIds();
    expect(seats).not.toContain(doomed);
    expect(seats).toContain(fine);
    expect(r.json.results[0].error).toBe('Internal Error'); // the D1 message goes to the log, not the client
  });

  it('reads quoted cells, CRLF and a BOM; a row with a misplaced comma is refused whole', async () => {
    const s = await enrolledSeat();
    const [a, b, c, d] = [unique('a'), unique('b'), unique('c'), unique('d')];
    const csv = `\uFEFFseat_id,profile,note\r\n"${a}","${s.profile}","a note, with a comma"\r\n"${b}, x",,\r\n${c},${s.profile}\r\n\r\n${d},,"say ""hi""\nover two lines"\r\n`;
    const r = await bulk(csv);
    expect(r.status).toBe(201);
    expect(r.json.results.map((x) => [x.row, x.seat_id, x.status])).toEqual([
      [2, a, 'created'],
      [3, `${b}, x`, 'error'],
      [4, c, 'error'],
      [6, d, 'created'],
    ]);
    expect(r.json.results[0].enrollment_code).toMatch(/^[A-Z2-7]{5}(-[A-Z2-7]{5}){3}$/);
    expect(r.json.results[2].details).toHaveProperty('row');
    const seats = await seatIds();
    expect(seats).toEqual(expect.arrayContaining([a, d]));
    for (const id of [b, `"${b}`, c]) expect(seats).not.toContain(id);
  });

  it('a CSV whose rows cannot be told apart (a stray or unclosed quote, a column named twice) is refused and writes nothing', async () => {
    for (const [bad, line] of [['ab"c', 3], ['"unclosed', 3], ['"x"y', 3]]) {
      const first = unique('first');
      const r = await bulk(`seat_id\n${first}\n${bad}\n${unique('after')}\n`);
      expectEnvelope(r, 400, 'E003', 'Input Format Mismatch: input-format=csv');
      expect(r.json._errors[0].details.csv).toMatch(new RegExp(`^line ${line}:`));
      expect(await seatIds()).not.toContain(first);
    }
    const first = unique('first');
    expectEnvelope(await bulk(`seat_id,profile,Seat_ID\n${first},,\n`), 400, 'E003', 'Invalid Object');
    expect(await seatIds()).not.toContain(first);
  });
});

describe('profile names', () => {
  // The rule lives in the core (src/profile.rs ScepProfile::from_json, details path `name`).
  const badNames = [' lead', 'trail ', 'a/b', 'a?b', 'a#b', 'a..b', '..', 'a%2fb', 'tab\tin'];

  it('POST and PUT /scep-profiles refuse a name with a space at either end, or outside letters, digits, - _ . space, or with ..', async () => {
    for (const name of badNames) {
      const r = await api('POST', '/scep-profiles', profileBody(name));
      expectEnvelope(r, 400, 'E003', 'Invalid Object');
      expect(r.json._errors[0].details, JSON.stringify(name)).toHaveProperty('name');
    }
    const good = `Team A.laptops_1-${Date.now().toString(36)}`.slice(0, 31);
    const created = await api('POST', '/scep-profiles', profileBody(good));
    expect(created.status).toBe(201);
    for (const name of badNames) {
      const r = await api('PUT', `/scep-profiles/${created.json.id}`, { ...created.json, name });
      expectEnvelope(r, 400, 'E003', 'Invalid Object');
      expect(r.json._errors[0].details, JSON.stringify(name)).toHaveProperty('name');
    }
    expect((await api('GET', `/scep-profiles/${created.json.id}`)).json.name).toBe(good);
  });

  it('POST /enrollments with a name no profile can have is a 400 naming `profile`, not a 404', async () => {
    const s = await enrolledSeat();
    for (const profile of [...badNames, `${s.profile} `, 'x'.repeat(32)]) {
      const r = await api('POST', '/enrollments', { seat_id: s.seat, profile });
      expectEnvelope(r, 400, 'E003', 'Invalid Object');
      expect(r.json._errors[0].details, JSON.stringify(profile)).toHaveProperty('profile');
    }
    expectEnvelope(await api('POST', '/enrollments', { seat_id: s.seat, profile: `no such ${unique('p')}`.slice(0, 31) }), 404, 'E005');
  });
});

describe('malformed bodies', () => {
  it('wrong JSON types on the profile, seat and enrollment routes are a 4xx with the envelope, never a 500', async () => {
    const p = await api('POST', '/scep-profiles', profileBody(unique('types').slice(0, 31), { scep_challenge: { fixed: 'secret' } }));
    const bodies = [
      '[]', 'null', '42', '"text"', 'true', '{"id":5}', '{"id":null}', '{"id":["a"]}', '{"id":{}}', '{"seat_id":5,"profile":"x"}', '{"seat_id":"a","profile":{}}',
      '{"seat_id":"a","profile":["x"]}', '{"name":5}', '{"scep_challenge":"x","algorithm":7}', '{"scep_challenge":null}', '{"scep_challenge":{"dynamic":"x"}}',
      '{"scep_challenge":{"dynamic":{"password":"********"}}}', '{"scep_challenge":{"fixed":"********"}}', '{"scep_challenge":[1]}', '{"__proto__":{"id":"x"}}',
      // Nested 5000 deep: it overflowed the core's stack, and the wasm instance then failed every later request.
      `{"name":${'['.repeat(5000)}${']'.repeat(5000)}}`, '{"algorithm":{"rsa":{"rsa_nbits":1e999}}}',
    ];
    for (const [method, path] of [['POST', '/scep-profiles'], ['PUT', `/scep-profiles/${p.json.id}`], ['POST', '/seats'], ['POST', '/enrollments']]) {
      for (const body of bodies) {
        const r = await api(method, path, body);
        expect(r.status, `${method} ${path} ${body.slice(0, 60)}`).toBeGreaterThanOrEqual(400);
        expect(r.status, `${method} ${path} ${body.slice(0, 60)}`).toBeLessThan(500);
        expect(r.json._errors[0].code).toBe('E003');
      }
    }
    // The profile is untouched by all of that, and the core still answers.
    expect((await api('GET', `/scep-profiles/${p.json.id}`)).json).toMatchObject({ scep_challenge: { fixed: '********' } });
    expect((await api('POST', '/scep-profiles', profileBody(unique('after').slice(0, 31)))).status).toBe(201);
  });
});
