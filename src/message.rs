//! The SCEP message model: message types, statuses and the authenticated attributes of RFC 8894 §3.2.1.
//!
//! ```text
//! id-VeriSign  OBJECT IDENTIFIER ::= {2 16 US(840) 1 VeriSign(113733)}
//! id-pki       OBJECT IDENTIFIER ::= {id-VeriSign pki(1)}
//! id-attributes OBJECT IDENTIFIER ::= {id-pki attributes(9)}
//! id-transactionID  OBJECT IDENTIFIER ::= {id-attributes transactionID(7)}   -- PrintableString
//! id-messageType    OBJECT IDENTIFIER ::= {id-attributes messageType(2)}     -- PrintableString
//! id-pkiStatus      OBJECT IDENTIFIER ::= {id-attributes pkiStatus(3)}       -- PrintableString
//! id-failInfo       OBJECT IDENTIFIER ::= {id-attributes failInfo(4)}        -- PrintableString
//! id-senderNonce    OBJECT IDENTIFIER ::= {id-attributes senderNonce(5)}     -- OCTET STRING
//! id-recipientNonce OBJECT IDENTIFIER ::= {id-attributes recipientNonce(6)}  -- OCTET STRING
//! id-scep-failInfoText OBJECT IDENTIFIER ::= {id-pkix 24 1}                  -- UTF8String
//! ```

use der::asn1::{Any, ObjectIdentifier, OctetString, PrintableStringRef, Utf8StringRef};
use der::Decode;
use x509_cert::attr::Attribute;

use crate::error::{FailInfo, Result, ScepError};
use crate::wire::single_valued;

pub const ID_MESSAGE_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.2");
pub const ID_PKI_STATUS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.3");
pub const ID_FAIL_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.4");
pub const ID_SENDER_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.5");
pub const ID_RECIPIENT_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.6");
pub const ID_TRANSACTION_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.7");
pub const ID_FAIL_INFO_TEXT: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.24.1");

/// RFC 8894 §3.2.1.2 messageType.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MessageType {
    CertRep = 3,
    RenewalReq = 17,
    #[serde(rename = "PKCSReq")]
    PkcsReq = 19,
    /// CertPoll, called GetCertInitial before RFC 8894.
    CertPoll = 20,
    GetCert = 21,
    #[serde(rename = "GetCRL")]
    GetCrl = 22,
}

impl MessageType {
    pub fn from_code(code: u32) -> Result<Self> {
        Ok(match code {
            3 => Self::CertRep,
            17 => Self::RenewalReq,
            19 => Self::PkcsReq,
            20 => Self::CertPoll,
            21 => Self::GetCert,
            22 => Self::GetCrl,
            n => {
                return Err(ScepError::not_permitted(
                    format!("Unsupported SCEP messageType {n}"),
                    "send PKCSReq, RenewalReq, CertPoll, GetCert or GetCRL",
                ))
            }
        })
    }

    pub fn code(self) -> u32 {
        self as u32
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::CertRep => "CertRep",
            Self::RenewalReq => "RenewalReq",
            Self::PkcsReq => "PKCSReq",
            Self::CertPoll => "CertPoll",
            Self::GetCert => "GetCert",
            Self::GetCrl => "GetCRL",
        }
    }
}

/// RFC 8894 §3.2.1.3 pkiStatus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PkiStatus {
    Success = 0,
    Failure = 2,
    Pending = 3,
}

impl PkiStatus {
    pub fn from_code(code: u32) -> Result<Self> {
        Ok(match code {
            0 => Self::Success,
            2 => Self::Failure,
            3 => Self::Pending,
            n => return Err(ScepError::malformed(format!("pkiStatus {n}"))),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Success => "SUCCESS",
            Self::Failure => "FAILURE",
            Self::Pending => "PENDING",
        }
    }
}

/// Nonces are 16 random octets (RFC 8894 §3.2.1.5); we accept any length from 8 to 64 from peers.
pub const NONCE_LEN: usize = 16;

/// The SCEP authenticated attributes of one PKIMessage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScepAttributes {
    pub message_type: Option<MessageType>,
    pub transaction_id: String,
    pub sender_nonce: Option<Vec<u8>>,
    pub recipient_nonce: Option<Vec<u8>>,
    pub pki_status: Option<PkiStatus>,
    pub fail_info: Option<FailInfo>,
    pub fail_info_text: Option<String>,
}

