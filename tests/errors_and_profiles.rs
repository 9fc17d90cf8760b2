//! The failure vocabulary of `shared/spec/enrollment-errors.md` and the profile schema of
//! `shared/spec/scep-profile.md`.

use scepkit::csr::render_template;
use scepkit::profile::{ScepChallenge, ScepProfile, Secret};
use scepkit::{FailInfo, ScepError};
use serde_json::json;

#[test]
fn every_enrollment_failure_of_the_spec_has_its_wording_status_and_failinfo() {
    let rows: Vec<(ScepError, &str, u16, FailInfo)> = vec![
        (ScepError::decrypt_failed(), "Failed to decrypt a PKCS7 message", 404, FailInfo::BadMessageCheck),
        (
            ScepError::seat_not_found("laptop-42", "subject.common_name"),
            "Could not find seat with identifier = laptop-42 using subject.common_name as seat id mapping",
            404,
            FailInfo::BadCertId,
        ),
        (
            ScepError::challenge_invalid(),
            "Challenge password is invalid - does not match the value configured by the Administrator",
            401,
            FailInfo::BadRequest,
        ),
        (
            ScepError::no_open_enrollment("laptop-42"),
            "No SCEP enrollment with status = CREATED exists for seat with identifier = laptop-42",
            400,
            FailInfo::BadRequest,
        ),
        (
            ScepError::renewal_too_early(&scepkit::issue::rfc3339(1_795_300_000)),
            "Failed to renew the specified certificate: renewal is not permitted until 2026-11-21T22:26:40Z[UTC]",
            400,
            FailInfo::BadTime,
        ),
        (ScepError::key_length_mismatch(2048, 3072), "CSR key length 2048 does not match 3072", 400, FailInfo::BadAlg),
        (
            ScepError::already_renewed(),
            "Failed to renew the specified certificate: it already has been renewed",
            400,
            FailInfo::BadCertId,
        ),
        (
            ScepError::revoked(),
            "Failed to renew the specified certificate: it has been revoked",
            400,
            FailInfo::BadCertId,
        ),
    ];
    for (err, message, status, fail_info) in rows {
        assert_eq!(err.message, message);
        assert_eq!(err.status, status, "{message}");
        assert_eq!(err.fail_info, fail_info, "{message}");
        assert!(!err.resolution.is_empty(), "{message}");
        // A client that only sees the text gets the same resolution back.
        assert_eq!(
            ScepError::refused(fail_info, Some(message)).resolution.split(' ').next(),
            err.resolution.split(' ').next(),
            "{message}"
        );
    }
}

#[test]
fn a_client_refused_for_names_the_profile_does_not_issue_is_told_so_not_to_check_its_code() {
    let text = "The requested names differ from the profile: the CSR asks for subjectAltName dns:laptop.example \
                which the profile does not issue for this seat (it issues none)";
    let seen = ScepError::refused(FailInfo::BadRequest, Some(text));
    assert_eq!(seen.resolution, ScepError::names_differ("x").resolution);
    assert!(seen.resolution.starts_with("the profile does not issue those names"));
    assert!(!seen.resolution.contains("enrollment code"));
}

fn base() -> serde_json::Value {
    json!({
        "name": "laptops", "folder": "Shared", "scep_challenge": { "dynamic": { "otp_server_url": "https://scep.example/api/v1/enrollments", "username": "svc", "password": "hunter2" } },
        "ca_identity_name": "dev-ca", "algorithm": { "rsa": { "rsa_nbits": 2048 } }, "digest": "sha256", "scep_url": "https://scep.example/scep"
    })
}

#[test]
fn a_valid_profile_gets_defaults_and_never_echoes_the_password() {
    let p = ScepProfile::from_json(&base()).unwrap();
    assert_eq!(p.subject, "CN=$USERNAME");
    assert_eq!(p.seat_id_mapping, "subject.common_name");
    assert_eq!((p.renewal_window_days, p.validity_days, p.manual_approval, p.legacy), (30, 365, false, false));
    let out = p.to_json(false);
    assert_eq!(out["scep_challenge"]["dynamic"]["password"], "********");
    assert_eq!(out["algorithm"]["rsa"]["rsa_nbits"], 2048);
    assert!(!out.to_string().contains("hunter2"));
    assert_eq!(ScepProfile::from_json(&p.to_json(true)).unwrap(), p);
}

