//! The records. Digests are `sha256:<64 hex>` strings, times are UTC.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// What a server API token may do. Each endpoint names the roles it accepts; `admin` may do
/// everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Uploads artifacts and evidence.
    Builder,
    /// Submits signed approvals.
    Approver,
    /// Promotes artifacts between environments and rolls them back.
    ReleaseManager,
    /// A deploy agent: reports deployments, only for the environments listed on its
    /// principal (`environments = [...]`), and reads what an agent needs. Nothing else.
    Deployer,
    /// Reads history, incidents and audits.
    Auditor,
    /// Revokes, rotates keys, everything else.
    Admin,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Builder,
        Role::Approver,
        Role::ReleaseManager,
        Role::Deployer,
        Role::Auditor,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Builder => "builder",
            Role::Approver => "approver",
            Role::ReleaseManager => "release-manager",
            Role::Deployer => "deployer",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!("unknown role {s:?} (expected builder, approver, release-manager, deployer, auditor or admin)")
            })
    }
}

/// An artifact in the content-addressed store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRecord {
    pub digest: String,
    pub size: u64,
    /// The file name it was pushed with (informational; the digest is the identity).
    pub name: Option<String>,
    pub uploaded_by: String,
    pub uploaded_at: DateTime<Utc>,
    /// The log index of the signed upload record.
    pub log_index: Option<u64>,
}

/// Why an environment's current release changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReleaseKind {
    /// A promotion (from the previous environment, or the first environment's entry).
    Promotion,
    /// An explicit rollback to an earlier release (after a revocation, or asked for).
    Rollback,
}

impl ReleaseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseKind::Promotion => "promotion",
            ReleaseKind::Rollback => "rollback",
        }
    }
}

impl std::str::FromStr for ReleaseKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "promotion" => Ok(ReleaseKind::Promotion),
            "rollback" => Ok(ReleaseKind::Rollback),
            _ => Err(format!("unknown release kind {s:?}")),
        }
    }
}

/// One entry in an environment's history. `seq` starts at 1 and has no gaps; the latest is
/// the environment's current release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub environment: String,
    pub seq: u64,
    pub digest: String,
    pub kind: ReleaseKind,
    /// The environment it was promoted from (`None` for the first environment, and rollbacks).
    pub from_environment: Option<String>,
    /// Who asked (principal name; `custody` for automatic rollbacks).
    pub requested_by: String,
    pub at: DateTime<Utc>,
    pub policy_digest: String,
    /// Rollbacks: why (e.g. the incident and revocation).
    pub reason: Option<String>,
    /// The client's idempotency key: a retried request returns this release instead of
    /// making a second one.
    pub request_id: Option<String>,
    /// The signed, logged release statement: a Sigstore bundle (JSON text).
    pub bundle: String,
    pub log_index: Option<u64>,
    /// The gate's signed VSA for the decision that allowed it (bundle JSON), if any.
    pub vsa: Option<String>,
}

/// A revocation of a key, an identity, a builder or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// Assigned by the store (1, 2, ...).
    pub id: u64,
    /// `key:ID`, `identity:SAN`, `builder:ID` or `digest:sha256:HEX`.
    pub target: String,
    pub reason: String,
    pub revoked_by: String,
    pub at: DateTime<Utc>,
    /// The signed, logged revocation statement (bundle JSON).
    pub bundle: String,
    pub log_index: Option<u64>,
}

/// An artifact that may not be promoted or deployed any more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantine {
    pub digest: String,
    pub revocation_id: u64,
    pub at: DateTime<Utc>,
}

/// What happened to one environment in an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovery {
    pub environment: String,
    /// The quarantined release that was current.
    pub from_digest: String,
    /// The release it was rolled back to; `None` when no earlier release still passes.
    pub to_digest: Option<String>,
    /// The rollback release's `seq`.
    pub seq: Option<u64>,
    /// When a deploy agent reported the rollback active.
    pub deployed_at: Option<DateTime<Utc>>,
}

/// An incident, opened by a revocation that touched something deployed or promoted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// Assigned by the store.
    pub id: u64,
    pub revocation_id: u64,
    /// When custody learned of it (the revocation arrived): detection.
    pub detected_at: DateTime<Utc>,
    /// When the first affected release entered an environment.
    pub introduced_at: Option<DateTime<Utc>>,
    /// When every affected environment was back on a release that passes (rolled back and,
    /// where a deploy agent reports, deployed).
    pub recovered_at: Option<DateTime<Utc>>,
    /// `open`, `recovered` or `unrecoverable` (some environment has no earlier good release).
    pub status: String,
    pub affected_digests: Vec<String>,
    pub recoveries: Vec<Recovery>,
}

/// A deploy agent's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub environment: String,
    pub seq: u64,
    pub digest: String,
    /// The agent's name (e.g. host name and target).
    pub agent: String,
    /// `active` or `failed`.
    pub status: String,
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
}

/// A state-changing call, recorded with who made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Assigned by the store.
    pub id: u64,
    pub at: DateTime<Utc>,
    /// Principal name.
    pub actor: String,
    /// e.g. `push`, `evidence`, `approve`, `promote`, `rollback`, `revoke`, `deploy`,
    /// `quarantine`, `incident`, `key-rotate`.
    pub action: String,
    /// What it was about: a digest, an environment, a revocation target.
    pub object: String,
    pub log_index: Option<u64>,
    pub detail: Json,
}
