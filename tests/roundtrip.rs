//! Every message type built by the client and answered by the server, and back: the core talking to itself,
//! across ciphers, digests, key transports and identifier kinds.

mod common;

use common::*;
use der::Encode;
use rand_core::OsRng;
use scepkit::algorithms::{Cipher, DigestAlg, KeyTransport};
use scepkit::caps::{ca_cert_response, CaCaps, CaCertificates};
use scepkit::client::{self, CertRepOutcome, RequestOptions, Requester};
use scepkit::csr::{CsrFacts, CsrRequest, San};
use scepkit::envelope::{EnvelopeOptions, Recipient};
use scepkit::issue::{self, self_signed, IssueOptions, SelfSignedRole};
use scepkit::message::MessageType;
use scepkit::server::{self, Reply, ReplyEnvelope};
use scepkit::signed::{IdentifierKind, Signer};
use scepkit::wire::Certificate;
use scepkit::{ErrorKind, FailInfo, ScepError};

struct Client {
    key: &'static scepkit::keys::RsaKey,
    signer_cert: Certificate,
    csr: Vec<u8>,
}

fn client(slot: usize, request: &CsrRequest) -> Client {
    let key = test_key(slot);
    let signer_cert =
        self_signed(key, "CN=SCEP SIGNER", &[9], (NOW - 60, NOW + 3600), DigestAlg::Sha256, SelfSignedRole::Signer)
            .unwrap();
    Client { key, signer_cert, csr: request.build(key).unwrap() }
}

fn options(cipher: Cipher, digest: DigestAlg, transport: KeyTransport, identifier: IdentifierKind) -> RequestOptions {
    RequestOptions {
        envelope: EnvelopeOptions { cipher, transport, identifier },
        policy: policy(cipher.is_legacy()),
        digest,
        signer_identifier: identifier,
    }
}

/// AES-128, SHA-256, PKCS#1 v1.5, issuerAndSerialNumber: what a modern client sends by default.
fn modern() -> RequestOptions {
    options(Cipher::Aes128Cbc, DigestAlg::Sha256, KeyTransport::RsaPkcs1v15, IdentifierKind::IssuerAndSerialNumber)
}

fn csr_request() -> CsrRequest {
    CsrRequest {
        subject: "CN=laptop-42,O=Example".into(),
        sans: vec![San::Dns("laptop-42.example.com".into()), San::Email("dev@example.com".into())],
        challenge: Some("abc-123".into()),
        digest: DigestAlg::Sha256,
        digital_signature: true,
        key_encipherment: true,
    }
}

/// The server side of one exchange: open, decide with `decide`, answer.
fn serve(
    message: &[u8],
    legacy: bool,
    decide: impl FnOnce(&server::RequestFacts) -> Result<Option<Certificate>, ScepError>,
) -> Vec<u8> {
    serve_with(message, legacy, None, decide)
}

/// [`serve`], answering a SUCCESS with `transport` instead of in kind when given (a server that does not).
fn serve_with(
    message: &[u8],
    legacy: bool,
    transport: Option<KeyTransport>,
    decide: impl FnOnce(&server::RequestFacts) -> Result<Option<Certificate>, ScepError>,
) -> Vec<u8> {
    let ca = scepkit_ca();
    let incoming = server::read_request(message).unwrap();
    let signer = Signer {
        key: &ca.key,
        certificate: &ca.cert,
        digest: DigestAlg::Sha256,
        identifier: IdentifierKind::IssuerAndSerialNumber,
    };
    match incoming.open(&[Recipient { certificate: Some(&ca.cert), key: &ca.key }], accept(legacy), &RustCrypto) {
        Err(e) => {
            cert_rep_by(&incoming, Reply::from(&e), &signer, None, &Crypto::rust(policy(legacy)), &mut OsRng).unwrap()
        }
        Ok(facts) => {
            let in_kind = ReplyEnvelope::in_kind(&facts);
            let envelope = Some(ReplyEnvelope { transport: transport.unwrap_or(in_kind.transport), ..in_kind });
            let reply = match decide(&facts) {
                Err(e) => Reply::from(&e),
                Ok(None) => Reply::Pending,
                Ok(Some(ref issued)) => {
                    return cert_rep_by(
                        &incoming,
                        Reply::Issued { certificates: vec![issued, &ca.cert] },
                        &signer,
                        envelope,
                        &Crypto::rust(policy(legacy)),
                        &mut OsRng,
                    )
                    .unwrap()
                }
            };
            cert_rep_by(&incoming, reply, &signer, envelope, &Crypto::rust(policy(legacy)), &mut OsRng).unwrap()
        }
    }
}

/// A CertRep signed by `signer`'s key at hand.
fn cert_rep_by(
    incoming: &server::IncomingRequest,
    reply: Reply<'_>,
    signer: &Signer<'_>,
    envelope: Option<ReplyEnvelope>,
    crypto: &Crypto<'_>,
    rng: &mut OsRng,
) -> Result<Vec<u8>, ScepError> {
    use scepkit::keys::Unsigned;
    let by = scepkit::signed::SignedBy {
        certificate: signer.certificate,
        digest: signer.digest,
        identifier: signer.identifier,
    };
    server::cert_rep(incoming, reply, &by, envelope, crypto, rng)?.sign_with(signer.key)
}

fn issue_for(csr: &CsrFacts, serial: u8) -> Certificate {
    let ca = scepkit_ca();
    let opts = IssueOptions {
        serial: vec![serial],
        subject: csr.subject.clone(),
        not_before: NOW - 60,
        not_after: NOW + 365 * 86400,
        digest: DigestAlg::Sha256,
        sans: csr.sans.clone(),
        digital_signature: true,
        key_encipherment: true,
        client_auth: true,
    };
    use scepkit::keys::Unsigned;
    issue::issue(issue::stored_public_key(&csr.spki_der).unwrap(), &opts, &ca.cert).unwrap().sign_with(&ca.key).unwrap()
}

fn ca_certs() -> CaCertificates {
    let (_, body) = ca_cert_response(&scepkit_ca().cert, None).unwrap();
    CaCertificates::parse(&body).unwrap()
}

