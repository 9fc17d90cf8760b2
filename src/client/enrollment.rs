//! The requester's whole procedure (RFC 8894 §3.3, §4) as a step machine, sans-IO the way rustls is: the
//! machine decides what happens next and hands it out as a [`Step`]; the caller performs it (an HTTP request,
//! a key to generate, bytes to sign, a key to decrypt, a wait) and hands the result back with
//! [`Enrollment::answer`], then asks for the next step. The caller knows no protocol rule, and each operation is asked for once.
//!
//! ```text
//!   GetCACaps, GetCACert, GenerateKey      started together: the key is made while the requests travel
//!   caps -> negotiate; cacert -> parse, check the pinned fingerprint
//!   Sign CertificationRequestInfo          new key                 the CSR (proof of possession)
//!   Sign TBSCertificate                    new key                 transient signer certificate (§2.3), enroll only
//!   Encrypt the content-encryption key     the CA's (or RA's) key   the request's envelope
//!   Sign signed attributes                 signer's key            PKCSReq, RenewalReq or CertPoll
//!   PKIOperation -> CertRep                Verify: the CertRep's signature (and its RA's certificate)
//!     PENDING: Sleep, then a CertPoll with the same transactionID (§3.3.3)
//!     FAILURE: the server's failInfo and text
//!     SUCCESS: Decrypt the content-encryption key (signer's key) -> the certificate, Verify: issued by the CA
//! ```
//!
//! The signer's key is the new key for an enrollment and the current key for a renewal. Each of the caller's
//! signatures is verified before it is used. The public-key operations (Encrypt, Verify) are the caller's too, so
//! a host whose RSA is native and asynchronous (WebCrypto) does every RSA operation of the procedure.

use std::collections::VecDeque;
use std::str::FromStr;

use der::{Decode, Encode};
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRngCore, RngCore, SeedableRng};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::name::Name;
use zeroize::Zeroizing;

use super::http::{HttpRequest, HttpResponse};
use super::UnsignedRequest;
use super::{CertRep, CertRepOutcome, Failure, PkiRequest, RequestBuilder, RequestOptions, SealedCertRep};
use crate::algorithms::{AlgorithmPolicy, Cipher, DigestAlg, KeyTransport};
use crate::caps::{fingerprint, CaCaps, CaCertificates, Negotiated};
use crate::csr::{CsrRequest, San, UnsignedCsr};
use crate::envelope::EnvelopeOptions;
use crate::error::{FieldIssue, Result, ScepError};
use crate::issue::{unsigned_self_signed, SelfSignedRole, UnsignedCertificate};
use crate::keys::{self, Deferred, KeyOperation, PublicAnswer, PublicOperation, Unsigned};
use crate::message::MessageType;
use crate::signed::IdentifierKind;
use crate::wire::Certificate;

/// One enrollment or renewal, from GetCACaps to the verified certificate.
pub struct Enrollment {
    options: EnrollmentOptions,
    rng: ChaCha20Rng,
    steps: VecDeque<Step>,
    stage: Stage,
    next_id: OpId,
    answers: Vec<(OpId, Answer)>,
    new_key: Option<SubjectPublicKeyInfoOwned>,
    negotiated: Option<Negotiated>,
    ca: Option<CaCertificates>,
    csr: Option<Vec<u8>>,
    signer: Option<Certificate>,
    request: Option<PkiRequest>,
    polls: u32,
    /// The peers' public-key operations (checking the CA's signatures, transporting content keys to it), which
    /// the caller performs like the private-key ones: a stage that needs one the caller has not answered yet
    /// asks for it and is taken again once it is answered (see [`Deferred`]).
    public: Deferred,
    public_asked: Vec<(OpId, PublicOperation)>,
    /// The answers the current stage read: dropped once it is taken for good (a stage taken again reads them again).
    read: Vec<OpId>,
}

