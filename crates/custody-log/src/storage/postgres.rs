//! The scale-out backend: PostgreSQL, shared by several `custody serve` replicas.
//!
//! Durability: each batch is one transaction run with `SET LOCAL synchronous_commit = on`, so
//! COMMIT returns only after the WAL record is flushed on the server (whatever the server's
//! default). One flush per batch.
//!
//! Compare-and-swap: the batch's first statement is
//! `UPDATE log_state SET … WHERE id = 1 AND size = $old`. The row lock it takes serialises
//! concurrent committers; under READ COMMITTED a waiting UPDATE re-checks its WHERE against the
//! winner's row, matches nothing, and the loser rolls back with [`StorageError::Conflict`].
//! The primary key on `idx` and the unique `leaf_hash` back this up.

use std::str::FromStr;
use std::sync::Arc;

use custody_core::merkle::Hash;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use super::{Batch, LogStorage, StoredCheckpoint, to_hash, to_i64, to_u64};
use crate::error::StorageError;
use crate::layout::{FULL_TILE_BYTES, TileId};

/// Serialises schema creation across replicas (`pg_advisory_xact_lock` key).
const SCHEMA_LOCK: i64 = 0x6375_7374_6f64_7931;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    size BIGINT NOT NULL,
    root BYTEA NOT NULL,
    note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS log_entries (
    idx BIGINT PRIMARY KEY,
    leaf_hash BYTEA NOT NULL UNIQUE,
    data BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS log_tiles (
    level SMALLINT NOT NULL,
    idx BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);
CREATE TABLE IF NOT EXISTS log_checkpoints (
    size BIGINT PRIMARY KEY,
    note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS log_cosignatures (
    size BIGINT NOT NULL,
    seq BIGSERIAL,
    line TEXT NOT NULL,
    PRIMARY KEY (size, line)
);
";

/// PostgreSQL storage over a connection pool. Cheap to clone.
#[derive(Clone)]
pub struct PostgresStorage {
    pool: Pool,
    schema_ready: Arc<tokio::sync::OnceCell<()>>,
}

impl std::fmt::Debug for PostgresStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStorage").finish_non_exhaustive()
    }
}

impl PostgresStorage {
    /// A pool for `url` (`postgres://user:password@host:port/db?...`). Connections open lazily.
    /// TLS is not supported yet: use a local socket, a private network or an `sslmode` other
    /// than `require`.
    pub fn connect(url: &str) -> Result<Self, StorageError> {
        let config = tokio_postgres::Config::from_str(url).map_err(|_| StorageError::Config {
            target: redact(url),
            reason: "not a valid PostgreSQL connection URL",
        })?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager).max_size(16).build()?;
        Ok(Self {
            pool,
            schema_ready: Arc::new(tokio::sync::OnceCell::new()),
        })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StorageError> {
        let client = self.pool.get().await?;
        self.schema_ready
            .get_or_try_init(|| async {
                let mut conn = self.pool.get().await?;
                let tx = conn.transaction().await?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
                    .await?;
                tx.batch_execute(SCHEMA).await?;
                tx.commit().await?;
                Ok::<(), StorageError>(())
            })
            .await?;
        Ok(client)
    }
}

/// The URL without its password, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://…{}", &url[..scheme], &url[at..]),
        _ => url.to_owned(),
    }
}

fn collision(err: tokio_postgres::Error) -> StorageError {
    if err.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        StorageError::Collision
    } else {
        StorageError::Postgres(err)
    }
}

fn row_checkpoint(row: &tokio_postgres::Row) -> Result<StoredCheckpoint, StorageError> {
    Ok(StoredCheckpoint {
        size: to_u64(row.try_get(0)?)?,
        root: to_hash(row.try_get::<_, &[u8]>(1)?)?,
        note: row.try_get(2)?,
    })
}

impl LogStorage for PostgresStorage {
    async fn initialize(&self, empty: &StoredCheckpoint) -> Result<StoredCheckpoint, StorageError> {
        let client = self.client().await?;
        let size = to_i64("tree size", empty.size)?;
        client
            .execute(
                "INSERT INTO log_state (id, size, root, note) VALUES (1, $1, $2, $3)
                 ON CONFLICT (id) DO NOTHING",
                &[&size, &&empty.root[..], &empty.note],
            )
            .await?;
        client
            .execute(
                "INSERT INTO log_checkpoints (size, note) VALUES ($1, $2)
                 ON CONFLICT (size) DO NOTHING",
                &[&size, &empty.note],
            )
            .await?;
        drop(client);
        self.latest().await?.ok_or(StorageError::Corrupt {
            what: "log_state is empty right after initialization",
        })
    }

