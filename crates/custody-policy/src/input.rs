//! The policy input document (`docs/policy-input.md`): the artifact, the environment, the time,
//! the evidence that **passed verification**, and what was rejected and why.
//!
//! [`verify_evidence`] is the only way evidence gets into an input: each candidate bundle is
//! parsed and verified against the [`TrustSet`] (keys, trusted root) for the artifact; what
//! verifies becomes an [`Evidence`] built from the verified result (the statement is the one
//! parsed from the exact payload bytes whose signature verified), everything else a
//! [`Rejected`] with the verifier's stable code. Policy never sees an unverified claim.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use custody_core::bundle::{Bundle, Material};
use custody_core::digest::Sha256Digest;
use custody_core::encoding::base64_encode;
use custody_core::keys::{KeyAlgorithm, PublicKey};
use custody_core::trust_root::TrustedRoot;
use custody_core::verify::{
    self, Artifact, KeyVerifyOptions, KeylessPolicy, TimeSource, VerifiedBundle, VerifiedContent,
    VerifiedSigner, VerifyError,
};
use custody_core::x509::{IdentityMatcher, IdentityPattern};
use serde::Serialize;
use serde_json::{Value as Json, json};

use crate::release::ReleaseState;
use crate::verdict::ArtifactRef;

/// What evidence is verified against.
#[derive(Debug, Default)]
pub struct TrustSet {
    /// Public keys whose signatures count (bundles with a key hint).
    pub keys: Vec<PublicKey>,
    /// Fulcio CAs, Rekor logs and TSAs (certificate bundles; log entries of key bundles).
    pub root: Option<TrustedRoot>,
    /// The digest of the trusted root's bytes, for cache keys and verdicts.
    pub root_digest: Option<Sha256Digest>,
}

impl TrustSet {
    /// A digest of what verification trusts: every key id (in order) and the trusted root's
    /// digest. Two trust sets with the same fingerprint verify every bundle the same way.
    pub fn fingerprint(&self) -> Sha256Digest {
        let mut bytes = Vec::with_capacity(8 + 33 * (self.keys.len() + 1));
        bytes.extend_from_slice(b"custody-trust-v1");
        for k in &self.keys {
            bytes.push(b'k');
            bytes.extend_from_slice(&k.key_id().0);
        }
        if let Some(root) = &self.root_digest {
            bytes.push(b'r');
            bytes.extend_from_slice(&root.0);
        } else if self.root.is_some() {
            // A root without its digest: never share results with a rootless trust set.
            bytes.push(b'?');
        }
        Sha256Digest::of(&bytes)
    }
}

/// A bundle offered as evidence: where it came from and its bytes.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub source: String,
    pub bytes: Vec<u8>,
}

/// Who signed a piece of evidence, as verified.
#[derive(Debug, Clone, Serialize)]
pub struct SignerFacts {
    /// `key` or `certificate`.
    pub kind: &'static str,
    /// The key id (keys) or `identity (issuer)` (certificates): how findings name the signer.
    pub label: String,
    /// Hex SHA-256 of the signing key's SubjectPublicKeyInfo (keys; also certificates' keys).
    pub key_id: Option<String>,
    /// `ecdsa-p256`, `ecdsa-p384`, `ed25519`, `rsa-pkcs1-sha256`, `rsa-pss-sha256`.
    pub algorithm: &'static str,
    pub key_bits: u32,
    /// Certificate subject alternative name (email, URI or username).
    pub identity: Option<String>,
    /// OIDC issuer.
    pub issuer: Option<String>,
    /// Fulcio claims (`github_workflow_repository`, `source_repository_ref`, …); `{}` for keys.
    pub claims: Json,
    /// The principal (person or machine) the key id or identity belongs to, from the
    /// server's principals ([`attach_principals`]); `None` when unknown.
    pub principal: Option<String>,
}

/// A verified transparency-log entry.
#[derive(Debug, Clone, Serialize)]
pub struct TlogFact {
    pub log_id: String,
    pub log_index: i64,
    pub integrated_time: Option<String>,
}

/// A verified signing time and who vouches for it.
#[derive(Debug, Clone, Serialize)]
pub struct TimeFact {
    pub time: String,
    /// `tlog` or `timestamp`.
    pub source: &'static str,
    pub authority: String,
}

