//! Chain validation: sigstore-python's bogus x509 certificates, the conformance bundles'
//! Fulcio certificates against their trusted roots, and attack-named fixtures
//! (`tests/fixtures/x509`, made by `scripts/gen-x509-fixtures.py`).

use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};

use super::cert::pem_to_der;
use super::chain::{self, Purpose};
use super::*;
use crate::bundle::{Bundle, Material};
use crate::trust_root::{CertificateAuthority, DistinguishedName, TrustedRoot, ValidityPeriod};

pub(crate) fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata")
        .join(rel)
}

pub(crate) const PROD_ROOT: &str =
    "sigstore-python/embedded-tuf-store/https%3A%2F%2Ftuf-repo-cdn.sigstore.dev/trusted_root.json";
pub(crate) const STAGING_ROOT: &str =
    "sigstore-python/embedded-tuf-store/https%3A%2F%2Ftuf-repo-cdn.sigstage.dev/trusted_root.json";

pub(crate) fn trusted_root(rel: &str) -> TrustedRoot {
    TrustedRoot::from_json(&std::fs::read(testdata(rel)).unwrap()).unwrap()
}

/// A conformance case's bundle and trusted root (its own, or the production root).
pub(crate) fn conformance(case: &str) -> (Bundle, TrustedRoot) {
    let dir = testdata("sigstore-conformance/bundle-verify").join(case);
    let bundle =
        Bundle::from_json(&std::fs::read(dir.join("bundle.sigstore.json")).unwrap()).unwrap();
    let own = dir.join("trusted_root.json");
    let root = if own.exists() {
        TrustedRoot::from_json(&std::fs::read(own).unwrap()).unwrap()
    } else {
        trusted_root(PROD_ROOT)
    };
    (bundle, root)
}

/// The leaf and the rest of the bundle's chain.
pub(crate) fn leaf_and_rest(bundle: &Bundle) -> (Vec<u8>, Vec<Vec<u8>>) {
    match &bundle.verification_material.content {
        Material::Certificate(der) => (der.clone(), vec![]),
        Material::X509CertificateChain(chain) => (chain[0].clone(), chain[1..].to_vec()),
        Material::PublicKeyHint(_) => panic!("not a certificate bundle"),
    }
}

/// The (unverified) integrated time of the first tlog entry, if any.
pub(crate) fn integrated_time(bundle: &Bundle) -> Option<DateTime<Utc>> {
    let t = bundle
        .verification_material
        .tlog_entries
        .first()?
        .integrated_time;
    (t > 0).then(|| DateTime::from_timestamp(t, 0).unwrap())
}

/// The integrated time, or else the first timestamp's verified time.
pub(crate) fn signing_time(bundle: &Bundle, root: &TrustedRoot) -> DateTime<Utc> {
    integrated_time(bundle).unwrap_or_else(|| {
        let sig = crate::timestamp::tests::signature_bytes(bundle);
        let ts = &bundle.verification_material.rfc3161_timestamps[0];
        crate::timestamp::verify_timestamp(ts, &sig, root)
            .unwrap()
            .time
    })
}

