//! Two `custody serve` replicas on one PostgreSQL database (a private server started by the
//! test): they share the database and the log key (copied data directory: `log.skey`,
//! `log.json`, `log.vkey`), take writes concurrently, never give an index twice or skip one,
//! and serve the same checkpoint and tiles. A replica with another key is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod logd;
#[path = "../../custody-log/tests/common/pg.rs"]
mod pg;

use custody_client::audit::audit;
use custody_client::tiles::LogClient;
use custody_core::note::NoteVerifier;
use logd::{Daemon, TOKEN, get, hashedrekord, p256, post_entry};
use serde_json::Value;

const ENTRIES: usize = 400;
const THREADS: usize = 8;

fn copy_key_files(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for name in ["log.skey", "log.json", "log.vkey"] {
        std::fs::copy(from.join(name), to.join(name)).unwrap();
    }
}

#[test]
fn two_replicas_on_postgres_share_one_log() {
    let server = pg::PgServer::start();
    let url = server.create_database("replicas");
    let tmp = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (tmp.path().join("a"), tmp.path().join("b"));
    let a = Daemon::log(&a_dir, &["--database", &url]);
    copy_key_files(&a_dir, &b_dir);
    let b = Daemon::log(&b_dir, &["--database", &url]);
    assert!(
        !a_dir.join("log.db").exists(),
        "with --database there is no SQLite file"
    );

    let key = std::sync::Arc::new(p256());
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let base = if t % 2 == 0 {
                a.url.clone()
            } else {
                b.url.clone()
            };
            let key = key.clone();
            std::thread::spawn(move || {
                (0..ENTRIES / THREADS)
                    .map(|i| {
                        let body = hashedrekord(&key, format!("replica {t}-{i}").as_bytes());
                        let (status, text) = post_entry(&base, &body, Some(TOKEN));
                        assert_eq!(status, 201, "{text}");
                        let answer: Value = serde_json::from_str(&text).unwrap();
                        answer["logIndex"].as_str().unwrap().parse::<u64>().unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut indices: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    indices.sort_unstable();
    assert_eq!(
        indices,
        (0..ENTRIES as u64).collect::<Vec<_>>(),
        "each index exactly once"
    );

    // Both serve the same checkpoint, tiles and bundles, and both audit clean.
    assert_eq!(logd::checkpoint(&a.url), logd::checkpoint(&b.url));
    for path in [
        "tile/0/000",
        "tile/0/001.p/144",
        "tile/1/000.p/1",
        "tile/entries/000",
        "tile/entries/001.p/144",
    ] {
        let (sa, _, ta) = get(&format!("{}/{path}", a.url));
        let (sb, _, tb) = get(&format!("{}/{path}", b.url));
        assert_eq!((sa, sb), (200, 200), "{path}");
        assert_eq!(ta, tb, "{path}");
    }
    let verifier = NoteVerifier::from_vkey(&logd::vkey(&a_dir)).unwrap();
    for base in [&a.url, &b.url] {
        let report = audit(&LogClient::new(base), std::slice::from_ref(&verifier)).unwrap();
        assert_eq!(report.size, ENTRIES as u64);
    }

    // A replica started with another key (a fresh data directory) must not serve this log.
    let c_dir = tmp.path().join("c");
    let token = tmp.path().join("c.token");
    std::fs::write(&token, TOKEN).unwrap();
    let (code, _, err) = logd::custody(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--origin",
        "log.test",
        "--data-dir",
        c_dir.to_str().unwrap(),
        "--write-token-file",
        token.to_str().unwrap(),
        "--database",
        &url,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot open the log"), "{err}");
    a.terminate();
    b.terminate();
}
