//! What both backends share: how records become columns and back.
//!
//! Times are stored as RFC 3339 text with nanoseconds (`2024-05-01T12:00:00.123456789Z`), so
//! they round-trip exactly; unsigned integers as signed 64-bit integers (an error beyond
//! `i64::MAX`); lists and JSON values as JSON text.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::model::{
    ArtifactRecord, Deployment, Event, Incident, Quarantine, Recovery, Release, Revocation,
};

pub(super) const ARTIFACT_COLUMNS: &str = "digest, size, name, uploaded_by, uploaded_at, log_index";
pub(super) const RELEASE_COLUMNS: &str = "environment, seq, digest, kind, from_environment, \
     requested_by, at, policy_digest, reason, request_id, bundle, log_index, vsa";
pub(super) const REVOCATION_COLUMNS: &str = "id, target, reason, revoked_by, at, bundle, log_index";
pub(super) const QUARANTINE_COLUMNS: &str = "digest, revocation_id, at";
pub(super) const INCIDENT_COLUMNS: &str = "id, revocation_id, detected_at, introduced_at, \
     recovered_at, status, affected_digests, recoveries";
pub(super) const DEPLOYMENT_COLUMNS: &str = "environment, seq, digest, agent, status, detail, at";
pub(super) const EVENT_COLUMNS: &str = "id, at, actor, action, object, log_index, detail";

/// A URL without its password, for messages.
pub(super) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…{}", &url[..scheme], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// `text` on one line (database messages may carry DETAIL and HINT lines).
pub(super) fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

pub(super) fn time_text(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

pub(super) fn opt_time_text(at: Option<&DateTime<Utc>>) -> Option<String> {
    at.map(time_text)
}

/// `value` as a signed integer column.
pub(super) fn int(what: &str, value: u64) -> Result<i64, String> {
    i64::try_from(value).map_err(|_| format!("{what} {value} is too large to store"))
}

pub(super) fn opt_int(what: &str, value: Option<u64>) -> Result<Option<i64>, String> {
    value.map(|v| int(what, v)).transpose()
}

pub(super) fn json_text<T: serde::Serialize + ?Sized>(
    what: &str,
    value: &T,
) -> Result<String, String> {
    serde_json::to_string(value).map_err(|e| format!("cannot encode {what}: {e}"))
}

/// Reading one row of either backend by column position.
pub(super) trait Columns {
    fn text(&self, i: usize) -> Result<String, String>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, String>;
    fn int(&self, i: usize) -> Result<i64, String>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, String>;

    fn uint(&self, i: usize, what: &str) -> Result<u64, String> {
        let value = self.int(i)?;
        u64::try_from(value).map_err(|_| format!("stored {what} {value} is negative"))
    }

    fn opt_uint(&self, i: usize, what: &str) -> Result<Option<u64>, String> {
        self.opt_int(i)?
            .map(|value| {
                u64::try_from(value).map_err(|_| format!("stored {what} {value} is negative"))
            })
            .transpose()
    }

    fn time(&self, i: usize, what: &str) -> Result<DateTime<Utc>, String> {
        parse_time(&self.text(i)?, what)
    }

    fn opt_time(&self, i: usize, what: &str) -> Result<Option<DateTime<Utc>>, String> {
        self.opt_text(i)?
            .map(|text| parse_time(&text, what))
            .transpose()
    }
}

fn json<T: serde::de::DeserializeOwned>(
    row: &dyn Columns,
    i: usize,
    what: &str,
) -> Result<T, String> {
    let text = row.text(i)?;
    serde_json::from_str(&text).map_err(|e| format!("stored {what} is not valid JSON: {e}"))
}

fn parse_time(text: &str, what: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("stored {what} {text:?} is not an RFC 3339 time: {e}"))
}

/// A row of [`ARTIFACT_COLUMNS`].
pub(super) fn artifact(row: &dyn Columns) -> Result<ArtifactRecord, String> {
    Ok(ArtifactRecord {
        digest: row.text(0)?,
        size: row.uint(1, "artifact size")?,
        name: row.opt_text(2)?,
        uploaded_by: row.text(3)?,
        uploaded_at: row.time(4, "upload time")?,
        log_index: row.opt_uint(5, "log index")?,
    })
}

