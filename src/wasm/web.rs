//! Where the wasm meets the web platform: the client side, driven from inside the wasm through `web-sys`.
//!
//! The core's [`Enrollment`] says what it needs; this shell does it: HTTP with the global `fetch` (or the
//! caller's `fetch` option), every RSA operation with WebCrypto's `SubtleCrypto` (keys, signatures, their checks,
//! RSA-OAEP both ways), waits with `setTimeout`, and the caller's `AbortSignal`. What WebCrypto lacks (RSAES-PKCS1-v1_5,
//! which foreign SCEP servers use, and keys it declines) goes to [`fallback`]: the `rsa` crate in builds that have it,
//! and in the browser build, which has none, scepkit's full build, loaded the first time it is needed.
//! Everything is looked up on the global scope, never `window`, so browsers, workerd and Node >= 20 run the same code.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;

use der::{Decode, Encode, EncodePem};
use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use rand_core::OsRng;
use serde::Serialize;
use spki::SubjectPublicKeyInfoOwned;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, CryptoKey, CryptoKeyPair, RequestInit, Response, SubtleCrypto};
use zeroize::Zeroizing;

use super::{from_js, js_error, to_js, to_js_bytes, JsResult};
use crate::algorithms::{AlgorithmPolicy, Cipher, DigestAlg, KeyTransport};
use crate::caps::CaCaps;
use crate::client::enrollment::{
    Answer, Enrolled, EnrollmentOptions, KeyRef, NewKey, OpId, Operation, Progress, Purpose, Step,
};
use crate::client::http::{HttpRequest, HttpResponse};
use crate::client::{Enrollment, Failure};
use crate::csr::San;
use crate::error::{FieldIssue, ScepError};
use crate::keys::{self, KeyOperation, PublicAnswer, PublicOperation};
use crate::signed::IdentifierKind;
use crate::wire::Certificate;

/// Enrolls: GetCACaps and GetCACert (checked against `fingerprint`) while the key is made (unless
/// `keyPkcs8`), the CSR with `challenge`, PKCSReq, PENDING polling, and the verified certificate.
/// What `enroll` and `renew` take: the data options, and what only JS can hand over.
#[wasm_bindgen(typescript_custom_section)]
const ENROLL_OPTIONS: &str = "export type EnrollOptions = OptionsJs & {\n  /** The fetch to use (default: the global one). */\n  fetch?: typeof fetch;\n  /** Called with each step: caps, cacert, key, request, send, pending, poll, done. */\n  onProgress?: (step: string, detail?: unknown) => void;\n  /** Stops polling a PENDING request. */\n  signal?: AbortSignal;\n  /** A key to use (PKCS#8 DER) instead of a new one. */\n  keyPkcs8?: Uint8Array;\n};\nexport type RenewOptions = EnrollOptions & { certificate: Uint8Array; privateKey: Uint8Array };";

#[wasm_bindgen(unchecked_return_type = "EnrollmentJs")]
pub async fn enroll(#[wasm_bindgen(unchecked_param_type = "EnrollOptions")] options: JsValue) -> JsResult<JsValue> {
    let o: OptionsJs = from_js(options.clone())?;
    let shell = Shell::new(&options)?;
    let given = bytes_option(&options, "keyPkcs8")?.map(|b| HeldKey::import(&b)).transpose()?;
    let given_key = given.as_ref().map(|key| NewKey::Given { spki: key.spki.clone() });
    let machine = o.enrollment(given_key)?;
    shell.drive(machine, Keys { new: given, current: None }, o.generator()?).await
}

/// Checks `enroll`'s options as `enroll` would before it starts: throws the ScepError that lists every option
/// that cannot work (its `details`: `{ path, rule }` each), or returns nothing. Makes no key and sends nothing.
#[wasm_bindgen(js_name = checkEnrollOptions)]
pub fn check_enroll_options(#[wasm_bindgen(unchecked_param_type = "EnrollOptions")] options: JsValue) -> JsResult<()> {
    let o: OptionsJs = from_js(options)?;
    o.generator()?;
    o.enrollment(None).map(drop)
}

/// Renews with the current certificate and key: a RenewalReq (PKCSReq where the server lacks "Renewal")
/// signed by the current certificate, for a fresh key unless `reuseKey`.
#[wasm_bindgen(unchecked_return_type = "EnrollmentJs")]
pub async fn renew(#[wasm_bindgen(unchecked_param_type = "RenewOptions")] options: JsValue) -> JsResult<JsValue> {
    let o: OptionsJs = from_js(options.clone())?;
    let certificate = bytes_option(&options, "certificate")?;
    let private_key = bytes_option(&options, "privateKey")?;
    let (Some(url), Some(certificate), Some(private_key)) = (o.url.clone(), certificate, private_key) else {
        return Err(js_sys::TypeError::new("renew: url, certificate and privateKey are required").into());
    };
    let shell = Shell::new(&options)?;
    let der = crate::inspect::to_der(&certificate).map_err(js_error)?;
    let certificate = Certificate::from_der(&der)
        .map_err(|e| js_error(ScepError::invalid_input(format!("the current certificate: {e}"))))?;
    let current = HeldKey::import(&private_key)?;
    let new_key = if o.reuse_key == Some(true) { NewKey::Current } else { NewKey::Generate { bits: o.key_bits() } };
    let machine =
        o.machine(url, Purpose::Renew { certificate: Box::new(certificate), subject: o.subject.clone() }, new_key)?;
    shell.drive(machine, Keys { new: None, current: Some(current) }, o.generator()?).await
}

