//! The conformance suite on a real PostgreSQL server started by the test (never skipped:
//! missing PostgreSQL binaries fail it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../custody-log/tests/common/pg.rs"]
mod pg;

use std::sync::{Arc, Barrier};

use common::contract::{self, digest, release};
use custody_release::store::postgres::PostgresReleaseStore;
use custody_release::store::{ReleaseDb, ReleaseStore, StoreError};
use pg::PgServer;

#[test]
fn postgres_conformance() {
    let server = PgServer::start();

    // Several processes' worth of handles creating the schema at once.
    let url = server.create_database("contract");
    let barrier = Barrier::new(4);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let store = PostgresReleaseStore::connect(&url).unwrap();
                barrier.wait();
                store.initialize().unwrap();
            });
        }
    });

    let store = PostgresReleaseStore::connect(&url).unwrap();
    contract::contract(&store);

    let url = server.create_database("race");
    PostgresReleaseStore::connect(&url)
        .unwrap()
        .initialize()
        .unwrap();
    let open = || Box::new(PostgresReleaseStore::connect(&url).unwrap()) as Box<dyn ReleaseStore>;
    contract::race(&open, 4, 50);
    // One handle shared by more threads than it has connections.
    contract::shared_handle(ReleaseDb::open(&url).unwrap(), 12, 10);

    // A database from before request bindings (no release_requests table) keeps working.
    let url = server.create_database("legacy");
    {
        let store = PostgresReleaseStore::connect(&url).unwrap();
        store.initialize().unwrap();
        store
            .append_release(&release("staging", 1, &digest('a'), Some("old-1")))
            .unwrap();
    }
    postgres::Client::connect(&url, postgres::NoTls)
        .unwrap()
        .batch_execute("DROP TABLE release_requests")
        .unwrap();
    let store = PostgresReleaseStore::connect(&url).unwrap();
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

#[test]
fn postgres_from_the_tokio_blocking_pool() {
    let server = PgServer::start();
    let url = server.create_database("blocking");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    runtime.block_on(async {
        // Opened on an async thread (connect moves its blocking work off it)...
        let store: Arc<dyn ReleaseStore> = ReleaseDb::open(&url).unwrap();
        let handle = store.clone();
        tokio::task::spawn_blocking(move || handle.initialize())
            .await
            .unwrap()
            .unwrap();
        // ... used from the blocking pool, several calls at once...
        let tasks: Vec<_> = (0..8)
            .map(|t| {
                let store = store.clone();
                tokio::task::spawn_blocking(move || {
                    for n in 0..10 {
                        loop {
                            let seq = store
                                .current_release("staging")
                                .unwrap()
                                .map_or(1, |r| r.seq + 1);
                            match store.append_release(&release(
                                "staging",
                                seq,
                                &digest('a'),
                                Some(&format!("{t}-{n}")),
                            )) {
                                Ok(()) => break,
                                Err(StoreError::Conflict { .. }) => {}
                                Err(err) => panic!("{err}"),
                            }
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let handle = store.clone();
        let history = tokio::task::spawn_blocking(move || handle.releases("staging"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(history.len(), 80);
        assert_eq!(history.last().map(|r| r.seq), Some(80));
        // ... and dropped on an async thread, its pooled connections open.
        drop(store);
    });
    drop(runtime);
}

#[test]
fn postgres_errors_are_one_line_naming_the_database_without_its_password() {
    let server = PgServer::start();
    // Nothing listens on port 1.
    let err = PostgresReleaseStore::connect("postgres://custody:hunter2@127.0.0.1:1/release")
        .unwrap_err()
        .to_string();
    assert!(err.contains("postgres://…@127.0.0.1:1/release"), "{err}");
    assert!(err.contains("cannot connect"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    assert!(!err.contains('\n'), "{err}");

    let err = ReleaseDb::open("postgres://u:pw@h:notaport/db")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not a valid PostgreSQL connection URL"),
        "{err}"
    );
    assert!(!err.contains("pw@"), "{err}");

    // Used before initialize: the server's message, on one line.
    let url = server.create_database("uninitialized");
    let store = PostgresReleaseStore::connect(&url).unwrap();
    let err = store.current_release("staging").unwrap_err().to_string();
    assert!(err.contains("/uninitialized"), "{err}");
    assert!(err.contains("current release of staging"), "{err}");
    assert!(err.contains("release_history"), "{err}");
    assert!(err.contains("42P01"), "{err}");
    assert!(!err.contains('\n'), "{err}");
    store.initialize().unwrap();
    assert_eq!(store.current_release("staging").unwrap(), None);
}

#[test]
fn postgres_reconnects_after_its_connections_are_killed() {
    let server = PgServer::start();
    let url = server.create_database("reconnect");
    let store = PostgresReleaseStore::connect(&url).unwrap();
    store.initialize().unwrap();
    let kill = || {
        let mut admin =
            postgres::Client::connect(&server.url("postgres"), postgres::NoTls).unwrap();
        let killed = admin
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = 'reconnect' AND pid <> pg_backend_pid()",
                &[],
            )
            .unwrap()
            .len();
        // Wait until they are gone.
        while admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = 'reconnect'",
                &[],
            )
            .unwrap()
            .get::<_, i64>(0)
            > 0
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        killed
    };
    // Fill the pool with several idle connections.
    let barrier = Barrier::new(4);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                barrier.wait();
                for _ in 0..20 {
                    store.current_release("staging").unwrap();
                }
            });
        }
    });
    store
        .append_release(&release("staging", 1, &digest('a'), None))
        .unwrap();

    assert!(kill() >= 1);
    // A read on a dead pooled connection is retried on a live one.
    assert_eq!(
        store.current_release("staging").unwrap().map(|r| r.seq),
        Some(1)
    );
    assert!(kill() >= 1);
    // So is a write whose BEGIN found the connection dead.
    store
        .append_release(&release("staging", 2, &digest('b'), None))
        .unwrap();
    assert!(kill() >= 1);
    assert_eq!(store.revocations().unwrap(), vec![]);
    assert_eq!(
        store
            .releases("staging")
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
}
