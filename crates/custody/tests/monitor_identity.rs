//! `custody log monitor --watch-identity / --allow-identity`: entries whose verifier is an
//! X.509 certificate alert on the certificate's subject alternative name. The entry is a real
//! Fulcio-issued signature (sigstore-conformance `happy-path-v0.3`) submitted to a live server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod logd;

use logd::{Daemon, TOKEN, custody, hashedrekord, p256, path_str, post_entry, scratch};
use serde_json::{Value, json};

/// The workflow identity in the conformance certificate.
const BEACON: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";

fn certificate_request() -> String {
    let path =
        common::testdata("sigstore-conformance/bundle-verify/happy-path-v0.3/bundle.sigstore.json");
    let bundle: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let signature = &bundle["messageSignature"];
    json!({ "hashedRekordRequestV002": {
        "digest": signature["messageDigest"]["digest"],
        "signature": { "content": signature["signature"], "verifier": {
            "x509Certificate": { "rawBytes": bundle["verificationMaterial"]["certificate"]["rawBytes"] },
            "keyDetails": "PKIX_ECDSA_P256_SHA_256" } } } })
    .to_string()
}

fn monitor(url: &str, vkey: &str, extra: &[&str]) -> (i32, Vec<Value>) {
    let mut args = vec!["log", "monitor", url, "--log-key", vkey, "--once"];
    args.extend_from_slice(extra);
    let (code, _, err) = custody(&args);
    let alerts = err
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    (code, alerts)
}

#[test]
fn a_monitor_alerts_on_watched_certificate_identities() {
    let (_tmp, data) = scratch();
    let log = Daemon::log(&data, &[]);
    let key = p256();
    post_entry(&log.url, &hashedrekord(&key, b"by a key"), Some(TOKEN));
    let (status, text) = post_entry(&log.url, &certificate_request(), Some(TOKEN));
    assert_eq!(status, 201, "{text}");
    let vkey = path_str(&data.join("log.vkey"));

    let (code, alerts) = monitor(&log.url, &vkey, &["--watch-identity", BEACON]);
    assert_eq!(code, 1, "{alerts:?}");
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["alert"], "watched-identity");
    assert_eq!(alerts[0]["identity"], BEACON);
    assert_eq!(alerts[0]["index"], 1);

    // Allowed: no alert. Another identity, or a prefix of this one: no alert (exact match).
    for extra in [
        ["--watch-identity", BEACON, "--allow-identity", BEACON].as_slice(),
        ["--watch-identity", "someone@example.com"].as_slice(),
        [
            "--watch-identity",
            "https://github.com/sigstore-conformance/",
        ]
        .as_slice(),
    ] {
        let (code, alerts) = monitor(&log.url, &vkey, extra);
        assert_eq!((code, alerts.len()), (0, 0), "{extra:?}: {alerts:?}");
    }

    // Key and identity watches together: one alert each.
    let pem = data.with_extension("pub");
    std::fs::write(&pem, key.public_key().to_pem()).unwrap();
    let (code, alerts) = monitor(
        &log.url,
        &vkey,
        &["--watch-identity", BEACON, "--watch-key", &path_str(&pem)],
    );
    assert_eq!(code, 1);
    let kinds: Vec<&str> = alerts
        .iter()
        .map(|a| a["alert"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["watched-key", "watched-identity"], "{alerts:?}");
}
