//! The release server's rules, attacked (issue #16, attacks 2, 4 and 6), each test written as
//! the attack on a real `custody serve --release-config`:
//!
//! * a normal promotion of an older digest (release 1 after release 2) is refused with 409
//!   and the advice to roll back, so a later revocation of release 2 still rolls prod back;
//! * a request id reused with another digest, environment or reason is 409, durably (across
//!   a restart), and the same request again is still the first answer;
//! * the log's write token is no admin on the release API;
//! * a deploy agent's token (role deployer) can report for its environment and nothing else;
//! * a deployment report of a release not on record, or of a quarantined digest as active,
//!   is refused and never completes a recovery.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod release_world;

use std::fs;
use std::time::{Duration, Instant};

use chrono::Utc;
use custody_core::digest::Sha256Digest;
use release_world::{
    Options, Story, agent_of, build_and_push, free_port, logd, release, setup, setup_with,
    try_http_bearer,
};
use serde_json::{Value, json};

fn promote(s: &Story, digest: &Sha256Digest, to: &str, request_id: Option<&str>) -> (u16, Value) {
    let mut body = json!({"digest": digest.to_string(), "to": to});
    if let Some(id) = request_id {
        body["request_id"] = json!(id);
    }
    s.post("rm", "/api/v1/promotions", body.to_string().as_bytes())
}

fn revoke_digest(s: &Story, digest: &Sha256Digest, reason: &str) -> Value {
    let key = s.d().join("keys/sec.key");
    s.json(
        "sec",
        &[
            "revoke",
            &format!("digest:{digest}"),
            "--reason",
            reason,
            "--key",
            key.to_str().unwrap(),
        ],
    )
}

fn message(v: &Value) -> String {
    v["message"].as_str().unwrap_or_default().to_owned()
}

fn history_len(s: &Story, env: &str) -> usize {
    s.history(env)["releases"].as_array().unwrap().len()
}

fn incident(s: &Story) -> Value {
    let (status, v) = s.get("aud", "/api/v1/incidents");
    assert_eq!(status, 200, "{v}");
    v["incidents"][0].clone()
}

