//! How a PKIMessage travels over HTTP (RFC 8894 §4.1): raw DER in a POST body, or base64 in the `message`
//! query parameter of a GET.
//!
//! Peers are sloppy with the GET form: Cisco IOS and macOS send unescaped `+` and `/`, some clients break the
//! base64 into lines (`%0A`), and form decoders turn an unescaped `+` into a space. All of that is accepted.

use percent_encoding::{percent_decode_str, utf8_percent_encode, NON_ALPHANUMERIC};

use crate::error::{Result, ScepError};

/// Decodes the raw (still percent-encoded) value of the `message` query parameter.
pub fn decode_message_param(raw: &str) -> Result<Vec<u8>> {
    let decoded =
        percent_decode_str(raw).decode_utf8().map_err(|_| ScepError::malformed("message parameter is not UTF-8"))?;
    decode_base64_message(&decoded)
}

/// Decodes base64 that may contain line breaks, and spaces standing for `+`.
pub fn decode_base64_message(text: &str) -> Result<Vec<u8>> {
    let cleaned: String =
        text.chars().filter(|c| !matches!(c, '\r' | '\n' | '\t')).map(|c| if c == ' ' { '+' } else { c }).collect();
    // Padding is optional (some clients drop it): read without it.
    let unpadded = cleaned.trim().trim_end_matches('=');
    <base64ct::Base64Unpadded as base64ct::Encoding>::decode_vec(unpadded)
        .map_err(|e| ScepError::malformed(format!("message parameter is not base64: {e}")))
}

/// The `message` query value for a GET PKIOperation: standard base64, percent-encoded.
pub fn encode_message_param(message: &[u8]) -> String {
    utf8_percent_encode(&<base64ct::Base64 as base64ct::Encoding>::encode_string(message), NON_ALPHANUMERIC).to_string()
}