#[test]
fn pkcsreq_round_trips_for_every_cipher_digest_transport_and_identifier() {
    let ca = ca_certs();
    let c = client(1, &csr_request());
    let spki = CsrFacts::from_der(&c.csr, &RustCrypto).unwrap().spki_der;
    let cases = [
        (Cipher::Aes128Cbc, DigestAlg::Sha256, KeyTransport::RsaPkcs1v15, IdentifierKind::IssuerAndSerialNumber),
        (Cipher::Aes192Cbc, DigestAlg::Sha384, KeyTransport::RsaOaepSha1, IdentifierKind::SubjectKeyIdentifier),
        (Cipher::Aes256Cbc, DigestAlg::Sha512, KeyTransport::RsaOaepSha256, IdentifierKind::IssuerAndSerialNumber),
        (Cipher::DesEde3Cbc, DigestAlg::Sha1, KeyTransport::RsaPkcs1v15, IdentifierKind::SubjectKeyIdentifier),
    ];
    for (cipher, digest, transport, id) in cases {
        let legacy = cipher.is_legacy();
        let requester = Requester { key: c.key, certificate: &c.signer_cert };
        let req = client::certificate_request(
            &c.csr,
            MessageType::PkcsReq,
            None,
            &requester,
            &ca,
            options(cipher, digest, transport, id),
            &mut OsRng,
        )
        .unwrap();
        let reply = serve(&req.message, legacy, |facts| {
            assert_eq!((facts.cipher, facts.digest, facts.key_transport), (cipher, digest, transport));
            let csr = facts.csr.as_ref().unwrap();
            assert_eq!(csr.challenge.as_deref(), Some("abc-123"));
            assert_eq!(scepkit::names::seat_id(csr, "subject.common_name").unwrap(), "laptop-42");
            assert_eq!(scepkit::names::seat_id(csr, "san.dnsname").unwrap(), "laptop-42.example.com");
            Ok(Some(issue_for(csr, 7)))
        });
        // Answered in kind: the request's cipher (3DES for 3DES) and key transport (OAEP for OAEP).
        let content = scepkit::signed::SignedMessage::parse(&reply).unwrap().content.unwrap();
        let opened = scepkit::envelope::open(
            &content,
            &[Recipient { certificate: Some(&c.signer_cert), key: c.key }],
            policy(legacy),
        )
        .unwrap();
        assert_eq!((opened.cipher, opened.transport), (cipher, transport));
        match client::open_cert_rep(&reply, &req, &requester, &ca, Some(&spki), crypto(legacy)).unwrap() {
            CertRepOutcome::Issued { certificate, chain } => {
                assert_eq!(certificate.tbs_certificate.subject.to_string(), "CN=laptop-42,O=Example");
                assert_eq!(chain, vec![scepkit_ca().cert.clone()]);
            }
            other => panic!("{cipher:?}: {other:?}"),
        }
    }
}

#[test]
fn transaction_id_defaults_to_hex_sha256_of_the_key() {
    let c = client(1, &csr_request());
    let requester = Requester { key: c.key, certificate: &c.signer_cert };
    let req =
        client::certificate_request(&c.csr, MessageType::PkcsReq, None, &requester, &ca_certs(), modern(), &mut OsRng)
            .unwrap();
    let spki = CsrFacts::from_der(&c.csr, &RustCrypto).unwrap().spki_der;
    assert_eq!(req.transaction_id, base16ct::lower::encode_string(&DigestAlg::Sha256.digest(&spki)));
}

#[test]
fn failure_reaches_the_client_with_fail_info_text_and_resolution() {
    let ca = ca_certs();
    let c = client(1, &csr_request());
    let requester = Requester { key: c.key, certificate: &c.signer_cert };
    let opts = modern();
    let req =
        client::certificate_request(&c.csr, MessageType::PkcsReq, None, &requester, &ca, opts, &mut OsRng).unwrap();
    let reply = serve(&req.message, false, |_| Err(ScepError::challenge_invalid()));
    let CertRepOutcome::Failed(e) = client::open_cert_rep(&reply, &req, &requester, &ca, None, crypto(false)).unwrap()
    else {
        panic!("not a failure")
    };
    assert_eq!(e.fail_info, FailInfo::BadRequest);
    assert_eq!(e.message, "Challenge password is invalid - does not match the value configured by the Administrator");
    assert_eq!(e.resolution, "use the valid, unredeemed enrollment code of that seat");
    assert_eq!(e.kind, ErrorKind::Refused);
}

#[test]
fn legacy_algorithms_are_refused_with_badalg_on_a_modern_profile() {
    let ca = ca_certs();
    let c = client(1, &csr_request());
    let requester = Requester { key: c.key, certificate: &c.signer_cert };
    for (cipher, digest) in [(Cipher::DesEde3Cbc, DigestAlg::Sha256), (Cipher::Aes128Cbc, DigestAlg::Sha1)] {
        let mut opts = options(cipher, digest, KeyTransport::RsaPkcs1v15, IdentifierKind::IssuerAndSerialNumber);
        opts.policy = AlgorithmPolicy::Legacy;
        let req =
            client::certificate_request(&c.csr, MessageType::PkcsReq, None, &requester, &ca, opts, &mut OsRng).unwrap();
        let reply = serve(&req.message, false, |_| panic!("must not reach policy"));
        let CertRepOutcome::Failed(e) =
            client::open_cert_rep(&reply, &req, &requester, &ca, None, crypto(true)).unwrap()
        else {
            panic!("not a failure")
        };
        assert_eq!(e.fail_info, FailInfo::BadAlg, "{cipher:?}/{digest:?}");
    }
}

#[test]
fn pending_then_certpoll_then_success() {
    let ca = ca_certs();
    let c = client(2, &csr_request());
    let requester = Requester { key: c.key, certificate: &c.signer_cert };
    let opts =
        options(Cipher::Aes256Cbc, DigestAlg::Sha256, KeyTransport::RsaPkcs1v15, IdentifierKind::IssuerAndSerialNumber);
    let spki = CsrFacts::from_der(&c.csr, &RustCrypto).unwrap().spki_der;
    let req =
        client::certificate_request(&c.csr, MessageType::PkcsReq, None, &requester, &ca, opts, &mut OsRng).unwrap();
    let mut held = None;
    let reply = serve(&req.message, false, |facts| {
        held = facts.csr.clone();
        Ok(None)
    });
    assert!(matches!(
        client::open_cert_rep(&reply, &req, &requester, &ca, Some(&spki), crypto(false)).unwrap(),
        CertRepOutcome::Pending
    ));

    let subject: x509_cert::name::Name = "CN=laptop-42,O=Example".parse().unwrap();
    let poll = client::cert_poll(&req.transaction_id, &subject, &requester, &ca, opts, &mut OsRng).unwrap();
    assert_eq!(poll.transaction_id, req.transaction_id);
    assert_ne!(poll.sender_nonce, req.sender_nonce);
    let reply = serve(&poll.message, false, |facts| {
        assert_eq!(facts.message_type, MessageType::CertPoll);
        assert_eq!(facts.transaction_id, req.transaction_id);
        assert_eq!(facts.poll.as_ref().unwrap().1, "CN=laptop-42,O=Example");
        Ok(Some(issue_for(held.as_ref().unwrap(), 8)))
    });
    assert!(matches!(
        client::open_cert_rep(&reply, &poll, &requester, &ca, Some(&spki), crypto(false)).unwrap(),
        CertRepOutcome::Issued { .. }
    ));
}

#[test]
fn renewal_is_signed_by_the_current_certificate() {
    let ca = ca_certs();
    let first = client(1, &csr_request());
    let current = issue_for(&CsrFacts::from_der(&first.csr, &RustCrypto).unwrap(), 10);
    let renewal = client(3, &csr_request());
    // Signed with the old key and certificate, asking for a new key.
    let requester = Requester { key: first.key, certificate: &current };
    let opts = modern();
    let req =
        client::certificate_request(&renewal.csr, MessageType::RenewalReq, None, &requester, &ca, opts, &mut OsRng)
            .unwrap();
    let spki = CsrFacts::from_der(&renewal.csr, &RustCrypto).unwrap().spki_der;
    let reply = serve(&req.message, false, |facts| {
        assert_eq!(facts.message_type, MessageType::RenewalReq);
        assert!(!facts.signer.self_signed);
        assert_eq!(facts.signer.serial, "0a");
        Ok(Some(issue_for(facts.csr.as_ref().unwrap(), 11)))
    });
    let CertRepOutcome::Issued { certificate, .. } =
        client::open_cert_rep(&reply, &req, &requester, &ca, Some(&spki), crypto(false)).unwrap()
    else {
        panic!()
    };
    assert_eq!(certificate.tbs_certificate.serial_number.as_bytes(), &[11]);
}

