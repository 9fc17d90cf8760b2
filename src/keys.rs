//! RSA keys and the crypto provider seam.
//!
//! The core never needs a private key itself: what it builds stops at the bytes to sign ([`Unsigned`]) or the
//! key to decrypt, and hands them out as a [`KeyOperation`]. A key at hand answers synchronously through
//! [`PrivateKeyOps`] ([`RsaKey`], the pure-Rust key of the `pure-rsa` feature, or the Worker's callbacks into
//! workerd's `node:crypto`); a key held elsewhere (WebCrypto, which only answers asynchronously) answers the step
//! when it can. Without `pure-rsa` (the Worker's build) there is no RSA arithmetic here at all: the host performs
//! every RSA operation, public ones too ([`PublicKeyOps`]).

use const_oid::db::rfc5912;
use der::Decode;
use der::Encode;
use rand_core::CryptoRngCore;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::certificate::{CertificateInner, Profile};
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use zeroize::Zeroizing;
#[cfg(feature = "pure-rsa")]
use {
    pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding},
    rsa::pkcs1::DecodeRsaPrivateKey,
    rsa::{Oaep, Pkcs1v15Encrypt, RsaPrivateKey, RsaPublicKey},
};

use crate::algorithms::{AlgorithmPolicy, DigestAlg, KeyTransport};
use crate::error::{Result, ScepError};

/// The private-key operations the protocol needs. Implemented by [`RsaKey`] and by host adapters.
pub trait PrivateKeyOps {
    /// The key's SubjectPublicKeyInfo (an RSA key's: checked by [`rsa_key_bits`] where it was made).
    fn public_key(&self) -> &SubjectPublicKeyInfoOwned;
    /// RSASSA-PKCS1-v1_5 signature of `message` (hashed here with `digest`).
    fn sign(&self, digest: DigestAlg, message: &[u8]) -> Result<Vec<u8>>;
    /// Opens an RSA key transport (the content-encryption key of an EnvelopedData).
    fn decrypt(&self, transport: KeyTransport, ciphertext: &[u8]) -> Result<Vec<u8>>;
}

