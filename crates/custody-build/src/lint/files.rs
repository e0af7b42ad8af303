//! Rules over one file's contents: Dockerfiles, GitHub Actions workflows, lockfiles.

use super::{Finding, Rule};

const DIGEST_FIX: &str = "pin by digest: `docker buildx imagetools inspect IMAGE:TAG` prints it; write IMAGE:TAG@sha256:DIGEST";

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The tag of an image reference without a digest (`None` = no tag, which means `latest`).
fn image_tag(image: &str) -> Option<&str> {
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':').map(|(_, tag)| tag)
}

fn latest_finding(file: &str, line: usize, image: &str) -> Option<Finding> {
    let name = image.split('@').next().unwrap_or(image);
    match image_tag(name) {
        Some("latest") => Some(Finding::new(
            Rule::LatestTag,
            file,
            line,
            format!("image {image} uses the `latest` tag, which moves"),
            "name a version tag and pin it by digest",
        )),
        None if !image.contains("@sha256:") => Some(Finding::new(
            Rule::LatestTag,
            file,
            line,
            format!("image {image} has no tag, which means `latest`"),
            "name a version tag and pin it by digest",
        )),
        _ => None,
    }
}

/// Dockerfile `FROM`: every base image pinned by digest, never `latest`. Build stages named with
/// `AS` and `scratch` are not images; `FROM $ARG` cannot be judged statically and is skipped.
pub fn lint_dockerfile(file: &str, text: &str) -> Vec<Finding> {
    let mut stages: Vec<String> = Vec::new();
    let mut findings = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let mut words = line.split_whitespace();
        if !words.next().is_some_and(|w| w.eq_ignore_ascii_case("FROM")) {
            continue;
        }
        let rest: Vec<&str> = words.filter(|w| !w.starts_with("--")).collect();
        let Some(image) = rest.first().copied() else {
            continue;
        };
        let lower = image.to_ascii_lowercase();
        let earlier_stage = stages.contains(&lower);
        if let (Some(kw), Some(stage)) = (rest.get(1), rest.get(2)) {
            if kw.eq_ignore_ascii_case("AS") {
                stages.push(stage.to_ascii_lowercase());
            }
        }
        if lower == "scratch" || image.contains('$') || earlier_stage {
            continue;
        }
        if !image.contains("@sha256:") {
            findings.push(Finding::new(
                Rule::DockerFromUnpinned,
                file,
                i + 1,
                format!("FROM {image} is not pinned by digest"),
                DIGEST_FIX,
            ));
        }
        findings.extend(latest_finding(file, i + 1, image));
    }
    findings
}

/// The value of a `key:` YAML line (`- uses: x`, `uses: "x" # comment`), if this line has it.
fn yaml_value<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let t = line.trim_start().trim_start_matches("- ").trim_start();
    let value = t.strip_prefix(key)?.strip_prefix(':')?;
    let value = value.split(" #").next().unwrap_or(value).trim();
    Some(value.trim_matches(|c| c == '"' || c == '\''))
}

/// GitHub Actions: `uses:` pinned to a full commit SHA (a tag or branch can be moved by whoever
/// controls the action's repository); `docker://` and `image:` references pinned by digest.
pub fn lint_workflow(file: &str, text: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        if let Some(image) = yaml_value(raw, "image").or_else(|| yaml_value(raw, "container")) {
            if !image.is_empty() && !image.contains("${{") {
                findings.extend(latest_finding(file, n, image));
            }
            continue;
        }
        let Some(uses) = yaml_value(raw, "uses") else {
            continue;
        };
        if uses.is_empty() || uses.starts_with("./") || uses.contains("${{") {
            continue;
        }
        if let Some(image) = uses.strip_prefix("docker://") {
            if !image.contains("@sha256:") {
                findings.push(Finding::new(
                    Rule::ActionUnpinned,
                    file,
                    n,
                    format!("uses: {uses} is not pinned by digest"),
                    DIGEST_FIX,
                ));
            }
            findings.extend(latest_finding(file, n, image));
            continue;
        }
        let pinned = uses
            .rsplit_once('@')
            .is_some_and(|(_, r)| is_hex(r, 40) || is_hex(r, 64));
        if !pinned {
            let action = uses.split('@').next().unwrap_or(uses);
            findings.push(Finding::new(
                Rule::ActionUnpinned,
                file,
                n,
                format!("uses: {uses} is not pinned to a full commit SHA"),
                format!(
                    "write `uses: {action}@<40-hex commit>  # <tag>` (`git ls-remote https://github.com/{} <tag>` prints it)",
                    action.splitn(3, '/').take(2).collect::<Vec<_>>().join("/")
                ),
            ));
        }
    }
    findings
}

