//! CMS wire types as SCEP peers really send them, read without losing the original bytes.
//!
//! Three departures from what the strict `cms`/`x509-cert` types accept are seen in the peer fixtures:
//! - certmonger's self-signed request certificate has a 32-octet serial number (RFC 5280 caps it at 20), so
//!   every structure that carries a peer's certificate or names it by issuerAndSerialNumber uses the `Raw`
//!   x509 profile here;
//! - micromdm's scepclient (Go `pkcs7`) sends `encryptedContent` in the constructed BER form
//!   (`[0] { OCTET STRING, ... }`) instead of a primitive `[0]`;
//! - signed attributes are not always in DER SET OF order. `der` sorts a SET OF on decode, which is right for
//!   reading values but wrong for checking a signature over the bytes as sent. [`RawSet`] keeps them;
//! - some devices send a PKCS#10 request whose `version` is not v1 ([`CertReqAsSent`]).
//!
//! The encodings are still derived; these types only widen what is accepted, and always write DER.

use cms::content_info::CmsVersion;
use cms::signed_data::EncapsulatedContentInfo;
use der::asn1::{Any, ObjectIdentifier, OctetString, SetOfVec};
use der::{
    Choice, Decode, DecodeValue, Encode, EncodeValue, FixedTag, Header, Length, Reader, Sequence, SliceReader, Tag,
    TagNumber, Writer,
};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attributes;
use x509_cert::certificate::{CertificateInner, Profile, Raw};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;

/// An X.509 certificate read with the `Raw` profile (any serial length). Used for every certificate in the
/// core, ours and peers' alike, so there is one certificate type.
pub type Certificate = CertificateInner<Raw>;

/// The content of a `SET` (or an IMPLICIT-tagged SET) exactly as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawSet(pub Vec<u8>);

impl RawSet {
    /// Builds a set from elements, sorted as DER requires.
    pub fn from_elements<T: Encode>(elements: impl IntoIterator<Item = T>) -> der::Result<Self> {
        let mut encoded = elements.into_iter().map(|e| e.to_der()).collect::<der::Result<Vec<_>>>()?;
        encoded.sort();
        Ok(Self(encoded.concat()))
    }

    /// Builds a set keeping the elements in the order given (see `signed::certs_only` for why).
    pub fn in_order<T: Encode>(elements: impl IntoIterator<Item = T>) -> der::Result<Self> {
        Ok(Self(elements.into_iter().map(|e| e.to_der()).collect::<der::Result<Vec<_>>>()?.concat()))
    }

    /// The elements, in the order sent.
    pub fn elements<'a, T: Decode<'a>>(&'a self) -> der::Result<Vec<T>> {
        let mut reader = SliceReader::new(&self.0)?;
        let mut out = Vec::new();
        while !reader.is_finished() {
            out.push(reader.decode()?);
        }
        Ok(out)
    }

    /// Each element's whole TLV, in the order sent.
    pub fn element_tlvs(&self) -> der::Result<Vec<&[u8]>> {
        let mut reader = SliceReader::new(&self.0)?;
        let mut out = Vec::new();
        while !reader.is_finished() {
            out.push(reader.tlv_bytes()?);
        }
        Ok(out)
    }

    /// The set with its universal `SET` tag: what a CMS signature over signed attributes covers
    /// (RFC 5652 §5.4: "the DER encoding of the SignedAttributes value ... with an EXPLICIT SET OF tag").
    pub fn as_universal_set_der(&self) -> der::Result<Vec<u8>> {
        let mut out = Header::new(Tag::Set, self.0.len())?.to_der()?;
        out.extend_from_slice(&self.0);
        Ok(out)
    }
}

impl<'a> DecodeValue<'a> for RawSet {
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        Ok(Self(reader.read_vec(header.length)?))
    }
}

impl EncodeValue for RawSet {
    fn value_len(&self) -> der::Result<Length> {
        self.0.len().try_into()
    }
    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        writer.write(&self.0)
    }
}

impl FixedTag for RawSet {
    const TAG: Tag = Tag::Set;
}

