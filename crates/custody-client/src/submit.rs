//! Submitting to a transparency log over HTTP (Rekor v2 write API, `POST /api/v2/log/entries`):
//! the blocking [`LogAppender`] that `custody sign --log`, `attest --log` and `build --log` hand
//! to `custody_core::sign`, which builds the request and checks the receipt.

use std::path::{Path, PathBuf};
use std::time::Duration;

use custody_core::bundle::TransparencyLogEntry;
use custody_core::rekor::request::CreateEntryRequest;
use custody_core::sign::LogAppender;

/// Largest answer read from the log.
const MAX_RESPONSE_BYTES: u64 = 4 << 20;

/// Why the log did not take the entry (operational; a refused receipt is
/// `custody_core::sign::ReceiptError`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    #[error("log token file {path}: {source} (check --log-token-file)")]
    TokenFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("log {url}: {source} (is the log running? check --log)")]
    Transport {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("log {url}: reading the answer: {source}")]
    Read {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("log {url} refused the entry: HTTP {status}: {message}{hint}", hint = if *.status == 401 { " (set CUSTODY_LOG_TOKEN or --log-token-file)" } else { "" })]
    Refused {
        url: String,
        status: u16,
        message: String,
    },
    #[error("log {url}: malformed answer: {source}")]
    Answer {
        url: String,
        #[source]
        source: custody_core::bundle::BundleError,
    },
}

/// Where to submit, and the bearer token if the log wants one.
#[derive(Debug, Clone)]
pub struct LogTarget {
    pub url: String,
    pub token: Option<String>,
}

impl LogTarget {
    /// From `--log URL` and `--log-token-file` / `CUSTODY_LOG_TOKEN`.
    pub fn new(url: String, token_file: Option<&Path>) -> Result<Self, SubmitError> {
        let token = match token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|source| SubmitError::TokenFile {
                        path: path.to_owned(),
                        source,
                    })?
                    .trim()
                    .to_owned(),
            ),
            None => std::env::var("CUSTODY_LOG_TOKEN").ok(),
        };
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// Posts `request` and reads the entry the log answers with.
    pub fn submit(
        &self,
        request: &CreateEntryRequest,
    ) -> Result<TransparencyLogEntry, SubmitError> {
        let url = format!("{}/api/v2/log/entries", self.url);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let mut call = agent.post(&url).header("Content-Type", "application/json");
        if let Some(token) = &self.token {
            call = call.header("Authorization", &format!("Bearer {token}"));
        }
        let mut response =
            call.send(request.to_json())
                .map_err(|source| SubmitError::Transport {
                    url: url.clone(),
                    source: Box::new(source),
                })?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .map_err(|source| SubmitError::Read {
                url: url.clone(),
                source: Box::new(source),
            })?;
        if !(status == 200 || status == 201) {
            return Err(SubmitError::Refused {
                url,
                status,
                message: server_message(&body),
            });
        }
        TransparencyLogEntry::from_json(&body).map_err(|source| SubmitError::Answer { url, source })
    }
}

impl LogAppender for LogTarget {
    type Error = SubmitError;

    fn append(&self, request: &CreateEntryRequest) -> Result<TransparencyLogEntry, SubmitError> {
        self.submit(request)
    }
}

/// The `message` of a JSON error answer, else the start of the body.
pub(crate) fn server_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect())
}
