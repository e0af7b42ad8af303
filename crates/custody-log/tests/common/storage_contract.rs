//! The `LogStorage` contract (its doc comment's MUSTs), checked directly on a backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use custody_core::merkle::leaf_hash;
use custody_log::StorageError;
use custody_log::layout::TileId;
use custody_log::storage::{Batch, LogStorage, NewEntry, StoredCheckpoint};

fn checkpoint(size: u64, tag: &str) -> StoredCheckpoint {
    StoredCheckpoint {
        size,
        root: [u8::try_from(size % 256).unwrap(); 32],
        note: format!("note {size} {tag}\n"),
    }
}

fn batch(old: u64, entries: &[&str], tiles: Vec<(TileId, Vec<u8>)>) -> Arc<Batch> {
    let entries: Vec<NewEntry> = entries
        .iter()
        .zip(old..)
        .map(|(e, index)| NewEntry {
            index,
            leaf_hash: leaf_hash(e.as_bytes()),
            data: e.as_bytes().into(),
        })
        .collect();
    let size = old + entries.len() as u64;
    Arc::new(Batch {
        old_size: old,
        entries,
        tiles,
        checkpoint: checkpoint(size, "b"),
    })
}

/// Runs the contract on an empty store.
pub async fn storage_contract<S: LogStorage>(storage: &S) {
    assert_eq!(
        storage.latest().await.unwrap(),
        None,
        "an empty store has no checkpoint"
    );
    let empty = checkpoint(0, "first");
    assert_eq!(storage.initialize(&empty).await.unwrap(), empty);
    // initialize MUST NOT replace a stored checkpoint.
    assert_eq!(
        storage.initialize(&checkpoint(0, "second")).await.unwrap(),
        empty
    );

    let tile0 = TileId { level: 0, index: 0 };
    let full = vec![7u8; 8192];
    let b1 = batch(0, &["a", "b", "c"], vec![(tile0, vec![1u8; 96])]);
    storage.commit(b1.clone()).await.unwrap();
    assert_eq!(storage.latest().await.unwrap(), Some(b1.checkpoint.clone()));

    // Compare-and-swap: a batch built on size 0 again MUST fail and change nothing.
    let stale = batch(0, &["x"], vec![(tile0, vec![9u8; 32])]);
    match storage.commit(stale).await {
        Err(StorageError::Conflict {
            expected: 0,
            found: 3,
        }) => {}
        other => panic!("stale batch: {other:?}"),
    }
    assert_eq!(storage.latest().await.unwrap().unwrap().size, 3);
    assert_eq!(
        storage.read_tiles(vec![tile0]).await.unwrap(),
        vec![Some(vec![1u8; 96])]
    );
    assert!(
        storage
            .lookup(vec![leaf_hash(b"x")])
            .await
            .unwrap()
            .is_empty()
    );

    // A batch reusing a stored leaf hash MUST be refused whole.
    let dup = batch(3, &["d", "a"], vec![]);
    assert!(matches!(
        storage.commit(dup).await,
        Err(StorageError::Collision)
    ));
    assert_eq!(storage.latest().await.unwrap().unwrap().size, 3);
    assert!(
        storage
            .lookup(vec![leaf_hash(b"d")])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(storage.read_entries(0, 10).await.unwrap().len(), 3);

    // A full tile, once stored, never changes; partial tiles grow.
    let b2 = batch(
        3,
        &["d"],
        vec![
            (tile0, full.clone()),
            (TileId { level: 1, index: 0 }, vec![2; 32]),
        ],
    );
    storage.commit(b2).await.unwrap();
    let b3 = batch(4, &["e"], vec![(tile0, vec![8u8; 8192])]);
    storage.commit(b3).await.unwrap();
    let tiles = storage
        .read_tiles(vec![
            TileId { level: 1, index: 0 },
            tile0,
            TileId { level: 0, index: 1 },
        ])
        .await
        .unwrap();
    assert_eq!(tiles, vec![Some(vec![2; 32]), Some(full), None]);

    // Reads.
    let entries = storage.read_entries(1, 4).await.unwrap();
    assert_eq!(
        entries,
        vec![(1, b"b".to_vec()), (2, b"c".to_vec()), (3, b"d".to_vec())]
    );
    let mut found = storage
        .lookup(vec![leaf_hash(b"e"), leaf_hash(b"zz"), leaf_hash(b"a")])
        .await
        .unwrap();
    found.sort_by_key(|(_, i)| *i);
    assert_eq!(found, vec![(leaf_hash(b"a"), 0), (leaf_hash(b"e"), 4)]);
    assert_eq!(
        storage.checkpoint_at(3).await.unwrap(),
        Some(b1.checkpoint.note.clone())
    );
    assert_eq!(
        storage.checkpoint_at(0).await.unwrap(),
        Some(empty.note.clone())
    );
    assert_eq!(storage.checkpoint_at(2).await.unwrap(), None);

    // Cosignatures: per size, in arrival order, idempotent, only for known checkpoints.
    assert!(
        storage
            .add_cosignature(3, "— w1 AAAA".into())
            .await
            .unwrap()
    );
    assert!(
        storage
            .add_cosignature(3, "— w0 BBBB".into())
            .await
            .unwrap()
    );
    assert!(
        storage
            .add_cosignature(3, "— w1 AAAA".into())
            .await
            .unwrap()
    );
    assert!(
        !storage
            .add_cosignature(2, "— w1 AAAA".into())
            .await
            .unwrap()
    );
    assert_eq!(
        storage.cosignatures(3).await.unwrap(),
        vec!["— w1 AAAA", "— w0 BBBB"]
    );
    assert!(storage.cosignatures(4).await.unwrap().is_empty());

    // Concurrent commits on the same size: exactly one wins.
    let (x, y) = tokio::join!(
        storage.commit(batch(5, &["p", "q"], vec![])),
        storage.commit(batch(5, &["r"], vec![]))
    );
    assert!(
        x.is_ok() != y.is_ok(),
        "exactly one racing commit wins: {x:?} {y:?}"
    );
    let size = storage.latest().await.unwrap().unwrap().size;
    assert_eq!(
        storage.read_entries(0, 100).await.unwrap().len() as u64,
        size
    );
}
