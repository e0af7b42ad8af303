//! The evidence store's contract, checked on both backends: SQLite (a temporary file) and a
//! real, private PostgreSQL server started by the test (never skipped: missing PostgreSQL
//! binaries fail it). Every check gets a fresh database; "replicas" are two store instances
//! opened on the same database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../custody-log/tests/common/pg.rs"]
mod pg;

use std::sync::Arc;
use std::time::{Duration, Instant};

use custody_core::digest::Sha256Digest;
use custody_evidence::{Change, DecisionRecord, EvidenceDb, EvidenceStore, VerifiedKey};

/// Opens a store on database `name` (the same name twice: two replicas on one database).
type Open<'a> = &'a dyn Fn(&str) -> Arc<dyn EvidenceStore>;

const NOW: &str = "2026-12-07T12:00:00.000Z";

fn d(text: &str) -> Sha256Digest {
    Sha256Digest::of(text.as_bytes())
}

fn decision(at: &str, count: u64) -> DecisionRecord {
    DecisionRecord {
        at: at.to_owned(),
        source: "admission",
        artifact: d("artifact").to_string(),
        image: Some("registry.example/app@sha256:00".to_owned()),
        environment: None,
        allowed: true,
        codes: String::new(),
        cached: count > 1,
        latency_us: 17,
        policy_digest: d("policy").to_string(),
        count,
        until: (count > 1).then(|| at.to_owned()),
    }
}

fn idempotent_put_and_lookup_by_every_subject(open: Open<'_>) {
    let store = open("put");
    let (a, b, c) = (d("a"), d("b"), d("c"));
    let first = store.put(b"{bundle one}", &[a, b], NOW).unwrap();
    assert!(first.new);
    assert_eq!(first.bundle_digest, Sha256Digest::of(b"{bundle one}"));
    let again = store.put(b"{bundle one}", &[a, b], NOW).unwrap();
    assert!(!again.new, "the same bytes twice are stored once");
    for subject in [a, b] {
        let found = store.for_artifact(&subject).unwrap();
        assert_eq!(found.len(), 1, "{subject}");
        assert_eq!(found[0].bytes, b"{bundle one}");
        assert_eq!(found[0].bundle_digest, first.bundle_digest.to_string());
    }
    assert!(store.for_artifact(&c).unwrap().is_empty(), "unknown digest");
}

fn bundles_come_back_oldest_first(open: Open<'_>) {
    let store = open("order");
    let x = d("x");
    let bundles: Vec<Vec<u8>> = (0..12)
        .map(|i| format!("bundle {i:02}").into_bytes())
        .collect();
    // Not in byte or digest order: the store's own order is the order they were stored in.
    for i in [7, 3, 11, 0, 5, 9, 1, 10, 2, 8, 4, 6] {
        store.put(&bundles[i], &[x], NOW).unwrap();
    }
    let got: Vec<Vec<u8>> = store
        .for_artifact(&x)
        .unwrap()
        .into_iter()
        .map(|b| b.bytes)
        .collect();
    let want: Vec<Vec<u8>> = [7, 3, 11, 0, 5, 9, 1, 10, 2, 8, 4, 6]
        .iter()
        .map(|&i| bundles[i].clone())
        .collect();
    assert_eq!(got, want);
}

fn bytes_round_trip_exactly_even_large(open: Open<'_>) {
    let store = open("bytes");
    let binary: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let mut large = Vec::with_capacity(8 << 20);
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    while large.len() < 8 << 20 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        large.extend_from_slice(&state.to_le_bytes());
    }
    let (b, l) = (d("binary"), d("large"));
    store.put(&binary, &[b], NOW).unwrap();
    store.put(&large, &[l], NOW).unwrap();
    assert_eq!(store.for_artifact(&b).unwrap()[0].bytes, binary);
    let got = &store.for_artifact(&l).unwrap()[0];
    assert_eq!(got.bytes.len(), large.len());
    assert!(got.bytes == large, "8 MiB bundle changed on the way");
    assert_eq!(got.bundle_digest, Sha256Digest::of(&large).to_string());
}

