//! Sigstore bundle (`dev.sigstore.bundle.v1.Bundle`, media types v0.1–v0.3) in its protobuf-JSON
//! form (SPECS §0, §4.1).
//!
//! [`Bundle::from_json`] returns an **unverified** bundle: it checks structure and the version
//! rules of sigstore-go's `validate`, never signatures, proofs or certificates. All signed or
//! hashed material (DSSE payload, canonicalized Rekor body, checkpoint text, SET) is kept as the
//! exact bytes that were decoded.
//!
//! Refused at parse time (the bundle cannot be read as a valid bundle of its declared version):
//! unknown media type or version ≥ 0.4; truncated/malformed JSON; invalid base64 or integers;
//! negative log index / tree size / integrated time; missing or conflicting verification
//! material; an empty certificate chain or certificate; `x509CertificateChain` in v0.3; a v0.1
//! entry without `inclusionPromise`; a ≥ v0.2 entry without `inclusionProof`; an inclusion proof
//! without its (REQUIRED) checkpoint; not exactly one of `messageSignature`/`dsseEnvelope`; a
//! DSSE envelope without exactly one signature.
//!
//! Left to verification (they depend on policy or trust material, not on the bundle alone):
//! whether there must be a tlog entry at all (`bundle_no_log_entry`), whether there is a trusted
//! time source (inclusion promise or RFC 3161 timestamp, `bundle_v3_no_signed_time`), limits on
//! the number or duplication of timestamps, certificate contents, and every cryptographic check.

use crate::digest::Sha256Digest;
use crate::dsse::{DsseError, Envelope};
use crate::encoding::Base64Error;

mod parse;
pub(crate) mod protojson;
mod wire;

/// Canonical v0.3 media type.
pub const MEDIA_TYPE_V0_3: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Legacy media types (still accepted and still written for v0.1/v0.2 bundles).
pub const MEDIA_TYPE_V0_1_LEGACY: &str = "application/vnd.dev.sigstore.bundle+json;version=0.1";
pub const MEDIA_TYPE_V0_2_LEGACY: &str = "application/vnd.dev.sigstore.bundle+json;version=0.2";
pub const MEDIA_TYPE_V0_3_LEGACY: &str = "application/vnd.dev.sigstore.bundle+json;version=0.3";

/// Bundle format version, from the media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BundleVersion {
    V0_1,
    V0_2,
    V0_3,
}

impl BundleVersion {
    /// Reads the version from a media type (legacy `;version=0.X` or `bundle.v0.X+json`).
    pub fn from_media_type(media_type: &str) -> Result<Self, BundleError> {
        const LEGACY: &str = "application/vnd.dev.sigstore.bundle+json;version=";
        const NEW_PREFIX: &str = "application/vnd.dev.sigstore.bundle.v";
        let version = if let Some(v) = media_type.strip_prefix(LEGACY) {
            v
        } else if let Some(v) = media_type
            .strip_prefix(NEW_PREFIX)
            .and_then(|v| v.strip_suffix("+json"))
        {
            v
        } else {
            return Err(BundleError::UnknownMediaType {
                media_type: media_type.to_string(),
            });
        };
        // sigstore-go: semver `0.X` or `0.X.Y`; only 0.1–0.3 exist.
        let numbers: Vec<Option<u64>> = version.split('.').map(|p| p.parse::<u64>().ok()).collect();
        match numbers.as_slice() {
            [Some(0), Some(1)] => Ok(Self::V0_1),
            [Some(0), Some(2)] => Ok(Self::V0_2),
            [Some(0), Some(3)] => Ok(Self::V0_3),
            [Some(0), Some(3), Some(_)] if media_type.starts_with(NEW_PREFIX) => Ok(Self::V0_3),
            n if !n.is_empty() && n.len() <= 3 && n.iter().all(Option::is_some) => {
                Err(BundleError::UnsupportedVersion {
                    media_type: media_type.to_string(),
                })
            }
            _ => Err(BundleError::UnknownMediaType {
                media_type: media_type.to_string(),
            }),
        }
    }

    /// The media type custody writes for this version.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::V0_1 => MEDIA_TYPE_V0_1_LEGACY,
            Self::V0_2 => MEDIA_TYPE_V0_2_LEGACY,
            Self::V0_3 => MEDIA_TYPE_V0_3,
        }
    }
}