#[test]
fn getcert_and_getcrl_carry_issuer_and_serial() {
    let ca = ca_certs();
    let c = client(1, &csr_request());
    let requester = Requester { key: c.key, certificate: &c.signer_cert };
    let opts = modern();
    let issued = issue_for(&CsrFacts::from_der(&c.csr, &RustCrypto).unwrap(), 12);
    let ias = scepkit::wire::IssuerAndSerialNumber {
        issuer: issued.tbs_certificate.issuer.clone(),
        serial_number: issued.tbs_certificate.serial_number.clone(),
    };
    let req = client::get_cert_or_crl(MessageType::GetCert, &ias, &requester, &ca, opts, &mut OsRng).unwrap();
    let reply = serve(&req.message, false, |facts| {
        assert_eq!(
            facts.issuer_and_serial.as_ref().unwrap(),
            &("CN=scepkit test CA,O=scepkit".to_owned(), "0c".to_owned())
        );
        Ok(Some(issued.clone()))
    });
    let CertRepOutcome::Issued { certificate, .. } =
        client::open_cert_rep(&reply, &req, &requester, &ca, None, crypto(false)).unwrap()
    else {
        panic!()
    };
    assert_eq!(certificate, issued);

    let req = client::get_cert_or_crl(MessageType::GetCrl, &ias, &requester, &ca, opts, &mut OsRng).unwrap();
    let incoming = server::read_request(&req.message).unwrap();
    let facts = incoming
        .open(
            &[Recipient { certificate: Some(&scepkit_ca().cert), key: &scepkit_ca().key }],
            accept(false),
            &RustCrypto,
        )
        .unwrap();
    assert_eq!(facts.message_type, MessageType::GetCrl);
    let fake_crl = der::asn1::OctetString::new(vec![1, 2, 3]).unwrap().to_der().unwrap();
    let signer = Signer {
        key: &scepkit_ca().key,
        certificate: &scepkit_ca().cert,
        digest: DigestAlg::Sha256,
        identifier: IdentifierKind::IssuerAndSerialNumber,
    };
    let reply = cert_rep_by(
        &incoming,
        Reply::Crl { crls: vec![&fake_crl] },
        &signer,
        Some(ReplyEnvelope::in_kind(&facts)),
        &Crypto::rust(policy(false)),
        &mut OsRng,
    )
    .unwrap();
    let CertRepOutcome::Crl { crls } =
        client::open_cert_rep(&reply, &req, &requester, &ca, None, crypto(false)).unwrap()
    else {
        panic!()
    };
    assert_eq!(crls, vec![fake_crl]);
}

#[test]
fn a_certrep_for_another_transaction_or_nonce_is_refused() {
    let ca = ca_certs();
    let c = client(1, &csr_request());
    let requester = Requester { key: c.key, certificate: &c.signer_cert };
    let opts = modern();
    let a = client::certificate_request(&c.csr, MessageType::PkcsReq, None, &requester, &ca, opts, &mut OsRng).unwrap();
    let b = client::certificate_request(&c.csr, MessageType::PkcsReq, None, &requester, &ca, opts, &mut OsRng).unwrap();
    let reply_to_a = serve(&a.message, false, |_| Ok(None));
    let err = client::open_cert_rep(&reply_to_a, &b, &requester, &ca, None, crypto(false)).unwrap_err();
    assert_eq!(err.fail_info, FailInfo::BadMessageCheck);
    assert!(err.message.contains("recipientNonce"));
}

#[test]
fn a_certrep_signed_by_a_stranger_is_refused() {
    let ca = ca_certs();
    let c = client(1, &csr_request());
    let requester = Requester { key: c.key, certificate: &c.signer_cert };
    let opts = modern();
    let req =
        client::certificate_request(&c.csr, MessageType::PkcsReq, None, &requester, &ca, opts, &mut OsRng).unwrap();
    let incoming = server::read_request(&req.message).unwrap();
    let stranger_key = test_key(3);
    let stranger = self_signed(
        stranger_key,
        "CN=scepkit test CA,O=scepkit",
        &[1],
        (NOW - 60, NOW + 60),
        DigestAlg::Sha256,
        SelfSignedRole::Ca,
    )
    .unwrap();
    let signer = Signer {
        key: stranger_key,
        certificate: &stranger,
        digest: DigestAlg::Sha256,
        identifier: IdentifierKind::SubjectKeyIdentifier,
    };
    let reply =
        cert_rep_by(&incoming, Reply::Pending, &signer, None, &Crypto::rust(policy(false)), &mut OsRng).unwrap();
    assert_eq!(
        client::open_cert_rep(&reply, &req, &requester, &ca, None, crypto(false)).unwrap_err().fail_info,
        FailInfo::BadMessageCheck
    );
}

#[test]
fn caps_negotiation_picks_the_strongest_and_refuses_downgrades() {
    let ours = CaCaps::for_server(policy(false), false);
    assert_eq!(ours.render(), "AES\nPOSTPKIOperation\nRenewal\nSHA-256\nSHA-512\nSCEPStandard");
    assert!(!ours.render().contains("DES"));
    let n = ours.negotiate(policy(false), None, None).unwrap();
    assert_eq!((n.cipher, n.digest), (Cipher::Aes128Cbc, DigestAlg::Sha512));
    assert_eq!(ours.negotiate(policy(true), Some(Cipher::DesEde3Cbc), None).unwrap_err().kind, ErrorKind::Downgrade);
    assert_eq!(ours.negotiate(policy(true), None, Some(DigestAlg::Sha1)).unwrap_err().kind, ErrorKind::Downgrade);
    // No capability names SHA-384: asked for by name, a SHA-2 server gets it; a SHA-1-only one does not.
    assert_eq!(ours.negotiate(policy(false), None, Some(DigestAlg::Sha384)).unwrap().digest, DigestAlg::Sha384);
    assert_eq!(
        CaCaps::parse("DES3\nSHA-1").negotiate(policy(true), None, Some(DigestAlg::Sha384)).unwrap_err().fail_info,
        FailInfo::BadAlg
    );
    let crlf = CaCaps::parse("DES3\r\nSHA-1\r\n");
    assert_eq!(crlf.negotiate(policy(false), None, None).unwrap_err().fail_info, FailInfo::BadAlg);
    let n = crlf.negotiate(policy(true), None, None).unwrap();
    assert_eq!((n.cipher, n.digest, n.post), (Cipher::DesEde3Cbc, DigestAlg::Sha1, false));
    assert_eq!(CaCaps::parse("").negotiate(policy(true), None, None).unwrap_err().fail_info, FailInfo::BadAlg);
    assert_eq!(
        CaCaps::for_server(policy(true), true).render(),
        "AES\nDES3\nGetNextCACert\nPOSTPKIOperation\nRenewal\nSHA-1\nSHA-256\nSHA-512\nSCEPStandard"
    );
}

