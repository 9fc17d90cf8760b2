//! Profile validation of arbitrary JSON, and the round trip of what it accepts.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if let Ok(profile) = scepkit::profile::ScepProfile::from_json(&value) {
        let again =
            scepkit::profile::ScepProfile::from_json(&profile.to_json(true)).expect("a valid profile re-validates");
        assert_eq!(again, profile);
        let _ = scepkit::csr::render_template(&profile.subject, &[("USERNAME".into(), "x".into())]);
    }
});
