//! The policy gate on the command line: `custody policy` and `custody verify --policy`, over
//! real evidence (a `custody build --log` provenance, logged in a real `custody serve`), with an
//! evidence tamper matrix, SARIF, signed VSAs and the VSA fast path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod logd;

use std::fs;
use std::path::Path;

use common::{assert_fails, custody, keygen, run, tempdir};
use custody_core::encoding::{base64_decode_any as base64_decode, base64_encode};
use logd::Daemon;
use serde_json::{Value, json};

fn key_id(dir: &Path, public: &str) -> String {
    let (code, out, err) = run(custody(dir).args(["key", "inspect", public, "-o", "json"]));
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    doc["keyId"].as_str().unwrap().to_string()
}

/// Flips one bit of the base64 field at `pointer` (a JSON pointer) in the JSON file `from`,
/// writing the result to `to`.
fn flip_base64(from: &Path, pointer: &str, to: &Path, at: usize) {
    let mut doc: Value = serde_json::from_slice(&fs::read(from).unwrap()).unwrap();
    let field = doc
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer} in {}", from.display()));
    let mut bytes = base64_decode(field.as_str().unwrap()).unwrap();
    let i = at.min(bytes.len() - 1);
    bytes[i] ^= 0x01;
    *field = json!(base64_encode(&bytes));
    fs::write(to, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
}

struct World {
    _dir: tempfile::TempDir,
    _log: Daemon,
    root: std::path::PathBuf,
}

impl World {
    fn d(&self) -> &Path {
        &self.root
    }

    fn verify(&self, extra: &[&str]) -> (i32, Value, String) {
        let mut args = vec![
            "verify",
            "proj/out.bin",
            "--policy",
            "policy",
            "--key",
            "k.pub",
            "--trusted-root",
            "tr.json",
            "--env",
            "prod",
            "--stage",
            "production",
            "-o",
            "json",
        ];
        args.extend_from_slice(extra);
        let (code, out, err) = run(custody(self.d()).args(&args));
        assert!(!err.contains("panicked"), "{err}");
        let doc: Value = serde_json::from_str(out.lines().last().unwrap_or("null"))
            .unwrap_or_else(|e| panic!("{e}: stdout {out:?} stderr {err}"));
        (code, doc, err)
    }
}

fn codes(doc: &Value, field: &str) -> Vec<String> {
    doc[field]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|f| f["code"].as_str().unwrap_or("").to_string())
        .collect()
}

/// A project built with `custody build --log`, a trust root for the log, and a starter policy
/// trusting key k and requiring a log entry and a clean tree.
fn world() -> World {
    let dir = tempdir();
    let d = dir.path().to_path_buf();
    let data = d.join("log");
    let log = Daemon::log(&data, &[]);
    let token = data.with_extension("token");
    keygen(&d, "k", "ecdsa-p256");
    keygen(&d, "other", "ecdsa-p256");
    keygen(&d, "gate", "ecdsa-p256");
    fs::create_dir(d.join("proj")).unwrap();
    fs::copy(d.join("k.key"), d.join("proj/k.key")).unwrap();
    let (code, _, err) = run(custody(&d.join("proj")).args([
        "build",
        "--key",
        "k.key",
        "--artifacts",
        "out.bin",
        "--log",
        &log.url,
        "--log-token-file",
        token.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "echo built > out.bin",
    ]));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(custody(&d).args([
        "trust-root",
        "export",
        "--server",
        &log.url,
        "--out",
        "tr.json",
    ]));
    assert_eq!(code, 0, "{err}");
    let kid = key_id(&d, "k.pub");
    let (code, _, err) =
        run(custody(&d).args(["policy", "init", "policy", "--trust-key-id", &kid]));
    assert_eq!(code, 0, "{err}");
    let mut data_json: Value =
        serde_json::from_slice(&fs::read(d.join("policy/data.json")).unwrap()).unwrap();
    data_json["custody"]["config"]["tlog"] = json!(true);
    data_json["custody"]["config"]["deny_rejected"] = json!(true);
    // The build ran outside git: custody records no source, so "clean" cannot be shown.
    data_json["custody"]["config"]["provenance"]["clean"] = json!(false);
    fs::write(d.join("policy/data.json"), data_json.to_string()).unwrap();
    World {
        root: d,
        _dir: dir,
        _log: log,
    }
}

