//! A release world for the service tests, without HTTP: keys for every principal, a policy
//! (the built-in library: signed SLSA provenance from the CI key, approvals where the
//! environment asks for them), dev → staging → prod (prod needs two approvals from the group
//! `release-approvers`), an evidence store on SQLite, and an in-memory transparency log (a
//! test double of the transport only: every release rule runs for real).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use custody_core::bundle::Bundle;
use custody_core::digest::Sha256Digest;
use custody_core::dsse;
use custody_core::encoding::base64_encode;
use custody_core::intoto::{ResourceDescriptor, Statement};
use custody_core::keys::{KeyAlgorithm, PublicKey, SigningKey};
use custody_core::sign::Signed;
use custody_evidence::EvidenceStore;
use custody_evidence::sqlite::SqliteEvidenceStore;
use custody_policy::{Gate, Policy, PolicyFile, TrustSet};
use custody_release::cas::Cas;
use custody_release::config::ReleaseConfig;
use custody_release::model::Role;
use custody_release::service::{
    BoxFuture, Caller, Checkpoint, LogError, Logged, ReleaseLog, ReleaseObserver, ReleasePorts,
    ReleaseService, ReleaseSetup,
};
use custody_release::statement;
use custody_release::store::ReleaseStore;
use serde_json::{Value, json};

/// Every principal and its roles; approvers are in `release-approvers` unless an outsider.
pub const PEOPLE: [(&str, &[&str]); 9] = [
    ("ci", &["builder", "approver"]),
    ("ci2", &["builder"]),
    ("rm", &["release-manager"]),
    ("alice", &["approver"]),
    ("carol", &["approver"]),
    ("dave", &["approver"]),
    ("sec", &["admin"]),
    ("aud", &["auditor"]),
    ("agent-dev", &["deployer"]),
];

/// `dave` approves but is in no group.
pub const OUTSIDER: &str = "dave";

/// An in-memory log: each append gets the next index; the bundle is the envelope (no log
/// entry: nothing here verifies inclusion, which custody-log's own tests do).
#[derive(Default)]
pub struct MemLog {
    next: AtomicU64,
    /// `Some(message)`: every append fails as unavailable.
    pub down: Mutex<Option<String>>,
}

impl ReleaseLog for MemLog {
    fn append(&self, signed: Signed) -> BoxFuture<'_, Result<Logged, LogError>> {
        Box::pin(async move {
            if let Some(m) = self.down.lock().unwrap().clone() {
                return Err(LogError::Unavailable(m));
            }
            let index = self.next.fetch_add(1, Ordering::SeqCst);
            Ok(Logged {
                bundle: signed.into_bundle().to_json(),
                index,
            })
        })
    }

    fn checkpoint(&self) -> BoxFuture<'_, Result<Checkpoint, LogError>> {
        Box::pin(async move {
            Ok(Checkpoint {
                size: self.next.load(Ordering::SeqCst),
                root: "AAAA".into(),
            })
        })
    }
}

/// Counts what the service reports.
#[derive(Default)]
pub struct Recorder {
    pub events: Mutex<Vec<String>>,
    pub alerts: Mutex<Vec<Value>>,
}

impl ReleaseObserver for Recorder {
    fn signed(&self, kind: &str) {
        self.events.lock().unwrap().push(format!("signed {kind}"));
    }
    fn promoted(&self, environment: &str) {
        self.events
            .lock()
            .unwrap()
            .push(format!("promoted {environment}"));
    }
    fn promotion_refused(&self, environment: &str) {
        self.events
            .lock()
            .unwrap()
            .push(format!("refused {environment}"));
    }
    fn rolled_back(&self, environment: &str) {
        self.events
            .lock()
            .unwrap()
            .push(format!("rolled back {environment}"));
    }
    fn incident_opened(&self) {
        self.events.lock().unwrap().push("incident opened".into());
    }
    fn incident_recovered(&self) {
        self.events
            .lock()
            .unwrap()
            .push("incident recovered".into());
    }
    fn alert(&self, event: Value) -> BoxFuture<'_, ()> {
        self.alerts.lock().unwrap().push(event);
        Box::pin(async {})
    }
}

