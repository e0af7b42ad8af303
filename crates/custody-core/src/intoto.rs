//! in-toto Attestation Framework: the Statement layer (v1, and legacy v0.1 for reading) and
//! ResourceDescriptors, plus the typed SLSA Provenance v1 predicate in [`slsa`].
//!
//! Spec: in-toto/attestation `spec/v1/{statement,resource_descriptor,digest_set}.md` (SPECS §2.1).
//! A Statement should only ever be parsed from a [`VerifiedPayload`]'s bytes; use
//! [`Statement::from_verified_payload`], which also checks the DSSE payload type.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Sha256Digest;
use crate::dsse::{IN_TOTO_PAYLOAD_TYPE, VerifiedPayload};
use crate::encoding::{base64_decode_any, base64_encode};

pub mod slsa;

pub use slsa::SLSA_PROVENANCE_V1;

/// `_type` of an in-toto Statement v1.
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
/// `_type` of the legacy Statement v0.1 (still emitted by `cosign attest`); read-only.
pub const STATEMENT_V0_1: &str = "https://in-toto.io/Statement/v0.1";

/// Which Statement layer a document declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementType {
    /// `https://in-toto.io/Statement/v1`
    V1,
    /// `https://in-toto.io/Statement/v0.1` (legacy; parsed, never produced)
    V0_1,
}

impl StatementType {
    /// The `_type` URI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => STATEMENT_V1,
            Self::V0_1 => STATEMENT_V0_1,
        }
    }
}

/// An in-toto ResourceDescriptor. At least one of `uri`, `digest`, `content` must be set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceDescriptor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// DigestSet: algorithm → lowercase hex.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub digest: BTreeMap<String, String>,
    /// Raw content (base64 in JSON).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "content_b64")]
    pub content: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

/// An in-toto Statement: what was attested (`subject`) and the claim (`predicate`).
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub type_: StatementType,
    pub subject: Vec<ResourceDescriptor>,
    pub predicate_type: String,
    /// `Value::Null` when the predicate is unset (the spec treats unset as empty).
    pub predicate: serde_json::Value,
}

/// How strictly DigestSet values are checked. Default and only safe choice: [`Strict`](Self::Strict).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DigestCheck {
    /// Known algorithms must be lowercase hex of the right length (in-toto Go validator).
    #[default]
    Strict,
    /// Only require non-empty values. For reading documentation examples whose digests are
    /// placeholders such as `"4faeb1b2..."`; never for anything you will match artifacts against.
    ShapeOnly,
}

/// Why a Statement or ResourceDescriptor was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatementError {
    #[error("the in-toto statement is truncated: {source}")]
    Truncated { source: serde_json::Error },
    #[error("the in-toto statement is not JSON: {source}")]
    NotJson { source: serde_json::Error },
    #[error("the in-toto statement has the wrong shape: {source}")]
    Schema { source: serde_json::Error },
    #[error("the in-toto statement has no `_type`; expected \"{STATEMENT_V1}\"")]
    MissingType,
    #[error("unknown in-toto statement `_type` {found:?}; expected \"{STATEMENT_V1}\"")]
    UnknownType { found: String },
    #[error("the in-toto statement has no subject; it must name at least one artifact by digest")]
    MissingSubject,
    #[error("subject[{index}] has no digest; in-toto subjects are matched by digest only")]
    SubjectWithoutDigest { index: usize },
    #[error("{location} has none of `uri`, `digest`, `content`; a resource descriptor needs one")]
    EmptyResourceDescriptor { location: String },
    #[error("{location}.digest[{algorithm:?}] is empty")]
    EmptyDigestValue { location: String, algorithm: String },
    #[error("{location}.digest[{algorithm:?}] is not lowercase hex: {value:?}")]
    DigestNotLowercaseHex {
        location: String,
        algorithm: String,
        value: String,
    },
    #[error(
        "{location}.digest[{algorithm:?}] has {found} hex characters, {algorithm} needs {expected}"
    )]
    DigestLength {
        location: String,
        algorithm: String,
        expected: usize,
        found: usize,
    },
    #[error("the in-toto statement has an empty `predicateType`")]
    MissingPredicateType,
    #[error(
        "the DSSE payload type is {found:?}, not \"{IN_TOTO_PAYLOAD_TYPE}\"; this is not an in-toto attestation"
    )]
    WrongPayloadType { found: String },
}

