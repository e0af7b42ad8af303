//! `custody build`: run the build, and only if it succeeds sign SLSA provenance for what it
//! produced. `--reproduce` (in [`reproduce`]) builds twice and compares; `custody rebuild` (in
//! [`rebuild`]) re-runs a recorded build. The documents themselves are built in custody-build.

pub mod process;
pub mod rebuild;
pub mod reproduce;
pub mod source;
pub mod tree;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::Utc;
use custody_build::ci::{self, CiContext};
use custody_build::lint::Finding;
use custody_build::provenance::{self, BuildRecord, Source, Toolchain, TreeDigest};
use custody_build::secrets::Redaction;
use custody_build::{ArtifactGlobs, env};
use custody_core::digest::Sha256Digest;
use custody_core::keys::SigningKey;
use serde_json::json;

use super::Context;
use super::sign::{default_bundle_path, log_bundle, sign_statement, signing_key};
use crate::cli::{BuildArgs, OutputFormat};
use crate::files;
use crate::outcome::Outcome;
use process::RunSpec;

/// A test seam: a shell command run after the artifacts are hashed and before the final
/// unchanged-check, so the test suite can modify an artifact in that window. Never set it.
const TEST_HOOK_BEFORE_SIGNING: &str = "CUSTODY_TEST_ONLY_RUN_BEFORE_SIGNING";

/// Everything decided before the build starts.
pub struct Prepared {
    pub key_path: PathBuf,
    pub key: SigningKey,
    pub globs: ArtifactGlobs,
    pub dir: PathBuf,
    pub env: env::EnvSelection,
    pub ci: Option<CiContext>,
    pub builder_id: String,
}

fn process_env() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

impl Prepared {
    pub fn new(ctx: &Context, args: &BuildArgs) -> anyhow::Result<Self> {
        if args.artifacts.is_empty() {
            anyhow::bail!(
                "no artifacts named: pass --artifacts GLOB (e.g. --artifacts 'dist/*.tar.gz') for the files the build produces"
            );
        }
        let globs = ArtifactGlobs::new(&args.artifacts)?;
        let (key_path, key) = signing_key(ctx, args.key.clone())?;
        let dir = std::env::current_dir()
            .map_err(|e| anyhow::anyhow!("cannot read the working directory: {e}"))?;
        if args.hermetic {
            process::check_hermetic_available()?;
        }
        let all_env = process_env();
        let mut allowlist = ctx
            .config
            .build
            .env_allowlist
            .clone()
            .unwrap_or_else(env::default_allowlist);
        allowlist.extend(args.env.iter().cloned());
        let env = env::select(&all_env, &allowlist);
        for name in &env.withheld {
            if !ctx.quiet {
                eprintln!(
                    "warning: not recording environment variable {name} in the provenance: its name looks like a secret"
                );
            }
        }
        let ci = ci::detect(&all_env);
        let builder_id = args
            .builder_id
            .clone()
            .or_else(|| ctx.config.build.builder_id.clone())
            .or_else(|| ci.as_ref().map(|c| c.builder_id.clone()))
            .unwrap_or_else(|| provenance::local_builder_id(&hostname()));
        Ok(Self {
            key_path,
            key,
            globs,
            dir,
            env,
            ci,
            builder_id,
        })
    }
}

/// The inputs as they were before the build: source, tree digest, lockfiles, lint.
pub struct Inputs {
    pub source: Option<Source>,
    pub tree: TreeDigest,
    pub lockfiles: Vec<(String, Sha256Digest)>,
    pub pinning: Vec<Finding>,
}

pub fn gather_inputs(dir: &Path, ci: Option<&CiContext>) -> anyhow::Result<Inputs> {
    let files = source::list_files(dir)?;
    let (hashed, (source, pinning)) = rayon::join(
        || tree::hash_files(dir, &files),
        || {
            (
                source::source(dir, ci),
                super::lint::lint_files(dir, &files),
            )
        },
    );
    let mut hashed = hashed?;
    let lockfiles = hashed
        .iter()
        .filter(|(p, _)| provenance::is_lockfile(p.rsplit('/').next().unwrap_or(p)))
        .cloned()
        .collect();
    let tree = provenance::tree_digest(&mut hashed);
    Ok(Inputs {
        source,
        tree,
        lockfiles,
        pinning,
    })
}

/// Warns on stderr, as for withheld variable names, about each secret-looking value a signed
/// document will show as `[REDACTED:<rule>]`, and returns them for the JSON report.
pub fn warn_redactions(ctx: &Context, redactions: &[Redaction]) -> Vec<serde_json::Value> {
    redactions
        .iter()
        .map(|r| {
            if !ctx.quiet {
                eprintln!(
                    "warning: not recording a secret-looking value ({}) in the provenance: {} shows [REDACTED:{}] instead",
                    r.rule, r.field, r.rule
                );
            }
            json!({ "field": r.field, "rule": r.rule })
        })
        .collect()
}

fn ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

