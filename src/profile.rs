//! The SCEP profile (`shared/spec/scep-profile.md`): how a device enrolls, validated the same way by the
//! Worker's admin API and by the page.
//!
//! The wire form is derived, both ways. [`ScepProfile`] serialises field for field as the reference schema
//! spells it: that is the form a store keeps ([`ScepProfile::sealed`]) and, with its secrets masked
//! ([`ScepProfile::masked`]), the admin API's view. Reading goes through `Received`: the same fields, each read
//! on its own, so that a field of the wrong type is an issue at its path and hides none of the others, and any
//! other key kept to be refused by name. `Received::validate` then applies every rule of the schema and collects
//! every failing field, as the `details` of one `E003 Invalid Object`.
//!
//! An update that sends a secret back as the view masked it (`********`) keeps the stored secret
//! ([`ScepProfile::update`]); the admin API does no merging of its own.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::{self, DeserializeOwned, Deserializer, Unexpected, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::algorithms::DigestAlg;
use crate::caps::normalize_fingerprint;
use crate::challenge_page::OneTimePasswords;
use crate::error::{FieldIssue, Result, ScepError};
use crate::names::{render_sans, render_subject, CsrNames};
use crate::registration_authority::{UpstreamChallenge, UpstreamConfig};
use crate::webhook::WebhookConfig;

/// A SCEP profile, field for field as the admin API sends and returns it.
///
/// | field | type | rule |
/// |---|---|---|
/// | `id` | string | assigned by the server, read-only |
/// | `name` | string | required, at most 31; a path segment (`/scep/<name>`): letters, digits, `-_.`, inner spaces |
/// | `folder` / `snippet` / `device` | string | exactly one; at most 64; `^[a-zA-Z\d\-_\. ]+$` |
/// | `scep_challenge` | object | required; exactly one of `none` (`""`), `fixed` (at most 1024), `dynamic` |
/// | `ca_identity_name` | string | required, at most 255 |
/// | `subject` | string | default `CN=$USERNAME`; must render to a distinguished name |
/// | `algorithm.rsa.rsa_nbits` | number or string | required; 2048, 3072, 4096 (1024 on a legacy profile) |
/// | `digest` | string | required; sha1 (legacy only), sha256, sha384 (`sha348` read as sha384), sha512 |
/// | `fingerprint` | string | optional; SHA-256 or SHA-1 hex, colons allowed |
/// | `certificate_attributes` | object | optional; exactly one of `rfc822name`, `dnsname`, `uniform_resource_identifier` |
/// | `use_as_digital_signature` / `use_for_key_encipherment` | bool | default true |
/// | `scep_url` | string | required; an http(s) URL or a path on this service |
/// | `scep_ca_cert` / `scep_client_cert` | string | optional, at most 255 |
///
/// scepkit's extensions, each optional with a safe default: `validity_days`, `renewal_window_days`,
/// `manual_approval`, `legacy`, `seat_id_mapping`, `csr_names`, `oaep_only`, `webhook` ([`WebhookConfig`]: its
/// `secret` is masked like the challenge's), `one_time_passwords` ([`OneTimePasswords`], dynamic challenge
/// only), `upstream` ([`UpstreamConfig`]: RA mode, certificates issued by an existing CA; its page password
/// masked). Any other field is refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Received")]
pub struct ScepProfile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    #[serde(flatten)]
    pub container: Container,
    pub scep_challenge: ScepChallenge,
    pub ca_identity_name: String,
    pub subject: String,
    #[serde(rename = "algorithm", serialize_with = "write_algorithm")]
    pub rsa_nbits: u32,
    pub digest: DigestAlg,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_attributes: Option<CertificateAttributes>,
    pub use_as_digital_signature: bool,
    pub use_for_key_encipherment: bool,
    pub scep_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scep_ca_cert: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
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
    /// A service that must allow each enrollment (and, in `challenge` mode, decides the challenge).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookConfig>,
    /// How the one-time passwords of the NDES-style page behave (their lifetime, whether they create seats).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub one_time_passwords: Option<OneTimePasswords>,
    /// RA mode: an existing SCEP CA issues, after the edge's own checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<UpstreamConfig>,
}

/// Where the profile lives: exactly one of folder, snippet, device (flattened into the profile object).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Container {
    Folder(String),
    Snippet(String),
    Device(String),
}

/// How the server reads the CSR's challengePassword: `{ "none": "" }`, `{ "fixed": "..." }` or
/// `{ "dynamic": { ... } }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScepChallenge {
    /// No challenge (the empty string in the reference schema).
    None(String),
    /// One shared challenge for every seat of the profile.
    Fixed(Secret),
    /// Per-seat one-time enrollment codes handed out by an OTP server (this service's `/api/v1/enrollments`).
    Dynamic(DynamicChallenge),
}

