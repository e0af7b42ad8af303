//! The one function that loads `custody serve`'s reloadable configuration: start-up calls it,
//! and so does every reload (SIGHUP, `POST /api/v1/admin/reload`). It builds everything and
//! checks it (policies compiled and dry-run, keys parsed, the release config validated)
//! before the server swaps anything in.
//!
//! Reloadable: `--policy` (Rego and data), `--gate-key` files, `--gate-trusted-root`, and the
//! release config (environments, their chain, approval rules and policies; principals, their
//! tokens, roles, keys and identities). Files read only at start (TLS certificate and key,
//! the release and VSA signing keys, the write token file) are fingerprinted: a reload that
//! finds them changed says "needs restart".

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use custody_core::digest::Sha256Digest;
use custody_server::reload::{LoadedConfig, Loader, ReloadSetup, Summary};

use crate::cli_log::{ServeArgs, ServeGateArgs, ServeReleaseArgs};

/// What the loader reads: the flags that name reloadable files, and the restart-only files.
#[derive(Debug, Clone)]
pub struct Sources {
    gate: ServeGateArgs,
    release: ServeReleaseArgs,
    restart_only: Vec<(String, PathBuf)>,
}

impl Sources {
    pub fn of(args: &ServeArgs) -> Sources {
        let files = [
            ("--tls-cert", &args.tls_cert),
            ("--tls-key", &args.tls_key),
            ("--release-key", &args.release.release_key),
            ("--gate-signing-key", &args.gate.gate_signing_key),
            ("--write-token-file", &args.write_token_file),
        ];
        Sources {
            gate: args.gate.clone(),
            release: args.release.clone(),
            restart_only: files
                .into_iter()
                .filter_map(|(flag, path)| {
                    path.as_ref()
                        .map(|p| (format!("{flag} {}", p.display()), p.clone()))
                })
                .collect(),
        }
    }
}

/// Loads and checks the whole reloadable configuration.
pub fn load(sources: &Sources) -> anyhow::Result<LoadedConfig> {
    let gate = super::serve_gate::policy_gate(&sources.gate)?;
    let release = super::serve_release::rules(&sources.release, &sources.gate)?;
    let restart_only = sources
        .restart_only
        .iter()
        .map(|(setting, path)| {
            let fingerprint = match std::fs::read(path) {
                Ok(bytes) => Sha256Digest::of(&bytes).to_string(),
                Err(e) => format!("unreadable: {e}"),
            };
            (setting.clone(), fingerprint)
        })
        .collect::<BTreeMap<_, _>>();
    Ok(LoadedConfig {
        gate,
        release,
        restart_only,
    })
}

/// The server's reload machinery: `load` again, each error as one line.
pub fn setup(sources: Sources, initial: &LoadedConfig) -> ReloadSetup {
    let loader: Loader = Arc::new(move || load(&sources).map_err(|e| format!("{e:#}")));
    ReloadSetup {
        loader,
        initial: Summary::of(initial),
    }
}
