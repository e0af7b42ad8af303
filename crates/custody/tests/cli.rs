//! The `custody` binary end to end: keys, sign, attest, verify, and every bad input the
//! foundation issue names, each with its exit code and a one-line error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;

use common::*;

#[test]
fn sign_then_verify_each_algorithm() {
    for alg in ["ecdsa-p256", "ed25519"] {
        let dir = tempdir();
        let d = dir.path();
        keygen(d, "k", alg);
        fs::write(d.join("app.bin"), b"release 1").unwrap();
        let (code, _, err) = run(custody(d).args(["sign", "app.bin", "--key", "k.key"]));
        assert_eq!(code, 0, "{alg}: {err}");
        assert!(d.join("app.bin.sigstore.json").is_file());
        let (code, out, err) =
            run(custody(d).args(["verify", "app.bin", "--key", "k.pub", "-o", "json"]));
        assert_eq!(code, 0, "{alg}: {err}");
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["verified"], true);
        assert_eq!(doc["signer"]["algorithm"], alg);
        assert_eq!(doc["tlog"]["status"], "absent");
        // The same bundle refuses a changed artifact and another key.
        fs::write(d.join("app.bin"), b"release 2").unwrap();
        assert_fails(
            run(custody(d).args(["verify", "app.bin", "--key", "k.pub"])),
            1,
            &["app.bin.sigstore.json"],
        );
        fs::write(d.join("app.bin"), b"release 1").unwrap();
        keygen(d, "other", alg);
        assert_fails(
            run(custody(d).args(["verify", "app.bin", "--key", "other.pub"])),
            1,
            &["signature"],
        );
    }
}

#[test]
fn sign_by_digest_verifies_by_digest_and_by_file() {
    let dir = tempdir();
    let d = dir.path();
    keygen(d, "k", "ecdsa-p256");
    fs::write(d.join("a.txt"), b"abc").unwrap();
    let digest = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    let (code, _, err) = run(custody(d).args([
        "sign", "--digest", digest, "--key", "k.key", "--bundle", "b.json",
    ]));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) =
        run(custody(d).args(["verify", digest, "--bundle", "b.json", "--key", "k.pub"]));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) =
        run(custody(d).args(["verify", "a.txt", "--bundle", "b.json", "--key", "k.pub"]));
    assert_eq!(code, 0, "{err}");
    let other = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ae";
    assert_fails(
        run(custody(d).args(["verify", other, "--bundle", "b.json", "--key", "k.pub"])),
        1,
        &["b.json"],
    );
    // Ed25519 cannot sign a bare digest: a usage error that says why.
    keygen(d, "ed", "ed25519");
    assert_fails(
        run(custody(d).args(["sign", "--digest", digest, "--key", "ed.key"])),
        2,
        &["Ed25519"],
    );
}

#[test]
fn attest_then_verify_and_subject_binding() {
    let dir = tempdir();
    let d = dir.path();
    keygen(d, "k", "ecdsa-p256");
    fs::write(d.join("app.bin"), b"binary").unwrap();
    fs::write(
        d.join("p.json"),
        br#"{"buildDefinition":{"buildType":"x"}}"#,
    )
    .unwrap();
    let (code, _, err) = run(custody(d).args([
        "attest",
        "app.bin",
        "--key",
        "k.key",
        "--type",
        "https://slsa.dev/provenance/v1",
        "--predicate",
        "p.json",
    ]));
    assert_eq!(code, 0, "{err}");
    let (code, out, err) =
        run(custody(d).args(["verify", "app.bin", "--key", "k.pub", "-o", "json"]));
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["bundle"]["content"], "dsse");
    assert_eq!(
        doc["statement"]["predicateType"],
        "https://slsa.dev/provenance/v1"
    );
    fs::write(d.join("other.bin"), b"another").unwrap();
    assert_fails(
        run(custody(d).args([
            "verify",
            "other.bin",
            "--bundle",
            "app.bin.intoto.sigstore.json",
            "--key",
            "k.pub",
        ])),
        1,
        &["subject"],
    );
}

