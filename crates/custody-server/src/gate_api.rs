//! The evidence store and policy gate over HTTP:
//!
//! * `POST /api/v1/evidence` (write token): store a Sigstore bundle under the digests it claims.
//! * `GET /api/v1/evidence/sha256:<hex>`: the bundles stored for a digest.
//! * `POST /api/v1/gate/evaluate` (a token): a verdict (and a signed VSA when allowed and
//!   configured).
//! * `POST /api/v1/gate/cache/invalidate` (write token): the revocation hook.
//! * `POST /api/v1/admission`: the Kubernetes validating admission webhook.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{SecondsFormat, Utc};
use custody_core::digest::Sha256Digest;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::admission;
use crate::gate::{Decided, GateService, Subject};
use crate::server::AppState;
use crate::write_api::error;
use custody_evidence::{self as store, EvidenceStore};

/// Largest AdmissionReview read (the API server's own request limit is 3 MiB).
const MAX_REVIEW_BYTES: usize = 3 << 20;
/// Largest evaluate or invalidate request.
const MAX_SMALL_REQUEST_BYTES: usize = 64 << 10;

pub(crate) use crate::response::unauthorized;

fn no_policy() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "this server has no policy gate: start custody serve with --policy DIR",
    )
}

fn no_store() -> Response {
    error(StatusCode::NOT_FOUND, "this server keeps no evidence store")
}

async fn read_body(body: Body, limit: usize, option: &str) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        if let Some(message) = crate::listener::body_timeout_message(&e) {
            return error(StatusCode::REQUEST_TIMEOUT, &message);
        }
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the request body exceeds the limit of {limit} bytes{option}"),
        )
    })
}

fn json_response(status: StatusCode, value: &Json) -> Response {
    json_text_response(status, value.to_string())
}

/// A body that is JSON already.
fn json_text_response(status: StatusCode, json: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], json).into_response()
}

/// `sha256:HEX` (the `sha256:` prefix required).
fn parse_digest(text: &str) -> Result<Sha256Digest, Box<Response>> {
    text.strip_prefix("sha256:")
        .and_then(|hex| Sha256Digest::from_hex(hex).ok())
        .ok_or_else(|| {
            Box::new(error(
                StatusCode::BAD_REQUEST,
                &format!("{text:?} is not a digest: expected sha256:<64 hex digits>"),
            ))
        })
}

pub(crate) async fn post_evidence(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // The body is read (bounded) before the token is checked, so that a refused request
    // leaves the connection reusable: clients keep TLS connections alive.
    let bytes = match read_body(
        body,
        state.max_request_bytes,
        " (server option --max-request-bytes)",
    )
    .await
    {
        Ok(b) => b,
        Err(r) => return r,
    };
    // The log's write token, or (on a release server) a principal with the builder role.
    let caller = match state.auth.check(&headers) {
        Ok(()) => None,
        Err(e) if state.release.is_none() => return unauthorized(&e.to_string()),
        Err(_) => match crate::auth::caller(&state, &headers) {
            Ok(caller) => {
                match caller.require(custody_release::model::Role::Builder, "storing evidence") {
                    Ok(()) => Some(caller),
                    Err(e) => return crate::response::release_error(e),
                }
            }
            Err(r) => return *r,
        },
    };
    let Some(store) = state.store.clone() else {
        return no_store();
    };
    let subjects = match store::claimed_digests(&bytes) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("evidence refused: {e}")),
    };
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let put = {
        let subjects = subjects.clone();
        tokio::task::spawn_blocking(move || store.put(&bytes, &subjects, &now)).await
    };
    let stored = match put {
        Ok(Ok(stored)) => stored,
        Ok(Err(e)) => return crate::read_api::internal(&e),
        Err(e) => return crate::read_api::internal(&e),
    };
    if stored.new
        && let Some(release) = &state.release
    {
        // It may be an approval: the release states admission keeps count them anew.
        release.forget_release_states();
    }
    if stored.new
        && let Some(invalidator) = &state.invalidator
    {
        for d in &stored.subjects {
            if let Err(e) = invalidator.publish(store::Change::Evidence(*d)).await {
                // Stored, and this replica's cache is clean; the others keep their cached
                // decisions until their TTL or the next change.
                tracing::warn!(error = %e, digest = %d, "cannot tell the other replicas about new evidence");
            }
        }
    }
    tracing::info!(bundle = %stored.bundle_digest, subjects = stored.subjects.len(), new = stored.new, "evidence stored");
    if let (Some(release), true) = (&state.release, stored.new) {
        let who = caller.map_or_else(|| "admin".to_owned(), |c| c.name);
        let subjects: Vec<String> = stored.subjects.iter().map(ToString::to_string).collect();
        if let Err(e) = release
            .evidence_stored(&who, &stored.bundle_digest.to_string(), &subjects)
            .await
        {
            tracing::warn!(error = %e, "cannot record who stored the evidence");
        }
    }
    let status = if stored.new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    json_response(
        status,
        &json!({
            "bundle_digest": stored.bundle_digest.to_string(),
            "subjects": stored.subjects.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "duplicate": !stored.new,
        }),
    )
}

