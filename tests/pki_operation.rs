//! The CA's PKIOperation step machine driven natively by an in-memory store: the same rules the Worker
//! suite checks in workerd (claims, guards, races, crashes, stale profiles, renewals), in milliseconds.

mod common;

use std::collections::HashMap;

use common::*;
use rand_core::OsRng;
use scepkit::algorithms::{Cipher, DigestAlg, KeyTransport};
use scepkit::caps::{ca_cert_response, CaCertificates};
use scepkit::client::{self, CertRepOutcome, PkiRequest, RequestOptions, Requester};
use scepkit::csr::CsrRequest;
use scepkit::envelope::EnvelopeOptions;
use scepkit::issue::{self_signed, SelfSignedRole};
use scepkit::keys::KeyOperation;
use scepkit::message::MessageType;
use scepkit::pki_operation::{
    AuditStatus, FactQuery, Facts, Guard, PkiOperation, Precondition, Step, StoredProfile, Write,
};
use scepkit::policy::{
    enrollment_code_mac, IssuedCertificate, OneTimePassword, OpenEnrollment, PriorTransaction, StoreFacts,
};
use scepkit::profile::ScepProfile;
use scepkit::server::{CaKey, Identity, ServerKeys};
use scepkit::signed::IdentifierKind;
use scepkit::webhook::{WebhookAnswer, WebhookCall};
use scepkit::wire::Certificate;
use serde_json::json;

const KEY: &[u8] = b"code-mac-key";
const CODE: &str = "ABCDE-FGHIJ-KLMNO-PQRST";

#[derive(Clone, Debug, PartialEq)]
enum Status {
    Created,
    Redeemed,
}

#[derive(Clone, Debug)]
struct Enrollment {
    id: String,
    seat: String,
    status: Status,
    claim: Option<String>,
}

#[derive(Clone, Debug)]
struct Cert {
    seat: String,
    profile_id: String,
    der: Vec<u8>,
    renewed_by: Option<String>,
}

#[derive(Clone, Debug)]
struct TransactionRecord {
    status: String,
    key_digest: String,
    serial: Option<String>,
    seat: String,
    public_key: Vec<u8>,
    plan: String,
    renews: Option<String>,
    upstream: Option<String>,
    claim: Option<String>,
}

impl TransactionRecord {
    fn of(row: &scepkit::pki_operation::TransactionRow) -> Self {
        Self {
            status: serde_json::to_value(row.status).unwrap().as_str().unwrap().to_owned(),
            key_digest: row.key_digest.clone(),
            serial: row.serial.clone(),
            seat: row.seat_id.clone(),
            public_key: row.public_key.clone(),
            plan: row.plan.clone(),
            renews: row.renews.clone(),
            upstream: row.upstream.clone(),
            claim: row.claim.clone(),
        }
    }
}

/// What D1 holds, with the Worker's query and write semantics (a batch is all or nothing).
#[derive(Default)]
struct Store {
    seats: Vec<String>,
    enrollments: Vec<Enrollment>,
    certificates: HashMap<String, Cert>,
    /// (transactionID, signer fingerprint) → (status, key digest, serial, seat)
    transactions: HashMap<(String, String), TransactionRecord>,
    audit: Vec<(String, AuditStatus, Option<String>)>,
    profile_body: String,
    /// Challenges a webhook owns, used at the profile: MAC → claim.
    used_challenges: HashMap<String, String>,
    /// What the webhook answers, and the calls it was sent.
    webhook: Option<WebhookAnswer>,
    webhook_calls: Vec<WebhookCall>,
    /// One-time passwords of the challenge page: MAC → (expires at, redeeming claim, for seat, credential tag).
    passwords: HashMap<String, (u64, Option<String>, Option<String>, String)>,
    /// The profile's current CA as the store holds it.
    current_ca: Option<scepkit::pki_operation::CurrentCa>,
    /// Seats an administrator deleted.
    deleted_seats: Vec<String>,
}

impl Store {
    /// The profile as the store holds it now.
    fn profile(&self) -> Option<StoredProfile> {
        Some(stored(&serde_json::from_str(&self.profile_body).unwrap(), false))
    }

    fn facts(&self, q: &FactQuery) -> Facts {
        let seat = q.seat_id.as_deref();
        let enrollment = |status: Status| {
            self.enrollments.iter().rev().find(|e| Some(e.seat.as_str()) == seat && e.status == status).map(|e| {
                OpenEnrollment { id: e.id.clone(), code_mac: enrollment_code_mac(KEY, CODE), expires_at: NOW + 3600 }
            })
        };
        let fingerprint = |der: &[u8]| base16ct::lower::encode_string(&DigestAlg::Sha256.digest(der));
        let signer = q
            .find_signer_certificate
            .then(|| self.certificates.iter().find(|(_, c)| fingerprint(&c.der) == q.signer_fingerprint))
            .flatten();
        let prior =
            q.transaction_id.as_ref().and_then(|t| self.transactions.get(&(t.clone(), q.signer_fingerprint.clone())));
        Facts {
            store: StoreFacts {
                seat_exists: seat.is_some_and(|s| self.seats.iter().any(|x| x == s)),
                seat_deleted: seat.is_some_and(|s| self.deleted_seats.iter().any(|x| x == s)),
                open_enrollment: enrollment(Status::Created),
                redeemed_enrollment: enrollment(Status::Redeemed),
                signer_certificate: signer.map(|(serial, c)| IssuedCertificate {
                    serial: serial.clone(),
                    seat_id: c.seat.clone(),
                    profile_id: c.profile_id.clone(),
                    profile_name: Some("p".into()),
                    not_after: NOW + 86400,
                    revoked: false,
                    renewed: c.renewed_by.is_some(),
                }),
                prior_transaction: prior.map(|t| PriorTransaction {
                    status: serde_json::from_value(json!(t.status)).unwrap(),
                    key_digest: t.key_digest.clone(),
                    certificate_serial: t.serial.clone(),
                    message: None,
                    certificate_der: t
                        .serial
                        .as_ref()
                        .map(|s| serde_bytes::ByteBuf::from(self.certificates[s].der.clone())),
                    seat_id: Some(t.seat.clone()),
                    plan: Some(t.plan.clone()),
                    upstream: t.upstream.clone(),
                    claim: t.claim.clone(),
                    updated_at: Some(NOW),
                }),
                challenge_used: q.challenge_mac.as_ref().is_some_and(|m| self.used_challenges.contains_key(m)),
                one_time_password: q.one_time_password_mac.as_ref().and_then(|mac| {
                    let (expires_at, claim, for_seat, credential) = self.passwords.get(mac)?;
                    Some(OneTimePassword {
                        mac: mac.clone(),
                        expires_at: *expires_at,
                        redeemed: claim.is_some(),
                        issued_to: "user \"mdm\" from 192.0.2.7".into(),
                        for_seat: for_seat.clone(),
                        credential: credential.clone(),
                    })
                }),
                // Certificates here are never revoked nor expired.
                seat_has_valid_certificate: q.now.is_some()
                    && self.certificates.values().any(|c| Some(c.seat.as_str()) == seat),
            },
            profile_body: q.profile_body.then(|| self.profile_body.clone()),
            certificate: None,
            requester_seat: signer.map(|(_, c)| c.seat.clone()),
            ca: q.ca_identity_name.as_ref().and(self.current_ca.clone()),
        }
    }

