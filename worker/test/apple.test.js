// Apple configuration profiles: GET /api/v1/enrollments/{id}/mobileconfig for an administrator who hands the
// enrollment's code back (SCEP-Challenge); only an open enrollment becomes a payload.
import { describe, expect, it } from 'vitest';
import { api, BASE, enroll, enrolledSeat, env, fetchWorker } from './helpers.js';

const payload = (s, code = s.code, token = env.ADMIN_TOKEN) =>
  fetchWorker(`${BASE}/api/v1/enrollments/${s.enrollmentId}/mobileconfig`, {
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(code ? { 'scep-challenge': code } : {}) },
  });

describe('Apple configuration profiles', () => {
  it('an open enrollment with its code: an XML plist whose SCEP payload names what the CA issues', async () => {
    const s = await enrolledSeat({ subject: 'CN=$USERNAME,O=Example Corp', certificate_attributes: { dnsname: '$USERNAME.example' } });
    const res = await payload(s);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-apple-aspen-config');
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="${s.seat}.mobileconfig"`);
    const xml = await res.text();
    expect(xml).toContain(`<key>URL</key><string>${BASE}/scep/${s.profile}</string>`);
    expect(xml).toContain(`<key>Challenge</key><string>${s.code}</string>`);
    expect(xml).toContain(`<array><array><string>O</string><string>Example Corp</string></array></array><array><array><string>CN</string><string>${s.seat}</string></array></array>`);
    expect(xml).toContain(`<key>dNSName</key><array><string>${s.seat}.example</string></array>`);
    expect(await (await payload(s)).text()).toBe(xml); // stable
  });

  it('another code, no code or no token is refused; a redeemed enrollment is 409, one a newer enrollment revoked 410', async () => {
    const s = await enrolledSeat();
    expect((await payload(s, 'AAAAA-BBBBB-CCCCC-DDDDD')).status).toBe(400);
    const missing = await payload(s, null);
    expect(missing.status).toBe(400);
    expect((await missing.json())._errors[0].details).toHaveProperty('SCEP-Challenge');
    expect((await payload(s, s.code, null)).status).toBe(401);
    const newer = await api('POST', '/enrollments', { seat_id: s.seat, profile: s.profile });
    const replaced = await payload(s);
    expect(replaced.status).toBe(410);
    expect((await replaced.json())._errors[0].message).toMatch(/revoked/);
    const next = { ...s, code: newer.json.enrollment_code, enrollmentId: newer.json.id };
    expect((await payload(next)).status).toBe(200);
    await enroll({ url: s.url, challenge: next.code, subject: `CN=${s.seat}` });
    expect((await payload(next)).status).toBe(409);
    expect((await fetchWorker(`${BASE}/api/v1/enrollments/nope/mobileconfig`, { headers: { authorization: `Bearer ${env.ADMIN_TOKEN}`, 'scep-challenge': 'x' } })).status).toBe(404);
  });
});