/// What to enroll for, and how.
#[derive(Clone, Debug)]
pub struct EnrollmentOptions {
    /// The SCEP URL (`operation=` is added to it).
    pub url: String,
    pub purpose: Purpose,
    pub new_key: NewKey,
    pub sans: Vec<San>,
    pub challenge: Option<String>,
    /// Where the challenge comes from when `challenge` is None: a one-time password fetched from an OTP server
    /// (an NDES-style page) once GetCACert matched the pinned fingerprint.
    pub challenge_from: Option<OtpServer>,
    /// The key usages the CSR asks for.
    pub digital_signature: bool,
    pub key_encipherment: bool,
    /// Legacy allows 3DES, SHA-1 and RSA 1024, and opening single-DES replies.
    pub policy: AlgorithmPolicy,
    /// The CA's pinned SHA-256 (or SHA-1) fingerprint: nothing is sent unless GetCACert's CA matches.
    pub fingerprint: Option<String>,
    /// Pins for the negotiation (a downgrade below what the server guarantees is refused).
    pub cipher: Option<Cipher>,
    pub digest: Option<DigestAlg>,
    /// How the CA is asked to transport the reply's key: RSA-OAEP lets WebCrypto open it.
    pub key_transport: KeyTransport,
    pub identifier: IdentifierKind,
    /// Defaults to hex SHA-256 of the new key.
    pub transaction_id: Option<String>,
    pub poll_interval_ms: u32,
    pub max_polls: u32,
    /// Unix seconds (the caller's clock): the transient signer certificate is valid from 5 minutes before it
    /// to 7 days after.
    pub now: u64,
}

impl EnrollmentOptions {
    /// The defaults: a 2048-bit key generated when asked, PKCS#1 v1.5 key transport, polls every 5 s, 120 times.
    pub fn new(url: impl Into<String>, purpose: Purpose, now: u64) -> Self {
        Self {
            url: url.into(),
            purpose,
            new_key: NewKey::Generate { bits: 2048 },
            sans: Vec::new(),
            challenge: None,
            challenge_from: None,
            digital_signature: true,
            key_encipherment: true,
            policy: AlgorithmPolicy::Modern,
            fingerprint: None,
            cipher: None,
            digest: None,
            key_transport: KeyTransport::RsaPkcs1v15,
            identifier: IdentifierKind::IssuerAndSerialNumber,
            transaction_id: None,
            poll_interval_ms: 5000,
            max_polls: 120,
            now,
        }
    }
}

impl EnrollmentOptions {
    /// Every option that cannot work, each an issue named as the JS options name it (`url`, `subject`,
    /// `keyBits`, `fingerprint`, `challenge`): all of them are reported at once, before a key is made or a
    /// request sent.
    pub fn issues(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        let mut issue = |path: &str, rule: String| issues.push(FieldIssue { path: path.into(), rule });
        if let Err(f) = super::http::operation_url(&self.url, super::http::Operation::GetCaCaps) {
            issue("url", f.error.message);
        }
        let subject = match &self.purpose {
            Purpose::Enroll { subject } => Some(subject),
            Purpose::Renew { subject, .. } => subject.as_ref(),
        };
        if let Some(subject) = subject {
            match Name::from_str(subject) {
                Ok(name) if !name.0.is_empty() => {}
                Ok(_) => issue("subject", "must name at least one attribute, e.g. CN=laptop-42".into()),
                Err(e) => {
                    issue("subject", format!("{subject:?} is not an RFC 4514 name such as CN=laptop-42,O=Example: {e}"))
                }
            }
        }
        if let NewKey::Generate { bits } = self.new_key {
            if let Err(e) = keys::check_key_bits(bits, self.policy) {
                issue("keyBits", e.message);
            }
        }
        if let Some(pin) = &self.fingerprint {
            if crate::caps::normalize_fingerprint(pin).is_none() {
                issue("fingerprint", "must be 64 (SHA-256) or 40 (SHA-1) hex digits, colons allowed".into());
            }
        }
        if self.challenge.as_ref().is_some_and(|c| c.len() > 255 || c.chars().any(char::is_control)) {
            issue("challenge", "must be at most 255 characters, without control characters".into());
        }
        issues
    }
}

/// The error for options that cannot work: every issue in its message and, one by one, in its details.
pub fn invalid_options(issues: Vec<FieldIssue>) -> ScepError {
    let listed = issues.iter().map(|i| format!("{}: {}", i.path, i.rule)).collect::<Vec<_>>().join("; ");
    let mut e = ScepError::invalid_object(issues);
    e.message = format!("Invalid options: {listed}");
    e.resolution = "correct the options listed and try again; nothing was sent".to_owned();
    e
}

/// An OTP server that hands out one-time challenge passwords behind HTTP Basic (a profile's `dynamic` challenge).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtpServer {
    pub url: String,
    pub username: String,
    pub password: String,
}

/// A first enrollment (PKCSReq signed by a transient self-signed certificate) or a renewal (RenewalReq, or
/// PKCSReq where the server lacks "Renewal", signed by the current certificate).
#[derive(Clone, Debug)]
pub enum Purpose {
    Enroll { subject: String },
    Renew { certificate: Box<Certificate>, subject: Option<String> },
}

