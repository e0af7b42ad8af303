//! The embedded backend: one SQLite file (`gate.db` in the data directory), WAL mode.
//!
//! One node: the change feed is an in-process broadcast among the stores opened on the same
//! file in this process ([`crate::feed`]); other processes on the file are not told. Replicas
//! share a PostgreSQL database instead.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use custody_core::digest::Sha256Digest;
use rusqlite::{Connection, OptionalExtension, params};

use crate::feed::{Change, Subscribers};
use crate::{DecisionRecord, EvidenceStore, StoreError, Stored, StoredBundle, VerifiedKey};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS evidence (
    bundle_digest TEXT PRIMARY KEY,
    bytes BLOB NOT NULL,
    added_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS evidence_subjects (
    artifact_digest TEXT NOT NULL,
    bundle_digest TEXT NOT NULL,
    PRIMARY KEY (artifact_digest, bundle_digest)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    source TEXT NOT NULL,
    artifact TEXT NOT NULL,
    image TEXT,
    environment TEXT,
    allowed INTEGER NOT NULL,
    codes TEXT NOT NULL,
    cached INTEGER NOT NULL,
    latency_us INTEGER NOT NULL,
    policy_digest TEXT NOT NULL,
    count INTEGER NOT NULL DEFAULT 1,
    until TEXT
);
CREATE TABLE IF NOT EXISTS verified (
    bundle_digest TEXT NOT NULL,
    artifact_digest TEXT NOT NULL,
    trust_digest TEXT NOT NULL,
    source TEXT NOT NULL,
    result BLOB NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (bundle_digest, artifact_digest, trust_digest, source)
) WITHOUT ROWID;
";

/// Made after [`add_decision_counts`] (old stores get their columns first).
const INDEXES: &str = "CREATE INDEX IF NOT EXISTS decisions_at ON decisions (at);";

/// The store. A writer connection and a reader connection (WAL: reads do not wait for writes),
/// and one for the decision log, which commits without an fsync (`synchronous=NORMAL`: a
/// process crash loses nothing committed, a power loss may lose the last decisions; evidence
/// is always fsynced before it is acknowledged).
pub struct SqliteEvidenceStore {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    decisions: Mutex<Connection>,
    feed: Arc<Subscribers>,
    origin: u64,
}

impl std::fmt::Debug for SqliteEvidenceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteEvidenceStore(..)")
    }
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let open_error = |error| StoreError::Open {
        path: path.display().to_string(),
        error,
    };
    let conn = Connection::open(path).map_err(open_error)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(open_error)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(open_error)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(open_error)?;
    Ok(conn)
}

/// Stores made before decision rows had counts get the two columns (every old row is one
/// decision).
fn add_decision_counts(conn: &Connection) -> rusqlite::Result<()> {
    let has: bool = conn.query_row(
        "SELECT count(*) > 0 FROM pragma_table_info('decisions') WHERE name = 'count'",
        [],
        |r| r.get(0),
    )?;
    if !has {
        conn.execute_batch(
            "BEGIN; ALTER TABLE decisions ADD COLUMN count INTEGER NOT NULL DEFAULT 1; \
             ALTER TABLE decisions ADD COLUMN until TEXT; COMMIT;",
        )?;
    }
    Ok(())
}

impl SqliteEvidenceStore {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<SqliteEvidenceStore, StoreError> {
        let writer = open_connection(path)?;
        writer
            .execute_batch(SCHEMA)
            .and_then(|()| add_decision_counts(&writer))
            .and_then(|()| writer.execute_batch(INDEXES))
            .map_err(|error| StoreError::Open {
                path: path.display().to_string(),
                error,
            })?;
        let reader = open_connection(path)?;
        let decisions = open_connection(path)?;
        decisions
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(|error| StoreError::Open {
                path: path.display().to_string(),
                error,
            })?;
        Ok(SqliteEvidenceStore {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            decisions: Mutex::new(decisions),
            feed: crate::feed::local(path),
            origin: crate::feed::new_origin(),
        })
    }
}

