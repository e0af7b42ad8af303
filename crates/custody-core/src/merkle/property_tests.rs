//! Property tests: proofs built by `MemoryTree` (through the `get_node` builders) verify, agree
//! with an independent transcription of the RFC 9162 loops, and fail on every single-bit change.

use proptest::prelude::*;

use super::*;

/// RFC 9162 §2.1.3.2 exactly as SPECS §6.2 writes it: an independent check of the decomposition.
fn rfc9162_inclusion(m: u64, n: u64, leaf: &Hash, path: &[Hash], root: &Hash) -> bool {
    if m >= n {
        return false;
    }
    let (mut fnn, mut sn, mut r) = (m, n - 1, *leaf);
    for c in path {
        if sn == 0 {
            return false;
        }
        if fnn & 1 == 1 || fnn == sn {
            r = node_hash(c, &r);
            if fnn & 1 == 0 {
                while fnn & 1 == 0 && fnn != 0 {
                    fnn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, c);
        }
        fnn >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == *root
}

/// RFC 9162 §2.1.4.2 as SPECS §6.2 writes it.
fn rfc9162_consistency(n1: u64, n2: u64, r1: &Hash, r2: &Hash, path: &[Hash]) -> bool {
    if n1 == 0 || n1 > n2 {
        return false;
    }
    if n1 == n2 {
        return path.is_empty() && r1 == r2;
    }
    if path.is_empty() {
        return false;
    }
    let mut p = path.to_vec();
    if n1.is_power_of_two() {
        p.insert(0, *r1);
    }
    let (mut fnn, mut sn) = (n1 - 1, n2 - 1);
    while fnn & 1 == 1 {
        fnn >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (p[0], p[0]);
    for c in &p[1..] {
        if sn == 0 {
            return false;
        }
        if fnn & 1 == 1 || fnn == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnn & 1 == 0 {
                while fnn & 1 == 0 && fnn != 0 {
                    fnn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnn >>= 1;
        sn >>= 1;
    }
    sn == 0 && fr == *r1 && sr == *r2
}

/// RFC 6962 §2.1 MTH by its recursive definition.
fn naive_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
        }
    }
}

fn tree_of(size: u64) -> (MemoryTree, Vec<Hash>) {
    let leaves: Vec<Hash> = (0..size).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let mut tree = MemoryTree::new();
    for leaf in &leaves {
        tree.push_leaf_hash(*leaf);
    }
    (tree, leaves)
}

fn flip(hash: &Hash, bit: usize) -> Hash {
    let mut out = *hash;
    out[bit / 8] ^= 1 << (bit % 8);
    out
}

/// Every single-bit change of every proof hash must make `verify` fail.
fn each_bit_flip_fails(proof: &[Hash], verify: impl Fn(&[Hash]) -> bool) {
    for i in 0..proof.len() {
        for bit in 0..256 {
            let mut bad = proof.to_vec();
            bad[i] = flip(&bad[i], bit);
            assert!(
                !verify(&bad),
                "flipping bit {bit} of proof hash {i} still verifies"
            );
        }
    }
}

#[test]
fn compact_tree_reports_the_nodes_memory_tree_holds() {
    let (tree, leaves) = tree_of(300);
    let mut compact = CompactTree::new();
    let mut nodes = 0;
    for (i, leaf) in leaves.iter().enumerate() {
        compact
            .append_with(*leaf, |node, hash| {
                assert_eq!(tree.node(node).unwrap(), *hash, "{node:?}");
                nodes += 1;
            })
            .unwrap();
        let size = i as u64 + 1;
        assert_eq!(compact.root(), naive_root(&leaves[..=i]), "size {size}");
        let resumed = CompactTree::from_nodes(size, |node| tree.node(node)).unwrap();
        assert_eq!(resumed, compact);
    }
    assert_eq!(nodes, 2 * 300 - 300u64.count_ones() as usize);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn inclusion_proofs_verify_and_bit_flips_fail(size in 1u64..200, pick in any::<u64>()) {
        let (tree, leaves) = tree_of(size);
        let index = pick % size;
        let root = tree.root();
        prop_assert_eq!(root, naive_root(&leaves));
        let proof = tree.inclusion_proof(index, size).unwrap();
        let leaf = leaves[index as usize];
        prop_assert!(verify_inclusion(index, size, &leaf, &proof, &root).is_ok());
        prop_assert!(rfc9162_inclusion(index, size, &leaf, &proof, &root));
        each_bit_flip_fails(&proof, |p| verify_inclusion(index, size, &leaf, p, &root).is_ok());
        each_bit_flip_fails(&proof, |p| rfc9162_inclusion(index, size, &leaf, p, &root));
        for bit in 0..256 {
            prop_assert!(verify_inclusion(index, size, &flip(&leaf, bit), &proof, &root).is_err());
            prop_assert!(verify_inclusion(index, size, &leaf, &proof, &flip(&root, bit)).is_err());
        }
        if size > 1 {
            let other = (index + 1) % size;
            prop_assert!(verify_inclusion(other, size, &leaf, &proof, &root).is_err());
        }
    }

    #[test]
    fn consistency_proofs_verify_and_bit_flips_fail(size2 in 1u64..200, pick in any::<u64>()) {
        let (tree, _) = tree_of(size2);
        let size1 = pick % size2 + 1;
        let (root1, root2) = (tree.root_at(size1).unwrap(), tree.root_at(size2).unwrap());
        let proof = tree.consistency_proof(size1, size2).unwrap();
        prop_assert!(verify_consistency(size1, size2, &root1, &root2, &proof).is_ok());
        prop_assert!(rfc9162_consistency(size1, size2, &root1, &root2, &proof));
        each_bit_flip_fails(&proof, |p| verify_consistency(size1, size2, &root1, &root2, p).is_ok());
        each_bit_flip_fails(&proof, |p| rfc9162_consistency(size1, size2, &root1, &root2, p));
        for bit in 0..256 {
            prop_assert!(verify_consistency(size1, size2, &flip(&root1, bit), &root2, &proof).is_err());
            prop_assert!(verify_consistency(size1, size2, &root1, &flip(&root2, bit), &proof).is_err());
        }
        // A plain consistency proof is the subtree consistency proof of [0, size1).
        prop_assert_eq!(&tree.subtree_consistency_proof(0, size1, size2).unwrap(), &proof);
    }

    #[test]
    fn subtree_proofs_verify_and_bit_flips_fail(size in 1u64..200, a in any::<u64>(), b in any::<u64>()) {
        let (tree, leaves) = tree_of(size);
        let width = a % size + 1;
        let align = width.next_power_of_two();
        let slots = (size - width) / align + 1;
        let start = (b % slots) * align;
        let end = start + width;
        prop_assert!(is_valid_subtree(start, end));
        let hash = subtree_hash(start, end, &mut |n| tree.node(n)).unwrap();
        prop_assert_eq!(hash, naive_root(&leaves[start as usize..end as usize]));
        let root = tree.root();
        let proof = tree.subtree_consistency_proof(start, end, size).unwrap();
        prop_assert!(verify_subtree_consistency(start, end, size, &hash, &root, &proof).is_ok());
        each_bit_flip_fails(&proof, |p| {
            verify_subtree_consistency(start, end, size, &hash, &root, p).is_ok()
        });
        let index = start + b % width;
        let leaf = leaves[index as usize];
        let incl = tree.subtree_inclusion_proof(index, start, end).unwrap();
        prop_assert!(verify_subtree_inclusion(index, start, end, &leaf, &incl, &hash).is_ok());
        each_bit_flip_fails(&incl, |p| {
            verify_subtree_inclusion(index, start, end, &leaf, p, &hash).is_ok()
        });
        if start == 0 {
            prop_assert_eq!(incl, tree.inclusion_proof(index, end).unwrap());
        }
    }

    #[test]
    fn arbitrary_inputs_never_panic(
        index in any::<u64>(), size in any::<u64>(), end in any::<u64>(),
        proof in proptest::collection::vec(any::<[u8; 32]>(), 0..70),
        a in any::<[u8; 32]>(), b in any::<[u8; 32]>(),
    ) {
        let _ = verify_inclusion(index, size, &a, &proof, &b);
        let _ = verify_consistency(index, size, &a, &b, &proof);
        let _ = verify_subtree_inclusion(index, index.min(end), end, &a, &proof, &b);
        let _ = verify_subtree_consistency(index, end, size, &a, &b, &proof);
        let _ = verify_subtree_consistency(index & !0xff, (index & !0xff) + (end & 0xff), size, &a, &b, &proof);
    }
}
