//! [`Log`]: the handle the HTTP server and the CLI use.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use custody_core::merkle::{Hash, consistency_proof, inclusion_proof, leaf_hash};
use custody_core::note::{Note, NoteVerifier};
use tokio::sync::{mpsc, oneshot};

use crate::error::{LogError, SubmitError};
use crate::layout::{
    HASH_SIZE, MAX_ENTRY_SIZE, MAX_TILE_LEVEL, MAX_TREE_SIZE, TILE_WIDTH, TileId, encode_bundle,
    tile_exists,
};
use crate::nodes::{Nodes, TileCache, with_nodes};
use crate::sequencer::{self, Request, Shared};
use crate::storage::{LogStorage, Storage};
use crate::{LogConfig, LogMetrics, Receipt};

/// Tiles kept per cache generation (two generations: at most ~16 MiB of tiles).
const CACHE_TILES: usize = 1024;

/// A transparency log: cheap to clone; one sequencer task per process (per [`Log::open`]).
#[derive(Clone)]
pub struct Log {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    submissions: mpsc::Sender<Request>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("origin", &self.inner.shared.config.origin)
            .finish_non_exhaustive()
    }
}

impl Log {
    /// Opens the log in `storage` (creating it, with a signed size-0 checkpoint, if empty),
    /// checks that the stored checkpoint is signed by `signer` for `config.origin` and that the
    /// stored tree hashes to it, and starts the sequencer task. Needs a tokio runtime.
    pub async fn open(
        storage: Storage,
        signer: custody_core::note::NoteSigner,
        config: LogConfig,
    ) -> Result<Log, LogError> {
        if config.batch_max_entries == 0 {
            return Err(LogError::Config("batch_max_entries must be at least 1"));
        }
        if config.max_entry_bytes > MAX_ENTRY_SIZE {
            return Err(LogError::Config(
                "max_entry_bytes above 65535: C2SP entry bundles use 16-bit lengths",
            ));
        }
        let verifier = signer.verifier()?;
        let shared = Arc::new(Shared {
            storage,
            signer,
            verifier,
            config,
            cache: TileCache::new(CACHE_TILES),
            latest: Default::default(),
            counters: Default::default(),
        });
        let empty = shared.sign(0, custody_core::merkle::empty_root())?;
        let stored = shared.storage.initialize(&empty).await?;
        shared.check_checkpoint(&stored)?;
        let tree = crate::tree::load_tree(&shared).await?;
        let capacity = shared.config.batch_max_entries.saturating_mul(8).max(1024);
        let (submissions, rx) = mpsc::channel(capacity);
        tokio::spawn(sequencer::run(shared.clone(), rx, tree));
        Ok(Log {
            inner: Arc::new(Inner {
                shared,
                submissions,
            }),
        })
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// Logs `entry`. Returns once the batch holding it is durable and a checkpoint covering it
    /// is stored (published). Submitting an entry that is already logged (same bytes, so same
    /// leaf hash) adds nothing: the receipt has the existing index, `duplicate: true`, and a
    /// fresh inclusion proof to the latest checkpoint.
    /// `entry` may be shared (`Arc<[u8]>`: not copied) or owned (`Vec<u8>`).
    pub async fn submit(&self, entry: impl Into<Arc<[u8]>>) -> Result<Receipt, SubmitError> {
        let entry: Arc<[u8]> = entry.into();
        let limit = self.shared().config.max_entry_bytes;
        if entry.len() > limit {
            return Err(SubmitError::TooLarge {
                size: entry.len(),
                limit,
            });
        }
        let (reply, answer) = oneshot::channel();
        let request = Request {
            leaf_hash: leaf_hash(&entry),
            entry,
            enqueued: Instant::now(),
            reply,
        };
        self.inner
            .submissions
            .try_send(request)
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => SubmitError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => SubmitError::Closed,
            })?;
        answer.await.map_err(|_| SubmitError::Closed)?
    }

    /// The latest checkpoint as served at `<prefix>/checkpoint`: the log-signed note followed
    /// by every witness cosignature stored for its tree size.
    pub async fn checkpoint(&self) -> Result<String, LogError> {
        let generation = match self.shared().latest.get() {
            Ok(note) => return Ok(note),
            Err(generation) => generation,
        };
        let storage = &self.shared().storage;
        let latest = storage
            .latest()
            .await?
            .ok_or(LogError::UnknownCheckpoint { size: 0 })?;
        let mut note = latest.note;
        for line in storage.cosignatures(latest.size).await? {
            note.push_str(&line);
            note.push('\n');
        }
        self.shared().latest.put(generation, &note);
        Ok(note)
    }

    /// The note of the checkpoint of `tree_size` with its cosignatures, if one was published.
    pub async fn checkpoint_at(&self, tree_size: u64) -> Result<Option<String>, LogError> {
        let storage = &self.shared().storage;
        let Some(mut note) = storage.checkpoint_at(tree_size).await? else {
            return Ok(None);
        };
        for line in storage.cosignatures(tree_size).await? {
            note.push_str(&line);
            note.push('\n');
        }
        Ok(Some(note))
    }

    /// C2SP tlog-tiles `tile/<level>/<index>[.p/<width>]`: `32 * width` bytes (256 hashes when
    /// `width` is `None`), or `None` if the published tree does not have that tile at that
    /// width. A partial request is answered from the stored tile when it is at least that wide
    /// (tiles only grow, so the first `width` hashes never change).
    pub async fn tile(
        &self,
        level: u8,
        index: u64,
        width: Option<u16>,
    ) -> Result<Option<Vec<u8>>, LogError> {
        let Some(width) = requested_width(width) else {
            return Ok(None);
        };
        if level > MAX_TILE_LEVEL {
            return Ok(None);
        }
        let id = TileId { level, index };
        // A tile no tree the storage can hold has (an index near 2^56 or above) is absent:
        // asking the storage would fail converting the index, an error per request.
        if !tile_exists(id, u64::from(width), MAX_TREE_SIZE) {
            return Ok(None);
        }
        let shared = self.shared();
        let bytes = usize::from(width) * HASH_SIZE;
        if let Some(tile) = shared.cache.get(id, u64::from(width)) {
            return Ok(Some(tile[..bytes].to_vec()));
        }
        let stored = shared.storage.read_tiles(vec![id]).await?;
        match stored.into_iter().next().flatten() {
            Some(tile) if tile.len() >= bytes => {
                let out = tile[..bytes].to_vec();
                shared.cache.put(id, tile.into());
                Ok(Some(out))
            }
            _ => Ok(None),
        }
    }

    /// C2SP tlog-tiles `tile/entries/<index>[.p/<width>]`: the entries
    /// `[256 index, 256 index + width)` as big-endian uint16 length-prefixed bytes.
    pub async fn entry_bundle(
        &self,
        index: u64,
        width: Option<u16>,
    ) -> Result<Option<Vec<u8>>, LogError> {
        let Some(width) = requested_width(width) else {
            return Ok(None);
        };
        if !tile_exists(TileId { level: 0, index }, u64::from(width), MAX_TREE_SIZE) {
            return Ok(None);
        }
        let Some((start, end)) = index
            .checked_mul(TILE_WIDTH)
            .and_then(|start| Some((start, start.checked_add(u64::from(width))?)))
        else {
            return Ok(None);
        };
        let entries = self.shared().storage.read_entries(start, end).await?;
        let complete = entries.len() as u64 == u64::from(width)
            && entries.iter().zip(start..).all(|((i, _), want)| *i == want);
        if !complete {
            return Ok(None);
        }
        Ok(encode_bundle(
            entries.iter().map(|(_, data)| data.as_slice()),
        ))
    }

    /// The entry at `index`, if logged.
    pub async fn entry(&self, index: u64) -> Result<Option<Vec<u8>>, LogError> {
        let Some(end) = index.checked_add(1) else {
            return Ok(None);
        };
        let entries = self.shared().storage.read_entries(index, end).await?;
        Ok(entries.into_iter().next().map(|(_, data)| data))
    }

    /// RFC 9162 inclusion proof of leaf `index` in the tree of `tree_size` (at most the latest
    /// checkpoint's size).
    pub async fn inclusion_proof(&self, index: u64, tree_size: u64) -> Result<Vec<Hash>, LogError> {
        self.check_size(tree_size).await?;
        let shared = self.shared();
        with_nodes(&shared.storage, &shared.cache, &mut Nodes::default(), |n| {
            inclusion_proof(index, tree_size, |id| n.node(id))
        })
        .await
    }

    /// RFC 9162 consistency proof from `size1` to `size2` (`0 < size1 <= size2 <=` latest).
    pub async fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash>, LogError> {
        self.check_size(size2).await?;
        let shared = self.shared();
        with_nodes(&shared.storage, &shared.cache, &mut Nodes::default(), |n| {
            consistency_proof(size1, size2, |id| n.node(id))
        })
        .await
    }

    /// Stores a witness cosignature line (`— <witness> <base64>`) for the checkpoint of
    /// `tree_size`. The caller MUST have verified the cosignature against a trusted witness key
    /// (`custody_core::note::CosignatureVerifier`); this only checks that the line is a
    /// well-formed signature line, that such a checkpoint exists, and that the line does not
    /// claim the log's own key name (which would make the checkpoint fail verification).
    pub async fn add_cosignature(
        &self,
        tree_size: u64,
        signature_line: String,
    ) -> Result<(), LogError> {
        let line = signature_line.trim_end_matches('\n');
        let storage = &self.shared().storage;
        let note = storage
            .checkpoint_at(tree_size)
            .await?
            .ok_or(LogError::UnknownCheckpoint { size: tree_size })?;
        let parsed = Note::parse(&format!("{note}{line}\n"))?;
        let added = parsed.signatures().last();
        let lines_added = parsed.signatures().len() - Note::parse(&note)?.signatures().len();
        match added {
            Some(sig) if lines_added == 1 && sig.name() != self.shared().signer.name() => {}
            _ => return Err(LogError::InvalidCosignature),
        }
        let added = storage.add_cosignature(tree_size, line.to_owned()).await;
        self.shared().latest.invalidate();
        if !added? {
            return Err(LogError::UnknownCheckpoint { size: tree_size });
        }
        Ok(())
    }

    /// Counters since this process opened the log (for `/metrics`).
    pub fn metrics(&self) -> LogMetrics {
        let c = &self.shared().counters;
        LogMetrics {
            batches: c.batches.load(Ordering::Relaxed),
            entries: c.entries.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
        }
    }

    /// The verifier of the log's checkpoints.
    pub fn verifier(&self) -> NoteVerifier {
        self.shared().verifier.clone()
    }

    /// The log's origin line.
    pub fn origin(&self) -> &str {
        &self.inner.shared.config.origin
    }

    async fn check_size(&self, tree_size: u64) -> Result<(), LogError> {
        let latest = self
            .shared()
            .storage
            .latest()
            .await?
            .map_or(0, |cp| cp.size);
        if tree_size > latest {
            return Err(LogError::BeyondCheckpoint {
                requested: tree_size,
                latest,
            });
        }
        Ok(())
    }
}

/// The width a tile request asks for: 1..=255 for a partial tile, 256 for a full one.
fn requested_width(width: Option<u16>) -> Option<u16> {
    match width {
        None => Some(TILE_WIDTH as u16),
        Some(w) if (1..TILE_WIDTH as u16).contains(&w) => Some(w),
        Some(_) => None,
    }
}
