//! `cargo bench -p custody-policy --bench eval`: the built-in policy (every check of
//! data.custody.lib switched on) over a realistic input (signature, SLSA provenance, rebuild
//! attestation), evaluated the way the gate does it. Prints p50/p90/p99 and mean per
//! evaluation, for the input as JSON (converted each time, like the CLI) and pre-converted
//! (like the server's cache-miss path).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use custody_policy::{Policy, PolicyFile};
use serde_json::json;

const KEY: &str = "78b6f3497eeea4c9708d65e411c4ea3fd63a32db6d1fd6b686b374349480f39b";
/// An independent rebuilder (a rebuild signed by the builder's own key does not count).
const REBUILDER: &str = "5e2a0c3b9d7f41e6a8c2b4d6f8e0a1c3b5d7f9e1a3c5e7f9b1d3f5a7c9e1b3d5";

fn policy() -> Policy {
    let gate = "package custody.gate\n\ndeny contains v if some v in data.custody.lib.violations\n";
    Policy::from_files(
        vec![PolicyFile {
            path: "gate.rego".into(),
            text: gate.into(),
        }],
        policy_data(),
    )
    .unwrap()
}

fn policy_data() -> serde_json::Value {
    json!({"custody": {"config": {
        "signers": {"keys": [KEY, REBUILDER], "threshold": 1},
        "provenance": {"required": true, "builders": ["https://custody.dev/builder/*"],
            "repositories": ["https://github.com/acme/*"], "refs": ["refs/heads/main", "refs/tags/v*"],
            "clean": true, "hermetic": true, "pinned": true, "max_age_days": 30},
        "reproducible": true, "tlog": true,
        "required_attestations": ["https://slsa.dev/provenance/v1"],
        "min_rsa_bits": 3072, "deny_rejected": true,
        "stages": {"production": {"provenance": {"max_age_days": 14}}}
    }}})
}

fn input() -> serde_json::Value {
    let signer = json!({"kind": "key", "label": KEY, "key_id": KEY, "algorithm": "ecdsa-p256", "key_bits": 256, "identity": null, "issuer": null, "claims": {}});
    let tlog = json!([{"log_id": "ab", "log_index": 1234, "integrated_time": null}]);
    let provenance = json!({"_type": "https://in-toto.io/Statement/v1", "subject": [{"name": "app", "digest": {"sha256": "00"}}],
        "predicateType": "https://slsa.dev/provenance/v1", "predicate": {
        "buildDefinition": {"buildType": "https://custody.dev/build/v1",
            "externalParameters": {"command": ["make"], "hermetic": true,
                "source": {"repository": "https://github.com/acme/app", "commit": "abc", "ref": "refs/heads/main", "dirty": false}},
            "internalParameters": {"pinning": {"findings": 0}},
            "resolvedDependencies": [{"uri": "git+https://github.com/acme/app@refs/heads/main", "digest": {"gitCommit": "abc"}}]},
        "runDetails": {"builder": {"id": "https://custody.dev/builder/ci-1"}, "metadata": {"finishedOn": "2026-11-20T00:00:00Z"}}}});
    let rebuilder = json!({"kind": "key", "label": REBUILDER, "key_id": REBUILDER, "algorithm": "ecdsa-p256", "key_bits": 256, "identity": null, "issuer": null, "claims": {}});
    let rebuild = json!({"_type": "https://in-toto.io/Statement/v1", "subject": [{"name": "app", "digest": {"sha256": "00"}}], "predicateType": "urn:custody:predicate:rebuild:v1",
        "predicate": {"result": "match", "subjects": [{"name": "app", "recorded": "00", "rebuilt": "00", "match": true}]}});
    json!({
        "artifact": {"digest": "sha256:00", "name": "app"},
        "environment": {"name": "prod", "stage": "production"},
        "time": "2026-11-26T00:00:00Z",
        "evidence": [
            {"source": "app.sigstore.json", "bundle_digest": "sha256:01", "kind": "signature", "predicate_type": null, "statement": null, "signer": signer, "tlog": tlog, "logged": true, "times": []},
            {"source": "app.intoto.sigstore.json", "bundle_digest": "sha256:02", "kind": "attestation", "predicate_type": "https://slsa.dev/provenance/v1", "statement": provenance, "signer": signer, "tlog": tlog, "logged": true, "times": []},
            {"source": "app.rebuild.sigstore.json", "bundle_digest": "sha256:03", "kind": "attestation", "predicate_type": "urn:custody:predicate:rebuild:v1", "statement": rebuild, "signer": rebuilder, "tlog": tlog, "logged": true, "times": []}
        ],
        "rejected": []
    })
}

