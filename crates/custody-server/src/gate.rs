//! The policy gate behind the HTTP API: decisions (evidence from the store, verified and
//! evaluated off the async executor), a decision cache, the decision log, signed VSAs.
//!
//! Cache key: (artifact, policy digest, trust-root digest, environment, stage, whether the
//! environment's release state applies). An entry lives
//! `cache_ttl`; storing new evidence for a digest drops that digest's entries, and
//! `POST /api/v1/gate/cache/invalidate` drops one digest's or all. A decision that was being
//! computed while an invalidation happened is answered but not cached (an epoch counter), so
//! the cache never keeps a verdict made before the evidence changed.
//!
//! Replicas: every invalidation is published on the evidence store's change feed
//! ([`Invalidator`]), and every change received from it (any replica's) is applied here
//! ([`GateService::apply`]), so all replicas on one PostgreSQL drop stale decisions within
//! milliseconds. Verification results are shared through the store too
//! ([`StoreResults`]). The decision log is pruned of rows older than the retention in bounded
//! passes by its writer.
//!
//! Admission in a namespace mapped to an environment (release config `namespaces`) decides
//! with that environment's release state in the policy input (`input.release`, from the
//! release service). Every release change (promotion, rollback, quarantine, revocation,
//! retirement, approval) drops every cached decision, and the state is read after the
//! decision's epoch, so a cached decision never outlives the release state it was made on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::entry::InProcessLog;
use chrono::{SecondsFormat, Utc};
use custody_core::digest::Sha256Digest;
use custody_core::keys::SigningKey;
use custody_core::sign::{SignError, Signed, sign_statement};
use custody_log::Log;
use custody_policy::gate::Request;
use custody_policy::input::{Candidate, EnvironmentRef};
use custody_policy::{
    ArtifactRef, Gate, PolicyError, ResultKey, SharedResults, Verdict, VerificationCache,
};
use serde_json::Value as Json;
use tokio::sync::{Semaphore, mpsc};

use custody_evidence::{Change, DecisionRecord, EvidenceStore, StoreError, VerifiedKey};

/// Cached decisions kept at most; past it, expired entries go, then everything.
const CACHE_MAX_ENTRIES: usize = 65_536;
/// Decisions waiting for the log writer; past it they are dropped (and counted).
const DECISION_QUEUE: usize = 8_192;
/// Decisions written per transaction at most.
const DECISION_BATCH: usize = 512;
/// After a batch smaller than [`DECISION_BATCH`], the writer waits this long for more, so a
/// trickle of decisions is not one transaction each.
const DECISION_PAUSE: Duration = Duration::from_millis(100);
/// How often the decision writer prunes rows older than the retention.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Rows deleted per prune statement at most (a short transaction; admissions never wait
/// on it, since decisions are queued).
const PRUNE_BATCH: u64 = 5_000;
/// The default of `--decision-retention`.
pub const DEFAULT_DECISION_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// What `custody serve --policy` configures.
pub struct GateConfig {
    pub gate: Gate,
    /// The environment decisions are for unless a request names one (`--gate-env`).
    pub environment: Option<String>,
    /// Its stage (`--gate-stage`).
    pub stage: Option<String>,
    /// How long a decision is reused; zero turns the cache off.
    pub cache_ttl: Duration,
    /// Verification results kept for reuse (`--gate-verified-cache`; 0 turns it off).
    pub verified_cache: usize,
    /// Signs a VSA for allowed `evaluate` verdicts.
    pub vsa: Option<VsaSigner>,
    /// Decision log rows older than this are deleted (`--decision-retention`); `None` keeps
    /// them forever.
    pub decision_retention: Option<Duration>,
}

impl std::fmt::Debug for GateConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GateConfig")
            .field("policy", &self.gate.policy)
            .field("environment", &self.environment)
            .field("stage", &self.stage)
            .field("cache_ttl", &self.cache_ttl)
            .field("verified_cache", &self.verified_cache)
            .field("vsa", &self.vsa.is_some())
            .field("decision_retention", &self.decision_retention)
            .finish()
    }
}

/// The gate's VSA key and what it writes into VSAs.
pub struct VsaSigner {
    pub key: SigningKey,
    pub verifier_id: String,
    pub policy_uri: String,
}

/// Why no decision could be made (HTTP 500; admission fails closed).
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("the decision task stopped: {0}")]
    Task(String),
    #[error("reading the release state of environment {environment}: {message}")]
    Release {
        environment: String,
        message: String,
    },
}

