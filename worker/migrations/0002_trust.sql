-- Trust: one request attempt claims an enrollment code, and only that attempt's batch may save a certificate
-- or a held request for it (the claim and the save are one D1 batch: a crash leaves the code CREATED).
ALTER TABLE enrollments ADD COLUMN claim TEXT;

-- A transaction keeps the requester's public key (SubjectPublicKeyInfo DER), not its CSR: the CSR carries the
-- enrollment code as its challengePassword. Rows decided before this migration need neither and are cleared;
-- a request still PENDING keeps its CSR until it is decided (approval reads the key from either form).
ALTER TABLE transactions RENAME COLUMN csr TO public_key;
UPDATE transactions SET public_key = x'' WHERE status <> 'PENDING';
-- A renewal held for approval names the certificate it renews.
ALTER TABLE transactions ADD COLUMN renews TEXT;

-- The CRL as last signed: served until half its validity has passed or a certificate is revoked, so an
-- anonymous GET never makes the CA sign (or renumber) anything.
CREATE TABLE crl_cache (
  id             INTEGER PRIMARY KEY CHECK (id = 1),
  number         INTEGER NOT NULL,
  this_update    INTEGER NOT NULL,
  next_update    INTEGER NOT NULL,
  revoked_count  INTEGER NOT NULL,              -- the revocations it lists: a new one makes it stale
  der            BLOB NOT NULL
);