#[test]
fn gate_allows_verified_evidence_and_denies_every_tampering_with_the_reason() {
    let w = world();
    let d = w.d();

    let (code, doc, err) = w.verify(&[]);
    assert_eq!(code, 0, "{doc} {err}");
    assert_eq!(doc["allowed"], true);
    assert_eq!(doc["evidence"][0]["logged"], true, "{doc}");
    assert_eq!(doc["environment"], "prod");

    let bundle = d.join("proj/out.bin.intoto.sigstore.json");
    let pristine = fs::read(&bundle).unwrap();
    let restore = || fs::write(&bundle, &pristine).unwrap();

    // The artifact: one byte different → the provenance is not about it.
    let artifact = d.join("proj/out.bin");
    let original = fs::read(&artifact).unwrap();
    let mut changed = original.clone();
    changed[0] ^= 0x01;
    fs::write(&artifact, &changed).unwrap();
    let (code, doc, err) = w.verify(&[]);
    assert_eq!(code, 1, "{doc}");
    assert_eq!(codes(&doc, "rejected"), ["artifact.not-a-subject"], "{doc}");
    assert!(
        codes(&doc, "denies").contains(&"evidence-rejected".to_string()),
        "{doc}"
    );
    assert!(
        codes(&doc, "denies").contains(&"provenance-missing".to_string()),
        "{doc}"
    );
    assert!(err.contains("denied by policy"), "{err}");
    fs::write(&artifact, &original).unwrap();

    // The signature, the provenance (the signed payload), the log's inclusion proof.
    let cases: [(&str, usize, &[&str]); 3] = [
        ("/dsseEnvelope/signatures/0/sig", 10, &["signature.invalid"]),
        ("/dsseEnvelope/payload", 40, &["signature.invalid"]),
        (
            "/verificationMaterial/tlogEntries/0/inclusionProof/rootHash",
            3,
            &["tlog."],
        ),
    ];
    for (pointer, at, want) in cases {
        flip_base64(&pristine_path(d, &pristine), pointer, &bundle, at);
        let (code, doc, _) = w.verify(&[]);
        assert_eq!(code, 1, "{pointer}: {doc}");
        let rejected = codes(&doc, "rejected");
        assert_eq!(rejected.len(), 1, "{pointer}: {doc}");
        assert!(
            want.iter().any(|w| rejected[0].starts_with(w)),
            "{pointer}: rejected {rejected:?}, wanted {want:?}"
        );
        assert_eq!(
            doc["rejected"][0]["source"],
            bundle
                .display()
                .to_string()
                .replace(&format!("{}/", d.display()), ""),
            "{doc}"
        );
        restore();
    }

    // The trust root: the log's key changed by one bit → the entry is from an unknown log.
    fs::copy(d.join("tr.json"), d.join("tr-good.json")).unwrap();
    flip_base64(
        &d.join("tr-good.json"),
        "/tlogs/0/publicKey/rawBytes",
        &d.join("tr.json"),
        60,
    );
    let (code, doc, err) = w.verify(&[]);
    assert_eq!(code, 1, "{doc} {err}");
    let rejected = codes(&doc, "rejected");
    assert!(
        rejected.len() == 1 && rejected[0].starts_with("tlog."),
        "{doc}"
    );
    fs::copy(d.join("tr-good.json"), d.join("tr.json")).unwrap();

    // An untrusted signer: the bundle is re-signed with another key.
    let (code, _, err) = run(custody(&d.join("proj")).args([
        "attest",
        "out.bin",
        "--key",
        "../other.key",
        "--type",
        "https://slsa.dev/provenance/v1",
        "--predicate",
        "../tr.json",
        "--bundle",
        "../evil.json",
    ]));
    assert_eq!(code, 0, "{err}");
    let (code, doc, _) = w.verify(&["--evidence", "evil.json"]);
    assert_eq!(code, 1, "{doc}");
    assert!(
        codes(&doc, "rejected").contains(&"signature.invalid".to_string()),
        "{doc}"
    );

    // Back to pristine: allowed again (nothing above was sticky).
    let (code, doc, _) = w.verify(&[]);
    assert_eq!(code, 0, "{doc}");
}

fn pristine_path(d: &Path, pristine: &[u8]) -> std::path::PathBuf {
    let p = d.join("pristine.json");
    fs::write(&p, pristine).unwrap();
    p
}

