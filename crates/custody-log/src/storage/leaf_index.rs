//! The SQLite backend's duplicate index: leaf hash → entry index, kept in memory.
//!
//! Why not a `UNIQUE` index in the database: leaf hashes are random, so once such an index
//! has more pages than a batch has entries (past ~10^5 entries), every entry of a batch
//! dirties its own 4 KiB index page, written to the WAL and copied again by the WAL
//! checkpoint. The database instead keeps an index on `(idx, leaf_hash)`, which only ever
//! grows at its right edge, and this map answers "is this leaf hash stored, at which index?".
//!
//! The map covers the entries `[0, covered)`. Before it answers, it catches up with the
//! stored tree size by reading the new `(idx, leaf_hash)` rows (another process may have
//! committed to the same file); [`super::SqliteStorage`]'s commit does that inside its
//! `BEGIN IMMEDIATE` transaction, so the duplicate check and the write are one step even with
//! several writers.
//!
//! Memory: the key is the leaf hash's first 8 bytes and the value the index (16 bytes, plus a
//! control byte and the table's slack: 29–36 bytes per entry, ~290 MB at 10^7 entries). A
//! leaf hash whose 8-byte prefix is already taken by another (~n²/2^65 of them: none expected
//! below 10^9 entries, but possible and handled) goes to a small exact map. A prefix hit is
//! confirmed against the stored leaf hash before it is reported. The table hashes its keys with a
//! per-process random key (SipHash), so entries ground to share table buckets cannot slow it.

use std::collections::HashMap;

use custody_core::merkle::Hash;
use rusqlite::{Connection, OptionalExtension};

use super::{to_hash, to_i64, to_u64};
use crate::error::StorageError;

/// A catch-up of at least this many entries (a start on a large log) is logged.
const LOG_CATCH_UP_FROM: u64 = 100_000;

/// Rows per catch-up statement (bounds the memory of one catch-up step, not its total).
const CATCH_UP_ROWS: i64 = 65_536;

#[derive(Debug, Default)]
pub(super) struct LeafIndex {
    /// Entries `[0, covered)` are in the maps.
    covered: u64,
    /// First 8 bytes of a leaf hash → the index of the first stored entry with that prefix.
    by_prefix: HashMap<u64, u64>,
    /// Leaf hashes whose prefix an earlier stored leaf hash had taken.
    spill: HashMap<Hash, u64>,
}

fn prefix(hash: &Hash) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    u64::from_le_bytes(first)
}

impl LeafIndex {
    /// How many entries the map covers.
    pub(super) fn covered(&self) -> u64 {
        self.covered
    }

    /// Adds the stored entries `[covered, stored)`, read through `conn` (in the caller's
    /// transaction, so `stored` and the rows are one snapshot). A map already past `stored`
    /// (the caller's snapshot is older than a commit it has seen) is left as it is.
    pub(super) fn catch_up(&mut self, conn: &Connection, stored: u64) -> Result<(), StorageError> {
        let mut stmt = conn.prepare_cached(
            "SELECT idx, leaf_hash FROM log_entries INDEXED BY log_entries_leaves
             WHERE idx >= ?1 AND idx < ?2 ORDER BY idx LIMIT ?3",
        )?;
        let (started, first) = (std::time::Instant::now(), self.covered);
        // One allocation for a large catch-up rather than a rehash at every doubling.
        let missing = usize::try_from(stored.saturating_sub(self.covered)).unwrap_or(usize::MAX);
        self.by_prefix.reserve(missing.min(1 << 28));
        while self.covered < stored {
            let (from, to) = (
                to_i64("entry index", self.covered)?,
                to_i64("tree size", stored)?,
            );
            let mut rows = stmt.query(rusqlite::params![from, to, CATCH_UP_ROWS])?;
            let before = self.covered;
            while let Some(row) = rows.next()? {
                let index = to_u64(row.get(0)?)?;
                if index != self.covered {
                    return Err(StorageError::Corrupt {
                        what: "a stored entry index is missing below the stored tree size",
                    });
                }
                let hash = to_hash(row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?)?;
                self.insert(hash, index);
                self.covered += 1;
            }
            if self.covered == before {
                return Err(StorageError::Corrupt {
                    what: "fewer stored entries than the stored tree size",
                });
            }
        }
        if self.covered - first >= LOG_CATCH_UP_FROM {
            tracing::info!(
                entries = self.covered - first,
                ms = started.elapsed().as_millis() as u64,
                "duplicate index: stored leaf hashes loaded"
            );
        }
        Ok(())
    }

    /// The index of the stored entry with leaf hash `hash`, if the map has it (a prefix hit is
    /// confirmed against the stored leaf hash; an entry beyond `conn`'s snapshot is not found).
    pub(super) fn find(&self, conn: &Connection, hash: &Hash) -> Result<Option<u64>, StorageError> {
        if let Some(&index) = self.spill.get(hash) {
            return Ok(Some(index));
        }
        let Some(&index) = self.by_prefix.get(&prefix(hash)) else {
            return Ok(None);
        };
        let stored: Option<Vec<u8>> = conn
            .prepare_cached("SELECT leaf_hash FROM log_entries WHERE idx = ?1")?
            .query_row([to_i64("entry index", index)?], |row| row.get(0))
            .optional()?;
        Ok(stored.filter(|s| s[..] == hash[..]).map(|_| index))
    }

