//! RFC 3161 trusted timestamps (SPECS §4.4 step 2): proof from a timestamp authority (TSA) that
//! a signature existed at `genTime`.
//!
//! [`verify_timestamp`] checks, in order:
//! 1. the `TimeStampResp` status is granted and it carries a CMS SignedData `TSTInfo` token;
//! 2. the message imprint is the hash of the **signature bytes** the caller passes
//!    (`messageSignature.signature` or the DSSE `signatures[0].sig`);
//! 3. the signed attributes bind the `TSTInfo` (content-type and message-digest);
//! 4. the token signature verifies with the TSA certificate — embedded in the token, or, when
//!    the token carries none (sigstore-python issue 1482), the one in the trusted root;
//! 5. that certificate validates (EKU timeStamping) to a trusted `timestampAuthorities` entry
//!    whose `validFor` contains `genTime`, at `genTime` (validity ends inclusive).
//!
//! Whether the time falls inside the signing certificate's validity is the caller's check.

use aws_lc_rs::digest;
use chrono::{DateTime, Utc};
use cms::signed_data::SignerIdentifier;
use der::asn1::{ObjectIdentifier as Oid, OctetString};
use der::{Decode, Encode};

use crate::trust_root::TrustedRoot;
use crate::x509::signature::{self, SHA256, SHA384, SHA512, SignatureProblem};
use crate::x509::{Cert, CertError, Purpose, validate_path};

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod tests;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests_mutation;
mod token;

use token::{ATTR_CONTENT_TYPE, ATTR_MESSAGE_DIGEST, TST_INFO};

const SUBJECT_KEY_IDENTIFIER: Oid = Oid::new_unwrap("2.5.29.14");

/// sigstore-python's limit on RFC 3161 timestamps in one bundle.
pub const MAX_TIMESTAMPS: usize = 32;

/// A timestamp whose token verified under a trusted timestamp authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTimestamp {
    /// `genTime`.
    pub time: DateTime<Utc>,
    /// The `uri` of the trusted-root timestamp authority the TSA certificate chains to.
    pub tsa: String,
    /// The TSA policy OID (Sigstore's TSA: 1.3.6.1.4.1.57264.2).
    pub policy: String,
    /// The token's serial number, hex.
    pub serial: String,
}

/// Why a timestamp was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TimestampError {
    #[error("the RFC 3161 timestamp is malformed: {reason}")]
    Malformed { reason: &'static str },
    #[error("the RFC 3161 timestamp is malformed: {what}: {source}")]
    MalformedDer {
        what: &'static str,
        #[source]
        source: der::Error,
    },
    #[error("the timestamp authority did not grant the timestamp (PKIStatus {status})")]
    NotGranted { status: u32 },
    #[error("the timestamp token has {count} signers; exactly one is expected")]
    SignerCount { count: usize },
    #[error(
        "the timestamp uses hash algorithm {oid}; custody accepts SHA-256, SHA-384 and SHA-512"
    )]
    UnsupportedHash { oid: String },
    #[error(
        "the timestamp does not cover this signature: its message imprint is not the hash of the bundle's signature bytes"
    )]
    ImprintMismatch,
    #[error(
        "the timestamp token's signed attributes do not bind its TSTInfo ({attribute} missing or wrong)"
    )]
    UnboundContent { attribute: &'static str },
    #[error(
        "the timestamp names no certificate that could have signed it: none is embedded in the token and no trusted timestamp authority's certificate matches its signer"
    )]
    NoSignerCertificate,
    #[error("the timestamp token's signature does not verify with the certificate of {tsa}")]
    BadSignature { tsa: String },
    #[error(
        "the timestamp token is signed with {algorithm} by a {key} key, which custody does not verify"
    )]
    UnsupportedSignatureAlgorithm {
        algorithm: String,
        key: &'static str,
    },
    #[error("the timestamp authority is not trusted at the timestamp's time: {0}")]
    Untrusted(#[source] CertError),
    #[error("the bundle carries {count} timestamps; at most {max} are accepted")]
    TooMany { count: usize, max: usize },
    #[error("timestamp {second} of the bundle repeats timestamp {first}; duplicates are refused")]
    Duplicate { first: usize, second: usize },
}

/// The bundle-level rule on timestamps: at most `max`, and no two identical.
pub fn check_timestamp_count(timestamps: &[Vec<u8>], max: usize) -> Result<(), TimestampError> {
    if timestamps.len() > max {
        return Err(TimestampError::TooMany {
            count: timestamps.len(),
            max,
        });
    }
    for (second, ts) in timestamps.iter().enumerate() {
        if let Some(first) = timestamps.iter().take(second).position(|t| t == ts) {
            return Err(TimestampError::Duplicate { first, second });
        }
    }
    Ok(())
}

