//! Witnessing and monitoring as real processes: a witness cosigns the log's checkpoints and the
//! log serves the cosignatures; a monitor catches a fork (a second server with the same key).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod logd;

use std::time::{Duration, Instant};

use custody_core::dsse::{Envelope, EnvelopeSignature};
use custody_core::encoding::base64_encode;
use custody_core::keys::SignedData;
use custody_core::note::{CosignatureVerifier, Note, require_cosignatures};
use custody_core::rekor::RekorBody;
use logd::{Daemon, TOKEN, custody, hashedrekord, p256, path_str, post_entry, scratch};

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_witness_cosigns_and_the_log_serves_the_cosignature() {
    let (tmp, data) = scratch();
    // First start creates the log key; SIGTERM stops it cleanly.
    Daemon::log(&data, &[]).terminate();
    let log_vkey = path_str(&data.join("log.vkey"));
    let wkey = tmp.path().join("witness.skey");
    let (code, wvkey, err) = custody(&[
        "log",
        "witness",
        "generate-key",
        "witness.test",
        "--out",
        &path_str(&wkey),
    ]);
    assert_eq!(code, 0, "{err}");
    let wvkey = wvkey.trim().to_owned();
    let state = tmp.path().join("witness-state.json");
    let witness = Daemon::start(&[
        "log",
        "witness",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--key",
        &path_str(&wkey),
        "--log-key",
        &log_vkey,
        "--state",
        &path_str(&state),
    ]);
    let log = Daemon::log(&data, &["--witness", &format!("{}={wvkey}", witness.url)]);
    for i in 0..3 {
        let (status, text) = post_entry(
            &log.url,
            &hashedrekord(&p256(), format!("a{i}").as_bytes()),
            Some(TOKEN),
        );
        assert_eq!(status, 201, "{text}");
    }
    let key = CosignatureVerifier::from_vkey(&wvkey).unwrap();
    let mut served = String::new();
    wait_for("a cosigned checkpoint of size 3", || {
        served = logd::checkpoint(&log.url);
        let note = Note::parse(&served).unwrap();
        served.lines().nth(1) == Some("3")
            && require_cosignatures(&note, std::slice::from_ref(&key), 1).is_ok()
    });
    // The witness persisted what it cosigned.
    let st: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(st["logs"]["log.test"]["size"], 3);

    // Verification can require k witnesses.
    let cp = tmp.path().join("checkpoint.txt");
    std::fs::write(&cp, &served).unwrap();
    let (code, out, err) = custody(&[
        "log",
        "verify-checkpoint",
        &path_str(&cp),
        "--log-key",
        &log_vkey,
        "--witness",
        &wvkey,
        "--min-witnesses",
        "1",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let other = tmp.path().join("other.skey");
    let (_, other_vkey, _) = custody(&[
        "log",
        "witness",
        "generate-key",
        "other.test",
        "--out",
        &path_str(&other),
    ]);
    let (code, _, err) = custody(&[
        "log",
        "verify-checkpoint",
        &path_str(&cp),
        "--log-key",
        &log_vkey,
        "--witness",
        other_vkey.trim(),
        "--min-witnesses",
        "1",
    ]);
    assert_eq!(code, 1, "{err}");
    let (code, out, err) = custody(&[
        "log",
        "verify",
        &log.url,
        "--log-key",
        &log_vkey,
        "--witness",
        &wvkey,
        "--min-witnesses",
        "1",
    ]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn the_witness_refuses_an_inconsistent_checkpoint() {
    let (tmp, data) = scratch();
    let a = Daemon::log(&data, &[]);
    // A second log with the same key and another history: a fork of the first.
    let fork_data = tmp.path().join("fork");
    std::fs::create_dir_all(&fork_data).unwrap();
    for f in ["log.skey", "log.json", "log.vkey"] {
        std::fs::copy(data.join(f), fork_data.join(f)).unwrap();
    }
    let b = Daemon::log(&fork_data, &[]);
    post_entry(&a.url, &hashedrekord(&p256(), b"real"), Some(TOKEN));
    post_entry(&b.url, &hashedrekord(&p256(), b"forged"), Some(TOKEN));

    let wkey = tmp.path().join("w.skey");
    let (_, wvkey, _) = custody(&[
        "log",
        "witness",
        "generate-key",
        "w.test",
        "--out",
        &path_str(&wkey),
    ]);
    let state = tmp.path().join("w.json");
    let witness = Daemon::start(&[
        "log",
        "witness",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--key",
        &path_str(&wkey),
        "--log-key",
        &path_str(&data.join("log.vkey")),
        "--state",
        &path_str(&state),
    ]);
    let add = |checkpoint: &str, old: u64| {
        let mut r = logd::agent()
            .post(format!("{}/add-checkpoint", witness.url))
            .send(format!("old {old}\n\n{checkpoint}"))
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    };
    let real = logd::checkpoint(&a.url);
    let (status, line) = add(&real, 0);
    assert_eq!(status, 200, "{line}");
    assert!(line.starts_with("— w.test "), "{line}");
    let key = CosignatureVerifier::from_vkey(wvkey.trim()).unwrap();
    let cosigned = Note::parse(&format!("{real}{line}")).unwrap();
    assert!(key.verify(&cosigned).unwrap().is_some());
    // Same size, other root: 422; stale old size: 409 with the latest size.
    assert_eq!(add(&logd::checkpoint(&b.url), 1).0, 422);
    let (status, body) = add(&real, 0);
    assert_eq!((status, body.as_str()), (409, "1\n"));
    // Not signed by the log: 403; garbage: 400.
    let tampered = real.replacen("\n1\n", "\n2\n", 1);
    assert_eq!(add(&tampered, 1).0, 403);
    assert_eq!(add("nonsense", 1).0, 400);
}

#[test]
fn a_monitor_detects_a_fork_and_watched_keys() {
    let (tmp, data) = scratch();
    let a = Daemon::log(&data, &[]);
    let fork_data = tmp.path().join("fork");
    std::fs::create_dir_all(&fork_data).unwrap();
    for f in ["log.skey", "log.json", "log.vkey"] {
        std::fs::copy(data.join(f), fork_data.join(f)).unwrap();
    }
    let b = Daemon::log(&fork_data, &[]);
    let signer = p256();
    for i in 0..3 {
        post_entry(
            &a.url,
            &hashedrekord(&signer, format!("x{i}").as_bytes()),
            Some(TOKEN),
        );
    }
    // A DSSE entry on the fork, so it has the same size and another root.
    let mut env = Envelope::new("application/vnd.in-toto+json", b"{}".to_vec());
    let sig = signer.sign(SignedData::Message(&env.pae())).unwrap();
    env.signatures.push(EnvelopeSignature {
        keyid: String::new(),
        sig,
    });
    let dsse = serde_json::json!({ "dsseRequestV002": {
        "envelope": serde_json::from_str::<serde_json::Value>(&env.to_json()).unwrap(),
        "verifiers": [{ "publicKey": { "rawBytes": base64_encode(signer.public_key().spki_der()) },
                        "keyDetails": "PKIX_ECDSA_P256_SHA_256" }] } });
    for i in 0..3 {
        let body = if i == 0 {
            dsse.to_string()
        } else {
            hashedrekord(&signer, format!("y{i}").as_bytes())
        };
        let (status, text) = post_entry(&b.url, &body, Some(TOKEN));
        assert_eq!(status, 201, "{text}");
        if i == 0 {
            let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
            let body = custody_core::encoding::base64_decode_any(
                answer["canonicalizedBody"].as_str().unwrap(),
            )
            .unwrap();
            assert!(matches!(
                RekorBody::parse(&body).unwrap(),
                RekorBody::DsseV002(_)
            ));
        }
    }
    let vkey = path_str(&data.join("log.vkey"));
    let state = path_str(&tmp.path().join("monitor.json"));
    let (code, out, err) = custody(&[
        "log",
        "monitor",
        &a.url,
        "--log-key",
        &vkey,
        "--state",
        &state,
        "--once",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = custody(&[
        "log",
        "monitor",
        &b.url,
        "--log-key",
        &vkey,
        "--state",
        &state,
        "--once",
    ]);
    assert_eq!(code, 1, "{err}");
    let alert: serde_json::Value = serde_json::from_str(err.lines().next().unwrap()).unwrap();
    assert_eq!(alert["alert"], "fork", "{err}");
    // The state still holds the first log's tree: the good log stays consistent.
    let (code, _, err) = custody(&[
        "log",
        "monitor",
        &a.url,
        "--log-key",
        &vkey,
        "--state",
        &state,
        "--once",
    ]);
    assert_eq!(code, 0, "{err}");

    // Watched keys: every entry by the key alerts, unless the key is allowed.
    let pem = tmp.path().join("signer.pub");
    std::fs::write(&pem, signer.public_key().to_pem()).unwrap();
    let (code, _, err) = custody(&[
        "log",
        "monitor",
        &a.url,
        "--log-key",
        &vkey,
        "--watch-key",
        &path_str(&pem),
        "--once",
    ]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        err.lines()
            .filter(|l| l.contains("\"watched-key\""))
            .count(),
        3,
        "{err}"
    );
    let (code, _, err) = custody(&[
        "log",
        "monitor",
        &a.url,
        "--log-key",
        &vkey,
        "--watch-key",
        &path_str(&pem),
        "--allow-key",
        &path_str(&pem),
        "--once",
    ]);
    assert_eq!(code, 0, "{err}");
    // A log signed by another key is not trusted at all.
    let (code, _, err) = custody(&[
        "log",
        "verify",
        &a.url,
        "--log-key",
        "other+01234567+AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ]);
    assert_ne!(code, 0, "{err}");
}
