//! The client half of the facade that needs no RSA: key formats, GetCACaps and GetCACert bodies, PKCS#12, templates.
//! In every client build (the functions that do RSA with a key at hand are in `pure_rsa`); left out of the Worker's.

use der::Encode;
use rand_core::OsRng;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::{certificate, from_js, js_error, to_js, JsResult};
use crate::algorithms::{AlgorithmPolicy, Cipher, DigestAlg};
use crate::caps::{CaCaps, CaCertificates};
use crate::error::ScepError;
use crate::wire::Certificate;

/// PKCS#8 DER and SubjectPublicKeyInfo of a private key in any form the functions take.
fn read_key(key_bytes: &[u8]) -> JsResult<(zeroize::Zeroizing<Vec<u8>>, spki::SubjectPublicKeyInfoOwned)> {
    crate::keys::read_private_key(key_bytes).map_err(js_error)
}

/// The SubjectPublicKeyInfo (DER) of a private key in any form the functions take.
#[wasm_bindgen(js_name = publicKeyOf)]
pub fn public_key_of(key_bytes: &[u8]) -> JsResult<Vec<u8>> {
    read_key(key_bytes)?.1.to_der().map_err(|e| js_error(e.into()))
}

/// PKCS#8 PEM of a key given as PKCS#8 DER, PKCS#8 PEM or PKCS#1 PEM.
#[wasm_bindgen(js_name = privateKeyToPem)]
pub fn private_key_to_pem(key_bytes: &[u8]) -> JsResult<String> {
    let pkcs8 = read_key(key_bytes)?.0;
    der::pem::encode_string("PRIVATE KEY", der::pem::LineEnding::LF, &pkcs8)
        .map_err(|e| js_error(ScepError::invalid_input(e)))
}

/// PKCS#8 DER of a key given in any form [`private_key_to_pem`] takes.
#[wasm_bindgen(js_name = privateKeyToDer)]
pub fn private_key_to_der(key_bytes: &[u8]) -> JsResult<Vec<u8>> {
    Ok(read_key(key_bytes)?.0.to_vec())
}

#[wasm_bindgen(js_name = parseCaCaps, unchecked_return_type = "CaCaps")]
pub fn parse_ca_caps(text: &str) -> JsResult<JsValue> {
    to_js(&CaCaps::parse(text))
}

/// `{ cipher, digest, post, renewal }` from a GetCACaps body and optional pins.
#[wasm_bindgen(unchecked_return_type = "Negotiated")]
pub fn negotiate(caps_text: &str, legacy: bool, cipher: Option<String>, digest: Option<String>) -> JsResult<JsValue> {
    let cipher = cipher.map(|c| Cipher::from_name(&c)).transpose().map_err(js_error)?;
    let digest = digest.map(|d| DigestAlg::from_name(&d)).transpose().map_err(js_error)?;
    to_js(
        &CaCaps::parse(caps_text)
            .negotiate(AlgorithmPolicy::from_legacy_switch(legacy), cipher, digest)
            .map_err(js_error)?,
    )
}

/// The certificates of a GetCACert body: `{ ca, recipient, all, caFingerprint, caSubject }`.
#[wasm_bindgen(js_name = parseCaCert, unchecked_return_type = "CaCertsJs")]
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

/// A fingerprint as lowercase hex without separators, or undefined unless it is 64 (SHA-256) or 40 (SHA-1) hex
/// digits (colons, spaces and dashes allowed).
#[wasm_bindgen(js_name = normalizeFingerprint)]
pub fn normalize_fingerprint(fingerprint: &str) -> Option<String> {
    crate::caps::normalize_fingerprint(fingerprint)
}

#[wasm_bindgen(js_name = checkFingerprint)]
pub fn check_fingerprint(body: &[u8], fingerprint: &str) -> JsResult<()> {
    CaCertificates::parse(body).and_then(|c| c.check_fingerprint(fingerprint)).map_err(js_error)
}

/// A password-protected PKCS#12 of the key and `chain` (leaf first; each a DER `Uint8Array`).
#[wasm_bindgen(js_name = exportPkcs12)]
pub fn export_pkcs12(
    key_pkcs8: &[u8],
    chain: Vec<js_sys::Uint8Array>,
    password: &str,
    friendly_name: &str,
) -> JsResult<Vec<u8>> {
    let chain = chain.iter().map(|c| certificate(&c.to_vec())).collect::<JsResult<Vec<_>>>()?;
    // PEM or DER, PKCS#8 or PKCS#1, read as a key first.
    let pkcs8 = read_key(key_pkcs8)?.0;
    crate::pkcs12::export(&pkcs8, &chain, password, friendly_name, &mut OsRng).map_err(js_error)
}

/// Fills a profile's subject or SAN template: `vars` is `{ USERNAME: "laptop-42", ... }`.
#[wasm_bindgen(js_name = renderTemplate)]
pub fn render_template(template: &str, vars: JsValue) -> JsResult<String> {
    let vars: std::collections::BTreeMap<String, String> = from_js(vars)?;
    crate::csr::render_template(template, &vars.into_iter().collect::<Vec<_>>()).map_err(js_error)
}

#[wasm_bindgen(js_name = encodeMessageParam)]
pub fn encode_message_param(message: &[u8]) -> String {
    crate::transport::encode_message_param(message)
}

#[derive(Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
struct CaCertsJs {
    ca: serde_bytes::ByteBuf,
    recipient: serde_bytes::ByteBuf,
    all: Vec<serde_bytes::ByteBuf>,
    ca_fingerprint: String,
    ca_subject: String,
}
