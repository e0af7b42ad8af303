//! The verification cache: identical bytes under the same trust set are answered from it;
//! anything else (other bytes, other trust, other artifact) is verified afresh, and a
//! rejection stays a rejection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::signed_provenance;
use custody_core::digest::Sha256Digest;
use custody_core::keys::{KeyAlgorithm, PublicKey, SigningKey};
use custody_core::verify::Artifact;
use custody_policy::{Candidate, TrustSet, VerificationCache};

fn trust(keys: Vec<PublicKey>) -> TrustSet {
    TrustSet {
        keys,
        root: None,
        root_digest: None,
    }
}

fn counts(
    cache: &VerificationCache,
    t: &TrustSet,
    a: Artifact<'_>,
    c: &Candidate,
) -> (usize, usize) {
    let (e, r) = cache.verify_evidence(t, a, std::slice::from_ref(c));
    (e.len(), r.len())
}

#[test]
fn same_bytes_and_trust_hit_anything_else_is_verified_again() {
    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
    let other = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
    let digest = Sha256Digest::of(b"app");
    let artifact = Artifact {
        digest,
        bytes: None,
    };
    let good = Candidate {
        source: "a".into(),
        bytes: signed_provenance(&key, &digest),
    };
    let cache = VerificationCache::new(16);
    let t = trust(vec![key.public_key()]);
    assert_eq!(counts(&cache, &t, artifact, &good), (1, 0));
    assert_eq!(counts(&cache, &t, artifact, &good), (1, 0));
    assert_eq!(cache.stats(), (1, 1));
    // Another trust set (the signer no longer trusted): verified again, and rejected.
    let t2 = trust(vec![other.public_key()]);
    assert_eq!(counts(&cache, &t2, artifact, &good), (0, 1));
    assert_eq!(cache.stats(), (1, 2));
    // One byte changed: verified, rejected (never the cached evidence).
    let mut tampered = good.clone();
    let i = tampered.bytes.iter().position(|&b| b == b'"').unwrap();
    tampered.bytes[i] = b' ';
    assert_eq!(counts(&cache, &t, artifact, &tampered), (0, 1));
    // Another artifact digest with the same bundle: verified, rejected.
    let elsewhere = Artifact {
        digest: Sha256Digest::of(b"other"),
        bytes: None,
    };
    assert_eq!(counts(&cache, &t, elsewhere, &good), (0, 1));
    assert_eq!(cache.stats(), (1, 4));
    // A rejection is cached as a rejection.
    assert_eq!(counts(&cache, &t, elsewhere, &good), (0, 1));
    assert_eq!(cache.stats(), (2, 4));
}

#[test]
fn capacity_zero_verifies_every_time_and_a_full_cache_is_refilled() {
    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
    let t = trust(vec![key.public_key()]);
    let digest = Sha256Digest::of(b"app");
    let artifact = Artifact {
        digest,
        bytes: None,
    };
    let c = Candidate {
        source: "s0".into(),
        bytes: signed_provenance(&key, &digest),
    };
    let off = VerificationCache::new(0);
    for _ in 0..3 {
        assert_eq!(counts(&off, &t, artifact, &c), (1, 0));
    }
    assert_eq!(off.stats(), (0, 0));
    // Capacity 2: five sources fill it twice over, so the first is verified again.
    let small = VerificationCache::new(2);
    for i in 0..5 {
        let c = Candidate {
            source: format!("s{i}"),
            bytes: c.bytes.clone(),
        };
        assert_eq!(counts(&small, &t, artifact, &c), (1, 0));
    }
    assert_eq!(small.stats(), (0, 5));
    assert_eq!(counts(&small, &t, artifact, &c), (1, 0));
    assert_eq!(small.stats(), (0, 6));
}
