//! Revocation and recovery: an admin's signed revocation is logged and stored, then the
//! service reconciles: it quarantines every released digest whose verified evidence a
//! revocation touches, rolls every environment whose current release is quarantined back to
//! its most recent release that still passes policy, and opens an incident that a deploy
//! agent's report of the rollback settles.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use custody_core::digest::Sha256Digest;
use serde_json::json;

use super::{
    Caller, ReconcileReport, ReleaseError, ReleaseService, RevocationAccepted, RolledBack,
    SERVER_PRINCIPAL, dsse_statement, parse_digest,
};
use crate::config::Environment;
use crate::model::{Incident, Quarantine, Recovery, Release, ReleaseKind, Revocation, Role};
use crate::request::RequestContent;
use crate::statement;

impl ReleaseService {
    /// Accepts a signed revocation from an admin, logs and stores it, then reconciles.
    pub async fn revoke(
        &self,
        caller: &Caller,
        bytes: &[u8],
    ) -> Result<RevocationAccepted, ReleaseError> {
        caller.require(Role::Admin, "revoking")?;
        let (statement, subject) = dsse_statement(bytes, statement::REVOCATION_V1)?;
        let predicate = statement.predicate.clone();
        let target = statement::field(&predicate, "target")
            .ok_or_else(|| ReleaseError::bad("the revocation names no target"))?
            .to_owned();
        statement::parse_target(&target).map_err(ReleaseError::bad)?;
        if subject != Sha256Digest::of(target.as_bytes()) {
            return Err(ReleaseError::bad(
                "the revocation's subject is not the digest of its target (make it with custody revoke)",
            ));
        }
        let reason = statement::field(&predicate, "reason")
            .unwrap_or_default()
            .to_owned();
        let evidence = self.verify_bundle(bytes, &subject)?;
        let signer = self.principal_of(&evidence);
        let is_admin = signer.as_ref().is_some_and(|name| {
            self.config()
                .principals
                .iter()
                .any(|p| &p.name == name && p.roles.contains(&Role::Admin))
        });
        if !is_admin {
            return Err(ReleaseError::forbidden(format!(
                "the revocation is signed by {} ({}), not by an admin's key",
                evidence.signer_name(),
                signer.as_deref().unwrap_or("no principal")
            )));
        }
        let existing = self.db(|s| s.revocations()).await?;
        if let Some(r) = existing.iter().find(|r| r.target == target) {
            let report = self.reconcile().await?;
            return Ok(RevocationAccepted {
                revocation: r.clone(),
                duplicate: true,
                reconcile: report,
            });
        }
        let (bundle, log_index) = self.ensure_logged(bytes, &evidence).await?;
        let revocation = Revocation {
            id: 0,
            target: target.clone(),
            reason: reason.clone(),
            revoked_by: caller.name.clone(),
            at: Utc::now(),
            bundle,
            log_index,
        };
        let revocation = self.db(move |s| s.add_revocation(&revocation)).await?;
        self.observer.signed("revocation");
        self.event(
            &caller.name,
            "revoke",
            &target,
            log_index,
            json!({"id": revocation.id, "reason": reason}),
        )
        .await?;
        self.alert(json!({
            "event": "revocation",
            "revocation": revocation.id,
            "target": target,
            "reason": reason,
            "by": caller.name,
        }))
        .await;
        let report = self.reconcile().await?;
        Ok(RevocationAccepted {
            revocation,
            duplicate: false,
            reconcile: report,
        })
    }

    /// [`Self::reconcile`] asked for by `caller` (an admin).
    pub async fn reconcile_for(&self, caller: &Caller) -> Result<ReconcileReport, ReleaseError> {
        caller.require(Role::Admin, "reconciling")?;
        self.reconcile().await
    }

