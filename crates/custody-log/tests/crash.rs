//! Crash test: a writer keeps submitting while the log process is SIGKILLed at random moments.
//! After each kill: every acknowledged entry is at the index it was given, the stored tree is
//! consistent with every checkpoint ever handed out, and the restarted log accepts entries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use custody_core::merkle::verify_consistency;
use custody_core::note::NoteSigner;
use custody_log::{Log, Storage};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::TcpStream;

const CYCLES: usize = 6;
const WRITERS: usize = 12;

/// (index, entry, checkpoint note) of every acknowledged submission.
type Acks = Arc<Mutex<Vec<(u64, Vec<u8>, String)>>>;

fn start(db: &str, skey: &str) -> (Child, u16) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_custody-log-testd"))
        .args([db, skey, common::ORIGIN])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("{line:?}"));
    (child, port.parse().unwrap())
}

async fn writer(port: u16, name: String, acks: Acks) {
    let Ok(stream) = TcpStream::connect(("127.0.0.1", port)).await else {
        return;
    };
    let (read, mut write) = stream.into_split();
    let mut lines = AsyncBufReader::new(read).lines();
    for i in 0.. {
        let entry = format!("{name}-{i}").into_bytes();
        if write
            .write_all(format!("{}\n", hex::encode(&entry)).as_bytes())
            .await
            .is_err()
        {
            return;
        }
        let Ok(Some(answer)) = lines.next_line().await else {
            return;
        };
        let mut parts = answer.split(' ');
        assert_eq!(parts.next(), Some("ok"), "{answer}");
        let index = parts.next().unwrap().parse().unwrap();
        let note = String::from_utf8(hex::decode(parts.next().unwrap()).unwrap()).unwrap();
        acks.lock().unwrap().push((index, entry, note));
    }
}

/// A small xorshift generator: random kill moments, reproducible from the printed seed.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

async fn check(db: &str, signer: &NoteSigner, acks: &Acks) -> u64 {
    let storage = Storage::open(db).await.unwrap();
    let log = Log::open(storage, common::copy(signer), common::config(64, 5))
        .await
        .unwrap();
    let verifier = log.verifier();
    let (size, root) = common::parse_checkpoint(&log.checkpoint().await.unwrap(), &verifier);
    let acks = acks.lock().unwrap().clone();
    let mut checkpoints = BTreeMap::new();
    for (index, entry, note) in &acks {
        assert!(
            *index < size,
            "acknowledged index {index} lost: tree size is {size}"
        );
        let stored = log.entry(*index).await.unwrap();
        assert_eq!(
            stored.as_ref(),
            Some(entry),
            "entry at acknowledged index {index} changed"
        );
        let (s, r) = common::parse_checkpoint(note, &verifier);
        assert!(*index < s);
        checkpoints.insert(s, r);
    }
    for (&s, r) in &checkpoints {
        let proof = log.consistency_proof(s, size).await.unwrap();
        verify_consistency(s, size, r, &root, &proof).unwrap_or_else(|e| {
            panic!("tree of size {size} inconsistent with checkpoint {s}: {e}")
        });
    }
    // Resubmitting an acknowledged entry is idempotent across crashes.
    if let Some((index, entry, _)) = acks.first() {
        let again = log.submit(entry.clone()).await.unwrap();
        assert!(again.duplicate);
        assert_eq!(again.index, *index);
    }
    size
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_no_acknowledged_entry() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("log.db").to_str().unwrap().to_owned();
    let signer = common::signer();
    let skey = signer.to_skey().to_string();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("crash test seed {seed}");
    let acks: Acks = Arc::default();
    let mut sizes = Vec::new();
    for cycle in 0..CYCLES {
        let before = acks.lock().unwrap().len();
        let (mut child, port) = start(&db, &skey);
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| tokio::spawn(writer(port, format!("c{cycle}-w{w}"), acks.clone())))
            .collect();
        let wait = 150 + next(&mut seed) % 600;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for w in writers {
            w.await.unwrap();
        }
        let acked = acks.lock().unwrap().len() - before;
        assert!(
            acked > 0,
            "cycle {cycle}: the restarted log acknowledged nothing in {wait} ms"
        );
        let size = check(&db, &signer, &acks).await;
        println!("cycle {cycle}: killed after {wait} ms, {acked} acknowledged, tree size {size}");
        sizes.push(size);
    }
    assert!(
        sizes.windows(2).all(|w| w[0] <= w[1]),
        "the tree shrank: {sizes:?}"
    );
}
