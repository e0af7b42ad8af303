//! RFC 3161 timestamps from the sigstore-conformance `rekor2-*` and TSA cases and from
//! sigstore-python's `tsa/` assets (testdata/README.md).

use super::*;
use crate::bundle::{Bundle, BundleContent};
use crate::trust_root::CertificateAuthority;
use crate::x509::tests::{STAGING_ROOT, conformance, leaf_and_rest, testdata, trusted_root};
use crate::x509::verify_chain;

/// The signature bytes a bundle's timestamps cover.
pub(crate) fn signature_bytes(bundle: &Bundle) -> Vec<u8> {
    match &bundle.content {
        BundleContent::MessageSignature { signature, .. } => signature.clone(),
        BundleContent::Dsse(envelope) => envelope.signatures[0].sig.clone(),
    }
}

fn verify_case(case: &str) -> Result<VerifiedTimestamp, TimestampError> {
    let (bundle, root) = conformance(case);
    let [ts] = bundle.verification_material.rfc3161_timestamps.as_slice() else {
        panic!("{case}: expected one timestamp");
    };
    verify_timestamp(ts, &signature_bytes(&bundle), &root)
}

const STAGING_TSA: &str = "https://timestamp.sigstage.dev/api/v1/timestamp";

#[test]
fn conformance_timestamps_that_verify() {
    for case in [
        "rekor2-happy-path",
        "rekor2-dsse-happy-path",
        "rekor2-timestamp-with-embedded-cert",
        "rekor2-timestamp-without-embedded-cert",
        "rekor2-checkpoint-cosigned",
        "rekor2-checkpoint-origin-not-first",
        "rekor2-checkpoint-two-sigs-cosigned",
        "rekor2-checkpoint-two-sigs-from-origin",
        "trust-root-tsa-validity-end-inclusive",
        "bundle-with-sct-with-extensions",
    ] {
        let ts = verify_case(case).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert!(
            ts.tsa.starts_with("https://timestamp.sigstage.dev")
                || ts.tsa.starts_with("https://timestamp.sigstore.dev"),
            "{case}: {}",
            ts.tsa
        );
        // The orchestrator then validates the signing certificate at this time.
        let (bundle, root) = conformance(case);
        let (leaf, rest) = leaf_and_rest(&bundle);
        verify_chain(&leaf, &rest, &root, ts.time).unwrap_or_else(|e| panic!("{case}: {e}"));
    }
    let happy = verify_case("rekor2-happy-path").unwrap();
    assert_eq!(happy.tsa, STAGING_TSA);
    assert_eq!(happy.time.to_rfc3339(), "2025-06-12T12:02:20+00:00");
    assert_eq!(happy.policy, "1.3.6.1.4.1.57264.2");
}

/// genTime equal to the TSA's `validFor.end`: a closed interval, so it verifies (sigstore-python
/// 4.5.1 gets this wrong).
#[test]
fn trust_root_tsa_validity_end_inclusive() {
    let (_, root) = conformance("trust-root-tsa-validity-end-inclusive");
    let ts = verify_case("trust-root-tsa-validity-end-inclusive").unwrap();
    let ends: Vec<_> = root
        .timestamp_authorities
        .iter()
        .filter_map(|a| a.valid_for.end)
        .collect();
    assert!(ends.contains(&ts.time), "{} not in {ends:?}", ts.time);
}

