//! The server half of the facade: what a SCEP endpoint (the Worker) needs. Left out of the browser build.

use der::{Decode, Encode};
use rand_core::OsRng;
use wasm_bindgen::prelude::*;

#[cfg(feature = "pure-rsa")]
use super::key;
use super::{certificate, from_js, js_error, to_js, to_js_bytes, JsResult};
use crate::algorithms::{AlgorithmPolicy, DigestAlg, KeyTransport};
use crate::caps::CaCaps;
use crate::error::ScepError;
use crate::keys::Unsigned;
use crate::profile::ScepProfile;
use crate::server::CaKey;

#[wasm_bindgen(js_name = serverCaCaps)]
pub fn server_ca_caps(legacy: bool, next_ca: bool) -> String {
    CaCaps::for_server(AlgorithmPolicy::from_legacy_switch(legacy), next_ca).render()
}

/// An RA certificate for `ra_key`, issued by the CA (RFC 8894 §2.1): signs CertReps, receives envelopes.
/// (Setup tooling, in builds with `pure-rsa`.)
#[cfg(feature = "pure-rsa")]
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
        &crate::issue::random_serial(&mut OsRng),
        (not_before as u64, not_after as u64),
        &certificate(ca_cert)?,
        &key(ca_key_pkcs8)?,
        DigestAlg::Sha256,
    )
    .map_err(js_error)?;
    cert.to_der().map_err(|e| js_error(e.into()))
}

/// A private key behind the crypto seam: host callbacks (the Worker passes workerd's native `node:crypto`, so
/// private-key operations run in BoringSSL), or in builds with the `pure-rsa` feature the pure-Rust key.
#[wasm_bindgen]
pub struct ServerKey(Box<dyn crate::keys::PrivateKeyOps>);

#[wasm_bindgen]
impl ServerKey {
    #[cfg(feature = "pure-rsa")]
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
        crate::keys::rsa_key_bits(&spki).map_err(js_error)?;
        Ok(Self(Box::new(HostKey { public: spki, sign, decrypt })))
    }
}