/// What a decision is about.
#[derive(Debug, Clone)]
pub struct Subject {
    /// `None`: an image reference without a digest.
    pub digest: Option<Sha256Digest>,
    pub name: Option<String>,
    pub image: Option<String>,
}

/// A decision as cached: the verdict, its VSA once one was asked for, and its cache hits not
/// yet in the decision log.
#[derive(Debug)]
pub struct Decided {
    pub verdict: Verdict,
    vsa: OnceLock<Option<Json>>,
    hits: [HitTally; TALLIED_SOURCES.len()],
}

impl Decided {
    fn new(verdict: Verdict) -> Decided {
        Decided {
            verdict,
            vsa: OnceLock::new(),
            hits: Default::default(),
        }
    }
}

/// The sources whose cache hits are tallied rather than queued one by one.
const TALLIED_SOURCES: [&str; 2] = ["admission", "evaluate"];

/// Cache hits of one decision from one source since the decision log last took them: a hit
/// costs two atomic operations, and the log writes them as one row with a count.
#[derive(Debug, Default)]
struct HitTally {
    count: AtomicU64,
    /// When the first of the counted hits happened (Unix milliseconds).
    first_ms: AtomicI64,
    /// The slowest of them, in µs.
    max_latency_us: AtomicU64,
}

impl HitTally {
    /// Counts a hit. True for the first since the last take: the caller must then register
    /// the tally with the writer (once per take, so no count is lost or taken twice; the
    /// writer reads `first_ms` after the registration, under the registry's lock).
    fn hit(&self, latency_us: u64) -> bool {
        self.max_latency_us.fetch_max(latency_us, Ordering::Relaxed);
        if self.count.fetch_add(1, Ordering::AcqRel) == 0 {
            self.first_ms
                .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
            return true;
        }
        false
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    artifact: String,
    policy: Sha256Digest,
    root: Option<Sha256Digest>,
    environment: Option<String>,
    stage: Option<String>,
    /// The environment's release state applies (admission in a mapped namespace): such a
    /// decision is never answered for a request without it, nor the other way round.
    releases: bool,
}

struct CacheEntry {
    at: Instant,
    decided: Arc<Decided>,
}

/// The decision cache.
struct DecisionCache {
    ttl: Duration,
    epoch: AtomicU64,
    map: RwLock<HashMap<CacheKey, CacheEntry>>,
}

impl DecisionCache {
    fn get(&self, key: &CacheKey) -> Option<Arc<Decided>> {
        if self.ttl.is_zero() {
            return None;
        }
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        map.get(key)
            .filter(|e| e.at.elapsed() < self.ttl)
            .map(|e| e.decided.clone())
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Caches unless an invalidation happened since `epoch` was read.
    fn insert(&self, key: CacheKey, decided: Arc<Decided>, epoch: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        if map.len() >= CACHE_MAX_ENTRIES {
            let ttl = self.ttl;
            map.retain(|_, e| e.at.elapsed() < ttl);
            if map.len() >= CACHE_MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(
            key,
            CacheEntry {
                at: Instant::now(),
                decided,
            },
        );
    }

    /// Drops one digest's entries (`Some`) or all (`None`); returns how many.
    fn invalidate(&self, digest: Option<&Sha256Digest>) -> usize {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        let before = map.len();
        match digest {
            Some(d) => {
                let text = d.to_string();
                map.retain(|k, _| k.artifact != text);
            }
            None => map.clear(),
        }
        before - map.len()
    }
}

/// A verdict's deny codes, comma-separated (the decision log's `codes`).
fn deny_codes(verdict: &Verdict) -> String {
    let codes: Vec<&str> = verdict.denies.iter().map(|f| f.code.as_str()).collect();
    codes.join(",")
}

/// A decision with cache hits waiting in one of its tallies.
struct Tallied {
    decided: Arc<Decided>,
    key: CacheKey,
    slot: usize,
}

impl Tallied {
    /// Takes the tally's hits as one row (`None` if another take emptied it).
    fn take(&self, now: &chrono::DateTime<Utc>) -> Option<DecisionRecord> {
        let tally = &self.decided.hits[self.slot];
        let count = tally.count.swap(0, Ordering::AcqRel);
        if count == 0 {
            return None;
        }
        let first = chrono::DateTime::from_timestamp_millis(tally.first_ms.load(Ordering::Relaxed))
            .unwrap_or(*now);
        let verdict = &self.decided.verdict;
        Some(DecisionRecord {
            at: first.to_rfc3339_opts(SecondsFormat::Millis, true),
            source: TALLIED_SOURCES[self.slot],
            artifact: self.key.artifact.clone(),
            image: verdict.artifact.image.clone(),
            environment: self.key.environment.clone(),
            allowed: verdict.allowed,
            codes: deny_codes(verdict),
            cached: true,
            latency_us: tally.max_latency_us.swap(0, Ordering::Relaxed),
            policy_digest: verdict.policy_digest.clone(),
            count,
            until: Some(now.to_rfc3339_opts(SecondsFormat::Millis, true)),
        })
    }
}

/// The decision log: a bounded queue to one writer task that appends batches to the store,
/// and the tallies of cache hits, which the writer turns into rows on each round.
struct DecisionLog {
    tx: mpsc::Sender<DecisionRecord>,
    tallied: Arc<Mutex<Vec<Tallied>>>,
    dropped: AtomicU64,
}

/// Every row the writer has now: queued decisions and tallied hits.
fn drain(batch: &mut Vec<DecisionRecord>, tallied: &Mutex<Vec<Tallied>>) -> Vec<DecisionRecord> {
    let taken = std::mem::take(&mut *tallied.lock().unwrap_or_else(PoisonError::into_inner));
    let mut records = std::mem::take(batch);
    if !taken.is_empty() {
        let now = Utc::now();
        records.extend(taken.iter().filter_map(|t| t.take(&now)));
    }
    records
}

/// Deletes decision rows older than `retention`, [`PRUNE_BATCH`] at a time, yielding
/// between statements; returns how many went.
async fn prune(store: &Arc<dyn EvidenceStore>, retention: Duration) -> Result<u64, String> {
    let Ok(age) = chrono::Duration::from_std(retention) else {
        return Ok(0);
    };
    let Some(cutoff) = Utc::now().checked_sub_signed(age) else {
        return Ok(0);
    };
    let before = cutoff.to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut total = 0;
    loop {
        let (store, before) = (store.clone(), before.clone());
        let n = tokio::task::spawn_blocking(move || store.prune_decisions(&before, PRUNE_BATCH))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        total += n;
        if n < PRUNE_BATCH {
            return Ok(total);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl DecisionLog {
    fn start(store: Arc<dyn EvidenceStore>, retention: Option<Duration>) -> DecisionLog {
        let (tx, mut rx) = mpsc::channel::<DecisionRecord>(DECISION_QUEUE);
        let tallied: Arc<Mutex<Vec<Tallied>>> = Arc::default();
        let hits = tallied.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(DECISION_BATCH);
            // The first pass runs at start.
            let mut pruned_at: Option<Instant> = None;
            loop {
                if let Some(retention) = retention
                    && pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY)
                {
                    pruned_at = Some(Instant::now());
                    match prune(&store, retention).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(
                            deleted = n,
                            retention_s = retention.as_secs(),
                            "decision log pruned"
                        ),
                        Err(e) => tracing::warn!(error = %e, "pruning the decision log failed"),
                    }
                }
                // Wakes for queued decisions, or after a pause for tallied hits alone.
                let open = match tokio::time::timeout(
                    DECISION_PAUSE,
                    rx.recv_many(&mut batch, DECISION_BATCH),
                )
                .await
                {
                    Ok(n) => n > 0,
                    Err(_) => true,
                };
                let records = drain(&mut batch, &hits);
                let n = records.len();
                if n > 0 {
                    let store = store.clone();
                    match tokio::task::spawn_blocking(move || store.append_decisions(&records))
                        .await
                    {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, lost = n, "decision log write failed");
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, lost = n, "decision log writer failed")
                        }
                    }
                }
                if !open {
                    return;
                }
                if n > 0 && n < DECISION_BATCH {
                    tokio::time::sleep(DECISION_PAUSE).await;
                }
            }
        });
        DecisionLog {
            tx,
            tallied,
            dropped: AtomicU64::new(0),
        }
    }

    /// Hands a decision with a fresh tally to the writer.
    fn register(&self, tallied: Tallied) {
        self.tallied
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(tallied);
    }

    /// Never waits: a full queue drops the record and counts it.
    fn push(&self, record: DecisionRecord) {
        if self.tx.try_send(record).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(
                    dropped = n,
                    "decision log queue full: decisions dropped from the decisions table (still in this log)"
                );
            }
        }
    }
}