impl ScepAttributes {
    /// The attributes as CMS `Attribute`s (contentType, messageDigest and signingTime are added by the signer).
    pub fn to_attributes(&self) -> Result<Vec<Attribute>> {
        let message_type = self.message_type.ok_or_else(|| ScepError::invalid_input("messageType is required"))?;
        let mut out = vec![
            printable(ID_MESSAGE_TYPE, &message_type.code().to_string())?,
            printable(ID_TRANSACTION_ID, &self.transaction_id)?,
        ];
        if let Some(n) = &self.sender_nonce {
            out.push(single_valued(ID_SENDER_NONCE, Any::encode_from(&OctetString::new(n.clone())?)?)?);
        }
        if let Some(n) = &self.recipient_nonce {
            out.push(single_valued(ID_RECIPIENT_NONCE, Any::encode_from(&OctetString::new(n.clone())?)?)?);
        }
        if let Some(s) = self.pki_status {
            out.push(printable(ID_PKI_STATUS, &(s as u32).to_string())?);
        }
        if let Some(f) = self.fail_info {
            out.push(printable(ID_FAIL_INFO, &f.code().to_string())?);
        }
        if let Some(t) = &self.fail_info_text {
            out.push(single_valued(ID_FAIL_INFO_TEXT, Any::encode_from(&Utf8StringRef::new(t)?)?)?);
        }
        Ok(out)
    }

    /// Reads the SCEP attributes out of a signer's authenticated attributes; others are ignored.
    pub fn from_attributes(attrs: &[Attribute]) -> Result<Self> {
        let mut out = Self::default();
        let mut have_tid = false;
        for attr in attrs {
            let Some(value) = attr.values.iter().next() else { continue };
            match attr.oid {
                ID_MESSAGE_TYPE => out.message_type = Some(MessageType::from_code(number(value, "messageType")?)?),
                ID_TRANSACTION_ID => {
                    let tid = text(value, "transactionID")?;
                    // Peers may send another string type, but the reply must echo it as a PrintableString.
                    if PrintableStringRef::new(&tid).is_err() {
                        return Err(ScepError::malformed("transactionID is not a PrintableString"));
                    }
                    out.transaction_id = tid;
                    have_tid = true;
                }
                ID_SENDER_NONCE => out.sender_nonce = Some(nonce(value, "senderNonce")?),
                ID_RECIPIENT_NONCE => out.recipient_nonce = Some(nonce(value, "recipientNonce")?),
                ID_PKI_STATUS => out.pki_status = Some(PkiStatus::from_code(number(value, "pkiStatus")?)?),
                ID_FAIL_INFO => {
                    let code = number(value, "failInfo")?;
                    out.fail_info = Some(
                        u8::try_from(code)
                            .ok()
                            .and_then(FailInfo::from_code)
                            .ok_or_else(|| ScepError::malformed(format!("failInfo {code}")))?,
                    )
                }
                ID_FAIL_INFO_TEXT => out.fail_info_text = Some(text(value, "failInfoText")?),
                _ => {}
            }
        }
        if out.message_type.is_none() {
            return Err(ScepError::malformed("the messageType attribute is missing"));
        }
        if !have_tid || out.transaction_id.is_empty() {
            return Err(ScepError::malformed("the transactionID attribute is missing"));
        }
        Ok(out)
    }
}

/// How a peer spelled its transactionID. RFC 8894 only asks for a unique PrintableString; in practice
/// micromdm sends base64(SHA-1(RSAPublicKey)), certmonger decimal(SHA-256(SPKI)), PyScep hex(SHA-1(SPKI)),
/// and scepkit hex(SHA-256(SPKI)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "lowercase")]
pub enum TransactionIdForm {
    Decimal,
    Hex,
    Base64,
    Other,
}

pub fn transaction_id_form(tid: &str) -> TransactionIdForm {
    if !tid.is_empty() && tid.bytes().all(|b| b.is_ascii_digit()) {
        TransactionIdForm::Decimal
    } else if tid.len() % 2 == 0 && tid.bytes().all(|b| b.is_ascii_hexdigit()) {
        TransactionIdForm::Hex
    } else if <base64ct::Base64 as base64ct::Encoding>::decode_vec(tid).is_ok() {
        TransactionIdForm::Base64
    } else {
        TransactionIdForm::Other
    }
}

/// The transactionID scepkit uses for a key: its [`crate::keys::key_digest`].
pub fn transaction_id_for(spki_der: &[u8]) -> String {
    crate::keys::key_digest(spki_der)
}

fn printable(oid: ObjectIdentifier, s: &str) -> Result<Attribute> {
    let value =
        PrintableStringRef::new(s).map_err(|_| ScepError::invalid_input(format!("{s:?} is not a PrintableString")))?;
    Ok(single_valued(oid, Any::encode_from(&value)?)?)
}

fn text(value: &Any, what: &str) -> Result<String> {
    crate::wire::text(value).ok_or_else(|| ScepError::malformed(format!("{what} is not a string")))
}

fn number(value: &Any, what: &str) -> Result<u32> {
    let s = text(value, what)?;
    s.trim().parse().map_err(|_| ScepError::malformed(format!("{what} {s:?} is not a number")))
}

fn nonce(value: &Any, what: &str) -> Result<Vec<u8>> {
    let bytes = OctetString::from_der(&der::Encode::to_der(value)?)
        .map_err(|_| ScepError::malformed(format!("{what} is not an OCTET STRING")))?;
    let bytes = bytes.into_bytes();
    if !(8..=64).contains(&bytes.len()) {
        return Err(ScepError::malformed(format!("{what} has {} octets", bytes.len())));
    }
    Ok(bytes)
}