#[test]
fn sha348_is_accepted_and_written_back_as_sha384_and_nbits_may_be_a_string() {
    let mut v = base();
    v["digest"] = json!("sha348");
    v["algorithm"]["rsa"]["rsa_nbits"] = json!("3072");
    let p = ScepProfile::from_json(&v).unwrap();
    assert_eq!(p.to_json(false)["digest"], "sha384");
    assert_eq!(p.rsa_nbits, 3072);
}

#[test]
fn every_broken_field_is_named_in_details() {
    let v = json!({
        "name": "a-name-that-is-far-longer-than-31-characters", "folder": "ok", "device": "also",
        "scep_challenge": { "none": "x" }, "algorithm": { "rsa": { "rsa_nbits": 1024 } }, "digest": "md5",
        "certificate_attributes": { "dnsname": "a", "rfc822name": "b" }, "use_as_digital_signature": "yes"
    });
    let err = ScepProfile::from_json(&v).unwrap_err();
    assert_eq!(err.message, "Invalid Object");
    assert_eq!(err.status, 400);
    let paths: Vec<&str> = err.details.iter().map(|d| d.path.as_str()).collect();
    for want in [
        "name",
        "folder",
        "scep_challenge.none",
        "ca_identity_name",
        "algorithm.rsa.rsa_nbits",
        "digest",
        "certificate_attributes",
        "use_as_digital_signature",
        "scep_url",
    ] {
        assert!(paths.contains(&want), "{want} not in {paths:?}");
    }
}

#[test]
fn legacy_opens_1024_bits_and_sha1_only_on_request() {
    let mut v = base();
    v["algorithm"]["rsa"]["rsa_nbits"] = json!(1024);
    v["digest"] = json!("sha1");
    let err = ScepProfile::from_json(&v).unwrap_err();
    assert_eq!(err.details.len(), 2);
    v["legacy"] = json!(true);
    let p = ScepProfile::from_json(&v).unwrap();
    assert_eq!(p.rsa_nbits, 1024);
}

fn issues(err: &ScepError) -> Vec<(&str, &str)> {
    err.details.iter().map(|d| (d.path.as_str(), d.rule.as_str())).collect()
}

#[test]
fn the_stored_form_reads_back_as_the_same_profile_through_the_derive() {
    const KEY: &[u8] = b"code-mac-key";
    let mut full = base();
    for (k, v) in [
        ("id", json!("5f0c4a6e-0000-4000-8000-000000000001")),
        ("subject", json!("CN=$USERNAME,O=Example")),
        ("fingerprint", json!(format!("AB:{}", "cd".repeat(31)))),
        ("certificate_attributes", json!({ "uniform_resource_identifier": "urn:seat:$USERNAME" })),
        ("scep_ca_cert", json!("ca")),
        ("scep_client_cert", json!("client")),
        ("validity_days", json!(90)),
        ("renewal_window_days", json!(90)),
        ("manual_approval", json!(true)),
        ("legacy", json!(true)),
        ("seat_id_mapping", json!("san.uniform_resource_identifier")),
        ("csr_names", json!("replace")),
        ("oaep_only", json!(true)),
        ("use_for_key_encipherment", json!(false)),
    ] {
        full[k] = v;
    }
    let none = json!({ "name": "n", "device": "fw-1", "scep_challenge": { "none": "" }, "ca_identity_name": "ca",
        "algorithm": { "rsa": { "rsa_nbits": "4096" } }, "digest": "sha512", "scep_url": "/scep" });
    let mut fixed = none.clone();
    fixed["scep_challenge"] = json!({ "fixed": "s3cret" });
    fixed["snippet"] = fixed.as_object_mut().unwrap().remove("device").unwrap();
    for body in [base(), full, none, fixed] {
        let stored = ScepProfile::from_json(&body).unwrap().sealed(KEY);
        let json = stored.to_json(true);
        assert_eq!(ScepProfile::from_json(&json).unwrap(), stored, "{json}");
        assert_eq!(serde_json::from_value::<ScepProfile>(json.clone()).unwrap(), stored, "{json}");
        // The stored form names each field once, as the schema spells it (one of folder, snippet, device).
        let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.iter().filter(|k| ["folder", "snippet", "device"].contains(k)).count(), 1, "{keys:?}");
        assert_eq!(json["algorithm"]["rsa"]["rsa_nbits"], json!(stored.rsa_nbits));
    }
}