struct HostKey {
    public: spki::SubjectPublicKeyInfoOwned,
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
    fn public_key(&self) -> &spki::SubjectPublicKeyInfoOwned {
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

/// The public-key operations of a build with no RSA of its own before the host gave its own
/// (`useHostPublicKeyOps`): every request that needs one is refused, nothing is guessed.
#[cfg(not(feature = "pure-rsa"))]
struct NoPublicKeyOps;

#[cfg(not(feature = "pure-rsa"))]
impl crate::keys::PublicKeyOps for NoPublicKeyOps {
    fn verify(
        &self,
        _: &spki::SubjectPublicKeyInfoOwned,
        _: DigestAlg,
        _: &[u8],
        _: &[u8],
    ) -> crate::error::Result<bool> {
        Err(no_public_key_ops())
    }

    fn encrypt(
        &self,
        _: &spki::SubjectPublicKeyInfoOwned,
        _: KeyTransport,
        _: &[u8],
        _: &mut dyn rand_core::CryptoRngCore,
    ) -> crate::error::Result<Vec<u8>> {
        Err(no_public_key_ops())
    }
}

#[cfg(not(feature = "pure-rsa"))]
fn no_public_key_ops() -> ScepError {
    ScepError::invalid_input("this build performs no RSA itself: call useHostPublicKeyOps(verify, encrypt) first")
}

/// The CA (and optional RA) a SCEP endpoint answers as: its certificates ([`crate::server::Identity`]) and the
/// keys at hand that perform the private-key operations the core hands out ([`crate::server::ServerKeys`]).
#[wasm_bindgen]
pub struct ServerIdentity {
    id: crate::server::Identity,
    keys: crate::server::ServerKeys,
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
        let (ra_cert, ra) = match (ra_cert, ra_key) {
            (Some(c), Some(k)) => (Some(certificate(&c)?), Some(k.0)),
            (None, None) => (None, None),
            _ => return Err(js_error(ScepError::invalid_input("an RA needs both its certificate and its key"))),
        };
        #[cfg(feature = "pure-rsa")]
        let public_ops = Box::new(crate::keys::RustCrypto);
        #[cfg(not(feature = "pure-rsa"))]
        let public_ops = Box::new(NoPublicKeyOps);
        Ok(Self {
            id: crate::server::Identity::new(certificate(ca_cert)?, ra_cert, public_ops),
            keys: crate::server::ServerKeys { ca: ca_key.0, ra },
        })
    }

    /// Which CA of the CA manager this is (its id, recorded with what it issues) and whether it is enabled for
    /// SCEP (a PKIOperation under a disabled one is refused).
    #[wasm_bindgen(js_name = setCa)]
    pub fn set_ca(&mut self, id: Option<String>, enabled: bool) {
        self.id.ca_id = id;
        self.id.enabled = enabled;
    }

    /// Whether this endpoint has an RA (which RA mode signs with).
    #[wasm_bindgen(getter, js_name = hasRa)]
    pub fn has_ra(&self) -> bool {
        self.id.ra_cert.is_some()
    }

    /// The CA manager's id of this CA, if set.
    #[wasm_bindgen(getter, js_name = caId)]
    pub fn ca_id(&self) -> Option<String> {
        self.id.ca_id.clone()
    }

    /// Routes the public-key operations on requesters' keys (signature checks, the reply's key transport)
    /// to host callbacks too, e.g. workerd's native `node:crypto`. A build without `pure-rsa` (the Worker's)
    /// has no others: until this is called, a request that needs one is refused.
    #[wasm_bindgen(js_name = useHostPublicKeyOps)]
    pub fn use_host_public_key_ops(&mut self, verify: js_sys::Function, encrypt: js_sys::Function) {
        self.id.public_ops = Box::new(HostPublicKeyOps { verify, encrypt });
    }

    /// The GetCACert answer: `{ contentType, body }`.
    #[wasm_bindgen(js_name = caCertResponse)]
    pub fn ca_cert_response(&self) -> JsResult<JsValue> {
        let id = &self.id;
        let (content_type, body) = crate::caps::ca_cert_response(&id.ca_cert, id.ra_cert.as_ref()).map_err(js_error)?;
        let out = js_sys::Object::new();
        js_sys::Reflect::set(&out, &"contentType".into(), &content_type.into())?;
        js_sys::Reflect::set(&out, &"body".into(), &js_sys::Uint8Array::from(body.as_slice()))?;
        Ok(out.into())
    }

    /// Issues a certificate for a public key (SubjectPublicKeyInfo DER), signed by the CA. `options` is a
    /// policy `plan` plus the serial: `{ serial (hex), subject, not_before, not_after, digest, sans,
    /// digital_signature, key_encipherment, client_auth? }`. Every name comes from the plan.
    pub fn issue(&self, public_key: &[u8], options: JsValue) -> JsResult<Vec<u8>> {
        let o: IssueOptionsJs = from_js(options)?;
        let opts = crate::issue::IssueOptions {
            serial: base16ct::mixed::decode_vec(o.serial)
                .map_err(|_| js_error(ScepError::invalid_input("serial must be hex")))?,
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
        let cert = crate::issue::issue(spki, &opts, &self.id.ca_cert)
            .and_then(|unsigned| unsigned.sign_with(self.keys.key(CaKey::Ca)?))
            .map_err(js_error)?;
        cert.to_der().map_err(|e| js_error(e.into()))
    }

    /// The GetNextCACert body for the next CA certificate (and RA), signed by the current RA or CA.
    #[wasm_bindgen(js_name = nextCaCertResponse)]
    pub fn next_ca_cert_response(&self, next_ca: &[u8], next_ra: Option<Vec<u8>>) -> JsResult<Vec<u8>> {
        let mut next = vec![certificate(next_ca)?];
        if let Some(ra) = next_ra {
            next.push(certificate(&ra)?);
        }
        let (which, by) = self.id.signer(DigestAlg::Sha256);
        crate::caps::next_ca_cert_response(&next.iter().collect::<Vec<_>>(), &by)
            .and_then(|unsigned| unsigned.sign_with(self.keys.key(which)?))
            .map_err(js_error)
    }

    /// A CRL of `revoked` (`[{ serial, revoked_at }]`), signed by the CA.
    pub fn crl(&self, revoked: JsValue, number: f64, now: f64, next_update: f64) -> JsResult<Vec<u8>> {
        let revoked: Vec<crate::crl::Revoked> = from_js(revoked)?;
        let ca_key = self.keys.key(CaKey::Ca).map_err(js_error)?;
        crate::crl::build(
            &revoked,
            number as u64,
            now as u64,
            next_update as u64,
            &self.id.ca_cert,
            ca_key,
            DigestAlg::Sha256,
        )
        .map_err(js_error)
    }
}

#[derive(serde::Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
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

    /// Verifies and decrypts under a profile's algorithm rules; returns the facts (`{ messageType,
    /// transactionId, digest, cipher, signer, csr, publicKey, keyDigest, ... }`) or throws a ScepError to
    /// answer with [`cert_rep`] as a FAILURE. For a CA of one's own; the Worker runs [`PkiOperationJs`].
    pub fn open(&mut self, identity: &ServerIdentity, legacy: bool, oaep_only: bool) -> JsResult<JsValue> {
        let accept = crate::server::Acceptance { policy: AlgorithmPolicy::from_legacy_switch(legacy), oaep_only };
        let (id, keys) = (&identity.id, &identity.keys);
        let facts = self.incoming.open(&keys.recipients(id), accept, id.public_ops.as_ref()).map_err(js_error)?;
        let out = to_js(&facts)?;
        if let Some(csr) = &facts.csr {
            // The key, not the CSR: the CSR carries the enrollment code (challengePassword) and is not kept.
            js_sys::Reflect::set(&out, &"publicKey".into(), &js_sys::Uint8Array::from(csr.spki_der.as_slice()))?;
            js_sys::Reflect::set(&out, &"keyDigest".into(), &crate::policy::key_digest(csr).into())?;
        }
        self.facts = Some(facts);
        Ok(out)
    }
}

/// One PKIOperation at the CA, driven step by step ([`crate::pki_operation`]): the host runs each step's
/// queries and writes and feeds the results back. Steps are plain objects tagged by `step`: `refuse`,
/// `needProfile`, `needFacts`, `needCrl`, `callWebhook`, `callUpstream`, `write`, `answer`.
#[wasm_bindgen(js_name = PkiOperation)]
pub struct PkiOperationJs {
    op: Option<crate::pki_operation::PkiOperation>,
    first: JsValue,
}

#[derive(serde::Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
struct StoredProfileJs {
    id: String,
    name: String,
    #[tsify(type = "Record<string, unknown>")]
    body: serde_json::Value,
    stored: String,
    #[serde(default)]
    cached: bool,
}

/// A profile row from the host (`{ id, name, body, stored, cached }`), or None for null.
fn profile_row(profile: JsValue) -> JsResult<Option<crate::pki_operation::StoredProfile>> {
    let Some(p) = from_js::<Option<StoredProfileJs>>(profile)? else { return Ok(None) };
    let profile = ScepProfile::from_json(&p.body).map_err(js_error)?;
    Ok(Some(crate::pki_operation::StoredProfile {
        id: p.id,
        name: p.name,
        profile,
        stored: p.stored,
        cached: p.cached,
    }))
}

fn step_to_js(step: &crate::pki_operation::Step) -> JsResult<JsValue> {
    // Bytes as Uint8Array, not arrays of numbers.
    to_js_bytes(step)
}

#[wasm_bindgen(js_class = PkiOperation)]
impl PkiOperationJs {
    /// Reads and opens the request under `profile` (`{ id, name, body, stored, cached }`); the first step
    /// is [`Self::step`].
    #[wasm_bindgen(constructor)]
    pub fn new(
        bytes: &[u8],
        #[wasm_bindgen(unchecked_param_type = "StoredProfileJs")] profile: JsValue,
        identity: &ServerIdentity,
        code_key_hex: &str,
        now: f64,
        client_address: Option<String>,
    ) -> JsResult<PkiOperationJs> {
        let code_key = code_hex(code_key_hex)?;
        let stored = profile_row(profile)?.ok_or_else(|| js_error(ScepError::invalid_input("no profile")))?;
        let (op, step) = crate::pki_operation::PkiOperation::start(
            bytes,
            stored,
            &identity.id,
            &code_key,
            now as u64,
            client_address.as_deref(),
        );
        Ok(Self { op, first: step_to_js(&step)? })
    }

