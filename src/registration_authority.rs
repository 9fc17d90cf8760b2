//! The edge as a registration authority in front of an existing CA (RFC 8894 §2.1.2: "an RA … may process
//! the request on the CA's behalf"), its upstream leg as a sans-IO step machine.
//!
//! A profile with `upstream` keeps every check of the edge (seats, one-time codes, webhook, names, renewal
//! rules, audit) but has its certificates issued by another SCEP CA: NDES in front of AD CS, micromdm, EJBCA.
//! For a request the edge accepted, the exchange below sends the device's CSR, unchanged, in a new PKIMessage
//! signed by the edge's RA key and enveloped to the upstream's RA or CA, reads the CertRep, and hands the
//! PKIOperation machine ([`crate::pki_operation`]) what came of it.
//!
//! ```text
//! GET  upstream?operation=GetCACaps     -> negotiate with the profile's overrides (legacy only on this leg)
//! GET  upstream?operation=GetCACert     -> the CA must match upstream.fingerprint, or nothing is sent
//! Sign signed attributes (edge RA key)  -> PKCSReq / RenewalReq (the device's CSR) or CertPoll (§3.3.3)
//! POST upstream?operation=PKIOperation  -> CertRep signed by the upstream's CA or RA, echoing our nonce
//!   SUCCESS: Decrypt the content key (edge RA key) -> the certificate, verified against the pinned CA
//!   PENDING / FAILURE                   -> relayed to the device
//! ```
//!
//! How the upstream's challenge travels (`upstream.challenge`): the device signed its CSR, so the edge cannot
//! put a challengePassword of its own in it. `none`: the upstream trusts the RA's signature (NDES with its
//! password check off for this RA, micromdm without `-challenge`, EJBCA's RA-signed requests), and the CSR
//! carries the edge's code, which the upstream ignores. `fixed`: the upstream checks one shared secret in the
//! CSR (micromdm `-challenge`): it is the profile's own `scep_challenge.fixed`, which the edge checks too, with
//! the seat's open enrollment claimed once. `dynamic`: the upstream hands out one-time passwords (NDES's
//! `mscep_admin` page): each enrollment code the edge creates is one fetched from that page, so the CSR
//! carries a password both the edge and the upstream accept once.

use der::{Decode, Encode};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use x509_cert::name::Name;

use crate::algorithms::{AlgorithmPolicy, Cipher, DigestAlg};
use crate::caps::{normalize_fingerprint, CaCaps, CaCertificates};
use crate::client::http::{HttpRequest, HttpResponse};
use crate::client::{CertRep, CertRepOutcome, PkiRequest, RequestBuilder, RequestOptions, SealedCertRep};
use crate::client::{Failure, UnsignedRequest};
use crate::envelope::EnvelopeOptions;
use crate::error::{FieldIssue, Result, ScepError};
use crate::keys::{Crypto, KeyOperation, PublicKeyOps, Unsigned};
use crate::message::MessageType;
use crate::signed::IdentifierKind;
use crate::wire::Certificate;

const DEFAULT_TIMEOUT_MS: u32 = 20_000;
/// How long an upstream's one-time password lives (NDES's default, which its page states).
const UPSTREAM_PASSWORD_LIFETIME: u64 = 3600;
const TIMEOUT_RANGE_MS: core::ops::RangeInclusive<u32> = 1_000..=60_000;

/// A profile's upstream CA. The dynamic challenge's page password is shown masked by the admin API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "an object with scep_url, fingerprint and optionally challenge, cipher, digest, legacy, timeout_ms"
)]
pub struct UpstreamConfig {
    pub scep_url: String,
    /// The upstream CA's SHA-256 (or SHA-1) fingerprint: nothing is sent to a CA that does not match.
    pub fingerprint: String,
    #[serde(default)]
    pub challenge: UpstreamChallenge,
    /// Pins the cipher of requests to the upstream (else the strongest its GetCACaps offers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
    /// Pins the digest of requests to the upstream (else the strongest its GetCACaps offers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Allows 3DES and SHA-1 towards the upstream, and reading its single-DES replies (micromdm's): this leg
    /// only; what the devices may use is the profile's own `legacy`.
    #[serde(default)]
    pub legacy: bool,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u32,
}

