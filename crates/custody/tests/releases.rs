//! The whole release story with real processes: a `custody serve --release-config` server,
//! one `custody deploy --watch` agent per environment, and the CLI.
//!
//! Three releases are built (`custody build`, SLSA provenance signed by the CI's key; release
//! 3 by a second CI key), pushed, promoted dev → staging → prod with two approvals each; a
//! promotion with one approval and an approval by the builder are refused; every release is
//! deployed by the agents. Then the key that signed release 3 is revoked: the server
//! quarantines release 3 and rolls every environment back to release 2, the agents activate
//! it within a bounded time, release 3 cannot be promoted again, the incident and the metrics
//! show it, and `custody history` tells the story (and verifies offline).
//!
//! Run on the embedded store and on PostgreSQL (a private server started by the test).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod logd;
#[path = "../../custody-log/tests/common/pg.rs"]
mod pg;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{custody, run};
use custody_core::digest::Sha256Digest;
use logd::Daemon;
use serde_json::{Value, json};

const PEOPLE: [(&str, &str); 7] = [
    ("ci", "builder approver"),
    ("ci2", "builder"),
    ("rm", "release-manager"),
    ("alice", "approver"),
    ("carol", "approver"),
    ("sec", "admin"),
    ("aud", "auditor"),
];

fn token(name: &str) -> String {
    format!("token-of-{name}-0123456789")
}

fn keygen(dir: &Path, name: &str) {
    common::keygen(dir, name, "ecdsa-p256");
}

fn key_id(dir: &Path, public: &str) -> String {
    let (code, out, err) = run(custody(dir).args(["key", "inspect", public, "-o", "json"]));
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    v["keyId"].as_str().unwrap().to_owned()
}

struct Story {
    dir: PathBuf,
    server: Daemon,
    agents: Vec<Child>,
}

impl Drop for Story {
    fn drop(&mut self) {
        for a in &mut self.agents {
            let _ = a.kill();
            let _ = a.wait();
        }
    }
}

impl Story {
    fn d(&self) -> &Path {
        &self.dir
    }

    /// Runs the CLI as `who` against the server.
    fn cli(&self, who: &str, args: &[&str]) -> (i32, String, String) {
        run(custody(&self.dir)
            .env("CUSTODY_SERVER", &self.server.url)
            .env("CUSTODY_TOKEN", token(who))
            .args(args))
    }

    fn json(&self, who: &str, args: &[&str]) -> Value {
        let mut all = vec!["-o", "json"];
        all.extend_from_slice(args);
        let (code, out, err) = self.cli(who, &all);
        assert_eq!(code, 0, "custody {args:?}: {err}");
        serde_json::from_str(&out).unwrap()
    }

    fn current(&self, env: &str) -> Option<String> {
        let target = self.dir.join("srv").join(env).join("current");
        fs::read_link(target)
            .ok()
            .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
    }

