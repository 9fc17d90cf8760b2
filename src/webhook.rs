//! The enrollment webhook: a service of the operator's that must allow an enrollment before the CA issues, as
//! Intune's certificate connector and step-ca's SCEP webhook do.
//!
//! A profile's `webhook: { url, secret, timeout_ms, mode }` names it. In `challenge` mode the webhook owns the
//! challenge: it receives the CSR's challengePassword and decides whether it is valid (the profile's own
//! challenge is not checked). In `approve` mode the CA's own checks come first, and the webhook must allow too
//! (no challenge is sent). Either way the CA decides the names (the webhook sees them, it cannot change them),
//! nothing is written before the webhook answered, and anything but an explicit allow refuses: a deny with its
//! reason, and a timeout, an HTTP error or an unreadable answer alike (fail closed), burning no code.
//!
//! ```text
//! POST <url>                                    the host sends exactly this and reports what came back
//!   Content-Type: application/json
//!   X-Scepkit-Signature: t=<unix seconds>,v1=<hex HMAC-SHA-256(secret, "<t>.<body>")>
//!   { "version": 1, "mode", "profile", "seat_id", "transaction_id", "message_type", "subject", "sans",
//!     "key": { "type", "bits" }, "client_address", "renews", "challenge" (challenge mode only), "timestamp" }
//! 2xx { "allow": true }                      -> the enrollment goes on
//! 2xx { "allow": false, "reason": "..." }    -> FAILURE badRequest, "The enrollment webhook refused ...: <reason>"
//! anything else, or no answer in timeout_ms  -> FAILURE badRequest, "The enrollment webhook gave no decision ..."
//! ```
//!
//! The receiver checks the signature over the raw body with the shared secret and refuses a timestamp more than
//! a few minutes from its clock, so a captured request cannot be replayed later.

use hmac::Mac;
use serde::{Deserialize, Serialize};

use crate::csr::San;
use crate::error::{FieldIssue, ScepError};

/// Header carrying the timestamp and the body's signature.
pub const SIGNATURE_HEADER: &str = "X-Scepkit-Signature";
/// How long a receiver should accept a signed request after its timestamp (seconds), as documented.
pub const REPLAY_WINDOW: u64 = 300;
const DEFAULT_TIMEOUT_MS: u32 = 5_000;
const TIMEOUT_RANGE_MS: core::ops::RangeInclusive<u32> = 100..=30_000;
/// A reason longer than this is cut: it becomes a failInfoText and an audit message.
const MAX_REASON: usize = 200;

/// A profile's webhook. `secret` is shown masked by the admin API, like every secret of a profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an object with url, secret, mode and optionally timeout_ms")]
pub struct WebhookConfig {
    pub url: String,
    pub secret: String,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u32,
    pub mode: WebhookMode,
}

