//! The NDES-compatible one-time challenge page: `GET /certsrv/mscep_admin/` (the default profile) and
//! `GET /scep/<profile>/mscep_admin/`, as a sans-IO step machine.
//!
//! Microsoft's Network Device Enrollment Service hands an administrator (or an MDM signed in as one) a fresh
//! challenge password on every visit of this page, and MDMs (Jamf's "Dynamic – Microsoft CA", zentral, Kandji),
//! firewalls and VPN gateways scrape it: UTF-16 little-endian HTML with a BOM, the CA's thumbprint, and
//! `The enrollment challenge password is: <B> 16 HEX </B>`. This page serves the same, behind HTTP Basic with the
//! profile's `scep_challenge.dynamic.username`/`password`, and JSON or plain text to a client that asks for it
//! with `Accept:`. NTLM (NDES's default) is not offered.
//!
//! Each password is single use, lives `one_time_passwords.lifetime_minutes` (default 60), is bound to its
//! profile and is stored only as a MAC ([`password_mac`]); the PKIOperation that redeems it claims it in the
//! batch that saves its certificate (`crate::policy`). The audit log names who fetched it (user and address)
//! and which transaction redeemed it, by its reference (the MAC's first 16 hex digits, never the password).
//!
//! Sign-in attempts are limited per profile and client address, atomically: each attempt that carries
//! credentials is counted *before* they are judged ([`PageStep::CountAttempt`]), and a success takes its count
//! back in the batch that saves the password. So however many guesses arrive at once, at most
//! [`LOCKOUT_AFTER`] are judged per [`LOCKOUT_WINDOW`]; the rest are answered HTTP 429 until the window ends.
//!
//! ```text
//! start ──► Answer 404          the profile has no page (not dynamic, no credentials, or a webhook owns it)
//!       ──► Answer 401          no Basic credentials (nothing counted: a browser asks first without)
//!       ──► CountAttempt ─with_attempts─► Answer 429 (audited once per window)   over the limit
//!                                       ► Answer 401 (audited)                    wrong credentials
//!                                       ► Write ─written─► Answer 200 page        (503 if not saved)
//! ```

use std::collections::BTreeMap;

use rand_core::{CryptoRngCore, OsRng};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::failure_limit::client_key;
use crate::issue::rfc3339;
use crate::pki_operation::{AuditRow, AuditStatus, Guard, StoredProfile, Write};
use crate::policy::mac_hex;
use crate::profile::{DynamicChallenge, ScepChallenge, ScepProfile};
use crate::server::Identity;

/// The fixed windows sign-in attempts are counted in, in seconds.
pub const LOCKOUT_WINDOW: u64 = 900;
/// Sign-in attempts of one client address at one profile's page judged per window; the next are refused.
pub const LOCKOUT_AFTER: u64 = 10;
/// Sign-in attempts at one profile's page judged per window from all addresses together (many addresses
/// guessing at once); past it the page is locked for everyone until the window ends.
pub const PROFILE_LOCKOUT_AFTER: u64 = 100;
/// The shortest page password a profile may set for this service's page.
pub const MIN_PAGE_PASSWORD: usize = 12;
/// The length of a password: 16 upper-case hexadecimal digits (64 bits), as NDES hands out.
pub const PASSWORD_LENGTH: usize = 16;
const DEFAULT_LIFETIME_MINUTES: u32 = 60;
const LIFETIME_RANGE: core::ops::RangeInclusive<u32> = 1..=1440;
const DEFAULT_MAX_OUTSTANDING: u32 = 1000;
const OUTSTANDING_RANGE: core::ops::RangeInclusive<u32> = 1..=100_000;

