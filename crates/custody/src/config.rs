//! The config file: defaults below flags and environment variables.
//!
//! Precedence, highest first: command-line flag, environment variable, config file, built-in
//! default. The file is TOML:
//!
//! ```toml
//! output = "json"          # human | json
//! key = "ci/release.key"   # default private key for sign/attest
//! public_key = "release.pub"  # default public key for verify
//!
//! [build]
//! builder_id = "https://ci.example.com/runners/linux"   # runDetails.builder.id
//! env_allowlist = ["SOURCE_DATE_EPOCH", "RUSTFLAGS", "CARGO_PROFILE_*"]  # replaces the default
//! ```

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

use crate::cli::OutputFormat;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub output: Option<OutputFormat>,
    pub key: Option<PathBuf>,
    pub public_key: Option<PathBuf>,
    #[serde(default)]
    pub build: BuildConfig,
}

/// `[build]`: defaults for `custody build`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildConfig {
    pub builder_id: Option<String>,
    /// Environment variables recorded in provenance; replaces the built-in list.
    pub env_allowlist: Option<Vec<String>>,
}

impl Config {
    /// Loads the named file (which must exist), else the default location when it exists.
    pub fn load(explicit: Option<&Path>) -> anyhow::Result<Self> {
        let path = match explicit {
            Some(path) => path.to_path_buf(),
            None => match default_path() {
                Some(path) if path.is_file() => path,
                _ => return Ok(Self::default()),
            },
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).map_err(|e| {
            let msg = e.message().to_string();
            anyhow::anyhow!(
                "config file {}: {msg} (see `custody --help` for the keys)",
                path.display()
            )
        })
    }
}

fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "custody").map(|d| d.config_dir().join("config.toml"))
}