/// `dev.sigstore.common.v1.HashAlgorithm`, written by name in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    Sha2_256,
    Sha2_384,
    Sha2_512,
    /// Deprecated in protobuf-specs; read for completeness.
    Sha3_256,
    /// Deprecated in protobuf-specs; read for completeness.
    Sha3_384,
}

impl HashAlgorithm {
    /// The protobuf enum name, e.g. `"SHA2_256"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha2_256 => "SHA2_256",
            Self::Sha2_384 => "SHA2_384",
            Self::Sha2_512 => "SHA2_512",
            Self::Sha3_256 => "SHA3_256",
            Self::Sha3_384 => "SHA3_384",
        }
    }

    /// Parses a protobuf enum name.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "SHA2_256" => Self::Sha2_256,
            "SHA2_384" => Self::Sha2_384,
            "SHA2_512" => Self::Sha2_512,
            "SHA3_256" => Self::Sha3_256,
            "SHA3_384" => Self::Sha3_384,
            _ => return None,
        })
    }
}

/// A parsed, **unverified** Sigstore bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The media type exactly as written (written back unchanged by [`Bundle::to_json`]).
    pub media_type: String,
    pub version: BundleVersion,
    pub verification_material: VerificationMaterial,
    pub content: BundleContent,
}

/// What the verifier needs besides the content: key or certificate, log entries, timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationMaterial {
    pub content: Material,
    pub tlog_entries: Vec<TransparencyLogEntry>,
    /// DER `TimeStampResp` blobs (RFC 3161), unparsed.
    pub rfc3161_timestamps: Vec<Vec<u8>>,
}

/// The signer's identity material: exactly one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Material {
    /// A key delivered out of band; the hint is free-form and unauthenticated.
    PublicKeyHint(String),
    /// DER certificates, leaf first (v0.1/v0.2 only). Never empty.
    X509CertificateChain(Vec<Vec<u8>>),
    /// The DER leaf certificate (v0.3).
    Certificate(Vec<u8>),
}

/// What was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleContent {
    /// A signature over an artifact; the digest is an unauthenticated hint.
    MessageSignature {
        message_digest: Option<(HashAlgorithm, Vec<u8>)>,
        signature: Vec<u8>,
    },
    /// A DSSE envelope with exactly one signature; its payload bytes are kept as decoded.
    Dsse(Envelope),
}

/// `dev.sigstore.rekor.v1.TransparencyLogEntry`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransparencyLogEntry {
    /// Global log index (the one the SET covers). Never negative.
    pub log_index: i64,
    /// Rekor v1: SHA-256 of the log's DER SPKI.
    pub log_id: Vec<u8>,
    pub kind: String,
    pub version: String,
    /// Unix seconds; untrusted unless the inclusion promise verifies; 0 when absent (Rekor v2).
    pub integrated_time: i64,
    /// The Signed Entry Timestamp (DER ECDSA signature), as decoded.
    pub inclusion_promise: Option<Vec<u8>>,
    pub inclusion_proof: Option<InclusionProof>,
    /// The exact Rekor leaf body bytes.
    pub canonicalized_body: Vec<u8>,
}

/// An RFC 6962 inclusion proof with its signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// Shard-local leaf index. Never negative.
    pub log_index: i64,
    pub root_hash: Vec<u8>,
    pub tree_size: i64,
    pub hashes: Vec<Vec<u8>>,
    /// The signed-note checkpoint text, exactly as in the bundle.
    pub checkpoint: String,
}