/// A secret of the profile the server only ever compares (the fixed challenge, the dynamic challenge's page
/// password): as the admin API receives it, or as the store keeps it (a MAC under the server's key, written
/// `hmac-sha256:<hex>`, so a copy of the database does not give it away). On the wire it is one string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum Secret {
    Plain(String),
    Mac(String),
}

/// The dynamic challenge's OTP server and the credentials for it; `password` is never shown back. This service
/// is an OTP server too: with `username` and `password` set, its NDES-style page
/// ([`crate::challenge_page`]) hands out one-time challenge passwords to whoever signs in with them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an object with any of otp_server_url, username, password")]
pub struct DynamicChallenge {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otp_server_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
}

/// The SAN a profile puts in the certificate: its type and a value or `$VAR` template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateAttributes {
    Rfc822name(String),
    Dnsname(String),
    UniformResourceIdentifier(String),
}

/// What the admin API shows in place of a secret. Sent back unchanged in an update, it keeps the stored secret;
/// it is never a secret itself.
pub const MASK: &str = "********";
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
    /// Reads and validates a profile object (a stored one, or one to check), collecting every failing field.
    pub fn from_json(value: &Value) -> Result<Self> {
        Received::from_json(value)?.validate()
    }

    /// A new profile from the admin API, in the form the store keeps. A secret sent as the mask is refused: there
    /// is no stored one to keep.
    pub fn create(incoming: &Value, code_key: &[u8]) -> Result<Self> {
        let mut received = Received::from_json(incoming)?;
        received.keep_masked_secrets(None, None);
        received.keep_masked_upstream(None);
        Ok(received.validate()?.sealed(code_key))
    }

    /// The administrator's replacement of `stored` (as the store keeps it), in the form the store keeps. A secret
    /// sent back as the view masked it (`scep_challenge.fixed`, `scep_challenge.dynamic.password`) keeps the
    /// stored one; any other value replaces it. The id stays the stored one.
    pub fn update(stored: &ScepProfile, incoming: &Value, code_key: &[u8]) -> Result<Self> {
        let mut received = Received::from_json(incoming)?;
        received.keep_masked_secrets(Some(&stored.scep_challenge), stored.webhook.as_ref());
        received.keep_masked_upstream(stored.upstream.as_ref());
        let profile = received.validate()?;
        Ok(Self { id: stored.id.clone(), ..profile }.sealed(code_key))
    }

    /// The form the store keeps: a fixed challenge and the dynamic challenge's password become their MACs
    /// under `code_key`.
    pub fn sealed(mut self, code_key: &[u8]) -> Self {
        match &mut self.scep_challenge {
            ScepChallenge::Fixed(f) => *f = f.sealed(code_key),
            ScepChallenge::Dynamic(DynamicChallenge { password: Some(p), .. }) => *p = p.sealed(code_key),
            ScepChallenge::Dynamic(_) | ScepChallenge::None(_) => {}
        }
        self
    }

    /// The profile as the admin API shows it: a fixed challenge and the dynamic challenge's password masked.
    pub fn masked(&self) -> Self {
        let mut view = self.clone();
        match &mut view.scep_challenge {
            ScepChallenge::Fixed(f) => *f = Secret::Plain(MASK.to_owned()),
            ScepChallenge::Dynamic(DynamicChallenge { password: Some(p), .. }) => *p = Secret::Plain(MASK.to_owned()),
            ScepChallenge::Dynamic(_) | ScepChallenge::None(_) => {}
        }
        if let Some(hook) = &mut view.webhook {
            hook.secret = MASK.to_owned();
        }
        if let Some(UpstreamConfig { challenge: UpstreamChallenge::Dynamic(page), .. }) = &mut view.upstream {
            page.password = MASK.to_owned();
        }
        view
    }

    /// The admin API's view for a service at `origin` (`https://host`): [masked](Self::masked), and a dynamic
    /// challenge without an `otp_server_url` reports this service's own one-time challenge page for the profile.
    pub fn view(&self, origin: &str) -> Self {
        let mut view = self.masked();
        // A dynamic upstream's codes come from its page, not from this service's.
        let upstream_page =
            matches!(&self.upstream, Some(UpstreamConfig { challenge: UpstreamChallenge::Dynamic(_), .. }));
        if let (ScepChallenge::Dynamic(d), false) = (&mut view.scep_challenge, upstream_page) {
            if d.otp_server_url.is_none() {
                d.otp_server_url = Some(crate::challenge_page::page_url(origin, &self.name));
            }
        }
        view
    }

    /// The settings of the one-time challenge passwords (the defaults when the profile names none).
    pub fn one_time_passwords(&self) -> OneTimePasswords {
        self.one_time_passwords.clone().unwrap_or_default()
    }

    /// The algorithms the profile accepts: its `legacy` switch, converted here once.
    pub fn algorithm_policy(&self) -> crate::algorithms::AlgorithmPolicy {
        crate::algorithms::AlgorithmPolicy::from_legacy_switch(self.legacy)
    }

    /// The profile object: the stored form with `reveal_secrets`, else the admin API's [masked](Self::masked) view.
    pub fn to_json(&self, reveal_secrets: bool) -> Value {
        let view = if reveal_secrets { Cow::Borrowed(self) } else { Cow::Owned(self.masked()) };
        serde_json::to_value(view.as_ref()).expect("a profile is a JSON object with string keys")
    }
}

