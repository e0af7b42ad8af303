//! `custody serve --policy` as a real process over TLS: the evidence store, the evaluate API
//! with its cache and VSAs, and the Kubernetes admission webhook with the AdmissionReview
//! requests the API server sends (one fixture per workload kind).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{PASSWORD, custody, keygen, run};
use serde_json::{Value, json};

const TOKEN: &str = "gate-test-token";
/// The fixtures' images: (reference, content whose SHA-256 is the reference's digest).
const APP: (&str, &str) = (
    "ghcr.io/acme/app@sha256:2872b21636a6831b54f958ffa59893d0d8ce2e8be8cb8b4bb02d09ecc1f75b8c",
    "custody test image: app\n",
);
const SIDECAR: (&str, &str) = (
    "ghcr.io/acme/sidecar@sha256:4945d583ea34f6d0bb61a0f8489a247bb3d7c543dd03a87a4682bdb5689adb82",
    "custody test image: sidecar\n",
);
const INIT: (&str, &str) = (
    "ghcr.io/acme/init:1.4@sha256:677668a1656b31913e14fed8f0f3e003d26b52de93ee6332549590bef16dcae2",
    "custody test image: init\n",
);
const KINDS: [&str; 7] = [
    "pod",
    "deployment",
    "replicaset",
    "statefulset",
    "daemonset",
    "job",
    "cronjob",
];

