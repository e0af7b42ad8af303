//! `custody verify FILE --policy DIR`: the gate on the command line, and `--accept-vsa`, its
//! fast path.
//!
//! Evidence is gathered (bundles beside the file, `--bundle`, `--evidence`, `--evidence-dir`),
//! each bundle verified against the trusted keys and root; only what verifies reaches the
//! policy, and what did not is listed in `input.rejected`. On allow, `--vsa-out` signs a SLSA
//! Verification Summary Attestation (logged with `--log`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::{Duration, Utc};
use custody_core::bundle::{Bundle, BundleContent, Material};
use custody_core::digest::Sha256Digest;
use custody_core::intoto::Statement;
use custody_core::keys::KeyAlgorithm;
use custody_core::verify::{self, Artifact, VerifiedContent};
use custody_policy::gate::Request;
use custody_policy::input::{Candidate, EnvironmentRef, TrustSet};
use custody_policy::{ArtifactRef, Gate, Policy, TimeLimit, Verdict, vsa};
use serde_json::json;

use super::Subject;
use crate::cli::{GateArgs, VerifyArgs};
use crate::cmd::Context;
use crate::cmd::key::{load_public_key, load_signing_key};
use crate::cmd::sign::{log_bundle, read_artifact, sign_statement};
use crate::files;
use crate::outcome::{Denied, ExitWith, Outcome};

/// Loads a policy directory whose evaluations run under `limit` (`--policy-timeout`), mapping
/// every load error to an operational error (exit 2).
pub(crate) fn load_policy(dir: &Path, limit: TimeLimit) -> anyhow::Result<Policy> {
    Policy::load_limited(dir, limit).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Every bundle file beside `file`: `<name>.sigstore.json`, `<name>.<anything>.sigstore.json`,
/// `<name>.sigstore`.
pub(crate) fn bundles_beside(file: &Path) -> Vec<PathBuf> {
    let Some(name) = file.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let prefix = format!("{name}.");
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let ok = n.starts_with(&prefix)
                && (n.ends_with(".sigstore.json") || n.ends_with(".sigstore"));
            ok.then(|| dir.join(n))
        })
        .collect();
    found.sort();
    found
}

