//! The embedded backend: one SQLite file in WAL mode.
//!
//! Durability: `journal_mode=WAL` with `synchronous=FULL`, so every COMMIT fsyncs the WAL
//! before it returns. Every write is one transaction.
//!
//! Compare-and-swap: [`append_release`](ReleaseStore::append_release) runs in a
//! `BEGIN IMMEDIATE` transaction, which takes the database's write lock before the latest seq
//! is read, so the check and the insert are one step even with other processes on the file
//! (they wait up to [`BUSY_TIMEOUT`] for the lock). `UNIQUE (environment, seq)` and the unique
//! index on non-empty request ids back the checks up.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{
    Connection, ErrorCode, OptionalExtension, Params, Row, TransactionBehavior, params,
};

use super::codec::{
    self, ARTIFACT_COLUMNS, Columns, DEPLOYMENT_COLUMNS, EVENT_COLUMNS, INCIDENT_COLUMNS,
    QUARANTINE_COLUMNS, RELEASE_COLUMNS, REVOCATION_COLUMNS,
};
use super::{ReleaseStore, StoreError};
use crate::model::{ArtifactRecord, Deployment, Event, Incident, Quarantine, Release, Revocation};

/// How long a write waits for another connection's write lock.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS release_artifacts (
    digest TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    name TEXT,
    uploaded_by TEXT NOT NULL,
    uploaded_at TEXT NOT NULL,
    log_index INTEGER
);
CREATE TABLE IF NOT EXISTS release_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    environment TEXT NOT NULL,
    seq INTEGER NOT NULL,
    digest TEXT NOT NULL,
    kind TEXT NOT NULL,
    from_environment TEXT,
    requested_by TEXT NOT NULL,
    at TEXT NOT NULL,
    policy_digest TEXT NOT NULL,
    reason TEXT,
    request_id TEXT,
    bundle TEXT NOT NULL,
    log_index INTEGER,
    vsa TEXT,
    UNIQUE (environment, seq)
);
CREATE UNIQUE INDEX IF NOT EXISTS release_history_request_id ON release_history (request_id)
    WHERE request_id IS NOT NULL AND request_id <> '';
CREATE INDEX IF NOT EXISTS release_history_digest ON release_history (digest, id);
CREATE TABLE IF NOT EXISTS release_requests (
    request_id TEXT PRIMARY KEY,
    request_sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS release_revocations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    reason TEXT NOT NULL,
    revoked_by TEXT NOT NULL,
    at TEXT NOT NULL,
    bundle TEXT NOT NULL,
    log_index INTEGER
);
CREATE TABLE IF NOT EXISTS release_quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    digest TEXT NOT NULL UNIQUE,
    revocation_id INTEGER NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS release_incidents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    revocation_id INTEGER NOT NULL,
    detected_at TEXT NOT NULL,
    introduced_at TEXT,
    recovered_at TEXT,
    status TEXT NOT NULL,
    affected_digests TEXT NOT NULL,
    recoveries TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS release_deployments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    environment TEXT NOT NULL,
    seq INTEGER NOT NULL,
    digest TEXT NOT NULL,
    agent TEXT NOT NULL,
    status TEXT NOT NULL,
    detail TEXT,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS release_deployments_environment
    ON release_deployments (environment, id);
CREATE TABLE IF NOT EXISTS release_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT NOT NULL,
    log_index INTEGER,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS release_events_object ON release_events (object, id);
";

/// The release store in one SQLite file.
pub struct SqliteReleaseStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteReleaseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteReleaseStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Why an operation failed, before it is given the database's name.
enum Failure {
    Sqlite(rusqlite::Error),
    Data(String),
    Store(StoreError),
}

impl From<rusqlite::Error> for Failure {
    fn from(err: rusqlite::Error) -> Self {
        Failure::Sqlite(err)
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

impl Columns for Row<'_> {
    fn text(&self, i: usize) -> Result<String, String> {
        self.get(i).map_err(|e| format!("column {i}: {e}"))
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, String> {
        self.get(i).map_err(|e| format!("column {i}: {e}"))
    }
    fn int(&self, i: usize) -> Result<i64, String> {
        self.get(i).map_err(|e| format!("column {i}: {e}"))
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, String> {
        self.get(i).map_err(|e| format!("column {i}: {e}"))
    }
}

/// Runs `sql` and decodes every row.
fn collect<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    decode: fn(&dyn Columns) -> Result<T, String>,
) -> Result<Vec<T>, Failure> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode(row)?);
    }
    Ok(out)
}

