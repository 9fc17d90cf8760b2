//! A client that enrolls from a SCEP profile object, the way a firewall does with the enrollment profile it
//! defines (the seed's schema, as the admin API stores it): `scep_url`; the `fixed` challenge, or a `dynamic`
//! one fetched from `otp_server_url` with `username`/`password` ([`OtpServer`]); the `subject` and
//! `certificate_attributes` templates rendered with the caller's variables, as the CA renders them for the seat;
//! `algorithm.rsa.rsa_nbits`; `digest` (`sha348` read as sha384) pinned in the negotiation; `fingerprint` pinned;
//! the key-usage flags; `legacy` for old servers.

use std::collections::BTreeMap;

use super::enrollment::{EnrollmentOptions, NewKey, OtpServer, Purpose};
use crate::error::{Result, ScepError};
use crate::names::{render_sans, render_subject, TEMPLATE_VARIABLES};
use crate::profile::{DynamicChallenge, ScepChallenge, ScepProfile, Secret, MASK};

/// The enrollment a profile describes, for the seat the variables name (`USERNAME` or `SEAT_ID`, one value).
/// `url` overrides `scep_url` (required when that is a path on the service that serves the profile).
pub fn enrollment_options(
    profile: &serde_json::Value,
    vars: &BTreeMap<String, String>,
    url: Option<&str>,
    now: u64,
) -> Result<EnrollmentOptions> {
    let profile = ScepProfile::from_json(profile)?;
    let seat = seat_of(vars, &profile)?;
    let url = match url {
        Some(url) => url.to_owned(),
        None if profile.scep_url.starts_with('/') => {
            return Err(ScepError::invalid_input(format!(
                "the profile's scep_url {:?} is a path on the service that serves the profile: give the SCEP URL \
                 (url, --url)",
                profile.scep_url
            )))
        }
        None => profile.scep_url.clone(),
    };
    let subject = render_subject(&profile.subject, &seat)?.to_string();
    let mut options = EnrollmentOptions::new(url, Purpose::Enroll { subject }, now);
    options.sans = render_sans(profile.certificate_attributes.as_ref(), &seat)?;
    options.new_key = NewKey::Generate { bits: profile.rsa_nbits as usize };
    options.digest = Some(profile.digest);
    options.policy = profile.algorithm_policy();
    options.fingerprint = profile.fingerprint.clone();
    options.digital_signature = profile.use_as_digital_signature;
    options.key_encipherment = profile.use_for_key_encipherment;
    match &profile.scep_challenge {
        ScepChallenge::None(_) => {}
        ScepChallenge::Fixed(secret) => options.challenge = Some(plain(secret, "scep_challenge.fixed")?),
        ScepChallenge::Dynamic(DynamicChallenge {
            otp_server_url: Some(url),
            username: Some(u),
            password: Some(p),
        }) => {
            let password = plain(p, "scep_challenge.dynamic.password")?;
            options.challenge_from = Some(OtpServer { url: url.clone(), username: u.clone(), password });
        }
        ScepChallenge::Dynamic(_) => {
            return Err(ScepError::invalid_input(
                "the profile's dynamic challenge needs otp_server_url, username and password for a client to fetch a \
                 one-time password (or give the challenge: --challenge)",
            ))
        }
    }
    Ok(options)
}

/// A secret of the profile as the client must send it: in clear, not sealed or masked by the admin API.
fn plain(secret: &Secret, field: &str) -> Result<String> {
    match secret {
        Secret::Plain(s) if s != MASK => Ok(s.clone()),
        _ => Err(ScepError::invalid_input(format!(
            "the profile's {field} is masked or sealed (as the admin API shows and stores it): put the secret itself \
             in the profile the client reads"
        ))),
    }
}