/// The gate as the server runs it.
pub(crate) struct GateService {
    /// The policy and trust set: swapped whole by a reload.
    gate: RwLock<Arc<Gate>>,
    store: Arc<dyn EvidenceStore>,
    cache: DecisionCache,
    /// Earlier verification results (same bundle bytes, artifact and trust set), in memory
    /// and in the store.
    verified: Arc<VerificationCache>,
    environment: Option<String>,
    stage: Option<String>,
    vsa: Option<VsaSigner>,
    log: Log,
    decisions: DecisionLog,
    /// Decisions verified at once (CPU work on the blocking pool).
    permits: Semaphore,
    metrics: OnceLock<Arc<crate::metrics::Metrics>>,
    revocations: OnceLock<Arc<custody_release::service::SharedRevocations>>,
    /// The release service, for the release state of mapped namespaces' environments.
    releases: OnceLock<Arc<custody_release::service::ReleaseService>>,
}

impl GateService {
    /// Must be called inside the runtime (it starts the decision-log writer).
    pub(crate) fn start(
        config: GateConfig,
        store: Arc<dyn EvidenceStore>,
        log: Log,
    ) -> GateService {
        let threads = std::thread::available_parallelism().map_or(2, usize::from);
        let shared = Arc::new(StoreResults(store.clone()));
        GateService {
            gate: RwLock::new(Arc::new(config.gate)),
            decisions: DecisionLog::start(store.clone(), config.decision_retention),
            store,
            cache: DecisionCache {
                ttl: config.cache_ttl,
                epoch: AtomicU64::new(0),
                map: RwLock::new(HashMap::new()),
            },
            verified: Arc::new(VerificationCache::with_shared(
                config.verified_cache,
                shared,
            )),
            environment: config.environment,
            stage: config.stage,
            vsa: config.vsa,
            log,
            permits: Semaphore::new(threads * 2),
            metrics: OnceLock::new(),
            revocations: OnceLock::new(),
            releases: OnceLock::new(),
        }
    }

