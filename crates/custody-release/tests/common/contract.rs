//! The `ReleaseStore` conformance suite: every method, every clause of the contract in
//! `custody_release::store`, run on each backend.

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};

use chrono::{DateTime, Utc};
use custody_release::model::{
    ArtifactRecord, Deployment, Event, Incident, Quarantine, Recovery, Release, ReleaseKind,
    Revocation,
};
use custody_release::store::{ReleaseStore, StoreError};
use serde_json::json;

/// A time with nanoseconds, so a lossy round trip shows.
pub fn at(n: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000 + n, 123_456_789).unwrap()
}

pub fn digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

pub fn release(environment: &str, seq: u64, digest: &str, request_id: Option<&str>) -> Release {
    Release {
        environment: environment.to_owned(),
        seq,
        digest: digest.to_owned(),
        kind: ReleaseKind::Promotion,
        from_environment: Some("dev".to_owned()),
        requested_by: "alice".to_owned(),
        at: at(seq as i64),
        policy_digest: digest_of_policy(),
        reason: None,
        request_id: request_id.map(str::to_owned),
        bundle: format!("{{\"release\":{seq},\"environment\":\"{environment}\"}}"),
        log_index: Some(100 + seq),
        vsa: Some("{\"vsa\":true}".to_owned()),
    }
}

fn digest_of_policy() -> String {
    digest('p')
}

#[track_caller]
fn assert_conflict(result: Result<(), StoreError>, environment: &str, expected: u64) {
    match result {
        Err(StoreError::Conflict {
            environment: env,
            expected: seq,
        }) => {
            assert_eq!(env, environment);
            assert_eq!(seq, expected);
        }
        other => panic!("expected a conflict on {environment} release {expected}, got {other:?}"),
    }
}

#[track_caller]
fn assert_duplicate(result: Result<(), StoreError>, request_id: &str) {
    match result {
        Err(StoreError::Duplicate(id)) => assert_eq!(id, request_id),
        other => panic!("expected a duplicate of request {request_id}, got {other:?}"),
    }
}

/// Every method and every clause of the contract, on an empty store.
pub fn contract(store: &dyn ReleaseStore) {
    // Creating the schema twice is harmless.
    store.initialize().unwrap();
    store.initialize().unwrap();
    artifacts(store);
    releases(store);
    revocations(store);
    quarantine(store);
    incidents(store);
    deployments(store);
    events(store);
    releases_with_events(store);
    request_bindings(store);
}

fn artifacts(store: &dyn ReleaseStore) {
    let first = ArtifactRecord {
        digest: digest('a'),
        size: 1 << 40,
        name: Some("app-1.0.tar.gz".to_owned()),
        uploaded_by: "builder-1".to_owned(),
        uploaded_at: at(1),
        log_index: Some(7),
    };
    let bare = ArtifactRecord {
        digest: digest('b'),
        size: 0,
        name: None,
        uploaded_by: "builder-2".to_owned(),
        uploaded_at: at(2),
        log_index: None,
    };
    assert_eq!(store.artifact(&first.digest).unwrap(), None);
    assert!(store.put_artifact(&first).unwrap());
    assert!(store.put_artifact(&bare).unwrap());
    assert_eq!(store.artifact(&first.digest).unwrap(), Some(first.clone()));
    assert_eq!(store.artifact(&bare.digest).unwrap(), Some(bare.clone()));

    // A second put of a stored digest changes nothing.
    let second = ArtifactRecord {
        size: 5,
        name: Some("other".to_owned()),
        uploaded_by: "mallory".to_owned(),
        uploaded_at: at(3),
        log_index: None,
        ..first.clone()
    };
    assert!(!store.put_artifact(&second).unwrap());
    assert!(!store.put_artifact(&first).unwrap());
    assert_eq!(store.artifact(&first.digest).unwrap(), Some(first));

    // Sizes beyond what the database holds fail cleanly and store nothing.
    let huge = ArtifactRecord {
        digest: digest('h'),
        size: u64::MAX,
        ..bare
    };
    assert!(matches!(
        store.put_artifact(&huge),
        Err(StoreError::Backend(_))
    ));
    assert_eq!(store.artifact(&huge.digest).unwrap(), None);
}

