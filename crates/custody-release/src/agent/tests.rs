//! The agent's checks with real signed bundles: what is accepted, what is refused and why,
//! and what the targets leave behind when they fail.

use std::path::Path;

use chrono::{Duration, Utc};
use custody_core::bundle::Bundle;
use custody_core::digest::Sha256Digest;
use custody_core::dsse::sign_in_toto;
use custody_core::intoto::{ResourceDescriptor, Statement};
use custody_core::keys::{KeyAlgorithm, SigningKey};
use custody_core::trust_root::{TRUSTED_ROOT_V0_2, TrustedRoot};
use custody_policy::vsa::{DEFAULT_VERIFIER_ID, VSA_V1};
use serde_json::json;

use super::target::DirStep;
use super::*;
use crate::statement::{CurrentFacts, ReleaseFacts, current_release, release as release_statement};

const ENV: &str = "prod";
const POLICY: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn key() -> SigningKey {
    SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap()
}

fn bundle_json(key: &SigningKey, statement: &Statement, tamper: bool) -> String {
    let mut envelope = sign_in_toto(key, statement.to_json_bytes()).unwrap();
    if tamper {
        // One flipped bit in the signed payload.
        let i = envelope.payload.iter().position(|b| *b == b'{').unwrap();
        envelope.payload[i + 1] ^= 0x01;
    }
    Bundle::new_dsse_v03(key.public_key().key_id().to_string(), envelope).to_json()
}

/// What a test release says; `record` edits the record after signing.
struct Spec {
    env: &'static str,
    seq: u64,
    artifact: &'static [u8],
    kind: ReleaseKind,
    previous: Option<(u64, String)>,
}

fn spec(seq: u64, artifact: &'static [u8]) -> Spec {
    Spec {
        env: ENV,
        seq,
        artifact,
        kind: ReleaseKind::Promotion,
        previous: None,
    }
}

impl Spec {
    fn after(mut self, seq: u64, artifact: &[u8]) -> Self {
        self.previous = Some((seq, Sha256Digest::of(artifact).to_string()));
        self
    }

    fn rollback(mut self) -> Self {
        self.kind = ReleaseKind::Rollback;
        self
    }

    fn statement(&self) -> Statement {
        let digest = Sha256Digest::of(self.artifact);
        release_statement(&ReleaseFacts {
            digest: &digest,
            environment: self.env,
            seq: self.seq,
            kind: self.kind,
            from_environment: Some("staging"),
            requested_by: "alice",
            policy_digest: POLICY,
            reason: None,
            at: Utc::now(),
            previous: self.previous.as_ref().map(|(s, d)| (*s, d.as_str())),
        })
    }

    fn signed(&self, key: &SigningKey) -> Release {
        self.record(bundle_json(key, &self.statement(), false))
    }

    fn record(&self, bundle: String) -> Release {
        Release {
            environment: self.env.to_owned(),
            seq: self.seq,
            digest: Sha256Digest::of(self.artifact).to_string(),
            kind: self.kind,
            from_environment: Some("staging".into()),
            requested_by: "alice".into(),
            at: Utc::now(),
            policy_digest: POLICY.into(),
            reason: None,
            request_id: None,
            bundle,
            log_index: None,
            vsa: None,
        }
    }
}

fn trust(key: &SigningKey) -> ReleaseTrust {
    ReleaseTrust::new(vec![key.public_key()])
}

