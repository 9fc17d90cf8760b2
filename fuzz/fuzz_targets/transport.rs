//! The GET `message` parameter (percent-encoding, line breaks, unescaped + and /) and GetCACaps text.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = scepkit::transport::decode_message_param(text);
        let caps = scepkit::caps::CaCaps::parse(text);
        let _ = caps.negotiate(scepkit::algorithms::AlgorithmPolicy::Modern, None, None);
        let _ = caps.negotiate(scepkit::algorithms::AlgorithmPolicy::Legacy, None, None);
    }
    let _ = scepkit::caps::CaCertificates::parse(data);
});
