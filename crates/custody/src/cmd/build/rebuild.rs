//! `custody rebuild BUNDLE`: verify a `custody build` provenance, check out the commit it
//! records, run the command it records, and attest whether the subjects come out the same.
//!
//! The bundle is verified against `--public-key` before anything in it is believed or run:
//! rebuilding executes the recorded command, so an unverified provenance is never acted upon.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::Utc;
use custody_build::provenance::BUILD_TYPE;
use custody_core::bundle::{Bundle, BundleContent};
use custody_core::digest::{self, Sha256Digest};
use custody_core::intoto::slsa::Provenance;
use custody_core::intoto::{ResourceDescriptor, Statement};
use custody_core::verify::{self, Artifact, VerifiedContent};
use serde_json::{Value, json};

use super::process::{self, RunSpec};
use super::reproduce::{explain_difference, render_difference};
use crate::cli::{OutputFormat, RebuildArgs};
use crate::cmd::Context;
use crate::cmd::key::load_public_key;
use crate::cmd::sign::{sign_statement, signing_key};
use crate::files;
use crate::outcome::{Denied, ExitWith, Outcome};

/// predicateType of the rebuild attestation.
pub const REBUILD_V1: &str = "urn:custody:predicate:rebuild:v1";

/// The verified statement and its provenance.
fn verified_provenance(
    bundle_path: &Path,
    key_path: &Path,
) -> anyhow::Result<(Statement, Provenance, Sha256Digest)> {
    let bytes = files::read(bundle_path, "bundle")?;
    let bundle = Bundle::from_json(&bytes)
        .map_err(|e| Denied::new(format!("bundle {}: {e}", bundle_path.display())))?;
    let BundleContent::Dsse(envelope) = &bundle.content else {
        return Err(Denied::new(format!(
            "bundle {}: holds a message signature, not a provenance (DSSE) attestation",
            bundle_path.display()
        ))
        .into());
    };
    // Any subject digest will do to ask the verifier: it checks the signature over the exact
    // payload, then that the statement names this digest.
    let unverified = Statement::from_json(&envelope.payload)
        .map_err(|e| Denied::new(format!("bundle {}: {e}", bundle_path.display())))?;
    let first = unverified
        .subject
        .iter()
        .find_map(|s| s.digest.get("sha256"))
        .and_then(|h| Sha256Digest::from_hex(h).ok())
        .ok_or_else(|| {
            Denied::new(format!(
                "bundle {}: no sha256 subject",
                bundle_path.display()
            ))
        })?;
    let key = load_public_key(key_path)?;
    let verified = verify::verify_parsed_with_key(&bundle, Artifact::from_digest(first), &key)
        .map_err(|e| Denied::new(format!("bundle {}: {e}", bundle_path.display())))?;
    let VerifiedContent::Statement(statement) = verified.content else {
        return Err(Denied::new(format!(
            "bundle {}: not an attestation",
            bundle_path.display()
        ))
        .into());
    };
    let provenance = Provenance::from_statement(&statement)
        .map_err(|e| Denied::new(format!("bundle {}: {e}", bundle_path.display())))?;
    if provenance.build_definition.build_type != BUILD_TYPE {
        anyhow::bail!(
            "bundle {}: buildType {:?} is not custody's ({BUILD_TYPE}); rebuild only re-runs builds `custody build` recorded",
            bundle_path.display(),
            provenance.build_definition.build_type
        );
    }
    Ok((*statement, provenance, digest::Sha256Digest::of(&bytes)))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn checkout(repo: &str, commit: &str, into: &Path) -> anyhow::Result<()> {
    let git = |args: &[&str], dir: &Path| -> anyhow::Result<()> {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| anyhow::anyhow!("cannot run git: {e}"))?;
        if !out.status.success() {
            anyhow::bail!(
                "git {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    };
    let repo = repo.strip_prefix("git+").unwrap_or(repo);
    let parent = into.parent().unwrap_or(Path::new("/"));
    git(
        &[
            "clone",
            "--quiet",
            "--no-checkout",
            repo,
            &into.display().to_string(),
        ],
        parent,
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "cannot clone the recorded source {repo}: {e} (use --source to clone from elsewhere)"
        )
    })?;
    git(&["checkout", "--quiet", "--detach", commit], into)
        .map_err(|e| anyhow::anyhow!("cannot check out the recorded commit {commit}: {e}"))
}

/// Compares a rebuilt subject with the original in `originals`, only if the original is the
/// file the provenance recorded (its digest matches): anything else would explain nothing.
fn compare_with_original(originals: &Path, name: &str, recorded: &str, rebuilt: &Path) -> Value {
    let original = originals.join(name);
    match digest::sha256_file(&original, |_| {}) {
        Ok((d, _)) if d.hex() == recorded => explain_difference(&original, &rebuilt.join(name)),
        Ok((d, _)) => json!({ "tool": "none", "note": format!(
            "{} is not the recorded artifact (sha256 {}, recorded {recorded}); not compared",
            original.display(), d.hex()) }),
        Err(e) => json!({ "tool": "none", "note": format!(
            "{}: cannot read the original ({e}); not compared", original.display()) }),
    }
}

/// A provenance whose command or environment had secret values redacted cannot be re-run: the
/// values are not there, and running the markers instead would build something else.
fn refuse_redacted_run(provenance: &Provenance) -> anyhow::Result<()> {
    let redacted: Vec<&str> = provenance
        .build_definition
        .internal_parameters
        .as_ref()
        .and_then(|int| int.get("redactions"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r["field"].as_str())
        .filter(|f| {
            f.starts_with("buildDefinition.externalParameters.command")
                || f.starts_with("buildDefinition.externalParameters.environment")
        })
        .collect();
    if redacted.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "the provenance withheld secret values from {} (internalParameters.redactions); custody rebuild cannot run a command it does not have in full: build again with the secret passed through a variable that is not recorded, or a file",
        redacted.join(", ")
    )
}

pub fn rebuild(ctx: &Context, args: RebuildArgs) -> anyhow::Result<Outcome> {
    let public = args.public_key.clone().or_else(|| ctx.config.public_key.clone()).ok_or_else(|| {
        anyhow::anyhow!("no public key to verify the provenance with: pass --public-key FILE (rebuild never runs a command from an unverified provenance)")
    })?;
    let (key_path, key) = signing_key(ctx, args.key.clone())?;
    let (statement, provenance, bundle_digest) = verified_provenance(&args.bundle, &public)?;
    let ext = &provenance.build_definition.external_parameters;
    refuse_redacted_run(&provenance)?;
    let command = strings(&ext.get("command").cloned().unwrap_or_default());
    let src = ext.get("source").cloned().unwrap_or_default();
    let commit = src["commit"].as_str().ok_or_else(|| {
        anyhow::anyhow!("the provenance records no source commit; nothing to rebuild from")
    })?;
    let repo = args
        .source
        .clone()
        .or_else(|| src["repository"].as_str().map(str::to_string))
        .ok_or_else(|| {
            anyhow::anyhow!("the provenance records no repository; pass --source REPO")
        })?;
    if repo.contains("[REDACTED:") {
        anyhow::bail!(
            "the provenance's source repository had a secret redacted ({repo}); pass --source REPO"
        );
    }
    // What the attestation records of the repository, as the provenance would: no password.
    let mut recorded_repo = repo.clone();
    custody_build::secrets::redact_field(
        &mut recorded_repo,
        "predicate.source.repository",
        &mut Vec::new(),
    );
    if src["dirty"] == json!(true) && !ctx.quiet {
        eprintln!(
            "warning: the recorded build ran on a dirty work tree; the rebuild uses commit {commit} and may differ"
        );
    }
    let temp = tempfile::Builder::new()
        .prefix("custody-rebuild-")
        .tempdir()?;
    let checkout_dir = temp.path().join("src");
    checkout(&repo, commit, &checkout_dir)?;
    let dir = match src["path"].as_str() {
        Some(p) if !p.is_empty() => checkout_dir.join(p),
        _ => checkout_dir.clone(),
    };
    let env: BTreeMap<String, String> = ext
        .get("environment")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let hermetic = ext.get("hermetic") == Some(&json!(true));
    if hermetic {
        process::check_hermetic_available()?;
    }
    let started_on = Utc::now();
    process::run(&RunSpec {
        command: command.clone(),
        dir: dir.clone(),
        set_env: env,
        hermetic,
        stdout_to_stderr: ctx.output == OutputFormat::Json,
        ..RunSpec::default()
    })?;
    let finished_on = Utc::now();
    let mut results = Vec::new();
    let mut all_match = true;
    for s in &statement.subject {
        let name = s.name.clone().unwrap_or_default();
        let recorded = s.digest.get("sha256").cloned().unwrap_or_default();
        let rebuilt = digest::sha256_file(&dir.join(&name), |_| {})
            .ok()
            .map(|(d, _)| d.hex());
        let same = rebuilt.as_deref() == Some(recorded.as_str());
        all_match &= same;
        let mut entry =
            json!({ "name": name, "recorded": recorded, "rebuilt": rebuilt, "match": same });
        if let (false, Some(_), Some(originals)) = (same, &rebuilt, &args.compare_with) {
            entry["difference"] = compare_with_original(originals, &name, &recorded, &dir);
        }
        results.push(entry);
    }
    let predicate = json!({
        "result": if all_match { "match" } else { "mismatch" },
        "provenance": { "bundleSha256": bundle_digest.hex(),
                        "invocationId": provenance.run_details.metadata.as_ref().and_then(|m| m.invocation_id.clone()) },
        "source": { "repository": recorded_repo, "commit": commit }, "command": command, "hermetic": hermetic,
        "startedOn": started_on, "finishedOn": finished_on, "subjects": results,
    });
    let subjects: Vec<ResourceDescriptor> = statement.subject.clone();
    let attestation = Statement::new_v1(subjects, REBUILD_V1, predicate.clone());
    let (signed, key_id) = sign_statement(&key, &key_path, &attestation)?;
    let bundle = signed.into_bundle();
    let out: PathBuf = args
        .attestation
        .clone()
        .unwrap_or_else(|| PathBuf::from("rebuild.intoto.sigstore.json"));
    files::write_all_atomic(&[(out.clone(), bundle.to_json().into_bytes())])?;
    ctx.emit(
        &json!({ "ok": all_match, "match": all_match, "attestation": out, "keyId": key_id, "predicate": predicate }),
        || {
            let mut s = format!("Rebuilt commit {commit}: {}\n", if all_match { "every subject matches" } else { "MISMATCH" });
            for r in predicate["subjects"].as_array().into_iter().flatten() {
                let mark = if r["match"] == json!(true) { "same" } else { "DIFFERS" };
                s.push_str(&format!("  {mark:8} {}\n", r["name"].as_str().unwrap_or("")));
                if let Some(d) = r.get("difference") {
                    s.push_str(&render_difference(d));
                }
            }
            s.push_str(&format!("  attestation {}\n", out.display()));
            s
        },
    );
    if !all_match {
        return Err(ExitWith {
            code: 1,
            message: format!(
                "the rebuild of {commit} does not reproduce the recorded subjects (see {})",
                out.display()
            ),
            reported: ctx.output == OutputFormat::Json,
        }
        .into());
    }
    Ok(Outcome::Done)
}