#[test]
fn getcacert_with_ra_is_a_degenerate_pkcs7_and_the_ra_is_the_recipient() {
    let ca = scepkit_ca();
    let ra_key = test_key(2);
    let ra = issue::ra_certificate(
        ra_key,
        "CN=scepkit RA",
        &[2],
        (NOW - 60, NOW + 86400),
        &ca.cert,
        &ca.key,
        DigestAlg::Sha256,
    )
    .unwrap();
    let (ct, body) = ca_cert_response(&ca.cert, Some(&ra)).unwrap();
    assert_eq!(ct, "application/x-x509-ca-ra-cert");
    let parsed = CaCertificates::parse(&body).unwrap();
    assert_eq!(parsed.ca, ca.cert);
    assert_eq!(parsed.recipient, ra);
    let fp = scepkit::caps::fingerprint(&ca.cert).unwrap();
    parsed.check_fingerprint(&fp).unwrap();
    let colons: String =
        fp.as_bytes().chunks(2).map(|c| std::str::from_utf8(c).unwrap().to_uppercase()).collect::<Vec<_>>().join(":");
    parsed.check_fingerprint(&colons).unwrap();
    assert_eq!(parsed.check_fingerprint(&"00".repeat(32)).unwrap_err().kind, ErrorKind::FingerprintMismatch);
}

#[test]
fn a_csr_whose_signature_fails_is_badmessagecheck() {
    let c = client(1, &csr_request());
    let mut bad = c.csr.clone();
    let n = bad.len();
    bad[n - 5] ^= 0x01;
    let err = CsrFacts::from_der(&bad, &RustCrypto).unwrap_err();
    assert_eq!(err.fail_info, FailInfo::BadMessageCheck);
}

#[test]
fn csr_from_profile_substitutes_variables() {
    let profile = scepkit::profile::ScepProfile::from_json(&serde_json::json!({
        "name": "laptops", "folder": "Shared", "scep_challenge": { "dynamic": {} }, "ca_identity_name": "dev-ca",
        "subject": "CN=$USERNAME,O=Example", "algorithm": { "rsa": { "rsa_nbits": "2048" } }, "digest": "sha348",
        "certificate_attributes": { "dnsname": "$USERNAME.example.com" }, "scep_url": "/scep",
        "use_as_digital_signature": true, "use_for_key_encipherment": false
    }))
    .unwrap();
    let req =
        CsrRequest::from_profile(&profile, &[("USERNAME".into(), "laptop-42".into())], Some("code".into())).unwrap();
    assert_eq!(req.subject, "CN=laptop-42,O=Example");
    assert_eq!(req.sans, vec![San::Dns("laptop-42.example.com".into())]);
    assert_eq!(req.digest, DigestAlg::Sha384);
    let facts = CsrFacts::from_der(&req.build(test_key(1)).unwrap(), &RustCrypto).unwrap();
    assert!(facts.digital_signature && !facts.key_encipherment);
    assert_eq!(facts.challenge.as_deref(), Some("code"));
    // A value cannot smuggle in another RDN.
    let req = CsrRequest::from_profile(&profile, &[("USERNAME".into(), "x,O=Evil".into())], None).unwrap();
    assert_eq!(
        CsrFacts::from_der(&req.build(test_key(1)).unwrap(), &RustCrypto).unwrap().common_name.as_deref(),
        Some("x,O=Evil")
    );
}

#[test]
fn a_transaction_id_that_cannot_be_echoed_as_printablestring_is_malformed() {
    use der::asn1::{Any, Utf8StringRef};
    let mut attrs = scepkit::message::ScepAttributes {
        message_type: Some(MessageType::PkcsReq),
        transaction_id: "ok".into(),
        sender_nonce: Some(vec![1; 16]),
        ..Default::default()
    }
    .to_attributes()
    .unwrap();
    let tid = attrs.iter_mut().find(|a| a.oid == scepkit::message::ID_TRANSACTION_ID).unwrap();
    *tid = scepkit::wire::single_valued(tid.oid, Any::encode_from(&Utf8StringRef::new("abc`def").unwrap()).unwrap())
        .unwrap();
    let err = scepkit::message::ScepAttributes::from_attributes(&attrs).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
}

#[test]
fn what_a_host_signs_or_decrypts_is_handed_out_once_and_finishes_as_the_key_at_hand_builds_it() {
    use scepkit::keys::{self, KeyOperation, PrivateKeyOps, Unsigned};
    let c = client(1, &csr_request());
    let spki = c.key.public_key().clone();
    let unsigned = csr_request().unsigned(spki.clone()).unwrap();
    let KeyOperation::Sign { digest, data } = unsigned.operation() else { panic!() };
    assert_eq!(digest, DigestAlg::Sha256);
    // The host signs the CertificationRequestInfo; PKCS#1 v1.5 is deterministic, so the CSR is byte for byte
    // the one the key at hand builds.
    let signature = c.key.sign(digest, &data).unwrap();
    assert_eq!(unsigned.finish(&signature).unwrap(), c.csr);
    let tbs = issue::unsigned_self_signed(
        spki,
        "CN=SCEP SIGNER",
        &[9],
        (NOW - 60, NOW + 3600),
        digest,
        SelfSignedRole::Signer,
    )
    .unwrap();
    let signature = keys::perform(c.key, &tbs.operation()).unwrap();
    assert_eq!(tbs.finish(&signature).unwrap(), c.signer_cert);

    // A SUCCESS stops at its envelope: the host decrypts the content-encryption key, the core opens the rest.
    let ca = ca_certs();
    let opts = options(
        Cipher::Aes128Cbc,
        DigestAlg::Sha256,
        KeyTransport::RsaOaepSha256,
        IdentifierKind::IssuerAndSerialNumber,
    );
    let builder =
        client::RequestBuilder { signer_certificate: &c.signer_cert, ca: &ca, options: opts, public_ops: &RustCrypto };
    let unsigned = builder.certificate_request(&c.csr, MessageType::PkcsReq, None, &mut OsRng).unwrap();
    let req = unsigned.sign_with(c.key).unwrap();
    let reply = serve(&req.message, false, |facts| Ok(Some(issue_for(facts.csr.as_ref().unwrap(), 12))));
    let client::CertRep::Sealed(sealed) =
        client::read_cert_rep(&reply, &req, &c.signer_cert, &ca, crypto(false)).unwrap()
    else {
        panic!("not sealed")
    };
    let KeyOperation::Decrypt { transport: KeyTransport::RsaOaepSha256, ciphertext } = sealed.operation() else {
        panic!()
    };
    let content_key = c.key.decrypt(KeyTransport::RsaOaepSha256, &ciphertext).unwrap();
    let spki = CsrFacts::from_der(&c.csr, &RustCrypto).unwrap().spki_der;
    let CertRepOutcome::Issued { certificate, .. } =
        sealed.finish(&content_key, &ca, Some(&spki), &RustCrypto).unwrap()
    else {
        panic!()
    };
    assert_eq!(certificate.tbs_certificate.serial_number.as_bytes(), &[12]);
}