/// Where the key to certify comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewKey {
    /// The caller generates it when asked ([`Operation::GenerateKey`]).
    Generate { bits: usize },
    /// The caller holds it already: its SubjectPublicKeyInfo (DER).
    Given { spki: Vec<u8> },
    /// A renewal that keeps the current key.
    Current,
}

/// Which private key an operation is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRef {
    /// The key the certificate is for.
    New,
    /// A renewal's current key: its certificate signs the request and receives the reply.
    Current,
}

/// Names an operation between [`Step::Start`] and its [`Enrollment::answer`], then asks for the next step.
pub type OpId = u32;

/// What the machine wants next.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Step {
    /// Tell the person how far it got, then ask again.
    Progress(Progress),
    /// Begin this operation; answer it under this id. Several may be under way at once.
    Start(OpId, Operation),
    /// Nothing more can start until the operation with this id is answered.
    Await(OpId),
    /// The certificate, verified against the CA.
    Done(Enrolled),
}

/// An operation for the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Send this; answer [`Answer::Http`], or [`Answer::Unreachable`] when no answer came.
    Http(HttpRequest),
    /// Generate an RSA key pair and keep it as [`KeyRef::New`]; answer [`Answer::PublicKey`].
    GenerateKey { bits: usize, policy: AlgorithmPolicy },
    /// Sign (answer [`Answer::Signature`]) or decrypt (answer [`Answer::Decrypted`]) with that key.
    Key { key: KeyRef, operation: KeyOperation },
    /// Verify a signature of the CA's (answer [`Answer::Verified`]) or transport a content key to it (answer
    /// [`Answer::Encrypted`]): the caller's RSA does these too (WebCrypto where it can).
    Public(PublicOperation),
    /// Wait before polling again; answer [`Answer::Slept`].
    Sleep { millis: u32 },
}

/// The result of an [`Operation`].
#[derive(Clone, Debug)]
pub enum Answer {
    Http(HttpResponse),
    /// Why no answer came (network, DNS, TLS, CORS).
    Unreachable(String),
    /// SubjectPublicKeyInfo DER of the generated key.
    PublicKey(Vec<u8>),
    Signature(Vec<u8>),
    Decrypted(Zeroizing<Vec<u8>>),
    Verified(bool),
    Encrypted(Vec<u8>),
    Slept,
}

impl From<PublicAnswer> for Answer {
    fn from(answer: PublicAnswer) -> Self {
        match answer {
            PublicAnswer::Verified(good) => Self::Verified(good),
            PublicAnswer::Encrypted(ciphertext) => Self::Encrypted(ciphertext),
        }
    }
}

/// A step a person sees, with the transaction once there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    pub step: ProgressStep,
    pub transaction_id: Option<String>,
    /// CertPolls sent so far (send, poll, pending).
    pub polls: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressStep {
    Key,
    Caps,
    Cacert,
    Request,
    Send,
    Pending,
    Poll,
    Done,
}

impl ProgressStep {
    pub fn name(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Caps => "caps",
            Self::Cacert => "cacert",
            Self::Request => "request",
            Self::Send => "send",
            Self::Pending => "pending",
            Self::Poll => "poll",
            Self::Done => "done",
        }
    }
}

/// The issued certificate, the rest of its chain (the CA when the server sent none), and the transaction.
#[derive(Clone, Debug)]
pub struct Enrolled {
    pub certificate: Certificate,
    pub chain: Vec<Certificate>,
    pub transaction_id: String,
    /// SHA-256 of the CA certificate from GetCACert.
    pub ca_fingerprint: String,
}

/// An HTTP request under way, kept to read its answer.
#[derive(Clone)]
struct Sent {
    id: OpId,
    request: HttpRequest,
}

/// Where the procedure stands; each stage waits for the answer to the operation it names.
// One stage per enrollment at a time: boxing the unsigned structures would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum Stage {
    Begin,
    Key { caps: Sent, cacert: Sent, key: Option<OpId> },
    Caps { caps: Sent, cacert: Sent },
    CaCert { cacert: Sent },
    Challenge { otp: Sent },
    Csr { unsigned: UnsignedCsr, id: OpId },
    SignerCertificate { unsigned: UnsignedCertificate, id: OpId },
    Message { unsigned: UnsignedRequest, id: OpId },
    Reply { sent: Sent },
    Opening { sealed: SealedCertRep, id: OpId },
    Slept { id: OpId },
    Ended,
}

