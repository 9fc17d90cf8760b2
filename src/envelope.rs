//! CMS EnvelopedData as SCEP uses it (RFC 8894 §3.1, RFC 5652 §6): the request's CSR and the reply's
//! certificates travel encrypted to one recipient, with the content key transported by RSA.
//!
//! ```text
//! KeyTransRecipientInfo ::= SEQUENCE {
//!   version CMSVersion,  -- always set to 0 or 2
//!   rid RecipientIdentifier,
//!   keyEncryptionAlgorithm KeyEncryptionAlgorithmIdentifier,
//!   encryptedKey EncryptedKey }
//! RecipientIdentifier ::= CHOICE {
//!   issuerAndSerialNumber IssuerAndSerialNumber,
//!   subjectKeyIdentifier [0] SubjectKeyIdentifier }
//! ```

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use cms::content_info::{CmsVersion, ContentInfo};
use const_oid::db::{rfc5911, rfc5912};
use der::asn1::{Any, OctetString};
use der::{Decode, Encode};
use rand_core::CryptoRngCore;
use spki::AlgorithmIdentifierOwned;
use zeroize::Zeroizing;

use crate::algorithms::{AlgorithmPolicy, Cipher, KeyTransport};
use crate::error::{Result, ScepError};
use crate::keys::{self, PrivateKeyOps};
use crate::signed::IdentifierKind;
use crate::wire::{Certificate, EncryptedContentInfo, EnvelopedData, KeyTransRecipientInfo, PartyIdentifier, RawSet};

/// What to encrypt with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnvelopeOptions {
    pub cipher: Cipher,
    pub transport: KeyTransport,
    pub identifier: IdentifierKind,
}

impl Default for EnvelopeOptions {
    fn default() -> Self {
        Self {
            cipher: Cipher::Aes128Cbc,
            transport: KeyTransport::RsaPkcs1v15,
            identifier: IdentifierKind::IssuerAndSerialNumber,
        }
    }
}

/// Encrypts `plaintext` to `recipient`, returning an EnvelopedData ContentInfo (DER). The cipher must be one
/// `crypto`'s policy produces (3DES only under the legacy policy; single DES never); its public-key operations
/// transport the content key.
pub fn seal(
    plaintext: &[u8],
    recipient: &Certificate,
    options: EnvelopeOptions,
    crypto: &keys::Crypto<'_>,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>> {
    let ops = crypto.public_ops;
    options.cipher.check_allowed(crypto.policy, true)?;
    let mut key = Zeroizing::new(vec![0u8; options.cipher.key_len()]);
    let mut iv = vec![0u8; options.cipher.iv_len()];
    rng.fill_bytes(&mut key);
    rng.fill_bytes(&mut iv);
    let ciphertext = encrypt_content(options.cipher, &key, &iv, plaintext)?;

    let enc_key = ops.encrypt(&recipient.tbs_certificate.subject_public_key_info, options.transport, &key, rng)?;
    let key_enc_alg = match options.transport {
        KeyTransport::RsaPkcs1v15 => {
            AlgorithmIdentifierOwned { oid: rfc5912::RSA_ENCRYPTION, parameters: Some(Any::null()) }
        }
        KeyTransport::RsaOaepSha1 => AlgorithmIdentifierOwned {
            oid: rfc5912::ID_RSAES_OAEP,
            parameters: Some(Any::encode_from(&pkcs1::RsaOaepParams::default())?),
        },
        KeyTransport::RsaOaepSha256 => AlgorithmIdentifierOwned {
            oid: rfc5912::ID_RSAES_OAEP,
            parameters: Some(Any::encode_from(&pkcs1::RsaOaepParams::new::<sha2::Sha256>())?),
        },
    };
    let by_key_id = options.identifier == IdentifierKind::SubjectKeyIdentifier;
    // RFC 5652 §6.1/§6.2.1: version 0 with issuerAndSerialNumber, 2 with subjectKeyIdentifier.
    let version = if by_key_id { CmsVersion::V2 } else { CmsVersion::V0 };
    let ktri = KeyTransRecipientInfo {
        version,
        rid: PartyIdentifier::for_certificate(recipient, by_key_id)?,
        key_enc_alg,
        enc_key: OctetString::new(enc_key)?,
    };
    let enveloped = EnvelopedData {
        version,
        originator_info: None,
        recip_infos: RawSet::from_elements([ktri])?,
        encrypted_content: EncryptedContentInfo {
            content_type: rfc5911::ID_DATA,
            content_enc_alg: AlgorithmIdentifierOwned {
                oid: options.cipher.oid(),
                parameters: Some(Any::encode_from(&OctetString::new(iv)?)?),
            },
            encrypted_content: Some(ciphertext),
        },
        unprotected_attrs: None,
    };
    Ok(ContentInfo { content_type: rfc5911::ID_ENVELOPED_DATA, content: Any::encode_from(&enveloped)? }.to_der()?)
}

