//! Building trees and proofs: the append-only frontier a log sequences with, proof construction
//! from complete-subtree hashes, and an in-memory reference tree.

use super::{Hash, NodeId, ProofError, empty_root, leaf_hash, node_hash};

/// The hash of subtree `[start, end)` (any `start < end` that [`super::is_valid_subtree`] accepts,
/// e.g. `[0, size)` for the root), from the complete subtrees that make it up.
///
/// `get_node` returns the hash of one complete subtree; a log reads it from its tiles.
pub fn subtree_hash<E: From<ProofError>>(
    start: u64,
    end: u64,
    get_node: &mut impl FnMut(NodeId) -> Result<Hash, E>,
) -> Result<Hash, E> {
    if !super::is_valid_subtree(start, end) {
        return Err(ProofError::InvalidSubtree { start, end }.into());
    }
    // RFC 6962 §2.1: MTH(D[n]) = H(MTH(D[0:k]) ‖ MTH(D[k:n])), k the largest power of two < n.
    // For an aligned range that is the complete subtrees given by the bits of n, largest first,
    // folded from the right.
    let width = end - start;
    let mut pieces = Vec::with_capacity(width.count_ones() as usize);
    let mut offset = start;
    for level in (0..u64::BITS as u8).rev() {
        if (width >> level) & 1 == 1 {
            pieces.push(get_node(NodeId::covering(level, offset))?);
            offset += 1u64 << level;
        }
    }
    let mut pieces = pieces.into_iter().rev();
    let last = pieces
        .next()
        .ok_or(ProofError::InvalidSubtree { start, end })?;
    Ok(pieces.fold(last, |acc, left| node_hash(&left, &acc)))
}

/// The inclusion proof of leaf `leaf_index` in the tree of `tree_size` (RFC 6962 §2.1.1 PATH),
/// ordered from the leaf upward as RFC 9162 §2.1.3.1 sends it.
pub fn inclusion_proof<E: From<ProofError>>(
    leaf_index: u64,
    tree_size: u64,
    mut get_node: impl FnMut(NodeId) -> Result<Hash, E>,
) -> Result<Vec<Hash>, E> {
    if leaf_index >= tree_size {
        return Err(ProofError::IndexOutOfRange {
            index: leaf_index,
            size: tree_size,
        }
        .into());
    }
    // PATH(m, D[n]) is SUBTREE_PROOF([m, m + 1), D[n]): the same recursion.
    subproof(0, tree_size, leaf_index, leaf_index + 1, &mut get_node)
}

/// The consistency proof from the tree of `size1` to the tree of `size2` (RFC 6962 §2.1.2
/// PROOF), with the same size rules as [`super::verify_consistency`]: `0 < size1 <= size2`,
/// and an empty proof when the sizes are equal.
pub fn consistency_proof<E: From<ProofError>>(
    size1: u64,
    size2: u64,
    mut get_node: impl FnMut(NodeId) -> Result<Hash, E>,
) -> Result<Vec<Hash>, E> {
    if size2 < size1 {
        return Err(ProofError::SizesOutOfOrder { size1, size2 }.into());
    }
    if size1 == 0 {
        return Err(ProofError::FromEmptyTree.into());
    }
    // PROOF(m, D[n]) = SUBPROOF(m, D[n], true) = SUBTREE_PROOF([0, m), D[n]).
    subproof(0, size2, 0, size1, &mut get_node)
}

/// The proof that subtree `[start, end)` is part of the tree of `size`
/// (draft-ietf-plants-merkle-tree-certs §4.4.1 SUBTREE_PROOF).
pub fn subtree_consistency_proof<E: From<ProofError>>(
    start: u64,
    end: u64,
    size: u64,
    mut get_node: impl FnMut(NodeId) -> Result<Hash, E>,
) -> Result<Vec<Hash>, E> {
    if !super::is_valid_subtree(start, end) {
        return Err(ProofError::InvalidSubtree { start, end }.into());
    }
    if end > size {
        return Err(ProofError::SubtreeOutsideTree { start, end, size }.into());
    }
    subproof(0, size, start, end, &mut get_node)
}

