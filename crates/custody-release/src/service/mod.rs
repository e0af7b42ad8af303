//! Releases: the artifact store, approvals, promotion, revocation, quarantine, automatic
//! rollback and incidents (the HTTP side is in `release_api`).
//!
//! Every state change is signed by the server's release key, appended to the server's own
//! transparency log, and stored with the bundle (statement + log entry) beside the record, so
//! a deploy agent or an auditor can verify it offline. Promotions and rollbacks are serialized
//! in-process by a lock and across processes by the store's compare-and-swap on each
//! environment's release sequence.
//!
//! Recovery is a reconciliation, not a one-shot reaction: [`ReleaseService::reconcile`] looks
//! at every revocation, quarantines every artifact whose verified evidence a revocation
//! touches, and moves every environment whose current release is quarantined back to its most
//! recent release that still passes policy. It is idempotent, runs after every revocation and
//! at start-up, so a server killed halfway through a rollback finishes it when it comes back.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use custody_core::bundle::{Bundle, BundleContent, TransparencyLogEntry};
use custody_core::digest::Sha256Digest;
use custody_core::dsse;
use custody_core::encoding::base64_encode;
use custody_core::intoto::Statement;
use custody_core::keys::{PublicKey, SigningKey};
use custody_core::verify::Artifact;
use custody_log::Log;
use custody_policy::input::{Candidate, Evidence, verify_one};
use custody_policy::{Gate, Verdict};
use custody_release::cas::Cas;
use custody_release::config::{Environment, ReleaseConfig};
use custody_release::model::{
    ArtifactRecord, Deployment, Event, Incident, Quarantine, Recovery, Release, ReleaseKind,
    Revocation, Role,
};
use custody_release::request::RequestContent;
use custody_release::rules::{PromotionOutcome, deployment_on_record, promotion_outcome};
use custody_release::statement::{self, ReleaseFacts};
use custody_release::store::{ReleaseStore, StoreError};
use serde_json::{Value as Json, json};

use crate::metrics::Metrics;
use custody_evidence::EvidenceStore;

mod current;

/// Called with a digest (or `None` for every digest) whose decisions may have changed.
pub type OnChange = Box<dyn Fn(Option<&Sha256Digest>) + Send + Sync>;

/// The principal name the server signs automatic actions as.
pub const SERVER_PRINCIPAL: &str = "custody";

/// What `custody serve --release-config` configures.
pub struct ReleaseSetup {
    pub config: ReleaseConfig,
    pub store: Arc<dyn ReleaseStore>,
    pub cas: Cas,
    /// One gate per environment (its policy; the shared trust set).
    pub gates: BTreeMap<String, Arc<Gate>>,
    /// Signs release, upload and VSA statements.
    pub key: SigningKey,
    /// `verifier.id` in the VSAs it signs.
    pub verifier_id: String,
    /// POSTed a JSON event on every alert.
    pub alert_webhook: Option<String>,
}

impl std::fmt::Debug for ReleaseSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReleaseSetup")
            .field("environments", &self.gates.keys().collect::<Vec<_>>())
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// A failed release call: the HTTP status and one line saying what and how to fix it; denials
/// carry the verdict.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub verdict: Option<Box<Verdict>>,
    /// The call lost a race (another promotion or rollback took the environment's next seq
    /// first) and nothing changed: sending it again, with the same request id, may succeed.
    pub retry: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            verdict: None,
            retry: false,
        }
    }
    fn internal(what: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, what.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { .. } => Self {
                retry: true,
                ..Self::new(StatusCode::CONFLICT, e.to_string())
            },
            StoreError::Duplicate(_) => Self::new(StatusCode::CONFLICT, e.to_string()),
            StoreError::NotFound(_) => Self::new(StatusCode::NOT_FOUND, e.to_string()),
            StoreError::Backend(_) => Self::internal(e),
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub roles: BTreeSet<Role>,
    /// A deployer's environments (see [`Caller::require_deployer_for`]).
    pub environments: BTreeSet<String>,
}

impl Caller {
    pub fn require(&self, role: Role, what: &str) -> Result<(), ApiError> {
        if self.roles.contains(&role) || self.roles.contains(&Role::Admin) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "{what} needs the {role} role; principal {:?} has {} (ask an admin to add the role in the release config)",
                    self.name,
                    if self.roles.is_empty() {
                        "none".to_owned()
                    } else {
                        self.roles
                            .iter()
                            .map(|r| r.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            ))
        }
    }
}

impl Caller {
    /// A deployment report for `environment`: an admin, or a deployer that lists it.
    /// Release managers may not report (separation of duties: who promotes does not also
    /// say what runs).
    pub fn require_deployer_for(&self, environment: &str) -> Result<(), ApiError> {
        if self.roles.contains(&Role::Admin) {
            return Ok(());
        }
        self.require(Role::Deployer, "reporting a deployment")?;
        if self.environments.contains(environment) {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "principal {:?} may report deployments only for {} (environments of its [[principal]] entry), not {environment:?}",
                self.name,
                self.environments
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))
    }
}

/// A promotion request.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct PromoteRequest {
    pub digest: String,
    pub to: String,
    /// Idempotency key: a retry with the same id returns the first result.
    pub request_id: Option<String>,
}

/// An explicit rollback request.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct RollbackRequest {
    pub environment: String,
    /// The release to go back to; the most recent earlier one that passes when absent.
    pub digest: Option<String>,
    pub reason: String,
    pub request_id: Option<String>,
}

/// The service.
pub struct ReleaseService {
    config: ReleaseConfig,
    store: Arc<dyn ReleaseStore>,
    cas: Cas,
    gates: BTreeMap<String, Arc<Gate>>,
    key: Arc<SigningKey>,
    key_public: PublicKey,
    verifier_id: String,
    alert_webhook: Option<String>,
    log: Log,
    log_id_base64: String,
    evidence: Arc<dyn EvidenceStore>,
    principals: Arc<BTreeMap<String, String>>,
    serial: tokio::sync::Mutex<()>,
    metrics: Arc<Metrics>,
    revoked: Arc<crate::release_gate::SharedRevocations>,
    retirements_pending: std::sync::atomic::AtomicBool,
    on_change: OnChange,
}

impl std::fmt::Debug for ReleaseService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReleaseService")
            .field("environments", &self.gates.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn parse_digest(text: &str) -> Result<Sha256Digest, ApiError> {
    text.parse::<Sha256Digest>().map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{text:?} is not a digest ({e}): expected sha256:<64 hex digits>"),
        )
    })
}

fn rfc3339(t: DateTime<Utc>) -> String {
    statement::rfc3339(t)
}

impl ReleaseService {
    /// `on_change` is called with a digest (or `None` for everything) whenever decisions about
    /// it may have changed: the gate's decision cache drops them.
    pub fn new(
        setup: ReleaseSetup,
        log: Log,
        log_id_base64: String,
        evidence: Arc<dyn EvidenceStore>,
        metrics: Arc<Metrics>,
        on_change: OnChange,
    ) -> Self {
        let mut principals = BTreeMap::new();
        for p in &setup.config.principals {
            for k in &p.key_ids {
                principals.insert(k.clone(), p.name.clone());
            }
            for i in &p.identities {
                principals.insert(i.clone(), p.name.clone());
            }
        }
        let key_public = setup.key.public_key();
        Self {
            config: setup.config,
            store: setup.store,
            cas: setup.cas,
            gates: setup.gates,
            key: Arc::new(setup.key),
            key_public,
            verifier_id: setup.verifier_id,
            alert_webhook: setup.alert_webhook,
            log,
            log_id_base64,
            evidence,
            principals: Arc::new(principals),
            serial: tokio::sync::Mutex::new(()),
            metrics,
            revoked: Arc::default(),
            retirements_pending: std::sync::atomic::AtomicBool::new(true),
            on_change,
        }
    }

