//! The CA's procedure for one PKIOperation (RFC 8894 §4.3), as a sans-IO step machine.
//!
//! Like a rustls connection, the machine decides every step and its caller only moves bytes and rows: it
//! opens the request, says which facts it needs, decides, issues, says what to write (one batch: the claim
//! first, every other row guarded by it) and what to answer. The host runs the queries and the writes it is
//! given and feeds their results back; it holds no rule, no failInfo choice and no retry policy of its own.
//!
//! ```text
//! start ──► Refuse (HTTP 400)            the request cannot be answered with a CertRep
//!       ──► Key(decrypt) ─with_key_result─► …   the request's content key, by the RA's or the CA's key
//!       ──► NeedProfile ─with_profile─►  a cached profile was stale or doubted: open again under the store's
//!                                        copy (a fresh copy is never doubted, so this happens at most once)
//!       ──► NeedFacts ─with_facts─► NeedCrl ─with_crl─► Answer          (GetCRL)
//!                                 ► CallWebhook ─with_webhook─► …        (a profile with a webhook)
//!                                 ► Key(sign certificate) ─► Write ─written(claimed)─► Answer   (issue, hold)
//!                                         └─ lost the claim ─► NeedFacts (once more, on fresh facts)
//!                                 ► Answer                               (refusal, PENDING, resend, GetCert)
//! every Answer is first a Key(sign CertRep) step
//!
//! RA mode (a profile with `upstream`, crate::registration_authority): an issuance claims first and forwards
//!   Write(claim + PENDING transaction) ─► CallUpstream / Key(RA) … ─► Write(settle) ─► Answer
//!     SUCCESS: the transaction ISSUED with the upstream's certificate    PENDING: answered, kept
//!     FAILURE or no usable answer: the claim released, the transaction withdrawn (nothing used)
//!   a CertPoll (or a retransmission) of a forwarded transaction is relayed the same way; a FAILURE to a poll
//!   rejects it, no answer to a poll is answered PENDING.
//! ```
//!
//! Every private-key operation is a step ([`Step::Key`]): the host performs it with the key it holds and the
//! machine continues once. Every outcome has exactly one audit row: inside the write batch, or with the answer
//! for the host to write.

use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::algorithms::KeyTransport;
use crate::envelope::Sealed;
use crate::error::{Result, ScepError};
use crate::issue::IssueOptions;
use crate::issue::UnsignedCertificate;
use crate::keys::{KeyOperation, Unsigned};
use crate::message::MessageType;
use crate::policy::{self, Decision, StoreFacts};
use crate::profile::ScepProfile;
use crate::registration_authority::{
    self as ra, Exchange, ExchangeStep, Forward, Outcome, UpstreamAnswer, UpstreamRequest,
};
use crate::server::{read_request, Acceptance, CaKey, Identity, IncomingRequest, Reply, RequestFacts, ServerKeys};
use crate::signed::UnsignedSignedData;
use crate::webhook::{KeyFacts, WebhookAnswer, WebhookCall, WebhookConfig, WebhookMode, WebhookRequest};
use crate::wire::Certificate;

/// A profile as the store holds it.
#[derive(Clone, Debug)]
pub struct StoredProfile {
    pub id: String,
    pub name: String,
    pub profile: ScepProfile,
    /// The body exactly as stored: a cached copy is checked against it.
    pub stored: String,
    /// Whether this is the host's cached copy (checked in the facts batch) or was just read.
    pub cached: bool,
}

/// What the machine asks of its host next.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(tag = "step", rename_all = "camelCase")]
pub enum Step {
    /// Not answerable with a CertRep: answer HTTP `status` with `text`, and write `audit`.
    #[serde(rename_all = "camelCase")]
    Refuse { status: u16, text: String, audit: AuditRow },
    /// The cached profile was stale (or the refusal it led to must be confirmed): read the profile again and
    /// call [`PkiOperation::with_profile`]. Asked at most once per operation.
    NeedProfile,
    /// Read these facts (one round trip) and call [`PkiOperation::with_facts`].
    NeedFacts { query: FactQuery },
    /// Fetch the current CRL and call [`PkiOperation::with_crl`].
    NeedCrl,
    /// Perform this private-key operation with the endpoint's `key` (the CA's or the RA's) and call
    /// [`PkiOperation::with_key_result`] with the result (or `None` if the key could not).
    Key { key: CaKey, operation: KeyOperation },
    /// Send this request to the profile's webhook (within `call.timeout_ms`) and call
    /// [`PkiOperation::with_webhook`] with what came back, or why nothing did.
    CallWebhook { call: WebhookCall },
    /// Send this to the profile's upstream CA (within `request.timeout_ms`) and call
    /// [`PkiOperation::with_upstream`] with what came back, or why nothing did.
    CallUpstream { request: UpstreamRequest },
    /// Run these writes as one batch, in order, and call [`PkiOperation::written`] with whether the first
    /// (the claim) changed a row.
    Write { writes: Vec<Write> },
    /// Answer with this CertRep; write `audit` when there is one (it is not part of a batch already).
    #[serde(rename_all = "camelCase")]
    Answer {
        #[serde(with = "serde_bytes")]
        #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array"))]
        body: Vec<u8>,
        audit: Option<AuditRow>,
    },
}

/// The facts one step needs, all read in one round trip.
#[derive(Clone, Debug, Default, Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct FactQuery {
    pub profile_id: String,
    /// The seat the CSR names: does it exist, its open and last redeemed enrollment of this profile.
    pub seat_id: Option<String>,
    /// SHA-256 of the certificate that signed the request.
    pub signer_fingerprint: String,
    /// Look that certificate up among those this CA issued (renewals, and who asks for GetCert/GetCRL).
    pub find_signer_certificate: bool,
    /// An earlier transaction of this profile with this transactionID and signer (with its certificate).
    pub transaction_id: Option<String>,
    /// The certificate a GetCert asks for.
    pub certificate_serial: Option<String>,
    /// Check the cached profile: return the stored body.
    pub profile_body: bool,
    /// Check the CA the host took from its cache with the profile: return the current CA of this
    /// `ca_identity_name` (or the secrets' CA where none has it) as [`Facts::ca`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_identity_name: Option<String>,
    /// Was this challenge ([`policy::challenge_claim_mac`]) used already (a webhook owns it)?
    pub challenge_mac: Option<String>,
    /// The one-time password of this profile's challenge page with this MAC
    /// ([`crate::challenge_page::password_mac`]), if the CSR's challenge is shaped like one; with it, whether the
    /// seat has a certificate valid at `now`, and whether it was deleted.
    pub one_time_password_mac: Option<String>,
    pub now: Option<u64>,
    /// Read these facts, and everything after them, from the primary (not a replica that may lag it): a
    /// refusal is only given on facts the primary holds.
    pub primary: bool,
}

/// The facts a [`FactQuery`] found.
#[derive(Clone, Debug, Default, Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    #[serde(flatten)]
    pub store: StoreFacts,
    #[serde(default)]
    pub profile_body: Option<String>,
    /// GetCert: the certificate asked for.
    #[serde(default)]
    pub certificate: Option<FoundCertificate>,
    /// The seat of the issued certificate that signed the request, if one did.
    #[serde(default)]
    pub requester_seat: Option<String>,
    /// The CA a [`FactQuery::ca_identity_name`] names now.
    #[serde(default)]
    pub ca: Option<CurrentCa>,
}

/// A CA as the store holds it now: its CA manager id and whether it is enabled for SCEP.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct CurrentCa {
    pub id: String,
    pub enabled: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct FoundCertificate {
    pub seat_id: String,
    pub der: ByteBuf,
}

