//! Configuration reloads without a restart, against a real `custody serve --release-config`:
//! a policy change applied by SIGHUP turns an allowed promotion into a denied one and back;
//! principals added and removed by `custody admin reload` (POST /api/v1/admin/reload) take
//! effect at once; a broken configuration (bad TOML, an unknown key, a policy that does not
//! compile) is refused with the line to fix and the old one keeps serving; only admins may
//! reload; and a key rotation is one command (no file edit, no restart).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod release_world;

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use custody_core::digest::Sha256Digest;
use release_world::{Options, Story, build, build_and_push, key_id, push_to, setup_with, token};
use serde_json::{Value, json};

fn world() -> Story {
    setup_with(&Options::default())
}

/// `custody_config_reload_total{result="…"}` from /metrics (0 when absent).
fn reloads(s: &Story, result: &str) -> u64 {
    let (status, body) = s.get("aud", "/metrics");
    assert_eq!(status, 200);
    let text = body.as_str().unwrap().to_owned();
    let prefix = format!("custody_config_reload_total{{result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// Sends SIGHUP to the server and waits until the reload it causes is counted.
fn sighup(s: &Story, result: &str) {
    let before = reloads(s, result);
    let pid = s.server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    while reloads(s, result) == before {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no {result} reload counted after SIGHUP"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

const BLOCK: &str = "package custody.gate\n\ndeny contains {\"code\": \"blocked-by-reload\", \"msg\": \"blocked for the reload test\", \"fix\": \"remove block.rego\"} if true\n";

fn promote(s: &Story, digest: &Sha256Digest, env: &str) -> (i32, String, String) {
    s.cli("rm", &["promote", &digest.to_string(), "--to", env])
}

#[test]
fn a_policy_change_applied_by_sighup_denies_then_allows_without_a_restart() {
    let s = world();
    let pid = s.server.child.id();
    let r1 = build_and_push(&s, 1, "ci", "ci");
    let r2 = build_and_push(&s, 2, "ci", "ci");
    let (code, _, err) = promote(&s, &r1, "dev");
    assert_eq!(code, 0, "{err}");

    fs::write(s.d().join("policy/block.rego"), BLOCK).unwrap();
    sighup(&s, "ok");
    let (code, _, err) = promote(&s, &r2, "dev");
    assert_eq!(code, 1, "the new policy denies: {err}");
    assert!(err.contains("blocked-by-reload"), "{err}");

    fs::remove_file(s.d().join("policy/block.rego")).unwrap();
    sighup(&s, "ok");
    let (code, _, err) = promote(&s, &r2, "dev");
    assert_eq!(code, 0, "the policy without the block allows again: {err}");
    assert_eq!(s.server.child.id(), pid, "no restart");
}

#[test]
fn principals_added_and_removed_by_the_admin_api_take_effect_at_once() {
    let s = world();
    let config = fs::read_to_string(s.d().join("release.toml")).unwrap();
    assert_eq!(s.get("dave", "/api/v1/environments").0, 401);
    assert_eq!(s.get("ci2", "/api/v1/environments").0, 200);

    // dave joins; ci2 leaves.
    let start = config.find("\n[[principal]]\nname = \"ci2\"").unwrap();
    let end = start + 1 + config[start + 1..].find("\n[[principal]]").unwrap();
    let mut changed = format!("{}{}", &config[..start], &config[end..]);
    changed.push_str(&format!(
        "\n[[principal]]\nname = \"dave\"\ntoken_sha256 = {:?}\nroles = [\"auditor\"]\n",
        Sha256Digest::of(token("dave").as_bytes()).hex()
    ));
    fs::write(s.d().join("release.toml"), changed).unwrap();

    // Only an admin may reload.
    let (status, answer) = s.post("rm", "/api/v1/admin/reload", b"");
    assert_eq!(status, 403, "{answer}");
    assert_eq!(
        s.get("dave", "/api/v1/environments").0,
        401,
        "not reloaded by rm"
    );

    let answer = s.json("sec", &["admin", "reload"]);
    assert_eq!(answer["reloaded"], true, "{answer}");
    assert_eq!(
        answer["changes"]["principals_added"],
        json!(["dave"]),
        "{answer}"
    );
    assert_eq!(
        answer["changes"]["principals_removed"],
        json!(["ci2"]),
        "{answer}"
    );
    let ci2_key = key_id(s.d(), "keys/ci2.pub");
    assert_eq!(
        answer["changes"]["trusted_keys_removed"],
        json!([ci2_key]),
        "{answer}"
    );
    assert_eq!(answer["changes"]["policies"], json!({}), "{answer}");

    assert_eq!(s.get("dave", "/api/v1/environments").0, 200);
    assert_eq!(s.get("ci2", "/api/v1/environments").0, 401);

    // The human form names the changes.
    let (code, out, err) = s.cli("sec", &["admin", "reload"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("no change"), "{out}");
}

#[test]
fn a_broken_configuration_is_refused_with_the_line_and_the_old_one_keeps_serving() {
    let s = world();
    let r1 = build_and_push(&s, 1, "ci", "ci");
    let good = fs::read_to_string(s.d().join("release.toml")).unwrap();

    // Bad TOML: the error names the file and the line.
    let broken = format!("{good}\n[[principal]]\nname = \"eve\nroles = []\n");
    let bad_line = broken.lines().position(|l| l == "name = \"eve").unwrap() + 1;
    fs::write(s.d().join("release.toml"), &broken).unwrap();
    let (code, _, err) = s.cli("sec", &["admin", "reload"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("release.toml"), "{err}");
    assert!(err.contains(&format!("line {bad_line}")), "{err}");
    assert!(err.contains("old configuration stays in force"), "{err}");

    // An unknown key.
    fs::write(
        s.d().join("release.toml"),
        good.replacen(
            "stage = \"development\"",
            "stage = \"development\"\ncolour = \"red\"",
            1,
        ),
    )
    .unwrap();
    let (status, answer) = s.post("sec", "/api/v1/admin/reload", b"");
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("colour"),
        "{answer}"
    );

    // A policy that does not compile (the config itself is fine again), by SIGHUP.
    fs::write(s.d().join("release.toml"), &good).unwrap();
    fs::write(
        s.d().join("policy/block.rego"),
        "package custody.gate\n\ndeny contains x if {\n",
    )
    .unwrap();
    sighup(&s, "refused");
    let (status, answer) = s.post("sec", "/api/v1/admin/reload", b"");
    assert_eq!(status, 422, "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(message.contains("policy"), "{message}");
    assert_eq!(reloads(&s, "refused"), 4);
    assert_eq!(reloads(&s, "ok"), 0);

    // The old configuration still serves: tokens and the policy that allows r1.
    assert_eq!(s.get("ci", "/api/v1/environments").0, 200);
    let (code, _, err) = promote(&s, &r1, "dev");
    assert_eq!(code, 0, "{err}");
}

#[test]
fn key_rotation_is_one_command_without_a_restart() {
    let s = world();
    let pid = s.server.child.id();
    release_world::keygen(&s.d().join("keys"), "ci-next");
    let (old, new) = (
        key_id(s.d(), "keys/ci.pub"),
        key_id(s.d(), "keys/ci-next.pub"),
    );
    // The policy counts the successor's signatures (a policy that lists key ids says which
    // keys count); the server does not trust the key yet: it is in no principal's keys.
    let mut data: Value =
        serde_json::from_slice(&fs::read(s.d().join("policy/data.json")).unwrap()).unwrap();
    data["custody"]["config"]["signers"]["keys"] = json!([old, new]);
    fs::write(s.d().join("policy/data.json"), data.to_string()).unwrap();
    let answer = s.json("sec", &["admin", "reload"]);
    assert_eq!(
        answer["changes"]["trusted_keys_added"],
        json!([]),
        "{answer}"
    );

    let before = build_and_push(&s, 1, "ci", "ci");
    let late_old = build_and_push(&s, 2, "ci", "ci");
    let by_new = push_to(&s, s.url(), &build(&s, 3, "ci-next"), "ci");
    let (code, _, err) = promote(&s, &by_new, "dev");
    assert_eq!(
        code, 1,
        "the successor is not trusted before the rotation: {err}"
    );

    let key = |k: &str| s.d().join("keys").join(k).to_string_lossy().into_owned();
    let (code, out, err) = s.cli(
        "sec",
        &[
            "-o",
            "json",
            "key",
            "rotate",
            "--old",
            &key("ci.key"),
            "--new",
            &key("ci-next.key"),
            "--overlap",
            "3s",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let rotated: Value = serde_json::from_str(&out).unwrap();
    let retire_at: chrono::DateTime<chrono::Utc> = rotated["rotation"]["rotation"]["retire_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    // At once, no file edit: the successor signs what counts; the old key still does until
    // its retirement instant.
    let (code, _, err) = promote(&s, &by_new, "dev");
    assert_eq!(code, 0, "signed with the new key: {err}");
    let (code, _, err) = promote(&s, &before, "dev");
    assert_eq!(code, 0, "signed with the old key during the overlap: {err}");

    // After the instant, the old key's signatures are refused.
    while chrono::Utc::now() <= retire_at {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, _, err) = promote(&s, &late_old, "dev");
    assert_eq!(code, 1, "signed with the retired key: {err}");
    assert!(err.contains("retired"), "{err}");
    // A reload of the files (which do not list the new key) keeps it.
    s.json("sec", &["admin", "reload"]);
    let r4 = push_to(&s, s.url(), &build(&s, 4, "ci-next"), "ci");
    let (code, _, err) = promote(&s, &r4, "dev");
    assert_eq!(code, 0, "the successor survives a reload: {err}");
    assert_eq!(s.server.child.id(), pid, "no restart");
}

/// `--policy` alone (no release config, so no admin principal: SIGHUP reloads it): a cached
/// allowed decision turns into a denial after the policy changes, without a restart.
#[test]
fn the_policy_gate_reloads_on_sighup_and_drops_cached_decisions() {
    let tmp = release_world::common::tempdir();
    let d = tmp.path();
    let policy = d.join("policy");
    fs::create_dir_all(&policy).unwrap();
    let rule = |condition: &str| {
        format!(
            "package custody.gate\n\ndeny contains {{\"code\": \"blocked-by-reload\", \"msg\": \"blocked\"}} if {condition}\n"
        )
    };
    fs::write(
        policy.join("gate.rego"),
        rule("input.artifact.digest == \"sha256:none\""),
    )
    .unwrap();
    let server =
        release_world::logd::Daemon::log(&d.join("data"), &["--policy", policy.to_str().unwrap()]);
    let digest = format!("sha256:{}", "ab".repeat(32));
    let evaluate = || {
        let (status, v) = release_world::try_http_bearer(
            &server.url,
            "POST",
            "/api/v1/gate/evaluate",
            release_world::logd::TOKEN,
            Some(json!({ "artifact": digest }).to_string().as_bytes()),
        )
        .unwrap();
        assert_eq!(status, 200, "{v}");
        v
    };
    assert_eq!(evaluate()["allowed"], true);
    assert_eq!(evaluate()["cached"], true);
    let before = evaluate()["policy_digest"].clone();

    fs::write(policy.join("gate.rego"), rule("true")).unwrap();
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let after = loop {
        let v = evaluate();
        if v["policy_digest"] != before {
            break v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no reload after SIGHUP"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(after["allowed"], false, "{after}");
    assert_eq!(after["cached"], false, "{after}");
}
