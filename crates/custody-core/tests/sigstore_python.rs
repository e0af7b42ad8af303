//! sigstore-python's own test assets (`testdata/sigstore-python`, table in testdata/README.md),
//! with the outcome and reason upstream expects.
//!
//! Which trusted root each asset uses (as in sigstore-python's tests):
//! * STAGING (`embedded-tuf-store/…sigstage.dev/trusted_root.json`): `bundle.txt` (a P-384
//!   certificate signing the SHA-256 digest), `bundle_v3*.txt`, `integration/bundle_v3.txt`,
//!   `staging-rekor-v2.txt`, `a.dsse.staging-rekor-v2.txt`, `bundle_cve_2022_36056.txt`,
//!   `bundle_no_log_entry.txt`; the `tsa/` bundles with staging alone (its TSA signed the late
//!   timestamp) and with staging whose TSAs are replaced by `tsa/ca.json` (the test TSA, as
//!   sigstore-python's fixture does; `tsa/trust_config.json` holds a later validity window);
//! * PRODUCTION (`embedded-tuf-store/…sigstore.dev/trusted_root.json`): `bundle_v3_github.whl`,
//!   `bundle_v3_no_signed_time.txt` (its entry is in the production log);
//! * either (refused when parsed): invalid version, no certificate, no checkpoint,
//!   `integration/Python-3.12.5.tgz` (no checkpoint).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use custody_core::bundle::Bundle;
use custody_core::digest::Sha256Digest;
use custody_core::timestamp::verify_timestamp;
use custody_core::trust_root::{CertificateAuthority, TrustedRoot};
use custody_core::verify::{
    Artifact, KeylessPolicy, TimeSource, VerifiedBundle, VerifiedSigner, verify_keyless,
};
use custody_core::x509::IdentityMatcher;
use support::*;

const GITHUB_OAUTH: &str = "https://github.com/login/oauth";
const GOOGLE: &str = "https://accounts.google.com";

fn asset(rel: &str) -> std::path::PathBuf {
    testdata(&format!("sigstore-python/{rel}"))
}

fn run(
    bundle: &str,
    artifact: Artifact<'_>,
    root: &TrustedRoot,
    san: &str,
    issuer: &str,
    threshold: usize,
) -> Result<VerifiedBundle, Failure> {
    let bundle = Bundle::from_json(&std::fs::read(asset(bundle)).unwrap())
        .map_err(custody_core::verify::VerifyError::from)?;
    let mut policy = KeylessPolicy::new(IdentityMatcher::exact(san, issuer));
    policy.timestamp_threshold = threshold;
    Ok(verify_keyless(&bundle, artifact, root, &policy)?)
}

fn file(rel: &str) -> Vec<u8> {
    std::fs::read(asset(rel)).unwrap()
}

#[test]
fn staging_bundles_verify_against_staging_only() {
    let (staging, production) = (staging_root(), production_root());
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "bundle.txt.sigstore",
            "bundle.txt",
            "a@tny.town",
            GITHUB_OAUTH,
        ),
        (
            "bundle_v3.txt.sigstore",
            "bundle_v3.txt",
            "william@yossarian.net",
            GITHUB_OAUTH,
        ),
        (
            "bundle_v3_alt.txt.sigstore",
            "bundle_v3_alt.txt",
            "william@yossarian.net",
            GITHUB_OAUTH,
        ),
        (
            "integration/bundle_v3.txt.sigstore",
            "integration/bundle_v3.txt",
            "william@yossarian.net",
            GITHUB_OAUTH,
        ),
        (
            "staging-rekor-v2.txt.sigstore.json",
            "staging-rekor-v2.txt",
            "jku@goto.fi",
            GITHUB_OAUTH,
        ),
        (
            "tsa/bundle.txt.sigstore",
            "tsa/bundle.txt",
            "alexis.challande@trailofbits.com",
            GOOGLE,
        ),
    ];
    for (bundle, artifact, san, issuer) in cases {
        let bytes = file(artifact);
        let ok = run(
            bundle,
            Artifact::from_bytes(&bytes),
            &staging,
            san,
            issuer,
            1,
        );
        assert!(ok.is_ok(), "{bundle}: {:?}", ok.err());
        // The staging CA is not production's: same bundle, production root, refused.
        let err = run(
            bundle,
            Artifact::from_bytes(&bytes),
            &production,
            san,
            issuer,
            1,
        )
        .unwrap_err();
        assert!(
            err.code.starts_with("tlog.") || err.code.starts_with("cert."),
            "{bundle}: {err:?}"
        );
    }
}

