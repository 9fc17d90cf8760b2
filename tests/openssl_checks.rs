//! OpenSSL 3 as an independent judge of what scepkit builds: `cms -verify`, `cms -decrypt`, `req -verify`,
//! `verify` of issued certificates and `pkcs12 -info` of exports.

mod common;

use std::process::Command;

use common::*;
use der::{Encode, EncodePem};
use rand_core::OsRng;
use scepkit::algorithms::{Cipher, DigestAlg, KeyTransport};
use scepkit::caps::CaCertificates;
use scepkit::client::{self, RequestOptions, Requester};
use scepkit::csr::{CsrFacts, CsrRequest, San};
use scepkit::envelope::{self, EnvelopeOptions};
use scepkit::issue::{self, self_signed, IssueOptions, SelfSignedRole};
use scepkit::keys::Unsigned as _;
use scepkit::message::MessageType;
use scepkit::signed::IdentifierKind;

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").args(args).output().expect("openssl on PATH");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn pem_file(cert: &scepkit::wire::Certificate) -> tempfile::NamedTempFile {
    temp_file(cert.to_pem(der::pem::LineEnding::LF).unwrap().as_bytes())
}

fn key_file(key: &scepkit::keys::RsaKey) -> tempfile::NamedTempFile {
    temp_file(key.to_pkcs8_pem().unwrap().as_bytes())
}

fn csr() -> CsrRequest {
    CsrRequest {
        subject: "CN=device-7,O=Example,C=DE".into(),
        sans: vec![San::Dns("device-7.example.com".into()), San::Ip("10.1.2.3".into())],
        challenge: Some("s3cret code".into()),
        digest: DigestAlg::Sha256,
        digital_signature: true,
        key_encipherment: true,
    }
}

#[test]
fn openssl_verifies_our_csr_and_reads_its_challenge_and_sans() {
    let der = csr().build(test_key(1)).unwrap();
    let f = temp_file(&der);
    let (ok, out) =
        openssl(&["req", "-inform", "DER", "-in", f.path().to_str().unwrap(), "-noout", "-verify", "-text"]);
    assert!(ok, "{out}");
    assert!(out.contains("verify OK") || out.contains("Certificate request self-signature verify OK"), "{out}");
    assert!(out.contains("challengePassword") && out.contains("s3cret code"), "{out}");
    assert!(out.contains("DNS:device-7.example.com") && out.contains("IP Address:10.1.2.3"), "{out}");
    assert!(out.contains("C = DE, O = Example, CN = device-7"), "{out}");
}

#[test]
fn openssl_verifies_and_decrypts_our_pkcsreq() {
    let ca = scepkit_ca();
    let ca_pem = pem_file(&ca.cert);
    let ca_key = key_file(&ca.key);
    let key = test_key(1);
    let signer =
        self_signed(key, "CN=SCEP SIGNER", &[5], (NOW - 60, NOW + 3600), DigestAlg::Sha256, SelfSignedRole::Signer)
            .unwrap();
    let requester = Requester { key, certificate: &signer };
    let cas = CaCertificates::parse(&ca.cert.to_der().unwrap()).unwrap();
    let csr_der = csr().build(key).unwrap();
    for (cipher, transport) in [
        (Cipher::Aes128Cbc, KeyTransport::RsaPkcs1v15),
        (Cipher::Aes256Cbc, KeyTransport::RsaOaepSha1),
        (Cipher::DesEde3Cbc, KeyTransport::RsaPkcs1v15),
    ] {
        let options = RequestOptions {
            envelope: EnvelopeOptions { cipher, transport, identifier: IdentifierKind::IssuerAndSerialNumber },
            policy: policy(cipher.is_legacy()),
            digest: DigestAlg::Sha256,
            signer_identifier: IdentifierKind::IssuerAndSerialNumber,
        };
        let req =
            client::certificate_request(&csr_der, MessageType::PkcsReq, None, &requester, &cas, options, &mut OsRng)
                .unwrap();
        let msg = temp_file(&req.message);
        let env = tempfile::NamedTempFile::new().unwrap();
        let (ok, out) = openssl(&[
            "cms",
            "-verify",
            "-noverify",
            "-inform",
            "DER",
            "-in",
            msg.path().to_str().unwrap(),
            "-binary",
            "-out",
            env.path().to_str().unwrap(),
        ]);
        assert!(ok, "{cipher:?} verify: {out}");
        let inner = tempfile::NamedTempFile::new().unwrap();
        let (ok, out) = openssl(&[
            "cms",
            "-decrypt",
            "-inform",
            "DER",
            "-in",
            env.path().to_str().unwrap(),
            "-inkey",
            ca_key.path().to_str().unwrap(),
            "-recip",
            ca_pem.path().to_str().unwrap(),
            "-binary",
            "-out",
            inner.path().to_str().unwrap(),
        ]);
        assert!(ok, "{cipher:?} decrypt: {out}");
        assert_eq!(std::fs::read(inner.path()).unwrap(), csr_der, "{cipher:?}");
        let (_, printed) =
            openssl(&["cms", "-cmsout", "-print", "-inform", "DER", "-in", msg.path().to_str().unwrap()]);
        assert!(printed.contains("2.16.840.1.113733.1.9.7") || printed.contains("transactionID"), "{printed}");
    }
}