/// Runs `sql` and decodes the first row, if any.
fn first<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    decode: fn(&dyn Columns) -> Result<T, String>,
) -> Result<Option<T>, Failure> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    match rows.next()? {
        Some(row) => Ok(Some(decode(row)?)),
        None => Ok(None),
    }
}

fn is_unique_violation(err: &rusqlite::Error) -> Option<&str> {
    match err {
        rusqlite::Error::SqliteFailure(e, message) if e.code == ErrorCode::ConstraintViolation => {
            Some(message.as_deref().unwrap_or(""))
        }
        _ => None,
    }
}

impl SqliteReleaseStore {
    /// Opens (creating it and its parent directories if needed) the database at `path`, in WAL
    /// mode with `synchronous=FULL`. Several processes may open the same file.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let fail = |what: &str, err: &dyn std::fmt::Display| {
            StoreError::Backend(codec::one_line(&format!(
                "sqlite {}: {what}: {err}",
                path.display()
            )))
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| fail(&format!("cannot create {}", parent.display()), &e))?;
        }
        let conn = Connection::open(path).map_err(|e| fail("cannot open", &e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| fail("cannot set busy_timeout", &e))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(|e| fail("cannot switch to WAL mode", &e))?;
        if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
            return Err(fail(
                "cannot switch to WAL mode",
                &format!("journal mode stayed {mode}"),
            ));
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| fail("cannot set synchronous=FULL", &e))?;
        Ok(Self {
            path: path.to_owned(),
            conn: Mutex::new(conn),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, what: &str, failure: Failure) -> StoreError {
        let message = match failure {
            Failure::Store(err) => return err,
            Failure::Sqlite(err) => err.to_string(),
            Failure::Data(err) => err,
        };
        StoreError::Backend(codec::one_line(&format!(
            "sqlite {}: {what}: {message}",
            self.path.display()
        )))
    }

    /// Runs `f` on the connection (reads).
    fn read<T>(
        &self,
        what: impl FnOnce() -> String,
        f: impl FnOnce(&Connection) -> Result<T, Failure>,
    ) -> Result<T, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        f(&conn).map_err(|failure| self.error(&what(), failure))
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction and commits it if `f` succeeds.
    fn write<T>(
        &self,
        what: impl FnOnce() -> String,
        f: impl FnOnce(&Connection) -> Result<T, Failure>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let result = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })();
        result.map_err(|failure| self.error(&what(), failure))
    }
}

/// Appends `release` if its seq is the environment's next (in the caller's transaction).
fn append(tx: &Connection, release: &Release) -> Result<(), Failure> {
    let conflict = || {
        Failure::Store(StoreError::Conflict {
            environment: release.environment.clone(),
            expected: release.seq,
        })
    };
    let key = codec::request_key(release.request_id.as_deref());
    if let Some(key) = key {
        let used = tx
            .prepare_cached("SELECT 1 FROM release_history WHERE request_id = ?1")?
            .query_row([key], |_| Ok(()))
            .optional()?;
        if used.is_some() {
            return Err(StoreError::Duplicate(key.to_owned()).into());
        }
    }
    let latest: i64 = tx
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM release_history WHERE environment = ?1")?
        .query_row([&release.environment], |row| row.get(0))?;
    let seq = codec::int("release seq", release.seq)?;
    if latest.checked_add(1) != Some(seq) {
        return Err(conflict());
    }
    let inserted = tx
        .prepare_cached(&format!(
            "INSERT INTO release_history ({RELEASE_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
        ))?
        .execute(params![
            release.environment,
            seq,
            release.digest,
            release.kind.as_str(),
            release.from_environment,
            release.requested_by,
            codec::time_text(&release.at),
            release.policy_digest,
            release.reason,
            release.request_id,
            release.bundle,
            codec::opt_int("log index", release.log_index)?,
            release.vsa,
        ]);
    match inserted {
        Ok(_) => Ok(()),
        Err(err) => match (is_unique_violation(&err), key) {
            (Some(message), Some(key)) if message.contains("request_id") => {
                Err(StoreError::Duplicate(key.to_owned()).into())
            }
            (Some(_), _) => Err(conflict()),
            (None, _) => Err(err.into()),
        },
    }
}