/// RFC 5652 §10.2.4, any serial length.
///
/// ```text
/// IssuerAndSerialNumber ::= SEQUENCE { issuer Name, serialNumber CertificateSerialNumber }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct IssuerAndSerialNumber {
    pub issuer: Name,
    pub serial_number: SerialNumber<Raw>,
}

/// RFC 5652 §5.3 SignerIdentifier and §6.2.1 RecipientIdentifier, which have the same shape.
///
/// ```text
/// SignerIdentifier ::= CHOICE {
///   issuerAndSerialNumber IssuerAndSerialNumber,
///   subjectKeyIdentifier [0] SubjectKeyIdentifier }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Choice)]
pub enum PartyIdentifier {
    IssuerAndSerialNumber(IssuerAndSerialNumber),
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    SubjectKeyIdentifier(OctetString),
}

impl PartyIdentifier {
    /// Names `cert` the RFC 5652 way: issuerAndSerialNumber (version 0/1 structures) or SKI (version 2/3).
    pub fn for_certificate<P: Profile>(cert: &CertificateInner<P>, by_key_id: bool) -> der::Result<Self> {
        Ok(if by_key_id {
            Self::SubjectKeyIdentifier(OctetString::new(crate::keys::key_identifier(cert))?)
        } else {
            Self::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer: cert.tbs_certificate.issuer.clone(),
                serial_number: SerialNumber::<Raw>::from_der(&cert.tbs_certificate.serial_number.to_der()?)?,
            })
        })
    }

    /// Whether this names `cert`.
    pub fn identifies<P: Profile>(&self, cert: &CertificateInner<P>) -> bool {
        match self {
            Self::IssuerAndSerialNumber(ias) => {
                ias.issuer == cert.tbs_certificate.issuer
                    && ias.serial_number.as_bytes() == cert.tbs_certificate.serial_number.as_bytes()
            }
            Self::SubjectKeyIdentifier(ski) => ski.as_bytes() == crate::keys::key_identifier(cert).as_slice(),
        }
    }
}

/// RFC 2986 §4 as devices send it: the request info kept as its bytes (the signature covers exactly those), and
/// a `version` read whatever it is — devices that send Apple-style subjects have been seen to send other than
/// v1(0); the policy judges the request, not its version number.
///
/// ```text
/// CertificationRequest ::= SEQUENCE {
///   certificationRequestInfo CertificationRequestInfo,
///   signatureAlgorithm AlgorithmIdentifier{{ SignatureAlgorithms }},
///   signature BIT STRING }
/// ```
#[derive(Clone, Debug, Sequence)]
pub struct CertReqAsSent {
    pub info: Any,
    pub algorithm: AlgorithmIdentifierOwned,
    pub signature: der::asn1::BitString,
}

/// ```text
/// CertificationRequestInfo ::= SEQUENCE {
///   version INTEGER { v1(0) } (v1,...),
///   subject Name,
///   subjectPKInfo SubjectPublicKeyInfo{{ PKInfoAlgorithms }},
///   attributes [0] Attributes{{ CRIAttributes }} }
/// ```
#[derive(Clone, Debug, Sequence)]
pub struct CertReqInfoAsSent {
    pub version: der::asn1::Int,
    pub subject: Name,
    pub public_key: spki::SubjectPublicKeyInfoOwned,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    pub attributes: Attributes,
}

/// RFC 5652 §5.1, with certificates read leniently and `signerInfos` kept as sent.
///
/// ```text
/// SignedData ::= SEQUENCE {
///   version CMSVersion,
///   digestAlgorithms DigestAlgorithmIdentifiers,
///   encapContentInfo EncapsulatedContentInfo,
///   certificates [0] IMPLICIT CertificateSet OPTIONAL,
///   crls [1] IMPLICIT RevocationInfoChoices OPTIONAL,
///   signerInfos SignerInfos }
/// ```
#[derive(Clone, Debug, Sequence)]
pub struct SignedDataAsSent {
    pub version: CmsVersion,
    pub digest_algorithms: SetOfVec<AlgorithmIdentifierOwned>,
    pub encap_content_info: EncapsulatedContentInfo,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", constructed = "true", optional = "true")]
    pub certificates: Option<RawSet>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", constructed = "true", optional = "true")]
    pub crls: Option<RawSet>,
    pub signer_infos: RawSet,
}

