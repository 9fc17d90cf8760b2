// The D1 store adapter: the only code that knows SQL. Every SCEP-path query is by key or index.

export class Conflict extends Error {
  constructor(message, code = 'E006') {
    super(message);
    this.code = code;
  }
}

// `stored` is the body as D1 holds it: what a cached copy is checked against.
const toProfile = (row) => row && { id: row.id, name: row.name, body: JSON.parse(row.body), stored: row.body, created_at: row.created_at, updated_at: row.updated_at };

export class Store {
  constructor(db) {
    this.db = db;
  }

  // ---- profiles ----
  async profiles() {
    const { results } = await this.db.prepare('SELECT * FROM profiles ORDER BY created_at, name').all();
    return results.map(toProfile);
  }

  async profile(id) {
    return toProfile(await this.db.prepare('SELECT * FROM profiles WHERE id = ?').bind(id).first());
  }

  async profileByName(name) {
    return toProfile(await this.db.prepare('SELECT * FROM profiles WHERE name = ?').bind(name).first());
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
      .prepare('SELECT (SELECT COUNT(*) FROM enrollments WHERE profile_id = ?1) + (SELECT COUNT(*) FROM certificates WHERE profile_id = ?1) AS n')
      .bind(id)
      .first('n');
    if (used > 0) throw new Conflict('Reference Not Zero', 'E009');
    const r = await this.db.prepare('DELETE FROM profiles WHERE id = ?').bind(id).run();
    return r.meta.changes > 0;
  }

  // ---- seats ----
  /**
   * A seat; with `enrollment` (createEnrollment's fields but the seat) its first enrollment too, in the same
   * batch: both are written or neither.
   */
  async createSeat(id, now, enrollment) {
    const seat = this.db.prepare('INSERT INTO seats (id, created_at) VALUES (?, ?)').bind(id, now);
    const first = enrollment && this.enrollmentStatements({ ...enrollment, seatId: id });
    try {
      await (first ? this.db.batch([seat, ...first.statements]) : seat.run());
    } catch (e) {
      if (/UNIQUE|PRIMARY/i.test(String(e.message))) throw new Conflict('Object Not Unique', 'E016');
      throw e;
    }
    return { id, created_at: now, ...(first ? { enrollment: first.record } : {}) };
  }

  async seatExists(id) {
    return (await this.db.prepare('SELECT 1 AS x FROM seats WHERE id = ?').bind(id).first('x')) === 1;
  }

