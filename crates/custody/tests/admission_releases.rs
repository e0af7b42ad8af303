//! Admission follows releases (issue #17 part 5), with real processes: a `custody serve` with
//! a release config mapping `shop-staging` → staging and `shop-prod` → prod, and the policy
//! gate answering Kubernetes AdmissionReviews. In a mapped namespace an image is admitted only
//! as the environment's current release or the one before it (admit_previous = 1), not
//! quarantined, with its approvals; an unmapped namespace decides on policy alone, as before.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod release_world;

use std::time::{Duration, Instant};

use custody_core::digest::Sha256Digest;
use release_world::{
    Options, PROD_NAMESPACE, STAGING_NAMESPACE, Story, build_and_push, http, pg, release,
    setup_with,
};
use serde_json::{Value, json};

/// A Pod review for `digest` in `namespace`.
fn review(namespace: &str, digest: &Sha256Digest) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("uid-{namespace}-{}", &digest.hex()[..8]),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE",
            "namespace": namespace,
            "object": {
                "metadata": {"name": "web", "namespace": namespace},
                "spec": {"containers": [{"name": "app", "image": format!("registry.example/app@{digest}")}]}
            }
        }
    })
}

/// The admission answer at `url`: allowed, and the denial message (empty when allowed).
fn admit_at(url: &str, namespace: &str, digest: &Sha256Digest) -> (bool, String) {
    let body = review(namespace, digest).to_string();
    let (status, answer) = http(url, "POST", "/api/v1/admission", "", Some(body.as_bytes()));
    assert_eq!(status, 200, "{answer}");
    let response = &answer["response"];
    let message = response["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (response["allowed"].as_bool().unwrap(), message)
}

fn admit(s: &Story, namespace: &str, digest: &Sha256Digest) -> (bool, String) {
    admit_at(s.url(), namespace, digest)
}

/// The deny codes a message names (`[code]`), sorted.
fn codes(message: &str) -> Vec<String> {
    let mut codes: Vec<String> = message
        .split('[')
        .skip(1)
        .filter_map(|p| p.split_once(']').map(|(c, _)| c.to_owned()))
        .filter(|c| {
            c.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch == '-' || ch == '.')
        })
        .collect();
    codes.sort();
    codes.dedup();
    codes
}