fn releases(store: &dyn ReleaseStore) {
    let (a, b, c) = (digest('a'), digest('b'), digest('c'));
    assert_eq!(store.current_release("staging").unwrap(), None);
    assert_eq!(store.releases("staging").unwrap(), vec![]);
    assert_eq!(store.releases_of(&a).unwrap(), vec![]);

    // The first release is seq 1: neither 0 nor a gap.
    assert_conflict(
        store.append_release(&release("staging", 0, &a, None)),
        "staging",
        0,
    );
    assert_conflict(
        store.append_release(&release("staging", 2, &a, Some("gap"))),
        "staging",
        2,
    );
    assert_eq!(store.releases("staging").unwrap(), vec![]);
    assert_eq!(store.current_release("staging").unwrap(), None);
    assert_eq!(store.release_by_request("gap").unwrap(), None);

    let s1 = release("staging", 1, &a, Some("req-1"));
    let mut s2 = release("staging", 2, &b, None);
    s2.from_environment = None;
    s2.log_index = None;
    s2.vsa = None;
    let s3 = Release {
        kind: ReleaseKind::Rollback,
        from_environment: None,
        requested_by: "custody".to_owned(),
        reason: Some("incident 1: revocation 1 of key:k1".to_owned()),
        ..release("staging", 3, &a, Some("req-3"))
    };
    store.append_release(&s1).unwrap();
    assert_eq!(store.current_release("staging").unwrap(), Some(s1.clone()));
    store.append_release(&s2).unwrap();
    store.append_release(&s3).unwrap();
    assert_eq!(store.current_release("staging").unwrap(), Some(s3.clone()));
    let history = vec![s1.clone(), s2.clone(), s3.clone()];
    assert_eq!(store.releases("staging").unwrap(), history);

    // A repeated seq, a gap, a stale seq: conflicts that change nothing.
    assert_conflict(
        store.append_release(&release("staging", 3, &c, Some("again-3"))),
        "staging",
        3,
    );
    assert_conflict(
        store.append_release(&release("staging", 5, &c, None)),
        "staging",
        5,
    );
    assert_conflict(
        store.append_release(&release("staging", 1, &c, None)),
        "staging",
        1,
    );
    assert_eq!(store.releases("staging").unwrap(), history);
    assert_eq!(store.release_by_request("again-3").unwrap(), None);

    // A used request id is a duplicate, in the same environment (even with the right seq) or
    // another one, and the first release stays the one found.
    assert_duplicate(
        store.append_release(&release("staging", 4, &c, Some("req-1"))),
        "req-1",
    );
    assert_duplicate(
        store.append_release(&release("prod", 1, &c, Some("req-3"))),
        "req-3",
    );
    // ... also when its seq is stale (a retried request).
    assert_duplicate(
        store.append_release(&release("staging", 1, &a, Some("req-1"))),
        "req-1",
    );
    assert_eq!(store.releases("staging").unwrap(), history);
    assert_eq!(store.releases("prod").unwrap(), vec![]);
    assert_eq!(store.release_by_request("req-1").unwrap(), Some(s1.clone()));
    assert_eq!(store.release_by_request("req-3").unwrap(), Some(s3.clone()));
    assert_eq!(store.release_by_request("req-2").unwrap(), None);

    // Values the database cannot hold fail cleanly and store nothing.
    let mut huge = release("staging", 4, &c, Some("huge"));
    huge.log_index = Some(u64::MAX);
    assert!(matches!(
        store.append_release(&huge),
        Err(StoreError::Backend(_))
    ));
    assert_eq!(store.releases("staging").unwrap(), history);
    assert_eq!(store.release_by_request("huge").unwrap(), None);

    // Environments are independent; an empty request id is no idempotency key.
    let p1 = release("prod", 1, &a, Some(""));
    let p2 = release("prod", 2, &c, Some(""));
    store.append_release(&p1).unwrap();
    store.append_release(&p2).unwrap();
    assert_eq!(
        store.releases("prod").unwrap(),
        vec![p1.clone(), p2.clone()]
    );
    assert_eq!(store.release_by_request("").unwrap(), None);
    assert_eq!(store.current_release("staging").unwrap(), Some(s3.clone()));
    assert_eq!(store.current_release("prod").unwrap(), Some(p2.clone()));
    assert_eq!(store.current_release("dev").unwrap(), None);
    let s4 = release("staging", 4, &c, None);
    store.append_release(&s4).unwrap();

    // Every release of a digest, in the order stored, across environments.
    assert_eq!(
        store.releases_of(&a).unwrap(),
        vec![s1.clone(), s3.clone(), p1.clone()]
    );
    assert_eq!(store.releases_of(&b).unwrap(), vec![s2.clone()]);
    assert_eq!(store.releases_of(&c).unwrap(), vec![p2, s4.clone()]);
    assert_eq!(store.releases_of(&digest('z')).unwrap(), vec![]);
    assert_eq!(store.releases("staging").unwrap(), vec![s1, s2, s3, s4]);
}

