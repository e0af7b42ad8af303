//! The sequencer: the one task per process that turns submissions into batches.
//!
//! A batch closes when it holds `batch_max_entries` submissions or when its oldest submission
//! has waited `batch_max_delay`. The sequencer then
//! 1. looks up every leaf hash already in the log (duplicates get their existing index),
//! 2. appends the new leaves to a copy of its in-memory tree (frontier + right-edge tiles),
//! 3. signs the new checkpoint,
//! 4. commits entries, tiles and checkpoint in one compare-and-swap transaction
//!    (one fsync), and only then
//! 5. answers each submitter with its index and an inclusion proof to that checkpoint.
//!
//! If the commit loses the compare-and-swap (another replica committed first) or its outcome is
//! unknown, the sequencer reloads the stored tree and rebuilds the batch: entries that did get
//! stored are then found as duplicates, so nothing is numbered twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use custody_core::merkle::{Hash, inclusion_proof};
use custody_core::note::{Checkpoint, NoteSigner, NoteVerifier, SignedCheckpoint};
use tokio::sync::{mpsc, oneshot};

use crate::error::{LogError, StorageError, SubmitError};
use crate::nodes::{Nodes, TileCache, with_nodes};
use crate::storage::{Batch, LogStorage, Storage, StoredCheckpoint};
use crate::tree::{TreeState, append, load_tree};
use crate::{LogConfig, Receipt};

/// Attempts per batch before giving up (each lost attempt means another replica progressed).
const MAX_ATTEMPTS: usize = 32;

/// What the [`crate::Log`] handles and the sequencer share.
pub(crate) struct Shared {
    pub(crate) storage: Storage,
    pub(crate) signer: NoteSigner,
    pub(crate) verifier: NoteVerifier,
    pub(crate) config: LogConfig,
    pub(crate) cache: TileCache,
    pub(crate) latest: LatestCache,
    pub(crate) counters: Counters,
}

/// The served checkpoint (with cosignatures), kept for a short while so that `/checkpoint`
/// does not cost two database reads. This process's commits and cosignatures invalidate it at
/// once; other replicas' commits show after at most [`LATEST_TTL`]. A read that raced with an
/// invalidation is not cached (generation check), so a receipt's checkpoint is never newer
/// than what `/checkpoint` serves afterwards from this process.
#[derive(Default)]
pub(crate) struct LatestCache {
    state: std::sync::Mutex<(u64, Option<(Instant, String)>)>,
}

/// How long a cached checkpoint is served (HTTP caches may keep it for 1 s anyway).
pub(crate) const LATEST_TTL: std::time::Duration = std::time::Duration::from_millis(250);

impl LatestCache {
    /// The cached note if fresh, else the generation to pass to [`LatestCache::put`].
    pub(crate) fn get(&self) -> Result<String, u64> {
        let Ok(state) = self.state.lock() else {
            return Err(u64::MAX);
        };
        match &state.1 {
            Some((at, note)) if at.elapsed() < LATEST_TTL => Ok(note.clone()),
            _ => Err(state.0),
        }
    }

    pub(crate) fn put(&self, generation: u64, note: &str) {
        if let Ok(mut state) = self.state.lock() {
            if state.0 == generation {
                state.1 = Some((Instant::now(), note.to_owned()));
            }
        }
    }

    pub(crate) fn invalidate(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.0 = state.0.wrapping_add(1);
            state.1 = None;
        }
    }
}

/// Running totals for [`crate::LogMetrics`].
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) batches: AtomicU64,
    pub(crate) entries: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) retries: AtomicU64,
}

/// One submission waiting for its batch.
pub(crate) struct Request {
    pub(crate) entry: Arc<[u8]>,
    pub(crate) leaf_hash: Hash,
    pub(crate) enqueued: Instant,
    pub(crate) reply: oneshot::Sender<Result<Receipt, SubmitError>>,
}

