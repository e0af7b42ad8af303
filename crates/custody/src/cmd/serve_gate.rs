//! `custody serve --policy …` and `--tls-cert/--tls-key`: everything is loaded and checked
//! before the server listens, so a policy that does not compile or a bad key file exits 2.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use custody_core::digest::Sha256Digest;
use custody_evidence::{EvidenceDb, EvidenceStore};
use custody_policy::{Gate, Policy, TrustSet};
use custody_server::gate::{GateConfig, VsaSigner};

use super::key::{load_public_key, load_signing_key};
use crate::cli_log::{ServeArgs, ServeGateArgs};

/// The evidence store's file in the data directory.
pub const STORE_FILE: &str = "gate.db";

/// The rustls configuration, when TLS was asked for.
pub fn tls(args: &ServeArgs) -> anyhow::Result<Option<Arc<custody_server::tls::ServerConfig>>> {
    match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Ok(Some(custody_server::tls::server_config(cert, key)?)),
        (None, None) => Ok(None),
        _ => anyhow::bail!("TLS needs both --tls-cert and --tls-key"),
    }
}

/// Where the evidence store lives: `--evidence-db`, else the `--database` PostgreSQL (so
/// every replica on it shares evidence, decisions and verification results), else
/// `gate.db` in the data directory.
pub fn evidence_db(args: &ServeArgs, data_dir: &Path) -> anyhow::Result<EvidenceDb> {
    if let Some(db) = &args.evidence_db {
        return EvidenceDb::parse(db).context("--evidence-db");
    }
    if let Some(database) = &args.database
        && let Ok(db @ EvidenceDb::Postgres(_)) = EvidenceDb::parse(database)
    {
        return Ok(db);
    }
    Ok(EvidenceDb::Sqlite(data_dir.join(STORE_FILE)))
}

/// Opens the evidence store (and decision log); see [`evidence_db`].
pub fn store(args: &ServeArgs, data_dir: &Path) -> anyhow::Result<Arc<dyn EvidenceStore>> {
    let db = evidence_db(args, data_dir)?;
    if let EvidenceDb::Sqlite(path) = &db
        && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    }
    let store = db
        .connect()
        .with_context(|| format!("cannot open the evidence store {db}"))?;
    tracing::info!(evidence_db = %db, "evidence store open");
    Ok(store)
}

/// Compiles the policy and loads the trust set and the VSA key, when `--policy` is given.
pub fn gate(args: &ServeGateArgs) -> anyhow::Result<Option<GateConfig>> {
    let Some(dir) = &args.policy else {
        return Ok(None);
    };
    let policy = Policy::load_limited(dir, args.limit.policy_timeout)?;
    let keys = args
        .gate_keys
        .iter()
        .map(|p| load_public_key(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (root, root_digest) = match &args.gate_trusted_root {
        Some(path) => {
            let root = super::trust_root::load(path)?;
            let bytes = crate::files::read(path, "trusted root")?;
            (Some(root), Some(Sha256Digest::of(&bytes)))
        }
        None => (None, None),
    };
    if keys.is_empty() && root.is_none() {
        tracing::warn!(
            "the gate trusts no key and no trusted root (--gate-key, --gate-trusted-root): no evidence can verify"
        );
    }
    let vsa = match &args.gate_signing_key {
        Some(path) => Some(VsaSigner {
            key: load_signing_key(path)?,
            verifier_id: args.gate_verifier_id.clone(),
            policy_uri: policy_uri(dir),
        }),
        None => None,
    };
    tracing::info!(policy = %policy.digest(), dir = %dir.display(), keys = keys.len(), time_limit = %args.limit.policy_timeout, "policy gate loaded");
    Ok(Some(GateConfig {
        gate: Gate {
            policy,
            trust: TrustSet {
                keys,
                root,
                root_digest,
            },
        },
        environment: args.gate_env.clone(),
        stage: args.gate_stage.clone(),
        cache_ttl: Duration::from_secs(args.gate_cache_ttl),
        verified_cache: args.gate_verified_cache,
        vsa,
        decision_retention: (!args.decision_retention.is_zero()).then_some(args.decision_retention),
    }))
}

/// `file://` + the policy directory's absolute path.
fn policy_uri(dir: &Path) -> String {
    let abs = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    format!("file://{}", abs.display())
}
