//! The command line: every flag, its environment variable and its help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// custody keeps the chain of custody of software artifacts: it signs them the moment they are
/// produced, in the formats the Sigstore and in-toto ecosystem verifies, and refuses anything
/// that does not verify.
///
/// Exit status: 0 verified or done, 1 verification failed or denied, 2 usage or operational error.
#[derive(Debug, Parser)]
#[command(
    name = "custody",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Output format [default: human, or `output` from the config file]
    #[arg(long, short = 'o', global = true, env = "CUSTODY_OUTPUT", value_enum)]
    pub output: Option<OutputFormat>,
    /// Config file [default: $XDG_CONFIG_HOME/custody/config.toml when it exists]
    #[arg(long, global = true, env = "CUSTODY_CONFIG")]
    pub config: Option<PathBuf>,
    /// More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// Sentences for people
    Human,
    /// One JSON document on stdout
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, import and inspect signing keys
    #[command(subcommand)]
    Key(KeyCommand),
    /// Sign a file (or a digest): writes FILE.sigstore.json, a Sigstore bundle v0.3
    Sign(SignArgs),
    /// Sign an in-toto statement about a file: writes a Sigstore bundle holding a DSSE envelope
    Attest(AttestArgs),
    /// Verify a file (or digest) against a Sigstore bundle
    Verify(Box<VerifyArgs>),
    /// Print the sha256 digest of files (streamed, any size): the names custody uses for artifacts
    Digest {
        /// Files to hash
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run a build; if it succeeds, sign SLSA provenance for the artifacts it produced
    ///
    /// Writes NAME.intoto.sigstore.json beside each artifact (one statement naming every
    /// artifact, signed once), or one bundle with --bundle. If the command fails nothing is
    /// signed and custody exits with the command's status.
    Build(BuildArgs),
    /// Re-run the build a provenance bundle records (same commit, same command) and attest
    /// whether the subjects' digests match
    Rebuild(RebuildArgs),
    /// Pinning findings: unpinned base images and actions, `latest` tags, manifests without a
    /// lockfile, lockfile entries without integrity hashes
    Lint(LintArgs),
    /// Inspect Sigstore trusted_root.json files, or export one for a custody log
    #[command(name = "trust-root", subcommand)]
    TrustRoot(TrustRootCommand),
    /// Administer a running custody server (reload its configuration)
    #[command(subcommand)]
    Admin(crate::cli_release::AdminCommand),
    /// Run the transparency log server (C2SP tlog-tiles read API, Rekor v2 write API)
    Serve(Box<crate::cli_log::ServeArgs>),
    /// Follow, audit and witness transparency logs
    #[command(subcommand)]
    Log(crate::cli_log::LogCommand),
    /// in-toto layouts and links (python in-toto 3.x compatible)
    #[command(subcommand)]
    Intoto(IntotoCommand),
    /// Load generators (advanced): measure a running log
    #[command(subcommand)]
    Bench(crate::cli_log::BenchCommand),
    /// Policy as code for the gate: Rego (v1) policies over verified evidence
    ///
    /// A policy is a directory of .rego files (package custody.gate, rule `deny`) and data.json
    /// files, identified by its digest. `custody verify FILE --policy DIR` applies it.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Upload an artifact and its evidence bundles to a custody server's store (logged)
    Push(crate::cli_release::PushArgs),
    /// Sign and send an approval of an artifact for an environment
    Approve(crate::cli_release::ApproveArgs),
    /// Promote an artifact (by digest, never rebuilt) into an environment: the server checks it
    /// passed the previous environment and the environment's policy, then signs and logs it
    Promote(crate::cli_release::PromoteArgs),
    /// Roll an environment back to an earlier release (explicit, signed and logged)
    Rollback(crate::cli_release::RollbackArgs),
    /// Revoke a key, identity, builder or digest: the server quarantines what it touched and
    /// rolls affected environments back
    Revoke(crate::cli_release::RevokeArgs),
    /// Each environment's current release (and, with --incidents, incidents and quarantine)
    Status(crate::cli_release::StatusArgs),
    /// The chain of custody of one artifact, each record verified (offline with --from)
    History(crate::cli_release::HistoryArgs),
    /// Prove that what an environment runs verifies: release record, VSA, artifact bytes,
    /// and (with --policy) the policy over all evidence
    Audit(crate::cli_release::AuditArgs),
    /// The deploy agent: activate an environment's current release from a custody server, if
    /// it verifies
    ///
    /// Fetches the environment's current release, and deploys it only if its signed release
    /// statement verifies with --release-key (and, with --trusted-root, its log entry), names
    /// this environment, seq, kind and digest, carries a valid VSA when it has one, is not older
    /// than what this agent deployed (a return to an older digest must be a signed rollback),
    /// and the downloaded artifact hashes to its digest. Then the target activates it and the
    /// agent reports the deployment to the server. See docs/deploy.md.
    ///
    /// Exit status: 0 deployed or no change, 1 refused (did not verify, stale, equivocating),
    /// 2 operational error (server unreachable, activation failed, bad flags). With --watch it
    /// runs until SIGINT or SIGTERM and exits 0; a refused release does not stop it.
    Deploy(Box<DeployArgs>),
}

