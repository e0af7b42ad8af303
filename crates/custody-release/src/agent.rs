//! The deploy agent's logic, without HTTP: is this release the server's, is it newer than what
//! is deployed, are these the bytes it names, and how it becomes the active release.
//!
//! `custody deploy` fetches an environment's current [`Release`] and its artifact; this module
//! decides. Everything fails closed: a release is deployed only when
//!
//! 1. [`verify_release`]: its bundle's DSSE signature verifies with one of the release keys
//!    (and, given a trusted root, its transparency-log entry verifies: inclusion proof and
//!    signed checkpoint); the signed statement is a `https://custody.dev/release/v1` statement
//!    whose one subject is the record's digest and whose environment, seq and kind are the
//!    record's; and, when the record carries a VSA, the VSA is signed by a release key, is about
//!    the digest, PASSED, is for this environment and the release's policy, and was issued at
//!    most [`ReleaseTrust::vsa_max_age`] before the release. Without a VSA the signed release
//!    statement alone authorizes the deployment: the server signs a release only after its
//!    gate allowed it.
//! 2. [`AgentState::decide`]: its seq is not lower than the highest this agent deployed (stale
//!    or replayed), an equal seq names the same digest (else the server equivocated), the next
//!    seq continues the history this agent saw (its signed `previous`), and going back to a
//!    digest deployed earlier is a signed `kind: rollback` record with a higher seq.
//! 3. [`check_current`]: before anything is activated, the server's signed, short-lived
//!    current-release statement (fetched then) vouches for this very release: signed by a
//!    release key, for this environment, not expired, seq not below the agent's, same seq,
//!    digest and release bundle. The server issues none for a revoked or quarantined digest,
//!    so a replayed or cached release answer, or one revoked since, is refused.
//! 4. The downloaded artifact hashes to the release digest ([`check_artifact`]).
//! 5. The [`Target`] activates it; only then is the state advanced (written atomically).
//!
//! Only what was verified is used afterwards: [`VerifiedRelease`] is built from the signed
//! statement, never from the record's unsigned fields.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use custody_core::bundle::Bundle;
use custody_core::digest::Sha256Digest;
use custody_core::intoto::Statement;
use custody_core::keys::{KeyId, PublicKey};
use custody_core::trust_root::TrustedRoot;
use custody_core::verify::{
    self, Artifact, KeyVerifyOptions, TlogStatus, VerifiedBundle, VerifiedContent, VerifiedSigner,
    VerifyError,
};
use custody_policy::vsa;
use serde_json::Value as Json;

use crate::model::{Release, ReleaseKind};
use crate::statement::RELEASE_V1;

mod current;
mod state;
mod target;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

pub use current::{CurrentError, CurrentSource, VerifiedCurrent, check_current};
pub use state::{AgentState, Decision, DeployedRelease, HISTORY_LIMIT, STATE_FILE};
pub use target::{Activated, DirTarget, ExecTarget, KEEP_RELEASES, Target, TargetSpec};

/// The clock skew a current-release statement's issue time is allowed by default.
pub const DEFAULT_CLOCK_SKEW_SECONDS: i64 = 60;

/// What a release must be verified against.
#[derive(Debug, Clone)]
pub struct ReleaseTrust {
    /// The server's release keys (more than one while a key is being rotated): a release
    /// bundle signed by any of them verifies.
    pub keys: Vec<PublicKey>,
    /// With a trusted root (the server log's), a release bundle must carry a log entry whose
    /// inclusion proof and checkpoint verify against it.
    pub trusted_root: Option<TrustedRoot>,
    /// The verifier id a VSA must name.
    pub vsa_verifier_id: String,
    /// How long before the release a VSA may have been issued.
    pub vsa_max_age: Duration,
    /// How far in the future a current-release statement's issue time may be (clock skew
    /// between this host and the server).
    pub clock_skew: Duration,
}

impl ReleaseTrust {
    /// Trusts `keys`, no log, custody's default verifier id and VSAs up to a day old.
    pub fn new(keys: Vec<PublicKey>) -> Self {
        Self {
            keys,
            trusted_root: None,
            vsa_verifier_id: vsa::DEFAULT_VERIFIER_ID.to_owned(),
            vsa_max_age: Duration::days(1),
            clock_skew: Duration::seconds(DEFAULT_CLOCK_SKEW_SECONDS),
        }
    }
}

/// A VSA that checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VsaSummary {
    pub verifier: String,
    pub time_verified: String,
    /// `sha256:<hex>` of the policy the gate evaluated.
    pub policy_digest: String,
    pub verified_levels: Vec<String>,
}

