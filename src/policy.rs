//! Enrollment policy: from the facts of a request, what the store knows and the profile, decide whether to
//! issue, hold for approval, resend, or refuse with which error (`shared/spec/enrollment-errors.md`).
//!
//! Composed the micromdm way, one small rule after another, each returning early with its refusal:
//! retransmission → key and algorithm rules → renewal (authenticated by a certificate we issued, kept to the
//! seat and the profile that issued it) or first enrollment (seat named exactly once, open enrollment,
//! challenge) → the names the profile renders for the seat, checked against the CSR → issue or hold. The
//! secret comparisons (enrollment code, fixed challenge) are here, in constant time. A profile whose webhook
//! owns the challenge needs no enrollment: the seat must exist, the challenge is claimed once here (the webhook
//! judges it later, before anything is written).

use hmac::Mac;
use rand_core::CryptoRngCore;
use subtle::ConstantTimeEq;

use x509_cert::name::Name;

use crate::csr::{CsrFacts, San};
use crate::error::{FailInfo, Result, ScepError};
use crate::issue::rfc3339;
use crate::message::MessageType;
use crate::names::CertificateNames;
use crate::profile::{CertificateAttributes, ScepChallenge, ScepProfile};
use crate::server::RequestFacts;

/// What the store knows that bears on one request (looked up by the shell before [`decide`]).
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct StoreFacts {
    /// Whether the seat the CSR names exists.
    #[serde(default)]
    pub seat_exists: bool,
    /// The seat's open (CREATED) enrollment against this profile, if any.
    #[serde(default)]
    pub open_enrollment: Option<OpenEnrollment>,
    /// The seat's most recently redeemed enrollment against this profile: a code used twice is told apart
    /// from a seat that was never enrolled.
    #[serde(default)]
    pub redeemed_enrollment: Option<OpenEnrollment>,
    /// The certificate this CA issued that signed the request (found by the signer's fingerprint).
    #[serde(default)]
    pub signer_certificate: Option<IssuedCertificate>,
    /// An earlier transaction of this profile with the same transactionID.
    #[serde(default)]
    pub prior_transaction: Option<PriorTransaction>,
    /// Whether the challenge asked about ([`challenge_claim_mac`]) was used already.
    #[serde(default)]
    pub challenge_used: bool,
    /// The one-time password of this profile's challenge page the CSR's challenge is, if it is one.
    #[serde(default)]
    pub one_time_password: Option<OneTimePassword>,
    /// With a one-time password: whether the seat has a certificate (of any profile) valid now.
    #[serde(default)]
    pub seat_has_valid_certificate: bool,
    /// With a one-time password: whether an administrator deleted the seat.
    #[serde(default)]
    pub seat_deleted: bool,
}

/// A password the profile's challenge page handed out, as the store keeps it.
#[derive(Clone, Debug, serde::Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct OneTimePassword {
    /// [`crate::challenge_page::password_mac`] of the password.
    pub mac: String,
    pub expires_at: u64,
    pub redeemed: bool,
    /// Who fetched it (the page's user and address), for the audit log.
    pub issued_to: String,
    /// The seat it was fetched for (`?seat=`), if any.
    #[serde(default)]
    pub for_seat: Option<String>,
    /// [`crate::challenge_page::credential_tag`] of the page credentials it was fetched with.
    pub credential: String,
}

#[derive(Clone, Debug, serde::Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct OpenEnrollment {
    pub id: String,
    /// [`enrollment_code_mac`] of the code, hex.
    pub code_mac: String,
    pub expires_at: u64,
}

#[derive(Clone, Debug, serde::Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct IssuedCertificate {
    pub serial: String,
    pub seat_id: String,
    /// The profile that issued it: a renewal is only accepted there.
    pub profile_id: String,
    #[serde(default)]
    pub profile_name: Option<String>,
    pub not_after: u64,
    pub revoked: bool,
    pub renewed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "UPPERCASE")]
pub enum TransactionStatus {
    Pending,
    Issued,
    Rejected,
}