fn decisions_append_count_and_prune(open: Open<'_>) {
    let store = open("decisions");
    assert_eq!(store.decision_count().unwrap(), 0);
    store.append_decisions(&[]).unwrap();
    let old: Vec<DecisionRecord> = (0..25)
        .map(|i| decision(&format!("2026-10-01T00:00:{i:02}.000Z"), 1))
        .collect();
    store.append_decisions(&old).unwrap();
    store
        .append_decisions(&[decision("2026-12-07T11:59:00.000Z", 40), decision(NOW, 1)])
        .unwrap();
    assert_eq!(store.decision_count().unwrap(), 25 + 40 + 1);
    // Bounded passes: at most `limit` rows each, oldest first, until none is left.
    let cutoff = "2026-11-07T12:00:00.000Z";
    assert_eq!(store.prune_decisions(cutoff, 10).unwrap(), 10);
    assert_eq!(store.decision_count().unwrap(), 15 + 41);
    assert_eq!(store.prune_decisions(cutoff, 10).unwrap(), 10);
    assert_eq!(store.prune_decisions(cutoff, 10).unwrap(), 5);
    assert_eq!(store.prune_decisions(cutoff, 10).unwrap(), 0);
    assert_eq!(store.decision_count().unwrap(), 41, "new rows stay");
    // Reopening keeps them.
    drop(store);
    assert_eq!(open("decisions").decision_count().unwrap(), 41);
}

fn verified_results_by_exact_key(open: Open<'_>) {
    let store = open("verified");
    let key = VerifiedKey {
        bundle: d("bundle"),
        artifact: d("artifact"),
        trust: d("trust set 1"),
        source: "evidence:sha256:00".to_owned(),
    };
    assert_eq!(store.verified(&key).unwrap(), None);
    store.put_verified(&key, b"result \x00\xff", NOW).unwrap();
    assert_eq!(store.verified(&key).unwrap().unwrap(), b"result \x00\xff");
    // First write wins (a result is a function of its key).
    store.put_verified(&key, b"other", NOW).unwrap();
    assert_eq!(store.verified(&key).unwrap().unwrap(), b"result \x00\xff");
    for other in [
        VerifiedKey {
            trust: d("trust set 2"),
            ..key.clone()
        },
        VerifiedKey {
            artifact: d("other artifact"),
            ..key.clone()
        },
        VerifiedKey {
            bundle: d("other bundle"),
            ..key.clone()
        },
        VerifiedKey {
            source: "request:0".to_owned(),
            ..key.clone()
        },
    ] {
        assert_eq!(store.verified(&other).unwrap(), None, "{other:?}");
    }
    // Another replica sees it.
    assert!(open("verified").verified(&key).unwrap().is_some());
}

