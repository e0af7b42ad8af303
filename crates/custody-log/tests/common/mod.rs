//! The backend conformance suite: the same checks, run against every storage backend.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod pg;
pub mod replicas;
pub mod storage_contract;

use std::collections::BTreeMap;
use std::time::Duration;

use custody_core::merkle::{MemoryTree, leaf_hash, verify_consistency, verify_inclusion};
use custody_core::note::{NoteSigner, NoteVerifier, SignedCheckpoint};
use custody_log::layout::{TileId, decode_bundle, tile_width};
use custody_log::{Log, LogConfig, LogError, Receipt, Storage, SubmitError};

pub const ORIGIN: &str = "log.test.example/conformance";

pub fn signer() -> NoteSigner {
    NoteSigner::generate(ORIGIN).unwrap().0
}

/// NoteSigner is deliberately not Clone; tests copy it through its key string.
pub fn copy(signer: &NoteSigner) -> NoteSigner {
    NoteSigner::from_skey(&signer.to_skey()).unwrap()
}

pub fn config(batch: usize, delay_ms: u64) -> LogConfig {
    LogConfig {
        origin: ORIGIN.to_owned(),
        batch_max_entries: batch,
        batch_max_delay: Duration::from_millis(delay_ms),
        max_entry_bytes: 1000,
    }
}

pub async fn open(url: &str, signer: &NoteSigner, batch: usize) -> Log {
    let storage = Storage::open(url).await.unwrap();
    Log::open(storage, copy(signer), config(batch, 5))
        .await
        .unwrap()
}

/// Verifies a checkpoint note; returns (size, root).
pub fn parse_checkpoint(note: &str, verifier: &NoteVerifier) -> (u64, [u8; 32]) {
    let signed = SignedCheckpoint::verify(note, std::slice::from_ref(verifier)).unwrap();
    (signed.checkpoint().size(), *signed.checkpoint().root_hash())
}

/// Checks a receipt on its own: signed checkpoint, matching size and root, valid proof.
pub fn check_receipt(receipt: &Receipt, entry: &[u8], verifier: &NoteVerifier) {
    let (size, root) = parse_checkpoint(&receipt.checkpoint, verifier);
    assert_eq!((size, root), (receipt.tree_size, receipt.root_hash));
    assert_eq!(receipt.leaf_hash, leaf_hash(entry));
    verify_inclusion(
        receipt.index,
        size,
        &receipt.leaf_hash,
        &receipt.inclusion_proof,
        &root,
    )
    .unwrap_or_else(|e| panic!("receipt for index {} does not verify: {e}", receipt.index));
}

/// Submits `entries` from many concurrent tasks; returns the receipts in `entries` order.
pub async fn submit_all(log: &Log, entries: &[Vec<u8>]) -> Vec<Receipt> {
    let mut tasks = Vec::new();
    for entry in entries {
        let (log, entry) = (log.clone(), entry.clone());
        tasks.push(tokio::spawn(async move {
            // Push back (HTTP 503 + Retry-After) is part of the contract: retry like a client.
            loop {
                match log.submit(entry.clone()).await {
                    Err(SubmitError::Overloaded) => {
                        tokio::time::sleep(Duration::from_millis(20)).await
                    }
                    other => return other,
                }
            }
        }));
    }
    let mut receipts = Vec::new();
    for task in tasks {
        receipts.push(task.await.unwrap().unwrap());
    }
    receipts
}

pub fn entries(prefix: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{prefix}-{i}").into_bytes())
        .collect()
}

/// Every stored entry, tile and bundle of the latest tree against a MemoryTree built from the
/// entries by index; returns that reference tree.
pub async fn check_against_reference(log: &Log) -> MemoryTree {
    let (size, root) = parse_checkpoint(&log.checkpoint().await.unwrap(), &log.verifier());
    let mut reference = MemoryTree::new();
    let mut stored = Vec::new();
    for index in 0..size {
        let entry = log
            .entry(index)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("gap at {index}"));
        reference.push_entry(&entry);
        stored.push(entry);
    }
    assert_eq!(
        log.entry(size).await.unwrap(),
        None,
        "an entry past the tree size"
    );
    assert_eq!(
        reference.root(),
        root,
        "checkpoint root differs from the reference tree"
    );
    for level in 0..4u8 {
        let mut index = 0u64;
        loop {
            let width = tile_width(TileId { level, index }, size);
            if width == 0 {
                assert_eq!(log.tile(level, index, Some(1)).await.unwrap(), None);
                break;
            }
            check_tile(log, &reference, level, index, width).await;
            if level == 0 {
                check_bundle(log, &stored, index, width).await;
            }
            index += 1;
        }
    }
    reference
}