/// `custody attest` used to write every predicate type to FILE.intoto.sigstore.json, so
/// attesting a rebuild or a scan beside a build silently replaced its signed provenance.
#[test]
fn attack_attest_overwrites_the_provenance_bundle() {
    let dir = tempdir();
    let d = dir.path();
    keygen(d, "k", "ecdsa-p256");
    fs::write(d.join("app.bin"), b"binary").unwrap();
    fs::write(
        d.join("p.json"),
        br#"{"buildDefinition":{"buildType":"x"}}"#,
    )
    .unwrap();
    fs::write(d.join("r.json"), br#"{"result":"match"}"#).unwrap();
    let attest = |kind: &str, predicate: &str, extra: &[&str]| {
        let mut cmd = custody(d);
        cmd.args(["attest", "app.bin", "--key", "k.key", "--type", kind])
            .args(["--predicate", predicate])
            .args(extra);
        run(&mut cmd)
    };
    let provenance = "https://slsa.dev/provenance/v1";
    let (code, _, err) = attest(provenance, "p.json", &[]);
    assert_eq!(code, 0, "{err}");
    let provenance_bundle = d.join("app.bin.intoto.sigstore.json");
    let signed = fs::read(&provenance_bundle).unwrap();

    // Another predicate type gets its own name; the provenance is untouched.
    let (code, _, err) = attest("urn:custody:predicate:rebuild:v1", "r.json", &[]);
    assert_eq!(code, 0, "{err}");
    let rebuild_bundle = d.join("app.bin.rebuild.sigstore.json");
    assert!(rebuild_bundle.is_file(), "no rebuild bundle: {err}");
    assert_eq!(fs::read(&provenance_bundle).unwrap(), signed);

    // The same type again, or any type aimed at an existing file: refused before signing.
    assert_fails(
        attest(provenance, "p.json", &[]),
        2,
        &["app.bin.intoto.sigstore.json", "already exists", "--force"],
    );
    assert_fails(
        attest(
            "https://example.com/scan/v1",
            "r.json",
            &["--bundle", "app.bin.intoto.sigstore.json"],
        ),
        2,
        &["app.bin.intoto.sigstore.json", "--force"],
    );
    assert_eq!(fs::read(&provenance_bundle).unwrap(), signed);

    // Plain verify still finds the provenance first.
    let (code, out, err) =
        run(custody(d).args(["verify", "app.bin", "--key", "k.pub", "-o", "json"]));
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["statement"]["predicateType"], provenance);

    // --force replaces it, on purpose.
    let (code, _, err) = attest(provenance, "r.json", &["--force"]);
    assert_eq!(code, 0, "{err}");
    assert_ne!(fs::read(&provenance_bundle).unwrap(), signed);

    // Without the provenance, verify finds the one other attestation bundle by its new name,
    // and with two it asks which.
    fs::remove_file(&provenance_bundle).unwrap();
    let (code, out, err) =
        run(custody(d).args(["verify", "app.bin", "--key", "k.pub", "-o", "json"]));
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        doc["statement"]["predicateType"],
        "urn:custody:predicate:rebuild:v1"
    );
    let (code, _, err) = attest(
        "https://cosign.sigstore.dev/attestation/vuln/v1",
        "r.json",
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(d.join("app.bin.vuln.sigstore.json").is_file());
    assert_fails(
        run(custody(d).args(["verify", "app.bin", "--key", "k.pub"])),
        2,
        &[
            "several bundles",
            "app.bin.rebuild.sigstore.json",
            "app.bin.vuln.sigstore.json",
            "--bundle",
        ],
    );
}

