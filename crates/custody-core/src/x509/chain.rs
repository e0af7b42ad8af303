//! RFC 5280 §6 path validation from a leaf to a trust anchor of the trusted root, with the
//! signing time as "now" (Sigstore's hybrid model: the caller validates once per verified time).
//!
//! Trust comes only from the trusted root: the issuers are looked up among the certificates of
//! one `certificateAuthorities` (or `timestampAuthorities`) entry whose `validFor` contains the
//! time, and the path must end at that entry's last certificate (its anchor). Certificates the
//! bundle carries are never issuers.

use chrono::{DateTime, Utc};
use der::asn1::ObjectIdentifier;

use super::cert::Cert;
use super::{CertError, oids};
use crate::trust_root::CertificateAuthority;

/// What the end-entity certificate must be good for (its ExtendedKeyUsage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A Fulcio signing certificate.
    CodeSigning,
    /// An RFC 3161 timestamp authority's signing certificate.
    TimeStamping,
}

impl Purpose {
    fn oid(self) -> ObjectIdentifier {
        match self {
            Self::CodeSigning => oids::CODE_SIGNING,
            Self::TimeStamping => oids::TIME_STAMPING,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::CodeSigning => "code signing",
            Self::TimeStamping => "timestamping",
        }
    }

    pub(crate) fn authorities(self) -> &'static str {
        match self {
            Self::CodeSigning => "certificate authority",
            Self::TimeStamping => "timestamp authority",
        }
    }

    fn leaf(self) -> &'static str {
        match self {
            Self::CodeSigning => "signing certificate",
            Self::TimeStamping => "timestamp authority's signing certificate",
        }
    }
}

/// A validated path: the authority it ends in, and the issuers from the leaf's issuer up to
/// the anchor.
#[derive(Debug)]
pub(crate) struct Path<'a> {
    pub authority: &'a CertificateAuthority,
    pub issuers: Vec<Cert>,
}

/// Validates `leaf` at `at` against every authority whose `validFor` contains `at`.
pub(crate) fn validate<'a>(
    leaf: &Cert,
    authorities: &'a [CertificateAuthority],
    at: DateTime<Utc>,
    purpose: Purpose,
) -> Result<Path<'a>, CertError> {
    let mut best: Option<CertError> = None;
    let mut any_valid = false;
    for authority in authorities.iter().filter(|a| a.valid_for.contains(at)) {
        any_valid = true;
        let attempt =
            parse_chain(authority, purpose).and_then(|certs| build(leaf, certs, at, purpose));
        match attempt {
            Ok(issuers) => return Ok(Path { authority, issuers }),
            // Keep the most telling reason: "not issued by" only when nothing said more.
            Err(e) => {
                if best.is_none() || matches!(best, Some(CertError::UntrustedIssuer { .. })) {
                    best = Some(e);
                }
            }
        }
    }
    if !any_valid {
        return Err(CertError::NoAuthorityValidAt {
            authorities: purpose.authorities(),
            at,
        });
    }
    Err(best.unwrap_or_else(|| untrusted(leaf, purpose)))
}

fn untrusted(cert: &Cert, purpose: Purpose) -> CertError {
    CertError::UntrustedIssuer {
        authorities: purpose.authorities(),
        issuer: cert.issuer(),
    }
}

fn parse_chain(authority: &CertificateAuthority, purpose: Purpose) -> Result<Vec<Cert>, CertError> {
    authority
        .cert_chain
        .iter()
        .enumerate()
        .map(|(i, der)| {
            let what = format!(
                "certificate {i} of {} {}",
                purpose.authorities(),
                authority.uri
            );
            Cert::parse(der, &what)
        })
        .collect()
}

/// Builds the path leaf → … → anchor (the chain's last certificate) and checks every link.
fn build(
    leaf: &Cert,
    certs: Vec<Cert>,
    at: DateTime<Utc>,
    purpose: Purpose,
) -> Result<Vec<Cert>, CertError> {
    let anchor = certs
        .len()
        .checked_sub(1)
        .ok_or_else(|| untrusted(leaf, purpose))?;
    let mut path: Vec<usize> = Vec::new();
    let mut current = leaf;
    loop {
        let mut signature_error = None;
        let next = certs.iter().enumerate().find_map(|(i, candidate)| {
            if path.contains(&i) || candidate.subject_der != current.issuer_der {
                return None;
            }
            // A link between two certificates of the trusted root is the same pure check for
            // every bundle: verified once per process. Bundle-supplied certificates never are.
            let internal = certs.iter().any(|c| c.der == current.der);
            let verified = if internal {
                trusted_links::verify(current, candidate)
            } else {
                current.verify_signed_by(candidate)
            };
            match verified {
                Ok(()) => Some(i),
                Err(CertError::BadSignature { issuer, .. }) => {
                    signature_error = Some(CertError::IssuerKeyMismatch {
                        authorities: purpose.authorities(),
                        issuer,
                    });
                    None
                }
                Err(e) => {
                    signature_error = Some(e);
                    None
                }
            }
        });
        let Some(index) = next else {
            return Err(signature_error.unwrap_or_else(|| untrusted(current, purpose)));
        };
        path.push(index);
        if index == anchor {
            break;
        }
        current = certs.get(index).ok_or_else(|| untrusted(leaf, purpose))?;
    }
    check_leaf(leaf, at, purpose)?;
    for (below, index) in path.iter().enumerate() {
        let issuer = certs.get(*index).ok_or_else(|| untrusted(leaf, purpose))?;
        check_issuer(issuer, below, at, purpose)?;
    }
    Ok(path
        .into_iter()
        .filter_map(|i| certs.get(i).cloned())
        .collect())
}