/// One key we can open envelopes with. With its certificate, only a RecipientInfo naming that certificate is
/// tried; without (`inspect --key`, where only the key is at hand), the key is tried on each in turn.
pub struct Recipient<'a> {
    pub certificate: Option<&'a Certificate>,
    pub key: &'a dyn PrivateKeyOps,
}

/// What was inside an envelope, and how it was sealed (a reply is never weaker than the request).
#[derive(Clone, Debug)]
pub struct Opened {
    pub plaintext: Zeroizing<Vec<u8>>,
    pub cipher: Cipher,
    pub transport: KeyTransport,
}

/// Opens an EnvelopedData ContentInfo (or bare EnvelopedData) with the first of `recipients` it is for.
pub fn open(bytes: &[u8], recipients: &[Recipient<'_>], policy: AlgorithmPolicy) -> Result<Opened> {
    let sealed = Sealed::parse(bytes, policy)?;
    for ktri in &sealed.recipient_infos {
        let transport = key_transport(&ktri.key_enc_alg)?;
        for me in recipients.iter().filter(|r| r.certificate.map_or(true, |c| ktri.rid.identifies(c))) {
            let Ok(key) = me.key.decrypt(transport, ktri.enc_key.as_bytes()).map(Zeroizing::new) else { continue };
            if let Ok(opened) = sealed.decrypt(&key, transport) {
                return Ok(opened);
            }
        }
    }
    Err(ScepError::decrypt_failed())
}

/// An EnvelopedData read up to its key transport: the content-encryption key, encrypted to a recipient's key,
/// is the one thing left to decrypt ([`Self::for_recipient`]), and [`Self::open_with`] does the rest.
#[derive(Clone)]
pub struct Sealed {
    cipher: Cipher,
    iv: Vec<u8>,
    ciphertext: Vec<u8>,
    recipient_infos: Vec<KeyTransRecipientInfo>,
}

/// The key transport a recipient must open: its algorithm and the encrypted content-encryption key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncryptedKey {
    pub transport: KeyTransport,
    pub ciphertext: Vec<u8>,
}

impl Sealed {
    /// Parses an EnvelopedData (ContentInfo or bare) and checks its cipher and IV.
    pub fn parse(bytes: &[u8], policy: AlgorithmPolicy) -> Result<Self> {
        let enveloped = parse(bytes)?;
        let cipher = Cipher::from_oid(&enveloped.encrypted_content.content_enc_alg.oid)?;
        cipher.check_allowed(policy, false)?;
        let iv = enveloped
            .encrypted_content
            .content_enc_alg
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<OctetString>().ok())
            .filter(|iv| iv.as_bytes().len() == cipher.iv_len())
            .ok_or_else(|| ScepError::malformed("the content-encryption IV is missing or has the wrong length"))?;
        let recipient_infos =
            enveloped.key_trans_recipients().map_err(|e| ScepError::malformed(format!("RecipientInfo: {e}")))?;
        Ok(Self {
            cipher,
            iv: iv.as_bytes().to_vec(),
            ciphertext: enveloped.encrypted_content.encrypted_content.unwrap_or_default(),
            recipient_infos,
        })
    }

    /// The content-encryption key as sent to the holder of `certificate` (the first RecipientInfo naming it).
    pub fn for_recipient(&self, certificate: &Certificate) -> Result<EncryptedKey> {
        let ktri = self
            .recipient_infos
            .iter()
            .find(|ktri| ktri.rid.identifies(certificate))
            .ok_or_else(ScepError::decrypt_failed)?;
        Ok(EncryptedKey { transport: key_transport(&ktri.key_enc_alg)?, ciphertext: ktri.enc_key.as_bytes().to_vec() })
    }

    /// Decrypts the content with the content-encryption key a recipient opened with `transport`. Every
    /// failure reads the same (no padding oracle).
    pub fn decrypt(&self, content_key: &[u8], transport: KeyTransport) -> Result<Opened> {
        if content_key.len() != self.cipher.key_len() {
            return Err(ScepError::decrypt_failed());
        }
        let plaintext = decrypt_content(self.cipher, content_key, &self.iv, &self.ciphertext)?;
        Ok(Opened { plaintext: Zeroizing::new(plaintext), cipher: self.cipher, transport })
    }
}

/// The key transports an envelope's recipients were sealed with, read without decrypting anything.
pub fn key_transports(bytes: &[u8]) -> Result<Vec<KeyTransport>> {
    let enveloped = parse(bytes)?;
    let infos = enveloped.key_trans_recipients().map_err(|e| ScepError::malformed(format!("RecipientInfo: {e}")))?;
    infos.iter().map(|ktri| key_transport(&ktri.key_enc_alg)).collect()
}

