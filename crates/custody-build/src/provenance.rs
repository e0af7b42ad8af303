//! The SLSA Provenance v1 document `custody build` signs (SPECS §3.1), inside an in-toto
//! Statement v1 whose subjects are the artifacts (SPECS §2.1).
//!
//! Field placement follows the spec's split: what the tenant controls (command, working
//! directory, source, allowlisted environment, artifact patterns, hermetic) is in
//! `externalParameters`; what custody observed or decided (CI facts, withheld variable names,
//! network isolation, pinning findings, source tree digest) is in `internalParameters`; inputs
//! with digests (the source commit, lockfiles) and toolchains are `resolvedDependencies`.
//!
//! Secret-looking values in any recorded text are replaced by `[REDACTED:<rule>]` before the
//! document is built ([`BuildRecord::redacted`], rules in [`crate::secrets`]), and
//! `internalParameters.redactions` lists each one (field and rule), so a verifier sees that
//! something was withheld and where.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use custody_core::digest::Sha256Digest;
use custody_core::intoto::slsa::{
    BuildDefinition, BuildMetadata, Builder, Provenance, ProvenanceError, RunDetails,
};
use custody_core::intoto::{ResourceDescriptor, SLSA_PROVENANCE_V1, Statement};
use serde_json::{Map, Value, json};

use crate::ci::CiContext;
use crate::env::EnvSelection;
use crate::lint::Finding;
use crate::secrets::{Redaction, redact_args, redact_field};

/// `buildDefinition.buildType`: "run this command in this source tree"; the fields are
/// described in `docs/architecture.md` ("custody build").
pub const BUILD_TYPE: &str = "urn:custody:buildtype:command:v1";

/// The builder id used outside CI when none is configured.
pub fn local_builder_id(host: &str) -> String {
    format!("urn:custody:builder:local:{host}")
}

/// Lockfile names whose digests are recorded (`requirements*.txt` by prefix).
pub const LOCKFILES: &[&str] = &[
    "Cargo.lock",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "poetry.lock",
    "uv.lock",
    "go.sum",
    "Gemfile.lock",
];

/// True for a file name that is a lockfile.
pub fn is_lockfile(name: &str) -> bool {
    LOCKFILES.contains(&name) || (name.starts_with("requirements") && name.ends_with(".txt"))
}

/// The source the build ran on, as git (or the CI platform) reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    pub repository: Option<String>,
    pub commit: Option<String>,
    pub git_ref: Option<String>,
    /// Uncommitted changes (tracked or untracked, not ignored) when the build started.
    pub dirty: bool,
    /// The working directory relative to the repository root (`""` at the root).
    pub path: String,
}

/// A toolchain found on PATH and the version it reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toolchain {
    pub name: String,
    /// The version number (`1.95.0`).
    pub version: String,
    /// The first line the tool printed for `--version`.
    pub reported: String,
    pub path: String,
}

/// Digest of a file tree: SHA-256 over `sha256sum` output lines sorted by path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeDigest {
    pub digest: Sha256Digest,
    pub files: usize,
}

/// SHA-256 of `"<hex>  <path>\n"` lines sorted by path: what
/// `sort -z FILES | xargs -0 sha256sum | sha256sum` prints for the same list.
pub fn tree_digest(entries: &mut [(String, Sha256Digest)]) -> TreeDigest {
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut listing = String::with_capacity(entries.len() * 80);
    for (path, digest) in entries.iter() {
        listing.push_str(&digest.hex());
        listing.push_str("  ");
        listing.push_str(path);
        listing.push('\n');
    }
    TreeDigest {
        digest: Sha256Digest::of(listing.as_bytes()),
        files: entries.len(),
    }
}

