//! The input document built from real, signed bundles: verified evidence in, tampered or
//! untrusted evidence rejected with its code, and the document matches
//! `docs/policy-input.schema.json` (so the documentation cannot drift from the code).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::Utc;
use common::{check, schema, signed_provenance};
use custody_core::digest::Sha256Digest;
use custody_core::keys::{KeyAlgorithm, SigningKey};
use custody_core::verify::Artifact;
use custody_policy::input::{self, Candidate, EnvironmentRef, TrustSet};
use custody_policy::{ArtifactRef, Gate, Policy, PolicyFile};
use proptest::prelude::*;
use serde_json::json;

#[test]
fn verified_evidence_and_rejections_make_a_schema_valid_input() {
    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
    let other = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
    let artifact = Sha256Digest::of(b"app");
    let good = signed_provenance(&key, &artifact);
    let untrusted = signed_provenance(&other, &artifact);
    let mut tampered = good.clone();
    let at = tampered.len() / 2;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let candidates = vec![
        Candidate {
            source: "good.json".into(),
            bytes: good,
        },
        Candidate {
            source: "untrusted.json".into(),
            bytes: untrusted,
        },
        Candidate {
            source: "tampered.json".into(),
            bytes: tampered,
        },
        Candidate {
            source: "garbage.json".into(),
            bytes: b"{not json".to_vec(),
        },
    ];
    let trust = TrustSet {
        keys: vec![key.public_key()],
        root: None,
        root_digest: None,
    };
    let (evidence, rejected) =
        input::verify_evidence(&trust, Artifact::from_digest(artifact), &candidates);
    assert_eq!(evidence.len(), 1);
    assert_eq!(evidence[0].source, "good.json");
    assert_eq!(
        evidence[0].signer.key_id.as_deref(),
        Some(key.public_key().key_id().to_string().as_str())
    );
    assert_eq!(
        evidence[0].statement.as_ref().unwrap()["predicate"]["runDetails"]["builder"]["id"],
        "https://custody.dev/builder/ci"
    );
    let rejected_sources: Vec<&str> = rejected.iter().map(|r| r.source.as_str()).collect();
    assert_eq!(
        rejected_sources,
        ["untrusted.json", "tampered.json", "garbage.json"]
    );
    assert_eq!(rejected[0].code, "signature.invalid");
    assert!(rejected[2].code.starts_with("bundle."), "{:?}", rejected[2]);

    let doc = input::input_document(
        &ArtifactRef {
            digest: Some(artifact.to_string()),
            name: Some("app.bin".into()),
            image: None,
        },
        Some(&EnvironmentRef {
            name: "prod".into(),
            stage: Some("production".into()),
            approvals: None,
        }),
        Utc::now(),
        &evidence,
        &rejected,
    );
    let s = schema();
    check(&s, &s, &doc, "input").unwrap();
    // The checker is not vacuous.
    let mut bad = doc.clone();
    bad["evidence"][0]["signer"]["surprise"] = json!(1);
    assert!(check(&s, &s, &bad, "input").is_err());
}

fn gate(key: &SigningKey) -> Gate {
    let data = json!({"custody": {"config": {
        "signers": {"keys": [key.public_key().key_id().to_string()]},
        "provenance": {"builders": ["https://custody.dev/builder/*"], "refs": ["refs/heads/main"], "clean": true, "hermetic": true}}}});
    let policy = Policy::from_files(
        vec![PolicyFile {
            path: "gate.rego".into(),
            text:
                "package custody.gate\n\ndeny contains v if some v in data.custody.lib.violations\n"
                    .into(),
        }],
        data,
    )
    .unwrap();
    Gate {
        policy,
        trust: TrustSet {
            keys: vec![key.public_key()],
            root: None,
            root_digest: None,
        },
    }
}

fn request(artifact: &Sha256Digest) -> custody_policy::gate::Request<'static> {
    custody_policy::gate::Request {
        artifact: ArtifactRef {
            digest: Some(artifact.to_string()),
            name: None,
            image: None,
        },
        bytes: None,
        environment: None,
        time: Utc::now(),
        ..Default::default()
    }
}

