//! Flags of the log commands: `serve`, `log ...`, `trust-root export`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed)
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// Data directory: log key, SQLite database [env CUSTODY_HOME, else the XDG data dir]
    #[arg(long, env = "CUSTODY_HOME")]
    pub data_dir: Option<PathBuf>,
    /// Keep the log in PostgreSQL instead of SQLite (postgres://...)
    #[arg(long, env = "CUSTODY_DATABASE", value_name = "postgres://...")]
    pub database: Option<String>,
    /// Where the evidence store, the gate's decision log and its shared verification
    /// results live: postgres://... (shared by every replica on it) or a SQLite file (one
    /// replica) [default: the --database PostgreSQL if given, else DATA_DIR/gate.db]
    #[arg(long, env = "CUSTODY_EVIDENCE_DB", value_name = "URL|PATH")]
    pub evidence_db: Option<String>,
    /// The log's origin (checkpoint first line and key name): its public URL without scheme.
    /// Fixed at first start [default: the listen address]
    #[arg(long)]
    pub origin: Option<String>,
    /// The URL clients use, written as baseUrl in trusted_root.json [default: http://ORIGIN]
    #[arg(long)]
    pub base_url: Option<String>,
    /// File holding the bearer token writes must present [or env CUSTODY_WRITE_TOKEN]
    #[arg(long)]
    pub write_token_file: Option<PathBuf>,
    /// Let anyone who reaches the port write entries. Only on a loopback address.
    #[arg(long)]
    pub insecure_allow_unauthenticated_writes: bool,
    /// Largest entry body logged, in bytes (at most 65535)
    #[arg(long, default_value_t = 65_535)]
    pub max_entry_bytes: usize,
    /// Largest write request body read, in bytes
    #[arg(long, default_value_t = 1 << 20)]
    pub max_request_bytes: usize,
    /// A log batch closes when it holds this many entries (one commit and one signed
    /// checkpoint per batch)
    #[arg(long, value_name = "N", env = "CUSTODY_BATCH_MAX_ENTRIES", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub batch_max_entries: u32,
    /// ...or when its oldest entry has waited this many milliseconds (on an idle log, how long
    /// a write waits before its batch is committed; under load, batches close on their own)
    #[arg(long, value_name = "MS", env = "CUSTODY_BATCH_MAX_DELAY_MS", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub batch_max_delay_ms: u32,
    /// A witness to cosign each new checkpoint: its URL prefix and cosignature vkey (repeatable)
    #[arg(long, value_name = "URL=VKEY")]
    pub witness: Vec<String>,
    /// Serve over TLS: the certificate chain (PEM, leaf first). Needs --tls-key
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The TLS private key (PEM)
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    #[command(flatten)]
    pub gate: ServeGateArgs,
    #[command(flatten)]
    pub release: ServeReleaseArgs,
    /// Largest artifact accepted by PUT /api/v1/artifacts, in bytes
    #[arg(long, default_value_t = 256 << 20)]
    pub max_artifact_bytes: usize,
    /// Threads running HTTP, TLS and cached answers [default: one per core]. Signature
    /// checks and uncached decisions run on their own threads either way; fewer workers than
    /// cores shortens the latency tail when other busy processes share the cores
    /// (docs/PERFORMANCE.md, policy gate, session 5)
    #[arg(long, value_name = "N", env = "CUSTODY_WORKER_THREADS",
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub worker_threads: Option<u16>,
    #[command(flatten)]
    pub limits: ListenLimitArgs,
}

/// Timeouts and the connection limit of an HTTP listener (docs/operations.md, "Timeouts and
/// connection limits").
#[derive(Debug, Args, Clone)]
pub struct ListenLimitArgs {
    /// Seconds a client has to send a whole request header, from its first byte (from accept
    /// on a new connection); also the TLS handshake's limit
    #[arg(long, value_name = "SECONDS", env = "CUSTODY_HEADER_TIMEOUT", default_value = "10",
          value_parser = timeout_seconds)]
    pub header_timeout: std::time::Duration,
    /// Seconds a keep-alive connection may wait for its next request before it is closed
    #[arg(long, value_name = "SECONDS", env = "CUSTODY_IDLE_TIMEOUT", default_value = "60",
          value_parser = timeout_seconds)]
    pub idle_timeout: std::time::Duration,
    /// Seconds a request body may go without a byte while its handler reads it (and an
    /// answer may go unread by the client) before the connection is closed
    #[arg(long, value_name = "SECONDS", env = "CUSTODY_BODY_TIMEOUT", default_value = "30",
          value_parser = timeout_seconds)]
    pub body_timeout: std::time::Duration,
    /// Open connections; at the limit each new connection closes the oldest one that is idle
    /// or still sending its header [default: the open-files limit (raised to its hard limit
    /// at start) less an eighth, at least 256, for databases and files]
    #[arg(long, value_name = "N", env = "CUSTODY_MAX_CONNECTIONS",
          value_parser = clap::value_parser!(u32).range(1..=16_777_216))]
    pub max_connections: Option<u32>,
}

