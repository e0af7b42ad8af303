//! The scale-out backend: PostgreSQL, shared by several `custody serve` replicas.
//!
//! Blocking: it uses the `postgres` crate, whose client drives its own single-threaded tokio
//! runtime. Call it on a blocking thread (`tokio::task::spawn_blocking`, or any thread outside
//! tokio), never on an async worker thread. [`connect`](PostgresReleaseStore::connect) and
//! dropping the store are safe anywhere: they move the work off an async thread themselves.
//!
//! Connections: a small pool of at most [`MAX_CONNECTIONS`], opened on demand. A connection
//! that failed as gone (closed, network error, SQLSTATE 08xxx or 57Pxx) leaves the pool; a read
//! that failed on a dead pooled connection is retried on another one, and so is a write whose
//! `BEGIN` failed that way (nothing was written yet). A write that failed later is not
//! retried: its COMMIT may have happened, and the caller gets the error.
//!
//! Durability: every write is one transaction with `SET LOCAL synchronous_commit = on`, so
//! COMMIT returns only after the server flushed it, whatever the server's default.
//!
//! Compare-and-swap: `release_heads` holds each environment's latest seq.
//! [`append_release`](ReleaseStore::append_release) moves it with
//! `UPDATE release_heads SET seq = new WHERE environment = $1 AND seq = new - 1`: the row lock
//! serialises concurrent appends to one environment (in any process), and under READ
//! COMMITTED a waiting UPDATE re-checks its WHERE against the winner's row, matches nothing,
//! and the loser rolls back with [`StoreError::Conflict`]. `UNIQUE (environment, seq)` and a
//! unique index on non-empty request ids back this up; a unique violation is a conflict or a
//! duplicate, never a silent success.

use std::str::FromStr;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, Config, NoTls, Row};

use super::codec::{
    self, ARTIFACT_COLUMNS, Columns, DEPLOYMENT_COLUMNS, EVENT_COLUMNS, INCIDENT_COLUMNS,
    QUARANTINE_COLUMNS, RELEASE_COLUMNS, REVOCATION_COLUMNS,
};
use super::{ReleaseStore, StoreError};
use crate::model::{ArtifactRecord, Deployment, Event, Incident, Quarantine, Release, Revocation};

/// The most connections one store opens.
pub const MAX_CONNECTIONS: usize = 8;

/// How long a call waits for a connection when all [`MAX_CONNECTIONS`] are busy.
const POOL_WAIT: Duration = Duration::from_secs(30);

