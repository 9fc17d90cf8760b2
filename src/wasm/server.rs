//! The server half of the facade: what a SCEP endpoint (the Worker) needs. Left out of the browser build.

use der::{Decode, Encode};
use rand_core::OsRng;
use wasm_bindgen::prelude::*;

use super::{certificate, from_js, js_error, key, random_serial, to_js, JsResult};
use crate::algorithms::{DigestAlg, KeyTransport};
use crate::caps::CaCaps;
use crate::error::ScepError;
use crate::profile::ScepProfile;
use crate::signed::IdentifierKind;
use crate::wire::Certificate;

#[wasm_bindgen(js_name = serverCaCaps)]
pub fn server_ca_caps(legacy: bool, next_ca: bool) -> String {
    CaCaps::for_server(legacy, next_ca).render()
}

/// An RA certificate for `ra_key`, issued by the CA (RFC 8894 §2.1): signs CertReps, receives envelopes.
#[wasm_bindgen(js_name = raCertificate)]
pub fn ra_certificate(
    ra_key_pkcs8: &[u8],
    subject: &str,
    not_before: f64,
    not_after: f64,
    ca_cert: &[u8],
    ca_key_pkcs8: &[u8],
) -> JsResult<Vec<u8>> {
    let cert = crate::issue::ra_certificate(
        &key(ra_key_pkcs8)?,
        subject,
        &random_serial(&mut OsRng),
        (not_before as u64, not_after as u64),
        &certificate(ca_cert)?,
        &key(ca_key_pkcs8)?,
        DigestAlg::Sha256,
    )
    .map_err(js_error)?;
    cert.to_der().map_err(|e| js_error(e.into()))
}

/// A private key behind the crypto seam: the pure-wasm [`RsaKey`], or host callbacks (the Worker passes
/// workerd's native `node:crypto` so private-key operations run in BoringSSL).
#[wasm_bindgen]
pub struct ServerKey(Box<dyn crate::keys::PrivateKeyOps>);

#[wasm_bindgen]
impl ServerKey {
    #[wasm_bindgen(js_name = fromPkcs8)]
    pub fn from_pkcs8(key_bytes: &[u8]) -> JsResult<ServerKey> {
        Ok(Self(Box::new(key(key_bytes)?)))
    }

    /// `sign(digestName, data) -> Uint8Array` (RSASSA-PKCS1-v1_5) and `decrypt(transportName, data) ->
    /// Uint8Array`, with transport names `rsa-pkcs1v15`, `rsa-oaep-sha1`, `rsa-oaep-sha256`.
    #[wasm_bindgen(js_name = fromCallbacks)]
    pub fn from_callbacks(
        public_key_spki: &[u8],
        sign: js_sys::Function,
        decrypt: js_sys::Function,
    ) -> JsResult<ServerKey> {
        let spki = spki::SubjectPublicKeyInfoOwned::from_der(public_key_spki)
            .map_err(|e| js_error(ScepError::invalid_input(format!("public key: {e}"))))?;
        let public = crate::keys::rsa_public_key(&spki).map_err(js_error)?;
        Ok(Self(Box::new(HostKey { public, sign, decrypt })))
    }
}

struct HostKey {
    public: rsa::RsaPublicKey,
    sign: js_sys::Function,
    decrypt: js_sys::Function,
}

impl HostKey {
    fn call(
        f: &js_sys::Function,
        alg: &str,
        data: &[u8],
        fail: impl FnOnce(String) -> ScepError,
    ) -> crate::error::Result<Vec<u8>> {
        match f.call2(&JsValue::NULL, &alg.into(), &js_sys::Uint8Array::from(data)) {
            Ok(v) if v.is_instance_of::<js_sys::Uint8Array>() => Ok(js_sys::Uint8Array::from(v).to_vec()),
            Ok(_) => Err(fail("the host returned no bytes".into())),
            Err(e) => {
                Err(fail(e.as_string().or_else(|| js_sys::Error::from(e).message().as_string()).unwrap_or_default()))
            }
        }
    }
}

impl crate::keys::PrivateKeyOps for HostKey {
    fn public_key(&self) -> &rsa::RsaPublicKey {
        &self.public
    }
    fn sign(&self, digest: DigestAlg, message: &[u8]) -> crate::error::Result<Vec<u8>> {
        Self::call(&self.sign, digest.name(), message, |m| {
            ScepError::invalid_input(format!("host signing failed: {m}"))
        })
    }
    fn decrypt(&self, transport: KeyTransport, ciphertext: &[u8]) -> crate::error::Result<Vec<u8>> {
        Self::call(&self.decrypt, transport.name(), ciphertext, |_| ScepError::decrypt_failed())
    }
}

