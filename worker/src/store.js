// The D1 store adapter: the only code that knows SQL. Every SCEP-path query is by key or index.

const ENROLLMENT = 'e.id, e.seat_id, e.profile_id, p.name AS profile, e.status, e.expires_at, e.created_at, e.redeemed_at, e.transaction_id';
const CERTIFICATE =
  'c.serial, c.fingerprint, c.seat_id, c.profile_id, p.name AS profile, c.subject, c.not_before, c.not_after, c.revoked_at, c.revocation_reason, c.renewed_by, c.transaction_id, c.upstream, c.created_at';

export class Conflict extends Error {
  constructor(message, code = 'E006') {
    super(message);
    this.code = code;
  }
}

// The CA a profile's ca_identity_name (the SQL expression `name`) names now: its current CA, else the secrets' CA.
const currentCaOf = (name) =>
  `SELECT * FROM certificate_authorities WHERE (name = ${name} AND role = 'current') OR (id = 'secrets' AND NOT EXISTS (SELECT 1 FROM certificate_authorities WHERE name = ${name} AND role = 'current')) ORDER BY id = 'secrets' LIMIT 1`;
// The same for a name bound twice.
const CURRENT_CA = currentCaOf('?');

/**
 * The core's Preconditions of a claim as SQL (` AND …` and its arguments): what the decision read, perhaps from a
 * lagging replica, checked again where the claim is written.
 */
function requiring(requires) {
  const conditions = requires.map((p) => {
    switch (p.kind) {
      case 'seatLive':
        return { sql: 'EXISTS (SELECT 1 FROM seats WHERE id = ? AND deleted_at IS NULL)', args: [p.seatId] };
      case 'seatNotDeleted':
        return { sql: 'NOT EXISTS (SELECT 1 FROM seats WHERE id = ? AND deleted_at IS NOT NULL)', args: [p.seatId] };
      case 'caCurrent':
        return { sql: `EXISTS (SELECT 1 FROM (${CURRENT_CA}) WHERE id = ? AND enabled = 1)`, args: [p.caIdentityName, p.caIdentityName, p.caId] };
      case 'profileCurrent':
        return { sql: 'EXISTS (SELECT 1 FROM profiles WHERE id = ? AND body = ?)', args: [p.profileId, p.body] };
      case 'seatUnenrolled':
        return {
          sql: "NOT EXISTS (SELECT 1 FROM certificates WHERE seat_id = ? AND revoked_at IS NULL AND not_after > ?) AND NOT EXISTS (SELECT 1 FROM enrollments WHERE seat_id = ? AND profile_id = ? AND status = 'CREATED')",
          args: [p.seatId, p.now, p.seatId, p.profileId],
        };
      case 'notRevoked':
        return { sql: 'EXISTS (SELECT 1 FROM certificates WHERE serial = ? AND revoked_at IS NULL)', args: [p.serial] };
      case 'renewable':
        return { sql: 'EXISTS (SELECT 1 FROM certificates WHERE serial = ? AND revoked_at IS NULL AND renewed_by IS NULL)', args: [p.serial] };
      default:
        throw new Error(`unknown precondition ${p.kind}`);
    }
  });
  return { sql: conditions.map((c) => ` AND ${c.sql}`).join(''), args: conditions.flatMap((c) => c.args) };
}

// `stored` is the body as D1 holds it: what a cached copy is checked against.
const toProfile = (row) => row && { id: row.id, name: row.name, body: JSON.parse(row.body), stored: row.body, created_at: row.created_at, updated_at: row.updated_at };

export class Store {
  /** A store whose reads all go to the D1 primary (a session that starts there). */
  static primary(db) {
    const store = new Store(db.withSession('first-primary'));
    store.readsPrimary = true;
    return store;
  }

  constructor(db) {
    this.db = db;
    this.readsPrimary = false;
  }

  // ---- pages ----
  /**
   * One page of a list in the order of `order` (columns that together are unique), after the row `cursor`
   * names (the order's values of the last row of the page before, as `next` gave them): keyset paging, so a
   * page costs its rows whatever page it is, and rows added meanwhile do not shift the pages.
   */
  async page({ select, from, where = [], args = [], order, desc = false, limit, cursor }) {
    const conditions = [...where];
    const values = [...args];
    if (cursor) {
      conditions.push(`(${order.join(', ')}) ${desc ? '<' : '>'} (${order.map(() => '?').join(', ')})`);
      values.push(...cursor);
    }
    const keys = order.map((column, i) => `${column} AS _k${i}`).join(', ');
    const sql = `SELECT ${select}, ${keys} FROM ${from} ${conditions.length ? `WHERE ${conditions.join(' AND ')}` : ''} ORDER BY ${order.map((c) => `${c}${desc ? ' DESC' : ''}`).join(', ')} LIMIT ?`;
    const { results } = await this.db.prepare(sql).bind(...values, limit + 1).all();
    const rows = results.slice(0, limit).map((row) => Object.fromEntries(Object.entries(row).filter(([k]) => !k.startsWith('_k'))));
    const last = results[limit - 1];
    return { rows, next: results.length > limit ? order.map((_, i) => last[`_k${i}`]) : null };
  }

  // ---- profiles ----
  async profiles() {
    const { results } = await this.db.prepare('SELECT * FROM profiles ORDER BY created_at, name').all();
    return results.map(toProfile);
  }

  async profilePage({ name, limit, cursor }) {
    const where = name === undefined ? [] : ['name = ?'];
    const page = await this.page({ select: '*', from: 'profiles', where, args: name === undefined ? [] : [name], order: ['name'], limit, cursor });
    return { rows: page.rows.map(toProfile), next: page.next };
  }

  async profile(id) {
    return toProfile(await this.db.prepare('SELECT * FROM profiles WHERE id = ?').bind(id).first());
  }

  async profileByName(name) {
    return toProfile(await this.db.prepare('SELECT * FROM profiles WHERE name = ?').bind(name).first());
  }

