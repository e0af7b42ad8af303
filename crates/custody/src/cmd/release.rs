//! The release commands, clients of a `custody serve --release-config` server:
//! `push`, `approve`, `promote`, `rollback`, `revoke`, `status`, `history`, `audit`.
//!
//! Exit codes: 0 done (or verified), 1 refused (policy denial, quarantine, a record that does
//! not verify), 2 operational (server unreachable, bad token, unknown environment, bad input).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use custody_core::bundle::Bundle;
use custody_core::digest::Sha256Digest;
use custody_core::intoto::Statement;
use custody_core::verify::Artifact;
use custody_policy::TrustSet;
use custody_policy::input::{Candidate, Evidence, verify_one};
use custody_release::model::Release;
use custody_release::statement;
use serde_json::{Value as Json, json};

use super::Context;
use super::key::{load_public_key, load_signing_key};
use crate::cli_release::{
    ApproveArgs, AuditArgs, HistoryArgs, KeyRotateArgs, PromoteArgs, PushArgs, RevokeArgs,
    RollbackArgs, ServerArgs, StatusArgs,
};
use crate::outcome::{Denied, Outcome};
use custody_client::release::{Answer, ReleaseClient, ReleaseError};

/// The release server named by `--server` and `--token` / `--token-file`.
fn client(args: &ServerArgs) -> anyhow::Result<ReleaseClient> {
    let token = match (&args.token, &args.token_file) {
        (Some(t), _) => Some(t.trim().to_owned()),
        (None, Some(path)) => Some(
            String::from_utf8(crate::files::read(path, "token file")?)
                .with_context(|| format!("token file {}: not UTF-8", path.display()))?
                .trim()
                .to_owned(),
        ),
        (None, None) => None,
    };
    Ok(ReleaseClient::new(&args.server, token))
}

/// A release API answer as the CLI reports it.
pub(crate) trait Checked {
    /// Ok for 2xx; a denial (exit 1) for 403 and 409, the server's explanation printed first
    /// (the server refused on the merits); an operational error (exit 2) otherwise.
    fn ok(self, what: &str) -> anyhow::Result<Answer>;
}

impl Checked for Answer {
    fn ok(self, what: &str) -> anyhow::Result<Answer> {
        self.check(what).map_err(|e| match e {
            ReleaseError::Refused {
                ref explanation, ..
            } => {
                if let Some(text) = &explanation {
                    eprint!("{text}");
                }
                Denied::new(e.to_string()).into()
            }
            e => e.into(),
        })
    }
}

pub(crate) fn artifact_digest(text: &str) -> anyhow::Result<Sha256Digest> {
    if text.starts_with("sha256:") {
        return text
            .parse()
            .map_err(|e| anyhow::anyhow!("{text:?} is not a digest: {e}"));
    }
    let (digest, _) = custody_core::digest::sha256_file(Path::new(text), |_| {})
        .map_err(|e| anyhow::anyhow!("{e} (give a file or sha256:<hex>)"))?;
    Ok(digest)
}

fn signed_bundle(key_path: &Path, statement: &Statement) -> anyhow::Result<String> {
    let key = load_signing_key(key_path)?;
    // Signed and wrapped as every statement is; the server logs it.
    let signed = custody_core::sign::sign_statement(&key, statement)
        .with_context(|| format!("signing with {}", key_path.display()))?;
    Ok(signed.into_bundle().to_json())
}

