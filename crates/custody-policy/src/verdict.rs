//! What the gate decided and why: findings with stable codes, fix hints and policy locations,
//! rendered for people, as JSON, and as SARIF 2.1.0.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value as Json, json};

use crate::input::{EvidenceSummary, Rejected};

/// A policy file and line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    pub file: String,
    pub line: u32,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One `deny` (or `warn`) the policy produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Stable, kebab-case (`provenance-missing`); a bare string deny gets `policy-denied`.
    pub code: String,
    pub message: String,
    /// How to make the artifact pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// The key id or certificate identity involved, when the rule names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// The evidence (bundle) involved, when the rule names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// Where the rule that produced the code is (the first line the code appears on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Any other fields the rule put in its object.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub details: Map<String, Json>,
}

impl Finding {
    /// Reads one element of a `deny`/`warn` set: an object with `code`, `msg` (or `message`),
    /// `fix`, `signer`, `evidence`, or a bare string.
    pub fn from_rego(item: Json) -> Finding {
        match item {
            Json::Object(mut m) => {
                let mut take = |k: &str| match m.remove(k) {
                    Some(Json::String(s)) => Some(s),
                    Some(Json::Null) | None => None,
                    Some(other) => Some(other.to_string()),
                };
                let code = take("code").unwrap_or_else(|| "policy-denied".into());
                let message = take("msg")
                    .or_else(|| take("message"))
                    .unwrap_or_else(|| code.clone());
                let fix = take("fix");
                let signer = take("signer");
                let evidence = take("evidence");
                Finding {
                    code,
                    message,
                    fix,
                    signer,
                    evidence,
                    location: None,
                    details: m,
                }
            }
            Json::String(s) => Finding {
                code: "policy-denied".into(),
                message: s,
                fix: None,
                signer: None,
                evidence: None,
                location: None,
                details: Map::new(),
            },
            other => Finding {
                code: "policy-denied".into(),
                message: other.to_string(),
                fix: None,
                signer: None,
                evidence: None,
                location: None,
                details: Map::new(),
            },
        }
    }
}

/// The artifact a verdict is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct ArtifactRef {
    /// `sha256:HEX`; `None` for an image reference not pinned by digest.
    pub digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The image reference as written (admission).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

impl ArtifactRef {
    /// What to call the artifact in a message: its name and digest.
    pub fn describe(&self) -> String {
        let digest = self.digest.as_deref().unwrap_or("(no digest)");
        match (&self.image, &self.name) {
            (Some(i), _) => format!("image {i}"),
            (None, Some(n)) => format!("{n} ({digest})"),
            (None, None) => digest.to_string(),
        }
    }
}

/// The gate's decision for one artifact.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub allowed: bool,
    pub artifact: ArtifactRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    pub policy_digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_root_digest: Option<String>,
    pub denies: Vec<Finding>,
    pub warnings: Vec<Finding>,
    pub evidence: Vec<EvidenceSummary>,
    pub rejected: Vec<Rejected>,
    /// SLSA levels the verified evidence supports (`SLSA_BUILD_LEVEL_0..2`).
    pub verified_levels: Vec<String>,
    #[serde(serialize_with = "rfc3339")]
    pub evaluated_at: DateTime<Utc>,
}

fn rfc3339<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

impl Verdict {
    /// Whether the policy was stopped at its time limit (a `policy-timeout` deny).
    pub fn timed_out(&self) -> bool {
        self.denies
            .iter()
            .any(|f| f.code == crate::limit::POLICY_TIMEOUT)
    }