    pub fn config(&self) -> &ReleaseConfig {
        &self.config
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The revocations in force, for the admission gate (kept current by [`Self::reconcile`]).
    pub(crate) fn revocations(&self) -> Arc<crate::release_gate::SharedRevocations> {
        self.revoked.clone()
    }

    /// The caller a bearer token's SHA-256 belongs to. Every principal is compared (in
    /// constant time each), so timing does not tell which one matched.
    pub fn caller_for_token(&self, token_sha256: &[u8; 32]) -> Option<Caller> {
        use subtle::ConstantTimeEq as _;
        let mut found = None;
        for p in &self.config.principals {
            if bool::from(p.token_sha256.ct_eq(token_sha256)) {
                found = Some(Caller {
                    name: p.name.clone(),
                    roles: p.roles.clone(),
                    environments: p.environments.clone(),
                });
            }
        }
        found
    }

    /// Runs a store call on the blocking pool.
    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn ReleaseStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::from)
    }

    fn environment(&self, name: &str) -> Result<&Environment, ApiError> {
        self.config.environment(name).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "unknown environment {name:?} (this server has: {})",
                    self.config
                        .environments
                        .iter()
                        .map(|e| e.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
    }

    async fn event(
        &self,
        actor: &str,
        action: &str,
        object: &str,
        log_index: Option<u64>,
        detail: Json,
    ) -> Result<u64, ApiError> {
        let event = Event {
            id: 0,
            at: Utc::now(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            object: object.to_owned(),
            log_index,
            detail,
        };
        self.db(move |s| s.record_event(&event)).await
    }

    /// Signs `statement` with the release key, appends it to the log, and returns the bundle
    /// (with its log entry) and the log index.
    async fn sign_and_log(&self, statement: &Statement) -> Result<(String, u64), ApiError> {
        let envelope = dsse::sign_in_toto(&self.key, statement.to_json_bytes())
            .map_err(|e| ApiError::internal(format!("signing with the release key: {e}")))?;
        let out = self.log_envelope(envelope, &self.key_public).await?;
        self.metrics.signed(
            statement
                .predicate_type
                .rsplit('/')
                .nth(1)
                .unwrap_or("statement"),
        );
        Ok(out)
    }

    /// Appends a DSSE envelope verified by `key` to the log; returns the bundle and index.
    async fn log_envelope(
        &self,
        envelope: dsse::Envelope,
        key: &PublicKey,
    ) -> Result<(String, u64), ApiError> {
        let details = key.sigstore_key_details().ok_or_else(|| {
            ApiError::internal(
                "the signing key has no Sigstore key type (use ECDSA P-256 or Ed25519)",
            )
        })?;
        let envelope_json: Json = serde_json::from_str(&envelope.to_json())
            .map_err(|e| ApiError::internal(format!("envelope JSON: {e}")))?;
        let request = json!({ "dsseRequestV002": {
            "envelope": envelope_json,
            "verifiers": [{ "publicKey": { "rawBytes": base64_encode(key.spki_der()) }, "keyDetails": details }],
        }});
        let admitted = crate::request::admit(request.to_string().as_bytes()).map_err(|e| {
            ApiError::internal(format!("the statement is not a loggable entry: {e}"))
        })?;
        let receipt = self.log.submit(admitted.body.clone()).await.map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the log did not accept the entry: {e}"),
            )
        })?;
        let entry_text = crate::entry::entry_json(&self.log_id_base64, &admitted, &receipt);
        let entry = TransparencyLogEntry::from_json(entry_text.as_bytes())
            .map_err(|e| ApiError::internal(format!("log entry: {e}")))?;
        let hint = base64_encode(&key.key_id().0);
        let bundle = Bundle::new_dsse_v03(hint, envelope).with_tlog_entry(entry);
        Ok((bundle.to_json(), receipt.index))
    }

    /// Verifies a client-signed bundle about `subject` against the trusted keys and root.
    fn verify_bundle(&self, bytes: &[u8], subject: &Sha256Digest) -> Result<Evidence, ApiError> {
        let gate = self.trust_gate()?;
        verify_one(
            &gate.trust,
            Artifact {
                digest: *subject,
                bytes: None,
            },
            &Candidate {
                source: "request".into(),
                bytes: bytes.to_vec(),
            },
        )
        .map_err(|r| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "the signed statement does not verify ({}): {} (sign with a key listed for your principal in the release config)",
                    r.code, r.reason
                ),
            )
        })
    }

    fn principal_of(&self, evidence: &Evidence) -> Option<String> {
        evidence
            .signer
            .key_id
            .as_ref()
            .and_then(|k| self.principals.get(k))
            .or_else(|| {
                evidence
                    .signer
                    .identity
                    .as_ref()
                    .and_then(|i| self.principals.get(i))
            })
            .cloned()
    }

    /// The gate every environment shares its trust set with (keys from `--gate-key` and the
    /// principals, the trusted root): what approvals, revocations and rotations verify
    /// against. Every environment's gate holds the same trust set; only policies differ.
    fn trust_gate(&self) -> Result<&Arc<Gate>, ApiError> {
        self.gates
            .values()
            .next()
            .ok_or_else(|| ApiError::internal("no environment configured"))
    }

    /// The key a verified evidence was signed with (to log it under that key).
    fn trusted_key(&self, evidence: &Evidence) -> Option<&PublicKey> {
        let id = evidence.signer.key_id.as_deref()?;
        self.trust_gate()
            .ok()?
            .trust
            .keys
            .iter()
            .find(|k| k.key_id().to_string() == id)
    }

    /// Logs a client-signed DSSE bundle that has no log entry yet (under the key that
    /// verified it); returns the bundle to store and its log index.
    async fn ensure_logged(
        &self,
        bytes: &[u8],
        evidence: &Evidence,
    ) -> Result<(String, Option<u64>), ApiError> {
        let bundle = Bundle::from_json(bytes)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("not a bundle: {e}")))?;
        if let Some(first) = evidence.tlog.first() {
            let text = String::from_utf8(bytes.to_vec())
                .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "the bundle is not UTF-8"))?;
            return Ok((text, u64::try_from(first.log_index).ok()));
        }
        let BundleContent::Dsse(envelope) = bundle.content else {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "expected a DSSE bundle (made by custody attest/approve/revoke)",
            ));
        };
        let key = self.trusted_key(evidence).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "a certificate-signed statement must already carry its log entry (sign with --log)",
            )
        })?;
        let (bundle, index) = self.log_envelope(envelope, key).await?;
        Ok((bundle, Some(index)))
    }

    // ----- artifacts --------------------------------------------------------------------

    /// Stores an artifact's bytes; the upload is signed and logged the first time.
    pub async fn push(
        &self,
        caller: &Caller,
        bytes: axum::body::Bytes,
        claimed: &str,
        name: Option<String>,
    ) -> Result<(StatusCode, ArtifactRecord), ApiError> {
        caller.require(Role::Builder, "pushing an artifact")?;
        let claimed = parse_digest(claimed)?;
        if let Some(q) = self
            .db(move |s| s.quarantined(&claimed.to_string()))
            .await?
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "artifact {claimed} is quarantined (revocation #{} at {}): it cannot be pushed again; build a new release",
                    q.revocation_id,
                    rfc3339(q.at)
                ),
            ));
        }
        let cas = self.cas.clone();
        let size = bytes.len() as u64;
        let (digest, _new) = tokio::task::spawn_blocking(move || cas.put(&bytes, Some(&claimed)))
            .await
            .map_err(ApiError::internal)?
            .map_err(|e| match e {
                custody_release::cas::CasError::Mismatch { .. } => {
                    ApiError::new(StatusCode::BAD_REQUEST, e.to_string())
                }
                _ => ApiError::internal(e),
            })?;
        let key = digest.to_string();
        if let Some(existing) = self.db(move |s| s.artifact(&key)).await? {
            return Ok((StatusCode::OK, existing));
        }
        let now = Utc::now();
        let shown = name.clone().unwrap_or_else(|| "artifact".into());
        let (_, log_index) = self
            .sign_and_log(&statement::upload(&digest, &shown, size, &caller.name, now))
            .await?;
        let record = ArtifactRecord {
            digest: digest.to_string(),
            size,
            name,
            uploaded_by: caller.name.clone(),
            uploaded_at: now,
            log_index: Some(log_index),
        };
        let r = record.clone();
        let new = self.db(move |s| s.put_artifact(&r)).await?;
        if !new {
            let key = digest.to_string();
            if let Some(existing) = self.db(move |s| s.artifact(&key)).await? {
                return Ok((StatusCode::OK, existing));
            }
        }
        self.event(
            &caller.name,
            "push",
            &record.digest,
            Some(log_index),
            json!({"size": size, "name": record.name}),
        )
        .await?;
        tracing::info!(digest = %record.digest, by = %caller.name, index = log_index, "artifact stored");
        Ok((StatusCode::CREATED, record))
    }

    /// An artifact's bytes (re-hashed on read).
    pub async fn artifact_bytes(&self, digest: &str) -> Result<Vec<u8>, ApiError> {
        let digest = parse_digest(digest)?;
        let cas = self.cas.clone();
        tokio::task::spawn_blocking(move || cas.read(&digest))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("artifact {digest} is not in the artifact store (custody push it)"),
                )
            })
    }

    /// Records who stored evidence (the evidence store itself is `gate_api`'s).
    pub async fn evidence_stored(
        &self,
        who: &str,
        bundle_digest: &str,
        subjects: &[String],
    ) -> Result<(), ApiError> {
        for s in subjects {
            self.event(
                who,
                "evidence",
                s,
                None,
                json!({ "bundle_digest": bundle_digest }),
            )
            .await?;
        }
        Ok(())
    }

    // ----- approvals --------------------------------------------------------------------

    /// Accepts a signed approval: it must verify, be for a stored artifact and a configured
    /// environment, and be signed by a member of the environment's approval group who is not
    /// the artifact's builder. The approval is logged (if it is not yet) and stored as
    /// evidence, so the gate counts it.
    pub async fn approve(&self, caller: &Caller, bytes: &[u8]) -> Result<Json, ApiError> {
        caller.require(Role::Approver, "approving")?;
        let (statement, subject) = dsse_statement(bytes, statement::APPROVAL_V1)?;
        let predicate = statement.predicate.clone();
        let env_name = statement::field(&predicate, "environment").ok_or_else(|| {
            ApiError::new(StatusCode::BAD_REQUEST, "the approval names no environment")
        })?;
        let env = self.environment(env_name)?.clone();
        let key = subject.to_string();
        if self.db(move |s| s.artifact(&key)).await?.is_none() {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "approval for unknown artifact {subject}: it is not in the artifact store (custody push it first)"
                ),
            ));
        }
        let evidence = self.verify_bundle(bytes, &subject)?;
        let approver = self.principal_of(&evidence).ok_or_else(|| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "the approval is signed by {}, which belongs to no principal (list the key under the approver's [[principal]] keys)",
                    evidence.signer_name()
                ),
            )
        })?;
        if approver != caller.name {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "the approval is signed by {approver:?}'s key but sent with {:?}'s token: approvers send their own approvals",
                    caller.name
                ),
            ));
        }
        if let Some(rule) = &env.approvals {
            let member = self
                .config
                .principals
                .iter()
                .any(|p| p.name == approver && p.groups.contains(&rule.group));
            if !member {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "{approver:?} is not in group {:?}, whose approvals {} needs",
                        rule.group, env.name
                    ),
                ));
            }
        }
        let builders = self.builders_of(subject).await?;
        if builders.contains(&approver) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "separation of duties: {approver:?} built {subject} (signed its provenance) and cannot approve it; ask another member of the approval group"
                ),
            ));
        }
        let (bundle, log_index) = self.ensure_logged(bytes, &evidence).await?;
        let stored = {
            let evidence = self.evidence.clone();
            let now = rfc3339(Utc::now());
            let bundle = bundle.clone();
            tokio::task::spawn_blocking(move || evidence.put(bundle.as_bytes(), &[subject], &now))
                .await
                .map_err(ApiError::internal)?
                .map_err(ApiError::internal)?
        };
        (self.on_change)(Some(&subject));
        self.event(
            &caller.name,
            "approve",
            &subject.to_string(),
            log_index,
            json!({"environment": env.name, "bundle_digest": stored.bundle_digest.to_string()}),
        )
        .await?;
        self.metrics.signed("approval");
        tracing::info!(digest = %subject, environment = %env.name, approver = %approver, "approval stored");
        Ok(json!({
            "digest": subject.to_string(),
            "environment": env.name,
            "approver": approver,
            "log_index": log_index,
            "bundle_digest": stored.bundle_digest.to_string(),
            "duplicate": !stored.new,
        }))
    }

    /// The principals who signed verified SLSA provenance for `digest`.
    async fn builders_of(&self, digest: Sha256Digest) -> Result<BTreeSet<String>, ApiError> {
        let evidence = self.verified_evidence(digest).await?;
        Ok(evidence
            .iter()
            .filter(|e| {
                e.predicate_type.as_deref() == Some(custody_core::intoto::SLSA_PROVENANCE_V1)
            })
            .filter_map(|e| self.principal_of(e))
            .collect())
    }

    /// Every stored bundle for `digest` that verifies (revocations not applied).
    async fn verified_evidence(&self, digest: Sha256Digest) -> Result<Vec<Evidence>, ApiError> {
        let gate = self.trust_gate()?.clone();
        let store = self.evidence.clone();
        tokio::task::spawn_blocking(move || {
            let candidates: Vec<Candidate> = store
                .for_artifact(&digest)?
                .into_iter()
                .map(|b| Candidate {
                    source: format!("evidence:{}", b.bundle_digest),
                    bytes: b.bytes,
                })
                .collect();
            Ok::<_, custody_evidence::StoreError>(
                custody_policy::input::verify_evidence(
                    &gate.trust,
                    Artifact {
                        digest,
                        bytes: None,
                    },
                    &candidates,
                )
                .0,
            )
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
    }

    // ----- the gate ---------------------------------------------------------------------

    /// Evaluates `env`'s policy for `digest` with all stored evidence and the revocations.
    async fn decide(
        &self,
        env: &Environment,
        digest: Sha256Digest,
        requested_by: &str,
    ) -> Result<Verdict, ApiError> {
        let gate = self
            .gates
            .get(&env.name)
            .cloned()
            .ok_or_else(|| ApiError::internal(format!("no policy for {}", env.name)))?;
        let revocations = self.db(|s| s.revocations()).await?;
        let store = self.evidence.clone();
        let request = crate::release_gate::request(
            &self.config,
            env,
            digest,
            requested_by,
            &revocations,
            self.revoked.retired(),
            self.principals.clone(),
        );
        let started = std::time::Instant::now();
        let verdict = tokio::task::spawn_blocking(move || {
            let candidates: Vec<Candidate> = store
                .for_artifact(&digest)
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|b| Candidate {
                    source: format!("evidence:{}", b.bundle_digest),
                    bytes: b.bytes,
                })
                .collect();
            gate.decide(&request, &candidates)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
        self.metrics.decision(&verdict, started.elapsed(), true);
        Ok(verdict)
    }

    // ----- promotion and rollback ---------------------------------------------------------

    /// Promotes `digest` into an environment: same digest that passed the environment before
    /// it, not quarantined, allowed by the environment's policy over all evidence (approvals
    /// included). Signed, logged, recorded; nothing is rebuilt.
    pub async fn promote(
        &self,
        caller: &Caller,
        req: PromoteRequest,
    ) -> Result<(StatusCode, Release), ApiError> {
        caller.require(Role::ReleaseManager, "promoting")?;
        let digest = parse_digest(&req.digest)?;
        let env = self.environment(&req.to)?.clone();
        let content = RequestContent::Promotion {
            digest: digest.to_string(),
            environment: env.name.clone(),
        };
        let _serial = self.serial.lock().await;
        if let Some(done) = self.replayed(req.request_id.as_deref(), &content).await? {
            return Ok((StatusCode::OK, done));
        }
        let key = digest.to_string();
        if let Some(q) = self.db(move |s| s.quarantined(&key)).await? {
            self.metrics.promotion_refused(&env.name);
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "{digest} is quarantined (revocation #{}): it cannot be promoted; build, sign and promote a new release",
                    q.revocation_id
                ),
            ));
        }
        let key = digest.to_string();
        if self.db(move |s| s.artifact(&key)).await?.is_none() {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("{digest} is not in the artifact store: custody push it first"),
            ));
        }
        if let Some(from) = env.from.clone() {
            let passed = self.db(move |s| s.releases(&from)).await?;
            if !passed.iter().any(|r| r.digest == digest.to_string()) {
                self.metrics.promotion_refused(&env.name);
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!(
                        "{digest} has not passed {}: promote the same digest there first (custody promote {digest} --to {})",
                        env.from.as_deref().unwrap_or_default(),
                        env.from.as_deref().unwrap_or_default()
                    ),
                ));
            }
        }
        let name = env.name.clone();
        let current = self.db(move |s| s.current_release(&name)).await?;
        let key = digest.to_string();
        let released = self.db(move |s| s.releases_of(&key)).await?;
        match promotion_outcome(current.as_ref(), &released, &digest.to_string()) {
            // Already current: nothing to do, the same answer as the promotion that made it.
            PromotionOutcome::AlreadyCurrent(c) => return Ok((StatusCode::OK, c.clone())),
            // Taking an environment back is a rollback: explicit, logged as one, and what a
            // deploy agent accepts as going back. A promotion of an older digest would tell
            // the agent "forward" and the server "back", and the two would disagree.
            PromotionOutcome::Older { earlier, current } => {
                self.metrics.promotion_refused(&env.name);
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!(
                        "{digest} is an older release of {env} (seq {}; {env} is now at seq {} with {}): a promotion cannot take an environment back; use `custody rollback {env} --to {digest}` (an explicit, logged rollback)",
                        earlier.seq,
                        current.seq,
                        current.digest,
                        env = env.name
                    ),
                ));
            }
            PromotionOutcome::New => {}
        }
        let verdict = self.decide(&env, digest, &caller.name).await?;
        if !verdict.allowed {
            self.metrics.promotion_refused(&env.name);
            self.event(
                &caller.name,
                "promote-denied",
                &digest.to_string(),
                None,
                json!({"environment": env.name, "codes": verdict.denies.iter().map(|d| d.code.clone()).collect::<Vec<_>>()}),
            )
            .await?;
            return Err(ApiError {
                status: StatusCode::FORBIDDEN,
                message: format!(
                    "promotion of {digest} to {} denied by policy: {}",
                    env.name,
                    verdict.one_line()
                ),
                verdict: Some(Box::new(verdict)),
                retry: false,
            });
        }
        let release = self
            .record_release(
                &env,
                digest,
                ReleaseKind::Promotion,
                &caller.name,
                None,
                req.request_id,
                &content,
                current.as_ref(),
                &verdict,
            )
            .await?;
        self.metrics.promoted(&env.name);
        Ok((StatusCode::CREATED, release))
    }

    /// The release a request id already made, if the id was used: with the same content it
    /// is the answer to this retry; with other content the request is refused (409) naming
    /// the id and what differs. Releases stored before bindings existed are compared field
    /// by field.
    async fn replayed(
        &self,
        request_id: Option<&str>,
        content: &RequestContent,
    ) -> Result<Option<Release>, ApiError> {
        let Some(id) = request_id.filter(|id| !id.is_empty()).map(str::to_owned) else {
            return Ok(None);
        };
        let key = id.clone();
        let Some(done) = self.db(move |s| s.release_by_request(&key)).await? else {
            return Ok(None);
        };
        let key = id.clone();
        let bound = self.db(move |s| s.request_binding(&key)).await?;
        let same = match &bound {
            Some(sha) => *sha == content.sha256_hex(),
            None => content.matches_unbound(&done),
        };
        if same {
            return Ok(Some(done));
        }
        let differences = content.differences(&done);
        Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "request id {id:?} was already used for another request ({} of {} to {}, seq {}): {}; retry with the same request, or use a new request id",
                done.kind.as_str(),
                done.digest,
                done.environment,
                done.seq,
                if differences.is_empty() {
                    format!(
                        "its content differs (SHA-256 {}, bound to {})",
                        content.sha256_hex(),
                        bound.as_deref().unwrap_or("the fields of that release")
                    )
                } else {
                    format!("this one differs in {}", differences.join(", "))
                }
            ),
        ))
    }

    /// Signs, logs and appends a release (the caller holds `serial`).
    #[allow(clippy::too_many_arguments)]
    async fn record_release(
        &self,
        env: &Environment,
        digest: Sha256Digest,
        kind: ReleaseKind,
        requested_by: &str,
        reason: Option<String>,
        request_id: Option<String>,
        content: &RequestContent,
        current: Option<&Release>,
        verdict: &Verdict,
    ) -> Result<Release, ApiError> {
        let seq = current.map_or(1, |c| c.seq + 1);
        let at = Utc::now();
        let from = match kind {
            ReleaseKind::Promotion => env.from.as_deref(),
            ReleaseKind::Rollback => None,
        };
        let statement = statement::release(&ReleaseFacts {
            digest: &digest,
            environment: &env.name,
            seq,
            kind,
            from_environment: from,
            requested_by,
            policy_digest: &verdict.policy_digest,
            reason: reason.as_deref(),
            at,
            previous: current.map(|c| (c.seq, c.digest.as_str())),
        });
        let vsa = custody_policy::vsa::summary(
            verdict,
            &self.verifier_id,
            &format!("custody:environment:{}", env.name),
        );
        // Both go into the same log batch: one wait for a checkpoint, not two.
        let ((bundle, log_index), vsa) = tokio::try_join!(self.sign_and_log(&statement), async {
            match &vsa {
                Some(vsa) => Ok(Some(self.sign_and_log(vsa).await?.0)),
                None => Ok(None),
            }
        })?;
        let release = Release {
            environment: env.name.clone(),
            seq,
            digest: digest.to_string(),
            kind,
            from_environment: from.map(str::to_owned),
            requested_by: requested_by.to_owned(),
            at,
            policy_digest: verdict.policy_digest.clone(),
            reason,
            request_id,
            bundle,
            log_index: Some(log_index),
            vsa,
        };
        // The event is stored with the release, so a server killed in between cannot keep
        // one without the other.
        let event = Event {
            id: 0,
            at: Utc::now(),
            actor: requested_by.to_owned(),
            action: kind.as_str().to_owned(),
            object: release.digest.clone(),
            log_index: Some(log_index),
            detail: json!({"environment": env.name, "seq": seq, "reason": release.reason}),
        };
        let r = release.clone();
        let bound = content.sha256_hex();
        match self
            .db(move |s| s.append_release_for_request(&r, &event, &bound))
            .await
        {
            Ok(_) => {}
            Err(e) if e.status == StatusCode::CONFLICT => {
                // Another replica won; if it was this very request (same id and content),
                // that is ours; the same id with other content is refused.
                if let Some(done) = self
                    .replayed(release.request_id.as_deref(), content)
                    .await?
                {
                    return Ok(done);
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        }
        tracing::info!(environment = %env.name, seq, digest = %release.digest, kind = kind.as_str(), index = log_index, "release recorded");
        Ok(release)
    }

    /// An explicit rollback: to `digest` (which must be in the environment's history) or to
    /// the most recent earlier release that passes.
    pub async fn rollback(
        &self,
        caller: &Caller,
        req: RollbackRequest,
    ) -> Result<(StatusCode, Release), ApiError> {
        caller.require(Role::ReleaseManager, "rolling back")?;
        let env = self.environment(&req.environment)?.clone();
        let target = req.digest.as_deref().map(parse_digest).transpose()?;
        let content = RequestContent::Rollback {
            environment: env.name.clone(),
            digest: target.map(|t| t.to_string()),
            reason: req.reason.clone(),
        };
        let _serial = self.serial.lock().await;
        if let Some(done) = self.replayed(req.request_id.as_deref(), &content).await? {
            return Ok((StatusCode::OK, done));
        }
        let name = env.name.clone();
        let history = self.db(move |s| s.releases(&name)).await?;
        let Some(current) = history.last().cloned() else {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("{} has no release to roll back from", env.name),
            ));
        };
        let quarantined: BTreeSet<String> = self
            .db(|s| s.quarantine_list())
            .await?
            .into_iter()
            .map(|q| q.digest)
            .collect();
        let mut refusals = Vec::new();
        for r in history.iter().rev() {
            if r.digest == current.digest {
                continue;
            }
            if let Some(t) = &target
                && r.digest != t.to_string()
            {
                continue;
            }
            if quarantined.contains(&r.digest) {
                refusals.push(format!("{} is quarantined", r.digest));
                continue;
            }
            let digest = parse_digest(&r.digest)?;
            let verdict = self.decide(&env, digest, &r.requested_by).await?;
            if !verdict.allowed {
                refusals.push(format!(
                    "{} no longer passes: {}",
                    r.digest,
                    verdict.one_line()
                ));
                continue;
            }
            let release = self
                .record_release(
                    &env,
                    digest,
                    ReleaseKind::Rollback,
                    &caller.name,
                    Some(req.reason.clone()),
                    req.request_id.clone(),
                    &content,
                    Some(&current),
                    &verdict,
                )
                .await?;
            self.metrics.rolled_back(&env.name);
            return Ok((StatusCode::CREATED, release));
        }
        Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "no earlier release of {} can be rolled back to{}{}",
                env.name,
                if refusals.is_empty() { "" } else { ": " },
                refusals.join("; ")
            ),
        ))
    }

    // ----- revocation and recovery --------------------------------------------------------

    /// Accepts a signed revocation from an admin, logs and stores it, then reconciles.
    pub async fn revoke(&self, caller: &Caller, bytes: &[u8]) -> Result<Json, ApiError> {
        caller.require(Role::Admin, "revoking")?;
        let (statement, subject) = dsse_statement(bytes, statement::REVOCATION_V1)?;
        let predicate = statement.predicate.clone();
        let target = statement::field(&predicate, "target")
            .ok_or_else(|| {
                ApiError::new(StatusCode::BAD_REQUEST, "the revocation names no target")
            })?
            .to_owned();
        statement::parse_target(&target).map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, m))?;
        if subject != Sha256Digest::of(target.as_bytes()) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "the revocation's subject is not the digest of its target (make it with custody revoke)",
            ));
        }
        let reason = statement::field(&predicate, "reason")
            .unwrap_or_default()
            .to_owned();
        let evidence = self.verify_bundle(bytes, &subject)?;
        let signer = self.principal_of(&evidence);
        let is_admin = signer.as_ref().is_some_and(|name| {
            self.config
                .principals
                .iter()
                .any(|p| &p.name == name && p.roles.contains(&Role::Admin))
        });
        if !is_admin {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "the revocation is signed by {} ({}), not by an admin's key",
                    evidence.signer_name(),
                    signer.as_deref().unwrap_or("no principal")
                ),
            ));
        }
        let existing = self.db(|s| s.revocations()).await?;
        if let Some(r) = existing.iter().find(|r| r.target == target) {
            let report = self.reconcile().await?;
            return Ok(json!({"revocation": r, "duplicate": true, "reconcile": report}));
        }
        let (bundle, log_index) = self.ensure_logged(bytes, &evidence).await?;
        let revocation = Revocation {
            id: 0,
            target: target.clone(),
            reason: reason.clone(),
            revoked_by: caller.name.clone(),
            at: Utc::now(),
            bundle,
            log_index,
        };
        let revocation = self.db(move |s| s.add_revocation(&revocation)).await?;
        self.metrics.signed("revocation");
        self.event(
            &caller.name,
            "revoke",
            &target,
            log_index,
            json!({"id": revocation.id, "reason": reason}),
        )
        .await?;
        self.alert(json!({
            "event": "revocation",
            "revocation": revocation.id,
            "target": target,
            "reason": reason,
            "by": caller.name,
        }))
        .await;
        let report = self.reconcile().await?;
        Ok(json!({"revocation": revocation, "duplicate": false, "reconcile": report}))
    }

    /// Quarantines everything the revocations touch and rolls back every environment whose
    /// current release is quarantined. Idempotent.
    pub async fn reconcile(&self) -> Result<Json, ApiError> {
        let _serial = self.serial.lock().await;
        let revocations = self.db(|s| s.revocations()).await?;
        self.revoked.set(&revocations);
        if revocations.is_empty() {
            return Ok(json!({"quarantined": [], "rolled_back": []}));
        }
        // Every digest that was ever released somewhere.
        let mut digests: BTreeSet<String> = BTreeSet::new();
        let mut histories: BTreeMap<String, Vec<Release>> = BTreeMap::new();
        for env in &self.config.environments {
            let name = env.name.clone();
            let h = self.db(move |s| s.releases(&name)).await?;
            digests.extend(h.iter().map(|r| r.digest.clone()));
            histories.insert(env.name.clone(), h);
        }
        // Which revocation touches which digest.
        let mut newly = Vec::new();
        let mut touched_by: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for d in &digests {
            let digest = parse_digest(d)?;
            let evidence = self.verified_evidence(digest).await?;
            for id in crate::release_gate::touching(&revocations, Some(&digest), &evidence) {
                let Some(r) = revocations.iter().find(|r| r.id == id) else {
                    continue;
                };
                touched_by.entry(r.id).or_default().push(d.clone());
                let q = Quarantine {
                    digest: d.clone(),
                    revocation_id: r.id,
                    at: Utc::now(),
                };
                if self.db(move |s| s.quarantine(&q)).await? {
                    newly.push(d.clone());
                    self.event(
                        SERVER_PRINCIPAL,
                        "quarantine",
                        d,
                        None,
                        json!({"revocation": r.id, "target": r.target}),
                    )
                    .await?;
                }
            }
        }
        if !newly.is_empty() {
            (self.on_change)(None);
        }
        let quarantined: BTreeSet<String> = self
            .db(|s| s.quarantine_list())
            .await?
            .into_iter()
            .map(|q| q.digest)
            .collect();
        let incidents = self.db(|s| s.incidents()).await?;
        let mut rolled = Vec::new();
        for (rev_id, affected) in &touched_by {
            let Some(revocation) = revocations.iter().find(|r| r.id == *rev_id) else {
                continue;
            };
            let mut incident = match incidents.iter().find(|i| i.revocation_id == *rev_id) {
                Some(i) => i.clone(),
                None => {
                    let introduced = histories
                        .values()
                        .flatten()
                        .filter(|r| affected.contains(&r.digest))
                        .map(|r| r.at)
                        .min();
                    let new = Incident {
                        id: 0,
                        revocation_id: *rev_id,
                        detected_at: revocation.at,
                        introduced_at: introduced,
                        recovered_at: None,
                        status: "open".into(),
                        affected_digests: affected.clone(),
                        recoveries: Vec::new(),
                    };
                    let opened = self.db(move |s| s.open_incident(&new)).await?;
                    self.metrics.incident_opened();
                    self.alert(json!({
                        "event": "incident",
                        "incident": opened.id,
                        "revocation": rev_id,
                        "target": revocation.target,
                        "affected": affected,
                    }))
                    .await;
                    opened
                }
            };
            for env in &self.config.environments {
                let history = histories.get(&env.name).cloned().unwrap_or_default();
                if !incident
                    .recoveries
                    .iter()
                    .any(|r| r.environment == env.name)
                    && let Some(recovery) =
                        self.recovery_on_record(&incident, env, &history).await?
                {
                    // A previous run rolled this environment back and stopped before it
                    // stored the incident: the signed rollback is the recovery.
                    incident.recoveries.push(recovery);
                }
                let name = env.name.clone();
                let Some(current) = self.db(move |s| s.current_release(&name)).await? else {
                    continue;
                };
                if !quarantined.contains(&current.digest) || !affected.contains(&current.digest) {
                    continue;
                }
                let mut chosen = None;
                for r in history.iter().rev() {
                    if quarantined.contains(&r.digest) {
                        continue;
                    }
                    let digest = parse_digest(&r.digest)?;
                    let verdict = self.decide(env, digest, &r.requested_by).await?;
                    if verdict.allowed {
                        chosen = Some((digest, verdict));
                        break;
                    }
                }
                let mut recovery = Recovery {
                    environment: env.name.clone(),
                    from_digest: current.digest.clone(),
                    to_digest: None,
                    seq: None,
                    deployed_at: None,
                };
                match chosen {
                    Some((digest, verdict)) => {
                        let reason = format!(
                            "{}revocation #{} of {} ({})",
                            incident_reason_prefix(incident.id),
                            revocation.id,
                            revocation.target,
                            revocation.reason
                        );
                        let release = self
                            .record_release(
                                env,
                                digest,
                                ReleaseKind::Rollback,
                                SERVER_PRINCIPAL,
                                Some(reason.clone()),
                                None,
                                &RequestContent::Rollback {
                                    environment: env.name.clone(),
                                    digest: Some(digest.to_string()),
                                    reason,
                                },
                                Some(&current),
                                &verdict,
                            )
                            .await?;
                        self.metrics.rolled_back(&env.name);
                        recovery.to_digest = Some(release.digest.clone());
                        recovery.seq = Some(release.seq);
                        if env.target.is_none() {
                            // No deploy agent reports for it: recovered when recorded.
                            recovery.deployed_at = Some(release.at);
                        }
                        rolled.push(json!({"environment": env.name, "from": current.digest, "to": release.digest, "seq": release.seq}));
                        self.alert(json!({
                            "event": "rollback",
                            "incident": incident.id,
                            "environment": env.name,
                            "from": current.digest,
                            "to": release.digest,
                            "seq": release.seq,
                        }))
                        .await;
                    }
                    None => {
                        self.alert(json!({
                            "event": "unrecoverable",
                            "incident": incident.id,
                            "environment": env.name,
                            "digest": current.digest,
                            "message": "no earlier release still passes policy: build and promote a new one",
                        }))
                        .await;
                    }
                }
                incident.recoveries.retain(|r| r.environment != env.name);
                incident.recoveries.push(recovery);
            }
            settle(&mut incident);
            let i = incident.clone();
            self.db(move |s| s.update_incident(&i)).await?;
        }
        Ok(json!({"quarantined": newly, "rolled_back": rolled}))
    }

    /// The recovery of `env` from `incident` that the environment's history shows: the
    /// rollback the server signed for the incident (reason `incident #N: …`), deployed when an
    /// agent reported it active (or, without a target, when recorded). For a run that stopped
    /// between recording a rollback and storing the incident.
    async fn recovery_on_record(
        &self,
        incident: &Incident,
        env: &Environment,
        history: &[Release],
    ) -> Result<Option<Recovery>, ApiError> {
        let prefix = incident_reason_prefix(incident.id);
        let Some(at) = history.iter().position(|r| {
            r.kind == ReleaseKind::Rollback
                && r.requested_by == SERVER_PRINCIPAL
                && r.reason.as_deref().is_some_and(|x| x.starts_with(&prefix))
        }) else {
            return Ok(None);
        };
        let rollback = &history[at];
        let deployed_at = if env.target.is_none() {
            Some(rollback.at)
        } else {
            let name = env.name.clone();
            self.db(move |s| s.deployments(&name))
                .await?
                .into_iter()
                .find(|d| {
                    d.status == "active" && d.seq == rollback.seq && d.digest == rollback.digest
                })
                .map(|d| d.at)
        };
        Ok(Some(Recovery {
            environment: env.name.clone(),
            from_digest: at
                .checked_sub(1)
                .map(|i| history[i].digest.clone())
                .unwrap_or_default(),
            to_digest: Some(rollback.digest.clone()),
            seq: Some(rollback.seq),
            deployed_at,
        }))
    }

    /// Records a deploy agent's report; completes incident recoveries it confirms.
    ///
    /// The report must name a release on record: `environment`'s release `seq` with that
    /// `digest` (409 otherwise). A report that a quarantined digest is `active` is refused
    /// (409, an alert and a `deploy-refused` event): a deploy agent must not run it, and such
    /// a report must never count as a recovery.
    pub async fn deployed(&self, caller: &Caller, mut report: Deployment) -> Result<(), ApiError> {
        caller.require_deployer_for(&report.environment)?;
        self.environment(&report.environment)?;
        parse_digest(&report.digest)?;
        if report.status != "active" && report.status != "failed" {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "deployment status {:?}: expected active or failed",
                    report.status
                ),
            ));
        }
        let name = report.environment.clone();
        let history = self.db(move |s| s.releases(&name)).await?;
        if let Err(why) =
            deployment_on_record(&history, &report.environment, report.seq, &report.digest)
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "deployment report refused: {why}; report the release the agent activated (GET /api/v1/environments/{})",
                    report.environment
                ),
            ));
        }
        if report.status == "active" {
            let key = report.digest.clone();
            if let Some(q) = self.db(move |s| s.quarantined(&key)).await? {
                let detail = json!({"environment": report.environment, "seq": report.seq, "agent": report.agent, "status": report.status, "revocation": q.revocation_id});
                self.event(&caller.name, "deploy-refused", &report.digest, None, detail)
                    .await?;
                self.alert(json!({
                    "event": "quarantined-active",
                    "environment": report.environment,
                    "seq": report.seq,
                    "digest": report.digest,
                    "agent": report.agent,
                    "revocation": q.revocation_id,
                }))
                .await;
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!(
                        "deployment report refused: environment {}, seq {}, digest {} is quarantined (revocation #{}) and must not run; the agent should activate the environment's current release",
                        report.environment, report.seq, report.digest, q.revocation_id
                    ),
                ));
            }
        }
        report.at = Utc::now();
        let r = report.clone();
        self.db(move |s| s.record_deployment(&r)).await?;
        self.event(
            &caller.name,
            "deploy",
            &report.digest,
            None,
            json!({"environment": report.environment, "seq": report.seq, "agent": report.agent, "status": report.status, "detail": report.detail}),
        )
        .await?;
        self.metrics.deployment(&report.environment, &report.status);
        if report.status != "active" {
            return Ok(());
        }
        let _serial = self.serial.lock().await;
        for mut incident in self.db(|s| s.incidents()).await? {
            if incident.status != "open" {
                continue;
            }
            let mut changed = false;
            for r in &mut incident.recoveries {
                if r.environment == report.environment
                    && r.seq == Some(report.seq)
                    && r.to_digest.as_deref() == Some(report.digest.as_str())
                    && r.deployed_at.is_none()
                {
                    r.deployed_at = Some(report.at);
                    changed = true;
                }
            }
            if changed {
                settle(&mut incident);
                if incident.status == "recovered" {
                    self.metrics.incident_recovered();
                }
                let i = incident.clone();
                self.db(move |s| s.update_incident(&i)).await?;
            }
        }
        Ok(())
    }

    async fn alert(&self, mut event: Json) {
        if let Some(obj) = event.as_object_mut() {
            obj.insert("at".into(), json!(rfc3339(Utc::now())));
            obj.insert("alert".into(), json!(true));
        }
        tracing::warn!(target: "custody::alert", "{event}");
        self.metrics.alert();
        if let Some(url) = self.alert_webhook.clone() {
            let body = event.to_string();
            let posted = tokio::task::spawn_blocking(move || {
                crate::client::agent()
                    .post(&url)
                    .header("content-type", "application/json")
                    .send(body.as_bytes())
                    .map(|_| ())
            })
            .await;
            if !matches!(posted, Ok(Ok(()))) {
                tracing::warn!("the alert webhook did not take the alert");
            }
        }
    }

    // ----- key rotation -----------------------------------------------------------------

    /// Accepts a key rotation: a statement signed by the old key naming its successor and
    /// when the old key retires. Both keys must be trusted (listed under a principal, or
    /// `--gate-key`) during the overlap. Logged and recorded; the retirement takes effect at
    /// `retireAt`, when the log's size becomes the cut: what the old key signed and logged
    /// before it keeps verifying, nothing later counts.
    pub async fn rotate(&self, caller: &Caller, bytes: &[u8]) -> Result<Json, ApiError> {
        caller.require(Role::Admin, "rotating a key")?;
        let (statement, subject) = dsse_statement(bytes, statement::KEY_ROTATION_V1)?;
        let p = statement.predicate.clone();
        let field = |name: &str| {
            statement::field(&p, name)
                .map(str::to_owned)
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        format!("the key rotation has no {name}"),
                    )
                })
        };
        let (old_id, new_id, new_pem) = (field("oldKeyId")?, field("newKeyId")?, field("newKey")?);
        let retire_at: DateTime<Utc> = field("retireAt")?
            .parse()
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("retireAt: {e}")))?;
        if subject != Sha256Digest::of(format!("key:{new_id}").as_bytes()) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "the rotation's subject is not the digest of key:<new key id> (make it with custody key rotate)",
            ));
        }
        let new_key = PublicKey::from_pem(new_pem.as_bytes())
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("newKey: {e}")))?;
        if new_key.key_id().to_string() != new_id {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "newKeyId is not the id of newKey",
            ));
        }
        if new_id == old_id {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "the new key is the old key",
            ));
        }
        let evidence = self.verify_bundle(bytes, &subject)?;
        if evidence.signer.key_id.as_deref() != Some(old_id.as_str()) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "a rotation must be signed by the old key {old_id}; this one is signed by {}",
                    evidence.signer_name()
                ),
            ));
        }
        if !self
            .trust_gate()?
            .trust
            .keys
            .iter()
            .any(|k| k.key_id() == new_key.key_id())
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "the new key {new_id} is not trusted by this server yet: list it under the principal's keys in the release config (beside the old one, for the overlap), restart, then rotate"
                ),
            ));
        }
        let (_, log_index) = self.ensure_logged(bytes, &evidence).await?;
        let object = format!("key:{old_id}");
        let detail = json!({
            "old_key_id": old_id,
            "new_key_id": new_id,
            "retire_at": rfc3339(retire_at),
            "reason": statement::field(&p, "reason").unwrap_or("rotated"),
        });
        self.event(
            &caller.name,
            "key-rotate",
            &object,
            log_index,
            detail.clone(),
        )
        .await?;
        self.metrics.signed("key_rotation");
        let retired = self.refresh_retirements().await?;
        Ok(json!({
            "rotation": detail,
            "log_index": log_index,
            "retired": retired,
        }))
    }

    /// Fixes the cut of every rotation whose retirement time has come (the log's size then),
    /// and publishes the retired keys to every gate decision. Returns them.
    pub async fn refresh_retirements(&self) -> Result<Json, ApiError> {
        let events = self.db(|s| s.events(None)).await?;
        let now = Utc::now();
        let mut retired = Vec::new();
        let mut pending = false;
        for e in events.iter().filter(|e| e.action == "key-rotate") {
            let old = e.detail["old_key_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let new = e.detail["new_key_id"].as_str().map(str::to_owned);
            let Some(retire_at) = e.detail["retire_at"]
                .as_str()
                .and_then(|t| t.parse::<DateTime<Utc>>().ok())
            else {
                continue;
            };
            let cut = events
                .iter()
                .find(|x| x.action == "key-retire" && x.object == e.object)
                .and_then(|x| x.detail["cut"].as_u64());
            let cut = match cut {
                Some(c) => c,
                None if retire_at <= now => {
                    let size = self.log_size().await?;
                    self.event(
                        SERVER_PRINCIPAL,
                        "key-retire",
                        &e.object,
                        None,
                        json!({"cut": size, "successor": new}),
                    )
                    .await?;
                    self.alert(
                        json!({"event": "key-retired", "key": old, "successor": new, "cut": size}),
                    )
                    .await;
                    size
                }
                None => {
                    pending = true;
                    continue;
                }
            };
            retired.push(custody_policy::input::RetiredKey {
                key_id: old,
                cut,
                successor: new,
                reason: format!("rotated (event #{})", e.id),
            });
        }
        let out = serde_json::to_value(&retired).unwrap_or_default();
        self.retirements_pending
            .store(pending, std::sync::atomic::Ordering::Relaxed);
        if *self.revoked.retired() != retired {
            self.revoked.set_retired(retired);
            (self.on_change)(None);
        }
        Ok(out)
    }

    /// Whether a rotation is waiting for its retirement time.
    pub fn retirements_pending(&self) -> bool {
        self.retirements_pending
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn log_size(&self) -> Result<u64, ApiError> {
        let note = self.log.checkpoint().await.map_err(ApiError::internal)?;
        Ok(note
            .lines()
            .nth(1)
            .and_then(|l| l.parse().ok())
            .unwrap_or_default())
    }

    // ----- reads ------------------------------------------------------------------------

    /// Scrape-time figures for `/metrics`.
    pub async fn snapshot(&self) -> Result<crate::metrics::Snapshot, ApiError> {
        let incidents = self.db(|s| s.incidents()).await?;
        let quarantined = self.db(|s| s.quarantine_list()).await?.len() as u64;
        let secs = |d: chrono::TimeDelta| d.num_milliseconds() as f64 / 1000.0;
        Ok(crate::metrics::Snapshot {
            log_size: 0,
            detect_seconds: incidents
                .iter()
                .filter_map(|i| i.introduced_at.map(|t| secs(i.detected_at - t)))
                .collect(),
            recover_seconds: incidents
                .iter()
                .filter_map(|i| i.recovered_at.map(|t| secs(t - i.detected_at)))
                .collect(),
            incidents_open: incidents.iter().filter(|i| i.status != "recovered").count() as u64,
            quarantined,
        })
    }

    pub async fn environments(&self) -> Result<Json, ApiError> {
        let mut out = Vec::new();
        for env in &self.config.environments {
            let name = env.name.clone();
            let current = self.db(move |s| s.current_release(&name)).await?;
            out.push(json!({
                "name": env.name,
                "from": env.from,
                "stage": env.stage,
                "target": env.target,
                "approvals": env.approvals,
                "current": current.map(|c| json!({"seq": c.seq, "digest": c.digest, "kind": c.kind, "at": rfc3339(c.at)})),
            }));
        }
        Ok(json!({ "environments": out }))
    }

    pub async fn environment_current(&self, name: &str) -> Result<Json, ApiError> {
        let env = self.environment(name)?.name.clone();
        let n = env.clone();
        let current = self.db(move |s| s.current_release(&n)).await?;
        Ok(json!({ "environment": env, "current": current }))
    }

    pub async fn environment_history(&self, name: &str) -> Result<Json, ApiError> {
        let env = self.environment(name)?.name.clone();
        let n = env.clone();
        let releases = self.db(move |s| s.releases(&n)).await?;
        let n = env.clone();
        let deployments = self.db(move |s| s.deployments(&n)).await?;
        Ok(json!({ "environment": env, "releases": releases, "deployments": deployments }))
    }

    pub async fn incidents(&self) -> Result<Json, ApiError> {
        let incidents = self.db(|s| s.incidents()).await?;
        let revocations = self.db(|s| s.revocations()).await?;
        let quarantine = self.db(|s| s.quarantine_list()).await?;
        Ok(json!({ "incidents": incidents, "revocations": revocations, "quarantine": quarantine }))
    }

    pub async fn events(&self, object: Option<String>) -> Result<Json, ApiError> {
        let events = self.db(move |s| s.events(object.as_deref())).await?;
        Ok(json!({ "events": events }))
    }

    /// The chain of custody of one artifact: everything custody knows about it, each with
    /// its log index and the bundle that proves it.
    pub async fn history(&self, digest: &str) -> Result<Json, ApiError> {
        let digest = parse_digest(digest)?;
        let key = digest.to_string();
        let artifact = self.db(move |s| s.artifact(&key)).await?;
        let key = digest.to_string();
        let releases = self.db(move |s| s.releases_of(&key)).await?;
        let mut deployments = Vec::new();
        let envs: BTreeSet<String> = releases.iter().map(|r| r.environment.clone()).collect();
        for env in envs {
            let all = self.db(move |s| s.deployments(&env)).await?;
            deployments.extend(all.into_iter().filter(|d| d.digest == digest.to_string()));
        }
        let key = digest.to_string();
        let quarantine = self.db(move |s| s.quarantined(&key)).await?;
        let revocations = self.db(|s| s.revocations()).await?;
        let verified = self.verified_evidence(digest).await?;
        let stored = {
            let store = self.evidence.clone();
            tokio::task::spawn_blocking(move || store.for_artifact(&digest))
                .await
                .map_err(ApiError::internal)?
                .map_err(ApiError::internal)?
        };
        let mut evidence = Vec::new();
        for b in stored {
            let key = b.bundle_digest.to_string();
            let v = verified.iter().find(|e| e.bundle_digest == key);
            let revoked_by: Vec<u64> = match v {
                Some(e) => {
                    crate::release_gate::touching(&revocations, None, std::slice::from_ref(e))
                }
                None => Vec::new(),
            };
            evidence.push(json!({
                "bundle_digest": b.bundle_digest.to_string(),
                "verified": v.is_some(),
                "predicate_type": v.and_then(|e| e.predicate_type.clone()),
                "signer": v.map(|e| e.signer_name()),
                "principal": v.and_then(|e| self.principal_of(e)),
                "log_index": v.and_then(|e| e.tlog.first().map(|t| t.log_index)),
                "integrated_time": v.and_then(|e| e.tlog.first().and_then(|t| t.integrated_time.clone())),
                "revoked_by": revoked_by,
                "bundle": String::from_utf8_lossy(&b.bytes),
            }));
        }
        let key = digest.to_string();
        let events = self.db(move |s| s.events(Some(&key))).await?;
        let relevant_revocations: Vec<&Revocation> = revocations
            .iter()
            .filter(|r| {
                quarantine.as_ref().is_some_and(|q| q.revocation_id == r.id)
                    || r.target == format!("digest:{digest}")
            })
            .collect();
        if artifact.is_none() && releases.is_empty() && evidence.is_empty() {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("custody knows nothing about {digest} (no artifact, evidence or release)"),
            ));
        }
        Ok(json!({
            "digest": digest.to_string(),
            "artifact": artifact,
            "evidence": evidence,
            "releases": releases,
            "deployments": deployments,
            "quarantine": quarantine,
            "revocations": relevant_revocations,
            "events": events,
            "release_key": self.key_public.to_pem(),
        }))
    }
}

