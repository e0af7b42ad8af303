//! `custody verify --bundles-from LIST`: many bundles, one trusted root parsed once, verified in
//! parallel on every core, one result per line in the order of the list.
//!
//! LIST format, one bundle per line (blank lines and lines starting with `#` are skipped):
//! * `ARTIFACT BUNDLE` or `ARTIFACT BUNDLE IDENTITY ISSUER`, separated by whitespace, where
//!   ARTIFACT is a file or `sha256:HEX`; relative paths are relative to the current directory
//!   (as with `sha256sum -c`). IDENTITY and ISSUER are exact values; without them the
//!   `--certificate-*` flags apply.
//! * or a JSON object: `{"artifact": "...", "bundle": "...", "identity": "...", "issuer": "...",
//!   "identityRegexp": "...", "issuerRegexp": "..."}` (all but `artifact` and `bundle` optional),
//!   for values with spaces and for patterns.
//!
//! Exit status: 0 all verified, 1 any refused, 2 any line that could not be checked at all (a
//! missing file) or a malformed list (nothing is verified then).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use custody_core::x509::IdentityMatcher;
use serde_json::json;

use super::{Failure, Subject, Trust, identity_matcher, report, verify_one};
use crate::cli::{IdentityArgs, OutputFormat, VerifyArgs};
use crate::cmd::Context;
use crate::outcome::Outcome;

/// One line of the list.
struct Item {
    line: usize,
    artifact: String,
    bundle: PathBuf,
    identity: Option<IdentityMatcher>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JsonItem {
    artifact: String,
    bundle: PathBuf,
    identity: Option<String>,
    issuer: Option<String>,
    identity_regexp: Option<String>,
    issuer_regexp: Option<String>,
}

fn parse_line(line: usize, text: &str) -> anyhow::Result<Option<Item>> {
    let text = text.trim();
    if text.is_empty() || text.starts_with('#') {
        return Ok(None);
    }
    if text.starts_with('{') {
        let item: JsonItem = serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("line {line}: not a bundle-list JSON object: {e}"))?;
        let identity = identity_matcher(&IdentityArgs {
            certificate_identity: item.identity,
            certificate_identity_regexp: item.identity_regexp,
            certificate_oidc_issuer: item.issuer,
            certificate_oidc_issuer_regexp: item.issuer_regexp,
        })
        .map_err(|e| anyhow::anyhow!("line {line}: {e}"))?;
        return Ok(Some(Item {
            line,
            artifact: item.artifact,
            bundle: item.bundle,
            identity,
        }));
    }
    let fields: Vec<&str> = text.split_whitespace().collect();
    let (artifact, bundle, identity) = match fields.as_slice() {
        [a, b] => (a, b, None),
        [a, b, id, iss] => (a, b, Some(IdentityMatcher::exact(*id, *iss))),
        _ => anyhow::bail!(
            "line {line}: expected `ARTIFACT BUNDLE [IDENTITY ISSUER]` (or a JSON object), found {} fields",
            fields.len()
        ),
    };
    Ok(Some(Item {
        line,
        artifact: (*artifact).to_string(),
        bundle: PathBuf::from(bundle),
        identity,
    }))
}

fn read_list(list: &Path) -> anyhow::Result<Vec<Item>> {
    let reader: Box<dyn BufRead> = if list == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(list)
            .map_err(|e| anyhow::anyhow!("bundle list {}: {e}", list.display()))?;
        Box::new(std::io::BufReader::new(file))
    };
    let mut items = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| anyhow::anyhow!("bundle list {}: {e}", list.display()))?;
        if let Some(item) = parse_line(i + 1, &line)? {
            items.push(item);
        }
    }
    Ok(items)
}

/// One line's result, rendered by the worker that verified it.
struct Rendered {
    text: String,
    failure: Option<bool>, // Some(true) = usage, Some(false) = denied
}

fn check(ctx: &Context, trust: &Trust, item: &Item) -> Rendered {
    let result = Subject::parse(&item.artifact)
        .map_err(Failure::Usage)
        .and_then(|subject| {
            verify_one(trust, item.identity.as_ref(), &subject, &item.bundle).map(|v| (v, subject))
        });
    let json = ctx.output == OutputFormat::Json;
    match result {
        Ok((v, subject)) => {
            let text = if json {
                let mut doc = report::json(&v, subject.path(), &item.bundle);
                doc["line"] = json!(item.line);
                doc.to_string()
            } else {
                let signer = match &v.signer {
                    custody_core::verify::VerifiedSigner::Key { key_id, .. } => {
                        format!("key {key_id}")
                    }
                    custody_core::verify::VerifiedSigner::Certificate(c) => {
                        format!("{} ({})", c.identity.as_str(), c.issuer)
                    }
                };
                format!("OK   {} {} {signer}", item.artifact, item.bundle.display())
            };
            Rendered {
                text,
                failure: None,
            }
        }
        Err(failure) => {
            let (code, message, usage) = match failure {
                Failure::Denied { code, message } => (code, message, false),
                Failure::Usage(e) => ("usage", crate::outcome::one_line(&e), true),
            };
            let text = if json {
                json!({
                    "ok": false, "line": item.line, "artifact": item.artifact,
                    "bundle": item.bundle, "code": code, "error": message,
                })
                .to_string()
            } else {
                format!(
                    "FAIL {} {} [{code}] {message}",
                    item.artifact,
                    item.bundle.display()
                )
            };
            Rendered {
                text,
                failure: Some(usage),
            }
        }
    }
}

pub(super) fn run(ctx: &Context, args: &VerifyArgs, list: &Path) -> anyhow::Result<Outcome> {
    let items = read_list(list)?;
    let trust = Trust::load(ctx, args)?;
    let workers = args
        .jobs
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
        .clamp(1, 256)
        .min(items.len().max(1));
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<Rendered>> = (0..items.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        done.push((i, check(ctx, &trust, item)));
                    }
                    done
                })
            })
            .collect();
        for handle in handles {
            // A worker that panicked loses its results; those lines are reported below.
            for (i, rendered) in handle.join().unwrap_or_default() {
                if let Some(slot) = results.get_mut(i) {
                    *slot = Some(rendered);
                }
            }
        }
    });
    let (mut denied, mut usage) = (0usize, 0usize);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (item, result) in items.iter().zip(results) {
        let rendered = result.unwrap_or_else(|| Rendered {
            text: format!("FAIL {} internal error", item.artifact),
            failure: Some(true),
        });
        match rendered.failure {
            Some(true) => usage += 1,
            Some(false) => denied += 1,
            None => {}
        }
        if ctx.output == OutputFormat::Json || !ctx.quiet || rendered.failure.is_some() {
            writeln!(out, "{}", rendered.text)?;
        }
    }
    out.flush()?;
    if !ctx.quiet {
        eprintln!(
            "{} bundles: {} verified, {denied} refused, {usage} not checked",
            items.len(),
            items.len() - denied - usage
        );
    }
    Ok(match (usage, denied) {
        (0, 0) => Outcome::Done,
        (0, _) => Outcome::SomeDenied,
        _ => Outcome::Usage,
    })
}