impl TryFrom<Received> for ScepProfile {
    type Error = ScepError;

    fn try_from(received: Received) -> Result<Self> {
        received.validate()
    }
}

const FIXED_MAC_PREFIX: &str = "hmac-sha256:";

impl Secret {
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

    fn is_mask(&self) -> bool {
        matches!(self, Self::Plain(s) if s == MASK)
    }
}

/// The wire form is one string: `hmac-sha256:<64 lowercase hex>` is a sealed challenge, anything else plain.
impl From<String> for Secret {
    fn from(s: String) -> Self {
        match s.strip_prefix(FIXED_MAC_PREFIX) {
            Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) => {
                Self::Mac(hex.to_owned())
            }
            _ => Self::Plain(s),
        }
    }
}

impl From<Secret> for String {
    fn from(f: Secret) -> Self {
        match f {
            Secret::Plain(s) => s,
            Secret::Mac(m) => format!("{FIXED_MAC_PREFIX}{m}"),
        }
    }
}

/// HMAC-SHA-256 of a fixed challenge, hex; domain-separated from enrollment codes, and exact (no case folding).
fn fixed_challenge_mac(key: &[u8], secret: &str) -> String {
    crate::policy::mac_hex(key, &[b"scepkit fixed challenge\0", secret.as_bytes()])
}

/// `algorithm: { rsa: { rsa_nbits } }`: the reference schema nests the key size. Read with [`RsaBits`], written
/// as a number.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an object with rsa.rsa_nbits")]
struct Algorithm<N> {
    rsa: Rsa<N>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an object with rsa_nbits")]
struct Rsa<N> {
    rsa_nbits: N,
}

fn write_algorithm<S: Serializer>(rsa_nbits: &u32, serializer: S) -> core::result::Result<S::Ok, S::Error> {
    Algorithm { rsa: Rsa { rsa_nbits } }.serialize(serializer)
}

const RSA_NBITS: &str = "algorithm.rsa.rsa_nbits";
const RSA_NBITS_RULE: &str = "must be one of 2048, 3072, 4096 (1024 with legacy)";

/// `rsa_nbits` as APIs send it: a number, or the same number as a string.
struct RsaBits(u32);

impl<'de> Deserialize<'de> for RsaBits {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> core::result::Result<Self, D::Error> {
        struct Bits;
        impl Visitor<'_> for Bits {
            type Value = RsaBits;

            fn expecting(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
                f.write_str(RSA_NBITS_RULE.trim_start_matches("must be "))
            }

            fn visit_u64<E: de::Error>(self, n: u64) -> core::result::Result<RsaBits, E> {
                u32::try_from(n).map(RsaBits).map_err(|_| E::invalid_value(Unexpected::Unsigned(n), &self))
            }

            fn visit_str<E: de::Error>(self, s: &str) -> core::result::Result<RsaBits, E> {
                s.trim().parse().map(RsaBits).map_err(|_| E::invalid_value(Unexpected::Str(s), &self))
            }
        }
        deserializer.deserialize_any(Bits)
    }
}

