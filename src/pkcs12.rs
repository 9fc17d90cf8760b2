//! PKCS#12 export (RFC 7292) of an enrolled key and its certificates, in the modern form OpenSSL 3 writes:
//! PBES2 (PBKDF2-HMAC-SHA-256, AES-256-CBC) for both bags and an HMAC-SHA-256 MAC.
//!
//! ```text
//! PFX ::= SEQUENCE { version INTEGER {v3(3)}(v3,...), authSafe ContentInfo, macData MacData OPTIONAL }
//! AuthenticatedSafe ::= SEQUENCE OF ContentInfo  -- data or encryptedData
//! SafeBag ::= SEQUENCE { bagId BAG-TYPE.&id, bagValue [0] EXPLICIT BAG-TYPE.&Type, bagAttributes SET OF PKCS12Attribute OPTIONAL }
//! ```

use cms::content_info::{CmsVersion, ContentInfo};
use cms::encrypted_data::EncryptedData;
use cms::enveloped_data::EncryptedContentInfo;
use const_oid::db::{rfc5911, rfc5912};
use der::asn1::{Any, BmpString, OctetString, SetOfVec};
use der::{Decode, Encode};
use hmac::Mac;
use pkcs12::cert_type::CertBag;
use pkcs12::digest_info::DigestInfo;
use pkcs12::mac_data::MacData;
use pkcs12::pfx::{Pfx, Version};
use pkcs12::safe_bag::SafeBag;
use rand_core::CryptoRngCore;
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;

use crate::algorithms::DigestAlg;
use crate::error::{Result, ScepError};
use crate::wire::{single_valued, Certificate};

/// The private key must be the one `leaf` certifies: the RSAPrivateKey's modulus and public exponent (RFC 8017
/// A.1.2) are the certificate's RSAPublicKey.
fn check_key_of(pki: &pkcs8::PrivateKeyInfo<'_>, leaf: &Certificate) -> Result<()> {
    let private = pkcs1::RsaPrivateKey::try_from(pki.private_key)
        .map_err(|e| ScepError::invalid_input(format!("not an RSA private key: {e}")))?;
    let spki = &leaf.tbs_certificate.subject_public_key_info;
    crate::keys::rsa_key_bits(spki)?;
    let public = pkcs1::RsaPublicKey::try_from(spki.subject_public_key.raw_bytes())
        .map_err(|e| ScepError::malformed(format!("RSA public key: {e}")))?;
    if private.modulus != public.modulus || private.public_exponent != public.public_exponent {
        return Err(ScepError::invalid_input("the private key is not the certificate's"));
    }
    Ok(())
}

/// PBKDF2 and MAC iterations (OpenSSL 3's default for `pkcs12 -export`).
const ITERATIONS: u32 = 2048;
const ID_LOCAL_KEY_ID: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.21");
const ID_FRIENDLY_NAME: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.20");