/// A release whose signature and statement verified. Every field comes from the signed
/// statement (or the verification itself).
#[derive(Debug, Clone)]
pub struct VerifiedRelease {
    pub environment: String,
    pub seq: u64,
    pub digest: Sha256Digest,
    pub kind: ReleaseKind,
    /// The statement subject's name.
    pub subject_name: String,
    pub from_environment: Option<String>,
    pub requested_by: String,
    pub policy_digest: String,
    pub reason: Option<String>,
    pub released_at: DateTime<Utc>,
    /// The release this one replaced, as (seq, digest).
    pub previous: Option<(u64, String)>,
    /// SHA-256 of the record's bundle text (what a current-release statement names).
    pub bundle_digest: Sha256Digest,
    /// The release key that verified.
    pub key_id: KeyId,
    /// What became of the bundle's log entries.
    pub tlog: TlogStatus,
    /// The indices of the verified log entries (empty without a trusted root).
    pub log_indices: Vec<i64>,
    /// The VSA, when the record carried one (it verified, or the release was refused).
    pub vsa: Option<VsaSummary>,
}

/// Why a release is not deployed: what was refused, the check that failed, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// From the record (not verified, when the refusal is that it did not verify).
    pub environment: String,
    pub seq: u64,
    pub digest: String,
    /// A stable code: `signature.invalid`, `tlog.missing`, `release.stale`, ….
    pub code: &'static str,
    pub reason: String,
}

impl Refusal {
    fn new(release: &Release, code: &'static str, reason: String) -> Self {
        Self {
            environment: release.environment.clone(),
            seq: release.seq,
            digest: release.digest.clone(),
            code,
            reason,
        }
    }

    /// What the operator can do about it.
    pub fn fix(&self) -> &'static str {
        fix_for(self.code)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "refused {} release {} ({}): {}; fix: {}",
            self.environment,
            self.seq,
            self.digest,
            self.reason,
            self.fix()
        )
    }
}

fn fix_for(code: &str) -> &'static str {
    match code {
        "release.environment" => {
            "check ENV and --server: this agent deploys only the environment it was started for"
        }
        "release.stale" => {
            "nothing to do if the server recovers by itself; a server whose history went backwards (restored database, replayed answer) must make a new release (a promotion or rollback gets a higher seq)"
        }
        "release.equivocation" | "release.fork" => {
            "investigate the server: it signed two different histories for this environment; nothing was deployed"
        }
        "release.rollback" => {
            "to go back to an earlier release, roll back on the server, which signs a kind=rollback record with a new seq"
        }
        "current.expired" | "current.future" => {
            "check this host's clock (NTP) and that the agent talks to the server itself, not a cache or a replay; the server's statements live current_release_lifetime (release config)"
        }
        "current.withheld" => {
            "nothing to deploy: the server no longer vouches for this release (revoked, quarantined or replaced); its rollback or next release is deployed by the next run"
        }
        "current.stale" | "current.superseded" => {
            "run again (the next poll takes the server's current release); if it persists, something between the agent and the server replays old answers: investigate"
        }
        "current.mismatch" => {
            "investigate the server: it vouched for another release with the same seq; nothing was deployed"
        }
        "current.signature" | "current.malformed" => {
            "check --release-key is the server's release key; if it is, the current-release statement was not signed by the server: investigate"
        }
        "artifact.mismatch" => {
            "the server's artifact store returned other bytes than the release names: restore the artifact on the server"
        }
        c if c.starts_with("tlog.") => {
            "check --trusted-root is the trust root of the server's log (GET /api/v1/trusted_root.json, or custody trust-root export)"
        }
        c if c.starts_with("vsa.") => {
            "check --vsa-verifier-id and --vsa-max-age, or investigate the gate decision the server attached to this release"
        }
        "signature.invalid" | "material.certificate" => {
            "check --release-key is the server's release key (custody key inspect); if it is, the release was not signed by the server: investigate"
        }
        _ => {
            "investigate the server: it handed out a release record that does not verify; nothing was deployed"
        }
    }
}