    /// Reads release states from `service` for decisions that follow releases.
    pub(crate) fn set_releases(&self, service: Arc<custody_release::service::ReleaseService>) {
        let _ = self.releases.set(service);
    }

    /// The environment admission in `namespace` follows (release config `namespaces`) with
    /// its stage, or `None` for an unmapped namespace (or a server without releases).
    pub(crate) fn namespace_environment(&self, namespace: &str) -> Option<EnvironmentRef> {
        let service = self.releases.get()?;
        let config = service.config();
        let env = config.environment_for_namespace(namespace)?;
        Some(EnvironmentRef {
            name: env.name.clone(),
            stage: env.stage.clone(),
            approvals: None,
        })
    }

    /// Applies these revocations to every decision from now on.
    pub(crate) fn set_revocations(&self, shared: Arc<custody_release::service::SharedRevocations>) {
        let _ = self.revocations.set(shared);
    }

    /// Counts every decision from now on in `metrics`.
    pub(crate) fn set_metrics(&self, metrics: Arc<crate::metrics::Metrics>) {
        let _ = metrics.gate_verified.set(self.verified.clone());
        let _ = self.metrics.set(metrics);
    }

    /// Applies a change from the feed (any replica's): drops the cached decisions it makes
    /// stale, and for [`Change::All`] the verification results kept in memory too. Release
    /// changes drop every cached decision (policy may read any environment's release state).
    pub(crate) fn apply(&self, change: &Change) -> usize {
        let (kind, dropped) = match change {
            Change::Evidence(d) => ("evidence", self.cache.invalidate(Some(d))),
            Change::Decisions(d) => ("decisions", self.cache.invalidate(Some(d))),
            Change::Release(_) => ("release", self.cache.invalidate(None)),
            Change::All => {
                self.verified.clear();
                ("all", self.cache.invalidate(None))
            }
        };
        if let Some(metrics) = self.metrics.get() {
            metrics.gate_change(kind);
        }
        tracing::debug!(change = %change.encode(), dropped, "gate cache change applied");
        dropped
    }

