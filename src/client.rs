//! The requester's side of RFC 8894 §3.3 and §3.3.2: building PKIMessages and reading the CertRep.
//!
//! Sans-IO: every message stops where a private key is needed. A [`RequestBuilder`] returns an
//! [`UnsignedRequest`] whose signature the requester's key makes, and [`read_cert_rep`] returns a
//! [`CertRep::Sealed`] whose content-encryption key that key decrypts; the functions taking a [`Requester`]
//! do both with a key at hand. The whole procedure (GetCACaps, GetCACert, the key, the request, polling) is
//! the [`Enrollment`] step machine.

use der::{Decode, Encode};
use rand_core::CryptoRngCore;
use x509_cert::name::Name;
use zeroize::Zeroizing;

use crate::caps::CaCertificates;
use crate::envelope::{self, EnvelopeOptions};
use crate::error::{FailInfo, Result, ScepError};
use crate::issue::verify_issued_by;
#[cfg(feature = "pure-rsa")]
use crate::keys::RustCrypto;
use crate::keys::{Crypto, KeyOperation, PrivateKeyOps, PublicKeyOps, Unsigned};
use crate::message::{transaction_id_for, MessageType, PkiStatus, ScepAttributes, NONCE_LEN};
use crate::signed::{self, chain_order, IdentifierKind, SignedBy, SignedMessage};
use crate::wire::{Certificate, IssuerAndSerialNumber, IssuerAndSubject};

pub mod challenge;
pub mod enrollment;
#[cfg(feature = "server")]
pub mod from_profile;
pub mod http;

pub use enrollment::Enrollment;

/// How an exchange ended without a certificate: the error, and what a person or a log needs beside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub error: ScepError,
    /// The transaction, once the request was built.
    pub transaction_id: Option<String>,
    /// Set when the server could not be reached or did not answer SCEP.
    pub http: Option<Box<http::HttpProblem>>,
}

impl From<ScepError> for Failure {
    fn from(error: ScepError) -> Self {
        Self { error, transaction_id: None, http: None }
    }
}

impl From<der::Error> for Failure {
    fn from(error: der::Error) -> Self {
        ScepError::from(error).into()
    }
}

impl core::fmt::Display for Failure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for Failure {}

/// The requester's identity for one exchange: its key (through the crypto seam) and the certificate it
/// signs with (self-signed for a first enrollment, the current certificate for a renewal).
pub struct Requester<'a> {
    pub key: &'a dyn PrivateKeyOps,
    pub certificate: &'a Certificate,
}

/// A PKIMessage ready to send, and what its reply must echo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PkiRequest {
    pub message_type: MessageType,
    pub message: Vec<u8>,
    pub transaction_id: String,
    pub sender_nonce: Vec<u8>,
}

/// How to protect a request: cipher and digest come from [`crate::caps::CaCaps::negotiate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestOptions {
    pub envelope: EnvelopeOptions,
    /// The algorithms this client allows itself (3DES only under the legacy policy).
    pub policy: crate::algorithms::AlgorithmPolicy,
    pub digest: crate::algorithms::DigestAlg,
    pub signer_identifier: IdentifierKind,
}

/// Builds the PKIMessages of one requester to one CA, each up to the signature of the requester's key.
/// (Randomness comes as `&mut dyn`: one copy of the builder in the wasm, whatever generator calls it.)
pub struct RequestBuilder<'a> {
    /// The certificate that signs the requests and receives the replies.
    pub signer_certificate: &'a Certificate,
    pub ca: &'a CaCertificates,
    pub options: RequestOptions,
    /// Transports the content key to the CA (or its RA).
    pub public_ops: &'a dyn PublicKeyOps,
}

