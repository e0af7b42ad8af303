//! `custody serve` as a real process: the tlog-tiles read API against an in-memory reference
//! tree, the Rekor v2 write API, and every refused write leaving the tree unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod logd;

use custody_core::encoding::base64_decode_any;
use custody_core::merkle::{Hash, MemoryTree, leaf_hash, verify_inclusion};
use custody_core::note::{NoteVerifier, SignedCheckpoint};
use custody_log::layout::decode_bundle;
use logd::{
    Daemon, TOKEN, custody, get, hashedrekord, p256, path_str, post_entry, scratch, tree_size,
};
use serde_json::Value;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

fn b64(v: &Value) -> Vec<u8> {
    base64_decode_any(v.as_str().unwrap()).unwrap()
}

/// Submits `n` distinct entries from 8 threads; returns the answers.
fn submit_many(base: &str, n: usize) -> Vec<Value> {
    let key = std::sync::Arc::new(p256());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (base, key) = (base.to_owned(), key.clone());
            std::thread::spawn(move || {
                (0..n / 8)
                    .map(|i| {
                        let body = hashedrekord(&key, format!("artifact {t}-{i}").as_bytes());
                        let (status, text) = post_entry(&base, &body, Some(TOKEN));
                        assert_eq!(status, 201, "{text}");
                        serde_json::from_str::<Value>(&text).unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect()
}

#[test]
fn tiles_and_checkpoint_match_a_reference_tree() {
    let (_tmp, data) = scratch();
    let log = Daemon::log(&data, &[]);
    let answers = submit_many(&log.url, 320);
    let verifier = NoteVerifier::from_vkey(&logd::vkey(&data)).unwrap();
    let note = logd::checkpoint(&log.url);
    let signed = SignedCheckpoint::verify(&note, &[verifier]).unwrap();
    assert_eq!(signed.checkpoint().size(), 320);

    // The entries, in index order, from the answers; the reference tree from them.
    let mut bodies = vec![Vec::new(); 320];
    for a in &answers {
        let index: usize = a["logIndex"].as_str().unwrap().parse().unwrap();
        bodies[index] = b64(&a["canonicalizedBody"]);
        assert_eq!(a["kindVersion"]["kind"], "hashedrekord");
        assert_eq!(a["kindVersion"]["version"], "0.0.2");
    }
    let tree = MemoryTree::from_entries(bodies.iter().map(Vec::as_slice));
    assert_eq!(tree.root(), *signed.checkpoint().root_hash());

    // Every answer's inclusion proof verifies against the root it names.
    for a in answers.iter().step_by(37) {
        let p = &a["inclusionProof"];
        let index: u64 = p["logIndex"].as_str().unwrap().parse().unwrap();
        let size: u64 = p["treeSize"].as_str().unwrap().parse().unwrap();
        let proof: Vec<Hash> = p["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| b64(h).try_into().unwrap())
            .collect();
        let root: Hash = b64(&p["rootHash"]).try_into().unwrap();
        verify_inclusion(
            index,
            size,
            &leaf_hash(&b64(&a["canonicalizedBody"])),
            &proof,
            &root,
        )
        .unwrap();
        assert!(
            p["checkpoint"]["envelope"]
                .as_str()
                .unwrap()
                .starts_with("log.test\n")
        );
    }

    // Level 0: one full tile and a partial one of width 64; level 1: a partial of width 1.
    let (status, cache, full) = get(&format!("{}/tile/0/000", log.url));
    assert_eq!((status, cache.as_str()), (200, IMMUTABLE));
    let expect: Vec<u8> = (0..256).flat_map(|i| leaf_hash(&bodies[i])).collect();
    assert_eq!(full, expect);
    let (status, cache, partial) = get(&format!("{}/tile/0/001.p/64", log.url));
    assert_eq!(status, 200);
    assert_ne!(cache, IMMUTABLE);
    let expect: Vec<u8> = (256..320).flat_map(|i| leaf_hash(&bodies[i])).collect();
    assert_eq!(partial, expect);
    let (status, _, level1) = get(&format!("{}/tile/1/000.p/1", log.url));
    assert_eq!(status, 200);
    assert_eq!(level1, tree.root_at(256).unwrap().to_vec());
    let (status, cache, bundle) = get(&format!("{}/tile/entries/000", log.url));
    assert_eq!((status, cache.as_str()), (200, IMMUTABLE));
    let entries = decode_bundle(&bundle).unwrap();
    assert_eq!(entries.len(), 256);
    assert_eq!(entries[17], bodies[17].as_slice());
    let (status, _, bundle) = get(&format!("{}/tile/entries/001.p/64", log.url));
    assert_eq!((status, decode_bundle(&bundle).unwrap().len()), (200, 64));

    // Beyond the tree: 404; not a tile path: 400.
    for path in [
        "tile/0/001",
        "tile/0/002",
        "tile/0/001.p/65",
        "tile/entries/001",
        "tile/1/000",
        "tile/2/000.p/1",
    ] {
        assert_eq!(get(&format!("{}/{path}", log.url)).0, 404, "{path}");
    }
    for path in [
        "tile/0/1",
        "tile/0/000.p/0",
        "tile/0/000.p/256",
        "tile/64/000",
        "tile/x/000",
        "tile/0/x000/001",
    ] {
        assert_eq!(get(&format!("{}/{path}", log.url)).0, 400, "{path}");
    }
    assert_eq!(get(&format!("{}/healthz", log.url)).0, 200);

    // The whole-log audit agrees.
    let (code, out, err) = custody(&[
        "log",
        "verify",
        &log.url,
        "--log-key",
        &path_str(&data.join("log.vkey")),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("320 entries"), "{out}");
}

#[test]
fn a_duplicate_returns_the_existing_entry_with_200() {
    let (_tmp, data) = scratch();
    let log = Daemon::log(&data, &[]);
    let key = p256();
    let body = hashedrekord(&key, b"same artifact");
    let (status, first) = post_entry(&log.url, &body, Some(TOKEN));
    assert_eq!(status, 201, "{first}");
    let (status, again) = post_entry(&log.url, &body, Some(TOKEN));
    assert_eq!(status, 200, "{again}");
    let (first, again): (Value, Value) = (
        serde_json::from_str(&first).unwrap(),
        serde_json::from_str(&again).unwrap(),
    );
    assert_eq!(first["logIndex"], again["logIndex"]);
    assert_eq!(first["canonicalizedBody"], again["canonicalizedBody"]);
    assert_eq!(tree_size(&log.url), 1);
}

#[test]
fn refused_writes_change_nothing() {
    let (_tmp, data) = scratch();
    let log = Daemon::log(
        &data,
        &["--max-request-bytes", "4000", "--max-entry-bytes", "300"],
    );
    let key = p256();
    let good = hashedrekord(&key, b"artifact");
    let url = &log.url;

    let (status, text) = post_entry(url, &good, None);
    assert_eq!(status, 401, "{text}");
    let (status, text) = post_entry(url, &good, Some("wrong-token"));
    assert_eq!(status, 401, "{text}");

    for bad in [
        "{",
        "[]",
        "{\"hashedRekordRequestV002\": 5}",
        "{\"rekordRequest\": {}}",
        "{}",
    ] {
        let (status, text) = post_entry(url, bad, Some(TOKEN));
        assert_eq!(status, 400, "{bad}: {text}");
        assert!(text.contains("message"), "{text}");
    }
    // A signature by another key, and a signature over another digest.
    let mut forged: Value = serde_json::from_str(&good).unwrap();
    let other: Value = serde_json::from_str(&hashedrekord(&p256(), b"artifact")).unwrap();
    forged["hashedRekordRequestV002"]["signature"]["content"] =
        other["hashedRekordRequestV002"]["signature"]["content"].clone();
    let (status, text) = post_entry(url, &forged.to_string(), Some(TOKEN));
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("does not verify"), "{text}");
    let mut wrong_kind: Value = serde_json::from_str(&good).unwrap();
    wrong_kind["hashedRekordRequestV002"]["signature"]["verifier"]["keyDetails"] =
        "PKIX_ED25519".into();
    let (status, text) = post_entry(url, &wrong_kind.to_string(), Some(TOKEN));
    assert_eq!(status, 400, "{text}");

    // Too large: the request (names --max-request-bytes) and the entry (--max-entry-bytes).
    let padded = format!("{}{}", good, " ".repeat(5000));
    let (status, text) = post_entry(url, &padded, Some(TOKEN));
    assert_eq!(status, 413, "{text}");
    assert!(
        text.contains("4000") && text.contains("--max-request-bytes"),
        "{text}"
    );
    let (status, text) = post_entry(url, &good, Some(TOKEN));
    assert_eq!(status, 413, "{text}");
    assert!(
        text.contains("300") && text.contains("--max-entry-bytes"),
        "{text}"
    );

    assert_eq!(tree_size(url), 0);
}

#[test]
fn serve_refuses_to_start_without_write_authentication() {
    let (_tmp, data) = scratch();
    let dir = path_str(&data);
    let (code, _, err) = custody(&["serve", "--listen", "127.0.0.1:0", "--data-dir", &dir]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--write-token-file"), "{err}");
    let (code, _, err) = custody(&[
        "serve",
        "--listen",
        "0.0.0.0:0",
        "--data-dir",
        &dir,
        "--insecure-allow-unauthenticated-writes",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("loopback"), "{err}");
}

#[test]
fn one_worker_thread_serves_concurrent_writers() {
    let (_tmp, data) = scratch();
    let log = Daemon::log(&data, &["--worker-threads", "1"]);
    let answers = submit_many(&log.url, 64);
    let mut indices: Vec<u64> = answers
        .iter()
        .map(|a| a["logIndex"].as_str().unwrap().parse().unwrap())
        .collect();
    indices.sort_unstable();
    assert_eq!(indices, (0..64).collect::<Vec<u64>>());
    assert_eq!(tree_size(&log.url), 64);
    serve_refuses(&data, "--worker-threads", "0");
}

/// `custody serve FLAG VALUE` is a usage error (exit 2) whose message names the flag.
fn serve_refuses(data: &std::path::Path, flag: &str, value: &str) {
    let data = path_str(data);
    let (code, _, err) = custody(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &data,
        flag,
        value,
    ]);
    assert_eq!(code, 2, "{flag} {value}: {err}");
    assert!(err.contains(flag), "{err}");
}

#[test]
fn batches_of_one_give_every_entry_its_own_checkpoint() {
    let (_tmp, data) = scratch();
    let log = Daemon::log(
        &data,
        &["--batch-max-entries", "1", "--batch-max-delay-ms", "0"],
    );
    let answers = submit_many(&log.url, 16);
    for answer in &answers {
        let index: u64 = answer["logIndex"].as_str().unwrap().parse().unwrap();
        let size: u64 = answer["inclusionProof"]["treeSize"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            size,
            index + 1,
            "a batch held more than one entry: {answer}"
        );
    }
    assert_eq!(tree_size(&log.url), 16);
    serve_refuses(&data, "--batch-max-entries", "0");
    serve_refuses(&data, "--batch-max-delay-ms", "10001");
}

#[test]
fn key_files_and_trust_root_export() {
    let (_tmp, data) = scratch();
    let log = Daemon::log(&data, &[]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(data.join("log.skey"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (code, from_dir, err) = custody(&["trust-root", "export", "--data-dir", &path_str(&data)]);
    assert_eq!(code, 0, "{err}");
    let root = custody_core::trust_root::TrustedRoot::from_json(from_dir.as_bytes()).unwrap();
    let tlog = &root.tlogs[0];
    assert_eq!(tlog.base_url, "http://log.test");
    assert_eq!(tlog.public_key.key_details, "PKIX_ED25519");
    assert!(tlog.public_key.valid_for.start.is_some());
    // checkpointKeyId is the key ID on the checkpoint's signature line; logId extends it.
    let verifier = NoteVerifier::from_vkey(&logd::vkey(&data)).unwrap();
    assert_eq!(
        tlog.checkpoint_key_id.as_deref().unwrap(),
        verifier.key_id().to_be_bytes()
    );
    assert_eq!(&tlog.log_id[..4], verifier.key_id().to_be_bytes());
    let spki_key =
        NoteVerifier::from_spki("log.test", tlog.public_key.raw_bytes.as_deref().unwrap()).unwrap();
    assert_eq!(spki_key.vkey(), verifier.vkey());

    let out = data.with_extension("root.json");
    let (code, _, err) = custody(&[
        "trust-root",
        "export",
        "--server",
        &log.url,
        "--out",
        &path_str(&out),
    ]);
    assert_eq!(code, 0, "{err}");
    let served =
        custody_core::trust_root::TrustedRoot::from_json(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(served, root);
    // The exported root is enough to audit the log.
    let (code, out_text, err) =
        custody(&["log", "verify", &log.url, "--trust-root", &path_str(&out)]);
    assert_eq!(code, 0, "{out_text}{err}");
}
