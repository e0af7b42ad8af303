#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use super::*;

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata")
        .join(rel)
}

type Expect = fn(&BundleError) -> bool;

/// sigstore-conformance `bundle-verify` cases custody refuses at parse time, and why.
/// Every other case must parse (and is left to verification). All of these are `_fail` cases.
const CONFORMANCE_REFUSED_AT_PARSE: &[(&str, Expect)] = &[
    ("bundle-empty-certificate-chain_fail", |e| {
        matches!(e, BundleError::EmptyCertificateChain)
    }),
    (
        "bundle-invalid-base64-signature_fail",
        |e| matches!(e, BundleError::InvalidBase64 { field, .. } if field == "messageSignature.signature"),
    ),
    ("bundle-malformed-json_fail", |e| {
        matches!(e, BundleError::Truncated { .. })
    }),
    (
        "bundle-negative-log-index_fail",
        |e| matches!(e, BundleError::NegativeInteger { field, value: -1 } if field.ends_with("tlogEntries[0].logIndex")),
    ),
    ("bundle-unknown-version_fail", |e| {
        matches!(e, BundleError::UnsupportedVersion { .. })
    }),
    // v0.2 without an inclusion proof (sigstore-go validate rule).
    ("intoto-missing-inclusion-proof_fail", |e| {
        matches!(e, BundleError::MissingInclusionProof { entry: 0 })
    }),
    ("rekor2-no-inclusion-proof_fail", |e| {
        matches!(e, BundleError::MissingInclusionProof { entry: 0 })
    }),
    // These two also carry an inclusion proof without its REQUIRED checkpoint, which is refused
    // before their intended (verify-time) reason: a root CA in the chain / a stale proof.
    ("bundle-with-root-cert_fail", |e| {
        matches!(e, BundleError::MissingCheckpoint { entry: 0 })
    }),
    ("invalid-inclusion-proof_fail", |e| {
        matches!(e, BundleError::MissingCheckpoint { entry: 0 })
    }),
];

#[test]
fn conformance_bundles_parse_or_are_refused_for_the_right_reason() {
    let dir = testdata("sigstore-conformance/bundle-verify");
    let mut parsed = 0;
    let mut refused = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let case = entry.unwrap().file_name().to_str().unwrap().to_string();
        let path = dir.join(&case).join("bundle.sigstore.json");
        if !path.exists() {
            continue;
        }
        let result = Bundle::from_json(&std::fs::read(&path).unwrap());
        match CONFORMANCE_REFUSED_AT_PARSE
            .iter()
            .find(|(name, _)| *name == case)
        {
            Some((_, expected)) => {
                assert!(
                    case.ends_with("_fail"),
                    "{case}: refusing a case that must verify"
                );
                let err = result.expect_err(&case);
                assert!(expected(&err), "{case}: wrong error: {err}");
                refused += 1;
            }
            None => {
                let bundle = result.unwrap_or_else(|e| panic!("{case}: {e}"));
                let again = Bundle::from_json(bundle.to_json().as_bytes()).unwrap();
                assert_eq!(again, bundle, "{case}: round trip");
                parsed += 1;
            }
        }
    }
    assert_eq!(refused, CONFORMANCE_REFUSED_AT_PARSE.len());
    assert!(parsed >= 45, "only {parsed} cases parsed");
}

/// sigstore-python bundles. The five "FAIL at load" cases split as follows:
/// * `bundle_invalid_version`, `bundle_no_cert_v1`, `bundle_no_checkpoint`: refused at parse —
///   the bundle itself is malformed (media type, empty chain, proof without its required
///   checkpoint); so is `integration/Python-3.12.5.tgz.sigstore` (no checkpoint).
/// * `bundle_no_log_entry`, `bundle_v3_no_signed_time`: parse. Whether a bundle needs a tlog
///   entry, and which time sources count (inclusion promise, RFC 3161 timestamp), is verification
///   policy: a Rekor v2 bundle has no promise, and a TSA-only bundle has no entry. The verifier
///   must refuse both.
const PYTHON_REFUSED_AT_PARSE: &[(&str, Expect)] = &[
    ("bundle_invalid_version.txt.sigstore", |e| {
        matches!(e, BundleError::UnknownMediaType { .. })
    }),
    ("bundle_no_cert_v1.txt.sigstore", |e| {
        matches!(e, BundleError::EmptyCertificateChain)
    }),
    ("bundle_no_checkpoint.txt.sigstore", |e| {
        matches!(e, BundleError::MissingCheckpoint { entry: 0 })
    }),
    ("integration/Python-3.12.5.tgz.sigstore", |e| {
        matches!(e, BundleError::MissingCheckpoint { entry: 0 })
    }),
];