    /// The first step.
    #[wasm_bindgen(getter, unchecked_return_type = "Step")]
    pub fn step(&self) -> JsValue {
        self.first.clone()
    }

    fn op(&mut self) -> JsResult<&mut crate::pki_operation::PkiOperation> {
        self.op.as_mut().ok_or_else(|| js_error(ScepError::invalid_input("this PKIOperation has ended")))
    }

    /// Continues with the profile as the store holds it now (`{ id, name, body, stored }`), or null if it is gone.
    #[wasm_bindgen(js_name = withProfile, unchecked_return_type = "Step")]
    pub fn with_profile(
        &mut self,
        identity: &ServerIdentity,
        #[wasm_bindgen(unchecked_param_type = "StoredProfileJs | null")] profile: JsValue,
    ) -> JsResult<JsValue> {
        let profile = profile_row(profile)?;
        step_to_js(&self.op()?.with_profile(&identity.id, profile))
    }

    /// Continues with what the webhook answered: `{ status, body }`, or `{ error }` when nothing came back.
    #[wasm_bindgen(js_name = withWebhook, unchecked_return_type = "Step")]
    pub fn with_webhook(
        &mut self,
        identity: &ServerIdentity,
        #[wasm_bindgen(unchecked_param_type = "WebhookAnswer")] answer: JsValue,
    ) -> JsResult<JsValue> {
        let answer: crate::webhook::WebhookAnswer = from_js(answer)?;
        step_to_js(&self.op()?.with_webhook(&identity.id, answer))
    }

