//! The JavaScript facade: conversion between JS values and core types, nothing else.
//!
//! Bytes cross as `Uint8Array`, structured results as plain objects with camelCase keys (serde-wasm-bindgen),
//! times as Unix seconds, and every error as the one `ScepError` class (`pkg/src/error.js`) carrying `kind`,
//! `failInfo`, `failInfoCode`, `status`, `resolution` and `details`. TypeScript declarations come from the Rust
//! types (tsify) into each build's generated `scepkit.d.ts`.

use der::Decode;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::error::ScepError;
use crate::wire::Certificate;

type JsResult<T> = Result<T, JsValue>;

#[wasm_bindgen(raw_module = "../src/error.js")]
extern "C" {
    /// `pkg/src/error.js`: one class for every build of the wasm, so `instanceof` works across them.
    #[wasm_bindgen(js_name = ScepError)]
    type ScepErrorClass;
    #[wasm_bindgen(constructor, js_class = "ScepError")]
    fn new(message: &str, fields: &JsValue) -> ScepErrorClass;
}

/// The fields of a [`ScepError`] as JS sees them on the `ScepError` class (besides `message`).
#[derive(Serialize, tsify_next::Tsify)]
#[serde(rename_all = "camelCase")]
pub struct ScepErrorFields {
    pub kind: crate::ErrorKind,
    pub fail_info: crate::FailInfo,
    pub fail_info_code: u8,
    pub status: u16,
    pub resolution: String,
    pub details: Vec<crate::error::FieldIssue>,
}

fn js_error(e: ScepError) -> JsValue {
    let fields = ScepErrorFields {
        kind: e.kind,
        fail_info: e.fail_info,
        fail_info_code: e.fail_info.code(),
        status: e.status,
        resolution: e.resolution,
        details: e.details,
    };
    let fields = to_js(&fields).unwrap_or(JsValue::NULL);
    ScepErrorClass::new(&e.message, &fields).into()
}

fn to_js<T: Serialize + ?Sized>(value: &T) -> JsResult<JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| js_sys::Error::new(&e.to_string()).into())
}

fn from_js<T: serde::de::DeserializeOwned>(value: JsValue) -> JsResult<T> {
    serde_wasm_bindgen::from_value(value).map_err(|e| js_error(ScepError::invalid_input(e)))
}

#[cfg(feature = "pure-rsa")]
fn key(pkcs8: &[u8]) -> JsResult<crate::keys::RsaKey> {
    crate::keys::RsaKey::import(pkcs8).map_err(js_error)
}

fn certificate(der: &[u8]) -> JsResult<Certificate> {
    Certificate::from_der(der).map_err(|e| js_error(ScepError::malformed(format!("certificate: {e}"))))
}

/// A certificate's PEM (the client's results, the admin API's downloads).
#[wasm_bindgen(js_name = certificateToPem)]
pub fn certificate_to_pem(der: &[u8]) -> JsResult<String> {
    use der::EncodePem;
    certificate(der)?.to_pem(der::pem::LineEnding::LF).map_err(|e| js_error(e.into()))
}

/// DER from DER, PEM or base64 input.
#[wasm_bindgen(js_name = toDer)]
pub fn to_der(input: &[u8]) -> JsResult<Vec<u8>> {
    crate::inspect::to_der(input).map_err(js_error)
}

/// Like [`to_js`], with bytes as `Uint8Array` rather than arrays of numbers.
fn to_js_bytes<T: Serialize>(value: &T) -> JsResult<JsValue> {
    value.serialize(&serde_wasm_bindgen::Serializer::new()).map_err(|e| js_sys::Error::new(&e.to_string()).into())
}

/// What `inspect` reads: the bytes of a Uint8Array, or a string's (PEM or base64).
#[cfg(feature = "client")]
fn inspected_bytes(input: JsValue) -> JsResult<Vec<u8>> {
    match input.as_string() {
        Some(text) => Ok(text.into_bytes()),
        None => Ok(input
            .dyn_into::<js_sys::Uint8Array>()
            .map_err(|_| js_error(ScepError::invalid_input("inspect takes a Uint8Array or a string")))?
            .to_vec()),
    }
}

#[wasm_bindgen(js_name = decodeMessageParam)]
pub fn decode_message_param(raw: &str) -> JsResult<Vec<u8>> {
    crate::transport::decode_message_param(raw).map_err(js_error)
}

// The client side (requests, CertReps, keys, PKCS#12, the driver over fetch and WebCrypto): browsers, Node, the
// CLI. Left out of the Worker's build.
#[cfg(feature = "client")]
mod client;
#[cfg(all(feature = "client", feature = "pure-rsa"))]
mod pure_rsa;
#[cfg(feature = "server")]
mod server;
#[cfg(feature = "client")]
mod web;
