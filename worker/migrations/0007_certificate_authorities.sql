-- The CA manager (src/certificate_authority.rs): several issuing CAs, each a name that profiles use
-- (ca_identity_name) with a current generation, maybe a staged next one (served by GetNextCACert) and retired
-- ones (which still sign the CRL of what they issued). Private keys are kept only wrapped (AES-GCM under the
-- CA_KEK secret, the row's id as associated data) and never read back by the API. The CA of the Worker's
-- secrets (CA_CERT, CA_KEY) is the row 'secrets', written by the Worker on first use under CA_NAME (default
-- "default"): it has no wrapped key, and the certificates issued before this migration are its.
CREATE TABLE certificate_authorities (
  id           TEXT PRIMARY KEY,
  name         TEXT NOT NULL,
  role         TEXT NOT NULL CHECK (role IN ('current', 'next', 'retired')),
  enabled      INTEGER NOT NULL DEFAULT 1,
  origin       TEXT NOT NULL CHECK (origin IN ('secrets', 'generated', 'imported')),
  certificate  BLOB NOT NULL,                   -- DER
  wrapped_key  BLOB,                            -- 12-byte IV || AES-GCM(CA_KEK, PKCS#8); NULL for 'secrets'
  subject      TEXT NOT NULL,
  fingerprint  TEXT NOT NULL,                   -- SHA-256 of the DER, hex
  key_bits     INTEGER NOT NULL,
  not_before   INTEGER NOT NULL,
  not_after    INTEGER NOT NULL,
  created_at   INTEGER NOT NULL,
  promoted_at  INTEGER
);
CREATE UNIQUE INDEX certificate_authorities_current ON certificate_authorities (name) WHERE role = 'current';
CREATE UNIQUE INDEX certificate_authorities_next ON certificate_authorities (name) WHERE role = 'next';
ALTER TABLE certificates ADD COLUMN ca_id TEXT;
UPDATE certificates SET ca_id = 'secrets';
CREATE INDEX certificates_ca_revoked ON certificates (ca_id, revoked_at) WHERE revoked_at IS NOT NULL;
-- One kept CRL and one CRL number per CA; the secrets CA keeps its own.
CREATE TABLE crl_caches (
  ca_id          TEXT PRIMARY KEY,
  number         INTEGER NOT NULL,
  this_update    INTEGER NOT NULL,
  next_update    INTEGER NOT NULL,
  revoked_count  INTEGER NOT NULL,
  der            BLOB NOT NULL
);
INSERT INTO crl_caches SELECT 'secrets', number, this_update, next_update, revoked_count, der FROM crl_cache;
DROP TABLE crl_cache;
UPDATE counters SET name = 'crl_number:secrets' WHERE name = 'crl_number';
-- What to do about a failure, written with its audit row (the error's resolution), for the console.
ALTER TABLE audit_logs ADD COLUMN resolution TEXT;
