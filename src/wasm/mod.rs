//! The JavaScript facade: conversion between JS values and core types, nothing else.
//!
//! Bytes cross as `Uint8Array`, structured results as plain objects (serde-wasm-bindgen), times as Unix
//! seconds, and every error as a JS `Error` carrying `kind`, `failInfo`, `failInfoCode`, `status` and
//! `resolution`.

use der::{Decode, Encode, EncodePem};
use rand_core::OsRng;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::algorithms::{Cipher, DigestAlg, KeyTransport};
use crate::caps::{CaCaps, CaCertificates};
use crate::client::{self, CertRepOutcome, PkiRequest, Requester, RequestOptions};
use crate::csr::{CsrFacts, CsrRequest};
use crate::envelope::EnvelopeOptions;
use crate::error::ScepError;
use crate::issue::SelfSignedRole;
use crate::keys::RsaKey;
use crate::message::MessageType;
use crate::profile::ScepProfile;
use crate::signed::IdentifierKind;
use crate::wire::{Certificate, IssuerAndSerialNumber};

type JsResult<T> = Result<T, JsValue>;

fn js_error(e: ScepError) -> JsValue {
    let err = js_sys::Error::new(&e.message);
    err.set_name("ScepError");
    let set = |k: &str, v: JsValue| {
        let _ = js_sys::Reflect::set(&err, &k.into(), &v);
    };
    set("kind", to_js(&e.kind).unwrap_or(JsValue::NULL));
    set("failInfo", e.fail_info.name().into());
    set("failInfoCode", e.fail_info.code().into());
    set("status", e.status.into());
    set("resolution", e.resolution.as_str().into());
    set("details", to_js(&e.details).unwrap_or(JsValue::NULL));
    err.into()
}

fn to_js<T: Serialize + ?Sized>(value: &T) -> JsResult<JsValue> {
    value.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(|e| js_sys::Error::new(&e.to_string()).into())
}

fn from_js<T: serde::de::DeserializeOwned>(value: JsValue) -> JsResult<T> {
    serde_wasm_bindgen::from_value(value).map_err(|e| js_error(ScepError::invalid_input(e)))
}

fn key(pkcs8: &[u8]) -> JsResult<RsaKey> {
    RsaKey::import(pkcs8).map_err(js_error)
}

fn certificate(der: &[u8]) -> JsResult<Certificate> {
    Certificate::from_der(der).map_err(|e| js_error(ScepError::malformed(format!("certificate: {e}"))))
}

/// A fresh RSA key as PKCS#8 DER (the fallback where WebCrypto cannot generate one).
#[wasm_bindgen(js_name = generateKey)]
pub fn generate_key(bits: u32, legacy: bool) -> JsResult<Vec<u8>> {
    let key = RsaKey::generate(bits as usize, legacy, &mut OsRng).map_err(js_error)?;
    Ok(key.to_pkcs8_der().map_err(js_error)?.to_vec())
}

/// A key derived from a 32-byte seed (benchmarks: equal work on every host). Never for real keys.
#[wasm_bindgen(js_name = generateKeyFromSeed)]
pub fn generate_key_from_seed(bits: u32, seed: &[u8]) -> JsResult<Vec<u8>> {
    let seed: [u8; 32] = seed.try_into().map_err(|_| js_error(ScepError::invalid_input("the seed is 32 bytes")))?;
    Ok(RsaKey::generate_from_seed(bits as usize, seed).map_err(js_error)?.to_pkcs8_der().map_err(js_error)?.to_vec())
}

/// PKCS#8 PEM of a key given as PKCS#8 DER, PKCS#8 PEM or PKCS#1 PEM.
#[wasm_bindgen(js_name = privateKeyToPem)]
pub fn private_key_to_pem(key_bytes: &[u8]) -> JsResult<String> {
    Ok(key(key_bytes)?.to_pkcs8_pem().map_err(js_error)?.to_string())
}

/// PKCS#8 DER of a key given in any form [`private_key_to_pem`] takes.
#[wasm_bindgen(js_name = privateKeyToDer)]
pub fn private_key_to_der(key_bytes: &[u8]) -> JsResult<Vec<u8>> {
    Ok(key(key_bytes)?.to_pkcs8_der().map_err(js_error)?.to_vec())
}

