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
//!
//! A second tier, [`SharedResults`] (the evidence store, shared by every replica), keeps
//! *successful* results only, under the same exact key: a cold decision on another replica
//! reads the result instead of verifying again. What it returns is trusted as much as the
//! database is (docs/security.md); bytes that do not decode are a miss and are verified.

use std::collections::HashMap;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use custody_core::digest::Sha256Digest;
use custody_core::keys::KeyAlgorithm;
use custody_core::verify::Artifact;
use serde::Deserialize;
use serde_json::Value as Json;

use crate::input::{
    self, Candidate, Evidence, Rejected, SignerFacts, TimeFact, TlogFact, TrustSet,
};

/// What a verification result is a function of.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResultKey {
    /// SHA-256 of the bundle bytes received.
    pub bundle: Sha256Digest,
    pub artifact: Sha256Digest,
    /// [`TrustSet::fingerprint`].
    pub trust: Sha256Digest,
    /// The candidate's source (it is written into the result).
    pub source: String,
}

type Key = ResultKey;

/// A tier of successful verification results beyond this process. Errors are the
/// implementation's to log: a failed load is a miss, a failed store is nothing.
pub trait SharedResults: Send + Sync + std::fmt::Debug {
    fn load(&self, key: &ResultKey) -> Option<Vec<u8>>;
    fn store(&self, key: &ResultKey, bytes: &[u8]);
}

/// The stored form's first bytes: another format is a miss.
const FORMAT: &[u8] = b"custody-verified-v1\n";

