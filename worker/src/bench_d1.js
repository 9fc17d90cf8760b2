// For `make bench`'s latency model only: the D1 binding behind a wrapper that waits before each round trip (a
// statement's first/run/all, or a batch) and counts the trips, reported in the answer's X-Bench-D1-Trips (to the
// primary) and X-Bench-D1-Replica-Trips headers. A trip to the primary waits BENCH_D1_RTT_MS. In a session
// (withSession, as D1's Sessions API), reads before the session's first write go to the nearest replica and wait
// BENCH_D1_REPLICA_RTT_MS; a write, and everything after it, goes to the primary. Never set in wrangler.jsonc:
// with the variable absent the binding is used as it is.
export function delayedD1(db, primaryMs, replicaMs) {
  const trips = { primary: 0, replica: 0 };
  const isRead = (sql) => /^\s*SELECT\b/i.test(sql);
  const wrap = (inner, session) => {
    const trip = (reads) => {
      const replica = session && reads && !session.wrote;
      if (session && !reads) session.wrote = true;
      trips[replica ? 'replica' : 'primary']++;
      return new Promise((r) => setTimeout(r, replica ? replicaMs : primaryMs));
    };
    const statement = (stmt, sql) => ({
      inner: stmt,
      sql,
      bind: (...args) => statement(stmt.bind(...args), sql),
      first: async (...a) => (await trip(isRead(sql)), stmt.first(...a)),
      run: async (...a) => (await trip(isRead(sql)), stmt.run(...a)),
      all: async (...a) => (await trip(isRead(sql)), stmt.all(...a)),
    });
    return {
      prepare: (sql) => statement(inner.prepare(sql), sql),
      batch: async (statements) => (await trip(statements.every((s) => isRead(s.sql))), inner.batch(statements.map((s) => s.inner))),
      ...(session ? {} : { exec: async (sql) => (await trip(false), inner.exec(sql)), withSession: (c) => wrap(inner.withSession(c), { wrote: false }) }),
    };
  };
  return { trips, binding: wrap(db, null) };
}