/// Public-key operations on peers' keys: checking their signatures and transporting a content key to them.
/// [`RustCrypto`] is the default; a host may plug in native crypto here too (the Worker does).
pub trait PublicKeyOps {
    /// RSASSA-PKCS1-v1_5 verification of `signature` over `message` (hashed here with `digest`).
    fn verify(
        &self,
        key: &SubjectPublicKeyInfoOwned,
        digest: DigestAlg,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool>;
    /// RSA key transport of `plaintext` (a content-encryption key) to `key`.
    fn encrypt(
        &self,
        key: &SubjectPublicKeyInfoOwned,
        transport: KeyTransport,
        plaintext: &[u8],
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Vec<u8>>;
}

/// The pure-Rust public-key operations (the `rsa` crate).
#[cfg(feature = "pure-rsa")]
pub struct RustCrypto;

#[cfg(feature = "pure-rsa")]
impl PublicKeyOps for RustCrypto {
    fn verify(
        &self,
        key: &SubjectPublicKeyInfoOwned,
        digest: DigestAlg,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool> {
        Ok(rsa_public_key(key)?.verify(digest.pkcs1v15_scheme(), &digest.digest(message), signature).is_ok())
    }

    fn encrypt(
        &self,
        key: &SubjectPublicKeyInfoOwned,
        transport: KeyTransport,
        plaintext: &[u8],
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Vec<u8>> {
        let public = rsa_public_key(key)?;
        // `&mut dyn CryptoRngCore` is itself a sized RNG.
        let mut rng = rng;
        let result = match transport {
            KeyTransport::RsaPkcs1v15 => public.encrypt(&mut rng, Pkcs1v15Encrypt, plaintext),
            KeyTransport::RsaOaepSha1 => public.encrypt(&mut rng, Oaep::new::<sha1::Sha1>(), plaintext),
            KeyTransport::RsaOaepSha256 => public.encrypt(&mut rng, Oaep::new::<sha2::Sha256>(), plaintext),
        };
        result.map_err(|e| ScepError::invalid_input(format!("key transport: {e}")))
    }
}

/// A public-key operation on a peer's key, handed out where the host performs RSA itself and only answers
/// asynchronously (WebCrypto): the same two operations as [`PublicKeyOps`], as data.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum PublicOperation {
    /// RSASSA-PKCS1-v1_5 verification (RFC 8017 §8.2.2) of `signature` over `data` with `key` (SPKI DER).
    Verify {
        #[serde(with = "serde_bytes")]
        #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array"))]
        key: Vec<u8>,
        digest: DigestAlg,
        #[serde(with = "serde_bytes")]
        #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array"))]
        data: Vec<u8>,
        #[serde(with = "serde_bytes")]
        #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array"))]
        signature: Vec<u8>,
    },
    /// RSAES-PKCS1-v1_5 or RSAES-OAEP encryption (RFC 8017 §7) of a content-encryption key to `key` (SPKI DER).
    Encrypt {
        #[serde(with = "serde_bytes")]
        #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array"))]
        key: Vec<u8>,
        transport: KeyTransport,
        #[serde(with = "serde_bytes")]
        #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array"))]
        plaintext: Vec<u8>,
    },
}

/// The result of a [`PublicOperation`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicAnswer {
    Verified(bool),
    Encrypted(Vec<u8>),
}

/// Performs `operation` with public-key operations at hand.
pub fn perform_public(
    ops: &dyn PublicKeyOps,
    operation: &PublicOperation,
    rng: &mut dyn CryptoRngCore,
) -> Result<PublicAnswer> {
    Ok(match operation {
        PublicOperation::Verify { key, digest, data, signature } => {
            PublicAnswer::Verified(ops.verify(&SubjectPublicKeyInfoOwned::from_der(key)?, *digest, data, signature)?)
        }
        PublicOperation::Encrypt { key, transport, plaintext } => PublicAnswer::Encrypted(ops.encrypt(
            &SubjectPublicKeyInfoOwned::from_der(key)?,
            *transport,
            plaintext,
            rng,
        )?),
    })
}

/// Public-key operations answered later, by a host that only answers asynchronously: a check or a build run
/// with it records every operation it has no answer for (a verification is taken as good meanwhile, an
/// encryption gives zeros), and its result is thrown away until [`Self::asked`] is empty. The caller performs
/// what was asked, [`Self::answer`]s it, and runs the same check again (a build from the same random state),
/// which then finds every answer. Nothing built or decided on an unanswered operation is ever used.
#[derive(Default)]
pub struct Deferred(Answers<PublicOperation, PublicAnswer>);

impl Deferred {
    pub fn answer(&mut self, operation: PublicOperation, answer: PublicAnswer) {
        self.0.answered.push((operation, answer));
    }

    /// What the runs since the last call needed and found no answer for (each once).
    pub fn asked(&self) -> Vec<PublicOperation> {
        self.0.asked.take()
    }

    fn lookup(&self, operation: PublicOperation) -> Option<PublicAnswer> {
        self.0.lookup(operation)
    }
}

/// The answers a host gave to the operations of a [`Deferred`] or [`DeferredKey`], and what was asked since.
struct Answers<O, A> {
    answered: Vec<(O, A)>,
    asked: core::cell::RefCell<Vec<O>>,
}

impl<O, A> Default for Answers<O, A> {
    fn default() -> Self {
        Self { answered: Vec::new(), asked: Default::default() }
    }
}

impl<O: PartialEq, A: Clone> Answers<O, A> {
    /// The answer to `operation`, or None, having recorded it as asked for (once).
    fn lookup(&self, operation: O) -> Option<A> {
        let found = self.answered.iter().find(|(o, _)| *o == operation).map(|(_, a)| a.clone());
        if found.is_none() {
            let mut asked = self.asked.borrow_mut();
            if !asked.contains(&operation) {
                asked.push(operation);
            }
        }
        found
    }
}

impl PublicKeyOps for Deferred {
    fn verify(
        &self,
        key: &SubjectPublicKeyInfoOwned,
        digest: DigestAlg,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool> {
        let operation = PublicOperation::Verify {
            key: key.to_der()?,
            digest,
            data: message.to_vec(),
            signature: signature.to_vec(),
        };
        Ok(match self.lookup(operation) {
            Some(PublicAnswer::Verified(good)) => good,
            Some(_) => return Err(ScepError::invalid_input("a verification was answered with a ciphertext")),
            None => true,
        })
    }

    fn encrypt(
        &self,
        key: &SubjectPublicKeyInfoOwned,
        transport: KeyTransport,
        plaintext: &[u8],
        _: &mut dyn CryptoRngCore,
    ) -> Result<Vec<u8>> {
        let bits = rsa_key_bits(key)?;
        let operation = PublicOperation::Encrypt { key: key.to_der()?, transport, plaintext: plaintext.to_vec() };
        match self.lookup(operation) {
            Some(PublicAnswer::Encrypted(ciphertext)) => Ok(ciphertext),
            Some(_) => Err(ScepError::invalid_input("an encryption was answered with a verdict")),
            None => Ok(vec![0; bits.div_ceil(8)]),
        }
    }
}

/// A private key held by a host that only answers asynchronously, for a check run again once its operations are
/// answered (as [`Deferred`] is for public-key operations): an operation it has no answer for is recorded and
/// fails meanwhile.
pub struct DeferredKey {
    public: SubjectPublicKeyInfoOwned,
    answers: Answers<KeyOperation, Vec<u8>>,
}

impl DeferredKey {
    pub fn new(public: SubjectPublicKeyInfoOwned) -> Self {
        Self { public, answers: Answers::default() }
    }

    pub fn answer(&mut self, operation: KeyOperation, out: Vec<u8>) {
        self.answers.answered.push((operation, out));
    }

    /// What the runs since the last call needed and found no answer for (each once).
    pub fn asked(&self) -> Vec<KeyOperation> {
        self.answers.asked.take()
    }

    fn lookup(&self, operation: KeyOperation) -> Result<Vec<u8>> {
        self.answers.lookup(operation).ok_or_else(|| ScepError::invalid_input("the key has not answered yet"))
    }
}

impl PrivateKeyOps for DeferredKey {
    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.public
    }

    fn sign(&self, digest: DigestAlg, message: &[u8]) -> Result<Vec<u8>> {
        self.lookup(KeyOperation::Sign { digest, data: message.to_vec() })
    }

    fn decrypt(&self, transport: KeyTransport, ciphertext: &[u8]) -> Result<Vec<u8>> {
        self.lookup(KeyOperation::Decrypt { transport, ciphertext: ciphertext.to_vec() })
    }
}

/// The crypto one side works with, chosen once and passed along (as rustls's `CryptoProvider` is): whose
/// public-key operations check signatures and transport content keys, and which algorithms are allowed.
#[derive(Clone, Copy)]
pub struct Crypto<'a> {
    pub public_ops: &'a dyn PublicKeyOps,
    pub policy: AlgorithmPolicy,
}

#[cfg(feature = "pure-rsa")]
impl Crypto<'static> {
    /// The pure-Rust public-key operations under `policy`.
    pub fn rust(policy: AlgorithmPolicy) -> Self {
        Self { public_ops: &RustCrypto, policy }
    }
}