/// A profile's `one_time_passwords`: how long a password from the page lives, and whether redeeming one
/// creates the seat the CSR names when it does not exist yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "an object with lifetime_minutes and create_seats")]
pub struct OneTimePasswords {
    pub lifetime_minutes: u32,
    /// Unused, unexpired passwords a profile may have at once (NDES's password cache); the page refuses more.
    pub max_outstanding: u32,
    /// With `false` (the default) a password only enrolls a seat that exists (the seat messages apply as for
    /// enrollment codes); with `true` the seat is created on first use, in the batch that saves its certificate.
    pub create_seats: bool,
}

impl Default for OneTimePasswords {
    fn default() -> Self {
        Self {
            lifetime_minutes: DEFAULT_LIFETIME_MINUTES,
            max_outstanding: DEFAULT_MAX_OUTSTANDING,
            create_seats: false,
        }
    }
}

impl OneTimePasswords {
    pub(crate) fn check(&self) -> Result<(), String> {
        let range = |name: &str, value: u32, range: core::ops::RangeInclusive<u32>| {
            if range.contains(&value) {
                Ok(())
            } else {
                Err(format!("{name} must be an integer from {} to {}", range.start(), range.end()))
            }
        };
        range("lifetime_minutes", self.lifetime_minutes, LIFETIME_RANGE)?;
        range("max_outstanding", self.max_outstanding, OUTSTANDING_RANGE)
    }
}

/// The page of profile `name` on the service at `origin` (`https://host`).
pub fn page_url(origin: &str, name: &str) -> String {
    // RFC 3986 unreserved characters stay as they are (a profile name has no others but the space).
    const SEGMENT: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    let segment = percent_encoding::utf8_percent_encode(name, SEGMENT).to_string();
    format!("{}/scep/{segment}/mscep_admin/", origin.trim_end_matches('/'))
}

/// What the store keeps of a one-time password of profile `profile_id`: HMAC-SHA-256 under the server's key,
/// hex, domain-separated from every other MAC. `None` when `given` is not shaped like one (16 hex digits, any
/// case, surrounding spaces ignored): such a challenge is some other kind, never looked up.
pub fn password_mac(key: &[u8], profile_id: &str, given: &str) -> Option<String> {
    let given = given.trim();
    if given.len() != PASSWORD_LENGTH || !given.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let password = given.to_ascii_uppercase();
    Some(mac_hex(key, &[b"scepkit one-time password\0", profile_id.as_bytes(), b"\0", password.as_bytes()]))
}

/// What a password remembers of the page credentials it was fetched with: a MAC of the user name and the
/// sealed password. A password fetched before the credentials changed no longer enrolls.
pub fn credential_tag(key: &[u8], profile: &ScepProfile) -> Option<String> {
    let ScepChallenge::Dynamic(DynamicChallenge { username: Some(user), password: Some(password), .. }) =
        &profile.scep_challenge
    else {
        return None;
    };
    let sealed = String::from(password.sealed(key));
    Some(mac_hex(key, &[b"scepkit page credential\0", user.as_bytes(), b"\0", sealed.as_bytes()]))
}

/// How the audit log names a password: the start of its MAC (it gives nothing of the password away).
pub fn reference(mac: &str) -> &str {
    &mac[..mac.len().min(16)]
}

/// A request for the page, as the host received it.
#[derive(Clone, Debug, Default, Deserialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct PageRequest {
    /// The `Authorization` header.
    #[serde(default)]
    pub authorization: Option<String>,
    /// The `Accept` header.
    #[serde(default)]
    pub accept: Option<String>,
    /// Where the request came from (`CF-Connecting-IP`).
    #[serde(default)]
    pub client_address: Option<String>,
    /// The origin the page was asked at (`https://host`): a profile whose `otp_server_url` names another server
    /// has no page here.
    #[serde(default)]
    pub origin: Option<String>,
    /// `?seat=`: the password is for this seat only.
    #[serde(default)]
    pub seat: Option<String>,
}

/// One sign-in attempt to count, under two keys: the profile and client address, and the profile alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub keys: [String; 2],
    pub window_start: u64,
}