#[test]
fn bad_inputs_get_one_line_and_the_right_exit_code() {
    let dir = tempdir();
    let d = dir.path();
    keygen(d, "k", "ecdsa-p256");
    fs::write(d.join("a.txt"), b"a").unwrap();
    fs::create_dir(d.join("adir")).unwrap();
    // Missing artifact, directory: operational (2), naming the path.
    assert_fails(
        run(custody(d).args(["sign", "missing.txt", "--key", "k.key"])),
        2,
        &["missing.txt", "no such file"],
    );
    assert_fails(
        run(custody(d).args(["sign", "adir", "--key", "k.key"])),
        2,
        &["adir", "directory"],
    );
    // Missing key, wrong password.
    assert_fails(
        run(custody(d).args(["sign", "a.txt", "--key", "nokey.key"])),
        2,
        &["nokey.key"],
    );
    assert_fails(
        run(custody(d)
            .args(["sign", "a.txt", "--key", "k.key"])
            .env("CUSTODY_PASSWORD", "wrong")),
        2,
        &["k.key", "password"],
    );
    // A public key where a private key belongs, and the other way round.
    assert_fails(
        run(custody(d).args(["sign", "a.txt", "--key", "k.pub"])),
        2,
        &["k.pub"],
    );
    let (code, _, _) = run(custody(d).args(["sign", "a.txt", "--key", "k.key"]));
    assert_eq!(code, 0);
    assert_fails(
        run(custody(d).args(["verify", "a.txt", "--key", "k.key"])),
        2,
        &["k.key"],
    );
    // Bundles that are not bundles: denied (1), naming the bundle.
    let good = fs::read_to_string(d.join("a.txt.sigstore.json")).unwrap();
    let cases: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("truncated", good[..good.len() / 2].to_string()),
        ("not-json", "hello".into()),
        (
            "unknown-media-type",
            good.replace("bundle.v0.3+json", "bundle.v0.9+json"),
        ),
        (
            "bad-base64",
            good.replace("\"signature\":\"", "\"signature\":\"!!!"),
        ),
    ];
    for (name, text) in cases {
        let path = d.join(format!("{name}.json"));
        fs::write(&path, text).unwrap();
        assert_fails(
            run(custody(d).args([
                "verify",
                "a.txt",
                "--bundle",
                path.to_str().unwrap(),
                "--key",
                "k.pub",
            ])),
            1,
            &[&format!("{name}.json")],
        );
    }
    // A signature of the wrong algorithm for the key: an Ed25519 signature checked with ECDSA.
    keygen(d, "ed", "ed25519");
    let (code, _, _) =
        run(custody(d).args(["sign", "a.txt", "--key", "ed.key", "--bundle", "ed.json"]));
    assert_eq!(code, 0);
    assert_fails(
        run(custody(d).args(["verify", "a.txt", "--bundle", "ed.json", "--key", "k.pub"])),
        1,
        &["ed.json", "signature"],
    );
    // No bundle beside the artifact, no key given.
    fs::write(d.join("lonely.txt"), b"x").unwrap();
    assert_fails(
        run(custody(d).args(["verify", "lonely.txt", "--key", "k.pub"])),
        2,
        &["lonely.txt", "--bundle"],
    );
    assert_fails(run(custody(d).args(["verify", "a.txt"])), 2, &["--key"]);
    // Usage errors from clap exit 2 too.
    let (code, _, _) = run(custody(d).args(["sign"]));
    assert_eq!(code, 2);
}

#[test]
fn unwritable_output_leaves_nothing_behind() {
    let dir = tempdir();
    let d = dir.path();
    keygen(d, "k", "ecdsa-p256");
    fs::write(d.join("a.txt"), b"a").unwrap();
    assert_fails(
        run(custody(d).args([
            "sign",
            "a.txt",
            "--key",
            "k.key",
            "--bundle",
            "no/such/dir/b.json",
        ])),
        2,
        &["no/such/dir"],
    );
    // Refuses to overwrite a key pair.
    assert_fails(
        run(custody(d).args(["key", "generate", "k"])),
        2,
        &["k.key", "--force"],
    );
    let names: Vec<_> = fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.to_string_lossy().starts_with(".custody-")),
        "temp files left: {names:?}"
    );
}

