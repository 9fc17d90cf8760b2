//! EnvelopedData decryption with a real recipient key: every malformed or hostile envelope is an error,
//! never a panic (BER segments, bad IVs, wrong key lengths, padding).
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use scepkit::algorithms::AlgorithmPolicy;
use scepkit::envelope::{open, Recipient};
use scepkit::keys::RsaKey;
use scepkit::wire::Certificate;

static CA: OnceLock<(Certificate, RsaKey)> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let (cert, key) = CA.get_or_init(|| {
        use der::DecodePem;
        let cert =
            Certificate::from_pem(include_bytes!("../../../shared/fixtures/peers/keys/micromdm-ca.pem")).unwrap();
        let key = RsaKey::import(include_bytes!("../../../shared/fixtures/peers/keys/micromdm-ca.key.pem")).unwrap();
        (cert, key)
    });
    let _ = open(data, &[Recipient { certificate: Some(cert), key }], AlgorithmPolicy::Legacy);
    let _ = open(data, &[Recipient { certificate: None, key }], AlgorithmPolicy::Legacy);
});