#[wasm_bindgen(js_name = certificateToPem)]
pub fn certificate_to_pem(der: &[u8]) -> JsResult<String> {
    certificate(der)?.to_pem(der::pem::LineEnding::LF).map_err(|e| js_error(e.into()))
}

/// DER from DER, PEM or base64 input.
#[wasm_bindgen(js_name = toDer)]
pub fn to_der(input: &[u8]) -> JsResult<Vec<u8>> {
    crate::inspect::to_der(input).map_err(js_error)
}

#[wasm_bindgen(js_name = parseCaCaps)]
pub fn parse_ca_caps(text: &str) -> JsResult<JsValue> {
    to_js(&CaCaps::parse(text))
}

#[wasm_bindgen(js_name = serverCaCaps)]
pub fn server_ca_caps(legacy: bool, next_ca: bool) -> String {
    CaCaps::for_server(legacy, next_ca).render()
}

/// `{ cipher, digest, post, renewal }` from a GetCACaps body and optional pins.
#[wasm_bindgen]
pub fn negotiate(caps_text: &str, legacy: bool, cipher: Option<String>, digest: Option<String>) -> JsResult<JsValue> {
    let cipher = cipher.map(|c| Cipher::from_name(&c)).transpose().map_err(js_error)?;
    let digest = digest.map(|d| DigestAlg::from_name(&d)).transpose().map_err(js_error)?;
    to_js(&CaCaps::parse(caps_text).negotiate(legacy, cipher, digest).map_err(js_error)?)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CaCertsJs {
    ca: serde_bytes::ByteBuf,
    recipient: serde_bytes::ByteBuf,
    all: Vec<serde_bytes::ByteBuf>,
    ca_fingerprint: String,
    ca_subject: String,
}

/// The certificates of a GetCACert body: `{ ca, recipient, all, caFingerprint, caSubject }`.
#[wasm_bindgen(js_name = parseCaCert)]
pub fn parse_ca_cert(body: &[u8]) -> JsResult<JsValue> {
    let parsed = CaCertificates::parse(body).map_err(js_error)?;
    let der = |c: &Certificate| c.to_der().map(serde_bytes::ByteBuf::from).map_err(|e| js_error(e.into()));
    let out = CaCertsJs {
        ca: der(&parsed.ca)?,
        recipient: der(&parsed.recipient)?,
        all: parsed.all.iter().map(der).collect::<JsResult<_>>()?,
        ca_fingerprint: crate::caps::fingerprint(&parsed.ca).map_err(js_error)?,
        ca_subject: parsed.ca.tbs_certificate.subject.to_string(),
    };
    out.serialize(&serde_wasm_bindgen::Serializer::new()).map_err(|e| js_sys::Error::new(&e.to_string()).into())
}

#[wasm_bindgen(js_name = checkFingerprint)]
pub fn check_fingerprint(body: &[u8], fingerprint: &str) -> JsResult<()> {
    CaCertificates::parse(body).and_then(|c| c.check_fingerprint(fingerprint)).map_err(js_error)
}

/// A signed PKCS#10 request (DER) for `request` = `{ subject, sans?, challenge?, digest?, digitalSignature?, keyEncipherment? }`.
#[wasm_bindgen(js_name = buildCsr)]
pub fn build_csr(key_pkcs8: &[u8], request: JsValue) -> JsResult<Vec<u8>> {
    let request: CsrRequest = from_js(request)?;
    request.build(&key(key_pkcs8)?).map_err(js_error)
}

/// The facts of a CSR, after its proof of possession verified.
#[wasm_bindgen(js_name = csrFacts)]
pub fn csr_facts(der: &[u8]) -> JsResult<JsValue> {
    to_js(&CsrFacts::from_der(der).map_err(js_error)?)
}

/// The SubjectPublicKeyInfo DER of a CSR (what the issued certificate must carry).
#[wasm_bindgen(js_name = csrPublicKey)]
pub fn csr_public_key(der: &[u8]) -> JsResult<Vec<u8>> {
    Ok(CsrFacts::from_der(der).map_err(js_error)?.spki_der)
}

/// A self-signed certificate: `role` is "signer" (a client's transient SCEP signer) or "ca".
#[wasm_bindgen(js_name = selfSignedCertificate)]
pub fn self_signed_certificate(key_pkcs8: &[u8], subject: &str, not_before: f64, not_after: f64, digest: &str, role: &str) -> JsResult<Vec<u8>> {
    let role: SelfSignedRole = from_js(role.into())?;
    let digest = DigestAlg::from_name(digest).map_err(js_error)?;
    let cert = crate::issue::self_signed(&key(key_pkcs8)?, subject, &random_serial(), (not_before as u64, not_after as u64), digest, role).map_err(js_error)?;
    cert.to_der().map_err(|e| js_error(e.into()))
}

/// An RA certificate for `ra_key`, issued by the CA (RFC 8894 §2.1): signs CertReps, receives envelopes.
#[wasm_bindgen(js_name = raCertificate)]
pub fn ra_certificate(ra_key_pkcs8: &[u8], subject: &str, not_before: f64, not_after: f64, ca_cert: &[u8], ca_key_pkcs8: &[u8]) -> JsResult<Vec<u8>> {
    let cert = crate::issue::ra_certificate(&key(ra_key_pkcs8)?, subject, &random_serial(), (not_before as u64, not_after as u64), &certificate(ca_cert)?, &key(ca_key_pkcs8)?, DigestAlg::Sha256)
        .map_err(js_error)?;
    cert.to_der().map_err(|e| js_error(e.into()))
}

fn random_serial() -> [u8; 16] {
    let mut serial = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut OsRng, &mut serial);
    serial[0] = (serial[0] & 0x7f) | 0x01;
    serial
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestOptionsJs {
    message_type: String,
    cipher: String,
    digest: String,
    /// Options are absent or `undefined`; both read as the default.
    #[serde(default)]
    key_transport: Option<KeyTransport>,
    #[serde(default)]
    identifier: Option<IdentifierKind>,
    #[serde(default)]
    legacy: bool,
    #[serde(default)]
    transaction_id: Option<String>,
    /// CertPoll: the subject asked for (RFC 4514).
    #[serde(default)]
    subject: Option<String>,
    /// GetCert / GetCRL: serial (hex) of a certificate issued by the CA.
    #[serde(default)]
    serial: Option<String>,
}

#[derive(Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct PkiRequestJs {
    message_type: String,
    #[serde(with = "serde_bytes")]
    message: Vec<u8>,
    transaction_id: String,
    #[serde(with = "serde_bytes")]
    sender_nonce: Vec<u8>,
}

