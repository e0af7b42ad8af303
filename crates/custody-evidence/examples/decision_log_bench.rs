//! The decision log at scale: fills it with N rows (default 10^7) spread over the last 60
//! days, then times what the server does with it: appending a batch of 512 decisions, one
//! prune pass (5,000 rows older than 30 days, as the decision writer does every minute) and
//! `decision_count`.
//!
//! ```text
//! cargo run --release -p custody-evidence --example decision_log_bench -- /tmp/bench.db [N]
//! cargo run --release -p custody-evidence --example decision_log_bench -- postgres://… [N]
//! ```
//!
//! The fill is one statement (a recursive CTE in SQLite, `generate_series` in PostgreSQL) into
//! an empty store; the timed calls go through the `EvidenceStore` contract like the server's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use custody_evidence::{DecisionRecord, EvidenceDb};

/// 60 days in milliseconds: rows are spread evenly over them, newest now.
const SPAN_MS: i64 = 60 * 86_400_000;

fn main() {
    let mut args = std::env::args().skip(1);
    let target = args
        .next()
        .expect("usage: decision_log_bench URL|PATH [ROWS]");
    let rows: i64 = args.next().map_or(10_000_000, |n| n.parse().expect("ROWS"));
    let db = EvidenceDb::parse(&target).unwrap();
    let store = db.connect().unwrap();
    let now = chrono::Utc::now();
    let now_ms = now.timestamp_millis();
    let started = Instant::now();
    match &db {
        EvidenceDb::Sqlite(path) => {
            let conn = rusqlite::Connection::open(path).unwrap();
            conn.execute(
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1) \
                 INSERT INTO decisions (at, source, artifact, image, environment, allowed, codes, cached, latency_us, policy_digest, count, until) \
                 SELECT strftime('%Y-%m-%dT%H:%M:%fZ', (?2 - ?3 + i * ?3 / ?1) / 1000.0, 'unixepoch'), \
                 'admission', 'sha256:' || printf('%064x', i % 1000), NULL, 'production', 1, '', 0, 250, 'sha256:p', 1, NULL FROM n",
                rusqlite::params![rows, now_ms, SPAN_MS],
            )
            .unwrap();
        }
        EvidenceDb::Postgres(url) => {
            let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
            client
                .execute(
                    "INSERT INTO evidence_decisions (at, source, artifact, image, environment, allowed, codes, cached, latency_us, policy_digest, count, until) \
                     SELECT to_char(to_timestamp(($2::float8 - $3::float8 + i::float8 * $3::float8 / $1::int8::float8) / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), \
                     'admission', 'sha256:' || lpad(to_hex(i % 1000), 64, '0'), NULL, 'production', true, '', false, 250, 'sha256:p', 1, NULL \
                     FROM generate_series(0::int8, $1::int8 - 1) AS i",
                    &[&rows, &(now_ms as f64), &(SPAN_MS as f64)],
                )
                .unwrap();
            client.batch_execute("ANALYZE evidence_decisions").unwrap();
        }
    }
    println!("{db}: filled {rows} rows in {:.1?}", started.elapsed());

    let record = DecisionRecord {
        at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        source: "admission",
        artifact: "sha256:00".to_owned(),
        image: Some("registry.example/app@sha256:00".to_owned()),
        environment: Some("production".to_owned()),
        allowed: true,
        codes: String::new(),
        cached: false,
        latency_us: 300,
        policy_digest: "sha256:p".to_owned(),
        count: 1,
        until: None,
    };
    let batch = vec![record; 512];
    let cutoff =
        (now - chrono::Duration::days(30)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let time = |f: &mut dyn FnMut()| {
        let mut runs: Vec<Duration> = (0..5)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect();
        runs.sort();
        runs
    };
    let append = time(&mut || store.append_decisions(&batch).unwrap());
    let mut deleted = 0;
    let prune = time(&mut || deleted += store.prune_decisions(&cutoff, 5_000).unwrap());
    let mut total = 0;
    let count = time(&mut || total = store.decision_count().unwrap());
    println!(
        "append 512 decisions:        median {:.1?}  max {:.1?}",
        append[2], append[4]
    );
    println!(
        "prune pass (5,000 rows):     median {:.1?}  max {:.1?}  ({deleted} deleted in 5 passes)",
        prune[2], prune[4]
    );
    println!(
        "decision_count:              median {:.1?}  max {:.1?}  ({total})",
        count[2], count[4]
    );
}
