//! Reading a one-time challenge password from what an OTP server answered, as MDMs and firewalls do with
//! NDES's `mscep_admin` page: decode it (UTF-16 little- or big-endian, with or without a byte-order mark, or
//! UTF-8) and take the text between `The enrollment challenge password is:` `<B>` and `</B>`. This service's
//! page also answers JSON (`{ "challenge_password": ... }`) and plain text (the password alone).

use crate::error::{Result, ScepError};

/// What NDES says instead of a password when it has none to give (its own wording), and what it means.
const NDES_REFUSALS: &[(&str, &str)] = &[
    ("password cache is full", "NDES's password cache is full: wait for passwords to expire, or raise its cache size"),
    ("do not have sufficient permission", "the OTP credentials lack the enrollment permission on NDES's template"),
];

/// The password in an OTP server's answer (`content_type` as sent, `body` as received).
pub fn read_challenge_answer(content_type: Option<&str>, body: &[u8]) -> Result<String> {
    let media_type = content_type.unwrap_or_default().split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let text = decode(content_type.unwrap_or_default(), body);
    let trimmed = text.trim();
    if media_type == "application/json" || trimmed.starts_with('{') {
        let value: serde_json::Value =
            serde_json::from_str(trimmed).map_err(|e| unreadable(&format!("its JSON cannot be read ({e})")))?;
        return ["challenge_password", "challenge", "password"]
            .iter()
            .find_map(|k| value.get(*k).and_then(|v| v.as_str()))
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .ok_or_else(|| unreadable("its JSON has no challenge_password"));
    }
    let lower = text.to_ascii_lowercase();
    if let Some(at) = lower.find("enrollment challenge password is") {
        let rest = &lower[at..];
        let start = rest.find("<b>").map(|b| at + b + 3);
        let end = start.and_then(|s| lower[s..].find("</b>").map(|e| s + e));
        if let (Some(start), Some(end)) = (start, end) {
            let password = text[start..end].trim();
            if !password.is_empty() {
                return Ok(password.to_owned());
            }
        }
        return Err(unreadable("its page names no password between <B> and </B>"));
    }
    if let Some((_, meaning)) = NDES_REFUSALS.iter().find(|(said, _)| lower.contains(said)) {
        return Err(ScepError::not_permitted(
            format!("The OTP server gave no challenge password: {meaning}"),
            "ask the OTP server's administrator",
        ));
    }
    if media_type != "text/html"
        && !trimmed.is_empty()
        && !trimmed.contains(char::is_whitespace)
        && trimmed.len() <= 255
    {
        return Ok(trimmed.to_owned());
    }
    Err(unreadable("expected NDES's page, JSON with challenge_password, or the password as plain text"))
}

fn unreadable(what: &str) -> ScepError {
    ScepError::invalid_input(format!("The OTP server's answer has no challenge password: {what}"))
}

/// The body as text: UTF-16 by its byte-order mark, its charset, or the zero bytes ASCII leaves in it; else UTF-8.
fn decode(content_type: &str, body: &[u8]) -> String {
    let utf16 = |bytes: &[u8], little: bool| {
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|p| if little { u16::from_le_bytes([p[0], p[1]]) } else { u16::from_be_bytes([p[0], p[1]]) })
            .collect();
        String::from_utf16_lossy(&units)
    };
    match body {
        [0xff, 0xfe, rest @ ..] => return utf16(rest, true),
        [0xfe, 0xff, rest @ ..] => return utf16(rest, false),
        [0xef, 0xbb, 0xbf, rest @ ..] => return String::from_utf8_lossy(rest).into_owned(),
        _ => {}
    }
    let declared = content_type.to_ascii_lowercase();
    let zeros_at = |parity: usize| body.iter().skip(parity).step_by(2).take(64).filter(|b| **b == 0).count();
    if declared.contains("utf-16be") || (body.len() >= 4 && zeros_at(0) > 8 && zeros_at(1) == 0) {
        utf16(body, false)
    } else if declared.contains("utf-16") || (body.len() >= 4 && zeros_at(1) > 8 && zeros_at(0) == 0) {
        utf16(body, true)
    } else {
        String::from_utf8_lossy(body).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "<HTML><Body><P> The thumbprint (hash value) for the CA certificate is: <B> 0CF6B4A2 F8C4BC9E </B> \
                        <P> The enrollment challenge password is: <B> 3C22E6F8A0B6C3B5 </B> <P> This password can be used \
                        only once and will expire within 60 minutes.</Body></HTML>";

    fn le(text: &str, bom: bool) -> Vec<u8> {
        let mut out = if bom { vec![0xff, 0xfe] } else { vec![] };
        out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        out
    }

    #[test]
    fn ndes_pages_are_read_in_every_encoding_they_come_in() {
        let want = "3C22E6F8A0B6C3B5";
        assert_eq!(read_challenge_answer(Some("text/html; charset=utf-16"), &le(PAGE, true)).unwrap(), want);
        assert_eq!(read_challenge_answer(Some("text/html"), &le(PAGE, false)).unwrap(), want);
        let be: Vec<u8> = [0xfe, 0xff].into_iter().chain(PAGE.encode_utf16().flat_map(u16::to_be_bytes)).collect();
        assert_eq!(read_challenge_answer(None, &be).unwrap(), want);
        assert_eq!(read_challenge_answer(Some("text/html; charset=utf-8"), PAGE.as_bytes()).unwrap(), want);
    }

    #[test]
    fn json_and_plain_text_answers_and_refusals() {
        let json = br#"{"challenge_password":"0123456789ABCDEF","single_use":true}"#;
        assert_eq!(read_challenge_answer(Some("application/json"), json).unwrap(), "0123456789ABCDEF");
        assert_eq!(read_challenge_answer(Some("text/plain"), b"0123456789ABCDEF\n").unwrap(), "0123456789ABCDEF");
        let full = le("<HTML>The password cache is full.</HTML>", true);
        assert!(read_challenge_answer(Some("text/html"), &full).unwrap_err().message.contains("cache is full"));
        let login = read_challenge_answer(Some("text/html"), b"<html><form>Sign in</form></html>").unwrap_err();
        assert!(login.message.starts_with("The OTP server's answer has no challenge password"), "{}", login.message);
        assert!(read_challenge_answer(Some("application/json"), b"{}").is_err());
    }
}