fn message_type(name: &str) -> JsResult<MessageType> {
    [MessageType::PkcsReq, MessageType::RenewalReq, MessageType::CertPoll, MessageType::GetCert, MessageType::GetCrl, MessageType::CertRep]
        .into_iter()
        .find(|m| m.name().eq_ignore_ascii_case(name) || (name.eq_ignore_ascii_case("GetCertInitial") && *m == MessageType::CertPoll))
        .ok_or_else(|| js_error(ScepError::invalid_input(format!("unknown messageType {name}"))))
}

/// Builds a PKIMessage. `content` is the CSR DER for PKCSReq/RenewalReq and ignored otherwise.
/// Returns `{ messageType, message, transactionId, senderNonce }`; keep it to read the reply.
#[wasm_bindgen(js_name = buildRequest)]
pub fn build_request(content: &[u8], key_pkcs8: &[u8], signer_certificate: &[u8], ca_cert_body: &[u8], options: JsValue) -> JsResult<JsValue> {
    let o: RequestOptionsJs = from_js(options)?;
    let key = key(key_pkcs8)?;
    let cert = certificate(signer_certificate)?;
    let ca = CaCertificates::parse(ca_cert_body).map_err(js_error)?;
    let requester = Requester { key: &key, certificate: &cert };
    let digest = DigestAlg::from_name(&o.digest).map_err(js_error)?;
    let identifier = o.identifier.unwrap_or_default();
    let transport = o.key_transport.unwrap_or(KeyTransport::RsaPkcs1v15);
    let opts = RequestOptions {
        envelope: EnvelopeOptions { cipher: Cipher::from_name(&o.cipher).map_err(js_error)?, transport, identifier, legacy: o.legacy },
        digest,
        signer_identifier: identifier,
    };
    let mt = message_type(&o.message_type)?;
    let built = match mt {
        MessageType::PkcsReq | MessageType::RenewalReq => client::certificate_request(content, mt, o.transaction_id, &requester, &ca, opts, &mut OsRng),
        MessageType::CertPoll => {
            let tid = o.transaction_id.ok_or_else(|| js_error(ScepError::invalid_input("CertPoll needs the transactionId of the pending request")))?;
            let subject = o.subject.ok_or_else(|| js_error(ScepError::invalid_input("CertPoll needs the subject")))?;
            let subject = subject.parse().map_err(|e| js_error(ScepError::invalid_input(format!("subject: {e}"))))?;
            client::cert_poll(&tid, &subject, &requester, &ca, opts, &mut OsRng)
        }
        MessageType::GetCert | MessageType::GetCrl => {
            let serial = hex::decode(o.serial.unwrap_or_default()).map_err(|_| js_error(ScepError::invalid_input("serial must be hex")))?;
            let serial = x509_cert::serial_number::SerialNumber::<x509_cert::certificate::Raw>::new(&serial).map_err(|e| js_error(ScepError::invalid_input(e)))?;
            let ias = IssuerAndSerialNumber { issuer: ca.ca.tbs_certificate.subject.clone(), serial_number: serial };
            client::get_cert_or_crl(mt, &ias, &requester, &ca, opts, &mut OsRng)
        }
        MessageType::CertRep => Err(ScepError::invalid_input("a client does not send CertRep")),
    }
    .map_err(js_error)?;
    to_js_bytes(&PkiRequestJs { message_type: built.message_type.name().into(), message: built.message, transaction_id: built.transaction_id, sender_nonce: built.sender_nonce })
}