impl Enrollment {
    /// `rng` seeds the machine's own generator (nonces, content keys, the signer certificate's serial).
    pub fn new(options: EnrollmentOptions, rng: &mut impl CryptoRngCore) -> Result<Self> {
        if matches!((&options.purpose, &options.new_key), (Purpose::Enroll { .. }, NewKey::Current)) {
            return Err(ScepError::invalid_input("only a renewal can keep the current key"));
        }
        let issues = options.issues();
        if !issues.is_empty() {
            return Err(invalid_options(issues));
        }
        let rng = ChaCha20Rng::from_rng(rng).map_err(|e| ScepError::invalid_input(format!("randomness: {e}")))?;
        Ok(Self {
            options,
            rng,
            steps: VecDeque::new(),
            stage: Stage::Begin,
            next_id: 0,
            answers: Vec::new(),
            new_key: None,
            negotiated: None,
            ca: None,
            csr: None,
            signer: None,
            request: None,
            polls: 0,
            public: Deferred::default(),
            public_asked: Vec::new(),
            read: Vec::new(),
        })
    }

    /// The next step. After a failure or [`Step::Done`] the enrollment is over.
    pub fn next_step(&mut self) -> core::result::Result<Step, Failure> {
        loop {
            if let Some(step) = self.steps.pop_front() {
                return Ok(step);
            }
            if let Err(mut failure) = self.advance() {
                self.stage = Stage::Ended;
                failure.transaction_id = failure.transaction_id.or_else(|| self.transaction_id().map(str::to_owned));
                return Err(failure);
            }
        }
    }

    /// The result of the operation started as `id`, in any order.
    pub fn answer(&mut self, id: OpId, answer: Answer) {
        self.answers.push((id, answer));
    }

    /// The transactionID, once the first request is built.
    pub fn transaction_id(&self) -> Option<&str> {
        self.request.as_ref().map(|r| r.transaction_id.as_str())
    }

    /// Takes the current stage. When it needed public-key operations the caller has not answered yet, whatever
    /// it did is undone (its steps, ids, randomness and poll count; its other effects are assignments it makes
    /// again the same way), the operations are asked for, and the stage is taken again once they are answered:
    /// then from the same random state, so it builds the same message with the answers in it.
    fn advance(&mut self) -> core::result::Result<(), Failure> {
        for (id, operation) in core::mem::take(&mut self.public_asked) {
            let answer = match self.answers.iter().position(|(a, _)| *a == id).map(|at| self.answers.remove(at).1) {
                Some(Answer::Verified(good)) => PublicAnswer::Verified(good),
                Some(Answer::Encrypted(ciphertext)) => PublicAnswer::Encrypted(ciphertext),
                _ => return Err(ScepError::invalid_input(format!("operation {id} was not answered as asked")).into()),
            };
            self.public.answer(operation, answer);
        }
        let stage = core::mem::replace(&mut self.stage, Stage::Ended);
        let undo = (stage.clone(), self.rng.clone(), self.steps.len(), self.next_id, self.polls);
        let taken = self.take_stage(stage);
        let asked = self.public.asked();
        let read = core::mem::take(&mut self.read);
        if asked.is_empty() {
            self.answers.retain(|(id, _)| !read.contains(id));
            return taken;
        }
        let (stage, rng, steps, next_id, polls) = undo;
        (self.stage, self.rng, self.next_id, self.polls) = (stage, rng, next_id, polls);
        self.steps.truncate(steps);
        for operation in asked {
            let id = self.start_and_await(Operation::Public(operation.clone()));
            self.public_asked.push((id, operation));
        }
        Ok(())
    }

