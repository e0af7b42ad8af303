//! `custody verify`: does this artifact carry a bundle that verifies?

use std::path::{Path, PathBuf};

use custody_core::bundle::{Bundle, Material};
use custody_core::digest::Sha256Digest;
use custody_core::keys::KeyAlgorithm;
use custody_core::verify::{
    self, Artifact, KeyVerifyOptions, TlogStatus, VerifiedBundle, VerifiedContent,
};
use serde_json::json;

use super::Context;
use super::key::load_public_key;
use super::sign::read_artifact;
use crate::cli::VerifyArgs;
use crate::files;
use crate::outcome::{Denied, Outcome};

/// The bundle names tried beside an artifact, in order.
const BUNDLE_SUFFIXES: [&str; 3] = [".sigstore.json", ".intoto.sigstore.json", ".sigstore"];

enum Subject {
    File(PathBuf),
    Digest(Sha256Digest),
}

fn subject(text: &str) -> anyhow::Result<Subject> {
    let path = Path::new(text);
    if text.starts_with("sha256:") && !path.exists() {
        let digest = text
            .parse()
            .map_err(|e| anyhow::anyhow!("artifact digest {text:?}: {e}"))?;
        return Ok(Subject::Digest(digest));
    }
    Ok(Subject::File(path.to_path_buf()))
}

fn find_bundle(subject: &Subject, flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(path) = flag {
        return Ok(path);
    }
    let Subject::File(file) = subject else {
        anyhow::bail!("verifying by digest needs --bundle FILE");
    };
    for suffix in BUNDLE_SUFFIXES {
        let mut s = file.as_os_str().to_owned();
        s.push(suffix);
        let candidate = PathBuf::from(s);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    anyhow::bail!(
        "no bundle found beside {} (looked for {}): pass --bundle FILE",
        file.display(),
        BUNDLE_SUFFIXES.join(", ")
    )
}

pub fn verify(ctx: &Context, args: VerifyArgs) -> anyhow::Result<Outcome> {
    let subject = subject(&args.artifact)?;
    let bundle_path = find_bundle(&subject, args.bundle)?;
    let bundle_bytes = files::read(&bundle_path, "bundle")?;
    let denied = |e: &dyn std::fmt::Display| {
        Denied(format!(
            "verification failed: bundle {}: {e}",
            bundle_path.display()
        ))
    };
    let bundle = Bundle::from_json(&bundle_bytes).map_err(|e| denied(&e))?;

    let key_path = args.key.or_else(|| ctx.config.public_key.clone());
    let Some(key_path) = key_path else {
        return Err(match &bundle.verification_material.content {
            Material::PublicKeyHint(hint) => anyhow::anyhow!(
                "bundle {} is signed with a key (hint {hint:?}): pass --key PUBLIC.pem",
                bundle_path.display()
            ),
            _ => anyhow::anyhow!(
                "bundle {} is signed with a certificate: keyless verification (--trusted-root, --certificate-identity) is not available yet; pass --key for key-signed bundles",
                bundle_path.display()
            ),
        });
    };
    let key = load_public_key(&key_path)?;
    let trusted_root = args
        .trusted_root
        .as_deref()
        .map(super::trust_root::load)
        .transpose()?;

    let (artifact_bytes, digest, path) = match &subject {
        Subject::File(path) => {
            let (digest, _, bytes) = read_artifact(path, key.algorithm())?;
            (bytes, digest, Some(path.clone()))
        }
        Subject::Digest(d) => (None, *d, None),
    };
    let artifact = Artifact {
        digest,
        bytes: artifact_bytes.as_deref(),
    };
    let options = KeyVerifyOptions {
        trusted_root: trusted_root.as_ref(),
    };
    let verified = match verify::verify_parsed_with_key_options(&bundle, artifact, &key, &options) {
        Ok(v) => v,
        Err(e) if e.is_usage() => return Err(anyhow::anyhow!("{e}")),
        Err(e) => return Err(denied(&e).into()),
    };
    report(ctx, &verified, path.as_deref(), &bundle_path);
    Ok(Outcome::Done)
}

fn tlog_text(status: TlogStatus) -> (serde_json::Value, String) {
    match status {
        TlogStatus::Absent => (
            json!({ "status": "absent" }),
            "none in the bundle".to_string(),
        ),
        TlogStatus::NotChecked { entries } => (
            json!({ "status": "not_checked", "entries": entries }),
            format!(
                "NOT CHECKED: the bundle has {entries} log entr{}; pass --trusted-root FILE to verify them",
                if entries == 1 { "y" } else { "ies" }
            ),
        ),
        TlogStatus::Verified {
            entries,
            integrated_time,
        } => (
            json!({
                "status": "verified",
                "entries": entries,
                "integratedTime": integrated_time.map(|t| t.to_rfc3339()),
            }),
            format!(
                "verified: {entries} log entr{}{}",
                if entries == 1 { "y" } else { "ies" },
                integrated_time
                    .map(|t| format!(", integrated {}", t.to_rfc3339()))
                    .unwrap_or_default()
            ),
        ),
    }
}

fn report(ctx: &Context, v: &VerifiedBundle, path: Option<&Path>, bundle_path: &Path) {
    let (tlog_json, tlog_human) = tlog_text(v.tlog);
    let (kind, statement_json, statement_human) = match &v.content {
        VerifiedContent::MessageSignature => {
            ("messageSignature", serde_json::Value::Null, String::new())
        }
        VerifiedContent::Statement(s) => (
            "dsse",
            json!({ "predicateType": s.predicate_type, "subjects": s.subject.len() }),
            format!(
                "  statement {} ({} subject{})\n",
                s.predicate_type,
                s.subject.len(),
                if s.subject.len() == 1 { "" } else { "s" }
            ),
        ),
    };
    let algorithm: KeyAlgorithm = v.algorithm;
    ctx.emit(
        &json!({
            "ok": true, "verified": true,
            "artifact": { "digest": v.artifact.to_string(), "path": path },
            "bundle": { "path": bundle_path, "mediaType": v.media_type, "content": kind },
            "signer": { "keyId": v.signer.to_string(), "algorithm": algorithm.to_string() },
            "statement": statement_json,
            "tlog": tlog_json,
            "notes": v.notes,
        }),
        || {
            let mut out = format!(
                "Verified OK {}{}\n  bundle    {} ({kind})\n  signer    key {} ({algorithm})\n{statement_human}  tlog      {tlog_human}\n",
                v.artifact,
                path.map(|p| format!(" ({})", p.display())).unwrap_or_default(),
                bundle_path.display(),
                v.signer,
            );
            for note in &v.notes {
                out.push_str(&format!("  note      {note}\n"));
            }
            out
        },
    );
}