fn to_js_bytes<T: Serialize>(value: &T) -> JsResult<JsValue> {
    value.serialize(&serde_wasm_bindgen::Serializer::new()).map_err(|e| js_sys::Error::new(&e.to_string()).into())
}

#[derive(Serialize)]
#[serde(tag = "status", rename_all = "camelCase")]
enum OutcomeJs {
    Issued {
        #[serde(with = "serde_bytes")]
        certificate: Vec<u8>,
        chain: Vec<serde_bytes::ByteBuf>,
    },
    Crl {
        crls: Vec<serde_bytes::ByteBuf>,
    },
    Pending,
    Failed {
        #[serde(rename = "failInfo")]
        fail_info: &'static str,
        #[serde(rename = "failInfoCode")]
        fail_info_code: u8,
        message: String,
        resolution: String,
    },
}

/// Reads a CertRep for `request` (as returned by [`build_request`]). `expected_spki` (from
/// [`csr_public_key`]) picks and checks the issued certificate. Returns `{ status: "issued" | "pending" |
/// "failed" | "crl", ... }`; integrity problems throw.
#[wasm_bindgen(js_name = readCertRep)]
pub fn read_cert_rep(reply: &[u8], request: JsValue, key_pkcs8: &[u8], signer_certificate: &[u8], ca_cert_body: &[u8], expected_spki: Option<Vec<u8>>, legacy: bool) -> JsResult<JsValue> {
    let r: PkiRequestJs = from_js(request)?;
    let request = PkiRequest { message_type: message_type(&r.message_type)?, message: r.message, transaction_id: r.transaction_id, sender_nonce: r.sender_nonce };
    let key = key(key_pkcs8)?;
    let cert = certificate(signer_certificate)?;
    let ca = CaCertificates::parse(ca_cert_body).map_err(js_error)?;
    let outcome = client::read_cert_rep(reply, &request, &Requester { key: &key, certificate: &cert }, &ca, expected_spki.as_deref(), legacy).map_err(js_error)?;
    let der = |c: &Certificate| c.to_der().map_err(|e| js_error(e.into()));
    let out = match outcome {
        CertRepOutcome::Issued { certificate, chain } => {
            OutcomeJs::Issued { certificate: der(&certificate)?, chain: chain.iter().map(|c| der(c).map(serde_bytes::ByteBuf::from)).collect::<JsResult<_>>()? }
        }
        CertRepOutcome::Crl { crls } => OutcomeJs::Crl { crls: crls.into_iter().map(serde_bytes::ByteBuf::from).collect() },
        CertRepOutcome::Pending => OutcomeJs::Pending,
        CertRepOutcome::Failed(e) => OutcomeJs::Failed { fail_info: e.fail_info.name(), fail_info_code: e.fail_info.code(), message: e.message, resolution: e.resolution },
    };
    to_js_bytes(&out)
}

