//! The release service's rules, without HTTP, on both stores: the same story runs on the
//! embedded SQLite store and on a real PostgreSQL server started by the test. It covers every
//! rule the process tests (crates/custody/tests/release*.rs, deploy*.rs) check through HTTP:
//! roles, approvals and separation of duties, the promotion chain, an older digest only by
//! rollback, request-id binding, the seq compare-and-swap between replicas, revocation →
//! quarantine → automatic rollback → incident, deployment reports against the record,
//! deployer environments, quarantined bytes only to auditors, current-release statements,
//! key rotation with retirement at its instant, and the release state admission follows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../custody-log/tests/common/pg.rs"]
mod pg;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;
use common::service::{World, key_id};
use custody_core::digest::Sha256Digest;
use custody_release::model::{Deployment, ReleaseKind, Role};
use custody_release::service::{
    PromoteRequest, PushRequest, ReleaseError, ReleaseService, RollbackRequest,
};
use custody_release::store::{ReleaseDb, StoreError};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn promote(digest: &Sha256Digest, to: &str, request_id: Option<&str>) -> PromoteRequest {
    PromoteRequest {
        digest: digest.to_string(),
        to: to.into(),
        request_id: request_id.map(str::to_owned),
    }
}

fn report(env: &str, seq: u64, digest: &str, status: &str) -> Deployment {
    Deployment {
        environment: env.into(),
        seq,
        digest: digest.into(),
        agent: "agent-1".into(),
        status: status.into(),
        detail: None,
        at: Utc::now(),
    }
}

#[track_caller]
fn message(e: &ReleaseError, needle: &str) {
    let m = e.to_string();
    assert!(m.contains(needle), "{needle:?} not in {m:?} ({e:?})");
    assert!(!m.contains('\n'), "{m:?}");
}

/// Pushes artifact `n` as ci and stores its provenance signed by `builder`.
async fn artifact(w: &World, n: u32, builder: &str) -> Sha256Digest {
    let bytes = format!("release {n}\n").into_bytes();
    let digest = Sha256Digest::of(&bytes);
    let pushed = w
        .service
        .push(
            &w.caller(builder),
            PushRequest {
                digest: digest.to_string(),
                name: Some("app.bin".into()),
            },
            bytes,
        )
        .await
        .unwrap();
    assert!(pushed.created);
    assert_eq!(pushed.value.digest, digest.to_string());
    w.provenance(builder, &digest);
    digest
}

/// Promotes through dev and staging, approves twice and promotes to prod.
async fn release(w: &World, n: u32, builder: &str) -> Sha256Digest {
    let d = artifact(w, n, builder).await;
    let rm = w.caller("rm");
    for env in ["dev", "staging"] {
        let r = w
            .service
            .promote(&rm, promote(&d, env, None))
            .await
            .unwrap();
        assert!(r.created);
    }
    for who in ["alice", "carol"] {
        w.service
            .approve(&w.caller(who), &w.approval(who, &d, "prod"))
            .await
            .unwrap();
    }
    let r = w
        .service
        .promote(&rm, promote(&d, "prod", None))
        .await
        .unwrap();
    assert_eq!(r.value.kind, ReleaseKind::Promotion);
    d
}

