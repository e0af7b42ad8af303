//! Binding a log entry body to the bundle it came with (SPECS §4.4 step 3; CVE-2022-36056:
//! an entry that verifies in the log proves nothing unless it is *this* bundle's entry).

use std::fmt;

use sha2::{Digest as _, Sha256, Sha384, Sha512};

use super::{Dsse, HashedRekord, Intoto, LoggedDigest, LoggedSignature, LoggedVerifier, RekorBody};
use crate::bundle::{BundleContent, HashAlgorithm};
use crate::dsse::Envelope;
use crate::keys::PublicKey;
use crate::verify::Artifact;

/// Who the bundle says signed: the key the caller trusts, or the bundle's leaf certificate.
#[derive(Debug, Clone, Copy)]
pub enum Signer<'a> {
    Key(&'a PublicKey),
    /// DER leaf certificate.
    Certificate(&'a [u8]),
}

/// Which part of the bundle a log entry disagrees with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BoundField {
    Signature,
    PublicKey,
    Certificate,
    /// `messageSignature.messageDigest`.
    MessageDigest,
    /// The artifact being verified.
    Artifact,
    /// SHA-256 of the DSSE payload.
    PayloadHash,
    /// The DSSE payload bytes.
    Payload,
    PayloadType,
    /// SHA-256(PAE) of the DSSE envelope (hashedrekord over DSSE, Rekor v2).
    EnvelopePae,
}

impl fmt::Display for BoundField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Signature => "signature",
            Self::PublicKey => "public key",
            Self::Certificate => "certificate",
            Self::MessageDigest => "message digest",
            Self::Artifact => "artifact digest",
            Self::PayloadHash => "DSSE payload hash",
            Self::Payload => "DSSE payload",
            Self::PayloadType => "DSSE payload type",
            Self::EnvelopePae => "DSSE envelope (SHA-256 of its PAE)",
        })
    }
}

/// Why a log entry does not describe this bundle.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BindError {
    #[error(
        "transparency log entry is inconsistent with the bundle's {field}: the log recorded a different {field}"
    )]
    Mismatch { field: BoundField },
    #[error(
        "transparency log entry is inconsistent with the bundle's {field}: the log recorded {logged}, but the {field} is {bundle}"
    )]
    DigestMismatch {
        field: BoundField,
        logged: String,
        bundle: String,
    },
    #[error(
        "transparency log entry is inconsistent with the bundle's {field}: the log recorded a {logged}, the bundle is verified with a {bundle}"
    )]
    SignerKind {
        field: BoundField,
        logged: &'static str,
        bundle: &'static str,
    },
    #[error("the log entry records {count} signatures; the bundle's DSSE envelope has exactly one")]
    SignatureCount { count: usize },
    #[error("a {kind} {version} log entry cannot record a bundle with {content}")]
    ContentKind {
        kind: &'static str,
        version: &'static str,
        content: &'static str,
    },
    #[error("the log entry's digest uses {algorithm}; give the artifact's bytes to compare it")]
    NeedArtifactBytes { algorithm: &'static str },
}

/// Checks that `body` records this bundle's content, signed by `signer`, over `artifact`
/// (when given; the signature check binds the artifact otherwise).
pub fn bind(
    body: &RekorBody,
    content: &BundleContent,
    signer: Signer<'_>,
    artifact: Option<&Artifact<'_>>,
) -> Result<(), BindError> {
    match (body, content) {
        (
            RekorBody::HashedRekordV001(h) | RekorBody::HashedRekordV002(h),
            BundleContent::MessageSignature {
                message_digest,
                signature,
            },
        ) => {
            same_signature(&h.signature, signature, signer)?;
            if let Some((algorithm, digest)) = message_digest {
                let bundle = LoggedDigest {
                    algorithm: *algorithm,
                    value: digest.clone(),
                };
                same_digest(BoundField::MessageDigest, &h.digest, &bundle)?;
            }
            match artifact {
                Some(artifact) => same_digest(
                    BoundField::Artifact,
                    &h.digest,
                    &artifact_digest(h.digest.algorithm, artifact)?,
                ),
                None => Ok(()),
            }
        }
        (RekorBody::HashedRekordV002(h), BundleContent::Dsse(envelope)) => {
            hashed_rekord_over_dsse(h, envelope, signer)
        }
        (RekorBody::DsseV001(d) | RekorBody::DsseV002(d), BundleContent::Dsse(envelope)) => {
            dsse(d, envelope, signer)
        }
        (RekorBody::IntotoV002(i), BundleContent::Dsse(envelope)) => intoto(i, envelope, signer),
        (body, content) => Err(BindError::ContentKind {
            kind: body.kind(),
            version: body.version(),
            content: match content {
                BundleContent::MessageSignature { .. } => "a message signature",
                BundleContent::Dsse(_) => "a DSSE envelope",
            },
        }),
    }
}