    /// Performs the pending private-key operation of a `key` step with this endpoint's keys, and continues.
    #[wasm_bindgen(js_name = withKey, unchecked_return_type = "Step")]
    pub fn with_key(&mut self, identity: &ServerIdentity) -> JsResult<JsValue> {
        let op = self.op()?;
        let result =
            op.pending_key_operation().and_then(|(which, operation)| identity.keys.perform(which, operation).ok());
        step_to_js(&op.with_key_result(&identity.id, result))
    }

    /// Continues a `key` step with what a host that holds the key elsewhere made of it (`null`: it could not).
    #[wasm_bindgen(js_name = withKeyResult, unchecked_return_type = "Step")]
    pub fn with_key_result(&mut self, identity: &ServerIdentity, result: Option<Vec<u8>>) -> JsResult<JsValue> {
        step_to_js(&self.op()?.with_key_result(&identity.id, result))
    }

    /// Continues with what the upstream CA answered (RA mode): `{ status, contentType, body }`, or `{ error }`
    /// when nothing came back in time.
    #[wasm_bindgen(js_name = withUpstream, unchecked_return_type = "Step")]
    pub fn with_upstream(
        &mut self,
        identity: &ServerIdentity,
        #[wasm_bindgen(unchecked_param_type = "UpstreamAnswer")] answer: JsValue,
    ) -> JsResult<JsValue> {
        let answer: crate::registration_authority::UpstreamAnswer = from_js(answer)?;
        step_to_js(&self.op()?.with_upstream(&identity.id, answer))
    }

    #[wasm_bindgen(js_name = withFacts, unchecked_return_type = "Step")]
    pub fn with_facts(
        &mut self,
        identity: &ServerIdentity,
        #[wasm_bindgen(unchecked_param_type = "Facts")] facts: JsValue,
    ) -> JsResult<JsValue> {
        let facts: crate::pki_operation::Facts = from_js(facts)?;
        step_to_js(&self.op()?.with_facts(&identity.id, facts))
    }

    #[wasm_bindgen(unchecked_return_type = "Step")]
    pub fn written(&mut self, identity: &ServerIdentity, claimed: bool) -> JsResult<JsValue> {
        step_to_js(&self.op()?.written(&identity.id, claimed))
    }

    #[wasm_bindgen(js_name = withCrl, unchecked_return_type = "Step")]
    pub fn with_crl(&mut self, identity: &ServerIdentity, crl: &[u8]) -> JsResult<JsValue> {
        step_to_js(&self.op()?.with_crl(&identity.id, crl))
    }

