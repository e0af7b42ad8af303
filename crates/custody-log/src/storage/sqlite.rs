//! The embedded backend: one SQLite database in WAL mode.
//!
//! Durability: `journal_mode=WAL` with `synchronous=FULL`. In WAL mode with FULL, SQLite
//! fsyncs the WAL file at every COMMIT, so a transaction that returned from COMMIT survives a
//! process crash *and* a power loss. (With NORMAL it would survive a process crash but could
//! lose the last commits on power loss, which would break "no acknowledged entry is lost".)
//! Each batch is one `BEGIN IMMEDIATE … COMMIT`, hence one fsync per batch.
//!
//! Compare-and-swap: `BEGIN IMMEDIATE` takes the database's write lock before the stored size is
//! read, so the size check and the writes are one serialisable step, even if another process
//! opens the same file.
//!
//! Duplicates: the leaf-hash → index lookup is an in-memory map caught up from the stored
//! `(idx, leaf_hash)` rows ([`leaf_index`](super::leaf_index)), not a `UNIQUE` index: random
//! keys would make every entry of a large log dirty its own index page. Logs created before
//! that change keep their `UNIQUE` index (SQLite cannot drop it in place); they work the same,
//! at the old write cost.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use custody_core::merkle::Hash;
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};

use super::leaf_index::LeafIndex;
use super::reader_pool::ReaderPool;
use super::{Batch, LogStorage, StoredCheckpoint, to_hash, to_i64, to_u64};
use crate::error::StorageError;
use crate::layout::{FULL_TILE_BYTES, TileId};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS log_entries (
    idx INTEGER PRIMARY KEY,
    leaf_hash BLOB NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS log_entries_leaves ON log_entries (idx, leaf_hash);
CREATE TABLE IF NOT EXISTS log_tiles (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log_checkpoints (
    size INTEGER PRIMARY KEY,
    note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS log_cosignatures (
    size INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (size, line)
);
";

/// How much of the database file connections map (SQLite's `mmap_size`): all of it, up to
/// 1 TiB. Pages beyond the map cost a `pread` and a copy each; at 10^7 entries the file is
/// ~7 GB. The bundled SQLite is built to allow this (`.cargo/config.toml`: its default cap
/// on Linux is 2 GiB). Mapped pages are the kernel's page cache, shared by the connections.
const MMAP_BYTES: i64 = 1 << 40;
/// The writer's page cache, in KiB (SQLite's default is 2,000).
const CACHE_KIB: i64 = 16 * 1024;

/// Reader threads, each with its own connection ([`ReaderPool`]).
const READERS: usize = 4;

/// How often the background thread copies the WAL into the database file.
const WAL_CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);

/// SQLite storage. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStorage {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// The one connection that writes; batches are serialised through it.
    writer: Mutex<Connection>,
    /// The reader threads (WAL lets them read while the writer commits).
    readers: ReaderPool,
    /// Leaf hash → index of the stored entries (locked after `writer` when both are held).
    leaves: Mutex<LeafIndex>,
}

impl std::fmt::Debug for SqliteStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStorage")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

fn connect(path: &Path) -> Result<Connection, StorageError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // See the module comment: WAL + FULL = one durable fsync per commit.
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StorageError::Config {
            target: path.display().to_string(),
            reason: "SQLite refused WAL mode",
        });
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Reads through a shared memory map: no read syscall per page, and one copy of each page
    // for every connection.
    conn.pragma_update(None, "mmap_size", MMAP_BYTES)?;
    Ok(conn)
}

impl SqliteStorage {
    /// Opens (creating if needed) the database at `path`.
    pub async fn open(path: &Path) -> Result<Self, StorageError> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| StorageError::Io {
                    path: dir.display().to_string(),
                    source,
                })?;
            }
            let writer = connect(&path)?;
            writer.execute_batch(SCHEMA)?;
            // WAL checkpoints run on a background thread so that batches do not pay for them;
            // the automatic checkpoint stays on, at 64 MiB, as a bound if that thread lags.
            writer.pragma_update(None, "wal_autocheckpoint", 16_384)?;
            // The writer keeps the pages batches rewrite (the leaf-hash index, the tree's right
            // edge) in a larger private cache.
            writer.pragma_update(None, "cache_size", -CACHE_KIB)?;
            let readers = (0..READERS)
                .map(|_| connect(&path))
                .collect::<Result<Vec<_>, _>>()?;
            let readers = ReaderPool::start(readers, path.display().to_string())?;
            let inner = Arc::new(Inner {
                path,
                writer: Mutex::new(writer),
                readers,
                leaves: Mutex::new(LeafIndex::default()),
            });
            spawn_wal_checkpointer(&inner)?;
            spawn_leaf_loader(&inner)?;
            Ok(Self { inner })
        })
        .await?
    }

    /// Runs `f` on a reader thread's connection.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        self.inner.readers.read(f).await
    }

    /// Runs `f` on the writer connection in the blocking pool.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn)
        })
        .await?
    }
}

