//! The transparency-log part of every sigstore-conformance `bundle-verify` case, and mutated
//! entries that must never verify.

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;
use crate::bundle::{Bundle, Material};
use crate::keys::PublicKey;
use crate::verify::Artifact;

/// What the tlog verifier must say about a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tlog {
    /// Entries verify and bind (the case passes, or fails for a reason that is not the log's).
    Verifies,
    /// The log evidence or its binding to the bundle is refused: this code decides the case.
    Refused,
    /// The bundle parser already refuses the bundle.
    Unparsable,
}

use Tlog::{Refused, Unparsable, Verifies};

/// Every case, judged. `Verifies` on a `_fail` case means its failure belongs to certificate,
/// timestamp, signature or key checks, which must not be caused by the tlog code.
const CASES: &[(&str, Tlog)] = &[
    ("bundle-empty-certificate-chain_fail", Unparsable),
    ("bundle-from-wrong-instance_fail", Refused), // staging log, production root: unknown log
    ("bundle-invalid-base64-signature_fail", Unparsable),
    ("bundle-malformed-json_fail", Unparsable),
    ("bundle-negative-log-index_fail", Unparsable),
    ("bundle-unknown-version_fail", Unparsable),
    ("bundle-with-root-cert_fail", Unparsable), // its proof lacks the required checkpoint
    ("bundle-with-sct-with-extensions", Verifies),
    ("checkpoint-bad-keyhint_fail", Refused), // no signature line from the log's key
    ("dsse-invalid-sig_fail", Refused),       // logged signature differs from the envelope's
    ("dsse-mismatch-envelope_fail", Refused), // payload hash
    ("dsse-mismatch-sig_fail", Refused),      // signature
    ("happy-path-intoto-in-dsse-v3", Verifies),
    ("happy-path-v0.1", Verifies),
    ("happy-path-v0.3", Verifies),
    ("happy-path-v0.3-new-mediaType", Verifies),
    ("inclusion-proof-corrupted-hash_fail", Refused),
    ("incorrect-public-key_fail", Refused), // logged certificate differs
    ("intoto-log-entry-mismatch_fail", Refused), // logged signature is not the envelope's
    ("intoto-missing-inclusion-proof_fail", Unparsable),
    ("intoto-set-outside-signing-cert-validity_fail", Verifies), // certificate validity
    ("intoto-tsa-timestamp-outside-cert-validity_fail", Verifies), // timestamp
    ("intoto-with-custom-trust-root", Verifies),
    ("invalid-checkpoint-signature_fail", Refused),
    ("invalid-inclusion-proof_fail", Unparsable), // its proof lacks the required checkpoint
    ("managed-key-happy-path", Verifies),
    ("managed-key-no-key_fail", Verifies), // no key given: a usage failure, not the log's
    ("managed-key-wrong-key_fail", Verifies), // its key.pub is corrupt: refused when loading the key
    ("message-digest-mismatch_fail", Refused),
    ("rekor2-checkpoint-cosigned", Verifies),
    ("rekor2-checkpoint-missing-log-signature_fail", Refused),
    ("rekor2-checkpoint-missing-origin_fail", Refused),
    ("rekor2-checkpoint-missing-root-hash_fail", Refused),
    ("rekor2-checkpoint-missing-size_fail", Refused),
    ("rekor2-checkpoint-no-matching-signature_fail", Refused),
    ("rekor2-checkpoint-origin-not-first", Verifies),
    ("rekor2-checkpoint-two-sigs-cosigned", Verifies),
    ("rekor2-checkpoint-two-sigs-from-origin", Verifies),
    ("rekor2-dsse-happy-path", Verifies),
    ("rekor2-dsse-invalid-sig_fail", Refused), // logged signature is not the envelope's
    ("rekor2-dsse-mismatch-envelope_fail", Refused), // SHA-256(PAE) differs
    ("rekor2-happy-path", Verifies),
    ("rekor2-no-inclusion-proof_fail", Unparsable),
    ("rekor2-no-timestamp_fail", Verifies), // no time source: policy, not the log
    (
        "rekor2-timestamp-outside-trust-root-tsa-validity_fail",
        Verifies,
    ),
    ("rekor2-timestamp-outside-tsa-cert-validity_fail", Verifies),
    ("rekor2-timestamp-payload-mismatch_fail", Verifies),
    (
        "rekor2-timestamp-untrusted-tsa-with-embedded-cert_fail",
        Verifies,
    ),
    ("rekor2-timestamp-with-embedded-cert", Verifies),
    ("rekor2-timestamp-with-incorrect-time_fail", Verifies),
    ("rekor2-timestamp-without-embedded-cert", Verifies),
    ("signature-mismatch_fail", Refused),
    ("trust-root-tsa-validity-end-inclusive", Verifies),
    ("wrong-hashedrekord-artifact_fail", Refused),
    ("wrong-hashedrekord-cert-and-sig_fail", Refused),
    ("wrong-material_fail", Refused), // logged digest is not the artifact's
];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata/sigstore-conformance/bundle-verify")
}