mod enrollment {
    //! The whole procedure as the step machine runs it, answered the way a host would.
    use super::*;
    use scepkit::client::enrollment::{
        Answer, Enrolled, EnrollmentOptions, KeyRef, NewKey, Operation, OtpServer, Purpose, Step,
    };
    use scepkit::client::http::{HttpRequest, HttpResponse, Operation as HttpOperation};
    use scepkit::client::{Enrollment, Failure};
    use scepkit::keys::{KeyOperation, PrivateKeyOps, PublicAnswer, PublicOperation, RsaKey, RustCrypto};

    /// A host for the machine: keys at hand, an in-process CA behind "HTTP", and a log of what it was asked.
    #[derive(Default)]
    struct Host {
        new: Option<&'static RsaKey>,
        current: Option<&'static RsaKey>,
        /// (key, "sign" | "decrypt") for every key operation, in order.
        key_operations: Vec<(KeyRef, &'static str)>,
        progress: Vec<&'static str>,
        /// What reached the CA: message types of PKIOperations.
        sent: Vec<MessageType>,
        /// How many steps were started before the first wait.
        started_before_first_wait: Option<usize>,
        /// Keys generated on request.
        generated: usize,
        /// A signature to hand back instead of the right one (a host signing with the wrong key).
        wrong_signature: bool,
        /// The headers of each request to the OTP server.
        otp_requests: Vec<Vec<(&'static str, String)>>,
        /// "verify" | "encrypt" for every public-key operation, in order.
        public_operations: Vec<&'static str>,
        /// Verifications after which every other one is answered "does not verify" (a forged CertRep).
        verifications_until_forged: Option<usize>,
        /// How the CA transports the reply's content key, when not in kind.
        reply_transport: Option<KeyTransport>,
        /// The one verification (counted from 0) answered "does not verify".
        refused_verification: Option<usize>,
        /// Every public-key operation answered with this instead (a host that answers wrongly).
        public_answer: Option<Answer>,
        /// Every operation started, in order: "http", "sign", "decrypt", "verify", "encrypt", "sleep", "generate".
        started: Vec<&'static str>,
        /// The bytes of every signature asked for.
        signed: Vec<Vec<u8>>,
    }

    type Decide<'a> = dyn FnMut(&server::RequestFacts) -> Result<Option<Certificate>, ScepError> + 'a;

    impl Host {
        fn ca(&mut self, request: &HttpRequest, decide: &mut Decide<'_>) -> Answer {
            let body = match request.operation {
                HttpOperation::GetCaCaps => CaCaps::for_server(policy(false), false).render().into_bytes(),
                HttpOperation::GetCaCert => ca_cert_response(&scepkit_ca().cert, None).unwrap().1,
                HttpOperation::PkiOperation => {
                    let message = request.body.clone().unwrap();
                    self.sent.push(server::read_request(&message).unwrap().attributes.message_type.unwrap());
                    serve_with(&message, false, self.reply_transport, |facts| decide(facts))
                }
                // An NDES page in UTF-16LE, to the right Basic credentials only ("mdm:s3cret").
                HttpOperation::GetChallenge => {
                    self.otp_requests.push(request.headers.clone());
                    let signed_in = request.headers.contains(&("authorization", "Basic bWRtOnMzY3JldA==".into()));
                    if !signed_in {
                        return Answer::Http(HttpResponse {
                            status: 401,
                            content_type: None,
                            body: b"Unauthorized".to_vec(),
                        });
                    }
                    let page = "<HTML><P> The enrollment challenge password is: <B> 3C22E6F8A0B6C3B5 </B> </HTML>";
                    let body = [0xff, 0xfe].into_iter().chain(page.encode_utf16().flat_map(u16::to_le_bytes)).collect();
                    return Answer::Http(HttpResponse {
                        status: 200,
                        content_type: Some("text/html; charset=utf-16".into()),
                        body,
                    });
                }
            };
            Answer::Http(HttpResponse { status: 200, content_type: Some("application/x-pki-message".into()), body })
        }

        fn run(&mut self, mut machine: Enrollment, decide: &mut Decide<'_>) -> Result<Enrolled, Failure> {
            let mut started = 0;
            loop {
                match machine.next_step()? {
                    Step::Progress(p) => self.progress.push(p.step.name()),
                    Step::Await(_) => {
                        self.started_before_first_wait.get_or_insert(started);
                    }
                    Step::Done(enrolled) => return Ok(enrolled),
                    Step::Start(id, operation) => {
                        started += 1;
                        self.started.push(match &operation {
                            Operation::Http(_) => "http",
                            Operation::Key { operation: KeyOperation::Sign { .. }, .. } => "sign",
                            Operation::Key { operation: KeyOperation::Decrypt { .. }, .. } => "decrypt",
                            Operation::Public(PublicOperation::Verify { .. }) => "verify",
                            Operation::Public(PublicOperation::Encrypt { .. }) => "encrypt",
                            Operation::Sleep { .. } => "sleep",
                            Operation::GenerateKey { .. } => "generate",
                        });
                        let answer = match operation {
                            Operation::Http(request) => self.ca(&request, decide),
                            Operation::Sleep { .. } => Answer::Slept,
                            Operation::Public(_) if self.public_answer.is_some() => self.public_answer.clone().unwrap(),
                            Operation::GenerateKey { .. } => {
                                self.generated += 1;
                                let key = self.new.expect("a key to hand out");
                                Answer::PublicKey(key.public_key().clone().to_der().unwrap())
                            }
                            Operation::Public(operation) => {
                                let verifications = self.public_operations.iter().filter(|o| **o == "verify").count();
                                let forged = self.verifications_until_forged.is_some_and(|n| verifications >= n)
                                    || self.refused_verification == Some(verifications);
                                self.public_operations.push(match operation {
                                    PublicOperation::Verify { .. } => "verify",
                                    PublicOperation::Encrypt { .. } => "encrypt",
                                });
                                match scepkit::keys::perform_public(&RustCrypto, &operation, &mut OsRng).unwrap() {
                                    PublicAnswer::Verified(good) => Answer::Verified(good && !forged),
                                    answer => answer.into(),
                                }
                            }
                            Operation::Key { key, operation } => {
                                let held = match key {
                                    KeyRef::New => self.new.unwrap(),
                                    KeyRef::Current => self.current.unwrap(),
                                };
                                match operation {
                                    KeyOperation::Sign { digest, data } => {
                                        self.signed.push(data.clone());
                                        self.key_operations.push((key, "sign"));
                                        let by = if self.wrong_signature { test_key(3) } else { held };
                                        Answer::Signature(by.sign(digest, &data).unwrap())
                                    }
                                    KeyOperation::Decrypt { transport, ciphertext } => {
                                        self.key_operations.push((key, "decrypt"));
                                        Answer::Decrypted(held.decrypt(transport, &ciphertext).unwrap().into())
                                    }
                                }
                            }
                        };
                        machine.answer(id, answer);
                    }
                }
            }
        }
    }

    fn enroll(subject: &str) -> EnrollmentOptions {
        EnrollmentOptions::new("http://scep.test/scep", Purpose::Enroll { subject: subject.into() }, NOW)
    }

    fn issue(facts: &server::RequestFacts) -> Result<Option<Certificate>, ScepError> {
        Ok(Some(issue_for(facts.csr.as_ref().unwrap(), 20)))
    }

    #[test]
    fn an_enrollment_asks_for_three_signatures_and_one_decryption_and_ends_verified() {
        let options = EnrollmentOptions { key_transport: KeyTransport::RsaOaepSha256, ..enroll("CN=laptop-7") };
        let mut host = Host { new: Some(test_key(2)), ..Default::default() };
        let enrolled = host.run(Enrollment::new(options, &mut OsRng).unwrap(), &mut issue).unwrap();
        assert_eq!(enrolled.certificate.tbs_certificate.subject.to_string(), "CN=laptop-7");
        assert_eq!(enrolled.chain, vec![scepkit_ca().cert.clone()]);
        assert_eq!(enrolled.transaction_id.len(), 64);
        assert_eq!(host.progress, ["key", "caps", "cacert", "request", "send", "done"]);
        // CSR, transient signer certificate, PKIMessage; then the reply's content key, each asked for once.
        assert_eq!(
            host.key_operations,
            [(KeyRef::New, "sign"), (KeyRef::New, "sign"), (KeyRef::New, "sign"), (KeyRef::New, "decrypt")]
        );
        assert_eq!(host.sent, [MessageType::PkcsReq]);
        assert_eq!(host.started_before_first_wait, Some(3), "GetCACaps, GetCACert and the key start together");
        assert_eq!(host.generated, 1);
        // The host's RSA checks its own three signatures, transports the content key to the CA, and checks the
        // CertRep's signature and the certificate's: each asked for once.
        assert_eq!(host.public_operations, ["verify", "verify", "encrypt", "verify", "verify", "verify"]);
    }

    #[test]
    fn a_reply_that_asks_an_oaep_key_to_decrypt_pkcs1_v1_5_is_refused_as_a_downgrade() {
        let options = EnrollmentOptions { key_transport: KeyTransport::RsaOaepSha256, ..enroll("CN=laptop-9") };
        let mut host =
            Host { new: Some(test_key(2)), reply_transport: Some(KeyTransport::RsaPkcs1v15), ..Default::default() };
        let failure = host.run(Enrollment::new(options, &mut OsRng).unwrap(), &mut issue).unwrap_err();
        assert_eq!(failure.error.kind, ErrorKind::Downgrade, "{}", failure.error.message);
        assert!(!host.key_operations.iter().any(|(_, op)| *op == "decrypt"), "the key decrypts nothing");
        // Asked for PKCS#1 v1.5, the same reply is opened.
        let mut host =
            Host { new: Some(test_key(2)), reply_transport: Some(KeyTransport::RsaPkcs1v15), ..Default::default() };
        host.run(Enrollment::new(enroll("CN=laptop-9"), &mut OsRng).unwrap(), &mut issue).unwrap();
    }

    /// The machine asks for a public-key check and goes on as if it passed until it is answered (keys::Deferred):
    /// whichever check is refused, nothing but other public-key operations was started after it asking, nothing
    /// built on it reaches the CA, and no reply is decrypted before its signature is checked.
    #[test]
    fn whichever_verification_is_refused_nothing_that_depends_on_it_is_started() {
        for transport in [KeyTransport::RsaOaepSha256, KeyTransport::RsaPkcs1v15] {
            // Our three signatures (CSR, signer certificate, PKIMessage), the CertRep's, the certificate's.
            for refused in 0..5 {
                let options = EnrollmentOptions { key_transport: transport, ..enroll("CN=laptop-10") };
                let mut host =
                    Host { new: Some(test_key(2)), refused_verification: Some(refused), ..Default::default() };
                let failure = host.run(Enrollment::new(options, &mut OsRng).unwrap(), &mut issue).unwrap_err();
                assert_eq!(failure.error.fail_info, FailInfo::BadMessageCheck, "{}", failure.error.message);
                let at = host.started.iter().enumerate().filter(|(_, s)| **s == "verify").nth(refused).unwrap().0;
                let after: Vec<_> =
                    host.started[at + 1..].iter().filter(|s| !matches!(**s, "verify" | "encrypt")).collect();
                assert!(after.is_empty(), "{transport:?}, check {refused} refused, then started {after:?}");
                assert_eq!(host.sent.len(), usize::from(refused > 2), "{transport:?}, check {refused}");
                // The certificate (check 4) is inside the envelope: only it is checked after the decryption.
                assert_eq!(host.started.contains(&"decrypt"), refused == 4, "{transport:?}, check {refused}");
            }
        }
    }

    #[test]
    fn pending_three_times_each_message_is_built_signed_and_sent_once() {
        let mut calls = 0;
        let mut csr = None;
        let mut decide = |facts: &server::RequestFacts| {
            calls += 1;
            csr = csr.take().or(facts.csr.clone());
            Ok((calls > 3).then(|| issue_for(csr.as_ref().unwrap(), 21)))
        };
        let mut host = Host { new: Some(test_key(2)), ..Default::default() };
        host.run(Enrollment::new(enroll("CN=laptop-11"), &mut OsRng).unwrap(), &mut decide).unwrap();
        assert_eq!(
            host.sent,
            [MessageType::PkcsReq, MessageType::CertPoll, MessageType::CertPoll, MessageType::CertPoll]
        );
        // CSR, signer certificate, PKCSReq, three CertPolls; each different, none asked for twice.
        assert_eq!(host.signed.len(), 6);
        assert!(host.signed.iter().enumerate().all(|(i, a)| host.signed[..i].iter().all(|b| a != b)));
        assert_eq!(host.started.iter().filter(|s| **s == "decrypt").count(), 1);
        assert_eq!(host.started.iter().filter(|s| **s == "encrypt").count(), 4, "a content key per message");
    }

    #[test]
    fn a_host_that_answers_public_operations_wrongly_ends_the_enrollment_and_nothing_is_sent() {
        for answer in [Answer::Encrypted(vec![1, 2, 3]), Answer::Slept, Answer::Verified(false)] {
            let mut host = Host { new: Some(test_key(2)), public_answer: Some(answer.clone()), ..Default::default() };
            let failure =
                host.run(Enrollment::new(enroll("CN=laptop-12"), &mut OsRng).unwrap(), &mut issue).unwrap_err();
            assert!(host.sent.is_empty(), "{answer:?}: {}", failure.error.message);
            assert!(host.started.len() < 20, "{answer:?}: {:?}", host.started);
        }
    }

    #[test]
    fn a_certrep_whose_signature_the_host_does_not_verify_is_refused_and_nothing_is_decrypted() {
        let options = EnrollmentOptions { key_transport: KeyTransport::RsaOaepSha256, ..enroll("CN=laptop-8") };
        // The three signatures of our own verify; the CertRep's does not.
        let mut host = Host { new: Some(test_key(2)), verifications_until_forged: Some(3), ..Default::default() };
        let failure = host.run(Enrollment::new(options, &mut OsRng).unwrap(), &mut issue).unwrap_err();
        assert_eq!(failure.error.fail_info, FailInfo::BadMessageCheck, "{}", failure.error.message);
        assert!(failure.error.message.contains("signature does not verify"), "{}", failure.error.message);
        assert!(!host.key_operations.iter().any(|(_, op)| *op == "decrypt"), "no key opens a reply it could not check");
        assert_eq!(host.sent, [MessageType::PkcsReq]);
    }

    #[test]
    fn a_one_time_challenge_is_fetched_from_the_otp_server_once_the_ca_is_known_and_put_in_the_csr() {
        let otp = |password: &str| OtpServer {
            url: "https://scep.test/certsrv/mscep_admin/".into(),
            username: "mdm".into(),
            password: password.into(),
        };
        let mut challenges = Vec::new();
        let mut decide = |facts: &server::RequestFacts| {
            challenges.push(facts.csr.as_ref().unwrap().challenge.clone());
            issue(facts)
        };
        let options = EnrollmentOptions { challenge_from: Some(otp("s3cret")), ..enroll("CN=fw-1") };
        let mut host = Host { new: Some(test_key(2)), ..Default::default() };
        host.run(Enrollment::new(options, &mut OsRng).unwrap(), &mut decide).unwrap();
        assert_eq!(challenges, [Some("3C22E6F8A0B6C3B5".to_owned())]);
        assert_eq!(host.started_before_first_wait, Some(3), "the OTP only once the CA is known");
        assert!(host.otp_requests[0].iter().any(|(h, v)| *h == "accept" && v.starts_with("application/json")));

        // Wrong credentials: the OTP server's refusal, and nothing sent to the CA.
        let options = EnrollmentOptions { challenge_from: Some(otp("guess")), ..enroll("CN=fw-1") };
        let mut host = Host { new: Some(test_key(2)), ..Default::default() };
        let failure = host.run(Enrollment::new(options, &mut OsRng).unwrap(), &mut issue).unwrap_err();
        assert_eq!(failure.error.message, "The OTP server answered HTTP 401: Unauthorized");
        assert!(host.sent.is_empty());

        // A CA that is not the pinned one: the credentials are never sent.
        let pinned = EnrollmentOptions {
            fingerprint: Some("ab".repeat(32)),
            challenge_from: Some(otp("s3cret")),
            ..enroll("CN=fw-1")
        };
        let mut host = Host { new: Some(test_key(2)), ..Default::default() };
        assert!(host.run(Enrollment::new(pinned, &mut OsRng).unwrap(), &mut issue).is_err());
        assert!(host.otp_requests.is_empty());
        // Nor over plain http to another machine.
        let clear = OtpServer { url: "http://ndes.example/certsrv/mscep_admin/".into(), ..otp("s3cret") };
        let options = EnrollmentOptions { challenge_from: Some(clear), ..enroll("CN=fw-1") };
        let mut host = Host { new: Some(test_key(2)), ..Default::default() };
        let failure = host.run(Enrollment::new(options, &mut OsRng).unwrap(), &mut issue).unwrap_err();
        assert!(failure.error.message.contains("must be https"), "{}", failure.error.message);
        assert!(host.otp_requests.is_empty());
    }

    #[test]
    fn pending_is_polled_with_certpoll_under_the_same_transaction_until_issued() {
        let mut held = None;
        let mut polls = 0;
        let mut decide = |facts: &server::RequestFacts| {
            if let Some(csr) = &facts.csr {
                held = Some(csr.clone());
                return Ok(None);
            }
            polls += 1;
            Ok((polls == 2).then(|| issue_for(held.as_ref().unwrap(), 21)))
        };
        let mut host = Host { new: Some(test_key(2)), ..Default::default() };
        let machine = Enrollment::new(enroll("CN=approve-me"), &mut OsRng).unwrap();
        host.run(machine, &mut decide).unwrap();
        assert_eq!(host.sent, [MessageType::PkcsReq, MessageType::CertPoll, MessageType::CertPoll]);
        assert_eq!(
            host.progress,
            ["key", "caps", "cacert", "request", "send", "pending", "poll", "pending", "poll", "done"]
        );
        // Two CertPolls, each signed once.
        assert_eq!(host.key_operations.iter().filter(|(_, op)| *op == "sign").count(), 5);

        let mut host = Host { new: Some(test_key(2)), ..Default::default() };
        let machine = Enrollment::new(EnrollmentOptions { max_polls: 1, ..enroll("CN=waits") }, &mut OsRng).unwrap();
        let failure = host.run(machine, &mut |_: &server::RequestFacts| Ok(None)).unwrap_err();
        assert_eq!(failure.error.kind, ErrorKind::StillPending);
        assert_eq!(failure.transaction_id.unwrap().len(), 64);
    }

    #[test]
    fn a_renewal_signs_with_the_current_key_and_certifies_the_new_one() {
        let current_cert = issue_for(&CsrFacts::from_der(&client(1, &csr_request()).csr, &RustCrypto).unwrap(), 30);
        let purpose = Purpose::Renew { certificate: Box::new(current_cert), subject: None };
        let options = EnrollmentOptions::new("http://scep.test/scep", purpose, NOW);
        let mut host = Host { new: Some(test_key(3)), current: Some(test_key(1)), ..Default::default() };
        let enrolled = host.run(Enrollment::new(options, &mut OsRng).unwrap(), &mut issue).unwrap();
        assert_eq!(host.sent, [MessageType::RenewalReq]);
        assert_eq!(
            host.key_operations,
            [(KeyRef::New, "sign"), (KeyRef::Current, "sign"), (KeyRef::Current, "decrypt")]
        );
        assert_eq!(enrolled.certificate.tbs_certificate.subject_public_key_info, test_key(3).public_key().clone());
        assert_eq!(enrolled.certificate.tbs_certificate.subject.to_string(), "CN=laptop-42,O=Example");
    }

    #[test]
    fn a_host_that_signs_with_another_key_is_caught_before_anything_is_sent() {
        let mut host = Host { new: Some(test_key(2)), wrong_signature: true, ..Default::default() };
        let failure = host.run(Enrollment::new(enroll("CN=x"), &mut OsRng).unwrap(), &mut issue).unwrap_err();
        assert_eq!(failure.error.kind, ErrorKind::IntegrityCheck);
        assert!(failure.error.message.contains("CSR signature does not verify"), "{}", failure.error.message);
        assert!(host.sent.is_empty());
    }

    #[test]
    fn a_refusal_a_pin_mismatch_and_an_unreachable_server_end_with_what_a_person_needs() {
        let mut host = Host { new: Some(test_key(2)), ..Default::default() };
        let machine = Enrollment::new(enroll("CN=x"), &mut OsRng).unwrap();
        let failure =
            host.run(machine, &mut |_: &server::RequestFacts| Err(ScepError::challenge_invalid())).unwrap_err();
        assert_eq!((failure.error.kind, failure.error.fail_info), (ErrorKind::Refused, FailInfo::BadRequest));
        assert_eq!(failure.error.resolution, "use the valid, unredeemed enrollment code of that seat");
        assert_eq!(failure.transaction_id.unwrap().len(), 64);

        let mut host = Host { new: Some(test_key(2)), ..Default::default() };
        let options = EnrollmentOptions { fingerprint: Some("00".repeat(32)), ..enroll("CN=x") };
        let failure = host.run(Enrollment::new(options, &mut OsRng).unwrap(), &mut issue).unwrap_err();
        assert_eq!(failure.error.kind, ErrorKind::FingerprintMismatch);
        assert!(host.sent.is_empty() && host.key_operations.is_empty());

        let mut machine = Enrollment::new(enroll("CN=x"), &mut OsRng).unwrap();
        let failure = loop {
            match machine.next_step() {
                Ok(Step::Start(id, Operation::Http(_))) => {
                    machine.answer(id, Answer::Unreachable("fetch failed".into()))
                }
                Ok(Step::Start(id, Operation::GenerateKey { .. })) => {
                    machine.answer(id, Answer::PublicKey(test_key(2).public_key().clone().to_der().unwrap()))
                }
                Ok(_) => {}
                Err(failure) => break failure,
            }
        };
        assert_eq!(failure.error.kind, ErrorKind::Http);
        assert_eq!(failure.error.message, "Could not reach the SCEP server at http://scep.test: fetch failed");
        assert_eq!(failure.http.unwrap().url, "http://scep.test/scep?operation=GetCACaps");
    }

    #[test]
    fn a_given_key_is_not_generated_and_a_key_at_hand_runs_the_machine_alone() {
        let spki = test_key(2).public_key().clone().to_der().unwrap();
        let options = EnrollmentOptions { new_key: NewKey::Given { spki }, ..enroll("CN=given") };
        let mut host = Host { new: Some(test_key(2)), ..Default::default() };
        host.run(Enrollment::new(options, &mut OsRng).unwrap(), &mut issue).unwrap();
        assert_eq!(host.generated, 0);

        // `run` answers with the pure-Rust key, generating the new one itself.
        let mut keys = scepkit::client::enrollment::LocalKeys::default();
        let mut host = Host::default();
        let machine = Enrollment::new(enroll("CN=local"), &mut OsRng).unwrap();
        let enrolled = machine.run(&mut keys, |request| host.ca(request, &mut issue), |_| {}, &mut OsRng).unwrap();
        let new = keys.new.expect("generated");
        assert_eq!(enrolled.certificate.tbs_certificate.subject_public_key_info, new.public_key().clone());
    }
}

#[test]
fn key_transport_names_are_the_ones_serde_uses() {
    for t in [KeyTransport::RsaPkcs1v15, KeyTransport::RsaOaepSha1, KeyTransport::RsaOaepSha256] {
        assert_eq!(serde_json::to_value(t).unwrap(), t.name());
    }
}

#[test]
fn every_decryption_failure_reads_the_same() {
    // A bad RSA block and bad AES padding must not be told apart by the answer (no padding oracle).
    let c = client(1, &csr_request());
    for transport in [KeyTransport::RsaPkcs1v15, KeyTransport::RsaOaepSha256] {
        let options =
            EnvelopeOptions { cipher: Cipher::Aes128Cbc, transport, identifier: IdentifierKind::IssuerAndSerialNumber };
        let crypto = Crypto::rust(AlgorithmPolicy::Modern);
        let sealed = scepkit::envelope::seal(&[7u8; 100], &c.signer_cert, options, &crypto, &mut OsRng).unwrap();
        let open = |bytes: &[u8]| {
            scepkit::envelope::open(
                bytes,
                &[Recipient { certificate: Some(&c.signer_cert), key: c.key }],
                policy(false),
            )
            .map(|_| ())
            .unwrap_err()
        };

        let enc_key =
            scepkit::envelope::parse(&sealed).unwrap().key_trans_recipients().unwrap()[0].enc_key.as_bytes().to_vec();
        let at = sealed.windows(enc_key.len()).position(|w| w == enc_key.as_slice()).unwrap() + enc_key.len() / 2;
        let mut bad_rsa = sealed.clone();
        bad_rsa[at] ^= 0x55;
        // The last byte of the next-to-last ciphertext block flips the padding length byte out of range.
        let mut bad_padding = sealed.clone();
        let last = bad_padding.len() - 17;
        bad_padding[last] ^= 0x80;

        let (rsa, padding) = (open(&bad_rsa), open(&bad_padding));
        assert_eq!(
            (rsa.kind, rsa.fail_info, rsa.message.as_str()),
            (padding.kind, padding.fail_info, padding.message.as_str()),
            "{transport:?}"
        );
        assert_eq!(rsa.message, "Failed to decrypt a PKCS7 message");
    }
}

/// Private keys as the client takes them, read without RSA arithmetic (`keys::read_private_key`, the browser
/// build's reader): every form gives the key's own PKCS#8 and public key; a key that is not whole is refused.
mod private_keys {
    use super::*;
    use der::{Decode, Encode};
    use scepkit::keys::{read_private_key, PrivateKeyOps};

