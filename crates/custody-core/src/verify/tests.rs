//! Key-based verification: both content kinds, wrong keys and artifacts, mutated bundles.
use proptest::prelude::*;

use super::*;
use crate::bundle::BundleContent;
use crate::dsse::IN_TOTO_PAYLOAD_TYPE;
use crate::dsse::{Envelope, EnvelopeSignature, pae};
use crate::intoto::ResourceDescriptor;

const ARTIFACT: &[u8] = b"the artifact";

fn hint(key: &PublicKey) -> String {
    crate::encoding::base64_encode(&key.key_id().0)
}

fn message_bundle(key: &crate::keys::SigningKey) -> String {
    let digest = Sha256Digest::of(ARTIFACT);
    let sig = key
        .sign(SignedData::Sha256Digest(digest.as_bytes()))
        .unwrap();
    Bundle::new_message_signature_v03(hint(&key.public_key()), &digest, sig).to_json()
}

fn dsse_bundle(key: &crate::keys::SigningKey) -> String {
    let digest = Sha256Digest::of(ARTIFACT);
    let statement = Statement::new_v1(
        vec![ResourceDescriptor::from_sha256("a", &digest)],
        "https://example.com/p".to_string(),
        serde_json::json!({"k": "v"}),
    );
    let payload = statement.to_json_bytes();
    let sig = key
        .sign(SignedData::Message(&pae(IN_TOTO_PAYLOAD_TYPE, &payload)))
        .unwrap();
    let envelope = Envelope {
        payload,
        payload_type: IN_TOTO_PAYLOAD_TYPE.to_string(),
        signatures: vec![EnvelopeSignature {
            keyid: String::new(),
            sig,
        }],
    };
    Bundle::new_dsse_v03(hint(&key.public_key()), envelope).to_json()
}

/// What a signature covers; a verifying bundle must carry exactly the original's. (A message
/// signature covers the artifact itself: its `messageDigest` is a hint that may be absent, but
/// when present it must be the artifact's, which `verify` checks.)
fn signed_content(bundle: &Bundle) -> (Vec<u8>, Vec<u8>) {
    match &bundle.content {
        BundleContent::MessageSignature { signature, .. } => (signature.clone(), Vec::new()),
        BundleContent::Dsse(env) => (
            env.signatures[0].sig.clone(),
            pae(&env.payload_type, &env.payload),
        ),
    }
}

#[test]
fn both_kinds_verify_and_refuse_other_artifacts_and_keys() {
    for alg in [KeyAlgorithm::EcdsaP256Sha256, KeyAlgorithm::Ed25519] {
        let key = crate::keys::SigningKey::generate(alg).unwrap();
        let other = crate::keys::SigningKey::generate(alg).unwrap().public_key();
        let public = key.public_key();
        let bundles = [dsse_bundle(&key)]
            .into_iter()
            .chain((alg != KeyAlgorithm::Ed25519).then(|| message_bundle(&key)));
        for json in bundles {
            let ok =
                verify_with_key(json.as_bytes(), Artifact::from_bytes(ARTIFACT), &public).unwrap();
            assert_eq!(ok.tlog, TlogStatus::Absent);
            assert!(ok.notes.is_empty(), "{:?}", ok.notes);
            assert!(
                verify_with_key(json.as_bytes(), Artifact::from_bytes(b"other"), &public).is_err()
            );
            assert!(
                verify_with_key(json.as_bytes(), Artifact::from_bytes(ARTIFACT), &other).is_err()
            );
        }
    }
}

#[test]
fn ed25519_message_signature_needs_the_bytes() {
    let key = crate::keys::SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
    let digest = Sha256Digest::of(ARTIFACT);
    let sig = key.sign(SignedData::Message(ARTIFACT)).unwrap();
    let json = Bundle::new_message_signature_v03(hint(&key.public_key()), &digest, sig).to_json();
    let public = key.public_key();
    assert!(verify_with_key(json.as_bytes(), Artifact::from_bytes(ARTIFACT), &public).is_ok());
    let err = verify_with_key(json.as_bytes(), Artifact::from_digest(digest), &public).unwrap_err();
    assert!(err.is_usage(), "{err}");
}

#[test]
fn certificate_bundles_are_not_key_bundles() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata/sigstore-conformance/bundle-verify/happy-path-v0.3/bundle.sigstore.json");
    let key = crate::keys::SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256)
        .unwrap()
        .public_key();
    let err = verify_with_key(
        &std::fs::read(path).unwrap(),
        Artifact::from_bytes(ARTIFACT),
        &key,
    )
    .unwrap_err();
    assert!(matches!(err, VerifyError::CertificateBundle), "{err}");
}

fn keys() -> &'static (crate::keys::SigningKey, String, String) {
    static KEYS: std::sync::OnceLock<(crate::keys::SigningKey, String, String)> =
        std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let key = crate::keys::SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let (m, d) = (message_bundle(&key), dsse_bundle(&key));
        (key, m, d)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 768, ..ProptestConfig::default() })]
    /// Mutating any byte of a valid bundle never panics, and a mutated bundle verifies only if
    /// what the signature covers is byte-for-byte the original's (e.g. a changed key hint,
    /// which is an unauthenticated hint by specification).
    #[test]
    fn mutated_bundles_never_verify_different_content(which in 0usize..2, pos in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<bool>()) {
        let (key, message, dsse) = keys();
        let original = if which == 0 { message } else { dsse };
        let mut bytes = original.as_bytes().to_vec();
        let i = pos.index(bytes.len());
        if cut { bytes.truncate(i) } else { bytes[i] = byte }
        let public = key.public_key();
        if verify_with_key(&bytes, Artifact::from_bytes(ARTIFACT), &public).is_ok() {
            let before = Bundle::from_json(original.as_bytes()).unwrap();
            let after = Bundle::from_json(&bytes).unwrap();
            prop_assert_eq!(signed_content(&before), signed_content(&after), "mutated: {}", String::from_utf8_lossy(&bytes));
        }
    }
}
