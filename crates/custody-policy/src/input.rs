//! The policy input document (`docs/policy-input.md`): the artifact, the environment, the time,
//! the evidence that **passed verification**, and what was rejected and why.
//!
//! [`verify_evidence`] is the only way evidence gets into an input: each candidate bundle is
//! parsed and verified against the [`TrustSet`] (keys, trusted root) for the artifact; what
//! verifies becomes an [`Evidence`] built from the verified result (the statement is the one
//! parsed from the exact payload bytes whose signature verified), everything else a
//! [`Rejected`] with the verifier's stable code. Policy never sees an unverified claim.

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
    /// The verifier's stable code (`signature.invalid`, `artifact.mismatch`, `tlog.proof`, …).
    pub code: String,
    pub reason: String,
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
#[derive(Debug, Clone, Serialize, Default)]
pub struct EnvironmentRef {
    pub name: String,
    /// `development`, `pre-release`, `release-candidate` or `production` (policy may use any).
    pub stage: Option<String>,
}

/// Builds the input document.
pub fn input_document(
    artifact: &ArtifactRef,
    environment: Option<&EnvironmentRef>,
    time: DateTime<Utc>,
    evidence: &[Evidence],
    rejected: &[Rejected],
) -> Json {
    json!({
        "artifact": artifact,
        "environment": environment.map(|e| json!({"name": e.name, "stage": e.stage})).unwrap_or(Json::Null),
        "time": rfc3339(time),
        "evidence": evidence,
        "rejected": rejected,
    })
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
