//! Promotion and rollback: the same digest that passed the environment before, not
//! quarantined, allowed by the environment's policy over all evidence; an older digest goes
//! back only by an explicit rollback; a request id binds its content (a retry answers from the
//! record, other content under the same id is refused); the store's compare-and-swap on the
//! environment's seq decides races between replicas.

use std::collections::BTreeSet;

use chrono::Utc;
use custody_core::digest::Sha256Digest;
use custody_policy::Verdict;
use serde_json::json;

use super::{
    Caller, PromoteRequest, Recorded, ReleaseError, ReleaseService, RollbackRequest, parse_digest,
};
use crate::config::Environment;
use crate::model::{Event, Release, ReleaseKind, Role};
use crate::request::RequestContent;
use crate::rules::{PromotionOutcome, promotion_outcome};
use crate::statement::{self, ReleaseFacts};
use crate::store::StoreError;

impl ReleaseService {
    /// Promotes `digest` into an environment: same digest that passed the environment before
    /// it, not quarantined, allowed by the environment's policy over all evidence (approvals
    /// included). Signed, logged, recorded; nothing is rebuilt.
    pub async fn promote(
        &self,
        caller: &Caller,
        req: PromoteRequest,
    ) -> Result<Recorded<Release>, ReleaseError> {
        caller.require(Role::ReleaseManager, "promoting")?;
        let digest = parse_digest(&req.digest)?;
        let env = self.environment(&req.to)?;
        let content = RequestContent::Promotion {
            digest: digest.to_string(),
            environment: env.name.clone(),
        };
        let _serial = self.serial.lock().await;
        if let Some(done) = self.replayed(req.request_id.as_deref(), &content).await? {
            return Ok(Recorded::existing(done));
        }
        let key = digest.to_string();
        if let Some(q) = self.db(move |s| s.quarantined(&key)).await? {
            self.observer.promotion_refused(&env.name);
            return Err(ReleaseError::forbidden(format!(
                "{digest} is quarantined (revocation #{}): it cannot be promoted; build, sign and promote a new release",
                q.revocation_id
            )));
        }
        let key = digest.to_string();
        if self.db(move |s| s.artifact(&key)).await?.is_none() {
            return Err(ReleaseError::not_found(format!(
                "{digest} is not in the artifact store: custody push it first"
            )));
        }
        if let Some(from) = env.from.clone() {
            let passed = self.db(move |s| s.releases(&from)).await?;
            if !passed.iter().any(|r| r.digest == digest.to_string()) {
                self.observer.promotion_refused(&env.name);
                return Err(ReleaseError::conflict(format!(
                    "{digest} has not passed {}: promote the same digest there first (custody promote {digest} --to {})",
                    env.from.as_deref().unwrap_or_default(),
                    env.from.as_deref().unwrap_or_default()
                )));
            }
        }
        let name = env.name.clone();
        let current = self.db(move |s| s.current_release(&name)).await?;
        let key = digest.to_string();
        let released = self.db(move |s| s.releases_of(&key)).await?;
        match promotion_outcome(current.as_ref(), &released, &digest.to_string()) {
            // Already current: nothing to do, the same answer as the promotion that made it.
            PromotionOutcome::AlreadyCurrent(c) => return Ok(Recorded::existing(c.clone())),
            // Taking an environment back is a rollback: explicit, logged as one, and what a
            // deploy agent accepts as going back. A promotion of an older digest would tell
            // the agent "forward" and the server "back", and the two would disagree.
            PromotionOutcome::Older { earlier, current } => {
                self.observer.promotion_refused(&env.name);
                return Err(ReleaseError::conflict(format!(
                    "{digest} is an older release of {env} (seq {}; {env} is now at seq {} with {}): a promotion cannot take an environment back; use `custody rollback {env} --to {digest}` (an explicit, logged rollback)",
                    earlier.seq,
                    current.seq,
                    current.digest,
                    env = env.name
                )));
            }
            PromotionOutcome::New => {}
        }
        let verdict = self.decide(&env, digest, &caller.name).await?;
        if !verdict.allowed {
            self.observer.promotion_refused(&env.name);
            self.event(
                &caller.name,
                "promote-denied",
                &digest.to_string(),
                None,
                json!({"environment": env.name, "codes": verdict.denies.iter().map(|d| d.code.clone()).collect::<Vec<_>>()}),
            )
            .await?;
            return Err(ReleaseError::Denied {
                message: format!(
                    "promotion of {digest} to {} denied by policy: {}",
                    env.name,
                    verdict.one_line()
                ),
                verdict: Box::new(verdict),
            });
        }
        let release = self
            .record_release(
                &env,
                digest,
                ReleaseKind::Promotion,
                &caller.name,
                None,
                req.request_id,
                &content,
                current.as_ref(),
                &verdict,
            )
            .await?;
        self.observer.promoted(&env.name);
        Ok(Recorded::new(release))
    }