/// A row of [`RELEASE_COLUMNS`].
pub(super) fn release(row: &dyn Columns) -> Result<Release, String> {
    Ok(Release {
        environment: row.text(0)?,
        seq: row.uint(1, "release seq")?,
        digest: row.text(2)?,
        kind: row.text(3)?.parse()?,
        from_environment: row.opt_text(4)?,
        requested_by: row.text(5)?,
        at: row.time(6, "release time")?,
        policy_digest: row.text(7)?,
        reason: row.opt_text(8)?,
        request_id: row.opt_text(9)?,
        bundle: row.text(10)?,
        log_index: row.opt_uint(11, "log index")?,
        vsa: row.opt_text(12)?,
    })
}

/// A row of [`REVOCATION_COLUMNS`].
pub(super) fn revocation(row: &dyn Columns) -> Result<Revocation, String> {
    Ok(Revocation {
        id: row.uint(0, "revocation id")?,
        target: row.text(1)?,
        reason: row.text(2)?,
        revoked_by: row.text(3)?,
        at: row.time(4, "revocation time")?,
        bundle: row.text(5)?,
        log_index: row.opt_uint(6, "log index")?,
    })
}

/// A row of [`QUARANTINE_COLUMNS`].
pub(super) fn quarantine(row: &dyn Columns) -> Result<Quarantine, String> {
    Ok(Quarantine {
        digest: row.text(0)?,
        revocation_id: row.uint(1, "revocation id")?,
        at: row.time(2, "quarantine time")?,
    })
}

/// A row of [`INCIDENT_COLUMNS`].
pub(super) fn incident(row: &dyn Columns) -> Result<Incident, String> {
    Ok(Incident {
        id: row.uint(0, "incident id")?,
        revocation_id: row.uint(1, "revocation id")?,
        detected_at: row.time(2, "detection time")?,
        introduced_at: row.opt_time(3, "introduction time")?,
        recovered_at: row.opt_time(4, "recovery time")?,
        status: row.text(5)?,
        affected_digests: json(row, 6, "affected digests")?,
        recoveries: json::<Vec<Recovery>>(row, 7, "recoveries")?,
    })
}

/// A row of [`DEPLOYMENT_COLUMNS`].
pub(super) fn deployment(row: &dyn Columns) -> Result<Deployment, String> {
    Ok(Deployment {
        environment: row.text(0)?,
        seq: row.uint(1, "deployment seq")?,
        digest: row.text(2)?,
        agent: row.text(3)?,
        status: row.text(4)?,
        detail: row.opt_text(5)?,
        at: row.time(6, "deployment time")?,
    })
}

/// A row of [`EVENT_COLUMNS`].
pub(super) fn event(row: &dyn Columns) -> Result<Event, String> {
    Ok(Event {
        id: row.uint(0, "event id")?,
        at: row.time(1, "event time")?,
        actor: row.text(2)?,
        action: row.text(3)?,
        object: row.text(4)?,
        log_index: row.opt_uint(5, "log index")?,
        detail: json(row, 6, "event detail")?,
    })
}

/// The request id that makes a release unique: a non-empty one.
pub(super) fn request_key(request_id: Option<&str>) -> Option<&str> {
    request_id.filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn times_keep_nanoseconds() {
        let at = DateTime::from_timestamp(1_714_564_800, 123_456_789).unwrap();
        let text = time_text(&at);
        assert_eq!(text, "2024-05-01T12:00:00.123456789Z");
        assert_eq!(parse_time(&text, "t").unwrap(), at);
    }

    #[test]
    fn messages_are_one_line_without_passwords() {
        assert_eq!(one_line("ERROR: x\nDETAIL: y\n"), "ERROR: x; DETAIL: y");
        assert_eq!(redact("postgres://u:pw@h/db"), "postgres://…@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }
}
