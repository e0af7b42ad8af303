//! Admission follows releases (`input.release`), through the gate over real signed bundles: the
//! environment's current release and the allowed previous ones are admitted; a superseded,
//! never-released, quarantined or unapproved digest is denied with its own code; without
//! `release` nothing changes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{candidate, check, codes, id, key, library_gate, now, schema, signed_provenance};
use custody_core::digest::Sha256Digest;
use custody_core::keys::SigningKey;
use custody_core::verify::Artifact;
use custody_policy::input::{self, InputParts};
use custody_policy::release::DEFAULT_ALLOW_PREVIOUS;
use custody_policy::{
    ArtifactRef, Candidate, CandidateFacts, EnvironmentRef, Gate, QuarantineRef, ReleaseApprovals,
    ReleaseRef, ReleaseState, Request, Verdict,
};
use serde_json::{Value, json};

fn request(artifact: &Sha256Digest, release: Option<ReleaseState>) -> Request<'static> {
    Request {
        artifact: ArtifactRef {
            digest: Some(artifact.to_string()),
            name: Some("app.bin".into()),
            image: None,
        },
        environment: Some(EnvironmentRef {
            name: "prod".into(),
            ..Default::default()
        }),
        time: now(),
        release,
        ..Default::default()
    }
}

/// prod's history: release #7 (current) is `current`; the artifact was release `seq` (if any).
fn prod(current: &Sha256Digest, artifact: &Sha256Digest, facts: CandidateFacts) -> ReleaseState {
    ReleaseState::new(
        "prod",
        Some(ReleaseRef {
            seq: 7,
            digest: current.to_string(),
        }),
        DEFAULT_ALLOW_PREVIOUS,
        artifact.to_string(),
        facts,
    )
}

fn released_at(seq: u64) -> CandidateFacts {
    CandidateFacts {
        release_seq: Some(seq),
        ..Default::default()
    }
}

struct Setup {
    ci: SigningKey,
    artifact: Sha256Digest,
    newer: Sha256Digest,
    gate: Gate,
    evidence: Vec<Candidate>,
}

fn setup() -> Setup {
    let ci = key();
    let artifact = Sha256Digest::of(b"app v1");
    let gate = library_gate(&[&ci], json!({}));
    let evidence = vec![candidate(
        "app.bin.intoto.sigstore.json",
        signed_provenance(&ci, &artifact),
    )];
    Setup {
        ci,
        artifact,
        newer: Sha256Digest::of(b"app v2"),
        gate,
        evidence,
    }
}

impl Setup {
    fn decide(&self, release: Option<ReleaseState>) -> Verdict {
        self.gate
            .decide(&request(&self.artifact, release), &self.evidence)
            .unwrap()
    }
}

#[test]
fn the_current_release_is_admitted() {
    let s = setup();
    let v = s.decide(Some(prod(&s.artifact, &s.artifact, released_at(7))));
    assert!(v.allowed, "{:?}", v.denies);
}

#[test]
fn a_previous_release_within_allow_previous_is_admitted() {
    let s = setup();
    let v = s.decide(Some(prod(&s.newer, &s.artifact, released_at(6))));
    assert!(v.allowed, "{:?}", v.denies);
    // With allow_previous 0 the same release is superseded.
    let mut only_current = prod(&s.newer, &s.artifact, released_at(6));
    only_current.allow_previous = 0;
    assert_eq!(
        codes(&s.decide(Some(only_current))),
        ["release-not-current"]
    );
}

#[test]
fn a_superseded_release_is_denied_with_release_not_current() {
    let s = setup();
    let v = s.decide(Some(prod(&s.newer, &s.artifact, released_at(5))));
    assert!(!v.allowed);
    assert_eq!(codes(&v), ["release-not-current"]);
    let d = &v.denies[0];
    assert_eq!(
        d.message,
        format!(
            "{} is not admitted to environment prod: it is release #5, 2 releases behind the current release #7 {}; prod admits its current release and the 1 before it",
            s.artifact, s.newer
        )
    );
    assert_eq!(
        d.fix.as_deref(),
        Some(
            format!(
                "promote it with `custody promote {} --to prod`, or deploy the current release {}",
                s.artifact, s.newer
            )
            .as_str()
        )
    );
    assert_eq!(d.details["environment"], "prod");
    assert_eq!(d.details["artifact"], s.artifact.to_string());
    assert!(d.location.is_some(), "the rule's file and line");
    // Never released in prod at all: the same code, saying so.
    let v = s.decide(Some(prod(&s.newer, &s.artifact, CandidateFacts::default())));
    assert_eq!(codes(&v), ["release-not-current"]);
    assert!(v.denies[0].message.contains("not one of its releases"));
}

