// Reads from the nearest D1 replica (the Sessions API, src/scep.js): what a PKIOperation's decision relied on is
// checked again by its claim on the primary (the core's Preconditions, rendered by src/store.js), so facts that
// lag the primary never issue: a claim refused for them writes nothing, and the request is decided again.
import { describe, expect, it } from 'vitest';
import { Store } from '../src/store.js';
import { api, enroll, enrolledSeat, env, unique } from './helpers.js';

const redeem = (s, requires) => ({ write: 'redeem', enrollmentId: s.enrollmentId, transactionId: unique('t'), claim: unique('c'), now: Math.floor(Date.now() / 1000), requires });
const status = async (s) => (await env.DB.prepare('SELECT status FROM enrollments WHERE id = ?').bind(s.enrollmentId).first('status'));

describe('a claim checks on the primary what the facts showed', () => {
  it('a CA disabled or replaced since refuses the claim and uses nothing', async () => {
    const name = unique('Rep');
    const created = (await api('POST', '/certificate-authorities', { name, generate: { subject: `CN=${name}`, key_bits: 2048, validity_days: 365 } })).json;
    const s = await enrolledSeat({ ca_identity_name: name });
    const store = new Store(env.DB.withSession('first-unconstrained'));
    const ca = (caId) => ({ kind: 'caCurrent', caIdentityName: name, caId });
    await api('POST', `/certificate-authorities/${created.id}/disable`);
    expect(await store.write([redeem(s, [ca(created.id)])])).toBe(false);
    expect(await store.write([redeem(s, [ca('secrets')])])).toBe(false);
    expect(await status(s)).toBe('CREATED');
    await api('POST', `/certificate-authorities/${created.id}/enable`);
    // Enabled again, the same request enrolls through the Worker.
    const { certificate } = await enroll({ url: s.url, challenge: s.code, subject: `CN=${s.seat}` });
    expect(certificate).toBeTruthy();
    expect(await status(s)).toBe('REDEEMED');
  });

  it('a seat deleted since refuses the claim; a password that creates its seat does not bring a deleted one back', async () => {
    const s = await enrolledSeat();
    const store = new Store(env.DB.withSession('first-unconstrained'));
    await env.DB.prepare('UPDATE seats SET deleted_at = 1 WHERE id = ?').bind(s.seat).run();
    expect(await store.write([redeem(s, [{ kind: 'seatLive', seatId: s.seat }])])).toBe(false);
    expect(await store.write([redeem(s, [{ kind: 'seatNotDeleted', seatId: s.seat }])])).toBe(false);
    expect(await status(s)).toBe('CREATED');
    await env.DB.prepare('UPDATE seats SET deleted_at = NULL WHERE id = ?').bind(s.seat).run();
    const absent = unique('absent');
    expect(await store.write([redeem(s, [{ kind: 'seatLive', seatId: s.seat }, { kind: 'seatNotDeleted', seatId: absent }])])).toBe(true);
    expect(await status(s)).toBe('REDEEMED');
  });

  it('a challenge a webhook owns is recorded as used only while the preconditions hold', async () => {
    const s = await enrolledSeat();
    const store = new Store(env.DB.withSession('first-unconstrained'));
    const claim = (requires) => ({ write: 'claimChallenge', challengeMac: unique('mac'), profileId: s.profileId, transactionId: unique('t'), claim: unique('c'), now: 1, requires });
    const gone = unique('gone');
    expect(await store.write([claim([{ kind: 'seatLive', seatId: gone }])])).toBe(false);
    expect(await store.write([claim([{ kind: 'seatLive', seatId: s.seat }])])).toBe(true);
  });

  it('a changed profile, an enrolled seat or a renewed certificate refuse the claim', async () => {
    const s = await enrolledSeat();
    const store = new Store(env.DB.withSession('first-unconstrained'));
    const { body } = await env.DB.prepare('SELECT body FROM profiles WHERE id = ?').bind(s.profileId).first();
    expect(await store.write([redeem(s, [{ kind: 'profileCurrent', profileId: s.profileId, body: `${body} ` }])])).toBe(false);
    // The seat has its open code: a password fetched without a seat may not enroll it.
    const now = Math.floor(Date.now() / 1000);
    expect(await store.write([redeem(s, [{ kind: 'seatUnenrolled', seatId: s.seat, profileId: s.profileId, now }])])).toBe(false);
    expect(await store.write([redeem(s, [{ kind: 'renewable', serial: 'no-such-serial' }])])).toBe(false);
    expect(await status(s)).toBe('CREATED');
    expect(await store.write([redeem(s, [{ kind: 'profileCurrent', profileId: s.profileId, body }])])).toBe(true);
  });

  it('a held request that claims nothing else is its own claim: a second copy changes nothing and fails nothing', async () => {
    const s = await enrolledSeat();
    const store = new Store(env.DB.withSession('first-unconstrained'));
    const now = Math.floor(Date.now() / 1000);
    const row = { profileId: s.profileId, transactionId: unique('tid'), signerFingerprint: 'fp', seatId: s.seat, messageType: 'RenewalReq', keyDigest: 'kd', status: 'PENDING', publicKey: new Uint8Array([1]), plan: '{}', now };
    const audit = { time: now, profile: s.profile, seatId: s.seat, transactionId: row.transactionId, operation: 'RenewalReq', status: 'Success', code: 'pending', message: 'held' };
    const hold = () => store.write([{ write: 'hold', row, requires: [{ kind: 'seatLive', seatId: s.seat }] }, { write: 'insertAudit', row: audit, guard: { kind: 'justWritten' } }]);
    expect(await hold()).toBe(true);
    expect(await hold()).toBe(false);
    const audits = await env.DB.prepare("SELECT COUNT(*) AS n FROM audit_logs WHERE transaction_id = ? AND code = 'pending'").bind(row.transactionId).first('n');
    expect(audits).toBe(1);
  });

  it('an upstream certificate settling a renewal requires the renewed certificate unrevoked', async () => {
    const s = await enrolledSeat();
    const store = new Store(env.DB.withSession('first-unconstrained'));
    const now = Math.floor(Date.now() / 1000);
    const serial = unique('old').replace(/[^0-9a-z]/g, '');
    await env.DB.prepare('INSERT INTO certificates (serial, fingerprint, seat_id, profile_id, subject, not_before, not_after, der, transaction_id, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, 0, ?, x\'00\', ?, 0, ?)')
      .bind(serial, `fp-${serial}`, s.seat, s.profileId, `CN=${s.seat}`, now + 3600, 't', now)
      .run();
    const row = { profileId: s.profileId, transactionId: unique('tid'), signerFingerprint: 'fp', seatId: s.seat, messageType: 'RenewalReq', keyDigest: 'kd', status: 'PENDING', publicKey: new Uint8Array([1]), plan: '{}', now };
    expect(await store.write([{ write: 'hold', row, requires: [] }])).toBe(true);
    const key = { profileId: s.profileId, transactionId: row.transactionId, signerFingerprint: 'fp' };
    const settle = (requires) => store.write([{ write: 'decideHeld', key, status: 'ISSUED', serial: 'new', renews: null, message: null, now, requires }]);
    expect(await settle([{ kind: 'notRevoked', serial }])).toBe(false);
    expect(await settle([])).toBe(true);
  });
});
