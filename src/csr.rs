//! PKCS#10 certification requests (RFC 2986) as SCEP carries them (RFC 8894 §3.3.1): built by the client from
//! a profile, read by the server as facts.
//!
//! ```text
//! CertificationRequestInfo ::= SEQUENCE {
//!   version INTEGER { v1(0) },
//!   subject Name,
//!   subjectPKInfo SubjectPublicKeyInfo{{ PKInfoAlgorithms }},
//!   attributes [0] Attributes{{ CRIAttributes }} }
//! challengePassword ATTRIBUTE ::= { WITH SYNTAX DirectoryString {pkcs-9-ub-challengePassword}
//!                                   ID pkcs-9-at-challengePassword }   -- 1.2.840.113549.1.9.7
//! extensionRequest ATTRIBUTE ::= { WITH SYNTAX ExtensionRequest ID pkcs-9-at-extensionRequest } -- 1.2.840.113549.1.9.14
//! ```

use core::str::FromStr;
use std::net::IpAddr;

use const_oid::db::rfc5280;
use const_oid::AssociatedOid;
use der::asn1::{
    Any, BitString, Ia5String, ObjectIdentifier, OctetString, PrintableStringRef, SetOfVec, Utf8StringRef,
};
use der::{Decode, Encode};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{KeyUsage, KeyUsages, SubjectAltName};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, ExtensionReq, Version};

use crate::algorithms::DigestAlg;
use crate::error::{Result, ScepError};
use crate::keys::{self, PrivateKeyOps, Unsigned};
#[cfg(feature = "server")]
use crate::profile::{CertificateAttributes, ScepProfile};
use crate::wire::{single_valued, CertReqAsSent, CertReqInfoAsSent};

pub const ID_CHALLENGE_PASSWORD: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.7");

/// A subjectAltName entry, written `dns:host`, `email:a@b`, `uri:https://..` or `ip:10.0.0.1`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum San {
    Dns(String),
    Email(String),
    Uri(String),
    Ip(String),
}

// How a [`San`] crosses to JS: as the one string it is written as.
#[cfg(feature = "wasm")]
#[wasm_bindgen::prelude::wasm_bindgen(typescript_custom_section)]
const SAN_TYPE: &str = "/** A subjectAltName entry: `dns:host`, `email:a@b`, `uri:https://…` or `ip:10.0.0.1`. */\nexport type San = string;";

impl FromStr for San {
    type Err = ScepError;
    fn from_str(s: &str) -> Result<Self> {
        let (kind, value) = s
            .split_once(':')
            .ok_or_else(|| ScepError::invalid_input(format!("SAN {s:?}: write dns:, email:, uri: or ip:")))?;
        let value = value.to_owned();
        match kind.to_ascii_lowercase().as_str() {
            "dns" => Ok(Self::Dns(value)),
            "email" | "rfc822" => Ok(Self::Email(value)),
            "uri" => Ok(Self::Uri(value)),
            "ip" => value
                .parse::<IpAddr>()
                .map(|_| Self::Ip(value))
                .map_err(|_| ScepError::invalid_input(format!("{s:?} is not an IP address"))),
            _ => Err(ScepError::invalid_input(format!("SAN {s:?}: write dns:, email:, uri: or ip:"))),
        }
    }
}

impl TryFrom<String> for San {
    type Error = ScepError;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<San> for String {
    fn from(san: San) -> String {
        let kind = match san {
            San::Dns(_) => "dns",
            San::Email(_) => "email",
            San::Uri(_) => "uri",
            San::Ip(_) => "ip",
        };
        format!("{kind}:{}", san.value())
    }
}

impl San {
    fn to_general_name(&self) -> Result<GeneralName> {
        let ia5 = |s: &str| Ia5String::new(s).map_err(|_| ScepError::invalid_input(format!("SAN {s:?} must be ASCII")));
        Ok(match self {
            Self::Dns(s) => GeneralName::DnsName(ia5(s)?),
            Self::Email(s) => GeneralName::Rfc822Name(ia5(s)?),
            Self::Uri(s) => GeneralName::UniformResourceIdentifier(ia5(s)?),
            Self::Ip(s) => GeneralName::from(
                s.parse::<IpAddr>().map_err(|_| ScepError::invalid_input(format!("{s:?} is not an IP address")))?,
            ),
        })
    }

