//! Configuration reloads without a restart (SIGHUP, `POST /api/v1/admin/reload`).
//!
//! The loader (`custody serve`'s, the same function it starts with) builds the whole new
//! configuration and checks it (every policy compiled and dry-run, every key parsed, the
//! release config validated) before anything changes. A refusal leaves the old configuration
//! in force and names the file, line and fix; a success swaps the gate's policy and trust set
//! and the release service's config, gates and principals (each one atomic swap: a request
//! sees the old or the new, never a mix) and drops every cached decision.
//!
//! Settings that only a restart applies (listen address, database, the log key, TLS and
//! signing key files) are compared by fingerprint and reported as `needs_restart`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use custody_policy::Gate;
use custody_release::config::ReleaseConfig;
use custody_release::service::ReleaseService;
use serde::Serialize;

use crate::gate::GateService;
use crate::metrics::Metrics;

/// A freshly loaded and checked configuration.
pub struct LoadedConfig {
    /// `--policy`'s gate (policy and trust set), if the server runs one.
    pub gate: Option<Gate>,
    /// The release config and one gate per environment, with `--release-config`.
    pub release: Option<(ReleaseConfig, BTreeMap<String, Arc<Gate>>)>,
    /// What only a restart applies: setting (e.g. `--tls-cert /etc/tls.pem`) → fingerprint.
    pub restart_only: BTreeMap<String, String>,
}

/// Builds and checks the configuration from the files; the error is the one line to show.
pub type Loader = Arc<dyn Fn() -> Result<LoadedConfig, String> + Send + Sync>;

/// What `serve` needs to reload: the loader and what it loaded at start.
pub struct ReloadSetup {
    pub loader: Loader,
    pub initial: Summary,
}

impl std::fmt::Debug for ReloadSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadSetup")
            .field("initial", &self.initial)
            .finish_non_exhaustive()
    }
}

/// What a reload changed.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadReport {
    /// Policy digests that changed: scope (`gate`, `environment prod`) → before/after.
    pub policies: BTreeMap<String, Change>,
    pub principals_added: Vec<String>,
    pub principals_removed: Vec<String>,
    /// Token, roles, groups, keys, identities or environments changed.
    pub principals_changed: Vec<String>,
    pub environments_added: Vec<String>,
    pub environments_removed: Vec<String>,
    /// Chain, stage, target, approval rule or policy directory changed.
    pub environments_changed: Vec<String>,
    pub trusted_keys_added: Vec<String>,
    pub trusted_keys_removed: Vec<String>,
    /// Settings that differ but only take effect after a restart.
    pub needs_restart: Vec<String>,
}

/// A value before and after (absent: `null`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub before: Option<String>,
    pub after: Option<String>,
}

/// What a configuration is, as far as a diff is concerned.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    policies: BTreeMap<String, String>,
    principals: BTreeMap<String, String>,
    environments: BTreeMap<String, String>,
    keys: BTreeSet<String>,
    restart_only: BTreeMap<String, String>,
}

impl Summary {
    pub fn of(config: &LoadedConfig) -> Summary {
        let mut s = Summary {
            restart_only: config.restart_only.clone(),
            ..Summary::default()
        };
        if let Some(gate) = &config.gate {
            s.policies
                .insert("gate".into(), gate.policy.digest().to_string());
            s.keys
                .extend(gate.trust.keys.iter().map(|k| k.key_id().to_string()));
        }
        if let Some((release, gates)) = &config.release {
            for (env, gate) in gates {
                s.policies.insert(
                    format!("environment {env}"),
                    gate.policy.digest().to_string(),
                );
                s.keys
                    .extend(gate.trust.keys.iter().map(|k| k.key_id().to_string()));
            }
            for e in &release.environments {
                s.environments.insert(e.name.clone(), format!("{e:?}"));
            }
            for p in &release.principals {
                let fingerprint = format!(
                    "{}|{:?}|{:?}|{:?}|{:?}|{:?}",
                    custody_core::encoding::hex_encode(&p.token_sha256),
                    p.roles,
                    p.groups,
                    p.key_ids,
                    p.identities,
                    p.environments
                );
                s.principals.insert(p.name.clone(), fingerprint);
            }
        }
        s
    }
}

