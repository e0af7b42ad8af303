//! Property tests: parsing mutated and truncated bundles, envelopes, statements and trust roots
//! never panics, and a mutated DSSE envelope never verifies a payload other than the signed one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use custody_core::bundle::Bundle;
use custody_core::dsse::{Envelope, SignatureVerifier};
use custody_core::intoto::{ResourceDescriptor, Statement};
use custody_core::trust_root::{ClientTrustConfig, SigningConfig, TrustedRoot};
use proptest::prelude::*;

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata")
        .join(rel)
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(testdata(rel)).unwrap()
}

const BUNDLES: &[&str] = &[
    "sigstore-conformance/bundle-verify/happy-path-v0.3/bundle.sigstore.json",
    "sigstore-conformance/bundle-verify/happy-path-v0.1/bundle.sigstore.json",
    "sigstore-conformance/bundle-verify/happy-path-intoto-in-dsse-v3/bundle.sigstore.json",
    "sigstore-conformance/bundle-verify/rekor2-happy-path/bundle.sigstore.json",
    "sigstore-conformance/bundle-verify/managed-key-happy-path/bundle.sigstore.json",
];

const ROOTS: &[&str] = &[
    "sigstore-trust-root/public-good.trusted_root.json",
    "sigstore-python/trust_config/config.v1.json",
    "sigstore-trust-root/public-good.signing_config.v0.2.json",
];

/// Applies byte overwrites, then (a quarter of the time) truncates at a random point.
fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8)], cut: usize) -> Vec<u8> {
    if bytes.is_empty() {
        return bytes;
    }
    for &(at, value) in edits {
        let i = at % bytes.len();
        bytes[i] = value;
    }
    if cut % 4 == 0 {
        bytes.truncate((cut / 4) % (bytes.len() + 1));
    }
    bytes
}

/// Bytes that matter to JSON and base64, plus anything.
fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        Just(b'"'),
        Just(b'{'),
        Just(b'}'),
        Just(b'['),
        Just(b']'),
        Just(b','),
        Just(b':'),
        Just(b'-'),
        Just(b'0'),
        Just(b'9'),
        Just(b'='),
        Just(b'/'),
        Just(b'+'),
        Just(b'_'),
        Just(b'\\'),
        Just(b'\n'),
        Just(0u8),
        Just(0xffu8),
        any::<u8>(),
    ]
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8)>> {
    prop::collection::vec((any::<usize>(), interesting_byte()), 0..8)
}

struct SpecKey(Vec<u8>);

impl SignatureVerifier for SpecKey {
    fn verify_signature(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.0)
            .verify(message, signature)
            .is_ok()
    }
}

fn spec_key() -> SpecKey {
    let pem = read("dsse-spec/spec-hello-world/DERIVED-pubkey.pem");
    let (_, der) = pem_rfc7468::decode_vec(&pem).unwrap();
    SpecKey(der[der.len() - 65..].to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn bundles_never_panic(which in 0..BUNDLES.len(), edits in edits(), cut in any::<usize>()) {
        let original = read(BUNDLES[which]);
        let bytes = mutate(original, &edits, cut);
        if let Ok(bundle) = Bundle::from_json(&bytes) {
            // Whatever parses re-serializes to something that parses to the same bundle.
            prop_assert_eq!(Bundle::from_json(bundle.to_json().as_bytes()).unwrap(), bundle);
        }
    }

    #[test]
    fn trust_material_never_panics(which in 0..ROOTS.len(), edits in edits(), cut in any::<usize>()) {
        let bytes = mutate(read(ROOTS[which]), &edits, cut);
        let _ = TrustedRoot::from_json(&bytes);
        let _ = ClientTrustConfig::from_json(&bytes);
        let _ = SigningConfig::from_json(&bytes);
    }

    #[test]
    fn statements_never_panic(edits in edits(), cut in any::<usize>()) {
        let bytes = mutate(read("slsa/github-actions-slsa-provenance-v1.statement.json"), &edits, cut);
        if let Ok(st) = Statement::from_json(&bytes) {
            let _ = custody_core::intoto::slsa::Provenance::from_statement(&st);
        }
        let _ = ResourceDescriptor::from_json(&bytes);
    }

    #[test]
    fn mutated_envelopes_never_verify_another_payload(edits in edits(), cut in any::<usize>()) {
        let original = read("dsse-spec/spec-hello-world/envelope-with-keyid.json");
        let bytes = mutate(original, &edits, cut);
        if let Ok(env) = Envelope::from_json(&bytes) {
            let key = spec_key();
            if let Ok(verified) = env.verify(&[&key], 1) {
                prop_assert_eq!(verified.payload, b"hello world".to_vec());
                prop_assert_eq!(verified.payload_type, "http://example.com/HelloWorld");
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = Bundle::from_json(&bytes);
        let _ = Envelope::from_json(&bytes);
        let _ = Statement::from_json(&bytes);
        let _ = TrustedRoot::from_json(&bytes);
    }
}