/// The seat the variables name: `USERNAME` or `SEAT_ID` (the same value when both are given). Needed only when
/// a template uses it.
fn seat_of(vars: &BTreeMap<String, String>, profile: &ScepProfile) -> Result<String> {
    if let Some(unknown) = vars.keys().find(|k| !TEMPLATE_VARIABLES.contains(&k.as_str())) {
        return Err(ScepError::invalid_input(format!(
            "variable {unknown} is not one a profile template uses (known: {})",
            TEMPLATE_VARIABLES.join(", ")
        )));
    }
    let values: Vec<&String> = TEMPLATE_VARIABLES.iter().filter_map(|k| vars.get(*k)).collect();
    if values.windows(2).any(|w| w[0] != w[1]) {
        return Err(ScepError::invalid_input("USERNAME and SEAT_ID both name the seat: give one, or the same value"));
    }
    let templated = profile.subject.contains('$')
        || profile
            .certificate_attributes
            .as_ref()
            .is_some_and(|a| serde_json::to_string(a).unwrap_or_default().contains('$'));
    match values.first() {
        Some(seat) => Ok((*seat).clone()),
        None if templated => Err(ScepError::invalid_input(format!(
            "the profile's templates name the seat ({}): give it as a variable, e.g. USERNAME=alice",
            profile.subject
        ))),
        None => Ok(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithms::DigestAlg;
    use crate::csr::San;
    use serde_json::json;

    fn firewall_profile(challenge: serde_json::Value) -> serde_json::Value {
        json!({
            "name": "fw", "device": "fw-01", "scep_challenge": challenge, "ca_identity_name": "ca",
            "subject": "CN=$USERNAME,O=Example", "algorithm": { "rsa": { "rsa_nbits": "3072" } }, "digest": "sha348",
            "fingerprint": "AB:CD:".repeat(9) + "AB:CD", "certificate_attributes": { "dnsname": "$USERNAME.vpn.example" },
            "use_for_key_encipherment": false, "scep_url": "https://ca.example/scep/fw"
        })
    }

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_firewall_profile_becomes_the_enrollment_it_describes() {
        let mut p = firewall_profile(json!({ "fixed": "s3cret" }));
        p["fingerprint"] = json!("ab".repeat(32));
        let o = enrollment_options(&p, &vars(&[("USERNAME", "alice")]), None, 1).unwrap();
        assert_eq!(o.url, "https://ca.example/scep/fw");
        assert!(matches!(&o.purpose, Purpose::Enroll { subject } if subject == "CN=alice,O=Example"));
        assert_eq!(o.sans, vec![San::Dns("alice.vpn.example".into())]);
        assert_eq!(
            (o.new_key, o.digest, o.challenge.as_deref()),
            (NewKey::Generate { bits: 3072 }, Some(DigestAlg::Sha384), Some("s3cret"))
        );
        assert_eq!((o.digital_signature, o.key_encipherment), (true, false));

        let p = firewall_profile(
            json!({ "dynamic": { "otp_server_url": "https://ca.example/scep/fw/mscep_admin/", "username": "fw", "password": "pw" } }),
        );
        let o = enrollment_options(&p, &vars(&[("SEAT_ID", "bob")]), None, 1).unwrap();
        assert_eq!(o.challenge_from.unwrap().password, "pw");
    }

    #[test]
    fn what_a_client_cannot_use_is_refused_with_what_to_do() {
        let fixed = firewall_profile(json!({ "fixed": "s3cret" }));
        let e =
            |p: &serde_json::Value, v: &[(&str, &str)]| enrollment_options(p, &vars(v), None, 1).unwrap_err().message;
        assert!(e(&fixed, &[]).contains("give it as a variable, e.g. USERNAME=alice"));
        assert!(e(&fixed, &[("HOST", "x")]).contains("variable HOST is not one"));
        assert!(e(&fixed, &[("USERNAME", "a"), ("SEAT_ID", "b")]).contains("both name the seat"));
        let masked = firewall_profile(json!({ "fixed": "********" }));
        assert!(e(&masked, &[("USERNAME", "a")]).contains("masked or sealed"));
        let incomplete = firewall_profile(json!({ "dynamic": {} }));
        assert!(e(&incomplete, &[("USERNAME", "a")]).contains("needs otp_server_url, username and password"));
        let mut relative = fixed.clone();
        relative["scep_url"] = json!("/scep/fw");
        assert!(e(&relative, &[("USERNAME", "a")]).contains("give the SCEP URL"));
        assert!(enrollment_options(&relative, &vars(&[("USERNAME", "a")]), Some("http://127.0.0.1/scep/fw"), 1).is_ok());
    }
}
