//! The shared backend: one PostgreSQL database for every `custody serve` replica (usually the
//! one the log and the release store use; the tables are prefixed `evidence_`).
//!
//! Blocking: it uses the `postgres` crate, whose client drives its own small tokio runtime.
//! Call it on a blocking thread (`tokio::task::spawn_blocking`, or any thread outside tokio),
//! never on an async worker thread. [`connect`](PostgresEvidenceStore::connect) is for
//! start-up (outside the runtime); dropping the store is safe anywhere.
//!
//! Connections, by role as in the SQLite backend: one writer for evidence (each put is a
//! transaction with `synchronous_commit = on`: acknowledged evidence is durable), one for the
//! decision log and the verified-results cache (`synchronous_commit = off`: a crash may lose
//! the last decisions, never evidence), and [`READERS`] readers, so concurrent decisions read
//! in parallel. A connection that failed as lost is reopened on next use; a read that failed
//! on a lost connection is retried once on a new one. A write is never retried (its COMMIT may
//! have happened); the caller gets the error.
//!
//! The change feed is `LISTEN`/`NOTIFY` on [`crate::feed::CHANNEL`], received by a thread of
//! the store's own with a dedicated connection.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use custody_core::digest::Sha256Digest;
use fallible_iterator::FallibleIterator as _;
use postgres::{Client, Config, NoTls};

use crate::feed::{CHANNEL, Change, NOBODY, Subscribers, decode_from, encode_from};
use crate::{DecisionRecord, EvidenceStore, StoreError, Stored, StoredBundle, VerifiedKey};

/// Reader connections (decisions look evidence up in parallel).
pub const READERS: usize = 4;

/// The connect timeout when the URL sets none.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the listener looks whether the store was dropped.
const LISTEN_POLL: Duration = Duration::from_millis(250);

/// How long the listener waits before reconnecting.
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);

