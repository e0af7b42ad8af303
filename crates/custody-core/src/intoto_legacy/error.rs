//! Errors of in-toto legacy metadata: malformed documents, verification failures, and the
//! operational failures (I/O, running an inspection) kept apart from both.

use std::path::PathBuf;

use super::canonical::CanonicalJsonError;
use super::params::ParamError;
use crate::dsse::DsseError;

/// A link or layout that cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    #[error("not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error(
        "neither a signed Metablock (`signed`, `signatures`) nor a DSSE envelope with payloadType application/vnd.in-toto+json"
    )]
    UnknownWrapper,
    #[error("malformed DSSE envelope: {0}")]
    Dsse(#[source] DsseError),
    #[error("`signatures[{index}]`: {reason}")]
    Signature { index: usize, reason: &'static str },
    #[error("`_type` is {found:?}, expected {expected:?}")]
    WrongType {
        found: String,
        expected: &'static str,
    },
    #[error("malformed {what}: {reason}")]
    Field { what: String, reason: String },
    #[error("{0}")]
    Canonical(#[source] CanonicalJsonError),
    #[error("key {keyid}: {reason}")]
    Key { keyid: String, reason: String },
    #[error("malformed artifact rule {rule:?}: {reason}")]
    Rule { rule: Vec<String>, reason: String },
    /// python in-toto's `gpg` keys and signatures (`keyid` + `signature` + `other_headers`):
    /// not verified by custody, refused by name.
    #[error(
        "{what} {keyid} is GPG (OpenPGP): custody does not support GPG keys or signatures in in-toto metadata; verify with python in-toto (in-toto-verify --gpg) or sign with an ed25519, ecdsa or rsa key"
    )]
    Gpg { what: &'static str, keyid: String },
}

/// Why a supply chain did not verify, in the words python in-toto uses where it has them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    // --- verification failures (exit 1) -----------------------------------------------------
    #[error("Layout signature verification requires at least one key.")]
    NoLayoutKeys,
    #[error("No signature found for key '{keyid}' (the layout is not signed by this key)")]
    NoSignatureForKey { keyid: String },
    #[error("Invalid signature for keyid '{keyid}'")]
    InvalidSignature { keyid: String },
    #[error("Layout expired (expires {expires})")]
    LayoutExpired { expires: String },
    #[error("Step '{step}' requires '{threshold}' link metadata file(s), found '{found}'.")]
    LinkNotFound {
        step: String,
        threshold: i64,
        found: usize,
    },
    #[error(
        "Step '{step}' requires at least '{threshold}' links validly signed by different authorized functionaries. Only found '{found}'{skipped}"
    )]
    Threshold {
        step: String,
        threshold: i64,
        found: usize,
        /// Why links were not counted, for the message.
        skipped: String,
    },
    #[error("Links '{first}' and '{other}' have different artifacts!")]
    DifferentArtifacts { first: String, other: String },
    #[error("{rule} (expected_{source_type} of '{item}'): {detail}")]
    Rule {
        item: String,
        source_type: &'static str,
        rule: String,
        detail: String,
    },
    #[error("inspection '{name}': Got non-{what} return value '{value}' from command '{command}'.")]
    InspectionReturnValue {
        name: String,
        what: &'static str,
        value: String,
        command: String,
    },
    #[error("{file}: {source}")]
    Malformed {
        file: String,
        #[source]
        source: MetadataError,
    },
    #[error("{0}")]
    Parameters(#[source] ParamError),
    #[error("sublayout of step '{step}': {source}")]
    Sublayout {
        step: String,
        #[source]
        source: Box<VerifyError>,
    },

    // --- operational failures (exit 2) ------------------------------------------------------
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("inspection '{name}' could not be run: {reason}")]
    InspectionRun { name: String, reason: String },
}

impl VerifyError {
    /// True when the failure is about the machine (a file that cannot be read, a command that
    /// cannot start), not about the evidence.
    pub fn is_operational(&self) -> bool {
        match self {
            Self::Io { .. } | Self::InspectionRun { .. } => true,
            Self::Parameters(e) => e.is_operational(),
            // custody cannot check GPG at all: neither verified nor refused on the evidence.
            Self::Malformed {
                source: MetadataError::Gpg { .. },
                ..
            } => true,
            Self::Sublayout { source, .. } => source.is_operational(),
            _ => false,
        }
    }
}