fn revocations(store: &dyn ReleaseStore) {
    assert_eq!(store.revocations().unwrap(), vec![]);
    let key = Revocation {
        id: 0,
        target: "key:k1".to_owned(),
        reason: "leaked".to_owned(),
        revoked_by: "admin".to_owned(),
        at: at(10),
        bundle: "{\"revocation\":1}".to_owned(),
        log_index: Some(42),
    };
    let artifact = Revocation {
        id: 77, // ignored
        target: format!("digest:{}", digest('a')),
        reason: "CVE".to_owned(),
        revoked_by: "security".to_owned(),
        at: at(11),
        bundle: "{\"revocation\":2}".to_owned(),
        log_index: None,
    };
    let first = store.add_revocation(&key).unwrap();
    let second = store.add_revocation(&artifact).unwrap();
    assert!(first.id >= 1, "ids start at 1: {}", first.id);
    assert!(second.id > first.id, "{} then {}", first.id, second.id);
    assert_eq!(
        first,
        Revocation {
            id: first.id,
            ..key
        }
    );
    assert_eq!(
        second,
        Revocation {
            id: second.id,
            ..artifact
        }
    );
    assert_eq!(store.revocations().unwrap(), vec![first, second]);
}

fn quarantine(store: &dyn ReleaseStore) {
    let a = Quarantine {
        digest: digest('a'),
        revocation_id: 2,
        at: at(20),
    };
    let b = Quarantine {
        digest: digest('b'),
        revocation_id: 3,
        at: at(21),
    };
    assert_eq!(store.quarantined(&a.digest).unwrap(), None);
    assert_eq!(store.quarantine_list().unwrap(), vec![]);
    assert!(store.quarantine(&a).unwrap());
    // Quarantined twice: the first record is kept.
    let again = Quarantine {
        revocation_id: 9,
        at: at(22),
        ..a.clone()
    };
    assert!(!store.quarantine(&again).unwrap());
    assert!(store.quarantine(&b).unwrap());
    assert_eq!(store.quarantined(&a.digest).unwrap(), Some(a.clone()));
    assert_eq!(store.quarantined(&b.digest).unwrap(), Some(b.clone()));
    assert_eq!(store.quarantined(&digest('c')).unwrap(), None);
    assert_eq!(store.quarantine_list().unwrap(), vec![a, b]);
}

