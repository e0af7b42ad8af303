//! Verifying Sigstore bundles signed with a known public key.
//!
//! The steps follow the Sigstore client specification (SPECS §4.4, step 5) for the key-based
//! case: parse, bind the bundle to the artifact, verify the signature over the exact bytes
//! received, and for DSSE check that the in-toto statement names the artifact. Given a trusted
//! root ([`KeyVerifyOptions::trusted_root`]), every transparency-log entry must verify against
//! it and record this bundle (SPECS §4.4 step 3, [`crate::tlog`]); without one, entries are
//! reported honestly as *not checked*: a result never implies more than was verified.

use chrono::{DateTime, Utc};

use crate::bundle::{Bundle, BundleContent, BundleError, HashAlgorithm, Material};
use crate::digest::Sha256Digest;
use crate::dsse::{DsseError, IN_TOTO_PAYLOAD_TYPE, SignatureVerifier};
use crate::intoto::{Statement, StatementError};
use crate::keys::{KeyAlgorithm, KeyId, PublicKey, SignatureError, SignedData};
use crate::rekor::Signer;
use crate::tlog::{TlogError, TlogOptions, VerifiedTlogEntry, verify_bundle_entries};
use crate::trust_root::TrustedRoot;

/// The artifact a bundle is checked against: always its digest, and its bytes when the
/// signature scheme needs the whole message (Ed25519 over a message signature).
#[derive(Clone, Copy, Debug)]
pub struct Artifact<'a> {
    pub digest: Sha256Digest,
    pub bytes: Option<&'a [u8]>,
}

impl<'a> Artifact<'a> {
    /// An artifact known only by its digest.
    pub fn from_digest(digest: Sha256Digest) -> Self {
        Self { digest, bytes: None }
    }

    /// An artifact held in memory.
    pub fn from_bytes(bytes: &'a [u8]) -> Self {
        Self { digest: Sha256Digest::of(bytes), bytes: Some(bytes) }
    }
}

/// What the verified signature covers.
#[derive(Debug)]
pub enum VerifiedContent {
    /// A signature over the artifact itself.
    MessageSignature,
    /// A DSSE envelope whose in-toto statement names the artifact as a subject.
    Statement(Box<Statement>),
}

/// What became of the bundle's transparency-log entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlogStatus {
    /// The bundle carries no log entry.
    Absent,
    /// The bundle carries entries, and this verification did **not** check them.
    NotChecked { entries: usize },
    /// Every entry verified against the trusted root and records this bundle.
    Verified {
        entries: usize,
        /// The earliest `integratedTime` vouched for by a verified inclusion promise.
        integrated_time: Option<DateTime<Utc>>,
    },
}

/// What key-based verification checks besides the signature.
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyVerifyOptions<'a> {
    /// Verify the bundle's transparency-log entries against this root's Rekor logs.
    pub trusted_root: Option<&'a TrustedRoot>,
}

/// A bundle whose signature verified against the given key, for the given artifact.
///
/// Only [`verify_with_key`] makes one.
#[derive(Debug)]
pub struct VerifiedBundle {
    pub artifact: Sha256Digest,
    pub signer: KeyId,
    pub algorithm: KeyAlgorithm,
    pub media_type: String,
    pub content: VerifiedContent,
    pub tlog: TlogStatus,
    /// The verified log entries (empty unless a trusted root was given).
    pub tlog_entries: Vec<VerifiedTlogEntry>,
    /// Facts worth telling the user that do not make verification fail.
    pub notes: Vec<String>,
}

/// Why a bundle did not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("malformed bundle: {0}")]
    Bundle(#[from] BundleError),
    #[error(
        "the bundle is signed with a certificate, not a key (keyless verification needs --trusted-root and --certificate-identity)"
    )]
    CertificateBundle,
    #[error("the bundle's message digest is {algorithm}, only SHA2_256 is supported")]
    UnsupportedDigestAlgorithm { algorithm: String },
    #[error(
        "the bundle signs digest {bundle} but the artifact is {artifact} (wrong file for this bundle?)"
    )]
    DigestMismatch { bundle: String, artifact: Sha256Digest },
    #[error("signature does not verify with key {key} ({algorithm}): {source}")]
    Signature { key: String, algorithm: KeyAlgorithm, source: SignatureError },
    #[error(
        "{algorithm} signs whole messages: give the artifact's file, not only its digest"
    )]
    NeedArtifactBytes { algorithm: KeyAlgorithm },
    #[error("DSSE envelope: {0}")]
    Dsse(#[from] DsseError),
    #[error("DSSE payload type is {found:?}, expected {IN_TOTO_PAYLOAD_TYPE:?}")]
    PayloadType { found: String },
    #[error("in-toto statement: {0}")]
    Statement(#[from] StatementError),
    #[error("the statement's subjects ({subjects}) do not include the artifact {artifact}")]
    SubjectMismatch { artifact: Sha256Digest, subjects: String },
    #[error("transparency log: {0}")]
    Tlog(#[from] TlogError),
    #[error(
        "a trusted root was given to check transparency-log evidence, but the bundle has no log entry"
    )]
    NoTlogEntry,
}

