//! `custody log verify | verify-checkpoint | monitor`: the client side of the log.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use custody_client::audit::audit;
use custody_client::monitor::{self, Alert, MonitorState, Watch};
use custody_client::tiles::LogClient;
use custody_core::keys::PublicKey;
use custody_core::note::{
    CosignatureVerifier, Note, NoteVerifier, SignedCheckpoint, require_cosignatures,
};
use serde_json::json;

use super::Context;
use crate::cli_log::{
    LogKeyArgs, LogVerifyArgs, MonitorArgs, VerifyCheckpointArgs, WitnessPolicyArgs,
};
use crate::files;
use crate::outcome::{Denied, Outcome};

/// A vkey given inline, or the first line of the file it names.
pub fn vkey_text(arg: &str) -> anyhow::Result<String> {
    let path = Path::new(arg);
    if !arg.contains('+') || path.is_file() {
        let text = String::from_utf8(files::read(path, "key file")?)
            .with_context(|| format!("key file {arg}: not UTF-8"))?;
        return Ok(text.trim().to_owned());
    }
    Ok(arg.trim().to_owned())
}

/// The trusted log keys: `--log-key`, or every tlog of `--trust-root` (key name = baseUrl
/// without its scheme, which is how Rekor v2 origins are named).
pub fn log_keys(args: &LogKeyArgs) -> anyhow::Result<Vec<NoteVerifier>> {
    if let Some(vkey) = &args.log_key {
        let key = NoteVerifier::from_vkey(&vkey_text(vkey)?)
            .with_context(|| format!("--log-key {vkey}: not a note verifier key"))?;
        return Ok(vec![key]);
    }
    let path = args
        .trust_root
        .as_deref()
        .context("give --log-key or --trust-root")?;
    let root = super::trust_root::load(path)?;
    let keys: Vec<NoteVerifier> = root
        .tlogs
        .iter()
        .filter_map(|tlog| {
            let name = tlog
                .base_url
                .split_once("://")
                .map_or(tlog.base_url.as_str(), |(_, r)| r);
            let der = tlog.public_key.raw_bytes.as_deref()?;
            NoteVerifier::from_spki(name.trim_end_matches('/'), der).ok()
        })
        .collect();
    if keys.is_empty() {
        anyhow::bail!(
            "trusted root {}: no transparency log key custody can use",
            path.display()
        );
    }
    Ok(keys)
}

fn witness_keys(args: &WitnessPolicyArgs) -> anyhow::Result<Vec<CosignatureVerifier>> {
    if args.min_witnesses > args.witnesses.len() {
        anyhow::bail!(
            "--min-witnesses {} but only {} --witness keys given",
            args.min_witnesses,
            args.witnesses.len()
        );
    }
    args.witnesses
        .iter()
        .map(|w| {
            CosignatureVerifier::from_vkey(&vkey_text(w)?)
                .with_context(|| format!("--witness {w}: not a witness cosignature vkey"))
        })
        .collect()
}

fn check_witnesses(note: &Note, args: &WitnessPolicyArgs) -> anyhow::Result<usize> {
    let keys = witness_keys(args)?;
    let valid = require_cosignatures(note, &keys, args.min_witnesses)
        .map_err(|e| Denied::new(format!("witness cosignatures: {e}")))?;
    Ok(valid.len())
}

pub fn verify(ctx: &Context, args: LogVerifyArgs) -> anyhow::Result<Outcome> {
    let keys = log_keys(&args.key)?;
    witness_keys(&args.witnesses)?;
    let client = LogClient::new(&args.url);
    let report = audit(&client, &keys).map_err(|e| {
        if e.is_verification_failure() {
            anyhow::Error::new(Denied::new(format!("log {}: {e}", args.url)))
        } else {
            anyhow::Error::new(e).context(format!("cannot audit log {}", args.url))
        }
    })?;
    let note = Note::parse(&report.checkpoint)?;
    let witnessed = check_witnesses(&note, &args.witnesses)?;
    let doc = json!({
        "ok": true,
        "origin": report.origin,
        "treeSize": report.size,
        "rootHash": hex::encode(report.root_hash),
        "tilesChecked": report.tiles,
        "witnesses": witnessed,
    });
    ctx.emit(&doc, || {
        format!(
            "log {} verified: {} entries, {} tiles, root {} ({} witness cosignatures)\n",
            report.origin,
            report.size,
            report.tiles,
            hex::encode(report.root_hash),
            witnessed
        )
    });
    Ok(Outcome::Done)
}

