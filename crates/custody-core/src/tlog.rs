//! Transparency-log evidence: verifying a bundle's `TransparencyLogEntry` against the Rekor
//! instances of a [`TrustedRoot`] (SPECS §4.4 steps 1 and 3, §5, §6).
//!
//! For each entry, in this order:
//! 1. the log is found by `logId` in the trusted root (an unknown log is an error);
//! 2. the `canonicalizedBody` is parsed ([`RekorBody`]) and must be of the declared kind;
//! 3. Rekor v1 inclusion promise: the log key must be valid at `integratedTime`, and the SET
//!    must verify over JCS `{"body","integratedTime","logID","logIndex"}` (global index, hex
//!    log id). Only then is `integratedTime` reported. v0.1 bundles must carry one;
//! 4. inclusion proof: leaf = SHA-256(0x00 ‖ body) at the shard-local index, up to `rootHash`
//!    of `treeSize`; the checkpoint must be a signed note from the log's key (key name = the
//!    log's base URL without scheme), its origin the log's, its size and root the proof's.
//!    Bundles since v0.2 must carry one.
//!
//! An entry without a SET has no trusted time of its own: the caller passes the times other
//! evidence established ([`TlogOptions::signed_times`]) and the log key must be valid at each.
//! When there are none, nothing says when the entry was made, so the key must be valid **now**
//! ([`TlogOptions::now`], the system clock by default), as sigstore-go checks keys at the current
//! time when no trusted time exists: a log key whose `validFor` has ended (a rotated or retired
//! key) no longer vouches for entries that carry no trusted time.
//! Binding the body to the bundle is [`crate::rekor::bind`]; [`verify_bundle_entries`] does all.

use std::collections::HashSet;
use std::fmt;

use chrono::{DateTime, Utc};

use crate::bundle::{Bundle, BundleVersion, TransparencyLogEntry};
use crate::keys::{KeyError, SignatureError};
use crate::merkle::{Hash, ProofError};
use crate::note::{CosignatureVerifier, NoteError};
use crate::rekor::{BindError, BodyError, RekorBody, Signer};
use crate::trust_root::{TrustedRoot, ValidityPeriod};
use crate::verify::Artifact;

mod entry;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod conformance_tests;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

pub use entry::set_payload;

/// Most entries one bundle may carry (sigstore-go `maxAllowedTlogEntries`).
pub const MAX_TLOG_ENTRIES: usize = 32;

/// A log id (Rekor v1: SHA-256 of the log's DER SPKI), shown as hex.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LogId(pub Vec<u8>);

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl fmt::Debug for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LogId({self})")
    }
}

/// What a caller adds to the entries' own evidence.
#[derive(Debug, Clone, Default)]
pub struct TlogOptions<'a> {
    /// Times other evidence established (verified RFC 3161 timestamps). The log key must be
    /// valid at each of them for entries without an inclusion promise.
    pub signed_times: &'a [DateTime<Utc>],
    /// The time the log key is checked at for entries with neither an inclusion promise nor
    /// `signed_times`; `None` is the system clock. Tests pin it.
    pub now: Option<DateTime<Utc>>,
    /// Witnesses whose cosignatures the checkpoint must carry; ignored when `witness_threshold`
    /// is 0 (unknown cosignature lines are always ignored).
    pub witnesses: &'a [CosignatureVerifier],
    pub witness_threshold: usize,
}

/// The checkpoint an inclusion proof was verified against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogCheckpoint {
    pub origin: String,
    pub size: u64,
    pub root_hash: Hash,
}

/// A log entry whose evidence verified against the trusted root. Only this module makes one.
#[derive(Debug, Clone)]
pub struct VerifiedTlogEntry {
    log_id: LogId,
    log_index: i64,
    integrated_time: Option<DateTime<Utc>>,
    checkpoint: Option<LogCheckpoint>,
    body: RekorBody,
    log_base_url: String,
}

impl VerifiedTlogEntry {
    pub fn log_id(&self) -> &LogId {
        &self.log_id
    }

    /// The global log index.
    pub fn log_index(&self) -> i64 {
        self.log_index
    }

    /// `integratedTime`, present only when the inclusion promise (SET) verified.
    pub fn integrated_time(&self) -> Option<DateTime<Utc>> {
        self.integrated_time
    }

