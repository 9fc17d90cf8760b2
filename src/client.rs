//! The requester's side of RFC 8894 §3.3 and §3.3.2: building PKIMessages and reading the CertRep.
//!
//! Sans-IO: the caller fetched GetCACaps/GetCACert, sends the bytes built here to `PKIOperation`, and hands
//! the reply back. Polling a PENDING request is the caller's loop: build a CertPoll with the same
//! transactionID and read its reply the same way.

use der::{Decode, Encode};
use rand_core::CryptoRngCore;
use x509_cert::name::Name;

use crate::caps::CaCertificates;
use crate::envelope::{self, EnvelopeOptions, Recipient};
use crate::error::{FailInfo, Result, ScepError};
use crate::issue::verify_issued_by;
use crate::keys::PrivateKeyOps;
use crate::message::{transaction_id_for, MessageType, PkiStatus, ScepAttributes, NONCE_LEN};
use crate::signed::{self, chain_order, IdentifierKind, SignedMessage, Signer};
use crate::wire::{Certificate, IssuerAndSerialNumber, IssuerAndSubject};

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

/// Builds a PKCSReq or RenewalReq for `csr_der`. The transactionID defaults to hex SHA-256 of the CSR's key.
pub fn certificate_request(
    csr_der: &[u8],
    message_type: MessageType,
    transaction_id: Option<String>,
    requester: &Requester<'_>,
    ca: &CaCertificates,
    options: RequestOptions,
    rng: &mut impl CryptoRngCore,
) -> Result<PkiRequest> {
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
    request(message_type, csr_der, transaction_id, requester, ca, options, rng)
}

/// Builds a CertPoll (GetCertInitial) for a PENDING request: same transactionID, IssuerAndSubject content.
pub fn cert_poll(
    transaction_id: &str,
    subject: &Name,
    requester: &Requester<'_>,
    ca: &CaCertificates,
    options: RequestOptions,
    rng: &mut impl CryptoRngCore,
) -> Result<PkiRequest> {
    let content =
        IssuerAndSubject { issuer: ca.ca.tbs_certificate.subject.clone(), subject: subject.clone() }.to_der()?;
    request(MessageType::CertPoll, &content, transaction_id.to_owned(), requester, ca, options, rng)
}

/// Builds a GetCert (a certificate by issuer and serial) or GetCRL (the CRL for that certificate).
pub fn get_cert_or_crl(
    message_type: MessageType,
    issuer_and_serial: &IssuerAndSerialNumber,
    requester: &Requester<'_>,
    ca: &CaCertificates,
    options: RequestOptions,
    rng: &mut impl CryptoRngCore,
) -> Result<PkiRequest> {
    if !matches!(message_type, MessageType::GetCert | MessageType::GetCrl) {
        return Err(ScepError::invalid_input("GetCert or GetCRL expected"));
    }
    let mut tid = [0u8; 16];
    rng.fill_bytes(&mut tid);
    request(message_type, &issuer_and_serial.to_der()?, hex::encode(tid), requester, ca, options, rng)
}

/// How to protect a request: cipher and digest come from [`crate::caps::CaCaps::negotiate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestOptions {
    pub envelope: EnvelopeOptions,
    pub digest: crate::algorithms::DigestAlg,
    pub signer_identifier: IdentifierKind,
}

fn request(
    message_type: MessageType,
    content: &[u8],
    transaction_id: String,
    requester: &Requester<'_>,
    ca: &CaCertificates,
    options: RequestOptions,
    rng: &mut impl CryptoRngCore,
) -> Result<PkiRequest> {
    let enveloped = envelope::seal(content, &ca.recipient, options.envelope, rng)?;
    let mut sender_nonce = vec![0u8; NONCE_LEN];
    rng.fill_bytes(&mut sender_nonce);
    let attributes = ScepAttributes {
        message_type: Some(message_type),
        transaction_id: transaction_id.clone(),
        sender_nonce: Some(sender_nonce.clone()),
        ..Default::default()
    };
    let signer = Signer {
        key: requester.key,
        certificate: requester.certificate,
        digest: options.digest,
        identifier: options.signer_identifier,
    };
    let message = signed::sign(&enveloped, attributes.to_attributes()?, &signer, &[requester.certificate], None)?;
    Ok(PkiRequest { message_type, message, transaction_id, sender_nonce })
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

/// Reads and checks a CertRep: signed by the CA or an RA from GetCACert, transactionID and recipientNonce
/// echo the request, and on SUCCESS the issued certificate carries `expected_spki` and verifies against the CA.
pub fn read_cert_rep(
    reply: &[u8],
    request: &PkiRequest,
    requester: &Requester<'_>,
    ca: &CaCertificates,
    expected_spki_der: Option<&[u8]>,
    legacy: bool,
) -> Result<CertRepOutcome> {
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
        verify_issued_by(signer_cert, &ca.ca)
            .map_err(|_| ScepError::integrity("the CertRep is not signed by the CA or its RA"))?;
    }
    signed.verify(signer_cert)?;
    if attrs.transaction_id != request.transaction_id {
        return Err(ScepError::integrity("the CertRep's transactionID does not match the request"));
    }
    if attrs.recipient_nonce.as_deref() != Some(request.sender_nonce.as_slice()) {
        return Err(ScepError::integrity("the CertRep's recipientNonce does not echo our senderNonce"));
    }
    match attrs.pki_status.ok_or_else(|| ScepError::malformed("the CertRep has no pkiStatus"))? {
        PkiStatus::Pending => Ok(CertRepOutcome::Pending),
        PkiStatus::Failure => Ok(CertRepOutcome::Failed(ScepError::refused(
            attrs.fail_info.unwrap_or(FailInfo::BadRequest),
            attrs.fail_info_text.as_deref(),
        ))),
        PkiStatus::Success => {
            let content = signed
                .content
                .as_deref()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| ScepError::malformed("SUCCESS without content"))?;
            let opened = envelope::open(
                content,
                &[Recipient { certificate: Some(requester.certificate), key: requester.key }],
                legacy,
            )?;
            let degenerate = SignedMessage::parse(&opened.plaintext)?;
            if request.message_type == MessageType::GetCrl {
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
            verify_issued_by(&certificate, issuer)?;
            Ok(CertRepOutcome::Issued { certificate, chain: certs })
        }
    }
}

fn degenerate_crls(der: &[u8]) -> Result<Vec<Vec<u8>>> {
    let ci = cms::content_info::ContentInfo::from_der(der)?;
    let sd: crate::wire::SignedDataAsSent = ci.content.decode_as()?;
    Ok(match sd.crls {
        None => Vec::new(),
        Some(set) => set.element_tlvs()?.into_iter().map(<[u8]>::to_vec).collect(),
    })
}
