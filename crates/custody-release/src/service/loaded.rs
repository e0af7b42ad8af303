//! The part of the release service a configuration reload replaces: the release config, one
//! gate per environment, and who signs with which key. A request takes one snapshot
//! ([`Rules`]) and sees either the old or the new configuration, never a mix.
//!
//! Key rotations accepted by the service (the `key-rotate` events of the release store) add
//! their successor keys on top of the operator's files: the new key is trusted wherever the
//! old one was, and belongs to the old key's principal. So a rotation needs no file edit and
//! no restart, and a reload of the files keeps the successors.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use custody_core::keys::PublicKey;
use custody_policy::{Gate, TrustSet};

use crate::config::ReleaseConfig;

/// A successor key a rotation introduced: trusted beside `old_key_id` and owned by its
/// principal.
#[derive(Debug, Clone)]
pub struct Successor {
    pub old_key_id: String,
    pub key: PublicKey,
}

/// One consistent snapshot of the release rules.
#[derive(Debug)]
pub(crate) struct Rules {
    pub config: Arc<ReleaseConfig>,
    pub gates: BTreeMap<String, Arc<Gate>>,
    /// Key id or certificate identity → principal name.
    pub principals: Arc<BTreeMap<String, String>>,
}

/// The operator's configuration as loaded from the files (before successors).
struct Base {
    config: ReleaseConfig,
    gates: BTreeMap<String, Arc<Gate>>,
}

/// The current rules, swapped atomically on reload or rotation.
pub(crate) struct RuleCell {
    current: RwLock<Arc<Rules>>,
    /// Serializes writers; holds what the current rules were built from.
    inputs: Mutex<(Base, Vec<Successor>)>,
}

impl RuleCell {
    pub(crate) fn new(config: ReleaseConfig, gates: BTreeMap<String, Arc<Gate>>) -> Self {
        let base = Base { config, gates };
        let rules = build(&base, &[]);
        Self {
            current: RwLock::new(Arc::new(rules)),
            inputs: Mutex::new((base, Vec::new())),
        }
    }

    /// The rules in force now.
    pub(crate) fn snapshot(&self) -> Arc<Rules> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the operator's configuration (a reload); successors stay.
    pub(crate) fn replace(&self, config: ReleaseConfig, gates: BTreeMap<String, Arc<Gate>>) {
        let mut inputs = self.inputs.lock().unwrap_or_else(PoisonError::into_inner);
        inputs.0 = Base { config, gates };
        self.publish(build(&inputs.0, &inputs.1));
    }

    /// Sets the successor keys (from the store's rotations); `true` if they changed.
    pub(crate) fn set_successors(&self, successors: Vec<Successor>) -> bool {
        let mut inputs = self.inputs.lock().unwrap_or_else(PoisonError::into_inner);
        let ids = |s: &[Successor]| {
            s.iter()
                .map(|x| (x.old_key_id.clone(), x.key.key_id().to_string()))
                .collect::<Vec<_>>()
        };
        if ids(&inputs.1) == ids(&successors) {
            return false;
        }
        inputs.1 = successors;
        self.publish(build(&inputs.0, &inputs.1));
        true
    }

    fn publish(&self, rules: Rules) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(rules);
    }
}

