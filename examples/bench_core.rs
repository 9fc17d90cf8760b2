//! Native timings of the core operations `make bench` compares with the same calls in wasm (bench/core.mjs).
//! Prints one JSON object: operation → median milliseconds.

use std::time::Instant;

use der::Encode;
use rand_core::OsRng;
use scepkit::algorithms::{AlgorithmPolicy, Cipher, DigestAlg, KeyTransport};
use scepkit::caps::CaCertificates;
use scepkit::client::{self, RequestOptions, Requester};
use scepkit::csr::CsrRequest;
use scepkit::envelope::{EnvelopeOptions, Recipient};
use scepkit::issue::{self_signed, SelfSignedRole};
use scepkit::keys::{RsaKey, RustCrypto};
use scepkit::message::MessageType;
use scepkit::signed::IdentifierKind;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn time<T>(n: usize, mut f: impl FnMut(usize) -> T) -> f64 {
    median(
        (0..n)
            .map(|i| {
                let t = Instant::now();
                std::hint::black_box(f(i));
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect(),
    )
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(30);
    let seed = |i: usize| [i as u8; 32];
    let keygen = time(5, |i| RsaKey::generate_from_seed(2048, seed(i)).unwrap());
    let ca_key = RsaKey::generate_from_seed(2048, [200; 32]).unwrap();
    let ca = self_signed(
        &ca_key,
        "CN=bench CA",
        &[1],
        (1_700_000_000, 2_000_000_000),
        DigestAlg::Sha256,
        SelfSignedRole::Ca,
    )
    .unwrap();
    let cas = CaCertificates::parse(&ca.to_der().unwrap()).unwrap();
    let key = RsaKey::generate_from_seed(2048, [201; 32]).unwrap();
    let signer =
        self_signed(&key, "CN=bench", &[2], (1_700_000_000, 2_000_000_000), DigestAlg::Sha256, SelfSignedRole::Signer)
            .unwrap();
    let request = CsrRequest {
        subject: "CN=bench".into(),
        sans: vec![],
        challenge: Some("code".into()),
        digest: DigestAlg::Sha256,
        digital_signature: true,
        key_encipherment: true,
    };
    let csr_build = time(n, |_| request.build(&key).unwrap());
    let csr = request.build(&key).unwrap();
    let opts = RequestOptions {
        envelope: EnvelopeOptions {
            cipher: Cipher::Aes128Cbc,
            transport: KeyTransport::RsaPkcs1v15,
            identifier: IdentifierKind::IssuerAndSerialNumber,
        },
        policy: AlgorithmPolicy::Modern,
        digest: DigestAlg::Sha256,
        signer_identifier: IdentifierKind::IssuerAndSerialNumber,
    };
    let requester = Requester { key: &key, certificate: &signer };
    let build = time(n, |_| {
        client::certificate_request(&csr, MessageType::PkcsReq, None, &requester, &cas, opts, &mut OsRng).unwrap()
    });
    // Opened with RSA-OAEP (the same cost as PKCS#1 v1.5 here): Node's crypto, the host the bench puts behind
    // the seam for the `_host_rsa` row, refuses PKCS#1 v1.5 decryption.
    let oaep =
        RequestOptions { envelope: EnvelopeOptions { transport: KeyTransport::RsaOaepSha1, ..opts.envelope }, ..opts };
    let message = client::certificate_request(&csr, MessageType::PkcsReq, None, &requester, &cas, oaep, &mut OsRng)
        .unwrap()
        .message;
    let open = time(n, |_| {
        scepkit::server::read_request(&message)
            .unwrap()
            .open(
                &[Recipient { certificate: Some(&ca), key: &ca_key }],
                scepkit::server::Acceptance::default(),
                &RustCrypto,
            )
            .unwrap()
    });
    println!(
        "{}",
        serde_json::json!({
            "keygen_2048_seeded": keygen, "csr_build": csr_build, "pkimessage_build": build, "pkimessage_open": open,
            // The native reference for the wasm core with the host's RSA behind the seam.
            "pkimessage_open_host_rsa": open,
        })
    );
}
