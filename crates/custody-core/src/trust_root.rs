//! Sigstore trust material: `trusted_root.json` (`dev.sigstore.trustroot.v1.TrustedRoot`), and
//! enough of `SigningConfig` v0.2 and `ClientTrustConfig` v0.1 to load them (SPECS §4.2).
//!
//! Parsing checks shape, media types, base64, that every public key is a DER SPKI and that
//! every certificate is DER X.509, so garbage is refused at load time. It does not check chains,
//! signatures or validity against the clock: that is verification.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::bundle::HashAlgorithm;
use crate::encoding::Base64Error;

mod signing_config;
mod wire;

pub use signing_config::{
    CLIENT_TRUST_CONFIG_V0_1, ClientTrustConfig, SIGNING_CONFIG_V0_2, Service,
    ServiceConfiguration, ServiceSelector, SigningConfig,
};

/// Legacy media type, still used by the public-good root sigstore-python ships.
pub const TRUSTED_ROOT_V0_1_LEGACY: &str =
    "application/vnd.dev.sigstore.trustedroot+json;version=0.1";
pub const TRUSTED_ROOT_V0_1: &str = "application/vnd.dev.sigstore.trustedroot.v0.1+json";
/// Current media type (adds `checkpointKeyId` and `operator`).
pub const TRUSTED_ROOT_V0_2: &str = "application/vnd.dev.sigstore.trustedroot.v0.2+json";

/// A parsed trusted root. Lists may overlap in time and include retired instances: keep old
/// instances to verify old signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedRoot {
    pub media_type: String,
    /// Rekor (transparency log) instances.
    pub tlogs: Vec<TransparencyLogInstance>,
    /// Fulcio (certificate authority) instances.
    pub certificate_authorities: Vec<CertificateAuthority>,
    /// Certificate Transparency log instances.
    pub ctlogs: Vec<TransparencyLogInstance>,
    /// RFC 3161 timestamp authorities.
    pub timestamp_authorities: Vec<CertificateAuthority>,
}

/// A transparency log (Rekor or CT) and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransparencyLogInstance {
    pub base_url: String,
    pub hash_algorithm: HashAlgorithm,
    pub public_key: LogPublicKey,
    /// Rekor v1 and CT: SHA-256 of the DER SPKI. Rekor v2: SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key).
    pub log_id: Vec<u8>,
    /// Signed-note key id of the checkpoint key (v0.2; 4 bytes).
    pub checkpoint_key_id: Option<Vec<u8>>,
    /// Scheme-less operator URI; entries from one operator count once toward thresholds.
    pub operator: Option<String>,
}

/// A log's public key and when it may be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPublicKey {
    /// DER SubjectPublicKeyInfo (checked to parse as one); a DER PKCS#1 `RSAPublicKey` when
    /// `key_details` is one of the deprecated `PKCS1_*` values.
    pub raw_bytes: Option<Vec<u8>>,
    /// `PublicKeyDetails` enum name, e.g. `PKIX_ECDSA_P256_SHA_256`, `PKIX_ED25519`.
    pub key_details: String,
    pub valid_for: ValidityPeriod,
}

/// A certificate authority (Fulcio) or timestamp authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateAuthority {
    pub subject: DistinguishedName,
    pub uri: String,
    /// DER certificates: leaf/intermediate first, trust anchor last. Never empty.
    pub cert_chain: Vec<Vec<u8>>,
    pub valid_for: ValidityPeriod,
    pub operator: Option<String>,
}

/// The `subject` of a certificate authority entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DistinguishedName {
    pub organization: String,
    pub common_name: String,
}

/// A closed time interval (`dev.sigstore.common.v1.TimeRange`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidityPeriod {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<DateTime<Utc>>,
    /// `None`: still valid (open-ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<Utc>>,
}

