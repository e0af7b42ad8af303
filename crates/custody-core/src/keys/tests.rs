//! Upstream fixtures (cosign, DSSE spec, in-toto, CT) and round trips for every algorithm.

use std::path::PathBuf;

use super::*;
use crate::digest::Sha256Digest;
use crate::encoding::base64_decode_any;

/// A file under `../shared/testdata` (see its README.md).
pub(super) fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata")
        .join(rel)
}

pub(super) fn read(rel: &str) -> Vec<u8> {
    let path = testdata(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const HELLO: Option<&[u8]> = Some(b"hello");
const DSSE: &str = "dsse-spec/spec-hello-world/";

fn sign_and_verify(key: &SigningKey) {
    let signature = key.sign(SignedData::Message(b"payload")).unwrap();
    let public = key.public_key();
    public
        .verify(SignedData::Message(b"payload"), &signature)
        .unwrap();
    assert_eq!(
        public.verify(SignedData::Message(b"payloaD"), &signature),
        Err(SignatureError::Invalid)
    );
}

// ---- cosign encrypted keys (SPECS §7.1) ----

#[test]
fn cosign_and_sigstore_labelled_keys_import_and_sign() {
    for file in ["cosign/pemcosignkey.pem", "cosign/pemsigstorekey.pem"] {
        let pem = read(file);
        assert!(SigningKey::is_encrypted_pem(&pem), "{file}");
        let key = SigningKey::from_pem(&pem, HELLO).unwrap();
        assert_eq!(key.algorithm(), KeyAlgorithm::EcdsaP256Sha256, "{file}");
        sign_and_verify(&key);
    }
}

#[test]
fn cosign_key_decrypting_to_sec1_is_refused_like_cosign_does() {
    let err = SigningKey::from_pem(&read("cosign/pemcosigneckey.pem"), HELLO).unwrap_err();
    assert!(matches!(err, KeyError::Sec1NotPkcs8), "{err}");
    assert!(err.to_string().contains("PKCS#8"), "{err}");
}

#[test]
fn wrong_or_missing_password_is_refused() {
    let pem = read("cosign/pemsigstorekey.pem");
    let err = SigningKey::from_pem(&pem, Some(b"hellO")).unwrap_err();
    assert!(matches!(err, KeyError::WrongPassword), "{err}");
    assert!(err.to_string().contains("CUSTODY_PASSWORD") && !err.to_string().contains("hellO"));
    assert!(matches!(
        SigningKey::from_pem(&pem, None),
        Err(KeyError::PasswordRequired)
    ));
}

#[test]
fn broken_key_files_each_get_their_own_error() {
    let pem = read("cosign/pemsigstorekey.pem");
    let half = &pem[..pem.len() / 2];
    assert!(matches!(
        SigningKey::from_pem(half, HELLO),
        Err(KeyError::Truncated)
    ));
    // A whole base64 line lost: the PEM still closes, the JSON inside does not.
    let text = String::from_utf8(pem.clone()).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.remove(3);
    let err = SigningKey::from_pem(lines.join("\n").as_bytes(), HELLO).unwrap_err();
    assert!(
        matches!(
            err,
            KeyError::MalformedPem { .. } | KeyError::MalformedEncryptedKey { .. }
        ),
        "{err}"
    );

    let garbage = read("cosign-fixtures/pkg/cosign/testdata/garbage-there-are-limits");
    assert!(matches!(
        SigningKey::from_pem(&garbage, HELLO),
        Err(KeyError::NotAKey)
    ));
    assert!(matches!(
        PublicKey::from_pem(&garbage),
        Err(KeyError::NotAKey)
    ));
    assert!(!SigningKey::is_encrypted_pem(&garbage));

    let public = read(&format!("{DSSE}DERIVED-pubkey.pem"));
    assert!(matches!(
        SigningKey::from_pem(&public, HELLO),
        Err(KeyError::PublicKeyNotPrivate)
    ));
    let der = PublicKey::from_pem(&public).unwrap().spki_der().to_vec();
    assert!(matches!(
        SigningKey::from_pkcs8_der(&der),
        Err(KeyError::PublicKeyNotPrivate)
    ));
    assert!(matches!(
        PublicKey::from_pem(&pem),
        Err(KeyError::PrivateKeyNotPublic)
    ));

    let pkcs8_encrypted = read("in-toto-python/pems/ecdsa_private_encrypted.pem");
    let err = SigningKey::from_pem(&pkcs8_encrypted, HELLO).unwrap_err();
    assert!(
        matches!(err, KeyError::UnsupportedPemLabel { ref label, .. } if label == "ENCRYPTED PRIVATE KEY")
    );
}

// ---- public key fixtures ----

#[test]
fn public_key_fixtures_parse() {
    // (file, algorithm, Sigstore key details, SHA-256 of the SPKI as computed by openssl)
    let cases = [
        (
            "cosign-fixtures/pkg/cosign/testdata/google",
            KeyAlgorithm::RsaPkcs1Sha256,
            "PKIX_RSA_PKCS1V15_4096_SHA256",
            Some("f1d8b68e50210d8e73d9a3e97f571773c52d7f28c0b1a71beee81d8562e6fd85"),
        ),
        (
            "cosign-fixtures/pkg/cosign/testdata/rsa",
            KeyAlgorithm::RsaPkcs1Sha256,
            "PKIX_RSA_PKCS1V15_4096_SHA256",
            Some("d75e292019101b557262585fec8bb335aec92f7ca1625b497a8e15b461f98c9d"),
        ),
        (
            "dsse-spec/spec-hello-world/DERIVED-pubkey.pem",
            KeyAlgorithm::EcdsaP256Sha256,
            "PKIX_ECDSA_P256_SHA_256",
            Some("f793580060562d6ff075d814ea698c282fcc779b0cde64d79ffc6301df00d14b"),
        ),
        (
            "in-toto-python/pems/ecdsa_public.pem",
            KeyAlgorithm::EcdsaP256Sha256,
            "PKIX_ECDSA_P256_SHA_256",
            None,
        ),
        (
            "in-toto-python/pems/ed25519_public.pem",
            KeyAlgorithm::Ed25519,
            "PKIX_ED25519",
            None,
        ),
        (
            "in-toto-python/pems/rsa_public.pem",
            KeyAlgorithm::RsaPkcs1Sha256,
            "PKIX_RSA_PKCS1V15_2048_SHA256",
            None,
        ),
    ];
    for (file, algorithm, details, key_id) in cases {
        let text = read(file);
        let key = PublicKey::from_pem(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(key.algorithm(), algorithm, "{file}");
        assert_eq!(key.sigstore_key_details(), Some(details), "{file}");
        assert_eq!(key.key_id(), KeyId(Sha256Digest::of(key.spki_der()).0));
        if let Some(id) = key_id {
            assert_eq!(key.key_id().to_string(), id, "{file}");
        }
        let again = PublicKey::from_pem(key.to_pem().as_bytes()).unwrap();
        assert_eq!(again, key, "{file}");
        if !text.starts_with(b"-----BEGIN RSA") {
            assert_eq!(
                key.to_pem().as_bytes(),
                &text[..],
                "{file}: to_pem writes the same bytes"
            );
        }
    }
}

#[test]
fn der_ec_spki_parses_and_its_key_id_is_the_ct_log_id() {
    let der = read("cosign-fixtures/pkg/cosign/testdata/letsencrypt-testflume-2021");
    let key = PublicKey::from_spki_der(&der).unwrap();
    assert_eq!(key.algorithm(), KeyAlgorithm::EcdsaP256Sha256);
    assert_eq!(key.key_id(), KeyId(Sha256Digest::of(&der).0));
    assert_eq!(key.spki_der(), &der[..]);
    assert!(format!("{key:?}").contains(&key.key_id().to_string()));
    // Trailing bytes after the SPKI are not ignored.
    let mut longer = der.clone();
    longer.push(0);
    assert!(matches!(
        PublicKey::from_spki_der(&longer),
        Err(KeyError::MalformedDer { .. })
    ));
}

// ---- DSSE spec vector ----

#[test]
fn dsse_spec_vector_verifies_in_raw_and_der_form() {
    let key = PublicKey::from_pem(&read(&format!("{DSSE}DERIVED-pubkey.pem"))).unwrap();
    let pae = read(&format!("{DSSE}pae.bin"));
    let envelope: serde_json::Value =
        serde_json::from_slice(&read(&format!("{DSSE}envelope.json"))).unwrap();
    let raw = base64_decode_any(envelope["signatures"][0]["sig"].as_str().unwrap()).unwrap();
    let der = read(&format!("{DSSE}DERIVED-sig.der"));
    assert_eq!(raw.len(), 64);
    for signature in [&raw, &der] {
        key.verify(SignedData::Message(&pae), signature).unwrap();
        key.verify(
            SignedData::Sha256Digest(Sha256Digest::of(&pae).as_bytes()),
            signature,
        )
        .unwrap();
        let mut flipped = signature.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(
            key.verify(SignedData::Message(&pae), &flipped),
            Err(SignatureError::Invalid)
        );
        let mut pae = pae.clone();
        pae[7] ^= 0x80;
        assert_eq!(
            key.verify(SignedData::Message(&pae), signature),
            Err(SignatureError::Invalid)
        );
    }
}

#[test]
fn unencrypted_pkcs8_fixtures_match_their_public_keys() {
    let pairs = [
        (
            format!("{DSSE}DERIVED-privkey.pem"),
            format!("{DSSE}DERIVED-pubkey.pem"),
        ),
        (
            "in-toto-python/pems/ecdsa_private_unencrypted.pem".into(),
            "in-toto-python/pems/ecdsa_public.pem".into(),
        ),
        (
            "in-toto-python/pems/ed25519_private_unencrypted.pem".into(),
            "in-toto-python/pems/ed25519_public.pem".into(),
        ),
        (
            "in-toto-python/pems/rsa_private_unencrypted.pem".into(),
            "in-toto-python/pems/rsa_public.pem".into(),
        ),
    ];
    for (private, public) in pairs {
        assert!(!SigningKey::is_encrypted_pem(&read(&private)));
        let key = SigningKey::from_pem(&read(&private), None)
            .unwrap_or_else(|e| panic!("{private}: {e}"));
        assert_eq!(
            key.public_key(),
            PublicKey::from_pem(&read(&public)).unwrap(),
            "{private}"
        );
        sign_and_verify(&key);
    }
}