    pub(crate) fn from_general_name(name: &GeneralName) -> Option<Self> {
        Some(match name {
            GeneralName::DnsName(s) => Self::Dns(s.to_string()),
            GeneralName::Rfc822Name(s) => Self::Email(s.to_string()),
            GeneralName::UniformResourceIdentifier(s) => Self::Uri(s.to_string()),
            GeneralName::IpAddress(o) => Self::Ip(match o.as_bytes().len() {
                4 => IpAddr::from(<[u8; 4]>::try_from(o.as_bytes()).ok()?).to_string(),
                16 => IpAddr::from(<[u8; 16]>::try_from(o.as_bytes()).ok()?).to_string(),
                _ => return None,
            }),
            _ => return None,
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Dns(_) => "dnsname",
            Self::Email(_) => "rfc822name",
            Self::Uri(_) => "uniform_resource_identifier",
            Self::Ip(_) => "ip",
        }
    }

    pub fn value(&self) -> &str {
        match self {
            Self::Dns(s) | Self::Email(s) | Self::Uri(s) | Self::Ip(s) => s,
        }
    }
}

/// What goes into a CSR.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct CsrRequest {
    /// RFC 4514 string, e.g. `CN=laptop-42,O=Example`.
    pub subject: String,
    #[serde(default)]
    pub sans: Vec<San>,
    #[serde(default)]
    pub challenge: Option<String>,
    #[serde(default = "default_digest")]
    pub digest: DigestAlg,
    #[serde(default = "yes")]
    pub digital_signature: bool,
    #[serde(default = "yes")]
    pub key_encipherment: bool,
}

fn default_digest() -> DigestAlg {
    DigestAlg::Sha256
}

pub(crate) fn yes() -> bool {
    true
}

impl CsrRequest {
    /// The request a profile describes: subject template with `$VARS` substituted, the profile's SAN type
    /// (its template rendered with the same variables), key usage bits, digest and the challenge.
    #[cfg(feature = "server")]
    pub fn from_profile(profile: &ScepProfile, vars: &[(String, String)], challenge: Option<String>) -> Result<Self> {
        let sans = match &profile.certificate_attributes {
            None => Vec::new(),
            Some(CertificateAttributes::Dnsname(t)) => vec![San::Dns(render_template(t, vars)?)],
            Some(CertificateAttributes::Rfc822name(t)) => vec![San::Email(render_template(t, vars)?)],
            Some(CertificateAttributes::UniformResourceIdentifier(t)) => vec![San::Uri(render_template(t, vars)?)],
        };
        Ok(Self {
            subject: render_template(&profile.subject, vars)?,
            sans,
            challenge,
            digest: profile.digest,
            digital_signature: profile.use_as_digital_signature,
            key_encipherment: profile.use_for_key_encipherment,
        })
    }

    /// Builds and signs the CSR with `key` (proof of possession), returning DER.
    pub fn build(&self, key: &dyn PrivateKeyOps) -> Result<Vec<u8>> {
        self.unsigned(key.public_key().clone())?.sign_with(key)
    }

    /// The CertificationRequestInfo for `public_key`, waiting for its private key's signature.
    pub fn unsigned(&self, public_key: SubjectPublicKeyInfoOwned) -> Result<UnsignedCsr> {
        let subject = Name::from_str(&self.subject)
            .map_err(|e| ScepError::invalid_input(format!("subject {:?}: {e}", self.subject)))?;
        let mut attributes = SetOfVec::new();
        if let Some(challenge) = &self.challenge {
            attributes.insert(single_valued(ID_CHALLENGE_PASSWORD, directory_string(challenge)?)?)?;
        }
        let extensions = self.extensions()?;
        if !extensions.is_empty() {
            attributes.insert(single_valued(ExtensionReq::OID, Any::encode_from(&ExtensionReq(extensions))?)?)?;
        }
        let info = CertReqInfo { version: Version::V1, subject, public_key, attributes };
        Ok(UnsignedCsr { info_der: info.to_der()?, info, digest: self.digest })
    }

    fn extensions(&self) -> Result<Vec<Extension>> {
        subject_extensions(&self.sans, self.digital_signature, self.key_encipherment)
    }
}

/// A CertificationRequestInfo waiting for the signature that proves possession of its key (RFC 2986 §4.2).
#[derive(Clone)]
pub struct UnsignedCsr {
    info: CertReqInfo,
    info_der: Vec<u8>,
    digest: DigestAlg,
}

impl UnsignedCsr {
    pub fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.info.public_key
    }
}

