//! Every message captured from micromdm/scep 2.1 and certmonger 0.79 (`../shared/fixtures/peers`), decoded,
//! verified and decrypted with its key, checked against the fields its INDEX lists.

mod common;

use common::*;
use scepkit::algorithms::{Cipher, DigestAlg};
use scepkit::caps::{CaCaps, CaCertificates, Capability};
use scepkit::csr::CsrFacts;
use scepkit::envelope::{self, Recipient};
use scepkit::message::{transaction_id_form, MessageType, PkiStatus, TransactionIdForm};
use scepkit::server::read_request;
use scepkit::signed::SignedMessage;
use scepkit::{ErrorKind, FailInfo};

#[test]
fn micromdm_pkcsreq_decodes_verifies_and_decrypts_to_the_captured_csr() {
    let ca = micromdm_ca();
    let req = read_request(&fixture("micromdm-scepclient-pkcsreq.der")).unwrap();
    assert_eq!(req.attributes.message_type, Some(MessageType::PkcsReq));
    assert_eq!(req.attributes.transaction_id, "BPml6fSt0RhZ1xEySowT/ayFsTI=");
    assert_eq!(transaction_id_form(&req.attributes.transaction_id), TransactionIdForm::Base64);
    assert_eq!(req.attributes.sender_nonce.as_ref().unwrap().len(), 16);
    assert_eq!(req.signed.digest_alg().unwrap(), DigestAlg::Sha1);
    // The envelope inside is byte-identical to the captured one.
    assert_eq!(req.signed.content.as_deref().unwrap(), fixture("micromdm-scepclient-pkcsreq.envelope.der").as_slice());

    let facts =
        req.open(&[Recipient { certificate: Some(&ca.cert), key: &ca.key }], accept(true), &RustCrypto).unwrap();
    assert_eq!(facts.cipher, Cipher::DesCbc);
    assert!(facts.signer.self_signed);
    let csr = facts.csr.unwrap();
    assert_eq!(csr.der, fixture("micromdm-scepclient-pkcsreq.csr.der"));
    assert_eq!(csr.common_name.as_deref(), Some("peer-client-1"));
    assert_eq!(csr.challenge.as_deref(), Some("s3cret"));
    assert_eq!(csr.key_bits, 2048);
    assert_eq!(csr.subject, "CN=peer-client-1,OU=MDM,O=scep-client,C=US");
}

#[test]
fn micromdm_des_request_is_refused_without_the_legacy_switch() {
    let ca = micromdm_ca();
    let req = read_request(&fixture("micromdm-scepclient-pkcsreq.der")).unwrap();
    let err =
        req.open(&[Recipient { certificate: Some(&ca.cert), key: &ca.key }], accept(false), &RustCrypto).unwrap_err();
    assert_eq!(err.fail_info, FailInfo::BadAlg);
    assert_eq!(err.kind, ErrorKind::UnsupportedAlgorithm);
}

#[test]
fn micromdm_wrong_challenge_request_carries_wrong() {
    let ca = micromdm_ca();
    let req = read_request(&fixture("micromdm-scepclient-pkcsreq-wrongchallenge.der")).unwrap();
    let facts =
        req.open(&[Recipient { certificate: Some(&ca.cert), key: &ca.key }], accept(true), &RustCrypto).unwrap();
    assert_eq!(facts.csr.unwrap().challenge.as_deref(), Some("WRONG"));
}