  /**
   * What GetCACaps, GetCACert and GetNextCACert read, in one round trip: the profile named `name` (or, without one,
   * the one `/scep` serves: `defaultName`, else the oldest), its CA as caOfProfile finds it, and that CA's staged
   * next one.
   */
  async profileAndCa(name, defaultName) {
    const profile = name ? 'SELECT * FROM profiles WHERE name = ?1' : 'SELECT * FROM profiles ORDER BY name = ?1 DESC, created_at LIMIT 1';
    const ca = currentCaOf(`(SELECT json_extract(body, '$.ca_identity_name') FROM (${profile}))`);
    const next = `SELECT * FROM certificate_authorities WHERE role = 'next' AND name = (SELECT name FROM (${ca}))`;
    const key = name ?? defaultName ?? null;
    const [p, c, n] = await this.db.batch([profile, ca, next].map((sql) => this.db.prepare(sql).bind(key)));
    return { profile: toProfile(p.results[0] ?? null), ca: c.results[0] ?? null, next: n.results[0] ?? null };
  }

  /** The profile `/scep` serves: the one named `name`, else the oldest. */
  async defaultProfile(name) {
    return (name && (await this.profileByName(name))) || toProfile(await this.db.prepare('SELECT * FROM profiles ORDER BY created_at LIMIT 1').first());
  }

  async createProfile(body, now) {
    const id = crypto.randomUUID();
    try {
      await this.db.prepare('INSERT INTO profiles (id, name, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?)').bind(id, body.name, JSON.stringify({ ...body, id }), now, now).run();
    } catch (e) {
      if (/UNIQUE/i.test(String(e.message))) throw new Conflict('Name Not Unique');
      throw e;
    }
    return this.profile(id);
  }

  async updateProfile(id, body, now) {
    try {
      const r = await this.db.prepare('UPDATE profiles SET name = ?, body = ?, updated_at = ? WHERE id = ?').bind(body.name, JSON.stringify({ ...body, id }), now, id).run();
      return r.meta.changes ? this.profile(id) : null;
    } catch (e) {
      if (/UNIQUE/i.test(String(e.message))) throw new Conflict('Name Not Unique');
      throw e;
    }
  }

  /** Deletes a profile nothing refers to; `Conflict('Reference Not Zero')` otherwise. */
  async deleteProfile(id) {
    const used = await this.db
      .prepare(
        `SELECT (SELECT COUNT(*) FROM enrollments WHERE profile_id = ?1) AS enrollments, (SELECT COUNT(*) FROM certificates WHERE profile_id = ?1) AS certificates,
           (SELECT COUNT(*) FROM transactions WHERE profile_id = ?1) AS transactions, (SELECT COUNT(*) FROM used_challenges WHERE profile_id = ?1) AS used_challenges`,
      )
      .bind(id)
      .first();
    const refs = Object.entries(used).filter(([, n]) => n > 0);
    if (refs.length) {
      const e = new Conflict('Reference Not Zero', 'E009');
      e.details = { profile: `is referred to by ${refs.map(([what, n]) => `${n} ${what.replace('_', ' ')}`).join(', ')}` };
      throw e;
    }
    const [, r] = await this.db.batch([this.db.prepare('DELETE FROM one_time_passwords WHERE profile_id = ?').bind(id), this.db.prepare('DELETE FROM profiles WHERE id = ?').bind(id)]);
    return r.meta.changes > 0;
  }

  // ---- seats ----
  /**
   * A seat; with `enrollment` (createEnrollment's fields but the seat) its first enrollment too, in the same
   * batch: both are written or neither.
   */
  async createSeat(id, now, enrollment) {
    // A deleted seat's id may be used again: the seat comes back (its old certificates were its own). A seat
    // that exists makes the INSERT fail, and with it the batch.
    const seat = [
      this.db.prepare('INSERT INTO seats (id, created_at) SELECT ?1, ?2 WHERE NOT EXISTS (SELECT 1 FROM seats WHERE id = ?1 AND deleted_at IS NOT NULL)').bind(id, now),
      this.db.prepare('UPDATE seats SET created_at = ?2, deleted_at = NULL WHERE id = ?1 AND deleted_at IS NOT NULL').bind(id, now),
    ];
    const first = enrollment && this.enrollmentStatements({ ...enrollment, seatId: id });
    try {
      await this.db.batch([...seat, ...(first?.statements ?? [])]);
    } catch (e) {
      if (/UNIQUE|PRIMARY/i.test(String(e.message))) throw new Conflict('Object Not Unique', 'E016');
      throw e;
    }
    return { id, created_at: now, ...(first ? { enrollment: first.record } : {}) };
  }

  async seatExists(id) {
    return (await this.db.prepare('SELECT 1 AS x FROM seats WHERE id = ? AND deleted_at IS NULL').bind(id).first('x')) === 1;
  }

  async seatPage({ prefix, limit, cursor }) {
    const where = ['deleted_at IS NULL'];
    const args = [];
    if (prefix !== undefined) where.push('substr(id, 1, ?) = ?') && args.push(prefix.length, prefix);
    return this.page({ select: 'id, created_at', from: 'seats', where, args, order: ['id'], limit, cursor });
  }

  /** A seat with what bears on deleting it: its certificates still valid at `now`, its open codes. */
  async seat(id, now) {
    return this.db
      .prepare(
        `SELECT s.id, s.created_at,
           (SELECT COUNT(*) FROM certificates c WHERE c.seat_id = s.id AND c.revoked_at IS NULL AND c.not_after > ?2) AS active_certificates,
           (SELECT COUNT(*) FROM certificates c WHERE c.seat_id = s.id) AS certificates,
           (SELECT COUNT(*) FROM enrollments e WHERE e.seat_id = s.id AND e.status = 'CREATED') AS open_enrollments
         FROM seats s WHERE s.id = ?1 AND s.deleted_at IS NULL`,
      )
      .bind(id, now)
      .first();
  }