/// Public-key operations by host callbacks: `verify(digestName, spkiDer, data, signature) -> boolean` and
/// `encrypt(transportName, spkiDer, data) -> Uint8Array`.
struct HostPublicKeyOps {
    verify: js_sys::Function,
    encrypt: js_sys::Function,
}

impl crate::keys::PublicKeyOps for HostPublicKeyOps {
    fn verify(
        &self,
        key: &spki::SubjectPublicKeyInfoOwned,
        digest: DigestAlg,
        message: &[u8],
        signature: &[u8],
    ) -> crate::error::Result<bool> {
        let args = js_sys::Array::of4(
            &digest.name().into(),
            &js_sys::Uint8Array::from(key.to_der()?.as_slice()),
            &js_sys::Uint8Array::from(message),
            &js_sys::Uint8Array::from(signature),
        );
        let result = self
            .verify
            .apply(&JsValue::NULL, &args)
            .map_err(|_| ScepError::integrity("the host could not check a signature"))?;
        Ok(result.as_bool() == Some(true))
    }

    fn encrypt(
        &self,
        key: &spki::SubjectPublicKeyInfoOwned,
        transport: KeyTransport,
        plaintext: &[u8],
        _rng: &mut dyn rand_core::CryptoRngCore,
    ) -> crate::error::Result<Vec<u8>> {
        let result = self
            .encrypt
            .call3(
                &JsValue::NULL,
                &transport.name().into(),
                &js_sys::Uint8Array::from(key.to_der()?.as_slice()),
                &js_sys::Uint8Array::from(plaintext),
            )
            .map_err(|_| ScepError::invalid_input("the host could not transport a content key"))?;
        if !result.is_instance_of::<js_sys::Uint8Array>() {
            return Err(ScepError::invalid_input("the host returned no bytes for a key transport"));
        }
        Ok(js_sys::Uint8Array::from(result).to_vec())
    }
}

/// The CA (and optional RA) a SCEP endpoint answers as. Requests are opened with either key; CertReps are
/// signed by the RA when there is one, else by the CA.
#[wasm_bindgen]
pub struct ServerIdentity {
    ca_cert: Certificate,
    ca_key: ServerKey,
    ra: Option<(Certificate, ServerKey)>,
    public_ops: Option<HostPublicKeyOps>,
}

#[wasm_bindgen]
impl ServerIdentity {
    #[wasm_bindgen(constructor)]
    pub fn new(
        ca_cert: &[u8],
        ca_key: ServerKey,
        ra_cert: Option<Vec<u8>>,
        ra_key: Option<ServerKey>,
    ) -> JsResult<ServerIdentity> {
        let ra = match (ra_cert, ra_key) {
            (Some(c), Some(k)) => Some((certificate(&c)?, k)),
            (None, None) => None,
            _ => return Err(js_error(ScepError::invalid_input("an RA needs both its certificate and its key"))),
        };
        Ok(Self { ca_cert: certificate(ca_cert)?, ca_key, ra, public_ops: None })
    }

    /// Routes the public-key operations on requesters' keys (signature checks, the reply's key transport)
    /// to host callbacks too, e.g. workerd's native `node:crypto`.
    #[wasm_bindgen(js_name = useHostPublicKeyOps)]
    pub fn use_host_public_key_ops(&mut self, verify: js_sys::Function, encrypt: js_sys::Function) {
        self.public_ops = Some(HostPublicKeyOps { verify, encrypt });
    }

    fn public_ops(&self) -> &dyn crate::keys::PublicKeyOps {
        match &self.public_ops {
            Some(host) => host,
            None => &crate::keys::RustCrypto,
        }
    }

    /// The GetCACert answer: `{ contentType, body }`.
    #[wasm_bindgen(js_name = caCertResponse)]
    pub fn ca_cert_response(&self) -> JsResult<JsValue> {
        let (content_type, body) =
            crate::caps::ca_cert_response(&self.ca_cert, self.ra.as_ref().map(|(c, _)| c)).map_err(js_error)?;
        let out = js_sys::Object::new();
        js_sys::Reflect::set(&out, &"contentType".into(), &content_type.into())?;
        js_sys::Reflect::set(&out, &"body".into(), &js_sys::Uint8Array::from(body.as_slice()))?;
        Ok(out.into())
    }

