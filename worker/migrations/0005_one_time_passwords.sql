-- One-time challenge passwords of a profile's NDES-style page (src/challenge_page.rs): kept only as their MAC
-- under CODE_KEY, bound to their profile, single use. A PKIOperation redeems one with the first statement of
-- the batch that saves its certificate (or held request): `claim` marks that attempt, and every other row of the
-- batch is guarded by it.
CREATE TABLE one_time_passwords (
  mac            TEXT PRIMARY KEY,
  profile_id     TEXT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
  issued_to      TEXT NOT NULL,                 -- the page's user and the client address that fetched it
  for_seat       TEXT,                          -- ?seat=: the only seat it enrolls (else only seats without a valid certificate)
  credential     TEXT NOT NULL,                 -- a MAC of the page credentials it was fetched with: rotated, it dies
  expires_at     INTEGER NOT NULL,
  created_at     INTEGER NOT NULL,
  redeemed_at    INTEGER,
  transaction_id TEXT,                          -- the enrollment that redeemed it
  seat_id        TEXT,
  claim          TEXT
);
CREATE INDEX one_time_passwords_expiry ON one_time_passwords (expires_at);
-- The page counts a profile's unused, unexpired passwords (its cache) before it hands out another.
CREATE INDEX one_time_passwords_outstanding ON one_time_passwords (profile_id, expires_at) WHERE redeemed_at IS NULL;

-- Sign-in attempts at the page per profile and client address, in fixed windows: each attempt is counted before
-- its credentials are judged and a success takes its count back, so at most a few are judged per window however
-- many arrive at once. Windows that are over are deleted by a range of the primary key.
CREATE TABLE challenge_page_attempts (
  window_start INTEGER NOT NULL,
  key          TEXT NOT NULL,                   -- "<profile id> <client address or its /64>", and "<profile id> *"
  attempts     INTEGER NOT NULL,
  PRIMARY KEY (window_start, key)
) WITHOUT ROWID;
