// Anonymous senders cannot flood the audit log: failed PKIOperations are counted per client address and window,
// the first few audited one by one and the rest in one summary row, and past a limit the address is refused with
// HTTP 429 until its window ends. Successes are never counted or refused. The clock is pinned (only Date is faked,
// and the Worker runs in this isolate), so a window is exactly where a test puts it; each test uses addresses of
// its own (192.0.2.0/24, 2001:db8::/32).
import { createExecutionContext, env, SELF } from 'cloudflare:test';
import { afterEach, describe, expect, it, vi } from 'vitest';
import app from '../src/index.js';
import { AUDITED_FAILURES, clientKey, FAILURE_WINDOW, REFUSE_AFTER } from '../src/limits.js';
import { api, enroll, enrolledSeat, failureOf, requester, scep } from './helpers.js';

/** Fetch as the client at `ip` (Cloudflare sets CF-Connecting-IP; a client cannot). */
const from = (ip) => (url, init) => {
  const request = new Request(url, init);
  request.headers.set('cf-connecting-ip', ip);
  return SELF.fetch(request);
};

const garbage = async (url, fetch) => {
  const res = await fetch(`${url}?operation=PKIOperation`, { method: 'POST', body: new Uint8Array([0x30, 0x03, 1, 2, 3]) });
  await res.arrayBuffer();
  return res;
};

/** Pins the clock `offset` seconds into a window `ahead` windows after the current one; returns its start (s). */
function pinWindow(offset, ahead = 1) {
  const start = (Math.floor(Date.now() / 1000 / FAILURE_WINDOW) + ahead) * FAILURE_WINDOW;
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime((start + offset) * 1000);
  return start;
}

afterEach(() => vi.useRealTimers());

const auditSince = async (t) => (await api('GET', `/audit-logs?since=${t}&limit=10000`)).json.data;
const summaries = (rows, key) => rows.filter((r) => r.code === 'rate_limited' && r.message.startsWith(`Failed requests from ${key} `));

async function newCode(s) {
  const seat = `${s.seat}-${Math.random().toString(36).slice(2, 8)}`;
  await api('POST', '/seats', { id: seat });
  const e = await api('POST', '/enrollments', { seat_id: seat, profile: s.profile });
  return { seat, code: e.json.enrollment_code };
}

