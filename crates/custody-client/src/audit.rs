//! Full audit of a tlog-tiles log: fetch the checkpoint and every entry bundle and tile,
//! recompute the whole tree, and compare every served hash and the root with what was signed.

use custody_core::merkle::{CompactTree, Hash, leaf_hash, node_hash};
use custody_core::note::{NoteError, NoteVerifier, SignedCheckpoint};
use custody_log::layout::{TILE_HEIGHT, TILE_WIDTH, TileId, nodes_at_tile_level, tile_hash};

use crate::tiles::{ClientError, LogClient};

/// What an audit found when the log is sound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditReport {
    pub origin: String,
    pub size: u64,
    pub root_hash: Hash,
    /// Tiles fetched and compared.
    pub tiles: u64,
    /// The checkpoint note as served (with any cosignatures).
    pub checkpoint: String,
}

/// Why an audit failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// Fetching failed: operational.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The checkpoint is not signed by the log's key.
    #[error("the checkpoint does not verify: {0}")]
    Checkpoint(#[from] NoteError),
    /// A served tile hash differs from the hash recomputed from the entries.
    #[error("tile {level}/{index} hash {position} differs from the hash of the entries it covers")]
    TileMismatch {
        level: u8,
        index: u64,
        position: u64,
    },
    /// The entries do not hash to the signed root.
    #[error("the entries hash to root {computed}, but the checkpoint signs {signed}")]
    RootMismatch { computed: String, signed: String },
}

impl AuditError {
    /// `true` when the log failed verification (as opposed to the audit failing to run).
    pub fn is_verification_failure(&self) -> bool {
        !matches!(self, Self::Client(_))
    }
}

/// Audits the log at `client` against the trusted log keys.
pub fn audit(client: &LogClient, keys: &[NoteVerifier]) -> Result<AuditReport, AuditError> {
    let text = client.checkpoint()?;
    let signed = SignedCheckpoint::verify(&text, keys)?;
    let checkpoint = signed.checkpoint();
    let size = checkpoint.size();
    let mut leaves = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    client.for_each_entry(0, size, size, |_, entry| leaves.push(leaf_hash(entry)))?;
    let mut tree = CompactTree::new();
    for leaf in &leaves {
        tree.append(*leaf).map_err(|_| AuditError::RootMismatch {
            computed: "(tree too large)".to_owned(),
            signed: hex::encode(checkpoint.root_hash()),
        })?;
    }
    if tree.root() != *checkpoint.root_hash() {
        return Err(AuditError::RootMismatch {
            computed: hex::encode(tree.root()),
            signed: hex::encode(checkpoint.root_hash()),
        });
    }
    let tiles = check_tiles(client, size, leaves)?;
    Ok(AuditReport {
        origin: checkpoint.origin().to_owned(),
        size,
        root_hash: *checkpoint.root_hash(),
        tiles,
        checkpoint: text,
    })
}

/// Compares every tile of the tree of `size` with the nodes recomputed from `leaves`.
fn check_tiles(client: &LogClient, size: u64, leaves: Vec<Hash>) -> Result<u64, AuditError> {
    let mut nodes = leaves; // complete nodes of tree level 8 * level
    let mut tiles = 0;
    let mut level: u8 = 0;
    while nodes_at_tile_level(level, size) > 0 {
        let count = nodes_at_tile_level(level, size);
        for index in 0..count.div_ceil(TILE_WIDTH) {
            let id = TileId { level, index };
            let tile = client.tile(id, size)?;
            tiles += 1;
            let first = index * TILE_WIDTH;
            for position in 0..(tile.len() as u64 / 32) {
                let served = tile_hash(&tile, position);
                let computed = usize::try_from(first + position)
                    .ok()
                    .and_then(|i| nodes.get(i));
                if served.as_ref() != computed {
                    return Err(AuditError::TileMismatch {
                        level,
                        index,
                        position,
                    });
                }
            }
        }
        for _ in 0..TILE_HEIGHT {
            nodes = nodes
                .chunks_exact(2)
                .map(|pair| node_hash(&pair[0], &pair[1]))
                .collect();
        }
        level += 1;
    }
    Ok(tiles)
}
