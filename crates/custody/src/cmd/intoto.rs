//! `custody intoto run` and `custody intoto verify`: in-toto layouts and links, interoperable
//! with python in-toto 3.x.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use custody_core::intoto_legacy::metadata::{sign_envelope, sign_metablock};
use custody_core::intoto_legacy::params;
use custody_core::intoto_legacy::{
    Inspection, InspectionRunner, Link, Metadata, SslibKey, VerifiedChain, VerifyError,
    VerifyOptions, in_toto_verify,
};
use custody_core::keys::KeyAlgorithm;
use serde_json::json;

use super::Context;
use super::intoto_exec::perform;
use super::key::{load_public_key, load_signing_key};
use crate::cli::{IntotoRunArgs, IntotoVerifyArgs};
use crate::files::{self, PendingWrite};
use crate::outcome::{Denied, Outcome};

pub fn run(ctx: &Context, args: IntotoRunArgs) -> anyhow::Result<Outcome> {
    if args.step.is_empty() || args.step.contains(['/', '\\', '\0']) {
        anyhow::bail!(
            "--step {:?}: a step name is not empty and has no path separators",
            args.step
        );
    }
    let key_path = args
        .key
        .clone()
        .or_else(|| ctx.config.key.clone())
        .ok_or_else(|| anyhow::anyhow!("no signing key: pass --key FILE or set CUSTODY_KEY"))?;
    let mut key = load_signing_key(&key_path)?;
    if matches!(
        key.algorithm(),
        KeyAlgorithm::RsaPkcs1Sha256 | KeyAlgorithm::RsaPssSha256
    ) {
        key = key.with_algorithm(KeyAlgorithm::RsaPssSha256)?;
    }
    let sslib = SslibKey::from_public_key(&key.public_key())
        .with_context(|| format!("private key {}", key_path.display()))?;
    let keyid = match &args.key_id {
        Some(id) if id.len() >= 8 && id.bytes().all(|b| b.is_ascii_hexdigit()) => {
            id.to_ascii_lowercase()
        }
        Some(id) => anyhow::bail!("--key-id {id:?}: a key id is hex, at least 8 characters"),
        None => sslib.keyid.clone(),
    };
    let link_path = args
        .metadata_directory
        .join(format!("{}.{}.link", args.step, &keyid[..8]));
    // Fail on an unwritable directory before the command runs; nothing is written until the
    // link is complete and signed.
    let pending = PendingWrite::new(&link_path, false)?;

    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let link = perform(
        &args.step,
        &args.materials,
        &args.products,
        &args.command,
        &cwd,
        ctx.quiet,
    )
    .with_context(|| format!("step {:?}: nothing was written", args.step))?;
    let value = link.to_value();
    let text = if args.dsse {
        sign_envelope(&value, &key, &keyid)
    } else {
        sign_metablock(&value, &key, &keyid)
    }
    .with_context(|| format!("signing with {}", key_path.display()))?;
    pending.commit(text.as_bytes())?;

    let return_value = link.byproducts.get("return-value").cloned();
    if let Some(code) = return_value.as_ref().and_then(|v| v.as_i64()) {
        if code != 0 {
            tracing::warn!("the command exited with {code}; the link records it");
        }
    }
    ctx.emit(
        &json!({ "ok": true, "link": link_path, "step": args.step, "keyId": keyid,
                 "format": if args.dsse { "dsse" } else { "metablock" },
                 "materials": link.materials.len(), "products": link.products.len(),
                 "returnValue": return_value }),
        || {
            format!(
                "Wrote {}\n  step       {}\n  key id     {keyid}\n  materials  {}\n  products   {}\n",
                link_path.display(),
                args.step,
                link.materials.len(),
                link.products.len()
            )
        },
    );
    Ok(Outcome::Done)
}

/// Runs inspections in the current directory, recording all of it as materials and products.
struct WorkdirRunner {
    workdir: PathBuf,
    quiet: bool,
}

