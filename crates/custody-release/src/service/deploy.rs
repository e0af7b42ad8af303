//! Deployment reports: a deploy agent (a deployer listed for the environment, or an admin)
//! says which release it activated. The report must name a release on record; a quarantined
//! digest reported active is refused and alerted; an active report of an incident's rollback
//! settles the incident.

use chrono::Utc;
use serde_json::json;

use super::revoke::settle;
use super::{Caller, DeploymentRecorded, ReleaseError, ReleaseService, parse_digest};
use crate::model::Deployment;
use crate::rules::deployment_on_record;

impl ReleaseService {
    /// Records a deploy agent's report; completes incident recoveries it confirms.
    ///
    /// The report must name a release on record: `environment`'s release `seq` with that
    /// `digest` (409 otherwise). A report that a quarantined digest is `active` is refused
    /// (409, an alert and a `deploy-refused` event): a deploy agent must not run it, and such
    /// a report must never count as a recovery.
    pub async fn deployed(
        &self,
        caller: &Caller,
        mut report: Deployment,
    ) -> Result<DeploymentRecorded, ReleaseError> {
        caller.require_deployer_for(&report.environment)?;
        self.environment(&report.environment)?;
        parse_digest(&report.digest)?;
        if report.status != "active" && report.status != "failed" {
            return Err(ReleaseError::bad(format!(
                "deployment status {:?}: expected active or failed",
                report.status
            )));
        }
        let name = report.environment.clone();
        let history = self.db(move |s| s.releases(&name)).await?;
        if let Err(why) =
            deployment_on_record(&history, &report.environment, report.seq, &report.digest)
        {
            return Err(ReleaseError::conflict(format!(
                "deployment report refused: {why}; report the release the agent activated (GET /api/v1/environments/{})",
                report.environment
            )));
        }
        if report.status == "active" {
            let key = report.digest.clone();
            if let Some(q) = self.db(move |s| s.quarantined(&key)).await? {
                let detail = json!({"environment": report.environment, "seq": report.seq, "agent": report.agent, "status": report.status, "revocation": q.revocation_id});
                self.event(&caller.name, "deploy-refused", &report.digest, None, detail)
                    .await?;
                self.alert(json!({
                    "event": "quarantined-active",
                    "environment": report.environment,
                    "seq": report.seq,
                    "digest": report.digest,
                    "agent": report.agent,
                    "revocation": q.revocation_id,
                }))
                .await;
                return Err(ReleaseError::conflict(format!(
                    "deployment report refused: environment {}, seq {}, digest {} is quarantined (revocation #{}) and must not run; the agent should activate the environment's current release",
                    report.environment, report.seq, report.digest, q.revocation_id
                )));
            }
        }
        report.at = Utc::now();
        let r = report.clone();
        self.db(move |s| s.record_deployment(&r)).await?;
        self.event(
            &caller.name,
            "deploy",
            &report.digest,
            None,
            json!({"environment": report.environment, "seq": report.seq, "agent": report.agent, "status": report.status, "detail": report.detail}),
        )
        .await?;
        self.observer
            .deployment(&report.environment, &report.status);
        if report.status != "active" {
            return Ok(DeploymentRecorded { recorded: true });
        }
        let _serial = self.serial.lock().await;
        for mut incident in self.db(|s| s.incidents()).await? {
            if incident.status != "open" {
                continue;
            }
            let mut changed = false;
            for r in &mut incident.recoveries {
                if r.environment == report.environment
                    && r.seq == Some(report.seq)
                    && r.to_digest.as_deref() == Some(report.digest.as_str())
                    && r.deployed_at.is_none()
                {
                    r.deployed_at = Some(report.at);
                    changed = true;
                }
            }
            if changed {
                settle(&mut incident);
                if incident.status == "recovered" {
                    self.observer.incident_recovered();
                }
                let i = incident.clone();
                self.db(move |s| s.update_incident(&i)).await?;
            }
        }
        Ok(DeploymentRecorded { recorded: true })
    }
}
