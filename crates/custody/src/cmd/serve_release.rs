//! `custody serve --release-config FILE`: loads the environments and principals, compiles
//! every environment's policy and opens the release store and the artifact store, all before
//! the server listens (a bad config exits 2). The config and the gates are what a reload
//! loads again ([`rules`], through `serve_reload::load`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use custody_policy::{Gate, Policy, TrustSet};
use custody_release::cas::Cas;
use custody_release::config::ReleaseConfig;
use custody_server::release::ReleaseSetup;

use super::key::load_signing_key;
use crate::cli_log::{ServeGateArgs, ServeReleaseArgs};

/// The release config and one gate per environment.
pub type ReleaseRules = (ReleaseConfig, BTreeMap<String, Arc<Gate>>);

/// Reads and checks the release config, loads every key it names and `--gate-key`, and
/// compiles (and dry-runs) every environment's policy.
pub fn rules(
    release: &ServeReleaseArgs,
    gate: &ServeGateArgs,
) -> anyhow::Result<Option<ReleaseRules>> {
    let Some(path) = &release.release_config else {
        return Ok(None);
    };
    let config = ReleaseConfig::load(path)?;
    if config.environments.is_empty() {
        anyhow::bail!(
            "release config {}: declares no [[environment]] (add one: name, policy)",
            path.display()
        );
    }
    let mut trusted_keys = super::serve_gate::gate_keys(gate)?;
    // Every principal's keys verify what that principal signs (approvals, revocations,
    // provenance); which key counts for what is the policy's business.
    for p in config.principals.iter().flat_map(|p| p.keys.iter()) {
        if !trusted_keys.iter().any(|k| k.key_id() == p.key_id()) {
            trusted_keys.push(p.clone());
        }
    }
    let (root, root_digest) = super::serve_gate::trusted_root(gate)?;
    let mut policies: BTreeMap<std::path::PathBuf, Arc<Gate>> = BTreeMap::new();
    let mut gates = BTreeMap::new();
    for env in &config.environments {
        let gate = match policies.get(&env.policy) {
            Some(g) => g.clone(),
            None => {
                let policy = Policy::load_limited(&env.policy, gate.limit.policy_timeout)
                    .with_context(|| {
                        format!(
                            "release config {}: environment {}: policy {}",
                            path.display(),
                            env.name,
                            env.policy.display()
                        )
                    })?;
                let gate = Arc::new(Gate {
                    policy,
                    trust: TrustSet {
                        keys: trusted_keys.clone(),
                        root: root.clone(),
                        root_digest,
                    },
                });
                policies.insert(env.policy.clone(), gate.clone());
                gate
            }
        };
        tracing::info!(environment = %env.name, policy = %gate.policy.digest(), "environment loaded");
        gates.insert(env.name.clone(), gate);
    }
    Ok(Some((config, gates)))
}

/// The release service from the loaded `rules`: the signing key, the release store and the
/// artifact store.
pub fn setup(
    args: &crate::cli_log::ServeArgs,
    data_dir: &Path,
    rules: Option<ReleaseRules>,
) -> anyhow::Result<Option<ReleaseSetup>> {
    let Some((config, gates)) = rules else {
        return Ok(None);
    };
    let key_path = args
        .release
        .release_key
        .as_ref()
        .or(args.gate.gate_signing_key.as_ref())
        .context("releases are signed: give --release-key KEY (or --gate-signing-key)")?;
    let key = load_signing_key(key_path)?;
    let store_url = match (&args.release.release_db, &args.database) {
        (Some(url), _) => url.clone(),
        (None, Some(db)) if db.starts_with("postgres") => db.clone(),
        _ => data_dir.join("release.db").to_string_lossy().into_owned(),
    };
    let store = custody_release::store::ReleaseDb::open(&store_url).with_context(|| {
        format!(
            "cannot open the release store {}",
            super::serve::redact(&store_url)
        )
    })?;
    store.initialize()?;
    let cas = Cas::open(&data_dir.join("artifacts"))?;
    Ok(Some(ReleaseSetup {
        service: custody_release::service::ReleaseSetup {
            config,
            store,
            cas,
            gates,
            key,
            verifier_id: args.gate.gate_verifier_id.clone(),
        },
        alert_webhook: args.release.alert_webhook.clone(),
    }))
}