/// Why the agent did not deploy.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The release does not verify, or may not replace what is deployed (exit 1).
    #[error("{0}")]
    Refused(Box<Refusal>),
    /// The artifact or the current-release statement could not be downloaded; nothing
    /// changed.
    #[error("{environment} release {seq} ({digest}): {message}; nothing changed")]
    Fetch {
        environment: String,
        seq: u64,
        digest: String,
        message: String,
    },
    /// The target failed to activate the release; the state was not advanced.
    #[error(
        "{environment} release {seq} ({digest}): activation on {target} failed: {message}; the agent's state is unchanged (the next run or poll tries again)"
    )]
    Activation {
        environment: String,
        seq: u64,
        digest: String,
        target: String,
        message: String,
    },
    /// Reading or writing the agent's state or download directory.
    #[error("deploy state {}: {message}", path.display())]
    State { path: PathBuf, message: String },
}

impl AgentError {
    /// The refusal, if this is one.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            AgentError::Refused(r) => Some(r),
            _ => None,
        }
    }

    /// The release (environment, seq, digest) it is about, when there is one.
    pub fn release(&self) -> Option<(&str, u64, &str)> {
        match self {
            AgentError::Refused(r) => Some((&r.environment, r.seq, &r.digest)),
            AgentError::Fetch {
                environment,
                seq,
                digest,
                ..
            }
            | AgentError::Activation {
                environment,
                seq,
                digest,
                ..
            } => Some((environment, *seq, digest)),
            AgentError::State { .. } => None,
        }
    }

    /// A stable code: the refusal's, else `fetch`, `activation` or `state`.
    pub fn code(&self) -> &'static str {
        match self {
            AgentError::Refused(r) => r.code,
            AgentError::Fetch { .. } => "fetch",
            AgentError::Activation { .. } => "activation",
            AgentError::State { .. } => "state",
        }
    }
}

fn refused(release: &Release, code: &'static str, reason: String) -> AgentError {
    AgentError::Refused(Box::new(Refusal::new(release, code, reason)))
}

/// Verifies `release` for the agent of `environment`: see the module documentation.
pub fn verify_release(
    release: &Release,
    trust: &ReleaseTrust,
    environment: &str,
) -> Result<VerifiedRelease, AgentError> {
    let no = |code, reason: String| refused(release, code, reason);
    if release.environment != environment {
        return Err(no(
            "release.environment",
            format!(
                "the record is for environment {:?}, this agent deploys {environment:?}",
                release.environment
            ),
        ));
    }
    let digest: Sha256Digest = release.digest.parse().map_err(|e| {
        no(
            "release.digest",
            format!("the record's digest {:?}: {e}", release.digest),
        )
    })?;
    let bundle = Bundle::from_json(release.bundle.as_bytes())
        .map_err(|e| no("bundle.malformed", format!("the release bundle: {e}")))?;
    let verified = verify_with_keys(&bundle, digest, &trust.keys, trust.trusted_root.as_ref())
        .map_err(|e| no(e.code(), format!("the release bundle: {e}")))?;
    let VerifiedSigner::Key { key_id, .. } = verified.signer else {
        return Err(no(
            "material.certificate",
            "the release bundle is not signed with a key".into(),
        ));
    };
    let log_indices = verified
        .tlog_entries
        .iter()
        .map(|e| e.log_index())
        .collect();
    let VerifiedContent::Statement(statement) = verified.content else {
        return Err(no(
            "release.predicate-type",
            "the release bundle signs a plain message, not a release statement".into(),
        ));
    };
    let facts = statement_facts(&statement, &digest).map_err(|(code, reason)| no(code, reason))?;
    if facts.environment != release.environment {
        return Err(no(
            "release.environment",
            format!(
                "the signed statement is for environment {:?}, the record for {:?}",
                facts.environment, release.environment
            ),
        ));
    }
    if facts.seq != release.seq {
        return Err(no(
            "release.seq",
            format!(
                "the signed statement has seq {}, the record {}",
                facts.seq, release.seq
            ),
        ));
    }
    if facts.kind != release.kind {
        return Err(no(
            "release.kind",
            format!(
                "the signed statement is a {}, the record a {}",
                facts.kind.as_str(),
                release.kind.as_str()
            ),
        ));
    }
    let vsa = match &release.vsa {
        None => None,
        Some(text) => Some(
            check_vsa(text, &digest, trust, environment, &facts)
                .map_err(|(code, reason)| no(code, format!("the release's VSA: {reason}")))?,
        ),
    };
    Ok(VerifiedRelease {
        environment: facts.environment,
        seq: facts.seq,
        digest,
        kind: facts.kind,
        subject_name: facts.subject_name,
        from_environment: facts.from_environment,
        requested_by: facts.requested_by,
        policy_digest: facts.policy_digest,
        reason: facts.reason,
        released_at: facts.released_at,
        previous: facts.previous,
        bundle_digest: Sha256Digest::of(release.bundle.as_bytes()),
        key_id,
        tlog: verified.tlog,
        log_indices,
        vsa,
    })
}

