//! Helpers for tests that run `custody serve` and `custody log witness serve` as real processes.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use custody_core::digest::Sha256Digest;
use custody_core::encoding::base64_encode;
use custody_core::keys::{KeyAlgorithm, SignedData, SigningKey};

pub const TOKEN: &str = "test-write-token";

/// A running server; killed when dropped.
pub struct Daemon {
    pub child: Child,
    pub url: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// Starts `custody ARGS...` and waits for its "listening on URL" line.
    pub fn start(args: &[&str]) -> Daemon {
        Self::start_with_env(args, &[])
    }

    /// [`Daemon::start`] with extra environment variables.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("custody"))
            .args(args)
            .envs(env.iter().copied())
            .env_remove("CUSTODY_WRITE_TOKEN")
            .env_remove("CUSTODY_HOME")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .rsplit(' ')
            .next()
            .filter(|u| u.starts_with("http://"))
            .unwrap_or_else(|| panic!("no listening line: {line:?}"))
            .to_owned();
        Daemon { child, url }
    }

    /// Starts a log server on a free loopback port with a write token.
    pub fn log(data_dir: &Path, extra: &[&str]) -> Daemon {
        let token = data_dir.with_extension("token");
        std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
        let mut args = vec![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--origin",
            "log.test",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--write-token-file",
            token.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        Daemon::start(&args)
    }

    /// Stops the process with SIGTERM and waits for a clean exit.
    pub fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "exit after SIGTERM: {status}");
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// GET: (status, Cache-Control, body).
pub fn get(url: &str) -> (u16, String, Vec<u8>) {
    let mut r = agent().get(url).call().unwrap();
    let cache = r
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = r
        .body_mut()
        .with_config()
        .limit(1 << 26)
        .read_to_vec()
        .unwrap();
    (r.status().as_u16(), cache, body)
}

/// POST a write request: (status, body as JSON or text).
pub fn post_entry(base: &str, body: &str, token: Option<&str>) -> (u16, String) {
    let mut req = agent().post(format!("{base}/api/v2/log/entries"));
    if let Some(token) = token {
        req = req.header("Authorization", format!("Bearer {token}"));
    }
    let mut r = req
        .header("Content-Type", "application/json")
        .send(body)
        .unwrap();
    let text = r.body_mut().read_to_string().unwrap();
    (r.status().as_u16(), text)
}

pub fn checkpoint(base: &str) -> String {
    String::from_utf8(get(&format!("{base}/checkpoint")).2).unwrap()
}

pub fn tree_size(base: &str) -> u64 {
    checkpoint(base).lines().nth(1).unwrap().parse().unwrap()
}

pub fn p256() -> SigningKey {
    SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap()
}

/// A hashedRekordRequestV002 for `data`, signed by `key` (over the digest).
pub fn hashedrekord(key: &SigningKey, data: &[u8]) -> String {
    let digest = Sha256Digest::of(data);
    let signature = key
        .sign(SignedData::Sha256Digest(digest.as_bytes()))
        .unwrap();
    serde_json::json!({ "hashedRekordRequestV002": {
        "digest": base64_encode(digest.as_bytes()),
        "signature": { "content": base64_encode(&signature), "verifier": {
            "publicKey": { "rawBytes": base64_encode(key.public_key().spki_der()) },
            "keyDetails": "PKIX_ECDSA_P256_SHA_256" } } } })
    .to_string()
}

pub fn vkey(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.join("log.vkey"))
        .unwrap()
        .trim()
        .to_owned()
}

/// Runs the custody binary to completion: (exit code, stdout, stderr).
pub fn custody(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(assert_cmd::cargo::cargo_bin("custody"))
        .args(args)
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn path_str(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

pub fn scratch() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    (dir, data)
}
