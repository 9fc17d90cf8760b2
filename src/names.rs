//! The names a certificate vouches for (RFC 5280 §4.1.2.6 subject, §4.2.1.6 subjectAltName), decided by the
//! CA: rendered from the profile's templates with the seat's values, never taken from the requester.
//!
//! ```text
//! Name ::= CHOICE { rdnSequence RDNSequence }
//! RDNSequence ::= SEQUENCE OF RelativeDistinguishedName
//! RelativeDistinguishedName ::= SET SIZE (1..MAX) OF AttributeTypeAndValue
//! SubjectAltName ::= GeneralNames
//! ```
//!
//! A CSR's names are only ever compared with the rendered ones: under [`CsrNames::Match`] (the default) a CSR
//! that asks for any other subject, an extra RDN, a second CN or a SAN the template does not produce is
//! refused; under [`CsrNames::Replace`] its names are ignored and the rendered ones issued. Either way the
//! issued certificate carries exactly the rendered names.

use core::str::FromStr;

use const_oid::db::{rfc3280, rfc4519};
use der::asn1::ObjectIdentifier;
use x509_cert::name::Name;

use crate::csr::{CsrFacts, San};
use crate::error::{Result, ScepError};
use crate::profile::{CertificateAttributes, ScepProfile};

/// What the CA does with the names a CSR asks for (the profile's `csr_names`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CsrNames {
    /// The CSR's subject must be the rendered subject, and each SAN it asks for one the template renders
    /// (it may leave the profile's SAN out: it is added). Anything else is refused.
    #[default]
    Match,
    /// The CSR's subject and SANs are ignored; the rendered names are issued (for clients that cannot be
    /// told what to ask for).
    Replace,
}

impl CsrNames {
    pub fn name(self) -> &'static str {
        match self {
            Self::Match => "match",
            Self::Replace => "replace",
        }
    }
}

/// The rule for a seat id (the admin API's and a seat created on first use): 1 to 128 of letters, digits,
/// `. _ @ + -` and inner spaces, starting with a letter or digit. As a regular expression, [`SEAT_ID_PATTERN`].
pub fn check_seat_id(id: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '+' | '-' | ' ');
    let fine = (1..=128).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && !id.ends_with(' ')
        && id.chars().all(allowed);
    if fine {
        Ok(())
    } else {
        Err(ScepError::not_permitted(
            format!("The seat id {id:?} {SEAT_ID_RULE}"),
            "send a CSR whose seat field is a valid seat id, or create the seat first",
        ))
    }
}

/// [`check_seat_id`]'s rule in words.
pub const SEAT_ID_RULE: &str =
    "must be 1 to 128 of letters, digits, . _ @ + - and inner spaces, starting with a letter or digit";
/// [`check_seat_id`]'s rule as an ECMAScript regular expression (for the OpenAPI document).
pub const SEAT_ID_PATTERN: &str = "^[A-Za-z0-9](?:[A-Za-z0-9._@+\\- ]{0,126}[A-Za-z0-9._@+\\-])?$";

/// The variables a template may use, all from the seat: `$USERNAME` and `$SEAT_ID` are the seat id.
pub const TEMPLATE_VARIABLES: &[&str] = &["USERNAME", "SEAT_ID"];

/// The subject and SANs the CA issues for a seat under a profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateNames {
    pub subject: Name,
    pub sans: Vec<San>,
}

impl CertificateNames {
    /// Renders the profile's `subject` and `certificate_attributes` templates with the seat's values.
    pub fn render(profile: &ScepProfile, seat_id: &str) -> Result<Self> {
        Ok(Self {
            subject: render_subject(&profile.subject, seat_id)?,
            sans: render_sans(profile.certificate_attributes.as_ref(), seat_id)?,
        })
    }

    /// The subject as RFC 4514 text.
    pub fn subject_text(&self) -> String {
        self.subject.to_string()
    }

    /// Checks a CSR's names against the rendered ones under the profile's [`CsrNames`] rule.
    pub fn check_requested(&self, csr: &CsrFacts, rule: CsrNames) -> Result<()> {
        if rule == CsrNames::Replace {
            return Ok(());
        }
        if !same_name(&csr.subject_name, &self.subject) {
            return Err(names_differ(format!(
                "the CSR's subject {} differs from {}, the subject the profile issues for this seat",
                csr.subject, self.subject
            )));
        }
        if let Some(foreign) = csr.sans.iter().find(|s| !self.sans.iter().any(|r| same_san(s, r))) {
            let expected = if self.sans.is_empty() {
                "none".to_owned()
            } else {
                self.sans.iter().map(|s| String::from(s.clone())).collect::<Vec<_>>().join(", ")
            };
            return Err(names_differ(format!("the CSR asks for subjectAltName {} which the profile does not issue for this seat (it issues {expected})", String::from(foreign.clone()))));
        }
        Ok(())
    }

    /// Refuses names that are the CA's or the RA's own (a leaf must never be mistaken for them).
    pub fn check_not_reserved(&self, reserved: &[Name]) -> Result<()> {
        if reserved.iter().any(|r| same_name(r, &self.subject)) {
            return Err(ScepError::not_permitted(
                format!("The subject {} is the CA's or RA's own name and is never issued to a seat", self.subject),
                "change the profile's subject template or the seat id",
            ));
        }
        Ok(())
    }
}

