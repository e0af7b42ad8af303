//! Errors: storage (operational), log requests, and submissions.

use std::sync::Arc;

use custody_core::merkle::ProofError;
use custody_core::note::NoteError;

/// A storage backend failed. Operational, never a verdict about the log's contents, except
/// [`StorageError::Corrupt`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// Compare-and-swap lost: the stored tree size is no longer the one the batch was built on
    /// (another replica committed first). The caller reloads and retries.
    #[error("the stored tree has size {found}, not {expected}: another writer committed first")]
    Conflict { expected: u64, found: u64 },
    /// A batch reused a leaf hash or an index already stored.
    #[error("the batch collides with stored entries (duplicate leaf hash or index)")]
    Collision,
    /// The commit's outcome is unknown (the connection failed during COMMIT). The caller must
    /// reload the stored state before doing anything else.
    #[error("the outcome of the commit of tree size {size} is unknown: {source}")]
    CommitUnknown {
        size: u64,
        #[source]
        source: Box<StorageError>,
    },
    /// Stored data breaks an invariant (a tile of the wrong length, a gap in the entries, a
    /// checkpoint that does not verify).
    #[error("stored log data is corrupt: {what}")]
    Corrupt { what: &'static str },
    /// A number does not fit the database's signed 64-bit integers.
    #[error("{what} {value} does not fit a signed 64-bit database integer")]
    OutOfRange { what: &'static str, value: u64 },
    /// The storage URL or path is not usable.
    #[error("cannot use storage {target:?}: {reason}")]
    Config {
        target: String,
        reason: &'static str,
    },
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("PostgreSQL connection pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("PostgreSQL connection pool setup: {0}")]
    PoolBuild(#[from] deadpool_postgres::BuildError),
    #[error("a blocking storage task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("I/O on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A log request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Bad indices or sizes for a proof (e.g. index >= tree size).
    #[error(transparent)]
    Proof(#[from] ProofError),
    #[error("signed note: {0}")]
    Note(#[from] NoteError),
    /// The requested tree size is larger than the latest checkpoint.
    #[error("tree size {requested} is beyond the latest checkpoint (size {latest})")]
    BeyondCheckpoint { requested: u64, latest: u64 },
    /// No checkpoint of this size was ever published by this log.
    #[error("no checkpoint of tree size {size} was published")]
    UnknownCheckpoint { size: u64 },
    /// The stored log belongs to another origin or key than the one configured.
    #[error(
        "the stored checkpoint is for origin {stored:?} or another key; configured {configured:?}"
    )]
    WrongLog { stored: String, configured: String },
    /// The configuration is unusable (e.g. a zero batch size).
    #[error("invalid log configuration: {0}")]
    Config(&'static str),
    /// The stored tree does not hash to the stored checkpoint's root.
    #[error("stored tree of size {size} does not match its checkpoint root")]
    RootMismatch { size: u64 },
    /// A cosignature line is malformed or claims the log's own key name.
    #[error("not a witness cosignature line for this checkpoint")]
    InvalidCosignature,
    /// The sequencer task has stopped.
    #[error("the log's sequencer has stopped")]
    Closed,
}

/// A submission was not logged.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The entry is larger than the configured limit (at most 65 535, the entry-bundle limit).
    #[error("entry of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    /// Push back: too many submissions are waiting. Retry later (HTTP 503 + Retry-After).
    #[error("the log is overloaded; retry later")]
    Overloaded,
    /// Storage failed while committing the batch; the entry may or may not have been logged.
    /// Submitting it again is safe: a logged entry is returned as a duplicate.
    #[error("storage failed while logging the entry: {0}")]
    Storage(Arc<StorageError>),
    /// The batch could not be sequenced (e.g. the stored tree is inconsistent).
    #[error("sequencing failed: {0}")]
    Sequencing(Arc<LogError>),
    /// The log is shutting down.
    #[error("the log's sequencer has stopped")]
    Closed,
}
