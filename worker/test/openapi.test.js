// The running admin API answers as its OpenAPI document says: every documented read, and the writes the
// console uses, validated against the response schema of their status (JSON Schema 2020-12 via
// @cfworker/json-schema, which needs no eval). The document itself passes Redocly's strict rules in make test.
import { Validator } from '@cfworker/json-schema';
import { describe, expect, it } from 'vitest';
import { METHODS, openapi } from '../src/openapi.js';
import { api, BASE, enroll, enrolledSeat, env, failureOf, fetchWorker, unique } from './helpers.js';

// OpenAPI 3.0's dialect as JSON Schema: components under $defs, `nullable` as a type union.
function jsonSchema(schema) {
  if (Array.isArray(schema)) return schema.map(jsonSchema);
  if (typeof schema !== 'object' || schema === null) return schema;
  const out = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === '$ref') out.$ref = v.replace('#/components/schemas/', '#/$defs/');
    else if (k === 'nullable' || k === 'readOnly' || k === 'writeOnly' || k === 'format') continue;
    else out[k] = jsonSchema(v);
  }
  if (schema.nullable && out.type) out.type = [out.type, 'null'];
  if (schema.nullable && out.enum) out.enum = [...out.enum, null];
  return out;
}
const defs = jsonSchema(JSON.parse(JSON.stringify(openapi.components.schemas)));
const errorSchema = jsonSchema(openapi.components.responses.Error.content['application/json'].schema);

/** Checks an answer against the document: its status is documented for the operation, its body matches. */
async function conforms(path, method, res) {
  const operation = openapi.paths[path][method];
  const documented = operation.responses[res.status];
  expect(documented, `${method.toUpperCase()} ${path} answered ${res.status}, which it does not document`).toBeDefined();
  if (res.status === 204) return null;
  const body = await res.json();
  const schema = documented.$ref ? errorSchema : jsonSchema(documented.content['application/json'].schema);
  const result = new Validator({ ...schema, $defs: defs }, '2020-12', false).validate(body);
  expect(result.errors.map((e) => `${e.instanceLocation}: ${e.error}`), `${method.toUpperCase()} ${path}`).toEqual([]);
  return body;
}

