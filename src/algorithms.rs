//! The algorithms SCEP negotiates (RFC 8894 §3.5.2 GetCACaps keywords) and their OIDs.
//!
//! Single DES and MD5 are never produced; DES is recognised so a legacy decrypt can open what micromdm's
//! scepclient sends, and 3DES/SHA-1 are only accepted where the caller sets the legacy switch.

use const_oid::db::{rfc5911, rfc5912};
use der::asn1::ObjectIdentifier;
use sha1::Digest as _;

use crate::error::{Result, ScepError};

/// `des-cbc` (1.3.14.3.2.7): not in the `const-oid` database.
pub const DES_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.7");
/// `des-ede3-cbc` (1.2.840.113549.3.7).
pub const DES_EDE3_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.3.7");
/// `md5WithRSAEncryption`, only ever recognised in order to refuse it.
const MD5_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.4");
const MD5: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.2.5");

/// Which algorithms a side accepts and produces: RFC 8894's modern set, or that set plus what old clients need
/// (3DES, reading single DES, SHA-1, RSA 1024) where a profile or a caller opts in with its `legacy` switch.
/// Single DES and MD5 are never produced under either.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AlgorithmPolicy {
    #[default]
    Modern,
    Legacy,
}

impl AlgorithmPolicy {
    /// The policy of a `legacy` switch (a profile's field, a JS option, `--legacy`): the one place it converts.
    pub fn from_legacy_switch(legacy: bool) -> Self {
        if legacy {
            Self::Legacy
        } else {
            Self::Modern
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "lowercase")]
pub enum DigestAlg {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl DigestAlg {
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Sha1 => rfc5912::ID_SHA_1,
            Self::Sha256 => rfc5912::ID_SHA_256,
            Self::Sha384 => rfc5912::ID_SHA_384,
            Self::Sha512 => rfc5912::ID_SHA_512,
        }
    }

    /// `shaNNNWithRSAEncryption`.
    pub fn rsa_signature_oid(self) -> ObjectIdentifier {
        match self {
            Self::Sha1 => rfc5912::SHA_1_WITH_RSA_ENCRYPTION,
            Self::Sha256 => rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
            Self::Sha384 => rfc5912::SHA_384_WITH_RSA_ENCRYPTION,
            Self::Sha512 => rfc5912::SHA_512_WITH_RSA_ENCRYPTION,
        }
    }

    /// The digest named by a digest OID or by an RSA signature OID (certmonger signs with plain
    /// `rsaEncryption`, in which case the SignerInfo's digestAlgorithm decides).
    pub fn from_oid(oid: &ObjectIdentifier) -> Result<Self> {
        Ok(match *oid {
            o if o == rfc5912::ID_SHA_1 || o == rfc5912::SHA_1_WITH_RSA_ENCRYPTION => Self::Sha1,
            o if o == rfc5912::ID_SHA_256 || o == rfc5912::SHA_256_WITH_RSA_ENCRYPTION => Self::Sha256,
            o if o == rfc5912::ID_SHA_384 || o == rfc5912::SHA_384_WITH_RSA_ENCRYPTION => Self::Sha384,
            o if o == rfc5912::ID_SHA_512 || o == rfc5912::SHA_512_WITH_RSA_ENCRYPTION => Self::Sha512,
            o if o == MD5 || o == MD5_WITH_RSA => {
                return Err(ScepError::unsupported_algorithm("MD5 is never accepted"))
            }
            o => return Err(ScepError::unsupported_algorithm(format!("digest {o}"))),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    /// Profile spelling, including the reference schema's `sha348` typo.
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name.to_ascii_lowercase().replace('-', "").as_str() {
            "sha1" => Self::Sha1,
            "sha256" => Self::Sha256,
            "sha384" | "sha348" => Self::Sha384,
            "sha512" => Self::Sha512,
            other => return Err(ScepError::unsupported_algorithm(format!("digest {other}"))),
        })
    }

    pub fn is_legacy(self) -> bool {
        self == Self::Sha1
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Self::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Self::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Self::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    #[cfg(feature = "pure-rsa")]
    pub fn pkcs1v15_scheme(self) -> rsa::Pkcs1v15Sign {
        match self {
            Self::Sha1 => rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
            Self::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
            Self::Sha384 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
            Self::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
        }
    }
}

/// Content-encryption algorithms of an EnvelopedData.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
pub enum Cipher {
    /// Decrypt-only, legacy switch only (micromdm scepclient 2.1 sends it).
    #[serde(rename = "des-cbc")]
    DesCbc,
    #[serde(rename = "des-ede3-cbc")]
    DesEde3Cbc,
    #[serde(rename = "aes-128-cbc")]
    Aes128Cbc,
    #[serde(rename = "aes-192-cbc")]
    Aes192Cbc,
    #[serde(rename = "aes-256-cbc")]
    Aes256Cbc,
}

impl Cipher {
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::DesCbc => DES_CBC,
            Self::DesEde3Cbc => DES_EDE3_CBC,
            Self::Aes128Cbc => rfc5911::ID_AES_128_CBC,
            Self::Aes192Cbc => rfc5911::ID_AES_192_CBC,
            Self::Aes256Cbc => rfc5911::ID_AES_256_CBC,
        }
    }

