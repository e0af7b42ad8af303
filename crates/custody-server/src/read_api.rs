//! C2SP tlog-tiles read API: public, no authentication, cacheable.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
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
        } => (state.log.tile(level, index, width).await, width),
        TilePath::Entries { index, width } => (state.log.entry_bundle(index, width).await, width),
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

pub(crate) fn internal(error: &dyn std::fmt::Display) -> Response {
    tracing::error!(%error, "request failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error; see the server log\n",
    )
        .into_response()
}