async fn story(w: World) {
    let s = &w.service;
    let rm = w.caller("rm");

    // ----- push: builders only, the claimed digest must match, stored once.
    let err = s
        .push(
            &rm,
            PushRequest {
                digest: Sha256Digest::of(b"x").to_string(),
                name: None,
            },
            b"x".to_vec(),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ReleaseError::Forbidden {
            missing_role: Some(Role::Builder),
            ..
        }
    ));
    message(&err, "builder role");
    let err = s
        .push(
            &w.caller("ci"),
            PushRequest {
                digest: Sha256Digest::of(b"y").to_string(),
                name: None,
            },
            b"x".to_vec(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ReleaseError::BadRequest(_)), "{err:?}");
    let err = s
        .push(
            &w.caller("ci"),
            PushRequest {
                digest: "sha256:nothex".into(),
                name: None,
            },
            b"x".to_vec(),
        )
        .await
        .unwrap_err();
    message(&err, "is not a digest");
    let r1 = artifact(&w, 1, "ci").await;
    let again = s
        .push(
            &w.caller("ci"),
            PushRequest {
                digest: r1.to_string(),
                name: None,
            },
            b"release 1\n".to_vec(),
        )
        .await
        .unwrap();
    assert!(!again.created, "a second push is answered from the record");
    assert_eq!(
        s.artifact_bytes(&r1.to_string()).await.unwrap(),
        b"release 1\n"
    );

    // ----- the promotion chain and roles.
    let err = s
        .promote(&rm, promote(&r1, "staging", None))
        .await
        .unwrap_err();
    assert!(matches!(err, ReleaseError::Conflict(_)), "{err:?}");
    message(&err, "has not passed dev");
    let err = s
        .promote(&w.caller("alice"), promote(&r1, "dev", None))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ReleaseError::Forbidden {
            missing_role: Some(Role::ReleaseManager),
            ..
        }
    ));
    let err = s.promote(&rm, promote(&r1, "qa", None)).await.unwrap_err();
    assert!(matches!(err, ReleaseError::NotFound(_)));
    message(&err, "unknown environment \"qa\"");
    let unknown = Sha256Digest::of(b"never pushed");
    let err = s
        .promote(&rm, promote(&unknown, "dev", None))
        .await
        .unwrap_err();
    assert!(matches!(err, ReleaseError::NotFound(_)));
    message(&err, "custody push it first");
    let dev1 = s.promote(&rm, promote(&r1, "dev", None)).await.unwrap();
    assert!(dev1.created);
    assert_eq!(dev1.value.seq, 1);
    // Already current: the same answer, nothing new.
    let same = s.promote(&rm, promote(&r1, "dev", None)).await.unwrap();
    assert!(!same.created);
    assert_eq!(same.value, dev1.value);

    // ----- request ids: a retry is the first answer; other content under the id is refused.
    let st = s
        .promote(&rm, promote(&r1, "staging", Some("req-1")))
        .await
        .unwrap();
    assert!(st.created);
    let retry = s
        .promote(&rm, promote(&r1, "staging", Some("req-1")))
        .await
        .unwrap();
    assert!(!retry.created);
    assert_eq!(retry.value, st.value);
    let err = s
        .promote(&rm, promote(&r1, "prod", Some("req-1")))
        .await
        .unwrap_err();
    assert!(matches!(err, ReleaseError::Conflict(_)));
    message(&err, "request id \"req-1\" was already used");

    // ----- approvals: verified, for a stored artifact and a configured environment, sent by
    // the signer, a member of the group, not the builder.
    let err = s
        .approve(&w.caller("ci"), &w.approval("ci", &r1, "prod"))
        .await
        .unwrap_err();
    message(&err, "separation of duties");
    let err = s
        .approve(&w.caller("carol"), &w.approval("alice", &r1, "prod"))
        .await
        .unwrap_err();
    assert!(matches!(err, ReleaseError::Forbidden { .. }));
    message(&err, "approvers send their own approvals");
    let err = s
        .approve(&w.caller("dave"), &w.approval("dave", &r1, "prod"))
        .await
        .unwrap_err();
    message(&err, "is not in group \"release-approvers\"");
    let err = s
        .approve(&w.caller("alice"), &w.approval("alice", &unknown, "prod"))
        .await
        .unwrap_err();
    assert!(matches!(err, ReleaseError::NotFound(_)));
    message(&err, "unknown artifact");
    let err = s
        .approve(&w.caller("alice"), &w.approval("alice", &r1, "qa"))
        .await
        .unwrap_err();
    message(&err, "unknown environment \"qa\"");
    let err = s
        .approve(&w.caller("rm"), &w.approval("rm", &r1, "prod"))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ReleaseError::Forbidden {
            missing_role: Some(Role::Approver),
            ..
        }
    ));
    let err = s
        .approve(&w.caller("alice"), b"{not a bundle")
        .await
        .unwrap_err();
    assert!(matches!(err, ReleaseError::BadRequest(_)));
    let before = w.invalidations.load(Ordering::SeqCst);
    let a = s
        .approve(&w.caller("alice"), &w.approval("alice", &r1, "prod"))
        .await
        .unwrap();
    assert_eq!(a.approver, "alice");
    assert!(!a.duplicate);
    assert!(a.log_index.is_some(), "the approval is logged");
    assert!(
        w.invalidations.load(Ordering::SeqCst) > before,
        "cached decisions dropped"
    );
    // One approval of two: denied by policy, with the verdict.
    let err = s
        .promote(&rm, promote(&r1, "prod", None))
        .await
        .unwrap_err();
    let ReleaseError::Denied { verdict, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(
        verdict.denies.iter().any(|d| d.code == "approvals-missing"),
        "{verdict:?}"
    );
    message(&err, "denied by policy");
    s.approve(&w.caller("carol"), &w.approval("carol", &r1, "prod"))
        .await
        .unwrap();
    let prod1 = s.promote(&rm, promote(&r1, "prod", None)).await.unwrap();
    assert!(prod1.created);
    assert_eq!(prod1.value.from_environment.as_deref(), Some("staging"));
    assert!(
        prod1.value.vsa.is_some(),
        "a VSA is signed with the release"
    );

    // ----- an older digest goes back only by an explicit rollback.
    let r2 = release(&w, 2, "ci").await;
    let err = s
        .promote(&rm, promote(&r1, "prod", None))
        .await
        .unwrap_err();
    assert!(matches!(err, ReleaseError::Conflict(_)));
    message(&err, "custody rollback prod --to");
    let err = s
        .rollback(
            &w.caller("alice"),
            RollbackRequest {
                environment: "prod".into(),
                digest: None,
                reason: "x".into(),
                request_id: None,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ReleaseError::Forbidden { .. }));
    let back = s
        .rollback(
            &rm,
            RollbackRequest {
                environment: "prod".into(),
                digest: Some(r1.to_string()),
                reason: "bad release".into(),
                request_id: Some("rb-1".into()),
            },
        )
        .await
        .unwrap();
    assert!(back.created);
    assert_eq!(back.value.kind, ReleaseKind::Rollback);
    assert_eq!(back.value.digest, r1.to_string());
    assert_eq!(back.value.seq, 3);
    let err = s
        .rollback(
            &rm,
            RollbackRequest {
                environment: "qa".into(),
                digest: None,
                reason: "x".into(),
                request_id: None,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ReleaseError::NotFound(_)));
    // Forward again to release 2 (after the rollback it is the newer release).
    let err = s
        .promote(&rm, promote(&r2, "prod", None))
        .await
        .unwrap_err();
    message(&err, "older release of prod");
    let r3 = release(&w, 3, "ci2").await;
    let prod = s.environment_current("prod").await.unwrap();
    assert_eq!(prod.current.unwrap().digest, r3.to_string());

    // ----- deployment reports: deployers for their environments, releases on record.
    let err = s
        .deployed(&rm, report("dev", 1, &r1.to_string(), "active"))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ReleaseError::Forbidden {
            missing_role: Some(Role::Deployer),
            ..
        }
    ));
    let agent = w.caller("agent-dev");
    let err = s
        .deployed(&agent, report("prod", 1, &r1.to_string(), "active"))
        .await
        .unwrap_err();
    message(&err, "may report deployments only for dev");
    let err = s
        .deployed(&agent, report("dev", 1, &r2.to_string(), "active"))
        .await
        .unwrap_err();
    assert!(matches!(err, ReleaseError::Conflict(_)));
    message(&err, "deployment report refused");
    let err = s
        .deployed(&agent, report("dev", 1, &r1.to_string(), "running"))
        .await
        .unwrap_err();
    assert!(matches!(err, ReleaseError::BadRequest(_)));
    let dev = s.environment_history("dev").await.unwrap();
    let dev_r3 = dev.releases.last().unwrap().clone();
    assert_eq!(dev_r3.digest, r3.to_string());
    assert!(
        s.deployed(&agent, report("dev", dev_r3.seq, &dev_r3.digest, "active"))
            .await
            .unwrap()
            .recorded
    );
    let sec = w.caller("sec");
    assert!(
        s.deployed(&sec, report("prod", 1, &r1.to_string(), "failed"))
            .await
            .unwrap()
            .recorded,
        "an admin may report for any environment"
    );

    // ----- current-release statements.
    let statement = s.current_release_statement("prod").await.unwrap();
    assert_eq!(statement.digest, r3.to_string());
    assert_eq!(statement.environment, "prod");
    assert!(statement.envelope["signatures"].is_array());

    // ----- revocation: admins only, signed by an admin's key; quarantine, rollback,
    // incident; idempotent.
    let ci2 = key_id(&w.keys["ci2"]);
    let target = format!("key:{ci2}");
    let err = s
        .revoke(&rm, &w.revocation("rm", &target))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ReleaseError::Forbidden {
            missing_role: Some(Role::Admin),
            ..
        }
    ));
    let err = s
        .revoke(&sec, &w.revocation("alice", &target))
        .await
        .unwrap_err();
    message(&err, "not by an admin's key");
    let revoked = s.revoke(&sec, &w.revocation("sec", &target)).await.unwrap();
    assert!(!revoked.duplicate);
    assert_eq!(revoked.reconcile.quarantined, vec![r3.to_string()]);
    assert_eq!(revoked.reconcile.rolled_back.len(), 3, "{revoked:?}");
    for rb in &revoked.reconcile.rolled_back {
        assert_eq!(rb.from, r3.to_string());
    }
    let prod = s
        .environment_current("prod")
        .await
        .unwrap()
        .current
        .unwrap();
    assert_eq!(prod.kind, ReleaseKind::Rollback);
    assert_eq!(
        prod.digest,
        r1.to_string(),
        "prod goes back to its latest good release"
    );
    assert!(prod.reason.as_deref().unwrap().starts_with("incident #"));
    let dev_now = s.environment_current("dev").await.unwrap().current.unwrap();
    assert_eq!(dev_now.digest, r2.to_string());
    let again = s.revoke(&sec, &w.revocation("sec", &target)).await.unwrap();
    assert!(again.duplicate);
    assert!(
        again.reconcile.rolled_back.is_empty(),
        "reconcile is idempotent"
    );
    assert!(
        w.observer
            .alerts
            .lock()
            .unwrap()
            .iter()
            .any(|a| a["event"] == "incident" && a["alert"] == true)
    );

    // The quarantined release cannot come back, be pushed again, or be served but to auditors.
    let err = s.promote(&rm, promote(&r3, "dev", None)).await.unwrap_err();
    assert!(matches!(err, ReleaseError::Forbidden { .. }));
    message(&err, "quarantined");
    let err = s
        .push(
            &w.caller("ci2"),
            PushRequest {
                digest: r3.to_string(),
                name: None,
            },
            b"release 3\n".to_vec(),
        )
        .await
        .unwrap_err();
    message(&err, "quarantined");
    let err = s
        .artifact_bytes_for(&rm, &r3.to_string())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ReleaseError::Forbidden {
            missing_role: Some(Role::Auditor),
            ..
        }
    ));
    message(&err, "only to auditors");
    assert_eq!(
        s.artifact_bytes_for(&w.caller("aud"), &r3.to_string())
            .await
            .unwrap(),
        b"release 3\n"
    );
    // A quarantined digest reported active is refused and alerted.
    let err = s
        .deployed(&agent, report("dev", dev_r3.seq, &dev_r3.digest, "active"))
        .await
        .unwrap_err();
    message(&err, "is quarantined");

    // The incident: open until the agent reports the rollbacks (dev and staging have no
    // target: recovered when recorded; prod's agent reports).
    let incidents = s.incidents(&w.caller("aud")).await.unwrap();
    let incident = &incidents.incidents[0];
    assert_eq!(incident.status, "open");
    assert_eq!(incident.affected_digests, vec![r3.to_string()]);
    let err = s.incidents(&rm).await.unwrap_err();
    assert!(matches!(
        err,
        ReleaseError::Forbidden {
            missing_role: Some(Role::Auditor),
            ..
        }
    ));
    // prod's rollback, reported by an admin standing in for prod's agent.
    s.deployed(&sec, report("prod", prod.seq, &prod.digest, "active"))
        .await
        .unwrap();
    let incidents = s.incidents(&w.caller("aud")).await.unwrap();
    assert_eq!(incidents.incidents[0].status, "recovered");
    assert!(incidents.incidents[0].recovered_at.is_some());

    // ----- queries for auditors.
    let history = s.history(&w.caller("aud"), &r3.to_string()).await.unwrap();
    assert_eq!(history.quarantine.as_ref().unwrap().digest, r3.to_string());
    assert!(
        history
            .evidence
            .iter()
            .any(|e| e.verified && !e.revoked_by.is_empty())
    );
    assert!(s.history(&rm, &r3.to_string()).await.is_err());
    let err = s
        .history(&w.caller("aud"), &unknown.to_string())
        .await
        .unwrap_err();
    assert!(matches!(err, ReleaseError::NotFound(_)));
    let events = s
        .events(&w.caller("aud"), Some(r1.to_string()))
        .await
        .unwrap();
    assert!(events.events.iter().any(|e| e.action == "push"));
    let envs = s.environments().await.unwrap();
    assert_eq!(envs.environments.len(), 3);
    let figures = s.snapshot().await.unwrap();
    assert_eq!(figures.quarantined, 1);
    assert_eq!(figures.incidents_open, 0);

    // ----- a current release that is revoked and cannot be rolled back: no statement.
    let revoked = s
        .revoke(&sec, &w.revocation("sec", &format!("digest:{r1}")))
        .await
        .unwrap();
    assert_eq!(revoked.reconcile.rolled_back[0].to, r2.to_string());
    let revoked = s
        .revoke(&sec, &w.revocation("sec", &format!("digest:{r2}")))
        .await
        .unwrap();
    assert!(
        revoked.reconcile.rolled_back.is_empty(),
        "nothing good is left"
    );
    assert!(
        w.observer
            .alerts
            .lock()
            .unwrap()
            .iter()
            .any(|a| a["event"] == "unrecoverable")
    );
    let err = s.current_release_statement("prod").await.unwrap_err();
    assert!(matches!(err, ReleaseError::Conflict(_)), "{err:?}");
    message(&err, "no current-release statement for prod");

    // ----- the log down: nothing recorded, a clear 503-class error.
    *w.log.down.lock().unwrap() = Some("shutting down".into());
    let r4 = Sha256Digest::of(b"release 4\n");
    let err = s
        .push(
            &w.caller("ci"),
            PushRequest {
                digest: r4.to_string(),
                name: None,
            },
            b"release 4\n".to_vec(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ReleaseError::Log(_)), "{err:?}");
    message(&err, "the log did not accept the entry");
    *w.log.down.lock().unwrap() = None;
}

