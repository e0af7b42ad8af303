//! Rekor bodies: parsing every conformance body, rebuilding Rekor v2 bodies byte for byte, and
//! binding (each field that can differ, differing).

use std::path::PathBuf;

use super::*;
use crate::bundle::{Bundle, BundleContent, Material};
use crate::digest::Sha256Digest;
use crate::dsse::{Envelope, EnvelopeSignature};
use crate::keys::{KeyAlgorithm, SignedData, SigningKey};
use crate::verify::Artifact;

pub(crate) fn conformance(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata/sigstore-conformance/bundle-verify")
        .join(case)
}

pub(crate) fn bundle(case: &str) -> Bundle {
    let bytes = std::fs::read(conformance(case).join("bundle.sigstore.json")).unwrap();
    Bundle::from_json(&bytes).unwrap_or_else(|e| panic!("{case}: {e}"))
}

fn body(b: &Bundle) -> RekorBody {
    RekorBody::parse(&b.verification_material.tlog_entries[0].canonicalized_body).unwrap()
}

fn leaf_certificate(b: &Bundle) -> Vec<u8> {
    match &b.verification_material.content {
        Material::Certificate(der) => der.clone(),
        Material::X509CertificateChain(chain) => chain[0].clone(),
        Material::PublicKeyHint(_) => panic!("key bundle"),
    }
}

fn a_txt() -> Vec<u8> {
    std::fs::read(conformance("a.txt")).unwrap()
}

#[test]
fn every_conformance_body_parses_as_its_declared_kind() {
    let mut kinds = std::collections::BTreeMap::new();
    for dir in std::fs::read_dir(conformance("")).unwrap() {
        let path = dir.unwrap().path().join("bundle.sigstore.json");
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let Ok(b) = Bundle::from_json(&bytes) else {
            continue;
        };
        for e in &b.verification_material.tlog_entries {
            if path
                .to_string_lossy()
                .contains("intoto-log-entry-mismatch_fail")
            {
                // Its signature is base64 once, not twice: not what Rekor stores.
                assert!(matches!(
                    RekorBody::parse(&e.canonicalized_body),
                    Err(BodyError::NotDoubleBase64 {
                        field: "spec.content.envelope.signatures[].sig"
                    })
                ));
                continue;
            }
            let body = RekorBody::parse(&e.canonicalized_body)
                .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
            assert_eq!(
                (body.kind(), body.version()),
                (e.kind.as_str(), e.version.as_str())
            );
            *kinds
                .entry(format!("{} {}", body.kind(), body.version()))
                .or_insert(0) += 1;
        }
    }
    for kind in [
        "hashedrekord 0.0.1",
        "dsse 0.0.1",
        "intoto 0.0.2",
        "hashedrekord 0.0.2",
    ] {
        assert!(kinds.contains_key(kind), "{kind}: {kinds:?}");
    }
}

#[test]
fn rekor_v1_bodies_have_the_expected_fields() {
    let RekorBody::HashedRekordV001(h) = body(&bundle("happy-path-v0.3")) else {
        panic!()
    };
    assert_eq!(h.digest.algorithm, crate::bundle::HashAlgorithm::Sha2_256);
    assert_eq!(
        hex::encode(&h.digest.value),
        Sha256Digest::of(&a_txt()).hex()
    );
    assert!(matches!(
        h.signature.verifier,
        LoggedVerifier::Certificate(_)
    ));

    let RekorBody::IntotoV002(i) = body(&bundle("intoto-with-custom-trust-root")) else {
        panic!()
    };
    let b = bundle("intoto-with-custom-trust-root");
    let BundleContent::Dsse(envelope) = &b.content else {
        panic!()
    };
    // The payload and signature are base64 twice in the body; decoded, they are the envelope's.
    assert_eq!(i.payload.as_deref(), Some(envelope.payload.as_slice()));
    assert_eq!(i.signatures[0].signature, envelope.signatures[0].sig);
    assert!(i.envelope_hash.is_some());
}

fn hashed_rekord_parts(b: &Bundle) -> (LoggedDigest, Vec<u8>) {
    match &b.content {
        BundleContent::MessageSignature {
            message_digest: _,
            signature,
        } => (
            LoggedDigest {
                algorithm: crate::bundle::HashAlgorithm::Sha2_256,
                value: Sha256Digest::of(&a_txt()).0.to_vec(),
            },
            signature.clone(),
        ),
        BundleContent::Dsse(envelope) => (
            LoggedDigest {
                algorithm: crate::bundle::HashAlgorithm::Sha2_256,
                value: Sha256Digest::of(&envelope.pae()).0.to_vec(),
            },
            envelope.signatures[0].sig.clone(),
        ),
    }
}

