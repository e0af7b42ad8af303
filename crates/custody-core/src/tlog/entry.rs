//! One entry: log lookup, body, inclusion promise (SET), inclusion proof and checkpoint.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{LogCheckpoint, LogId, ProofProblem, TlogError, TlogOptions, VerifiedTlogEntry};
use crate::bundle::{BundleVersion, InclusionProof, TransparencyLogEntry};
use crate::encoding::base64_encode;
use crate::keys::{KeyAlgorithm, PublicKey, SignedData};
use crate::merkle::{Hash, leaf_hash, verify_inclusion};
use crate::note::{NoteVerifier, SignedCheckpoint, require_cosignatures};
use crate::rekor::RekorBody;
use crate::trust_root::{TransparencyLogInstance, TrustedRoot};

/// The bytes a Rekor v1 SET signs (SPECS §4.4 step 3, §5.2): JCS of
/// `{"body":<base64 body>,"integratedTime":<int>,"logID":<hex log id>,"logIndex":<global int>}`.
pub fn set_payload(entry: &TransparencyLogEntry) -> Vec<u8> {
    let payload = json!({
        "body": base64_encode(&entry.canonicalized_body),
        "integratedTime": entry.integrated_time,
        "logID": hex::encode(&entry.log_id),
        "logIndex": entry.log_index,
    });
    // Two integers and two strings always have a canonical form.
    crate::jcs::canonicalize(&payload)
        .unwrap_or_default()
        .into_bytes()
}

/// The entry and its log: the context every error names (log id, log index).
struct Ctx<'a> {
    entry: &'a TransparencyLogEntry,
    log: &'a TransparencyLogInstance,
}

impl Ctx<'_> {
    fn id(&self) -> LogId {
        LogId(self.entry.log_id.clone())
    }

    fn index(&self) -> i64 {
        self.entry.log_index
    }

    /// A `validFor` without a start contains no time at all (see `ValidityPeriod::contains`).
    fn key_ever_valid(&self) -> Result<(), TlogError> {
        match self.log.public_key.valid_for.start {
            Some(_) => Ok(()),
            None => Err(TlogError::LogKeyNeverValid {
                log_id: self.id(),
                log_index: self.index(),
                base_url: self.log.base_url.clone(),
            }),
        }
    }

    fn key_valid_at(&self, time: DateTime<Utc>) -> Result<(), TlogError> {
        self.key_ever_valid()?;
        if !self.log.public_key.valid_for.contains(time) {
            return Err(TlogError::LogKeyNotValidAt {
                log_id: self.id(),
                log_index: self.index(),
                base_url: self.log.base_url.clone(),
                time,
                valid_for: self.log.public_key.valid_for.clone(),
            });
        }
        Ok(())
    }

    /// No trusted time at all: the key must be valid at `now` (a retired key vouches for
    /// nothing whose time nobody vouches for).
    fn key_valid_now(&self, now: DateTime<Utc>) -> Result<(), TlogError> {
        self.key_ever_valid()?;
        if !self.log.public_key.valid_for.contains(now) {
            return Err(TlogError::LogKeyNotValidNow {
                log_id: self.id(),
                log_index: self.index(),
                base_url: self.log.base_url.clone(),
                now,
                valid_for: self.log.public_key.valid_for.clone(),
            });
        }
        Ok(())
    }
}