#[test]
fn the_gate_allows_the_genuine_bundle() {
    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
    let artifact = Sha256Digest::of(b"app");
    let bundle = signed_provenance(&key, &artifact);
    let g = gate(&key);
    let v = g
        .decide(
            &request(&artifact),
            &[Candidate {
                source: "b".into(),
                bytes: bundle,
            }],
        )
        .unwrap();
    assert!(v.allowed, "{:?}", v.denies);
    let v = g
        .decide(&request(&Sha256Digest::of(b"other")), &[])
        .unwrap();
    assert!(!v.allowed);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Fail closed: any single-byte change to a genuine bundle is either rejected or (when
    /// the change is semantically invisible, e.g. JSON whitespace) still verifies; it never
    /// panics, and the gate never allows on a bundle that did not verify.
    #[test]
    fn mutated_bundles_never_pass_unverified(pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let key = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let artifact = Sha256Digest::of(b"app");
        let mut bundle = signed_provenance(&key, &artifact);
        let i = pos.index(bundle.len());
        prop_assume!(bundle[i] != byte);
        bundle[i] = byte;
        let g = gate(&key);
        let cands = [Candidate { source: "m".into(), bytes: bundle }];
        let v = g.decide(&request(&artifact), &cands).unwrap();
        prop_assert_eq!(v.allowed, v.rejected.is_empty() && v.evidence.len() == 1);
    }
}

/// regorus's compiled VM and its interpreter agree on every decision the gate makes for
/// real, verified inputs (the VM is the fast path; the interpreter is the reference).
#[test]
fn the_compiled_vm_agrees_with_the_interpreter() {
    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
    let g = gate(&key);
    assert!(
        g.policy.uses_vm(),
        "the built-in library should compile for the VM"
    );
    let artifact = Sha256Digest::of(b"app");
    let good = signed_provenance(&key, &artifact);
    let other = signed_provenance(
        &SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap(),
        &artifact,
    );
    let trust = TrustSet {
        keys: vec![key.public_key()],
        root: None,
        root_digest: None,
    };
    for cands in [
        vec![],
        vec![good.clone()],
        vec![other.clone()],
        vec![good, other, b"junk".to_vec()],
    ] {
        let cands: Vec<Candidate> = cands
            .into_iter()
            .enumerate()
            .map(|(i, bytes)| Candidate {
                source: format!("b{i}"),
                bytes,
            })
            .collect();
        let (evidence, rejected) =
            input::verify_evidence(&trust, Artifact::from_digest(artifact), &cands);
        for env in [
            None,
            Some(EnvironmentRef {
                name: "prod".into(),
                stage: Some("production".into()),
                approvals: None,
            }),
        ] {
            let doc = input::input_document(
                &ArtifactRef {
                    digest: Some(artifact.to_string()),
                    name: None,
                    image: None,
                },
                env.as_ref(),
                Utc::now(),
                &evidence,
                &rejected,
            );
            let value = regorus::Value::from(doc.clone());
            let interpreted = g.policy.eval_interpreter(value.clone()).unwrap();
            let vm = g.policy.evaluate_value(value).unwrap();
            let codes = |v: &regorus::Value| {
                let mut c: Vec<String> = serde_json::to_value(v)
                    .unwrap()
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|f| f["code"].as_str().unwrap_or("").to_string())
                    .collect();
                c.sort();
                c
            };
            let vm_codes: Vec<String> = vm.denies.iter().map(|f| f.code.clone()).collect();
            assert_eq!(codes(&interpreted.0), vm_codes, "{doc}");
        }
    }
}