/// GetCACaps: `{ text, capabilities, unknown }`.
#[wasm_bindgen(js_name = getCaCaps)]
pub async fn get_ca_caps(url: String, options: JsValue) -> JsResult<JsValue> {
    let request = HttpRequest::get_ca_caps(&url).map_err(js_failure)?;
    let response = Shell::new(&options)?.exchange(&request).await?;
    let text = String::from_utf8_lossy(&response.body).into_owned();
    #[derive(Serialize)]
    struct CapsJs<'a> {
        text: &'a str,
        #[serde(flatten)]
        caps: CaCaps,
    }
    to_js(&CapsJs { caps: CaCaps::parse(&text), text: &text })
}

/// GetCACert: `{ body, contentType, ca, recipient, all, caFingerprint, caSubject }` (DER as Uint8Array).
#[wasm_bindgen(js_name = getCaCert)]
pub async fn get_ca_cert(url: String, options: JsValue) -> JsResult<JsValue> {
    let request = HttpRequest::get_ca_cert(&url).map_err(js_failure)?;
    let response = Shell::new(&options)?.exchange(&request).await?;
    let out = super::client::parse_ca_cert(&response.body)?;
    Reflect::set(&out, &"body".into(), &Uint8Array::from(response.body.as_slice()))?;
    Reflect::set(&out, &"contentType".into(), &response.media_type().into())?;
    Ok(out)
}

/// An RSA key as PKCS#8 DER: WebCrypto's where it can (native speed), else the wasm generator.
/// `options` = `{ legacy?, prefer?: 'auto' | 'webcrypto' | 'wasm' }`.
#[wasm_bindgen(js_name = generateKey)]
pub async fn generate_key(bits: Option<u32>, options: JsValue) -> JsResult<Uint8Array> {
    #[derive(serde::Deserialize, Default)]
    struct GenerateJs {
        legacy: Option<bool>,
        prefer: Option<String>,
    }
    let o: GenerateJs =
        if options.is_undefined() || options.is_null() { Default::default() } else { from_js(options)? };
    let generator = Generator::from_name(o.prefer.as_deref())?;
    let key = start_generating(
        subtle(),
        bits.unwrap_or(2048) as usize,
        AlgorithmPolicy::from_legacy_switch(o.legacy.unwrap_or(false)),
        generator,
    )
    .await?;
    Ok(Uint8Array::from(key.pkcs8.as_slice()))
}

/// The options of `enroll` and `renew` that are plain data (functions, the signal and keys are read apart).
#[derive(serde::Deserialize, Default)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(default, rename_all = "camelCase")]
struct OptionsJs {
    url: Option<String>,
    subject: Option<String>,
    challenge: Option<String>,
    sans: Option<Vec<San>>,
    key_bits: Option<u32>,
    legacy: Option<bool>,
    fingerprint: Option<String>,
    digest: Option<String>,
    cipher: Option<String>,
    key_transport: Option<KeyTransport>,
    identifier: Option<IdentifierKind>,
    key_generator: Option<String>,
    transaction_id: Option<String>,
    poll_interval: Option<f64>,
    max_polls: Option<f64>,
    reuse_key: Option<bool>,
    /// A SCEP profile object (the admin API's schema, secrets in clear) to enroll from, with `vars`.
    #[cfg_attr(feature = "wasm", tsify(type = "Record<string, unknown>"))]
    profile: Option<serde_json::Value>,
    /// The template variables for `profile`: `USERNAME` (or `SEAT_ID`), the seat.
    vars: Option<std::collections::BTreeMap<String, String>>,
}

impl OptionsJs {
    /// The enrollment these options describe: from a profile, or from `url` and `subject`.
    fn enrollment(&self, given_key: Option<NewKey>) -> JsResult<Enrollment> {
        match &self.profile {
            Some(profile) => self.machine_for_profile(profile, given_key),
            None => {
                let new_key = given_key.unwrap_or(NewKey::Generate { bits: self.key_bits() });
                let purpose = Purpose::Enroll { subject: self.subject.clone().unwrap_or_default() };
                self.machine(self.url.clone().unwrap_or_default(), purpose, new_key)
            }
        }
    }

    fn key_bits(&self) -> usize {
        self.key_bits.unwrap_or(2048) as usize
    }

    fn generator(&self) -> JsResult<Generator> {
        Generator::from_name(self.key_generator.as_deref())
    }

    /// Every option is checked before anything starts, and every problem reported at once.
    fn machine(&self, url: String, purpose: Purpose, new_key: NewKey) -> JsResult<Enrollment> {
        fn named<T>(issues: &mut Vec<FieldIssue>, path: &str, parsed: crate::Result<Option<T>>) -> Option<T> {
            parsed.unwrap_or_else(|e| {
                issues.push(FieldIssue { path: path.into(), rule: e.message });
                None
            })
        }
        let mut issues = Vec::new();
        let cipher = named(&mut issues, "cipher", self.cipher.as_deref().map(Cipher::from_name).transpose());
        let digest = named(&mut issues, "digest", self.digest.as_deref().map(DigestAlg::from_name).transpose());
        if url.is_empty() {
            issues.push(FieldIssue { path: "url".into(), rule: "is required".into() });
        }
        if matches!(&purpose, Purpose::Enroll { subject } if subject.is_empty()) {
            issues.push(FieldIssue { path: "subject".into(), rule: "is required (e.g. \"CN=laptop-42\")".into() });
        }
        let defaults = EnrollmentOptions::new(url, purpose, (js_sys::Date::now() / 1000.0) as u64);
        let options = EnrollmentOptions {
            new_key,
            sans: self.sans.clone().unwrap_or_default(),
            challenge: self.challenge.clone(),
            policy: AlgorithmPolicy::from_legacy_switch(self.legacy.unwrap_or(false)),
            fingerprint: self.fingerprint.clone(),
            cipher,
            digest,
            ..defaults
        };
        // Those already reported are not reported twice.
        let more = options.issues().into_iter().filter(|i| !issues.iter().any(|j| j.path == i.path));
        issues.extend(more.collect::<Vec<_>>());
        if !issues.is_empty() {
            return Err(js_error(crate::client::enrollment::invalid_options(issues)));
        }
        self.started(options)
    }