    /// Runs a batch; whether its first write took. Guards are checked as the SQL checks them.
    fn write(&mut self, writes: &[Write]) -> bool {
        let mut next = self.clone_state();
        let holds = |s: &Store, g: &Option<Guard>, last: bool| match g {
            None => true,
            Some(Guard::JustWritten) => last,
            Some(Guard::Redeemed { enrollment_id, claim }) => s
                .enrollments
                .iter()
                .any(|e| &e.id == enrollment_id && e.status == Status::Redeemed && e.claim.as_ref() == Some(claim)),
            Some(Guard::ChallengeClaimed { challenge_mac, claim }) => {
                s.used_challenges.get(challenge_mac) == Some(claim)
            }
            Some(Guard::PasswordRedeemed { mac, claim }) => {
                s.passwords.get(mac).and_then(|(_, c, _, _)| c.as_ref()) == Some(claim)
            }
            Some(Guard::PasswordStored { mac }) => s.passwords.contains_key(mac),
            Some(Guard::Renewed { serial, renewed_by }) => {
                s.certificates.get(serial).and_then(|c| c.renewed_by.as_ref()) == Some(renewed_by)
            }
            Some(Guard::Decided { key, status, serial }) => {
                let wanted = serde_json::to_value(status).unwrap();
                s.transactions
                    .get(&(key.transaction_id.clone(), key.signer_fingerprint.clone()))
                    .is_some_and(|t| t.status == wanted.as_str().unwrap() && &t.serial == serial)
            }
            Some(Guard::Withdrawn { key }) => {
                !s.transactions.contains_key(&(key.transaction_id.clone(), key.signer_fingerprint.clone()))
            }
        };
        // What a claim requires of the store now, as the claim's SQL checks it (worker/src/store.js).
        let required = |s: &Store, requires: &[Precondition]| {
            requires.iter().all(|r| match r {
                Precondition::SeatLive { seat_id } => s.seats.contains(seat_id) && !s.deleted_seats.contains(seat_id),
                Precondition::SeatNotDeleted { seat_id } => !s.deleted_seats.contains(seat_id),
                Precondition::CaCurrent { ca_id, .. } => {
                    s.current_ca.as_ref().is_some_and(|ca| &ca.id == ca_id && ca.enabled)
                }
                Precondition::ProfileCurrent { body, .. } => &s.profile_body == body,
                Precondition::SeatUnenrolled { seat_id, .. } => {
                    !s.certificates.values().any(|c| &c.seat == seat_id)
                        && !s.enrollments.iter().any(|e| &e.seat == seat_id && e.status == Status::Created)
                }
                // Certificates here are never revoked.
                Precondition::NotRevoked { serial } => s.certificates.contains_key(serial),
                Precondition::Renewable { serial } => {
                    s.certificates.get(serial).is_some_and(|c| c.renewed_by.is_none())
                }
            })
        };
        let mut first = None;
        let mut last = false;
        for w in writes {
            let changed = match w {
                Write::Redeem { requires, .. }
                | Write::ClaimChallenge { requires, .. }
                | Write::RedeemPassword { requires, .. }
                | Write::ClaimRenewal { requires, .. }
                    if !required(&next, requires) =>
                {
                    false
                }
                Write::Redeem { enrollment_id, claim, .. } => {
                    match next.enrollments.iter_mut().find(|e| &e.id == enrollment_id && e.status == Status::Created) {
                        Some(e) => {
                            e.status = Status::Redeemed;
                            e.claim = Some(claim.clone());
                            true
                        }
                        None => false,
                    }
                }
                Write::ClaimChallenge { challenge_mac, claim, .. } => {
                    !next.used_challenges.contains_key(challenge_mac) && {
                        next.used_challenges.insert(challenge_mac.clone(), claim.clone());
                        true
                    }
                }
                Write::RedeemPassword { mac, claim, now, .. } => {
                    match next.passwords.get_mut(mac).filter(|(expires, c, _, _)| c.is_none() && expires > now) {
                        Some(p) => {
                            p.1 = Some(claim.clone());
                            true
                        }
                        None => false,
                    }
                }
                Write::CreateSeat { seat_id, guard, .. } => {
                    holds(&next, guard, last) && !next.seats.contains(seat_id) && {
                        next.seats.push(seat_id.clone());
                        true
                    }
                }
                Write::InsertOneTimePassword { .. } | Write::ForgiveAttempt { .. } => {
                    unreachable!("the challenge page's writes")
                }
                Write::ClaimRenewal { serial, renewed_by, guard, .. } if holds(&next, guard, last) => {
                    match next.certificates.get_mut(serial).filter(|c| c.renewed_by.is_none()) {
                        Some(c) => {
                            c.renewed_by = Some(renewed_by.clone());
                            true
                        }
                        None => false,
                    }
                }
                Write::ClaimRenewal { .. } => false,
                Write::DecideHeld { requires, .. } if !required(&next, requires) => false,
                Write::DecideHeld { key, status, serial, renews, .. } => {
                    let renewable = renews
                        .as_ref()
                        .map_or(true, |r| next.certificates.get(r).is_some_and(|c| c.renewed_by.is_none()));
                    let issuing = *status == scepkit::policy::TransactionStatus::Issued;
                    match next.transactions.get_mut(&(key.transaction_id.clone(), key.signer_fingerprint.clone())) {
                        Some(t) if t.status == "PENDING" && (!issuing || renewable) => {
                            t.status = serde_json::to_value(status).unwrap().as_str().unwrap().to_owned();
                            t.serial = serial.clone();
                            true
                        }
                        _ => false,
                    }
                }
                Write::SettleRenewal { serial, attempt, renewed_by, guard } => {
                    holds(&next, guard, last)
                        && match next.certificates.get_mut(serial).filter(|c| c.renewed_by.as_ref() == Some(attempt)) {
                            Some(c) => {
                                c.renewed_by = Some(renewed_by.clone());
                                true
                            }
                            None => false,
                        }
                }
                Write::Withdraw { key, attempt } => {
                    let k = (key.transaction_id.clone(), key.signer_fingerprint.clone());
                    let mine = next.transactions.get(&k).is_some_and(|t| {
                        t.status == "PENDING"
                            && t.claim.as_deref().is_some_and(|c| c.contains(&format!("\"attempt\":\"{attempt}\"")))
                    });
                    mine && next.transactions.remove(&k).is_some()
                }
                Write::Unclaim { record, guard } => {
                    holds(&next, guard, last) && {
                        use scepkit::policy::Claim;
                        let attempt = Some(&record.attempt);
                        match &record.claim {
                            Claim::Enrollment { id } => {
                                match next.enrollments.iter_mut().find(|e| &e.id == id && e.claim.as_ref() == attempt) {
                                    Some(e) => {
                                        e.status = Status::Created;
                                        e.claim = None;
                                        true
                                    }
                                    None => false,
                                }
                            }
                            Claim::WebhookChallenge { mac } => {
                                next.used_challenges.get(mac) == attempt && next.used_challenges.remove(mac).is_some()
                            }
                            Claim::Password { mac, .. } => {
                                match next.passwords.get_mut(mac).filter(|p| p.1.as_ref() == attempt) {
                                    Some(p) => {
                                        p.1 = None;
                                        true
                                    }
                                    None => false,
                                }
                            }
                            Claim::Renewal { serial } => {
                                match next.certificates.get_mut(serial).filter(|c| c.renewed_by.as_ref() == attempt) {
                                    Some(c) => {
                                        c.renewed_by = None;
                                        true
                                    }
                                    None => false,
                                }
                            }
                        }
                    }
                }
                Write::InsertCertificate { row, guard } => {
                    holds(&next, guard, last) && {
                        let cert = Cert {
                            seat: row.seat_id.clone(),
                            profile_id: row.profile_id.clone(),
                            der: row.der.clone(),
                            renewed_by: None,
                        };
                        next.certificates.insert(row.serial.clone(), cert);
                        true
                    }
                }
                Write::Hold { row, requires } => {
                    let key = (row.transaction_id.clone(), row.signer_fingerprint.clone());
                    required(&next, requires) && !next.transactions.contains_key(&key) && {
                        next.transactions.insert(key, TransactionRecord::of(row));
                        true
                    }
                }
                Write::InsertTransaction { row, guard } => {
                    holds(&next, guard, last) && {
                        let key = (row.transaction_id.clone(), row.signer_fingerprint.clone());
                        next.transactions.insert(key, TransactionRecord::of(row));
                        true
                    }
                }
                Write::InsertAudit { row, guard } => {
                    holds(&next, guard, last) && {
                        next.audit.push((row.code.clone(), row.status, row.seat_id.clone()));
                        true
                    }
                }
            };
            first.get_or_insert(changed);
            last = changed;
        }
        *self = next;
        first.unwrap_or(false)
    }

    /// The (first) PENDING transaction as the admin API hands it to `decide_held`.
    fn pending_held(&self) -> scepkit::pki_operation::HeldRequest {
        let ((transaction_id, signer_fingerprint), t) =
            self.transactions.iter().find(|(_, t)| t.status == "PENDING").expect("a PENDING transaction");
        scepkit::pki_operation::HeldRequest {
            key: scepkit::pki_operation::TransactionKey {
                profile_id: "prof-1".into(),
                transaction_id: transaction_id.clone(),
                signer_fingerprint: signer_fingerprint.clone(),
            },
            profile_name: "p".into(),
            seat_id: t.seat.clone(),
            public_key: serde_bytes::ByteBuf::from(t.public_key.clone()),
            plan: t.plan.clone(),
            renews: t.renews.clone(),
            upstream: t.upstream.clone(),
        }
    }

    fn clone_state(&self) -> Store {
        Store {
            seats: self.seats.clone(),
            enrollments: self.enrollments.clone(),
            certificates: self.certificates.clone(),
            transactions: self.transactions.clone(),
            audit: self.audit.clone(),
            profile_body: self.profile_body.clone(),
            used_challenges: self.used_challenges.clone(),
            webhook: self.webhook.clone(),
            webhook_calls: self.webhook_calls.clone(),
            passwords: self.passwords.clone(),
            current_ca: self.current_ca.clone(),
            deleted_seats: self.deleted_seats.clone(),
        }
    }
}

fn profile_json(extra: serde_json::Value) -> serde_json::Value {
    let mut v = json!({
        "id": "prof-1", "name": "p", "folder": "Shared", "scep_challenge": { "dynamic": {} }, "ca_identity_name": "ca",
        "algorithm": { "rsa": { "rsa_nbits": 2048 } }, "digest": "sha256", "scep_url": "/scep",
        "validity_days": 365, "renewal_window_days": 365
    });
    for (k, val) in extra.as_object().unwrap() {
        v[k] = val.clone();
    }
    v
}

fn stored(body: &serde_json::Value, cached: bool) -> StoredProfile {
    StoredProfile {
        id: body.get("id").and_then(|id| id.as_str()).unwrap_or("prof-1").into(),
        name: "p".into(),
        profile: ScepProfile::from_json(body).unwrap(),
        stored: body.to_string(),
        cached,
    }
}

fn identity() -> Identity {
    Identity::new(scepkit_ca().cert.clone(), None, Box::new(scepkit::keys::RustCrypto))
}

/// The CA's key at hand, as the pure-Rust fallback holds it.
fn keys() -> ServerKeys {
    ServerKeys { ca: Box::new(scepkit_ca().key.clone()), ra: None }
}

/// The machine as a host drives it: every key step answered with [`keys`], so the tests see the other steps.
struct Op<'a> {
    op: PkiOperation,
    id: &'a Identity,
    keys: ServerKeys,
    /// The private-key operations the machine handed out, in order.
    key_steps: Vec<(CaKey, &'static str)>,
}

fn start<'a>(bytes: &[u8], profile: StoredProfile, id: &'a Identity) -> (Option<Op<'a>>, Step) {
    start_with(bytes, profile, id, keys())
}

fn start_with<'a>(bytes: &[u8], profile: StoredProfile, id: &'a Identity, keys: ServerKeys) -> (Option<Op<'a>>, Step) {
    let (op, step) = PkiOperation::start(bytes, profile, id, KEY, NOW, None);
    match op {
        None => (None, step),
        Some(op) => {
            let mut op = Op { op, id, keys, key_steps: Vec::new() };
            let step = op.keyed(step);
            (Some(op), step)
        }
    }
}

impl Op<'_> {
    fn keyed(&mut self, mut step: Step) -> Step {
        while let Step::Key { key, operation } = &step {
            let kind = match operation {
                KeyOperation::Sign { .. } => "sign",
                KeyOperation::Decrypt { .. } => "decrypt",
            };
            self.key_steps.push((*key, kind));
            let result = self.keys.perform(*key, operation).ok();
            step = self.op.with_key_result(self.id, result);
        }
        step
    }
    fn with_facts(&mut self, facts: Facts) -> Step {
        let step = self.op.with_facts(self.id, facts);
        self.keyed(step)
    }
    fn written(&mut self, claimed: bool) -> Step {
        let step = self.op.written(self.id, claimed);
        self.keyed(step)
    }
    fn with_profile(&mut self, profile: Option<StoredProfile>) -> Step {
        let step = self.op.with_profile(self.id, profile);
        self.keyed(step)
    }
    fn with_webhook(&mut self, answer: WebhookAnswer) -> Step {
        let step = self.op.with_webhook(self.id, answer);
        self.keyed(step)
    }
}

/// The seat's open enrollment (its code, not yet redeemed).
fn open_enrollment(seat: &str) -> Enrollment {
    Enrollment { id: "enr-1".into(), seat: seat.into(), status: Status::Created, claim: None }
}

fn store_with_seat(seat: &str, body: &serde_json::Value) -> Store {
    Store {
        seats: vec![seat.into()],
        enrollments: vec![open_enrollment(seat)],
        profile_body: body.to_string(),
        ..Default::default()
    }
}

struct Requester1 {
    key: &'static scepkit::keys::RsaKey,
    signer: Certificate,
}

fn requester(slot: usize) -> Requester1 {
    let key = test_key(slot);
    let signer =
        self_signed(key, "CN=SCEP SIGNER", &[9], (NOW - 60, NOW + 3600), DigestAlg::Sha256, SelfSignedRole::Signer)
            .unwrap();
    Requester1 { key, signer }
}

fn ca_certs() -> CaCertificates {
    CaCertificates::parse(&ca_cert_response(&scepkit_ca().cert, None).unwrap().1).unwrap()
}

fn options() -> RequestOptions {
    RequestOptions {
        envelope: EnvelopeOptions {
            cipher: Cipher::Aes128Cbc,
            transport: KeyTransport::RsaPkcs1v15,
            identifier: IdentifierKind::IssuerAndSerialNumber,
        },
        policy: AlgorithmPolicy::Modern,
        digest: DigestAlg::Sha256,
        signer_identifier: IdentifierKind::IssuerAndSerialNumber,
    }
}

