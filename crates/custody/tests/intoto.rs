//! `custody intoto run` / `custody intoto verify` against python in-toto's demo and python
//! in-toto 3.x itself (the `.peers` venv; these tests fail, never skip, when it is missing).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const FOO_TGZ: &str = "52947cb78b91ad01fe81cd6aef42d1f6817e92b9e6936c1e5aabb7c98514f355";

fn python_bin(tool: &str) -> PathBuf {
    let path = peers().join("venv/bin").join(tool);
    assert!(
        path.exists(),
        "python in-toto peer missing: {} (run scripts/install-deps.sh)",
        path.display()
    );
    path
}

/// Runs a peer tool in `dir`; returns (success, output).
fn peer(dir: &Path, tool: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(python_bin(tool))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A working copy of the demo (layout template, keys, foo.tar.gz) with the links of
/// `links_dir`, and the `scripts/tar` shim its inspection runs (`python ./scripts/tar xfz
/// foo.tar.gz`).
fn working_copy(links_dir: &str) -> tempfile::TempDir {
    let dir = tempdir();
    for source in ["demo_files", links_dir] {
        for entry in fs::read_dir(testdata(&format!("in-toto-python/{source}"))).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if source == "demo_files" || name.ends_with(".link") {
                fs::write(dir.path().join(&name), fs::read(entry.path()).unwrap()).unwrap();
            }
        }
    }
    fs::create_dir(dir.path().join("scripts")).unwrap();
    fs::write(
        dir.path().join("scripts/tar"),
        "import subprocess, sys\nsys.exit(subprocess.call([\"tar\"] + sys.argv[1:]))\n",
    )
    .unwrap();
    dir
}

/// The demo's unsigned DSSE layout template with an `expires` added to its payload.
fn dsse_template(dir: &Path, expires: &str) -> String {
    use custody_core::encoding::{base64_decode_any, base64_encode};
    let path = testdata("in-toto-python/demo_dsse_files/demo.layout.template");
    let mut doc: serde_json::Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    let payload = base64_decode_any(doc["payload"].as_str().unwrap()).unwrap();
    let mut layout: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    layout["expires"] = serde_json::json!(expires);
    doc["payload"] = serde_json::json!(base64_encode(layout.to_string().as_bytes()));
    fs::write(dir.join("dsse.layout.template"), doc.to_string()).unwrap();
    "dsse.layout.template".into()
}

/// Signs `template` (a layout file in `dir`) with alice via python `in-toto-sign`.
fn python_sign(dir: &Path, template: &str, out: &str) {
    let (ok, text) = peer(
        dir,
        "in-toto-sign",
        &["-f", template, "-k", "alice", "-o", out],
    );
    assert!(ok, "in-toto-sign: {text}");
}

fn with_expiry(dir: &Path, expires: &str) -> String {
    let mut doc: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("demo.layout.template")).unwrap()).unwrap();
    doc["signed"]["expires"] = serde_json::json!(expires);
    let name = format!("template-{}.json", expires.replace(':', ""));
    fs::write(dir.join(&name), doc.to_string()).unwrap();
    name
}

fn verify(dir: &Path, layout: &str, key: &str) -> (i32, String, String) {
    run(custody(dir).args(["intoto", "verify", "--layout", layout, "--layout-key", key]))
}

#[test]
fn demo_signed_by_alice_verifies_with_classic_and_dsse_links() {
    for demo in ["demo_files", "demo_dsse_files"] {
        let dir = working_copy(demo);
        python_sign(dir.path(), "demo.layout.template", "root.layout");
        let (code, out, err) = run(custody(dir.path()).args([
            "-o",
            "json",
            "intoto",
            "verify",
            "-l",
            "root.layout",
            "-k",
            "alice.pub",
        ]));
        assert_eq!(code, 0, "{demo}: {err}");
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["inspections"][0], "untar");
        assert_eq!(doc["products"]["foo.tar.gz"]["sha256"], FOO_TGZ);
        // The inspection really ran: it unpacked foo.py.
        assert!(dir.path().join("foo.py").exists());
    }
    // A DSSE-wrapped layout signed by python in-toto verifies too.
    let dir = working_copy("demo_dsse_files");
    let template = dsse_template(dir.path(), "2099-01-01T00:00:00Z");
    python_sign(dir.path(), &template, "root.layout");
    let (code, _, err) = verify(dir.path(), "root.layout", "alice.pub");
    assert_eq!(code, 0, "{err}");
}