/// Verifies `bundle` for `digest` with each key until one verifies. When none does, the most
/// telling error: one past the signature check (the right key, something else wrong) if any.
fn verify_with_keys(
    bundle: &Bundle,
    digest: Sha256Digest,
    keys: &[PublicKey],
    trusted_root: Option<&TrustedRoot>,
) -> Result<VerifiedBundle, VerifyError> {
    let options = KeyVerifyOptions { trusted_root };
    let mut errors = Vec::new();
    for key in keys {
        match verify::verify_parsed_with_key_options(
            bundle,
            Artifact::from_digest(digest),
            key,
            &options,
        ) {
            Ok(v) => return Ok(v),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        // No key at all: nothing can verify.
        return Err(VerifyError::Dsse(
            custody_core::dsse::DsseError::NoVerifiers,
        ));
    }
    let telling = errors
        .iter()
        .position(|e| e.code() != "signature.invalid")
        .unwrap_or(0);
    Err(errors.swap_remove(telling))
}

/// The signed facts of a release statement.
struct Facts {
    environment: String,
    seq: u64,
    kind: ReleaseKind,
    subject_name: String,
    from_environment: Option<String>,
    requested_by: String,
    policy_digest: String,
    reason: Option<String>,
    released_at: DateTime<Utc>,
    previous: Option<(u64, String)>,
}

fn statement_facts(
    statement: &Statement,
    digest: &Sha256Digest,
) -> Result<Facts, (&'static str, String)> {
    let bad = |what: &str| {
        (
            "release.statement",
            format!("the signed release statement {what}"),
        )
    };
    if statement.predicate_type != RELEASE_V1 {
        return Err((
            "release.predicate-type",
            format!(
                "the signed statement's predicateType is {:?}, not {RELEASE_V1}",
                statement.predicate_type
            ),
        ));
    }
    let [subject] = statement.subject.as_slice() else {
        return Err((
            "release.subject",
            format!(
                "the signed statement has {} subjects; a release statement has exactly one",
                statement.subject.len()
            ),
        ));
    };
    if subject.digest.get("sha256") != Some(&digest.hex()) {
        return Err((
            "release.subject",
            format!("the signed statement's subject is not {digest}"),
        ));
    }
    let p = &statement.predicate;
    let text = |name: &str| p.get(name).and_then(Json::as_str);
    let optional = |name: &str| -> Result<Option<String>, (&'static str, String)> {
        match p.get(name) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad(&format!("has a {name} that is not a string"))),
        }
    };
    let environment = text("environment")
        .ok_or_else(|| bad("names no environment"))?
        .to_owned();
    let seq = p
        .get("seq")
        .and_then(Json::as_u64)
        .filter(|s| *s >= 1)
        .ok_or_else(|| bad("has no seq (a positive integer)"))?;
    let kind: ReleaseKind = text("kind")
        .ok_or_else(|| bad("has no kind"))?
        .parse()
        .map_err(|e: String| bad(&format!("has a bad kind: {e}")))?;
    let requested_by = text("requestedBy")
        .ok_or_else(|| bad("names no requestedBy"))?
        .to_owned();
    let policy_digest = text("policyDigest")
        .ok_or_else(|| bad("names no policyDigest"))?
        .to_owned();
    let released_at = text("releasedAt")
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| bad("has no releasedAt (RFC 3339)"))?;
    let previous = match p.get("previous") {
        None | Some(Json::Null) => None,
        Some(prev) => {
            let seq = prev.get("seq").and_then(Json::as_u64);
            let digest = prev.get("digest").and_then(Json::as_str);
            match (seq, digest) {
                (Some(s), Some(d)) => Some((s, d.to_owned())),
                _ => return Err(bad("has a previous without seq and digest")),
            }
        }
    };
    Ok(Facts {
        environment,
        seq,
        kind,
        subject_name: subject.name.clone().unwrap_or_default(),
        from_environment: optional("fromEnvironment")?,
        requested_by,
        policy_digest,
        reason: optional("reason")?,
        released_at,
        previous,
    })
}