fn default_timeout() -> u32 {
    DEFAULT_TIMEOUT_MS
}

/// How the upstream checks a request: see the module documentation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamChallenge {
    #[default]
    None,
    Fixed,
    Dynamic(UpstreamPage),
}

/// The upstream's one-time password page (NDES's `mscep_admin`) and the credentials to sign in to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an object with otp_server_url, username, password")]
pub struct UpstreamPage {
    pub otp_server_url: String,
    pub username: String,
    pub password: String,
}

impl UpstreamConfig {
    /// Every rule a stored upstream must meet, as field issues under `upstream.`.
    pub fn issues(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        let mut issue =
            |path: &str, rule: &str| issues.push(FieldIssue { path: format!("upstream.{path}"), rule: rule.into() });
        // SCEP protects its messages itself, so plain http is how most NDES and micromdm servers are reached.
        if !is_http_url(&self.scep_url) || self.scep_url.len() > 2048 {
            issue("scep_url", "must be an http(s) URL with a host and no credentials, at most 2048 characters");
        }
        if normalize_fingerprint(&self.fingerprint).is_none() {
            issue("fingerprint", "must be the upstream CA's SHA-256 (64 hex digits) or SHA-1 (40) fingerprint");
        }
        if let UpstreamChallenge::Dynamic(page) = &self.challenge {
            if !is_http_url(&page.otp_server_url) || HttpRequest::get_challenge(&page.otp_server_url, "", "").is_err() {
                issue(
                    "challenge.dynamic.otp_server_url",
                    "must be an https URL (plain http only to this machine's loopback): the credentials are sent to it",
                );
            }
            if page.username.is_empty() || page.username.len() > 256 || page.username.contains(':') {
                issue("challenge.dynamic.username", "must be 1 to 256 characters, without ':'");
            }
            if page.password.is_empty() || page.password.len() > 256 {
                issue("challenge.dynamic.password", "must be 1 to 256 characters");
            }
        }
        let policy = AlgorithmPolicy::from_legacy_switch(self.legacy);
        if let Some(c) = &self.cipher {
            if Cipher::from_name(c).and_then(|c| c.check_allowed(policy, true)).is_err() {
                issue("cipher", "must be aes-128-cbc, aes-192-cbc, aes-256-cbc (des-ede3-cbc with upstream.legacy)");
            }
        }
        if let Some(d) = &self.digest {
            match DigestAlg::from_name(d) {
                Ok(d) if d.is_legacy() && !self.legacy => issue("digest", "sha1 only with upstream.legacy"),
                Ok(_) => {}
                Err(_) => issue("digest", "must be one of sha1, sha256, sha384, sha512"),
            }
        }
        if !TIMEOUT_RANGE_MS.contains(&self.timeout_ms) {
            issue("timeout_ms", "must be 1000 to 60000 (milliseconds)");
        }
        issues
    }

    fn policy(&self) -> AlgorithmPolicy {
        AlgorithmPolicy::from_legacy_switch(self.legacy)
    }

    /// The upstream's GetCACert, for the edge's own GetCACert of the profile ([`ca_cert_response`]).
    pub fn ca_cert_request(&self) -> Result<UpstreamRequest> {
        Ok(self.send(HttpRequest::get_ca_cert(&self.scep_url).map_err(|f| f.error)?))
    }

    /// The upstream's CA certificate (DER) from its answer to [`Self::ca_cert_request`], checked against the pin:
    /// what devices of the profile pin (an Apple payload's CAFingerprint).
    pub fn ca_certificate(&self, answer: UpstreamAnswer) -> Result<Vec<u8>> {
        let request = self.ca_cert_request()?;
        Ok(read_ca_certificates(self, answer, &request.http)?.ca.to_der()?)
    }