/// Runs `work` on a named thread with its own connection and a weak handle on the storage.
fn spawn_with_connection(
    inner: &Arc<Inner>,
    name: &str,
    work: impl FnOnce(Connection, std::sync::Weak<Inner>) + Send + 'static,
) -> Result<(), StorageError> {
    let conn = connect(&inner.path)?;
    let weak = Arc::downgrade(inner);
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || work(conn, weak))
        .map_err(|source| StorageError::Io {
            path: inner.path.display().to_string(),
            source,
        })?;
    Ok(())
}

/// Copies the WAL into the database file every [`WAL_CHECKPOINT_INTERVAL`] (PASSIVE: never
/// blocks the writer or readers) until the storage is dropped.
fn spawn_wal_checkpointer(inner: &Arc<Inner>) -> Result<(), StorageError> {
    spawn_with_connection(inner, "custody-log-wal", |conn, weak| {
        loop {
            std::thread::sleep(WAL_CHECKPOINT_INTERVAL);
            if weak.upgrade().is_none() {
                return;
            }
            // Failure (e.g. SQLITE_BUSY) only delays the copy; the next round retries.
            let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        }
    })
}

/// Loads the stored leaf hashes into the duplicate map in the background, so that the first
/// write after a start on a large log (~0.8 s per million entries) does not wait for all of it:
/// lookups and commits take the same lock and wait only for what is left. Reads never wait.
fn spawn_leaf_loader(inner: &Arc<Inner>) -> Result<(), StorageError> {
    spawn_with_connection(inner, "custody-log-leaves", |conn, weak| {
        let Some(inner) = weak.upgrade() else { return };
        let mut leaves = inner.leaves.lock().unwrap_or_else(PoisonError::into_inner);
        // A failure here is met again, and reported, by the next lookup or commit.
        if let Err(e) = catch_up_to_stored(&conn, &mut leaves) {
            tracing::warn!(error = %e, "duplicate index: background load failed");
        }
    })
}

/// Brings the duplicate map up to the stored tree size, in one read snapshot of `conn`
/// (which must not be in a transaction).
fn catch_up_to_stored(conn: &Connection, leaves: &mut LeafIndex) -> Result<(), StorageError> {
    let tx = conn.unchecked_transaction()?;
    let stored = stored_size(&tx)?;
    leaves.catch_up(&tx, stored)
}

fn latest(conn: &Connection) -> Result<Option<StoredCheckpoint>, StorageError> {
    let row = conn
        .query_row(
            "SELECT size, root, note FROM log_state WHERE id = 1",
            [],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, Vec<u8>>(1)?,
                    row.get(2)?,
                ))
            },
        )
        .optional()?;
    row.map(|(size, root, note)| {
        Ok(StoredCheckpoint {
            size: to_u64(size)?,
            root: to_hash(&root)?,
            note,
        })
    })
    .transpose()
}

/// A unique-index violation means the batch reuses a stored index or leaf hash.
fn collision(err: rusqlite::Error) -> StorageError {
    match err.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => StorageError::Collision,
        _ => StorageError::Sqlite(err),
    }
}

