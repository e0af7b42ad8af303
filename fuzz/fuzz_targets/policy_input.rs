//! The policy input built from an outside bundle: verify it as gate evidence (managed key,
//! public-good root, any identity), then build the input document a policy reads. The
//! document must serialise; evidence may only come from a bundle that really verifies.
#![no_main]
use custody_core::digest::Sha256Digest;
use custody_core::verify::Artifact;
use custody_fuzz::{ARTIFACT, PUBLIC_GOOD_ROOT, managed_key, public_good_root};
use custody_policy::input::{Candidate, TrustSet, input_document, verify_one};
use custody_policy::verdict::ArtifactRef;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn trust() -> &'static TrustSet {
    static T: OnceLock<TrustSet> = OnceLock::new();
    T.get_or_init(|| TrustSet {
        keys: vec![managed_key().clone()],
        root: Some(public_good_root().clone()),
        root_digest: Some(Sha256Digest::of(PUBLIC_GOOD_ROOT)),
    })
}

fuzz_target!(|data: &[u8]| {
    let candidate = Candidate {
        source: "fuzz".into(),
        bytes: data.to_vec(),
    };
    let artifact = Artifact::from_bytes(ARTIFACT);
    let (evidence, rejected) = match verify_one(trust(), artifact, &candidate) {
        Ok(e) => (vec![e], vec![]),
        Err(r) => (vec![], vec![r]),
    };
    let artifact_ref = ArtifactRef {
        digest: Some(artifact.digest.to_string()),
        name: Some("a.txt".into()),
        image: None,
    };
    let doc = input_document(
        &artifact_ref,
        None,
        custody_fuzz::fixed_time(),
        &evidence,
        &rejected,
    );
    let text = serde_json::to_string(&doc).expect("input document serialises");
    assert!(
        text.len() < 64 * data.len() + 64 * 1024,
        "input document blow-up"
    );
    let _ = custody_policy::input::build_level(&evidence);
});
