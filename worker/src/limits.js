// Failed PKIOperations per client address: what keeps an anonymous sender from flooding the audit log.
//
// A failure (HTTP 400 for unreadable input, or a FAILURE CertRep) is counted per client address and fixed window
// in D1, in the same batch as its audit row (store.auditFailure: no extra round trip). The first AUDITED_FAILURES
// of an address in a window are audited one by one; the next writes one summary row naming the address, which the
// following ones keep up to date with the window's count (and write nothing else). Once an address has
// REFUSE_AFTER failures in the window (or, where the Workers Rate Limiting binding FAILURE_LIMITER is configured,
// once that says so), its PKIOperations are answered HTTP 429 with Retry-After until the window ends, before
// anything is read, parsed, decrypted or written. Successes are never counted, and cost nothing more: the refusal
// is decided from a per-isolate note of the addresses known to be over the limit (a cache of D1's count: losing
// it loses nothing, and another isolate learns it on its next failure from that address).

/** The window failures are counted in, in seconds (fixed windows aligned on multiples of it). */
export const FAILURE_WINDOW = 60;
/** The failures of an address in one window that are audited one by one (N). */
export const AUDITED_FAILURES = 10;
/** The failures of an address in one window after which its PKIOperations are refused with 429 (M). */
export const REFUSE_AFTER = 120;

const MAX_NOTES = 10_000;

// Addresses known to be over the limit, with the end of their window (Unix seconds). Bounded: when full, the
// expired notes go, then the oldest.
const refusedUntil = new Map();
// The window whose start this isolate last swept older counters before (once per window per isolate).
let sweptBefore = 0;

/** HTTP 429 for a PKIOperation from an address over the limit at `t`; null for everyone else (no I/O). */
export function refused(c, t) {
  if (refusedUntil.size === 0) return null;
  const key = clientKey(c.req.header('cf-connecting-ip'));
  const until = refusedUntil.get(key);
  if (until === undefined) return null;
  if (until <= t) {
    refusedUntil.delete(key);
    return null;
  }
  const wait = String(until - t);
  return c.text(`Too many failed SCEP requests from this address; retry in ${wait} s`, 429, { 'retry-after': wait });
}

/**
 * Counts one failed PKIOperation of the request's client address and audits it (`entry`): one by one for the
 * first AUDITED_FAILURES of the window, then in the window's summary row. One D1 batch; where FAILURE_LIMITER is
 * bound, its `limit()` runs alongside and decides the refusal instead of the D1 count.
 */
export async function auditFailure(c, store, entry) {
  const key = clientKey(c.req.header('cf-connecting-ip'));
  const windowStart = entry.time - (entry.time % FAILURE_WINDOW);
  const limiter = c.env.FAILURE_LIMITER;
  const sweep = windowStart > sweptBefore;
  if (sweep) sweptBefore = windowStart;
  const after = limiter ? 'past the FAILURE_LIMITER rate limit' : `after ${REFUSE_AFTER}`;
  const summary = {
    prefix: `Failed requests from ${key} in the ${FAILURE_WINDOW} s from ${new Date(windowStart * 1000).toISOString().replace('.000', '')}: `,
    suffix: ` (the first ${AUDITED_FAILURES} are logged one by one, the others only counted here; ${after}, its PKIOperations are refused with HTTP 429 until the window ends)`,
  };
  const [failures, limited] = await Promise.all([
    store.auditFailure(entry, { key, windowStart, audited: AUDITED_FAILURES, summary, sweep }),
    limiter
      ?.limit({ key })
      .then((outcome) => !outcome.success)
      .catch((e) => (console.error('FAILURE_LIMITER.limit failed', e), false)),
  ]);
  if (limiter ? limited : failures >= REFUSE_AFTER) note(key, windowStart + FAILURE_WINDOW, entry.time);
}

/**
 * Whom a request is counted against: its client address as Cloudflare (and `wrangler dev`) gives it in
 * CF-Connecting-IP. An IPv6 address counts as its /64 (one host commonly holds a whole /64), an IPv4-mapped
 * one as its IPv4 address; without the header, 'unknown'.
 */
export function clientKey(header) {
  const value = header?.trim().toLowerCase();
  if (!value) return 'unknown';
  const v4 = ipv4(value);
  if (v4) return v4;
  if (value.includes(':')) {
    const key = ipv6Key(value);
    if (key) return key;
  }
  return value.slice(0, 64);
}

function ipv4(text) {
  const m = text.match(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/);
  if (!m) return null;
  const octets = m.slice(1).map(Number);
  return octets.every((o) => o <= 255) ? octets.join('.') : null;
}

function ipv6Key(text) {
  let s = text.replace(/%.*$/, '');
  const dotted = s.match(/^(.*:)([^:]*\.[^:]*)$/);
  if (dotted) {
    const v4 = ipv4(dotted[2]);
    if (!v4) return null;
    const o = v4.split('.').map(Number);
    s = `${dotted[1]}${((o[0] << 8) | o[1]).toString(16)}:${((o[2] << 8) | o[3]).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const groups = (h) => (h === '' ? [] : h.split(':'));
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const all = [...head, ...Array(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  if (!all.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return null;
  const n = all.map((g) => parseInt(g, 16));
  if (n.slice(0, 5).every((g) => g === 0) && n[5] === 0xffff) return [n[6] >> 8, n[6] & 255, n[7] >> 8, n[7] & 255].join('.');
  return `${n.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/** Remembers until when `key` is refused (at `t`). */
function note(key, until, t) {
  if (refusedUntil.size >= MAX_NOTES) {
    for (const [k, u] of refusedUntil) if (u <= t) refusedUntil.delete(k);
    if (refusedUntil.size >= MAX_NOTES) refusedUntil.delete(refusedUntil.keys().next().value);
  }
  refusedUntil.delete(key);
  refusedUntil.set(key, until);
}