/// RFC 5652 §5.3, with `signedAttrs` kept as sent.
///
/// ```text
/// SignerInfo ::= SEQUENCE {
///   version CMSVersion,
///   sid SignerIdentifier,
///   digestAlgorithm DigestAlgorithmIdentifier,
///   signedAttrs [0] IMPLICIT SignedAttributes OPTIONAL,
///   signatureAlgorithm SignatureAlgorithmIdentifier,
///   signature SignatureValue,
///   unsignedAttrs [1] IMPLICIT UnsignedAttributes OPTIONAL }
/// ```
#[derive(Clone, Debug, Sequence)]
pub struct SignerInfoAsSent {
    pub version: CmsVersion,
    pub sid: PartyIdentifier,
    pub digest_alg: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", constructed = "true", optional = "true")]
    pub signed_attrs: Option<RawSet>,
    pub signature_algorithm: AlgorithmIdentifierOwned,
    pub signature: OctetString,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", constructed = "true", optional = "true")]
    pub unsigned_attrs: Option<Attributes>,
}

/// RFC 5652 §6.2.1.
///
/// ```text
/// KeyTransRecipientInfo ::= SEQUENCE {
///   version CMSVersion,  -- always set to 0 or 2
///   rid RecipientIdentifier,
///   keyEncryptionAlgorithm KeyEncryptionAlgorithmIdentifier,
///   encryptedKey EncryptedKey }
/// ```
#[derive(Clone, Debug, Sequence)]
pub struct KeyTransRecipientInfo {
    pub version: CmsVersion,
    pub rid: PartyIdentifier,
    pub key_enc_alg: AlgorithmIdentifierOwned,
    pub enc_key: OctetString,
}

/// RFC 5652 §6.1. Recipient infos other than KeyTransRecipientInfo (`[1]`..`[4]`) are kept but not read.
///
/// ```text
/// EnvelopedData ::= SEQUENCE {
///   version CMSVersion,
///   originatorInfo [0] IMPLICIT OriginatorInfo OPTIONAL,
///   recipientInfos RecipientInfos,
///   encryptedContentInfo EncryptedContentInfo,
///   unprotectedAttrs [1] IMPLICIT UnprotectedAttributes OPTIONAL }
/// ```
#[derive(Clone, Debug, Sequence)]
pub struct EnvelopedData {
    pub version: CmsVersion,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", constructed = "true", optional = "true")]
    pub originator_info: Option<RawSet>,
    pub recip_infos: RawSet,
    pub encrypted_content: EncryptedContentInfo,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", constructed = "true", optional = "true")]
    pub unprotected_attrs: Option<Attributes>,
}

impl EnvelopedData {
    /// The KeyTransRecipientInfos, skipping the other recipient kinds.
    pub fn key_trans_recipients(&self) -> der::Result<Vec<KeyTransRecipientInfo>> {
        self.recip_infos
            .element_tlvs()?
            .into_iter()
            .filter(|tlv| tlv.first() == Some(&0x30))
            .map(KeyTransRecipientInfo::from_der)
            .collect()
    }
}

/// ```text
/// EncryptedContentInfo ::= SEQUENCE {
///   contentType ContentType,
///   contentEncryptionAlgorithm ContentEncryptionAlgorithmIdentifier,
///   encryptedContent [0] IMPLICIT EncryptedContent OPTIONAL }
/// EncryptedContent ::= OCTET STRING   -- primitive, or constructed from OCTET STRING segments (BER)
/// ```
#[derive(Clone, Debug)]
pub struct EncryptedContentInfo {
    pub content_type: ObjectIdentifier,
    pub content_enc_alg: AlgorithmIdentifierOwned,
    pub encrypted_content: Option<Vec<u8>>,
}