    pub fn from_oid(oid: &ObjectIdentifier) -> Result<Self> {
        Ok(match *oid {
            o if o == DES_CBC => Self::DesCbc,
            o if o == DES_EDE3_CBC => Self::DesEde3Cbc,
            o if o == rfc5911::ID_AES_128_CBC => Self::Aes128Cbc,
            o if o == rfc5911::ID_AES_192_CBC => Self::Aes192Cbc,
            o if o == rfc5911::ID_AES_256_CBC => Self::Aes256Cbc,
            o => return Err(ScepError::unsupported_algorithm(format!("content encryption {o}"))),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::DesCbc => "des-cbc",
            Self::DesEde3Cbc => "des-ede3-cbc",
            Self::Aes128Cbc => "aes-128-cbc",
            Self::Aes192Cbc => "aes-192-cbc",
            Self::Aes256Cbc => "aes-256-cbc",
        }
    }

    pub fn from_name(name: &str) -> Result<Self> {
        [Self::DesCbc, Self::DesEde3Cbc, Self::Aes128Cbc, Self::Aes192Cbc, Self::Aes256Cbc]
            .into_iter()
            .find(|c| c.name() == name.to_ascii_lowercase())
            .ok_or_else(|| ScepError::unsupported_algorithm(format!("cipher {name}")))
    }

    pub fn key_len(self) -> usize {
        match self {
            Self::DesCbc => 8,
            Self::DesEde3Cbc => 24,
            Self::Aes128Cbc => 16,
            Self::Aes192Cbc => 24,
            Self::Aes256Cbc => 32,
        }
    }

    pub fn iv_len(self) -> usize {
        match self {
            Self::DesCbc | Self::DesEde3Cbc => 8,
            _ => 16,
        }
    }

    pub fn is_legacy(self) -> bool {
        matches!(self, Self::DesCbc | Self::DesEde3Cbc)
    }

    /// Whether this cipher may be used in the given direction under `policy`.
    pub fn check_allowed(self, policy: AlgorithmPolicy, producing: bool) -> Result<()> {
        match self {
            Self::DesCbc if producing => Err(ScepError::unsupported_algorithm("single DES is never produced")),
            c if c.is_legacy() && policy == AlgorithmPolicy::Modern => Err(ScepError::unsupported_algorithm(format!(
                "{} is only accepted with the legacy switch (a legacy profile; --legacy for the CLI)",
                c.name()
            ))),
            c if c.is_legacy() && !cfg!(feature = "legacy") => Err(c.not_built()),
            _ => Ok(()),
        }
    }

    /// The refusal for DES/3DES in a build without the `legacy` feature (the browser build).
    pub fn not_built(self) -> ScepError {
        ScepError::unsupported_algorithm(format!(
            "{} is not in this build of scepkit (built without the `legacy` feature)",
            self.name()
        ))
    }
}

/// Key transport for KeyTransRecipientInfo.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "kebab-case")]
pub enum KeyTransport {
    /// `rsaEncryption`, PKCS#1 v1.5 (what every SCEP client sends).
    RsaPkcs1v15,
    /// `id-RSAES-OAEP` with SHA-1 and MGF1-SHA-1 (the RFC 8017 default parameters).
    RsaOaepSha1,
    /// `id-RSAES-OAEP` with SHA-256 and MGF1-SHA-256.
    RsaOaepSha256,
}

impl KeyTransport {
    /// The name hosts see (as serde spells it).
    pub fn name(self) -> &'static str {
        match self {
            Self::RsaPkcs1v15 => "rsa-pkcs1v15",
            Self::RsaOaepSha1 => "rsa-oaep-sha1",
            Self::RsaOaepSha256 => "rsa-oaep-sha256",
        }
    }
}