    /// The options that say how to talk (not what to ask for), then the machine.
    fn started(&self, options: EnrollmentOptions) -> JsResult<Enrollment> {
        let options = EnrollmentOptions {
            key_transport: self.key_transport.unwrap_or(options.key_transport),
            identifier: self.identifier.unwrap_or(options.identifier),
            transaction_id: self.transaction_id.clone(),
            poll_interval_ms: self.poll_interval.map_or(options.poll_interval_ms, |ms| ms.max(0.0) as u32),
            max_polls: self.max_polls.map_or(options.max_polls, |n| n.max(0.0) as u32),
            ..options
        };
        Enrollment::new(options, &mut OsRng).map_err(js_error)
    }

    /// The enrollment a profile object describes ([`crate::client::from_profile`]); `url` and `challenge` may
    /// override its own, everything else it names comes from it alone.
    #[cfg(feature = "server")]
    fn machine_for_profile(&self, profile: &serde_json::Value, given: Option<NewKey>) -> JsResult<Enrollment> {
        let named = [
            ("subject", self.subject.is_some()),
            ("sans", self.sans.is_some()),
            ("keyBits", self.key_bits.is_some()),
            ("digest", self.digest.is_some()),
            ("fingerprint", self.fingerprint.is_some()),
            ("legacy", self.legacy.is_some()),
        ];
        let conflicting: Vec<&str> = named.iter().filter(|(_, given)| *given).map(|(name, _)| *name).collect();
        if !conflicting.is_empty() {
            let message = format!("enroll: {} come(s) from the profile; leave it out", conflicting.join(", "));
            return Err(js_sys::TypeError::new(&message).into());
        }
        let now = (js_sys::Date::now() / 1000.0) as u64;
        let vars = self.vars.clone().unwrap_or_default();
        let mut options = crate::client::from_profile::enrollment_options(profile, &vars, self.url.as_deref(), now)
            .map_err(js_error)?;
        if let Some(challenge) = &self.challenge {
            options.challenge = Some(challenge.clone());
        }
        if let Some(given) = given {
            options.new_key = given;
        }
        self.started(options)
    }

    /// The browser build has no profile reader (it is the CA side's schema).
    #[cfg(not(feature = "server"))]
    fn machine_for_profile(&self, _: &serde_json::Value, _: Option<NewKey>) -> JsResult<Enrollment> {
        Err(js_error(ScepError::invalid_input(
            "enroll({ profile }) needs scepkit's full build (Node, workerd); in a browser pass url, subject and challenge",
        )))
    }
}

/// Where a key is generated: `auto` prefers WebCrypto (RSA >= 2048) and falls back to wasm.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Generator {
    Auto,
    WebCrypto,
    Wasm,
}

impl Generator {
    fn from_name(name: Option<&str>) -> JsResult<Self> {
        match name {
            None | Some("auto") => Ok(Self::Auto),
            Some("webcrypto") => Ok(Self::WebCrypto),
            Some("wasm") => Ok(Self::Wasm),
            Some(other) => Err(js_error(ScepError::invalid_input(format!(
                "keyGenerator {other:?}: use 'auto', 'webcrypto' or 'wasm'"
            )))),
        }
    }
}

/// The JS side of one call: how to fetch, what to report to, what can abort it, and which crypto is there.
struct Shell {
    fetch: Function,
    /// `this` for `fetch`: the global scope for the global `fetch`, undefined for the caller's.
    fetch_this: JsValue,
    signal: Option<AbortSignal>,
    on_progress: Option<Function>,
    subtle: Option<SubtleCrypto>,
    /// Private-key operations done by WebCrypto and by the wasm key.
    by_webcrypto: Cell<u32>,
    by_wasm: Cell<u32>,
}

/// The keys the machine refers to, held here for it.
struct Keys {
    new: Option<HeldKey>,
    current: Option<HeldKey>,
}

type Pending = Pin<Box<dyn Future<Output = JsResult<Answer>>>>;
type Generating = Pin<Box<dyn Future<Output = JsResult<HeldKey>>>>;

/// An operation under way: JS promises start when called, so HTTP and key generation run while the machine
/// goes on; a key operation is done when the machine waits for it (it always does so at once).
enum Started {
    Running(Pending),
    Generating(Generating),
    Key(KeyRef, KeyOperation),
    Public(PublicOperation),
}

impl Shell {
    fn new(options: &JsValue) -> JsResult<Self> {
        let field = |name: &str| -> JsResult<Option<JsValue>> {
            if options.is_undefined() || options.is_null() {
                return Ok(None);
            }
            let v = Reflect::get(options, &name.into())?;
            Ok((!v.is_undefined() && !v.is_null()).then_some(v))
        };
        let global: JsValue = js_sys::global().into();
        let (fetch, fetch_this) = match field("fetch")? {
            Some(f) => (f, JsValue::UNDEFINED),
            None => (Reflect::get(&global, &"fetch".into())?, global),
        };
        let fetch = fetch
            .dyn_into::<Function>()
            .map_err(|_| js_sys::TypeError::new("fetch is not a function (pass the fetch option)"))?;
        let on_progress = field("onProgress")?.map(|f| f.unchecked_into::<Function>());
        let signal = field("signal")?.map(|s| s.unchecked_into::<AbortSignal>());
        Ok(Self {
            fetch,
            fetch_this,
            signal,
            on_progress,
            subtle: subtle(),
            by_webcrypto: Cell::new(0),
            by_wasm: Cell::new(0),
        })
    }

