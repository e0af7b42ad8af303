//! Property tests: mutate valid keys and signatures byte by byte; nothing panics, nothing
//! mutated verifies, no mutated encrypted key opens to a different key.

use std::sync::OnceLock;

use crypto_secretbox::Key;
use proptest::prelude::*;
use zeroize::Zeroizing;

use super::tests::read;
use super::*;
use crate::digest::Sha256Digest;
use crate::encoding::base64_decode_any;

#[derive(Clone, Debug)]
enum Mutation {
    Replace(usize, u8),
    FlipBit(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        (any::<usize>(), 0u8..8).prop_map(|(i, bit)| Mutation::FlipBit(i, bit)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

/// Applies `m`; `None` if it would leave the input unchanged.
fn apply(input: &[u8], m: &Mutation) -> Option<Vec<u8>> {
    let mut out = input.to_vec();
    let at = |i: usize| i % input.len();
    match *m {
        Mutation::Replace(i, b) => out[at(i)] = b,
        Mutation::FlipBit(i, bit) => out[at(i)] ^= 1 << bit,
        Mutation::Insert(i, b) => out.insert(i % (input.len() + 1), b),
        Mutation::Delete(i) => {
            out.remove(at(i));
        }
        Mutation::Truncate(i) => out.truncate(at(i)),
    }
    (out != input).then_some(out)
}

const MESSAGE: &[u8] = b"mutation target";

struct Fixture {
    /// (public key PEM, signatures over MESSAGE it must accept)
    keys: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let signed = |private: &str, public: &str| {
            let key = SigningKey::from_pem(&read(private), None).unwrap();
            (
                read(public),
                vec![key.sign(SignedData::Message(MESSAGE)).unwrap()],
            )
        };
        // The DSSE spec key, with its published signature in both encodings.
        let dsse = "dsse-spec/spec-hello-world/";
        let envelope: serde_json::Value =
            serde_json::from_slice(&read(&format!("{dsse}envelope.json"))).unwrap();
        let raw = base64_decode_any(envelope["signatures"][0]["sig"].as_str().unwrap()).unwrap();
        let der = read(&format!("{dsse}DERIVED-sig.der"));
        Fixture {
            keys: vec![
                (read(&format!("{dsse}DERIVED-pubkey.pem")), vec![raw, der]),
                signed(
                    "in-toto-python/pems/ed25519_private_unencrypted.pem",
                    "in-toto-python/pems/ed25519_public.pem",
                ),
                signed(
                    "in-toto-python/pems/rsa_private_unencrypted.pem",
                    "in-toto-python/pems/rsa_public.pem",
                ),
            ],
        }
    })
}

/// The DSSE signatures are over the PAE, not MESSAGE.
fn message_for(key_index: usize) -> Vec<u8> {
    if key_index == 0 {
        read("dsse-spec/spec-hello-world/pae.bin")
    } else {
        MESSAGE.to_vec()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn mutated_public_keys_never_verify(index in 0usize..3, m in mutation()) {
        let (pem, signatures) = &fixture().keys[index];
        let original = PublicKey::from_pem(pem).unwrap();
        let message = message_for(index);
        for signature in signatures {
            prop_assert!(original.verify(SignedData::Message(&message), signature).is_ok());
        }
        let Some(mutated) = apply(pem, &m) else { return Ok(()) };
        if let Ok(key) = PublicKey::from_pem(&mutated) {
            for signature in signatures {
                if key.verify(SignedData::Message(&message), signature).is_ok() {
                    // Only harmless edits (surrounding text, whitespace) may keep verifying.
                    prop_assert_eq!(key.spki_der(), original.spki_der());
                }
            }
        }
    }

    #[test]
    fn mutated_signatures_never_verify(index in 0usize..3, which in 0usize..2, m in mutation()) {
        let (pem, signatures) = &fixture().keys[index];
        let key = PublicKey::from_pem(pem).unwrap();
        let message = message_for(index);
        let signature = &signatures[which % signatures.len()];
        let Some(mutated) = apply(signature, &m) else { return Ok(()) };
        prop_assert!(key.verify(SignedData::Message(&message), &mutated).is_err());
        let digest = Sha256Digest::of(&message);
        let _ = key.verify(SignedData::Sha256Digest(digest.as_bytes()), &mutated).map(|()| {
            panic!("mutated signature verified over the digest")
        });
    }

    #[test]
    fn mutated_pkcs8_and_spki_der_never_panic(m in mutation(), private in any::<bool>()) {
        let pem = if private {
            read("in-toto-python/pems/ecdsa_private_unencrypted.pem")
        } else {
            read("in-toto-python/pems/rsa_public.pem")
        };
        let der = pem::decode_first(&pem).unwrap().der;
        let Some(mutated) = apply(&der, &m) else { return Ok(()) };
        let _ = SigningKey::from_pkcs8_der(&mutated);
        let _ = PublicKey::from_spki_der(&mutated);
    }
}

// ---- encrypted keys: scrypt is memoized, since it dominates the cost of each case ----

const ENCRYPTED: &str = "cosign/pemsigstorekey.pem";

struct Encrypted {
    pem: Vec<u8>,
    json: Vec<u8>,
    salt: Vec<u8>,
    key: Zeroizing<Key>,
    public: PublicKey,
}

fn encrypted() -> &'static Encrypted {
    static ENCRYPTED_FIXTURE: OnceLock<Encrypted> = OnceLock::new();
    ENCRYPTED_FIXTURE.get_or_init(|| {
        let pem = read(ENCRYPTED);
        let json = pem::decode_first(&pem).unwrap().der.to_vec();
        let fields: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let salt = base64_decode_any(fields["kdf"]["salt"].as_str().unwrap()).unwrap();
        assert_eq!(fields["kdf"]["params"]["N"], 32768);
        let key = cosign::derive_key(b"hello", &salt, 15).unwrap();
        let public = SigningKey::from_pem(&pem, Some(b"hello"))
            .unwrap()
            .public_key();
        Encrypted {
            pem,
            json,
            salt,
            key,
            public,
        }
    })
}

/// scrypt("hello", salt, N) for the fixture's own salt and N; for any other salt or N (which a
/// mutation produced) a stand-in key, which like any wrong key must fail the MAC.
fn memoized_kdf(salt: &[u8], log_n: u8) -> Result<Zeroizing<Key>, KeyError> {
    let fixture = encrypted();
    if salt == fixture.salt && log_n == 15 {
        return Ok(fixture.key.clone());
    }
    let stand_in = Sha256Digest::of(&[salt, &[log_n]].concat());
    Ok(Zeroizing::new(*Key::from_slice(stand_in.as_bytes())))
}

/// `SigningKey::from_pem` for an encrypted key, with the memoized KDF.
fn open(pem_text: &[u8]) -> Result<SigningKey, KeyError> {
    let block = pem::decode_first(pem_text)?;
    if block.label != cosign::LABEL_SIGSTORE && block.label != cosign::LABEL_COSIGN {
        return Err(KeyError::UnsupportedPemLabel {
            label: block.label,
            expected: "",
        });
    }
    open_json(&block.der)
}

fn open_json(json: &[u8]) -> Result<SigningKey, KeyError> {
    SigningKey::from_pkcs8_der(&cosign::decrypt_with_kdf(json, memoized_kdf)?)
}

#[test]
fn memoized_opening_matches_the_real_one() {
    let fixture = encrypted();
    assert_eq!(open(&fixture.pem).unwrap().public_key(), fixture.public);
    assert!(SigningKey::is_encrypted_pem(&fixture.pem));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn mutated_encrypted_pem_never_opens_to_another_key(m in mutation()) {
        let fixture = encrypted();
        let Some(mutated) = apply(&fixture.pem, &m) else { return Ok(()) };
        let _ = SigningKey::is_encrypted_pem(&mutated);
        if let Ok(key) = open(&mutated) {
            prop_assert_eq!(key.public_key(), fixture.public.clone());
        }
    }

    #[test]
    fn mutated_encrypted_json_never_opens_to_another_key(m in mutation()) {
        let fixture = encrypted();
        let Some(mutated) = apply(&fixture.json, &m) else { return Ok(()) };
        if let Ok(key) = open_json(&mutated) {
            prop_assert_eq!(key.public_key(), fixture.public.clone());
        }
    }
}
