//! A readable account of any SCEP artefact: PKIMessage, CertRep, degenerate PKCS#7, EnvelopedData, CSR or
//! certificate, given as DER, PEM or base64. With a key, envelopes are opened and their content described too.

use der::{Decode, Encode};
use serde::Serialize;

use crate::algorithms::AlgorithmPolicy;
use crate::csr::CsrFacts;
use crate::envelope::{self, Recipient};
use crate::error::{Result, ScepError};
use crate::keys::{PrivateKeyOps, PublicKeyOps};
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

/// What [`inspect`] found, tagged by `type`.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(tag = "type")]
pub enum Inspected {
    Certificate(CertificateFacts),
    #[serde(rename = "CSR", rename_all = "camelCase")]
    Csr {
        subject: String,
        /// What a CA reads of it, when its proof of possession verifies.
        #[serde(skip_serializing_if = "Option::is_none")]
        facts: Option<CsrFacts>,
        signature_valid: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    EnvelopedData {
        cipher: String,
        recipients: Vec<RecipientFacts>,
        /// Opened with the key given.
        #[serde(skip_serializing_if = "Option::is_none")]
        content: Option<Box<Inspected>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        decrypt_error: Option<String>,
    },
    #[serde(rename = "degenerate PKCS#7 (certificates only)")]
    Degenerate {
        certificates: Vec<CertificateFacts>,
    },
    #[serde(rename = "PKIMessage")]
    PkiMessage(Box<SignedFacts>),
    SignedData(Box<SignedFacts>),
    /// Content that is none of the above: its bytes (opened from an envelope) or its length.
    #[serde(rename = "data")]
    Data {
        #[serde(skip_serializing_if = "Option::is_none")]
        base64: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        length: Option<usize>,
    },
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct CertificateFacts {
    pub subject: String,
    pub issuer: String,
    /// Hex.
    pub serial: String,
    pub not_before: String,
    pub not_after: String,
    pub sha256_fingerprint: String,
    /// `dns:…`, `email:…`, `uri:…`, `ip:…`.
    pub sans: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct RecipientFacts {
    pub key_transport: String,
    pub identifier: RecipientIdentifier,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(untagged, rename_all_fields = "camelCase")]
pub enum RecipientIdentifier {
    IssuerAndSerial { issuer: String, serial: String },
    SubjectKeyIdentifier { subject_key_identifier: String },
}

/// A SignedData, and for a PKIMessage its SCEP attributes.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct SignedFacts {
    pub digest_algorithm: String,
    pub signature_algorithm: String,
    pub signer: Option<SignerName>,
    /// Whether the signature verifies with the signer certificate it carries (None: it carries none).
    pub signature_valid: Option<bool>,
    pub certificates: Vec<CertificateFacts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_type: Option<NamedCode>,
    #[serde(rename = "transactionID", skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    #[serde(rename = "transactionIDForm", skip_serializing_if = "Option::is_none")]
    pub transaction_id_form: Option<crate::message::TransactionIdForm>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_nonce: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_nonce: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pki_status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_info: Option<FailInfoFacts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_info_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<Box<Inspected>>,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
pub struct SignerName {
    pub subject: String,
    pub issuer: String,
    pub serial: String,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
pub struct NamedCode {
    pub code: u32,
    pub name: &'static str,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
pub struct FailInfoFacts {
    pub code: u8,
    pub name: &'static str,
    pub meaning: &'static str,
}

/// Describes `input`; `key` opens envelopes (a PKIMessage's for the CA key, a CertRep's for the client key),
/// `ops` checks signatures.
pub fn inspect(input: &[u8], key: Option<&dyn PrivateKeyOps>, ops: &dyn PublicKeyOps) -> Result<Inspected> {
    let der = to_der(input)?;
    describe(&der, key, ops, 0)
}

fn describe(der: &[u8], key: Option<&dyn PrivateKeyOps>, ops: &dyn PublicKeyOps, depth: u8) -> Result<Inspected> {
    if depth > 4 {
        return Err(ScepError::malformed("nested too deeply"));
    }
    if let Ok(cert) = Certificate::from_der(der) {
        return Ok(Inspected::Certificate(certificate(&cert)));
    }
    let csr_info = crate::wire::CertReqAsSent::from_der(der)
        .and_then(|csr| csr.info.decode_as::<crate::wire::CertReqInfoAsSent>());
    if let Ok(info) = csr_info {
        let subject = info.subject.to_string();
        return Ok(match CsrFacts::from_der(der, ops) {
            Ok(facts) => Inspected::Csr { subject, facts: Some(facts), signature_valid: true, error: None },
            Err(e) => Inspected::Csr { subject, facts: None, signature_valid: false, error: Some(e.message) },
        });
    }
    if let Ok(envelope) = envelope::parse(der) {
        let cipher = crate::algorithms::Cipher::from_oid(&envelope.encrypted_content.content_enc_alg.oid)
            .map(|c| c.name().to_owned())
            .unwrap_or_else(|_| envelope.encrypted_content.content_enc_alg.oid.to_string());
        let recipients = envelope
            .key_trans_recipients()
            .unwrap_or_default()
            .iter()
            .map(|r| RecipientFacts {
                key_transport: envelope::key_transport(&r.key_enc_alg)
                    .map(|t| format!("{t:?}"))
                    .unwrap_or_else(|_| r.key_enc_alg.oid.to_string()),
                identifier: match &r.rid {
                    crate::wire::PartyIdentifier::IssuerAndSerialNumber(ias) => RecipientIdentifier::IssuerAndSerial {
                        issuer: ias.issuer.to_string(),
                        serial: crate::wire::serial_hex(ias.serial_number.as_bytes()),
                    },
                    crate::wire::PartyIdentifier::SubjectKeyIdentifier(ski) => {
                        RecipientIdentifier::SubjectKeyIdentifier {
                            subject_key_identifier: base16ct::lower::encode_string(ski.as_bytes()),
                        }
                    }
                },
            })
            .collect();
        let (mut content, mut decrypt_error) = (None, None);
        if let Some(key) = key {
            match envelope::open(der, &[Recipient { certificate: None, key }], AlgorithmPolicy::Legacy) {
                Ok(opened) => {
                    content =
                        Some(Box::new(describe(&opened.plaintext, key.into(), ops, depth + 1).unwrap_or_else(|_| {
                            Inspected::Data {
                                base64: Some(<base64ct::Base64 as base64ct::Encoding>::encode_string(
                                    &opened.plaintext,
                                )),
                                length: None,
                            }
                        })))
                }
                Err(e) => decrypt_error = Some(e.message),
            }
        }
        return Ok(Inspected::EnvelopedData { cipher, recipients, content, decrypt_error });
    }
    let signed = SignedMessage::parse(der)
        .map_err(|_| ScepError::invalid_input("not a certificate, CSR, PKCS#7 SignedData or EnvelopedData"))?;
    let certificates: Vec<CertificateFacts> = signed.certificates.iter().map(certificate).collect();
    let Ok(signer) = signed.signer() else {
        return Ok(Inspected::Degenerate { certificates });
    };
    let attrs = ScepAttributes::from_attributes(&signed.signed_attributes()?).ok();
    let signer_cert = signed.signer_certificate().ok();
    let content = signed.content.as_deref().filter(|c| !c.is_empty()).map(|content| {
        Box::new(
            describe(content, key, ops, depth + 1)
                .unwrap_or(Inspected::Data { base64: None, length: Some(content.len()) }),
        )
    });
    let hex = |n: &[u8]| base16ct::lower::encode_string(n);
    let facts = SignedFacts {
        digest_algorithm: crate::algorithms::DigestAlg::from_oid(&signer.digest_alg.oid)
            .map(|d| d.name().to_owned())
            .unwrap_or_else(|_| signer.digest_alg.oid.to_string()),
        signature_algorithm: signer.signature_algorithm.oid.to_string(),
        signer: signer_cert.map(|c| SignerName {
            subject: c.tbs_certificate.subject.to_string(),
            issuer: c.tbs_certificate.issuer.to_string(),
            serial: crate::wire::serial_hex(c.tbs_certificate.serial_number.as_bytes()),
        }),
        signature_valid: signer_cert.map(|c| signed.verify(c, ops).is_ok()),
        certificates,
        message_type: attrs.as_ref().and_then(|a| a.message_type).map(|m| NamedCode { code: m.code(), name: m.name() }),
        transaction_id: attrs.as_ref().map(|a| a.transaction_id.clone()),
        transaction_id_form: attrs.as_ref().map(|a| transaction_id_form(&a.transaction_id)),
        sender_nonce: attrs.as_ref().and_then(|a| a.sender_nonce.as_deref().map(hex)),
        recipient_nonce: attrs.as_ref().and_then(|a| a.recipient_nonce.as_deref().map(hex)),
        pki_status: attrs.as_ref().and_then(|a| a.pki_status.map(|s| s.name())),
        fail_info: attrs
            .as_ref()
            .and_then(|a| a.fail_info.map(|f| FailInfoFacts { code: f.code(), name: f.name(), meaning: f.meaning() })),
        fail_info_text: attrs.as_ref().and_then(|a| a.fail_info_text.clone()),
        content,
    };
    Ok(if attrs.is_some() { Inspected::PkiMessage(Box::new(facts)) } else { Inspected::SignedData(Box::new(facts)) })
}

fn certificate(cert: &Certificate) -> CertificateFacts {
    let tbs = &cert.tbs_certificate;
    CertificateFacts {
        subject: tbs.subject.to_string(),
        issuer: tbs.issuer.to_string(),
        serial: crate::wire::serial_hex(tbs.serial_number.as_bytes()),
        not_before: tbs.validity.not_before.to_string(),
        not_after: tbs.validity.not_after.to_string(),
        sha256_fingerprint: cert.to_der().map(|d| crate::keys::fingerprint(&d)).unwrap_or_default(),
        sans: subject_alt_names(cert),
    }
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
