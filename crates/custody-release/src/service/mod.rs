//! The release service: the artifact store, approvals, promotion and rollback, revocation,
//! quarantine, automatic rollback and incidents, key rotation, deployment reports, and the
//! queries over them. No HTTP: typed requests in ([`api`]), typed answers or one
//! [`ReleaseError`] out; the server (`custody-server`'s `release_api`) maps them to HTTP.
//!
//! Every state change is signed by the release key, appended to the transparency log through
//! the [`ReleaseLog`] interface, and stored with the bundle (statement + log entry) beside the
//! record, so a deploy agent or an auditor can verify it offline. Promotions and rollbacks are
//! serialized in-process by a lock and across processes by the store's compare-and-swap on
//! each environment's release sequence.
//!
//! Recovery is a reconciliation, not a one-shot reaction: [`ReleaseService::reconcile`] looks
//! at every revocation, quarantines every artifact whose verified evidence a revocation
//! touches, and moves every environment whose current release is quarantined back to its most
//! recent release that still passes policy. It is idempotent, runs after every revocation and
//! at start-up, so a server killed halfway through a rollback finishes it when it comes back.
//!
//! One module per operation: [`push`](ReleaseService::push) and artifact bytes (`push`),
//! approvals (`approve`), promotion and rollback (`promote`), revocation and reconciliation
//! (`revoke`), key rotation and retirements (`rotate`), deployment reports (`deploy`), reads
//! (`queries`), signed current-release statements (`current`), the policy request for a
//! release with the revocations every gate decision applies (`gate`), and the release state
//! admission follows (`admission`).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use custody_core::bundle::{Bundle, BundleContent};
use custody_core::digest::Sha256Digest;
use custody_core::intoto::Statement;
use custody_core::keys::{PublicKey, SigningKey};
use custody_core::verify::Artifact;
use custody_evidence::EvidenceStore;
use custody_policy::Gate;
use custody_policy::input::{Candidate, Evidence, verify_one};
use serde_json::{Value as Json, json};

use crate::cas::Cas;
use crate::config::{Environment, ReleaseConfig};
use crate::model::Event;
use crate::statement;
use crate::store::{ReleaseStore, StoreError};

mod admission;
pub mod api;
mod approve;
mod current;
mod deploy;
mod error;
pub mod gate;
mod loaded;
mod ports;
mod promote;
mod push;
mod queries;
mod revoke;
mod rotate;

pub use api::*;
pub use current::DEFAULT_CURRENT_RELEASE_LIFETIME;
pub use error::ReleaseError;
pub use gate::SharedRevocations;
pub use loaded::Successor;
pub use ports::{
    BoxFuture, Checkpoint, LogError, Logged, NoopObserver, OnChange, ReleaseLog, ReleaseObserver,
};

/// The principal name the server signs automatic actions as.
pub const SERVER_PRINCIPAL: &str = "custody";

/// What the release service is made of (`custody serve --release-config` builds it).
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
}

impl std::fmt::Debug for ReleaseSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReleaseSetup")
            .field("environments", &self.gates.keys().collect::<Vec<_>>())
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// What the service talks to: the log it appends to, the evidence store it reads and writes,
/// the observer it reports to, and the callback that drops cached decisions.
pub struct ReleasePorts {
    pub log: Arc<dyn ReleaseLog>,
    pub evidence: Arc<dyn EvidenceStore>,
    pub observer: Arc<dyn ReleaseObserver>,
    pub on_change: OnChange,
}

/// The service.
pub struct ReleaseService {
    /// The config, gates and principals: swapped whole by a reload or a rotation.
    rules: loaded::RuleCell,
    store: Arc<dyn ReleaseStore>,
    cas: Cas,
    key: Arc<SigningKey>,
    key_public: PublicKey,
    verifier_id: String,
    log: Arc<dyn ReleaseLog>,
    evidence: Arc<dyn EvidenceStore>,
    serial: tokio::sync::Mutex<()>,
    observer: Arc<dyn ReleaseObserver>,
    revoked: Arc<SharedRevocations>,
    retirements: rotate::Schedule,
    /// What admission knows of each environment's releases, dropped on every change.
    states: Arc<admission::ReleaseStates>,
    on_change: OnChange,
}

