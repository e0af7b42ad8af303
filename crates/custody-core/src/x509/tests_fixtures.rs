//! Chain attacks, the Fulcio profile and identity policy, on fixtures named after the attack
//! they carry (`tests/fixtures/x509`, made by `scripts/gen-x509-fixtures.py`: a throwaway test CA,
//! leaves valid 2024-01-01T00:00:00Z..00:10:00Z).

use super::tests::{conformance, integrated_time, leaf_and_rest, ts};
use super::*;
use crate::trust_root::{CertificateAuthority, DistinguishedName, ValidityPeriod};

const GHA: &str = "https://token.actions.githubusercontent.com";
const BEACON: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";

fn fixture(name: &str) -> Vec<u8> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/x509");
    std::fs::read(dir.join(name)).unwrap()
}

fn fixture_root() -> TrustedRoot {
    TrustedRoot {
        media_type: crate::trust_root::TRUSTED_ROOT_V0_2.into(),
        tlogs: vec![],
        certificate_authorities: vec![CertificateAuthority {
            subject: DistinguishedName::default(),
            uri: "https://fulcio.custody.test".into(),
            cert_chain: vec![fixture("intermediate.der"), fixture("root.der")],
            valid_for: ValidityPeriod {
                start: Some(ts(2023, 1, 1, 0, 0, 0)),
                end: None,
            },
            operator: None,
        }],
        ctlogs: vec![],
        timestamp_authorities: vec![],
    }
}

fn verify_fixture(name: &str) -> Result<VerifiedCertificate, CertError> {
    verify_chain(
        &fixture(name),
        &[],
        &fixture_root(),
        ts(2024, 1, 1, 0, 5, 0),
    )
}

#[test]
fn conformance_default_identity() {
    let (bundle, root) = conformance("happy-path-v0.3");
    let (leaf, _) = leaf_and_rest(&bundle);
    let cert = verify_chain(&leaf, &[], &root, integrated_time(&bundle).unwrap()).unwrap();
    IdentityMatcher::exact(BEACON, GHA).check(&cert).unwrap();
    assert_eq!(cert.identity, SubjectAlternativeName::Uri(BEACON.into()));
    let err = IdentityMatcher::exact("https://github.com/good/x", GHA)
        .check(&cert)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("identity {BEACON} does not match the required https://github.com/good/x")
    );
    let err = IdentityMatcher::exact(BEACON, "https://accounts.google.com")
        .check(&cert)
        .unwrap_err();
    assert!(matches!(err, IdentityError::IssuerMismatch { .. }), "{err}");
}

#[test]
fn identity_prefix_substring() {
    let good = IdentityMatcher::exact("https://github.com/good/x", GHA);
    good.check_values("https://github.com/good/x", Some(GHA))
        .unwrap();
    for evil in [
        "https://github.com/good/xevil",
        "https://github.com/good",
        "https://github.com/good/x/",
        "xhttps://github.com/good/x",
        "",
    ] {
        let err = good.check_values(evil, Some(GHA)).unwrap_err();
        assert!(matches!(err, IdentityError::SanMismatch { .. }), "{evil}");
    }
    // Issuer too: a prefix of the right issuer is not the issuer.
    assert!(
        good.check_values(
            "https://github.com/good/x",
            Some("https://token.actions.githubusercontent.com.evil")
        )
        .is_err()
    );
    let err = IdentityMatcher::exact("https://github.com/good/x", GHA)
        .check_values("https://github.com/evil/x", Some(GHA))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "identity https://github.com/evil/x does not match the required https://github.com/good/x"
    );
}

#[test]
fn regex_unanchored_suffix() {
    let matcher = |san: &str| IdentityMatcher {
        san: IdentityPattern::regex(san).unwrap(),
        issuer: IdentityPattern::exact(GHA),
    };
    let m = matcher(r"https://github\.com/good/.*");
    m.check_values("https://github.com/good/x", Some(GHA))
        .unwrap();
    assert!(
        m.check_values("https://evil.example/?https://github.com/good/x", Some(GHA))
            .is_err()
    );
    // A pattern that would match by search must match the whole identity.
    let m = matcher("good");
    assert!(
        m.check_values("https://github.com/good/x", Some(GHA))
            .is_err()
    );
    let m = matcher(r"https://github\.com/good/x");
    assert!(
        m.check_values("https://github.com/good/x@evil", Some(GHA))
            .is_err()
    );
    // Alternation is anchored as a whole: ^(?:a|b)$, not ^a|b$.
    let m = matcher("https://good|https://also-good");
    m.check_values("https://also-good", Some(GHA)).unwrap();
    assert!(
        m.check_values("https://good.evil.example", Some(GHA))
            .is_err()
    );
    assert!(m.check_values("evil-https://also-good", Some(GHA)).is_err());
    let err = m.check_values("x", Some(GHA)).unwrap_err().to_string();
    assert!(
        err.contains("pattern ^(?:https://good|https://also-good)$"),
        "{err}"
    );
    // Issuer regexes are anchored the same way.
    let issuer = IdentityMatcher {
        san: IdentityPattern::exact("a"),
        issuer: IdentityPattern::regex("https://token").unwrap(),
    };
    assert!(issuer.check_values("a", Some(GHA)).is_err());
    assert!(matches!(
        IdentityPattern::regex("("),
        Err(IdentityError::InvalidRegex { .. })
    ));
}

