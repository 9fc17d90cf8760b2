//! Certificate issuance (RFC 5280 §4.1): a leaf from CSR facts, and the self-signed certificates SCEP needs
//! (a CA or RA for a server, the transient signer certificate of a client, RFC 8894 §2.3).
//!
//! ```text
//! TBSCertificate ::= SEQUENCE {
//!   version [0] EXPLICIT Version DEFAULT v1, serialNumber CertificateSerialNumber,
//!   signature AlgorithmIdentifier, issuer Name, validity Validity, subject Name,
//!   subjectPublicKeyInfo SubjectPublicKeyInfo, ... extensions [3] EXPLICIT Extensions OPTIONAL }
//! ```

use core::str::FromStr;
use core::time::Duration;

use const_oid::db::rfc5280;
use der::asn1::{Any, BitString, GeneralizedTime, OctetString, UtcTime};
use der::{Decode, Encode};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::certificate::{TbsCertificateInner, Version};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use crate::algorithms::DigestAlg;
use crate::csr::extension;
use crate::error::{Result, ScepError};
use crate::keys::{self, PrivateKeyOps, Unsigned};
use crate::wire::Certificate;
// Issuing for others (leaf and RA certificates) is the CA side's.
#[cfg(feature = "server")]
use {
    crate::csr::{subject_extensions, San},
    crate::keys::key_identifier,
    const_oid::db::rfc5912,
    x509_cert::ext::pkix::ExtendedKeyUsage,
    x509_cert::request::CertReq,
};

/// What the certificate will say, decided by policy: every name comes from here, none from the request.
#[cfg(feature = "server")]
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct IssueOptions {
    /// Positive big-endian serial, at most 20 octets (unique per CA: the store hands it out).
    pub serial: Vec<u8>,
    /// RFC 4514, rendered from the profile for the seat.
    pub subject: String,
    pub not_before: u64,
    pub not_after: u64,
    pub digest: DigestAlg,
    /// The SANs to certify, rendered from the profile for the seat.
    pub sans: Vec<San>,
    pub digital_signature: bool,
    pub key_encipherment: bool,
    /// Adds extendedKeyUsage clientAuth (device and user certificates).
    pub client_auth: bool,
}

#[cfg(feature = "server")]
impl IssueOptions {
    /// The options of a policy plan with its serial (client authentication, as every SCEP leaf).
    pub fn from_plan(plan: &crate::policy::CertificatePlan, serial: Vec<u8>) -> Self {
        Self {
            serial,
            subject: plan.subject.clone(),
            not_before: plan.not_before,
            not_after: plan.not_after,
            digest: plan.digest,
            sans: plan.sans.clone(),
            digital_signature: plan.digital_signature,
            key_encipherment: plan.key_encipherment,
            client_auth: true,
        }
    }
}

/// A certificate for `public_key` with exactly the names and usages of `options`, up to the CA's signature
/// ([`Unsigned`]: the CA's key signs it wherever that key is). Nothing of the requester's CSR but its key
/// reaches the certificate.
#[cfg(feature = "server")]
pub fn issue(
    public_key: SubjectPublicKeyInfoOwned,
    options: &IssueOptions,
    ca_cert: &Certificate,
) -> Result<UnsignedCertificate> {
    let subject = Name::from_str(&options.subject)
        .map_err(|e| ScepError::invalid_input(format!("subject {:?}: {e}", options.subject)))?;
    if crate::names::same_name(&subject, &ca_cert.tbs_certificate.subject) {
        return Err(ScepError::not_permitted(
            format!("The subject {subject} is the CA's own name and is never issued"),
            "change the profile's subject template or the seat id",
        ));
    }
    let mut extensions = vec![extension(
        rfc5280::ID_CE_BASIC_CONSTRAINTS,
        true,
        &BasicConstraints { ca: false, path_len_constraint: None },
    )?];
    if options.client_auth {
        extensions.push(extension(
            rfc5280::ID_CE_EXT_KEY_USAGE,
            false,
            &ExtendedKeyUsage(vec![rfc5912::ID_KP_CLIENT_AUTH]),
        )?);
    }
    extensions.extend(subject_extensions(&options.sans, options.digital_signature, options.key_encipherment)?);
    let issuer = IssuerName {
        name: ca_cert.tbs_certificate.subject.clone(),
        key_id: Some(key_identifier(ca_cert)),
        digest: options.digest,
    };
    unsigned(
        Subject { name: subject, spki: public_key },
        &options.serial,
        (options.not_before, options.not_after),
        extensions,
        issuer,
    )
}