fn default_timeout() -> u32 {
    DEFAULT_TIMEOUT_MS
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookMode {
    /// The webhook decides the challenge; the profile's own challenge check is left to it.
    Challenge,
    /// The CA's checks first, then the webhook must allow.
    Approve,
}

impl WebhookConfig {
    /// Every rule a stored webhook must meet, as field issues under `webhook.`.
    pub fn issues(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        let mut issue =
            |path: &str, rule: &str| issues.push(FieldIssue { path: format!("webhook.{path}"), rule: rule.into() });
        let url = self.url.as_str();
        let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
        let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
        if url.len() > 2048
            || url.chars().any(|c| c.is_whitespace() || c.is_control())
            || !host.is_some_and(|h| !h.is_empty())
        {
            issue("url", "must be an http(s) URL with a host, at most 2048 characters");
        }
        if host.is_some_and(|h| h.contains('@')) {
            issue("url", "must not carry credentials: the request is signed with the secret instead");
        }
        // In `challenge` mode the body carries a device's challenge: only TLS may carry it off this machine.
        let hostname = host.map(|h| {
            if h.starts_with('[') {
                h.split(']').next().unwrap_or(h).to_owned() + "]"
            } else {
                h.split(':').next().unwrap_or(h).to_owned()
            }
        });
        let loopback = hostname.as_deref().is_some_and(|h| matches!(h, "localhost" | "127.0.0.1" | "[::1]"));
        if url.starts_with("http://") && !loopback {
            issue("url", "must be https (plain http only to this machine's loopback, for testing)");
        }
        if !(16..=256).contains(&self.secret.chars().count()) {
            issue("secret", "must be 16 to 256 characters");
        }
        if !TIMEOUT_RANGE_MS.contains(&self.timeout_ms) {
            issue("timeout_ms", "must be 100 to 30000 (milliseconds)");
        }
        issues
    }
}

/// What the webhook is told about one enrollment: the CA's view, with the names the CA will issue.
#[derive(Clone, Debug, Serialize)]
pub struct WebhookRequest<'a> {
    pub version: u8,
    pub mode: WebhookMode,
    pub profile: &'a str,
    pub seat_id: &'a str,
    pub transaction_id: &'a str,
    pub message_type: &'a str,
    /// RFC 4514, as it will be issued.
    pub subject: &'a str,
    /// `dns:…`, `email:…`, `uri:…`, as they will be issued.
    pub sans: Vec<San>,
    pub key: KeyFacts,
    pub client_address: Option<&'a str>,
    /// The serial of the certificate a renewal replaces.
    pub renews: Option<&'a str>,
    /// The CSR's challengePassword, in `challenge` mode only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenge: Option<&'a str>,
    pub timestamp: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct KeyFacts {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub bits: usize,
}

/// One HTTP request for the host to send as it is, and the time it may take.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct WebhookCall {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub timeout_ms: u32,
}

/// What came back, as the host saw it: an HTTP status and body, or why there was none.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct WebhookAnswer {
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub body: Option<String>,
    /// The host's words for a failure to get an answer (a timeout, a refused connection).
    #[serde(default)]
    pub error: Option<String>,
}

impl WebhookConfig {
    /// The signed request for `request`.
    pub fn call(&self, request: &WebhookRequest<'_>) -> WebhookCall {
        let body = serde_json::to_string(request).expect("a webhook request serialises");
        let signature = signature(&self.secret, request.timestamp, &body);
        WebhookCall {
            url: self.url.clone(),
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                (SIGNATURE_HEADER.into(), format!("t={},v1={signature}", request.timestamp)),
            ],
            body,
            timeout_ms: self.timeout_ms,
        }
    }

    /// Allowed, or the refusal to answer with: only `2xx {"allow": true}` allows.
    pub fn verdict(&self, answer: &WebhookAnswer) -> Result<(), ScepError> {
        #[derive(Deserialize)]
        struct Decision {
            allow: bool,
            #[serde(default)]
            reason: Option<String>,
        }
        let status = match (answer.status, &answer.error) {
            (_, Some(error)) => return Err(no_decision(&format!("{} ({} ms allowed)", clean(error), self.timeout_ms))),
            (Some(status), None) => status,
            (None, None) => return Err(no_decision("no answer")),
        };
        if !(200..300).contains(&status) {
            return Err(no_decision(&format!("HTTP {status}")));
        }
        match serde_json::from_str::<Decision>(answer.body.as_deref().unwrap_or_default()) {
            Ok(Decision { allow: true, .. }) => Ok(()),
            Ok(Decision { allow: false, reason }) => Err(ScepError::webhook_denied(&clean(
                reason.as_deref().filter(|r| !r.trim().is_empty()).unwrap_or("no reason given"),
            ))),
            Err(_) => Err(no_decision("an answer without a boolean \"allow\"")),
        }
    }
}

/// HMAC-SHA-256 of `"<timestamp>.<body>"` under `secret`, lowercase hex.
pub fn signature(secret: &str, timestamp: u64, body: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    base16ct::lower::encode_string(&mac.finalize().into_bytes())
}

fn no_decision(what: &str) -> ScepError {
    ScepError::webhook_unavailable(what)
}

/// Text from outside that becomes a failInfoText: printable, one line, bounded.
fn clean(text: &str) -> String {
    let line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let line = line.trim();
    match line.char_indices().nth(MAX_REASON) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_owned(),
    }
}
