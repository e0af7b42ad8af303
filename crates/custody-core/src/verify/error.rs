//! Why a bundle did not verify: one variant per check, each message naming what failed, the
//! values involved and what to do about it, and a stable short code ([`VerifyError::code`]) for
//! machines (`custody verify --output json`, batch results).

use chrono::{DateTime, Utc};

use super::{TimeSource, VerifiedTime};
use crate::bundle::BundleError;
use crate::digest::Sha256Digest;
use crate::dsse::{DsseError, IN_TOTO_PAYLOAD_TYPE};
use crate::intoto::StatementError;
use crate::keys::{KeyAlgorithm, SignatureError};
use crate::rekor::{BindError, BoundField};
use crate::timestamp::TimestampError;
use crate::tlog::TlogError;
use crate::x509::{CertError, IdentityError, SctError};

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
    #[error(
        "the bundle is signed with a key, not a Fulcio certificate: verify it with --key PUBLIC.pem"
    )]
    KeyBundle,
    #[error("the bundle's message digest is {algorithm}, only SHA2_256 is supported")]
    UnsupportedDigestAlgorithm { algorithm: String },
    #[error(
        "the bundle signs digest {bundle} but the artifact is {artifact} (wrong file for this bundle?)"
    )]
    DigestMismatch {
        bundle: String,
        artifact: Sha256Digest,
    },
    #[error("signature does not verify with {key} ({algorithm}): {source}")]
    Signature {
        key: String,
        algorithm: KeyAlgorithm,
        source: SignatureError,
    },
    #[error(
        "{algorithm} keys do not sign SHA-256 digests: give the artifact's file, not only its digest"
    )]
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
    #[error(
        "the bundle's entries are in {verified} transparency log(s) of the trusted root; the policy requires {required}"
    )]
    TlogThreshold { verified: usize, required: usize },
    #[error("RFC 3161 timestamps: {0}")]
    TimestampLimit(#[source] TimestampError),
    #[error(
        "no trusted time for the signature: {found} verified time source(s), {required} required (a Rekor v1 inclusion promise or an RFC 3161 timestamp; Rekor v2 entries carry no time, so their bundles need a timestamp){}",
        ignored_suffix(.ignored)
    )]
    NotEnoughTimes {
        found: usize,
        required: usize,
        /// Timestamps that did not verify (1-based index in the bundle, reason).
        ignored: Vec<(usize, TimestampError)>,
    },
    #[error(
        "certificate expired before {} (certificate valid until {not_after}, {} at {}): the bundle was signed with a stale certificate",
        .at.source.event(), .at.source.noun(), .at.time
    )]
    CertificateExpired {
        not_after: DateTime<Utc>,
        at: Box<VerifiedTime>,
    },
    #[error(
        "certificate was not yet valid when {} (certificate valid from {not_before}, {} at {}): the time evidence contradicts the certificate",
        .at.source.event(), .at.source.noun(), .at.time
    )]
    CertificateNotYetValid {
        not_before: DateTime<Utc>,
        at: Box<VerifiedTime>,
    },
    #[error(
        "the signing certificate does not verify against the trusted root at {} ({} at that time): {source}",
        .at.time, .at.source.noun()
    )]
    Certificate {
        at: Box<VerifiedTime>,
        #[source]
        source: Box<CertError>,
    },
    #[error(
        "certificate transparency: {0} (a certificate from another Fulcio instance, or a trusted root without its CT logs?)"
    )]
    Sct(#[source] SctError),
    #[error("{source} ({})", identity_hint(.source))]
    Identity {
        #[source]
        source: IdentityError,
    },
}

fn ignored_suffix(ignored: &[(usize, TimestampError)]) -> String {
    ignored
        .iter()
        .map(|(i, e)| format!("; RFC 3161 timestamp {i} did not verify: {e}"))
        .collect()
}

fn identity_hint(error: &IdentityError) -> &'static str {
    match error {
        IdentityError::SanMismatch { expected, .. } if expected.starts_with("pattern ") => {
            "patterns are fully anchored: the whole identity must match"
        }
        IdentityError::SanMismatch { .. } => {
            "use --certificate-identity-regexp for a pattern; patterns are fully anchored"
        }
        IdentityError::IssuerMismatch { .. } => {
            "check --certificate-oidc-issuer, e.g. https://token.actions.githubusercontent.com for GitHub Actions"
        }
        _ => "the certificate cannot satisfy an identity policy",
    }
}

impl TimeSource {
    /// What happened at this time, for messages: "the log entry was made".
    pub fn event(&self) -> &'static str {
        match self {
            Self::Timestamp { .. } => "the timestamp was issued",
            Self::Tlog { .. } => "the log entry was made",
        }
    }

    /// The time's name, for messages: "entry integrated".
    pub fn noun(&self) -> String {
        match self {
            Self::Timestamp { tsa } => format!("timestamp issued by {tsa}"),
            Self::Tlog { log_index, .. } => format!("log entry {log_index} integrated"),
        }
    }
}

