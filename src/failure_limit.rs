//! Failed PKIOperations per client address: what keeps an anonymous sender from flooding the audit log.
//!
//! A failure (HTTP 400 for unreadable input, or a FAILURE CertRep) is counted per client address and fixed
//! window by the store, in the same batch as its audit row (no extra round trip). The first
//! [`AUDITED_FAILURES`] of an address in a window are audited one by one; the next writes one summary row naming
//! the address, which the following ones keep up to date with the window's count (and write nothing else). Once
//! an address has [`REFUSE_AFTER`] failures in the window (or, where the host has a rate-limiting service, once
//! that says so), its PKIOperations are answered HTTP 429 with `Retry-After` until the window ends, before
//! anything is read, parsed, decrypted or written.
//!
//! Successes are never counted and cost nothing more: the refusal is decided from a note, per host instance, of
//! the addresses known to be over the limit ([`FailureLimit`]). It is a cache of the store's count: losing it
//! loses nothing, and another instance learns it on its next failure from that address.
//!
//! ```text
//! refused(address, now) ──► Some(429, Retry-After)        noted over the limit, window not over
//!                       ──► None ─► handle the request ─► failed? count(address, now) ─► store batch
//!                                                                   counted(count, failures | limited)
//! ```

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// The window failures are counted in, in seconds (fixed windows aligned on multiples of it).
pub const FAILURE_WINDOW: u64 = 60;
/// The failures of an address in one window that are audited one by one.
pub const AUDITED_FAILURES: u64 = 10;
/// The failures of an address in one window after which its PKIOperations are refused with HTTP 429.
pub const REFUSE_AFTER: u64 = 120;
/// Addresses noted at most: when full, the expired notes go, then the oldest.
const MAX_NOTES: usize = 10_000;

/// Whom a request is counted against: its client address as the edge gives it (Cloudflare's
/// `CF-Connecting-IP`). An IPv6 address counts as its /64 (one host commonly holds a whole /64), an IPv4-mapped
/// one as its IPv4 address; anything else as its first 64 characters; no address as `unknown`.
pub fn client_key(header: Option<&str>) -> String {
    let value = header.unwrap_or_default().trim().to_ascii_lowercase();
    if value.is_empty() {
        return "unknown".to_owned();
    }
    if let Ok(v4) = value.parse::<Ipv4Addr>() {
        return v4.to_string();
    }
    // A zone (`fe80::1%eth0`) names an interface of the sender's, not an address.
    let unzoned = value.split('%').next().unwrap_or_default();
    if let Ok(v6) = unzoned.parse::<Ipv6Addr>() {
        if let Some(v4) = v6.to_ipv4_mapped() {
            return v4.to_string();
        }
        let g = v6.segments();
        return format!("{:x}:{:x}:{:x}:{:x}::/64", g[0], g[1], g[2], g[3]);
    }
    value.chars().take(64).collect()
}

/// An address noted over the limit: answer HTTP 429 with `Retry-After: retry_after`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct Refusal {
    pub retry_after: u64,
    pub text: String,
}

/// What the store needs to count one failure and audit it: the counter's key and window, how many are audited
/// one by one, the summary row's text around the count, and whether to sweep older windows' counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct FailureCount {
    pub key: String,
    pub window_start: u64,
    pub audited: u64,
    pub summary_prefix: String,
    pub summary_suffix: String,
    /// The first failure this instance counts in a new window deletes the counters of older windows.
    pub sweep: bool,
}

/// One host instance's memory of the addresses over the limit (a cache of the store's counts).
#[derive(Debug, Default)]
pub struct FailureLimit {
    /// Address → end of the window it is refused in (Unix seconds), with the order notes were taken.
    refused_until: HashMap<String, (u64, u64)>,
    taken: u64,
    swept_before: u64,
}

impl FailureLimit {
    pub fn new() -> Self {
        Self::default()
    }

    /// HTTP 429 for a PKIOperation from `address` at `now`, if it is noted over the limit; no I/O.
    pub fn refused(&mut self, address: Option<&str>, now: u64) -> Option<Refusal> {
        if self.refused_until.is_empty() {
            return None;
        }
        let key = client_key(address);
        let (until, _) = *self.refused_until.get(&key)?;
        if until <= now {
            self.refused_until.remove(&key);
            return None;
        }
        let wait = until - now;
        Some(Refusal {
            retry_after: wait,
            text: format!("Too many failed SCEP requests from this address; retry in {wait} s"),
        })
    }

    /// Counts one failed PKIOperation of `address` at `now`. `rate_limiter` says the host decides refusals with
    /// a rate-limiting service of its own (the summary row says so).
    pub fn count(&mut self, address: Option<&str>, now: u64, rate_limiter: bool) -> FailureCount {
        let key = client_key(address);
        let window_start = now - now % FAILURE_WINDOW;
        let sweep = window_start > self.swept_before;
        if sweep {
            self.swept_before = window_start;
        }
        let start = der::DateTime::from_unix_duration(core::time::Duration::from_secs(window_start))
            .map(|t| t.to_string())
            .unwrap_or_else(|_| window_start.to_string());
        let after = if rate_limiter {
            "past the FAILURE_LIMITER rate limit".to_owned()
        } else {
            format!("after {REFUSE_AFTER}")
        };
        FailureCount {
            summary_prefix: format!("Failed requests from {key} in the {FAILURE_WINDOW} s from {start}: "),
            summary_suffix: format!(
                " (the first {AUDITED_FAILURES} are logged one by one, the others only counted here; {after}, its \
                 PKIOperations are refused with HTTP 429 until the window ends)"
            ),
            key,
            window_start,
            audited: AUDITED_FAILURES,
            sweep,
        }
    }

    /// What the store counted: `failures` of the key in its window, or, with a rate-limiting service, whether
    /// that refused (`limited`), which then decides instead of the count. Notes the address when it is over.
    pub fn counted(&mut self, count: &FailureCount, failures: u64, limited: Option<bool>, now: u64) {
        let over = limited.unwrap_or(failures >= REFUSE_AFTER);
        if !over {
            return;
        }
        if self.refused_until.len() >= MAX_NOTES {
            self.refused_until.retain(|_, (until, _)| *until > now);
            if self.refused_until.len() >= MAX_NOTES {
                let oldest = self.refused_until.iter().min_by_key(|(_, (_, taken))| *taken).map(|(k, _)| k.clone());
                oldest.map(|k| self.refused_until.remove(&k));
            }
        }
        self.taken += 1;
        self.refused_until.insert(count.key.clone(), (count.window_start + FAILURE_WINDOW, self.taken));
    }
}