/// The proof that leaf `leaf_index` is in subtree `[start, end)`
/// (draft-ietf-plants-merkle-tree-certs §4.3.1): the inclusion proof within that subtree.
pub fn subtree_inclusion_proof<E: From<ProofError>>(
    leaf_index: u64,
    start: u64,
    end: u64,
    mut get_node: impl FnMut(NodeId) -> Result<Hash, E>,
) -> Result<Vec<Hash>, E> {
    if !super::is_valid_subtree(start, end) {
        return Err(ProofError::InvalidSubtree { start, end }.into());
    }
    if leaf_index < start || leaf_index >= end {
        return Err(ProofError::IndexOutsideSubtree {
            index: leaf_index,
            start,
            end,
        }
        .into());
    }
    subproof(
        start,
        end - start,
        leaf_index - start,
        leaf_index - start + 1,
        &mut get_node,
    )
}

/// SUBTREE_SUBPROOF (draft-ietf-plants-merkle-tree-certs §4.4.1), iteratively, for the subtree
/// `[offset + start, offset + end)` of the tree of leaves `[offset, offset + size)`, where
/// `offset` is aligned to `BIT_CEIL(size)`. Callers check `start < end <= size`.
fn subproof<E: From<ProofError>>(
    offset: u64,
    size: u64,
    start: u64,
    end: u64,
    get_node: &mut impl FnMut(NodeId) -> Result<Hash, E>,
) -> Result<Vec<Hash>, E> {
    let (mut lo, mut hi) = (offset, offset + size);
    let (mut start, mut end) = (start, end);
    let mut known = true;
    let mut proof = Vec::new();
    loop {
        let n = hi - lo;
        if start == 0 && end == n {
            // "If start is 0 and end is n": the verifier already knows MTH(D_n) when b is true.
            if !known {
                proof.push(subtree_hash(lo, hi, get_node)?);
            }
            break;
        }
        let k = largest_power_of_two_below(n);
        if end <= k {
            // Entirely in the left subtree: SUBTREE_SUBPROOF(start, end, D[0:k], b) : MTH(D[k:n]).
            proof.push(subtree_hash(lo + k, hi, get_node)?);
            hi = lo + k;
        } else if k <= start {
            // Entirely in the right: SUBTREE_SUBPROOF(start-k, end-k, D[k:n], b) : MTH(D[0:k]).
            proof.push(subtree_hash(lo, lo + k, get_node)?);
            lo += k;
            start -= k;
            end -= k;
        } else {
            // Straddles k, so start is 0: SUBTREE_SUBPROOF(0, end-k, D[k:n], false) : MTH(D[0:k]).
            proof.push(subtree_hash(lo, lo + k, get_node)?);
            lo += k;
            start = 0;
            end -= k;
            known = false;
        }
    }
    // The recursion appends on the way out: the deepest hash comes first.
    proof.reverse();
    Ok(proof)
}

/// The largest power of two strictly below `n` (n >= 2).
fn largest_power_of_two_below(n: u64) -> u64 {
    1u64 << (u64::BITS - 1 - (n - 1).leading_zeros())
}

/// An append-only Merkle tree that keeps only its frontier: the roots of the complete subtrees
/// that make up the tree, one per set bit of the size, largest (leftmost) first. O(log n) memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactTree {
    size: u64,
    frontier: Vec<Hash>,
}

impl CompactTree {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Resumes a tree from its stored frontier (as returned by [`CompactTree::frontier`]).
    pub fn from_frontier(size: u64, frontier: Vec<Hash>) -> Result<Self, ProofError> {
        let want = size.count_ones() as usize;
        if frontier.len() != want {
            return Err(ProofError::FrontierMismatch {
                size,
                got: frontier.len(),
                want,
            });
        }
        Ok(Self { size, frontier })
    }

