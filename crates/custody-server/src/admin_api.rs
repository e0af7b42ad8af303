//! Administration over HTTP (see `docs/http-api.md`):
//!
//! * `POST /api/v1/admin/reload` (admin): reload the configuration from the files; 200 with
//!   what changed, 422 with the line to fix when the new configuration is refused (the old
//!   one stays in force), 404 when this server has nothing to reload.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use custody_release::model::Role;

use crate::auth::caller;
use crate::response::{error, json, release_error};
use crate::server::AppState;

pub(crate) async fn post_reload(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Response {
    let caller = match caller(&state, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    if let Err(e) = caller.require(Role::Admin, "reloading the configuration") {
        return release_error(e);
    }
    let Some(reloader) = &state.reload else {
        return error(
            StatusCode::NOT_FOUND,
            "this server has no policy or release configuration to reload (start it with --policy or --release-config)",
        );
    };
    match reloader
        .reload(&format!("POST /api/v1/admin/reload by {}", caller.name))
        .await
    {
        Ok(report) => json(
            StatusCode::OK,
            &serde_json::json!({ "reloaded": true, "changes": report }),
        ),
        Err(refused) => error(StatusCode::UNPROCESSABLE_ENTITY, &refused.to_string()),
    }
}
