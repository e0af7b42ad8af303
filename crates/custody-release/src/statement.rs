//! The in-toto statements custody signs for release events. Each is signed (DSSE) and logged;
//! the server keeps the bundle beside the record, so history can be verified offline.

use chrono::{DateTime, SecondsFormat, Utc};
use custody_core::digest::Sha256Digest;
use custody_core::intoto::{ResourceDescriptor, Statement};
use serde_json::{Value as Json, json};

use crate::model::ReleaseKind;

/// An approver's signed approval of a digest for an environment.
pub const APPROVAL_V1: &str = "https://custody.dev/approval/v1";
/// The server's record that an environment's current release changed.
pub const RELEASE_V1: &str = "https://custody.dev/release/v1";
/// The server's short-lived word that a release is an environment's current one, and not
/// revoked, right now (a TUF timestamp-role style attestation; signed, not logged).
pub const CURRENT_RELEASE_V1: &str = "https://custody.dev/current-release/v1";
/// A revocation of a key, identity, builder or digest.
pub const REVOCATION_V1: &str = "https://custody.dev/revocation/v1";
/// The server's record that an artifact entered its content-addressed store.
pub const UPLOAD_V1: &str = "https://custody.dev/upload/v1";
/// An old key's statement introducing its successor.
pub const KEY_ROTATION_V1: &str = "https://custody.dev/key-rotation/v1";

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `approver` approves `digest` for `environment`.
pub fn approval(
    digest: &Sha256Digest,
    name: &str,
    environment: &str,
    approver: &str,
    at: DateTime<Utc>,
    comment: Option<&str>,
) -> Statement {
    Statement::new_v1(
        vec![ResourceDescriptor::from_sha256(name, digest)],
        APPROVAL_V1,
        json!({
            "environment": environment,
            "approver": approver,
            "approvedAt": rfc3339(at),
            "comment": comment,
        }),
    )
}

/// What a release statement says.
#[derive(Debug, Clone)]
pub struct ReleaseFacts<'a> {
    pub digest: &'a Sha256Digest,
    pub environment: &'a str,
    pub seq: u64,
    pub kind: ReleaseKind,
    pub from_environment: Option<&'a str>,
    pub requested_by: &'a str,
    pub policy_digest: &'a str,
    pub reason: Option<&'a str>,
    pub at: DateTime<Utc>,
    /// The release it replaces, as (seq, digest).
    pub previous: Option<(u64, &'a str)>,
}

pub fn release(f: &ReleaseFacts<'_>) -> Statement {
    Statement::new_v1(
        vec![ResourceDescriptor::from_sha256(f.environment, f.digest)],
        RELEASE_V1,
        json!({
            "environment": f.environment,
            "seq": f.seq,
            "kind": f.kind.as_str(),
            "fromEnvironment": f.from_environment,
            "requestedBy": f.requested_by,
            "policyDigest": f.policy_digest,
            "reason": f.reason,
            "releasedAt": rfc3339(f.at),
            "previous": f.previous.map(|(seq, digest)| json!({"seq": seq, "digest": digest})),
        }),
    )
}

/// What a current-release statement says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentFacts {
    pub environment: String,
    /// The current release's seq and digest.
    pub seq: u64,
    pub digest: Sha256Digest,
    /// SHA-256 of the release record's bundle (the signed, logged release statement).
    pub release_bundle: Sha256Digest,
    /// The release record's log index, when it was logged.
    pub release_log_index: Option<u64>,
    pub issued_at: DateTime<Utc>,
    pub expires: DateTime<Utc>,
    /// The log checkpoint it was issued under: (tree size, base64 root hash).
    pub checkpoint: Option<(u64, String)>,
}