/// custody's log must log exactly what rekor-tiles logs: rebuild the logged body from the
/// bundle's own materials and compare bytes.
#[test]
fn rekor_v2_hashedrekord_bodies_rebuild_byte_for_byte() {
    for case in [
        "rekor2-happy-path",
        "rekor2-dsse-happy-path",
        "bundle-with-sct-with-extensions",
        "rekor2-timestamp-with-embedded-cert",
    ] {
        let b = bundle(case);
        let (digest, signature) = hashed_rekord_parts(&b);
        let cert = LoggedVerifier::Certificate(leaf_certificate(&b));
        let key_details = cert.public_key().unwrap().sigstore_key_details().unwrap();
        let built = hashed_rekord_v002(&digest, &signature, &cert, key_details).unwrap();
        let logged = &b.verification_material.tlog_entries[0].canonicalized_body;
        assert_eq!(
            String::from_utf8_lossy(&built),
            String::from_utf8_lossy(logged),
            "{case}"
        );
    }
}

fn signed_envelope(key: &SigningKey) -> Envelope {
    let mut envelope = Envelope::new(
        crate::dsse::IN_TOTO_PAYLOAD_TYPE,
        br#"{"_type":"x"}"#.to_vec(),
    );
    let sig = key.sign(SignedData::Message(&envelope.pae())).unwrap();
    envelope.signatures.push(EnvelopeSignature {
        keyid: String::new(),
        sig,
    });
    envelope
}