impl RequestBuilder<'_> {
    /// A PKCSReq or RenewalReq for `csr_der`. The transactionID defaults to hex SHA-256 of the CSR's key.
    pub fn certificate_request(
        &self,
        csr_der: &[u8],
        message_type: MessageType,
        transaction_id: Option<String>,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<UnsignedRequest> {
        if !matches!(message_type, MessageType::PkcsReq | MessageType::RenewalReq) {
            return Err(ScepError::invalid_input("a certificate request is PKCSReq or RenewalReq"));
        }
        let transaction_id = match transaction_id {
            Some(t) => t,
            None => {
                let csr = x509_cert::request::CertReq::from_der(csr_der)?;
                transaction_id_for(&csr.info.public_key.to_der()?)
            }
        };
        self.request(message_type, csr_der, transaction_id, rng)
    }

    /// A CertPoll (GetCertInitial) for a PENDING request: same transactionID, IssuerAndSubject content.
    pub fn cert_poll(
        &self,
        transaction_id: &str,
        subject: &Name,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<UnsignedRequest> {
        let content = IssuerAndSubject { issuer: self.ca.ca.tbs_certificate.subject.clone(), subject: subject.clone() }
            .to_der()?;
        self.request(MessageType::CertPoll, &content, transaction_id.to_owned(), rng)
    }

    /// A GetCert (a certificate by issuer and serial) or GetCRL (the CRL for that certificate).
    pub fn get_cert_or_crl(
        &self,
        message_type: MessageType,
        issuer_and_serial: &IssuerAndSerialNumber,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<UnsignedRequest> {
        if !matches!(message_type, MessageType::GetCert | MessageType::GetCrl) {
            return Err(ScepError::invalid_input("GetCert or GetCRL expected"));
        }
        let mut tid = [0u8; 16];
        rng.fill_bytes(&mut tid);
        self.request(message_type, &issuer_and_serial.to_der()?, base16ct::lower::encode_string(&tid), rng)
    }

    fn request(
        &self,
        message_type: MessageType,
        content: &[u8],
        transaction_id: String,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<UnsignedRequest> {
        let crypto = Crypto { public_ops: self.public_ops, policy: self.options.policy };
        let enveloped = envelope::seal(content, &self.ca.recipient, self.options.envelope, &crypto, &mut &mut *rng)?;
        let mut sender_nonce = vec![0u8; NONCE_LEN];
        rng.fill_bytes(&mut sender_nonce);
        let attributes = ScepAttributes {
            message_type: Some(message_type),
            transaction_id: transaction_id.clone(),
            sender_nonce: Some(sender_nonce.clone()),
            ..Default::default()
        };
        let by = SignedBy {
            certificate: self.signer_certificate,
            digest: self.options.digest,
            identifier: self.options.signer_identifier,
        };
        let signed = signed::unsigned(&enveloped, attributes.to_attributes()?, &by, &[self.signer_certificate], None)?;
        Ok(UnsignedRequest { signed, message_type, transaction_id, sender_nonce })
    }
}

/// A PKIMessage waiting for the requester's signature over its signed attributes.
#[derive(Clone)]
pub struct UnsignedRequest {
    signed: signed::UnsignedSignedData,
    message_type: MessageType,
    transaction_id: String,
    sender_nonce: Vec<u8>,
}

impl UnsignedRequest {
    pub fn transaction_id(&self) -> &str {
        &self.transaction_id
    }
}

impl Unsigned for UnsignedRequest {
    type Signed = PkiRequest;

    fn digest(&self) -> crate::algorithms::DigestAlg {
        self.signed.digest()
    }

    fn to_be_signed(&self) -> &[u8] {
        self.signed.to_be_signed()
    }

    fn finish(self, signature: &[u8]) -> Result<PkiRequest> {
        Ok(PkiRequest {
            message: self.signed.finish(signature)?,
            message_type: self.message_type,
            transaction_id: self.transaction_id,
            sender_nonce: self.sender_nonce,
        })
    }
}

/// Builds and signs a PKCSReq or RenewalReq for `csr_der` with a key at hand (see [`RequestBuilder`]).
#[cfg(feature = "pure-rsa")]
pub fn certificate_request(
    csr_der: &[u8],
    message_type: MessageType,
    transaction_id: Option<String>,
    requester: &Requester<'_>,
    ca: &CaCertificates,
    options: RequestOptions,
    rng: &mut impl CryptoRngCore,
) -> Result<PkiRequest> {
    let builder = RequestBuilder { signer_certificate: requester.certificate, ca, options, public_ops: &RustCrypto };
    builder.certificate_request(csr_der, message_type, transaction_id, rng)?.sign_with(requester.key)
}

/// Builds and signs a CertPoll with a key at hand (see [`RequestBuilder::cert_poll`]).
#[cfg(feature = "pure-rsa")]
pub fn cert_poll(
    transaction_id: &str,
    subject: &Name,
    requester: &Requester<'_>,
    ca: &CaCertificates,
    options: RequestOptions,
    rng: &mut impl CryptoRngCore,
) -> Result<PkiRequest> {
    let builder = RequestBuilder { signer_certificate: requester.certificate, ca, options, public_ops: &RustCrypto };
    builder.cert_poll(transaction_id, subject, rng)?.sign_with(requester.key)
}

/// Builds and signs a GetCert or GetCRL with a key at hand (see [`RequestBuilder::get_cert_or_crl`]).
#[cfg(feature = "pure-rsa")]
pub fn get_cert_or_crl(
    message_type: MessageType,
    issuer_and_serial: &IssuerAndSerialNumber,
    requester: &Requester<'_>,
    ca: &CaCertificates,
    options: RequestOptions,
    rng: &mut impl CryptoRngCore,
) -> Result<PkiRequest> {
    let builder = RequestBuilder { signer_certificate: requester.certificate, ca, options, public_ops: &RustCrypto };
    builder.get_cert_or_crl(message_type, issuer_and_serial, rng)?.sign_with(requester.key)
}

/// What a CertRep said.
#[derive(Clone, Debug)]
// A FAILURE's ScepError is the large variant; an outcome is made once per exchange, so boxing buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum CertRepOutcome {
    /// SUCCESS: the issued certificate (verified against the CA) and the rest of the chain sent with it.
    Issued { certificate: Certificate, chain: Vec<Certificate> },
    /// SUCCESS to a GetCRL: the CRLs (DER).
    Crl { crls: Vec<Vec<u8>> },
    /// PENDING: poll again with [`cert_poll`].
    Pending,
    /// FAILURE: the server's failInfo and failInfoText, with a resolution.
    Failed(ScepError),
}

/// A CertRep read and checked up to its envelope.
#[allow(clippy::large_enum_variant)]
pub enum CertRep {
    Pending,
    /// FAILURE: the server's failInfo and failInfoText, with a resolution.
    Failed(ScepError),
    /// SUCCESS: the content-encryption key is for the requester's key to decrypt.
    Sealed(SealedCertRep),
}

/// Reads and checks a CertRep: signed by the CA or an RA from GetCACert, transactionID and recipientNonce
/// echo the request. A SUCCESS stops at its envelope, sealed to `signer_certificate` (the requester's).
pub fn read_cert_rep(
    reply: &[u8],
    request: &PkiRequest,
    signer_certificate: &Certificate,
    ca: &CaCertificates,
    crypto: Crypto<'_>,
) -> Result<CertRep> {
    let signed = SignedMessage::parse(reply)?;
    let attrs = ScepAttributes::from_attributes(&signed.signed_attributes()?)?;
    if attrs.message_type != Some(MessageType::CertRep) {
        return Err(ScepError::malformed("the reply is not a CertRep"));
    }
    let signer_info = signed.signer()?;
    let signer_cert = signed
        .certificates
        .iter()
        .chain(ca.all.iter())
        .find(|c| signer_info.sid.identifies(c))
        .ok_or_else(|| ScepError::integrity("the CertRep's signer certificate is not known"))?;
    if !ca.all.contains(signer_cert) {
        verify_issued_by(signer_cert, &ca.ca, crypto.public_ops)
            .map_err(|_| ScepError::integrity("the CertRep is not signed by the CA or its RA"))?;
    }
    signed.verify(signer_cert, crypto.public_ops)?;
    if attrs.transaction_id != request.transaction_id {
        return Err(ScepError::integrity("the CertRep's transactionID does not match the request"));
    }
    if attrs.recipient_nonce.as_deref() != Some(request.sender_nonce.as_slice()) {
        return Err(ScepError::integrity("the CertRep's recipientNonce does not echo our senderNonce"));
    }
    match attrs.pki_status.ok_or_else(|| ScepError::malformed("the CertRep has no pkiStatus"))? {
        PkiStatus::Pending => Ok(CertRep::Pending),
        PkiStatus::Failure => Ok(CertRep::Failed(ScepError::refused(
            attrs.fail_info.unwrap_or(FailInfo::BadRequest),
            attrs.fail_info_text.as_deref(),
        ))),
        PkiStatus::Success => {
            let content = signed
                .content
                .as_deref()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| ScepError::malformed("SUCCESS without content"))?;
            let sealed = envelope::Sealed::parse(content, crypto.policy)?;
            let key = sealed.for_recipient(signer_certificate)?;
            Ok(CertRep::Sealed(SealedCertRep { sealed, key, message_type: request.message_type }))
        }
    }
}

/// A SUCCESS CertRep whose envelope the requester's key opens: [`Self::operation`] is the decryption to do.
#[derive(Clone)]
pub struct SealedCertRep {
    sealed: envelope::Sealed,
    key: envelope::EncryptedKey,
    message_type: MessageType,
}

impl SealedCertRep {
    pub fn operation(&self) -> KeyOperation {
        KeyOperation::Decrypt { transport: self.key.transport, ciphertext: self.key.ciphertext.clone() }
    }

    /// Opens the envelope with the decrypted content-encryption key and reads what it holds: on a certificate
    /// request, the issued certificate that carries `expected_spki_der` (else the first), verified against the CA
    /// with `ops`.
    pub fn finish(
        self,
        content_key: &[u8],
        ca: &CaCertificates,
        expected_spki_der: Option<&[u8]>,
        ops: &dyn PublicKeyOps,
    ) -> Result<CertRepOutcome> {
        let opened = self.sealed.decrypt(content_key, self.key.transport)?;
        let degenerate = SignedMessage::parse(&opened.plaintext)?;
        if self.message_type == MessageType::GetCrl {
            return Ok(CertRepOutcome::Crl { crls: degenerate_crls(&opened.plaintext)? });
        }
        let certs = chain_order(degenerate.certificates);
        let leaf_at = match expected_spki_der {
            Some(spki) => certs
                .iter()
                .position(|c| c.tbs_certificate.subject_public_key_info.to_der().ok().as_deref() == Some(spki)),
            None => (!certs.is_empty()).then_some(0),
        }
        .ok_or_else(|| ScepError::integrity("no certificate in the reply carries our public key"))?;
        let mut certs = certs;
        let certificate = certs.remove(leaf_at);
        let issuer = certs
            .iter()
            .chain(ca.all.iter())
            .find(|c| c.tbs_certificate.subject == certificate.tbs_certificate.issuer)
            .unwrap_or(&ca.ca);
        verify_issued_by(&certificate, issuer, ops)?;
        Ok(CertRepOutcome::Issued { certificate, chain: certs })
    }

    /// Opens with a key at hand.
    pub fn open(
        self,
        key: &dyn PrivateKeyOps,
        ca: &CaCertificates,
        expected_spki_der: Option<&[u8]>,
        ops: &dyn PublicKeyOps,
    ) -> Result<CertRepOutcome> {
        let content_key = Zeroizing::new(crate::keys::perform(key, &self.operation())?);
        self.finish(&content_key, ca, expected_spki_der, ops)
    }
}

/// [`read_cert_rep`] to the end with a key at hand: the outcome, with a SUCCESS opened and checked.
pub fn open_cert_rep(
    reply: &[u8],
    request: &PkiRequest,
    requester: &Requester<'_>,
    ca: &CaCertificates,
    expected_spki_der: Option<&[u8]>,
    crypto: Crypto<'_>,
) -> Result<CertRepOutcome> {
    Ok(match read_cert_rep(reply, request, requester.certificate, ca, crypto)? {
        CertRep::Pending => CertRepOutcome::Pending,
        CertRep::Failed(e) => CertRepOutcome::Failed(e),
        CertRep::Sealed(sealed) => sealed.open(requester.key, ca, expected_spki_der, crypto.public_ops)?,
    })
}

fn degenerate_crls(der: &[u8]) -> Result<Vec<Vec<u8>>> {
    let ci = cms::content_info::ContentInfo::from_der(der)?;
    let sd: crate::wire::SignedDataAsSent = ci.content.decode_as()?;
    Ok(match sd.crls {
        None => Vec::new(),
        Some(set) => set.element_tlvs()?.into_iter().map(<[u8]>::to_vec).collect(),
    })
}