/// How the reason of a rollback made for incident `id` begins.
fn incident_reason_prefix(id: u64) -> String {
    format!("incident #{id}: ")
}

/// Sets an incident's status and recovery time from its recoveries.
fn settle(incident: &mut Incident) {
    if incident.recoveries.is_empty() {
        return;
    }
    if incident.recoveries.iter().any(|r| r.to_digest.is_none()) {
        incident.status = "unrecoverable".into();
        return;
    }
    if incident.recoveries.iter().all(|r| r.deployed_at.is_some()) {
        incident.recovered_at = incident
            .recoveries
            .iter()
            .filter_map(|r| r.deployed_at)
            .max();
        incident.status = "recovered".into();
    } else {
        incident.status = "open".into();
    }
}

/// The statement of a DSSE bundle with the given predicate type, and its single subject's
/// SHA-256.
fn dsse_statement(
    bytes: &[u8],
    predicate_type: &str,
) -> Result<(Statement, Sha256Digest), ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let bundle =
        Bundle::from_json(bytes).map_err(|e| bad(format!("not a Sigstore bundle: {e}")))?;
    let BundleContent::Dsse(envelope) = &bundle.content else {
        return Err(bad("expected a DSSE bundle".into()));
    };
    let statement = Statement::from_json(&envelope.payload)
        .map_err(|e| bad(format!("the envelope is not an in-toto statement: {e}")))?;
    if statement.predicate_type != predicate_type {
        return Err(bad(format!(
            "expected predicate type {predicate_type}, got {}",
            statement.predicate_type
        )));
    }
    let [subject] = statement.subject.as_slice() else {
        return Err(bad("expected exactly one subject".into()));
    };
    let hex = subject
        .digest
        .get("sha256")
        .ok_or_else(|| bad("the subject has no sha256 digest".into()))?;
    let digest = Sha256Digest::from_hex(hex).map_err(|e| bad(format!("subject digest: {e}")))?;
    Ok((statement, digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settle_needs_every_recovery() {
        let now = Utc::now();
        let mut i = Incident {
            id: 1,
            revocation_id: 1,
            detected_at: now,
            introduced_at: None,
            recovered_at: None,
            status: "open".into(),
            affected_digests: vec![],
            recoveries: vec![
                Recovery {
                    environment: "prod".into(),
                    from_digest: "a".into(),
                    to_digest: Some("b".into()),
                    seq: Some(3),
                    deployed_at: Some(now),
                },
                Recovery {
                    environment: "staging".into(),
                    from_digest: "a".into(),
                    to_digest: Some("b".into()),
                    seq: Some(4),
                    deployed_at: None,
                },
            ],
        };
        settle(&mut i);
        assert_eq!(i.status, "open");
        assert!(i.recovered_at.is_none());
        i.recoveries[1].deployed_at = Some(now + chrono::Duration::seconds(2));
        settle(&mut i);
        assert_eq!(i.status, "recovered");
        assert_eq!(i.recovered_at, Some(now + chrono::Duration::seconds(2)));
        i.recoveries[0].to_digest = None;
        settle(&mut i);
        assert_eq!(i.status, "unrecoverable");
    }
}
