//! The client functions that do RSA in the wasm with a key at hand, synchronously (the `rsa` crate of the
//! `pure-rsa` feature): key generation, CSRs, self-signed certificates, PKIMessages and CertReps one by one,
//! `inspect`, and the two RSA operations WebCrypto lacks for the browser build's fallback. Node's and workerd's
//! build; the browser build leaves them out (its RSA is WebCrypto's; `inspect` there is async, in `web`).

use der::Encode;
use rand_core::OsRng;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::{certificate, from_js, js_error, key, to_js, to_js_bytes, JsResult};
use crate::algorithms::{AlgorithmPolicy, Cipher, DigestAlg, KeyTransport};
use crate::caps::CaCertificates;
use crate::client::{self, CertRepOutcome, PkiRequest, RequestBuilder, RequestOptions, Requester};
use crate::csr::{CsrFacts, CsrRequest};
use crate::envelope::EnvelopeOptions;
use crate::error::ScepError;
use crate::issue::random_serial;
use crate::issue::SelfSignedRole;
use crate::keys::{KeyOperation, PublicAnswer, PublicOperation, RsaKey, Unsigned};
use crate::message::MessageType;
use crate::signed::IdentifierKind;
use crate::wire::{Certificate, IssuerAndSerialNumber};

/// A public-key operation WebCrypto lacks (RSAES-PKCS1-v1_5 encryption), for the browser build: `true`/`false`
/// for a verification, the ciphertext for an encryption.
#[wasm_bindgen(js_name = rsaPublicOperation)]
pub fn rsa_public_operation(
    #[wasm_bindgen(unchecked_param_type = "PublicOperation")] operation: JsValue,
) -> JsResult<JsValue> {
    let operation: PublicOperation = from_js(operation)?;
    Ok(match crate::keys::perform_public(&crate::keys::RustCrypto, &operation, &mut OsRng).map_err(js_error)? {
        PublicAnswer::Verified(good) => good.into(),
        PublicAnswer::Encrypted(ciphertext) => js_sys::Uint8Array::from(ciphertext.as_slice()).into(),
    })
}

/// A private-key operation WebCrypto lacks (RSAES-PKCS1-v1_5 decryption), for the browser build.
#[wasm_bindgen(js_name = rsaKeyOperation)]
pub fn rsa_key_operation(
    key_pkcs8: &[u8],
    #[wasm_bindgen(unchecked_param_type = "KeyOperation")] operation: JsValue,
) -> JsResult<Vec<u8>> {
    let operation: KeyOperation = from_js(operation)?;
    crate::keys::perform(&key(key_pkcs8)?, &operation).map_err(js_error)
}

/// A fresh RSA key as PKCS#8 DER from the wasm generator (`generateKey` prefers WebCrypto).
#[wasm_bindgen(js_name = generateKeyWasm)]
pub fn generate_key(bits: u32, legacy: bool) -> JsResult<Vec<u8>> {
    let key =
        RsaKey::generate(bits as usize, AlgorithmPolicy::from_legacy_switch(legacy), &mut OsRng).map_err(js_error)?;
    Ok(key.to_pkcs8_der().map_err(js_error)?.to_vec())
}

/// A key derived from a 32-byte seed (benchmarks: equal work on every host). Never for real keys.
#[wasm_bindgen(js_name = generateKeyFromSeed)]
pub fn generate_key_from_seed(bits: u32, seed: &[u8]) -> JsResult<Vec<u8>> {
    let seed: [u8; 32] = seed.try_into().map_err(|_| js_error(ScepError::invalid_input("the seed is 32 bytes")))?;
    Ok(RsaKey::generate_from_seed(bits as usize, seed).map_err(js_error)?.to_pkcs8_der().map_err(js_error)?.to_vec())
}

/// A signed PKCS#10 request (DER) for `request` = `{ subject, sans?, challenge?, digest?, digitalSignature?, keyEncipherment? }`.
#[wasm_bindgen(js_name = buildCsr)]
pub fn build_csr(
    key_pkcs8: &[u8],
    #[wasm_bindgen(unchecked_param_type = "CsrRequest")] request: JsValue,
) -> JsResult<Vec<u8>> {
    let request: CsrRequest = from_js(request)?;
    request.build(&key(key_pkcs8)?).map_err(js_error)
}

/// The facts of a CSR, after its proof of possession verified.
#[wasm_bindgen(js_name = csrFacts, unchecked_return_type = "CsrFacts")]
pub fn csr_facts(der: &[u8]) -> JsResult<JsValue> {
    to_js(&CsrFacts::from_der(der, &crate::keys::RustCrypto).map_err(js_error)?)
}

