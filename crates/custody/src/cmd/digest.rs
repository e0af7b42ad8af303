//! `custody digest`: the sha256 name of each file.

use std::path::PathBuf;

use serde_json::json;

use super::Context;
use crate::files;
use crate::outcome::Outcome;

pub fn digest(ctx: &Context, paths: &[PathBuf]) -> anyhow::Result<Outcome> {
    let mut rows = Vec::with_capacity(paths.len());
    for path in paths {
        let (digest, size) = files::sha256(path)?;
        rows.push((path, digest, size));
    }
    let doc = json!(
        rows.iter()
            .map(|(p, d, n)| json!({ "path": p, "digest": d.to_string(), "size": n }))
            .collect::<Vec<_>>()
    );
    ctx.emit(&doc, || {
        rows.iter()
            .map(|(p, d, _)| format!("{d}  {}\n", p.display()))
            .collect()
    });
    Ok(Outcome::Done)
}
