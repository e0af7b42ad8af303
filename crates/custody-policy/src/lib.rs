//! custody's policy gate: Rego (regorus) policies evaluated over *verified* evidence.
//!
//! ```text
//!  candidates (bundles) ─► input::verify_evidence ─► Evidence / Rejected
//!          principals, revocations ─► input::attach_principals, input::apply_revocations
//!                      retired keys ─► input::apply_retirements
//!                                                      │
//!  artifact, environment, promotion, release, time ─► input::InputParts ─► Policy::evaluate (regorus)
//!                                                      │
//!                         gate::Gate::decide ─► Verdict (findings with codes, fixes, locations)
//!                                                      │ allowed
//!                                    vsa::summary ─► SLSA Verification Summary Attestation
//! ```
//!
//! Every evaluation runs under a [`TimeLimit`] (regorus's cooperative timer); one stopped at
//! the limit is a deny with code [`POLICY_TIMEOUT`].

pub mod engine;
pub mod gate;
pub mod input;
pub mod limit;
pub mod release;
pub mod verdict;
pub mod verified;
pub mod vsa;

pub use engine::{Evaluation, Policy, PolicyFile, TestOutcome, TestResult};
pub use gate::{Gate, Request};
pub use input::{
    ApprovalsRef, Candidate, EnvironmentRef, Evidence, PromotionRef, Rejected, RetiredEvidence,
    RetiredKey, RevokedEvidence, RevokedTarget, TrustSet,
};
pub use limit::{POLICY_TIMEOUT, TimeLimit, TimedOut};
pub use release::{
    CandidateFacts, QuarantineRef, ReleaseApprovals, ReleaseCandidate, ReleaseRef, ReleaseState,
};
pub use verdict::{ArtifactRef, Finding, Location, Verdict};
pub use verified::{ResultKey, SharedResults, VerificationCache};

/// Why a policy could not be loaded or evaluated. Loading errors name the file (and line when
/// regorus gives one).
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("policy {path}: cannot read: {error}")]
    Read { path: String, error: String },
    #[error(
        "policy directory {dir} holds no .rego files: write a package custody.gate with deny rules (see `custody policy init`)"
    )]
    Empty { dir: String },
    #[error("policy {path}: bad data document: {error}")]
    Data { path: String, error: String },
    #[error("policy does not compile: {error}")]
    Compile { error: String },
    #[error(
        "policy {dir} defines no `deny` rule in package custody.gate: the gate evaluates data.custody.gate.deny (see docs/policy-input.md)"
    )]
    NoDenyRule { dir: String },
    #[error("policy evaluation failed: {error}")]
    Eval { error: String },
    #[error(
        "policy {dir}: {what} ({}) did not finish within the policy time limit of {}: simplify the policy, or raise the limit with --policy-timeout",
        .timed_out.rule, .timed_out.limit
    )]
    Timeout {
        dir: String,
        what: String,
        timed_out: TimedOut,
    },
}
