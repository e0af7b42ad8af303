//! How a verified bundle is shown: sentences for people, one JSON document for machines. A
//! report never claims more than was verified (`tlog NOT CHECKED`).

use std::path::Path;

use custody_core::verify::{
    CertificateSigner, TimeSource, TlogStatus, VerifiedBundle, VerifiedContent, VerifiedSigner,
    VerifiedTime,
};
use serde_json::{Value, json};

use crate::cmd::Context;

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn tlog_text(status: TlogStatus) -> (Value, String) {
    match status {
        TlogStatus::Absent => (
            json!({ "status": "absent" }),
            "none in the bundle".to_string(),
        ),
        TlogStatus::NotChecked { entries } => (
            json!({ "status": "not_checked", "entries": entries }),
            format!(
                "NOT CHECKED: the bundle has {}; pass --trusted-root FILE to verify them",
                plural(entries, "log entry", "log entries")
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
                "verified: {}{}",
                plural(entries, "log entry", "log entries"),
                integrated_time
                    .map(|t| format!(", integrated {}", t.to_rfc3339()))
                    .unwrap_or_default()
            ),
        ),
    }
}

fn time_json(t: &VerifiedTime) -> Value {
    match &t.source {
        TimeSource::Timestamp { tsa } => {
            json!({ "time": t.time.to_rfc3339(), "source": "timestamp", "tsa": tsa })
        }
        TimeSource::Tlog { log_url, log_index } => json!({
            "time": t.time.to_rfc3339(), "source": "tlog", "log": log_url, "logIndex": log_index,
        }),
    }
}

fn time_text(t: &VerifiedTime) -> String {
    match &t.source {
        TimeSource::Timestamp { tsa } => format!("{} (timestamp, {tsa})", t.time.to_rfc3339()),
        TimeSource::Tlog { log_url, log_index } => {
            format!("{} (log entry {log_index}, {log_url})", t.time.to_rfc3339())
        }
    }
}

fn certificate_json(c: &CertificateSigner) -> Value {
    json!({
        "type": "certificate",
        "identity": c.identity,
        "issuer": c.issuer,
        "algorithm": c.algorithm.to_string(),
        "authority": c.authority,
        "notBefore": c.not_before.to_rfc3339(),
        "notAfter": c.not_after.to_rfc3339(),
        "scts": c.scts.len(),
        "claims": c.claims,
    })
}

/// The JSON document for a verified bundle.
pub(crate) fn json(v: &VerifiedBundle, path: Option<&Path>, bundle_path: &Path) -> Value {
    let (tlog, _) = tlog_text(v.tlog);
    let signer = match &v.signer {
        VerifiedSigner::Key { key_id, algorithm } => json!({
            "type": "key", "keyId": key_id.to_string(), "algorithm": algorithm.to_string(),
        }),
        VerifiedSigner::Certificate(c) => certificate_json(c),
    };
    let (kind, statement) = match &v.content {
        VerifiedContent::MessageSignature => ("messageSignature", Value::Null),
        VerifiedContent::Statement(s) => (
            "dsse",
            json!({ "predicateType": s.predicate_type, "subjects": s.subject.len() }),
        ),
    };
    json!({
        "ok": true, "verified": true,
        "artifact": { "digest": v.artifact.to_string(), "path": path },
        "bundle": { "path": bundle_path, "mediaType": v.media_type, "content": kind },
        "signer": signer,
        "statement": statement,
        "times": v.times.iter().map(time_json).collect::<Vec<_>>(),
        "tlog": tlog,
        "notes": v.notes,
    })
}

fn signer_text(signer: &VerifiedSigner) -> String {
    match signer {
        VerifiedSigner::Key { key_id, algorithm } => {
            format!("  signer    key {key_id} ({algorithm})\n")
        }
        VerifiedSigner::Certificate(c) => {
            let mut out = format!(
                "  signer    {}\n  issuer    {}\n",
                c.identity.as_str(),
                c.issuer
            );
            let claims = &c.claims;
            if let (Some(repo), Some(git_ref)) = (
                claims.source_repository_uri.as_deref(),
                claims.source_repository_ref.as_deref(),
            ) {
                out.push_str(&format!(
                    "  source    {repo} {git_ref}{}\n",
                    claims
                        .source_repository_digest
                        .as_deref()
                        .map(|d| format!(" @ {d}"))
                        .unwrap_or_default()
                ));
            }
            out.push_str(&format!(
                "  cert      {} ({}), valid {} to {}, {}\n",
                c.authority,
                c.algorithm,
                c.not_before.to_rfc3339(),
                c.not_after.to_rfc3339(),
                plural(c.scts.len(), "SCT", "SCTs")
            ));
            out
        }
    }
}

/// The human text for a verified bundle.
pub(crate) fn human(v: &VerifiedBundle, path: Option<&Path>, bundle_path: &Path) -> String {
    let (_, tlog) = tlog_text(v.tlog);
    let (kind, statement) = match &v.content {
        VerifiedContent::MessageSignature => ("messageSignature", String::new()),
        VerifiedContent::Statement(s) => (
            "dsse",
            format!(
                "  statement {} ({})\n",
                s.predicate_type,
                plural(s.subject.len(), "subject", "subjects")
            ),
        ),
    };
    let mut out = format!(
        "Verified OK {}{}\n  bundle    {} ({kind})\n{}{statement}",
        v.artifact,
        path.map(|p| format!(" ({})", p.display()))
            .unwrap_or_default(),
        bundle_path.display(),
        signer_text(&v.signer),
    );
    for t in &v.times {
        out.push_str(&format!("  time      {}\n", time_text(t)));
    }
    out.push_str(&format!("  tlog      {tlog}\n"));
    for note in &v.notes {
        out.push_str(&format!("  note      {note}\n"));
    }
    out
}

/// Prints one verified bundle.
pub(crate) fn single(ctx: &Context, v: &VerifiedBundle, path: Option<&Path>, bundle_path: &Path) {
    ctx.emit(&json(v, path, bundle_path), || human(v, path, bundle_path));
}