#[derive(Clone, Debug, serde::Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct PriorTransaction {
    pub status: TransactionStatus,
    /// [`key_digest`] of the CSR's public key.
    pub key_digest: String,
    #[serde(default)]
    pub certificate_serial: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    /// The certificate issued for it, to send again.
    #[serde(default)]
    pub certificate_der: Option<serde_bytes::ByteBuf>,
    /// The seat it was for (a CertPoll names none of its own).
    #[serde(default)]
    pub seat_id: Option<String>,
    /// The certificate plan (JSON), for a request forwarded to an upstream CA.
    #[serde(default)]
    pub plan: Option<String>,
    /// The upstream CA it was forwarded to (RA mode), and what its claim was ([`crate::pki_operation::ClaimRecord`], JSON).
    #[serde(default)]
    pub upstream: Option<String>,
    #[serde(default)]
    pub claim: Option<String>,
    /// When it was last changed (Unix seconds).
    #[serde(default)]
    pub updated_at: Option<u64>,
}

/// The certificate to issue, as policy shapes it: the names are the profile's for the seat.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
pub struct CertificatePlan {
    /// RFC 4514.
    pub subject: String,
    pub not_before: u64,
    pub not_after: u64,
    pub sans: Vec<San>,
    pub digital_signature: bool,
    pub key_encipherment: bool,
    pub digest: crate::algorithms::DigestAlg,
}

/// What a decision to issue or hold claims, first in the batch that saves it: the one thing of single use that
/// authorised it. A lost claim saves nothing.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Claim {
    /// The seat's open enrollment (its code, or a profile without a challenge).
    Enrollment { id: String },
    /// A challenge the profile's webhook owns ([`challenge_claim_mac`]).
    WebhookChallenge { mac: String },
    /// A one-time password from the profile's challenge page ([`crate::challenge_page`]); the seat is created
    /// with it when `create_seat`. `for_any_seat`: fetched without a seat, so it only enrolls a seat that has no
    /// valid certificate and no open code.
    #[serde(rename_all = "camelCase")]
    Password {
        mac: String,
        issued_to: String,
        create_seat: bool,
        #[serde(default)]
        for_any_seat: bool,
    },
    /// The certificate a renewal renews (claimed when issued, not while held).
    Renewal { serial: String },
}

impl Claim {
    /// The certificate renewed, for a renewal.
    pub fn renews(&self) -> Option<&str> {
        match self {
            Self::Renewal { serial } => Some(serial),
            _ => None,
        }
    }

    /// The enrollment redeemed, for a first enrollment by code.
    pub fn enrollment_id(&self) -> Option<&str> {
        match self {
            Self::Enrollment { id } => Some(id),
            _ => None,
        }
    }

    /// How the audit row says what authorised the certificate (after "Issued certificate S").
    pub fn describe(&self) -> String {
        match self {
            Self::Renewal { serial } => format!(" renewing {serial}"),
            Self::Password { mac, issued_to, create_seat, .. } => format!(
                " with one-time challenge password {} (issued to {issued_to}){}",
                crate::challenge_page::reference(mac),
                if *create_seat { "; seat created" } else { "" }
            ),
            Self::Enrollment { .. } | Self::WebhookChallenge { .. } => String::new(),
        }
    }
}

#[derive(Clone, Debug, serde::Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Issue now: the shell saves the certificate in one batch with its claim, and nothing if the claim lost.
    Issue {
        seat_id: String,
        claim: Claim,
        plan: CertificatePlan,
    },
    /// Hold for an administrator: claim now (a renewal only when approved), answer PENDING, keep the key and
    /// the plan.
    Hold {
        seat_id: String,
        claim: Claim,
        plan: CertificatePlan,
    },
    /// Answer with a certificate already issued for this transaction (retransmission, or a poll after approval).
    Resend {
        serial: String,
    },
    /// Still waiting for an administrator.
    Pending,
    Reject {
        error: ScepError,
    },
}

impl Decision {
    /// Issue, or hold when the profile wants an administrator's approval.
    fn issue_or_hold(profile: &ScepProfile, seat_id: String, claim: Claim, plan: CertificatePlan) -> Self {
        if profile.manual_approval {
            Self::Hold { seat_id, claim, plan }
        } else {
            Self::Issue { seat_id, claim, plan }
        }
    }
}

/// Seconds a certificate is backdated, for clients whose clocks run slow.
const BACKDATE: u64 = 300;

/// The seat a CSR names under the profile's mapping (exactly once).
pub fn seat_id(csr: &CsrFacts, profile: &ScepProfile) -> Result<String> {
    crate::names::seat_id(csr, &profile.seat_id_mapping)
}

