//! cosign's encrypted private key format (SPECS §7.1; cosign `pkg/cosign/keys.go`,
//! go-securesystemslib `encrypted/encrypted.go`).
//!
//! The PEM body is JSON: scrypt parameters and salt, a secretbox nonce, and the ciphertext.
//! key = scrypt(password, salt, N, r, p, 32); ciphertext = NaCl secretbox (XSalsa20-Poly1305),
//! laid out as 16-byte Poly1305 tag ‖ encrypted PKCS#8 DER.

use crypto_secretbox::aead::{AeadInPlace, KeyInit};
use crypto_secretbox::{Key, Nonce, XSalsa20Poly1305};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::KeyError;
use crate::encoding::{base64_decode_any, base64_encode};

/// The label custody (and cosign ≥ 2) writes.
pub(crate) const LABEL_SIGSTORE: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The legacy label, still read.
pub(crate) const LABEL_COSIGN: &str = "ENCRYPTED COSIGN PRIVATE KEY";

const KDF_NAME: &str = "scrypt";
const CIPHER_NAME: &str = "nacl/secretbox";
/// SPECS §7.1: the only accepted work factors (legacy, standard, OWASP), with r=8, p=1.
/// Anything else is refused before scrypt runs: a key file must not choose how much memory
/// and time opening it costs.
const ACCEPTED_N: [u64; 3] = [1 << 15, 1 << 16, 1 << 17];
/// What custody writes: cosign's default, N=65536.
pub(crate) const WRITE_LOG_N: u8 = 16;
const SALT_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

// Field order is Go struct order, so our files are byte-compatible with cosign's.
#[derive(Serialize, Deserialize)]
struct EncryptedKey {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u64,
    p: u64,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// Opens the JSON body of an encrypted key; returns the plaintext (PKCS#8 DER, unchecked).
pub(crate) fn decrypt(body: &[u8], password: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    decrypt_with_kdf(body, |salt, log_n| derive_key(password, salt, log_n))
}

/// [`decrypt`] with the scrypt step supplied by the caller, called only once the parameters
/// passed every check. Lets tests memoize the (slow) key derivation.
pub(crate) fn decrypt_with_kdf(
    body: &[u8],
    kdf: impl FnOnce(&[u8], u8) -> Result<Zeroizing<Key>, KeyError>,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let key: EncryptedKey =
        serde_json::from_slice(body).map_err(|_| KeyError::MalformedEncryptedKey {
            what: "the PEM body is not cosign's encrypted-key JSON",
        })?;
    if key.kdf.name != KDF_NAME {
        return Err(KeyError::UnsupportedKdf { name: key.kdf.name });
    }
    let ScryptParams { n, r, p } = key.kdf.params;
    if !ACCEPTED_N.contains(&n) || r != 8 || p != 1 {
        return Err(KeyError::UnsupportedKdfParams { n, r, p });
    }
    if key.cipher.name != CIPHER_NAME {
        return Err(KeyError::UnsupportedCipher {
            name: key.cipher.name,
        });
    }
    let salt = base64_decode_any(&key.kdf.salt).map_err(|_| KeyError::MalformedEncryptedKey {
        what: "the scrypt salt is not base64",
    })?;
    let nonce =
        base64_decode_any(&key.cipher.nonce).map_err(|_| KeyError::MalformedEncryptedKey {
            what: "the secretbox nonce is not base64",
        })?;
    let nonce: [u8; NONCE_LEN] = nonce
        .try_into()
        .map_err(|_| KeyError::MalformedEncryptedKey {
            what: "the secretbox nonce is not 24 bytes",
        })?;
    let mut buffer = Zeroizing::new(base64_decode_any(&key.ciphertext).map_err(|_| {
        KeyError::MalformedEncryptedKey {
            what: "the ciphertext is not base64",
        }
    })?);
    if buffer.len() < TAG_LEN {
        return Err(KeyError::MalformedEncryptedKey {
            what: "the ciphertext is shorter than its 16-byte tag",
        });
    }

    let log_n = n.trailing_zeros() as u8; // n is one of ACCEPTED_N: an exact power of two
    let secret = kdf(&salt, log_n)?;
    XSalsa20Poly1305::new(&secret)
        .decrypt_in_place(Nonce::from_slice(&nonce), b"", &mut *buffer)
        // The MAC cannot tell a wrong password from a damaged file.
        .map_err(|_| KeyError::WrongPassword)?;
    Ok(buffer)
}

/// Seals PKCS#8 DER into the JSON body of an encrypted key, with fresh salt and nonce and
/// scrypt N = 2^`log_n` (custody writes [`WRITE_LOG_N`]).
pub(crate) fn encrypt(pkcs8: &[u8], password: &[u8], log_n: u8) -> Result<Vec<u8>, KeyError> {
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| KeyError::Crypto {
        operation: "generate a salt",
    })?;
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| KeyError::Crypto {
        operation: "generate a nonce",
    })?;
    let secret = derive_key(password, &salt, log_n)?;

    // Reserved up front: the buffer holds plaintext and must not reallocate.
    let mut buffer = Zeroizing::new(Vec::with_capacity(pkcs8.len() + TAG_LEN));
    buffer.extend_from_slice(pkcs8);
    XSalsa20Poly1305::new(&secret)
        .encrypt_in_place(Nonce::from_slice(&nonce), b"", &mut *buffer)
        .map_err(|_| KeyError::Crypto {
            operation: "encrypt the private key",
        })?;

    let key = EncryptedKey {
        kdf: Kdf {
            name: KDF_NAME.into(),
            params: ScryptParams {
                n: 1 << log_n,
                r: 8,
                p: 1,
            },
            salt: base64_encode(&salt),
        },
        cipher: Cipher {
            name: CIPHER_NAME.into(),
            nonce: base64_encode(&nonce),
        },
        ciphertext: base64_encode(&buffer),
    };
    serde_json::to_vec(&key).map_err(|_| KeyError::Crypto {
        operation: "serialize the encrypted key",
    })
}

