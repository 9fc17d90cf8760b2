//! The enrollment webhook's request, signature and verdict (src/webhook.rs): only an explicit allow allows.

#![cfg(feature = "server")]

use scepkit::webhook::{signature, KeyFacts, WebhookAnswer, WebhookConfig, WebhookMode, WebhookRequest};
use scepkit::ErrorKind;

fn config(mode: WebhookMode) -> WebhookConfig {
    WebhookConfig {
        url: "http://127.0.0.1:9/hook".into(),
        secret: "0123456789abcdef-secret".into(),
        timeout_ms: 2000,
        mode,
    }
}

fn request(challenge: Option<&'static str>) -> WebhookRequest<'static> {
    WebhookRequest {
        version: 1,
        mode: if challenge.is_some() { WebhookMode::Challenge } else { WebhookMode::Approve },
        profile: "mdm",
        seat_id: "dev-1",
        transaction_id: "tid",
        message_type: "PKCSReq",
        subject: "CN=dev-1,O=Example",
        sans: vec!["dns:dev-1.example".parse().unwrap()],
        key: KeyFacts { kind: "rsa", bits: 2048 },
        client_address: Some("192.0.2.1"),
        renews: None,
        challenge,
        timestamp: 1_800_000_000,
    }
}

fn answer(status: u16, body: &str) -> WebhookAnswer {
    WebhookAnswer { status: Some(status), body: Some(body.into()), error: None }
}

#[test]
fn the_signature_is_hmac_sha256_of_timestamp_dot_body_under_the_secret() {
    // Computed independently: python3 hmac.new(secret, b'1800000000.{"a":1}', sha256).hexdigest()
    assert_eq!(
        signature("0123456789abcdef-secret", 1_800_000_000, "{\"a\":1}"),
        "a95fb1cc54a8da42527df108b59e48635de2e4b67017c98aa3ced6c359aba57a"
    );
}

#[test]
fn the_call_is_the_signed_json_with_the_issued_names_and_the_challenge_only_in_challenge_mode() {
    let hook = config(WebhookMode::Approve);
    let call = hook.call(&request(None));
    assert_eq!(call.url, "http://127.0.0.1:9/hook");
    assert_eq!(call.timeout_ms, 2000);
    let body: serde_json::Value = serde_json::from_str(&call.body).unwrap();
    assert_eq!(body["subject"], "CN=dev-1,O=Example");
    assert_eq!(body["sans"], serde_json::json!(["dns:dev-1.example"]));
    assert_eq!(body["key"], serde_json::json!({ "type": "rsa", "bits": 2048 }));
    assert_eq!(body["mode"], "approve");
    assert!(body.get("challenge").is_none(), "approve mode sends no challenge");
    let header = call.headers.iter().find(|(k, _)| k == "X-Scepkit-Signature").map(|(_, v)| v.clone()).unwrap();
    assert_eq!(header, format!("t=1800000000,v1={}", signature(&hook.secret, 1_800_000_000, &call.body)));

    let call = config(WebhookMode::Challenge).call(&request(Some("from-the-mdm")));
    let body: serde_json::Value = serde_json::from_str(&call.body).unwrap();
    assert_eq!(body["challenge"], "from-the-mdm");
    assert_eq!(body["mode"], "challenge");
}

#[test]
fn only_an_explicit_allow_allows_and_everything_else_fails_closed() {
    let hook = config(WebhookMode::Approve);
    assert_eq!(hook.verdict(&answer(200, r#"{"allow":true}"#)), Ok(()));
    assert_eq!(hook.verdict(&answer(204, r#"{"allow":true,"extra":1}"#)), Ok(()));

    let denied =
        hook.verdict(&answer(200, "{\"allow\":false,\"reason\":\"device not compliant\\nline two\"}")).unwrap_err();
    assert_eq!(denied.kind, ErrorKind::WebhookDenied);
    assert_eq!(denied.message, "The enrollment webhook refused the request: device not compliant line two");
    let unreasoned = hook.verdict(&answer(200, r#"{"allow":false}"#)).unwrap_err();
    assert!(unreasoned.message.ends_with("no reason given"), "{}", unreasoned.message);
    let long = hook.verdict(&answer(200, &format!(r#"{{"allow":false,"reason":"{}"}}"#, "x".repeat(500)))).unwrap_err();
    assert!(long.message.chars().count() < 260, "a reason is bounded");

    for (case, what) in [
        (answer(500, r#"{"allow":true}"#), "HTTP 500"),
        (answer(302, ""), "HTTP 302"),
        (answer(200, "allow"), "without a boolean"),
        (answer(200, r#"{"allow":"yes"}"#), "without a boolean"),
        (answer(200, ""), "without a boolean"),
        (WebhookAnswer { status: None, body: None, error: Some("timed out".into()) }, "timed out (2000 ms allowed)"),
        (
            WebhookAnswer { status: Some(200), body: Some(r#"{"allow":true}"#.into()), error: Some("reset".into()) },
            "reset",
        ),
        (WebhookAnswer { status: None, body: None, error: None }, "no answer"),
    ] {
        let e = hook.verdict(&case).unwrap_err();
        assert_eq!(e.kind, ErrorKind::WebhookUnavailable, "{case:?}");
        assert!(e.message.contains(what), "{case:?}: {}", e.message);
        assert!(e.message.ends_with("nothing was issued"), "{}", e.message);
    }
}

#[test]
fn a_webhook_is_an_http_url_without_credentials_a_long_enough_secret_and_a_bounded_timeout() {
    assert!(config(WebhookMode::Approve).issues().is_empty());
    for url in ["https://hooks.example/x", "http://localhost:8080/x", "http://[::1]:9/x", "http://127.0.0.1/x"] {
        assert!(WebhookConfig { url: url.into(), ..config(WebhookMode::Approve) }.issues().is_empty(), "{url}");
    }
    let bad = WebhookConfig {
        url: "https://user:pw@hooks.example/x".into(),
        secret: "short".into(),
        timeout_ms: 60_000,
        mode: WebhookMode::Approve,
    };
    let paths: Vec<_> = bad.issues().into_iter().map(|i| i.path).collect();
    assert_eq!(paths, ["webhook.url", "webhook.secret", "webhook.timeout_ms"]);
    for url in [
        "ftp://hooks.example",
        "https://",
        "hooks.example/x",
        "https://hooks.example/a b",
        "javascript:alert(1)",
        "http://hooks.example/x",
        "http://127.0.0.1.evil.example/x",
    ] {
        let c = WebhookConfig { url: url.into(), ..config(WebhookMode::Approve) };
        assert_eq!(c.issues().len(), 1, "{url}");
    }
}