impl InspectionRunner for WorkdirRunner {
    fn run(&mut self, inspection: &Inspection) -> Result<Link, VerifyError> {
        tracing::info!(inspection = %inspection.name, command = ?inspection.run, "running inspection");
        let all = [".".to_string()];
        perform(
            &inspection.name,
            &all,
            &all,
            &inspection.run,
            &self.workdir,
            self.quiet,
        )
        .map_err(|e| VerifyError::InspectionRun {
            name: inspection.name.clone(),
            reason: crate::outcome::one_line(&e),
        })
    }
}

/// `--param NAME=VALUE`, each name once.
fn parse_params(given: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for item in given {
        let Some((name, value)) = item.split_once('=') else {
            anyhow::bail!("--param {item:?}: expected NAME=VALUE");
        };
        if !params::is_valid_name(name) {
            anyhow::bail!(
                "--param {item:?}: a parameter name is letters, digits, '_' and '-' (as python in-toto requires)"
            );
        }
        if out.insert(name.to_string(), value.to_string()).is_some() {
            anyhow::bail!("--param {name}: given twice; give each parameter once");
        }
    }
    Ok(out)
}

pub fn verify(ctx: &Context, args: IntotoVerifyArgs) -> anyhow::Result<Outcome> {
    let parameters = parse_params(&args.params)?;
    let bytes = files::read(&args.layout, "layout")?;
    let layout_keys = args
        .layout_keys
        .iter()
        .map(|path| {
            let bytes = files::read(path, "layout key")?;
            if bytes.starts_with(b"-----BEGIN PGP") {
                anyhow::bail!(
                    "layout key {}: a GPG (OpenPGP) key: custody does not support GPG keys in in-toto; verify with python in-toto (in-toto-verify --gpg) or sign the layout with an ed25519, ecdsa or rsa key",
                    path.display()
                );
            }
            let public = load_public_key(path)?;
            SslibKey::from_public_key(&public)
                .with_context(|| format!("layout key {}", path.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let denied = |e: &dyn std::fmt::Display| {
        Denied::new(format!(
            "in-toto verification failed: layout {}: {e}",
            args.layout.display()
        ))
    };
    let metadata = Metadata::from_json(&bytes).map_err(|e| denied(&e))?;
    let workdir = std::env::current_dir().context("cannot read the current directory")?;
    let mut runner = WorkdirRunner {
        workdir,
        quiet: ctx.quiet,
    };
    let options = VerifyOptions::at_now(&args.link_dir).with_parameters(parameters);
    let chain = match in_toto_verify(&metadata, &layout_keys, &options, &mut runner) {
        Ok(chain) => chain,
        Err(e) if e.is_operational() => {
            return Err(anyhow::anyhow!(e).context(format!(
                "in-toto verification could not finish: layout {}",
                args.layout.display()
            )));
        }
        Err(e) => return Err(denied(&e).into()),
    };
    for warning in &chain.warnings {
        tracing::warn!("{warning}");
    }
    emit_chain(ctx, &args.layout, &chain, &options.parameters);
    Ok(Outcome::Done)
}

fn emit_chain(
    ctx: &Context,
    layout: &Path,
    chain: &VerifiedChain,
    parameters: &BTreeMap<String, String>,
) {
    let steps: Vec<_> = chain
        .steps
        .iter()
        .map(|s| json!({ "name": s.name, "threshold": s.threshold, "functionaries": s.functionaries }))
        .collect();
    ctx.emit(
        &json!({ "ok": true, "layout": layout, "layoutKeyIds": chain.layout_keyids,
                 "expires": chain.expires, "steps": steps, "inspections": chain.inspections,
                 "warnings": chain.warnings, "products": chain.summary.products,
                 "parameters": parameters }),
        || {
            let mut out = format!(
                "Verified in-toto layout {}\n  signed by  {}\n  expires    {}\n",
                layout.display(),
                chain.layout_keyids.join(", "),
                chain.expires
            );
            for s in &chain.steps {
                let short: Vec<String> = s
                    .functionaries
                    .iter()
                    .map(|k| k.chars().take(8).collect())
                    .collect();
                out += &format!(
                    "  step       {} ({} of threshold {}: {})\n",
                    s.name,
                    s.functionaries.len(),
                    s.threshold,
                    short.join(", ")
                );
            }
            for name in &chain.inspections {
                out += &format!("  inspection {name} passed\n");
            }
            out
        },
    );
}
