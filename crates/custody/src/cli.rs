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
    Verify(VerifyArgs),
    /// Print the sha256 digest of files (streamed, any size): the names custody uses for artifacts
    Digest {
        /// Files to hash
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Inspect Sigstore trusted_root.json files, or export one for a custody log
    #[command(name = "trust-root", subcommand)]
    TrustRoot(TrustRootCommand),
    /// Run the transparency log server (C2SP tlog-tiles read API, Rekor v2 write API)
    Serve(crate::cli_log::ServeArgs),
    /// Follow, audit and witness transparency logs
    #[command(subcommand)]
    Log(crate::cli_log::LogCommand),
    /// Load generators (advanced): measure a running log
    #[command(subcommand)]
    Bench(crate::cli_log::BenchCommand),
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
    /// Where to write the bundle [default: FILE.intoto.sigstore.json]
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The file to verify (or sha256:HEX to verify by digest)
    #[arg(value_name = "FILE|sha256:HEX")]
    pub artifact: String,
    /// The bundle [default: FILE.sigstore.json, then FILE.intoto.sigstore.json, then FILE.sigstore]
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    /// Public key (PEM) the bundle must be signed with [env CUSTODY_PUBLIC_KEY, config `public_key`]
    #[arg(long, env = "CUSTODY_PUBLIC_KEY")]
    pub key: Option<PathBuf>,
    /// Sigstore trusted_root.json: verify the bundle's transparency-log entries against its Rekor logs
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
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