/// SHA-256 of a CSR's SubjectPublicKeyInfo, hex: ties a transaction to one key.
pub fn key_digest(csr: &CsrFacts) -> String {
    crate::keys::key_digest(&csr.spki_der)
}

/// How long an enrollment code stays usable.
pub const ENROLLMENT_TTL: u64 = 7 * 86_400;

/// A new one-time enrollment code and what the store keeps of it.
#[derive(Clone, Debug, serde::Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct NewEnrollment {
    /// Shown once, to the administrator; never stored.
    pub code: String,
    pub code_mac: String,
    pub expires_at: u64,
}

/// A fresh enrollment code issued at `now`, MACed under `code_key`.
pub fn new_enrollment(code_key: &[u8], now: u64, rng: &mut impl CryptoRngCore) -> NewEnrollment {
    let code = new_enrollment_code(rng);
    NewEnrollment { code_mac: enrollment_code_mac(code_key, &code), code, expires_at: now + ENROLLMENT_TTL }
}

/// A fresh enrollment code: 20 RFC 4648 base32 characters (100 bits) in groups of five.
pub fn new_enrollment_code(rng: &mut impl CryptoRngCore) -> String {
    let mut bytes = [0u8; 13];
    rng.fill_bytes(&mut bytes);
    let encoded = <base32ct::Base32UpperUnpadded as base32ct::Encoding>::encode_string(&bytes);
    encoded.as_bytes()[..20].chunks(5).map(|c| std::str::from_utf8(c).expect("ASCII")).collect::<Vec<_>>().join("-")
}

/// HMAC-SHA-256 of an enrollment code under the server's secret key, hex: what the store keeps instead of
/// the code. Case, spaces and dashes are ignored so a code typed by a person still matches.
pub fn enrollment_code_mac(key: &[u8], code: &str) -> String {
    let normalized: String =
        code.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_uppercase();
    mac_hex(key, &[normalized.as_bytes()])
}

/// Whether the profile's webhook decides the challenge ([`crate::webhook::WebhookMode::Challenge`]).
pub fn webhook_owns_challenge(profile: &ScepProfile) -> bool {
    profile.webhook.as_ref().is_some_and(|w| w.mode == crate::webhook::WebhookMode::Challenge)
}

/// What the store keeps of a challenge the webhook owns once it is used: HMAC-SHA-256 under the server's key,
/// hex, domain-separated from enrollment codes and fixed challenges. Exact: the webhook's challenge is opaque.
pub fn challenge_claim_mac(key: &[u8], challenge: &str) -> String {
    mac_hex(key, &[b"scepkit webhook challenge\0", challenge.as_bytes()])
}

/// HMAC-SHA-256 of the concatenated `parts` under `key`, lowercase hex: every MAC the store keeps.
pub(crate) fn mac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    base16ct::lower::encode_string(&mac.finalize().into_bytes())
}

/// Decides on a PKIOperation. `code_key` is the secret enrollment codes (and fixed challenges) are MACed
/// with; `reserved` are the CA's and RA's own names, never issued to a seat.
pub fn decide(
    facts: &RequestFacts,
    profile: &ScepProfile,
    store: &StoreFacts,
    code_key: &[u8],
    reserved: &[Name],
    now: u64,
) -> Decision {
    match decide_inner(facts, profile, store, code_key, reserved, now) {
        Ok(d) => d,
        Err(error) => Decision::Reject { error },
    }
}

/// How far a requester's clock may be ahead of ours when it makes its signer certificate.
const CLOCK_SKEW: u64 = 86_400;