#[test]
fn private_keys_are_encrypted_and_private() {
    let dir = tempdir();
    let d = dir.path();
    keygen(d, "k", "ecdsa-p256");
    let text = fs::read_to_string(d.join("k.key")).unwrap();
    assert!(
        text.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"),
        "{text}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(d.join("k.key")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let (code, out, _) =
        run(custody(d).args(["key", "generate", "plain", "--insecure-unencrypted"]));
    assert_eq!(code, 0);
    assert!(out.contains("UNENCRYPTED"));
    assert!(
        fs::read_to_string(d.join("plain.key"))
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
}

#[test]
fn cosign_keys_import_and_sec1_is_refused() {
    let dir = tempdir();
    let d = dir.path();
    for (file, name) in [("pemcosignkey.pem", "c1"), ("pemsigstorekey.pem", "c2")] {
        let src = testdata(&format!("cosign/{file}"));
        let (code, out, err) = run(custody(d)
            .args(["key", "import", src.to_str().unwrap(), name, "-o", "json"])
            .env("CUSTODY_PASSWORD", "hello"));
        assert_eq!(code, 0, "{file}: {err}");
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["algorithm"], "ecdsa-p256");
        // The imported key signs, re-encrypted under our password.
        fs::write(d.join("x"), b"x").unwrap();
        let key = format!("{name}.key");
        let (code, _, err) = run(custody(d)
            .args(["sign", "x", "--key", &key, "--bundle", "x.b"])
            .env("CUSTODY_PASSWORD", "hello"));
        assert_eq!(code, 0, "{err}");
        let (code, _, err) = run(custody(d).args([
            "verify",
            "x",
            "--bundle",
            "x.b",
            "--key",
            &format!("{name}.pub"),
        ]));
        assert_eq!(code, 0, "{err}");
    }
    let sec1 = testdata("cosign/pemcosigneckey.pem");
    assert_fails(
        run(custody(d)
            .args(["key", "import", sec1.to_str().unwrap(), "bad"])
            .env("CUSTODY_PASSWORD", "hello")),
        2,
        &["pemcosigneckey.pem", "SEC1"],
    );
    assert!(!d.join("bad.key").exists() && !d.join("bad.pub").exists());
}

#[test]
fn config_file_and_env_supply_defaults_flags_win() {
    let dir = tempdir();
    let d = dir.path();
    keygen(d, "k", "ecdsa-p256");
    keygen(d, "other", "ecdsa-p256");
    fs::write(d.join("a.txt"), b"a").unwrap();
    fs::write(
        d.join("custody.toml"),
        "output = \"json\"\nkey = \"k.key\"\npublic_key = \"k.pub\"\n",
    )
    .unwrap();
    let (code, out, err) = run(custody(d).args(["--config", "custody.toml", "sign", "a.txt"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.trim_start().starts_with('{'),
        "config output=json applies: {out}"
    );
    let (code, _, _) = run(custody(d).args(["--config", "custody.toml", "verify", "a.txt"]));
    assert_eq!(code, 0);
    // The flag beats the config file; the environment beats it too.
    let (code, _, _) = run(custody(d).args([
        "--config",
        "custody.toml",
        "verify",
        "a.txt",
        "--key",
        "other.pub",
    ]));
    assert_eq!(code, 1);
    let (code, _, _) = run(custody(d)
        .args(["--config", "custody.toml", "verify", "a.txt"])
        .env("CUSTODY_PUBLIC_KEY", "other.pub"));
    assert_eq!(code, 1);
    fs::write(d.join("bad.toml"), "outptu = 1\n").unwrap();
    assert_fails(
        run(custody(d).args(["--config", "bad.toml", "verify", "a.txt"])),
        2,
        &["bad.toml"],
    );
}

#[test]
fn huge_sparse_file_streams_or_is_refused_clearly() {
    let dir = tempdir();
    let d = dir.path();
    keygen(d, "k", "ecdsa-p256");
    keygen(d, "ed", "ed25519");
    let f = fs::File::create(d.join("big.img")).unwrap();
    f.set_len(10 * 1024 * 1024 * 1024).unwrap(); // 10 GiB, sparse
    drop(f);
    assert_fails(
        run(custody(d).args(["sign", "big.img", "--key", "ed.key"])),
        2,
        &["big.img", "ECDSA"],
    );
    let (code, _, err) = run(custody(d).args(["sign", "big.img", "--key", "k.key"]));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(custody(d).args(["verify", "big.img", "--key", "k.pub"]));
    assert_eq!(code, 0, "{err}");
}

#[test]
fn trust_root_inspect_accepts_real_roots_and_refuses_bad_ones() {
    let dir = tempdir();
    let d = dir.path();
    let good = testdata("sigstore-trust-root/public-good.trusted_root.json");
    let (code, out, err) = run(custody(d).args([
        "trust-root",
        "inspect",
        good.to_str().unwrap(),
        "-o",
        "json",
    ]));
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let tlogs = doc["tlogs"].as_array().unwrap();
    assert!(
        tlogs
            .iter()
            .any(|t| t["baseUrl"] == "https://rekor.sigstore.dev"),
        "{out}"
    );
    assert!(!doc["certificateAuthorities"].as_array().unwrap().is_empty());
    let config = testdata("sigstore-python/trust_config/config.v1.json");
    let (code, _, err) = run(custody(d).args(["trust-root", "inspect", config.to_str().unwrap()]));
    assert_eq!(code, 0, "a ClientTrustConfig holds a trusted root: {err}");
    for bad in [
        "sigstore-python/trusted_root/trustedroot.badtype.json",
        "sigstore-python/trust_config/config.badtype.json",
    ] {
        let path = testdata(bad);
        assert_fails(
            run(custody(d).args(["trust-root", "inspect", path.to_str().unwrap()])),
            2,
            &[path.file_name().unwrap().to_str().unwrap()],
        );
    }
}

#[test]
fn digest_names_files_like_sha256sum() {
    let dir = tempdir();
    let d = dir.path();
    fs::write(d.join("a.txt"), b"abc").unwrap();
    let (code, out, _) = run(custody(d).args(["digest", "a.txt"]));
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  a.txt\n"
    );
    assert_fails(run(custody(d).args(["digest", "nope"])), 2, &["nope"]);
}