  /**
   * Deletes a seat without certificates valid at `now` (`Conflict('Reference Not Zero')` otherwise), in one
   * batch: its open codes are revoked, and the seat is marked deleted (its revoked and expired certificates keep
   * it in the CRL and the audit log). Null when there is no such seat.
   */
  async deleteSeat(id, now, audit) {
    const active = '(SELECT COUNT(*) FROM certificates WHERE seat_id = ?1 AND revoked_at IS NULL AND not_after > ?2) = 0';
    const [deleted] = await this.db.batch([
      this.db.prepare(`UPDATE seats SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL AND ${active}`).bind(id, now),
      this.db.prepare("UPDATE enrollments SET status = 'REVOKED' WHERE seat_id = ? AND status = 'CREATED' AND EXISTS (SELECT 1 FROM seats WHERE id = ? AND deleted_at = ?)").bind(id, id, now),
      this.auditStatement(audit, { sql: 'EXISTS (SELECT 1 FROM seats WHERE id = ? AND deleted_at = ?)', args: [id, now] }),
    ]);
    if (deleted.meta.changes === 1) return true;
    if (await this.db.prepare('SELECT 1 AS x FROM seats WHERE id = ? AND deleted_at IS NULL').bind(id).first('x')) throw new Conflict('Reference Not Zero', 'E009');
    return null;
  }

  // ---- enrollments ----
  /** A new CREATED enrollment; any earlier open one of the seat for the profile is revoked (one live code). */
  async createEnrollment(enrollment) {
    const { statements, record } = this.enrollmentStatements(enrollment);
    await this.db.batch(statements);
    return record;
  }

  enrollmentStatements({ seatId, profileId, codeMac, expiresAt, now }) {
    const id = crypto.randomUUID();
    const statements = [
      this.db.prepare("UPDATE enrollments SET status = 'REVOKED' WHERE seat_id = ? AND profile_id = ? AND status = 'CREATED'").bind(seatId, profileId),
      this.db
        .prepare("INSERT INTO enrollments (id, seat_id, profile_id, code_mac, status, expires_at, created_at) VALUES (?, ?, ?, ?, 'CREATED', ?, ?)")
        .bind(id, seatId, profileId, codeMac, expiresAt, now),
    ];
    return { statements, record: { id, seat_id: seatId, profile_id: profileId, status: 'CREATED', expires_at: expiresAt, created_at: now } };
  }

  async enrollmentPage({ seat_id: seatId, profile, status, limit, cursor }) {
    const where = [];
    const args = [];
    if (seatId !== undefined) where.push('e.seat_id = ?') && args.push(seatId);
    if (profile !== undefined) where.push('p.name = ?') && args.push(profile);
    if (status !== undefined) where.push('e.status = ?') && args.push(status);
    return this.page({ select: ENROLLMENT, from: 'enrollments e JOIN profiles p ON p.id = e.profile_id', where, args, order: ['e.created_at', 'e.rowid'], limit, cursor });
  }

  async enrollment(id) {
    return this.db.prepare(`SELECT ${ENROLLMENT} FROM enrollments e JOIN profiles p ON p.id = e.profile_id WHERE e.id = ?`).bind(id).first();
  }

  /** Revokes an unused code (CREATED → REVOKED) and audits it, in one batch; whether it was unused. */
  async revokeEnrollment(id, audit) {
    const [revoked] = await this.db.batch([
      this.db.prepare("UPDATE enrollments SET status = 'REVOKED' WHERE id = ? AND status = 'CREATED'").bind(id),
      this.auditStatement(audit, { sql: 'changes() = 1', args: [] }),
    ]);
    return revoked.meta.changes === 1;
  }

  /** An enrollment with what a configuration profile needs: its code's MAC and its profile. */
  async enrollmentForPayload(id) {
    const row = await this.db
      .prepare(
        'SELECT e.id, e.seat_id, e.status, e.code_mac, e.expires_at, p.name, p.body FROM enrollments e JOIN profiles p ON p.id = e.profile_id WHERE e.id = ?',
      )
      .bind(id)
      .first();
    return (
      row && {
        enrollment: { id: row.id, seatId: row.seat_id, status: row.status, codeMac: row.code_mac, expiresAt: row.expires_at },
        profile: { name: row.name, body: JSON.parse(row.body) },
      }
    );
  }

  /**
   * The facts a PKIOperation step asks for (the core's FactQuery), read in one round trip (one batch of
   * SELECTs): the seat, its open and last redeemed enrollment, the issued certificate that signed the request
   * and its profile, a prior transaction with its certificate, a certificate by serial, and the profile's body
   * as stored (to check a cached copy).
   */
  async facts(q) {
    const none = this.db.prepare('SELECT NULL AS x WHERE 0');
    const [seat, open, redeemed, signer, prior, cert, profile, usedChallenge, password, valid, ca] = await this.db.batch([
      q.seatId ? this.db.prepare('SELECT deleted_at FROM seats WHERE id = ?').bind(q.seatId) : none,
      q.seatId
        ? this.db.prepare("SELECT id, code_mac, expires_at FROM enrollments WHERE seat_id = ? AND profile_id = ? AND status = 'CREATED' ORDER BY created_at DESC LIMIT 1").bind(q.seatId, q.profileId)
        : none,
      q.seatId
        ? this.db.prepare("SELECT id, code_mac, expires_at FROM enrollments WHERE seat_id = ? AND profile_id = ? AND status = 'REDEEMED' ORDER BY redeemed_at DESC LIMIT 1").bind(q.seatId, q.profileId)
        : none,
      q.findSignerCertificate
        ? this.db
            .prepare('SELECT c.serial, c.seat_id, c.profile_id, c.not_after, c.revoked_at, c.renewed_by, p.name AS profile_name FROM certificates c LEFT JOIN profiles p ON p.id = c.profile_id WHERE c.fingerprint = ?')
            .bind(q.signerFingerprint)
        : none,
      q.transactionId
        ? this.db
            .prepare('SELECT t.status, t.key_digest, t.certificate_serial, t.message, t.seat_id, t.plan, t.upstream, t.claim, t.updated_at, c.der FROM transactions t LEFT JOIN certificates c ON c.serial = t.certificate_serial WHERE t.profile_id = ? AND t.transaction_id = ? AND t.signer_fingerprint = ?')
            .bind(q.profileId, q.transactionId, q.signerFingerprint)
        : none,
      q.certificateSerial ? this.db.prepare('SELECT seat_id, der FROM certificates WHERE serial = ?').bind(q.certificateSerial) : none,
      q.profileBody ? this.db.prepare('SELECT body FROM profiles WHERE id = ?').bind(q.profileId) : none,
      q.challengeMac ? this.db.prepare('SELECT 1 AS x FROM used_challenges WHERE challenge_mac = ?').bind(q.challengeMac) : none,
      q.oneTimePasswordMac
        ? this.db.prepare('SELECT mac, expires_at, redeemed_at, issued_to, for_seat, credential FROM one_time_passwords WHERE mac = ? AND profile_id = ?').bind(q.oneTimePasswordMac, q.profileId)
        : none,
      q.oneTimePasswordMac && q.seatId
        ? this.db.prepare('SELECT 1 AS x FROM certificates WHERE seat_id = ? AND revoked_at IS NULL AND not_after > ? LIMIT 1').bind(q.seatId, q.now)
        : none,
      // The profile's current CA, as caOfProfile finds it (the secrets' CA where no CA has the name).
      q.caIdentityName ? this.db.prepare(CURRENT_CA).bind(q.caIdentityName, q.caIdentityName) : none,
    ]);
    const first = (r) => r.results[0] ?? null;
    const enrollment = (e) => e && { id: e.id, codeMac: e.code_mac, expiresAt: e.expires_at };
    const [s, p, k, o] = [first(signer), first(prior), first(cert), first(password)];
    return {
      seatExists: Boolean(first(seat)) && first(seat).deleted_at == null,
      seatDeleted: Boolean(first(seat)) && first(seat).deleted_at != null,
      seatHasValidCertificate: Boolean(first(valid)),
      openEnrollment: enrollment(first(open)),
      redeemedEnrollment: enrollment(first(redeemed)),
      signerCertificate: s && { serial: s.serial, seatId: s.seat_id, profileId: s.profile_id, profileName: s.profile_name, notAfter: s.not_after, revoked: s.revoked_at != null, renewed: s.renewed_by != null },
      priorTransaction: p && {
        status: p.status, keyDigest: p.key_digest, certificateSerial: p.certificate_serial, message: p.message, seatId: p.seat_id, certificateDer: p.der && new Uint8Array(p.der),
        plan: p.plan, upstream: p.upstream, claim: p.claim, updatedAt: p.updated_at,
      },
      certificate: k && { seatId: k.seat_id, der: new Uint8Array(k.der) },
      requesterSeat: s?.seat_id ?? null,
      profileBody: first(profile)?.body ?? null,
      challengeUsed: Boolean(first(usedChallenge)),
      ca: first(ca) && { id: first(ca).id, enabled: first(ca).enabled === 1 },
      oneTimePassword: o && { mac: o.mac, expiresAt: o.expires_at, redeemed: o.redeemed_at != null, issuedTo: o.issued_to, forSeat: o.for_seat, credential: o.credential },
    };
  }

