//! C2SP tlog-tiles byte formats and arithmetic: tile widths, tile paths, entry bundles.
//!
//! Everything byte-exact about tiles lives here (tessera's `layout` package plays this role).

use custody_core::merkle::Hash;

/// Tree levels per tile: a tile at tile level `L` holds tree nodes of level `8 L`.
pub const TILE_HEIGHT: u32 = 8;
/// Hashes in a full tile (C2SP tlog-tiles: 2^8).
pub const TILE_WIDTH: u64 = 256;
/// Bytes per hash in a tile.
pub const HASH_SIZE: usize = 32;
/// Bytes in a full tile.
pub const FULL_TILE_BYTES: usize = HASH_SIZE * TILE_WIDTH as usize;
/// Highest tile level C2SP tlog-tiles allows in a path.
pub const MAX_TILE_LEVEL: u8 = 63;
/// Largest entry an entry bundle can carry (a big-endian `uint16` length prefix).
pub const MAX_ENTRY_SIZE: usize = u16::MAX as usize;
/// Largest tree the log can ever hold: the storage keeps indexes and sizes as signed 64-bit
/// database integers. A tile or bundle beyond a tree of this size cannot exist, so it is
/// answered as absent without asking the storage (whose conversion would fail).
pub const MAX_TREE_SIZE: u64 = i64::MAX as u64;
/// Most `/`-separated groups an index can have: `u64::MAX` has 20 decimal digits (7 groups).
const MAX_INDEX_GROUPS: usize = 7;

/// One tile: `level` is the tile level (tree level `8 level`), `index` the tile's position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileId {
    /// Tile level, 0..=63.
    pub level: u8,
    /// Tile index among the tiles of that level.
    pub index: u64,
}

/// How many nodes of tree level `8 * tile_level` a tree of `size` leaves has.
pub fn nodes_at_tile_level(tile_level: u8, size: u64) -> u64 {
    size.checked_shr(u32::from(tile_level) * TILE_HEIGHT)
        .unwrap_or(0)
}

/// C2SP tlog-tiles: the width of tile `(level, index)` in a tree of `size` leaves: 256 for a
/// full tile, `floor(size / 256^level) mod 256` for the partial tile at the right edge, 0 for a
/// tile that does not exist yet.
pub fn tile_width(tile: TileId, size: u64) -> u64 {
    let nodes = nodes_at_tile_level(tile.level, size);
    let full = nodes / TILE_WIDTH;
    match tile.index.cmp(&full) {
        std::cmp::Ordering::Less => TILE_WIDTH,
        std::cmp::Ordering::Equal => nodes % TILE_WIDTH,
        std::cmp::Ordering::Greater => 0,
    }
}

/// Whether a tree of `size` leaves has tile `tile` at `width` hashes (256 for a full tile).
/// Overflow-proof for every `TileId` and width.
pub fn tile_exists(tile: TileId, width: u64, size: u64) -> bool {
    width >= 1 && width <= tile_width(tile, size)
}

/// A parsed tlog-tiles request path (relative to the log's prefix).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TilePath {
    /// `tile/<L>/<N>[.p/<W>]`.
    Tile {
        /// Tile level.
        level: u8,
        /// Tile index.
        index: u64,
        /// Partial width 1..=255, `None` for a full tile.
        width: Option<u16>,
    },
    /// `tile/entries/<N>[.p/<W>]`.
    Entries {
        /// Bundle index.
        index: u64,
        /// Partial width 1..=255, `None` for a full bundle.
        width: Option<u16>,
    },
}

impl TilePath {
    /// Parses `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]` (no leading slash), refusing
    /// every non-canonical spelling (leading zeros, `x000` groups, width 0 or 256+).
    pub fn parse(path: &str) -> Option<Self> {
        let rest = path.strip_prefix("tile/")?;
        let (kind, rest) = rest.split_once('/')?;
        let (index_part, width) = match rest.split_once(".p/") {
            Some((index, width)) => (index, Some(parse_width(width)?)),
            None => (rest, None),
        };
        let index = parse_index(index_part)?;
        if kind == "entries" {
            return Some(Self::Entries { index, width });
        }
        let level = parse_decimal(kind)?;
        let level = u8::try_from(level).ok().filter(|l| *l <= MAX_TILE_LEVEL)?;
        Some(Self::Tile {
            level,
            index,
            width,
        })
    }

