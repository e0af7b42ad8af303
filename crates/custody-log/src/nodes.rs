//! Tree nodes read from tiles: the `get_node` callback custody-core's proof builders take.
//!
//! Tiles store the nodes of levels 0, 8, 16, …; a node of level `8 L + r` is recomputed from
//! the `2^r` tile-level-`L` nodes under it (all in one tile), and memoised. Proof builders are
//! synchronous, so [`with_nodes`] runs one, collects the tiles it lacked, fetches them, and runs
//! it again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use custody_core::merkle::{Hash, NodeId, ProofError, node_hash};

use crate::error::{LogError, StorageError};
use crate::layout::{HASH_SIZE, TILE_HEIGHT, TILE_WIDTH, TileId, tile_hash};
use crate::storage::{LogStorage, Storage};

/// Tiles known to this process. Tiles only ever grow (a stored partial tile is a prefix of
/// every later version), so a cached tile is always right and only possibly too short.
/// Two generations approximate LRU within a fixed bound.
pub(crate) struct TileCache {
    generations: Mutex<[HashMap<TileId, Arc<[u8]>>; 2]>,
    per_generation: usize,
}

impl TileCache {
    pub(crate) fn new(per_generation: usize) -> Self {
        Self {
            generations: Mutex::new([HashMap::new(), HashMap::new()]),
            per_generation,
        }
    }

    /// The cached tile if it has at least `width` hashes.
    pub(crate) fn get(&self, id: TileId, width: u64) -> Option<Arc<[u8]>> {
        let mut gens = self
            .generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let wide_enough = |t: &Arc<[u8]>| t.len() as u64 >= width * HASH_SIZE as u64;
        if let Some(tile) = gens[0].get(&id).filter(|t| wide_enough(t)) {
            return Some(tile.clone());
        }
        let tile = gens[1].get(&id).filter(|t| wide_enough(t))?.clone();
        Self::insert(&mut gens, self.per_generation, id, tile.clone());
        Some(tile)
    }

    /// Caches a committed tile unless a wider version is cached already.
    pub(crate) fn put(&self, id: TileId, tile: Arc<[u8]>) {
        let mut gens = self
            .generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if gens[0].get(&id).is_some_and(|t| t.len() >= tile.len()) {
            return;
        }
        Self::insert(&mut gens, self.per_generation, id, tile);
    }

    fn insert(gens: &mut [HashMap<TileId, Arc<[u8]>>; 2], cap: usize, id: TileId, tile: Arc<[u8]>) {
        if gens[0].len() >= cap {
            gens[1] = std::mem::take(&mut gens[0]);
        }
        gens[0].insert(id, tile);
    }
}

/// Nodes available to a proof builder: tiles fetched so far, plus memoised inner nodes.
#[derive(Default)]
pub(crate) struct Nodes {
    tiles: HashMap<TileId, Arc<[u8]>>,
    memo: HashMap<NodeId, Hash>,
    /// Tiles the last attempt lacked, with the width it needed.
    missing: Vec<(TileId, u64)>,
}

impl Nodes {
    /// Adds a tile (committed data only).
    pub(crate) fn add_tile(&mut self, id: TileId, tile: Arc<[u8]>) {
        self.tiles.insert(id, tile);
    }

    /// Adds a node known from sequencing.
    pub(crate) fn add_node(&mut self, id: NodeId, hash: Hash) {
        self.memo.insert(id, hash);
    }

    /// The hash of complete node `id`, or `NodeUnavailable` (recording the missing tile).
    pub(crate) fn node(&mut self, id: NodeId) -> Result<Hash, ProofError> {
        if let Some(hash) = self.memo.get(&id) {
            return Ok(*hash);
        }
        let unavailable = ProofError::NodeUnavailable { node: id };
        let height = TILE_HEIGHT as u8;
        if id.level % height == 0 {
            let tile = TileId {
                level: id.level / height,
                index: id.index / TILE_WIDTH,
            };
            let position = id.index % TILE_WIDTH;
            return match self.tiles.get(&tile).and_then(|t| tile_hash(t, position)) {
                Some(hash) => Ok(hash),
                None => {
                    self.missing.push((tile, position + 1));
                    Err(unavailable)
                }
            };
        }
        let left = id.index.checked_mul(2).ok_or(unavailable.clone())?;
        let child = |index| NodeId {
            level: id.level - 1,
            index,
        };
        let hash = node_hash(&self.node(child(left))?, &self.node(child(left + 1))?);
        self.memo.insert(id, hash);
        Ok(hash)
    }
}

/// Runs `build` until it stops lacking tiles, fetching them from the cache or storage.
pub(crate) async fn with_nodes<T>(
    storage: &Storage,
    cache: &TileCache,
    nodes: &mut Nodes,
    mut build: impl FnMut(&mut Nodes) -> Result<T, ProofError>,
) -> Result<T, LogError> {
    // Each round adds at least one tile that was lacking; a proof touches a few per level.
    for _ in 0..1024 {
        nodes.missing.clear();
        match build(nodes) {
            Ok(value) => return Ok(value),
            Err(ProofError::NodeUnavailable { .. }) if !nodes.missing.is_empty() => {}
            Err(e) => return Err(e.into()),
        }
        let mut missing = std::mem::take(&mut nodes.missing);
        missing.sort();
        missing.dedup_by_key(|(id, _)| *id);
        let mut to_read = Vec::new();
        for (id, width) in &missing {
            match cache.get(*id, *width) {
                Some(tile) => nodes.add_tile(*id, tile),
                None => to_read.push((*id, *width)),
            }
        }
        if to_read.is_empty() {
            continue;
        }
        let ids = to_read.iter().map(|(id, _)| *id).collect();
        let tiles = storage.read_tiles(ids).await?;
        for ((id, width), tile) in to_read.into_iter().zip(tiles) {
            let tile: Arc<[u8]> = match tile {
                Some(t) if t.len() as u64 >= width * HASH_SIZE as u64 => t.into(),
                _ => {
                    return Err(StorageError::Corrupt {
                        what: "a tile the tree needs is missing or too short",
                    }
                    .into());
                }
            };
            cache.put(id, tile.clone());
            nodes.add_tile(id, tile);
        }
    }
    Err(StorageError::Corrupt {
        what: "proof construction did not converge",
    }
    .into())
}
