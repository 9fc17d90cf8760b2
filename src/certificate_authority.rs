//! The issuing CAs of an endpoint (the CA manager): made here or imported, each named by the profiles that issue
//! under it (`ca_identity_name`), enabled for SCEP or not, and rolled over by staging the next one (served by
//! GetNextCACert, RFC 8894 §3.5.2) and promoting it.
//!
//! The rules are here; the host stores the rows and keeps the private keys wrapped under its key-encryption key
//! (they never leave the store in clear, and no answer carries them).
//!
//! ```text
//! BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER (0..MAX) OPTIONAL }
//! KeyUsage ::= BIT STRING { ..., keyCertSign (5), cRLSign (6) }
//! ```

use const_oid::db::rfc5280;
use der::{Decode, Encode};
use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};

use crate::algorithms::DigestAlg;
use crate::error::{FieldIssue, Result, ScepError};
use crate::issue::{random_serial, self_signed, SelfSignedRole};
use crate::keys::PrivateKeyOps;
use crate::wire::Certificate;

/// Key sizes a new CA may have.
pub const KEY_BITS: &[u32] = &[2048, 3072, 4096];
const VALIDITY_DAYS: core::ops::RangeInclusive<u32> = 30..=7300;
/// Seconds a new CA is backdated, for clocks that run slow.
const BACKDATE: u64 = 300;

/// What the CA manager shows of a CA certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
pub struct CaFacts {
    /// RFC 4514.
    pub subject: String,
    /// SHA-256 of the DER, lowercase hex.
    pub fingerprint: String,
    pub key_bits: u32,
    pub not_before: u64,
    pub not_after: u64,
}

/// A CA to generate, as the admin API receives it.
#[derive(Clone, Debug, Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(deny_unknown_fields)]
pub struct GenerateCa {
    pub subject: String,
    #[serde(default = "default_bits")]
    pub key_bits: u32,
    #[serde(default = "default_validity")]
    pub validity_days: u32,
}

fn default_bits() -> u32 {
    3072
}

fn default_validity() -> u32 {
    3650
}

impl GenerateCa {
    /// Every failing field (under `generate.`), or nothing.
    pub fn check(&self) -> Result<()> {
        let mut issues = Vec::new();
        let mut fail = |path: &str, rule: String| issues.push(FieldIssue { path: format!("generate.{path}"), rule });
        if let Err(e) = self.subject.parse::<x509_cert::name::Name>() {
            fail("subject", format!("must be an RFC 4514 name such as CN=Example Issuing CA,O=Example: {e}"));
        } else if self.subject.trim().is_empty() {
            fail("subject", "must not be empty".into());
        }
        if !KEY_BITS.contains(&self.key_bits) {
            fail("key_bits", "must be one of 2048, 3072, 4096".into());
        }
        if !VALIDITY_DAYS.contains(&self.validity_days) {
            fail(
                "validity_days",
                format!("must be an integer from {} to {}", VALIDITY_DAYS.start(), VALIDITY_DAYS.end()),
            );
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(ScepError::invalid_object(issues))
        }
    }

    /// The self-signed CA certificate for `key` (the key the host generated with `key_bits`), valid from `now`.
    pub fn certificate(&self, key: &dyn PrivateKeyOps, now: u64) -> Result<Vec<u8>> {
        self.check()?;
        let bits = crate::keys::rsa_key_bits(key.public_key())?;
        if bits as u32 != self.key_bits {
            return Err(ScepError::invalid_input(format!("the key has {bits} bits, not {}", self.key_bits)));
        }
        let validity = (now.saturating_sub(BACKDATE), now + u64::from(self.validity_days) * 86_400);
        let serial = random_serial(&mut OsRng);
        Ok(self_signed(key, &self.subject, &serial, validity, DigestAlg::Sha256, SelfSignedRole::Ca)?.to_der()?)
    }
}