impl Unsigned for UnsignedCsr {
    /// The CertificationRequest, DER.
    type Signed = Vec<u8>;

    fn digest(&self) -> DigestAlg {
        self.digest
    }

    fn to_be_signed(&self) -> &[u8] {
        &self.info_der
    }

    fn finish(self, signature: &[u8]) -> Result<Vec<u8>> {
        let req = CertReq {
            info: self.info,
            algorithm: AlgorithmIdentifierOwned { oid: self.digest.rsa_signature_oid(), parameters: Some(Any::null()) },
            signature: BitString::from_bytes(signature)?,
        };
        Ok(req.to_der()?)
    }
}

/// subjectAltName and keyUsage, as a CSR requests them and an issued certificate grants them.
pub(crate) fn subject_extensions(
    sans: &[San],
    digital_signature: bool,
    key_encipherment: bool,
) -> Result<Vec<Extension>> {
    let mut out = Vec::new();
    if !sans.is_empty() {
        let names = sans.iter().map(San::to_general_name).collect::<Result<Vec<_>>>()?;
        out.push(extension(rfc5280::ID_CE_SUBJECT_ALT_NAME, false, &SubjectAltName(names))?);
    }
    let mut usage = flagset::FlagSet::<KeyUsages>::default();
    if digital_signature {
        usage |= KeyUsages::DigitalSignature;
    }
    if key_encipherment {
        usage |= KeyUsages::KeyEncipherment;
    }
    if !usage.is_empty() {
        out.push(extension(rfc5280::ID_CE_KEY_USAGE, true, &KeyUsage(usage))?);
    }
    Ok(out)
}

pub(crate) fn extension(oid: ObjectIdentifier, critical: bool, value: &impl Encode) -> Result<Extension> {
    Ok(Extension { extn_id: oid, critical, extn_value: OctetString::new(value.to_der()?)? })
}

/// DirectoryString: PrintableString where the text allows it (what most servers expect), else UTF8String.
fn directory_string(s: &str) -> Result<Any> {
    Ok(match PrintableStringRef::new(s) {
        Ok(p) => Any::encode_from(&p)?,
        Err(_) => Any::encode_from(&Utf8StringRef::new(s)?)?,
    })
}

/// What the server learns from a CSR, after checking its self-signature.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct CsrFacts {
    /// RFC 4514 string.
    pub subject: String,
    pub common_name: Option<String>,
    pub serial_number: Option<String>,
    pub email_address: Option<String>,
    pub sans: Vec<San>,
    pub key_algorithm: &'static str,
    pub key_bits: usize,
    pub challenge: Option<String>,
    pub signature_digest: DigestAlg,
    pub digital_signature: bool,
    pub key_encipherment: bool,
    /// The subject as sent, for comparing with the names the profile issues.
    #[serde(skip)]
    pub subject_name: Name,
    /// SubjectPublicKeyInfo DER, for transactionID checks and issuance.
    #[serde(skip)]
    pub spki_der: Vec<u8>,
    /// The whole CSR, for issuance.
    #[serde(skip)]
    pub der: Vec<u8>,
    /// Every extension the CSR asks for (its OID and value): what an upstream CA may read (RA mode).
    #[serde(skip)]
    pub extensions: Vec<(der::asn1::ObjectIdentifier, Vec<u8>)>,
    /// subjectAltName entries of a type scepkit does not read (otherName, directoryName, …).
    #[serde(skip)]
    pub unreadable_sans: usize,
}