#[test]
fn openssl_decrypts_the_envelope_we_seal_to_a_subject_key_identifier() {
    let ca = scepkit_ca();
    let options = EnvelopeOptions {
        cipher: Cipher::Aes192Cbc,
        transport: KeyTransport::RsaOaepSha256,
        identifier: IdentifierKind::SubjectKeyIdentifier,
    };
    let sealed =
        envelope::seal(b"hello scep", &ca.cert, options, &Crypto::rust(AlgorithmPolicy::Modern), &mut OsRng).unwrap();
    let (f, k, c, out) =
        (temp_file(&sealed), key_file(&ca.key), pem_file(&ca.cert), tempfile::NamedTempFile::new().unwrap());
    let (ok, msg) = openssl(&[
        "cms",
        "-decrypt",
        "-inform",
        "DER",
        "-in",
        f.path().to_str().unwrap(),
        "-inkey",
        k.path().to_str().unwrap(),
        "-recip",
        c.path().to_str().unwrap(),
        "-out",
        out.path().to_str().unwrap(),
    ]);
    assert!(ok, "{msg}");
    assert_eq!(std::fs::read(out.path()).unwrap(), b"hello scep");
}

#[test]
fn openssl_verifies_an_issued_certificate_against_the_ca() {
    let ca = scepkit_ca();
    let facts = CsrFacts::from_der(&csr().build(test_key(1)).unwrap(), &RustCrypto).unwrap();
    let opts = IssueOptions {
        serial: vec![0x42, 0x01],
        subject: facts.subject.clone(),
        not_before: NOW - 60,
        not_after: NOW + 30 * 86400,
        digest: DigestAlg::Sha256,
        sans: facts.sans.clone(),
        digital_signature: true,
        key_encipherment: true,
        client_auth: true,
    };
    let cert = issue::issue(issue::stored_public_key(&facts.spki_der).unwrap(), &opts, &ca.cert)
        .unwrap()
        .sign_with(&ca.key)
        .unwrap();
    let (ca_pem, leaf) = (pem_file(&ca.cert), pem_file(&cert));
    let (ok, out) = openssl(&[
        "verify",
        "-attime",
        &NOW.to_string(),
        "-CAfile",
        ca_pem.path().to_str().unwrap(),
        "-purpose",
        "sslclient",
        leaf.path().to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let (_, text) = openssl(&["x509", "-in", leaf.path().to_str().unwrap(), "-noout", "-text"]);
    assert!(text.contains("Serial Number: 16897 (0x4201)"), "{text}");
    assert!(text.contains("TLS Web Client Authentication") && text.contains("DNS:device-7.example.com"), "{text}");
}

#[test]
fn openssl_opens_our_pkcs12_with_its_password() {
    let ca = scepkit_ca();
    let key = test_key(1);
    let facts = CsrFacts::from_der(&csr().build(key).unwrap(), &RustCrypto).unwrap();
    let opts = IssueOptions {
        serial: vec![0x43],
        subject: facts.subject.clone(),
        not_before: NOW - 60,
        not_after: NOW + 86400,
        digest: DigestAlg::Sha256,
        sans: vec![],
        digital_signature: true,
        key_encipherment: true,
        client_auth: true,
    };
    let cert = issue::issue(issue::stored_public_key(&facts.spki_der).unwrap(), &opts, &ca.cert)
        .unwrap()
        .sign_with(&ca.key)
        .unwrap();
    let p12 = scepkit::pkcs12::export(
        &key.to_pkcs8_der().unwrap(),
        &[cert, ca.cert.clone()],
        "correct horse",
        "device-7",
        &mut OsRng,
    )
    .unwrap();
    let f = temp_file(&p12);
    let (ok, out) =
        openssl(&["pkcs12", "-info", "-in", f.path().to_str().unwrap(), "-passin", "pass:correct horse", "-nodes"]);
    assert!(ok, "{out}");
    assert!(out.contains("MAC: sha256"), "{out}");
    assert!(out.contains("PBES2, PBKDF2, AES-256-CBC"), "{out}");
    assert!(out.contains("BEGIN PRIVATE KEY") && out.matches("BEGIN CERTIFICATE").count() == 2, "{out}");
    assert!(out.contains("friendlyName: device-7"), "{out}");
    let (ok, out) = openssl(&["pkcs12", "-info", "-in", f.path().to_str().unwrap(), "-passin", "pass:wrong", "-nodes"]);
    assert!(!ok, "a wrong password must fail: {out}");
}

#[test]
fn key_usage_extended_key_usage_and_ca_come_from_the_profile_never_from_the_csr() {
    // OpenSSL makes the CSR a greedy client would: CA:TRUE, serverAuth and codeSigning, keyCertSign.
    let key = key_file(test_key(1));
    let csr_path = tempfile::NamedTempFile::new().unwrap();
    let (ok, out) = openssl(&[
        "req",
        "-new",
        "-key",
        key.path().to_str().unwrap(),
        "-subj",
        "/O=Example Corp/CN=dev-1",
        "-outform",
        "DER",
        "-out",
        csr_path.path().to_str().unwrap(),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "extendedKeyUsage=serverAuth,codeSigning",
        "-addext",
        "keyUsage=critical,digitalSignature,keyCertSign,cRLSign",
        "-addext",
        "nameConstraints=permitted;DNS:.corp.example",
    ]);
    assert!(ok, "{out}");
    let facts = CsrFacts::from_der(&std::fs::read(csr_path.path()).unwrap(), &RustCrypto).unwrap();
    let profile = scepkit::profile::ScepProfile::from_json(&serde_json::json!({
        "id": "p1", "name": "corp", "folder": "Shared", "scep_challenge": { "none": "" }, "ca_identity_name": "ca",
        "subject": "CN=$USERNAME,O=Example Corp", "algorithm": { "rsa": { "rsa_nbits": 2048 } }, "digest": "sha256", "scep_url": "/scep",
        "use_for_key_encipherment": false
    }))
    .unwrap();
    let request = scepkit::server::RequestFacts {
        message_type: MessageType::PkcsReq,
        transaction_id: "t".into(),
        digest: DigestAlg::Sha256,
        cipher: Cipher::Aes128Cbc,
        key_transport: KeyTransport::RsaPkcs1v15,
        signer: scepkit::server::SignerFacts {
            subject: "CN=x".into(),
            issuer: "CN=x".into(),
            serial: "01".into(),
            self_signed: true,
            not_before: 0,
            not_after: u64::MAX,
            fingerprint: "ff".into(),
        },
        csr: Some(facts.clone()),
        poll: None,
        issuer_and_serial: None,
    };
    let store = scepkit::policy::StoreFacts {
        seat_exists: true,
        open_enrollment: Some(scepkit::policy::OpenEnrollment {
            id: "e".into(),
            code_mac: String::new(),
            expires_at: NOW + 60,
        }),
        ..Default::default()
    };
    let decision = scepkit::policy::decide(&request, &profile, &store, b"k", &[], NOW);
    let scepkit::policy::Decision::Issue { plan, .. } = decision else { panic!("not issued: {decision:?}") };
    let opts = IssueOptions {
        serial: vec![0x44],
        subject: plan.subject,
        not_before: plan.not_before,
        not_after: plan.not_after,
        digest: plan.digest,
        sans: plan.sans,
        digital_signature: plan.digital_signature,
        key_encipherment: plan.key_encipherment,
        client_auth: true,
    };
    let cert = issue::issue(issue::stored_public_key(&facts.spki_der).unwrap(), &opts, &scepkit_ca().cert)
        .unwrap()
        .sign_with(&scepkit_ca().key)
        .unwrap();
    let leaf = pem_file(&cert);
    let (_, text) = openssl(&["x509", "-in", leaf.path().to_str().unwrap(), "-noout", "-text"]);
    assert!(text.contains("CA:FALSE") && !text.contains("CA:TRUE"), "{text}");
    assert!(
        text.contains("TLS Web Client Authentication")
            && !text.contains("Server Authentication")
            && !text.contains("Code Signing"),
        "{text}"
    );
    assert!(
        text.contains("Digital Signature") && !text.contains("Certificate Sign") && !text.contains("Key Encipherment"),
        "{text}"
    );
    assert!(!text.contains("Name Constraints"), "{text}");
    assert!(text.contains("Subject: O = Example Corp, CN = dev-1"), "{text}");
}
