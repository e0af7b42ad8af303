//! Checkpoints from Sigstore: Rekor v2 (Ed25519) cases of sigstore-conformance, Rekor v1 (ECDSA)
//! checkpoints against the public-good trusted root, and mutation property tests.

use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::Value;

use super::tests::{enoch, golang, json, peter, testdata};
use super::*;
use crate::encoding::{base64_decode_strict, base64_encode};

fn host(base_url: &str) -> &str {
    base_url
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
}

/// Verifiers for every tlog of a trusted root: name = baseUrl host, key = DER SPKI.
fn tlog_verifiers(trusted_root: &Value) -> Vec<NoteVerifier> {
    trusted_root["tlogs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tlog| {
            let spki =
                base64_decode_strict(tlog["publicKey"]["rawBytes"].as_str().unwrap()).unwrap();
            let name = host(tlog["baseUrl"].as_str().unwrap());
            let verifier = NoteVerifier::from_spki(name, &spki).unwrap();
            // Rekor v1 and v2 log IDs both start with the signed-note key ID.
            let log_id = base64_decode_strict(tlog["logId"]["keyId"].as_str().unwrap()).unwrap();
            assert_eq!(verifier.key_id().to_be_bytes(), log_id[..4], "{name}");
            verifier
        })
        .collect()
}

fn checkpoint_envelope(bundle: &Value) -> Option<&str> {
    bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]["envelope"]
        .as_str()
}

#[test]
fn sigstore_conformance_rekor_v2_checkpoints() {
    let dir = testdata().join("sigstore-conformance/bundle-verify");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("rekor2-checkpoint-")
        })
        .collect();
    cases.sort();
    let (mut ok, mut fail) = (0, 0);
    for case in &cases {
        let name = case.file_name().unwrap().to_str().unwrap();
        let bundle = json(&case.join("bundle.sigstore.json"));
        let verifiers = tlog_verifiers(&json(&case.join("trusted_root.json")));
        let envelope = checkpoint_envelope(&bundle).unwrap();
        let result = SignedCheckpoint::verify(envelope, &verifiers);
        if name.ends_with("_fail") {
            assert!(result.is_err(), "{name} verified");
            fail += 1;
        } else {
            let signed = result.unwrap_or_else(|e| panic!("{name}: {e}"));
            let proof = &bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"];
            let checkpoint = signed.checkpoint();
            assert_eq!(checkpoint.origin(), "log2025-alpha1.rekor.sigstage.dev");
            assert_eq!(
                checkpoint.size().to_string(),
                proof["treeSize"].as_str().unwrap()
            );
            assert_eq!(
                base64_encode(checkpoint.root_hash()),
                proof["rootHash"].as_str().unwrap()
            );
            assert_eq!(
                signed.note().verified_by().len(),
                1,
                "{name}: only the log key is known"
            );
            ok += 1;
        }
    }
    assert_eq!((ok, fail), (4, 5), "rekor2-checkpoint-* cases");
    // The plain happy path, too.
    let happy = dir.join("rekor2-happy-path");
    let verifiers = tlog_verifiers(&json(&happy.join("trusted_root.json")));
    let bundle = json(&happy.join("bundle.sigstore.json"));
    SignedCheckpoint::verify(checkpoint_envelope(&bundle).unwrap(), &verifiers).unwrap();
}

fn public_good_verifiers() -> Vec<NoteVerifier> {
    tlog_verifiers(&json(
        &testdata().join("sigstore-trust-root/public-good.trusted_root.json"),
    ))
}