/// Whether two SANs name the same thing: DNS names and mail addresses compare without case (RFC 4343),
/// everything else exactly.
pub fn same_san(a: &San, b: &San) -> bool {
    match (a, b) {
        (San::Dns(x), San::Dns(y)) | (San::Email(x), San::Email(y)) => x.eq_ignore_ascii_case(y),
        _ => a == b,
    }
}

/// The subject template rendered for a seat: the value is escaped, so it cannot add RDNs.
pub fn render_subject(template: &str, seat_id: &str) -> Result<Name> {
    let text = substitute(template, seat_id, &escape_rdn_value(seat_id))?;
    Name::from_str(&text).map_err(|e| {
        ScepError::invalid_input(format!(
            "the subject template renders to {text:?}, which is not a distinguished name: {e}"
        ))
    })
}

/// The SAN template rendered for a seat: the value must be a plain label, so it cannot add a wildcard, a
/// second host or a path.
pub fn render_sans(attributes: Option<&CertificateAttributes>, seat_id: &str) -> Result<Vec<San>> {
    let Some(attributes) = attributes else { return Ok(Vec::new()) };
    let (template, make): (&str, fn(String) -> San) = match attributes {
        CertificateAttributes::Dnsname(t) => (t, San::Dns),
        CertificateAttributes::Rfc822name(t) => (t, San::Email),
        CertificateAttributes::UniformResourceIdentifier(t) => (t, San::Uri),
    };
    if template.contains('$') && !seat_id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return Err(ScepError::not_permitted(
            format!("Seat id {seat_id:?} cannot be rendered into the profile's subjectAltName template {template:?}"),
            "use seat ids of letters, digits, '-', '_' and '.' on profiles that certify a subjectAltName",
        ));
    }
    Ok(vec![make(substitute(template, seat_id, seat_id)?)])
}

fn names_differ(what: String) -> ScepError {
    ScepError::names_differ(&what)
}

/// Replaces every `$VARIABLE` of the template; an unknown variable is an error, not text.
fn substitute(template: &str, seat_id: &str, value: &str) -> Result<String> {
    let mut out = String::with_capacity(template.len() + value.len());
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let name: String = rest[at + 1..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if !TEMPLATE_VARIABLES.contains(&name.as_str()) {
            return Err(ScepError::invalid_input(format!(
                "template variable ${name} is unknown (known: {}) while rendering for seat {seat_id}",
                TEMPLATE_VARIABLES.iter().map(|v| format!("${v}")).collect::<Vec<_>>().join(", ")
            )));
        }
        out.push_str(value);
        rest = &rest[at + 1 + name.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

/// RFC 4514 §2.4: escapes a value so that it stays one attribute value.
fn escape_rdn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let edge_space = c == ' ' && (i == 0 || i == last);
        if matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\' | '=') || edge_space || (i == 0 && c == '#') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Two names are the same when they have the same RDNs in the same order, each with the same attribute types
/// and text values (the string type, PrintableString or UTF8String, does not matter).
pub fn same_name(a: &Name, b: &Name) -> bool {
    a.0.len() == b.0.len()
        && a.0.iter().zip(b.0.iter()).all(|(x, y)| {
            let texts = |rdn: &x509_cert::name::RelativeDistinguishedName| {
                let mut v: Vec<(ObjectIdentifier, Option<String>)> =
                    rdn.0.iter().map(|atv| (atv.oid, crate::wire::text(&atv.value))).collect();
                v.sort_by(|p, q| p.0.as_bytes().cmp(q.0.as_bytes()).then(p.1.cmp(&q.1)));
                v
            };
            let (tx, ty) = (texts(x), texts(y));
            tx == ty && tx.iter().all(|(_, t)| t.is_some())
        })
}

/// The seat a CSR names under a `seat_id_mapping`: the field must be there exactly once, or the request is
/// ambiguous (two CNs: one could name the seat while a relying party reads the other).
pub fn seat_id(csr: &CsrFacts, mapping: &str) -> Result<String> {
    let values: Vec<String> = match mapping {
        "subject.common_name" => attribute_values(&csr.subject_name, rfc4519::COMMON_NAME),
        "subject.serial_number" => attribute_values(&csr.subject_name, rfc4519::SERIAL_NUMBER),
        "subject.email_address" => attribute_values(&csr.subject_name, rfc3280::EMAIL_ADDRESS),
        san => {
            let kind = san.strip_prefix("san.").unwrap_or(san);
            csr.sans.iter().filter(|s| s.kind() == kind).map(|s| s.value().to_owned()).collect()
        }
    };
    match values.as_slice() {
        [one] if !one.is_empty() => Ok(one.clone()),
        [] | [_] => Err(ScepError::seat_not_found("<none>", mapping)),
        many => Err(ScepError::not_permitted(
            format!(
                "The CSR names its seat {} times ({mapping} = {}): the seat must be named exactly once",
                many.len(),
                many.join(", ")
            ),
            "send a CSR with exactly one value in the field the profile maps to the seat",
        )),
    }
}

fn attribute_values(name: &Name, oid: ObjectIdentifier) -> Vec<String> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .filter(|atv| atv.oid == oid)
        .map(|atv| crate::wire::text(&atv.value).unwrap_or_default())
        .collect()
}
