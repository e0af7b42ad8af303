//! `custody deploy` end to end: its help, its operational errors (exit 2), and a run against a
//! small fake custody server (the real server's release API is built elsewhere): a release is
//! deployed and reported, the same one is no change, and a release signed by another key, a
//! tampered artifact or a replayed older release is refused (exit 1) with the previous release
//! left active. With a real log: a logged release verifies with --trusted-root.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod logd;

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use common::{assert_fails, custody, run, tempdir};
use custody_core::bundle::Bundle;
use custody_core::digest::Sha256Digest;
use custody_core::dsse::sign_in_toto;
use custody_core::keys::{KeyAlgorithm, SigningKey};
use custody_release::model::{Release, ReleaseKind};
use custody_release::statement::{
    CurrentFacts, ReleaseFacts, current_release, release as release_statement,
};
use serde_json::{Value, json};

const TOKEN: &str = "agent-token";

/// What the fake server serves and what it was sent.
struct Served {
    /// The server's release key: it signs the current-release statements.
    key: SigningKey,
    current: Option<Release>,
    artifacts: HashMap<String, Vec<u8>>,
    deployments: Vec<Value>,
    authorizations: Vec<String>,
}

struct FakeServer {
    url: String,
    state: Arc<Mutex<Served>>,
}

impl FakeServer {
    /// A server whose release key is `key` (its current-release statements are signed by it).
    fn start(key: &SigningKey) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let key = SigningKey::from_pkcs8_der(&key.to_pkcs8_der().unwrap()).unwrap();
        let state = Arc::new(Mutex::new(Served {
            key,
            current: None,
            artifacts: HashMap::new(),
            deployments: Vec::new(),
            authorizations: Vec::new(),
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let _ = handle(stream, &shared);
            }
        });
        Self { url, state }
    }

    fn serve(&self, release: Release, artifact: &[u8]) {
        let mut s = self.state.lock().unwrap();
        s.artifacts
            .insert(release.digest.clone(), artifact.to_vec());
        s.current = Some(release);
    }

    fn deployments(&self) -> Vec<Value> {
        self.state.lock().unwrap().deployments.clone()
    }
}

fn handle(stream: std::net::TcpStream, state: &Mutex<Served>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (method, path) = (method.to_owned(), path.to_owned());
    let mut length = 0usize;
    let mut authorization = String::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "authorization" => authorization = value.trim().to_owned(),
                _ => {}
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let (status, answer): (u16, Vec<u8>) = {
        let mut s = state.lock().unwrap();
        s.authorizations.push(authorization);
        match (method.as_str(), path.as_str()) {
            ("GET", "/api/v1/environments/prod") => (
                200,
                json!({ "environment": "prod", "current": s.current })
                    .to_string()
                    .into_bytes(),
            ),
            ("GET", "/api/v1/environments/prod/current-release") => match &s.current {
                None => (404, b"{\"message\":\"no release yet\"}".to_vec()),
                Some(r) => (200, current_answer(&s.key, r)),
            },
            ("GET", p) if p.starts_with("/api/v1/artifacts/") => {
                match s.artifacts.get(&p["/api/v1/artifacts/".len()..]) {
                    Some(bytes) => (200, bytes.clone()),
                    None => (404, b"{\"message\":\"no such artifact\"}".to_vec()),
                }
            }
            ("POST", "/api/v1/deployments") => {
                s.deployments.push(serde_json::from_slice(&body).unwrap());
                (201, b"{}".to_vec())
            }
            _ => (404, b"{\"message\":\"no such environment\"}".to_vec()),
        }
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        answer.len()
    )?;
    stream.write_all(&answer)?;
    stream.flush()
}

/// The server's signed current-release statement for `r`, issued now, valid five minutes.
fn current_answer(key: &SigningKey, r: &Release) -> Vec<u8> {
    let now = Utc::now();
    let statement = current_release(&CurrentFacts {
        environment: r.environment.clone(),
        seq: r.seq,
        digest: r.digest.parse().unwrap(),
        release_bundle: Sha256Digest::of(r.bundle.as_bytes()),
        release_log_index: r.log_index,
        issued_at: now,
        expires: now + chrono::Duration::minutes(5),
        checkpoint: None,
    });
    let envelope = sign_in_toto(key, statement.to_json_bytes()).unwrap();
    let envelope: Value = serde_json::from_str(&envelope.to_json()).unwrap();
    json!({ "environment": r.environment, "seq": r.seq, "envelope": envelope })
        .to_string()
        .into_bytes()
}

