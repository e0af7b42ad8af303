//! A cache of verification results.
//!
//! Verifying a bundle is a pure function of its bytes, the artifact digest and the trust set
//! (keys, trusted root): the signature, the certificate chain at the signing time, the log
//! proofs and the timestamps are all read from the bundle, never from the clock. So the gate
//! that sees the same evidence again (its decision cache expired, another environment or
//! stage, another pod with the same image) can reuse the answer instead of parsing and
//! verifying the bundle again.
//!
//! What keeps this fail-closed:
//! - the key is the SHA-256 of the bytes *received now* (plus the artifact digest, the
//!   candidate's source and a fingerprint of the trust set), so changed bytes, a changed
//!   key set or a new trusted root are a miss and are verified afresh;
//! - rejections are cached as rejections: nothing that failed ever becomes evidence;
//! - revocations, key retirements and principals are applied after this step, on every
//!   decision, so a revocation takes effect at once;
//! - verifications that read the artifact's bytes (Ed25519 message signatures) bypass the
//!   cache.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};

use custody_core::digest::Sha256Digest;
use custody_core::verify::Artifact;

use crate::input::{self, Candidate, Evidence, Rejected, TrustSet};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    bundle: Sha256Digest,
    artifact: Sha256Digest,
    trust: Sha256Digest,
    source: String,
}

