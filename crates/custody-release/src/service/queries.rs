//! Reads: environments and their current releases, histories, incidents, events, an
//! artifact's chain of custody, and the figures `/metrics` shows.

use std::collections::BTreeSet;

use custody_policy::input::Evidence;

use super::{
    ArtifactHistory, Caller, CurrentView, EnvironmentCurrent, EnvironmentHistory, EnvironmentView,
    EnvironmentsView, EventsView, EvidenceView, IncidentsView, ReleaseError, ReleaseFigures,
    ReleaseService, parse_digest, rfc3339,
};
use crate::model::{Revocation, Role};

impl ReleaseService {
    /// Scrape-time figures for `/metrics`.
    pub async fn snapshot(&self) -> Result<ReleaseFigures, ReleaseError> {
        let incidents = self.db(|s| s.incidents()).await?;
        let quarantined = self.db(|s| s.quarantine_list()).await?.len() as u64;
        let secs = |d: chrono::TimeDelta| d.num_milliseconds() as f64 / 1000.0;
        Ok(ReleaseFigures {
            detect_seconds: incidents
                .iter()
                .filter_map(|i| i.introduced_at.map(|t| secs(i.detected_at - t)))
                .collect(),
            recover_seconds: incidents
                .iter()
                .filter_map(|i| i.recovered_at.map(|t| secs(t - i.detected_at)))
                .collect(),
            incidents_open: incidents.iter().filter(|i| i.status != "recovered").count() as u64,
            quarantined,
        })
    }

    /// Every environment with its current release.
    pub async fn environments(&self) -> Result<EnvironmentsView, ReleaseError> {
        let mut out = Vec::new();
        for env in &self.config().environments {
            let name = env.name.clone();
            let current = self.db(move |s| s.current_release(&name)).await?;
            out.push(EnvironmentView {
                name: env.name.clone(),
                from: env.from.clone(),
                stage: env.stage.clone(),
                target: env.target.clone(),
                approvals: env.approvals.clone(),
                current: current.map(|c| CurrentView {
                    seq: c.seq,
                    digest: c.digest,
                    kind: c.kind,
                    at: rfc3339(c.at),
                }),
            });
        }
        Ok(EnvironmentsView { environments: out })
    }

    /// One environment's current release.
    pub async fn environment_current(
        &self,
        name: &str,
    ) -> Result<EnvironmentCurrent, ReleaseError> {
        let env = self.environment(name)?.name.clone();
        let n = env.clone();
        let current = self.db(move |s| s.current_release(&n)).await?;
        Ok(EnvironmentCurrent {
            environment: env,
            current,
        })
    }

    /// One environment's releases and deployment reports.
    pub async fn environment_history(
        &self,
        name: &str,
    ) -> Result<EnvironmentHistory, ReleaseError> {
        let env = self.environment(name)?.name.clone();
        let n = env.clone();
        let releases = self.db(move |s| s.releases(&n)).await?;
        let n = env.clone();
        let deployments = self.db(move |s| s.deployments(&n)).await?;
        Ok(EnvironmentHistory {
            environment: env,
            releases,
            deployments,
        })
    }

    /// Incidents, revocations and the quarantine (auditors).
    pub async fn incidents(&self, caller: &Caller) -> Result<IncidentsView, ReleaseError> {
        caller.require(Role::Auditor, "reading incidents")?;
        let incidents = self.db(|s| s.incidents()).await?;
        let revocations = self.db(|s| s.revocations()).await?;
        let quarantine = self.db(|s| s.quarantine_list()).await?;
        Ok(IncidentsView {
            incidents,
            revocations,
            quarantine,
        })
    }

    /// The record of who changed what, for one object or all (auditors).
    pub async fn events(
        &self,
        caller: &Caller,
        object: Option<String>,
    ) -> Result<EventsView, ReleaseError> {
        caller.require(Role::Auditor, "reading events")?;
        let events = self.db(move |s| s.events(object.as_deref())).await?;
        Ok(EventsView { events })
    }

    /// The chain of custody of one artifact: everything custody knows about it, each with
    /// its log index and the bundle that proves it.
    pub async fn history(
        &self,
        caller: &Caller,
        digest: &str,
    ) -> Result<ArtifactHistory, ReleaseError> {
        caller.require(Role::Auditor, "reading history")?;
        let digest = parse_digest(digest)?;
        let key = digest.to_string();
        let artifact = self.db(move |s| s.artifact(&key)).await?;
        let key = digest.to_string();
        let releases = self.db(move |s| s.releases_of(&key)).await?;
        let mut deployments = Vec::new();
        let envs: BTreeSet<String> = releases.iter().map(|r| r.environment.clone()).collect();
        for env in envs {
            let all = self.db(move |s| s.deployments(&env)).await?;
            deployments.extend(all.into_iter().filter(|d| d.digest == digest.to_string()));
        }
        let key = digest.to_string();
        let quarantine = self.db(move |s| s.quarantined(&key)).await?;
        let revocations = self.db(|s| s.revocations()).await?;
        let verified = self.verified_evidence(digest).await?;
        let stored = self.evidence_db(move |s| s.for_artifact(&digest)).await?;
        let mut evidence = Vec::new();
        for b in stored {
            let key = b.bundle_digest.to_string();
            let v = verified.iter().find(|e| e.bundle_digest == key);
            let revoked_by: Vec<u64> = match v {
                Some(e) => super::gate::touching(&revocations, None, std::slice::from_ref(e)),
                None => Vec::new(),
            };
            evidence.push(EvidenceView {
                bundle_digest: b.bundle_digest.to_string(),
                verified: v.is_some(),
                predicate_type: v.and_then(|e| e.predicate_type.clone()),
                signer: v.map(Evidence::signer_name),
                principal: v.and_then(|e| self.principal_of(e)),
                log_index: v.and_then(|e| e.tlog.first().map(|t| t.log_index)),
                integrated_time: v
                    .and_then(|e| e.tlog.first().and_then(|t| t.integrated_time.clone())),
                revoked_by,
                bundle: String::from_utf8_lossy(&b.bytes).into_owned(),
            });
        }
        let key = digest.to_string();
        let events = self.db(move |s| s.events(Some(&key))).await?;
        let relevant_revocations: Vec<Revocation> = revocations
            .into_iter()
            .filter(|r| {
                quarantine.as_ref().is_some_and(|q| q.revocation_id == r.id)
                    || r.target == format!("digest:{digest}")
            })
            .collect();
        if artifact.is_none() && releases.is_empty() && evidence.is_empty() {
            return Err(ReleaseError::not_found(format!(
                "custody knows nothing about {digest} (no artifact, evidence or release)"
            )));
        }
        Ok(ArtifactHistory {
            digest: digest.to_string(),
            artifact,
            evidence,
            releases,
            deployments,
            quarantine,
            revocations: relevant_revocations,
            events,
            release_key: self.key_public.to_pem(),
        })
    }
}