    /// Applies every change the store's feed delivers, on a thread of its own, for as long
    /// as the gate lives.
    pub(crate) fn follow(self: &Arc<Self>) {
        let changes = self.store.subscribe();
        let gate = Arc::downgrade(self);
        let runtime = tokio::runtime::Handle::try_current().ok();
        let spawned = std::thread::Builder::new()
            .name("custody-gate-changes".to_owned())
            .spawn(move || {
                loop {
                    match changes.recv_timeout(Duration::from_secs(1)) {
                        Ok(change) => match gate.upgrade() {
                            Some(gate) => {
                                gate.follow_release(&change, runtime.as_ref());
                                gate.apply(&change);
                            }
                            None => return,
                        },
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                            if gate.strong_count() == 0 {
                                return;
                            }
                        }
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot follow the change feed: other replicas' invalidations will not reach this one");
        }
    }

    /// Another replica's change, as the release side of this one sees it: new evidence or
    /// decisions about a digest (an approval) make the release states admission keeps stale;
    /// a change to everything (a promotion, rollback, quarantine, revocation, rotation or
    /// retirement there) also means reloading the revocations and key retirements from the
    /// store, after which the decisions cached meanwhile (on the old revocations) go too.
    fn follow_release(self: &Arc<Self>, change: &Change, runtime: Option<&tokio::runtime::Handle>) {
        let Some(service) = self.releases.get() else {
            return;
        };
        service.forget_release_states();
        if !matches!(change, Change::All | Change::Release(_)) {
            return;
        }
        let Some(runtime) = runtime else {
            tracing::warn!(
                "no runtime to reload revocations on: they reach this replica at its next reconcile"
            );
            return;
        };
        let (service, gate) = (service.clone(), self.clone());
        runtime.spawn(async move {
            if let Err(e) = service.refresh().await {
                tracing::warn!(error = %e, "cannot reload revocations and key retirements after another replica's change; deciding on the ones in force");
            }
            gate.cache.invalidate(None);
        });
    }

    /// The environment for a request: its own name and stage, else the configured ones.
    pub(crate) fn environment(
        &self,
        name: Option<String>,
        stage: Option<String>,
    ) -> Option<EnvironmentRef> {
        let stage = stage.or_else(|| self.stage.clone());
        match name.or_else(|| self.environment.clone()) {
            Some(name) => Some(EnvironmentRef {
                name,
                stage,
                approvals: None,
            }),
            None => stage.map(|stage| EnvironmentRef {
                name: String::new(),
                stage: Some(stage),
                approvals: None,
            }),
        }
    }

    /// The policy and trust set in force.
    pub(crate) fn gate(&self) -> Arc<Gate> {
        self.gate
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the policy and trust set (a reload) and drops every cached decision: a
    /// decision sees the old gate or the new one, and one decided on the old gate is not
    /// cached after the swap (the cache's epoch moved).
    pub(crate) fn replace(&self, gate: Gate) {
        *self.gate.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(gate);
        self.cache.invalidate(None);
    }

    fn cache_key(
        &self,
        gate: &Gate,
        subject: &Subject,
        environment: Option<&EnvironmentRef>,
        releases: bool,
    ) -> CacheKey {
        CacheKey {
            artifact: match (&subject.digest, &subject.image) {
                (Some(d), _) => d.to_string(),
                (None, Some(image)) => format!("image:{image}"),
                (None, None) => String::new(),
            },
            policy: gate.policy.digest(),
            root: gate.trust.root_digest,
            environment: environment.map(|e| e.name.clone()),
            stage: environment.and_then(|e| e.stage.clone()),
            releases,
        }
    }

    /// The cached decision for `subject`, if there is a fresh one (logged like any decision):
    /// the admission webhook answers cache hits without spawning a task per image.
    pub(crate) fn cached(
        &self,
        subject: &Subject,
        environment: Option<&EnvironmentRef>,
        releases: bool,
        source: &'static str,
    ) -> Option<Arc<Decided>> {
        if self.cache.ttl.is_zero() {
            return None;
        }
        let started = Instant::now();
        let key = self.cache_key(&self.gate(), subject, environment, releases);
        let hit = self.cache.get(&key)?;
        self.record_hit(&hit, &key, started.elapsed(), source);
        Some(hit)
    }

    /// Decides (or answers from the cache), then logs the decision. With `releases`, the
    /// environment's release state goes into the policy input (admission in a mapped
    /// namespace); an environment without releases decides as without.
    pub(crate) async fn decide(
        &self,
        subject: Subject,
        environment: Option<EnvironmentRef>,
        releases: bool,
        source: &'static str,
    ) -> Result<(Arc<Decided>, bool), GateError> {
        let started = Instant::now();
        let gate = self.gate();
        let key = self.cache_key(&gate, &subject, environment.as_ref(), releases);
        let (decided, cached) = match self.cache.get(&key) {
            Some(hit) => {
                self.record_hit(&hit, &key, started.elapsed(), source);
                return Ok((hit, true));
            }
            None => {
                let epoch = self.cache.epoch();
                // Read after the epoch: a release change from here on keeps this verdict
                // out of the cache.
                let release = match (releases, &subject.digest, &environment) {
                    (true, Some(digest), Some(env)) => {
                        self.release_state(&env.name, digest).await?
                    }
                    _ => None,
                };
                let permit = self
                    .permits
                    .acquire()
                    .await
                    .map_err(|e| GateError::Task(e.to_string()))?;
                let store = self.store.clone();
                let verified = self.verified.clone();
                let env = environment.clone();
                let (revoked, retired) = self
                    .revocations
                    .get()
                    .map(|r| (r.get(), r.retired()))
                    .unwrap_or_default();
                let verdict = tokio::task::spawn_blocking(move || {
                    decide_blocking(
                        &gate,
                        store.as_ref(),
                        &verified,
                        &subject,
                        env,
                        ReleaseFacts {
                            revoked,
                            retired,
                            release,
                        },
                    )
                })
                .await
                .map_err(|e| GateError::Task(e.to_string()))??;
                drop(permit);
                // A timeout says how this evaluation went (on a busy host it may be
                // transient), not what the artifact is: it denies now and is not reused.
                let timed_out = verdict.timed_out();
                let decided = Arc::new(Decided::new(verdict));
                if !timed_out {
                    self.cache.insert(key.clone(), decided.clone(), epoch);
                }
                (decided, false)
            }
        };
        self.record(&decided.verdict, &key, cached, started.elapsed(), source);
        Ok((decided, cached))
    }

    /// The release state for admitting `digest` to `environment`, from the release service.
    async fn release_state(
        &self,
        environment: &str,
        digest: &Sha256Digest,
    ) -> Result<Option<custody_policy::release::ReleaseState>, GateError> {
        let Some(service) = self.releases.get() else {
            return Ok(None);
        };
        service
            .release_state(environment, digest)
            .await
            .map_err(|e| GateError::Release {
                environment: environment.to_owned(),
                message: e.to_string(),
            })
    }

    /// Logs a cache hit: counted on the decision (the writer turns the counts into rows), or
    /// queued like a fresh decision for a source that is not tallied.
    fn record_hit(
        &self,
        hit: &Arc<Decided>,
        key: &CacheKey,
        latency: Duration,
        source: &'static str,
    ) {
        let Some(slot) = TALLIED_SOURCES.iter().position(|s| *s == source) else {
            self.record(&hit.verdict, key, true, latency, source);
            return;
        };
        let latency_us = self.observe(&hit.verdict, key, true, latency, source);
        if hit.hits[slot].hit(latency_us) {
            self.decisions.register(Tallied {
                decided: hit.clone(),
                key: key.clone(),
                slot,
            });
        }
    }

    /// What every decision gets, fresh or cached: the metrics and a `gate decision` line.
    /// Returns the latency in µs.
    fn observe(
        &self,
        verdict: &Verdict,
        key: &CacheKey,
        cached: bool,
        latency: Duration,
        source: &'static str,
    ) -> u64 {
        let latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        if let Some(metrics) = self.metrics.get() {
            metrics.decision(verdict, latency, !cached);
        }
        tracing::info!(
            source,
            artifact = %key.artifact,
            image = verdict.artifact.image.as_deref().unwrap_or(""),
            env = key.environment.as_deref().unwrap_or(""),
            allowed = verdict.allowed,
            codes = %deny_codes(verdict),
            cached,
            latency_us,
            "gate decision"
        );
        latency_us
    }

    fn record(
        &self,
        verdict: &Verdict,
        key: &CacheKey,
        cached: bool,
        latency: Duration,
        source: &'static str,
    ) {
        let latency_us = self.observe(verdict, key, cached, latency, source);
        self.decisions.push(DecisionRecord {
            at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            source,
            artifact: key.artifact.clone(),
            image: verdict.artifact.image.clone(),
            environment: key.environment.clone(),
            allowed: verdict.allowed,
            codes: deny_codes(verdict),
            cached,
            latency_us,
            policy_digest: verdict.policy_digest.clone(),
            count: 1,
            until: None,
        });
    }

    /// Whether a VSA signing key is configured.
    pub(crate) fn signs_vsas(&self) -> bool {
        self.vsa.is_some()
    }

    /// The signed VSA bundle for an allowed decision (made once per cached decision, and then
    /// submitted to this server's own log in the background), when a gate key is configured.
    pub(crate) fn vsa(&self, decided: &Decided) -> Option<Json> {
        let signer = self.vsa.as_ref()?;
        if !decided.verdict.allowed {
            return None;
        }
        decided
            .vsa
            .get_or_init(|| match sign_vsa(signer, &decided.verdict) {
                Ok(Some(signed)) => {
                    let bundle = signed.bundle().to_value();
                    self.submit_to_log(signed);
                    Some(bundle)
                }
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot sign the VSA");
                    None
                }
            })
            .clone()
    }

    /// Logs a signed VSA in this server's own log, through the one sign-and-log path
    /// (`custody_core::sign`): admitted in process, receipt checked.
    fn submit_to_log(&self, signed: Signed) {
        let log = self.log.clone();
        tokio::spawn(async move {
            let log_id = log.verifier().vkey().map(|vkey| {
                crate::identity::LogIdentity {
                    origin: log.origin().to_owned(),
                    vkey,
                    key_created: Utc::now(),
                }
                .log_id()
                .to_vec()
            });
            let appender = InProcessLog {
                log: &log,
                log_id: log_id.unwrap_or_default(),
            };
            match signed.log_async(&appender).await {
                Ok(bundle) => {
                    let index = bundle.verification_material.tlog_entries.first();
                    tracing::info!(index = index.map(|e| e.log_index), "VSA logged");
                }
                Err(e) => tracing::warn!(error = %e, "cannot log the VSA"),
            }
        });
    }
}

/// What the release side adds to a decision: the revocations and key retirements in force,
/// and the environment's release state (admission in a mapped namespace).
struct ReleaseFacts {
    revoked: Arc<Vec<custody_policy::input::RevokedTarget>>,
    retired: Arc<Vec<custody_policy::input::RetiredKey>>,
    release: Option<custody_policy::release::ReleaseState>,
}

/// The one way to make every replica's gate forget what a change makes stale: applies the
/// change to this replica's gate at once, then publishes it on the evidence store's change
/// feed (PostgreSQL NOTIFY: every replica on the database, within milliseconds). Release
/// events (revocation, quarantine, retirement, new release) call [`publish`](Self::publish)
/// or [`publish_in_background`](Self::publish_in_background).
#[derive(Clone)]
pub struct Invalidator {
    gate: Option<Arc<GateService>>,
    store: Arc<dyn EvidenceStore>,
}

impl std::fmt::Debug for Invalidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invalidator")
            .field("gate", &self.gate.is_some())
            .finish_non_exhaustive()
    }
}

