//! The Sigstore conformance suite (`bundle-verify`), every case, in process: a case verifies
//! exactly when its directory name lacks `_fail`, and each refusal is for the right reason (its
//! stable code). Defaults per `testdata/README.md`: artifact `a.txt` (for DSSE the in-toto
//! subject), the beacon identity and GitHub Actions issuer, the production trusted root.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::*;

/// The reason each `_fail` case must be refused for. Where the reason differs from the case's
/// name, the comment says why the bundle never gets that far.
const REASONS: &[(&str, &str)] = &[
    ("bundle-empty-certificate-chain_fail", "bundle.malformed"),
    ("bundle-from-wrong-instance_fail", "tlog.unknown-log"), // staging log, production root
    ("bundle-invalid-base64-signature_fail", "bundle.malformed"),
    ("bundle-malformed-json_fail", "bundle.malformed"),
    ("bundle-negative-log-index_fail", "bundle.malformed"),
    ("bundle-unknown-version_fail", "bundle.version"),
    // v0.2 bundle whose inclusion proof lacks the REQUIRED checkpoint: refused at parse, before
    // the root certificate in its chain is seen (`x509` tests the root-in-bundle rule itself).
    ("bundle-with-root-cert_fail", "bundle.malformed"),
    ("checkpoint-bad-keyhint_fail", "tlog.checkpoint"),
    ("dsse-invalid-sig_fail", "tlog.binding"), // the log recorded the valid signature
    ("dsse-mismatch-envelope_fail", "tlog.binding"),
    ("dsse-mismatch-sig_fail", "tlog.binding"),
    ("inclusion-proof-corrupted-hash_fail", "tlog.inclusion"),
    ("incorrect-public-key_fail", "tlog.promise"), // edited body: the SET no longer verifies
    ("intoto-log-entry-mismatch_fail", "tlog.body"),
    ("intoto-missing-inclusion-proof_fail", "bundle.malformed"),
    (
        "intoto-set-outside-signing-cert-validity_fail",
        "cert.expired",
    ),
    (
        "intoto-tsa-timestamp-outside-cert-validity_fail",
        "cert.expired",
    ),
    ("invalid-checkpoint-signature_fail", "tlog.checkpoint"),
    ("invalid-inclusion-proof_fail", "bundle.malformed"), // proof without checkpoint
    ("managed-key-no-key_fail", "material.key"),
    ("managed-key-wrong-key_fail", "key.invalid"), // its key.pub is deliberately corrupt
    ("message-digest-mismatch_fail", "artifact.mismatch"),
    (
        "rekor2-checkpoint-missing-log-signature_fail",
        "tlog.checkpoint",
    ),
    ("rekor2-checkpoint-missing-origin_fail", "tlog.checkpoint"),
    (
        "rekor2-checkpoint-missing-root-hash_fail",
        "tlog.checkpoint",
    ),
    ("rekor2-checkpoint-missing-size_fail", "tlog.checkpoint"),
    (
        "rekor2-checkpoint-no-matching-signature_fail",
        "tlog.checkpoint",
    ),
    ("rekor2-dsse-invalid-sig_fail", "tlog.binding"),
    ("rekor2-dsse-mismatch-envelope_fail", "tlog.binding"),
    ("rekor2-no-inclusion-proof_fail", "bundle.malformed"),
    ("rekor2-no-timestamp_fail", "time.missing"),
    (
        "rekor2-timestamp-outside-trust-root-tsa-validity_fail",
        "timestamp.invalid",
    ),
    (
        "rekor2-timestamp-outside-tsa-cert-validity_fail",
        "timestamp.invalid",
    ),
    (
        "rekor2-timestamp-payload-mismatch_fail",
        "timestamp.invalid",
    ),
    (
        "rekor2-timestamp-untrusted-tsa-with-embedded-cert_fail",
        "timestamp.invalid",
    ),
    ("rekor2-timestamp-with-incorrect-time_fail", "cert.expired"),
    ("signature-mismatch_fail", "tlog.binding"),
    ("wrong-hashedrekord-artifact_fail", "tlog.binding"),
    ("wrong-hashedrekord-cert-and-sig_fail", "tlog.binding"),
    ("wrong-material_fail", "artifact.mismatch"),
];