/// Key rotation: admins only, signed by the old key, the new key trusted; the retirement
/// takes effect at its instant.
async fn rotation(w: World) {
    let s = &w.service;
    let sec = w.caller("sec");
    let soon = Utc::now() + chrono::Duration::milliseconds(1500);
    let err = s
        .rotate(&w.caller("ci"), &w.rotation(&w.keys["ci"], soon))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ReleaseError::Forbidden {
            missing_role: Some(Role::Admin),
            ..
        }
    ));
    let err = s
        .rotate(&sec, &w.rotation(&w.keys["sec"], soon))
        .await
        .unwrap_err();
    message(&err, "must be signed by the old key");
    assert_eq!(s.next_retirement_at(), None);
    let accepted = s
        .rotate(&sec, &w.rotation(&w.keys["ci"], soon))
        .await
        .unwrap();
    assert_eq!(accepted.rotation.old_key_id, key_id(&w.keys["ci"]));
    assert!(accepted.retired.is_empty(), "not retired before its time");
    let next = s.next_retirement_at().unwrap();
    assert!(
        (next - soon).num_milliseconds().abs() < 1000,
        "{next} vs {soon}"
    );
    assert!(s.revocations().retired().is_empty());
    // The waiter wakes at the instant (not on a polling tick).
    tokio::time::timeout(Duration::from_secs(5), s.wait_for_retirement())
        .await
        .expect("woken at the retirement instant");
    assert!(Utc::now() >= soon - chrono::Duration::milliseconds(1100));
    assert!(s.retirement_due());
    let retired = s.refresh_retirements().await.unwrap();
    assert_eq!(retired.len(), 1);
    assert_eq!(retired[0].key_id, key_id(&w.keys["ci"]));
    assert_eq!(s.revocations().retired().len(), 1);
    assert_eq!(s.next_retirement_at(), None);
    assert!(!s.retirement_due());
}

