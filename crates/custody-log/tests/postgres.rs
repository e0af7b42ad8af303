//! The backend conformance suite on a real PostgreSQL server started by the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pg::PgServer;
use custody_log::storage::PostgresStorage;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_conformance() {
    let server = PgServer::start();
    let url = server.create_database("contract");
    let storage = PostgresStorage::connect(&url).unwrap();
    common::storage_contract::storage_contract(&storage).await;
    let url = server.create_database("conformance");
    common::log_conformance(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_replicas_never_share_or_skip_an_index() {
    let server = PgServer::start();
    let url = server.create_database("replicas");
    common::replicas::replicas(&url, &url, 1500).await;
}