#[test]
fn the_masked_view_hides_the_fixed_challenge_and_the_password_only() {
    let mut v = base();
    v["scep_challenge"] = json!({ "fixed": "s3cret" });
    let fixed = ScepProfile::from_json(&v).unwrap();
    assert_eq!(fixed.to_json(false)["scep_challenge"], json!({ "fixed": "********" }));
    assert_eq!(fixed.sealed(b"k").to_json(false)["scep_challenge"], json!({ "fixed": "********" }));
    let dynamic = ScepProfile::from_json(&base()).unwrap().to_json(false);
    assert_eq!(
        dynamic["scep_challenge"],
        json!({ "dynamic": { "otp_server_url": "https://scep.example/api/v1/enrollments", "username": "svc", "password": "********" } })
    );
    let mut none = base();
    none["scep_challenge"] = json!({ "dynamic": {} });
    assert_eq!(ScepProfile::from_json(&none).unwrap().to_json(false)["scep_challenge"], json!({ "dynamic": {} }));
}

#[test]
fn five_fields_of_the_wrong_type_are_five_issues_each_at_its_path() {
    let mut v = base();
    v["legacy"] = json!("yes");
    v["algorithm"]["rsa"]["rsa_nbits"] = json!("lots");
    v["validity_days"] = json!("a year");
    v["scep_challenge"]["dynamic"]["username"] = json!(5);
    v["certificate_attributes"] = json!({ "dnsname": 7 });
    let err = ScepProfile::from_json(&v).unwrap_err();
    assert_eq!(err.message, "Invalid Object");
    assert_eq!(
        issues(&err),
        [
            ("scep_challenge.dynamic.username", "must be a string"),
            ("legacy", "must be a boolean"),
            ("algorithm.rsa.rsa_nbits", "must be one of 2048, 3072, 4096 (1024 with legacy)"),
            ("certificate_attributes.dnsname", "must be a string"),
            ("validity_days", "must be an integer from 1 to 3650"),
        ]
    );
}

#[test]
fn type_errors_and_broken_rules_are_reported_together() {
    let mut v = base();
    v["name"] = json!("a/b");
    v["manual_approval"] = json!(1);
    v["renewal_window_days"] = json!(400);
    v["subject"] = json!("not a name");
    v["fingerprint"] = json!("abc");
    v["csr_names"] = json!("rewrite");
    let err = ScepProfile::from_json(&v).unwrap_err();
    let paths: Vec<&str> = issues(&err).into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        paths,
        ["name", "subject", "fingerprint", "renewal_window_days", "manual_approval", "csr_names"],
        "{:?}",
        issues(&err)
    );
    assert!(issues(&err).contains(&("csr_names", "must be match or replace")));
    assert!(issues(&err).contains(&("renewal_window_days", "must not be longer than validity_days")));
}

#[test]
fn an_unknown_field_is_refused_at_its_path() {
    let mut v = base();
    v["colour"] = json!("blue");
    v["scep_challenge"]["dynamic"]["otp_lifetime"] = json!(60);
    let err = ScepProfile::from_json(&v).unwrap_err();
    assert_eq!(
        issues(&err),
        [
            ("scep_challenge.dynamic.otp_lifetime", "is not a field of a SCEP profile"),
            ("colour", "is not a field of a SCEP profile"),
        ]
    );
    let mut v = base();
    v["algorithm"]["rsa"]["exponent"] = json!(3);
    assert_eq!(
        issues(&ScepProfile::from_json(&v).unwrap_err()),
        [("algorithm.rsa.exponent", "is not a field of a SCEP profile")]
    );
    let mut v = base();
    v["algorithm"] = json!({ "rsa": {} });
    assert_eq!(issues(&ScepProfile::from_json(&v).unwrap_err()), [("algorithm.rsa.rsa_nbits", "is required")]);
    assert_eq!(issues(&ScepProfile::from_json(&json!([1, 2])).unwrap_err()), [("$", "must be a JSON object")]);
}