const PYTHON_BUNDLES: &[&str] = &[
    "a.dsse.staging-rekor-v2.txt.sigstore.json",
    "bundle.txt.sigstore",
    "bundle_cve_2022_36056.txt.sigstore",
    "bundle_invalid_version.txt.sigstore",
    "bundle_no_cert_v1.txt.sigstore",
    "bundle_no_checkpoint.txt.sigstore",
    "bundle_no_log_entry.txt.sigstore",
    "bundle_v3.txt.sigstore",
    "bundle_v3_alt.txt.sigstore",
    "bundle_v3_github.whl.sigstore",
    "bundle_v3_no_signed_time.txt.sigstore.json",
    "integration/Python-3.12.5.tgz.sigstore",
    "integration/bundle_v3.txt.sigstore",
    "staging-rekor-v2.txt.sigstore.json",
    "tsa/bundle.duplicate.sigstore",
    "tsa/bundle.many_timestamp.sigstore",
    "tsa/bundle.txt.late_timestamp.sigstore",
    "tsa/bundle.txt.sigstore",
];

#[test]
fn sigstore_python_bundles_parse_or_are_refused_at_load() {
    for rel in PYTHON_BUNDLES {
        let result =
            Bundle::from_json(&std::fs::read(testdata(&format!("sigstore-python/{rel}"))).unwrap());
        match PYTHON_REFUSED_AT_PARSE.iter().find(|(name, _)| name == rel) {
            Some((_, expected)) => {
                let err = result.expect_err(rel);
                assert!(expected(&err), "{rel}: wrong error: {err}");
            }
            None => {
                let b = result.unwrap_or_else(|e| panic!("{rel}: {e}"));
                assert_eq!(
                    Bundle::from_json(b.to_json().as_bytes()).unwrap(),
                    b,
                    "{rel}"
                );
            }
        }
    }
    let no_log = Bundle::from_json(
        &std::fs::read(testdata("sigstore-python/bundle_no_log_entry.txt.sigstore")).unwrap(),
    )
    .unwrap();
    assert!(no_log.verification_material.tlog_entries.is_empty());
    let many = Bundle::from_json(
        &std::fs::read(testdata(
            "sigstore-python/tsa/bundle.many_timestamp.sigstore",
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(many.verification_material.rfc3161_timestamps.len(), 33);
}

#[test]
fn happy_path_v03_fields_and_byte_identical_reserialization() {
    let path = testdata(
        "sigstore-conformance/bundle-verify/happy-path-v0.3-new-mediaType/bundle.sigstore.json",
    );
    let original = std::fs::read(path).unwrap();
    let b = Bundle::from_json(&original).unwrap();
    assert_eq!(b.version, BundleVersion::V0_3);
    let entry = &b.verification_material.tlog_entries[0];
    assert_eq!(
        (entry.kind.as_str(), entry.version.as_str()),
        ("hashedrekord", "0.0.1")
    );
    assert!(entry.log_index > 0 && entry.integrated_time > 0 && entry.inclusion_promise.is_some());
    let proof = entry.inclusion_proof.as_ref().unwrap();
    assert!(proof.checkpoint.starts_with("rekor.sigstore.dev - "));
    assert!(proof.hashes.iter().all(|h| h.len() == 32));
    match &b.content {
        BundleContent::MessageSignature {
            message_digest: Some((HashAlgorithm::Sha2_256, d)),
            ..
        } => {
            assert_eq!(
                hex::encode(d),
                "a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"
            );
        }
        other => panic!("{other:?}"),
    }
    // Our JSON equals the upstream JSON as a value (field names, int64 strings, base64, enums).
    let ours: serde_json::Value = serde_json::from_str(&b.to_json()).unwrap();
    let theirs: serde_json::Value = serde_json::from_slice(&original).unwrap();
    assert_eq!(ours, theirs);
}

#[test]
fn dsse_bundle_keeps_the_payload_bytes() {
    let path = testdata(
        "sigstore-conformance/bundle-verify/happy-path-intoto-in-dsse-v3/bundle.sigstore.json",
    );
    let b = Bundle::from_json(&std::fs::read(path).unwrap()).unwrap();
    let BundleContent::Dsse(env) = &b.content else {
        panic!("not DSSE")
    };
    let statement = std::fs::read(testdata(
        "slsa/github-actions-slsa-provenance-v1.statement.json",
    ))
    .unwrap();
    let parsed: serde_json::Value = serde_json::from_slice(&env.payload).unwrap();
    assert_eq!(
        parsed,
        serde_json::from_slice::<serde_json::Value>(&statement).unwrap()
    );
    assert_eq!(env.signatures.len(), 1);
}
