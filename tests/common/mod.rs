//! Helpers shared by the integration tests: peer fixtures, keys, and a scepkit CA.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use der::DecodePem;
pub use scepkit::algorithms::AlgorithmPolicy;
use scepkit::algorithms::DigestAlg;
use scepkit::issue::{self_signed, SelfSignedRole};
use scepkit::keys::RsaKey;
#[allow(unused_imports)]
pub use scepkit::keys::{Crypto, RustCrypto};
use scepkit::wire::Certificate;

pub const NOW: u64 = 1_795_300_000; // 2026-11-21

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/peers")
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub fn key(name: &str) -> RsaKey {
    RsaKey::import(&fixture(&format!("keys/{name}"))).unwrap()
}

pub fn cert(name: &str) -> Certificate {
    Certificate::from_pem(fixture(&format!("keys/{name}"))).unwrap()
}

pub struct Ca {
    pub cert: Certificate,
    pub key: RsaKey,
}

pub fn micromdm_ca() -> Ca {
    Ca { cert: cert("micromdm-ca.pem"), key: key("micromdm-ca.key.pem") }
}

/// Fresh RSA-2048 keys are slow to make; tests share a few.
pub fn test_key(slot: usize) -> &'static RsaKey {
    static KEYS: OnceLock<Vec<RsaKey>> = OnceLock::new();
    &KEYS.get_or_init(|| {
        (0..4).map(|_| RsaKey::generate(2048, AlgorithmPolicy::Modern, &mut rand_core::OsRng).unwrap()).collect()
    })[slot]
}

pub fn scepkit_ca() -> &'static Ca {
    static CA: OnceLock<Ca> = OnceLock::new();
    CA.get_or_init(|| {
        let key = test_key(0).clone();
        let cert = self_signed(
            &key,
            "CN=scepkit test CA,O=scepkit",
            &[1],
            (NOW - 3600, NOW + 10 * 365 * 86400),
            DigestAlg::Sha256,
            SelfSignedRole::Ca,
        )
        .unwrap();
        Ca { cert, key }
    })
}

/// Writes bytes to a fresh temp file and returns its path (kept alive by the returned handle).
pub fn temp_file(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut f, bytes).unwrap();
    f
}

/// The algorithm policy of a legacy switch, as the tests spell it.
pub fn policy(legacy: bool) -> AlgorithmPolicy {
    AlgorithmPolicy::from_legacy_switch(legacy)
}

/// What a profile with this legacy switch accepts (PKCS#1 v1.5 key transport included).
pub fn accept(legacy: bool) -> scepkit::server::Acceptance {
    scepkit::server::Acceptance { policy: policy(legacy), oaep_only: false }
}

/// The pure-Rust public-key operations under [`policy`]`(legacy)`.
pub fn crypto(legacy: bool) -> scepkit::keys::Crypto<'static> {
    scepkit::keys::Crypto::rust(policy(legacy))
}