/// The digests a bundle *claims* to be about (unverified; used only to pick files out of an
/// evidence directory).
fn claimed_digests(bytes: &[u8]) -> Vec<String> {
    let Ok(bundle) = Bundle::from_json(bytes) else {
        return Vec::new();
    };
    match &bundle.content {
        BundleContent::MessageSignature {
            message_digest: Some((_, d)),
            ..
        } => vec![custody_core::encoding::hex_encode(d)],
        BundleContent::MessageSignature { .. } => Vec::new(),
        BundleContent::Dsse(env) => Statement::from_json(&env.payload)
            .map(|s| {
                s.subject
                    .iter()
                    .filter_map(|d| d.digest.get("sha256").cloned())
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn gather(
    subject: &Subject,
    args: &VerifyArgs,
    digest: &Sha256Digest,
) -> anyhow::Result<Vec<Candidate>> {
    let mut paths: Vec<PathBuf> = Vec::new();
    if let Some(b) = &args.bundle {
        paths.push(b.clone());
    }
    if let Subject::File(f) = subject {
        paths.extend(bundles_beside(f));
    }
    paths.extend(args.gate.evidence.iter().cloned());
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for p in paths {
        let key = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
        if !seen.insert(key) {
            continue;
        }
        out.push(Candidate {
            source: p.display().to_string(),
            bytes: files::read(&p, "evidence bundle")?,
        });
    }
    if let Some(url) = &args.gate.evidence_from {
        for c in super::evidence_from::fetch(url, digest)? {
            if seen.insert(PathBuf::from(&c.source)) {
                out.push(c);
            }
        }
    }
    if let Some(dir) = &args.gate.evidence_dir {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| anyhow::anyhow!("--evidence-dir {}: cannot read: {e}", dir.display()))?;
        let mut listed: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && p.extension()
                        .is_some_and(|x| x == "json" || x == "sigstore")
            })
            .collect();
        listed.sort();
        for p in listed {
            let key = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
            if seen.contains(&key) {
                continue;
            }
            let bytes = files::read(&p, "evidence bundle")?;
            if claimed_digests(&bytes).contains(&digest.hex()) {
                seen.insert(key);
                out.push(Candidate {
                    source: p.display().to_string(),
                    bytes,
                });
            }
        }
    }
    Ok(out)
}

fn trust_set(ctx: &Context, args: &VerifyArgs) -> anyhow::Result<TrustSet> {
    let mut keys = Vec::new();
    if let Some(k) = &args.key {
        keys.push(load_public_key(k)?);
    } else if let Some(k) = &ctx.config.public_key {
        keys.push(load_public_key(k)?);
    }
    for k in &args.gate.trusted_keys {
        keys.push(load_public_key(k)?);
    }
    let (root, root_digest) = match &args.trusted_root {
        Some(path) => {
            let bytes = files::read(path, "trusted root")?;
            (
                Some(crate::cmd::trust_root::load(path)?),
                Some(Sha256Digest::of(&bytes)),
            )
        }
        None => (None, None),
    };
    Ok(TrustSet {
        keys,
        root,
        root_digest,
    })
}

pub(crate) fn write_sarif(path: &Path, verdicts: &[Verdict]) -> anyhow::Result<()> {
    let doc = custody_policy::verdict::sarif(verdicts);
    let text = serde_json::to_string_pretty(&doc)?;
    if path == Path::new("-") {
        println!("{text}");
        Ok(())
    } else {
        files::write_atomic(path, text.as_bytes(), false)
    }
}

/// `custody verify FILE --policy DIR`.
pub(crate) fn verify_with_policy(
    ctx: &Context,
    args: &VerifyArgs,
    subject: Subject,
    policy_dir: &Path,
) -> anyhow::Result<Outcome> {
    let policy = load_policy(policy_dir, args.gate.limit.policy_timeout)?;
    let trust = trust_set(ctx, args)?;
    let (digest, bytes, name) = match &subject {
        Subject::File(path) => {
            // Ed25519 message signatures need the bytes; keep them for files up to 256 MiB.
            let small = std::fs::metadata(path).is_ok_and(|m| m.len() <= 256 << 20);
            let algorithm = if small {
                KeyAlgorithm::Ed25519
            } else {
                KeyAlgorithm::EcdsaP256Sha256
            };
            let (digest, _, bytes) = read_artifact(path, algorithm)?;
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            (digest, bytes, name)
        }
        Subject::Digest(d) => (*d, None, None),
    };
    let candidates = gather(&subject, args, &digest)?;
    let gate = Gate { policy, trust };
    let request = Request {
        artifact: ArtifactRef {
            digest: Some(digest.to_string()),
            name,
            image: None,
        },
        bytes: bytes.as_deref(),
        environment: args.gate.environment.as_ref().map(|n| EnvironmentRef {
            name: n.clone(),
            stage: args.gate.stage.clone(),
            approvals: None,
        }),
        time: Utc::now(),
        ..Default::default()
    };
    let verdict = gate
        .decide(&request, &candidates)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(path) = &args.gate.sarif {
        write_sarif(path, std::slice::from_ref(&verdict))?;
    }
    let mut vsa_report = json!(null);
    if verdict.allowed {
        if let Some(out) = &args.gate.vsa_out {
            vsa_report = sign_vsa(args, &verdict, gate.policy.dir(), out)?;
        }
    }
    let sarif_on_stdout = args.gate.sarif.as_deref() == Some(Path::new("-"));
    if !sarif_on_stdout {
        let mut doc = serde_json::to_value(&verdict)?;
        doc["ok"] = json!(verdict.allowed);
        doc["vsa"] = vsa_report.clone();
        ctx.emit(&doc, || {
            let mut s = verdict.human();
            if let Some(path) = vsa_report.get("path").and_then(|p| p.as_str()) {
                s.push_str(&format!("  vsa       {path}\n"));
            }
            s
        });
    }
    verdict_outcome(&verdict)
}

/// Exit 0 for an allowed verdict; 1 with the denial in one line (the verdict is already printed).
pub(crate) fn verdict_outcome(verdict: &Verdict) -> anyhow::Result<Outcome> {
    if verdict.allowed {
        Ok(Outcome::Done)
    } else {
        Err(ExitWith {
            code: 1,
            message: verdict.one_line(),
            reported: true,
        }
        .into())
    }
}

fn sign_vsa(
    args: &VerifyArgs,
    verdict: &Verdict,
    policy_dir: &Path,
    out: &Path,
) -> anyhow::Result<serde_json::Value> {
    let Some(key_path) = &args.gate.vsa_key else {
        anyhow::bail!("--vsa-out needs --vsa-key KEY (the gate's signing key)");
    };
    let key = load_signing_key(key_path)?;
    let policy_uri = format!("file://{}", policy_dir.display());
    let Some(statement) = vsa::summary(verdict, &args.gate.verifier_id, &policy_uri) else {
        anyhow::bail!("internal error: no VSA for an allowed verdict");
    };
    let (signed, key_id) = sign_statement(&key, key_path, &statement)?;
    let (bundle, report) = log_bundle(&args.log, signed)?;
    files::write_atomic(out, bundle.to_json().as_bytes(), false)?;
    Ok(json!({ "path": out.display().to_string(), "keyId": key_id, "tlog": report.json }))
}

/// `custody verify FILE --accept-vsa VSA --gate-key PUB`: the fast path.
pub(crate) fn accept_vsa(
    ctx: &Context,
    gate: &GateArgs,
    subject: &Subject,
    vsa_path: &Path,
) -> anyhow::Result<Outcome> {
    let Some(gate_key_path) = &gate.gate_key else {
        anyhow::bail!("--accept-vsa needs --gate-key PUB (the key the gate signs VSAs with)");
    };
    let key = load_public_key(gate_key_path)?;
    let digest = match subject {
        Subject::File(path) => read_artifact(path, KeyAlgorithm::EcdsaP256Sha256)?.0,
        Subject::Digest(d) => *d,
    };
    let bytes = files::read(vsa_path, "VSA bundle")?;
    let shown = vsa_path.display();
    let verified = verify::verify_with_key(&bytes, Artifact::from_digest(digest), &key)
        .map_err(|e| Denied::coded(e.code(), format!("VSA {shown}: {e}")))?;
    if !matches!(
        Bundle::from_json(&bytes).map(|b| b.verification_material.content),
        Ok(Material::PublicKeyHint(_))
    ) {
        return Err(Denied::coded(
            "vsa.material",
            format!("VSA {shown}: not signed with a key"),
        )
        .into());
    }
    let VerifiedContent::Statement(statement) = &verified.content else {
        return Err(Denied::coded(
            "vsa.predicate-type",
            format!("VSA {shown}: a plain signature, not a verification summary"),
        )
        .into());
    };
    let expectations = vsa::Expectations {
        digest,
        verifier_id: gate.verifier_id.clone(),
        max_age: Duration::seconds(gate.vsa_max_age),
        now: Utc::now(),
        policy_digest: gate.policy_digest.clone(),
        environment: gate.environment.clone(),
        level: None,
    };
    vsa::check(statement, &expectations)
        .map_err(|e| Denied::coded(e.code, format!("VSA {shown}: {}", e.message)))?;
    let p = &statement.predicate;
    ctx.emit(
        &json!({ "ok": true, "artifact": digest.to_string(), "vsa": shown.to_string(),
                 "verifier": p["verifier"]["id"], "timeVerified": p["timeVerified"],
                 "policy": p["policy"], "verifiedLevels": p["verifiedLevels"],
                 "environment": p["custody_environment"] }),
        || {
            format!(
                "Verified by VSA {shown}: {digest} PASSED policy sha256:{} at {} (verifier {}, key {})\n",
                p["policy"]["digest"]["sha256"].as_str().unwrap_or("?"),
                p["timeVerified"].as_str().unwrap_or("?"),
                p["verifier"]["id"].as_str().unwrap_or("?"),
                key.key_id()
            )
        },
    );
    Ok(Outcome::Done)
}
