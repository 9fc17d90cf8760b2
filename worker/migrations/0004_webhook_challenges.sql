-- Challenges a profile's webhook owns (webhook mode "challenge"), once used: a challenge is claimed here by the
-- first statement of the batch that saves its certificate (or held request), so it gives one certificate however
-- often it is sent, whatever the webhook would say. Kept as HMAC-SHA-256 under CODE_KEY, never in clear.
CREATE TABLE used_challenges (
  challenge_mac  TEXT PRIMARY KEY,
  profile_id     TEXT NOT NULL REFERENCES profiles(id),
  transaction_id TEXT NOT NULL,
  claim          TEXT NOT NULL,                 -- the request attempt that used it (its new serial)
  created_at     INTEGER NOT NULL
);