#[test]
fn micromdm_success_certrep_echoes_the_nonce_and_carries_the_issued_certificate() {
    let ca = micromdm_ca();
    let req = read_request(&fixture("micromdm-scepclient-pkcsreq.der")).unwrap();
    let rep = SignedMessage::parse(&fixture("micromdm-certrep-success.der")).unwrap();
    rep.verify(&ca.cert, &RustCrypto).unwrap();
    let attrs = scepkit::message::ScepAttributes::from_attributes(&rep.signed_attributes().unwrap()).unwrap();
    assert_eq!(attrs.message_type, Some(MessageType::CertRep));
    assert_eq!(attrs.pki_status, Some(PkiStatus::Success));
    assert_eq!(attrs.transaction_id, req.attributes.transaction_id);
    assert_eq!(attrs.recipient_nonce, req.attributes.sender_nonce);
    assert_eq!(rep.content.as_deref().unwrap(), fixture("micromdm-certrep-success.envelope.der").as_slice());

    // Decrypt to the scepclient's self-signed signer certificate with its key.
    let client_key = key("micromdm-scepclient-peer-client-1.key.pem");
    let client_signer = req.signed.signer_certificate().unwrap().clone();
    let opened = envelope::open(
        rep.content.as_deref().unwrap(),
        &[Recipient { certificate: Some(&client_signer), key: &client_key }],
        policy(true),
    )
    .unwrap();
    assert_eq!(opened.cipher, Cipher::DesCbc);
    assert_eq!(opened.plaintext.as_slice(), fixture("micromdm-certrep-success.degenerate.der").as_slice());
    let degenerate = SignedMessage::parse(&opened.plaintext).unwrap();
    assert_eq!(degenerate.certificates, vec![cert("micromdm-scepclient-peer-client-1.serial2.crt.pem")]);
    assert!(degenerate.signers.is_empty());
}

#[test]
fn micromdm_failure_certrep_is_badrequest_with_empty_content() {
    let ca = micromdm_ca();
    let rep = SignedMessage::parse(&fixture("micromdm-certrep-failure-badrequest.der")).unwrap();
    rep.verify(&ca.cert, &RustCrypto).unwrap();
    let attrs = scepkit::message::ScepAttributes::from_attributes(&rep.signed_attributes().unwrap()).unwrap();
    assert_eq!(attrs.pki_status, Some(PkiStatus::Failure));
    assert_eq!(attrs.fail_info, Some(FailInfo::BadRequest));
    assert_eq!(rep.content.as_deref(), Some(&[][..]));
    let wrong = read_request(&fixture("micromdm-scepclient-pkcsreq-wrongchallenge.der")).unwrap();
    assert_eq!(attrs.recipient_nonce, wrong.attributes.sender_nonce);
}

#[test]
fn micromdm_renewal_is_signed_by_the_issued_certificate_and_gets_serial_3() {
    let ca = micromdm_ca();
    let req = read_request(&fixture("micromdm-scepclient-renewalreq.der")).unwrap();
    assert_eq!(req.attributes.message_type, Some(MessageType::RenewalReq));
    let issued = cert("micromdm-scepclient-peer-client-1.serial2.crt.pem");
    assert_eq!(req.signed.signer_certificate().unwrap(), &issued);
    let facts =
        req.open(&[Recipient { certificate: Some(&ca.cert), key: &ca.key }], accept(true), &RustCrypto).unwrap();
    assert!(!facts.signer.self_signed);
    assert_eq!(facts.signer.serial, "02");

    let rep = SignedMessage::parse(&fixture("micromdm-certrep-renewal-success.der")).unwrap();
    rep.verify(&ca.cert, &RustCrypto).unwrap();
    let client_key = key("micromdm-scepclient-peer-client-1.key.pem");
    let opened = envelope::open(
        rep.content.as_deref().unwrap(),
        &[Recipient { certificate: Some(&issued), key: &client_key }],
        policy(true),
    )
    .unwrap();
    let degenerate = SignedMessage::parse(&opened.plaintext).unwrap();
    assert_eq!(degenerate.certificates, vec![cert("micromdm-scepclient-peer-client-1.serial3-renewed.crt.pem")]);
}