#[test]
fn tampered_link_fails_with_the_threshold_reason() {
    let dir = working_copy("demo_files");
    python_sign(dir.path(), "demo.layout.template", "root.layout");
    let link = dir.path().join("package.2f89b927.link");
    let text = fs::read_to_string(&link).unwrap();
    fs::write(&link, text.replace(FOO_TGZ, &"1".repeat(64))).unwrap();
    assert_fails(
        verify(dir.path(), "root.layout", "alice.pub"),
        1,
        &[
            "Step 'package' requires at least '1' links validly signed",
            "Invalid signature",
        ],
    );
}

#[test]
fn layout_verified_with_the_wrong_key_fails() {
    let dir = working_copy("demo_files");
    python_sign(dir.path(), "demo.layout.template", "root.layout");
    assert_fails(
        verify(dir.path(), "root.layout", "bob.pub"),
        1,
        &["No signature found for key"],
    );
}

#[test]
fn expired_layout_fails() {
    let dir = working_copy("demo_files");
    let template = with_expiry(dir.path(), "2020-01-01T00:00:00Z");
    python_sign(dir.path(), &template, "expired.layout");
    assert_fails(
        verify(dir.path(), "expired.layout", "alice.pub"),
        1,
        &["Layout expired"],
    );
}

/// Builds the demo layout for new functionary keys with python in-toto's own key loading
/// (so the key ids are python's), and signs it with alice.
fn interop_layout(dir: &Path, write_code_pub: &str, package_pub: &str) {
    let script = format!(
        r#"
import json
from in_toto.models._signer import load_public_key_from_file
t = json.load(open('demo.layout.template'))
s = t['signed']
w = load_public_key_from_file('{write_code_pub}')
p = load_public_key_from_file('{package_pub}')
s['keys'] = {{w['keyid']: w, p['keyid']: p}}
s['steps'][0]['pubkeys'] = [w['keyid']]
s['steps'][1]['pubkeys'] = [p['keyid']]
json.dump(t, open('interop.template', 'w'))
"#
    );
    let (ok, text) = peer(dir, "python", &["-c", &script]);
    assert!(ok, "{text}");
    python_sign(dir, "interop.template", "root.layout");
}

#[test]
fn links_from_custody_verify_in_python_in_toto_and_in_custody() {
    for (algorithm, dsse) in [("ed25519", false), ("ecdsa-p256", true)] {
        let dir = working_copy("demo_files");
        for f in [
            "write-code.776a00e2.link",
            "package.2f89b927.link",
            "foo.tar.gz",
        ] {
            fs::remove_file(dir.path().join(f)).unwrap();
        }
        let (code, _, err) = run(custody(dir.path()).args([
            "key",
            "generate",
            "bob2",
            "--algorithm",
            algorithm,
            "--insecure-unencrypted",
        ]));
        assert_eq!(code, 0, "{err}");
        interop_layout(dir.path(), "bob2.pub", "carl.pub");

        let mut write = custody(dir.path());
        write.args([
            "intoto",
            "run",
            "--step",
            "write-code",
            "--key",
            "bob2.key",
            "-p",
            "foo.py",
        ]);
        if dsse {
            write.arg("--dsse");
        }
        write.args(["--", "sh", "-c", "echo 'print(1)' > foo.py"]);
        let (code, _, err) = run(&mut write);
        assert_eq!(code, 0, "{err}");
        // carl's key is PKCS#1 RSA, as in-toto's demo keys are.
        let (code, _, err) = run(custody(dir.path()).args([
            "intoto",
            "run",
            "--step",
            "package",
            "--key",
            "carl",
            "-m",
            "foo.py",
            "-p",
            "foo.tar.gz",
            "--",
            "tar",
            "zcf",
            "foo.tar.gz",
            "foo.py",
        ]));
        assert_eq!(code, 0, "{err}");

        let (ok, text) = peer(
            dir.path(),
            "in-toto-verify",
            &["-l", "root.layout", "--verification-keys", "alice.pub"],
        );
        assert!(
            ok,
            "python in-toto-verify refused custody's links ({algorithm}): {text}"
        );
        let (code, _, err) = verify(dir.path(), "root.layout", "alice.pub");
        assert_eq!(code, 0, "{err}");

        // Both judges refuse a product changed after the step.
        fs::write(dir.path().join("foo.tar.gz"), b"not the package").unwrap();
        let (ok, _) = peer(
            dir.path(),
            "in-toto-verify",
            &["-l", "root.layout", "--verification-keys", "alice.pub"],
        );
        assert!(!ok);
        let (code, _, _) = verify(dir.path(), "root.layout", "alice.pub");
        assert_eq!(code, 1);
    }
}