pub(crate) fn ts(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

fn bogus(name: &str) -> Vec<u8> {
    pem_to_der(&std::fs::read(testdata("sigstore-python/x509").join(name)).unwrap()).unwrap()
}

#[test]
fn sigstore_python_x509_ca_table() {
    // testdata/README.md §2 (`cert_is_ca` / `cert_is_root_ca` in sigstore-python's test_utils).
    // (file, Some((is_ca, is_root_ca)) or None = "invalid X.509 certificate")
    let table: [(&str, Option<(bool, bool)>); 10] = [
        ("bogus-root.pem", Some((true, true))),
        ("bogus-intermediate.pem", Some((true, false))),
        ("bogus-intermediate-with-eku.pem", Some((true, false))),
        ("bogus-leaf.pem", Some((false, false))),
        ("bogus-leaf-invalid-ku.pem", Some((false, false))),
        ("bogus-leaf-invalid-eku.pem", Some((false, false))),
        ("bogus-leaf-missing-eku.pem", Some((false, false))),
        ("bogus-root-noncritical-bc.pem", None),
        ("bogus-root-invalid-ku.pem", None),
        ("bogus-root-missing-ku.pem", None),
    ];
    for (file, expected) in table {
        let der = bogus(file);
        match expected {
            Some((ca, root)) => {
                assert_eq!(cert_is_ca(&der).unwrap(), ca, "{file} cert_is_ca");
                assert_eq!(
                    cert_is_root_ca(&der).unwrap(),
                    root,
                    "{file} cert_is_root_ca"
                );
            }
            None => {
                for result in [cert_is_ca(&der), cert_is_root_ca(&der)] {
                    let err = result.unwrap_err().to_string();
                    assert!(err.contains("invalid X.509 certificate"), "{file}: {err}");
                }
            }
        }
    }
}

/// The bogus certificates as a code-signing chain: leaf → intermediate → root (RSA-2048).
#[test]
fn sigstore_python_bogus_chain_path_validation() {
    let authority = CertificateAuthority {
        subject: DistinguishedName::default(),
        uri: "bogus".into(),
        cert_chain: vec![bogus("bogus-intermediate.pem"), bogus("bogus-root.pem")],
        valid_for: ValidityPeriod {
            start: Some(ts(2023, 1, 1, 0, 0, 0)),
            end: None,
        },
        operator: None,
    };
    let at = ts(2024, 6, 1, 0, 0, 0);
    let check = |leaf: &str| {
        let leaf = Cert::parse(&bogus(leaf), "leaf").unwrap();
        chain::validate(
            &leaf,
            std::slice::from_ref(&authority),
            at,
            Purpose::CodeSigning,
        )
        .map(|_| ())
    };
    check("bogus-leaf.pem").unwrap();
    assert!(matches!(
        check("bogus-leaf-invalid-eku.pem"),
        Err(CertError::WrongExtendedKeyUsage { .. })
    ));
    assert!(matches!(
        check("bogus-leaf-missing-eku.pem"),
        Err(CertError::WrongExtendedKeyUsage { .. })
    ));
    assert!(matches!(
        check("bogus-leaf-invalid-ku.pem"),
        Err(CertError::LeafWithoutDigitalSignature { .. })
    ));
    // The root presented as a leaf: a CA is never a signing certificate.
    assert!(matches!(
        check("bogus-intermediate.pem"),
        Err(CertError::LeafIsCa { .. })
    ));
    let before = ts(2022, 12, 31, 23, 59, 59);
    let leaf = Cert::parse(&bogus("bogus-leaf.pem"), "leaf").unwrap();
    assert!(matches!(
        chain::validate(
            &leaf,
            std::slice::from_ref(&authority),
            before,
            Purpose::CodeSigning
        ),
        Err(CertError::NoAuthorityValidAt { .. })
    ));
}

/// Every conformance case that must verify, with a certificate: the chain validates at the
/// integrated time, identity matches the case's (or the default) identity, SCTs verify.
#[test]
fn conformance_happy_path_chains() {
    for case in [
        "happy-path-v0.1",
        "happy-path-v0.3",
        "happy-path-v0.3-new-mediaType",
        "happy-path-intoto-in-dsse-v3",
        "intoto-with-custom-trust-root",
        "bundle-with-sct-with-extensions",
    ] {
        let (bundle, root) = conformance(case);
        let (leaf, rest) = leaf_and_rest(&bundle);
        let at = signing_time(&bundle, &root);
        let cert = verify_chain(&leaf, &rest, &root, at).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert!(cert.not_before <= at && at <= cert.not_after, "{case}");
        let scts = verify_embedded_scts(&cert, &root, 1).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert!(!scts.is_empty(), "{case}");
    }
}

/// The bundle parser refuses this v0.1 bundle already (no checkpoint); the chain is read from
/// the JSON directly to show that the certificate check refuses it on its own.
#[test]
fn bundle_with_root_cert_fail() {
    let path = testdata(
        "sigstore-conformance/bundle-verify/bundle-with-root-cert_fail/bundle.sigstore.json",
    );
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let chain: Vec<Vec<u8>> = json["verificationMaterial"]["x509CertificateChain"]["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| crate::encoding::base64_decode_strict(c["rawBytes"].as_str().unwrap()).unwrap())
        .collect();
    let t = json["verificationMaterial"]["tlogEntries"][0]["integratedTime"]
        .as_str()
        .unwrap();
    let at = DateTime::from_timestamp(t.parse().unwrap(), 0).unwrap();
    let root = trusted_root(PROD_ROOT);
    let err = verify_chain(&chain[0], &chain[1..], &root, at).unwrap_err();
    assert!(matches!(err, CertError::RootInBundle { .. }), "{err}");
    assert!(err.to_string().contains("O=sigstore.dev"), "{err}");
}

#[test]
fn bundle_from_wrong_instance_fail() {
    // A staging certificate checked against the production root.
    let (bundle, root) = conformance("bundle-from-wrong-instance_fail");
    let (leaf, rest) = leaf_and_rest(&bundle);
    let err = verify_chain(&leaf, &rest, &root, integrated_time(&bundle).unwrap()).unwrap_err();
    assert!(matches!(err, CertError::IssuerKeyMismatch { .. }), "{err}");
    assert!(err.to_string().starts_with("certificate was not issued by any certificate authority in the trusted root: one named CN=sigstore-intermediate"), "{err}");
}

#[test]
fn intoto_set_outside_signing_cert_validity_fail() {
    let (bundle, root) = conformance("intoto-set-outside-signing-cert-validity_fail");
    let (leaf, rest) = leaf_and_rest(&bundle);
    let err = verify_chain(&leaf, &rest, &root, integrated_time(&bundle).unwrap()).unwrap_err();
    assert!(
        matches!(
            err,
            CertError::Expired { .. } | CertError::NotYetValid { .. }
        ),
        "{err}"
    );
}

#[test]
fn validity_is_inclusive_and_messages_name_the_times() {
    let (bundle, root) = conformance("happy-path-v0.3");
    let (leaf, _) = leaf_and_rest(&bundle);
    let cert = verify_chain(&leaf, &[], &root, integrated_time(&bundle).unwrap()).unwrap();
    verify_chain(&leaf, &[], &root, cert.not_after).unwrap();
    verify_chain(&leaf, &[], &root, cert.not_before).unwrap();
    let late = cert.not_after + chrono::Duration::seconds(1);
    let err = verify_chain(&leaf, &[], &root, late)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("certificate (empty subject) expired before the signing time (not after "),
        "{err}"
    );
    let early = cert.not_before - chrono::Duration::seconds(1);
    assert!(matches!(
        verify_chain(&leaf, &[], &root, early),
        Err(CertError::NotYetValid { .. })
    ));
}

#[test]
fn sigstore_python_github_claims() {
    let bundle = Bundle::from_json(
        &std::fs::read(testdata("sigstore-python/bundle_v3_github.whl.sigstore")).unwrap(),
    )
    .unwrap();
    let (leaf, rest) = leaf_and_rest(&bundle);
    let cert = verify_chain(
        &leaf,
        &rest,
        &trusted_root(PROD_ROOT),
        integrated_time(&bundle).unwrap(),
    )
    .unwrap();
    assert_eq!(
        cert.identity,
        SubjectAlternativeName::Uri("https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2".into())
    );
    let c = &cert.claims;
    assert_eq!(
        c.issuer.as_deref(),
        Some("https://token.actions.githubusercontent.com")
    );
    assert_eq!(c.github_workflow_trigger.as_deref(), Some("release"));
    assert_eq!(c.github_workflow_ref.as_deref(), Some("refs/tags/v0.1.2"));
    assert_eq!(
        c.github_workflow_repository.as_deref(),
        Some("trailofbits/rfc8785.py")
    );
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
    assert_eq!(
        c.source_repository_owner_uri.as_deref(),
        Some("https://github.com/trailofbits")
    );
    assert_eq!(c.runner_environment.as_deref(), Some("github-hosted"));
    assert_eq!(c.build_trigger.as_deref(), Some("release"));
    assert!(
        c.run_invocation_uri
            .as_deref()
            .unwrap()
            .starts_with("https://github.com/trailofbits/rfc8785.py/actions/runs/")
    );
    let json = serde_json::to_value(c).unwrap();
    assert_eq!(
        json["source_repository_digest"],
        json["github_workflow_sha"]
    );
}

#[test]
fn scts_need_a_trusted_log_valid_at_the_sct_time() {
    let (bundle, mut root) = conformance("happy-path-v0.3");
    let (leaf, _) = leaf_and_rest(&bundle);
    let cert = verify_chain(&leaf, &[], &root, integrated_time(&bundle).unwrap()).unwrap();
    let sct = verify_embedded_scts(&cert, &root, 1).unwrap();
    let err = verify_embedded_scts(&cert, &root, 2).unwrap_err();
    assert!(
        matches!(
            err,
            SctError::Threshold {
                verified: 1,
                required: 2,
                ..
            }
        ),
        "{err}"
    );
    // The CT log retired before the SCT was issued.
    for log in &mut root.ctlogs {
        if log.log_id == sct[0].log_id {
            log.public_key.valid_for.end = Some(sct[0].timestamp - chrono::Duration::seconds(1));
        }
    }
    let err = verify_embedded_scts(&cert, &root, 1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("was not trusted at the SCT time"), "{err}");
    root.ctlogs.clear();
    let err = verify_embedded_scts(&cert, &root, 1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not in the trusted root"), "{err}");
}