/// Serialises schema creation across processes (`pg_advisory_xact_lock` key, "custevd1").
const SCHEMA_LOCK: i64 = 0x6375_7374_6576_6431;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS evidence_bundles (
    seq BIGSERIAL NOT NULL,
    bundle_digest TEXT PRIMARY KEY,
    bytes BYTEA NOT NULL,
    added_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS evidence_subjects (
    artifact_digest TEXT NOT NULL,
    bundle_digest TEXT NOT NULL,
    PRIMARY KEY (artifact_digest, bundle_digest)
);
CREATE TABLE IF NOT EXISTS evidence_decisions (
    id BIGSERIAL PRIMARY KEY,
    at TEXT NOT NULL,
    source TEXT NOT NULL,
    artifact TEXT NOT NULL,
    image TEXT,
    environment TEXT,
    allowed BOOLEAN NOT NULL,
    codes TEXT NOT NULL,
    cached BOOLEAN NOT NULL,
    latency_us BIGINT NOT NULL,
    policy_digest TEXT NOT NULL,
    count BIGINT NOT NULL DEFAULT 1,
    until TEXT
);
CREATE INDEX IF NOT EXISTS evidence_decisions_at ON evidence_decisions (at);
CREATE TABLE IF NOT EXISTS evidence_verified (
    bundle_digest TEXT NOT NULL,
    artifact_digest TEXT NOT NULL,
    trust_digest TEXT NOT NULL,
    source TEXT NOT NULL,
    result BYTEA NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (bundle_digest, artifact_digest, trust_digest, source)
);
";

/// The evidence store in a PostgreSQL database.
pub struct PostgresEvidenceStore {
    config: Config,
    /// The URL without its password, for messages.
    target: String,
    writer: Mutex<Option<Client>>,
    decisions: Mutex<Option<Client>>,
    readers: Vec<Mutex<Option<Client>>>,
    next_reader: AtomicUsize,
    feed: Arc<Subscribers>,
    /// This store's identity on the feed (its own changes are not delivered back).
    origin: u64,
    /// Tells the listener thread to stop.
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for PostgresEvidenceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresEvidenceStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// A PostgreSQL error with the server's message and code, on one line.
fn describe(err: &postgres::Error) -> String {
    let text = match err.as_db_error() {
        Some(db) => format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        ),
        None => match std::error::Error::source(err) {
            Some(source) => format!("{err}: {source}"),
            None => err.to_string(),
        },
    };
    text.replace(['\n', '\r'], " ")
}

/// Whether `err` says the connection is unusable (closed, network, SQLSTATE 08xxx, 57Pxx).
fn connection_lost(err: &postgres::Error) -> bool {
    if err.is_closed() {
        return true;
    }
    match err.code() {
        Some(code) => {
            let code = code.code();
            code.starts_with("08") || code.starts_with("57P")
        }
        None => std::error::Error::source(err).is_some_and(|s| s.is::<std::io::Error>()),
    }
}

fn lock(slot: &Mutex<Option<Client>>) -> MutexGuard<'_, Option<Client>> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

fn digest_text(d: &Sha256Digest) -> String {
    d.to_string()
}

impl PostgresEvidenceStore {
    /// Parses `url` (`postgres://user:password@host:port/db?...`), connects, creates the
    /// schema if needed (safe with several processes starting at once) and starts listening
    /// for changes. TLS is not supported yet: use a local socket or a private network.
    pub fn connect(url: &str) -> Result<PostgresEvidenceStore, StoreError> {
        let target = crate::redact(url);
        let mut config = Config::from_str(url).map_err(|e| {
            StoreError::Backend(format!(
                "postgres {target}: not a valid PostgreSQL connection URL: {}",
                describe(&e)
            ))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("custody-evidence");
        }
        let store = PostgresEvidenceStore {
            config,
            target,
            writer: Mutex::new(None),
            decisions: Mutex::new(None),
            readers: (0..READERS).map(|_| Mutex::new(None)).collect(),
            next_reader: AtomicUsize::new(0),
            feed: Arc::default(),
            origin: crate::feed::new_origin(),
            stop: Arc::new(AtomicBool::new(false)),
        };
        store.write(&store.writer, true, "cannot create the schema", |tx| {
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
            tx.batch_execute(SCHEMA)
        })?;
        store.listen()?;
        Ok(store)
    }

    fn error(&self, what: &str, err: &postgres::Error) -> StoreError {
        StoreError::Backend(format!(
            "postgres {}: {what}: {}",
            self.target,
            describe(err)
        ))
    }

    fn connect_one(&self) -> Result<Client, postgres::Error> {
        self.config.connect(NoTls)
    }

    /// Runs `f` on the connection in `slot` (opened if needed). A read (`retry`) that failed
    /// on a reused connection that turned out lost runs once more on a new one.
    fn run<T>(
        &self,
        slot: &Mutex<Option<Client>>,
        retry: bool,
        what: &str,
        f: impl Fn(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        self.run_locked(&mut lock(slot), retry, what, &f)
    }

    /// Runs `f` in one transaction on the connection in `slot`; `durable` waits for the
    /// server's flush on COMMIT whatever its default.
    fn write<T>(
        &self,
        slot: &Mutex<Option<Client>>,
        durable: bool,
        what: &str,
        f: impl Fn(&mut postgres::Transaction<'_>) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        self.run(slot, false, what, |client| {
            let mut tx = client.transaction()?;
            tx.batch_execute(if durable {
                "SET LOCAL synchronous_commit = on"
            } else {
                "SET LOCAL synchronous_commit = off"
            })?;
            let value = f(&mut tx)?;
            tx.commit()?;
            Ok(value)
        })
    }

    /// A read on a free reader connection (or, when all are busy, the next one in turn).
    fn read<T>(
        &self,
        what: &str,
        f: impl Fn(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..READERS {
            let slot = &self.readers[(start + i) % READERS];
            if let Ok(mut guard) = slot.try_lock() {
                return self.run_locked(&mut guard, true, what, &f);
            }
        }
        self.run_locked(&mut lock(&self.readers[start % READERS]), true, what, &f)
    }

    fn run_locked<T>(
        &self,
        guard: &mut MutexGuard<'_, Option<Client>>,
        retry: bool,
        what: &str,
        f: &impl Fn(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        for attempt in 0..2 {
            let reused = guard.as_ref().is_some_and(|c| !c.is_closed());
            if !reused {
                **guard = Some(self.connect_one().map_err(|e| self.error(what, &e))?);
            }
            let Some(client) = guard.as_mut() else {
                continue;
            };
            match f(client) {
                Ok(value) => return Ok(value),
                Err(e) if connection_lost(&e) => {
                    close(guard.take());
                    if !(retry && reused && attempt == 0) {
                        return Err(self.error(what, &e));
                    }
                }
                Err(e) => return Err(self.error(what, &e)),
            }
        }
        Err(StoreError::Backend(format!(
            "postgres {}: {what}: the connection was lost twice",
            self.target
        )))
    }

    /// Starts the listener thread and waits until it listens (so a change published after
    /// `connect` returns is never missed).
    fn listen(&self) -> Result<(), StoreError> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let config = self.config.clone();
        let feed = self.feed.clone();
        let stop = self.stop.clone();
        let target = self.target.clone();
        let origin = self.origin;
        std::thread::Builder::new()
            .name("custody-evidence-listen".to_owned())
            .spawn(move || listener(&config, &feed, origin, &stop, &target, ready_tx))
            .map_err(|e| {
                StoreError::Backend(format!(
                    "postgres {}: cannot start the change listener: {e}",
                    self.target
                ))
            })?;
        match ready_rx.recv_timeout(CONNECT_TIMEOUT + Duration::from_secs(5)) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.stop.store(true, Ordering::Release);
                Err(StoreError::Backend(format!(
                    "postgres {}: cannot listen for changes: {e}",
                    self.target
                )))
            }
            Err(_) => {
                self.stop.store(true, Ordering::Release);
                Err(StoreError::Backend(format!(
                    "postgres {}: the change listener did not start",
                    self.target
                )))
            }
        }
    }
}

/// The listener: `LISTEN` on a connection of its own, every notification to the local
/// subscribers; on a lost connection, reconnect and deliver [`Change::All`].
fn listener(
    config: &Config,
    feed: &Subscribers,
    origin: u64,
    stop: &AtomicBool,
    target: &str,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
) {
    let mut ready = Some(ready);
    while !stop.load(Ordering::Acquire) {
        let client = config
            .connect(NoTls)
            .and_then(|mut c| c.batch_execute(&format!("LISTEN {CHANNEL}")).map(|()| c));
        let mut client = match client {
            Ok(c) => c,
            Err(e) => {
                match ready.take() {
                    Some(tx) => {
                        let _ = tx.send(Err(describe(&e)));
                        return;
                    }
                    None => tracing_warn(target, &describe(&e)),
                }
                std::thread::sleep(RECONNECT_PAUSE);
                continue;
            }
        };
        match ready.take() {
            Some(tx) => {
                let _ = tx.send(Ok(()));
            }
            // Whatever was published while no one listened is unknown: forget everything.
            None => feed.send(NOBODY, &Change::All),
        }
        loop {
            if stop.load(Ordering::Acquire) {
                close(Some(client));
                return;
            }
            let next = client.notifications().timeout_iter(LISTEN_POLL).next();
            match next {
                Ok(Some(note)) => match decode_from(note.payload()) {
                    (Some(from), _) if from == origin => {}
                    (_, change) => feed.send(NOBODY, &change),
                },
                Err(e) => {
                    tracing_warn(target, &describe(&e));
                    break;
                }
                Ok(None) if client.is_closed() => break,
                Ok(None) => {}
            }
        }
        close(Some(client));
        // The gap starts now: the next connection delivers Change::All.
        feed.send(NOBODY, &Change::All);
    }
}

/// No `tracing` dependency here: the lost feed is reported on stderr (rare, and the server
/// recovers on its own).
fn tracing_warn(target: &str, error: &str) {
    eprintln!(
        "custody-evidence: postgres {target}: change listener lost its connection ({error}); reconnecting"
    );
}

/// Closes a client. Closing one blocks on its own runtime, which panics on an async thread of
/// a tokio runtime: there, it is closed on a thread of its own.
fn close(client: Option<Client>) {
    let Some(client) = client else {
        return;
    };
    if tokio::runtime::Handle::try_current().is_err() {
        drop(client);
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("custody-evidence-close".to_owned())
        .spawn(move || drop(client));
    // No thread: the connection is dropped with the process (nothing to do).
    drop(spawned);
}

impl Drop for PostgresEvidenceStore {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        close(lock(&self.writer).take());
        close(lock(&self.decisions).take());
        for slot in &self.readers {
            close(lock(slot).take());
        }
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl EvidenceStore for PostgresEvidenceStore {
    fn put(
        &self,
        bytes: &[u8],
        subjects: &[Sha256Digest],
        now: &str,
    ) -> Result<Stored, StoreError> {
        let bundle_digest = Sha256Digest::of(bytes);
        let key = bundle_digest.to_string();
        let subject_keys: Vec<String> = subjects.iter().map(digest_text).collect();
        let inserted = self.write(
            &self.writer,
            true,
            &format!("cannot store bundle {key}"),
            |tx| {
                let n = tx.execute(
                    "INSERT INTO evidence_bundles (bundle_digest, bytes, added_at) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                    &[&key, &bytes, &now],
                )?;
                tx.execute(
                    "INSERT INTO evidence_subjects (artifact_digest, bundle_digest) \
                     SELECT s, $2 FROM unnest($1::text[]) AS s ON CONFLICT DO NOTHING",
                    &[&subject_keys, &key],
                )?;
                Ok(n)
            },
        )?;
        Ok(Stored {
            bundle_digest,
            subjects: subjects.to_vec(),
            new: inserted == 1,
        })
    }

    fn for_artifact(&self, artifact: &Sha256Digest) -> Result<Vec<StoredBundle>, StoreError> {
        let key = artifact.to_string();
        self.read(&format!("cannot read the evidence for {key}"), |c| {
            let rows = c.query(
                "SELECT b.bundle_digest, b.bytes FROM evidence_subjects s \
                 JOIN evidence_bundles b ON b.bundle_digest = s.bundle_digest \
                 WHERE s.artifact_digest = $1 ORDER BY b.seq",
                &[&key],
            )?;
            rows.iter()
                .map(|r| {
                    Ok(StoredBundle {
                        bundle_digest: r.try_get(0)?,
                        bytes: r.try_get(1)?,
                    })
                })
                .collect()
        })
    }

    fn append_decisions(&self, records: &[DecisionRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let at: Vec<&str> = records.iter().map(|r| r.at.as_str()).collect();
        let source: Vec<&str> = records.iter().map(|r| r.source).collect();
        let artifact: Vec<&str> = records.iter().map(|r| r.artifact.as_str()).collect();
        let image: Vec<Option<&str>> = records.iter().map(|r| r.image.as_deref()).collect();
        let env: Vec<Option<&str>> = records.iter().map(|r| r.environment.as_deref()).collect();
        let allowed: Vec<bool> = records.iter().map(|r| r.allowed).collect();
        let codes: Vec<&str> = records.iter().map(|r| r.codes.as_str()).collect();
        let cached: Vec<bool> = records.iter().map(|r| r.cached).collect();
        let latency: Vec<i64> = records.iter().map(|r| to_i64(r.latency_us)).collect();
        let policy: Vec<&str> = records.iter().map(|r| r.policy_digest.as_str()).collect();
        let count: Vec<i64> = records.iter().map(|r| to_i64(r.count)).collect();
        let until: Vec<Option<&str>> = records.iter().map(|r| r.until.as_deref()).collect();
        // One statement for the whole batch: one round trip however many rows.
        self.write(
            &self.decisions,
            false,
            &format!("cannot append {} decisions", records.len()),
            |tx| {
                tx.execute(
                    "INSERT INTO evidence_decisions (at, source, artifact, image, environment, allowed, \
                     codes, cached, latency_us, policy_digest, count, until) \
                     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                     $6::bool[], $7::text[], $8::bool[], $9::int8[], $10::text[], $11::int8[], $12::text[])",
                    &[
                        &at, &source, &artifact, &image, &env, &allowed, &codes, &cached,
                        &latency, &policy, &count, &until,
                    ],
                )?;
                Ok(())
            },
        )
    }

    fn decision_count(&self) -> Result<u64, StoreError> {
        self.read("cannot count the decisions", |c| {
            let row = c.query_one(
                "SELECT coalesce(sum(count), 0)::int8 FROM evidence_decisions",
                &[],
            )?;
            let n: i64 = row.try_get(0)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn prune_decisions(&self, before: &str, limit: u64) -> Result<u64, StoreError> {
        let limit = to_i64(limit);
        self.write(
            &self.decisions,
            false,
            &format!("cannot prune decisions before {before}"),
            |tx| {
                tx.execute(
                    "DELETE FROM evidence_decisions WHERE id IN \
                     (SELECT id FROM evidence_decisions WHERE at < $1 ORDER BY at LIMIT $2)",
                    &[&before, &limit],
                )
            },
        )
    }

    fn verified(&self, key: &VerifiedKey) -> Result<Option<Vec<u8>>, StoreError> {
        let (bundle, artifact, trust) = (
            key.bundle.to_string(),
            key.artifact.to_string(),
            key.trust.to_string(),
        );
        self.read(
            &format!("cannot read the verification of bundle {bundle}"),
            |c| {
                let row = c.query_opt(
                    "SELECT result FROM evidence_verified WHERE bundle_digest = $1 \
                     AND artifact_digest = $2 AND trust_digest = $3 AND source = $4",
                    &[&bundle, &artifact, &trust, &key.source],
                )?;
                row.map(|r| r.try_get(0)).transpose()
            },
        )
    }

    fn put_verified(&self, key: &VerifiedKey, result: &[u8], now: &str) -> Result<(), StoreError> {
        let (bundle, artifact, trust) = (
            key.bundle.to_string(),
            key.artifact.to_string(),
            key.trust.to_string(),
        );
        self.write(
            &self.decisions,
            false,
            &format!("cannot store the verification of bundle {bundle}"),
            |tx| {
                tx.execute(
                    "INSERT INTO evidence_verified (bundle_digest, artifact_digest, trust_digest, \
                     source, result, at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    &[&bundle, &artifact, &trust, &key.source, &result, &now],
                )?;
                Ok(())
            },
        )
    }

    fn publish(&self, change: &Change) -> Result<(), StoreError> {
        let payload = encode_from(self.origin, change);
        self.run(
            &self.decisions,
            true,
            &format!("cannot publish the change {payload}"),
            |c| {
                c.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])?;
                Ok(())
            },
        )
    }

    fn subscribe(&self) -> Receiver<Change> {
        self.feed.subscribe(self.origin)
    }
}