/// Verification results by (bundle bytes, artifact, trust set, source), at most `capacity`
/// of them (when full, the cache is emptied and refilled: a plain bound, no LRU bookkeeping
/// on the hot path).
#[derive(Debug)]
pub struct VerificationCache {
    capacity: usize,
    map: Mutex<HashMap<Key, Result<Evidence, Rejected>>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl VerificationCache {
    /// A cache of at most `capacity` results; 0 turns it off (every bundle is verified).
    pub fn new(capacity: usize) -> VerificationCache {
        VerificationCache {
            capacity,
            map: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// How many lookups were answered from the cache, and how many were verified.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Forgets every result.
    pub fn clear(&self) {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// [`input::verify_evidence`], answering from the cache what was verified before.
    pub fn verify_evidence(
        &self,
        trust: &TrustSet,
        artifact: Artifact<'_>,
        candidates: &[Candidate],
    ) -> (Vec<Evidence>, Vec<Rejected>) {
        if self.capacity == 0 || artifact.bytes.is_some() {
            return input::verify_evidence(trust, artifact, candidates);
        }
        let trust_fingerprint = trust.fingerprint();
        let mut evidence = Vec::new();
        let mut rejected = Vec::new();
        for c in candidates {
            let key = Key {
                bundle: Sha256Digest::of(&c.bytes),
                artifact: artifact.digest,
                trust: trust_fingerprint,
                source: c.source.clone(),
            };
            let cached = self
                .map
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&key)
                .cloned();
            let result = match cached {
                Some(r) => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    r
                }
                None => {
                    self.misses.fetch_add(1, Ordering::Relaxed);
                    let r = input::verify_one(trust, artifact, c);
                    let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
                    if map.len() >= self.capacity {
                        map.clear();
                    }
                    map.insert(key, r.clone());
                    r
                }
            };
            match result {
                Ok(e) => evidence.push(e),
                Err(r) => rejected.push(r),
            }
        }
        (evidence, rejected)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use custody_core::keys::{KeyAlgorithm, SigningKey};

    fn trust(keys: Vec<custody_core::keys::PublicKey>) -> TrustSet {
        TrustSet {
            keys,
            root: None,
            root_digest: None,
        }
    }

    /// A DSSE bundle of an in-toto statement about `artifact`, signed with `key`.
    fn signed(key: &SigningKey, artifact: &[u8]) -> Vec<u8> {
        use custody_core::bundle::Bundle;
        use custody_core::dsse::{self, Envelope, EnvelopeSignature};
        use custody_core::encoding::base64_encode;
        use custody_core::intoto::{ResourceDescriptor, Statement};
        use custody_core::keys::SignedData;
        let statement = Statement::new_v1(
            vec![ResourceDescriptor::from_sha256(
                "app",
                &Sha256Digest::of(artifact),
            )],
            "https://example.com/test/v1",
            serde_json::json!({}),
        );
        let payload = statement.to_json_bytes();
        let sig = key
            .sign(SignedData::Message(&dsse::pae(
                dsse::IN_TOTO_PAYLOAD_TYPE,
                &payload,
            )))
            .unwrap();
        let hint = base64_encode(&key.public_key().key_id().0);
        let env = Envelope {
            payload,
            payload_type: dsse::IN_TOTO_PAYLOAD_TYPE.into(),
            signatures: vec![EnvelopeSignature {
                keyid: hint.clone(),
                sig,
            }],
        };
        Bundle::new_dsse_v03(hint, env).to_json().into_bytes()
    }

    #[test]
    fn same_bytes_and_trust_hit_anything_else_is_verified_again() {
        let key = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let other = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let bytes = b"app".as_slice();
        let artifact = Artifact {
            digest: Sha256Digest::of(bytes),
            bytes: None,
        };
        let good = Candidate {
            source: "a".into(),
            bytes: signed(&key, bytes),
        };
        let cache = VerificationCache::new(16);
        let t = trust(vec![key.public_key()]);
        let (e, r) = cache.verify_evidence(&t, artifact, std::slice::from_ref(&good));
        assert_eq!((e.len(), r.len()), (1, 0));
        let (e, r) = cache.verify_evidence(&t, artifact, std::slice::from_ref(&good));
        assert_eq!((e.len(), r.len()), (1, 0));
        assert_eq!(cache.stats(), (1, 1));
        // Another trust set (the signer no longer trusted): verified again, and rejected.
        let t2 = trust(vec![other.public_key()]);
        let (e, r) = cache.verify_evidence(&t2, artifact, std::slice::from_ref(&good));
        assert_eq!((e.len(), r.len()), (0, 1));
        assert_eq!(cache.stats(), (1, 2));
        // One byte changed: another key, verified, rejected (never the cached evidence).
        let mut tampered = good.clone();
        let i = tampered.bytes.iter().position(|&b| b == b'"').unwrap();
        tampered.bytes[i] = b' ';
        let (e, r) = cache.verify_evidence(&t, artifact, &[tampered]);
        assert_eq!((e.len(), r.len()), (0, 1));
        // Another artifact digest with the same bundle: verified, rejected.
        let elsewhere = Artifact {
            digest: Sha256Digest::of(b"other"),
            bytes: None,
        };
        let (e, r) = cache.verify_evidence(&t, elsewhere, std::slice::from_ref(&good));
        assert_eq!((e.len(), r.len()), (0, 1));
        assert_eq!(cache.stats(), (1, 4));
        // A rejection is cached as a rejection.
        let (e, r) = cache.verify_evidence(&t, elsewhere, std::slice::from_ref(&good));
        assert_eq!((e.len(), r.len()), (0, 1));
        assert_eq!(cache.stats(), (2, 4));
    }

    #[test]
    fn capacity_zero_verifies_every_time_and_a_full_cache_is_refilled() {
        let key = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let t = trust(vec![key.public_key()]);
        let off = VerificationCache::new(0);
        let bytes = b"app".as_slice();
        let artifact = Artifact {
            digest: Sha256Digest::of(bytes),
            bytes: None,
        };
        let c = Candidate {
            source: "a".into(),
            bytes: signed(&key, bytes),
        };
        for _ in 0..3 {
            let (e, _) = off.verify_evidence(&t, artifact, std::slice::from_ref(&c));
            assert_eq!(e.len(), 1);
        }
        assert_eq!(off.stats(), (0, 0));
        let small = VerificationCache::new(2);
        for i in 0..5 {
            let c = Candidate {
                source: format!("s{i}"),
                bytes: c.bytes.clone(),
            };
            small.verify_evidence(&t, artifact, &[c]);
        }
        assert!(small.map.lock().unwrap().len() <= 2);
    }
}
