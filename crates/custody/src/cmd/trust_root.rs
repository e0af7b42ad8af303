//! `custody trust-root`: look inside a Sigstore trusted_root.json.

use std::path::Path;

use anyhow::Context as _;
use custody_core::trust_root::TrustedRoot;
use serde_json::json;

use super::Context;
use crate::files;
use crate::outcome::Outcome;

pub fn inspect(ctx: &Context, path: &Path) -> anyhow::Result<Outcome> {
    let bytes = files::read(path, "trusted root")?;
    let root = TrustedRoot::from_json_or_trust_config(&bytes).with_context(|| format!("trusted root {}", path.display()))?;
    let summary = root.summary();
    ctx.emit(&summary, || human(&summary));
    Ok(Outcome::Done)
}

fn human(summary: &serde_json::Value) -> String {
    let mut out = String::new();
    for (section, title) in [
        ("tlogs", "transparency logs"),
        ("certificateAuthorities", "certificate authorities"),
        ("ctlogs", "certificate transparency logs"),
        ("timestampAuthorities", "timestamp authorities"),
    ] {
        let items = summary[section].as_array().cloned().unwrap_or_default();
        out.push_str(&format!("{title}: {}\n", items.len()));
        for item in items {
            out.push_str(&format!(
                "  {}  valid {} .. {}\n",
                item["name"].as_str().unwrap_or("?"),
                item["validFrom"].as_str().unwrap_or("-"),
                item["validUntil"].as_str().unwrap_or("open"),
            ));
        }
    }
    let _ = json!(null);
    out
}
