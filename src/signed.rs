//! CMS SignedData as SCEP uses it (RFC 8894 §3.1, RFC 5652 §5): the outer layer of every PKIMessage, whose
//! signed attributes carry the SCEP attributes, and the degenerate certs-only form of GetCACert and CertRep.
//!
//! ```text
//! ContentInfo ::= SEQUENCE { contentType ContentType, content [0] EXPLICIT ANY DEFINED BY contentType }
//! SignedAttributes ::= SET SIZE (1..MAX) OF Attribute
//! ```

use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::EncapsulatedContentInfo;
use const_oid::db::{rfc5911, rfc5912};
use der::asn1::{Any, ObjectIdentifier, OctetString, SetOfVec, UtcTime};
use der::{Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;

use crate::algorithms::DigestAlg;
use crate::error::{Result, ScepError};
use crate::keys::{self, PrivateKeyOps, Unsigned as _};
use crate::wire::{octets, single_valued, Certificate, PartyIdentifier, RawSet, SignedDataAsSent, SignerInfoAsSent};

/// How a signer (or recipient) is named: RFC 5652 allows both; SCEP peers mostly use issuerAndSerialNumber.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub enum IdentifierKind {
    #[default]
    IssuerAndSerialNumber,
    SubjectKeyIdentifier,
}

/// Who signs a message: the key (through the crypto seam), its certificate and the digest to use.
pub struct Signer<'a> {
    pub key: &'a dyn PrivateKeyOps,
    pub certificate: &'a Certificate,
    pub digest: DigestAlg,
    pub identifier: IdentifierKind,
}

/// Builds a SignedData ContentInfo with `data` as id-data content and `attributes` + contentType +
/// messageDigest (+ signingTime when given) as signed attributes. `certificates` are included.
pub fn sign(
    data: &[u8],
    attributes: Vec<Attribute>,
    signer: &Signer<'_>,
    certificates: &[&Certificate],
    signing_time: Option<UtcTime>,
) -> Result<Vec<u8>> {
    let by = SignedBy { certificate: signer.certificate, digest: signer.digest, identifier: signer.identifier };
    unsigned(data, attributes, &by, certificates, signing_time)?.sign_with(signer.key)
}

/// Who will sign, without the key: the certificate that names the signer and the digest to use.
#[derive(Clone, Copy)]
pub struct SignedBy<'a> {
    pub certificate: &'a Certificate,
    pub digest: DigestAlg,
    pub identifier: IdentifierKind,
}

/// [`sign`] up to the signature: the SignedData whose signer's signature over the signed attributes is still
/// to be made by the key of `by.certificate`.
pub fn unsigned(
    data: &[u8],
    attributes: Vec<Attribute>,
    by: &SignedBy<'_>,
    certificates: &[&Certificate],
    signing_time: Option<UtcTime>,
) -> Result<UnsignedSignedData> {
    let digest = OctetString::new(by.digest.digest(data))?;
    let mut signed_attrs = vec![
        single_valued(rfc5911::ID_CONTENT_TYPE, Any::encode_from(&rfc5911::ID_DATA)?)?,
        single_valued(rfc5911::ID_MESSAGE_DIGEST, Any::encode_from(&digest)?)?,
    ];
    if let Some(t) = signing_time {
        signed_attrs.push(single_valued(rfc5911::ID_SIGNING_TIME, Any::encode_from(&t)?)?);
    }
    signed_attrs.extend(attributes);
    let signed_attrs = RawSet::from_elements(signed_attrs)?;
    let by_key_id = by.identifier == IdentifierKind::SubjectKeyIdentifier;
    Ok(UnsignedSignedData {
        // RFC 5652 §5.4: the signature covers the DER of the attributes as a SET OF, not as [0] IMPLICIT.
        to_be_signed: signed_attrs.as_universal_set_der()?,
        signed_attrs,
        data: data.to_vec(),
        sid: PartyIdentifier::for_certificate(by.certificate, by_key_id)?,
        by_key_id,
        digest: by.digest,
        certificates: certificate_set(certificates)?,
    })
}

/// A SignedData whose one SignerInfo waits for its signature (RFC 5652 §5.3, §5.5).
#[derive(Clone)]
pub struct UnsignedSignedData {
    data: Vec<u8>,
    signed_attrs: RawSet,
    to_be_signed: Vec<u8>,
    sid: PartyIdentifier,
    by_key_id: bool,
    digest: DigestAlg,
    certificates: Option<RawSet>,
}

impl keys::Unsigned for UnsignedSignedData {
    /// The SignedData ContentInfo, DER.
    type Signed = Vec<u8>;

    fn digest(&self) -> DigestAlg {
        self.digest
    }