/// `custody deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The environment to deploy, as the server names it (e.g. prod)
    #[arg(value_name = "ENV")]
    pub environment: String,
    /// The custody server: http://HOST:PORT or https://HOST
    #[arg(long, env = "CUSTODY_SERVER", value_name = "URL")]
    pub server: String,
    /// Where releases become active: dir:PATH (PATH/releases/<hex>/ and the symlink
    /// PATH/current, switched atomically) or exec:COMMAND (run with sh -c; the artifact's path
    /// is in $CUSTODY_ARTIFACT)
    #[arg(long, value_name = "dir:PATH|exec:COMMAND")]
    pub target: String,
    /// The server's release key (PEM public key): releases must be signed with it. Repeat while
    /// the server's key is being rotated
    #[arg(long = "release-key", value_name = "PEM", required = true)]
    pub release_keys: Vec<PathBuf>,
    /// The trust root of the server's transparency log (GET /api/v1/trusted_root.json): every
    /// release must carry a log entry whose inclusion proof and checkpoint verify against it
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
    /// Keep polling, deploying each change, until SIGINT or SIGTERM
    #[arg(long)]
    pub watch: bool,
    /// With --watch: time between polls (30s, 5m, ...)
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "2s",
        requires = "watch"
    )]
    pub interval: String,
    /// The agent's state directory (state.json: what it deployed; downloads; exec: artifacts)
    /// [default: $XDG_STATE_HOME/custody/deploy/ENV]. One agent per directory
    #[arg(long, value_name = "DIR", env = "CUSTODY_DEPLOY_STATE")]
    pub state: Option<PathBuf>,
    /// Bearer token for the server
    #[arg(
        long,
        env = "CUSTODY_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// The name the agent reports deployments as [default: HOSTNAME TARGET]
    #[arg(long, value_name = "NAME")]
    pub agent_name: Option<String>,
    /// The verifier id a release's VSA must name
    #[arg(long, value_name = "URI", default_value = custody_policy::vsa::DEFAULT_VERIFIER_ID)]
    pub vsa_verifier_id: String,
    /// How long before the release a release's VSA may have been issued (30m, 24h, 7d)
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    pub vsa_max_age: String,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Write a starter policy: gate.rego (the built-in library's checks), data.json (its
    /// settings) and gate_test.rego
    Init(PolicyInitArgs),
    /// Run the policy's `test_*` rules, like `opa test` (exit 1 if any fails)
    Test(PolicyTestArgs),
    /// Evaluate the policy over one input document (see docs/policy-input.md)
    Eval(PolicyEvalArgs),
    /// Print the policy's digest (what verdicts and VSAs name)
    Digest(PolicyDirArgs),
}

