//! `custody policy init|test|eval|digest`: writing, testing and trying gate policies.

use std::path::Path;

use custody_policy::{Policy, TestOutcome, TestResult};
use serde_json::json;

use super::Context;
use crate::cli::{PolicyDirArgs, PolicyEvalArgs, PolicyInitArgs, PolicyTestArgs};
use crate::files;
use crate::outcome::{ExitWith, Outcome};

const STARTER_GATE: &str = r#"# custody gate policy (Rego v1). The gate evaluates data.custody.gate.deny over the input
# described in docs/policy-input.md: only evidence that passed verification is in
# input.evidence. `custody policy test DIR` runs the test_ rules in gate_test.rego.
package custody.gate

# Every check of the built-in library, configured in data.json under custody.config
# (signers, provenance builder/repository/refs, clean tree, hermetic, pinned dependencies,
# maximum age, reproducibility, transparency log, required attestations, algorithms, stages).
# Refer to the library by its full path (data.custody.lib.x): it is evaluated faster than
# through `import data.custody.lib`.
deny contains v if some v in data.custody.lib.violations

# The library's warnings (reported, never blocking): e.g. evidence signed by a retired key.
warn contains v if some v in data.custody.lib.warnings

# Your own rules: give each a stable kebab-case code, a message and a fix. For example:
#
# deny contains {"code": "no-release-from-fork", "msg": msg, "fix": "build from acme/app"} if {
#	some e in data.custody.lib.provenance
#	repo := data.custody.lib.source_repository(e.statement)
#	not startswith(repo, "https://github.com/acme/")
#	msg := sprintf("%s was built from %s", [e.source, repo])
# }

# Images not pinned by digest are denied at admission unless this is true for the input:
# allow_unpinned if startswith(input.artifact.image, "registry.dev.internal/")
"#;

const STARTER_TEST: &str = r#"package custody.gate_test

import data.custody.gate

unsigned := {"artifact": {"digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000", "name": "app"}, "environment": {"name": "prod", "stage": "production"}, "time": "2026-01-01T00:00:00Z", "evidence": [], "rejected": []}

test_unsigned_artifact_is_denied if {
	doc := unsigned
	denies := gate.deny with input as doc
	codes := {d.code | some d in denies}
	"signers-below-threshold" in codes
	"provenance-missing" in codes
}

test_every_deny_has_a_fix if {
	doc := unsigned
	denies := gate.deny with input as doc
	every d in denies {
		d.fix != ""
	}
}
"#;

fn starter_data(key_ids: &[String]) -> serde_json::Value {
    json!({
        "custody": { "config": {
            "signers": { "keys": key_ids, "identities": [], "threshold": 1 },
            "provenance": {
                "required": true, "builders": [], "repositories": [], "refs": [],
                "clean": true, "hermetic": false, "pinned": false, "max_age_days": 0
            },
            "reproducible": false,
            "tlog": false,
            "required_attestations": [],
            "deny_rejected": false,
            "stages": {
                "production": { "provenance": { "max_age_days": 90 } }
            }
        }}
    })
}

pub fn init(ctx: &Context, args: PolicyInitArgs) -> anyhow::Result<Outcome> {
    for id in &args.key_ids {
        if id.len() != 64 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            anyhow::bail!(
                "--trust-key-id {id:?}: expected the 64 hex characters `custody key inspect KEY.pub` prints as the key id"
            );
        }
    }
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", args.dir.display()))?;
    let data = serde_json::to_string_pretty(&starter_data(
        &args
            .key_ids
            .iter()
            .map(|k| k.to_lowercase())
            .collect::<Vec<_>>(),
    ))? + "\n";
    let outputs = [
        (args.dir.join("gate.rego"), STARTER_GATE.as_bytes().to_vec()),
        (
            args.dir.join("gate_test.rego"),
            STARTER_TEST.as_bytes().to_vec(),
        ),
        (args.dir.join("data.json"), data.into_bytes()),
    ];
    if !args.force {
        if let Some((p, _)) = outputs.iter().find(|(p, _)| p.exists()) {
            anyhow::bail!(
                "{} exists; pass --force to replace the starter policy files",
                p.display()
            );
        }
    }
    files::write_all_atomic(&outputs)?;
    let policy = super::verify::load_policy(&args.dir, custody_policy::TimeLimit::DEFAULT)?;
    ctx.emit(
        &json!({ "ok": true, "dir": args.dir, "digest": policy.digest().to_string(),
                 "files": outputs.iter().map(|(p, _)| p.display().to_string()).collect::<Vec<_>>() }),
        || {
            format!(
                "Wrote a starter policy to {} (digest {}).\n  Edit data.json (custody.config) to say whose signatures count and what provenance must show;\n  then `custody policy test {}` and `custody verify FILE --policy {}`.\n",
                args.dir.display(),
                policy.digest(),
                args.dir.display(),
                args.dir.display()
            )
        },
    );
    Ok(Outcome::Done)
}