impl EvidenceStore for SqliteEvidenceStore {
    /// Stores a bundle under every digest it claims; idempotent by the bundle's SHA-256.
    fn put(
        &self,
        bytes: &[u8],
        subjects: &[Sha256Digest],
        now: &str,
    ) -> Result<Stored, StoreError> {
        let bundle_digest = Sha256Digest::of(bytes);
        let key = bundle_digest.to_string();
        let mut conn = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = conn.transaction()?;
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO evidence (bundle_digest, bytes, added_at) VALUES (?1, ?2, ?3)",
            params![key, bytes, now],
        )?;
        for subject in subjects {
            tx.execute(
                "INSERT OR IGNORE INTO evidence_subjects (artifact_digest, bundle_digest) VALUES (?1, ?2)",
                params![subject.to_string(), key],
            )?;
        }
        tx.commit()?;
        Ok(Stored {
            bundle_digest,
            subjects: subjects.to_vec(),
            new: inserted == 1,
        })
    }

    /// Every bundle stored under `artifact`, oldest first.
    fn for_artifact(&self, artifact: &Sha256Digest) -> Result<Vec<StoredBundle>, StoreError> {
        let conn = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
        let mut stmt = conn.prepare_cached(
            "SELECT e.bundle_digest, e.bytes FROM evidence_subjects s \
             JOIN evidence e ON e.bundle_digest = s.bundle_digest \
             WHERE s.artifact_digest = ?1 ORDER BY e.rowid",
        )?;
        let rows = stmt.query_map(params![artifact.to_string()], |row| {
            Ok(StoredBundle {
                bundle_digest: row.get(0)?,
                bytes: row.get(1)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Appends decisions in one transaction.
    fn append_decisions(&self, records: &[DecisionRecord]) -> Result<(), StoreError> {
        let mut conn = self
            .decisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO decisions (at, source, artifact, image, environment, allowed, codes, cached, latency_us, policy_digest, count, until) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?;
            for r in records {
                stmt.execute(params![
                    r.at,
                    r.source,
                    r.artifact,
                    r.image,
                    r.environment,
                    r.allowed,
                    r.codes,
                    r.cached,
                    i64::try_from(r.latency_us).unwrap_or(i64::MAX),
                    r.policy_digest,
                    i64::try_from(r.count).unwrap_or(i64::MAX),
                    r.until,
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// How many decisions are logged (tests, operations).
    fn decision_count(&self) -> Result<u64, StoreError> {
        let conn = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
        let n: i64 = conn.query_row("SELECT coalesce(sum(count), 0) FROM decisions", [], |r| {
            r.get(0)
        })?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn prune_decisions(&self, before: &str, limit: u64) -> Result<u64, StoreError> {
        let conn = self
            .decisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let n = conn.execute(
            "DELETE FROM decisions WHERE id IN \
             (SELECT id FROM decisions WHERE at < ?1 ORDER BY at LIMIT ?2)",
            params![before, i64::try_from(limit).unwrap_or(i64::MAX)],
        )?;
        Ok(n as u64)
    }

    fn verified(&self, key: &VerifiedKey) -> Result<Option<Vec<u8>>, StoreError> {
        let conn = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
        let mut stmt = conn.prepare_cached(
            "SELECT result FROM verified WHERE bundle_digest = ?1 AND artifact_digest = ?2 \
             AND trust_digest = ?3 AND source = ?4",
        )?;
        Ok(stmt
            .query_row(
                params![
                    key.bundle.to_string(),
                    key.artifact.to_string(),
                    key.trust.to_string(),
                    key.source
                ],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn put_verified(&self, key: &VerifiedKey, result: &[u8], now: &str) -> Result<(), StoreError> {
        // A cache: the decision writer's connection (no fsync per row) is enough.
        let conn = self
            .decisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut stmt = conn.prepare_cached(
            "INSERT OR IGNORE INTO verified (bundle_digest, artifact_digest, trust_digest, source, result, at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        stmt.execute(params![
            key.bundle.to_string(),
            key.artifact.to_string(),
            key.trust.to_string(),
            key.source,
            result,
            now
        ])?;
        Ok(())
    }

    fn publish(&self, change: &Change) -> Result<(), StoreError> {
        self.feed.send(self.origin, change);
        Ok(())
    }

    fn subscribe(&self) -> std::sync::mpsc::Receiver<Change> {
        self.feed.subscribe(self.origin)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{EvidenceError, claimed_digests};

    #[test]
    fn stores_once_and_finds_by_subject() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteEvidenceStore::open(&dir.path().join("gate.db")).unwrap();
        let a = Sha256Digest::of(b"a");
        let b = Sha256Digest::of(b"b");
        let first = store.put(b"{bundle}", &[a, b], "now").unwrap();
        assert!(first.new);
        assert!(!store.put(b"{bundle}", &[a, b], "now").unwrap().new);
        assert_eq!(store.for_artifact(&a).unwrap().len(), 1);
        assert_eq!(store.for_artifact(&b).unwrap()[0].bytes, b"{bundle}");
        assert!(
            store
                .for_artifact(&Sha256Digest::of(b"c"))
                .unwrap()
                .is_empty()
        );
        assert!(matches!(
            claimed_digests(b"{}"),
            Err(EvidenceError::Bundle(_))
        ));
    }

    #[test]
    fn a_store_from_before_decision_counts_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gate.db");
        {
            let old = Connection::open(&path).unwrap();
            old.execute_batch(
                "CREATE TABLE decisions (id INTEGER PRIMARY KEY, at TEXT NOT NULL, \
                 source TEXT NOT NULL, artifact TEXT NOT NULL, image TEXT, environment TEXT, \
                 allowed INTEGER NOT NULL, codes TEXT NOT NULL, cached INTEGER NOT NULL, \
                 latency_us INTEGER NOT NULL, policy_digest TEXT NOT NULL); \
                 INSERT INTO decisions (at, source, artifact, allowed, codes, cached, latency_us, \
                 policy_digest) VALUES ('t', 'evaluate', 'sha256:00', 1, '', 0, 5, 'p');",
            )
            .unwrap();
        }
        let store = SqliteEvidenceStore::open(&path).unwrap();
        assert_eq!(store.decision_count().unwrap(), 1);
        let hits = DecisionRecord {
            at: "t".into(),
            source: "admission",
            artifact: "sha256:00".into(),
            image: None,
            environment: None,
            allowed: true,
            codes: String::new(),
            cached: true,
            latency_us: 3,
            policy_digest: "p".into(),
            count: 41,
            until: Some("u".into()),
        };
        store.append_decisions(&[hits]).unwrap();
        assert_eq!(store.decision_count().unwrap(), 42);
        drop(store);
        // Opening again leaves the upgraded table as it is.
        assert_eq!(
            SqliteEvidenceStore::open(&path)
                .unwrap()
                .decision_count()
                .unwrap(),
            42
        );
    }
}