/// `environment`'s current release is `seq` (`digest`), as of `issued_at`, until `expires`.
pub fn current_release(f: &CurrentFacts) -> Statement {
    Statement::new_v1(
        vec![ResourceDescriptor::from_sha256(&f.environment, &f.digest)],
        CURRENT_RELEASE_V1,
        json!({
            "environment": f.environment,
            "seq": f.seq,
            "release": {
                "bundleDigest": f.release_bundle.to_string(),
                "logIndex": f.release_log_index,
            },
            "issuedAt": rfc3339(f.issued_at),
            "expires": rfc3339(f.expires),
            "checkpoint": f.checkpoint.as_ref().map(|(size, root)| json!({"treeSize": size, "rootHash": root})),
        }),
    )
}

/// Reads the facts of a (verified) current-release statement; the error says what is missing.
pub fn current_facts(statement: &Statement) -> Result<CurrentFacts, String> {
    if statement.predicate_type != CURRENT_RELEASE_V1 {
        return Err(format!(
            "its predicateType is {:?}, not {CURRENT_RELEASE_V1}",
            statement.predicate_type
        ));
    }
    let [subject] = statement.subject.as_slice() else {
        return Err(format!(
            "it has {} subjects, not one",
            statement.subject.len()
        ));
    };
    let digest = subject
        .digest
        .get("sha256")
        .and_then(|hex| Sha256Digest::from_hex(hex).ok())
        .ok_or("its subject has no sha256 digest")?;
    let p = &statement.predicate;
    let time = |name: &str| {
        field(p, name)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| format!("it has no {name} (RFC 3339)"))
    };
    let environment = field(p, "environment")
        .ok_or("it names no environment")?
        .to_owned();
    if subject.name.as_deref() != Some(environment.as_str()) {
        return Err("its subject is not named after its environment".into());
    }
    let seq = p
        .get("seq")
        .and_then(Json::as_u64)
        .filter(|s| *s >= 1)
        .ok_or("it has no seq (a positive integer)")?;
    let release_bundle = p
        .get("release")
        .and_then(|r| field(r, "bundleDigest"))
        .and_then(|d| d.parse::<Sha256Digest>().ok())
        .ok_or("it names no release.bundleDigest")?;
    let release_log_index = p
        .get("release")
        .and_then(|r| r.get("logIndex"))
        .and_then(Json::as_u64);
    let checkpoint = match p.get("checkpoint") {
        None | Some(Json::Null) => None,
        Some(c) => Some((
            c.get("treeSize")
                .and_then(Json::as_u64)
                .ok_or("its checkpoint has no treeSize")?,
            field(c, "rootHash")
                .ok_or("its checkpoint has no rootHash")?
                .to_owned(),
        )),
    };
    Ok(CurrentFacts {
        environment,
        seq,
        digest,
        release_bundle,
        release_log_index,
        issued_at: time("issuedAt")?,
        expires: time("expires")?,
        checkpoint,
    })
}

/// The subject a revocation statement is about: the target string's own digest.
pub fn revocation(target: &str, reason: &str, at: DateTime<Utc>) -> Statement {
    Statement::new_v1(
        vec![ResourceDescriptor::from_sha256(
            target,
            &Sha256Digest::of(target.as_bytes()),
        )],
        REVOCATION_V1,
        json!({ "target": target, "reason": reason, "revokedAt": rfc3339(at) }),
    )
}

pub fn upload(
    digest: &Sha256Digest,
    name: &str,
    size: u64,
    uploaded_by: &str,
    at: DateTime<Utc>,
) -> Statement {
    Statement::new_v1(
        vec![ResourceDescriptor::from_sha256(name, digest)],
        UPLOAD_V1,
        json!({ "uploadedBy": uploaded_by, "uploadedAt": rfc3339(at), "size": size }),
    )
}

