//! CSR facts: parsing, proof-of-possession check, SAN and key-usage extraction, seat mapping.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(facts) = scepkit::csr::CsrFacts::from_der(data, &scepkit::keys::RustCrypto) {
        for mapping in ["subject.common_name", "subject.serial_number", "san.dnsname", "san.rfc822name"] {
            let _ = scepkit::names::seat_id(&facts, mapping);
        }
    }
});
