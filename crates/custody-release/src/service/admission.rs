//! Admission follows releases: the release state of an environment as one admission sees it
//! (`input.release`, `docs/policy-input.md`). The current release, the latest seq at which
//! the candidate digest was released there, its quarantine, and the approvals recorded for it
//! in the environment's approval group.
//!
//! Approvals count as promotion counts them, less the age limit: verified approval
//! attestations for this environment, signed by a member of the group who neither built the
//! artifact (signed its provenance) nor promoted it here, and not revoked. An approval's age
//! does not matter at admission: it gated the promotion, and a pod rescheduled a month later
//! runs the same release.
//!
//! Fast by caching: each environment's history (one store read), the quarantine list (one
//! read shared by every environment) and each digest's approvers are kept in memory until a
//! release changes ([`ReleaseService`]'s change callback, or [`ReleaseService::refresh`] for a
//! change another replica made). A state computed while a change happened is answered but not
//! kept (an epoch counter), so no state older than the change is served from memory.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use custody_core::digest::Sha256Digest;
use custody_policy::input::Evidence;
use custody_policy::release::{
    CandidateFacts, QuarantineRef, ReleaseApprovals, ReleaseRef, ReleaseState,
};

use super::{ReleaseError, ReleaseService, rfc3339};
use crate::config::{ApprovalRule, Environment};
use crate::model::{Quarantine, Release, ReleaseKind};
use crate::statement;

/// What admission reads from one environment's history.
#[derive(Debug)]
struct History {
    /// Oldest first.
    releases: Vec<Release>,
}

impl History {
    /// The latest release of `digest` (any case) here, of any kind.
    fn latest_of(&self, digest: &str) -> Option<&Release> {
        self.releases
            .iter()
            .rev()
            .find(|r| r.digest.eq_ignore_ascii_case(digest))
    }

    /// Who asked for the latest promotion of `digest` here.
    fn promoter_of(&self, digest: &str) -> Option<&str> {
        self.releases
            .iter()
            .rev()
            .find(|r| r.kind == ReleaseKind::Promotion && r.digest.eq_ignore_ascii_case(digest))
            .map(|r| r.requested_by.as_str())
    }
}

/// (environment, digest) → the principals whose approvals count.
type Approvers = HashMap<(String, String), Arc<Vec<String>>>;

/// The release states' memory: dropped whole on every release change.
#[derive(Debug, Default)]
pub(super) struct ReleaseStates {
    epoch: AtomicU64,
    histories: RwLock<HashMap<String, Arc<History>>>,
    quarantined: RwLock<Option<Arc<HashMap<String, Quarantine>>>>,
    approvers: RwLock<Approvers>,
}

fn read<T: Clone, K: std::hash::Hash + Eq>(map: &RwLock<HashMap<K, T>>, key: &K) -> Option<T> {
    map.read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(key)
        .cloned()
}

impl ReleaseStates {
    /// Forgets everything (a release, quarantine, revocation or approval changed).
    pub(super) fn clear(&self) {
        // The epoch moves first: a computation that read the store before this clear does
        // not put its result back afterwards.
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.histories
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        *self
            .quarantined
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
        self.approvers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Keeps `value` unless a clear happened since `epoch`.
    fn keep<K: std::hash::Hash + Eq, T>(
        &self,
        map: &RwLock<HashMap<K, T>>,
        epoch: u64,
        key: K,
        value: T,
    ) {
        let mut map = map.write().unwrap_or_else(PoisonError::into_inner);
        if self.epoch() == epoch {
            map.insert(key, value);
        }
    }
}

impl ReleaseService {
    /// The environment whose releases admission in Kubernetes namespace `namespace` follows
    /// (release config `namespaces`); `None` for an unmapped namespace.
    pub fn environment_for_namespace(&self, namespace: &str) -> Option<String> {
        self.config()
            .environment_for_namespace(namespace)
            .map(|e| e.name.clone())
    }

    /// The release state for admitting `digest` to `environment` (`input.release`), or
    /// `None` when the environment has no release yet (admission then decides as before).
    /// Warm: no store read. Cold: one read of the environment's history, one of the
    /// quarantine list, and for an environment with an approval rule the digest's evidence.
    pub async fn release_state(
        &self,
        environment: &str,
        digest: &Sha256Digest,
    ) -> Result<Option<ReleaseState>, ReleaseError> {
        let env = self.environment(environment)?.clone();
        let history = self.admission_history(&env.name).await?;
        let Some(current) = history.releases.last() else {
            return Ok(None);
        };
        let text = digest.to_string();
        let quarantine = self.quarantine_of(&text).await?;
        let approvals = match &env.approvals {
            Some(rule) => Some(ReleaseApprovals {
                required: rule.required,
                group: rule.group.clone(),
                approved_by: self.approvers(&env, rule, digest, &history).await?.to_vec(),
            }),
            None => None,
        };
        let facts = CandidateFacts {
            release_seq: history.latest_of(&text).map(|r| r.seq),
            quarantine,
            approvals,
        };
        Ok(Some(ReleaseState::new(
            env.name.clone(),
            Some(ReleaseRef {
                seq: current.seq,
                digest: current.digest.clone(),
            }),
            env.admit_previous,
            text,
            facts,
        )))
    }