/// The stored tree size (0 before `initialize`).
fn stored_size(conn: &Connection) -> Result<u64, StorageError> {
    let stored: Option<i64> = conn
        .prepare_cached("SELECT size FROM log_state WHERE id = 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    stored.map_or(Ok(0), to_u64)
}

fn commit(
    conn: &mut Connection,
    leaves: &Mutex<LeafIndex>,
    batch: &Batch,
) -> Result<(), StorageError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let stored: i64 = tx.query_row("SELECT size FROM log_state WHERE id = 1", [], |r| r.get(0))?;
    let stored = to_u64(stored)?;
    if stored != batch.old_size {
        return Err(StorageError::Conflict {
            expected: batch.old_size,
            found: stored,
        });
    }
    // Duplicate leaf hashes, stored or within the batch, under the write lock.
    let mut leaves = leaves.lock().unwrap_or_else(PoisonError::into_inner);
    leaves.catch_up(&tx, stored)?;
    let mut seen = HashSet::with_capacity(batch.entries.len());
    for entry in &batch.entries {
        if !seen.insert(entry.leaf_hash) || leaves.find(&tx, &entry.leaf_hash)?.is_some() {
            return Err(StorageError::Collision);
        }
    }
    {
        let mut insert = tx
            .prepare_cached("INSERT INTO log_entries (idx, leaf_hash, data) VALUES (?1, ?2, ?3)")?;
        for entry in &batch.entries {
            let idx = to_i64("entry index", entry.index)?;
            insert
                .execute(params![idx, &entry.leaf_hash[..], &entry.data[..]])
                .map_err(collision)?;
        }
        // A full tile never changes: the WHERE keeps a stored full tile as it is.
        let mut tile = tx.prepare_cached(
            "INSERT INTO log_tiles (level, idx, data) VALUES (?1, ?2, ?3)
             ON CONFLICT (level, idx) DO UPDATE SET data = excluded.data
             WHERE length(log_tiles.data) < ?4",
        )?;
        for (id, data) in &batch.tiles {
            let idx = to_i64("tile index", id.index)?;
            tile.execute(params![id.level, idx, data, FULL_TILE_BYTES as i64])?;
        }
    }
    let size = to_i64("tree size", batch.checkpoint.size)?;
    tx.execute(
        "UPDATE log_state SET size = ?1, root = ?2, note = ?3 WHERE id = 1",
        params![size, &batch.checkpoint.root[..], batch.checkpoint.note],
    )?;
    tx.execute(
        "INSERT INTO log_checkpoints (size, note) VALUES (?1, ?2)",
        params![size, batch.checkpoint.note],
    )
    .map_err(collision)?;
    tx.commit().map_err(|e| StorageError::CommitUnknown {
        size: batch.checkpoint.size,
        source: Box::new(e.into()),
    })?;
    if leaves.covered() == batch.old_size {
        leaves.extend(batch.entries.iter().map(|e| (e.leaf_hash, e.index)));
    }
    Ok(())
}

