// Failed PKIOperations per client address (the rule is the core's: src/failure_limit.rs). This isolate keeps the
// core's note of the addresses over the limit; the store counts in D1, in the audit row's batch; where the
// Workers Rate Limiting binding FAILURE_LIMITER is configured, its answer decides the refusal instead of the count.
import * as scep from 'scepkit/server';

const { window: FAILURE_WINDOW, audited: AUDITED_FAILURES, refuseAfter: REFUSE_AFTER } = scep.failureLimits();
export { FAILURE_WINDOW, AUDITED_FAILURES, REFUSE_AFTER };
export const clientKey = scep.clientKey;

const limit = new scep.FailureLimit();
const address = (c) => c.req.header('cf-connecting-ip');

/** HTTP 429 for a PKIOperation from an address over the limit at `t`; null for everyone else (no I/O). */
export function refused(c, t) {
  const refusal = limit.refused(address(c), t);
  return refusal && c.text(refusal.text, 429, { 'retry-after': String(refusal.retryAfter) });
}

/** Counts one failed PKIOperation of the request's address and audits it (`entry`), in one D1 batch. */
export async function auditFailure(c, store, entry) {
  const limiter = c.env.FAILURE_LIMITER;
  const count = limit.count(address(c), entry.time, Boolean(limiter));
  const [failures, limited] = await Promise.all([
    store.auditFailure(entry, count),
    limiter
      ?.limit({ key: count.key })
      .then((outcome) => !outcome.success)
      .catch((e) => (console.error('FAILURE_LIMITER.limit failed', e), false)),
  ]);
  limit.counted(count, failures, limited, entry.time);
}
