//! The JavaScript facade: conversion between JS values and core types, nothing else.
//!
//! Bytes cross as `Uint8Array`, structured results as plain objects (serde-wasm-bindgen), times as Unix
//! seconds, and every error as a JS `Error` carrying `kind`, `failInfo`, `failInfoCode`, `status` and
//! `resolution`.

use der::Decode;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::error::ScepError;
use crate::keys::RsaKey;
use crate::wire::Certificate;

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
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| js_sys::Error::new(&e.to_string()).into())
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

/// DER from DER, PEM or base64 input.
#[wasm_bindgen(js_name = toDer)]
pub fn to_der(input: &[u8]) -> JsResult<Vec<u8>> {
    crate::inspect::to_der(input).map_err(js_error)
}

fn random_serial(rng: &mut impl rand_core::RngCore) -> [u8; 16] {
    let mut serial = [0u8; 16];
    rng.fill_bytes(&mut serial);
    serial[0] = (serial[0] & 0x7f) | 0x01;
    serial
}

/// Like [`to_js`], with bytes as `Uint8Array` rather than arrays of numbers.
fn to_js_bytes<T: Serialize>(value: &T) -> JsResult<JsValue> {
    value.serialize(&serde_wasm_bindgen::Serializer::new()).map_err(|e| js_sys::Error::new(&e.to_string()).into())
}

#[wasm_bindgen(js_name = decodeMessageParam)]
pub fn decode_message_param(raw: &str) -> JsResult<Vec<u8>> {
    crate::transport::decode_message_param(raw).map_err(js_error)
}

// The client side (requests, CertReps, keys, PKCS#12, the driver over fetch and WebCrypto): browsers, Node, the
// CLI. Left out of the Worker's build.
#[cfg(feature = "client")]
mod client;
#[cfg(feature = "server")]
mod server;
#[cfg(feature = "client")]
mod web;
