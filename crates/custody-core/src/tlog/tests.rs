//! The derived happy-path-v0.3 values reproduce exactly; each check fails on its own.

use std::path::PathBuf;

use chrono::TimeZone as _;
use serde_json::Value;

use super::entry::{key_name, origin_matches};
use super::*;
use crate::bundle::Bundle;
use crate::encoding::{base64_decode_strict, base64_encode};
use crate::merkle::leaf_hash;
use crate::rekor::BodyError;

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata")
}

pub(crate) fn public_good() -> TrustedRoot {
    let path = testdata().join("sigstore-trust-root/public-good.trusted_root.json");
    TrustedRoot::from_json(&std::fs::read(path).unwrap()).unwrap()
}

fn derived() -> Value {
    let path = testdata().join("sigstore-derived/happy-path-v0.3.rekor-v1.derived.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn happy() -> Bundle {
    let path =
        testdata().join("sigstore-conformance/bundle-verify/happy-path-v0.3/bundle.sigstore.json");
    Bundle::from_json(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn derived_values_reproduce() {
    let d = derived();
    let bundle = happy();
    let entry = &bundle.verification_material.tlog_entries[0];
    assert_eq!(
        entry.canonicalized_body,
        d["canonicalized_body_utf8"].as_str().unwrap().as_bytes()
    );
    assert_eq!(
        hex::encode(leaf_hash(&entry.canonicalized_body)),
        d["leaf_hash_hex"].as_str().unwrap()
    );
    assert_eq!(
        String::from_utf8(set_payload(entry)).unwrap(),
        d["set_signed_payload_utf8"].as_str().unwrap()
    );
    assert_eq!(
        base64_encode(entry.inclusion_promise.as_ref().unwrap()),
        d["set_signature_b64"].as_str().unwrap()
    );
    assert_eq!(
        hex::encode(&entry.log_id),
        d["rekor_log_id_hex"].as_str().unwrap()
    );

    let verified = verify_entry(
        entry,
        bundle.version,
        &public_good(),
        &TlogOptions::default(),
    )
    .unwrap();
    assert_eq!(
        verified.log_index(),
        d["global_log_index"].as_i64().unwrap()
    );
    assert_eq!(
        verified.integrated_time(),
        Some(Utc.timestamp_opt(1_710_869_186, 0).unwrap())
    );
    let checkpoint = verified.checkpoint().unwrap();
    assert_eq!(
        format!(
            "{}\n{}\n{}\n",
            checkpoint.origin,
            checkpoint.size,
            base64_encode(&checkpoint.root_hash)
        ),
        d["checkpoint_signed_text_utf8"].as_str().unwrap()
    );
    assert_eq!(checkpoint.size, d["tree_size"].as_u64().unwrap());
    assert_eq!(
        (verified.kind(), verified.version()),
        ("hashedrekord", "0.0.1")
    );
    assert_eq!(verified.log_base_url(), "https://rekor.sigstore.dev");
    assert_eq!(
        verified.log_id().to_string(),
        d["rekor_log_id_hex"].as_str().unwrap()
    );

    // The checkpoint key hint is SHA-256(SPKI)[:4] = the first 4 bytes of the log id.
    let spki = base64_decode_strict(d["rekor_public_key_spki_b64"].as_str().unwrap()).unwrap();
    let verifier = crate::note::NoteVerifier::from_spki("rekor.sigstore.dev", &spki).unwrap();
    assert_eq!(
        format!("{:08x}", verifier.key_id()),
        d["checkpoint_key_hint_hex"].as_str().unwrap()
    );
}

fn verify_mutated(mutate: impl FnOnce(&mut TransparencyLogEntry)) -> TlogError {
    let bundle = happy();
    let mut entry = bundle.verification_material.tlog_entries[0].clone();
    mutate(&mut entry);
    verify_entry(
        &entry,
        bundle.version,
        &public_good(),
        &TlogOptions::default(),
    )
    .unwrap_err()
}

#[test]
fn each_piece_of_evidence_is_checked() {
    let err = verify_mutated(|e| e.integrated_time += 1);
    assert!(
        matches!(
            err,
            TlogError::InvalidPromise {
                log_index: 79571823,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"),
        "{err}"
    );

    let err = verify_mutated(|e| e.log_index += 1);
    assert!(matches!(err, TlogError::InvalidPromise { .. }), "{err}");

    let err = verify_mutated(|e| e.inclusion_proof.as_mut().unwrap().log_index += 1);
    assert!(matches!(err, TlogError::InvalidProof { .. }), "{err}");

    let err = verify_mutated(|e| e.inclusion_proof.as_mut().unwrap().hashes[3][0] ^= 1);
    assert!(matches!(err, TlogError::InvalidProof { .. }), "{err}");

    let err = verify_mutated(|e| {
        e.inclusion_proof.as_mut().unwrap().hashes[3]
            .pop()
            .map(|_| ())
            .unwrap()
    });
    assert!(
        matches!(
            err,
            TlogError::MalformedProof {
                problem: ProofProblem::ProofHashLength { index: 3, len: 31 },
                ..
            }
        ),
        "{err}"
    );

    let err = verify_mutated(|e| e.kind = "dsse".into());
    assert!(matches!(err, TlogError::KindMismatch { .. }), "{err}");

    let err = verify_mutated(|e| e.log_id[0] ^= 1);
    assert!(matches!(err, TlogError::UnknownLog { .. }), "{err}");
    assert!(err.to_string().contains("c1d23d6a"), "{err}");

    // Before the log key's validity period.
    let err = verify_mutated(|e| e.integrated_time = 1_000_000_000);
    assert!(matches!(err, TlogError::LogKeyNotValidAt { .. }), "{err}");

    let err = verify_mutated(|e| e.canonicalized_body[0] = b' ');
    assert!(
        matches!(
            err,
            TlogError::Body {
                source: BodyError::NotCanonical,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn promise_and_proof_requirements_follow_the_bundle_version() {
    let bundle = happy();
    let root = public_good();
    let options = TlogOptions::default();
    let mut entry = bundle.verification_material.tlog_entries[0].clone();
    entry.inclusion_promise = None;
    // v0.3 needs only the proof; without the SET there is no trusted integrated time.
    let verified = verify_entry(&entry, BundleVersion::V0_3, &root, &options).unwrap();
    assert_eq!(verified.integrated_time(), None);
    assert!(matches!(
        verify_entry(&entry, BundleVersion::V0_1, &root, &options),
        Err(TlogError::MissingPromise { .. })
    ));
    let mut entry = bundle.verification_material.tlog_entries[0].clone();
    entry.inclusion_proof = None;
    assert!(matches!(
        verify_entry(&entry, BundleVersion::V0_2, &root, &options),
        Err(TlogError::MissingProof { .. })
    ));
    verify_entry(&entry, BundleVersion::V0_1, &root, &options).unwrap();
}

#[test]
fn signed_times_must_lie_in_the_log_key_validity() {
    let bundle = happy();
    let mut entry = bundle.verification_material.tlog_entries[0].clone();
    entry.inclusion_promise = None;
    let early = [Utc.timestamp_opt(1_000_000_000, 0).unwrap()];
    let options = TlogOptions {
        signed_times: &early,
        ..TlogOptions::default()
    };
    assert!(matches!(
        verify_entry(&entry, bundle.version, &public_good(), &options),
        Err(TlogError::LogKeyNotValidAt { .. })
    ));
    let mut root = public_good();
    root.tlogs[0].public_key.valid_for.start = None;
    assert!(matches!(
        verify_entry(&entry, bundle.version, &root, &TlogOptions::default()),
        Err(TlogError::LogKeyNeverValid { .. })
    ));
}

#[test]
fn duplicates_and_too_many_entries_are_refused() {
    let mut bundle = happy();
    let entry = bundle.verification_material.tlog_entries[0].clone();
    bundle
        .verification_material
        .tlog_entries
        .push(entry.clone());
    let err = verify_entries(&bundle, &public_good(), &TlogOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            TlogError::Duplicate {
                log_index: 79571823,
                ..
            }
        ),
        "{err}"
    );
    bundle.verification_material.tlog_entries = (0..=MAX_TLOG_ENTRIES as i64)
        .map(|i| TransparencyLogEntry {
            log_index: i,
            ..entry.clone()
        })
        .collect();
    assert!(matches!(
        verify_entries(&bundle, &public_good(), &TlogOptions::default()),
        Err(TlogError::TooManyEntries { count: 33, max: 32 })
    ));
}

#[test]
fn witness_policy_is_enforced_only_when_asked() {
    let bundle = happy();
    let entry = &bundle.verification_material.tlog_entries[0];
    let (signer, vkey) = crate::note::CosignatureSigner::generate("witness.example").unwrap();
    let _ = signer;
    let witness = crate::note::CosignatureVerifier::from_vkey(&vkey).unwrap();
    let witnesses = [witness];
    let options = TlogOptions {
        witnesses: &witnesses,
        witness_threshold: 1,
        ..TlogOptions::default()
    };
    assert!(matches!(
        verify_entry(entry, bundle.version, &public_good(), &options),
        Err(TlogError::Witnesses { .. })
    ));
    let options = TlogOptions {
        witnesses: &witnesses,
        witness_threshold: 0,
        ..TlogOptions::default()
    };
    verify_entry(entry, bundle.version, &public_good(), &options).unwrap();
}

#[test]
fn checkpoint_names_and_origins() {
    assert_eq!(key_name("https://rekor.sigstore.dev"), "rekor.sigstore.dev");
    assert_eq!(key_name("http://localhost:8000/"), "localhost:8000");
    assert_eq!(
        key_name("log2025-1.rekor.sigstore.dev"),
        "log2025-1.rekor.sigstore.dev"
    );
    assert!(origin_matches(
        "rekor.sigstore.dev - 2605736670972794746",
        "rekor.sigstore.dev"
    ));
    assert!(origin_matches(
        "log2025-alpha1.rekor.sigstage.dev",
        "log2025-alpha1.rekor.sigstage.dev"
    ));
    for origin in [
        "rekor.sigstore.dev - ",
        "rekor.sigstore.dev - 12x",
        "rekor.sigstore.devil",
        "evil.rekor.sigstore.dev",
        "rekor.sigstore.dev -1",
        "",
    ] {
        assert!(!origin_matches(origin, "rekor.sigstore.dev"), "{origin:?}");
    }
}

#[test]
fn key_path_reports_verified_entries_only_with_a_root() {
    use crate::verify::{
        KeyVerifyOptions, TlogStatus, VerifyError, verify_parsed_with_key_options,
    };
    let case = testdata().join("sigstore-conformance/bundle-verify/managed-key-happy-path");
    let mut bundle =
        Bundle::from_json(&std::fs::read(case.join("bundle.sigstore.json")).unwrap()).unwrap();
    let key =
        crate::keys::PublicKey::from_pem(&std::fs::read(case.join("key.pub")).unwrap()).unwrap();
    let a = std::fs::read(testdata().join("sigstore-conformance/bundle-verify/a.txt")).unwrap();
    let artifact = crate::verify::Artifact::from_bytes(&a);
    let root = public_good();
    let with_root = KeyVerifyOptions {
        trusted_root: Some(&root),
    };
    let v = verify_parsed_with_key_options(&bundle, artifact, &key, &with_root).unwrap();
    assert_eq!(
        v.tlog,
        TlogStatus::Verified {
            entries: 1,
            integrated_time: Some(Utc.timestamp_opt(1_766_077_479, 0).unwrap())
        }
    );
    let v = verify_parsed_with_key_options(&bundle, artifact, &key, &KeyVerifyOptions::default())
        .unwrap();
    assert_eq!(v.tlog, TlogStatus::NotChecked { entries: 1 });
    bundle.verification_material.tlog_entries.clear();
    assert!(matches!(
        verify_parsed_with_key_options(&bundle, artifact, &key, &with_root),
        Err(VerifyError::NoTlogEntry)
    ));
}

/// The Rekor v2 (hashedrekord 0.0.2) conformance bundle and its trust root: no SET, so the
/// entry has no trusted time of its own.
fn rekor2() -> (Bundle, TrustedRoot) {
    let dir = testdata().join("sigstore-conformance/bundle-verify/rekor2-happy-path");
    let bundle = Bundle::from_json(&std::fs::read(dir.join("bundle.sigstore.json")).unwrap());
    let root = TrustedRoot::from_json(&std::fs::read(dir.join("trusted_root.json")).unwrap());
    (bundle.unwrap(), root.unwrap())
}

fn utc(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
}

/// Attack: the log key was retired (its `validFor` ended in 2020), yet an entry without any
/// trusted time verified under it, because nothing compared the key's window with any time.
#[test]
fn attack_retired_log_key_vouches_for_rekor_v2_entry() {
    let (bundle, mut root) = rekor2();
    let entry = &bundle.verification_material.tlog_entries[0];
    assert!(entry.inclusion_promise.is_none());
    let log = root
        .tlogs
        .iter()
        .position(|t| t.log_id == entry.log_id)
        .unwrap();
    root.tlogs[log].public_key.valid_for = ValidityPeriod {
        start: Some(utc(2019, 1, 1)),
        end: Some(utc(2020, 1, 1)),
    };
    // No pinned clock: the check uses the real current time, as `custody verify` does.
    let err = verify_entry(entry, bundle.version, &root, &TlogOptions::default()).unwrap_err();
    assert!(matches!(err, TlogError::LogKeyNotValidNow { .. }), "{err}");
    let message = err.to_string();
    for needle in [
        hex::encode(&entry.log_id),
        "2019-01-01T00:00:00Z to 2020-01-01T00:00:00Z".to_owned(),
        "update the trusted root".to_owned(),
    ] {
        assert!(message.contains(&needle), "{needle}: {message}");
    }
    assert!(!message.contains('\n'), "{message}");

    // The same entry verifies while the key is current: open-ended, or a window holding now.
    root.tlogs[log].public_key.valid_for.end = None;
    verify_entry(entry, bundle.version, &root, &TlogOptions::default()).unwrap();
    root.tlogs[log].public_key.valid_for.end = Some(utc(2030, 1, 1));
    let pinned = |now| TlogOptions {
        now: Some(now),
        ..TlogOptions::default()
    };
    verify_entry(entry, bundle.version, &root, &pinned(utc(2029, 12, 31))).unwrap();
    // The window is inclusive at its end, exclusive after it, and the same before its start.
    verify_entry(entry, bundle.version, &root, &pinned(utc(2030, 1, 1))).unwrap();
    assert!(matches!(
        verify_entry(
            entry,
            bundle.version,
            &root,
            &pinned(utc(2030, 1, 1) + chrono::Duration::seconds(1))
        ),
        Err(TlogError::LogKeyNotValidNow { .. })
    ));
    assert!(matches!(
        verify_entry(entry, bundle.version, &root, &pinned(utc(2018, 6, 1))),
        Err(TlogError::LogKeyNotValidNow { .. })
    ));
}

/// With a trusted time (a verified RFC 3161 timestamp), the key must have been valid then, and
/// a key retired since still vouches for the entry: that is what the timestamp is for.
#[test]
fn retired_log_key_still_vouches_for_an_entry_timestamped_while_it_was_valid() {
    let (bundle, mut root) = rekor2();
    let entry = &bundle.verification_material.tlog_entries[0];
    let log = root
        .tlogs
        .iter()
        .position(|t| t.log_id == entry.log_id)
        .unwrap();
    root.tlogs[log].public_key.valid_for = ValidityPeriod {
        start: Some(utc(2019, 1, 1)),
        end: Some(utc(2020, 1, 1)),
    };
    let inside = [utc(2019, 6, 1)];
    let options = TlogOptions {
        signed_times: &inside,
        ..TlogOptions::default()
    };
    verify_entry(entry, bundle.version, &root, &options).unwrap();
    let after = [utc(2021, 6, 1)];
    let options = TlogOptions {
        signed_times: &after,
        ..TlogOptions::default()
    };
    let err = verify_entry(entry, bundle.version, &root, &options).unwrap_err();
    assert!(matches!(err, TlogError::LogKeyNotValidAt { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("2019-01-01T00:00:00Z to 2020-01-01T00:00:00Z"),
        "{err}"
    );
}
