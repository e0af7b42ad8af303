//! The evidence store: Sigstore bundles indexed by the artifact digests they *claim* to be
//! about, and the gate's decision log.
//!
//! Indexing reads the claim only (DSSE statement subjects, `messageSignature.messageDigest`);
//! nothing here is verified. Verification happens at decision time, against the gate's trust
//! set, so a bundle stored under a digest it lies about is simply rejected then.
//!
//! [`EvidenceStore`] is the contract; [`sqlite::SqliteEvidenceStore`] is the embedded backend
//! (one node), [`postgres::PostgresEvidenceStore`] the one several replicas share.
//! [`EvidenceDb::open`] picks one from a URL or a path. The conformance suite
//! (`tests/conformance.rs`) runs the same checks on both.
//!
//! Besides evidence, the store holds the gate's decision log (with a retention limit,
//! [`EvidenceStore::prune_decisions`]), the shared tier of verification results
//! ([`EvidenceStore::verified`]) and a change feed ([`EvidenceStore::publish`],
//! [`EvidenceStore::subscribe`]) that tells every replica which cached decisions to drop.

use std::path::PathBuf;
use std::sync::Arc;

use custody_core::bundle::{Bundle, BundleContent, HashAlgorithm};
use custody_core::digest::Sha256Digest;

pub mod feed;
pub mod postgres;
pub mod sqlite;

pub use feed::Change;

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
    /// Deletes at most `limit` decision rows whose `at` is before `before` (RFC 3339, UTC,
    /// the format [`DecisionRecord::at`] is written in), oldest first; returns how many went.
    /// Bounded so that a pass never holds the decision log for long: call it again while it
    /// returns `limit`.
    fn prune_decisions(&self, before: &str, limit: u64) -> Result<u64, StoreError>;

    /// The stored result of a successful verification under `key`, if any. Only ever holds
    /// what [`put_verified`](Self::put_verified) stored; callers must treat bytes they cannot
    /// read as a miss and verify again.
    fn verified(&self, key: &VerifiedKey) -> Result<Option<Vec<u8>>, StoreError>;
    /// Stores the result of a *successful* verification under `key` (first write wins: a
    /// result is a pure function of its key).
    fn put_verified(&self, key: &VerifiedKey, result: &[u8], now: &str) -> Result<(), StoreError>;

    /// Tells every other store on this database (every other replica) about `change`; the
    /// caller applies it to its own caches itself.
    fn publish(&self, change: &Change) -> Result<(), StoreError>;
    /// Changes published from now on by the other stores on this database (not this one's
    /// own). After a gap in the feed (a lost connection), [`Change::All`] is delivered, so
    /// nothing cached from before the gap survives it.
    fn subscribe(&self) -> std::sync::mpsc::Receiver<Change>;
}

/// What a verification result is keyed by: the bundle's bytes, the artifact, the trust set
/// (keys and trusted root, `TrustSet::fingerprint`) and where the candidate came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VerifiedKey {
    pub bundle: Sha256Digest,
    pub artifact: Sha256Digest,
    pub trust: Sha256Digest,
    pub source: String,
}

/// Where the evidence store lives, parsed from a URL or a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvidenceDb {
    /// `postgres://…` or `postgresql://…`, kept as given (it may hold a password).
    Postgres(String),
    /// `sqlite://PATH` or a plain path.
    Sqlite(PathBuf),
}

impl EvidenceDb {
    /// Parses `url_or_path`: `postgres://` and `postgresql://` URLs name a PostgreSQL
    /// database, `sqlite://PATH` and anything without a `scheme://` prefix a SQLite file.
    pub fn parse(url_or_path: &str) -> Result<EvidenceDb, StoreError> {
        let text = url_or_path.trim();
        if text.is_empty() {
            return Err(StoreError::Backend(
                "no evidence database given (expected postgres://…, postgresql://…, sqlite://PATH or a file path)"
                    .to_owned(),
            ));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(EvidenceDb::Postgres(text.to_owned()));
        }
        if let Some(path) = text.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(StoreError::Backend(
                    "evidence database sqlite:// names no file (expected sqlite://PATH)".to_owned(),
                ));
            }
            return Ok(EvidenceDb::Sqlite(PathBuf::from(path)));
        }
        if let Some(end) = text.find("://") {
            let scheme = &text[..end];
            if !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            {
                return Err(StoreError::Backend(format!(
                    "evidence database {}: unsupported scheme {scheme}:// (expected postgres://, postgresql://, sqlite://PATH or a file path)",
                    redact(text)
                )));
            }
        }
        Ok(EvidenceDb::Sqlite(PathBuf::from(text)))
    }

    /// Parses `url_or_path` (see [`parse`](Self::parse)) and opens the store, creating its
    /// schema if needed. Blocking: call it outside async code (start-up, a blocking thread).
    pub fn open(url_or_path: &str) -> Result<Arc<dyn EvidenceStore>, StoreError> {
        Self::parse(url_or_path)?.connect()
    }

    /// Opens the store this names.
    pub fn connect(&self) -> Result<Arc<dyn EvidenceStore>, StoreError> {
        Ok(match self {
            EvidenceDb::Postgres(url) => Arc::new(postgres::PostgresEvidenceStore::connect(url)?),
            EvidenceDb::Sqlite(path) => Arc::new(sqlite::SqliteEvidenceStore::open(path)?),
        })
    }
}

impl std::fmt::Display for EvidenceDb {
    /// The database for messages, without a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EvidenceDb::Postgres(url) => f.write_str(&redact(url)),
            EvidenceDb::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
        }
    }
}

/// A database URL without its password (`postgres://…@host/db`), for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…{}", &url[..scheme], &url[at..])
        }
        _ => url.to_owned(),
    }
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
    /// Anything else from a database (PostgreSQL), one line, without a password.
    #[error("evidence store: {0}")]
    Backend(String),
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
