//! Keys: public keys that verify, private keys that sign, and the files they live in.
//!
//! * [`PublicKey`] reads `PUBLIC KEY` (PKIX SubjectPublicKeyInfo) and PKCS#1 `RSA PUBLIC KEY` PEM,
//!   or SPKI DER, and verifies ECDSA (DER or raw `r‖s`), Ed25519 and RSA signatures.
//! * [`SigningKey`] reads unencrypted PKCS#8 and cosign's encrypted PEM (SPECS §7.1), signs, and
//!   writes both back. Secret bytes live in `Zeroizing` buffers and never reach `Debug`, `Display`
//!   or an error message.
//!
//! Algorithms are fixed by the key, never by the signature: a verifier cannot be talked into a
//! weaker algorithm by the data it is verifying.

use std::fmt;
use std::str::FromStr;

mod cosign;
mod error;
mod pem;
mod public;
mod signing;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests_interop;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests_mutation;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests_round_trip;

pub use error::{KeyError, SignatureError};
pub use public::PublicKey;
pub use signing::SigningKey;

/// A signature algorithm: the key type together with its hash and padding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256 with SHA-256: cosign's and Sigstore's default.
    #[default]
    EcdsaP256Sha256,
    /// ECDSA on NIST P-384 with SHA-384.
    EcdsaP384Sha384,
    /// Pure Ed25519 (RFC 8032): signs whole messages, never digests.
    Ed25519,
    /// RSA with PKCS#1 v1.5 padding and SHA-256.
    RsaPkcs1Sha256,
    /// RSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt.
    RsaPssSha256,
}

impl KeyAlgorithm {
    /// Every algorithm, in the order the CLI lists them.
    pub const ALL: [KeyAlgorithm; 5] = [
        Self::EcdsaP256Sha256,
        Self::EcdsaP384Sha384,
        Self::Ed25519,
        Self::RsaPkcs1Sha256,
        Self::RsaPssSha256,
    ];

    /// The name the CLI uses (`--algorithm ecdsa-p256`).
    pub fn cli_name(&self) -> &'static str {
        match self {
            Self::EcdsaP256Sha256 => "ecdsa-p256",
            Self::EcdsaP384Sha384 => "ecdsa-p384",
            Self::Ed25519 => "ed25519",
            Self::RsaPkcs1Sha256 => "rsa-pkcs1-sha256",
            Self::RsaPssSha256 => "rsa-pss-sha256",
        }
    }

    /// The Sigstore `PublicKeyDetails` name (SPECS §4.1).
    ///
    /// RSA names carry the modulus size, which the algorithm alone does not know: for RSA this
    /// returns the 2048-bit name. Use [`PublicKey::sigstore_key_details`] for the real key.
    pub fn sigstore_key_details(&self) -> &'static str {
        match self {
            Self::EcdsaP256Sha256 => "PKIX_ECDSA_P256_SHA_256",
            Self::EcdsaP384Sha384 => "PKIX_ECDSA_P384_SHA_384",
            Self::Ed25519 => "PKIX_ED25519",
            Self::RsaPkcs1Sha256 => "PKIX_RSA_PKCS1V15_2048_SHA256",
            Self::RsaPssSha256 => "PKIX_RSA_PSS_2048_SHA256",
        }
    }

    /// Reads a Sigstore `PublicKeyDetails` name; `None` for names custody cannot verify
    /// (Ed25519ph, P-521, ML-DSA, deprecated values).
    pub fn from_sigstore_key_details(name: &str) -> Option<Self> {
        Some(match name {
            "PKIX_ECDSA_P256_SHA_256" => Self::EcdsaP256Sha256,
            "PKIX_ECDSA_P384_SHA_384" => Self::EcdsaP384Sha384,
            "PKIX_ED25519" => Self::Ed25519,
            "PKIX_RSA_PKCS1V15_2048_SHA256"
            | "PKIX_RSA_PKCS1V15_3072_SHA256"
            | "PKIX_RSA_PKCS1V15_4096_SHA256" => Self::RsaPkcs1Sha256,
            "PKIX_RSA_PSS_2048_SHA256"
            | "PKIX_RSA_PSS_3072_SHA256"
            | "PKIX_RSA_PSS_4096_SHA256" => Self::RsaPssSha256,
            _ => return None,
        })
    }

    pub(crate) fn is_rsa(&self) -> bool {
        matches!(self, Self::RsaPkcs1Sha256 | Self::RsaPssSha256)
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.cli_name())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = KeyError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|alg| alg.cli_name().eq_ignore_ascii_case(name))
            .ok_or_else(|| KeyError::UnknownAlgorithmName {
                name: name.to_string(),
            })
    }
}

/// What a signature covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignedData<'a> {
    /// The bytes themselves; the algorithm hashes them.
    Message(&'a [u8]),
    /// A SHA-256 digest computed elsewhere (a Rekor `hashedrekord`, a large file hashed while
    /// streaming). ECDSA P-256 and RSA sign and verify the digest directly, so a signature over
    /// `Message(m)` verifies as `Sha256Digest(sha256(m))` and the other way round. Ed25519 and
    /// ECDSA P-384 (which hashes with SHA-384) refuse it.
    Sha256Digest(&'a [u8; 32]),
}

/// A key's identity: SHA-256 of its DER SubjectPublicKeyInfo, as RFC 6962 log IDs and Sigstore
/// key hints are computed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 32]);

impl KeyId {
    /// The first 16 hex characters: enough to tell keys apart in messages.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..8])
    }
}

impl fmt::Display for KeyId {
    /// Lowercase hex, 64 characters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// OIDs this module recognises (RFC 5480, RFC 8410, RFC 8017).
pub(crate) mod oid {
    use der::asn1::ObjectIdentifier as Oid;

    pub const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
    pub const SECP256R1: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
    pub const SECP384R1: Oid = Oid::new_unwrap("1.3.132.0.34");
    pub const ED25519: Oid = Oid::new_unwrap("1.3.101.112");
    pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod algorithm_tests {
    use super::*;

    #[test]
    fn cli_names_round_trip() {
        for alg in KeyAlgorithm::ALL {
            assert_eq!(alg.to_string().parse::<KeyAlgorithm>().unwrap(), alg);
        }
        assert_eq!(KeyAlgorithm::default(), KeyAlgorithm::EcdsaP256Sha256);
        let err = "dsa".parse::<KeyAlgorithm>().unwrap_err();
        assert!(err.to_string().contains("ecdsa-p256"), "{err}");
    }

    #[test]
    fn sigstore_names_round_trip() {
        for alg in KeyAlgorithm::ALL {
            let name = alg.sigstore_key_details();
            assert_eq!(
                KeyAlgorithm::from_sigstore_key_details(name),
                Some(alg),
                "{name}"
            );
        }
        assert_eq!(
            KeyAlgorithm::from_sigstore_key_details("PKIX_ED25519_PH"),
            None
        );
    }

    #[test]
    fn key_id_display() {
        let id = KeyId([0xab; 32]);
        assert_eq!(id.to_string(), "ab".repeat(32));
        assert_eq!(id.short(), "ab".repeat(8));
    }
}
