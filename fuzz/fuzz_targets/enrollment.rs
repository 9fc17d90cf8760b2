//! The client's step machine against a hostile server and a hostile host: every HTTP answer, signature,
//! decryption and public-key verdict comes from the input (or, as the input picks, the real one). The machine
//! must end, with a result or a failure, within a bounded number of steps, and never panic; in particular a stage
//! taken again after its public-key operations are answered (keys::Deferred) must not loop.
#![no_main]
use std::sync::OnceLock;

use der::Encode;
use libfuzzer_sys::fuzz_target;
use rand_core::SeedableRng;
use scepkit::algorithms::{DigestAlg, KeyTransport};
use scepkit::client::enrollment::{Answer, Enrollment, EnrollmentOptions, NewKey, Operation, Purpose, Step};
use scepkit::client::http::HttpResponse;
use scepkit::issue::{self_signed, SelfSignedRole};
use scepkit::keys::{self, KeyOperation, PrivateKeyOps, RsaKey, RustCrypto};

struct Fixture {
    key: RsaKey,
    spki: Vec<u8>,
    ca_cert: Vec<u8>,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

/// The fuzz input, read a byte or a slice at a time (zeros once it runs out).
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().map_or((0, &[][..]), |(f, r)| (*f, r));
        self.0 = rest;
        first
    }

    fn bytes(&mut self) -> Vec<u8> {
        let len = usize::from(self.byte()) << 4 | usize::from(self.byte() & 0x0f);
        let (taken, rest) = self.0.split_at(len.min(self.0.len()));
        self.0 = rest;
        taken.to_vec()
    }
}

fuzz_target!(|data: &[u8]| {
    let f = FIXTURE.get_or_init(|| {
        let key = RsaKey::generate_from_seed(2048, [7; 32]).unwrap();
        let spki = key.public_key().to_der().unwrap();
        let ca = self_signed(&key, "CN=fuzz CA", &[1], (0, 4_000_000_000), DigestAlg::Sha256, SelfSignedRole::Ca);
        Fixture { key, spki, ca_cert: ca.unwrap().to_der().unwrap() }
    });
    let mut input = Input(data);
    let transport = [KeyTransport::RsaPkcs1v15, KeyTransport::RsaOaepSha1, KeyTransport::RsaOaepSha256]
        [usize::from(input.byte() % 3)];
    let options = EnrollmentOptions {
        new_key: NewKey::Given { spki: f.spki.clone() },
        challenge: Some("fuzz".into()),
        key_transport: transport,
        max_polls: 3,
        ..EnrollmentOptions::new("http://scep.test/scep", Purpose::Enroll { subject: "CN=fuzz".into() }, 1_700_000_000)
    };
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(u64::from(input.byte()));
    let mut machine = Enrollment::new(options, &mut rng).unwrap();
    for _ in 0..400 {
        let (id, operation) = match machine.next_step() {
            Err(_) | Ok(Step::Done(_)) => return,
            Ok(Step::Progress(_)) | Ok(Step::Await(_)) => continue,
            Ok(Step::Start(id, operation)) => (id, operation),
        };
        // Even bytes take the real answer where there is one, odd ones the input's.
        let real = input.byte() % 2 == 0;
        let answer = match operation {
            Operation::Http(request) => {
                let body = match (real, request.operation) {
                    (true, scepkit::client::http::Operation::GetCaCaps) => b"AES\nSHA-256\nPOSTPKIOperation\n".to_vec(),
                    (true, scepkit::client::http::Operation::GetCaCert) => f.ca_cert.clone(),
                    _ => input.bytes(),
                };
                let content_type = ["application/x-pki-message", "application/x-x509-ca-cert", "text/plain"]
                    [usize::from(input.byte() % 3)];
                Answer::Http(HttpResponse { status: 200, content_type: Some(content_type.into()), body })
            }
            Operation::Key { operation, .. } if real => match keys::perform(&f.key, &operation) {
                Ok(out) if matches!(operation, KeyOperation::Sign { .. }) => Answer::Signature(out),
                Ok(out) => Answer::Decrypted(out.into()),
                Err(_) => Answer::Slept,
            },
            Operation::Key { operation: KeyOperation::Sign { .. }, .. } => Answer::Signature(input.bytes()),
            Operation::Key { .. } => Answer::Decrypted(input.bytes().into()),
            Operation::Public(operation) if real => {
                keys::perform_public(&RustCrypto, &operation, &mut rng).map_or(Answer::Slept, Into::into)
            }
            Operation::Public(_) => match input.byte() % 3 {
                0 => Answer::Verified(true),
                1 => Answer::Verified(false),
                _ => Answer::Encrypted(input.bytes()),
            },
            Operation::Sleep { .. } => Answer::Slept,
            Operation::GenerateKey { .. } => Answer::PublicKey(f.spki.clone()),
        };
        machine.answer(id, answer);
    }
    panic!("the enrollment did not end within 400 steps");
});