#[test]
fn dsse_over_rekor_v2_names_the_conformance_subject() {
    // The subject is the conformance `a.txt`, not the same-named file beside the bundle.
    let digest: Sha256Digest =
        "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"
            .parse()
            .unwrap();
    let bundle = "a.dsse.staging-rekor-v2.txt.sigstore.json";
    let v = run(
        bundle,
        Artifact::from_digest(digest),
        &staging_root(),
        DEFAULT_IDENTITY,
        DEFAULT_ISSUER,
        1,
    )
    .unwrap();
    assert!(matches!(v.times[0].source, TimeSource::Timestamp { .. }));
    let same_name = file("a.dsse.staging-rekor-v2.txt");
    let err = run(
        bundle,
        Artifact::from_bytes(&same_name),
        &staging_root(),
        DEFAULT_IDENTITY,
        DEFAULT_ISSUER,
        1,
    )
    .unwrap_err();
    assert_eq!(err.code, "artifact.not-a-subject", "{err:?}");
}

#[test]
fn github_bundle_carries_the_workflow_claims() {
    // The wheel itself is not among the assets: verify by the digest the bundle signs (the
    // signature, chain, SCT, log entry and identity are still all checked).
    let bundle = Bundle::from_json(&file("bundle_v3_github.whl.sigstore")).unwrap();
    let custody_core::bundle::BundleContent::MessageSignature {
        message_digest: Some((_, digest)),
        ..
    } = &bundle.content
    else {
        panic!("not a message signature")
    };
    let digest = Sha256Digest::from_slice(digest).unwrap();
    let san =
        "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2";
    let v = run(
        "bundle_v3_github.whl.sigstore",
        Artifact::from_digest(digest),
        &production_root(),
        san,
        DEFAULT_ISSUER,
        1,
    )
    .unwrap();
    let VerifiedSigner::Certificate(signer) = v.signer else {
        panic!("not keyless")
    };
    let c = &signer.claims;
    assert_eq!(c.github_workflow_ref.as_deref(), Some("refs/tags/v0.1.2"));
    assert_eq!(
        c.github_workflow_repository.as_deref(),
        Some("trailofbits/rfc8785.py")
    );
    assert_eq!(c.github_workflow_trigger.as_deref(), Some("release"));
    assert_eq!(c.github_workflow_name.as_deref(), Some("release"));
    assert!(
        c.github_workflow_sha
            .as_deref()
            .unwrap()
            .starts_with("d8b4a644")
    );
    assert_eq!(
        c.source_repository_uri.as_deref(),
        Some("https://github.com/trailofbits/rfc8785.py")
    );
    assert_eq!(c.source_repository_ref.as_deref(), Some("refs/tags/v0.1.2"));
    assert_eq!(c.build_trigger.as_deref(), Some("release"));
    assert_eq!(c.runner_environment.as_deref(), Some("github-hosted"));
    assert_eq!(
        c.source_repository_visibility_at_signing.as_deref(),
        Some("public")
    );
    assert_eq!(c.build_signer_uri.as_deref(), Some(san));
    assert_eq!(c.build_config_uri.as_deref(), Some(san));
}

#[test]
fn refused_bundles_are_refused_for_the_upstream_reason() {
    let staging = staging_root();
    let cases: &[(&str, &str, &str, &str)] = &[
        // CVE-2022-36056: a valid log entry for *another* signature: "inconsistent".
        (
            "bundle_cve_2022_36056.txt.sigstore",
            "bundle_cve_2022_36056.txt",
            "tlog.binding",
            "inconsistent",
        ),
        (
            "bundle_invalid_version.txt.sigstore",
            "bundle_invalid_version.txt",
            "bundle.version",
            "media type",
        ),
        (
            "bundle_no_cert_v1.txt.sigstore",
            "bundle_no_cert_v1.txt",
            "bundle.malformed",
            "non-empty certificate chain",
        ),
        (
            "bundle_no_log_entry.txt.sigstore",
            "bundle_no_log_entry.txt",
            "tlog.missing",
            "no log entry",
        ),
        (
            "bundle_no_checkpoint.txt.sigstore",
            "bundle_no_checkpoint.txt",
            "bundle.malformed",
            "checkpoint",
        ),
        (
            "integration/Python-3.12.5.tgz.sigstore",
            "integration/a.txt",
            "bundle.malformed",
            "checkpoint",
        ),
        (
            "tsa/bundle.many_timestamp.sigstore",
            "tsa/bundle.txt",
            "timestamp.limit",
            "at most 32",
        ),
        (
            "tsa/bundle.duplicate.sigstore",
            "tsa/bundle.txt",
            "timestamp.duplicate",
            "duplicate",
        ),
    ];
    for (bundle, artifact, code, words) in cases {
        let bytes = file(artifact);
        let err = run(
            bundle,
            Artifact::from_bytes(&bytes),
            &staging,
            "william@yossarian.net",
            GITHUB_OAUTH,
            1,
        )
        .unwrap_err();
        assert_eq!(err.code, *code, "{bundle}: {}", err.message);
        assert!(err.message.contains(words), "{bundle}: {}", err.message);
    }
}

