//! Approvals: a signed approval counts only if it verifies, is for a stored artifact and a
//! configured environment, is sent by its signer, who is in the environment's approval group
//! and did not build the artifact (separation of duties).

use std::collections::BTreeSet;

use chrono::Utc;
use custody_core::digest::Sha256Digest;
use serde_json::json;

use super::{ApprovalAccepted, Caller, ReleaseError, ReleaseService, dsse_statement, rfc3339};
use crate::model::Role;
use crate::statement;

impl ReleaseService {
    /// Accepts a signed approval: it must verify, be for a stored artifact and a configured
    /// environment, and be signed by a member of the environment's approval group who is not
    /// the artifact's builder. The approval is logged (if it is not yet) and stored as
    /// evidence, so the gate counts it.
    pub async fn approve(
        &self,
        caller: &Caller,
        bytes: &[u8],
    ) -> Result<ApprovalAccepted, ReleaseError> {
        caller.require(Role::Approver, "approving")?;
        let (statement, subject) = dsse_statement(bytes, statement::APPROVAL_V1)?;
        let predicate = statement.predicate.clone();
        let env_name = statement::field(&predicate, "environment")
            .ok_or_else(|| ReleaseError::bad("the approval names no environment"))?;
        let env = self.environment(env_name)?;
        let key = subject.to_string();
        if self.db(move |s| s.artifact(&key)).await?.is_none() {
            return Err(ReleaseError::not_found(format!(
                "approval for unknown artifact {subject}: it is not in the artifact store (custody push it first)"
            )));
        }
        let evidence = self.verify_bundle(bytes, &subject)?;
        let approver = self.principal_of(&evidence).ok_or_else(|| {
            ReleaseError::forbidden(format!(
                    "the approval is signed by {}, which belongs to no principal (list the key under the approver's [[principal]] keys)",
                    evidence.signer_name()
                ),
            )
        })?;
        if approver != caller.name {
            return Err(ReleaseError::forbidden(format!(
                "the approval is signed by {approver:?}'s key but sent with {:?}'s token: approvers send their own approvals",
                caller.name
            )));
        }
        if let Some(rule) = &env.approvals {
            let member = self
                .config()
                .principals
                .iter()
                .any(|p| p.name == approver && p.groups.contains(&rule.group));
            if !member {
                return Err(ReleaseError::forbidden(format!(
                    "{approver:?} is not in group {:?}, whose approvals {} needs",
                    rule.group, env.name
                )));
            }
        }
        let builders = self.builders_of(subject).await?;
        if builders.contains(&approver) {
            return Err(ReleaseError::forbidden(format!(
                "separation of duties: {approver:?} built {subject} (signed its provenance) and cannot approve it; ask another member of the approval group"
            )));
        }
        let (bundle, log_index) = self.ensure_logged(bytes, &evidence).await?;
        let stored = {
            let now = rfc3339(Utc::now());
            let bundle = bundle.clone();
            self.evidence_db(move |s| s.put(bundle.as_bytes(), &[subject], &now))
                .await?
        };
        (self.on_change)(Some(&subject));
        self.event(
            &caller.name,
            "approve",
            &subject.to_string(),
            log_index,
            json!({"environment": env.name, "bundle_digest": stored.bundle_digest.to_string()}),
        )
        .await?;
        self.observer.signed("approval");
        tracing::info!(digest = %subject, environment = %env.name, approver = %approver, "approval stored");
        Ok(ApprovalAccepted {
            digest: subject.to_string(),
            environment: env.name,
            approver,
            log_index,
            bundle_digest: stored.bundle_digest.to_string(),
            duplicate: !stored.new,
        })
    }

    /// The principals who signed verified SLSA provenance for `digest`.
    async fn builders_of(&self, digest: Sha256Digest) -> Result<BTreeSet<String>, ReleaseError> {
        let evidence = self.verified_evidence(digest).await?;
        Ok(self.builders_in(&evidence))
    }

    /// The principals who signed the SLSA provenance among `evidence`.
    pub(super) fn builders_in(
        &self,
        evidence: &[custody_policy::input::Evidence],
    ) -> BTreeSet<String> {
        evidence
            .iter()
            .filter(|e| {
                e.predicate_type.as_deref() == Some(custody_core::intoto::SLSA_PROVENANCE_V1)
            })
            .filter_map(|e| self.principal_of(e))
            .collect()
    }
}