    #[wasm_bindgen(js_name = hostFailed, unchecked_return_type = "Step")]
    pub fn host_failed(&mut self, identity: &ServerIdentity) -> JsResult<JsValue> {
        step_to_js(&self.op()?.host_failed(&identity.id))
    }
}

/// An administrator's decision on a held request (`{ profileId, transactionId, signerFingerprint, profileName,
/// seatId, publicKey, plan, renews? }`): `{ writes, serial? }`, the writes to run as one batch (the decision
/// first, the rest guarded by it), as a PKIOperation's. A rejection's `reason` is what the next poll is told.
#[wasm_bindgen(js_name = decideHeld, unchecked_return_type = "HeldDecision")]
pub fn decide_held(
    identity: &ServerIdentity,
    #[wasm_bindgen(unchecked_param_type = "HeldRequest")] held: JsValue,
    approve: bool,
    reason: Option<String>,
    now: f64,
) -> JsResult<JsValue> {
    let held: crate::pki_operation::HeldRequest = from_js(held)?;
    let reason = reason.as_deref();
    let decision = crate::pki_operation::decide_held(&identity.id, &identity.keys, &held, approve, reason, now as u64)
        .map_err(js_error)?;
    to_js_bytes(&decision)
}

/// The upstream (RA mode) of a profile body, if it has one.
fn upstream_of(profile_body: JsValue) -> JsResult<Option<crate::registration_authority::UpstreamConfig>> {
    let body: serde_json::Value = from_js(profile_body)?;
    Ok(ScepProfile::from_json(&body).map_err(js_error)?.upstream)
}

/// RA mode: the request to the upstream's GetCACert for the profile's own GetCACert (null without an upstream).
#[wasm_bindgen(js_name = upstreamCaCertRequest, unchecked_return_type = "UpstreamRequest | null")]
pub fn upstream_ca_cert_request(profile_body: JsValue) -> JsResult<JsValue> {
    match upstream_of(profile_body)? {
        Some(upstream) => to_js_bytes(&upstream.ca_cert_request().map_err(js_error)?),
        None => Ok(JsValue::NULL),
    }
}

/// RA mode: the profile's GetCACert answer, `{ contentType, body }`, from what the upstream answered: its CA
/// (checked against the pinned fingerprint) and this endpoint's RA certificate.
#[wasm_bindgen(js_name = upstreamCaCertResponse)]
pub fn upstream_ca_cert_response(
    profile_body: JsValue,
    #[wasm_bindgen(unchecked_param_type = "UpstreamAnswer")] answer: JsValue,
    identity: &ServerIdentity,
) -> JsResult<JsValue> {
    let upstream = upstream_of(profile_body)?.ok_or_else(|| js_error(ScepError::invalid_input("no upstream")))?;
    let ra = identity.id.ra_cert.as_ref().ok_or_else(|| {
        js_error(ScepError::upstream_unavailable("this service has no RA certificate for the devices to encrypt to"))
    })?;
    let answer = from_js(answer)?;
    let (content_type, body) =
        crate::registration_authority::ca_cert_response(&upstream, answer, ra).map_err(js_error)?;
    let out = js_sys::Object::new();
    js_sys::Reflect::set(&out, &"contentType".into(), &content_type.into())?;
    js_sys::Reflect::set(&out, &"body".into(), &js_sys::Uint8Array::from(body.as_slice()))?;
    Ok(out.into())
}

/// RA mode: the upstream's CA certificate (DER, checked against the pin) from its GetCACert answer.
#[wasm_bindgen(js_name = upstreamCaCertificate)]
pub fn upstream_ca_certificate(
    profile_body: JsValue,
    #[wasm_bindgen(unchecked_param_type = "UpstreamAnswer")] answer: JsValue,
) -> JsResult<Vec<u8>> {
    let upstream = upstream_of(profile_body)?.ok_or_else(|| js_error(ScepError::invalid_input("no upstream")))?;
    upstream.ca_certificate(from_js(answer)?).map_err(js_error)
}

/// RA mode: the request for a one-time password from the upstream's page, for a new enrollment code (null
/// unless the profile's upstream challenge is dynamic).
#[wasm_bindgen(js_name = upstreamChallengeRequest, unchecked_return_type = "UpstreamRequest | null")]
pub fn upstream_challenge_request(profile_body: JsValue) -> JsResult<JsValue> {
    match upstream_of(profile_body)?.map(|u| u.challenge_request()).transpose().map_err(js_error)?.flatten() {
        Some(request) => to_js_bytes(&request),
        None => Ok(JsValue::NULL),
    }
}

/// RA mode: a new enrollment code that is the upstream page's one-time password (`{ code, codeMac, expiresAt }`).
#[wasm_bindgen(js_name = enrollmentFromUpstream, unchecked_return_type = "NewEnrollment")]
pub fn enrollment_from_upstream(
    profile_body: JsValue,
    #[wasm_bindgen(unchecked_param_type = "UpstreamAnswer")] answer: JsValue,
    code_key_hex: &str,
    now: f64,
) -> JsResult<JsValue> {
    let key = code_hex(code_key_hex)?;
    let upstream = upstream_of(profile_body)?.ok_or_else(|| js_error(ScepError::invalid_input("no upstream")))?;
    let answer = from_js(answer)?;
    to_js(&upstream.enrollment_from_page(answer, &key, now as u64).map_err(js_error)?)
}

/// A new one-time enrollment code issued at `now`: `{ code, codeMac, expiresAt }` (the code is shown once;
/// the store keeps its MAC under the server's key).
#[wasm_bindgen(js_name = newEnrollment, unchecked_return_type = "NewEnrollment")]
pub fn new_enrollment(code_key_hex: &str, now: f64) -> JsResult<JsValue> {
    let key = code_hex(code_key_hex)?;
    to_js(&crate::policy::new_enrollment(&key, now as u64, &mut OsRng))
}

/// Whether to sign a new CRL at `now` given the kept one (`{ thisUpdate, nextUpdate, revokedCount }` or null)
/// and the revocations there are: `{ thisUpdate, nextUpdate }` of the new one, or null to serve the kept one.
#[wasm_bindgen(js_name = crlRenewal)]
pub fn crl_renewal(kept: JsValue, revoked_count: f64, now: f64) -> JsResult<JsValue> {
    let kept: Option<crate::crl::KeptCrl> = from_js(kept)?;
    match crate::crl::renew_at(kept, revoked_count as u64, now as u64) {
        None => Ok(JsValue::NULL),
        Some((this_update, next_update)) => {
            to_js(&serde_json::json!({ "thisUpdate": this_update, "nextUpdate": next_update }))
        }
    }
}

/// Answers a request. `reply` is `{ status: "issued", certificates: [leaf, ...chain] }`, `{ status: "crl",
/// crls: [...] }`, `{ status: "pending" }` or `{ status: "failed", failInfo, message }`. A SUCCESS is
/// enveloped in kind with the opened request.
#[wasm_bindgen(js_name = certRep)]
pub fn cert_rep(request: &ScepRequest, reply: JsValue, identity: &ServerIdentity, legacy: bool) -> JsResult<Vec<u8>> {
    let r: ReplyJs = from_js(reply)?;
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
    let policy = AlgorithmPolicy::from_legacy_switch(legacy);
    let (which, unsigned) =
        identity.id.cert_rep(&request.incoming, request.facts.as_ref(), reply, policy, &mut OsRng).map_err(js_error)?;
    unsigned.sign_with(identity.keys.key(which).map_err(js_error)?).map_err(js_error)
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

/// Validates a profile object (the admin API's schema) and returns it normalised, secrets masked; with the
/// service's `origin` (`https://host`), as the admin API shows it (a dynamic challenge reports this service's
/// one-time challenge page unless it names another OTP server).
#[wasm_bindgen(js_name = validateProfile)]
pub fn validate_profile(profile_json: JsValue, origin: Option<String>) -> JsResult<JsValue> {
    let profile = profile(profile_json)?;
    match origin {
        Some(origin) => to_js(&profile.view(&origin)),
        None => to_js(&profile.to_json(false)),
    }
}

/// The facts of a CA certificate the CA manager can issue under (`{ subject, fingerprint, key_bits, not_before,
/// not_after }`), or why it cannot.
#[wasm_bindgen(js_name = caFacts, unchecked_return_type = "CaFacts")]
pub fn ca_facts(der: &[u8]) -> JsResult<JsValue> {
    to_js(&crate::certificate_authority::ca_facts(der).map_err(js_error)?)
}

/// Checks what the admin API received to generate a CA (`{ subject, key_bits?, validity_days? }`): every failing
/// field, as an Invalid Object; returns it with its defaults.
#[wasm_bindgen(js_name = checkGenerateCa, unchecked_return_type = "GenerateCa")]
pub fn check_generate_ca(generate: JsValue) -> JsResult<JsValue> {
    let value: serde_json::Value = from_js(generate)?;
    let ask: crate::certificate_authority::GenerateCa = serde_json::from_value(value).map_err(|e| {
        js_error(ScepError::invalid_object(vec![crate::error::FieldIssue {
            path: "generate".into(),
            rule: e.to_string(),
        }]))
    })?;
    ask.check().map_err(js_error)?;
    to_js(&serde_json::json!({ "subject": ask.subject, "key_bits": ask.key_bits, "validity_days": ask.validity_days }))
}

/// The self-signed certificate (DER) of a new CA for the key the host generated, valid from `now`.
#[wasm_bindgen(js_name = newCaCertificate)]
pub fn new_ca_certificate(key: &ServerKey, generate: JsValue, now: f64) -> JsResult<Vec<u8>> {
    let value: serde_json::Value = from_js(generate)?;
    let ask: crate::certificate_authority::GenerateCa =
        serde_json::from_value(value).map_err(|e| js_error(ScepError::invalid_input(e.to_string())))?;
    ask.certificate(key.0.as_ref(), now as u64).map_err(js_error)
}

/// An imported CA (its certificate as PEM or DER, and its key as the host read it): `{ certificate, facts }`,
/// once checked to be a CA certificate and that key's.
#[wasm_bindgen(js_name = importCa)]
pub fn import_ca(certificate: &[u8], key: &ServerKey) -> JsResult<JsValue> {
    let (der, facts) = crate::certificate_authority::import(certificate, key.0.as_ref()).map_err(js_error)?;
    let out = js_sys::Object::new();
    js_sys::Reflect::set(&out, &"certificate".into(), &js_sys::Uint8Array::from(der.as_slice()))?;
    js_sys::Reflect::set(&out, &"facts".into(), &to_js(&facts)?)?;
    Ok(out.into())
}

/// The cut-offs of a pruning run at `now` with the configured retention in days ([`crate::retention`]).
#[wasm_bindgen(js_name = prunePlan, unchecked_return_type = "PrunePlan")]
pub fn prune_plan(now: f64, retention_days: Option<String>) -> JsResult<JsValue> {
    to_js(&crate::retention::plan(now as u64, retention_days.as_deref()))
}

/// The audit row of a pruning run: `counts` is `[[kind, rows], ...]`.
#[wasm_bindgen(js_name = pruneSummary, unchecked_return_type = "AuditRow")]
pub fn prune_summary(
    #[wasm_bindgen(unchecked_param_type = "PrunePlan")] plan: JsValue,
    counts: JsValue,
    now: f64,
) -> JsResult<JsValue> {
    let plan: crate::retention::PrunePlan = from_js(plan)?;
    let counts: Vec<(String, u64)> = from_js(counts)?;
    to_js(&crate::retention::summary(&plan, &counts, now as u64))
}

/// The revocation reasons an administrator may give (RFC 5280 CRLReason names).
#[wasm_bindgen(js_name = revocationReasons)]
pub fn revocation_reasons() -> Vec<String> {
    crate::crl::REVOCATION_REASONS.iter().map(|(name, _)| (*name).to_owned()).collect()
}

/// A public key's kind and size (`{ type: 'rsa', bits }`) from its SubjectPublicKeyInfo DER (or, stored before
/// migration 0002, the CSR that carried it): what an approver is shown of a held request.
#[wasm_bindgen(js_name = publicKeyFacts)]
pub fn public_key_facts(stored: &[u8]) -> JsResult<JsValue> {
    let spki = crate::issue::stored_public_key(stored).map_err(js_error)?;
    let bits = crate::keys::rsa_key_bits(&spki).map_err(js_error)?;
    to_js(&serde_json::json!({ "type": "rsa", "bits": bits }))
}

/// Refuses a seat id that breaks the rule ([`crate::names::check_seat_id`]) with the rule in its message.
#[wasm_bindgen(js_name = checkSeatId)]
pub fn check_seat_id(id: &str) -> JsResult<()> {
    crate::names::check_seat_id(id).map_err(js_error)
}

/// The seat id rule: `{ pattern, rule }` (an ECMAScript regular expression, and in words).
#[wasm_bindgen(js_name = seatIdRule)]
pub fn seat_id_rule() -> JsResult<JsValue> {
    to_js(&serde_json::json!({ "pattern": crate::names::SEAT_ID_PATTERN, "rule": crate::names::SEAT_ID_RULE }))
}

/// One visit of a profile's NDES-compatible one-time challenge page ([`crate::challenge_page`]): the host runs
/// the steps it is given (count the attempt, write, answer) and continues with their results.
#[wasm_bindgen(js_name = ChallengePage)]
pub struct ChallengePageJs {
    page: Option<crate::challenge_page::ChallengePage>,
    first: JsValue,
}

#[wasm_bindgen(js_class = ChallengePage)]
impl ChallengePageJs {
    /// A visit of `profile`'s page (`{ id, name, body, stored }`) with the request's headers
    /// (`{ authorization?, accept?, clientAddress? }`); the first step is [`Self::step`].
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "StoredProfileJs")] profile: JsValue,
        identity: &ServerIdentity,
        #[wasm_bindgen(unchecked_param_type = "PageRequest")] request: JsValue,
        code_key_hex: &str,
        now: f64,
    ) -> JsResult<ChallengePageJs> {
        let stored = profile_row(profile)?.ok_or_else(|| js_error(ScepError::invalid_input("no profile")))?;
        let request: crate::challenge_page::PageRequest = from_js(request)?;
        let (page, step) = crate::challenge_page::ChallengePage::start(
            &stored,
            &identity.id,
            &request,
            &code_hex(code_key_hex)?,
            now as u64,
        );
        Ok(Self { page, first: to_js_bytes(&step)? })
    }

    /// The first step.
    #[wasm_bindgen(getter, unchecked_return_type = "PageStep")]
    pub fn step(&self) -> JsValue {
        self.first.clone()
    }

    fn page(&mut self) -> JsResult<&mut crate::challenge_page::ChallengePage> {
        self.page.as_mut().ok_or_else(|| js_error(ScepError::invalid_input("this visit of the page has ended")))
    }

    /// Continues with the attempts counted in the visit's window under each of its keys (from its address at
    /// its profile, and at its profile), this one included.
    #[wasm_bindgen(js_name = withAttempts, unchecked_return_type = "PageStep")]
    pub fn with_attempts(&mut self, from_address: f64, at_profile: f64) -> JsResult<JsValue> {
        to_js_bytes(&self.page()?.with_attempts(from_address as u64, at_profile as u64))
    }

    /// Continues with whether the write batch's first write (the password) took.
    #[wasm_bindgen(unchecked_return_type = "PageStep")]
    pub fn written(&mut self, saved: bool) -> JsResult<JsValue> {
        to_js_bytes(&self.page()?.written(saved))
    }

    /// The host could not run a step: HTTP 503.
    #[wasm_bindgen(js_name = hostFailed, unchecked_return_type = "PageStep")]
    pub fn host_failed(&mut self) -> JsResult<JsValue> {
        to_js_bytes(&self.page()?.host_failed())
    }
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
    base16ct::mixed::decode_vec(code_key_hex).map_err(|_| js_error(ScepError::invalid_input("code key must be hex")))
}