fn case_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(conformance_dir())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_conformance_case() {
    let names = case_names();
    let (mut ran, mut passed, mut refused) = (0, 0, 0);
    let mut wrong = Vec::new();
    for name in &names {
        let case = Case::load(name);
        ran += 1;
        let result = case.verify();
        let expected_code = REASONS.iter().find(|(n, _)| n == name).map(|(_, c)| *c);
        match (&result, case.expect_ok(), expected_code) {
            (Ok(_), true, None) => passed += 1,
            (Err(f), false, Some(code)) if f.code == code => {
                refused += 1;
                // Every refusal is one line that says what failed.
                assert!(!f.message.contains('\n'), "{name}: {}", f.message);
            }
            (Ok(_), _, _) => wrong.push(format!("{name}: verified")),
            (Err(f), _, expected) => wrong.push(format!(
                "{name}: refused {} (expected {expected:?}): {}",
                f.code, f.message
            )),
        }
    }
    assert!(wrong.is_empty(), "wrong outcomes:\n{}", wrong.join("\n"));
    // No silent skips: every directory ran, and the reason table names only real `_fail` cases.
    assert_eq!(ran, names.len());
    assert_eq!(passed + refused, names.len());
    assert_eq!(refused, REASONS.len());
    assert_eq!(names.len(), 56, "the suite changed: review the new cases");
    eprintln!(
        "conformance: {ran} cases, {passed} verified, {refused} refused for the right reason"
    );
}

#[test]
fn happy_cases_report_what_was_verified() {
    use custody_core::verify::{TimeSource, VerifiedSigner};
    for name in [
        "happy-path-v0.3",
        "rekor2-happy-path",
        "happy-path-intoto-in-dsse-v3",
    ] {
        let v = Case::load(name).verify().unwrap();
        let VerifiedSigner::Certificate(signer) = &v.signer else {
            panic!("{name}: not a certificate signer")
        };
        assert_eq!(signer.identity.as_str(), DEFAULT_IDENTITY);
        assert_eq!(signer.issuer, DEFAULT_ISSUER);
        assert_eq!(
            signer.claims.source_repository_uri.as_deref(),
            Some("https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon")
        );
        assert!(!signer.scts.is_empty(), "{name}");
        assert!(!v.times.is_empty(), "{name}");
        assert_eq!(v.tlog_entries.len(), 1, "{name}");
        // Rekor v2 gives no time of its own: its one time is the TSA's.
        let tsa = v
            .times
            .iter()
            .all(|t| matches!(t.source, TimeSource::Timestamp { .. }));
        assert_eq!(tsa, name == "rekor2-happy-path", "{name}: {:?}", v.times);
    }
}

/// Identity policy through the whole keyless path: nothing short of the whole SAN and the whole
/// issuer matches, however the pattern is written.
#[test]
fn identity_cannot_be_fooled_by_substrings_or_unanchored_patterns() {
    use custody_core::x509::{IdentityMatcher, IdentityPattern};
    let case = Case::load("happy-path-v0.3");
    let check = |san: IdentityPattern, issuer: IdentityPattern| {
        verify_bytes(
            &case.bundle_json,
            &case.artifact,
            &case.root,
            None,
            &IdentityMatcher { san, issuer },
        )
    };
    let exact = |s: &str| IdentityPattern::exact(s);
    let re = |p: &str| IdentityPattern::regex(p).unwrap();
    let issuer = || exact(DEFAULT_ISSUER);

    // What must verify.
    assert!(check(exact(DEFAULT_IDENTITY), issuer()).is_ok());
    assert!(check(re("https://github\\.com/sigstore-conformance/.*"), issuer()).is_ok());
    assert!(
        check(
            re(".*"),
            re("https://token\\.actions\\.githubusercontent\\.com")
        )
        .is_ok()
    );

    let refused_san: Vec<IdentityPattern> = vec![
        exact("https://github.com/sigstore-conformance/"),
        exact(&DEFAULT_IDENTITY[..DEFAULT_IDENTITY.len() - 1]),
        exact(&format!("{DEFAULT_IDENTITY}\n")),
        exact(&DEFAULT_IDENTITY.to_uppercase()),
        exact(&format!(" {DEFAULT_IDENTITY}")),
        re("sigstore-conformance"),
        re("https://github\\.com/sigstore-conformance/"),
        re("extremely-dangerous-oidc-beacon\\.yml@refs/heads/main"),
        re("https://github\\.com/sigstore-conformance/.*@refs/heads/mai"),
        re("^https://github\\.com/sigstore-conformance/"), // an explicit ^ does not unanchor the end
        re("https://github\\.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon"),
        re("(?m)^https://github\\.com/sigstore-conformance/"), // flags do not unanchor either
        re("https://github.com/other-org/.*|nothing"),
    ];
    for san in refused_san {
        let shown = san.to_string();
        let Err(err) = check(san, issuer()) else {
            panic!("{shown} matched")
        };
        assert_eq!(err.code, "identity.mismatch", "{shown}: {}", err.message);
        assert!(err.message.contains("fully anchored"), "{}", err.message);
    }
    for bad_issuer in [
        exact("https://token.actions.githubusercontent"),
        exact("https://token.actions.githubusercontent.com/"),
        re("token\\.actions"),
        re("https://token\\.actions\\.githubusercontent\\.co"),
        re("https://accounts\\.google\\.com"),
    ] {
        let shown = bad_issuer.to_string();
        let Err(err) = check(exact(DEFAULT_IDENTITY), bad_issuer) else {
            panic!("{shown} matched")
        };
        assert_eq!(err.code, "identity.issuer-mismatch", "{}", err.message);
    }
}