impl Shared {
    /// Checks that a stored checkpoint is this log's: signed by its key, for its origin, and
    /// naming the stored size and root.
    pub(crate) fn check_checkpoint(&self, stored: &StoredCheckpoint) -> Result<(), LogError> {
        let wrong = || LogError::WrongLog {
            stored: stored.note.lines().next().unwrap_or_default().to_owned(),
            configured: self.config.origin.clone(),
        };
        let signed = SignedCheckpoint::verify(&stored.note, std::slice::from_ref(&self.verifier))
            .map_err(|_| wrong())?;
        let body = signed.checkpoint();
        if body.origin() != self.config.origin {
            return Err(wrong());
        }
        if body.size() != stored.size || body.root_hash() != &stored.root {
            return Err(StorageError::Corrupt {
                what: "stored checkpoint note disagrees with the stored size or root",
            }
            .into());
        }
        Ok(())
    }

    /// Signs the checkpoint of a tree.
    pub(crate) fn sign(&self, size: u64, root: Hash) -> Result<StoredCheckpoint, LogError> {
        let note = Checkpoint::new(&self.config.origin, size, root)?
            .sign(&self.signer)?
            .to_note_string();
        Ok(StoredCheckpoint { size, root, note })
    }
}

/// Runs until every [`crate::Log`] handle is dropped.
pub(crate) async fn run(shared: Arc<Shared>, mut rx: mpsc::Receiver<Request>, tree: TreeState) {
    let max = shared.config.batch_max_entries;
    let mut tree = Some(tree);
    loop {
        let mut requests = Vec::with_capacity(max.min(4096));
        if rx.recv_many(&mut requests, max).await == 0 {
            return;
        }
        // The batch closes when full or when its *oldest* submission has waited long enough,
        // so submissions that queued up during the previous commit go out at once.
        let deadline = requests[0].enqueued + shared.config.batch_max_delay;
        while requests.len() < max {
            let want = max - requests.len();
            match tokio::time::timeout_at(deadline.into(), rx.recv_many(&mut requests, want)).await
            {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        tree = sequence(&shared, tree, requests).await;
    }
}

enum Failure {
    /// The stored tree moved or the commit outcome is unknown: reload and rebuild.
    Reload,
    /// Give up on this batch.
    Fail(SubmitError),
}

impl From<StorageError> for Failure {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Conflict { .. }
            | StorageError::Collision
            | StorageError::CommitUnknown { .. } => Self::Reload,
            other => Self::Fail(SubmitError::Storage(Arc::new(other))),
        }
    }
}