#[test]
fn dsse_v002_body_round_trips_and_binds() {
    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
    let public = key.public_key();
    let envelope = signed_envelope(&key);
    let verifier = LoggedVerifier::PublicKey(public.spki_der().to_vec());
    let details = "PKIX_ECDSA_P256_SHA_256".to_owned();
    let built = dsse_v002(&envelope, &[(verifier.clone(), details.clone())]).unwrap();
    assert!(crate::jcs::is_canonical(&built));
    let text = String::from_utf8(built.clone()).unwrap();
    assert!(text.starts_with(r#"{"apiVersion":"0.0.2","kind":"dsse","spec":{"dsseV002":{"payloadHash":{"algorithm":"SHA2_256","digest":""#), "{text}");
    let parsed = RekorBody::parse(&built).unwrap();
    let RekorBody::DsseV002(d) = &parsed else {
        panic!("{parsed:?}")
    };
    assert_eq!(
        d.signatures[0].key_details.as_deref(),
        Some("PKIX_ECDSA_P256_SHA_256")
    );
    let content = BundleContent::Dsse(envelope.clone());
    bind(&parsed, &content, Signer::Key(&public), None).unwrap();

    // A verifier that does not verify the signature: rekor-tiles refuses the request.
    let other = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256)
        .unwrap()
        .public_key();
    let wrong = LoggedVerifier::PublicKey(other.spki_der().to_vec());
    assert!(matches!(
        dsse_v002(&envelope, &[(wrong, details.clone())]),
        Err(BuildError::UnverifiedSignature { index: 0 })
    ));
    // Key details that do not fit the key.
    assert!(matches!(
        dsse_v002(&envelope, &[(verifier.clone(), "PKIX_ED25519".into())]),
        Err(BuildError::KeyDetailsMismatch { .. })
    ));
    assert!(matches!(
        hashed_rekord_v002(
            &LoggedDigest {
                algorithm: crate::bundle::HashAlgorithm::Sha2_256,
                value: vec![]
            },
            b"s",
            &verifier,
            &details
        ),
        Err(BuildError::Empty { field: "digest" })
    ));
}

#[test]
fn binding_happy_cases() {
    let artifact_bytes = a_txt();
    let artifact = Artifact::from_bytes(&artifact_bytes);
    for case in [
        "happy-path-v0.1",
        "happy-path-v0.3",
        "happy-path-intoto-in-dsse-v3",
        "rekor2-happy-path",
        "rekor2-dsse-happy-path",
        "intoto-with-custom-trust-root",
    ] {
        let b = bundle(case);
        let cert = leaf_certificate(&b);
        let artifact =
            matches!(b.content, BundleContent::MessageSignature { .. }).then_some(&artifact);
        bind(&body(&b), &b.content, Signer::Certificate(&cert), artifact)
            .unwrap_or_else(|e| panic!("{case}: {e}"));
    }
}

#[test]
fn binding_names_the_field_that_differs() {
    let artifact_bytes = a_txt();
    let artifact = Artifact::from_bytes(&artifact_bytes);
    let wrong_material =
        std::fs::read(conformance("wrong-material_fail").join("artifact")).unwrap();
    let wrong_artifact = Artifact::from_bytes(&wrong_material);
    let cases: [(&str, &Artifact<'_>, BoundField); 9] = [
        (
            "incorrect-public-key_fail",
            &artifact,
            BoundField::Certificate,
        ),
        ("signature-mismatch_fail", &artifact, BoundField::Signature),
        (
            "message-digest-mismatch_fail",
            &artifact,
            BoundField::MessageDigest,
        ),
        (
            "wrong-hashedrekord-artifact_fail",
            &artifact,
            BoundField::Signature,
        ),
        ("wrong-material_fail", &wrong_artifact, BoundField::Artifact),
        ("dsse-mismatch-sig_fail", &artifact, BoundField::Signature),
        (
            "dsse-mismatch-envelope_fail",
            &artifact,
            BoundField::PayloadHash,
        ),
        (
            "rekor2-dsse-mismatch-envelope_fail",
            &artifact,
            BoundField::Signature,
        ),
        (
            "rekor2-dsse-invalid-sig_fail",
            &artifact,
            BoundField::Signature,
        ),
    ];
    for (case, artifact, field) in cases {
        let b = bundle(case);
        let cert = leaf_certificate(&b);
        let err = bind(
            &body(&b),
            &b.content,
            Signer::Certificate(&cert),
            Some(artifact),
        )
        .expect_err(case);
        let got = match &err {
            BindError::Mismatch { field } | BindError::DigestMismatch { field, .. } => *field,
            other => panic!("{case}: {other}"),
        };
        assert_eq!(got, field, "{case}: {err}");
        assert!(
            err.to_string()
                .starts_with("transparency log entry is inconsistent with the bundle's"),
            "{err}"
        );
    }
    let b = bundle("signature-mismatch_fail");
    let err = bind(
        &body(&b),
        &b.content,
        Signer::Certificate(&leaf_certificate(&b)),
        None,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "transparency log entry is inconsistent with the bundle's signature: the log recorded a different signature"
    );
}

#[test]
fn binding_refuses_wrong_signer_kind_and_content_kind() {
    let b = bundle("managed-key-happy-path");
    let key = crate::keys::PublicKey::from_pem(
        &std::fs::read(conformance("managed-key-happy-path").join("key.pub")).unwrap(),
    )
    .unwrap();
    bind(&body(&b), &b.content, Signer::Key(&key), None).unwrap();
    let other = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256)
        .unwrap()
        .public_key();
    assert_eq!(
        bind(&body(&b), &b.content, Signer::Key(&other), None),
        Err(BindError::Mismatch {
            field: BoundField::PublicKey
        })
    );
    assert!(matches!(
        bind(&body(&b), &b.content, Signer::Certificate(b"der"), None),
        Err(BindError::SignerKind { .. })
    ));
    let dsse = bundle("happy-path-intoto-in-dsse-v3");
    assert!(matches!(
        bind(&body(&b), &dsse.content, Signer::Key(&key), None),
        Err(BindError::ContentKind {
            kind: "hashedrekord",
            ..
        })
    ));
}

#[test]
fn non_canonical_and_unknown_bodies_are_refused() {
    let b = bundle("happy-path-v0.3");
    let text = String::from_utf8(
        b.verification_material.tlog_entries[0]
            .canonicalized_body
            .clone(),
    )
    .unwrap();
    let spaced = text.replacen(":", ": ", 1);
    assert!(matches!(
        RekorBody::parse(spaced.as_bytes()),
        Err(BodyError::NotCanonical)
    ));
    let dup = text.replacen(
        r#"{"apiVersion":"0.0.1","#,
        r#"{"apiVersion":"0.0.1","apiVersion":"0.0.1","#,
        1,
    );
    assert!(matches!(
        RekorBody::parse(dup.as_bytes()),
        Err(BodyError::NotCanonical)
    ));
    let rekord = text.replacen("hashedrekord", "rekord", 1);
    assert!(matches!(
        RekorBody::parse(rekord.as_bytes()),
        Err(BodyError::UnsupportedKind { .. })
    ));
    assert!(matches!(RekorBody::parse(b""), Err(BodyError::Empty)));
    assert!(matches!(
        RekorBody::parse(b"{}"),
        Err(BodyError::Schema { .. })
    ));
}