/// The limit on failed PKIOperations per client address ([`crate::failure_limit`]): one per isolate, holding
/// its note of the addresses over the limit. `address` is the `CF-Connecting-IP` header as received.
#[wasm_bindgen(js_name = FailureLimit)]
#[derive(Default)]
pub struct FailureLimitJs(crate::failure_limit::FailureLimit);

#[wasm_bindgen(js_class = FailureLimit)]
impl FailureLimitJs {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Self {
        Self::default()
    }

    /// `{ retryAfter, text }` for an HTTP 429 to a PKIOperation from `address` at `now`, or null.
    #[wasm_bindgen(unchecked_return_type = "Refusal | null")]
    pub fn refused(&mut self, address: Option<String>, now: f64) -> JsResult<JsValue> {
        match self.0.refused(address.as_deref(), now as u64) {
            Some(refusal) => to_js(&refusal),
            None => Ok(JsValue::NULL),
        }
    }

    /// What the store writes for one failure: `{ key, windowStart, audited, summaryPrefix, summarySuffix, sweep }`.
    #[wasm_bindgen(unchecked_return_type = "FailureCount")]
    pub fn count(&mut self, address: Option<String>, now: f64, rate_limiter: bool) -> JsResult<JsValue> {
        to_js(&self.0.count(address.as_deref(), now as u64, rate_limiter))
    }