/// What the page asks of its host next.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(tag = "step", rename_all = "camelCase")]
pub enum PageStep {
    /// Count this attempt under both keys (atomic increments; counters of earlier windows may be deleted) and
    /// call [`ChallengePage::with_attempts`] with the attempts of each key in its window, this one included.
    CountAttempt { attempt: Attempt },
    /// Run these writes as one batch and call [`ChallengePage::written`] with whether it was saved.
    Write { writes: Vec<Write> },
    /// Answer with this; write `audit` when there is one.
    Answer {
        status: u16,
        headers: BTreeMap<String, String>,
        #[serde(with = "serde_bytes")]
        #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array"))]
        body: Vec<u8>,
        audit: Option<AuditRow>,
    },
}

/// What the client asked to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// NDES's page: UTF-16LE HTML with a BOM.
    Html,
    Json,
    Text,
}

/// One visit of the page.
pub struct ChallengePage {
    profile_id: String,
    profile_name: String,
    settings: OneTimePasswords,
    /// [`credential_tag`] of the profile's page credentials now.
    credential: String,
    /// The seat the password is for, when the visit named one.
    for_seat: Option<String>,
    attempt: Attempt,
    /// The user the credentials named, and whether they are the profile's.
    user: String,
    signed_in: bool,
    client: String,
    format: Format,
    /// SHA-256 of the CA certificate, upper-case hex.
    thumbprint: String,
    code_key: Vec<u8>,
    now: u64,
    state: State,
}

enum State {
    AwaitingAttempts,
    AwaitingWrite { password: String, expires_at: u64 },
    Done,
}

impl ChallengePage {
    /// A visit of `profile`'s page at `now` (Unix seconds); `code_key` MACs the passwords and the profile's
    /// sealed credentials.
    pub fn start(
        profile: &StoredProfile,
        identity: &Identity,
        request: &PageRequest,
        code_key: &[u8],
        now: u64,
    ) -> (Option<Self>, PageStep) {
        let p = &profile.profile;
        let no_page = |why: String| {
            let text = format!("The SCEP profile {} has no one-time challenge page here: {why}", profile.name);
            (None, text_answer(404, &text, BTreeMap::new()))
        };
        let (username, password, elsewhere) = match &p.scep_challenge {
            ScepChallenge::Dynamic(DynamicChallenge { username: Some(u), password: Some(pw), otp_server_url })
                if !u.is_empty() && !crate::policy::webhook_owns_challenge(p) =>
            {
                (u, pw, otp_server_url.as_deref())
            }
            _ => return no_page(
                "it needs a dynamic scep_challenge with a username and a password (and no webhook in challenge mode)"
                    .into(),
            ),
        };
        // Credentials meant for another OTP server (an NDES the profile names) do not open this page.
        if let (Some(url), Some(origin)) = (elsewhere, request.origin.as_deref()) {
            let ours = url.get(..origin.len()).is_some_and(|o| o.eq_ignore_ascii_case(origin))
                && url[origin.len()..].starts_with('/');
            if !ours {
                return no_page(format!("its one-time challenges come from {url}"));
            }
        }
        let for_seat = match request.seat.as_deref().map(|s| crate::names::check_seat_id(s).map(|()| s)) {
            Some(Err(e)) => return (None, text_answer(400, &e.message, BTreeMap::new())),
            Some(Ok(seat)) => Some(seat.to_owned()),
            None => None,
        };
        let Some((user, given)) = request.authorization.as_deref().and_then(basic_credentials) else {
            return (None, unauthorized(&profile.name, "Sign in with the profile's one-time challenge credentials"));
        };
        // Both compared in full, in constant time, whatever the first says.
        let same_user: bool = user.as_bytes().ct_eq(username.as_bytes()).into();
        let same_password = password.matches(&given, code_key);
        let client = client_key(request.client_address.as_deref());
        let page = Self {
            profile_id: profile.id.clone(),
            profile_name: profile.name.clone(),
            settings: p.one_time_passwords(),
            credential: credential_tag(code_key, p).unwrap_or_default(),
            for_seat,
            attempt: Attempt {
                keys: [format!("{} {client}", profile.id), format!("{} *", profile.id)],
                window_start: now - now % LOCKOUT_WINDOW,
            },
            user: user.chars().filter(|c| !c.is_control()).take(64).collect(),
            signed_in: same_user & same_password,
            client,
            format: negotiate(request.accept.as_deref()),
            thumbprint: der::Encode::to_der(&identity.ca_cert)
                .map(|der| crate::keys::fingerprint(&der).to_ascii_uppercase())
                .unwrap_or_default(),
            code_key: code_key.to_vec(),
            now,
            state: State::AwaitingAttempts,
        };
        let attempt = page.attempt.clone();
        (Some(page), PageStep::CountAttempt { attempt })
    }