    /// Issues a certificate for a public key (SubjectPublicKeyInfo DER, as `open()` returns it), signed by
    /// the CA. `options` is a policy `plan` plus the serial: `{ serial (hex), subject, not_before, not_after,
    /// digest, sans, digital_signature, key_encipherment, client_auth? }`. Every name comes from the plan.
    pub fn issue(&self, public_key: &[u8], options: JsValue) -> JsResult<Vec<u8>> {
        let o: IssueOptionsJs = from_js(options)?;
        let opts = crate::issue::IssueOptions {
            serial: hex::decode(&o.serial).map_err(|_| js_error(ScepError::invalid_input("serial must be hex")))?,
            subject: o.subject,
            not_before: o.not_before,
            not_after: o.not_after,
            digest: o.digest,
            sans: o.sans,
            digital_signature: o.digital_signature,
            key_encipherment: o.key_encipherment,
            client_auth: o.client_auth,
        };
        let spki = crate::issue::stored_public_key(public_key).map_err(js_error)?;
        let cert = crate::issue::issue(spki, &opts, &self.ca_cert, self.ca_key.0.as_ref()).map_err(js_error)?;
        cert.to_der().map_err(|e| js_error(e.into()))
    }

    /// The CA's and RA's own names: never issued to a seat.
    fn reserved_names(&self) -> Vec<x509_cert::name::Name> {
        let mut names = vec![self.ca_cert.tbs_certificate.subject.clone()];
        names.extend(self.ra.iter().map(|(c, _)| c.tbs_certificate.subject.clone()));
        names
    }

    /// The GetNextCACert body for the next CA certificate (and RA), signed by the current RA or CA.
    #[wasm_bindgen(js_name = nextCaCertResponse)]
    pub fn next_ca_cert_response(&self, next_ca: &[u8], next_ra: Option<Vec<u8>>) -> JsResult<Vec<u8>> {
        let mut next = vec![certificate(next_ca)?];
        if let Some(ra) = next_ra {
            next.push(certificate(&ra)?);
        }
        crate::caps::next_ca_cert_response(&next.iter().collect::<Vec<_>>(), &self.signer(DigestAlg::Sha256))
            .map_err(js_error)
    }

    /// A CRL of `revoked` (`[{ serial, revoked_at }]`), signed by the CA.
    pub fn crl(&self, revoked: JsValue, number: f64, now: f64, next_update: f64) -> JsResult<Vec<u8>> {
        let revoked: Vec<crate::crl::Revoked> = from_js(revoked)?;
        crate::crl::build(
            &revoked,
            number as u64,
            now as u64,
            next_update as u64,
            &self.ca_cert,
            self.ca_key.0.as_ref(),
            DigestAlg::Sha256,
        )
        .map_err(js_error)
    }

    fn recipients(&self) -> Vec<crate::envelope::Recipient<'_>> {
        let mut out: Vec<_> = self
            .ra
            .iter()
            .map(|(c, k)| crate::envelope::Recipient { certificate: Some(c), key: k.0.as_ref() })
            .collect();
        out.push(crate::envelope::Recipient { certificate: Some(&self.ca_cert), key: self.ca_key.0.as_ref() });
        out
    }

    fn signer(&self, digest: DigestAlg) -> crate::signed::Signer<'_> {
        let (certificate, key) = match &self.ra {
            Some((c, k)) => (c, k),
            None => (&self.ca_cert, &self.ca_key),
        };
        crate::signed::Signer {
            key: key.0.as_ref(),
            certificate,
            digest,
            identifier: IdentifierKind::IssuerAndSerialNumber,
        }
    }
}

#[derive(serde::Deserialize)]
struct IssueOptionsJs {
    serial: String,
    subject: String,
    not_before: u64,
    not_after: u64,
    digest: DigestAlg,
    sans: Vec<crate::csr::San>,
    digital_signature: bool,
    key_encipherment: bool,
    #[serde(default = "crate::csr::yes")]
    client_auth: bool,
}

/// A PKIOperation whose SCEP attributes were read ([`read_request`]), and once opened, its facts.
#[wasm_bindgen]
pub struct ScepRequest {
    incoming: crate::server::IncomingRequest,
    facts: Option<crate::server::RequestFacts>,
}