/// The SubjectPublicKeyInfo DER of a CSR (what the issued certificate must carry).
#[wasm_bindgen(js_name = csrPublicKey)]
pub fn csr_public_key(der: &[u8]) -> JsResult<Vec<u8>> {
    Ok(CsrFacts::from_der(der, &crate::keys::RustCrypto).map_err(js_error)?.spki_der)
}

/// A self-signed certificate: `role` is "signer" (a client's transient SCEP signer) or "ca".
#[wasm_bindgen(js_name = selfSignedCertificate)]
pub fn self_signed_certificate(
    key_pkcs8: &[u8],
    subject: &str,
    not_before: f64,
    not_after: f64,
    digest: &str,
    role: &str,
) -> JsResult<Vec<u8>> {
    let role: SelfSignedRole = from_js(role.into())?;
    let digest = DigestAlg::from_name(digest).map_err(js_error)?;
    let serial = random_serial(&mut OsRng);
    let validity = (not_before as u64, not_after as u64);
    let cert =
        crate::issue::self_signed(&key(key_pkcs8)?, subject, &serial, validity, digest, role).map_err(js_error)?;
    cert.to_der().map_err(|e| js_error(e.into()))
}

fn message_type(name: &str) -> JsResult<MessageType> {
    [
        MessageType::PkcsReq,
        MessageType::RenewalReq,
        MessageType::CertPoll,
        MessageType::GetCert,
        MessageType::GetCrl,
        MessageType::CertRep,
    ]
    .into_iter()
    .find(|m| {
        m.name().eq_ignore_ascii_case(name)
            || (name.eq_ignore_ascii_case("GetCertInitial") && *m == MessageType::CertPoll)
    })
    .ok_or_else(|| js_error(ScepError::invalid_input(format!("unknown messageType {name}"))))
}

/// Builds a PKIMessage. `content` is the CSR DER for PKCSReq/RenewalReq and ignored otherwise.
/// Returns `{ messageType, message, transactionId, senderNonce }`; keep it to read the reply.
#[wasm_bindgen(js_name = buildRequest, unchecked_return_type = "PkiRequestJs")]
pub fn build_request(
    content: &[u8],
    key_pkcs8: &[u8],
    signer_certificate: &[u8],
    ca_cert_body: &[u8],
    #[wasm_bindgen(unchecked_param_type = "RequestOptionsJs")] options: JsValue,
) -> JsResult<JsValue> {
    let o: RequestOptionsJs = from_js(options)?;
    let cert = certificate(signer_certificate)?;
    let ca = CaCertificates::parse(ca_cert_body).map_err(js_error)?;
    let identifier = o.identifier.unwrap_or_default();
    let builder = RequestBuilder {
        signer_certificate: &cert,
        ca: &ca,
        options: RequestOptions {
            envelope: EnvelopeOptions {
                cipher: Cipher::from_name(&o.cipher).map_err(js_error)?,
                transport: o.key_transport.unwrap_or(KeyTransport::RsaPkcs1v15),
                identifier,
            },
            policy: AlgorithmPolicy::from_legacy_switch(o.legacy),
            digest: DigestAlg::from_name(&o.digest).map_err(js_error)?,
            signer_identifier: identifier,
        },
        public_ops: &crate::keys::RustCrypto,
    };
    let rng = &mut OsRng;
    let mt = message_type(&o.message_type)?;
    let unsigned = match mt {
        MessageType::PkcsReq | MessageType::RenewalReq => {
            builder.certificate_request(content, mt, o.transaction_id, rng)
        }
        MessageType::CertPoll => {
            let tid = o.transaction_id.ok_or_else(|| {
                js_error(ScepError::invalid_input("CertPoll needs the transactionId of the pending request"))
            })?;
            let subject = o.subject.ok_or_else(|| js_error(ScepError::invalid_input("CertPoll needs the subject")))?;
            let subject = subject.parse().map_err(|e| js_error(ScepError::invalid_input(format!("subject: {e}"))))?;
            builder.cert_poll(&tid, &subject, rng)
        }
        MessageType::GetCert | MessageType::GetCrl => {
            let serial = base16ct::mixed::decode_vec(o.serial.unwrap_or_default())
                .map_err(|_| js_error(ScepError::invalid_input("serial must be hex")))?;
            let serial = x509_cert::serial_number::SerialNumber::<x509_cert::certificate::Raw>::new(&serial)
                .map_err(|e| js_error(ScepError::invalid_input(e)))?;
            let ias = IssuerAndSerialNumber { issuer: ca.ca.tbs_certificate.subject.clone(), serial_number: serial };
            builder.get_cert_or_crl(mt, &ias, rng)
        }
        MessageType::CertRep => Err(ScepError::invalid_input("a client does not send CertRep")),
    };
    let key = key(key_pkcs8)?;
    let built = unsigned.and_then(|u| u.sign_with(&key)).map_err(js_error)?;
    to_js_bytes(&PkiRequestJs {
        message_type: built.message_type.name().into(),
        message: built.message,
        transaction_id: built.transaction_id,
        sender_nonce: built.sender_nonce,
    })
}