    fn take_stage(&mut self, stage: Stage) -> core::result::Result<(), Failure> {
        match stage {
            Stage::Begin => {
                let caps = self.send(HttpRequest::get_ca_caps(&self.options.url)?);
                let cacert = self.send(HttpRequest::get_ca_cert(&self.options.url)?);
                self.progress(ProgressStep::Key);
                let key = match self.options.new_key {
                    NewKey::Generate { bits } => {
                        let policy = self.options.policy;
                        Some(self.start_and_await(Operation::GenerateKey { bits, policy }))
                    }
                    _ => None,
                };
                self.stage = Stage::Key { caps, cacert, key };
            }
            Stage::Key { caps, cacert, key } => {
                let spki = match key {
                    Some(id) => self.public_key(id)?,
                    None => match (&self.options.new_key, &self.options.purpose) {
                        (NewKey::Given { spki }, _) => spki.clone(),
                        (_, Purpose::Renew { certificate, .. }) => {
                            certificate.tbs_certificate.subject_public_key_info.to_der()?
                        }
                        _ => return Err(ScepError::invalid_input("no key to certify").into()),
                    },
                };
                let spki = SubjectPublicKeyInfoOwned::from_der(&spki)
                    .map_err(|e| ScepError::invalid_input(format!("the new public key: {e}")))?;
                keys::rsa_key_bits(&spki)?;
                self.new_key = Some(spki);
                self.progress(ProgressStep::Caps);
                self.await_(caps.id);
                self.stage = Stage::Caps { caps, cacert };
            }
            Stage::Caps { caps, cacert } => {
                let body = self.http_body(caps)?;
                let o = &self.options;
                self.negotiated =
                    Some(CaCaps::parse(&String::from_utf8_lossy(&body)).negotiate(o.policy, o.cipher, o.digest)?);
                self.progress(ProgressStep::Cacert);
                self.await_(cacert.id);
                self.stage = Stage::CaCert { cacert };
            }
            Stage::CaCert { cacert } => {
                let body = self.http_body(cacert)?;
                let ca = CaCertificates::parse(&body)?;
                if let Some(pinned) = &self.options.fingerprint {
                    ca.check_fingerprint(pinned)?;
                }
                self.ca = Some(ca);
                match (&self.options.challenge, &self.options.challenge_from) {
                    // The OTP server's credentials go out only once the CA is known to be the pinned one: a
                    // request that cannot go on sends nothing anywhere.
                    (None, Some(OtpServer { url, username, password })) => {
                        let otp = self.send(HttpRequest::get_challenge(url, username, password)?);
                        self.await_(otp.id);
                        self.stage = Stage::Challenge { otp };
                    }
                    _ => self.request_csr()?,
                }
            }
            Stage::Challenge { otp } => {
                let response = self.http_response(otp)?;
                let password =
                    super::challenge::read_challenge_answer(response.content_type.as_deref(), &response.body)?;
                self.options.challenge = Some(password);
                self.request_csr()?;
            }
            Stage::Csr { unsigned, id } => {
                let new_key = self.new_key()?.clone();
                let signature = self.signature(id, &new_key, &unsigned, "CSR")?;
                self.csr = Some(unsigned.finish(&signature)?);
                match self.options.purpose.clone() {
                    Purpose::Enroll { subject } => {
                        // RFC 8894 §2.3: a transient self-signed certificate signs the request and receives the reply.
                        let mut serial = [0u8; 16];
                        self.rng.fill_bytes(&mut serial);
                        serial[0] = (serial[0] & 0x7f) | 0x01;
                        let now = self.options.now;
                        let unsigned = unsigned_self_signed(
                            new_key,
                            &subject,
                            &serial,
                            (now.saturating_sub(300), now + 7 * 86400),
                            self.negotiated()?.digest,
                            SelfSignedRole::Signer,
                        )?;
                        let id = self.sign(KeyRef::New, &unsigned);
                        self.stage = Stage::SignerCertificate { unsigned, id };
                    }
                    Purpose::Renew { certificate, .. } => {
                        self.signer = Some(*certificate);
                        let message_type =
                            if self.negotiated()?.renewal { MessageType::RenewalReq } else { MessageType::PkcsReq };
                        self.certificate_request(message_type)?;
                    }
                }
            }
            Stage::SignerCertificate { unsigned, id } => {
                let new_key = self.new_key()?.clone();
                let signature = self.signature(id, &new_key, &unsigned, "signer certificate")?;
                self.signer = Some(unsigned.finish(&signature)?);
                self.certificate_request(MessageType::PkcsReq)?;
            }
            Stage::Message { unsigned, id } => {
                let signer_key = self.signer()?.tbs_certificate.subject_public_key_info.clone();
                let signature = self.signature(id, &signer_key, &unsigned, "PKIMessage")?;
                let request = unsigned.finish(&signature)?;
                let http = HttpRequest::pki_operation(&self.options.url, &request.message, self.negotiated()?.post)?;
                let step = if self.polls == 0 { ProgressStep::Send } else { ProgressStep::Poll };
                self.request = Some(request);
                self.progress_with_polls(step);
                let sent = self.send(http);
                self.await_(sent.id);
                self.stage = Stage::Reply { sent };
            }
            Stage::Reply { sent } => {
                let body = self.http_body(sent)?;
                let request = self.request.as_ref().ok_or_else(|| ScepError::invalid_input("no request"))?;
                let crypto = keys::Crypto { public_ops: &self.public, policy: self.options.policy };
                match super::read_cert_rep(&body, request, self.signer()?, self.ca()?, crypto)? {
                    CertRep::Failed(refusal) => return Err(refusal.into()),
                    CertRep::Pending if self.polls >= self.options.max_polls => {
                        return Err(ScepError::still_pending(self.polls).into())
                    }
                    CertRep::Pending => {
                        self.progress_with_polls(ProgressStep::Pending);
                        let id = self.start_and_await(Operation::Sleep { millis: self.options.poll_interval_ms });
                        self.stage = Stage::Slept { id };
                    }
                    CertRep::Sealed(sealed) => {
                        let operation = sealed.operation();
                        // The content key comes back the way it went, or stronger: a server cannot make a key
                        // that asked for RSA-OAEP decrypt RSAES-PKCS1-v1_5 (the padding oracles of RFC 8017 §7.2).
                        if let KeyOperation::Decrypt { transport: KeyTransport::RsaPkcs1v15, .. } = operation {
                            if self.options.key_transport != KeyTransport::RsaPkcs1v15 {
                                let mut e = ScepError::downgrade(
                                    "the CertRep's content key is RSAES-PKCS1-v1_5, the request asked for RSA-OAEP",
                                );
                                e.resolution = "the server does not answer in kind: ask its operator, or enroll \
                                                without keyTransport (RSAES-PKCS1-v1_5 both ways)"
                                    .into();
                                return Err(e.into());
                            }
                        }
                        let id = self.start_and_await(Operation::Key { key: self.signer_key_ref(), operation });
                        self.stage = Stage::Opening { sealed, id };
                    }
                }
            }
            Stage::Slept { id } => {
                self.take(id, |a| matches!(a, Answer::Slept).then_some(()))?;
                self.polls += 1;
                // RFC 8894 §3.3.3: poll with CertPoll, same transactionID, IssuerAndSubject.
                let subject =
                    Name::from_str(&self.subject()?).map_err(|e| ScepError::invalid_input(format!("subject: {e}")))?;
                let tid = self.transaction_id().unwrap_or_default().to_owned();
                let unsigned = builder(&self.options, &self.negotiated, &self.signer, &self.ca, &self.public)?
                    .cert_poll(&tid, &subject, &mut self.rng)?;
                let id = self.sign(self.signer_key_ref(), &unsigned);
                self.stage = Stage::Message { unsigned, id };
            }
            Stage::Opening { sealed, id } => {
                let content_key = self.take(id, |a| if let Answer::Decrypted(k) = a { Some(k) } else { None })?;
                let expected = self.new_key()?.to_der()?;
                let CertRepOutcome::Issued { certificate, chain } =
                    sealed.clone().finish(&content_key, self.ca()?, Some(&expected), &self.public)?
                else {
                    return Err(ScepError::malformed("the CertRep holds no certificate").into());
                };
                let ca = self.ca()?;
                let chain = if chain.is_empty() { vec![ca.ca.clone()] } else { chain };
                let enrolled = Enrolled {
                    certificate,
                    chain,
                    transaction_id: self.transaction_id().unwrap_or_default().to_owned(),
                    ca_fingerprint: fingerprint(&ca.ca)?,
                };
                self.steps.push_back(Step::Progress(Progress {
                    step: ProgressStep::Done,
                    transaction_id: Some(enrolled.transaction_id.clone()),
                    polls: None,
                }));
                self.steps.push_back(Step::Done(enrolled));
            }
            Stage::Ended => return Err(ScepError::invalid_input("the enrollment has ended").into()),
        }
        Ok(())
    }