/// A profile object as it arrives: each field of the schema read on its own, and every other key kept, to be
/// refused by name. Reading it fails only when the input is not an object.
#[derive(Default, Deserialize)]
#[serde(default)]
struct Received {
    id: Field<String>,
    name: Field<String>,
    folder: Field<String>,
    snippet: Field<String>,
    device: Field<String>,
    scep_challenge: Field<ScepChallenge>,
    ca_identity_name: Field<String>,
    subject: Field<String>,
    algorithm: Field<Algorithm<RsaBits>>,
    digest: Field<String>,
    fingerprint: Field<String>,
    certificate_attributes: Field<CertificateAttributes>,
    use_as_digital_signature: Field<bool>,
    use_for_key_encipherment: Field<bool>,
    scep_url: Field<String>,
    scep_ca_cert: Field<String>,
    scep_client_cert: Field<String>,
    renewal_window_days: Field<u32>,
    validity_days: Field<u32>,
    manual_approval: Field<bool>,
    legacy: Field<bool>,
    seat_id_mapping: Field<String>,
    csr_names: Field<CsrNames>,
    oaep_only: Field<bool>,
    webhook: Field<WebhookConfig>,
    one_time_passwords: Field<OneTimePasswords>,
    upstream: Field<UpstreamConfig>,
    #[serde(flatten)]
    unknown: BTreeMap<String, Value>,
}

impl Received {
    fn from_json(value: &Value) -> Result<Self> {
        let not_object = || ScepError::invalid_object(vec![issue("$", "must be a JSON object")]);
        if !value.is_object() {
            return Err(not_object());
        }
        Self::deserialize(value).map_err(|_| not_object())
    }

    /// A secret sent as the mask becomes the one `stored` has; with none to keep, the mask is refused.
    fn keep_masked_secrets(&mut self, stored: Option<&ScepChallenge>, stored_webhook: Option<&WebhookConfig>) {
        const NOTHING_TO_KEEP: &str = "is the mask of a secret, and there is no stored secret to keep: send the secret";
        if let Field::Given(hook) = &mut self.webhook {
            if hook.secret == MASK {
                match stored_webhook {
                    Some(kept) => hook.secret = kept.secret.clone(),
                    None => self.webhook = Field::Wrong { at: ".secret".to_owned(), rule: NOTHING_TO_KEEP.to_owned() },
                }
            }
        }
        let Field::Given(challenge) = &mut self.scep_challenge else { return };
        let unkept = match (challenge, stored) {
            (ScepChallenge::Fixed(f), Some(ScepChallenge::Fixed(kept))) if f.is_mask() => {
                *f = kept.clone();
                None
            }
            (ScepChallenge::Fixed(f), _) if f.is_mask() => Some(".fixed"),
            (ScepChallenge::Dynamic(d), stored) if d.password.as_ref().is_some_and(Secret::is_mask) => match stored {
                Some(ScepChallenge::Dynamic(DynamicChallenge { password: Some(kept), .. })) => {
                    d.password = Some(kept.clone());
                    None
                }
                _ => Some(".dynamic.password"),
            },
            _ => None,
        };
        if let Some(at) = unkept {
            self.scep_challenge = Field::Wrong { at: at.to_owned(), rule: NOTHING_TO_KEEP.to_owned() };
        }
    }

    /// The upstream page's password sent as the mask becomes the stored one; with none to keep, it is refused.
    fn keep_masked_upstream(&mut self, stored: Option<&UpstreamConfig>) {
        let Field::Given(UpstreamConfig { challenge: UpstreamChallenge::Dynamic(page), .. }) = &mut self.upstream
        else {
            return;
        };
        if page.password != MASK {
            return;
        }
        // The password goes in clear (HTTP Basic) to the page: it is kept only for the same page and user, so
        // that pointing the profile elsewhere cannot send it there.
        match stored {
            Some(UpstreamConfig { challenge: UpstreamChallenge::Dynamic(kept), .. })
                if kept.otp_server_url == page.otp_server_url && kept.username == page.username =>
            {
                page.password = kept.password.clone()
            }
            Some(UpstreamConfig { challenge: UpstreamChallenge::Dynamic(_), .. }) => {
                self.upstream = Field::Wrong {
                    at: ".challenge.dynamic.password".to_owned(),
                    rule: "is the mask of the stored password, which is kept only for the same otp_server_url and \
                           username: send the password again"
                        .to_owned(),
                }
            }
            _ => {
                self.upstream = Field::Wrong {
                    at: ".challenge.dynamic.password".to_owned(),
                    rule: "is the mask of a secret, and there is no stored secret to keep: send the secret".to_owned(),
                }
            }
        }
    }