#[test]
fn an_update_keeps_a_secret_sent_back_masked_and_replaces_one_sent_anew() {
    const KEY: &[u8] = b"code-mac-key";
    let mut v = base();
    v["id"] = json!("prof-1");
    v["scep_challenge"] = json!({ "fixed": "s3cret" });
    let stored = ScepProfile::create(&v, KEY).unwrap();
    let masked = stored.to_json(false);
    assert_eq!(masked["scep_challenge"]["fixed"], "********");

    // Sent back as shown, with another field changed: the stored MAC stays, the change is taken.
    let mut edit = masked.clone();
    edit["validity_days"] = json!(90);
    let kept = ScepProfile::update(&stored, &edit, KEY).unwrap();
    assert_eq!((kept.scep_challenge.clone(), kept.validity_days), (stored.scep_challenge.clone(), 90));
    let ScepChallenge::Fixed(f) = &kept.scep_challenge else { panic!() };
    assert!(f.matches("s3cret", KEY) && matches!(f, Secret::Mac(_)));
    // A new challenge replaces it (and is sealed).
    edit["scep_challenge"]["fixed"] = json!("n3w");
    let ScepChallenge::Fixed(f) = ScepProfile::update(&stored, &edit, KEY).unwrap().scep_challenge else { panic!() };
    assert!(f.matches("n3w", KEY) && !f.matches("s3cret", KEY) && matches!(f, Secret::Mac(_)));

    // The dynamic challenge's password: kept when masked, replaced when given; the rest as sent.
    let stored = ScepProfile::create(&base(), KEY).unwrap();
    let mut edit = stored.to_json(false);
    edit["scep_challenge"]["dynamic"]["username"] = json!("svc2");
    let ScepChallenge::Dynamic(d) = ScepProfile::update(&stored, &edit, KEY).unwrap().scep_challenge else { panic!() };
    let password = d.password.unwrap();
    assert_eq!(d.username.as_deref(), Some("svc2"));
    // Sealed like the fixed challenge: a copy of the database does not give the page's password away.
    assert!(matches!(password, Secret::Mac(_)) && password.matches("hunter2", KEY));
    edit["scep_challenge"]["dynamic"]["password"] = json!("hunter3");
    let ScepChallenge::Dynamic(d) = ScepProfile::update(&stored, &edit, KEY).unwrap().scep_challenge else { panic!() };
    assert!(d.password.unwrap().matches("hunter3", KEY));

    // The id is the stored one, whatever the body says.
    let mut edit = stored.to_json(false);
    edit["id"] = json!("another");
    assert_eq!(ScepProfile::update(&stored, &edit, KEY).unwrap().id, stored.id);
}

#[test]
fn a_masked_secret_with_nothing_stored_to_keep_is_refused() {
    const KEY: &[u8] = b"code-mac-key";
    let dynamic = ScepProfile::create(&base(), KEY).unwrap();
    let mut edit = dynamic.to_json(false);
    edit["scep_challenge"] = json!({ "fixed": "********" });
    let err = ScepProfile::update(&dynamic, &edit, KEY).unwrap_err();
    assert_eq!(issues(&err)[0].0, "scep_challenge.fixed");
    // Creating a profile from a shown one must not make the mask its secret.
    let err = ScepProfile::create(&dynamic.to_json(false), KEY).unwrap_err();
    assert_eq!(issues(&err)[0].0, "scep_challenge.dynamic.password");
}

#[test]
fn sha348_is_read_as_sha384_and_stored_as_sha384() {
    let mut v = base();
    v["digest"] = json!("sha348");
    let stored = ScepProfile::create(&v, b"k").unwrap();
    assert_eq!(stored.digest, scepkit::algorithms::DigestAlg::Sha384);
    assert_eq!(stored.to_json(true)["digest"], "sha384");
    assert_eq!(ScepProfile::from_json(&stored.to_json(true)).unwrap(), stored);
}

