//! The release service's typed requests and answers. The server deserializes the requests
//! from JSON bodies and serializes the answers as they are: these structs are the HTTP API's
//! JSON (see `docs/http-api.md`).

use std::collections::BTreeSet;

use custody_policy::input::RetiredKey;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::ReleaseError;
use crate::config::ApprovalRule;
use crate::model::{
    ArtifactRecord, Deployment, Event, Incident, Quarantine, Release, ReleaseKind, Revocation, Role,
};

/// Who is calling: a principal (name, roles, a deployer's environments). The server says
/// who it is (from the bearer token); the service enforces what the roles allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub roles: BTreeSet<Role>,
    /// A deployer's environments (see [`Caller::require_deployer_for`]).
    pub environments: BTreeSet<String>,
}

impl Caller {
    /// `Forbidden` naming the role `what` needs unless the caller has it (or is an admin).
    pub fn require(&self, role: Role, what: &str) -> Result<(), ReleaseError> {
        if self.roles.contains(&role) || self.roles.contains(&Role::Admin) {
            return Ok(());
        }
        Err(ReleaseError::Forbidden {
            message: format!(
                "{what} needs the {role} role; principal {:?} has {} (ask an admin to add the role in the release config)",
                self.name,
                if self.roles.is_empty() {
                    "none".to_owned()
                } else {
                    self.roles
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
            missing_role: Some(role),
        })
    }

    /// A deployment report for `environment`: an admin, or a deployer that lists it.
    /// Release managers may not report (separation of duties: who promotes does not also
    /// say what runs).
    pub fn require_deployer_for(&self, environment: &str) -> Result<(), ReleaseError> {
        if self.roles.contains(&Role::Admin) {
            return Ok(());
        }
        self.require(Role::Deployer, "reporting a deployment")?;
        if self.environments.contains(environment) {
            return Ok(());
        }
        Err(ReleaseError::Forbidden {
            message: format!(
                "principal {:?} may report deployments only for {} (environments of its [[principal]] entry), not {environment:?}",
                self.name,
                self.environments
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            missing_role: None,
        })
    }
}

/// What a call made: `created` is false when it answered from the record (a retry, an
/// artifact already stored, a digest already current).
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded<T> {
    pub created: bool,
    pub value: T,
}

impl<T> Recorded<T> {
    pub(crate) fn new(value: T) -> Self {
        Self {
            created: true,
            value,
        }
    }
    pub(crate) fn existing(value: T) -> Self {
        Self {
            created: false,
            value,
        }
    }
}

/// `PUT /api/v1/artifacts/<digest>[?name=N]`: the claimed digest and an optional name.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PushRequest {
    pub digest: String,
    pub name: Option<String>,
}

/// A promotion request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PromoteRequest {
    pub digest: String,
    pub to: String,
    /// Idempotency key: a retry with the same id returns the first result.
    pub request_id: Option<String>,
}

/// An explicit rollback request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RollbackRequest {
    pub environment: String,
    /// The release to go back to; the most recent earlier one that passes when absent.
    pub digest: Option<String>,
    pub reason: String,
    pub request_id: Option<String>,
}

/// An approval accepted (or one already stored: `duplicate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalAccepted {
    pub digest: String,
    pub environment: String,
    pub approver: String,
    pub log_index: Option<u64>,
    pub bundle_digest: String,
    pub duplicate: bool,
}

/// What a reconciliation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileReport {
    /// Digests quarantined by this run.
    pub quarantined: Vec<String>,
    pub rolled_back: Vec<RolledBack>,
}

/// One automatic rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolledBack {
    pub environment: String,
    pub from: String,
    pub to: String,
    pub seq: u64,
}

/// A revocation accepted (or the one already on record for its target: `duplicate`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RevocationAccepted {
    pub revocation: Revocation,
    pub duplicate: bool,
    pub reconcile: ReconcileReport,
}

/// A key rotation as recorded (the `key-rotate` event's detail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationDetail {
    pub old_key_id: String,
    pub new_key_id: String,
    pub retire_at: String,
    pub reason: String,
}

/// A key rotation accepted, with the retirements in force after it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RotationAccepted {
    pub rotation: RotationDetail,
    pub log_index: Option<u64>,
    pub retired: Vec<RetiredKey>,
}

/// A deployment report recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRecorded {
    pub recorded: bool,
}

/// `GET /api/v1/environments`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvironmentsView {
    pub environments: Vec<EnvironmentView>,
}

/// One environment with its current release.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvironmentView {
    pub name: String,
    pub from: Option<String>,
    pub stage: Option<String>,
    pub target: Option<String>,
    pub approvals: Option<ApprovalRule>,
    pub current: Option<CurrentView>,
}

/// An environment's current release, in brief.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentView {
    pub seq: u64,
    pub digest: String,
    pub kind: ReleaseKind,
    pub at: String,
}

/// `GET /api/v1/environments/{env}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvironmentCurrent {
    pub environment: String,
    pub current: Option<Release>,
}

/// `GET /api/v1/environments/{env}/releases`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvironmentHistory {
    pub environment: String,
    pub releases: Vec<Release>,
    pub deployments: Vec<Deployment>,
}

/// `GET /api/v1/incidents`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentsView {
    pub incidents: Vec<Incident>,
    pub revocations: Vec<Revocation>,
    pub quarantine: Vec<Quarantine>,
}

/// `GET /api/v1/events`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventsView {
    pub events: Vec<Event>,
}

/// `GET /api/v1/history/<digest>`: the chain of custody of one artifact.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArtifactHistory {
    pub digest: String,
    pub artifact: Option<ArtifactRecord>,
    pub evidence: Vec<EvidenceView>,
    pub releases: Vec<Release>,
    pub deployments: Vec<Deployment>,
    pub quarantine: Option<Quarantine>,
    pub revocations: Vec<Revocation>,
    pub events: Vec<Event>,
    /// The release key (PEM) the release statements verify under.
    pub release_key: String,
}

/// One stored bundle about an artifact, and what verifying it showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EvidenceView {
    pub bundle_digest: String,
    pub verified: bool,
    pub predicate_type: Option<String>,
    pub signer: Option<String>,
    pub principal: Option<String>,
    pub log_index: Option<i64>,
    pub integrated_time: Option<String>,
    pub revoked_by: Vec<u64>,
    pub bundle: String,
}

/// `GET /api/v1/environments/{env}/current-release`: a signed, short-lived statement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurrentReleaseStatement {
    pub environment: String,
    pub seq: u64,
    pub digest: String,
    #[serde(rename = "issuedAt")]
    pub issued_at: String,
    pub expires: String,
    /// The DSSE envelope (JSON) signed by the release key.
    pub envelope: Json,
}

/// Scrape-time release figures for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReleaseFigures {
    /// (detected − introduced) of each incident, seconds.
    pub detect_seconds: Vec<f64>,
    /// (recovered − detected) of each recovered incident, seconds.
    pub recover_seconds: Vec<f64>,
    pub incidents_open: u64,
    pub quarantined: u64,
}