  /** Runs a PKIOperation step's writes (the core's Write list) as one batch; whether the first (the claim) took. */
  async write(writes) {
    const guard = (g) => {
      if (!g) return null;
      if (g.kind === 'redeemed') return this.redeemedBy(g.enrollmentId, g.claim);
      if (g.kind === 'challengeClaimed') return this.challengeClaimedBy(g.challengeMac, g.claim);
      if (g.kind === 'passwordRedeemed') return { sql: 'EXISTS (SELECT 1 FROM one_time_passwords WHERE mac = ? AND claim = ?)', args: [g.mac, g.claim] };
      if (g.kind === 'passwordStored') return { sql: 'EXISTS (SELECT 1 FROM one_time_passwords WHERE mac = ?)', args: [g.mac] };
      if (g.kind === 'renewed') return this.renewedBy(g.serial, g.renewedBy);
      // The statement just before, in this batch, changed a row.
      if (g.kind === 'justWritten') return { sql: 'changes() = 1', args: [] };
      if (g.kind === 'withdrawn') return { sql: 'NOT EXISTS (SELECT 1 FROM transactions WHERE profile_id = ? AND transaction_id = ? AND signer_fingerprint = ?)', args: [g.key.profileId, g.key.transactionId, g.key.signerFingerprint] };
      return this.decidedAs({ ...g.key, status: g.status, serial: g.serial });
    };
    const statement = (w) => {
      switch (w.write) {
        case 'redeem':
          return this.redeemStatement(w.enrollmentId, w.transactionId, w.claim, w.now, w.requires);
        case 'claimChallenge': {
          const r = requiring(w.requires);
          return this.db
            .prepare(`INSERT INTO used_challenges (challenge_mac, profile_id, transaction_id, claim, created_at) SELECT ?, ?, ?, ?, ? WHERE true${r.sql} ON CONFLICT (challenge_mac) DO NOTHING`)
            .bind(w.challengeMac, w.profileId, w.transactionId, w.claim, w.now, ...r.args);
        }
        case 'redeemPassword': {
          const r = requiring(w.requires);
          return this.db
            .prepare(`UPDATE one_time_passwords SET redeemed_at = ?, transaction_id = ?, seat_id = ?, claim = ? WHERE mac = ? AND profile_id = ? AND redeemed_at IS NULL AND expires_at > ?${r.sql}`)
            .bind(w.now, w.transactionId, w.seatId, w.claim, w.mac, w.profileId, w.now, ...r.args);
        }
        case 'createSeat': {
          const g = guard(w.guard);
          // A deleted seat of that id comes back.
          return this.db
            .prepare(`INSERT INTO seats (id, created_at) SELECT ?, ? WHERE ${g ? g.sql : 'true'} ON CONFLICT (id) DO UPDATE SET deleted_at = NULL WHERE deleted_at IS NOT NULL`)
            .bind(w.seatId, w.now, ...(g?.args ?? []));
        }
        case 'insertOneTimePassword':
          // Only while the profile's cache of unused passwords has room: counted in the same statement.
          return this.db
            .prepare(
              `INSERT INTO one_time_passwords (mac, profile_id, issued_to, for_seat, credential, expires_at, created_at) SELECT ?1, ?2, ?3, ?7, ?8, ?4, ?5
               WHERE (SELECT COUNT(*) FROM one_time_passwords WHERE profile_id = ?2 AND redeemed_at IS NULL AND expires_at > ?5) < ?6`,
            )
            .bind(w.mac, w.profileId, w.issuedTo, w.expiresAt, w.now, w.maxOutstanding, w.forSeat ?? null, w.credential);
        case 'forgiveAttempt': {
          const g = guard(w.guard);
          return this.db
            .prepare(`UPDATE challenge_page_attempts SET attempts = attempts - 1 WHERE window_start = ? AND key IN (?, ?) AND attempts > 0${g ? ` AND ${g.sql}` : ''}`)
            .bind(w.windowStart, ...w.keys, ...(g?.args ?? []));
        }
        case 'claimRenewal':
          return this.claimRenewalStatement(w.serial, w.renewedBy, guard(w.guard), w.requires);
        case 'decideHeld':
          return this.transactionDecisionStatement({ ...w.key, status: w.status, serial: w.serial, renews: w.renews, message: w.message, now: w.now }, w.requires);
        case 'settleRenewal': {
          const g = guard(w.guard);
          return this.db
            .prepare(`UPDATE certificates SET renewed_by = ? WHERE serial = ? AND renewed_by = ?${g ? ` AND ${g.sql}` : ''}`)
            .bind(w.renewedBy, w.serial, w.attempt, ...(g?.args ?? []));
        }
        case 'withdraw':
          return this.db
            .prepare("DELETE FROM transactions WHERE profile_id = ? AND transaction_id = ? AND signer_fingerprint = ? AND status = 'PENDING' AND json_extract(claim, '$.attempt') = ?")
            .bind(w.key.profileId, w.key.transactionId, w.key.signerFingerprint, w.attempt);
        case 'unclaim':
          return this.unclaimStatement(w.record, guard(w.guard));
        case 'insertCertificate':
          return this.certificateStatement(w.row, guard(w.guard));
        case 'insertTransaction':
          return this.transactionStatement(w.row, guard(w.guard));
        case 'hold':
          return this.heldStatement(w.row, w.requires);
        case 'insertAudit':
          return this.auditStatement(w.row, guard(w.guard));
        default:
          throw new Error(`unknown write ${w.write}`);
      }
    };
    const results = await this.db.batch(writes.map(statement));
    return results[0].meta.changes === 1;
  }

