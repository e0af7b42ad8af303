//! Flags of the release commands: push, approve, promote, rollback, revoke, history, audit,
//! status.

use std::path::PathBuf;

use clap::Args;

/// Where the custody server is and who is calling.
#[derive(Debug, Args, Clone)]
pub struct ServerArgs {
    /// The custody server's URL
    #[arg(long, env = "CUSTODY_SERVER", value_name = "URL")]
    pub server: String,
    /// API token (a [[principal]]'s token in the server's release config)
    #[arg(
        long,
        env = "CUSTODY_TOKEN",
        hide_env_values = true,
        conflicts_with = "token_file"
    )]
    pub token: Option<String>,
    /// File holding the API token
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The artifact file
    pub artifact: PathBuf,
    /// Evidence bundles to upload with it [default: every <ARTIFACT>.*sigstore.json beside it]
    pub bundles: Vec<PathBuf>,
    /// The name to store it under [default: the file name]
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The artifact: sha256:<hex>, or a file to hash
    pub artifact: String,
    /// The environment the approval is for
    #[arg(long = "env", value_name = "ENV")]
    pub environment: String,
    /// Your private key (listed under your [[principal]] keys on the server)
    #[arg(long, env = "CUSTODY_KEY")]
    pub key: PathBuf,
    /// A note kept in the approval
    #[arg(long)]
    pub comment: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The artifact: sha256:<hex>, or a file to hash
    pub artifact: String,
    /// The environment to promote into
    #[arg(long, value_name = "ENV")]
    pub to: String,
    /// Idempotency key: retrying with the same id never promotes twice [default: random]
    #[arg(long)]
    pub request_id: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The environment to roll back
    pub environment: String,
    /// The release to go back to [default: the most recent earlier one that still passes]
    #[arg(long, value_name = "DIGEST")]
    pub to: Option<String>,
    /// Why (kept in the signed, logged rollback record)
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// What to revoke: key:KEYID, identity:SAN, builder:ID or digest:sha256:HEX
    pub target: String,
    /// Why (kept in the signed, logged revocation)
    #[arg(long)]
    pub reason: String,
    /// An admin's private key (listed under an admin [[principal]]'s keys on the server)
    #[arg(long, env = "CUSTODY_KEY")]
    pub key: PathBuf,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The artifact: sha256:<hex>, or a file to hash (not with --from)
    #[arg(required_unless_present = "from")]
    pub artifact: Option<String>,
    /// Verify a history saved earlier with --save, offline
    #[arg(long, value_name = "FILE", conflicts_with = "artifact")]
    pub from: Option<PathBuf>,
    /// Save the history (every record with its bundle) to FILE for offline verification
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// The server's release key (public, PEM): release records must verify under it
    #[arg(long, value_name = "PEM")]
    pub release_key: Option<PathBuf>,
    /// Keys that verify evidence (signatures, provenance, approvals); repeatable
    #[arg(long = "trusted-key", value_name = "PEM")]
    pub trusted_keys: Vec<PathBuf>,
    /// Sigstore trusted_root.json: log entries must verify against it
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
    /// The server (not with --from)
    #[arg(long, env = "CUSTODY_SERVER", value_name = "URL")]
    pub server: Option<String>,
    #[arg(long, env = "CUSTODY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The environment to audit
    pub environment: String,
    /// The server's release key (public, PEM)
    #[arg(long, value_name = "PEM")]
    pub release_key: PathBuf,
    /// Re-evaluate this policy locally over the evidence (full verification)
    #[arg(long, value_name = "DIR")]
    pub policy: Option<PathBuf>,
    #[command(flatten)]
    pub limit: crate::cli::PolicyTimeoutArg,
    /// Keys that verify evidence for --policy; repeatable
    #[arg(long = "trusted-key", value_name = "PEM")]
    pub trusted_keys: Vec<PathBuf>,
    /// Sigstore trusted_root.json: log entries must verify against it
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
    /// Also check what a deploy agent activated there: dir:PATH
    #[arg(long, value_name = "dir:PATH")]
    pub target: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Also list incidents, revocations and quarantined artifacts (needs the auditor role)
    #[arg(long)]
    pub incidents: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct KeyRotateArgs {
    /// The key being retired (private: it signs the introduction of its successor)
    #[arg(long, value_name = "KEY")]
    pub old: PathBuf,
    /// The successor (private: it re-signs evidence); its public key must already be listed
    /// under the principal's keys in the server's release config
    #[arg(long, value_name = "KEY")]
    pub new: PathBuf,
    /// How long both keys count; after it, nothing new signed by the old key counts
    #[arg(long, default_value = "0s", value_name = "DURATION")]
    pub overlap: String,
    /// Re-sign this artifact's evidence (DSSE attestations signed by the old key) with the new
    /// key, logged and stored beside the old; repeatable
    #[arg(long = "resign", value_name = "DIGEST|FILE")]
    pub resign: Vec<String>,
    /// Why (kept in the signed, logged rotation)
    #[arg(long, default_value = "scheduled rotation")]
    pub reason: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Reload the server's policies, keys, environments and principals from its files (as
    /// SIGHUP does): prints what changed; a bad configuration is refused (exit 1) and the old
    /// one stays in force
    Reload(AdminReloadArgs),
}

#[derive(Debug, Args)]
pub struct AdminReloadArgs {
    #[command(flatten)]
    pub server: ServerArgs,
}
