//! The client's HTTP (RFC 8894 §4.1): the requests it needs sent and how it reads what comes back. The shell
//! sends an [`HttpRequest`] as it is (fetch) and hands back an [`HttpResponse`], or the reason there was none.
//!
//! ```text
//! GET  {url}?operation=GetCACaps                   -> text/plain
//! GET  {url}?operation=GetCACert                   -> application/x-x509-ca-cert | application/x-x509-ca-ra-cert
//! POST {url}?operation=PKIOperation  (DER body)    -> application/x-pki-message
//! GET  {url}?operation=PKIOperation&message=BASE64 -> application/x-pki-message   (no POSTPKIOperation)
//! GET  {otp_server_url}  (HTTP Basic)              -> a one-time challenge (NDES's page, JSON, or text)
//! ```

use crate::error::ScepError;
use crate::transport::encode_message_param;

use super::Failure;

pub const PKI_MESSAGE: &str = "application/x-pki-message";

/// The operations a client asks for by HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    GetCaCaps,
    GetCaCert,
    PkiOperation,
    /// A one-time challenge password from an OTP server ([`super::challenge`]).
    GetChallenge,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Self::GetCaCaps => "GetCACaps",
            Self::GetCaCert => "GetCACert",
            Self::PkiOperation => "PKIOperation",
            Self::GetChallenge => "one-time challenge",
        }
    }
}

/// An HTTP request to send as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    pub operation: Operation,
    /// `GET` or `POST`.
    pub method: &'static str,
    pub url: String,
    /// The body's media type, when there is a body.
    pub content_type: Option<&'static str>,
    /// Other headers to send (the OTP server's `Authorization` and `Accept`).
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Vec<u8>>,
}

/// What the server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    /// The Content-Type header as sent, if any.
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The Content-Type without parameters, lowercased; empty when there is none.
    pub fn media_type(&self) -> String {
        let content_type = self.content_type.as_deref().unwrap_or_default();
        content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
    }
}

/// The server did not answer SCEP: where, and what it said if it said anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpProblem {
    pub url: String,
    /// None when no answer came at all.
    pub status: Option<u16>,
    /// The start of the body, as text.
    pub body: Option<String>,
}

impl HttpRequest {
    pub fn get_ca_caps(url: &str) -> Result<Self, Failure> {
        Ok(Self::get(Operation::GetCaCaps, operation_url(url, Operation::GetCaCaps)?))
    }

    pub fn get_ca_cert(url: &str) -> Result<Self, Failure> {
        Ok(Self::get(Operation::GetCaCert, operation_url(url, Operation::GetCaCert)?))
    }

    /// A PKIMessage by POST, or by GET with base64 in `message` when the server lacks POSTPKIOperation.
    pub fn pki_operation(url: &str, message: &[u8], post: bool) -> Result<Self, Failure> {
        let url = operation_url(url, Operation::PkiOperation)?;
        Ok(if post {
            Self {
                operation: Operation::PkiOperation,
                method: "POST",
                url,
                content_type: Some(PKI_MESSAGE),
                headers: Vec::new(),
                body: Some(message.to_vec()),
            }
        } else {
            Self::get(Operation::PkiOperation, format!("{url}&message={}", encode_message_param(message)))
        })
    }

    /// A one-time challenge from an OTP server (an NDES `mscep_admin` page or this service's), signed in with
    /// HTTP Basic (RFC 7617, UTF-8); JSON preferred, since NDES answers its page whatever is asked.
    /// The credentials travel in clear over plain http, so that is only for this machine's loopback.
    pub fn get_challenge(url: &str, username: &str, password: &str) -> Result<Self, Failure> {
        let https = url.get(..8).is_some_and(|p| p.eq_ignore_ascii_case("https://"));
        let loopback = url.get(..7).is_some_and(|p| p.eq_ignore_ascii_case("http://"))
            && ["127.0.0.1", "localhost", "[::1]"].contains(&host(url).as_str());
        if !https && !loopback {
            let e = ScepError::invalid_input(format!(
                "the OTP server URL {url:?} must be https (plain http only to this machine's loopback): the \
                 credentials are sent to it"
            ));
            return Err(Failure { error: e, transaction_id: None, http: None });
        }
        let credentials =
            <base64ct::Base64 as base64ct::Encoding>::encode_string(format!("{username}:{password}").as_bytes());
        let mut request = Self::get(Operation::GetChallenge, url.to_owned());
        request.headers = vec![
            ("authorization", format!("Basic {credentials}")),
            ("accept", "application/json, text/html;q=0.9, text/plain;q=0.8".to_owned()),
        ];
        Ok(request)
    }

    fn get(operation: Operation, url: String) -> Self {
        Self { operation, method: "GET", url, content_type: None, headers: Vec::new(), body: None }
    }