  /**
   * Redeems a code for one request attempt: succeeds only while the enrollment is CREATED and unexpired, and
   * marks it with the attempt's `claim`. It runs first in the batch that saves what the redemption is for, and
   * every other statement of that batch is guarded by [`redeemedBy`], so the batch saves all or nothing.
   */
  redeemStatement(enrollmentId, transactionId, claim, now, requires) {
    const r = requiring(requires);
    return this.db
      .prepare(`UPDATE enrollments SET status = 'REDEEMED', redeemed_at = ?, transaction_id = ?, claim = ? WHERE id = ? AND status = 'CREATED' AND expires_at > ?${r.sql}`)
      .bind(now, transactionId, claim, enrollmentId, now, ...r.args);
  }

  /** Gives back what a forwarded request claimed (the core's ClaimRecord), only while its attempt holds it. */
  unclaimStatement({ claim, attempt }, guard) {
    const [sql, args] = {
      enrollment: ["UPDATE enrollments SET status = 'CREATED', redeemed_at = NULL, transaction_id = NULL, claim = NULL WHERE id = ? AND status = 'REDEEMED' AND claim = ?", [claim.id]],
      webhookChallenge: ['DELETE FROM used_challenges WHERE challenge_mac = ? AND claim = ?', [claim.mac]],
      password: ['UPDATE one_time_passwords SET redeemed_at = NULL, transaction_id = NULL, seat_id = NULL, claim = NULL WHERE mac = ? AND claim = ?', [claim.mac]],
      renewal: ['UPDATE certificates SET renewed_by = NULL WHERE serial = ? AND renewed_by = ?', [claim.serial]],
    }[claim.kind];
    return this.db.prepare(`${sql}${guard ? ` AND ${guard.sql}` : ''}`).bind(...args, attempt, ...(guard?.args ?? []));
  }

  /** The guard of the statements saved with a redemption: this attempt's claim holds. */
  redeemedBy(enrollmentId, claim) {
    return { sql: "EXISTS (SELECT 1 FROM enrollments WHERE id = ? AND status = 'REDEEMED' AND claim = ?)", args: [enrollmentId, claim] };
  }

  /** The guard of the statements saved with a challenge a webhook owns: this attempt used it. */
  challengeClaimedBy(challengeMac, claim) {
    return { sql: 'EXISTS (SELECT 1 FROM used_challenges WHERE challenge_mac = ? AND claim = ?)', args: [challengeMac, claim] };
  }

  /**
   * Counts a sign-in attempt at a challenge page (the core's Attempt) and returns the attempts of its key in its
   * window so far, in one atomic statement; the same batch deletes the counters of earlier windows and the
   * passwords that expired more than a week ago (the audit log keeps their story).
   */
  async countPageAttempt({ keys, windowStart }, now) {
    const count = (key) =>
      this.db
        .prepare('INSERT INTO challenge_page_attempts (window_start, key, attempts) VALUES (?, ?, 1) ON CONFLICT (window_start, key) DO UPDATE SET attempts = attempts + 1 RETURNING attempts')
        .bind(windowStart, key);
    const [fromAddress, atProfile] = await this.db.batch([
      ...keys.map(count),
      this.db.prepare('DELETE FROM challenge_page_attempts WHERE window_start < ?').bind(windowStart),
      this.db.prepare('DELETE FROM one_time_passwords WHERE expires_at < ?').bind(now - 7 * 86400),
    ]);
    return [fromAddress.results[0].attempts, atProfile.results[0].attempts];
  }

  // ---- certificates ----
  /** Saves an issued certificate, only while `guard` holds (see [`redeemedBy`], [`renewedBy`]). */
  certificateStatement({ serial, fingerprint, seatId, profileId, subject, notBefore, notAfter, der, transactionId, caId, upstream, now }, guard) {
    // An upstream's certificate belongs to no CA here; anything else without a CA id is the secrets' CA's.
    return this.guarded(
      'INSERT INTO certificates (serial, fingerprint, seat_id, profile_id, subject, not_before, not_after, der, transaction_id, ca_id, upstream, created_at)',
      [serial, fingerprint, seatId, profileId, subject, notBefore, notAfter, der, transactionId, upstream ? null : (caId ?? 'secrets'), upstream ?? null, now],
      guard,
    );
  }

  async certificateBySerial(serial) {
    return this.db.prepare('SELECT * FROM certificates WHERE serial = ?').bind(serial).first();
  }