/// A bundle that verified.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    pub source: String,
    pub bundle_digest: String,
    /// `signature` (over the artifact) or `attestation` (a DSSE in-toto statement).
    pub kind: &'static str,
    pub predicate_type: Option<String>,
    pub statement: Option<Json>,
    pub signer: SignerFacts,
    /// Verified log entries (empty when none were checked).
    pub tlog: Vec<TlogFact>,
    /// True when at least one entry verified against a trusted log.
    pub logged: bool,
    pub times: Vec<TimeFact>,
}

/// A bundle that did not verify, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Rejected {
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle_digest: Option<String>,
    /// The verifier's stable code (`signature.invalid`, `artifact.mismatch`, `tlog.proof`, …),
    /// `revoked` for evidence that verified but whose signer, builder or bundle is revoked, or
    /// `key.retired` for evidence that verified but whose signer key was retired before it was
    /// logged.
    pub code: String,
    pub reason: String,
    /// For `revoked`: who signed it and the revocation that took it out (serialized as the
    /// fields `signer` and `revocation`).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<Box<RevokedEvidence>>,
    /// For `key.retired`: who signed it and the key's retirement (serialized as the fields
    /// `signer` and `retirement`).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub retired: Option<Box<RetiredEvidence>>,
}

/// Why evidence that verified was taken out ([`apply_revocations`]).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RevokedEvidence {
    /// The signer's label (key id, or `identity (issuer)`).
    pub signer: String,
    pub revocation: RevokedTarget,
}

/// Why evidence that verified was taken out as signed by a retired key
/// ([`apply_retirements`]).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RetiredEvidence {
    /// The signer's label (its key id).
    pub signer: String,
    pub retirement: RetiredKey,
}

/// The short form of one piece of evidence in a verdict.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceSummary {
    pub source: String,
    pub bundle_digest: String,
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicate_type: Option<String>,
    pub signer: String,
    /// The signer's principal, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    pub logged: bool,
}

impl EvidenceSummary {
    pub fn describe(&self) -> String {
        format!(
            "{} {}{} signed by {}{}",
            self.source,
            self.kind,
            self.predicate_type
                .as_deref()
                .map(|p| format!(" ({p})"))
                .unwrap_or_default(),
            self.signer,
            if self.logged { ", logged" } else { "" }
        )
    }
}

impl Evidence {
    pub fn signer_name(&self) -> String {
        match (&self.signer.identity, &self.signer.key_id) {
            (Some(id), _) => format!(
                "{id} ({})",
                self.signer.issuer.as_deref().unwrap_or("no issuer")
            ),
            (None, Some(k)) => format!("key {}", &k[..k.len().min(16)]),
            (None, None) => "unknown".into(),
        }
    }

    pub fn summary(&self) -> EvidenceSummary {
        EvidenceSummary {
            source: self.source.clone(),
            bundle_digest: self.bundle_digest.clone(),
            kind: self.kind,
            predicate_type: self.predicate_type.clone(),
            signer: self.signer_name(),
            principal: self.signer.principal.clone(),
            logged: self.logged,
        }
    }
}

