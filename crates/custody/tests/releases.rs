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

mod release_world;

use std::fs;
use std::time::{Duration, Instant};

use custody_core::digest::Sha256Digest;
use release_world::common::{custody, run};
use release_world::{approve, build_and_push, key_id, logd, pg, release, setup};
use serde_json::{Value, json};

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

    let (status, _, body) = logd::get(&format!("{}/metrics", s.url()));
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
    let url = server.create_database("releases");
    story(Some(&url));
}