impl StatementError {
    fn from_json(source: serde_json::Error) -> Self {
        use serde_json::error::Category;
        match source.classify() {
            Category::Eof => Self::Truncated { source },
            Category::Syntax | Category::Io => Self::NotJson { source },
            Category::Data => Self::Schema { source },
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatementWire {
    #[serde(rename = "_type")]
    type_: Option<String>,
    #[serde(default)]
    subject: Option<Vec<ResourceDescriptor>>,
    #[serde(default)]
    predicate_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    predicate: Option<serde_json::Value>,
}

impl Statement {
    /// A v1 Statement. Check it with [`Statement::validate`] if the inputs are untrusted.
    pub fn new_v1(
        subject: Vec<ResourceDescriptor>,
        predicate_type: impl Into<String>,
        predicate: serde_json::Value,
    ) -> Self {
        Self {
            type_: StatementType::V1,
            subject,
            predicate_type: predicate_type.into(),
            predicate,
        }
    }

    /// Parses and validates a Statement with strict digest checks.
    pub fn from_json(bytes: &[u8]) -> Result<Self, StatementError> {
        Self::from_json_with(bytes, DigestCheck::Strict)
    }

    /// Parses a Statement out of a verified DSSE payload, refusing other payload types.
    pub fn from_verified_payload(payload: &VerifiedPayload) -> Result<Self, StatementError> {
        if payload.payload_type != IN_TOTO_PAYLOAD_TYPE {
            return Err(StatementError::WrongPayloadType {
                found: payload.payload_type.clone(),
            });
        }
        Self::from_json(&payload.payload)
    }

    /// Parses and validates a Statement; see [`DigestCheck`].
    pub fn from_json_with(bytes: &[u8], check: DigestCheck) -> Result<Self, StatementError> {
        let wire: StatementWire =
            serde_json::from_slice(bytes).map_err(StatementError::from_json)?;
        let type_ = match wire.type_.as_deref() {
            None => return Err(StatementError::MissingType),
            Some(STATEMENT_V1) => StatementType::V1,
            Some(STATEMENT_V0_1) => StatementType::V0_1,
            Some(other) => {
                return Err(StatementError::UnknownType {
                    found: other.to_string(),
                });
            }
        };
        let statement = Self {
            type_,
            subject: wire.subject.unwrap_or_default(),
            predicate_type: wire.predicate_type.unwrap_or_default(),
            predicate: wire.predicate.unwrap_or(serde_json::Value::Null),
        };
        statement.validate_with(check)?;
        Ok(statement)
    }

    /// Statement v1 rules: ≥1 subject, each with a valid non-empty DigestSet; non-empty
    /// predicateType.
    pub fn validate(&self) -> Result<(), StatementError> {
        self.validate_with(DigestCheck::Strict)
    }

    fn validate_with(&self, check: DigestCheck) -> Result<(), StatementError> {
        if self.subject.is_empty() {
            return Err(StatementError::MissingSubject);
        }
        for (index, subject) in self.subject.iter().enumerate() {
            if subject.digest.is_empty() {
                return Err(StatementError::SubjectWithoutDigest { index });
            }
            subject.validate_at(&format!("subject[{index}]"), check)?;
        }
        if self.predicate_type.is_empty() {
            return Err(StatementError::MissingPredicateType);
        }
        Ok(())
    }

    /// Compact JSON with `_type`, `subject`, `predicateType`, `predicate` (omitted when null).
    pub fn to_json_bytes(&self) -> Vec<u8> {
        let wire = StatementWire {
            type_: Some(self.type_.as_str().to_string()),
            subject: Some(self.subject.clone()),
            predicate_type: Some(self.predicate_type.clone()),
            predicate: (!self.predicate.is_null()).then(|| self.predicate.clone()),
        };
        // Serializing strings, maps and JSON values cannot fail.
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    /// True if some subject's `sha256` digest equals `digest`. Matching is by digest only.
    pub fn subject_matches_sha256(&self, digest: &Sha256Digest) -> bool {
        let want = digest.hex();
        self.subject
            .iter()
            .any(|s| s.digest.get("sha256").is_some_and(|v| *v == want))
    }
}

impl ResourceDescriptor {
    /// Parses and validates one ResourceDescriptor (strict digest checks).
    pub fn from_json(bytes: &[u8]) -> Result<Self, StatementError> {
        Self::from_json_with(bytes, DigestCheck::Strict)
    }

    /// Parses and validates one ResourceDescriptor; see [`DigestCheck`].
    pub fn from_json_with(bytes: &[u8], check: DigestCheck) -> Result<Self, StatementError> {
        let rd: Self = serde_json::from_slice(bytes).map_err(StatementError::from_json)?;
        rd.validate_at("resource descriptor", check)?;
        Ok(rd)
    }

    /// A descriptor naming an artifact by its SHA-256.
    pub fn from_sha256(name: impl Into<String>, digest: &Sha256Digest) -> Self {
        let mut set = BTreeMap::new();
        set.insert("sha256".to_string(), digest.hex());
        Self {
            name: Some(name.into()),
            digest: set,
            ..Self::default()
        }
    }

    /// At least one of uri/digest/content, and a well-formed DigestSet.
    pub(crate) fn validate_at(
        &self,
        location: &str,
        check: DigestCheck,
    ) -> Result<(), StatementError> {
        if self.uri.is_none() && self.digest.is_empty() && self.content.is_none() {
            return Err(StatementError::EmptyResourceDescriptor {
                location: location.to_string(),
            });
        }
        for (algorithm, value) in &self.digest {
            check_digest_value(location, algorithm, value, check)?;
        }
        Ok(())
    }
}

/// Hex length of fixed-size DigestSet algorithms (in-toto digest_set.md, Go validator).
fn expected_hex_len(algorithm: &str) -> Option<&'static [usize]> {
    Some(match algorithm {
        "md5" => &[32],
        "sha1" | "ripemd160" => &[40],
        "sha224" | "sha512_224" | "sha3_224" => &[56],
        "sha256" | "sha512_256" | "sha3_256" | "sm3" => &[64],
        "sha384" | "sha3_384" => &[96],
        "sha512" | "sha3_512" => &[128],
        // Git object ids: SHA-1 or SHA-256 object format.
        "gitCommit" | "gitTree" | "gitBlob" | "gitTag" => &[40, 64],
        _ => return None,
    })
}

/// Standard variable-length algorithms: lowercase hex, any even length.
fn is_variable_hex_algorithm(algorithm: &str) -> bool {
    matches!(
        algorithm,
        "shake128" | "shake256" | "blake2b" | "blake2s" | "gost"
    )
}

fn check_digest_value(
    location: &str,
    algorithm: &str,
    value: &str,
    check: DigestCheck,
) -> Result<(), StatementError> {
    if value.is_empty() {
        return Err(StatementError::EmptyDigestValue {
            location: location.to_string(),
            algorithm: algorithm.to_string(),
        });
    }
    if check == DigestCheck::ShapeOnly {
        return Ok(());
    }
    let lengths = expected_hex_len(algorithm);
    if lengths.is_none() && !is_variable_hex_algorithm(algorithm) {
        return Ok(()); // unknown algorithms are ignored by consumers (digest_set.md)
    }
    let lower_hex = value
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !lower_hex || value.len() % 2 != 0 {
        return Err(StatementError::DigestNotLowercaseHex {
            location: location.to_string(),
            algorithm: algorithm.to_string(),
            value: value.chars().take(80).collect(),
        });
    }
    match lengths {
        Some(lens) if !lens.contains(&value.len()) => Err(StatementError::DigestLength {
            location: location.to_string(),
            algorithm: algorithm.to_string(),
            expected: lens[0],
            found: value.len(),
        }),
        _ => Ok(()),
    }
}

/// `null` deserializes as the type's default ("unset, null and empty are equivalent").
pub(crate) fn null_as_default<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(de)?.unwrap_or_default())
}

mod content_b64 {
    use super::{base64_decode_any, base64_encode};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(bytes) => s.serialize_str(&base64_encode(bytes)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => base64_decode_any(&text)
                .map(Some)
                .map_err(|e| serde::de::Error::custom(format!("`content` is not base64: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests;