impl ValidityPeriod {
    /// Whether `t` lies in `[start, end]`, inclusive at both ends (SPECS §4.2).
    ///
    /// `start` is REQUIRED by protobuf-specs; a period without one contains no time at all, so a
    /// trust root entry that omits it is never used (fail closed, as sigstore-conformance
    /// `trust-root-tlog-missing-validity-start_fail` expects).
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        match self.start {
            None => false,
            Some(start) => start <= t && self.end.is_none_or(|end| t <= end),
        }
    }
}

impl std::fmt::Display for ValidityPeriod {
    /// `2019-01-01T00:00:00Z to 2020-01-01T00:00:00Z`, `2025-04-16T00:00:00Z onwards` or
    /// `with no start (never valid)`: the window an error names.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |t: &DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        match (&self.start, &self.end) {
            (None, _) => f.write_str("with no start (never valid)"),
            (Some(start), None) => write!(f, "{} onwards", show(start)),
            (Some(start), Some(end)) => write!(f, "{} to {}", show(start), show(end)),
        }
    }
}

/// Why trust material was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustRootError {
    #[error("the {document} is truncated: {source}")]
    Truncated {
        document: &'static str,
        source: serde_json::Error,
    },
    #[error("the {document} is not valid JSON: {source}")]
    NotJson {
        document: &'static str,
        source: serde_json::Error,
    },
    #[error("the {document} has the wrong shape: {source}")]
    Schema {
        document: &'static str,
        source: serde_json::Error,
    },
    #[error("unsupported {document} media type {media_type:?}; expected {expected}")]
    UnsupportedMediaType {
        document: &'static str,
        media_type: String,
        expected: &'static str,
    },
    #[error("the trust material has no `{field}`, which is required")]
    MissingField { field: String },
    #[error("trust material field `{field}` is not valid base64: {source}")]
    InvalidBase64 {
        field: String,
        #[source]
        source: Base64Error,
    },
    #[error(
        "trust material field `{field}` names unknown hash algorithm {value:?} (expected e.g. \"SHA2_256\")"
    )]
    UnknownHashAlgorithm { field: String, value: String },
    #[error("`{field}` is not a DER SubjectPublicKeyInfo: {source}")]
    InvalidPublicKey {
        field: String,
        #[source]
        source: der::Error,
    },
    #[error("certificate authority {authority} is missing a certificate (its certChain is empty)")]
    MissingCertificate { authority: String },
    #[error(
        "certificate {index} of certificate authority {authority} is not a DER X.509 certificate: {source}"
    )]
    InvalidCertificate {
        authority: String,
        index: usize,
        #[source]
        source: der::Error,
    },
}

impl TrustRootError {
    pub(crate) fn json(document: &'static str, source: serde_json::Error) -> Self {
        use serde_json::error::Category;
        match source.classify() {
            Category::Eof => Self::Truncated { document, source },
            Category::Syntax | Category::Io => Self::NotJson { document, source },
            Category::Data => Self::Schema { document, source },
        }
    }
}

impl TrustedRoot {
    /// Parses and checks a `trusted_root.json`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, TrustRootError> {
        wire::parse_trusted_root(bytes)
    }

    /// Protobuf-JSON (camelCase, base64, enum names, RFC 3339 times); media type as stored.
    pub fn to_json(&self) -> String {
        wire::serialize_trusted_root(self)
    }

    /// The first Rekor instance with this log id.
    pub fn tlog_by_log_id(&self, log_id: &[u8]) -> Option<&TransparencyLogInstance> {
        self.tlogs.iter().find(|t| t.log_id == log_id)
    }

    /// The first CT log instance with this log id.
    pub fn ctlog_by_log_id(&self, log_id: &[u8]) -> Option<&TransparencyLogInstance> {
        self.ctlogs.iter().find(|t| t.log_id == log_id)
    }
}

impl CertificateAuthority {
    /// Parses one certificate authority object (as found in `certificateAuthorities`).
    pub fn from_json(bytes: &[u8]) -> Result<Self, TrustRootError> {
        wire::parse_certificate_authority(bytes)
    }
}

#[cfg(test)]
mod tests;