/// Everything custody observed about one build.
#[derive(Debug, Clone)]
pub struct BuildRecord {
    pub invocation_id: String,
    pub started_on: DateTime<Utc>,
    pub finished_on: DateTime<Utc>,
    pub builder_id: String,
    pub custody_version: String,
    pub command: Vec<String>,
    pub working_directory: String,
    pub artifact_patterns: Vec<String>,
    pub source: Option<Source>,
    pub source_tree: Option<TreeDigest>,
    pub environment: EnvSelection,
    pub hermetic: bool,
    pub lockfiles: Vec<(String, Sha256Digest)>,
    pub toolchains: Vec<Toolchain>,
    pub ci: Option<CiContext>,
    pub pinning: Vec<Finding>,
}

/// Findings copied into the provenance in full; the counts always cover all of them.
pub const MAX_RECORDED_FINDINGS: usize = 50;

fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn source_uri(source: &Source) -> Option<String> {
    let repo = source.repository.as_ref()?;
    let base = if repo.starts_with("git+") {
        repo.clone()
    } else {
        format!("git+{repo}")
    };
    Some(match &source.git_ref {
        Some(r) => format!("{base}@{r}"),
        None => base,
    })
}

impl BuildRecord {
    /// This record with every secret-looking value in its recorded text replaced by a marker,
    /// and the list of replacements (field path in the provenance, rule). The provenance is
    /// always built from the redacted record; callers use the list to warn.
    pub fn redacted(&self) -> (BuildRecord, Vec<Redaction>) {
        const EXT: &str = "buildDefinition.externalParameters";
        const DEPS: &str = "buildDefinition.resolvedDependencies";
        let mut r = self.clone();
        let mut found = Vec::new();
        redact_args(&mut r.command, &format!("{EXT}.command"), &mut found);
        redact_field(
            &mut r.working_directory,
            &format!("{EXT}.workingDirectory"),
            &mut found,
        );
        redact_args(
            &mut r.artifact_patterns,
            &format!("{EXT}.artifacts"),
            &mut found,
        );
        for (name, value) in r.environment.recorded.iter_mut() {
            redact_field(value, &format!("{EXT}.environment.{name}"), &mut found);
        }
        if let Some(source) = r.source.as_mut() {
            for (field, text) in [
                ("repository", source.repository.as_mut()),
                ("ref", source.git_ref.as_mut()),
            ] {
                if let Some(text) = text {
                    redact_field(text, &format!("{EXT}.source.{field}"), &mut found);
                }
            }
        }
        for t in r.toolchains.iter_mut() {
            let at = format!("{DEPS}[name={}]", t.name);
            redact_field(&mut t.version, &format!("{at}.uri"), &mut found);
            redact_field(
                &mut t.reported,
                &format!("{at}.annotations.version"),
                &mut found,
            );
            redact_field(&mut t.path, &format!("{at}.annotations.path"), &mut found);
        }
        if let Some(ci) = r.ci.as_mut() {
            const CI: &str = "buildDefinition.internalParameters.ci";
            if let Some(url) = ci.run_url.as_mut() {
                redact_field(url, &format!("{CI}.runUrl"), &mut found);
            }
            for (name, value) in ci.details.iter_mut() {
                redact_field(value, &format!("{CI}.details.{name}"), &mut found);
            }
        }
        (r, found)
    }

    fn external_parameters(&self) -> Map<String, Value> {
        let mut ext = obj(json!({
            "command": self.command,
            "workingDirectory": self.working_directory,
            "artifacts": self.artifact_patterns,
            "environment": self.environment.recorded,
            "hermetic": self.hermetic,
        }));
        if let Some(s) = &self.source {
            ext.insert(
                "source".into(),
                json!({ "repository": s.repository, "commit": s.commit, "ref": s.git_ref,
                        "dirty": s.dirty, "path": s.path }),
            );
        }
        ext
    }