/// The starter policy `custody policy init` writes: trusted signer, provenance, clean tree.
fn starter_policy() -> Policy {
    Policy::from_files(
        vec![PolicyFile {
            path: "gate.rego".into(),
            text:
                "package custody.gate\n\ndeny contains v if some v in data.custody.lib.violations\n"
                    .into(),
        }],
        json!({"custody": {"config": {"signers": {"keys": [KEY], "threshold": 1},
            "provenance": {"required": true, "clean": true},
            "stages": {"production": {"provenance": {"max_age_days": 90}}}}}}),
    )
    .unwrap()
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let q = |p: f64| samples[((samples.len() as f64 - 1.0) * p) as usize];
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "{name:<34} n={:<6} p50 {:>8.1?}  p90 {:>8.1?}  p99 {:>8.1?}  mean {:>8.1?}",
        samples.len(),
        q(0.5),
        q(0.9),
        q(0.99),
        mean
    );
}

fn main() {
    let policy = policy();
    let doc = input();
    let eval = policy.evaluate(&doc).unwrap();
    assert!(
        eval.denies.is_empty(),
        "the benchmark input must pass: {:?}",
        eval.denies
    );
    let mut denied = doc.clone();
    denied["evidence"].as_array_mut().unwrap().truncate(1);
    assert!(!policy.evaluate(&denied).unwrap().denies.is_empty());
    let n = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5000usize);
    // `CUSTODY_BENCH_ONLY=starter|full`: only N evaluations of that policy (pre-converted
    // input), no report: for instruction counts, e.g. the difference between
    // `valgrind --tool=callgrind <bench binary> 1001` and `... 1`, divided by 1000.
    if let Ok(only) = std::env::var("CUSTODY_BENCH_ONLY") {
        let chosen = if only == "full" {
            policy
        } else {
            starter_policy()
        };
        let value = regorus::Value::from(doc);
        for _ in 0..n {
            chosen.evaluate_value(value.clone()).unwrap();
        }
        return;
    }
    // `CUSTODY_BENCH_LIMIT=ROUNDS`: what the time limit costs, measured A/B in this one
    // process: each round times N evaluations with the limit and N without (alternating which
    // goes first), for the starter and the full policy, and prints both p50s and their ratio.
    if let Some(rounds) = std::env::var("CUSTODY_BENCH_LIMIT")
        .ok()
        .and_then(|r| r.parse::<usize>().ok())
    {
        bench_limit(&starter_policy(), &policy, &doc, n, rounds);
        return;
    }
    for _ in 0..200 {
        policy.evaluate(&doc).unwrap();
    }
    let time = |f: &dyn Fn()| {
        (0..n)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect::<Vec<_>>()
    };
    let value = regorus::Value::from(doc.clone());
    println!(
        "engine: {}",
        if policy.uses_vm() {
            "regorus RVM (compiled)"
        } else {
            "regorus interpreter"
        }
    );
    report(
        "allow, interpreter",
        time(&|| {
            policy.eval_interpreter(value.clone()).unwrap();
        }),
    );
    report(
        "allow, input pre-converted",
        time(&|| {
            policy.evaluate_value(value.clone()).unwrap();
        }),
    );
    report(
        "allow, input from JSON",
        time(&|| {
            policy.evaluate(&doc).unwrap();
        }),
    );
    report(
        "deny (4 findings), from JSON",
        time(&|| {
            policy.evaluate(&denied).unwrap();
        }),
    );
    let starter = starter_policy();
    assert!(starter.evaluate(&doc).unwrap().denies.is_empty());
    report(
        "starter policy, allow",
        time(&|| {
            starter.evaluate_value(value.clone()).unwrap();
        }),
    );
    report(
        "starter policy, deny",
        time(&|| {
            starter.evaluate(&denied).unwrap();
        }),
    );
    if std::env::var_os("CUSTODY_BENCH_PARTS").is_some() {
        for (name, rule) in [
            ("trivial", "deny contains \"x\" if false"),
            (
                "resolved base direct",
                "deny contains \"x\" if { data.custody.resolved.base.tlog == 7 }",
            ),
            (
                "5 const rules",
                "a := 1\nb := 2\nc := 3\nd := 4\ne := 5\ndeny contains \"x\" if { a + b + c + d + e == 7 }",
            ),
            (
                "5 input rules",
                "a := input.time\nb := input.artifact\nc := input.environment\nd := input.rejected\ne := input.evidence\ndeny contains \"x\" if { [a, b, c, d, e] == 7 }",
            ),
            (
                "1 func x3",
                "f(e) if e.logged\ndeny contains \"x\" if { [e | some e in input.evidence; f(e)] == 7 }",
            ),
            (
                "inline x3",
                "deny contains \"x\" if { [e | some e in input.evidence; e.logged] == 7 }",
            ),
            (
                "config",
                "deny contains \"x\" if { data.custody.lib.config.tlog == 7 }",
            ),
            (
                "trusted_evidence",
                "deny contains \"x\" if { count(data.custody.lib.trusted_evidence) == 7 }",
            ),
            (
                "provenance",
                "deny contains \"x\" if { count(data.custody.lib.provenance) == 7 }",
            ),
            (
                "trusted_signers",
                "deny contains \"x\" if { count(data.custody.lib.trusted_signers(data.custody.lib.config.signers)) == 7 }",
            ),
            (
                "reproduced",
                "deny contains \"x\" if { data.custody.lib.reproduced == 7 }",
            ),
            (
                "fresh",
                "deny contains \"x\" if { data.custody.lib.any_fresh_provenance == 7 }",
            ),
            (
                "ref",
                "deny contains \"x\" if { data.custody.lib.any_provenance_ref == 7 }",
            ),
            (
                "builder",
                "deny contains \"x\" if { data.custody.lib.provenance_from_builder(data.custody.lib.config.provenance.builders) == 7 }",
            ),
            (
                "violations",
                "deny contains v if { some v in data.custody.lib.violations }",
            ),
        ] {
            let p = Policy::from_files(
                vec![PolicyFile {
                    path: "g.rego".into(),
                    text: format!("package custody.gate\nimport data.custody.lib\n{rule}\n"),
                }],
                policy_data(),
            )
            .unwrap();
            let v = regorus::Value::from(doc.clone());
            report(
                name,
                time(&|| {
                    p.evaluate_value(v.clone()).unwrap();
                }),
            );
        }
    }
}

