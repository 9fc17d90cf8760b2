//! The CA's side of RFC 8894 §3.3 and §4.3: open a PKIOperation into facts, and answer with a CertRep.
//!
//! Reading happens in two steps, because the answer to a bad request depends on how bad it is:
//! [`read_request`] fails only when there is no transactionID/senderNonce to answer to (HTTP 400), while
//! every failure of [`IncomingRequest::open`] (signature, decryption, CSR, algorithm) is answered with a
//! signed FAILURE CertRep by [`cert_rep`].
//!
//! ```text
//! CertRep: pkiStatus SUCCESS  -> content = EnvelopedData(degenerate SignedData: issued cert + chain)
//!                    FAILURE  -> failInfo (+ failInfoText), no content
//!                    PENDING  -> no content
//! every CertRep: transactionID echoed, fresh senderNonce, recipientNonce = the request's senderNonce
//! ```

use der::{Decode, Encode};
use rand_core::CryptoRngCore;

use crate::algorithms::{AlgorithmPolicy, Cipher, DigestAlg, KeyTransport};
use crate::csr::CsrFacts;
use crate::envelope::{self, EnvelopeOptions, Recipient};
use crate::error::{FailInfo, Result, ScepError};
use crate::issue::unix_seconds;
use crate::keys::{Crypto, PublicKeyOps};
use crate::message::{MessageType, PkiStatus, ScepAttributes, NONCE_LEN};
use crate::signed::{self, IdentifierKind, SignedBy, SignedMessage, UnsignedSignedData};
use crate::wire::{Certificate, IssuerAndSerialNumber, IssuerAndSubject};

/// A PKIOperation whose SCEP attributes could be read: enough to answer it on the wire.
#[derive(Clone, Debug)]
pub struct IncomingRequest {
    pub signed: SignedMessage,
    pub attributes: ScepAttributes,
}

/// Step one: parse the SignedData and its SCEP attributes. A failure here means HTTP 400.
pub fn read_request(bytes: &[u8]) -> Result<IncomingRequest> {
    let signed = SignedMessage::parse(bytes)?;
    let attributes = ScepAttributes::from_attributes(&signed.signed_attributes()?)?;
    if attributes.sender_nonce.is_none() {
        return Err(ScepError::malformed("the senderNonce attribute is missing"));
    }
    if attributes.message_type == Some(MessageType::CertRep) {
        return Err(ScepError::malformed("a CertRep is not a request"));
    }
    Ok(IncomingRequest { signed, attributes })
}

/// The certificate a request was signed with.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignerFacts {
    pub subject: String,
    pub issuer: String,
    /// Hex of the serial number.
    pub serial: String,
    pub self_signed: bool,
    pub not_before: u64,
    pub not_after: u64,
    /// SHA-256 of the certificate, hex: how the store finds a certificate it issued.
    pub fingerprint: String,
}

/// Everything the policy needs to decide on a request, after every integrity check passed.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestFacts {
    pub message_type: MessageType,
    pub transaction_id: String,
    pub digest: DigestAlg,
    pub cipher: Cipher,
    pub key_transport: KeyTransport,
    pub signer: SignerFacts,
    /// PKCSReq / RenewalReq.
    pub csr: Option<CsrFacts>,
    /// CertPoll: issuer and subject as RFC 4514 strings.
    pub poll: Option<(String, String)>,
    /// GetCert / GetCRL: issuer (RFC 4514) and serial (hex).
    pub issuer_and_serial: Option<(String, String)>,
}

/// What a profile accepts of a request's algorithms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Acceptance {
    /// Legacy: 3DES (and single DES, read only), SHA-1 and RSA 1024 for old clients.
    pub policy: AlgorithmPolicy,
    /// RSA-OAEP key transport only: an envelope sealed with PKCS#1 v1.5 is refused before any decryption.
    pub oaep_only: bool,
}

