//! The deploy agent against replayed and stale answers, with the real `custody serve`: an
//! agent that is behind (at seq 1) is served, by a small replaying HTTP server standing
//! between it and the custody server, the answers recorded while release 2 was current. The
//! agent must not activate release 2: its artifact has been revoked since (attack 3 of issue
//! #16), or the recorded current-release statement has expired. And a quarantined artifact's
//! bytes go to auditors only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod release_world;

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use custody_core::digest::Sha256Digest;
use release_world::common::{assert_fails, run};
use release_world::{Options, Story, http, release, setup_with, token};
use serde_json::Value;

/// Recorded answers (status, body) by request path.
type Answers = Mutex<HashMap<String, (u16, Vec<u8>)>>;

/// Recorded answers by request path; a path not recorded is passed to `upstream`.
struct Replay {
    url: String,
    answers: Arc<Answers>,
}

impl Replay {
    fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let answers: Arc<Answers> = Arc::default();
        let (shared, upstream) = (answers.clone(), upstream.to_owned());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let _ = answer(stream, &shared, &upstream);
            }
        });
        Self { url, answers }
    }

    /// Records the custody server's answer to `GET path` (as the release manager) now.
    fn record(&self, s: &Story, path: &str) -> (u16, Vec<u8>) {
        let answer = get_bytes(s.url(), path, "rm");
        self.answers
            .lock()
            .unwrap()
            .insert(path.to_owned(), answer.clone());
        answer
    }
}

/// `GET base+path` as `who`: (status, body bytes).
fn get_bytes(base: &str, path: &str, who: &str) -> (u16, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .get(&format!("{base}{path}"))
        .header("Authorization", &format!("Bearer {}", token(who)))
        .call()
        .unwrap();
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_vec().unwrap())
}

fn answer(stream: std::net::TcpStream, answers: &Answers, upstream: &str) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_owned(),
        parts.next().unwrap_or("").to_owned(),
    );
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let recorded = answers.lock().unwrap().get(&path).cloned();
    let (status, bytes) = match (recorded, method.as_str()) {
        (Some(a), _) => a,
        (None, "GET") => get_bytes(upstream, &path, "rm"),
        // Reports and anything else: accepted and dropped.
        (None, _) => (201, b"{}".to_vec()),
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        bytes.len()
    )?;
    stream.write_all(&bytes)?;
    stream.flush()
}

/// `custody deploy prod` once, against `server`, as the release manager's agent.
fn deploy_once(s: &Story, server: &str) -> (i32, String, String) {
    let d = s.d();
    run(release_world::common::custody(d)
        .env("CUSTODY_TOKEN", token("rm"))
        .args([
            "deploy",
            "prod",
            "--server",
            server,
            "--target",
            &format!("dir:{}", d.join("srv/prod").display()),
            "--release-key",
            "keys/release.pub",
            "--state",
            &d.join("state/prod").to_string_lossy(),
            "--agent-name",
            "agent-prod",
        ]))
}

fn active(d: &Path) -> String {
    std::fs::read_link(d.join("srv/prod/current"))
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn revoke(s: &Story, digest: &Sha256Digest) {
    let key = s.d().join("keys/sec.key");
    let revoked = s.json(
        "sec",
        &[
            "revoke",
            &format!("digest:{digest}"),
            "--reason",
            "release 2 is compromised",
            "--key",
            key.to_str().unwrap(),
        ],
    );
    assert_eq!(
        revoked["reconcile"]["quarantined"][0],
        digest.to_string(),
        "{revoked}"
    );
}

/// A world without watch agents whose prod agent deployed release 1 (state at seq 1), then
/// release 2 was made: (story, release 1, release 2).
fn agent_behind(lifetime: Option<&str>) -> (Story, Sha256Digest, Sha256Digest) {
    let mut s = setup_with(&Options::default());
    if let Some(lifetime) = lifetime {
        let config = s.d().join("release.toml");
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(
            &config,
            format!("current_release_lifetime = {lifetime:?}\n{text}"),
        )
        .unwrap();
        s.restart_server();
    }
    let r1 = release(&s, 1, "ci");
    let (code, out, err) = deploy_once(&s, s.url());
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(active(s.d()), r1.hex());
    let r2 = release(&s, 2, "ci");
    (s, r1, r2)
}

#[test]
fn attack_replayed_release_statement_for_revoked_artifact_is_not_activated() {
    let (s, r1, r2) = agent_behind(None);
    // Recorded while release 2 was prod's current release: the answer and the bytes.
    let replay = Replay::start(s.url());
    let (status, recorded) = replay.record(&s, "/api/v1/environments/prod");
    assert_eq!(status, 200);
    let recorded: Value = serde_json::from_slice(&recorded).unwrap();
    assert_eq!(recorded["current"]["seq"], 2, "{recorded}");
    assert_eq!(recorded["current"]["digest"], r2.to_string());
    let (status, _) = replay.record(&s, &format!("/api/v1/artifacts/{r2}"));
    assert_eq!(status, 200);

    // Release 2 is revoked: the server quarantines it and rolls prod back to release 1.
    revoke(&s, &r2);
    let (status, now) = s.get("rm", "/api/v1/environments/prod");
    assert_eq!(
        (status, &now["current"]["kind"]),
        (200, &Value::from("rollback"))
    );
    assert_eq!(now["current"]["digest"], r1.to_string());

    // The agent, still at seq 1, is handed the recorded seq-2 answer and bytes. The signed
    // release record verifies and continues its history, but the server's fresh word (asked
    // through the replayer) is about the rollback: nothing is activated.
    assert_fails(
        deploy_once(&s, &replay.url),
        1,
        &[
            "refused prod release 2",
            &r2.to_string(),
            "current release is seq 3",
            "fix:",
        ],
    );
    assert_eq!(active(s.d()), r1.hex());
    let state: Value =
        serde_json::from_slice(&std::fs::read(s.d().join("state/prod/state.json")).unwrap())
            .unwrap();
    assert_eq!(state["seq"], 1, "{state}");

    // The server vouches for the rollback only.
    let (status, body) = s.get("rm", "/api/v1/environments/prod/current-release");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["seq"].as_u64(), body["digest"].as_str()),
        (Some(3), Some(r1.to_string().as_str()))
    );

    // Told the truth, the agent takes the rollback (release 1's bytes, already active).
    let (code, out, err) = deploy_once(&s, s.url());
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(active(s.d()), r1.hex());
}