#[test]
fn conformance_timestamps_that_must_fail() {
    let err = verify_case("rekor2-timestamp-outside-trust-root-tsa-validity_fail").unwrap_err();
    assert!(
        matches!(
            err,
            TimestampError::Untrusted(CertError::NoAuthorityValidAt { .. })
        ),
        "{err}"
    );
    let err = verify_case("rekor2-timestamp-outside-tsa-cert-validity_fail").unwrap_err();
    assert!(
        matches!(
            err,
            TimestampError::Untrusted(CertError::Expired { .. } | CertError::NotYetValid { .. })
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("expired before the signing time")
            || err.to_string().contains("not yet valid"),
        "{err}"
    );
    let err = verify_case("rekor2-timestamp-payload-mismatch_fail").unwrap_err();
    assert!(matches!(err, TimestampError::ImprintMismatch), "{err}");
    let err = verify_case("rekor2-timestamp-untrusted-tsa-with-embedded-cert_fail").unwrap_err();
    assert!(
        matches!(
            err,
            TimestampError::Untrusted(_) | TimestampError::NoSignerCertificate
        ),
        "{err}"
    );
}

/// These timestamps are valid timestamps; the bundle fails because the time lies outside the
/// signing certificate's validity, which the chain check at that time reports.
#[test]
fn timestamps_outside_the_signing_certificate_validity() {
    for case in [
        "intoto-tsa-timestamp-outside-cert-validity_fail",
        "rekor2-timestamp-with-incorrect-time_fail",
    ] {
        let ts = verify_case(case).unwrap_or_else(|e| panic!("{case}: {e}"));
        let (bundle, root) = conformance(case);
        let (leaf, rest) = leaf_and_rest(&bundle);
        let err = verify_chain(&leaf, &rest, &root, ts.time).unwrap_err();
        assert!(
            matches!(
                err,
                CertError::Expired { .. } | CertError::NotYetValid { .. }
            ),
            "{case}: {err}"
        );
    }
}

fn python_tsa_bundle(name: &str) -> Bundle {
    Bundle::from_json(&std::fs::read(testdata("sigstore-python/tsa").join(name)).unwrap()).unwrap()
}

/// Staging root with its TSA list replaced by sigstore-python's test TSA (`tsa/ca.json`).
fn staging_with_test_tsa() -> TrustedRoot {
    let mut root = trusted_root(STAGING_ROOT);
    let ca = CertificateAuthority::from_json(
        &std::fs::read(testdata("sigstore-python/tsa/ca.json")).unwrap(),
    )
    .unwrap();
    root.timestamp_authorities = vec![ca];
    root
}

#[test]
fn sigstore_python_tsa_bundle() {
    let bundle = python_tsa_bundle("bundle.txt.sigstore");
    let root = staging_with_test_tsa();
    let sig = signature_bytes(&bundle);
    let stamps = &bundle.verification_material.rfc3161_timestamps;
    check_timestamp_count(stamps, MAX_TIMESTAMPS).unwrap();
    // The first is over this signature; the second's SHA-512 imprint is over other bytes.
    // (sigstore-python skips timestamps that fail and counts the rest toward its threshold.)
    let verified = verify_timestamp(&stamps[0], &sig, &root).unwrap();
    assert_eq!(verified.time.to_rfc3339(), "2024-10-31T10:23:39+00:00");
    let (leaf, _) = leaf_and_rest(&bundle);
    verify_chain(&leaf, &[], &root, verified.time).unwrap();
    assert!(matches!(
        verify_timestamp(&stamps[1], &sig, &root),
        Err(TimestampError::ImprintMismatch)
    ));
    // With the production TSA list instead, the test TSA is not trusted.
    let err = verify_timestamp(&stamps[0], &sig, &trusted_root(STAGING_ROOT)).unwrap_err();
    assert!(
        matches!(
            err,
            TimestampError::Untrusted(_) | TimestampError::NoSignerCertificate
        ),
        "{err}"
    );
}

#[test]
fn sigstore_python_late_timestamp() {
    // A production Fulcio certificate timestamped by the staging TSA: production CAs with the
    // staging TSA list.
    let bundle = python_tsa_bundle("bundle.txt.late_timestamp.sigstore");
    let mut root = trusted_root(crate::x509::tests::PROD_ROOT);
    root.timestamp_authorities = trusted_root(STAGING_ROOT).timestamp_authorities;
    let ts = verify_timestamp(
        &bundle.verification_material.rfc3161_timestamps[0],
        &signature_bytes(&bundle),
        &root,
    )
    .unwrap();
    let (leaf, _) = leaf_and_rest(&bundle);
    let err = verify_chain(&leaf, &[], &root, ts.time).unwrap_err();
    assert!(matches!(err, CertError::Expired { .. }), "{err}");
}

#[test]
fn sigstore_python_too_many_and_duplicate_timestamps() {
    let many = python_tsa_bundle("bundle.many_timestamp.sigstore");
    let err = check_timestamp_count(
        &many.verification_material.rfc3161_timestamps,
        MAX_TIMESTAMPS,
    )
    .unwrap_err();
    assert!(
        matches!(err, TimestampError::TooMany { count: 33, max: 32 }),
        "{err}"
    );
    let dup = python_tsa_bundle("bundle.duplicate.sigstore");
    let err = check_timestamp_count(
        &dup.verification_material.rfc3161_timestamps,
        MAX_TIMESTAMPS,
    )
    .unwrap_err();
    assert!(matches!(err, TimestampError::Duplicate { .. }), "{err}");
}

/// Regression sigstore-python#1482: a response without embedded certificates verifies with the
/// TSA certificate from the trusted root.
#[test]
fn issue1482_timestamp_with_no_cert() {
    let response = std::fs::read(testdata(
        "sigstore-python/tsa/issue1482-timestamp-with-no-cert",
    ))
    .unwrap();
    let message = std::fs::read(testdata("sigstore-python/tsa/issue1482-message")).unwrap();
    let token = token::parse(&response).unwrap();
    assert!(token.certificates.is_empty());
    let ts = verify_timestamp(&response, &message, &trusted_root(STAGING_ROOT)).unwrap();
    assert_eq!(ts.tsa, STAGING_TSA);
    let mut other = message.clone();
    other[5] ^= 1;
    assert!(matches!(
        verify_timestamp(&response, &other, &trusted_root(STAGING_ROOT)),
        Err(TimestampError::ImprintMismatch)
    ));
}

#[test]
fn timestamp_in_the_wrong_trust_root() {
    // The staging TSA's token checked against the production root.
    let (bundle, _) = conformance("rekor2-happy-path");
    let prod = trusted_root(crate::x509::tests::PROD_ROOT);
    let err = verify_timestamp(
        &bundle.verification_material.rfc3161_timestamps[0],
        &signature_bytes(&bundle),
        &prod,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            TimestampError::Untrusted(_) | TimestampError::NoSignerCertificate
        ),
        "{err}"
    );
}
