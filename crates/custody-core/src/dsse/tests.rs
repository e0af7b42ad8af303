#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED, EcdsaKeyPair,
    KeyPair as _, UnparsedPublicKey, VerificationAlgorithm,
};

use super::*;

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata")
        .join(rel)
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(testdata(rel)).unwrap()
}

/// A P-256 verifier over a raw uncompressed point, as the tests need it (keys.rs is separate).
struct P256 {
    point: Vec<u8>,
    alg: &'static dyn VerificationAlgorithm,
    id: Option<String>,
}

impl SignatureVerifier for P256 {
    fn verify_signature(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(self.alg, &self.point)
            .verify(message, signature)
            .is_ok()
    }
    fn key_id_hint(&self) -> Option<&str> {
        self.id.as_deref()
    }
}

/// The DSSE spec vector key: uncompressed point = last 65 bytes of the P-256 SPKI.
fn spec_key(alg: &'static dyn VerificationAlgorithm) -> P256 {
    let pem = String::from_utf8(read("dsse-spec/spec-hello-world/DERIVED-pubkey.pem")).unwrap();
    let (_, der) = pem_rfc7468::decode_vec(pem.as_bytes()).unwrap();
    P256 {
        point: der[der.len() - 65..].to_vec(),
        alg,
        id: None,
    }
}

fn fresh_key() -> (EcdsaKeyPair, P256) {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
    let point = pair.public_key().as_ref().to_vec();
    (
        pair,
        P256 {
            point,
            alg: &ECDSA_P256_SHA256_ASN1,
            id: None,
        },
    )
}

fn sign(pair: &EcdsaKeyPair, env: &Envelope) -> Vec<u8> {
    pair.sign(&SystemRandom::new(), &env.pae())
        .unwrap()
        .as_ref()
        .to_vec()
}

#[test]
fn pae_matches_spec_vector_bytes() {
    let expected = read("dsse-spec/spec-hello-world/pae.bin");
    assert_eq!(
        pae("http://example.com/HelloWorld", b"hello world"),
        expected
    );
    assert_eq!(
        expected,
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    );
}

#[test]
fn pae_counts_bytes_not_characters() {
    // "é" is one character but two UTF-8 bytes; the empty body is "0".
    assert_eq!(pae("é", b""), "DSSEv1 2 é 0 ".as_bytes());
}

#[test]
fn spec_envelope_parses_and_verifies_raw_signature() {
    for file in ["envelope.json", "envelope-with-keyid.json"] {
        let env =
            Envelope::from_json(&read(&format!("dsse-spec/spec-hello-world/{file}"))).unwrap();
        assert_eq!(env.payload, b"hello world");
        assert_eq!(env.payload_type, "http://example.com/HelloWorld");
        let key = spec_key(&ECDSA_P256_SHA256_FIXED);
        let verified = env.verify(&[&key], 1).unwrap();
        assert_eq!(verified.payload, b"hello world");
        assert_eq!(verified.verified_by(), &[0]);
    }
}

#[test]
fn derived_der_signature_verifies_with_asn1_key() {
    let env = Envelope::from_json(&read(
        "dsse-spec/spec-hello-world/DERIVED-envelope-der-sig.json",
    ))
    .unwrap();
    assert_eq!(env.signatures[0].keyid, "66301bbf");
    env.verify(&[&spec_key(&ECDSA_P256_SHA256_ASN1)], 1)
        .unwrap();
    // The raw r‖s key does not accept a DER signature.
    assert!(
        env.verify(&[&spec_key(&ECDSA_P256_SHA256_FIXED)], 1)
            .is_err()
    );
}

#[test]
fn url_safe_and_unpadded_base64_are_accepted() {
    let json = br#"{"payload":"-_8","payloadType":"t","signatures":[{"sig":"_w"}],"extra":1}"#;
    let env = Envelope::from_json(json).unwrap();
    assert_eq!(env.payload, [0xfb, 0xff]);
    assert_eq!(env.signatures[0].sig, [0xff]);
    assert_eq!(env.signatures[0].keyid, "");
}