pub fn push(ctx: &Context, args: PushArgs) -> anyhow::Result<Outcome> {
    let client = client(&args.server)?;
    let bytes = crate::files::read(&args.artifact, "artifact")?;
    let digest = Sha256Digest::of(&bytes);
    let name = args.name.clone().unwrap_or_else(|| {
        args.artifact
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "artifact".into())
    });
    let record = client
        .push_artifact(&digest, &name, &bytes)?
        .ok("push")?
        .json();
    let bundles: Vec<PathBuf> = if args.bundles.is_empty() {
        super::verify::gate::bundles_beside(&args.artifact)
    } else {
        args.bundles.clone()
    };
    let mut evidence = Vec::new();
    for b in &bundles {
        let body = crate::files::read(b, "bundle")?;
        let answer = client
            .store_evidence(&body)?
            .ok(&format!("uploading evidence {}", b.display()))?
            .json();
        evidence.push(json!({"file": b.display().to_string(), "bundle_digest": answer["bundle_digest"], "duplicate": answer["duplicate"]}));
    }
    ctx.emit(
        &json!({"digest": digest.to_string(), "artifact": record, "evidence": evidence}),
        || {
            let mut out = format!(
                "pushed {} as {digest} (upload logged at index {})\n",
                args.artifact.display(),
                record["log_index"]
            );
            for e in &evidence {
                out.push_str(&format!(
                    "  evidence {}\n",
                    e["file"].as_str().unwrap_or("")
                ));
            }
            out
        },
    );
    Ok(Outcome::Done)
}

pub fn approve(ctx: &Context, args: ApproveArgs) -> anyhow::Result<Outcome> {
    let client = client(&args.server)?;
    let digest = artifact_digest(&args.artifact)?;
    let approver = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let st = statement::approval(
        &digest,
        "artifact",
        &args.environment,
        &approver,
        Utc::now(),
        args.comment.as_deref(),
    );
    let bundle = signed_bundle(&args.key, &st)?;
    let answer = client
        .approve(bundle.as_bytes())?
        .ok(&format!("approval of {digest} for {}", args.environment))?
        .json();
    ctx.emit(&answer, || {
        format!(
            "approved {digest} for {} as {} (logged at index {})\n",
            args.environment,
            answer["approver"].as_str().unwrap_or("?"),
            answer["log_index"]
        )
    });
    Ok(Outcome::Done)
}

/// How many lost races `custody promote` retries before it reports the conflict.
const MAX_RACES: u32 = 20;

pub fn promote(ctx: &Context, args: PromoteArgs) -> anyhow::Result<Outcome> {
    let client = client(&args.server)?;
    let digest = artifact_digest(&args.artifact)?;
    let request_id = args
        .request_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let body = json!({"digest": digest.to_string(), "to": args.to, "request_id": request_id});
    // Retried with the same request id, so a lost answer never promotes twice: after a
    // transport or server error (a few times), and after losing the race for the
    // environment's next seq to another promotion or rollback (409 with `retry`: the server
    // changed nothing, and decides again on the new current release).
    let mut failures = 0;
    let mut races = 0;
    let answer = loop {
        match client.promote(&body) {
            Ok(a) if a.status == 409 && a.json()["retry"] == true && races < MAX_RACES => {
                races += 1;
                tracing::info!(environment = %args.to, "promotion: another release came first, retrying");
                // A short random wait, so racing clients do not collide again in step.
                let jitter = (uuid::Uuid::new_v4().as_u128() % 100) as u64;
                std::thread::sleep(Duration::from_millis(20 + jitter));
                continue;
            }
            Ok(a) if a.status >= 500 && failures < 3 => {
                tracing::warn!(status = a.status, "promotion: server error, retrying");
            }
            Ok(a) => break a,
            Err(e) if failures < 3 => tracing::warn!(error = %e, "promotion: retrying"),
            Err(e) => return Err(e.into()),
        }
        failures += 1;
        std::thread::sleep(Duration::from_millis(500 * failures));
    };
    let release: Json = answer
        .ok(&format!("promotion of {digest} to {}", args.to))?
        .json();
    ctx.emit(&release, || {
        format!(
            "promoted {digest} to {} as release {} (logged at index {})\n",
            args.to, release["seq"], release["log_index"]
        )
    });
    Ok(Outcome::Done)
}

