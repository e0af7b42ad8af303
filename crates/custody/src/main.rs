//! The `custody` binary: a thin layer over custody-core that reads flags, files and
//! passwords, and renders results for people (`--output human`) or machines (`--output json`).

mod cli;
mod cli_log;
mod cli_release;
mod cmd;
mod config;
mod files;
mod outcome;
mod password;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{
    Cli, Command, IntotoCommand, KeyCommand, OutputFormat, PolicyCommand, TrustRootCommand,
};
use crate::cli_log::{BenchCommand, LogCommand, WitnessCommand};
use crate::config::Config;
use crate::outcome::{Denied, ExitWith, Outcome};

/// mimalloc instead of glibc's malloc: the log server allocates and frees per request across
/// threads (admission pool, tokio workers, sequencer), where glibc's arenas cost more; see
/// docs/PERFORMANCE.md ("A leaner load generator and mimalloc").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.global);
    let output = cli.global.output;
    match run(cli) {
        Ok(Outcome::Done) => ExitCode::from(0),
        Ok(Outcome::SomeDenied) => ExitCode::from(1),
        Ok(Outcome::Usage) => ExitCode::from(2),
        Err(error) => {
            if let Some(exit) = error.downcast_ref::<ExitWith>() {
                if output == Some(OutputFormat::Json) && !exit.reported {
                    let doc = serde_json::json!({ "ok": false, "denied": exit.code == 1, "exitCode": exit.code, "error": exit.message });
                    println!("{doc}");
                }
                eprintln!("error: {}", exit.message);
                return ExitCode::from(exit.code);
            }
            let denied = error.downcast_ref::<Denied>();
            let code = denied.and_then(|d| d.code);
            let denied = denied.is_some();
            let line = outcome::one_line(&error);
            if output == Some(OutputFormat::Json) {
                let doc = serde_json::json!({ "ok": false, "denied": denied, "code": code, "error": line });
                println!("{doc}");
            }
            eprintln!("error: {line}");
            ExitCode::from(if denied { 1 } else { 2 })
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let config = Config::load(cli.global.config.as_deref())?;
    let output = cli
        .global
        .output
        .or(config.output)
        .unwrap_or(OutputFormat::Human);
    let ctx = cmd::Context {
        output,
        config,
        quiet: cli.global.quiet,
    };
    match cli.command {
        Command::Key(KeyCommand::Generate(args)) => cmd::key::generate(&ctx, args),
        Command::Key(KeyCommand::Import(args)) => cmd::key::import(&ctx, args),
        Command::Key(KeyCommand::Inspect(args)) => cmd::key::inspect(&ctx, args),
        Command::Key(KeyCommand::Rotate(args)) => cmd::release::rotate(&ctx, args),
        Command::Sign(args) => cmd::sign::sign(&ctx, args),
        Command::Attest(args) => cmd::sign::attest(&ctx, args),
        Command::Verify(args) => cmd::verify::verify(&ctx, *args),
        Command::Digest { files } => cmd::digest::digest(&ctx, &files),
        Command::Build(args) => cmd::build::build(&ctx, args),
        Command::Rebuild(args) => cmd::build::rebuild::rebuild(&ctx, args),
        Command::Lint(args) => cmd::lint::lint(&ctx, args),
        Command::TrustRoot(TrustRootCommand::Inspect { file }) => {
            cmd::trust_root::inspect(&ctx, &file)
        }
        Command::TrustRoot(TrustRootCommand::Export(args)) => cmd::trust_root::export(&ctx, args),
        Command::Serve(args) => cmd::serve::serve(&ctx, *args),
        Command::Log(LogCommand::Verify(args)) => cmd::log::verify(&ctx, args),
        Command::Log(LogCommand::VerifyCheckpoint(args)) => cmd::log::verify_checkpoint(&ctx, args),
        Command::Log(LogCommand::Monitor(args)) => cmd::log::monitor(&ctx, args),
        Command::Bench(BenchCommand::Log(args)) => cmd::bench::log(&ctx, args),
        Command::Log(LogCommand::Witness(WitnessCommand::Serve(args))) => {
            cmd::witness::serve(&ctx, args)
        }
        Command::Log(LogCommand::Witness(WitnessCommand::GenerateKey { name, out, force })) => {
            cmd::witness::generate_key(&ctx, &name, &out, force)
        }
        Command::Intoto(IntotoCommand::Run(args)) => cmd::intoto::run(&ctx, args),
        Command::Intoto(IntotoCommand::Verify(args)) => cmd::intoto::verify(&ctx, args),
        Command::Policy(PolicyCommand::Init(args)) => cmd::policy::init(&ctx, args),
        Command::Policy(PolicyCommand::Test(args)) => cmd::policy::test(&ctx, args),
        Command::Policy(PolicyCommand::Eval(args)) => cmd::policy::eval(&ctx, args),
        Command::Policy(PolicyCommand::Digest(args)) => cmd::policy::digest(&ctx, args),
        Command::Push(args) => cmd::release::push(&ctx, args),
        Command::Approve(args) => cmd::release::approve(&ctx, args),
        Command::Promote(args) => cmd::release::promote(&ctx, args),
        Command::Rollback(args) => cmd::release::rollback(&ctx, args),
        Command::Revoke(args) => cmd::release::revoke(&ctx, args),
        Command::Status(args) => cmd::release::status(&ctx, args),
        Command::History(args) => cmd::release::history(&ctx, args),
        Command::Audit(args) => cmd::release::audit(&ctx, args),
        Command::Deploy(args) => cmd::deploy::deploy(&ctx, *args),
    }
}

fn init_tracing(global: &cli::GlobalArgs) {
    let default = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
}
