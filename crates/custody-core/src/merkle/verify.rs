//! Proof verification: RFC 9162 §2.1.3.2 (inclusion), §2.1.4.2 (consistency), and the subtree
//! proofs of draft-ietf-plants-merkle-tree-certs §4.4.

use super::{Checked, Hash, ProofError, empty_root, node_hash};

/// Verifies that `leaf_hash` is the leaf at `leaf_index` of the tree of `tree_size` with `root`.
pub fn verify_inclusion(
    leaf_index: u64,
    tree_size: u64,
    leaf_hash: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let computed = root_from_inclusion_proof(leaf_index, tree_size, leaf_hash, proof)?;
    matches(Checked::TreeRoot, computed, root)
}

/// The root hash that an inclusion proof leads to (RFC 9162 §2.1.3.2).
///
/// The proof is split as transparency-dev/merkle does: `inner` hashes below the level where the
/// paths to `leaf_index` and `tree_size - 1` diverge (the leaf's side is given by its index bits),
/// then `border` hashes that are all left siblings on the right border of the tree. The result
/// is the same as the RFC's single loop, and a proof of the wrong length is refused up front.
pub fn root_from_inclusion_proof(
    leaf_index: u64,
    tree_size: u64,
    leaf_hash: &Hash,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    // RFC 9162 §2.1.3.2 step 1: "If leaf_index is greater than or equal to tree_size, then fail".
    if leaf_index >= tree_size {
        return Err(ProofError::IndexOutOfRange {
            index: leaf_index,
            size: tree_size,
        });
    }
    let (inner, border) = decompose(leaf_index, tree_size);
    expect_len(proof.len(), inner + border)?;
    let (inner_proof, border_proof) = proof.split_at(inner);
    let hash = chain_inner(*leaf_hash, inner_proof, leaf_index);
    Ok(chain_border_right(hash, border_proof))
}

/// Verifies that the tree of `size1` with `root1` is a prefix of the tree of `size2` with `root2`.
///
/// Size rules, exactly as transparency-dev/merkle (and its vectors) apply them:
/// `size1 > size2` fails; `size1 == 0` fails, even when `size2 == 0` (a proof from the empty
/// tree proves nothing); `size1 == size2` succeeds only with an empty proof and equal roots.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    root1: &Hash,
    root2: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    let computed = root_from_consistency_proof(size1, size2, root1, proof)?;
    matches(Checked::NewRoot, computed, root2)
}

/// The new root that a consistency proof leads to, after checking that it also reproduces
/// `root1` (RFC 9162 §2.1.4.2).
pub fn root_from_consistency_proof(
    size1: u64,
    size2: u64,
    root1: &Hash,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if size2 < size1 {
        return Err(ProofError::SizesOutOfOrder { size1, size2 });
    }
    // RFC 9162 §2.1.4.2 leaves size1 = 0 open; transparency-dev refuses it (nothing is proven).
    if size1 == 0 {
        return Err(ProofError::FromEmptyTree);
    }
    // RFC 9162 §2.1.4.2 step 2: "If first is equal to second, then ... consistency_path is empty".
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::NonEmptyProofForEqualSizes {
                size: size1,
                len: proof.len(),
            });
        }
        return Ok(*root1);
    }
    // RFC 9162 §2.1.4.2 step 1: "If consistency_path is an empty array, stop and fail".
    if proof.is_empty() {
        return Err(ProofError::EmptyProof { size1, size2 });
    }
    // The proof is a suffix of the inclusion proof of leaf size1 - 1 in the new tree, starting at
    // level `shift` (the largest complete subtree ending at size1). Because size1 < size2 the paths
    // diverge above that level, so shift < inner.
    let (inner, border) = decompose(size1 - 1, size2);
    let shift = size1.trailing_zeros();
    let inner = inner.saturating_sub(shift as usize);
    // RFC 9162 §2.1.4.2 step 3: "If first is an exact power of 2, then prepend first_hash".
    let (seed, rest) = if size1 == 1u64 << shift {
        (*root1, proof)
    } else {
        match proof.split_first() {
            Some((first, rest)) => (*first, rest),
            None => return Err(ProofError::EmptyProof { size1, size2 }),
        }
    };
    let start = proof.len() - rest.len();
    expect_len(proof.len(), start + inner + border)?;
    let (inner_proof, border_proof) = rest.split_at(inner);
    let mask = (size1 - 1) >> shift;

    // Step 6 (fr): only the left siblings rebuild the old root.
    let hash1 = chain_border_right(chain_inner_right(seed, inner_proof, mask), border_proof);
    matches(Checked::OldRoot, hash1, root1)?;
    // Step 6 (sr): all siblings build the new root.
    Ok(chain_border_right(
        chain_inner(seed, inner_proof, mask),
        border_proof,
    ))
}