    /// Runs the machine to the end.
    async fn drive(&self, mut machine: Enrollment, mut keys: Keys, generator: Generator) -> JsResult<JsValue> {
        let mut started: Vec<(OpId, Started)> = Vec::new();
        loop {
            match machine.next_step().map_err(js_failure)? {
                Step::Progress(progress) => self.progress(&progress)?,
                Step::Start(id, operation) => {
                    let under_way = match operation {
                        Operation::Http(request) => Started::Running(self.fetch(&request)),
                        Operation::GenerateKey { bits, policy } => {
                            Started::Generating(start_generating(self.subtle.clone(), bits, policy, generator))
                        }
                        Operation::Key { key, operation } => Started::Key(key, operation),
                        Operation::Public(operation) => Started::Public(operation),
                        Operation::Sleep { millis } => Started::Running(self.sleep(millis)),
                    };
                    started.push((id, under_way));
                }
                Step::Await(id) => {
                    let at = started.iter().position(|(s, _)| *s == id).ok_or_else(|| {
                        js_error(ScepError::invalid_input(format!("operation {id} was never started")))
                    })?;
                    let answer = match started.remove(at).1 {
                        Started::Running(pending) => pending.await?,
                        Started::Generating(generating) => {
                            let key = generating.await?;
                            let spki = key.spki.clone();
                            keys.new = Some(key);
                            Answer::PublicKey(spki)
                        }
                        Started::Key(which, operation) => {
                            let key = match which {
                                KeyRef::New => keys.new.as_ref(),
                                KeyRef::Current => keys.current.as_ref(),
                            }
                            .ok_or_else(|| js_error(ScepError::invalid_input(format!("no {which:?} key"))))?;
                            self.perform(key, &operation).await?
                        }
                        Started::Public(operation) => perform_public(self.subtle.as_ref(), &operation).await?.into(),
                    };
                    machine.answer(id, answer);
                }
                Step::Done(enrolled) => {
                    let key = keys.new.or(keys.current).ok_or_else(|| js_error(ScepError::invalid_input("no key")))?;
                    return self.result(enrolled, &key);
                }
            }
        }
    }

    fn progress(&self, progress: &Progress) -> JsResult<()> {
        let Some(on_progress) = &self.on_progress else { return Ok(()) };
        let detail = match &progress.transaction_id {
            None => JsValue::UNDEFINED,
            Some(tid) => {
                let detail = Object::new();
                Reflect::set(&detail, &"transactionId".into(), &tid.into())?;
                if let Some(polls) = progress.polls {
                    Reflect::set(&detail, &"polls".into(), &polls.into())?;
                }
                detail.into()
            }
        };
        on_progress.call2(&JsValue::UNDEFINED, &progress.step.name().into(), &detail)?;
        Ok(())
    }

    /// Sends `request` with fetch and reads the answer; an abort is passed on as it is.
    fn fetch(&self, request: &HttpRequest) -> Pending {
        let init = RequestInit::new();
        init.set_method(request.method);
        if request.content_type.is_some() || !request.headers.is_empty() {
            let headers = Object::new();
            let content_type = request.content_type.map(|t| ("content-type", t.to_owned()));
            for (name, value) in content_type.iter().chain(&request.headers) {
                let _ = Reflect::set(&headers, &(*name).into(), &value.as_str().into());
            }
            init.set_headers(&headers);
        }
        if let Some(body) = &request.body {
            init.set_body(&Uint8Array::from(body.as_slice()));
        }
        init.set_signal(self.signal.as_ref());
        // Called now, so requests travel while the machine goes on; a JsFuture now, so a promise left behind
        // (another request failed first) is never an unhandled rejection.
        let response = self
            .fetch
            .call2(&self.fetch_this, &request.url.as_str().into(), &init)
            .map(|p| JsFuture::from(Promise::resolve(&p)));
        let signal = self.signal.clone();
        Box::pin(async move {
            let response = match response {
                Ok(future) => future.await,
                Err(e) => Err(e),
            };
            let response: Response = match response {
                Ok(r) => r.unchecked_into(),
                Err(e) if is_abort(&e, signal.as_ref()) => return Err(e),
                Err(e) => return Ok(Answer::Unreachable(describe(&e))),
            };
            let content_type = response.headers().get("content-type").ok().flatten();
            let status = response.status();
            let body = match response.array_buffer() {
                Ok(p) => JsFuture::from(p).await,
                Err(e) => Err(e),
            };
            match body {
                Ok(buffer) => {
                    Ok(Answer::Http(HttpResponse { status, content_type, body: Uint8Array::new(&buffer).to_vec() }))
                }
                Err(e) if is_abort(&e, signal.as_ref()) => Err(e),
                Err(e) => Ok(Answer::Unreachable(describe(&e))),
            }
        })
    }

    /// One request on its own (GetCACaps, GetCACert): the answer if it is SCEP, else the package's HTTP error.
    async fn exchange(&self, request: &HttpRequest) -> JsResult<HttpResponse> {
        match self.fetch(request).await? {
            Answer::Http(response) => {
                request.read(response.clone()).map_err(js_failure)?;
                Ok(response)
            }
            Answer::Unreachable(reason) => Err(js_failure(request.unreachable(&reason))),
            _ => Err(js_error(ScepError::invalid_input("fetch gave no answer"))),
        }
    }

