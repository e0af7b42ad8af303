//! The release state of the environment an artifact is being admitted to (`input.release`,
//! `docs/policy-input.md`): the environment's current release, how many earlier releases it
//! still admits, and where the candidate digest stands among them (released here and when,
//! quarantined, approved). The built-in library denies on it (`release-not-current`,
//! `release-quarantined`, `release-unapproved`) whenever it is present.
//!
//! The server fills it at admission for a namespace mapped to an environment that has
//! releases; without it (`None`: an unmapped namespace, an environment without releases,
//! `custody verify`) the input has no `release` field and every decision is what it was before.

use serde::Serialize;

/// How many releases before the current one an environment admits by default: one, so a
/// rolling update from release N−1 to N (and a pod of N−1 rescheduled while it runs) is not
/// denied half-way. An environment that wants only its current release sets 0.
pub const DEFAULT_ALLOW_PREVIOUS: u64 = 1;

/// An environment's release state as seen by one admission (`input.release`). Build it with
/// [`ReleaseState::new`], which derives `candidate.is_current` and
/// `candidate.releases_behind` so the two always agree with `current` and `release_seq`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReleaseState {
    /// The environment (release config `[[environment]] name`).
    pub environment: String,
    /// Its current release (the latest in its history); `None` when it has none yet.
    pub current: Option<ReleaseRef>,
    /// How many releases before the current one are still admitted (rolling updates; 0 admits
    /// only the current release). [`DEFAULT_ALLOW_PREVIOUS`] unless the environment says.
    pub allow_previous: u64,
    /// The digest being admitted, and where it stands in this environment.
    pub candidate: ReleaseCandidate,
}

/// One release of an environment: its position in the environment's history and its digest.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReleaseRef {
    /// The release's sequence number (1, 2, …; promotions and rollbacks alike).
    pub seq: u64,
    /// `sha256:<hex>`.
    pub digest: String,
}

/// The artifact being admitted, in the environment's release history.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReleaseCandidate {
    /// `sha256:<hex>` (the same as `input.artifact.digest`).
    pub digest: String,
    /// True when it is the environment's current release.
    pub is_current: bool,
    /// The latest sequence number at which it was released in this environment; `None` when it
    /// never was.
    pub release_seq: Option<u64>,
    /// How many releases the current one is ahead of `release_seq` (0 for the current
    /// release); `None` when it was never released here or there is no current release.
    pub releases_behind: Option<u64>,
    /// Set when the digest is quarantined (a revocation took out evidence it was released on).
    pub quarantine: Option<QuarantineRef>,
    /// The approvals the environment requires and who approved this digest for it; `None` when
    /// the environment requires none.
    pub approvals: Option<ReleaseApprovals>,
}

/// Why a digest is quarantined: the revocation that put it there.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct QuarantineRef {
    /// The revocation's id (`#3` in messages).
    pub revocation_id: u64,
    /// What it revoked (`key:ID`, `identity:SAN`, `builder:ID`, `digest:sha256:HEX`).
    pub target: String,
    pub reason: String,
    /// When the digest was quarantined (RFC 3339).
    pub at: String,
}

/// An environment's approval rule (release config `approvals = { required, group }`) and the
/// approvals of the candidate that count toward it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReleaseApprovals {
    /// Distinct approving principals needed.
    pub required: u32,
    /// The group they must belong to.
    pub group: String,
    /// The distinct principals whose approval of this digest for this environment counts
    /// (verified, by a member of `group`, neither the builder nor the promoter, not revoked),
    /// sorted.
    pub approved_by: Vec<String>,
}

/// Where a digest stands in an environment's history, as the release store knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CandidateFacts {
    /// The latest sequence number at which the digest was released in the environment.
    pub release_seq: Option<u64>,
    pub quarantine: Option<QuarantineRef>,
    pub approvals: Option<ReleaseApprovals>,
}

impl ReleaseState {
    /// The release state for admitting `digest` to `environment`, whose current release is
    /// `current` and which admits `allow_previous` releases before it.
    pub fn new(
        environment: impl Into<String>,
        current: Option<ReleaseRef>,
        allow_previous: u64,
        digest: impl Into<String>,
        facts: CandidateFacts,
    ) -> ReleaseState {
        let digest = digest.into();
        let is_current = current
            .as_ref()
            .is_some_and(|c| c.digest.eq_ignore_ascii_case(&digest));
        let releases_behind = match (&current, facts.release_seq) {
            _ if is_current => Some(0),
            (Some(c), Some(seq)) => Some(c.seq.saturating_sub(seq)),
            _ => None,
        };
        let mut approvals = facts.approvals;
        if let Some(a) = &mut approvals {
            a.approved_by.sort();
            a.approved_by.dedup();
        }
        ReleaseState {
            environment: environment.into(),
            candidate: ReleaseCandidate {
                digest,
                is_current,
                release_seq: match (is_current, &current) {
                    (true, Some(c)) => Some(facts.release_seq.map_or(c.seq, |s| s.max(c.seq))),
                    _ => facts.release_seq,
                },
                releases_behind,
                quarantine: facts.quarantine,
                approvals,
            },
            current,
            allow_previous,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn current(seq: u64, digest: &str) -> Option<ReleaseRef> {
        Some(ReleaseRef {
            seq,
            digest: digest.into(),
        })
    }

    fn at(seq: Option<u64>) -> CandidateFacts {
        CandidateFacts {
            release_seq: seq,
            ..Default::default()
        }
    }

    #[test]
    fn position_is_derived_from_the_history() {
        let s = ReleaseState::new("prod", current(7, "sha256:cc"), 1, "sha256:CC", at(None));
        assert!(s.candidate.is_current, "digests compare in any case");
        assert_eq!(
            (s.candidate.release_seq, s.candidate.releases_behind),
            (Some(7), Some(0))
        );
        let s = ReleaseState::new("prod", current(7, "sha256:cc"), 1, "sha256:aa", at(Some(5)));
        assert!(!s.candidate.is_current);
        assert_eq!(s.candidate.releases_behind, Some(2));
        let never = ReleaseState::new("prod", current(7, "sha256:cc"), 1, "sha256:aa", at(None));
        assert_eq!(never.candidate.releases_behind, None);
        let empty = ReleaseState::new("prod", None, 1, "sha256:aa", at(Some(3)));
        assert_eq!(
            (empty.candidate.is_current, empty.candidate.releases_behind),
            (false, None)
        );
    }

    #[test]
    fn approvers_are_distinct_and_sorted() {
        let facts = CandidateFacts {
            approvals: Some(ReleaseApprovals {
                required: 2,
                group: "release-approvers".into(),
                approved_by: vec!["carol".into(), "alice".into(), "carol".into()],
            }),
            ..Default::default()
        };
        let s = ReleaseState::new("prod", current(2, "sha256:aa"), 0, "sha256:aa", facts);
        assert_eq!(
            s.candidate.approvals.unwrap().approved_by,
            ["alice", "carol"]
        );
    }

    #[test]
    fn serializes_as_documented() {
        let s = ReleaseState::new("prod", current(7, "sha256:cc"), 1, "sha256:aa", at(Some(6)));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "environment": "prod",
                "current": {"seq": 7, "digest": "sha256:cc"},
                "allow_previous": 1,
                "candidate": {"digest": "sha256:aa", "is_current": false, "release_seq": 6,
                              "releases_behind": 1, "quarantine": null, "approvals": null}
            })
        );
    }
}