/// Whether `[start, end)` is a subtree in the sense of draft-ietf-plants-merkle-tree-certs §4.1:
/// `start < end` and `start` is a multiple of `BIT_CEIL(end - start)`.
pub fn is_valid_subtree(start: u64, end: u64) -> bool {
    start < end
        && (end - start)
            .checked_next_power_of_two()
            .is_some_and(|width| start % width == 0)
}

/// Verifies that the subtree `[start, end)` with `subtree_hash` is part of the tree of `size`
/// with `root` (draft-ietf-plants-merkle-tree-certs §4.4.3).
///
/// The empty subtree `[k, k)` (`k <= size`) is consistent with every tree: it verifies when its
/// hash is the empty-tree hash and the proof is empty, and `root` is not consulted.
pub fn verify_subtree_consistency(
    start: u64,
    end: u64,
    size: u64,
    subtree_hash: &Hash,
    root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if start == end && end <= size {
        if !proof.is_empty() {
            return Err(ProofError::ProofTooLong { step: 0 });
        }
        return matches(Checked::SubtreeHash, *subtree_hash, &empty_root());
    }
    let computed = root_from_subtree_consistency_proof(start, end, size, subtree_hash, proof)?;
    matches(Checked::TreeRoot, computed, root)
}

/// The root a subtree consistency proof leads to, after checking that it also reproduces
/// `subtree_hash` (draft-ietf-plants-merkle-tree-certs §4.4.3, steps 1-8).
pub fn root_from_subtree_consistency_proof(
    start: u64,
    end: u64,
    size: u64,
    subtree_hash: &Hash,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    // Step 1: the subtree must be valid and inside the tree.
    if !is_valid_subtree(start, end) {
        return Err(ProofError::InvalidSubtree { start, end });
    }
    if end > size {
        return Err(ProofError::SubtreeOutsideTree { start, end, size });
    }
    // Step 2: paths from the root to the subtree's first and last leaf, and the tree's last leaf.
    let (mut fn_, mut sn, mut tn) = (start, end - 1, size - 1);
    let up = |fn_: &mut u64, sn: &mut u64, tn: &mut u64| {
        *fn_ >>= 1;
        *sn >>= 1;
        *tn >>= 1;
    };
    if sn == tn {
        // Step 3: the subtree's right edge is the tree's; climb to the subtree's own root.
        while fn_ != sn {
            up(&mut fn_, &mut sn, &mut tn);
        }
    } else {
        // Step 4: climb while the right edge is the right child of a complete node.
        while fn_ != sn && sn & 1 == 1 {
            up(&mut fn_, &mut sn, &mut tn);
        }
    }
    // Steps 5 and 6: the starting node is the subtree itself or the proof's first hash.
    let mut rest = proof.iter().enumerate();
    let seed = if fn_ == sn {
        *subtree_hash
    } else {
        match rest.next() {
            Some((_, first)) => *first,
            None => return Err(ProofError::ProofTooShort { len: 0 }),
        }
    };
    let (mut fr, mut sr) = (seed, seed);
    // Step 7: one proof hash per level up to the root.
    for (step, sibling) in rest {
        if tn == 0 {
            return Err(ProofError::ProofTooLong { step });
        }
        if sn & 1 == 1 || sn == tn {
            if fn_ < sn {
                fr = node_hash(sibling, &fr);
            }
            sr = node_hash(sibling, &sr);
            while sn & 1 == 0 && sn != 0 {
                up(&mut fn_, &mut sn, &mut tn);
            }
        } else {
            sr = node_hash(&sr, sibling);
        }
        up(&mut fn_, &mut sn, &mut tn);
    }
    // Step 8: both paths reached the root together and the subtree hash was rebuilt.
    if tn != 0 {
        return Err(ProofError::ProofTooShort { len: proof.len() });
    }
    matches(Checked::SubtreeHash, fr, subtree_hash)?;
    Ok(sr)
}