    /// Waits `millis` with the global `setTimeout`; the signal ends the wait with its reason.
    fn sleep(&self, millis: u32) -> Pending {
        let signal = self.signal.clone();
        let promise = Promise::new(&mut |resolve, reject| {
            if let Some(signal) = signal.as_ref().filter(|s| s.aborted()) {
                let _ = reject.call1(&JsValue::UNDEFINED, &abort_reason(signal));
                return;
            }
            let global: JsValue = js_sys::global().into();
            let timer = Reflect::get(&global, &"setTimeout".into())
                .and_then(|f| f.unchecked_into::<Function>().call2(&global, &resolve, &millis.into()));
            let timer = match timer {
                Ok(t) => t,
                Err(e) => {
                    let _ = reject.call1(&JsValue::UNDEFINED, &e);
                    return;
                }
            };
            if let Some(signal) = &signal {
                let aborted = signal.clone();
                let on_abort = Closure::once_into_js(move || {
                    let global: JsValue = js_sys::global().into();
                    if let Ok(clear) = Reflect::get(&global, &"clearTimeout".into()) {
                        let _ = clear.unchecked_into::<Function>().call1(&global, &timer);
                    }
                    let _ = reject.call1(&JsValue::UNDEFINED, &abort_reason(&aborted));
                });
                let _ = signal.add_event_listener_with_callback("abort", on_abort.unchecked_ref());
            }
        });
        let waited = JsFuture::from(promise);
        Box::pin(async move {
            waited.await?;
            Ok(Answer::Slept)
        })
    }

    /// A private-key operation: WebCrypto where it does it, else the [`fallback`].
    async fn perform(&self, key: &HeldKey, operation: &KeyOperation) -> JsResult<Answer> {
        let (out, by_webcrypto) = key.perform(self.subtle.as_ref(), operation).await?;
        let counter = if by_webcrypto { &self.by_webcrypto } else { &self.by_wasm };
        counter.set(counter.get() + 1);
        Ok(match operation {
            KeyOperation::Sign { .. } => Answer::Signature(out),
            KeyOperation::Decrypt { .. } => Answer::Decrypted(Zeroizing::new(out)),
        })
    }

    fn result(&self, enrolled: Enrolled, key: &HeldKey) -> JsResult<JsValue> {
        let der = |c: &Certificate| c.to_der().map(serde_bytes::ByteBuf::from).map_err(|e| js_error(e.into()));
        let pem = |c: &Certificate| c.to_pem(der::pem::LineEnding::LF).map_err(|e| js_error(e.into()));
        let private_key_pem = der::pem::encode_string("PRIVATE KEY", der::pem::LineEnding::LF, &key.pkcs8)
            .map_err(|e| js_error(ScepError::invalid_input(e)))?;
        to_js_bytes(&EnrollmentJs {
            certificate: der(&enrolled.certificate)?,
            chain: enrolled.chain.iter().map(der).collect::<JsResult<_>>()?,
            private_key_pkcs8: serde_bytes::ByteBuf::from(key.pkcs8.to_vec()),
            certificate_pem: pem(&enrolled.certificate)?,
            chain_pem: enrolled.chain.iter().map(pem).collect::<JsResult<String>>()?,
            private_key_pem,
            transaction_id: enrolled.transaction_id,
            ca_fingerprint: enrolled.ca_fingerprint,
            private_key_operations: OperationsJs { webcrypto: self.by_webcrypto.get(), wasm: self.by_wasm.get() },
        })
    }
}

#[derive(Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase")]
struct EnrollmentJs {
    certificate: serde_bytes::ByteBuf,
    chain: Vec<serde_bytes::ByteBuf>,
    private_key_pkcs8: serde_bytes::ByteBuf,
    certificate_pem: String,
    chain_pem: String,
    private_key_pem: String,
    transaction_id: String,
    ca_fingerprint: String,
    private_key_operations: OperationsJs,
}

/// Who performed the private-key operations (signatures, the reply's key decryption).
#[derive(Serialize)]
#[cfg_attr(feature = "wasm", derive(tsify_next::Tsify))]
struct OperationsJs {
    webcrypto: u32,
    wasm: u32,
}

/// A private key held for the machine: PKCS#8 DER, imported into WebCrypto per algorithm when first used;
/// what WebCrypto cannot do goes to the [`fallback`].
struct HeldKey {
    pkcs8: Zeroizing<Vec<u8>>,
    spki: Vec<u8>,
    imported: RefCell<Vec<(&'static str, &'static str, CryptoKey)>>,
}

impl HeldKey {
    /// A key the caller gave: PKCS#8 or PKCS#1, DER or PEM.
    fn import(bytes: &[u8]) -> JsResult<Self> {
        let (pkcs8, spki) = keys::read_private_key(bytes).map_err(js_error)?;
        Ok(Self::from_pkcs8(pkcs8, spki.to_der().map_err(|e| js_error(e.into()))?))
    }

    fn from_pkcs8(pkcs8: Zeroizing<Vec<u8>>, spki: Vec<u8>) -> Self {
        Self { pkcs8, spki, imported: Default::default() }
    }