/// A password-protected PFX holding `key_pkcs8` (PKCS#8 DER of the RSA key `chain[0]` certifies), that
/// certificate and the rest of the chain.
pub fn export(
    key_pkcs8: &[u8],
    chain: &[Certificate],
    password: &str,
    friendly_name: &str,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>> {
    let leaf = chain.first().ok_or_else(|| ScepError::invalid_input("PKCS#12 export needs the certificate"))?;
    if password.is_empty() {
        return Err(ScepError::invalid_input("the PKCS#12 password must not be empty"));
    }
    let pki = pkcs8::PrivateKeyInfo::try_from(key_pkcs8)
        .map_err(|e| ScepError::invalid_input(format!("not a PKCS#8 private key: {e}")))?;
    check_key_of(&pki, leaf)?;
    let local_key_id = DigestAlg::Sha1.digest(&leaf.to_der()?);

    let mut cert_bags = Vec::new();
    for (i, cert) in chain.iter().enumerate() {
        let bag = CertBag { cert_id: pkcs12::PKCS_12_X509_CERT_OID, cert_value: OctetString::new(cert.to_der()?)? };
        let attrs = if i == 0 { Some(bag_attributes(&local_key_id, friendly_name)?) } else { None };
        cert_bags.push(SafeBag {
            bag_id: pkcs12::PKCS_12_CERT_BAG_OID,
            bag_value: bag.to_der()?,
            bag_attributes: attrs,
        });
    }
    let certs_plain = cert_bags.to_der()?;
    let mut certs_salt = [0u8; 32];
    let scheme = pbes2(&mut certs_salt, rng)?;
    let certs_encrypted = scheme
        .encrypt(password, &certs_plain)
        .map_err(|e| ScepError::invalid_input(format!("PKCS#12 encryption: {e}")))?;
    let encrypted_data = EncryptedData {
        version: CmsVersion::V0,
        enc_content_info: EncryptedContentInfo {
            content_type: rfc5911::ID_DATA,
            content_enc_alg: AlgorithmIdentifierOwned::from_der(&pkcs5::EncryptionScheme::from(scheme).to_der()?)?,
            encrypted_content: Some(OctetString::new(certs_encrypted)?),
        },
        unprotected_attrs: None,
    };

    let mut key_salt = [0u8; 32];
    let shrouded = pki
        .encrypt_with_params(pbes2(&mut key_salt, rng)?, password)
        .map_err(|e| ScepError::invalid_input(format!("PKCS#12 key encryption: {e}")))?;
    let key_bag = SafeBag {
        bag_id: pkcs12::PKCS_12_PKCS8_KEY_BAG_OID,
        bag_value: shrouded.as_bytes().to_vec(),
        bag_attributes: Some(bag_attributes(&local_key_id, friendly_name)?),
    };

    let auth_safe: Vec<ContentInfo> = vec![
        ContentInfo { content_type: rfc5911::ID_ENCRYPTED_DATA, content: Any::encode_from(&encrypted_data)? },
        ContentInfo {
            content_type: rfc5911::ID_DATA,
            content: Any::encode_from(&OctetString::new(vec![key_bag].to_der()?)?)?,
        },
    ];
    let auth_safe_der = auth_safe.to_der()?;

    let mut mac_salt = [0u8; 16];
    rng.fill_bytes(&mut mac_salt);
    let mac_key = pkcs12::kdf::derive_key_bmp::<sha2::Sha256>(
        BmpString::from_utf8(password)
            .map_err(|_| ScepError::invalid_input("the password cannot be written as BMPString"))?,
        &mac_salt,
        pkcs12::kdf::Pkcs12KeyType::Mac,
        ITERATIONS as i32,
        32,
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&mac_key).expect("HMAC takes any key length");
    mac.update(&auth_safe_der);
    let pfx = Pfx {
        version: Version::V3,
        auth_safe: ContentInfo {
            content_type: rfc5911::ID_DATA,
            content: Any::encode_from(&OctetString::new(auth_safe_der)?)?,
        },
        mac_data: Some(MacData {
            mac: DigestInfo {
                algorithm: AlgorithmIdentifierOwned { oid: rfc5912::ID_SHA_256, parameters: Some(Any::null()) },
                digest: OctetString::new(mac.finalize().into_bytes().to_vec())?,
            },
            mac_salt: OctetString::new(mac_salt.to_vec())?,
            iterations: ITERATIONS as i32,
        }),
    };
    Ok(pfx.to_der()?)
}

/// PBES2 parameters over a fresh salt and IV (the parameters borrow both).
fn pbes2<'a>(salt_iv: &'a mut [u8; 32], rng: &mut impl CryptoRngCore) -> Result<pkcs5::pbes2::Parameters<'a>> {
    rng.fill_bytes(salt_iv);
    let (salt, iv) = salt_iv.split_at(16);
    let iv: &[u8; 16] = iv.try_into().expect("16 octets");
    pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(ITERATIONS, salt, iv)
        .map_err(|e| ScepError::invalid_input(format!("PBES2: {e}")))
}

fn bag_attributes(local_key_id: &[u8], friendly_name: &str) -> Result<SetOfVec<Attribute>> {
    let mut attrs = SetOfVec::new();
    attrs.insert(single_valued(ID_LOCAL_KEY_ID, Any::encode_from(&OctetString::new(local_key_id)?)?)?)?;
    if !friendly_name.is_empty() {
        attrs.insert(single_valued(ID_FRIENDLY_NAME, Any::encode_from(&BmpString::from_utf8(friendly_name)?)?)?)?;
    }
    Ok(attrs)
}