fn root_for(case: &Path) -> TrustedRoot {
    let own = case.join("trusted_root.json");
    let path = if own.exists() {
        own
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
            "../../../shared/testdata/sigstore-python/embedded-tuf-store/https%3A%2F%2Ftuf-repo-cdn.sigstore.dev/trusted_root.json",
        )
    };
    TrustedRoot::from_json(&std::fs::read(path).unwrap()).unwrap()
}

/// Everything one case needs: bundle, root, artifact bytes, and the key if the case has one.
struct Case {
    bundle: Bundle,
    root: TrustedRoot,
    artifact: Vec<u8>,
    key: Option<PublicKey>,
}

fn load(name: &str) -> Result<Case, crate::bundle::BundleError> {
    let case = dir().join(name);
    let bundle = Bundle::from_json(&std::fs::read(case.join("bundle.sigstore.json")).unwrap())?;
    let artifact = std::fs::read(case.join("artifact"))
        .unwrap_or_else(|_| std::fs::read(dir().join("a.txt")).unwrap());
    let key = std::fs::read(case.join("key.pub"))
        .ok()
        .and_then(|pem| PublicKey::from_pem(&pem).ok());
    Ok(Case {
        root: root_for(&case),
        bundle,
        artifact,
        key,
    })
}

fn verify_case(case: &Case) -> Result<Vec<VerifiedTlogEntry>, TlogError> {
    let artifact = Artifact::from_bytes(&case.artifact);
    // A DSSE bundle's artifact is an in-toto subject, which the log does not record.
    let artifact = matches!(
        case.bundle.content,
        crate::bundle::BundleContent::MessageSignature { .. }
    )
    .then_some(&artifact);
    let options = TlogOptions::default();
    match (&case.bundle.verification_material.content, &case.key) {
        (Material::Certificate(der), _) => verify_bundle_entries(
            &case.bundle,
            &case.root,
            Signer::Certificate(der),
            artifact,
            &options,
        ),
        (Material::X509CertificateChain(chain), _) => verify_bundle_entries(
            &case.bundle,
            &case.root,
            Signer::Certificate(&chain[0]),
            artifact,
            &options,
        ),
        (Material::PublicKeyHint(_), Some(key)) => verify_bundle_entries(
            &case.bundle,
            &case.root,
            Signer::Key(key),
            artifact,
            &options,
        ),
        (Material::PublicKeyHint(_), None) => verify_entries(&case.bundle, &case.root, &options),
    }
}

#[test]
fn conformance_table_covers_every_case() {
    let mut on_disk: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let table: Vec<String> = CASES.iter().map(|(c, _)| (*c).to_owned()).collect();
    assert_eq!(on_disk, table);
}

#[test]
fn conformance_cases_behave_as_judged() {
    for &(name, expected) in CASES {
        let case = match load(name) {
            Ok(case) => case,
            Err(e) => {
                assert_eq!(expected, Unparsable, "{name}: {e}");
                continue;
            }
        };
        assert_ne!(expected, Unparsable, "{name} parsed");
        let result = verify_case(&case);
        match (expected, result) {
            (Verifies, Ok(entries)) => {
                assert_eq!(
                    entries.len(),
                    case.bundle.verification_material.tlog_entries.len()
                );
                for e in &entries {
                    // Only a verified SET yields a time; Rekor v2 entries have none.
                    let has_set = case
                        .bundle
                        .verification_material
                        .tlog_entries
                        .iter()
                        .any(|t| t.inclusion_promise.is_some());
                    assert_eq!(e.integrated_time().is_some(), has_set, "{name}");
                    assert!(
                        e.checkpoint().is_some()
                            || case.bundle.version == crate::bundle::BundleVersion::V0_1,
                        "{name}"
                    );
                }
            }
            (Refused, Err(e)) => {
                // Every refusal names the entry.
                let text = e.to_string();
                assert!(text.contains("log"), "{name}: {text}");
                eprintln!("{name}: {text}");
            }
            (expected, result) => panic!(
                "{name}: expected {expected:?}, got {:?}",
                result.map(|v| v.len())
            ),
        }
    }
}