    /// A one-time password from the upstream's page, for a new enrollment code ([`Self::read_challenge`]);
    /// None unless the challenge is dynamic.
    pub fn challenge_request(&self) -> Result<Option<UpstreamRequest>> {
        let UpstreamChallenge::Dynamic(page) = &self.challenge else { return Ok(None) };
        let request =
            HttpRequest::get_challenge(&page.otp_server_url, &page.username, &page.password).map_err(|f| f.error)?;
        Ok(Some(self.send(request)))
    }

    /// The password in the upstream page's answer to [`Self::challenge_request`].
    pub fn read_challenge(&self, answer: UpstreamAnswer) -> Result<String> {
        let request = self.challenge_request()?.ok_or_else(|| ScepError::invalid_input("no dynamic upstream"))?;
        let response = answer.response(&request.http).map_err(|f| unavailable(&f))?;
        let body = request.http.read(response.clone()).map_err(|f| unavailable(&f))?;
        crate::client::challenge::read_challenge_answer(response.content_type.as_deref(), &body).map_err(|e| {
            ScepError::upstream_unavailable(&format!("its one-time password page gave none: {}", e.message))
        })
    }

    /// A new enrollment code for a profile whose upstream hands out one-time passwords: the password the
    /// upstream's page gave ([`Self::challenge_request`]), so the device's CSR carries one both sides accept
    /// once. It expires with the upstream's (NDES's default: 60 minutes) unless the edge's expires first.
    pub fn enrollment_from_page(
        &self,
        answer: UpstreamAnswer,
        code_key: &[u8],
        now: u64,
    ) -> Result<crate::policy::NewEnrollment> {
        let code = self.read_challenge(answer)?;
        let expires_at = now + crate::policy::ENROLLMENT_TTL.min(UPSTREAM_PASSWORD_LIFETIME);
        Ok(crate::policy::NewEnrollment {
            code_mac: crate::policy::enrollment_code_mac(code_key, &code),
            code,
            expires_at,
        })
    }

    fn send(&self, http: HttpRequest) -> UpstreamRequest {
        UpstreamRequest {
            method: http.method,
            url: http.url.clone(),
            content_type: http.content_type,
            headers: http.headers.clone(),
            body: http.body.clone(),
            timeout_ms: self.timeout_ms,
            http,
        }
    }
}

fn is_http_url(url: &str) -> bool {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    let authority = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
    authority.is_some_and(|a| !a.is_empty() && !a.contains('@'))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// An HTTP request to the upstream, for the host to send as it is within `timeout_ms`.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct UpstreamRequest {
    pub method: &'static str,
    pub url: String,
    pub content_type: Option<&'static str>,
    pub headers: Vec<(&'static str, String)>,
    #[serde(with = "serde_bytes")]
    #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array | null"))]
    pub body: Option<Vec<u8>>,
    pub timeout_ms: u32,
    #[serde(skip)]
    http: HttpRequest,
}

/// What came back from the upstream: its answer, or the host's words for why none came in time.
#[derive(Clone, Debug, Default, Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct UpstreamAnswer {
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array"))]
    pub body: Option<serde_bytes::ByteBuf>,
    #[serde(default)]
    pub error: Option<String>,
}

impl UpstreamAnswer {
    fn response(self, request: &HttpRequest) -> core::result::Result<HttpResponse, Failure> {
        match (self.status, self.error) {
            (Some(status), None) => Ok(HttpResponse {
                status,
                content_type: self.content_type,
                body: self.body.map(|b| b.into_vec()).unwrap_or_default(),
            }),
            (_, error) => Err(request.unreachable(error.as_deref().unwrap_or("no answer"))),
        }
    }
}

fn unavailable(failure: &Failure) -> ScepError {
    ScepError::upstream_unavailable(&failure.error.message)
}