    /// Continues with the attempts counted in this visit's window from its address at its profile, and at its
    /// profile from every address (this one included in both).
    pub fn with_attempts(&mut self, from_address: u64, at_profile: u64) -> PageStep {
        self.with_attempts_rng(from_address, at_profile, &mut OsRng)
    }

    fn with_attempts_rng(&mut self, attempts: u64, at_profile: u64, rng: &mut impl CryptoRngCore) -> PageStep {
        if !matches!(self.state, State::AwaitingAttempts) {
            return self.out_of_order();
        }
        self.state = State::Done;
        if attempts > LOCKOUT_AFTER || at_profile > PROFILE_LOCKOUT_AFTER {
            let everyone = attempts <= LOCKOUT_AFTER;
            let until = self.attempt.window_start + LOCKOUT_WINDOW;
            let wait = until.saturating_sub(self.now).max(1);
            let from = if everyone { "from all addresses" } else { "from this address" };
            let text = format!(
                "Too many sign-in attempts at the one-time challenge page of profile {} {from}; retry in {wait} s",
                self.profile_name
            );
            // Audited once, when the address (or the whole page) locks; the refusals after it only count.
            let locks = if everyone { at_profile == PROFILE_LOCKOUT_AFTER + 1 } else { attempts == LOCKOUT_AFTER + 1 };
            let audit = locks.then(|| {
                let (whom, limit) = if everyone {
                    ("every address".to_owned(), PROFILE_LOCKOUT_AFTER)
                } else {
                    (self.client.clone(), LOCKOUT_AFTER)
                };
                self.audit(
                    AuditStatus::Failure,
                    "page_locked",
                    format!(
                        "One-time challenge page locked for {whom} until {}: more than {limit} sign-in attempts in {} \
                         minutes",
                        rfc3339(until),
                        LOCKOUT_WINDOW / 60
                    ),
                )
            });
            let headers = BTreeMap::from([("retry-after".to_owned(), wait.to_string())]);
            let PageStep::Answer { status, headers, body, .. } = text_answer(429, &text, headers) else {
                unreachable!("text_answer answers")
            };
            return PageStep::Answer { status, headers, body, audit };
        }
        if !self.signed_in {
            let audit = self.audit(
                AuditStatus::Failure,
                "page_sign_in_failed",
                format!(
                    "Wrong credentials for the one-time challenge page (user {:?} from {}; attempt {attempts} of \
                     {LOCKOUT_AFTER} in this window)",
                    self.user, self.client
                ),
            );
            let PageStep::Answer { status, headers, body, .. } =
                unauthorized(&self.profile_name, "The user name or password is wrong")
            else {
                unreachable!("unauthorized answers")
            };
            return PageStep::Answer { status, headers, body, audit: Some(audit) };
        }
        let mut bytes = [0u8; PASSWORD_LENGTH / 2];
        rng.fill_bytes(&mut bytes);
        let password = base16ct::upper::encode_string(&bytes);
        let mac = password_mac(&self.code_key, &self.profile_id, &password).expect("16 hex digits");
        let expires_at = self.now + u64::from(self.settings.lifetime_minutes) * 60;
        let issued_to = format!("user {:?} from {}", self.user, self.client);
        let bound = self.for_seat.as_ref().map(|s| format!(" for seat {s}")).unwrap_or_default();
        let message = format!(
            "One-time challenge password {}{bound} issued to {issued_to}; expires {}",
            reference(&mac),
            rfc3339(expires_at)
        );
        // The rest only if the password was stored (the cache may be full).
        let stored = Some(Guard::PasswordStored { mac: mac.clone() });
        let writes = vec![
            Write::InsertOneTimePassword {
                mac,
                profile_id: self.profile_id.clone(),
                issued_to,
                for_seat: self.for_seat.clone(),
                credential: self.credential.clone(),
                expires_at,
                max_outstanding: self.settings.max_outstanding,
                now: self.now,
            },
            Write::ForgiveAttempt {
                keys: self.attempt.keys.clone(),
                window_start: self.attempt.window_start,
                guard: stored.clone(),
            },
            Write::InsertAudit { row: self.audit(AuditStatus::Success, "challenge_issued", message), guard: stored },
        ];
        self.state = State::AwaitingWrite { password, expires_at };
        PageStep::Write { writes }
    }