/// Verifies that `leaf_hash` is leaf `leaf_index` of the subtree `[start, end)` with
/// `subtree_hash` (draft-ietf-plants-merkle-tree-certs §4.3).
pub fn verify_subtree_inclusion(
    leaf_index: u64,
    start: u64,
    end: u64,
    leaf_hash: &Hash,
    proof: &[Hash],
    subtree_hash: &Hash,
) -> Result<(), ProofError> {
    let computed = root_from_subtree_inclusion_proof(leaf_index, start, end, leaf_hash, proof)?;
    matches(Checked::SubtreeHash, computed, subtree_hash)
}

/// The subtree hash a subtree inclusion proof leads to.
///
/// An inclusion proof of leaf `i` in `[start, end)` is the subtree consistency proof of
/// `[i - start, i - start + 1)` in a tree of `end - start` leaves: the subtree is re-rooted.
pub fn root_from_subtree_inclusion_proof(
    leaf_index: u64,
    start: u64,
    end: u64,
    leaf_hash: &Hash,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if !is_valid_subtree(start, end) {
        return Err(ProofError::InvalidSubtree { start, end });
    }
    if leaf_index < start || leaf_index >= end {
        return Err(ProofError::IndexOutsideSubtree {
            index: leaf_index,
            start,
            end,
        });
    }
    let index = leaf_index - start;
    root_from_subtree_consistency_proof(index, index + 1, end - start, leaf_hash, proof)
}

fn matches(checked: Checked, computed: Hash, expected: &Hash) -> Result<(), ProofError> {
    if computed == *expected {
        Ok(())
    } else {
        Err(ProofError::Mismatch {
            checked,
            computed,
            expected: *expected,
        })
    }
}

fn expect_len(got: usize, want: usize) -> Result<(), ProofError> {
    if got == want {
        Ok(())
    } else {
        Err(ProofError::WrongProofLength { got, want })
    }
}

/// Splits the inclusion proof of `index` in a tree of `size` (index < size) into the hashes below
/// the level where the paths to `index` and `size - 1` diverge (`inner`) and the left siblings on
/// the right border above it (`border`).
fn decompose(index: u64, size: u64) -> (usize, usize) {
    let inner = (u64::BITS - (index ^ (size - 1)).leading_zeros()) as usize;
    let border = index.checked_shr(inner as u32).unwrap_or(0).count_ones() as usize;
    (inner, border)
}

/// Hashes up from `seed` at position `index` of its level; bit i of `index` says on which side
/// the i-th sibling is.
fn chain_inner(seed: Hash, proof: &[Hash], index: u64) -> Hash {
    proof
        .iter()
        .enumerate()
        .fold(seed, |hash, (level, sibling)| {
            if (index >> level) & 1 == 0 {
                node_hash(&hash, sibling)
            } else {
                node_hash(sibling, &hash)
            }
        })
}

/// Like [`chain_inner`], but only left siblings count: the result is the hash of the earlier,
/// smaller version of the subtree.
fn chain_inner_right(seed: Hash, proof: &[Hash], index: u64) -> Hash {
    proof
        .iter()
        .enumerate()
        .fold(seed, |hash, (level, sibling)| {
            if (index >> level) & 1 == 1 {
                node_hash(sibling, &hash)
            } else {
                hash
            }
        })
}

/// Hashes along the right border of the tree, where every sibling is on the left.
fn chain_border_right(seed: Hash, proof: &[Hash]) -> Hash {
    proof
        .iter()
        .fold(seed, |hash, sibling| node_hash(sibling, &hash))
}
