//! Why a key could not be read, used or written, and why a signature did not verify.
//!
//! Every message says what is wrong and how to fix it. No message ever contains secret bytes.

use super::KeyAlgorithm;

/// An operational failure with a key: reading, decrypting, converting, signing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error(
        "not a key file: no '-----BEGIN ...-----' PEM line (pass the key file itself, e.g. cosign.key or cosign.pub)"
    )]
    NotAKey,
    #[error(
        "the PEM key is truncated: its '-----END ...-----' line is missing (copy the whole file again)"
    )]
    Truncated,
    #[error("malformed PEM: {reason} (copy the key file again, or re-export it)")]
    MalformedPem { reason: &'static str },
    #[error(
        "unsupported PEM block '{label}': expected {expected} (convert the key, e.g. `openssl pkcs8 -topk8` or `cosign import-key-pair`)"
    )]
    UnsupportedPemLabel {
        label: String,
        expected: &'static str,
    },
    #[error(
        "this is a public key; signing needs the private key (e.g. cosign.key, not cosign.pub)"
    )]
    PublicKeyNotPrivate,
    #[error("this is a private key; give the public key instead (e.g. cosign.pub, not cosign.key)")]
    PrivateKeyNotPublic,
    #[error("the private key is encrypted and no password was given (set CUSTODY_PASSWORD)")]
    PasswordRequired,
    #[error(
        "wrong password or corrupted key file (set CUSTODY_PASSWORD to the password used at key generation)"
    )]
    WrongPassword,
    #[error("malformed encrypted key: {what} (the file is damaged; restore it from a backup)")]
    MalformedEncryptedKey { what: &'static str },
    #[error(
        "unsupported key derivation '{name}': only scrypt is accepted (re-encrypt the key with cosign or custody)"
    )]
    UnsupportedKdf { name: String },
    #[error(
        "refusing scrypt parameters N={n} r={r} p={p}: only N in {{32768, 65536, 131072}} with r=8 p=1 are accepted, to bound the work a key file can demand (re-encrypt the key with cosign or custody)"
    )]
    UnsupportedKdfParams { n: u64, r: u64, p: u64 },
    #[error(
        "unsupported cipher '{name}': only nacl/secretbox is accepted (re-encrypt the key with cosign or custody)"
    )]
    UnsupportedCipher { name: String },
    #[error(
        "the private key is SEC1 'EC PRIVATE KEY' DER, not PKCS#8; cosign and custody refuse it (convert with `openssl pkcs8 -topk8 -nocrypt`, then `cosign import-key-pair`)"
    )]
    Sec1NotPkcs8,
    #[error("malformed DER in {what}: {source} (the key file is damaged or not a key)")]
    MalformedDer {
        what: &'static str,
        #[source]
        source: der::Error,
    },
    #[error(
        "unsupported key algorithm (OID {oid}): custody supports ECDSA P-256/P-384, Ed25519 and RSA (generate a supported key)"
    )]
    UnsupportedAlgorithm { oid: String },
    #[error(
        "unsupported elliptic curve (OID {oid}): custody supports P-256 and P-384 (generate an ecdsa-p256 key)"
    )]
    UnsupportedCurve { oid: String },
    #[error("RSA key of {bits} bits: custody accepts 2048 to 8192 bits (generate a larger key)")]
    RsaKeySize { bits: u32 },
    #[error(
        "the {what} was rejected by the crypto library ({reason}); the key is invalid or inconsistent"
    )]
    KeyRejected {
        what: &'static str,
        reason: &'static str,
    },
    #[error(
        "unknown key algorithm '{name}': expected one of ecdsa-p256, ecdsa-p384, ed25519, rsa-pkcs1-sha256, rsa-pss-sha256"
    )]
    UnknownAlgorithmName { name: String },
    #[error(
        "cannot use a {key} key as {requested}: only RSA keys can switch between PKCS#1 v1.5 and PSS"
    )]
    AlgorithmMismatch {
        key: KeyAlgorithm,
        requested: KeyAlgorithm,
    },
    #[error(
        "{algorithm} cannot sign a SHA-256 digest (Ed25519 signs whole messages, ECDSA P-384 uses SHA-384): give the file, not its digest"
    )]
    PrehashUnsupported { algorithm: KeyAlgorithm },
    #[error("the crypto library failed to {operation} (an internal error; retry, then report it)")]
    Crypto { operation: &'static str },
}

/// A verification failure: the signature is not a valid signature by this key over this data.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureError {
    #[error("the signature does not verify: wrong key, or the data or signature was changed")]
    Invalid,
    #[error("malformed {algorithm} signature: {reason}")]
    Malformed {
        algorithm: KeyAlgorithm,
        reason: &'static str,
    },
    #[error(
        "the signature looks like {looks_like}, but the key is {key}: check which key signed it"
    )]
    WrongAlgorithm {
        key: KeyAlgorithm,
        looks_like: &'static str,
    },
    #[error(
        "this key cannot verify a SHA-256 digest (Ed25519 signs whole messages, ECDSA P-384 uses SHA-384): give the file, not its digest"
    )]
    PrehashUnsupported,
}