/// The facts of a CA certificate, if it is one this endpoint can issue under: a CA (basicConstraints cA), allowed
/// to sign certificates (keyUsage keyCertSign, when it has a keyUsage), with an RSA key.
pub fn ca_facts(der: &[u8]) -> Result<CaFacts> {
    let cert = Certificate::from_der(der).map_err(|e| ScepError::invalid_input(format!("the certificate: {e}")))?;
    let tbs = &cert.tbs_certificate;
    let extension = |oid| tbs.extensions.iter().flatten().find(|e| e.extn_id == oid);
    let is_ca = extension(rfc5280::ID_CE_BASIC_CONSTRAINTS)
        .and_then(|e| BasicConstraints::from_der(e.extn_value.as_bytes()).ok())
        .is_some_and(|b| b.ca);
    if !is_ca {
        return Err(ScepError::invalid_input("the certificate is not a CA's (no basicConstraints cA=TRUE)"));
    }
    let signs = extension(rfc5280::ID_CE_KEY_USAGE)
        .map(|e| KeyUsage::from_der(e.extn_value.as_bytes()).is_ok_and(|k| k.0.contains(KeyUsages::KeyCertSign)));
    if signs == Some(false) {
        return Err(ScepError::invalid_input("the CA certificate's keyUsage does not allow keyCertSign"));
    }
    let key_bits = crate::keys::rsa_key_bits(&tbs.subject_public_key_info)? as u32;
    let validity = |t: &x509_cert::time::Time| t.to_unix_duration().as_secs();
    Ok(CaFacts {
        subject: tbs.subject.to_string(),
        fingerprint: crate::keys::fingerprint(der),
        key_bits,
        not_before: validity(&tbs.validity.not_before),
        not_after: validity(&tbs.validity.not_after),
    })
}

/// An imported CA: its certificate (DER, from PEM or DER), checked to be a CA certificate, and that `key` (the
/// private key the host read) is its key.
pub fn import(certificate: &[u8], key: &dyn PrivateKeyOps) -> Result<(Vec<u8>, CaFacts)> {
    let der = crate::inspect::to_der(certificate)?;
    let facts = ca_facts(&der)?;
    if !matches!(facts.key_bits, 2048 | 3072 | 4096) {
        return Err(ScepError::invalid_input(format!(
            "the CA's key has {} bits: use 2048, 3072 or 4096",
            facts.key_bits
        )));
    }
    let cert = Certificate::from_der(&der)?;
    if key.public_key() != &cert.tbs_certificate.subject_public_key_info {
        return Err(ScepError::invalid_input("the private key is not the certificate's"));
    }
    Ok((der, facts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::RsaKey;

    #[test]
    fn a_generated_ca_is_a_ca_and_an_imported_one_must_be_one_with_its_key() {
        let key = RsaKey::generate(2048, crate::algorithms::AlgorithmPolicy::Modern, &mut OsRng).unwrap();
        let ask = GenerateCa { subject: "CN=Issuing CA 2,O=Example".into(), key_bits: 2048, validity_days: 365 };
        let der = ask.certificate(&key, 1_800_000_000).unwrap();
        let facts = ca_facts(&der).unwrap();
        assert_eq!((facts.subject.as_str(), facts.key_bits), ("CN=Issuing CA 2,O=Example", 2048));
        assert_eq!(facts.not_after - facts.not_before, 365 * 86_400 + BACKDATE);
        let (imported, _) = import(&der, &key).unwrap();
        assert_eq!(imported, der);
        let other = RsaKey::generate(2048, crate::algorithms::AlgorithmPolicy::Modern, &mut OsRng).unwrap();
        assert!(import(&der, &other).unwrap_err().message.contains("not the certificate's"));
        let small = RsaKey::generate(1024, crate::algorithms::AlgorithmPolicy::Legacy, &mut OsRng).unwrap();
        let small_ca = self_signed(&small, "CN=small", &[1], (0, 1), DigestAlg::Sha256, SelfSignedRole::Ca).unwrap();
        let e = import(&small_ca.to_der().unwrap(), &small).unwrap_err();
        assert_eq!(e.message, "the CA's key has 1024 bits: use 2048, 3072 or 4096");
        let leaf = self_signed(&key, "CN=leaf", &[1], (0, 1), DigestAlg::Sha256, SelfSignedRole::Signer).unwrap();
        assert!(ca_facts(&leaf.to_der().unwrap()).unwrap_err().message.contains("not a CA's"));
        let bad = GenerateCa { subject: "not a name".into(), key_bits: 1024, validity_days: 1 };
        let e = bad.check().unwrap_err();
        let paths: Vec<&str> = e.details.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["generate.subject", "generate.key_bits", "generate.validity_days"]);
    }
}