    /// Continues after the batch of the last [`PageStep::Write`]: `saved` is whether its first write (the
    /// password) took. Not saved, the profile's password cache is full: HTTP 503, audited. A password that is not
    /// stored is never shown.
    pub fn written(&mut self, saved: bool) -> PageStep {
        let State::AwaitingWrite { password, expires_at } = std::mem::replace(&mut self.state, State::Done) else {
            return self.out_of_order();
        };
        if !saved {
            let max = self.settings.max_outstanding;
            let text = format!(
                "The password cache is full: profile {} has {max} unused one-time challenge passwords outstanding; \
                 wait for them to be used or to expire, or raise one_time_passwords.max_outstanding",
                self.profile_name
            );
            let audit = self.audit(AuditStatus::Failure, "password_cache_full", text.clone());
            let headers = BTreeMap::from([("retry-after".to_owned(), "60".to_owned())]);
            let PageStep::Answer { status, headers, body, .. } = text_answer(503, &text, headers) else {
                unreachable!("text_answer answers")
            };
            return PageStep::Answer { status, headers, body, audit: Some(audit) };
        }
        let minutes = self.settings.lifetime_minutes;
        let (content_type, body) = match self.format {
            // The type in capitals (media types are case-insensitive, RFC 9110 §8.3.1): wrangler's dev proxy
            // runs every response whose type starts with "text/html" through HTMLRewriter, which cannot read
            // UTF-16 and answers 500; `no-transform` keeps the edge's own HTML features off it in production.
            Format::Html => ("Text/HTML; charset=utf-16", ndes_page(&self.thumbprint, &password, minutes)),
            Format::Json => {
                let body = serde_json::json!({
                    "challenge_password": password,
                    "expires_at": rfc3339(expires_at),
                    "lifetime_minutes": minutes,
                    "single_use": true,
                    "profile": self.profile_name,
                    "ca_thumbprint_sha256": self.thumbprint,
                });
                ("application/json", body.to_string().into_bytes())
            }
            Format::Text => ("text/plain; charset=utf-8", format!("{password}\n").into_bytes()),
        };
        let headers = BTreeMap::from([
            ("content-type".to_owned(), content_type.to_owned()),
            ("cache-control".to_owned(), "no-store, no-transform".to_owned()),
            ("content-security-policy".to_owned(), "default-src 'none'".to_owned()),
            ("vary".to_owned(), "accept, authorization".to_owned()),
        ]);
        PageStep::Answer { status: 200, headers, body, audit: None }
    }

