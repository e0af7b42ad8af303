//! Interop with the ecosystem: the Sigstore conformance suite's managed-key cases verify in
//! custody, and what custody writes verifies in sigstore-js (a peer installed by
//! `scripts/install-deps.sh`; these tests fail, never skip, when it is missing).

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;

fn conformance(case: &str) -> std::path::PathBuf {
    testdata(&format!("sigstore-conformance/bundle-verify/{case}"))
}

#[test]
fn conformance_managed_key_cases() {
    let dir = tempdir();
    let d = dir.path();
    let artifact = testdata("sigstore-conformance/bundle-verify/a.txt");
    let a = artifact.to_str().unwrap();

    let happy = conformance("managed-key-happy-path");
    let (code, out, err) = run(custody(d).args([
        "verify", a, "--bundle", happy.join("bundle.sigstore.json").to_str().unwrap(),
        "--key", happy.join("key.pub").to_str().unwrap(), "-o", "json",
    ]));
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    // The log entry is there and was not checked: the output must say so, never imply it was.
    assert_eq!(doc["tlog"]["status"], "not_checked", "{out}");
    let (code, human, _) = run(custody(d).args([
        "verify", a, "--bundle", happy.join("bundle.sigstore.json").to_str().unwrap(),
        "--key", happy.join("key.pub").to_str().unwrap(),
    ]));
    assert_eq!(code, 0);
    assert!(human.contains("NOT CHECKED"), "{human}");

    let wrong = conformance("managed-key-wrong-key_fail");
    assert_fails(
        run(custody(d).args([
            "verify", a, "--bundle", wrong.join("bundle.sigstore.json").to_str().unwrap(),
            "--key", wrong.join("key.pub").to_str().unwrap(),
        ])),
        1,
        &["signature"],
    );
    let nokey = conformance("managed-key-no-key_fail");
    let (code, _, err) = run(custody(d).args(["verify", a, "--bundle", nokey.join("bundle.sigstore.json").to_str().unwrap()]));
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("--key"), "{err}");
}

fn sigstore_js(bundle: &Path, key: &Path, artifact: &Path) -> (bool, String) {
    let peers = peers();
    let modules = peers.join("npm/node_modules");
    assert!(
        modules.join("@sigstore/verify").is_dir(),
        "sigstore-js is not installed under {} (run scripts/install-deps.sh)",
        peers.display()
    );
    let out = Command::new("node")
        .env("NODE_PATH", &modules)
        .arg(shared().join("peers/sjs-verify.js"))
        .args(["--bundle", bundle.to_str().unwrap()])
        .args(["--trusted-root", testdata("sigstore-trust-root/public-good.trusted_root.json").to_str().unwrap()])
        .args(["--key", key.to_str().unwrap(), "--tlog-threshold", "0"])
        .arg(artifact)
        .output()
        .unwrap_or_else(|e| panic!("node: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn sigstore_js_verifies_what_custody_signs_and_attests() {
    for alg in ["ecdsa-p256", "ed25519"] {
        let dir = tempdir();
        let d = dir.path();
        keygen(d, "k", alg);
        fs::write(d.join("app.bin"), format!("artifact signed with {alg}")).unwrap();
        let (code, _, err) = run(custody(d).args(["sign", "app.bin", "--key", "k.key"]));
        assert_eq!(code, 0, "{err}");
        let (ok, text) = sigstore_js(&d.join("app.bin.sigstore.json"), &d.join("k.pub"), &d.join("app.bin"));
        assert!(ok, "{alg} message signature: {text}");

        fs::write(d.join("p.json"), br#"{"buildDefinition":{"buildType":"https://example.com/t"}}"#).unwrap();
        let (code, _, err) = run(custody(d).args([
            "attest", "app.bin", "--key", "k.key", "--type", "https://slsa.dev/provenance/v1", "--predicate", "p.json",
        ]));
        assert_eq!(code, 0, "{err}");
        let (ok, text) = sigstore_js(&d.join("app.bin.intoto.sigstore.json"), &d.join("k.pub"), &d.join("app.bin"));
        assert!(ok, "{alg} DSSE: {text}");

        // The peer is a real judge: it refuses a tampered artifact for the message signature.
        fs::write(d.join("app.bin"), b"tampered").unwrap();
        let (ok, text) = sigstore_js(&d.join("app.bin.sigstore.json"), &d.join("k.pub"), &d.join("app.bin"));
        assert!(!ok, "{alg}: sigstore-js accepted a tampered artifact: {text}");
    }
}