/// Verifies with `ops`; a failure is badMessageCheck naming `what` was being checked.
pub fn check_signature(
    ops: &dyn PublicKeyOps,
    key: &SubjectPublicKeyInfoOwned,
    digest: DigestAlg,
    message: &[u8],
    signature: &[u8],
    what: &str,
) -> Result<()> {
    // Only RSA (RSASSA-PKCS1-v1_5): a host's verify would check whatever algorithm the key is for.
    rsa_key_bits(key)?;
    if ops.verify(key, digest, message, signature)? {
        Ok(())
    } else {
        Err(ScepError::integrity(format!("{what} signature does not verify")))
    }
}

/// Key sizes: 2048 (default), 3072, 4096; 1024 only under the legacy policy.
pub fn check_key_bits(bits: usize, policy: AlgorithmPolicy) -> Result<()> {
    match bits {
        2048 | 3072 | 4096 => Ok(()),
        1024 if policy == AlgorithmPolicy::Legacy => Ok(()),
        1024 => Err(ScepError::unsupported_algorithm("RSA 1024 is only accepted on a legacy profile")),
        n => Err(ScepError::unsupported_algorithm(format!("RSA {n}: use 2048, 3072 or 4096"))),
    }
}

/// A pure-Rust RSA private key.
#[cfg(feature = "pure-rsa")]
#[derive(Clone)]
pub struct RsaKey {
    private: RsaPrivateKey,
    public: SubjectPublicKeyInfoOwned,
}