impl std::fmt::Debug for ReleaseService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReleaseService")
            .field(
                "environments",
                &self.rules().gates.keys().cloned().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

pub(crate) fn parse_digest(text: &str) -> Result<Sha256Digest, ReleaseError> {
    text.parse::<Sha256Digest>().map_err(|e| {
        ReleaseError::bad(format!(
            "{text:?} is not a digest ({e}): expected sha256:<64 hex digits>"
        ))
    })
}

fn rfc3339(t: DateTime<Utc>) -> String {
    statement::rfc3339(t)
}

impl ReleaseService {
    /// `ports.on_change` is called with a digest (or `None` for everything) whenever
    /// decisions about it may have changed: the gate's decision cache drops them.
    pub fn new(setup: ReleaseSetup, ports: ReleasePorts) -> Self {
        let key_public = setup.key.public_key();
        // Every change also drops the release states admission keeps.
        let states: Arc<admission::ReleaseStates> = Arc::default();
        let forget = states.clone();
        let outer = ports.on_change;
        let on_change: OnChange = Box::new(move |digest| {
            forget.clear();
            outer(digest);
        });
        Self {
            rules: loaded::RuleCell::new(setup.config, setup.gates),
            store: setup.store,
            cas: setup.cas,
            key: Arc::new(setup.key),
            key_public,
            verifier_id: setup.verifier_id,
            log: ports.log,
            evidence: ports.evidence,
            serial: tokio::sync::Mutex::new(()),
            observer: ports.observer,
            revoked: Arc::default(),
            retirements: rotate::Schedule::default(),
            states,
            on_change,
        }
    }

    /// The release config in force (with the successor keys of accepted rotations).
    pub fn config(&self) -> Arc<ReleaseConfig> {
        self.rules().config.clone()
    }

    /// Replaces the config and the environments' gates (a reload): every request from now on
    /// sees the new ones; one in flight finishes on the snapshot it took. Successor keys of
    /// accepted rotations stay. Every cached decision is dropped.
    pub fn replace(&self, config: ReleaseConfig, gates: BTreeMap<String, Arc<Gate>>) {
        self.rules.replace(config, gates);
        (self.on_change)(None);
    }

    /// One consistent snapshot of the config, gates and principals.
    fn rules(&self) -> Arc<loaded::Rules> {
        self.rules.snapshot()
    }

    /// The revocations and key retirements in force, for the admission gate (kept current by
    /// [`Self::reconcile`] and [`Self::refresh_retirements`]).
    pub fn revocations(&self) -> Arc<SharedRevocations> {
        self.revoked.clone()
    }

    /// The release key's public half (what release statements verify under).
    pub fn release_key(&self) -> &PublicKey {
        &self.key_public
    }

    /// Runs a store call on the blocking pool.
    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn ReleaseStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ReleaseError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(ReleaseError::internal)?
            .map_err(ReleaseError::from)
    }

    /// Runs an evidence store call on the blocking pool.
    async fn evidence_db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn EvidenceStore) -> Result<T, custody_evidence::StoreError> + Send + 'static,
    ) -> Result<T, ReleaseError> {
        let store = self.evidence.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(ReleaseError::internal)?
            .map_err(|e| ReleaseError::internal(format!("evidence store: {e}")))
    }

    fn environment(&self, name: &str) -> Result<Environment, ReleaseError> {
        let rules = self.rules();
        rules.config.environment(name).cloned().ok_or_else(|| {
            ReleaseError::not_found(format!(
                "unknown environment {name:?} (this server has: {})",
                rules
                    .config
                    .environments
                    .iter()
                    .map(|e| e.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    async fn event(
        &self,
        actor: &str,
        action: &str,
        object: &str,
        log_index: Option<u64>,
        detail: Json,
    ) -> Result<u64, ReleaseError> {
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
    async fn sign_and_log(&self, statement: &Statement) -> Result<(String, u64), ReleaseError> {
        let signed = custody_core::sign::sign_statement(&self.key, statement)
            .map_err(|e| ReleaseError::internal(format!("signing with the release key: {e}")))?;
        let out = self.log_signed(signed).await?;
        self.observer.signed(
            statement
                .predicate_type
                .rsplit('/')
                .nth(1)
                .unwrap_or("statement"),
        );
        Ok(out)
    }

    /// Appends a signed statement to the log; returns the bundle and index.
    async fn log_signed(
        &self,
        signed: custody_core::sign::Signed,
    ) -> Result<(String, u64), ReleaseError> {
        let logged = self.log.append(signed).await.map_err(|e| match e {
            LogError::Unavailable(_) => ReleaseError::Log(e.to_string()),
            LogError::Failed(m) => ReleaseError::Internal(m),
        })?;
        Ok((logged.bundle, logged.index))
    }

    /// The log's current checkpoint.
    async fn checkpoint(&self) -> Result<Checkpoint, ReleaseError> {
        self.log.checkpoint().await.map_err(|e| match e {
            LogError::Unavailable(_) => ReleaseError::Log(e.to_string()),
            LogError::Failed(m) => ReleaseError::Internal(m),
        })
    }

    /// Sends an alert (with its time) to the observer.
    async fn alert(&self, mut event: Json) {
        if let Some(obj) = event.as_object_mut() {
            obj.insert("at".into(), json!(rfc3339(Utc::now())));
            obj.insert("alert".into(), json!(true));
        }
        self.observer.alert(event).await;
    }

    /// Verifies a client-signed bundle about `subject` against the trusted keys and root.
    fn verify_bundle(
        &self,
        bytes: &[u8],
        subject: &Sha256Digest,
    ) -> Result<Evidence, ReleaseError> {
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
            ReleaseError::forbidden(format!(
                "the signed statement does not verify ({}): {} (sign with a key listed for your principal in the release config)",
                r.code, r.reason
            ))
        })
    }

    fn principal_of(&self, evidence: &Evidence) -> Option<String> {
        let principals = self.rules().principals.clone();
        evidence
            .signer
            .key_id
            .as_ref()
            .and_then(|k| principals.get(k))
            .or_else(|| {
                evidence
                    .signer
                    .identity
                    .as_ref()
                    .and_then(|i| principals.get(i))
            })
            .cloned()
    }

    /// The gate every environment shares its trust set with (keys from `--gate-key` and the
    /// principals, the trusted root): what approvals, revocations and rotations verify
    /// against. Every environment's gate holds the same trust set; only policies differ.
    fn trust_gate(&self) -> Result<Arc<Gate>, ReleaseError> {
        self.rules()
            .gates
            .values()
            .next()
            .cloned()
            .ok_or_else(|| ReleaseError::internal("no environment configured"))
    }

    /// The key a verified evidence was signed with (to log it under that key).
    fn trusted_key(&self, evidence: &Evidence) -> Option<PublicKey> {
        let id = evidence.signer.key_id.as_deref()?;
        self.trust_gate()
            .ok()?
            .trust
            .keys
            .iter()
            .find(|k| k.key_id().to_string() == id)
            .cloned()
    }

    /// Logs a client-signed DSSE bundle that has no log entry yet (under the key that
    /// verified it); returns the bundle to store and its log index.
    async fn ensure_logged(
        &self,
        bytes: &[u8],
        evidence: &Evidence,
    ) -> Result<(String, Option<u64>), ReleaseError> {
        let bundle = Bundle::from_json(bytes)
            .map_err(|e| ReleaseError::bad(format!("not a bundle: {e}")))?;
        if let Some(first) = evidence.tlog.first() {
            let text = String::from_utf8(bytes.to_vec())
                .map_err(|_| ReleaseError::bad("the bundle is not UTF-8"))?;
            return Ok((text, u64::try_from(first.log_index).ok()));
        }
        let BundleContent::Dsse(envelope) = bundle.content else {
            return Err(ReleaseError::bad(
                "expected a DSSE bundle (made by custody attest/approve/revoke)",
            ));
        };
        let key = self.trusted_key(evidence).ok_or_else(|| {
            ReleaseError::bad(
                "a certificate-signed statement must already carry its log entry (sign with --log)",
            )
        })?;
        let signed = custody_core::sign::signed_envelope(envelope, key.clone())
            .map_err(|e| ReleaseError::bad(format!("the statement cannot be logged: {e}")))?;
        let (bundle, index) = self.log_signed(signed).await?;
        Ok((bundle, Some(index)))
    }

    /// Every stored bundle for `digest` that verifies (revocations not applied).
    async fn verified_evidence(&self, digest: Sha256Digest) -> Result<Vec<Evidence>, ReleaseError> {
        let gate = self.trust_gate()?;
        let stored = self.evidence_db(move |s| s.for_artifact(&digest)).await?;
        let candidates: Vec<Candidate> = stored
            .into_iter()
            .map(|b| Candidate {
                source: format!("evidence:{}", b.bundle_digest),
                bytes: b.bytes,
            })
            .collect();
        tokio::task::spawn_blocking(move || {
            custody_policy::input::verify_evidence(
                &gate.trust,
                Artifact {
                    digest,
                    bytes: None,
                },
                &candidates,
            )
            .0
        })
        .await
        .map_err(ReleaseError::internal)
    }
}

/// The statement of a DSSE bundle with the given predicate type, and its single subject's
/// SHA-256.
fn dsse_statement(
    bytes: &[u8],
    predicate_type: &str,
) -> Result<(Statement, Sha256Digest), ReleaseError> {
    let bad = ReleaseError::BadRequest;
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