#[test]
fn issuer_v1_v2_disagree() {
    let err = verify_fixture("issuer-v1-v2-disagree.der").unwrap_err();
    assert!(
        matches!(err, CertError::IssuerExtensionsDisagree { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("https://evil.example"), "{err}");
    assert!(FulcioClaims::from_certificate_der(&fixture("issuer-v1-v2-disagree.der")).is_err());
}

#[test]
fn issuer_extensions_v1_fallback_and_v2_encoding() {
    let good = verify_fixture("good-leaf.der").unwrap();
    assert_eq!(good.claims.issuer.as_deref(), Some(GHA));
    IdentityMatcher::exact("https://github.com/good/x", GHA)
        .check(&good)
        .unwrap();
    let v1 = verify_fixture("issuer-v1-only.der").unwrap();
    assert_eq!(v1.claims.issuer.as_deref(), Some(GHA));
    // `.1.8` holding raw bytes instead of a DER UTF8String (gotcha §11.7) is refused.
    let err = verify_fixture("issuer-v2-raw-not-der.der").unwrap_err();
    assert!(
        matches!(err, CertError::MalformedFulcioExtension { .. }),
        "{err}"
    );
    assert!(matches!(
        IdentityMatcher::exact("a", GHA).check_values("a", None),
        Err(IdentityError::NoIssuer)
    ));
}

#[test]
fn san_in_subject_cn_only() {
    let err = verify_fixture("san-in-subject-cn-only.der").unwrap_err();
    assert!(matches!(err, CertError::SanCount { count: 0 }), "{err}");
}

#[test]
fn san_must_be_exactly_one_supported_name() {
    let err = verify_fixture("san-two-names.der").unwrap_err();
    assert!(matches!(err, CertError::SanCount { count: 2 }), "{err}");
    let err = verify_fixture("san-dns-name.der").unwrap_err();
    assert!(matches!(err, CertError::UnsupportedSan { .. }), "{err}");
}

#[test]
fn email_san_from_staging_bundle() {
    let path = super::tests::testdata("sigstore-python/bundle.txt.sigstore");
    let bundle = crate::bundle::Bundle::from_json(&std::fs::read(path).unwrap()).unwrap();
    let (leaf, _) = leaf_and_rest(&bundle);
    assert_eq!(
        SubjectAlternativeName::from_certificate_der(&leaf).unwrap(),
        SubjectAlternativeName::Email("a@tny.town".into())
    );
    let claims = FulcioClaims::from_certificate_der(&leaf).unwrap();
    assert_eq!(
        claims.issuer.as_deref(),
        Some("https://github.com/login/oauth")
    );
}

#[test]
fn fixture_chain_attacks() {
    let root = fixture_root();
    let at = ts(2024, 1, 1, 0, 5, 0);
    let good = verify_chain(&fixture("good-leaf.der"), &[], &root, at).unwrap();
    assert_eq!(good.issuers.len(), 2);
    assert_eq!(good.authority_uri, "https://fulcio.custody.test");
    let err = |name: &str| verify_chain(&fixture(name), &[], &root, at).unwrap_err();
    assert!(matches!(err("leaf-is-ca.der"), CertError::LeafIsCa { .. }));
    assert!(matches!(
        err("leaf-eku-server-auth.der"),
        CertError::WrongExtendedKeyUsage { .. }
    ));
    assert!(matches!(
        err("leaf-unknown-critical-extension.der"),
        CertError::UnhandledCriticalExtension { .. }
    ));
    // Same issuer name as the trusted intermediate, other key: the signature decides.
    assert!(matches!(
        err("forged-intermediate-leaf.der"),
        CertError::IssuerKeyMismatch { .. }
    ));
    // Issuers supplied by the bundle are never trusted.
    let sub = fixture("pathlen-sub-ca.der");
    let e = verify_chain(
        &fixture("pathlen-exceeded-leaf.der"),
        std::slice::from_ref(&sub),
        &root,
        at,
    )
    .unwrap_err();
    assert!(matches!(e, CertError::UntrustedIssuer { .. }), "{e}");
    // …and when the trusted root does list the sub-CA, the intermediate's pathLen 0 forbids it.
    let mut deep = fixture_root();
    deep.certificate_authorities[0].cert_chain.insert(0, sub);
    let e = verify_chain(&fixture("pathlen-exceeded-leaf.der"), &[], &deep, at).unwrap_err();
    assert!(
        matches!(
            e,
            CertError::PathLengthExceeded {
                path_len: 0,
                below: 1,
                ..
            }
        ),
        "{e}"
    );
    let mut not_ca = fixture_root();
    not_ca.certificate_authorities[0]
        .cert_chain
        .insert(0, fixture("issuer-not-ca.der"));
    let e = verify_chain(&fixture("issued-by-not-ca.der"), &[], &not_ca, at).unwrap_err();
    assert!(matches!(e, CertError::IssuerNotCa { .. }), "{e}");
}

#[test]
fn authority_outside_its_valid_for_is_not_used() {
    let mut root = fixture_root();
    root.certificate_authorities[0].valid_for.end = Some(ts(2024, 1, 1, 0, 4, 59));
    let e = verify_chain(
        &fixture("good-leaf.der"),
        &[],
        &root,
        ts(2024, 1, 1, 0, 5, 0),
    )
    .unwrap_err();
    assert!(matches!(e, CertError::NoAuthorityValidAt { .. }), "{e}");
    root.certificate_authorities[0].valid_for.end = Some(ts(2024, 1, 1, 0, 5, 0));
    verify_chain(
        &fixture("good-leaf.der"),
        &[],
        &root,
        ts(2024, 1, 1, 0, 5, 0),
    )
    .unwrap();
}

#[test]
fn certificate_without_scts() {
    let cert = verify_fixture("good-leaf.der").unwrap();
    let err = verify_embedded_scts(&cert, &fixture_root(), 1).unwrap_err();
    assert!(matches!(err, SctError::Missing), "{err}");
}