    /// The operation's result, and whether WebCrypto performed it (else the [`fallback`]).
    async fn perform(&self, subtle: Option<&SubtleCrypto>, operation: &KeyOperation) -> JsResult<(Vec<u8>, bool)> {
        let by_webcrypto = match subtle {
            Some(subtle) => self.webcrypto(subtle, operation).await,
            None => None,
        };
        Ok(match by_webcrypto {
            Some(Ok(out)) => (out, true),
            // What WebCrypto refused with a key it took (a reply its RSA-OAEP cannot open) is not tried again in
            // the wasm's slower, non-constant-time RSA: a server learns nothing from a second try.
            Some(Err(_)) if matches!(operation, KeyOperation::Decrypt { .. }) => {
                return Err(js_error(ScepError::decrypt_failed()))
            }
            Some(Err(e)) => return Err(e),
            None => (fallback::private(&self.pkcs8, operation).await?, false),
        })
    }

    /// The operation by WebCrypto, or None where it cannot (PKCS#1 v1.5 decryption) or will not take the key.
    async fn webcrypto(&self, subtle: &SubtleCrypto, operation: &KeyOperation) -> Option<JsResult<Vec<u8>>> {
        let (algorithm, hash, usage, data) = match operation {
            KeyOperation::Sign { digest, data } => ("RSASSA-PKCS1-v1_5", webcrypto_hash(*digest), "sign", data),
            KeyOperation::Decrypt { transport: KeyTransport::RsaOaepSha1, ciphertext } => {
                ("RSA-OAEP", "SHA-1", "decrypt", ciphertext)
            }
            KeyOperation::Decrypt { transport: KeyTransport::RsaOaepSha256, ciphertext } => {
                ("RSA-OAEP", "SHA-256", "decrypt", ciphertext)
            }
            KeyOperation::Decrypt { transport: KeyTransport::RsaPkcs1v15, .. } => return None,
        };
        let key = self.crypto_key(subtle, algorithm, hash, usage).await?;
        let data = Uint8Array::from(data.as_slice());
        let promise = match operation {
            KeyOperation::Sign { .. } => subtle.sign_with_str_and_js_u8_array(algorithm, &key, &data),
            KeyOperation::Decrypt { .. } => subtle.decrypt_with_str_and_js_u8_array(algorithm, &key, &data),
        };
        let out = match promise {
            Ok(promise) => JsFuture::from(promise).await,
            Err(e) => Err(e),
        };
        Some(out.map(|out| Uint8Array::new(&out).to_vec()))
    }

    async fn crypto_key(
        &self,
        subtle: &SubtleCrypto,
        algorithm: &'static str,
        hash: &'static str,
        usage: &'static str,
    ) -> Option<CryptoKey> {
        let cached = self.imported.borrow().iter().find(|(a, h, _)| *a == algorithm && *h == hash).map(|k| k.2.clone());
        if cached.is_some() {
            return cached;
        }
        let key = import_key(subtle, "pkcs8", &self.pkcs8, algorithm, hash, usage).await?;
        self.imported.borrow_mut().push((algorithm, hash, key.clone()));
        Some(key)
    }
}

/// A key into WebCrypto (`format` "pkcs8" or "spki"), for one algorithm and use; None where it declines.
async fn import_key(
    subtle: &SubtleCrypto,
    format: &str,
    der: &[u8],
    algorithm: &str,
    hash: &str,
    usage: &str,
) -> Option<CryptoKey> {
    let params = Object::new();
    Reflect::set(&params, &"name".into(), &algorithm.into()).ok()?;
    Reflect::set(&params, &"hash".into(), &hash.into()).ok()?;
    let usages = Array::of1(&usage.into());
    let promise = subtle.import_key_with_object(format, &Uint8Array::from(der), &params, false, &usages).ok()?;
    Some(JsFuture::from(promise).await.ok()?.unchecked_into())
}

/// A readable description of any SCEP artefact (see the full build's `inspect`), with every signature check and
/// the key's decryptions performed by WebCrypto (the browser build has no RSA of its own): the description is
/// made again once the operations it asked for are answered, at most a few times (one per level of nesting).
#[cfg(not(feature = "pure-rsa"))]
#[wasm_bindgen(unchecked_return_type = "Inspected")]
pub async fn inspect(
    #[wasm_bindgen(unchecked_param_type = "Uint8Array | string")] input: JsValue,
    key_pkcs8: Option<Vec<u8>>,
) -> JsResult<JsValue> {
    let bytes = super::inspected_bytes(input)?;
    let held = key_pkcs8.map(|k| HeldKey::import(&k)).transpose()?;
    let mut key = match &held {
        Some(held) => Some(keys::DeferredKey::new(
            SubjectPublicKeyInfoOwned::from_der(&held.spki).map_err(|e| js_error(e.into()))?,
        )),
        None => None,
    };
    let mut public = keys::Deferred::default();
    let subtle = subtle();
    for _ in 0..8 {
        let described = crate::inspect::inspect(&bytes, key.as_ref().map(|k| k as &dyn keys::PrivateKeyOps), &public);
        let asked = public.asked();
        let asked_of_key = key.as_ref().map(keys::DeferredKey::asked).unwrap_or_default();
        if asked.is_empty() && asked_of_key.is_empty() {
            return to_js(&described.map_err(js_error)?);
        }
        for operation in asked {
            let answer = perform_public(subtle.as_ref(), &operation).await?;
            public.answer(operation, answer);
        }
        if let (Some(held), Some(key)) = (&held, key.as_mut()) {
            for operation in asked_of_key {
                // A key that cannot decrypt this one answers nothing: inspect reports it as not opened.
                let out = held.perform(subtle.as_ref(), &operation).await.map(|(out, _)| out).unwrap_or_default();
                key.answer(operation, out);
            }
        }
    }
    Err(js_error(ScepError::malformed("inspect: nested too deeply")))
}

