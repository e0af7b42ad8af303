//! Following a log: check that every checkpoint extends the last one seen, recomputing the tree
//! from the served entries, and report entries signed by watched keys.
//!
//! The state (per origin) is the last verified tree: size, root and its compact-range frontier,
//! so a new checkpoint is checked by appending the new entries' leaf hashes to the frontier and
//! comparing the root. A checkpoint that does not extend the state (a smaller tree, the same size
//! with another root, or new entries that do not hash to the signed root) is a fork alert, and
//! the state is kept as it was.

use std::collections::HashSet;

use custody_core::encoding::{base64_decode_strict, base64_encode};
use custody_core::merkle::{CompactTree, Hash, empty_root, leaf_hash};
use custody_core::note::{NoteVerifier, SignedCheckpoint};
use custody_core::rekor::{LoggedVerifier, RekorBody};
use custody_core::x509::SubjectAlternativeName;
use serde::{Deserialize, Serialize};

use crate::tiles::{ClientError, LogClient};

/// The last verified tree of one log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MonitorState {
    pub origin: String,
    pub size: u64,
    /// Base64 root hash.
    pub root_hash: String,
    /// Base64 frontier hashes of the compact range `[0, size)`.
    pub frontier: Vec<String>,
}

/// Which signers to report: keys in `watch` but not in `allow` (SHA-256 of DER SPKI), and
/// certificate identities (the certificate's subject alternative name, compared exactly) in
/// `watch_identities` but not in `allow_identities`.
#[derive(Clone, Debug, Default)]
pub struct Watch {
    pub watch: HashSet<[u8; 32]>,
    pub allow: HashSet<[u8; 32]>,
    pub watch_identities: HashSet<String>,
    pub allow_identities: HashSet<String>,
}

impl Watch {
    fn key_alerts(&self, key_id: &[u8; 32]) -> bool {
        self.watch.contains(key_id) && !self.allow.contains(key_id)
    }

    fn identity_alerts(&self, identity: &str) -> bool {
        self.watch_identities.contains(identity) && !self.allow_identities.contains(identity)
    }
}

/// An entry by a watched signer.
enum Watched {
    Key(u64, [u8; 32]),
    Identity(u64, String),
}

/// One alert, printed as a JSON line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Alert {
    /// `fork`, `shrunk`, `invalid-checkpoint`, `watched-key`, or `watched-identity`.
    pub alert: &'static str,
    pub origin: String,
    pub url: String,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// SHA-256 of the signing key's DER SPKI, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The certificate's subject alternative name (`watched-identity`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
}

/// The monitor could not run (the log was not judged).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MonitorError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the state is for log {state:?}, the checkpoint for {log:?}")]
    WrongLog { state: String, log: String },
    #[error("the monitor state is corrupt: {0}")]
    State(&'static str),
}

/// One look at the log: returns the new state (`None`: keep the old one) and the alerts.
pub fn check(
    client: &LogClient,
    keys: &[NoteVerifier],
    state: Option<&MonitorState>,
    watch: &Watch,
) -> Result<(Option<MonitorState>, Vec<Alert>), MonitorError> {
    let text = client.checkpoint()?;
    let alert = Alerter {
        url: client.base_url(),
        old_size: state.map(|s| s.size),
    };
    let signed = match SignedCheckpoint::verify(&text, keys) {
        Ok(signed) => signed,
        Err(e) => {
            let origin = state.map_or("", |s| s.origin.as_str());
            let a = alert.make("invalid-checkpoint", origin, e.to_string(), None);
            return Ok((None, vec![a]));
        }
    };
    let cp = signed.checkpoint();
    let (old_size, old_root, mut tree) = match state {
        Some(s) if s.origin != cp.origin() => {
            return Err(MonitorError::WrongLog {
                state: s.origin.clone(),
                log: cp.origin().to_owned(),
            });
        }
        Some(s) => (s.size, decode_hash(&s.root_hash)?, frontier_tree(s)?),
        None => (0, empty_root(), CompactTree::new()),
    };
    let new = Some(cp.size());
    if cp.size() < old_size {
        let detail = format!("the log now signs size {} after {old_size}", cp.size());
        return Ok((None, vec![alert.make("shrunk", cp.origin(), detail, new)]));
    }
    if cp.size() == old_size {
        if *cp.root_hash() == old_root {
            return Ok((None, Vec::new()));
        }
        let detail = format!("two roots signed for size {old_size}");
        return Ok((None, vec![alert.make("fork", cp.origin(), detail, new)]));
    }
    let keyed = append_entries(client, &mut tree, old_size, cp.size(), watch)?;
    if tree.root() != *cp.root_hash() {
        let detail = format!(
            "size {} does not extend the verified tree of size {old_size}: the entries hash to another root",
            cp.size()
        );
        return Ok((None, vec![alert.make("fork", cp.origin(), detail, new)]));
    }
    let alerts = keyed
        .into_iter()
        .map(|watched| match watched {
            Watched::Key(index, key_id) => {
                let detail = "an entry signed by a watched key".to_owned();
                let mut a = alert.make("watched-key", cp.origin(), detail, new);
                a.index = Some(index);
                a.key_id = Some(hex::encode(key_id));
                a
            }
            Watched::Identity(index, identity) => {
                let detail = "an entry signed with a certificate for a watched identity".to_owned();
                let mut a = alert.make("watched-identity", cp.origin(), detail, new);
                a.index = Some(index);
                a.identity = Some(identity);
                a
            }
        })
        .collect();
    let next = MonitorState {
        origin: cp.origin().to_owned(),
        size: cp.size(),
        root_hash: base64_encode(cp.root_hash()),
        frontier: tree.frontier().iter().map(|h| base64_encode(h)).collect(),
    };
    Ok((Some(next), alerts))
}