    /// Builds the PKCSReq or RenewalReq for the CSR and asks for its signature.
    fn certificate_request(&mut self, message_type: MessageType) -> Result<()> {
        let csr = self.csr.clone().ok_or_else(|| ScepError::invalid_input("no CSR"))?;
        let tid = self.options.transaction_id.clone();
        let unsigned = builder(&self.options, &self.negotiated, &self.signer, &self.ca, &self.public)?
            .certificate_request(&csr, message_type, tid, &mut self.rng)?;
        let id = self.sign(self.signer_key_ref(), &unsigned);
        self.stage = Stage::Message { unsigned, id };
        Ok(())
    }

    /// The key that signs the CSR: the current one when a renewal keeps it.
    fn new_key_ref(&self) -> KeyRef {
        if self.options.new_key == NewKey::Current {
            KeyRef::Current
        } else {
            KeyRef::New
        }
    }

    /// The key that signs the PKIMessages and opens the reply.
    fn signer_key_ref(&self) -> KeyRef {
        match self.options.purpose {
            Purpose::Enroll { .. } => KeyRef::New,
            Purpose::Renew { .. } => KeyRef::Current,
        }
    }

    fn subject(&self) -> Result<String> {
        Ok(match &self.options.purpose {
            Purpose::Enroll { subject } => subject.clone(),
            Purpose::Renew { subject: Some(subject), .. } => subject.clone(),
            Purpose::Renew { certificate, subject: None } => certificate.tbs_certificate.subject.to_string(),
        })
    }

