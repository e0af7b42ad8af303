//! Mutated happy-path bundles (Rekor v1 `happy-path-v0.3`, Rekor v2 `rekor2-happy-path`, DSSE
//! `happy-path-intoto-in-dsse-v3`) through the whole keyless path: never a panic, and a mutated
//! bundle verifies only if everything the signature, the certificate and the evidence cover is
//! byte-for-byte the original's, and the verified times are the original's (a mutation can only
//! touch what is unauthenticated by design: JSON whitespace, a certificate embedded in an RFC 3161
//! token, which is only a hint since the trusted root's TSA certificate is tried too, or
//! optional evidence dropped while enough remains).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use custody_core::bundle::{Bundle, Material};
use custody_core::verify::VerifiedTime;
use custody_core::x509::IdentityMatcher;
use proptest::prelude::*;
use support::*;

const CASES: [&str; 3] = [
    "happy-path-v0.3",
    "rekor2-happy-path",
    "happy-path-intoto-in-dsse-v3",
];

fn cases() -> &'static Vec<Case> {
    static CASES_LOADED: std::sync::OnceLock<Vec<Case>> = std::sync::OnceLock::new();
    CASES_LOADED.get_or_init(|| CASES.iter().map(|n| Case::load(n)).collect())
}

/// The certificate, as the verifier would trust it.
fn leaf(bundle: &Bundle) -> Vec<u8> {
    match &bundle.verification_material.content {
        Material::Certificate(der) => der.clone(),
        Material::X509CertificateChain(chain) => chain[0].clone(),
        Material::PublicKeyHint(h) => h.as_bytes().to_vec(),
    }
}

fn verify(case: &Case, bytes: &[u8]) -> Option<Vec<VerifiedTime>> {
    verify_bytes(
        bytes,
        &case.artifact,
        &case.root,
        None,
        &IdentityMatcher::exact(DEFAULT_IDENTITY, DEFAULT_ISSUER),
    )
    .ok()
    .map(|v| v.times)
}

fn original_times(case: &Case) -> Vec<VerifiedTime> {
    verify(case, &case.bundle_json).unwrap()
}

fn assert_same_signed_content(case: &Case, mutated: &[u8]) {
    let before = Bundle::from_json(&case.bundle_json).unwrap();
    let after = Bundle::from_json(mutated).unwrap();
    assert_eq!(signed_content(&before), signed_content(&after));
    assert_eq!(leaf(&before), leaf(&after));
    // Log evidence may only lose its optional promise, never change.
    let (b, a) = (
        &before.verification_material.tlog_entries,
        &after.verification_material.tlog_entries,
    );
    assert_eq!(b.len(), a.len());
    for (b, a) in b.iter().zip(a) {
        assert_eq!(b.canonicalized_body, a.canonicalized_body);
        assert_eq!(b.inclusion_proof, a.inclusion_proof);
        assert_eq!(b.log_id, a.log_id);
        assert_eq!(b.log_index, a.log_index);
        assert!(a.inclusion_promise.is_none() || a.inclusion_promise == b.inclusion_promise);
    }
}

#[test]
fn the_originals_verify() {
    for case in cases() {
        assert!(verify(case, &case.bundle_json).is_some(), "{}", case.name);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn mutated_bytes_never_verify_other_content(
        which in 0..CASES.len(),
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        op in 0..3u8,
    ) {
        let case = &cases()[which];
        let mut bytes = case.bundle_json.clone();
        let i = pos.index(bytes.len());
        match op {
            0 => bytes[i] = byte,
            1 => { bytes.remove(i); }
            _ => bytes[i] ^= 1 << (byte % 8),
        }
        if let Some(times) = verify(case, &bytes) {
            assert_same_signed_content(case, &bytes);
            let original = original_times(case);
            prop_assert!(times.iter().all(|t| original.contains(t)), "times {times:?}");
        }
    }

    /// Bit flips inside the decoded evidence (certificate, signature, DSSE payload, body, proof)
    /// always fail; in an RFC 3161 token only its embedded certificates are unauthenticated, so
    /// a flipped token verifies, if at all, with the original time.
    #[test]
    fn flipped_decoded_evidence_never_verifies(
        which in 0..CASES.len(),
        field in 0..5usize,
        at in any::<usize>(),
        bit in 0..8u8,
    ) {
        let case = &cases()[which];
        let mut bundle = Bundle::from_json(&case.bundle_json).unwrap();
        let flip = |v: &mut Vec<u8>| { if !v.is_empty() { let i = at % v.len(); v[i] ^= 1 << bit; } };
        let vm = &mut bundle.verification_material;
        match field {
            0 => match &mut vm.content {
                Material::Certificate(der) => flip(der),
                Material::X509CertificateChain(chain) => flip(&mut chain[0]),
                Material::PublicKeyHint(_) => unreachable!(),
            },
            1 => match &mut bundle.content {
                custody_core::bundle::BundleContent::MessageSignature { signature, .. } => flip(signature),
                custody_core::bundle::BundleContent::Dsse(env) => flip(&mut env.signatures[0].sig),
            },
            2 => match &mut bundle.content {
                custody_core::bundle::BundleContent::Dsse(env) => flip(&mut env.payload),
                custody_core::bundle::BundleContent::MessageSignature { message_digest, .. } => {
                    if let Some((_, d)) = message_digest { flip(d) }
                }
            },
            3 => flip(&mut vm.tlog_entries[0].canonicalized_body),
            _ => match vm.rfc3161_timestamps.first_mut() {
                Some(ts) => flip(ts),
                None => flip(&mut vm.tlog_entries[0].inclusion_proof.as_mut().unwrap().root_hash),
            },
        }
        let mut policy = custody_core::verify::KeylessPolicy::new(IdentityMatcher::exact(DEFAULT_IDENTITY, DEFAULT_ISSUER));
        policy.timestamp_threshold = 1;
        let artifact = custody_core::verify::Artifact::from_bytes(&case.artifact);
        let result = custody_core::verify::verify_keyless(&bundle, artifact, &case.root, &policy);
        match result {
            Err(_) => {}
            Ok(v) if field == 4 && !bundle.verification_material.rfc3161_timestamps.is_empty() => {
                prop_assert_eq!(v.times, original_times(case));
            }
            Ok(_) => prop_assert!(false, "{}: field {field} flipped and verified", case.name),
        }
    }
}

/// Regression (found by the property test above): in a Rekor v2 entry nothing but the inclusion
/// proof authenticates the index, so an entry index that differs from the proof's is refused
/// rather than reported to the user.
#[test]
fn rekor_v2_entry_index_must_match_its_proof() {
    for case in cases() {
        let mut doc: serde_json::Value = serde_json::from_slice(&case.bundle_json).unwrap();
        let entry = &mut doc["verificationMaterial"]["tlogEntries"][0];
        if entry["kindVersion"]["version"] != "0.0.2" {
            continue;
        }
        assert_eq!(
            entry["logIndex"], entry["inclusionProof"]["logIndex"],
            "{}",
            case.name
        );
        entry["logIndex"] = serde_json::Value::String("0".into());
        let bytes = serde_json::to_vec(&doc).unwrap();
        assert!(
            verify(case, &bytes).is_none(),
            "{}: a forged entry index verified",
            case.name
        );
        return;
    }
    panic!("no Rekor v2 case among {CASES:?}");
}