#[cfg(feature = "pure-rsa")]
impl RsaKey {
    pub fn generate(bits: usize, policy: AlgorithmPolicy, rng: &mut impl CryptoRngCore) -> Result<Self> {
        check_key_bits(bits, policy)?;
        let private =
            RsaPrivateKey::new(rng, bits).map_err(|e| ScepError::invalid_input(format!("key generation: {e}")))?;
        Self::from_private(private)
    }

    /// A key derived deterministically from `seed` (ChaCha20): the same key on every host, so benchmarks
    /// of native and wasm do equal work. Never for production keys.
    pub fn generate_from_seed(bits: usize, seed: [u8; 32]) -> Result<Self> {
        use rand_core::SeedableRng;
        Self::generate(bits, AlgorithmPolicy::Legacy, &mut rand_chacha::ChaCha20Rng::from_seed(seed))
    }

    fn from_private(private: RsaPrivateKey) -> Result<Self> {
        let der = private.to_public_key().to_public_key_der().map_err(ScepError::invalid_input)?;
        Ok(Self { private, public: SubjectPublicKeyInfoOwned::from_der(der.as_bytes())? })
    }

    /// PKCS#8 DER (as WebCrypto exports it), PKCS#8 PEM or PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`).
    pub fn import(bytes: &[u8]) -> Result<Self> {
        let bad = |e: &dyn core::fmt::Display| ScepError::invalid_input(format!("not an RSA private key: {e}"));
        let private = match core::str::from_utf8(bytes) {
            Ok(text) if text.contains("-----BEGIN RSA PRIVATE KEY-----") => {
                RsaPrivateKey::from_pkcs1_pem(text).map_err(|e| bad(&e))?
            }
            Ok(text) if text.contains("-----BEGIN") => RsaPrivateKey::from_pkcs8_pem(text).map_err(|e| bad(&e))?,
            _ => RsaPrivateKey::from_pkcs8_der(bytes)
                .or_else(|_| RsaPrivateKey::from_pkcs1_der(bytes))
                .map_err(|e| bad(&e))?,
        };
        private.validate().map_err(|e| bad(&e))?;
        Self::from_private(private)
    }

    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>> {
        let doc = self.private.to_pkcs8_der().map_err(ScepError::invalid_input)?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>> {
        self.private.to_pkcs8_pem(LineEnding::LF).map_err(ScepError::invalid_input)
    }

    pub fn bits(&self) -> usize {
        rsa::traits::PublicKeyParts::n(&self.private).bits()
    }
}

#[cfg(feature = "pure-rsa")]
impl PrivateKeyOps for RsaKey {
    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.public
    }

    fn sign(&self, digest: DigestAlg, message: &[u8]) -> Result<Vec<u8>> {
        self.private
            .sign(digest.pkcs1v15_scheme(), &digest.digest(message))
            .map_err(|e| ScepError::invalid_input(format!("signing failed: {e}")))
    }

    fn decrypt(&self, transport: KeyTransport, ciphertext: &[u8]) -> Result<Vec<u8>> {
        let result = match transport {
            KeyTransport::RsaPkcs1v15 => self.private.decrypt(Pkcs1v15Encrypt, ciphertext),
            KeyTransport::RsaOaepSha1 => self.private.decrypt(Oaep::new::<sha1::Sha1>(), ciphertext),
            KeyTransport::RsaOaepSha256 => self.private.decrypt(Oaep::new::<sha2::Sha256>(), ciphertext),
        };
        result.map_err(|_| ScepError::decrypt_failed())
    }
}