    /// The release a request id already made, if the id was used: with the same content it
    /// is the answer to this retry; with other content the request is refused (409) naming
    /// the id and what differs. Releases stored before bindings existed are compared field
    /// by field.
    async fn replayed(
        &self,
        request_id: Option<&str>,
        content: &RequestContent,
    ) -> Result<Option<Release>, ReleaseError> {
        let Some(id) = request_id.filter(|id| !id.is_empty()).map(str::to_owned) else {
            return Ok(None);
        };
        let key = id.clone();
        let Some(done) = self.db(move |s| s.release_by_request(&key)).await? else {
            return Ok(None);
        };
        let key = id.clone();
        let bound = self.db(move |s| s.request_binding(&key)).await?;
        let same = match &bound {
            Some(sha) => *sha == content.sha256_hex(),
            None => content.matches_unbound(&done),
        };
        if same {
            return Ok(Some(done));
        }
        let differences = content.differences(&done);
        Err(ReleaseError::conflict(format!(
            "request id {id:?} was already used for another request ({} of {} to {}, seq {}): {}; retry with the same request, or use a new request id",
            done.kind.as_str(),
            done.digest,
            done.environment,
            done.seq,
            if differences.is_empty() {
                format!(
                    "its content differs (SHA-256 {}, bound to {})",
                    content.sha256_hex(),
                    bound.as_deref().unwrap_or("the fields of that release")
                )
            } else {
                format!("this one differs in {}", differences.join(", "))
            }
        )))
    }