fn release(key: &SigningKey, seq: u64, artifact: &[u8], previous: Option<&[u8]>) -> Release {
    let digest = Sha256Digest::of(artifact);
    let previous = previous.map(|p| (seq - 1, Sha256Digest::of(p).to_string()));
    let statement = release_statement(&ReleaseFacts {
        digest: &digest,
        environment: "prod",
        seq,
        kind: ReleaseKind::Promotion,
        from_environment: Some("staging"),
        requested_by: "alice",
        policy_digest: "sha256:00",
        reason: None,
        at: Utc::now(),
        previous: previous.as_ref().map(|(s, d)| (*s, d.as_str())),
    });
    let envelope = sign_in_toto(key, statement.to_json_bytes()).unwrap();
    let bundle = Bundle::new_dsse_v03(key.public_key().key_id().to_string(), envelope);
    record(seq, &digest, bundle.to_json())
}

fn record(seq: u64, digest: &Sha256Digest, bundle: String) -> Release {
    Release {
        environment: "prod".into(),
        seq,
        digest: digest.to_string(),
        kind: ReleaseKind::Promotion,
        from_environment: Some("staging".into()),
        requested_by: "alice".into(),
        at: Utc::now(),
        policy_digest: "sha256:00".into(),
        reason: None,
        request_id: None,
        bundle,
        log_index: None,
        vsa: None,
    }
}

fn deploy(d: &Path, server: &str, target: &str, extra: &[&str]) -> (i32, String, String) {
    let mut cmd = custody(d);
    cmd.args([
        "deploy",
        "prod",
        "--server",
        server,
        "--target",
        target,
        "--release-key",
        "release.pub",
        "--state",
        "state",
        "--agent-name",
        "test-agent",
    ])
    .args(extra)
    .env("CUSTODY_TOKEN", TOKEN);
    run(&mut cmd)
}