/// Reads a PKIOperation's SignedData and SCEP attributes. Throws (HTTP 400) when even that fails.
#[wasm_bindgen(js_name = readRequest)]
pub fn read_request(bytes: &[u8]) -> JsResult<ScepRequest> {
    crate::server::read_request(bytes).map(|incoming| ScepRequest { incoming, facts: None }).map_err(js_error)
}

fn profile(profile_json: JsValue) -> JsResult<ScepProfile> {
    let value: serde_json::Value = from_js(profile_json)?;
    ScepProfile::from_json(&value).map_err(js_error)
}

#[wasm_bindgen]
impl ScepRequest {
    #[wasm_bindgen(getter, js_name = transactionId)]
    pub fn transaction_id(&self) -> String {
        self.incoming.attributes.transaction_id.clone()
    }

    #[wasm_bindgen(getter, js_name = messageType)]
    pub fn message_type(&self) -> String {
        self.incoming.attributes.message_type.map(|m| m.name()).unwrap_or_default().into()
    }

    /// Verifies and decrypts under a profile's algorithm rules; returns the facts (`{ message_type,
    /// transaction_id, digest, cipher, signer, csr, public_key, key_digest, ... }`) or throws a ScepError to
    /// answer with [`cert_rep`] as a FAILURE.
    pub fn open(&mut self, identity: &ServerIdentity, legacy: bool, oaep_only: bool) -> JsResult<JsValue> {
        let accept = crate::server::Acceptance { legacy, oaep_only };
        let facts = self.incoming.open_with(&identity.recipients(), accept, identity.public_ops()).map_err(js_error)?;
        let out = to_js(&facts)?;
        if let Some(csr) = &facts.csr {
            // The key, not the CSR: the CSR carries the enrollment code (challengePassword) and is not kept.
            js_sys::Reflect::set(&out, &"public_key".into(), &js_sys::Uint8Array::from(csr.spki_der.as_slice()))?;
            js_sys::Reflect::set(&out, &"key_digest".into(), &crate::policy::key_digest(csr).into())?;
        }
        self.facts = Some(facts);
        Ok(out)
    }

    fn facts(&self) -> JsResult<&crate::server::RequestFacts> {
        self.facts.as_ref().ok_or_else(|| js_error(ScepError::invalid_input("open() the request first")))
    }

    /// The seat the CSR names under the profile's `seat_id_mapping`; throws the spec's "Could not find seat".
    #[wasm_bindgen(js_name = seatId)]
    pub fn seat_id(&self, profile_json: JsValue) -> JsResult<String> {
        let csr = self
            .facts()?
            .csr
            .as_ref()
            .ok_or_else(|| js_error(ScepError::invalid_input("this request carries no CSR")))?;
        crate::policy::seat_id(csr, &profile(profile_json)?).map_err(js_error)
    }

    /// The policy decision: `{ decision: "issue" | "hold" | "resend" | "pending" | "reject", ... }`.
    /// `store` holds what the store knows (see `StoreFacts`); `code_key_hex` is the enrollment-code MAC key.
    pub fn decide(
        &self,
        identity: &ServerIdentity,
        profile_json: JsValue,
        store: JsValue,
        code_key_hex: &str,
        now: f64,
    ) -> JsResult<JsValue> {
        let store: crate::policy::StoreFacts = from_js(store)?;
        let code_key =
            hex::decode(code_key_hex).map_err(|_| js_error(ScepError::invalid_input("code key must be hex")))?;
        to_js(&crate::policy::decide(
            self.facts()?,
            &profile(profile_json)?,
            &store,
            &code_key,
            &identity.reserved_names(),
            now as u64,
        ))
    }
}

/// A fresh one-time enrollment code (100 bits, `XXXXX-XXXXX-XXXXX-XXXXX`).
#[wasm_bindgen(js_name = newEnrollmentCode)]
pub fn new_enrollment_code() -> String {
    crate::policy::new_enrollment_code(&mut OsRng)
}

/// What the store keeps of an enrollment code: its HMAC-SHA-256 under the server's key, hex.
#[wasm_bindgen(js_name = enrollmentCodeMac)]
pub fn enrollment_code_mac(code_key_hex: &str, code: &str) -> JsResult<String> {
    let key = hex::decode(code_key_hex).map_err(|_| js_error(ScepError::invalid_input("code key must be hex")))?;
    Ok(crate::policy::enrollment_code_mac(&key, code))
}