#[test]
fn micromdm_rejected_renewal_answer_is_failure_badrequest() {
    let ca = micromdm_ca();
    let req = read_request(&fixture("micromdm-scepclient-renewalreq-rejected.der")).unwrap();
    assert_eq!(req.attributes.message_type, Some(MessageType::RenewalReq));
    let rep = SignedMessage::parse(&fixture("micromdm-certrep-failure-renewal-dn-exists.der")).unwrap();
    rep.verify(&ca.cert, &RustCrypto).unwrap();
    let attrs = scepkit::message::ScepAttributes::from_attributes(&rep.signed_attributes().unwrap()).unwrap();
    assert_eq!((attrs.pki_status, attrs.fail_info), (Some(PkiStatus::Failure), Some(FailInfo::BadRequest)));
    assert_eq!(attrs.recipient_nonce, req.attributes.sender_nonce);
}

#[test]
fn corrupted_signature_and_content_are_badmessagecheck_not_a_crash() {
    let ca = micromdm_ca();
    for (file, what) in [("neg-pkcsreq-badsig.der", "signature"), ("neg-pkcsreq-baddigest.der", "messageDigest")] {
        let req = read_request(&fixture(file)).unwrap();
        let err = req
            .open(&[Recipient { certificate: Some(&ca.cert), key: &ca.key }], accept(true), &RustCrypto)
            .unwrap_err();
        assert_eq!(err.fail_info, FailInfo::BadMessageCheck, "{file}");
        assert!(err.message.contains(what), "{file}: {}", err.message);
    }
}

#[test]
fn certmonger_pkcsreq_uses_sha256_aes256_and_a_decimal_transaction_id() {
    let ca = micromdm_ca();
    let bytes = fixture("certmonger-pkcsreq.der");
    let req = read_request(&bytes).unwrap();
    assert_eq!(req.attributes.message_type, Some(MessageType::PkcsReq));
    assert_eq!(transaction_id_form(&req.attributes.transaction_id), TransactionIdForm::Decimal);
    // certmonger signs with plain rsaEncryption as the signature algorithm.
    assert_eq!(req.signed.signer().unwrap().signature_algorithm.oid, const_oid::db::rfc5912::RSA_ENCRYPTION);
    // Its self-signed certificate has a 32-octet serial, beyond RFC 5280's 20.
    assert_eq!(req.signed.signer_certificate().unwrap().tbs_certificate.serial_number.as_bytes().len(), 32);
    let facts =
        req.open(&[Recipient { certificate: Some(&ca.cert), key: &ca.key }], accept(false), &RustCrypto).unwrap();
    assert_eq!((facts.digest, facts.cipher), (DigestAlg::Sha256, Cipher::Aes256Cbc));
    let csr = facts.csr.unwrap();
    assert_eq!(csr.common_name.as_deref(), Some("cm-client-3"));

    // The same message as certmonger sent it by HTTP GET: message=<url-encoded base64>.
    let meta = String::from_utf8(fixture("certmonger-pkcsreq.http-get.meta")).unwrap();
    let query = meta.lines().next().unwrap().split("message=").nth(1).unwrap().split(' ').next().unwrap();
    assert_eq!(scepkit::transport::decode_message_param(query).unwrap(), bytes);
}

#[test]
fn certmonger_certrep_decrypts_with_its_key() {
    let ca = micromdm_ca();
    let req = read_request(&fixture("certmonger-pkcsreq.der")).unwrap();
    let rep = SignedMessage::parse(&fixture("certmonger-certrep-success.der")).unwrap();
    rep.verify(&ca.cert, &RustCrypto).unwrap();
    let cm_key = key("certmonger-cm-client-3.key.pem");
    let signer = req.signed.signer_certificate().unwrap().clone();
    // micromdm 2.1 answers with single DES whatever the request used: readable only with the legacy switch.
    let err = envelope::open(
        rep.content.as_deref().unwrap(),
        &[Recipient { certificate: Some(&signer), key: &cm_key }],
        policy(false),
    )
    .unwrap_err();
    assert_eq!(err.fail_info, FailInfo::BadAlg);
    let opened = envelope::open(
        rep.content.as_deref().unwrap(),
        &[Recipient { certificate: Some(&signer), key: &cm_key }],
        policy(true),
    )
    .unwrap();
    assert_eq!(opened.cipher, Cipher::DesCbc);
    let certs = SignedMessage::parse(&opened.plaintext).unwrap().certificates;
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0].tbs_certificate.subject.to_string(), "CN=cm-client-3,O=certmonger-test");
    scepkit::issue::verify_issued_by(&certs[0], &ca.cert, &RustCrypto).unwrap();
}