/// The stored form of a successful result.
pub fn encode_evidence(evidence: &Evidence) -> Option<Vec<u8>> {
    let mut out = FORMAT.to_vec();
    serde_json::to_writer(&mut out, evidence).ok()?;
    Some(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredEvidence {
    source: String,
    bundle_digest: String,
    kind: String,
    predicate_type: Option<String>,
    statement: Option<Json>,
    signer: StoredSigner,
    tlog: Vec<StoredTlog>,
    logged: bool,
    times: Vec<StoredTime>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredSigner {
    kind: String,
    label: String,
    key_id: Option<String>,
    algorithm: String,
    key_bits: u32,
    identity: Option<String>,
    issuer: Option<String>,
    claims: Json,
    principal: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredTlog {
    log_id: String,
    log_index: i64,
    integrated_time: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredTime {
    time: String,
    source: String,
    authority: String,
}

fn one_of(text: &str, known: &[&'static str]) -> Option<&'static str> {
    known.iter().copied().find(|k| *k == text)
}

/// Reads [`encode_evidence`]'s bytes; `None` for anything else (the caller verifies).
pub fn decode_evidence(bytes: &[u8]) -> Option<Evidence> {
    let stored: StoredEvidence = serde_json::from_slice(bytes.strip_prefix(FORMAT)?).ok()?;
    let algorithms = KeyAlgorithm::ALL.map(|a| a.cli_name());
    let times = stored
        .times
        .into_iter()
        .map(|t| {
            Some(TimeFact {
                time: t.time,
                source: one_of(&t.source, &["tlog", "timestamp"])?,
                authority: t.authority,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Evidence {
        source: stored.source,
        bundle_digest: stored.bundle_digest,
        kind: one_of(&stored.kind, &["signature", "attestation"])?,
        predicate_type: stored.predicate_type,
        statement: stored.statement,
        signer: SignerFacts {
            kind: one_of(&stored.signer.kind, &["key", "certificate"])?,
            label: stored.signer.label,
            key_id: stored.signer.key_id,
            algorithm: one_of(&stored.signer.algorithm, &algorithms)?,
            key_bits: stored.signer.key_bits,
            identity: stored.signer.identity,
            issuer: stored.signer.issuer,
            claims: stored.signer.claims,
            principal: stored.signer.principal,
        },
        tlog: stored
            .tlog
            .into_iter()
            .map(|t| TlogFact {
                log_id: t.log_id,
                log_index: t.log_index,
                integrated_time: t.integrated_time,
            })
            .collect(),
        logged: stored.logged,
        times,
    })
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
    shared: Option<Arc<dyn SharedResults>>,
    shared_hits: AtomicU64,
}

impl VerificationCache {
    /// A cache of at most `capacity` results; 0 turns it off (every bundle is verified).
    pub fn new(capacity: usize) -> VerificationCache {
        VerificationCache {
            capacity,
            map: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            shared: None,
            shared_hits: AtomicU64::new(0),
        }
    }

    /// [`new`](Self::new) with a shared tier behind the in-memory one: a miss here looks
    /// there before verifying, and a successful verification is stored there.
    pub fn with_shared(capacity: usize, shared: Arc<dyn SharedResults>) -> VerificationCache {
        VerificationCache {
            shared: Some(shared),
            ..VerificationCache::new(capacity)
        }
    }

    /// How many of the misses in memory the shared tier answered.
    pub fn shared_hits(&self) -> u64 {
        self.shared_hits.load(Ordering::Relaxed)
    }

    /// A successful result from the shared tier, if it has a readable one for `key`.
    fn shared_result(&self, key: &Key) -> Option<Evidence> {
        let evidence = decode_evidence(&self.shared.as_ref()?.load(key)?)?;
        self.shared_hits.fetch_add(1, Ordering::Relaxed);
        Some(evidence)
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
                    let r = match self.shared_result(&key) {
                        Some(e) => Ok(e),
                        None => {
                            let r = input::verify_one(trust, artifact, c);
                            if let (Ok(e), Some(shared)) = (&r, &self.shared)
                                && let Some(bytes) = encode_evidence(e)
                            {
                                shared.store(&key, &bytes);
                            }
                            r
                        }
                    };
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn evidence() -> Evidence {
        Evidence {
            source: "evidence:sha256:ab".into(),
            bundle_digest: format!("sha256:{}", "ab".repeat(32)),
            kind: "attestation",
            predicate_type: Some("https://slsa.dev/provenance/v1".into()),
            statement: Some(json!({"predicate": {"x": [1, 2, "\u{0}"]}})),
            signer: SignerFacts {
                kind: "certificate",
                label: "ci@example.com (https://issuer)".into(),
                key_id: None,
                algorithm: "ecdsa-p384",
                key_bits: 384,
                identity: Some("ci@example.com".into()),
                issuer: Some("https://issuer".into()),
                claims: json!({"github_workflow_repository": "o/r"}),
                principal: None,
            },
            tlog: vec![TlogFact {
                log_id: "log".into(),
                log_index: 42,
                integrated_time: Some("2026-12-07T12:00:00Z".into()),
            }],
            logged: true,
            times: vec![TimeFact {
                time: "2026-12-07T12:00:00Z".into(),
                source: "tlog",
                authority: "https://log".into(),
            }],
        }
    }

    #[test]
    fn stored_results_round_trip() {
        let e = evidence();
        let bytes = encode_evidence(&e).unwrap();
        let back = decode_evidence(&bytes).unwrap();
        // Evidence has no PartialEq: compare what policy sees.
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&e).unwrap()
        );
    }

    #[test]
    fn unreadable_stored_results_are_misses() {
        let good = encode_evidence(&evidence()).unwrap();
        let body = &good[FORMAT.len()..];
        // No format line, another format, not JSON, truncated.
        assert!(decode_evidence(body).is_none());
        assert!(decode_evidence(&[b"custody-verified-v0\n".as_slice(), body].concat()).is_none());
        assert!(decode_evidence(b"custody-verified-v1\n{").is_none());
        assert!(decode_evidence(&good[..good.len() - 1]).is_none());
        // Values the verifier never writes.
        for (from, to) in [
            ("\"kind\":\"attestation\"", "\"kind\":\"trusted\""),
            ("\"algorithm\":\"ecdsa-p384\"", "\"algorithm\":\"none\""),
            ("\"source\":\"tlog\"", "\"source\":\"clock\""),
            ("\"logged\":true", "\"logged\":true,\"extra\":1"),
        ] {
            let text = String::from_utf8(good.clone()).unwrap();
            assert!(text.contains(from), "{from}");
            assert!(
                decode_evidence(text.replace(from, to).as_bytes()).is_none(),
                "{to}"
            );
        }
    }
}
