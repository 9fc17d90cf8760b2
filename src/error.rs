//! The one error type of the core.
//!
//! Every failure the core can report carries what each audience needs: the SCEP `failInfo` for the wire
//! (RFC 8894 §3.2.1.4.5), an HTTP-style status for the admin API and the audit log, the message (the exact
//! wording of `shared/spec/enrollment-errors.md` where a row applies) and a resolution a person can act on.
//!
//! ```text
//! failInfo ::= PrintableString  -- "0".."4"
//!   badAlg          0  Unrecognized or unsupported algorithm
//!   badMessageCheck 1  Integrity check (signature verification) failed
//!   badRequest      2  Transaction not permitted or supported
//!   badTime         3  The signingTime attribute was not sufficiently close to the system time
//!   badCertId       4  No certificate could be identified matching the provided criteria
//! ```
//!
//! Choice of failInfo per enrollment failure (some clients, e.g. macOS and certmonger, show only the
//! failInfo, so the most telling code wins over the generic badRequest):
//!
//! | failure                               | failInfo        | status | why this code                               |
//! |---------------------------------------|-----------------|--------|---------------------------------------------|
//! | Failed to decrypt a PKCS7 message     | badMessageCheck | 404    | the envelope could not be opened by our key |
//! | Could not find seat ...               | badCertId       | 404    | nothing matches the identity in the CSR     |
//! | Challenge password is invalid ...     | badRequest      | 401    | the request is not permitted                |
//! | No SCEP enrollment with status ...    | badRequest      | 400    | the request is not permitted                |
//! | renewal is not permitted until ...    | badTime         | 400    | a time rule refused it                      |
//! | CSR key length n does not match m     | badAlg          | 400    | the key algorithm/size is not accepted      |
//! | it already has been renewed           | badCertId       | 400    | the certificate named is no longer current  |
//! | it has been revoked                   | badCertId       | 400    | the certificate named is not valid          |
//! | signature / messageDigest / CSR PoP   | badMessageCheck | 400    | an integrity check failed                   |
//! | unsupported or refused algorithm      | badAlg          | 400    |                                             |
//! | malformed input                       | badRequest      | 400    |                                             |

use core::fmt;

/// RFC 8894 §3.2.1.4.5 failInfo values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub enum FailInfo {
    BadAlg = 0,
    BadMessageCheck = 1,
    BadRequest = 2,
    BadTime = 3,
    BadCertId = 4,
}

impl FailInfo {
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::BadAlg,
            1 => Self::BadMessageCheck,
            2 => Self::BadRequest,
            3 => Self::BadTime,
            4 => Self::BadCertId,
            _ => return None,
        })
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::BadAlg => "badAlg",
            Self::BadMessageCheck => "badMessageCheck",
            Self::BadRequest => "badRequest",
            Self::BadTime => "badTime",
            Self::BadCertId => "badCertId",
        }
    }

    /// RFC 8894's one-line meaning, for `inspect` and for clients that got no failInfoText.
    pub fn meaning(self) -> &'static str {
        match self {
            Self::BadAlg => "Unrecognized or unsupported algorithm",
            Self::BadMessageCheck => "Integrity check (signature verification) failed",
            Self::BadRequest => "Transaction not permitted or supported",
            Self::BadTime => "The signingTime attribute was not sufficiently close to the system time",
            Self::BadCertId => "No certificate could be identified matching the provided criteria",
        }
    }
}

