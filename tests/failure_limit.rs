//! The limit on failed PKIOperations per client address (src/failure_limit.rs): whom a failure counts
//! against, when an address is refused and for how long, and what the store is told to write.

#![cfg(feature = "server")]

use scepkit::failure_limit::{client_key, FailureLimit, AUDITED_FAILURES, FAILURE_WINDOW, REFUSE_AFTER};

#[test]
fn a_failure_counts_against_the_ipv4_address_or_an_ipv6_addresss_64() {
    let key = |h: &str| client_key(Some(h));
    assert_eq!(key("192.0.2.1"), "192.0.2.1");
    assert_eq!(key(" 192.0.2.1 "), "192.0.2.1");
    assert_eq!(key("2001:DB8:0:1:2:3:4:5"), "2001:db8:0:1::/64");
    assert_eq!(key("2001:db8::1"), "2001:db8:0:0::/64");
    assert_eq!(key("2001:db8:0:1::"), "2001:db8:0:1::/64");
    assert_eq!(key("::1"), "0:0:0:0::/64");
    assert_eq!(key("fe80::1%eth0"), "fe80:0:0:0::/64");
    assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
    assert_eq!(key("64:ff9b:1::192.0.2.7"), "64:ff9b:1:0::/64");
    assert_eq!(client_key(None), "unknown");
    assert_eq!(key(""), "unknown");
    assert_eq!(key("not an address"), "not an address");
    assert_eq!(key("1:2:3:4:5:6:7:8:9"), "1:2:3:4:5:6:7:8:9");
    assert_eq!(key(&"x".repeat(100)), "x".repeat(64));
}

#[test]
fn an_address_over_the_limit_is_refused_until_its_window_ends_and_no_one_else_is() {
    let mut limit = FailureLimit::new();
    let start = 1_800_000_000; // a window start
    let flood = Some("192.0.2.10");
    for n in 1..=REFUSE_AFTER {
        assert_eq!(limit.refused(flood, start + 5), None, "failure {n} is answered");
        let count = limit.count(flood, start + 5, false);
        limit.counted(&count, n, None, start + 5);
    }
    let refusal = limit.refused(flood, start + 5).expect("refused after REFUSE_AFTER failures");
    assert_eq!(refusal.retry_after, FAILURE_WINDOW - 5);
    assert!(refusal.text.contains("retry in 55 s"), "{}", refusal.text);
    // The whole /64 of an IPv6 sender, never another address.
    assert_eq!(limit.refused(Some("192.0.2.11"), start + 5), None);
    assert_eq!(limit.refused(flood, start + FAILURE_WINDOW), None, "the next window starts afresh");
    assert_eq!(limit.refused(flood, start + FAILURE_WINDOW + 1), None, "and the note is gone");
}

#[test]
fn a_rate_limiting_service_decides_instead_of_the_count_where_the_host_has_one() {
    let mut limit = FailureLimit::new();
    let v6 = Some("2001:db8:77:1::5");
    let count = limit.count(v6, 600, true);
    assert!(count.summary_suffix.contains("past the FAILURE_LIMITER rate limit"), "{}", count.summary_suffix);
    limit.counted(&count, REFUSE_AFTER + 50, Some(false), 600);
    assert_eq!(limit.refused(v6, 600), None, "the count alone does not refuse");
    limit.counted(&count, 1, Some(true), 600);
    assert_eq!(limit.refused(Some("2001:db8:77:1:ffff::9"), 610).map(|r| r.retry_after), Some(50));
}

#[test]
fn the_store_is_told_the_window_the_audited_count_the_summary_and_to_sweep_once_a_window() {
    let mut limit = FailureLimit::new();
    let first = limit.count(Some("192.0.2.40"), 1_800_000_030, false);
    assert_eq!(first.key, "192.0.2.40");
    assert_eq!(first.window_start, 1_800_000_000, "windows are aligned on multiples of FAILURE_WINDOW");
    assert_eq!(first.audited, AUDITED_FAILURES);
    assert_eq!(first.summary_prefix, "Failed requests from 192.0.2.40 in the 60 s from 2027-01-15T08:00:00Z: ");
    assert_eq!(
        first.summary_suffix,
        " (the first 10 are logged one by one, the others only counted here; after 120, its PKIOperations are \
         refused with HTTP 429 until the window ends)"
    );
    assert!(first.sweep);
    assert!(!limit.count(Some("192.0.2.41"), 1_800_000_031, false).sweep, "once per window");
    assert!(limit.count(Some("192.0.2.41"), 1_800_000_030 + FAILURE_WINDOW, false).sweep);
}
