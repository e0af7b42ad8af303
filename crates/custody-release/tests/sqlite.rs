//! The conformance suite on the SQLite backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::contract::{self, digest, release};
use custody_release::store::sqlite::SqliteReleaseStore;
use custody_release::store::{ReleaseDb, ReleaseStore, StoreError};

#[test]
fn sqlite_conformance() {
    let dir = tempfile::tempdir().unwrap();
    // Parent directories are created.
    let path = dir.path().join("nested/dirs/release.db");
    let store = SqliteReleaseStore::open(&path).unwrap();
    contract::contract(&store);
}

#[test]
fn sqlite_handles_on_one_file_race_without_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("release.db");
    SqliteReleaseStore::open(&path)
        .unwrap()
        .initialize()
        .unwrap();
    let open = || Box::new(SqliteReleaseStore::open(&path).unwrap()) as Box<dyn ReleaseStore>;
    contract::race(&open, 4, 50);
    contract::shared_handle(ReleaseDb::open(path.to_str().unwrap()).unwrap(), 4, 25);
}

#[test]
fn sqlite_is_durable_across_reopen_and_open_picks_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("release.db");
    let url = format!("sqlite://{}", path.display());
    assert_eq!(
        ReleaseDb::parse(&url).unwrap(),
        ReleaseDb::Sqlite(path.clone())
    );
    {
        let store = ReleaseDb::open(&url).unwrap();
        store.initialize().unwrap();
        store
            .append_release(&release("staging", 1, &digest('a'), Some("r1")))
            .unwrap();
    }
    let store = ReleaseDb::open(path.to_str().unwrap()).unwrap();
    store.initialize().unwrap();
    assert_eq!(
        store.current_release("staging").unwrap(),
        Some(release("staging", 1, &digest('a'), Some("r1")))
    );
    // The database is in WAL mode with synchronous=FULL.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn sqlite_errors_are_one_line_naming_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let path = file.join("release.db");
    let err = SqliteReleaseStore::open(&path).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, StoreError::Backend(_)));
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(!message.contains('\n'), "{message}");

    // Used before initialize: a clear error, not a panic.
    let store = SqliteReleaseStore::open(&dir.path().join("empty.db")).unwrap();
    let message = store.releases("staging").unwrap_err().to_string();
    assert!(message.contains("empty.db"), "{message}");
    assert!(message.contains("releases of staging"), "{message}");
    assert!(message.contains("no such table"), "{message}");
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn sqlite_from_the_tokio_blocking_pool() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("release.db");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    runtime.block_on(async {
        let store: Arc<dyn ReleaseStore> = ReleaseDb::open(path.to_str().unwrap()).unwrap();
        let handle = store.clone();
        tokio::task::spawn_blocking(move || {
            handle.initialize().unwrap();
            handle
                .append_release(&release("staging", 1, &digest('a'), None))
                .unwrap();
        })
        .await
        .unwrap();
        let handle = store.clone();
        let current = tokio::task::spawn_blocking(move || handle.current_release("staging"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(current.map(|r| r.seq), Some(1));
        drop(store);
    });
}

#[test]
fn sqlite_database_from_before_request_bindings_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("release.db");
    {
        let store = SqliteReleaseStore::open(&path).unwrap();
        store.initialize().unwrap();
        store
            .append_release(&release("staging", 1, &digest('a'), Some("old-1")))
            .unwrap();
    }
    // The schema as it was before bindings: no release_requests table.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TABLE release_requests")
        .unwrap();
    let store = SqliteReleaseStore::open(&path).unwrap();
    store.initialize().unwrap();
    assert_eq!(store.request_binding("old-1").unwrap(), None);
    assert_eq!(
        store.release_by_request("old-1").unwrap(),
        Some(release("staging", 1, &digest('a'), Some("old-1")))
    );
    let event = custody_release::model::Event {
        id: 0,
        at: contract::at(1),
        actor: "alice".to_owned(),
        action: "promotion".to_owned(),
        object: digest('b'),
        log_index: None,
        detail: serde_json::json!({}),
    };
    store
        .append_release_for_request(
            &release("staging", 2, &digest('b'), Some("new-2")),
            &event,
            &"2".repeat(64),
        )
        .unwrap();
    assert_eq!(
        store.request_binding("new-2").unwrap(),
        Some("2".repeat(64))
    );
}