    /// Every rule of the schema, each failing field an issue with its path; the profile when there is none.
    fn validate(self) -> Result<ScepProfile> {
        let mut v = Issues::default();
        let id = self.id.read("id", &mut v);

        // A name is a path segment (/scep/<name>) and a CSV cell: nothing that could escape either.
        let name = v.required_text("name", self.name, 31);
        let name = v.rule("name", name, |n| is_profile_name(n), "must be ASCII letters, digits, '-', '_', '.' and inner spaces, with a letter or digit (no '..', no leading or trailing space)");

        let container = v.container([("folder", self.folder), ("snippet", self.snippet), ("device", self.device)]);

        let scep_challenge = self
            .scep_challenge
            .must_be("must be an object with exactly one of none, fixed, dynamic")
            .require("scep_challenge", &mut v);
        let scep_challenge = scep_challenge.and_then(|c| v.challenge(c));

        let ca_identity_name = v.required_text("ca_identity_name", self.ca_identity_name, 255);

        let subject = self.subject.or(DEFAULT_SUBJECT.to_owned()).read("subject", &mut v);
        let subject = v.text("subject", subject, 1024);
        // The templates must render for an ordinary seat id, to a distinguished name and a SAN.
        let subject = v.check("subject", subject, |s| {
            render_subject(s, "seat-1")
                .map(drop)
                .map_err(|e| format!("must be an RFC 4514 name template such as CN=$USERNAME,O=Example: {}", e.message))
        });

        let legacy = self.legacy.or(false).read("legacy", &mut v);
        let rsa_nbits = match self.algorithm {
            Field::Absent => v.missing(RSA_NBITS),
            algorithm => algorithm.read("algorithm", &mut v).map(|a| a.rsa.rsa_nbits.0),
        };
        let rsa_nbits = v.check(RSA_NBITS, rsa_nbits, |n| match n {
            2048 | 3072 | 4096 => Ok(()),
            1024 if legacy != Some(false) => Ok(()),
            1024 => Err("1024 is only allowed on a legacy profile".to_owned()),
            _ => Err(RSA_NBITS_RULE.to_owned()),
        });

        const DIGEST_RULE: &str = "must be one of sha1, sha256, sha384, sha512";
        let digest = self.digest.must_be(DIGEST_RULE).require("digest", &mut v);
        let digest = digest.and_then(|d| match DigestAlg::from_name(&d) {
            Ok(d) if d.is_legacy() && legacy == Some(false) => {
                v.fail("digest", "sha1 is only allowed on a legacy profile")
            }
            Ok(d) => Some(d),
            Err(_) => v.fail("digest", DIGEST_RULE),
        });

        let fingerprint = self.fingerprint.read("fingerprint", &mut v);
        let fingerprint = v.text("fingerprint", fingerprint, 200);
        let fingerprint = v.rule(
            "fingerprint",
            fingerprint,
            |f| normalize_fingerprint(f).is_some(),
            "must be a SHA-256 (64 hex digits) or SHA-1 (40 hex digits) fingerprint, colons allowed",
        );

        const ATTRIBUTES: &str = "certificate_attributes";
        let certificate_attributes = self
            .certificate_attributes
            .must_be("must be an object with exactly one of rfc822name, dnsname, uniform_resource_identifier")
            .read(ATTRIBUTES, &mut v);
        let certificate_attributes = certificate_attributes.and_then(|a| v.attributes(a));
        let certificate_attributes = v.check(ATTRIBUTES, certificate_attributes, |a| {
            render_sans(Some(a), "seat-1").map(drop).map_err(|e| format!("must render for a seat: {}", e.message))
        });

        let use_as_digital_signature = self.use_as_digital_signature.or(true).read("use_as_digital_signature", &mut v);
        let use_for_key_encipherment = self.use_for_key_encipherment.or(true).read("use_for_key_encipherment", &mut v);

        let scep_url = v.required_text("scep_url", self.scep_url, 1024);
        let scep_url = v.rule(
            "scep_url",
            scep_url,
            |u| ["http://", "https://", "/"].iter().any(|p| u.starts_with(p)),
            "must be an http(s) URL or a path on this service",
        );
        let scep_ca_cert = self.scep_ca_cert.read("scep_ca_cert", &mut v);
        let scep_ca_cert = v.text("scep_ca_cert", scep_ca_cert, 255);
        let scep_client_cert = self.scep_client_cert.read("scep_client_cert", &mut v);
        let scep_client_cert = v.text("scep_client_cert", scep_client_cert, 255);

        let renewal_window_days = v.days("renewal_window_days", self.renewal_window_days.or(30), 0..=3650);
        let validity_days = v.days("validity_days", self.validity_days.or(365), 1..=3650);
        // A window as long as the validity means "renew at any time" (micromdm's -allowrenew 0).
        if let (Some(window), Some(validity)) = (renewal_window_days, validity_days) {
            if window > validity {
                v.fail::<()>("renewal_window_days", "must not be longer than validity_days");
            }
        }
        let manual_approval = self.manual_approval.or(false).read("manual_approval", &mut v);

        let seat_id_mapping =
            self.seat_id_mapping.or(DEFAULT_SEAT_ID_MAPPING.to_owned()).read("seat_id_mapping", &mut v);
        let seat_id_mapping = v.text("seat_id_mapping", seat_id_mapping, 64);
        let seat_id_mapping = v.rule(
            "seat_id_mapping",
            seat_id_mapping,
            |m| SEAT_ID_MAPPINGS.contains(&m.as_str()),
            &format!("must be one of {}", SEAT_ID_MAPPINGS.join(", ")),
        );
        let csr_names =
            self.csr_names.must_be("must be match or replace").or(CsrNames::default()).read("csr_names", &mut v);
        let oaep_only = self.oaep_only.or(false).read("oaep_only", &mut v);
        let webhook = self
            .webhook
            .must_be("must be an object with url, secret, mode (challenge or approve) and optionally timeout_ms")
            .read("webhook", &mut v);
        let webhook = webhook.filter(|hook| {
            let issues = hook.issues();
            let fine = issues.is_empty();
            v.0.extend(issues);
            fine
        });

        let one_time_passwords = self
            .one_time_passwords
            .must_be("must be an object with lifetime_minutes and create_seats")
            .read("one_time_passwords", &mut v);
        let one_time_passwords = v.check("one_time_passwords", one_time_passwords, |o| {
            if !matches!(scep_challenge, Some(ScepChallenge::Dynamic(_)) | None) {
                return Err("only applies to a dynamic scep_challenge".to_owned());
            }
            o.check()
        });

        let upstream = self
            .upstream
            .must_be("must be an object with scep_url, fingerprint and optionally challenge (none, fixed or { dynamic: { otp_server_url, username, password } }), cipher, digest, legacy, timeout_ms")
            .read("upstream", &mut v);
        let upstream = upstream.filter(|upstream| {
            let mut issues = upstream.issues();
            // The upstream issues what the CSR asks for: only a CSR that asks for exactly the rendered names passes.
            if csr_names == Some(CsrNames::Replace) {
                issues.push(issue("csr_names", "must be match with an upstream: the upstream CA issues the CSR's names"));
            }
            if manual_approval == Some(true) {
                issues.push(issue("manual_approval", "must be false with an upstream: a PENDING from the upstream CA is relayed to the device"));
            }
            match (&upstream.challenge, &scep_challenge) {
                (UpstreamChallenge::Fixed, Some(c)) if !matches!(c, ScepChallenge::Fixed(_)) => issues.push(issue(
                    "scep_challenge",
                    "must be fixed (the upstream's shared challenge) when upstream.challenge is fixed",
                )),
                (UpstreamChallenge::Dynamic(_), Some(c))
                    if !matches!(c, ScepChallenge::Dynamic(DynamicChallenge { username: None, password: None, .. })) =>
                {
                    issues.push(issue(
                        "scep_challenge",
                        "must be dynamic without username and password when upstream.challenge is dynamic: each enrollment code is a one-time password of the upstream's page, not of this service's",
                    ))
                }
                _ => {}
            }
            let fine = issues.is_empty();
            v.0.extend(issues);
            fine
        });

        for key in self.unknown.keys() {
            v.fail::<()>(key, "is not a field of a SCEP profile");
        }
        if !v.0.is_empty() {
            return Err(ScepError::invalid_object(v.0));
        }
        // Every field that is None here left an issue above.
        const CHECKED: &str = "validated above";
        Ok(ScepProfile {
            id,
            name: name.expect(CHECKED),
            container: container.expect(CHECKED),
            scep_challenge: scep_challenge.expect(CHECKED),
            ca_identity_name: ca_identity_name.expect(CHECKED),
            subject: subject.expect(CHECKED),
            rsa_nbits: rsa_nbits.expect(CHECKED),
            digest: digest.expect(CHECKED),
            fingerprint,
            certificate_attributes,
            use_as_digital_signature: use_as_digital_signature.expect(CHECKED),
            use_for_key_encipherment: use_for_key_encipherment.expect(CHECKED),
            scep_url: scep_url.expect(CHECKED),
            scep_ca_cert,
            scep_client_cert,
            renewal_window_days: renewal_window_days.expect(CHECKED),
            validity_days: validity_days.expect(CHECKED),
            manual_approval: manual_approval.expect(CHECKED),
            legacy: legacy.expect(CHECKED),
            seat_id_mapping: seat_id_mapping.expect(CHECKED),
            csr_names: csr_names.expect(CHECKED),
            oaep_only: oaep_only.expect(CHECKED),
            webhook,
            one_time_passwords,
            upstream,
        })
    }
}

