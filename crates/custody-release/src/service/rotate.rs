//! Key rotation: a statement signed by the old key names its successor and when the old key
//! retires. At that instant the log's size becomes the cut: what the old key signed and logged
//! before it keeps verifying, nothing later counts. The retirement takes effect at its instant:
//! [`ReleaseService::wait_for_retirement`] wakes then, and every release decision checks the
//! instant first.
//!
//! One command, no file edit, no restart: the accepted rotation is recorded with the new
//! public key, and from then on the service trusts the new key beside the old one and gives
//! it the old key's principal (see `loaded`: successors survive reloads of the files). The
//! authority is the old key's signature plus an admin's token; a retired key introduces no
//! successor.

use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use custody_core::digest::Sha256Digest;
use custody_core::keys::PublicKey;
use custody_policy::input::RetiredKey;
use serde_json::json;

use super::{
    Caller, ReleaseError, ReleaseService, RotationAccepted, RotationDetail, SERVER_PRINCIPAL,
    Successor, dsse_statement, rfc3339,
};
use crate::model::Role;
use crate::statement;

/// When the next retirement is due, and a wake-up for whoever waits for it.
#[derive(Debug, Default)]
pub(super) struct Schedule {
    next: Mutex<Option<DateTime<Utc>>>,
    pub(super) changed: tokio::sync::Notify,
}

impl Schedule {
    fn next(&self) -> Option<DateTime<Utc>> {
        *self.next.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_next(&self, next: Option<DateTime<Utc>>) {
        let mut slot = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        if *slot != next {
            *slot = next;
            self.changed.notify_waiters();
        }
    }
}

impl ReleaseService {
    /// Accepts a key rotation: a statement signed by the old key naming its successor and
    /// when the old key retires. The old key must be trusted and not retired; the new one is
    /// trusted from the moment the rotation is accepted (and belongs to the old key's
    /// principal). Logged and recorded; the retirement takes effect at
    /// `retireAt`, when the log's size becomes the cut: what the old key signed and logged
    /// before it keeps verifying, nothing later counts.
    pub async fn rotate(
        &self,
        caller: &Caller,
        bytes: &[u8],
    ) -> Result<RotationAccepted, ReleaseError> {
        caller.require(Role::Admin, "rotating a key")?;
        let (statement, subject) = dsse_statement(bytes, statement::KEY_ROTATION_V1)?;
        let p = statement.predicate.clone();
        let field = |name: &str| {
            statement::field(&p, name)
                .map(str::to_owned)
                .ok_or_else(|| ReleaseError::bad(format!("the key rotation has no {name}")))
        };
        let (old_id, new_id, new_pem) = (field("oldKeyId")?, field("newKeyId")?, field("newKey")?);
        let retire_at: DateTime<Utc> = field("retireAt")?
            .parse()
            .map_err(|e| ReleaseError::bad(format!("retireAt: {e}")))?;
        if subject != Sha256Digest::of(format!("key:{new_id}").as_bytes()) {
            return Err(ReleaseError::bad(
                "the rotation's subject is not the digest of key:<new key id> (make it with custody key rotate)",
            ));
        }
        let new_key = PublicKey::from_pem(new_pem.as_bytes())
            .map_err(|e| ReleaseError::bad(format!("newKey: {e}")))?;
        if new_key.key_id().to_string() != new_id {
            return Err(ReleaseError::bad("newKeyId is not the id of newKey"));
        }
        if new_id == old_id {
            return Err(ReleaseError::bad("the new key is the old key"));
        }
        let evidence = self.verify_bundle(bytes, &subject)?;
        if evidence.signer.key_id.as_deref() != Some(old_id.as_str()) {
            return Err(ReleaseError::forbidden(format!(
                "a rotation must be signed by the old key {old_id}; this one is signed by {}",
                evidence.signer_name()
            )));
        }
        if self
            .revocations()
            .retired()
            .iter()
            .any(|r| r.key_id == old_id)
        {
            return Err(ReleaseError::conflict(format!(
                "the old key {old_id} is retired already: a retired key introduces no successor (rotate from the key that replaced it)"
            )));
        }
        let (_, log_index) = self.ensure_logged(bytes, &evidence).await?;
        let object = format!("key:{old_id}");
        let detail = RotationDetail {
            old_key_id: old_id,
            new_key_id: new_id,
            retire_at: rfc3339(retire_at),
            reason: statement::field(&p, "reason")
                .unwrap_or("rotated")
                .to_owned(),
        };
        let mut recorded = serde_json::to_value(&detail).map_err(ReleaseError::internal)?;
        // The successor's public key: with it the server trusts the new key from now on
        // (beside the old one, for the overlap) and gives it the old key's principal.
        recorded["new_key"] = json!(new_pem);
        self.event(&caller.name, "key-rotate", &object, log_index, recorded)
            .await?;
        self.observer.signed("key_rotation");
        let retired = self.refresh_retirements().await?;
        // Tell every replica (through the server's change feed) so each learns the schedule
        // and wakes at the retirement's instant itself, even if this one is down by then.
        (self.on_change)(None);
        Ok(RotationAccepted {
            rotation: detail,
            log_index,
            retired,
        })
    }

