//! RFC 6962 Merkle trees: hashing, inclusion and consistency proofs, and their
//! verification (the algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2).
//!
//! A tree is never held in memory. Its hashes come from a [`Nodes`] source
//! that answers for *complete aligned subtrees*: node (level, index) covers
//! leaves `[index << level, (index + 1) << level)`. Every subtree hash the RFC
//! recursion asks for is either such a node or is folded from O(log n) of
//! them, so a log stores one row per node and a proof reads O(log n) rows.
//! The proof builders ask for nodes in an order that does not depend on the
//! hashes, so a caller can first collect the nodes a proof needs
//! ([`Recorder`]), fetch them in one query, and then build it ([`Map`]).

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The hash of a leaf: SHA-256(0x00 ‖ data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an interior node: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// A node's position: its level (0 for leaves) and its index at that level.
pub type NodeId = (u8, u64);

/// Where a tree's complete aligned subtree hashes come from.
pub trait Nodes {
    /// The hash of node `id`; only ever asked for nodes of complete subtrees.
    fn node(&mut self, id: NodeId) -> Hash;
}

/// Records the nodes asked for and answers zeros: run a proof builder with
/// it to learn which nodes to fetch.
#[derive(Debug, Default)]
pub struct Recorder(pub BTreeSet<NodeId>);

impl Nodes for Recorder {
    fn node(&mut self, id: NodeId) -> Hash {
        self.0.insert(id);
        [0; 32]
    }
}

/// Answers from fetched nodes; a node it lacks is recorded in `missing`
/// (and answered with zeros), so that a caller can refuse the result.
#[derive(Debug, Default)]
pub struct Map {
    pub nodes: BTreeMap<NodeId, Hash>,
    pub missing: BTreeSet<NodeId>,
}

impl Nodes for Map {
    fn node(&mut self, id: NodeId) -> Hash {
        match self.nodes.get(&id) {
            Some(h) => *h,
            None => {
                self.missing.insert(id);
                [0; 32]
            }
        }
    }
}

/// The largest power of two strictly less than `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// MTH(D[start:end]) for a range the RFC recursion produces: `start` is a
/// multiple of the largest power of two not above `end - start`.
pub fn subtree(src: &mut dyn Nodes, start: u64, end: u64) -> Hash {
    let n = end - start;
    if n.is_power_of_two() && start % n == 0 {
        return src.node((n.trailing_zeros() as u8, start >> n.trailing_zeros()));
    }
    let k = split(n);
    let left = subtree(src, start, start + k);
    let right = subtree(src, start + k, end);
    node_hash(&left, &right)
}

/// The root of the tree of the first `size` leaves.
pub fn root(src: &mut dyn Nodes, size: u64) -> Hash {
    if size == 0 {
        empty_root()
    } else {
        subtree(src, 0, size)
    }
}

/// The audit path of leaf `index` in the tree of `size` leaves (RFC 6962
/// §2.1.1), leaf side first. `None` when `index >= size`.
pub fn inclusion_proof(src: &mut dyn Nodes, index: u64, size: u64) -> Option<Vec<Hash>> {
    if index >= size {
        return None;
    }
    let mut path = vec![];
    inclusion(src, index, 0, size, &mut path);
    Some(path)
}

fn inclusion(src: &mut dyn Nodes, m: u64, start: u64, end: u64, path: &mut Vec<Hash>) {
    let n = end - start;
    if n == 1 {
        return;
    }
    let k = split(n);
    if m < k {
        inclusion(src, m, start, start + k, path);
        path.push(subtree(src, start + k, end));
    } else {
        inclusion(src, m - k, start + k, end, path);
        path.push(subtree(src, start, start + k));
    }
}

/// The consistency proof between the trees of `old` and `new` leaves (RFC
/// 6962 §2.1.2). `None` unless `0 < old <= new`; empty when they are equal.
pub fn consistency_proof(src: &mut dyn Nodes, old: u64, new: u64) -> Option<Vec<Hash>> {
    if old == 0 || old > new {
        return None;
    }
    let mut path = vec![];
    if old < new {
        consistency(src, old, 0, new, true, &mut path);
    }
    Some(path)
}

fn consistency(
    src: &mut dyn Nodes,
    m: u64,
    start: u64,
    end: u64,
    whole: bool,
    path: &mut Vec<Hash>,
) {
    let n = end - start;
    if m == n {
        if !whole {
            path.push(subtree(src, start, end));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        consistency(src, m, start, start + k, whole, path);
        path.push(subtree(src, start + k, end));
    } else {
        consistency(src, m - k, start + k, end, false, path);
        path.push(subtree(src, start, start + k));
    }
}

/// The nodes appending leaf `index` completes, given its hash: the leaf
/// itself, then each parent whose right child it completes. `left(id)` gives
/// the left siblings, which are nodes of the tree before the append.
pub fn appended_nodes(
    index: u64,
    leaf: Hash,
    mut left: impl FnMut(NodeId) -> Hash,
) -> Vec<(NodeId, Hash)> {
    let mut out = vec![((0, index), leaf)];
    let (mut level, mut i, mut h) = (0u8, index, leaf);
    while i & 1 == 1 {
        h = node_hash(&left((level, i - 1)), &h);
        level += 1;
        i >>= 1;
        out.push(((level, i), h));
    }
    out
}

/// The left siblings [`appended_nodes`] asks for when appending leaf `index`.
pub fn append_needs(index: u64) -> Vec<NodeId> {
    (0..index.trailing_ones() as u8)
        .map(|level| (level, (index >> level) - 1))
        .collect()
}

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is not in a tree of {size} leaves")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("the proof has the wrong number of hashes for these tree sizes")]
    WrongLength,
    #[error("the proof does not lead to the root hash")]
    RootMismatch,
    #[error("the old tree size {old} is larger than the new one {new}: the log shrank")]
    Shrank { old: u64, new: u64 },
    #[error("the two trees have {size} leaves each but different root hashes: the log forked")]
    SameSizeDifferentRoot { size: u64 },
}

/// Verifies that `leaf` is leaf `index` of the tree of `size` leaves whose
/// root is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    if &r != root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of `new` leaves with root `new_root` extends the
/// tree of `old` leaves with root `old_root` (RFC 9162 §2.1.4.2). A tree of
/// zero leaves is extended by every tree.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old > new {
        return Err(ProofError::Shrank { old, new });
    }
    if old == new {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::SameSizeDifferentRoot { size: old })
        };
    }
    if old == 0 {
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::WrongLength)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut fn_, mut sn) = (old - 1, new - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    if &fr != old_root || &sr != new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// A compact range: the roots of the complete subtrees that make up the
/// first `size` leaves, largest first. A monitor keeps it to check the
/// leaves appended after what it saw without fetching the old ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    pub size: u64,
    /// One hash per set bit of `size`, from the highest bit down.
    pub hashes: Vec<Hash>,
}