#[test]
fn templates_fill_every_variable_or_say_which_is_missing() {
    let vars = [("USERNAME".to_owned(), "alice".to_owned()), ("USERNAME_FULL".to_owned(), "Alice Doe".to_owned())];
    assert_eq!(render_template("CN=$USERNAME_FULL,UID=$USERNAME", &vars).unwrap(), "CN=Alice Doe,UID=alice");
    let err = render_template("CN=$DEVICE", &vars).unwrap_err();
    assert!(err.message.contains("$DEVICE"), "{}", err.message);
}

#[test]
fn md5_and_single_des_are_never_accepted_and_des_is_never_produced() {
    use scepkit::algorithms::{Cipher, DigestAlg};
    let md5 = der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.2.5");
    let md5_rsa = der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.4");
    for oid in [md5, md5_rsa] {
        assert_eq!(DigestAlg::from_oid(&oid).unwrap_err().fail_info, FailInfo::BadAlg);
    }
    assert_eq!(
        Cipher::DesCbc.check_allowed(scepkit::algorithms::AlgorithmPolicy::Legacy, true).unwrap_err().fail_info,
        FailInfo::BadAlg
    );
    assert_eq!(
        Cipher::DesCbc.check_allowed(scepkit::algorithms::AlgorithmPolicy::Modern, false).unwrap_err().fail_info,
        FailInfo::BadAlg
    );
    assert!(
        Cipher::DesCbc.check_allowed(scepkit::algorithms::AlgorithmPolicy::Legacy, false).is_ok(),
        "decrypt-only behind the legacy switch"
    );
    assert_eq!(
        Cipher::DesEde3Cbc.check_allowed(scepkit::algorithms::AlgorithmPolicy::Modern, true).unwrap_err().fail_info,
        FailInfo::BadAlg
    );
}

#[test]
fn a_webhook_is_validated_field_by_field_and_its_secret_is_masked_and_kept_like_the_challenges() {
    const KEY: &[u8] = b"code-mac-key";
    let mut v = base();
    v["webhook"] = json!({ "url": "https://mdm.example/scep-hook", "secret": "0123456789abcdef", "mode": "approve" });
    let stored = ScepProfile::create(&v, KEY).unwrap();
    let hook = stored.webhook.clone().unwrap();
    assert_eq!((hook.timeout_ms, hook.secret.as_str()), (5000, "0123456789abcdef"), "kept usable: it signs");
    let view = stored.to_json(false);
    assert_eq!(
        view["webhook"],
        json!({ "url": "https://mdm.example/scep-hook", "secret": "********", "timeout_ms": 5000, "mode": "approve" })
    );
    // Sent back masked: the stored secret stays; a new one replaces it; a mask with nothing stored is refused.
    let mut edit = view.clone();
    edit["webhook"]["mode"] = json!("challenge");
    let kept = ScepProfile::update(&stored, &edit, KEY).unwrap().webhook.unwrap();
    assert_eq!((kept.secret.as_str(), kept.mode), ("0123456789abcdef", scepkit::webhook::WebhookMode::Challenge));
    edit["webhook"]["secret"] = json!("another-secret-16");
    assert_eq!(ScepProfile::update(&stored, &edit, KEY).unwrap().webhook.unwrap().secret, "another-secret-16");
    let err = ScepProfile::create(&view, KEY).unwrap_err();
    assert_eq!(issues(&err).last().unwrap().0, "webhook.secret", "with the dynamic password's: both are masks");

    let mut bad = base();
    bad["webhook"] = json!({ "url": "ftp://x", "secret": "short", "timeout_ms": 5, "mode": "approve" });
    let err = ScepProfile::from_json(&bad).unwrap_err();
    let paths: Vec<_> = issues(&err).into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths, ["webhook.url", "webhook.secret", "webhook.timeout_ms"]);
    bad["webhook"] = json!({ "url": "https://x.example", "secret": "0123456789abcdef", "mode": "maybe" });
    assert_eq!(issues(&ScepProfile::from_json(&bad).unwrap_err())[0].0, "webhook.mode");
    bad["webhook"] = json!({ "url": "https://x.example", "secret": "0123456789abcdef", "mode": "approve", "extra": 1 });
    assert!(issues(&ScepProfile::from_json(&bad).unwrap_err())[0].0.starts_with("webhook"));
}