#[test]
fn a_production_entry_without_a_signed_time_has_no_time() {
    // Its entry is in the production log: no SET, no RFC 3161 timestamp.
    let bytes = file("bundle_v3_no_signed_time.txt");
    let err = run(
        "bundle_v3_no_signed_time.txt.sigstore.json",
        Artifact::from_bytes(&bytes),
        &production_root(),
        "william@yossarian.net",
        GITHUB_OAUTH,
        1,
    )
    .unwrap_err();
    assert_eq!(err.code, "time.missing", "{}", err.message);
}

#[test]
fn timestamps_from_the_test_tsa() {
    // sigstore-python's fixture: the staging root with its TSAs replaced by the test TSA.
    let mut with_tsa = staging_root();
    with_tsa.timestamp_authorities =
        vec![CertificateAuthority::from_json(&file("tsa/ca.json")).unwrap()];
    let bytes = file("tsa/bundle.txt");
    let san = "alexis.challande@trailofbits.com";
    // The test TSA's time and the log's integrated time verify, and the certificate at each.
    // The bundle's second timestamp covers other bytes: it is not counted, and says so.
    let v = run(
        "tsa/bundle.txt.sigstore",
        Artifact::from_bytes(&bytes),
        &with_tsa,
        san,
        GOOGLE,
        2,
    )
    .unwrap();
    assert_eq!(v.times.len(), 2, "{:?}", v.times);
    assert_eq!(v.notes.len(), 1, "{:?}", v.notes);
    assert!(v.notes[0].contains("timestamp 2"), "{:?}", v.notes);
    let err = run(
        "tsa/bundle.txt.sigstore",
        Artifact::from_bytes(&bytes),
        &with_tsa,
        san,
        GOOGLE,
        3,
    )
    .unwrap_err();
    assert_eq!(err.code, "timestamp.invalid", "{}", err.message);
    // The staging root alone does not trust the test TSA: its timestamp gives no time (noted),
    // the log's integrated time still does.
    let v = run(
        "tsa/bundle.txt.sigstore",
        Artifact::from_bytes(&bytes),
        &staging_root(),
        san,
        GOOGLE,
        1,
    )
    .unwrap();
    assert_eq!(v.times.len(), 1);
    assert_eq!(v.notes.len(), 2, "{:?}", v.notes);
    let err = run(
        "tsa/bundle.txt.sigstore",
        Artifact::from_bytes(&bytes),
        &staging_root(),
        san,
        GOOGLE,
        2,
    )
    .unwrap_err();
    assert_eq!(err.code, "timestamp.invalid", "{}", err.message);

    // A timestamp (staging TSA) later than the certificate's validity: the hybrid model checks
    // the certificate at every verified time, so it fails at any threshold.
    for threshold in [1, 2] {
        let err = run(
            "tsa/bundle.txt.late_timestamp.sigstore",
            Artifact::from_bytes(&bytes),
            &staging_root(),
            san,
            GOOGLE,
            threshold,
        )
        .unwrap_err();
        assert_eq!(err.code, "cert.expired", "{}", err.message);
        assert!(
            err.message.contains("timestamp was issued"),
            "{}",
            err.message
        );
    }

    // sigstore-python issue 1482: a response without embedded certificates verifies against
    // the trusted root's TSA certificate.
    let response = file("tsa/issue1482-timestamp-with-no-cert");
    let message = file("tsa/issue1482-message");
    let ts = verify_timestamp(&response, &message, &staging_root()).unwrap();
    assert!(ts.tsa.contains("sigstage"), "{}", ts.tsa);
}