    /// Waits until `env`'s agent has activated `digest`; returns how long it took.
    fn wait_deployed(&self, env: &str, digest: &Sha256Digest, within: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if self.current(env).as_deref() == Some(digest.hex().as_str()) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < within,
                "{env} did not activate {digest} within {within:?} (current: {:?})",
                self.current(env)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn setup(database: Option<&str>) -> Story {
    let tmp = tempfile::tempdir().unwrap().keep();
    let d = tmp.as_path();
    fs::create_dir_all(d.join("keys")).unwrap();
    keygen(&d.join("keys"), "release");
    for (name, _) in PEOPLE {
        keygen(&d.join("keys"), name);
    }
    let ci = key_id(d, "keys/ci.pub");
    let ci2 = key_id(d, "keys/ci2.pub");
    let (code, _, err) = run(custody(d).args(["policy", "init", "policy", "--trust-key-id", &ci]));
    assert_eq!(code, 0, "{err}");
    let mut data: Value =
        serde_json::from_slice(&fs::read(d.join("policy/data.json")).unwrap()).unwrap();
    data["custody"]["config"]["signers"]["keys"] = json!([ci, ci2]);
    data["custody"]["config"]["provenance"]["clean"] = json!(false);
    data["custody"]["config"]["deny_rejected"] = json!(false);
    fs::write(d.join("policy/data.json"), data.to_string()).unwrap();

    let mut config = String::from(
        r#"
[[environment]]
name = "dev"
policy = "policy"
stage = "development"
target = "dir:srv/dev"

[[environment]]
name = "staging"
from = "dev"
policy = "policy"
stage = "release-candidate"
target = "dir:srv/staging"

[[environment]]
name = "prod"
from = "staging"
policy = "policy"
stage = "production"
target = "dir:srv/prod"
approvals = { required = 2, group = "release-approvers", max_age = "1d" }
"#,
    );
    for (name, roles) in PEOPLE {
        let roles: Vec<String> = roles.split(' ').map(|r| format!("{r:?}")).collect();
        let groups = if roles.iter().any(|r| r == "\"approver\"") {
            r#"["release-approvers"]"#
        } else {
            "[]"
        };
        config.push_str(&format!(
            "\n[[principal]]\nname = {name:?}\ntoken_sha256 = {:?}\nroles = [{}]\ngroups = {groups}\nkeys = [\"keys/{name}.pub\"]\n",
            Sha256Digest::of(token(name).as_bytes()).hex(),
            roles.join(", "),
        ));
    }
    fs::write(d.join("release.toml"), config).unwrap();
    fs::write(d.join("write.token"), logd::TOKEN).unwrap();
    let data_dir = d.join("server");
    let mut args = vec![
        "serve".to_owned(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--data-dir".into(),
        data_dir.to_string_lossy().into_owned(),
        "--write-token-file".into(),
        d.join("write.token").to_string_lossy().into_owned(),
        "--release-config".into(),
        d.join("release.toml").to_string_lossy().into_owned(),
        "--release-key".into(),
        d.join("keys/release.key").to_string_lossy().into_owned(),
    ];
    if let Some(url) = database {
        args.push("--database".into());
        args.push(url.to_owned());
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Daemon::start_with_env(&refs, &[("CUSTODY_PASSWORD", common::PASSWORD)]);
    let mut story = Story {
        dir: tmp,
        server,
        agents: Vec::new(),
    };
    for env in ["dev", "staging", "prod"] {
        let target = format!("dir:{}", story.d().join("srv").join(env).display());
        let child = Command::new(assert_cmd::cargo::cargo_bin("custody"))
            .current_dir(story.d())
            .env("CUSTODY_PASSWORD", common::PASSWORD)
            .env("CUSTODY_TOKEN", token("rm"))
            .env("RUST_LOG", "info")
            .args([
                "deploy",
                env,
                "--server",
                &story.server.url,
                "--target",
                &target,
                "--release-key",
                "keys/release.pub",
                "--watch",
                "--interval",
                "1s",
                "--agent-name",
                &format!("agent-{env}"),
                "--state",
                &story.d().join("state").join(env).to_string_lossy(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                fs::File::create(story.d().join(format!("agent-{env}.log"))).unwrap(),
            ))
            .spawn()
            .unwrap();
        story.agents.push(child);
    }
    story
}

/// Builds release `n` with `key` (provenance signed by it) and pushes it with its evidence.
fn build_and_push(s: &Story, n: u32, key: &str, who: &str) -> Sha256Digest {
    let proj = s.d().join(format!("r{n}"));
    fs::create_dir_all(&proj).unwrap();
    let key_path = s.d().join("keys").join(format!("{key}.key"));
    let (code, _, err) = run(custody(&proj).args([
        "build",
        "--key",
        key_path.to_str().unwrap(),
        "--artifacts",
        "app.bin",
        "--",
        "sh",
        "-c",
        &format!("echo release {n} > app.bin"),
    ]));
    assert_eq!(code, 0, "{err}");
    let artifact = proj.join("app.bin");
    let pushed = s.json(who, &["push", artifact.to_str().unwrap()]);
    let digest: Sha256Digest = pushed["digest"].as_str().unwrap().parse().unwrap();
    assert_eq!(digest, Sha256Digest::of(&fs::read(&artifact).unwrap()));
    assert_eq!(pushed["evidence"].as_array().unwrap().len(), 1, "{pushed}");
    digest
}

fn approve(s: &Story, who: &str, digest: &Sha256Digest) -> (i32, String, String) {
    let key = s.d().join("keys").join(format!("{who}.key"));
    s.cli(
        who,
        &[
            "approve",
            &digest.to_string(),
            "--env",
            "prod",
            "--key",
            key.to_str().unwrap(),
        ],
    )
}

fn release(s: &Story, n: u32, key: &str) -> Sha256Digest {
    let digest = build_and_push(s, n, key, key);
    let d = digest.to_string();
    for env in ["dev", "staging"] {
        let r = s.json("rm", &["promote", &d, "--to", env]);
        assert_eq!(r["kind"], "promotion");
    }
    let (code, _, err) = approve(s, "alice", &digest);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = approve(s, "carol", &digest);
    assert_eq!(code, 0, "{err}");
    let r = s.json("rm", &["promote", &d, "--to", "prod"]);
    assert_eq!(r["environment"], "prod");
    digest
}

fn metric(text: &str, line_prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no metric {line_prefix} in\n{text}"))
}

fn story(database: Option<&str>) {
    let s = setup(database);
    let d = s.d().to_path_buf();

    // Release 1: the refusals first.
    let r1 = build_and_push(&s, 1, "ci", "ci");
    let r1s = r1.to_string();
    // Not passed staging yet.
    let (code, _, err) = s.cli("rm", &["promote", &r1s, "--to", "prod"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("has not passed staging"), "{err}");
    s.json("rm", &["promote", &r1s, "--to", "dev"]);
    s.json("rm", &["promote", &r1s, "--to", "staging"]);
    // Only a release manager may promote.
    let (code, _, err) = s.cli("alice", &["promote", &r1s, "--to", "prod"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("release-manager role"), "{err}");
    // The builder cannot approve what it built.
    let (code, _, err) = approve(&s, "ci", &r1);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("separation of duties"), "{err}");
    // Approvals for an unknown digest or environment are refused clearly.
    let unknown = Sha256Digest::of(b"never pushed");
    let (code, _, err) = approve(&s, "alice", &unknown);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown artifact"), "{err}");
    let key = d.join("keys/alice.key");
    let (code, _, err) = s.cli(
        "alice",
        &[
            "approve",
            &r1s,
            "--env",
            "qa",
            "--key",
            key.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown environment \"qa\""), "{err}");
    // One approval is not enough.
    let (code, _, err) = approve(&s, "alice", &r1);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = s.cli("rm", &["promote", &r1s, "--to", "prod"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("approvals-missing"), "{err}");
    let (code, _, err) = approve(&s, "carol", &r1);
    assert_eq!(code, 0, "{err}");
    let p = s.json("rm", &["promote", &r1s, "--to", "prod"]);
    assert_eq!(p["seq"], 1);
    // A retried promotion (same request id) is not a second one.
    let again = s.json(
        "rm",
        &[
            "promote",
            &r1s,
            "--to",
            "prod",
            "--request-id",
            "fixed-id-1",
        ],
    );
    assert_eq!(again["seq"], 1);
    for env in ["dev", "staging", "prod"] {
        s.wait_deployed(env, &r1, Duration::from_secs(20));
    }

    let r2 = release(&s, 2, "ci");
    let r3 = release(&s, 3, "ci2");
    for env in ["dev", "staging", "prod"] {
        s.wait_deployed(env, &r3, Duration::from_secs(20));
    }
    let audit = s.json(
        "aud",
        &[
            "audit",
            "prod",
            "--release-key",
            "keys/release.pub",
            "--target",
            &format!("dir:{}", d.join("srv/prod").display()),
        ],
    );
    assert_eq!(audit["verified"], true, "{audit}");

    // Revoke the key that signed release 3.
    let ci2 = key_id(&d, "keys/ci2.pub");
    let sec_key = d.join("keys/sec.key");
    let revoked = s.json(
        "sec",
        &[
            "revoke",
            &format!("key:{ci2}"),
            "--reason",
            "CI runner 2 compromised",
            "--key",
            sec_key.to_str().unwrap(),
        ],
    );
    assert_eq!(
        revoked["reconcile"]["quarantined"],
        json!([r3.to_string()]),
        "{revoked}"
    );
    let rolled = revoked["reconcile"]["rolled_back"].as_array().unwrap();
    assert_eq!(rolled.len(), 3, "{revoked}");
    for env in ["dev", "staging", "prod"] {
        let took = s.wait_deployed(env, &r2, Duration::from_secs(10));
        eprintln!("{env} back on release 2 after {took:?}");
    }
    // Release 3 cannot come back.
    let (code, _, err) = s.cli("rm", &["promote", &r3.to_string(), "--to", "dev"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("quarantined"), "{err}");
    // Only an admin may revoke.
    let rm_key = d.join("keys/rm.key");
    let (code, _, err) = s.cli(
        "rm",
        &[
            "revoke",
            &format!("digest:{r2}"),
            "--reason",
            "x",
            "--key",
            rm_key.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{err}");

    // The incident is recovered once the agents report the rollback.
    let start = Instant::now();
    let incident = loop {
        let status = s.json("aud", &["status", "--incidents"]);
        let i = status["incidents"]["incidents"][0].clone();
        if i["status"] == "recovered" {
            break i;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "incident not recovered: {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(incident["affected_digests"], json!([r3.to_string()]));
    assert_eq!(incident["recoveries"].as_array().unwrap().len(), 3);

    let (status, _, body) = logd::get(&format!("{}/metrics", s.server.url));
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    assert_eq!(
        metric(&text, "custody_rollbacks_total{environment=\"prod\"}"),
        1.0
    );
    assert_eq!(
        metric(&text, "custody_promotions_total{environment=\"prod\"}"),
        3.0
    );
    assert!(
        metric(&text, "custody_mean_time_to_recover_seconds") > 0.0,
        "{text}"
    );
    assert!(
        metric(&text, "custody_mean_time_to_detect_seconds") > 0.0,
        "{text}"
    );
    assert_eq!(metric(&text, "custody_quarantined_artifacts"), 1.0);
    assert!(metric(&text, "custody_denials_total{code=\"approvals-missing\"}") >= 1.0);

    // History tells the story, and verifies offline from a saved copy.
    let saved = d.join("r3-history.json");
    let h = s.json(
        "aud",
        &[
            "history",
            &r3.to_string(),
            "--release-key",
            "keys/release.pub",
            "--trusted-key",
            "keys/ci2.pub",
            "--trusted-key",
            "keys/alice.pub",
            "--trusted-key",
            "keys/carol.pub",
            "--save",
            saved.to_str().unwrap(),
        ],
    );
    assert_eq!(h["verified"], true, "{h}");
    let events: Vec<String> = h["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect();
    let all = events.join("\n");
    for needle in [
        "pushed by ci2",
        "SLSA provenance signed by",
        "[REVOKED",
        "promotion into dev as release 3",
        "promotion into prod as release 3",
        "approval signed by",
        "deployed to prod",
        "revocation #1 of key:",
        "quarantined (revocation #1)",
    ] {
        assert!(all.contains(needle), "history lacks {needle:?}:\n{all}");
    }
    let h2 = s.json(
        "aud",
        &[
            "history",
            &r2.to_string(),
            "--release-key",
            "keys/release.pub",
        ],
    );
    let all2 = h2["timeline"].to_string();
    assert!(all2.contains("rollback into prod as release 4"), "{all2}");
    // Offline: no server.
    let (code, out, err) = run(custody(&d).args([
        "history",
        "--from",
        saved.to_str().unwrap(),
        "--release-key",
        "keys/release.pub",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("quarantined"), "{out}");
    // A tampered saved history does not verify.
    let mut doc: Value = serde_json::from_slice(&fs::read(&saved).unwrap()).unwrap();
    doc["releases"][0]["seq"] = json!(7);
    fs::write(&saved, doc.to_string()).unwrap();
    let (code, _, err) = run(custody(&d).args([
        "history",
        "--from",
        saved.to_str().unwrap(),
        "--release-key",
        "keys/release.pub",
    ]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("do not verify"), "{err}");

    // Prod is audited clean on release 2.
    let audit = s.json(
        "aud",
        &[
            "audit",
            "prod",
            "--release-key",
            "keys/release.pub",
            "--target",
            &format!("dir:{}", d.join("srv/prod").display()),
        ],
    );
    assert_eq!(audit["digest"], r2.to_string(), "{audit}");
    assert_eq!(audit["verified"], true, "{audit}");
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn release_story_on_the_embedded_store() {
    story(None);
}

#[test]
fn release_story_on_postgres() {
    let server = pg::PgServer::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let url = runtime.block_on(server.create_database("releases"));
    story(Some(&url));
}
