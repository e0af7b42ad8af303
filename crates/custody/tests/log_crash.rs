//! Crash test of the real server: writer threads keep submitting to `custody serve` (SQLite)
//! over HTTP while the server is SIGKILLed at random moments and restarted on the same data
//! directory. After every restart: each acknowledged entry (201/200 with a logIndex) is served
//! at its index, the tree served now hashes to every checkpoint ever returned (roots
//! recomputed from the served entries), every hash tile matches (audit), and the log accepts
//! entries again. The seed is printed; `CUSTODY_CRASH_SEED` replays one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod logd;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use custody_client::audit::audit;
use custody_client::tiles::LogClient;
use custody_core::encoding::base64_decode_any;
use custody_core::merkle::MemoryTree;
use custody_core::note::{NoteVerifier, SignedCheckpoint};
use logd::{Daemon, TOKEN, hashedrekord, p256, scratch};
use serde_json::Value;

const CYCLES: usize = 6;
const WRITERS: usize = 6;

/// (index, logged body, checkpoint note) of every acknowledged submission.
type Acks = Arc<Mutex<Vec<(u64, Vec<u8>, String)>>>;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// Submits until `stop`; after a failed attempt (server killed) the same request is sent
/// again, so a request that was committed just before the kill comes back as 200.
fn writer(id: usize, url: Arc<RwLock<String>>, acks: Acks, stop: Arc<AtomicBool>) {
    let key = p256();
    let agent = agent();
    let mut i = 0;
    let mut body = hashedrekord(&key, format!("writer {id} artifact {i}").as_bytes());
    while !stop.load(Ordering::Relaxed) {
        let base = url.read().unwrap().clone();
        let sent = agent
            .post(format!("{base}/api/v2/log/entries"))
            .header("Authorization", format!("Bearer {TOKEN}"))
            .header("Content-Type", "application/json")
            .send(body.as_str());
        let Ok(mut response) = sent else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        let status = response.status().as_u16();
        let Ok(text) = response.body_mut().read_to_string() else {
            continue;
        };
        match status {
            200 | 201 => {
                let a: Value = serde_json::from_str(&text).unwrap();
                let index = a["logIndex"].as_str().unwrap().parse().unwrap();
                let logged = base64_decode_any(a["canonicalizedBody"].as_str().unwrap()).unwrap();
                let note = a["inclusionProof"]["checkpoint"]["envelope"]
                    .as_str()
                    .unwrap();
                acks.lock().unwrap().push((index, logged, note.to_owned()));
                i += 1;
                body = hashedrekord(&key, format!("writer {id} artifact {i}").as_bytes());
            }
            503 | 500 => std::thread::sleep(Duration::from_millis(20)),
            other => panic!("unexpected answer {other}: {text}"),
        }
    }
}

/// A small xorshift generator: reproducible kill moments.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Every acknowledged entry at its index; every checkpoint returned is a prefix of the served
/// tree; the served tiles match it. Returns the served size.
fn check(url: &str, verifier: &NoteVerifier, acks: &Acks) -> u64 {
    // Acknowledgements taken before the tree is read: all are covered by what is served.
    let acks = acks.lock().unwrap().clone();
    let client = LogClient::new(url);
    let report = audit(&client, std::slice::from_ref(verifier)).unwrap();
    let size = report.size;
    let mut tree = MemoryTree::new();
    let mut entries = Vec::new();
    client
        .for_each_entry(0, size, size, |_, entry| {
            tree.push_entry(entry);
            entries.push(entry.to_vec());
        })
        .unwrap();
    assert_eq!(tree.root(), report.root_hash);
    for (index, body, note) in &acks {
        let signed = SignedCheckpoint::verify(note, std::slice::from_ref(verifier)).unwrap();
        let cp = signed.checkpoint();
        assert!(
            cp.size() <= size,
            "checkpoint {} above served {size}",
            cp.size()
        );
        assert_eq!(
            tree.root_at(cp.size()).unwrap(),
            *cp.root_hash(),
            "checkpoint {}",
            cp.size()
        );
        let served = entries.get(*index as usize);
        assert_eq!(
            served,
            Some(body),
            "acknowledged entry {index} is not served"
        );
    }
    size
}

#[test]
fn sigkilled_server_keeps_every_acknowledged_entry() {
    let seed = std::env::var("CUSTODY_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("crash test seed: {seed} (CUSTODY_CRASH_SEED={seed} replays it)");
    let mut rng = seed;
    let (_tmp, data) = scratch();
    let started = Instant::now();
    let mut daemon = Daemon::log(&data, &[]);
    let verifier = NoteVerifier::from_vkey(&logd::vkey(&data)).unwrap();
    let url = Arc::new(RwLock::new(daemon.url.clone()));
    let acks: Acks = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|id| {
            let (url, acks, stop) = (url.clone(), acks.clone(), stop.clone());
            std::thread::spawn(move || writer(id, url, acks, stop))
        })
        .collect();
    let mut last_size = 0;
    for cycle in 0..CYCLES {
        std::thread::sleep(Duration::from_millis(300 + next(&mut rng) % 1200));
        daemon.child.kill().unwrap(); // SIGKILL
        daemon.child.wait().unwrap();
        let acked = acks.lock().unwrap().len();
        daemon = Daemon::log(&data, &[]);
        *url.write().unwrap() = daemon.url.clone();
        let size = check(&daemon.url, &verifier, &acks);
        println!("cycle {cycle}: {acked} acknowledged before the kill, tree size {size}");
        assert!(
            size >= last_size,
            "the tree shrank from {last_size} to {size}"
        );
        last_size = size;
    }
    // The restarted log still accepts entries: wait for new acknowledgements.
    let before = acks.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(20);
    while acks.lock().unwrap().len() < before + WRITERS && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    assert!(
        acks.lock().unwrap().len() >= before + WRITERS,
        "no entries accepted after the last restart"
    );
    let size = check(&daemon.url, &verifier, &acks);
    println!(
        "{} acknowledged, tree size {size}, {:?}",
        acks.lock().unwrap().len(),
        started.elapsed()
    );
    daemon.terminate();
}