  async seats() {
    const { results } = await this.db.prepare('SELECT id, created_at FROM seats ORDER BY id').all();
    return results;
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

  async enrollments(seatId) {
    const sql = 'SELECT id, seat_id, profile_id, status, expires_at, created_at, redeemed_at, transaction_id FROM enrollments';
    const { results } = seatId ? await this.db.prepare(`${sql} WHERE seat_id = ? ORDER BY created_at, rowid`).bind(seatId).all() : await this.db.prepare(`${sql} ORDER BY created_at, rowid`).all();
    return results;
  }

  async enrollment(id) {
    return this.db.prepare('SELECT id, seat_id, profile_id, status, expires_at, created_at, redeemed_at, transaction_id FROM enrollments WHERE id = ?').bind(id).first();
  }

  /**
   * Everything the policy needs to know about one request, read in one round trip (one batch of SELECTs):
   * the seat, its open and last redeemed enrollment, the issued certificate that signed it, a prior transaction,
   * and with `checkProfile` the profile's body as it is now (to check a cached copy).
   */
  async requestFacts({ seatId, profileId, signerFingerprint, selfSigned, transactionId, checkProfile = false }) {
    const none = this.db.prepare('SELECT NULL AS x WHERE 0');
    const [seat, open, redeemed, signer, prior, profile] = await this.db.batch([
      seatId ? this.db.prepare('SELECT 1 AS x FROM seats WHERE id = ?').bind(seatId) : none,
      seatId
        ? this.db.prepare("SELECT id, code_mac, expires_at FROM enrollments WHERE seat_id = ? AND profile_id = ? AND status = 'CREATED' ORDER BY created_at DESC LIMIT 1").bind(seatId, profileId)
        : none,
      seatId
        ? this.db.prepare("SELECT id, code_mac, expires_at FROM enrollments WHERE seat_id = ? AND profile_id = ? AND status = 'REDEEMED' ORDER BY redeemed_at DESC LIMIT 1").bind(seatId, profileId)
        : none,
      selfSigned ? none : this.db.prepare('SELECT * FROM certificates WHERE fingerprint = ?').bind(signerFingerprint),
      this.db.prepare('SELECT * FROM transactions WHERE profile_id = ? AND transaction_id = ? AND signer_fingerprint = ?').bind(profileId, transactionId, signerFingerprint),
      checkProfile ? this.db.prepare('SELECT body FROM profiles WHERE id = ?').bind(profileId) : none,
    ]);
    const first = (r) => r.results[0] ?? null;
    return { seatExists: Boolean(first(seat)), openEnrollment: first(open), redeemed: first(redeemed), signer: first(signer), prior: first(prior), profileBody: first(profile)?.body ?? null };
  }

  /** Redeems atomically: one statement that only succeeds while the enrollment is still CREATED. */
  async redeem(enrollmentId, transactionId, now) {
    const r = await this.db
      .prepare("UPDATE enrollments SET status = 'REDEEMED', redeemed_at = ?, transaction_id = ? WHERE id = ? AND status = 'CREATED' AND expires_at > ?")
      .bind(now, transactionId, enrollmentId, now)
      .run();
    return r.meta.changes === 1;
  }

  /** Gives a redeemed code back (issuance failed after redemption): nothing is lost. */
  async unredeem(enrollmentId) {
    await this.db.prepare("UPDATE enrollments SET status = 'CREATED', redeemed_at = NULL, transaction_id = NULL WHERE id = ? AND status = 'REDEEMED'").bind(enrollmentId).run();
  }

  // ---- certificates ----
  certificateStatements({ serial, fingerprint, seatId, profileId, subject, notBefore, notAfter, der, transactionId, now }) {
    return this.db
      .prepare('INSERT INTO certificates (serial, fingerprint, seat_id, profile_id, subject, not_before, not_after, der, transaction_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .bind(serial, fingerprint, seatId, profileId, subject, notBefore, notAfter, der, transactionId, now);
  }

  async certificateBySerial(serial) {
    return this.db.prepare('SELECT * FROM certificates WHERE serial = ?').bind(serial).first();
  }

  async certificates(seatId) {
    const sql = 'SELECT serial, fingerprint, seat_id, profile_id, subject, not_before, not_after, revoked_at, renewed_by, transaction_id, created_at FROM certificates';
    const { results } = seatId ? await this.db.prepare(`${sql} WHERE seat_id = ? ORDER BY created_at, rowid`).bind(seatId).all() : await this.db.prepare(`${sql} ORDER BY created_at, rowid`).all();
    return results;
  }

  /** Claims a certificate for renewal atomically: only one renewal of it can ever succeed. */
  async claimRenewal(serial, renewedBy) {
    const r = await this.db.prepare('UPDATE certificates SET renewed_by = ? WHERE serial = ? AND renewed_by IS NULL AND revoked_at IS NULL').bind(renewedBy, serial).run();
    return r.meta.changes === 1;
  }

  async releaseRenewal(serial, renewedBy) {
    await this.db.prepare('UPDATE certificates SET renewed_by = NULL WHERE serial = ? AND renewed_by = ?').bind(serial, renewedBy).run();
  }

  async revoke(serial, now) {
    const r = await this.db.prepare('UPDATE certificates SET revoked_at = ? WHERE serial = ? AND revoked_at IS NULL').bind(now, serial).run();
    return r.meta.changes === 1;
  }

  async revoked() {
    const { results } = await this.db.prepare('SELECT serial, revoked_at FROM certificates WHERE revoked_at IS NOT NULL ORDER BY revoked_at').all();
    return results;
  }

  async nextCrlNumber() {
    return this.db.prepare("UPDATE counters SET value = value + 1 WHERE name = 'crl_number' RETURNING value").first('value');
  }

  // ---- transactions ----
  async pendingByEnrollment(enrollmentId) {
    return this.db.prepare("SELECT * FROM transactions WHERE enrollment_id = ? AND status = 'PENDING'").bind(enrollmentId).first();
  }

  async pendingTransactions() {
    const { results } = await this.db
      .prepare("SELECT profile_id, transaction_id, signer_fingerprint, seat_id, message_type, enrollment_id, created_at FROM transactions WHERE status = 'PENDING' ORDER BY created_at")
      .all();
    return results;
  }

  transactionStatement({ profileId, transactionId, signerFingerprint, seatId, messageType, keyDigest, status, csr, plan, enrollmentId, serial, message, now }) {
    return this.db
      .prepare(
        `INSERT INTO transactions (profile_id, transaction_id, signer_fingerprint, seat_id, message_type, key_digest, status, csr, plan, enrollment_id, certificate_serial, message, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .bind(profileId, transactionId, signerFingerprint, seatId, messageType, keyDigest, status, csr, plan ? JSON.stringify(plan) : null, enrollmentId ?? null, serial ?? null, message ?? null, now, now);
  }

  /** Moves a PENDING transaction on; false when it was no longer PENDING (approved or rejected concurrently). */
  transactionDecisionStatement({ profileId, transactionId, signerFingerprint, status, serial, message, now }) {
    return this.db
      .prepare("UPDATE transactions SET status = ?, certificate_serial = ?, message = ?, updated_at = ? WHERE profile_id = ? AND transaction_id = ? AND signer_fingerprint = ? AND status = 'PENDING'")
      .bind(status, serial ?? null, message ?? null, now, profileId, transactionId, signerFingerprint);
  }

  async batch(statements) {
    return this.db.batch(statements);
  }

  // ---- audit log ----
  auditStatement({ time, profile, seatId, transactionId, operation, status, code, message }) {
    return this.db
      .prepare('INSERT INTO audit_logs (time, profile, seat_id, transaction_id, operation, status, code, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .bind(time, profile ?? null, seatId ?? null, transactionId ?? null, operation, status, code ?? null, message ?? null);
  }

  audit(entry) {
    return this.auditStatement(entry).run();
  }

  async auditLogs({ status, seatId, since, limit = 500 }) {
    const where = [];
    const args = [];
    if (status) where.push('status = ?') && args.push(status);
    if (seatId) where.push('seat_id = ?') && args.push(seatId);
    if (since !== undefined) where.push('time >= ?') && args.push(since);
    const sql = `SELECT * FROM audit_logs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    const { results } = await this.db.prepare(sql).bind(...args, limit).all();
    return results;
  }
}
