//! The agent's anti-replay state: `<state dir>/state.json`.
//!
//! It holds the highest seq deployed, the digest deployed at it, and the history of deployed
//! releases (oldest first, at most [`HISTORY_LIMIT`]). It is written to a temporary file in the
//! same directory, fsynced, renamed over `state.json`, and the directory fsynced: a crash
//! leaves the old state or the new one, never a torn file.

use std::path::Path;

use chrono::{DateTime, Utc};
use custody_core::digest::Sha256Digest;
use serde::{Deserialize, Serialize};

use super::{AgentError, Refusal, VerifiedRelease};
use crate::model::ReleaseKind;

/// The state file's name in the state directory.
pub const STATE_FILE: &str = "state.json";
/// Deployed releases remembered (to recognise a return to an older digest).
pub const HISTORY_LIMIT: usize = 1000;

const VERSION: u32 = 1;

/// One deployed release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployedRelease {
    pub seq: u64,
    /// `sha256:<hex>`.
    pub digest: String,
    pub kind: ReleaseKind,
    /// When the agent activated it.
    pub at: DateTime<Utc>,
}

/// What the agent deployed for one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentState {
    pub version: u32,
    pub environment: String,
    /// The highest seq deployed (0 before the first deployment).
    pub seq: u64,
    /// The digest deployed at `seq`.
    pub digest: Option<String>,
    /// Deployed releases, oldest first; the last is the active one.
    pub history: Vec<DeployedRelease>,
}

/// What to do with a verified release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// It is what is deployed: nothing to do.
    Unchanged,
    /// It may replace what is deployed.
    Deploy,
}

impl AgentState {
    /// The state of an agent that deployed nothing yet.
    pub fn new(environment: &str) -> Self {
        Self {
            version: VERSION,
            environment: environment.to_owned(),
            seq: 0,
            digest: None,
            history: Vec::new(),
        }
    }

    /// Reads `<dir>/state.json`; a missing file is the empty state. A state of another
    /// environment, or one that does not hang together, is an error (never silently reset:
    /// that would forget what was deployed and re-open replays).
    pub fn load(dir: &Path, environment: &str) -> Result<Self, AgentError> {
        let path = dir.join(STATE_FILE);
        let err = |message: String| AgentError::State {
            path: path.clone(),
            message,
        };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::new(environment));
            }
            Err(e) => return Err(err(format!("cannot read: {e}"))),
        };
        let state: Self = serde_json::from_slice(&bytes).map_err(|e| {
            err(format!(
                "not a deploy state file: {e} (restore it from a backup; deleting it makes the agent forget what it deployed)"
            ))
        })?;
        if state.version != VERSION {
            return Err(err(format!(
                "version {} is not {VERSION} (written by another custody version)",
                state.version
            )));
        }
        if state.environment != environment {
            return Err(err(format!(
                "it is the state of environment {:?}, not {environment:?}: give each environment its own --state directory",
                state.environment
            )));
        }
        let consistent = match (state.history.last(), &state.digest) {
            (None, None) => state.seq == 0,
            (Some(last), Some(digest)) => last.seq == state.seq && &last.digest == digest,
            _ => false,
        };
        if !consistent {
            return Err(err(
                "seq, digest and history disagree (edited by hand?): restore it from a backup"
                    .into(),
            ));
        }
        Ok(state)
    }

    /// Writes `<dir>/state.json` atomically and durably.
    pub fn save(&self, dir: &Path) -> Result<(), AgentError> {
        let path = dir.join(STATE_FILE);
        let err = |e: std::io::Error| AgentError::State {
            path: path.clone(),
            message: format!("cannot write: {e}"),
        };
        let mut json = serde_json::to_vec_pretty(self).map_err(|e| AgentError::State {
            path: path.clone(),
            message: e.to_string(),
        })?;
        json.push(b'\n');
        custody_core::fsio::write_atomic(&path, &json, false).map_err(err)
    }

    /// The active release, if any.
    pub fn deployed(&self) -> Option<&DeployedRelease> {
        self.history.last()
    }

    /// Decides whether `release` may be deployed over what this state says is deployed.
    pub fn decide(&self, release: &VerifiedRelease) -> Result<Decision, AgentError> {
        let refuse = |code: &'static str, reason: String| {
            AgentError::Refused(Box::new(Refusal {
                environment: release.environment.clone(),
                seq: release.seq,
                digest: release.digest.to_string(),
                code,
                reason,
            }))
        };
        let Some(current) = self.digest.as_deref() else {
            return Ok(Decision::Deploy);
        };
        let digest = release.digest.to_string();
        match release.seq.cmp(&self.seq) {
            std::cmp::Ordering::Less => Err(refuse(
                "release.stale",
                format!(
                    "seq {} is lower than seq {} ({current}) that this agent already deployed: a stale or replayed release",
                    release.seq, self.seq
                ),
            )),
            std::cmp::Ordering::Equal if digest == current => Ok(Decision::Unchanged),
            std::cmp::Ordering::Equal => Err(refuse(
                "release.equivocation",
                format!(
                    "this agent deployed seq {} as {current}; a release with the same seq and another digest means the server signed two different releases",
                    self.seq
                ),
            )),
            std::cmp::Ordering::Greater => {
                if release.seq == self.seq + 1 {
                    let continues = release
                        .previous
                        .as_ref()
                        .is_some_and(|(seq, d)| *seq == self.seq && same_digest(d, current));
                    if !continues {
                        let claimed = match &release.previous {
                            Some((seq, d)) => format!("seq {seq} ({d})"),
                            None => "nothing".to_owned(),
                        };
                        return Err(refuse(
                            "release.fork",
                            format!(
                                "it says it replaces {claimed}, but this agent deployed seq {} as {current}: the server's history forked",
                                self.seq
                            ),
                        ));
                    }
                }
                let older = digest != current && self.history.iter().any(|h| h.digest == digest);
                if older && release.kind != ReleaseKind::Rollback {
                    return Err(refuse(
                        "release.rollback",
                        format!(
                            "it goes back to {digest}, which this agent deployed before {current}, but it is a {}, not a signed rollback",
                            release.kind.as_str()
                        ),
                    ));
                }
                Ok(Decision::Deploy)
            }
        }
    }

    /// Records `release` as deployed at `at`.
    pub fn record(&mut self, release: &VerifiedRelease, at: DateTime<Utc>) {
        let digest = release.digest.to_string();
        let entry = DeployedRelease {
            seq: release.seq,
            digest: digest.clone(),
            kind: release.kind,
            at,
        };
        match self.history.last_mut() {
            // Activated again (repair): the same seq, a new time.
            Some(last) if last.seq == release.seq && last.digest == digest => *last = entry,
            _ => self.history.push(entry),
        }
        if self.history.len() > HISTORY_LIMIT {
            let excess = self.history.len() - HISTORY_LIMIT;
            self.history.drain(..excess);
        }
        self.seq = release.seq;
        self.digest = Some(digest);
    }

    /// Deployed digests, newest first, each once.
    pub fn recent(&self) -> Vec<Sha256Digest> {
        let mut out: Vec<Sha256Digest> = Vec::new();
        for h in self.history.iter().rev() {
            if let Ok(d) = h.digest.parse::<Sha256Digest>()
                && !out.contains(&d)
            {
                out.push(d);
            }
        }
        out
    }
}

fn same_digest(a: &str, b: &str) -> bool {
    match (a.parse::<Sha256Digest>(), b.parse::<Sha256Digest>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Makes a rename in `dir` durable (the directory switches in `target`).
pub(super) use custody_core::fsio::sync_dir;