#[test]
fn rekor_v1_ecdsa_checkpoint() {
    let derived = json(&testdata().join("sigstore-derived/happy-path-v0.3.rekor-v1.derived.json"));
    let text = derived["checkpoint_signed_text_utf8"].as_str().unwrap();
    let line = derived["checkpoint_signature_line"].as_str().unwrap();
    let input = format!("{text}\n{line}\n");
    let verifiers = public_good_verifiers();
    let signed = SignedCheckpoint::verify(&input, &verifiers).unwrap();
    assert_eq!(
        signed.note().verified_by(),
        &[("rekor.sigstore.dev".to_owned(), 0xc0d23d6a)]
    );
    assert_eq!(
        signed.checkpoint().size(),
        derived["tree_size"].as_u64().unwrap()
    );
    assert_eq!(
        base64_encode(signed.checkpoint().root_hash()),
        derived["root_hash_b64"].as_str().unwrap()
    );
    // The derived file's own key gives the same result.
    let spki =
        base64_decode_strict(derived["rekor_public_key_spki_b64"].as_str().unwrap()).unwrap();
    let own = NoteVerifier::ecdsa_p256("rekor.sigstore.dev", &spki).unwrap();
    assert_eq!(
        format!("{:08x}", own.key_id()),
        derived["checkpoint_key_hint_hex"].as_str().unwrap()
    );
    SignedCheckpoint::verify(&input, &[own]).unwrap();
    // One changed byte in the text: a known key with a bad signature.
    let tampered = input.replacen("75408393", "75408394", 1);
    let err = SignedCheckpoint::verify(&tampered, &verifiers).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid signature for key rekor.sigstore.dev+c0d23d6a"
    );
}

#[test]
fn sigstore_conformance_rekor_v1_bad_checkpoints() {
    let verifiers = public_good_verifiers();
    let dir = testdata().join("sigstore-conformance/bundle-verify");
    for case in [
        "checkpoint-bad-keyhint_fail",
        "invalid-checkpoint-signature_fail",
    ] {
        let bundle = json(&dir.join(case).join("bundle.sigstore.json"));
        let envelope = checkpoint_envelope(&bundle).unwrap();
        let err = SignedCheckpoint::verify(envelope, &verifiers).unwrap_err();
        let expected_bad_signature = case.starts_with("invalid");
        assert_eq!(
            matches!(err, NoteError::InvalidSignature { .. }),
            expected_bad_signature,
            "{case}: {err}"
        );
    }
}

#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize),
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Replace(i, b)),
        (
            any::<usize>(),
            prop_oneof![any::<u8>(), Just(b'\n'), Just(b' '), Just(b'+')]
        )
            .prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
    ]
}

fn apply(original: &str, edits: &[Edit]) -> Option<String> {
    let mut bytes = original.as_bytes().to_vec();
    for edit in edits {
        match *edit {
            Edit::Replace(i, b) if !bytes.is_empty() => {
                let i = i % bytes.len();
                bytes[i] = b;
            }
            Edit::Insert(i, b) => {
                let i = i % (bytes.len() + 1);
                bytes.insert(i, b);
            }
            Edit::Delete(i) if !bytes.is_empty() => {
                let i = i % bytes.len();
                bytes.remove(i);
            }
            _ => {}
        }
    }
    String::from_utf8(bytes).ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn mutated_notes_never_panic_and_never_verify(edits in proptest::collection::vec(edit_strategy(), 1..4)) {
        let original = golang("peter-signed.note");
        let verifiers = [peter(), enoch()];
        if let Some(mutated) = apply(&original, &edits) {
            if mutated != original {
                if let Ok(note) = Note::parse(&mutated) {
                    prop_assert!(note.verify(&verifiers).is_err(), "{mutated:?} verified");
                }
                prop_assert!(SignedCheckpoint::verify(&mutated, &verifiers).is_err());
            }
        }
    }

    #[test]
    fn mutated_checkpoints_never_verify(edits in proptest::collection::vec(edit_strategy(), 1..4)) {
        let derived = json(&testdata().join("sigstore-derived/happy-path-v0.3.rekor-v1.derived.json"));
        let original = format!(
            "{}\n{}\n",
            derived["checkpoint_signed_text_utf8"].as_str().unwrap(),
            derived["checkpoint_signature_line"].as_str().unwrap()
        );
        let verifiers = public_good_verifiers();
        if let Some(mutated) = apply(&original, &edits) {
            if mutated != original {
                prop_assert!(SignedCheckpoint::verify(&mutated, &verifiers).is_err(), "{mutated:?}");
            }
        }
    }

    #[test]
    fn arbitrary_text_never_panics(input in "(\\PC|\n|\u{2014} ){0,200}") {
        let _ = Note::parse(&input).map(|n| n.verify(&[peter()]));
        let _ = Checkpoint::parse(&input);
        let _ = NoteVerifier::from_vkey(&input);
        let _ = NoteSigner::from_skey(&input);
        let _ = CosignatureVerifier::from_vkey(&input);
    }
}
