//! `custody build --reproduce`: two builds in two fresh copies of the source tree under varied
//! conditions; every artifact must come out bit-for-bit the same.
//!
//! Variations (reproducible-builds.org's usual suspects, those that need no privileges): the
//! build path (different depth and names), TZ, LANG, umask, and the order files were created in
//! the copy. SOURCE_DATE_EPOCH is passed through when set, else set to the commit time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use chrono::{DateTime, Utc};
use custody_build::{ArtifactGlobs, secrets};
use custody_core::digest::Sha256Digest;
use custody_core::intoto::{ResourceDescriptor, Statement};
use serde_json::{Value, json};

use super::process::{self, RunSpec, git};
use super::{Prepared, source, tree};
use crate::cli::{BuildArgs, OutputFormat};
use crate::cmd::Context;
use crate::cmd::sign::sign_statement;
use crate::files;
use crate::outcome::{ExitWith, Outcome};

/// predicateType of the reproducibility attestation.
pub const REPRODUCIBILITY_V1: &str = "urn:custody:predicate:reproducibility:v1";

/// How one of the two builds differs from the other.
struct Variation {
    label: &'static str,
    tz: &'static str,
    lang: &'static str,
    umask: &'static str,
    reverse_order: bool,
    /// Path components between the temporary directory and the copy.
    depth: &'static [&'static str],
}

const VARIATIONS: [Variation; 2] = [
    Variation {
        label: "a",
        tz: "UTC",
        lang: "C.UTF-8",
        umask: "0022",
        reverse_order: false,
        depth: &[],
    },
    Variation {
        label: "b",
        tz: "Etc/GMT-14",
        lang: "fr_FR.UTF-8",
        umask: "0002",
        reverse_order: true,
        depth: &["deeper", "build-path-b"],
    },
];

struct BuildRun {
    root: PathBuf,
    started_on: DateTime<Utc>,
    finished_on: DateTime<Utc>,
    artifacts: BTreeMap<String, (Sha256Digest, PathBuf)>,
}

/// Copies the listed files (and symlinks, as links) in the given order.
fn copy_tree(from: &Path, to: &Path, files: &[String], reverse: bool) -> anyhow::Result<()> {
    let ordered: Vec<&String> = if reverse {
        files.iter().rev().collect()
    } else {
        files.iter().collect()
    };
    for rel in ordered {
        let src = from.join(rel);
        let dst = to.join(rel);
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", parent.display()))?;
        }
        let meta = std::fs::symlink_metadata(&src)?;
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(|e| {
                anyhow::anyhow!("cannot copy {} into the build copy: {e}", src.display())
            })?;
        }
    }
    Ok(())
}

/// What both builds share.
struct Plan<'a> {
    source_dir: &'a Path,
    files: &'a [String],
    args: &'a BuildArgs,
    globs: &'a ArtifactGlobs,
    sde: Option<&'a str>,
    json_output: bool,
}

fn run_one(v: &Variation, base: &Path, plan: &Plan<'_>) -> anyhow::Result<BuildRun> {
    let Plan {
        source_dir,
        files,
        args,
        globs,
        sde,
        json_output,
    } = *plan;
    let mut root = base.to_path_buf();
    for part in v.depth {
        root.push(part);
    }
    root.push("src");
    std::fs::create_dir_all(&root)?;
    copy_tree(source_dir, &root, files, v.reverse_order)?;
    let mut set_env = BTreeMap::from([
        ("TZ".to_string(), v.tz.to_string()),
        ("LANG".to_string(), v.lang.to_string()),
    ]);
    if let Some(sde) = sde {
        set_env.insert("SOURCE_DATE_EPOCH".to_string(), sde.to_string());
    }
    let started_on = Utc::now();
    process::run(&RunSpec {
        command: args.command.clone(),
        dir: root.clone(),
        set_env,
        remove_env: vec!["LC_ALL".to_string()],
        hermetic: args.hermetic,
        umask: Some(v.umask.to_string()),
        stdout_to_stderr: json_output,
    })
    .map_err(|e| match e.downcast::<ExitWith>() {
        Ok(mut exit) => {
            exit.message = format!(
                "reproduce build {} (in {}): {}",
                v.label,
                root.display(),
                exit.message
            );
            anyhow::Error::new(exit)
        }
        Err(e) => e,
    })?;
    let finished_on = Utc::now();
    let found = tree::find_artifacts(&root, globs)?;
    let artifacts = tree::hash_artifacts(found)?
        .into_iter()
        .map(|a| (a.name, (a.digest, a.path)))
        .collect();
    Ok(BuildRun {
        root,
        started_on,
        finished_on,
        artifacts,
    })
}

