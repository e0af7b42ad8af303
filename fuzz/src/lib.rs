//! Fixtures shared by the fuzz targets: real keys, artifacts and trusted roots from
//! `../shared/testdata` (compiled in, so a target never reads a file while it runs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use custody_core::bundle::{Bundle, BundleContent};
use custody_core::keys::PublicKey;
use custody_core::trust_root::TrustedRoot;

macro_rules! testdata {
    ($path:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/testdata/",
            $path
        ))
    };
}

/// sigstore-conformance `managed-key-happy-path`: a key, its bundle over `a.txt`.
pub const MANAGED_KEY_PEM: &[u8] =
    testdata!("sigstore-conformance/bundle-verify/managed-key-happy-path/key.pub");
pub const MANAGED_KEY_BUNDLE: &[u8] =
    testdata!("sigstore-conformance/bundle-verify/managed-key-happy-path/bundle.sigstore.json");
pub const ARTIFACT: &[u8] = testdata!("sigstore-conformance/bundle-verify/a.txt");
/// Sigstore public-good trusted root.
pub const PUBLIC_GOOD_ROOT: &[u8] = testdata!("sigstore-trust-root/public-good.trusted_root.json");
/// The trusted root of the Rekor v2 conformance cases (TSA, Rekor v2 log key).
pub const REKOR2_ROOT: &[u8] =
    testdata!("sigstore-conformance/bundle-verify/rekor2-happy-path/trusted_root.json");
/// DSSE spec vector: P-256 key (DER signatures in the DERIVED envelope).
pub const DSSE_KEY_PEM: &[u8] = testdata!("dsse-spec/spec-hello-world/DERIVED-pubkey.pem");
/// python in-toto demo: bob signs the `write-code` link.
pub const BOB_PEM: &[u8] = testdata!("in-toto-python/demo_files/bob.pub");
/// C2SP signed-note example key.
pub const NOTE_VKEY: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/testdata/signed-notes/c2sp/example.com-foo.vkey"
));
pub const PETER_VKEY: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/testdata/signed-notes/golang-mod-note/PeterNeumann.vkey"
));
pub const ENOCH_VKEY: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/testdata/signed-notes/golang-mod-note/EnochRoot.vkey"
));

pub fn managed_key() -> &'static PublicKey {
    static K: OnceLock<PublicKey> = OnceLock::new();
    K.get_or_init(|| PublicKey::from_pem(MANAGED_KEY_PEM).unwrap())
}

/// The signature of the genuine managed-key bundle: the only one that may verify.
pub fn managed_signature() -> &'static [u8] {
    static S: OnceLock<Vec<u8>> = OnceLock::new();
    S.get_or_init(
        || match Bundle::from_json(MANAGED_KEY_BUNDLE).unwrap().content {
            BundleContent::MessageSignature { signature, .. } => signature,
            BundleContent::Dsse(_) => panic!("managed-key bundle is a message signature"),
        },
    )
}

pub fn public_good_root() -> &'static TrustedRoot {
    static R: OnceLock<TrustedRoot> = OnceLock::new();
    R.get_or_init(|| TrustedRoot::from_json(PUBLIC_GOOD_ROOT).unwrap())
}

pub fn rekor2_root() -> &'static TrustedRoot {
    static R: OnceLock<TrustedRoot> = OnceLock::new();
    R.get_or_init(|| TrustedRoot::from_json(REKOR2_ROOT).unwrap())
}

/// A fixed verification time (2025-06-01): every fixture's certificates are valid or not
/// the same way on every run.
pub fn fixed_time() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_748_736_000, 0).unwrap()
}

/// Splits `data` into a first part (its length in the first two bytes, big-endian) and the rest.
pub fn split2(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = data.split_first_chunk::<2>()?;
    let n = usize::from(u16::from_be_bytes(*len));
    (rest.len() >= n).then(|| rest.split_at(n))
}
