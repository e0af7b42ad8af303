//! Bad input and faults on a release server, with real processes (`custody serve
//! --release-config`, the CLI, `custody deploy`):
//!
//! * concurrent promotions to one environment are serialized: every seq once, no gap, each
//!   release's signed `previous` naming the one before (one server; and two servers on one
//!   PostgreSQL database, where a loser gets 409 and retries, over HTTP and with the CLI);
//! * a server killed with SIGKILL during promotions neither loses nor duplicates one (the
//!   request id is the idempotency key), even when killed at many moments of a series;
//! * a server killed while it rolls back after a revocation finishes the rollback when it
//!   comes back, once per environment, with one incident that records every environment;
//! * approvals that cannot count are refused with the right exit code and one line;
//! * a deploy target that fails mid-switch leaves the previous release active, keeps the
//!   agent's state, and reports `failed` to the server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod release_world;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use custody_core::digest::Sha256Digest;
use custody_core::keys::PublicKey;
use custody_release::agent::{ReleaseTrust, verify_release};
use custody_release::model::{Release, ReleaseKind};
use release_world::common::{self, assert_fails, run};
use release_world::{
    Options, Story, agent_of, build, build_and_push, free_port, http, pg, push_to, release,
    setup_with, token, try_http,
};
use serde_json::{Value, json};

/// The releases of `env`, oldest first, as the server stores them.
fn releases(s: &Story, env: &str) -> Vec<Release> {
    serde_json::from_value(s.history(env)["releases"].clone()).unwrap()
}

/// Checks `env`'s history: seqs exactly 1..=N, each release signed by the release key for
/// this environment and seq, and each one's signed `previous` naming the release before it.
fn check_chain(s: &Story, env: &str, history: &[Release]) {
    let pem = fs::read(s.d().join("keys/release.pub")).unwrap();
    let trust = ReleaseTrust::new(vec![PublicKey::from_pem(&pem).unwrap()]);
    let seqs: Vec<u64> = history.iter().map(|r| r.seq).collect();
    assert_eq!(
        seqs,
        (1..=history.len() as u64).collect::<Vec<_>>(),
        "{env}: seqs with a gap or a duplicate"
    );
    let mut before: Option<(u64, String)> = None;
    for r in history {
        let verified = verify_release(r, &trust, env)
            .unwrap_or_else(|e| panic!("{env} release {}: {e}", r.seq));
        assert_eq!(verified.digest.to_string(), r.digest);
        assert_eq!(
            verified.previous, before,
            "{env} release {}: its signed previous is not the release before it",
            r.seq
        );
        before = Some((r.seq, r.digest.clone()));
    }
}

fn promotion(digest: &Sha256Digest, to: &str, request_id: &str) -> Vec<u8> {
    json!({"digest": digest.to_string(), "to": to, "request_id": request_id})
        .to_string()
        .into_bytes()
}

/// Builds and pushes `count` artifacts (numbered from `first`), each with its provenance.
fn artifacts(s: &Story, first: u32, count: u32) -> Vec<Sha256Digest> {
    (first..first + count)
        .map(|n| build_and_push(s, n, "ci", "ci"))
        .collect()
}

/// Promotes every digest to `env` at the same moment, one thread each, over HTTP at the
/// server `bases[i % bases.len()]`. A loser (409 with `retry`) sends the same request again,
/// as the documentation says a client does. Returns the seq each got and how many races were
/// lost.
fn promote_all_at_once(
    bases: &[String],
    digests: &[Sha256Digest],
    env: &str,
    tag: &str,
) -> (Vec<u64>, usize) {
    let barrier = Arc::new(Barrier::new(digests.len()));
    let threads: Vec<_> = digests
        .iter()
        .enumerate()
        .map(|(i, digest)| {
            let base = bases[i % bases.len()].clone();
            let body = promotion(digest, env, &format!("{tag}-{i}"));
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let mut lost = 0;
                loop {
                    let (status, answer) =
                        http(&base, "POST", "/api/v1/promotions", "rm", Some(&body));
                    match status {
                        201 => return (answer["seq"].as_u64().unwrap(), lost),
                        409 => {
                            let message = answer["message"].as_str().unwrap_or_default();
                            assert!(
                                message.contains("was not the next one")
                                    && message.contains("retry"),
                                "a lost race says so: {answer}"
                            );
                            assert_eq!(
                                answer["retry"], true,
                                "a lost race is marked retry: {answer}"
                            );
                            lost += 1;
                            assert!(lost < 50, "lost 50 races in a row: {answer}");
                        }
                        _ => panic!("promotion answered {status}: {answer}"),
                    }
                }
            })
        })
        .collect();
    let mut seqs = Vec::new();
    let mut lost = 0;
    for t in threads {
        let (seq, l) = t.join().unwrap();
        seqs.push(seq);
        lost += l;
    }
    (seqs, lost)
}

