//! The signature over the bundle's content (SPECS §4.4 step 5), shared by the key-based and the
//! keyless paths: only *which* key is trusted differs.

use super::{Artifact, VerifiedContent, VerifyError};
use crate::bundle::{BundleContent, HashAlgorithm};
use crate::dsse::{IN_TOTO_PAYLOAD_TYPE, SignatureVerifier};
use crate::intoto::Statement;
use crate::keys::{KeyAlgorithm, PublicKey, SignedData};

/// The consistency check of `messageSignature.messageDigest` (conformance
/// `message-digest-mismatch_fail`): the field is an unauthenticated hint, but a bundle that
/// disagrees with the artifact is refused, and early, with the plainest explanation.
pub(super) fn check_message_digest(
    content: &BundleContent,
    artifact: &Artifact<'_>,
) -> Result<(), VerifyError> {
    let BundleContent::MessageSignature {
        message_digest: Some((algorithm, digest)),
        ..
    } = content
    else {
        return Ok(());
    };
    if *algorithm != HashAlgorithm::Sha2_256 {
        return Err(VerifyError::UnsupportedDigestAlgorithm {
            algorithm: algorithm.as_str().to_string(),
        });
    }
    if digest.as_slice() != artifact.digest.as_bytes() {
        return Err(VerifyError::DigestMismatch {
            bundle: format!("sha256:{}", hex::encode(digest)),
            artifact: artifact.digest,
        });
    }
    Ok(())
}

/// The bytes an RFC 3161 timestamp in the bundle must cover: the message signature, or the DSSE
/// envelope's (only) signature.
pub(super) fn signature_bytes(content: &BundleContent) -> &[u8] {
    match content {
        BundleContent::MessageSignature { signature, .. } => signature,
        BundleContent::Dsse(envelope) => envelope
            .signatures
            .first()
            .map_or(&[][..], |s| s.sig.as_slice()),
    }
}

/// Verifies the content's signature with `key` for `artifact`. `signer` names the key in
/// messages ("key 3f2a…", "the signing certificate's key").
pub(super) fn verify_content(
    content: &BundleContent,
    artifact: &Artifact<'_>,
    key: &PublicKey,
    signer: &dyn Fn() -> String,
) -> Result<VerifiedContent, VerifyError> {
    match content {
        BundleContent::MessageSignature { signature, .. } => {
            check_message_digest(content, artifact)?;
            // ECDSA P-256 and RSA verify the SHA-256 digest (streamed); Ed25519 and ECDSA P-384
            // (SHA-384) need the artifact's bytes.
            let data = match (key.algorithm(), artifact.bytes) {
                (
                    KeyAlgorithm::EcdsaP256Sha256
                    | KeyAlgorithm::RsaPkcs1Sha256
                    | KeyAlgorithm::RsaPssSha256,
                    _,
                ) => SignedData::Sha256Digest(artifact.digest.as_bytes()),
                (_, Some(bytes)) => SignedData::Message(bytes),
                (KeyAlgorithm::EcdsaP384Sha384, None) => {
                    SignedData::Sha256Digest(artifact.digest.as_bytes())
                }
                (algorithm, None) => return Err(VerifyError::NeedArtifactBytes { algorithm }),
            };
            let mut result = key.verify(data, signature);
            if result.is_err() && key.algorithm() == KeyAlgorithm::EcdsaP384Sha384 {
                // Sigstore clients also sign the SHA-256 digest with P-384 keys.
                result = key.verify_p384_over_sha256(artifact.digest.as_bytes(), signature);
            }
            result.map_err(|source| VerifyError::Signature {
                key: signer(),
                algorithm: key.algorithm(),
                source,
            })?;
            Ok(VerifiedContent::MessageSignature)
        }
        BundleContent::Dsse(envelope) => {
            let verified = envelope.verify(&[key as &dyn SignatureVerifier], 1)?;
            if verified.payload_type != IN_TOTO_PAYLOAD_TYPE {
                return Err(VerifyError::PayloadType {
                    found: verified.payload_type,
                });
            }
            let statement = Statement::from_verified_payload(&verified)?;
            if !statement.subject_matches_sha256(&artifact.digest) {
                let subjects = statement
                    .subject
                    .iter()
                    .map(|s| s.digest.get("sha256").map_or("no sha256", String::as_str))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(VerifyError::SubjectMismatch {
                    artifact: artifact.digest,
                    subjects,
                });
            }
            Ok(VerifiedContent::Statement(Box::new(statement)))
        }
    }
}