/// The public key a transaction keeps: SubjectPublicKeyInfo DER, or the whole PKCS#10 request that
/// transactions saved before the store kept only the key (migration 0002) hold.
#[cfg(feature = "server")]
pub fn stored_public_key(der: &[u8]) -> Result<SubjectPublicKeyInfoOwned> {
    SubjectPublicKeyInfoOwned::from_der(der)
        .or_else(|_| CertReq::from_der(der).map(|req| req.info.public_key))
        .map_err(|e| ScepError::invalid_input(format!("the stored public key cannot be read: {e}")))
}

/// The role of a self-signed certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SelfSignedRole {
    /// A root CA: keyCertSign + cRLSign + digitalSignature, basicConstraints CA.
    Ca,
    /// A client's transient SCEP signer (RFC 8894 §2.3): digitalSignature + keyEncipherment.
    Signer,
}

/// A fresh certificate serial: 16 random octets, positive, no leading zero octet (RFC 5280 §4.1.2.2).
pub fn random_serial(rng: &mut impl rand_core::RngCore) -> [u8; 16] {
    let mut serial = [0u8; 16];
    rng.fill_bytes(&mut serial);
    serial[0] = (serial[0] & 0x7f) | 0x01;
    serial
}

/// A self-signed certificate for `key`.
pub fn self_signed(
    key: &dyn PrivateKeyOps,
    subject: &str,
    serial: &[u8],
    validity: (u64, u64),
    digest: DigestAlg,
    role: SelfSignedRole,
) -> Result<Certificate> {
    unsigned_self_signed(key.public_key().clone(), subject, serial, validity, digest, role)?.sign_with(key)
}

/// A self-signed certificate for `public_key`, waiting for its private key's signature.
pub fn unsigned_self_signed(
    public_key: SubjectPublicKeyInfoOwned,
    subject: &str,
    serial: &[u8],
    validity: (u64, u64),
    digest: DigestAlg,
    role: SelfSignedRole,
) -> Result<UnsignedCertificate> {
    let name = Name::from_str(subject).map_err(|e| ScepError::invalid_input(format!("subject {subject:?}: {e}")))?;
    let (ca, usage) = match role {
        SelfSignedRole::Ca => (true, KeyUsages::KeyCertSign | KeyUsages::CRLSign | KeyUsages::DigitalSignature),
        SelfSignedRole::Signer => (false, KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment),
    };
    let mut extensions = vec![extension(rfc5280::ID_CE_KEY_USAGE, true, &KeyUsage(usage))?];
    if ca {
        extensions.push(extension(
            rfc5280::ID_CE_BASIC_CONSTRAINTS,
            true,
            &BasicConstraints { ca: true, path_len_constraint: None },
        )?);
    }
    unsigned(
        Subject { name: name.clone(), spki: public_key },
        serial,
        validity,
        extensions,
        IssuerName { name, key_id: None, digest },
    )
}

/// An RA certificate (RFC 8894 §2.1): signed by the CA, usable for signing CertReps and receiving envelopes.
#[cfg(feature = "server")]
pub fn ra_certificate(
    ra_key: &dyn PrivateKeyOps,
    subject: &str,
    serial: &[u8],
    validity: (u64, u64),
    ca_cert: &Certificate,
    ca_key: &dyn PrivateKeyOps,
    digest: DigestAlg,
) -> Result<Certificate> {
    let name = Name::from_str(subject).map_err(|e| ScepError::invalid_input(format!("subject {subject:?}: {e}")))?;
    let extensions = vec![
        extension(rfc5280::ID_CE_KEY_USAGE, true, &KeyUsage(KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment))?,
        extension(rfc5280::ID_CE_BASIC_CONSTRAINTS, true, &BasicConstraints { ca: false, path_len_constraint: None })?,
    ];
    build(
        Subject { name, spki: ra_key.public_key().clone() },
        serial,
        validity,
        extensions,
        Issuer {
            name: ca_cert.tbs_certificate.subject.clone(),
            key_id: Some(key_identifier(ca_cert)),
            key: ca_key,
            digest,
        },
    )
}

struct Subject {
    name: Name,
    spki: SubjectPublicKeyInfoOwned,
}

#[cfg(feature = "server")]
struct Issuer<'a> {
    name: Name,
    /// The issuer's key id for authorityKeyIdentifier; `None` when self-signed.
    key_id: Option<Vec<u8>>,
    key: &'a dyn PrivateKeyOps,
    digest: DigestAlg,
}

/// An issuer as the TBSCertificate names it, without its key.
struct IssuerName {
    name: Name,
    key_id: Option<Vec<u8>>,
    digest: DigestAlg,
}

