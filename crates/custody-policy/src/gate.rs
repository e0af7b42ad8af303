//! The gate: verify the evidence, build the input, evaluate, and say why.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use custody_core::verify::Artifact;

use crate::Policy;
use crate::PolicyError;
use crate::VerificationCache;
use crate::input::{
    self, Candidate, EnvironmentRef, InputParts, PromotionRef, RetiredKey, RevokedTarget, TrustSet,
};
use crate::release::ReleaseState;
use crate::verdict::{ArtifactRef, Finding, Verdict};

/// A policy and what evidence is verified against.
#[derive(Debug)]
pub struct Gate {
    pub policy: Policy,
    pub trust: TrustSet,
}

/// One decision request. The release facts (`principals`, `revocations`, `retired`,
/// `promotion`, `release`) default to none: `Request { artifact, time, ..Default::default() }`.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    pub artifact: ArtifactRef,
    /// The artifact's bytes, when at hand (Ed25519 message signatures need them).
    pub bytes: Option<&'a [u8]>,
    pub environment: Option<EnvironmentRef>,
    pub time: DateTime<Utc>,
    /// Key id (lowercase hex) or certificate identity (SAN) → principal name: each verified
    /// evidence's `signer.principal`.
    pub principals: Arc<BTreeMap<String, String>>,
    /// Revoked keys, identities, builders and digests: evidence they touch is moved to
    /// `rejected` (code `revoked`); a revoked artifact gets `input.artifact.revoked`.
    pub revocations: Arc<Vec<RevokedTarget>>,
    /// Retired (rotated-out) keys: evidence one signed counts only if it has a verified log
    /// entry below the retirement's cut; the rest is moved to `rejected` (code `key.retired`).
    pub retired: Arc<Vec<RetiredKey>>,
    /// The promotion being decided, if this is one (`input.promotion`).
    pub promotion: Option<PromotionRef>,
    /// The release state of the environment being admitted to (`input.release`): set at
    /// admission for a namespace mapped to an environment that has releases; `None` leaves
    /// the input without `release`, exactly as before.
    pub release: Option<ReleaseState>,
}

impl Gate {
    /// Verifies `candidates` for the artifact and evaluates the policy over what verified.
    pub fn decide(
        &self,
        request: &Request<'_>,
        candidates: &[Candidate],
    ) -> Result<Verdict, PolicyError> {
        self.decide_with(request, candidates, None)
    }

    /// [`Gate::decide`], reusing earlier verification results of the same bundle bytes under
    /// the same trust set from `cache` (see [`VerificationCache`]).
    pub fn decide_with(
        &self,
        request: &Request<'_>,
        candidates: &[Candidate],
        cache: Option<&VerificationCache>,
    ) -> Result<Verdict, PolicyError> {
        let Some(digest_text) = request.artifact.digest.as_deref() else {
            return self.decide_unpinned(request);
        };
        let digest = digest_text.parse().map_err(|e| PolicyError::Eval {
            error: format!("artifact digest {digest_text:?}: {e}"),
        })?;
        let artifact = Artifact {
            digest,
            bytes: request.bytes,
        };
        let (mut evidence, mut rejected) = match cache {
            Some(cache) => cache.verify_evidence(&self.trust, artifact, candidates),
            None => input::verify_evidence(&self.trust, artifact, candidates),
        };
        input::attach_principals(&mut evidence, &request.principals);
        let evidence = input::apply_revocations(evidence, &mut rejected, &request.revocations);
        let evidence = input::apply_retirements(evidence, &mut rejected, &request.retired);
        let doc = InputParts {
            artifact: &request.artifact,
            artifact_revoked: input::artifact_revocation(digest_text, &request.revocations),
            environment: request.environment.as_ref(),
            promotion: request.promotion.as_ref(),
            release: request.release.as_ref(),
            time: request.time,
            evidence: &evidence,
            rejected: &rejected,
        }
        .document();
        let eval = self.policy.evaluate(&doc)?;
        Ok(Verdict {
            allowed: eval.denies.is_empty(),
            artifact: request.artifact.clone(),
            environment: request.environment.as_ref().map(|e| e.name.clone()),
            policy_digest: self.policy.digest().to_string(),
            trust_root_digest: self.trust.root_digest.map(|d| d.to_string()),
            denies: eval.denies,
            warnings: eval.warnings,
            evidence: evidence.iter().map(|e| e.summary()).collect(),
            rejected,
            verified_levels: vec![input::build_level(&evidence)],
            evaluated_at: request.time,
        })
    }

    /// An image reference without a digest: denied unless the policy's `allow_unpinned` says
    /// otherwise for this input.
    fn decide_unpinned(&self, request: &Request<'_>) -> Result<Verdict, PolicyError> {
        let doc = InputParts {
            artifact: &request.artifact,
            artifact_revoked: None,
            environment: request.environment.as_ref(),
            promotion: request.promotion.as_ref(),
            release: request.release.as_ref(),
            time: request.time,
            evidence: &[],
            rejected: &[],
        }
        .document();
        let (allowed, timed_out) = match self.policy.allows_unpinned(&doc) {
            Ok(allowed) => (allowed, None),
            // Fail closed: a policy that cannot say in time does not let the image through.
            Err(PolicyError::Timeout { timed_out, .. }) => (false, Some(timed_out)),
            Err(e) => return Err(e),
        };
        let denies = if let Some(t) = timed_out {
            vec![self.policy.timeout_finding(&t)]
        } else if allowed {
            Vec::new()
        } else {
            let shown = request.artifact.image.as_deref().unwrap_or("(unnamed)");
            vec![Finding {
                code: "image-not-pinned".into(),
                message: format!(
                    "image {shown} is not pinned by digest, so what runs is not what was verified"
                ),
                fix: Some(format!(
                    "deploy {shown}@sha256:<digest> (e.g. from `crane digest {shown}`), or allow it in policy with data.custody.gate.allow_unpinned"
                )),
                signer: None,
                evidence: None,
                location: None,
                details: Default::default(),
            }]
        };
        Ok(Verdict {
            allowed,
            artifact: request.artifact.clone(),
            environment: request.environment.as_ref().map(|e| e.name.clone()),
            policy_digest: self.policy.digest().to_string(),
            trust_root_digest: self.trust.root_digest.map(|d| d.to_string()),
            denies,
            warnings: Vec::new(),
            evidence: Vec::new(),
            rejected: Vec::new(),
            verified_levels: Vec::new(),
            evaluated_at: request.time,
        })
    }
}
