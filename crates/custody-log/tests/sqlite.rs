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
