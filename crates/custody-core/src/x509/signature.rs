//! X.509 and CMS signature checks: the algorithm named by the signer, verified with aws-lc-rs
//! under the issuer's SubjectPublicKeyInfo (validated by [`crate::keys::PublicKey`]).
//!
//! Unlike a bundle signature, a certificate may combine curve and hash freely (a P-256 CA
//! signing with ecdsa-with-SHA384), so the verification algorithm is chosen from both.

use aws_lc_rs::signature::{self as lc, UnparsedPublicKey, VerificationAlgorithm};
use der::Decode;
use der::asn1::ObjectIdentifier as Oid;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoRef};

use crate::keys::{KeyAlgorithm, PublicKey};

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SignatureProblem {
    Invalid,
    Unsupported {
        algorithm: String,
        key: &'static str,
    },
}

const ECDSA_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");
const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
const RSA_SHA256: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
const RSA_SHA384: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
const RSA_SHA512: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
const ED25519: Oid = Oid::new_unwrap("1.3.101.112");
pub(crate) const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
pub(crate) const SHA384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.2");
pub(crate) const SHA512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.3");

#[derive(Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

fn hash_of(digest: Option<Oid>) -> Option<Hash> {
    match digest? {
        SHA256 => Some(Hash::Sha256),
        SHA384 => Some(Hash::Sha384),
        SHA512 => Some(Hash::Sha512),
        _ => None,
    }
}

/// Verifies `signature` over `message` with the key in `spki_der`.
///
/// `digest` is the CMS `digestAlgorithm`, consulted only when the signature algorithm does not
/// name a hash itself (`rsaEncryption`, `id-ecPublicKey` in some CMS signers).
pub(crate) fn verify(
    spki_der: &[u8],
    algorithm: &AlgorithmIdentifierOwned,
    digest: Option<Oid>,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureProblem> {
    let unsupported = |key: &'static str| SignatureProblem::Unsupported {
        algorithm: algorithm.oid.to_string(),
        key,
    };
    let key = PublicKey::from_spki_der(spki_der).map_err(|_| unsupported("unsupported"))?;
    let raw = SubjectPublicKeyInfoRef::from_der(spki_der)
        .ok()
        .and_then(|s| s.subject_public_key.as_bytes().map(<[u8]>::to_vec))
        .ok_or_else(|| unsupported("unreadable"))?;
    let key_name = match key.algorithm() {
        KeyAlgorithm::EcdsaP256Sha256 => "ECDSA P-256",
        KeyAlgorithm::EcdsaP384Sha384 => "ECDSA P-384",
        KeyAlgorithm::Ed25519 => "Ed25519",
        KeyAlgorithm::RsaPkcs1Sha256 | KeyAlgorithm::RsaPssSha256 => "RSA",
    };
    let hash = match algorithm.oid {
        ECDSA_SHA256 | RSA_SHA256 => Some(Hash::Sha256),
        ECDSA_SHA384 | RSA_SHA384 => Some(Hash::Sha384),
        ECDSA_SHA512 | RSA_SHA512 => Some(Hash::Sha512),
        RSA_ENCRYPTION | EC_PUBLIC_KEY => hash_of(digest),
        _ => None,
    };
    let is_ecdsa = matches!(
        algorithm.oid,
        ECDSA_SHA256 | ECDSA_SHA384 | ECDSA_SHA512 | EC_PUBLIC_KEY
    );
    let is_rsa = matches!(
        algorithm.oid,
        RSA_SHA256 | RSA_SHA384 | RSA_SHA512 | RSA_ENCRYPTION
    );
    let verifier: &'static dyn VerificationAlgorithm = match (key.algorithm(), hash) {
        (KeyAlgorithm::Ed25519, _) if algorithm.oid == ED25519 => &lc::ED25519,
        (KeyAlgorithm::EcdsaP256Sha256, Some(h)) if is_ecdsa => match h {
            Hash::Sha256 => &lc::ECDSA_P256_SHA256_ASN1,
            Hash::Sha384 => &lc::ECDSA_P256_SHA384_ASN1,
            Hash::Sha512 => &lc::ECDSA_P256_SHA512_ASN1,
        },
        (KeyAlgorithm::EcdsaP384Sha384, Some(h)) if is_ecdsa => match h {
            Hash::Sha256 => &lc::ECDSA_P384_SHA256_ASN1,
            Hash::Sha384 => &lc::ECDSA_P384_SHA384_ASN1,
            Hash::Sha512 => &lc::ECDSA_P384_SHA512_ASN1,
        },
        (KeyAlgorithm::RsaPkcs1Sha256 | KeyAlgorithm::RsaPssSha256, Some(h)) if is_rsa => match h {
            Hash::Sha256 => &lc::RSA_PKCS1_2048_8192_SHA256,
            Hash::Sha384 => &lc::RSA_PKCS1_2048_8192_SHA384,
            Hash::Sha512 => &lc::RSA_PKCS1_2048_8192_SHA512,
        },
        _ => return Err(unsupported(key_name)),
    };
    UnparsedPublicKey::new(verifier, &raw)
        .verify(message, signature)
        .map_err(|_| SignatureProblem::Invalid)
}