/// Two services on one store (two replicas): concurrent promotions of different digests take
/// distinct, gapless seqs; a loser is told to retry, and nothing is duplicated.
async fn replicas(w: World) {
    let r1 = artifact(&w, 1, "ci").await;
    let r2 = artifact(&w, 2, "ci").await;
    let rm = w.caller("rm");
    let (a, b): (Arc<ReleaseService>, Arc<ReleaseService>) = (w.service.clone(), w.replica.clone());
    let (x, y) = tokio::join!(
        a.promote(&rm, promote(&r1, "dev", Some("p-1"))),
        b.promote(&rm, promote(&r2, "dev", Some("p-2")))
    );
    for r in [&x, &y] {
        if let Err(e) = r {
            assert!(e.retry(), "{e:?}");
            assert!(matches!(
                e,
                ReleaseError::Store(StoreError::Conflict { .. })
            ));
        }
    }
    let history = w.service.environment_history("dev").await.unwrap();
    let seqs: Vec<u64> = history.releases.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    // Retrying with the same ids finishes both, once each.
    w.service
        .promote(&rm, promote(&r1, "dev", Some("p-1")))
        .await
        .ok();
    w.service
        .promote(&rm, promote(&r2, "dev", Some("p-2")))
        .await
        .ok();
    let again = w
        .service
        .promote(&rm, promote(&r1, "dev", Some("p-1")))
        .await
        .unwrap();
    assert!(!again.created);
}

