//! `custody key rotate` against a real release server whose gate trusts its own log:
//! evidence the old key signed and logged before the rotation keeps counting (history does not
//! break), evidence re-signed with the new key counts, and anything the old key signs after it
//! retired does not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod logd;

use std::fs;
use std::path::Path;

use common::{custody, run};
use custody_core::digest::Sha256Digest;
use logd::Daemon;
use serde_json::{Value, json};

fn key_id(dir: &Path, public: &str) -> String {
    let (code, out, err) = run(custody(dir).args(["key", "inspect", public, "-o", "json"]));
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    v["keyId"].as_str().unwrap().to_owned()
}

fn token(name: &str) -> String {
    format!("rotation-token-{name}")
}

fn serve(d: &Path, extra: &[&str]) -> Daemon {
    let mut args = vec![
        "serve".to_owned(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--data-dir".into(),
        d.join("srv").to_string_lossy().into_owned(),
        "--write-token-file".into(),
        d.join("write.token").to_string_lossy().into_owned(),
        "--release-config".into(),
        d.join("release.toml").to_string_lossy().into_owned(),
        "--release-key".into(),
        d.join("release.key").to_string_lossy().into_owned(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Daemon::start_with_env(&refs, &[("CUSTODY_PASSWORD", common::PASSWORD)])
}

/// Builds `name` with provenance signed by `key` and logged in the server's log; pushes it.
fn build(d: &Path, url: &str, name: &str, key: &str) -> Sha256Digest {
    let proj = d.join(name);
    fs::create_dir_all(&proj).unwrap();
    let (code, _, err) = run(custody(&proj).args([
        "build",
        "--key",
        d.join(key).to_str().unwrap(),
        "--artifacts",
        "app.bin",
        "--log",
        url,
        "--log-token-file",
        d.join("write.token").to_str().unwrap(),
        "--",
        "sh",
        "-c",
        &format!("echo {name} > app.bin"),
    ]));
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(
        d,
        url,
        "ci",
        &["-o", "json", "push", proj.join("app.bin").to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    v["digest"].as_str().unwrap().parse().unwrap()
}

/// `custody ARGS` in `d` as principal `who` of the release server at `url`.
fn cli(d: &Path, url: &str, who: &str, args: &[&str]) -> (i32, String, String) {
    run(custody(d)
        .env("CUSTODY_SERVER", url)
        .env("CUSTODY_TOKEN", token(who))
        .args(args))
}

fn promote(d: &Path, url: &str, digest: &Sha256Digest, env: &str) -> (i32, String, String) {
    cli(d, url, "ci", &["promote", &digest.to_string(), "--to", env])
}

#[test]
fn rotation_keeps_history_and_retires_the_old_key() {
    let tmp = common::tempdir();
    let d = tmp.path();
    for k in ["release", "ci", "ci-new", "sec"] {
        common::keygen(d, k, "ecdsa-p256");
    }
    let (old, new) = (key_id(d, "ci.pub"), key_id(d, "ci-new.pub"));
    let (code, _, err) = run(custody(d).args(["policy", "init", "policy", "--trust-key-id", &old]));
    assert_eq!(code, 0, "{err}");
    let mut data: Value =
        serde_json::from_slice(&fs::read(d.join("policy/data.json")).unwrap()).unwrap();
    data["custody"]["config"]["signers"]["keys"] = json!([old, new]);
    data["custody"]["config"]["provenance"]["clean"] = json!(false);
    data["custody"]["config"]["tlog"] = json!(true);
    fs::write(d.join("policy/data.json"), data.to_string()).unwrap();
    fs::write(
        d.join("release.toml"),
        format!(
            r#"
[[environment]]
name = "dev"
policy = "policy"
[[environment]]
name = "staging"
from = "dev"
policy = "policy"
[[principal]]
name = "ci"
token_sha256 = "{}"
roles = ["builder", "release-manager"]
keys = ["ci.pub", "ci-new.pub"]
[[principal]]
name = "sec"
token_sha256 = "{}"
roles = ["admin", "auditor"]
keys = ["sec.pub"]
"#,
            Sha256Digest::of(token("ci").as_bytes()).hex(),
            Sha256Digest::of(token("sec").as_bytes()).hex()
        ),
    )
    .unwrap();
    fs::write(d.join("write.token"), logd::TOKEN).unwrap();

    // First start makes the log key; the gate then trusts the server's own log.
    let first = serve(d, &[]);
    let (code, _, err) = run(custody(d).args([
        "trust-root",
        "export",
        "--server",
        &first.url,
        "--out",
        "tr.json",
    ]));
    assert_eq!(code, 0, "{err}");
    first.terminate();
    let server = serve(
        d,
        &["--gate-trusted-root", d.join("tr.json").to_str().unwrap()],
    );
    let url = server.url.clone();

    let r1 = build(d, &url, "r1", "ci.key");
    let (code, _, err) = promote(d, &url, &r1, "dev");
    assert_eq!(code, 0, "{err}");

    // Rotate: the old key retires now; r1's evidence is re-signed with the new key.
    let (code, out, err) = cli(
        d,
        &url,
        "sec",
        &[
            "-o",
            "json",
            "key",
            "rotate",
            "--old",
            "ci.key",
            "--new",
            "ci-new.key",
            "--resign",
            &r1.to_string(),
            "--reason",
            "yearly rotation",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let rotated: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        rotated["resigned"].as_array().unwrap().len(),
        1,
        "{rotated}"
    );
    assert_eq!(
        rotated["rotation"]["retired"][0]["key_id"], old,
        "{rotated}"
    );

    // Signed and logged before the retirement: still counts.
    let (code, _, err) = promote(d, &url, &r1, "staging");
    assert_eq!(code, 0, "{err}");
    // Signed by the retired key afterwards: does not count.
    let r2 = build(d, &url, "r2", "ci.key");
    let (code, _, err) = promote(d, &url, &r2, "dev");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("retired"), "{err}");
    // The successor signs what comes next.
    let r3 = build(d, &url, "r3", "ci-new.key");
    let (code, _, err) = promote(d, &url, &r3, "dev");
    assert_eq!(code, 0, "{err}");

    // History of r1 verifies offline with both keys: the old signature and the re-signed one.
    let (code, out, err) = cli(
        d,
        &url,
        "sec",
        &[
            "-o",
            "json",
            "history",
            &r1.to_string(),
            "--release-key",
            "release.pub",
            "--trusted-key",
            "ci.pub",
            "--trusted-key",
            "ci-new.pub",
            "--trusted-root",
            "tr.json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let h: Value = serde_json::from_str(&out).unwrap();
    let signed: Vec<&Value> = h["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["event"]
                .as_str()
                .unwrap()
                .starts_with("SLSA provenance signed by")
        })
        .collect();
    assert_eq!(signed.len(), 2, "{h}");
    assert!(signed.iter().all(|e| e["verified"] == true), "{h}");
}