fn keys_diff<V: PartialEq>(
    old: &BTreeMap<String, V>,
    new: &BTreeMap<String, V>,
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let added = new.keys().filter(|k| !old.contains_key(*k)).cloned();
    let removed = old.keys().filter(|k| !new.contains_key(*k)).cloned();
    let changed = new
        .iter()
        .filter(|(k, v)| old.get(*k).is_some_and(|o| o != *v))
        .map(|(k, _)| k.clone());
    (added.collect(), removed.collect(), changed.collect())
}

/// What changed from `old` to `new`.
pub fn diff(old: &Summary, new: &Summary) -> ReloadReport {
    let (principals_added, principals_removed, principals_changed) =
        keys_diff(&old.principals, &new.principals);
    let (environments_added, environments_removed, environments_changed) =
        keys_diff(&old.environments, &new.environments);
    let scopes: BTreeSet<&String> = old.policies.keys().chain(new.policies.keys()).collect();
    let policies = scopes
        .into_iter()
        .filter(|s| old.policies.get(*s) != new.policies.get(*s))
        .map(|s| {
            (
                s.clone(),
                Change {
                    before: old.policies.get(s).cloned(),
                    after: new.policies.get(s).cloned(),
                },
            )
        })
        .collect();
    let settings: BTreeSet<&String> = old
        .restart_only
        .keys()
        .chain(new.restart_only.keys())
        .collect();
    ReloadReport {
        policies,
        principals_added,
        principals_removed,
        principals_changed,
        environments_added,
        environments_removed,
        environments_changed,
        trusted_keys_added: new.keys.difference(&old.keys).cloned().collect(),
        trusted_keys_removed: old.keys.difference(&new.keys).cloned().collect(),
        needs_restart: settings
            .into_iter()
            .filter(|s| old.restart_only.get(*s) != new.restart_only.get(*s))
            .map(|s| format!("{s} changed: restart custody serve to apply it"))
            .collect(),
    }
}

/// Why a reload was refused (the old configuration stays in force).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration reload refused, the old configuration stays in force: {0}")]
pub struct Refused(pub String);

/// Reloads the server's configuration: one at a time, all or nothing.
pub(crate) struct Reloader {
    loader: Loader,
    gate: Option<Arc<GateService>>,
    release: Option<Arc<ReleaseService>>,
    metrics: Arc<Metrics>,
    /// Tells the other replicas on a shared store (the evidence change feed).
    invalidator: Option<crate::gate::Invalidator>,
    /// What is in force; also serializes reloads.
    current: tokio::sync::Mutex<Summary>,
}

impl Reloader {
    pub(crate) fn new(
        loader: Loader,
        initial: Summary,
        gate: Option<Arc<GateService>>,
        release: Option<Arc<ReleaseService>>,
        metrics: Arc<Metrics>,
        invalidator: Option<crate::gate::Invalidator>,
    ) -> Reloader {
        Reloader {
            loader,
            gate,
            release,
            metrics,
            invalidator,
            current: tokio::sync::Mutex::new(initial),
        }
    }

    /// Loads, checks and swaps in the configuration from the files; `trigger` names what
    /// asked (for the log).
    pub(crate) async fn reload(&self, trigger: &str) -> Result<ReloadReport, Refused> {
        let mut current = self.current.lock().await;
        let result = self.load_and_swap(&current).await;
        match &result {
            Ok((report, summary)) => {
                *current = summary.clone();
                self.metrics.config_reload(true);
                tracing::info!(trigger, changes = ?report, "configuration reloaded");
                for setting in &report.needs_restart {
                    tracing::warn!(trigger, "{setting}");
                }
            }
            Err(e) => {
                self.metrics.config_reload(false);
                tracing::error!(trigger, error = %e, "configuration reload refused");
            }
        }
        result.map(|(report, _)| report)
    }

