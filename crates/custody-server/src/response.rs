//! Every answer's shape, in one place: the `{"code", "message"}` error body (the shape
//! grpc-gateway, i.e. rekor-tiles, uses), 401 with its challenge, 500 without details, JSON
//! answers, and the one mapping from a release operation's [`ReleaseError`] to an HTTP status.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use custody_release::service::{Recorded, ReleaseError};
use custody_release::store::StoreError;
use serde_json::{Value as Json, json};

/// An error body: `{"code", "message"}`, with the HTTP status as the code.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    let body = json!({ "code": status.as_u16(), "message": message });
    (status, axum::Json(body)).into_response()
}

/// 401 with `WWW-Authenticate: Bearer`.
pub(crate) fn unauthorized(message: &str) -> Response {
    let mut response = error(StatusCode::UNAUTHORIZED, message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}

/// 500: the details go to the server log, not to the client.
pub(crate) fn internal(error: &dyn std::fmt::Display) -> Response {
    tracing::error!(%error, "request failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error; see the server log\n",
    )
        .into_response()
}

/// `value` as a JSON answer with `status`.
pub(crate) fn json(status: StatusCode, value: &impl serde::Serialize) -> Response {
    match serde_json::to_string(value) {
        Ok(text) => (status, [(header::CONTENT_TYPE, "application/json")], text).into_response(),
        Err(e) => internal(&e),
    }
}

/// 201 for something made now, 200 for an answer from the record (a retry, a digest
/// already current, an artifact already stored).
pub(crate) fn recorded<T: serde::Serialize>(result: Result<Recorded<T>, ReleaseError>) -> Response {
    match result {
        Ok(r) if r.created => json(StatusCode::CREATED, &r.value),
        Ok(r) => json(StatusCode::OK, &r.value),
        Err(e) => release_error(e),
    }
}

/// A release operation's answer with `status`, or its error.
pub(crate) fn release<T: serde::Serialize>(
    status: StatusCode,
    result: Result<T, ReleaseError>,
) -> Response {
    match result {
        Ok(v) => json(status, &v),
        Err(e) => release_error(e),
    }
}

/// The HTTP status of a release error.
pub(crate) fn release_status(e: &ReleaseError) -> StatusCode {
    match e {
        ReleaseError::BadRequest(_) => StatusCode::BAD_REQUEST,
        ReleaseError::Forbidden { .. } | ReleaseError::Denied { .. } => StatusCode::FORBIDDEN,
        ReleaseError::Conflict(_) => StatusCode::CONFLICT,
        ReleaseError::NotFound(_) => StatusCode::NOT_FOUND,
        ReleaseError::Store(StoreError::Conflict { .. } | StoreError::Duplicate(_)) => {
            StatusCode::CONFLICT
        }
        ReleaseError::Store(StoreError::NotFound(_)) => StatusCode::NOT_FOUND,
        ReleaseError::Store(StoreError::Backend(_)) | ReleaseError::Internal(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        ReleaseError::Log(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// A release error as an answer: `{"code", "message"}`, with the verdict and its explanation
/// for a policy denial and `"retry": true` when the same request may succeed; 500 without
/// details.
pub(crate) fn release_error(e: ReleaseError) -> Response {
    let status = release_status(&e);
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        return internal(&e);
    }
    let mut body = json!({ "code": status.as_u16(), "message": e.to_string() });
    if let Some(verdict) = e.verdict() {
        body["verdict"] = serde_json::to_value(verdict).unwrap_or(Json::Null);
        body["explanation"] = json!(verdict.human());
    }
    if e.retry() {
        body["retry"] = json!(true);
    }
    json(status, &body)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use custody_release::model::Role;

    async fn body(r: Response) -> Json {
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn every_release_error_has_its_status() {
        let cases = [
            (ReleaseError::BadRequest("b".into()), 400),
            (
                ReleaseError::Forbidden {
                    message: "f".into(),
                    missing_role: Some(Role::Admin),
                },
                403,
            ),
            (ReleaseError::Conflict("c".into()), 409),
            (ReleaseError::NotFound("n".into()), 404),
            (
                ReleaseError::Store(StoreError::Conflict {
                    environment: "prod".into(),
                    expected: 3,
                }),
                409,
            ),
            (ReleaseError::Store(StoreError::Duplicate("r".into())), 409),
            (ReleaseError::Store(StoreError::NotFound("x".into())), 404),
            (ReleaseError::Store(StoreError::Backend("db".into())), 500),
            (ReleaseError::Log("down".into()), 503),
            (ReleaseError::Internal("bug".into()), 500),
        ];
        for (e, status) in cases {
            assert_eq!(release_status(&e).as_u16(), status, "{e:?}");
        }
    }

    #[tokio::test]
    async fn a_lost_race_says_retry_and_internal_errors_say_nothing() {
        let r = release_error(ReleaseError::Store(StoreError::Conflict {
            environment: "prod".into(),
            expected: 3,
        }));
        assert_eq!(r.status(), StatusCode::CONFLICT);
        let b = body(r).await;
        assert_eq!(b["code"], 409);
        assert_eq!(b["retry"], true);
        assert!(b["message"].as_str().unwrap().contains("environment prod"));
        let r = release_error(ReleaseError::Conflict("older".into()));
        assert!(body(r).await.get("retry").is_none());
        let r = release_error(ReleaseError::Internal("secret detail".into()));
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("secret detail"));
    }
}