    fn audit(&self, status: AuditStatus, code: &str, message: String) -> AuditRow {
        // What an administrator does about each failure of the page.
        let resolution = match code {
            "page_sign_in_failed" => Some("check the NDES credentials the MDM has for this profile; if it was not the MDM, someone is guessing them"),
            "page_locked" => Some("wait for the window to end; if the MDM was not the one failing, rotate the page credentials"),
            "password_cache_full" => Some("wait for unused passwords to expire, or raise one_time_passwords.max_outstanding"),
            _ => None,
        };
        AuditRow {
            time: self.now,
            profile: Some(self.profile_name.clone()),
            seat_id: None,
            transaction_id: None,
            operation: "mscep_admin".to_owned(),
            status,
            code: code.to_owned(),
            message,
            resolution: resolution.map(str::to_owned),
        }
    }

    /// The host could not run a step (its store failed): HTTP 503; nothing was shown.
    pub fn host_failed(&mut self) -> PageStep {
        self.state = State::Done;
        text_answer(503, "The one-time challenge page could not reach its store; retry", BTreeMap::new())
    }

    fn out_of_order(&mut self) -> PageStep {
        self.state = State::Done;
        text_answer(500, "the host called the challenge page out of order", BTreeMap::new())
    }
}

/// `Basic <base64(user:password)>` (RFC 7617), the scheme in any case; `None` for anything else.
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, token) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let token = token.trim();
    use base64ct::{Base64, Base64Unpadded, Encoding};
    let decoded = Base64::decode_vec(token).or_else(|_| Base64Unpadded::decode_vec(token)).ok()?;
    let (user, password) =
        String::from_utf8(decoded).ok()?.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned()))?;
    Some((user, password))
}

/// The format the `Accept` header prefers (RFC 9110 §12.5.1, q-values): NDES's HTML unless JSON or plain text
/// is preferred; on a tie HTML, then JSON.
fn negotiate(accept: Option<&str>) -> Format {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else { return Format::Html };
    let quality = |format: Format| -> u32 {
        let mut best: Option<(u8, u32)> = None;
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .map_or(1000, |q| (q.clamp(0.0, 1.0) * 1000.0) as u32);
            let specificity = match (format, media.as_str()) {
                (Format::Html, "text/html" | "application/xhtml+xml")
                | (Format::Json, "application/json")
                | (Format::Text, "text/plain") => 3,
                (Format::Html | Format::Text, "text/*") | (Format::Json, "application/*") => 2,
                (_, "*/*") => 1,
                _ => 0,
            };
            if specificity > 0 && best.map_or(true, |(s, _)| specificity > s) {
                best = Some((specificity, q));
            }
        }
        best.map_or(0, |(_, q)| q)
    };
    let (html, json, text) = (quality(Format::Html), quality(Format::Json), quality(Format::Text));
    if json > html && json >= text {
        Format::Json
    } else if text > html && text > json {
        Format::Text
    } else {
        Format::Html
    }
}