/// The edge's GetCACert for an RA-mode profile: the upstream's CA (checked against the pinned fingerprint) and
/// the edge's RA certificate that devices encrypt to and that signs their CertReps. Devices validate their
/// certificates against the upstream CA. (A client that also verifies the RA's chain against that CA, as
/// certmonger does, refuses the edge's CertReps: the RA is issued by the edge's CA.)
pub fn ca_cert_response(
    config: &UpstreamConfig,
    answer: UpstreamAnswer,
    edge_ra: &Certificate,
) -> Result<(&'static str, Vec<u8>)> {
    let request = config.ca_cert_request()?;
    let ca = read_ca_certificates(config, answer, &request.http)?;
    Ok((crate::caps::CONTENT_TYPE_CA_RA_CERT, crate::signed::certs_only(&[&ca.ca, edge_ra])?))
}

fn read_ca_certificates(
    config: &UpstreamConfig,
    answer: UpstreamAnswer,
    request: &HttpRequest,
) -> Result<CaCertificates> {
    let response = answer.response(request).map_err(|f| unavailable(&f))?;
    let body = request.read(response).map_err(|f| unavailable(&f))?;
    let ca = CaCertificates::parse(&body)
        .map_err(|e| ScepError::upstream_unavailable(&format!("its GetCACert cannot be read: {}", e.message)))?;
    ca.check_fingerprint(&config.fingerprint).map_err(|e| {
        ScepError::upstream_unavailable(&format!("{}; nothing was sent to it", e.message.replacen("CA", "its CA", 1)))
    })?;
    Ok(ca)
}

/// Only what the pinned CA certified (directly or through an intermediate it certified): on a plain-http
/// path anyone can add an "RA" certificate to GetCACert, and the edge must neither encrypt a device's request
/// (its challenge) to it nor accept a CertRep it signed. Without a certified RA, the CA itself is the recipient.
fn certified_by_pin(ca: CaCertificates, ops: &dyn PublicKeyOps) -> CaCertificates {
    let mut trusted = vec![ca.ca.clone()];
    let mut rest: Vec<Certificate> = ca.all.into_iter().filter(|c| *c != ca.ca).collect();
    // Each pass certifies what the trusted ones issued; a chain is at most as long as the list.
    for _ in 0..=rest.len() {
        let (certified, others): (Vec<_>, Vec<_>) =
            rest.into_iter().partition(|c| trusted.iter().any(|t| crate::issue::verify_issued_by(c, t, ops).is_ok()));
        rest = others;
        if certified.is_empty() {
            break;
        }
        trusted.extend(certified);
    }
    let recipient = if trusted.contains(&ca.recipient) { ca.recipient } else { ca.ca.clone() };
    CaCertificates { ca: ca.ca, recipient, all: trusted }
}

/// What the exchange asks of its host next.
#[derive(Debug)]
pub enum ExchangeStep {
    /// Send this and call [`Exchange::with_answer`] with what came back.
    Send(UpstreamRequest),
    /// Perform this with the edge key the exchange was started with; call [`Exchange::with_key_result`].
    Key(KeyOperation),
    Done(Box<Outcome>),
}

/// How an exchange with the upstream ended.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    /// SUCCESS: the certificate, verified against the pinned upstream CA, which comes with it.
    Issued {
        certificate: Certificate,
        ca: Certificate,
    },
    Pending,
    /// The upstream answered FAILURE: its failInfo and text.
    Refused(ScepError),
    /// No usable answer: unreachable, too slow, an HTTP error, a CA that does not match the pin, a reply that
    /// fails its checks.
    Unavailable(ScepError),
}

/// What the edge sends for a device: its CSR, or a poll for a request the upstream left PENDING.
#[derive(Clone, Debug)]
pub enum Forward {
    Request { csr_der: Vec<u8>, message_type: MessageType },
    Poll { subject: Name },
}