#[test]
fn missing_required_fields_are_named() {
    let cases: [(&[u8], &str); 4] = [
        (br#"{"payloadType":"t","signatures":[]}"#, "payload"),
        (br#"{"payload":"","signatures":[]}"#, "payloadType"),
        (br#"{"payload":"","payloadType":"t"}"#, "signatures"),
        (
            br#"{"payload":"","payloadType":"t","signatures":[{"keyid":"k"}]}"#,
            "signatures[].sig",
        ),
    ];
    for (json, missing) in cases {
        match Envelope::from_json(json) {
            Err(DsseError::MissingField { field }) => assert_eq!(field, missing),
            other => panic!("{missing}: {other:?}"),
        }
    }
    // Present-but-empty is fine.
    Envelope::from_json(br#"{"payload":"","payloadType":"","signatures":[]}"#).unwrap();
}

#[test]
fn garbage_is_refused_with_reason() {
    assert!(matches!(
        Envelope::from_json(b"{\"payload\":"),
        Err(DsseError::Json { .. })
    ));
    let bad_sig = br#"{"payload":"","payloadType":"t","signatures":[{"sig":"a*b"}]}"#;
    match Envelope::from_json(bad_sig) {
        Err(DsseError::InvalidBase64 { field, .. }) => assert_eq!(field, "signatures[0].sig"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn to_json_is_byte_exact() {
    let mut env = Envelope::new("http://example.com/HelloWorld", b"hello world".to_vec());
    env.signatures.push(EnvelopeSignature {
        keyid: String::new(),
        sig: vec![0xfb, 0xff],
    });
    env.signatures.push(EnvelopeSignature {
        keyid: "k1".into(),
        sig: vec![1],
    });
    assert_eq!(
        env.to_json(),
        r#"{"payload":"aGVsbG8gd29ybGQ=","payloadType":"http://example.com/HelloWorld","signatures":[{"sig":"+/8="},{"keyid":"k1","sig":"AQ=="}]}"#
    );
    assert_eq!(Envelope::from_json(env.to_json().as_bytes()).unwrap(), env);
}

#[test]
fn threshold_counts_unique_keys_and_skips_failures() {
    let (pair_a, key_a) = fresh_key();
    let (pair_b, key_b) = fresh_key();
    let (_, stranger) = fresh_key();
    let mut env = Envelope::new(IN_TOTO_PAYLOAD_TYPE, b"{}".to_vec());
    env.signatures.push(EnvelopeSignature {
        keyid: "junk".into(),
        sig: vec![0; 70],
    });
    env.signatures.push(EnvelopeSignature {
        keyid: String::new(),
        sig: sign(&pair_a, &env),
    });
    env.signatures.push(EnvelopeSignature {
        keyid: String::new(),
        sig: sign(&pair_b, &env),
    });

    assert_eq!(
        env.verify(&[&key_a, &key_b], 2).unwrap().verified_by(),
        &[0, 1]
    );
    assert_eq!(
        env.verify(&[&stranger, &key_b], 1).unwrap().verified_by(),
        &[1]
    );
    assert!(matches!(
        env.verify(&[&stranger, &key_b], 2),
        Err(DsseError::ThresholdNotMet {
            verified: 1,
            threshold: 2,
            signatures: 3
        })
    ));
    // The same key passed twice counts once.
    assert!(env.verify(&[&key_a, &key_a], 2).is_err());
    // Two verifier objects claiming the same key id count once.
    let a1 = P256 {
        id: Some("same".into()),
        ..key_a
    };
    let b1 = P256 {
        id: Some("same".into()),
        ..key_b
    };
    assert!(env.verify(&[&a1, &b1], 2).is_err());
    assert!(matches!(
        env.verify(&[&a1], 0),
        Err(DsseError::ZeroThreshold)
    ));
    assert!(matches!(env.verify(&[], 1), Err(DsseError::NoVerifiers)));
}

#[test]
fn tampering_breaks_verification() {
    let (pair, key) = fresh_key();
    let mut env = Envelope::new(IN_TOTO_PAYLOAD_TYPE, b"{\"a\":1}".to_vec());
    env.signatures.push(EnvelopeSignature {
        keyid: String::new(),
        sig: sign(&pair, &env),
    });
    env.verify(&[&key], 1).unwrap();

    let mut payload = env.clone();
    payload.payload[1] ^= 1;
    assert!(payload.verify(&[&key], 1).is_err());
    let mut ptype = env.clone();
    ptype.payload_type = "application/vnd.in-toto+jsoN".into();
    assert!(ptype.verify(&[&key], 1).is_err());
    let mut unsigned = env;
    unsigned.signatures.clear();
    assert!(matches!(
        unsigned.verify(&[&key], 1),
        Err(DsseError::NoSignatures)
    ));
}