/// The page as NDES words it, UTF-16LE with a byte-order mark. The thumbprint is SHA-256 (NDES shows MD5 or
/// SHA-1; the sentence is the same), in groups of eight.
fn ndes_page(thumbprint: &str, password: &str, minutes: u32) -> Vec<u8> {
    let grouped = thumbprint.as_bytes().chunks(8).map(|c| String::from_utf8_lossy(c)).collect::<Vec<_>>().join(" ");
    let html = format!(
        "<HTML><Head><Meta HTTP-Equiv=\"Content-Type\" Content=\"text/html; charset=UTF-16\">\
         <Title>Network Device Enrollment Service</Title></Head>\r\n\
         <Body BgColor=#FFFFFF><Font ID=locPageFont Face=\"Arial\">\r\n\
         <Table Border=0 CellSpacing=0 CellPadding=4 Width=100% BgColor=#008080><TR><TD><Font ID=locPageTitleFont \
         Face=\"Arial\" Size=-1 Color=#FFFFFF><LocID ID=locMSCertSrv>Network Device Enrollment Service</LocID>\
         </Font></TD></TR></Table>\r\n\
         <P ID=locPageDesc> Network Device Enrollment Service allows you to obtain certificates for routers or other \
         network devices using the Simple Certificate Enrollment Protocol (SCEP). </P>\r\n\
         <P> To complete certificate enrollment for your network device you will need the following information: \
         <P> The thumbprint (hash value) for the CA certificate is: <B> {grouped} </B> \r\n\
         <P> The enrollment challenge password is: <B> {password} </B> \r\n\
         <P> This password can be used only once and will expire within {minutes} minutes. \r\n\
         <P> Each enrollment requires a new challenge password. You can refresh this web page to obtain a new \
         challenge password. </P>\r\n\
         </Font></Body></HTML>\r\n"
    );
    let mut out = vec![0xff, 0xfe];
    out.extend(html.encode_utf16().flat_map(u16::to_le_bytes));
    out
}

fn text_answer(status: u16, text: &str, mut headers: BTreeMap<String, String>) -> PageStep {
    headers.insert("content-type".to_owned(), "text/plain; charset=utf-8".to_owned());
    headers.insert("cache-control".to_owned(), "no-store".to_owned());
    PageStep::Answer { status, headers, body: format!("{text}\n").into_bytes(), audit: None }
}

fn unauthorized(profile: &str, text: &str) -> PageStep {
    let challenge = format!("Basic realm=\"scepkit one-time challenge: {profile}\", charset=\"UTF-8\"");
    text_answer(401, text, BTreeMap::from([("www-authenticate".to_owned(), challenge)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_picks_the_format() {
        assert_eq!(negotiate(None), Format::Html);
        assert_eq!(negotiate(Some("*/*")), Format::Html);
        assert_eq!(negotiate(Some("application/json")), Format::Json);
        assert_eq!(negotiate(Some("text/plain")), Format::Text);
        assert_eq!(negotiate(Some("text/html;q=0.5, application/json")), Format::Json);
        assert_eq!(negotiate(Some("application/json;q=0.2, */*;q=0.8")), Format::Html);
        assert_eq!(negotiate(Some("text/*")), Format::Html);
        assert_eq!(negotiate(Some("image/png")), Format::Html);
    }

    #[test]
    fn basic_credentials_are_read_as_rfc_7617_spells_them() {
        assert_eq!(basic_credentials("Basic bWRtOnM6M2NyZXQ="), Some(("mdm".into(), "s:3cret".into())));
        assert_eq!(basic_credentials("basic bWRtOnM6M2NyZXQ"), Some(("mdm".into(), "s:3cret".into())));
        assert_eq!(basic_credentials("Bearer bWRtOnM6M2NyZXQ="), None);
        assert_eq!(basic_credentials("Basic !!!"), None);
        assert_eq!(basic_credentials("Basic bm9jb2xvbg=="), None);
    }

    #[test]
    fn a_password_mac_is_bound_to_its_profile_and_shape() {
        let a = password_mac(b"k", "p1", "0123456789ABCDEF").unwrap();
        assert_eq!(password_mac(b"k", "p1", " 0123456789abcdef "), Some(a.clone()));
        assert_ne!(password_mac(b"k", "p2", "0123456789ABCDEF"), Some(a));
        assert_eq!(password_mac(b"k", "p1", "ABCDE-FGHIJ-KLMNO-PQRST"), None);
        assert_eq!(password_mac(b"k", "p1", "0123456789ABCDEG"), None);
    }

    #[test]
    fn page_urls_are_one_path_segment_per_profile() {
        assert_eq!(page_url("https://ca.example/", "Fleet A"), "https://ca.example/scep/Fleet%20A/mscep_admin/");
    }
}