#[test]
fn command_not_found_writes_nothing() {
    let dir = working_copy("demo_files");
    let before = fs::read_dir(dir.path()).unwrap().count();
    assert_fails(
        run(custody(dir.path()).args([
            "intoto",
            "run",
            "--step",
            "s",
            "--key",
            "carl",
            "--",
            "no-such-command-custody",
        ])),
        2,
        &[
            "no-such-command-custody",
            "not found",
            "nothing was written",
        ],
    );
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), before);
}

#[test]
fn unwritable_output_directory_fails_before_the_command_runs() {
    let dir = working_copy("demo_files");
    assert_fails(
        run(custody(dir.path()).args([
            "intoto",
            "run",
            "--step",
            "s",
            "--key",
            "carl",
            "-d",
            "missing/dir",
            "--",
            "touch",
            "ran",
        ])),
        2,
        &["cannot write missing/dir/", "does its directory exist"],
    );
    assert!(!dir.path().join("ran").exists(), "the command ran anyway");
}

#[test]
fn key_id_override_names_the_link() {
    let dir = working_copy("demo_files");
    fs::remove_file(dir.path().join("package.2f89b927.link")).unwrap();
    let (code, _, err) = run(custody(dir.path()).args([
        "intoto",
        "run",
        "--step",
        "package",
        "--key",
        "carl",
        "--key-id",
        "2f89b9272acfc8f4a0a0f094d789fdb0ba798b0fe41f2f5f417c12f0085ff498",
        "-m",
        "foo.py",
        "-p",
        "foo.tar.gz",
        "--",
        "true",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(dir.path().join("package.2f89b927.link").exists());
}

/// The demo layout with the archive name and the inspection's tool as `{ARCHIVE}` and
/// `{TOOL}` parameters (in an expected command, artifact rules and an inspection's run), signed
/// by alice with python `in-toto-sign`.
fn parameterised_layout(dir: &Path) {
    let mut doc: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("demo.layout.template")).unwrap()).unwrap();
    let s = &mut doc["signed"];
    s["steps"][1]["expected_command"] = serde_json::json!(["tar", "zcvf", "{ARCHIVE}", "foo.py"]);
    s["steps"][1]["expected_products"] = serde_json::json!([
        ["REQUIRE", "{ARCHIVE}"],
        ["CREATE", "{ARCHIVE}"],
        ["ALLOW", "foo.py"],
        ["DISALLOW", "*"]
    ]);
    s["inspect"][0]["run"] = serde_json::json!(["python", "./scripts/{TOOL}", "xfz", "{ARCHIVE}"]);
    s["inspect"][0]["expected_materials"] =
        serde_json::json!([["MATCH", "{ARCHIVE}", "WITH", "PRODUCTS", "FROM", "package"]]);
    fs::write(dir.join("params.template"), doc.to_string()).unwrap();
    python_sign(dir, "params.template", "params.layout");
}

/// python in-toto 3.1.0's `in_toto_verify(..., substitution_parameters=…)`: its CLI lost
/// `--layout-params` in 2.0, the library still substitutes.
fn python_verify_with_params(dir: &Path, layout: &str, params: &[&str]) -> (bool, String) {
    let script = r#"
import sys
from in_toto import verifylib
from in_toto.models.metadata import Metadata
from in_toto.models._signer import load_public_key_from_file
key = load_public_key_from_file('alice.pub')
params = dict(p.split('=', 1) for p in sys.argv[2:])
try:
    verifylib.in_toto_verify(Metadata.load(sys.argv[1]), {key['keyid']: key}, '.',
                             substitution_parameters=params, persist_inspection_links=False)
except Exception as e:
    print(type(e).__name__, e)
    sys.exit(1)
"#;
    let mut args = vec!["-c", script, layout];
    args.extend_from_slice(params);
    peer(dir, "python", &args)
}

fn custody_verify_with_params(dir: &Path, layout: &str, params: &[&str]) -> (i32, String, String) {
    let mut cmd = custody(dir);
    cmd.args([
        "intoto",
        "verify",
        "--layout",
        layout,
        "--layout-key",
        "alice.pub",
    ]);
    for p in params {
        cmd.args(["--param", p]);
    }
    run(&mut cmd)
}

#[test]
fn layout_parameters_agree_with_python_in_toto() {
    let dir = working_copy("demo_files");
    let d = dir.path();
    parameterised_layout(d);

    // The right values: both verify (the inspection ran `python ./scripts/tar xfz foo.tar.gz`).
    let good = ["ARCHIVE=foo.tar.gz", "TOOL=tar"];
    let (ok, text) = python_verify_with_params(d, "params.layout", &good);
    assert!(ok, "python: {text}");
    let (code, out, err) = custody_verify_with_params(d, "params.layout", &good);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!err.contains("differs from expected command"), "{err}");
    assert!(d.join("foo.py").exists());
    // python's old spelling, several values after one flag.
    let (code, _, err) = run(custody(d).args([
        "intoto",
        "verify",
        "-l",
        "params.layout",
        "-k",
        "alice.pub",
        "--layout-params",
        "ARCHIVE=foo.tar.gz",
        "TOOL=tar",
    ]));
    assert_eq!(code, 0, "{err}");

    // A value that names another archive: the REQUIRE rule fails in both.
    let wrong = ["ARCHIVE=bar.tar.gz", "TOOL=tar"];
    let (ok, text) = python_verify_with_params(d, "params.layout", &wrong);
    assert!(
        !ok && text.contains("RuleVerificationError"),
        "python: {text}"
    );
    assert_fails(
        custody_verify_with_params(d, "params.layout", &wrong),
        1,
        &["in-toto verification failed", "REQUIRE bar.tar.gz"],
    );

    // A parameter not given: python raises KeyError('ARCHIVE'); custody exits 2 naming it.
    let (ok, text) = python_verify_with_params(d, "params.layout", &["TOOL=tar"]);
    assert!(!ok && text.contains("KeyError 'ARCHIVE'"), "python: {text}");
    let (code, out, err) = custody_verify_with_params(d, "params.layout", &["TOOL=tar"]);
    assert_fails(
        (code, out, err.clone()),
        2,
        &[
            "uses parameter {ARCHIVE} (step 'package' expected_command)",
            "pass --param ARCHIVE=VALUE",
        ],
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let (code, _, err) = custody_verify_with_params(d, "params.layout", &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("parameters {ARCHIVE}, {TOOL}"), "{err}");

    // Malformed --param values are usage errors.
    for (bad, words) in [
        ("ARCHIVE", "expected NAME=VALUE"),
        ("A.B=1", "letters, digits"),
    ] {
        assert_fails(
            custody_verify_with_params(d, "params.layout", &[bad]),
            2,
            &[words],
        );
    }
    assert_fails(
        custody_verify_with_params(d, "params.layout", &["TOOL=tar", "TOOL=gtar"]),
        2,
        &["--param TOOL: given twice"],
    );
}

/// python in-toto's GPG demo (`demo_files_gpg`: links signed with GPG keys, a layout whose
/// functionary keys are GPG keys) and a writable copy of its RSA GPG keyring in `gh`.
fn gpg_working_copy() -> tempfile::TempDir {
    let dir = tempdir();
    let d = dir.path();
    for entry in fs::read_dir(testdata("in-toto-python/demo_files_gpg")).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), d.join(entry.file_name())).unwrap();
    }
    for name in ["alice", "alice.pub"] {
        let from = testdata(&format!("in-toto-python/demo_files/{name}"));
        fs::copy(from, d.join(name)).unwrap();
    }
    let ok = Command::new("cp")
        .arg("-r")
        .arg(testdata("in-toto-python/gpg_keyrings/rsa"))
        .arg(d.join("gh"))
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let ok = Command::new("chmod")
        .args(["-R", "u+w,go-rwx"])
        .arg(d.join("gh"))
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let mut doc: serde_json::Value =
        serde_json::from_slice(&fs::read(d.join("demo.layout.template")).unwrap()).unwrap();
    doc["signed"]["expires"] = serde_json::json!("2099-01-01T00:00:00Z");
    fs::write(d.join("gpg.template"), doc.to_string()).unwrap();
    dir
}