  /** Certificates by seat, serial, subject (a part of it), profile and status (active, revoked, expired, renewed at `now`). */
  async certificatePage({ seat_id: seatId, serial, subject, profile, status, limit, cursor }, now) {
    const where = [];
    const args = [];
    if (seatId !== undefined) where.push('c.seat_id = ?') && args.push(seatId);
    if (serial !== undefined) where.push('c.serial = ?') && args.push(serial.toLowerCase());
    if (subject !== undefined) where.push('instr(lower(c.subject), lower(?)) > 0') && args.push(subject);
    if (profile !== undefined) where.push('p.name = ?') && args.push(profile);
    const statuses = {
      active: ['c.revoked_at IS NULL AND c.not_after > ?', [now]],
      revoked: ['c.revoked_at IS NOT NULL', []],
      expired: ['c.revoked_at IS NULL AND c.not_after <= ?', [now]],
      renewed: ['c.renewed_by IS NOT NULL', []],
    };
    if (status !== undefined) where.push(statuses[status][0]) && args.push(...statuses[status][1]);
    return this.page({ select: CERTIFICATE, from: 'certificates c LEFT JOIN profiles p ON p.id = c.profile_id', where, args, order: ['c.created_at', 'c.rowid'], limit, cursor });
  }

  async certificate(serial) {
    return this.db.prepare(`SELECT ${CERTIFICATE}, c.der FROM certificates c LEFT JOIN profiles p ON p.id = c.profile_id WHERE c.serial = ?`).bind(serial.toLowerCase()).first();
  }

  /** Claims a certificate for renewal: only one renewal of it can ever succeed (only while `guard` holds). */
  claimRenewalStatement(serial, renewedBy, guard, requires) {
    const r = requiring(requires);
    return this.db
      .prepare(`UPDATE certificates SET renewed_by = ? WHERE serial = ? AND renewed_by IS NULL AND revoked_at IS NULL${guard ? ` AND ${guard.sql}` : ''}${r.sql}`)
      .bind(renewedBy, serial, ...(guard?.args ?? []), ...r.args);
  }

  /** The guard of the statements saved with a renewal: this attempt's claim holds. */
  renewedBy(serial, renewedBy) {
    return { sql: 'EXISTS (SELECT 1 FROM certificates WHERE serial = ? AND renewed_by = ?)', args: [serial, renewedBy] };
  }

  /** Revokes a certificate for `reason` and audits it, in one batch; false when it was revoked already. */
  async revoke(serial, now, reason, audit) {
    const [revoked] = await this.db.batch([
      this.db.prepare('UPDATE certificates SET revoked_at = ?, revocation_reason = ? WHERE serial = ? AND revoked_at IS NULL').bind(now, reason, serial),
      this.auditStatement(audit, { sql: 'changes() = 1', args: [] }),
    ]);
    return revoked.meta.changes === 1;
  }

  /** The certificates CA `caId` issued that are revoked, for its CRL. */
  async revoked(caId) {
    const { results } = await this.db
      .prepare('SELECT serial, revoked_at, revocation_reason AS reason FROM certificates WHERE ca_id = ? AND revoked_at IS NOT NULL ORDER BY revoked_at')
      .bind(caId)
      .all();
    return results;
  }

  async nextCrlNumber(caId) {
    return this.db
      .prepare('INSERT INTO counters (name, value) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value')
      .bind(`crl_number:${caId}`)
      .first('value');
  }

  /** CA `caId`'s kept CRL and how many of its certificates are revoked now, in one round trip. */
  async crlState(caId) {
    const [cached, revoked] = await this.db.batch([
      this.db.prepare('SELECT number, this_update, next_update, revoked_count, der FROM crl_caches WHERE ca_id = ?').bind(caId),
      this.db.prepare('SELECT COUNT(*) AS n FROM certificates WHERE ca_id = ? AND revoked_at IS NOT NULL').bind(caId),
    ]);
    return { cached: cached.results[0] ?? null, revokedCount: revoked.results[0].n };
  }

  /** Keeps a freshly signed CRL of `caId`, unless a newer one (a higher number, signed concurrently) is kept. */
  async saveCrl(caId, { number, thisUpdate, nextUpdate, revokedCount, der }) {
    await this.db
      .prepare(
        `INSERT INTO crl_caches (ca_id, number, this_update, next_update, revoked_count, der) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (ca_id) DO UPDATE SET number = excluded.number, this_update = excluded.this_update, next_update = excluded.next_update,
           revoked_count = excluded.revoked_count, der = excluded.der WHERE excluded.number > crl_caches.number`,
      )
      .bind(caId, number, thisUpdate, nextUpdate, revokedCount, der)
      .run();
  }

  // ---- certificate authorities ----
  /** The secrets' CA as a row (written once, on first use): the default CA under `name`. */
  async ensureSecretsCa(name, der, facts, now) {
    await this.db
      .prepare(
        `INSERT INTO certificate_authorities (id, name, role, enabled, origin, certificate, subject, fingerprint, key_bits, not_before, not_after, created_at)
         VALUES ('secrets', ?, 'current', 1, 'secrets', ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET certificate = excluded.certificate, subject = excluded.subject, fingerprint = excluded.fingerprint,
           key_bits = excluded.key_bits, not_before = excluded.not_before, not_after = excluded.not_after WHERE fingerprint <> excluded.fingerprint`,
      )
      .bind(name, der, facts.subject, facts.fingerprint, facts.key_bits, facts.not_before, facts.not_after, now)
      .run();
  }

  /** The current (or, with `role`, the next) CA of `name`, with its wrapped key. */
  async caByName(name, role = 'current') {
    return this.db.prepare('SELECT * FROM certificate_authorities WHERE name = ? AND role = ?').bind(name, role).first();
  }

  /** The CA a profile's `ca_identity_name` names now: its current CA, else the secrets' CA (one query). */
  async currentCa(name) {
    return this.db.prepare(CURRENT_CA).bind(name, name).first();
  }

  async ca(id) {
    return this.db.prepare('SELECT * FROM certificate_authorities WHERE id = ?').bind(id).first();
  }