fn two_replicas_write_at_once(open: Open<'_>) {
    let a = open("replicas");
    let b = open("replicas");
    let shared = d("shared subject");
    let threads: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .enumerate()
        .map(|(r, store)| {
            std::thread::spawn(move || {
                for i in 0..40 {
                    // Half the bundles are stored by both replicas.
                    let bytes = if i % 2 == 0 {
                        format!("common {i}")
                    } else {
                        format!("replica {r} bundle {i}")
                    };
                    store
                        .put(bytes.as_bytes(), &[shared, d(&bytes)], NOW)
                        .unwrap();
                    store.append_decisions(&[decision(NOW, 1)]).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for store in [&a, &b] {
        let found = store.for_artifact(&shared).unwrap();
        assert_eq!(found.len(), 20 + 2 * 20, "each distinct bundle once");
        let mut digests: Vec<_> = found.iter().map(|f| f.bundle_digest.clone()).collect();
        digests.sort();
        digests.dedup();
        assert_eq!(digests.len(), 60);
        assert_eq!(store.decision_count().unwrap(), 80);
        assert_eq!(store.for_artifact(&d("common 4")).unwrap().len(), 1);
    }
}

fn changes_reach_every_replica(open: Open<'_>) {
    let a = open("feed");
    let b = open("feed");
    let on_a = a.subscribe();
    let on_b = b.subscribe();
    let changes = [
        Change::Evidence(d("x")),
        Change::Decisions(d("y")),
        Change::Release("production".to_owned()),
        Change::All,
    ];
    let started = Instant::now();
    for change in &changes {
        a.publish(change).unwrap();
    }
    for change in &changes {
        let got = on_b
            .recv_timeout(Duration::from_secs(1))
            .unwrap_or_else(|e| panic!("replica b did not get {change:?} within 1 s: {e}"));
        assert_eq!(&got, change);
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    // The publisher applies its own changes itself: no echo.
    b.publish(&Change::Decisions(d("z"))).unwrap();
    assert_eq!(
        on_a.recv_timeout(Duration::from_secs(1)).unwrap(),
        Change::Decisions(d("z")),
        "b's change reaches a"
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(on_a.try_recv().is_err(), "{:?}", on_a.try_recv());
    assert!(on_b.try_recv().is_err(), "no echo of b's own change");
    // A hung-up subscriber does not stop delivery to the others.
    drop(on_b);
    let c = open("feed");
    c.publish(&Change::All).unwrap();
    assert_eq!(
        on_a.recv_timeout(Duration::from_secs(1)).unwrap(),
        Change::All
    );
}

fn conformance(open: Open<'_>) {
    idempotent_put_and_lookup_by_every_subject(open);
    bundles_come_back_oldest_first(open);
    bytes_round_trip_exactly_even_large(open);
    decisions_append_count_and_prune(open);
    verified_results_by_exact_key(open);
    two_replicas_write_at_once(open);
    changes_reach_every_replica(open);
}

#[test]
fn sqlite_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let open = |name: &str| {
        let path = dir.path().join(format!("{name}.db"));
        EvidenceDb::open(path.to_str().unwrap()).unwrap()
    };
    conformance(&open);
    // sqlite://PATH names the same file as the plain path.
    let url = format!("sqlite://{}", dir.path().join("put.db").display());
    assert_eq!(
        EvidenceDb::open(&url)
            .unwrap()
            .for_artifact(&d("a"))
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn postgres_conforms() {
    let server = pg::PgServer::start();
    let created = std::sync::Mutex::new(std::collections::HashSet::new());
    let open = |name: &str| {
        if created.lock().unwrap().insert(name.to_owned()) {
            server.create_database(name);
        }
        EvidenceDb::open(&server.url(name)).unwrap()
    };
    conformance(&open);

    // A lost listening connection: after the reconnection everything is invalid, since what
    // was published during the gap is unknown.
    let store = open("gap");
    let changes = store.subscribe();
    let mut admin = postgres::Client::connect(&server.url("gap"), postgres::NoTls).unwrap();
    let killed = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = 'gap' AND query LIKE 'LISTEN%'",
            &[],
        )
        .unwrap();
    assert_eq!(killed.len(), 1, "one listening connection");
    assert_eq!(
        changes.recv_timeout(Duration::from_secs(5)).unwrap(),
        Change::All
    );
    // And it listens again: another replica's change arrives.
    std::thread::sleep(Duration::from_millis(500));
    open("gap")
        .publish(&Change::Evidence(d("after the gap")))
        .unwrap();
    let mut got = Vec::new();
    while let Ok(change) = changes.recv_timeout(Duration::from_secs(2)) {
        got.push(change.clone());
        if change == Change::Evidence(d("after the gap")) {
            break;
        }
    }
    assert_eq!(
        got.last(),
        Some(&Change::Evidence(d("after the gap"))),
        "{got:?}"
    );
}

#[test]
fn postgres_errors_name_the_database_without_its_password() {
    // Nothing listens on port 1.
    let err = EvidenceDb::open("postgres://custody:hunter2@127.0.0.1:1/evidence?connect_timeout=2")
        .unwrap_err()
        .to_string();
    assert!(err.contains("127.0.0.1:1/evidence"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    assert!(!err.contains('\n'), "{err}");
    let err = EvidenceDb::open("mysql://root:hunter2@h/db")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unsupported scheme mysql://"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    assert!(EvidenceDb::open("").is_err());
    assert!(EvidenceDb::open("sqlite://").is_err());
}
