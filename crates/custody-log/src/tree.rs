//! The sequencer's in-memory tree: loading it from storage, and appending a batch to it.

use std::collections::BTreeSet;
use std::sync::Arc;

use custody_core::merkle::{CompactTree, Hash, NodeId, ProofError};

use crate::error::{LogError, StorageError};
use crate::layout::{FULL_TILE_BYTES, MAX_TILE_LEVEL, TILE_HEIGHT, TileId, nodes_at_tile_level};
use crate::nodes::{Nodes, with_nodes};
use crate::sequencer::Shared;
use crate::storage::{LogStorage, NewEntry, StoredCheckpoint};

/// The sequencer's view of the stored tree: enough to append without reading storage.
#[derive(Clone)]
pub(crate) struct TreeState {
    pub(crate) checkpoint: StoredCheckpoint,
    pub(crate) compact: CompactTree,
    /// `edge[L]`: the bytes of the rightmost, not yet full tile of tile level `L`.
    edge: Vec<Vec<u8>>,
}

/// Reads the stored tree: latest checkpoint, right-edge tiles, frontier; checks the root.
pub(crate) async fn load_tree(shared: &Shared) -> Result<TreeState, LogError> {
    let checkpoint = shared
        .storage
        .latest()
        .await?
        .ok_or(StorageError::Corrupt {
            what: "no checkpoint is stored",
        })?;
    shared.check_checkpoint(&checkpoint)?;
    let size = checkpoint.size;
    let mut edge_ids = Vec::new();
    for level in 0..=MAX_TILE_LEVEL {
        let nodes = nodes_at_tile_level(level, size);
        if nodes == 0 {
            break;
        }
        edge_ids.push((
            TileId {
                level,
                index: nodes / 256,
            },
            nodes % 256,
        ));
    }
    let tiles = shared
        .storage
        .read_tiles(edge_ids.iter().map(|(id, _)| *id).collect())
        .await?;
    let mut edge = Vec::with_capacity(edge_ids.len());
    let mut nodes = Nodes::default();
    for ((id, width), tile) in edge_ids.into_iter().zip(tiles) {
        let bytes = usize::try_from(width)
            .unwrap_or(usize::MAX)
            .saturating_mul(32);
        let tile = match tile {
            _ if width == 0 => Vec::new(),
            Some(mut tile) if tile.len() >= bytes => {
                tile.truncate(bytes);
                tile
            }
            _ => {
                return Err(StorageError::Corrupt {
                    what: "the right-edge tile is missing or shorter than the tree size says",
                }
                .into());
            }
        };
        nodes.add_tile(id, tile.as_slice().into());
        edge.push(tile);
    }
    let compact = with_nodes(&shared.storage, &shared.cache, &mut nodes, |n| {
        CompactTree::from_nodes(size, |id| n.node(id))
    })
    .await?;
    if compact.root() != checkpoint.root {
        return Err(LogError::RootMismatch { size });
    }
    Ok(TreeState {
        checkpoint,
        compact,
        edge,
    })
}

/// The tree after appending a batch, with what must be stored and what proofs can reuse.
pub(crate) struct Appended {
    pub(crate) tree: TreeState,
    pub(crate) entries: Vec<NewEntry>,
    pub(crate) tiles: Vec<(TileId, Vec<u8>)>,
    pub(crate) nodes: Vec<(NodeId, Hash)>,
}

pub(crate) fn append(
    tree: &TreeState,
    new: Vec<(Arc<[u8]>, Hash)>,
) -> Result<Appended, ProofError> {
    let mut next = tree.clone();
    let mut tiles = Vec::new();
    let mut nodes = Vec::with_capacity(2 * new.len());
    let mut touched = BTreeSet::new();
    let mut entries = Vec::with_capacity(new.len());
    for (data, leaf_hash) in new {
        let index = next.compact.size();
        let edge = &mut next.edge;
        next.compact.append_with(leaf_hash, |id, hash| {
            nodes.push((id, *hash));
            if u32::from(id.level) % TILE_HEIGHT != 0 {
                return;
            }
            let level = id.level / TILE_HEIGHT as u8;
            let slot = usize::from(level);
            if edge.len() <= slot {
                edge.resize(slot + 1, Vec::new());
            }
            edge[slot].extend_from_slice(hash);
            touched.insert(level);
            if edge[slot].len() == FULL_TILE_BYTES {
                tiles.push((
                    TileId {
                        level,
                        index: id.index / 256,
                    },
                    std::mem::take(&mut edge[slot]),
                ));
            }
        })?;
        entries.push(NewEntry {
            index,
            leaf_hash,
            data,
        });
    }
    let size = next.compact.size();
    for level in touched {
        let tile = &next.edge[usize::from(level)];
        if !tile.is_empty() {
            let index = nodes_at_tile_level(level, size) / 256;
            tiles.push((TileId { level, index }, tile.clone()));
        }
    }
    Ok(Appended {
        tree: next,
        entries,
        tiles,
        nodes,
    })
}