impl CsrFacts {
    /// Parses a PKCS#10 request and verifies its proof of possession with `ops`; a bad signature is
    /// badMessageCheck.
    pub fn from_der(der: &[u8], ops: &dyn keys::PublicKeyOps) -> Result<Self> {
        let malformed = |e: der::Error| ScepError::malformed(format!("not a PKCS#10 request: {e}"));
        let req = CertReqAsSent::from_der(der).map_err(malformed)?;
        let info: CertReqInfoAsSent = req.info.decode_as().map_err(malformed)?;
        let digest = DigestAlg::from_oid(&req.algorithm.oid)?;
        let key_bits = keys::rsa_key_bits(&info.public_key)?;
        let sig = req.signature.as_bytes().ok_or_else(|| ScepError::malformed("CSR signature has unused bits"))?;
        // Over the request info exactly as sent.
        keys::check_signature(ops, &info.public_key, digest, &req.info.to_der()?, sig, "CSR (proof of possession)")?;

        let mut challenge = None;
        let mut extensions = Vec::new();
        // One challengePassword and one extensionRequest, each with one value: with two, which one a CA (or an
        // upstream CA behind this one) reads would be a guess.
        for oid in [ID_CHALLENGE_PASSWORD, ExtensionReq::OID] {
            let values: usize = info.attributes.iter().filter(|a| a.oid == oid).map(|a| a.values.len()).sum();
            if values > 1 {
                let what = if oid == ID_CHALLENGE_PASSWORD { "challengePassword" } else { "extensionRequest" };
                return Err(ScepError::malformed(format!("the CSR carries more than one {what}")));
            }
        }
        for attr in info.attributes.iter() {
            let Some(value) = attr.values.iter().next() else { continue };
            if attr.oid == ID_CHALLENGE_PASSWORD {
                challenge = Some(
                    crate::wire::text(value)
                        .ok_or_else(|| ScepError::malformed("challengePassword is not a string"))?,
                );
            } else if attr.oid == ExtensionReq::OID {
                extensions = value
                    .decode_as::<ExtensionReq>()
                    .map_err(|e| ScepError::malformed(format!("extensionRequest: {e}")))?
                    .0;
            }
        }
        let mut sans = Vec::new();
        let mut unreadable_sans = 0;
        let (mut digital_signature, mut key_encipherment) = (false, false);
        for ext in &extensions {
            if ext.extn_id == rfc5280::ID_CE_SUBJECT_ALT_NAME {
                let names = SubjectAltName::from_der(ext.extn_value.as_bytes())
                    .map_err(|e| ScepError::malformed(format!("subjectAltName: {e}")))?;
                let read: Vec<San> = names.0.iter().filter_map(San::from_general_name).collect();
                unreadable_sans += names.0.len() - read.len();
                sans.extend(read);
            } else if ext.extn_id == rfc5280::ID_CE_KEY_USAGE {
                let ku = KeyUsage::from_der(ext.extn_value.as_bytes())
                    .map_err(|e| ScepError::malformed(format!("keyUsage: {e}")))?;
                digital_signature = ku.digital_signature();
                key_encipherment = ku.key_encipherment();
            }
        }
        Ok(Self {
            subject: info.subject.to_string(),
            common_name: name_attribute(&info.subject, const_oid::db::rfc4519::COMMON_NAME),
            serial_number: name_attribute(&info.subject, const_oid::db::rfc4519::SERIAL_NUMBER),
            email_address: name_attribute(&info.subject, const_oid::db::rfc3280::EMAIL_ADDRESS),
            sans,
            key_algorithm: "rsa",
            key_bits,
            challenge,
            signature_digest: digest,
            digital_signature,
            key_encipherment,
            spki_der: info.public_key.to_der()?,
            subject_name: info.subject.clone(),
            der: der.to_vec(),
            extensions: extensions.iter().map(|e| (e.extn_id, e.extn_value.as_bytes().to_vec())).collect(),
            unreadable_sans,
        })
    }
}

/// The first value of an attribute type in a name, as text.
pub fn name_attribute(name: &Name, oid: ObjectIdentifier) -> Option<String> {
    name.0.iter().flat_map(|rdn| rdn.0.iter()).find(|atv| atv.oid == oid).and_then(|atv| crate::wire::text(&atv.value))
}

/// Replaces `$NAME` variables (`$USERNAME`, `$SEAT_ID`, ...) in a subject or SAN template.
/// Longer names are replaced first so `$USERNAME_FULL` is not eaten by `$USERNAME`.
pub fn render_template(template: &str, vars: &[(String, String)]) -> Result<String> {
    let mut sorted: Vec<&(String, String)> = vars.iter().collect();
    sorted.sort_by_key(|(k, _)| core::cmp::Reverse(k.len()));
    let mut out = template.to_owned();
    for (k, v) in sorted {
        let name = k.trim_start_matches('$').to_ascii_uppercase();
        // A value may not smuggle in extra RDNs.
        let escaped = v.replace('\\', "\\\\").replace(',', "\\,").replace('+', "\\+").replace('=', "\\=");
        out = out.replace(&format!("${name}"), &escaped);
    }
    if let Some(at) = out.find('$') {
        let rest: String =
            out[at..].chars().take_while(|c| *c == '$' || c.is_ascii_alphanumeric() || *c == '_').collect();
        return Err(ScepError::invalid_input(format!("template variable {rest} has no value")));
    }
    Ok(out)
}