pub(super) fn verify(
    entry: &TransparencyLogEntry,
    version: BundleVersion,
    root: &TrustedRoot,
    options: &TlogOptions<'_>,
) -> Result<VerifiedTlogEntry, TlogError> {
    let log = root
        .tlog_by_log_id(&entry.log_id)
        .ok_or_else(|| TlogError::UnknownLog {
            log_id: LogId(entry.log_id.clone()),
            log_index: entry.log_index,
        })?;
    let ctx = Ctx { entry, log };
    let body = parse_body(&ctx)?;

    let integrated_time = match &entry.inclusion_promise {
        Some(set) => Some(verify_promise(&ctx, set)?),
        None if version == BundleVersion::V0_1 => {
            return Err(TlogError::MissingPromise {
                log_id: ctx.id(),
                log_index: ctx.index(),
                media_type: version.media_type().to_owned(),
            });
        }
        None => {
            // No time of its own: the key must be valid whenever other evidence says the
            // signature was made, and without such evidence, now.
            ctx.key_ever_valid()?;
            if options.signed_times.is_empty() {
                ctx.key_valid_now(options.now.unwrap_or_else(Utc::now))?;
            }
            for time in options.signed_times {
                ctx.key_valid_at(*time)?;
            }
            None
        }
    };

    let checkpoint = match &entry.inclusion_proof {
        Some(proof) => {
            // Rekor v2 (kinds at 0.0.2) has no shards and no signed entry timestamp: the entry's
            // index is authenticated only through its inclusion proof, so the two must agree.
            if integrated_time.is_none()
                && entry.version == "0.0.2"
                && entry.log_index != proof.log_index
            {
                return Err(TlogError::IndexMismatch {
                    log_id: ctx.id(),
                    log_index: entry.log_index,
                    proof_index: proof.log_index,
                });
            }
            Some(verify_proof(&ctx, proof, options)?)
        }
        None if version >= BundleVersion::V0_2 => {
            return Err(TlogError::MissingProof {
                log_id: ctx.id(),
                log_index: ctx.index(),
                media_type: version.media_type().to_owned(),
            });
        }
        None => None,
    };
    Ok(VerifiedTlogEntry {
        log_id: ctx.id(),
        log_index: entry.log_index,
        integrated_time,
        checkpoint,
        body,
        log_base_url: log.base_url.clone(),
    })
}

fn parse_body(ctx: &Ctx<'_>) -> Result<RekorBody, TlogError> {
    let body =
        RekorBody::parse(&ctx.entry.canonicalized_body).map_err(|source| TlogError::Body {
            log_id: ctx.id(),
            log_index: ctx.index(),
            source,
        })?;
    if body.kind() != ctx.entry.kind || body.version() != ctx.entry.version {
        return Err(TlogError::KindMismatch {
            log_id: ctx.id(),
            log_index: ctx.index(),
            declared: format!("{} {}", ctx.entry.kind, ctx.entry.version),
            body_kind: body.kind(),
            body_version: body.version(),
        });
    }
    Ok(body)
}

/// The log's key as the trusted root describes it (`keyDetails` picks RSA padding).
fn log_key(ctx: &Ctx<'_>) -> Result<PublicKey, TlogError> {
    let key_error = |source| TlogError::LogKey {
        log_id: ctx.id(),
        log_index: ctx.index(),
        base_url: ctx.log.base_url.clone(),
        source: Box::new(source),
    };
    let spki = ctx.log.public_key.raw_bytes.as_deref().unwrap_or_default();
    let key = PublicKey::from_spki_der(spki).map_err(key_error)?;
    match KeyAlgorithm::from_sigstore_key_details(&ctx.log.public_key.key_details) {
        Some(algorithm) => key.with_algorithm(algorithm).map_err(key_error),
        None => Ok(key),
    }
}

/// SPECS §4.4 step 3: the key must be valid at `integratedTime`, then the SET must verify.
fn verify_promise(ctx: &Ctx<'_>, set: &[u8]) -> Result<DateTime<Utc>, TlogError> {
    let not_valid = |time| TlogError::LogKeyNotValidAt {
        log_id: ctx.id(),
        log_index: ctx.index(),
        base_url: ctx.log.base_url.clone(),
        time,
        valid_for: ctx.log.public_key.valid_for.clone(),
    };
    let time = DateTime::<Utc>::from_timestamp(ctx.entry.integrated_time, 0)
        .ok_or_else(|| not_valid(DateTime::<Utc>::MAX_UTC))?;
    ctx.key_valid_at(time)?;
    let key = log_key(ctx)?;
    key.verify(SignedData::Message(&set_payload(ctx.entry)), set)
        .map_err(|source| TlogError::InvalidPromise {
            log_id: ctx.id(),
            log_index: ctx.index(),
            source,
        })?;
    Ok(time)
}

fn malformed(ctx: &Ctx<'_>, problem: ProofProblem) -> TlogError {
    TlogError::MalformedProof {
        log_id: ctx.id(),
        log_index: ctx.index(),
        problem,
    }
}

