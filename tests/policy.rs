//! The enrollment policy, rule by rule, with time as an argument (so window edges are exact).

mod common;

use common::*;
use scepkit::algorithms::{Cipher, DigestAlg, KeyTransport};
use scepkit::csr::{CsrFacts, CsrRequest, San};
use scepkit::message::MessageType;
use scepkit::policy::{
    decide, enrollment_code_mac, key_digest, new_enrollment_code, Claim, Decision, IssuedCertificate, OpenEnrollment,
    PriorTransaction, StoreFacts, TransactionStatus,
};
use scepkit::profile::ScepProfile;
use scepkit::server::{RequestFacts, SignerFacts};
use scepkit::{ErrorKind, FailInfo};
use serde_json::json;

const KEY: &[u8] = b"code-mac-key";
const CODE: &str = "ABCDE-FGHIJ-KLMNO-PQRST";

fn profile(extra: serde_json::Value) -> ScepProfile {
    let mut v = json!({
        "id": "prof-1", "name": "p", "folder": "Shared", "scep_challenge": { "dynamic": {} }, "ca_identity_name": "ca",
        "algorithm": { "rsa": { "rsa_nbits": 2048 } }, "digest": "sha256", "scep_url": "/scep",
        "validity_days": 365, "renewal_window_days": 30
    });
    for (k, val) in extra.as_object().unwrap() {
        v[k] = val.clone();
    }
    ScepProfile::from_json(&v).unwrap()
}

fn facts(message_type: MessageType, csr: CsrRequest, self_signed: bool) -> RequestFacts {
    let csr = CsrFacts::from_der(&csr.build(test_key(1)).unwrap(), &RustCrypto).unwrap();
    RequestFacts {
        signer: SignerFacts { self_signed, ..facts_of(message_type, csr.clone()).signer },
        ..facts_of(message_type, csr)
    }
}

/// The facts of a request carrying `csr`, signed by a self-signed certificate.
fn facts_of(message_type: MessageType, csr: CsrFacts) -> RequestFacts {
    RequestFacts {
        message_type,
        transaction_id: "tid-1".into(),
        digest: DigestAlg::Sha256,
        cipher: Cipher::Aes128Cbc,
        key_transport: KeyTransport::RsaPkcs1v15,
        signer: SignerFacts {
            subject: "CN=x".into(),
            issuer: "CN=x".into(),
            serial: "01".into(),
            self_signed: true,
            not_before: 0,
            not_after: u64::MAX,
            fingerprint: "ff".into(),
        },
        csr: Some(csr),
        poll: None,
        issuer_and_serial: None,
    }
}

fn csr(cn: &str, challenge: Option<&str>) -> CsrRequest {
    CsrRequest {
        subject: format!("CN={cn}"),
        sans: vec![],
        challenge: challenge.map(str::to_owned),
        digest: DigestAlg::Sha256,
        digital_signature: true,
        key_encipherment: true,
    }
}

