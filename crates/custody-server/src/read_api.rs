//! C2SP tlog-tiles read API: public, no authentication, cacheable.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use custody_log::LogError;
use custody_log::layout::TilePath;

use crate::server::AppState;

/// Full tiles and bundles never change (C2SP tlog-tiles).
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Partial tiles are replaced by wider ones; checkpoints move on.
const SHORT: &str = "public, max-age=1";
const OCTETS: &str = "application/octet-stream";

pub(crate) async fn checkpoint(State(state): State<Arc<AppState>>) -> Response {
    match state.log.checkpoint().await {
        Ok(note) => (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, SHORT),
            ],
            note,
        )
            .into_response(),
        Err(e) => internal(&e),
    }
}

pub(crate) async fn tile(State(state): State<Arc<AppState>>, Path(path): Path<String>) -> Response {
    let Some(parsed) = TilePath::parse(&format!("tile/{path}")) else {
        return (
            StatusCode::BAD_REQUEST,
            "not a C2SP tlog-tiles path: tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>]\n",
        )
            .into_response();
    };
    let (bytes, width) = match parsed {
        TilePath::Tile {
            level,
            index,
            width,
        } => (
            state
                .log
                .tile(level, index, width)
                .await
                .map(|t| t.map(Bytes::from)),
            width,
        ),
        TilePath::Entries { index, width: None } => (full_bundle(&state, index).await, None),
        TilePath::Entries { index, width } => (
            state
                .log
                .entry_bundle(index, width)
                .await
                .map(|b| b.map(Bytes::from)),
            width,
        ),
    };
    match bytes {
        Ok(Some(bytes)) => {
            let cache = if width.is_none() { IMMUTABLE } else { SHORT };
            (
                [
                    (header::CONTENT_TYPE, OCTETS),
                    (header::CACHE_CONTROL, cache),
                ],
                bytes,
            )
                .into_response()
        }
        Ok(None) => (
            StatusCode::NOT_FOUND,
            "no such tile in the published tree\n",
        )
            .into_response(),
        Err(e) => internal(&e),
    }
}

/// A full entry bundle: from memory if served recently, else assembled by the log (and kept).
async fn full_bundle(state: &AppState, index: u64) -> Result<Option<Bytes>, LogError> {
    if let Some(bundle) = state.bundles.get(index) {
        return Ok(Some(bundle));
    }
    let Some(bundle) = state.log.entry_bundle(index, None).await? else {
        return Ok(None);
    };
    let bundle = Bytes::from(bundle);
    state.bundles.put(index, bundle.clone());
    Ok(Some(bundle))
}

/// Full entry bundles (256 entries, ~120 KiB at 500-byte entries), which never change once
/// the tree has them (C2SP tlog-tiles): assembling one reads 256 rows, so a bundle that is
/// fetched again is served from memory. Two generations of at most `budget / 2` bytes each:
/// when the current one is full it becomes the previous one and the old previous is dropped;
/// a hit in the previous generation moves the bundle to the current one.
pub(crate) struct BundleCache {
    half: usize,
    state: std::sync::Mutex<BundleGenerations>,
}

#[derive(Default)]
struct BundleGenerations {
    current: std::collections::HashMap<u64, Bytes>,
    current_bytes: usize,
    previous: std::collections::HashMap<u64, Bytes>,
}

impl BundleCache {
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            half: budget / 2,
            state: Default::default(),
        }
    }

    pub(crate) fn get(&self, index: u64) -> Option<Bytes> {
        let mut state = self.state.lock().ok()?;
        if let Some(bundle) = state.current.get(&index) {
            return Some(bundle.clone());
        }
        let bundle = state.previous.remove(&index)?;
        state.insert(self.half, index, bundle.clone());
        Some(bundle)
    }

    pub(crate) fn put(&self, index: u64, bundle: Bytes) {
        if let Ok(mut state) = self.state.lock() {
            state.insert(self.half, index, bundle);
        }
    }
}

impl BundleGenerations {
    fn insert(&mut self, half: usize, index: u64, bundle: Bytes) {
        if bundle.len() > half {
            return;
        }
        if self.current_bytes + bundle.len() > half {
            self.previous = std::mem::take(&mut self.current);
            self.current_bytes = 0;
        }
        self.current_bytes += bundle.len();
        if let Some(old) = self.current.insert(index, bundle) {
            self.current_bytes -= old.len();
        }
    }
}

pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

pub(crate) async fn trusted_root(State(state): State<Arc<AppState>>) -> Response {
    let root = state.identity.trusted_root(&state.base_url);
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        root.to_json(),
    )
        .into_response()
}

pub(crate) use crate::response::internal;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bundle_cache_keeps_two_generations_within_its_budget() {
        let cache = BundleCache::new(4 * 100);
        let bundle = |i: u8| Bytes::from(vec![i; 100]);
        for i in 0..2 {
            cache.put(u64::from(i), bundle(i));
        }
        assert_eq!(cache.get(1).unwrap(), bundle(1));
        cache.put(2, bundle(2)); // current full: {0, 1} become the previous generation
        assert_eq!(cache.get(0).unwrap(), bundle(0)); // moved back to current
        cache.put(3, bundle(3)); // current {2, 0} full: rotates again
        assert!(cache.get(1).is_none()); // dropped with the old previous generation
        assert_eq!(cache.get(2).unwrap(), bundle(2));
        assert_eq!(cache.get(3).unwrap(), bundle(3));
        cache.put(9, Bytes::from(vec![0; 201])); // larger than a generation: not kept
        assert!(cache.get(9).is_none());
    }
}