#[derive(Debug, Args)]
pub struct PolicyDirArgs {
    /// The policy directory
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct PolicyInitArgs {
    /// Directory to create (or fill)
    #[arg(value_name = "DIR", default_value = "policy")]
    pub dir: PathBuf,
    /// Hex key ids (custody key inspect) trusted to sign; repeat for several
    #[arg(long = "trust-key-id", value_name = "HEX")]
    pub key_ids: Vec<String>,
    /// Replace existing files
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct PolicyTestArgs {
    /// The policy directory (omit with --builtin)
    #[arg(value_name = "DIR", required_unless_present = "builtin")]
    pub dir: Option<PathBuf>,
    /// Run the built-in library's own tests (data.custody.lib)
    #[arg(long)]
    pub builtin: bool,
    /// Only tests whose name (data.<package>.<rule>) contains this
    #[arg(long, value_name = "TEXT")]
    pub run: Option<String>,
    #[command(flatten)]
    pub limit: PolicyTimeoutArg,
}

#[derive(Debug, Args)]
pub struct PolicyEvalArgs {
    /// The policy directory
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The input document (JSON; `-` reads stdin)
    #[arg(long, short = 'i', value_name = "FILE")]
    pub input: PathBuf,
    /// Also write the findings as SARIF 2.1.0 to FILE (`-` for stdout)
    #[arg(long, value_name = "FILE")]
    pub sarif: Option<PathBuf>,
    #[command(flatten)]
    pub limit: PolicyTimeoutArg,
}

/// `custody verify --policy`: the gate on the command line.
#[derive(Debug, Args, Default, Clone)]
pub struct GateArgs {
    /// Evaluate this policy (a directory of Rego) over the evidence that verifies, and exit 0
    /// (allow) or 1 (deny). Evidence: bundles beside the file (FILE.*sigstore.json), --bundle,
    /// --evidence, --evidence-dir; trusted: --key, --trusted-key, --trusted-root
    #[arg(long, value_name = "DIR")]
    pub policy: Option<PathBuf>,
    /// The environment being entered (input.environment.name; with --accept-vsa, the VSA must
    /// be for it)
    #[arg(long = "env", value_name = "NAME")]
    pub environment: Option<String>,
    /// Its release stage (input.environment.stage): development, pre-release,
    /// release-candidate, production, or any name your policy uses
    #[arg(long, value_name = "STAGE")]
    pub stage: Option<String>,
    /// More public keys whose signatures count as evidence; repeat for several
    #[arg(long = "trusted-key", value_name = "PEM", requires = "policy")]
    pub trusted_keys: Vec<PathBuf>,
    /// More evidence bundles; repeat for several
    #[arg(long = "evidence", value_name = "BUNDLE", requires = "policy")]
    pub evidence: Vec<PathBuf>,
    /// A directory of evidence bundles (those that claim to be about the artifact are checked)
    #[arg(long, value_name = "DIR", requires = "policy")]
    pub evidence_dir: Option<PathBuf>,
    /// A custody server whose evidence store holds more bundles for the artifact
    /// (GET URL/api/v1/evidence/sha256:HEX); each is verified like any other
    #[arg(long, value_name = "URL", requires = "policy")]
    pub evidence_from: Option<String>,
    /// Write the verdict as SARIF 2.1.0 to FILE (`-` for stdout)
    #[arg(long, value_name = "FILE", requires = "policy")]
    pub sarif: Option<PathBuf>,
    /// On allow, sign a SLSA Verification Summary Attestation with --vsa-key and write it here
    #[arg(long = "vsa-out", value_name = "FILE", requires_all = ["policy", "vsa_key"])]
    pub vsa_out: Option<PathBuf>,
    /// The gate's private key for VSAs
    #[arg(long, value_name = "KEY")]
    pub vsa_key: Option<PathBuf>,
    /// The verifier id written into (and required of) VSAs
    #[arg(long, value_name = "URI", default_value = custody_policy::vsa::DEFAULT_VERIFIER_ID)]
    pub verifier_id: String,
    /// Fast path: accept this VSA instead of verifying all evidence, if it is signed by
    /// --gate-key, about this artifact, PASSED and younger than --vsa-max-age
    #[arg(
        long,
        value_name = "BUNDLE",
        conflicts_with = "policy",
        requires = "gate_key"
    )]
    pub accept_vsa: Option<PathBuf>,
    /// The gate's public key (for --accept-vsa)
    #[arg(long, value_name = "PEM")]
    pub gate_key: Option<PathBuf>,
    /// The oldest VSA --accept-vsa takes, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 86400)]
    pub vsa_max_age: i64,
    /// With --accept-vsa: the VSA must be for this policy digest
    #[arg(long, value_name = "sha256:HEX")]
    pub policy_digest: Option<String>,
    #[command(flatten)]
    pub limit: PolicyTimeoutArg,
}

