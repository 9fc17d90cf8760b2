//! The enrollment policy, rule by rule, with time as an argument (so window edges are exact).

mod common;

use common::*;
use scepkit::algorithms::{Cipher, DigestAlg, KeyTransport};
use scepkit::csr::{CsrFacts, CsrRequest, San};
use scepkit::message::MessageType;
use scepkit::policy::{decide, enrollment_code_mac, key_digest, new_enrollment_code, Decision, IssuedCertificate, OpenEnrollment, PriorTransaction, StoreFacts, TransactionStatus};
use scepkit::profile::ScepProfile;
use scepkit::server::{RequestFacts, SignerFacts};
use scepkit::{ErrorKind, FailInfo};
use serde_json::json;

const KEY: &[u8] = b"code-mac-key";
const CODE: &str = "ABCDE-FGHIJ-KLMNO-PQRST";

fn profile(extra: serde_json::Value) -> ScepProfile {
    let mut v = json!({
        "name": "p", "folder": "Shared", "scep_challenge": { "dynamic": {} }, "ca_identity_name": "ca",
        "algorithm": { "rsa": { "rsa_nbits": 2048 } }, "digest": "sha256", "scep_url": "/scep",
        "validity_days": 365, "renewal_window_days": 30
    });
    for (k, val) in extra.as_object().unwrap() {
        v[k] = val.clone();
    }
    ScepProfile::from_json(&v).unwrap()
}

fn facts(message_type: MessageType, csr: CsrRequest, self_signed: bool) -> RequestFacts {
    RequestFacts {
        message_type,
        transaction_id: "tid-1".into(),
        digest: DigestAlg::Sha256,
        cipher: Cipher::Aes128Cbc,
        key_transport: KeyTransport::RsaPkcs1v15,
        signer: SignerFacts { subject: "CN=x".into(), issuer: "CN=x".into(), serial: "01".into(), self_signed, not_before: 0, not_after: u64::MAX, fingerprint: "ff".into() },
        csr: Some(CsrFacts::from_der(&csr.build(test_key(1)).unwrap()).unwrap()),
        poll: None,
        issuer_and_serial: None,
    }
}

fn csr(cn: &str, challenge: Option<&str>) -> CsrRequest {
    CsrRequest { subject: format!("CN={cn}"), sans: vec![], challenge: challenge.map(str::to_owned), digest: DigestAlg::Sha256, digital_signature: true, key_encipherment: true }
}

fn open_store() -> StoreFacts {
    StoreFacts {
        seat_exists: true,
        open_enrollment: Some(OpenEnrollment { id: "enr-1".into(), code_mac: enrollment_code_mac(KEY, CODE), expires_at: NOW + 3600 }),
        ..Default::default()
    }
}