    /// The verdict for people: one line for the decision, then one per finding with its fix.
    pub fn human(&self) -> String {
        let mut s = String::new();
        let env = self
            .environment
            .as_deref()
            .map(|e| format!(" for {e}"))
            .unwrap_or_default();
        if self.allowed {
            s.push_str(&format!(
                "ALLOWED {}{env} by policy {}\n",
                self.artifact.describe(),
                self.policy_digest
            ));
        } else {
            s.push_str(&format!(
                "DENIED {}{env} by policy {}\n",
                self.artifact.describe(),
                self.policy_digest
            ));
        }
        for e in &self.evidence {
            s.push_str(&format!("  evidence  {}\n", e.describe()));
        }
        for r in &self.rejected {
            s.push_str(&format!(
                "  rejected  {} [{}]: {}\n",
                r.source, r.code, r.reason
            ));
        }
        for (mark, f) in self
            .denies
            .iter()
            .map(|f| ("deny", f))
            .chain(self.warnings.iter().map(|f| ("warn", f)))
        {
            s.push_str(&format!("  {mark}      [{}] {}", f.code, f.message));
            if let Some(signer) = &f.signer {
                s.push_str(&format!(" (signer {signer})"));
            }
            if let Some(loc) = &f.location {
                s.push_str(&format!(" at {loc}"));
            }
            s.push('\n');
            if let Some(fix) = &f.fix {
                s.push_str(&format!("            fix: {fix}\n"));
            }
        }
        s
    }

    /// Every deny as `[code] message (fix: …)`, joined by `; `.
    pub fn reasons(&self) -> String {
        let reasons: Vec<String> = self
            .denies
            .iter()
            .map(|f| {
                let mut t = format!("[{}] {}", f.code, f.message);
                if let Some(fix) = &f.fix {
                    t.push_str(&format!(" (fix: {fix})"));
                }
                t
            })
            .collect();
        reasons.join("; ")
    }

    /// The whole denial as one line (for errors).
    pub fn one_line(&self) -> String {
        format!(
            "{} denied by policy {}: {}",
            self.artifact.describe(),
            short(&self.policy_digest),
            self.reasons()
        )
    }
}

fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

/// SARIF 2.1.0 for one or more verdicts: one result per deny (`error`) and warning (`warning`).
pub fn sarif(verdicts: &[Verdict]) -> Json {
    let mut rules: Vec<Json> = Vec::new();
    let mut rule_ids: Vec<String> = Vec::new();
    let mut results = Vec::new();
    for v in verdicts {
        for (level, f) in v
            .denies
            .iter()
            .map(|f| ("error", f))
            .chain(v.warnings.iter().map(|f| ("warning", f)))
        {
            if !rule_ids.contains(&f.code) {
                rule_ids.push(f.code.clone());
                let mut rule = json!({
                    "id": f.code,
                    "shortDescription": { "text": f.code },
                });
                if let Some(fix) = &f.fix {
                    rule["help"] = json!({ "text": fix });
                }
                rules.push(rule);
            }
            let mut result = json!({
                "ruleId": f.code,
                "level": level,
                "message": { "text": format!("{}: {}", v.artifact.describe(), f.message) },
                "properties": {
                    "artifact": v.artifact.digest,
                    "environment": v.environment,
                    "policyDigest": v.policy_digest,
                    "signer": f.signer,
                    "evidence": f.evidence,
                    "fix": f.fix,
                },
            });
            if let Some(loc) = &f.location {
                result["locations"] = json!([{
                    "physicalLocation": {
                        "artifactLocation": { "uri": loc.file },
                        "region": { "startLine": loc.line },
                    }
                }]);
            }
            results.push(result);
        }
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "custody",
                "informationUri": "https://github.com/custody/custody",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_read_objects_and_strings() {
        let f = Finding::from_rego(
            json!({"code": "x-y", "msg": "m", "fix": "do", "signer": "k", "extra": 1}),
        );
        assert_eq!(f.code, "x-y");
        assert_eq!(f.message, "m");
        assert_eq!(f.fix.as_deref(), Some("do"));
        assert_eq!(f.signer.as_deref(), Some("k"));
        assert_eq!(f.details.get("extra"), Some(&json!(1)));
        let s = Finding::from_rego(json!("plain"));
        assert_eq!(s.code, "policy-denied");
        assert_eq!(s.message, "plain");
    }
}