    /// The verified checkpoint, when the entry has an inclusion proof.
    pub fn checkpoint(&self) -> Option<&LogCheckpoint> {
        self.checkpoint.as_ref()
    }

    pub fn kind(&self) -> &'static str {
        self.body.kind()
    }

    pub fn version(&self) -> &'static str {
        self.body.version()
    }

    /// What the log recorded (bind it to the bundle with [`crate::rekor::bind`]).
    pub fn body(&self) -> &RekorBody {
        &self.body
    }

    /// The trusted root's `baseUrl` of the log.
    pub fn log_base_url(&self) -> &str {
        &self.log_base_url
    }
}

/// Why transparency-log evidence was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlogError {
    #[error(
        "log {log_id} entry {log_index}: the entry's index differs from its inclusion proof's ({proof_index}); a Rekor v2 entry has one index and nothing else authenticates this one"
    )]
    IndexMismatch {
        log_id: LogId,
        log_index: i64,
        proof_index: i64,
    },
    #[error("the bundle has {count} transparency log entries; at most {max} are accepted")]
    TooManyEntries { count: usize, max: usize },
    #[error("the bundle carries log entry {log_index} of log {log_id} twice")]
    Duplicate { log_id: LogId, log_index: i64 },
    #[error(
        "log entry {log_index} is from log {log_id}, which the trusted root does not know (wrong --trusted-root, or a bundle from another Sigstore instance?)"
    )]
    UnknownLog { log_id: LogId, log_index: i64 },
    #[error(
        "log entry {log_index} of log {log_id}: the key of {base_url} is not valid at {time} (the trusted root's validFor is {valid_for}); use the trusted root that was current then, or re-sign and log the artifact under the log's current key"
    )]
    LogKeyNotValidAt {
        log_id: LogId,
        log_index: i64,
        base_url: String,
        time: DateTime<Utc>,
        valid_for: ValidityPeriod,
    },
    #[error(
        "log entry {log_index} of log {log_id}: the key of {base_url} is not valid now ({now}; the trusted root's validFor is {valid_for}), and the entry has no trusted time (no signed entry timestamp, no verified RFC 3161 timestamp) to show it was made while the key was valid; a retired log key vouches for nothing: update the trusted root, or re-sign and log the artifact under the log's current key"
    )]
    LogKeyNotValidNow {
        log_id: LogId,
        log_index: i64,
        base_url: String,
        now: DateTime<Utc>,
        valid_for: ValidityPeriod,
    },
    #[error(
        "log entry {log_index} of log {log_id}: the trusted root gives the key of {base_url} no validity start, so it is never valid"
    )]
    LogKeyNeverValid {
        log_id: LogId,
        log_index: i64,
        base_url: String,
    },
    #[error(
        "log entry {log_index} of log {log_id}: the trusted root's key for {base_url} is unusable: {source}"
    )]
    LogKey {
        log_id: LogId,
        log_index: i64,
        base_url: String,
        source: Box<KeyError>,
    },
    #[error(
        "log entry {log_index} of log {log_id}: the trusted root's key for {base_url} cannot check checkpoints: {source}"
    )]
    CheckpointKey {
        log_id: LogId,
        log_index: i64,
        base_url: String,
        source: NoteError,
    },
    #[error("log entry {log_index} of log {log_id}: {source}")]
    Body {
        log_id: LogId,
        log_index: i64,
        source: BodyError,
    },
    #[error(
        "log entry {log_index} of log {log_id} says it is {declared}, but its body is {body_kind} {body_version}"
    )]
    KindMismatch {
        log_id: LogId,
        log_index: i64,
        declared: String,
        body_kind: &'static str,
        body_version: &'static str,
    },
    #[error(
        "log entry {log_index} of log {log_id} has no inclusion promise, which {media_type} bundles require"
    )]
    MissingPromise {
        log_id: LogId,
        log_index: i64,
        media_type: String,
    },
    #[error(
        "log entry {log_index} of log {log_id} has no inclusion proof, which {media_type} bundles require"
    )]
    MissingProof {
        log_id: LogId,
        log_index: i64,
        media_type: String,
    },
    #[error(
        "log entry {log_index} of log {log_id}: the signed entry timestamp (inclusion promise) does not verify: {source}"
    )]
    InvalidPromise {
        log_id: LogId,
        log_index: i64,
        source: SignatureError,
    },
    #[error("log entry {log_index} of log {log_id}: malformed inclusion proof: {problem}")]
    MalformedProof {
        log_id: LogId,
        log_index: i64,
        problem: ProofProblem,
    },
    #[error("log entry {log_index} of log {log_id}: the inclusion proof does not verify: {source}")]
    InvalidProof {
        log_id: LogId,
        log_index: i64,
        source: ProofError,
    },
    #[error("log entry {log_index} of log {log_id}: the checkpoint does not verify: {source}")]
    InvalidCheckpoint {
        log_id: LogId,
        log_index: i64,
        source: NoteError,
    },
    #[error(
        "log entry {log_index} of log {log_id}: the checkpoint's origin {origin:?} is not log {expected:?}"
    )]
    CheckpointOrigin {
        log_id: LogId,
        log_index: i64,
        origin: String,
        expected: String,
    },
    #[error(
        "log entry {log_index} of log {log_id}: the checkpoint is for {checkpoint}, the inclusion proof for {proof}"
    )]
    CheckpointMismatch {
        log_id: LogId,
        log_index: i64,
        checkpoint: String,
        proof: String,
    },
    #[error("log entry {log_index} of log {log_id}: witness policy not met: {source}")]
    Witnesses {
        log_id: LogId,
        log_index: i64,
        source: NoteError,
    },
    #[error("log entry {log_index} of log {log_id}: {source}")]
    Bind {
        log_id: LogId,
        log_index: i64,
        source: BindError,
    },
}

