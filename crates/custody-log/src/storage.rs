//! Where the log keeps its entries, tiles and checkpoints: one trait, two backends.
//!
//! [`LogStorage`] is the contract; [`Storage`] picks a backend from a URL or path
//! ([`Storage::open`]): SQLite for the embedded default, PostgreSQL for replicas.

use std::future::Future;
use std::sync::Arc;

use custody_core::merkle::Hash;

use crate::error::StorageError;
use crate::layout::TileId;

mod leaf_index;
mod postgres;
mod reader_pool;
mod sqlite;

pub use postgres::PostgresStorage;
pub use sqlite::SqliteStorage;

/// A checkpoint as stored: the tree it names and the signed note (log signature only;
/// witness cosignatures are stored apart, see [`LogStorage::add_cosignature`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// Tree size.
    pub size: u64,
    /// Root hash of the tree of that size.
    pub root: Hash,
    /// The C2SP signed note, signed by the log key.
    pub note: String,
}

/// One entry a batch appends.
#[derive(Clone, Debug)]
pub struct NewEntry {
    /// Its index in the log.
    pub index: u64,
    /// RFC 6962 leaf hash of `data`.
    pub leaf_hash: Hash,
    /// The entry bytes (at most 65 535).
    pub data: Arc<[u8]>,
}

/// Everything one sequencer batch changes, committed all at once or not at all.
#[derive(Clone, Debug)]
pub struct Batch {
    /// The tree size the batch was built on: the commit happens only if it is still the stored one.
    pub old_size: u64,
    /// The entries `old_size..checkpoint.size`, in index order.
    pub entries: Vec<NewEntry>,
    /// Every tile the batch touched, with its full new contents (`32 * width` bytes).
    pub tiles: Vec<(TileId, Vec<u8>)>,
    /// The new checkpoint; its size is `old_size + entries.len()`.
    pub checkpoint: StoredCheckpoint,
}

/// Storage for one transparency log.
///
/// The contract, in the style of Sunlight's storage interfaces:
///
/// * [`initialize`](Self::initialize) MUST create the schema if needed and store the given
///   size-0 checkpoint only if no checkpoint is stored; it MUST return the stored latest
///   checkpoint. It MUST be safe to call from several processes at once.
/// * [`commit`](Self::commit) MUST be atomic: after it returns `Ok`, the entries, tiles and
///   checkpoint of the batch are all durable (committed and flushed to stable storage), and
///   after any failure or crash either all of them are stored or none is.
/// * [`commit`](Self::commit) MUST be a compare-and-swap on the tree size: it MUST fail with
///   [`StorageError::Conflict`] and change nothing when the stored size is not
///   `batch.old_size`, even when several processes commit concurrently. This is what keeps
///   replicas from assigning an index twice or skipping one.
/// * It MUST refuse (with [`StorageError::Collision`], changing nothing) a batch whose leaf
///   hash or index is already stored.
/// * A tile of 256 hashes, once stored, MUST NOT change. A partial tile MAY be replaced by a
///   longer one with the same prefix.
/// * Reads MUST only return committed data, and SHOULD see every commit that finished before
///   the read started (read-your-writes across replicas).
/// * If the outcome of a commit cannot be known (connection lost during COMMIT), `commit`
///   SHOULD return [`StorageError::CommitUnknown`]; the caller reloads the stored state.
pub trait LogStorage: Send + Sync {
    /// Creates the schema if needed and stores `empty` (a size-0 checkpoint) if the log has
    /// no checkpoint yet; returns the latest stored checkpoint.
    fn initialize(
        &self,
        empty: &StoredCheckpoint,
    ) -> impl Future<Output = Result<StoredCheckpoint, StorageError>> + Send;

    /// The latest committed checkpoint, `None` before [`initialize`](Self::initialize).
    fn latest(&self)
    -> impl Future<Output = Result<Option<StoredCheckpoint>, StorageError>> + Send;

    /// Commits a batch atomically and durably if the stored size is `batch.old_size`.
    fn commit(&self, batch: Arc<Batch>) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// The stored bytes of each tile (in the order asked), `None` for a tile not stored.
    fn read_tiles(
        &self,
        tiles: Vec<TileId>,
    ) -> impl Future<Output = Result<Vec<Option<Vec<u8>>>, StorageError>> + Send;

    /// The stored entries with indices in `[start, end)`, in order, as `(index, bytes)`.
    fn read_entries(
        &self,
        start: u64,
        end: u64,
    ) -> impl Future<Output = Result<Vec<(u64, Vec<u8>)>, StorageError>> + Send;

