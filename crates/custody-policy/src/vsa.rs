//! SLSA Verification Summary Attestations (SPECS §3.3): the gate's signed verdict, and the
//! consumer's check of one (the fast path: trust the gate's fresh PASSED instead of verifying
//! every piece of evidence again).

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use custody_core::digest::Sha256Digest;
use custody_core::intoto::{ResourceDescriptor, Statement};
use serde_json::{Value as Json, json};

use crate::verdict::Verdict;

/// `predicateType` of a VSA.
pub const VSA_V1: &str = "https://slsa.dev/verification_summary/v1";
/// custody's verifier id unless configured otherwise.
pub const DEFAULT_VERIFIER_ID: &str = "https://custody.dev/gate/v1";

/// The `resourceUri` custody writes: the image reference, else `urn:custody:artifact:<name>`,
/// else the digest.
pub fn resource_uri(verdict: &Verdict) -> String {
    if let Some(image) = &verdict.artifact.image {
        return image.clone();
    }
    match (&verdict.artifact.name, &verdict.artifact.digest) {
        (Some(n), _) => format!("urn:custody:artifact:{n}"),
        (None, Some(d)) => format!("urn:custody:artifact:{d}"),
        (None, None) => "urn:custody:artifact:unknown".into(),
    }
}

/// The VSA statement for an *allowed* verdict; `None` for a denial (custody signs only passes).
pub fn summary(verdict: &Verdict, verifier_id: &str, policy_uri: &str) -> Option<Statement> {
    if !verdict.allowed {
        return None;
    }
    let digest: Sha256Digest = verdict.artifact.digest.as_deref()?.parse().ok()?;
    let name = verdict
        .artifact
        .name
        .clone()
        .or_else(|| verdict.artifact.image.clone())
        .unwrap_or_else(|| digest.to_string());
    let inputs: Vec<Json> = verdict
        .evidence
        .iter()
        .map(|e| {
            json!({
                "uri": e.source,
                "digest": { "sha256": e.bundle_digest.trim_start_matches("sha256:") },
            })
        })
        .collect();
    let policy_hex = verdict.policy_digest.trim_start_matches("sha256:");
    let mut predicate = json!({
        "verifier": { "id": verifier_id, "version": { "custody": env!("CARGO_PKG_VERSION") } },
        "timeVerified": verdict.evaluated_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "resourceUri": resource_uri(verdict),
        "policy": { "uri": policy_uri, "digest": { "sha256": policy_hex } },
        "inputAttestations": inputs,
        "verificationResult": "PASSED",
        "verifiedLevels": verdict.verified_levels,
        "slsaVersion": "1.1",
    });
    if let Some(env) = &verdict.environment {
        predicate["custody_environment"] = json!(env);
    }
    if let Some(root) = &verdict.trust_root_digest {
        predicate["custody_trustRoot"] = json!(root);
    }
    Some(Statement::new_v1(
        vec![ResourceDescriptor::from_sha256(name, &digest)],
        VSA_V1,
        predicate,
    ))
}

/// What a consumer requires of a VSA.
#[derive(Debug, Clone)]
pub struct Expectations {
    pub digest: Sha256Digest,
    /// The verifier id bound to the key that signed it.
    pub verifier_id: String,
    pub max_age: Duration,
    pub now: DateTime<Utc>,
    /// When set, the VSA must be for this policy digest.
    pub policy_digest: Option<String>,
    /// When set, the VSA must be for this environment.
    pub environment: Option<String>,
    /// When set, `verifiedLevels` must include it (or a higher level of the same track).
    pub level: Option<String>,
}

/// Why a VSA is not accepted: a stable code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct VsaRejected {
    pub code: &'static str,
    pub message: String,
}

fn no(code: &'static str, message: String) -> VsaRejected {
    VsaRejected { code, message }
}

/// Checks a VSA statement whose signature has already verified against the gate's key.
pub fn check(statement: &Statement, exp: &Expectations) -> Result<(), VsaRejected> {
    if statement.predicate_type != VSA_V1 {
        return Err(no(
            "vsa.predicate-type",
            format!(
                "predicateType is {:?}, not {VSA_V1}",
                statement.predicate_type
            ),
        ));
    }
    let hex = exp.digest.hex();
    if !statement
        .subject
        .iter()
        .any(|s| s.digest.get("sha256") == Some(&hex))
    {
        return Err(no(
            "vsa.subject",
            format!("the VSA is not about {}", exp.digest),
        ));
    }
    let p = &statement.predicate;
    let verifier = p["verifier"]["id"].as_str().unwrap_or("");
    if verifier != exp.verifier_id {
        return Err(no(
            "vsa.verifier",
            format!(
                "verifier.id is {verifier:?}, expected {:?}",
                exp.verifier_id
            ),
        ));
    }
    if p["verificationResult"].as_str() != Some("PASSED") {
        return Err(no(
            "vsa.failed",
            format!("verificationResult is {}", p["verificationResult"]),
        ));
    }
    let verified_at = p["timeVerified"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| no("vsa.time", "timeVerified is missing or not RFC 3339".into()))?;
    if verified_at > exp.now + Duration::minutes(5) {
        return Err(no(
            "vsa.time",
            format!("timeVerified {verified_at} is in the future"),
        ));
    }
    if exp.now - verified_at > exp.max_age {
        return Err(no(
            "vsa.stale",
            format!(
                "the VSA is from {verified_at}, older than the {} s allowed: re-run the gate",
                exp.max_age.num_seconds()
            ),
        ));
    }
    if let Some(want) = &exp.policy_digest {
        let got = p["policy"]["digest"]["sha256"].as_str().unwrap_or("");
        if want.trim_start_matches("sha256:") != got {
            return Err(no(
                "vsa.policy",
                format!("the VSA is for policy sha256:{got}, expected {want}"),
            ));
        }
    }
    if let Some(want) = &exp.environment {
        let got = p["custody_environment"].as_str().unwrap_or("");
        if got != want {
            return Err(no(
                "vsa.environment",
                format!("the VSA is for environment {got:?}, expected {want:?}"),
            ));
        }
    }
    if let Some(want) = &exp.level {
        let levels: Vec<&str> = p["verifiedLevels"]
            .as_array()
            .map(|a| a.iter().filter_map(Json::as_str).collect())
            .unwrap_or_default();
        if !levels.iter().any(|l| level_satisfies(l, want)) {
            return Err(no(
                "vsa.level",
                format!("verifiedLevels {levels:?} do not include {want}"),
            ));
        }
    }
    Ok(())
}

/// `SLSA_BUILD_LEVEL_3` satisfies `SLSA_BUILD_LEVEL_2` (each level implies the lower ones).
fn level_satisfies(have: &str, want: &str) -> bool {
    let split = |s: &str| {
        let (track, n) = s.rsplit_once('_')?;
        Some((track.to_string(), n.parse::<u32>().ok()?))
    };
    match (split(have), split(want)) {
        (Some((t1, n1)), Some((t2, n2))) => t1 == t2 && n1 >= n2,
        _ => have == want,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_imply_lower_levels() {
        assert!(level_satisfies("SLSA_BUILD_LEVEL_3", "SLSA_BUILD_LEVEL_2"));
        assert!(!level_satisfies("SLSA_BUILD_LEVEL_1", "SLSA_BUILD_LEVEL_2"));
        assert!(!level_satisfies(
            "SLSA_SOURCE_LEVEL_3",
            "SLSA_BUILD_LEVEL_2"
        ));
    }
}