/// A running `custody serve`; killed when dropped.
struct Server {
    child: Child,
    url: String,
    agent: ureq::Agent,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch directory with a CA and a server certificate for 127.0.0.1, a signer key, a gate
/// key, a write token and a policy trusting the signer.
struct Setup {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    ca_der: Vec<u8>,
}

impl Setup {
    fn new() -> Setup {
        let tmp = common::tempdir();
        let dir = tmp.path().to_path_buf();
        let ca_der = certificates(&dir);
        keygen(&dir, "signer", "ecdsa-p256");
        keygen(&dir, "gate", "ecdsa-p256");
        std::fs::write(dir.join("token"), format!("{TOKEN}\n")).unwrap();
        let (code, out, err) =
            run(custody(&dir).args(["key", "inspect", "signer.pub", "-o", "json"]));
        assert_eq!(code, 0, "{err}");
        let key_id = serde_json::from_str::<Value>(&out).unwrap()["keyId"]
            .as_str()
            .unwrap()
            .to_owned();
        let policy = dir.join("policy");
        std::fs::create_dir(&policy).unwrap();
        std::fs::write(
            policy.join("gate.rego"),
            "package custody.gate\n\nimport data.custody.lib\n\n\
             deny contains v if some v in lib.violations\n\n\
             warn contains {\"code\": \"test-signer\", \"msg\": \"signed with a test key\"} if count(input.evidence) > 0\n",
        )
        .unwrap();
        std::fs::write(
            policy.join("data.json"),
            json!({"custody": {"config": {"signers": {"keys": [key_id]}, "provenance": {"required": false}}}})
                .to_string(),
        )
        .unwrap();
        Setup {
            _tmp: tmp,
            dir,
            ca_der,
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_owned()
    }

    /// Starts `custody serve` with TLS and the policy; `extra` adds flags.
    fn serve(&self, extra: &[&str]) -> Server {
        self.serve_with(true, extra)
    }

    fn serve_with(&self, tls: bool, extra: &[&str]) -> Server {
        let mut args = vec![
            "serve".to_owned(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--origin".into(),
            "log.test".into(),
            "--data-dir".into(),
            self.path("data"),
            "--write-token-file".into(),
            self.path("token"),
            "--policy".into(),
            self.path("policy"),
            "--gate-key".into(),
            self.path("signer.pub"),
            "--gate-env".into(),
            "production".into(),
        ];
        if tls {
            for (flag, file) in [("--tls-cert", "server.crt"), ("--tls-key", "server.key")] {
                args.push(flag.into());
                args.push(self.path(file));
            }
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("custody"))
            .args(&args)
            .env("CUSTODY_PASSWORD", PASSWORD)
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
            .filter(|u| u.starts_with(if tls { "https://" } else { "http://" }))
            .unwrap_or_else(|| panic!("no listening line: {line:?}"))
            .to_owned();
        let roots =
            ureq::tls::RootCerts::new_with_certs(&[
                ureq::tls::Certificate::from_der(&self.ca_der).to_owned()
            ]);
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
            .build()
            .into();
        Server { child, url, agent }
    }

    /// Signs `content` (a message signature over its digest) and returns the bundle's bytes.
    fn sign(&self, name: &str, content: &str) -> Vec<u8> {
        let file = self.dir.join(name);
        std::fs::write(&file, content).unwrap();
        let (code, _, err) = run(custody(&self.dir).args(["sign", name, "--key", "signer.key"]));
        assert_eq!(code, 0, "{err}");
        std::fs::read(self.dir.join(format!("{name}.sigstore.json"))).unwrap()
    }

    /// Attests `content` (an in-toto statement) and returns the bundle's bytes.
    fn attest(&self, name: &str, content: &str) -> Vec<u8> {
        std::fs::write(self.dir.join(name), content).unwrap();
        std::fs::write(self.dir.join("predicate.json"), r#"{"reviewed": true}"#).unwrap();
        let (code, _, err) = run(custody(&self.dir).args([
            "attest",
            name,
            "--key",
            "signer.key",
            "--type",
            "https://example.com/review/v1",
            "--predicate",
            "predicate.json",
        ]));
        assert_eq!(code, 0, "{err}");
        // Not provenance: the bundle is named after the predicate type (`.review.`).
        std::fs::read(self.dir.join(format!("{name}.review.sigstore.json"))).unwrap()
    }
}

/// A CA and a leaf for 127.0.0.1/localhost signed by it; writes server.crt, server.key, ca.crt.
fn certificates(dir: &Path) -> Vec<u8> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let leaf = params.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("server.crt"), leaf.pem() + &ca.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
    ca.der().to_vec()
}

impl Server {
    fn post(&self, path: &str, body: &[u8], token: Option<&str>) -> (u16, Value) {
        let mut req = self
            .agent
            .post(format!("{}{path}", self.url))
            .header("Content-Type", "application/json");
        if let Some(token) = token {
            req = req.header("Authorization", format!("Bearer {token}"));
        }
        let mut r = req
            .send(body)
            .unwrap_or_else(|e| panic!("POST {path} ({} bytes): {e}", body.len()));
        let text = r.body_mut().read_to_string().unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (r.status().as_u16(), value)
    }

    fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let mut r = self
            .agent
            .get(format!("{}{path}", self.url))
            .call()
            .unwrap();
        let body = r.body_mut().read_to_vec().unwrap();
        (r.status().as_u16(), body)
    }

    fn upload(&self, bundle: &[u8]) -> Value {
        let (status, answer) = self.post("/api/v1/evidence", bundle, Some(TOKEN));
        assert!(status == 201 || status == 200, "{status} {answer}");
        answer
    }

    fn admit(&self, review: &Value) -> Value {
        let (status, answer) = self.post("/api/v1/admission", review.to_string().as_bytes(), None);
        assert_eq!(status, 200, "{answer}");
        answer
    }

    fn evaluate(&self, digest: &str) -> Value {
        self.evaluate_as(digest, Some(TOKEN))
    }

    fn evaluate_as(&self, digest: &str, token: Option<&str>) -> Value {
        let (status, answer) = self.post(
            "/api/v1/gate/evaluate",
            json!({ "artifact": digest }).to_string().as_bytes(),
            token,
        );
        assert_eq!(status, 200, "{answer}");
        answer
    }
}

fn fixture(kind: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/admission")
        .join(format!("{kind}.json"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn digest_of(image: &str) -> String {
    image.rsplit_once('@').unwrap().1.to_owned()
}

/// Replaces every occurrence of `from` in the review's JSON text.
fn replace_image(review: &Value, from: &str, to: &str) -> Value {
    serde_json::from_str(&review.to_string().replace(from, to)).unwrap()
}

/// Uploads evidence for the three fixture images (two signatures, one attestation).
fn upload_fixture_evidence(setup: &Setup, server: &Server) {
    let answer = server.upload(&setup.sign("app.img", APP.1));
    assert_eq!(answer["subjects"], json!([digest_of(APP.0)]));
    server.upload(&setup.attest("sidecar.img", SIDECAR.1));
    server.upload(&setup.sign("init.img", INIT.1));
}

#[test]
fn admission_over_tls_allows_every_workload_kind_with_verified_evidence() {
    let setup = Setup::new();
    let server = setup.serve(&[]);
    upload_fixture_evidence(&setup, &server);

    for kind in KINDS {
        let review = fixture(kind);
        let answer = server.admit(&review);
        assert_eq!(answer["apiVersion"], "admission.k8s.io/v1", "{kind}");
        assert_eq!(answer["kind"], "AdmissionReview", "{kind}");
        let response = &answer["response"];
        assert_eq!(response["uid"], review["request"]["uid"], "{kind}");
        assert_eq!(response["allowed"], true, "{kind}: {answer}");
        assert!(response.get("status").is_none(), "{kind}: {answer}");
        // The policy's warn rule shows as kubectl warnings, one per image.
        let warnings = response["warnings"].as_array().unwrap();
        assert!(warnings.len() >= 2, "{kind}: {answer}");
        assert!(
            warnings
                .iter()
                .all(|w| w.as_str().unwrap().contains("[test-signer]")),
            "{answer}"
        );
    }

    // The stored evidence is listed under its digest; an unknown digest has none.
    let (status, body) = server.get(&format!("/api/v1/evidence/{}", digest_of(SIDECAR.0)));
    assert_eq!(status, 200);
    let list: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(
        list[0]["bundle_digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert!(list[0]["bundle"]["dsseEnvelope"].is_object());
    let (status, body) = server.get(&format!("/api/v1/evidence/sha256:{}", "0".repeat(64)));
    assert_eq!((status, body.as_slice()), (200, b"[]".as_slice()));
    assert_eq!(server.get("/api/v1/evidence/sha256:abc").0, 400);
    // The log's read API is served over the same TLS port.
    assert_eq!(server.get("/healthz"), (200, b"ok\n".to_vec()));
}

#[test]
fn admission_denies_missing_evidence_and_unpinned_tags_with_a_readable_message() {
    let setup = Setup::new();
    let server = setup.serve(&[]);
    upload_fixture_evidence(&setup, &server);

    // An image pinned to a digest nobody signed.
    let unsigned = format!("ghcr.io/acme/unsigned@sha256:{}", "ab".repeat(32));
    let review = replace_image(&fixture("deployment"), SIDECAR.0, &unsigned);
    let answer = server.admit(&review);
    let response = &answer["response"];
    assert_eq!(response["uid"], review["request"]["uid"]);
    assert_eq!(response["allowed"], false, "{answer}");
    assert_eq!(response["status"]["code"], 403);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message
            .starts_with("custody: 1 of 3 images denied: image ghcr.io/acme/unsigned@sha256:abab"),
        "{message}"
    );
    assert!(message.contains("[signers-below-threshold]"), "{message}");
    assert!(message.contains("(fix: "), "{message}");
    assert!(!message.contains('\n'), "{message}");
    eprintln!("denial: {message}");

    // A tag without a digest.
    let review = replace_image(&fixture("pod"), APP.0, "ghcr.io/acme/app:latest");
    let answer = server.admit(&review);
    let message = answer["response"]["status"]["message"].as_str().unwrap();
    assert_eq!(answer["response"]["allowed"], false);
    assert!(
        message.contains("image ghcr.io/acme/app:latest [image-not-pinned]"),
        "{message}"
    );
    assert!(
        message.contains("fix: deploy ghcr.io/acme/app:latest@sha256:"),
        "{message}"
    );

    // DELETE, and objects without a pod spec, are allowed; a malformed review is 400.
    let mut delete = review.clone();
    delete["request"]["operation"] = json!("DELETE");
    assert_eq!(server.admit(&delete)["response"]["allowed"], true);
    let mut config_map = fixture("pod");
    config_map["request"]["kind"]["kind"] = json!("ConfigMap");
    config_map["request"]["object"] = json!({"kind": "ConfigMap", "data": {"a": "b"}});
    assert_eq!(server.admit(&config_map)["response"]["allowed"], true);
    for bad in [
        "not json".to_owned(),
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).to_string(),
        json!({"apiVersion": "v1", "kind": "Pod"}).to_string(),
    ] {
        let (status, answer) = server.post("/api/v1/admission", bad.as_bytes(), None);
        assert_eq!(status, 400, "{bad}: {answer}");
        assert!(!answer["message"].as_str().unwrap().contains('\n'));
    }

    // Evidence needs the token, must be a bundle, and names what it is about.
    let bundle = setup.sign("other.img", "other");
    assert_eq!(server.post("/api/v1/evidence", &bundle, None).0, 401);
    assert_eq!(
        server.post("/api/v1/evidence", &bundle, Some("wrong")).0,
        401
    );
    let (status, answer) = server.post("/api/v1/evidence", b"{}", Some(TOKEN));
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("not a Sigstore bundle")
    );
    assert_eq!(server.upload(&bundle)["duplicate"], false);
    assert_eq!(server.upload(&bundle)["duplicate"], true);
    let big = vec![b' '; (1 << 20) + 1];
    let (status, answer) = server.post("/api/v1/evidence", &big, Some(TOKEN));
    assert_eq!(status, 413);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("--max-request-bytes")
    );
}

#[test]
fn the_cache_answers_the_same_verdict_until_evidence_or_invalidation() {
    let setup = Setup::new();
    let server = setup.serve(&["--gate-cache-ttl", "600"]);
    let digest = digest_of(APP.0);

    let first = server.evaluate(&digest);
    assert_eq!(first["allowed"], false);
    assert_eq!(first["cached"], false);
    assert_eq!(first["environment"], "production");
    let again = server.evaluate(&digest);
    assert_eq!(again["cached"], true);
    for field in ["allowed", "denies", "evaluated_at", "policy_digest"] {
        assert_eq!(first[field], again[field], "{field}");
    }

    // New evidence for the digest drops its cached decision.
    server.upload(&setup.sign("app.img", APP.1));
    let after = server.evaluate(&digest);
    assert_eq!(after["cached"], false);
    assert_eq!(after["allowed"], true, "{after}");
    assert_eq!(server.evaluate(&digest)["cached"], true);

    // The invalidate hook: token required; one digest, then all.
    let one = json!({ "digest": digest }).to_string();
    assert_eq!(
        server
            .post("/api/v1/gate/cache/invalidate", one.as_bytes(), None)
            .0,
        401
    );
    let (status, answer) =
        server.post("/api/v1/gate/cache/invalidate", one.as_bytes(), Some(TOKEN));
    assert_eq!((status, answer["dropped"].as_u64()), (200, Some(1)));
    assert_eq!(server.evaluate(&digest)["cached"], false);
    let (status, answer) = server.post("/api/v1/gate/cache/invalidate", b"", Some(TOKEN));
    assert_eq!((status, answer["dropped"].as_u64()), (200, Some(1)));
    assert_eq!(server.evaluate(&digest)["cached"], false);

    // Every decision is in the decisions table (written off the request path): 4 fresh
    // ones a row each, and the 2 cache hits as rows with counts (one per cached decision).
    let db = setup.dir.join("data/gate.db");
    let mut logged = 0;
    for _ in 0..100 {
        let conn = rusqlite::Connection::open(&db).unwrap();
        logged = conn
            .query_row(
                "SELECT coalesce(sum(count), 0) FROM decisions WHERE source = 'evaluate'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap();
        if logged == 6 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(logged, 6);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(count("SELECT count(*) FROM decisions WHERE cached = 0"), 4);
    assert_eq!(
        count(
            "SELECT sum(count) FROM decisions WHERE cached = 1 AND until IS NOT NULL \
             AND codes = 'signers-below-threshold'"
        ),
        1
    );

    // Malformed evaluate requests are 400.
    for bad in [r#"{"artifact":"latest"}"#, r#"{"name":"x"}"#, "[]"] {
        let (status, _) = server.post("/api/v1/gate/evaluate", bad.as_bytes(), Some(TOKEN));
        assert_eq!(status, 400, "{bad}");
    }
}

#[test]
fn evaluate_returns_a_vsa_that_custody_verify_accepts_with_the_gate_key() {
    let setup = Setup::new();
    let server = setup.serve(&["--gate-signing-key", &setup.path("gate.key")]);
    server.upload(&setup.sign("app.img", APP.1));
    let digest = digest_of(APP.0);
    // Without a token: neither a verdict nor a VSA (issue #16: evaluate needs a token).
    let (status, anonymous) = server.post(
        "/api/v1/gate/evaluate",
        json!({ "artifact": digest }).to_string().as_bytes(),
        None,
    );
    assert_eq!(status, 401, "{anonymous}");
    assert!(anonymous.get("vsa").is_none(), "{anonymous}");
    let verdict = server.evaluate(&digest);
    assert_eq!(verdict["allowed"], true, "{verdict}");
    let vsa = &verdict["vsa"];
    assert!(vsa["dsseEnvelope"].is_object(), "{verdict}");
    std::fs::write(setup.dir.join("vsa.json"), vsa.to_string()).unwrap();
    let (code, _, err) = run(custody(&setup.dir).args([
        "verify", &digest, "--bundle", "vsa.json", "--key", "gate.pub",
    ]));
    assert_eq!(code, 0, "{err}");
    // Not with the signer's key.
    let (code, _, _) = run(custody(&setup.dir).args([
        "verify",
        &digest,
        "--bundle",
        "vsa.json",
        "--key",
        "signer.pub",
    ]));
    assert_eq!(code, 1);
    // The statement is a SLSA VSA about the digest.
    let payload =
        custody_core::encoding::base64_decode_any(vsa["dsseEnvelope"]["payload"].as_str().unwrap())
            .unwrap();
    let statement: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        statement["predicateType"],
        "https://slsa.dev/verification_summary/v1"
    );
    assert_eq!(statement["predicate"]["verificationResult"], "PASSED");
    assert_eq!(statement["predicate"]["custody_environment"], "production");
    // The cached decision gives the same VSA; the VSA reaches the server's own log.
    assert_eq!(server.evaluate(&digest)["vsa"], *vsa);
    let mut size = 0;
    for _ in 0..100 {
        let (_, note) = server.get("/checkpoint");
        size = String::from_utf8(note)
            .unwrap()
            .lines()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        if size > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(size, 1, "the VSA was not logged");
    // A denial carries no VSA.
    let denied = server.evaluate(&format!("sha256:{}", "cd".repeat(32)));
    assert_eq!(denied["allowed"], false);
    assert!(denied.get("vsa").is_none());
}

#[test]
fn serve_refuses_to_start_with_a_broken_policy_or_tls_files() {
    let setup = Setup::new();
    let bad = setup.dir.join("bad-policy");
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(
        bad.join("gate.rego"),
        "package custody.gate\n\ndeny contains x if {\n",
    )
    .unwrap();
    let base = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &setup.path("data"),
        "--write-token-file",
        &setup.path("token"),
    ];
    let out = run(custody(&setup.dir)
        .args(base)
        .args(["--policy", bad.to_str().unwrap()]));
    common::assert_fails(out.clone(), 2, &["policy does not compile"]);
    assert!(out.1.is_empty(), "nothing listened: {}", out.1);

    let out = run(custody(&setup.dir).args(base).args([
        "--tls-cert",
        &setup.path("missing.crt"),
        "--tls-key",
        &setup.path("server.key"),
    ]));
    common::assert_fails(out, 2, &["TLS certificate", "missing.crt"]);
    let out = run(custody(&setup.dir).args(base).args([
        "--tls-cert",
        &setup.path("server.crt"),
        "--tls-key",
        &setup.path("server.crt"),
    ]));
    common::assert_fails(out, 2, &["TLS key", "server.crt"]);
    let out = run(custody(&setup.dir)
        .args(base)
        .args(["--tls-cert", &setup.path("server.crt")]));
    assert_eq!(out.0, 2, "{}", out.2);
}

#[test]
fn custody_verify_takes_evidence_from_the_server() {
    let setup = Setup::new();
    let server = setup.serve_with(false, &[]);
    let bundle = setup.sign("app.img", APP.1);
    // Only the server has the evidence.
    std::fs::remove_file(setup.dir.join("app.img.sigstore.json")).unwrap();
    let verify = |extra: &[&str]| {
        let mut args = vec![
            "verify",
            "app.img",
            "--policy",
            "policy",
            "--key",
            "signer.pub",
        ];
        args.extend_from_slice(extra);
        run(custody(&setup.dir).args(&args))
    };
    let (code, out, err) = verify(&["--evidence-from", &server.url]);
    assert_eq!(code, 1, "nothing stored yet: {out}{err}");
    server.upload(&bundle);
    let (code, out, err) = verify(&["--evidence-from", &server.url]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("/api/v1/evidence/sha256:"), "{out}");
    // An unreachable server is an operational error.
    let (code, _, err) = verify(&["--evidence-from", "http://127.0.0.1:9"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--evidence-from"), "{err}");
}

/// Issue #16, attack 7: `/api/v1/gate/evaluate` made the server verify bundles and evaluate
/// the policy for anyone who reached the port.
#[test]
fn attack_gate_evaluate_without_token_is_401() {
    let setup = Setup::new();
    let server = setup.serve(&[]);
    server.upload(&setup.sign("app.img", APP.1));
    let body = json!({ "artifact": digest_of(APP.0) }).to_string();
    for token in [None, Some("wrong-token")] {
        let (status, answer) = server.post("/api/v1/gate/evaluate", body.as_bytes(), token);
        assert_eq!(status, 401, "{token:?}: {answer}");
        assert!(
            answer.get("allowed").is_none(),
            "no verdict leaks: {answer}"
        );
        assert!(
            answer["message"].as_str().unwrap().contains("Bearer")
                || answer["message"].as_str().unwrap().contains("token"),
            "{answer}"
        );
    }
    // Unauthenticated garbage is refused before it is parsed.
    let (status, _) = server.post("/api/v1/gate/evaluate", b"[]", None);
    assert_eq!(status, 401);
    // With the write token: the verdict.
    assert_eq!(server.evaluate(&digest_of(APP.0))["allowed"], true);
    // The admission webhook stays open: the Kubernetes API server calls it without a token.
    let answer = server.admit(&fixture("pod"));
    assert!(answer["response"]["allowed"].is_boolean(), "{answer}");
}

/// A policy that loops for minutes on some inputs (4·10^8 iterations), and the built-in
/// checks otherwise.
const SLOW_POLICY: &str = r#"package custody.gate

slow_input if input.artifact.name == "slow"

slow_input if {
	is_string(input.artifact.image)
	contains(input.artifact.image, "acme/slow")
}

deny contains {"code": "never-reached", "msg": "the loop finished"} if {
	slow_input
	found := {true | some i in numbers.range(1, 20000); some j in numbers.range(1, 20000); i == j + 100000}
	count(found) == 0
}

deny contains v if some v in data.custody.lib.violations
"#;

/// Issue #16, attack 7: a slow policy held a worker for as long as it looped. Now the
/// evaluation is stopped at `--policy-timeout` and the artifact denied with `policy-timeout`
/// (evaluate: 200 with the verdict; admission: a denial, not a 500), and the next, normal
/// evaluation answers at once.
#[test]
fn attack_slow_policy_is_cut_at_the_time_limit_on_the_gate_server() {
    let setup = Setup::new();
    std::fs::write(setup.dir.join("policy/gate.rego"), SLOW_POLICY).unwrap();
    let server = setup.serve(&["--policy-timeout", "300ms"]);
    server.upload(&setup.sign("app.img", APP.1));

    // A digest of its own: the decision cache is keyed by digest, not name.
    let slow_digest = format!("sha256:{}", "ee".repeat(32));
    let started = std::time::Instant::now();
    let (status, verdict) = server.post(
        "/api/v1/gate/evaluate",
        json!({ "artifact": slow_digest, "name": "slow" })
            .to_string()
            .as_bytes(),
        Some(TOKEN),
    );
    let took = started.elapsed();
    assert_eq!(status, 200, "{verdict}");
    assert!(took >= std::time::Duration::from_millis(300), "{took:?}");
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    assert_eq!(verdict["allowed"], false, "{verdict}");
    assert_eq!(verdict["denies"][0]["code"], "policy-timeout", "{verdict}");
    let message = verdict["denies"][0]["message"].as_str().unwrap();
    assert!(message.contains("300ms"), "{message}");
    assert!(message.contains("data.custody.gate.deny"), "{message}");
    assert!(
        verdict["denies"][0]["fix"]
            .as_str()
            .unwrap()
            .contains("--policy-timeout"),
        "{verdict}"
    );

    // The worker is free: a normal evaluation answers promptly, and allows.
    let started = std::time::Instant::now();
    let fine = server.evaluate(&digest_of(APP.0));
    assert!(started.elapsed() < std::time::Duration::from_millis(300));
    assert_eq!(fine["allowed"], true, "{fine}");

    // A timeout is not cached: asked again, the policy is evaluated again (and cut again).
    let (_, again) = server.post(
        "/api/v1/gate/evaluate",
        json!({ "artifact": slow_digest, "name": "slow" })
            .to_string()
            .as_bytes(),
        Some(TOKEN),
    );
    assert_eq!(again["cached"], false, "{again}");
    assert_eq!(again["denies"][0]["code"], "policy-timeout", "{again}");

    // Admission: the slow image is denied (fail closed) with the code, within the API
    // server's 5 s timeout; the answer is an AdmissionReview, not a 500.
    let slow_image = format!("ghcr.io/acme/slow@sha256:{}", "cd".repeat(32));
    let review = replace_image(&fixture("pod"), APP.0, &slow_image);
    let started = std::time::Instant::now();
    let answer = server.admit(&review);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    let message = answer["response"]["status"]["message"].as_str().unwrap();
    assert!(message.contains("[policy-timeout]"), "{message}");
    assert!(message.contains("acme/slow"), "{message}");

    // The denials are counted by code.
    let (status, metrics) = server.get("/metrics");
    assert_eq!(status, 200);
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("custody_denials_total{code=\"policy-timeout\"}")),
        "{metrics}"
    );
}

#[test]
fn serve_refuses_a_bad_policy_timeout() {
    let setup = Setup::new();
    for bad in ["0s", "2m", "fast", "61s"] {
        let (code, _, err) = run(custody(&setup.dir).args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            &setup.path("data"),
            "--write-token-file",
            &setup.path("token"),
            "--policy",
            &setup.path("policy"),
            "--policy-timeout",
            bad,
        ]));
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(err.contains("--policy-timeout"), "{bad}: {err}");
    }
}