/// What went wrong, as a stable machine-readable kind (the audit log's `code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Bytes that are not the structure they claim to be.
    Malformed,
    /// An algorithm we do not implement, or one refused by policy (DES, MD5, SHA-1 without legacy).
    UnsupportedAlgorithm,
    /// Signature, messageDigest or proof-of-possession check failed.
    IntegrityCheck,
    /// The envelope is not for our key, or cannot be opened.
    DecryptFailed,
    /// The profile's CA is disabled for SCEP in the CA manager (answered as the seed's decryption failure).
    CaNotEnabled,
    SeatNotFound,
    ChallengeInvalid,
    NoOpenEnrollment,
    RenewalTooEarly,
    KeyLengthMismatch,
    AlreadyRenewed,
    Revoked,
    /// A request the profile or the protocol does not allow (wrong SAN type, unknown transaction, ...).
    NotPermitted,
    /// Invalid caller input to the library (bad profile, bad option), not a peer's fault.
    InvalidInput,
    /// The server refused the request (a FAILURE CertRep received by the client).
    Refused,
    /// The CA certificate does not match the pinned fingerprint.
    FingerprintMismatch,
    /// The server advertised SCEPStandard but a weaker algorithm was about to be used.
    Downgrade,
    /// What a request asks about does not exist (GetCert of an unknown serial).
    NotFound,
    /// The service could not complete a request (its store or host failed); the requester may retry.
    Internal,
    /// The client could not reach the server, or the server did not answer SCEP (an HTTP error status, a
    /// PKIOperation answered with another media type).
    Http,
    /// The server kept answering PENDING for as many polls as the client was told to make.
    StillPending,
    /// The profile's enrollment webhook refused the request.
    WebhookDenied,
    /// The profile's enrollment webhook gave no decision (timeout, HTTP error, unreadable answer): refused.
    WebhookUnavailable,
    /// The profile's upstream CA answered FAILURE (RA mode).
    UpstreamRefused,
    /// The profile's upstream CA gave no usable answer: unreachable, too slow, not the pinned CA.
    UpstreamUnavailable,
    /// The profile's upstream CA issued names the edge did not check: the certificate is withheld.
    UpstreamNames,
}