/// The time limit's cost: p50 with (A) and without (B) the limit, interleaved.
fn bench_limit(starter: &Policy, full: &Policy, doc: &serde_json::Value, n: usize, rounds: usize) {
    let value = regorus::Value::from(doc.clone());
    let p50 = |p: &Policy| {
        for _ in 0..200 {
            p.evaluate_value(value.clone()).unwrap();
        }
        let mut t: Vec<Duration> = (0..n)
            .map(|_| {
                let s = Instant::now();
                p.evaluate_value(value.clone()).unwrap();
                s.elapsed()
            })
            .collect();
        t.sort();
        t[t.len() / 2].as_nanos() as f64 / 1000.0
    };
    println!("time limit A/B: {rounds} rounds x {n} evaluations per side (p50, µs)");
    println!("| round | policy | with limit | without | ratio |");
    for (name, limited) in [("starter", starter), ("full", full)] {
        assert!(limited.uses_vm());
        let unlimited = limited.dangerously_without_time_limit();
        let mut ratios = Vec::new();
        for round in 0..rounds {
            let (a, b) = if round % 2 == 0 {
                let a = p50(limited);
                (a, p50(&unlimited))
            } else {
                let b = p50(&unlimited);
                (p50(limited), b)
            };
            ratios.push(a / b);
            println!("| {round} | {name} | {a:.1} | {b:.1} | {:.3} |", a / b);
        }
        ratios.sort_by(f64::total_cmp);
        println!(
            "{name}: median ratio with/without {:.3} over {rounds} rounds",
            ratios[ratios.len() / 2]
        );
    }
}