    fn to_be_signed(&self) -> &[u8] {
        &self.to_be_signed
    }

    fn finish(self, signature: &[u8]) -> Result<Vec<u8>> {
        let digest_alg = AlgorithmIdentifierOwned { oid: self.digest.oid(), parameters: None };
        // RFC 5652 §5.3: version 1 for issuerAndSerialNumber, 3 for subjectKeyIdentifier.
        let version = if self.by_key_id { CmsVersion::V3 } else { CmsVersion::V1 };
        let signer_info = SignerInfoAsSent {
            version,
            sid: self.sid,
            digest_alg: digest_alg.clone(),
            signed_attrs: Some(self.signed_attrs),
            signature_algorithm: AlgorithmIdentifierOwned {
                oid: self.digest.rsa_signature_oid(),
                parameters: Some(Any::null()),
            },
            signature: OctetString::new(signature)?,
            unsigned_attrs: None,
        };
        let mut digest_algorithms = SetOfVec::new();
        digest_algorithms.insert(digest_alg)?;
        content_info(&SignedDataAsSent {
            version,
            digest_algorithms,
            encap_content_info: EncapsulatedContentInfo {
                econtent_type: rfc5911::ID_DATA,
                econtent: Some(Any::encode_from(&OctetString::new(self.data)?)?),
            },
            certificates: self.certificates,
            crls: None,
            signer_infos: RawSet::from_elements([signer_info])?,
        })
    }
}

/// A degenerate certs-only SignedData (RFC 8894 §3.4): no content, no signers, just certificates.
pub fn certs_only(certificates: &[&Certificate]) -> Result<Vec<u8>> {
    degenerate(certificates, &[])
}

/// A degenerate SignedData carrying certificates and/or CRLs (each CRL as its DER), as a GetCRL reply does.
pub fn degenerate(certificates: &[&Certificate], crls: &[&[u8]]) -> Result<Vec<u8>> {
    let crls = if crls.is_empty() {
        None
    } else {
        let mut sorted: Vec<&[u8]> = crls.to_vec();
        sorted.sort();
        Some(RawSet(sorted.concat()))
    };
    content_info(&SignedDataAsSent {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo { econtent_type: rfc5911::ID_DATA, econtent: None },
        certificates: certificate_set(certificates)?,
        crls,
        signer_infos: RawSet(Vec::new()),
    })
}

fn content_info(signed: &SignedDataAsSent) -> Result<Vec<u8>> {
    Ok(ContentInfo { content_type: rfc5911::ID_SIGNED_DATA, content: Any::encode_from(signed)? }.to_der()?)
}

fn certificate_set(certificates: &[&Certificate]) -> Result<Option<RawSet>> {
    if certificates.is_empty() {
        return Ok(None);
    }
    let mut unique: Vec<&Certificate> = Vec::new();
    for c in certificates {
        if !unique.contains(c) {
            unique.push(c);
        }
    }
    // Kept in the order given, leaf first, rather than DER-sorted: clients such as micromdm's scepclient take
    // the first certificate of a CertRep as theirs (OpenSSL and Go write SET OF certificates unsorted too).
    Ok(Some(RawSet::in_order(unique.into_iter().cloned())?))
}

/// A parsed SignedData, with each signer's attributes kept as sent so signatures can be checked.
#[derive(Clone, Debug)]
pub struct SignedMessage {
    pub content_type: ObjectIdentifier,
    /// The encapsulated content (the OCTET STRING's value), if any.
    pub content: Option<Vec<u8>>,
    pub certificates: Vec<Certificate>,
    pub signers: Vec<SignerInfoAsSent>,
}

