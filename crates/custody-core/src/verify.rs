//! Verifying Sigstore bundles: with a known public key (this module) or keyless, with a Fulcio
//! certificate and an identity policy ([`keyless`]). Both give a [`VerifiedBundle`].
//!
//! The key-based steps follow the Sigstore client specification (SPECS §4.4, step 5): parse,
//! bind the bundle to the artifact, verify the signature over the exact bytes received, and for
//! DSSE check that the in-toto statement names the artifact. Given a trusted root
//! ([`KeyVerifyOptions::trusted_root`]), every transparency-log entry must verify against it and
//! record this bundle (SPECS §4.4 step 3, [`crate::tlog`]); without one, entries are reported
//! honestly as *not checked*: a result never implies more than was verified. With a trusted root
//! the bundle's RFC 3161 timestamps are verified too (one that does not verify is a note), and
//! their times are when a log key without an inclusion promise (Rekor v2) must have been valid;
//! with none, the key must be valid now, so a retired log key vouches for nothing.

use chrono::{DateTime, Utc};

use crate::bundle::{Bundle, Material};
use crate::digest::Sha256Digest;
use crate::dsse::SignatureVerifier;
use crate::intoto::Statement;
use crate::keys::{KeyAlgorithm, KeyId, PublicKey, SignedData};
use crate::rekor::Signer;
use crate::tlog::{TlogOptions, VerifiedTlogEntry, verify_bundle_entries};
use crate::trust_root::TrustedRoot;
use crate::x509::{FulcioClaims, SubjectAlternativeName, VerifiedSct};

mod content;
mod error;
pub mod keyless;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

pub use error::VerifyError;
pub use keyless::{KeylessPolicy, verify_keyless};

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

/// Who signed, as verified.
#[derive(Debug, Clone)]
pub enum VerifiedSigner {
    /// The key the caller trusts.
    Key {
        key_id: KeyId,
        algorithm: KeyAlgorithm,
    },
    /// A Fulcio certificate that chained to the trusted root and matched the identity policy.
    Certificate(Box<CertificateSigner>),
}

impl VerifiedSigner {
    /// The signing key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            Self::Key { algorithm, .. } => *algorithm,
            Self::Certificate(c) => c.algorithm,
        }
    }
}

/// The signer of a keyless bundle: what the verified certificate says.
#[derive(Debug, Clone)]
pub struct CertificateSigner {
    /// The certificate's subject alternative name: who signed.
    pub identity: SubjectAlternativeName,
    /// The OIDC issuer that vouched for the identity.
    pub issuer: String,
    /// Every Fulcio claim (GitHub workflow repository, ref, SHA, …) for policy.
    pub claims: FulcioClaims,
    pub algorithm: KeyAlgorithm,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// The `uri` of the trusted-root certificate authority the chain ends in.
    pub authority: String,
    /// The embedded SCTs that verified.
    pub scts: Vec<VerifiedSct>,
}

/// Where a verified signing time came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeSource {
    /// An RFC 3161 timestamp from this trusted timestamp authority (`uri`).
    Timestamp { tsa: String },
    /// A Rekor v1 `integratedTime` vouched for by a verified inclusion promise.
    Tlog { log_url: String, log_index: i64 },
}

/// A time at which the signature is known to have existed, and who vouches for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTime {
    pub time: DateTime<Utc>,
    pub source: TimeSource,
}

/// A bundle whose signature verified for the given artifact: against the given key
/// ([`verify_with_key`]) or a Fulcio certificate matching a policy ([`verify_keyless`]).
#[derive(Debug)]
pub struct VerifiedBundle {
    pub artifact: Sha256Digest,
    pub signer: VerifiedSigner,
    pub media_type: String,
    pub content: VerifiedContent,
    pub tlog: TlogStatus,
    /// The verified log entries (empty unless a trusted root was given).
    pub tlog_entries: Vec<VerifiedTlogEntry>,
    /// The verified signing times (keyless: at least the policy's threshold; the certificate
    /// was valid and chained to the trusted root at each).
    pub times: Vec<VerifiedTime>,
    /// Facts worth telling the user that do not make verification fail.
    pub notes: Vec<String>,
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
    let signer = || format!("key {}", key.key_id());
    let content = content::verify_content(&bundle.content, &artifact, key, &signer)?;
    let mut times = Vec::new();
    let (tlog, tlog_entries) = match (
        options.trusted_root,
        bundle.verification_material.tlog_entries.len(),
    ) {
        (Some(_), 0) => return Err(VerifyError::NoTlogEntry),
        (None, 0) => (TlogStatus::Absent, Vec::new()),
        (None, entries) => (TlogStatus::NotChecked { entries }, Vec::new()),
        (Some(root), _) => {
            let (stamped, ignored) = keyless::verify_timestamps(bundle, root)?;
            notes.extend(
                ignored
                    .iter()
                    .map(|(i, e)| format!("RFC 3161 timestamp {i} was not counted: {e}")),
            );
            let signed_times: Vec<_> = stamped.iter().map(|t| t.time).collect();
            times = stamped;
            let verified = verify_bundle_entries(
                bundle,
                root,
                Signer::Key(key),
                Some(&artifact),
                &TlogOptions {
                    signed_times: &signed_times,
                    ..TlogOptions::default()
                },
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
    times.extend(tlog_entries.iter().filter_map(tlog_time));
    Ok(VerifiedBundle {
        artifact: artifact.digest,
        signer: VerifiedSigner::Key {
            key_id: key.key_id(),
            algorithm: key.algorithm(),
        },
        media_type: bundle.media_type.clone(),
        content,
        tlog,
        tlog_entries,
        times,
        notes,
    })
}

/// The time a verified entry vouches for (Rekor v1 inclusion promise), if any.
pub(crate) fn tlog_time(entry: &VerifiedTlogEntry) -> Option<VerifiedTime> {
    entry.integrated_time().map(|time| VerifiedTime {
        time,
        source: TimeSource::Tlog {
            log_url: entry.log_base_url().to_string(),
            log_index: entry.log_index(),
        },
    })
}
