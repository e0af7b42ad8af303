//! Issue #16, attack 7: a slow policy must not hold a worker. Every evaluation runs under the
//! policy's time limit; one stopped there is a `policy-timeout` deny (fail closed), on the VM
//! and on the interpreter, for `deny`, `warn`, `allow_unpinned`, tests and the load-time dry
//! run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chrono::Utc;
use custody_policy::input::TrustSet;
use custody_policy::{
    ArtifactRef, Gate, POLICY_TIMEOUT, Policy, PolicyError, PolicyFile, Request, TestOutcome,
    TimeLimit,
};
use serde_json::json;

/// ~4·10^8 loop iterations when `input.artifact.name` is "slow" (minutes on any machine),
/// nothing otherwise: the load-time dry run passes, a chosen input does not.
const SLOW_GATE: &str = r#"package custody.gate

slow_loop if {
	input.artifact.name == "slow"
	found := {true | some i in numbers.range(1, 20000); some j in numbers.range(1, 20000); i == j + 100000}
	count(found) == 0
}

deny contains {"code": "too-slow-to-matter", "msg": "never reached in time"} if slow_loop

deny contains {"code": "named-bad", "msg": "the artifact is called bad"} if input.artifact.name == "bad"
"#;

fn limit(ms: u64) -> TimeLimit {
    TimeLimit::new(Duration::from_millis(ms)).unwrap()
}

fn policy(text: &str, ms: u64) -> Policy {
    Policy::from_files_limited(
        vec![PolicyFile {
            path: "gate.rego".into(),
            text: text.into(),
        }],
        json!({}),
        limit(ms),
    )
    .unwrap()
}

fn input(name: &str) -> serde_json::Value {
    json!({
        "artifact": {"digest": format!("sha256:{}", "0".repeat(64)), "name": name},
        "environment": {"name": "prod"},
        "time": "2026-01-01T00:00:00Z",
        "evidence": [],
        "rejected": []
    })
}

#[test]
fn attack_slow_policy_is_cut_at_the_time_limit() {
    let p = policy(SLOW_GATE, 200);
    assert_eq!(p.time_limit(), limit(200));

    let started = Instant::now();
    let eval = p.evaluate(&input("slow")).unwrap();
    let took = started.elapsed();
    // Stopped near the limit (the clock is read every 64 VM instructions), not after the
    // minutes the loop needs.
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    let timed_out = eval.timed_out.as_ref().expect("the evaluation timed out");
    assert_eq!(timed_out.rule, "data.custody.gate.deny");
    assert_eq!(timed_out.limit, limit(200));
    assert_eq!(eval.denies.len(), 1, "{:?}", eval.denies);
    let finding = &eval.denies[0];
    assert_eq!(finding.code, POLICY_TIMEOUT);
    assert!(finding.message.contains("<memory>"), "{}", finding.message);
    assert!(finding.message.contains("200ms"), "{}", finding.message);
    assert!(
        finding.fix.as_deref().unwrap().contains("--policy-timeout"),
        "{:?}",
        finding.fix
    );
    assert!(eval.warnings.is_empty());

    // The same policy still answers ordinary inputs at once, both ways.
    let started = Instant::now();
    let fine = p.evaluate(&input("app")).unwrap();
    assert!(
        fine.denies.is_empty() && fine.timed_out.is_none(),
        "{fine:?}"
    );
    let bad = p.evaluate(&input("bad")).unwrap();
    assert_eq!(bad.denies[0].code, "named-bad");
    assert!(started.elapsed() < Duration::from_millis(200));
}

#[test]
fn attack_slow_policy_is_cut_on_the_interpreter_too() {
    let p = policy(SLOW_GATE, 150);
    let started = Instant::now();
    let error = p
        .eval_interpreter(regorus::Value::from(input("slow")))
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        error.contains("data.custody.gate.deny stopped at the policy time limit of 150ms"),
        "{error}"
    );
}

#[test]
fn attack_slow_policy_is_denied_by_the_gate_with_a_timeout_verdict() {
    let gate = Gate {
        policy: policy(SLOW_GATE, 100),
        trust: TrustSet {
            keys: Vec::new(),
            root: None,
            root_digest: None,
        },
    };
    let request = |name: &str| Request {
        artifact: ArtifactRef {
            digest: Some(format!("sha256:{}", "1".repeat(64))),
            name: Some(name.into()),
            image: None,
        },
        time: Utc::now(),
        ..Default::default()
    };
    let verdict = gate.decide(&request("slow"), &[]).unwrap();
    assert!(!verdict.allowed);
    assert!(verdict.timed_out());
    assert!(
        verdict.one_line().contains("[policy-timeout]"),
        "{}",
        verdict.one_line()
    );
    let verdict = gate.decide(&request("app"), &[]).unwrap();
    assert!(verdict.allowed && !verdict.timed_out(), "{verdict:?}");
}

#[test]
fn attack_slow_warn_rule_still_denies() {
    // The budget is per evaluation: a slow `warn` is stopped too, and the artifact is denied
    // (the policy did not finish), never allowed with the warning missing.
    let text = format!(
        "{SLOW_GATE}\nwarn contains \"slow\" if slow_warn\n\nslow_warn if {{\n\tinput.artifact.name == \"slow-warn\"\n\tfound := {{true | some i in numbers.range(1, 20000); some j in numbers.range(1, 20000); i == j + 100000}}\n\tcount(found) == 0\n}}\n"
    );
    let p = policy(&text, 100);
    let eval = p.evaluate(&input("slow-warn")).unwrap();
    let t = eval.timed_out.expect("timed out");
    assert_eq!(t.rule, "data.custody.gate.warn");
    assert_eq!(eval.denies[0].code, POLICY_TIMEOUT);
}