/// The spec's refusals a host raises itself when it loses a race the policy could not see (the code was
/// redeemed, or the certificate renewed, by a concurrent request): `challenge_invalid` or `already_renewed`.
#[wasm_bindgen]
pub fn refusal(kind: &str) -> JsResult<JsValue> {
    Ok(js_error(match kind {
        "challenge_invalid" => ScepError::challenge_invalid(),
        "already_renewed" => ScepError::already_renewed(),
        other => return Err(js_error(ScepError::invalid_input(format!("unknown refusal {other}")))),
    }))
}

/// Answers a request. `reply` is `{ status: "issued", certificates: [leaf, ...chain] }`, `{ status: "crl",
/// crls: [...] }`, `{ status: "pending" }` or `{ status: "failed", failInfo, message }`. A SUCCESS is
/// enveloped in kind with the opened request.
#[wasm_bindgen(js_name = certRep)]
pub fn cert_rep(request: &ScepRequest, reply: JsValue, identity: &ServerIdentity, legacy: bool) -> JsResult<Vec<u8>> {
    let r: ReplyJs = from_js(reply)?;
    let envelope = request.facts.as_ref().map(crate::server::ReplyEnvelope::in_kind);
    let issued = r.certificates.iter().map(|b| certificate(b)).collect::<JsResult<Vec<_>>>()?;
    let crls: Vec<&[u8]> = r.crls.iter().map(|b| b.as_slice()).collect();
    let reply = match r.status.as_str() {
        "issued" => crate::server::Reply::Issued { certificates: issued.iter().collect() },
        "crl" => crate::server::Reply::Crl { crls },
        "pending" => crate::server::Reply::Pending,
        "failed" => crate::server::Reply::Failure {
            fail_info: r.fail_info.unwrap_or(crate::error::FailInfo::BadRequest),
            text: r.message.unwrap_or_default(),
        },
        other => return Err(js_error(ScepError::invalid_input(format!("unknown reply status {other}")))),
    };
    let digest =
        request.incoming.signed.digest_alg().ok().filter(|d| legacy || !d.is_legacy()).unwrap_or(DigestAlg::Sha256);
    crate::server::cert_rep_with(
        &request.incoming,
        reply,
        &identity.signer(digest),
        envelope,
        legacy,
        identity.public_ops(),
        &mut OsRng,
    )
    .map_err(js_error)
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReplyJs {
    status: String,
    #[serde(default)]
    certificates: Vec<serde_bytes::ByteBuf>,
    #[serde(default)]
    crls: Vec<serde_bytes::ByteBuf>,
    /// By name, as errors carry it (`badRequest`, ...).
    #[serde(default)]
    fail_info: Option<crate::error::FailInfo>,
    #[serde(default)]
    message: Option<String>,
}

/// Validates a profile object (the admin API's schema) and returns it normalised, secrets masked.
#[wasm_bindgen(js_name = validateProfile)]
pub fn validate_profile(profile_json: JsValue) -> JsResult<JsValue> {
    to_js(&profile(profile_json)?.to_json(false))
}

/// Validates a new profile object and returns the form the store keeps: a fixed challenge sealed as its MAC
/// under the enrollment-code key. A secret sent as the mask (`********`) is refused: there is none to keep.
#[wasm_bindgen(js_name = storedProfile)]
pub fn stored_profile(profile_json: JsValue, code_key_hex: &str) -> JsResult<JsValue> {
    let incoming: serde_json::Value = from_js(profile_json)?;
    to_js(&ScepProfile::create(&incoming, &code_hex(code_key_hex)?).map_err(js_error)?.to_json(true))
}

/// Validates the replacement of a stored profile (`stored_json` as the store keeps it) and returns the form the
/// store keeps. A secret sent back masked (`********`, as [`validate_profile`] shows it) keeps the stored one.
#[wasm_bindgen(js_name = updatedProfile)]
pub fn updated_profile(stored_json: JsValue, incoming_json: JsValue, code_key_hex: &str) -> JsResult<JsValue> {
    let stored = profile(stored_json)?;
    let incoming: serde_json::Value = from_js(incoming_json)?;
    to_js(&ScepProfile::update(&stored, &incoming, &code_hex(code_key_hex)?).map_err(js_error)?.to_json(true))
}

fn code_hex(code_key_hex: &str) -> JsResult<Vec<u8>> {
    hex::decode(code_key_hex).map_err(|_| js_error(ScepError::invalid_input("code key must be hex")))
}