fn is_profile_name(name: &str) -> bool {
    name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '))
        && name.chars().any(|c| c.is_ascii_alphanumeric())
        && !name.contains("..")
        && name.trim() == name
}

/// One field of a received profile.
#[derive(Default)]
enum Field<T> {
    /// Not sent, or sent as null.
    #[default]
    Absent,
    Given(T),
    /// Not of the field's type: where inside the field (`""` for the field itself, else `.key...`), and what it
    /// must be.
    Wrong {
        at: String,
        rule: String,
    },
}

/// Never fails: a value of the wrong type is kept as [`Field::Wrong`], so the other fields are still read.
impl<'de, T: DeserializeOwned> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> core::result::Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        if value.is_null() {
            return Ok(Self::Absent);
        }
        Ok(match serde_path_to_error::deserialize(value) {
            Ok(v) => Self::Given(v),
            Err(e) => {
                let (at, rule) = type_issue(&e);
                Self::Wrong { at, rule }
            }
        })
    }
}

/// serde's account of a value of the wrong type (`invalid type: integer `5`, expected a string`, at `dynamic`)
/// as a rule at a path inside the field (`.dynamic`, `must be a string`).
fn type_issue(e: &serde_path_to_error::Error<serde_json::Error>) -> (String, String) {
    use serde_path_to_error::Segment;
    let message = e.inner().to_string();
    let mut segments: Vec<String> = e
        .path()
        .iter()
        .filter_map(|segment| match segment {
            Segment::Map { key } => Some(key.clone()),
            Segment::Enum { variant } => Some(variant.clone()),
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Unknown => None,
        })
        .collect();
    // A bare string where an object of one key belongs (`"none"` for `{ "none": "" }`) is the field's own shape.
    if message.starts_with("invalid type: unit variant") {
        segments.pop();
    }
    let mut at: String = segments.iter().map(|s| format!(".{s}")).collect();
    let quoted = |prefix: &str| message.strip_prefix(prefix).and_then(|rest| rest.split('`').next()).map(str::to_owned);
    let rule = if let Some(field) = quoted("missing field `") {
        at += &format!(".{field}");
        "is required".to_owned()
    } else if let Some(field) = quoted("unknown field `") {
        // The path already ends with the key when it was read before being refused.
        if !at.ends_with(&format!(".{field}")) {
            at += &format!(".{field}");
        }
        "is not a field of a SCEP profile".to_owned()
    } else if let Some((_, expected)) = message.split_once(", expected ") {
        format!("must be {}", expected.replace('`', ""))
    } else {
        message
    };
    (at, rule)
}