/// A public-key operation on a peer's key: WebCrypto where it does it, else the [`fallback`].
async fn perform_public(subtle: Option<&SubtleCrypto>, operation: &PublicOperation) -> JsResult<PublicAnswer> {
    let by_webcrypto = match subtle {
        Some(subtle) => public_by_webcrypto(subtle, operation).await,
        None => None,
    };
    match by_webcrypto {
        Some(answer) => Ok(answer),
        None => fallback::public(operation).await,
    }
}

/// RSASSA-PKCS1-v1_5 verification and RSA-OAEP encryption; None for RSAES-PKCS1-v1_5 (not in WebCrypto) or a key
/// WebCrypto declines.
async fn public_by_webcrypto(subtle: &SubtleCrypto, operation: &PublicOperation) -> Option<PublicAnswer> {
    match operation {
        PublicOperation::Verify { key, digest, data, signature } => {
            let algorithm = "RSASSA-PKCS1-v1_5";
            let key = import_key(subtle, "spki", key, algorithm, webcrypto_hash(*digest), "verify").await?;
            let promise = subtle
                .verify_with_str_and_js_u8_array_and_js_u8_array(
                    algorithm,
                    &key,
                    &Uint8Array::from(signature.as_slice()),
                    &Uint8Array::from(data.as_slice()),
                )
                .ok()?;
            Some(PublicAnswer::Verified(JsFuture::from(promise).await.ok()?.as_bool()?))
        }
        PublicOperation::Encrypt { key, transport, plaintext } => {
            let hash = match transport {
                KeyTransport::RsaOaepSha1 => "SHA-1",
                KeyTransport::RsaOaepSha256 => "SHA-256",
                KeyTransport::RsaPkcs1v15 => return None,
            };
            let key = import_key(subtle, "spki", key, "RSA-OAEP", hash, "encrypt").await?;
            let promise = subtle
                .encrypt_with_str_and_js_u8_array("RSA-OAEP", &key, &Uint8Array::from(plaintext.as_slice()))
                .ok()?;
            Some(PublicAnswer::Encrypted(Uint8Array::new(&JsFuture::from(promise).await.ok()?).to_vec()))
        }
    }
}

/// The RSA operations WebCrypto does not do: the `rsa` crate of this build.
#[cfg(feature = "pure-rsa")]
mod fallback {
    use super::*;

    pub async fn public(operation: &PublicOperation) -> JsResult<PublicAnswer> {
        keys::perform_public(&keys::RustCrypto, operation, &mut OsRng).map_err(js_error)
    }

    pub async fn private(pkcs8: &[u8], operation: &KeyOperation) -> JsResult<Vec<u8>> {
        keys::perform(&keys::RsaKey::import(pkcs8).map_err(js_error)?, operation).map_err(js_error)
    }

    /// A new key: PKCS#8 DER.
    pub async fn generate(bits: usize, policy: AlgorithmPolicy) -> JsResult<Zeroizing<Vec<u8>>> {
        keys::RsaKey::generate(bits, policy, &mut OsRng).and_then(|k| k.to_pkcs8_der()).map_err(js_error)
    }
}

/// The RSA operations WebCrypto does not do, in the browser build (which has no RSA of its own): scepkit's full
/// build, loaded the first time one is needed by the loader the package's browser entry registers
/// (`useLegacyCrypto`). Its `rsaPublicOperation`, `rsaKeyOperation` and `generateKeyWasm` do them.
#[cfg(not(feature = "pure-rsa"))]
mod fallback {
    use super::*;

    thread_local! {
        static LOADER: RefCell<Option<Function>> = const { RefCell::new(None) };
    }

    /// Registers `load`, a function that returns (a promise of) scepkit's full build, initialised.
    #[wasm_bindgen(js_name = useLegacyCrypto)]
    pub fn use_legacy_crypto(load: Function) {
        LOADER.with(|l| *l.borrow_mut() = Some(load));
    }

    /// Calls `name` of the full build with `args`.
    async fn call(name: &str, args: &Array) -> JsResult<JsValue> {
        let Some(load) = LOADER.with(|l| l.borrow().clone()) else {
            return Err(js_error(ScepError::unsupported_algorithm(
                "this needs RSA that WebCrypto does not do (RSAES-PKCS1-v1_5, which most SCEP servers use for the \
                 content key); this browser build loads scepkit's full build for it, but none was registered (use the \
                 package's entry, or pass keyTransport: 'rsa-oaep-sha256' to a server that takes RSA-OAEP)",
            )));
        };
        let module = JsFuture::from(Promise::resolve(&load.call0(&JsValue::UNDEFINED)?)).await?;
        let function: Function = Reflect::get(&module, &name.into())?
            .dyn_into()
            .map_err(|_| js_sys::TypeError::new(&format!("scepkit's full build has no {name}")))?;
        function.apply(&JsValue::UNDEFINED, args)
    }

    pub async fn public(operation: &PublicOperation) -> JsResult<PublicAnswer> {
        let out = call("rsaPublicOperation", &Array::of1(&to_js_bytes(operation)?)).await?;
        Ok(match out.as_bool() {
            Some(good) => PublicAnswer::Verified(good),
            None => PublicAnswer::Encrypted(out.dyn_into::<Uint8Array>()?.to_vec()),
        })
    }

    pub async fn private(pkcs8: &[u8], operation: &KeyOperation) -> JsResult<Vec<u8>> {
        let args = Array::of2(&Uint8Array::from(pkcs8), &to_js_bytes(operation)?);
        Ok(call("rsaKeyOperation", &args).await?.dyn_into::<Uint8Array>()?.to_vec())
    }