/// The bundles whose entries the property tests mutate: Rekor v1 hashedrekord with SET and
/// proof, Rekor v1 dsse, Rekor v2 hashedrekord, a key-signed bundle.
const MUTATED: [&str; 4] = [
    "happy-path-v0.3",
    "happy-path-intoto-in-dsse-v3",
    "rekor2-happy-path",
    "managed-key-happy-path",
];

/// The byte range of the `tlogEntries` array in the bundle text.
fn entries_span(text: &str) -> (usize, usize) {
    let start = text.find("\"tlogEntries\"").unwrap();
    let open = start + text[start..].find('[').unwrap();
    let mut depth = 0usize;
    for (i, b) in text.bytes().enumerate().skip(open) {
        match b {
            b'[' => depth += 1,
            b']' => {
                depth -= 1;
                if depth == 0 {
                    return (open, i + 1);
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced tlogEntries");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any change inside `tlogEntries` that changes what the parser reads must not verify.
    #[test]
    fn mutated_entry_bytes_never_verify(which in 0..MUTATED.len(), at in any::<usize>(), byte in any::<u8>(), delete in any::<bool>()) {
        let original = load(MUTATED[which]).unwrap();
        let path = dir().join(MUTATED[which]).join("bundle.sigstore.json");
        let mut bytes = std::fs::read(path).unwrap();
        let (start, end) = entries_span(std::str::from_utf8(&bytes).unwrap());
        let i = start + at % (end - start);
        if delete { bytes.remove(i); } else { bytes[i] = byte; }
        if let Ok(bundle) = Bundle::from_json(&bytes) {
            // Dropping an entry's optional inclusion promise (e.g. renaming the field, which the
            // parser then ignores) leaves a valid v0.2+ entry: only other changes must fail.
            let mut without_promise = original.bundle.verification_material.tlog_entries.clone();
            for (e, m) in without_promise.iter_mut().zip(&bundle.verification_material.tlog_entries) {
                if m.inclusion_promise.is_none() && bundle.version >= crate::bundle::BundleVersion::V0_2 {
                    e.inclusion_promise = None;
                }
            }
            if bundle.verification_material.tlog_entries != without_promise {
                let case = Case { bundle, ..original };
                prop_assert!(verify_case(&case).is_err(), "mutation at {i} verified");
            }
        }
    }

    /// Bit flips in the decoded evidence (body, SET, proof hashes, root, checkpoint) never verify.
    #[test]
    fn flipped_evidence_never_verifies(which in 0..MUTATED.len(), field in 0..5usize, at in any::<usize>(), bit in 0..8u8) {
        let mut case = load(MUTATED[which]).unwrap();
        let entry = &mut case.bundle.verification_material.tlog_entries[0];
        let flip = |v: &mut Vec<u8>| { if !v.is_empty() { let i = at % v.len(); v[i] ^= 1 << bit; } };
        let proof = entry.inclusion_proof.as_mut().unwrap();
        match field {
            0 => flip(&mut entry.canonicalized_body),
            1 => match entry.inclusion_promise.as_mut() { Some(set) => flip(set), None => flip(&mut proof.root_hash) },
            2 => { let n = proof.hashes.len(); flip(&mut proof.hashes[at % n]) }
            3 => flip(&mut proof.root_hash),
            _ => {
                let mut text = proof.checkpoint.clone().into_bytes();
                flip(&mut text);
                match String::from_utf8(text) { Ok(t) => proof.checkpoint = t, Err(_) => return Ok(()) }
            }
        }
        prop_assert!(verify_case(&case).is_err());
    }
}
