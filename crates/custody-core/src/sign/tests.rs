use super::*;
use crate::bundle::InclusionProof;
use crate::intoto::ResourceDescriptor;
use crate::keys::KeyAlgorithm;
use crate::note::NoteSigner;

/// What a log answers for `bodies` (the entry of the last one): the tree over all of them,
/// an inclusion proof, and a checkpoint signed by a fresh log key.
fn receipt(bodies: &[Vec<u8>]) -> TransparencyLogEntry {
    let tree = merkle::MemoryTree::from_entries(bodies.iter().map(Vec::as_slice));
    let index = bodies.len() - 1;
    let size = tree.size();
    let root = tree.root_at(size).unwrap();
    let proof: Vec<merkle::Hash> =
        merkle::inclusion_proof::<ProofError>(index as u64, size, |n| tree.node(n)).unwrap();
    let (signer, _) = NoteSigner::generate("log.test").unwrap();
    let checkpoint = Checkpoint::new("log.test", size, root)
        .unwrap()
        .sign(&signer)
        .unwrap()
        .to_note_string();
    TransparencyLogEntry {
        log_index: index as i64,
        log_id: vec![1; 32],
        kind: "hashedrekord".into(),
        version: "0.0.2".into(),
        integrated_time: 0,
        inclusion_promise: None,
        inclusion_proof: Some(InclusionProof {
            log_index: index as i64,
            root_hash: root.to_vec(),
            tree_size: size as i64,
            hashes: proof.iter().map(|h| h.to_vec()).collect(),
            checkpoint,
        }),
        canonicalized_body: bodies[index].clone(),
    }
}

fn body(signed: &Signed) -> Vec<u8> {
    signed.request().admit().unwrap().body.to_vec()
}

fn message(key: &SigningKey, text: &[u8]) -> Signed {
    sign_message(key, &Artifact::from_digest(Sha256Digest::of(text))).unwrap()
}

fn key() -> SigningKey {
    SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap()
}

#[test]
fn a_receipt_for_the_signed_body_is_attached() {
    let key = key();
    let signed = message(&key, b"artifact");
    let other = body(&message(&key, b"before"));
    let entry = receipt(&[other, body(&signed)]);
    let bundle = signed.attach(entry.clone()).unwrap();
    assert_eq!(bundle.verification_material.tlog_entries, vec![entry]);

    let statement = Statement::new_v1(
        vec![ResourceDescriptor::from_sha256(
            "a",
            &Sha256Digest::of(b"a"),
        )],
        "https://example.com/p",
        serde_json::json!({}),
    );
    let signed = sign_statement(&key, &statement).unwrap();
    let entry = receipt(&[body(&signed)]);
    assert!(signed.attach(entry).is_ok());
}

#[test]
fn a_receipt_for_another_key_is_refused() {
    let signed = message(&key(), b"artifact");
    let theirs = message(&key(), b"artifact");
    let entry = receipt(&[body(&theirs)]);
    assert!(matches!(
        signed.attach(entry),
        Err(ReceiptError::Bind { .. })
    ));
}

#[test]
fn a_receipt_for_another_body_is_refused() {
    let key = key();
    let signed = message(&key, b"artifact");
    let entry = receipt(&[body(&message(&key, b"another artifact"))]);
    assert!(matches!(
        signed.attach(entry),
        Err(ReceiptError::Bind { .. })
    ));
}

#[test]
fn a_receipt_whose_proof_misses_the_root_is_refused() {
    let key = key();
    let signed = message(&key, b"artifact");
    let bodies = [body(&message(&key, b"x")), body(&signed)];
    // The proof's root is not the checkpoint's.
    let mut entry = receipt(&bodies);
    entry.inclusion_proof.as_mut().unwrap().root_hash[0] ^= 1;
    assert!(matches!(
        signed.clone().attach(entry),
        Err(ReceiptError::OtherTree { .. })
    ));
    // A checkpoint and proof root that agree, but the path does not lead there.
    let mut entry = receipt(&bodies);
    entry.inclusion_proof.as_mut().unwrap().hashes[0][0] ^= 1;
    assert!(matches!(
        signed.clone().attach(entry),
        Err(ReceiptError::Inclusion { .. })
    ));
    // No proof at all.
    let mut entry = receipt(&bodies);
    entry.inclusion_proof = None;
    assert!(matches!(
        signed.attach(entry),
        Err(ReceiptError::NoProof { .. })
    ));
}

struct Fixed(TransparencyLogEntry);

impl LogAppender for Fixed {
    type Error = std::io::Error;
    fn append(&self, _: &CreateEntryRequest) -> Result<TransparencyLogEntry, Self::Error> {
        Ok(self.0.clone())
    }
}

#[test]
fn log_appends_and_checks_the_receipt() {
    let key = key();
    let signed = message(&key, b"artifact");
    let good = Fixed(receipt(&[body(&signed)]));
    assert!(signed.clone().log(&good).is_ok());
    let wrong = Fixed(receipt(&[body(&message(&key, b"other"))]));
    assert!(matches!(signed.log(&wrong), Err(LogError::Receipt(_))));
}

#[test]
fn to_value_is_the_json_text() {
    let key = key();
    let signed = message(&key, b"artifact");
    let entry = receipt(&[body(&signed)]);
    let bundle = signed.attach(entry).unwrap();
    let text: serde_json::Value = serde_json::from_str(&bundle.to_json()).unwrap();
    assert_eq!(bundle.to_value(), text);
    let envelope = crate::dsse::sign_in_toto(&key, b"{}".to_vec()).unwrap();
    let text: serde_json::Value = serde_json::from_str(&envelope.to_json()).unwrap();
    assert_eq!(envelope.to_value(), text);
}
