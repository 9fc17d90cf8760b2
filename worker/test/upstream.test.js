// RA mode's admin side (src/registration_authority.rs): an upstream is checked field by field and against the
// rest of the profile; its page password is masked and kept; a code of a dynamic upstream comes from its page,
// and a page that gives none is a 502 that creates nothing. (The SCEP side runs end to end against micromdm in
// tests/interop/upstream.test.mjs.)
import { describe, expect, it } from 'vitest';
import { api, profileBody, unique } from './helpers.js';

const FINGERPRINT = 'ab'.repeat(32);
const upstream = (extra = {}) => ({ scep_url: 'http://ndes.corp.example/certsrv/mscep/mscep.dll', fingerprint: FINGERPRINT, ...extra });

describe('a profile in front of an upstream CA', () => {
  it('is refused with every field that breaks a rule', async () => {
    const r = await api('POST', '/scep-profiles', profileBody(unique('ra'), {
      manual_approval: true, csr_names: 'replace',
      upstream: upstream({ scep_url: 'ftp://x', fingerprint: '12', timeout_ms: 5, challenge: 'fixed' }),
    }));
    expect(r.status).toBe(400);
    expect(Object.keys(r.json._errors[0].details).sort()).toEqual(
      ['csr_names', 'manual_approval', 'scep_challenge', 'upstream.fingerprint', 'upstream.scep_url', 'upstream.timeout_ms'].sort(),
    );
  });

  it("masks the upstream page's password, keeps it when sent back masked, and makes each code a password of that page", async () => {
    const name = unique('ra-ndes');
    const page = { otp_server_url: 'http://127.0.0.1:9/certsrv/mscep_admin/', username: 'CORP\\scep', password: 'page-secret' };
    const created = await api('POST', '/scep-profiles', profileBody(name, { upstream: upstream({ challenge: { dynamic: page }, timeout_ms: 1000 }) }));
    expect(created.status).toBe(201);
    expect(created.json.upstream.challenge.dynamic.password).toBe('********');
    const put = await api('PUT', `/scep-profiles/${created.json.id}`, { ...created.json, id: undefined, upstream: { ...created.json.upstream, timeout_ms: 2000 } });
    expect(put.status, JSON.stringify(put.json)).toBe(200);
    expect(put.json.upstream.timeout_ms).toBe(2000);
    // Nobody listens at the page: no code, nothing created, and why.
    const seat = unique('ra-seat');
    expect((await api('POST', '/seats', { id: seat })).status).toBe(201);
    const e = await api('POST', '/enrollments', { seat_id: seat, profile: name });
    expect(e.status).toBe(502);
    expect(e.json._errors[0]).toMatchObject({ code: 'E003', message: 'Upstream Unavailable' });
    expect(e.json._errors[0].details.upstream).toMatch(/^The upstream CA gave no usable answer \(Could not reach the OTP server at http:\/\/127\.0\.0\.1:9/);
    expect((await api('GET', `/enrollments?seat_id=${seat}`)).json.data).toEqual([]);
  });
});