fn hash(algorithm: &Oid, data: &[u8]) -> Result<Vec<u8>, TimestampError> {
    let alg = match *algorithm {
        SHA256 => &digest::SHA256,
        SHA384 => &digest::SHA384,
        SHA512 => &digest::SHA512,
        _ => {
            return Err(TimestampError::UnsupportedHash {
                oid: algorithm.to_string(),
            });
        }
    };
    Ok(digest::digest(alg, data).as_ref().to_vec())
}

/// Verifies one DER `TimeStampResp` (or bare token) over `signature` (see module docs).
pub fn verify_timestamp(
    response_der: &[u8],
    signature: &[u8],
    trusted: &TrustedRoot,
) -> Result<VerifiedTimestamp, TimestampError> {
    let token = token::parse(response_der)?;
    let info = &token.tst_info;
    // RFC 3161 §2.4.2: the imprint is the hash of the datum, here the signature bytes.
    if hash(&info.imprint_algorithm.oid, signature)? != info.imprint {
        return Err(TimestampError::ImprintMismatch);
    }
    // RFC 5652 §5.4 / §11: the signed attributes must bind the content.
    let signer = &token.signer;
    let content_type = TST_INFO.to_der().ok();
    if content_type.is_none() || token::signed_attribute(signer, ATTR_CONTENT_TYPE) != content_type
    {
        return Err(TimestampError::UnboundContent {
            attribute: "content-type",
        });
    }
    let digest = token::signed_attribute(signer, ATTR_MESSAGE_DIGEST)
        .and_then(|der| OctetString::from_der(&der).ok())
        .ok_or(TimestampError::UnboundContent {
            attribute: "message-digest",
        })?;
    if hash(&signer.digest_alg.oid, &token.tst_info_der)? != digest.as_bytes() {
        return Err(TimestampError::UnboundContent {
            attribute: "message-digest",
        });
    }

    let candidates = signer_candidates(&token, trusted);
    let mut failure = None;
    for cert in candidates {
        match signature::verify(
            &cert.spki_der,
            &signer.signature_algorithm,
            Some(signer.digest_alg.oid),
            &token.signed_attrs_der,
            token.signer.signature.as_bytes(),
        ) {
            Ok(()) => {}
            Err(SignatureProblem::Invalid) => {
                failure.get_or_insert(TimestampError::BadSignature {
                    tsa: cert.subject(),
                });
                continue;
            }
            Err(SignatureProblem::Unsupported { algorithm, key }) => {
                failure.get_or_insert(TimestampError::UnsupportedSignatureAlgorithm {
                    algorithm,
                    key,
                });
                continue;
            }
        }
        match validate_path(
            &cert,
            &trusted.timestamp_authorities,
            info.gen_time,
            Purpose::TimeStamping,
        ) {
            Ok(path) => {
                return Ok(VerifiedTimestamp {
                    time: info.gen_time,
                    tsa: path.authority.uri.clone(),
                    policy: info.policy.to_string(),
                    serial: hex::encode(&info.serial),
                });
            }
            Err(e) => failure = Some(TimestampError::Untrusted(e)),
        }
    }
    Err(failure.unwrap_or(TimestampError::NoSignerCertificate))
}

/// Certificates that match the token's SignerIdentifier: embedded ones first, then those of
/// the trusted timestamp authorities (for tokens without certificates).
fn signer_candidates(token: &token::Token, trusted: &TrustedRoot) -> Vec<Cert> {
    let embedded = token.certificates.iter();
    let from_root = trusted
        .timestamp_authorities
        .iter()
        .flat_map(|a| a.cert_chain.iter());
    let mut out: Vec<Cert> = Vec::new();
    for der in embedded.chain(from_root) {
        let Ok(cert) = Cert::parse(der, "timestamp authority certificate") else {
            continue;
        };
        if matches_signer(&cert, &token.signer.sid) && !out.iter().any(|c| c.der == cert.der) {
            out.push(cert);
        }
    }
    out
}

fn matches_signer(cert: &Cert, sid: &SignerIdentifier) -> bool {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(isn) => {
            isn.issuer
                .to_der()
                .is_ok_and(|issuer| issuer == cert.issuer_der)
                && &isn.serial_number == cert.cert.tbs_certificate().serial_number()
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => cert
            .extension(SUBJECT_KEY_IDENTIFIER)
            .ok()
            .flatten()
            .is_some_and(|ext| {
                OctetString::from_der(ext.extn_value.as_bytes())
                    .is_ok_and(|value| value.as_bytes() == ski.0.as_bytes())
            }),
    }
}
