//! Pushing an artifact: its bytes into the content-addressed store, the upload signed and
//! logged the first time; reading the bytes back; recording who stored evidence.

use chrono::Utc;
use serde_json::json;

use super::{Caller, PushRequest, Recorded, ReleaseError, ReleaseService, parse_digest, rfc3339};
use crate::model::{ArtifactRecord, Role};
use crate::statement;

impl ReleaseService {
    /// Stores an artifact's bytes; the upload is signed and logged the first time.
    pub async fn push(
        &self,
        caller: &Caller,
        request: PushRequest,
        bytes: Vec<u8>,
    ) -> Result<Recorded<ArtifactRecord>, ReleaseError> {
        caller.require(Role::Builder, "pushing an artifact")?;
        let claimed = parse_digest(&request.digest)?;
        let name = request.name;
        if let Some(q) = self
            .db(move |s| s.quarantined(&claimed.to_string()))
            .await?
        {
            return Err(ReleaseError::conflict(format!(
                "artifact {claimed} is quarantined (revocation #{} at {}): it cannot be pushed again; build a new release",
                q.revocation_id,
                rfc3339(q.at)
            )));
        }
        let cas = self.cas.clone();
        let size = bytes.len() as u64;
        let (digest, _new) = tokio::task::spawn_blocking(move || cas.put(&bytes, Some(&claimed)))
            .await
            .map_err(ReleaseError::internal)?
            .map_err(|e| match e {
                crate::cas::CasError::Mismatch { .. } => ReleaseError::bad(e.to_string()),
                _ => ReleaseError::internal(e),
            })?;
        let key = digest.to_string();
        if let Some(existing) = self.db(move |s| s.artifact(&key)).await? {
            return Ok(Recorded::existing(existing));
        }
        let now = Utc::now();
        let shown = name.clone().unwrap_or_else(|| "artifact".into());
        let (_, log_index) = self
            .sign_and_log(&statement::upload(&digest, &shown, size, &caller.name, now))
            .await?;
        let record = ArtifactRecord {
            digest: digest.to_string(),
            size,
            name,
            uploaded_by: caller.name.clone(),
            uploaded_at: now,
            log_index: Some(log_index),
        };
        let r = record.clone();
        let new = self.db(move |s| s.put_artifact(&r)).await?;
        if !new {
            let key = digest.to_string();
            if let Some(existing) = self.db(move |s| s.artifact(&key)).await? {
                return Ok(Recorded::existing(existing));
            }
        }
        self.event(
            &caller.name,
            "push",
            &record.digest,
            Some(log_index),
            json!({"size": size, "name": record.name}),
        )
        .await?;
        tracing::info!(digest = %record.digest, by = %caller.name, index = log_index, "artifact stored");
        Ok(Recorded::new(record))
    }

    /// An artifact's bytes (re-hashed on read).
    pub async fn artifact_bytes(&self, digest: &str) -> Result<Vec<u8>, ReleaseError> {
        let digest = parse_digest(digest)?;
        let cas = self.cas.clone();
        tokio::task::spawn_blocking(move || cas.read(&digest))
            .await
            .map_err(ReleaseError::internal)?
            .map_err(ReleaseError::internal)?
            .ok_or_else(|| {
                ReleaseError::not_found(format!(
                    "artifact {digest} is not in the artifact store (custody push it)"
                ))
            })
    }

    /// Records who stored evidence (the evidence store itself is `gate_api`'s).
    pub async fn evidence_stored(
        &self,
        who: &str,
        bundle_digest: &str,
        subjects: &[String],
    ) -> Result<(), ReleaseError> {
        for s in subjects {
            self.event(
                who,
                "evidence",
                s,
                None,
                json!({ "bundle_digest": bundle_digest }),
            )
            .await?;
        }
        Ok(())
    }
}