/// A password-protected PKCS#12 of the key and `chain` (leaf first; each a DER `Uint8Array`).
#[wasm_bindgen(js_name = exportPkcs12)]
pub fn export_pkcs12(key_pkcs8: &[u8], chain: Vec<js_sys::Uint8Array>, password: &str, friendly_name: &str) -> JsResult<Vec<u8>> {
    let chain = chain.iter().map(|c| certificate(&c.to_vec())).collect::<JsResult<Vec<_>>>()?;
    crate::pkcs12::export(&key(key_pkcs8)?, &chain, password, friendly_name, &mut OsRng).map_err(js_error)
}

/// A readable description of any SCEP artefact (DER, PEM or base64); a key opens envelopes.
#[wasm_bindgen]
pub fn inspect(input: &[u8], key_pkcs8: Option<Vec<u8>>) -> JsResult<JsValue> {
    let key = key_pkcs8.map(|k| key(&k)).transpose()?;
    to_js(&crate::inspect::inspect(input, key.as_ref().map(|k| k as &dyn crate::keys::PrivateKeyOps)).map_err(js_error)?)
}

/// Fills a profile's subject or SAN template: `vars` is `{ USERNAME: "laptop-42", ... }`.
#[wasm_bindgen(js_name = renderTemplate)]
pub fn render_template(template: &str, vars: JsValue) -> JsResult<String> {
    let vars: std::collections::BTreeMap<String, String> = from_js(vars)?;
    crate::profile::render_template(template, &vars.into_iter().collect::<Vec<_>>()).map_err(js_error)
}

#[wasm_bindgen(js_name = encodeMessageParam)]
pub fn encode_message_param(message: &[u8]) -> String {
    crate::transport::encode_message_param(message)
}

#[wasm_bindgen(js_name = decodeMessageParam)]
pub fn decode_message_param(raw: &str) -> JsResult<Vec<u8>> {
    crate::transport::decode_message_param(raw).map_err(js_error)
}

/// Validates a profile object (the admin API's schema) and returns it normalised; secrets are masked unless
/// `reveal_secrets` (the form a store keeps).
#[wasm_bindgen(js_name = validateProfile)]
pub fn validate_profile(profile_json: JsValue, reveal_secrets: Option<bool>) -> JsResult<JsValue> {
    to_js(&profile(profile_json)?.to_json(reveal_secrets.unwrap_or(false)))
}

// ---- Server side: what a SCEP endpoint (the Worker) needs. ----

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
    pub fn from_callbacks(public_key_spki: &[u8], sign: js_sys::Function, decrypt: js_sys::Function) -> JsResult<ServerKey> {
        let spki = spki::SubjectPublicKeyInfoOwned::from_der(public_key_spki).map_err(|e| js_error(ScepError::invalid_input(format!("public key: {e}"))))?;
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
    fn call(f: &js_sys::Function, alg: &str, data: &[u8], fail: impl FnOnce(String) -> ScepError) -> crate::error::Result<Vec<u8>> {
        match f.call2(&JsValue::NULL, &alg.into(), &js_sys::Uint8Array::from(data)) {
            Ok(v) if v.is_instance_of::<js_sys::Uint8Array>() => Ok(js_sys::Uint8Array::from(v).to_vec()),
            Ok(_) => Err(fail("the host returned no bytes".into())),
            Err(e) => Err(fail(e.as_string().or_else(|| js_sys::Error::from(e).message().as_string()).unwrap_or_default())),
        }
    }
}