#[derive(Debug, Subcommand)]
pub enum IntotoCommand {
    /// Run a step's command and write its signed link metadata, <STEP>.<KEYID[:8]>.link
    ///
    /// Records the materials, runs COMMAND, records the products, stdout, stderr and return
    /// value, and signs the link (in-toto's classic format, or DSSE with --dsse).
    Run(IntotoRunArgs),
    /// Verify a supply chain: the layout's signature and expiry, the links of every step, the
    /// artifact rules, and the inspections (run in the current directory)
    Verify(IntotoVerifyArgs),
}

#[derive(Debug, Args)]
pub struct IntotoRunArgs {
    /// The step name, as in the layout
    #[arg(long, short = 'n')]
    pub step: String,
    /// Private key (PEM: PKCS#8, PKCS#1 RSA, or custody/cosign encrypted)
    #[arg(long, short = 'k', env = "CUSTODY_KEY")]
    pub key: Option<std::path::PathBuf>,
    /// The key id to sign as [default: the in-toto 3.x key id of the key]
    #[arg(long, value_name = "HEX")]
    pub key_id: Option<String>,
    /// Files or directories to record before the command runs
    #[arg(long, short = 'm', num_args = 1.., value_name = "PATH")]
    pub materials: Vec<String>,
    /// Files or directories to record after the command ran
    #[arg(long, short = 'p', num_args = 1.., value_name = "PATH")]
    pub products: Vec<String>,
    /// Write a DSSE envelope instead of a classic {signed, signatures} link
    #[arg(long)]
    pub dsse: bool,
    /// Directory to write the link to
    #[arg(long, short = 'd', default_value = ".", value_name = "DIR")]
    pub metadata_directory: std::path::PathBuf,
    /// The command to run, after `--` (may be empty: a step with no command)
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct IntotoVerifyArgs {
    /// The signed layout
    #[arg(long, short = 'l')]
    pub layout: std::path::PathBuf,
    /// Public key (PEM) the layout must be signed by; repeat for several (all must sign)
    #[arg(long = "layout-key", short = 'k', required = true, value_name = "PEM")]
    pub layout_keys: Vec<std::path::PathBuf>,
    /// Directory holding the links
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub link_dir: std::path::PathBuf,
    /// A value for the layout's {NAME} parameter (python in-toto's substitution parameters);
    /// repeat for several. A layout that uses a parameter not given is refused
    #[arg(long = "param", alias = "layout-params", num_args = 1.., value_name = "NAME=VALUE")]
    pub params: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate a key pair: NAME.key (encrypted, cosign format) and NAME.pub (PEM)
    ///
    /// The password comes from CUSTODY_PASSWORD, else a prompt on the terminal.
    Generate(KeyGenerateArgs),
    /// Import a cosign private key (ENCRYPTED COSIGN/SIGSTORE PRIVATE KEY) as NAME.key + NAME.pub
    Import(KeyImportArgs),
    /// Print the public key and key id of a private or public key file
    Inspect(KeyInspectArgs),
    /// Rotate a signing key on a custody server: the old key introduces the new one (signed,
    /// logged), chosen releases' evidence is re-signed with the new key, and the old key
    /// retires after the overlap without breaking what it signed before
    Rotate(crate::cli_release::KeyRotateArgs),
}

#[derive(Debug, Args)]
pub struct KeyGenerateArgs {
    /// Signature algorithm
    #[arg(long, short = 'a', default_value = "ecdsa-p256", value_parser = ["ecdsa-p256", "ed25519"])]
    pub algorithm: String,
    /// Writes NAME.key and NAME.pub (a path prefix)
    #[arg(value_name = "NAME", default_value = "custody")]
    pub name: PathBuf,
    /// Write the private key unencrypted (PKCS#8 PEM). Anyone who reads the file can sign as you.
    #[arg(long)]
    pub insecure_unencrypted: bool,
    /// Replace existing files
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct KeyImportArgs {
    /// The cosign private key file to import
    pub file: PathBuf,
    /// Writes NAME.key and NAME.pub (a path prefix) [default: the file's name without extension]
    #[arg(value_name = "NAME")]
    pub name: Option<PathBuf>,
    /// Replace existing files
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct KeyInspectArgs {
    /// A private key (.key, asks for its password) or a public key (.pub) file
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The file to sign (streamed: any size)
    #[arg(required_unless_present = "digest", conflicts_with = "digest")]
    pub file: Option<PathBuf>,
    /// Sign this digest instead of a file: sha256:HEX
    #[arg(long, value_name = "sha256:HEX")]
    pub digest: Option<String>,
    /// Private key file [env CUSTODY_KEY, config `key`]
    #[arg(long, env = "CUSTODY_KEY")]
    pub key: Option<PathBuf>,
    /// Where to write the bundle [default: FILE.sigstore.json, or DIGEST-HEX.sigstore.json]
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    #[command(flatten)]
    pub log: LogArgs,
}

/// Where signatures are logged.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Submit to this transparency log (`custody serve`, or any Rekor v2 write API) and put the
    /// entry with its inclusion proof into the bundle; fail if the log does not accept it
    #[arg(long, env = "CUSTODY_LOG", value_name = "URL")]
    pub log: Option<String>,
    /// File holding the log's bearer token [default: $CUSTODY_LOG_TOKEN]
    #[arg(long, value_name = "FILE")]
    pub log_token_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AttestArgs {
    /// The file the statement is about (its digest becomes the subject)
    pub file: PathBuf,
    /// Private key file [env CUSTODY_KEY, config `key`]
    #[arg(long, env = "CUSTODY_KEY")]
    pub key: Option<PathBuf>,
    /// Predicate type URI, e.g. https://slsa.dev/provenance/v1
    #[arg(long = "type", value_name = "URI")]
    pub predicate_type: String,
    /// The predicate: a JSON file
    #[arg(long)]
    pub predicate: PathBuf,
    /// Where to write the bundle [default: FILE.intoto.sigstore.json for SLSA provenance,
    /// FILE.<short type name>.sigstore.json for other types, e.g. FILE.rebuild.sigstore.json]
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    /// Overwrite the bundle file if it exists (without it an existing bundle is an error)
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The file to verify (or sha256:HEX to verify by digest)
    #[arg(
        value_name = "FILE|sha256:HEX",
        required_unless_present = "bundles_from"
    )]
    pub artifact: Option<String>,
    /// The bundle [default: FILE.sigstore.json, then FILE.intoto.sigstore.json, then FILE.sigstore,
    /// then the only FILE.<type>.sigstore.json (e.g. FILE.rebuild.sigstore.json)]
    #[arg(long, conflicts_with = "bundles_from")]
    pub bundle: Option<PathBuf>,
    /// Public key (PEM) the bundle must be signed with [env CUSTODY_PUBLIC_KEY, config `public_key`]
    #[arg(long, env = "CUSTODY_PUBLIC_KEY")]
    pub key: Option<PathBuf>,
    /// Sigstore trusted_root.json (or a ClientTrustConfig): Fulcio CAs, Rekor and CT logs, TSAs.
    /// Required for certificate bundles; custody never fetches one over the network
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// Verify many bundles in parallel. Each line: `ARTIFACT_OR_sha256:HEX BUNDLE [IDENTITY ISSUER]`
    /// (whitespace-separated; `#` comments), or a JSON object
    /// `{"artifact","bundle","identity"?,"issuer"?,"identityRegexp"?,"issuerRegexp"?}`. `-` reads
    /// stdin. Prints one result per line (JSON lines with -o json); exits 1 if any failed
    #[arg(long, value_name = "LIST")]
    pub bundles_from: Option<PathBuf>,
    /// Worker threads for --bundles-from [default: all cores]
    #[arg(long, value_name = "N", requires = "bundles_from")]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub gate: GateArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// Who must have signed a certificate (keyless) bundle.
#[derive(Debug, Args, Default, Clone)]
pub struct IdentityArgs {
    /// The signer's identity (certificate SAN: email, URI), exactly
    #[arg(
        long,
        value_name = "SAN",
        conflicts_with = "certificate_identity_regexp"
    )]
    pub certificate_identity: Option<String>,
    /// The signer's identity as a regular expression; it must match the WHOLE SAN (anchored)
    #[arg(long, value_name = "RE")]
    pub certificate_identity_regexp: Option<String>,
    /// The OIDC issuer that vouched for the identity, exactly
    /// (e.g. https://token.actions.githubusercontent.com)
    #[arg(
        long,
        value_name = "ISSUER",
        conflicts_with = "certificate_oidc_issuer_regexp"
    )]
    pub certificate_oidc_issuer: Option<String>,
    /// The OIDC issuer as a regular expression; it must match the whole issuer (anchored)
    #[arg(long, value_name = "RE")]
    pub certificate_oidc_issuer_regexp: Option<String>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Files the build produces, relative to the working directory (`*` stays in a directory,
    /// `**` crosses them); repeat for more. Each must match at least one file.
    #[arg(long = "artifacts", value_name = "GLOB")]
    pub artifacts: Vec<String>,
    /// runDetails.builder.id [default: config `build.builder_id`, else detected from GitHub
    /// Actions, GitLab CI, Jenkins or Buildkite, else urn:custody:builder:local:HOST]
    #[arg(long, value_name = "URI")]
    pub builder_id: Option<String>,
    /// Private key file [env CUSTODY_KEY, config `key`]
    #[arg(long, env = "CUSTODY_KEY")]
    pub key: Option<PathBuf>,
    /// Write one bundle here for all artifacts instead of NAME.intoto.sigstore.json beside each
    /// (with --reproduce: the reproducibility bundle [default: reproducibility.intoto.sigstore.json])
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    /// Also record this environment variable (NAME, or PREFIX*); names that look like secrets
    /// are never recorded
    #[arg(long = "env", value_name = "NAME")]
    pub env: Vec<String>,
    /// Run the command in a fresh network namespace with no network (needs CAP_SYS_ADMIN);
    /// fails rather than run with network when namespaces are unavailable
    #[arg(long)]
    pub hermetic: bool,
    /// Build twice in two fresh copies of the source tree under varied conditions and attest
    /// whether every artifact is bit-for-bit the same (exit 1 if not)
    #[arg(long)]
    pub reproduce: bool,
    #[command(flatten)]
    pub log: LogArgs,
    /// The build command and its arguments, after `--`
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// A provenance bundle written by `custody build`
    pub bundle: PathBuf,
    /// Public key the provenance must be signed with [env CUSTODY_PUBLIC_KEY, config `public_key`]
    #[arg(long, env = "CUSTODY_PUBLIC_KEY")]
    pub public_key: Option<PathBuf>,
    /// Private key that signs the rebuild attestation [env CUSTODY_KEY, config `key`]
    #[arg(long, env = "CUSTODY_KEY")]
    pub key: Option<PathBuf>,
    /// Clone the source from this repository instead of the recorded one (a path or URL)
    #[arg(long, value_name = "REPO")]
    pub source: Option<String>,
    /// Where to write the rebuild attestation [default: rebuild.intoto.sigstore.json]
    #[arg(long, value_name = "FILE")]
    pub attestation: Option<PathBuf>,
    /// Directory holding the originally built artifacts (subject names relative to it): a
    /// subject that differs is compared with its original by diffoscope (when installed)
    #[arg(long, value_name = "DIR")]
    pub compare_with: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// The directory to check (git-tracked and untracked, not ignored, files when it is a git
    /// work tree)
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Exit 1 when there are findings
    #[arg(long)]
    pub deny: bool,
}

#[derive(Debug, Subcommand)]
pub enum TrustRootCommand {
    /// Parse a trusted_root.json and summarise what it trusts
    Inspect {
        /// The trusted_root.json (or a ClientTrustConfig holding one)
        file: PathBuf,
    },
    /// Write a trusted_root.json (media type v0.2) that trusts a custody log
    Export(crate::cli_log::TrustRootExportArgs),
}

/// `--policy-timeout`: every command that evaluates a policy (serve's gate, admission and
/// promotions, `verify --policy`, `policy eval|test`, `audit --policy`) takes it.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct PolicyTimeoutArg {
    /// How long one policy evaluation may run before it is stopped and the artifact denied
    /// (code policy-timeout): 1ms..60s, like 500ms or 2s
    #[arg(
        long = "policy-timeout",
        value_name = "DURATION",
        env = "CUSTODY_POLICY_TIMEOUT",
        default_value = "1s",
        value_parser = custody_policy::TimeLimit::parse
    )]
    pub policy_timeout: custody_policy::TimeLimit,
}