fn assert_seqs_are_one_to_n(mut seqs: Vec<u64>) {
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "every 201 has its own seq"
    );
}

const RACERS: u32 = 6;

#[test]
fn concurrent_promotions_to_one_environment_are_serialized() {
    let s = setup_with(&Options::default());
    let digests = artifacts(&s, 1, RACERS);
    let (seqs, lost) = promote_all_at_once(&[s.url().to_owned()], &digests, "dev", "race");
    // One server serializes its own promotions: nobody loses.
    assert_eq!(lost, 0);
    assert_seqs_are_one_to_n(seqs);
    let dev = releases(&s, "dev");
    check_chain(&s, "dev", &dev);
    let promoted: BTreeSet<&str> = dev.iter().map(|r| r.digest.as_str()).collect();
    assert_eq!(promoted.len(), digests.len(), "each artifact once");
    let _ = fs::remove_dir_all(s.d());
}

#[test]
fn concurrent_promotions_on_two_servers_sharing_postgres_are_serialized() {
    let server = pg::PgServer::start();
    let url = server.create_database("release_faults");
    let s = setup_with(&Options {
        database: Some(url),
        ..Options::default()
    });
    let b = s.replica("server-b");
    // Artifacts and evidence are kept per data directory: push to both.
    let digests: Vec<Sha256Digest> = (1..=RACERS)
        .map(|n| {
            let artifact = build(&s, n, "ci");
            let digest = push_to(&s, s.url(), &artifact, "ci");
            assert_eq!(push_to(&s, &b.url, &artifact, "ci"), digest);
            digest
        })
        .collect();
    let bases = [s.url().to_owned(), b.url.clone()];

    // Over HTTP: losers get 409 and send the same request again.
    let (seqs, lost) = promote_all_at_once(&bases, &digests, "dev", "race");
    eprintln!("two servers, {RACERS} promotions to dev: {lost} lost races retried");
    assert_seqs_are_one_to_n(seqs);
    let dev = releases(&s, "dev");
    check_chain(&s, "dev", &dev);
    let promoted: BTreeSet<&str> = dev.iter().map(|r| r.digest.as_str()).collect();
    assert_eq!(promoted.len(), digests.len(), "each artifact once");
    // Both servers tell the same history.
    let (status, other) = http(
        &b.url,
        "GET",
        "/api/v1/environments/dev/releases",
        "aud",
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(other["releases"], s.history("dev")["releases"]);

    // With the CLI: `custody promote` retries a lost race itself, so every one succeeds.
    let bin = assert_cmd::cargo::cargo_bin("custody");
    let barrier = Arc::new(Barrier::new(digests.len()));
    let threads: Vec<_> = digests
        .iter()
        .enumerate()
        .map(|(i, digest)| {
            let base = bases[i % bases.len()].clone();
            let (bin, dir, digest) = (bin.clone(), s.d().to_path_buf(), digest.to_string());
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut cmd = Command::new(bin);
                cmd.current_dir(dir)
                    .env("CUSTODY_SERVER", base)
                    .env("CUSTODY_TOKEN", token("rm"))
                    .env("RUST_LOG", "info")
                    .args(["-o", "json", "promote", &digest, "--to", "staging"])
                    .args(["--request-id", &format!("cli-{i}")]);
                barrier.wait();
                let out = cmd.output().unwrap();
                (
                    out.status.code().unwrap_or(-1),
                    String::from_utf8_lossy(&out.stdout).into_owned(),
                    String::from_utf8_lossy(&out.stderr).into_owned(),
                )
            })
        })
        .collect();
    let mut seqs = Vec::new();
    let mut retried = 0;
    for t in threads {
        let (code, out, err) = t.join().unwrap();
        assert_eq!(code, 0, "custody promote: {err}");
        retried += err.matches("another release came first, retrying").count();
        let answer: Value = serde_json::from_str(&out).unwrap();
        seqs.push(answer["seq"].as_u64().unwrap());
    }
    eprintln!("two servers, {RACERS} custody promote to staging: {retried} lost races retried");
    assert_seqs_are_one_to_n(seqs);
    let staging = releases(&s, "staging");
    check_chain(&s, "staging", &staging);
    let ids: BTreeSet<String> = staging
        .iter()
        .map(|r| r.request_id.clone().unwrap())
        .collect();
    assert_eq!(ids.len(), digests.len(), "each request id once");
    b.terminate();
    let _ = fs::remove_dir_all(s.d());
}

