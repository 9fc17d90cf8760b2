//! GetCACaps (RFC 8894 §3.5.2) and GetCACert (§4.2): what a CA can do, which certificates it uses, and the
//! algorithm choice a client makes from them.
//!
//! ```text
//! GetCACaps response: text/plain, one keyword per line (CRLF or LF):
//!   AES  DES3  GetNextCACert  POSTPKIOperation  Renewal  SHA-1  SHA-256  SHA-512  SCEPStandard
//! GetCACert response: application/x-x509-ca-cert     (one DER certificate), or
//!                     application/x-x509-ca-ra-cert  (degenerate certs-only SignedData: CA + RA certificates)
//! ```

use std::collections::BTreeSet;

use der::{Decode, Encode};
use x509_cert::ext::pkix::KeyUsage;

use crate::algorithms::{AlgorithmPolicy, Cipher, DigestAlg};
use crate::error::{Result, ScepError};
use crate::signed::{self, chain_order, SignedMessage};
use crate::wire::Certificate;

/// The GetCACaps keywords of RFC 8894 §3.5.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
pub enum Capability {
    #[serde(rename = "AES")]
    Aes,
    #[serde(rename = "DES3")]
    Des3,
    #[serde(rename = "GetNextCACert")]
    GetNextCaCert,
    #[serde(rename = "POSTPKIOperation")]
    PostPkiOperation,
    #[serde(rename = "Renewal")]
    Renewal,
    #[serde(rename = "SHA-1")]
    Sha1,
    #[serde(rename = "SHA-256")]
    Sha256,
    #[serde(rename = "SHA-512")]
    Sha512,
    #[serde(rename = "SCEPStandard")]
    ScepStandard,
}

const ALL: [Capability; 9] = [
    Capability::Aes,
    Capability::Des3,
    Capability::GetNextCaCert,
    Capability::PostPkiOperation,
    Capability::Renewal,
    Capability::Sha1,
    Capability::Sha256,
    Capability::Sha512,
    Capability::ScepStandard,
];

impl Capability {
    pub fn keyword(self) -> &'static str {
        match self {
            Self::Aes => "AES",
            Self::Des3 => "DES3",
            Self::GetNextCaCert => "GetNextCACert",
            Self::PostPkiOperation => "POSTPKIOperation",
            Self::Renewal => "Renewal",
            Self::Sha1 => "SHA-1",
            Self::Sha256 => "SHA-256",
            Self::Sha512 => "SHA-512",
            Self::ScepStandard => "SCEPStandard",
        }
    }
}

/// A parsed or to-be-served GetCACaps answer. Unknown keywords are kept (and shown by `inspect`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
pub struct CaCaps {
    pub capabilities: BTreeSet<Capability>,
    pub unknown: Vec<String>,
}

impl CaCaps {
    /// Parses the text body; keywords are matched case-insensitively, lines split on CRLF, LF or spaces.
    pub fn parse(text: &str) -> Self {
        let mut out = Self::default();
        for word in text.split_whitespace() {
            match ALL.iter().find(|c| c.keyword().eq_ignore_ascii_case(word)) {
                Some(c) => {
                    out.capabilities.insert(*c);
                }
                None => out.unknown.push(word.to_owned()),
            }
        }
        out
    }

    /// What a scepkit server advertises: never DES; 3DES and SHA-1 only for a legacy profile.
    pub fn for_server(policy: AlgorithmPolicy, next_ca: bool) -> Self {
        let mut capabilities: BTreeSet<Capability> = [
            Capability::Aes,
            Capability::Sha256,
            Capability::Sha512,
            Capability::PostPkiOperation,
            Capability::Renewal,
            Capability::ScepStandard,
        ]
        .into_iter()
        .collect();
        if policy == AlgorithmPolicy::Legacy {
            capabilities.extend([Capability::Des3, Capability::Sha1]);
        }
        if next_ca {
            capabilities.insert(Capability::GetNextCaCert);
        }
        Self { capabilities, unknown: Vec::new() }
    }

    /// The body, one exact RFC keyword per line (LF, as micromdm and NDES send).
    pub fn render(&self) -> String {
        self.capabilities.iter().map(|c| c.keyword()).collect::<Vec<_>>().join("\n")
    }

    pub fn has(&self, c: Capability) -> bool {
        self.capabilities.contains(&c)
    }