    fn pkcs1_of(pkcs8: &[u8]) -> Vec<u8> {
        pkcs8::PrivateKeyInfo::from_der(pkcs8).unwrap().private_key.to_vec()
    }

    fn as_pkcs8(pkcs1: &[u8], parameters: Option<der::asn1::AnyRef<'_>>) -> Vec<u8> {
        let algorithm = spki::AlgorithmIdentifierRef { oid: const_oid::db::rfc5912::RSA_ENCRYPTION, parameters };
        pkcs8::PrivateKeyInfo { algorithm, private_key: pkcs1, public_key: None }.to_der().unwrap()
    }

    #[test]
    fn pkcs8_and_pkcs1_in_der_and_pem_give_the_same_key() {
        let key = test_key(0);
        let pkcs8 = key.to_pkcs8_der().unwrap();
        let pkcs1 = pkcs1_of(&pkcs8);
        let pkcs1_pem = der::pem::encode_string("RSA PRIVATE KEY", der::pem::LineEnding::LF, &pkcs1).unwrap();
        let pkcs8_pem = key.to_pkcs8_pem().unwrap();
        for given in [pkcs8.to_vec(), pkcs8_pem.as_bytes().to_vec(), pkcs1.clone(), pkcs1_pem.into_bytes()] {
            let (read, public) = read_private_key(&given).unwrap();
            assert_eq!(read.as_slice(), pkcs8.as_slice());
            assert_eq!(&public, key.public_key());
        }
    }