    fn internal_parameters(&self, redactions: &[Redaction]) -> Map<String, Value> {
        let mut int = Map::new();
        let redactions: Vec<Value> = redactions
            .iter()
            .map(|r| json!({ "field": r.field, "rule": r.rule }))
            .collect();
        int.insert("redactions".into(), Value::Array(redactions));
        int.insert(
            "network".into(),
            json!(if self.hermetic {
                "none: fresh network namespace (CLONE_NEWNET)"
            } else {
                "host"
            }),
        );
        int.insert(
            "environmentWithheld".into(),
            json!(self.environment.withheld),
        );
        if let Some(ci) = &self.ci {
            int.insert(
                "ci".into(),
                json!({ "platform": ci.platform.as_str(), "runUrl": ci.run_url, "details": ci.details }),
            );
        }
        if let Some(tree) = &self.source_tree {
            int.insert(
                "sourceTree".into(),
                json!({ "sha256": tree.digest.hex(), "files": tree.files,
                        "method": "sha256 of sorted `sha256sum` lines of the tracked and untracked, not ignored files" }),
            );
        }
        let recorded: Vec<&Finding> = self.pinning.iter().take(MAX_RECORDED_FINDINGS).collect();
        int.insert(
            "pinning".into(),
            json!({ "findings": self.pinning.len(), "byRule": crate::lint::summary(&self.pinning),
                    "recorded": recorded }),
        );
        int
    }

    fn resolved_dependencies(&self) -> Vec<ResourceDescriptor> {
        let mut deps = Vec::new();
        if let Some(s) = &self.source {
            if let Some(commit) = &s.commit {
                let mut rd = ResourceDescriptor {
                    uri: source_uri(s),
                    ..Default::default()
                };
                rd.digest.insert("gitCommit".into(), commit.clone());
                rd.annotations = Some(obj(json!({ "dirty": s.dirty })));
                deps.push(rd);
            }
        }
        for (path, digest) in &self.lockfiles {
            deps.push(ResourceDescriptor::from_sha256(path.clone(), digest));
        }
        for t in &self.toolchains {
            deps.push(ResourceDescriptor {
                name: Some(t.name.clone()),
                uri: Some(format!("pkg:generic/{}@{}", t.name, t.version)),
                annotations: Some(obj(json!({ "version": t.reported, "path": t.path }))),
                ..Default::default()
            });
        }
        deps
    }

    /// The SLSA Provenance v1 predicate, checked against Build L1's required fields.
    /// Secret-looking values are redacted first ([`BuildRecord::redacted`]).
    pub fn provenance(&self) -> Result<Provenance, ProvenanceError> {
        let (record, redactions) = self.redacted();
        record.provenance_as_is(&redactions)
    }

    fn provenance_as_is(&self, redactions: &[Redaction]) -> Result<Provenance, ProvenanceError> {
        let provenance = Provenance {
            build_definition: BuildDefinition {
                build_type: BUILD_TYPE.to_string(),
                external_parameters: self.external_parameters(),
                internal_parameters: Some(self.internal_parameters(redactions)),
                resolved_dependencies: self.resolved_dependencies(),
            },
            run_details: RunDetails {
                builder: Builder {
                    id: self.builder_id.clone(),
                    version: BTreeMap::from([(
                        "custody".to_string(),
                        self.custody_version.clone(),
                    )]),
                    builder_dependencies: Vec::new(),
                },
                metadata: Some(BuildMetadata {
                    invocation_id: Some(self.invocation_id.clone()),
                    started_on: Some(self.started_on),
                    finished_on: Some(self.finished_on),
                }),
                byproducts: Vec::new(),
            },
        };
        provenance.validate()?;
        Ok(provenance)
    }

    /// The in-toto Statement: `subjects` (name relative to the working directory, sha256) and
    /// this build's provenance.
    pub fn statement(
        &self,
        subjects: &[(String, Sha256Digest)],
    ) -> Result<Statement, ProvenanceError> {
        let predicate = serde_json::to_value(self.provenance()?)
            .map_err(|source| ProvenanceError::Schema { source })?;
        let subject = subjects
            .iter()
            .map(|(name, digest)| ResourceDescriptor::from_sha256(name.clone(), digest))
            .collect();
        Ok(Statement::new_v1(
            subject,
            SLSA_PROVENANCE_V1.to_string(),
            predicate,
        ))
    }
}

#[cfg(test)]
mod tests;