    /// Forgets the release states kept for admission (a change this replica did not make:
    /// another replica's, learned from the change feed). Changes made here forget them by
    /// themselves.
    pub fn forget_release_states(&self) {
        self.states.clear();
    }

    /// Catches up with a change another replica made (learned from the change feed): reloads
    /// the revocations and key retirements every gate decision applies from the store, and
    /// forgets the release states. The caller then drops its cached decisions.
    pub async fn refresh(&self) -> Result<(), ReleaseError> {
        self.states.clear();
        let revocations = self.db(|s| s.revocations()).await?;
        self.revoked.set(&revocations);
        self.refresh_retirements().await?;
        Ok(())
    }

    async fn admission_history(&self, environment: &str) -> Result<Arc<History>, ReleaseError> {
        let key = environment.to_owned();
        if let Some(h) = read(&self.states.histories, &key) {
            return Ok(h);
        }
        let epoch = self.states.epoch();
        let name = key.clone();
        let releases = self.db(move |s| s.releases(&name)).await?;
        let history = Arc::new(History { releases });
        self.states
            .keep(&self.states.histories, epoch, key, history.clone());
        Ok(history)
    }

    async fn quarantine_of(&self, digest: &str) -> Result<Option<QuarantineRef>, ReleaseError> {
        let known = self
            .states
            .quarantined
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let all = match known {
            Some(all) => all,
            None => {
                let epoch = self.states.epoch();
                let list = self.db(|s| s.quarantine_list()).await?;
                let all: Arc<HashMap<String, Quarantine>> = Arc::new(
                    list.into_iter()
                        .map(|q| (q.digest.to_ascii_lowercase(), q))
                        .collect(),
                );
                let mut slot = self
                    .states
                    .quarantined
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                if self.states.epoch() == epoch {
                    *slot = Some(all.clone());
                }
                all
            }
        };
        let Some(q) = all.get(&digest.to_ascii_lowercase()) else {
            return Ok(None);
        };
        let revoked = self.revoked.get();
        let revocation = revoked.iter().find(|r| r.id == q.revocation_id);
        Ok(Some(QuarantineRef {
            revocation_id: q.revocation_id,
            target: revocation.map(|r| r.target.clone()).unwrap_or_default(),
            reason: revocation.map(|r| r.reason.clone()).unwrap_or_default(),
            at: rfc3339(q.at),
        }))
    }

    /// The principals whose approval of `digest` for `env` counts (see the module docs).
    async fn approvers(
        &self,
        env: &Environment,
        rule: &ApprovalRule,
        digest: &Sha256Digest,
        history: &History,
    ) -> Result<Arc<Vec<String>>, ReleaseError> {
        let key = (env.name.clone(), digest.to_string());
        if let Some(a) = read(&self.states.approvers, &key) {
            return Ok(a);
        }
        let epoch = self.states.epoch();
        let verified = self.verified_evidence(*digest).await?;
        let mut rejected = Vec::new();
        let evidence =
            custody_policy::input::apply_revocations(verified, &mut rejected, &self.revoked.get());
        let mut excluded = self.builders_in(&evidence);
        if let Some(promoter) = history.promoter_of(&key.1) {
            excluded.insert(promoter.to_owned());
        }
        let counted = Arc::new(self.approvals_counted(&evidence, &env.name, rule, &excluded));
        self.states
            .keep(&self.states.approvers, epoch, key, counted.clone());
        Ok(counted)
    }

    /// Signers (principals) of verified approvals for `environment` by members of the rule's
    /// group, less `excluded`; sorted, distinct.
    fn approvals_counted(
        &self,
        evidence: &[Evidence],
        environment: &str,
        rule: &ApprovalRule,
        excluded: &BTreeSet<String>,
    ) -> Vec<String> {
        let config = self.config();
        let members: BTreeSet<&str> = config
            .principals
            .iter()
            .filter(|p| p.groups.contains(&rule.group))
            .map(|p| p.name.as_str())
            .collect();
        let counted: BTreeSet<String> = evidence
            .iter()
            .filter(|e| e.predicate_type.as_deref() == Some(statement::APPROVAL_V1))
            .filter(|e| {
                e.statement
                    .as_ref()
                    .and_then(|s| s.get("predicate"))
                    .and_then(|p| statement::field(p, "environment"))
                    == Some(environment)
            })
            .filter_map(|e| self.principal_of(e))
            .filter(|p| members.contains(p.as_str()) && !excluded.contains(p))
            .collect();
        counted.into_iter().collect()
    }
}
