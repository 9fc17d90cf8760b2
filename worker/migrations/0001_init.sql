-- scepkit store: profiles, seats, one-time enrollment codes, certificates, SCEP transactions, audit log.
-- Every lookup a SCEP request makes is by primary key or an index (no table scans per request).

CREATE TABLE profiles (
  id          TEXT PRIMARY KEY,                 -- UUID
  name        TEXT NOT NULL UNIQUE,
  body        TEXT NOT NULL,                    -- the validated profile JSON (secrets included; never returned)
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);

CREATE TABLE seats (
  id          TEXT PRIMARY KEY,                 -- the seat identifier a CSR field maps to
  created_at  INTEGER NOT NULL
);

-- One-time enrollment codes, stored only as HMAC-SHA-256 under the Worker secret CODE_KEY.
CREATE TABLE enrollments (
  id             TEXT PRIMARY KEY,              -- UUID
  seat_id        TEXT NOT NULL REFERENCES seats(id),
  profile_id     TEXT NOT NULL REFERENCES profiles(id),
  code_mac       TEXT NOT NULL,
  status         TEXT NOT NULL CHECK (status IN ('CREATED', 'REDEEMED', 'REVOKED')),
  expires_at     INTEGER NOT NULL,
  created_at     INTEGER NOT NULL,
  redeemed_at    INTEGER,
  transaction_id TEXT
);
CREATE INDEX enrollments_open ON enrollments (seat_id, profile_id, status);

CREATE TABLE certificates (
  serial         TEXT PRIMARY KEY,              -- lowercase hex, random 128 bits: unique without a counter
  fingerprint    TEXT NOT NULL UNIQUE,          -- SHA-256 of the DER, hex: how a renewal's signer is found
  seat_id        TEXT NOT NULL REFERENCES seats(id),
  profile_id     TEXT NOT NULL REFERENCES profiles(id),
  subject        TEXT NOT NULL,
  not_before     INTEGER NOT NULL,
  not_after      INTEGER NOT NULL,
  der            BLOB NOT NULL,
  transaction_id TEXT NOT NULL,
  revoked_at     INTEGER,
  renewed_by     TEXT,                          -- serial of the certificate that replaced it
  created_at     INTEGER NOT NULL
);
CREATE INDEX certificates_seat ON certificates (seat_id);
CREATE INDEX certificates_revoked ON certificates (revoked_at) WHERE revoked_at IS NOT NULL;

-- A transaction is one requester's: keyed by the signer too, because clients reuse a transactionID derived
-- from the key when they renew with that key (micromdm's scepclient, certmonger), signed by the issued
-- certificate instead of the first request's self-signed one. CertPoll is signed like its request.
CREATE TABLE transactions (
  profile_id         TEXT NOT NULL REFERENCES profiles(id),
  transaction_id     TEXT NOT NULL,
  signer_fingerprint TEXT NOT NULL,
  seat_id            TEXT,
  message_type       TEXT NOT NULL,
  key_digest         TEXT NOT NULL,             -- SHA-256 of the CSR's public key: a retransmission matches it
  status             TEXT NOT NULL CHECK (status IN ('PENDING', 'ISSUED', 'REJECTED')),
  csr                BLOB NOT NULL,
  plan               TEXT,                      -- the certificate plan policy made (for approval)
  enrollment_id      TEXT,
  certificate_serial TEXT,
  message            TEXT,
  created_at         INTEGER NOT NULL,
  updated_at         INTEGER NOT NULL,
  PRIMARY KEY (profile_id, transaction_id, signer_fingerprint)
);
CREATE INDEX transactions_pending ON transactions (status) WHERE status = 'PENDING';

CREATE TABLE audit_logs (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  time           INTEGER NOT NULL,
  profile        TEXT,
  seat_id        TEXT,
  transaction_id TEXT,
  operation      TEXT NOT NULL,
  status         TEXT NOT NULL CHECK (status IN ('Success', 'Failure')),
  code           TEXT,
  message        TEXT
);
CREATE INDEX audit_logs_time ON audit_logs (time);
CREATE INDEX audit_logs_seat ON audit_logs (seat_id, time);
CREATE INDEX audit_logs_status ON audit_logs (status, time);

-- The CRL number only ever grows.
CREATE TABLE counters (
  name  TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('crl_number', 0);