pub(crate) fn derive_key(
    password: &[u8],
    salt: &[u8],
    log_n: u8,
) -> Result<Zeroizing<Key>, KeyError> {
    let params = scrypt::Params::new(log_n, 8, 1).map_err(|_| KeyError::Crypto {
        operation: "set up scrypt",
    })?;
    let mut secret = Zeroizing::new(Key::default());
    scrypt::scrypt(password, salt, &params, secret.as_mut_slice()).map_err(|_| {
        KeyError::Crypto {
            operation: "derive the key with scrypt",
        }
    })?;
    Ok(secret)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn body(n: u64, r: u64, p: u64, kdf: &str, cipher: &str, nonce: &str) -> Vec<u8> {
        format!(
            r#"{{"kdf":{{"name":"{kdf}","params":{{"N":{n},"r":{r},"p":{p}}},"salt":"AAAA"}},"cipher":{{"name":"{cipher}","nonce":"{nonce}"}},"ciphertext":"AAAAAAAAAAAAAAAAAAAAAA=="}}"#
        )
        .into_bytes()
    }

    const NONCE: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    #[test]
    fn expensive_or_odd_kdf_params_are_refused_before_scrypt_runs() {
        // N=2^30 would need 1 TiB; these must fail instantly.
        for (n, r, p) in [
            (1 << 30, 8, 1),
            (1 << 14, 8, 1),
            (65536, 16, 1),
            (65536, 8, 2),
            (65535, 8, 1),
            (0, 8, 1),
        ] {
            let err = decrypt(&body(n, r, p, "scrypt", "nacl/secretbox", NONCE), b"x").unwrap_err();
            assert!(
                matches!(err, KeyError::UnsupportedKdfParams { .. }),
                "{n} {r} {p}: {err}"
            );
        }
    }

    #[test]
    fn other_kdfs_ciphers_and_nonces_are_refused() {
        let err = decrypt(&body(65536, 8, 1, "pbkdf2", "nacl/secretbox", NONCE), b"").unwrap_err();
        assert!(matches!(err, KeyError::UnsupportedKdf { .. }), "{err}");
        let err = decrypt(&body(65536, 8, 1, "scrypt", "aes-gcm", NONCE), b"").unwrap_err();
        assert!(matches!(err, KeyError::UnsupportedCipher { .. }), "{err}");
        let err = decrypt(&body(65536, 8, 1, "scrypt", "nacl/secretbox", "AAAA"), b"").unwrap_err();
        assert!(
            matches!(err, KeyError::MalformedEncryptedKey { .. }),
            "{err}"
        );
        let err = decrypt(b"{\"kdf\":1}", b"").unwrap_err();
        assert!(
            matches!(err, KeyError::MalformedEncryptedKey { .. }),
            "{err}"
        );
    }
}
