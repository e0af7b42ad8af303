//! Round trips for every algorithm: generate, encrypt, read back, sign, verify; and how
//! signatures of the wrong shape or padding are told apart.

use super::tests::read;
use super::*;
use crate::digest::Sha256Digest;

const DSSE: &str = "dsse-spec/spec-hello-world/";

// ---- round trips ----

/// generate → encrypted PEM → from_pem → sign message and digest → verify.
///
/// scrypt is slow in unoptimized builds (~10 s for N=65536), so one test per algorithm lets the
/// harness run them side by side, and only the default algorithm pays for the default N; the
/// others are written at N=32768 (cosign's legacy cost, which readers accept).
fn round_trip_through_encrypted_pem(alg: KeyAlgorithm) -> String {
    let key = SigningKey::generate(alg).unwrap();
    let pem = if alg == KeyAlgorithm::default() {
        key.to_encrypted_pem(b"correct horse").unwrap()
    } else {
        let body = cosign::encrypt(&key.to_pkcs8_der().unwrap(), b"correct horse", 15).unwrap();
        pem::encode(cosign::LABEL_SIGSTORE, &body)
    };
    assert!(
        pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"),
        "{alg}"
    );
    let read_back = SigningKey::from_pem(pem.as_bytes(), Some(b"correct horse")).unwrap();
    // The PKCS#8 does not record RSA padding: a read-back RSA key signs PKCS#1 v1.5 until told.
    assert_eq!(
        read_back.public_key().spki_der(),
        key.public_key().spki_der(),
        "{alg}"
    );
    let read_back = read_back.with_algorithm(alg).unwrap();
    assert_eq!(read_back.public_key(), key.public_key(), "{alg}");
    check_message_and_digest(&read_back, &key.public_key());
    pem
}

#[test]
fn ecdsa_p256_round_trips_through_encrypted_pem_in_cosign_layout() {
    let pem = round_trip_through_encrypted_pem(KeyAlgorithm::EcdsaP256Sha256);
    let json = pem::decode_first(pem.as_bytes()).unwrap().der;
    let prefix = br#"{"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":""#;
    assert!(
        json.starts_with(prefix),
        "Go struct field order: {}",
        String::from_utf8_lossy(&json)
    );
    assert!(pem.lines().all(|line| line.len() <= 64));
}

#[test]
fn ecdsa_p384_round_trips_through_encrypted_pem() {
    round_trip_through_encrypted_pem(KeyAlgorithm::EcdsaP384Sha384);
}

#[test]
fn ed25519_round_trips_through_encrypted_pem() {
    round_trip_through_encrypted_pem(KeyAlgorithm::Ed25519);
}

#[test]
fn rsa_pkcs1_round_trips_through_encrypted_pem() {
    round_trip_through_encrypted_pem(KeyAlgorithm::RsaPkcs1Sha256);
}

#[test]
fn rsa_pss_round_trips_through_encrypted_pem() {
    round_trip_through_encrypted_pem(KeyAlgorithm::RsaPssSha256);
}

/// Signs the message and its digest; checks which forms verify which.
fn check_message_and_digest(key: &SigningKey, public: &PublicKey) {
    let alg = key.algorithm();
    let message = b"the artifact";
    let digest = Sha256Digest::of(message);
    let (as_message, as_digest) = (
        SignedData::Message(message),
        SignedData::Sha256Digest(digest.as_bytes()),
    );
    let over_message = key.sign(as_message).unwrap();
    public.verify(as_message, &over_message).unwrap();
    match alg {
        KeyAlgorithm::Ed25519 | KeyAlgorithm::EcdsaP384Sha384 => {
            let err = key.sign(as_digest).unwrap_err();
            assert!(
                matches!(err, KeyError::PrehashUnsupported { .. }),
                "{alg}: {err}"
            );
            assert!(err.to_string().contains("give the file, not its digest"));
            let err = public.verify(as_digest, &over_message).unwrap_err();
            assert_eq!(err, SignatureError::PrehashUnsupported);
        }
        _ => {
            // Prehashed and message forms are interchangeable both ways.
            public.verify(as_digest, &over_message).unwrap();
            let over_digest = key.sign(as_digest).unwrap();
            public.verify(as_digest, &over_digest).unwrap();
            public.verify(as_message, &over_digest).unwrap();
            let other = Sha256Digest::of(b"another artifact");
            let err = public.verify(SignedData::Sha256Digest(other.as_bytes()), &over_digest);
            assert_eq!(err, Err(SignatureError::Invalid), "{alg}");
        }
    }
}