pub struct World {
    pub dir: tempfile::TempDir,
    pub keys: BTreeMap<&'static str, SigningKey>,
    /// ci's successor key (trusted, listed under ci, for rotation).
    pub ci_next: SigningKey,
    pub service: Arc<ReleaseService>,
    /// A second service on the same stores (another replica), with its own lock.
    pub replica: Arc<ReleaseService>,
    pub log: Arc<MemLog>,
    pub observer: Arc<Recorder>,
    pub evidence: Arc<dyn EvidenceStore>,
    pub invalidations: Arc<AtomicU64>,
}

fn key() -> SigningKey {
    SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap()
}

pub fn key_id(k: &SigningKey) -> String {
    k.public_key().key_id().to_string()
}

pub fn token_sha256(name: &str) -> String {
    Sha256Digest::of(format!("token-of-{name}").as_bytes()).hex()
}

const GATE_POLICY: &str = "package custody.gate\n\ndeny contains v if some v in data.custody.lib.violations\n\nwarn contains v if some v in data.custody.lib.warnings\n";

impl World {
    /// A world on `store` (initialized here).
    pub fn new(store: Arc<dyn ReleaseStore>) -> World {
        store.initialize().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("keys")).unwrap();
        let mut keys = BTreeMap::new();
        for (name, _) in PEOPLE {
            keys.insert(name, key());
        }
        let ci_next = key();
        let mut config = String::from(
            r#"
[[environment]]
name = "dev"
policy = "policy"

[[environment]]
name = "staging"
from = "dev"
policy = "policy"

[[environment]]
name = "prod"
from = "staging"
policy = "policy"
target = "dir:srv/prod"
approvals = { required = 2, group = "release-approvers" }
"#,
        );
        for (name, roles) in PEOPLE {
            let path = dir.path().join(format!("keys/{name}.pub"));
            std::fs::write(&path, keys[name].public_key().to_pem()).unwrap();
            let mut key_files = vec![format!("keys/{name}.pub")];
            if name == "ci" {
                std::fs::write(
                    dir.path().join("keys/ci-next.pub"),
                    ci_next.public_key().to_pem(),
                )
                .unwrap();
                key_files.push("keys/ci-next.pub".into());
            }
            let groups = if roles.contains(&"approver") && name != OUTSIDER {
                r#"["release-approvers"]"#
            } else {
                "[]"
            };
            let environments = if roles.contains(&"deployer") {
                r#"["dev"]"#
            } else {
                "[]"
            };
            config.push_str(&format!(
                "\n[[principal]]\nname = {name:?}\ntoken_sha256 = {:?}\nroles = {}\ngroups = {groups}\nkeys = {}\nenvironments = {environments}\n",
                token_sha256(name),
                serde_json::to_string(roles).unwrap(),
                serde_json::to_string(&key_files).unwrap(),
            ));
        }
        let config = ReleaseConfig::parse(&config, dir.path(), &|_| None).unwrap();
        let data = json!({"custody": {"config": {
            "signers": {"keys": [key_id(&keys["ci"]), key_id(&keys["ci2"])]},
            "provenance": {"builders": ["https://custody.dev/builder/*"]}}}});
        let policy = Policy::from_files(
            vec![PolicyFile {
                path: "gate.rego".into(),
                text: GATE_POLICY.into(),
            }],
            data,
        )
        .unwrap();
        let mut trusted: Vec<PublicKey> = keys.values().map(SigningKey::public_key).collect();
        trusted.push(ci_next.public_key());
        let gate = Arc::new(Gate {
            policy,
            trust: TrustSet {
                keys: trusted,
                root: None,
                root_digest: None,
            },
        });
        let gates: BTreeMap<String, Arc<Gate>> = config
            .environments
            .iter()
            .map(|e| (e.name.clone(), gate.clone()))
            .collect();
        let evidence: Arc<dyn EvidenceStore> =
            Arc::new(SqliteEvidenceStore::open(&dir.path().join("evidence.db")).unwrap());
        let log = Arc::new(MemLog::default());
        let observer = Arc::new(Recorder::default());
        let invalidations = Arc::new(AtomicU64::new(0));
        let counted = invalidations.clone();
        let cas = Cas::open(&dir.path().join("artifacts")).unwrap();
        let replica = ReleaseService::new(
            ReleaseSetup {
                config: config.clone(),
                store: store.clone(),
                cas: cas.clone(),
                gates: gates.clone(),
                key: key(),
                verifier_id: "https://custody.dev/test".into(),
            },
            ReleasePorts {
                log: log.clone(),
                evidence: evidence.clone(),
                observer: Arc::new(custody_release::service::NoopObserver),
                on_change: Box::new(|_| {}),
            },
        );
        let service = ReleaseService::new(
            ReleaseSetup {
                config,
                store,
                cas,
                gates,
                key: key(),
                verifier_id: "https://custody.dev/test".into(),
            },
            ReleasePorts {
                log: log.clone(),
                evidence: evidence.clone(),
                observer: observer.clone(),
                on_change: Box::new(move |_| {
                    counted.fetch_add(1, Ordering::SeqCst);
                }),
            },
        );
        World {
            dir,
            keys,
            ci_next,
            service: Arc::new(service),
            replica: Arc::new(replica),
            log,
            observer,
            evidence,
            invalidations,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The caller `name` is (as the server's auth module would say).
    pub fn caller(&self, name: &str) -> Caller {
        let p = self
            .service
            .config()
            .principals
            .iter()
            .find(|p| p.name == name)
            .unwrap();
        Caller {
            name: p.name.clone(),
            roles: p.roles.clone(),
            environments: p.environments.clone(),
        }
    }

    /// A caller with only these roles.
    pub fn with_roles(name: &str, roles: &[Role]) -> Caller {
        Caller {
            name: name.into(),
            roles: roles.iter().copied().collect(),
            environments: Default::default(),
        }
    }

    /// Stores SLSA provenance for `digest` signed by `builder`'s key (as `custody push` sends
    /// it with the artifact).
    pub fn provenance(&self, builder: &str, digest: &Sha256Digest) {
        let statement = Statement::new_v1(
            vec![ResourceDescriptor::from_sha256("app.bin", digest)],
            "https://slsa.dev/provenance/v1",
            json!({"buildDefinition": {"buildType": "https://custody.dev/build/v1",
                     "externalParameters": {"hermetic": true, "source": {"repository": "https://github.com/acme/app", "ref": "refs/heads/main", "dirty": false}}},
                   "runDetails": {"builder": {"id": "https://custody.dev/builder/ci"}, "metadata": {"finishedOn": "2026-11-20T00:00:00Z"}}}),
        );
        let bytes = signed(&self.keys[builder], &statement);
        self.evidence
            .put(&bytes, &[*digest], &statement::rfc3339(Utc::now()))
            .unwrap();
    }

    /// An approval of `digest` for `environment` signed by `who`'s key.
    pub fn approval(&self, who: &str, digest: &Sha256Digest, environment: &str) -> Vec<u8> {
        signed(
            &self.keys[who],
            &statement::approval(digest, "app.bin", environment, who, Utc::now(), None),
        )
    }

    /// A revocation of `target` signed by `who`'s key.
    pub fn revocation(&self, who: &str, target: &str) -> Vec<u8> {
        signed(
            &self.keys[who],
            &statement::revocation(target, "compromised", Utc::now()),
        )
    }

    /// ci's key rotation to `ci_next`, retiring at `retire_at`, signed by `signer`.
    pub fn rotation(&self, signer: &SigningKey, retire_at: DateTime<Utc>) -> Vec<u8> {
        signed(
            signer,
            &statement::key_rotation(
                &key_id(&self.keys["ci"]),
                &key_id(&self.ci_next),
                &self.ci_next.public_key().to_pem(),
                retire_at,
                Utc::now(),
            ),
        )
    }
}

/// A DSSE bundle of `statement` signed by `key` (no log entry: the service logs it).
pub fn signed(key: &SigningKey, statement: &Statement) -> Vec<u8> {
    let envelope = dsse::sign_in_toto(key, statement.to_json_bytes()).unwrap();
    let hint = base64_encode(&key.public_key().key_id().0);
    Bundle::new_dsse_v03(hint, envelope).to_json().into_bytes()
}