/// The VSA must be signed by a release key (its log entries, when it has any and a trusted
/// root was given, must verify), be about `digest`, PASSED, for this environment and the
/// release's policy, and no older than `vsa_max_age` when the release was made.
fn check_vsa(
    text: &str,
    digest: &Sha256Digest,
    trust: &ReleaseTrust,
    environment: &str,
    facts: &Facts,
) -> Result<VsaSummary, (&'static str, String)> {
    let bundle = Bundle::from_json(text.as_bytes())
        .map_err(|e| ("vsa.malformed", format!("malformed bundle: {e}")))?;
    let root = if bundle.verification_material.tlog_entries.is_empty() {
        None
    } else {
        trust.trusted_root.as_ref()
    };
    let verified = verify_with_keys(&bundle, *digest, &trust.keys, root)
        .map_err(|e| (e.code(), e.to_string()))?;
    let VerifiedContent::Statement(statement) = verified.content else {
        return Err((
            "vsa.predicate-type",
            "a plain signature, not a verification summary".into(),
        ));
    };
    let expectations = vsa::Expectations {
        digest: *digest,
        verifier_id: trust.vsa_verifier_id.clone(),
        max_age: trust.vsa_max_age,
        now: facts.released_at,
        policy_digest: (!facts.policy_digest.is_empty()).then(|| facts.policy_digest.clone()),
        environment: Some(environment.to_owned()),
        level: None,
    };
    vsa::check(&statement, &expectations).map_err(|e| (e.code, e.message))?;
    let p = &statement.predicate;
    Ok(VsaSummary {
        verifier: p["verifier"]["id"].as_str().unwrap_or_default().to_owned(),
        time_verified: p["timeVerified"].as_str().unwrap_or_default().to_owned(),
        policy_digest: format!(
            "sha256:{}",
            p["policy"]["digest"]["sha256"].as_str().unwrap_or_default()
        ),
        verified_levels: p["verifiedLevels"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Json::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// Refuses artifact bytes that do not hash to the release digest.
pub fn check_artifact(release: &VerifiedRelease, bytes: &[u8]) -> Result<(), AgentError> {
    check_artifact_digest(release, &Sha256Digest::of(bytes))
}

fn check_artifact_digest(
    release: &VerifiedRelease,
    actual: &Sha256Digest,
) -> Result<(), AgentError> {
    if *actual == release.digest {
        return Ok(());
    }
    Err(AgentError::Refused(Box::new(Refusal {
        environment: release.environment.clone(),
        seq: release.seq,
        digest: release.digest.to_string(),
        code: "artifact.mismatch",
        reason: format!(
            "the downloaded artifact hashes to {actual}, not to the release digest; nothing was activated"
        ),
    })))
}

/// What one [`Agent::apply`] did.
#[derive(Debug)]
pub enum Applied {
    /// The release is the one deployed (and the target still has it active).
    Unchanged(VerifiedRelease),
    /// The release was activated and the state advanced.
    Deployed {
        release: VerifiedRelease,
        activated: Activated,
        /// The release was already recorded as deployed, but the target no longer had it
        /// active (for example after a crash between switching and syncing): activated again.
        repaired: bool,
    },
}

impl Applied {
    pub fn release(&self) -> &VerifiedRelease {
        match self {
            Applied::Unchanged(r) | Applied::Deployed { release: r, .. } => r,
        }
    }
}

/// Where the artifact's bytes come from: writes the bytes of `digest` to the writer, or says
/// why it could not.
pub type Fetch<'a> = dyn FnMut(&Sha256Digest, &mut dyn std::io::Write) -> Result<(), String> + 'a;

/// The agent for one environment: its trust, its state directory and its target.
pub struct Agent {
    environment: String,
    trust: ReleaseTrust,
    state_dir: PathBuf,
    state: AgentState,
    target: Box<dyn Target>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("environment", &self.environment)
            .field("state_dir", &self.state_dir)
            .field("target", &self.target.describe())
            .finish()
    }
}

impl Agent {
    /// Opens (creating) the state directory and loads its state.
    pub fn open(
        environment: &str,
        trust: ReleaseTrust,
        state_dir: &Path,
        target: Box<dyn Target>,
    ) -> Result<Self, AgentError> {
        create_private_dir(state_dir)?;
        let state = AgentState::load(state_dir, environment)?;
        // Temporary files of a download or state write that a crash interrupted (one agent
        // per state directory: nothing else is writing them).
        for (dir, prefix) in [
            (state_dir.join("downloads"), ".download-"),
            (state_dir.to_path_buf(), ".state-"),
        ] {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if entry.file_name().to_string_lossy().starts_with(prefix) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(Self {
            environment: environment.to_owned(),
            trust,
            state_dir: state_dir.to_path_buf(),
            state,
            target,
        })
    }

    pub fn environment(&self) -> &str {
        &self.environment
    }

    pub fn state(&self) -> &AgentState {
        &self.state
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    pub fn target(&self) -> &dyn Target {
        self.target.as_ref()
    }

    /// Verifies `release`, decides, requires a fresh current-release statement from
    /// `current` that vouches for it, downloads with `fetch`, checks the bytes, activates, and
    /// advances the state. Nothing is activated unless every check passed; the state is
    /// advanced only after the target activated.
    pub fn apply(
        &mut self,
        release: &Release,
        current: &mut CurrentSource<'_>,
        fetch: &mut Fetch<'_>,
    ) -> Result<Applied, AgentError> {
        let verified = verify_release(release, &self.trust, &self.environment)?;
        let repaired = match self.state.decide(&verified)? {
            Decision::Deploy => false,
            Decision::Unchanged if self.target.needs_repair(&verified.digest) => true,
            Decision::Unchanged => return Ok(Applied::Unchanged(verified)),
        };
        self.require_current(&verified, current)?;
        let download = self.download(&verified, fetch)?;
        let recent = self.state.recent();
        let activated = self
            .target
            .activate(&verified, download.path(), &recent)
            .map_err(|message| AgentError::Activation {
                environment: verified.environment.clone(),
                seq: verified.seq,
                digest: verified.digest.to_string(),
                target: self.target.describe(),
                message,
            })?;
        drop(download);
        let mut next = self.state.clone();
        next.record(&verified, Utc::now());
        next.save(&self.state_dir).map_err(|e| match e {
            AgentError::State { path, message } => AgentError::State {
                path,
                message: format!(
                    "{message} (release {} is active on {} but not recorded: the next run activates it again)",
                    verified.seq,
                    self.target.describe()
                ),
            },
            other => other,
        })?;
        self.state = next;
        Ok(Applied::Deployed {
            release: verified,
            activated,
            repaired,
        })
    }

    /// Fetches the server's current-release statement and checks it vouches for `release`.
    fn require_current(
        &self,
        release: &VerifiedRelease,
        current: &mut CurrentSource<'_>,
    ) -> Result<VerifiedCurrent, AgentError> {
        let envelope = current(release).map_err(|e| match e {
            CurrentError::Withheld(message) => AgentError::Refused(Box::new(Refusal {
                environment: release.environment.clone(),
                seq: release.seq,
                digest: release.digest.to_string(),
                code: "current.withheld",
                reason: format!("the server issues no current-release statement for it: {message}"),
            })),
            CurrentError::Unavailable(message) => AgentError::Fetch {
                environment: release.environment.clone(),
                seq: release.seq,
                digest: release.digest.to_string(),
                message: format!("fetching the current-release statement: {message}"),
            },
        })?;
        check_current(&envelope, &self.trust, release, self.state.seq, Utc::now())
    }

    /// Downloads into `<state>/downloads/` and checks the digest.
    fn download(
        &self,
        release: &VerifiedRelease,
        fetch: &mut Fetch<'_>,
    ) -> Result<tempfile::NamedTempFile, AgentError> {
        let dir = self.state_dir.join("downloads");
        let state_err = |e: std::io::Error| AgentError::State {
            path: dir.clone(),
            message: e.to_string(),
        };
        create_private_dir(&dir)?;
        let mut file = tempfile::Builder::new()
            .prefix(".download-")
            .tempfile_in(&dir)
            .map_err(state_err)?;
        let fetch_err = |message: String| AgentError::Fetch {
            environment: release.environment.clone(),
            seq: release.seq,
            digest: release.digest.to_string(),
            message: format!("fetching the artifact failed: {message}"),
        };
        {
            let mut writer = std::io::BufWriter::new(file.as_file_mut());
            fetch(&release.digest, &mut writer).map_err(fetch_err)?;
            writer.flush().map_err(|e| fetch_err(e.to_string()))?;
        }
        file.as_file().sync_all().map_err(state_err)?;
        let (actual, _) = custody_core::digest::sha256_file(file.path(), |_| {})
            .map_err(|e| fetch_err(e.to_string()))?;
        check_artifact_digest(release, &actual)?;
        Ok(file)
    }
}

/// Creates `dir` (mode 0700 on Unix when new).
fn create_private_dir(dir: &Path) -> Result<(), AgentError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| AgentError::State {
        path: dir.to_path_buf(),
        message: format!("cannot create the directory: {e}"),
    })
}
