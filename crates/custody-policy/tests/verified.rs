//! The verification cache: identical bytes under the same trust set are answered from it;
//! anything else (other bytes, other trust, other artifact) is verified afresh, and a
//! rejection stays a rejection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::signed_provenance;
use custody_core::digest::Sha256Digest;
use custody_core::keys::{KeyAlgorithm, PublicKey, SigningKey};
use custody_core::verify::Artifact;
use custody_policy::{Candidate, ResultKey, SharedResults, TrustSet, VerificationCache};

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

/// A shared tier in memory (the server's is the evidence store).
#[derive(Debug, Default)]
struct Shared(std::sync::Mutex<std::collections::HashMap<ResultKey, Vec<u8>>>);

impl SharedResults for Shared {
    fn load(&self, key: &ResultKey) -> Option<Vec<u8>> {
        self.0.lock().unwrap().get(key).cloned()
    }
    fn store(&self, key: &ResultKey, bytes: &[u8]) {
        self.0.lock().unwrap().insert(key.clone(), bytes.to_vec());
    }
}

#[test]
fn the_shared_tier_gets_successes_only_and_answers_another_replica() {
    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
    let digest = Sha256Digest::of(b"app");
    let artifact = Artifact {
        digest,
        bytes: None,
    };
    let good = Candidate {
        source: "a".into(),
        bytes: signed_provenance(&key, &digest),
    };
    let elsewhere = Artifact {
        digest: Sha256Digest::of(b"other"),
        bytes: None,
    };
    let t = trust(vec![key.public_key()]);
    let shared = std::sync::Arc::new(Shared::default());
    let one = VerificationCache::with_shared(16, shared.clone());
    assert_eq!(counts(&one, &t, artifact, &good), (1, 0));
    // A rejection is not shared.
    assert_eq!(counts(&one, &t, elsewhere, &good), (0, 1));
    assert_eq!(shared.0.lock().unwrap().len(), 1, "successes only");
    // Another replica: its first lookup is answered by the shared tier, not verified.
    let two = VerificationCache::with_shared(16, shared.clone());
    let (evidence, rejected) = two.verify_evidence(&t, artifact, std::slice::from_ref(&good));
    assert_eq!((evidence.len(), rejected.len()), (1, 0));
    assert_eq!(
        evidence[0].signer.key_id,
        Some(key.public_key().key_id().to_string())
    );
    assert_eq!(two.shared_hits(), 1);
    // Another trust set does not read it: verified (and rejected, the key is not trusted).
    let other = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
    let three = VerificationCache::with_shared(16, shared.clone());
    assert_eq!(
        counts(&three, &trust(vec![other.public_key()]), artifact, &good),
        (0, 1)
    );
    assert_eq!(three.shared_hits(), 0);
    // A stored result that does not decode is a miss: verified again, and fixed in memory.
    for bytes in shared.0.lock().unwrap().values_mut() {
        *bytes = b"custody-verified-v1\n{not json".to_vec();
    }
    let four = VerificationCache::with_shared(16, shared);
    assert_eq!(counts(&four, &t, artifact, &good), (1, 0));
    assert_eq!((four.shared_hits(), four.stats()), (0, (0, 1)));
}