fn decide_inner(
    facts: &RequestFacts,
    profile: &ScepProfile,
    store: &StoreFacts,
    code_key: &[u8],
    reserved: &[Name],
    now: u64,
) -> Result<Decision> {
    check_signer_validity(facts, now)?;
    if facts.message_type == MessageType::CertPoll {
        return poll(facts, store);
    }
    let csr = facts.csr.as_ref().ok_or_else(|| {
        ScepError::not_permitted(
            format!("{} is not answered by policy", facts.message_type.name()),
            "send PKCSReq, RenewalReq or CertPoll",
        )
    })?;
    if let Some(prior) = &store.prior_transaction {
        return retransmission(facts, csr, prior);
    }
    check_key_and_algorithms(csr, profile)?;
    check_san_types(csr, profile)?;
    // RFC 8894 §3.3.1.2: a renewal is signed by the current certificate. certmonger sends PKCSReq for it.
    let renewal = facts.message_type == MessageType::RenewalReq
        || (!facts.signer.self_signed && store.signer_certificate.is_some());
    if renewal {
        let current = store.signer_certificate.as_ref().ok_or_else(|| {
            ScepError::not_permitted(
                "Failed to renew the specified certificate: it was not issued by this CA",
                "enroll afresh with a new enrollment code",
            )
        })?;
        check_renewal(current, profile, now)?;
        // The renewal keeps the seat of the certificate it renews, whatever the CSR names.
        let plan = plan_for(csr, profile, &current.seat_id, reserved, now)?;
        let claim = Claim::Renewal { serial: current.serial.clone() };
        return Ok(Decision::issue_or_hold(profile, current.seat_id.clone(), claim, plan));
    }
    let seat = seat_id(csr, profile)?;
    if let (ScepChallenge::Dynamic(_), false, Some(password)) =
        (&profile.scep_challenge, webhook_owns_challenge(profile), &store.one_time_password)
    {
        return redeem_password(csr, profile, store, password, seat, (code_key, reserved), now);
    }
    if !store.seat_exists {
        return Err(ScepError::seat_not_found(&seat, &profile.seat_id_mapping));
    }
    if webhook_owns_challenge(profile) {
        // The webhook will judge the challenge; here it is only ever used once.
        let given = csr.challenge.as_deref().filter(|c| !c.is_empty());
        let (Some(given), false) = (given, store.challenge_used) else {
            return Err(ScepError::challenge_invalid());
        };
        let plan = plan_for(csr, profile, &seat, reserved, now)?;
        let claim = Claim::WebhookChallenge { mac: challenge_claim_mac(code_key, given) };
        return Ok(Decision::issue_or_hold(profile, seat, claim, plan));
    }
    let Some(enrollment) = store.open_enrollment.as_ref() else {
        let reused = store
            .redeemed_enrollment
            .as_ref()
            .is_some_and(|used| code_matches(csr.challenge.as_deref(), used, code_key));
        return Err(if reused { ScepError::challenge_invalid() } else { ScepError::no_open_enrollment(&seat) });
    };
    check_challenge(csr.challenge.as_deref(), &profile.scep_challenge, enrollment, code_key, now)?;
    let plan = plan_for(csr, profile, &seat, reserved, now)?;
    let claim = Claim::Enrollment { id: enrollment.id.clone() };
    Ok(Decision::issue_or_hold(profile, seat, claim, plan))
}

/// A first enrollment with a one-time password from the profile's challenge page: unused, unexpired, fetched
/// with the page credentials the profile has now. A password fetched for a seat (`?seat=`) enrolls that seat
/// only; one fetched without enrolls only a seat that has no valid certificate and no open code (it cannot
/// take over an enrolled device), or a new seat where the profile creates seats on first use.
fn redeem_password(
    csr: &CsrFacts,
    profile: &ScepProfile,
    store: &StoreFacts,
    password: &OneTimePassword,
    seat: String,
    (code_key, reserved): (&[u8], &[Name]),
    now: u64,
) -> Result<Decision> {
    let reference = crate::challenge_page::reference(&password.mac);
    if password.redeemed {
        return Err(ScepError::one_time_password_spent(reference, "was used already"));
    }
    if password.expires_at <= now {
        let when = format!("expired at {}", rfc3339(password.expires_at));
        return Err(ScepError::one_time_password_spent(reference, &when));
    }
    let credential = crate::challenge_page::credential_tag(code_key, profile);
    let same_credential = credential.is_some_and(|c| bool::from(c.as_bytes().ct_eq(password.credential.as_bytes())));
    if !same_credential {
        let what = "was fetched with page credentials the profile no longer has";
        return Err(ScepError::one_time_password_spent(reference, what));
    }
    match &password.for_seat {
        Some(bound) if *bound != seat => {
            return Err(ScepError::not_permitted(
                format!("The one-time challenge password {reference} is for seat {bound}, not {seat}"),
                "send the CSR of the seat the password was fetched for, or fetch one for this seat",
            ))
        }
        Some(_) => {}
        None if store.seat_has_valid_certificate || store.open_enrollment.is_some() => {
            let has = if store.seat_has_valid_certificate { "a valid certificate" } else { "an open enrollment code" };
            return Err(ScepError::not_permitted(
                format!(
                    "Seat {seat} has {has}: a one-time challenge password fetched without a seat only enrolls seats \
                     that have neither"
                ),
                "fetch the password for this seat (mscep_admin/?seat=<seat id>), or use the seat's enrollment code",
            ));
        }
        None => {}
    }
    let create_seat = !store.seat_exists;
    if create_seat {
        if store.seat_deleted {
            return Err(ScepError::not_permitted(
                format!("Seat {seat} was deleted by an administrator"),
                "create the seat again before it enrolls",
            ));
        }
        if !profile.one_time_passwords().create_seats {
            return Err(ScepError::seat_not_found(&seat, &profile.seat_id_mapping));
        }
        crate::names::check_seat_id(&seat)?;
    }
    let plan = plan_for(csr, profile, &seat, reserved, now)?;
    let for_any_seat = password.for_seat.is_none();
    let claim =
        Claim::Password { mac: password.mac.clone(), issued_to: password.issued_to.clone(), create_seat, for_any_seat };
    Ok(Decision::issue_or_hold(profile, seat, claim, plan))
}