/// RFC 6962 inclusion at the shard-local index, then the checkpoint (C2SP signed note).
fn verify_proof(
    ctx: &Ctx<'_>,
    proof: &InclusionProof,
    options: &TlogOptions<'_>,
) -> Result<LogCheckpoint, TlogError> {
    let root_hash = Hash::try_from(proof.root_hash.as_slice())
        .map_err(|_| malformed(ctx, ProofProblem::RootHashLength(proof.root_hash.len())))?;
    let mut path = Vec::with_capacity(proof.hashes.len());
    for (index, h) in proof.hashes.iter().enumerate() {
        let h = Hash::try_from(h.as_slice()).map_err(|_| {
            malformed(
                ctx,
                ProofProblem::ProofHashLength {
                    index,
                    len: h.len(),
                },
            )
        })?;
        path.push(h);
    }
    // The bundle parser refuses negative values, so these conversions do not fail; if they
    // did, index ≥ size makes the proof fail.
    let index = u64::try_from(proof.log_index).unwrap_or(u64::MAX);
    let size = u64::try_from(proof.tree_size).unwrap_or(0);
    let leaf = leaf_hash(&ctx.entry.canonicalized_body);
    verify_inclusion(index, size, &leaf, &path, &root_hash).map_err(|source| {
        TlogError::InvalidProof {
            log_id: ctx.id(),
            log_index: ctx.index(),
            source,
        }
    })?;
    let checkpoint = verify_checkpoint(ctx, &proof.checkpoint, options)?;
    if checkpoint.size != size || checkpoint.root_hash != root_hash {
        return Err(TlogError::CheckpointMismatch {
            log_id: ctx.id(),
            log_index: ctx.index(),
            checkpoint: format!(
                "size {} root {}",
                checkpoint.size,
                hex::encode(checkpoint.root_hash)
            ),
            proof: format!("size {size} root {}", hex::encode(root_hash)),
        });
    }
    Ok(checkpoint)
}

/// The signed-note key name of a log: its base URL without scheme or trailing slash
/// (`https://rekor.sigstore.dev` → `rekor.sigstore.dev`), the name Rekor v1 and rekor-tiles
/// sign checkpoints under.
pub(super) fn key_name(base_url: &str) -> &str {
    let rest = base_url
        .strip_prefix("https://")
        .or_else(|| base_url.strip_prefix("http://"))
        .unwrap_or(base_url);
    rest.trim_end_matches('/')
}

/// Rekor v2 / C2SP tlog-checkpoint: origin = key name. Rekor v1: origin =
/// `<key name> - <decimal tree ID>` (SPECS §5.3).
pub(super) fn origin_matches(origin: &str, name: &str) -> bool {
    origin == name
        || origin
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(" - "))
            .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
}

fn verify_checkpoint(
    ctx: &Ctx<'_>,
    text: &str,
    options: &TlogOptions<'_>,
) -> Result<LogCheckpoint, TlogError> {
    let name = key_name(&ctx.log.base_url);
    let spki = ctx.log.public_key.raw_bytes.as_deref().unwrap_or_default();
    let verifier =
        NoteVerifier::from_spki(name, spki).map_err(|source| TlogError::CheckpointKey {
            log_id: ctx.id(),
            log_index: ctx.index(),
            base_url: ctx.log.base_url.clone(),
            source,
        })?;
    // C2SP signed-note: lines from other keys (witnesses, other log keys) are ignored; the
    // line from this log's (name, key ID) must be present and verify.
    let signed = SignedCheckpoint::verify(text, &[verifier]).map_err(|source| {
        TlogError::InvalidCheckpoint {
            log_id: ctx.id(),
            log_index: ctx.index(),
            source,
        }
    })?;
    let checkpoint = signed.checkpoint();
    if !origin_matches(checkpoint.origin(), name) {
        return Err(TlogError::CheckpointOrigin {
            log_id: ctx.id(),
            log_index: ctx.index(),
            origin: checkpoint.origin().to_owned(),
            expected: name.to_owned(),
        });
    }
    if options.witness_threshold > 0 {
        require_cosignatures(
            signed.note().note(),
            options.witnesses,
            options.witness_threshold,
        )
        .map_err(|source| TlogError::Witnesses {
            log_id: ctx.id(),
            log_index: ctx.index(),
            source,
        })?;
    }
    Ok(LogCheckpoint {
        origin: checkpoint.origin().to_owned(),
        size: checkpoint.size(),
        root_hash: *checkpoint.root_hash(),
    })
}
