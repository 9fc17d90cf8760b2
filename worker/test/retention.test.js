// The daily prune (src/retention.rs through the Worker's scheduled handler): old audit rows, decided
// transactions whose certificate is long expired, dead codes and expired one-time passwords go; certificates,
// redeemed codes, recent rows and pending work stay; the run audits what it deleted. The audit log exports as CSV.
import { createScheduledController } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { scheduled } from '../src/index.js';
import { api, BASE, enroll, enrolledSeat, env, fetchWorker } from './helpers.js';

const DAY = 86_400;
const count = async (sql, ...args) => (await env.DB.prepare(sql).bind(...args).first('n')) ?? 0;

describe('retention', () => {
  it('prunes what is past the retention, keeps the record of what the CA vouched for, and says what it did', async () => {
    const s = await enrolledSeat();
    await enroll({ url: s.url, challenge: s.code, subject: `CN=${s.seat}` });
    const now = Math.floor(Date.now() / 1000);
    const old = now - 500 * DAY;
    // Age this seat's rows as if they were 500 days old, its certificate expired 450 days ago.
    await env.DB.batch([
      env.DB.prepare('UPDATE audit_logs SET time = ? WHERE seat_id = ?').bind(old, s.seat),
      env.DB.prepare('UPDATE certificates SET not_after = ? WHERE seat_id = ?').bind(now - 450 * DAY, s.seat),
      env.DB.prepare('INSERT INTO enrollments (id, seat_id, profile_id, code_mac, status, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)').bind(crypto.randomUUID(), s.seat, s.profileId, 'x', 'REVOKED', old + 7 * DAY, old),
    ]);
    const before = { audit: await count('SELECT COUNT(*) AS n FROM audit_logs WHERE seat_id = ?', s.seat), certs: await count('SELECT COUNT(*) AS n FROM certificates WHERE seat_id = ?', s.seat) };
    expect(before.audit).toBeGreaterThan(0);
    const counts = await scheduled(createScheduledController({ scheduledTime: now * 1000, cron: '17 3 * * *' }), env);
    expect(Object.fromEntries(counts)).toMatchObject({ 'audit rows': expect.any(Number), transactions: expect.any(Number), enrollments: expect.any(Number) });
    expect(await count('SELECT COUNT(*) AS n FROM audit_logs WHERE seat_id = ?', s.seat)).toBe(0);
    expect(await count('SELECT COUNT(*) AS n FROM transactions WHERE seat_id = ?', s.seat)).toBe(0);
    expect(await count("SELECT COUNT(*) AS n FROM enrollments WHERE seat_id = ? AND status = 'REVOKED'", s.seat)).toBe(0);
    // Kept: the certificate and the redeemed code; and everything younger than the retention.
    expect(await count('SELECT COUNT(*) AS n FROM certificates WHERE seat_id = ?', s.seat)).toBe(before.certs);
    expect(await count("SELECT COUNT(*) AS n FROM enrollments WHERE seat_id = ? AND status = 'REDEEMED'", s.seat)).toBe(1);
    const [row] = (await api('GET', '/audit-logs?operation=prune&limit=1')).json.data;
    expect(row).toMatchObject({ status: 'Success', code: 'pruned' });
    expect(row.message).toMatch(/\(400 days of retention\): .*\d+ audit rows/);
  });

  it('the audit log exports as CSV, formulas defused, page by page', async () => {
    const s = await enrolledSeat();
    await enroll({ url: s.url, challenge: s.code, subject: `CN=${s.seat}` });
    // A message a spreadsheet would run (audit messages quote what requesters sent).
    await env.DB.prepare("INSERT INTO audit_logs (time, seat_id, operation, status, code, message) VALUES (?, ?, 'PKCSReq', 'Failure', 'x', '=HYPERLINK(\"http://evil\")')").bind(Math.floor(Date.now() / 1000), s.seat).run();
    const get = (q) => fetchWorker(`${BASE}/api/v1/audit-logs${q}`, { headers: { authorization: `Bearer ${env.ADMIN_TOKEN}`, accept: 'text/csv' } });
    const res = await get('?limit=1');
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    const text = await res.text();
    expect(text.split('\r\n')[0]).toBe('id,time,status,operation,code,profile,seat_id,transaction_id,message,resolution');
    expect(res.headers.get('x-next-cursor')).toBeTruthy();
    const all = await (await get(`?seat_id=${s.seat}`)).text();
    expect(all).toContain(`,Success,PKCSReq,issued,${s.profile},${s.seat},`);
    expect(all).toContain(`"'=HYPERLINK(""http://evil"")"`);
  });
});
