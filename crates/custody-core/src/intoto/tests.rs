#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use super::slsa::{Provenance, ProvenanceError, SLSA_PROVENANCE_V1};
use super::*;
use crate::dsse::Envelope;

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata")
        .join(rel)
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(testdata(rel)).unwrap()
}

type Expect = fn(&StatementError) -> bool;

const EXAMPLES: &str = "in-toto-attestation-examples/examples";

/// Spec examples whose digests are documentation placeholders ("4faeb1b2...", "3A244fd4...").
/// They are schema-valid (parse with `DigestCheck::ShapeOnly`) but must fail strict checks.
const PLACEHOLDER_DIGESTS: &[&str] = &[
    "predicates__release.1.json",
    "predicates__release.3.json",
    "predicates__release.4.json",
    "predicates__svr.1.json",
    "predicates__svr.2.json",
    "predicates__svr.3.json",
    "v1__resource_descriptor.1.json",
    "v1__resource_descriptor.2.json",
    "v1__resource_descriptor.3.json",
];

#[test]
fn every_spec_example_parses_as_what_it_is() {
    let mut seen = 0;
    for entry in std::fs::read_dir(testdata(EXAMPLES)).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let bytes = std::fs::read(&path).unwrap();
        let placeholder = PLACEHOLDER_DIGESTS.contains(&name.as_str());
        if name.starts_with("predicates__") {
            let st = Statement::from_json_with(&bytes, DigestCheck::ShapeOnly).unwrap();
            assert_eq!(st.type_, StatementType::V1, "{name}");
            assert_eq!(Statement::from_json(&bytes).is_err(), placeholder, "{name}");
        } else if name.starts_with("v1__resource_descriptor") {
            ResourceDescriptor::from_json_with(&bytes, DigestCheck::ShapeOnly).unwrap();
            assert_eq!(
                ResourceDescriptor::from_json(&bytes).is_err(),
                placeholder,
                "{name}"
            );
        } else if name == "v0.1.0__README.0.json" {
            // `"<Base64(Statement)>"` is not base64: the README envelope is a template, so it is
            // checked for shape with the placeholders replaced.
            let text = String::from_utf8(bytes).unwrap();
            let filled = text
                .replace("<Base64(Statement)>", "e30=")
                .replace("<Base64(Signature)>", "AA==");
            let env = Envelope::from_json(filled.as_bytes()).unwrap();
            assert_eq!(env.payload_type, crate::dsse::IN_TOTO_PAYLOAD_TYPE);
            assert!(Envelope::from_json(text.as_bytes()).is_err());
        } else {
            panic!("unexpected example {name}");
        }
        seen += 1;
    }
    assert_eq!(seen, 15);
}

#[test]
fn strict_checks_name_the_placeholder_problem() {
    let bytes = read(&format!("{EXAMPLES}/predicates__svr.1.json"));
    match Statement::from_json(&bytes) {
        Err(StatementError::DigestNotLowercaseHex {
            location,
            algorithm,
            ..
        }) => {
            assert_eq!(
                (location.as_str(), algorithm.as_str()),
                ("subject[0]", "sha256")
            );
        }
        other => panic!("{other:?}"),
    }
    let bytes = read(&format!("{EXAMPLES}/predicates__release.1.json"));
    assert!(matches!(
        Statement::from_json(&bytes),
        Err(StatementError::DigestNotLowercaseHex { .. })
    ));
}