#[test]
fn a_quarantined_release_is_denied() {
    let s = setup();
    let facts = CandidateFacts {
        release_seq: Some(7),
        quarantine: Some(QuarantineRef {
            revocation_id: 4,
            target: format!("key:{}", id(&s.ci)),
            reason: "key stolen".into(),
            at: "2026-11-26T11:00:00Z".into(),
        }),
        ..Default::default()
    };
    let v = s.decide(Some(prod(&s.artifact, &s.artifact, facts)));
    assert_eq!(codes(&v), ["release-quarantined"]);
    assert!(v.denies[0].message.contains("by revocation #4 of key:"));
    assert!(
        v.denies[0]
            .fix
            .as_deref()
            .unwrap()
            .starts_with("roll back to a release that verifies")
    );
}

#[test]
fn an_unapproved_release_is_denied() {
    let s = setup();
    let facts = |approved_by: &[&str]| CandidateFacts {
        release_seq: Some(7),
        approvals: Some(ReleaseApprovals {
            required: 2,
            group: "release-approvers".into(),
            approved_by: approved_by.iter().map(|p| p.to_string()).collect(),
        }),
        ..Default::default()
    };
    let v = s.decide(Some(prod(&s.artifact, &s.artifact, facts(&["bob", "bob"]))));
    assert_eq!(codes(&v), ["release-unapproved"]);
    assert_eq!(
        v.denies[0].fix.as_deref(),
        Some(
            format!(
                "ask 1 more members of group release-approvers to run: custody approve {} --env prod --key <their key>",
                s.artifact
            )
            .as_str()
        )
    );
    let v = s.decide(Some(prod(
        &s.artifact,
        &s.artifact,
        facts(&["bob", "carol"]),
    )));
    assert!(v.allowed, "{:?}", v.denies);
}

#[test]
fn without_release_state_nothing_changes() {
    let s = setup();
    let without = s.decide(None);
    assert!(without.allowed);
    // Even an artifact that would be superseded is judged as before when no release state is
    // given (an unmapped namespace, an environment without releases).
    let other = Sha256Digest::of(b"never released");
    let evidence = vec![candidate("o.json", signed_provenance(&s.ci, &other))];
    let v = s.gate.decide(&request(&other, None), &evidence).unwrap();
    assert!(v.allowed, "{:?}", v.denies);
    // And the input document has no `release` field at all.
    let doc = document(&s, None);
    assert!(doc.get("release").is_none(), "{doc}");
}

fn document(s: &Setup, release: Option<&ReleaseState>) -> Value {
    let (evidence, rejected) = input::verify_evidence(
        &s.gate.trust,
        Artifact::from_digest(s.artifact),
        &s.evidence,
    );
    let artifact = ArtifactRef {
        digest: Some(s.artifact.to_string()),
        ..Default::default()
    };
    InputParts {
        artifact: &artifact,
        artifact_revoked: None,
        environment: None,
        promotion: None,
        release,
        time: now(),
        evidence: &evidence,
        rejected: &rejected,
    }
    .document()
}

#[test]
fn the_release_state_matches_the_schema() {
    let s = setup();
    let schema = schema();
    for facts in [
        CandidateFacts::default(),
        CandidateFacts {
            release_seq: Some(3),
            quarantine: Some(QuarantineRef {
                revocation_id: 1,
                target: "builder:https://ci.example/1".into(),
                reason: "compromised".into(),
                at: "2026-11-26T11:00:00Z".into(),
            }),
            approvals: Some(ReleaseApprovals {
                required: 1,
                group: "ops".into(),
                approved_by: vec!["alice".into()],
            }),
        },
    ] {
        let release = prod(&s.newer, &s.artifact, facts);
        let doc = document(&s, Some(&release));
        check(&schema, &schema, &doc, "input").unwrap();
        assert_eq!(
            doc["release"]["candidate"]["digest"],
            s.artifact.to_string()
        );
    }
    // An environment with no release yet: current is null.
    let empty = ReleaseState::new(
        "prod",
        None,
        0,
        s.artifact.to_string(),
        CandidateFacts::default(),
    );
    check(&schema, &schema, &document(&s, Some(&empty)), "input").unwrap();
}