fn incidents(store: &dyn ReleaseStore) {
    assert_eq!(store.incidents().unwrap(), vec![]);
    let open = Incident {
        id: 999, // ignored
        revocation_id: 2,
        detected_at: at(30),
        introduced_at: Some(at(1)),
        recovered_at: None,
        status: "open".to_owned(),
        affected_digests: vec![digest('a'), digest('b')],
        recoveries: vec![Recovery {
            environment: "staging".to_owned(),
            from_digest: digest('a'),
            to_digest: Some(digest('b')),
            seq: Some(5),
            deployed_at: None,
        }],
    };
    let empty = Incident {
        id: 0,
        revocation_id: 3,
        detected_at: at(31),
        introduced_at: None,
        recovered_at: None,
        status: "unrecoverable".to_owned(),
        affected_digests: vec![],
        recoveries: vec![],
    };
    let first = store.open_incident(&open).unwrap();
    let second = store.open_incident(&empty).unwrap();
    assert!(first.id >= 1);
    assert!(second.id > first.id, "{} then {}", first.id, second.id);
    assert_eq!(
        first,
        Incident {
            id: first.id,
            ..open
        }
    );
    assert_eq!(
        second,
        Incident {
            id: second.id,
            ..empty
        }
    );
    assert_eq!(
        store.incidents().unwrap(),
        vec![first.clone(), second.clone()]
    );

    // An update replaces every field of the incident with that id, and only that one.
    let recovered = Incident {
        recovered_at: Some(at(40)),
        status: "recovered".to_owned(),
        affected_digests: vec![digest('a')],
        recoveries: vec![
            Recovery {
                deployed_at: Some(at(39)),
                ..first.recoveries[0].clone()
            },
            Recovery {
                environment: "prod".to_owned(),
                from_digest: digest('a'),
                to_digest: None,
                seq: None,
                deployed_at: None,
            },
        ],
        ..first.clone()
    };
    store.update_incident(&recovered).unwrap();
    assert_eq!(
        store.incidents().unwrap(),
        vec![recovered.clone(), second.clone()]
    );

    // Updating a missing incident is NotFound and changes nothing.
    let missing = Incident {
        id: second.id + 1000,
        ..recovered.clone()
    };
    match store.update_incident(&missing) {
        Err(StoreError::NotFound(what)) => assert!(what.contains("incident"), "{what}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(store.incidents().unwrap(), vec![recovered, second]);
}

fn deployments(store: &dyn ReleaseStore) {
    let report = |environment: &str, seq: u64, status: &str, n: i64| Deployment {
        environment: environment.to_owned(),
        seq,
        digest: digest('a'),
        agent: format!("host-{n}/k8s"),
        status: status.to_owned(),
        detail: (status == "failed").then(|| "image pull backoff".to_owned()),
        at: at(50 + n),
    };
    assert_eq!(store.deployments("staging").unwrap(), vec![]);
    let s1 = report("staging", 1, "active", 1);
    let p1 = report("prod", 1, "failed", 2);
    let s3 = report("staging", 3, "failed", 3);
    let s3_again = report("staging", 3, "active", 4);
    for d in [&s1, &p1, &s3, &s3_again] {
        store.record_deployment(d).unwrap();
    }
    assert_eq!(
        store.deployments("staging").unwrap(),
        vec![s1, s3, s3_again]
    );
    assert_eq!(store.deployments("prod").unwrap(), vec![p1]);
    assert_eq!(store.deployments("dev").unwrap(), vec![]);
}

fn events(store: &dyn ReleaseStore) {
    assert_eq!(store.events(None).unwrap(), vec![]);
    let event = |n: i64, action: &str, object: &str, detail: serde_json::Value| Event {
        id: 0,
        at: at(60 + n),
        actor: "alice".to_owned(),
        action: action.to_owned(),
        object: object.to_owned(),
        log_index: (n % 2 == 0).then_some(n as u64),
        detail,
    };
    let mut push = event(
        1,
        "push",
        &digest('a'),
        json!({"size": 12, "name": "app.tar.gz", "nested": {"list": [1, 2.5, null, true]}}),
    );
    let mut promote = event(
        2,
        "promote",
        "staging",
        json!({"seq": 3, "note": "ünïcødé \"quoted\"\n"}),
    );
    let mut quarantine = event(3, "quarantine", &digest('a'), json!(null));
    let mut ids = Vec::new();
    for e in [&mut push, &mut promote, &mut quarantine] {
        let id = store.record_event(e).unwrap();
        e.id = id;
        ids.push(id);
    }
    assert!(ids[0] >= 1);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(
        store.events(None).unwrap(),
        vec![push.clone(), promote.clone(), quarantine.clone()]
    );
    assert_eq!(
        store.events(Some(&digest('a'))).unwrap(),
        vec![push, quarantine]
    );
    assert_eq!(store.events(Some("staging")).unwrap(), vec![promote]);
    assert_eq!(store.events(Some("nothing")).unwrap(), vec![]);
    // Exact match only.
    assert_eq!(store.events(Some("stag")).unwrap(), vec![]);
}

/// A release and its event are stored together, or neither is.
fn releases_with_events(store: &dyn ReleaseStore) {
    let q = digest('q');
    let event = |seq: u64| Event {
        id: 0,
        at: at(80 + seq as i64),
        actor: "alice".to_owned(),
        action: "promotion".to_owned(),
        object: q.clone(),
        log_index: Some(100 + seq),
        detail: json!({"environment": "qa", "seq": seq}),
    };
    let first = release("qa", 1, &q, Some("with-event-1"));
    let mut recorded = event(1);
    recorded.id = store.append_release_with_event(&first, &recorded).unwrap();
    assert!(recorded.id >= 1);
    assert_eq!(store.current_release("qa").unwrap(), Some(first.clone()));
    assert_eq!(store.events(Some(&q)).unwrap(), vec![recorded.clone()]);
    // A lost compare-and-swap and a used request id store neither.
    match store.append_release_with_event(&release("qa", 3, &q, None), &event(3)) {
        Err(StoreError::Conflict {
            environment,
            expected,
        }) => {
            assert_eq!((environment.as_str(), expected), ("qa", 3));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    match store.append_release_with_event(&release("qa", 2, &q, Some("with-event-1")), &event(2)) {
        Err(StoreError::Duplicate(id)) => assert_eq!(id, "with-event-1"),
        other => panic!("expected a duplicate, got {other:?}"),
    }
    assert_eq!(store.releases("qa").unwrap(), vec![first]);
    assert_eq!(store.events(Some(&q)).unwrap(), vec![recorded]);
}

/// A request id is bound to its request's content digest with the release, in the same
/// transaction; a failed append binds nothing, and a binding never changes.
fn request_bindings(store: &dyn ReleaseStore) {
    let b = digest('b');
    let content = |c: char| c.to_string().repeat(64);
    let event = |seq: u64| Event {
        id: 0,
        at: at(90 + seq as i64),
        actor: "alice".to_owned(),
        action: "promotion".to_owned(),
        object: b.clone(),
        log_index: None,
        detail: json!({"environment": "bound", "seq": seq}),
    };
    assert_eq!(store.request_binding("bound-1").unwrap(), None);
    assert_eq!(store.request_binding("").unwrap(), None);
    let first = release("bound", 1, &b, Some("bound-1"));
    store
        .append_release_for_request(&first, &event(1), &content('1'))
        .unwrap();
    assert_eq!(
        store.request_binding("bound-1").unwrap(),
        Some(content('1'))
    );
    assert_eq!(
        store.release_by_request("bound-1").unwrap(),
        Some(first.clone())
    );
    // The same id again (with other content) is a duplicate and changes nothing.
    match store.append_release_for_request(
        &release("bound", 2, &b, Some("bound-1")),
        &event(2),
        &content('2'),
    ) {
        Err(StoreError::Duplicate(id)) => assert_eq!(id, "bound-1"),
        other => panic!("expected a duplicate, got {other:?}"),
    }
    assert_eq!(
        store.request_binding("bound-1").unwrap(),
        Some(content('1'))
    );
    // A lost compare-and-swap binds nothing.
    match store.append_release_for_request(
        &release("bound", 3, &b, Some("bound-3")),
        &event(3),
        &content('3'),
    ) {
        Err(StoreError::Conflict { .. }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(store.request_binding("bound-3").unwrap(), None);
    // A release without a request id binds nothing.
    store
        .append_release_for_request(&release("bound", 2, &b, None), &event(2), &content('4'))
        .unwrap();
    assert_eq!(store.releases("bound").unwrap().len(), 2);
    // Creating the schema again keeps the bindings.
    store.initialize().unwrap();
    assert_eq!(
        store.request_binding("bound-1").unwrap(),
        Some(content('1'))
    );
}

/// `threads` threads, each with its own store handle from `open`, race `attempts` promotions
/// each into one environment (read the current release, append the next seq, retry on
/// conflict). The history ends as exactly 1..=K with every thread's successes in it. Then
/// they race one request id into different environments: exactly one wins.
pub fn race(open: &(dyn Fn() -> Box<dyn ReleaseStore> + Sync), threads: usize, attempts: usize) {
    const ENV: &str = "race";
    let barrier = Barrier::new(threads);
    let results: Vec<(Vec<(u64, String)>, usize)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let store = open();
                    let mut won = Vec::new();
                    let mut conflicts = 0;
                    barrier.wait();
                    for attempt in 0..attempts {
                        let request = format!("race-{t}-{attempt}");
                        let mut tries = 0;
                        loop {
                            tries += 1;
                            assert!(tries < 10_000, "thread {t} starved");
                            let seq = store.current_release(ENV).unwrap().map_or(1, |r| r.seq + 1);
                            let release = release(ENV, seq, &digest('r'), Some(&request));
                            match store.append_release(&release) {
                                Ok(()) => {
                                    won.push((seq, request));
                                    break;
                                }
                                Err(StoreError::Conflict { .. }) => conflicts += 1,
                                Err(err) => panic!("thread {t}: {err}"),
                            }
                        }
                    }
                    (won, conflicts)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });

    let store = open();
    let history = store.releases(ENV).unwrap();
    let total: usize = results.iter().map(|(won, _)| won.len()).sum();
    let conflicts: usize = results.iter().map(|(_, c)| c).sum();
    eprintln!("race: {total} appends, {conflicts} conflicts retried");
    assert_eq!(total, threads * attempts);
    let seqs: Vec<u64> = history.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=total as u64).collect::<Vec<_>>());
    for (won, _) in &results {
        for (seq, request) in won {
            assert_eq!(
                history[*seq as usize - 1].request_id.as_deref(),
                Some(request.as_str())
            );
            assert_eq!(
                store.release_by_request(request).unwrap().map(|r| r.seq),
                Some(*seq)
            );
        }
    }
    let requests: BTreeSet<_> = history.iter().map(|r| r.request_id.clone()).collect();
    assert_eq!(requests.len(), total);

    // One request id, raced into `threads` fresh environments: one release, the rest are
    // duplicates.
    let barrier = Barrier::new(threads);
    let outcomes: Vec<Result<(), StoreError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let store = open();
                    barrier.wait();
                    store.append_release(&release(
                        &format!("dup-{t}"),
                        1,
                        &digest('d'),
                        Some("same-request"),
                    ))
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let winners: Vec<usize> = (0..threads).filter(|t| outcomes[*t].is_ok()).collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    for outcome in outcomes.into_iter().filter(Result::is_err) {
        assert_duplicate(outcome, "same-request");
    }
    let winner = store.release_by_request("same-request").unwrap().unwrap();
    assert_eq!(winner.environment, format!("dup-{}", winners[0]));
    for t in (0..threads).filter(|t| *t != winners[0]) {
        assert_eq!(store.releases(&format!("dup-{t}")).unwrap(), vec![]);
    }
}

/// `store` shared by reference between threads works too (one handle, many callers).
pub fn shared_handle(store: Arc<dyn ReleaseStore>, threads: usize, appends: usize) {
    const ENV: &str = "shared";
    std::thread::scope(|scope| {
        for t in 0..threads {
            let store = &store;
            scope.spawn(move || {
                for n in 0..appends {
                    loop {
                        let seq = store.current_release(ENV).unwrap().map_or(1, |r| r.seq + 1);
                        match store.append_release(&release(
                            ENV,
                            seq,
                            &digest('s'),
                            Some(&format!("shared-{t}-{n}")),
                        )) {
                            Ok(()) => break,
                            Err(StoreError::Conflict { .. }) => {}
                            Err(err) => panic!("{err}"),
                        }
                    }
                }
            });
        }
    });
    let seqs: Vec<u64> = store.releases(ENV).unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=(threads * appends) as u64).collect::<Vec<_>>());
}