impl IncomingRequest {
    /// Step two: verify the signature, check algorithms under a profile's [`Acceptance`], open the envelope
    /// with one of `recipients` and read its content; `ops` checks the signature and the CSR's proof of
    /// possession. Every error here is answered with a FAILURE CertRep.
    pub fn open(
        &self,
        recipients: &[Recipient<'_>],
        accept: Acceptance,
        ops: &dyn PublicKeyOps,
    ) -> Result<RequestFacts> {
        let sealed = self.unseal(accept, ops)?;
        for r in recipients {
            let Some(certificate) = r.certificate else { continue };
            if let Ok(key) = sealed.for_recipient(certificate) {
                let content_key = zeroize::Zeroizing::new(r.key.decrypt(key.transport, &key.ciphertext)?);
                return self.read_content(&sealed.decrypt(&content_key, key.transport)?, accept, ops);
            }
        }
        Err(ScepError::decrypt_failed())
    }

    /// [`Self::open`] up to the envelope: the signature verified, the algorithms checked under `accept`, the
    /// envelope parsed; its content-encryption key is what one of the endpoint's keys opens next.
    pub fn unseal(&self, accept: Acceptance, ops: &dyn PublicKeyOps) -> Result<envelope::Sealed> {
        let legacy = accept.policy == AlgorithmPolicy::Legacy;
        let digest = self.signed.digest_alg()?;
        if digest.is_legacy() && !legacy {
            return Err(ScepError::unsupported_algorithm("SHA-1 is only accepted on a legacy profile"));
        }
        let signer_cert = self.signed.signer_certificate()?;
        self.signed.verify(signer_cert, ops)?;
        let content = self
            .signed
            .content
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| ScepError::malformed("the request has no content"))?;
        if accept.oaep_only && envelope::key_transports(content)?.contains(&KeyTransport::RsaPkcs1v15) {
            return Err(ScepError::unsupported_algorithm(
                "RSA PKCS#1 v1.5 key transport: this profile accepts RSA-OAEP only",
            ));
        }
        envelope::Sealed::parse(content, accept.policy)
    }

    /// [`Self::open`] after the envelope: its decrypted content read into the request's facts.
    pub fn read_content(
        &self,
        opened: &envelope::Opened,
        accept: Acceptance,
        ops: &dyn PublicKeyOps,
    ) -> Result<RequestFacts> {
        let legacy = accept.policy == AlgorithmPolicy::Legacy;
        let digest = self.signed.digest_alg()?;
        let signer_cert = self.signed.signer_certificate()?;
        let message_type = self.attributes.message_type.expect("read_request checked it");
        let (mut csr, mut poll, mut issuer_and_serial) = (None, None, None);
        match message_type {
            MessageType::PkcsReq | MessageType::RenewalReq => {
                let facts = CsrFacts::from_der(&opened.plaintext, ops)?;
                if facts.signature_digest.is_legacy() && !legacy {
                    return Err(ScepError::unsupported_algorithm(
                        "a CSR signed with SHA-1 is only accepted on a legacy profile",
                    ));
                }
                csr = Some(facts);
            }
            MessageType::CertPoll => {
                let ias = IssuerAndSubject::from_der(&opened.plaintext)
                    .map_err(|e| ScepError::malformed(format!("IssuerAndSubject: {e}")))?;
                poll = Some((ias.issuer.to_string(), ias.subject.to_string()));
            }
            MessageType::GetCert | MessageType::GetCrl => {
                let ias = IssuerAndSerialNumber::from_der(&opened.plaintext)
                    .map_err(|e| ScepError::malformed(format!("IssuerAndSerialNumber: {e}")))?;
                issuer_and_serial =
                    Some((ias.issuer.to_string(), crate::wire::serial_hex(ias.serial_number.as_bytes())));
            }
            MessageType::CertRep => unreachable!("read_request refuses CertRep"),
        }
        let tbs = &signer_cert.tbs_certificate;
        Ok(RequestFacts {
            message_type,
            transaction_id: self.attributes.transaction_id.clone(),
            digest,
            cipher: opened.cipher,
            key_transport: opened.transport,
            signer: SignerFacts {
                subject: tbs.subject.to_string(),
                issuer: tbs.issuer.to_string(),
                serial: crate::wire::serial_hex(tbs.serial_number.as_bytes()),
                self_signed: tbs.subject == tbs.issuer,
                not_before: unix_seconds(&tbs.validity.not_before),
                not_after: unix_seconds(&tbs.validity.not_after),
                fingerprint: crate::keys::fingerprint(&signer_cert.to_der()?),
            },
            csr,
            poll,
            issuer_and_serial,
        })
    }
}

/// What to answer.
pub enum Reply<'a> {
    /// The issued certificate first, then its chain.
    Issued {
        certificates: Vec<&'a Certificate>,
    },
    /// A GetCRL answer: CRLs (DER).
    Crl {
        crls: Vec<&'a [u8]>,
    },
    Pending,
    Failure {
        fail_info: FailInfo,
        text: String,
    },
}

