//! custody-log: the transparency log engine.
//!
//! An RFC 6962 / RFC 9162 Merkle tree, sequenced in batches, stored as C2SP tlog-tiles
//! (`tile/<L>/<N>`, `tile/entries/<N>`) with C2SP signed-note checkpoints, so that
//! Sunlight/Tessera/Rekor v2 clients can read it. Storage is SQLite (embedded default) or
//! PostgreSQL (several replicas on one database).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use custody_log::{Log, LogConfig, Storage};
//! let (signer, _skey) = custody_core::note::NoteSigner::generate("log.example")?;
//! let storage = Storage::open("/var/lib/custody/log.db").await?;
//! let log = Log::open(storage, signer, LogConfig::new("log.example")).await?;
//! let receipt = log.submit(b"an entry".to_vec()).await?;
//! println!("logged at {} in a tree of {}", receipt.index, receipt.tree_size);
//! # Ok(()) }
//! ```
//!
//! # Guarantees
//! * `submit` returns only after the entry's batch is committed durably (one fsync / one
//!   synchronous PostgreSQL commit per batch) *together with* the checkpoint covering it.
//! * Indices are assigned by compare-and-swap on the stored tree size: no index is assigned
//!   twice or skipped, also with several processes on one PostgreSQL database.
//! * Duplicates are idempotent: the same bytes submitted again get the existing index, a fresh
//!   inclusion proof to the latest checkpoint, and `duplicate: true`; no leaf is added.
//! * Full tiles never change; partial tiles grow by appending.

use std::time::Duration;

use custody_core::merkle::Hash;

mod error;
pub mod layout;
mod log;
mod nodes;
mod sequencer;
pub mod storage;
mod tree;

pub use error::{LogError, StorageError, SubmitError};
pub use log::Log;
pub use storage::{LogStorage, Storage};

/// How the log batches submissions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// The checkpoint origin line (C2SP: the log's URL prefix without scheme).
    pub origin: String,
    /// A batch closes once it holds this many submissions.
    pub batch_max_entries: usize,
    /// …or once its oldest submission has waited this long.
    pub batch_max_delay: Duration,
    /// Largest entry accepted, in bytes (at most 65 535, the C2SP entry-bundle limit).
    pub max_entry_bytes: usize,
}

impl LogConfig {
    /// Defaults for `origin`: batches of up to 4096 entries or 20 ms, entries up to 64 KiB-1.
    pub fn new(origin: &str) -> Self {
        Self {
            origin: origin.to_owned(),
            batch_max_entries: 4096,
            batch_max_delay: Duration::from_millis(20),
            max_entry_bytes: layout::MAX_ENTRY_SIZE,
        }
    }
}

/// The answer to a submission: where the entry is and the proof that it is there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The entry's index in the log.
    pub index: u64,
    /// Its RFC 6962 leaf hash.
    pub leaf_hash: Hash,
    /// The size of the tree of `checkpoint`.
    pub tree_size: u64,
    /// The root hash of that tree.
    pub root_hash: Hash,
    /// The signed checkpoint note the proof leads to.
    pub checkpoint: String,
    /// RFC 9162 inclusion proof of `index` in the tree of `tree_size`.
    pub inclusion_proof: Vec<Hash>,
    /// `true` if the entry was already logged: nothing was added, `index` is the existing one.
    pub duplicate: bool,
}

/// Counters since this process opened the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogMetrics {
    /// Batches committed by this process.
    pub batches: u64,
    /// New entries committed by this process.
    pub entries: u64,
    /// Submissions answered as duplicates.
    pub duplicates: u64,
    /// Batches rebuilt because another writer committed first (or a commit's outcome was
    /// unknown).
    pub retries: u64,
}