async fn check_tile(log: &Log, reference: &MemoryTree, level: u8, index: u64, width: u64) {
    let expected: Vec<u8> = (0..width)
        .flat_map(|i| {
            let node = custody_core::merkle::NodeId {
                level: level * 8,
                index: index * 256 + i,
            };
            reference.node(node).unwrap()
        })
        .collect();
    if width == 256 {
        assert_eq!(
            log.tile(level, index, None).await.unwrap().unwrap(),
            expected
        );
        // C2SP: a full tile's partial versions are its prefixes.
        let part = log.tile(level, index, Some(7)).await.unwrap().unwrap();
        assert_eq!(part, expected[..7 * 32]);
    } else {
        let w = u16::try_from(width).unwrap();
        assert_eq!(
            log.tile(level, index, None).await.unwrap(),
            None,
            "full tile too early"
        );
        assert_eq!(
            log.tile(level, index, Some(w)).await.unwrap().unwrap(),
            expected
        );
        assert_eq!(
            log.tile(level, index, Some(w + 1)).await.unwrap(),
            None,
            "too wide"
        );
        assert_eq!(log.tile(level, index, Some(0)).await.unwrap(), None);
    }
}

async fn check_bundle(log: &Log, stored: &[Vec<u8>], index: u64, width: u64) {
    let start = usize::try_from(index * 256).unwrap();
    let want = &stored[start..start + usize::try_from(width).unwrap()];
    let w = u16::try_from(width).ok().filter(|w| *w < 256);
    let bundle = log.entry_bundle(index, w).await.unwrap().unwrap();
    let got = decode_bundle(&bundle).unwrap();
    assert_eq!(got, want.iter().map(Vec::as_slice).collect::<Vec<_>>());
    if let Some(w) = w {
        assert_eq!(log.entry_bundle(index, None).await.unwrap(), None);
        assert_eq!(log.entry_bundle(index, Some(w + 1)).await.unwrap(), None);
    }
}

/// Consistency proofs between every pair of published sizes verify, and match the reference.
pub async fn check_consistency(
    log: &Log,
    reference: &MemoryTree,
    checkpoints: &BTreeMap<u64, [u8; 32]>,
) {
    let sizes: Vec<u64> = checkpoints.keys().copied().filter(|s| *s > 0).collect();
    for (i, &s1) in sizes.iter().enumerate() {
        for &s2 in sizes[i..].iter().step_by(3) {
            let proof = log.consistency_proof(s1, s2).await.unwrap();
            assert_eq!(proof, reference.consistency_proof(s1, s2).unwrap());
            verify_consistency(s1, s2, &checkpoints[&s1], &checkpoints[&s2], &proof)
                .unwrap_or_else(|e| panic!("consistency {s1} -> {s2}: {e}"));
        }
    }
}

/// The Log-level conformance suite. `url` names an empty store.
pub async fn log_conformance(url: &str) {
    let signer = signer();
    let log = open(url, &signer, 64).await;
    let verifier = log.verifier();
    assert_eq!(log.origin(), ORIGIN);
    let (size, root) = parse_checkpoint(&log.checkpoint().await.unwrap(), &verifier);
    assert_eq!(
        (size, root),
        (0, custody_core::merkle::empty_root()),
        "a new log is empty"
    );
    assert_eq!(log.tile(0, 0, Some(1)).await.unwrap(), None);

    // Sequencing: 1000 concurrent submissions; indices 0..999 each exactly once.
    let first = entries("first", 1000);
    let receipts = submit_all(&log, &first).await;
    let mut seen = vec![false; first.len()];
    let mut checkpoints = BTreeMap::new();
    for (receipt, entry) in receipts.iter().zip(&first) {
        assert!(!receipt.duplicate);
        check_receipt(receipt, entry, &verifier);
        assert!(!std::mem::replace(
            &mut seen[usize::try_from(receipt.index).unwrap()],
            true
        ));
        checkpoints.insert(receipt.tree_size, receipt.root_hash);
        assert_eq!(
            log.entry(receipt.index).await.unwrap().as_deref(),
            Some(entry.as_slice())
        );
    }
    assert!(
        checkpoints.len() > 1,
        "1000 entries in batches of 64 make several checkpoints"
    );
    let reference = check_against_reference(&log).await;
    check_consistency(&log, &reference, &checkpoints).await;
    for (index, size) in [(0, 1), (5, 700), (999, 1000), (300, 513)] {
        let proof = log.inclusion_proof(index, size).await.unwrap();
        assert_eq!(proof, reference.inclusion_proof(index, size).unwrap());
    }
    assert!(matches!(
        log.inclusion_proof(0, 1001).await,
        Err(LogError::BeyondCheckpoint { .. })
    ));
    assert!(matches!(
        log.inclusion_proof(1000, 1000).await,
        Err(LogError::Proof(_))
    ));
    assert!(matches!(
        log.consistency_proof(0, 10).await,
        Err(LogError::Proof(_))
    ));

    check_duplicates(&log, &first, &verifier).await;
    check_limits_and_cosignatures(&log, &signer).await;

    // Reopen after close: same tree, numbering continues, wrong key refused.
    let before = log.checkpoint().await.unwrap();
    drop(log);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let log = open(url, &signer, 64).await;
    assert_eq!(log.checkpoint().await.unwrap(), before);
    let more = submit_all(&log, &entries("second", 300)).await;
    let mut indices: Vec<u64> = more.iter().map(|r| r.index).collect();
    indices.sort_unstable();
    assert_eq!(
        indices,
        (1001..1301).collect::<Vec<_>>(),
        "1000 + one fresh entry, then 300 more"
    );
    let reference = check_against_reference(&log).await;
    for r in &more {
        checkpoints.insert(r.tree_size, r.root_hash);
    }
    check_consistency(&log, &reference, &checkpoints).await;
    let other_key = NoteSigner::generate(ORIGIN).unwrap().0;
    let wrong = Log::open(Storage::open(url).await.unwrap(), other_key, config(64, 5)).await;
    assert!(
        matches!(wrong, Err(LogError::WrongLog { .. })),
        "another key must be refused"
    );
    let wrong_origin = LogConfig {
        origin: "other.example".into(),
        ..config(64, 5)
    };
    let wrong = Log::open(
        Storage::open(url).await.unwrap(),
        copy(&signer),
        wrong_origin,
    )
    .await;
    assert!(
        matches!(wrong, Err(LogError::WrongLog { .. })),
        "another origin must be refused"
    );
}