/// Binds `release`'s request id (if any) to `request_sha256` (in the caller's transaction).
fn bind_request(tx: &Connection, release: &Release, request_sha256: &str) -> Result<(), Failure> {
    if let Some(key) = codec::request_key(release.request_id.as_deref()) {
        tx.prepare_cached(
            "INSERT INTO release_requests (request_id, request_sha256) VALUES (?1, ?2)",
        )?
        .execute(params![key, request_sha256])
        .map_err(|err| match is_unique_violation(&err) {
            Some(_) => Failure::Store(StoreError::Duplicate(key.to_owned())),
            None => err.into(),
        })?;
    }
    Ok(())
}

/// Records `event` (in the caller's transaction) and returns its id.
fn insert_event(tx: &Connection, event: &Event) -> Result<u64, Failure> {
    tx.prepare_cached(
        "INSERT INTO release_events (at, actor, action, object, log_index, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        codec::time_text(&event.at),
        event.actor,
        event.action,
        event.object,
        codec::opt_int("log index", event.log_index)?,
        codec::json_text("event detail", &event.detail)?,
    ])?;
    let id = tx.last_insert_rowid();
    Ok(u64::try_from(id).map_err(|_| format!("negative event id {id}"))?)
}

impl ReleaseStore for SqliteReleaseStore {
    fn initialize(&self) -> Result<(), StoreError> {
        self.write(
            || "cannot create the schema".to_owned(),
            |tx| Ok(tx.execute_batch(SCHEMA)?),
        )
    }

    fn put_artifact(&self, record: &ArtifactRecord) -> Result<bool, StoreError> {
        self.write(
            || format!("cannot store artifact {}", record.digest),
            |tx| {
                let inserted = tx
                    .prepare_cached(
                        "INSERT INTO release_artifacts
                         (digest, size, name, uploaded_by, uploaded_at, log_index)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (digest) DO NOTHING",
                    )?
                    .execute(params![
                        record.digest,
                        codec::int("artifact size", record.size)?,
                        record.name,
                        record.uploaded_by,
                        codec::time_text(&record.uploaded_at),
                        codec::opt_int("log index", record.log_index)?,
                    ])?;
                Ok(inserted == 1)
            },
        )
    }

    fn artifact(&self, digest: &str) -> Result<Option<ArtifactRecord>, StoreError> {
        self.read(
            || format!("cannot read artifact {digest}"),
            |conn| {
                first(
                    conn,
                    &format!("SELECT {ARTIFACT_COLUMNS} FROM release_artifacts WHERE digest = ?1"),
                    [digest],
                    codec::artifact,
                )
            },
        )
    }

    fn append_release(&self, release: &Release) -> Result<(), StoreError> {
        self.write(
            || {
                format!(
                    "cannot append release {} to {}",
                    release.seq, release.environment
                )
            },
            |tx| append(tx, release),
        )
    }

    fn append_release_with_event(
        &self,
        release: &Release,
        event: &Event,
    ) -> Result<u64, StoreError> {
        self.write(
            || {
                format!(
                    "cannot append release {} to {}",
                    release.seq, release.environment
                )
            },
            |tx| {
                append(tx, release)?;
                insert_event(tx, event)
            },
        )
    }

    fn append_release_for_request(
        &self,
        release: &Release,
        event: &Event,
        request_sha256: &str,
    ) -> Result<u64, StoreError> {
        self.write(
            || {
                format!(
                    "cannot append release {} to {}",
                    release.seq, release.environment
                )
            },
            |tx| {
                append(tx, release)?;
                bind_request(tx, release, request_sha256)?;
                insert_event(tx, event)
            },
        )
    }