    /// The index of each given leaf hash that is stored (others are left out).
    fn lookup(
        &self,
        leaf_hashes: Vec<Hash>,
    ) -> impl Future<Output = Result<Vec<(Hash, u64)>, StorageError>> + Send;

    /// The signed note of the checkpoint of `size`, if one was committed.
    fn checkpoint_at(
        &self,
        size: u64,
    ) -> impl Future<Output = Result<Option<String>, StorageError>> + Send;

    /// Stores a cosignature line for the checkpoint of `size`. Returns `false` (and stores
    /// nothing) when no checkpoint of that size exists; storing the same line twice is a no-op.
    fn add_cosignature(
        &self,
        size: u64,
        line: String,
    ) -> impl Future<Output = Result<bool, StorageError>> + Send;

    /// The cosignature lines stored for the checkpoint of `size`, in the order they arrived.
    fn cosignatures(
        &self,
        size: u64,
    ) -> impl Future<Output = Result<Vec<String>, StorageError>> + Send;
}

/// The storage backend of a [`crate::Log`], chosen at run time.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Storage {
    /// Embedded: one SQLite database file (WAL).
    Sqlite(SqliteStorage),
    /// PostgreSQL: safe for several `custody serve` replicas on one database.
    Postgres(PostgresStorage),
}

impl Storage {
    /// Opens storage from `postgres://…` / `postgresql://…` (PostgreSQL), `sqlite://PATH` or a
    /// plain path (SQLite; the file and its directory are created if missing).
    pub async fn open(url_or_path: &str) -> Result<Self, StorageError> {
        if url_or_path.starts_with("postgres://") || url_or_path.starts_with("postgresql://") {
            return Ok(Self::Postgres(PostgresStorage::connect(url_or_path)?));
        }
        let path = url_or_path.strip_prefix("sqlite://").unwrap_or(url_or_path);
        if path.is_empty() || path.contains("://") {
            return Err(StorageError::Config {
                target: url_or_path.to_owned(),
                reason: "expected postgres://…, sqlite://PATH or a file path",
            });
        }
        Ok(Self::Sqlite(SqliteStorage::open(path.as_ref()).await?))
    }
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            Storage::Sqlite($s) => $call.await,
            Storage::Postgres($s) => $call.await,
        }
    };
}

impl LogStorage for Storage {
    async fn initialize(&self, empty: &StoredCheckpoint) -> Result<StoredCheckpoint, StorageError> {
        dispatch!(self, s => s.initialize(empty))
    }
    async fn latest(&self) -> Result<Option<StoredCheckpoint>, StorageError> {
        dispatch!(self, s => s.latest())
    }
    async fn commit(&self, batch: Arc<Batch>) -> Result<(), StorageError> {
        dispatch!(self, s => s.commit(batch))
    }
    async fn read_tiles(&self, tiles: Vec<TileId>) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        dispatch!(self, s => s.read_tiles(tiles))
    }
    async fn read_entries(
        &self,
        start: u64,
        end: u64,
    ) -> Result<Vec<(u64, Vec<u8>)>, StorageError> {
        dispatch!(self, s => s.read_entries(start, end))
    }
    async fn lookup(&self, leaf_hashes: Vec<Hash>) -> Result<Vec<(Hash, u64)>, StorageError> {
        dispatch!(self, s => s.lookup(leaf_hashes))
    }
    async fn checkpoint_at(&self, size: u64) -> Result<Option<String>, StorageError> {
        dispatch!(self, s => s.checkpoint_at(size))
    }
    async fn add_cosignature(&self, size: u64, line: String) -> Result<bool, StorageError> {
        dispatch!(self, s => s.add_cosignature(size, line))
    }
    async fn cosignatures(&self, size: u64) -> Result<Vec<String>, StorageError> {
        dispatch!(self, s => s.cosignatures(size))
    }
}

/// Database integers are signed 64-bit.
pub(crate) fn to_i64(what: &'static str, value: u64) -> Result<i64, StorageError> {
    i64::try_from(value).map_err(|_| StorageError::OutOfRange { what, value })
}

/// A stored integer back to an index or size; negative values are corruption.
pub(crate) fn to_u64(value: i64) -> Result<u64, StorageError> {
    u64::try_from(value).map_err(|_| StorageError::Corrupt {
        what: "negative index or size",
    })
}

/// A stored hash column back to a hash.
pub(crate) fn to_hash(bytes: &[u8]) -> Result<Hash, StorageError> {
    Hash::try_from(bytes).map_err(|_| StorageError::Corrupt {
        what: "hash column is not 32 bytes",
    })
}