impl From<&ScepError> for Reply<'_> {
    fn from(e: &ScepError) -> Self {
        Reply::Failure { fail_info: e.fail_info, text: e.message.clone() }
    }
}

/// How a SUCCESS is enveloped for the requester: in kind with its request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyEnvelope {
    pub cipher: Cipher,
    pub transport: KeyTransport,
}

impl ReplyEnvelope {
    /// The request's content cipher, except that single DES (accepted only on a legacy profile) is answered
    /// with 3DES, since DES is never produced; and the request's key transport, so a client that sent
    /// RSA-OAEP (it implements OAEP) is answered with RSA-OAEP, and every other client with PKCS#1 v1.5.
    pub fn in_kind(request: &RequestFacts) -> Self {
        let cipher = match request.cipher {
            Cipher::DesCbc => Cipher::DesEde3Cbc,
            c => c,
        };
        Self { cipher, transport: request.key_transport }
    }
}

/// Builds the CertRep for `request`, up to the signature of `signer`'s key (the RA's, or the CA's when there is
/// no RA): [`crate::keys::Unsigned`]. `envelope`
/// (from the opened request, see [`ReplyEnvelope::in_kind`]) encrypts a SUCCESS to the requester's signer
/// certificate under `crypto`; a request that could not be opened is only ever answered with FAILURE or PENDING.
pub fn cert_rep(
    request: &IncomingRequest,
    reply: Reply<'_>,
    signer: &SignedBy<'_>,
    envelope: Option<ReplyEnvelope>,
    crypto: &Crypto<'_>,
    rng: &mut impl CryptoRngCore,
) -> Result<UnsignedSignedData> {
    let mut sender_nonce = vec![0u8; NONCE_LEN];
    rng.fill_bytes(&mut sender_nonce);
    let mut attributes = ScepAttributes {
        message_type: Some(MessageType::CertRep),
        transaction_id: request.attributes.transaction_id.clone(),
        sender_nonce: Some(sender_nonce),
        recipient_nonce: request.attributes.sender_nonce.clone(),
        ..Default::default()
    };
    let content = match reply {
        Reply::Issued { certificates } => {
            attributes.pki_status = Some(PkiStatus::Success);
            seal_for_requester(request, &signed::certs_only(&certificates)?, envelope, crypto, rng)?
        }
        Reply::Crl { crls } => {
            attributes.pki_status = Some(PkiStatus::Success);
            seal_for_requester(request, &signed::degenerate(&[], &crls)?, envelope, crypto, rng)?
        }
        Reply::Pending => {
            attributes.pki_status = Some(PkiStatus::Pending);
            Vec::new()
        }
        Reply::Failure { fail_info, text } => {
            attributes.pki_status = Some(PkiStatus::Failure);
            attributes.fail_info = Some(fail_info);
            attributes.fail_info_text = Some(text);
            Vec::new()
        }
    };
    signed::unsigned(&content, attributes.to_attributes()?, signer, &[signer.certificate], None)
}

fn seal_for_requester(
    request: &IncomingRequest,
    plaintext: &[u8],
    envelope: Option<ReplyEnvelope>,
    crypto: &Crypto<'_>,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>> {
    let ReplyEnvelope { cipher, transport } =
        envelope.ok_or_else(|| ScepError::invalid_input("a SUCCESS answers an opened request"))?;
    let requester = request.signed.signer_certificate()?;
    let options = EnvelopeOptions { cipher, transport, identifier: IdentifierKind::IssuerAndSerialNumber };
    envelope::seal(plaintext, requester, options, crypto, rng)
}

/// Which of an endpoint's keys a private-key operation needs: the CA's, or the RA's (which signs CertReps and
/// receives envelopes when there is one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "lowercase")]
pub enum CaKey {
    Ca,
    Ra,
}