/// Why a bundle was refused at parse time.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    #[error("the bundle JSON is truncated: {source} (re-download or re-create the bundle)")]
    Truncated { source: serde_json::Error },
    #[error("the bundle is not valid JSON: {source}")]
    NotJson { source: serde_json::Error },
    #[error("the bundle JSON has the wrong shape: {source}")]
    Schema { source: serde_json::Error },
    #[error(
        "unknown bundle media type {media_type:?}; expected \"{MEDIA_TYPE_V0_3}\" or a legacy \"application/vnd.dev.sigstore.bundle+json;version=0.X\""
    )]
    UnknownMediaType { media_type: String },
    #[error(
        "unsupported bundle version in media type {media_type:?}: custody reads bundle versions 0.1 to 0.3; upgrade custody"
    )]
    UnsupportedVersion { media_type: String },
    #[error("the bundle has no `{field}`, which is required")]
    MissingField { field: String },
    #[error("bundle field `{field}` is not valid base64: {source}")]
    InvalidBase64 {
        field: String,
        #[source]
        source: Base64Error,
    },
    #[error("bundle field `{field}` is not an int64: {value:?}")]
    InvalidInteger { field: String, value: String },
    #[error("bundle field `{field}` is negative ({value}); log indices, sizes and times cannot be")]
    NegativeInteger { field: String, value: i64 },
    #[error(
        "bundle field `{field}` names unknown hash algorithm {value:?} (expected e.g. \"SHA2_256\")"
    )]
    UnknownHashAlgorithm { field: String, value: String },
    #[error(
        "the bundle's verification material has none of `publicKey`, `x509CertificateChain`, `certificate`"
    )]
    MissingVerificationContent,
    #[error(
        "the bundle's verification material sets more than one of `publicKey`, `x509CertificateChain`, `certificate`"
    )]
    ConflictingVerificationContent,
    #[error("the bundle's certificate chain is empty: expected non-empty certificate chain")]
    EmptyCertificateChain,
    #[error("bundle field `{field}` holds an empty certificate")]
    EmptyCertificate { field: String },
    #[error("{media_type} bundles must use `certificate`, not `x509CertificateChain`")]
    CertificateChainNotAllowed { media_type: String },
    #[error("tlog entry {entry} has no inclusion promise, which v0.1 bundles require")]
    MissingInclusionPromise { entry: usize },
    #[error("tlog entry {entry} has no inclusion proof, which bundles since v0.2 require")]
    MissingInclusionProof { entry: usize },
    #[error(
        "tlog entry {entry}'s inclusion proof has no checkpoint (entry must contain inclusion proof, with checkpoint); fetch a complete bundle from the log"
    )]
    MissingCheckpoint { entry: usize },
    #[error("the bundle has neither `messageSignature` nor `dsseEnvelope`")]
    MissingContent,
    #[error("the bundle has both `messageSignature` and `dsseEnvelope`; exactly one is allowed")]
    ConflictingContent,
    #[error("the bundle's DSSE envelope has {count} signatures; a bundle carries exactly one")]
    DsseSignatureCount { count: usize },
    #[error("the bundle's DSSE envelope is invalid: {source}")]
    Dsse {
        #[source]
        source: DsseError,
    },
}

impl Bundle {
    /// Parses and structurally validates a bundle. See the module docs for what is refused.
    pub fn from_json(bytes: &[u8]) -> Result<Self, BundleError> {
        parse::parse(bytes)
    }

    /// Protobuf-JSON, as sigstore-go/js/python write it: camelCase, enum names, standard
    /// base64, int64 as strings, defaults omitted. The media type is written as stored.
    pub fn to_json(&self) -> String {
        wire::serialize(self)
    }

    /// The same JSON as [`Bundle::to_json`], as a value to embed in another document (no text
    /// built to be parsed again).
    pub fn to_value(&self) -> serde_json::Value {
        wire::to_value(self)
    }

    /// A v0.3 bundle for a signature over an artifact with SHA-256 `digest`, signed by a key
    /// named by `key_hint`. No tlog entries yet: see [`Bundle::with_tlog_entry`].
    pub fn new_message_signature_v03(
        key_hint: String,
        digest: &Sha256Digest,
        signature: Vec<u8>,
    ) -> Self {
        Self::new_v03(
            key_hint,
            BundleContent::MessageSignature {
                message_digest: Some((HashAlgorithm::Sha2_256, digest.as_bytes().to_vec())),
                signature,
            },
        )
    }

    /// A v0.3 bundle around a DSSE envelope (which should carry exactly one signature).
    pub fn new_dsse_v03(key_hint: String, envelope: Envelope) -> Self {
        Self::new_v03(key_hint, BundleContent::Dsse(envelope))
    }

    fn new_v03(key_hint: String, content: BundleContent) -> Self {
        Self {
            media_type: MEDIA_TYPE_V0_3.to_string(),
            version: BundleVersion::V0_3,
            verification_material: VerificationMaterial {
                content: Material::PublicKeyHint(key_hint),
                tlog_entries: Vec::new(),
                rfc3161_timestamps: Vec::new(),
            },
            content,
        }
    }

    /// Adds a transparency log entry.
    pub fn with_tlog_entry(mut self, entry: TransparencyLogEntry) -> Self {
        self.verification_material.tlog_entries.push(entry);
        self
    }
}

#[cfg(test)]
mod structure_tests;
#[cfg(test)]
mod tests;