#[test]
fn certmonger_getcertinitial_is_a_certpoll_with_issuer_and_subject() {
    let ca = micromdm_ca();
    let req = read_request(&fixture("certmonger-getcertinitial.der")).unwrap();
    assert_eq!(req.attributes.message_type, Some(MessageType::CertPoll));
    let facts =
        req.open(&[Recipient { certificate: Some(&ca.cert), key: &ca.key }], accept(false), &RustCrypto).unwrap();
    let (issuer, subject) = facts.poll.unwrap();
    assert_eq!(issuer, "OU=SCEP CA,O=peer-scep test CA,C=US");
    // certmonger's DER order is CN then O, so RFC 4514 (last RDN first) reads O first.
    assert_eq!(subject, "O=certmonger-test,CN=cm-client-3");
    let opened = envelope::open(
        req.signed.content.as_deref().unwrap(),
        &[Recipient { certificate: Some(&ca.cert), key: &ca.key }],
        policy(false),
    )
    .unwrap();
    assert_eq!(opened.plaintext.as_slice(), fixture("certmonger-getcertinitial.issuerandsubject.der").as_slice());
}

#[test]
fn certmonger_resubmit_and_rekey_are_pkcsreq_signed_by_the_issued_certificate() {
    let ca = micromdm_ca();
    for file in
        ["certmonger-pkcsreq-resubmit-signed-by-issued-cert.der", "certmonger-pkcsreq-rekey-signed-by-issued-cert.der"]
    {
        let req = read_request(&fixture(file)).unwrap();
        assert_eq!(req.attributes.message_type, Some(MessageType::PkcsReq), "{file}");
        let signer = req.signed.signer_certificate().unwrap();
        scepkit::issue::verify_issued_by(signer, &ca.cert, &RustCrypto).unwrap();
        let facts =
            req.open(&[Recipient { certificate: Some(&ca.cert), key: &ca.key }], accept(false), &RustCrypto).unwrap();
        assert!(!facts.signer.self_signed, "{file}");
        assert!(CsrFacts::from_der(&facts.csr.unwrap().der, &RustCrypto).is_ok());
    }
}

#[test]
fn micromdm_getcacaps_and_getcacert_parse() {
    let caps = CaCaps::parse(&String::from_utf8(fixture("micromdm-getcacaps-resp.txt")).unwrap());
    for c in [
        Capability::Renewal,
        Capability::Sha1,
        Capability::Sha256,
        Capability::Aes,
        Capability::Des3,
        Capability::ScepStandard,
        Capability::PostPkiOperation,
    ] {
        assert!(caps.has(c), "{c:?}");
    }
    assert!(caps.unknown.is_empty());
    let n = caps.negotiate(policy(false), None, None).unwrap();
    assert_eq!((n.cipher, n.digest, n.post), (Cipher::Aes128Cbc, DigestAlg::Sha256, true));

    let ca = CaCertificates::parse(&fixture("micromdm-getcacert-resp.der")).unwrap();
    assert_eq!(ca.ca, micromdm_ca().cert);
    assert_eq!(ca.recipient, ca.ca);
}

#[test]
fn a_request_encrypted_for_someone_else_is_failed_to_decrypt() {
    let other = scepkit_ca();
    let req = read_request(&fixture("certmonger-pkcsreq.der")).unwrap();
    let err = req
        .open(&[Recipient { certificate: Some(&other.cert), key: &other.key }], accept(false), &RustCrypto)
        .unwrap_err();
    assert_eq!(err.message, "Failed to decrypt a PKCS7 message");
    assert_eq!(err.status, 404);
}
