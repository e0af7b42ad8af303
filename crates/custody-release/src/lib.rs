//! custody-release: the release domain.
//!
//! * [`service`]: the [`ReleaseService`](service::ReleaseService): push, approve, promote,
//!   rollback, revoke and reconcile (quarantine, automatic rollback, incidents), key rotation
//!   and retirement, deployment reports, queries, signed current-release statements. Typed
//!   requests and answers, one [`ReleaseError`](service::ReleaseError); the transparency log,
//!   metrics and alerts are interfaces ([`ReleaseLog`](service::ReleaseLog),
//!   [`ReleaseObserver`](service::ReleaseObserver)) the server implements. No HTTP.
//! * [`model`]: roles and principals, environments, releases (promotions and rollbacks),
//!   revocations, quarantine, incidents, deployments, and the record of who changed what.
//! * [`config`]: the `[[environment]]` and `[[principal]]` tables of the server's config file.
//! * [`store`]: the [`ReleaseStore`](store::ReleaseStore) trait with an embedded SQLite backend
//!   and a PostgreSQL backend, held to one conformance suite.
//! * [`rules`]: what a promotion of a digest would be (new, current, or an older release that
//!   only a rollback may bring back); whether a deployment report names a release on record.
//! * [`request`]: a request id's binding to the canonical content of its request.
//! * [`cas`]: the content-addressed artifact store: a digest, once stored, never changes.
//! * [`statement`]: the in-toto predicates custody signs for approvals, promotions, rollbacks,
//!   revocations and uploads.
//! * [`agent`]: the deploy agent's checks and targets (`custody deploy`), without HTTP.

pub mod agent;
pub mod cas;
pub mod config;
pub mod model;
pub mod request;
pub mod rules;
pub mod service;
pub mod statement;
pub mod store;