fn key_bits(algorithm: KeyAlgorithm, rsa_bits: Option<u32>) -> u32 {
    match algorithm {
        KeyAlgorithm::EcdsaP256Sha256 | KeyAlgorithm::Ed25519 => 256,
        KeyAlgorithm::EcdsaP384Sha384 => 384,
        KeyAlgorithm::RsaPkcs1Sha256 | KeyAlgorithm::RsaPssSha256 => rsa_bits.unwrap_or(0),
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn evidence_from(
    source: &str,
    bundle_digest: Sha256Digest,
    verified: &VerifiedBundle,
    key: Option<&PublicKey>,
) -> Evidence {
    let (kind, predicate_type, statement) = match &verified.content {
        VerifiedContent::MessageSignature => ("signature", None, None),
        VerifiedContent::Statement(s) => (
            "attestation",
            Some(s.predicate_type.clone()),
            serde_json::from_slice::<Json>(&s.to_json_bytes()).ok(),
        ),
    };
    let signer = match &verified.signer {
        VerifiedSigner::Key { key_id, algorithm } => SignerFacts {
            kind: "key",
            label: key_id.to_string(),
            key_id: Some(key_id.to_string()),
            algorithm: algorithm.cli_name(),
            key_bits: key_bits(*algorithm, key.and_then(PublicKey::rsa_bits)),
            identity: None,
            issuer: None,
            claims: json!({}),
            principal: None,
        },
        VerifiedSigner::Certificate(c) => SignerFacts {
            kind: "certificate",
            label: format!("{} ({})", c.identity.as_str(), c.issuer),
            key_id: None,
            algorithm: c.algorithm.cli_name(),
            key_bits: key_bits(c.algorithm, None),
            identity: Some(c.identity.as_str().to_string()),
            issuer: Some(c.issuer.clone()),
            claims: serde_json::to_value(&c.claims).unwrap_or_else(|_| json!({})),
            principal: None,
        },
    };
    let tlog: Vec<TlogFact> = verified
        .tlog_entries
        .iter()
        .map(|e| TlogFact {
            log_id: e.log_id().to_string(),
            log_index: e.log_index(),
            integrated_time: e.integrated_time().map(rfc3339),
        })
        .collect();
    let times = verified
        .times
        .iter()
        .map(|t| match &t.source {
            TimeSource::Timestamp { tsa } => TimeFact {
                time: rfc3339(t.time),
                source: "timestamp",
                authority: tsa.clone(),
            },
            TimeSource::Tlog { log_url, .. } => TimeFact {
                time: rfc3339(t.time),
                source: "tlog",
                authority: log_url.clone(),
            },
        })
        .collect();
    Evidence {
        source: source.to_string(),
        bundle_digest: bundle_digest.to_string(),
        kind,
        predicate_type,
        statement,
        signer,
        logged: !tlog.is_empty(),
        tlog,
        times,
    }
}

/// Verifies every candidate for `artifact`: each becomes evidence or a rejection.
pub fn verify_evidence(
    trust: &TrustSet,
    artifact: Artifact<'_>,
    candidates: &[Candidate],
) -> (Vec<Evidence>, Vec<Rejected>) {
    let mut evidence = Vec::new();
    let mut rejected = Vec::new();
    for c in candidates {
        match verify_one(trust, artifact, c) {
            Ok(e) => evidence.push(e),
            Err(r) => rejected.push(r),
        }
    }
    (evidence, rejected)
}

fn any_identity() -> Option<IdentityMatcher> {
    Some(IdentityMatcher {
        san: IdentityPattern::regex(".*").ok()?,
        issuer: IdentityPattern::regex(".*").ok()?,
    })
}

/// Verifies one candidate. Key bundles: the key whose id matches the hint first, then every
/// other trusted key. Certificate bundles: chain, SCTs, log and times against the trusted root
/// with *any* identity: which identities are acceptable is the policy's decision, and the
/// verified identity is in the evidence for it to decide.
pub fn verify_one(
    trust: &TrustSet,
    artifact: Artifact<'_>,
    candidate: &Candidate,
) -> Result<Evidence, Rejected> {
    let bundle_digest = Sha256Digest::of(&candidate.bytes);
    let reject = |code: &str, reason: String| Rejected {
        source: candidate.source.clone(),
        bundle_digest: Some(bundle_digest.to_string()),
        code: code.to_string(),
        reason,
        revoked: None,
        retired: None,
    };
    let from_verify = |e: VerifyError| reject(e.code(), e.to_string());
    let bundle = Bundle::from_json(&candidate.bytes).map_err(|e| from_verify(e.into()))?;
    match &bundle.verification_material.content {
        Material::PublicKeyHint(hint) => {
            if trust.keys.is_empty() {
                return Err(reject(
                    "key.untrusted",
                    format!(
                        "signed with a key (hint {hint:?}) and no trusted key was given: pass the signer's public key"
                    ),
                ));
            }
            let hinted = |k: &PublicKey| {
                let id = k.key_id();
                !hint.is_empty() && (*hint == id.to_string() || *hint == base64_encode(&id.0))
            };
            let mut keys: Vec<&PublicKey> = trust.keys.iter().filter(|k| hinted(k)).collect();
            keys.extend(trust.keys.iter().filter(|k| !hinted(k)));
            let options = KeyVerifyOptions {
                trusted_root: if bundle.verification_material.tlog_entries.is_empty() {
                    None
                } else {
                    trust.root.as_ref()
                },
            };
            let mut first_error = None;
            for key in keys {
                match verify::verify_parsed_with_key_options(&bundle, artifact, key, &options) {
                    Ok(v) => {
                        return Ok(evidence_from(
                            &candidate.source,
                            bundle_digest,
                            &v,
                            Some(key),
                        ));
                    }
                    Err(e) => {
                        if first_error.is_none() {
                            first_error = Some(e);
                        }
                    }
                }
            }
            match first_error {
                Some(VerifyError::Signature { .. }) | None if trust.keys.len() > 1 => Err(reject(
                    "key.untrusted",
                    format!(
                        "the signature verifies with none of the {} trusted keys (hint {hint:?})",
                        trust.keys.len()
                    ),
                )),
                Some(e) => Err(from_verify(e)),
                None => Err(reject("key.untrusted", "no trusted key".into())),
            }
        }
        _ => {
            let Some(root) = &trust.root else {
                return Err(reject(
                    "trust-root.missing",
                    "signed with a certificate and no trusted root was given: pass --trusted-root"
                        .into(),
                ));
            };
            let Some(identity) = any_identity() else {
                return Err(reject("internal", "identity matcher".into()));
            };
            let policy = KeylessPolicy::new(identity);
            verify::verify_keyless(&bundle, artifact, root, &policy)
                .map(|v| evidence_from(&candidate.source, bundle_digest, &v, None))
                .map_err(from_verify)
        }
    }
}

/// The environment an artifact is being admitted to.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct EnvironmentRef {
    pub name: String,
    /// `development`, `pre-release`, `release-candidate` or `production` (policy may use any).
    pub stage: Option<String>,
    /// The approvals entering it takes (`input.environment.approvals`; the built-in library
    /// denies with `approvals-missing` when too few count).
    pub approvals: Option<ApprovalsRef>,
}

/// An environment's approval rule, resolved: the group's members are listed so policy can
/// check membership without the server's configuration.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct ApprovalsRef {
    /// Distinct approving principals needed.
    pub required: u32,
    /// The group they must belong to (named in messages).
    pub group: String,
    /// The group's members (principal names).
    pub members: Vec<String>,
    /// Approvals older than this many seconds (at `input.time`) do not count.
    pub max_age_seconds: Option<u64>,
}

