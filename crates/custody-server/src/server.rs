//! The log server: routes, shared state, graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use custody_core::note::CosignatureVerifier;
use custody_log::Log;
use tokio::net::TcpListener;

use crate::admit_pool::AdmitPool;
use crate::auth::WriteAuth;
use crate::gate::{GateConfig, GateService, Invalidator};
use crate::metrics::Metrics;
use custody_evidence::EvidenceStore;
use custody_release::service::ReleaseService;

/// Write requests waiting for a signature check before the server answers 503.
const ADMIT_QUEUE: usize = 16_384;
/// How long the retirement task waits after a failed refresh before it tries again.
const RETIREMENT_RETRY: Duration = Duration::from_secs(1);
/// Bytes of full entry bundles kept in memory (two generations of half this each).
const BUNDLE_CACHE_BYTES: usize = 64 << 20;
use crate::identity::LogIdentity;
use crate::{admin_api, gate_api, read_api, release_api, witness_push, write_api};

/// A witness the log asks to cosign each new checkpoint.
#[derive(Debug, Clone)]
pub struct WitnessTarget {
    /// The witness's submission prefix; requests go to `<url>/add-checkpoint`.
    pub url: String,
    /// The witness's cosignature key: only lines that verify under it are stored.
    pub key: CosignatureVerifier,
}

/// Everything `serve` needs.
#[derive(Debug)]
pub struct ServerConfig {
    /// The opened log.
    pub log: Log,
    /// Its public identity.
    pub identity: LogIdentity,
    /// The URL clients reach the log at (`baseUrl` in `trusted_root.json`).
    pub base_url: String,
    /// Who may write.
    pub auth: WriteAuth,
    /// Largest write request body accepted, in bytes.
    pub max_request_bytes: usize,
    /// Witnesses to push checkpoints to.
    pub witnesses: Vec<WitnessTarget>,
    /// How often to look for a new checkpoint to push to witnesses.
    pub witness_interval: Duration,
    /// The evidence store (and decision log); `None` serves no evidence API.
    pub store: Option<Arc<dyn EvidenceStore>>,
    /// The policy gate (`--policy`); needs `store`.
    pub gate: Option<GateConfig>,
    /// Serve over TLS with this configuration.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Releases (`--release-config`); needs `store`.
    pub release: Option<crate::release::ReleaseSetup>,
    /// Largest artifact accepted by `PUT /api/v1/artifacts/…`, in bytes.
    pub max_artifact_bytes: usize,
    /// Timeouts and the connection limit of the listener.
    pub limits: crate::listener::ListenerLimits,
    /// Reloads the policy, keys, environments and principals from the files (SIGHUP,
    /// `POST /api/v1/admin/reload`): the loader and what it loaded at start.
    pub reload: Option<crate::reload::ReloadSetup>,
}

pub(crate) struct AppState {
    pub log: Log,
    pub admit: AdmitPool,
    pub identity: LogIdentity,
    /// `identity.log_id()` in base64, as every write answer names it.
    pub log_id_base64: String,
    /// Full entry bundles served recently (immutable, so never stale).
    pub bundles: crate::read_api::BundleCache,
    pub base_url: String,
    pub auth: WriteAuth,
    pub max_request_bytes: usize,
    pub store: Option<Arc<dyn EvidenceStore>>,
    pub gate: Option<Arc<GateService>>,
    /// Tells every replica's gate what changed (present with the evidence store).
    pub invalidator: Option<Invalidator>,
    pub release: Option<Arc<ReleaseService>>,
    pub metrics: Arc<Metrics>,
    pub max_artifact_bytes: usize,
    pub reload: Option<Arc<crate::reload::Reloader>>,
}

