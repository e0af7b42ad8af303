//! What the release service needs from outside, as interfaces: the transparency log it appends
//! its signed statements to, an observer for metrics and alerts, and a callback for the
//! decision caches. The server implements them (`custody-server/src/release.rs`); tests use
//! [`NoopObserver`] and an in-memory log.

use std::future::Future;
use std::pin::Pin;

use custody_core::digest::Sha256Digest;
use custody_policy::Verdict;
use serde_json::Value as Json;

/// A boxed future, for the async methods of the traits below (object safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Called with a digest (or `None` for every digest) whose decisions may have changed.
pub type OnChange = Box<dyn Fn(Option<&Sha256Digest>) + Send + Sync>;

/// A statement the log took: the Sigstore bundle (envelope + log entry, JSON) and its index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub bundle: String,
    pub index: u64,
}

/// The log's current checkpoint: its size and root hash (base64), as its note says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub size: u64,
    pub root: String,
}

/// Why the log did not take an entry or answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LogError {
    /// The log is there but did not accept the entry now (overloaded, shutting down): retry.
    #[error("the log did not accept the entry: {0}")]
    Unavailable(String),
    /// The entry cannot be logged at all, or the log is broken.
    #[error("{0}")]
    Failed(String),
}

/// The transparency log the release service appends to.
pub trait ReleaseLog: Send + Sync {
    /// Appends a signed statement (`custody_core::sign`: the bundle and the Rekor v2 request
    /// made from the same signature), checks the receipt, and returns the bundle with its log
    /// entry.
    fn append(&self, signed: custody_core::sign::Signed)
    -> BoxFuture<'_, Result<Logged, LogError>>;

    /// The current checkpoint.
    fn checkpoint(&self) -> BoxFuture<'_, Result<Checkpoint, LogError>>;
}

/// What the release service reports as it works: counters and alerts. The server counts them
/// in its Prometheus metrics and posts alerts to the webhook.
pub trait ReleaseObserver: Send + Sync {
    /// A statement signed by the server or accepted from a client (`kind`: release,
    /// approval, revocation, key_rotation, current-release, …).
    fn signed(&self, _kind: &str) {}
    fn promoted(&self, _environment: &str) {}
    fn promotion_refused(&self, _environment: &str) {}
    fn rolled_back(&self, _environment: &str) {}
    fn deployment(&self, _environment: &str, _status: &str) {}
    fn incident_opened(&self) {}
    fn incident_recovered(&self) {}
    /// A policy decision made for a promotion or rollback, and how long it took.
    fn decision(&self, _verdict: &Verdict, _took: std::time::Duration) {}
    /// An alert (`event` is a JSON object with `event`, `at` and `alert: true`): logged,
    /// counted, and posted to the webhook. The service waits for it.
    fn alert(&self, _event: Json) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// An observer that observes nothing (tests, tools).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopObserver;

impl ReleaseObserver for NoopObserver {}