/// A private-key operation the core hands out instead of performing it: the bytes and the algorithm. Whoever
/// holds the key performs it (WebCrypto, workerd's `node:crypto`, or an [`RsaKey`] through [`perform`]) and
/// hands the result back; the core then continues once, with nothing to build again.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum KeyOperation {
    /// RSASSA-PKCS1-v1_5 (RFC 8017 §8.2) over `data`, hashed with `digest` by the signer (WebCrypto hashes
    /// itself, so the bytes are the message, not a digest).
    Sign {
        digest: DigestAlg,
        #[serde(with = "serde_bytes")]
        #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array"))]
        data: Vec<u8>,
    },
    /// RSAES-PKCS1-v1_5 or RSAES-OAEP (RFC 8017 §7): the content-encryption key of an EnvelopedData.
    Decrypt {
        transport: KeyTransport,
        #[serde(with = "serde_bytes")]
        #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array"))]
        ciphertext: Vec<u8>,
    },
}

/// Performs `operation` with a key at hand: the one synchronous way a step is answered.
pub fn perform(key: &dyn PrivateKeyOps, operation: &KeyOperation) -> Result<Vec<u8>> {
    match operation {
        KeyOperation::Sign { digest, data } => key.sign(*digest, data),
        KeyOperation::Decrypt { transport, ciphertext } => key.decrypt(*transport, ciphertext),
    }
}

/// A structure built up to its signature (a CSR, a certificate, a SignedData): [`Self::to_be_signed`] with
/// [`Self::digest`] is what the key signs, and [`Self::finish`] takes the signature and returns the signed
/// structure. A host that signs asynchronously gets [`Self::operation`]; a key at hand uses [`Self::sign_with`].
pub trait Unsigned: Sized {
    type Signed;
    fn digest(&self) -> DigestAlg;
    /// The DER the signature covers.
    fn to_be_signed(&self) -> &[u8];
    /// The signed structure, with `signature` (RSASSA-PKCS1-v1_5 by the signer's key) in place.
    fn finish(self, signature: &[u8]) -> Result<Self::Signed>;

    fn operation(&self) -> KeyOperation {
        KeyOperation::Sign { digest: self.digest(), data: self.to_be_signed().to_vec() }
    }

    fn sign_with(self, key: &dyn PrivateKeyOps) -> Result<Self::Signed> {
        let signature = key.sign(self.digest(), self.to_be_signed())?;
        self.finish(&signature)
    }
}

/// The size in bits of the RSA key of a SubjectPublicKeyInfo (its modulus, RFC 8017 A.1.1 RSAPublicKey, read
/// without any RSA arithmetic); anything but an RSA key is refused with badAlg, an unreadable one as malformed.
pub fn rsa_key_bits(spki: &SubjectPublicKeyInfoOwned) -> Result<usize> {
    if spki.algorithm.oid != rfc5912::RSA_ENCRYPTION {
        return Err(ScepError::unsupported_algorithm(format!("public key algorithm {}", spki.algorithm.oid)));
    }
    let key = pkcs1::RsaPublicKey::from_der(spki.subject_public_key.raw_bytes())
        .map_err(|e| ScepError::malformed(format!("RSA public key: {e}")))?;
    // The INTEGER's bytes come without leading zeros.
    let modulus = key.modulus.as_bytes();
    match modulus.first() {
        Some(first) if key.public_exponent.as_bytes().last().is_some_and(|e| e & 1 == 1) => {
            Ok(modulus.len() * 8 - first.leading_zeros() as usize)
        }
        _ => Err(ScepError::malformed("RSA public key: no modulus or an even exponent")),
    }
}

/// The `rsa` crate's public key of a SubjectPublicKeyInfo; anything else is refused with badAlg.
#[cfg(feature = "pure-rsa")]
fn rsa_public_key(spki: &SubjectPublicKeyInfoOwned) -> Result<RsaPublicKey> {
    rsa_key_bits(spki)?;
    let der = spki.to_der()?;
    use rsa::pkcs8::DecodePublicKey;
    RsaPublicKey::from_public_key_der(&der).map_err(|e| ScepError::malformed(format!("RSA public key: {e}")))
}

