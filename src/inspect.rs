//! A readable account of any SCEP artefact: PKIMessage, CertRep, degenerate PKCS#7, EnvelopedData, CSR or
//! certificate, given as DER, PEM or base64. With a key, envelopes are opened and their content described too.

use der::{Decode, Encode};
use serde_json::{json, Value};

use crate::algorithms::AlgorithmPolicy;
use crate::csr::CsrFacts;
use crate::envelope::{self, Recipient};
use crate::error::{Result, ScepError};
use crate::keys::PrivateKeyOps;
use crate::message::{transaction_id_form, ScepAttributes};
use crate::signed::SignedMessage;
use crate::wire::Certificate;

/// Turns PEM, base64 (also the GET `message` form) or DER into DER.
pub fn to_der(input: &[u8]) -> Result<Vec<u8>> {
    if input.first() == Some(&0x30) {
        return Ok(input.to_vec());
    }
    let text = core::str::from_utf8(input).map_err(|_| ScepError::invalid_input("neither DER, PEM nor base64"))?.trim();
    if text.starts_with("-----BEGIN") {
        let (_, der) =
            der::pem::decode_vec(text.as_bytes()).map_err(|e| ScepError::invalid_input(format!("PEM: {e}")))?;
        return Ok(der);
    }
    if text.contains('%') {
        return crate::transport::decode_message_param(text);
    }
    crate::transport::decode_base64_message(text)
}

/// Describes `input`; `key` opens envelopes (a PKIMessage's for the CA key, a CertRep's for the client key).
pub fn inspect(input: &[u8], key: Option<&dyn PrivateKeyOps>) -> Result<Value> {
    let der = to_der(input)?;
    describe(&der, key, 0)
}

