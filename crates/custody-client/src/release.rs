//! The release API client (`custody push`, `approve`, `promote`, `rollback`, `revoke`,
//! `status`, `history`, `audit`, `key rotate`): one method per endpoint, each answering the
//! server's status and body as an [`Answer`]; [`Answer::check`] turns a refusal into a typed
//! [`ReleaseError`] carrying the status and the server's message. The CLI keeps argument
//! handling and output.

use std::time::Duration;

use custody_core::digest::Sha256Digest;
use serde_json::Value as Json;

/// Largest answer read (an artifact download through `GET /api/v1/artifacts/...`).
const MAX_ANSWER_BYTES: u64 = 1 << 30;

/// Why a release API call did not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReleaseError {
    /// The server could not be reached (operational).
    #[error(
        "cannot reach the custody server at {url}: {source} (check --server and that custody serve is running)"
    )]
    Transport {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("reading the answer from {url}: {source}")]
    Read {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    /// The server refused on the merits (403, 409): a denial, not an outage.
    #[error("{what} refused: {message}")]
    Refused {
        what: String,
        status: u16,
        message: String,
        /// The server's human explanation (a policy verdict), when it sent one.
        explanation: Option<String>,
    },
    /// Any other non-2xx answer (operational).
    #[error("{what} failed: HTTP {status}: {message}")]
    Failed {
        what: String,
        status: u16,
        message: String,
    },
}

/// An answer: status and body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON (`null` when it is not JSON).
    pub fn json(&self) -> Json {
        serde_json::from_slice(&self.body).unwrap_or(Json::Null)
    }

    /// The server's `message`, or the body as text.
    pub fn message(&self) -> String {
        match self.json().get("message").and_then(Json::as_str) {
            Some(m) => m.to_owned(),
            None => String::from_utf8_lossy(&self.body).trim().to_owned(),
        }
    }

    /// Ok for 2xx; [`ReleaseError::Refused`] for 403 and 409; [`ReleaseError::Failed`]
    /// otherwise. `what` names the act for the message ("promotion of sha256:... to prod").
    pub fn check(self, what: &str) -> Result<Answer, ReleaseError> {
        match self.status {
            200..=299 => Ok(self),
            403 | 409 => Err(ReleaseError::Refused {
                what: what.to_owned(),
                status: self.status,
                message: self.message(),
                explanation: self
                    .json()
                    .get("explanation")
                    .and_then(Json::as_str)
                    .map(str::to_owned),
            }),
            status => Err(ReleaseError::Failed {
                what: what.to_owned(),
                status,
                message: self.message(),
            }),
        }
    }
}

