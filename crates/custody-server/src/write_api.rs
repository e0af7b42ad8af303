//! `POST /api/v2/log/entries`: the Rekor v2 write API.
//!
//! Order of checks, each refusing with nothing logged: token (401), request size (413), JSON
//! and kind (400), signatures (400), entry size (413); then the entry is logged and answered
//! with 201 (new) or 200 (the same body was already logged; the existing entry is returned).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use custody_log::SubmitError;

use crate::admit_pool::PoolError;
use crate::entry::entry_json;
use crate::server::AppState;

/// Seconds a client is asked to wait when the log pushes back.
const RETRY_AFTER_SECONDS: &str = "1";

pub(crate) async fn create_entry(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = std::time::Instant::now();
    if let Err(e) = state.auth.check(&headers)
        && !crate::auth::may_write_log(&state, &headers)
    {
        let message = format!(
            "{e} (a release principal's token writes to the log only with the builder or admin role)"
        );
        let mut response = error(StatusCode::UNAUTHORIZED, &message);
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return response;
    }
    let limit = state.max_request_bytes;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(e) => {
            if let Some(message) = crate::listener::body_timeout_message(&e) {
                return error(StatusCode::REQUEST_TIMEOUT, &message);
            }
            let message = format!(
                "the request body exceeds the limit of {limit} bytes (server option --max-request-bytes)"
            );
            return error(StatusCode::PAYLOAD_TOO_LARGE, &message);
        }
    };
    // Parse and verify on the admission threads: signature checks are CPU work.
    let admitted = match state.admit.admit(bytes).await {
        Ok(Ok(admitted)) => admitted,
        Ok(Err(e)) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
        Err(e @ PoolError::Full) => return push_back(&e.to_string()),
        Err(e) => return crate::read_api::internal(&e),
    };
    let receipt = match state.log.submit(admitted.body.clone()).await {
        Ok(receipt) => receipt,
        Err(e) => return submit_error(&e),
    };
    state.metrics.logged(started.elapsed());
    let status = if receipt.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    tracing::info!(
        index = receipt.index,
        kind = admitted.kind,
        duplicate = receipt.duplicate,
        "entry logged"
    );
    let entry = entry_json(&state.log_id_base64, &admitted, &receipt);
    (status, [(header::CONTENT_TYPE, "application/json")], entry).into_response()
}

fn submit_error(e: &SubmitError) -> Response {
    match e {
        SubmitError::TooLarge { size, limit } => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "the entry body is {size} bytes, above the limit of {limit} bytes (server option --max-entry-bytes)"
            ),
        ),
        SubmitError::Overloaded => push_back(&e.to_string()),
        _ => crate::read_api::internal(e),
    }
}

/// 503 with `Retry-After`: resubmitting later is safe.
fn push_back(message: &str) -> Response {
    let mut response = error(StatusCode::SERVICE_UNAVAILABLE, message);
    response.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from_static(RETRY_AFTER_SECONDS),
    );
    response
}

pub(crate) use crate::response::error;
