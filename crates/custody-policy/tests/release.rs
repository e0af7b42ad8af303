//! Release facts in the gate, over real signed bundles: principals named in the input,
//! revoked keys, builders and artifacts, retired keys, and approvals with separation of duties.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use common::{
    approval_statement, check, codes, id, key, schema, signed_provenance, signed_statement,
};
use custody_core::digest::Sha256Digest;
use custody_core::keys::SigningKey;
use custody_core::verify::Artifact;
use custody_policy::input::{self, InputParts};
use custody_policy::{
    ApprovalsRef, ArtifactRef, Candidate, EnvironmentRef, Gate, Policy, PolicyFile, PromotionRef,
    Request, RetiredKey, RevokedTarget, TrustSet, Verdict,
};
use serde_json::{Value, json};

/// The library's denies and warnings.
const GATE_POLICY: &str = "package custody.gate\n\ndeny contains v if some v in data.custody.lib.violations\n\nwarn contains v if some v in data.custody.lib.warnings\n";

struct World {
    ci: SigningKey,
    alice: SigningKey,
    bob: SigningKey,
    carol: SigningKey,
    mallory: SigningKey,
    artifact: Sha256Digest,
    now: DateTime<Utc>,
}

impl World {
    fn new() -> World {
        World {
            ci: key(),
            alice: key(),
            bob: key(),
            carol: key(),
            mallory: key(),
            artifact: Sha256Digest::of(b"app"),
            now: "2026-11-26T12:00:00Z".parse().unwrap(),
        }
    }

    /// Every key verifies; only `ci` (and `mallory`, whose key is about to be stolen) are
    /// trusted signers for provenance. Approvals count by principal, not by this list.
    fn gate(&self) -> Gate {
        let data = json!({"custody": {"config": {
            "signers": {"keys": [id(&self.ci), id(&self.mallory)]},
            "provenance": {"builders": ["https://custody.dev/builder/*"]}}}});
        let policy = Policy::from_files(
            vec![PolicyFile {
                path: "gate.rego".into(),
                text: GATE_POLICY.into(),
            }],
            data,
        )
        .unwrap();
        Gate {
            policy,
            trust: TrustSet {
                keys: [&self.ci, &self.alice, &self.bob, &self.carol, &self.mallory]
                    .iter()
                    .map(|k| k.public_key())
                    .collect(),
                root: None,
                root_digest: None,
            },
        }
    }

    fn principals(&self) -> Arc<BTreeMap<String, String>> {
        Arc::new(BTreeMap::from([
            (id(&self.ci), "ci-bot".to_string()),
            (id(&self.alice), "alice".to_string()),
            (id(&self.bob), "bob".to_string()),
            (id(&self.carol), "carol".to_string()),
        ]))
    }

    fn request(&self) -> Request<'static> {
        Request {
            artifact: ArtifactRef {
                digest: Some(self.artifact.to_string()),
                name: Some("app.bin".into()),
                image: None,
            },
            time: self.now,
            principals: self.principals(),
            ..Default::default()
        }
    }

    /// A request to promote into prod, which takes two of alice, bob and carol, at most 7 days old.
    fn promotion(&self, requested_by: &str) -> Request<'static> {
        Request {
            environment: Some(EnvironmentRef {
                name: "prod".into(),
                stage: Some("production".into()),
                approvals: Some(ApprovalsRef {
                    required: 2,
                    group: "release-approvers".into(),
                    members: vec!["alice".into(), "bob".into(), "carol".into()],
                    max_age_seconds: Some(7 * 86400),
                }),
            }),
            promotion: Some(PromotionRef {
                requested_by: requested_by.into(),
                from: Some("staging".into()),
            }),
            ..self.request()
        }
    }

    fn provenance(&self, key: &SigningKey, source: &str) -> Candidate {
        Candidate {
            source: source.into(),
            bytes: signed_provenance(key, &self.artifact),
        }
    }

    fn approval(&self, key: &SigningKey, env: &str, age: Duration) -> Candidate {
        let at = (self.now - age).to_rfc3339_opts(SecondsFormat::Secs, true);
        Candidate {
            source: format!("approval-{}", &id(key)[..8]),
            bytes: signed_statement(key, &approval_statement(&self.artifact, env, "x", &at)),
        }
    }
}