fn no_integrity(file: &str, line: usize, what: &str, fix: &str) -> Finding {
    Finding::new(
        Rule::LockfileEntryWithoutIntegrity,
        file,
        line,
        format!("{what} has no integrity hash"),
        fix,
    )
}

/// Lockfile entries that pin a version but not the bytes.
pub fn lint_lockfile(file: &str, text: &str) -> Vec<Finding> {
    let name = file.rsplit('/').next().unwrap_or(file);
    match name {
        "package-lock.json" | "npm-shrinkwrap.json" => package_lock(file, text),
        "yarn.lock" => yarn_lock(file, text),
        "Cargo.lock" => toml_packages(file, text, "Cargo.lock"),
        "poetry.lock" => toml_packages(file, text, "poetry.lock"),
        "pnpm-lock.yaml" => pnpm_lock(file, text),
        "Gemfile.lock" => gemfile_lock(file, text),
        n if n.starts_with("requirements") && n.ends_with(".txt") => requirements(file, text),
        _ => Vec::new(),
    }
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map_or(0, |i| i + 1)
}

fn package_lock(file: &str, text: &str) -> Vec<Finding> {
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(text) else {
        return vec![Finding::new(
            Rule::LockfileEntryWithoutIntegrity,
            file,
            1,
            "is not valid JSON, so no entry can be checked".to_string(),
            "regenerate it with `npm install --package-lock-only`",
        )];
    };
    let fix =
        "regenerate with `npm install --package-lock-only` from a registry that serves integrity";
    let mut findings = Vec::new();
    let Some(packages) = doc.get("packages").and_then(|p| p.as_object()) else {
        return findings;
    };
    for (key, entry) in packages {
        let skip = key.is_empty()
            || entry.get("link").and_then(|v| v.as_bool()) == Some(true)
            || entry.get("inBundle").and_then(|v| v.as_bool()) == Some(true)
            || entry
                .get("resolved")
                .and_then(|v| v.as_str())
                .is_some_and(|r| r.starts_with("git") || r.starts_with("file:"));
        if !skip && entry.get("integrity").is_none() {
            let line = line_of(text, &format!("\"{key}\":"));
            findings.push(no_integrity(file, line, &format!("entry {key}"), fix));
        }
    }
    findings
}

fn yarn_lock(file: &str, text: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut block: Option<(usize, String, bool, bool, bool)> = None; // line, name, resolved, hash, soft
    let flush = |b: Option<(usize, String, bool, bool, bool)>, out: &mut Vec<Finding>| {
        if let Some((line, name, resolved, hash, soft)) = b {
            if resolved && !hash && !soft && !name.starts_with("__metadata") {
                out.push(no_integrity(
                    file,
                    line,
                    &format!("entry {name}"),
                    "regenerate with `yarn install` (yarn 1 writes `integrity`, yarn 2+ `checksum`)",
                ));
            }
        }
    };
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() || raw.starts_with('#') {
            continue;
        }
        if !raw.starts_with(' ') {
            flush(block.take(), &mut findings);
            let name = raw.trim_end_matches(':').trim_matches('"').to_string();
            block = Some((i + 1, name, false, false, false));
            continue;
        }
        if let Some(b) = block.as_mut() {
            let t = raw.trim_start();
            b.2 |= t.starts_with("resolved ") || t.starts_with("resolution:");
            b.3 |= t.starts_with("integrity ") || t.starts_with("checksum:");
            b.4 |= t.starts_with("linkType: soft");
        }
    }
    flush(block.take(), &mut findings);
    findings
}