struct Alerter<'a> {
    url: &'a str,
    old_size: Option<u64>,
}

impl Alerter<'_> {
    fn make(&self, kind: &'static str, origin: &str, detail: String, new: Option<u64>) -> Alert {
        Alert {
            alert: kind,
            origin: origin.to_owned(),
            url: self.url.to_owned(),
            detail,
            old_size: self.old_size,
            new_size: new,
            index: None,
            key_id: None,
            identity: None,
        }
    }
}

/// Appends the leaf hashes of entries `[from, to)` to `tree`; returns the entries signed by a
/// watched, not allowed, key or certificate identity.
fn append_entries(
    client: &LogClient,
    tree: &mut CompactTree,
    from: u64,
    to: u64,
    watch: &Watch,
) -> Result<Vec<Watched>, MonitorError> {
    let mut keyed = Vec::new();
    let mut overflow = false;
    let identities = !watch.watch_identities.is_empty();
    client.for_each_entry(from, to, to, |index, entry| {
        overflow |= tree.append(leaf_hash(entry)).is_err();
        let verifiers = logged_verifiers(entry);
        for key_id in verifiers
            .iter()
            .filter_map(|v| Some(v.public_key().ok()?.key_id().0))
        {
            if watch.key_alerts(&key_id) {
                keyed.push(Watched::Key(index, key_id));
            }
        }
        for identity in verifiers
            .iter()
            .filter(|_| identities)
            .filter_map(certificate_identity)
        {
            if watch.identity_alerts(&identity) {
                keyed.push(Watched::Identity(index, identity));
            }
        }
    })?;
    if overflow {
        return Err(MonitorError::State("the tree is too large"));
    }
    Ok(keyed)
}

fn decode_hash(text: &str) -> Result<Hash, MonitorError> {
    base64_decode_strict(text)
        .ok()
        .and_then(|h| Hash::try_from(h.as_slice()).ok())
        .ok_or(MonitorError::State("a hash is not base64 of 32 bytes"))
}

fn frontier_tree(state: &MonitorState) -> Result<CompactTree, MonitorError> {
    let frontier = state
        .frontier
        .iter()
        .map(|h| decode_hash(h))
        .collect::<Result<Vec<_>, _>>()?;
    let tree = CompactTree::from_frontier(state.size, frontier)
        .map_err(|_| MonitorError::State("the frontier does not fit the size"))?;
    if tree.root() != decode_hash(&state.root_hash)? {
        return Err(MonitorError::State(
            "the frontier does not hash to the root",
        ));
    }
    Ok(tree)
}

/// SHA-256 of the DER SPKI of every key a Rekor body names as a signer (for a certificate, its
/// subject key). A body custody cannot parse names no key.
pub fn signing_keys(body: &[u8]) -> Vec<[u8; 32]> {
    logged_verifiers(body)
        .iter()
        .filter_map(|v| v.public_key().ok())
        .map(|key| key.key_id().0)
        .collect()
}

/// The subject alternative names of the certificates a Rekor body names as signers. A
/// certificate custody cannot read (no SAN, several, or malformed) names no identity. No trust
/// is implied: this is what the entry claims, for alerting.
pub fn signing_identities(body: &[u8]) -> Vec<String> {
    logged_verifiers(body)
        .iter()
        .filter_map(certificate_identity)
        .collect()
}

fn certificate_identity(verifier: &LoggedVerifier) -> Option<String> {
    match verifier {
        LoggedVerifier::Certificate(der) => SubjectAlternativeName::from_certificate_der(der)
            .ok()
            .map(|san| san.as_str().to_owned()),
        LoggedVerifier::PublicKey(_) => None,
    }
}

fn logged_verifiers(body: &[u8]) -> Vec<LoggedVerifier> {
    let signatures = match RekorBody::parse(body) {
        Ok(RekorBody::HashedRekordV002(h) | RekorBody::HashedRekordV001(h)) => vec![h.signature],
        Ok(RekorBody::DsseV002(d) | RekorBody::DsseV001(d)) => d.signatures,
        Ok(RekorBody::IntotoV002(i)) => i.signatures,
        Ok(_) | Err(_) => Vec::new(),
    };
    signatures.into_iter().map(|s| s.verifier).collect()
}
