//! The failure vocabulary of `shared/spec/enrollment-errors.md` and the profile schema of
//! `shared/spec/scep-profile.md`.

use scepkit::csr::render_template;
use scepkit::profile::ScepProfile;
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
    assert_eq!(Cipher::DesCbc.check_allowed(true, true).unwrap_err().fail_info, FailInfo::BadAlg);
    assert_eq!(Cipher::DesCbc.check_allowed(false, false).unwrap_err().fail_info, FailInfo::BadAlg);
    assert!(Cipher::DesCbc.check_allowed(true, false).is_ok(), "decrypt-only behind the legacy switch");
    assert_eq!(Cipher::DesEde3Cbc.check_allowed(false, true).unwrap_err().fail_info, FailInfo::BadAlg);
}