    /// RFC 8894 §3.5.2: SCEPStandard implies AES, SHA-256 and POSTPKIOperation.
    fn implies(&self, c: Capability) -> bool {
        self.has(c)
            || (self.has(Capability::ScepStandard)
                && matches!(c, Capability::Aes | Capability::Sha256 | Capability::PostPkiOperation))
    }

    /// Picks the strongest cipher and digest both sides allow. `requested` pins either; a pin weaker than
    /// what a SCEPStandard server guarantees is refused as a downgrade.
    pub fn negotiate(
        &self,
        policy: AlgorithmPolicy,
        requested_cipher: Option<Cipher>,
        requested_digest: Option<DigestAlg>,
    ) -> Result<Negotiated> {
        let standard = self.has(Capability::ScepStandard);
        let cipher = match requested_cipher {
            Some(c) => {
                c.check_allowed(policy, true)?;
                if standard && c.is_legacy() {
                    return Err(ScepError::downgrade(format!("{} requested", c.name())));
                }
                c
            }
            // RFC 8894: "AES" guarantees AES-128-CBC; nothing stronger is promised.
            None if self.implies(Capability::Aes) => Cipher::Aes128Cbc,
            None if self.has(Capability::Des3) && policy == AlgorithmPolicy::Legacy => Cipher::DesEde3Cbc,
            None if self.has(Capability::Des3) => {
                return Err(ScepError::unsupported_algorithm("the server offers only 3DES; enable legacy to use it"))
            }
            None => {
                return Err(ScepError::unsupported_algorithm(
                    "the server offers only single DES, which scepkit never uses",
                ))
            }
        };
        let digest = match requested_digest {
            Some(d) => {
                if d.is_legacy() && policy == AlgorithmPolicy::Modern {
                    return Err(ScepError::unsupported_algorithm("SHA-1 is only used with legacy enabled"));
                }
                if standard && d.is_legacy() {
                    return Err(ScepError::downgrade("SHA-1 requested"));
                }
                let offered = match d {
                    DigestAlg::Sha1 => self.has(Capability::Sha1),
                    DigestAlg::Sha256 => self.implies(Capability::Sha256),
                    DigestAlg::Sha512 => self.has(Capability::Sha512),
                    // No capability names SHA-384 (RFC 8894 §3.5.2): asked for by name (a profile's digest), it
                    // is used with a server that advertises the SHA-2 family.
                    DigestAlg::Sha384 => self.implies(Capability::Sha256) || self.has(Capability::Sha512),
                };
                if !offered {
                    return Err(ScepError::unsupported_algorithm(format!(
                        "the server does not advertise {}",
                        d.name()
                    )));
                }
                d
            }
            None if self.has(Capability::Sha512) => DigestAlg::Sha512,
            None if self.implies(Capability::Sha256) => DigestAlg::Sha256,
            None if self.has(Capability::Sha1) && policy == AlgorithmPolicy::Legacy => DigestAlg::Sha1,
            None if self.has(Capability::Sha1) => {
                return Err(ScepError::unsupported_algorithm("the server offers only SHA-1; enable legacy to use it"))
            }
            None => {
                return Err(ScepError::unsupported_algorithm("the server offers only MD5, which scepkit never uses"))
            }
        };
        Ok(Negotiated {
            cipher,
            digest,
            post: self.implies(Capability::PostPkiOperation),
            renewal: self.has(Capability::Renewal),
        })
    }
}

/// The outcome of [`CaCaps::negotiate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
pub struct Negotiated {
    pub cipher: Cipher,
    pub digest: DigestAlg,
    /// Send PKIOperation by POST (else GET with base64 in the query).
    pub post: bool,
    /// The server accepts RenewalReq.
    pub renewal: bool,
}

pub const CONTENT_TYPE_CA_CERT: &str = "application/x-x509-ca-cert";
pub const CONTENT_TYPE_CA_RA_CERT: &str = "application/x-x509-ca-ra-cert";

/// The GetCACert body for a CA alone (raw DER) or a CA with an RA (degenerate SignedData).
pub fn ca_cert_response(ca: &Certificate, ra: Option<&Certificate>) -> Result<(&'static str, Vec<u8>)> {
    Ok(match ra {
        None => (CONTENT_TYPE_CA_CERT, ca.to_der()?),
        Some(ra) => (CONTENT_TYPE_CA_RA_CERT, signed::certs_only(&[ca, ra])?),
    })
}