/// One write of a batch. A guard names the claim the row depends on: the row is written only if the claim is
/// this request's (so a lost claim writes nothing, and a crash leaves all or nothing).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(tag = "write", rename_all = "camelCase")]
pub enum Write {
    /// The claim of a first enrollment: the code, only while CREATED and unexpired (and `requires` holds).
    #[serde(rename_all = "camelCase")]
    Redeem { enrollment_id: String, transaction_id: String, claim: String, now: u64, requires: Vec<Precondition> },
    /// The claim of a challenge a webhook owns: recorded as used (at any profile of this CA), only if it was not.
    #[serde(rename_all = "camelCase")]
    ClaimChallenge {
        challenge_mac: String,
        profile_id: String,
        transaction_id: String,
        claim: String,
        now: u64,
        requires: Vec<Precondition>,
    },
    /// The claim of a one-time password from the challenge page: only while unredeemed and unexpired.
    #[serde(rename_all = "camelCase")]
    RedeemPassword {
        mac: String,
        profile_id: String,
        transaction_id: String,
        seat_id: String,
        claim: String,
        now: u64,
        requires: Vec<Precondition>,
    },
    /// A seat created by the one-time password that claimed it (unless it exists by then).
    #[serde(rename_all = "camelCase")]
    CreateSeat { seat_id: String, now: u64, guard: Option<Guard> },
    /// A password the challenge page hands out, kept as its MAC: only while the profile has fewer than
    /// `max_outstanding` unused, unexpired ones (NDES's password cache).
    #[serde(rename_all = "camelCase")]
    InsertOneTimePassword {
        mac: String,
        profile_id: String,
        issued_to: String,
        /// The seat it is for, if the page was asked for one.
        for_seat: Option<String>,
        /// [`crate::challenge_page::credential_tag`] of the page credentials it was fetched with.
        credential: String,
        expires_at: u64,
        max_outstanding: u32,
        now: u64,
    },
    /// Takes back the counts of a sign-in attempt at the challenge page that succeeded.
    #[serde(rename_all = "camelCase")]
    ForgiveAttempt { keys: [String; 2], window_start: u64, guard: Option<Guard> },
    /// The claim of a renewal: the renewed certificate, only while neither renewed nor revoked (and, when
    /// completing an approved renewal, only if `guard` holds).
    #[serde(rename_all = "camelCase")]
    ClaimRenewal { serial: String, renewed_by: String, guard: Option<Guard>, requires: Vec<Precondition> },
    /// The claim of an administrator's decision on a held request: only while it is still PENDING and, for a
    /// renewal being issued, while the certificate it renews is neither renewed nor revoked.
    #[serde(rename_all = "camelCase")]
    DecideHeld {
        key: TransactionKey,
        status: policy::TransactionStatus,
        serial: Option<String>,
        renews: Option<String>,
        /// A rejection's text: the failInfoText the next poll gets.
        message: Option<String>,
        now: u64,
        /// What else the decision requires of the store (an upstream's certificate settling a renewal: the
        /// certificate it renews still unrevoked).
        requires: Vec<Precondition>,
    },
    /// A forwarded renewal settled: the renewed certificate's claim by `attempt` becomes the new serial.
    #[serde(rename_all = "camelCase")]
    SettleRenewal { serial: String, attempt: String, renewed_by: String, guard: Option<Guard> },
    /// A forwarded request the upstream refused or never answered: its PENDING transaction is withdrawn, only
    /// if it is still this attempt's and still PENDING (the claim of the releasing batch).
    #[serde(rename_all = "camelCase")]
    Withdraw { key: TransactionKey, attempt: String },
    /// Gives back what `record` claimed (the code, the challenge, the password, the renewed certificate), only
    /// while it is still claimed by its attempt.
    #[serde(rename_all = "camelCase")]
    Unclaim { record: ClaimRecord, guard: Option<Guard> },
    #[serde(rename_all = "camelCase")]
    InsertCertificate { row: CertificateRow, guard: Option<Guard> },
    #[serde(rename_all = "camelCase")]
    InsertTransaction { row: TransactionRow, guard: Option<Guard> },
    /// The claim of a held request that claims nothing else (a renewal): its PENDING transaction, only if no copy
    /// of it is stored yet and `requires` holds.
    Hold { row: TransactionRow, requires: Vec<Precondition> },
    #[serde(rename_all = "camelCase")]
    InsertAudit { row: AuditRow, guard: Option<Guard> },
}

/// What a claim also requires of the store at the moment it is written: the facts a decision relied on that
/// no claim itself covers. The facts may come from a read replica that lags the primary (the Worker reads them
/// through a D1 session, `first-unconstrained`); the claim, written on the primary, is where they are checked
/// again. A claim refused for a precondition is a lost claim: the request is decided once more on fresh facts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Precondition {
    /// The seat exists and was not deleted.
    #[serde(rename_all = "camelCase")]
    SeatLive { seat_id: String },
    /// The seat was not deleted (a one-time password that creates its seat: absent is fine, deleted is not).
    #[serde(rename_all = "camelCase")]
    SeatNotDeleted { seat_id: String },
    /// The CA the request was handled under is still the one `ca_identity_name` names (as [`Facts::ca`] reads
    /// it) and is enabled.
    #[serde(rename_all = "camelCase")]
    CaCurrent { ca_identity_name: String, ca_id: String },
    /// The profile is still stored as the request was decided under (its body, byte for byte).
    #[serde(rename_all = "camelCase")]
    ProfileCurrent { profile_id: String, body: String },
    /// The seat has neither a valid certificate at `now` nor an open enrollment code at the profile (what a
    /// one-time password fetched without a seat may enroll).
    #[serde(rename_all = "camelCase")]
    SeatUnenrolled { seat_id: String, profile_id: String, now: u64 },
    /// The certificate is neither revoked nor renewed (what a held renewal may renew).
    Renewable { serial: String },
    /// The certificate is not revoked.
    NotRevoked { serial: String },
}

/// What a guarded row depends on.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Guard {
    #[serde(rename_all = "camelCase")]
    Redeemed { enrollment_id: String, claim: String },
    /// The challenge was recorded as used by this claim.
    #[serde(rename_all = "camelCase")]
    ChallengeClaimed { challenge_mac: String, claim: String },
    /// The one-time password was redeemed by this claim.
    #[serde(rename_all = "camelCase")]
    PasswordRedeemed { mac: String, claim: String },
    /// The challenge page's password was stored (its cache had room).
    #[serde(rename_all = "camelCase")]
    PasswordStored { mac: String },
    #[serde(rename_all = "camelCase")]
    Renewed { serial: String, renewed_by: String },
    /// The held request was moved to `status` (with `serial`) by this decision.
    #[serde(rename_all = "camelCase")]
    Decided { key: TransactionKey, status: policy::TransactionStatus, serial: Option<String> },
    /// The forwarded transaction is gone (withdrawn by this batch).
    #[serde(rename_all = "camelCase")]
    Withdrawn { key: TransactionKey },
    /// The write just before this one in the batch changed a row.
    JustWritten,
}

/// What a forwarded request claimed, kept with its transaction so that a refusal can give it back.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct ClaimRecord {
    #[cfg_attr(
        feature = "wasm",
        tsify(
            type = "{ kind: 'enrollment', id: string } | { kind: 'webhookChallenge', mac: string } | { kind: 'password', mac: string, issuedTo: string, createSeat: boolean, forAnySeat?: boolean } | { kind: 'renewal', serial: string }"
        )
    )]
    pub claim: policy::Claim,
    pub attempt: String,
    /// SHA-256 of the CSR the edge checked and forwarded: a retransmission forwards only that same CSR.
    #[serde(default)]
    pub csr_digest: Option<String>,
}

/// A transaction's key in the store.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct TransactionKey {
    pub profile_id: String,
    pub transaction_id: String,
    pub signer_fingerprint: String,
}

/// A request held for an administrator (a PENDING transaction), as the store keeps it.
#[derive(Clone, Debug, Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct HeldRequest {
    #[serde(flatten)]
    pub key: TransactionKey,
    pub profile_name: String,
    pub seat_id: String,
    /// SubjectPublicKeyInfo DER (or, saved before migration 0002, the CSR).
    pub public_key: ByteBuf,
    /// The plan policy made, JSON.
    pub plan: String,
    #[serde(default)]
    pub renews: Option<String>,
    /// Set when the request was forwarded to an upstream CA: that CA decides, not this one's administrator.
    #[serde(default)]
    pub upstream: Option<String>,
}

/// What an administrator's decision writes (one batch: the decision first, every other row guarded by it),
/// and the serial of the certificate issued, if approved.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct HeldDecision {
    pub writes: Vec<Write>,
    pub serial: Option<String>,
}