    #[test]
    fn a_key_that_is_not_whole_or_not_rsa_is_refused() {
        let pkcs1 = pkcs1_of(&test_key(0).to_pkcs8_der().unwrap());
        let parsed = pkcs1::RsaPrivateKey::from_der(&pkcs1).unwrap();
        // Another key's modulus: the primes do not make it.
        let other = pkcs1_of(&test_key(1).to_pkcs8_der().unwrap());
        let other = pkcs1::RsaPrivateKey::from_der(&other).unwrap();
        let swapped = pkcs1::RsaPrivateKey { modulus: other.modulus, ..parsed.clone() }.to_der().unwrap();
        // e = 1.
        let one = pkcs1::RsaPrivateKey { public_exponent: pkcs1::UintRef::new(&[1]).unwrap(), ..parsed.clone() };
        let cases: [(&str, Vec<u8>); 5] = [
            ("another key's modulus", as_pkcs8(&swapped, Some(der::asn1::AnyRef::NULL))),
            ("public exponent 1", as_pkcs8(&one.to_der().unwrap(), Some(der::asn1::AnyRef::NULL))),
            ("rsaEncryption without its NULL parameters", as_pkcs8(&pkcs1, None)),
            ("a public key", test_key(0).public_key().to_der().unwrap()),
            ("nothing", Vec::new()),
        ];
        for (what, given) in cases {
            let e = read_private_key(&given).expect_err(what);
            assert!(e.message.contains("RSA private key"), "{what}: {}", e.message);
        }
        let ec = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n";
        assert!(read_private_key(ec.as_bytes()).is_err());
    }
}
