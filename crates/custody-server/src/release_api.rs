//! Releases over HTTP (see `docs/http-api.md`): each handler reads the typed request, asks
//! `custody_release::service::ReleaseService`, which enforces the roles and every release
//! rule, and answers through `response`. Who the caller is comes from `auth`; the log's
//! write token is no principal here (it writes log entries, nothing else).
//!
//! * `PUT /api/v1/artifacts/sha256:<hex>[?name=N]` (builder): store an artifact.
//! * `GET /api/v1/artifacts/sha256:<hex>` (any principal): its bytes; a quarantined or revoked
//!   artifact's to auditors only (403 otherwise).
//! * `POST /api/v1/approvals` (approver): a signed approval bundle.
//! * `POST /api/v1/promotions` (release-manager): `{"digest", "to", "request_id"}`.
//! * `POST /api/v1/rollbacks` (release-manager): `{"environment", "digest"?, "reason"}`.
//! * `POST /api/v1/revocations` (admin): a signed revocation bundle.
//! * `POST /api/v1/reconcile` (admin): re-run quarantine and rollback.
//! * `POST /api/v1/keys/rotations` (admin): a key rotation signed by the old key.
//! * `POST /api/v1/deployments` (deployer, for its environments): a deploy agent's report.
//! * `GET /api/v1/environments[/{env}[/releases]]` (any principal).
//! * `GET /api/v1/environments/{env}/current-release` (any principal): a signed, short-lived
//!   current-release statement (404 before the first release, 409 when it is revoked).
//! * `GET /api/v1/history/sha256:<hex>`, `/api/v1/incidents`, `/api/v1/events` (auditor).
//! * `GET /metrics` (no token: Prometheus scrapes it).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use custody_release::model::Deployment;
use custody_release::service::{PromoteRequest, PushRequest, ReleaseService, RollbackRequest};
use serde::Deserialize;

use crate::auth::caller;
use crate::response::{error, recorded, release, release_error};
use crate::server::AppState;

/// Largest JSON request (approvals, revocations, promotions).
const MAX_JSON_BYTES: usize = 1 << 20;

fn service(state: &AppState) -> Result<&Arc<ReleaseService>, Box<Response>> {
    state.release.as_ref().ok_or_else(|| {
        Box::new(error(
            StatusCode::NOT_FOUND,
            "this server manages no releases: start custody serve with --release-config FILE",
        ))
    })
}

async fn read_json_body(body: Body) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, MAX_JSON_BYTES)
        .await
        .map_err(|e| {
            if let Some(message) = crate::listener::body_timeout_message(&e) {
                return error(StatusCode::REQUEST_TIMEOUT, &message);
            }
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the request body exceeds {MAX_JSON_BYTES} bytes"),
            )
        })
}

fn parse<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T, Box<Response>> {
    serde_json::from_slice(bytes).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            &format!("malformed {what} request: {e}"),
        ))
    })
}

/// Reads a bounded JSON body or returns the 413 answer.
macro_rules! body {
    ($body:expr) => {
        match read_json_body($body).await {
            Ok(b) => b,
            Err(r) => return r,
        }
    };
}

macro_rules! ctx {
    ($state:expr, $headers:expr) => {{
        let service = match service(&$state) {
            Ok(s) => s.clone(),
            Err(r) => return *r,
        };
        let caller = match caller(&$state, &$headers) {
            Ok(c) => c,
            Err(r) => return *r,
        };
        (service, caller)
    }};
}

#[derive(Debug, Deserialize)]
pub(crate) struct PushQuery {
    name: Option<String>,
}

pub(crate) async fn put_artifact(
    State(state): State<Arc<AppState>>,
    Path(digest): Path<String>,
    Query(query): Query<PushQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (service, caller) = ctx!(state, headers);
    let limit = state.max_artifact_bytes;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(e) => {
            if let Some(message) = crate::listener::body_timeout_message(&e) {
                return error(StatusCode::REQUEST_TIMEOUT, &message);
            }
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "the artifact exceeds the limit of {limit} bytes (server option --max-artifact-bytes)"
                ),
            );
        }
    };
    let request = PushRequest {
        digest,
        name: query.name,
    };
    recorded(service.push(&caller, request, bytes.into()).await)
}