#[test]
fn conformance_and_slsa_statements_parse_with_typed_provenance() {
    for rel in [
        "in-toto-attestation/conformance-statement.json",
        "slsa/github-actions-slsa-provenance-v1.statement.json",
    ] {
        let st = Statement::from_json(&read(rel)).unwrap();
        assert_eq!(st.predicate_type, SLSA_PROVENANCE_V1);
        let a_txt = crate::digest::Sha256Digest::from_hex(
            "a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf",
        )
        .unwrap();
        assert!(st.subject_matches_sha256(&a_txt));
        assert!(!st.subject_matches_sha256(&crate::digest::Sha256Digest::of(b"other")));
        let prov = Provenance::from_statement(&st).unwrap();
        assert_eq!(
            prov.build_definition.build_type,
            "https://actions.github.io/buildtypes/workflow/v1"
        );
        assert!(
            prov.run_details
                .builder
                .id
                .starts_with("https://github.com/loosebazooka/aa-test/")
        );
        let dep = &prov.build_definition.resolved_dependencies[0];
        assert_eq!(dep.digest["gitCommit"].len(), 40);
        assert!(
            dep.uri
                .as_ref()
                .unwrap()
                .starts_with("git+https://github.com/loosebazooka/aa-test@")
        );
        assert!(
            prov.run_details
                .metadata
                .as_ref()
                .unwrap()
                .invocation_id
                .is_some()
        );
    }
}

#[test]
fn slsa_predicate_is_refused_when_required_fields_are_missing() {
    let no_builder = serde_json::json!({"buildDefinition": {"buildType": "x", "externalParameters": {}}, "runDetails": {}});
    assert!(matches!(
        Provenance::from_predicate(&no_builder),
        Err(ProvenanceError::Schema { .. })
    ));
    let empty_id = serde_json::json!({"buildDefinition": {"buildType": "x", "externalParameters": {}},
        "runDetails": {"builder": {"id": ""}, "byproducts": null}});
    assert!(matches!(
        Provenance::from_predicate(&empty_id),
        Err(ProvenanceError::EmptyRequiredField { .. })
    ));
    let st = Statement::new_v1(
        vec![ResourceDescriptor::from_sha256(
            "a",
            &crate::digest::Sha256Digest::of(b""),
        )],
        "https://example.com/p",
        serde_json::json!({}),
    );
    assert!(matches!(
        Provenance::from_statement(&st),
        Err(ProvenanceError::WrongPredicateType { .. })
    ));
}

#[test]
fn v0_1_statement_is_read_and_marked() {
    let json = br#"{"_type":"https://in-toto.io/Statement/v0.1","subject":[{"name":"x","digest":{"sha256":"a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"}}],"predicateType":"https://slsa.dev/provenance/v0.2","predicate":{}}"#;
    let st = Statement::from_json(json).unwrap();
    assert_eq!(st.type_, StatementType::V0_1);
}

