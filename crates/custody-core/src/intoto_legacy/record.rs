//! Recording artifacts as python in-toto's `record_artifacts_as_dict` does: files and
//! directory trees (following symlinks), relative paths normalised like `os.path.normpath`,
//! `sha256` digests, and the default exclude patterns.

use std::path::Path;

use super::model::{Artifacts, DigestSet};
use super::rules::fnmatch;
use crate::digest::{HashFileError, sha256_file};

/// in-toto's `ARTIFACT_EXCLUDE_PATTERNS`: links, `.git`, Python bytecode, editor backups.
pub const DEFAULT_EXCLUDES: [&str; 4] = ["*.link*", ".git", "*.pyc", "*~"];
/// Directory depth at which recording stops following (symlink loops).
const MAX_DEPTH: usize = 64;

/// Why artifacts could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Hash(#[from] HashFileError),
    #[error("{path}: cannot list directory: {source}")]
    ReadDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Hashes `paths` (relative to `base`, or absolute). Paths that do not exist are skipped, as
/// in-toto does; the names in the result are the normalised paths as given.
pub fn record_artifacts(
    paths: &[String],
    base: &Path,
    excludes: &[&str],
) -> Result<Artifacts, RecordError> {
    let mut out = Artifacts::new();
    for given in paths {
        let name = normpath(&given.replace('\\', "/"));
        if excluded(&name, excludes) {
            continue;
        }
        walk(base, &name, excludes, 0, &mut out)?;
    }
    Ok(out)
}

fn walk(
    base: &Path,
    name: &str,
    excludes: &[&str],
    depth: usize,
    out: &mut Artifacts,
) -> Result<(), RecordError> {
    let path = base.join(name);
    let Ok(meta) = std::fs::metadata(&path) else {
        // Missing, or a broken symlink: skipped.
        return Ok(());
    };
    if meta.is_file() {
        let (digest, _) = sha256_file(&path, |_| {})?;
        out.insert(
            name.to_string(),
            DigestSet::from([("sha256".to_string(), digest.hex())]),
        );
        return Ok(());
    }
    if !meta.is_dir() || depth >= MAX_DEPTH {
        return Ok(());
    }
    let entries = std::fs::read_dir(&path).map_err(|source| RecordError::ReadDir {
        path: path.display().to_string(),
        source,
    })?;
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        let child = normpath(&format!("{name}/{file_name}"));
        if !excluded(&child, excludes) {
            walk(base, &child, excludes, depth + 1, out)?;
        }
    }
    Ok(())
}

/// gitignore-style exclusion, simplified: a pattern without `/` matches any path component,
/// one with `/` the whole path.
fn excluded(path: &str, excludes: &[&str]) -> bool {
    excludes.iter().any(|pattern| {
        if pattern.contains('/') {
            fnmatch(path, pattern.trim_start_matches('/'))
        } else {
            path.split('/').any(|component| fnmatch(component, pattern))
        }
    })
}

/// Python `os.path.normpath` on POSIX.
pub fn normpath(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !absolute {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}