/// A promotion request: who asked, and from which environment (`input.promotion`).
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct PromotionRef {
    /// The principal who asked for the promotion (may not approve it).
    pub requested_by: String,
    /// The environment the artifact comes from; `None` for a first release.
    pub from: Option<String>,
}

/// One revocation: a key, a certificate identity, a builder or a digest that no longer counts.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RevokedTarget {
    /// The revocation's id (`#3` in messages).
    pub id: u64,
    /// `key:ID` (hex key id), `identity:SAN`, `builder:ID` (SLSA provenance `builder.id`) or
    /// `digest:sha256:HEX` (the artifact, or an evidence bundle).
    pub target: String,
    pub reason: String,
}

impl RevokedTarget {
    pub fn new(id: u64, target: impl Into<String>, reason: impl Into<String>) -> RevokedTarget {
        RevokedTarget {
            id,
            target: target.into(),
            reason: reason.into(),
        }
    }

    /// The target's kind (`key`, `identity`, `builder`, `digest`) and value; `None` when the
    /// target has no `kind:` prefix.
    pub fn kind_value(&self) -> Option<(&str, &str)> {
        self.target
            .split_once(':')
            .filter(|(_, value)| !value.is_empty())
    }

    fn describe(&self, what: &str, value: &str) -> String {
        format!(
            "revoked: {what} {value} (revocation #{}: {})",
            self.id, self.reason
        )
    }
}

/// Names each evidence's signer: `principals` maps a key id (lowercase hex, as
/// [`SignerFacts::key_id`]) or a certificate identity (SAN) to a principal name.
pub fn attach_principals(evidence: &mut [Evidence], principals: &BTreeMap<String, String>) {
    if principals.is_empty() {
        return;
    }
    let by_key = |id: &str| {
        principals.get(id).or_else(|| {
            principals
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(id))
                .map(|(_, v)| v)
        })
    };
    for e in evidence {
        let from_key = e.signer.key_id.as_deref().and_then(by_key);
        let from_identity = e.signer.identity.as_deref().and_then(|i| principals.get(i));
        e.signer.principal = from_key.or(from_identity).cloned();
    }
}

/// The builder id an SLSA provenance statement names (v1 `runDetails.builder.id`, v0.2
/// `builder.id`); `None` for anything else.
fn provenance_builder(e: &Evidence) -> Option<&str> {
    let pt = e.predicate_type.as_deref()?;
    if !pt.starts_with("https://slsa.dev/provenance/") {
        return None;
    }
    let predicate = e.statement.as_ref()?.get("predicate")?;
    predicate
        .pointer("/runDetails/builder/id")
        .or_else(|| predicate.pointer("/builder/id"))
        .and_then(Json::as_str)
}

