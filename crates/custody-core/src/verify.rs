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
        Self {
            digest,
            bytes: None,
        }
    }

    /// An artifact held in memory.
    pub fn from_bytes(bytes: &'a [u8]) -> Self {
        Self {
            digest: Sha256Digest::of(bytes),
            bytes: Some(bytes),
        }
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
    DigestMismatch {
        bundle: String,
        artifact: Sha256Digest,
    },
    #[error("signature does not verify with key {key} ({algorithm}): {source}")]
    Signature {
        key: String,
        algorithm: KeyAlgorithm,
        source: SignatureError,
    },
    #[error("{algorithm} signs whole messages: give the artifact's file, not only its digest")]
    NeedArtifactBytes { algorithm: KeyAlgorithm },
    #[error("DSSE envelope: {0}")]
    Dsse(#[from] DsseError),
    #[error("DSSE payload type is {found:?}, expected {IN_TOTO_PAYLOAD_TYPE:?}")]
    PayloadType { found: String },
    #[error("in-toto statement: {0}")]
    Statement(#[from] StatementError),
    #[error("the statement's subjects ({subjects}) do not include the artifact {artifact}")]
    SubjectMismatch {
        artifact: Sha256Digest,
        subjects: String,
    },
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
                notes.push(format!(
                    "the bundle's key hint {hint:?} differs from the key's id {id}"
                ));
            }
        }
        _ => return Err(VerifyError::CertificateBundle),
    }
    let content = match &bundle.content {
        BundleContent::MessageSignature {
            message_digest,
            signature,
        } => {
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
                        bundle: format!("sha256:{}", hex::encode(digest)),
                        artifact: artifact.digest,
                    });
                }
            }
            let data = match (key.algorithm(), artifact.bytes) {
                (KeyAlgorithm::Ed25519, Some(bytes)) => SignedData::Message(bytes),
                (KeyAlgorithm::Ed25519, None) => {
                    return Err(VerifyError::NeedArtifactBytes {
                        algorithm: KeyAlgorithm::Ed25519,
                    });
                }
                _ => SignedData::Sha256Digest(artifact.digest.as_bytes()),
            };
            key.verify(data, signature)
                .map_err(|source| VerifyError::Signature {
                    key: key.key_id().to_string(),
                    algorithm: key.algorithm(),
                    source,
                })?;
            VerifiedContent::MessageSignature
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
            VerifiedContent::Statement(Box::new(statement))
        }
    };
    let (tlog, tlog_entries) = match (
        options.trusted_root,
        bundle.verification_material.tlog_entries.len(),
    ) {
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
            let integrated_time = verified
                .iter()
                .filter_map(VerifiedTlogEntry::integrated_time)
                .min();
            (
                TlogStatus::Verified {
                    entries: verified.len(),
                    integrated_time,
                },
                verified,
            )
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::dsse::{Envelope, EnvelopeSignature, pae};
    use crate::intoto::ResourceDescriptor;

    const ARTIFACT: &[u8] = b"the artifact";

    fn hint(key: &PublicKey) -> String {
        crate::encoding::base64_encode(&key.key_id().0)
    }

    fn message_bundle(key: &crate::keys::SigningKey) -> String {
        let digest = Sha256Digest::of(ARTIFACT);
        let sig = key
            .sign(SignedData::Sha256Digest(digest.as_bytes()))
            .unwrap();
        Bundle::new_message_signature_v03(hint(&key.public_key()), &digest, sig).to_json()
    }

    fn dsse_bundle(key: &crate::keys::SigningKey) -> String {
        let digest = Sha256Digest::of(ARTIFACT);
        let statement = Statement::new_v1(
            vec![ResourceDescriptor::from_sha256("a", &digest)],
            "https://example.com/p".to_string(),
            serde_json::json!({"k": "v"}),
        );
        let payload = statement.to_json_bytes();
        let sig = key
            .sign(SignedData::Message(&pae(IN_TOTO_PAYLOAD_TYPE, &payload)))
            .unwrap();
        let envelope = Envelope {
            payload,
            payload_type: IN_TOTO_PAYLOAD_TYPE.to_string(),
            signatures: vec![EnvelopeSignature {
                keyid: String::new(),
                sig,
            }],
        };
        Bundle::new_dsse_v03(hint(&key.public_key()), envelope).to_json()
    }

    /// What a signature covers; a verifying bundle must carry exactly the original's. (A message
    /// signature covers the artifact itself: its `messageDigest` is a hint that may be absent, but
    /// when present it must be the artifact's, which `verify` checks.)
    fn signed_content(bundle: &Bundle) -> (Vec<u8>, Vec<u8>) {
        match &bundle.content {
            BundleContent::MessageSignature { signature, .. } => (signature.clone(), Vec::new()),
            BundleContent::Dsse(env) => (
                env.signatures[0].sig.clone(),
                pae(&env.payload_type, &env.payload),
            ),
        }
    }

    #[test]
    fn both_kinds_verify_and_refuse_other_artifacts_and_keys() {
        for alg in [KeyAlgorithm::EcdsaP256Sha256, KeyAlgorithm::Ed25519] {
            let key = crate::keys::SigningKey::generate(alg).unwrap();
            let other = crate::keys::SigningKey::generate(alg).unwrap().public_key();
            let public = key.public_key();
            let bundles = [dsse_bundle(&key)]
                .into_iter()
                .chain((alg != KeyAlgorithm::Ed25519).then(|| message_bundle(&key)));
            for json in bundles {
                let ok = verify_with_key(json.as_bytes(), Artifact::from_bytes(ARTIFACT), &public)
                    .unwrap();
                assert_eq!(ok.tlog, TlogStatus::Absent);
                assert!(ok.notes.is_empty(), "{:?}", ok.notes);
                assert!(
                    verify_with_key(json.as_bytes(), Artifact::from_bytes(b"other"), &public)
                        .is_err()
                );
                assert!(
                    verify_with_key(json.as_bytes(), Artifact::from_bytes(ARTIFACT), &other)
                        .is_err()
                );
            }
        }
    }

    #[test]
    fn ed25519_message_signature_needs_the_bytes() {
        let key = crate::keys::SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
        let digest = Sha256Digest::of(ARTIFACT);
        let sig = key.sign(SignedData::Message(ARTIFACT)).unwrap();
        let json =
            Bundle::new_message_signature_v03(hint(&key.public_key()), &digest, sig).to_json();
        let public = key.public_key();
        assert!(verify_with_key(json.as_bytes(), Artifact::from_bytes(ARTIFACT), &public).is_ok());
        let err =
            verify_with_key(json.as_bytes(), Artifact::from_digest(digest), &public).unwrap_err();
        assert!(err.is_usage(), "{err}");
    }

    #[test]
    fn certificate_bundles_are_not_key_bundles() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/testdata/sigstore-conformance/bundle-verify/happy-path-v0.3/bundle.sigstore.json");
        let key = crate::keys::SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256)
            .unwrap()
            .public_key();
        let err = verify_with_key(
            &std::fs::read(path).unwrap(),
            Artifact::from_bytes(ARTIFACT),
            &key,
        )
        .unwrap_err();
        assert!(matches!(err, VerifyError::CertificateBundle), "{err}");
    }

    fn keys() -> &'static (crate::keys::SigningKey, String, String) {
        static KEYS: std::sync::OnceLock<(crate::keys::SigningKey, String, String)> =
            std::sync::OnceLock::new();
        KEYS.get_or_init(|| {
            let key = crate::keys::SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
            let (m, d) = (message_bundle(&key), dsse_bundle(&key));
            (key, m, d)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 768, ..ProptestConfig::default() })]
        /// Mutating any byte of a valid bundle never panics, and a mutated bundle verifies only if
        /// what the signature covers is byte-for-byte the original's (e.g. a changed key hint,
        /// which is an unauthenticated hint by specification).
        #[test]
        fn mutated_bundles_never_verify_different_content(which in 0usize..2, pos in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<bool>()) {
            let (key, message, dsse) = keys();
            let original = if which == 0 { message } else { dsse };
            let mut bytes = original.as_bytes().to_vec();
            let i = pos.index(bytes.len());
            if cut { bytes.truncate(i) } else { bytes[i] = byte }
            let public = key.public_key();
            if verify_with_key(&bytes, Artifact::from_bytes(ARTIFACT), &public).is_ok() {
                let before = Bundle::from_json(original.as_bytes()).unwrap();
                let after = Bundle::from_json(&bytes).unwrap();
                prop_assert_eq!(signed_content(&before), signed_content(&after), "mutated: {}", String::from_utf8_lossy(&bytes));
            }
        }
    }
}