/// The GetNextCACert answer (RFC 8894 §4.7): the next CA (and RA) certificates as a degenerate PKCS#7,
/// wrapped in a SignedData signed by the current CA or RA, so a client can trust the rollover.
pub fn next_ca_cert_response(
    next: &[&Certificate],
    signer: &crate::signed::SignedBy<'_>,
) -> Result<crate::signed::UnsignedSignedData> {
    signed::unsigned(&signed::certs_only(next)?, Vec::new(), signer, &[signer.certificate], None)
}

/// What a client learns from GetCACert.
#[derive(Clone, Debug)]
pub struct CaCertificates {
    /// The CA that issues (the root of the chain).
    pub ca: Certificate,
    /// The certificate to encrypt requests to: an RA with keyEncipherment if one was sent, else the CA.
    pub recipient: Certificate,
    /// Every certificate received, leaf-first where a chain exists.
    pub all: Vec<Certificate>,
}

impl CaCertificates {
    /// Parses a GetCACert body: one DER certificate or a certs-only SignedData (content type not needed).
    pub fn parse(body: &[u8]) -> Result<Self> {
        let all = match Certificate::from_der(body) {
            Ok(cert) => vec![cert],
            Err(_) => {
                let signed = SignedMessage::parse(body).map_err(|_| {
                    ScepError::malformed("GetCACert: neither a DER certificate nor a PKCS#7 certs-only message")
                })?;
                // Far more than any CA sends (CA, intermediates, RAs): ordering a flood would cost time.
                if signed.certificates.len() > 32 {
                    return Err(ScepError::malformed("GetCACert: more than 32 certificates"));
                }
                chain_order(signed.certificates)
            }
        };
        let is_ca = |c: &Certificate| is_ca_certificate(c) || c.tbs_certificate.subject == c.tbs_certificate.issuer;
        let ca = all
            .iter()
            .rev()
            .find(|c| is_ca(c))
            .or(all.last())
            .cloned()
            .ok_or_else(|| ScepError::malformed("GetCACert: no certificate"))?;
        let encipherment = |c: &Certificate| {
            c.tbs_certificate
                .extensions
                .iter()
                .flatten()
                .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_KEY_USAGE)
                .map(|e| KeyUsage::from_der(e.extn_value.as_bytes()).map(|k| k.key_encipherment()).unwrap_or(false))
                .unwrap_or(true)
        };
        let recipient = all.iter().find(|c| !is_ca(c) && encipherment(c)).cloned().unwrap_or_else(|| ca.clone());
        Ok(Self { ca, recipient, all })
    }

    /// Checks the CA against a pinned fingerprint (SHA-256, or SHA-1 if 40 hex digits; colons allowed).
    pub fn check_fingerprint(&self, pinned: &str) -> Result<()> {
        let want = normalize_fingerprint(pinned)
            .ok_or_else(|| ScepError::invalid_input("the fingerprint must be 64 (SHA-256) or 40 (SHA-1) hex digits"))?;
        let digest = if want.len() == 40 { DigestAlg::Sha1 } else { DigestAlg::Sha256 };
        let der = self.ca.to_der()?;
        let got = base16ct::lower::encode_string(&digest.digest(&der));
        // Constant-time is not needed: both values are public.
        if got == want {
            Ok(())
        } else {
            Err(ScepError::fingerprint_mismatch(&want, &got))
        }
    }
}

/// Whether a certificate says it is a CA (basicConstraints cA).
pub fn is_ca_certificate(c: &Certificate) -> bool {
    c.tbs_certificate.extensions.iter().flatten().any(|e| {
        e.extn_id == const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS
            && x509_cert::ext::pkix::BasicConstraints::from_der(e.extn_value.as_bytes()).map(|b| b.ca).unwrap_or(false)
    })
}

/// SHA-256 fingerprint of a certificate, lowercase hex.
pub fn fingerprint(cert: &Certificate) -> Result<String> {
    Ok(crate::keys::fingerprint(&cert.to_der()?))
}

/// Hex of a fingerprint without separators, lowercased; `None` unless it is 40 (SHA-1) or 64 (SHA-256) digits.
pub fn normalize_fingerprint(fp: &str) -> Option<String> {
    let hex: String = fp.chars().filter(|c| !matches!(c, ':' | ' ' | '-')).collect::<String>().to_ascii_lowercase();
    let ok = matches!(hex.len(), 40 | 64) && hex.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then_some(hex)
}