impl Invalidator {
    pub(crate) fn new(gate: Option<Arc<GateService>>, store: Arc<dyn EvidenceStore>) -> Self {
        Invalidator { gate, store }
    }

    /// Applies `change` here and publishes it to every replica; returns how many cached
    /// decisions this replica dropped. An error means the other replicas were not told
    /// (this one was): the caller should report it and retry.
    pub async fn publish(&self, change: Change) -> Result<usize, StoreError> {
        let dropped = self.gate.as_ref().map_or(0, |g| g.apply(&change));
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.publish(&change))
            .await
            .map_err(|e| StoreError::Backend(format!("publishing a change: {e}")))??;
        Ok(dropped)
    }

    /// [`publish`](Self::publish) from synchronous code: applies `change` here now and
    /// publishes it on a blocking thread (a failure is logged). Works inside and outside the
    /// runtime.
    pub fn publish_in_background(&self, change: Change) {
        if let Some(gate) = &self.gate {
            gate.apply(&change);
        }
        let store = self.store.clone();
        let send = move || {
            if let Err(e) = store.publish(&change) {
                tracing::warn!(error = %e, change = %change.encode(), "cannot tell the other replicas about a change: their cached decisions may stay stale until their TTL");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(send)),
            Err(_) => send(),
        }
    }
}

