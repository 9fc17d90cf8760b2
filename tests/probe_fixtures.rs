use scepkit::{envelope, keys::RsaKey, message::ScepAttributes, signed::SignedMessage, wire::Certificate};

use der::DecodePem;
const D: &str = "../shared/fixtures/peers";
#[test]
fn probe() {
    let ca = Certificate::from_pem(std::fs::read(format!("{D}/keys/micromdm-ca.pem")).unwrap()).unwrap();
    let cakey = RsaKey::import(&std::fs::read(format!("{D}/keys/micromdm-ca.key.pem")).unwrap()).unwrap();
    for f in ["micromdm-scepclient-pkcsreq", "certmonger-pkcsreq", "micromdm-certrep-success", "certmonger-getcertinitial", "micromdm-certrep-failure-badrequest", "micromdm-scepclient-renewalreq", "certmonger-pkcsreq-rekey-signed-by-issued-cert"] {
        let b = std::fs::read(format!("{D}/{f}.der")).unwrap();
        let m = SignedMessage::parse(&b).unwrap();
        let a = ScepAttributes::from_attributes(&m.signed_attributes().unwrap());
        let v = m.signer_certificate().and_then(|c| m.verify(c));
        println!("{f}: {:?} verify={:?}", a, v);
        if f.contains("req") || f.contains("initial") {
            let o = envelope::open(m.content.as_ref().unwrap(), &[envelope::Recipient{certificate:&ca, key:&cakey}], true);
            println!("  open: {:?}", o.map(|o| (o.cipher, o.plaintext.len())));
        }
    }
}