#[test]
fn denials_name_code_location_and_fix_in_human_json_and_sarif() {
    let w = world();
    let d = w.d();
    fs::write(d.join("lonely.bin"), b"never signed").unwrap();
    let out = run(custody(d).args([
        "verify",
        "lonely.bin",
        "--policy",
        "policy",
        "--key",
        "k.pub",
        "--sarif",
        "out.sarif",
    ]));
    assert_eq!(out.0, 1, "{}", out.2);
    assert!(out.1.contains("DENIED lonely.bin"), "{}", out.1);
    assert!(out.1.contains("[provenance-missing]"), "{}", out.1);
    assert!(
        out.1.contains("fix: build with `custody build"),
        "{}",
        out.1
    );
    assert!(out.1.contains("<builtin>/custody/lib.rego:"), "{}", out.1);
    assert_fails(
        out,
        1,
        &["lonely.bin", "denied by policy", "provenance-missing"],
    );

    let sarif: Value = serde_json::from_slice(&fs::read(d.join("out.sarif")).unwrap()).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let ids: Vec<&str> = results
        .iter()
        .map(|r| r["ruleId"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"provenance-missing") && ids.contains(&"signers-below-threshold"),
        "{ids:?}"
    );
    for r in results {
        assert_eq!(r["level"], "error");
        assert!(
            r["locations"][0]["physicalLocation"]["region"]["startLine"]
                .as_u64()
                .unwrap()
                > 0
        );
        assert!(
            r["properties"]["artifact"]
                .as_str()
                .unwrap()
                .starts_with("sha256:")
        );
        assert!(!r["properties"]["fix"].as_str().unwrap().is_empty());
    }

    // A user rule: its location is the user's file and line.
    fs::write(
        d.join("policy/freeze.rego"),
        "package custody.gate\n\n# release freeze\ndeny contains {\"code\": \"release-freeze\", \"msg\": \"prod is frozen\", \"fix\": \"wait\"} if input.environment.name == \"prod\"\n",
    )
    .unwrap();
    let (code, doc, _) = w.verify(&[]);
    assert_eq!(code, 1, "{doc}");
    let deny = &doc["denies"][0];
    assert_eq!(deny["code"], "release-freeze", "{doc}");
    assert_eq!(deny["location"]["line"], 4, "{doc}");
    assert!(
        deny["location"]["file"]
            .as_str()
            .unwrap()
            .ends_with("policy/freeze.rego"),
        "{doc}"
    );
}

#[test]
fn a_policy_that_does_not_compile_is_refused_at_load() {
    let dir = tempdir();
    let d = dir.path();
    fs::create_dir(d.join("bad")).unwrap();
    fs::write(
        d.join("bad/gate.rego"),
        "package custody.gate\n\ndeny contains \"x\" if {\n  input.a ==\n}\n",
    )
    .unwrap();
    fs::write(d.join("a.bin"), b"a").unwrap();
    assert_fails(
        run(custody(d).args(["verify", "a.bin", "--policy", "bad"])),
        2,
        &["does not compile", "bad/gate.rego:5"],
    );
    // Undefined functions are found by the load-time dry run, not at admission.
    fs::write(
        d.join("bad/gate.rego"),
        "package custody.gate\n\ndeny contains \"x\" if {\n  no_such_function(input)\n}\n",
    )
    .unwrap();
    assert_fails(
        run(custody(d).args(["policy", "test", "bad"])),
        2,
        &["does not compile", "no_such_function"],
    );
    // No deny rule in package custody.gate.
    fs::write(d.join("bad/gate.rego"), "package other\n\nallow := true\n").unwrap();
    assert_fails(
        run(custody(d).args(["policy", "digest", "bad"])),
        2,
        &["no `deny` rule"],
    );
}

#[test]
fn policy_test_runs_test_rules_and_fails_when_one_fails() {
    let dir = tempdir();
    let d = dir.path();
    let (code, _, err) = run(custody(d).args(["policy", "init", "p"]));
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(custody(d).args(["policy", "test", "p", "-o", "json"]));
    assert_eq!(code, 0, "{out} {err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["passed"], 2, "{out}");

    fs::write(
        d.join("p/extra_test.rego"),
        "package custody.extra_test\n\nimport data.custody.gate\n\ntest_wrong if {\n  count(gate.deny) == 0 with input as {\"evidence\": [], \"rejected\": [], \"time\": \"2026-01-01T00:00:00Z\", \"artifact\": {\"digest\": \"sha256:00\"}}\n}\n",
    )
    .unwrap();
    let (code, out, _) = run(custody(d).args(["policy", "test", "p"]));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL  data.custody.extra_test.test_wrong"),
        "{out}"
    );
    assert!(out.contains("extra_test.rego:5"), "{out}");

    let (code, out, err) = run(custody(d).args(["policy", "test", "--builtin"]));
    assert_eq!(code, 0, "{out} {err}");
    assert!(out.contains("PASS"), "{out}");
}