/// A client of one release server.
#[derive(Clone)]
pub struct ReleaseClient {
    base_url: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl ReleaseClient {
    /// A client of the server at `base_url`, sending `token` as a bearer token if given.
    pub fn new(base_url: &str, token: Option<String>) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            token,
            agent,
        }
    }

    /// The server's URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The bearer token, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// `PUT /api/v1/artifacts/<digest>?name=<name>`: uploads an artifact's bytes.
    pub fn push_artifact(
        &self,
        digest: &Sha256Digest,
        name: &str,
        bytes: &[u8],
    ) -> Result<Answer, ReleaseError> {
        let path = format!("/api/v1/artifacts/{digest}?name={}", query_escape(name));
        self.send("PUT", &path, "application/octet-stream", bytes)
    }

    /// `POST /api/v1/evidence`: stores a bundle.
    pub fn store_evidence(&self, bundle: &[u8]) -> Result<Answer, ReleaseError> {
        self.send_json("/api/v1/evidence", bundle)
    }

    /// `POST /api/v1/approvals`: a signed approval bundle.
    pub fn approve(&self, bundle: &[u8]) -> Result<Answer, ReleaseError> {
        self.send_json("/api/v1/approvals", bundle)
    }

    /// `POST /api/v1/promotions`.
    pub fn promote(&self, request: &Json) -> Result<Answer, ReleaseError> {
        self.send_json("/api/v1/promotions", request.to_string().as_bytes())
    }

    /// `POST /api/v1/rollbacks`.
    pub fn rollback(&self, request: &Json) -> Result<Answer, ReleaseError> {
        self.send_json("/api/v1/rollbacks", request.to_string().as_bytes())
    }

    /// `POST /api/v1/revocations`: a signed revocation bundle.
    pub fn revoke(&self, bundle: &[u8]) -> Result<Answer, ReleaseError> {
        self.send_json("/api/v1/revocations", bundle)
    }

    /// `POST /api/v1/keys/rotations`: a key-rotation bundle signed by the old key.
    pub fn rotate_key(&self, bundle: &[u8]) -> Result<Answer, ReleaseError> {
        self.send_json("/api/v1/keys/rotations", bundle)
    }

    /// `GET /api/v1/environments`.
    pub fn environments(&self) -> Result<Answer, ReleaseError> {
        self.get("/api/v1/environments")
    }

    /// `GET /api/v1/environments/<name>`.
    pub fn environment(&self, name: &str) -> Result<Answer, ReleaseError> {
        self.get(&format!("/api/v1/environments/{name}"))
    }

    /// `GET /api/v1/incidents`.
    pub fn incidents(&self) -> Result<Answer, ReleaseError> {
        self.get("/api/v1/incidents")
    }

    /// `GET /api/v1/history/<digest>`.
    pub fn history(&self, digest: &Sha256Digest) -> Result<Answer, ReleaseError> {
        self.get(&format!("/api/v1/history/{digest}"))
    }

    /// `GET /api/v1/artifacts/<digest>`: the bytes.
    pub fn artifact(&self, digest: &Sha256Digest) -> Result<Answer, ReleaseError> {
        self.get(&format!("/api/v1/artifacts/{digest}"))
    }

    fn get(&self, path: &str) -> Result<Answer, ReleaseError> {
        let url = format!("{}{path}", self.base_url);
        let mut request = self.agent.get(&url);
        if let Some(t) = &self.token {
            request = request.header("authorization", &format!("Bearer {t}"));
        }
        finish(&url, request.call())
    }

    fn send_json(&self, path: &str, body: &[u8]) -> Result<Answer, ReleaseError> {
        self.send("POST", path, "application/json", body)
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<Answer, ReleaseError> {
        let url = format!("{}{path}", self.base_url);
        let mut request = match method {
            "PUT" => self.agent.put(&url),
            _ => self.agent.post(&url),
        };
        request = request.header("content-type", content_type);
        if let Some(t) = &self.token {
            request = request.header("authorization", &format!("Bearer {t}"));
        }
        finish(&url, request.send(body))
    }
}

fn finish(
    url: &str,
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<Answer, ReleaseError> {
    let mut response = result.map_err(|source| ReleaseError::Transport {
        url: url.to_owned(),
        source: Box::new(source),
    })?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_vec()
        .map_err(|source| ReleaseError::Read {
            url: url.to_owned(),
            source: Box::new(source),
        })?;
    Ok(Answer { status, body })
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
fn query_escape(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn refusals_carry_status_message_and_explanation() {
        let refused = answer(409, r#"{"message":"not current","explanation":"why\n"}"#)
            .check("promotion")
            .unwrap_err();
        match refused {
            ReleaseError::Refused {
                status,
                message,
                explanation,
                ..
            } => {
                assert_eq!(status, 409);
                assert_eq!(message, "not current");
                assert_eq!(explanation.as_deref(), Some("why\n"));
            }
            other => panic!("not a refusal: {other}"),
        }
        let failed = answer(500, "boom").check("status").unwrap_err();
        assert!(matches!(failed, ReleaseError::Failed { status: 500, .. }));
        assert_eq!(failed.to_string(), "status failed: HTTP 500: boom");
        assert!(answer(201, "{}").check("push").is_ok());
    }

    #[test]
    fn names_are_escaped_in_the_query() {
        assert_eq!(query_escape("app v1.tar&x"), "app%20v1.tar%26x");
    }
}