#[cfg(feature = "server")]
fn build(
    subject: Subject,
    serial: &[u8],
    validity: (u64, u64),
    extensions: Vec<Extension>,
    issuer: Issuer<'_>,
) -> Result<Certificate> {
    let name = IssuerName { name: issuer.name, key_id: issuer.key_id, digest: issuer.digest };
    unsigned(subject, serial, validity, extensions, name)?.sign_with(issuer.key)
}

/// A TBSCertificate waiting for its issuer's signature (RFC 5280 §4.1.1.3).
#[derive(Clone)]
pub struct UnsignedCertificate {
    tbs: TbsCertificateInner<x509_cert::certificate::Raw>,
    tbs_der: Vec<u8>,
    digest: DigestAlg,
}

impl Unsigned for UnsignedCertificate {
    type Signed = Certificate;

    fn digest(&self) -> DigestAlg {
        self.digest
    }

    fn to_be_signed(&self) -> &[u8] {
        &self.tbs_der
    }

    fn finish(self, signature: &[u8]) -> Result<Certificate> {
        Ok(Certificate {
            signature_algorithm: self.tbs.signature.clone(),
            tbs_certificate: self.tbs,
            signature: BitString::from_bytes(signature)?,
        })
    }
}

fn unsigned(
    subject: Subject,
    serial: &[u8],
    validity: (u64, u64),
    mut extensions: Vec<Extension>,
    issuer: IssuerName,
) -> Result<UnsignedCertificate> {
    if validity.1 <= validity.0 {
        return Err(ScepError::invalid_input("notAfter must be after notBefore"));
    }
    let serial = SerialNumber::<x509_cert::certificate::Rfc5280>::new(serial)
        .map_err(|e| ScepError::invalid_input(format!("serial number: {e}")))?;
    let ski = keys::subject_key_id(&subject.spki);
    extensions.push(extension(
        rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER,
        false,
        &SubjectKeyIdentifier(OctetString::new(ski)?),
    )?);
    if let Some(aki) = issuer.key_id {
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(aki)?),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        };
        extensions.push(extension(rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER, false, &aki)?);
    }
    let tbs = TbsCertificateInner {
        version: Version::V3,
        serial_number: SerialNumber::from_der(&serial.to_der()?)?,
        signature: AlgorithmIdentifierOwned { oid: issuer.digest.rsa_signature_oid(), parameters: Some(Any::null()) },
        issuer: issuer.name,
        validity: Validity { not_before: time(validity.0)?, not_after: time(validity.1)? },
        subject: subject.name,
        subject_public_key_info: subject.spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    Ok(UnsignedCertificate { tbs_der: tbs.to_der()?, tbs, digest: issuer.digest })
}

/// RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
pub fn time(unix_seconds: u64) -> Result<Time> {
    let d = Duration::from_secs(unix_seconds);
    let bad = |e: der::Error| ScepError::invalid_input(format!("time {unix_seconds}: {e}"));
    Ok(if unix_seconds < 2_524_608_000 {
        Time::UtcTime(UtcTime::from_unix_duration(d).map_err(bad)?)
    } else {
        Time::GeneralTime(GeneralizedTime::from_unix_duration(d).map_err(bad)?)
    })
}

/// Seconds since the Unix epoch of a certificate time.
pub fn unix_seconds(t: &Time) -> u64 {
    t.to_unix_duration().as_secs()
}

/// RFC 3339 rendering of a Unix time (`2026-11-21T22:15:42Z`).
pub fn rfc3339(unix_seconds: u64) -> String {
    der::DateTime::from_unix_duration(Duration::from_secs(unix_seconds))
        .map(|d| d.to_string())
        .unwrap_or_else(|_| unix_seconds.to_string())
}

/// Checks that `issuer` signed `cert` (and that the names chain), with `ops`; badMessageCheck otherwise.
pub fn verify_issued_by(cert: &Certificate, issuer: &Certificate, ops: &dyn keys::PublicKeyOps) -> Result<()> {
    if cert.tbs_certificate.issuer != issuer.tbs_certificate.subject {
        return Err(ScepError::integrity(format!(
            "certificate issuer {} is not {}",
            cert.tbs_certificate.issuer, issuer.tbs_certificate.subject
        )));
    }
    let digest = DigestAlg::from_oid(&cert.signature_algorithm.oid)?;
    let sig = cert.signature.as_bytes().ok_or_else(|| ScepError::malformed("certificate signature has unused bits"))?;
    keys::check_signature(
        ops,
        &issuer.tbs_certificate.subject_public_key_info,
        digest,
        &cert.tbs_certificate.to_der()?,
        sig,
        "certificate",
    )
}