impl VerifyError {
    /// True when the failure is the caller's (a usage problem) rather than the evidence's.
    pub fn is_usage(&self) -> bool {
        matches!(self, Self::NeedArtifactBytes { .. })
    }
}

impl SignatureVerifier for PublicKey {
    fn verify_signature(&self, message: &[u8], signature: &[u8]) -> bool {
        self.verify(SignedData::Message(message), signature).is_ok()
    }
}

/// Verifies a bundle's bytes against `key` for `artifact`.
pub fn verify_with_key(
    bundle_json: &[u8],
    artifact: Artifact<'_>,
    key: &PublicKey,
) -> Result<VerifiedBundle, VerifyError> {
    let bundle = Bundle::from_json(bundle_json)?;
    verify_parsed_with_key(&bundle, artifact, key)
}

/// [`verify_with_key`] for a bundle already parsed; transparency-log entries are not checked.
pub fn verify_parsed_with_key(
    bundle: &Bundle,
    artifact: Artifact<'_>,
    key: &PublicKey,
) -> Result<VerifiedBundle, VerifyError> {
    verify_parsed_with_key_options(bundle, artifact, key, &KeyVerifyOptions::default())
}

/// [`verify_parsed_with_key`], and with a trusted root every log entry must verify and bind to
/// the bundle: body key = `key`, same signature, same digest.
pub fn verify_parsed_with_key_options(
    bundle: &Bundle,
    artifact: Artifact<'_>,
    key: &PublicKey,
    options: &KeyVerifyOptions<'_>,
) -> Result<VerifiedBundle, VerifyError> {
    let mut notes = Vec::new();
    match &bundle.verification_material.content {
        Material::PublicKeyHint(hint) => {
            // The hint is unauthenticated (protobuf-specs): a mismatch is worth a note, never trust.
            let id = key.key_id();
            let matches = *hint == id.to_string() || *hint == crate::encoding::base64_encode(&id.0);
            if !hint.is_empty() && !matches {
                notes.push(format!("the bundle's key hint {hint:?} differs from the key's id {id}"));
            }
        }
        _ => return Err(VerifyError::CertificateBundle),
    }
    let content = match &bundle.content {
        BundleContent::MessageSignature { message_digest, signature } => {
            if let Some((algorithm, digest)) = message_digest {
                // Consistency check (conformance `message-digest-mismatch_fail`): the digest field
                // is a hint, but a bundle that disagrees with the artifact is refused.
                if *algorithm != HashAlgorithm::Sha2_256 {
                    return Err(VerifyError::UnsupportedDigestAlgorithm {
                        algorithm: format!("{algorithm:?}"),
                    });
                }
                if digest.as_slice() != artifact.digest.as_bytes() {
                    return Err(VerifyError::DigestMismatch {
                        bundle: hex::encode(digest),
                        artifact: artifact.digest,
                    });
                }
            }
            let data = match (key.algorithm(), artifact.bytes) {
                (KeyAlgorithm::Ed25519, Some(bytes)) => SignedData::Message(bytes),
                (KeyAlgorithm::Ed25519, None) => {
                    return Err(VerifyError::NeedArtifactBytes { algorithm: KeyAlgorithm::Ed25519 });
                }
                _ => SignedData::Sha256Digest(artifact.digest.as_bytes()),
            };
            key.verify(data, signature).map_err(|source| VerifyError::Signature {
                key: key.key_id().to_string(),
                algorithm: key.algorithm(),
                source,
            })?;
            VerifiedContent::MessageSignature
        }
        BundleContent::Dsse(envelope) => {
            let verified = envelope.verify(&[key as &dyn SignatureVerifier], 1)?;
            if verified.payload_type != IN_TOTO_PAYLOAD_TYPE {
                return Err(VerifyError::PayloadType { found: verified.payload_type });
            }
            let statement = Statement::from_verified_payload(&verified)?;
            if !statement.subject_matches_sha256(&artifact.digest) {
                let subjects = statement
                    .subject
                    .iter()
                    .map(|s| s.digest.get("sha256").map_or("no sha256", String::as_str))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(VerifyError::SubjectMismatch { artifact: artifact.digest, subjects });
            }
            VerifiedContent::Statement(Box::new(statement))
        }
    };
    let (tlog, tlog_entries) = match (options.trusted_root, bundle.verification_material.tlog_entries.len()) {
        (Some(_), 0) => return Err(VerifyError::NoTlogEntry),
        (None, 0) => (TlogStatus::Absent, Vec::new()),
        (None, entries) => (TlogStatus::NotChecked { entries }, Vec::new()),
        (Some(root), _) => {
            let verified = verify_bundle_entries(
                bundle,
                root,
                Signer::Key(key),
                Some(&artifact),
                &TlogOptions::default(),
            )?;
            let integrated_time = verified.iter().filter_map(VerifiedTlogEntry::integrated_time).min();
            (TlogStatus::Verified { entries: verified.len(), integrated_time }, verified)
        }
    };
    Ok(VerifiedBundle {
        artifact: artifact.digest,
        signer: key.key_id(),
        algorithm: key.algorithm(),
        media_type: bundle.media_type.clone(),
        content,
        tlog,
        tlog_entries,
        notes,
    })
}