/// The rules from the operator's configuration plus the successors: each successor joins
/// every environment's trust set (they share one) and the old key's principal (chains of
/// rotations follow, in order).
fn build(base: &Base, successors: &[Successor]) -> Rules {
    let mut config = base.config.clone();
    let mut added: Vec<PublicKey> = Vec::new();
    for s in successors {
        let new_id = s.key.key_id().to_string();
        for p in &mut config.principals {
            if p.key_ids.contains(&s.old_key_id) && !p.key_ids.contains(&new_id) {
                p.key_ids.insert(new_id.clone());
                p.keys.push(s.key.clone());
            }
        }
        if !added.iter().any(|k| k.key_id() == s.key.key_id()) {
            added.push(s.key.clone());
        }
    }
    let mut by_policy: BTreeMap<usize, Arc<Gate>> = BTreeMap::new();
    let gates = base
        .gates
        .iter()
        .map(|(env, gate)| {
            if added.is_empty() {
                return (env.clone(), gate.clone());
            }
            // Environments that shared one gate keep sharing one.
            let id = Arc::as_ptr(gate) as usize;
            let gate = by_policy
                .entry(id)
                .or_insert_with(|| Arc::new(with_keys(gate, &added)))
                .clone();
            (env.clone(), gate)
        })
        .collect();
    let mut principals = BTreeMap::new();
    for p in &config.principals {
        for k in &p.key_ids {
            principals.insert(k.clone(), p.name.clone());
        }
        for i in &p.identities {
            principals.insert(i.clone(), p.name.clone());
        }
    }
    Rules {
        config: Arc::new(config),
        gates,
        principals: Arc::new(principals),
    }
}

/// `gate` with `keys` added to its trust set (the ones it does not hold yet).
fn with_keys(gate: &Gate, keys: &[PublicKey]) -> Gate {
    let mut all = gate.trust.keys.clone();
    for k in keys {
        if !all.iter().any(|x| x.key_id() == k.key_id()) {
            all.push(k.clone());
        }
    }
    Gate {
        policy: gate.policy.clone(),
        trust: TrustSet {
            keys: all,
            root: gate.trust.root.clone(),
            root_digest: gate.trust.root_digest,
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use custody_core::keys::{KeyAlgorithm, SigningKey};

    fn config(alice_key: &PublicKey) -> ReleaseConfig {
        let text = format!(
            "[[environment]]\nname = \"dev\"\npolicy = \"p\"\n\n[[principal]]\nname = \"alice\"\ntoken_sha256 = \"{}\"\nroles = [\"admin\"]\n",
            "ab".repeat(32)
        );
        let mut config = ReleaseConfig::parse(&text, std::path::Path::new("."), &|_| None).unwrap();
        config.principals[0]
            .key_ids
            .insert(alice_key.key_id().to_string());
        config.principals[0].keys.push(alice_key.clone());
        config
    }

    #[test]
    fn a_successor_joins_its_old_keys_principal_and_a_reload_keeps_it() {
        let old = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256)
            .unwrap()
            .public_key();
        let new = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256)
            .unwrap()
            .public_key();
        let cell = RuleCell::new(config(&old), BTreeMap::new());
        let new_id = new.key_id().to_string();
        assert!(!cell.snapshot().principals.contains_key(&new_id));
        let successor = Successor {
            old_key_id: old.key_id().to_string(),
            key: new.clone(),
        };
        assert!(cell.set_successors(vec![successor.clone()]));
        assert!(!cell.set_successors(vec![successor]));
        let rules = cell.snapshot();
        assert_eq!(
            rules.principals.get(&new_id).map(String::as_str),
            Some("alice")
        );
        assert!(rules.config.principals[0].key_ids.contains(&new_id));
        // A reload of the files (the key is not listed there) keeps the successor.
        cell.replace(config(&old), BTreeMap::new());
        assert_eq!(
            cell.snapshot().principals.get(&new_id).map(String::as_str),
            Some("alice")
        );
        // The snapshot taken before the reload is unchanged (requests see old or new).
        assert!(Arc::ptr_eq(&rules.config, &rules.config));
        assert_eq!(rules.config.principals.len(), 1);
    }

    #[test]
    fn a_successor_of_an_unknown_key_belongs_to_nobody() {
        let old = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256)
            .unwrap()
            .public_key();
        let stranger = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256)
            .unwrap()
            .public_key();
        let new = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256)
            .unwrap()
            .public_key();
        let cell = RuleCell::new(config(&old), BTreeMap::new());
        cell.set_successors(vec![Successor {
            old_key_id: stranger.key_id().to_string(),
            key: new.clone(),
        }]);
        assert!(
            !cell
                .snapshot()
                .principals
                .contains_key(&new.key_id().to_string())
        );
    }
}