impl Frontier {
    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut i = self.size;
        while i & 1 == 1 {
            let left = self.hashes.pop().unwrap_or([0; 32]);
            h = node_hash(&left, &h);
            i >>= 1;
        }
        self.hashes.push(h);
        self.size += 1;
    }

    /// The root of the first `size` leaves.
    pub fn root(&self) -> Hash {
        let mut it = self.hashes.iter().rev();
        match it.next() {
            None => empty_root(),
            Some(last) => it.fold(*last, |acc, h| node_hash(h, &acc)),
        }
    }

    /// Whether `hashes` has one hash per set bit of `size`.
    pub fn is_well_formed(&self) -> bool {
        self.hashes.len() == self.size.count_ones() as usize
    }

    /// The nodes whose hashes make up the frontier of `size` leaves.
    pub fn nodes_of(size: u64) -> Vec<NodeId> {
        let mut out = vec![];
        let mut start = 0u64;
        for level in (0..64u8).rev() {
            if size >> level & 1 == 1 {
                out.push((level, start >> level));
                start += 1 << level;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MTH straight from RFC 6962's definition, over every leaf.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    /// Every node of a tree, built by appending, as a log stores them.
    fn build(n: u64) -> (Vec<Hash>, Map) {
        let mut map = Map::default();
        let mut leaves = vec![];
        for i in 0..n {
            let leaf = leaf_hash(format!("leaf {i}").as_bytes());
            leaves.push(leaf);
            let nodes = appended_nodes(i, leaf, |id| map.nodes[&id]);
            for (id, h) in nodes {
                map.nodes.insert(id, h);
            }
        }
        (leaves, map)
    }

    #[test]
    fn known_answers_from_rfc6962_test_vectors() {
        // The certificate-transparency-go test vectors: leaves are the
        // byte strings below, roots of the first 1..=8 of them.
        let inputs: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
        ];
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let leaves: Vec<Hash> = inputs.iter().map(|d| leaf_hash(d)).collect();
        for (n, want) in roots.iter().enumerate() {
            let mut map = Map::default();
            for (i, leaf) in leaves[..=n].iter().enumerate() {
                for (id, h) in appended_nodes(i as u64, *leaf, |id| map.nodes[&id]) {
                    map.nodes.insert(id, h);
                }
            }
            let got = root(&mut map, n as u64 + 1);
            assert_eq!(hex(&got), *want, "root of {} leaves", n + 1);
        }
        assert_eq!(
            hex(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    fn hex(h: &Hash) -> String {
        h.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn proofs_verify_for_every_leaf_and_every_pair_of_sizes() {
        let (leaves, mut map) = build(70);
        for size in 1..=70u64 {
            let want = reference_root(&leaves[..size as usize]);
            assert_eq!(root(&mut map, size), want);
            let mut frontier = Frontier::default();
            for l in &leaves[..size as usize] {
                frontier.push(*l);
            }
            assert_eq!(frontier.root(), want);
            let mut stored = Map::default();
            for id in Frontier::nodes_of(size) {
                stored.nodes.insert(id, map.nodes[&id]);
            }
            assert_eq!(
                Frontier {
                    size,
                    hashes: Frontier::nodes_of(size)
                        .iter()
                        .map(|id| stored.nodes[id])
                        .collect()
                },
                frontier
            );
            for index in 0..size {
                let proof = inclusion_proof(&mut map, index, size).unwrap();
                verify_inclusion(&leaves[index as usize], index, size, &proof, &want).unwrap();
                // Another leaf, another index, a shorter proof: refused.
                let other = leaves[(index as usize + 1) % size as usize];
                if size > 1 {
                    assert!(verify_inclusion(&other, index, size, &proof, &want).is_err());
                    assert!(verify_inclusion(
                        &leaves[index as usize],
                        index,
                        size,
                        &proof[..proof.len() - 1],
                        &want
                    )
                    .is_err());
                }
            }
            for old in 1..=size {
                let old_root = reference_root(&leaves[..old as usize]);
                let proof = consistency_proof(&mut map, old, size).unwrap();
                verify_consistency(old, size, &old_root, &want, &proof).unwrap();
                if old < size {
                    let forked = leaf_hash(b"forked");
                    assert_eq!(
                        verify_consistency(old, size, &forked, &want, &proof),
                        Err(ProofError::RootMismatch)
                    );
                    assert!(verify_consistency(size, old, &want, &old_root, &proof).is_err());
                }
            }
        }
    }

    #[test]
    fn a_proof_reads_few_nodes_even_in_a_large_tree() {
        let size = 1_000_000u64;
        let mut rec = Recorder::default();
        let proof = inclusion_proof(&mut rec, 123_457, size).unwrap();
        assert_eq!(proof.len(), 20);
        assert!(rec.0.len() <= 2 * 20, "{} nodes", rec.0.len());
        let mut rec = Recorder::default();
        let proof = consistency_proof(&mut rec, 999_000, size).unwrap();
        assert!(proof.len() <= 2 * 20);
        assert!(rec.0.len() <= 3 * 20, "{} nodes", rec.0.len());
        assert_eq!(append_needs(0b1011), vec![(0, 0b1010), (1, 0b100)]);
    }
}
