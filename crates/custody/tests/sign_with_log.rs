//! `custody sign --log` / `attest --log` against a running `custody serve`: the entry and its
//! inclusion proof go into the bundle, custody verifies them offline with the trust root from
//! `custody trust-root export`, and so does sigstore-js.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod logd;

use std::fs;
use std::path::Path;

use common::{assert_fails, custody, keygen, run, tempdir};
use logd::Daemon;
use serde_json::Value;

fn sigstore_js(bundle: &Path, root: &Path, key: &Path, artifact: &Path) -> (bool, String) {
    let modules = common::peers().join("npm/node_modules");
    assert!(
        modules.join("@sigstore/verify").is_dir(),
        "sigstore-js missing under {} (scripts/install-deps.sh)",
        modules.display()
    );
    let out = std::process::Command::new("node")
        .env("NODE_PATH", &modules)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/sjs-verify.js"))
        .args([
            "--bundle",
            bundle.to_str().unwrap(),
            "--trusted-root",
            root.to_str().unwrap(),
        ])
        // One log entry required (the default); no TSA runs here, so no second time source.
        .args(["--key", key.to_str().unwrap(), "--timestamp-threshold", "0"])
        .arg(artifact)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn signed_and_attested_entries_verify_offline_in_custody_and_sigstore_js() {
    let dir = tempdir();
    let d = dir.path();
    let data = d.join("log");
    let log = Daemon::log(&data, &[]);
    let token = data.with_extension("token");
    let token = token.to_str().unwrap();
    keygen(d, "k", "ecdsa-p256");
    fs::write(d.join("app.bin"), b"release 7").unwrap();

    let (code, out, err) = run(custody(d).args([
        "sign",
        "app.bin",
        "--key",
        "k.key",
        "--log",
        &log.url,
        "--log-token-file",
        token,
        "-o",
        "json",
    ]));
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert!(doc["tlog"]["logIndex"].is_i64(), "{out}");
    fs::write(
        d.join("p.json"),
        br#"{"buildDefinition":{"buildType":"https://example.com/t"}}"#,
    )
    .unwrap();
    let (code, _, err) = run(custody(d).args([
        "attest",
        "app.bin",
        "--key",
        "k.key",
        "--type",
        "https://slsa.dev/provenance/v1",
        "--predicate",
        "p.json",
        "--log",
        &log.url,
        "--log-token-file",
        token,
    ]));
    assert_eq!(code, 0, "{err}");

    let (code, _, err) = run(custody(d).args([
        "trust-root",
        "export",
        "--server",
        &log.url,
        "--out",
        "tr.json",
    ]));
    assert_eq!(code, 0, "{err}");
    for bundle in ["app.bin.sigstore.json", "app.bin.intoto.sigstore.json"] {
        let (code, out, err) = run(custody(d).args([
            "verify",
            "app.bin",
            "--bundle",
            bundle,
            "--key",
            "k.pub",
            "--trusted-root",
            "tr.json",
            "-o",
            "json",
        ]));
        assert_eq!(code, 0, "{bundle}: {err}");
        let doc: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["tlog"]["status"], "verified", "{out}");
        let (ok, text) = sigstore_js(
            &d.join(bundle),
            &d.join("tr.json"),
            &d.join("k.pub"),
            &d.join("app.bin"),
        );
        assert!(ok, "sigstore-js on {bundle}: {text}");
    }

    // `custody build --log`: the provenance is logged at once and verifies with the trust root.
    fs::create_dir(d.join("proj")).unwrap();
    fs::copy(d.join("k.key"), d.join("proj/k.key")).unwrap();
    let (code, out, err) = run(custody(&d.join("proj")).args([
        "build",
        "--key",
        "k.key",
        "--artifacts",
        "out.bin",
        "--log",
        &log.url,
        "--log-token-file",
        token,
        "-o",
        "json",
        "--",
        "sh",
        "-c",
        "echo built > out.bin",
    ]));
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert!(doc["tlog"]["logIndex"].is_i64(), "{out}");
    let (code, out, err) = run(custody(d).args([
        "verify",
        "proj/out.bin",
        "--bundle",
        "proj/out.bin.intoto.sigstore.json",
        "--key",
        "k.pub",
        "--trusted-root",
        "tr.json",
        "-o",
        "json",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"verified\""), "{out}");

    // A log entry that does not match the bundle is refused by both verifiers.
    let mut doc: Value =
        serde_json::from_str(&fs::read_to_string(d.join("app.bin.sigstore.json")).unwrap())
            .unwrap();
    let entry = &mut doc["verificationMaterial"]["tlogEntries"][0];
    let other: Value = {
        fs::write(d.join("other.bin"), b"another").unwrap();
        let (code, _, err) = run(custody(d).args([
            "sign",
            "other.bin",
            "--key",
            "k.key",
            "--log",
            &log.url,
            "--log-token-file",
            token,
        ]));
        assert_eq!(code, 0, "{err}");
        let b: Value =
            serde_json::from_str(&fs::read_to_string(d.join("other.bin.sigstore.json")).unwrap())
                .unwrap();
        b["verificationMaterial"]["tlogEntries"][0].clone()
    };
    *entry = other;
    fs::write(d.join("swapped.json"), doc.to_string()).unwrap();
    assert_fails(
        run(custody(d).args([
            "verify",
            "app.bin",
            "--bundle",
            "swapped.json",
            "--key",
            "k.pub",
            "--trusted-root",
            "tr.json",
        ])),
        1,
        &["swapped.json"],
    );
    let (ok, text) = sigstore_js(
        &d.join("swapped.json"),
        &d.join("tr.json"),
        &d.join("k.pub"),
        &d.join("app.bin"),
    );
    assert!(
        !ok,
        "sigstore-js accepted another artifact's log entry: {text}"
    );
    // Without the trust root, custody says plainly that the entry was not checked.
    let (code, out, _) =
        run(custody(d).args(["verify", "app.bin", "--key", "k.pub", "-o", "json"]));
    assert_eq!(code, 0);
    assert!(out.contains("not_checked"), "{out}");
}

#[test]
fn a_log_that_refuses_or_is_down_fails_the_signing_and_writes_nothing() {
    let dir = tempdir();
    let d = dir.path();
    let data = d.join("log");
    let log = Daemon::log(&data, &[]);
    keygen(d, "k", "ecdsa-p256");
    fs::write(d.join("app.bin"), b"x").unwrap();
    fs::write(d.join("wrong.token"), "nope\n").unwrap();
    assert_fails(
        run(custody(d).args([
            "sign",
            "app.bin",
            "--key",
            "k.key",
            "--log",
            &log.url,
            "--log-token-file",
            "wrong.token",
        ])),
        2,
        &["refused", "401"],
    );
    assert!(
        !d.join("app.bin.sigstore.json").exists(),
        "a bundle was written for a refused entry"
    );
    drop(log);
    assert_fails(
        run(custody(d).args([
            "sign",
            "app.bin",
            "--key",
            "k.key",
            "--log",
            "http://127.0.0.1:9",
        ])),
        2,
        &["127.0.0.1:9"],
    );
    assert!(!d.join("app.bin.sigstore.json").exists());
}

/// Attack 5: the trust root says the log's key was retired in 2020, yet a Rekor v2 bundle (no
/// signed entry timestamp, no RFC 3161 timestamp) logged under it verified. With no trusted
/// time the key is checked at the current time, so `custody verify` refuses it; the same
/// bundle verifies under the same key with an open-ended window.
#[test]
fn attack_retired_log_key_vouches_for_rekor_v2_entry() {
    let dir = tempdir();
    let d = dir.path();
    let data = d.join("log");
    let log = Daemon::log(&data, &[]);
    let token = data.with_extension("token");
    keygen(d, "k", "ecdsa-p256");
    fs::write(d.join("app.bin"), b"release 9").unwrap();
    let (code, _, err) = run(custody(d).args([
        "sign",
        "app.bin",
        "--key",
        "k.key",
        "--log",
        &log.url,
        "--log-token-file",
        token.to_str().unwrap(),
    ]));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(custody(d).args([
        "trust-root",
        "export",
        "--server",
        &log.url,
        "--out",
        "tr.json",
    ]));
    assert_eq!(code, 0, "{err}");
    let bundle: Value =
        serde_json::from_str(&fs::read_to_string(d.join("app.bin.sigstore.json")).unwrap())
            .unwrap();
    let entry = &bundle["verificationMaterial"]["tlogEntries"][0];
    assert!(entry.get("inclusionPromise").is_none(), "{entry}");
    assert!(
        bundle["verificationMaterial"]
            .get("timestampVerificationData")
            .is_none_or(|t| t["rfc3161Timestamps"].as_array().is_none_or(Vec::is_empty)),
        "{bundle}"
    );

    let mut root: Value =
        serde_json::from_str(&fs::read_to_string(d.join("tr.json")).unwrap()).unwrap();
    let log_id_b64 = root["tlogs"][0]["logId"]["keyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let log_id = hex::encode(custody_core::encoding::base64_decode_strict(&log_id_b64).unwrap());
    let verify = |root_file: &str| {
        run(custody(d).args([
            "verify",
            "app.bin",
            "--key",
            "k.pub",
            "--trusted-root",
            root_file,
        ]))
    };
    root["tlogs"][0]["publicKey"]["validFor"] =
        serde_json::json!({"start": "2019-01-01T00:00:00Z", "end": "2020-01-01T00:00:00Z"});
    fs::write(d.join("retired.json"), root.to_string()).unwrap();
    assert_fails(
        verify("retired.json"),
        1,
        &[
            &log_id,
            "2019-01-01T00:00:00Z to 2020-01-01T00:00:00Z",
            "not valid now",
            "update the trusted root",
        ],
    );

    root["tlogs"][0]["publicKey"]["validFor"] =
        serde_json::json!({"start": "2019-01-01T00:00:00Z"});
    fs::write(d.join("current.json"), root.to_string()).unwrap();
    let (code, out, err) = verify("current.json");
    assert_eq!(code, 0, "{out}{err}");
}
