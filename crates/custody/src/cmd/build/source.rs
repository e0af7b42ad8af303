//! What the build ran on: git facts, the source file list, toolchain versions.

use std::path::{Path, PathBuf};

use custody_build::ci::CiContext;
use custody_build::provenance::{Source, Toolchain};

use super::process::{first_line, git, resolve_program};

/// Git's view of the working directory, with CI-reported values filling the gaps.
pub fn source(dir: &Path, ci: Option<&CiContext>) -> Option<Source> {
    let top = git(dir, &["rev-parse", "--show-toplevel"]);
    let mut source = Source::default();
    if let Some(top) = &top {
        source.commit = git(dir, &["rev-parse", "--verify", "-q", "HEAD"]);
        source.git_ref = git(dir, &["symbolic-ref", "-q", "HEAD"]).or_else(|| {
            git(dir, &["describe", "--tags", "--exact-match"]).map(|t| format!("refs/tags/{t}"))
        });
        source.repository = git(dir, &["remote", "get-url", "origin"])
            .map(|u| strip_credentials(&u))
            .or_else(|| Some(format!("file://{top}")));
        source.dirty = git(dir, &["status", "--porcelain", "--untracked-files=normal"])
            .is_some_and(|s| !s.is_empty());
        source.path = git(dir, &["rev-parse", "--show-prefix"])
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string();
    }
    if let Some(ci) = ci {
        if top.is_none()
            || source
                .repository
                .as_deref()
                .is_some_and(|r| r.starts_with("file://"))
        {
            source.repository = ci.repository.clone().or(source.repository);
        }
        source.commit = source.commit.or_else(|| ci.commit.clone());
        source.git_ref = source.git_ref.or_else(|| ci.git_ref.clone());
    }
    (top.is_some() || ci.is_some()).then_some(source)
}

/// `https://user:token@host/x` → `https://host/x`: a remote URL may carry a credential.
fn strip_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((userinfo, host)) if !userinfo.contains('/') => format!("{scheme}://{host}"),
            _ => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// Files of the source tree under `dir`, relative and `/`-separated: git's tracked and
/// untracked-but-not-ignored files in a work tree, else every file except under `.git`.
pub fn list_files(dir: &Path) -> anyhow::Result<Vec<String>> {
    if let Some(out) = git(
        dir,
        &[
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ],
    ) {
        let mut files: Vec<String> = out
            .split('\0')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        files.sort();
        files.dedup();
        // Deleted-but-tracked files are listed by --cached; they are not part of the tree.
        files.retain(|f| dir.join(f).symlink_metadata().is_ok());
        return Ok(files);
    }
    let mut files = Vec::new();
    walk(dir, "", &mut files, &|name| name == ".git")?;
    files.sort();
    Ok(files)
}

/// Recursive directory walk (does not follow symlinks), skipping names `skip` says to.
pub fn walk(
    root: &Path,
    rel: &str,
    out: &mut Vec<String>,
    skip: &dyn Fn(&str) -> bool,
) -> anyhow::Result<()> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| anyhow::anyhow!("cannot list {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| anyhow::anyhow!("cannot list {}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if skip(&name) {
            continue;
        }
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(root, &path, out, skip)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// The toolchains SLSA readers ask about, with the version each reports, when on PATH.
const TOOLCHAINS: &[(&str, &[&str])] = &[
    ("rustc", &["--version"]),
    ("cargo", &["--version"]),
    ("node", &["--version"]),
    ("npm", &["--version"]),
    ("python3", &["--version"]),
    ("go", &["version"]),
    ("gcc", &["--version"]),
];

/// The version number in a `--version` line: the first word starting with a digit
/// (`v20.1.0` and `go1.22.1` lose their prefix).
fn version_of(line: &str) -> String {
    line.split_whitespace()
        .map(|w| w.trim_start_matches('v').trim_start_matches("go"))
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
        .map_or("unknown", |w| {
            w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        })
        .to_string()
}

/// Asks each toolchain on PATH for its version, one thread each (they wait on processes, so
/// they stay off rayon's pool, which is hashing at the same time).
pub fn toolchains(dir: &Path) -> Vec<Toolchain> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = TOOLCHAINS
            .iter()
            .map(|(name, args)| {
                scope.spawn(move || {
                    let path: PathBuf = resolve_program(name, dir).ok()?;
                    let reported = first_line(&path, args)?;
                    Some(Toolchain {
                        name: (*name).to_string(),
                        version: version_of(&reported),
                        reported,
                        path: path.display().to_string(),
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().ok().flatten())
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(version_of("rustc 1.95.0 (59807616e 2026-04-14)"), "1.95.0");
        assert_eq!(version_of("v20.20.2"), "20.20.2");
        assert_eq!(version_of("go version go1.22.1 linux/amd64"), "1.22.1");
        assert_eq!(version_of("gcc (Debian 12.2.0-14) 12.2.0"), "12.2.0-14");
        assert_eq!(version_of("Python 3.12.1"), "3.12.1");
    }

    #[test]
    fn credentials_are_stripped_from_remotes() {
        assert_eq!(
            strip_credentials("https://x:ghp_1@github.com/a/b"),
            "https://github.com/a/b"
        );
        assert_eq!(
            strip_credentials("git@github.com:a/b.git"),
            "git@github.com:a/b.git"
        );
    }
}
