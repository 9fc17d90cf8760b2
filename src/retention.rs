//! What the store may forget, and when: a D1 database has a size ceiling and the audit log only grows, so a
//! scheduled job prunes what no request and no administrator needs any more.
//!
//! | rows | pruned when | why they can go |
//! |---|---|---|
//! | `audit_logs` | older than `retention_days` | exported by then (`GET /api/v1/audit-logs`, CSV) |
//! | `transactions` ISSUED | their certificate expired more than `retention_days` ago | a retransmission that old is not answered again |
//! | `transactions` REJECTED, and PENDING never decided | older than `retention_days` | a poll that late is refused like an unknown one |
//! | `one_time_passwords` | expired a week ago | their story is in the audit log |
//! | `enrollments` REVOKED, or CREATED and expired | older than `retention_days` | nothing can redeem them |
//!
//! Kept for good: profiles, seats, certificates (the CA's record of what it vouched for, and its CRL), the
//! enrollments that were redeemed (the certificate's transaction names them), and used webhook challenges (so a
//! challenge never gives a second certificate). Each kind is deleted in chunks of [`CHUNK`] rows, at most
//! [`MAX_CHUNKS`] per run, so a run stays well inside a Worker's limits whatever the backlog; the next run goes on.

use serde::{Deserialize, Serialize};

/// Rows deleted per statement.
pub const CHUNK: u32 = 5_000;
/// Statements per kind per run.
pub const MAX_CHUNKS: u32 = 20;
/// The audit log's default retention.
pub const DEFAULT_RETENTION_DAYS: u32 = 400;
const RETENTION_RANGE: core::ops::RangeInclusive<u32> = 30..=3650;

/// The cut-off times (Unix seconds) of one pruning run at `now`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct PrunePlan {
    /// Audit rows, decided transactions and dead enrollments older than this go.
    pub before: u64,
    /// One-time passwords that expired before this go.
    pub passwords_before: u64,
    pub chunk: u32,
    pub max_chunks: u32,
    pub retention_days: u32,
}

/// The plan for a run at `now` with the configured retention (`AUDIT_RETENTION_DAYS`; unset or unreadable, the
/// default; outside 30–3650 days, clamped, so a typo never wipes the log).
pub fn plan(now: u64, configured: Option<&str>) -> PrunePlan {
    let days = configured
        .and_then(|v| v.trim().parse::<u32>().ok())
        .map_or(DEFAULT_RETENTION_DAYS, |d| d.clamp(*RETENTION_RANGE.start(), *RETENTION_RANGE.end()));
    PrunePlan {
        before: now.saturating_sub(u64::from(days) * 86_400),
        passwords_before: now.saturating_sub(7 * 86_400),
        chunk: CHUNK,
        max_chunks: MAX_CHUNKS,
        retention_days: days,
    }
}

/// The audit row a run leaves: what it deleted (`counts`: kind → rows).
pub fn summary(plan: &PrunePlan, counts: &[(String, u64)], now: u64) -> crate::pki_operation::AuditRow {
    let deleted: Vec<String> = counts.iter().map(|(kind, n)| format!("{n} {kind}")).collect();
    crate::pki_operation::AuditRow {
        time: now,
        profile: None,
        seat_id: None,
        transaction_id: None,
        operation: "prune".to_owned(),
        status: crate::pki_operation::AuditStatus::Success,
        code: "pruned".to_owned(),
        message: format!(
            "Pruned what is older than {} ({} days of retention): {}",
            crate::issue::rfc3339(plan.before),
            plan.retention_days,
            if deleted.is_empty() { "nothing".to_owned() } else { deleted.join(", ") }
        ),
        resolution: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retention_is_read_and_never_shorter_than_a_month() {
        let now = 1_800_000_000;
        assert_eq!(plan(now, None).retention_days, DEFAULT_RETENTION_DAYS);
        assert_eq!(plan(now, Some("90")).before, now - 90 * 86_400);
        assert_eq!(plan(now, Some("1")).retention_days, 30);
        assert_eq!(plan(now, Some("lots")).retention_days, DEFAULT_RETENTION_DAYS);
        let row = summary(&plan(now, Some("90")), &[("audit rows".into(), 12)], now);
        assert!(row.message.ends_with("(90 days of retention): 12 audit rows"), "{}", row.message);
    }
}