#[test]
fn policy_eval_reads_an_input_document() {
    let dir = tempdir();
    let d = dir.path();
    let (code, _, err) = run(custody(d).args([
        "policy",
        "init",
        "p",
        "--trust-key-id",
        "aa00000000000000000000000000000000000000000000000000000000000000",
    ]));
    assert_eq!(code, 0, "{err}");
    let signed = json!({
        "artifact": {"digest": "sha256:00", "name": "x"}, "environment": null,
        "time": "2026-01-01T00:00:00Z", "rejected": [],
        "evidence": [{"source": "x.json", "bundle_digest": "sha256:01", "kind": "attestation",
            "predicate_type": "https://slsa.dev/provenance/v1", "logged": false, "tlog": [], "times": [],
            "statement": {"predicateType": "https://slsa.dev/provenance/v1", "predicate": {
                "buildDefinition": {"externalParameters": {"source": {"dirty": false}}},
                "runDetails": {"builder": {"id": "b"}}}},
            "signer": {"kind": "key", "label": "aa00000000000000000000000000000000000000000000000000000000000000",
                "key_id": "aa00000000000000000000000000000000000000000000000000000000000000",
                "algorithm": "ecdsa-p256", "key_bits": 256, "claims": {}}}]
    });
    fs::write(d.join("in.json"), signed.to_string()).unwrap();
    let (code, out, err) =
        run(custody(d).args(["policy", "eval", "p", "--input", "in.json", "-o", "json"]));
    assert_eq!(code, 0, "{out} {err}");
    let mut unsigned = signed.clone();
    unsigned["evidence"] = json!([]);
    fs::write(d.join("in2.json"), unsigned.to_string()).unwrap();
    let (code, out, _) =
        run(custody(d).args(["policy", "eval", "p", "--input", "in2.json", "-o", "json"]));
    assert_eq!(code, 1, "{out}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert!(
        codes(&doc, "denies").contains(&"signers-below-threshold".to_string()),
        "{out}"
    );
    assert_fails(
        run(custody(d).args(["policy", "eval", "p", "--input", "missing.json"])),
        2,
        &["missing.json"],
    );
}