impl ErrorKind {
    /// The kind as the audit log's `code` spells it (the same as serde's).
    pub fn name(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::IntegrityCheck => "integrity_check",
            Self::DecryptFailed => "decrypt_failed",
            Self::CaNotEnabled => "ca_not_enabled",
            Self::SeatNotFound => "seat_not_found",
            Self::ChallengeInvalid => "challenge_invalid",
            Self::NoOpenEnrollment => "no_open_enrollment",
            Self::RenewalTooEarly => "renewal_too_early",
            Self::KeyLengthMismatch => "key_length_mismatch",
            Self::AlreadyRenewed => "already_renewed",
            Self::Revoked => "revoked",
            Self::NotPermitted => "not_permitted",
            Self::InvalidInput => "invalid_input",
            Self::Refused => "refused",
            Self::FingerprintMismatch => "fingerprint_mismatch",
            Self::Downgrade => "downgrade",
            Self::NotFound => "not_found",
            Self::Internal => "internal",
            Self::Http => "http",
            Self::StillPending => "still_pending",
            Self::WebhookDenied => "webhook_denied",
            Self::WebhookUnavailable => "webhook_unavailable",
            Self::UpstreamRefused => "upstream_refused",
            Self::UpstreamUnavailable => "upstream_unavailable",
            Self::UpstreamNames => "upstream_names",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ScepError {
    pub kind: ErrorKind,
    pub fail_info: FailInfo,
    /// HTTP-style status (404, 401, 400) used by the admin API and the audit log.
    pub status: u16,
    pub message: String,
    pub resolution: String,
    /// Which input fields failed and why (profile validation); empty otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<FieldIssue>,
}

/// One field that failed validation: its JSON path and the rule it broke.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
pub struct FieldIssue {
    pub path: String,
    pub rule: String,
}

pub type Result<T, E = ScepError> = core::result::Result<T, E>;

impl ScepError {
    fn new(kind: ErrorKind, fail_info: FailInfo, status: u16, message: impl Into<String>, resolution: &str) -> Self {
        Self {
            kind,
            fail_info,
            status,
            message: message.into(),
            resolution: resolution.to_owned(),
            details: Vec::new(),
        }
    }

    pub fn malformed(what: impl fmt::Display) -> Self {
        Self::new(
            ErrorKind::Malformed,
            FailInfo::BadRequest,
            400,
            format!("Malformed request: {what}"),
            "send a well-formed SCEP message (RFC 8894)",
        )
    }

    pub fn unsupported_algorithm(what: impl fmt::Display) -> Self {
        Self::new(
            ErrorKind::UnsupportedAlgorithm,
            FailInfo::BadAlg,
            400,
            format!("Unsupported algorithm: {what}"),
            "use an algorithm the server advertises in GetCACaps (AES, SHA-256 or stronger)",
        )
    }

    pub fn integrity(what: impl fmt::Display) -> Self {
        Self::new(
            ErrorKind::IntegrityCheck,
            FailInfo::BadMessageCheck,
            400,
            format!("Integrity check failed: {what}"),
            "the message was altered or signed with a key that does not match its certificate; build it again",
        )
    }

    pub fn decrypt_failed() -> Self {
        Self::new(
            ErrorKind::DecryptFailed,
            FailInfo::BadMessageCheck,
            404,
            "Failed to decrypt a PKCS7 message",
            "enable the issuing CA for SCEP operations, and encrypt to the certificate returned by GetCACert",
        )
    }

    /// The profile's CA is disabled in the CA manager: the seed's first failure, with why.
    pub fn ca_not_enabled() -> Self {
        Self::new(
            ErrorKind::CaNotEnabled,
            FailInfo::BadMessageCheck,
            404,
            "Failed to decrypt a PKCS7 message",
            "The CA associated to your profile is not enabled for SCEP operations: enable the issuing CA for SCEP \
             operations in the CA manager (Certificate authorities)",
        )
    }

    pub fn seat_not_found(seat_id: &str, mapping: &str) -> Self {
        Self::new(
            ErrorKind::SeatNotFound,
            FailInfo::BadCertId,
            404,
            format!("Could not find seat with identifier = {seat_id} using {mapping} as seat id mapping"),
            "create the seat and enroll it against the SCEP profile (one by one or by CSV upload)",
        )
    }

    /// The enrollment webhook said no; `reason` is its own, cleaned.
    pub fn webhook_denied(reason: &str) -> Self {
        Self::new(
            ErrorKind::WebhookDenied,
            FailInfo::BadRequest,
            403,
            format!("The enrollment webhook refused the request: {reason}"),
            "ask the administrator of the service behind the profile's webhook",
        )
    }

    /// The enrollment webhook could not be asked, or its answer was not a decision: nothing was issued.
    pub fn webhook_unavailable(what: &str) -> Self {
        Self::new(
            ErrorKind::WebhookUnavailable,
            FailInfo::BadRequest,
            503,
            format!("The enrollment webhook gave no decision ({what}); nothing was issued"),
            "retry later; if it persists, the administrator should check the webhook service",
        )
    }

    /// The upstream CA (RA mode) answered FAILURE: its failInfo, and its text after ours.
    pub fn upstream_refused(fail_info: FailInfo, text: &str) -> Self {
        Self::new(
            ErrorKind::UpstreamRefused,
            fail_info,
            403,
            format!("The upstream CA refused the request: {text}"),
            "ask the administrator of the upstream CA; nothing was used here, so the same enrollment code works \
             again once the cause is fixed",
        )
    }

    /// The upstream CA (RA mode) could not be asked, or its answer was unusable: nothing was used.
    pub fn upstream_unavailable(what: &str) -> Self {
        Self::new(
            ErrorKind::UpstreamUnavailable,
            FailInfo::BadRequest,
            503,
            format!("The upstream CA gave no usable answer ({what}); nothing was used, try again later"),
            "retry later; if it persists, the administrator should check the profile's upstream (scep_url, \
             fingerprint) and that the upstream CA is reachable from the service",
        )
    }

    /// The upstream CA issued names the profile does not render for the seat: the certificate is withheld.
    pub fn upstream_names(what: &str) -> Self {
        Self::new(
            ErrorKind::UpstreamNames,
            FailInfo::BadRequest,
            502,
            format!(
                "The upstream CA issued {what}, which this profile does not vouch for; the certificate was withheld"
            ),
            "make the upstream CA issue the names in the CSR as they are (no template that builds or adds names), \
             and have the upstream's administrator revoke the withheld certificate",
        )
    }

    /// The CSR asks for a subject or a subjectAltName the profile does not issue for the seat (`what` says which).
    pub fn names_differ(what: &str) -> Self {
        Self::not_permitted(
            format!("The requested names differ from the profile: {what}"),
            "the profile does not issue those names: request exactly the subject and subjectAltName it issues for \
             this seat (leave out a SAN it does not name), or ask the administrator to change the profile",
        )
    }

    pub fn challenge_invalid() -> Self {
        Self::new(
            ErrorKind::ChallengeInvalid,
            FailInfo::BadRequest,
            401,
            "Challenge password is invalid - does not match the value configured by the Administrator",
            "use the valid, unredeemed enrollment code of that seat",
        )
    }

    /// A one-time password of the profile's challenge page that cannot be used (again): `what` it did.
    pub fn one_time_password_spent(reference: &str, what: &str) -> Self {
        Self::new(
            ErrorKind::ChallengeInvalid,
            FailInfo::BadRequest,
            401,
            format!("Challenge password is invalid - the one-time challenge password {reference} {what}"),
            "fetch a new one-time challenge password from the profile's challenge page: each enrollment needs its own",
        )
    }

    pub fn no_open_enrollment(seat_id: &str) -> Self {
        Self::new(
            ErrorKind::NoOpenEnrollment,
            FailInfo::BadRequest,
            400,
            format!("No SCEP enrollment with status = CREATED exists for seat with identifier = {seat_id}"),
            "enroll the seat against a SCEP-enabled profile",
        )
    }

    /// `not_before` is an RFC 3339 time, rendered as the spec shows it: `<time>[UTC]`.
    pub fn renewal_too_early(not_before_rfc3339: &str) -> Self {
        Self::new(
            ErrorKind::RenewalTooEarly,
            FailInfo::BadTime,
            400,
            format!(
                "Failed to renew the specified certificate: renewal is not permitted until {not_before_rfc3339}[UTC]"
            ),
            "renew inside the profile's renewal window",
        )
    }

    pub fn key_length_mismatch(got: usize, want: usize) -> Self {
        Self::new(
            ErrorKind::KeyLengthMismatch,
            FailInfo::BadAlg,
            400,
            format!("CSR key length {got} does not match {want}"),
            "generate the key with the profile's size",
        )
    }

    pub fn already_renewed() -> Self {
        Self::new(
            ErrorKind::AlreadyRenewed,
            FailInfo::BadCertId,
            400,
            "Failed to renew the specified certificate: it already has been renewed",
            "use the newest certificate",
        )
    }

    pub fn revoked() -> Self {
        Self::new(
            ErrorKind::Revoked,
            FailInfo::BadCertId,
            400,
            "Failed to renew the specified certificate: it has been revoked",
            "enroll afresh with a new enrollment code",
        )
    }

    pub fn not_permitted(what: impl fmt::Display, resolution: &str) -> Self {
        Self::new(ErrorKind::NotPermitted, FailInfo::BadRequest, 400, what.to_string(), resolution)
    }

    /// badCertId: "the certificate the request names is not ours" is what a client can act on.
    pub fn not_found(what: impl fmt::Display, resolution: &str) -> Self {
        Self::new(ErrorKind::NotFound, FailInfo::BadCertId, 404, what.to_string(), resolution)
    }

    /// badRequest is all RFC 8894 offers for "try again later"; the text says so.
    pub fn internal() -> Self {
        Self::new(
            ErrorKind::Internal,
            FailInfo::BadRequest,
            503,
            "The SCEP service could not complete the request; retry later",
            "retry in a minute; if it keeps failing, tell the administrator the transactionID",
        )
    }

    pub fn invalid_input(what: impl fmt::Display) -> Self {
        Self::new(ErrorKind::InvalidInput, FailInfo::BadRequest, 400, what.to_string(), "correct the input and retry")
    }

    /// An object that failed validation, with every field that failed (the admin API's `E003 Invalid Object`).
    pub fn invalid_object(details: Vec<FieldIssue>) -> Self {
        let mut e = Self::invalid_input("Invalid Object");
        e.resolution = "correct the fields listed in details and retry".to_owned();
        e.details = details;
        e
    }

    /// A FAILURE CertRep as the client sees it: the server's failInfo and text, with our resolution.
    pub fn refused(fail_info: FailInfo, text: Option<&str>) -> Self {
        let message =
            text.map(str::to_owned).unwrap_or_else(|| format!("{}: {}", fail_info.name(), fail_info.meaning()));
        let resolution = resolution_for_text(&message).unwrap_or_else(|| {
            match fail_info {
                FailInfo::BadAlg => "use the key size, digest and cipher the server's profile requires",
                FailInfo::BadMessageCheck => "check that the CA certificate is the current one and retry",
                FailInfo::BadRequest => {
                    "check the enrollment code and that the device is enrolled with the administrator"
                }
                FailInfo::BadTime => "check the device clock, or retry inside the allowed window",
                FailInfo::BadCertId => {
                    "ask the administrator to register this device (seat) or use your newest certificate"
                }
            }
            .to_owned()
        });
        Self::new(ErrorKind::Refused, fail_info, 400, message, &resolution)
    }

    pub fn fingerprint_mismatch(expected: &str, got: &str) -> Self {
        Self::new(
            ErrorKind::FingerprintMismatch,
            FailInfo::BadCertId,
            400,
            format!("CA certificate fingerprint {got} does not match the pinned {expected}"),
            "check the SCEP URL and the fingerprint your administrator gave you; someone may be intercepting",
        )
    }

    /// The server's HTTP status (none when no answer came) as the status.
    pub fn http(message: impl Into<String>, status: Option<u16>) -> Self {
        Self::new(
            ErrorKind::Http,
            FailInfo::BadRequest,
            status.unwrap_or(502),
            message,
            "check your network connection and the server address, then try again",
        )
    }

    pub fn still_pending(polls: u32) -> Self {
        Self::new(
            ErrorKind::StillPending,
            FailInfo::BadRequest,
            202,
            format!("The request is still PENDING after {polls} polls"),
            "ask your administrator to approve the request, then enroll again",
        )
    }

    pub fn downgrade(what: impl fmt::Display) -> Self {
        Self::new(
            ErrorKind::Downgrade,
            FailInfo::BadAlg,
            400,
            format!("Refusing algorithm downgrade: {what}"),
            "the server advertises SCEPStandard; use AES and SHA-256 or stronger",
        )
    }
}

/// A client sees only the text of a FAILURE; the spec's failures are recognised by the fixed start of their
/// message (up to the first filled-in value) and answered with their own resolution.
fn resolution_for_text(text: &str) -> Option<String> {
    const HOLE: &str = "\u{0}";
    let known = [
        ScepError::decrypt_failed(),
        ScepError::seat_not_found(HOLE, HOLE),
        ScepError::challenge_invalid(),
        ScepError::no_open_enrollment(HOLE),
        ScepError::renewal_too_early(HOLE),
        ScepError::key_length_mismatch(0, 0),
        ScepError::already_renewed(),
        ScepError::revoked(),
        ScepError::names_differ(HOLE),
    ];
    known.into_iter().find_map(|e| {
        let fixed = e.message.split(|c: char| c == '\0' || c.is_ascii_digit()).next().unwrap_or_default();
        text.starts_with(fixed).then_some(e.resolution)
    })
}

impl fmt::Display for ScepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.fail_info.name())
    }
}

impl std::error::Error for ScepError {}

impl From<der::Error> for ScepError {
    fn from(e: der::Error) -> Self {
        Self::malformed(e)
    }
}