/// The CA (and optional RA) an endpoint answers as: certificates only. Its private keys stay with the host,
/// which performs the [`crate::keys::KeyOperation`]s the core hands out for a [`CaKey`] ([`ServerKeys`] when the
/// keys are at hand). Requests are opened with either key; CertReps are signed by the RA when there is one, else
/// by the CA; leaves and CRLs by the CA.
pub struct Identity {
    pub ca_cert: Certificate,
    pub ra_cert: Option<Certificate>,
    /// Signature checks and key transport on requesters' keys (the host's native crypto, or RustCrypto).
    pub public_ops: Box<dyn PublicKeyOps>,
    /// The CA manager's id of this CA (recorded with each certificate it issues); None for the CA of the
    /// secrets, as before there were several.
    pub ca_id: Option<String>,
    /// Whether the CA is enabled for SCEP: a PKIOperation under a disabled one is refused.
    pub enabled: bool,
}

/// An endpoint's private keys at hand (the pure-Rust fallback, or a host's keys behind the crypto seam).
pub struct ServerKeys {
    pub ca: Box<dyn crate::keys::PrivateKeyOps>,
    pub ra: Option<Box<dyn crate::keys::PrivateKeyOps>>,
}

impl ServerKeys {
    pub fn key(&self, which: CaKey) -> Result<&dyn crate::keys::PrivateKeyOps> {
        match which {
            CaKey::Ca => Ok(self.ca.as_ref()),
            CaKey::Ra => self.ra.as_deref().ok_or_else(|| ScepError::invalid_input("there is no RA key")),
        }
    }

    /// Performs an operation the core handed out for `which`.
    pub fn perform(&self, which: CaKey, operation: &crate::keys::KeyOperation) -> Result<Vec<u8>> {
        crate::keys::perform(self.key(which)?, operation)
    }

    /// The recipients a request's envelope may be for, with these keys.
    pub fn recipients<'a>(&'a self, identity: &'a Identity) -> Vec<Recipient<'a>> {
        identity
            .recipient_certificates()
            .into_iter()
            .filter_map(|(which, certificate)| {
                Some(Recipient { certificate: Some(certificate), key: self.key(which).ok()? })
            })
            .collect()
    }
}

impl Identity {
    /// An enabled identity, as the secrets' CA.
    pub fn new(ca_cert: Certificate, ra_cert: Option<Certificate>, public_ops: Box<dyn PublicKeyOps>) -> Self {
        Self { ca_cert, ra_cert, public_ops, ca_id: None, enabled: true }
    }

    /// The certificates a request may be enveloped to: the RA's first, then the CA's.
    pub fn recipient_certificates(&self) -> Vec<(CaKey, &Certificate)> {
        let mut out: Vec<_> = self.ra_cert.iter().map(|c| (CaKey::Ra, c)).collect();
        out.push((CaKey::Ca, &self.ca_cert));
        out
    }

    /// Who signs what this endpoint sends: the RA when there is one.
    pub fn signer(&self, digest: DigestAlg) -> (CaKey, SignedBy<'_>) {
        let (which, certificate) = match &self.ra_cert {
            Some(c) => (CaKey::Ra, c),
            None => (CaKey::Ca, &self.ca_cert),
        };
        (which, SignedBy { certificate, digest, identifier: IdentifierKind::IssuerAndSerialNumber })
    }

    /// The CA's and RA's own names: never issued to a seat.
    pub fn reserved_names(&self) -> Vec<x509_cert::name::Name> {
        let mut names = vec![self.ca_cert.tbs_certificate.subject.clone()];
        names.extend(self.ra_cert.iter().map(|c| c.tbs_certificate.subject.clone()));
        names
    }

    /// A CertRep for `request` (opened or not), up to its signature by the returned key: signed with the
    /// request's digest where the profile allows it (SHA-256 otherwise), a SUCCESS enveloped in kind with the
    /// request.
    pub fn cert_rep(
        &self,
        request: &IncomingRequest,
        facts: Option<&RequestFacts>,
        reply: Reply<'_>,
        policy: AlgorithmPolicy,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(CaKey, UnsignedSignedData)> {
        let allowed = |d: &DigestAlg| policy == AlgorithmPolicy::Legacy || !d.is_legacy();
        let digest = request.signed.digest_alg().ok().filter(allowed).unwrap_or(DigestAlg::Sha256);
        let envelope = facts.map(ReplyEnvelope::in_kind);
        let (which, by) = self.signer(digest);
        Ok((which, cert_rep(request, reply, &by, envelope, &self.crypto(policy), rng)?))
    }

    /// This endpoint's crypto under a profile's `policy`.
    pub fn crypto(&self, policy: AlgorithmPolicy) -> Crypto<'_> {
        Crypto { public_ops: self.public_ops.as_ref(), policy }
    }
}