impl<T> Field<T> {
    /// Says what the field must be when its value is not of its type at all (serde's own wording names Rust
    /// types). Issues inside the field keep theirs.
    fn must_be(self, rule: &str) -> Self {
        match self {
            Self::Wrong { at, .. } if at.is_empty() => Self::Wrong { at, rule: rule.to_owned() },
            other => other,
        }
    }

    /// The value when the field is absent.
    fn or(self, default: T) -> Self {
        match self {
            Self::Absent => Self::Given(default),
            other => other,
        }
    }

    /// The value, if any; a value of the wrong type is an issue at `path`.
    fn read(self, path: &str, issues: &mut Issues) -> Option<T> {
        match self {
            Self::Absent => None,
            Self::Given(value) => Some(value),
            Self::Wrong { at, rule } => issues.fail(&format!("{path}{at}"), &rule),
        }
    }

    /// As [`read`](Self::read), and an absent field is an issue too.
    fn require(self, path: &str, issues: &mut Issues) -> Option<T> {
        match self {
            Self::Absent => issues.missing(path),
            other => other.read(path, issues),
        }
    }
}

/// The failing fields found so far.
#[derive(Default)]
struct Issues(Vec<FieldIssue>);

fn issue(path: &str, rule: &str) -> FieldIssue {
    FieldIssue { path: path.to_owned(), rule: rule.to_owned() }
}

impl Issues {
    /// Notes an issue; `None`, for the field's value.
    fn fail<T>(&mut self, path: &str, rule: &str) -> Option<T> {
        self.0.push(issue(path, rule));
        None
    }

    fn missing<T>(&mut self, path: &str) -> Option<T> {
        self.fail(path, "is required")
    }

    /// `value` if `check` passes, else the issue it names.
    fn check<T>(
        &mut self,
        path: &str,
        value: Option<T>,
        check: impl FnOnce(&T) -> core::result::Result<(), String>,
    ) -> Option<T> {
        let value = value?;
        match check(&value) {
            Ok(()) => Some(value),
            Err(rule) => self.fail(path, &rule),
        }
    }

