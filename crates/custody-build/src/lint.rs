//! Pinning findings: inputs a build fetches by a name that can move (a tag, a branch, a version
//! range) instead of by digest. Each rule works on one file's contents; [`lint_tree`] runs every
//! rule that applies to a list of files and adds the tree-level rule (manifest without lockfile).
//!
//! Rules (stable codes, like cargo-deny's diagnostics):
//! - `docker-from-unpinned`: Dockerfile `FROM` without `@sha256:`
//! - `latest-tag`: an image referenced as `:latest` (or with no tag, which means latest)
//! - `action-unpinned`: GitHub Actions `uses:` not pinned to a full 40-hex commit SHA
//! - `manifest-without-lockfile`: a package manifest with dependencies and no lockfile
//! - `lockfile-entry-without-integrity`: a lockfile entry with no integrity hash

mod files;
mod manifests;

use serde::Serialize;

pub use files::{lint_dockerfile, lint_lockfile, lint_workflow};
pub use manifests::lint_manifests;

/// A rule's stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    DockerFromUnpinned,
    LatestTag,
    ActionUnpinned,
    ManifestWithoutLockfile,
    LockfileEntryWithoutIntegrity,
}

impl Rule {
    pub fn code(self) -> &'static str {
        match self {
            Self::DockerFromUnpinned => "docker-from-unpinned",
            Self::LatestTag => "latest-tag",
            Self::ActionUnpinned => "action-unpinned",
            Self::ManifestWithoutLockfile => "manifest-without-lockfile",
            Self::LockfileEntryWithoutIntegrity => "lockfile-entry-without-integrity",
        }
    }
}

/// One finding: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: Rule,
    /// Path relative to the linted directory, `/`-separated.
    pub file: String,
    /// 1-based; 0 when the finding is about the whole file.
    pub line: usize,
    pub message: String,
    pub fix: String,
}

impl Finding {
    pub(crate) fn new(
        rule: Rule,
        file: &str,
        line: usize,
        message: String,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            rule,
            file: file.to_string(),
            line,
            message,
            fix: fix.into(),
        }
    }
}

/// What kind of file a path is, for the linter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Dockerfile,
    Workflow,
    Lockfile,
    Manifest,
}

/// Classifies a relative path; `None` for files no rule reads.
pub fn classify(relative: &str) -> Option<FileKind> {
    let name = relative.rsplit('/').next().unwrap_or(relative);
    let lower = name.to_ascii_lowercase();
    if lower == "dockerfile"
        || lower.starts_with("dockerfile.")
        || lower.ends_with(".dockerfile")
        || lower == "containerfile"
    {
        return Some(FileKind::Dockerfile);
    }
    let in_workflows =
        relative.starts_with(".github/workflows/") || relative.contains("/.github/workflows/");
    if (in_workflows && (lower.ends_with(".yml") || lower.ends_with(".yaml")))
        || ((lower == "action.yml" || lower == "action.yaml") && relative.contains(".github"))
    {
        return Some(FileKind::Workflow);
    }
    if crate::provenance::is_lockfile(name) {
        return Some(FileKind::Lockfile);
    }
    if manifests::MANIFESTS.iter().any(|(m, _)| *m == name) {
        return Some(FileKind::Manifest);
    }
    None
}

/// Runs every rule over `(relative path, contents)` pairs; findings sorted by file and line.
pub fn lint_tree(files: &[(String, String)]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (path, text) in files {
        match classify(path) {
            Some(FileKind::Dockerfile) => findings.extend(lint_dockerfile(path, text)),
            Some(FileKind::Workflow) => findings.extend(lint_workflow(path, text)),
            Some(FileKind::Lockfile) => findings.extend(lint_lockfile(path, text)),
            Some(FileKind::Manifest) | None => {}
        }
    }
    findings.extend(lint_manifests(files));
    findings.sort_by(|a, b| (&a.file, a.line, a.rule).cmp(&(&b.file, b.line, b.rule)));
    findings
}

/// Counts per rule code, for the provenance summary.
pub fn summary(findings: &[Finding]) -> std::collections::BTreeMap<&'static str, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for f in findings {
        *counts.entry(f.rule.code()).or_insert(0) += 1;
    }
    counts
}

#[cfg(test)]
mod tests;
