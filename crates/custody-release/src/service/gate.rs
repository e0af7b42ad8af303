//! The gate request for a release decision: the environment with its approval rule, who
//! asked, which keys belong to whom, and what is revoked; the decision itself; and the
//! revocations and key retirements every gate decision applies (admission included), which
//! the service keeps current and the server's gate reads.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use custody_core::digest::Sha256Digest;
use custody_policy::Verdict;
use custody_policy::input::Candidate;
use custody_policy::input::{
    ApprovalsRef, EnvironmentRef, Evidence, PromotionRef, RetiredKey, RevokedTarget,
};
use custody_policy::{ArtifactRef, Request};

use super::{ReleaseError, ReleaseService};
use crate::config::{Environment, ReleaseConfig};
use crate::model::Revocation;

/// The revocations as the policy crate applies them.
pub fn revoked_targets(revocations: &[Revocation]) -> Vec<RevokedTarget> {
    revocations
        .iter()
        .map(|r| RevokedTarget::new(r.id, r.target.clone(), r.reason.clone()))
        .collect()
}

/// The environment as the policy sees it: name, stage, approval rule and the group's members.
pub fn environment_ref(config: &ReleaseConfig, env: &Environment) -> EnvironmentRef {
    EnvironmentRef {
        name: env.name.clone(),
        stage: env.stage.clone(),
        approvals: env.approvals.as_ref().map(|rule| ApprovalsRef {
            required: rule.required,
            group: rule.group.clone(),
            members: config.groups().remove(&rule.group).unwrap_or_default(),
            max_age_seconds: rule.max_age.map(|d| d.as_secs()),
        }),
    }
}

pub fn request(
    config: &ReleaseConfig,
    env: &Environment,
    digest: Sha256Digest,
    requested_by: &str,
    revocations: &[Revocation],
    retired: Arc<Vec<RetiredKey>>,
    principals: Arc<BTreeMap<String, String>>,
) -> Request<'static> {
    Request {
        artifact: ArtifactRef {
            digest: Some(digest.to_string()),
            ..Default::default()
        },
        bytes: None,
        environment: Some(environment_ref(config, env)),
        time: Utc::now(),
        principals,
        revocations: Arc::new(revoked_targets(revocations)),
        retired,
        promotion: Some(PromotionRef {
            requested_by: requested_by.to_owned(),
            from: env.from.clone(),
        }),
        // A promotion is decided on the environment's rules, not its release state.
        release: None,
    }
}

/// Which of `revocations` touch an artifact with this verified evidence: the digest itself
/// (when given), or evidence the policy crate would reject as revoked.
pub fn touching(
    revocations: &[Revocation],
    digest: Option<&Sha256Digest>,
    evidence: &[Evidence],
) -> Vec<u64> {
    let targets = revoked_targets(revocations);
    let mut ids: Vec<u64> = Vec::new();
    if let Some(d) = digest
        && let Some(r) = custody_policy::input::artifact_revocation(&d.to_string(), &targets)
    {
        ids.push(r.id);
    }
    let mut rejected = Vec::new();
    custody_policy::input::apply_revocations(evidence.to_vec(), &mut rejected, &targets);
    ids.extend(
        rejected
            .iter()
            .filter_map(|r| r.revoked.as_ref().map(|x| x.revocation.id)),
    );
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The revocations and key retirements every gate decision applies (admission and evaluate
/// included), shared by the release service (which replaces them when they change) and the
/// gate.
#[derive(Debug, Default)]
pub struct SharedRevocations {
    revoked: std::sync::RwLock<Arc<Vec<RevokedTarget>>>,
    retired: std::sync::RwLock<Arc<Vec<RetiredKey>>>,
}

impl SharedRevocations {
    pub fn get(&self) -> Arc<Vec<RevokedTarget>> {
        self.revoked
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the revocations; true when they differ from those in force.
    pub fn set(&self, revocations: &[Revocation]) -> bool {
        let targets = revoked_targets(revocations);
        let mut slot = self
            .revoked
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if **slot == targets {
            return false;
        }
        *slot = Arc::new(targets);
        true
    }

    pub fn retired(&self) -> Arc<Vec<RetiredKey>> {
        self.retired
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn set_retired(&self, retired: Vec<RetiredKey>) {
        *self
            .retired
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(retired);
    }
}

impl ReleaseService {
    /// Evaluates `env`'s policy for `digest` with all stored evidence and the revocations.
    pub(super) async fn decide(
        &self,
        env: &Environment,
        digest: Sha256Digest,
        requested_by: &str,
    ) -> Result<Verdict, ReleaseError> {
        // One snapshot for the environment's rule, its policy and the principals: a reload
        // in between does not mix them.
        let rules = self.rules();
        let removed = || {
            ReleaseError::conflict(format!(
                "environment {} was removed by a configuration reload while this request ran: send it again",
                env.name
            ))
        };
        let env = &rules
            .config
            .environment(&env.name)
            .cloned()
            .ok_or_else(removed)?;
        let gate = rules.gates.get(&env.name).cloned().ok_or_else(removed)?;
        // A key retirement takes effect at its instant, whether or not the timer fired yet.
        if self.retirement_due() {
            self.refresh_retirements().await?;
        }
        let revocations = self.db(|s| s.revocations()).await?;
        let store = self.evidence.clone();
        let request = request(
            &rules.config,
            env,
            digest,
            requested_by,
            &revocations,
            self.revoked.retired(),
            rules.principals.clone(),
        );
        let started = std::time::Instant::now();
        let verdict = tokio::task::spawn_blocking(move || {
            let candidates: Vec<Candidate> = store
                .for_artifact(&digest)
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|b| Candidate {
                    source: format!("evidence:{}", b.bundle_digest),
                    bytes: b.bytes,
                })
                .collect();
            gate.decide(&request, &candidates)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(ReleaseError::internal)?
        .map_err(ReleaseError::internal)?;
        self.observer.decision(&verdict, started.elapsed());
        Ok(verdict)
    }
}