    fn start(&mut self, operation: Operation) -> OpId {
        let id = self.next_id;
        self.next_id += 1;
        self.steps.push_back(Step::Start(id, operation));
        id
    }

    fn await_(&mut self, id: OpId) {
        if !self.answers.iter().any(|(a, _)| *a == id) {
            self.steps.push_back(Step::Await(id));
        }
    }

    fn start_and_await(&mut self, operation: Operation) -> OpId {
        let id = self.start(operation);
        self.steps.push_back(Step::Await(id));
        id
    }

    fn sign(&mut self, key: KeyRef, unsigned: &impl Unsigned) -> OpId {
        self.start_and_await(Operation::Key { key, operation: unsigned.operation() })
    }

    fn progress(&mut self, step: ProgressStep) {
        self.steps.push_back(Step::Progress(Progress { step, transaction_id: None, polls: None }));
    }

    fn progress_with_polls(&mut self, step: ProgressStep) {
        let transaction_id = self.transaction_id().map(str::to_owned);
        self.steps.push_back(Step::Progress(Progress { step, transaction_id, polls: Some(self.polls) }));
    }

    /// The answer to `id`, if it is the kind `pick` takes. It is kept until the stage is taken for good: a stage
    /// taken again finds it.
    fn take<T>(&mut self, id: OpId, pick: impl FnOnce(Answer) -> Option<T>) -> Result<T> {
        self.read.push(id);
        let answer = self
            .answers
            .iter()
            .find(|(a, _)| *a == id)
            .map(|(_, answer)| answer.clone())
            .ok_or_else(|| ScepError::invalid_input(format!("operation {id} has not been answered")))?;
        pick(answer).ok_or_else(|| ScepError::invalid_input(format!("operation {id} was answered with the wrong kind")))
    }

    fn send(&mut self, request: HttpRequest) -> Sent {
        Sent { id: self.start(Operation::Http(request.clone())), request }
    }

    /// The body of the answer to `sent`, if it is SCEP.
    fn http_body(&mut self, sent: Sent) -> core::result::Result<Vec<u8>, Failure> {
        Ok(self.http_response(sent)?.body)
    }

    /// The answer to `sent`, if it is an answer to it (a 2xx, and SCEP for SCEP operations).
    fn http_response(&mut self, sent: Sent) -> core::result::Result<HttpResponse, Failure> {
        let Sent { id, request } = sent;
        match self.take(id, |a| match a {
            Answer::Http(r) => Some(Ok(r)),
            Answer::Unreachable(reason) => Some(Err(reason)),
            _ => None,
        })? {
            Ok(response) => {
                let content_type = response.content_type.clone();
                let status = response.status;
                request.read(response).map(|body| HttpResponse { status, content_type, body })
            }
            Err(reason) => Err(request.unreachable(&reason)),
        }
    }

    /// The CSR, with the challenge as it stands now, for the new key to sign.
    fn request_csr(&mut self) -> core::result::Result<(), Failure> {
        self.progress(ProgressStep::Request);
        let csr = CsrRequest {
            subject: self.subject()?,
            sans: self.options.sans.clone(),
            challenge: self.options.challenge.clone(),
            digest: self.negotiated()?.digest,
            digital_signature: self.options.digital_signature,
            key_encipherment: self.options.key_encipherment,
        };
        let unsigned = csr.unsigned(self.new_key()?.clone())?;
        let id = self.sign(self.new_key_ref(), &unsigned);
        self.stage = Stage::Csr { unsigned, id };
        Ok(())
    }

    fn public_key(&mut self, id: OpId) -> Result<Vec<u8>> {
        self.take(id, |a| if let Answer::PublicKey(spki) = a { Some(spki) } else { None })
    }

