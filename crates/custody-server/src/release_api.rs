//! Releases over HTTP (see `docs/http-api.md`). Every route names the role it needs; the
//! log's write token is no principal here (it writes log entries, nothing else).
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

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use custody_core::digest::Sha256Digest;
use custody_release::model::{Deployment, Role};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::auth::WriteAuth;
use crate::gate_api::unauthorized;
use crate::release::{ApiError, Caller, PromoteRequest, ReleaseService, RollbackRequest};
use crate::server::AppState;
use crate::write_api::error;

/// Largest JSON request (approvals, revocations, promotions).
const MAX_JSON_BYTES: usize = 1 << 20;

fn api_error(e: ApiError) -> Response {
    if e.status == StatusCode::INTERNAL_SERVER_ERROR {
        return crate::read_api::internal(&e.message);
    }
    let mut body = json!({ "code": e.status.as_u16(), "message": e.message });
    if let Some(verdict) = e.verdict {
        body["verdict"] = serde_json::to_value(&*verdict).unwrap_or(Json::Null);
        body["explanation"] = json!(verdict.human());
    }
    if e.retry {
        body["retry"] = json!(true);
    }
    (
        e.status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The answer to a service call: `status` and the JSON value, or the error.
fn respond(status: StatusCode, result: Result<impl serde::Serialize, ApiError>) -> Response {
    match result {
        Ok(v) => ok_json(status, &v),
        Err(e) => api_error(e),
    }
}

fn ok_json(status: StatusCode, value: &impl serde::Serialize) -> Response {
    match serde_json::to_string(value) {
        Ok(text) => (status, [(header::CONTENT_TYPE, "application/json")], text).into_response(),
        Err(e) => crate::read_api::internal(&e),
    }
}

fn service(state: &AppState) -> Result<&Arc<ReleaseService>, Box<Response>> {
    state.release.as_ref().ok_or_else(|| {
        Box::new(error(
            StatusCode::NOT_FOUND,
            "this server manages no releases: start custody serve with --release-config FILE",
        ))
    })
}

/// The bearer token's SHA-256, if the request has one.
fn bearer_sha256(headers: &HeaderMap) -> Option<[u8; 32]> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| *Sha256Digest::of(token.trim().as_bytes()).as_bytes())
}

/// Who is calling: a principal's token or, on a server told to allow unauthenticated writes,
/// an anonymous admin. The log's write token is no principal: CI holds it to write log
/// entries, and it does nothing on the release API (403).
pub(crate) fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, Box<Response>> {
    if let Some(hash) = bearer_sha256(headers) {
        if let Some(service) = &state.release
            && let Some(caller) = service.caller_for_token(&hash)
        {
            return Ok(caller);
        }
        if matches!(state.auth, WriteAuth::Bearer { .. }) && state.auth.check(headers).is_ok() {
            return Err(Box::new(error(
                StatusCode::FORBIDDEN,
                "the bearer token is the log's write token, which only writes log entries: release API calls need the token of a [[principal]] with the role the call names (admin rights come only from a principal with role admin)",
            )));
        }
        return Err(Box::new(unauthorized(
            "the bearer token belongs to no principal (check the token, or the [[principal]] entries of the release config)",
        )));
    }
    if matches!(state.auth, WriteAuth::DangerouslyUnauthenticated) {
        return Ok(Caller {
            name: "anonymous".into(),
            roles: BTreeSet::from([Role::Admin]),
            environments: BTreeSet::new(),
        });
    }
    Err(Box::new(unauthorized(
        "this call needs `Authorization: Bearer <token>`",
    )))
}

/// Whether a request may write log entries: the write token, or the token of a principal
/// whose roles include writing (builder or admin). Approvers, release managers, deployers and
/// auditors write nothing to the log themselves: the server logs their records.
pub(crate) fn may_write_log(state: &AppState, headers: &HeaderMap) -> bool {
    state.auth.check(headers).is_ok()
        || bearer_sha256(headers).is_some_and(|h| {
            state.release.as_ref().is_some_and(|s| {
                s.caller_for_token(&h).is_some_and(|c| {
                    c.roles.contains(&Role::Builder) || c.roles.contains(&Role::Admin)
                })
            })
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
    match service.push(&caller, bytes, &digest, query.name).await {
        Ok((status, record)) => ok_json(status, &record),
        Err(e) => api_error(e),
    }
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
        Err(e) => api_error(e),
    }
}

pub(crate) async fn post_approval(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (service, caller) = ctx!(state, headers);
    let bytes = body!(body);
    respond(StatusCode::CREATED, service.approve(&caller, &bytes).await)
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
    match service.promote(&caller, req).await {
        Ok((status, release)) => ok_json(status, &release),
        Err(e) => api_error(e),
    }
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
    match service.rollback(&caller, req).await {
        Ok((status, release)) => ok_json(status, &release),
        Err(e) => api_error(e),
    }
}

pub(crate) async fn post_revocation(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (service, caller) = ctx!(state, headers);
    let bytes = body!(body);
    respond(StatusCode::CREATED, service.revoke(&caller, &bytes).await)
}

pub(crate) async fn post_reconcile(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Response {
    let (service, caller) = ctx!(state, headers);
    if let Err(e) = caller.require(Role::Admin, "reconciling") {
        return api_error(e);
    }
    respond(StatusCode::OK, service.reconcile().await)
}

pub(crate) async fn post_rotation(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (service, caller) = ctx!(state, headers);
    let bytes = body!(body);
    respond(StatusCode::CREATED, service.rotate(&caller, &bytes).await)
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
    match service.deployed(&caller, report).await {
        Ok(()) => ok_json(StatusCode::CREATED, &json!({"recorded": true})),
        Err(e) => api_error(e),
    }
}

pub(crate) async fn get_environments(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Response {
    let (service, _caller) = ctx!(state, headers);
    respond(StatusCode::OK, service.environments().await)
}

pub(crate) async fn get_environment(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (service, _caller) = ctx!(state, headers);
    respond(StatusCode::OK, service.environment_current(&name).await)
}

pub(crate) async fn get_current_release(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (service, _caller) = ctx!(state, headers);
    respond(
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
    respond(StatusCode::OK, service.environment_history(&name).await)
}

pub(crate) async fn get_history(
    State(state): State<Arc<AppState>>,
    Path(digest): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (service, caller) = ctx!(state, headers);
    if let Err(e) = caller.require(Role::Auditor, "reading history") {
        return api_error(e);
    }
    respond(StatusCode::OK, service.history(&digest).await)
}

pub(crate) async fn get_incidents(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Response {
    let (service, caller) = ctx!(state, headers);
    if let Err(e) = caller.require(Role::Auditor, "reading incidents") {
        return api_error(e);
    }
    respond(StatusCode::OK, service.incidents().await)
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
    if let Err(e) = caller.require(Role::Auditor, "reading events") {
        return api_error(e);
    }
    respond(StatusCode::OK, service.events(query.object).await)
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