fn check_common(cert: &Cert, at: DateTime<Utc>) -> Result<(), CertError> {
    cert.check_version()?;
    cert.check_critical_extensions()?;
    cert.check_validity(at)
}

/// The end-entity certificate: not a CA, may sign, and is meant for `purpose`.
fn check_leaf(leaf: &Cert, at: DateTime<Utc>, purpose: Purpose) -> Result<(), CertError> {
    check_common(leaf, at)?;
    if matches!(leaf.basic_constraints()?, Some((bc, _)) if bc.ca) {
        return Err(CertError::LeafIsCa {
            what: purpose.leaf(),
        });
    }
    if !leaf.key_usage()?.is_some_and(|ku| ku.digital_signature()) {
        return Err(CertError::LeafWithoutDigitalSignature {
            what: purpose.leaf(),
        });
    }
    let eku = leaf.extended_key_usage()?;
    if !eku.is_some_and(|eku| eku.0.contains(&purpose.oid())) {
        return Err(CertError::WrongExtendedKeyUsage {
            subject: purpose.leaf().to_string(),
            purpose: purpose.name(),
        });
    }
    Ok(())
}

/// An issuer `below` intermediate CAs above the leaf: a critical-BasicConstraints CA with
/// keyCertSign, within its pathLen, and (if it restricts EKU) allowed `purpose`.
fn check_issuer(
    cert: &Cert,
    below: usize,
    at: DateTime<Utc>,
    purpose: Purpose,
) -> Result<(), CertError> {
    check_common(cert, at)?;
    let subject = || cert.subject();
    match cert.basic_constraints()? {
        Some((bc, _)) if !bc.ca => return Err(CertError::IssuerNotCa { subject: subject() }),
        None => return Err(CertError::IssuerNotCa { subject: subject() }),
        Some((_, false)) => {
            return Err(CertError::NonCriticalBasicConstraints { subject: subject() });
        }
        Some((bc, true)) => {
            if let Some(path_len) = bc.path_len_constraint {
                if below > usize::from(path_len) {
                    return Err(CertError::PathLengthExceeded {
                        subject: subject(),
                        path_len,
                        below,
                    });
                }
            }
        }
    }
    if !cert.key_usage()?.is_some_and(|ku| ku.key_cert_sign()) {
        return Err(CertError::IssuerWithoutKeyCertSign { subject: subject() });
    }
    if let Some(eku) = cert.extended_key_usage()? {
        if !eku.0.contains(&purpose.oid()) && !eku.0.contains(&oids::ANY_EXTENDED_KEY_USAGE) {
            return Err(CertError::WrongExtendedKeyUsage {
                subject: subject(),
                purpose: purpose.name(),
            });
        }
    }
    Ok(())
}

/// Memo of verified signatures between certificates of trusted roots (never a bundle's).
mod trusted_links {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};

    use super::super::CertError;
    use super::Cert;
    use crate::digest::Sha256Digest;

    /// Trusted roots hold a handful of CA certificates; the bound only guards against misuse.
    const MAX_LINKS: usize = 4096;

    type Link = ([u8; 32], [u8; 32]);

    fn memo() -> &'static Mutex<HashSet<Link>> {
        static MEMO: OnceLock<Mutex<HashSet<Link>>> = OnceLock::new();
        MEMO.get_or_init(|| Mutex::new(HashSet::new()))
    }

    /// `child.verify_signed_by(issuer)`, remembering successes (keyed by both certificates'
    /// exact DER); failures are always recomputed.
    pub(super) fn verify(child: &Cert, issuer: &Cert) -> Result<(), CertError> {
        let link = (
            Sha256Digest::of(&child.der).0,
            Sha256Digest::of(&issuer.der).0,
        );
        if memo().lock().is_ok_and(|m| m.contains(&link)) {
            return Ok(());
        }
        child.verify_signed_by(issuer)?;
        if let Ok(mut m) = memo().lock() {
            if m.len() < MAX_LINKS {
                m.insert(link);
            }
        }
        Ok(())
    }
}