/// The release state admission follows (`input.release`): none before an environment's
/// first release; then the current release, how far behind an earlier one is, a digest never
/// released there, counted approvals (not the builder's, even when it reached the evidence
/// store directly), quarantine after a revocation; kept in memory until a change, and caught
/// up by `refresh` when another replica made the change.
async fn admission(w: World) {
    let s = &w.service;
    let rm = w.caller("rm");
    let r1 = artifact(&w, 1, "ci").await;
    assert_eq!(
        s.release_state("prod", &r1).await.unwrap(),
        None,
        "no release yet"
    );
    let err = s.release_state("qa", &r1).await.unwrap_err();
    assert!(matches!(err, ReleaseError::NotFound(_)), "{err:?}");
    message(&err, "unknown environment \"qa\"");
    // The replica reads prod before its first release and keeps what it read.
    assert_eq!(w.replica.release_state("prod", &r1).await.unwrap(), None);

    for env in ["dev", "staging"] {
        s.promote(&rm, promote(&r1, env, None)).await.unwrap();
    }
    for who in ["alice", "carol"] {
        s.approve(&w.caller(who), &w.approval(who, &r1, "prod"))
            .await
            .unwrap();
    }
    // The builder's own approval, stored directly as evidence, never counts.
    let by_builder = w.approval("ci", &r1, "prod");
    let now = Utc::now().to_rfc3339();
    w.evidence.put(&by_builder, &[r1], &now).unwrap();
    s.promote(&rm, promote(&r1, "prod", None)).await.unwrap();
    let state = s.release_state("prod", &r1).await.unwrap().unwrap();
    assert_eq!(state.environment, "prod");
    assert_eq!(state.allow_previous, 1, "admit_previous defaults to 1");
    assert_eq!(state.current.as_ref().unwrap().digest, r1.to_string());
    assert!(state.candidate.is_current);
    assert_eq!(state.candidate.release_seq, Some(1));
    let approvals = state.candidate.approvals.clone().unwrap();
    assert_eq!(
        (approvals.required, approvals.group.as_str()),
        (2, "release-approvers")
    );
    assert_eq!(approvals.approved_by, ["alice", "carol"]);
    assert_eq!(state.candidate.quarantine, None);
    // Staging has no approval rule: no approvals in its state.
    let staging = s.release_state("staging", &r1).await.unwrap().unwrap();
    assert_eq!(staging.candidate.approvals, None);

    // The replica still answers from memory; after refresh it knows prod's release.
    assert_eq!(w.replica.release_state("prod", &r1).await.unwrap(), None);
    w.replica.refresh().await.unwrap();
    let seen = w.replica.release_state("prod", &r1).await.unwrap().unwrap();
    assert_eq!(seen, state);

    let r2 = release(&w, 2, "ci").await;
    let r3 = release(&w, 3, "ci").await;
    let old = s.release_state("prod", &r1).await.unwrap().unwrap();
    assert_eq!(old.current.as_ref().unwrap().digest, r3.to_string());
    assert_eq!(
        (
            old.candidate.is_current,
            old.candidate.release_seq,
            old.candidate.releases_behind
        ),
        (false, Some(1), Some(2))
    );
    let previous = s.release_state("prod", &r2).await.unwrap().unwrap();
    assert_eq!(previous.candidate.releases_behind, Some(1));
    // Never promoted to prod: no seq, and none of its approvals.
    let r4 = artifact(&w, 4, "ci").await;
    s.promote(&rm, promote(&r4, "dev", None)).await.unwrap();
    let never = s.release_state("prod", &r4).await.unwrap().unwrap();
    assert_eq!(
        (never.candidate.release_seq, never.candidate.releases_behind),
        (None, None)
    );
    assert!(never.candidate.approvals.unwrap().approved_by.is_empty());
    let dev = s.release_state("dev", &r4).await.unwrap().unwrap();
    assert!(dev.candidate.is_current);

    // A revocation quarantines r3 (and rolls prod back to r2): both show at once.
    let target = format!("digest:{r3}");
    let revoked = s
        .revoke(&w.caller("sec"), &w.revocation("sec", &target))
        .await
        .unwrap();
    let state = s.release_state("prod", &r3).await.unwrap().unwrap();
    let q = state.candidate.quarantine.unwrap();
    assert_eq!(q.revocation_id, revoked.revocation.id);
    assert_eq!(q.target, target);
    let current = state.current.unwrap();
    assert_eq!(current.digest, r2.to_string(), "rolled back");
    assert_eq!(
        (state.candidate.is_current, state.candidate.release_seq),
        (false, Some(3))
    );
    assert_eq!(state.candidate.releases_behind, Some(current.seq - 3));
}

fn sqlite_world(dir: &tempfile::TempDir) -> World {
    World::new(ReleaseDb::open(dir.path().join("release.db").to_str().unwrap()).unwrap())
}

/// Worlds are made outside the runtime: opening and initializing a store blocks.
#[test]
fn service_rules_on_sqlite() {
    let rt = runtime();
    for (n, dir) in (0..4).map(|n| (n, tempfile::tempdir().unwrap())) {
        let w = sqlite_world(&dir);
        match n {
            0 => rt.block_on(story(w)),
            1 => rt.block_on(rotation(w)),
            2 => rt.block_on(admission(w)),
            _ => rt.block_on(replicas(w)),
        }
    }
}

#[test]
fn service_rules_on_postgres() {
    let server = pg::PgServer::start();
    let rt = runtime();
    for (n, name) in ["story", "rotation", "admission", "replicas"]
        .into_iter()
        .enumerate()
    {
        let url = server.create_database(name);
        let w = World::new(ReleaseDb::open(&url).unwrap());
        match n {
            0 => rt.block_on(story(w)),
            1 => rt.block_on(rotation(w)),
            2 => rt.block_on(admission(w)),
            _ => rt.block_on(replicas(w)),
        }
    }
}
