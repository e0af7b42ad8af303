//! tlog-tiles as a client reads them: tile paths (the URL a server parses), entry bundles
//! (decode → encode round-trips), hash tiles, tile widths at any index and tree size.
#![no_main]
use custody_log::layout::{TilePath, decode_bundle, encode_bundle, tile_hash, tile_width};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(path) = std::str::from_utf8(data)
        && let Some(parsed) = TilePath::parse(path)
    {
        let written = parsed.to_path();
        assert_eq!(
            TilePath::parse(&written),
            Some(parsed),
            "{path} → {written}"
        );
    }
    if let Some(entries) = decode_bundle(data) {
        let encoded = encode_bundle(entries.iter().copied()).expect("decoded entries re-encode");
        assert_eq!(encoded, data, "entry bundle did not round-trip");
    }
    if let Some((head, tile)) = data.split_first_chunk::<17>() {
        let level = head[0];
        let index = u64::from_be_bytes(head[1..9].try_into().unwrap_or_default());
        let size = u64::from_be_bytes(head[9..17].try_into().unwrap_or_default());
        let id = custody_log::layout::TileId { level, index };
        let width = tile_width(id, size);
        let _ = tile_hash(tile, width);
        let _ = tile_hash(tile, index);
    }
});
