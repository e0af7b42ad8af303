//! `manifest-without-lockfile`: a manifest that declares dependencies needs a lockfile in its
//! directory or an ancestor's (workspaces keep one at the root), else every build resolves the
//! version ranges afresh.

use super::{Finding, Rule};

/// Manifest file name → the lockfiles that pin it.
pub const MANIFESTS: &[(&str, &[&str])] = &[
    ("Cargo.toml", &["Cargo.lock"]),
    (
        "package.json",
        &[
            "package-lock.json",
            "npm-shrinkwrap.json",
            "yarn.lock",
            "pnpm-lock.yaml",
            "bun.lock",
            "bun.lockb",
        ],
    ),
    (
        "pyproject.toml",
        &["poetry.lock", "uv.lock", "pdm.lock", "requirements.txt"],
    ),
    ("go.mod", &["go.sum"]),
    ("Gemfile", &["Gemfile.lock"]),
];

const FIXES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        "run `cargo generate-lockfile` and commit Cargo.lock",
    ),
    (
        "package.json",
        "run `npm install --package-lock-only` and commit package-lock.json",
    ),
    (
        "pyproject.toml",
        "run `poetry lock` or `uv lock` and commit the lockfile",
    ),
    ("go.mod", "run `go mod tidy` and commit go.sum"),
    ("Gemfile", "run `bundle lock` and commit Gemfile.lock"),
];

/// The 1-based line where the manifest declares its first dependency, if it declares any.
fn first_dependency_line(name: &str, text: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let find =
        |pred: &dyn Fn(&str) -> bool| lines.iter().position(|l| pred(l.trim())).map(|i| i + 1);
    match name {
        "Cargo.toml" | "pyproject.toml" => {
            let mut in_deps: Option<usize> = None;
            for (i, l) in lines.iter().enumerate() {
                let t = l.trim();
                if t.starts_with('[') {
                    let header = t.trim_matches(|c| c == '[' || c == ']');
                    in_deps = (header.ends_with("dependencies")).then_some(i + 1);
                    continue;
                }
                if let Some(at) = in_deps {
                    if t.contains('=') && !t.starts_with('#') && !t.starts_with("python") {
                        return Some(at);
                    }
                }
                if name == "pyproject.toml" && t.starts_with("dependencies") && t.contains('=') {
                    let rest = t.split_once('=').map_or("", |(_, r)| r.trim());
                    if rest != "[]" {
                        return Some(i + 1);
                    }
                }
            }
            None
        }
        "package.json" => {
            let doc: serde_json::Value = serde_json::from_str(text).ok()?;
            [
                "dependencies",
                "devDependencies",
                "optionalDependencies",
                "peerDependencies",
            ]
            .iter()
            .find(|k| {
                doc.get(**k)
                    .and_then(|v| v.as_object())
                    .is_some_and(|o| !o.is_empty())
            })
            .map(|k| find(&|l: &str| l.starts_with(&format!("\"{k}\""))).unwrap_or(1))
        }
        "go.mod" => find(&|l: &str| l.starts_with("require")),
        "Gemfile" => find(&|l: &str| l.starts_with("gem ")),
        _ => None,
    }
}

fn parent(path: &str) -> Option<&str> {
    path.rsplit_once('/').map(|(dir, _)| dir)
}

fn has_lockfile(dir: &str, locks: &[&str], present: &std::collections::BTreeSet<&str>) -> bool {
    let mut dir = Some(dir);
    while let Some(d) = dir {
        let found = locks.iter().any(|lock| {
            let p = if d.is_empty() {
                (*lock).to_string()
            } else {
                format!("{d}/{lock}")
            };
            present.contains(p.as_str())
        });
        if found {
            return true;
        }
        dir = if d.is_empty() {
            None
        } else {
            Some(parent(d).unwrap_or(""))
        };
    }
    false
}

/// Runs the rule over every manifest among `files` (relative path, contents).
pub fn lint_manifests(files: &[(String, String)]) -> Vec<Finding> {
    let present: std::collections::BTreeSet<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    let mut findings = Vec::new();
    for (path, text) in files {
        let name = path.rsplit('/').next().unwrap_or(path);
        let Some((_, locks)) = MANIFESTS.iter().find(|(m, _)| *m == name) else {
            continue;
        };
        let Some(line) = first_dependency_line(name, text) else {
            continue;
        };
        if has_lockfile(parent(path).unwrap_or(""), locks, &present) {
            continue;
        }
        let fix = FIXES
            .iter()
            .find(|(m, _)| *m == name)
            .map_or("commit a lockfile", |(_, f)| f);
        findings.push(Finding::new(
            Rule::ManifestWithoutLockfile,
            path,
            line,
            format!(
                "{name} declares dependencies but no lockfile ({}) pins them",
                locks.join(", ")
            ),
            fix.to_string(),
        ));
    }
    findings
}