/// diffoscope's summary of two differing files when it is installed, else sizes and the first
/// differing byte.
pub(super) fn explain_difference(a: &Path, b: &Path) -> Value {
    if let Ok(path) = process::resolve_program("diffoscope", Path::new("/")) {
        let out = Command::new(path)
            .args(["--text", "-", "--no-progress"])
            .arg(a)
            .arg(b)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output();
        if let Ok(out) = out {
            let text = String::from_utf8_lossy(&out.stdout);
            let summary: Vec<&str> = text.lines().take(60).collect();
            return json!({ "tool": "diffoscope", "summary": summary.join("\n") });
        }
    }
    let (x, y) = (
        std::fs::read(a).unwrap_or_default(),
        std::fs::read(b).unwrap_or_default(),
    );
    let first = x
        .iter()
        .zip(&y)
        .position(|(p, q)| p != q)
        .unwrap_or(x.len().min(y.len()));
    let context = |bytes: &[u8]| {
        let end = (first + 32).min(bytes.len());
        String::from_utf8_lossy(bytes.get(first..end).unwrap_or(&[])).into_owned()
    };
    json!({ "tool": "custody (diffoscope not installed)", "sizes": [x.len(), y.len()],
            "firstDifferenceAt": first, "bytesFromThere": [context(&x), context(&y)] })
}

/// A difference for the terminal: diffoscope's first lines, or custody's byte report.
pub(super) fn render_difference(d: &Value) -> String {
    let text = match d["summary"].as_str() {
        Some(summary) => summary.lines().take(20).collect::<Vec<_>>().join("\n"),
        None => d.to_string().chars().take(400).collect(),
    };
    text.lines()
        .map(|line| format!("           {line}\n"))
        .collect()
}