/// `[[package]]` tables: Cargo.lock registry packages need `checksum`; poetry.lock packages need
/// a non-empty `files` list (poetry keeps the hashes there).
fn toml_packages(file: &str, text: &str, kind: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut starts: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim() == "[[package]]")
        .map(|(i, _)| i)
        .collect();
    let lines: Vec<&str> = text.lines().collect();
    starts.push(lines.len());
    for w in starts.windows(2) {
        let (start, end) = (w[0], w[1]);
        let body = lines.get(start + 1..end).unwrap_or(&[]);
        let body: Vec<&str> = body
            .iter()
            .take_while(|l| !l.starts_with('[') || l.starts_with("[[package]]"))
            .copied()
            .collect();
        let field = |k: &str| {
            body.iter().find_map(|l| {
                l.strip_prefix(k).map(|v| {
                    v.trim_start()
                        .trim_start_matches('=')
                        .trim()
                        .trim_matches('"')
                        .to_string()
                })
            })
        };
        let name = field("name ").unwrap_or_default();
        let version = field("version ").unwrap_or_default();
        let missing = if kind == "Cargo.lock" {
            field("source ").is_some_and(|s| s.starts_with("registry+") || s.starts_with("sparse+"))
                && field("checksum ").is_none()
        } else {
            field("files ").is_some_and(|f| f == "[]")
        };
        if missing {
            let fix = if kind == "Cargo.lock" {
                "regenerate with `cargo generate-lockfile` (registry packages get a `checksum`)"
            } else {
                "regenerate with `poetry lock` so `files` lists every distribution with its hash"
            };
            findings.push(no_integrity(
                file,
                start + 1,
                &format!("package {name} {version}"),
                fix,
            ));
        }
    }
    findings
}

fn pnpm_lock(file: &str, text: &str) -> Vec<Finding> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            l.contains("resolution:")
                && !l.contains("integrity")
                && !l.contains("directory:")
                && !l.contains("commit:")
        })
        .map(|(i, l)| {
            no_integrity(
                file,
                i + 1,
                &format!("entry `{}`", l.trim()),
                "regenerate with `pnpm install --lockfile-only`",
            )
        })
        .collect()
}

fn gemfile_lock(file: &str, text: &str) -> Vec<Finding> {
    if text.lines().any(|l| l.trim() == "CHECKSUMS") {
        return Vec::new();
    }
    vec![no_integrity(
        file,
        1,
        "the lockfile (no CHECKSUMS section: no gem)",
        "run `bundle lock --add-checksums` (Bundler 2.5+)",
    )]
}

fn requirements(file: &str, text: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split(" #").next().unwrap_or(raw).trim();
        let (start, mut joined) = current.take().unwrap_or((i + 1, String::new()));
        joined.push_str(line.trim_end_matches('\\'));
        joined.push(' ');
        if line.ends_with('\\') {
            current = Some((start, joined));
            continue;
        }
        let req = joined.trim();
        if req.is_empty() || req.starts_with('#') || req.starts_with('-') {
            continue;
        }
        if !req.contains("--hash=") {
            let what = req.split_whitespace().next().unwrap_or(req);
            findings.push(no_integrity(
                file,
                start,
                &format!("requirement {what}"),
                "generate hashes: `pip-compile --generate-hashes` (or `uv pip compile --generate-hashes`), then install with `--require-hashes`",
            ));
        }
    }
    findings
}