impl ListenLimitArgs {
    /// The limits, the connection limit defaulting from the open-files limit `nofile`.
    pub fn limits(&self, nofile: u64) -> custody_server::listener::ListenerLimits {
        let max_connections = match self.max_connections {
            Some(n) => n as usize,
            None => custody_server::listener::default_max_connections(nofile),
        };
        custody_server::listener::ListenerLimits {
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            body_timeout: self.body_timeout,
            max_connections,
        }
    }
}

/// A timeout in seconds (decimals allowed), from 0.1 to 3600.
fn timeout_seconds(text: &str) -> Result<std::time::Duration, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds (e.g. 10 or 0.5)"))?;
    if !(0.1..=3600.0).contains(&seconds) {
        return Err(format!("{text} seconds is out of range: give 0.1 to 3600"));
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
}

/// A retention: `30` (days), `30d`, `12h`, `90m`, `3600s`; `0` keeps forever (zero).
fn retention(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "d"),
    };
    let n: u64 = number.parse().map_err(|_| {
        format!("{text:?} is not a retention: give days (30) or a number with d, h, m or s (12h)")
    })?;
    let unit_seconds = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (use d, h, m or s, e.g. 30d or 12h)"
            ));
        }
    };
    n.checked_mul(unit_seconds)
        .filter(|s| *s <= 100 * 365 * 86_400)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long: at most 100 years (0 keeps forever)"))
}

/// `custody serve --release-config`: environments, promotion, approvals, revocation
/// (docs/releases.md).
#[derive(Debug, Args, Default)]
pub struct ServeReleaseArgs {
    /// Manage releases: environments and principals (API tokens, roles, keys) from this TOML
    /// file; each environment's policy is compiled at start
    #[arg(long, value_name = "FILE", env = "CUSTODY_RELEASE_CONFIG")]
    pub release_config: Option<PathBuf>,
    /// Where release records live [default: the --database PostgreSQL if given, else
    /// DATA_DIR/release.db]
    #[arg(long, value_name = "URL|PATH", requires = "release_config")]
    pub release_db: Option<String>,
    /// Private key that signs release records, upload records and VSAs [default:
    /// --gate-signing-key]
    #[arg(long, value_name = "KEY", requires = "release_config")]
    pub release_key: Option<PathBuf>,
    /// POST every alert (revocation, incident, rollback) as JSON to this URL
    #[arg(long, value_name = "URL", requires = "release_config")]
    pub alert_webhook: Option<String>,
}

/// `custody serve --policy`: the policy gate and admission webhook (docs/admission.md).
#[derive(Debug, Args, Default)]
pub struct ServeGateArgs {
    /// Run the policy gate with this policy (a directory of Rego, compiled at start): serves
    /// /api/v1/gate/evaluate and the Kubernetes admission webhook /api/v1/admission
    #[arg(long, value_name = "DIR")]
    pub policy: Option<PathBuf>,
    /// A public key (PEM) whose signatures count as evidence (for the gate and for
    /// releases); repeat for several
    #[arg(long = "gate-key", value_name = "PEM")]
    pub gate_keys: Vec<PathBuf>,
    /// Sigstore trusted_root.json for certificate bundles and log entries in evidence (for
    /// the gate and for releases)
    #[arg(long, value_name = "FILE")]
    pub gate_trusted_root: Option<PathBuf>,
    /// The environment admission decisions are for (input.environment.name)
    #[arg(long, value_name = "NAME", requires = "policy")]
    pub gate_env: Option<String>,
    /// Its release stage (input.environment.stage)
    #[arg(long, value_name = "STAGE", requires = "policy")]
    pub gate_stage: Option<String>,
    /// Seconds a decision is reused (0 turns the cache off)
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub gate_cache_ttl: u64,
    /// Verification results kept for reuse, by bundle bytes, artifact and trust set (0 turns
    /// it off: every decision verifies every bundle)
    #[arg(long, value_name = "ENTRIES", default_value_t = 4096)]
    pub gate_verified_cache: usize,
    /// How long the decision log keeps a decision: days, or a number with the unit d, h, m
    /// or s (0 keeps them forever). Older rows are deleted in small batches every minute
    #[arg(long, value_name = "AGE", env = "CUSTODY_DECISION_RETENTION", default_value = "30d",
          value_parser = retention)]
    pub decision_retention: std::time::Duration,
    /// Private key that signs a SLSA VSA for every allowed evaluate verdict
    #[arg(long, value_name = "KEY", requires = "policy")]
    pub gate_signing_key: Option<PathBuf>,
    /// The verifier id written into VSAs
    #[arg(long, value_name = "URI", default_value = custody_policy::vsa::DEFAULT_VERIFIER_ID)]
    pub gate_verifier_id: String,
    #[command(flatten)]
    pub limit: crate::cli::PolicyTimeoutArg,
}

#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Fetch the checkpoint and every tile, recompute the whole tree, compare with the root
    Verify(LogVerifyArgs),
    /// Verify a checkpoint file: the log's signature and k witness cosignatures
    VerifyCheckpoint(VerifyCheckpointArgs),
    /// Follow a log: alert (JSON lines on stderr) on forks and on entries by watched keys
    Monitor(MonitorArgs),
    /// Run or set up a C2SP tlog-witness
    #[command(subcommand)]
    Witness(WitnessCommand),
}

