//! The change feed: what every replica's caches must forget.
//!
//! A replica that stores evidence, is told to invalidate its cache, or changes release state
//! applies the [`Change`] to its own caches and publishes it; every *other* replica on the
//! same database receives it and drops the cached decisions (and verification results) it
//! concerns. (A store does not hear its own changes: an echo arriving after the publisher's
//! next decision would throw that fresh decision away.)
//!
//! * PostgreSQL: `NOTIFY custody_evidence, '<origin> <change>'` on publish; each store keeps one
//!   listening connection on a thread of its own that reconnects when it is lost and then
//!   delivers [`Change::All`] (what was published during the gap is unknown, so everything
//!   goes). Delivery takes milliseconds.
//! * SQLite: one node only (the file is not shared between hosts). Stores opened on the same
//!   file in one process share an in-process broadcast; other processes on the same file are
//!   not told (run one `custody serve` per SQLite file).

use std::collections::HashMap;
use std::hash::{BuildHasher as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use custody_core::digest::Sha256Digest;

/// The PostgreSQL channel changes travel on.
pub const CHANNEL: &str = "custody_evidence";

/// The longest environment name a [`Change::Release`] carries; a longer one is published as
/// [`Change::All`] (NOTIFY payloads are limited to 8000 bytes).
const MAX_NAME: usize = 1024;

/// Something that makes cached decisions stale.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Change {
    /// New evidence was stored for this artifact digest.
    Evidence(Sha256Digest),
    /// Decisions about this artifact digest are no longer valid.
    Decisions(Sha256Digest),
    /// No cached decision or verification result is valid any more.
    All,
    /// The release state (current release, quarantine, revocations) of this environment
    /// changed.
    Release(String),
}

impl Change {
    /// The change as one line of text (the NOTIFY payload).
    pub fn encode(&self) -> String {
        match self {
            Change::Evidence(d) => format!("evidence {d}"),
            Change::Decisions(d) => format!("decisions {d}"),
            Change::All => "all".to_owned(),
            Change::Release(env) if env.len() <= MAX_NAME && !env.contains(['\n', '\r']) => {
                format!("release {env}")
            }
            Change::Release(_) => "all".to_owned(),
        }
    }

    /// Reads [`encode`](Self::encode)'s text. Anything unreadable is [`Change::All`]: a
    /// replica that cannot tell what changed forgets everything (fail closed).
    pub fn decode(text: &str) -> Change {
        let digest = |hex: &str| {
            hex.strip_prefix("sha256:")
                .and_then(|h| Sha256Digest::from_hex(h).ok())
        };
        match text.split_once(' ') {
            Some(("evidence", d)) => digest(d).map_or(Change::All, Change::Evidence),
            Some(("decisions", d)) => digest(d).map_or(Change::All, Change::Decisions),
            Some(("release", env)) if !env.is_empty() => Change::Release(env.to_owned()),
            _ => Change::All,
        }
    }
}

/// A store instance's identity on the feed (random, never 0): what it publishes is not
/// delivered back to it.
pub(crate) fn new_origin() -> u64 {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.finish().max(1)
}

/// Origin 0: a change from no store of this process (delivered to every subscriber).
pub(crate) const NOBODY: u64 = 0;

/// `<origin hex> <change>`: the NOTIFY payload.
pub(crate) fn encode_from(origin: u64, change: &Change) -> String {
    format!("{origin:016x} {}", change.encode())
}

/// Reads [`encode_from`]'s payload: the origin (`None` if unreadable) and the change.
pub(crate) fn decode_from(payload: &str) -> (Option<u64>, Change) {
    match payload.split_once(' ') {
        Some((origin, change)) => match u64::from_str_radix(origin, 16) {
            Ok(origin) => (Some(origin), Change::decode(change)),
            Err(_) => (None, Change::All),
        },
        None => (None, Change::All),
    }
}

/// The local subscribers of one store (or of one SQLite file in this process), each with the
/// origin of the store it subscribed through.
#[derive(Debug, Default)]
pub struct Subscribers {
    senders: Mutex<Vec<(u64, Sender<Change>)>>,
}

impl Subscribers {
    /// A new subscription through the store `origin`.
    pub(crate) fn subscribe(&self, origin: u64) -> Receiver<Change> {
        let (tx, rx) = channel();
        self.senders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((origin, tx));
        rx
    }

    /// Delivers `change`, published by the store `from`, to every live subscriber of the
    /// other stores (and forgets those that hung up).
    pub(crate) fn send(&self, from: u64, change: &Change) {
        self.senders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(origin, tx)| *origin == from || tx.send(change.clone()).is_ok());
    }
}

/// The in-process feed of a SQLite file: every store opened on the same file in this process
/// shares it.
pub(crate) fn local(path: &Path) -> Arc<Subscribers> {
    static FEEDS: OnceLock<Mutex<HashMap<PathBuf, Arc<Subscribers>>>> = OnceLock::new();
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    FEEDS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(key)
        .or_default()
        .clone()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_and_garbage_means_everything() {
        let d = Sha256Digest::of(b"x");
        for change in [
            Change::Evidence(d),
            Change::Decisions(d),
            Change::All,
            Change::Release("prod eu".into()),
        ] {
            assert_eq!(Change::decode(&change.encode()), change);
        }
        assert_eq!(Change::decode("evidence sha256:zz"), Change::All);
        assert_eq!(Change::decode(""), Change::All);
        assert_eq!(Change::decode("release "), Change::All);
        assert_eq!(Change::decode("something else"), Change::All);
        assert_eq!(Change::Release("a\nb".into()).encode(), "all");
        assert_eq!(Change::Release("x".repeat(2000)).encode(), "all");
    }

    #[test]
    fn subscribers_get_others_changes_and_hung_up_ones_are_dropped() {
        let subs = Subscribers::default();
        let (one, two) = (new_origin(), new_origin());
        assert_ne!(one, two);
        let a = subs.subscribe(one);
        let b = subs.subscribe(two);
        let c = subs.subscribe(two);
        drop(c);
        subs.send(one, &Change::All);
        assert!(a.try_recv().is_err(), "no echo to the publisher");
        assert_eq!(b.try_recv().unwrap(), Change::All);
        assert_eq!(subs.senders.lock().unwrap().len(), 2);
        subs.send(NOBODY, &Change::Release("e".into()));
        assert_eq!(a.try_recv().unwrap(), Change::Release("e".into()));
        assert_eq!(b.try_recv().unwrap(), Change::Release("e".into()));
        let payload = encode_from(one, &Change::Evidence(Sha256Digest::of(b"x")));
        assert_eq!(
            decode_from(&payload),
            (Some(one), Change::Evidence(Sha256Digest::of(b"x")))
        );
        assert_eq!(decode_from("zz all"), (None, Change::All));
        assert_eq!(decode_from("all"), (None, Change::All));
    }
}
