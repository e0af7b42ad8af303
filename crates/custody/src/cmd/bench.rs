//! `custody bench log URL`: the load generator against a running log.

use anyhow::Context as _;
use custody_client::loadgen::{self, LoadConfig, LoadReport};

use super::Context;
use crate::cli_log::BenchLogArgs;
use crate::outcome::Outcome;

pub fn log(ctx: &Context, args: BenchLogArgs) -> anyhow::Result<Outcome> {
    let token = match &args.token_file {
        Some(path) => Some(
            String::from_utf8(crate::files::read(path, "log token file")?)
                .with_context(|| format!("log token file {}: not UTF-8", path.display()))?
                .trim()
                .to_owned(),
        ),
        None => std::env::var("CUSTODY_LOG_TOKEN").ok(),
    };
    if args.concurrency == 0 || args.read_concurrency == 0 {
        anyhow::bail!("--concurrency and --read-concurrency must be at least 1");
    }
    let config = LoadConfig {
        url: args.url.clone(),
        entries: args.entries,
        concurrency: args.concurrency,
        token,
        reads: args.reads,
        read_concurrency: args.read_concurrency,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime
        .block_on(loadgen::run(&config))
        .with_context(|| format!("load on {} failed", args.url))?;
    let json = serde_json::to_value(&report)?;
    ctx.emit(&json, || human(&report));
    Ok(Outcome::Done)
}

fn human(report: &LoadReport) -> String {
    let mut out = String::new();
    if let Some(w) = &report.write {
        out += &format!(
            "writes: {} entries in {:.2} s = {:.0} entries/s with {} connections \
             (signed beforehand in {:.1} s)\n  submit→answer p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
             {} created, {} duplicates, {} pushed back (503)\n  tree size {}: inclusion proof {} hashes, answer {} bytes\n",
            w.entries,
            w.seconds,
            w.entries_per_second,
            w.concurrency,
            w.sign_seconds,
            w.p50_ms,
            w.p99_ms,
            w.max_ms,
            w.created,
            w.duplicates,
            w.pushed_back,
            w.tree_size,
            w.proof_hashes,
            w.answer_bytes
        );
        if let Some(cpu) = w.client_cpu_seconds {
            out += &format!(
                "  load generator CPU {:.2} s = {:.1} µs/entry\n",
                cpu,
                cpu * 1e6 / w.entries.max(1) as f64
            );
        }
    }
    for r in &report.reads {
        out += &format!(
            "reads ({}): {} in {:.2} s = {:.0}/s ({:.1} MiB/s)\n",
            r.kind,
            r.requests,
            r.seconds,
            r.per_second,
            r.bytes as f64 / r.seconds.max(1e-9) / 1048576.0
        );
    }
    if !report.reads.is_empty() {
        out += &format!("reads overall: {:.0}/s\n", report.reads_per_second);
    }
    out
}