/// One exchange with the upstream.
pub struct Exchange {
    config: UpstreamConfig,
    forward: Forward,
    transaction_id: String,
    /// The edge's certificate that signs the request and receives the reply (its RA's).
    signer: Certificate,
    /// SHA-256 of the device's SubjectPublicKeyInfo: the issued certificate must carry that key.
    key_digest: String,
    caps: Option<CaCaps>,
    ca: Option<CaCertificates>,
    stage: Stage,
}

enum Stage {
    Caps(UpstreamRequest),
    CaCert(UpstreamRequest),
    Signing(UnsignedRequest, bool),
    Sent(UpstreamRequest, PkiRequest),
    Opening(SealedCertRep),
    Done,
}

impl Exchange {
    /// Starts with GetCACaps. The transactionID is the device's, so the upstream sees one transaction however
    /// often the device retries or polls.
    pub fn start(
        config: UpstreamConfig,
        forward: Forward,
        transaction_id: String,
        signer: Certificate,
        key_digest: String,
    ) -> (Self, ExchangeStep) {
        let mut exchange =
            Self { config, forward, transaction_id, signer, key_digest, caps: None, ca: None, stage: Stage::Done };
        let step = match HttpRequest::get_ca_caps(&exchange.config.scep_url) {
            Ok(http) => {
                let request = exchange.config.send(http);
                exchange.stage = Stage::Caps(request.clone());
                ExchangeStep::Send(request)
            }
            Err(f) => ExchangeStep::Done(Box::new(Outcome::Unavailable(unavailable(&f)))),
        };
        (exchange, step)
    }