/// The certificate for `seat`: the names the profile renders for it (checked against the CSR under the
/// profile's `csr_names`), the profile's validity, key usages and digest.
fn plan_for(csr: &CsrFacts, profile: &ScepProfile, seat: &str, reserved: &[Name], now: u64) -> Result<CertificatePlan> {
    let names = CertificateNames::render(profile, seat)?;
    names.check_not_reserved(reserved)?;
    names.check_requested(csr, profile.csr_names)?;
    Ok(CertificatePlan {
        subject: names.subject_text(),
        not_before: now.saturating_sub(BACKDATE),
        not_after: now + u64::from(profile.validity_days) * 86_400,
        sans: names.sans,
        digital_signature: profile.use_as_digital_signature,
        key_encipherment: profile.use_for_key_encipherment,
        digest: profile.digest,
    })
}

/// The certificate that signed the request must be valid now (a transient self-signed one may start up to a
/// day ahead, for clients whose clocks run fast).
fn check_signer_validity(facts: &RequestFacts, now: u64) -> Result<()> {
    let bad_time = |what: &str| {
        let mut e = ScepError::not_permitted(
            format!("The certificate that signed the request {what}"),
            "check the device clock, and renew before the certificate expires",
        );
        e.fail_info = FailInfo::BadTime;
        e
    };
    if facts.signer.not_after < now {
        return Err(bad_time(&format!("expired at {}", rfc3339(facts.signer.not_after))));
    }
    if facts.signer.not_before > now + CLOCK_SKEW {
        return Err(bad_time(&format!("is not valid before {}", rfc3339(facts.signer.not_before))));
    }
    Ok(())
}

fn poll(facts: &RequestFacts, store: &StoreFacts) -> Result<Decision> {
    let prior = store.prior_transaction.as_ref().ok_or_else(|| {
        let mut e = ScepError::not_permitted(
            format!("No pending request with transactionID = {}", facts.transaction_id),
            "send the PKCSReq first, then poll with its transactionID",
        );
        e.fail_info = FailInfo::BadCertId;
        e
    })?;
    match prior.status {
        TransactionStatus::Pending => Ok(Decision::Pending),
        TransactionStatus::Issued => resend(prior),
        TransactionStatus::Rejected => Err(rejected(prior)),
    }
}

fn retransmission(facts: &RequestFacts, csr: &CsrFacts, prior: &PriorTransaction) -> Result<Decision> {
    if prior.key_digest != key_digest(csr) {
        return Err(ScepError::not_permitted(
            format!("transactionID {} is already used by a different request", facts.transaction_id),
            "use a fresh transactionID (scepkit derives it from the new key)",
        ));
    }
    match prior.status {
        TransactionStatus::Pending => Ok(Decision::Pending),
        TransactionStatus::Issued => resend(prior),
        TransactionStatus::Rejected => Err(rejected(prior)),
    }
}