/// The input document the gate builds for `request`, the same way [`Gate::decide`] does.
fn document(g: &Gate, request: &Request<'_>, candidates: &[Candidate]) -> Value {
    let digest_text = request.artifact.digest.as_deref().unwrap();
    let artifact = Artifact::from_digest(digest_text.parse().unwrap());
    let (mut evidence, mut rejected) = input::verify_evidence(&g.trust, artifact, candidates);
    input::attach_principals(&mut evidence, &request.principals);
    let evidence = input::apply_revocations(evidence, &mut rejected, &request.revocations);
    let evidence = input::apply_retirements(evidence, &mut rejected, &request.retired);
    InputParts {
        artifact: &request.artifact,
        artifact_revoked: input::artifact_revocation(digest_text, &request.revocations),
        environment: request.environment.as_ref(),
        promotion: request.promotion.as_ref(),
        release: request.release.as_ref(),
        time: request.time,
        evidence: &evidence,
        rejected: &rejected,
    }
    .document()
}

/// Decides, and checks on the way that the input matches the schema and that regorus's VM
/// and its interpreter agree on it.
fn decide(g: &Gate, request: &Request<'_>, candidates: &[Candidate]) -> Verdict {
    let doc = document(g, request, candidates);
    let s = schema();
    check(&s, &s, &doc, "input").unwrap();
    assert!(g.policy.uses_vm(), "the library should compile for the VM");
    let value = regorus::Value::from(doc.clone());
    let (denies, warnings) = g.policy.eval_interpreter(value.clone()).unwrap();
    let sorted_codes = |findings: &regorus::Value| {
        let mut codes: Vec<String> = serde_json::to_value(findings)
            .unwrap()
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|f| f["code"].as_str().unwrap_or("").to_string())
            .collect();
        codes.sort();
        codes
    };
    let vm = g.policy.evaluate_value(value).unwrap();
    let vm_codes = |findings: &[custody_policy::Finding]| {
        let mut codes: Vec<String> = findings.iter().map(|f| f.code.clone()).collect();
        codes.sort();
        codes
    };
    assert_eq!(sorted_codes(&denies), vm_codes(&vm.denies), "{doc}");
    assert_eq!(sorted_codes(&warnings), vm_codes(&vm.warnings), "{doc}");
    g.decide(request, candidates).unwrap()
}

#[test]
fn evidence_signed_by_a_revoked_key_is_rejected_and_denied() {
    let w = World::new();
    let g = w.gate();
    let cands = [
        w.provenance(&w.ci, "ci.json"),
        w.provenance(&w.mallory, "m.json"),
    ];
    let v = decide(&g, &w.request(), &cands);
    assert!(v.allowed, "{:?}", v.denies);

    let stolen = id(&w.mallory);
    let request = Request {
        // Revocation targets match key ids whatever their case.
        revocations: Arc::new(vec![RevokedTarget::new(
            3,
            format!("key:{}", stolen.to_uppercase()),
            "key stolen",
        )]),
        ..w.request()
    };
    let v = decide(&g, &request, &cands);
    assert!(!v.allowed);
    let sources: Vec<&str> = v.evidence.iter().map(|e| e.source.as_str()).collect();
    assert_eq!(sources, ["ci.json"], "revoked evidence never counts");
    assert_eq!(v.rejected.len(), 1);
    let r = &v.rejected[0];
    assert_eq!((r.source.as_str(), r.code.as_str()), ("m.json", "revoked"));
    assert_eq!(
        r.reason,
        format!(
            "revoked: key {} (revocation #3: key stolen)",
            stolen.to_uppercase()
        )
    );
    let revoked = r.revoked.as_deref().unwrap();
    assert_eq!(revoked.signer, stolen);
    assert_eq!(revoked.revocation.id, 3);
    // In JSON (input.rejected, the verdict) the two are fields of the rejection.
    let r_json = serde_json::to_value(r).unwrap();
    assert_eq!(r_json["signer"], json!(stolen));
    assert_eq!(
        r_json["revocation"]["target"],
        json!(format!("key:{}", stolen.to_uppercase()))
    );
    assert_eq!(codes(&v), ["evidence-revoked"]);
    let f = &v.denies[0];
    assert_eq!(f.signer.as_deref(), Some(stolen.as_str()));
    assert_eq!(f.evidence.as_deref(), Some("m.json"));
    assert!(
        f.message.contains("revocation #3: key stolen"),
        "{}",
        f.message
    );
    assert!(f.message.contains(&w.artifact.to_string()), "{}", f.message);
    assert_eq!(
        f.location.as_ref().map(|l| l.file.as_str()),
        Some(custody_policy::engine::LIB_PATH)
    );
}