describe('failed requests per client address', () => {
  it('300 garbage POSTs from one address: 10 audited, one summary, 429 with Retry-After after 120; other addresses are served', async () => {
    const s = await enrolledSeat();
    const w = pinWindow(5);
    const flood = '192.0.2.10';
    const statuses = [];
    const retryAfter = new Set();
    for (let i = 0; i < 300; i++) {
      const res = await garbage(s.url, from(flood));
      statuses.push(res.status);
      if (res.status === 429) retryAfter.add(res.headers.get('retry-after'));
    }
    expect(statuses.slice(0, REFUSE_AFTER)).toEqual(Array(REFUSE_AFTER).fill(400));
    expect(statuses.slice(REFUSE_AFTER)).toEqual(Array(300 - REFUSE_AFTER).fill(429));
    expect([...retryAfter]).toEqual([String(FAILURE_WINDOW - 5)]);

    let rows = await auditSince(w);
    const audited = rows.filter((r) => r.profile === s.profile);
    expect(audited).toHaveLength(AUDITED_FAILURES);
    expect(audited.every((r) => r.status === 'Failure' && r.code === 'malformed')).toBe(true);
    const [summary, ...more] = summaries(rows, flood);
    expect(more).toEqual([]);
    expect(summary).toMatchObject({ status: 'Failure', operation: 'PKIOperation', profile: null, time: w + 5 });
    expect(summary.message).toBe(
      `Failed requests from ${flood} in the ${FAILURE_WINDOW} s from ${new Date(w * 1000).toISOString().replace('.000', '')}: ${REFUSE_AFTER} (the first ${AUDITED_FAILURES} are logged one by one, the others only counted here; after ${REFUSE_AFTER}, its PKIOperations are refused with HTTP 429 until the window ends)`,
    );

    // Another address is served and audited; the flooded address may still ask for the CA's certificates.
    expect((await garbage(s.url, from('192.0.2.11'))).status).toBe(400);
    rows = await auditSince(w);
    expect(rows.filter((r) => r.profile === s.profile)).toHaveLength(AUDITED_FAILURES + 1);
    expect((await from(flood)(`${s.url}?operation=GetCACert`)).status).toBe(200);

    // The neighbour enrolls, audited as ever.
    const ok = await enroll({ url: s.url, challenge: s.code, subject: `CN=${s.seat}`, fetch: from('192.0.2.12') });
    expect(scep.inspect(ok.certificate).subject).toBe(`CN=${s.seat}`);
    expect((await auditSince(w)).filter((r) => r.seat_id === s.seat).map((r) => r.code)).toEqual(['issued']);

    // The flooded address itself waits for the next window, whatever it sends (nothing is read before the 429);
    // the refused request redeemed nothing, and in the next window the same code enrolls.
    const later = await newCode(s);
    const refused = await failureOf(enroll({ url: s.url, challenge: later.code, subject: `CN=${later.seat}`, fetch: from(flood) }));
    expect(String(refused.message)).toMatch(/429/);
    vi.setSystemTime((w + FAILURE_WINDOW) * 1000);
    const next = await enroll({ url: s.url, challenge: later.code, subject: `CN=${later.seat}`, fetch: from(flood) });
    expect(scep.inspect(next.certificate).subject).toBe(`CN=${later.seat}`);
    expect((await garbage(s.url, from(flood))).status).toBe(400);
    rows = await auditSince(w + FAILURE_WINDOW);
    expect(rows.filter((r) => r.profile === s.profile && r.code === 'malformed')).toHaveLength(1);
    expect(summaries(rows, flood)).toEqual([]);
  });

  it('successes are neither counted nor refused before the limit', async () => {
    const s = await enrolledSeat();
    const w = pinWindow(30);
    const ip = '192.0.2.20';
    for (let i = 0; i < REFUSE_AFTER - 1; i++) expect((await garbage(s.url, from(ip))).status).toBe(400);
    for (const { seat, code } of [{ seat: s.seat, code: s.code }, await newCode(s), await newCode(s)]) {
      const ok = await enroll({ url: s.url, challenge: code, subject: `CN=${seat}`, fetch: from(ip) });
      expect(scep.inspect(ok.certificate).subject).toBe(`CN=${seat}`);
    }
    expect((await garbage(s.url, from(ip))).status).toBe(400); // the 120th failure
    const refused = await garbage(s.url, from(ip));
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe(String(FAILURE_WINDOW - 30));
    const [summary] = summaries(await auditSince(w), ip);
    expect(summary.message).toContain(`: ${REFUSE_AFTER} (`);
  });

  it('FAILURE CertReps count too: a wrong challenge over and over', async () => {
    const s = await enrolledSeat();
    const w = pinWindow(1);
    const ip = '192.0.2.30';
    const r = await requester(s);
    const wrong = r.csr({ challenge: 'AAAAA-BBBBB-CCCCC-DDDDD' });
    const send = async (i) => {
      const req = r.build(wrong, { transactionId: `wrong-${i}` });
      const res = await from(ip)(`${s.url}?operation=PKIOperation`, { method: 'POST', body: req.message });
      if (res.status !== 200) return res.status;
      return scep.readCertRep(new Uint8Array(await res.arrayBuffer()), req, r.key, r.signer, r.caBody).failInfo;
    };
    for (let i = 0; i < AUDITED_FAILURES + 2; i++) expect(await send(i)).toBe('badRequest');
    let rows = await auditSince(w);
    const audited = rows.filter((a) => a.seat_id === s.seat);
    expect(audited).toHaveLength(AUDITED_FAILURES);
    expect(audited.every((a) => a.status === 'Failure' && a.message.startsWith('Challenge password is invalid'))).toBe(true);
    expect(summaries(rows, ip)[0].message).toContain(`: ${AUDITED_FAILURES + 2} (`);

    // Garbage and refusals share the count: up to the limit with garbage, one more refusal, then 429.
    for (let i = AUDITED_FAILURES + 2; i < REFUSE_AFTER - 1; i++) expect((await garbage(s.url, from(ip))).status).toBe(400);
    expect(await send('last')).toBe('badRequest');
    expect(await send('refused')).toBe(429);
    rows = await auditSince(w);
    expect(rows.filter((a) => a.seat_id === s.seat)).toHaveLength(AUDITED_FAILURES);
    expect(summaries(rows, ip)).toHaveLength(1);
    expect(summaries(rows, ip)[0].message).toContain(`: ${REFUSE_AFTER} (`);
    // The code was never redeemed: a proper request from elsewhere enrolls.
    await enroll({ url: s.url, challenge: s.code, subject: `CN=${s.seat}`, fetch: from('192.0.2.31') });
  });

  it('with a Workers Rate Limiting binding, FAILURE_LIMITER decides the 429 (per /64), D1 still aggregates the audit rows', async () => {
    const s = await enrolledSeat();
    const w = pinWindow(10);
    const keys = [];
    let allowed = Infinity;
    const FAILURE_LIMITER = { limit: async ({ key }) => (keys.push(key), { success: keys.length <= allowed }) };
    const bound = (ip) => (url, init) => {
      const request = new Request(url, init);
      request.headers.set('cf-connecting-ip', ip);
      return app.fetch(request, { ...env, FAILURE_LIMITER }, createExecutionContext());
    };
    // Past the D1 limit, but the binding allows it: served.
    for (let i = 0; i < REFUSE_AFTER + 10; i++) expect((await garbage(s.url, bound(`2001:db8:77:1::${(i % 2) + 1}`))).status).toBe(400);
    expect(new Set(keys)).toEqual(new Set(['2001:db8:77:1::/64']));
    expect(keys).toHaveLength(REFUSE_AFTER + 10);
    allowed = keys.length;
    expect((await garbage(s.url, bound('2001:db8:77:1::3'))).status).toBe(400); // the binding says no ...
    const refused = await garbage(s.url, bound('2001:db8:77:1:ffff::9')); // ... and the whole /64 waits
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe(String(FAILURE_WINDOW - 10));
    expect(keys).toHaveLength(REFUSE_AFTER + 11); // a refusal asks nothing
    // Another /64 is served.
    expect((await garbage(s.url, bound('2001:db8:77:2::1'))).status).toBe(400);

    const rows = await auditSince(w);
    expect(rows.filter((r) => r.profile === s.profile)).toHaveLength(AUDITED_FAILURES + 1);
    const [summary] = summaries(rows, '2001:db8:77:1::/64');
    expect(summary.message).toContain(`: ${REFUSE_AFTER + 11} (`);
    expect(summary.message).toContain('past the FAILURE_LIMITER rate limit');

    // A binding that fails is no reason to fail the request.
    const broken = { limit: async () => Promise.reject(new Error('down')) };
    const request = new Request(`${s.url}?operation=PKIOperation`, { method: 'POST', body: 'x', headers: { 'cf-connecting-ip': '2001:db8:77:3::1' } });
    vi.spyOn(console, 'error').mockImplementation(() => {});
    expect((await app.fetch(request, { ...env, FAILURE_LIMITER: broken }, createExecutionContext())).status).toBe(400);
  });

  it('the counters of windows that are over are deleted', async () => {
    const s = await enrolledSeat();
    const w = pinWindow(0, 10);
    await garbage(s.url, from('192.0.2.40'));
    const rows = () => env.DB.prepare('SELECT window_start, key, failures FROM rate_limits WHERE key IN (?, ?) ORDER BY window_start').bind('192.0.2.40', '192.0.2.41').all();
    expect((await rows()).results).toEqual([{ window_start: w, key: '192.0.2.40', failures: 1 }]);
    vi.setSystemTime((w + FAILURE_WINDOW + 1) * 1000);
    await garbage(s.url, from('192.0.2.41'));
    expect((await rows()).results).toEqual([{ window_start: w + FAILURE_WINDOW, key: '192.0.2.41', failures: 1 }]);
    const old = await env.DB.prepare('SELECT COUNT(*) AS n FROM rate_limits WHERE window_start < ?').bind(w + FAILURE_WINDOW).first('n');
    expect(old).toBe(0);
  });
});

describe('clientKey', () => {
  it('is the IPv4 address, an IPv6 address\'s /64, or "unknown"', () => {
    expect(clientKey('192.0.2.1')).toBe('192.0.2.1');
    expect(clientKey(' 192.0.2.1 ')).toBe('192.0.2.1');
    expect(clientKey('2001:DB8:0:1:2:3:4:5')).toBe('2001:db8:0:1::/64');
    expect(clientKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(clientKey('2001:db8:0:1::')).toBe('2001:db8:0:1::/64');
    expect(clientKey('::1')).toBe('0:0:0:0::/64');
    expect(clientKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(clientKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(clientKey('64:ff9b:1::192.0.2.7')).toBe('64:ff9b:1:0::/64');
    expect(clientKey(undefined)).toBe('unknown');
    expect(clientKey('')).toBe('unknown');
    expect(clientKey('not an address')).toBe('not an address');
    expect(clientKey('1:2:3:4:5:6:7:8:9')).toBe('1:2:3:4:5:6:7:8:9');
    expect(clientKey('x'.repeat(100))).toBe('x'.repeat(64));
  });
});