    /// Quarantines everything the revocations touch and rolls back every environment whose
    /// current release is quarantined. Idempotent.
    pub async fn reconcile(&self) -> Result<ReconcileReport, ReleaseError> {
        let _serial = self.serial.lock().await;
        let revocations = self.db(|s| s.revocations()).await?;
        if self.revoked.set(&revocations) {
            // Decisions made under the old revocations are stale, whether or not the new one
            // quarantines a release.
            (self.on_change)(None);
        }
        if revocations.is_empty() {
            return Ok(ReconcileReport::default());
        }
        // Every digest that was ever released somewhere.
        let mut digests: BTreeSet<String> = BTreeSet::new();
        let mut histories: BTreeMap<String, Vec<Release>> = BTreeMap::new();
        for env in &self.config().environments {
            let name = env.name.clone();
            let h = self.db(move |s| s.releases(&name)).await?;
            digests.extend(h.iter().map(|r| r.digest.clone()));
            histories.insert(env.name.clone(), h);
        }
        // Which revocation touches which digest.
        let mut newly = Vec::new();
        let mut touched_by: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for d in &digests {
            let digest = parse_digest(d)?;
            let evidence = self.verified_evidence(digest).await?;
            for id in super::gate::touching(&revocations, Some(&digest), &evidence) {
                let Some(r) = revocations.iter().find(|r| r.id == id) else {
                    continue;
                };
                touched_by.entry(r.id).or_default().push(d.clone());
                let q = Quarantine {
                    digest: d.clone(),
                    revocation_id: r.id,
                    at: Utc::now(),
                };
                if self.db(move |s| s.quarantine(&q)).await? {
                    newly.push(d.clone());
                    self.event(
                        SERVER_PRINCIPAL,
                        "quarantine",
                        d,
                        None,
                        json!({"revocation": r.id, "target": r.target}),
                    )
                    .await?;
                }
            }
        }
        if !newly.is_empty() {
            (self.on_change)(None);
        }
        let quarantined: BTreeSet<String> = self
            .db(|s| s.quarantine_list())
            .await?
            .into_iter()
            .map(|q| q.digest)
            .collect();
        let incidents = self.db(|s| s.incidents()).await?;
        let mut rolled = Vec::new();
        for (rev_id, affected) in &touched_by {
            let Some(revocation) = revocations.iter().find(|r| r.id == *rev_id) else {
                continue;
            };
            let mut incident = match incidents.iter().find(|i| i.revocation_id == *rev_id) {
                Some(i) => i.clone(),
                None => {
                    let introduced = histories
                        .values()
                        .flatten()
                        .filter(|r| affected.contains(&r.digest))
                        .map(|r| r.at)
                        .min();
                    let new = Incident {
                        id: 0,
                        revocation_id: *rev_id,
                        detected_at: revocation.at,
                        introduced_at: introduced,
                        recovered_at: None,
                        status: "open".into(),
                        affected_digests: affected.clone(),
                        recoveries: Vec::new(),
                    };
                    let opened = self.db(move |s| s.open_incident(&new)).await?;
                    self.observer.incident_opened();
                    self.alert(json!({
                        "event": "incident",
                        "incident": opened.id,
                        "revocation": rev_id,
                        "target": revocation.target,
                        "affected": affected,
                    }))
                    .await;
                    opened
                }
            };
            for env in &self.config().environments {
                let history = histories.get(&env.name).cloned().unwrap_or_default();
                if !incident
                    .recoveries
                    .iter()
                    .any(|r| r.environment == env.name)
                    && let Some(recovery) =
                        self.recovery_on_record(&incident, env, &history).await?
                {
                    // A previous run rolled this environment back and stopped before it
                    // stored the incident: the signed rollback is the recovery.
                    incident.recoveries.push(recovery);
                }
                let name = env.name.clone();
                let Some(current) = self.db(move |s| s.current_release(&name)).await? else {
                    continue;
                };
                if !quarantined.contains(&current.digest) || !affected.contains(&current.digest) {
                    continue;
                }
                let mut chosen = None;
                for r in history.iter().rev() {
                    if quarantined.contains(&r.digest) {
                        continue;
                    }
                    let digest = parse_digest(&r.digest)?;
                    let verdict = self.decide(env, digest, &r.requested_by).await?;
                    if verdict.allowed {
                        chosen = Some((digest, verdict));
                        break;
                    }
                }
                let mut recovery = Recovery {
                    environment: env.name.clone(),
                    from_digest: current.digest.clone(),
                    to_digest: None,
                    seq: None,
                    deployed_at: None,
                };
                match chosen {
                    Some((digest, verdict)) => {
                        let reason = format!(
                            "{}revocation #{} of {} ({})",
                            incident_reason_prefix(incident.id),
                            revocation.id,
                            revocation.target,
                            revocation.reason
                        );
                        let release = self
                            .record_release(
                                env,
                                digest,
                                ReleaseKind::Rollback,
                                SERVER_PRINCIPAL,
                                Some(reason.clone()),
                                None,
                                &RequestContent::Rollback {
                                    environment: env.name.clone(),
                                    digest: Some(digest.to_string()),
                                    reason,
                                },
                                Some(&current),
                                &verdict,
                            )
                            .await?;
                        self.observer.rolled_back(&env.name);
                        recovery.to_digest = Some(release.digest.clone());
                        recovery.seq = Some(release.seq);
                        if env.target.is_none() {
                            // No deploy agent reports for it: recovered when recorded.
                            recovery.deployed_at = Some(release.at);
                        }
                        rolled.push(RolledBack {
                            environment: env.name.clone(),
                            from: current.digest.clone(),
                            to: release.digest.clone(),
                            seq: release.seq,
                        });
                        self.alert(json!({
                            "event": "rollback",
                            "incident": incident.id,
                            "environment": env.name,
                            "from": current.digest,
                            "to": release.digest,
                            "seq": release.seq,
                        }))
                        .await;
                    }
                    None => {
                        self.alert(json!({
                            "event": "unrecoverable",
                            "incident": incident.id,
                            "environment": env.name,
                            "digest": current.digest,
                            "message": "no earlier release still passes policy: build and promote a new one",
                        }))
                        .await;
                    }
                }
                incident.recoveries.retain(|r| r.environment != env.name);
                incident.recoveries.push(recovery);
            }
            settle(&mut incident);
            let i = incident.clone();
            self.db(move |s| s.update_incident(&i)).await?;
        }
        Ok(ReconcileReport {
            quarantined: newly,
            rolled_back: rolled,
        })
    }