/// The first revocation that takes `e` out, and how to say so.
fn revocation_of<'r>(
    e: &Evidence,
    revocations: &'r [RevokedTarget],
) -> Option<(&'r RevokedTarget, String)> {
    revocations.iter().find_map(|r| {
        let (kind, value) = r.kind_value()?;
        let hit = match kind {
            "key" => e
                .signer
                .key_id
                .as_deref()
                .is_some_and(|k| k.eq_ignore_ascii_case(value)),
            "identity" => e.signer.identity.as_deref() == Some(value),
            "builder" => provenance_builder(e) == Some(value),
            "digest" => e.bundle_digest.eq_ignore_ascii_case(value),
            _ => false,
        };
        let what = if kind == "digest" { "bundle" } else { kind };
        hit.then(|| (r, r.describe(what, value)))
    })
}

/// Moves evidence whose signer key id or identity, SLSA provenance builder, or bundle digest
/// is revoked from `evidence` to `rejected`, with code `revoked` and a reason naming the
/// revocation, so policy never counts it.
pub fn apply_revocations(
    evidence: Vec<Evidence>,
    rejected: &mut Vec<Rejected>,
    revocations: &[RevokedTarget],
) -> Vec<Evidence> {
    if revocations.is_empty() {
        return evidence;
    }
    let mut kept = Vec::with_capacity(evidence.len());
    for e in evidence {
        match revocation_of(&e, revocations) {
            Some((r, reason)) => rejected.push(Rejected {
                source: e.source.clone(),
                bundle_digest: Some(e.bundle_digest.clone()),
                code: "revoked".into(),
                reason,
                revoked: Some(Box::new(RevokedEvidence {
                    signer: e.signer.label.clone(),
                    revocation: r.clone(),
                })),
                retired: None,
            }),
            None => kept.push(e),
        }
    }
    kept
}

/// The revocation of the artifact itself (`digest:sha256:HEX`), if any.
pub fn artifact_revocation<'r>(
    digest: &str,
    revocations: &'r [RevokedTarget],
) -> Option<&'r RevokedTarget> {
    revocations.iter().find(|r| {
        r.kind_value()
            .is_some_and(|(kind, value)| kind == "digest" && value.eq_ignore_ascii_case(digest))
    })
}

/// A key rotated out (`custody key rotate`). A retired key is not compromised: what it signed
/// and had logged *before* it was retired keeps counting, so history does not break, but
/// nothing it signs afterwards does. The log is append-only, so "before" is a log position:
/// `cut` is the log's size when the key was retired, and an entry with `log_index < cut` was
/// logged before the retirement.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RetiredKey {
    /// The retired key's id (hex SHA-256 of its SubjectPublicKeyInfo; any case).
    pub key_id: String,
    /// The log's size when the key was retired: entries below this index predate it.
    pub cut: u64,
    /// The key that replaced it, if any (named in messages).
    pub successor: Option<String>,
    pub reason: String,
}

impl RetiredKey {
    /// Why evidence `e`, signed by this key and not logged before the cut, does not count.
    fn describe(&self, e: &Evidence) -> String {
        let key = e.signer.key_id.as_deref().unwrap_or(&self.key_id);
        let successor = match &self.successor {
            Some(s) => format!("successor {s}"),
            None => "no successor".to_string(),
        };
        let why = if self.reason.is_empty() {
            String::new()
        } else {
            format!("; {}", self.reason)
        };
        let when = match e.tlog.iter().map(|t| t.log_index).min() {
            Some(index) if e.tlog.len() > 1 => format!(
                "its earliest verified log entry is at index {index}, at or after the retirement"
            ),
            Some(index) => {
                format!("its verified log entry is at index {index}, at or after the retirement")
            }
            None => "it has no verified log entry, and an unlogged signature by a retired key \
                     cannot be shown to predate the retirement"
                .to_string(),
        };
        let fix = if self.successor.is_some() {
            "re-sign with the successor key"
        } else {
            "re-sign with a current key"
        };
        format!(
            "signed by retired key {key} (retired at log index {}, {successor}{why}), and {when}: {fix}",
            self.cut
        )
    }
}

/// The retirement that applies to `e`'s signer key, if any (when a key was retired more than
/// once, the earliest cut: the stricter one).
fn retirement_of<'r>(e: &Evidence, retired: &'r [RetiredKey]) -> Option<&'r RetiredKey> {
    let key = e.signer.key_id.as_deref()?;
    retired
        .iter()
        .filter(|r| r.key_id.eq_ignore_ascii_case(key))
        .min_by_key(|r| r.cut)
}

/// True when `e` has a verified log entry below `cut`: it was signed and logged before then.
fn logged_before(e: &Evidence, cut: u64) -> bool {
    e.tlog
        .iter()
        .any(|t| u64::try_from(t.log_index).is_ok_and(|index| index < cut))
}

