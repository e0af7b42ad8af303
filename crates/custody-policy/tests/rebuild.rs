//! Independent rebuilds, through the gate over real signed bundles: a rebuild attestation
//! signed by the artifact's own builder, or one that differs, never counts as reproduced
//! (`rebuild-not-independent`, `rebuild-differs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{candidate, codes, id, key, library_gate, now, signed_provenance, signed_statement};
use custody_core::digest::Sha256Digest;
use custody_core::intoto::{ResourceDescriptor, Statement};
use custody_core::keys::SigningKey;
use custody_policy::{ArtifactRef, Gate, Request};
use serde_json::json;

fn request(artifact: &Sha256Digest) -> Request<'static> {
    Request {
        artifact: ArtifactRef {
            digest: Some(artifact.to_string()),
            name: Some("app.bin".into()),
            image: None,
        },
        time: now(),
        ..Default::default()
    }
}

/// A `custody rebuild` attestation of `artifact`: the overall result and its entry, as
/// `custody rebuild` writes them (`rebuilt` is the rebuilt digest).
fn rebuild_attestation(signer: &SigningKey, artifact: &Sha256Digest, rebuilt: &str) -> Vec<u8> {
    let same = rebuilt == artifact.hex();
    let statement = Statement::new_v1(
        vec![ResourceDescriptor::from_sha256("app.bin", artifact)],
        "urn:custody:predicate:rebuild:v1",
        json!({"result": if same { "match" } else { "mismatch" },
               "subjects": [{"name": "app.bin", "recorded": artifact.hex(), "rebuilt": rebuilt, "match": same}]}),
    );
    signed_statement(signer, &statement)
}

fn reproducible_gate(ci: &SigningKey, rebuilder: &SigningKey) -> Gate {
    library_gate(&[ci, rebuilder], json!({"reproducible": true}))
}

#[test]
fn attack_self_signed_rebuild_does_not_prove_reproducibility() {
    let (ci, rebuilder) = (key(), key());
    let artifact = Sha256Digest::of(b"app");
    let g = reproducible_gate(&ci, &rebuilder);
    let provenance = candidate(
        "app.bin.intoto.sigstore.json",
        signed_provenance(&ci, &artifact),
    );
    let own = candidate(
        "own.rebuild.sigstore.json",
        rebuild_attestation(&ci, &artifact, &artifact.hex()),
    );
    let v = g
        .decide(&request(&artifact), &[provenance.clone(), own.clone()])
        .unwrap();
    assert!(!v.allowed);
    assert_eq!(codes(&v), ["rebuild-not-independent"]);
    assert!(
        v.denies[0]
            .message
            .contains(&format!("same key {}", id(&ci))),
        "{}",
        v.denies[0].message
    );
    assert_eq!(
        v.denies[0].evidence.as_deref(),
        Some("own.rebuild.sigstore.json")
    );
    // The same artifact rebuilt by someone else is reproduced.
    let independent = candidate(
        "app.bin.rebuild.sigstore.json",
        rebuild_attestation(&rebuilder, &artifact, &artifact.hex()),
    );
    let v = g
        .decide(&request(&artifact), &[provenance, own, independent])
        .unwrap();
    assert!(v.allowed, "{:?}", v.denies);
}

#[test]
fn attack_differs_rebuild_does_not_satisfy_reproduced() {
    let (ci, rebuilder) = (key(), key());
    let artifact = Sha256Digest::of(b"app");
    let g = reproducible_gate(&ci, &rebuilder);
    let provenance = candidate(
        "app.bin.intoto.sigstore.json",
        signed_provenance(&ci, &artifact),
    );
    let differs = candidate(
        "app.bin.rebuild.sigstore.json",
        rebuild_attestation(&rebuilder, &artifact, &"f".repeat(64)),
    );
    let v = g
        .decide(&request(&artifact), &[provenance.clone(), differs.clone()])
        .unwrap();
    assert!(!v.allowed);
    assert_eq!(codes(&v), ["rebuild-differs"]);
    let message = &v.denies[0].message;
    assert!(
        message.contains("did not reproduce it: result mismatch"),
        "{message}"
    );
    // A forged "match" whose entry still shows another digest does not pass either.
    let forged = Statement::new_v1(
        vec![ResourceDescriptor::from_sha256("app.bin", &artifact)],
        "urn:custody:predicate:rebuild:v1",
        json!({"result": "match",
               "subjects": [{"name": "app.bin", "recorded": artifact.hex(), "rebuilt": "f".repeat(64), "match": true}]}),
    );
    let forged = candidate("forged.json", signed_statement(&rebuilder, &forged));
    let v = g
        .decide(&request(&artifact), &[provenance.clone(), forged])
        .unwrap();
    assert_eq!(codes(&v), ["rebuild-differs"]);
    // A matching rebuild beside the differing one does not outvote it.
    let matching = candidate(
        "again.json",
        rebuild_attestation(&rebuilder, &artifact, &artifact.hex()),
    );
    let v = g
        .decide(&request(&artifact), &[provenance, differs, matching])
        .unwrap();
    assert_eq!(codes(&v), ["rebuild-differs"]);
}