fn refusal_code(result: Result<impl std::fmt::Debug, AgentError>) -> &'static str {
    match result {
        Err(AgentError::Refused(r)) => {
            // Every refusal is one line naming the environment, seq, digest, why and the fix.
            let line = r.to_string();
            assert!(!line.contains('\n'), "{line}");
            assert!(
                line.contains(&r.environment) && line.contains(&r.digest),
                "{line}"
            );
            assert!(line.contains(&format!("release {}", r.seq)), "{line}");
            assert!(line.contains("fix: "), "{line}");
            r.code
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_signed_release_verifies_with_p256_and_ed25519() {
    for alg in [KeyAlgorithm::EcdsaP256Sha256, KeyAlgorithm::Ed25519] {
        let key = SigningKey::generate(alg).unwrap();
        let release = spec(3, b"app v3").after(2, b"app v2").signed(&key);
        let v = verify_release(&release, &trust(&key), ENV).unwrap();
        assert_eq!(v.seq, 3);
        assert_eq!(v.digest, Sha256Digest::of(b"app v3"));
        assert_eq!(v.kind, ReleaseKind::Promotion);
        assert_eq!(v.subject_name, ENV);
        assert_eq!(v.requested_by, "alice");
        assert_eq!(v.from_environment.as_deref(), Some("staging"));
        assert_eq!(
            v.previous,
            Some((2, Sha256Digest::of(b"app v2").to_string()))
        );
        assert_eq!(v.key_id, key.public_key().key_id());
        assert_eq!(v.tlog, TlogStatus::Absent);
        assert!(v.vsa.is_none());
    }
}

#[test]
fn any_of_several_release_keys_verifies() {
    let (old, new) = (key(), key());
    let release = spec(1, b"a").signed(&new);
    let t = ReleaseTrust::new(vec![old.public_key(), new.public_key()]);
    assert_eq!(
        verify_release(&release, &t, ENV).unwrap().key_id,
        new.public_key().key_id()
    );
    assert_eq!(
        refusal_code(verify_release(&release, &ReleaseTrust::new(vec![]), ENV)),
        "dsse.malformed"
    );
}

#[test]
fn refuses_what_does_not_verify() {
    let key = key();
    let t = trust(&key);
    let s = spec(1, b"app v1");

    // Signed by another key.
    assert_eq!(
        refusal_code(verify_release(&s.signed(&self::key()), &t, ENV)),
        "signature.invalid"
    );
    // One flipped byte in the signed payload.
    let tampered = s.record(bundle_json(&key, &s.statement(), true));
    assert_eq!(
        refusal_code(verify_release(&tampered, &t, ENV)),
        "signature.invalid"
    );
    // The statement's subject is another digest than the record's.
    let mut other = s.signed(&key);
    other.digest = Sha256Digest::of(b"evil").to_string();
    assert_eq!(
        refusal_code(verify_release(&other, &t, ENV)),
        "artifact.not-a-subject"
    );
    // Not a bundle at all; not a digest.
    let mut garbage = s.signed(&key);
    garbage.bundle = "{}".into();
    assert_eq!(
        refusal_code(verify_release(&garbage, &t, ENV)),
        "bundle.malformed"
    );
    let mut bad_digest = s.signed(&key);
    bad_digest.digest = "md5:00".into();
    assert_eq!(
        refusal_code(verify_release(&bad_digest, &t, ENV)),
        "release.digest"
    );
}

#[test]
fn refuses_records_that_disagree_with_their_statement() {
    let key = key();
    let t = trust(&key);
    // The statement is for staging; the record (and the agent) say prod.
    let mut staging = spec(1, b"a");
    staging.env = "staging";
    let mut r = staging.signed(&key);
    r.environment = ENV.into();
    assert_eq!(
        refusal_code(verify_release(&r, &t, ENV)),
        "release.environment"
    );
    // A record for another environment than the agent's.
    assert_eq!(
        refusal_code(verify_release(&staging.signed(&key), &t, ENV)),
        "release.environment"
    );
    // Seq and kind.
    let mut r = spec(3, b"a").signed(&key);
    r.seq = 4;
    assert_eq!(refusal_code(verify_release(&r, &t, ENV)), "release.seq");
    let mut r = spec(3, b"a").signed(&key);
    r.kind = ReleaseKind::Rollback;
    assert_eq!(refusal_code(verify_release(&r, &t, ENV)), "release.kind");
    // Another predicate type, signed by the right key.
    let digest = Sha256Digest::of(b"a");
    let other = Statement::new_v1(
        vec![ResourceDescriptor::from_sha256(ENV, &digest)],
        "https://custody.dev/approval/v1",
        json!({"environment": ENV, "seq": 1, "kind": "promotion"}),
    );
    let r = spec(1, b"a").record(bundle_json(&key, &other, false));
    assert_eq!(
        refusal_code(verify_release(&r, &t, ENV)),
        "release.predicate-type"
    );
}

#[test]
fn with_a_trusted_root_a_release_without_a_log_entry_is_refused() {
    let key = key();
    let mut t = trust(&key);
    t.trusted_root = Some(TrustedRoot {
        media_type: TRUSTED_ROOT_V0_2.into(),
        tlogs: Vec::new(),
        certificate_authorities: Vec::new(),
        ctlogs: Vec::new(),
        timestamp_authorities: Vec::new(),
    });
    let r = spec(1, b"a").signed(&key);
    assert_eq!(refusal_code(verify_release(&r, &t, ENV)), "tlog.missing");
}

fn vsa_bundle(
    key: &SigningKey,
    artifact: &[u8],
    env: &str,
    verified: chrono::DateTime<Utc>,
) -> String {
    let digest = Sha256Digest::of(artifact);
    let statement = Statement::new_v1(
        vec![ResourceDescriptor::from_sha256("app", &digest)],
        VSA_V1,
        json!({
            "verifier": {"id": DEFAULT_VERIFIER_ID},
            "timeVerified": crate::statement::rfc3339(verified),
            "resourceUri": "urn:custody:artifact:app",
            "policy": {"uri": "policy", "digest": {"sha256": POLICY.trim_start_matches("sha256:")}},
            "verificationResult": "PASSED",
            "verifiedLevels": ["SLSA_BUILD_LEVEL_3"],
            "custody_environment": env,
        }),
    );
    bundle_json(key, &statement, false)
}

#[test]
fn a_vsa_must_be_the_gates_for_this_artifact_environment_and_time() {
    let key = key();
    let t = trust(&key);
    let mut r = spec(1, b"app").signed(&key);
    r.vsa = Some(vsa_bundle(
        &key,
        b"app",
        ENV,
        Utc::now() - Duration::minutes(1),
    ));
    let v = verify_release(&r, &t, ENV).unwrap();
    let vsa = v.vsa.unwrap();
    assert_eq!(vsa.policy_digest, POLICY);
    assert_eq!(vsa.verified_levels, ["SLSA_BUILD_LEVEL_3"]);

    r.vsa = Some(vsa_bundle(&self::key(), b"app", ENV, Utc::now()));
    assert_eq!(
        refusal_code(verify_release(&r, &t, ENV)),
        "signature.invalid"
    );
    r.vsa = Some(vsa_bundle(&key, b"other", ENV, Utc::now()));
    assert_eq!(
        refusal_code(verify_release(&r, &t, ENV)),
        "artifact.not-a-subject"
    );
    r.vsa = Some(vsa_bundle(&key, b"app", "staging", Utc::now()));
    assert_eq!(refusal_code(verify_release(&r, &t, ENV)), "vsa.environment");
    r.vsa = Some(vsa_bundle(
        &key,
        b"app",
        ENV,
        Utc::now() - Duration::days(2),
    ));
    assert_eq!(refusal_code(verify_release(&r, &t, ENV)), "vsa.stale");
}

fn verified(key: &SigningKey, s: &Spec) -> VerifiedRelease {
    verify_release(&s.signed(key), &trust(key), ENV).unwrap()
}

/// A state that deployed `artifacts` as seq 1, 2, ….
fn state_after(key: &SigningKey, artifacts: &[&'static [u8]]) -> AgentState {
    let mut state = AgentState::new(ENV);
    let mut prev: Option<&[u8]> = None;
    for (i, a) in artifacts.iter().enumerate() {
        let seq = i as u64 + 1;
        let mut s = spec(seq, a);
        if let Some(p) = prev {
            s = s.after(seq - 1, p);
        }
        let v = verified(key, &s);
        assert_eq!(state.decide(&v).unwrap(), Decision::Deploy);
        state.record(&v, Utc::now());
        prev = Some(a);
    }
    state
}

#[test]
fn the_state_refuses_stale_equivocating_forked_and_unsigned_rollbacks() {
    let key = key();
    let state = state_after(&key, &[b"A", b"B", b"C"]);
    assert_eq!((state.seq, state.history.len()), (3, 3));

    // The same release again: nothing to do.
    let same = verified(&key, &spec(3, b"C").after(2, b"B"));
    assert_eq!(state.decide(&same).unwrap(), Decision::Unchanged);
    // An older seq (a replayed answer), even with the digest it had.
    assert_eq!(
        refusal_code(state.decide(&verified(&key, &spec(2, b"B")))),
        "release.stale"
    );
    // The same seq with another digest.
    assert_eq!(
        refusal_code(state.decide(&verified(&key, &spec(3, b"X").after(2, b"B")))),
        "release.equivocation"
    );
    // The next seq must continue what was deployed.
    assert_eq!(
        refusal_code(state.decide(&verified(&key, &spec(4, b"D").after(3, b"X")))),
        "release.fork"
    );
    assert_eq!(
        refusal_code(state.decide(&verified(&key, &spec(4, b"D")))),
        "release.fork"
    );
    // Back to an older digest: only as a signed rollback.
    assert_eq!(
        refusal_code(state.decide(&verified(&key, &spec(4, b"A").after(3, b"C")))),
        "release.rollback"
    );
    let rollback = verified(&key, &spec(4, b"A").after(3, b"C").rollback());
    assert_eq!(state.decide(&rollback).unwrap(), Decision::Deploy);
    // A newer release after a gap (the agent missed some) is fine.
    assert_eq!(
        state.decide(&verified(&key, &spec(9, b"E"))).unwrap(),
        Decision::Deploy
    );
}

#[test]
fn the_state_is_saved_atomically_and_belongs_to_one_environment() {
    let key = key();
    let dir = tempfile::tempdir().unwrap();
    let state = state_after(&key, &[b"A", b"B"]);
    state.save(dir.path()).unwrap();
    assert_eq!(AgentState::load(dir.path(), ENV).unwrap(), state);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, [STATE_FILE]);
    assert!(matches!(
        AgentState::load(dir.path(), "staging"),
        Err(AgentError::State { .. })
    ));
    std::fs::write(dir.path().join(STATE_FILE), b"{\"torn").unwrap();
    assert!(matches!(
        AgentState::load(dir.path(), ENV),
        Err(AgentError::State { .. })
    ));
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(
        AgentState::load(empty.path(), ENV).unwrap(),
        AgentState::new(ENV)
    );
}

fn serve(
    bytes: &'static [u8],
) -> impl FnMut(&Sha256Digest, &mut dyn std::io::Write) -> Result<(), String> {
    move |_, w| w.write_all(bytes).map_err(|e| e.to_string())
}

/// The server's answer for the release about to be activated: a current-release statement
/// signed by `key`, issued now, valid five minutes.
fn vouch(key: &SigningKey) -> impl FnMut(&VerifiedRelease) -> Result<Vec<u8>, CurrentError> + '_ {
    move |r| Ok(current_envelope(key, &current_facts_for(r, Utc::now())))
}

fn current_facts_for(r: &VerifiedRelease, issued_at: DateTime<Utc>) -> CurrentFacts {
    CurrentFacts {
        environment: r.environment.clone(),
        seq: r.seq,
        digest: r.digest,
        release_bundle: r.bundle_digest,
        release_log_index: None,
        issued_at,
        expires: issued_at + Duration::minutes(5),
        checkpoint: None,
    }
}

fn current_envelope(key: &SigningKey, facts: &CurrentFacts) -> Vec<u8> {
    sign_in_toto(key, current_release(facts).to_json_bytes())
        .unwrap()
        .to_json()
        .into_bytes()
}

fn dir_agent(key: &SigningKey, state: &Path, root: &Path) -> Agent {
    let target = DirTarget::open(root).unwrap();
    Agent::open(ENV, trust(key), state, Box::new(target)).unwrap()
}

fn current(root: &Path) -> String {
    std::fs::read_link(root.join("current"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn rel(artifact: &[u8]) -> String {
    format!("releases/{}", Sha256Digest::of(artifact).hex())
}

#[cfg(unix)]
#[test]
fn a_dir_target_switches_current_and_keeps_the_previous_release() {
    let key = key();
    let tmp = tempfile::tempdir().unwrap();
    let (state, root) = (tmp.path().join("state"), tmp.path().join("app"));
    let mut agent = dir_agent(&key, &state, &root);

    let r1 = spec(1, b"app v1").signed(&key);
    let applied = agent
        .apply(&r1, &mut vouch(&key), &mut serve(b"app v1"))
        .unwrap();
    let Applied::Deployed {
        activated,
        repaired,
        ..
    } = applied
    else {
        panic!("{applied:?}")
    };
    assert!(!repaired);
    assert_eq!(activated.location, root.join("current").join(ENV));
    assert_eq!(
        std::fs::read(root.join("current").join(ENV)).unwrap(),
        b"app v1"
    );
    assert_eq!(current(&root), rel(b"app v1"));

    // The same release again: unchanged, and nothing fetched.
    let applied = agent
        .apply(
            &r1,
            &mut vouch(&key),
            &mut |_: &Sha256Digest, _: &mut dyn std::io::Write| Err("must not fetch".to_string()),
        )
        .unwrap();
    assert!(matches!(applied, Applied::Unchanged(_)));

    let r2 = spec(2, b"app v2").after(1, b"app v1").signed(&key);
    agent
        .apply(&r2, &mut vouch(&key), &mut serve(b"app v2"))
        .unwrap();
    assert_eq!(current(&root), rel(b"app v2"));
    assert!(
        root.join(rel(b"app v1")).join(ENV).is_file(),
        "previous release kept"
    );
    assert_eq!((agent.state().seq, agent.state().history.len()), (2, 2));
    // The state on disk says so too.
    assert_eq!(AgentState::load(&state, ENV).unwrap(), *agent.state());

    // A fault after staging, and a fault with the new link made but not renamed: each leaves
    // v2 active, and no temporary link behind.
    let v3 = verified(&key, &spec(3, b"app v3").after(2, b"app v2"));
    let file = tmp.path().join("v3");
    std::fs::write(&file, b"app v3").unwrap();
    let mut target = DirTarget::open(&root).unwrap();
    for step in [DirStep::Staged, DirStep::LinkCreated] {
        let err = target
            .activate_with(&v3, &file, &[], &|s| {
                if s == step {
                    Err(std::io::Error::other("injected fault"))
                } else {
                    Ok(())
                }
            })
            .unwrap_err();
        assert!(err.contains("injected fault"), "{err}");
        assert_eq!(current(&root), rel(b"app v2"), "{step:?}");
        assert_eq!(
            std::fs::read(root.join("current").join(ENV)).unwrap(),
            b"app v2"
        );
        let links: Vec<_> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("current"))
            .collect();
        assert_eq!(links, ["current"], "{step:?}");
    }
    // The agent's view: a failed activation (here: `current` replaced by a directory, which
    // custody will not overwrite) keeps v2 active and the state at seq 2.
    let saved = std::fs::read(state.join(STATE_FILE)).unwrap();
    std::fs::rename(root.join("current"), tmp.path().join("link")).unwrap();
    std::fs::create_dir(root.join("current")).unwrap();
    let r3 = spec(3, b"app v3").after(2, b"app v2").signed(&key);
    let err = agent
        .apply(&r3, &mut vouch(&key), &mut serve(b"app v3"))
        .unwrap_err();
    assert!(matches!(err, AgentError::Activation { .. }), "{err}");
    assert!(err.to_string().contains("not a symlink"), "{err}");
    assert_eq!(std::fs::read(state.join(STATE_FILE)).unwrap(), saved);
    assert_eq!(agent.state().seq, 2);
    std::fs::remove_dir(root.join("current")).unwrap();
    std::fs::rename(tmp.path().join("link"), root.join("current")).unwrap();
    agent
        .apply(&r3, &mut vouch(&key), &mut serve(b"app v3"))
        .unwrap();
    assert_eq!(current(&root), rel(b"app v3"));
}

#[cfg(unix)]
#[test]
fn bytes_that_do_not_hash_to_the_release_are_never_activated() {
    let key = key();
    let tmp = tempfile::tempdir().unwrap();
    let (state, root) = (tmp.path().join("state"), tmp.path().join("app"));
    let mut agent = dir_agent(&key, &state, &root);
    agent
        .apply(
            &spec(1, b"v1").signed(&key),
            &mut vouch(&key),
            &mut serve(b"v1"),
        )
        .unwrap();
    let r2 = spec(2, b"v2").after(1, b"v1").signed(&key);
    assert_eq!(
        refusal_code(agent.apply(&r2, &mut vouch(&key), &mut serve(b"evil"))),
        "artifact.mismatch"
    );
    assert_eq!(current(&root), rel(b"v1"));
    assert!(!root.join(rel(b"v2")).exists() && !root.join(rel(b"evil")).exists());
    assert_eq!(agent.state().seq, 1);
    // No download left behind.
    assert_eq!(
        std::fs::read_dir(state.join("downloads")).unwrap().count(),
        0
    );
    // check_artifact on bytes in memory says the same.
    let v2 = verified(&key, &spec(2, b"v2").after(1, b"v1"));
    assert!(check_artifact(&v2, b"v2").is_ok());
    assert_eq!(
        refusal_code(check_artifact(&v2, b"evil")),
        "artifact.mismatch"
    );
    // A failed download changes nothing either.
    let err = agent
        .apply(
            &r2,
            &mut vouch(&key),
            &mut |_: &Sha256Digest, _: &mut dyn std::io::Write| Err("connection reset".to_string()),
        )
        .unwrap_err();
    assert!(matches!(err, AgentError::Fetch { .. }), "{err}");
    assert_eq!(current(&root), rel(b"v1"));
}

#[cfg(unix)]
#[test]
fn a_dir_target_keeps_the_last_five_releases() {
    const ARTIFACTS: [&[u8]; 8] = [b"r1", b"r2", b"r3", b"r4", b"r5", b"r6", b"r7", b"r8"];
    let key = key();
    let tmp = tempfile::tempdir().unwrap();
    let (state, root) = (tmp.path().join("state"), tmp.path().join("app"));
    let mut agent = dir_agent(&key, &state, &root);
    for (i, a) in ARTIFACTS.iter().enumerate() {
        let seq = i as u64 + 1;
        let mut s = spec(seq, a);
        if i > 0 {
            s = s.after(seq - 1, ARTIFACTS[i - 1]);
        }
        let bytes: &'static [u8] = a;
        let applied = agent
            .apply(&s.signed(&key), &mut vouch(&key), &mut serve(bytes))
            .unwrap();
        let Applied::Deployed { activated, .. } = applied else {
            panic!()
        };
        assert!(activated.notes.is_empty(), "{:?}", activated.notes);
    }
    let mut kept: Vec<String> = std::fs::read_dir(root.join("releases"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    kept.sort();
    let mut want: Vec<String> = ARTIFACTS[3..]
        .iter()
        .map(|a| Sha256Digest::of(a).hex())
        .collect();
    want.sort();
    assert_eq!(kept, want);
    assert_eq!(current(&root), rel(b"r8"));

    // A signed rollback to a release still kept switches back without copying anything new.
    let back = spec(9, b"r6").after(8, b"r8").rollback().signed(&key);
    agent
        .apply(&back, &mut vouch(&key), &mut serve(b"r6"))
        .unwrap();
    assert_eq!(current(&root), rel(b"r6"));
    assert_eq!(std::fs::read_dir(root.join("releases")).unwrap().count(), 5);
}

#[cfg(unix)]
#[test]
fn a_dir_target_repairs_a_current_link_that_drifted() {
    let key = key();
    let tmp = tempfile::tempdir().unwrap();
    let (state, root) = (tmp.path().join("state"), tmp.path().join("app"));
    let mut agent = dir_agent(&key, &state, &root);
    agent
        .apply(
            &spec(1, b"v1").signed(&key),
            &mut vouch(&key),
            &mut serve(b"v1"),
        )
        .unwrap();
    let r2 = spec(2, b"v2").after(1, b"v1").signed(&key);
    agent
        .apply(&r2, &mut vouch(&key), &mut serve(b"v2"))
        .unwrap();
    // Someone (or a crash before the directory was synced) left `current` at v1.
    std::fs::remove_file(root.join("current")).unwrap();
    std::os::unix::fs::symlink(rel(b"v1"), root.join("current")).unwrap();
    let applied = agent
        .apply(&r2, &mut vouch(&key), &mut serve(b"v2"))
        .unwrap();
    assert!(
        matches!(applied, Applied::Deployed { repaired: true, .. }),
        "{applied:?}"
    );
    assert_eq!(current(&root), rel(b"v2"));
    assert_eq!(agent.state().history.len(), 2);
    // `current` deleted: activated again too.
    std::fs::remove_file(root.join("current")).unwrap();
    let applied = agent
        .apply(&r2, &mut vouch(&key), &mut serve(b"v2"))
        .unwrap();
    assert!(
        matches!(applied, Applied::Deployed { repaired: true, .. }),
        "{applied:?}"
    );
    assert_eq!(current(&root), rel(b"v2"));
    let applied = agent
        .apply(&r2, &mut vouch(&key), &mut serve(b"v2"))
        .unwrap();
    assert!(matches!(applied, Applied::Unchanged(_)), "{applied:?}");
}

#[cfg(unix)]
#[test]
fn an_exec_target_runs_the_command_and_a_failure_leaves_the_state() {
    let key = key();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let out = tmp.path().join("env.txt");
    let command = format!(
        "printf '%s %s %s %s\\n' \"$CUSTODY_ENVIRONMENT\" \"$CUSTODY_SEQ\" \"$CUSTODY_KIND\" \"$CUSTODY_DIGEST\" > {0} && cat \"$CUSTODY_ARTIFACT\" >> {0}",
        out.display()
    );
    let target = TargetSpec::Exec(command).open(&state).unwrap();
    let mut agent = Agent::open(ENV, trust(&key), &state, target).unwrap();
    let applied = agent
        .apply(
            &spec(1, b"v1").signed(&key),
            &mut vouch(&key),
            &mut serve(b"v1"),
        )
        .unwrap();
    let Applied::Deployed { activated, .. } = applied else {
        panic!()
    };
    assert_eq!(
        activated.location,
        state.join("artifacts").join(Sha256Digest::of(b"v1").hex())
    );
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        format!("prod 1 promotion {}\nv1", Sha256Digest::of(b"v1"))
    );

    let saved = std::fs::read(state.join(STATE_FILE)).unwrap();
    // A download a crash interrupted is removed when the agent starts.
    std::fs::write(state.join("downloads/.download-crashed"), b"partial").unwrap();
    let failing = TargetSpec::Exec("exit 3".into()).open(&state).unwrap();
    let mut agent = Agent::open(ENV, trust(&key), &state, failing).unwrap();
    assert!(!state.join("downloads/.download-crashed").exists());
    let r2 = spec(2, b"v2").after(1, b"v1").signed(&key);
    let err = agent
        .apply(&r2, &mut vouch(&key), &mut serve(b"v2"))
        .unwrap_err();
    assert!(matches!(err, AgentError::Activation { .. }), "{err}");
    assert!(err.to_string().contains("exit status: 3"), "{err}");
    assert_eq!(std::fs::read(state.join(STATE_FILE)).unwrap(), saved);
    assert_eq!(agent.state().seq, 1);
    // Retried at the next poll, once the command works.
    let fixed = TargetSpec::Exec("true".into()).open(&state).unwrap();
    let mut agent = Agent::open(ENV, trust(&key), &state, fixed).unwrap();
    assert!(matches!(
        agent
            .apply(&r2, &mut vouch(&key), &mut serve(b"v2"))
            .unwrap(),
        Applied::Deployed { .. }
    ));
    assert_eq!(agent.state().seq, 2);
}

#[test]
fn targets_parse_and_file_names_are_plain() {
    assert_eq!(
        "dir:/srv/app".parse::<TargetSpec>().unwrap(),
        TargetSpec::Dir("/srv/app".into())
    );
    assert_eq!(
        "exec:systemctl restart app".parse::<TargetSpec>().unwrap(),
        TargetSpec::Exec("systemctl restart app".into())
    );
    for bad in ["", "dir:", "exec: ", "/srv/app", "ftp:x"] {
        assert!(bad.parse::<TargetSpec>().is_err(), "{bad}");
    }
    let key = key();
    let mut v = verified(&key, &spec(1, b"a"));
    for (name, want) in [
        ("app.tar.gz", "app.tar.gz"),
        ("../x", "artifact"),
        ("", "artifact"),
        (".hidden", "artifact"),
        ("a/b", "artifact"),
    ] {
        v.subject_name = name.into();
        assert_eq!(super::target::file_name(&v), want, "{name}");
    }
}

// ----- freshness: the current-release statement ---------------------------------------------

/// Release 2 of prod, verified, and a fresh statement's facts for it.
fn fresh_case(key: &SigningKey) -> (VerifiedRelease, CurrentFacts, DateTime<Utc>) {
    let release = spec(2, b"app v2").after(1, b"app v1").signed(key);
    let verified = verify_release(&release, &trust(key), ENV).unwrap();
    // Whole seconds: the statement carries RFC 3339 times to the second.
    let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 0);
    let facts = current_facts_for(&verified, now - Duration::seconds(10));
    (verified, facts, now)
}

fn check(
    key: &SigningKey,
    signer: &SigningKey,
    facts: &CurrentFacts,
    release: &VerifiedRelease,
    deployed_seq: u64,
    now: DateTime<Utc>,
) -> Result<VerifiedCurrent, AgentError> {
    check_current(
        &current_envelope(signer, facts),
        &trust(key),
        release,
        deployed_seq,
        now,
    )
}

#[test]
fn a_fresh_current_release_statement_for_the_release_verifies() {
    let key = key();
    let (release, facts, now) = fresh_case(&key);
    let v = check(&key, &key, &facts, &release, 1, now).unwrap();
    assert_eq!(v.facts, facts);
    assert_eq!(v.key_id, key.public_key().key_id());
    // Issued a little after this host's time (clock skew under the allowance): accepted.
    let mut ahead = facts.clone();
    ahead.issued_at = now + Duration::seconds(30);
    ahead.expires = ahead.issued_at + Duration::minutes(5);
    check(&key, &key, &ahead, &release, 1, now).unwrap();
}

#[test]
fn attack_expired_current_release_statement_is_refused() {
    let key = key();
    let (release, facts, now) = fresh_case(&key);
    // The answer recorded when release 2 was current, replayed six minutes later.
    let later = now + Duration::minutes(6);
    let result = check(&key, &key, &facts, &release, 1, later);
    assert_eq!(refusal_code(result), "current.expired");
    let err = check(&key, &key, &facts, &release, 1, later).unwrap_err();
    let line = err.to_string();
    assert!(
        line.contains("expired") && line.contains("prod seq 2"),
        "{line}"
    );
    // Expiring exactly now is expired too; and an expiry before the issue time never counts.
    let mut edge = facts.clone();
    edge.expires = now;
    assert_eq!(
        refusal_code(check(&key, &key, &edge, &release, 1, now)),
        "current.expired"
    );
    let mut inverted = facts.clone();
    inverted.expires = facts.issued_at - Duration::seconds(1);
    assert_eq!(
        refusal_code(check(&key, &key, &inverted, &release, 1, now)),
        "current.expired"
    );
}

#[test]
fn attack_current_release_statement_from_the_future_is_refused() {
    let key = key();
    let (release, mut facts, now) = fresh_case(&key);
    // Pre-signed for later use (or a server clock far ahead): beyond the 60 s allowance.
    facts.issued_at = now + Duration::minutes(10);
    facts.expires = facts.issued_at + Duration::minutes(5);
    assert_eq!(
        refusal_code(check(&key, &key, &facts, &release, 1, now)),
        "current.future"
    );
}

#[test]
fn attack_current_release_statement_not_signed_by_the_release_key_is_refused() {
    let key = key();
    let (release, facts, now) = fresh_case(&key);
    let other = self::key();
    assert_eq!(
        refusal_code(check(&key, &other, &facts, &release, 1, now)),
        "current.signature"
    );
    // A release statement (signed by the release key) is not a current-release statement.
    let release_envelope = sign_in_toto(&key, spec(2, b"app v2").statement().to_json_bytes())
        .unwrap()
        .to_json();
    assert_eq!(
        refusal_code(check_current(
            release_envelope.as_bytes(),
            &trust(&key),
            &release,
            1,
            now
        )),
        "current.malformed"
    );
    assert_eq!(
        refusal_code(check_current(b"{", &trust(&key), &release, 1, now)),
        "current.malformed"
    );
}

#[test]
fn attack_current_release_statement_for_another_release_is_refused() {
    let key = key();
    let (release, facts, now) = fresh_case(&key);
    type Edit = Box<dyn Fn(&mut CurrentFacts)>;
    let cases: [(&str, Edit); 5] = [
        (
            "current.environment",
            Box::new(|f| f.environment = "staging".into()),
        ),
        // The server moved on (release 3, the rollback after a revocation).
        ("current.superseded", Box::new(|f| f.seq = 3)),
        // Older than what this agent deployed (it is at seq 2 below).
        ("current.stale", Box::new(|f| f.seq = 1)),
        (
            "current.mismatch",
            Box::new(|f| f.digest = Sha256Digest::of(b"app v1")),
        ),
        (
            "current.mismatch",
            Box::new(|f| f.release_bundle = Sha256Digest::of(b"another bundle")),
        ),
    ];
    for (code, edit) in cases {
        let mut f = facts.clone();
        edit(&mut f);
        let deployed = if code == "current.stale" { 2 } else { 1 };
        assert_eq!(
            refusal_code(check(&key, &key, &f, &release, deployed, now)),
            code,
            "{f:?}"
        );
    }
}

#[cfg(unix)]
#[test]
fn attack_replayed_release_of_a_revoked_artifact_is_not_activated_by_the_agent() {
    let key = key();
    let tmp = tempfile::tempdir().unwrap();
    let (state, root) = (tmp.path().join("state"), tmp.path().join("app"));
    let mut agent = dir_agent(&key, &state, &root);
    agent
        .apply(
            &spec(1, b"v1").signed(&key),
            &mut vouch(&key),
            &mut serve(b"v1"),
        )
        .unwrap();
    let saved = std::fs::read(state.join(STATE_FILE)).unwrap();
    // Release 2 was signed and is handed over again, but v2 was revoked since: the server
    // issues no current-release statement for it.
    let r2 = spec(2, b"v2").after(1, b"v1").signed(&key);
    let mut withheld = |_: &VerifiedRelease| -> Result<Vec<u8>, CurrentError> {
        Err(CurrentError::Withheld(
            "HTTP 409: sha256:… is quarantined by revocation #1".into(),
        ))
    };
    let result = agent.apply(&r2, &mut withheld, &mut serve(b"v2"));
    assert_eq!(refusal_code(result), "current.withheld");
    // The statement recorded while release 2 was current, replayed after it expired.
    let verified = verify_release(&r2, &trust(&key), ENV).unwrap();
    let recorded = current_envelope(
        &key,
        &current_facts_for(&verified, Utc::now() - Duration::minutes(10)),
    );
    let mut replayed =
        |_: &VerifiedRelease| -> Result<Vec<u8>, CurrentError> { Ok(recorded.clone()) };
    let result = agent.apply(&r2, &mut replayed, &mut serve(b"v2"));
    assert_eq!(refusal_code(result), "current.expired");
    // The server's fresh word about prod: release 3, the rollback to v1.
    let mut moved_on = |r: &VerifiedRelease| -> Result<Vec<u8>, CurrentError> {
        let mut f = current_facts_for(r, Utc::now());
        f.seq = 3;
        f.digest = Sha256Digest::of(b"v1");
        Ok(current_envelope(&key, &f))
    };
    let result = agent.apply(&r2, &mut moved_on, &mut serve(b"v2"));
    assert_eq!(refusal_code(result), "current.superseded");
    // The server cannot be asked: nothing activated either (an operational failure).
    let mut down = |_: &VerifiedRelease| -> Result<Vec<u8>, CurrentError> {
        Err(CurrentError::Unavailable("connection refused".into()))
    };
    let err = agent.apply(&r2, &mut down, &mut serve(b"v2")).unwrap_err();
    assert!(matches!(err, AgentError::Fetch { .. }), "{err}");
    assert!(
        err.to_string().contains("current-release statement"),
        "{err}"
    );
    assert_eq!(current(&root), rel(b"v1"));
    assert_eq!(std::fs::read(state.join(STATE_FILE)).unwrap(), saved);
    assert!(!root.join(rel(b"v2")).exists());
}