#[test]
fn unencrypted_pem_and_pkcs8_round_trip() {
    let key = SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
    let pem = key.to_unencrypted_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert_eq!(
        SigningKey::from_pem(pem.as_bytes(), None)
            .unwrap()
            .public_key(),
        key.public_key()
    );
    let der = key.to_pkcs8_der().unwrap();
    assert_eq!(
        SigningKey::from_pkcs8_der(&der).unwrap().public_key(),
        key.public_key()
    );
}

#[test]
fn rsa_padding_is_chosen_by_the_caller_not_the_signature() {
    let key = SigningKey::from_pem(
        &read("in-toto-python/pems/rsa_private_unencrypted.pem"),
        None,
    )
    .unwrap();
    assert_eq!(key.algorithm(), KeyAlgorithm::RsaPkcs1Sha256);
    let pkcs1 = key.sign(SignedData::Message(b"m")).unwrap();
    let key = key.with_algorithm(KeyAlgorithm::RsaPssSha256).unwrap();
    let pss = key.sign(SignedData::Message(b"m")).unwrap();
    let public = key.public_key();
    assert_eq!(
        public.sigstore_key_details(),
        Some("PKIX_RSA_PSS_2048_SHA256")
    );
    public.verify(SignedData::Message(b"m"), &pss).unwrap();
    assert_eq!(
        public.verify(SignedData::Message(b"m"), &pkcs1),
        Err(SignatureError::Invalid)
    );
    let public = public.with_algorithm(KeyAlgorithm::RsaPkcs1Sha256).unwrap();
    public.verify(SignedData::Message(b"m"), &pkcs1).unwrap();
    assert_eq!(
        public.verify(SignedData::Message(b"m"), &pss),
        Err(SignatureError::Invalid)
    );
    let err = public.with_algorithm(KeyAlgorithm::Ed25519).unwrap_err();
    assert!(matches!(err, KeyError::AlgorithmMismatch { .. }), "{err}");
}

#[test]
fn malformed_signatures_are_told_apart_from_invalid_ones() {
    let ec = PublicKey::from_pem(&read(&format!("{DSSE}DERIVED-pubkey.pem"))).unwrap();
    let ed = PublicKey::from_pem(&read("in-toto-python/pems/ed25519_public.pem")).unwrap();
    let rsa = PublicKey::from_pem(&read("in-toto-python/pems/rsa_public.pem")).unwrap();
    let der_sig = read(&format!("{DSSE}DERIVED-sig.der"));
    let m = SignedData::Message(b"m");
    assert!(matches!(
        ec.verify(m, b"garbage"),
        Err(SignatureError::Malformed { .. })
    ));
    assert!(matches!(
        ec.verify(m, &[]),
        Err(SignatureError::Malformed { .. })
    ));
    assert!(matches!(
        ec.verify(m, &[0u8; 256]),
        Err(SignatureError::WrongAlgorithm { .. })
    ));
    assert!(matches!(
        ed.verify(m, &der_sig),
        Err(SignatureError::Malformed { .. })
    ));
    assert!(matches!(
        rsa.verify(m, &der_sig),
        Err(SignatureError::WrongAlgorithm { .. })
    ));
    assert!(matches!(
        rsa.verify(m, &[0u8; 64]),
        Err(SignatureError::WrongAlgorithm { .. })
    ));
    assert_eq!(ec.verify(m, &[0u8; 64]), Err(SignatureError::Invalid));
    assert_eq!(ed.verify(m, &[0u8; 64]), Err(SignatureError::Invalid));
}

#[test]
fn debug_output_shows_no_secrets() {
    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
    let debug = format!("{key:?}");
    let pkcs8 = key.to_pkcs8_der().unwrap();
    let secret_hex = hex::encode(&pkcs8[36..68]); // the private scalar in aws-lc's PKCS#8 layout
    assert!(
        debug.contains(&key.public_key().key_id().to_string()),
        "{debug}"
    );
    assert!(!debug.contains(&secret_hex) && debug.len() < 200, "{debug}");
}