    /// The signature answered for `id`, checked against `public_key`: a host that signed with another key or
    /// digest is caught here rather than by the server.
    fn signature(
        &mut self,
        id: OpId,
        public_key: &SubjectPublicKeyInfoOwned,
        unsigned: &impl Unsigned,
        what: &str,
    ) -> Result<Vec<u8>> {
        let signature = self.take(id, |a| if let Answer::Signature(s) = a { Some(s) } else { None })?;
        let public_key = public_key.clone();
        keys::check_signature(&self.public, &public_key, unsigned.digest(), unsigned.to_be_signed(), &signature, what)?;
        Ok(signature)
    }

    fn new_key(&self) -> Result<&SubjectPublicKeyInfoOwned> {
        self.new_key.as_ref().ok_or_else(|| ScepError::invalid_input("no key yet"))
    }

    fn negotiated(&self) -> Result<&Negotiated> {
        self.negotiated.as_ref().ok_or_else(|| ScepError::invalid_input("no capabilities yet"))
    }

    fn ca(&self) -> Result<&CaCertificates> {
        self.ca.as_ref().ok_or_else(|| ScepError::invalid_input("no CA certificate yet"))
    }

    fn signer(&self) -> Result<&Certificate> {
        self.signer.as_ref().ok_or_else(|| ScepError::invalid_input("no signer certificate yet"))
    }

    /// Runs to the end with keys at hand (tests, native tools): every key operation is performed by `keys`
    /// (a key asked for is generated into `keys.new`), the public-key ones by the `rsa` crate, `send` answers
    /// each HTTP request, waits are skipped.
    #[cfg(feature = "pure-rsa")]
    pub fn run(
        mut self,
        keys: &mut LocalKeys,
        mut send: impl FnMut(&HttpRequest) -> Answer,
        mut on_progress: impl FnMut(&Progress),
        rng: &mut impl CryptoRngCore,
    ) -> core::result::Result<Enrolled, Failure> {
        loop {
            match self.next_step()? {
                Step::Progress(p) => on_progress(&p),
                Step::Await(_) => {}
                Step::Done(enrolled) => return Ok(enrolled),
                Step::Start(id, operation) => {
                    let answer = match operation {
                        Operation::Http(request) => send(&request),
                        Operation::Sleep { .. } => Answer::Slept,
                        Operation::Public(operation) => {
                            keys::perform_public(&keys::RustCrypto, &operation, rng)?.into()
                        }
                        Operation::GenerateKey { bits, policy } => {
                            let key = keys::RsaKey::generate(bits, policy, rng)?;
                            let spki = keys::PrivateKeyOps::public_key(&key).clone().to_der()?;
                            keys.new = Some(key);
                            Answer::PublicKey(spki)
                        }
                        Operation::Key { key, operation } => {
                            let held = match key {
                                KeyRef::New => keys.new.as_ref(),
                                KeyRef::Current => keys.current.as_ref(),
                            }
                            .ok_or_else(|| ScepError::invalid_input(format!("no {key:?} key at hand")))?;
                            let out = keys::perform(held, &operation)?;
                            match operation {
                                KeyOperation::Sign { .. } => Answer::Signature(out),
                                KeyOperation::Decrypt { .. } => Answer::Decrypted(Zeroizing::new(out)),
                            }
                        }
                    };
                    self.answer(id, answer);
                }
            }
        }
    }
}

/// Keys at hand for [`Enrollment::run`].
#[cfg(feature = "pure-rsa")]
#[derive(Default)]
pub struct LocalKeys {
    pub new: Option<keys::RsaKey>,
    pub current: Option<keys::RsaKey>,
}

/// The request builder, from the fields it borrows (so the generator stays free to borrow mutably).
fn builder<'a>(
    o: &EnrollmentOptions,
    negotiated: &Option<Negotiated>,
    signer: &'a Option<Certificate>,
    ca: &'a Option<CaCertificates>,
    public: &'a Deferred,
) -> Result<RequestBuilder<'a>> {
    let missing = || ScepError::invalid_input("the request is built before the CA is known");
    let negotiated = negotiated.as_ref().ok_or_else(missing)?;
    Ok(RequestBuilder {
        signer_certificate: signer.as_ref().ok_or_else(missing)?,
        ca: ca.as_ref().ok_or_else(missing)?,
        options: RequestOptions {
            envelope: EnvelopeOptions {
                cipher: negotiated.cipher,
                transport: o.key_transport,
                identifier: o.identifier,
            },
            policy: o.policy,
            digest: negotiated.digest,
            signer_identifier: o.identifier,
        },
        public_ops: public,
    })
}
