//! The backend conformance suite on SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use custody_log::storage::SqliteStorage;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_storage_contract() {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(&dir.path().join("log.db"))
        .await
        .unwrap();
    common::storage_contract::storage_contract(&storage).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_log_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/log.db");
    common::log_conformance(path.to_str().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_url_form_and_two_writers_on_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("log.db").display());
    // Two Logs on one SQLite file: the compare-and-swap keeps them apart, as on PostgreSQL.
    common::replicas::replicas(&url, &url, 300).await;
}

/// A log created before the duplicate index moved into memory has a `UNIQUE` leaf-hash
/// column and no `(idx, leaf_hash)` index: it must open, gain the index, and keep the contract.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_with_the_old_unique_leaf_index_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE log_state (id INTEGER PRIMARY KEY CHECK (id = 1),
                 size INTEGER NOT NULL, root BLOB NOT NULL, note TEXT NOT NULL);
             CREATE TABLE log_entries (idx INTEGER PRIMARY KEY,
                 leaf_hash BLOB NOT NULL UNIQUE, data BLOB NOT NULL);
             CREATE TABLE log_tiles (level INTEGER NOT NULL, idx INTEGER NOT NULL,
                 data BLOB NOT NULL, PRIMARY KEY (level, idx)) WITHOUT ROWID;
             CREATE TABLE log_checkpoints (size INTEGER PRIMARY KEY, note TEXT NOT NULL);
             CREATE TABLE log_cosignatures (size INTEGER NOT NULL, seq INTEGER NOT NULL,
                 line TEXT NOT NULL, PRIMARY KEY (size, line));",
        )
        .unwrap();
    }
    let storage = SqliteStorage::open(&path).await.unwrap();
    common::storage_contract::storage_contract(&storage).await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        indexes.iter().any(|name| name == "log_entries_leaves"),
        "{indexes:?}"
    );
}

/// A new store has no index keyed by the (random) leaf hash: only the append-only one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_store_indexes_leaf_hashes_in_index_order_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    drop(SqliteStorage::open(&path).await.unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let sql: Vec<String> = conn
        .prepare("SELECT sql FROM sqlite_master WHERE tbl_name = 'log_entries' AND sql IS NOT NULL")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(sql.iter().all(|s| !s.contains("UNIQUE")), "{sql:?}");
    assert!(
        sql.iter().any(|s| s.contains("(idx, leaf_hash)")),
        "{sql:?}"
    );
}
