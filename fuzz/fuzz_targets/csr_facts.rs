//! CSR facts: parsing, proof-of-possession check, SAN and key-usage extraction, seat mapping.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(facts) = scepkit::csr::CsrFacts::from_der(data, &scepkit::keys::RustCrypto) {
        for mapping in ["subject.common_name", "san.dnsname", "san.rfc822name"] {
            let _ = facts.seat_id(mapping);
        }
    }
});
