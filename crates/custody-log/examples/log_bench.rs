//! Raw engine throughput: many concurrent submitters against one `Log`.
//!
//! ```text
//! cargo run --release -p custody-log --example log_bench -- sqlite   [submitters] [entries] [entry bytes]
//! cargo run --release -p custody-log --example log_bench -- postgres [submitters] [entries] [entry bytes]
//! ```
//! `sqlite` uses a fresh database in a temporary directory; `postgres` starts a private server
//! (the test harness: initdb + pg_ctl, fsync on) unless `CUSTODY_BENCH_PG_URL` names one.
//! `CUSTODY_BENCH_DELAY_MS` sets `batch_max_delay` (default 20). Prints entries/s and submit→receipt latency (the receipt comes after the batch's commit and
//! checkpoint, so this is submit→checkpoint latency).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/pg.rs"]
mod pg;

use std::time::{Duration, Instant};

use custody_core::note::NoteSigner;
use custody_log::{Log, LogConfig, Storage, SubmitError};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let backend = args.get(1).map_or("sqlite", String::as_str).to_owned();
    let arg = |i: usize, default: usize| args.get(i).map_or(default, |a| a.parse().unwrap());
    let (submitters, total, size) = (arg(2, 2000), arg(3, 200_000), arg(4, 256));

    let dir = tempfile::tempdir().unwrap();
    let mut _server = None;
    let url = match backend.as_str() {
        "sqlite" => dir.path().join("log.db").to_str().unwrap().to_owned(),
        "postgres" => match std::env::var("CUSTODY_BENCH_PG_URL") {
            Ok(url) => url,
            Err(_) => {
                let server = pg::PgServer::start();
                let url = server.create_database("bench");
                _server = Some(server);
                url
            }
        },
        other => panic!("unknown backend {other}: sqlite or postgres"),
    };
    let (signer, _) = NoteSigner::generate("bench.example/log").unwrap();
    let config = LogConfig {
        batch_max_entries: 4096,
        batch_max_delay: Duration::from_millis(
            std::env::var("CUSTODY_BENCH_DELAY_MS").map_or(20, |v| v.parse().unwrap()),
        ),
        ..LogConfig::new("bench.example/log")
    };
    let log = Log::open(Storage::open(&url).await.unwrap(), signer, config.clone())
        .await
        .unwrap();

    let start = Instant::now();
    let per_task = total / submitters;
    let tasks: Vec<_> = (0..submitters)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_task);
                let mut pushed_back = 0u64;
                for i in 0..per_task {
                    let mut entry = format!("{t}-{i}-").into_bytes();
                    entry.resize(size.max(entry.len()), b'x');
                    let begin = Instant::now();
                    loop {
                        match log.submit(entry.clone()).await {
                            Ok(_) => break,
                            Err(SubmitError::Overloaded) => {
                                pushed_back += 1;
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                    latencies.push(begin.elapsed());
                }
                (latencies, pushed_back)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(total);
    let mut pushed_back = 0;
    for task in tasks {
        let (l, p) = task.await.unwrap();
        latencies.extend(l);
        pushed_back += p;
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let metrics = log.metrics();
    println!(
        "{backend}: {} entries of {size} B from {submitters} submitters in {:.2} s = {:.0} entries/s; \
         latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} batches (max {} entries, {} ms), \
         {pushed_back} push-backs",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies[latencies.len() - 1].as_secs_f64() * 1e3,
        metrics.batches,
        config.batch_max_entries,
        config.batch_max_delay.as_millis(),
    );
}