/// Serves the log on `listener` until `shutdown` completes, then stops accepting connections,
/// finishes the requests in flight and returns.
pub async fn serve(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let gate = match (config.gate, &config.store) {
        (Some(gate), Some(store)) => Some(Arc::new(GateService::start(
            gate,
            store.clone(),
            config.log.clone(),
        ))),
        (Some(_), None) => {
            return Err(std::io::Error::other(
                "the policy gate needs the evidence store",
            ));
        }
        (None, _) => None,
    };
    if let Some(gate) = &gate {
        // Every replica's invalidations (this one's included) reach this gate.
        gate.follow();
    }
    let invalidator = config
        .store
        .as_ref()
        .map(|store| Invalidator::new(gate.clone(), store.clone()));
    let metrics = Arc::new(Metrics::default());
    let log_id_base64 = custody_core::encoding::base64_encode(&config.identity.log_id());
    let release = match (config.release, &config.store, &invalidator) {
        (Some(setup), Some(store), Some(invalidator)) => {
            let invalidator = invalidator.clone();
            let on_change: custody_release::service::OnChange = Box::new(move |digest| {
                invalidator.publish_in_background(match digest {
                    Some(d) => custody_evidence::Change::Decisions(*d),
                    None => custody_evidence::Change::All,
                });
            });
            Some(Arc::new(crate::release::start(
                setup,
                config.log.clone(),
                config.identity.log_id().to_vec(),
                store.clone(),
                metrics.clone(),
                on_change,
            )))
        }
        (Some(_), _, _) => {
            return Err(std::io::Error::other("releases need the evidence store"));
        }
        (None, _, _) => None,
    };
    if let Some(gate) = &gate {
        gate.set_metrics(metrics.clone());
    }
    if let (Some(gate), Some(release)) = (&gate, &release) {
        gate.set_revocations(release.revocations());
        gate.set_releases(release.clone());
    }
    let reload = config.reload.map(|setup| {
        Arc::new(crate::reload::Reloader::new(
            setup.loader,
            setup.initial,
            gate.clone(),
            release.clone(),
            metrics.clone(),
            invalidator.clone(),
        ))
    });
    if let Some(reloader) = &reload {
        crate::reload::on_sighup(reloader.clone())?;
    }
    let state = Arc::new(AppState {
        log: config.log.clone(),
        admit: AdmitPool::start(threads, ADMIT_QUEUE)?,
        log_id_base64,
        bundles: crate::read_api::BundleCache::new(BUNDLE_CACHE_BYTES),
        identity: config.identity,
        base_url: config.base_url,
        auth: config.auth,
        max_request_bytes: config.max_request_bytes,
        store: config.store,
        gate,
        invalidator,
        release: release.clone(),
        metrics,
        max_artifact_bytes: config.max_artifact_bytes,
        reload,
    });
    if let Some(release) = release {
        // Finish any quarantine or rollback a previous run left halfway.
        tokio::spawn(async move {
            if let Err(e) = release.reconcile().await {
                tracing::error!(error = %e, "reconciling releases at start-up failed");
            }
            // Key retirements take effect at their instant: learn the schedule, then sleep
            // until the next one is due (a new rotation wakes the wait).
            loop {
                if let Err(e) = release.refresh_retirements().await {
                    tracing::warn!(error = %e, "refreshing key retirements failed");
                    tokio::time::sleep(RETIREMENT_RETRY).await;
                    continue;
                }
                release.wait_for_retirement().await;
            }
        });
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let pusher = (!config.witnesses.is_empty()).then(|| {
        tokio::spawn(witness_push::run(
            config.log,
            config.witnesses,
            config.witness_interval,
            stop_rx,
        ))
    });
    let stats = state.metrics.listener.clone();
    let result = crate::listener::serve(
        listener,
        router(state),
        config.tls,
        config.limits,
        stats,
        shutdown,
    )
    .await;
    let _ = stop_tx.send(true);
    if let Some(pusher) = pusher {
        let _ = pusher.await;
    }
    result
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/checkpoint", get(read_api::checkpoint))
        .route("/tile/{*path}", get(read_api::tile))
        .route("/healthz", get(read_api::healthz))
        .route("/api/v1/trusted_root.json", get(read_api::trusted_root))
        .route("/api/v2/log/entries", post(write_api::create_entry))
        .route("/api/v1/evidence", post(gate_api::post_evidence))
        .route("/api/v1/evidence/{digest}", get(gate_api::get_evidence))
        .route("/api/v1/gate/evaluate", post(gate_api::evaluate))
        .route("/api/v1/gate/cache/invalidate", post(gate_api::invalidate))
        .route("/api/v1/admission", post(gate_api::admission))
        .route(
            "/api/v1/artifacts/{digest}",
            get(release_api::get_artifact).put(release_api::put_artifact),
        )
        .route("/api/v1/approvals", post(release_api::post_approval))
        .route("/api/v1/promotions", post(release_api::post_promotion))
        .route("/api/v1/rollbacks", post(release_api::post_rollback))
        .route("/api/v1/revocations", post(release_api::post_revocation))
        .route("/api/v1/reconcile", post(release_api::post_reconcile))
        .route("/api/v1/keys/rotations", post(release_api::post_rotation))
        .route("/api/v1/deployments", post(release_api::post_deployment))
        .route("/api/v1/environments", get(release_api::get_environments))
        .route(
            "/api/v1/environments/{name}",
            get(release_api::get_environment),
        )
        .route(
            "/api/v1/environments/{name}/current-release",
            get(release_api::get_current_release),
        )
        .route(
            "/api/v1/environments/{name}/releases",
            get(release_api::get_environment_releases),
        )
        .route("/api/v1/history/{digest}", get(release_api::get_history))
        .route("/api/v1/incidents", get(release_api::get_incidents))
        .route("/api/v1/events", get(release_api::get_events))
        .route("/api/v1/admin/reload", post(admin_api::post_reload))
        .route("/metrics", get(release_api::metrics))
        .with_state(state)
}
