//! The evidence store: Sigstore bundles indexed by the artifact digests they *claim* to be
//! about, and the gate's decision log.
//!
//! Indexing reads the claim only (DSSE statement subjects, `messageSignature.messageDigest`);
//! nothing here is verified. Verification happens at decision time, against the gate's trust
//! set, so a bundle stored under a digest it lies about is simply rejected then.
//!
//! [`EvidenceStore`] is the contract; [`sqlite::SqliteEvidenceStore`] is the embedded backend.

use custody_core::bundle::{Bundle, BundleContent, HashAlgorithm};
use custody_core::digest::Sha256Digest;

pub mod sqlite;

/// What every evidence backend provides. Blocking: async callers use their blocking pool.
pub trait EvidenceStore: Send + Sync + std::fmt::Debug {
    /// Stores a bundle under every digest it claims; idempotent by the bundle's SHA-256.
    fn put(&self, bytes: &[u8], subjects: &[Sha256Digest], now: &str)
    -> Result<Stored, StoreError>;
    /// Every bundle stored under `artifact`, oldest first.
    fn for_artifact(&self, artifact: &Sha256Digest) -> Result<Vec<StoredBundle>, StoreError>;
    /// Appends decisions in one transaction.
    fn append_decisions(&self, records: &[DecisionRecord]) -> Result<(), StoreError>;
    /// How many decisions are logged (tests, operations).
    fn decision_count(&self) -> Result<u64, StoreError>;
}

/// Why the store failed (an operational error, never a verdict).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("evidence store {path}: {error}")]
    Open {
        path: String,
        error: rusqlite::Error,
    },
    #[error("evidence store: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// Why a bundle cannot be indexed (HTTP 400).
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("not a Sigstore bundle: {0}")]
    Bundle(String),
    #[error(
        "the bundle names no sha256 artifact digest (no in-toto subject with a sha256 digest, no SHA2_256 messageDigest): nothing to index it under"
    )]
    NoDigest,
}

/// The digests a bundle claims to be about (unverified), deduplicated, in order.
pub fn claimed_digests(bytes: &[u8]) -> Result<Vec<Sha256Digest>, EvidenceError> {
    let bundle = Bundle::from_json(bytes).map_err(|e| EvidenceError::Bundle(e.to_string()))?;
    let mut out: Vec<Sha256Digest> = Vec::new();
    match &bundle.content {
        BundleContent::MessageSignature {
            message_digest: Some((HashAlgorithm::Sha2_256, digest)),
            ..
        } => {
            if let Some(d) = Sha256Digest::from_slice(digest) {
                out.push(d);
            }
        }
        BundleContent::MessageSignature { .. } => {}
        BundleContent::Dsse(envelope) => {
            let statement: serde_json::Value =
                serde_json::from_slice(&envelope.payload).unwrap_or_default();
            for subject in statement["subject"].as_array().into_iter().flatten() {
                let parsed = subject["digest"]["sha256"]
                    .as_str()
                    .and_then(|hex| Sha256Digest::from_hex(hex).ok());
                if let Some(d) = parsed.filter(|d| !out.contains(d)) {
                    out.push(d);
                }
            }
        }
    }
    if out.is_empty() {
        return Err(EvidenceError::NoDigest);
    }
    Ok(out)
}

/// What storing a bundle did.
#[derive(Debug, Clone)]
pub struct Stored {
    pub bundle_digest: Sha256Digest,
    pub subjects: Vec<Sha256Digest>,
    /// False when the same bytes were already stored (nothing changed).
    pub new: bool,
}

/// One stored bundle.
#[derive(Debug, Clone)]
pub struct StoredBundle {
    pub bundle_digest: String,
    pub bytes: Vec<u8>,
}

/// One line of the decision log.
#[derive(Debug, Clone)]
pub struct DecisionRecord {
    pub at: String,
    /// `admission` or `evaluate`.
    pub source: &'static str,
    /// `sha256:HEX`, or the image reference when it is not pinned.
    pub artifact: String,
    pub image: Option<String>,
    pub environment: Option<String>,
    pub allowed: bool,
    /// Deny codes, comma-separated.
    pub codes: String,
    pub cached: bool,
    /// For `cached` rows: the slowest of the `count` hits it stands for.
    pub latency_us: u64,
    pub policy_digest: String,
    /// How many decisions the row stands for: 1, or the cache hits of one decision from one
    /// source between `at` (the first) and `until` (when they were written).
    pub count: u64,
    pub until: Option<String>,
}