#[test]
fn attack_promotion_of_older_digest_is_refused_use_rollback() {
    let s = setup(None);
    let r1 = release(&s, 1, "ci");
    let r2 = release(&s, 2, "ci");
    s.wait_deployed("prod", &r2, Duration::from_secs(20));

    // The attack: a normal promotion of release 1 after release 2.
    let (status, v) = promote(&s, &r1, "prod", Some("back-to-1"));
    assert_eq!(status, 409, "{v}");
    let m = message(&v);
    assert!(
        m.contains("older release of prod")
            && m.contains(&format!("custody rollback prod --to {r1}")),
        "{m}"
    );
    // Nothing was recorded: prod is still on release 2, seq 2.
    assert_eq!(history_len(&s, "prod"), 2);
    let (_, current) = s.get("aud", "/api/v1/environments/prod");
    assert_eq!(current["current"]["digest"], r2.to_string(), "{current}");
    // The CLI says the same and exits 1.
    let (code, _, err) = s.cli("rm", &["promote", &r1.to_string(), "--to", "prod"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("custody rollback prod --to"), "{err}");
    // Promoting the current release again is still a no-op answering the current release.
    let (status, v) = promote(&s, &r2, "prod", None);
    assert_eq!((status, v["seq"].clone()), (200, json!(2)), "{v}");

    // So a revocation of release 2 rolls prod back too, and the incident recovers only once
    // every agent (prod's included) runs release 1.
    let revoked = revoke_digest(&s, &r2, "release 2 is bad");
    let rolled = revoked["reconcile"]["rolled_back"].as_array().unwrap();
    assert!(
        rolled
            .iter()
            .any(|r| r["environment"] == "prod" && r["to"] == r1.to_string()),
        "{revoked}"
    );
    s.wait_deployed("prod", &r1, Duration::from_secs(20));
    let start = Instant::now();
    let i = loop {
        let i = incident(&s);
        if i["status"] == "recovered" || start.elapsed() > Duration::from_secs(20) {
            break i;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(i["status"], "recovered", "{i}");
    let envs: Vec<&str> = i["recoveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["environment"].as_str().unwrap())
        .collect();
    assert!(envs.contains(&"prod"), "{i}");
    let prod = s.history("prod");
    let last = prod["releases"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["kind"].as_str(), last["digest"].as_str()),
        (Some("rollback"), Some(r1.to_string().as_str())),
        "{prod}"
    );
    let _ = fs::remove_dir_all(s.d());
}

#[test]
fn attack_request_id_reused_with_other_digest_is_409() {
    let mut s = setup_with(&Options {
        port: free_port(),
        ..Options::default()
    });
    let r1 = build_and_push(&s, 1, "ci", "ci");
    let r2 = build_and_push(&s, 2, "ci", "ci");
    let (status, first) = promote(&s, &r1, "dev", Some("req-1"));
    assert_eq!(status, 201, "{first}");
    // The binding is durable: a restarted server still knows it.
    s.restart_server();
    // The same request again: the same answer.
    let (status, again) = promote(&s, &r1, "dev", Some("req-1"));
    assert_eq!((status, &again), (200, &first));

    // The attack: the same id with another digest, or another environment.
    let (status, v) = promote(&s, &r2, "dev", Some("req-1"));
    assert_eq!(status, 409, "{v}");
    let m = message(&v);
    assert!(
        m.contains("\"req-1\"") && m.contains(&format!("digest {r2} (was {r1})")),
        "{m}"
    );
    let (status, v) = promote(&s, &r1, "staging", Some("req-1"));
    assert_eq!(status, 409, "{v}");
    assert!(message(&v).contains("environment staging (was dev)"), "{v}");
    assert_eq!(history_len(&s, "dev"), 1);
    assert_eq!(history_len(&s, "staging"), 0);

    // Rollbacks: bound to environment, target and reason.
    let (status, v) = promote(&s, &r2, "dev", Some("req-2"));
    assert_eq!(status, 201, "{v}");
    let rollback = |reason: &str, id: &str| {
        let body = json!({"environment": "dev", "digest": r1.to_string(), "reason": reason, "request_id": id});
        s.post("rm", "/api/v1/rollbacks", body.to_string().as_bytes())
    };
    let (status, rb) = rollback("bad build", "rb-1");
    assert_eq!(status, 201, "{rb}");
    let (status, again) = rollback("bad build", "rb-1");
    assert_eq!((status, &again), (200, &rb));
    let (status, v) = rollback("another reason", "rb-1");
    assert_eq!(status, 409, "{v}");
    assert!(message(&v).contains("reason"), "{v}");
    // A promotion's id used for a rollback.
    let (status, v) = rollback("bad build", "req-2");
    assert_eq!(status, 409, "{v}");
    assert!(
        message(&v).contains("operation rollback (was promotion)"),
        "{v}"
    );
    assert_eq!(history_len(&s, "dev"), 3);
    let _ = fs::remove_dir_all(s.d());
}

#[test]
fn attack_log_write_token_is_not_release_admin() {
    let s = setup_with(&Options::default());
    let r1 = build_and_push(&s, 1, "ci", "ci");
    let (status, v) = promote(&s, &r1, "dev", None);
    assert_eq!(status, 201, "{v}");
    let rollback = json!({"environment": "dev", "reason": "x"}).to_string();
    let promotion = json!({"digest": r1.to_string(), "to": "staging"}).to_string();
    for (method, path, body) in [
        ("GET", "/api/v1/events", None),
        ("GET", "/api/v1/incidents", None),
        ("POST", "/api/v1/rollbacks", Some(rollback.as_bytes())),
        ("POST", "/api/v1/promotions", Some(promotion.as_bytes())),
        ("POST", "/api/v1/reconcile", Some(&b""[..])),
    ] {
        let (status, v) = try_http_bearer(s.url(), method, path, logd::TOKEN, body).unwrap();
        assert_eq!(status, 403, "{method} {path} with the write token: {v}");
        let m = message(&v);
        assert!(
            m.contains("log's write token") && m.contains("[[principal]]"),
            "{method} {path}: {m}"
        );
    }
    assert_eq!(history_len(&s, "staging"), 0);
    // An admin principal still may.
    let (status, v) = s.get("sec", "/api/v1/events");
    assert_eq!(status, 200, "{v}");
    let _ = fs::remove_dir_all(s.d());
}

fn report(s: &Story, who: &str, env: &str, seq: u64, digest: &str, status: &str) -> (u16, Value) {
    let body = json!({
        "environment": env,
        "seq": seq,
        "digest": digest,
        "agent": format!("{who}-host"),
        "status": status,
        "detail": null,
        "at": Utc::now().to_rfc3339(),
    });
    s.post(who, "/api/v1/deployments", body.to_string().as_bytes())
}

#[test]
fn attack_deploy_agent_token_cannot_promote() {
    let s = setup_with(&Options::default());
    let r1 = build_and_push(&s, 1, "ci", "ci");
    let (status, v) = promote(&s, &r1, "dev", None);
    assert_eq!(status, 201, "{v}");
    let agent = agent_of("prod");
    // The attack: a deploy agent's host promotes, rolls back, or reports for another
    // environment.
    let promotion = json!({"digest": r1.to_string(), "to": "staging"}).to_string();
    let (status, v) = s.post(&agent, "/api/v1/promotions", promotion.as_bytes());
    assert_eq!(status, 403, "{v}");
    assert!(
        message(&v).contains("needs the release-manager role"),
        "{v}"
    );
    let rollback = json!({"environment": "dev", "reason": "x"}).to_string();
    let (status, v) = s.post(&agent, "/api/v1/rollbacks", rollback.as_bytes());
    assert_eq!(status, 403, "{v}");
    let (status, v) = report(&s, &agent, "dev", 1, &r1.to_string(), "active");
    assert_eq!(status, 403, "{v}");
    assert!(message(&v).contains("only for prod"), "{v}");
    let (status, v) = s.get(&agent, "/api/v1/events");
    assert_eq!(status, 403, "{v}");
    // Nor does it write to the log: only the write token, builders and admins do.
    let (status, v) = s.post(&agent, "/api/v2/log/entries", b"{}");
    assert_eq!(status, 401, "{v}");
    assert!(message(&v).contains("builder or admin role"), "{v}");
    assert_eq!(history_len(&s, "staging"), 0);
    // Its own environment's agent may report, and read what an agent reads.
    let (status, v) = report(&s, &agent_of("dev"), "dev", 1, &r1.to_string(), "active");
    assert_eq!(status, 201, "{v}");
    let (status, v) = s.get(&agent, "/api/v1/environments/dev");
    assert_eq!(status, 200, "{v}");
    // A release manager no longer reports deployments (separation of duties).
    let (status, v) = report(&s, "rm", "dev", 1, &r1.to_string(), "active");
    assert_eq!(status, 403, "{v}");
    assert!(message(&v).contains("needs the deployer role"), "{v}");
    let _ = fs::remove_dir_all(s.d());
}

#[test]
fn attack_deployment_report_of_unreleased_or_revoked_digest_is_refused() {
    let s = setup_with(&Options::default());
    let r1 = build_and_push(&s, 1, "ci", "ci");
    let r2 = build_and_push(&s, 2, "ci", "ci");
    let never = Sha256Digest::of(b"never released");
    for d in [&r1, &r2] {
        let (status, v) = promote(&s, d, "dev", None);
        assert_eq!(status, 201, "{v}");
    }
    let agent = agent_of("dev");
    // Lies: a real digest with another seq, a seq that does not exist, a digest never
    // released.
    for (seq, digest) in [(1, &r2), (7, &r2), (2, &never)] {
        let (status, v) = report(&s, &agent, "dev", seq, &digest.to_string(), "active");
        assert_eq!(status, 409, "{v}");
        let m = message(&v);
        assert!(
            m.contains(&format!("environment dev, seq {seq}, digest {digest}")),
            "{m}"
        );
    }
    // Release 2 is revoked: dev is rolled back to release 1 as seq 3, and the incident waits
    // for dev's agent.
    revoke_digest(&s, &r2, "release 2 is bad");
    let i = incident(&s);
    assert_eq!(i["status"], "open", "{i}");
    // The attack: report the revoked release as running. Refused, and nothing recovers.
    let (status, v) = report(&s, &agent, "dev", 2, &r2.to_string(), "active");
    assert_eq!(status, 409, "{v}");
    let m = message(&v);
    assert!(
        m.contains("quarantined") && m.contains(&format!("environment dev, seq 2, digest {r2}")),
        "{m}"
    );
    assert_eq!(incident(&s)["status"], "open");
    let (_, events) = s.get("aud", &format!("/api/v1/events?object={r2}"));
    assert!(
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "deploy-refused"),
        "{events}"
    );
    // A failed activation of it may be reported (it is true and harmless).
    let (status, v) = report(&s, &agent, "dev", 2, &r2.to_string(), "failed");
    assert_eq!(status, 201, "{v}");
    assert_eq!(incident(&s)["status"], "open");
    // The truth completes the recovery.
    let (status, v) = report(&s, &agent, "dev", 3, &r1.to_string(), "active");
    assert_eq!(status, 201, "{v}");
    assert_eq!(incident(&s)["status"], "recovered");
    let _ = fs::remove_dir_all(s.d());
}