    /// The body of `response` if it is an answer to this request: a 2xx, and a PKIMessage for PKIOperation.
    pub fn read(&self, response: HttpResponse) -> Result<Vec<u8>, Failure> {
        if !(200..300).contains(&response.status) {
            let end = response.body.len().min(500);
            let text = String::from_utf8_lossy(&response.body[..end]).trim().to_owned();
            let said = if text.is_empty() { String::new() } else { format!(": {text}") };
            let who = if self.operation == Operation::GetChallenge { "The OTP server" } else { "SCEP server" };
            return Err(self.problem(
                format!("{who} answered HTTP {}{said}", response.status),
                Some(response.status),
                Some(text),
            ));
        }
        let media_type = response.media_type();
        if self.operation == Operation::PkiOperation && !media_type.is_empty() && media_type != PKI_MESSAGE {
            return Err(self.problem(
                format!("SCEP server answered {media_type}, not {PKI_MESSAGE}"),
                Some(response.status),
                None,
            ));
        }
        Ok(response.body)
    }

    /// No answer came (network, DNS, TLS, CORS): `reason` is what the host said.
    pub fn unreachable(&self, reason: &str) -> Failure {
        let who = if self.operation == Operation::GetChallenge { "OTP" } else { "SCEP" };
        self.problem(format!("Could not reach the {who} server at {}: {reason}", origin(&self.url)), None, None)
    }

    fn problem(&self, message: String, status: Option<u16>, body: Option<String>) -> Failure {
        Failure {
            error: ScepError::http(message, status),
            transaction_id: None,
            http: Some(Box::new(HttpProblem { url: self.url.clone(), status, body })),
        }
    }
}

/// `url` with `operation` set (any `operation` already in its query replaced, the fragment dropped).
pub fn operation_url(url: &str, operation: Operation) -> Result<String, Failure> {
    let scheme_ok =
        ["http://", "https://"].iter().any(|s| url.get(..s.len()).is_some_and(|p| p.eq_ignore_ascii_case(s)));
    if !scheme_ok {
        let e = ScepError::invalid_input(format!("the SCEP URL {url:?} is not an http(s) URL"));
        return Err(Failure { error: e, transaction_id: None, http: None });
    }
    let url = url.split('#').next().unwrap_or_default();
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut params: Vec<&str> =
        query.split('&').filter(|p| !p.is_empty() && p.split('=').next() != Some("operation")).collect();
    let op = format!("operation={}", operation.name());
    params.push(&op);
    Ok(format!("{base}?{}", params.join("&")))
}

/// The host of an http(s) URL, lowercased, without userinfo or port (an IPv6 literal keeps its brackets).
fn host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => format!("[{}]", v6.split(']').next().unwrap_or_default()),
        None => host_port.split(':').next().unwrap_or_default().to_owned(),
    };
    host.to_ascii_lowercase()
}

/// `scheme://host[:port]` of an http(s) URL, without userinfo.
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    format!("{}://{}", scheme.to_ascii_lowercase(), host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operation_is_set_once_and_other_parameters_stay() {
        let url = |u| operation_url(u, Operation::GetCaCaps).unwrap();
        assert_eq!(url("http://scep.test/scep"), "http://scep.test/scep?operation=GetCACaps");
        assert_eq!(url("https://h/scep?profile=a&operation=x#f"), "https://h/scep?profile=a&operation=GetCACaps");
        assert!(operation_url("ftp://h/scep", Operation::GetCaCaps).is_err());
        let get = HttpRequest::pki_operation("http://h/scep", b"\xff\xfe", false).unwrap();
        assert_eq!(get.url, "http://h/scep?operation=PKIOperation&message=%2F%2F4%3D");
    }

    #[test]
    fn an_answer_that_is_not_scep_is_explained() {
        let req = HttpRequest::pki_operation("http://user:pw@Host:9/scep", b"x", true).unwrap();
        let answer = |status, content_type: &str, body: &[u8]| HttpResponse {
            status,
            content_type: Some(content_type.into()),
            body: body.to_vec(),
        };
        let e = req.read(answer(500, "text/plain", b" pkcs7: Message digest mismatch\n")).unwrap_err();
        assert_eq!(e.error.message, "SCEP server answered HTTP 500: pkcs7: Message digest mismatch");
        assert_eq!(e.http.as_ref().unwrap().status, Some(500));
        let e = req.read(answer(200, "text/html; charset=utf-8", b"<html>")).unwrap_err();
        assert_eq!(e.error.message, "SCEP server answered text/html, not application/x-pki-message");
        assert_eq!(req.read(answer(200, "Application/X-PKI-Message", b"ok")).unwrap(), b"ok");
        let e = req.unreachable("connection refused");
        assert_eq!(e.error.message, "Could not reach the SCEP server at http://host:9: connection refused");
        assert_eq!(e.http.unwrap().status, None);
    }
}