#[test]
fn round_trip_of_a_built_statement() {
    let d = crate::digest::Sha256Digest::of(b"artifact");
    let st = Statement::new_v1(
        vec![ResourceDescriptor::from_sha256("a.bin", &d)],
        SLSA_PROVENANCE_V1,
        serde_json::json!({"k": [1, 2]}),
    );
    st.validate().unwrap();
    let bytes = st.to_json_bytes();
    assert!(bytes.starts_with(br#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a.bin","digest":{"sha256":""#));
    assert_eq!(Statement::from_json(&bytes).unwrap(), st);
    // Unset predicate is omitted and reads back as null.
    let bare = Statement {
        predicate: serde_json::Value::Null,
        ..st
    };
    assert!(
        !String::from_utf8(bare.to_json_bytes())
            .unwrap()
            .contains("predicate\":")
    );
    assert_eq!(Statement::from_json(&bare.to_json_bytes()).unwrap(), bare);
}

#[test]
fn malformed_statements_are_refused_each_with_its_own_error() {
    const H: &str = "a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";
    let stmt = |ty: &str, subject: &str, ptype: &str| {
        format!(
            r#"{{"_type":"{ty}","subject":{subject},"predicateType":"{ptype}","predicate":{{}}}}"#
        )
    };
    let good_subject = format!(r#"[{{"name":"a","digest":{{"sha256":"{H}"}}}}]"#);
    let cases: Vec<(&str, String, Expect)> = vec![
        (
            "missing subject",
            format!(r#"{{"_type":"{STATEMENT_V1}","predicateType":"p"}}"#),
            |e| matches!(e, StatementError::MissingSubject),
        ),
        ("empty subject list", stmt(STATEMENT_V1, "[]", "p"), |e| {
            matches!(e, StatementError::MissingSubject)
        }),
        (
            "subject without digest",
            stmt(STATEMENT_V1, r#"[{"name":"a","uri":"u"}]"#, "p"),
            |e| matches!(e, StatementError::SubjectWithoutDigest { index: 0 }),
        ),
        (
            "empty digest set",
            stmt(STATEMENT_V1, r#"[{"name":"a","digest":{}}]"#, "p"),
            |e| matches!(e, StatementError::SubjectWithoutDigest { index: 0 }),
        ),
        (
            "empty digest value",
            stmt(STATEMENT_V1, r#"[{"digest":{"sha256":""}}]"#, "p"),
            |e| matches!(e, StatementError::EmptyDigestValue { .. }),
        ),
        (
            "uppercase hex",
            stmt(STATEMENT_V1, &good_subject.replace("a0cf", "A0CF"), "p"),
            |e| matches!(e, StatementError::DigestNotLowercaseHex { .. }),
        ),
        (
            "short hex",
            stmt(STATEMENT_V1, &good_subject.replace(H, &H[..62]), "p"),
            |e| {
                matches!(
                    e,
                    StatementError::DigestLength {
                        expected: 64,
                        found: 62,
                        ..
                    }
                )
            },
        ),
        (
            "sha1 with sha256 length",
            stmt(STATEMENT_V1, &good_subject.replace("sha256", "sha1"), "p"),
            |e| matches!(e, StatementError::DigestLength { expected: 40, .. }),
        ),
        (
            "wrong _type",
            stmt("https://in-toto.io/Statement/v2", &good_subject, "p"),
            |e| matches!(e, StatementError::UnknownType { .. }),
        ),
        (
            "missing _type",
            format!(r#"{{"subject":{good_subject},"predicateType":"p"}}"#),
            |e| matches!(e, StatementError::MissingType),
        ),
        (
            "empty predicateType",
            stmt(STATEMENT_V1, &good_subject, ""),
            |e| matches!(e, StatementError::MissingPredicateType),
        ),
        ("not JSON", "subject: [a.txt]".to_string(), |e| {
            matches!(e, StatementError::NotJson { .. })
        }),
        (
            "truncated",
            stmt(STATEMENT_V1, &good_subject, "p")[..60].to_string(),
            |e| matches!(e, StatementError::Truncated { .. }),
        ),
        (
            "subject is not a list",
            stmt(STATEMENT_V1, "{}", "p"),
            |e| matches!(e, StatementError::Schema { .. }),
        ),
    ];
    // The table's good baseline parses.
    Statement::from_json(stmt(STATEMENT_V1, &good_subject, "p").as_bytes()).unwrap();
    for (name, json, expected) in cases {
        match Statement::from_json(json.as_bytes()) {
            Err(e) => assert!(expected(&e), "{name}: wrong error {e:?}"),
            Ok(st) => panic!("{name}: accepted {st:?}"),
        }
    }
}

#[test]
fn unknown_algorithms_are_not_judged_and_git_ids_take_both_lengths() {
    let json = format!(
        r#"{{"_type":"{STATEMENT_V1}","subject":[{{"digest":{{"dirHash":"h1:abc=","gitCommit":"{}","gitTree":"{}"}}}}],"predicateType":"p"}}"#,
        "a".repeat(40),
        "b".repeat(64)
    );
    Statement::from_json(json.as_bytes()).unwrap();
}

#[test]
fn resource_descriptor_needs_uri_digest_or_content() {
    assert!(matches!(
        ResourceDescriptor::from_json(br#"{"name":"only-a-name"}"#),
        Err(StatementError::EmptyResourceDescriptor { .. })
    ));
    let rd =
        ResourceDescriptor::from_json(&read(&format!("{EXAMPLES}/v1__resource_descriptor.5.json")))
            .unwrap();
    assert!(rd.content.as_ref().unwrap().starts_with(b"{ \"result\""));
    assert_eq!(
        ResourceDescriptor::from_json(&serde_json::to_vec(&rd).unwrap()).unwrap(),
        rd
    );
}
