//! Certificate revocation lists (RFC 5280 §5), for GetCRL and the Worker's `/crl`.
//!
//! ```text
//! TBSCertList ::= SEQUENCE {
//!   version Version OPTIONAL (v2), signature AlgorithmIdentifier, issuer Name, thisUpdate Time,
//!   nextUpdate Time OPTIONAL, revokedCertificates SEQUENCE OF SEQUENCE { userCertificate CertificateSerialNumber,
//!   revocationDate Time, crlEntryExtensions Extensions OPTIONAL } OPTIONAL, crlExtensions [0] Extensions OPTIONAL }
//! ```

use der::asn1::{Any, BitString, OctetString};
use der::Encode;
use spki::AlgorithmIdentifierOwned;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::crl::CrlReason;
use x509_cert::ext::pkix::AuthorityKeyIdentifier;
use x509_cert::serial_number::SerialNumber;

use crate::algorithms::DigestAlg;
use crate::csr::extension;
use crate::error::{Result, ScepError};
use crate::issue::time;
use crate::keys::key_identifier;
use crate::keys::PrivateKeyOps;
use crate::wire::Certificate;

/// How long a CRL is valid (its nextUpdate after its thisUpdate).
pub const VALIDITY: u64 = 86_400;

/// The CRL a store keeps, as [`renew_at`] judges it.
#[derive(Clone, Copy, Debug, serde::Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct KeptCrl {
    pub this_update: u64,
    pub next_update: u64,
    /// How many revocations it lists.
    pub revoked_count: u64,
}

/// Whether a new CRL must be signed at `now`, and for which period: when none is kept, half of the kept one's
/// validity has passed (or its thisUpdate is ahead of our clock), or a certificate was revoked since it was
/// signed (`revoked_count` differs). Otherwise the kept one is served: an anonymous GET makes the CA sign nothing.
pub fn renew_at(kept: Option<KeptCrl>, revoked_count: u64, now: u64) -> Option<(u64, u64)> {
    let current = kept.is_some_and(|k| {
        k.revoked_count == revoked_count && k.this_update <= now && now < k.next_update - VALIDITY / 2
    });
    (!current).then_some((now, now + VALIDITY))
}

/// One revoked certificate: serial (hex), when it was revoked, and why (a [`reason`] name), if said.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Revoked {
    pub serial: String,
    pub revoked_at: u64,
    #[serde(default)]
    pub reason: Option<String>,
}

/// The revocation reasons an administrator may give (RFC 5280 §5.3.1 CRLReason), by name; the others are for
/// CAs (`cACompromise`, `aACompromise`) or not revocations (`certificateHold`, `removeFromCRL`).
pub const REVOCATION_REASONS: &[(&str, CrlReason)] = &[
    ("unspecified", CrlReason::Unspecified),
    ("keyCompromise", CrlReason::KeyCompromise),
    ("affiliationChanged", CrlReason::AffiliationChanged),
    ("superseded", CrlReason::Superseded),
    ("cessationOfOperation", CrlReason::CessationOfOperation),
    ("privilegeWithdrawn", CrlReason::PrivilegeWithdrawn),
];

/// The CRLReason named `name`; an unknown name is refused with the names there are.
pub fn reason(name: &str) -> Result<CrlReason> {
    REVOCATION_REASONS.iter().find(|(n, _)| *n == name).map(|(_, r)| *r).ok_or_else(|| {
        let names: Vec<&str> = REVOCATION_REASONS.iter().map(|(n, _)| *n).collect();
        ScepError::invalid_input(format!("revocation reason {name:?} is not one of {}", names.join(", ")))
    })
}

/// A v2 CRL of `revoked`, signed by the CA, valid from `now` until `next_update`, numbered `number`.
pub fn build(
    revoked: &[Revoked],
    number: u64,
    now: u64,
    next_update: u64,
    ca_cert: &Certificate,
    ca_key: &dyn PrivateKeyOps,
    digest: DigestAlg,
) -> Result<Vec<u8>> {
    let entries = revoked
        .iter()
        .map(|r| {
            let bytes = base16ct::mixed::decode_vec(&r.serial)
                .map_err(|_| ScepError::invalid_input(format!("serial {:?} is not hex", r.serial)))?;
            // RFC 5280 §5.3.1: reasonCode is left out rather than given as unspecified.
            let reason = r.reason.as_deref().map(reason).transpose()?.filter(|r| *r != CrlReason::Unspecified);
            Ok(RevokedCert {
                serial_number: SerialNumber::new(&bytes)
                    .map_err(|e| ScepError::invalid_input(format!("serial: {e}")))?,
                revocation_date: time(r.revoked_at)?,
                crl_entry_extensions: reason
                    .map(|r| extension(const_oid::db::rfc5280::ID_CE_CRL_REASONS, false, &r).map(|e| vec![e]))
                    .transpose()?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(key_identifier(ca_cert))?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    let number = der::asn1::Uint::new(&number.to_be_bytes())?;
    let signature_alg = AlgorithmIdentifierOwned { oid: digest.rsa_signature_oid(), parameters: Some(Any::null()) };
    let tbs = TbsCertList {
        version: x509_cert::Version::V2,
        signature: signature_alg.clone(),
        issuer: ca_cert.tbs_certificate.subject.clone(),
        this_update: time(now)?,
        next_update: Some(time(next_update)?),
        revoked_certificates: (!entries.is_empty()).then_some(entries),
        crl_extensions: Some(vec![
            extension(const_oid::db::rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER, false, &aki)?,
            extension(const_oid::db::rfc5280::ID_CE_CRL_NUMBER, false, &number)?,
        ]),
    };
    let signature = ca_key.sign(digest, &tbs.to_der()?)?;
    Ok(CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: signature_alg,
        signature: BitString::from_bytes(&signature)?,
    }
    .to_der()?)
}