    /// Continues with the upstream's answer to the last [`ExchangeStep::Send`]; `ops` checks the upstream's
    /// signatures and transports the content key to it.
    pub fn with_answer(
        &mut self,
        answer: UpstreamAnswer,
        rng: &mut dyn CryptoRngCore,
        ops: &dyn PublicKeyOps,
    ) -> ExchangeStep {
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Caps(request) => {
                let caps = answer.response(&request.http).and_then(|r| request.http.read(r));
                match caps {
                    Ok(body) => self.caps = Some(CaCaps::parse(&String::from_utf8_lossy(&body))),
                    Err(f) => return self.done(Outcome::Unavailable(unavailable(&f))),
                }
                match HttpRequest::get_ca_cert(&self.config.scep_url) {
                    Ok(http) => {
                        let request = self.config.send(http);
                        self.stage = Stage::CaCert(request.clone());
                        ExchangeStep::Send(request)
                    }
                    Err(f) => self.done(Outcome::Unavailable(unavailable(&f))),
                }
            }
            Stage::CaCert(request) => match read_ca_certificates(&self.config, answer, &request.http) {
                Ok(ca) => {
                    self.ca = Some(certified_by_pin(ca, ops));
                    self.build(rng, ops)
                }
                Err(e) => self.done(Outcome::Unavailable(e)),
            },
            Stage::Sent(request, sent) => self.read_reply(answer, &request, &sent, ops),
            _ => self.done(Outcome::Unavailable(ScepError::internal())),
        }
    }

    fn build(&mut self, rng: &mut dyn CryptoRngCore, ops: &dyn PublicKeyOps) -> ExchangeStep {
        let (caps, ca) = (self.caps.as_ref().expect("caps first"), self.ca.as_ref().expect("CA first"));
        let cipher = self.config.cipher.as_deref().map(Cipher::from_name).transpose();
        let digest = self.config.digest.as_deref().map(DigestAlg::from_name).transpose();
        let negotiated =
            cipher.and_then(|cipher| digest.and_then(|digest| caps.negotiate(self.config.policy(), cipher, digest)));
        let negotiated = match negotiated {
            Ok(n) => n,
            Err(e) => {
                let what = format!("no algorithm both sides allow: {}", e.message);
                return self.done(Outcome::Unavailable(ScepError::upstream_unavailable(&what)));
            }
        };
        let identifier = IdentifierKind::IssuerAndSerialNumber;
        let builder = RequestBuilder {
            signer_certificate: &self.signer,
            ca,
            options: RequestOptions {
                envelope: EnvelopeOptions { cipher: negotiated.cipher, identifier, ..Default::default() },
                policy: self.config.policy(),
                digest: negotiated.digest,
                signer_identifier: identifier,
            },
            public_ops: ops,
        };
        let tid = Some(self.transaction_id.clone());
        let unsigned = match &self.forward {
            Forward::Request { csr_der, message_type } => {
                // An upstream that does not offer Renewal gets a renewal as a PKCSReq (RFC 8894 §3.3.1.2).
                let message_type = if negotiated.renewal { *message_type } else { MessageType::PkcsReq };
                builder.certificate_request(csr_der, message_type, tid, rng)
            }
            Forward::Poll { subject } => builder.cert_poll(&self.transaction_id, subject, rng),
        };
        match unsigned {
            Ok(unsigned) => {
                let operation = unsigned.operation();
                self.stage = Stage::Signing(unsigned, negotiated.post);
                ExchangeStep::Key(operation)
            }
            Err(e) => self.done(Outcome::Unavailable(ScepError::upstream_unavailable(&e.message))),
        }
    }

    /// Continues with the result of the last [`ExchangeStep::Key`] (None: the edge's key could not).
    pub fn with_key_result(&mut self, result: Option<Vec<u8>>, ops: &dyn PublicKeyOps) -> ExchangeStep {
        let failed = || Outcome::Unavailable(ScepError::internal());
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Signing(unsigned, post) => {
                let signed = result.ok_or_else(ScepError::internal).and_then(|s| unsigned.finish(&s));
                let request = signed.and_then(|sent| {
                    let http =
                        HttpRequest::pki_operation(&self.config.scep_url, &sent.message, post).map_err(|f| f.error)?;
                    Ok((self.config.send(http), sent))
                });
                match request {
                    Ok((request, sent)) => {
                        self.stage = Stage::Sent(request.clone(), sent);
                        ExchangeStep::Send(request)
                    }
                    Err(_) => self.done(failed()),
                }
            }
            Stage::Opening(sealed) => {
                let ca = self.ca.as_ref().expect("CA first");
                let content_key = zeroize::Zeroizing::new(result.unwrap_or_default());
                match sealed.finish(&content_key, ca, None, ops) {
                    Ok(CertRepOutcome::Issued { certificate, chain }) => self.issued(certificate, chain, ops),
                    Ok(_) => self.done(Outcome::Unavailable(ScepError::upstream_unavailable(
                        "its SUCCESS holds no certificate",
                    ))),
                    Err(e) => self.done(Outcome::Unavailable(ScepError::upstream_unavailable(&format!(
                        "its SUCCESS cannot be opened: {}",
                        e.message
                    )))),
                }
            }
            _ => self.done(failed()),
        }
    }

    fn read_reply(
        &mut self,
        answer: UpstreamAnswer,
        request: &UpstreamRequest,
        sent: &PkiRequest,
        ops: &dyn PublicKeyOps,
    ) -> ExchangeStep {
        let body = match answer.response(&request.http).and_then(|r| request.http.read(r)) {
            Ok(body) => body,
            Err(f) => return self.done(Outcome::Unavailable(unavailable(&f))),
        };
        let ca = self.ca.as_ref().expect("CA first");
        let crypto = Crypto { public_ops: ops, policy: self.config.policy() };
        match crate::client::read_cert_rep(&body, sent, &self.signer, ca, crypto) {
            Ok(CertRep::Pending) => self.done(Outcome::Pending),
            Ok(CertRep::Failed(e)) => self.done(Outcome::Refused(ScepError::upstream_refused(e.fail_info, &e.message))),
            Ok(CertRep::Sealed(sealed)) => {
                let operation = sealed.operation();
                self.stage = Stage::Opening(sealed);
                ExchangeStep::Key(operation)
            }
            Err(e) => self.done(Outcome::Unavailable(ScepError::upstream_unavailable(&format!(
                "its CertRep fails its checks: {}",
                e.message
            )))),
        }
    }

    /// The certificate must carry the device's key and chain to the pinned CA (which `finish` verified).
    fn issued(&mut self, certificate: Certificate, _chain: Vec<Certificate>, ops: &dyn PublicKeyOps) -> ExchangeStep {
        let ca = self.ca.as_ref().expect("CA first").ca.clone();
        let spki = certificate.tbs_certificate.subject_public_key_info.to_der().unwrap_or_default();
        if crate::keys::key_digest(&spki) != self.key_digest {
            let what = "its certificate does not carry the device's public key";
            return self.done(Outcome::Unavailable(ScepError::upstream_unavailable(what)));
        }
        if crate::issue::verify_issued_by(&certificate, &ca, ops).is_err() {
            let what = "its certificate is not issued by the pinned CA";
            return self.done(Outcome::Unavailable(ScepError::upstream_unavailable(what)));
        }
        // A device certificate is never a CA, whatever the CSR or the upstream's template asked for.
        if crate::caps::is_ca_certificate(&certificate) {
            let what = "its certificate is a CA certificate (basicConstraints cA), which this profile never delivers";
            return self.done(Outcome::Unavailable(ScepError::upstream_unavailable(what)));
        }
        self.done(Outcome::Issued { certificate, ca })
    }

    fn done(&mut self, outcome: Outcome) -> ExchangeStep {
        self.stage = Stage::Done;
        ExchangeStep::Done(Box::new(outcome))
    }

    /// The upstream CA, once its GetCACert was read.
    pub fn upstream_ca(&self) -> Option<&Certificate> {
        self.ca.as_ref().map(|c| &c.ca)
    }
}

