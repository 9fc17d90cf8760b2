//! The one-time challenge page's step machine natively: what it asks the host, in which order, and what it
//! answers (the Worker suite drives the same machine in workerd against D1).

mod common;

use common::*;
use scepkit::challenge_page::{
    password_mac, ChallengePage, PageRequest, PageStep, LOCKOUT_AFTER, PROFILE_LOCKOUT_AFTER,
};
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
    Identity::new(scepkit_ca().cert.clone(), None, Box::new(scepkit::keys::RustCrypto))
}

fn request(authorization: Option<&str>, accept: Option<&str>) -> PageRequest {
    PageRequest {
        authorization: authorization.map(str::to_owned),
        accept: accept.map(str::to_owned),
        client_address: Some("2001:db8:1:2:3::4".into()),
        origin: Some("https://ca.example".into()),
        seat: None,
    }
}

fn basic(credentials: &str) -> String {
    format!("Basic {}", <base64ct::Base64 as base64ct::Encoding>::encode_string(credentials.as_bytes()))
}

const PAGE_PASSWORD: &str = "s3cret-page-password";

fn dynamic() -> StoredProfile {
    profile(json!({ "dynamic": { "username": "mdm", "password": PAGE_PASSWORD } }))
}

#[test]
fn signed_in_the_page_counts_the_attempt_stores_the_mac_forgives_the_attempt_and_shows_the_password() {
    let right = basic(&format!("mdm:{PAGE_PASSWORD}"));
    let (page, step) = ChallengePage::start(&dynamic(), &identity(), &request(Some(&right), None), KEY, NOW);
    let PageStep::CountAttempt { attempt } = step else { panic!("{step:?}") };
    assert_eq!(attempt.keys, ["prof-1 2001:db8:1:2::/64".to_owned(), "prof-1 *".to_owned()]);
    let mut page = page.unwrap();
    let PageStep::Write { writes } = page.with_attempts(1, 1) else { panic!() };
    let [Write::InsertOneTimePassword { mac, expires_at, max_outstanding, credential, for_seat, .. }, Write::ForgiveAttempt { guard: Some(_), .. }, Write::InsertAudit { row, guard: Some(_) }] =
        writes.as_slice()
    else {
        panic!("{writes:?}")
    };
    assert_eq!((*expires_at, *max_outstanding, for_seat), (NOW + 3600, 1000, &None));
    assert_eq!(Some(credential.clone()), scepkit::challenge_page::credential_tag(KEY, &dynamic().profile));
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
    let wrong = basic("mdm:guess");
    let (page, _) = ChallengePage::start(&dynamic(), &identity(), &request(Some(&wrong), None), KEY, NOW);
    let PageStep::Answer { status, audit: Some(audit), .. } = page.unwrap().with_attempts(3, 3) else { panic!() };
    assert_eq!((status, audit.status, audit.code.as_str()), (401, AuditStatus::Failure, "page_sign_in_failed"));
    let right = basic(&format!("mdm:{PAGE_PASSWORD}"));
    let over = |from_address, at_profile| {
        let (page, _) = ChallengePage::start(&dynamic(), &identity(), &request(Some(&right), None), KEY, NOW);
        page.unwrap().with_attempts(from_address, at_profile)
    };
    let PageStep::Answer { status, headers, audit, .. } = over(LOCKOUT_AFTER + 1, 20) else { panic!() };
    assert_eq!((status, audit.unwrap().code.as_str()), (429, "page_locked"));
    assert!(headers["retry-after"].parse::<u64>().unwrap() > 0);
    let PageStep::Answer { status, audit, .. } = over(LOCKOUT_AFTER + 2, 21) else { panic!() };
    assert_eq!((status, audit.is_none()), (429, true), "the lock is audited once");
    // Many addresses guessing at once lock the page for all of them.
    let PageStep::Answer { status, body, audit, .. } = over(1, PROFILE_LOCKOUT_AFTER + 1) else { panic!() };
    assert_eq!((status, audit.unwrap().message.contains("every address")), (429, true));
    assert!(String::from_utf8(body).unwrap().contains("from all addresses"));
}

#[test]
fn no_credentials_no_page_and_a_full_cache_are_answered_without_a_password() {
    let (page, step) = ChallengePage::start(&dynamic(), &identity(), &request(None, None), KEY, NOW);
    assert!(page.is_none());
    let PageStep::Answer { status, headers, .. } = step else { panic!() };
    assert_eq!(status, 401);
    assert!(headers["www-authenticate"].starts_with("Basic realm="));
    let right = basic(&format!("mdm:{PAGE_PASSWORD}"));
    let elsewhere = json!({ "dynamic": { "otp_server_url": "https://ndes.example/certsrv/mscep_admin/", "username": "mdm", "password": "pw" } });
    for challenge in [json!({ "fixed": "x" }), json!({ "dynamic": {} }), elsewhere] {
        let (_, step) = ChallengePage::start(&profile(challenge), &identity(), &request(Some(&right), None), KEY, NOW);
        assert!(matches!(step, PageStep::Answer { status: 404, .. }), "{step:?}");
    }
    let json = request(Some(&right), Some("application/json"));
    let (page, _) = ChallengePage::start(&dynamic(), &identity(), &json, KEY, NOW);
    let mut page = page.unwrap();
    page.with_attempts(1, 1);
    let PageStep::Answer { status, body, audit: Some(audit), .. } = page.written(false) else { panic!() };
    assert_eq!((status, audit.code.as_str()), (503, "password_cache_full"));
    assert!(String::from_utf8(body).unwrap().starts_with("The password cache is full"));
}

#[test]
fn a_page_password_must_resist_guessing_and_a_password_may_be_fetched_for_one_seat() {
    let short = json!({
        "name": "fleet", "folder": "Shared", "scep_challenge": { "dynamic": { "username": "mdm", "password": "short" } },
        "ca_identity_name": "ca", "algorithm": { "rsa": { "rsa_nbits": 2048 } }, "digest": "sha256", "scep_url": "/scep/fleet"
    });
    let e = ScepProfile::create(&short, KEY).unwrap_err();
    assert!(e.details.iter().any(|d| d.path == "scep_challenge.dynamic.password" && d.rule.contains("at least 12")));
    let right = basic(&format!("mdm:{PAGE_PASSWORD}"));
    let for_seat = PageRequest { seat: Some("laptop-9".into()), ..request(Some(&right), None) };
    let (page, _) = ChallengePage::start(&dynamic(), &identity(), &for_seat, KEY, NOW);
    let PageStep::Write { writes } = page.unwrap().with_attempts(1, 1) else { panic!() };
    assert!(matches!(&writes[0], Write::InsertOneTimePassword { for_seat: Some(s), .. } if s == "laptop-9"));
    let bad_seat = PageRequest { seat: Some(" spaced".into()), ..request(Some(&right), None) };
    let (_, step) = ChallengePage::start(&dynamic(), &identity(), &bad_seat, KEY, NOW);
    assert!(matches!(step, PageStep::Answer { status: 400, .. }));
}