impl LogStorage for SqliteStorage {
    async fn initialize(&self, empty: &StoredCheckpoint) -> Result<StoredCheckpoint, StorageError> {
        let empty = empty.clone();
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(stored) = latest(&tx)? {
                return Ok(stored);
            }
            let size = to_i64("tree size", empty.size)?;
            tx.execute(
                "INSERT INTO log_state (id, size, root, note) VALUES (1, ?1, ?2, ?3)",
                params![size, &empty.root[..], empty.note],
            )?;
            tx.execute(
                "INSERT OR IGNORE INTO log_checkpoints (size, note) VALUES (?1, ?2)",
                params![size, empty.note],
            )?;
            tx.commit()?;
            Ok(empty)
        })
        .await
    }

    async fn latest(&self) -> Result<Option<StoredCheckpoint>, StorageError> {
        self.read(latest).await
    }

    async fn commit(&self, batch: Arc<Batch>) -> Result<(), StorageError> {
        let inner = self.inner.clone();
        self.write(move |conn| commit(conn, &inner.leaves, &batch))
            .await
    }

    async fn read_tiles(&self, tiles: Vec<TileId>) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        self.read(move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT data FROM log_tiles WHERE level = ?1 AND idx = ?2")?;
            tiles
                .iter()
                .map(|id| {
                    let idx = to_i64("tile index", id.index)?;
                    Ok(stmt
                        .query_row(params![id.level, idx], |row| row.get(0))
                        .optional()?)
                })
                .collect()
        })
        .await
    }

    async fn read_entries(
        &self,
        start: u64,
        end: u64,
    ) -> Result<Vec<(u64, Vec<u8>)>, StorageError> {
        let (start, end) = (to_i64("entry index", start)?, to_i64("entry index", end)?);
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT idx, data FROM log_entries WHERE idx >= ?1 AND idx < ?2 ORDER BY idx",
            )?;
            let rows = stmt.query_map(params![start, end], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
            })?;
            rows.map(|row| {
                let (idx, data) = row?;
                Ok((to_u64(idx)?, data))
            })
            .collect()
        })
        .await
    }

    async fn lookup(&self, leaf_hashes: Vec<Hash>) -> Result<Vec<(Hash, u64)>, StorageError> {
        let inner = self.inner.clone();
        self.read(move |conn| {
            let mut leaves = inner.leaves.lock().unwrap_or_else(PoisonError::into_inner);
            catch_up_to_stored(conn, &mut leaves)?;
            // `find` confirms prefix hits with reads of its own, which see at least that snapshot.
            let mut found = Vec::new();
            for hash in leaf_hashes {
                if let Some(index) = leaves.find(conn, &hash)? {
                    found.push((hash, index));
                }
            }
            Ok(found)
        })
        .await
    }

    async fn checkpoint_at(&self, size: u64) -> Result<Option<String>, StorageError> {
        let size = to_i64("tree size", size)?;
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT note FROM log_checkpoints WHERE size = ?1")?
                .query_row([size], |row| row.get(0))
                .optional()?)
        })
        .await
    }

    async fn add_cosignature(&self, size: u64, line: String) -> Result<bool, StorageError> {
        let size = to_i64("tree size", size)?;
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let known: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM log_checkpoints WHERE size = ?1",
                    [size],
                    |r| r.get(0),
                )
                .optional()?;
            if known.is_none() {
                return Ok(false);
            }
            tx.execute(
                "INSERT OR IGNORE INTO log_cosignatures (size, seq, line)
                 VALUES (?1, (SELECT COUNT(*) FROM log_cosignatures WHERE size = ?1), ?2)",
                params![size, line],
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn cosignatures(&self, size: u64) -> Result<Vec<String>, StorageError> {
        let size = to_i64("tree size", size)?;
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT line FROM log_cosignatures WHERE size = ?1 ORDER BY seq")?;
            let rows = stmt.query_map([size], |row| row.get(0))?;
            Ok(rows.collect::<Result<Vec<String>, _>>()?)
        })
        .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A new store in a temporary directory (kept as long as the guard lives).
    async fn fresh() -> (tempfile::TempDir, SqliteStorage) {
        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::open(&dir.path().join("log.db"))
            .await
            .unwrap();
        (dir, storage)
    }

    /// The bundled SQLite lets a connection map the whole file (its own cap is 2 GiB on
    /// Linux; `.cargo/config.toml` raises it).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_map_the_whole_file() {
        let (_dir, storage) = fresh().await;
        let mapped = storage
            .read(|conn| Ok(conn.query_row("PRAGMA mmap_size", [], |row| row.get::<_, i64>(0))?))
            .await
            .unwrap();
        assert_eq!(mapped, MMAP_BYTES);
    }

    /// Many reads at once run on the reader threads, never on a thread (or a connection)
    /// made for one read.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_reads_run_on_the_reader_threads() {
        let (_dir, storage) = fresh().await;
        let reads: Vec<_> = (0..64)
            .map(|_| {
                let storage = storage.clone();
                tokio::spawn(async move {
                    storage
                        .read(|conn| {
                            // Long enough that, with a thread per waiting read, all 64 overlap.
                            std::thread::sleep(Duration::from_millis(5));
                            let one: i64 = conn.query_row("SELECT 1", [], |row| row.get(0))?;
                            let thread = std::thread::current().name().map(str::to_owned);
                            Ok((one, thread))
                        })
                        .await
                })
            })
            .collect();
        let mut threads = HashSet::new();
        for read in reads {
            let (one, thread) = read.await.unwrap().unwrap();
            assert_eq!(one, 1);
            threads.insert(thread.unwrap_or_default());
        }
        assert!(threads.len() <= READERS, "{threads:?}");
        assert!(
            threads.iter().all(|t| t.starts_with("custody-log-read-")),
            "{threads:?}"
        );
    }

    /// A read that panics fails alone: the thread goes on serving reads.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_read_is_an_error_and_the_readers_go_on() {
        let (_dir, storage) = fresh().await;
        for _ in 0..READERS + 1 {
            let failed = storage
                .read(|_| -> Result<(), StorageError> { panic!("a read that panics") })
                .await;
            let message = failed.unwrap_err().to_string();
            assert!(message.contains("panicked"), "{message}");
        }
        let one = storage
            .read(|conn| Ok(conn.query_row("SELECT 1", [], |row| row.get::<_, i64>(0))?))
            .await
            .unwrap();
        assert_eq!(one, 1);
    }
}