pub(crate) async fn get_evidence(
    State(state): State<Arc<AppState>>,
    Path(digest): Path<String>,
) -> Response {
    let Some(store) = state.store.clone() else {
        return no_store();
    };
    let digest = match parse_digest(&digest) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    match tokio::task::spawn_blocking(move || list(store.as_ref(), &digest)).await {
        Ok(Ok(text)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            text,
        )
            .into_response(),
        Ok(Err(e)) => crate::read_api::internal(&e),
        Err(e) => crate::read_api::internal(&e),
    }
}

#[derive(serde::Serialize)]
struct Listed {
    bundle_digest: String,
    /// The stored bytes exactly, so that their SHA-256 is `bundle_digest`.
    bundle: Box<serde_json::value::RawValue>,
}

/// The JSON array of the bundles stored for `digest`.
fn list(store: &dyn EvidenceStore, digest: &Sha256Digest) -> Result<String, store::StoreError> {
    let listed: Vec<Listed> = store
        .for_artifact(digest)?
        .into_iter()
        .filter_map(|b| {
            let text = String::from_utf8(b.bytes).ok()?;
            let bundle = serde_json::value::RawValue::from_string(text).ok()?;
            Some(Listed {
                bundle_digest: b.bundle_digest,
                bundle,
            })
        })
        .collect();
    Ok(serde_json::to_string(&listed).unwrap_or_else(|_| "[]".into()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EvaluateRequest {
    artifact: String,
    name: Option<String>,
    environment: Option<String>,
    stage: Option<String>,
}

pub(crate) async fn evaluate(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(gate) = state.gate.clone() else {
        return no_policy();
    };
    let bytes = match read_body(body, MAX_SMALL_REQUEST_BYTES, "").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    // A decision costs CPU (bundle verification, a policy evaluation of up to
    // --policy-timeout): only callers with a token, the log's write token or (on a release
    // server) any principal's. The admission webhook stays open: the API server calls it.
    if state.auth.check(&headers).is_err()
        && let Err(r) = crate::auth::caller(&state, &headers)
    {
        return *r;
    }
    let request: EvaluateRequest = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "not an evaluate request ({e}): expected {{\"artifact\":\"sha256:<hex>\",\"name\"?,\"environment\"?,\"stage\"?}}"
                ),
            );
        }
    };
    let digest = match parse_digest(&request.artifact) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    let environment = gate.environment(request.environment, request.stage);
    let subject = Subject {
        digest: Some(digest),
        name: request.name,
        image: None,
    };
    let (decided, cached) = match gate.decide(subject, environment, false, "evaluate").await {
        Ok(d) => d,
        Err(e) => return crate::read_api::internal(&e),
    };
    let mut body = serde_json::to_value(&decided.verdict).unwrap_or(Json::Null);
    body["cached"] = json!(cached);
    // A VSA is signed and written to the log: only for callers holding the write token, so
    // a principal who may only read verdicts cannot fill the log.
    if decided.verdict.allowed && gate.signs_vsas() {
        match state.auth.check(&headers) {
            Ok(()) => {
                if let Some(vsa) = gate.vsa(&decided) {
                    body["vsa"] = vsa;
                }
            }
            Err(_) => {
                body["vsa_note"] =
                    json!("send the write token (Authorization: Bearer) to receive a signed VSA");
            }
        }
    }
    json_response(StatusCode::OK, &body)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InvalidateRequest {
    digest: Option<String>,
}