/// Parses an EnvelopedData, wrapped in a ContentInfo or bare.
pub fn parse(bytes: &[u8]) -> Result<EnvelopedData> {
    let inner = match ContentInfo::from_der(bytes) {
        Ok(ci) if ci.content_type == rfc5911::ID_ENVELOPED_DATA => ci.content.to_der()?,
        Ok(ci) => {
            return Err(ScepError::malformed(format!("expected EnvelopedData, got content type {}", ci.content_type)))
        }
        Err(_) => bytes.to_vec(),
    };
    EnvelopedData::from_der(&inner).map_err(|e| ScepError::malformed(format!("EnvelopedData: {e}")))
}

/// Reads the key-transport algorithm; OAEP only with SHA-1 or SHA-256 and a matching MGF1.
pub fn key_transport(alg: &AlgorithmIdentifierOwned) -> Result<KeyTransport> {
    if alg.oid == rfc5912::RSA_ENCRYPTION {
        return Ok(KeyTransport::RsaPkcs1v15);
    }
    if alg.oid != rfc5912::ID_RSAES_OAEP {
        return Err(ScepError::unsupported_algorithm(format!("key transport {}", alg.oid)));
    }
    let params_der = alg.parameters.as_ref().map(|p| p.to_der()).transpose()?;
    let params = match &params_der {
        Some(der) => {
            pkcs1::RsaOaepParams::from_der(der).map_err(|e| ScepError::malformed(format!("OAEP parameters: {e}")))?
        }
        None => pkcs1::RsaOaepParams::default(),
    };
    let mgf_hash = params.mask_gen.parameters.map(|p| p.oid);
    match (params.hash.oid, mgf_hash) {
        (h, Some(m)) if h == rfc5912::ID_SHA_1 && m == h => Ok(KeyTransport::RsaOaepSha1),
        (h, Some(m)) if h == rfc5912::ID_SHA_256 && m == h => Ok(KeyTransport::RsaOaepSha256),
        (h, _) => Err(ScepError::unsupported_algorithm(format!("OAEP with hash {h}"))),
    }
}

fn encrypt_content(cipher: Cipher, key: &[u8], iv: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let bad = |_| ScepError::invalid_input("content key or IV has the wrong length");
    Ok(match cipher {
        Cipher::Aes128Cbc => cbc::Encryptor::<aes::Aes128>::new_from_slices(key, iv)
            .map_err(bad)?
            .encrypt_padded_vec_mut::<Pkcs7>(plaintext),
        Cipher::Aes192Cbc => cbc::Encryptor::<aes::Aes192>::new_from_slices(key, iv)
            .map_err(bad)?
            .encrypt_padded_vec_mut::<Pkcs7>(plaintext),
        Cipher::Aes256Cbc => cbc::Encryptor::<aes::Aes256>::new_from_slices(key, iv)
            .map_err(bad)?
            .encrypt_padded_vec_mut::<Pkcs7>(plaintext),
        #[cfg(feature = "legacy")]
        Cipher::DesEde3Cbc => cbc::Encryptor::<des::TdesEde3>::new_from_slices(key, iv)
            .map_err(bad)?
            .encrypt_padded_vec_mut::<Pkcs7>(plaintext),
        #[cfg(feature = "legacy")]
        Cipher::DesCbc => return Err(ScepError::unsupported_algorithm("single DES is never produced")),
        #[cfg(not(feature = "legacy"))]
        c @ (Cipher::DesCbc | Cipher::DesEde3Cbc) => return Err(c.not_built()),
    })
}

fn decrypt_content(cipher: Cipher, key: &[u8], iv: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>> {
    let bad_key = |_| ScepError::decrypt_failed();
    let result = match cipher {
        Cipher::Aes128Cbc => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
            .map_err(bad_key)?
            .decrypt_padded_vec_mut::<Pkcs7>(ciphertext),
        Cipher::Aes192Cbc => cbc::Decryptor::<aes::Aes192>::new_from_slices(key, iv)
            .map_err(bad_key)?
            .decrypt_padded_vec_mut::<Pkcs7>(ciphertext),
        Cipher::Aes256Cbc => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
            .map_err(bad_key)?
            .decrypt_padded_vec_mut::<Pkcs7>(ciphertext),
        #[cfg(feature = "legacy")]
        Cipher::DesEde3Cbc => cbc::Decryptor::<des::TdesEde3>::new_from_slices(key, iv)
            .map_err(bad_key)?
            .decrypt_padded_vec_mut::<Pkcs7>(ciphertext),
        #[cfg(feature = "legacy")]
        Cipher::DesCbc => cbc::Decryptor::<des::Des>::new_from_slices(key, iv)
            .map_err(bad_key)?
            .decrypt_padded_vec_mut::<Pkcs7>(ciphertext),
        #[cfg(not(feature = "legacy"))]
        c @ (Cipher::DesCbc | Cipher::DesEde3Cbc) => return Err(c.not_built()),
    };
    result.map_err(|_| ScepError::decrypt_failed())
}