pub fn rollback(ctx: &Context, args: RollbackArgs) -> anyhow::Result<Outcome> {
    let client = client(&args.server)?;
    let to = args.to.as_deref().map(artifact_digest).transpose()?;
    let body = json!({
        "environment": args.environment,
        "digest": to.map(|d| d.to_string()),
        "reason": args.reason,
        "request_id": uuid::Uuid::new_v4().to_string(),
    });
    let release = client
        .rollback(&body)?
        .ok(&format!("rollback of {}", args.environment))?
        .json();
    ctx.emit(&release, || {
        format!(
            "rolled {} back to {} as release {} (logged at index {})\n",
            args.environment,
            release["digest"].as_str().unwrap_or("?"),
            release["seq"],
            release["log_index"]
        )
    });
    Ok(Outcome::Done)
}

pub fn revoke(ctx: &Context, args: RevokeArgs) -> anyhow::Result<Outcome> {
    statement::parse_target(&args.target).map_err(|m| anyhow::anyhow!(m))?;
    let client = client(&args.server)?;
    let st = statement::revocation(&args.target, &args.reason, Utc::now());
    let bundle = signed_bundle(&args.key, &st)?;
    let answer = client
        .revoke(bundle.as_bytes())?
        .ok(&format!("revocation of {}", args.target))?
        .json();
    ctx.emit(&answer, || {
        let r = &answer["reconcile"];
        let mut out = format!(
            "revoked {} (revocation #{}, logged at index {})\n",
            args.target, answer["revocation"]["id"], answer["revocation"]["log_index"]
        );
        for q in r["quarantined"].as_array().into_iter().flatten() {
            out.push_str(&format!("  quarantined {}\n", q.as_str().unwrap_or("?")));
        }
        for rb in r["rolled_back"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "  rolled {} back from {} to {} (release {})\n",
                rb["environment"].as_str().unwrap_or("?"),
                rb["from"].as_str().unwrap_or("?"),
                rb["to"].as_str().unwrap_or("?"),
                rb["seq"]
            ));
        }
        out
    });
    Ok(Outcome::Done)
}

pub fn status(ctx: &Context, args: StatusArgs) -> anyhow::Result<Outcome> {
    let client = client(&args.server)?;
    let mut doc = client.environments()?.ok("listing environments")?.json();
    if args.incidents {
        doc["incidents"] = client.incidents()?.ok("listing incidents")?.json();
    }
    ctx.emit(&doc, || {
        let mut out = String::new();
        for e in doc["environments"].as_array().into_iter().flatten() {
            let current = &e["current"];
            out.push_str(&format!(
                "{:<12} {}\n",
                e["name"].as_str().unwrap_or("?"),
                if current.is_null() {
                    "(nothing released)".to_owned()
                } else {
                    format!(
                        "release {} {} ({}, {})",
                        current["seq"],
                        current["digest"].as_str().unwrap_or("?"),
                        current["kind"].as_str().unwrap_or("?"),
                        current["at"].as_str().unwrap_or("?")
                    )
                }
            ));
        }
        for i in doc["incidents"]["incidents"]
            .as_array()
            .into_iter()
            .flatten()
        {
            out.push_str(&format!(
                "incident #{} ({}): revocation #{}, detected {}, recovered {}\n",
                i["id"],
                i["status"].as_str().unwrap_or("?"),
                i["revocation_id"],
                i["detected_at"].as_str().unwrap_or("?"),
                i["recovered_at"].as_str().unwrap_or("not yet"),
            ));
        }
        out
    });
    Ok(Outcome::Done)
}

