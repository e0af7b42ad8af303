//! `custody build`, `custody lint`, `custody rebuild`: the real binary running real builds
//! (a Rust crate, an npm package, a build that embeds the time) from `tests/fixtures/build`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/build")
        .join(name)
}

/// Copies a fixture into `dir` (cp -a keeps the build scripts executable).
fn copy_fixture(name: &str, dir: &Path) {
    let ok = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", fixture(name).display()))
        .arg(dir)
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(["-c", "user.email=t@example.com", "-c", "user.name=t"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
        .status
        .success();
    assert!(ok, "git {args:?}");
}

/// A git work tree with a key pair (ignored) and the fixture committed.
fn repo_with(fixture_name: Option<&str>) -> tempfile::TempDir {
    let dir = tempdir();
    let d = dir.path();
    if let Some(name) = fixture_name {
        copy_fixture(name, d);
    }
    fs::write(
        d.join(".gitignore"),
        "k.key\nk.pub\n*.sigstore.json\ntarget/\ndist/\nout/\n",
    )
    .unwrap();
    git(d, &["init", "-q"]);
    git(d, &["add", "-A"]);
    git(d, &["commit", "-qm", "fixture"]);
    keygen(d, "k", "ecdsa-p256");
    dir
}

/// The in-toto statement inside a bundle (not verified: the tests verify separately).
fn statement(bundle: &Path) -> serde_json::Value {
    let doc: serde_json::Value = serde_json::from_slice(&fs::read(bundle).unwrap()).unwrap();
    let payload = doc["dsseEnvelope"]["payload"].as_str().unwrap();
    let out = Command::new("base64").arg("-d").stdin_bytes(payload);
    serde_json::from_slice(&out).unwrap()
}

trait StdinBytes {
    fn stdin_bytes(&mut self, input: &str) -> Vec<u8>;
}

impl StdinBytes for Command {
    fn stdin_bytes(&mut self, input: &str) -> Vec<u8> {
        use std::io::Write as _;
        let mut child = self
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap().stdout
    }
}

fn bundles_in(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().unwrap().is_dir() && name != ".git" {
            found.extend(bundles_in(&entry.path()));
        } else if name.contains("sigstore") || name.starts_with(".custody-") {
            found.push(entry.path().display().to_string());
        }
    }
    found
}

const TWO_FILES: &str = "mkdir -p dist && echo one > dist/a.txt && echo two > dist/b.txt";

#[test]
fn build_records_provenance_and_signs_beside_each_artifact() {
    let dir = repo_with(None);
    let d = dir.path();
    fs::write(d.join("Cargo.lock"), "version = 4\n").unwrap();
    fs::write(d.join("uncommitted.txt"), "dirty").unwrap();
    let (code, out, err) = run(custody(d)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env("MY_DEPLOY_TOKEN", "s3cr3t-value")
        .env("HOME_GROWN", "not allowlisted")
        .args([
            "build",
            "--key",
            "k.key",
            "--artifacts",
            "dist/*.txt",
            "--env",
            "MY_DEPLOY_TOKEN",
            "-o",
            "json",
        ])
        .args(["--", "sh", "-c", TWO_FILES]));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("not recording environment variable MY_DEPLOY_TOKEN"),
        "{err}"
    );
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["artifacts"].as_array().unwrap().len(), 2);
    assert_eq!(doc["sourceDirty"], true);
    for name in ["dist/a.txt", "dist/b.txt"] {
        let bundle = d.join(format!("{name}.intoto.sigstore.json"));
        assert!(!fs::read_to_string(&bundle).unwrap().contains("s3cr3t"));
        let (code, _, err) = run(custody(d).args([
            "verify",
            name,
            "--key",
            "k.pub",
            "--bundle",
            bundle.to_str().unwrap(),
        ]));
        assert_eq!(code, 0, "custody verifies what custody build signed: {err}");
    }
    let st = statement(&d.join("dist/a.txt.intoto.sigstore.json"));
    assert_eq!(st["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(st["subject"][0]["name"], "dist/a.txt");
    let p = &st["predicate"];
    let ext = &p["buildDefinition"]["externalParameters"];
    assert_eq!(ext["command"], serde_json::json!(["sh", "-c", TWO_FILES]));
    assert_eq!(
        ext["workingDirectory"],
        d.canonicalize().unwrap().to_str().unwrap()
    );
    assert_eq!(ext["environment"]["SOURCE_DATE_EPOCH"], "1700000000");
    assert!(ext["environment"].get("HOME_GROWN").is_none());
    assert_eq!(ext["source"]["dirty"], true);
    assert!(
        ext["source"]["ref"]
            .as_str()
            .unwrap()
            .starts_with("refs/heads/"),
        "{ext}"
    );
    let int = &p["buildDefinition"]["internalParameters"];
    assert_eq!(
        int["environmentWithheld"],
        serde_json::json!(["MY_DEPLOY_TOKEN"])
    );
    assert_eq!(int["network"], "host");
    let deps = p["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap();
    assert_eq!(deps[0]["digest"]["gitCommit"].as_str().unwrap().len(), 40);
    assert!(
        deps.iter()
            .any(|r| r["name"] == "Cargo.lock" && r["digest"]["sha256"].is_string()),
        "{deps:?}"
    );
    assert!(
        deps.iter().any(|r| r["name"] == "rustc"),
        "the toolchain that is present is recorded"
    );
    let meta = &p["runDetails"]["metadata"];
    assert!(
        meta["invocationId"]
            .as_str()
            .unwrap()
            .starts_with("urn:uuid:")
    );
    assert!(meta["startedOn"].as_str().unwrap() <= meta["finishedOn"].as_str().unwrap());
    assert!(
        p["runDetails"]["builder"]["id"]
            .as_str()
            .unwrap()
            .starts_with("urn:custody:builder:local:")
    );
}

#[test]
fn one_bundle_for_all_and_builder_from_ci_environment() {
    let dir = repo_with(None);
    let d = dir.path();
    let (code, out, err) = run(custody(d)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_REPOSITORY", "acme/app")
        .env("GITHUB_RUN_ID", "77")
        .args([
            "build",
            "--key",
            "k.key",
            "--artifacts",
            "dist/*",
            "--bundle",
            "all.intoto.sigstore.json",
            "-o",
            "json",
        ])
        .args(["--", "sh", "-c", TWO_FILES]));
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        doc["builderId"],
        "https://github.com/actions/runner/github-hosted"
    );
    let st = statement(&d.join("all.intoto.sigstore.json"));
    assert_eq!(st["subject"].as_array().unwrap().len(), 2);
    assert_eq!(
        st["predicate"]["buildDefinition"]["internalParameters"]["ci"]["runUrl"],
        "https://github.com/acme/app/actions/runs/77/attempts/1"
    );
    // --builder-id wins over detection.
    let (code, out, _) = run(custody(d)
        .env("GITHUB_ACTIONS", "true")
        .args([
            "build",
            "--key",
            "k.key",
            "--artifacts",
            "dist/a.txt",
            "--builder-id",
            "https://builder.example/x",
            "-o",
            "json",
        ])
        .args(["--", "true"]));
    assert_eq!(code, 0);
    assert!(out.contains("https://builder.example/x"));
}

#[test]
fn failing_command_signs_nothing_and_exits_with_its_status() {
    let dir = repo_with(None);
    let d = dir.path();
    let (code, _, err) = run(custody(d)
        .args(["build", "--key", "k.key", "--artifacts", "dist/*"])
        .args([
            "--",
            "sh",
            "-c",
            "mkdir -p dist && echo x > dist/a && exit 3",
        ]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("nothing was signed"), "{err}");
    assert!(bundles_in(d).is_empty(), "{:?}", bundles_in(d));
}

#[test]
fn bad_inputs_are_one_line_errors_and_write_nothing() {
    let dir = repo_with(None);
    let d = dir.path();
    let build = |extra: &[&str], cmd: &[&str]| {
        let mut c = custody(d);
        c.args(["build", "--key", "k.key"])
            .args(extra)
            .arg("--")
            .args(cmd);
        run(&mut c)
    };
    // A command that does not exist.
    assert_fails(
        build(&["--artifacts", "x"], &["no-such-build-tool-xyz"]),
        2,
        &["no-such-build-tool-xyz", "not found"],
    );
    // A glob that matches nothing.
    assert_fails(
        build(&["--artifacts", "dist/*.tgz"], &["sh", "-c", TWO_FILES]),
        2,
        &["dist/*.tgz", "matched no file"],
    );
    // An invalid glob, before anything runs.
    assert_fails(
        build(&["--artifacts", "dist/["], &["sh", "-c", "touch ran"]),
        2,
        &["dist/["],
    );
    assert!(!d.join("ran").exists());
    // No --artifacts at all.
    assert_fails(build(&[], &["true"]), 2, &["--artifacts"]);
    // A symlink that points outside the tree.
    let outside = tempdir();
    fs::write(outside.path().join("secret"), "x").unwrap();
    let link = format!(
        "mkdir -p dist && ln -sf {}/secret dist/app",
        outside.path().display()
    );
    assert_fails(
        build(&["--artifacts", "dist/app"], &["sh", "-c", &link]),
        1,
        &["dist/app", "outside the build tree"],
    );
    // A symlink inside the tree is fine.
    let (code, _, err) = build(
        &["--artifacts", "dist/link"],
        &[
            "sh",
            "-c",
            "mkdir -p dist && echo a > dist/real && ln -sf real dist/link",
        ],
    );
    assert_eq!(code, 0, "{err}");
    fs::remove_file(d.join("dist/link.intoto.sigstore.json")).unwrap();
    // An unwritable output location.
    assert_fails(
        build(
            &[
                "--artifacts",
                "dist/a.txt",
                "--bundle",
                "/proc/custody.json",
            ],
            &["sh", "-c", TWO_FILES],
        ),
        2,
        &["/proc"],
    );
    fs::write(d.join("afile"), "").unwrap();
    assert_fails(
        build(
            &["--artifacts", "dist/a.txt", "--bundle", "afile/b.json"],
            &["sh", "-c", TWO_FILES],
        ),
        2,
        &["afile"],
    );
    assert!(bundles_in(d).is_empty(), "{:?}", bundles_in(d));
}

#[test]
fn an_artifact_modified_between_hashing_and_signing_is_refused() {
    let dir = repo_with(None);
    let d = dir.path();
    let (code, _, err) = run(custody(d)
        .env(
            "CUSTODY_TEST_ONLY_RUN_BEFORE_SIGNING",
            "echo swapped >> dist/b.txt",
        )
        .args(["build", "--key", "k.key", "--artifacts", "dist/*.txt"])
        .args(["--", "sh", "-c", TWO_FILES]));
    assert_fails((code, String::new(), err), 1, &["dist/b.txt", "changed"]);
    assert!(
        bundles_in(d).is_empty(),
        "nothing half-written: {:?}",
        bundles_in(d)
    );
    // Replaced by another file of the same size (new inode): also refused.
    let (code, _, err) = run(custody(d)
        .env(
            "CUSTODY_TEST_ONLY_RUN_BEFORE_SIGNING",
            "echo owt > dist/x && mv dist/x dist/a.txt",
        )
        .args(["build", "--key", "k.key", "--artifacts", "dist/*.txt"])
        .args(["--", "sh", "-c", TWO_FILES]));
    assert_fails((code, String::new(), err), 1, &["dist/a.txt", "changed"]);
    assert!(bundles_in(d).is_empty());
}

#[test]
fn hermetic_build_has_no_network_and_says_so() {
    let dir = repo_with(None);
    let d = dir.path();
    let (code, _, err) = run(custody(d)
        .args([
            "build",
            "--hermetic",
            "--key",
            "k.key",
            "--artifacts",
            "net.txt",
        ])
        .args(["--", "sh", "-c", "cat /proc/net/dev > net.txt"]));
    assert_eq!(code, 0, "{err}");
    let net = fs::read_to_string(d.join("net.txt")).unwrap();
    let interfaces: Vec<&str> = net
        .lines()
        .skip(2)
        .map(|l| l.split(':').next().unwrap().trim())
        .collect();
    assert_eq!(
        interfaces,
        vec!["lo"],
        "only loopback inside the namespace: {net}"
    );
    let st = statement(&d.join("net.txt.intoto.sigstore.json"));
    assert_eq!(
        st["predicate"]["buildDefinition"]["externalParameters"]["hermetic"],
        true
    );
    assert!(
        st["predicate"]["buildDefinition"]["internalParameters"]["network"]
            .as_str()
            .unwrap()
            .starts_with("none")
    );
    // Without namespaces (no unshare on PATH) it refuses instead of running with network.
    let (code, _, err) = run(custody(d)
        .env("PATH", "/nonexistent")
        .args(["build", "--hermetic", "--key", "k.key", "--artifacts", "x"])
        .args(["--", "/bin/sh", "-c", "touch ran"]));
    assert_fails(
        (code, String::new(), err),
        2,
        &["--hermetic", "refusing to build with network"],
    );
    assert!(!d.join("ran").exists());
}

#[test]
fn lint_names_file_line_and_fix() {
    let dir = tempdir();
    let d = dir.path();
    copy_fixture("unpinned", d);
    let (code, out, err) = run(custody(d).args(["lint"]));
    assert_eq!(code, 0, "{err}");
    for expected in [
        "Dockerfile:1: docker-from-unpinned",
        "Dockerfile:3: latest-tag",
        ".github/workflows/ci.yml:6: action-unpinned",
        "package.json:4: manifest-without-lockfile",
        "requirements.txt:1: lockfile-entry-without-integrity",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    assert!(
        !out.contains("ci.yml:7"),
        "a SHA-pinned action is fine:\n{out}"
    );
    assert!(out.contains("fix: "));
    assert_fails(
        run(custody(d).args(["lint", ".", "--deny"])),
        1,
        &["finding", "--deny"],
    );
    let (code, out, _) = run(custody(d).args(["lint", "--deny", "-o", "json"]));
    assert_eq!(code, 1);
    assert_eq!(out.lines().count(), 1, "one JSON document: {out}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["findings"][0]["file"], ".github/workflows/ci.yml");
    // A clean tree.
    let clean = tempdir();
    let (code, out, _) = run(custody(clean.path()).args(["lint", "--deny"]));
    assert_eq!(code, 0);
    assert!(out.contains("No pinning findings"));
    assert_fails(
        run(custody(d).args(["lint", "no-such-dir"])),
        2,
        &["no-such-dir"],
    );
}

#[test]
fn reproduce_rust_crate_and_npm_package() {
    for (name, glob) in [
        ("rust-crate", "target/release/hello-fixture"),
        ("npm-package", "dist/*.tgz"),
    ] {
        let dir = repo_with(Some(name));
        let d = dir.path();
        let (code, out, err) = run(custody(d)
            .args([
                "build",
                "--reproduce",
                "--key",
                "k.key",
                "--artifacts",
                glob,
                "-o",
                "json",
            ])
            .args(["--", "./build.sh"]));
        assert_eq!(code, 0, "{name}: {out}\n{err}");
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["reproducible"], true, "{name}: {out}");
        let builds = doc["predicate"]["builds"].as_array().unwrap();
        assert_ne!(
            builds[0]["path"], builds[1]["path"],
            "the build path varies"
        );
        assert_ne!(builds[0]["variations"]["TZ"], builds[1]["variations"]["TZ"]);
        let (code, _, err) = run(custody(d).args([
            "verify",
            &format!(
                "sha256:{}",
                doc["predicate"]["artifacts"][0]["sha256"][0]
                    .as_str()
                    .unwrap()
            ),
            "--bundle",
            "reproducibility.intoto.sigstore.json",
            "--key",
            "k.pub",
        ]));
        assert_eq!(
            code, 0,
            "{name}: the reproducibility attestation verifies: {err}"
        );
    }
}

#[test]
fn reproduce_catches_an_embedded_timestamp() {
    let dir = repo_with(Some("timestamp"));
    let d = dir.path();
    let (code, out, err) = run(custody(d)
        .args([
            "build",
            "--reproduce",
            "--key",
            "k.key",
            "--artifacts",
            "out/*.txt",
        ])
        .args(["--", "./build.sh"]));
    assert_fails(
        (code, out.clone(), err),
        1,
        &["not reproducible", "out/stamp.txt"],
    );
    assert!(out.contains("DIFFERS  out/stamp.txt"), "{out}");
    assert!(out.contains("same     out/static.txt"), "{out}");
    let st = statement(&d.join("reproducibility.intoto.sigstore.json"));
    assert_eq!(st["predicate"]["result"], "not-reproducible");
    let stamp = st["predicate"]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "out/stamp.txt")
        .unwrap()
        .clone();
    assert_ne!(stamp["sha256"][0], stamp["sha256"][1]);
    // CI installs diffoscope (scripts/install-deps.sh): its summary, naming both copies.
    assert_eq!(stamp["difference"]["tool"], "diffoscope", "{stamp}");
    let summary = stamp["difference"]["summary"].as_str().unwrap();
    assert!(
        summary.contains("custody-repro-a-") && summary.contains("/out/stamp.txt"),
        "{summary}"
    );
}

#[test]
fn rebuild_reexecutes_the_recorded_build() {
    let dir = repo_with(Some("npm-package"));
    let d = dir.path();
    let (code, _, err) = run(custody(d)
        .args([
            "build",
            "--key",
            "k.key",
            "--artifacts",
            "dist/*.tgz",
            "--bundle",
            "prov.json",
        ])
        .args(["--", "./build.sh"]));
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(custody(d).args([
        "rebuild",
        "prov.json",
        "--public-key",
        "k.pub",
        "--key",
        "k.key",
        "-o",
        "json",
    ]));
    assert_eq!(code, 0, "{out}\n{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["match"], true);
    assert!(d.join("rebuild.intoto.sigstore.json").is_file());

    // A build that is not reproducible does not match on rebuild.
    let dir = repo_with(Some("timestamp"));
    let d = dir.path();
    let (code, _, err) = run(custody(d)
        .args([
            "build",
            "--key",
            "k.key",
            "--artifacts",
            "out/stamp.txt",
            "--bundle",
            "prov.json",
        ])
        .args(["--", "./build.sh"]));
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(custody(d).args([
        "rebuild",
        "prov.json",
        "--public-key",
        "k.pub",
        "--key",
        "k.key",
    ]));
    assert_fails((code, out.clone(), err), 1, &["does not reproduce"]);
    assert!(out.contains("DIFFERS  out/stamp.txt"), "{out}");

    // A provenance that does not verify is never acted upon.
    keygen(d, "other", "ecdsa-p256");
    assert_fails(
        run(custody(d).args([
            "rebuild",
            "prov.json",
            "--public-key",
            "other.pub",
            "--key",
            "k.key",
        ])),
        1,
        &["prov.json"],
    );
}

#[test]
fn rebuild_compares_a_differing_subject_with_diffoscope() {
    let dir = repo_with(Some("timestamp"));
    let d = dir.path();
    let (code, _, err) = run(custody(d)
        .args([
            "build",
            "--key",
            "k.key",
            "--artifacts",
            "out/*.txt",
            "--bundle",
            "prov.json",
        ])
        .args(["--", "./build.sh"]));
    assert_eq!(code, 0, "{err}");
    let original = fs::read_to_string(d.join("out/stamp.txt")).unwrap();
    let rebuild = |extra: &[&str]| {
        run(custody(d)
            .args([
                "rebuild",
                "prov.json",
                "--public-key",
                "k.pub",
                "--key",
                "k.key",
            ])
            .args(["--compare-with", "."])
            .args(extra))
    };

    let (code, out, err) = rebuild(&["-o", "json"]);
    assert_eq!(code, 1, "{out}\n{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let subjects = doc["predicate"]["subjects"].as_array().unwrap();
    let stamp = subjects
        .iter()
        .find(|s| s["name"] == "out/stamp.txt")
        .unwrap();
    assert_eq!(stamp["match"], false);
    // CI installs diffoscope (scripts/install-deps.sh): this must not fall back.
    assert_eq!(stamp["difference"]["tool"], "diffoscope", "{stamp}");
    let summary = stamp["difference"]["summary"].as_str().unwrap();
    assert!(summary.contains("--- ./out/stamp.txt"), "{summary}");
    assert!(summary.contains("/src/out/stamp.txt"), "{summary}");
    assert!(
        summary.contains(&format!("-{}", original.trim())),
        "{summary}"
    );
    // The reproducible subject is not diffed.
    let fixed = subjects
        .iter()
        .find(|s| s["name"] == "out/static.txt")
        .unwrap();
    assert_eq!(fixed["match"], true);
    assert!(fixed.get("difference").is_none(), "{fixed}");
    // The signed attestation carries it too.
    let st = statement(&d.join("rebuild.intoto.sigstore.json"));
    assert_eq!(st["predicate"]["subjects"], doc["predicate"]["subjects"]);

    // On the terminal: diffoscope's lines under the differing subject.
    let (code, out, _) = rebuild(&[]);
    assert_eq!(code, 1);
    assert!(out.contains("DIFFERS  out/stamp.txt"), "{out}");
    assert!(out.contains("           --- ./out/stamp.txt"), "{out}");

    // An original that is not the recorded artifact is not compared, and says why.
    fs::write(d.join("out/stamp.txt"), "changed since\n").unwrap();
    let (code, out, _) = rebuild(&["-o", "json"]);
    assert_eq!(code, 1);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let stamp = &doc["predicate"]["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "out/stamp.txt")
        .unwrap()["difference"];
    assert_eq!(stamp["tool"], "none", "{stamp}");
    assert!(
        stamp["note"]
            .as_str()
            .unwrap()
            .contains("is not the recorded artifact"),
        "{stamp}"
    );
}

/// Attack 8: a token inside an allowlisted variable (`RUSTFLAGS`) and a password on the
/// recorded command line were copied verbatim into the signed, published provenance; only
/// secret-looking variable NAMES were withheld. Now the values are replaced by markers, the
/// provenance lists each redaction, stderr warns, and the bundle still verifies.
#[test]
fn attack_secret_values_reach_signed_provenance() {
    let dir = repo_with(None);
    let d = dir.path();
    // A fake GitHub token, assembled here so this file holds no token-shaped literal.
    let token = format!("ghp_{}", "Zq7Xw2Lk9Pm4Rt6Yv8Bn1Cd3Fg5Hj0Ks2Qa4");
    let password = "hunter2-correct-horse-battery";
    let rustflags = format!("-C opt-level=2 --cfg 'build_note=\"{token}\"'");
    let script = "mkdir -p dist && echo built > dist/app.txt";
    let (code, out, err) = run(custody(d)
        .env("RUSTFLAGS", &rustflags)
        .args([
            "build",
            "--key",
            "k.key",
            "--artifacts",
            "dist/app.txt",
            "-o",
            "json",
        ])
        .args([
            "--",
            "sh",
            "-c",
            script,
            "build.sh",
            &format!("--password={password}"),
            "--release",
        ]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("secret-looking value (github-token)"), "{err}");
    assert!(err.contains("secret-looking value (secret-flag)"), "{err}");
    assert!(!err.contains(&token) && !err.contains(password), "{err}");
    assert!(!out.contains(&token) && !out.contains(password), "{out}");

    let bundle_path = d.join("dist/app.txt.intoto.sigstore.json");
    let bundle = fs::read_to_string(&bundle_path).unwrap();
    let st = statement(&bundle_path);
    let payload = st.to_string();
    for secret in [token.as_str(), password] {
        assert!(!bundle.contains(secret), "the bundle holds {secret}");
        assert!(
            !payload.contains(secret),
            "the signed payload holds {secret}"
        );
    }
    let ext = &st["predicate"]["buildDefinition"]["externalParameters"];
    // The value is replaced, not the whole variable or argument.
    assert_eq!(
        ext["environment"]["RUSTFLAGS"],
        "-C opt-level=2 --cfg 'build_note=\"[REDACTED:github-token]\"'"
    );
    assert_eq!(
        ext["command"],
        serde_json::json!([
            "sh",
            "-c",
            script,
            "build.sh",
            "--password=[REDACTED:secret-flag]",
            "--release"
        ])
    );
    let int = &st["predicate"]["buildDefinition"]["internalParameters"];
    assert_eq!(
        int["redactions"],
        serde_json::json!([
            { "field": "buildDefinition.externalParameters.command[4]", "rule": "secret-flag" },
            { "field": "buildDefinition.externalParameters.environment.RUSTFLAGS", "rule": "github-token" },
        ]),
        "{int}"
    );
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["redacted"].as_array().unwrap().len(), 2, "{out}");
    let (code, _, err) = run(custody(d).args([
        "verify",
        "dist/app.txt",
        "--key",
        "k.pub",
        "--bundle",
        bundle_path.to_str().unwrap(),
    ]));
    assert_eq!(code, 0, "{err}");
    // rebuild cannot run a command whose values were withheld: it says so instead of running
    // the markers.
    assert_fails(
        run(custody(d).args([
            "rebuild",
            bundle_path.to_str().unwrap(),
            "--public-key",
            "k.pub",
            "--key",
            "k.key",
        ])),
        2,
        &["withheld secret values", "command[4]", "RUSTFLAGS"],
    );
}