/// Moves evidence signed by a retired key (its signer key id, any case) from `evidence` to
/// `rejected`, with code `key.retired` and a reason naming the key, the cut and the successor,
/// unless it has a verified log entry (`tlog`) with `log_index < cut`: that was signed before
/// the key was retired and keeps counting. Unlogged evidence by a retired key cannot be shown
/// to predate the retirement, so it never counts.
pub fn apply_retirements(
    evidence: Vec<Evidence>,
    rejected: &mut Vec<Rejected>,
    retired: &[RetiredKey],
) -> Vec<Evidence> {
    if retired.is_empty() {
        return evidence;
    }
    let mut kept = Vec::with_capacity(evidence.len());
    for e in evidence {
        match retirement_of(&e, retired) {
            Some(r) if !logged_before(&e, r.cut) => rejected.push(Rejected {
                source: e.source.clone(),
                bundle_digest: Some(e.bundle_digest.clone()),
                code: "key.retired".into(),
                reason: r.describe(&e),
                revoked: None,
                retired: Some(Box::new(RetiredEvidence {
                    signer: e.signer.label.clone(),
                    retirement: r.clone(),
                })),
            }),
            _ => kept.push(e),
        }
    }
    kept
}

/// Everything an input document is made of.
#[derive(Debug, Clone, Copy)]
pub struct InputParts<'a> {
    pub artifact: &'a ArtifactRef,
    /// The artifact's own revocation (`input.artifact.revoked`).
    pub artifact_revoked: Option<&'a RevokedTarget>,
    pub environment: Option<&'a EnvironmentRef>,
    pub promotion: Option<&'a PromotionRef>,
    /// The environment's release state (`input.release`); `None`: no `release` field at all.
    pub release: Option<&'a ReleaseState>,
    pub time: DateTime<Utc>,
    pub evidence: &'a [Evidence],
    pub rejected: &'a [Rejected],
}

impl InputParts<'_> {
    /// The input document (`docs/policy-input.md`).
    pub fn document(&self) -> Json {
        let mut artifact = json!(self.artifact);
        if let (Some(r), Some(obj)) = (self.artifact_revoked, artifact.as_object_mut()) {
            obj.insert("revoked".into(), json!(r));
        }
        let mut doc = json!({
            "artifact": artifact,
            "environment": self.environment.map(|e| json!(e)).unwrap_or(Json::Null),
            "promotion": self.promotion.map(|p| json!(p)).unwrap_or(Json::Null),
            "time": rfc3339(self.time),
            "evidence": self.evidence,
            "rejected": self.rejected,
        });
        if let (Some(release), Some(obj)) = (self.release, doc.as_object_mut()) {
            obj.insert("release".into(), json!(release));
        }
        doc
    }
}

/// Builds the input document (no promotion, artifact not revoked): see [`InputParts`].
pub fn input_document(
    artifact: &ArtifactRef,
    environment: Option<&EnvironmentRef>,
    time: DateTime<Utc>,
    evidence: &[Evidence],
    rejected: &[Rejected],
) -> Json {
    InputParts {
        artifact,
        artifact_revoked: None,
        environment,
        promotion: None,
        release: None,
        time,
        evidence,
        rejected,
    }
    .document()
}