    async fn latest(&self) -> Result<Option<StoredCheckpoint>, StorageError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT size, root, note FROM log_state WHERE id = 1", &[])
            .await?;
        row.as_ref().map(row_checkpoint).transpose()
    }

    async fn commit(&self, batch: Arc<Batch>) -> Result<(), StorageError> {
        let mut client = self.client().await?;
        let old = to_i64("tree size", batch.old_size)?;
        let new = to_i64("tree size", batch.checkpoint.size)?;
        let mut idx = Vec::with_capacity(batch.entries.len());
        let mut hashes = Vec::with_capacity(batch.entries.len());
        let mut data = Vec::with_capacity(batch.entries.len());
        for entry in &batch.entries {
            idx.push(to_i64("entry index", entry.index)?);
            hashes.push(&entry.leaf_hash[..]);
            data.push(&entry.data[..]);
        }
        let mut levels = Vec::with_capacity(batch.tiles.len());
        let mut tile_idx = Vec::with_capacity(batch.tiles.len());
        let mut tiles = Vec::with_capacity(batch.tiles.len());
        for (id, bytes) in &batch.tiles {
            levels.push(i16::from(id.level));
            tile_idx.push(to_i64("tile index", id.index)?);
            tiles.push(&bytes[..]);
        }
        let full = i32::try_from(FULL_TILE_BYTES).unwrap_or(i32::MAX);

        let tx = client.transaction().await?;
        tx.batch_execute("SET LOCAL synchronous_commit = on")
            .await?;
        let swapped = tx
            .execute(
                "UPDATE log_state SET size = $1, root = $2, note = $3 WHERE id = 1 AND size = $4",
                &[
                    &new,
                    &&batch.checkpoint.root[..],
                    &batch.checkpoint.note,
                    &old,
                ],
            )
            .await?;
        if swapped != 1 {
            let found = tx
                .query_one("SELECT size FROM log_state WHERE id = 1", &[])
                .await?;
            return Err(StorageError::Conflict {
                expected: batch.old_size,
                found: to_u64(found.try_get(0)?)?,
            });
        }
        tx.execute(
            "INSERT INTO log_entries (idx, leaf_hash, data)
             SELECT * FROM UNNEST($1::int8[], $2::bytea[], $3::bytea[])",
            &[&idx, &hashes, &data],
        )
        .await
        .map_err(collision)?;
        // A full tile never changes: the WHERE keeps a stored full tile as it is.
        tx.execute(
            "INSERT INTO log_tiles (level, idx, data)
             SELECT * FROM UNNEST($1::int2[], $2::int8[], $3::bytea[])
             ON CONFLICT (level, idx) DO UPDATE SET data = EXCLUDED.data
             WHERE length(log_tiles.data) < $4",
            &[&levels, &tile_idx, &tiles, &full],
        )
        .await?;
        tx.execute(
            "INSERT INTO log_checkpoints (size, note) VALUES ($1, $2)",
            &[&new, &batch.checkpoint.note],
        )
        .await
        .map_err(collision)?;
        tx.commit().await.map_err(|e| StorageError::CommitUnknown {
            size: batch.checkpoint.size,
            source: Box::new(e.into()),
        })
    }

    async fn read_tiles(&self, ids: Vec<TileId>) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        let client = self.client().await?;
        let levels: Vec<i16> = ids.iter().map(|id| i16::from(id.level)).collect();
        let idx = ids
            .iter()
            .map(|id| to_i64("tile index", id.index))
            .collect::<Result<Vec<_>, _>>()?;
        let rows = client
            .query(
                "SELECT t.level, t.idx, t.data FROM log_tiles t
                 JOIN UNNEST($1::int2[], $2::int8[]) AS q(level, idx)
                 ON t.level = q.level AND t.idx = q.idx",
                &[&levels, &idx],
            )
            .await?;
        let mut out = vec![None; ids.len()];
        for row in rows {
            let (level, index): (i16, i64) = (row.try_get(0)?, row.try_get(1)?);
            let data: Vec<u8> = row.try_get(2)?;
            for (slot, id) in out.iter_mut().zip(&ids) {
                if i16::from(id.level) == level && to_i64("tile index", id.index)? == index {
                    *slot = Some(data.clone());
                }
            }
        }
        Ok(out)
    }

    async fn read_entries(
        &self,
        start: u64,
        end: u64,
    ) -> Result<Vec<(u64, Vec<u8>)>, StorageError> {
        let (start, end) = (to_i64("entry index", start)?, to_i64("entry index", end)?);
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT idx, data FROM log_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx",
                &[&start, &end],
            )
            .await?;
        rows.iter()
            .map(|row| Ok((to_u64(row.try_get(0)?)?, row.try_get(1)?)))
            .collect()
    }

    async fn lookup(&self, leaf_hashes: Vec<Hash>) -> Result<Vec<(Hash, u64)>, StorageError> {
        let client = self.client().await?;
        let keys: Vec<&[u8]> = leaf_hashes.iter().map(|h| &h[..]).collect();
        let rows = client
            .query(
                "SELECT leaf_hash, idx FROM log_entries WHERE leaf_hash = ANY($1)",
                &[&keys],
            )
            .await?;
        rows.iter()
            .map(|row| Ok((to_hash(row.try_get(0)?)?, to_u64(row.try_get(1)?)?)))
            .collect()
    }

    async fn checkpoint_at(&self, size: u64) -> Result<Option<String>, StorageError> {
        let size = to_i64("tree size", size)?;
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT note FROM log_checkpoints WHERE size = $1", &[&size])
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    async fn add_cosignature(&self, size: u64, line: String) -> Result<bool, StorageError> {
        let size = to_i64("tree size", size)?;
        let client = self.client().await?;
        let inserted = client
            .query_opt(
                "INSERT INTO log_cosignatures (size, line)
                 SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM log_checkpoints WHERE size = $1)
                 ON CONFLICT (size, line) DO NOTHING RETURNING 1",
                &[&size, &line],
            )
            .await?;
        if inserted.is_some() {
            return Ok(true);
        }
        // Nothing inserted: either a repeat of a stored line, or no such checkpoint.
        Ok(client
            .query_opt("SELECT 1 FROM log_checkpoints WHERE size = $1", &[&size])
            .await?
            .is_some())
    }

    async fn cosignatures(&self, size: u64) -> Result<Vec<String>, StorageError> {
        let size = to_i64("tree size", size)?;
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT line FROM log_cosignatures WHERE size = $1 ORDER BY seq",
                &[&size],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<Vec<String>, _>>()?)
    }
}