/// The digest of `env`'s current release, from its history.
fn current(s: &Story, env: &str) -> String {
    let history = s.history(env);
    let releases = history
        .as_array()
        .unwrap_or_else(|| history["releases"].as_array().unwrap());
    releases.last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[track_caller]
fn allowed(s: &Story, namespace: &str, digest: &Sha256Digest) {
    let (ok, message) = admit(s, namespace, digest);
    assert!(ok, "{digest} in {namespace} should be admitted: {message}");
}

#[track_caller]
fn denied(s: &Story, namespace: &str, digest: &Sha256Digest, expected: &[&str]) -> String {
    let (ok, message) = admit(s, namespace, digest);
    assert!(!ok, "{digest} in {namespace} should be denied");
    assert_eq!(codes(&message), expected, "{message}");
    assert!(!message.contains('\n'), "{message}");
    message
}

#[test]
fn admission_in_a_mapped_namespace_follows_the_environment_s_releases() {
    let s = setup_with(&Options {
        admission: true,
        ..Options::default()
    });
    // Before prod has a release, admission there is what it was: policy alone. r0 is built,
    // signed and promoted to staging, but never approved nor promoted to prod.
    let r0 = build_and_push(&s, 0, "ci", "ci");
    for env in ["dev", "staging"] {
        s.json("rm", &["promote", &r0.to_string(), "--to", env]);
    }
    allowed(&s, PROD_NAMESPACE, &r0);
    allowed(&s, STAGING_NAMESPACE, &r0);
    let r1 = release(&s, 1, "ci");
    let r2 = release(&s, 2, "ci");
    let r3 = release(&s, 3, "ci");
    assert_eq!(current(&s, "prod"), r3.to_string());

    // Current and previous are admitted; two releases back is not, with its fix.
    allowed(&s, PROD_NAMESPACE, &r3);
    allowed(&s, PROD_NAMESPACE, &r2);
    let message = denied(&s, PROD_NAMESPACE, &r1, &["release-not-current"]);
    assert!(
        message.contains("release #1, 2 releases behind the current release #3")
            && message.contains(&format!(
                "fix: promote it with `custody promote {r1} --to prod`, or deploy the current release {r3}"
            )),
        "{message}"
    );

    // Now that prod has releases, the unapproved r0 is denied there, on both counts.
    let message = denied(
        &s,
        PROD_NAMESPACE,
        &r0,
        &["release-not-current", "release-unapproved"],
    );
    assert!(
        message.contains(
            "has 0 of 2 approvals environment prod requires from group release-approvers"
        ),
        "{message}"
    );
    // In staging, r3 is current and r0 four releases behind.
    allowed(&s, STAGING_NAMESPACE, &r3);
    denied(&s, STAGING_NAMESPACE, &r0, &["release-not-current"]);
    // An unmapped namespace decides on policy alone: every image with its evidence passes.
    for d in [&r0, &r1] {
        allowed(&s, "default", d);
    }

    // A revocation quarantines r3 and rolls prod back to r2: r3 is denied at once, as
    // quarantined (and revoked), while r2, the current release again, is admitted.
    let sec_key = s.d().join("keys/sec.key");
    let revoked = s.json(
        "sec",
        &[
            "revoke",
            &format!("digest:{r3}"),
            "--reason",
            "bad build",
            "--key",
            sec_key.to_str().unwrap(),
        ],
    );
    assert_eq!(revoked["reconcile"]["quarantined"], json!([r3.to_string()]));
    let message = denied(
        &s,
        PROD_NAMESPACE,
        &r3,
        &["artifact-revoked", "release-quarantined"],
    );
    assert!(
        message.contains("is quarantined in environment prod by revocation #")
            && message.contains("fix: roll back to a release that verifies"),
        "{message}"
    );
    allowed(&s, PROD_NAMESPACE, &r2);
    assert_eq!(current(&s, "prod"), r2.to_string(), "rolled back");
}

/// `env`'s releases as the server at `url` tells them: (seq, digest), oldest first.
fn releases_at(url: &str, env: &str) -> Vec<(u64, String)> {
    let (status, v) = http(
        url,
        "GET",
        &format!("/api/v1/environments/{env}/releases"),
        "aud",
        None,
    );
    assert_eq!(status, 200, "{v}");
    v["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["seq"].as_u64().unwrap(),
                r["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Two replicas on one real PostgreSQL (log, release store and evidence store all on it):
/// evidence pushed to A is admitted on B; a revocation on A reaches B's admission within 1 s;
/// a promotion on A while B is killed is neither lost nor duplicated; restarts keep all.
#[test]
fn replicas_on_one_postgres_admit_alike_and_learn_revocations_within_a_second() {
    let server = pg::PgServer::start();
    let url = server.create_database("admission_releases");
    let mut s = setup_with(&Options {
        database: Some(url),
        admission: true,
        port: release_world::free_port(),
        ..Options::default()
    });
    let mut b = s.replica("server-b");

    // Evidence pushed to A only; B decides on it (unmapped namespace: policy alone).
    let r1 = release(&s, 1, "ci");
    let (ok, message) = admit_at(&b.url, "default", &r1);
    assert!(ok, "B sees the evidence pushed to A: {message}");
    let r2 = release(&s, 2, "ci");
    for d in [&r1, &r2] {
        let (ok, message) = admit_at(&b.url, PROD_NAMESPACE, d);
        assert!(ok, "{d} on B: {message}");
    }
    // B's decision about r2 is cached now (warm); a revocation on A must still reach it.
    let (ok, _) = admit_at(&b.url, PROD_NAMESPACE, &r2);
    assert!(ok);
    let sec_key = s.d().join("keys/sec.key");
    s.json(
        "sec",
        &[
            "revoke",
            &format!("digest:{r2}"),
            "--reason",
            "bad build",
            "--key",
            sec_key.to_str().unwrap(),
        ],
    );
    let revoked_at = Instant::now();
    let message = loop {
        let (ok, message) = admit_at(&b.url, PROD_NAMESPACE, &r2);
        if !ok {
            break message;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "B still admits {r2} {:?} after its revocation on A",
            revoked_at.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = revoked_at.elapsed();
    eprintln!("revocation on A reached admission on B in {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert!(
        codes(&message).contains(&"release-quarantined".to_owned()),
        "{message}"
    );

    // B is killed (SIGKILL); a promotion to prod goes to A meanwhile.
    let _ = b.child.kill();
    let _ = b.child.wait();
    let before = releases_at(s.url(), "prod");
    let r3 = release(&s, 3, "ci");
    let after = releases_at(s.url(), "prod");
    // r1, r2, the rollback to r1 after r2's revocation, then r3.
    assert_eq!(
        before,
        [
            (1, r1.to_string()),
            (2, r2.to_string()),
            (3, r1.to_string())
        ]
    );
    let next = before.last().unwrap().0 + 1;
    assert_eq!(after.len(), before.len() + 1, "{after:?}");
    assert_eq!(after.last().unwrap(), &(next, r3.to_string()));
    // B comes back on its data directory: the same history, the promotion exactly once.
    b = s.replica("server-b");
    assert_eq!(releases_at(&b.url, "prod"), after);
    let (ok, message) = admit_at(&b.url, PROD_NAMESPACE, &r3);
    assert!(ok, "the new release on restarted B: {message}");
    let (ok, message) = admit_at(&b.url, PROD_NAMESPACE, &r2);
    assert!(!ok, "{message}");

    // A restarts too: everything is still there.
    s.restart_server();
    assert_eq!(releases_at(s.url(), "prod"), after);
    for url in [s.url().to_owned(), b.url.clone()] {
        assert!(admit_at(&url, PROD_NAMESPACE, &r3).0);
        // r1 came back by the automatic rollback (seq 3), so it is the previous release.
        let (ok, message) = admit_at(&url, PROD_NAMESPACE, &r1);
        assert!(ok, "the release before the current one: {message}");
        let (ok, message) = admit_at(&url, PROD_NAMESPACE, &r2);
        assert!(!ok);
        assert!(
            codes(&message).contains(&"release-quarantined".to_owned()),
            "{message}"
        );
    }
}
