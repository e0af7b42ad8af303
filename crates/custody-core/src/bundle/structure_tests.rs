#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Bundles built in code: round trips, media types, and one error per structural rule.

use super::*;
use crate::dsse::EnvelopeSignature;

type Expect = fn(&BundleError) -> bool;
type Mutation = Box<dyn Fn(&mut serde_json::Value)>;

fn sample_entry() -> TransparencyLogEntry {
    TransparencyLogEntry {
        log_index: 79571823,
        log_id: vec![0xc0; 32],
        kind: "hashedrekord".into(),
        version: "0.0.1".into(),
        integrated_time: 1710869186,
        inclusion_promise: Some(vec![0x30, 0x44, 1]),
        inclusion_proof: Some(InclusionProof {
            log_index: 0,
            root_hash: vec![7; 32],
            tree_size: 1,
            hashes: vec![],
            checkpoint: "origin\n1\nBwc=\n\n— origin AAAA\n".into(),
        }),
        canonicalized_body: br#"{"apiVersion":"0.0.1"}"#.to_vec(),
    }
}

#[test]
fn built_bundles_round_trip() {
    let digest = crate::digest::Sha256Digest::of(b"artifact");
    let msg = Bundle::new_message_signature_v03("hint".into(), &digest, vec![0x30, 1, 2])
        .with_tlog_entry(sample_entry());
    let json = msg.to_json();
    assert!(json.starts_with(r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"hint"},"tlogEntries":[{"logIndex":"79571823","#), "{json}");
    assert!(
        json.contains(r#""algorithm":"SHA2_256""#)
            && json.contains(r#""integratedTime":"1710869186""#)
    );
    assert!(
        json.contains(r#""treeSize":"1""#) && !json.contains(r#""hashes""#),
        "zero/empty fields omitted: {json}"
    );
    assert_eq!(Bundle::from_json(json.as_bytes()).unwrap(), msg);

    let mut env = Envelope::new(crate::dsse::IN_TOTO_PAYLOAD_TYPE, b"{\"x\": 1}\n".to_vec());
    env.signatures.push(EnvelopeSignature {
        keyid: String::new(),
        sig: vec![1, 2, 3],
    });
    let mut dsse = Bundle::new_dsse_v03("hint".into(), env);
    dsse.verification_material
        .rfc3161_timestamps
        .push(vec![0x30, 0]);
    assert_eq!(Bundle::from_json(dsse.to_json().as_bytes()).unwrap(), dsse);
    // No tlog entries is a verification question, not a parse error.
    assert!(
        Bundle::from_json(dsse.to_json().as_bytes())
            .unwrap()
            .verification_material
            .tlog_entries
            .is_empty()
    );
}

#[test]
fn media_types() {
    use BundleVersion::*;
    let ok = [
        (MEDIA_TYPE_V0_1_LEGACY, V0_1),
        (MEDIA_TYPE_V0_2_LEGACY, V0_2),
        (MEDIA_TYPE_V0_3_LEGACY, V0_3),
        (MEDIA_TYPE_V0_3, V0_3),
        ("application/vnd.dev.sigstore.bundle.v0.3.1+json", V0_3),
    ];
    for (mt, v) in ok {
        assert_eq!(BundleVersion::from_media_type(mt).unwrap(), v, "{mt}");
    }
    for mt in [
        "application/vnd.dev.sigstore.bundle.v0.4+json",
        "application/vnd.dev.sigstore.bundle+json;version=0.4",
        "application/vnd.dev.sigstore.bundle.v1.0+json",
    ] {
        let err = BundleVersion::from_media_type(mt).unwrap_err();
        assert!(
            matches!(err, BundleError::UnsupportedVersion { .. }),
            "{mt}"
        );
        assert!(
            err.to_string().contains(mt),
            "error names the media type: {err}"
        );
    }
    for mt in [
        "",
        "application/json",
        "application/vnd.dev.sigstore.bundle.vX+json",
        "application/vnd.dev.sigstore.bundle+json;version=",
    ] {
        assert!(
            matches!(
                BundleVersion::from_media_type(mt),
                Err(BundleError::UnknownMediaType { .. })
            ),
            "{mt:?}"
        );
    }
}

#[test]
fn structural_rules_each_have_their_error() {
    let digest = crate::digest::Sha256Digest::of(b"a");
    let base: serde_json::Value = serde_json::from_str(
        &Bundle::new_message_signature_v03("k".into(), &digest, vec![1])
            .with_tlog_entry(sample_entry())
            .to_json(),
    )
    .unwrap();
    let mutate = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = base.clone();
        f(&mut v);
        Bundle::from_json(v.to_string().as_bytes())
    };
    let cases: Vec<(&str, Mutation, Expect)> = vec![
        (
            "no material",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("verificationMaterial");
            }),
            |e| matches!(e, BundleError::MissingField { .. }),
        ),
        (
            "no key/cert",
            Box::new(|v| {
                v["verificationMaterial"]
                    .as_object_mut()
                    .unwrap()
                    .remove("publicKey");
            }),
            |e| matches!(e, BundleError::MissingVerificationContent),
        ),
        (
            "key and cert",
            Box::new(|v| {
                v["verificationMaterial"]["certificate"] = serde_json::json!({"rawBytes": "AQ=="});
            }),
            |e| matches!(e, BundleError::ConflictingVerificationContent),
        ),
        (
            "chain in v0.3",
            Box::new(|v| {
                let m = v["verificationMaterial"].as_object_mut().unwrap();
                m.remove("publicKey");
                m.insert(
                    "x509CertificateChain".into(),
                    serde_json::json!({"certificates": [{"rawBytes": "AQ=="}]}),
                );
            }),
            |e| matches!(e, BundleError::CertificateChainNotAllowed { .. }),
        ),
        (
            "empty certificate",
            Box::new(|v| {
                let m = v["verificationMaterial"].as_object_mut().unwrap();
                m.remove("publicKey");
                m.insert("certificate".into(), serde_json::json!({"rawBytes": ""}));
            }),
            |e| matches!(e, BundleError::EmptyCertificate { .. }),
        ),
        (
            "v0.3 entry without proof",
            Box::new(|v| {
                v["verificationMaterial"]["tlogEntries"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("inclusionProof");
            }),
            |e| matches!(e, BundleError::MissingInclusionProof { entry: 0 }),
        ),
        (
            "v0.1 entry without promise",
            Box::new(|v| {
                v["mediaType"] = MEDIA_TYPE_V0_1_LEGACY.into();
                v["verificationMaterial"]["tlogEntries"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("inclusionPromise");
            }),
            |e| matches!(e, BundleError::MissingInclusionPromise { entry: 0 }),
        ),
        (
            "negative tree size",
            Box::new(|v| {
                v["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["treeSize"] =
                    (-5).into();
            }),
            |e| matches!(e, BundleError::NegativeInteger { value: -5, .. }),
        ),
        (
            "log index as JSON number",
            Box::new(|v| {
                v["verificationMaterial"]["tlogEntries"][0]["logIndex"] = 12.into();
            }),
            |_| false,
        ),
        (
            "log index garbage",
            Box::new(|v| {
                v["verificationMaterial"]["tlogEntries"][0]["logIndex"] = "12x".into();
            }),
            |e| matches!(e, BundleError::InvalidInteger { .. }),
        ),
        (
            "no logId",
            Box::new(|v| {
                v["verificationMaterial"]["tlogEntries"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("logId");
            }),
            |e| matches!(e, BundleError::MissingField { field } if field.ends_with("logId.keyId")),
        ),
        (
            "no content",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("messageSignature");
            }),
            |e| matches!(e, BundleError::MissingContent),
        ),
        (
            "both contents",
            Box::new(|v| {
                v["dsseEnvelope"] = serde_json::json!({"payload": "", "payloadType": "t", "signatures": [{"sig": "AQ=="}]});
            }),
            |e| matches!(e, BundleError::ConflictingContent),
        ),
        (
            "unknown hash",
            Box::new(|v| {
                v["messageSignature"]["messageDigest"]["algorithm"] = "MD5".into();
            }),
            |e| matches!(e, BundleError::UnknownHashAlgorithm { .. }),
        ),
        (
            "not an object",
            Box::new(|v| {
                *v = serde_json::json!([1]);
            }),
            |e| matches!(e, BundleError::Schema { .. }),
        ),
    ];
    for (name, f, expected) in cases {
        match mutate(&*f) {
            Ok(b) if name == "log index as JSON number" => {
                assert_eq!(b.verification_material.tlog_entries[0].log_index, 12)
            }
            Ok(_) => panic!("{name}: accepted"),
            Err(e) => assert!(expected(&e), "{name}: wrong error {e}"),
        }
    }
}

#[test]
fn dsse_in_a_bundle_needs_exactly_one_signature() {
    for sigs in ["[]", r#"[{"sig":"AQ=="},{"sig":"Ag=="}]"#] {
        let json = format!(
            r#"{{"mediaType":"{MEDIA_TYPE_V0_3}","verificationMaterial":{{"publicKey":{{"hint":"k"}}}},"dsseEnvelope":{{"payload":"","payloadType":"t","signatures":{sigs}}}}}"#
        );
        assert!(
            matches!(
                Bundle::from_json(json.as_bytes()),
                Err(BundleError::DsseSignatureCount { .. })
            ),
            "{sigs}"
        );
    }
    let no_payload = format!(
        r#"{{"mediaType":"{MEDIA_TYPE_V0_3}","verificationMaterial":{{"publicKey":{{}}}},"dsseEnvelope":{{"payloadType":"t","signatures":[]}}}}"#
    );
    assert!(matches!(
        Bundle::from_json(no_payload.as_bytes()),
        Err(BundleError::Dsse { .. })
    ));
}