    /// The path, as C2SP tlog-tiles spells it.
    pub fn to_path(&self) -> String {
        let (prefix, index, width) = match self {
            Self::Tile {
                level,
                index,
                width,
            } => (format!("tile/{level}/"), *index, *width),
            Self::Entries { index, width } => ("tile/entries/".to_owned(), *index, *width),
        };
        let mut path = prefix + &encode_index(index);
        if let Some(width) = width {
            path.push_str(&format!(".p/{width}"));
        }
        path
    }
}

/// C2SP tlog-tiles: "N is the index encoded as zero-padded 3-digit path elements, all but the
/// last prefixed with x" (1234067 → `x001/x234/067`).
pub fn encode_index(index: u64) -> String {
    let mut groups = vec![index % 1000];
    let mut rest = index / 1000;
    while rest > 0 {
        groups.push(rest % 1000);
        rest /= 1000;
    }
    let last = groups.len() - 1;
    groups
        .iter()
        .rev()
        .enumerate()
        .map(|(i, g)| {
            if i == last {
                format!("{g:03}")
            } else {
                format!("x{g:03}")
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn parse_index(text: &str) -> Option<u64> {
    if text.len() > MAX_INDEX_GROUPS * 5 {
        return None;
    }
    let groups: Vec<&str> = text.split('/').collect();
    if groups.len() > MAX_INDEX_GROUPS {
        return None;
    }
    let (last, leading) = groups.split_last()?;
    let mut value: u64 = 0;
    for (i, group) in leading.iter().enumerate() {
        let digits = group.strip_prefix('x')?;
        let g = parse_group(digits)?;
        if i == 0 && g == 0 {
            return None; // a leading x000 group is not canonical
        }
        value = value.checked_mul(1000)?.checked_add(g)?;
    }
    value.checked_mul(1000)?.checked_add(parse_group(last)?)
}

fn parse_group(digits: &str) -> Option<u64> {
    if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn parse_decimal(text: &str) -> Option<u64> {
    // Levels and widths are at most three digits; a longer number is never a tile path.
    if text.is_empty()
        || text.len() > 3
        || !text.bytes().all(|b| b.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return None;
    }
    text.parse().ok()
}

fn parse_width(text: &str) -> Option<u16> {
    let width = parse_decimal(text)?;
    u16::try_from(width)
        .ok()
        .filter(|w| (1..TILE_WIDTH as u16).contains(w))
}

/// C2SP tlog-tiles entry bundle: each entry as a big-endian `uint16` length and its bytes.
/// Entries longer than [`MAX_ENTRY_SIZE`] cannot be encoded; the log refuses them at submission.
pub fn encode_bundle<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for entry in entries {
        let len = u16::try_from(entry.len()).ok()?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(entry);
    }
    Some(out)
}

/// Splits an entry bundle into its entries; `None` if the lengths do not add up.
pub fn decode_bundle(bundle: &[u8]) -> Option<Vec<&[u8]>> {
    let mut entries = Vec::new();
    let mut rest = bundle;
    while !rest.is_empty() {
        let (len, tail) = rest.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len));
        if tail.len() < len {
            return None;
        }
        let (entry, tail) = tail.split_at(len);
        entries.push(entry);
        rest = tail;
    }
    Some(entries)
}

/// The hash at `position` of a tile's bytes, if the tile is that wide. Any `position` is
/// safe: one whose byte offset does not fit in a `usize` is `None` (found by fuzzing: the
/// end of the range overflowed at `position = 2^59 - 1`).
pub fn tile_hash(tile: &[u8], position: u64) -> Option<Hash> {
    let start = usize::try_from(position).ok()?.checked_mul(HASH_SIZE)?;
    tile.get(start..start.checked_add(HASH_SIZE)?)?
        .try_into()
        .ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn index_encoding_matches_the_spec_example() {
        assert_eq!(encode_index(1_234_067), "x001/x234/067");
        assert_eq!(encode_index(5), "005");
        assert_eq!(encode_index(1000), "x001/000");
        assert_eq!(parse_index("x001/x234/067"), Some(1_234_067));
        assert_eq!(parse_index("x000/005"), None);
        assert_eq!(parse_index("5"), None);
        assert_eq!(parse_index("x1/005"), None);
    }

    #[test]
    fn attack_tile_index_near_and_above_u64_max_parses_without_overflow() {
        // u64::MAX itself is a well-formed index; one more is not a u64 and is refused.
        let max = encode_index(u64::MAX);
        assert_eq!(max, "x018/x446/x744/x073/x709/x551/615");
        assert_eq!(parse_index(&max), Some(u64::MAX));
        assert_eq!(parse_index("x018/x446/x744/x073/x709/x551/616"), None);
        assert_eq!(parse_index("x999/x999/x999/x999/x999/x999/999"), None);
        // An eighth group is refused before any arithmetic, however small its digits.
        assert_eq!(parse_index("x001/x000/x000/x000/x000/x000/x000/000"), None);
        let long = format!("{}000", "x001/".repeat(10_000));
        assert_eq!(TilePath::parse(&format!("tile/entries/{long}")), None);
        for index in [1 << 56, (1 << 56) - 1, (1 << 56) + 1, 1 << 63, u64::MAX - 1] {
            let path = format!("tile/entries/{}.p/255", encode_index(index));
            assert_eq!(
                TilePath::parse(&path),
                Some(TilePath::Entries {
                    index,
                    width: Some(255)
                }),
                "{path}"
            );
        }
    }

    #[test]
    fn tiles_beyond_the_largest_possible_tree_do_not_exist() {
        let at = |level, index| TileId { level, index };
        // Level 0: the last tile of a 2^63 - 1 leaf tree is partial (width 255).
        let last = MAX_TREE_SIZE / 256;
        assert!(tile_exists(at(0, last - 1), 256, MAX_TREE_SIZE));
        assert!(tile_exists(at(0, last), 255, MAX_TREE_SIZE));
        assert!(!tile_exists(at(0, last), 256, MAX_TREE_SIZE));
        for index in [last + 1, 1 << 56, (1 << 56) - 1, 1 << 63, u64::MAX] {
            assert!(!tile_exists(at(0, index), 1, MAX_TREE_SIZE), "{index}");
        }
        // High levels: shifts past 64 bits and the top tile level are absent, not a panic.
        for level in [7, 8, 63] {
            for index in [0, 1, u64::MAX] {
                let exists = tile_exists(at(level, index), 1, MAX_TREE_SIZE);
                assert_eq!(exists, level == 7 && index == 0, "{level}/{index}");
            }
        }
        // Width 0 and widths above 256 never exist.
        assert!(!tile_exists(at(0, 0), 0, MAX_TREE_SIZE));
        assert!(!tile_exists(at(0, 0), 257, MAX_TREE_SIZE));
        assert!(!tile_exists(at(0, 0), u64::MAX, MAX_TREE_SIZE));
    }

    #[test]
    fn tile_paths_with_wrong_widths_or_garbage_are_refused() {
        for bad in [
            "tile/0/000.p/0",
            "tile/0/000.p/256",
            "tile/0/000.p/257",
            "tile/0/000.p/65536",
            "tile/0/000.p/18446744073709551617",
            "tile/0/000.p/",
            "tile/0/000.p/+1",
            "tile/0/000.p/-1",
            "tile/0/000.p/1.p/2",
            "tile/0/000.p/ 1",
            "tile/entries/000.p/0",
            "tile/entries/000.p/300",
            "tile/+0/000",
            "tile/-1/000",
            "tile/0000000000000000000000/000",
            "tile/18446744073709551616/000",
            "tile/0/+00",
            "tile/0/ 000",
            "tile/0/x+01/000",
            "tile/0/x001/+00",
            "tile/0//000",
            "tile/0/000/",
            "tile/0/x001//000",
            "tile/entries/",
            "tile/entries/000/",
            "/tile/0/000",
            " tile/0/000",
            "tile/0/\u{0660}\u{0660}\u{0660}",
        ] {
            assert_eq!(TilePath::parse(bad), None, "{bad:?}");
        }
        assert_eq!(
            TilePath::parse("tile/63/000.p/255"),
            Some(TilePath::Tile {
                level: 63,
                index: 0,
                width: Some(255)
            })
        );
    }

    #[test]
    fn paths_round_trip_and_refuse_non_canonical_forms() {
        let p = TilePath::parse("tile/1/x001/x234/067.p/17").unwrap();
        assert_eq!(
            p,
            TilePath::Tile {
                level: 1,
                index: 1_234_067,
                width: Some(17)
            }
        );
        assert_eq!(p.to_path(), "tile/1/x001/x234/067.p/17");
        let e = TilePath::parse("tile/entries/000").unwrap();
        assert_eq!(
            e,
            TilePath::Entries {
                index: 0,
                width: None
            }
        );
        for bad in [
            "tile/01/000",
            "tile/64/000",
            "tile/0/000.p/0",
            "tile/0/000.p/256",
            "tile/0/000.p/07",
            "tile/0/0000",
            "tile/0/",
            "tile/entries/x000/001",
            "tiles/0/000",
        ] {
            assert_eq!(TilePath::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn widths_follow_the_spec_example_for_size_70000() {
        // C2SP tlog-tiles: size 70 000 → 273 full L0 tiles, partial L0 of width 112, 1 full L1,
        // partial L1 width 17, partial L2 width 1.
        let w = |level, index| tile_width(TileId { level, index }, 70_000);
        assert_eq!(w(0, 272), 256);
        assert_eq!(w(0, 273), 112);
        assert_eq!(w(0, 274), 0);
        assert_eq!(w(1, 0), 256);
        assert_eq!(w(1, 1), 17);
        assert_eq!(w(2, 0), 1);
        assert_eq!(w(3, 0), 0);
        assert_eq!(w(63, 0), 0);
    }

    /// Found by `fuzz/fuzz_targets/tiles.rs`: at position 2^59 - 1 the byte offset is
    /// 2^64 - 32 and the end of the range overflowed (a panic in debug builds, a wrapped range
    /// in release). The crashing input is kept in `fuzz/regressions/tiles/`.
    #[test]
    fn attack_tile_hash_at_a_position_whose_offset_overflows() {
        let crash =
            include_bytes!("../../../fuzz/regressions/tiles/tile-hash-position-offset-overflow");
        let position = u64::from_be_bytes(crash[1..9].try_into().unwrap());
        assert_eq!(position, (1 << 59) - 1);
        assert_eq!(tile_hash(&crash[17..], position), None);
        for position in [(1 << 59) - 2, (1 << 59) - 1, 1 << 59, u64::MAX] {
            assert_eq!(tile_hash(&[0; 64], position), None, "position {position}");
        }
        assert_eq!(tile_hash(&[7; 64], 1), Some([7; 32]));
        assert_eq!(tile_hash(&[7; 64], 2), None);
    }

    #[test]
    fn bundles_round_trip_and_refuse_truncation() {
        let entries: Vec<&[u8]> = vec![b"", b"a", &[7u8; 300]];
        let bundle = encode_bundle(entries.iter().copied()).unwrap();
        assert_eq!(decode_bundle(&bundle).unwrap(), entries);
        assert_eq!(decode_bundle(&bundle[..bundle.len() - 1]), None);
        assert_eq!(decode_bundle(&[0]), None);
        assert!(encode_bundle([vec![0u8; 65_536].as_slice()]).is_none());
    }
}