/// The verification cache's shared tier: successful results in the evidence store, read by
/// every replica. A failed read is a miss (verify again); a failed write is logged.
#[derive(Debug)]
pub(crate) struct StoreResults(pub(crate) Arc<dyn EvidenceStore>);

fn verified_key(key: &ResultKey) -> VerifiedKey {
    VerifiedKey {
        bundle: key.bundle,
        artifact: key.artifact,
        trust: key.trust,
        source: key.source.clone(),
    }
}

impl SharedResults for StoreResults {
    fn load(&self, key: &ResultKey) -> Option<Vec<u8>> {
        match self.0.verified(&verified_key(key)) {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read shared verification results: verifying");
                None
            }
        }
    }

    fn store(&self, key: &ResultKey, bytes: &[u8]) {
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        if let Err(e) = self.0.put_verified(&verified_key(key), bytes, &now) {
            tracing::warn!(error = %e, "cannot store a verification result for other replicas");
        }
    }
}

fn decide_blocking(
    gate: &Gate,
    store: &dyn EvidenceStore,
    verified: &VerificationCache,
    subject: &Subject,
    environment: Option<EnvironmentRef>,
    facts: ReleaseFacts,
) -> Result<Verdict, GateError> {
    let candidates: Vec<Candidate> = match &subject.digest {
        Some(digest) => store
            .for_artifact(digest)?
            .into_iter()
            .map(|b| Candidate {
                source: format!("evidence:{}", b.bundle_digest),
                bytes: b.bytes,
            })
            .collect(),
        None => Vec::new(),
    };
    let request = Request {
        artifact: ArtifactRef {
            digest: subject.digest.map(|d| d.to_string()),
            name: subject.name.clone(),
            image: subject.image.clone(),
        },
        bytes: None,
        environment,
        time: Utc::now(),
        revocations: facts.revoked,
        retired: facts.retired,
        release: facts.release,
        ..Default::default()
    };
    Ok(gate.decide_with(&request, &candidates, Some(verified))?)
}