/// What is wrong with the shape of an inclusion proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofProblem {
    RootHashLength(usize),
    ProofHashLength { index: usize, len: usize },
}

impl fmt::Display for ProofProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RootHashLength(len) => write!(f, "the root hash is {len} bytes, not 32"),
            Self::ProofHashLength { index, len } => {
                write!(f, "proof hash {index} is {len} bytes, not 32")
            }
        }
    }
}

/// Verifies one entry of a bundle of `version`; see the module documentation.
pub fn verify_entry(
    entry: &TransparencyLogEntry,
    version: BundleVersion,
    root: &TrustedRoot,
    options: &TlogOptions<'_>,
) -> Result<VerifiedTlogEntry, TlogError> {
    entry::verify(entry, version, root, options)
}

/// Verifies every entry of a bundle: at most [`MAX_TLOG_ENTRIES`], no (logId, logIndex) twice.
pub fn verify_entries(
    bundle: &Bundle,
    root: &TrustedRoot,
    options: &TlogOptions<'_>,
) -> Result<Vec<VerifiedTlogEntry>, TlogError> {
    let entries = &bundle.verification_material.tlog_entries;
    if entries.len() > MAX_TLOG_ENTRIES {
        return Err(TlogError::TooManyEntries {
            count: entries.len(),
            max: MAX_TLOG_ENTRIES,
        });
    }
    let mut seen = HashSet::new();
    for e in entries {
        if !seen.insert((&e.log_id, e.log_index)) {
            return Err(TlogError::Duplicate {
                log_id: LogId(e.log_id.clone()),
                log_index: e.log_index,
            });
        }
    }
    entries
        .iter()
        .map(|e| verify_entry(e, bundle.version, root, options))
        .collect()
}

/// [`verify_entries`], then binds every entry's body to the bundle: same signature, same key
/// or certificate as `signer`, same digest (of `artifact`, when given).
pub fn verify_bundle_entries(
    bundle: &Bundle,
    root: &TrustedRoot,
    signer: Signer<'_>,
    artifact: Option<&Artifact<'_>>,
    options: &TlogOptions<'_>,
) -> Result<Vec<VerifiedTlogEntry>, TlogError> {
    let verified = verify_entries(bundle, root, options)?;
    for entry in &verified {
        crate::rekor::bind(&entry.body, &bundle.content, signer, artifact).map_err(|source| {
            TlogError::Bind {
                log_id: entry.log_id.clone(),
                log_index: entry.log_index,
                source,
            }
        })?;
    }
    Ok(verified)
}