fn report_tests(ctx: &Context, results: &[TestResult], what: &str) -> anyhow::Result<Outcome> {
    let failed = results
        .iter()
        .filter(|r| r.outcome != TestOutcome::Pass)
        .count();
    let doc = json!({
        "ok": failed == 0 && !results.is_empty(),
        "passed": results.len() - failed,
        "failed": failed,
        "tests": results.iter().map(|r| json!({
            "name": r.name,
            "location": r.location,
            "result": match &r.outcome { TestOutcome::Pass => "pass", TestOutcome::Fail => "fail", TestOutcome::Error(_) => "error" },
            "error": match &r.outcome { TestOutcome::Error(e) => Some(e.clone()), _ => None },
            "durationUs": r.duration.as_micros() as u64,
        })).collect::<Vec<_>>(),
    });
    ctx.emit(&doc, || {
        let mut s = String::new();
        for r in results {
            match &r.outcome {
                TestOutcome::Pass => {}
                TestOutcome::Fail => s.push_str(&format!("FAIL  {} ({})\n", r.name, r.location)),
                TestOutcome::Error(e) => {
                    s.push_str(&format!("ERROR {} ({}): {e}\n", r.name, r.location))
                }
            }
        }
        s.push_str(&format!(
            "{what}: PASS {}/{}\n",
            results.len() - failed,
            results.len()
        ));
        s
    });
    if results.is_empty() {
        return Err(ExitWith {
            code: 1,
            message: format!(
                "{what}: no test_ rules found (a test is a top-level rule named test_*)"
            ),
            reported: ctx.output == crate::cli::OutputFormat::Json,
        }
        .into());
    }
    if failed > 0 {
        return Err(ExitWith {
            code: 1,
            message: format!("{what}: {failed} of {} tests failed", results.len()),
            reported: ctx.output == crate::cli::OutputFormat::Json,
        }
        .into());
    }
    Ok(Outcome::Done)
}

pub fn test(ctx: &Context, args: PolicyTestArgs) -> anyhow::Result<Outcome> {
    if args.builtin {
        let results = Policy::run_library_tests().map_err(|e| anyhow::anyhow!("{e}"))?;
        return report_tests(ctx, &results, "built-in library (data.custody.lib)");
    }
    let Some(dir) = &args.dir else {
        anyhow::bail!("pass the policy directory, or --builtin");
    };
    let policy = super::verify::load_policy(dir, args.limit.policy_timeout)?;
    let results = policy.run_tests(args.run.as_deref());
    report_tests(ctx, &results, &dir.display().to_string())
}

pub fn eval(ctx: &Context, args: PolicyEvalArgs) -> anyhow::Result<Outcome> {
    let policy = super::verify::load_policy(&args.dir, args.limit.policy_timeout)?;
    let bytes = if args.input == Path::new("-") {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
        buf
    } else {
        files::read(&args.input, "input document")?
    };
    let input: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| anyhow::anyhow!("input document {}: not JSON: {e}", args.input.display()))?;
    if !input.is_object() {
        anyhow::bail!(
            "input document {}: must be a JSON object (see docs/policy-input.md)",
            args.input.display()
        );
    }
    let started = std::time::Instant::now();
    let eval = policy
        .evaluate(&input)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let elapsed = started.elapsed();
    let allowed = eval.denies.is_empty();
    let artifact = custody_policy::ArtifactRef {
        digest: input["artifact"]["digest"].as_str().map(str::to_string),
        name: input["artifact"]["name"].as_str().map(str::to_string),
        image: input["artifact"]["image"].as_str().map(str::to_string),
    };
    let verdict = custody_policy::Verdict {
        allowed,
        artifact,
        environment: input["environment"]["name"].as_str().map(str::to_string),
        policy_digest: policy.digest().to_string(),
        trust_root_digest: None,
        denies: eval.denies,
        warnings: eval.warnings,
        evidence: Vec::new(),
        rejected: Vec::new(),
        verified_levels: Vec::new(),
        evaluated_at: chrono::Utc::now(),
    };
    if let Some(path) = &args.sarif {
        super::verify::write_sarif(path, std::slice::from_ref(&verdict))?;
    }
    if args.sarif.as_deref() != Some(Path::new("-")) {
        let mut doc = serde_json::to_value(&verdict)?;
        doc["ok"] = json!(allowed);
        doc["evaluationUs"] = json!(elapsed.as_micros() as u64);
        ctx.emit(&doc, || verdict.human());
    }
    super::verify::verdict_outcome(&verdict)
}

pub fn digest(ctx: &Context, args: PolicyDirArgs) -> anyhow::Result<Outcome> {
    let policy = super::verify::load_policy(&args.dir, custody_policy::TimeLimit::DEFAULT)?;
    ctx.emit(
        &json!({ "ok": true, "digest": policy.digest().to_string(),
                 "files": policy.files().iter().map(|f| f.path.clone()).collect::<Vec<_>>() }),
        || format!("{}\n", policy.digest()),
    );
    Ok(Outcome::Done)
}