/// Stops the gpg-agent that signing started for the test keyring.
struct AgentGuard(PathBuf);
impl Drop for AgentGuard {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(&self.0)
            .args(["--kill", "gpg-agent"])
            .status();
    }
}

#[test]
fn gpg_keys_and_signatures_are_refused_by_name() {
    const LAYOUT_GPG: &str = "8465A1E2E0FB2B40ADB2478E18FB3F537E0C8A17";
    const SIGNING_SUBKEY: &str = "c5a0abe6ec19d0d65f85e2c39be9df5131d924e9";
    const PACKAGE_GPG: &str = "7b3abb26b97b655ab9296bd15b0bd02e1c768c43";
    let dir = gpg_working_copy();
    let d = dir.path();
    let _agent = AgentGuard(d.join("gh"));
    let gpg_available = Command::new("gpg").arg("--version").output();
    assert!(
        gpg_available.is_ok_and(|o| o.status.success()),
        "gpg missing (Debian gnupg; scripts/install-deps.sh installs it)"
    );

    // A layout signed with GPG by python in-toto, which python verifies.
    let (ok, text) = peer(
        d,
        "in-toto-sign",
        &[
            "-f",
            "gpg.template",
            "--gpg",
            LAYOUT_GPG,
            "--gpg-home",
            "gh",
            "-o",
            "gpg.layout",
        ],
    );
    assert!(ok, "in-toto-sign --gpg: {text}");
    let (ok, text) = peer(
        d,
        "in-toto-verify",
        &["-l", "gpg.layout", "--gpg", LAYOUT_GPG, "--gpg-home", "gh"],
    );
    assert!(ok, "python in-toto-verify --gpg: {text}");

    // custody: exit 2 (it cannot check it), one line naming the signing key.
    let (code, out, err) = verify(d, "gpg.layout", "alice.pub");
    assert_fails(
        (code, out, err),
        2,
        &[SIGNING_SUBKEY, "is GPG (OpenPGP)", "does not support GPG"],
    );

    // A layout signed with alice's key whose functionaries are GPG keys.
    python_sign(d, "gpg.template", "functionaries.layout");
    assert_fails(
        verify(d, "functionaries.layout", "alice.pub"),
        2,
        &[
            &format!("key {PACKAGE_GPG} is GPG (OpenPGP)"),
            "does not support GPG",
        ],
    );

    // A GPG public key given as the layout key.
    let export = Command::new("gpg")
        .arg("--homedir")
        .arg(d.join("gh"))
        .args(["--armor", "--export", LAYOUT_GPG])
        .output()
        .unwrap();
    assert!(export.status.success());
    fs::write(d.join("layout-gpg.asc"), export.stdout).unwrap();
    assert_fails(
        verify(d, "gpg.layout", "layout-gpg.asc"),
        2,
        &[
            "layout key layout-gpg.asc",
            "GPG (OpenPGP)",
            "does not support GPG",
        ],
    );
}
