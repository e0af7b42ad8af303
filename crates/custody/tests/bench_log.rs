//! `custody bench log` against a real server: every pre-signed entry is logged once, the
//! figures add up, a second run does not repeat the first run's entries, and the read phases
//! fetch what the log serves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod logd;

use logd::{Daemon, custody, path_str, scratch, tree_size};
use serde_json::Value;

#[test]
fn the_load_generator_logs_every_entry_once_and_reads_tiles() {
    let (_tmp, data) = scratch();
    let log = Daemon::log(&data, &[]);
    let token = path_str(&data.with_extension("token"));
    let bench = |entries: &str, reads: &str| {
        let (code, out, err) = custody(&[
            "bench",
            "log",
            &log.url,
            "--entries",
            entries,
            "--concurrency",
            "8",
            "--token-file",
            &token,
            "--reads",
            reads,
            "--read-concurrency",
            "4",
            "-o",
            "json",
        ]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let first = bench("300", "0");
    let w = &first["write"];
    assert_eq!(
        (w["created"].as_u64(), w["duplicates"].as_u64()),
        (Some(300), Some(0)),
        "{first}"
    );
    assert!(w["p50Ms"].as_f64().unwrap() <= w["p99Ms"].as_f64().unwrap());
    assert!(w["proofHashes"].as_u64().unwrap() >= 1);
    let second = bench("100", "50");
    assert_eq!(second["write"]["created"].as_u64(), Some(100), "{second}");
    assert_eq!(tree_size(&log.url), 400);
    let kinds: Vec<(&str, u64)> = second["reads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["requests"].as_u64().unwrap()))
        .collect();
    assert_eq!(kinds, [("checkpoint", 50), ("tile", 50), ("bundle", 50)]);

    // Not an http:// URL: a usage error, one line.
    let (code, _, err) = custody(&["bench", "log", "https://x", "--entries", "1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not an http://"), "{err}");
}