/// Why a VSA could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum VsaError {
    #[error("signing the VSA: {0}")]
    Sign(#[from] SignError),
}

/// Signs the VSA for `verdict`: the bundle and the Rekor v2 request that logs it.
fn sign_vsa(signer: &VsaSigner, verdict: &Verdict) -> Result<Option<Signed>, VsaError> {
    let Some(statement) =
        custody_policy::vsa::summary(verdict, &signer.verifier_id, &signer.policy_uri)
    else {
        return Ok(None);
    };
    Ok(Some(sign_statement(&signer.key, &statement)?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn decided() -> Arc<Decided> {
        Arc::new(Decided::new(Verdict {
            allowed: true,
            artifact: ArtifactRef {
                digest: None,
                name: None,
                image: None,
            },
            environment: None,
            policy_digest: String::new(),
            trust_root_digest: None,
            denies: vec![],
            warnings: vec![],
            evidence: vec![],
            rejected: vec![],
            verified_levels: vec![],
            evaluated_at: Utc::now(),
        }))
    }

    fn key(artifact: &str) -> CacheKey {
        CacheKey {
            artifact: artifact.into(),
            policy: Sha256Digest::of(b"p"),
            root: None,
            environment: None,
            stage: None,
            releases: false,
        }
    }

    #[test]
    fn cache_keys_name_digests_as_users_do() {
        let d = Sha256Digest::of(b"x");
        assert_eq!(d.to_string(), format!("sha256:{}", d.hex()));
    }

    #[test]
    fn tallied_hits_are_each_logged_once() {
        let decided = decided();
        let registry: Arc<Mutex<Vec<Tallied>>> = Arc::default();
        let (threads, per_thread) = (4, 20_000u64);
        let hitters: Vec<_> = (0..threads)
            .map(|_| {
                let (decided, registry) = (decided.clone(), registry.clone());
                std::thread::spawn(move || {
                    for i in 0..per_thread {
                        if decided.hits[0].hit(i % 7) {
                            registry.lock().unwrap().push(Tallied {
                                decided: decided.clone(),
                                key: key("a"),
                                slot: 0,
                            });
                        }
                    }
                })
            })
            .collect();
        // The writer takes rows while the hits go on.
        let mut rows = Vec::new();
        while !hitters.iter().all(std::thread::JoinHandle::is_finished) {
            rows.extend(drain(&mut Vec::new(), &registry));
        }
        for h in hitters {
            h.join().unwrap();
        }
        rows.extend(drain(&mut Vec::new(), &registry));
        let logged: u64 = rows.iter().map(|r| r.count).sum();
        assert_eq!(logged, threads * per_thread);
        assert!(
            rows.iter()
                .all(|r| r.cached && r.source == "admission" && r.until.is_some())
        );
        assert!(rows.iter().all(|r| r.latency_us <= 6));
        // Nothing left: a further round writes nothing.
        assert!(drain(&mut Vec::new(), &registry).is_empty());
        assert_eq!(decided.hits[1].count.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn cache_expires_invalidates_and_skips_stale_inserts() {
        let cache = DecisionCache {
            ttl: Duration::from_secs(60),
            epoch: AtomicU64::new(0),
            map: RwLock::new(HashMap::new()),
        };
        let a = Sha256Digest::of(b"a");
        cache.insert(key(&a.to_string()), decided(), cache.epoch());
        cache.insert(key("other"), decided(), cache.epoch());
        assert!(cache.get(&key(&a.to_string())).is_some());
        assert_eq!(cache.invalidate(Some(&a)), 1);
        assert!(cache.get(&key(&a.to_string())).is_none());
        assert!(cache.get(&key("other")).is_some());
        // A decision started before an invalidation is not cached.
        let epoch = cache.epoch();
        cache.invalidate(None);
        cache.insert(key("late"), decided(), epoch);
        assert!(cache.get(&key("late")).is_none());
        assert!(cache.get(&key("other")).is_none());
        let off = DecisionCache {
            ttl: Duration::ZERO,
            epoch: AtomicU64::new(0),
            map: RwLock::new(HashMap::new()),
        };
        off.insert(key("x"), decided(), 0);
        assert!(off.get(&key("x")).is_none());
    }
}
