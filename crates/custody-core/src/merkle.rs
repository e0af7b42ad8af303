//! RFC 6962 / RFC 9162 Merkle trees: hashing, proof verification and proof building.
//!
//! * [`leaf_hash`], [`node_hash`], [`empty_root`]: the hashes of RFC 6962 §2.1 (= RFC 9162 §2.1.1).
//! * [`verify_inclusion`], [`verify_consistency`]: RFC 9162 §2.1.3.2 and §2.1.4.2, with the
//!   proof-length and size rules of transparency-dev/merkle (`proof/verify.go`), whose JSON
//!   vectors are the test suite.
//! * [`verify_subtree_inclusion`], [`verify_subtree_consistency`]: proofs about a *subtree*
//!   `[start, end)` (draft-ietf-plants-merkle-tree-certs §4.4, "Merkle Tree Certificates"), as
//!   transparency-dev/merkle tests them. A plain inclusion proof is the subtree inclusion proof
//!   for `[0, size)`, and a plain consistency proof is the subtree consistency proof for
//!   `[0, size1)`.
//! * [`CompactTree`]: append-only frontier ("compact range") in O(log n) memory, for a log that
//!   sequences entries. [`inclusion_proof`], [`consistency_proof`] and the subtree variants build
//!   proofs from a callback that returns the hash of one *complete* subtree ([`NodeId`]) — a log
//!   serves those from its stored tiles. [`MemoryTree`] keeps every node in memory; it is the
//!   reference used in tests.
//!
//! Every function takes sizes and indices up to `u64::MAX` and proofs of any length, and returns
//! a [`ProofError`] rather than panicking.

use sha2::{Digest as _, Sha256};

mod build;
mod verify;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod property_tests;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

pub use build::{
    CompactTree, MemoryTree, consistency_proof, inclusion_proof, subtree_consistency_proof,
    subtree_hash, subtree_inclusion_proof,
};
pub use verify::{
    is_valid_subtree, root_from_consistency_proof, root_from_inclusion_proof,
    root_from_subtree_consistency_proof, root_from_subtree_inclusion_proof, verify_consistency,
    verify_inclusion, verify_subtree_consistency, verify_subtree_inclusion,
};

/// A SHA-256 Merkle tree hash (RFC 6962 logs use SHA-256 only; so does C2SP tlog-tiles).
pub type Hash = [u8; 32];

/// `MTH({}) = SHA-256()`: the root of the empty tree (RFC 6962 §2.1).
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// `MTH({d}) = SHA-256(0x00 ‖ d)`: the hash of one leaf (RFC 6962 §2.1).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(data);
    hasher.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`: the hash of an interior node (RFC 6962 §2.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// A complete (perfect) subtree of the log: the `2^level` leaves
/// `[index * 2^level, (index + 1) * 2^level)`. Level 0 nodes are leaf hashes.
///
/// This is the unit a tile store serves: C2SP tlog-tiles tile `L` holds the nodes of level `8 L`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Height above the leaves, 0..=63.
    pub level: u8,
    /// Position among the nodes of that level, counting from the left.
    pub index: u64,
}

impl NodeId {
    /// The node at `level` whose leaves start at `first_leaf` (which must be aligned).
    fn covering(level: u8, first_leaf: u64) -> Self {
        Self {
            level,
            index: first_leaf >> level,
        }
    }
}

/// Which value a proof was checked against when it did not match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Checked {
    /// The root hash of the tree an inclusion proof claims.
    TreeRoot,
    /// The root of the older tree (`root1`) of a consistency proof.
    OldRoot,
    /// The root of the newer tree (`root2`) of a consistency proof.
    NewRoot,
    /// The hash of the subtree `[start, end)` of a subtree proof.
    SubtreeHash,
}

impl std::fmt::Display for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::TreeRoot => "tree root",
            Self::OldRoot => "old tree root (root1)",
            Self::NewRoot => "new tree root (root2)",
            Self::SubtreeHash => "subtree hash",
        })
    }
}

/// Why a Merkle proof was refused or could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    #[error("leaf index {index} is not in a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error(
        "the proof has {got} hashes, but exactly {want} are needed for these indices and sizes"
    )]
    WrongProofLength { got: usize, want: usize },
    #[error("the proof has more hashes than the path to the root: hash #{step} is one too many")]
    ProofTooLong { step: usize },
    #[error("the proof ended after {len} hashes, before reaching the root")]
    ProofTooShort { len: usize },
    #[error("the proof does not lead to the expected {checked}: computed {}, expected {}",
        hex::encode(.computed), hex::encode(.expected))]
    Mismatch {
        checked: Checked,
        computed: Hash,
        expected: Hash,
    },
    #[error("consistency proof from size {size1} to the smaller size {size2}")]
    SizesOutOfOrder { size1: u64, size2: u64 },
    #[error("a consistency proof from the empty tree (size 0) proves nothing and is refused")]
    FromEmptyTree,
    #[error("both trees have size {size}, so the proof must be empty, but it has {len} hashes")]
    NonEmptyProofForEqualSizes { size: u64, len: usize },
    #[error("the consistency proof from size {size1} to size {size2} is empty")]
    EmptyProof { size1: u64, size2: u64 },
    #[error(
        "[{start}, {end}) is not a subtree: start must be below end and a multiple of the \
             smallest power of two >= end - start"
    )]
    InvalidSubtree { start: u64, end: u64 },
    #[error("subtree [{start}, {end}) extends past the tree of size {size}")]
    SubtreeOutsideTree { start: u64, end: u64, size: u64 },
    #[error("leaf index {index} is outside the subtree [{start}, {end})")]
    IndexOutsideSubtree { index: u64, start: u64, end: u64 },
    #[error("the tree already has 2^64 - 1 leaves and cannot grow")]
    TreeFull,
    #[error("a frontier for tree size {size} has {want} hashes, not {got}")]
    FrontierMismatch { size: u64, got: usize, want: usize },
    #[error("node at level {} index {} is not available", .node.level, .node.index)]
    NodeUnavailable { node: NodeId },
}