async fn check_duplicates(log: &Log, logged: &[Vec<u8>], verifier: &NoteVerifier) {
    let size_before = parse_checkpoint(&log.checkpoint().await.unwrap(), verifier).0;
    let again = log.submit(logged[17].clone()).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(log.entry(again.index).await.unwrap().unwrap(), logged[17]);
    assert_eq!(again.tree_size, size_before, "a duplicate adds no leaf");
    check_receipt(&again, &logged[17], verifier);
    // The same new entry twice in one batch, plus an old one: one new leaf.
    let fresh = b"fresh duplicate".to_vec();
    let batch = [
        fresh.clone(),
        fresh.clone(),
        logged[3].clone(),
        fresh.clone(),
    ];
    let receipts = submit_all(log, &batch).await;
    let new: Vec<&Receipt> = receipts.iter().filter(|r| !r.duplicate).collect();
    assert_eq!(new.len(), 1, "exactly one of the copies is new");
    for (r, entry) in receipts.iter().zip(&batch) {
        check_receipt(r, entry, verifier);
        if entry == &fresh {
            assert_eq!(r.index, new[0].index);
        }
    }
    let size = parse_checkpoint(&log.checkpoint().await.unwrap(), verifier).0;
    assert_eq!(size, size_before + 1);
}

async fn check_limits_and_cosignatures(log: &Log, signer: &NoteSigner) {
    let too_big = log.submit(vec![0; 1001]).await;
    assert!(matches!(
        too_big,
        Err(SubmitError::TooLarge {
            size: 1001,
            limit: 1000
        })
    ));
    let note = log.checkpoint().await.unwrap();
    let (size, _) = parse_checkpoint(&note, &log.verifier());
    let body = note.split("\n\n").next().unwrap().to_owned() + "\n";
    let witness = custody_core::note::CosignatureSigner::generate("witness.example")
        .unwrap()
        .0;
    let line = witness.cosign(&body, 1_700_000_000).unwrap().to_line();
    log.add_cosignature(size, line.clone()).await.unwrap();
    log.add_cosignature(size, line.clone()).await.unwrap(); // idempotent
    let cosigned = log.checkpoint().await.unwrap();
    assert_eq!(cosigned, format!("{note}{line}"));
    let verifier = witness.verifier().unwrap();
    let parsed = custody_core::note::Note::parse(&cosigned).unwrap();
    assert!(verifier.verify(&parsed).unwrap().is_some());
    assert!(matches!(
        log.add_cosignature(size + 100, line.clone()).await,
        Err(LogError::UnknownCheckpoint { .. })
    ));
    assert!(
        log.add_cosignature(size, "not a line".into())
            .await
            .is_err()
    );
    let fake = signer.sign("forged\n").unwrap().to_line();
    assert!(matches!(
        log.add_cosignature(size, fake).await,
        Err(LogError::InvalidCosignature)
    ));
}
