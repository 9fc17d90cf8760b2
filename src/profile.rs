//! The SCEP profile (`shared/spec/scep-profile.md`): how a device enrolls, validated the same way by the
//! Worker's admin API and by the page.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::algorithms::DigestAlg;
use crate::caps::normalize_fingerprint;
use crate::error::{FieldIssue, Result, ScepError};
use crate::names::{render_sans, render_subject, CsrNames};

/// How the server reads the CSR's challengePassword.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScepChallenge {
    /// No challenge (the empty string in the reference schema).
    None(String),
    /// One shared challenge for every seat of the profile.
    Fixed(FixedChallenge),
    /// Per-seat one-time enrollment codes handed out by an OTP server (this service's `/api/v1/enrollments`).
    Dynamic(DynamicChallenge),
}

/// A fixed challenge: as the admin API receives it, or as the store keeps it (a MAC under the server's key,
/// written `hmac-sha256:<hex>`, so a copy of the database does not give it away).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FixedChallenge {
    Plain(String),
    Mac(String),
}

const FIXED_MAC_PREFIX: &str = "hmac-sha256:";

impl FixedChallenge {
    fn parse(s: String) -> Self {
        match s.strip_prefix(FIXED_MAC_PREFIX) {
            Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) => {
                Self::Mac(hex.to_owned())
            }
            _ => Self::Plain(s),
        }
    }

    /// The form the store keeps.
    pub fn sealed(&self, key: &[u8]) -> Self {
        match self {
            Self::Plain(s) => Self::Mac(fixed_challenge_mac(key, s)),
            mac => mac.clone(),
        }
    }

    /// Whether `given` is the challenge, compared in constant time (as MACs when sealed).
    pub fn matches(&self, given: &str, key: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        match self {
            Self::Plain(s) => bool::from(given.as_bytes().ct_eq(s.as_bytes())),
            Self::Mac(m) => bool::from(fixed_challenge_mac(key, given).as_bytes().ct_eq(m.as_bytes())),
        }
    }

    fn text(&self) -> String {
        match self {
            Self::Plain(s) => s.clone(),
            Self::Mac(m) => format!("{FIXED_MAC_PREFIX}{m}"),
        }
    }
}

