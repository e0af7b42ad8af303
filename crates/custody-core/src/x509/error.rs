//! Why a certificate or certificate chain was refused.

use chrono::{DateTime, Utc};

/// A certificate that did not verify, or that does not follow the profile custody requires.
///
/// Every message names the certificate (by subject, or "the signing certificate" for a Fulcio
/// leaf, whose subject is empty) and says what was expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    #[error("the {what} is not a DER X.509 certificate: {source}")]
    Malformed {
        what: String,
        #[source]
        source: der::Error,
    },
    #[error("the {what} is not a DER X.509 certificate: {reason}")]
    MalformedStructure { what: String, reason: &'static str },
    #[error("invalid X.509 certificate {subject}: version {version}, only version 3 is accepted")]
    UnsupportedVersion { subject: String, version: u8 },
    #[error(
        "invalid X.509 certificate {subject}: extension {oid} appears more than once (RFC 5280 §4.2)"
    )]
    DuplicateExtension { subject: String, oid: String },
    #[error("invalid X.509 certificate {subject}: extension {oid} is malformed: {source}")]
    MalformedExtension {
        subject: String,
        oid: String,
        #[source]
        source: der::Error,
    },
    #[error(
        "certificate {subject} has critical extension {oid}, which custody does not understand (RFC 5280 §4.2 says refuse it)"
    )]
    UnhandledCriticalExtension { subject: String, oid: String },
    #[error(
        "invalid X.509 certificate {subject}: non-critical BasicConstraints in a CA (RFC 5280 §4.2.1.9 requires critical)"
    )]
    NonCriticalBasicConstraints { subject: String },
    #[error("invalid X.509 certificate {subject}: missing KeyUsage")]
    MissingKeyUsage { subject: String },
    #[error(
        "invalid X.509 certificate {subject}: inconsistent CA state KeyUsage.keyCertSign={key_cert_sign}, BasicConstraints.ca={ca}"
    )]
    InconsistentCaState {
        subject: String,
        key_cert_sign: bool,
        ca: bool,
    },
    #[error(
        "certificate {subject} is not yet valid at the signing time (not before {not_before}, signed at {at})"
    )]
    NotYetValid {
        subject: String,
        not_before: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    #[error(
        "certificate {subject} expired before the signing time (not after {not_after}, signed at {at})"
    )]
    Expired {
        subject: String,
        not_after: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    #[error(
        "no {authorities} in the trusted root is valid at {at} (check the trusted root's validFor ranges)"
    )]
    NoAuthorityValidAt {
        authorities: &'static str,
        at: DateTime<Utc>,
    },
    #[error(
        "certificate was not issued by any {authorities} in the trusted root (issuer {issuer})"
    )]
    UntrustedIssuer {
        authorities: &'static str,
        issuer: String,
    },
    #[error(
        "certificate was not issued by any {authorities} in the trusted root: one named {issuer} is trusted, but its key did not sign this certificate (another instance, such as staging instead of production, or a forgery)"
    )]
    IssuerKeyMismatch {
        authorities: &'static str,
        issuer: String,
    },
    #[error(
        "the signature on certificate {subject} does not verify with the key of its issuer {issuer}"
    )]
    BadSignature { subject: String, issuer: String },
    #[error(
        "certificate {subject} is signed with {algorithm} by a {key} key, which custody does not verify"
    )]
    UnsupportedSignatureAlgorithm {
        subject: String,
        algorithm: String,
        key: &'static str,
    },
    #[error(
        "invalid X.509 certificate {subject}: the signature algorithm inside and outside the signed part differ"
    )]
    SignatureAlgorithmMismatch { subject: String },
    #[error("certificate {subject} issued another certificate but is not a CA (BasicConstraints)")]
    IssuerNotCa { subject: String },
    #[error("certificate {subject} may not issue certificates: its KeyUsage lacks keyCertSign")]
    IssuerWithoutKeyCertSign { subject: String },
    #[error(
        "certificate {subject} allows {path_len} intermediate CA(s) below it, but the chain has {below}"
    )]
    PathLengthExceeded {
        subject: String,
        path_len: u8,
        below: usize,
    },
    #[error("the {what} is a CA certificate; a signing certificate must not be a CA")]
    LeafIsCa { what: &'static str },
    #[error("the {what} may not make signatures: its KeyUsage lacks digitalSignature")]
    LeafWithoutDigitalSignature { what: &'static str },
    #[error("certificate {subject} is not valid for {purpose}: its ExtendedKeyUsage lacks it")]
    WrongExtendedKeyUsage {
        subject: String,
        purpose: &'static str,
    },
    #[error(
        "the bundle's certificate chain contains a root (self-signed) certificate {subject}: signers must not include roots, trust comes only from the trusted root"
    )]
    RootInBundle { subject: String },
    #[error(
        "the signing certificate's public key is not usable by custody ({source}); Fulcio keys custody verifies are ECDSA P-256/P-384, Ed25519 and RSA"
    )]
    UnsupportedLeafKey {
        #[source]
        source: crate::keys::KeyError,
    },
    #[error(
        "the signing certificate has {count} subject alternative names; a Fulcio certificate has exactly one"
    )]
    SanCount { count: usize },
    #[error(
        "the signing certificate's subject alternative name is a {kind}; Fulcio issues an email, a URI or an otherName username"
    )]
    UnsupportedSan { kind: &'static str },
    #[error("the signing certificate's Fulcio extension {oid} ({name}) is not {expected}")]
    MalformedFulcioExtension {
        oid: String,
        name: &'static str,
        expected: &'static str,
    },
    #[error(
        "the signing certificate names two different OIDC issuers: {v1:?} (extension 1.3.6.1.4.1.57264.1.1) and {v2:?} (1.3.6.1.4.1.57264.1.8); refusing an ambiguous identity"
    )]
    IssuerExtensionsDisagree { v1: String, v2: String },
}