pub(crate) async fn invalidate(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match read_body(body, MAX_SMALL_REQUEST_BYTES, "").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(e) = state.auth.check(&headers) {
        return unauthorized(&e.to_string());
    }
    let (Some(_), Some(invalidator)) = (&state.gate, &state.invalidator) else {
        return no_policy();
    };
    let request: InvalidateRequest = if bytes.iter().all(u8::is_ascii_whitespace) {
        InvalidateRequest { digest: None }
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(r) => r,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "not an invalidate request ({e}): expected {{\"digest\"?: \"sha256:<hex>\"}}"
                    ),
                );
            }
        }
    };
    let digest = match request.digest.as_deref().map(parse_digest).transpose() {
        Ok(d) => d,
        Err(r) => return *r,
    };
    let change = match digest {
        Some(d) => store::Change::Decisions(d),
        None => store::Change::All,
    };
    // This replica's cache is dropped at once; the others are told through the store.
    let dropped = match invalidator.publish(change).await {
        Ok(n) => n,
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!(
                    "this replica's gate cache was invalidated, but the other replicas could not be told ({e}); retry"
                ),
            );
        }
    };
    tracing::info!(digest = ?digest.map(|d| d.to_string()), dropped, "gate cache invalidated on every replica");
    json_response(StatusCode::OK, &json!({ "dropped": dropped }))
}

pub(crate) async fn admission(State(state): State<Arc<AppState>>, body: Body) -> Response {
    let Some(gate) = state.gate.clone() else {
        return no_policy();
    };
    let bytes = match read_body(body, MAX_REVIEW_BYTES, "").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let review = match admission::parse(&bytes) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    json_text_response(StatusCode::OK, review_answer(&gate, &review).await)
}

/// Decides every image of the review; any deny (or failure to decide) denies. Cached
/// decisions are answered at once; the others are decided in parallel (each on the blocking
/// pool), polled together by this task rather than spawned one task per image.
async fn review_answer(gate: &Arc<GateService>, review: &admission::Review) -> String {
    if matches!(review.operation.as_str(), "DELETE" | "CONNECT") || review.images.is_empty() {
        return admission::response(&review.uid, None, &[]);
    }
    // A namespace mapped to an environment follows its releases (and is decided for it, not
    // for --gate-env); any other keeps the configured environment.
    let (environment, releases) = match gate.namespace_environment(&review.namespace) {
        Some(env) => (Some(env), true),
        None => (gate.environment(None, None), false),
    };
    let mut decided: Vec<Option<Arc<Decided>>> = Vec::with_capacity(review.images.len());
    let mut misses = Vec::new();
    for (i, image) in review.images.iter().enumerate() {
        let subject = Subject {
            digest: admission::image_digest(image),
            name: None,
            image: Some(image.clone()),
        };
        match gate.cached(&subject, environment.as_ref(), releases, "admission") {
            Some(hit) => decided.push(Some(hit)),
            None => {
                decided.push(None);
                misses.push((i, subject));
            }
        }
    }
    let results = join_all(
        misses
            .into_iter()
            .map(|(i, subject)| {
                let environment = environment.clone();
                async move {
                    let decided = gate.decide(subject, environment, releases, "admission");
                    (i, decided.await)
                }
            })
            .collect(),
    )
    .await;
    let mut failures = Vec::new();
    for (i, result) in results {
        match result {
            Ok((d, _)) => decided[i] = Some(d),
            Err(e) => failures.push(format!("image {}: cannot decide: {e}", review.images[i])),
        }
    }
    let verdicts: Vec<Arc<Decided>> = decided.into_iter().flatten().collect();
    if !failures.is_empty() {
        tracing::error!(object = %review.object, failures = ?failures, "admission failed closed");
        let message = format!(
            "custody: {} of {} images could not be decided (denied): {}",
            failures.len(),
            review.images.len(),
            failures.join("; ")
        );
        return admission::response(&review.uid, Some(&message), &[]);
    }
    let denied: Vec<&custody_policy::Verdict> = verdicts
        .iter()
        .map(|d| &d.verdict)
        .filter(|v| !v.allowed)
        .collect();
    if denied.is_empty() {
        let warnings: Vec<String> = verdicts
            .iter()
            .flat_map(|d| admission::warnings(&d.verdict))
            .collect();
        admission::response(&review.uid, None, &warnings)
    } else {
        let message = admission::denial_message(review.images.len(), &denied);
        admission::response(&review.uid, Some(&message), &[])
    }
}

/// Polls every future in this task until all are ready; outputs in input order.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(v) => *output = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