    /// Fixes the cut of every rotation whose retirement time has come (the log's size then),
    /// and publishes the retired keys to every gate decision. Returns them. Also learns when
    /// the next retirement is due (see [`Self::wait_for_retirement`]).
    pub async fn refresh_retirements(&self) -> Result<Vec<RetiredKey>, ReleaseError> {
        let events = self.db(|s| s.events(None)).await?;
        let now = Utc::now();
        let mut retired = Vec::new();
        let mut next: Option<DateTime<Utc>> = None;
        let successors = successors(&events);
        for e in events.iter().filter(|e| e.action == "key-rotate") {
            let old = e.detail["old_key_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let new = e.detail["new_key_id"].as_str().map(str::to_owned);
            let Some(retire_at) = e.detail["retire_at"]
                .as_str()
                .and_then(|t| t.parse::<DateTime<Utc>>().ok())
            else {
                continue;
            };
            let cut = events
                .iter()
                .find(|x| x.action == "key-retire" && x.object == e.object)
                .and_then(|x| x.detail["cut"].as_u64());
            let cut = match cut {
                Some(c) => c,
                None if retire_at <= now => {
                    let size = self.log_size().await?;
                    self.event(
                        SERVER_PRINCIPAL,
                        "key-retire",
                        &e.object,
                        None,
                        json!({"cut": size, "successor": new}),
                    )
                    .await?;
                    self.alert(
                        json!({"event": "key-retired", "key": old, "successor": new, "cut": size}),
                    )
                    .await;
                    size
                }
                None => {
                    next = Some(next.map_or(retire_at, |n| n.min(retire_at)));
                    continue;
                }
            };
            retired.push(RetiredKey {
                key_id: old,
                cut,
                successor: new,
                reason: format!("rotated (event #{})", e.id),
            });
        }
        self.retirements.set_next(next);
        let new_keys = self.rules.set_successors(successors);
        if *self.revoked.retired() != retired {
            self.revoked.set_retired(retired.clone());
            (self.on_change)(None);
        } else if new_keys {
            (self.on_change)(None);
        }
        Ok(retired)
    }

    /// When the next known retirement takes effect (`None`: none is waiting).
    pub fn next_retirement_at(&self) -> Option<DateTime<Utc>> {
        self.retirements.next()
    }

    /// Whether a retirement's instant has come and [`Self::refresh_retirements`] has not
    /// applied it yet.
    pub fn retirement_due(&self) -> bool {
        self.retirements.next().is_some_and(|t| t <= Utc::now())
    }

    /// Returns at the instant the next retirement is due (at once if one is due now); a new
    /// rotation that retires earlier wakes it. The server's task runs
    /// [`Self::refresh_retirements`] after it: retirements take effect at their instant, not
    /// on a polling tick.
    pub async fn wait_for_retirement(&self) {
        loop {
            let changed = self.retirements.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let next = self.retirements.next();
            match next {
                Some(t) => {
                    let wait = (t - Utc::now()).to_std().unwrap_or_default();
                    if wait.is_zero() {
                        return;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(wait) => return,
                        () = &mut changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }

    async fn log_size(&self) -> Result<u64, ReleaseError> {
        Ok(self.checkpoint().await?.size)
    }
}

/// The successor keys the rotations in `events` introduced, in order. A rotation recorded
/// before successors were kept (no `new_key`) adds none: its new key came from the files.
fn successors(events: &[crate::model::Event]) -> Vec<Successor> {
    events
        .iter()
        .filter(|e| e.action == "key-rotate")
        .filter_map(|e| {
            let old_key_id = e.detail["old_key_id"].as_str()?.to_owned();
            let pem = e.detail["new_key"].as_str()?;
            match PublicKey::from_pem(pem.as_bytes()) {
                Ok(key) => Some(Successor { old_key_id, key }),
                Err(err) => {
                    tracing::warn!(event = e.id, error = %err, "a recorded rotation's new key does not parse: ignored");
                    None
                }
            }
        })
        .collect()
}
