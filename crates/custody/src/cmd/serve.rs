//! `custody serve`: the transparency log server.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use custody_core::note::CosignatureVerifier;
use custody_log::{Log, LogConfig, Storage};
use custody_server::auth::WriteAuth;
use custody_server::{ServerConfig, WitnessTarget, identity};

use super::Context;
use crate::cli_log::ServeArgs;
use crate::outcome::Outcome;

pub fn serve(_ctx: &Context, args: ServeArgs) -> anyhow::Result<Outcome> {
    let data_dir = data_dir(args.data_dir.clone())?;
    let auth = write_auth(&args)?;
    let witnesses = args
        .witness
        .iter()
        .map(|w| witness_target(w))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let origin_explicit = args.origin.is_some();
    let origin = args
        .origin
        .clone()
        .unwrap_or_else(|| args.listen.to_string());
    let (signer, identity) = identity::open_or_create(&data_dir, &origin, origin_explicit)
        .context("cannot open the log key")?;
    // Everything the gate and TLS need is read and checked before the server listens.
    let tls = super::serve_gate::tls(&args)?;
    let gate = super::serve_gate::gate(&args.gate)?;
    let store = super::serve_gate::store(&args, &data_dir)?;
    let release = super::serve_release::setup(&args, &data_dir)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let limits = listen_limits(&args.limits);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.worker_threads {
        runtime.worker_threads(usize::from(n));
    }
    let runtime = runtime
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let database = match &args.database {
            Some(url) => url.clone(),
            None => data_dir.join("log.db").to_string_lossy().into_owned(),
        };
        let storage = Storage::open(&database)
            .await
            .with_context(|| format!("cannot open the log storage {}", redact(&database)))?;
        let mut config = LogConfig::new(&identity.origin);
        config.max_entry_bytes = args.max_entry_bytes;
        config.batch_max_entries = args.batch_max_entries as usize;
        config.batch_max_delay = std::time::Duration::from_millis(args.batch_max_delay_ms.into());
        let log = Log::open(storage, signer, config)
            .await
            .context("cannot open the log")?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        let base_url = args
            .base_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", identity.origin));
        let shutdown = shutdown_signal();
        println!("custody serve: listening on {scheme}://{addr}");
        let _ = std::io::stdout().flush();
        tracing::info!(origin = %identity.origin, vkey = %identity.vkey, data_dir = %data_dir.display(), "log open");
        let config = ServerConfig {
            log,
            identity,
            base_url,
            auth,
            max_request_bytes: args.max_request_bytes,
            witnesses,
            witness_interval: Duration::from_millis(500),
            store: Some(store),
            gate,
            tls,
            release,
            max_artifact_bytes: args.max_artifact_bytes,
            limits,
        };
        custody_server::serve(listener, config, shutdown)
            .await
            .context("the server failed")?;
        tracing::info!("stopped");
        Ok(Outcome::Done)
    })
}

/// Raises the open-files limit to its hard limit and derives the listener's limits from it;
/// warns when `--max-connections` leaves no room for the databases and files.
pub fn listen_limits(
    args: &crate::cli_log::ListenLimitArgs,
) -> custody_server::listener::ListenerLimits {
    let nofile = custody_server::listener::raise_open_files_limit();
    let limits = args.limits(nofile);
    let fits = custody_server::listener::default_max_connections(nofile);
    if limits.max_connections > fits {
        tracing::warn!(
            max_connections = limits.max_connections,
            open_files_limit = nofile,
            "--max-connections leaves less than an eighth of the open-files limit for databases \
             and files: raise the limit (ulimit -n, LimitNOFILE=) or lower --max-connections to {fits}"
        );
    }
    tracing::info!(
        max_connections = limits.max_connections,
        open_files_limit = nofile,
        header_timeout = ?limits.header_timeout,
        idle_timeout = ?limits.idle_timeout,
        body_timeout = ?limits.body_timeout,
        "listener limits"
    );
    limits
}

/// `--data-dir`, else `$CUSTODY_HOME` (both via clap), else the XDG data directory.
pub fn data_dir(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = explicit {
        return Ok(dir);
    }
    directories::ProjectDirs::from("", "", "custody")
        .map(|d| d.data_dir().to_path_buf())
        .context("no data directory: give --data-dir or set CUSTODY_HOME")
}

fn write_auth(args: &ServeArgs) -> anyhow::Result<WriteAuth> {
    let token = match (&args.write_token_file, std::env::var("CUSTODY_WRITE_TOKEN")) {
        (Some(path), _) => Some(read_token(path)?),
        (None, Ok(token)) => Some(token),
        (None, Err(_)) => None,
    };
    match token {
        Some(token) => WriteAuth::bearer(&token).context("the write token is empty"),
        None if args.insecure_allow_unauthenticated_writes => {
            if !args.listen.ip().is_loopback() {
                anyhow::bail!(
                    "--insecure-allow-unauthenticated-writes is only allowed on a loopback address, not {}",
                    args.listen
                );
            }
            tracing::warn!(
                "INSECURE: anyone who can reach {} may write to this log (--insecure-allow-unauthenticated-writes)",
                args.listen
            );
            Ok(WriteAuth::DangerouslyUnauthenticated)
        }
        None => anyhow::bail!(
            "writes need a token: give --write-token-file FILE or set CUSTODY_WRITE_TOKEN \
             (on a loopback address, --insecure-allow-unauthenticated-writes turns authentication off)"
        ),
    }
}

fn read_token(path: &Path) -> anyhow::Result<String> {
    let bytes = crate::files::read(path, "write token file")?;
    String::from_utf8(bytes)
        .with_context(|| format!("write token file {}: not UTF-8", path.display()))
}

/// `URL=VKEY`.
fn witness_target(spec: &str) -> anyhow::Result<WitnessTarget> {
    let (url, vkey) = spec
        .split_once('=')
        .with_context(|| format!("--witness {spec:?}: expected URL=VKEY"))?;
    let key = CosignatureVerifier::from_vkey(&super::log::vkey_text(vkey)?)
        .with_context(|| format!("--witness {url}: not a witness cosignature vkey"))?;
    Ok(WitnessTarget {
        url: url.to_owned(),
        key,
    })
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Completes on ctrl-c or SIGTERM. The handlers are installed when this is called (so call it
/// before announcing the address), not when the future is first polled.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {},
                        _ = int.recv() => {},
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
            tracing::info!("shutting down");
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    }
}