impl SignedMessage {
    /// Parses a ContentInfo holding SignedData (tolerant of what peers send, see [`crate::wire`]).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let ci =
            ContentInfo::from_der(bytes).map_err(|e| ScepError::malformed(format!("not a CMS ContentInfo: {e}")))?;
        if ci.content_type != rfc5911::ID_SIGNED_DATA {
            return Err(ScepError::malformed(format!("expected SignedData, got content type {}", ci.content_type)));
        }
        let sd: SignedDataAsSent =
            ci.content.decode_as().map_err(|e| ScepError::malformed(format!("SignedData: {e}")))?;
        let content = match &sd.encap_content_info.econtent {
            None => None,
            Some(any) => Some(
                octets(any)
                    .map_err(|e| ScepError::malformed(format!("encapsulated content is not an OCTET STRING: {e}")))?,
            ),
        };
        let certificates = match &sd.certificates {
            None => Vec::new(),
            // Only the `certificate` choice is read; other certificate formats are tagged and skipped.
            Some(set) => set
                .element_tlvs()?
                .into_iter()
                .filter(|tlv| tlv.first() == Some(&0x30))
                .map(Certificate::from_der)
                .collect::<der::Result<_>>()
                .map_err(|e| ScepError::malformed(format!("certificate: {e}")))?,
        };
        let signers = sd.signer_infos.elements().map_err(|e| ScepError::malformed(format!("SignerInfo: {e}")))?;
        Ok(Self { content_type: sd.encap_content_info.econtent_type, content, certificates, signers })
    }

    /// The one signer a PKIMessage must have.
    pub fn signer(&self) -> Result<&SignerInfoAsSent> {
        match self.signers.as_slice() {
            [one] => Ok(one),
            [] => Err(ScepError::malformed("the message has no signer")),
            _ => Err(ScepError::malformed("the message has more than one signer")),
        }
    }

    /// The certificate among those carried that names the signer.
    pub fn signer_certificate(&self) -> Result<&Certificate> {
        let signer = self.signer()?;
        self.certificates
            .iter()
            .find(|c| signer.sid.identifies(c))
            .ok_or_else(|| ScepError::integrity("the signer's certificate is not in the message"))
    }

    /// The signer's authenticated attributes, in the order sent.
    pub fn signed_attributes(&self) -> Result<Vec<Attribute>> {
        let attrs = self
            .signer()?
            .signed_attrs
            .as_ref()
            .ok_or_else(|| ScepError::malformed("the signer has no signed attributes"))?;
        attrs.elements().map_err(|e| ScepError::malformed(format!("signed attributes: {e}")))
    }

    /// The digest the signer used (from digestAlgorithm; the signature algorithm may be plain rsaEncryption).
    pub fn digest_alg(&self) -> Result<DigestAlg> {
        DigestAlg::from_oid(&self.signer()?.digest_alg.oid)
    }

    /// Checks contentType, messageDigest and the signature against `cert` (RFC 5652 §5.4, §5.6) with `ops`.
    pub fn verify(&self, cert: &Certificate, ops: &dyn keys::PublicKeyOps) -> Result<()> {
        let signer = self.signer()?;
        let digest = self.digest_alg()?;
        let sig_oid = signer.signature_algorithm.oid;
        if sig_oid != rfc5912::RSA_ENCRYPTION && DigestAlg::from_oid(&sig_oid)? != digest {
            return Err(ScepError::integrity("signatureAlgorithm and digestAlgorithm disagree"));
        }
        let raw =
            signer.signed_attrs.as_ref().ok_or_else(|| ScepError::malformed("the signer has no signed attributes"))?;
        let attrs = self.signed_attributes()?;
        let find = |oid| attrs.iter().find(|a| a.oid == oid).and_then(|a| a.values.iter().next());
        let content_type =
            find(rfc5911::ID_CONTENT_TYPE).ok_or_else(|| ScepError::integrity("contentType attribute missing"))?;
        if content_type.decode_as::<ObjectIdentifier>().ok() != Some(self.content_type) {
            return Err(ScepError::integrity("contentType attribute does not match the content"));
        }
        let md = find(rfc5911::ID_MESSAGE_DIGEST)
            .and_then(|v| octets(v).ok())
            .ok_or_else(|| ScepError::integrity("messageDigest attribute missing"))?;
        if md != digest.digest(self.content.as_deref().unwrap_or_default()) {
            return Err(ScepError::integrity("messageDigest does not match the content"));
        }
        keys::check_signature(
            ops,
            &cert.tbs_certificate.subject_public_key_info,
            digest,
            &raw.as_universal_set_der()?,
            signer.signature.as_bytes(),
            "message",
        )
    }
}

/// Orders certificates leaf first: the one that issued none of the others, then up its issuer chain.
pub fn chain_order(mut certs: Vec<Certificate>) -> Vec<Certificate> {
    let issues_another = |c: &Certificate, all: &[Certificate]| {
        all.iter().any(|o| o != c && o.tbs_certificate.issuer == c.tbs_certificate.subject)
    };
    let Some(leaf_at) = certs.iter().position(|c| !issues_another(c, &certs)) else { return certs };
    let mut ordered = vec![certs.remove(leaf_at)];
    loop {
        let last = ordered.last().expect("ordered starts non-empty");
        if last.tbs_certificate.issuer == last.tbs_certificate.subject {
            break;
        }
        let issuer = last.tbs_certificate.issuer.clone();
        match certs.iter().position(|c| c.tbs_certificate.subject == issuer) {
            Some(at) => ordered.push(certs.remove(at)),
            None => break,
        }
    }
    ordered.extend(certs);
    ordered
}