/// The SLSA build level the verified evidence supports: L1 with verified provenance, L2 when
/// that provenance was signed by a CI platform's workload identity (a Fulcio certificate with
/// a build-signer claim: the hosted platform signed it, not a person's key). L3 is never
/// claimed: custody cannot see the builder's isolation.
pub fn build_level(evidence: &[Evidence]) -> String {
    let provenance: Vec<&Evidence> = evidence
        .iter()
        .filter(|e| e.predicate_type.as_deref() == Some(custody_core::intoto::SLSA_PROVENANCE_V1))
        .collect();
    let hosted = provenance.iter().any(|e| {
        e.signer.kind == "certificate"
            && e.signer
                .claims
                .get("build_signer_uri")
                .is_some_and(|v| v.is_string())
    });
    match (provenance.is_empty(), hosted) {
        (true, _) => "SLSA_BUILD_LEVEL_0".into(),
        (false, false) => "SLSA_BUILD_LEVEL_1".into(),
        (false, true) => "SLSA_BUILD_LEVEL_2".into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn evidence(source: &str, key_id: Option<&str>, identity: Option<&str>) -> Evidence {
        Evidence {
            source: source.into(),
            bundle_digest: format!("sha256:{}", "0".repeat(63) + &source.len().to_string()),
            kind: "attestation",
            predicate_type: Some(custody_core::intoto::SLSA_PROVENANCE_V1.into()),
            statement: Some(
                json!({"predicate": {"runDetails": {"builder": {"id": "https://b/1"}}}}),
            ),
            signer: SignerFacts {
                kind: if identity.is_some() {
                    "certificate"
                } else {
                    "key"
                },
                label: source.into(),
                key_id: key_id.map(str::to_string),
                algorithm: "ecdsa-p256",
                key_bits: 256,
                identity: identity.map(str::to_string),
                issuer: identity.map(|_| "https://issuer".to_string()),
                claims: json!({}),
                principal: None,
            },
            tlog: Vec::new(),
            logged: false,
            times: Vec::new(),
        }
    }

    #[test]
    fn principals_by_key_id_any_case_or_identity() {
        let mut ev = vec![
            evidence("a", Some("ab12"), None),
            evidence("b", None, Some("bob@example.com")),
            evidence("c", Some("cd34"), None),
        ];
        let principals = BTreeMap::from([
            ("AB12".to_string(), "alice".to_string()),
            ("bob@example.com".to_string(), "bob".to_string()),
        ]);
        attach_principals(&mut ev, &principals);
        let names: Vec<Option<&str>> = ev.iter().map(|e| e.signer.principal.as_deref()).collect();
        assert_eq!(names, [Some("alice"), Some("bob"), None]);
    }

    fn logged_at(mut e: Evidence, indexes: &[i64]) -> Evidence {
        e.tlog = indexes
            .iter()
            .map(|&log_index| TlogFact {
                log_id: "c0ffee".into(),
                log_index,
                integrated_time: None,
            })
            .collect();
        e.logged = !e.tlog.is_empty();
        e
    }

    const OLD: &str = "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12";
    const NEW: &str = "cd34cd34cd34cd34cd34cd34cd34cd34cd34cd34cd34cd34cd34cd34cd34cd34";

    fn retired_at(cut: u64, successor: Option<&str>) -> RetiredKey {
        RetiredKey {
            // Any case: key ids match case-insensitively.
            key_id: OLD.to_uppercase(),
            cut,
            successor: successor.map(str::to_string),
            reason: "yearly rotation".into(),
        }
    }

    #[test]
    fn retired_keys_keep_what_was_logged_before_the_cut() {
        let ev = || {
            vec![
                logged_at(evidence("before", Some(OLD), None), &[41]),
                logged_at(evidence("at", Some(OLD), None), &[42]),
                logged_at(evidence("after", Some(OLD), None), &[57]),
                // One entry before the cut is enough: it shows the signature existed then.
                logged_at(evidence("both", Some(OLD), None), &[90, 3]),
                evidence("unlogged", Some(OLD), None),
                logged_at(evidence("successor", Some(NEW), None), &[99]),
                evidence("successor-unlogged", Some(NEW), None),
                evidence("cert", None, Some("bob@example.com")),
            ]
        };
        let mut rejected = Vec::new();
        let kept = apply_retirements(ev(), &mut rejected, &[retired_at(42, Some(NEW))]);
        let kept: Vec<&str> = kept.iter().map(|e| e.source.as_str()).collect();
        assert_eq!(
            kept,
            ["before", "both", "successor", "successor-unlogged", "cert"]
        );
        let out: Vec<(&str, &str)> = rejected
            .iter()
            .map(|r| (r.source.as_str(), r.code.as_str()))
            .collect();
        assert_eq!(
            out,
            [
                ("at", "key.retired"),
                ("after", "key.retired"),
                ("unlogged", "key.retired")
            ]
        );
        assert_eq!(
            rejected[1].reason,
            format!(
                "signed by retired key {OLD} (retired at log index 42, successor {NEW}; yearly rotation), \
                 and its verified log entry is at index 57, at or after the retirement: re-sign with the successor key"
            )
        );
        assert_eq!(
            rejected[2].reason,
            format!(
                "signed by retired key {OLD} (retired at log index 42, successor {NEW}; yearly rotation), \
                 and it has no verified log entry, and an unlogged signature by a retired key cannot be \
                 shown to predate the retirement: re-sign with the successor key"
            )
        );
        let detail = rejected[0].retired.as_deref().unwrap();
        assert_eq!(detail.signer, "at");
        assert_eq!(detail.retirement, retired_at(42, Some(NEW)));
        assert!(rejected[0].revoked.is_none());
        // In JSON (input.rejected, the verdict) the two are fields of the rejection.
        let json = serde_json::to_value(&rejected[0]).unwrap();
        assert_eq!(json["signer"], "at");
        assert_eq!(
            json["retirement"],
            json!({"key_id": OLD.to_uppercase(), "cut": 42, "successor": NEW, "reason": "yearly rotation"})
        );
        assert!(json.get("revocation").is_none());
    }

    #[test]
    fn retirement_edge_cases() {
        let apply = |ev: Vec<Evidence>, retired: &[RetiredKey]| {
            let mut rejected = Vec::new();
            let kept = apply_retirements(ev, &mut rejected, retired);
            let kept: Vec<String> = kept.into_iter().map(|e| e.source).collect();
            let reasons: Vec<String> = rejected.into_iter().map(|r| r.reason).collect();
            (kept, reasons)
        };
        // No retirements: nothing moves.
        let (kept, _) = apply(vec![evidence("a", Some(OLD), None)], &[]);
        assert_eq!(kept, ["a"]);
        // Cut 0: the key was retired before anything was logged, so nothing it signed counts.
        let (kept, _) = apply(
            vec![logged_at(evidence("a", Some(OLD), None), &[0])],
            &[retired_at(0, None)],
        );
        assert!(kept.is_empty());
        // A key retired twice: the earlier cut (the stricter) applies.
        let (kept, reasons) = apply(
            vec![logged_at(evidence("a", Some(OLD), None), &[10, 20])],
            &[retired_at(50, Some(NEW)), retired_at(5, None)],
        );
        assert!(kept.is_empty());
        assert_eq!(
            reasons,
            [format!(
                "signed by retired key {OLD} (retired at log index 5, no successor; yearly rotation), \
                 and its earliest verified log entry is at index 10, at or after the retirement: \
                 re-sign with a current key"
            )]
        );
        // A negative index (never verified, but never trusted either) is not "before".
        let (kept, _) = apply(
            vec![logged_at(evidence("a", Some(OLD), None), &[-1])],
            &[retired_at(42, None)],
        );
        assert!(kept.is_empty());
        // No reason given: none shown.
        let mut quiet = retired_at(42, None);
        quiet.reason.clear();
        let (_, reasons) = apply(
            vec![logged_at(evidence("a", Some(OLD), None), &[42])],
            &[quiet],
        );
        assert!(
            reasons[0].starts_with(&format!(
                "signed by retired key {OLD} (retired at log index 42, no successor), and"
            )),
            "{}",
            reasons[0]
        );
    }

    #[test]
    fn revocations_by_identity_builder_and_bundle() {
        let ev = || {
            vec![
                evidence("key", Some("ab12"), None),
                evidence("cert", None, Some("bob@example.com")),
            ]
        };
        let apply = |revocations: &[RevokedTarget]| {
            let mut rejected = Vec::new();
            let kept = apply_revocations(ev(), &mut rejected, revocations);
            let kept: Vec<String> = kept.into_iter().map(|e| e.source).collect();
            let reasons: Vec<String> = rejected.into_iter().map(|r| r.reason).collect();
            (kept, reasons)
        };
        let (kept, reasons) = apply(&[RevokedTarget::new(4, "identity:bob@example.com", "left")]);
        assert_eq!(kept, ["key"]);
        assert_eq!(
            reasons,
            ["revoked: identity bob@example.com (revocation #4: left)"]
        );
        let (kept, _) = apply(&[RevokedTarget::new(5, "builder:https://b/1", "owned")]);
        assert!(kept.is_empty(), "both are provenance from that builder");
        let bundle = ev()[0].bundle_digest.clone();
        let (kept, reasons) = apply(&[RevokedTarget::new(6, format!("digest:{bundle}"), "x")]);
        assert_eq!(kept, ["cert"]);
        assert_eq!(
            reasons,
            [format!("revoked: bundle {bundle} (revocation #6: x)")]
        );
        // Targets without a kind, or of an unknown kind, revoke nothing.
        let (kept, _) = apply(&[
            RevokedTarget::new(7, "ab12", "no kind"),
            RevokedTarget::new(8, "team:ab12", "unknown kind"),
            RevokedTarget::new(9, "key:", "empty"),
        ]);
        assert_eq!(kept, ["key", "cert"]);
        assert_eq!(
            artifact_revocation(
                &bundle.to_uppercase().replace("SHA256", "sha256"),
                &[RevokedTarget::new(1, format!("digest:{bundle}"), "x")]
            )
            .map(|r| r.id),
            Some(1)
        );
    }
}
