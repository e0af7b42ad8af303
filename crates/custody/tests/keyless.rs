//! Keyless verification through the binary: a few conformance cases, the errors a user sees,
//! JSON output with failure codes, and `--bundles-from` batches.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::PathBuf;

use common::*;

const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";

fn case(name: &str) -> PathBuf {
    testdata(&format!("sigstore-conformance/bundle-verify/{name}"))
}

fn a_txt() -> String {
    testdata("sigstore-conformance/bundle-verify/a.txt")
        .to_str()
        .unwrap()
        .to_owned()
}

fn production() -> String {
    testdata("sigstore-python/embedded-tuf-store/https%3A%2F%2Ftuf-repo-cdn.sigstore.dev/trusted_root.json")
        .to_str()
        .unwrap()
        .to_owned()
}

/// `verify a.txt --bundle CASE/bundle --trusted-root ROOT --certificate-identity … --…-issuer …`
fn keyless_args(name: &str, extra: &[&str]) -> Vec<String> {
    let dir = case(name);
    let own = dir.join("trusted_root.json");
    let root = if own.exists() {
        own.to_str().unwrap().to_owned()
    } else {
        production()
    };
    let mut args: Vec<String> = vec![
        "verify".into(),
        a_txt(),
        "--bundle".into(),
        dir.join("bundle.sigstore.json").to_str().unwrap().into(),
        "--trusted-root".into(),
        root,
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

fn with_identity(name: &str, extra: &[&str]) -> Vec<String> {
    let mut args = keyless_args(
        name,
        &[
            "--certificate-identity",
            IDENTITY,
            "--certificate-oidc-issuer",
            ISSUER,
        ],
    );
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

#[test]
fn conformance_cases_through_the_binary() {
    let dir = tempdir();
    for name in [
        "happy-path-v0.3",
        "rekor2-happy-path",
        "happy-path-intoto-in-dsse-v3",
    ] {
        let (code, out, err) = run(custody(dir.path()).args(with_identity(name, &["-o", "json"])));
        assert_eq!(code, 0, "{name}: {err}");
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["signer"]["type"], "certificate");
        assert_eq!(doc["signer"]["identity"]["value"], IDENTITY);
        assert_eq!(doc["signer"]["issuer"], ISSUER);
        assert_eq!(doc["tlog"]["status"], "verified");
        assert!(!doc["times"].as_array().unwrap().is_empty());
        assert!(doc["signer"]["claims"]["source_repository_uri"].is_string());
    }
    for (name, code, words) in [
        (
            "intoto-set-outside-signing-cert-validity_fail",
            "cert.expired",
            &[
                "certificate expired before the log entry was made",
                "stale certificate",
            ][..],
        ),
        (
            "rekor2-no-timestamp_fail",
            "time.missing",
            &["no trusted time"][..],
        ),
        (
            "bundle-from-wrong-instance_fail",
            "tlog.unknown-log",
            &["trusted root does not know"][..],
        ),
        (
            "inclusion-proof-corrupted-hash_fail",
            "tlog.inclusion",
            &["inclusion proof"][..],
        ),
    ] {
        let (status, out, err) =
            run(custody(dir.path()).args(with_identity(name, &["-o", "json"])));
        assert_eq!(status, 1, "{name}: {err}");
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["code"], code, "{name}: {out}");
        assert_fails((status, out, err), 1, words);
    }
}

#[test]
fn errors_say_what_to_pass() {
    let dir = tempdir();
    let d = dir.path();
    let bundle = case("happy-path-v0.3").join("bundle.sigstore.json");
    let bundle = bundle.to_str().unwrap();
    // No trusted root: never a network call; the error says to pass one (usage, exit 2).
    assert_fails(
        run(custody(d).args([
            "verify",
            &a_txt(),
            "--bundle",
            bundle,
            "--certificate-identity",
            IDENTITY,
            "--certificate-oidc-issuer",
            ISSUER,
        ])),
        2,
        &["--trusted-root", "no network"],
    );
    // No identity.
    assert_fails(
        run(custody(d).args(keyless_args("happy-path-v0.3", &[]))),
        2,
        &["--certificate-identity", "--certificate-oidc-issuer"],
    );
    // An identity without its issuer is refused before anything is read.
    assert_fails(
        run(custody(d).args(keyless_args(
            "happy-path-v0.3",
            &["--certificate-identity", IDENTITY],
        ))),
        2,
        &["--certificate-oidc-issuer", "never left unchecked"],
    );
    // A prefix of the identity: refused, and told how patterns work.
    assert_fails(
        run(custody(d).args(keyless_args(
            "happy-path-v0.3",
            &[
                "--certificate-identity",
                "https://github.com/sigstore-conformance/",
                "--certificate-oidc-issuer",
                ISSUER,
            ],
        ))),
        1,
        &[
            "does not match the required",
            "--certificate-identity-regexp",
            "identity.mismatch",
        ],
    );
    // A pattern matches only whole identities.
    assert_fails(
        run(custody(d).args(keyless_args(
            "happy-path-v0.3",
            &[
                "--certificate-identity-regexp",
                "https://github\\.com/sigstore-conformance/",
                "--certificate-oidc-issuer",
                ISSUER,
            ],
        ))),
        1,
        &["fully anchored"],
    );
    let (code, _, err) = run(custody(d).args(keyless_args(
        "happy-path-v0.3",
        &[
            "--certificate-identity-regexp",
            "https://github\\.com/sigstore-conformance/.*",
            "--certificate-oidc-issuer-regexp",
            "https://token\\.actions\\.githubusercontent\\.com",
        ],
    )));
    assert_eq!(code, 0, "{err}");
}

#[test]
fn batch_verifies_in_parallel_and_reports_each_line() {
    let dir = tempdir();
    let d = dir.path();
    let ok = case("happy-path-v0.3").join("bundle.sigstore.json");
    let bad = case("signature-mismatch_fail").join("bundle.sigstore.json");
    let a = a_txt();
    let digest = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";
    let mut list = String::from("# artifact bundle [identity issuer]\n\n");
    for _ in 0..20 {
        list.push_str(&format!("{a} {}\n", ok.display()));
    }
    list.push_str(&format!("{digest} {} {IDENTITY} {ISSUER}\n", ok.display()));
    list.push_str(&format!(
        "{}\n",
        serde_json::json!({"artifact": a, "bundle": ok, "identityRegexp": "https://github\\.com/sigstore-conformance/.*", "issuer": ISSUER})
    ));
    fs::write(d.join("good.list"), &list).unwrap();
    let flags = |file: &str| {
        vec![
            "verify".to_owned(),
            "--bundles-from".into(),
            file.into(),
            "--trusted-root".into(),
            production(),
            "--certificate-identity".into(),
            IDENTITY.into(),
            "--certificate-oidc-issuer".into(),
            ISSUER.into(),
        ]
    };
    let (code, out, err) = run(custody(d).args(flags("good.list")));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 22, "{out}");
    assert!(out.lines().all(|l| l.starts_with("OK ")), "{out}");

    // One bad line: every line still reported, in order; exit 1; JSON lines carry the code.
    list.push_str(&format!("{a} {}\n", bad.display()));
    fs::write(d.join("mixed.list"), &list).unwrap();
    let mut args = flags("mixed.list");
    args.extend(["-o".into(), "json".into()]);
    let (code, out, _) = run(custody(d).args(args));
    assert_eq!(code, 1);
    let docs: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 23);
    assert!(docs[..22].iter().all(|doc| doc["ok"] == true));
    assert_eq!(docs[22]["ok"], false);
    assert_eq!(docs[22]["code"], "tlog.binding");
    assert_eq!(docs[22]["line"], 25);

    // A malformed list is refused before anything is verified (exit 2, naming the line).
    fs::write(d.join("broken.list"), format!("{a}\n")).unwrap();
    assert_fails(
        run(custody(d).args(flags("broken.list"))),
        2,
        &["line 1", "ARTIFACT BUNDLE"],
    );
}