/// regorus's VM does not fall through to `else` when a complete rule's `x := <undefined>`
/// fails (its interpreter does). custody checks the VM against the interpreter on a sparse
/// input at load, so a policy using that pattern is evaluated by the interpreter and gets
/// the right answer; the built-in library avoids the pattern and keeps the VM.
#[test]
fn a_policy_the_vm_gets_wrong_is_evaluated_by_the_interpreter() {
    let text = "package custody.gate\n\nstage := s if { s := input.environment.stage } else := \"none\"\n\ndeny contains msg if { stage == \"none\"; msg := \"no stage\" }\n";
    let policy = Policy::from_files(
        vec![PolicyFile {
            path: "gate.rego".into(),
            text: text.into(),
        }],
        json!({}),
    )
    .unwrap();
    let no_stage = json!({"artifact": {"digest": "sha256:00", "name": "a"}, "environment": {"name": "prod"},
        "time": "2026-01-01T00:00:00Z", "evidence": [], "rejected": []});
    let denies = policy.evaluate(&no_stage).unwrap().denies;
    assert_eq!(denies.len(), 1, "{denies:?}");
    assert_eq!(denies[0].message, "no stage");
    let mut staged = no_stage.clone();
    staged["environment"]["stage"] = json!("production");
    assert!(policy.evaluate(&staged).unwrap().denies.is_empty());
    // The built-in library keeps the VM, and agrees with the interpreter without a stage.
    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
    let g = gate(&key);
    assert!(g.policy.uses_vm());
    let vm = g.policy.evaluate(&no_stage).unwrap();
    let (interpreted, _) = g
        .policy
        .eval_interpreter(regorus::Value::from(no_stage.clone()))
        .unwrap();
    let codes: std::collections::BTreeSet<String> =
        vm.denies.iter().map(|f| f.code.clone()).collect();
    let want: std::collections::BTreeSet<String> = interpreted
        .as_set()
        .unwrap()
        .iter()
        .map(|v| v["code"].as_string().unwrap().to_string())
        .collect();
    assert_eq!(codes, want);
    assert!(codes.contains("provenance-missing"), "{codes:?}");
}

/// Checks grouped behind a per-stage switch (resolved at load) fire in the stage that turns
/// them on and only there, on the VM as on the interpreter.
#[test]
fn grouped_checks_follow_the_stage_that_turns_them_on() {
    let key = "78b6f3497eeea4c9708d65e411c4ea3fd63a32db6d1fd6b686b374349480f39b";
    let policy = Policy::from_files(
        vec![PolicyFile {
            path: "gate.rego".into(),
            text: "package custody.gate\n\ndeny contains v if some v in data.custody.lib.violations\n".into(),
        }],
        json!({"custody": {"config": {"signers": {"keys": [key]}, "provenance": {"required": false},
            "stages": {"production": {"tlog": true, "provenance": {"builders": ["https://ci.example/*"]}},
                       "staging": {"provenance": {"hermetic": true}}}}}}),
    )
    .unwrap();
    assert!(policy.uses_vm());
    let signer = json!({"kind": "key", "label": key, "key_id": key, "algorithm": "ecdsa-p256", "key_bits": 256, "identity": null, "issuer": null, "claims": {}});
    let provenance = json!({"_type": "https://in-toto.io/Statement/v1", "subject": [], "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {"buildDefinition": {"buildType": "x", "externalParameters": {}}, "runDetails": {"builder": {"id": "https://other.example/b"}}}});
    let input = |stage: Option<&str>| {
        let mut env = json!({"name": "e"});
        if let Some(s) = stage {
            env["stage"] = json!(s);
        }
        json!({"artifact": {"digest": "sha256:00", "name": "a"}, "environment": env, "time": "2026-01-01T00:00:00Z",
            "evidence": [{"source": "p", "bundle_digest": "sha256:01", "kind": "attestation", "predicate_type": "https://slsa.dev/provenance/v1",
                "statement": provenance, "signer": signer, "tlog": [], "logged": false, "times": []}], "rejected": []})
    };
    let codes = |stage: Option<&str>| {
        let doc = input(stage);
        let vm: std::collections::BTreeSet<String> = policy
            .evaluate(&doc)
            .unwrap()
            .denies
            .into_iter()
            .map(|f| f.code)
            .collect();
        let (interpreted, _) = policy.eval_interpreter(regorus::Value::from(doc)).unwrap();
        let reference: std::collections::BTreeSet<String> = interpreted
            .as_set()
            .unwrap()
            .iter()
            .map(|v| v["code"].as_string().unwrap().to_string())
            .collect();
        assert_eq!(vm, reference, "stage {stage:?}");
        vm.into_iter().collect::<Vec<_>>()
    };
    assert_eq!(
        codes(Some("production")),
        ["not-logged", "provenance-builder"]
    );
    assert_eq!(codes(Some("staging")), ["provenance-not-hermetic"]);
    assert!(codes(None).is_empty());
    assert!(codes(Some("other")).is_empty());
}
