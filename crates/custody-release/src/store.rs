//! The release store: one trait, an embedded SQLite backend and a PostgreSQL backend.
//!
//! Blocking by design (calls are few and small; the server runs them on its blocking pool),
//! and object safe, so the server holds an `Arc<dyn ReleaseStore>`.
//!
//! [`ReleaseDb::open`] picks the backend from a URL or path: [`postgres::PostgresReleaseStore`]
//! for `postgres://` and `postgresql://`, [`sqlite::SqliteReleaseStore`] for `sqlite://PATH` or
//! a plain path. Call [`initialize`](ReleaseStore::initialize) before anything else.
//!
//! Contract, which the conformance suite (`tests/common/contract.rs`, run by `tests/sqlite.rs`
//! and `tests/postgres.rs`) checks on both backends:
//! * [`put_artifact`](ReleaseStore::put_artifact) never changes a stored record: a second put
//!   of the same digest returns `false` and keeps the first.
//! * [`append_release`](ReleaseStore::append_release) is a compare-and-swap on the
//!   environment's latest `seq`: it stores `release` only if the latest stored seq is
//!   `release.seq - 1` (0 for none) and fails with [`StoreError::Conflict`], changing nothing,
//!   otherwise, even with several processes on one database. Two releases with the same
//!   non-empty `request_id` are never stored: the second fails with
//!   [`StoreError::Duplicate`] and [`release_by_request`](ReleaseStore::release_by_request)
//!   finds the first. [`append_release_with_event`](ReleaseStore::append_release_with_event)
//!   is the same compare-and-swap, and stores the event with the release or not at all.
//! * [`append_release_for_request`](ReleaseStore::append_release_for_request) is
//!   `append_release_with_event` that also binds the release's `request_id` to the SHA-256 of
//!   the request's canonical content, in the same transaction;
//!   [`request_binding`](ReleaseStore::request_binding) reads it back. A binding is never
//!   changed. Databases made before bindings existed get the table on `initialize`; their
//!   releases have no binding (`None`).
//! * Ids (revocations, incidents, events) are assigned by the store, increasing, never reused.
//! * Every write is atomic and durable when it returns.
//! * "Oldest first" is the order the store recorded things in (ids, or `seq` within one
//!   environment), not the order of the records' `at` times.
//! * Records read back equal the records written (times to the nanosecond, JSON fields as
//!   values).

use std::path::PathBuf;
use std::sync::Arc;

use crate::model::{ArtifactRecord, Deployment, Event, Incident, Quarantine, Release, Revocation};

mod codec;
pub mod postgres;
pub mod sqlite;

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
    /// [`append_release`](Self::append_release) and [`record_event`](Self::record_event) in
    /// one transaction: the release is stored with its event, or neither is. Returns the
    /// event's id.
    fn append_release_with_event(
        &self,
        release: &Release,
        event: &Event,
    ) -> Result<u64, StoreError>;
    /// [`append_release_with_event`](Self::append_release_with_event), and, when the release
    /// has a non-empty `request_id`, binds that id to `request_sha256` (hex SHA-256 of the
    /// request's canonical content) in the same transaction: all three are stored, or nothing.
    fn append_release_for_request(
        &self,
        release: &Release,
        event: &Event,
        request_sha256: &str,
    ) -> Result<u64, StoreError>;
    /// The request content digest `request_id` is bound to; `None` when the id was never used,
    /// or used before the store recorded bindings.
    fn request_binding(&self, request_id: &str) -> Result<Option<String>, StoreError>;
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

/// Where the release store lives, parsed from a URL or a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseDb {
    /// `postgres://…` or `postgresql://…`, kept as given (it may hold a password).
    Postgres(String),
    /// `sqlite://PATH` or a plain path.
    Sqlite(PathBuf),
}

impl ReleaseDb {
    /// Parses `url_or_path`: `postgres://` and `postgresql://` URLs name a PostgreSQL database,
    /// `sqlite://PATH` and anything without a `scheme://` prefix a SQLite file. Other schemes
    /// are an error.
    pub fn parse(url_or_path: &str) -> Result<Self, StoreError> {
        let text = url_or_path.trim();
        if text.is_empty() {
            return Err(StoreError::Backend(
                "no database given (expected postgres://…, postgresql://…, sqlite://PATH or a file path)"
                    .to_owned(),
            ));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(ReleaseDb::Postgres(text.to_owned()));
        }
        if let Some(path) = text.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(StoreError::Backend(
                    "database sqlite:// names no file (expected sqlite://PATH)".to_owned(),
                ));
            }
            return Ok(ReleaseDb::Sqlite(PathBuf::from(path)));
        }
        let scheme = text.find("://").map_or("", |end| &text[..end]);
        if !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            return Err(StoreError::Backend(format!(
                "database {}: unsupported scheme {scheme}:// (expected postgres://, postgresql://, sqlite://PATH or a file path)",
                codec::redact(text)
            )));
        }
        Ok(ReleaseDb::Sqlite(PathBuf::from(text)))
    }

    /// Parses `url_or_path` (see [`parse`](Self::parse)) and opens the store. The schema is
    /// not created: call [`initialize`](ReleaseStore::initialize) (on a blocking thread).
    pub fn open(url_or_path: &str) -> Result<Arc<dyn ReleaseStore>, StoreError> {
        Self::parse(url_or_path)?.connect()
    }

    /// Opens the store this names.
    pub fn connect(&self) -> Result<Arc<dyn ReleaseStore>, StoreError> {
        Ok(match self {
            ReleaseDb::Postgres(url) => Arc::new(postgres::PostgresReleaseStore::connect(url)?),
            ReleaseDb::Sqlite(path) => Arc::new(sqlite::SqliteReleaseStore::open(path)?),
        })
    }
}

impl std::fmt::Display for ReleaseDb {
    /// The database for messages, without a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReleaseDb::Postgres(url) => f.write_str(&codec::redact(url)),
            ReleaseDb::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parse_picks_the_backend() {
        assert_eq!(
            ReleaseDb::parse("postgres://u:p@h/db").unwrap(),
            ReleaseDb::Postgres("postgres://u:p@h/db".into())
        );
        assert_eq!(
            ReleaseDb::parse("postgresql://h/db").unwrap(),
            ReleaseDb::Postgres("postgresql://h/db".into())
        );
        assert_eq!(
            ReleaseDb::parse("sqlite:///var/lib/custody/release.db").unwrap(),
            ReleaseDb::Sqlite("/var/lib/custody/release.db".into())
        );
        assert_eq!(
            ReleaseDb::parse("sqlite://rel/release.db").unwrap(),
            ReleaseDb::Sqlite("rel/release.db".into())
        );
        assert_eq!(
            ReleaseDb::parse("/tmp/r.db").unwrap(),
            ReleaseDb::Sqlite("/tmp/r.db".into())
        );
        assert_eq!(
            ReleaseDb::parse("data/r.db").unwrap(),
            ReleaseDb::Sqlite("data/r.db".into())
        );
    }

    #[test]
    fn parse_rejects_other_schemes_without_leaking_passwords() {
        let err = ReleaseDb::parse("mysql://root:hunter2@h/db")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unsupported scheme mysql://"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        assert!(!err.contains('\n'));
        assert!(ReleaseDb::parse("").is_err());
        assert!(ReleaseDb::parse("sqlite://").is_err());
        assert_eq!(
            ReleaseDb::Postgres("postgres://u:secret@h:5432/db".into()).to_string(),
            "postgres://…@h:5432/db"
        );
    }
}