/// A world on a fixed port, so a restarted server keeps its address.
fn restartable() -> Story {
    setup_with(&Options {
        port: free_port(),
        ..Options::default()
    })
}

#[test]
fn a_restart_during_a_promotion_neither_loses_nor_duplicates_it() {
    let mut s = restartable();
    let r1 = build_and_push(&s, 1, "ci", "ci");
    let r1s = r1.to_string();
    let first = s.json(
        "rm",
        &["promote", &r1s, "--to", "dev", "--request-id", "once-1"],
    );
    assert_eq!(first["seq"], 1);
    // Killed right after it answered: the promotion is stored.
    s.restart_server();
    let again = s.json(
        "rm",
        &["promote", &r1s, "--to", "dev", "--request-id", "once-1"],
    );
    assert_eq!(
        again, first,
        "a retried request id answers the first result"
    );
    assert_eq!(releases(&s, "dev").len(), 1);

    // Killed while it promotes: the CLI sees the connection fail (or retries by itself); the
    // same request id, sent again, gives one release.
    let r2 = build_and_push(&s, 2, "ci", "ci");
    let r2s = r2.to_string();
    let child = Command::new(assert_cmd::cargo::cargo_bin("custody"))
        .current_dir(s.d())
        .env("CUSTODY_SERVER", s.url())
        .env("CUSTODY_TOKEN", token("rm"))
        .args([
            "-o",
            "json",
            "promote",
            &r2s,
            "--to",
            "dev",
            "--request-id",
            "once-2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(40));
    s.restart_server();
    let out = child.wait_with_output().unwrap();
    let answer = s.json(
        "rm",
        &["promote", &r2s, "--to", "dev", "--request-id", "once-2"],
    );
    assert_eq!(answer["seq"], 2, "{answer}");
    if out.status.success() {
        let first: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            first, answer,
            "the interrupted call and its retry got the same release"
        );
    }
    let dev = releases(&s, "dev");
    assert_eq!(dev.len(), 2, "no promotion lost or doubled");
    check_chain(&s, "dev", &dev);
    let _ = fs::remove_dir_all(s.d());
}

/// How many releases of `env` the embedded release store holds, read straight from its file.
fn stored_releases(db: &Path, env: &str) -> i64 {
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let db = rusqlite::Connection::open_with_flags(db, flags).unwrap();
    db.query_row(
        "SELECT count(*) FROM release_history WHERE environment = ?1",
        [env],
        |row| row.get(0),
    )
    .unwrap()
}

/// A small deterministic pseudo-random sequence (the kill moments).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

#[test]
fn kill_9_at_many_moments_of_a_series_of_promotions_loses_and_doubles_nothing() {
    const SERIES: u32 = 8;
    const KILLS: u32 = 10;
    let mut s = restartable();
    let digests = artifacts(&s, 1, SERIES);
    let base = s.url().to_owned();
    let in_flight = Arc::new(AtomicBool::new(false));
    let client = {
        let (digests, in_flight) = (digests.clone(), in_flight.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut seqs = Vec::new();
            let (mut errors, mut replayed) = (0, 0);
            for (i, digest) in digests.iter().enumerate() {
                let body = promotion(digest, "dev", &format!("chaos-{i}"));
                loop {
                    assert!(
                        Instant::now() < deadline,
                        "promotion {i} never went through"
                    );
                    in_flight.store(true, Ordering::SeqCst);
                    let answer = try_http(&base, "POST", "/api/v1/promotions", "rm", Some(&body));
                    in_flight.store(false, Ordering::SeqCst);
                    match answer {
                        Ok((status @ (200 | 201), answer)) => {
                            assert_eq!(answer["digest"], digest.to_string(), "{answer}");
                            // 200: an attempt the kill interrupted had stored it.
                            replayed += usize::from(status == 200);
                            seqs.push(answer["seq"].as_u64().unwrap());
                            break;
                        }
                        Ok((status, answer)) if status >= 500 => {
                            errors += 1;
                            eprintln!("promotion {i}: HTTP {status}: {answer}");
                        }
                        Ok((status, answer)) => panic!("promotion {i}: HTTP {status}: {answer}"),
                        Err(_) => errors += 1,
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            (seqs, errors, replayed)
        })
    };
    // Every other kill comes the moment a promotion is stored (before its answer is sent, most
    // likely: the server still records the event), the others at a random moment while a
    // request is in flight.
    let db = s.d().join("server/release.db");
    let mut moments = Lcg(0x5eed_cafe);
    let mut kills = 0;
    let mut stored = stored_releases(&db, "dev");
    while kills < KILLS && !client.is_finished() {
        if kills % 2 == 0 {
            if stored_releases(&db, "dev") == stored {
                std::thread::sleep(Duration::from_micros(200));
                continue;
            }
        } else {
            if !in_flight.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            std::thread::sleep(Duration::from_millis(moments.below(120)));
        }
        s.restart_server();
        kills += 1;
        stored = stored_releases(&db, "dev");
    }
    let (seqs, errors, replayed) = client.join().unwrap();
    eprintln!(
        "{SERIES} promotions, {kills} kills, {errors} failed attempts retried, {replayed} stored by an interrupted attempt"
    );
    assert!(kills >= 2, "the server was killed during the series");
    assert!(
        replayed >= 1,
        "no kill came between storing a promotion and answering it"
    );
    assert_eq!(
        seqs,
        (1..=u64::from(SERIES)).collect::<Vec<_>>(),
        "each promotion got the next seq"
    );
    let dev = releases(&s, "dev");
    check_chain(&s, "dev", &dev);
    let ids: Vec<String> = dev.iter().map(|r| r.request_id.clone().unwrap()).collect();
    assert_eq!(
        ids,
        (0..SERIES)
            .map(|i| format!("chaos-{i}"))
            .collect::<Vec<_>>(),
        "each request id exactly once, in order"
    );
    // Each promotion is in the audit trail once, with who asked for it.
    for r in &dev {
        let (_, events) = s.get("aud", &format!("/api/v1/events?object={}", r.digest));
        let promotions: Vec<&Value> = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "promotion")
            .collect();
        assert_eq!(promotions.len(), 1, "dev release {}: {events}", r.seq);
        assert_eq!(promotions[0]["actor"], "rm");
        assert_eq!(promotions[0]["detail"]["seq"], r.seq);
    }
    let _ = fs::remove_dir_all(s.d());
}

#[test]
fn a_restart_during_a_rollback_finishes_it_once() {
    let mut s = restartable();
    let _r1 = release(&s, 1, "ci");
    let r2 = release(&s, 2, "ci");
    let r3 = release(&s, 3, "ci2");
    let ci2 = release_world::key_id(s.d(), "keys/ci2.pub");
    let sec_key = s.d().join("keys/sec.key");
    let revoke_args = [
        "-o".to_owned(),
        "json".into(),
        "revoke".into(),
        format!("key:{ci2}"),
        "--reason".into(),
        "CI runner 2 compromised".into(),
        "--key".into(),
        sec_key.to_string_lossy().into_owned(),
    ];
    // Revoke, and kill the server as soon as the first environment shows the rollback (the
    // others are, most likely, not rolled back yet).
    let revoking = Command::new(assert_cmd::cargo::cargo_bin("custody"))
        .current_dir(s.d())
        .env("CUSTODY_PASSWORD", common::PASSWORD)
        .env("CUSTODY_SERVER", s.url())
        .env("CUSTODY_TOKEN", token("sec"))
        .args(&revoke_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let caught = loop {
        let (_, envs) = s.get("aud", "/api/v1/environments");
        let rolled: Vec<&str> = envs["environments"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["current"]["kind"] == "rollback")
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        if !rolled.is_empty() {
            break rolled.join(", ");
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no rollback after the revocation"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    s.restart_server();
    eprintln!("killed the server when {caught} had been rolled back");
    let _ = revoking.wait_with_output().unwrap();
    // The revocation, sent again, is a duplicate; reconciliation (at start-up, and again
    // here) finishes the rollback.
    let (code, out, err) = s.cli(
        "sec",
        &revoke_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(code, 0, "{err}");
    let answer: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["duplicate"], true, "{answer}");

    for env in ["dev", "staging", "prod"] {
        let history = releases(&s, env);
        check_chain(&s, env, &history);
        let rollbacks: Vec<&Release> = history
            .iter()
            .filter(|r| r.kind == ReleaseKind::Rollback)
            .collect();
        assert_eq!(rollbacks.len(), 1, "{env}: exactly one rollback");
        let last = history.last().unwrap();
        assert_eq!(last.kind, ReleaseKind::Rollback, "{env}");
        assert_eq!(last.digest, r2.to_string(), "{env} is back on release 2");
        assert_eq!(history[history.len() - 2].digest, r3.to_string());
    }
    let (status, incidents) = s.get("aud", "/api/v1/incidents");
    assert_eq!(status, 200);
    assert_eq!(
        incidents["revocations"].as_array().unwrap().len(),
        1,
        "{incidents}"
    );
    let all = incidents["incidents"].as_array().unwrap();
    assert_eq!(all.len(), 1, "one incident: {incidents}");
    let incident = &all[0];
    assert_eq!(incident["affected_digests"], json!([r3.to_string()]));
    let recovered: BTreeSet<&str> = incident["recoveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["to_digest"], r2.to_string(), "{incident}");
            assert_eq!(r["from_digest"], r3.to_string(), "{incident}");
            r["environment"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        recovered,
        BTreeSet::from(["dev", "staging", "prod"]),
        "one recovery per environment: {incident}"
    );
    assert_eq!(incident["recoveries"].as_array().unwrap().len(), 3);
    // Nobody deployed the rollbacks yet (no agents): still open, not unrecoverable.
    assert_eq!(incident["status"], "open", "{incident}");

    // Each rollback is in the audit trail once, by the server.
    let (_, events) = s.get("aud", &format!("/api/v1/events?object={r2}"));
    let rollbacks: Vec<&Value> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "rollback")
        .collect();
    assert_eq!(rollbacks.len(), 3, "{events}");
    assert!(
        rollbacks.iter().all(|e| e["actor"] == "custody"),
        "{events}"
    );

    // Reconciling again changes nothing.
    let before: Vec<Vec<Release>> = ["dev", "staging", "prod"]
        .iter()
        .map(|e| releases(&s, e))
        .collect();
    let (_, events_before) = s.get("aud", "/api/v1/events");
    let (status, report) = s.post("sec", "/api/v1/reconcile", b"");
    assert_eq!(status, 200, "{report}");
    assert_eq!(report, json!({"quarantined": [], "rolled_back": []}));
    let after: Vec<Vec<Release>> = ["dev", "staging", "prod"]
        .iter()
        .map(|e| releases(&s, e))
        .collect();
    assert_eq!(before, after);
    let (_, events_after) = s.get("aud", "/api/v1/events");
    assert_eq!(events_before, events_after);
    let (_, again) = s.get("aud", "/api/v1/incidents");
    assert_eq!(again, incidents);
    let _ = fs::remove_dir_all(s.d());
}

#[test]
fn approvals_that_cannot_count_are_refused_clearly() {
    let s = setup_with(&Options {
        outsiders: vec!["dave"],
        ..Options::default()
    });
    let keys = s.d().join("keys");
    release_world::keygen(&keys, "stranger");
    let r1 = build_and_push(&s, 1, "ci", "ci");
    let r1s = r1.to_string();
    let approve_as = |who: &str, digest: &str, env: &str, key: &str| {
        let key = keys.join(format!("{key}.key"));
        s.cli(
            who,
            &[
                "approve",
                digest,
                "--env",
                env,
                "--key",
                key.to_str().unwrap(),
            ],
        )
    };

    // Unknown digest, unknown environment: operational errors (exit 2).
    let unknown = Sha256Digest::of(b"never pushed").to_string();
    assert_fails(
        approve_as("alice", &unknown, "prod", "alice"),
        2,
        &[
            "HTTP 404",
            "unknown artifact",
            &unknown,
            "custody push it first",
        ],
    );
    assert_fails(
        approve_as("alice", &r1s, "qa", "alice"),
        2,
        &[
            "HTTP 404",
            "unknown environment \"qa\"",
            "dev, staging, prod",
        ],
    );
    // Refusals on the merits (exit 1): another principal's key, a key of no principal, an
    // approver outside the group, a principal who is no approver, the builder.
    for (who, key, words) in [
        (
            "alice",
            "carol",
            &["refused", "signed by \"carol\"'s key", "\"alice\"'s token"][..],
        ),
        ("alice", "stranger", &["refused", "does not verify"][..]),
        (
            "dave",
            "dave",
            &["refused", "\"dave\" is not in group \"release-approvers\""][..],
        ),
        ("rm", "rm", &["refused", "needs the approver role"][..]),
        ("ci", "ci", &["refused", "separation of duties"][..]),
    ] {
        assert_fails(approve_as(who, &r1s, "prod", key), 1, words);
    }

    // Malformed bundles: 400 with a message.
    let provenance = fs::read_dir(s.d().join("r1"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("sigstore.json"))
        .unwrap();
    let provenance = fs::read(provenance).unwrap();
    for (body, words) in [
        (&b"not json"[..], "not a Sigstore bundle"),
        (b"{}", "not a Sigstore bundle"),
        (
            &provenance[..],
            "expected predicate type https://custody.dev/approval/v1",
        ),
    ] {
        let (status, answer) = s.post("alice", "/api/v1/approvals", body);
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["code"], 400, "{answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(words), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }

    // A 409 on the merits is not a lost race: nothing to retry, and the CLI does not.
    let (status, answer) = s.post(
        "rm",
        "/api/v1/promotions",
        &promotion(&r1, "staging", "not-in-dev"),
    );
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["retry"], Value::Null, "{answer}");
    assert_fails(
        s.cli("rm", &["promote", &r1s, "--to", "staging"]),
        1,
        &["refused", "has not passed dev"],
    );

    // None of it was stored as an approval.
    let (_, events) = s.get("aud", &format!("/api/v1/events?object={r1s}"));
    let actions: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(!actions.contains(&"approve"), "{events}");
    let _ = fs::remove_dir_all(s.d());
}

/// Runs `custody deploy prod` once as the agent with state `state/<name>`; as root, without
/// the capabilities that ignore file permissions (so a read-only directory stops it, as it
/// would stop an unprivileged agent).
fn deploy_once(s: &Story, name: &str, target: &str) -> (i32, String, String) {
    let state = s.d().join("state").join(name);
    let bin = assert_cmd::cargo::cargo_bin("custody");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let mut cmd = if root {
        let mut cmd = assert_cmd::Command::new("setpriv");
        cmd.args([
            "--bounding-set=-dac_override,-dac_read_search,-fowner",
            "--",
        ])
        .arg(bin);
        cmd
    } else {
        assert_cmd::Command::new(bin)
    };
    cmd.current_dir(s.d())
        .env("CUSTODY_PASSWORD", common::PASSWORD)
        .env("CUSTODY_SERVER", s.url())
        .env("CUSTODY_TOKEN", token(&agent_of("prod")))
        .env_remove("RUST_LOG")
        .args(["deploy", "prod", "--target", target])
        .args(["--release-key", "keys/release.pub", "--agent-name", name])
        .arg("--state")
        .arg(&state);
    run(&mut cmd)
}

fn state_of(s: &Story, name: &str) -> Vec<u8> {
    fs::read(s.d().join("state").join(name).join("state.json")).unwrap()
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_deploy_target_that_fails_mid_switch_leaves_the_previous_release_active() {
    let s = setup_with(&Options::default());
    let r1 = release(&s, 1, "ci");
    let srv = s.d().join("srv/prod");
    let dir_target = format!("dir:{}", srv.display());
    let (code, _, err) = deploy_once(&s, "exec-agent", "exec:true");
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = deploy_once(&s, "dir-agent", &dir_target);
    assert_eq!(code, 0, "{err}");
    assert_eq!(s.current("prod"), Some(r1.hex()));
    let exec_state = state_of(&s, "exec-agent");
    let dir_state = state_of(&s, "dir-agent");

    let r2 = release(&s, 2, "ci");
    // The activation command fails.
    assert_fails(
        deploy_once(&s, "exec-agent", "exec:exit 3"),
        2,
        &[
            "prod release 2",
            "activation on exec:exit 3 failed",
            "exit status: 3",
            "state is unchanged",
        ],
    );
    assert_eq!(
        state_of(&s, "exec-agent"),
        exec_state,
        "the agent's state is unchanged"
    );
    // The symlink switch fails: the deploy directory is read-only (releases/ is not, so the
    // new release is staged first).
    set_mode(&srv, 0o555);
    let failed = deploy_once(&s, "dir-agent", &dir_target);
    set_mode(&srv, 0o755);
    assert_fails(
        failed,
        2,
        &["prod release 2", "activation on dir:", "Permission denied"],
    );
    assert_eq!(
        s.current("prod"),
        Some(r1.hex()),
        "the previous release stays active"
    );
    // The artifact is named after the environment (docs/deploy.md).
    assert!(srv.join("current/prod").is_file());
    assert_eq!(
        state_of(&s, "dir-agent"),
        dir_state,
        "the agent's state is unchanged"
    );
    let leftovers: Vec<String> = fs::read_dir(&srv)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("current."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Both failures reached the server.
    let history = s.history("prod");
    let reports = history["deployments"].as_array().unwrap();
    for agent in ["exec-agent", "dir-agent"] {
        let of = |status: &str, seq: u64| {
            reports
                .iter()
                .filter(|d| d["agent"] == agent && d["status"] == status && d["seq"] == seq)
                .count()
        };
        assert_eq!(of("active", 1), 1, "{agent}: {history}");
        assert_eq!(of("failed", 2), 1, "{agent}: {history}");
        let failed = reports
            .iter()
            .find(|d| d["agent"] == agent && d["status"] == "failed")
            .unwrap();
        assert_eq!(failed["digest"], r2.to_string());
        assert!(
            failed["detail"].as_str().unwrap().contains("activation on"),
            "{failed}"
        );
    }

    // Once the fault is gone, the next run deploys release 2.
    let (code, _, err) = deploy_once(&s, "exec-agent", "exec:true");
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = deploy_once(&s, "dir-agent", &dir_target);
    assert_eq!(code, 0, "{err}");
    assert_eq!(s.current("prod"), Some(r2.hex()));
    let _ = fs::remove_dir_all(s.d());
}