/// An RSA private key as the client takes it (PKCS#8 DER or PEM, PKCS#1 DER or PEM `BEGIN RSA PRIVATE KEY`),
/// read (RFC 5208 PrivateKeyInfo, RFC 8017 A.1.2 RSAPrivateKey): its PKCS#8 DER and the SubjectPublicKeyInfo of its
/// public half. With `pure-rsa` the key is also checked whole (its primes make its modulus, its exponents fit);
/// without (the browser build, which has no RSA arithmetic) WebCrypto checks it when it imports it for a use.
pub fn read_private_key(bytes: &[u8]) -> Result<(Zeroizing<Vec<u8>>, SubjectPublicKeyInfoOwned)> {
    use der::asn1::{AnyRef, BitString};
    let bad = |e: &dyn core::fmt::Display| ScepError::invalid_input(format!("not an RSA private key: {e}"));
    let (pkcs1_label, der) = match core::str::from_utf8(bytes) {
        Ok(text) if text.contains("-----BEGIN") => {
            let (label, der) = der::pem::decode_vec(text.trim().as_bytes()).map_err(|e| bad(&e))?;
            match label {
                "RSA PRIVATE KEY" => (true, Zeroizing::new(der)),
                "PRIVATE KEY" => (false, Zeroizing::new(der)),
                other => return Err(bad(&format!("a PEM {other:?} block"))),
            }
        }
        _ => (pkcs8::PrivateKeyInfo::from_der(bytes).is_err(), Zeroizing::new(bytes.to_vec())),
    };
    let rsa_encryption = spki::AlgorithmIdentifierRef { oid: rfc5912::RSA_ENCRYPTION, parameters: Some(AnyRef::NULL) };
    let pkcs8 = if pkcs1_label {
        pkcs1::RsaPrivateKey::from_der(&der).map_err(|e| bad(&e))?;
        let info = pkcs8::PrivateKeyInfo { algorithm: rsa_encryption, private_key: &der, public_key: None };
        Zeroizing::new(info.to_der()?)
    } else {
        der
    };
    let info = pkcs8::PrivateKeyInfo::from_der(&pkcs8).map_err(|e| bad(&e))?;
    if info.algorithm.oid != rfc5912::RSA_ENCRYPTION {
        return Err(ScepError::unsupported_algorithm(format!("private key algorithm {}", info.algorithm.oid)));
    }
    if info.algorithm.parameters != Some(AnyRef::NULL) {
        return Err(bad(&"rsaEncryption takes NULL parameters (RFC 8017 A.1)"));
    }
    let private = pkcs1::RsaPrivateKey::from_der(info.private_key).map_err(|e| bad(&e))?;
    // e = 1 would be no encryption at all; RFC 8017 §3.1 asks 3 <= e.
    let exponent = private.public_exponent.as_bytes();
    if exponent.len() <= 1 && exponent.first().map_or(true, |e| *e < 3) {
        return Err(bad(&"its public exponent is below 3"));
    }
    #[cfg(feature = "pure-rsa")]
    RsaKey::import(&pkcs8)?;
    let spki = SubjectPublicKeyInfoOwned {
        algorithm: spki::AlgorithmIdentifierOwned { oid: rfc5912::RSA_ENCRYPTION, parameters: Some(der::Any::null()) },
        subject_public_key: BitString::from_bytes(&private.public_key().to_der()?)?,
    };
    rsa_key_bits(&spki)?;
    Ok((pkcs8, spki))
}

/// SHA-256 of a certificate's DER, lowercase hex: how a CA and its store name a certificate, and what a
/// pinned CA fingerprint is compared with.
pub fn fingerprint(certificate_der: &[u8]) -> String {
    base16ct::lower::encode_string(&DigestAlg::Sha256.digest(certificate_der))
}

/// SHA-256 of a SubjectPublicKeyInfo's DER, lowercase hex: ties a transaction to one key.
pub fn key_digest(spki_der: &[u8]) -> String {
    base16ct::lower::encode_string(&DigestAlg::Sha256.digest(spki_der))
}

/// The certificate's subjectKeyIdentifier extension, or the RFC 5280 method-1 value computed from its key.
pub fn key_identifier<P: Profile>(cert: &CertificateInner<P>) -> Vec<u8> {
    cert.tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == rfc5912::ID_CE_SUBJECT_KEY_IDENTIFIER)
        .and_then(|e| SubjectKeyIdentifier::from_der(e.extn_value.as_bytes()).ok())
        .map(|ski| ski.0.as_bytes().to_vec())
        .unwrap_or_else(|| subject_key_id(&cert.tbs_certificate.subject_public_key_info))
}

/// RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING.
pub fn subject_key_id(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    DigestAlg::Sha1.digest(spki.subject_public_key.raw_bytes())
}
