//! Two `custody serve --policy` replicas on one real PostgreSQL (a private server started by
//! the test): evidence pushed to one is decided on the other, which reuses the first one's
//! verification result from the store; an invalidation or new evidence on one drops the
//! other's cached decision within 1 s; a restarted replica finds everything; the decision log
//! is shared and pruned to its retention.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod logd;
#[path = "../../custody-log/tests/common/pg.rs"]
mod pg;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{custody, keygen, run};
use logd::{Daemon, TOKEN};
use serde_json::{Value, json};

/// The image the evidence is about: (reference, content whose SHA-256 is its digest).
const APP: (&str, &str) = (
    "sha256:2872b21636a6831b54f958ffa59893d0d8ce2e8be8cb8b4bb02d09ecc1f75b8c",
    "custody test image: app\n",
);

fn setup(dir: &Path) {
    keygen(dir, "signer", "ecdsa-p256");
    std::fs::write(dir.join("token"), TOKEN).unwrap();
    let (code, out, err) = run(custody(dir).args(["key", "inspect", "signer.pub", "-o", "json"]));
    assert_eq!(code, 0, "{err}");
    let key_id = serde_json::from_str::<Value>(&out).unwrap()["keyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let policy = dir.join("policy");
    std::fs::create_dir(&policy).unwrap();
    std::fs::write(
        policy.join("gate.rego"),
        "package custody.gate\n\nimport data.custody.lib\n\ndeny contains v if some v in lib.violations\n",
    )
    .unwrap();
    std::fs::write(
        policy.join("data.json"),
        json!({"custody": {"config": {"signers": {"keys": [key_id]}, "provenance": {"required": false}}}})
            .to_string(),
    )
    .unwrap();
}

/// Signs `content` and returns the bundle.
fn sign(dir: &Path, name: &str, content: &str) -> Vec<u8> {
    std::fs::write(dir.join(name), content).unwrap();
    let (code, _, err) = run(custody(dir).args(["sign", name, "--key", "signer.key"]));
    assert_eq!(code, 0, "{err}");
    std::fs::read(dir.join(format!("{name}.sigstore.json"))).unwrap()
}

/// Attests `content` (another bundle for the same digest).
fn attest(dir: &Path, name: &str, content: &str) -> Vec<u8> {
    std::fs::write(dir.join(name), content).unwrap();
    std::fs::write(dir.join("predicate.json"), r#"{"reviewed": true}"#).unwrap();
    let (code, _, err) = run(custody(dir).args([
        "attest",
        name,
        "--key",
        "signer.key",
        "--type",
        "https://example.com/review/v1",
        "--predicate",
        "predicate.json",
    ]));
    assert_eq!(code, 0, "{err}");
    std::fs::read(dir.join(format!("{name}.review.sigstore.json"))).unwrap()
}

fn replica(dir: &Path, name: &str, url: &str, extra: &[&str]) -> Daemon {
    let data = dir.join(name);
    let (data, token, policy, key) = (
        data.to_str().unwrap().to_owned(),
        dir.join("token").to_str().unwrap().to_owned(),
        dir.join("policy").to_str().unwrap().to_owned(),
        dir.join("signer.pub").to_str().unwrap().to_owned(),
    );
    let mut args = vec![
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--origin",
        "log.test",
        "--data-dir",
        &data,
        "--write-token-file",
        &token,
        "--database",
        url,
        "--policy",
        &policy,
        "--gate-key",
        &key,
        "--gate-env",
        "production",
        "--gate-cache-ttl",
        "600",
    ];
    args.extend_from_slice(extra);
    Daemon::start(&args)
}

fn post(base: &str, path: &str, body: &[u8], token: Option<&str>) -> (u16, Value) {
    let mut req = logd::agent()
        .post(format!("{base}{path}"))
        .header("Content-Type", "application/json");
    if let Some(token) = token {
        req = req.header("Authorization", format!("Bearer {token}"));
    }
    let mut r = req.send(body).unwrap();
    let text = r.body_mut().read_to_string().unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (r.status().as_u16(), value)
}

fn upload(base: &str, bundle: &[u8]) {
    let (status, answer) = post(base, "/api/v1/evidence", bundle, Some(TOKEN));
    assert_eq!(status, 201, "{answer}");
}

fn evaluate(base: &str) -> Value {
    let (status, answer) = post(
        base,
        "/api/v1/gate/evaluate",
        json!({ "artifact": APP.0 }).to_string().as_bytes(),
        Some(TOKEN),
    );
    assert_eq!(status, 200, "{answer}");
    answer
}

/// A counter's value in `/metrics` (0 when the line is absent).
fn metric(base: &str, line_prefix: &str) -> u64 {
    let (status, _, body) = logd::get(&format!("{base}/metrics"));
    assert_eq!(status, 200);
    String::from_utf8(body)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(line_prefix)?.trim().parse().ok())
        .unwrap_or(0)
}

/// Waits until `line_prefix`'s counter on `base` exceeds `before`; returns how long it took.
fn until_counted(base: &str, line_prefix: &str, before: u64) -> Duration {
    let started = Instant::now();
    while metric(base, line_prefix) <= before {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{line_prefix} stayed at {before} on {base}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    started.elapsed()
}

const SHARED: &str = "custody_gate_bundle_verifications_total{tier=\"shared\"}";
const VERIFIED: &str = "custody_gate_bundle_verifications_total{tier=\"verified\"}";
const DECISIONS_CHANGED: &str = "custody_gate_changes_received_total{kind=\"decisions\"}";
const EVIDENCE_CHANGED: &str = "custody_gate_changes_received_total{kind=\"evidence\"}";

fn count(db: &mut postgres::Client, sql: &str) -> i64 {
    db.query_one(sql, &[]).unwrap().get(0)
}

#[test]
fn two_replicas_share_evidence_verifications_decisions_and_invalidations() {
    let server = pg::PgServer::start();
    let url = server.create_database("gate");
    let tmp = common::tempdir();
    let dir = tmp.path();
    setup(dir);
    let a = replica(dir, "a", &url, &[]);
    for name in ["log.skey", "log.json", "log.vkey"] {
        std::fs::create_dir_all(dir.join("b")).unwrap();
        std::fs::copy(dir.join("a").join(name), dir.join("b").join(name)).unwrap();
    }
    let b = replica(dir, "b", &url, &[]);
    assert!(
        !dir.join("a/gate.db").exists() && !dir.join("b/gate.db").exists(),
        "with --database postgres://… the evidence is in PostgreSQL"
    );

    // Evidence pushed to A; A decides first (and stores its verification result).
    upload(&a.url, &sign(dir, "app.img", APP.1));
    let on_a = evaluate(&a.url);
    assert_eq!(on_a["allowed"], true, "{on_a}");
    assert_eq!(metric(&a.url, VERIFIED), 1);
    // B's cold decision allows, and used A's verification instead of verifying.
    let on_b = evaluate(&b.url);
    assert_eq!(
        (on_b["allowed"].as_bool(), on_b["cached"].as_bool()),
        (Some(true), Some(false)),
        "{on_b}"
    );
    assert_eq!(metric(&b.url, SHARED), 1, "B read the shared result");
    assert_eq!(metric(&b.url, VERIFIED), 0, "B verified nothing itself");
    assert_eq!(evaluate(&b.url)["cached"], true);

    // The invalidate hook on A drops B's cached decision within 1 s.
    let before = metric(&b.url, DECISIONS_CHANGED);
    let (status, answer) = post(
        &a.url,
        "/api/v1/gate/cache/invalidate",
        json!({ "digest": APP.0 }).to_string().as_bytes(),
        Some(TOKEN),
    );
    assert_eq!(status, 200, "{answer}");
    let took = until_counted(&b.url, DECISIONS_CHANGED, before);
    assert!(
        took < Duration::from_secs(1),
        "B heard of it after {took:?}"
    );
    eprintln!("invalidation reached the other replica in {took:?}");
    assert_eq!(evaluate(&b.url)["cached"], false);
    assert_eq!(evaluate(&b.url)["cached"], true);

    // New evidence on A for the digest drops B's cached decision within 1 s too.
    let before = metric(&b.url, EVIDENCE_CHANGED);
    upload(&a.url, &attest(dir, "app.img", APP.1));
    let took = until_counted(&b.url, EVIDENCE_CHANGED, before);
    assert!(
        took < Duration::from_secs(1),
        "B heard of it after {took:?}"
    );
    let after = evaluate(&b.url);
    assert_eq!(after["cached"], false);
    assert_eq!(after["evidence"].as_array().unwrap().len(), 2, "{after}");

    // Both replicas' decisions are in the one decision log.
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let started = Instant::now();
    loop {
        let sources = count(
            &mut db,
            "SELECT count(DISTINCT cached)::int8 FROM evidence_decisions",
        );
        let total = count(
            &mut db,
            "SELECT coalesce(sum(count), 0)::int8 FROM evidence_decisions",
        );
        // A: 1 fresh; B: 3 fresh + 2 cache hits.
        if sources == 2 && total == 6 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "decision log: {total} decisions"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // An old decision, then B restarts with a one-day retention: the old row goes, the rest
    // stays, and B still finds the evidence and the shared verification results.
    db.execute(
        "INSERT INTO evidence_decisions (at, source, artifact, allowed, codes, cached, latency_us, policy_digest) \
         VALUES ('2020-01-01T00:00:00.000Z', 'evaluate', 'sha256:00', true, '', false, 1, 'p')",
        &[],
    )
    .unwrap();
    b.terminate();
    let b = replica(dir, "b", &url, &["--decision-retention", "1d"]);
    let restarted = evaluate(&b.url);
    assert_eq!(
        (
            restarted["allowed"].as_bool(),
            restarted["cached"].as_bool()
        ),
        (Some(true), Some(false)),
        "{restarted}"
    );
    assert_eq!(restarted["evidence"].as_array().unwrap().len(), 2);
    assert_eq!(
        metric(&b.url, SHARED),
        2,
        "both results came from the store"
    );
    assert_eq!(metric(&b.url, VERIFIED), 0);
    let started = Instant::now();
    while count(
        &mut db,
        "SELECT count(*) FROM evidence_decisions WHERE at < '2021'",
    ) > 0
    {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the old decision stayed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        count(
            &mut db,
            "SELECT coalesce(sum(count), 0)::int8 FROM evidence_decisions"
        ) >= 6
    );
    a.terminate();
    b.terminate();
}