/// What a CSR may ask an upstream CA for, beside the names the edge checked: the upstream issues from the CSR,
/// so anything else it asks for (a SAN type the edge cannot read, a CA flag, a certificate template, any other
/// extension) is refused before it is forwarded.
pub fn check_csr(csr: &crate::csr::CsrFacts) -> Result<()> {
    use const_oid::db::rfc5280;
    let refuse = |what: String| {
        Err(ScepError::not_permitted(
            format!("The CSR asks for {what}, which the upstream CA could issue and this profile does not vouch for"),
            "send a CSR with only the subject, subjectAltName and key usages the profile issues",
        ))
    };
    if csr.unreadable_sans > 0 {
        return refuse("a subjectAltName of a type the profile never issues (otherName, directoryName, …)".into());
    }
    for (oid, value) in &csr.extensions {
        match *oid {
            rfc5280::ID_CE_SUBJECT_ALT_NAME
            | rfc5280::ID_CE_KEY_USAGE
            | rfc5280::ID_CE_EXT_KEY_USAGE
            | rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER => {}
            rfc5280::ID_CE_BASIC_CONSTRAINTS => {
                let ca = x509_cert::ext::pkix::BasicConstraints::from_der(value).map(|b| b.ca).unwrap_or(true);
                if ca {
                    return refuse("a CA certificate (basicConstraints cA)".into());
                }
            }
            other => return refuse(format!("the extension {other}")),
        }
    }
    Ok(())
}

