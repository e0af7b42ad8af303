//! `custody log witness serve | generate-key`: a C2SP tlog-witness.

use std::io::Write as _;
use std::sync::Arc;

use anyhow::Context as _;
use custody_core::note::{CosignatureSigner, NoteVerifier};
use custody_server::witness::Witness;
use serde_json::json;

use super::Context;
use super::log::vkey_text;
use crate::cli_log::WitnessServeArgs;
use crate::files;
use crate::outcome::Outcome;

pub fn serve(_ctx: &Context, args: WitnessServeArgs) -> anyhow::Result<Outcome> {
    let skey = String::from_utf8(files::read(&args.key, "witness key")?)
        .with_context(|| format!("witness key {}: not UTF-8", args.key.display()))?;
    let signer = CosignatureSigner::from_skey(skey.trim()).with_context(|| {
        format!(
            "witness key {}: not a witness signing key",
            args.key.display()
        )
    })?;
    let logs = args
        .log_key
        .iter()
        .map(|k| {
            NoteVerifier::from_vkey(&vkey_text(k)?)
                .with_context(|| format!("--log-key {k}: not a note verifier key"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let witness = Witness::open(signer, logs, args.state.clone())
        .with_context(|| format!("witness state {}", args.state.display()))?;
    let limits = super::serve::listen_limits(&args.limits);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let shutdown = super::serve::shutdown_signal();
        println!(
            "custody witness: listening on http://{}",
            listener.local_addr()?
        );
        let _ = std::io::stdout().flush();
        custody_server::witness::serve(listener, Arc::new(witness), limits, shutdown)
            .await
            .context("the witness server failed")?;
        Ok(Outcome::Done)
    })
}

pub fn generate_key(
    ctx: &Context,
    name: &str,
    output: &std::path::Path,
    force: bool,
) -> anyhow::Result<Outcome> {
    files::ensure_absent(output, force)?;
    let (signer, vkey) =
        CosignatureSigner::generate(name).with_context(|| format!("witness name {name:?}"))?;
    let skey = signer.to_skey();
    files::write_atomic(output, format!("{}\n", skey.as_str()).as_bytes(), true)?;
    let doc = json!({ "ok": true, "vkey": vkey, "key": output.display().to_string() });
    ctx.emit(&doc, || format!("{vkey}\n"));
    Ok(Outcome::Done)
}
