// The enrollment webhook (src/webhook.rs), against a real HTTP server on loopback (vitest.config.js) that checks
// the signature as an operator's service would: only an explicit allow issues; a deny's reason becomes the
// FAILURE's failInfoText and the audit message; a timeout, an HTTP error or an unreadable answer refuse (fail
// closed); nothing is written before the webhook answered, so a refusal burns no code.
import { describe, expect, it } from 'vitest';
import { api, auditFor, enroll, enrolledSeat, env, failureOf } from './helpers.js';

const hook = (path, mode = 'approve', extra = {}) => ({
  webhook: { url: `${env.WEBHOOK_TEST_URL}${path}`, secret: env.WEBHOOK_TEST_SECRET, mode, timeout_ms: 800, ...extra },
});
const last = async (path) => (await fetch(`${env.WEBHOOK_TEST_URL}/last?path=${path}`)).json();
const status = async (s) => (await api('GET', `/enrollments?seat_id=${s.seat}`)).json.data.find((e) => e.id === s.enrollmentId)?.status;

describe('the enrollment webhook', () => {
  it('approve: after every check of the CA, an allow issues; the request it saw was signed and named what is issued', async () => {
    const s = await enrolledSeat({ subject: 'CN=$USERNAME,O=Example Corp', ...hook('/allow') });
    const { certificate } = await enroll({ url: s.url, challenge: s.code, subject: `CN=${s.seat},O=Example Corp` });
    expect(certificate).toBeInstanceOf(Uint8Array);
    const seen = await last('/allow');
    const body = JSON.parse(seen.body);
    expect(seen.contentType).toBe('application/json');
    expect(seen.signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(body).toMatchObject({ version: 1, mode: 'approve', profile: s.profile, seat_id: s.seat, message_type: 'PKCSReq', subject: `CN=${s.seat},O=Example Corp`, key: { type: 'rsa', bits: 2048 } });
    expect(body.client_address).toMatch(/^2001:db8:/);
    expect(body).not.toHaveProperty('challenge');
    expect(await status(s)).toBe('REDEEMED');
  });

  it('a deny refuses with its reason as failInfoText and audit message, and the code stays usable', async () => {
    const s = await enrolledSeat(hook('/deny'));
    const e = await failureOf(enroll({ url: s.url, challenge: s.code, subject: `CN=${s.seat}` }));
    expect(e.failInfo).toBe('badRequest');
    expect(e.message).toBe(`The enrollment webhook refused the request: seat ${s.seat} is not compliant`);
    const [row] = await auditFor(s.seat);
    expect(row).toMatchObject({ status: 'Failure', code: 'webhook_denied', message: e.message });
    expect(await status(s)).toBe('CREATED');
    // Once the webhook allows, the same code enrolls.
    const profile = (await api('GET', '/scep-profiles')).json.data.find((p) => p.name === s.profile);
    expect(profile.webhook.secret).toBe('********');
    const put = await api('PUT', `/scep-profiles/${profile.id}`, { ...profile, webhook: { ...profile.webhook, url: `${env.WEBHOOK_TEST_URL}/allow` } });
    expect(put.status).toBe(200);
    await enroll({ url: s.url, challenge: s.code, subject: `CN=${s.seat}` });
    expect(await status(s)).toBe('REDEEMED');
  });

  for (const [path, what] of [
    ['/slow', 'no answer in time (800 ms allowed)'],
    ['/error', 'HTTP 500'],
    ['/garbage', 'an answer without a boolean "allow"'],
    ['/wrong-secret', 'refused the request: bad signature'],
  ]) {
    it(`fails closed on ${path}: refused, audited, nothing burned`, async () => {
      const s = await enrolledSeat(hook(path));
      const e = await failureOf(enroll({ url: s.url, challenge: s.code, subject: `CN=${s.seat}` }));
      expect(e.message).toContain(what);
      expect((await auditFor(s.seat))[0]).toMatchObject({ status: 'Failure' });
      expect(await status(s)).toBe('CREATED');
    });
  }

  it('a webhook nobody listens at refuses too', async () => {
    const s = await enrolledSeat({ webhook: { url: 'http://127.0.0.1:9/nothing', secret: env.WEBHOOK_TEST_SECRET, mode: 'approve', timeout_ms: 800 } });
    const e = await failureOf(enroll({ url: s.url, challenge: s.code, subject: `CN=${s.seat}` }));
    expect(e.message).toMatch(/^The enrollment webhook gave no decision \(/);
    expect(await status(s)).toBe('CREATED');
  });

  it('challenge: the webhook is sent the CSR challenge and decides it; used once, and no enrollment is needed', async () => {
    const s = await enrolledSeat(hook('/allow', 'challenge'));
    const mdmChallenge = `mdm-${crypto.randomUUID()}`;
    await enroll({ url: s.url, challenge: mdmChallenge, subject: `CN=${s.seat}` });
    expect(JSON.parse((await last('/allow')).body)).toMatchObject({ mode: 'challenge', challenge: mdmChallenge, seat_id: s.seat });
    expect(await status(s)).toBe('CREATED'); // the seat's code was not needed, nor redeemed
    const again = await failureOf(enroll({ url: s.url, challenge: mdmChallenge, subject: `CN=${s.seat}` }));
    expect(again.message).toMatch(/^Challenge password is invalid/);
    const stored = await env.DB.prepare('SELECT challenge_mac FROM used_challenges').all();
    expect(JSON.stringify(stored.results)).not.toContain(mdmChallenge);
  });

  it('a profile refuses a webhook that is not one, field by field', async () => {
    const s = await enrolledSeat();
    const profile = (await api('GET', '/scep-profiles')).json.data.find((p) => p.name === s.profile);
    const r = await api('PUT', `/scep-profiles/${profile.id}`, { ...profile, webhook: { url: 'ftp://x', secret: 'short', mode: 'approve' } });
    expect(r.status).toBe(400);
    expect(Object.keys(r.json._errors[0].details)).toEqual(expect.arrayContaining(['webhook.url', 'webhook.secret']));
  });
});
