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