#[test]
fn attack_stale_current_release_statement_is_refused() {
    let (s, r1, r2) = agent_behind(Some("2s"));
    let replay = Replay::start(s.url());
    replay.record(&s, "/api/v1/environments/prod");
    replay.record(&s, &format!("/api/v1/artifacts/{r2}"));
    // The server's current-release statement for release 2, recorded: valid for 2 s.
    let (status, statement) = replay.record(&s, "/api/v1/environments/prod/current-release");
    assert_eq!(status, 200);
    let statement: Value = serde_json::from_slice(&statement).unwrap();
    assert_eq!(statement["seq"], 2, "{statement}");
    let issued = chrono::DateTime::parse_from_rfc3339(statement["issuedAt"].as_str().unwrap());
    let expires = chrono::DateTime::parse_from_rfc3339(statement["expires"].as_str().unwrap());
    assert_eq!((expires.unwrap() - issued.unwrap()).num_seconds(), 2);

    // Replayed once it has expired (release 2 revoked meanwhile; the replayer hides it).
    revoke(&s, &r2);
    std::thread::sleep(Duration::from_millis(3100));
    assert_fails(
        deploy_once(&s, &replay.url),
        1,
        &[
            "refused prod release 2",
            "expired",
            "prod seq 2",
            "fix:",
            "clock",
        ],
    );
    assert_eq!(active(s.d()), r1.hex());
}

#[test]
fn attack_quarantined_artifact_bytes_not_served_except_to_auditors() {
    let (s, r1, r2) = agent_behind(None);
    let path = format!("/api/v1/artifacts/{r2}");
    let (status, bytes) = get_bytes(s.url(), &path, "rm");
    assert_eq!(status, 200);
    assert_eq!(Sha256Digest::of(&bytes), r2);
    revoke(&s, &r2);
    // The release manager (an agent's token) and a builder: 403, saying why and who may.
    for who in ["rm", "ci"] {
        let (status, body) = http(s.url(), "GET", &path, who, None);
        assert_eq!(status, 403, "{who}: {body}");
        let message = body["message"].as_str().unwrap();
        for word in [
            r2.to_string().as_str(),
            "quarantined by revocation #1",
            "auditor",
        ] {
            assert!(message.contains(word), "{who}: {message}");
        }
    }
    // Auditors (and admins) still get the bytes, for forensics.
    for who in ["aud", "sec"] {
        let (status, bytes) = get_bytes(s.url(), &path, who);
        assert_eq!(status, 200, "{who}");
        assert_eq!(Sha256Digest::of(&bytes), r2, "{who}");
    }
    // Release 1 is not withheld.
    let (status, _) = get_bytes(s.url(), &format!("/api/v1/artifacts/{r1}"), "rm");
    assert_eq!(status, 200);

    // Release 1 revoked too: prod has nothing earlier to go back to and stays on it, but the
    // server vouches for it to no agent.
    revoke(&s, &r1);
    let (status, now) = s.get("rm", "/api/v1/environments/prod");
    assert_eq!(
        (status, now["current"]["digest"].as_str()),
        (200, Some(r1.to_string().as_str()))
    );
    let (status, body) = s.get("rm", "/api/v1/environments/prod/current-release");
    assert_eq!(status, 409, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("{r1} is quarantined by revocation #2")),
        "{message}"
    );
}
