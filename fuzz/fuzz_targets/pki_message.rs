//! PKIMessage / CertRep parsing: read_request, the signed attributes, signature checks and `inspect`
//! (which walks every structure a peer can send) must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = scepkit::server::read_request(data) {
        let _ = req.signed.signer_certificate().and_then(|c| req.signed.verify(c, &scepkit::keys::RustCrypto));
    }
    let _ = scepkit::inspect::inspect(data, None, &scepkit::keys::RustCrypto);
});