    /// The recovery of `env` from `incident` that the environment's history shows: the
    /// rollback the server signed for the incident (reason `incident #N: …`), deployed when an
    /// agent reported it active (or, without a target, when recorded). For a run that stopped
    /// between recording a rollback and storing the incident.
    async fn recovery_on_record(
        &self,
        incident: &Incident,
        env: &Environment,
        history: &[Release],
    ) -> Result<Option<Recovery>, ReleaseError> {
        let prefix = incident_reason_prefix(incident.id);
        let Some(at) = history.iter().position(|r| {
            r.kind == ReleaseKind::Rollback
                && r.requested_by == SERVER_PRINCIPAL
                && r.reason.as_deref().is_some_and(|x| x.starts_with(&prefix))
        }) else {
            return Ok(None);
        };
        let rollback = &history[at];
        let deployed_at = if env.target.is_none() {
            Some(rollback.at)
        } else {
            let name = env.name.clone();
            self.db(move |s| s.deployments(&name))
                .await?
                .into_iter()
                .find(|d| {
                    d.status == "active" && d.seq == rollback.seq && d.digest == rollback.digest
                })
                .map(|d| d.at)
        };
        Ok(Some(Recovery {
            environment: env.name.clone(),
            from_digest: at
                .checked_sub(1)
                .map(|i| history[i].digest.clone())
                .unwrap_or_default(),
            to_digest: Some(rollback.digest.clone()),
            seq: Some(rollback.seq),
            deployed_at,
        }))
    }
}

/// How the reason of a rollback made for incident `id` begins.
fn incident_reason_prefix(id: u64) -> String {
    format!("incident #{id}: ")
}

/// Sets an incident's status and recovery time from its recoveries.
pub(super) fn settle(incident: &mut Incident) {
    if incident.recoveries.is_empty() {
        return;
    }
    if incident.recoveries.iter().any(|r| r.to_digest.is_none()) {
        incident.status = "unrecoverable".into();
        return;
    }
    if incident.recoveries.iter().all(|r| r.deployed_at.is_some()) {
        incident.recovered_at = incident
            .recoveries
            .iter()
            .filter_map(|r| r.deployed_at)
            .max();
        incident.status = "recovered".into();
    } else {
        incident.status = "open".into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settle_needs_every_recovery() {
        let now = Utc::now();
        let mut i = Incident {
            id: 1,
            revocation_id: 1,
            detected_at: now,
            introduced_at: None,
            recovered_at: None,
            status: "open".into(),
            affected_digests: vec![],
            recoveries: vec![
                Recovery {
                    environment: "prod".into(),
                    from_digest: "a".into(),
                    to_digest: Some("b".into()),
                    seq: Some(3),
                    deployed_at: Some(now),
                },
                Recovery {
                    environment: "staging".into(),
                    from_digest: "a".into(),
                    to_digest: Some("b".into()),
                    seq: Some(4),
                    deployed_at: None,
                },
            ],
        };
        settle(&mut i);
        assert_eq!(i.status, "open");
        assert!(i.recovered_at.is_none());
        i.recoveries[1].deployed_at = Some(now + chrono::Duration::seconds(2));
        settle(&mut i);
        assert_eq!(i.status, "recovered");
        assert_eq!(i.recovered_at, Some(now + chrono::Duration::seconds(2)));
        i.recoveries[0].to_digest = None;
        settle(&mut i);
        assert_eq!(i.status, "unrecoverable");
    }
}