    fn request_binding(&self, request_id: &str) -> Result<Option<String>, StoreError> {
        let Some(key) = codec::request_key(Some(request_id)) else {
            return Ok(None);
        };
        self.read(
            || format!("cannot read the binding of request {key}"),
            |conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT request_sha256 FROM release_requests WHERE request_id = ?1",
                    )?
                    .query_row([key], |row| row.get::<_, String>(0))
                    .optional()?)
            },
        )
    }

    fn current_release(&self, environment: &str) -> Result<Option<Release>, StoreError> {
        self.read(
            || format!("cannot read the current release of {environment}"),
            |conn| {
                first(
                    conn,
                    &format!(
                        "SELECT {RELEASE_COLUMNS} FROM release_history WHERE environment = ?1
                         ORDER BY seq DESC LIMIT 1"
                    ),
                    [environment],
                    codec::release,
                )
            },
        )
    }

    fn releases(&self, environment: &str) -> Result<Vec<Release>, StoreError> {
        self.read(
            || format!("cannot read the releases of {environment}"),
            |conn| {
                collect(
                    conn,
                    &format!(
                        "SELECT {RELEASE_COLUMNS} FROM release_history WHERE environment = ?1
                         ORDER BY seq"
                    ),
                    [environment],
                    codec::release,
                )
            },
        )
    }

    fn releases_of(&self, digest: &str) -> Result<Vec<Release>, StoreError> {
        self.read(
            || format!("cannot read the releases of {digest}"),
            |conn| {
                collect(
                    conn,
                    &format!(
                        "SELECT {RELEASE_COLUMNS} FROM release_history WHERE digest = ?1 ORDER BY id"
                    ),
                    [digest],
                    codec::release,
                )
            },
        )
    }

    fn release_by_request(&self, request_id: &str) -> Result<Option<Release>, StoreError> {
        let Some(key) = codec::request_key(Some(request_id)) else {
            return Ok(None);
        };
        self.read(
            || format!("cannot read the release for request {key}"),
            |conn| {
                first(
                    conn,
                    &format!("SELECT {RELEASE_COLUMNS} FROM release_history WHERE request_id = ?1"),
                    [key],
                    codec::release,
                )
            },
        )
    }

    fn add_revocation(&self, revocation: &Revocation) -> Result<Revocation, StoreError> {
        self.write(
            || format!("cannot store the revocation of {}", revocation.target),
            |tx| {
                tx.prepare_cached(
                    "INSERT INTO release_revocations
                         (target, reason, revoked_by, at, bundle, log_index)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    revocation.target,
                    revocation.reason,
                    revocation.revoked_by,
                    codec::time_text(&revocation.at),
                    revocation.bundle,
                    codec::opt_int("log index", revocation.log_index)?,
                ])?;
                let id = tx.last_insert_rowid();
                Ok(Revocation {
                    id: u64::try_from(id).map_err(|_| format!("negative revocation id {id}"))?,
                    ..revocation.clone()
                })
            },
        )
    }

    fn revocations(&self) -> Result<Vec<Revocation>, StoreError> {
        self.read(
            || "cannot read the revocations".to_owned(),
            |conn| {
                collect(
                    conn,
                    &format!("SELECT {REVOCATION_COLUMNS} FROM release_revocations ORDER BY id"),
                    [],
                    codec::revocation,
                )
            },
        )
    }

    fn quarantine(&self, record: &Quarantine) -> Result<bool, StoreError> {
        self.write(
            || format!("cannot quarantine {}", record.digest),
            |tx| {
                let inserted = tx
                    .prepare_cached(
                        "INSERT INTO release_quarantine (digest, revocation_id, at)
                         VALUES (?1, ?2, ?3) ON CONFLICT (digest) DO NOTHING",
                    )?
                    .execute(params![
                        record.digest,
                        codec::int("revocation id", record.revocation_id)?,
                        codec::time_text(&record.at),
                    ])?;
                Ok(inserted == 1)
            },
        )
    }

    fn quarantined(&self, digest: &str) -> Result<Option<Quarantine>, StoreError> {
        self.read(
            || format!("cannot read the quarantine of {digest}"),
            |conn| {
                first(
                    conn,
                    &format!(
                        "SELECT {QUARANTINE_COLUMNS} FROM release_quarantine WHERE digest = ?1"
                    ),
                    [digest],
                    codec::quarantine,
                )
            },
        )
    }

    fn quarantine_list(&self) -> Result<Vec<Quarantine>, StoreError> {
        self.read(
            || "cannot read the quarantine list".to_owned(),
            |conn| {
                collect(
                    conn,
                    &format!("SELECT {QUARANTINE_COLUMNS} FROM release_quarantine ORDER BY id"),
                    [],
                    codec::quarantine,
                )
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
            |tx| {
                tx.prepare_cached(
                    "INSERT INTO release_incidents (revocation_id, detected_at, introduced_at,
                         recovered_at, status, affected_digests, recoveries)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    codec::int("revocation id", incident.revocation_id)?,
                    codec::time_text(&incident.detected_at),
                    codec::opt_time_text(incident.introduced_at.as_ref()),
                    codec::opt_time_text(incident.recovered_at.as_ref()),
                    incident.status,
                    codec::json_text("affected digests", &incident.affected_digests)?,
                    codec::json_text("recoveries", &incident.recoveries)?,
                ])?;
                let id = tx.last_insert_rowid();
                Ok(Incident {
                    id: u64::try_from(id).map_err(|_| format!("negative incident id {id}"))?,
                    ..incident.clone()
                })
            },
        )
    }

    fn update_incident(&self, incident: &Incident) -> Result<(), StoreError> {
        self.write(
            || format!("cannot update incident {}", incident.id),
            |tx| {
                let updated = tx
                    .prepare_cached(
                        "UPDATE release_incidents SET revocation_id = ?2, detected_at = ?3,
                             introduced_at = ?4, recovered_at = ?5, status = ?6,
                             affected_digests = ?7, recoveries = ?8
                         WHERE id = ?1",
                    )?
                    .execute(params![
                        codec::int("incident id", incident.id)?,
                        codec::int("revocation id", incident.revocation_id)?,
                        codec::time_text(&incident.detected_at),
                        codec::opt_time_text(incident.introduced_at.as_ref()),
                        codec::opt_time_text(incident.recovered_at.as_ref()),
                        incident.status,
                        codec::json_text("affected digests", &incident.affected_digests)?,
                        codec::json_text("recoveries", &incident.recoveries)?,
                    ])?;
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
            |conn| {
                collect(
                    conn,
                    &format!("SELECT {INCIDENT_COLUMNS} FROM release_incidents ORDER BY id"),
                    [],
                    codec::incident,
                )
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
            |tx| {
                tx.prepare_cached(&format!(
                    "INSERT INTO release_deployments ({DEPLOYMENT_COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                ))?
                .execute(params![
                    deployment.environment,
                    codec::int("deployment seq", deployment.seq)?,
                    deployment.digest,
                    deployment.agent,
                    deployment.status,
                    deployment.detail,
                    codec::time_text(&deployment.at),
                ])?;
                Ok(())
            },
        )
    }

    fn deployments(&self, environment: &str) -> Result<Vec<Deployment>, StoreError> {
        self.read(
            || format!("cannot read the deployments of {environment}"),
            |conn| {
                collect(
                    conn,
                    &format!(
                        "SELECT {DEPLOYMENT_COLUMNS} FROM release_deployments
                         WHERE environment = ?1 ORDER BY id"
                    ),
                    [environment],
                    codec::deployment,
                )
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
            |tx| insert_event(tx, event),
        )
    }

    fn events(&self, object: Option<&str>) -> Result<Vec<Event>, StoreError> {
        self.read(
            || match object {
                Some(object) => format!("cannot read the events on {object}"),
                None => "cannot read the events".to_owned(),
            },
            |conn| match object {
                Some(object) => collect(
                    conn,
                    &format!(
                        "SELECT {EVENT_COLUMNS} FROM release_events WHERE object = ?1 ORDER BY id"
                    ),
                    [object],
                    codec::event,
                ),
                None => collect(
                    conn,
                    &format!("SELECT {EVENT_COLUMNS} FROM release_events ORDER BY id"),
                    [],
                    codec::event,
                ),
            },
        )
    }
}
