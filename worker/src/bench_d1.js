// For `make bench`'s latency model only: the D1 binding behind a wrapper that waits BENCH_D1_RTT_MS before each
// round trip (a statement's first/run/all, or a batch) and counts the trips, reported in the answer's
// X-Bench-D1-Trips header. Never set in wrangler.jsonc: with the variable absent the binding is used as it is.
export function delayedD1(db, ms) {
  const trips = { count: 0 };
  const wait = () => (trips.count++, new Promise((r) => setTimeout(r, ms)));
  const statement = (inner) => ({
    inner,
    bind: (...args) => statement(inner.bind(...args)),
    first: async (...a) => (await wait(), inner.first(...a)),
    run: async (...a) => (await wait(), inner.run(...a)),
    all: async (...a) => (await wait(), inner.all(...a)),
  });
  return {
    trips,
    binding: {
      prepare: (sql) => statement(db.prepare(sql)),
      batch: async (statements) => (await wait(), db.batch(statements.map((s) => s.inner))),
      exec: async (sql) => (await wait(), db.exec(sql)),
    },
  };
}
