//! One module per command family; each returns an [`Outcome`](crate::outcome::Outcome).

pub mod admin;
pub mod bench;
pub mod build;
pub mod deploy;
pub mod digest;
pub mod intoto;
mod intoto_exec;
pub mod key;
pub mod lint;
pub mod log;
pub mod policy;
pub mod release;
pub mod serve;
pub mod serve_gate;
pub mod serve_release;
pub mod serve_reload;
pub mod sign;
pub mod trust_root;
pub mod verify;
pub mod witness;

use crate::cli::OutputFormat;
use crate::config::Config;

/// What every command gets besides its own arguments.
pub struct Context {
    pub output: OutputFormat,
    pub config: Config,
    pub quiet: bool,
}

impl Context {
    /// Prints the result: the JSON document on stdout with `--output json`, else the human text.
    pub fn emit(&self, json: &serde_json::Value, human: impl FnOnce() -> String) {
        match self.output {
            OutputFormat::Json => println!("{json}"),
            OutputFormat::Human => {
                if !self.quiet {
                    print!("{}", human());
                }
            }
        }
    }
}