fn open_store() -> StoreFacts {
    StoreFacts {
        seat_exists: true,
        open_enrollment: Some(OpenEnrollment {
            id: "enr-1".into(),
            code_mac: enrollment_code_mac(KEY, CODE),
            expires_at: NOW + 3600,
        }),
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
    let d = decide(
        &facts(MessageType::PkcsReq, csr("laptop-1", Some(CODE)), true),
        &profile(json!({})),
        &open_store(),
        KEY,
        &[],
        NOW,
    );
    let Decision::Issue { seat_id, claim, plan } = d else { panic!("{d:?}") };
    assert_eq!((seat_id.as_str(), claim), ("laptop-1", Claim::Enrollment { id: "enr-1".into() }));
    assert_eq!(plan.not_after - NOW, 365 * 86400);
    assert!(plan.not_before < NOW);
}

#[test]
fn codes_are_matched_ignoring_case_and_dashes_but_not_after_expiry() {
    let store = open_store();
    let typed = "abcde fghij klmno pqrst";
    assert!(matches!(
        decide(&facts(MessageType::PkcsReq, csr("l", Some(typed)), true), &profile(json!({})), &store, KEY, &[], NOW),
        Decision::Issue { .. }
    ));
    let late = decide(
        &facts(MessageType::PkcsReq, csr("l", Some(CODE)), true),
        &profile(json!({})),
        &store,
        KEY,
        &[],
        NOW + 3600,
    );
    assert_eq!(reject_kind(late), ErrorKind::ChallengeInvalid);
    let code = new_enrollment_code(&mut rand_core::OsRng);
    assert_eq!(code.len(), 23);
    assert_ne!(code, new_enrollment_code(&mut rand_core::OsRng));
}

#[test]
fn fixed_and_none_challenges() {
    let fixed = profile(json!({ "scep_challenge": { "fixed": "s3cret" } }));
    assert!(matches!(
        decide(&facts(MessageType::PkcsReq, csr("l", Some("s3cret")), true), &fixed, &open_store(), KEY, &[], NOW),
        Decision::Issue { .. }
    ));
    assert_eq!(
        reject_kind(decide(
            &facts(MessageType::PkcsReq, csr("l", Some("s3cret!")), true),
            &fixed,
            &open_store(),
            KEY,
            &[],
            NOW
        )),
        ErrorKind::ChallengeInvalid
    );
    assert_eq!(
        reject_kind(decide(&facts(MessageType::PkcsReq, csr("l", None), true), &fixed, &open_store(), KEY, &[], NOW)),
        ErrorKind::ChallengeInvalid
    );
    let none = profile(json!({ "scep_challenge": { "none": "" } }));
    assert!(matches!(
        decide(&facts(MessageType::PkcsReq, csr("l", None), true), &none, &open_store(), KEY, &[], NOW),
        Decision::Issue { .. }
    ));
}

#[test]
fn a_used_code_is_challenge_invalid_while_a_never_enrolled_seat_has_no_open_enrollment() {
    let used = StoreFacts {
        seat_exists: true,
        redeemed_enrollment: Some(OpenEnrollment {
            id: "old".into(),
            code_mac: enrollment_code_mac(KEY, CODE),
            expires_at: NOW + 3600,
        }),
        ..Default::default()
    };
    let d = decide(&facts(MessageType::PkcsReq, csr("l", Some(CODE)), true), &profile(json!({})), &used, KEY, &[], NOW);
    assert_eq!(reject_kind(d), ErrorKind::ChallengeInvalid);
    let never = StoreFacts { seat_exists: true, ..Default::default() };
    let Decision::Reject { error } =
        decide(&facts(MessageType::PkcsReq, csr("l", Some(CODE)), true), &profile(json!({})), &never, KEY, &[], NOW)
    else {
        panic!()
    };
    assert_eq!(error.message, "No SCEP enrollment with status = CREATED exists for seat with identifier = l");
    let Decision::Reject { error } = decide(
        &facts(MessageType::PkcsReq, csr("ghost", Some(CODE)), true),
        &profile(json!({})),
        &StoreFacts::default(),
        KEY,
        &[],
        NOW,
    ) else {
        panic!()
    };
    assert_eq!(
        error.message,
        "Could not find seat with identifier = ghost using subject.common_name as seat id mapping"
    );
}

#[test]
fn renewal_window_edges_are_exact() {
    let p = profile(json!({}));
    let not_after = NOW + 40 * 86400;
    let opens = not_after - 30 * 86400;
    let store = StoreFacts {
        signer_certificate: Some(IssuedCertificate {
            serial: "0a".into(),
            seat_id: "l".into(),
            profile_id: "prof-1".into(),
            profile_name: Some("p".into()),
            not_after,
            revoked: false,
            renewed: false,
        }),
        ..Default::default()
    };
    let f = facts(MessageType::RenewalReq, csr("l", None), false);
    let Decision::Reject { error } = decide(&f, &p, &store, KEY, &[], opens - 1) else { panic!() };
    assert_eq!(error.fail_info, FailInfo::BadTime);
    assert_eq!(
        error.message,
        format!(
            "Failed to renew the specified certificate: renewal is not permitted until {}[UTC]",
            scepkit::issue::rfc3339(opens)
        )
    );
    let Decision::Issue { claim, seat_id, .. } = decide(&f, &p, &store, KEY, &[], opens) else { panic!() };
    assert_eq!((claim, seat_id.as_str()), (Claim::Renewal { serial: "0a".into() }, "l"));
}

#[test]
fn revoked_renewed_and_foreign_certificates_cannot_renew() {
    let p = profile(json!({ "renewal_window_days": 365 }));
    let f = facts(MessageType::RenewalReq, csr("l", None), false);
    let cert = |revoked, renewed| StoreFacts {
        signer_certificate: Some(IssuedCertificate {
            serial: "0a".into(),
            seat_id: "l".into(),
            profile_id: "prof-1".into(),
            profile_name: Some("p".into()),
            not_after: NOW + 86400,
            revoked,
            renewed,
        }),
        ..Default::default()
    };
    assert_eq!(reject_kind(decide(&f, &p, &cert(true, false), KEY, &[], NOW)), ErrorKind::Revoked);
    assert_eq!(reject_kind(decide(&f, &p, &cert(false, true), KEY, &[], NOW)), ErrorKind::AlreadyRenewed);
    assert_eq!(reject_kind(decide(&f, &p, &StoreFacts::default(), KEY, &[], NOW)), ErrorKind::NotPermitted);
    // certmonger's renewal: a PKCSReq signed by a certificate we issued.
    assert!(matches!(
        decide(&facts(MessageType::PkcsReq, csr("l", None), false), &p, &cert(false, false), KEY, &[], NOW),
        Decision::Issue { claim: Claim::Renewal { .. }, .. }
    ));
}

#[test]
fn key_size_digest_sans_and_key_usage_follow_the_profile() {
    let p = profile(json!({ "algorithm": { "rsa": { "rsa_nbits": 3072 } } }));
    let Decision::Reject { error } =
        decide(&facts(MessageType::PkcsReq, csr("l", Some(CODE)), true), &p, &open_store(), KEY, &[], NOW)
    else {
        panic!()
    };
    assert_eq!(
        (error.message.as_str(), error.fail_info),
        ("CSR key length 2048 does not match 3072", FailInfo::BadAlg)
    );

    let strong = profile(json!({ "digest": "sha512" }));
    assert_eq!(
        reject_kind(decide(
            &facts(MessageType::PkcsReq, csr("l", Some(CODE)), true),
            &strong,
            &open_store(),
            KEY,
            &[],
            NOW
        )),
        ErrorKind::UnsupportedAlgorithm
    );

    let mut with_san = csr("l", Some(CODE));
    with_san.sans = vec![San::Email("a@b.c".into())];
    let dns = profile(json!({ "certificate_attributes": { "dnsname": "$USERNAME.example.com" } }));
    assert_eq!(
        reject_kind(decide(&facts(MessageType::PkcsReq, with_san.clone(), true), &dns, &open_store(), KEY, &[], NOW)),
        ErrorKind::NotPermitted
    );
    with_san.sans = vec![San::Dns("l.example.com".into())];
    let Decision::Issue { plan, .. } =
        decide(&facts(MessageType::PkcsReq, with_san, true), &dns, &open_store(), KEY, &[], NOW)
    else {
        panic!()
    };
    assert_eq!(plan.sans, vec![San::Dns("l.example.com".into())]);

    let signing_only = profile(json!({ "use_for_key_encipherment": false }));
    assert_eq!(
        reject_kind(decide(
            &facts(MessageType::PkcsReq, csr("l", Some(CODE)), true),
            &signing_only,
            &open_store(),
            KEY,
            &[],
            NOW
        )),
        ErrorKind::NotPermitted
    );
}

#[test]
fn seat_mapping_can_use_a_san() {
    let p = profile(json!({ "seat_id_mapping": "san.dnsname", "certificate_attributes": { "dnsname": "$USERNAME" } }));
    let mut r = csr("host-7.example.com", Some(CODE));
    r.sans = vec![San::Dns("host-7.example.com".into())];
    let Decision::Issue { seat_id, .. } =
        decide(&facts(MessageType::PkcsReq, r, true), &p, &open_store(), KEY, &[], NOW)
    else {
        panic!()
    };
    assert_eq!(seat_id, "host-7.example.com");
}

#[test]
fn manual_approval_holds_and_polls_follow_the_transaction() {
    let p = profile(json!({ "manual_approval": true }));
    let f = facts(MessageType::PkcsReq, csr("l", Some(CODE)), true);
    assert!(matches!(
        decide(&f, &p, &open_store(), KEY, &[], NOW),
        Decision::Hold { claim: Claim::Enrollment { .. }, .. }
    ));

    let mut poll = facts(MessageType::CertPoll, csr("l", None), true);
    poll.csr = None;
    let prior = |status| StoreFacts {
        prior_transaction: Some(PriorTransaction {
            status,
            key_digest: key_digest(f.csr.as_ref().unwrap()),
            certificate_serial: Some("0b".into()),
            message: None,
            certificate_der: None,
            seat_id: Some("l".into()),
            plan: None,
            upstream: None,
            claim: None,
            updated_at: None,
        }),
        ..Default::default()
    };
    assert!(matches!(decide(&poll, &p, &prior(TransactionStatus::Pending), KEY, &[], NOW), Decision::Pending));
    assert!(
        matches!(decide(&poll, &p, &prior(TransactionStatus::Issued), KEY, &[], NOW), Decision::Resend { ref serial } if serial == "0b")
    );
    assert_eq!(
        reject_kind(decide(&poll, &p, &prior(TransactionStatus::Rejected), KEY, &[], NOW)),
        ErrorKind::NotPermitted
    );
    let Decision::Reject { error } = decide(&poll, &p, &StoreFacts::default(), KEY, &[], NOW) else { panic!() };
    assert_eq!(error.fail_info, FailInfo::BadCertId);

    // A retransmitted PKCSReq of an issued transaction gets the same certificate; another key is refused.
    assert!(matches!(decide(&f, &p, &prior(TransactionStatus::Issued), KEY, &[], NOW), Decision::Resend { .. }));
    let mut other = prior(TransactionStatus::Issued);
    other.prior_transaction.as_mut().unwrap().key_digest = "00".into();
    assert_eq!(reject_kind(decide(&f, &p, &other, KEY, &[], NOW)), ErrorKind::NotPermitted);
}

#[test]
fn an_expired_or_future_signer_certificate_is_badtime() {
    let p = profile(json!({}));
    let mut f = facts(MessageType::PkcsReq, csr("l", Some(CODE)), true);
    f.signer.not_after = NOW - 1;
    let Decision::Reject { error } = decide(&f, &p, &open_store(), KEY, &[], NOW) else { panic!() };
    assert_eq!(error.fail_info, FailInfo::BadTime);
    assert!(error.message.starts_with("The certificate that signed the request expired at"), "{}", error.message);
    f.signer.not_after = u64::MAX;
    f.signer.not_before = NOW + 86_400; // a day of clock skew is tolerated
    assert!(matches!(decide(&f, &p, &open_store(), KEY, &[], NOW), Decision::Issue { .. }));
    f.signer.not_before = NOW + 86_401;
    let Decision::Reject { error } = decide(&f, &p, &open_store(), KEY, &[], NOW) else { panic!() };
    assert_eq!(error.fail_info, FailInfo::BadTime);
}

// ---- names: the profile and the seat decide every name, never the requester ----

fn corp() -> ScepProfile {
    profile(
        json!({ "subject": "CN=$USERNAME,O=Example Corp", "certificate_attributes": { "dnsname": "$USERNAME.corp.example" } }),
    )
}

fn corp_csr(subject: &str, sans: &[San]) -> CsrRequest {
    CsrRequest {
        subject: subject.into(),
        sans: sans.to_vec(),
        challenge: Some(CODE.into()),
        digest: DigestAlg::Sha256,
        digital_signature: true,
        key_encipherment: true,
    }
}

fn refusal(d: Decision) -> scepkit::ScepError {
    match d {
        Decision::Reject { error } => error,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn the_issued_names_are_the_profiles_rendered_for_the_seat() {
    let f = facts(
        MessageType::PkcsReq,
        corp_csr("CN=dev-1,O=Example Corp", &[San::Dns("dev-1.corp.example".into())]),
        true,
    );
    let Decision::Issue { plan, .. } = decide(&f, &corp(), &open_store(), KEY, &[], NOW) else { panic!() };
    assert_eq!(plan.subject, "CN=dev-1,O=Example Corp");
    assert_eq!(plan.sans, vec![San::Dns("dev-1.corp.example".into())]);
    // A CSR may leave the profile's SAN out (many clients cannot ask for one): it is added.
    let bare = facts(MessageType::PkcsReq, corp_csr("CN=dev-1,O=Example Corp", &[]), true);
    let Decision::Issue { plan, .. } = decide(&bare, &corp(), &open_store(), KEY, &[], NOW) else { panic!() };
    assert_eq!(plan.sans, vec![San::Dns("dev-1.corp.example".into())]);
}

#[test]
fn extra_rdns_foreign_sans_and_wildcards_are_refused_with_what_differs() {
    // The review's attack: the seat's own valid code, but names of the requester's choosing.
    let evil = corp_csr(
        "CN=dev-1,O=Evil,OU=Domain Admins",
        &[San::Dns("*.google.com".into()), San::Dns("login.microsoftonline.com".into())],
    );
    let e = refusal(decide(&facts(MessageType::PkcsReq, evil, true), &corp(), &open_store(), KEY, &[], NOW));
    assert_eq!((e.kind, e.fail_info), (ErrorKind::NotPermitted, FailInfo::BadRequest));
    assert!(e.message.contains("CN=dev-1,O=Example Corp"), "says what the profile expects: {}", e.message);
    assert!(e.message.contains("OU=Domain Admins"), "says what differs: {}", e.message);

    let foreign_san =
        corp_csr("CN=dev-1,O=Example Corp", &[San::Dns("dev-1.corp.example".into()), San::Dns("*.google.com".into())]);
    let e = refusal(decide(&facts(MessageType::PkcsReq, foreign_san, true), &corp(), &open_store(), KEY, &[], NOW));
    assert!(e.message.contains("dns:*.google.com") && e.message.contains("dns:dev-1.corp.example"), "{}", e.message);

    let extra_rdn = corp_csr("CN=dev-1,O=Example Corp,C=US", &[]);
    assert_eq!(
        reject_kind(decide(&facts(MessageType::PkcsReq, extra_rdn, true), &corp(), &open_store(), KEY, &[], NOW)),
        ErrorKind::NotPermitted
    );
    let reordered = corp_csr("O=Example Corp,CN=dev-1", &[]);
    assert_eq!(
        reject_kind(decide(&facts(MessageType::PkcsReq, reordered, true), &corp(), &open_store(), KEY, &[], NOW)),
        ErrorKind::NotPermitted
    );
}

#[test]
fn a_second_cn_is_ambiguous_and_refused() {
    // One CN could name the seat while a relying party reads the other.
    for subject in ["CN=admin.victim.example,CN=dev-1", "CN=dev-1+CN=admin.victim.example"] {
        let e = refusal(decide(
            &facts(MessageType::PkcsReq, corp_csr(subject, &[]), true),
            &profile(json!({})),
            &open_store(),
            KEY,
            &[],
            NOW,
        ));
        assert_eq!(e.fail_info, FailInfo::BadRequest, "{subject}");
        assert!(e.message.contains("names its seat 2 times"), "{subject}: {}", e.message);
    }
    // Two SANs of the type the seat is mapped from are just as ambiguous.
    let p = profile(json!({ "seat_id_mapping": "san.dnsname", "certificate_attributes": { "dnsname": "$USERNAME" } }));
    let two = corp_csr("CN=a", &[San::Dns("a".into()), San::Dns("b".into())]);
    assert!(refusal(decide(&facts(MessageType::PkcsReq, two, true), &p, &open_store(), KEY, &[], NOW))
        .message
        .contains("names its seat 2 times"));
}

#[test]
fn replace_issues_the_rendered_names_whatever_the_csr_asks() {
    let mut p = corp();
    p.csr_names = scepkit::names::CsrNames::Replace;
    let evil = corp_csr(
        "CN=dev-1,O=Evil,OU=Domain Admins",
        &[San::Dns("*.google.com".into()), San::Email("ceo@victim.example".into())],
    );
    let Decision::Issue { plan, seat_id, .. } =
        decide(&facts(MessageType::PkcsReq, evil, true), &p, &open_store(), KEY, &[], NOW)
    else {
        panic!()
    };
    assert_eq!((seat_id.as_str(), plan.subject.as_str()), ("dev-1", "CN=dev-1,O=Example Corp"));
    assert_eq!(plan.sans, vec![San::Dns("dev-1.corp.example".into())]);
}

#[test]
fn the_cas_and_ras_own_names_are_never_issued() {
    use std::str::FromStr;
    let ca = x509_cert::name::Name::from_str("CN=scepkit CA,O=Example Corp").unwrap();
    let p = profile(json!({ "subject": "CN=$USERNAME,O=Example Corp" }));
    let f = facts(MessageType::PkcsReq, corp_csr("CN=scepkit CA,O=Example Corp", &[]), true);
    let e = refusal(decide(&f, &p, &open_store(), KEY, &[ca], NOW));
    assert!(e.message.contains("the CA's or RA's own name"), "{}", e.message);
}

#[test]
fn a_seat_id_cannot_inject_rdns_or_san_labels() {
    // A seat id is escaped into the subject and must be a plain label for a SAN.
    let p = profile(json!({}));
    let f = facts(MessageType::PkcsReq, corp_csr("CN=a\\,O=Evil", &[]), true);
    let Decision::Issue { plan, seat_id, .. } = decide(&f, &p, &open_store(), KEY, &[], NOW) else { panic!() };
    assert_eq!((seat_id.as_str(), plan.subject.as_str()), ("a,O=Evil", "CN=a\\,O=Evil"));
    let e = refusal(decide(
        &facts(MessageType::PkcsReq, corp_csr("CN=*.google.com/x,O=Example Corp", &[]), true),
        &corp(),
        &open_store(),
        KEY,
        &[],
        NOW,
    ));
    assert!(e.message.contains("cannot be rendered into the profile's subjectAltName"), "{}", e.message);
}

// ---- renewals keep their seat, their names and their profile ----

fn renewal_store(profile_id: &str) -> StoreFacts {
    StoreFacts {
        signer_certificate: Some(IssuedCertificate {
            serial: "0a".into(),
            seat_id: "seat-a".into(),
            profile_id: profile_id.into(),
            profile_name: Some("x".into()),
            not_after: NOW + 86400,
            revoked: false,
            renewed: false,
        }),
        ..Default::default()
    }
}

#[test]
fn a_renewal_cannot_change_its_seat() {
    let p = profile(json!({ "renewal_window_days": 365 }));
    let e = refusal(decide(
        &facts(MessageType::RenewalReq, csr("seat-b", None), false),
        &p,
        &renewal_store("prof-1"),
        KEY,
        &[],
        NOW,
    ));
    assert!(e.message.contains("CN=seat-a"), "{}", e.message);
    let Decision::Issue { seat_id, plan, claim, .. } = decide(
        &facts(MessageType::RenewalReq, csr("seat-a", None), false),
        &p,
        &renewal_store("prof-1"),
        KEY,
        &[],
        NOW,
    ) else {
        panic!()
    };
    assert_eq!((seat_id.as_str(), plan.subject.as_str(), claim.renews()), ("seat-a", "CN=seat-a", Some("0a")));
    // Under replace, the old seat's names are issued whatever the CSR says.
    let mut r = p.clone();
    r.csr_names = scepkit::names::CsrNames::Replace;
    let Decision::Issue { seat_id, plan, .. } = decide(
        &facts(MessageType::RenewalReq, csr("seat-b", None), false),
        &r,
        &renewal_store("prof-1"),
        KEY,
        &[],
        NOW,
    ) else {
        panic!()
    };
    assert_eq!((seat_id.as_str(), plan.subject.as_str()), ("seat-a", "CN=seat-a"));
}

#[test]
fn a_renewal_is_only_accepted_at_its_issuing_profile_and_held_when_that_profile_asks() {
    let p = profile(json!({ "renewal_window_days": 365 }));
    let e = refusal(decide(
        &facts(MessageType::RenewalReq, csr("seat-a", None), false),
        &p,
        &renewal_store("prof-other"),
        KEY,
        &[],
        NOW,
    ));
    assert_eq!(e.fail_info, FailInfo::BadRequest);
    assert!(e.message.contains("issued under profile x"), "{}", e.message);
    // certmonger's form (PKCSReq signed by the old certificate) is the same renewal.
    assert!(refusal(decide(
        &facts(MessageType::PkcsReq, csr("seat-a", None), false),
        &p,
        &renewal_store("prof-other"),
        KEY,
        &[],
        NOW
    ))
    .message
    .contains("issued under profile x"));

    let manual = profile(json!({ "renewal_window_days": 365, "manual_approval": true }));
    let d = decide(
        &facts(MessageType::RenewalReq, csr("seat-a", None), false),
        &manual,
        &renewal_store("prof-1"),
        KEY,
        &[],
        NOW,
    );
    assert!(
        matches!(d, Decision::Hold { claim: Claim::Renewal { serial: ref s }, ref seat_id, .. } if s == "0a" && seat_id == "seat-a"),
        "{d:?}"
    );
}

#[test]
fn a_fixed_challenge_is_kept_as_a_mac_and_still_matches() {
    let p = profile(json!({ "scep_challenge": { "fixed": "s3cret" } })).sealed(KEY);
    let stored = p.to_json(true);
    let text = stored["scep_challenge"]["fixed"].as_str().unwrap();
    assert!(text.starts_with("hmac-sha256:") && !text.contains("s3cret"), "{text}");
    // What the store keeps reads back as the same sealed challenge.
    let again = ScepProfile::from_json(&stored).unwrap();
    assert_eq!(again.scep_challenge, p.scep_challenge);
    assert!(matches!(
        decide(&facts(MessageType::PkcsReq, csr("l", Some("s3cret")), true), &again, &open_store(), KEY, &[], NOW),
        Decision::Issue { .. }
    ));
    assert_eq!(
        reject_kind(decide(
            &facts(MessageType::PkcsReq, csr("l", Some("S3cret")), true),
            &again,
            &open_store(),
            KEY,
            &[],
            NOW
        )),
        ErrorKind::ChallengeInvalid
    );
    // Under another key the MAC does not match: the secret is bound to this server.
    assert_eq!(
        reject_kind(decide(
            &facts(MessageType::PkcsReq, csr("l", Some("s3cret")), true),
            &again,
            &open_store(),
            b"other",
            &[],
            NOW
        )),
        ErrorKind::ChallengeInvalid
    );
}

#[test]
fn a_crl_is_signed_again_only_past_half_its_validity_or_after_a_revocation() {
    use scepkit::crl::{renew_at, KeptCrl, VALIDITY};
    let kept = Some(KeptCrl { this_update: NOW, next_update: NOW + VALIDITY, revoked_count: 3 });
    assert_eq!(renew_at(None, 0, NOW), Some((NOW, NOW + VALIDITY)));
    assert_eq!(renew_at(kept, 3, NOW + VALIDITY / 2 - 1), None);
    assert_eq!(renew_at(kept, 3, NOW + VALIDITY / 2), Some((NOW + VALIDITY / 2, NOW + VALIDITY / 2 + VALIDITY)));
    assert_eq!(renew_at(kept, 4, NOW + 1), Some((NOW + 1, NOW + 1 + VALIDITY)));
    assert_eq!(renew_at(kept, 3, NOW - 1), Some((NOW - 1, NOW - 1 + VALIDITY)), "a thisUpdate ahead of our clock");
}

#[test]
fn a_new_enrollment_code_is_shown_once_kept_as_its_mac_and_expires_in_a_week() {
    let e = scepkit::policy::new_enrollment(KEY, NOW, &mut rand_core::OsRng);
    assert_eq!(e.code_mac, enrollment_code_mac(KEY, &e.code));
    assert_eq!(e.expires_at, NOW + 7 * 86_400);
}

/// `der` as a CSR whose CertificationRequestInfo has `version` and its attributes out of DER SET OF order
/// (re-signed by `key` over exactly those bytes, as a device would send it).
fn with_version(der: &[u8], version: u8, key: &scepkit::keys::RsaKey) -> Vec<u8> {
    use der::{Decode, Encode};
    use scepkit::keys::PrivateKeyOps;
    use scepkit::wire::{CertReqAsSent, CertReqInfoAsSent};
    let req = CertReqAsSent::from_der(der).unwrap();
    let mut info: CertReqInfoAsSent = req.info.decode_as().unwrap();
    info.version = der::asn1::Int::new(&[version]).unwrap();
    let mut info_der = info.to_der().unwrap();
    let attrs: Vec<Vec<u8>> = info.attributes.iter().map(|a| a.to_der().unwrap()).collect();
    assert_eq!(attrs.len(), 2, "challengePassword and extensionRequest");
    let sorted = [attrs[0].clone(), attrs[1].clone()].concat();
    let at = info_der.len() - sorted.len();
    assert_eq!(&info_der[at..], sorted.as_slice(), "the attributes end the request info");
    info_der.truncate(at);
    info_der.extend([attrs[1].clone(), attrs[0].clone()].concat());
    let signature = key.sign(DigestAlg::Sha256, &info_der).unwrap();
    let signed = CertReqAsSent {
        info: der::asn1::Any::from_der(&info_der).unwrap(),
        algorithm: req.algorithm,
        signature: der::asn1::BitString::from_bytes(&signature).unwrap(),
    };
    signed.to_der().unwrap()
}

#[test]
fn a_csr_of_another_version_is_read_and_judged_by_policy_and_its_signature_covers_the_bytes_as_sent() {
    use der::Decode as _;
    let der = csr("laptop-1", Some(CODE)).build(test_key(1)).unwrap();
    for version in [1, 2] {
        let odd = with_version(&der, version, test_key(1));
        assert!(x509_cert::request::CertReq::from_der(&odd).is_err(), "the strict decoder refuses version {version}");
        let facts = CsrFacts::from_der(&odd, &RustCrypto).unwrap();
        assert_eq!((facts.common_name.as_deref(), facts.challenge.as_deref()), (Some("laptop-1"), Some(CODE)));
        let mut f = facts_of(MessageType::PkcsReq, facts);
        f.transaction_id = "tid-v".into();
        let d = decide(&f, &profile(json!({})), &open_store(), KEY, &[], NOW);
        assert!(matches!(d, Decision::Issue { ref seat_id, .. } if seat_id == "laptop-1"), "{d:?}");
        // One octet of the subject changed after signing: the proof of possession fails.
        let mut tampered = odd.clone();
        let at = tampered.windows(8).position(|w| w == b"laptop-1").unwrap();
        tampered[at] = b'L';
        assert_eq!(CsrFacts::from_der(&tampered, &RustCrypto).unwrap_err().fail_info, FailInfo::BadMessageCheck);
    }
}
