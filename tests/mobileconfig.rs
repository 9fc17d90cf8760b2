//! Apple configuration profiles (src/mobileconfig.rs): the payload names what the CA will issue, carries the
//! enrollment's code only while it is open and only when the administrator hands it back, and escapes every
//! string.

#![cfg(feature = "server")]

mod common;

use common::*;
use scepkit::mobileconfig::{scep_profile, EnrollmentRecord};
use scepkit::policy::enrollment_code_mac;
use scepkit::profile::ScepProfile;
use serde_json::json;

const KEY: &[u8] = b"code-mac-key";
const CODE: &str = "ABCDE-FGHIJ-KLMNO-PQRST";
const NOW: u64 = 1_800_000_000;

fn profile(extra: serde_json::Value) -> ScepProfile {
    let mut v = json!({
        "name": "laptops", "folder": "Shared", "scep_challenge": { "dynamic": {} }, "ca_identity_name": "ca",
        "subject": "CN=$USERNAME,O=Example Corp", "algorithm": { "rsa": { "rsa_nbits": 3072 } }, "digest": "sha256",
        "scep_url": "/scep", "use_as_digital_signature": true, "use_for_key_encipherment": true
    });
    for (k, val) in extra.as_object().unwrap() {
        v[k] = val.clone();
    }
    ScepProfile::from_json(&v).unwrap()
}

fn enrollment(id: &str, seat: &str) -> EnrollmentRecord {
    EnrollmentRecord {
        id: id.into(),
        seat_id: seat.into(),
        status: "CREATED".into(),
        code_mac: enrollment_code_mac(KEY, CODE),
        expires_at: NOW + 3600,
    }
}

fn payload(p: &ScepProfile, e: &EnrollmentRecord, code: &str) -> Result<String, scepkit::ScepError> {
    scep_profile(p, e, code, KEY, "https://scep.example/scep/laptops", &scepkit_ca().cert, NOW)
}

#[test]
fn the_payload_names_what_the_ca_will_issue_with_the_code_the_url_and_the_cas_fingerprint() {
    let p = profile(json!({ "certificate_attributes": { "dnsname": "$USERNAME.example" } }));
    let xml = payload(&p, &enrollment("enr-1", "laptop-42"), CODE).unwrap();
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist"), "{xml}");
    for part in [
        "<key>PayloadType</key><string>com.apple.security.scep</string>",
        "<key>PayloadType</key><string>Configuration</string>",
        "<key>URL</key><string>https://scep.example/scep/laptops</string>",
        &format!("<key>Challenge</key><string>{CODE}</string>"),
        "<key>Subject</key><array><array><array><string>O</string><string>Example Corp</string></array></array>\
         <array><array><string>CN</string><string>laptop-42</string></array></array></array>",
        "<key>SubjectAltName</key><dict><key>dNSName</key><array><string>laptop-42.example</string></array></dict>",
        "<key>Keysize</key><integer>3072</integer>",
        "<key>Key Type</key><string>RSA</string>",
        "<key>Key Usage</key><integer>5</integer>",
        "<key>CAFingerprint</key><data>",
    ] {
        assert!(xml.contains(part), "missing {part} in {xml}");
    }
    // Stable per enrollment, different between enrollments.
    assert_eq!(xml, payload(&p, &enrollment("enr-1", "laptop-42"), CODE).unwrap());
    let other = payload(&p, &enrollment("enr-2", "laptop-42"), CODE).unwrap();
    let uuids = |x: &str| x.matches("<key>PayloadUUID</key><string>").count();
    assert_eq!((uuids(&xml), xml == other), (2, false));
}

#[test]
fn a_hostile_seat_id_cannot_add_plist_keys_or_names() {
    let p = profile(json!({ "subject": "CN=$USERNAME" }));
    let seat = "x</string><key>Challenge</key><string>mine&\"'";
    let xml = payload(&p, &enrollment("enr-1", seat), CODE).unwrap();
    assert_eq!(xml.matches("<key>Challenge</key>").count(), 1, "{xml}");
    assert!(
        xml.contains("x&lt;/string&gt;&lt;key&gt;Challenge&lt;/key&gt;&lt;string&gt;mine&amp;&quot;&apos;"),
        "{xml}"
    );
}

#[test]
fn only_an_open_enrollment_with_its_own_code_becomes_a_payload() {
    let p = profile(json!({}));
    let e = enrollment("enr-1", "laptop-42");
    assert_eq!(payload(&p, &e, "WRONG-CODE").unwrap_err().status, 400);
    assert!(payload(&p, &e, &CODE.to_lowercase()).is_ok(), "a code as a person types it");
    let with = |status: &str, expires_at: u64| EnrollmentRecord {
        status: status.into(),
        expires_at,
        ..enrollment("enr-1", "laptop-42")
    };
    assert_eq!(payload(&p, &with("REDEEMED", NOW + 60), CODE).unwrap_err().status, 409);
    assert_eq!(payload(&p, &with("REVOKED", NOW + 60), CODE).unwrap_err().status, 410);
    let expired = payload(&p, &with("CREATED", NOW), CODE).unwrap_err();
    assert_eq!((expired.status, expired.message.ends_with("it has expired")), (410, true));
}