  async caPage({ name, role, limit, cursor }) {
    const where = [];
    const args = [];
    if (name !== undefined) where.push('name = ?') && args.push(name);
    if (role !== undefined) where.push('role = ?') && args.push(role);
    const select = 'id, name, role, enabled, origin, certificate, subject, fingerprint, key_bits, not_before, not_after, created_at, promoted_at';
    return this.page({ select, from: 'certificate_authorities', where, args, order: ['name', 'created_at', 'id'], limit, cursor });
  }

  /** A new CA row (current, or `next` of its name); Conflict when the name has one already. */
  async createCa({ id, name, role, origin, certificate, wrappedKey, facts, now }, audit) {
    try {
      await this.db.batch([
        this.db
          .prepare(
            `INSERT INTO certificate_authorities (id, name, role, enabled, origin, certificate, wrapped_key, subject, fingerprint, key_bits, not_before, not_after, created_at)
             VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .bind(id, name, role, origin, certificate, wrappedKey, facts.subject, facts.fingerprint, facts.key_bits, facts.not_before, facts.not_after, now),
        this.auditStatement(audit),
      ]);
    } catch (e) {
      if (/UNIQUE/i.test(String(e.message))) throw new Conflict('Name Not Unique', 'E006');
      throw e;
    }
    return this.ca(id);
  }

  async setCaEnabled(id, enabled, audit) {
    const [changed] = await this.db.batch([
      this.db.prepare('UPDATE certificate_authorities SET enabled = ? WHERE id = ?').bind(enabled ? 1 : 0, id),
      this.auditStatement(audit, { sql: 'changes() = 1', args: [] }),
    ]);
    return changed.meta.changes === 1;
  }

  /** Promotes the next CA of its name: the current one retires and this takes over, in one batch. */
  async promoteCa(next, now, audit) {
    const [retired, promoted] = await this.db.batch([
      this.db.prepare("UPDATE certificate_authorities SET role = 'retired' WHERE name = ? AND role = 'current' AND EXISTS (SELECT 1 FROM certificate_authorities WHERE id = ? AND role = 'next')").bind(next.name, next.id),
      this.db.prepare("UPDATE certificate_authorities SET role = 'current', promoted_at = ? WHERE id = ? AND role = 'next'").bind(now, next.id),
      this.auditStatement(audit, { sql: 'changes() = 1', args: [] }),
    ]);
    return promoted.meta.changes === 1 && retired.meta.changes <= 1;
  }

  // ---- transactions ----
  /** A held request as the core's decideHeld takes it. */
  static held(tx, profileName) {
    return {
      profileId: tx.profile_id, transactionId: tx.transaction_id, signerFingerprint: tx.signer_fingerprint, profileName, seatId: tx.seat_id,
      publicKey: new Uint8Array(tx.public_key), plan: tx.plan, renews: tx.renews ?? undefined, upstream: tx.upstream ?? undefined,
    };
  }

  async pendingByTransaction(transactionId, { profileId, signerFingerprint }) {
    const { results } = await this.db
      .prepare("SELECT * FROM transactions WHERE transaction_id = ? AND status = 'PENDING' AND (?2 IS NULL OR profile_id = ?2) AND (?3 IS NULL OR signer_fingerprint = ?3) LIMIT 2")
      .bind(transactionId, profileId ?? null, signerFingerprint ?? null)
      .all();
    return results;
  }

  async pendingByEnrollment(enrollmentId) {
    return this.db.prepare("SELECT * FROM transactions WHERE enrollment_id = ? AND status = 'PENDING'").bind(enrollmentId).first();
  }

  async transactionPage({ status, profile, seat_id: seatId, limit, cursor }) {
    const where = [];
    const args = [];
    if (status !== undefined) where.push('t.status = ?') && args.push(status);
    if (profile !== undefined) where.push('p.name = ?') && args.push(profile);
    if (seatId !== undefined) where.push('t.seat_id = ?') && args.push(seatId);
    const select =
      't.profile_id, p.name AS profile, t.transaction_id, t.signer_fingerprint, t.seat_id, t.message_type, t.status, t.plan, t.public_key, t.enrollment_id, t.renews, t.certificate_serial, t.client_address, t.upstream, t.created_at, t.updated_at';
    return this.page({ select, from: 'transactions t JOIN profiles p ON p.id = t.profile_id', where, args, order: ['t.created_at', 't.rowid'], limit, cursor });
  }

  transactionStatement({ profileId, transactionId, signerFingerprint, seatId, messageType, keyDigest, status, publicKey, plan, enrollmentId, renews, serial, message, clientAddress, upstream, claim, now }, guard, onConflict = '') {
    return this.guarded(
      'INSERT INTO transactions (profile_id, transaction_id, signer_fingerprint, seat_id, message_type, key_digest, status, public_key, plan, enrollment_id, renews, certificate_serial, message, client_address, upstream, claim, created_at, updated_at)',
      [profileId, transactionId, signerFingerprint, seatId, messageType, keyDigest, status, publicKey, plan ?? null, enrollmentId ?? null, renews ?? null, serial ?? null, message ?? null, clientAddress ?? null, upstream ?? null, claim ?? null, now, now],
      guard,
      onConflict,
    );
  }

  /** The claim of a held request that claims nothing else: its PENDING row, unless a copy is stored already. */
  heldStatement(row, requires) {
    const r = requiring(requires);
    return this.transactionStatement(row, { sql: `true${r.sql}`, args: r.args }, ' ON CONFLICT (profile_id, transaction_id, signer_fingerprint) DO NOTHING');
  }

  /**
   * Moves a PENDING transaction on; changes nothing when it was no longer PENDING (decided concurrently) or,
   * for a held renewal being issued, when the certificate it renews was renewed or revoked meanwhile.
   */
  transactionDecisionStatement({ profileId, transactionId, signerFingerprint, status, serial, renews, message, now }, requires) {
    const r = requiring(requires);
    return this.db
      .prepare(
        `UPDATE transactions SET status = ?, certificate_serial = ?, message = ?, updated_at = ?
         WHERE profile_id = ? AND transaction_id = ? AND signer_fingerprint = ? AND status = 'PENDING'
           AND (?1 <> 'ISSUED' OR ? IS NULL OR EXISTS (SELECT 1 FROM certificates WHERE serial = ? AND renewed_by IS NULL AND revoked_at IS NULL))${r.sql}`,
      )
      .bind(status, serial ?? null, message ?? null, now, profileId, transactionId, signerFingerprint, renews ?? null, renews ?? null, ...r.args);
  }

  /** The guard of the statements saved with an administrator's decision: the transition above happened. */
  decidedAs({ profileId, transactionId, signerFingerprint, status, serial }) {
    return { sql: 'EXISTS (SELECT 1 FROM transactions WHERE profile_id = ? AND transaction_id = ? AND signer_fingerprint = ? AND status = ? AND certificate_serial IS ?)', args: [profileId, transactionId, signerFingerprint, status, serial ?? null] };
  }

  /** `INSERT ... VALUES`, or with a guard `INSERT ... SELECT ... WHERE <guard>`: inserts nothing unless it holds. */
  guarded(insert, values, guard, onConflict = '') {
    const placeholders = values.map(() => '?').join(', ');
    if (!guard) return this.db.prepare(`${insert} VALUES (${placeholders})${onConflict}`).bind(...values);
    return this.db.prepare(`${insert} SELECT ${placeholders} WHERE ${guard.sql}${onConflict}`).bind(...values, ...guard.args);
  }

  // ---- audit log ----
  auditStatement({ time, profile, seatId, transactionId, operation, status, code, message, resolution }, guard) {
    return this.guarded(
      'INSERT INTO audit_logs (time, profile, seat_id, transaction_id, operation, status, code, message, resolution)',
      [time, profile ?? null, seatId ?? null, transactionId ?? null, operation, status, code ?? null, message ?? null, resolution ?? null],
      guard,
    );
  }

  audit(entry) {
    return this.auditStatement(entry).run();
  }

  /**
   * A failed request of client `key` in the window from `windowStart`: counted, and audited while the window
   * has at most `audited` failures of it; the next one inserts the window's summary row (`summaryPrefix`,
   * the count, `summarySuffix`), which the later ones update. With `sweep`, the counters of earlier windows
   * are deleted. One batch (one round trip, all or nothing); returns the window's failures so far.
   */
  async auditFailure(entry, { key, windowStart, audited, summaryPrefix, summarySuffix, sweep }) {
    const at = [windowStart, key];
    const failures = '(SELECT failures FROM rate_limits WHERE window_start = ? AND key = ?)';
    const summaryEntry = { time: entry.time, operation: entry.operation, status: 'Failure', code: 'rate_limited', message: `${summaryPrefix}${audited + 1}${summarySuffix}` };
    const [counted] = await this.db.batch([
      this.db
        .prepare('INSERT INTO rate_limits (window_start, key, failures) VALUES (?, ?, 1) ON CONFLICT (window_start, key) DO UPDATE SET failures = failures + 1 RETURNING failures')
        .bind(...at),
      this.auditStatement(entry, { sql: `${failures} <= ?`, args: [...at, audited] }),
      this.auditStatement(summaryEntry, { sql: `${failures} = ?`, args: [...at, audited + 1] }),
      // The summary row just inserted: ids only grow (AUTOINCREMENT) and the batch is one transaction.
      this.db.prepare('UPDATE rate_limits SET summary_id = (SELECT MAX(id) FROM audit_logs) WHERE window_start = ? AND key = ? AND failures = ?').bind(...at, audited + 1),
      this.db
        .prepare(`UPDATE audit_logs SET message = ? || ${failures} || ? WHERE id = (SELECT summary_id FROM rate_limits WHERE window_start = ? AND key = ? AND failures > ?)`)
        .bind(summaryPrefix, ...at, summarySuffix, ...at, audited + 1),
      ...(sweep ? [this.db.prepare('DELETE FROM rate_limits WHERE window_start < ?').bind(windowStart)] : []),
    ]);
    return counted.results[0].failures;
  }

  // ---- retention ----
  /**
   * One pruning run (the core's PrunePlan, src/retention.rs): each kind deleted in chunks, at most maxChunks
   * statements of it; returns [kind, rows] for each kind that lost rows.
   */
  async prune({ before, passwordsBefore, chunk, maxChunks }) {
    const kinds = [
      ['audit rows', 'DELETE FROM audit_logs WHERE id IN (SELECT id FROM audit_logs WHERE time < ?1 LIMIT ?2)', [before]],
      [
        'transactions',
        `DELETE FROM transactions WHERE rowid IN (SELECT t.rowid FROM transactions t LEFT JOIN certificates c ON c.serial = t.certificate_serial
           WHERE (t.status = 'ISSUED' AND c.not_after < ?1) OR (t.status <> 'ISSUED' AND t.updated_at < ?1) LIMIT ?2)`,
        [before],
      ],
      [
        'enrollments',
        "DELETE FROM enrollments WHERE id IN (SELECT id FROM enrollments WHERE created_at < ?1 AND (status = 'REVOKED' OR (status = 'CREATED' AND expires_at < ?1)) LIMIT ?2)",
        [before],
      ],
      ['one-time passwords', 'DELETE FROM one_time_passwords WHERE mac IN (SELECT mac FROM one_time_passwords WHERE expires_at < ?1 LIMIT ?2)', [passwordsBefore]],
    ];
    const counts = [];
    for (const [kind, sql, args] of kinds) {
      let total = 0;
      for (let i = 0; i < maxChunks; i++) {
        const { meta } = await this.db.prepare(sql).bind(...args, chunk).run();
        total += meta.changes;
        if (meta.changes < chunk) break;
      }
      if (total) counts.push([kind, total]);
    }
    return counts;
  }

  /** The audit log, newest first, by status, seat, profile, operation, code and time (Unix seconds, inclusive). */
  async auditPage({ status, seat_id: seatId, profile, operation, code, since, until, limit, cursor }) {
    const where = [];
    const args = [];
    for (const [column, value] of [['status', status], ['seat_id', seatId], ['profile', profile], ['operation', operation], ['code', code]]) {
      if (value !== undefined) where.push(`${column} = ?`) && args.push(value);
    }
    if (since !== undefined) where.push('time >= ?') && args.push(since);
    if (until !== undefined) where.push('time <= ?') && args.push(until);
    return this.page({ select: '*', from: 'audit_logs', where, args, order: ['id'], desc: true, limit, cursor });
  }
}