/// Approves (issues the held plan: the names policy rendered when the request came) or rejects a held request.
/// The next CertPoll gets the certificate, or the policy's standard refusal.
pub fn decide_held(
    identity: &Identity,
    keys: &ServerKeys,
    held: &HeldRequest,
    approve: bool,
    reason: Option<&str>,
    now: u64,
) -> Result<HeldDecision> {
    if let Some(upstream) = &held.upstream {
        return Err(ScepError::not_permitted(
            format!("This request waits for the upstream CA at {upstream}, not for an administrator here"),
            "approve or reject it at the upstream CA; the device's next poll relays the decision",
        ));
    }
    if approve && !identity.enabled {
        return Err(ScepError::ca_not_enabled());
    }
    let operation = if approve { "approve" } else { "reject" };
    let audit = |code: &str, message: String| AuditRow {
        time: now,
        profile: Some(held.profile_name.clone()),
        seat_id: Some(held.seat_id.clone()),
        transaction_id: Some(held.key.transaction_id.clone()),
        operation: operation.to_owned(),
        status: AuditStatus::Success,
        code: code.to_owned(),
        message,
        resolution: None,
    };
    if !approve {
        let status = policy::TransactionStatus::Rejected;
        let guard = Some(Guard::Decided { key: held.key.clone(), status, serial: None });
        // The administrator's reason, as one line of at most 200 characters, is what the requester is told.
        let reason: Option<String> = reason
            .map(|r| r.chars().map(|c| if c.is_control() { ' ' } else { c }).take(200).collect::<String>())
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        let text = match &reason {
            Some(r) => format!("The request was rejected by an administrator: {r}"),
            None => "The request was rejected by an administrator".to_owned(),
        };
        let decide = Write::DecideHeld {
            key: held.key.clone(),
            status,
            serial: None,
            renews: None,
            message: Some(text.clone()),
            now,
            requires: Vec::new(),
        };
        let row = audit("rejected", format!("Rejected; the next poll gets FAILURE: {text}"));
        return Ok(HeldDecision { writes: vec![decide, Write::InsertAudit { row, guard }], serial: None });
    }
    let plan: policy::CertificatePlan = serde_json::from_str(&held.plan)
        .map_err(|e| ScepError::invalid_input(format!("the held plan cannot be read: {e}")))?;
    let serial = random_serial();
    let serial_hex = crate::wire::serial_hex(&serial);
    let public_key = crate::issue::stored_public_key(&held.public_key)?;
    let certificate =
        crate::issue::issue(public_key, &IssueOptions::from_plan(&plan, serial.to_vec()), &identity.ca_cert)?
            .sign_with(keys.key(CaKey::Ca)?)?;
    let der = der::Encode::to_der(&certificate)?;
    let status = policy::TransactionStatus::Issued;
    let guard = Some(Guard::Decided { key: held.key.clone(), status, serial: Some(serial_hex.clone()) });
    let mut writes = vec![Write::DecideHeld {
        key: held.key.clone(),
        status,
        serial: Some(serial_hex.clone()),
        renews: held.renews.clone(),
        message: None,
        now,
        requires: Vec::new(),
    }];
    if let Some(renews) = &held.renews {
        writes.push(Write::ClaimRenewal {
            serial: renews.clone(),
            renewed_by: serial_hex.clone(),
            guard: guard.clone(),
            // The administrator's decision reads the primary; the held transaction is the claim.
            requires: Vec::new(),
        });
    }
    let row = CertificateRow {
        serial: serial_hex.clone(),
        fingerprint: crate::keys::fingerprint(&der),
        seat_id: held.seat_id.clone(),
        profile_id: held.key.profile_id.clone(),
        subject: certificate.tbs_certificate.subject.to_string(),
        not_before: plan.not_before,
        not_after: plan.not_after,
        der,
        transaction_id: held.key.transaction_id.clone(),
        ca_id: identity.ca_id.clone(),
        upstream: None,
        now,
    };
    writes.push(Write::InsertCertificate { row, guard: guard.clone() });
    let renewing = held.renews.as_ref().map(|r| format!(" renewing {r}")).unwrap_or_default();
    writes.push(Write::InsertAudit {
        row: audit("approved", format!("Approved; issued certificate {serial_hex}{renewing}")),
        guard,
    });
    Ok(HeldDecision { writes, serial: Some(serial_hex) })
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct CertificateRow {
    pub serial: String,
    pub fingerprint: String,
    pub seat_id: String,
    pub profile_id: String,
    pub subject: String,
    pub not_before: u64,
    pub not_after: u64,
    #[serde(with = "serde_bytes")]
    #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array"))]
    pub der: Vec<u8>,
    pub transaction_id: String,
    /// The CA manager's id of the issuing CA (None: the secrets' CA, unless `upstream` issued it).
    pub ca_id: Option<String>,
    /// The upstream CA that issued it (RA mode): its SCEP URL.
    pub upstream: Option<String>,
    pub now: u64,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct TransactionRow {
    pub profile_id: String,
    pub transaction_id: String,
    pub signer_fingerprint: String,
    pub seat_id: String,
    pub message_type: &'static str,
    pub key_digest: String,
    pub status: policy::TransactionStatus,
    /// SubjectPublicKeyInfo DER: the CSR is not kept (it carries the code as its challengePassword).
    #[serde(with = "serde_bytes")]
    #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array"))]
    pub public_key: Vec<u8>,
    /// JSON of the certificate plan (for approval).
    pub plan: String,
    pub enrollment_id: Option<String>,
    pub renews: Option<String>,
    pub serial: Option<String>,
    /// Where the request came from, as the host saw it (shown to an approver).
    pub client_address: Option<String>,
    /// RA mode: the upstream CA the request was forwarded to, and the [`ClaimRecord`] (JSON) to give back.
    pub upstream: Option<String>,
    pub claim: Option<String>,
    pub now: u64,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct AuditRow {
    pub time: u64,
    pub profile: Option<String>,
    pub seat_id: Option<String>,
    pub transaction_id: Option<String>,
    pub operation: String,
    pub status: AuditStatus,
    pub code: String,
    pub message: String,
    /// What to do about a failure: its error's resolution, shown beside it in the console.
    pub resolution: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
pub enum AuditStatus {
    Success,
    Failure,
}

/// One PKIOperation in progress.
pub struct PkiOperation {
    request: IncomingRequest,
    facts: Option<RequestFacts>,
    profile: StoredProfile,
    code_key: Vec<u8>,
    now: u64,
    /// Where the request came from, as the host saw it (for the webhook).
    client_address: Option<String>,
    /// The CA the request was opened under, as the identity said then (a host may share one identity).
    opened_ca: Option<CurrentCa>,
    /// Facts are read from the primary from now on (a refusal was to be confirmed).
    on_primary: bool,
    state: State,
}

enum State {
    Opened,
    AwaitingProfile,
    AwaitingKey { key: CaKey, operation: KeyOperation, pending: KeyPending },
    AwaitingFacts { query: FactQuery, raced: bool },
    AwaitingCrl { requester: String, requester_seat: Option<String> },
    AwaitingWebhook { query: FactQuery, decision: Decision, raced: bool },
    AwaitingWrite { query: FactQuery, outcome: Pending, raced: bool },
    AwaitingUpstream { exchange: Box<Exchange>, forwarded: Box<Forwarded> },
    Done,
}

/// A request forwarded to the profile's upstream CA (or a poll relayed to it), and what settles it.
struct Forwarded {
    query: FactQuery,
    seat_id: String,
    plan: policy::CertificatePlan,
    record: ClaimRecord,
    key: TransactionKey,
    /// SHA-256 of the device's public key: the upstream's certificate must carry it.
    key_digest: String,
    /// Relayed (a CertPoll, or a retransmission of a forwarded request): the upstream had it already, so its
    /// FAILURE rejects the transaction (nothing is given back) and no answer leaves it PENDING.
    relayed: bool,
}

/// A private-key operation handed out, and what the machine does with its result.
enum KeyPending {
    /// The request's content-encryption key, sealed to the endpoint's key.
    ContentKey { sealed: Sealed, transport: KeyTransport },
    /// The certificate of an issuance, to be signed by the CA's key.
    Certificate { unsigned: UnsignedCertificate, next: Box<Issuing> },
    /// The CertRep, to be signed by the RA's (or the CA's) key.
    Reply { unsigned: UnsignedSignedData, audit: Option<AuditRow> },
    /// A step of the exchange with the upstream CA (its request signed, its reply opened, by the RA's key).
    Upstream { exchange: Box<Exchange>, forwarded: Box<Forwarded> },
}

/// An issuance waiting for the CA's signature.
struct Issuing {
    query: FactQuery,
    seat_id: String,
    claim: policy::Claim,
    plan: policy::CertificatePlan,
    serial: [u8; 16],
    raced: bool,
}

/// What a write batch was for: how to answer once it is done, or what was claimed when it was lost.
enum Pending {
    Issued {
        certificate: Vec<u8>,
        renewal: bool,
    },
    Held,
    /// The claim of a request to forward: once it holds, the upstream is asked.
    Forwarding(Box<Forwarded>),
    /// What a forwarded request came to, saved: answered once the batch took.
    Settled(Settled),
}

enum Settled {
    Issued { certificate: Vec<u8>, upstream_ca: Box<Certificate> },
    Failed(ScepError),
}

impl PkiOperation {
    /// Reads a PKIOperation's bytes under a profile and opens it. `code_key` MACs enrollment codes and fixed
    /// challenges; `now` is Unix seconds; `client_address` is where the request came from, if the host knows.
    pub fn start(
        bytes: &[u8],
        profile: StoredProfile,
        identity: &Identity,
        code_key: &[u8],
        now: u64,
        client_address: Option<&str>,
    ) -> (Option<Self>, Step) {
        let request = match read_request(bytes) {
            Ok(r) => r,
            Err(e) => {
                let audit = malformed(now, &profile.name, &e.message);
                return (None, Step::Refuse { status: 400, text: format!("Bad SCEP request: {}", e.message), audit });
            }
        };
        let client_address = client_address.map(str::to_owned);
        let code_key = code_key.to_vec();
        let mut op = Self {
            request,
            facts: None,
            profile,
            code_key,
            now,
            client_address,
            opened_ca: None,
            on_primary: false,
            state: State::Opened,
        };
        let step = op.open(identity);
        (Some(op), step)
    }

    /// Continues after [`Step::NeedProfile`] with the profile as the store holds it now (`None`: it is gone, and
    /// the request is refused with HTTP 404). The request is opened again under it; nothing read is reused.
    pub fn with_profile(&mut self, identity: &Identity, profile: Option<StoredProfile>) -> Step {
        if !matches!(self.state, State::AwaitingProfile) {
            return self.out_of_order(identity);
        }
        let Some(profile) = profile else {
            self.state = State::Done;
            let text = format!("No SCEP profile named {}", self.profile.name);
            let audit = audit_row(
                self.now,
                Some(&self.profile.name),
                None,
                Some(self.request.attributes.transaction_id.clone()),
                "PKIOperation",
                AuditStatus::Failure,
                "no_profile",
                &text,
            );
            return Step::Refuse { status: 404, text, audit };
        };
        self.profile = StoredProfile { cached: false, ..profile };
        self.facts = None;
        self.state = State::Opened;
        self.open(identity)
    }

    fn open(&mut self, identity: &Identity) -> Step {
        self.opened_ca = identity.ca_id.clone().map(|id| CurrentCa { id, enabled: identity.enabled });
        if !identity.enabled {
            // The CA may be cached with the profile: the refusal is only given on a fresh copy of both.
            return self.refused_at_opening(identity, ScepError::ca_not_enabled());
        }
        let accept =
            Acceptance { policy: self.profile.profile.algorithm_policy(), oaep_only: self.profile.profile.oaep_only };
        let unsealed = self.request.unseal(accept, identity.public_ops.as_ref()).and_then(|sealed| {
            // The first of the endpoint's certificates the envelope is for (the RA's, then the CA's).
            let (key, encrypted) = identity
                .recipient_certificates()
                .into_iter()
                .find_map(|(key, certificate)| Some((key, sealed.for_recipient(certificate).ok()?)))
                .ok_or_else(ScepError::decrypt_failed)?;
            Ok((sealed, key, encrypted))
        });
        match unsealed {
            Err(e) => self.refused_at_opening(identity, e),
            Ok((sealed, key, encrypted)) => {
                let transport = encrypted.transport;
                let operation = KeyOperation::Decrypt { transport, ciphertext: encrypted.ciphertext };
                self.await_key(key, operation, KeyPending::ContentKey { sealed, transport })
            }
        }
    }

    /// A refusal that depends on the profile (3DES on a modern one, say) is only given on a fresh copy.
    fn refused_at_opening(&mut self, identity: &Identity, e: ScepError) -> Step {
        if self.profile.cached {
            self.need_profile()
        } else {
            self.fail(identity, &e, None)
        }
    }

    fn await_key(&mut self, key: CaKey, operation: KeyOperation, pending: KeyPending) -> Step {
        self.state = State::AwaitingKey { key, operation: operation.clone(), pending };
        Step::Key { key, operation }
    }

    /// The private-key operation the last [`Step::Key`] handed out, for a host that performs it with keys it
    /// holds ([`crate::server::ServerKeys`]); `None` when none is pending.
    pub fn pending_key_operation(&self) -> Option<(CaKey, &KeyOperation)> {
        match &self.state {
            State::AwaitingKey { key, operation, .. } => Some((*key, operation)),
            _ => None,
        }
    }

    /// Continues with the result of the last [`Step::Key`]: the signature or the decrypted content-encryption
    /// key, or `None` when the host's key could not perform it. A decryption that fails reads exactly like
    /// bad content (no oracle); a signature the host cannot make is this endpoint's fault (HTTP 503).
    pub fn with_key_result(&mut self, identity: &Identity, result: Option<Vec<u8>>) -> Step {
        let State::AwaitingKey { pending, .. } = std::mem::replace(&mut self.state, State::Done) else {
            return self.out_of_order(identity);
        };
        match pending {
            KeyPending::ContentKey { sealed, transport } => {
                let accept = Acceptance {
                    policy: self.profile.profile.algorithm_policy(),
                    oaep_only: self.profile.profile.oaep_only,
                };
                let content_key = zeroize::Zeroizing::new(result.unwrap_or_default());
                let opened = sealed
                    .decrypt(&content_key, transport)
                    .and_then(|opened| self.request.read_content(&opened, accept, identity.public_ops.as_ref()));
                match opened {
                    Err(e) => self.refused_at_opening(identity, e),
                    Ok(facts) => {
                        let query = self.query_for(identity, &facts);
                        self.facts = Some(facts);
                        self.state = State::AwaitingFacts { query: query.clone(), raced: false };
                        Step::NeedFacts { query }
                    }
                }
            }
            KeyPending::Certificate { unsigned, next } => {
                let signed = result.ok_or_else(ScepError::internal).and_then(|signature| unsigned.finish(&signature));
                match signed {
                    Ok(certificate) => self.issued(identity, certificate, *next),
                    Err(e) => self.fail(identity, &e, Some(next.seat_id)),
                }
            }
            KeyPending::Upstream { mut exchange, forwarded } => {
                let step = exchange.with_key_result(result, identity.public_ops.as_ref());
                self.drive(identity, exchange, forwarded, step)
            }
            KeyPending::Reply { unsigned, audit } => match result.map(|signature| unsigned.finish(&signature)) {
                Some(Ok(body)) => Step::Answer { body, audit },
                _ => Step::Refuse {
                    status: 503,
                    text: "The service could not sign its answer; retry later".into(),
                    audit: audit
                        .unwrap_or_else(|| malformed(self.now, &self.profile.name, "the reply could not be signed")),
                },
            },
        }
    }

    /// `query` again, with the profile and the CA it was decided under checked too, and from the primary once
    /// a refusal was to be confirmed.
    fn fresh(&self, mut query: FactQuery) -> FactQuery {
        query.profile_body = true;
        if self.opened_ca.is_some() {
            query.ca_identity_name = Some(self.profile.profile.ca_identity_name.clone());
        }
        query.primary = self.on_primary;
        query
    }

    fn need_profile(&mut self) -> Step {
        self.state = State::AwaitingProfile;
        Step::NeedProfile
    }

    /// The transactionID and message type as read, for logs (also of a request that could not be opened).
    pub fn transaction_id(&self) -> &str {
        &self.request.attributes.transaction_id
    }

    fn query_for(&self, identity: &Identity, facts: &RequestFacts) -> FactQuery {
        let mut query = FactQuery {
            profile_id: self.profile.id.clone(),
            signer_fingerprint: facts.signer.fingerprint.clone(),
            find_signer_certificate: !facts.signer.self_signed,
            // A cached profile came with a cached CA: both are checked in the same round trip as the facts.
            ca_identity_name: (self.profile.cached && identity.ca_id.is_some())
                .then(|| self.profile.profile.ca_identity_name.clone()),
            primary: self.on_primary,
            ..Default::default()
        };
        match facts.message_type {
            MessageType::GetCert => query.certificate_serial = facts.issuer_and_serial.as_ref().map(|(_, s)| s.clone()),
            MessageType::GetCrl => {}
            _ => {
                query.seat_id = facts.csr.as_ref().and_then(|csr| policy::seat_id(csr, &self.profile.profile).ok());
                let challenge = facts.csr.as_ref().and_then(|csr| csr.challenge.as_deref());
                if policy::webhook_owns_challenge(&self.profile.profile) {
                    query.challenge_mac = challenge.map(|c| policy::challenge_claim_mac(&self.code_key, c));
                } else if matches!(self.profile.profile.scep_challenge, crate::profile::ScepChallenge::Dynamic(_)) {
                    query.one_time_password_mac = challenge
                        .and_then(|c| crate::challenge_page::password_mac(&self.code_key, &self.profile.id, c));
                    query.now = query.one_time_password_mac.as_ref().map(|_| self.now);
                }
                query.transaction_id = Some(facts.transaction_id.clone());
                query.profile_body = self.profile.cached;
            }
        }
        query
    }

    /// Continues with the facts the last [`Step::NeedFacts`] asked for.
    pub fn with_facts(&mut self, identity: &Identity, found: Facts) -> Step {
        let State::AwaitingFacts { query, raced } = std::mem::replace(&mut self.state, State::Done) else {
            return self.out_of_order(identity);
        };
        self.decide(identity, query, found, raced)
    }

    fn decide(&mut self, identity: &Identity, query: FactQuery, found: Facts, raced: bool) -> Step {
        let facts = self.facts.clone().expect("opened before facts are asked");
        if query.profile_body && found.profile_body.as_deref() != Some(self.profile.stored.as_str()) {
            return self.need_profile();
        }
        // The CA used (from the host's cache) is no longer the profile's current one, or was disabled since:
        // everything is read again, the CA too.
        if query.ca_identity_name.is_some() && found.ca != self.opened_ca {
            return self.need_profile();
        }
        let requester = match &found.requester_seat {
            Some(seat) => format!("{} (seat {seat})", facts.signer.subject),
            None => format!("{} (not issued by this CA)", facts.signer.subject),
        };
        match facts.message_type {
            MessageType::GetCert => return self.get_cert(identity, &facts, found, &requester),
            MessageType::GetCrl if self.profile.profile.upstream.is_some() => {
                let e = ScepError::not_permitted(
                    "GetCRL: this profile's certificates are issued by its upstream CA, which publishes their CRL",
                    "fetch the CRL from the upstream CA (its CRL distribution point)",
                );
                return self.fail(identity, &e, found.requester_seat);
            }
            MessageType::GetCrl => {
                self.state = State::AwaitingCrl { requester, requester_seat: found.requester_seat };
                return Step::NeedCrl;
            }
            _ => {}
        }
        let reserved = identity.reserved_names();
        let prior_seat = found.store.prior_transaction.as_ref().and_then(|p| p.seat_id.clone());
        let seat_hint = query.seat_id.clone().or(prior_seat);
        let decision = policy::decide(&facts, &self.profile.profile, &found.store, &self.code_key, &reserved, self.now);
        let seat_of = |seat: Option<&String>| seat.cloned().or(seat_hint.clone());
        match decision {
            // The facts may come from a replica that has not yet seen a code, a seat or a password created
            // moments ago: a refusal is given on the primary's facts (reads after a write see them already).
            Decision::Reject { .. } if !self.on_primary && !raced => {
                self.on_primary = true;
                let query = self.fresh(query);
                self.state = State::AwaitingFacts { query: query.clone(), raced };
                Step::NeedFacts { query }
            }
            Decision::Reject { error } => {
                let seat = seat_of(found.store.signer_certificate.as_ref().map(|c| &c.seat_id));
                self.fail(identity, &error, seat)
            }
            Decision::Pending if self.is_forwarded(&found) => self.relay(identity, query, found),
            Decision::Pending => {
                let audit = self.audit(
                    &facts,
                    seat_hint,
                    AuditStatus::Success,
                    "pending",
                    "Waiting for administrator approval",
                );
                self.answer(identity, Reply::Pending, Some(audit))
            }
            Decision::Resend { serial } => {
                let der = found.store.prior_transaction.and_then(|p| p.certificate_der).map(|b| b.into_vec());
                let Some(der) = der else {
                    let e = ScepError::not_permitted(
                        format!("Certificate {serial} of this transaction is gone"),
                        "enroll again",
                    );
                    return self.fail(identity, &e, seat_hint);
                };
                let audit = self.audit(
                    &facts,
                    seat_hint,
                    AuditStatus::Success,
                    "resent",
                    &format!("Certificate {serial} sent again"),
                );
                self.answer_issued(identity, der, None, Some(audit))
            }
            decision => match self.profile.profile.webhook.clone() {
                // Nothing is written before the webhook allowed: a refusal burns no code.
                Some(hook) => {
                    let call = hook.call(&self.webhook_request(&facts, &hook, &decision));
                    self.state = State::AwaitingWebhook { query, decision, raced };
                    Step::CallWebhook { call }
                }
                None => self.carry_out(identity, query, decision, raced),
            },
        }
    }

    /// Continues after [`Step::CallWebhook`] with what came back: only an explicit allow goes on.
    pub fn with_webhook(&mut self, identity: &Identity, answer: WebhookAnswer) -> Step {
        let State::AwaitingWebhook { query, decision, raced } = std::mem::replace(&mut self.state, State::Done) else {
            return self.out_of_order(identity);
        };
        let hook = self.profile.profile.webhook.clone().expect("asked only with a webhook");
        match hook.verdict(&answer) {
            Ok(()) => self.carry_out(identity, query, decision, raced),
            Err(e) => {
                let (Decision::Issue { seat_id, .. } | Decision::Hold { seat_id, .. }) = &decision else {
                    unreachable!("only issuing and holding ask the webhook")
                };
                let seat = Some(seat_id.clone());
                self.fail(identity, &e, seat)
            }
        }
    }

    /// What the webhook is told of a decision to issue or hold.
    fn webhook_request<'a>(
        &'a self,
        facts: &'a RequestFacts,
        hook: &WebhookConfig,
        decision: &'a Decision,
    ) -> WebhookRequest<'a> {
        let (Decision::Issue { seat_id, claim, plan } | Decision::Hold { seat_id, claim, plan }) = decision else {
            unreachable!("only issuing and holding ask the webhook")
        };
        let renews = claim.renews();
        let csr = facts.csr.as_ref().expect("a decision to issue or hold has a CSR");
        WebhookRequest {
            version: 1,
            mode: hook.mode,
            profile: &self.profile.name,
            seat_id,
            transaction_id: &facts.transaction_id,
            message_type: facts.message_type.name(),
            subject: &plan.subject,
            sans: plan.sans.clone(),
            key: KeyFacts { kind: csr.key_algorithm, bits: csr.key_bits },
            client_address: self.client_address.as_deref(),
            renews,
            // A renewal is signed by the certificate it renews: it has no challenge to judge.
            challenge: (hook.mode == WebhookMode::Challenge && renews.is_none())
                .then_some(())
                .and(csr.challenge.as_deref()),
            timestamp: self.now,
        }
    }

    /// Issues or holds as decided: the claim first, every other row guarded by it, in one batch.
    fn carry_out(&mut self, identity: &Identity, query: FactQuery, decision: Decision, raced: bool) -> Step {
        let facts = self.facts.clone().expect("opened before facts are asked");
        match decision {
            Decision::Hold { seat_id, claim, plan } => {
                let attempt = crate::wire::serial_hex(&random_serial());
                let (mut writes, guard) = self.claim(&facts, &claim, &seat_id, &attempt, true);
                let message = format!(
                    "Request held for administrator approval{}",
                    claim.renews().map(|r| format!(" (renewing {r})")).unwrap_or_default()
                );
                let audit = self.audit(&facts, Some(seat_id.clone()), AuditStatus::Success, "pending", &message);
                let row = self.transaction_row(&facts, &seat_id, &plan, &claim, None);
                let guard = match (writes.is_empty(), claim.renews()) {
                    // A held renewal claims nothing else: the held row is its claim, with what it relied on.
                    (true, Some(serial)) => {
                        let mut requires = self.preconditions(&claim, &seat_id);
                        requires.push(Precondition::Renewable { serial: serial.to_owned() });
                        writes.push(Write::Hold { row, requires });
                        Some(Guard::JustWritten)
                    }
                    _ => {
                        writes.push(Write::InsertTransaction { row, guard: guard.clone() });
                        guard
                    }
                };
                writes.push(Write::InsertAudit { row: audit, guard });
                self.state = State::AwaitingWrite { query, outcome: Pending::Held, raced };
                Step::Write { writes }
            }
            Decision::Issue { seat_id, claim, plan } if self.profile.profile.upstream.is_some() => {
                self.forward(identity, query, seat_id, claim, plan, raced)
            }
            Decision::Issue { seat_id, claim, plan } => {
                let serial = random_serial();
                let unsigned = match self.issue(identity, &facts, &plan, serial.to_vec()) {
                    Ok(c) => c,
                    Err(e) => return self.fail(identity, &e, Some(seat_id)),
                };
                // The CA signs what the core built from the plan; nothing else.
                let next = Issuing { query, seat_id, claim, plan, serial, raced };
                self.await_key(
                    CaKey::Ca,
                    unsigned.operation(),
                    KeyPending::Certificate { unsigned, next: Box::new(next) },
                )
            }
            _ => unreachable!("only issuing and holding are carried out"),
        }
    }

    /// Continues an issuance with the certificate the CA's key signed: saved with its claim in one batch.
    fn issued(&mut self, identity: &Identity, certificate: Certificate, next: Issuing) -> Step {
        let Issuing { query, seat_id, claim, plan, serial, raced } = next;
        let facts = self.facts.clone().expect("opened before facts are asked");
        let serial_hex = crate::wire::serial_hex(&serial);
        if let Err(e) = crate::issue::verify_issued_by(&certificate, &identity.ca_cert, identity.public_ops.as_ref()) {
            return self.fail(identity, &e, Some(seat_id));
        }
        let der = match der::Encode::to_der(&certificate) {
            Ok(d) => d,
            Err(e) => return self.fail(identity, &e.into(), Some(seat_id)),
        };
        // The new serial is the claim: unique to this attempt.
        let (mut writes, guard) = self.claim(&facts, &claim, &seat_id, &serial_hex, false);
        let message = format!("Issued certificate {serial_hex}{}", claim.describe());
        let renewal = claim.renews().is_some();
        let code = if renewal { "renewed" } else { "issued" };
        let audit = self.audit(&facts, Some(seat_id.clone()), AuditStatus::Success, code, &message);
        let row = CertificateRow {
            serial: serial_hex.clone(),
            fingerprint: crate::keys::fingerprint(&der),
            seat_id: seat_id.clone(),
            profile_id: self.profile.id.clone(),
            subject: certificate.tbs_certificate.subject.to_string(),
            not_before: plan.not_before,
            not_after: plan.not_after,
            der: der.clone(),
            transaction_id: facts.transaction_id.clone(),
            ca_id: identity.ca_id.clone(),
            upstream: None,
            now: self.now,
        };
        writes.push(Write::InsertCertificate { row, guard: guard.clone() });
        writes.push(Write::InsertTransaction {
            row: self.transaction_row(&facts, &seat_id, &plan, &claim, Some(serial_hex)),
            guard: guard.clone(),
        });
        writes.push(Write::InsertAudit { row: audit, guard });
        self.state = State::AwaitingWrite { query, outcome: Pending::Issued { certificate: der, renewal }, raced };
        Step::Write { writes }
    }

    /// Continues after the batch of the last [`Step::Write`]: `claimed` is whether its first write (the claim)
    /// changed a row. A lost claim is handled once more on fresh facts (a copy of the same request that won
    /// gets the winner's certificate; anything else is refused by the policy); lost twice, it is refused.
    pub fn written(&mut self, identity: &Identity, claimed: bool) -> Step {
        let State::AwaitingWrite { query, outcome, raced } = std::mem::replace(&mut self.state, State::Done) else {
            return self.out_of_order(identity);
        };
        match (claimed, outcome) {
            (true, Pending::Issued { certificate, .. }) => self.answer_issued(identity, certificate, None, None),
            (true, Pending::Held) => self.answer(identity, Reply::Pending, None),
            (true, Pending::Forwarding(forwarded)) => self.start_upstream(identity, *forwarded),
            (true, Pending::Settled(Settled::Issued { certificate, upstream_ca })) => {
                self.answer_issued(identity, certificate, Some(*upstream_ca), None)
            }
            (true, Pending::Settled(Settled::Failed(e))) => self.answer(identity, Reply::from(&e), None),
            (false, _) if !raced => {
                // The claim may have lost to a profile changed, or a CA disabled or replaced, since the facts
                // were read: fresh facts include both.
                let query = self.fresh(query);
                self.state = State::AwaitingFacts { query: query.clone(), raced: true };
                Step::NeedFacts { query }
            }
            (false, Pending::Issued { renewal: true, .. }) => {
                self.fail(identity, &ScepError::already_renewed(), query.seat_id)
            }
            (false, _) => self.fail(identity, &ScepError::challenge_invalid(), query.seat_id),
        }
    }

    /// Continues a GetCRL with the current CRL (DER).
    pub fn with_crl(&mut self, identity: &Identity, crl: &[u8]) -> Step {
        let State::AwaitingCrl { requester, requester_seat } = std::mem::replace(&mut self.state, State::Done) else {
            return self.out_of_order(identity);
        };
        let facts = self.facts.clone().expect("opened");
        let audit =
            self.audit(&facts, requester_seat, AuditStatus::Success, "get_crl", &format!("CRL sent to {requester}"));
        self.answer(identity, Reply::Crl { crls: vec![crl] }, Some(audit))
    }

    fn get_cert(&mut self, identity: &Identity, facts: &RequestFacts, found: Facts, requester: &str) -> Step {
        let serial = facts.issuer_and_serial.as_ref().map(|(_, s)| s.clone()).unwrap_or_default();
        let Some(cert) = found.certificate else {
            let e = ScepError::not_found(
                format!("No certificate with serial {serial} was issued by this CA"),
                "check the serial number",
            );
            return self.fail(identity, &e, found.requester_seat);
        };
        let message = format!("Certificate {serial} (seat {}) sent to {requester}", cert.seat_id);
        let audit = self.audit(facts, found.requester_seat, AuditStatus::Success, "get_cert", &message);
        match <Certificate as der::Decode>::from_der(&cert.der) {
            Ok(c) => self.answer(identity, Reply::Issued { certificates: vec![&c] }, Some(audit)),
            Err(e) => self.fail(identity, &e.into(), None),
        }
    }

    fn issue(
        &self,
        identity: &Identity,
        facts: &RequestFacts,
        plan: &policy::CertificatePlan,
        serial: Vec<u8>,
    ) -> Result<UnsignedCertificate> {
        let csr = facts.csr.as_ref().ok_or_else(|| ScepError::invalid_input("no CSR to issue for"))?;
        let options = IssueOptions::from_plan(plan, serial);
        let public_key = crate::issue::stored_public_key(&csr.spki_der)?;
        crate::issue::issue(public_key, &options, &identity.ca_cert)
    }

    fn transaction_row(
        &self,
        facts: &RequestFacts,
        seat_id: &str,
        plan: &policy::CertificatePlan,
        claim: &policy::Claim,
        serial: Option<String>,
    ) -> TransactionRow {
        let csr = facts.csr.as_ref().expect("a decision to issue or hold has a CSR");
        TransactionRow {
            profile_id: self.profile.id.clone(),
            transaction_id: facts.transaction_id.clone(),
            signer_fingerprint: facts.signer.fingerprint.clone(),
            seat_id: seat_id.to_owned(),
            message_type: facts.message_type.name(),
            key_digest: policy::key_digest(csr),
            status: if serial.is_some() {
                policy::TransactionStatus::Issued
            } else {
                policy::TransactionStatus::Pending
            },
            public_key: csr.spki_der.clone(),
            plan: serde_json::to_string(plan).expect("a plan serialises"),
            enrollment_id: claim.enrollment_id().map(str::to_owned),
            renews: claim.renews().map(str::to_owned),
            serial,
            client_address: self.client_address.clone(),
            upstream: None,
            claim: None,
            now: self.now,
        }
    }

    /// The writes that claim what authorised a decision (first in its batch; a seat a password creates right
    /// after) and the guard of every other row. `attempt` is unique to this attempt (the new serial). A held
    /// renewal claims nothing yet: its certificate is claimed when an administrator approves.
    fn claim(
        &self,
        facts: &RequestFacts,
        claim: &policy::Claim,
        seat_id: &str,
        attempt: &str,
        holding: bool,
    ) -> (Vec<Write>, Option<Guard>) {
        use policy::Claim;
        let (transaction_id, now, attempt) = (facts.transaction_id.clone(), self.now, attempt.to_owned());
        let requires = self.preconditions(claim, seat_id);
        match claim.clone() {
            Claim::Enrollment { id } => (
                vec![Write::Redeem {
                    enrollment_id: id.clone(),
                    transaction_id,
                    claim: attempt.clone(),
                    now,
                    requires,
                }],
                Some(Guard::Redeemed { enrollment_id: id, claim: attempt }),
            ),
            Claim::WebhookChallenge { mac } => (
                vec![Write::ClaimChallenge {
                    challenge_mac: mac.clone(),
                    profile_id: self.profile.id.clone(),
                    transaction_id,
                    claim: attempt.clone(),
                    now,
                    requires,
                }],
                Some(Guard::ChallengeClaimed { challenge_mac: mac, claim: attempt }),
            ),
            Claim::Password { mac, create_seat, .. } => {
                let guard = Guard::PasswordRedeemed { mac: mac.clone(), claim: attempt.clone() };
                let seat_id = seat_id.to_owned();
                let profile_id = self.profile.id.clone();
                let redeem = Write::RedeemPassword {
                    mac,
                    profile_id,
                    transaction_id,
                    seat_id: seat_id.clone(),
                    claim: attempt,
                    now,
                    requires,
                };
                let mut writes = vec![redeem];
                if create_seat {
                    writes.push(Write::CreateSeat { seat_id, now, guard: Some(guard.clone()) });
                }
                (writes, Some(guard))
            }
            Claim::Renewal { .. } if holding => (Vec::new(), None),
            Claim::Renewal { serial } => (
                vec![Write::ClaimRenewal {
                    serial: serial.clone(),
                    renewed_by: attempt.clone(),
                    guard: None,
                    requires,
                }],
                Some(Guard::Renewed { serial, renewed_by: attempt }),
            ),
        }
    }

    /// What the claim of a decision for `seat_id` requires beyond itself: the seat as the facts showed it, the
    /// profile as decided under, a seat still unenrolled for a password fetched without one, and the CA the
    /// request was handled under still current and enabled.
    fn preconditions(&self, claim: &policy::Claim, seat_id: &str) -> Vec<Precondition> {
        let seat = seat_id.to_owned();
        let mut requires = vec![
            match claim {
                policy::Claim::Password { create_seat: true, .. } => Precondition::SeatNotDeleted { seat_id: seat },
                _ => Precondition::SeatLive { seat_id: seat },
            },
            Precondition::ProfileCurrent { profile_id: self.profile.id.clone(), body: self.profile.stored.clone() },
        ];
        if let policy::Claim::Password { for_any_seat: true, .. } = claim {
            let (seat_id, profile_id, now) = (seat_id.to_owned(), self.profile.id.clone(), self.now);
            requires.push(Precondition::SeatUnenrolled { seat_id, profile_id, now });
        }
        requires.extend(self.opened_ca.as_ref().map(|ca| Precondition::CaCurrent {
            ca_identity_name: self.profile.profile.ca_identity_name.clone(),
            ca_id: ca.id.clone(),
        }));
        requires
    }

    fn audit(
        &self,
        facts: &RequestFacts,
        seat: Option<String>,
        status: AuditStatus,
        code: &str,
        message: &str,
    ) -> AuditRow {
        AuditRow {
            time: self.now,
            profile: Some(self.profile.name.clone()),
            seat_id: seat,
            transaction_id: Some(facts.transaction_id.clone()),
            operation: facts.message_type.name().to_owned(),
            status,
            code: code.to_owned(),
            message: message.to_owned(),
            resolution: None,
        }
    }

    /// A FAILURE CertRep for `error`, with its audit row.
    fn fail(&mut self, identity: &Identity, error: &ScepError, seat: Option<String>) -> Step {
        let audit = self.failure_audit(error, seat);
        self.answer(identity, Reply::from(error), Some(audit))
    }

    /// The audit row of a failure: its error's kind, message and resolution.
    fn failure_audit(&self, error: &ScepError, seat: Option<String>) -> AuditRow {
        let operation = self.request.attributes.message_type.map(|m| m.name()).unwrap_or("PKIOperation");
        let mut audit = audit_row(
            self.now,
            Some(&self.profile.name),
            seat,
            Some(self.request.attributes.transaction_id.clone()),
            operation,
            AuditStatus::Failure,
            error.kind.name(),
            &error.message,
        );
        audit.resolution = Some(error.resolution.clone());
        audit
    }

    /// A certificate answered with its CA: this CA's, or for RA mode the upstream's when it is at hand. `audit`
    /// is None when the row was written in the batch that saved the certificate.
    fn answer_issued(
        &mut self,
        identity: &Identity,
        certificate: Vec<u8>,
        upstream_ca: Option<Certificate>,
        audit: Option<AuditRow>,
    ) -> Step {
        let leaf = match <Certificate as der::Decode>::from_der(&certificate) {
            Ok(leaf) => leaf,
            Err(e) => return self.fail(identity, &e.into(), None),
        };
        let ca = match (&upstream_ca, &self.profile.profile.upstream) {
            (Some(upstream), _) => Some(upstream),
            (None, Some(_)) => None,
            (None, None) => Some(&identity.ca_cert),
        };
        let certificates: Vec<&Certificate> = core::iter::once(&leaf).chain(ca).collect();
        self.answer(identity, Reply::Issued { certificates }, audit)
    }

    fn answer(&mut self, identity: &Identity, reply: Reply<'_>, audit: Option<AuditRow>) -> Step {
        self.state = State::Done;
        match identity.cert_rep(
            &self.request,
            self.facts.as_ref(),
            reply,
            self.profile.profile.algorithm_policy(),
            &mut OsRng,
        ) {
            Ok((key, unsigned)) => self.await_key(key, unsigned.operation(), KeyPending::Reply { unsigned, audit }),
            // Read but not answerable on the wire (e.g. a transactionID that cannot be echoed): the requester's fault.
            Err(e) => Step::Refuse {
                status: 400,
                text: format!("Bad SCEP request: cannot answer it: {}", e.message),
                audit: audit.unwrap_or_else(|| malformed(self.now, &self.profile.name, &e.message)),
            },
        }
    }

    /// The host could not run a query or a write (its store failed): a FAILURE the client may retry, audited.
    /// Nothing was saved: a write batch is all or nothing.
    pub fn host_failed(&mut self, identity: &Identity) -> Step {
        self.fail(identity, &ScepError::internal(), None)
    }

    fn out_of_order(&mut self, identity: &Identity) -> Step {
        self.fail(identity, &ScepError::invalid_input("the host called the PKIOperation machine out of order"), None)
    }
}

/// RA mode: the steps that forward an accepted request to the profile's upstream CA and settle what came back.
impl PkiOperation {
    /// Whether the request continues a transaction forwarded to this profile's upstream.
    fn is_forwarded(&self, found: &Facts) -> bool {
        self.profile.profile.upstream.is_some()
            && found.store.prior_transaction.as_ref().is_some_and(|p| p.upstream.is_some())
    }

    /// Claims what authorised the request and saves it as a PENDING transaction forwarded to the upstream, in
    /// one batch; the upstream is asked once that holds, so a code is never sent twice concurrently.
    fn forward(
        &mut self,
        identity: &Identity,
        query: FactQuery,
        seat_id: String,
        claim: policy::Claim,
        plan: policy::CertificatePlan,
        raced: bool,
    ) -> Step {
        let facts = self.facts.clone().expect("opened before facts are asked");
        let upstream = self.profile.profile.upstream.clone().expect("forwarded only with an upstream");
        if identity.ra_cert.is_none() {
            let e = ScepError::upstream_unavailable(
                "this service has no RA certificate to sign the devices' requests with: give the profile the CA of the \
                 Worker's secrets, which has one",
            );
            return self.fail(identity, &e, Some(seat_id));
        }
        if let Some(Err(e)) = facts.csr.as_ref().map(ra::check_csr) {
            return self.fail(identity, &e, Some(seat_id));
        }
        let attempt = crate::wire::serial_hex(&random_serial());
        let (mut writes, guard) = self.claim(&facts, &claim, &seat_id, &attempt, false);
        let csr_digest = facts.csr.as_ref().map(|csr| crate::keys::fingerprint(&csr.der));
        let record = ClaimRecord { claim: claim.clone(), attempt, csr_digest };
        let mut row = self.transaction_row(&facts, &seat_id, &plan, &claim, None);
        row.upstream = Some(upstream.scep_url.clone());
        row.claim = Some(serde_json::to_string(&record).expect("a claim serialises"));
        writes.push(Write::InsertTransaction { row, guard });
        let key = self.transaction_key(&facts);
        let key_digest = facts.csr.as_ref().map(policy::key_digest).unwrap_or_default();
        let forwarded = Forwarded { query: query.clone(), seat_id, plan, record, key, key_digest, relayed: false };
        self.state = State::AwaitingWrite { query, outcome: Pending::Forwarding(Box::new(forwarded)), raced };
        Step::Write { writes }
    }

    /// A CertPoll of a forwarded transaction is relayed to the upstream; so is a retransmitted request, unless
    /// the first copy may still be on its way (then PENDING, so the upstream is not asked twice at once).
    fn relay(&mut self, identity: &Identity, query: FactQuery, found: Facts) -> Step {
        let facts = self.facts.clone().expect("opened before facts are asked");
        let prior = found.store.prior_transaction.expect("relayed only for a prior transaction");
        let upstream = self.profile.profile.upstream.clone().expect("relayed only with an upstream");
        let plan = prior.plan.as_deref().and_then(|p| serde_json::from_str::<policy::CertificatePlan>(p).ok());
        let record = prior.claim.as_deref().and_then(|c| serde_json::from_str::<ClaimRecord>(c).ok());
        let (Some(plan), Some(record), Some(seat_id)) = (plan, record, prior.seat_id.clone()) else {
            return self.fail(identity, &ScepError::internal(), prior.seat_id);
        };
        let key = self.transaction_key(&facts);
        let forwarded = Forwarded { query, seat_id, plan, record, key, key_digest: prior.key_digest, relayed: true };
        // A renewal whose certificate was revoked while the upstream held it is not delivered.
        if forwarded.record.claim.renews().is_some() && found.store.signer_certificate.is_some_and(|c| c.revoked) {
            return self.settle_rejected(forwarded, ScepError::revoked());
        }
        let poll = facts.message_type == MessageType::CertPoll;
        // Only the CSR that was checked and forwarded is ever sent again under this transaction.
        let same_csr = facts.csr.as_ref().map(|csr| crate::keys::fingerprint(&csr.der));
        if !poll && (same_csr.is_none() || same_csr != forwarded.record.csr_digest) {
            let e = ScepError::not_permitted(
                format!("transactionID {} was forwarded with another CSR", facts.transaction_id),
                "send the same request again, or a new request with a fresh transactionID",
            );
            return self.fail(identity, &e, Some(forwarded.seat_id));
        }
        // An exchange makes up to three requests of timeout_ms each: until then the first copy may be on its way.
        let window = 3 * u64::from(upstream.timeout_ms) / 1000 + 5;
        let in_flight = prior.updated_at.is_some_and(|at| self.now < at + window);
        if !poll && in_flight {
            let message = "Forwarded to the upstream CA already";
            let audit = self.audit(&facts, Some(forwarded.seat_id), AuditStatus::Success, "pending", message);
            return self.answer(identity, Reply::Pending, Some(audit));
        }
        self.start_upstream(identity, forwarded)
    }

    fn transaction_key(&self, facts: &RequestFacts) -> TransactionKey {
        TransactionKey {
            profile_id: self.profile.id.clone(),
            transaction_id: facts.transaction_id.clone(),
            signer_fingerprint: facts.signer.fingerprint.clone(),
        }
    }

    fn start_upstream(&mut self, identity: &Identity, forwarded: Forwarded) -> Step {
        let facts = self.facts.clone().expect("opened before facts are asked");
        let upstream = self.profile.profile.upstream.clone().expect("forwarded only with an upstream");
        let Some(ra) = identity.ra_cert.clone() else {
            return self.settle(identity, Outcome::Unavailable(ScepError::internal()), forwarded);
        };
        let forward = match &facts.csr {
            Some(csr) => Forward::Request { csr_der: csr.der.clone(), message_type: facts.message_type },
            None => match <x509_cert::name::Name as core::str::FromStr>::from_str(&forwarded.plan.subject) {
                Ok(subject) => Forward::Poll { subject },
                Err(_) => return self.settle(identity, Outcome::Unavailable(ScepError::internal()), forwarded),
            },
        };
        let key_digest = forwarded.key_digest.clone();
        // Every device's requests reach the upstream signed by the one edge RA: the transactionID it sees is
        // this transaction's own, so another device cannot name (and so poll or spoil) it there.
        let tid = crate::keys::fingerprint(
            format!("scepkit upstream\0{}\0{}\0{}", self.profile.id, facts.signer.fingerprint, facts.transaction_id)
                .as_bytes(),
        );
        let (exchange, step) = Exchange::start(upstream, forward, tid, ra, key_digest);
        self.drive(identity, Box::new(exchange), Box::new(forwarded), step)
    }

    fn drive(
        &mut self,
        identity: &Identity,
        exchange: Box<Exchange>,
        forwarded: Box<Forwarded>,
        step: ExchangeStep,
    ) -> Step {
        match step {
            ExchangeStep::Send(request) => {
                self.state = State::AwaitingUpstream { exchange, forwarded };
                Step::CallUpstream { request }
            }
            ExchangeStep::Key(operation) => {
                self.await_key(CaKey::Ra, operation, KeyPending::Upstream { exchange, forwarded })
            }
            ExchangeStep::Done(outcome) => self.settle(identity, *outcome, *forwarded),
        }
    }

    /// Continues after [`Step::CallUpstream`] with what came back from the upstream.
    pub fn with_upstream(&mut self, identity: &Identity, answer: UpstreamAnswer) -> Step {
        let State::AwaitingUpstream { mut exchange, forwarded } = std::mem::replace(&mut self.state, State::Done)
        else {
            return self.out_of_order(identity);
        };
        let step = exchange.with_answer(answer, &mut OsRng, identity.public_ops.as_ref());
        self.drive(identity, exchange, forwarded, step)
    }

    fn settle(&mut self, identity: &Identity, outcome: Outcome, f: Forwarded) -> Step {
        let facts = self.facts.clone().expect("opened before facts are asked");
        let url = self.profile.profile.upstream.as_ref().map(|u| u.scep_url.clone()).unwrap_or_default();
        match outcome {
            Outcome::Issued { certificate, ca } => {
                let serial = crate::wire::serial_hex(certificate.tbs_certificate.serial_number.as_bytes());
                if let Err(mut e) = ra::check_names(&certificate, &f.plan) {
                    e.message = format!("{} (serial {serial})", e.message);
                    return self.settle_rejected(f, e);
                }
                let der = match der::Encode::to_der(&certificate) {
                    Ok(d) => d,
                    Err(e) => return self.settle_rejected(f, e.into()),
                };
                let status = policy::TransactionStatus::Issued;
                let guard = Some(Guard::Decided { key: f.key.clone(), status, serial: Some(serial.clone()) });
                let renews = f.record.claim.renews().map(str::to_owned);
                // A renewal settles only while the certificate it renews is unrevoked (checked on the primary;
                // a poll may have read a replica).
                let requires =
                    renews.iter().map(|serial| Precondition::NotRevoked { serial: serial.clone() }).collect();
                let mut writes = vec![Write::DecideHeld {
                    key: f.key.clone(),
                    status,
                    serial: Some(serial.clone()),
                    renews: None,
                    message: None,
                    now: self.now,
                    requires,
                }];
                if let Some(renews) = &renews {
                    writes.push(Write::SettleRenewal {
                        serial: renews.clone(),
                        attempt: f.record.attempt.clone(),
                        renewed_by: serial.clone(),
                        guard: guard.clone(),
                    });
                }
                let validity = certificate.tbs_certificate.validity;
                let row = CertificateRow {
                    serial: serial.clone(),
                    fingerprint: crate::keys::fingerprint(&der),
                    seat_id: f.seat_id.clone(),
                    profile_id: self.profile.id.clone(),
                    subject: certificate.tbs_certificate.subject.to_string(),
                    not_before: validity.not_before.to_unix_duration().as_secs(),
                    not_after: validity.not_after.to_unix_duration().as_secs(),
                    der: der.clone(),
                    transaction_id: facts.transaction_id.clone(),
                    ca_id: None,
                    upstream: Some(url.clone()),
                    now: self.now,
                };
                writes.push(Write::InsertCertificate { row, guard: guard.clone() });
                let code = if renews.is_some() { "renewed" } else { "issued" };
                let message =
                    format!("Certificate {serial} issued by the upstream CA at {url}{}", f.record.claim.describe());
                let audit = self.audit(&facts, Some(f.seat_id.clone()), AuditStatus::Success, code, &message);
                writes.push(Write::InsertAudit { row: audit, guard });
                let settled = Settled::Issued { certificate: der, upstream_ca: Box::new(ca) };
                self.state = State::AwaitingWrite { query: f.query, outcome: Pending::Settled(settled), raced: false };
                Step::Write { writes }
            }
            Outcome::Pending => {
                let message = format!("The upstream CA at {url} answered PENDING");
                let audit = self.audit(&facts, Some(f.seat_id), AuditStatus::Success, "pending", &message);
                self.answer(identity, Reply::Pending, Some(audit))
            }
            Outcome::Refused(e) if f.relayed => self.settle_rejected(f, e),
            Outcome::Unavailable(e) if f.relayed => {
                // The upstream still holds the request: the device polls again later.
                let audit = self.failure_audit(&e, Some(f.seat_id));
                self.answer(identity, Reply::Pending, Some(audit))
            }
            Outcome::Refused(e) | Outcome::Unavailable(e) => {
                // Nothing was issued: the claim is given back with the transaction withdrawn, in one batch.
                let guard = Some(Guard::Withdrawn { key: f.key.clone() });
                let writes = vec![
                    Write::Withdraw { key: f.key.clone(), attempt: f.record.attempt.clone() },
                    Write::Unclaim { record: f.record.clone(), guard: guard.clone() },
                    Write::InsertAudit { row: self.failure_audit(&e, Some(f.seat_id.clone())), guard },
                ];
                self.state = State::AwaitingWrite {
                    query: f.query,
                    outcome: Pending::Settled(Settled::Failed(e)),
                    raced: false,
                };
                Step::Write { writes }
            }
        }
    }

    /// The upstream decided against the request (or issued names the edge did not check): the transaction is
    /// rejected with `e` as what its next poll is told. A code stays used, as after an administrator's
    /// rejection; a renewed certificate's claim is given back, so it can be renewed again.
    fn settle_rejected(&mut self, f: Forwarded, e: ScepError) -> Step {
        let status = policy::TransactionStatus::Rejected;
        let guard = Some(Guard::Decided { key: f.key.clone(), status, serial: None });
        let mut writes = vec![Write::DecideHeld {
            key: f.key.clone(),
            status,
            serial: None,
            renews: None,
            message: Some(e.message.clone()),
            now: self.now,
            requires: Vec::new(),
        }];
        if f.record.claim.renews().is_some() {
            writes.push(Write::Unclaim { record: f.record.clone(), guard: guard.clone() });
        }
        writes.push(Write::InsertAudit { row: self.failure_audit(&e, Some(f.seat_id.clone())), guard });
        self.state =
            State::AwaitingWrite { query: f.query, outcome: Pending::Settled(Settled::Failed(e)), raced: false };
        Step::Write { writes }
    }
}

/// The audit row of a request that cannot be answered with a CertRep (HTTP 400).
fn malformed(now: u64, profile: &str, message: &str) -> AuditRow {
    audit_row(now, Some(profile), None, None, "PKIOperation", AuditStatus::Failure, "malformed", message)
}

#[allow(clippy::too_many_arguments)]
fn audit_row(
    time: u64,
    profile: Option<&str>,
    seat_id: Option<String>,
    transaction_id: Option<String>,
    operation: &str,
    status: AuditStatus,
    code: &str,
    message: &str,
) -> AuditRow {
    AuditRow {
        time,
        profile: profile.map(str::to_owned),
        seat_id,
        transaction_id,
        operation: operation.to_owned(),
        status,
        code: code.to_owned(),
        message: message.to_owned(),
        resolution: None,
    }
}

fn random_serial() -> [u8; 16] {
    crate::issue::random_serial(&mut OsRng)
}