fn resend(prior: &PriorTransaction) -> Result<Decision> {
    let serial = prior
        .certificate_serial
        .clone()
        .ok_or_else(|| ScepError::not_permitted("the transaction has no certificate", "enroll again"))?;
    Ok(Decision::Resend { serial })
}

fn rejected(prior: &PriorTransaction) -> ScepError {
    ScepError::not_permitted(
        prior.message.clone().unwrap_or_else(|| "The request was rejected by an administrator".into()),
        "ask the administrator why the request was rejected, then enroll again",
    )
}

fn check_key_and_algorithms(csr: &CsrFacts, profile: &ScepProfile) -> Result<()> {
    if csr.key_bits != profile.rsa_nbits as usize {
        return Err(ScepError::key_length_mismatch(csr.key_bits, profile.rsa_nbits as usize));
    }
    if csr.signature_digest < profile.digest {
        return Err(ScepError::unsupported_algorithm(format!(
            "the CSR is signed with {}, the profile requires {} or stronger",
            csr.signature_digest.name(),
            profile.digest.name()
        )));
    }
    let wants_more = (csr.digital_signature && !profile.use_as_digital_signature)
        || (csr.key_encipherment && !profile.use_for_key_encipherment);
    if wants_more {
        return Err(ScepError::not_permitted(
            "The CSR requests a key usage the profile does not allow",
            "request only the key usages of the profile",
        ));
    }
    Ok(())
}

/// SAN types the profile does not certify are refused outright (whatever `csr_names` says), with the type
/// named: a clearer answer than a name mismatch.
fn check_san_types(csr: &CsrFacts, profile: &ScepProfile) -> Result<()> {
    let allowed = match &profile.certificate_attributes {
        None => None,
        Some(CertificateAttributes::Dnsname(_)) => Some("dnsname"),
        Some(CertificateAttributes::Rfc822name(_)) => Some("rfc822name"),
        Some(CertificateAttributes::UniformResourceIdentifier(_)) => Some("uniform_resource_identifier"),
    };
    if profile.csr_names == crate::names::CsrNames::Replace {
        return Ok(());
    }
    if let Some(bad) = csr.sans.iter().find(|s| Some(s.kind()) != allowed) {
        return Err(ScepError::not_permitted(
            format!(
                "SAN type {} is not allowed by the profile{}",
                bad.kind(),
                allowed.map(|a| format!(" (it allows {a})")).unwrap_or_default()
            ),
            "request only the subjectAltName type the profile certifies",
        ));
    }
    Ok(())
}

fn check_renewal(current: &IssuedCertificate, profile: &ScepProfile, now: u64) -> Result<()> {
    if profile.id.as_deref() != Some(current.profile_id.as_str()) {
        let issuer = current.profile_name.as_deref().unwrap_or("(deleted)");
        return Err(ScepError::not_permitted(
            format!("Failed to renew the specified certificate: it was issued under profile {issuer}, and is only renewed there"),
            &format!("renew at the SCEP URL of profile {issuer} (/scep/{issuer}), or enroll afresh here with an enrollment code"),
        ));
    }
    if current.revoked {
        return Err(ScepError::revoked());
    }
    if current.renewed {
        return Err(ScepError::already_renewed());
    }
    let opens = current.not_after.saturating_sub(u64::from(profile.renewal_window_days) * 86_400);
    if now < opens {
        return Err(ScepError::renewal_too_early(&rfc3339(opens)));
    }
    Ok(())
}

fn check_challenge(
    given: Option<&str>,
    challenge: &ScepChallenge,
    enrollment: &OpenEnrollment,
    code_key: &[u8],
    now: u64,
) -> Result<()> {
    let ok = match challenge {
        ScepChallenge::None(_) => true,
        ScepChallenge::Fixed(fixed) => given.is_some_and(|g| fixed.matches(g, code_key)),
        ScepChallenge::Dynamic(_) => enrollment.expires_at > now && code_matches(given, enrollment, code_key),
    };
    if ok {
        Ok(())
    } else {
        Err(ScepError::challenge_invalid())
    }
}

/// Whether `given` is the enrollment's code, compared as MACs in constant time.
fn code_matches(given: Option<&str>, enrollment: &OpenEnrollment, code_key: &[u8]) -> bool {
    given.is_some_and(|g| bool::from(enrollment_code_mac(code_key, g).as_bytes().ct_eq(enrollment.code_mac.as_bytes())))
}