fn pkcs_req(
    r: &Requester1,
    subject: &str,
    message_type: MessageType,
    signer: Option<(&'static scepkit::keys::RsaKey, &Certificate)>,
) -> PkiRequest {
    request_with(r, subject, CODE, message_type, signer)
}

fn request_with(
    r: &Requester1,
    subject: &str,
    challenge: &str,
    message_type: MessageType,
    signer: Option<(&'static scepkit::keys::RsaKey, &Certificate)>,
) -> PkiRequest {
    let csr = CsrRequest {
        subject: subject.into(),
        sans: vec![],
        challenge: Some(challenge.into()),
        digest: DigestAlg::Sha256,
        digital_signature: true,
        key_encipherment: true,
    };
    let der = csr.build(r.key).unwrap();
    let (key, cert) = signer.unwrap_or((r.key, &r.signer));
    client::certificate_request(
        &der,
        message_type,
        None,
        &Requester { key, certificate: cert },
        &ca_certs(),
        options(),
        &mut OsRng,
    )
    .unwrap()
}

/// Drives a machine to its answer against `store`, the way the Worker's loop does.
fn drive(store: &mut Store, bytes: &[u8], profile: StoredProfile) -> Step {
    drive_with(store, bytes, profile, &identity(), keys(), None)
}

/// [`drive`] as an endpoint with `id` and `keys`, in front of `upstream` (RA mode) if there is one.
fn drive_with(
    store: &mut Store,
    bytes: &[u8],
    profile: StoredProfile,
    id: &Identity,
    keys: ServerKeys,
    mut upstream: Option<&mut ra_mode::Upstream>,
) -> Step {
    let (op, mut step) = start_with(bytes, profile, id, keys);
    let Some(mut op) = op else { return step };
    for _ in 0..16 {
        step = match step {
            Step::CallUpstream { request } => {
                let answer = upstream.as_deref_mut().expect("an upstream profile").answer(&request);
                let step = op.op.with_upstream(op.id, answer);
                op.keyed(step)
            }
            Step::NeedProfile => op.with_profile(store.profile()),
            Step::CallWebhook { call } => {
                store.webhook_calls.push(call);
                op.with_webhook(store.webhook.clone().expect("the test set what the webhook answers"))
            }
            Step::NeedFacts { query } => op.with_facts(store.facts(&query)),
            Step::Write { writes } => {
                let claimed = store.write(&writes);
                op.written(claimed)
            }
            done => return done,
        };
    }
    panic!("the machine did not answer");
}

fn outcome(step: &Step, r: &Requester1, req: &PkiRequest) -> CertRepOutcome {
    let Step::Answer { body, .. } = step else { panic!("expected an answer, got {step:?}") };
    client::open_cert_rep(
        body,
        req,
        &Requester { key: r.key, certificate: &r.signer },
        &ca_certs(),
        None,
        crypto(false),
    )
    .unwrap()
}

#[test]
fn an_enrollment_claims_its_code_and_saves_certificate_transaction_and_audit_in_one_batch() {
    let body = profile_json(json!({}));
    let mut store = store_with_seat("dev-1", &body);
    let r = requester(1);
    let req = pkcs_req(&r, "CN=dev-1", MessageType::PkcsReq, None);
    let step = drive(&mut store, &req.message, stored(&body, false));
    assert!(matches!(outcome(&step, &r, &req), CertRepOutcome::Issued { .. }), "{step:?}");
    assert!(matches!(step, Step::Answer { audit: None, .. }), "the audit row was part of the batch");
    assert_eq!(store.certificates.len(), 1);
    assert_eq!(store.transactions.len(), 1);
    assert_eq!(store.audit, vec![("issued".into(), AuditStatus::Success, Some("dev-1".into()))]);
    assert_eq!(store.enrollments[0].status, Status::Redeemed);

    // The same message again (a client's retransmission): the same certificate, nothing new saved.
    let again = drive(&mut store, &req.message, stored(&body, false));
    let (CertRepOutcome::Issued { certificate: a, .. }, CertRepOutcome::Issued { certificate: b, .. }) =
        (outcome(&step, &r, &req), outcome(&again, &r, &req))
    else {
        panic!()
    };
    assert_eq!(a, b);
    assert_eq!(store.certificates.len(), 1);
}

#[test]
fn a_crash_before_the_batch_leaves_the_code_created_and_the_resend_is_issued() {
    let body = profile_json(json!({}));
    let mut store = store_with_seat("dev-1", &body);
    let r = requester(1);
    let req = pkcs_req(&r, "CN=dev-1", MessageType::PkcsReq, None);
    // The host dies after the machine asked for its writes: nothing ran.
    let id = identity();
    let (op, step) = start(&req.message, stored(&body, false), &id);
    let Step::NeedFacts { query } = step else { panic!("{step:?}") };
    assert!(matches!(op.unwrap().with_facts(store.facts(&query)), Step::Write { .. }));
    assert_eq!(store.enrollments[0].status, Status::Created);
    // The client resends the same message: it is issued.
    let resent = drive(&mut store, &req.message, stored(&body, false));
    assert!(matches!(outcome(&resent, &r, &req), CertRepOutcome::Issued { .. }));
}

#[test]
fn two_requests_racing_for_one_code_get_one_certificate_and_the_loser_is_refused_after_a_second_look() {
    let body = profile_json(json!({}));
    let mut store = store_with_seat("dev-1", &body);
    let id = identity();
    let (a, b) = (requester(1), requester(2));
    let (req_a, req_b) =
        (pkcs_req(&a, "CN=dev-1", MessageType::PkcsReq, None), pkcs_req(&b, "CN=dev-1", MessageType::PkcsReq, None));
    let (op_a, Step::NeedFacts { query: qa }) = start(&req_a.message, stored(&body, false), &id) else { panic!() };
    let (op_b, Step::NeedFacts { query: qb }) = start(&req_b.message, stored(&body, false), &id) else { panic!() };
    let (mut op_a, mut op_b) = (op_a.unwrap(), op_b.unwrap());
    // Both read the code as CREATED before either writes.
    let (Step::Write { writes: wa }, Step::Write { writes: wb }) =
        (op_a.with_facts(store.facts(&qa)), op_b.with_facts(store.facts(&qb)))
    else {
        panic!()
    };
    assert!(store.write(&wa));
    assert!(!store.write(&wb), "the second claim loses");
    assert_eq!(store.certificates.len(), 1, "and writes nothing");
    let again = op_b.written(false);
    let Step::NeedFacts { query } = again else { panic!("a lost claim is looked at once more: {again:?}") };
    let refused = op_b.with_facts(store.facts(&query));
    let CertRepOutcome::Failed(e) = outcome(&refused, &b, &req_b) else { panic!() };
    assert!(e.message.starts_with("Challenge password is invalid"), "{}", e.message);
    assert!(matches!(op_a.written(true), Step::Answer { .. }));
}

#[test]
fn a_stale_cached_profile_is_read_again_and_a_refusal_from_a_cached_profile_is_confirmed_first() {
    let body = profile_json(json!({}));
    let oaep = profile_json(json!({ "oaep_only": true }));
    let r = requester(1);
    let req = pkcs_req(&r, "CN=dev-1", MessageType::PkcsReq, None);
    let id = identity();
    // The host's cached copy is OAEP-only, the store's profile no longer is: the refusal the cached copy would
    // give is not given; the machine asks for the profile once and issues under the store's copy.
    let mut store = store_with_seat("dev-1", &body);
    let (op, step) = start(&req.message, stored(&oaep, true), &id);
    assert!(matches!(step, Step::NeedProfile), "{step:?}");
    let mut op = op.unwrap();
    let Step::NeedFacts { query } = op.with_profile(store.profile()) else { panic!("opened again") };
    assert!(!query.profile_body, "a fresh copy is not checked again");
    assert!(matches!(drive(&mut store, &req.message, stored(&oaep, true)), Step::Answer { audit: None, .. }));
    assert_eq!(store.certificates.len(), 1, "issued under the store's profile");

    // A cached copy that differs from the store's body is found out with the facts, and read again.
    let mut store = store_with_seat("dev-1", &body);
    let mut stale = stored(&body, true);
    stale.stored = "{\"old\":true}".into();
    let (op, step) = start(&req.message, stale.clone(), &id);
    let (mut op, Step::NeedFacts { query }) = (op.unwrap(), step) else { panic!() };
    assert!(matches!(op.with_facts(store.facts(&query)), Step::NeedProfile));
    assert!(store.certificates.is_empty(), "nothing decided on a stale profile");
    assert!(matches!(drive(&mut store, &req.message, stale), Step::Answer { audit: None, .. }));
    assert_eq!(store.certificates.len(), 1, "issued once the profile was read again");

    // The store's profile is OAEP-only too: the refusal is confirmed on the fresh copy, audited.
    let mut store = store_with_seat("dev-1", &oaep);
    let fresh = drive(&mut store, &req.message, stored(&oaep, true));
    let CertRepOutcome::Failed(e) = outcome(&fresh, &r, &req) else { panic!() };
    assert!(e.message.contains("RSA-OAEP only"), "{}", e.message);
    assert!(matches!(fresh, Step::Answer { audit: Some(ref a), .. } if a.status == AuditStatus::Failure));
    assert!(store.certificates.is_empty());

    // A profile deleted meanwhile: HTTP 404, audited.
    let (op, _) = start(&req.message, stored(&oaep, true), &id);
    let gone = op.unwrap().with_profile(None);
    assert!(matches!(gone, Step::Refuse { status: 404, ref audit, .. } if audit.code == "no_profile"), "{gone:?}");
}

#[test]
fn a_renewal_claims_the_old_certificate_once_and_stays_with_its_seat() {
    let body = profile_json(json!({}));
    let mut store = store_with_seat("dev-1", &body);
    let r = requester(1);
    let first = pkcs_req(&r, "CN=dev-1", MessageType::PkcsReq, None);
    let CertRepOutcome::Issued { certificate, .. } =
        outcome(&drive(&mut store, &first.message, stored(&body, false)), &r, &first)
    else {
        panic!()
    };
    let renewer = requester(2);
    // Signed by the issued certificate, asking for another seat's name: refused.
    let to_b = pkcs_req(&renewer, "CN=dev-2", MessageType::RenewalReq, Some((r.key, &certificate)));
    let step = drive(&mut store, &to_b.message, stored(&body, false));
    let Step::Answer { body: reply, .. } = &step else { panic!() };
    let CertRepOutcome::Failed(e) = client::open_cert_rep(
        reply,
        &to_b,
        &Requester { key: r.key, certificate: &certificate },
        &ca_certs(),
        None,
        crypto(false),
    )
    .unwrap() else {
        panic!()
    };
    assert!(e.message.contains("CN=dev-1"), "{}", e.message);
    // Its own name: issued once, and the old certificate is marked renewed in the same batch.
    let own = pkcs_req(&renewer, "CN=dev-1", MessageType::RenewalReq, Some((r.key, &certificate)));
    assert!(matches!(drive(&mut store, &own.message, stored(&body, false)), Step::Answer { audit: None, .. }));
    assert_eq!(store.certificates.len(), 2);
    assert_eq!(store.certificates.values().filter(|c| c.renewed_by.is_some()).count(), 1);
    assert!(store.certificates.values().all(|c| c.seat == "dev-1"));
}

#[test]
fn unreadable_bytes_are_refused_with_http_400_and_an_audit_row() {
    let body = profile_json(json!({}));
    let mut store = store_with_seat("dev-1", &body);
    let Step::Refuse { status, audit, .. } = drive(&mut store, b"not a PKIOperation", stored(&body, false)) else {
        panic!()
    };
    assert_eq!((status, audit.code.as_str(), audit.status), (400, "malformed", AuditStatus::Failure));
}

/// A seat enrolled under a profile, which an administrator then switched to manual approval (as the store holds
/// it), and a RenewalReq signed by the seat's certificate.
fn renewal_under_manual_approval() -> (Store, serde_json::Value, PkiRequest) {
    let body = profile_json(json!({}));
    let manual = profile_json(json!({ "manual_approval": true }));
    let mut store = store_with_seat("dev-1", &body);
    let r = requester(1);
    let first = pkcs_req(&r, "CN=dev-1", MessageType::PkcsReq, None);
    let CertRepOutcome::Issued { certificate, .. } =
        outcome(&drive(&mut store, &first.message, stored(&body, false)), &r, &first)
    else {
        panic!()
    };
    store.profile_body = manual.to_string();
    let renewal = pkcs_req(&requester(2), "CN=dev-1", MessageType::RenewalReq, Some((r.key, &certificate)));
    (store, manual, renewal)
}

#[test]
fn a_held_renewal_is_issued_by_its_approval_once_and_a_rejection_is_final() {
    use scepkit::pki_operation::decide_held;
    let (mut store, manual, renewal) = renewal_under_manual_approval();
    assert!(matches!(drive(&mut store, &renewal.message, stored(&manual, false)), Step::Answer { audit: None, .. }));
    let held = store.pending_held();
    assert!(held.renews.is_some(), "a held renewal names what it renews");
    let disabled = Identity { enabled: false, ..identity() };
    let e = decide_held(&disabled, &keys(), &held, true, None, NOW).unwrap_err();
    assert_eq!(e.kind, scepkit::error::ErrorKind::CaNotEnabled, "nothing is approved under a disabled CA");
    let approved = decide_held(&identity(), &keys(), &held, true, None, NOW).unwrap();
    assert!(store.write(&approved.writes));
    assert_eq!(store.certificates.len(), 2);
    assert!(store.certificates[held.renews.as_ref().unwrap()].renewed_by == approved.serial);
    // Deciding it again (a second administrator, a double click) changes nothing.
    let again = decide_held(&identity(), &keys(), &held, true, None, NOW).unwrap();
    assert!(!store.write(&again.writes));
    let rejected = decide_held(&identity(), &keys(), &held, false, Some("not\u{7} a company device"), NOW).unwrap();
    let Write::DecideHeld { message: Some(told), .. } = &rejected.writes[0] else { panic!("{:?}", rejected.writes) };
    assert_eq!(told, "The request was rejected by an administrator: not  a company device");
    assert!(!store.write(&rejected.writes));
    assert_eq!(store.certificates.len(), 2);
    assert_eq!(store.audit.iter().filter(|a| a.0 == "approved").count(), 1);
}

fn hook(mode: &str) -> serde_json::Value {
    profile_json(json!({
        "webhook": { "url": "http://127.0.0.1:9/hook", "secret": "0123456789abcdef", "mode": mode, "timeout_ms": 800 }
    }))
}

fn answered(body: &str) -> Option<WebhookAnswer> {
    Some(WebhookAnswer { status: Some(200), body: Some(body.into()), error: None })
}

fn failure_of(step: &Step, r: &Requester1, req: &PkiRequest) -> scepkit::ScepError {
    let CertRepOutcome::Failed(e) = outcome(step, r, req) else { panic!("expected a FAILURE, got {step:?}") };
    e
}

#[test]
fn an_approve_webhook_is_asked_after_every_check_and_before_anything_is_written() {
    let body = hook("approve");
    let r = requester(1);
    let req = pkcs_req(&r, "CN=dev-1", MessageType::PkcsReq, None);

    // A deny: its reason is the failInfoText, audited; the code stays CREATED, nothing is saved.
    let mut store = store_with_seat("dev-1", &body);
    store.webhook = answered(r#"{"allow":false,"reason":"device dev-1 is not compliant"}"#);
    let denied = drive(&mut store, &req.message, stored(&body, false));
    let e = failure_of(&denied, &r, &req);
    assert_eq!(e.message, "The enrollment webhook refused the request: device dev-1 is not compliant");
    assert!(
        matches!(denied, Step::Answer { audit: Some(ref a), .. } if a.code == "webhook_denied" && a.seat_id.as_deref() == Some("dev-1"))
    );
    assert_eq!((&store.enrollments[0].status, store.certificates.len()), (&Status::Created, 0));
    // What it was asked: the names the CA will issue, the key, the client; no challenge in approve mode; signed.
    let call = &store.webhook_calls[0];
    let sent: serde_json::Value = serde_json::from_str(&call.body).unwrap();
    assert_eq!(
        (sent["subject"].as_str(), sent["seat_id"].as_str(), sent["mode"].as_str()),
        (Some("CN=dev-1"), Some("dev-1"), Some("approve"))
    );
    assert_eq!(sent["key"], json!({ "type": "rsa", "bits": 2048 }));
    assert!(sent.get("challenge").is_none());
    assert!(call.headers.iter().any(|(k, v)| k == "X-Scepkit-Signature" && v.starts_with(&format!("t={NOW},v1="))));
    assert_eq!(call.timeout_ms, 800);

    // No answer in time: refused, fail closed, still nothing burned; then an allow issues with that same code.
    store.webhook = Some(WebhookAnswer { status: None, body: None, error: Some("timed out".into()) });
    let e = failure_of(&drive(&mut store, &req.message, stored(&body, false)), &r, &req);
    assert!(
        e.message.starts_with("The enrollment webhook gave no decision (timed out (800 ms allowed))"),
        "{}",
        e.message
    );
    assert_eq!(store.enrollments[0].status, Status::Created);
    store.webhook = answered(r#"{"allow":true}"#);
    let issued = drive(&mut store, &req.message, stored(&body, false));
    assert!(matches!(outcome(&issued, &r, &req), CertRepOutcome::Issued { .. }));
    assert_eq!((&store.enrollments[0].status, store.certificates.len()), (&Status::Redeemed, 1));

    // A check of the CA's own fails first: the webhook is not asked (a second use of the code).
    let calls = store.webhook_calls.len();
    let other = pkcs_req(&requester(2), "CN=dev-1", MessageType::PkcsReq, None);
    let e = failure_of(&drive(&mut store, &other.message, stored(&body, false)), &requester(2), &other);
    assert!(e.message.starts_with("Challenge password is invalid"), "{}", e.message);
    assert_eq!(store.webhook_calls.len(), calls);
}

#[test]
fn a_challenge_webhook_judges_the_challenge_which_is_then_used_once_and_needs_no_enrollment() {
    let body = hook("challenge");
    let mut store = store_with_seat("dev-1", &body);
    store.enrollments.clear();
    store.webhook = answered(r#"{"allow":true}"#);
    let r = requester(1);
    let req = pkcs_req(&r, "CN=dev-1", MessageType::PkcsReq, None);
    let issued = drive(&mut store, &req.message, stored(&body, false));
    assert!(matches!(outcome(&issued, &r, &req), CertRepOutcome::Issued { .. }), "{issued:?}");
    let sent: serde_json::Value = serde_json::from_str(&store.webhook_calls[0].body).unwrap();
    assert_eq!(sent["challenge"], CODE);
    assert_eq!((store.certificates.len(), store.used_challenges.len()), (1, 1));
    assert_eq!(store.audit.last().unwrap().0, "issued");

    // The client's retransmission gets the same certificate without asking again.
    let again = drive(&mut store, &req.message, stored(&body, false));
    assert!(matches!(outcome(&again, &r, &req), CertRepOutcome::Issued { .. }));
    assert_eq!(store.webhook_calls.len(), 1);
    // Another request with the used challenge is refused here, whatever the webhook would say.
    let other = pkcs_req(&requester(2), "CN=dev-1", MessageType::PkcsReq, None);
    let e = failure_of(&drive(&mut store, &other.message, stored(&body, false)), &requester(2), &other);
    assert!(e.message.starts_with("Challenge password is invalid"), "{}", e.message);
    assert_eq!((store.webhook_calls.len(), store.certificates.len()), (1, 1));
    // The seat must exist.
    let stranger = pkcs_req(&requester(3), "CN=dev-9", MessageType::PkcsReq, None);
    let e = failure_of(&drive(&mut store, &stranger.message, stored(&body, false)), &requester(3), &stranger);
    assert!(e.message.starts_with("Could not find seat"), "{}", e.message);
}

#[test]
fn two_requests_racing_with_one_webhook_challenge_get_one_certificate() {
    let body = hook("challenge");
    let mut store = store_with_seat("dev-1", &body);
    let id = identity();
    let (a, b) = (requester(1), requester(2));
    let (req_a, req_b) =
        (pkcs_req(&a, "CN=dev-1", MessageType::PkcsReq, None), pkcs_req(&b, "CN=dev-1", MessageType::PkcsReq, None));
    let allow = answered(r#"{"allow":true}"#).unwrap();
    let to_write = |req: &PkiRequest| {
        let (op, Step::NeedFacts { query }) = start(&req.message, stored(&body, false), &id) else { panic!() };
        let mut op = op.unwrap();
        let Step::CallWebhook { .. } = op.with_facts(store.facts(&query)) else { panic!("asks the webhook") };
        let Step::Write { writes } = op.with_webhook(allow.clone()) else { panic!("then writes") };
        (op, writes)
    };
    let ((_, wa), (mut op_b, wb)) = (to_write(&req_a), to_write(&req_b));
    assert!(matches!(wa[0], Write::ClaimChallenge { .. }), "the challenge is the claim");
    assert!(store.write(&wa));
    assert!(!store.write(&wb), "the second claim of the challenge loses and writes nothing");
    assert_eq!(store.certificates.len(), 1);
    let Step::NeedFacts { query } = op_b.written(false) else { panic!("looked at once more") };
    let refused = op_b.with_facts(store.facts(&query));
    assert!(failure_of(&refused, &b, &req_b).message.starts_with("Challenge password is invalid"));
}

#[test]
fn the_cas_private_key_operations_are_steps_the_host_performs_once_each() {
    let body = profile_json(json!({}));
    let mut store = store_with_seat("dev-1", &body);
    let r = requester(1);
    let req = pkcs_req(&r, "CN=dev-1", MessageType::PkcsReq, None);
    let id = identity();
    let (op, step) = start(&req.message, stored(&body, false), &id);
    let mut op = op.unwrap();
    let Step::NeedFacts { query } = step else { panic!("{step:?}") };
    let Step::Write { writes } = op.with_facts(store.facts(&query)) else { panic!() };
    let claimed = store.write(&writes);
    let answer = op.written(claimed);
    assert!(matches!(outcome(&answer, &r, &req), CertRepOutcome::Issued { .. }));
    // The content key opened, the certificate signed, the CertRep signed: each once, by the CA (no RA here).
    assert_eq!(op.key_steps, [(CaKey::Ca, "decrypt"), (CaKey::Ca, "sign"), (CaKey::Ca, "sign")]);

    // A host key that cannot decrypt reads exactly like bad content; nothing is asked of the store.
    let (machine, Step::Key { key: CaKey::Ca, operation: KeyOperation::Decrypt { .. } }) =
        PkiOperation::start(&req.message, stored(&body, false), &id, KEY, NOW, None)
    else {
        panic!()
    };
    let mut raw = Op { op: machine.unwrap(), id: &id, keys: keys(), key_steps: Vec::new() };
    let step = raw.op.with_key_result(&id, None);
    let refused = raw.keyed(step);
    let CertRepOutcome::Failed(e) = outcome(&refused, &r, &req) else { panic!("{refused:?}") };
    assert_eq!(e.message, "Failed to decrypt a PKCS7 message");
    // A reply the host cannot sign cannot be sent: HTTP 503, audited, not a 500.
    let (machine, _) = PkiOperation::start(&req.message, stored(&body, false), &id, KEY, NOW, None);
    let mut machine = machine.unwrap();
    let Step::Key { .. } = machine.with_key_result(&id, None) else { panic!("the FAILURE is to be signed") };
    let unsigned = machine.with_key_result(&id, None);
    assert!(matches!(unsigned, Step::Refuse { status: 503, .. }), "{unsigned:?}");
}

const PASSWORD: &str = "0123456789ABCDEF";

/// A profile whose challenge page is open (dynamic, with page credentials), with `extra` fields.
fn page_profile(extra: serde_json::Value) -> serde_json::Value {
    let mut body = profile_json(extra);
    body["scep_challenge"] = json!({ "dynamic": { "username": "mdm", "password": "page-password-1" } });
    body
}

/// A store whose challenge page handed out [`PASSWORD`] for profile `prof-1` (for `seat`, if given), valid until
/// `expires_at`, under the page credentials `body` has.
fn store_with_password(body: &serde_json::Value, expires_at: u64, seat: Option<&str>) -> Store {
    let mac = scepkit::challenge_page::password_mac(KEY, "prof-1", PASSWORD).unwrap();
    let credential = scepkit::challenge_page::credential_tag(KEY, &stored(body, false).profile).unwrap_or_default();
    let mut store = Store { profile_body: body.to_string(), ..Default::default() };
    store.passwords.insert(mac, (expires_at, None, seat.map(str::to_owned), credential));
    store
}

#[test]
fn a_one_time_password_enrolls_an_existing_seat_once_without_an_enrollment() {
    let body = page_profile(json!({}));
    let mut store = store_with_password(&body, NOW + 3600, None);
    store.seats.push("dev-1".into());
    let r = requester(1);
    // As an MDM types it: lower case is the same password.
    let req = request_with(&r, "CN=dev-1", &PASSWORD.to_lowercase(), MessageType::PkcsReq, None);
    let issued = drive(&mut store, &req.message, stored(&body, false));
    assert!(matches!(outcome(&issued, &r, &req), CertRepOutcome::Issued { .. }), "{issued:?}");
    assert_eq!(store.certificates.len(), 1);
    assert!(store.passwords.values().all(|(_, claim, _, _)| claim.is_some()), "redeemed");
    assert_eq!(store.audit.last().unwrap().0, "issued");

    // Used once: another request with it is refused, saying so.
    let other = requester(2);
    let again = request_with(&other, "CN=dev-1", PASSWORD, MessageType::PkcsReq, None);
    let e = failure_of(&drive(&mut store, &again.message, stored(&body, false)), &other, &again);
    assert!(e.message.contains("was used already"), "{}", e.message);
    assert_eq!(store.certificates.len(), 1);

    // Bound to its profile: the same password at another profile is no password at all.
    let elsewhere = page_profile(json!({ "id": "prof-2" }));
    let stored_elsewhere = stored(&elsewhere, false);
    let fresh = store_with_password(&body, NOW + 3600, None);
    let mut fresh = Store { seats: vec!["dev-1".into()], profile_body: elsewhere.to_string(), ..fresh };
    let third = request_with(&requester(3), "CN=dev-1", PASSWORD, MessageType::PkcsReq, None);
    let e = failure_of(&drive(&mut fresh, &third.message, stored_elsewhere), &requester(3), &third);
    assert!(e.message.starts_with("No SCEP enrollment with status = CREATED"), "{}", e.message);
}

#[test]
fn a_password_without_a_seat_cannot_take_over_an_enrolled_seat_and_one_for_a_seat_enrolls_only_it() {
    let body = page_profile(json!({}));
    let mut store = store_with_password(&body, NOW + 3600, None);
    store.seats.push("dev-1".into());
    // dev-1 holds a valid certificate already (enrolled by its code).
    store.enrollments.push(open_enrollment("dev-1"));
    let owner = requester(1);
    let first = pkcs_req(&owner, "CN=dev-1", MessageType::PkcsReq, None);
    assert!(matches!(
        outcome(&drive(&mut store, &first.message, stored(&body, false)), &owner, &first),
        CertRepOutcome::Issued { .. }
    ));
    let thief = requester(2);
    let take = request_with(&thief, "CN=dev-1", PASSWORD, MessageType::PkcsReq, None);
    let e = failure_of(&drive(&mut store, &take.message, stored(&body, false)), &thief, &take);
    assert!(e.message.starts_with("Seat dev-1 has a valid certificate"), "{}", e.message);
    assert!(store.passwords.values().all(|(_, claim, _, _)| claim.is_none()), "a refusal burns nothing");

    // Fetched for dev-1 (the MDM re-enrolling that device), it does; fetched for dev-1, it enrolls nothing else.
    let mut bound = store_with_password(&body, NOW + 3600, Some("dev-1"));
    bound.seats = vec!["dev-1".into(), "dev-2".into()];
    let other = request_with(&thief, "CN=dev-2", PASSWORD, MessageType::PkcsReq, None);
    let e = failure_of(&drive(&mut bound, &other.message, stored(&body, false)), &thief, &other);
    assert!(e.message.ends_with("is for seat dev-1, not dev-2"), "{}", e.message);
    let own = request_with(&owner, "CN=dev-1", PASSWORD, MessageType::PkcsReq, None);
    assert!(matches!(
        outcome(&drive(&mut bound, &own.message, stored(&body, false)), &owner, &own),
        CertRepOutcome::Issued { .. }
    ));
}

#[test]
fn passwords_fetched_before_the_page_credentials_changed_no_longer_enroll() {
    let before = page_profile(json!({}));
    let mut store = store_with_password(&before, NOW + 3600, None);
    store.seats.push("dev-1".into());
    let mut after = before.clone();
    after["scep_challenge"]["dynamic"]["password"] = json!("rotated-page-password");
    store.profile_body = after.to_string();
    let r = requester(1);
    let req = request_with(&r, "CN=dev-1", PASSWORD, MessageType::PkcsReq, None);
    let e = failure_of(&drive(&mut store, &req.message, stored(&after, false)), &r, &req);
    assert!(e.message.ends_with("was fetched with page credentials the profile no longer has"), "{}", e.message);
}

#[test]
fn a_one_time_password_creates_its_seat_only_where_the_profile_says_so_and_expires() {
    let r = requester(1);
    let req = request_with(&r, "CN=new-7", PASSWORD, MessageType::PkcsReq, None);
    let closed = page_profile(json!({}));
    let mut store = store_with_password(&closed, NOW + 3600, None);
    let e = failure_of(&drive(&mut store, &req.message, stored(&closed, false)), &r, &req);
    assert!(e.message.starts_with("Could not find seat with identifier = new-7"), "{}", e.message);
    assert!(store.passwords.values().all(|(_, claim, _, _)| claim.is_none()), "a refusal burns nothing");

    let open = page_profile(json!({ "one_time_passwords": { "create_seats": true } }));
    let mut store = store_with_password(&open, NOW + 3600, None);
    let issued = drive(&mut store, &req.message, stored(&open, false));
    assert!(matches!(outcome(&issued, &r, &req), CertRepOutcome::Issued { .. }), "{issued:?}");
    assert_eq!(store.seats, vec!["new-7".to_owned()]);

    // A seat id the admin API would refuse is not created either.
    let mut store = store_with_password(&open, NOW + 3600, None);
    let odd = request_with(&r, "CN=-odd", PASSWORD, MessageType::PkcsReq, None);
    let e = failure_of(&drive(&mut store, &odd.message, stored(&open, false)), &r, &odd);
    assert!(e.message.contains("must be 1 to 128"), "{}", e.message);
    assert!(store.seats.is_empty());

    let mut store = store_with_password(&open, NOW - 1, None);
    let e = failure_of(&drive(&mut store, &req.message, stored(&open, false)), &r, &req);
    assert!(e.message.contains("expired at"), "{}", e.message);
    assert!(store.seats.is_empty() && store.certificates.is_empty());
}

#[test]
fn two_requests_racing_with_one_password_get_one_certificate() {
    let body = page_profile(json!({ "one_time_passwords": { "create_seats": true } }));
    let mut store = store_with_password(&body, NOW + 3600, None);
    let id = identity();
    let (a, b) = (requester(1), requester(2));
    let req_a = request_with(&a, "CN=dev-1", PASSWORD, MessageType::PkcsReq, None);
    let req_b = request_with(&b, "CN=dev-2", PASSWORD, MessageType::PkcsReq, None);
    let (op_a, Step::NeedFacts { query: qa }) = start(&req_a.message, stored(&body, false), &id) else { panic!() };
    let (op_b, Step::NeedFacts { query: qb }) = start(&req_b.message, stored(&body, false), &id) else { panic!() };
    let (mut op_a, mut op_b) = (op_a.unwrap(), op_b.unwrap());
    let (Step::Write { writes: wa }, Step::Write { writes: wb }) =
        (op_a.with_facts(store.facts(&qa)), op_b.with_facts(store.facts(&qb)))
    else {
        panic!()
    };
    assert!(matches!(wa[0], Write::RedeemPassword { .. }) && matches!(wa[1], Write::CreateSeat { .. }));
    assert!(store.write(&wa));
    assert!(!store.write(&wb), "the second redemption loses and writes nothing, not even its seat");
    assert_eq!((store.certificates.len(), store.seats.clone()), (1, vec!["dev-1".to_owned()]));
    let Step::NeedFacts { query } = op_b.written(false) else { panic!("looked at once more") };
    let refused = op_b.with_facts(store.facts(&query));
    assert!(failure_of(&refused, &b, &req_b).message.contains("was used already"));
}

#[test]
fn a_pki_operation_under_a_disabled_ca_is_refused_as_the_seed_says_before_anything_is_read() {
    let body = profile_json(json!({}));
    let store = store_with_seat("dev-1", &body);
    let r = requester(1);
    let req = pkcs_req(&r, "CN=dev-1", MessageType::PkcsReq, None);
    let disabled = Identity { enabled: false, ..identity() };
    let (op, step) = PkiOperation::start(&req.message, stored(&body, false), &disabled, KEY, NOW, None);
    let mut op = Op { op: op.unwrap(), id: &disabled, keys: keys(), key_steps: Vec::new() };
    let step = op.keyed(step);
    let Step::Answer { audit: Some(audit), .. } = &step else { panic!("{step:?}") };
    assert_eq!((audit.code.as_str(), audit.message.as_str()), ("ca_not_enabled", "Failed to decrypt a PKCS7 message"));
    assert!(audit.resolution.as_deref().unwrap().starts_with("The CA associated to your profile is not enabled"));
    let e = failure_of(&step, &r, &req);
    assert_eq!(e.message, "Failed to decrypt a PKCS7 message");
    assert_eq!(op.key_steps, [(CaKey::Ca, "sign")], "only the FAILURE is signed; nothing is decrypted");
    assert_eq!(store.enrollments[0].status, Status::Created);
}

/// RA mode: the edge in front of another SCEP CA (here the same machine with micromdm's fixture CA and its own
/// store, reached through the [`Step::CallUpstream`] steps).
mod ra_mode {
    use super::*;
    use scepkit::caps::CONTENT_TYPE_CA_CERT;
    use scepkit::error::{ErrorKind, FailInfo};
    use scepkit::pki_operation::decide_held;
    use scepkit::registration_authority::{UpstreamAnswer, UpstreamRequest};

    pub struct Upstream {
        pub store: Store,
        pub profile: serde_json::Value,
        pub reachable: bool,
        pub calls: Vec<String>,
        /// What GetCACert answers instead of the upstream's own (a tampered path).
        pub ca_cert_override: Option<UpstreamAnswer>,
    }

    fn ok(content_type: &str, body: Vec<u8>) -> UpstreamAnswer {
        UpstreamAnswer {
            status: Some(200),
            content_type: Some(content_type.into()),
            body: Some(serde_bytes::ByteBuf::from(body)),
            error: None,
        }
    }

    pub fn upstream_identity() -> (Identity, ServerKeys) {
        let ca = micromdm_ca();
        let id = Identity::new(ca.cert.clone(), None, Box::new(scepkit::keys::RustCrypto));
        (id, ServerKeys { ca: Box::new(ca.key), ra: None })
    }

    impl Upstream {
        pub fn answer(&mut self, request: &UpstreamRequest) -> UpstreamAnswer {
            let operation = request.url.split("operation=").nth(1).unwrap().split('&').next().unwrap().to_owned();
            self.calls.push(operation.clone());
            if !self.reachable {
                return UpstreamAnswer { error: Some("connection refused".into()), ..Default::default() };
            }
            match operation.as_str() {
                "GetCACaps" => ok("text/plain", b"POSTPKIOperation\nSHA-256\nAES\nSCEPStandard\nRenewal\n".to_vec()),
                "GetCACert" => self
                    .ca_cert_override
                    .clone()
                    .unwrap_or_else(|| ok(CONTENT_TYPE_CA_CERT, der::Encode::to_der(&micromdm_ca().cert).unwrap())),
                _ => {
                    let (id, keys) = upstream_identity();
                    let body = request.body.clone().unwrap();
                    let profile = stored(&self.profile, false);
                    match drive_with(&mut self.store, &body, profile, &id, keys, None) {
                        Step::Answer { body, .. } => ok("application/x-pki-message", body),
                        other => panic!("the upstream did not answer: {other:?}"),
                    }
                }
            }
        }
    }

    /// The edge: the test CA with an RA, which signs for the devices.
    pub fn edge() -> (Identity, ServerKeys) {
        let ca = scepkit_ca();
        let ra_key = test_key(3);
        let validity = (NOW - 3600, NOW + 365 * 86400);
        let ra =
            scepkit::issue::ra_certificate(ra_key, "CN=edge RA", &[7], validity, &ca.cert, &ca.key, DigestAlg::Sha256)
                .unwrap();
        let id = Identity::new(ca.cert.clone(), Some(ra), Box::new(scepkit::keys::RustCrypto));
        (id, ServerKeys { ca: Box::new(ca.key.clone()), ra: Some(Box::new(ra_key.clone())) })
    }

    /// What a device learns from the edge's GetCACert for an RA-mode profile: the upstream CA and the edge's RA.
    pub fn device_view(id: &Identity) -> CaCertificates {
        let body = scepkit::signed::certs_only(&[&micromdm_ca().cert, id.ra_cert.as_ref().unwrap()]).unwrap();
        CaCertificates::parse(&body).unwrap()
    }

    pub fn edge_profile(fingerprint: &str) -> serde_json::Value {
        profile_json(json!({ "upstream": { "scep_url": "http://upstream.test/scep", "fingerprint": fingerprint } }))
    }

    pub fn micromdm_fingerprint() -> String {
        scepkit::caps::fingerprint(&micromdm_ca().cert).unwrap()
    }

    pub fn upstream(extra: serde_json::Value) -> Upstream {
        let profile = profile_json(extra);
        Upstream {
            store: store_with_seat("dev-1", &profile),
            profile,
            reachable: true,
            calls: Vec::new(),
            ca_cert_override: None,
        }
    }

    pub fn device_request(r: &Requester1, ca: &CaCertificates, message_type: MessageType) -> PkiRequest {
        let csr = CsrRequest {
            subject: "CN=dev-1".into(),
            sans: vec![],
            challenge: Some(CODE.into()),
            digest: DigestAlg::Sha256,
            digital_signature: true,
            key_encipherment: true,
        };
        let der = csr.build(r.key).unwrap();
        let requester = Requester { key: r.key, certificate: &r.signer };
        client::certificate_request(&der, message_type, None, &requester, ca, options(), &mut OsRng).unwrap()
    }

    /// One request to the edge, its profile pinning `fingerprint` (as the store holds it too).
    pub fn run(edge_store: &mut Store, up: &mut Upstream, bytes: &[u8], fingerprint: &str) -> Step {
        let (id, keys) = edge();
        edge_store.profile_body = edge_profile(fingerprint).to_string();
        drive_with(edge_store, bytes, stored(&edge_profile(fingerprint), false), &id, keys, Some(up))
    }

    pub fn device_outcome(step: &Step, r: &Requester1, req: &PkiRequest) -> CertRepOutcome {
        let Step::Answer { body, .. } = step else { panic!("expected an answer, got {step:?}") };
        let (id, _) = edge();
        let requester = Requester { key: r.key, certificate: &r.signer };
        client::open_cert_rep(body, req, &requester, &device_view(&id), None, crypto(false)).unwrap()
    }

    pub fn refusal(outcome: CertRepOutcome) -> scepkit::ScepError {
        match outcome {
            CertRepOutcome::Failed(e) => e,
            other => panic!("expected FAILURE, got {other:?}"),
        }
    }

    #[test]
    fn a_request_the_edge_accepts_is_issued_by_the_upstream_ca_and_recorded_here() {
        let fp = micromdm_fingerprint();
        let mut edge_store = store_with_seat("dev-1", &edge_profile(&fp));
        let mut up = upstream(json!({}));
        let r = requester(1);
        let (id, _) = edge();
        let req = device_request(&r, &device_view(&id), MessageType::PkcsReq);
        let step = run(&mut edge_store, &mut up, &req.message, &fp);
        let CertRepOutcome::Issued { certificate, .. } = device_outcome(&step, &r, &req) else { panic!("{step:?}") };
        // Issued (and verified by the device) under micromdm's CA, not the edge's.
        assert_eq!(certificate.tbs_certificate.issuer, micromdm_ca().cert.tbs_certificate.subject);
        assert_eq!(up.calls, ["GetCACaps", "GetCACert", "PKIOperation"]);
        assert_eq!(up.store.certificates.len(), 1);
        let serial = scepkit::wire::serial_hex(certificate.tbs_certificate.serial_number.as_bytes());
        assert!(edge_store.certificates.contains_key(&serial), "recorded at the edge");
        assert_eq!(edge_store.enrollments[0].status, Status::Redeemed);
        let t = edge_store.transactions.values().next().unwrap();
        assert_eq!((t.status.as_str(), t.serial.as_deref()), ("ISSUED", Some(serial.as_str())));
        assert_eq!(edge_store.audit.iter().map(|a| a.0.as_str()).collect::<Vec<_>>(), ["issued"]);

        // The same request again is answered from the edge's records; the upstream is not asked.
        let again = run(&mut edge_store, &mut up, &req.message, &fp);
        assert!(matches!(device_outcome(&again, &r, &req), CertRepOutcome::Issued { .. }));
        assert_eq!(up.calls.len(), 3);
        // A second device with the spent code is refused by the edge alone.
        let other = device_request(&requester(2), &device_view(&id), MessageType::PkcsReq);
        let refused = run(&mut edge_store, &mut up, &other.message, &fp);
        assert!(
            matches!(refused, Step::Answer { audit: Some(ref a), .. } if a.code == "challenge_invalid"),
            "{refused:?}"
        );
        assert_eq!(up.calls.len(), 3);
    }

    #[test]
    fn an_upstream_failure_or_silence_is_explained_and_uses_nothing() {
        let fp = micromdm_fingerprint();
        let mut edge_store = store_with_seat("dev-1", &edge_profile(&fp));
        let mut up = upstream(json!({}));
        up.store.seats.clear();
        let r = requester(1);
        let (id, _) = edge();
        let req = device_request(&r, &device_view(&id), MessageType::PkcsReq);
        let e = refusal(device_outcome(&run(&mut edge_store, &mut up, &req.message, &fp), &r, &req));
        assert_eq!(e.fail_info, FailInfo::BadCertId, "the upstream's failInfo is relayed");
        assert!(e.message.starts_with("The upstream CA refused the request: Could not find seat"), "{}", e.message);
        assert_eq!(edge_store.enrollments[0].status, Status::Created, "the code is given back");
        assert!(edge_store.transactions.is_empty());
        assert_eq!(edge_store.audit.last().unwrap().0, ErrorKind::UpstreamRefused.name());

        up.store.seats.push("dev-1".into());
        up.reachable = false;
        let e = refusal(device_outcome(&run(&mut edge_store, &mut up, &req.message, &fp), &r, &req));
        assert!(
            e.message.contains("Could not reach the SCEP server at http://upstream.test: connection refused"),
            "{}",
            e.message
        );
        assert!(e.message.contains("nothing was used"));
        assert_eq!(edge_store.enrollments[0].status, Status::Created);

        // A CA that is not the pinned one is never sent the request.
        up.reachable = true;
        up.calls.clear();
        let wrong = "00".repeat(32);
        let e = refusal(device_outcome(&run(&mut edge_store, &mut up, &req.message, &wrong), &r, &req));
        assert!(e.message.contains("does not match the pinned"), "{}", e.message);
        assert_eq!(up.calls, ["GetCACaps", "GetCACert"]);

        // Once the upstream is fixed, the same code enrolls.
        let step = run(&mut edge_store, &mut up, &req.message, &fp);
        assert!(matches!(device_outcome(&step, &r, &req), CertRepOutcome::Issued { .. }), "{step:?}");
        assert_eq!(edge_store.enrollments[0].status, Status::Redeemed);
    }

    #[test]
    fn a_pending_upstream_is_relayed_and_the_device_polls_through_the_edge() {
        let fp = micromdm_fingerprint();
        let mut edge_store = store_with_seat("dev-1", &edge_profile(&fp));
        let mut up = upstream(json!({ "manual_approval": true }));
        let r = requester(1);
        let (id, _) = edge();
        let view = device_view(&id);
        let req = device_request(&r, &view, MessageType::PkcsReq);
        let step = run(&mut edge_store, &mut up, &req.message, &fp);
        assert!(matches!(device_outcome(&step, &r, &req), CertRepOutcome::Pending), "{step:?}");
        let (key, t) = edge_store.transactions.iter().next().map(|(k, t)| (k.clone(), t.clone())).unwrap();
        assert_eq!((t.status.as_str(), t.upstream.as_deref()), ("PENDING", Some("http://upstream.test/scep")));
        assert_eq!(edge_store.enrollments[0].status, Status::Redeemed, "claimed while the upstream decides");

        // The edge's administrator cannot approve what the upstream holds.
        let held = edge_store.pending_held();
        let e = decide_held(&id, &edge().1, &held, true, None, NOW).err().unwrap();
        assert!(e.message.contains("waits for the upstream CA"), "{}", e.message);

        let requester_ = Requester { key: r.key, certificate: &r.signer };
        let subject = <x509_cert::name::Name as std::str::FromStr>::from_str("CN=dev-1").unwrap();
        let poll = client::cert_poll(&req.transaction_id, &subject, &requester_, &view, options(), &mut OsRng).unwrap();
        let step = run(&mut edge_store, &mut up, &poll.message, &fp);
        assert!(matches!(device_outcome(&step, &r, &poll), CertRepOutcome::Pending), "{step:?}");

        // The upstream's administrator approves; the next poll brings the certificate through the edge.
        let up_held = up.store.pending_held();
        let (up_id, up_keys) = upstream_identity();
        assert!(up.store.write(&decide_held(&up_id, &up_keys, &up_held, true, None, NOW).unwrap().writes));
        let poll = client::cert_poll(&req.transaction_id, &subject, &requester_, &view, options(), &mut OsRng).unwrap();
        let step = run(&mut edge_store, &mut up, &poll.message, &fp);
        let CertRepOutcome::Issued { certificate, .. } = device_outcome(&step, &r, &poll) else { panic!("{step:?}") };
        assert_eq!(certificate.tbs_certificate.issuer, micromdm_ca().cert.tbs_certificate.subject);
        assert_eq!(edge_store.transactions[&key].status, "ISSUED");
        assert_eq!(edge_store.certificates.len(), 1);
    }

    #[test]
    fn names_the_upstream_adds_are_withheld() {
        let fp = micromdm_fingerprint();
        let mut edge_store = store_with_seat("dev-1", &edge_profile(&fp));
        // An upstream that builds its own subject (as an AD CS template can).
        let mut up = upstream(json!({ "csr_names": "replace", "subject": "CN=$USERNAME,O=Upstream" }));
        let r = requester(1);
        let (id, _) = edge();
        let req = device_request(&r, &device_view(&id), MessageType::PkcsReq);
        let e = refusal(device_outcome(&run(&mut edge_store, &mut up, &req.message, &fp), &r, &req));
        assert!(
            e.message.starts_with("The upstream CA issued the subject CN=dev-1,O=Upstream, not CN=dev-1"),
            "{}",
            e.message
        );
        assert!(e.message.contains("withheld"));
        assert!(edge_store.certificates.is_empty());
        assert_eq!(edge_store.transactions.values().next().unwrap().status, "REJECTED");
        assert_eq!(edge_store.audit.last().unwrap().0, ErrorKind::UpstreamNames.name());
    }
}

/// What an attacker's review of RA mode found, each now refused.
mod ra_mode_attacks {
    use super::ra_mode::*;
    use super::*;
    use scepkit::caps::CONTENT_TYPE_CA_RA_CERT;
    use scepkit::pki_operation::decide_held;
    use scepkit::profile::ScepProfile;
    use scepkit::registration_authority::UpstreamAnswer;

    #[test]
    fn an_ra_certificate_the_pinned_ca_did_not_issue_is_never_encrypted_to() {
        // On a plain-http path someone adds their own "RA" to the upstream's GetCACert: had the edge encrypted to
        // it, the upstream (which has no such key) could not open the request. It enrolls: the CA was used.
        let fp = micromdm_fingerprint();
        let mut edge_store = store_with_seat("dev-1", &edge_profile(&fp));
        let mut up = upstream(json!({}));
        let rogue_key = test_key(2);
        let validity = (NOW - 60, NOW + 3600);
        let rogue =
            self_signed(rogue_key, "CN=rogue RA", &[5], validity, DigestAlg::Sha256, SelfSignedRole::Signer).unwrap();
        let body = scepkit::signed::certs_only(&[&rogue, &micromdm_ca().cert]).unwrap();
        up.ca_cert_override = Some(UpstreamAnswer {
            status: Some(200),
            content_type: Some(CONTENT_TYPE_CA_RA_CERT.into()),
            body: Some(serde_bytes::ByteBuf::from(body)),
            error: None,
        });
        let r = requester(1);
        let (id, _) = edge();
        let req = device_request(&r, &device_view(&id), MessageType::PkcsReq);
        let step = run(&mut edge_store, &mut up, &req.message, &fp);
        assert!(matches!(device_outcome(&step, &r, &req), CertRepOutcome::Issued { .. }), "{step:?}");
    }

    #[test]
    fn a_retransmission_forwards_only_the_csr_that_was_checked_and_the_upstream_sees_its_own_transaction_id() {
        let fp = micromdm_fingerprint();
        let mut edge_store = store_with_seat("dev-1", &edge_profile(&fp));
        let mut up = upstream(json!({ "manual_approval": true }));
        let r = requester(1);
        let (id, _) = edge();
        let view = device_view(&id);
        let req = device_request(&r, &view, MessageType::PkcsReq);
        assert!(matches!(
            device_outcome(&run(&mut edge_store, &mut up, &req.message, &fp), &r, &req),
            CertRepOutcome::Pending
        ));
        let upstream_tid = up.store.transactions.keys().next().unwrap().0.clone();
        assert_ne!(upstream_tid, req.transaction_id, "the upstream sees this transaction's own id");
        let calls = up.calls.len();
        // Same key (so the same transactionID), another subject: refused at the edge, never sent upstream.
        let other = request_with(&r, "CN=administrator", CODE, MessageType::PkcsReq, None);
        let sealed_for_edge = {
            let csr = CsrRequest {
                subject: "CN=administrator".into(),
                sans: vec![],
                challenge: Some(CODE.into()),
                digest: DigestAlg::Sha256,
                digital_signature: true,
                key_encipherment: true,
            };
            let requester_ = Requester { key: r.key, certificate: &r.signer };
            client::certificate_request(
                &csr.build(r.key).unwrap(),
                MessageType::PkcsReq,
                None,
                &requester_,
                &view,
                options(),
                &mut OsRng,
            )
            .unwrap()
        };
        assert_eq!(other.transaction_id, req.transaction_id);
        let e =
            match device_outcome(&run(&mut edge_store, &mut up, &sealed_for_edge.message, &fp), &r, &sealed_for_edge) {
                CertRepOutcome::Failed(e) => e,
                other => panic!("{other:?}"),
            };
        assert!(e.message.contains("was forwarded with another CSR"), "{}", e.message);
        assert_eq!(up.calls.len(), calls, "the upstream was not asked");

        // The upstream rejects what it held: the next poll rejects the transaction; the code stays used.
        let held = up.store.pending_held();
        let (up_id, up_keys) = upstream_identity();
        assert!(up.store.write(&decide_held(&up_id, &up_keys, &held, false, Some("not ours"), NOW).unwrap().writes));
        let subject = <x509_cert::name::Name as std::str::FromStr>::from_str("CN=dev-1").unwrap();
        let requester_ = Requester { key: r.key, certificate: &r.signer };
        let poll = client::cert_poll(&req.transaction_id, &subject, &requester_, &view, options(), &mut OsRng).unwrap();
        let e = match device_outcome(&run(&mut edge_store, &mut up, &poll.message, &fp), &r, &poll) {
            CertRepOutcome::Failed(e) => e,
            other => panic!("{other:?}"),
        };
        assert!(
            e.message.starts_with("The upstream CA refused the request: The request was rejected"),
            "{}",
            e.message
        );
        assert_eq!(edge_store.enrollments[0].status, Status::Redeemed, "a decision of the upstream gives nothing back");
        assert_eq!(edge_store.transactions.values().next().unwrap().status, "REJECTED");
    }

    #[test]
    fn the_upstream_page_password_is_kept_only_for_the_same_page_and_user() {
        let page = |url: &str, user: &str, password: &str| {
            profile_json(
                json!({ "upstream": { "scep_url": "https://ndes.example/certsrv/mscep/mscep.dll", "fingerprint": "ab".repeat(32),
                "challenge": { "dynamic": { "otp_server_url": url, "username": user, "password": password } } } }),
            )
        };
        let stored =
            ScepProfile::create(&page("https://ndes.example/certsrv/mscep_admin/", "CORP\\scep", "s3cret"), KEY)
                .unwrap();
        let same = ScepProfile::update(
            &stored,
            &page("https://ndes.example/certsrv/mscep_admin/", "CORP\\scep", "********"),
            KEY,
        )
        .unwrap();
        assert_eq!(same.upstream, stored.upstream);
        for (url, user) in
            [("https://attacker.example/", "CORP\\scep"), ("https://ndes.example/certsrv/mscep_admin/", "other")]
        {
            let e = ScepProfile::update(&stored, &page(url, user, "********"), KEY).unwrap_err();
            assert_eq!(e.details[0].path, "upstream.challenge.dynamic.password", "{url} {user}");
        }
    }
}

#[test]
fn a_cached_ca_that_was_disabled_or_replaced_since_is_never_used_the_profile_and_ca_are_read_again() {
    use scepkit::pki_operation::CurrentCa;
    let body = profile_json(json!({}));
    let r = requester(1);
    let req = pkcs_req(&r, "CN=dev-1", MessageType::PkcsReq, None);
    let mut id = identity();
    id.ca_id = Some("ca-1".into());
    let current = |id: &str, enabled| Some(CurrentCa { id: id.into(), enabled });
    for (now, restarts) in
        [(current("ca-1", true), false), (current("ca-1", false), true), (current("ca-2", true), true)]
    {
        let mut store = store_with_seat("dev-1", &body);
        store.current_ca = now.clone();
        let (op, step) = start(&req.message, stored(&body, true), &id);
        let Step::NeedFacts { query } = step else { panic!("{step:?}") };
        assert_eq!(query.ca_identity_name.as_deref(), Some("ca"), "a cached profile's CA is checked with the facts");
        let step = op.unwrap().with_facts(store.facts(&query));
        assert_eq!(matches!(step, Step::NeedProfile), restarts, "{now:?}: {step:?}");
    }
    // A fresh profile comes with a fresh CA: nothing to check.
    let (_, step) = start(&req.message, stored(&body, false), &id);
    let Step::NeedFacts { query } = step else { panic!("{step:?}") };
    assert_eq!(query.ca_identity_name, None);
}

/// The Worker reads a PKIOperation's facts from the nearest D1 replica, which may lag the primary: whatever the
/// decision relied on is checked again by the claim on the primary, and a claim refused for it is a lost claim,
/// decided again on fresh facts. Nothing is used on the way.
mod replica_reads {
    use super::*;
    use scepkit::pki_operation::CurrentCa;

    #[test]
    fn a_ca_disabled_after_the_replica_was_read_refuses_the_claim_and_the_fresh_facts_read_the_ca_again() {
        let body = profile_json(json!({}));
        let mut id = identity();
        id.ca_id = Some("ca-1".into());
        let r = requester(1);
        let req = pkcs_req(&r, "CN=dev-1", MessageType::PkcsReq, None);
        let mut store = store_with_seat("dev-1", &body);
        store.current_ca = Some(CurrentCa { id: "ca-1".into(), enabled: true });
        let (op, Step::NeedFacts { query }) = start(&req.message, stored(&body, false), &id) else { panic!() };
        let mut op = op.unwrap();
        let replica = store.facts(&query);
        // The administrator disables the CA; the replica has not seen it yet.
        store.current_ca = Some(CurrentCa { id: "ca-1".into(), enabled: false });
        let Step::Write { writes } = op.with_facts(replica) else { panic!() };
        let Write::Redeem { requires, .. } = &writes[0] else { panic!("{:?}", writes[0]) };
        assert!(requires.contains(&Precondition::CaCurrent { ca_identity_name: "ca".into(), ca_id: "ca-1".into() }));
        assert!(requires.contains(&Precondition::SeatLive { seat_id: "dev-1".into() }));
        assert!(!store.write(&writes), "the claim checks the CA on the primary");
        assert!(store.certificates.is_empty() && store.enrollments[0].status == Status::Created, "nothing is used");
        let Step::NeedFacts { query } = op.written(false) else { panic!() };
        assert_eq!(query.ca_identity_name.as_deref(), Some("ca"), "the fresh facts include the CA");
        assert!(
            matches!(op.with_facts(store.facts(&query)), Step::NeedProfile),
            "the profile and its CA are read again"
        );
        // Enabled again, the same request enrolls.
        store.current_ca = Some(CurrentCa { id: "ca-1".into(), enabled: true });
        let issued = drive_with(&mut store, &req.message, stored(&body, false), &id, keys(), None);
        assert!(matches!(outcome(&issued, &r, &req), CertRepOutcome::Issued { .. }), "{issued:?}");
    }

    #[test]
    fn a_profile_changed_after_the_replica_was_read_refuses_the_claim_and_the_request_is_decided_on_the_new_one() {
        let old = profile_json(json!({}));
        let manual = profile_json(json!({ "manual_approval": true }));
        let mut store = store_with_seat("dev-1", &old);
        let r = requester(1);
        let req = pkcs_req(&r, "CN=dev-1", MessageType::PkcsReq, None);
        let id = identity();
        let (op, Step::NeedFacts { query }) = start(&req.message, stored(&old, false), &id) else { panic!() };
        let mut op = op.unwrap();
        let replica = store.facts(&query);
        // The administrator switches the profile to manual approval; the replica (and this request) still has the
        // old one.
        store.profile_body = manual.to_string();
        let Step::Write { writes } = op.with_facts(replica) else { panic!() };
        assert!(!store.write(&writes), "the claim checks the profile on the primary");
        assert!(store.certificates.is_empty() && store.enrollments[0].status == Status::Created);
        let Step::NeedFacts { query } = op.written(false) else { panic!() };
        assert!(query.profile_body, "the fresh facts include the profile");
        assert!(matches!(op.with_facts(store.facts(&query)), Step::NeedProfile), "the profile is read again");
        let Step::NeedFacts { query } = op.with_profile(store.profile()) else { panic!() };
        let held = op.with_facts(store.facts(&query));
        let Step::Write { writes } = held else { panic!("{held:?}") };
        assert!(store.write(&writes));
        assert!(store.certificates.is_empty() && store.transactions.values().all(|t| t.status == "PENDING"));
    }

    #[test]
    fn a_password_fetched_without_a_seat_does_not_enroll_a_seat_enrolled_after_the_replica_was_read() {
        let body = page_profile(json!({}));
        let mut store = store_with_password(&body, NOW + 3600, None);
        store.seats.push("dev-1".into());
        let thief = requester(2);
        let take = request_with(&thief, "CN=dev-1", PASSWORD, MessageType::PkcsReq, None);
        let id = identity();
        let (op, Step::NeedFacts { query }) = start(&take.message, stored(&body, false), &id) else { panic!() };
        let mut op = op.unwrap();
        let replica = store.facts(&query);
        // Meanwhile the seat's own device enrolled with its code (the replica has not seen it).
        store.enrollments.push(open_enrollment("dev-1"));
        let owner = requester(1);
        let first = pkcs_req(&owner, "CN=dev-1", MessageType::PkcsReq, None);
        let issued = drive(&mut store, &first.message, stored(&body, false));
        assert!(matches!(outcome(&issued, &owner, &first), CertRepOutcome::Issued { .. }));
        let Step::Write { writes } = op.with_facts(replica) else { panic!() };
        assert!(!store.write(&writes), "the claim checks on the primary that the seat is still unenrolled");
        let Step::NeedFacts { query } = op.written(false) else { panic!() };
        let e = failure_of(&op.with_facts(store.facts(&query)), &thief, &take);
        assert!(e.message.starts_with("Seat dev-1 has a valid certificate"), "{}", e.message);
        assert!(store.passwords.values().all(|(_, claim, _, _)| claim.is_none()), "the password is not used");
    }

    #[test]
    fn a_held_renewal_is_its_own_claim_a_retransmission_gets_pending_and_a_renewed_certificate_is_not_held() {
        let (mut store, manual, renewal) = renewal_under_manual_approval();
        // Two copies read the replica before either is held: the second insert loses and is answered PENDING on a
        // second look, not a store error.
        let id = identity();
        let (a, Step::NeedFacts { query: qa }) = start(&renewal.message, stored(&manual, false), &id) else { panic!() };
        let (b, Step::NeedFacts { query: qb }) = start(&renewal.message, stored(&manual, false), &id) else { panic!() };
        let (mut a, mut b) = (a.unwrap(), b.unwrap());
        let (Step::Write { writes: wa }, Step::Write { writes: wb }) =
            (a.with_facts(store.facts(&qa)), b.with_facts(store.facts(&qb)))
        else {
            panic!()
        };
        assert!(
            matches!(&wa[0], Write::Hold { requires, .. } if requires.iter().any(|p| matches!(p, Precondition::Renewable { .. })))
        );
        assert!(store.write(&wa));
        assert!(!store.write(&wb), "the held row is the claim: one copy holds it");
        assert_eq!(store.audit.iter().filter(|x| x.0 == "pending").count(), 1, "one audit row for the hold");
        assert!(matches!(a.written(true), Step::Answer { .. }));
        let Step::NeedFacts { query } = b.written(false) else { panic!() };
        let pending = b.with_facts(store.facts(&query));
        assert!(matches!(pending, Step::Answer { .. }), "the copy is answered (PENDING): {pending:?}");
        assert_eq!(store.transactions.values().filter(|t| t.status == "PENDING").count(), 1);
    }

    #[test]
    fn a_renewal_of_a_certificate_renewed_after_the_replica_was_read_is_not_held() {
        let (mut store, manual, renewal) = renewal_under_manual_approval();
        let id = identity();
        let (op, Step::NeedFacts { query }) = start(&renewal.message, stored(&manual, false), &id) else { panic!() };
        let mut op = op.unwrap();
        let replica = store.facts(&query);
        // Renewed meanwhile on the primary (another device's renewal went through).
        store.certificates.values_mut().for_each(|c| c.renewed_by = Some("elsewhere".into()));
        let Step::Write { writes } = op.with_facts(replica) else { panic!() };
        assert!(!store.write(&writes), "the held row requires a renewable certificate");
        assert!(store.transactions.values().all(|t| t.status != "PENDING"), "nothing is held");
    }

    #[test]
    fn a_refusal_is_given_on_the_primarys_facts_so_a_code_made_moments_ago_enrolls() {
        let body = profile_json(json!({}));
        let mut store = store_with_seat("dev-1", &body);
        let r = requester(1);
        let req = pkcs_req(&r, "CN=dev-1", MessageType::PkcsReq, None);
        let id = identity();
        let (op, Step::NeedFacts { query }) = start(&req.message, stored(&body, false), &id) else { panic!() };
        let mut op = op.unwrap();
        assert!(!query.primary, "the first read may be served by a replica");
        // The replica has not seen the code the administrator just made.
        let lagging = Store {
            enrollments: Vec::new(),
            profile_body: body.to_string(),
            seats: store.seats.clone(),
            ..Default::default()
        };
        let again = op.with_facts(lagging.facts(&query));
        let Step::NeedFacts { query } = again else { panic!("a refusal is confirmed first: {again:?}") };
        assert!(query.primary && query.profile_body, "on the primary, the profile checked too");
        let Step::Write { writes } = op.with_facts(store.facts(&query)) else { panic!() };
        assert!(store.write(&writes));
        assert!(matches!(op.written(true), Step::Answer { audit: None, .. }));
        assert_eq!(store.certificates.len(), 1);

        // A refusal the primary confirms is final, after one more read.
        let thief = requester(2);
        let used = pkcs_req(&thief, "CN=dev-1", MessageType::PkcsReq, None);
        let (op, Step::NeedFacts { query }) = start(&used.message, stored(&body, false), &id) else { panic!() };
        let mut op = op.unwrap();
        let Step::NeedFacts { query } = op.with_facts(store.facts(&query)) else { panic!() };
        let e = failure_of(&op.with_facts(store.facts(&query)), &thief, &used);
        assert!(e.message.starts_with("Challenge password is invalid"), "{}", e.message);
        assert_eq!(store.certificates.len(), 1);
    }

    #[test]
    fn a_seat_deleted_after_the_replica_was_read_is_not_brought_back_by_a_password_that_creates_seats() {
        let body = page_profile(json!({ "one_time_passwords": { "create_seats": true } }));
        let mut store = store_with_password(&body, NOW + 3600, None);
        let r = requester(1);
        let req = request_with(&r, "CN=new-7", PASSWORD, MessageType::PkcsReq, None);
        let id = identity();
        let (op, Step::NeedFacts { query }) = start(&req.message, stored(&body, false), &id) else { panic!() };
        let mut op = op.unwrap();
        let replica = store.facts(&query);
        store.deleted_seats.push("new-7".into());
        let Step::Write { writes } = op.with_facts(replica) else { panic!() };
        assert!(!store.write(&writes), "the claim checks the seat on the primary");
        assert!(store.seats.is_empty() && store.passwords.values().all(|p| p.1.is_none()), "nothing is used");
        let Step::NeedFacts { query } = op.written(false) else { panic!() };
        let e = failure_of(&op.with_facts(store.facts(&query)), &r, &req);
        assert!(e.message.starts_with("Seat new-7 was deleted by an administrator"), "{}", e.message);
    }
}
