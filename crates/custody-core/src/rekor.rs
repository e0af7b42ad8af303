//! Rekor entry bodies: the exact bytes a transparency log hashes into a leaf (SPECS §5.1, §5.4).
//!
//! * [`RekorBody::parse`] reads a `canonicalizedBody` of the kinds Sigstore bundles carry:
//!   `hashedrekord` 0.0.1, `dsse` 0.0.1 and `intoto` 0.0.2 (Rekor v1, OpenAPI JSON made
//!   canonical with RFC 8785), and `hashedrekord` 0.0.2 and `dsse` 0.0.2 (Rekor v2 /
//!   rekor-tiles, protobuf-JSON made canonical with RFC 8785). A body that is not already in
//!   canonical form is refused, so no two JSON parsers can read different values from the bytes
//!   the log signed.
//! * [`hashed_rekord_v002`] and [`dsse_v002`] build the body bytes rekor-tiles logs for a
//!   request, byte for byte.
//! * [`request`]: the Rekor v2 write request (`CreateEntryRequest`), built by clients and
//!   parsed, verified and turned into a body by the log: one module for both sides.
//! * [`bind`] checks that a body describes this bundle (SPECS §4.4 step 3): the same
//!   signature, the same key or certificate, the same digest.

use crate::bundle::HashAlgorithm;
use crate::encoding::Base64Error;
use crate::keys::{KeyError, PublicKey};

mod bind;
mod build;
pub mod request;
mod v1;
mod v2;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

pub use bind::{BindError, BoundField, Signer, bind};
pub use build::{BuildError, dsse_v002, hashed_rekord_v002};

/// A parsed Rekor entry body (not verified: it says what the log recorded).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RekorBody {
    /// `hashedrekord` 0.0.1: a signature over an artifact digest.
    HashedRekordV001(HashedRekord),
    /// `dsse` 0.0.1: a DSSE envelope, recorded by payload hash and signatures.
    DsseV001(Dsse),
    /// `intoto` 0.0.2: a DSSE envelope with in-toto payload (double base64 in the body).
    IntotoV002(Intoto),
    /// `hashedrekord` 0.0.2 (Rekor v2); over a DSSE envelope it records SHA-256(PAE).
    HashedRekordV002(HashedRekord),
    /// `dsse` 0.0.2 (Rekor v2, deprecated upstream in favour of hashedrekord over PAE).
    DsseV002(Dsse),
}

impl RekorBody {
    /// Parses body bytes; see the module documentation.
    pub fn parse(body: &[u8]) -> Result<Self, BodyError> {
        if body.is_empty() {
            return Err(BodyError::Empty);
        }
        if !crate::jcs::is_canonical(body) {
            return Err(BodyError::NotCanonical);
        }
        let header: Header = serde_json::from_slice(body).map_err(|source| BodyError::Schema {
            kind: String::new(),
            version: String::new(),
            source,
        })?;
        let schema = |source| BodyError::Schema {
            kind: header.kind.clone(),
            version: header.api_version.clone(),
            source,
        };
        match (header.kind.as_str(), header.api_version.as_str()) {
            ("hashedrekord", "0.0.1") => {
                v1::hashed_rekord(serde_json::from_value(header.spec).map_err(schema)?)
                    .map(Self::HashedRekordV001)
            }
            ("dsse", "0.0.1") => {
                v1::dsse(serde_json::from_value(header.spec).map_err(schema)?).map(Self::DsseV001)
            }
            ("intoto", "0.0.2") => v1::intoto(serde_json::from_value(header.spec).map_err(schema)?)
                .map(Self::IntotoV002),
            ("hashedrekord", "0.0.2") => {
                v2::hashed_rekord(serde_json::from_value(header.spec).map_err(schema)?)
                    .map(Self::HashedRekordV002)
            }
            ("dsse", "0.0.2") => {
                v2::dsse(serde_json::from_value(header.spec).map_err(schema)?).map(Self::DsseV002)
            }
            _ => Err(BodyError::UnsupportedKind {
                kind: header.kind,
                version: header.api_version,
            }),
        }
    }