pub(crate) async fn get_artifact(
    State(state): State<Arc<AppState>>,
    Path(digest): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (service, caller) = ctx!(state, headers);
    match service.artifact_bytes_for(&caller, &digest).await {
        Ok(bytes) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/octet-stream")],
            bytes,
        )
            .into_response(),
        Err(e) => release_error(e),
    }
}

pub(crate) async fn post_approval(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (service, caller) = ctx!(state, headers);
    let bytes = body!(body);
    release(StatusCode::CREATED, service.approve(&caller, &bytes).await)
}

pub(crate) async fn post_promotion(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (service, caller) = ctx!(state, headers);
    let bytes = body!(body);
    let req: PromoteRequest = match parse(&bytes, "promotion") {
        Ok(r) => r,
        Err(r) => return *r,
    };
    recorded(service.promote(&caller, req).await)
}

pub(crate) async fn post_rollback(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (service, caller) = ctx!(state, headers);
    let bytes = body!(body);
    let req: RollbackRequest = match parse(&bytes, "rollback") {
        Ok(r) => r,
        Err(r) => return *r,
    };
    recorded(service.rollback(&caller, req).await)
}

pub(crate) async fn post_revocation(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (service, caller) = ctx!(state, headers);
    let bytes = body!(body);
    release(StatusCode::CREATED, service.revoke(&caller, &bytes).await)
}

pub(crate) async fn post_reconcile(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Response {
    let (service, caller) = ctx!(state, headers);
    release(StatusCode::OK, service.reconcile_for(&caller).await)
}

pub(crate) async fn post_rotation(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (service, caller) = ctx!(state, headers);
    let bytes = body!(body);
    release(StatusCode::CREATED, service.rotate(&caller, &bytes).await)
}

pub(crate) async fn post_deployment(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (service, caller) = ctx!(state, headers);
    let bytes = body!(body);
    let report: Deployment = match parse(&bytes, "deployment") {
        Ok(r) => r,
        Err(r) => return *r,
    };
    release(StatusCode::CREATED, service.deployed(&caller, report).await)
}

pub(crate) async fn get_environments(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Response {
    let (service, _caller) = ctx!(state, headers);
    release(StatusCode::OK, service.environments().await)
}

pub(crate) async fn get_environment(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (service, _caller) = ctx!(state, headers);
    release(StatusCode::OK, service.environment_current(&name).await)
}

pub(crate) async fn get_current_release(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (service, _caller) = ctx!(state, headers);
    release(
        StatusCode::OK,
        service.current_release_statement(&name).await,
    )
}

pub(crate) async fn get_environment_releases(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (service, _caller) = ctx!(state, headers);
    release(StatusCode::OK, service.environment_history(&name).await)
}

pub(crate) async fn get_history(
    State(state): State<Arc<AppState>>,
    Path(digest): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (service, caller) = ctx!(state, headers);
    release(StatusCode::OK, service.history(&caller, &digest).await)
}

pub(crate) async fn get_incidents(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Response {
    let (service, caller) = ctx!(state, headers);
    release(StatusCode::OK, service.incidents(&caller).await)
}

#[derive(Debug, Deserialize)]
pub(crate) struct EventsQuery {
    object: Option<String>,
}

pub(crate) async fn get_events(
    State(state): State<Arc<AppState>>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Response {
    let (service, caller) = ctx!(state, headers);
    release(StatusCode::OK, service.events(&caller, query.object).await)
}

pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut snap = crate::metrics::Snapshot::default();
    if let Ok(note) = state.log.checkpoint().await {
        snap.log_size = note
            .lines()
            .nth(1)
            .and_then(|l| l.parse().ok())
            .unwrap_or_default();
    }
    if let Some(service) = &state.release
        && let Ok(report) = service.snapshot().await
    {
        snap.detect_seconds = report.detect_seconds;
        snap.recover_seconds = report.recover_seconds;
        snap.incidents_open = report.incidents_open;
        snap.quarantined = report.quarantined;
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(&snap),
    )
        .into_response()
}
