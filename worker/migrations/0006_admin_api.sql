-- The complete admin API: a seat is deleted softly (its certificates, revoked or expired, stay in the CRL and
-- the audit log and keep their seat), a revocation keeps its reason (RFC 5280 CRLReason, in the CRL entry), a
-- held request shows its approver where it came from, and every list pages by a key (cursor) in an index.
ALTER TABLE seats ADD COLUMN deleted_at INTEGER;
ALTER TABLE certificates ADD COLUMN revocation_reason TEXT;
ALTER TABLE transactions ADD COLUMN client_address TEXT;
-- Lists page oldest first by (created_at, rowid): every index carries the rowid.
CREATE INDEX certificates_created ON certificates (created_at);
CREATE INDEX enrollments_created ON enrollments (created_at);
CREATE INDEX transactions_created ON transactions (created_at);