/// The connect timeout when the URL sets none.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Serialises schema creation across processes (`pg_advisory_xact_lock` key, "custrel1").
const SCHEMA_LOCK: i64 = 0x6375_7374_7265_6c31;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS release_artifacts (
    digest TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    name TEXT,
    uploaded_by TEXT NOT NULL,
    uploaded_at TEXT NOT NULL,
    log_index BIGINT
);
CREATE TABLE IF NOT EXISTS release_heads (
    environment TEXT PRIMARY KEY,
    seq BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS release_history (
    id BIGSERIAL PRIMARY KEY,
    environment TEXT NOT NULL,
    seq BIGINT NOT NULL,
    digest TEXT NOT NULL,
    kind TEXT NOT NULL,
    from_environment TEXT,
    requested_by TEXT NOT NULL,
    at TEXT NOT NULL,
    policy_digest TEXT NOT NULL,
    reason TEXT,
    request_id TEXT,
    bundle TEXT NOT NULL,
    log_index BIGINT,
    vsa TEXT,
    CONSTRAINT release_history_environment_seq UNIQUE (environment, seq)
);
CREATE UNIQUE INDEX IF NOT EXISTS release_history_request_id ON release_history (request_id)
    WHERE request_id IS NOT NULL AND request_id <> '';
CREATE INDEX IF NOT EXISTS release_history_digest ON release_history (digest, id);
CREATE TABLE IF NOT EXISTS release_requests (
    request_id TEXT PRIMARY KEY,
    request_sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS release_revocations (
    id BIGSERIAL PRIMARY KEY,
    target TEXT NOT NULL,
    reason TEXT NOT NULL,
    revoked_by TEXT NOT NULL,
    at TEXT NOT NULL,
    bundle TEXT NOT NULL,
    log_index BIGINT
);
CREATE TABLE IF NOT EXISTS release_quarantine (
    id BIGSERIAL PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    revocation_id BIGINT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS release_incidents (
    id BIGSERIAL PRIMARY KEY,
    revocation_id BIGINT NOT NULL,
    detected_at TEXT NOT NULL,
    introduced_at TEXT,
    recovered_at TEXT,
    status TEXT NOT NULL,
    affected_digests TEXT NOT NULL,
    recoveries TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS release_deployments (
    id BIGSERIAL PRIMARY KEY,
    environment TEXT NOT NULL,
    seq BIGINT NOT NULL,
    digest TEXT NOT NULL,
    agent TEXT NOT NULL,
    status TEXT NOT NULL,
    detail TEXT,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS release_deployments_environment
    ON release_deployments (environment, id);
CREATE TABLE IF NOT EXISTS release_events (
    id BIGSERIAL PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT NOT NULL,
    log_index BIGINT,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS release_events_object ON release_events (object, id);
";

/// The release store in a PostgreSQL database.
pub struct PostgresReleaseStore {
    config: Config,
    /// The URL without its password, for messages.
    target: String,
    pool: Mutex<Pool>,
    returned: Condvar,
}

struct Pool {
    idle: Vec<Client>,
    /// Connections open, idle or leased.
    open: usize,
}

impl std::fmt::Debug for PostgresReleaseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresReleaseStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// Why an operation failed, before it is given the database's name.
enum Failure {
    Pg(postgres::Error),
    Data(String),
    Store(StoreError),
}

impl From<postgres::Error> for Failure {
    fn from(err: postgres::Error) -> Self {
        Failure::Pg(err)
    }
}

impl From<String> for Failure {
    fn from(err: String) -> Self {
        Failure::Data(err)
    }
}

impl From<StoreError> for Failure {
    fn from(err: StoreError) -> Self {
        Failure::Store(err)
    }
}

/// A PostgreSQL error with the server's message, code and detail.
fn describe(err: &postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        let mut text = format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
        if let Some(detail) = db.detail() {
            text.push_str("; DETAIL: ");
            text.push_str(detail);
        }
        return text;
    }
    match std::error::Error::source(err) {
        Some(source) => format!("{err}: {source}"),
        None => err.to_string(),
    }
}

impl Columns for Row {
    fn text(&self, i: usize) -> Result<String, String> {
        self.try_get(i).map_err(|e| format!("column {i}: {e}"))
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, String> {
        self.try_get(i).map_err(|e| format!("column {i}: {e}"))
    }
    fn int(&self, i: usize) -> Result<i64, String> {
        self.try_get(i).map_err(|e| format!("column {i}: {e}"))
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, String> {
        self.try_get(i).map_err(|e| format!("column {i}: {e}"))
    }
}

fn decode_all<T>(
    rows: Vec<Row>,
    decode: fn(&dyn Columns) -> Result<T, String>,
) -> Result<Vec<T>, Failure> {
    rows.iter()
        .map(|row| decode(row as &dyn Columns).map_err(Failure::Data))
        .collect()
}

fn decode_opt<T>(
    row: Option<Row>,
    decode: fn(&dyn Columns) -> Result<T, String>,
) -> Result<Option<T>, Failure> {
    Ok(row.as_ref().map(|row| decode(row)).transpose()?)
}

fn to_id(what: &str, id: i64) -> Result<u64, Failure> {
    u64::try_from(id).map_err(|_| Failure::Data(format!("negative {what} {id}")))
}

/// Runs `f` where a `postgres` client may block: here, or on a scoped thread when this thread
/// belongs to a tokio runtime (the client's own runtime refuses to start inside another one's
/// async context).
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T, String> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Ok(f());
    }
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("custody-release-pg".to_owned())
            .spawn_scoped(scope, f)
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        match thread.join() {
            Ok(value) => Ok(value),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// A pooled connection, given back (or, if it died or is inside a transaction, closed) on
/// drop.
struct Lease<'a> {
    store: &'a PostgresReleaseStore,
    client: Option<Client>,
    /// It came from the pool (it may have died while idle).
    reused: bool,
    /// A call on it failed in a way that says the connection is gone.
    broken: bool,
    /// A transaction is open on it: it must not go back to the pool as is.
    in_transaction: bool,
}

impl Lease<'_> {
    fn client(&mut self) -> Result<&mut Client, Failure> {
        self.client
            .as_mut()
            .ok_or_else(|| Failure::Data("connection already closed".to_owned()))
    }

    /// Notes a failure of a call on this connection; whether the connection is gone (and the
    /// call worth retrying on a new one, if this one came from the pool).
    fn lost(&mut self, failure: &Failure) -> bool {
        if let Failure::Pg(err) = failure {
            self.broken |= connection_lost(err);
        }
        self.broken || self.client.as_ref().is_none_or(Client::is_closed)
    }

    fn begin(&mut self) -> Result<(), Failure> {
        self.client()?
            .batch_execute("BEGIN; SET LOCAL synchronous_commit = on")?;
        self.in_transaction = true;
        Ok(())
    }

    fn commit(&mut self) -> Result<(), Failure> {
        self.client()?.batch_execute("COMMIT")?;
        self.in_transaction = false;
        Ok(())
    }

    fn rollback(&mut self) {
        if self.broken {
            return;
        }
        let rolled_back = match self.client() {
            Ok(client) => client.batch_execute("ROLLBACK").is_ok(),
            Err(_) => false,
        };
        if rolled_back {
            self.in_transaction = false;
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            self.store
                .give_back(client, self.in_transaction || self.broken);
        }
    }
}

/// Whether `err` says the connection is unusable: closed, a network or protocol error, a
/// connection exception (SQLSTATE class 08) or the server shutting the session down (57P).
/// Errors about a statement or a value leave the connection usable.
fn connection_lost(err: &postgres::Error) -> bool {
    if err.is_closed() {
        return true;
    }
    match err.code() {
        Some(code) => {
            let code = code.code();
            code.starts_with("08") || code.starts_with("57P")
        }
        None => std::error::Error::source(err).is_some_and(|source| source.is::<std::io::Error>()),
    }
}

impl PostgresReleaseStore {
    /// Parses `url` (`postgres://user:password@host:port/db?...` or `postgresql://…`) and
    /// opens one connection to check it. The schema is not created: call
    /// [`initialize`](ReleaseStore::initialize). TLS is not supported yet: use a local
    /// socket, a private network or an `sslmode` other than `require`.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let target = codec::redact(url);
        let mut config = Config::from_str(url).map_err(|e| {
            StoreError::Backend(codec::one_line(&format!(
                "postgres {target}: not a valid PostgreSQL connection URL: {}",
                describe(&e)
            )))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("custody-release");
        }
        let store = Self {
            config,
            target,
            pool: Mutex::new(Pool {
                idle: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
        };
        let lease = store
            .lease()
            .map_err(|failure| store.error("cannot connect", failure))?;
        drop(lease);
        Ok(store)
    }

    fn lock(&self) -> MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn error(&self, what: &str, failure: Failure) -> StoreError {
        let message = match failure {
            Failure::Store(err) => return err,
            Failure::Pg(err) => describe(&err),
            Failure::Data(err) => err,
        };
        StoreError::Backend(codec::one_line(&format!(
            "postgres {}: {what}: {message}",
            self.target
        )))
    }

    fn new_client(&self) -> Result<Client, Failure> {
        Ok(off_runtime(|| self.config.connect(NoTls))??)
    }

    /// A connection: an idle one, a new one if fewer than [`MAX_CONNECTIONS`] are open, or
    /// the next one given back.
    fn lease(&self) -> Result<Lease<'_>, Failure> {
        let deadline = Instant::now() + POOL_WAIT;
        let mut pool = self.lock();
        loop {
            while let Some(client) = pool.idle.pop() {
                if client.is_closed() {
                    pool.open = pool.open.saturating_sub(1);
                    close(vec![client]);
                    continue;
                }
                return Ok(Lease {
                    store: self,
                    client: Some(client),
                    reused: true,
                    broken: false,
                    in_transaction: false,
                });
            }
            if pool.open < MAX_CONNECTIONS {
                pool.open += 1;
                drop(pool);
                return match self.new_client() {
                    Ok(client) => Ok(Lease {
                        store: self,
                        client: Some(client),
                        reused: false,
                        broken: false,
                        in_transaction: false,
                    }),
                    Err(err) => {
                        let mut pool = self.lock();
                        pool.open = pool.open.saturating_sub(1);
                        drop(pool);
                        self.returned.notify_one();
                        Err(err)
                    }
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Failure::Data(format!(
                    "all {MAX_CONNECTIONS} connections stayed busy for {}s",
                    POOL_WAIT.as_secs()
                )));
            }
            pool = self
                .returned
                .wait_timeout(pool, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Returns `client` to the pool, or closes it if it is `unusable` or closed.
    fn give_back(&self, client: Client, unusable: bool) {
        let keep = !unusable && !client.is_closed();
        {
            let mut pool = self.lock();
            if keep {
                pool.idle.push(client);
            } else {
                pool.open = pool.open.saturating_sub(1);
                drop(pool);
                close(vec![client]);
            }
        }
        self.returned.notify_one();
    }

    /// Runs `f` on a connection; again on another one while pooled connections turn out
    /// dead (a database restart leaves every idle one so), and once on a new one.
    fn read<T>(
        &self,
        what: impl Fn() -> String,
        f: impl Fn(&mut Client) -> Result<T, Failure>,
    ) -> Result<T, StoreError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut lease = self
                .lease()
                .map_err(|failure| self.error(&what(), failure))?;
            match lease.client().and_then(&f) {
                Err(failure)
                    if lease.reused && lease.lost(&failure) && attempts <= MAX_CONNECTIONS => {}
                result => return result.map_err(|failure| self.error(&what(), failure)),
            }
        }
    }

    /// What a failed append is: a lost race is a conflict.
    fn append_failure(&self, release: &Release, failure: Failure) -> StoreError {
        match failure {
            // The head's row lock leaves no room for these, but a lost race is a conflict.
            Failure::Pg(err)
                if err.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
                    || err.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED) =>
            {
                StoreError::Conflict {
                    environment: release.environment.clone(),
                    expected: release.seq,
                }
            }
            failure => self.error(
                &format!(
                    "cannot append release {} to {}",
                    release.seq, release.environment
                ),
                failure,
            ),
        }
    }

    /// Runs `f` in a transaction and commits it if `f` succeeds.
    fn write<T>(
        &self,
        what: impl FnOnce() -> String,
        f: impl FnOnce(&mut Client) -> Result<T, Failure>,
    ) -> Result<T, StoreError> {
        self.transact(f)
            .map_err(|failure| self.error(&what(), failure))
    }

    /// [`write`](Self::write) without the message. A `BEGIN` that failed on a dead pooled
    /// connection is retried on another one; nothing after it is (it might have committed).
    fn transact<T>(&self, f: impl FnOnce(&mut Client) -> Result<T, Failure>) -> Result<T, Failure> {
        let mut attempts = 0;
        let mut lease = loop {
            attempts += 1;
            let mut lease = self.lease()?;
            match lease.begin() {
                Ok(()) => break lease,
                Err(failure)
                    if lease.reused && lease.lost(&failure) && attempts <= MAX_CONNECTIONS => {}
                Err(failure) => return Err(failure),
            }
        };
        let result = lease.client().and_then(f).and_then(|value| {
            lease.commit()?;
            Ok(value)
        });
        if let Err(failure) = &result {
            lease.lost(failure);
            lease.rollback();
        }
        result
    }
}

/// Appends `release` if its seq is the environment's next (in the caller's transaction).
fn append(c: &mut Client, release: &Release) -> Result<(), Failure> {
    let conflict = || {
        Failure::Store(StoreError::Conflict {
            environment: release.environment.clone(),
            expected: release.seq,
        })
    };
    let key = codec::request_key(release.request_id.as_deref());
    let duplicate = |c: &mut Client| -> Result<bool, Failure> {
        match key {
            Some(key) => Ok(c
                .query_opt(
                    "SELECT 1 FROM release_history WHERE request_id = $1",
                    &[&key],
                )?
                .is_some()),
            None => Ok(false),
        }
    };
    let seq = codec::int("release seq", release.seq)?;
    let previous = seq
        .checked_sub(1)
        .filter(|p| *p >= 0)
        .ok_or_else(conflict)?;
    c.execute(
        "INSERT INTO release_heads (environment, seq) VALUES ($1, 0)
             ON CONFLICT (environment) DO NOTHING",
        &[&release.environment],
    )?;
    // Waits for a concurrent append to this environment, then sees its result.
    let moved = c.execute(
        "UPDATE release_heads SET seq = $2 WHERE environment = $1 AND seq = $3",
        &[&release.environment, &seq, &previous],
    )?;
    // Checked after the head's row lock, so a retried request that raced its
    // first attempt is a duplicate, not a conflict.
    if duplicate(c)? {
        return Err(StoreError::Duplicate(key.unwrap_or_default().to_owned()).into());
    }
    if moved != 1 {
        return Err(conflict());
    }
    let params: [&(dyn ToSql + Sync); 13] = [
        &release.environment,
        &seq,
        &release.digest,
        &release.kind.as_str(),
        &release.from_environment,
        &release.requested_by,
        &codec::time_text(&release.at),
        &release.policy_digest,
        &release.reason,
        &release.request_id,
        &release.bundle,
        &codec::opt_int("log index", release.log_index)?,
        &release.vsa,
    ];
    c.execute(
        &format!(
            "INSERT INTO release_history ({RELEASE_COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ),
        &params,
    )
    .map_err(|err| match (err.as_db_error(), key) {
        (Some(db), Some(key))
            if db.code() == &SqlState::UNIQUE_VIOLATION
                && db.constraint() == Some("release_history_request_id") =>
        {
            Failure::Store(StoreError::Duplicate(key.to_owned()))
        }
        (Some(db), _) if db.code() == &SqlState::UNIQUE_VIOLATION => conflict(),
        _ => Failure::Pg(err),
    })?;
    Ok(())
}

/// Binds `release`'s request id (if any) to `request_sha256` (in the caller's transaction).
fn bind_request(c: &mut Client, release: &Release, request_sha256: &str) -> Result<(), Failure> {
    if let Some(key) = codec::request_key(release.request_id.as_deref()) {
        c.execute(
            "INSERT INTO release_requests (request_id, request_sha256) VALUES ($1, $2)",
            &[&key, &request_sha256],
        )
        .map_err(|err| match err.as_db_error() {
            Some(db) if db.code() == &SqlState::UNIQUE_VIOLATION => {
                Failure::Store(StoreError::Duplicate(key.to_owned()))
            }
            _ => Failure::Pg(err),
        })?;
    }
    Ok(())
}

/// Records `event` (in the caller's transaction) and returns its id.
fn insert_event(c: &mut Client, event: &Event) -> Result<u64, Failure> {
    let row = c.query_one(
        "INSERT INTO release_events (at, actor, action, object, log_index, detail)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        &[
            &codec::time_text(&event.at),
            &event.actor,
            &event.action,
            &event.object,
            &codec::opt_int("log index", event.log_index)?,
            &codec::json_text("event detail", &event.detail)?,
        ],
    )?;
    to_id("event id", row.try_get(0)?)
}

impl Drop for PostgresReleaseStore {
    fn drop(&mut self) {
        close(std::mem::take(&mut self.lock().idle));
    }
}

/// Closes `clients`. Closing one blocks on its own runtime, which panics on a thread of a
/// tokio runtime (the server may drop the store on an async thread): there, they are closed
/// on a thread of their own.
fn close(clients: Vec<Client>) {
    if clients.is_empty() || tokio::runtime::Handle::try_current().is_err() {
        drop(clients);
        return;
    }
    let (send, receive) = std::sync::mpsc::channel::<Vec<Client>>();
    let closer = std::thread::Builder::new()
        .name("custody-release-pg-close".to_owned())
        .spawn(move || drop(receive.recv()));
    match closer {
        Ok(_) => {
            if let Err(std::sync::mpsc::SendError(clients)) = send.send(clients) {
                std::mem::forget(clients);
            }
        }
        // No thread: leak the connections rather than panic (the server closes them).
        Err(_) => std::mem::forget(clients),
    }
}

impl ReleaseStore for PostgresReleaseStore {
    fn initialize(&self) -> Result<(), StoreError> {
        self.write(
            || "cannot create the schema".to_owned(),
            |c| {
                c.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
                c.batch_execute(SCHEMA)?;
                Ok(())
            },
        )
    }

    fn put_artifact(&self, record: &ArtifactRecord) -> Result<bool, StoreError> {
        self.write(
            || format!("cannot store artifact {}", record.digest),
            |c| {
                let inserted = c.execute(
                    "INSERT INTO release_artifacts
                         (digest, size, name, uploaded_by, uploaded_at, log_index)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (digest) DO NOTHING",
                    &[
                        &record.digest,
                        &codec::int("artifact size", record.size)?,
                        &record.name,
                        &record.uploaded_by,
                        &codec::time_text(&record.uploaded_at),
                        &codec::opt_int("log index", record.log_index)?,
                    ],
                )?;
                Ok(inserted == 1)
            },
        )
    }

    fn artifact(&self, digest: &str) -> Result<Option<ArtifactRecord>, StoreError> {
        self.read(
            || format!("cannot read artifact {digest}"),
            |c| {
                let row = c.query_opt(
                    &format!("SELECT {ARTIFACT_COLUMNS} FROM release_artifacts WHERE digest = $1"),
                    &[&digest],
                )?;
                decode_opt(row, codec::artifact)
            },
        )
    }

    fn append_release(&self, release: &Release) -> Result<(), StoreError> {
        self.transact(|c| append(c, release))
            .map_err(|failure| self.append_failure(release, failure))
    }

    fn append_release_with_event(
        &self,
        release: &Release,
        event: &Event,
    ) -> Result<u64, StoreError> {
        self.transact(|c| {
            append(c, release)?;
            insert_event(c, event)
        })
        .map_err(|failure| self.append_failure(release, failure))
    }

    fn append_release_for_request(
        &self,
        release: &Release,
        event: &Event,
        request_sha256: &str,
    ) -> Result<u64, StoreError> {
        self.transact(|c| {
            append(c, release)?;
            bind_request(c, release, request_sha256)?;
            insert_event(c, event)
        })
        .map_err(|failure| self.append_failure(release, failure))
    }

    fn request_binding(&self, request_id: &str) -> Result<Option<String>, StoreError> {
        let Some(key) = codec::request_key(Some(request_id)) else {
            return Ok(None);
        };
        self.read(
            || format!("cannot read the binding of request {key}"),
            |c| {
                let row = c.query_opt(
                    "SELECT request_sha256 FROM release_requests WHERE request_id = $1",
                    &[&key],
                )?;
                Ok(match row {
                    Some(row) => Some(row.try_get::<_, String>(0)?),
                    None => None,
                })
            },
        )
    }

    fn current_release(&self, environment: &str) -> Result<Option<Release>, StoreError> {
        self.read(
            || format!("cannot read the current release of {environment}"),
            |c| {
                let row = c.query_opt(
                    &format!(
                        "SELECT {RELEASE_COLUMNS} FROM release_history WHERE environment = $1
                         ORDER BY seq DESC LIMIT 1"
                    ),
                    &[&environment],
                )?;
                decode_opt(row, codec::release)
            },
        )
    }

    fn releases(&self, environment: &str) -> Result<Vec<Release>, StoreError> {
        self.read(
            || format!("cannot read the releases of {environment}"),
            |c| {
                let rows = c.query(
                    &format!(
                        "SELECT {RELEASE_COLUMNS} FROM release_history WHERE environment = $1
                         ORDER BY seq"
                    ),
                    &[&environment],
                )?;
                decode_all(rows, codec::release)
            },
        )
    }

    fn releases_of(&self, digest: &str) -> Result<Vec<Release>, StoreError> {
        self.read(
            || format!("cannot read the releases of {digest}"),
            |c| {
                let rows = c.query(
                    &format!(
                        "SELECT {RELEASE_COLUMNS} FROM release_history WHERE digest = $1 ORDER BY id"
                    ),
                    &[&digest],
                )?;
                decode_all(rows, codec::release)
            },
        )
    }

    fn release_by_request(&self, request_id: &str) -> Result<Option<Release>, StoreError> {
        let Some(key) = codec::request_key(Some(request_id)) else {
            return Ok(None);
        };
        self.read(
            || format!("cannot read the release for request {key}"),
            |c| {
                let row = c.query_opt(
                    &format!("SELECT {RELEASE_COLUMNS} FROM release_history WHERE request_id = $1"),
                    &[&key],
                )?;
                decode_opt(row, codec::release)
            },
        )
    }

    fn add_revocation(&self, revocation: &Revocation) -> Result<Revocation, StoreError> {
        self.write(
            || format!("cannot store the revocation of {}", revocation.target),
            |c| {
                let row = c.query_one(
                    "INSERT INTO release_revocations
                         (target, reason, revoked_by, at, bundle, log_index)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                    &[
                        &revocation.target,
                        &revocation.reason,
                        &revocation.revoked_by,
                        &codec::time_text(&revocation.at),
                        &revocation.bundle,
                        &codec::opt_int("log index", revocation.log_index)?,
                    ],
                )?;
                Ok(Revocation {
                    id: to_id("revocation id", row.try_get(0)?)?,
                    ..revocation.clone()
                })
            },
        )
    }

    fn revocations(&self) -> Result<Vec<Revocation>, StoreError> {
        self.read(
            || "cannot read the revocations".to_owned(),
            |c| {
                let rows = c.query(
                    &format!("SELECT {REVOCATION_COLUMNS} FROM release_revocations ORDER BY id"),
                    &[],
                )?;
                decode_all(rows, codec::revocation)
            },
        )
    }

    fn quarantine(&self, record: &Quarantine) -> Result<bool, StoreError> {
        self.write(
            || format!("cannot quarantine {}", record.digest),
            |c| {
                let inserted = c.execute(
                    "INSERT INTO release_quarantine (digest, revocation_id, at)
                     VALUES ($1, $2, $3) ON CONFLICT (digest) DO NOTHING",
                    &[
                        &record.digest,
                        &codec::int("revocation id", record.revocation_id)?,
                        &codec::time_text(&record.at),
                    ],
                )?;
                Ok(inserted == 1)
            },
        )
    }

    fn quarantined(&self, digest: &str) -> Result<Option<Quarantine>, StoreError> {
        self.read(
            || format!("cannot read the quarantine of {digest}"),
            |c| {
                let row = c.query_opt(
                    &format!(
                        "SELECT {QUARANTINE_COLUMNS} FROM release_quarantine WHERE digest = $1"
                    ),
                    &[&digest],
                )?;
                decode_opt(row, codec::quarantine)
            },
        )
    }

    fn quarantine_list(&self) -> Result<Vec<Quarantine>, StoreError> {
        self.read(
            || "cannot read the quarantine list".to_owned(),
            |c| {
                let rows = c.query(
                    &format!("SELECT {QUARANTINE_COLUMNS} FROM release_quarantine ORDER BY id"),
                    &[],
                )?;
                decode_all(rows, codec::quarantine)
            },
        )
    }

    fn open_incident(&self, incident: &Incident) -> Result<Incident, StoreError> {
        self.write(
            || {
                format!(
                    "cannot open an incident for revocation {}",
                    incident.revocation_id
                )
            },
            |c| {
                let row = c.query_one(
                    "INSERT INTO release_incidents (revocation_id, detected_at, introduced_at,
                         recovered_at, status, affected_digests, recoveries)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                    &[
                        &codec::int("revocation id", incident.revocation_id)?,
                        &codec::time_text(&incident.detected_at),
                        &codec::opt_time_text(incident.introduced_at.as_ref()),
                        &codec::opt_time_text(incident.recovered_at.as_ref()),
                        &incident.status,
                        &codec::json_text("affected digests", &incident.affected_digests)?,
                        &codec::json_text("recoveries", &incident.recoveries)?,
                    ],
                )?;
                Ok(Incident {
                    id: to_id("incident id", row.try_get(0)?)?,
                    ..incident.clone()
                })
            },
        )
    }

    fn update_incident(&self, incident: &Incident) -> Result<(), StoreError> {
        self.write(
            || format!("cannot update incident {}", incident.id),
            |c| {
                let updated = c.execute(
                    "UPDATE release_incidents SET revocation_id = $2, detected_at = $3,
                         introduced_at = $4, recovered_at = $5, status = $6,
                         affected_digests = $7, recoveries = $8
                     WHERE id = $1",
                    &[
                        &codec::int("incident id", incident.id)?,
                        &codec::int("revocation id", incident.revocation_id)?,
                        &codec::time_text(&incident.detected_at),
                        &codec::opt_time_text(incident.introduced_at.as_ref()),
                        &codec::opt_time_text(incident.recovered_at.as_ref()),
                        &incident.status,
                        &codec::json_text("affected digests", &incident.affected_digests)?,
                        &codec::json_text("recoveries", &incident.recoveries)?,
                    ],
                )?;
                if updated == 0 {
                    return Err(StoreError::NotFound(format!("incident {}", incident.id)).into());
                }
                Ok(())
            },
        )
    }

    fn incidents(&self) -> Result<Vec<Incident>, StoreError> {
        self.read(
            || "cannot read the incidents".to_owned(),
            |c| {
                let rows = c.query(
                    &format!("SELECT {INCIDENT_COLUMNS} FROM release_incidents ORDER BY id"),
                    &[],
                )?;
                decode_all(rows, codec::incident)
            },
        )
    }

    fn record_deployment(&self, deployment: &Deployment) -> Result<(), StoreError> {
        self.write(
            || {
                format!(
                    "cannot record the deployment of {} release {}",
                    deployment.environment, deployment.seq
                )
            },
            |c| {
                c.execute(
                    &format!(
                        "INSERT INTO release_deployments ({DEPLOYMENT_COLUMNS})
                         VALUES ($1, $2, $3, $4, $5, $6, $7)"
                    ),
                    &[
                        &deployment.environment,
                        &codec::int("deployment seq", deployment.seq)?,
                        &deployment.digest,
                        &deployment.agent,
                        &deployment.status,
                        &deployment.detail,
                        &codec::time_text(&deployment.at),
                    ],
                )?;
                Ok(())
            },
        )
    }

    fn deployments(&self, environment: &str) -> Result<Vec<Deployment>, StoreError> {
        self.read(
            || format!("cannot read the deployments of {environment}"),
            |c| {
                let rows = c.query(
                    &format!(
                        "SELECT {DEPLOYMENT_COLUMNS} FROM release_deployments
                         WHERE environment = $1 ORDER BY id"
                    ),
                    &[&environment],
                )?;
                decode_all(rows, codec::deployment)
            },
        )
    }

    fn record_event(&self, event: &Event) -> Result<u64, StoreError> {
        self.write(
            || {
                format!(
                    "cannot record the {} event on {}",
                    event.action, event.object
                )
            },
            |c| insert_event(c, event),
        )
    }

    fn events(&self, object: Option<&str>) -> Result<Vec<Event>, StoreError> {
        self.read(
            || match object {
                Some(object) => format!("cannot read the events on {object}"),
                None => "cannot read the events".to_owned(),
            },
            |c| {
                let rows = match object {
                    Some(object) => c.query(
                        &format!(
                            "SELECT {EVENT_COLUMNS} FROM release_events WHERE object = $1
                             ORDER BY id"
                        ),
                        &[&object],
                    )?,
                    None => c.query(
                        &format!("SELECT {EVENT_COLUMNS} FROM release_events ORDER BY id"),
                        &[],
                    )?,
                };
                decode_all(rows, codec::event)
            },
        )
    }
}