/// A trust set of keys and an optional root.
fn trust(keys: &[PathBuf], root: Option<&Path>) -> anyhow::Result<TrustSet> {
    let keys = keys
        .iter()
        .map(|p| load_public_key(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (root, root_digest) = match root {
        Some(path) => (
            Some(super::trust_root::load(path)?),
            Some(Sha256Digest::of(&crate::files::read(path, "trusted root")?)),
        ),
        None => (None, None),
    };
    Ok(TrustSet {
        keys,
        root,
        root_digest,
    })
}

fn verify_text(trust: &TrustSet, bundle: &str, subject: Sha256Digest) -> Result<Evidence, String> {
    verify_one(
        trust,
        Artifact {
            digest: subject,
            bytes: None,
        },
        &Candidate {
            source: "history".into(),
            bytes: bundle.as_bytes().to_vec(),
        },
    )
    .map_err(|r| format!("{} ({})", r.reason, r.code))
}

/// Checks a release record's bundle: signed by the release key (logged, when a root is
/// given), a release statement about the record's digest, environment, seq and kind.
pub(crate) fn verify_release(trust: &TrustSet, release: &Release) -> Result<(), String> {
    let digest: Sha256Digest = release
        .digest
        .parse()
        .map_err(|e| format!("digest {}: {e}", release.digest))?;
    let evidence = verify_text(trust, &release.bundle, digest)?;
    if trust.root.is_some() && !evidence.logged {
        return Err("the release record carries no verified log entry".into());
    }
    if evidence.predicate_type.as_deref() != Some(statement::RELEASE_V1) {
        return Err(format!(
            "the bundle is not a release record ({:?})",
            evidence.predicate_type
        ));
    }
    let p = evidence
        .statement
        .as_ref()
        .map(|s| s["predicate"].clone())
        .unwrap_or_default();
    if p["environment"].as_str() != Some(release.environment.as_str())
        || p["seq"].as_u64() != Some(release.seq)
        || p["kind"].as_str() != Some(release.kind.as_str())
    {
        return Err(format!(
            "the signed record says {} seq {} {} but the server's record says {} seq {} {}",
            p["environment"],
            p["seq"],
            p["kind"],
            release.environment,
            release.seq,
            release.kind.as_str()
        ));
    }
    Ok(())
}

pub fn history(ctx: &Context, args: HistoryArgs) -> anyhow::Result<Outcome> {
    let doc: Json = match (&args.from, &args.artifact) {
        (Some(path), _) => serde_json::from_slice(&crate::files::read(path, "saved history")?)
            .with_context(|| format!("{}: not a saved history", path.display()))?,
        (None, Some(artifact)) => {
            let server = args
                .server
                .as_deref()
                .context("history needs --server URL (or --from FILE saved earlier)")?;
            let digest = artifact_digest(artifact)?;
            ReleaseClient::new(server, args.token.clone())
                .history(&digest)?
                .ok(&format!("history of {digest}"))?
                .json()
        }
        (None, None) => anyhow::bail!("give an artifact or --from FILE"),
    };
    if let Some(path) = &args.save {
        std::fs::write(path, serde_json::to_vec_pretty(&doc)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let digest: Sha256Digest = doc["digest"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .map_err(|e| anyhow::anyhow!("the history names no digest: {e}"))?;
    let evidence_trust = trust(&args.trusted_keys, args.trusted_root.as_deref())?;
    let release_trust = match &args.release_key {
        Some(k) => Some(trust(
            std::slice::from_ref(k),
            args.trusted_root.as_deref(),
        )?),
        None => None,
    };
    // (time, line, verified?)
    let mut lines: Vec<(String, String, Option<bool>)> = Vec::new();
    let mut failures = 0usize;
    if let Some(a) = doc["artifact"].as_object() {
        lines.push((
            a.get("uploaded_at")
                .and_then(Json::as_str)
                .unwrap_or("")
                .to_owned(),
            format!(
                "pushed by {} ({} bytes), upload logged at index {}",
                a.get("uploaded_by").and_then(Json::as_str).unwrap_or("?"),
                a.get("size").cloned().unwrap_or_default(),
                a.get("log_index").cloned().unwrap_or_default()
            ),
            None,
        ));
    }
    for e in doc["evidence"].as_array().into_iter().flatten() {
        let bundle = e["bundle"].as_str().unwrap_or_default();
        let checked = verify_text(&evidence_trust, bundle, digest);
        let (time, what) = match &checked {
            Ok(v) => (
                v.tlog
                    .first()
                    .and_then(|t| t.integrated_time.clone())
                    .unwrap_or_default(),
                format!(
                    "{} signed by {}{}, log index {}",
                    v.predicate_type.as_deref().map_or("signature", short_type),
                    v.signer_name(),
                    e["principal"]
                        .as_str()
                        .map(|p| format!(" ({p})"))
                        .unwrap_or_default(),
                    v.tlog
                        .first()
                        .map_or("none".into(), |t| t.log_index.to_string())
                ),
            ),
            Err(reason) => (
                String::new(),
                format!(
                    "evidence {} does not verify with the given keys: {reason}",
                    e["bundle_digest"].as_str().unwrap_or("?")
                ),
            ),
        };
        let revoked = e["revoked_by"].as_array().is_some_and(|v| !v.is_empty());
        lines.push((
            time,
            if revoked {
                format!("{what} [REVOKED by #{}]", e["revoked_by"])
            } else {
                what
            },
            Some(checked.is_ok()),
        ));
    }
    let releases: Vec<Release> =
        serde_json::from_value(doc["releases"].clone()).unwrap_or_default();
    for r in &releases {
        let verified = release_trust.as_ref().map(|t| verify_release(t, r));
        if matches!(verified, Some(Err(_))) {
            failures += 1;
        }
        lines.push((
            statement::rfc3339(r.at),
            format!(
                "{} into {} as release {} by {}{}, log index {}{}",
                r.kind.as_str(),
                r.environment,
                r.seq,
                r.requested_by,
                r.reason
                    .as_deref()
                    .map(|x| format!(" ({x})"))
                    .unwrap_or_default(),
                r.log_index.map_or("none".into(), |i| i.to_string()),
                match &verified {
                    Some(Err(e)) => format!(" — DOES NOT VERIFY: {e}"),
                    _ => String::new(),
                }
            ),
            verified.map(|v| v.is_ok()),
        ));
    }
    for d in doc["deployments"].as_array().into_iter().flatten() {
        lines.push((
            d["at"].as_str().unwrap_or("").to_owned(),
            format!(
                "deployed to {} (release {}) by agent {}: {}",
                d["environment"].as_str().unwrap_or("?"),
                d["seq"],
                d["agent"].as_str().unwrap_or("?"),
                d["status"].as_str().unwrap_or("?")
            ),
            None,
        ));
    }
    for r in doc["revocations"].as_array().into_iter().flatten() {
        lines.push((
            r["at"].as_str().unwrap_or("").to_owned(),
            format!(
                "revocation #{} of {} by {}: {} (log index {})",
                r["id"],
                r["target"].as_str().unwrap_or("?"),
                r["revoked_by"].as_str().unwrap_or("?"),
                r["reason"].as_str().unwrap_or(""),
                r["log_index"]
            ),
            None,
        ));
    }
    if let Some(q) = doc["quarantine"].as_object() {
        lines.push((
            q.get("at").and_then(Json::as_str).unwrap_or("").to_owned(),
            format!(
                "quarantined (revocation #{})",
                q.get("revocation_id").cloned().unwrap_or_default()
            ),
            None,
        ));
    }
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    let out = json!({
        "digest": digest.to_string(),
        "verified": failures == 0,
        "timeline": lines.iter().map(|(t, l, v)| json!({"at": t, "event": l, "verified": v})).collect::<Vec<_>>(),
    });
    ctx.emit(&out, || {
        let mut text = format!("chain of custody of {digest}\n");
        for (t, l, v) in &lines {
            let mark = match v {
                Some(true) => "✓",
                Some(false) => "✗",
                None => "·",
            };
            text.push_str(&format!("  {mark} {t:<20} {l}\n"));
        }
        if release_trust.is_none() {
            text.push_str("  (release records not verified: give --release-key)\n");
        }
        text
    });
    if failures > 0 {
        return Err(Denied::new(format!(
            "{failures} release record(s) of {digest} do not verify under the release key"
        ))
        .into());
    }
    Ok(Outcome::Done)
}

fn short_type(t: &str) -> &str {
    match t {
        custody_core::intoto::SLSA_PROVENANCE_V1 => "SLSA provenance",
        statement::APPROVAL_V1 => "approval",
        custody_policy::vsa::VSA_V1 => "VSA",
        "urn:custody:predicate:rebuild:v1" => "rebuild",
        other => other,
    }
}

pub fn audit(ctx: &Context, args: AuditArgs) -> anyhow::Result<Outcome> {
    let client = client(&args.server)?;
    let doc = client
        .environment(&args.environment)?
        .ok(&format!("reading environment {}", args.environment))?
        .json();
    let Some(current) = doc.get("current").filter(|c| !c.is_null()) else {
        return Err(Denied::new(format!(
            "{} has no release: nothing is deployed there to audit",
            args.environment
        ))
        .into());
    };
    let release: Release = serde_json::from_value(current.clone())
        .context("the server's release record is malformed")?;
    let mut checks: Vec<(String, Result<(), String>)> = Vec::new();
    let release_trust = trust(
        std::slice::from_ref(&args.release_key),
        args.trusted_root.as_deref(),
    )?;
    checks.push((
        format!("release record {} (seq {})", release.digest, release.seq),
        verify_release(&release_trust, &release),
    ));
    let digest: Sha256Digest = release
        .digest
        .parse()
        .map_err(|e| anyhow::anyhow!("release digest: {e}"))?;
    let bytes = client
        .artifact(&digest)?
        .ok(&format!("fetching {digest}"))?
        .body;
    checks.push((
        "artifact bytes".into(),
        if Sha256Digest::of(&bytes) == digest {
            Ok(())
        } else {
            Err(format!(
                "the server sent bytes hashing to {}, not {digest}",
                Sha256Digest::of(&bytes)
            ))
        },
    ));
    if let Some(vsa) = &release.vsa {
        let result = verify_text(&release_trust, vsa, digest).and_then(|e| {
            let st = e.statement.unwrap_or_default();
            if e.predicate_type.as_deref() != Some(custody_policy::vsa::VSA_V1) {
                return Err("not a VSA".to_string());
            }
            if st["predicate"]["verificationResult"].as_str() != Some("PASSED") {
                return Err("the VSA does not say PASSED".into());
            }
            Ok(())
        });
        checks.push(("verification summary (VSA)".into(), result));
    }
    if let Some(dir) = &args.policy {
        let policy = super::verify::gate::load_policy(dir, args.limit.policy_timeout)?;
        let gate = custody_policy::Gate {
            policy,
            trust: trust(&args.trusted_keys, args.trusted_root.as_deref())?,
        };
        let candidates = super::verify::evidence_from::fetch(&args.server.server, &digest)?;
        let verdict = gate.decide(
            &custody_policy::gate::Request {
                artifact: custody_policy::ArtifactRef {
                    digest: Some(digest.to_string()),
                    ..Default::default()
                },
                bytes: Some(&bytes),
                environment: Some(custody_policy::input::EnvironmentRef {
                    name: args.environment.clone(),
                    ..Default::default()
                }),
                time: Utc::now(),
                ..Default::default()
            },
            &candidates,
        )?;
        checks.push((
            format!(
                "policy {} over {} evidence",
                dir.display(),
                candidates.len()
            ),
            if verdict.allowed {
                Ok(())
            } else {
                Err(verdict.one_line())
            },
        ));
    }
    if let Some(target) = &args.target {
        let path = target
            .strip_prefix("dir:")
            .context("--target: only dir:PATH can be audited")?;
        let link = Path::new(path).join("current");
        let result = match std::fs::read_link(&link) {
            Ok(t)
                if t.file_name().map(|n| n.to_string_lossy().into_owned())
                    == Some(digest.hex()) =>
            {
                Ok(())
            }
            Ok(t) => Err(format!(
                "{} points to {}, not {digest}",
                link.display(),
                t.display()
            )),
            Err(e) => Err(format!("{}: {e}", link.display())),
        };
        checks.push((format!("deployed at {path}"), result));
    }
    let failed = checks.iter().filter(|(_, r)| r.is_err()).count();
    let out = json!({
        "environment": args.environment,
        "digest": digest.to_string(),
        "seq": release.seq,
        "verified": failed == 0,
        "checks": checks.iter().map(|(what, r)| json!({"check": what, "ok": r.is_ok(), "error": r.as_ref().err()})).collect::<Vec<_>>(),
    });
    ctx.emit(&out, || {
        let mut text = format!(
            "audit of {}: release {} {}\n",
            args.environment, release.seq, digest
        );
        for (what, r) in &checks {
            match r {
                Ok(()) => text.push_str(&format!("  ✓ {what}\n")),
                Err(e) => text.push_str(&format!("  ✗ {what}: {e}\n")),
            }
        }
        text
    });
    if failed > 0 {
        return Err(Denied::new(format!(
            "{failed} check(s) of what is deployed in {} failed",
            args.environment
        ))
        .into());
    }
    Ok(Outcome::Done)
}

pub fn rotate(ctx: &Context, args: KeyRotateArgs) -> anyhow::Result<Outcome> {
    let client = client(&args.server)?;
    let overlap = custody_release::config::parse_duration(&args.overlap)
        .map_err(|m| anyhow::anyhow!("--overlap: {m}"))?;
    let old = load_signing_key(&args.old)?;
    let new = load_signing_key(&args.new)?;
    let (old_pub, new_pub) = (old.public_key(), new.public_key());
    let now = Utc::now();
    let retire_at = now
        + chrono::Duration::from_std(overlap)
            .map_err(|_| anyhow::anyhow!("--overlap is too long"))?;
    let mut st = statement::key_rotation(
        &old_pub.key_id().to_string(),
        &new_pub.key_id().to_string(),
        &new_pub.to_pem(),
        retire_at,
        now,
    );
    st.predicate["reason"] = json!(args.reason);
    let bundle = custody_core::sign::sign_statement(&old, &st)
        .with_context(|| format!("signing with {}", args.old.display()))?
        .into_bundle()
        .to_json();
    let answer = client
        .rotate_key(bundle.as_bytes())?
        .ok("key rotation")?
        .json();
    // Re-sign the chosen artifacts' evidence that the old key signed.
    let old_trust = TrustSet {
        keys: vec![old_pub.clone()],
        root: None,
        root_digest: None,
    };
    let log = custody_client::submit::LogTarget {
        url: client.base_url().to_owned(),
        token: client.token().map(str::to_owned),
    };
    let mut resigned = Vec::new();
    for artifact in &args.resign {
        let digest = artifact_digest(artifact)?;
        for candidate in super::verify::evidence_from::fetch(client.base_url(), &digest)? {
            let Ok(evidence) = verify_one(
                &old_trust,
                Artifact {
                    digest,
                    bytes: None,
                },
                &candidate,
            ) else {
                continue;
            };
            let bundle = Bundle::from_json(&candidate.bytes)?;
            let custody_core::bundle::BundleContent::Dsse(envelope) = bundle.content else {
                tracing::warn!(evidence = %evidence.bundle_digest, "a message signature by the old key is not re-signed (re-sign the file with custody sign)");
                continue;
            };
            let new_bundle = custody_core::sign::sign_in_toto_payload(&new, envelope.payload)
                .context("re-signing with the new key")?
                .log(&log)
                .context("logging the re-signed evidence")?
                .to_json();
            let stored = client
                .store_evidence(new_bundle.as_bytes())?
                .ok("storing the re-signed evidence")?
                .json();
            resigned.push(json!({
                "artifact": digest.to_string(),
                "old": evidence.bundle_digest,
                "new": stored["bundle_digest"],
                "predicate_type": evidence.predicate_type,
            }));
        }
    }
    let out = json!({"rotation": answer, "resigned": resigned});
    ctx.emit(&out, || {
        let mut text = format!(
            "rotated {} -> {} (logged at index {}); the old key retires at {}\n",
            old_pub.key_id().short(),
            new_pub.key_id().short(),
            answer["log_index"],
            statement::rfc3339(retire_at)
        );
        for r in &resigned {
            text.push_str(&format!(
                "  re-signed {} evidence of {} as {}\n",
                r["predicate_type"].as_str().unwrap_or("?"),
                r["artifact"].as_str().unwrap_or("?"),
                r["new"].as_str().unwrap_or("?")
            ));
        }
        text
    });
    Ok(Outcome::Done)
}