    /// Records that the entry `index` (the next one, `covered`) has leaf hash `hash`; the
    /// caller has checked that `hash` is not stored yet.
    fn insert(&mut self, hash: Hash, index: u64) {
        match self.by_prefix.entry(prefix(&hash)) {
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(index);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.spill.insert(hash, index);
            }
        }
    }

    /// Records a batch that was just committed on top of `covered` entries.
    pub(super) fn extend(&mut self, entries: impl IntoIterator<Item = (Hash, u64)>) {
        for (hash, index) in entries {
            debug_assert_eq!(index, self.covered);
            self.insert(hash, index);
            self.covered = index + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn hash(first: u64, rest: u8) -> Hash {
        let mut h = [rest; 32];
        h[..8].copy_from_slice(&first.to_le_bytes());
        h
    }

    fn store(conn: &Connection, hashes: &[Hash]) {
        conn.execute_batch(
            "CREATE TABLE log_entries (idx INTEGER PRIMARY KEY, leaf_hash BLOB NOT NULL,
                                       data BLOB NOT NULL);
             CREATE INDEX log_entries_leaves ON log_entries (idx, leaf_hash);",
        )
        .unwrap();
        for (i, h) in hashes.iter().enumerate() {
            conn.execute(
                "INSERT INTO log_entries VALUES (?1, ?2, x'00')",
                rusqlite::params![i as i64, &h[..]],
            )
            .unwrap();
        }
    }

    #[test]
    fn prefix_collisions_are_confirmed_and_kept_apart() {
        let conn = Connection::open_in_memory().unwrap();
        // Two stored hashes share a prefix; a third (not stored) shares it too.
        let (a, b, c) = (hash(7, 1), hash(7, 2), hash(7, 3));
        store(&conn, &[a, hash(8, 0), b]);
        let mut index = LeafIndex::default();
        index.catch_up(&conn, 3).unwrap();
        assert_eq!(index.covered(), 3);
        assert_eq!(index.find(&conn, &a).unwrap(), Some(0));
        assert_eq!(index.find(&conn, &b).unwrap(), Some(2));
        assert_eq!(index.find(&conn, &hash(8, 0)).unwrap(), Some(1));
        assert_eq!(
            index.find(&conn, &c).unwrap(),
            None,
            "a prefix hit is not a match"
        );
        assert_eq!(index.find(&conn, &hash(9, 0)).unwrap(), None);
    }

    proptest::proptest! {
        /// Against a plain map of whole hashes: hashes drawn from 4 prefixes (so most share
        /// one), stored in batches with a catch-up after each, every stored hash is found at
        /// its index and no other hash is found.
        #[test]
        fn answers_like_a_map_of_whole_hashes(
            drawn in proptest::collection::vec((0u64..4, 0u8..6), 1..60),
            cuts in proptest::collection::vec(0usize..60, 0..4),
        ) {
            let mut model: HashMap<Hash, u64> = HashMap::new();
            let mut hashes = Vec::new();
            for (first, rest) in drawn {
                let h = hash(first, rest);
                if let std::collections::hash_map::Entry::Vacant(slot) = model.entry(h) {
                    slot.insert(hashes.len() as u64);
                    hashes.push(h);
                }
            }
            let conn = Connection::open_in_memory().unwrap();
            store(&conn, &hashes);
            let mut index = LeafIndex::default();
            let mut stops: Vec<u64> = cuts.iter().map(|c| (*c).min(hashes.len()) as u64).collect();
            stops.sort_unstable();
            stops.push(hashes.len() as u64);
            for stop in stops {
                index.catch_up(&conn, stop).unwrap();
                for first in 0..4 {
                    for rest in 0..6 {
                        let h = hash(first, rest);
                        let expected = model.get(&h).copied().filter(|i| *i < stop);
                        proptest::prop_assert_eq!(index.find(&conn, &h).unwrap(), expected);
                    }
                }
            }
        }
    }

    #[test]
    fn catch_up_reads_only_new_rows_and_refuses_gaps() {
        let conn = Connection::open_in_memory().unwrap();
        let hashes: Vec<Hash> = (0..10).map(|i| hash(i * 1000 + 1, 5)).collect();
        store(&conn, &hashes);
        let mut index = LeafIndex::default();
        index.catch_up(&conn, 4).unwrap();
        assert_eq!(
            index.find(&conn, &hashes[5]).unwrap(),
            None,
            "not caught up yet"
        );
        index.catch_up(&conn, 10).unwrap();
        assert_eq!(index.find(&conn, &hashes[5]).unwrap(), Some(5));
        // A snapshot older than the map changes nothing.
        index.catch_up(&conn, 2).unwrap();
        assert_eq!(index.covered(), 10);
        // The stored size claims more entries than there are.
        assert!(matches!(
            index.catch_up(&conn, 12),
            Err(StorageError::Corrupt { .. })
        ));
        conn.execute("DELETE FROM log_entries WHERE idx = 1", [])
            .unwrap();
        let mut fresh = LeafIndex::default();
        assert!(matches!(
            fresh.catch_up(&conn, 10),
            Err(StorageError::Corrupt { .. })
        ));
    }
}