pub fn build(ctx: &Context, args: BuildArgs) -> anyhow::Result<Outcome> {
    if args.reproduce {
        return reproduce::reproduce(ctx, args);
    }
    let prep = Prepared::new(ctx, &args)?;
    // Toolchain versions (`npm --version` alone takes ~0.4 s) are asked while the tree is
    // hashed and the build runs: off the critical path.
    let toolchain_dir = prep.dir.clone();
    let toolchains = std::thread::spawn(move || source::toolchains(&toolchain_dir));
    let t = Instant::now();
    let inputs = gather_inputs(&prep.dir, prep.ci.as_ref())?;
    let inputs_ms = ms(t);

    let started_on = Utc::now();
    let t = Instant::now();
    process::run(&RunSpec {
        command: args.command.clone(),
        dir: prep.dir.clone(),
        hermetic: args.hermetic,
        stdout_to_stderr: ctx.output == OutputFormat::Json,
        ..RunSpec::default()
    })?;
    let build_ms = ms(t);
    let finished_on = Utc::now();

    let t = Instant::now();
    let toolchains: Vec<Toolchain> = toolchains.join().unwrap_or_default();
    let found = tree::find_artifacts(&prep.dir, &prep.globs)?;
    let artifacts = tree::hash_artifacts(found)?;
    if artifacts.is_empty() {
        anyhow::bail!(
            "--artifacts matched only directories; name the files the build produces (e.g. 'dist/**'); nothing was signed"
        );
    }
    let artifacts_ms = ms(t);

    let t = Instant::now();
    let record = BuildRecord {
        invocation_id: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        started_on,
        finished_on,
        builder_id: prep.builder_id.clone(),
        custody_version: env!("CARGO_PKG_VERSION").to_string(),
        command: args.command.clone(),
        working_directory: prep.dir.display().to_string(),
        artifact_patterns: args.artifacts.clone(),
        source: inputs.source.clone(),
        source_tree: Some(inputs.tree.clone()),
        environment: prep.env.clone(),
        hermetic: args.hermetic,
        lockfiles: inputs.lockfiles.clone(),
        toolchains,
        ci: prep.ci.clone(),
        pinning: inputs.pinning.clone(),
    };
    let redacted = warn_redactions(ctx, &record.redacted().1);
    let subjects: Vec<(String, Sha256Digest)> = artifacts
        .iter()
        .map(|a| (a.name.clone(), a.digest))
        .collect();
    let statement = record.statement(&subjects)?;
    if artifacts.is_empty() {
        anyhow::bail!("no artifacts");
    }
    // With `--log`, the signed provenance is logged (dsse 0.0.2) and the entry, checked against
    // the bundle, goes into it before anything is written; a refusal fails the build's signing.
    let (signed, key_id) = sign_statement(&prep.key, &prep.key_path, &statement)?;
    let (bundle, tlog) = log_bundle(&args.log, signed)?;
    let json_bytes = bundle.to_json().into_bytes();

    if let Ok(hook) = std::env::var(TEST_HOOK_BEFORE_SIGNING) {
        let _ = std::process::Command::new("sh")
            .args(["-c", &hook])
            .current_dir(&prep.dir)
            .status();
    }
    // Right before writing: every artifact is still the file that was hashed.
    for a in &artifacts {
        a.check_unchanged()?;
    }
    let bundle_for: Vec<PathBuf> = artifacts
        .iter()
        .map(|a| match &args.bundle {
            Some(path) => path.clone(),
            None => default_bundle_path(&prep.dir.join(&a.name), ".intoto.sigstore.json"),
        })
        .collect();
    let mut outputs: Vec<(PathBuf, Vec<u8>)> = bundle_for
        .iter()
        .map(|p| (p.clone(), json_bytes.clone()))
        .collect();
    outputs.dedup_by(|a, b| a.0 == b.0);
    files::write_all_atomic(&outputs)?;
    let sign_ms = ms(t);

    let dirty = inputs.source.as_ref().is_some_and(|s| s.dirty);
    let listed: Vec<serde_json::Value> = artifacts
        .iter()
        .zip(&bundle_for)
        .map(|(a, b)| json!({ "name": a.name, "digest": a.digest.to_string(), "size": a.size, "bundle": b }))
        .collect();
    ctx.emit(
        &json!({
            "ok": true, "artifacts": listed, "invocationId": record.invocation_id,
            "builderId": record.builder_id, "keyId": key_id, "hermetic": args.hermetic,
            "sourceDirty": dirty, "pinningFindings": inputs.pinning.len(),
            "environmentWithheld": prep.env.withheld, "redacted": redacted, "tlog": tlog.json,
            "sourceTree": { "sha256": inputs.tree.digest.hex(), "files": inputs.tree.files },
            "timingsMs": { "inputs": inputs_ms, "build": build_ms, "artifacts": artifacts_ms, "provenance": sign_ms },
        }),
        || {
            let mut s = format!("Built and signed provenance for {} artifact(s)\n", artifacts.len());
            for (a, b) in artifacts.iter().zip(&bundle_for) {
                s.push_str(&format!("  {}  {}\n    bundle {}\n", a.digest, a.name, b.display()));
            }
            s.push_str(&format!("  builder {}\n  build   {}\n  key     {key_id}\n", record.builder_id, record.invocation_id));
            if dirty {
                s.push_str("  source  DIRTY work tree (uncommitted changes; recorded in the provenance)\n");
            }
            if args.hermetic {
                s.push_str("  network none (hermetic: fresh network namespace)\n");
            }
            if !inputs.pinning.is_empty() {
                s.push_str(&format!("  pinning {} finding(s): run `custody lint` for details\n", inputs.pinning.len()));
            }
            s.push_str(&format!("  tlog    {}\n", tlog.human));
            s
        },
    );
    Ok(Outcome::Done)
}