    /// `value` if it keeps `rule`.
    fn rule<T>(&mut self, path: &str, value: Option<T>, keeps: impl FnOnce(&T) -> bool, rule: &str) -> Option<T> {
        self.check(path, value, |v| if keeps(v) { Ok(()) } else { Err(rule.to_owned()) })
    }

    /// A string of at most `max` characters.
    fn text(&mut self, path: &str, value: Option<String>, max: usize) -> Option<String> {
        self.rule(path, value, |s| s.chars().count() <= max, &format!("must be at most {max} characters"))
    }

    /// A required string of at most `max` characters, not blank.
    fn required_text(&mut self, path: &str, field: Field<String>, max: usize) -> Option<String> {
        let value = field.require(path, self);
        let value = self.text(path, value, max);
        self.rule(path, value, |s| !s.trim().is_empty(), "must not be empty")
    }

    fn days(&mut self, path: &str, field: Field<u32>, range: core::ops::RangeInclusive<u32>) -> Option<u32> {
        let rule = format!("must be an integer from {} to {}", range.start(), range.end());
        let value = field.must_be(&rule).read(path, self);
        self.rule(path, value, |n| range.contains(n), &rule)
    }

    /// Exactly one of folder, snippet and device, named as the schema says.
    fn container(&mut self, fields: [(&str, Field<String>); 3]) -> Option<Container> {
        let mut given = fields.into_iter().filter(|(_, f)| !matches!(f, Field::Absent));
        let (Some((key, field)), None) = (given.next(), given.next()) else {
            return self.fail("folder", "exactly one of folder, snippet or device is required");
        };
        let value = self.required_text(key, field, 64);
        let value = self.rule(
            key,
            value,
            |s| s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' ')),
            "must match ^[a-zA-Z\\d\\-_\\. ]+$",
        )?;
        Some(match key {
            "folder" => Container::Folder(value),
            "snippet" => Container::Snippet(value),
            _ => Container::Device(value),
        })
    }

    fn challenge(&mut self, challenge: ScepChallenge) -> Option<ScepChallenge> {
        match challenge {
            ScepChallenge::None(s) if !s.is_empty() => self.fail("scep_challenge.none", "must be the empty string"),
            ScepChallenge::Fixed(f) => {
                let text = self.required_text("scep_challenge.fixed", Field::Given(String::from(f)), 1024)?;
                Some(ScepChallenge::Fixed(Secret::from(text)))
            }
            ScepChallenge::Dynamic(d) => {
                const AT: &str = "scep_challenge.dynamic";
                let otp_server_url = self.text(&format!("{AT}.otp_server_url"), d.otp_server_url, 255);
                let username = self.text(&format!("{AT}.username"), d.username, 255);
                let password = self.text(&format!("{AT}.password"), d.password.map(String::from), 255);
                // Credentials come in pairs and are never empty; for this service's own challenge page (no other
                // OTP server named) the password must also resist guessing.
                match (&username, &password) {
                    (Some(_), None) => self.fail::<()>(&format!("{AT}.password"), "is required with a username"),
                    (None, Some(_)) => self.fail::<()>(&format!("{AT}.username"), "is required with a password"),
                    (Some(u), _) if u.is_empty() => self.fail::<()>(&format!("{AT}.username"), "must not be empty"),
                    (_, Some(p)) if p.is_empty() => self.fail::<()>(&format!("{AT}.password"), "must not be empty"),
                    (_, Some(p))
                        if otp_server_url.is_none()
                            && matches!(Secret::from(p.clone()), Secret::Plain(_))
                            && p != MASK
                            && p.chars().count() < crate::challenge_page::MIN_PAGE_PASSWORD =>
                    {
                        self.fail::<()>(
                            &format!("{AT}.password"),
                            &format!(
                                "must be at least {} characters: it opens this service's one-time challenge page",
                                crate::challenge_page::MIN_PAGE_PASSWORD
                            ),
                        )
                    }
                    _ => None,
                };
                Some(ScepChallenge::Dynamic(DynamicChallenge {
                    otp_server_url,
                    username,
                    password: password.map(Secret::from),
                }))
            }
            none => Some(none),
        }
    }

    fn attributes(&mut self, attributes: CertificateAttributes) -> Option<CertificateAttributes> {
        use CertificateAttributes::*;
        let (kind, value, make): (&str, String, fn(String) -> CertificateAttributes) = match attributes {
            Rfc822name(s) => ("rfc822name", s, Rfc822name),
            Dnsname(s) => ("dnsname", s, Dnsname),
            UniformResourceIdentifier(s) => ("uniform_resource_identifier", s, UniformResourceIdentifier),
        };
        self.required_text(&format!("certificate_attributes.{kind}"), Field::Given(value), 1024).map(make)
    }
}
