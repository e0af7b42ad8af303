//! Identity policy: who must have signed (the certificate's SAN) and which OIDC issuer vouched
//! for them. Matching is exact, or a regular expression that must match the **whole** value:
//! never a substring, prefix or unanchored search.

use std::fmt;

use regex::{Regex, RegexBuilder};

use super::VerifiedCertificate;

/// One expected value.
#[derive(Debug, Clone)]
pub enum IdentityPattern {
    /// Byte-for-byte equality.
    Exact(String),
    /// A regular expression compiled as `^(?:pattern)$`: it must match the whole value.
    Regex(AnchoredRegex),
}

/// A regular expression that only ever matches a whole string.
#[derive(Debug, Clone)]
pub struct AnchoredRegex {
    pattern: String,
    regex: Regex,
}

impl AnchoredRegex {
    /// Compiles `pattern` anchored at both ends. Size-limited: policy text is not trusted to be
    /// cheap.
    pub fn new(pattern: &str) -> Result<Self, IdentityError> {
        let regex = RegexBuilder::new(&format!("^(?:{pattern})$"))
            .size_limit(1 << 20)
            .build()
            .map_err(|source| IdentityError::InvalidRegex {
                pattern: pattern.to_string(),
                source,
            })?;
        Ok(Self {
            pattern: pattern.to_string(),
            regex,
        })
    }

    /// The pattern as the user wrote it.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    pub fn is_full_match(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }
}

impl IdentityPattern {
    pub fn exact(value: impl Into<String>) -> Self {
        Self::Exact(value.into())
    }

    pub fn regex(pattern: &str) -> Result<Self, IdentityError> {
        AnchoredRegex::new(pattern).map(Self::Regex)
    }

    pub fn matches(&self, value: &str) -> bool {
        match self {
            Self::Exact(expected) => value == expected,
            Self::Regex(regex) => regex.is_full_match(value),
        }
    }
}

impl fmt::Display for IdentityPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(value) => f.write_str(value),
            Self::Regex(regex) => write!(f, "pattern ^(?:{})$", regex.as_str()),
        }
    }
}

/// The identity a certificate must carry.
#[derive(Debug, Clone)]
pub struct IdentityMatcher {
    /// Matched against the SAN (email, URI or username).
    pub san: IdentityPattern,
    /// Matched against the OIDC issuer extension (`.1.8`, or `.1.1` on older certificates).
    pub issuer: IdentityPattern,
}

impl IdentityMatcher {
    /// Both exact.
    pub fn exact(san: impl Into<String>, issuer: impl Into<String>) -> Self {
        Self {
            san: IdentityPattern::exact(san),
            issuer: IdentityPattern::exact(issuer),
        }
    }

    /// Checks the SAN, then the issuer. The issuer check is never skipped.
    pub fn check(&self, cert: &VerifiedCertificate) -> Result<(), IdentityError> {
        self.check_values(cert.identity.as_str(), cert.claims.issuer.as_deref())
    }

    /// The same check over bare values (for callers that hold them already).
    pub fn check_values(&self, san: &str, issuer: Option<&str>) -> Result<(), IdentityError> {
        if !self.san.matches(san) {
            return Err(IdentityError::SanMismatch {
                actual: san.to_string(),
                expected: self.san.to_string(),
            });
        }
        let issuer = issuer.ok_or(IdentityError::NoIssuer)?;
        if !self.issuer.matches(issuer) {
            return Err(IdentityError::IssuerMismatch {
                actual: issuer.to_string(),
                expected: self.issuer.to_string(),
            });
        }
        Ok(())
    }
}

/// Why an identity was refused, or a policy could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    #[error("identity {actual} does not match the required {expected}")]
    SanMismatch { actual: String, expected: String },
    #[error("OIDC issuer {actual} does not match the required {expected}")]
    IssuerMismatch { actual: String, expected: String },
    #[error(
        "the signing certificate names no OIDC issuer (extension 1.3.6.1.4.1.57264.1.8 or .1.1), so its identity cannot be checked"
    )]
    NoIssuer,
    #[error("invalid identity regular expression {pattern:?}: {source}")]
    InvalidRegex {
        pattern: String,
        #[source]
        source: regex::Error,
    },
}