#[test]
fn allowed_verdicts_are_signed_as_logged_vsas_and_accepted_on_the_fast_path() {
    let w = world();
    let d = w.d();
    let url = w._log.url.clone();
    let token = d.join("log.token");
    let (code, doc, err) = w.verify(&[
        "--vsa-out",
        "out.vsa.json",
        "--vsa-key",
        "gate.key",
        "--log",
        &url,
        "--log-token-file",
        token.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{doc} {err}");
    assert_eq!(doc["vsa"]["path"], "out.vsa.json", "{doc}");
    assert!(doc["vsa"]["tlog"]["logIndex"].is_i64(), "{doc}");

    // The VSA is an ordinary DSSE bundle: it verifies with the gate key and the log's root.
    let (code, out, err) = run(custody(d).args([
        "verify",
        "proj/out.bin",
        "--bundle",
        "out.vsa.json",
        "--key",
        "gate.pub",
        "--trusted-root",
        "tr.json",
        "-o",
        "json",
    ]));
    assert_eq!(code, 0, "{out} {err}");
    let bundle: Value = serde_json::from_slice(&fs::read(d.join("out.vsa.json")).unwrap()).unwrap();
    let statement: Value = serde_json::from_slice(
        &base64_decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        statement["predicateType"],
        "https://slsa.dev/verification_summary/v1"
    );
    let p = &statement["predicate"];
    assert_eq!(p["verificationResult"], "PASSED");
    assert_eq!(p["verifiedLevels"][0], "SLSA_BUILD_LEVEL_1");
    assert_eq!(p["custody_environment"], "prod");
    assert_eq!(
        format!(
            "sha256:{}",
            p["policy"]["digest"]["sha256"].as_str().unwrap()
        ),
        doc["policy_digest"].as_str().unwrap()
    );
    assert_eq!(p["inputAttestations"].as_array().unwrap().len(), 1);

    // Fast path: accepted for this artifact, policy and environment.
    let policy_digest = doc["policy_digest"].as_str().unwrap();
    let accept = |extra: &[&str]| {
        let mut args = vec![
            "verify",
            "proj/out.bin",
            "--accept-vsa",
            "out.vsa.json",
            "--gate-key",
            "gate.pub",
        ];
        args.extend_from_slice(extra);
        run(custody(d).args(&args))
    };
    let (code, out, err) = accept(&["--policy-digest", policy_digest, "--env", "prod"]);
    assert_eq!(code, 0, "{out} {err}");
    assert!(out.contains("PASSED"), "{out}");
    // Refused: another key, another artifact, another policy, another environment, too old.
    let (code, _, err) = run(custody(d).args([
        "verify",
        "proj/out.bin",
        "--accept-vsa",
        "out.vsa.json",
        "--gate-key",
        "other.pub",
    ]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("out.vsa.json"), "{err}");
    fs::write(d.join("else.bin"), b"something else").unwrap();
    assert_fails(
        run(custody(d).args([
            "verify",
            "else.bin",
            "--accept-vsa",
            "out.vsa.json",
            "--gate-key",
            "gate.pub",
        ])),
        1,
        &["out.vsa.json"],
    );
    assert_fails(
        accept(&[
            "--policy-digest",
            "sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ]),
        1,
        &["vsa.policy"],
    );
    assert_fails(accept(&["--env", "staging"]), 1, &["vsa.environment"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_fails(accept(&["--vsa-max-age", "0"]), 1, &["vsa.stale"]);

    // A denied artifact gets no VSA.
    fs::write(d.join("lonely.bin"), b"never signed").unwrap();
    let (code, _, _) = run(custody(d).args([
        "verify",
        "lonely.bin",
        "--policy",
        "policy",
        "--key",
        "k.pub",
        "--vsa-out",
        "lonely.vsa.json",
        "--vsa-key",
        "gate.key",
    ]));
    assert_eq!(code, 1);
    assert!(!d.join("lonely.vsa.json").exists());
}

/// Issue #16, attack 7, on the command line: `custody policy eval` and `custody verify
/// --policy` stop a looping policy at `--policy-timeout` (or CUSTODY_POLICY_TIMEOUT) and deny
/// with `policy-timeout` (exit 1), instead of running for minutes.
#[test]
fn attack_slow_policy_is_cut_at_the_time_limit_on_the_command_line() {
    let dir = tempdir();
    let d = dir.path();
    fs::create_dir(d.join("p")).unwrap();
    fs::write(
        d.join("p/gate.rego"),
        "package custody.gate\n\nslow if {\n\tinput.artifact.name == \"slow\"\n\tfound := {true | some i in numbers.range(1, 20000); some j in numbers.range(1, 20000); i == j + 100000}\n\tcount(found) == 0\n}\n\ndeny contains \"never\" if slow\n",
    )
    .unwrap();
    let doc = |name: &str| {
        json!({"artifact": {"digest": format!("sha256:{}", "0".repeat(64)), "name": name},
            "environment": null, "time": "2026-01-01T00:00:00Z", "evidence": [], "rejected": []})
        .to_string()
    };
    fs::write(d.join("slow.json"), doc("slow")).unwrap();
    fs::write(d.join("fine.json"), doc("fine")).unwrap();

    let started = std::time::Instant::now();
    let (code, out, err) = run(custody(d).args([
        "policy",
        "eval",
        "p",
        "--input",
        "slow.json",
        "--policy-timeout",
        "200ms",
        "-o",
        "json",
    ]));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(code, 1, "{out} {err}");
    let verdict: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        codes(&verdict, "denies"),
        vec!["policy-timeout".to_string()]
    );
    assert_eq!(verdict["denies"][0]["details"]["limit_ms"], 200, "{out}");
    let (code, out, _) = run(custody(d).args(["policy", "eval", "p", "--input", "fine.json"]));
    assert_eq!(code, 0, "{out}");

    // `custody verify --policy`: the file's name is input.artifact.name; the limit from the
    // environment.
    fs::write(d.join("slow"), "artifact bytes").unwrap();
    let started = std::time::Instant::now();
    let (code, out, err) = run(custody(d)
        .env("CUSTODY_POLICY_TIMEOUT", "250ms")
        .args(["verify", "slow", "--policy", "p"]));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(code, 1, "{out} {err}");
    let text = format!("{out}{err}");
    assert!(text.contains("[policy-timeout]"), "{text}");
    assert!(text.contains("250ms"), "{text}");
    assert!(text.contains("--policy-timeout"), "{text}");

    // A limit that is not one is a usage error naming the flag.
    assert_fails(
        run(custody(d).args([
            "policy",
            "eval",
            "p",
            "--input",
            "fine.json",
            "--policy-timeout",
            "0ms",
        ])),
        2,
        &["--policy-timeout", "at least 1ms"],
    );
}