impl VerifyError {
    /// True when the failure is the caller's (a usage problem) rather than the evidence's.
    pub fn is_usage(&self) -> bool {
        matches!(self, Self::NeedArtifactBytes { .. })
    }

    /// A stable short code for the kind of failure, e.g. `tlog.inclusion`, `cert.expired`,
    /// `identity.mismatch`. Codes are part of custody's interface: new ones may appear, existing
    /// ones keep their meaning.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Bundle(BundleError::UnknownMediaType { .. })
            | Self::Bundle(BundleError::UnsupportedVersion { .. }) => "bundle.version",
            Self::Bundle(_) => "bundle.malformed",
            Self::CertificateBundle => "material.certificate",
            Self::KeyBundle => "material.key",
            Self::UnsupportedDigestAlgorithm { .. } => "artifact.digest-algorithm",
            Self::DigestMismatch { .. } => "artifact.mismatch",
            Self::Signature { .. } => "signature.invalid",
            Self::NeedArtifactBytes { .. } => "usage.artifact-bytes",
            Self::Dsse(DsseError::ThresholdNotMet { .. }) => "signature.invalid",
            Self::Dsse(_) => "dsse.malformed",
            Self::PayloadType { .. } => "dsse.payload-type",
            Self::Statement(_) => "statement.malformed",
            Self::SubjectMismatch { .. } => "artifact.not-a-subject",
            Self::Tlog(e) => tlog_code(e),
            Self::NoTlogEntry => "tlog.missing",
            Self::TlogThreshold { .. } => "tlog.threshold",
            Self::TimestampLimit(TimestampError::Duplicate { .. }) => "timestamp.duplicate",
            Self::TimestampLimit(_) => "timestamp.limit",
            Self::NotEnoughTimes { ignored, .. } if !ignored.is_empty() => "timestamp.invalid",
            Self::NotEnoughTimes { .. } => "time.missing",
            Self::CertificateExpired { .. } => "cert.expired",
            Self::CertificateNotYetValid { .. } => "cert.not-yet-valid",
            Self::Certificate { source, .. } => cert_code(source),
            Self::Sct(_) => "cert.sct",
            Self::Identity {
                source: IdentityError::IssuerMismatch { .. },
            } => "identity.issuer-mismatch",
            Self::Identity {
                source: IdentityError::NoIssuer,
            } => "identity.no-issuer",
            Self::Identity { .. } => "identity.mismatch",
        }
    }
}

fn tlog_code(e: &TlogError) -> &'static str {
    match e {
        TlogError::TooManyEntries { .. } => "tlog.limit",
        TlogError::Duplicate { .. } => "tlog.duplicate",
        TlogError::UnknownLog { .. } => "tlog.unknown-log",
        TlogError::LogKeyNotValidAt { .. }
        | TlogError::LogKeyNotValidNow { .. }
        | TlogError::LogKeyNeverValid { .. } => "tlog.key-validity",
        TlogError::LogKey { .. } | TlogError::CheckpointKey { .. } => "tlog.key",
        TlogError::Body { .. } | TlogError::KindMismatch { .. } => "tlog.body",
        TlogError::MissingPromise { .. } | TlogError::InvalidPromise { .. } => "tlog.promise",
        TlogError::MissingProof { .. }
        | TlogError::MalformedProof { .. }
        | TlogError::InvalidProof { .. }
        | TlogError::IndexMismatch { .. } => "tlog.inclusion",
        TlogError::InvalidCheckpoint { .. }
        | TlogError::CheckpointOrigin { .. }
        | TlogError::CheckpointMismatch { .. } => "tlog.checkpoint",
        TlogError::Witnesses { .. } => "tlog.witness",
        TlogError::Bind {
            source:
                BindError::DigestMismatch {
                    field: BoundField::Artifact,
                    ..
                },
            ..
        } => "artifact.mismatch",
        TlogError::Bind { .. } => "tlog.binding",
    }
}

fn cert_code(e: &CertError) -> &'static str {
    match e {
        CertError::Expired { .. } => "cert.expired",
        CertError::NotYetValid { .. } => "cert.not-yet-valid",
        CertError::RootInBundle { .. } => "cert.root-in-bundle",
        CertError::NoAuthorityValidAt { .. }
        | CertError::UntrustedIssuer { .. }
        | CertError::IssuerKeyMismatch { .. }
        | CertError::BadSignature { .. } => "cert.untrusted",
        CertError::Malformed { .. }
        | CertError::MalformedStructure { .. }
        | CertError::UnsupportedVersion { .. }
        | CertError::DuplicateExtension { .. }
        | CertError::MalformedExtension { .. } => "cert.malformed",
        _ => "cert.profile",
    }
}
