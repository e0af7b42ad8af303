//! Freshness for deploy agents, and withheld bytes.
//!
//! * [`ReleaseService::current_release_statement`]: a signed, short-lived statement that an
//!   environment's current release is `seq` (`digest`), as of now, under the log's current
//!   checkpoint: TUF's timestamp role for releases. It is issued only for a release that is
//!   current and whose digest is neither quarantined nor revoked, so a deploy agent that
//!   requires one cannot be made to activate a replayed, stale or revoked release. It is not
//!   logged: it attests state already logged (the release record it names is), and it expires
//!   in minutes; logging one per agent poll would grow the log without adding evidence.
//! * [`ReleaseService::artifact_bytes_for`]: a quarantined or revoked artifact's bytes go to
//!   auditors (and admins) only, for forensics.

use chrono::Utc;
use custody_core::digest::Sha256Digest;
use custody_core::dsse;

use super::{Caller, CurrentReleaseStatement, ReleaseError, ReleaseService, parse_digest};
use crate::model::Role;
use crate::statement::{self, CurrentFacts};

/// How long a current-release statement is valid when the release config does not say.
pub const DEFAULT_CURRENT_RELEASE_LIFETIME: std::time::Duration =
    std::time::Duration::from_secs(300);

impl ReleaseService {
    /// Why `digest` must not be vouched for or served: the quarantine or revocation that
    /// withholds it, in words.
    async fn withheld(&self, digest: &Sha256Digest) -> Result<Option<String>, ReleaseError> {
        let key = digest.to_string();
        if let Some(q) = self.db(move |s| s.quarantined(&key)).await? {
            return Ok(Some(format!(
                "{digest} is quarantined by revocation #{} since {}",
                q.revocation_id,
                statement::rfc3339(q.at)
            )));
        }
        let revocations = self.db(|s| s.revocations()).await?;
        let target = format!("digest:{digest}");
        Ok(revocations
            .iter()
            .find(|r| r.target.eq_ignore_ascii_case(&target))
            .map(|r| format!("{digest} is revoked by revocation #{} ({})", r.id, r.reason)))
    }

    /// A signed current-release statement for environment `name` (see the module docs): 404
    /// before its first release, 409 when its current release is quarantined or revoked.
    pub async fn current_release_statement(
        &self,
        name: &str,
    ) -> Result<CurrentReleaseStatement, ReleaseError> {
        let env = self.environment(name)?.name.clone();
        let n = env.clone();
        let current = self
            .db(move |s| s.current_release(&n))
            .await?
            .ok_or_else(|| {
                ReleaseError::not_found(format!("environment {env:?} has no release yet: there is no current release to vouch for"),
                )
            })?;
        let digest = parse_digest(&current.digest)?;
        if let Some(why) = self.withheld(&digest).await? {
            return Err(ReleaseError::conflict(format!(
                "no current-release statement for {env} release {}: {why}; the server rolls {env} back (POST /api/v1/reconcile), then vouches for the rollback",
                current.seq
            )));
        }
        let lifetime = self
            .config()
            .current_release_lifetime
            .unwrap_or(DEFAULT_CURRENT_RELEASE_LIFETIME);
        let lifetime = chrono::Duration::from_std(lifetime)
            .map_err(|e| ReleaseError::internal(format!("current_release_lifetime: {e}")))?;
        let checkpoint = self.checkpoint().await?;
        let checkpoint = Some((checkpoint.size, checkpoint.root));
        let issued_at = Utc::now();
        let facts = CurrentFacts {
            environment: env.clone(),
            seq: current.seq,
            digest,
            release_bundle: Sha256Digest::of(current.bundle.as_bytes()),
            release_log_index: current.log_index,
            issued_at,
            expires: issued_at + lifetime,
            checkpoint,
        };
        let envelope = dsse::sign_in_toto(
            &self.key,
            statement::current_release(&facts).to_json_bytes(),
        )
        .map_err(|e| ReleaseError::internal(format!("signing with the release key: {e}")))?;
        let envelope = serde_json::from_str(&envelope.to_json())
            .map_err(|e| ReleaseError::internal(format!("envelope JSON: {e}")))?;
        self.observer.signed("current-release");
        Ok(CurrentReleaseStatement {
            environment: env,
            seq: facts.seq,
            digest: digest.to_string(),
            issued_at: statement::rfc3339(facts.issued_at),
            expires: statement::rfc3339(facts.expires),
            envelope,
        })
    }

    /// An artifact's bytes for `caller`: a quarantined or revoked artifact's only for an
    /// auditor or admin (403 otherwise, naming the digest and the revocation).
    pub async fn artifact_bytes_for(
        &self,
        caller: &Caller,
        digest: &str,
    ) -> Result<Vec<u8>, ReleaseError> {
        let parsed = parse_digest(digest)?;
        if let Some(why) = self.withheld(&parsed).await?
            && caller.require(Role::Auditor, "fetching it").is_err()
        {
            return Err(ReleaseError::Forbidden {
                message: format!(
                    "{why}: its bytes are served only to auditors (for forensics); principal {:?} is none (nothing to deploy: the environment is rolled back)",
                    caller.name
                ),
                missing_role: Some(Role::Auditor),
            });
        }
        self.artifact_bytes(digest).await
    }
}
