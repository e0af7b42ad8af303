//! Shared by the integration tests: the binary, test data, peers and a scratch directory.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Output;

pub const PASSWORD: &str = "correct horse battery staple";

pub fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

pub fn testdata(rel: &str) -> PathBuf {
    shared().join("testdata").join(rel)
}

/// The peer verifiers' prefix; a test that needs one fails (never skips) when it is missing.
pub fn peers() -> PathBuf {
    std::env::var_os("CUSTODY_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.peers"))
}

pub fn custody(dir: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("custody").unwrap_or_else(|e| panic!("{e}"));
    cmd.current_dir(dir)
        .env("CUSTODY_PASSWORD", PASSWORD)
        .env("XDG_CONFIG_HOME", dir.join(".config"))
        .env_remove("CUSTODY_KEY")
        .env_remove("CUSTODY_PUBLIC_KEY")
        .env_remove("CUSTODY_OUTPUT")
        .env_remove("CUSTODY_CONFIG")
        .env_remove("RUST_LOG");
    cmd
}

/// Runs and returns (exit code, stdout, stderr).
pub fn run(cmd: &mut assert_cmd::Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap_or_else(|e| panic!("{e}"));
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// Asserts an error is one line on stderr, with the given exit code and words.
pub fn assert_fails(out: (i32, String, String), code: i32, words: &[&str]) {
    let (status, _, stderr) = out;
    assert_eq!(status, code, "exit code; stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "one error line expected: {stderr}");
    for w in words {
        assert!(lines[0].contains(w), "error line lacks {w:?}: {}", lines[0]);
    }
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"))
}

/// Generates NAME.key/NAME.pub in dir with the given algorithm.
pub fn keygen(dir: &Path, name: &str, algorithm: &str) {
    let (code, _, err) =
        run(custody(dir).args(["key", "generate", name, "--algorithm", algorithm]));
    assert_eq!(code, 0, "{err}");
}
