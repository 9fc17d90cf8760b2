-- Failed PKIOperations per client address and fixed window (src/limits.js): the first few of a window are
-- audited one by one, the rest only counted here and in one summary audit row (summary_id); past a limit the
-- address is refused with HTTP 429 until the window ends. Keyed by window first, so the windows that are over
-- are deleted by a range of the primary key; only the current window's rows are kept for long.
CREATE TABLE rate_limits (
  window_start INTEGER NOT NULL,                -- Unix seconds, a multiple of the window's length
  key          TEXT NOT NULL,                   -- the client address (an IPv6 address's /64)
  failures     INTEGER NOT NULL,
  summary_id   INTEGER,                         -- the audit row standing for the failures past the first few
  PRIMARY KEY (window_start, key)
) WITHOUT ROWID;