    /// Signs, logs and appends a release (the caller holds `serial`).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn record_release(
        &self,
        env: &Environment,
        digest: Sha256Digest,
        kind: ReleaseKind,
        requested_by: &str,
        reason: Option<String>,
        request_id: Option<String>,
        content: &RequestContent,
        current: Option<&Release>,
        verdict: &Verdict,
    ) -> Result<Release, ReleaseError> {
        let seq = current.map_or(1, |c| c.seq + 1);
        let at = Utc::now();
        let from = match kind {
            ReleaseKind::Promotion => env.from.as_deref(),
            ReleaseKind::Rollback => None,
        };
        let statement = statement::release(&ReleaseFacts {
            digest: &digest,
            environment: &env.name,
            seq,
            kind,
            from_environment: from,
            requested_by,
            policy_digest: &verdict.policy_digest,
            reason: reason.as_deref(),
            at,
            previous: current.map(|c| (c.seq, c.digest.as_str())),
        });
        let vsa = custody_policy::vsa::summary(
            verdict,
            &self.verifier_id,
            &format!("custody:environment:{}", env.name),
        );
        // Both go into the same log batch: one wait for a checkpoint, not two.
        let ((bundle, log_index), vsa) = tokio::try_join!(self.sign_and_log(&statement), async {
            match &vsa {
                Some(vsa) => Ok(Some(self.sign_and_log(vsa).await?.0)),
                None => Ok(None),
            }
        })?;
        let release = Release {
            environment: env.name.clone(),
            seq,
            digest: digest.to_string(),
            kind,
            from_environment: from.map(str::to_owned),
            requested_by: requested_by.to_owned(),
            at,
            policy_digest: verdict.policy_digest.clone(),
            reason,
            request_id,
            bundle,
            log_index: Some(log_index),
            vsa,
        };
        // The event is stored with the release, so a server killed in between cannot keep
        // one without the other.
        let event = Event {
            id: 0,
            at: Utc::now(),
            actor: requested_by.to_owned(),
            action: kind.as_str().to_owned(),
            object: release.digest.clone(),
            log_index: Some(log_index),
            detail: json!({"environment": env.name, "seq": seq, "reason": release.reason}),
        };
        let r = release.clone();
        let bound = content.sha256_hex();
        match self
            .db(move |s| s.append_release_for_request(&r, &event, &bound))
            .await
        {
            Ok(_) => {}
            Err(
                e @ ReleaseError::Store(StoreError::Conflict { .. } | StoreError::Duplicate(_)),
            ) => {
                // Another replica won; if it was this very request (same id and content),
                // that is ours; the same id with other content is refused.
                if let Some(done) = self
                    .replayed(release.request_id.as_deref(), content)
                    .await?
                {
                    return Ok(done);
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        }
        // A new current release changes what admission admits for every digest there.
        (self.on_change)(None);
        tracing::info!(environment = %env.name, seq, digest = %release.digest, kind = kind.as_str(), index = log_index, "release recorded");
        Ok(release)
    }

    /// An explicit rollback: to `digest` (which must be in the environment's history) or to
    /// the most recent earlier release that passes.
    pub async fn rollback(
        &self,
        caller: &Caller,
        req: RollbackRequest,
    ) -> Result<Recorded<Release>, ReleaseError> {
        caller.require(Role::ReleaseManager, "rolling back")?;
        let env = self.environment(&req.environment)?;
        let target = req.digest.as_deref().map(parse_digest).transpose()?;
        let content = RequestContent::Rollback {
            environment: env.name.clone(),
            digest: target.map(|t| t.to_string()),
            reason: req.reason.clone(),
        };
        let _serial = self.serial.lock().await;
        if let Some(done) = self.replayed(req.request_id.as_deref(), &content).await? {
            return Ok(Recorded::existing(done));
        }
        let name = env.name.clone();
        let history = self.db(move |s| s.releases(&name)).await?;
        let Some(current) = history.last().cloned() else {
            return Err(ReleaseError::conflict(format!(
                "{} has no release to roll back from",
                env.name
            )));
        };
        let quarantined: BTreeSet<String> = self
            .db(|s| s.quarantine_list())
            .await?
            .into_iter()
            .map(|q| q.digest)
            .collect();
        let mut refusals = Vec::new();
        for r in history.iter().rev() {
            if r.digest == current.digest {
                continue;
            }
            if let Some(t) = &target
                && r.digest != t.to_string()
            {
                continue;
            }
            if quarantined.contains(&r.digest) {
                refusals.push(format!("{} is quarantined", r.digest));
                continue;
            }
            let digest = parse_digest(&r.digest)?;
            let verdict = self.decide(&env, digest, &r.requested_by).await?;
            if !verdict.allowed {
                refusals.push(format!(
                    "{} no longer passes: {}",
                    r.digest,
                    verdict.one_line()
                ));
                continue;
            }
            let release = self
                .record_release(
                    &env,
                    digest,
                    ReleaseKind::Rollback,
                    &caller.name,
                    Some(req.reason.clone()),
                    req.request_id.clone(),
                    &content,
                    Some(&current),
                    &verdict,
                )
                .await?;
            self.observer.rolled_back(&env.name);
            return Ok(Recorded::new(release));
        }
        Err(ReleaseError::conflict(format!(
            "no earlier release of {} can be rolled back to{}{}",
            env.name,
            if refusals.is_empty() { "" } else { ": " },
            refusals.join("; ")
        )))
    }
}