fn reject_kind(d: Decision) -> ErrorKind {
    match d {
        Decision::Reject { error } => error.kind,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_valid_code_issues_and_redeems_its_enrollment() {
    let d = decide(&facts(MessageType::PkcsReq, csr("laptop-1", Some(CODE)), true), &profile(json!({})), &open_store(), KEY, NOW);
    let Decision::Issue { seat_id, redeem, renews, plan } = d else { panic!("{d:?}") };
    assert_eq!((seat_id.as_str(), redeem.as_deref(), renews), ("laptop-1", Some("enr-1"), None));
    assert_eq!(plan.not_after - NOW, 365 * 86400);
    assert!(plan.not_before < NOW);
}

#[test]
fn codes_are_matched_ignoring_case_and_dashes_but_not_after_expiry() {
    let store = open_store();
    let typed = "abcde fghij klmno pqrst";
    assert!(matches!(decide(&facts(MessageType::PkcsReq, csr("l", Some(typed)), true), &profile(json!({})), &store, KEY, NOW), Decision::Issue { .. }));
    let late = decide(&facts(MessageType::PkcsReq, csr("l", Some(CODE)), true), &profile(json!({})), &store, KEY, NOW + 3600);
    assert_eq!(reject_kind(late), ErrorKind::ChallengeInvalid);
    let code = new_enrollment_code(&mut rand_core::OsRng);
    assert_eq!(code.len(), 23);
    assert_ne!(code, new_enrollment_code(&mut rand_core::OsRng));
}

#[test]
fn fixed_and_none_challenges() {
    let fixed = profile(json!({ "scep_challenge": { "fixed": "s3cret" } }));
    assert!(matches!(decide(&facts(MessageType::PkcsReq, csr("l", Some("s3cret")), true), &fixed, &open_store(), KEY, NOW), Decision::Issue { .. }));
    assert_eq!(reject_kind(decide(&facts(MessageType::PkcsReq, csr("l", Some("s3cret!")), true), &fixed, &open_store(), KEY, NOW)), ErrorKind::ChallengeInvalid);
    assert_eq!(reject_kind(decide(&facts(MessageType::PkcsReq, csr("l", None), true), &fixed, &open_store(), KEY, NOW)), ErrorKind::ChallengeInvalid);
    let none = profile(json!({ "scep_challenge": { "none": "" } }));
    assert!(matches!(decide(&facts(MessageType::PkcsReq, csr("l", None), true), &none, &open_store(), KEY, NOW), Decision::Issue { .. }));
}

#[test]
fn a_used_code_is_challenge_invalid_while_a_never_enrolled_seat_has_no_open_enrollment() {
    let used = StoreFacts {
        seat_exists: true,
        redeemed_enrollment: Some(OpenEnrollment { id: "old".into(), code_mac: enrollment_code_mac(KEY, CODE), expires_at: NOW + 3600 }),
        ..Default::default()
    };
    let d = decide(&facts(MessageType::PkcsReq, csr("l", Some(CODE)), true), &profile(json!({})), &used, KEY, NOW);
    assert_eq!(reject_kind(d), ErrorKind::ChallengeInvalid);
    let never = StoreFacts { seat_exists: true, ..Default::default() };
    let Decision::Reject { error } = decide(&facts(MessageType::PkcsReq, csr("l", Some(CODE)), true), &profile(json!({})), &never, KEY, NOW) else { panic!() };
    assert_eq!(error.message, "No SCEP enrollment with status = CREATED exists for seat with identifier = l");
    let Decision::Reject { error } = decide(&facts(MessageType::PkcsReq, csr("ghost", Some(CODE)), true), &profile(json!({})), &StoreFacts::default(), KEY, NOW) else { panic!() };
    assert_eq!(error.message, "Could not find seat with identifier = ghost using subject.common_name as seat id mapping");
}

#[test]
fn renewal_window_edges_are_exact() {
    let p = profile(json!({}));
    let not_after = NOW + 40 * 86400;
    let opens = not_after - 30 * 86400;
    let store = StoreFacts { signer_certificate: Some(IssuedCertificate { serial: "0a".into(), seat_id: "l".into(), not_after, revoked: false, renewed: false }), ..Default::default() };
    let f = facts(MessageType::RenewalReq, csr("l", None), false);
    let Decision::Reject { error } = decide(&f, &p, &store, KEY, opens - 1) else { panic!() };
    assert_eq!(error.fail_info, FailInfo::BadTime);
    assert_eq!(error.message, format!("Failed to renew the specified certificate: renewal is not permitted until {}[UTC]", scepkit::issue::rfc3339(opens)));
    let Decision::Issue { renews, redeem, seat_id, .. } = decide(&f, &p, &store, KEY, opens) else { panic!() };
    assert_eq!((renews.as_deref(), redeem, seat_id.as_str()), (Some("0a"), None, "l"));
}

#[test]
fn revoked_renewed_and_foreign_certificates_cannot_renew() {
    let p = profile(json!({ "renewal_window_days": 365 }));
    let f = facts(MessageType::RenewalReq, csr("l", None), false);
    let cert = |revoked, renewed| StoreFacts { signer_certificate: Some(IssuedCertificate { serial: "0a".into(), seat_id: "l".into(), not_after: NOW + 86400, revoked, renewed }), ..Default::default() };
    assert_eq!(reject_kind(decide(&f, &p, &cert(true, false), KEY, NOW)), ErrorKind::Revoked);
    assert_eq!(reject_kind(decide(&f, &p, &cert(false, true), KEY, NOW)), ErrorKind::AlreadyRenewed);
    assert_eq!(reject_kind(decide(&f, &p, &StoreFacts::default(), KEY, NOW)), ErrorKind::NotPermitted);
    // certmonger's renewal: a PKCSReq signed by a certificate we issued.
    assert!(matches!(decide(&facts(MessageType::PkcsReq, csr("l", None), false), &p, &cert(false, false), KEY, NOW), Decision::Issue { renews: Some(_), .. }));
}

#[test]
fn key_size_digest_sans_and_key_usage_follow_the_profile() {
    let p = profile(json!({ "algorithm": { "rsa": { "rsa_nbits": 3072 } } }));
    let Decision::Reject { error } = decide(&facts(MessageType::PkcsReq, csr("l", Some(CODE)), true), &p, &open_store(), KEY, NOW) else { panic!() };
    assert_eq!((error.message.as_str(), error.fail_info), ("CSR key length 2048 does not match 3072", FailInfo::BadAlg));

    let strong = profile(json!({ "digest": "sha512" }));
    assert_eq!(reject_kind(decide(&facts(MessageType::PkcsReq, csr("l", Some(CODE)), true), &strong, &open_store(), KEY, NOW)), ErrorKind::UnsupportedAlgorithm);

    let mut with_san = csr("l", Some(CODE));
    with_san.sans = vec![San::Email("a@b.c".into())];
    let dns = profile(json!({ "certificate_attributes": { "dnsname": "$USERNAME.example.com" } }));
    assert_eq!(reject_kind(decide(&facts(MessageType::PkcsReq, with_san.clone(), true), &dns, &open_store(), KEY, NOW)), ErrorKind::NotPermitted);
    with_san.sans = vec![San::Dns("l.example.com".into())];
    let Decision::Issue { plan, .. } = decide(&facts(MessageType::PkcsReq, with_san, true), &dns, &open_store(), KEY, NOW) else { panic!() };
    assert_eq!(plan.sans, vec![San::Dns("l.example.com".into())]);

    let signing_only = profile(json!({ "use_for_key_encipherment": false }));
    assert_eq!(reject_kind(decide(&facts(MessageType::PkcsReq, csr("l", Some(CODE)), true), &signing_only, &open_store(), KEY, NOW)), ErrorKind::NotPermitted);
}

#[test]
fn seat_mapping_can_use_a_san() {
    let p = profile(json!({ "seat_id_mapping": "san.dnsname", "certificate_attributes": { "dnsname": "x" } }));
    let mut r = csr("ignored", Some(CODE));
    r.sans = vec![San::Dns("host-7.example.com".into())];
    let Decision::Issue { seat_id, .. } = decide(&facts(MessageType::PkcsReq, r, true), &p, &open_store(), KEY, NOW) else { panic!() };
    assert_eq!(seat_id, "host-7.example.com");
}

#[test]
fn manual_approval_holds_and_polls_follow_the_transaction() {
    let p = profile(json!({ "manual_approval": true }));
    let f = facts(MessageType::PkcsReq, csr("l", Some(CODE)), true);
    assert!(matches!(decide(&f, &p, &open_store(), KEY, NOW), Decision::Hold { redeem: Some(_), .. }));

    let mut poll = facts(MessageType::CertPoll, csr("l", None), true);
    poll.csr = None;
    let prior = |status| StoreFacts { prior_transaction: Some(PriorTransaction { status, key_digest: key_digest(f.csr.as_ref().unwrap()), certificate_serial: Some("0b".into()), message: None }), ..Default::default() };
    assert!(matches!(decide(&poll, &p, &prior(TransactionStatus::Pending), KEY, NOW), Decision::Pending));
    assert!(matches!(decide(&poll, &p, &prior(TransactionStatus::Issued), KEY, NOW), Decision::Resend { ref serial } if serial == "0b"));
    assert_eq!(reject_kind(decide(&poll, &p, &prior(TransactionStatus::Rejected), KEY, NOW)), ErrorKind::NotPermitted);
    let Decision::Reject { error } = decide(&poll, &p, &StoreFacts::default(), KEY, NOW) else { panic!() };
    assert_eq!(error.fail_info, FailInfo::BadCertId);

    // A retransmitted PKCSReq of an issued transaction gets the same certificate; another key is refused.
    assert!(matches!(decide(&f, &p, &prior(TransactionStatus::Issued), KEY, NOW), Decision::Resend { .. }));
    let mut other = prior(TransactionStatus::Issued);
    other.prior_transaction.as_mut().unwrap().key_digest = "00".into();
    assert_eq!(reject_kind(decide(&f, &p, &other, KEY, NOW)), ErrorKind::NotPermitted);
}

#[test]
fn an_expired_or_future_signer_certificate_is_badtime() {
    let p = profile(json!({}));
    let mut f = facts(MessageType::PkcsReq, csr("l", Some(CODE)), true);
    f.signer.not_after = NOW - 1;
    let Decision::Reject { error } = decide(&f, &p, &open_store(), KEY, NOW) else { panic!() };
    assert_eq!(error.fail_info, FailInfo::BadTime);
    assert!(error.message.starts_with("The certificate that signed the request expired at"), "{}", error.message);
    f.signer.not_after = u64::MAX;
    f.signer.not_before = NOW + 86_400; // a day of clock skew is tolerated
    assert!(matches!(decide(&f, &p, &open_store(), KEY, NOW), Decision::Issue { .. }));
    f.signer.not_before = NOW + 86_401;
    let Decision::Reject { error } = decide(&f, &p, &open_store(), KEY, NOW) else { panic!() };
    assert_eq!(error.fail_info, FailInfo::BadTime);
}