impl crate::keys::PrivateKeyOps for HostKey {
    fn public_key(&self) -> &rsa::RsaPublicKey {
        &self.public
    }
    fn sign(&self, digest: DigestAlg, message: &[u8]) -> crate::error::Result<Vec<u8>> {
        Self::call(&self.sign, digest.name(), message, |m| ScepError::invalid_input(format!("host signing failed: {m}")))
    }
    fn decrypt(&self, transport: KeyTransport, ciphertext: &[u8]) -> crate::error::Result<Vec<u8>> {
        let name = to_js(&transport).ok().and_then(|v| v.as_string()).unwrap_or_default();
        Self::call(&self.decrypt, &name, ciphertext, |_| ScepError::decrypt_failed())
    }
}

/// Public-key operations by host callbacks: `verify(digestName, spkiDer, data, signature) -> boolean` and
/// `encrypt(transportName, spkiDer, data) -> Uint8Array`.
struct HostPublicKeyOps {
    verify: js_sys::Function,
    encrypt: js_sys::Function,
}

impl crate::keys::PublicKeyOps for HostPublicKeyOps {
    fn verify(&self, key: &spki::SubjectPublicKeyInfoOwned, digest: DigestAlg, message: &[u8], signature: &[u8]) -> crate::error::Result<bool> {
        let args = js_sys::Array::of4(&digest.name().into(), &js_sys::Uint8Array::from(key.to_der()?.as_slice()), &js_sys::Uint8Array::from(message), &js_sys::Uint8Array::from(signature));
        let result = self.verify.apply(&JsValue::NULL, &args).map_err(|_| ScepError::integrity("the host could not check a signature"))?;
        Ok(result.as_bool() == Some(true))
    }

    fn encrypt(&self, key: &spki::SubjectPublicKeyInfoOwned, transport: KeyTransport, plaintext: &[u8], _rng: &mut dyn rand_core::CryptoRngCore) -> crate::error::Result<Vec<u8>> {
        let name = to_js(&transport).ok().and_then(|v| v.as_string()).unwrap_or_default();
        let result = self
            .encrypt
            .call3(&JsValue::NULL, &name.into(), &js_sys::Uint8Array::from(key.to_der()?.as_slice()), &js_sys::Uint8Array::from(plaintext))
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
    pub fn new(ca_cert: &[u8], ca_key: ServerKey, ra_cert: Option<Vec<u8>>, ra_key: Option<ServerKey>) -> JsResult<ServerIdentity> {
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
        let (content_type, body) = crate::caps::ca_cert_response(&self.ca_cert, self.ra.as_ref().map(|(c, _)| c)).map_err(js_error)?;
        let out = js_sys::Object::new();
        js_sys::Reflect::set(&out, &"contentType".into(), &content_type.into())?;
        js_sys::Reflect::set(&out, &"body".into(), &js_sys::Uint8Array::from(body.as_slice()))?;
        Ok(out.into())
    }

    /// Issues a certificate for a CSR, signed by the CA. `options` is a policy `plan` plus the serial:
    /// `{ serial (hex), not_before, not_after, digest, sans?, digital_signature, key_encipherment, client_auth? }`.
    pub fn issue(&self, csr_der: &[u8], options: JsValue) -> JsResult<Vec<u8>> {
        let o: IssueOptionsJs = from_js(options)?;
        let facts = CsrFacts::from_der(csr_der).map_err(js_error)?;
        let opts = crate::issue::IssueOptions {
            serial: hex::decode(&o.serial).map_err(|_| js_error(ScepError::invalid_input("serial must be hex")))?,
            not_before: o.not_before,
            not_after: o.not_after,
            digest: o.digest,
            sans: o.sans.unwrap_or(facts.sans.clone()),
            digital_signature: o.digital_signature,
            key_encipherment: o.key_encipherment,
            client_auth: o.client_auth,
        };
        let cert = crate::issue::issue(&facts, &opts, &self.ca_cert, self.ca_key.0.as_ref()).map_err(js_error)?;
        cert.to_der().map_err(|e| js_error(e.into()))
    }

    /// The GetNextCACert body for the next CA certificate (and RA), signed by the current RA or CA.
    #[wasm_bindgen(js_name = nextCaCertResponse)]
    pub fn next_ca_cert_response(&self, next_ca: &[u8], next_ra: Option<Vec<u8>>) -> JsResult<Vec<u8>> {
        let mut next = vec![certificate(next_ca)?];
        if let Some(ra) = next_ra {
            next.push(certificate(&ra)?);
        }
        crate::caps::next_ca_cert_response(&next.iter().collect::<Vec<_>>(), &self.signer(DigestAlg::Sha256)).map_err(js_error)
    }

    /// A CRL of `revoked` (`[{ serial, revoked_at }]`), signed by the CA.
    pub fn crl(&self, revoked: JsValue, number: f64, now: f64, next_update: f64) -> JsResult<Vec<u8>> {
        let revoked: Vec<crate::crl::Revoked> = from_js(revoked)?;
        crate::crl::build(&revoked, number as u64, now as u64, next_update as u64, &self.ca_cert, self.ca_key.0.as_ref(), DigestAlg::Sha256).map_err(js_error)
    }

    fn recipients(&self) -> Vec<crate::envelope::Recipient<'_>> {
        let mut out: Vec<_> = self.ra.iter().map(|(c, k)| crate::envelope::Recipient { certificate: Some(c), key: k.0.as_ref() }).collect();
        out.push(crate::envelope::Recipient { certificate: Some(&self.ca_cert), key: self.ca_key.0.as_ref() });
        out
    }

