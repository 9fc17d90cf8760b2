//! Apple configuration profiles: one enrollment as a `.mobileconfig` whose `com.apple.security.scep` payload
//! makes an iPhone, iPad or Mac enroll with this service by itself (Apple's "Configuration Profile Reference",
//! payload type `com.apple.security.scep`).
//!
//! ```text
//! plist dict
//!   PayloadType "Configuration", PayloadIdentifier, PayloadUUID, PayloadVersion 1, PayloadDisplayName
//!   PayloadContent [ dict
//!     PayloadType "com.apple.security.scep", PayloadIdentifier, PayloadUUID, PayloadVersion 1
//!     PayloadContent dict
//!       URL, Name, Subject [[["O","Example Corp"]],[["CN","dev-1"]]], Challenge,
//!       Keysize, Key Type "RSA", Key Usage (1 signing | 4 encryption),
//!       SubjectAltName { dNSName | rfc822Name | uniformResourceIdentifier: [..] },
//!       Retries, RetryDelay, CAFingerprint <data: SHA-1 of the CA certificate> ] ]
//! ```
//!
//! The subject and SANs are the ones the CA will issue for the seat (rendered from the profile, as policy does),
//! so a device asks for exactly what it gets. The payload carries the enrollment's one-time code: the store keeps
//! only its MAC, so the administrator hands the code back and it is checked here, and only an enrollment that
//! is still open can be made into a payload. The XML is written here (a plist of strings, integers, arrays,
//! dicts and one data value), every string escaped.

use der::Encode;
use subtle::ConstantTimeEq;

use crate::algorithms::DigestAlg;
use crate::csr::San;
use crate::error::{Result, ScepError};
use crate::names::CertificateNames;
use crate::profile::ScepProfile;
use crate::wire::Certificate;

/// How often and how long apart (seconds) a device retries a PENDING enrollment.
const RETRIES: u32 = 3;
const RETRY_DELAY: u32 = 10;

/// The enrollment a payload is made for, as the store keeps it.
#[derive(Clone, Debug, serde::Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct EnrollmentRecord {
    pub id: String,
    pub seat_id: String,
    pub status: String,
    pub code_mac: String,
    pub expires_at: u64,
}

/// The `.mobileconfig` for `enrollment` of `profile`, given its one-time `code` (checked against the stored
/// MAC under `code_key`), the SCEP URL devices are to use and the CA certificate they are to trust.
pub fn scep_profile(
    profile: &ScepProfile,
    enrollment: &EnrollmentRecord,
    code: &str,
    code_key: &[u8],
    scep_url: &str,
    ca: &Certificate,
    now: u64,
) -> Result<String> {
    check_open(enrollment, code, code_key, now)?;
    let names = CertificateNames::render(profile, &enrollment.seat_id)?;
    let ca_name = ca.tbs_certificate.subject.to_string();
    let fingerprint = DigestAlg::Sha1.digest(&ca.to_der()?);
    let key_usage = u32::from(profile.use_as_digital_signature) | (4 * u32::from(profile.use_for_key_encipherment));

    let mut scep = Dict::default();
    scep.string("URL", scep_url);
    scep.string("Name", &ca_name);
    scep.raw("Subject", subject_array(&names));
    scep.string("Challenge", code);
    scep.integer("Keysize", u64::from(profile.rsa_nbits));
    scep.string("Key Type", "RSA");
    scep.integer("Key Usage", u64::from(key_usage));
    if !names.sans.is_empty() {
        scep.raw("SubjectAltName", san_dict(&names.sans));
    }
    scep.integer("Retries", u64::from(RETRIES));
    scep.integer("RetryDelay", u64::from(RETRY_DELAY));
    scep.raw(
        "CAFingerprint",
        format!("<data>{}</data>", <base64ct::Base64 as base64ct::Encoding>::encode_string(&fingerprint)),
    );

    let id = format!("scepkit.{}.{}", profile.name.replace(' ', "-"), enrollment.id);
    let mut payload = Dict::default();
    payload.raw("PayloadContent", scep.finish());
    payload.string("PayloadDescription", "Enrolls this device for a certificate over SCEP");
    payload.string("PayloadDisplayName", &format!("SCEP: {}", names.subject_text()));
    payload.string("PayloadIdentifier", &format!("com.apple.security.scep.{}", uuid(&enrollment.id, "scep")));
    payload.string("PayloadType", "com.apple.security.scep");
    payload.string("PayloadUUID", &uuid(&enrollment.id, "scep"));
    payload.integer("PayloadVersion", 1);

    let mut top = Dict::default();
    top.raw("PayloadContent", format!("<array>{}</array>", payload.finish()));
    top.string("PayloadDisplayName", &format!("{} certificate for {}", profile.name, enrollment.seat_id));
    top.string("PayloadIdentifier", &id);
    top.string("PayloadType", "Configuration");
    top.string("PayloadUUID", &uuid(&enrollment.id, "configuration"));
    top.integer("PayloadVersion", 1);
    Ok(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \
         \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\">\n{}\n</plist>\n",
        top.finish()
    ))
}