fn describe(der: &[u8], key: Option<&dyn PrivateKeyOps>, depth: u8) -> Result<Value> {
    if depth > 4 {
        return Err(ScepError::malformed("nested too deeply"));
    }
    if let Ok(cert) = Certificate::from_der(der) {
        return Ok(certificate(&cert));
    }
    let csr_info = crate::wire::CertReqAsSent::from_der(der)
        .and_then(|csr| csr.info.decode_as::<crate::wire::CertReqInfoAsSent>());
    if let Ok(info) = csr_info {
        let mut out = json!({ "type": "CSR", "subject": info.subject.to_string() });
        match CsrFacts::from_der(der, &crate::keys::RustCrypto) {
            Ok(facts) => {
                out["facts"] = serde_json::to_value(&facts).expect("plain struct");
                out["signatureValid"] = true.into();
            }
            Err(e) => {
                out["signatureValid"] = false.into();
                out["error"] = e.message.into();
            }
        }
        return Ok(out);
    }
    if let Ok(envelope) = envelope::parse(der) {
        let cipher = crate::algorithms::Cipher::from_oid(&envelope.encrypted_content.content_enc_alg.oid)
            .map(|c| c.name().to_owned())
            .unwrap_or_else(|_| envelope.encrypted_content.content_enc_alg.oid.to_string());
        let recipients: Vec<Value> = envelope
            .key_trans_recipients()
            .unwrap_or_default()
            .iter()
            .map(|r| {
                json!({
                    "keyTransport": envelope::key_transport(&r.key_enc_alg).map(|t| format!("{t:?}")).unwrap_or_else(|_| r.key_enc_alg.oid.to_string()),
                    "identifier": match &r.rid {
                        crate::wire::PartyIdentifier::IssuerAndSerialNumber(ias) => json!({ "issuer": ias.issuer.to_string(), "serial": crate::wire::serial_hex(ias.serial_number.as_bytes()) }),
                        crate::wire::PartyIdentifier::SubjectKeyIdentifier(ski) => json!({ "subjectKeyIdentifier": data_encoding::HEXLOWER.encode(ski.as_bytes()) }),
                    },
                })
            })
            .collect();
        let mut out = json!({ "type": "EnvelopedData", "cipher": cipher, "recipients": recipients });
        if let Some(key) = key {
            match envelope::open(der, &[Recipient { certificate: None, key }], AlgorithmPolicy::Legacy) {
                Ok(opened) => {
                    out["content"] = describe(&opened.plaintext, key.into(), depth + 1).unwrap_or_else(
                        |_| json!({ "type": "data", "base64": data_encoding::BASE64.encode(&opened.plaintext) }),
                    )
                }
                Err(e) => out["decryptError"] = e.message.into(),
            }
        }
        return Ok(out);
    }
    let signed = SignedMessage::parse(der)
        .map_err(|_| ScepError::invalid_input("not a certificate, CSR, PKCS#7 SignedData or EnvelopedData"))?;
    let certificates: Vec<Value> = signed.certificates.iter().map(certificate).collect();
    let Ok(signer) = signed.signer() else {
        return Ok(json!({ "type": "degenerate PKCS#7 (certificates only)", "certificates": certificates }));
    };
    let attrs = ScepAttributes::from_attributes(&signed.signed_attributes()?);
    let signer_cert = signed.signer_certificate().ok();
    let mut out = json!({
        "type": if attrs.is_ok() { "PKIMessage" } else { "SignedData" },
        "digestAlgorithm": crate::algorithms::DigestAlg::from_oid(&signer.digest_alg.oid).map(|d| d.name().to_owned()).unwrap_or_else(|_| signer.digest_alg.oid.to_string()),
        "signatureAlgorithm": signer.signature_algorithm.oid.to_string(),
        "signer": signer_cert.map(|c| json!({ "subject": c.tbs_certificate.subject.to_string(), "issuer": c.tbs_certificate.issuer.to_string(), "serial": crate::wire::serial_hex(c.tbs_certificate.serial_number.as_bytes()) })),
        "signatureValid": signer_cert.map(|c| signed.verify(c, &crate::keys::RustCrypto).is_ok()),
        "certificates": certificates,
    });
    if let Ok(a) = attrs {
        let mt = a.message_type.expect("from_attributes requires it");
        out["messageType"] = json!({ "code": mt.code(), "name": mt.name() });
        out["transactionID"] = a.transaction_id.clone().into();
        out["transactionIDForm"] = serde_json::to_value(transaction_id_form(&a.transaction_id)).expect("enum");
        out["senderNonce"] = a.sender_nonce.as_deref().map(|n| data_encoding::HEXLOWER.encode(n)).into();
        out["recipientNonce"] = a.recipient_nonce.as_deref().map(|n| data_encoding::HEXLOWER.encode(n)).into();
        out["pkiStatus"] = a.pki_status.map(|s| s.name()).into();
        out["failInfo"] =
            a.fail_info.map(|f| json!({ "code": f.code(), "name": f.name(), "meaning": f.meaning() })).into();
        out["failInfoText"] = a.fail_info_text.into();
    }
    if let Some(content) = signed.content.as_deref().filter(|c| !c.is_empty()) {
        out["content"] =
            describe(content, key, depth + 1).unwrap_or_else(|_| json!({ "type": "data", "length": content.len() }));
    }
    Ok(out)
}

fn certificate(cert: &Certificate) -> Value {
    let tbs = &cert.tbs_certificate;
    json!({
        "type": "Certificate",
        "subject": tbs.subject.to_string(),
        "issuer": tbs.issuer.to_string(),
        "serial": crate::wire::serial_hex(tbs.serial_number.as_bytes()),
        "notBefore": tbs.validity.not_before.to_string(),
        "notAfter": tbs.validity.not_after.to_string(),
        "sha256Fingerprint": cert.to_der().map(|d| crate::keys::fingerprint(&d)).unwrap_or_default(),
        "sans": subject_alt_names(cert),
    })
}

/// The certificate's subjectAltName entries as `dns:`, `email:`, `uri:`, `ip:` strings.
fn subject_alt_names(cert: &Certificate) -> Vec<String> {
    let ext = cert
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME);
    let names = ext.and_then(|e| x509_cert::ext::pkix::SubjectAltName::from_der(e.extn_value.as_bytes()).ok());
    names
        .map(|n| n.0.iter().filter_map(crate::csr::San::from_general_name).map(String::from).collect())
        .unwrap_or_default()
}