/// Whether the upstream's certificate names exactly what the edge checked: the subject the profile renders
/// for the seat and no SAN beyond the rendered ones. An upstream that adds or changes names (an AD CS
/// template building the subject from the directory, say) gets its certificate withheld.
pub fn check_names(certificate: &Certificate, plan: &crate::policy::CertificatePlan) -> Result<()> {
    let tbs = &certificate.tbs_certificate;
    // Compared by value, not encoding: an upstream may re-encode a string (micromdm writes PrintableString).
    let rendered = <Name as core::str::FromStr>::from_str(&plan.subject).ok();
    if !rendered.is_some_and(|r| crate::names::same_name(&tbs.subject, &r)) {
        return Err(ScepError::upstream_names(&format!("the subject {}, not {}", tbs.subject, plan.subject)));
    }
    let names = tbs.extensions.iter().flatten().filter(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME);
    for extension in names {
        let names = x509_cert::ext::pkix::SubjectAltName::from_der(extension.extn_value.as_bytes())?;
        for name in &names.0 {
            match crate::csr::San::from_general_name(name) {
                Some(san) if plan.sans.iter().any(|p| crate::names::same_san(&san, p)) => {}
                Some(san) => {
                    return Err(ScepError::upstream_names(&format!("the subjectAltName {}", String::from(san))))
                }
                None => return Err(ScepError::upstream_names("a subjectAltName of a type the profile never issues")),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: serde_json::Value) -> UpstreamConfig {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_csr_that_asks_an_upstream_for_more_than_names_and_key_usages_is_refused() {
        use crate::csr::CsrRequest;
        let key = crate::keys::RsaKey::generate(2048, AlgorithmPolicy::Modern, &mut rand_core::OsRng).unwrap();
        let request = CsrRequest {
            subject: "CN=dev-1".into(),
            sans: vec!["dns:dev-1.example".parse().unwrap()],
            challenge: Some("code".into()),
            digest: DigestAlg::Sha256,
            digital_signature: true,
            key_encipherment: true,
        };
        let der = request.build(&key).unwrap();
        let facts = crate::csr::CsrFacts::from_der(&der, &crate::keys::RustCrypto).unwrap();
        assert!(check_csr(&facts).is_ok(), "scepkit's own CSR: SAN and key usage");
        let mut ca = facts.clone();
        let bc = x509_cert::ext::pkix::BasicConstraints { ca: true, path_len_constraint: None };
        ca.extensions.push((const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS, bc.to_der().unwrap()));
        assert!(check_csr(&ca).unwrap_err().message.contains("a CA certificate"));
        let mut template = facts.clone();
        let oid = der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.20.2");
        template.extensions.push((oid, vec![0x1e, 0]));
        assert!(check_csr(&template).unwrap_err().message.contains("the extension 1.3.6.1.4.1.311.20.2"));
        let mut upn = facts;
        upn.unreadable_sans = 1;
        assert!(check_csr(&upn).unwrap_err().message.contains("otherName"));
    }

    #[test]
    fn an_upstream_is_checked_field_by_field() {
        let fp = "ab".repeat(32);
        let ok =
            config(serde_json::json!({ "scep_url": "http://ndes.corp/certsrv/mscep/mscep.dll", "fingerprint": fp }));
        assert!(ok.issues().is_empty());
        assert_eq!(ok.challenge, UpstreamChallenge::None);
        assert_eq!(ok.timeout_ms, DEFAULT_TIMEOUT_MS);
        let bad = config(serde_json::json!({
            "scep_url": "ftp://x", "fingerprint": "12", "cipher": "des-cbc", "digest": "sha1", "timeout_ms": 5,
            "challenge": { "dynamic": { "otp_server_url": "http://ndes.corp/certsrv/mscep_admin/", "username": "", "password": "p" } }
        }));
        let paths: Vec<_> = bad.issues().into_iter().map(|i| i.path).collect();
        assert_eq!(
            paths,
            [
                "upstream.scep_url",
                "upstream.fingerprint",
                "upstream.challenge.dynamic.otp_server_url",
                "upstream.challenge.dynamic.username",
                "upstream.cipher",
                "upstream.digest",
                "upstream.timeout_ms"
            ]
        );
        let fixed =
            config(serde_json::json!({ "scep_url": "https://h/scep", "fingerprint": fp, "challenge": "fixed" }));
        assert_eq!(fixed.challenge, UpstreamChallenge::Fixed);
        assert!(serde_json::from_value::<UpstreamConfig>(
            serde_json::json!({ "scep_url": "https://h", "fingerprint": fp, "extra": 1 })
        )
        .is_err());
    }
}