/// The strict form with the primitive `[0]`; it is what we write.
#[derive(Sequence)]
struct EncryptedContentInfoDer<'a> {
    content_type: ObjectIdentifier,
    content_enc_alg: spki::AlgorithmIdentifierRef<'a>,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    encrypted_content: Option<der::asn1::OctetStringRef<'a>>,
}

impl EncryptedContentInfo {
    fn as_der(&self) -> der::Result<EncryptedContentInfoDer<'_>> {
        Ok(EncryptedContentInfoDer {
            content_type: self.content_type,
            content_enc_alg: spki::AlgorithmIdentifierRef {
                oid: self.content_enc_alg.oid,
                parameters: self.content_enc_alg.parameters.as_ref().map(Into::into),
            },
            encrypted_content: self.encrypted_content.as_deref().map(der::asn1::OctetStringRef::new).transpose()?,
        })
    }
}

impl<'a> DecodeValue<'a> for EncryptedContentInfo {
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        reader.read_nested(header.length, |r| {
            let content_type = r.decode()?;
            let content_enc_alg = r.decode()?;
            let encrypted_content = if r.is_finished() {
                None
            } else {
                let inner = Header::decode(r)?;
                match inner.tag {
                    Tag::ContextSpecific { constructed: false, number: TagNumber::N0 } => {
                        Some(r.read_vec(inner.length)?)
                    }
                    Tag::ContextSpecific { constructed: true, number: TagNumber::N0 } => {
                        r.read_nested(inner.length, |segments| {
                            let mut joined = Vec::new();
                            while !segments.is_finished() {
                                joined.extend_from_slice(OctetString::decode(segments)?.as_bytes());
                            }
                            Ok(Some(joined))
                        })?
                    }
                    other => {
                        return Err(other.unexpected_error(Some(Tag::ContextSpecific {
                            constructed: false,
                            number: TagNumber::N0,
                        })))
                    }
                }
            };
            Ok(Self { content_type, content_enc_alg, encrypted_content })
        })
    }
}

impl EncodeValue for EncryptedContentInfo {
    fn value_len(&self) -> der::Result<Length> {
        self.as_der()?.value_len()
    }
    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        self.as_der()?.encode_value(writer)
    }
}

impl FixedTag for EncryptedContentInfo {
    const TAG: Tag = Tag::Sequence;
}

/// An `ANY` holding an OCTET STRING, returned as its bytes.
pub fn octets(any: &Any) -> der::Result<Vec<u8>> {
    Ok(any.decode_as::<OctetString>()?.into_bytes())
}

/// A string of any of the directory string types peers use (PrintableString, UTF8String, IA5String,
/// TeletexString, VisibleString, BMPString).
pub fn text(value: &Any) -> Option<String> {
    use der::Tagged;
    match value.tag() {
        Tag::PrintableString | Tag::Utf8String | Tag::Ia5String | Tag::TeletexString | Tag::VisibleString => {
            String::from_utf8(value.value().to_vec()).ok()
        }
        Tag::BmpString => {
            let units: Vec<u16> = value.value().chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// RFC 8894 §3.3.3, the content of a CertPoll (GetCertInitial).
///
/// ```text
/// IssuerAndSubject ::= SEQUENCE { issuer Name, subject Name }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct IssuerAndSubject {
    pub issuer: Name,
    pub subject: Name,
}

/// A serial number as lowercase hex of its magnitude (no DER sign octet), the form stores and logs use.
pub fn serial_hex(serial_der_value: &[u8]) -> String {
    let trimmed = match serial_der_value {
        [0, rest @ ..] if !rest.is_empty() => rest,
        all => all,
    };
    base16ct::lower::encode_string(trimmed)
}

/// An attribute with one value (every attribute SCEP, CMS and PKCS#10 use here is single-valued).
pub fn single_valued(oid: ObjectIdentifier, value: Any) -> der::Result<x509_cert::attr::Attribute> {
    let mut values = SetOfVec::new();
    values.insert(value)?;
    Ok(x509_cert::attr::Attribute { oid, values })
}