    pub async fn generate(bits: usize, policy: AlgorithmPolicy) -> JsResult<Zeroizing<Vec<u8>>> {
        let legacy = policy == AlgorithmPolicy::Legacy;
        let args = Array::of2(&(bits as u32).into(), &legacy.into());
        Ok(Zeroizing::new(call("generateKeyWasm", &args).await?.dyn_into::<Uint8Array>()?.to_vec()))
    }
}

/// Starts making a key (see [`Generator`]); WebCrypto's promise is under way when this returns.
fn start_generating(
    subtle: Option<SubtleCrypto>,
    bits: usize,
    policy: AlgorithmPolicy,
    generator: Generator,
) -> Generating {
    let webcrypto = match subtle {
        Some(subtle) if generator != Generator::Wasm && bits >= 2048 => {
            let params = Object::new();
            let _ = Reflect::set(&params, &"name".into(), &"RSASSA-PKCS1-v1_5".into());
            let _ = Reflect::set(&params, &"modulusLength".into(), &(bits as u32).into());
            let _ = Reflect::set(&params, &"publicExponent".into(), &Uint8Array::from(&[1u8, 0, 1][..]));
            let _ = Reflect::set(&params, &"hash".into(), &"SHA-256".into());
            let usages = Array::of2(&"sign".into(), &"verify".into());
            let pair = subtle.generate_key_with_object(&params, true, &usages).map(JsFuture::from);
            Some((subtle, pair))
        }
        _ => None,
    };
    let wasm = move || async move { HeldKey::import(&fallback::generate(bits, policy).await?) };
    let Some((subtle, pair)) = webcrypto else {
        return Box::pin(wasm());
    };
    Box::pin(async move {
        let exported = async {
            let pair: CryptoKeyPair = pair?.await?.unchecked_into();
            let pkcs8 = JsFuture::from(subtle.export_key("pkcs8", &pair.get_private_key())?).await?;
            let spki = JsFuture::from(subtle.export_key("spki", &pair.get_public_key())?).await?;
            Ok::<_, JsValue>((Uint8Array::new(&pkcs8).to_vec(), Uint8Array::new(&spki).to_vec()))
        };
        match exported.await {
            Ok((pkcs8, spki)) => {
                SubjectPublicKeyInfoOwned::from_der(&spki)
                    .map_err(|e| js_error(ScepError::invalid_input(format!("WebCrypto's public key: {e}"))))?;
                Ok(HeldKey::from_pkcs8(Zeroizing::new(pkcs8), spki))
            }
            Err(e) if generator == Generator::WebCrypto => Err(e),
            Err(_) => wasm().await,
        }
    })
}

/// The global scope's `crypto.subtle`, where there is one.
fn subtle() -> Option<SubtleCrypto> {
    let crypto = Reflect::get(&js_sys::global(), &"crypto".into()).ok().filter(|c| c.is_object())?;
    let subtle = Reflect::get(&crypto, &"subtle".into()).ok().filter(|s| s.is_object())?;
    Some(subtle.unchecked_into())
}

fn webcrypto_hash(digest: DigestAlg) -> &'static str {
    match digest {
        DigestAlg::Sha1 => "SHA-1",
        DigestAlg::Sha256 => "SHA-256",
        DigestAlg::Sha384 => "SHA-384",
        DigestAlg::Sha512 => "SHA-512",
    }
}

/// Bytes from an option given as a Uint8Array (a Buffer is one) or a string (PEM).
fn bytes_option(options: &JsValue, name: &str) -> JsResult<Option<Vec<u8>>> {
    let value = Reflect::get(options, &name.into())?;
    if let Some(bytes) = value.dyn_ref::<Uint8Array>() {
        return Ok(Some(bytes.to_vec()));
    }
    Ok(value.as_string().map(String::into_bytes))
}

fn is_abort(error: &JsValue, signal: Option<&AbortSignal>) -> bool {
    signal.is_some_and(AbortSignal::aborted)
        || Reflect::get(error, &"name".into()).ok().and_then(|n| n.as_string()).as_deref() == Some("AbortError")
}

fn abort_reason(signal: &AbortSignal) -> JsValue {
    let reason = signal.reason();
    if !reason.is_undefined() {
        return reason;
    }
    web_sys::DomException::new_with_message_and_name("Aborted", "AbortError").map(Into::into).unwrap_or(reason)
}

/// What a failed fetch said: its message (and its cause's, as Node words a refused connection).
fn describe(error: &JsValue) -> String {
    let message = |e: &JsValue| Reflect::get(e, &"message".into()).ok().and_then(|m| m.as_string());
    message(error).or_else(|| error.as_string()).unwrap_or_else(|| "no answer".into())
}

/// A failed exchange as a JS error: the core's error fields, the transactionId once there is one, and for a
/// server that did not speak SCEP `http: { status, body, url }` (the package maps these to its error classes).
fn js_failure(failure: Failure) -> JsValue {
    let error = js_error(failure.error);
    if let Some(tid) = failure.transaction_id {
        let _ = Reflect::set(&error, &"transactionId".into(), &tid.into());
    }
    if let Some(http) = failure.http {
        let detail = Object::new();
        let _ = Reflect::set(&detail, &"url".into(), &http.url.into());
        if let Some(status) = http.status {
            let _ = Reflect::set(&detail, &"status".into(), &status.into());
        }
        if let Some(body) = http.body {
            let _ = Reflect::set(&detail, &"body".into(), &body.into());
        }
        let _ = Reflect::set(&error, &"http".into(), &detail);
    }
    error
}
