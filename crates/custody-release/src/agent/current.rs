//! Freshness: before it activates anything, the agent asks the server for a signed,
//! short-lived current-release statement (`https://custody.dev/current-release/v1`, the role
//! TUF's timestamp metadata plays) and requires it to vouch for exactly the release it is about
//! to activate. A release record is signed forever; this statement is signed for minutes. A
//! replayed or cached release answer, or a release revoked since it was signed (the server
//! issues no statement for a revoked or quarantined digest), is therefore never activated.
//!
//! Checks, in order (each refusal names the environment, seq, digest and what to do):
//! 1. the envelope is a DSSE envelope signed by one of the pinned release keys;
//! 2. its payload is a current-release statement for this agent's environment;
//! 3. it was issued no later than now plus the allowed clock skew, and has not expired;
//! 4. its seq is not lower than the highest this agent deployed;
//! 5. its seq, digest and release bundle digest are the release's being activated.

use chrono::{DateTime, Utc};
use custody_core::dsse::{Envelope, SignatureVerifier};
use custody_core::intoto::Statement;
use custody_core::keys::KeyId;

use super::{AgentError, Refusal, ReleaseTrust, VerifiedRelease};
use crate::statement::{CurrentFacts, current_facts};

/// Why the server's current-release statement could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CurrentError {
    /// The server answered that it vouches for no such release (no current release, or its
    /// digest is revoked or quarantined): a refusal.
    Withheld(String),
    /// The server could not be asked (transport, 5xx): nothing changed, the next run retries.
    Unavailable(String),
}

/// Where the statement comes from: the DSSE envelope's JSON bytes for the environment whose
/// release is about to be activated.
pub type CurrentSource<'a> = dyn FnMut(&VerifiedRelease) -> Result<Vec<u8>, CurrentError> + 'a;

/// A current-release statement that verified and vouches for the release being activated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCurrent {
    pub facts: CurrentFacts,
    /// The release key that signed it.
    pub key_id: KeyId,
}

fn refuse(release: &VerifiedRelease, code: &'static str, reason: String) -> AgentError {
    AgentError::Refused(Box::new(Refusal {
        environment: release.environment.clone(),
        seq: release.seq,
        digest: release.digest.to_string(),
        code,
        reason,
    }))
}

/// Verifies `envelope` (the server's answer) for `release`, which this agent (having deployed
/// up to `deployed_seq`) is about to activate at `now`. See the module documentation.
pub fn check_current(
    envelope: &[u8],
    trust: &ReleaseTrust,
    release: &VerifiedRelease,
    deployed_seq: u64,
    now: DateTime<Utc>,
) -> Result<VerifiedCurrent, AgentError> {
    let no = |code, reason: String| refuse(release, code, reason);
    let envelope = Envelope::from_json(envelope).map_err(|e| {
        no(
            "current.malformed",
            format!("the current-release statement: {e}"),
        )
    })?;
    let verifiers: Vec<&dyn SignatureVerifier> = trust
        .keys
        .iter()
        .map(|k| k as &dyn SignatureVerifier)
        .collect();
    let verified = envelope.verify(&verifiers, 1).map_err(|e| {
        no(
            "current.signature",
            format!("the current-release statement is not signed by a release key: {e}"),
        )
    })?;
    let key_id = verified
        .verified_by()
        .first()
        .and_then(|i| trust.keys.get(*i))
        .map(|k| k.key_id())
        .ok_or_else(|| no("current.signature", "no release key verified".into()))?;
    let statement = Statement::from_verified_payload(&verified).map_err(|e| {
        no(
            "current.malformed",
            format!("the current-release statement: {e}"),
        )
    })?;
    let facts = current_facts(&statement).map_err(|e| {
        no(
            "current.malformed",
            format!("the signed current-release statement: {e}"),
        )
    })?;
    check_facts(&facts, trust, release, deployed_seq, now)?;
    Ok(VerifiedCurrent { facts, key_id })
}

/// The checks on a signed statement's facts (3–5 of the module documentation).
fn check_facts(
    f: &CurrentFacts,
    trust: &ReleaseTrust,
    release: &VerifiedRelease,
    deployed_seq: u64,
    now: DateTime<Utc>,
) -> Result<(), AgentError> {
    let no = |code, reason: String| refuse(release, code, reason);
    let about = format!(
        "the current-release statement for {} seq {} ({}) issued {} expiring {}",
        f.environment,
        f.seq,
        f.digest,
        crate::statement::rfc3339(f.issued_at),
        crate::statement::rfc3339(f.expires)
    );
    if f.environment != release.environment {
        return Err(no(
            "current.environment",
            format!(
                "{about} is for environment {:?}, this agent deploys {:?}",
                f.environment, release.environment
            ),
        ));
    }
    if f.issued_at > now + trust.clock_skew {
        return Err(no(
            "current.future",
            format!(
                "{about} was issued after this host's time {} (more than {}s of clock skew)",
                crate::statement::rfc3339(now),
                trust.clock_skew.num_seconds()
            ),
        ));
    }
    if f.expires <= now || f.expires <= f.issued_at {
        return Err(no(
            "current.expired",
            format!(
                "{about} expired (this host's time is {}): a stale or replayed answer",
                crate::statement::rfc3339(now)
            ),
        ));
    }
    if f.seq < deployed_seq {
        return Err(no(
            "current.stale",
            format!("{about} is older than seq {deployed_seq}, which this agent already deployed"),
        ));
    }
    if f.seq != release.seq {
        return Err(no(
            "current.superseded",
            format!(
                "{about}: the server's current release is seq {}, not the seq {} this agent was handed (a replayed or cached release answer, or a release made in between)",
                f.seq, release.seq
            ),
        ));
    }
    if f.digest != release.digest || f.release_bundle != release.bundle_digest {
        return Err(no(
            "current.mismatch",
            format!(
                "{about} names another release for the same seq (digest {}, release bundle {}; the release handed to this agent has {}, {})",
                f.digest, f.release_bundle, release.digest, release.bundle_digest
            ),
        ));
    }
    Ok(())
}