#[test]
fn attack_slow_allow_unpinned_denies_the_unpinned_image() {
    let text = format!(
        "{SLOW_GATE}\nallow_unpinned if {{\n\tis_string(input.artifact.image)\n\tstartswith(input.artifact.image, \"slow/\")\n\tfound := {{true | some i in numbers.range(1, 20000); some j in numbers.range(1, 20000); i == j + 100000}}\n\tcount(found) == 0\n}}\n\nallow_unpinned if {{\n\tis_string(input.artifact.image)\n\tstartswith(input.artifact.image, \"dev/\")\n}}\n"
    );
    let gate = Gate {
        policy: policy(&text, 100),
        trust: TrustSet {
            keys: Vec::new(),
            root: None,
            root_digest: None,
        },
    };
    let request = |image: &str| Request {
        artifact: ArtifactRef {
            digest: None,
            name: None,
            image: Some(image.into()),
        },
        time: Utc::now(),
        ..Default::default()
    };
    let started = Instant::now();
    let verdict = gate.decide(&request("slow/app:latest"), &[]).unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(!verdict.allowed);
    assert!(verdict.timed_out(), "{verdict:?}");
    let rule = &verdict.denies[0].details["rule"];
    assert_eq!(rule, "data.custody.gate.allow_unpinned");
    let verdict = gate.decide(&request("dev/app:latest"), &[]).unwrap();
    assert!(verdict.allowed, "{verdict:?}");
}

#[test]
fn attack_policy_slow_on_every_input_is_refused_at_load() {
    let text = "package custody.gate\n\ndeny contains \"never\" if {\n\tfound := {true | some i in numbers.range(1, 20000); some j in numbers.range(1, 20000); i == j + 100000}\n\tcount(found) < 0\n}\n";
    let started = Instant::now();
    let refused = Policy::from_files_limited(
        vec![PolicyFile {
            path: "gate.rego".into(),
            text: text.into(),
        }],
        json!({}),
        limit(100),
    )
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    match &refused {
        PolicyError::Timeout { timed_out, .. } => assert_eq!(timed_out.limit, limit(100)),
        other => panic!("expected a timeout, got {other}"),
    }
}

#[test]
fn attack_slow_policy_test_is_refused_not_a_hang() {
    // `test_` rules are rules too: the load-time dry run evaluates them, so a test that loops
    // stops the load (what `custody policy test` reports) instead of hanging it.
    let text = format!(
        "{SLOW_GATE}\ntest_slow if {{\n\tdenies := deny with input as {{\"artifact\": {{\"name\": \"slow\"}}}}\n\tcount(denies) > 0\n}}\n\ntest_fast if {{\n\tdenies := deny with input as {{\"artifact\": {{\"name\": \"bad\"}}}}\n\tcount(denies) == 1\n}}\n"
    );
    let started = Instant::now();
    let refused = Policy::from_files_limited(
        vec![PolicyFile {
            path: "gate.rego".into(),
            text: text.clone(),
        }],
        json!({}),
        limit(100),
    )
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(matches!(refused, PolicyError::Timeout { .. }), "{refused}");
    assert!(refused.to_string().contains("100ms"), "{refused}");
    // The fast test passes on its own once the slow one is gone.
    let fast_only = format!(
        "{SLOW_GATE}\ntest_fast if {{\n\tdenies := deny with input as {{\"artifact\": {{\"name\": \"bad\"}}}}\n\tcount(denies) == 1\n}}\n"
    );
    let p = policy(&fast_only, 100);
    let results = p.run_tests(None);
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0].outcome, TestOutcome::Pass);
}

#[test]
fn the_built_in_library_runs_far_below_the_default_limit() {
    // A policy over many pieces of evidence: no instruction cap or limit gets in the way.
    let p = Policy::from_files(
        vec![PolicyFile {
            path: "gate.rego".into(),
            text: "package custody.gate\n\ndeny contains v if some v in data.custody.lib.violations\n".into(),
        }],
        json!({"custody": {"config": {"signers": {"keys": ["ab"], "threshold": 1}, "provenance": {"required": true}}}}),
    )
    .unwrap();
    assert_eq!(p.time_limit(), TimeLimit::DEFAULT);
    let mut doc = input("app");
    let evidence: Vec<_> = (0..200)
        .map(|i| json!({"source": format!("e{i}.json"), "bundle_digest": format!("sha256:{i:064}"), "kind": "signature",
            "predicate_type": null, "statement": null,
            "signer": {"kind": "key", "label": "cd", "key_id": "cd", "algorithm": "ecdsa-p256", "key_bits": 256, "identity": null, "issuer": null, "claims": {}},
            "tlog": [], "logged": false, "times": []}))
        .collect();
    doc["evidence"] = json!(evidence);
    let eval = p.evaluate(&doc).unwrap();
    assert!(eval.timed_out.is_none());
    let codes: Vec<&str> = eval.denies.iter().map(|f| f.code.as_str()).collect();
    assert!(codes.contains(&"signers-below-threshold"), "{codes:?}");
}
