//! The release store: one trait, an embedded SQLite backend and a PostgreSQL backend.
//!
//! Blocking by design (calls are few and small; the server runs them on its blocking pool),
//! and object safe, so the server holds an `Arc<dyn ReleaseStore>`.
//!
//! Contract, which `tests/contract.rs` checks on both backends:
//! * [`put_artifact`](ReleaseStore::put_artifact) never changes a stored record: a second put
//!   of the same digest returns `false` and keeps the first.
//! * [`append_release`](ReleaseStore::append_release) is a compare-and-swap on the
//!   environment's latest `seq`: it stores `release` only if the latest stored seq is
//!   `release.seq - 1` (0 for none) and fails with [`StoreError::Conflict`], changing nothing,
//!   otherwise, even with several processes on one database. Two releases with the same
//!   non-empty `request_id` are never stored: the second fails with
//!   [`StoreError::Duplicate`] and [`release_by_request`](ReleaseStore::release_by_request)
//!   finds the first.
//! * Ids (revocations, incidents, events) are assigned by the store, increasing, never reused.
//! * Every write is atomic and durable when it returns.

use crate::model::{
    ArtifactRecord, Deployment, Event, Incident, Quarantine, Release, Revocation,
};

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The compare-and-swap lost: someone else changed the environment first.
    #[error(
        "environment {environment}: release {expected} was not the next one (another promotion or rollback happened first); retry"
    )]
    Conflict { environment: String, expected: u64 },
    /// The idempotency key was already used.
    #[error("request id {0} was already used")]
    Duplicate(String),
    /// The record asked to change does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// Anything else from the database.
    #[error("release store: {0}")]
    Backend(String),
}

/// The release store.
pub trait ReleaseStore: Send + Sync + std::fmt::Debug {
    /// Creates the schema if needed. Safe to call from several processes at once.
    fn initialize(&self) -> Result<(), StoreError>;

    /// Stores an artifact record; `false` (and nothing changes) when the digest is stored.
    fn put_artifact(&self, record: &ArtifactRecord) -> Result<bool, StoreError>;
    fn artifact(&self, digest: &str) -> Result<Option<ArtifactRecord>, StoreError>;

    /// Appends `release` to its environment's history if its seq is the next one.
    fn append_release(&self, release: &Release) -> Result<(), StoreError>;
    /// The latest release of `environment`.
    fn current_release(&self, environment: &str) -> Result<Option<Release>, StoreError>;
    /// The whole history of `environment`, oldest first.
    fn releases(&self, environment: &str) -> Result<Vec<Release>, StoreError>;
    /// Every release of `digest` in any environment, oldest first.
    fn releases_of(&self, digest: &str) -> Result<Vec<Release>, StoreError>;
    /// The release made for `request_id`, if any.
    fn release_by_request(&self, request_id: &str) -> Result<Option<Release>, StoreError>;

    /// Stores a revocation and returns it with its id assigned.
    fn add_revocation(&self, revocation: &Revocation) -> Result<Revocation, StoreError>;
    /// Every revocation, oldest first.
    fn revocations(&self) -> Result<Vec<Revocation>, StoreError>;

    /// Quarantines a digest; `false` when it already was (the first record is kept).
    fn quarantine(&self, record: &Quarantine) -> Result<bool, StoreError>;
    fn quarantined(&self, digest: &str) -> Result<Option<Quarantine>, StoreError>;
    /// Every quarantined digest, oldest first.
    fn quarantine_list(&self) -> Result<Vec<Quarantine>, StoreError>;

    /// Stores a new incident (its `id` is ignored) and returns it with its id.
    fn open_incident(&self, incident: &Incident) -> Result<Incident, StoreError>;
    /// Replaces the stored incident with the same id.
    fn update_incident(&self, incident: &Incident) -> Result<(), StoreError>;
    /// Every incident, oldest first.
    fn incidents(&self) -> Result<Vec<Incident>, StoreError>;

    fn record_deployment(&self, deployment: &Deployment) -> Result<(), StoreError>;
    /// Deployment reports for `environment`, oldest first.
    fn deployments(&self, environment: &str) -> Result<Vec<Deployment>, StoreError>;

    /// Records a state change (its `id` is ignored) and returns its id.
    fn record_event(&self, event: &Event) -> Result<u64, StoreError>;
    /// Events about `object` (exact match), or every event when `None`, oldest first.
    fn events(&self, object: Option<&str>) -> Result<Vec<Event>, StoreError>;
}
