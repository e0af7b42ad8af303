//! `custody lint [DIR]`: pinning findings, each with file:line and the fix.

use std::path::Path;

use custody_build::lint::{self, Finding};
use serde_json::json;

use super::Context;
use super::build::source;
use crate::cli::{LintArgs, OutputFormat};
use crate::outcome::{ExitWith, Outcome};

/// Files larger than this are not linted (no lockfile or Dockerfile is this large).
const MAX_LINTED: u64 = 32 << 20;

/// Reads the files a rule applies to and runs every rule. Unreadable files are skipped: the
/// linter reports on what it can read and never fails a build for it.
pub(crate) fn lint_files(dir: &Path, files: &[String]) -> Vec<Finding> {
    let contents: Vec<(String, String)> = files
        .iter()
        .filter(|f| lint::classify(f).is_some())
        .filter_map(|f| {
            let path = dir.join(f);
            let meta = std::fs::metadata(&path).ok()?;
            if !meta.is_file() || meta.len() > MAX_LINTED {
                return None;
            }
            let bytes = std::fs::read(&path).ok()?;
            Some((f.clone(), String::from_utf8_lossy(&bytes).into_owned()))
        })
        .collect();
    lint::lint_tree(&contents)
}

pub fn lint(ctx: &Context, args: LintArgs) -> anyhow::Result<Outcome> {
    if !args.dir.is_dir() {
        anyhow::bail!(
            "{}: not a directory (give the source tree to check)",
            args.dir.display()
        );
    }
    let files = source::list_files(&args.dir)?;
    let findings = lint_files(&args.dir, &files);
    let summary = lint::summary(&findings);
    ctx.emit(
        &json!({ "ok": findings.is_empty() || !args.deny, "findings": findings, "byRule": summary,
                 "filesChecked": files.iter().filter(|f| lint::classify(f).is_some()).count() }),
        || {
            let mut s = String::new();
            for f in &findings {
                s.push_str(&format!(
                    "{}:{}: {}: {}\n    fix: {}\n",
                    f.file,
                    f.line,
                    f.rule.code(),
                    f.message,
                    f.fix
                ));
            }
            if findings.is_empty() {
                s.push_str("No pinning findings.\n");
            } else {
                s.push_str(&format!("{} pinning finding(s)\n", findings.len()));
            }
            s
        },
    );
    if args.deny && !findings.is_empty() {
        return Err(ExitWith {
            code: 1,
            message: format!(
                "{} pinning finding(s) in {} and --deny is set",
                findings.len(),
                args.dir.display()
            ),
            reported: ctx.output == OutputFormat::Json,
        }
        .into());
    }
    Ok(Outcome::Done)
}