/// The old key introduces the new one; signatures by the old key stay valid for entries
/// logged before `retire_at`.
pub fn key_rotation(
    old_key_id: &str,
    new_key_id: &str,
    new_key_pem: &str,
    retire_at: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Statement {
    let subject = format!("key:{new_key_id}");
    Statement::new_v1(
        vec![ResourceDescriptor::from_sha256(
            subject.clone(),
            &Sha256Digest::of(subject.as_bytes()),
        )],
        KEY_ROTATION_V1,
        json!({
            "oldKeyId": old_key_id,
            "newKeyId": new_key_id,
            "newKey": new_key_pem,
            "retireAt": rfc3339(retire_at),
            "rotatedAt": rfc3339(at),
        }),
    )
}

/// Parses a revocation target: `key:ID`, `identity:SAN`, `builder:ID` or `digest:sha256:HEX`.
pub fn parse_target(target: &str) -> Result<(&str, &str), String> {
    let (kind, value) = target.split_once(':').ok_or_else(|| {
        format!("revocation target {target:?}: expected key:ID, identity:SAN, builder:ID or digest:sha256:HEX")
    })?;
    if value.is_empty() {
        return Err(format!(
            "revocation target {target:?} names nothing after {kind:?}"
        ));
    }
    match kind {
        "key" => {
            if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "revocation target {target:?}: a key id is 64 hex digits (`custody key id PUBKEY`)"
                ));
            }
        }
        "digest" => {
            value
                .parse::<Sha256Digest>()
                .map_err(|e| format!("revocation target {target:?}: {e}"))?;
        }
        "identity" | "builder" => {}
        _ => {
            return Err(format!(
                "revocation target {target:?}: unknown kind {kind:?} (key, identity, builder or digest)"
            ));
        }
    }
    Ok((kind, value))
}

/// A predicate field as text.
pub fn field<'a>(predicate: &'a Json, name: &str) -> Option<&'a str> {
    predicate.get(name).and_then(Json::as_str)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            parse_target(&format!("key:{}", "ab".repeat(32))).unwrap().0,
            "key"
        );
        assert!(parse_target("key:abc").is_err());
        assert!(parse_target("digest:sha256:zz").is_err());
        assert!(parse_target("builder:https://ci.example/runner").is_ok());
        assert!(parse_target("color:red").is_err());
        assert!(parse_target("identity:").is_err());
    }

    #[test]
    fn statements_are_valid_in_toto() {
        let d = Sha256Digest::of(b"x");
        let now = Utc::now();
        for s in [
            approval(&d, "app", "prod", "alice", now, None),
            release(&ReleaseFacts {
                digest: &d,
                environment: "prod",
                seq: 2,
                kind: ReleaseKind::Rollback,
                from_environment: None,
                requested_by: "custody",
                policy_digest: "sha256:00",
                reason: Some("incident 1"),
                at: now,
                previous: Some((1, "sha256:aa")),
            }),
            revocation("key:00", "stolen", now),
            current_release(&CurrentFacts {
                environment: "prod".into(),
                seq: 2,
                digest: d,
                release_bundle: Sha256Digest::of(b"bundle"),
                release_log_index: Some(7),
                issued_at: now,
                expires: now + chrono::Duration::minutes(5),
                checkpoint: Some((8, "AAAA".into())),
            }),
            upload(&d, "app", 1, "ci", now),
        ] {
            s.validate().unwrap();
            Statement::from_json(&s.to_json_bytes()).unwrap();
        }
    }

    #[test]
    fn current_release_facts_round_trip() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let facts = CurrentFacts {
            environment: "prod".into(),
            seq: 3,
            digest: Sha256Digest::of(b"app"),
            release_bundle: Sha256Digest::of(b"bundle"),
            release_log_index: None,
            issued_at: now,
            expires: now + chrono::Duration::minutes(5),
            checkpoint: None,
        };
        let statement = current_release(&facts);
        assert_eq!(current_facts(&statement).unwrap(), facts);
        let mut other = statement.clone();
        other.predicate_type = RELEASE_V1.into();
        assert!(current_facts(&other).unwrap_err().contains("predicateType"));
        let mut other = statement.clone();
        other.predicate["expires"] = json!("soon");
        assert!(current_facts(&other).unwrap_err().contains("expires"));
    }
}