/// Reads a CertRep for `request` (as returned by [`build_request`]). `expected_spki` (from
/// [`csr_public_key`]) picks and checks the issued certificate. Returns `{ status: "issued" | "pending" |
/// "failed" | "crl", ... }`; integrity problems throw.
#[wasm_bindgen(js_name = readCertRep, unchecked_return_type = "OutcomeJs")]
pub fn read_cert_rep(
    reply: &[u8],
    #[wasm_bindgen(unchecked_param_type = "PkiRequestJs")] request: JsValue,
    key_pkcs8: &[u8],
    signer_certificate: &[u8],
    ca_cert_body: &[u8],
    expected_spki: Option<Vec<u8>>,
    legacy: bool,
) -> JsResult<JsValue> {
    let r: PkiRequestJs = from_js(request)?;
    let request = PkiRequest {
        message_type: message_type(&r.message_type)?,
        message: r.message,
        transaction_id: r.transaction_id,
        sender_nonce: r.sender_nonce,
    };
    let cert = certificate(signer_certificate)?;
    let ca = CaCertificates::parse(ca_cert_body).map_err(js_error)?;
    let key = key(key_pkcs8)?;
    let requester = Requester { key: &key, certificate: &cert };
    let outcome = client::open_cert_rep(
        reply,
        &request,
        &requester,
        &ca,
        expected_spki.as_deref(),
        crate::keys::Crypto::rust(AlgorithmPolicy::from_legacy_switch(legacy)),
    )
    .map_err(js_error)?;
    let der = |c: &Certificate| c.to_der().map_err(|e| js_error(e.into()));
    let out = match outcome {
        CertRepOutcome::Issued { certificate, chain } => OutcomeJs::Issued {
            certificate: der(&certificate)?,
            chain: chain.iter().map(|c| der(c).map(serde_bytes::ByteBuf::from)).collect::<JsResult<_>>()?,
        },
        CertRepOutcome::Crl { crls } => {
            OutcomeJs::Crl { crls: crls.into_iter().map(serde_bytes::ByteBuf::from).collect() }
        }
        CertRepOutcome::Pending => OutcomeJs::Pending,
        CertRepOutcome::Failed(e) => OutcomeJs::Failed {
            fail_info: e.fail_info.name(),
            fail_info_code: e.fail_info.code(),
            message: e.message,
            resolution: e.resolution,
        },
    };
    to_js_bytes(&out)
}

/// A readable description of any SCEP artefact: bytes (DER, PEM or base64) or text (PEM or base64); a key opens
/// envelopes. The result is tagged by `type` (`Certificate`, `CSR`, `PKIMessage`, …).
#[wasm_bindgen(unchecked_return_type = "Inspected")]
pub fn inspect(
    #[wasm_bindgen(unchecked_param_type = "Uint8Array | string")] input: JsValue,
    key_pkcs8: Option<Vec<u8>>,
) -> JsResult<JsValue> {
    let bytes = super::inspected_bytes(input)?;
    let key = key_pkcs8.map(|k| key(&k)).transpose()?;
    to_js(
        &crate::inspect::inspect(
            &bytes,
            key.as_ref().map(|k| k as &dyn crate::keys::PrivateKeyOps),
            &crate::keys::RustCrypto,
        )
        .map_err(js_error)?,
    )
}

#[derive(serde::Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
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
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
struct PkiRequestJs {
    message_type: String,
    #[serde(with = "serde_bytes")]
    #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array"))]
    message: Vec<u8>,
    transaction_id: String,
    #[serde(with = "serde_bytes")]
    #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array"))]
    sender_nonce: Vec<u8>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(tag = "status", rename_all = "camelCase")]
enum OutcomeJs {
    Issued {
        #[serde(with = "serde_bytes")]
        #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array"))]
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