/// Only an open enrollment whose code the administrator handed back makes a payload.
fn check_open(enrollment: &EnrollmentRecord, code: &str, code_key: &[u8], now: u64) -> Result<()> {
    let mac = crate::policy::enrollment_code_mac(code_key, code);
    if !bool::from(mac.as_bytes().ct_eq(enrollment.code_mac.as_bytes())) {
        let mut e = ScepError::invalid_input("SCEP-Challenge is not this enrollment's code");
        e.resolution =
            "send the enrollment code shown when the enrollment was created, in the SCEP-Challenge header".into();
        return Err(e);
    }
    let (status, why) = match enrollment.status.as_str() {
        "REDEEMED" => (409, "it was redeemed already"),
        "REVOKED" => (410, "it was revoked (a newer enrollment of the seat at this profile revokes it)"),
        _ if enrollment.expires_at <= now => (410, "it has expired"),
        _ => return Ok(()),
    };
    let mut e = ScepError::not_permitted(
        format!("Enrollment {} cannot be made into a profile: {why}", enrollment.id),
        "create a new enrollment for the seat and use its code",
    );
    e.status = status;
    Err(e)
}

/// Apple's subject: the RDN sequence in wire order, each RDN an array of `[type, value]` pairs.
fn subject_array(names: &CertificateNames) -> String {
    let rdns: String = names
        .subject
        .0
        .iter()
        .map(|rdn| {
            let pairs: String = rdn
                .0
                .iter()
                .map(|atv| {
                    // The type as RFC 4514 writes it (CN, O, OU, …; an OID for others), as Apple's examples do.
                    let text = atv.to_string();
                    let kind = text.split_once('=').map(|(k, _)| k.to_owned()).unwrap_or_else(|| atv.oid.to_string());
                    let value = crate::wire::text(&atv.value).unwrap_or_default();
                    format!("<array><string>{}</string><string>{}</string></array>", escape(&kind), escape(&value))
                })
                .collect();
            format!("<array>{pairs}</array>")
        })
        .collect();
    format!("<array>{rdns}</array>")
}

fn san_dict(sans: &[San]) -> String {
    let mut dict = Dict::default();
    for (key, pick) in [
        ("dNSName", (|s: &San| if let San::Dns(v) = s { Some(v) } else { None }) as fn(&San) -> Option<&String>),
        ("rfc822Name", |s| if let San::Email(v) = s { Some(v) } else { None }),
        ("uniformResourceIdentifier", |s| if let San::Uri(v) = s { Some(v) } else { None }),
    ] {
        let values: String = sans.iter().filter_map(pick).map(|v| format!("<string>{}</string>", escape(v))).collect();
        if !values.is_empty() {
            dict.raw(key, format!("<array>{values}</array>"));
        }
    }
    dict.finish()
}

/// A stable UUID for one payload of one enrollment (name-based: SHA-1 of the two, as RFC 9562 version 5).
fn uuid(enrollment_id: &str, purpose: &str) -> String {
    let mut b = DigestAlg::Sha1.digest(format!("scepkit mobileconfig\0{purpose}\0{enrollment_id}").as_bytes());
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = base16ct::upper::encode_string(&b[..16]);
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// A plist `<dict>` being written, keys in the order given.
#[derive(Default)]
struct Dict(String);

impl Dict {
    fn raw(&mut self, key: &str, value: String) {
        self.0.push_str(&format!("<key>{}</key>{value}", escape(key)));
    }

    fn string(&mut self, key: &str, value: &str) {
        self.raw(key, format!("<string>{}</string>", escape(value)));
    }

    fn integer(&mut self, key: &str, value: u64) {
        self.raw(key, format!("<integer>{value}</integer>"));
    }

    fn finish(self) -> String {
        format!("<dict>{}</dict>", self.0)
    }
}

/// XML character data: the five markup characters escaped, and characters XML 1.0 cannot carry left out.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}
