//! `custody admin reload`: ask a running server to reload its configuration
//! (`POST /api/v1/admin/reload`, admin token).

use serde_json::Value as Json;

use super::Context;
use super::release::{Checked as _, client};
use crate::cli_release::AdminReloadArgs;
use crate::outcome::{Denied, Outcome};

/// Exit 0 with what changed; 1 when the server refused the new configuration (422, the old
/// one stays in force) or the caller is no admin (403); 2 when the server cannot be asked.
pub fn reload(ctx: &Context, args: AdminReloadArgs) -> anyhow::Result<Outcome> {
    let answer = client(&args.server)?.reload()?;
    if answer.status == 422 {
        return Err(Denied::new(answer.message()).into());
    }
    let answer = answer.ok("configuration reload")?.json();
    ctx.emit(&answer, || human(&answer["changes"]));
    Ok(Outcome::Done)
}

/// One line per change, or "no change".
fn human(changes: &Json) -> String {
    let mut out = String::new();
    if let Some(policies) = changes["policies"].as_object() {
        for (scope, change) in policies {
            out.push_str(&format!(
                "policy of {scope}: {} -> {}\n",
                change["before"].as_str().unwrap_or("none"),
                change["after"].as_str().unwrap_or("none")
            ));
        }
    }
    for (field, what) in [
        ("principals_added", "principal added"),
        ("principals_removed", "principal removed"),
        ("principals_changed", "principal changed"),
        ("environments_added", "environment added"),
        ("environments_removed", "environment removed"),
        ("environments_changed", "environment changed"),
        ("trusted_keys_added", "trusted key added"),
        ("trusted_keys_removed", "trusted key removed"),
        ("needs_restart", "needs restart"),
    ] {
        for item in changes[field].as_array().into_iter().flatten() {
            out.push_str(&format!("{what}: {}\n", item.as_str().unwrap_or("?")));
        }
    }
    if out.is_empty() {
        out.push_str("reloaded: no change\n");
    } else {
        out.insert_str(0, "reloaded:\n");
    }
    out
}