#[test]
fn provenance_from_a_revoked_builder_is_rejected() {
    let w = World::new();
    let g = w.gate();
    let request = Request {
        revocations: Arc::new(vec![
            RevokedTarget::new(1, "builder:https://elsewhere.example/builder", "unrelated"),
            RevokedTarget::new(
                2,
                "builder:https://custody.dev/builder/ci",
                "runner compromised",
            ),
        ]),
        ..w.request()
    };
    let v = decide(&g, &request, &[w.provenance(&w.ci, "ci.json")]);
    assert!(v.evidence.is_empty());
    assert_eq!(
        v.rejected[0].reason,
        "revoked: builder https://custody.dev/builder/ci (revocation #2: runner compromised)"
    );
    let mut c = codes(&v);
    c.sort();
    // Nothing trusted is left: the revoked provenance counts for nothing.
    assert_eq!(
        c,
        [
            "evidence-revoked",
            "provenance-missing",
            "signers-below-threshold"
        ]
    );
}

#[test]
fn a_revoked_artifact_is_denied() {
    let w = World::new();
    let g = w.gate();
    let request = Request {
        revocations: Arc::new(vec![RevokedTarget::new(
            7,
            format!("digest:{}", w.artifact),
            "backdoored dependency",
        )]),
        ..w.request()
    };
    let cands = [w.provenance(&w.ci, "ci.json")];
    let doc = document(&g, &request, &cands);
    assert_eq!(
        doc["artifact"]["revoked"],
        json!({"id": 7, "target": format!("digest:{}", w.artifact), "reason": "backdoored dependency"})
    );
    let v = decide(&g, &request, &cands);
    assert_eq!(codes(&v), ["artifact-revoked"]);
    assert_eq!(v.evidence.len(), 1, "the evidence itself is not revoked");
    // Another artifact's revocation does not touch this one.
    let other = Request {
        revocations: Arc::new(vec![RevokedTarget::new(
            7,
            format!("digest:{}", Sha256Digest::of(b"other")),
            "x",
        )]),
        ..w.request()
    };
    assert!(decide(&g, &other, &cands).allowed);
}