fn current(d: &Path) -> String {
    std::fs::read_link(d.join("app/current"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn rel(artifact: &[u8]) -> String {
    format!("releases/{}", Sha256Digest::of(artifact).hex())
}

#[test]
fn help_names_every_flag() {
    let dir = tempdir();
    let (code, out, err) = run(custody(dir.path()).args(["deploy", "--help"]));
    assert_eq!(code, 0, "{err}");
    for flag in [
        "--server",
        "--target",
        "dir:PATH",
        "exec:COMMAND",
        "--release-key",
        "--trusted-root",
        "--watch",
        "--interval",
        "--state",
        "--token",
        "CUSTODY_TOKEN",
        "--agent-name",
        "Exit status: 0 deployed or no change, 1 refused",
    ] {
        assert!(out.contains(flag), "help lacks {flag}: {out}");
    }
}

#[test]
fn operational_errors_exit_2_with_one_line() {
    let dir = tempdir();
    let d = dir.path();
    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
    std::fs::write(d.join("release.pub"), key.public_key().to_pem()).unwrap();
    // Nothing listens on a port just released.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    assert_fails(
        deploy(d, &closed, "dir:app", &[]),
        2,
        &["is the custody server running", "--server"],
    );
    assert_fails(
        deploy(d, &closed, "ftp:/srv", &[]),
        2,
        &["--target", "dir:PATH", "exec:COMMAND"],
    );
    assert_fails(
        deploy(d, "ftp://x", "dir:app", &[]),
        2,
        &["--server", "http://"],
    );
    let mut cmd = custody(d);
    cmd.args([
        "deploy",
        "prod",
        "--server",
        &closed,
        "--target",
        "dir:app",
        "--release-key",
        "missing.pub",
        "--state",
        "state",
    ]);
    assert_fails(run(&mut cmd), 2, &["missing.pub", "no such file"]);
    let mut cmd = custody(d);
    cmd.args([
        "deploy",
        "../prod",
        "--server",
        &closed,
        "--target",
        "dir:app",
        "--release-key",
        "release.pub",
        "--state",
        "state",
    ]);
    assert_fails(run(&mut cmd), 2, &["environment", "letters, digits"]);
    // JSON output carries the same error.
    let (code, out, _) = deploy(d, &closed, "dir:app", &["-o", "json"]);
    assert_eq!(code, 2);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (doc["ok"].as_bool(), doc["denied"].as_bool()),
        (Some(false), Some(false))
    );
}

#[test]
fn deploys_reports_and_refuses_against_a_server() {
    let dir = tempdir();
    let d = dir.path();
    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
    std::fs::write(d.join("release.pub"), key.public_key().to_pem()).unwrap();
    let server = FakeServer::start(&key);

    // No release yet.
    let (code, out, err) = deploy(d, &server.url, "dir:app", &["-o", "json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["decision"],
        "no-release"
    );

    // Release 1: deployed, `current` switched, reported active with the token.
    server.serve(release(&key, 1, b"app v1", None), b"app v1");
    let (code, out, err) = deploy(d, &server.url, "dir:app", &["-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["decision"], "deployed", "{doc}");
    assert_eq!(doc["seq"], 1);
    assert_eq!(doc["tlog"]["status"], "absent");
    assert_eq!(current(d), rel(b"app v1"));
    assert_eq!(
        std::fs::read(d.join("app/current/prod")).unwrap(),
        b"app v1"
    );
    let reports = server.deployments();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["status"], "active");
    assert_eq!(reports[0]["seq"], 1);
    assert_eq!(reports[0]["agent"], "test-agent");
    assert_eq!(
        reports[0]["digest"],
        Sha256Digest::of(b"app v1").to_string()
    );
    assert!(
        server
            .state
            .lock()
            .unwrap()
            .authorizations
            .iter()
            .all(|a| a == &format!("Bearer {TOKEN}"))
    );

    // The same release: no change, nothing reported.
    let (code, out, err) = deploy(d, &server.url, "dir:app", &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("no change"), "{out}");
    assert_eq!(server.deployments().len(), 1);

    // Release 2 signed by another key: refused, reported failed, v1 still active.
    let other = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
    server.serve(release(&other, 2, b"app v2", Some(b"app v1")), b"app v2");
    assert_fails(
        deploy(d, &server.url, "dir:app", &[]),
        1,
        &[
            "refused prod release 2",
            "sha256:",
            "signature",
            "fix:",
            "--release-key",
        ],
    );
    assert_eq!(current(d), rel(b"app v1"));
    let reports = server.deployments();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[1]["status"], "failed");
    assert!(reports[1]["detail"].as_str().unwrap().contains("refused"));

    // Release 2 properly signed, but the server's artifact bytes are not the release's.
    server.serve(release(&key, 2, b"app v2", Some(b"app v1")), b"tampered");
    let (code, out, _) = deploy(d, &server.url, "dir:app", &["-o", "json"]);
    assert_eq!(code, 1);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (doc["denied"].as_bool(), doc["code"].as_str()),
        (Some(true), Some("artifact.mismatch"))
    );
    assert_eq!(current(d), rel(b"app v1"));

    // The right bytes: deployed; v1 stays in releases/.
    server.serve(release(&key, 2, b"app v2", Some(b"app v1")), b"app v2");
    let (code, out, err) = deploy(d, &server.url, "dir:app", &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("deployed prod release 2"), "{out}");
    assert_eq!(current(d), rel(b"app v2"));
    assert!(d.join("app").join(rel(b"app v1")).is_dir());

    // The server answers with release 1 again (a replay, or a restored database).
    server.serve(release(&key, 1, b"app v1", None), b"app v1");
    assert_fails(
        deploy(d, &server.url, "dir:app", &[]),
        1,
        &["refused prod release 1", "stale", "fix:"],
    );
    assert_eq!(current(d), rel(b"app v2"));

    // An exec: target whose command fails: exit 2, state not advanced.
    server.serve(release(&key, 3, b"app v3", Some(b"app v2")), b"app v3");
    let saved = std::fs::read(d.join("state/state.json")).unwrap();
    assert_fails(
        deploy(d, &server.url, "exec:echo deploying >&2; exit 4", &[]),
        2,
        &["activation", "exit status: 4", "state is unchanged"],
    );
    assert_eq!(std::fs::read(d.join("state/state.json")).unwrap(), saved);
    assert_eq!(server.deployments().last().unwrap()["status"], "failed");
}

#[cfg(unix)]
#[test]
fn watch_deploys_each_change_survives_a_refusal_and_stops_on_sigterm() {
    let dir = tempdir();
    let d = dir.path();
    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
    std::fs::write(d.join("release.pub"), key.public_key().to_pem()).unwrap();
    let server = FakeServer::start(&key);
    server.serve(release(&key, 1, b"w1", None), b"w1");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("custody"))
        .current_dir(d)
        .env("XDG_CONFIG_HOME", d.join(".config"))
        .env_remove("RUST_LOG")
        .args([
            "deploy",
            "prod",
            "--server",
            &server.url,
            "--target",
            "dir:app",
            "--release-key",
            "release.pub",
            "--state",
            "state",
            "--watch",
            "--interval",
            "1s",
            "-o",
            "json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let wait_for = |want: &str| {
        let started = Instant::now();
        while std::fs::read_link(d.join("app/current"))
            .map(|l| l.to_string_lossy().into_owned())
            .ok()
            .as_deref()
            != Some(want)
        {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "never switched to {want}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for(&rel(b"w1"));
    // A refused release (another key) does not stop the loop; the next good one deploys.
    let other = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
    server.serve(release(&other, 2, b"w2", Some(b"w1")), b"w2");
    let started = Instant::now();
    while !server.deployments().iter().any(|r| r["status"] == "failed") {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "refusal never reported"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server.serve(release(&key, 2, b"w2", Some(b"w1")), b"w2");
    wait_for(&rel(b"w2"));

    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{status}: {err}");
    // One JSON line per decision: deployed 1, refused 2, deployed 2 (repeats are not printed).
    let decisions: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary: Vec<(Value, Value)> = decisions
        .iter()
        .map(|d| (d["decision"].clone(), d["code"].clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (json!("deployed"), Value::Null),
            (Value::Null, json!("signature.invalid")),
            (json!("deployed"), Value::Null),
        ],
        "{out}"
    );
    assert_eq!(err.matches("refused prod release 2").count(), 1, "{err}");
}

#[test]
fn a_logged_release_verifies_with_the_logs_trusted_root() {
    let dir = tempdir();
    let d = dir.path();
    let log = logd::Daemon::log(&d.join("log"), &[]);
    let token = d.join("log.token");
    common::keygen(d, "release", "ecdsa-p256");
    // The release statement, signed and logged by `custody attest` (its subject is the file).
    std::fs::write(d.join("app.bin"), b"logged release").unwrap();
    let digest = Sha256Digest::of(b"logged release");
    let predicate = json!({
        "environment": "prod", "seq": 1, "kind": "promotion", "fromEnvironment": "staging",
        "requestedBy": "alice", "policyDigest": "sha256:00", "reason": null,
        "releasedAt": "2026-01-01T00:00:00Z", "previous": null,
    });
    std::fs::write(d.join("p.json"), predicate.to_string()).unwrap();
    let mut cmd = custody(d);
    cmd.args([
        "attest",
        "app.bin",
        "--key",
        "release.key",
        "--type",
        "https://custody.dev/release/v1",
        "--predicate",
        "p.json",
        "--log",
        &log.url,
        "--log-token-file",
        token.to_str().unwrap(),
    ]);
    let (code, _, err) = run(&mut cmd);
    assert_eq!(code, 0, "{err}");
    let mut cmd = custody(d);
    cmd.args([
        "trust-root",
        "export",
        "--server",
        &log.url,
        "--out",
        "tr.json",
    ]);
    let (code, _, err) = run(&mut cmd);
    assert_eq!(code, 0, "{err}");
    // A non-provenance predicate type gets its own bundle name (`.release.`, from the type).
    let logged = std::fs::read_to_string(d.join("app.bin.release.sigstore.json")).unwrap();

    let release_key = SigningKey::from_pem(
        &std::fs::read(d.join("release.key")).unwrap(),
        Some(common::PASSWORD.as_bytes()),
    )
    .unwrap();
    let server = FakeServer::start(&release_key);
    // Without its log entry, the release is refused when a trusted root is required.
    let mut bare: Value = serde_json::from_str(&logged).unwrap();
    bare["verificationMaterial"]["tlogEntries"] = json!([]);
    server.serve(record(1, &digest, bare.to_string()), b"logged release");
    assert_fails(
        deploy(d, &server.url, "dir:app", &["--trusted-root", "tr.json"]),
        1,
        &["refused prod release 1", "no log entry", "--trusted-root"],
    );
    server.serve(record(1, &digest, logged), b"logged release");
    let (code, out, err) = deploy(
        d,
        &server.url,
        "dir:app",
        &["--trusted-root", "tr.json", "-o", "json"],
    );
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["tlog"]["status"], "verified", "{doc}");
    assert_eq!(doc["name"], "app.bin");
    assert_eq!(
        std::fs::read(d.join("app/current/app.bin")).unwrap(),
        b"logged release"
    );
}