pub fn verify_checkpoint(ctx: &Context, args: VerifyCheckpointArgs) -> anyhow::Result<Outcome> {
    let keys = log_keys(&args.key)?;
    let bytes = files::read(&args.file, "checkpoint")?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Denied::new(format!("checkpoint {}: not UTF-8", args.file.display())))?;
    let signed = SignedCheckpoint::verify(&text, &keys)
        .map_err(|e| Denied::new(format!("checkpoint {}: {e}", args.file.display())))?;
    let witnessed = check_witnesses(signed.note().note(), &args.witnesses)?;
    let cp = signed.checkpoint();
    let doc = json!({
        "ok": true, "origin": cp.origin(), "treeSize": cp.size(),
        "rootHash": hex::encode(cp.root_hash()), "witnesses": witnessed,
    });
    ctx.emit(&doc, || {
        format!(
            "checkpoint verified: {} size {} ({} witness cosignatures)\n",
            cp.origin(),
            cp.size(),
            witnessed
        )
    });
    Ok(Outcome::Done)
}

fn key_ids(paths: &[std::path::PathBuf]) -> anyhow::Result<std::collections::HashSet<[u8; 32]>> {
    paths
        .iter()
        .map(|p| {
            let key = PublicKey::from_pem(&files::read(p, "public key")?)
                .with_context(|| format!("public key {}", p.display()))?;
            Ok(key.key_id().0)
        })
        .collect()
}

fn load_state(path: Option<&Path>) -> anyhow::Result<Option<MonitorState>> {
    let Some(path) = path.filter(|p| p.exists()) else {
        return Ok(None);
    };
    let bytes = files::read(path, "monitor state")?;
    let state = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "monitor state {}: not a custody monitor state",
            path.display()
        )
    })?;
    Ok(Some(state))
}

pub fn monitor(ctx: &Context, args: MonitorArgs) -> anyhow::Result<Outcome> {
    let keys = log_keys(&args.key)?;
    let watch = Watch {
        watch: key_ids(&args.watch_key)?,
        allow: key_ids(&args.allow_key)?,
        watch_identities: args.watch_identity.iter().cloned().collect(),
        allow_identities: args.allow_identity.iter().cloned().collect(),
    };
    let client = LogClient::new(&args.url);
    let mut state = load_state(args.state.as_deref())?;
    loop {
        let (next, alerts) = monitor::check(&client, &keys, state.as_ref(), &watch)
            .with_context(|| format!("cannot monitor {}", args.url))?;
        for alert in &alerts {
            raise(alert, args.webhook.as_deref());
        }
        if let Some(next) = next {
            if let Some(path) = &args.state {
                let json = serde_json::to_vec_pretty(&next)?;
                files::write_atomic(path, &json, false)?;
            }
            state = Some(next);
        }
        if args.once {
            if !alerts.is_empty() {
                return Err(
                    Denied::new(format!("{} alert(s) on {}", alerts.len(), args.url)).into(),
                );
            }
            let doc = json!({ "ok": true, "treeSize": state.as_ref().map(|s| s.size) });
            ctx.emit(&doc, || {
                format!(
                    "log {} consistent up to size {}\n",
                    args.url,
                    state.as_ref().map_or(0, |s| s.size)
                )
            });
            return Ok(Outcome::Done);
        }
        std::thread::sleep(Duration::from_secs(args.interval.max(1)));
    }
}

/// An alert: a JSON line on stderr, and a POST to the webhook if there is one.
fn raise(alert: &Alert, webhook: Option<&str>) {
    let line = serde_json::to_string(alert).unwrap_or_default();
    eprintln!("{line}");
    if let Some(url) = webhook {
        let sent = custody_client::tiles::agent()
            .post(url)
            .header("Content-Type", "application/json")
            .send(line.as_str());
        if let Err(e) = sent {
            tracing::error!(webhook = url, error = %e, "cannot deliver the alert");
        }
    }
}