    async fn load_and_swap(&self, current: &Summary) -> Result<(ReloadReport, Summary), Refused> {
        let loader = self.loader.clone();
        // Compiling policies is CPU work: off the async threads.
        let loaded = tokio::task::spawn_blocking(move || loader())
            .await
            .map_err(|e| Refused(format!("the loader failed: {e}")))?
            .map_err(Refused)?;
        if loaded.gate.is_some() != self.gate.is_some()
            || loaded.release.is_some() != self.release.is_some()
        {
            return Err(Refused(
                "the configuration adds or removes the policy gate or releases: restart custody serve for that".into(),
            ));
        }
        let summary = Summary::of(&loaded);
        let report = diff(current, &summary);
        if let (Some(service), Some(gate)) = (&self.gate, loaded.gate) {
            service.replace(gate);
        }
        if let (Some(service), Some((config, gates))) = (&self.release, loaded.release) {
            service.replace(config, gates);
            // Namespaces and admit_previous may have changed: admission's release states go.
            service.forget_release_states();
            // Successor keys of rotations made on other replicas, if any.
            if let Err(e) = service.refresh_retirements().await {
                tracing::warn!(error = %e, "refreshing key rotations after a reload failed");
            }
        }
        // Every decision may have changed: this replica's caches are dropped by the swap; the
        // other replicas on a shared store drop theirs (each reloads its own files on its own
        // SIGHUP).
        if let Some(invalidator) = &self.invalidator {
            invalidator.publish_in_background(custody_evidence::Change::All);
        }
        Ok((report, summary))
    }
}

/// Reloads on every SIGHUP until the process ends.
#[cfg(unix)]
pub(crate) fn on_sighup(reloader: Arc<Reloader>) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            let _ = reloader.reload("SIGHUP").await;
        }
    });
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn on_sighup(_reloader: Arc<Reloader>) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(policy: &str, principals: &[(&str, &str)], keys: &[&str]) -> Summary {
        Summary {
            policies: BTreeMap::from([("environment prod".to_owned(), policy.to_owned())]),
            principals: principals
                .iter()
                .map(|(n, f)| ((*n).to_owned(), (*f).to_owned()))
                .collect(),
            environments: BTreeMap::from([("prod".to_owned(), "chain".to_owned())]),
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            restart_only: BTreeMap::from([("--tls-cert c.pem".to_owned(), "d1".to_owned())]),
        }
    }

    #[test]
    fn an_unchanged_configuration_reports_nothing() {
        let s = summary("sha256:a", &[("alice", "x")], &["k1"]);
        assert_eq!(diff(&s, &s), ReloadReport::default());
    }

    #[test]
    fn the_diff_names_policies_principals_keys_and_restart_only_settings() {
        let old = summary("sha256:a", &[("alice", "x"), ("bob", "y")], &["k1", "k2"]);
        let mut new = summary(
            "sha256:b",
            &[("alice", "x2"), ("carol", "z")],
            &["k2", "k3"],
        );
        new.restart_only
            .insert("--tls-cert c.pem".to_owned(), "d2".to_owned());
        let r = diff(&old, &new);
        assert_eq!(
            r.policies.get("environment prod"),
            Some(&Change {
                before: Some("sha256:a".into()),
                after: Some("sha256:b".into())
            })
        );
        assert_eq!(r.principals_added, ["carol"]);
        assert_eq!(r.principals_removed, ["bob"]);
        assert_eq!(r.principals_changed, ["alice"]);
        assert_eq!(r.trusted_keys_added, ["k3"]);
        assert_eq!(r.trusted_keys_removed, ["k1"]);
        assert_eq!(r.needs_restart.len(), 1);
        assert!(r.needs_restart[0].starts_with("--tls-cert c.pem changed"));
        assert!(r.environments_changed.is_empty());
    }
}