pub fn reproduce(ctx: &Context, args: BuildArgs) -> anyhow::Result<Outcome> {
    let prep = Prepared::new(ctx, &args)?;
    let files = source::list_files(&prep.dir)?;
    let src = super::source::source(&prep.dir, prep.ci.as_ref());
    let sde = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .or_else(|| git(&prep.dir, &["log", "-1", "--format=%ct"]));
    let json_output = ctx.output == OutputFormat::Json;
    let plan = Plan {
        source_dir: &prep.dir,
        files: &files,
        args: &args,
        globs: &prep.globs,
        sde: sde.as_deref(),
        json_output,
    };
    let mut runs = Vec::new();
    let mut temps = Vec::new();
    for v in &VARIATIONS {
        let temp = tempfile::Builder::new()
            .prefix(&format!("custody-repro-{}-", v.label))
            .tempdir()
            .map_err(|e| anyhow::anyhow!("cannot create a temporary build directory: {e}"))?;
        runs.push(run_one(v, temp.path(), &plan)?);
        temps.push(temp);
    }
    let [a, b] = runs.as_slice() else {
        anyhow::bail!("reproduce: expected two builds");
    };
    let names: BTreeSet<&String> = a.artifacts.keys().chain(b.artifacts.keys()).collect();
    let mut compared = Vec::new();
    let mut differing = Vec::new();
    let mut subjects: Vec<ResourceDescriptor> = Vec::new();
    for name in names {
        let (da, db) = (a.artifacts.get(name), b.artifacts.get(name));
        let same = matches!((da, db), (Some(x), Some(y)) if x.0 == y.0);
        let mut entry = json!({ "name": name, "sha256": [da.map(|d| d.0.hex()), db.map(|d| d.0.hex())], "reproducible": same });
        for d in [da, db].into_iter().flatten() {
            if !subjects
                .iter()
                .any(|s| s.digest.get("sha256") == Some(&d.0.hex()))
            {
                subjects.push(ResourceDescriptor::from_sha256(name.clone(), &d.0));
            }
        }
        if !same {
            differing.push(name.clone());
            if let (Some(x), Some(y)) = (da, db) {
                entry["difference"] = explain_difference(&x.1, &y.1);
            }
        }
        compared.push(entry);
    }
    let builds: Vec<Value> = runs
        .iter()
        .zip(&VARIATIONS)
        .map(|(r, v)| {
            json!({ "path": r.root, "startedOn": r.started_on, "finishedOn": r.finished_on,
                    "variations": { "TZ": v.tz, "LANG": v.lang, "umask": v.umask,
                                     "fileOrder": if v.reverse_order { "reverse" } else { "sorted" } } })
        })
        .collect();
    let reproducible = differing.is_empty();
    // The attestation records the command and source as the provenance does: secret-looking
    // values redacted, and the redactions listed.
    let mut redactions = Vec::new();
    let mut command = args.command.clone();
    secrets::redact_args(&mut command, "predicate.command", &mut redactions);
    let mut working_directory = prep.dir.display().to_string();
    secrets::redact_field(
        &mut working_directory,
        "predicate.workingDirectory",
        &mut redactions,
    );
    let mut src = src;
    if let Some(repository) = src.as_mut().and_then(|s| s.repository.as_mut()) {
        secrets::redact_field(repository, "predicate.source.repository", &mut redactions);
    }
    let redacted = super::warn_redactions(ctx, &redactions);
    let predicate = json!({
        "result": if reproducible { "reproducible" } else { "not-reproducible" },
        "command": command, "workingDirectory": working_directory, "artifacts": compared, "builds": builds,
        "source": src.as_ref().map(|s| json!({ "repository": s.repository, "commit": s.commit, "ref": s.git_ref, "dirty": s.dirty })),
        "sourceDateEpoch": sde, "hermetic": args.hermetic, "builder": { "id": prep.builder_id },
        "redactions": redacted,
    });
    let statement = Statement::new_v1(subjects, REPRODUCIBILITY_V1, predicate.clone());
    let (signed, key_id) = sign_statement(&prep.key, &prep.key_path, &statement)?;
    let bundle = signed.into_bundle();
    let path = args
        .bundle
        .clone()
        .unwrap_or_else(|| PathBuf::from("reproducibility.intoto.sigstore.json"));
    files::write_all_atomic(&[(path.clone(), bundle.to_json().into_bytes())])?;
    ctx.emit(
        &json!({ "ok": reproducible, "reproducible": reproducible, "differing": differing,
                 "bundle": path, "keyId": key_id, "predicate": predicate }),
        || {
            let mut s = format!(
                "{} artifact(s) compared across two builds\n",
                predicate["artifacts"].as_array().map_or(0, Vec::len)
            );
            for entry in predicate["artifacts"].as_array().into_iter().flatten() {
                let mark = if entry["reproducible"] == json!(true) {
                    "same"
                } else {
                    "DIFFERS"
                };
                s.push_str(&format!(
                    "  {mark:8} {}\n",
                    entry["name"].as_str().unwrap_or("")
                ));
                if let Some(d) = entry.get("difference") {
                    s.push_str(&render_difference(d));
                }
            }
            s.push_str(&format!("  bundle   {}\n", path.display()));
            s
        },
    );
    drop(temps);
    if !reproducible {
        return Err(ExitWith {
            code: 1,
            message: format!(
                "not reproducible: {} differ(s) between the two builds (see {})",
                differing.join(", "),
                path.display()
            ),
            reported: json_output,
        }
        .into());
    }
    Ok(Outcome::Done)
}
