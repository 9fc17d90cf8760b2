// Cloudflare Access in front of the admin API (worker/src/access.js), with a team whose JWKS a loopback server
// serves: a valid Access JWT lets a request in without the admin token and names who acted; a forged, expired,
// foreign or wrongly signed one is refused; without one, the admin token is still needed.
import { createExecutionContext } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import app from '../src/index.js';
import { BASE, env, unique } from './helpers.js';

const AUD = 'test-access-aud';
const accessEnv = () => ({ ...env, ACCESS_TEAM_DOMAIN: env.WEBHOOK_TEST_URL, ACCESS_AUD: AUD });

async function jwt(claims, { kid = 'test-kid', key = env.ACCESS_TEST_KEY } = {}) {
  const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
  const der = Buffer.from(key.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const signer = await crypto.subtle.importKey('pkcs8', der, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['sign']);
  const data = `${b64({ alg: 'RS256', kid, typ: 'JWT' })}.${b64(claims)}`;
  const signature = await crypto.subtle.sign('RSASSA-PKCS1-v1_5', signer, new TextEncoder().encode(data));
  return `${data}.${Buffer.from(signature).toString('base64url')}`;
}

const now = () => Math.floor(Date.now() / 1000);
const claims = (extra = {}) => ({ iss: env.WEBHOOK_TEST_URL, aud: [AUD], email: 'admin@example.com', iat: now(), exp: now() + 300, ...extra });
const call = (path, init = {}, e = accessEnv()) => app.fetch(new Request(`${BASE}/api/v1${path}`, init), e, createExecutionContext());

describe('Cloudflare Access', () => {
  it('a valid Access JWT is let in without the token and named in the audit log', async () => {
    const token = await jwt(claims());
    expect((await call('/seats?limit=1', { headers: { 'cf-access-jwt-assertion': token } })).status).toBe(200);
    const seat = unique('acc');
    const created = await call('/seats', { method: 'POST', headers: { 'cf-access-jwt-assertion': token, 'content-type': 'application/json' }, body: JSON.stringify({ id: seat }) });
    expect(created.status).toBe(201);
    expect((await call(`/seats/${seat}`, { method: 'DELETE', headers: { 'cf-access-jwt-assertion': token } })).status).toBe(204);
    const audit = await call(`/audit-logs?seat_id=${seat}`, { headers: { 'cf-access-jwt-assertion': token } });
    expect((await audit.json()).data[0].message).toBe(`Seat ${seat} deleted by admin@example.com; its open enrollment codes revoked`);
  });

  for (const [what, make] of [
    ['expired', () => jwt(claims({ exp: now() - 3600 }))],
    ['for another application', () => jwt(claims({ aud: ['someone-else'] }))],
    ['from another issuer', () => jwt(claims({ iss: 'https://evil.cloudflareaccess.com' }))],
    ['signed by a key the team does not have', () => jwt(claims(), { kid: 'other-kid' })],
    ['bad signature', async () => (await jwt(claims())).replace(/.{4}$/, 'AAAA')],
    ['not a JWT', async () => 'nonsense'],
  ]) {
    it(`refuses a JWT ${what}, even with the admin token beside it`, async () => {
      const res = await call('/seats', { headers: { 'cf-access-jwt-assertion': await make(), authorization: `Bearer ${env.ADMIN_TOKEN}` } });
      expect(res.status).toBe(401);
      expect((await res.json())._errors[0]).toMatchObject({ code: 'E016', message: 'Invalid Credential' });
    });
  }

  it('without a JWT the admin token is still needed; without Access configured the header is ignored', async () => {
    expect((await call('/seats')).status).toBe(401);
    expect((await call('/seats', { headers: { authorization: `Bearer ${env.ADMIN_TOKEN}` } })).status).toBe(200);
    const token = await jwt(claims());
    expect((await call('/seats', { headers: { 'cf-access-jwt-assertion': token } }, env)).status).toBe(401);
  });
});
