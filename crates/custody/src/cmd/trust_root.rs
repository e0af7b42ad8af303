//! `custody trust-root`: look inside a Sigstore trusted_root.json.

use std::path::Path;

use custody_core::trust_root::{
    CertificateAuthority, ClientTrustConfig, TransparencyLogInstance, TrustedRoot, ValidityPeriod,
};
use serde_json::{Value, json};

use super::Context;
use crate::files;
use crate::outcome::Outcome;

/// Reads a trusted root, or the trusted root inside a ClientTrustConfig.
pub fn load(path: &Path) -> anyhow::Result<TrustedRoot> {
    let bytes = files::read(path, "trusted root")?;
    match TrustedRoot::from_json(&bytes) {
        Ok(root) => Ok(root),
        Err(root_err) => match ClientTrustConfig::from_json(&bytes) {
            Ok(config) => Ok(config.trusted_root),
            Err(_) => Err(anyhow::anyhow!(
                "trusted root {}: {root_err}",
                path.display()
            )),
        },
    }
}

fn validity(v: &ValidityPeriod) -> Value {
    json!({ "start": v.start.map(|t| t.to_rfc3339()), "end": v.end.map(|t| t.to_rfc3339()) })
}

fn log_json(log: &TransparencyLogInstance) -> Value {
    json!({
        "baseUrl": log.base_url,
        "logId": hex::encode(&log.log_id),
        "keyDetails": log.public_key.key_details,
        "validFor": validity(&log.public_key.valid_for),
        "operator": log.operator,
    })
}

fn ca_json(ca: &CertificateAuthority) -> Value {
    json!({
        "uri": ca.uri,
        "subject": { "organization": ca.subject.organization, "commonName": ca.subject.common_name },
        "certificates": ca.cert_chain.len(),
        "validFor": validity(&ca.valid_for),
        "operator": ca.operator,
    })
}

pub fn inspect(ctx: &Context, path: &Path) -> anyhow::Result<Outcome> {
    let root = load(path)?;
    let doc = json!({
        "ok": true,
        "mediaType": root.media_type,
        "tlogs": root.tlogs.iter().map(log_json).collect::<Vec<_>>(),
        "certificateAuthorities": root.certificate_authorities.iter().map(ca_json).collect::<Vec<_>>(),
        "ctlogs": root.ctlogs.iter().map(log_json).collect::<Vec<_>>(),
        "timestampAuthorities": root.timestamp_authorities.iter().map(ca_json).collect::<Vec<_>>(),
    });
    ctx.emit(&doc, || human(&doc));
    Ok(Outcome::Done)
}

fn human(doc: &Value) -> String {
    let mut out = format!("{}\n", doc["mediaType"].as_str().unwrap_or_default());
    for (section, title, name) in [
        ("tlogs", "transparency logs", "baseUrl"),
        ("certificateAuthorities", "certificate authorities", "uri"),
        ("ctlogs", "certificate transparency logs", "baseUrl"),
        ("timestampAuthorities", "timestamp authorities", "uri"),
    ] {
        let items = doc[section].as_array().cloned().unwrap_or_default();
        out.push_str(&format!("{title}: {}\n", items.len()));
        for item in items {
            out.push_str(&format!(
                "  {}  valid {} .. {}\n",
                item[name].as_str().unwrap_or("?"),
                item["validFor"]["start"]
                    .as_str()
                    .unwrap_or("(no start: never valid)"),
                item["validFor"]["end"].as_str().unwrap_or("open"),
            ));
        }
    }
    out
}

/// `trust-root export`: a trusted_root.json for a custody log, from its data directory or from
/// the server (`GET /api/v1/trusted_root.json`, checked to parse).
pub fn export(ctx: &Context, args: crate::cli_log::TrustRootExportArgs) -> anyhow::Result<Outcome> {
    let mut root = match (&args.server, &args.data_dir) {
        (Some(server), _) => fetch(server)?,
        (None, Some(dir)) => {
            let identity = custody_server::identity::LogIdentity::load(dir)
                .map_err(|e| anyhow::anyhow!("data directory {}: {e}", dir.display()))?;
            identity.trusted_root(&format!("http://{}", identity.origin))
        }
        (None, None) => anyhow::bail!("give --server URL or --data-dir DIR"),
    };
    if let Some(base_url) = &args.base_url {
        for tlog in &mut root.tlogs {
            tlog.base_url = base_url.trim_end_matches('/').to_owned();
        }
    }
    let json = root.to_json();
    match &args.out {
        Some(path) => {
            files::write_atomic(path, json.as_bytes(), false)?;
            let doc = json!({ "ok": true, "output": path.display().to_string() });
            ctx.emit(&doc, || format!("wrote {}\n", path.display()));
        }
        None => println!("{json}"),
    }
    Ok(Outcome::Done)
}

fn fetch(server: &str) -> anyhow::Result<TrustedRoot> {
    let url = format!("{}/api/v1/trusted_root.json", server.trim_end_matches('/'));
    let mut response = custody_client::tiles::agent()
        .get(&url)
        .call()
        .map_err(|e| anyhow::anyhow!("GET {url}: {e}"))?;
    if response.status() != 200 {
        anyhow::bail!("GET {url}: HTTP {}", response.status().as_u16());
    }
    let bytes = response
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_vec()
        .map_err(|e| anyhow::anyhow!("GET {url}: {e}"))?;
    TrustedRoot::from_json(&bytes).map_err(|e| anyhow::anyhow!("GET {url}: {e}"))
}