/// rekor-v2 spec §6.1.4: the logged digest is SHA-256(PAE(payloadType, payload)).
fn hashed_rekord_over_dsse(
    h: &HashedRekord,
    envelope: &Envelope,
    signer: Signer<'_>,
) -> Result<(), BindError> {
    let [signature] = envelope.signatures.as_slice() else {
        return Err(BindError::SignatureCount {
            count: envelope.signatures.len(),
        });
    };
    same_signature(&h.signature, &signature.sig, signer)?;
    let pae = LoggedDigest {
        algorithm: HashAlgorithm::Sha2_256,
        value: Sha256::digest(envelope.pae()).to_vec(),
    };
    same_digest(BoundField::EnvelopePae, &h.digest, &pae)
}

fn dsse(d: &Dsse, envelope: &Envelope, signer: Signer<'_>) -> Result<(), BindError> {
    same_payload_hash(&d.payload_hash, &envelope.payload)?;
    only_signature(&d.signatures, envelope, signer)
}

fn intoto(i: &Intoto, envelope: &Envelope, signer: Signer<'_>) -> Result<(), BindError> {
    if i.payload_type != envelope.payload_type {
        return Err(BindError::Mismatch {
            field: BoundField::PayloadType,
        });
    }
    if i.payload.as_ref().is_some_and(|p| *p != envelope.payload) {
        return Err(BindError::Mismatch {
            field: BoundField::Payload,
        });
    }
    same_payload_hash(&i.payload_hash, &envelope.payload)?;
    only_signature(&i.signatures, envelope, signer)
}

fn same_payload_hash(logged: &LoggedDigest, payload: &[u8]) -> Result<(), BindError> {
    let computed = LoggedDigest {
        algorithm: HashAlgorithm::Sha2_256,
        value: Sha256::digest(payload).to_vec(),
    };
    same_digest(BoundField::PayloadHash, logged, &computed)
}

/// A bundle's envelope has exactly one signature, so the entry must record exactly that one.
fn only_signature(
    logged: &[LoggedSignature],
    envelope: &Envelope,
    signer: Signer<'_>,
) -> Result<(), BindError> {
    match (logged, envelope.signatures.as_slice()) {
        ([logged], [signature]) => same_signature(logged, &signature.sig, signer),
        (logged, [_]) => Err(BindError::SignatureCount {
            count: logged.len(),
        }),
        (_, signatures) => Err(BindError::SignatureCount {
            count: signatures.len(),
        }),
    }
}

fn same_signature(
    logged: &LoggedSignature,
    signature: &[u8],
    signer: Signer<'_>,
) -> Result<(), BindError> {
    if logged.signature != signature {
        return Err(BindError::Mismatch {
            field: BoundField::Signature,
        });
    }
    match (&logged.verifier, signer) {
        (LoggedVerifier::PublicKey(spki), Signer::Key(key)) if spki == key.spki_der() => Ok(()),
        (LoggedVerifier::Certificate(der), Signer::Certificate(cert)) if der == cert => Ok(()),
        (LoggedVerifier::PublicKey(_), Signer::Key(_)) => Err(BindError::Mismatch {
            field: BoundField::PublicKey,
        }),
        (LoggedVerifier::Certificate(_), Signer::Certificate(_)) => Err(BindError::Mismatch {
            field: BoundField::Certificate,
        }),
        (logged, Signer::Key(_)) => Err(BindError::SignerKind {
            field: BoundField::PublicKey,
            logged: logged.describe(),
            bundle: "public key",
        }),
        (logged, Signer::Certificate(_)) => Err(BindError::SignerKind {
            field: BoundField::Certificate,
            logged: logged.describe(),
            bundle: "certificate",
        }),
    }
}

fn same_digest(
    field: BoundField,
    logged: &LoggedDigest,
    bundle: &LoggedDigest,
) -> Result<(), BindError> {
    if logged == bundle {
        return Ok(());
    }
    let show = |d: &LoggedDigest| format!("{}:{}", d.algorithm.as_str(), hex::encode(&d.value));
    Err(BindError::DigestMismatch {
        field,
        logged: show(logged),
        bundle: show(bundle),
    })
}

fn artifact_digest(
    algorithm: HashAlgorithm,
    artifact: &Artifact<'_>,
) -> Result<LoggedDigest, BindError> {
    let value = match (algorithm, artifact.bytes) {
        (HashAlgorithm::Sha2_256, _) => artifact.digest.as_bytes().to_vec(),
        (HashAlgorithm::Sha2_384, Some(bytes)) => Sha384::digest(bytes).to_vec(),
        (HashAlgorithm::Sha2_512, Some(bytes)) => Sha512::digest(bytes).to_vec(),
        (other, _) => {
            return Err(BindError::NeedArtifactBytes {
                algorithm: other.as_str(),
            });
        }
    };
    Ok(LoggedDigest { algorithm, value })
}