#[test]
fn principal_names_appear_in_the_input() {
    let w = World::new();
    let g = w.gate();
    let cands = [
        w.provenance(&w.ci, "ci.json"),
        w.approval(&w.alice, "prod", Duration::hours(1)),
        w.provenance(&w.mallory, "m.json"),
    ];
    let doc = document(&g, &w.promotion("bob"), &cands);
    let principals: Vec<&Value> = doc["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["signer"]["principal"])
        .collect();
    assert_eq!(
        principals,
        [&json!("ci-bot"), &json!("alice"), &Value::Null]
    );
    assert_eq!(
        doc["promotion"],
        json!({"requested_by": "bob", "from": "staging"})
    );
    assert_eq!(
        doc["environment"]["approvals"],
        json!({"required": 2, "group": "release-approvers", "members": ["alice", "bob", "carol"], "max_age_seconds": 604800})
    );
    // Without principals (the CLI), every signer's principal is null.
    let plain = document(&g, &w.request(), &cands[..1]);
    let mut bare = w.request();
    bare.principals = Arc::default();
    let bare = document(&g, &bare, &cands[..1]);
    assert_eq!(plain["evidence"][0]["signer"]["principal"], "ci-bot");
    assert_eq!(bare["evidence"][0]["signer"]["principal"], Value::Null);
    assert_eq!(bare["promotion"], Value::Null);
    // The verdict names them too.
    let v = g.decide(&w.request(), &cands[..1]).unwrap();
    assert_eq!(v.evidence[0].principal.as_deref(), Some("ci-bot"));
}

#[test]
fn approvals_from_two_distinct_members_allow_one_denies() {
    let w = World::new();
    let g = w.gate();
    let prov = w.provenance(&w.ci, "ci.json");
    let alice = w.approval(&w.alice, "prod", Duration::hours(1));
    let bob = w.approval(&w.bob, "prod", Duration::hours(2));

    let v = decide(
        &g,
        &w.promotion("dave"),
        &[prov.clone(), alice.clone(), bob.clone()],
    );
    assert!(v.allowed, "{:?}", v.denies);

    let v = decide(&g, &w.promotion("dave"), &[prov.clone(), alice.clone()]);
    assert_eq!(codes(&v), ["approvals-missing"]);
    let f = &v.denies[0];
    assert!(f.message.contains("1 of 2 approvals"), "{}", f.message);
    assert_eq!(
        f.fix.as_deref(),
        Some(
            format!(
                "ask 1 more members of group release-approvers to run: custody approve {} --env prod --key <their key>",
                w.artifact
            )
            .as_str()
        )
    );
    assert_eq!(f.details["approvals"]["counted"], json!(["alice"]));

    // The same approval twice is one approval.
    let v = decide(
        &g,
        &w.promotion("dave"),
        &[prov.clone(), alice.clone(), alice.clone()],
    );
    assert_eq!(codes(&v), ["approvals-missing"]);
}

#[test]
fn approvals_exclude_the_promoter_the_builder_stale_and_other_environments() {
    let w = World::new();
    let g = w.gate();
    let prov = w.provenance(&w.ci, "ci.json");
    let alice = w.approval(&w.alice, "prod", Duration::hours(1));
    let bob = w.approval(&w.bob, "prod", Duration::hours(1));
    let not_counted = |v: &Verdict| v.denies[0].details["approvals"]["not_counted"].clone();

    // bob asked for the promotion: his approval does not count.
    let v = decide(
        &g,
        &w.promotion("bob"),
        &[prov.clone(), alice.clone(), bob.clone()],
    );
    assert_eq!(codes(&v), ["approvals-missing"]);
    assert_eq!(not_counted(&v), json!(["bob: is the promoter"]));
    assert!(v.denies[0].message.contains("bob: is the promoter"));

    // carol signed the provenance (she built it): her approval does not count.
    let carol_built = w.provenance(&w.carol, "carol-build.json");
    let carol = w.approval(&w.carol, "prod", Duration::hours(1));
    let v = decide(
        &g,
        &w.promotion("dave"),
        &[prov.clone(), carol_built, alice.clone(), carol.clone()],
    );
    assert_eq!(not_counted(&v), json!(["carol: is the builder"]));

    // Nine days old, seven allowed.
    let stale = w.approval(&w.carol, "prod", Duration::days(9));
    let v = decide(
        &g,
        &w.promotion("dave"),
        &[prov.clone(), alice.clone(), stale],
    );
    assert_eq!(
        not_counted(&v),
        json!(["carol: approval is 9d old (max 7d)"])
    );

    // An approval for staging is not one for prod.
    let staging = w.approval(&w.carol, "staging", Duration::hours(1));
    let v = decide(
        &g,
        &w.promotion("dave"),
        &[prov.clone(), alice.clone(), staging],
    );
    assert_eq!(
        not_counted(&v),
        json!(["carol: approval is for environment staging, not prod"])
    );

    // mallory is no principal at all; ci-bot is one, but not in the group.
    let m = w.approval(&w.mallory, "prod", Duration::hours(1));
    let c = w.approval(&w.ci, "prod", Duration::hours(1));
    let v = decide(
        &g,
        &w.promotion("dave"),
        &[prov.clone(), alice.clone(), m, c],
    );
    // (not_counted is sorted; a key id may sort either side of "ci-bot".)
    let nc: Vec<String> = serde_json::from_value(not_counted(&v)).unwrap();
    let mut want = vec![
        format!("{}: not a known principal", id(&w.mallory)),
        "ci-bot: not in group release-approvers".to_string(),
    ];
    want.sort();
    assert_eq!(nc, want);

    // A revoked approver's approval is no approval.
    let revoked = Request {
        revocations: Arc::new(vec![RevokedTarget::new(
            9,
            format!("key:{}", id(&w.bob)),
            "left the company",
        )]),
        ..w.promotion("dave")
    };
    let v = decide(&g, &revoked, &[prov, alice, bob]);
    let mut c = codes(&v);
    c.sort();
    assert_eq!(c, ["approvals-missing", "evidence-revoked"]);
}

fn warning_codes(v: &Verdict) -> Vec<&str> {
    v.warnings.iter().map(|f| f.code.as_str()).collect()
}

fn retired(key: &SigningKey, cut: u64, successor: Option<&SigningKey>) -> RetiredKey {
    RetiredKey {
        // Retired key ids match whatever their case.
        key_id: id(key).to_uppercase(),
        cut,
        successor: successor.map(id),
        reason: "yearly rotation".into(),
    }
}

#[test]
fn an_unlogged_signature_by_a_retired_key_does_not_count_and_warns() {
    let w = World::new();
    let g = w.gate();
    let cands = [
        w.provenance(&w.ci, "ci.json"),
        w.provenance(&w.mallory, "m.json"),
    ];
    // mallory's key was rotated out (for ci's) when the log held 42 entries; m.json has no
    // verified log entry, so nothing shows it was signed before.
    let request = Request {
        retired: Arc::new(vec![retired(&w.mallory, 42, Some(&w.ci))]),
        ..w.request()
    };
    let v = decide(&g, &request, &cands);
    assert!(v.allowed, "what remains is enough: {:?}", v.denies);
    let sources: Vec<&str> = v.evidence.iter().map(|e| e.source.as_str()).collect();
    assert_eq!(sources, ["ci.json"]);
    assert_eq!(v.rejected.len(), 1);
    let r = &v.rejected[0];
    assert_eq!(
        (r.source.as_str(), r.code.as_str()),
        ("m.json", "key.retired")
    );
    assert_eq!(
        r.reason,
        format!(
            "signed by retired key {} (retired at log index 42, successor {}; yearly rotation), \
             and it has no verified log entry, and an unlogged signature by a retired key cannot \
             be shown to predate the retirement: re-sign with the successor key",
            id(&w.mallory),
            id(&w.ci)
        )
    );
    let detail = r.retired.as_deref().unwrap();
    assert_eq!(detail.signer, id(&w.mallory));
    assert_eq!(detail.retirement.cut, 42);
    assert!(r.revoked.is_none());
    // Not a deny; a warning naming the bundle, the signer and the successor.
    assert_eq!(codes(&v), Vec::<&str>::new());
    assert_eq!(warning_codes(&v), ["evidence-key-retired"]);
    let f = &v.warnings[0];
    assert_eq!(f.evidence.as_deref(), Some("m.json"));
    assert_eq!(f.signer.as_deref(), Some(id(&w.mallory).as_str()));
    assert!(f.message.starts_with("m.json for sha256:"), "{}", f.message);
    assert!(f.message.contains("signed by retired key"), "{}", f.message);
    let fix = f.fix.as_deref().unwrap();
    assert!(
        fix.contains(&format!("with the successor key {}", id(&w.ci))),
        "{fix}"
    );
    assert_eq!(
        f.location.as_ref().map(|l| l.file.as_str()),
        Some(custody_policy::engine::LIB_PATH)
    );

    // When the retired key's evidence was all there was, the ordinary rules deny.
    let request = Request {
        retired: Arc::new(vec![retired(&w.ci, 42, None)]),
        ..w.request()
    };
    let v = decide(&g, &request, &cands[..1]);
    assert!(!v.allowed);
    let mut c = codes(&v);
    c.sort();
    assert_eq!(c, ["provenance-missing", "signers-below-threshold"]);
    assert_eq!(warning_codes(&v), ["evidence-key-retired"]);
    assert!(v.rejected[0].reason.ends_with("re-sign with a current key"));
}

#[test]
fn keys_that_are_not_retired_are_untouched_and_revocation_comes_first() {
    let w = World::new();
    let g = w.gate();
    let cands = [
        w.provenance(&w.ci, "ci.json"),
        w.provenance(&w.mallory, "m.json"),
    ];
    // alice's key is retired: ci's and mallory's evidence is not hers.
    let request = Request {
        retired: Arc::new(vec![retired(&w.alice, 0, Some(&w.bob))]),
        ..w.request()
    };
    let v = decide(&g, &request, &cands);
    assert!(v.allowed, "{:?}", v.denies);
    assert_eq!(v.evidence.len(), 2);
    assert!(v.rejected.is_empty());
    assert!(v.warnings.is_empty());

    // A key both revoked and retired: it is revoked (a deny), and said once.
    let request = Request {
        revocations: Arc::new(vec![RevokedTarget::new(
            3,
            format!("key:{}", id(&w.mallory)),
            "key stolen",
        )]),
        retired: Arc::new(vec![retired(&w.mallory, 42, Some(&w.ci))]),
        ..w.request()
    };
    let v = decide(&g, &request, &cands);
    let rejected: Vec<(&str, &str)> = v
        .rejected
        .iter()
        .map(|r| (r.source.as_str(), r.code.as_str()))
        .collect();
    assert_eq!(rejected, [("m.json", "revoked")]);
    assert_eq!(codes(&v), ["evidence-revoked"]);
    assert!(v.warnings.is_empty());
}

/// sigstore-conformance's managed-key bundle: a key-signed message signature with a Rekor
/// entry that verifies against the public-good trusted root (`../shared/testdata`).
fn conformance(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata/sigstore-conformance/bundle-verify")
        .join(rel)
}

#[test]
fn a_retired_key_keeps_what_it_had_logged_before_the_cut() {
    let read = |rel: &str| {
        let path = conformance(rel);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let key =
        custody_core::keys::PublicKey::from_pem(&read("managed-key-happy-path/key.pub")).unwrap();
    let key_id = key.key_id().to_string();
    let root_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../../../shared/testdata/sigstore-python/embedded-tuf-store/https%3A%2F%2Ftuf-repo-cdn.sigstore.dev/trusted_root.json",
    );
    let root = custody_core::trust_root::TrustedRoot::from_json(
        &std::fs::read(&root_path).unwrap_or_else(|e| panic!("{}: {e}", root_path.display())),
    )
    .unwrap();
    let artifact_bytes = read("a.txt");
    let artifact = Sha256Digest::of(&artifact_bytes);
    let policy = Policy::from_files(
        vec![PolicyFile {
            path: "gate.rego".into(),
            text: GATE_POLICY.into(),
        }],
        json!({"custody": {"config": {"signers": {"keys": [key_id]}, "provenance": {"required": false}, "tlog": true}}}),
    )
    .unwrap();
    let g = Gate {
        policy,
        trust: TrustSet {
            keys: vec![key],
            root: Some(root),
            root_digest: None,
        },
    };
    let cands = [Candidate {
        source: "bundle.sigstore.json".into(),
        bytes: read("managed-key-happy-path/bundle.sigstore.json"),
    }];
    let request = |retired: Vec<RetiredKey>| Request {
        artifact: ArtifactRef {
            digest: Some(artifact.to_string()),
            name: Some("a.txt".into()),
            image: None,
        },
        bytes: Some(&artifact_bytes),
        time: "2026-11-26T12:00:00Z".parse().unwrap(),
        retired: Arc::new(retired),
        ..Default::default()
    };
    let retire_at = |cut: u64| RetiredKey {
        key_id: key_id.clone(),
        cut,
        successor: None,
        reason: "rotated".into(),
    };

    // Not retired: the signature verifies, with its log entry.
    let doc = document(&g, &request(vec![]), &cands);
    assert_eq!(doc["rejected"], json!([]), "{doc}");
    let index = doc["evidence"][0]["tlog"][0]["log_index"].as_u64().unwrap();
    assert_eq!(index, 771488337);
    assert!(decide(&g, &request(vec![]), &cands).allowed);

    // Retired after it was logged: history does not break.
    let v = decide(&g, &request(vec![retire_at(index + 1)]), &cands);
    assert!(v.allowed, "{:?}", v.denies);
    assert!(v.rejected.is_empty() && v.warnings.is_empty());

    // Retired at (or before) its log entry: it does not count.
    for cut in [index, 1] {
        let v = decide(&g, &request(vec![retire_at(cut)]), &cands);
        assert!(!v.allowed);
        assert_eq!(codes(&v), ["signers-below-threshold"]);
        assert_eq!(warning_codes(&v), ["evidence-key-retired"]);
        assert_eq!(v.rejected[0].code, "key.retired");
        assert_eq!(
            v.rejected[0].reason,
            format!(
                "signed by retired key {key_id} (retired at log index {cut}, no successor; rotated), \
                 and its verified log entry is at index {index}, at or after the retirement: \
                 re-sign with a current key"
            )
        );
    }
}
