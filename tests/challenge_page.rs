//! The one-time challenge page's step machine natively: what it asks the host, in which order, and what it
//! answers (the Worker suite drives the same machine in workerd against D1).

mod common;

use common::*;
use scepkit::challenge_page::{password_mac, ChallengePage, PageRequest, PageStep, LOCKOUT_AFTER};
use scepkit::pki_operation::{AuditStatus, StoredProfile, Write};
use scepkit::profile::ScepProfile;
use scepkit::server::Identity;
use serde_json::json;

const KEY: &[u8] = b"code-mac-key";

fn profile(challenge: serde_json::Value) -> StoredProfile {
    let body = json!({
        "name": "fleet", "folder": "Shared", "scep_challenge": challenge, "ca_identity_name": "ca",
        "algorithm": { "rsa": { "rsa_nbits": 2048 } }, "digest": "sha256", "scep_url": "/scep/fleet"
    });
    let profile = ScepProfile::create(&body, KEY).unwrap();
    StoredProfile { id: "prof-1".into(), name: "fleet".into(), stored: body.to_string(), profile, cached: false }
}

fn identity() -> Identity {
    Identity { ca_cert: scepkit_ca().cert.clone(), ra_cert: None, public_ops: Box::new(scepkit::keys::RustCrypto) }
}

fn request(authorization: Option<&str>, accept: Option<&str>) -> PageRequest {
    PageRequest {
        authorization: authorization.map(str::to_owned),
        accept: accept.map(str::to_owned),
        client_address: Some("2001:db8:1:2:3::4".into()),
    }
}

// "mdm:s3cret" and "mdm:guess"
const RIGHT: &str = "Basic bWRtOnMzY3JldA==";
const WRONG: &str = "Basic bWRtOmd1ZXNz";

fn dynamic() -> StoredProfile {
    profile(json!({ "dynamic": { "username": "mdm", "password": "s3cret" } }))
}

#[test]
fn signed_in_the_page_counts_the_attempt_stores_the_mac_forgives_the_attempt_and_shows_the_password() {
    let (page, step) = ChallengePage::start(&dynamic(), &identity(), &request(Some(RIGHT), None), KEY, NOW);
    let PageStep::CountAttempt { attempt } = step else { panic!("{step:?}") };
    assert_eq!(attempt.key, "prof-1 2001:db8:1:2::/64");
    let mut page = page.unwrap();
    let PageStep::Write { writes } = page.with_attempts(1) else { panic!() };
    let [Write::InsertOneTimePassword { mac, expires_at, max_outstanding, .. }, Write::ForgiveAttempt { .. }, Write::InsertAudit { row, .. }] =
        writes.as_slice()
    else {
        panic!("{writes:?}")
    };
    assert_eq!((*expires_at, *max_outstanding), (NOW + 3600, 1000));
    assert!(row.message.contains(&mac[..16]) && row.message.contains("user \"mdm\" from 2001:db8:1:2::/64"));
    let PageStep::Answer { status, headers, body, audit } = page.written(true) else { panic!() };
    assert_eq!((status, audit.is_none()), (200, true));
    assert_eq!(headers["content-type"].to_ascii_lowercase(), "text/html; charset=utf-16");
    assert_eq!(&body[..2], &[0xff, 0xfe]);
    let units: Vec<u16> = body[2..].chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    let html = String::from_utf16(&units).unwrap();
    let password = html.split("The enrollment challenge password is: <B> ").nth(1).unwrap().split(' ').next().unwrap();
    assert_eq!(password.len(), 16);
    assert_eq!(
        password_mac(KEY, "prof-1", password).as_deref(),
        Some(mac.as_str()),
        "the stored MAC is the password's"
    );
    // The same password read by the client side, as an MDM would.
    assert_eq!(
        scepkit::client::challenge::read_challenge_answer(Some(&headers["content-type"]), &body).unwrap(),
        password
    );
}

#[test]
fn wrong_credentials_are_audited_and_past_the_limit_even_the_right_ones_wait() {
    let (page, _) = ChallengePage::start(&dynamic(), &identity(), &request(Some(WRONG), None), KEY, NOW);
    let PageStep::Answer { status, audit: Some(audit), .. } = page.unwrap().with_attempts(3) else { panic!() };
    assert_eq!((status, audit.status, audit.code.as_str()), (401, AuditStatus::Failure, "page_sign_in_failed"));
    let over = |n| {
        let (page, _) = ChallengePage::start(&dynamic(), &identity(), &request(Some(RIGHT), None), KEY, NOW);
        page.unwrap().with_attempts(n)
    };
    let PageStep::Answer { status, headers, audit, .. } = over(LOCKOUT_AFTER + 1) else { panic!() };
    assert_eq!((status, audit.unwrap().code.as_str()), (429, "page_locked"));
    assert!(headers["retry-after"].parse::<u64>().unwrap() > 0);
    let PageStep::Answer { status, audit, .. } = over(LOCKOUT_AFTER + 2) else { panic!() };
    assert_eq!((status, audit.is_none()), (429, true), "the lock is audited once");
}

#[test]
fn no_credentials_no_page_and_a_full_cache_are_answered_without_a_password() {
    let (page, step) = ChallengePage::start(&dynamic(), &identity(), &request(None, None), KEY, NOW);
    assert!(page.is_none());
    let PageStep::Answer { status, headers, .. } = step else { panic!() };
    assert_eq!(status, 401);
    assert!(headers["www-authenticate"].starts_with("Basic realm="));
    for challenge in [json!({ "fixed": "x" }), json!({ "dynamic": { "username": "mdm" } })] {
        let (_, step) = ChallengePage::start(&profile(challenge), &identity(), &request(Some(RIGHT), None), KEY, NOW);
        assert!(matches!(step, PageStep::Answer { status: 404, .. }));
    }
    let (page, _) =
        ChallengePage::start(&dynamic(), &identity(), &request(Some(RIGHT), Some("application/json")), KEY, NOW);
    let mut page = page.unwrap();
    page.with_attempts(1);
    let PageStep::Answer { status, body, audit: Some(audit), .. } = page.written(false) else { panic!() };
    assert_eq!((status, audit.code.as_str()), (503, "password_cache_full"));
    assert!(String::from_utf8(body).unwrap().starts_with("The password cache is full"));
}