    /// What the store counted for `count`: the window's `failures`, and `limited` from a rate-limiting service.
    pub fn counted(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "FailureCount")] count: JsValue,
        failures: f64,
        limited: Option<bool>,
        now: f64,
    ) -> JsResult<()> {
        let count: crate::failure_limit::FailureCount = from_js(count)?;
        self.0.counted(&count, failures as u64, limited, now as u64);
        Ok(())
    }
}

/// Whom a failure counts against: the address, an IPv6 address's /64, or `unknown`.
#[wasm_bindgen(js_name = clientKey)]
pub fn client_key(address: Option<String>) -> String {
    crate::failure_limit::client_key(address.as_deref())
}

/// The limit's numbers: `{ window, audited, refuseAfter }` (seconds, failures, failures).
#[wasm_bindgen(js_name = failureLimits)]
pub fn failure_limits() -> JsResult<JsValue> {
    use crate::failure_limit::{AUDITED_FAILURES, FAILURE_WINDOW, REFUSE_AFTER};
    to_js(&serde_json::json!({ "window": FAILURE_WINDOW, "audited": AUDITED_FAILURES, "refuseAfter": REFUSE_AFTER }))
}

/// The `.mobileconfig` (XML plist) that enrolls an Apple device for `enrollment` (`{ id, seatId, status,
/// codeMac, expiresAt }`) of `profile`, given the enrollment's `code` (checked against its MAC), the
/// SCEP URL devices use and the CA certificate (DER). Throws a ScepError with status 400 for another code, 409
/// for a redeemed enrollment, 410 for a revoked or expired one.
#[wasm_bindgen(js_name = mobileconfig)]
#[allow(clippy::too_many_arguments)]
pub fn mobileconfig(
    profile_json: JsValue,
    #[wasm_bindgen(unchecked_param_type = "EnrollmentRecord")] enrollment: JsValue,
    code: &str,
    code_key_hex: &str,
    scep_url: &str,
    ca_cert: &[u8],
    now: f64,
) -> JsResult<String> {
    let enrollment: crate::mobileconfig::EnrollmentRecord = from_js(enrollment)?;
    let ca = certificate(ca_cert)?;
    let profile = profile(profile_json)?;
    crate::mobileconfig::scep_profile(&profile, &enrollment, code, &code_hex(code_key_hex)?, scep_url, &ca, now as u64)
        .map_err(js_error)
}
