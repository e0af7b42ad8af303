#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use chrono::TimeZone as _;

use super::*;
use crate::digest::Sha256Digest;

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata")
        .join(rel)
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(testdata(rel)).unwrap()
}

fn round_trips(root: &TrustedRoot) {
    assert_eq!(
        &TrustedRoot::from_json(root.to_json().as_bytes()).unwrap(),
        root
    );
}

#[test]
fn public_good_and_staging_roots_parse() {
    for rel in [
        "sigstore-trust-root/public-good.trusted_root.json",
        "sigstore-trust-root/staging.trusted_root.json",
        "sigstore-python/embedded-tuf-store/https%3A%2F%2Ftuf-repo-cdn.sigstore.dev/trusted_root.json",
        "sigstore-python/embedded-tuf-store/https%3A%2F%2Ftuf-repo-cdn.sigstage.dev/trusted_root.json",
        "cosign-fixtures/pkg/cosign/testdata/trusted_root_pgi.json",
    ] {
        let root = TrustedRoot::from_json(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert!(
            !root.tlogs.is_empty() && !root.certificate_authorities.is_empty(),
            "{rel}"
        );
        round_trips(&root);
    }
}

#[test]
fn public_good_log_ids_are_key_hashes() {
    let root =
        TrustedRoot::from_json(&read("sigstore-trust-root/public-good.trusted_root.json")).unwrap();
    assert_eq!(root.media_type, TRUSTED_ROOT_V0_1_LEGACY);
    let rekor = root
        .tlogs
        .iter()
        .find(|t| t.base_url == "https://rekor.sigstore.dev")
        .unwrap();
    let spki = rekor.public_key.raw_bytes.as_ref().unwrap();
    // Rekor v1 / CT: logId = SHA-256(DER SPKI). The bundle conformance cases log here.
    assert_eq!(rekor.log_id, Sha256Digest::of(spki).as_bytes());
    assert_eq!(
        crate::encoding::base64_encode(&rekor.log_id),
        "wNI9atQGlz+VWfO6LRygH4QUfY/8W4RFwiT5i5WRgB0="
    );
    assert_eq!(root.tlog_by_log_id(&rekor.log_id), Some(rekor));
    for ct in &root.ctlogs {
        assert_eq!(
            ct.log_id,
            Sha256Digest::of(ct.public_key.raw_bytes.as_ref().unwrap()).as_bytes()
        );
        assert_eq!(root.ctlog_by_log_id(&ct.log_id), Some(ct));
    }
    assert_eq!(root.tlog_by_log_id(&[0; 32]), None);
    // Rekor v2: logId = SHA-256(name ‖ "\n" ‖ 0x01 ‖ raw Ed25519 key).
    let v2 = root
        .tlogs
        .iter()
        .find(|t| t.public_key.key_details == "PKIX_ED25519")
        .unwrap();
    let key = v2.public_key.raw_bytes.as_ref().unwrap();
    let mut preimage = b"log2025-1.rekor.sigstore.dev\n\x01".to_vec();
    preimage.extend_from_slice(&key[key.len() - 32..]);
    assert_eq!(v2.log_id, Sha256Digest::of(&preimage).as_bytes());
}

#[test]
fn sigstore_python_trusted_root_files() {
    for ok in [
        "trustedroot.v1.json",
        "trustedroot.v1.local_tlog_ed25519_rekor-tiles.json",
    ] {
        round_trips(
            &TrustedRoot::from_json(&read(&format!("sigstore-python/trusted_root/{ok}"))).unwrap(),
        );
    }
    match TrustedRoot::from_json(&read(
        "sigstore-python/trusted_root/trustedroot.badtype.json",
    )) {
        Err(e @ TrustRootError::UnsupportedMediaType { .. }) => {
            assert!(e.to_string().contains("bad-media-type"))
        }
        other => panic!("{other:?}"),
    }
    let ca = CertificateAuthority::from_json(&read(
        "sigstore-python/trusted_root/certificate_authority.json",
    ))
    .unwrap();
    assert_eq!(ca.cert_chain.len(), 3);
    assert_eq!(ca.subject.common_name, "Internal Services Root");
    match CertificateAuthority::from_json(&read(
        "sigstore-python/trusted_root/certificate_authority.empty.json",
    )) {
        Err(e @ TrustRootError::MissingCertificate { .. }) => {
            assert!(e.to_string().contains("missing a certificate"))
        }
        other => panic!("{other:?}"),
    }
    // The chain lacks its self-signed root; that is a chain-building matter, not a parse error.
    let missing_root = CertificateAuthority::from_json(&read(
        "sigstore-python/trusted_root/certificate_authority.missingroot.json",
    ))
    .unwrap();
    assert_eq!(missing_root.cert_chain.len(), 2);
}

#[test]
fn every_conformance_trusted_root_parses() {
    let dir = testdata("sigstore-conformance/bundle-verify");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path().join("trusted_root.json");
        if path.exists() {
            let root = TrustedRoot::from_json(&std::fs::read(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            round_trips(&root);
            n += 1;
        }
    }
    assert!(n >= 25, "{n}");
}

#[test]
fn client_trust_configs_and_signing_configs() {
    let config =
        ClientTrustConfig::from_json(&read("sigstore-python/trust_config/config.v1.json")).unwrap();
    assert_eq!(config.signing_config.rekor_tlog_urls.len(), 2);
    assert_eq!(
        config
            .signing_config
            .rekor_tlog_config
            .as_ref()
            .unwrap()
            .selector,
        ServiceSelector::Any
    );
    assert!(matches!(
        ClientTrustConfig::from_json(&read("sigstore-python/trust_config/config.badtype.json")),
        Err(TrustRootError::UnsupportedMediaType {
            document: "client trust config",
            ..
        })
    ));
    ClientTrustConfig::from_json(&read("sigstore-python/tsa/trust_config.json")).unwrap();
    for rel in [
        "sigstore-python/signing_config/signingconfig.v2.json",
        "sigstore-python/signing_config/signingconfig-only-v1-rekor.v2.json",
        "sigstore-python/embedded-tuf-store/https%3A%2F%2Ftuf-repo-cdn.sigstore.dev/signing_config.v0.2.json",
        "sigstore-python/embedded-tuf-store/https%3A%2F%2Ftuf-repo-cdn.sigstage.dev/signing_config.v0.2.json",
        "sigstore-trust-root/public-good.signing_config.v0.2.json",
        "sigstore-trust-root/staging.signing_config.v0.2.json",
    ] {
        let sc = SigningConfig::from_json(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert!(!sc.rekor_tlog_urls.is_empty(), "{rel}");
        assert_eq!(
            SigningConfig::from_json(sc.to_json().as_bytes()).unwrap(),
            sc
        );
    }
    let only_v1 = SigningConfig::from_json(&read(
        "sigstore-python/signing_config/signingconfig-only-v1-rekor.v2.json",
    ))
    .unwrap();
    assert!(
        only_v1
            .rekor_tlog_urls
            .iter()
            .all(|s| s.major_api_version == 1)
    );
    let wrong = br#"{"mediaType":"application/vnd.dev.sigstore.signingconfig.v0.1+json"}"#;
    assert!(matches!(
        SigningConfig::from_json(wrong),
        Err(TrustRootError::UnsupportedMediaType { .. })
    ));
}

#[test]
fn validity_is_inclusive_and_needs_a_start() {
    let t = |s: i64| Utc.timestamp_opt(s, 0).unwrap();
    let closed = ValidityPeriod {
        start: Some(t(100)),
        end: Some(t(200)),
    };
    assert!(closed.contains(t(100)) && closed.contains(t(200)) && closed.contains(t(150)));
    assert!(!closed.contains(t(99)) && !closed.contains(t(201)));
    let open = ValidityPeriod {
        start: Some(t(100)),
        end: None,
    };
    assert!(open.contains(t(i32::MAX as i64)) && !open.contains(t(0)));
    let no_start = ValidityPeriod {
        start: None,
        end: Some(t(200)),
    };
    assert!(!no_start.contains(t(150)), "fail closed without a start");
    // Millisecond ends, as in the public-good root ("2022-12-31T23:59:59.999Z"), survive a round trip.
    let root =
        TrustedRoot::from_json(&read("sigstore-trust-root/public-good.trusted_root.json")).unwrap();
    let end = root.certificate_authorities[0].valid_for.end.unwrap();
    assert_eq!(end.timestamp_subsec_millis(), 999);
    assert!(root.certificate_authorities[0].valid_for.contains(end));
}

#[test]
fn garbage_keys_and_certificates_are_refused_early() {
    let root: serde_json::Value =
        serde_json::from_slice(&read("sigstore-trust-root/public-good.trusted_root.json")).unwrap();
    let parse = |v: &serde_json::Value| TrustedRoot::from_json(v.to_string().as_bytes());
    let mut bad_key = root.clone();
    bad_key["tlogs"][0]["publicKey"]["rawBytes"] = "AAAA".into();
    assert!(matches!(
        parse(&bad_key),
        Err(TrustRootError::InvalidPublicKey { .. })
    ));
    let mut bad_cert = root.clone();
    bad_cert["certificateAuthorities"][0]["certChain"]["certificates"][0]["rawBytes"] =
        "MAA=".into();
    assert!(matches!(
        parse(&bad_cert),
        Err(TrustRootError::InvalidCertificate { index: 0, .. })
    ));
    let mut bad_b64 = root.clone();
    bad_b64["tlogs"][0]["logId"]["keyId"] = "!!".into();
    assert!(matches!(
        parse(&bad_b64),
        Err(TrustRootError::InvalidBase64 { .. })
    ));
    let mut bad_hash = root.clone();
    bad_hash["ctlogs"][0]["hashAlgorithm"] = "MD5".into();
    assert!(matches!(
        parse(&bad_hash),
        Err(TrustRootError::UnknownHashAlgorithm { .. })
    ));
    let mut no_log_id = root.clone();
    no_log_id["tlogs"][0]
        .as_object_mut()
        .unwrap()
        .remove("logId");
    assert!(matches!(
        parse(&no_log_id),
        Err(TrustRootError::MissingField { .. })
    ));
    for mt in [TRUSTED_ROOT_V0_1, TRUSTED_ROOT_V0_2] {
        let mut v = root.clone();
        v["mediaType"] = mt.into();
        parse(&v).unwrap();
    }
    let text =
        String::from_utf8(read("sigstore-trust-root/public-good.trusted_root.json")).unwrap();
    assert!(matches!(
        TrustedRoot::from_json(&text.as_bytes()[..100]),
        Err(TrustRootError::Truncated { .. })
    ));
}