#[derive(Debug, Args)]
pub struct LogKeyArgs {
    /// The log's checkpoint key: a vkey (name+id+key) or a file holding one
    #[arg(long, required_unless_present = "trust_root")]
    pub log_key: Option<String>,
    /// Take the log's key from this trusted_root.json instead
    #[arg(long, conflicts_with = "log_key")]
    pub trust_root: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct WitnessPolicyArgs {
    /// A witness cosignature vkey (repeatable)
    #[arg(long = "witness", value_name = "VKEY")]
    pub witnesses: Vec<String>,
    /// How many distinct listed witnesses must have cosigned
    #[arg(long, default_value_t = 0)]
    pub min_witnesses: usize,
}

#[derive(Debug, Args)]
pub struct LogVerifyArgs {
    /// The log's URL prefix (where /checkpoint and /tile/ are)
    pub url: String,
    #[command(flatten)]
    pub key: LogKeyArgs,
    #[command(flatten)]
    pub witnesses: WitnessPolicyArgs,
}

#[derive(Debug, Args)]
pub struct VerifyCheckpointArgs {
    /// The checkpoint note file
    pub file: PathBuf,
    #[command(flatten)]
    pub key: LogKeyArgs,
    #[command(flatten)]
    pub witnesses: WitnessPolicyArgs,
}

#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// The log's URL prefix
    pub url: String,
    #[command(flatten)]
    pub key: LogKeyArgs,
    /// Alert on entries signed by this public key (PEM; repeatable)
    #[arg(long, value_name = "PEM")]
    pub watch_key: Vec<PathBuf>,
    /// Never alert on entries signed by this public key (PEM; repeatable)
    #[arg(long, value_name = "PEM")]
    pub allow_key: Vec<PathBuf>,
    /// Alert on entries whose certificate names this identity (its subject alternative name:
    /// email or URI, exact; repeatable)
    #[arg(long, value_name = "SAN")]
    pub watch_identity: Vec<String>,
    /// Never alert on entries whose certificate names this identity (repeatable)
    #[arg(long, value_name = "SAN")]
    pub allow_identity: Vec<String>,
    /// The last verified tree, kept between runs [default: none: start from the empty tree]
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Also POST each alert (JSON) to this URL
    #[arg(long)]
    pub webhook: Option<String>,
    /// Check once and exit (1 if there was an alert)
    #[arg(long)]
    pub once: bool,
    /// Seconds between checks
    #[arg(long, default_value_t = 10)]
    pub interval: u64,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Submit N pre-signed hashedrekord entries with C concurrent clients, then read tiles
    Log(BenchLogArgs),
}

#[derive(Debug, Args)]
pub struct BenchLogArgs {
    /// The log's URL prefix (http://HOST:PORT[/PREFIX])
    pub url: String,
    /// Entries to submit (each a distinct artifact, signed before the clock starts)
    #[arg(long, default_value_t = 100_000)]
    pub entries: usize,
    /// Concurrent keep-alive connections, one request in flight each
    #[arg(long, default_value_t = 2000)]
    pub concurrency: usize,
    /// File holding the log's bearer token [default: $CUSTODY_LOG_TOKEN]
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// GETs per read phase (checkpoint, tiles, entry bundles); 0 skips reading
    #[arg(long, default_value_t = 100_000)]
    pub reads: usize,
    /// Concurrent keep-alive connections for reading
    #[arg(long, default_value_t = 64)]
    pub read_concurrency: usize,
}

#[derive(Debug, Subcommand)]
pub enum WitnessCommand {
    /// Serve C2SP tlog-witness `POST /add-checkpoint`
    Serve(WitnessServeArgs),
    /// Generate a witness key: writes the secret key file, prints the vkey
    GenerateKey {
        /// The witness's name (e.g. witness.example.com)
        name: String,
        /// Where to write the secret key (mode 0600)
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Replace an existing file
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Args)]
pub struct WitnessServeArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed)
    #[arg(long, default_value = "127.0.0.1:3001")]
    pub listen: SocketAddr,
    /// The witness's secret key file (PRIVATE+KEY+name+id+... with type 0x04)
    #[arg(long)]
    pub key: PathBuf,
    /// A log to witness: its checkpoint vkey, or a file holding it (repeatable)
    #[arg(long, required = true)]
    pub log_key: Vec<String>,
    /// The witness state: the last tree cosigned per log (written atomically)
    #[arg(long)]
    pub state: PathBuf,
    #[command(flatten)]
    pub limits: ListenLimitArgs,
}

#[derive(Debug, Args)]
pub struct TrustRootExportArgs {
    /// Ask a running custody server for its trust root
    #[arg(
        long,
        required_unless_present = "data_dir",
        conflicts_with = "data_dir"
    )]
    pub server: Option<String>,
    /// Read the log's identity from its data directory
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// baseUrl to write [default: the --server URL, or http://ORIGIN]
    #[arg(long)]
    pub base_url: Option<String>,
    /// Where to write [default: stdout] (`--output` is the global output format)
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}