    /// The entry kind, e.g. `hashedrekord`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::HashedRekordV001(_) | Self::HashedRekordV002(_) => "hashedrekord",
            Self::DsseV001(_) | Self::DsseV002(_) => "dsse",
            Self::IntotoV002(_) => "intoto",
        }
    }

    /// The entry kind's version, e.g. `0.0.1`.
    pub fn version(&self) -> &'static str {
        match self {
            Self::HashedRekordV001(_) | Self::DsseV001(_) => "0.0.1",
            Self::IntotoV002(_) | Self::HashedRekordV002(_) | Self::DsseV002(_) => "0.0.2",
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    api_version: String,
    kind: String,
    spec: serde_json::Value,
}

/// A digest the log recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedDigest {
    pub algorithm: HashAlgorithm,
    pub value: Vec<u8>,
}

/// The key material a log entry names as the signer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoggedVerifier {
    /// DER SubjectPublicKeyInfo.
    PublicKey(Vec<u8>),
    /// DER X.509 certificate.
    Certificate(Vec<u8>),
}

impl LoggedVerifier {
    /// The public key inside: the SPKI itself, or the certificate's subject public key.
    pub fn public_key(&self) -> Result<PublicKey, BodyError> {
        match self {
            Self::PublicKey(spki) => PublicKey::from_spki_der(spki).map_err(BodyError::Key),
            Self::Certificate(der) => {
                use der::{Decode as _, Encode as _};
                let cert = x509_cert::Certificate::from_der(der)
                    .map_err(|source| BodyError::Certificate { source })?;
                let spki = cert
                    .tbs_certificate()
                    .subject_public_key_info()
                    .to_der()
                    .map_err(|source| BodyError::Certificate { source })?;
                PublicKey::from_spki_der(&spki).map_err(BodyError::Key)
            }
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            Self::PublicKey(_) => "public key",
            Self::Certificate(_) => "certificate",
        }
    }
}

/// One signature the log recorded, with the key material that verifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedSignature {
    pub signature: Vec<u8>,
    pub verifier: LoggedVerifier,
    /// Rekor v2 only: the `PublicKeyDetails` name, e.g. `PKIX_ECDSA_P256_SHA_256`.
    pub key_details: Option<String>,
}

/// `hashedrekord`: a digest and one signature over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashedRekord {
    pub digest: LoggedDigest,
    pub signature: LoggedSignature,
}

/// `dsse`: the payload hash and the envelope's signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dsse {
    pub payload_hash: LoggedDigest,
    /// Rekor v1 only: hash of the submitted envelope JSON text (not recomputable, not checked).
    pub envelope_hash: Option<LoggedDigest>,
    pub signatures: Vec<LoggedSignature>,
}

/// `intoto` 0.0.2: the envelope as Rekor stored it (payload and signatures base64 twice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intoto {
    pub payload_type: String,
    /// The decoded DSSE payload, when the log kept it.
    pub payload: Option<Vec<u8>>,
    pub payload_hash: LoggedDigest,
    /// Hash of the envelope as Rekor serialized it (not recomputable, not checked).
    pub envelope_hash: Option<LoggedDigest>,
    pub signatures: Vec<LoggedSignature>,
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    #[error("the log entry has no canonicalizedBody (re-fetch the entry from the log)")]
    Empty,
    #[error("the log entry body is not canonical (RFC 8785) JSON, so it is not what Rekor logs")]
    NotCanonical,
    #[error("custody does not read Rekor entries of kind {kind:?} version {version:?}")]
    UnsupportedKind { kind: String, version: String },
    #[error("the {kind} {version} log entry body has the wrong shape: {source}")]
    Schema {
        kind: String,
        version: String,
        source: serde_json::Error,
    },
    #[error("log entry body field `{field}` is not valid base64: {source}")]
    Base64 {
        field: &'static str,
        source: Base64Error,
    },
    #[error(
        "log entry body field `{field}` is not base64 of base64 text, as intoto 0.0.2 entries store the envelope's strings"
    )]
    NotDoubleBase64 { field: &'static str },
    #[error("log entry body field `{field}` is not lowercase hex")]
    Hex { field: &'static str },
    #[error("log entry body field `{field}` names unknown hash algorithm {value:?}")]
    HashAlgorithm { field: &'static str, value: String },
    #[error("log entry body field `{field}` is not a PEM public key or certificate")]
    Pem { field: &'static str },
    #[error("log entry body field `{field}` holds neither a public key nor a certificate")]
    MissingVerifier { field: &'static str },
    #[error("the log entry names a key custody cannot use: {0}")]
    Key(KeyError),
    #[error("the log entry's certificate is not DER X.509: {source}")]
    Certificate { source: der::Error },
}