/// HMAC-SHA-256 of a fixed challenge, hex; domain-separated from enrollment codes, and exact (no case folding).
fn fixed_challenge_mac(key: &[u8], secret: &str) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(b"scepkit fixed challenge\0");
    mac.update(secret.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynamicChallenge {
    pub otp_server_url: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// The SAN a profile puts in the certificate: its type and a value or `$VAR` template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateAttributes {
    Rfc822name(String),
    Dnsname(String),
    UniformResourceIdentifier(String),
}

/// Where the profile lives: exactly one of folder, snippet, device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Container {
    Folder(String),
    Snippet(String),
    Device(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScepProfile {
    pub id: Option<String>,
    pub name: String,
    pub container: Container,
    pub scep_challenge: ScepChallenge,
    pub ca_identity_name: String,
    pub subject: String,
    pub rsa_nbits: u32,
    pub digest: DigestAlg,
    pub fingerprint: Option<String>,
    pub certificate_attributes: Option<CertificateAttributes>,
    pub use_as_digital_signature: bool,
    pub use_for_key_encipherment: bool,
    pub scep_url: String,
    pub scep_ca_cert: Option<String>,
    pub scep_client_cert: Option<String>,
    /// Days before expiry from which a renewal is accepted.
    pub renewal_window_days: u32,
    pub validity_days: u32,
    /// PKCSReq answers PENDING until an administrator approves.
    pub manual_approval: bool,
    /// Allows 3DES, SHA-1 and RSA 1024 for old clients. Single DES is never produced either way.
    pub legacy: bool,
    /// Which CSR field names the seat: `subject.common_name` (default), `san.<type>` or `subject.<attr>`.
    pub seat_id_mapping: String,
    /// What the CA does with the names a CSR asks for: `match` (default: refuse any other) or `replace`.
    pub csr_names: CsrNames,
    /// Refuses RSA PKCS#1 v1.5 key transport (RSA-OAEP only): no v1.5 decryption is ever attempted.
    pub oaep_only: bool,
}

pub const DEFAULT_SUBJECT: &str = "CN=$USERNAME";
pub const DEFAULT_SEAT_ID_MAPPING: &str = "subject.common_name";
const SEAT_ID_MAPPINGS: &[&str] = &[
    "subject.common_name",
    "subject.serial_number",
    "subject.email_address",
    "san.dnsname",
    "san.rfc822name",
    "san.uniform_resource_identifier",
];

impl ScepProfile {
    /// Validates a profile object as the admin API receives it, collecting every failing field.
    pub fn from_json(value: &Value) -> Result<Self> {
        let mut v = Validator::default();
        let Some(obj) = value.as_object() else {
            return Err(ScepError::invalid_object(vec![FieldIssue {
                path: "$".into(),
                rule: "must be a JSON object".into(),
            }]));
        };
        let name = v.string(obj, "name", true, 31).unwrap_or_default();
        // A name is a path segment (/scep/<name>) and a CSV cell: nothing that could escape either.
        let name_ok = name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '))
            && name.chars().any(|c| c.is_ascii_alphanumeric())
            && !name.contains("..")
            && name.trim() == name;
        if !name.is_empty() && !name_ok {
            v.fail("name", "must be ASCII letters, digits, '-', '_', '.' and inner spaces, with a letter or digit (no '..', no leading or trailing space)");
        }
        let container = v.container(obj);
        let scep_challenge = v.challenge(obj);
        let ca_identity_name = v.string(obj, "ca_identity_name", true, 255).unwrap_or_default();
        let subject = v.string(obj, "subject", false, 1024).unwrap_or_else(|| DEFAULT_SUBJECT.to_owned());
        let legacy = v.boolean(obj, "legacy", false);
        let rsa_nbits = v.rsa_nbits(obj, legacy);
        let digest = v.digest(obj, legacy);
        let fingerprint = v.string(obj, "fingerprint", false, 200);
        if let Some(fp) = &fingerprint {
            if normalize_fingerprint(fp).is_none() {
                v.fail(
                    "fingerprint",
                    "must be a SHA-256 (64 hex digits) or SHA-1 (40 hex digits) fingerprint, colons allowed",
                );
            }
        }
        let certificate_attributes = v.certificate_attributes(obj);
        let use_as_digital_signature = v.boolean(obj, "use_as_digital_signature", true);
        let use_for_key_encipherment = v.boolean(obj, "use_for_key_encipherment", true);
        let scep_url = v.string(obj, "scep_url", true, 1024).unwrap_or_default();
        let scep_url_ok = ["http://", "https://", "/"].iter().any(|p| scep_url.starts_with(p));
        if !scep_url.is_empty() && !scep_url_ok {
            v.fail("scep_url", "must be an http(s) URL or a path on this service");
        }
        let scep_ca_cert = v.string(obj, "scep_ca_cert", false, 255);
        let scep_client_cert = v.string(obj, "scep_client_cert", false, 255);
        let renewal_window_days = v.integer(obj, "renewal_window_days", 30, 0..=3650);
        let validity_days = v.integer(obj, "validity_days", 365, 1..=3650);
        // A window as long as the validity means "renew at any time" (micromdm's -allowrenew 0).
        if renewal_window_days > validity_days {
            v.fail("renewal_window_days", "must not be longer than validity_days");
        }
        let manual_approval = v.boolean(obj, "manual_approval", false);
        let seat_id_mapping =
            v.string(obj, "seat_id_mapping", false, 64).unwrap_or_else(|| DEFAULT_SEAT_ID_MAPPING.to_owned());
        if !SEAT_ID_MAPPINGS.contains(&seat_id_mapping.as_str()) {
            v.fail("seat_id_mapping", &format!("must be one of {}", SEAT_ID_MAPPINGS.join(", ")));
        }
        let csr_names = match obj.get("csr_names").filter(|x| !x.is_null()) {
            None => CsrNames::default(),
            Some(x) => serde_json::from_value(x.clone()).unwrap_or_else(|_| {
                v.fail("csr_names", "must be match or replace");
                CsrNames::default()
            }),
        };
        let oaep_only = v.boolean(obj, "oaep_only", false);
        let id = obj.get("id").and_then(Value::as_str).map(str::to_owned);
        if !v.issues.is_empty() {
            return Err(ScepError::invalid_object(v.issues));
        }
        let profile = Self {
            id,
            name,
            container: container.expect("validated"),
            scep_challenge: scep_challenge.expect("validated"),
            ca_identity_name,
            subject,
            rsa_nbits,
            digest,
            fingerprint,
            certificate_attributes,
            use_as_digital_signature,
            use_for_key_encipherment,
            scep_url,
            scep_ca_cert,
            scep_client_cert,
            renewal_window_days,
            validity_days,
            manual_approval,
            legacy,
            seat_id_mapping,
            csr_names,
            oaep_only,
        };
        // The templates must render for an ordinary seat id, to a distinguished name and a SAN.
        let mut issues = Vec::new();
        if let Err(e) = render_subject(&profile.subject, "seat-1") {
            issues.push(FieldIssue {
                path: "subject".into(),
                rule: format!("must be an RFC 4514 name template such as CN=$USERNAME,O=Example: {}", e.message),
            });
        }
        if let Err(e) = render_sans(profile.certificate_attributes.as_ref(), "seat-1") {
            issues.push(FieldIssue {
                path: "certificate_attributes".into(),
                rule: format!("must render for a seat: {}", e.message),
            });
        }
        if !issues.is_empty() {
            return Err(ScepError::invalid_object(issues));
        }
        Ok(profile)
    }

    /// The form the store keeps: a fixed challenge becomes its MAC under `code_key`.
    pub fn sealed(mut self, code_key: &[u8]) -> Self {
        if let ScepChallenge::Fixed(f) = &self.scep_challenge {
            self.scep_challenge = ScepChallenge::Fixed(f.sealed(code_key));
        }
        self
    }

    /// The profile as the admin API returns it: the reference schema's shape, with the dynamic
    /// challenge's password and a fixed challenge masked.
    pub fn to_json(&self, reveal_secrets: bool) -> Value {
        let mask = |s: &str| if reveal_secrets { s.to_owned() } else { "********".to_owned() };
        let challenge = match &self.scep_challenge {
            ScepChallenge::None(_) => serde_json::json!({ "none": "" }),
            ScepChallenge::Fixed(f) => serde_json::json!({ "fixed": mask(&f.text()) }),
            ScepChallenge::Dynamic(d) => {
                let mut m = Map::new();
                if let Some(u) = &d.otp_server_url {
                    m.insert("otp_server_url".into(), u.clone().into());
                }
                if let Some(u) = &d.username {
                    m.insert("username".into(), u.clone().into());
                }
                if let Some(p) = &d.password {
                    m.insert("password".into(), mask(p).into());
                }
                serde_json::json!({ "dynamic": m })
            }
        };
        let mut out = serde_json::json!({
            "name": self.name,
            "scep_challenge": challenge,
            "ca_identity_name": self.ca_identity_name,
            "subject": self.subject,
            "algorithm": { "rsa": { "rsa_nbits": self.rsa_nbits } },
            "digest": self.digest.name(),
            "use_as_digital_signature": self.use_as_digital_signature,
            "use_for_key_encipherment": self.use_for_key_encipherment,
            "scep_url": self.scep_url,
            "renewal_window_days": self.renewal_window_days,
            "validity_days": self.validity_days,
            "manual_approval": self.manual_approval,
            "legacy": self.legacy,
            "seat_id_mapping": self.seat_id_mapping,
            "csr_names": self.csr_names.name(),
            "oaep_only": self.oaep_only,
        });
        let m = out.as_object_mut().expect("object literal");
        let (key, value) = match &self.container {
            Container::Folder(s) => ("folder", s),
            Container::Snippet(s) => ("snippet", s),
            Container::Device(s) => ("device", s),
        };
        m.insert(key.into(), value.clone().into());
        for (k, val) in [
            ("id", &self.id),
            ("fingerprint", &self.fingerprint),
            ("scep_ca_cert", &self.scep_ca_cert),
            ("scep_client_cert", &self.scep_client_cert),
        ] {
            if let Some(val) = val {
                m.insert(k.into(), val.clone().into());
            }
        }
        if let Some(attrs) = &self.certificate_attributes {
            m.insert("certificate_attributes".into(), serde_json::to_value(attrs).expect("plain enum"));
        }
        out
    }
}

#[derive(Default)]
struct Validator {
    issues: Vec<FieldIssue>,
}

impl Validator {
    fn fail(&mut self, path: &str, rule: &str) {
        self.issues.push(FieldIssue { path: path.to_owned(), rule: rule.to_owned() });
    }

    fn string(&mut self, obj: &Map<String, Value>, key: &str, required: bool, max: usize) -> Option<String> {
        self.string_at(obj.get(key), key, required, max)
    }

    fn string_at(&mut self, value: Option<&Value>, path: &str, required: bool, max: usize) -> Option<String> {
        match value {
            None | Some(Value::Null) if required => {
                self.fail(path, "is required");
                None
            }
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.chars().count() > max => {
                self.fail(path, &format!("must be at most {max} characters"));
                None
            }
            Some(Value::String(s)) if required && s.trim().is_empty() => {
                self.fail(path, "must not be empty");
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.fail(path, "must be a string");
                None
            }
        }
    }

    fn boolean(&mut self, obj: &Map<String, Value>, key: &str, default: bool) -> bool {
        match obj.get(key) {
            None | Some(Value::Null) => default,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                self.fail(key, "must be a boolean");
                default
            }
        }
    }

    fn integer(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        default: u32,
        range: core::ops::RangeInclusive<u32>,
    ) -> u32 {
        let n = match obj.get(key) {
            None | Some(Value::Null) => return default,
            Some(v) => v.as_u64().and_then(|n| u32::try_from(n).ok()),
        };
        match n {
            Some(n) if range.contains(&n) => n,
            _ => {
                self.fail(key, &format!("must be an integer from {} to {}", range.start(), range.end()));
                default
            }
        }
    }

    fn container(&mut self, obj: &Map<String, Value>) -> Option<Container> {
        let present: Vec<&str> = ["folder", "snippet", "device"].into_iter().filter(|k| obj.contains_key(*k)).collect();
        let [key] = present.as_slice() else {
            self.fail("folder", "exactly one of folder, snippet or device is required");
            return None;
        };
        let value = self.string(obj, key, true, 64)?;
        if !value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' ')) {
            self.fail(key, "must match ^[a-zA-Z\\d\\-_\\. ]+$");
            return None;
        }
        Some(match *key {
            "folder" => Container::Folder(value),
            "snippet" => Container::Snippet(value),
            _ => Container::Device(value),
        })
    }

    fn challenge(&mut self, obj: &Map<String, Value>) -> Option<ScepChallenge> {
        let Some(ch) = obj.get("scep_challenge") else {
            self.fail("scep_challenge", "is required");
            return None;
        };
        let Some(ch) = ch.as_object().filter(|m| m.len() == 1) else {
            self.fail("scep_challenge", "must be an object with exactly one of none, fixed, dynamic");
            return None;
        };
        let (kind, value) = ch.iter().next().expect("one entry");
        match kind.as_str() {
            "none" => match value.as_str() {
                Some("") => Some(ScepChallenge::None(String::new())),
                _ => {
                    self.fail("scep_challenge.none", "must be the empty string");
                    None
                }
            },
            "fixed" => self
                .string_at(Some(value), "scep_challenge.fixed", true, 1024)
                .map(|s| ScepChallenge::Fixed(FixedChallenge::parse(s))),
            "dynamic" => {
                let Some(d) = value.as_object() else {
                    self.fail("scep_challenge.dynamic", "must be an object");
                    return None;
                };
                let otp_server_url =
                    self.string_at(d.get("otp_server_url"), "scep_challenge.dynamic.otp_server_url", false, 255);
                let username = self.string_at(d.get("username"), "scep_challenge.dynamic.username", false, 255);
                let password = self.string_at(d.get("password"), "scep_challenge.dynamic.password", false, 255);
                Some(ScepChallenge::Dynamic(DynamicChallenge { otp_server_url, username, password }))
            }
            _ => {
                self.fail("scep_challenge", "must be an object with exactly one of none, fixed, dynamic");
                None
            }
        }
    }

    fn rsa_nbits(&mut self, obj: &Map<String, Value>, legacy: bool) -> u32 {
        const PATH: &str = "algorithm.rsa.rsa_nbits";
        let raw = obj.get("algorithm").and_then(|a| a.get("rsa")).and_then(|r| r.get("rsa_nbits"));
        // APIs send it as a number or as a string.
        let n = match raw {
            None => {
                self.fail(PATH, "is required");
                return 2048;
            }
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            Some(_) => None,
        };
        match n.and_then(|n| u32::try_from(n).ok()) {
            Some(n @ (2048 | 3072 | 4096)) => n,
            Some(1024) if legacy => 1024,
            Some(1024) => {
                self.fail(PATH, "1024 is only allowed on a legacy profile");
                2048
            }
            _ => {
                self.fail(PATH, "must be one of 2048, 3072, 4096 (1024 with legacy)");
                2048
            }
        }
    }

    fn digest(&mut self, obj: &Map<String, Value>, legacy: bool) -> DigestAlg {
        match obj.get("digest").and_then(Value::as_str).map(DigestAlg::from_name) {
            Some(Ok(d)) if d.is_legacy() && !legacy => {
                self.fail("digest", "sha1 is only allowed on a legacy profile");
                DigestAlg::Sha256
            }
            Some(Ok(d)) => d,
            None if !obj.contains_key("digest") => {
                self.fail("digest", "is required");
                DigestAlg::Sha256
            }
            _ => {
                self.fail("digest", "must be one of sha1, sha256, sha384, sha512");
                DigestAlg::Sha256
            }
        }
    }

    fn certificate_attributes(&mut self, obj: &Map<String, Value>) -> Option<CertificateAttributes> {
        const PATH: &str = "certificate_attributes";
        let value = obj.get(PATH).filter(|v| !v.is_null())?;
        let Some(m) = value.as_object().filter(|m| m.len() == 1) else {
            self.fail(PATH, "must be an object with exactly one of rfc822name, dnsname, uniform_resource_identifier");
            return None;
        };
        let (kind, v) = m.iter().next().expect("one entry");
        let s = self.string_at(Some(v), &format!("{PATH}.{kind}"), true, 1024)?;
        Some(match kind.as_str() {
            "rfc822name" => CertificateAttributes::Rfc822name(s),
            "dnsname" => CertificateAttributes::Dnsname(s),
            "uniform_resource_identifier" => CertificateAttributes::UniformResourceIdentifier(s),
            _ => {
                self.fail(PATH, "must be one of rfc822name, dnsname, uniform_resource_identifier");
                return None;
            }
        })
    }
}