    /// Resumes a tree of `size` by reading its frontier nodes, e.g. from tiles.
    pub fn from_nodes<E: From<ProofError>>(
        size: u64,
        mut get_node: impl FnMut(NodeId) -> Result<Hash, E>,
    ) -> Result<Self, E> {
        let mut frontier = Vec::with_capacity(size.count_ones() as usize);
        let mut offset = 0u64;
        for level in (0..u64::BITS as u8).rev() {
            if (size >> level) & 1 == 1 {
                frontier.push(get_node(NodeId::covering(level, offset))?);
                offset += 1u64 << level;
            }
        }
        Ok(Self { size, frontier })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The complete-subtree roots, largest first.
    pub fn frontier(&self) -> &[Hash] {
        &self.frontier
    }

    /// The root hash of the tree as it is now (`MTH({})` when empty).
    pub fn root(&self) -> Hash {
        let mut from_right = self.frontier.iter().rev();
        match from_right.next() {
            None => empty_root(),
            Some(last) => from_right.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }

    /// Appends one leaf hash.
    pub fn append(&mut self, leaf_hash: Hash) -> Result<(), ProofError> {
        self.append_with(leaf_hash, |_, _| {})
    }

    /// Appends one leaf hash and reports every node it completes, the leaf itself first, then
    /// each parent it closes: what a log writes to its tiles.
    pub fn append_with(
        &mut self,
        leaf_hash: Hash,
        mut on_node: impl FnMut(NodeId, &Hash),
    ) -> Result<(), ProofError> {
        let index = self.size;
        let new_size = index.checked_add(1).ok_or(ProofError::TreeFull)?;
        // Each trailing 1 bit of the old size is a complete subtree that now gains a right sibling.
        let merges = index.trailing_ones() as usize;
        let keep = self
            .frontier
            .len()
            .checked_sub(merges)
            .ok_or(ProofError::FrontierMismatch {
                size: index,
                got: self.frontier.len(),
                want: index.count_ones() as usize,
            })?;
        on_node(NodeId { level: 0, index }, &leaf_hash);
        let mut hash = leaf_hash;
        for (level, left) in (1u8..).zip(self.frontier.drain(keep..).rev()) {
            hash = node_hash(&left, &hash);
            on_node(NodeId::covering(level, index), &hash);
        }
        self.frontier.push(hash);
        self.size = new_size;
        Ok(())
    }
}

/// A tree that keeps every complete node in memory: the reference for tests and small tools.
#[derive(Clone, Debug, Default)]
pub struct MemoryTree {
    /// `levels[l][i]` is the complete node at level `l`, index `i`.
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// The empty tree.
    pub fn new() -> Self {
        Self {
            levels: vec![Vec::new()],
        }
    }

    /// A tree over the given entries, hashed as RFC 6962 leaves.
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut tree = Self::new();
        for entry in entries {
            tree.push_leaf_hash(leaf_hash(entry));
        }
        tree
    }

    /// Appends an entry (hashed as an RFC 6962 leaf).
    pub fn push_entry(&mut self, entry: &[u8]) {
        self.push_leaf_hash(leaf_hash(entry));
    }

    /// Appends a leaf hash.
    pub fn push_leaf_hash(&mut self, hash: Hash) {
        let mut hash = hash;
        let mut level = 0;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let nodes = &mut self.levels[level];
            nodes.push(hash);
            if nodes.len() % 2 == 1 {
                break;
            }
            hash = node_hash(&nodes[nodes.len() - 2], &nodes[nodes.len() - 1]);
            level += 1;
        }
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    /// The hash of a complete node, if the tree has it.
    pub fn node(&self, node: NodeId) -> Result<Hash, ProofError> {
        usize::try_from(node.index)
            .ok()
            .and_then(|index| self.levels.get(usize::from(node.level))?.get(index))
            .copied()
            .ok_or(ProofError::NodeUnavailable { node })
    }

    /// The root of the tree's first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, ProofError> {
        if size == 0 {
            return Ok(empty_root());
        }
        self.check_size(size)?;
        subtree_hash(0, size, &mut |node| self.node(node))
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Hash {
        self.root_at(self.size()).unwrap_or_else(|_| empty_root())
    }

    /// See [`inclusion_proof`].
    pub fn inclusion_proof(&self, leaf_index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(size)?;
        inclusion_proof(leaf_index, size, |node| self.node(node))
    }

    /// See [`consistency_proof`].
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(size2)?;
        consistency_proof(size1, size2, |node| self.node(node))
    }

    /// See [`subtree_consistency_proof`].
    pub fn subtree_consistency_proof(
        &self,
        start: u64,
        end: u64,
        size: u64,
    ) -> Result<Vec<Hash>, ProofError> {
        self.check_size(size)?;
        subtree_consistency_proof(start, end, size, |node| self.node(node))
    }

    /// See [`subtree_inclusion_proof`].
    pub fn subtree_inclusion_proof(
        &self,
        leaf_index: u64,
        start: u64,
        end: u64,
    ) -> Result<Vec<Hash>, ProofError> {
        self.check_size(end)?;
        subtree_inclusion_proof(leaf_index, start, end, |node| self.node(node))
    }

    fn check_size(&self, size: u64) -> Result<(), ProofError> {
        if size > self.size() {
            return Err(ProofError::SubtreeOutsideTree {
                start: 0,
                end: size,
                size: self.size(),
            });
        }
        Ok(())
    }
}