/// Sequences one batch and answers its submitters; returns the tree to continue from
/// (`None`: reload before the next batch).
async fn sequence(
    shared: &Shared,
    mut tree: Option<TreeState>,
    requests: Vec<Request>,
) -> Option<TreeState> {
    let mut error = SubmitError::Overloaded;
    for _ in 0..MAX_ATTEMPTS {
        let current = match tree.take() {
            Some(current) => current,
            None => match load_tree(shared).await {
                Ok(loaded) => loaded,
                Err(e) => {
                    error = SubmitError::Sequencing(Arc::new(e));
                    break;
                }
            },
        };
        match attempt(shared, &current, &requests).await {
            Ok((next, receipts)) => {
                for (request, receipt) in requests.into_iter().zip(receipts) {
                    let _ = request.reply.send(receipt);
                }
                return Some(next);
            }
            Err(Failure::Reload) => {
                shared.counters.retries.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Err(Failure::Fail(e)) => {
                error = e;
                break;
            }
        }
    }
    for request in requests {
        let _ = request.reply.send(Err(error.clone()));
    }
    None
}

type Receipts = Vec<Result<Receipt, SubmitError>>;

async fn attempt(
    shared: &Shared,
    tree: &TreeState,
    requests: &[Request],
) -> Result<(TreeState, Receipts), Failure> {
    // Duplicates: already stored, or earlier in this batch.
    let mut unique: HashMap<Hash, Option<u64>> = HashMap::with_capacity(requests.len());
    for request in requests {
        unique.entry(request.leaf_hash).or_insert(None);
    }
    let stored = shared
        .storage
        .lookup(unique.keys().copied().collect())
        .await?;
    for (hash, index) in stored {
        if index >= tree.compact.size() {
            return Err(Failure::Reload); // another replica stored it after our last load
        }
        unique.insert(hash, Some(index));
    }
    let mut new = Vec::new();
    let mut next_index = tree.compact.size();
    let mut indices = Vec::with_capacity(requests.len());
    for request in requests {
        let slot = unique.entry(request.leaf_hash).or_insert(None);
        let (index, duplicate) = match *slot {
            Some(index) => (index, true),
            None => {
                new.push((request.entry.clone(), request.leaf_hash));
                *slot = Some(next_index);
                next_index += 1;
                (next_index - 1, false)
            }
        };
        // A repeat within the batch finds the index its first occurrence got: a duplicate.
        indices.push((index, duplicate));
    }

    let fail = |e: LogError| Failure::Fail(SubmitError::Sequencing(Arc::new(e)));
    let mut nodes = Nodes::default();
    let next = if new.is_empty() {
        tree.clone()
    } else {
        let appended = append(tree, new).map_err(|e| fail(e.into()))?;
        let size = appended.tree.compact.size();
        let checkpoint = shared
            .sign(size, appended.tree.compact.root())
            .map_err(fail)?;
        let batch = Arc::new(Batch {
            old_size: tree.compact.size(),
            entries: appended.entries,
            tiles: appended.tiles,
            checkpoint: checkpoint.clone(),
        });
        let committed = shared.storage.commit(batch.clone()).await;
        // Whatever the outcome (an unknown one included), the stored checkpoint may have moved.
        shared.latest.invalidate();
        committed?;
        shared.counters.batches.fetch_add(1, Ordering::Relaxed);
        let added = batch.entries.len() as u64;
        shared.counters.entries.fetch_add(added, Ordering::Relaxed);
        for (id, tile) in &batch.tiles {
            let tile: Arc<[u8]> = tile.as_slice().into();
            shared.cache.put(*id, tile.clone());
            nodes.add_tile(*id, tile);
        }
        for (id, hash) in appended.nodes {
            nodes.add_node(id, hash);
        }
        let mut tree = appended.tree;
        tree.checkpoint = checkpoint;
        tree
    };
    let duplicates = indices.iter().filter(|(_, duplicate)| *duplicate).count() as u64;
    shared
        .counters
        .duplicates
        .fetch_add(duplicates, Ordering::Relaxed);
    let receipts = receipts(shared, &next, requests, &indices, &mut nodes).await;
    Ok((next, receipts))
}

async fn receipts(
    shared: &Shared,
    tree: &TreeState,
    requests: &[Request],
    indices: &[(u64, bool)],
    nodes: &mut Nodes,
) -> Receipts {
    let size = tree.checkpoint.size;
    let proofs = with_nodes(&shared.storage, &shared.cache, nodes, |n| {
        indices
            .iter()
            .map(|(index, _)| inclusion_proof(*index, size, |id| n.node(id)))
            .collect::<Result<Vec<_>, _>>()
    })
    .await;
    let proofs = match proofs {
        Ok(proofs) => proofs,
        Err(e) => {
            // The batch is stored; only the receipts failed. Resubmitting returns duplicates.
            let e = SubmitError::Sequencing(Arc::new(e));
            return requests.iter().map(|_| Err(e.clone())).collect();
        }
    };
    requests
        .iter()
        .zip(indices)
        .zip(proofs)
        .map(|((request, (index, duplicate)), proof)| {
            Ok(Receipt {
                index: *index,
                leaf_hash: request.leaf_hash,
                tree_size: size,
                root_hash: tree.checkpoint.root,
                checkpoint: tree.checkpoint.note.clone(),
                inclusion_proof: proof,
                duplicate: *duplicate,
            })
        })
        .collect()
}