    fn signer(&self, digest: DigestAlg) -> crate::signed::Signer<'_> {
        let (certificate, key) = match &self.ra {
            Some((c, k)) => (c, k),
            None => (&self.ca_cert, &self.ca_key),
        };
        crate::signed::Signer { key: key.0.as_ref(), certificate, digest, identifier: IdentifierKind::IssuerAndSerialNumber }
    }
}

#[derive(serde::Deserialize)]
struct IssueOptionsJs {
    serial: String,
    not_before: u64,
    not_after: u64,
    digest: DigestAlg,
    #[serde(default)]
    sans: Option<Vec<crate::csr::San>>,
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

    /// Verifies and decrypts; returns the facts (`{ message_type, transaction_id, digest, cipher, signer, csr, csr_der, key_digest, ... }`)
    /// or throws a ScepError to answer with [`cert_rep`] as a FAILURE.
    pub fn open(&mut self, identity: &ServerIdentity, legacy: bool) -> JsResult<JsValue> {
        let facts = self.incoming.open_with(&identity.recipients(), legacy, identity.public_ops()).map_err(js_error)?;
        let out = to_js(&facts)?;
        if let Some(csr) = &facts.csr {
            js_sys::Reflect::set(&out, &"csr_der".into(), &js_sys::Uint8Array::from(csr.der.as_slice()))?;
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
        let csr = self.facts()?.csr.as_ref().ok_or_else(|| js_error(ScepError::invalid_input("this request carries no CSR")))?;
        crate::policy::seat_id(csr, &profile(profile_json)?).map_err(js_error)
    }

    /// The policy decision: `{ decision: "issue" | "hold" | "resend" | "pending" | "reject", ... }`.
    /// `store` holds what the store knows (see `StoreFacts`); `code_key_hex` is the enrollment-code MAC key.
    pub fn decide(&self, profile_json: JsValue, store: JsValue, code_key_hex: &str, now: f64) -> JsResult<JsValue> {
        let store: crate::policy::StoreFacts = from_js(store)?;
        let code_key = hex::decode(code_key_hex).map_err(|_| js_error(ScepError::invalid_input("code key must be hex")))?;
        to_js(&crate::policy::decide(self.facts()?, &profile(profile_json)?, &store, &code_key, now as u64))
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
/// crls: [...] }`, `{ status: "pending" }` or `{ status: "failed", failInfo, message }`; `cipher` is the
/// request's (see `replyCipher`).
#[wasm_bindgen(js_name = certRep)]
pub fn cert_rep(request: &ScepRequest, reply: JsValue, identity: &ServerIdentity, cipher: &str, legacy: bool) -> JsResult<Vec<u8>> {
    let r: ReplyJs = from_js(reply)?;
    let cipher = crate::server::reply_cipher(Cipher::from_name(cipher).map_err(js_error)?);
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
    let digest = request.incoming.signed.digest_alg().ok().filter(|d| legacy || !d.is_legacy()).unwrap_or(DigestAlg::Sha256);
    crate::server::cert_rep_with(&request.incoming, reply, &identity.signer(digest), cipher, legacy, identity.public_ops(), &mut OsRng).map_err(js_error)
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