const call = (method, path, body) =>
  fetchWorker(`${BASE}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${env.ADMIN_TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body && JSON.stringify(body),
  });

describe('the OpenAPI document', () => {
  it('names every operation and documents every query parameter an operation reads', () => {
    for (const [path, operations] of Object.entries(openapi.paths)) {
      for (const method of METHODS.filter((m) => operations[m])) {
        expect(operations[method].operationId, `${method} ${path}`).toMatch(/^[a-z][A-Za-z]+$/);
      }
    }
    const ids = Object.values(openapi.paths).flatMap((ops) => METHODS.filter((m) => ops[m]).map((m) => ops[m].operationId));
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('the running API answers every documented read as documented, lists and single objects alike', async () => {
    const s = await enrolledSeat({ manual_approval: false });
    const { certificate } = await enroll({ url: s.url, challenge: s.code, subject: `CN=${s.seat}` });
    expect(certificate).toBeInstanceOf(Uint8Array);
    const serial = (await api('GET', `/certificates?seat_id=${s.seat}`)).json.data[0].serial;
    const reads = [
      ['/scep-profiles', '/scep-profiles?limit=1'],
      ['/scep-profiles/{id}', `/scep-profiles/${s.profileId}`],
      ['/seats', '/seats?limit=2'],
      ['/seats/{id}', `/seats/${s.seat}`],
      ['/enrollments', `/enrollments?seat_id=${s.seat}`],
      ['/enrollments/{id}', `/enrollments/${s.enrollmentId}`],
      ['/transactions', `/transactions?seat_id=${s.seat}`],
      ['/certificates', `/certificates?seat_id=${s.seat}&status=active`],
      ['/certificates/{serial}', `/certificates/${serial}`],
      ['/audit-logs', `/audit-logs?seat_id=${s.seat}&limit=5`],
    ];
    for (const [path, url] of reads) await conforms(path, 'get', await call('GET', url));
    // The writes a console makes, and their refusals.
    const seat = unique('oa');
    await conforms('/seats', 'post', await call('POST', '/seats', { id: seat }));
    const code = await conforms('/enrollments', 'post', await call('POST', '/enrollments', { seat_id: seat, profile: s.profile }));
    await conforms('/enrollments/{id}', 'delete', await call('DELETE', `/enrollments/${code.id}`));
    await conforms('/enrollments/{id}', 'delete', await call('DELETE', `/enrollments/${code.id}`)); // 409
    await conforms('/seats/{id}', 'delete', await call('DELETE', `/seats/${s.seat}`)); // 409 E009: a valid certificate
    await conforms('/certificates/{serial}/revoke', 'post', await call('POST', `/certificates/${serial}/revoke`, { reason: 'keyCompromise' }));
    await conforms('/seats/{id}', 'delete', await call('DELETE', `/seats/${s.seat}`)); // 204
    await conforms('/seats/{id}', 'get', await call('GET', `/seats/${s.seat}`)); // 404
    await conforms('/seats', 'get', await call('GET', '/seats?color=blue')); // 400
  });
});

describe('lists, single objects and methods', () => {
  it('pages by cursor without gaps or repeats, and refuses a cursor it did not give', async () => {
    const prefix = unique('pg');
    for (let i = 0; i < 5; i++) await api('POST', '/seats', { id: `${prefix}-${i}` });
    const seen = [];
    let cursor = null;
    for (let page = 0; page < 5; page++) {
      const res = await api('GET', `/seats?prefix=${prefix}&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...res.json.data.map((s) => s.id));
      cursor = res.json.next_cursor;
      if (!cursor) break;
    }
    expect(seen).toEqual([0, 1, 2, 3, 4].map((i) => `${prefix}-${i}`));
    const bad = await api('GET', '/seats?cursor=bm90LWEtY3Vyc29y');
    expect(bad.status).toBe(400);
    expect(bad.json._errors[0]).toMatchObject({ code: 'E003', message: 'Invalid Query Parameter: cursor' });
  });

  it('refuses unknown and repeated query parameters, and answers 405 E013 with Allow for a method a path does not take', async () => {
    const unknown = await api('GET', '/audit-logs?colour=red');
    expect(unknown.status).toBe(400);
    expect(unknown.json._errors[0].message).toBe('Invalid Query Parameter: colour');
    expect(unknown.json._errors[0].details.colour).toMatch(/^is not a parameter of this operation \(it takes limit, cursor, status/);
    expect((await api('GET', '/seats?limit=1&limit=2')).json._errors[0].details.limit).toBe('is given more than once');
    expect((await api('POST', '/seats?dry_run=1', { id: unique('q') })).status).toBe(400);
    const res = await fetchWorker(`${BASE}/api/v1/seats`, { method: 'PUT', headers: { authorization: `Bearer ${env.ADMIN_TOKEN}` } });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, POST');
    expect((await res.json())._errors[0]).toMatchObject({ code: 'E013', message: 'Method Not Supported' });
  });

  it('a seat with a valid certificate is not deleted; revoked, it is, its codes revoked, and its id can come back', async () => {
    const s = await enrolledSeat();
    await enroll({ url: s.url, challenge: s.code, subject: `CN=${s.seat}` });
    const again = await api('POST', '/enrollments', { seat_id: s.seat, profile: s.profile });
    const refused = await api('DELETE', `/seats/${s.seat}`);
    expect(refused.status).toBe(409);
    expect(refused.json._errors[0]).toMatchObject({ code: 'E009', message: 'Reference Not Zero' });
    const [cert] = (await api('GET', `/certificates?seat_id=${s.seat}`)).json.data;
    expect((await api('DELETE', `/certificates/${cert.serial}`, { reason: 'cessationOfOperation' })).json).toMatchObject({ revoked: true, reason: 'cessationOfOperation' });
    expect((await api('DELETE', `/seats/${s.seat}`)).status).toBe(204);
    expect((await api('GET', `/seats/${s.seat}`)).status).toBe(404);
    expect((await api('GET', `/enrollments/${again.json.id}`)).json.status).toBe('REVOKED');
    // The certificate keeps its seat and is on the CRL with its reason.
    expect((await api('GET', `/certificates/${cert.serial}`)).json).toMatchObject({ seat_id: s.seat, status: 'revoked', revocation_reason: 'cessationOfOperation' });
    const crl = new Uint8Array(await (await fetchWorker(`${BASE}/crl`)).arrayBuffer());
    const reason = [0x06, 0x03, 0x55, 0x1d, 0x15]; // OID 2.5.29.21 (reasonCode)
    expect(crl.some((_, i) => reason.every((b, j) => crl[i + j] === b))).toBe(true);
    // The id is free again.
    expect((await api('POST', '/seats', { id: s.seat })).status).toBe(201);
  });

  it('a certificate downloads as JSON with PEM, as DER and as PEM; an unused code is revoked once', async () => {
    const s = await enrolledSeat();
    const { certificate } = await enroll({ url: s.url, challenge: s.code, subject: `CN=${s.seat}` });
    const [cert] = (await api('GET', `/certificates?seat_id=${s.seat}&subject=${s.seat.toUpperCase()}`)).json.data;
    const get = (accept) => fetchWorker(`${BASE}/api/v1/certificates/${cert.serial}`, { headers: { authorization: `Bearer ${env.ADMIN_TOKEN}`, accept } });
    expect(new Uint8Array(await (await get('application/pkix-cert')).arrayBuffer())).toEqual(certificate);
    expect(await (await get('application/x-pem-file')).text()).toMatch(/^-----BEGIN CERTIFICATE-----\n/);
    expect((await (await get('application/json')).json()).pem).toMatch(/^-----BEGIN CERTIFICATE-----\n/);
    const fresh = await api('POST', '/enrollments', { seat_id: s.seat, profile: s.profile });
    expect((await api('DELETE', `/enrollments/${fresh.json.id}`)).json.status).toBe('REVOKED');
    const twice = await api('DELETE', `/enrollments/${fresh.json.id}`);
    expect(twice.status).toBe(409);
    expect(twice.json._errors[0].details.status).toBe('is REVOKED: only an unused (CREATED) code can be revoked');
    expect((await api('DELETE', `/certificates/${cert.serial}`, { reason: 'bogus' })).status).toBe(400);
  });

  it("a rejection's reason is what the requester's next poll is told", async () => {
    const s = await enrolledSeat({ manual_approval: true });
    const waiting = failureOf(enroll({ url: s.url, challenge: s.code, subject: `CN=${s.seat}` }));
    let pending;
    for (let i = 0; i < 100 && !pending; i++) {
      [pending] = (await api('GET', `/transactions?status=PENDING&seat_id=${s.seat}`)).json.data;
      if (!pending) await new Promise((r) => setTimeout(r, 20));
    }
    const rejected = await api('POST', `/transactions/${encodeURIComponent(pending.transaction_id)}/reject`, { reason: 'not a company device', profile_id: pending.profile_id });
    expect(rejected.json).toMatchObject({ status: 'REJECTED' });
    const e = await waiting;
    expect(e.message).toBe('The request was rejected by an administrator: not a company device');
    expect((await api('POST', `/transactions/${encodeURIComponent(pending.transaction_id)}/approve`, { reason: 'x' })).status).toBe(400);
  });
});
