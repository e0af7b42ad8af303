//! Fulcio certificates, offline: RFC 5280 path validation to the trusted root, the Fulcio
//! profile (identity and OIDC claims), identity policy, and embedded SCTs (SPECS §4.3, §4.4
//! step 4).
//!
//! [`verify_chain`] is the only way to get a [`VerifiedCertificate`]. It validates at one
//! signing time (Sigstore's hybrid model: call it once per verified time — TSA time, Rekor
//! integrated time); identity ([`IdentityMatcher`]) and SCTs ([`verify_embedded_scts`]) are
//! then checked on the verified certificate.

use chrono::{DateTime, Utc};

use crate::keys::PublicKey;
use crate::trust_root::TrustedRoot;

mod cert;
mod chain;
mod error;
mod fulcio;
mod identity;
mod profile;
mod sct;
pub(crate) mod signature;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod tests;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests_fixtures;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests_mutation;
pub(crate) mod tlv;

pub(crate) use cert::Cert;
pub(crate) use chain::{Purpose, validate as validate_path};
pub use error::CertError;
pub use fulcio::{FulcioClaims, SubjectAlternativeName};
pub use identity::{AnchoredRegex, IdentityError, IdentityMatcher, IdentityPattern};
pub use profile::{cert_is_ca, cert_is_root_ca};
pub use sct::{SctError, VerifiedSct, verify_embedded_scts};

/// OIDs used by certificate verification.
pub(crate) mod oids {
    use der::asn1::ObjectIdentifier as Oid;

    pub const SUBJECT_ALT_NAME: Oid = Oid::new_unwrap("2.5.29.17");
    pub const BASIC_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.19");
    pub const KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.15");
    pub const EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37");
    pub const ANY_EXTENDED_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37.0");
    pub const CODE_SIGNING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.3");
    pub const TIME_STAMPING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.8");
    /// RFC 6962 §3.3 embedded SCT list.
    pub const CT_PRECERT_SCTS: Oid = Oid::new_unwrap("1.3.6.1.4.1.11129.2.4.2");
    /// Fulcio otherName SAN: username.
    pub const FULCIO_USERNAME: Oid = Oid::new_unwrap("1.3.6.1.4.1.57264.1.7");
}

/// A Fulcio signing certificate whose chain validated to the trusted root at `verified_at`.
#[derive(Debug, Clone)]
pub struct VerifiedCertificate {
    /// The leaf, DER, exactly as received.
    pub der: Vec<u8>,
    /// The key that signed the artifact.
    pub public_key: PublicKey,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// The signer: the certificate's one SAN.
    pub identity: SubjectAlternativeName,
    /// OIDC claims from the Fulcio extensions.
    pub claims: FulcioClaims,
    /// The `uri` of the trusted-root certificate authority the chain ends in.
    pub authority_uri: String,
    /// The time the chain was validated at.
    pub verified_at: DateTime<Utc>,
    /// The issuers from the leaf's issuer to the trust anchor, DER, all from the trusted root.
    pub issuers: Vec<Vec<u8>>,
    /// DER SPKI of the leaf's issuer (the SCT `issuer_key_hash` input).
    pub(crate) issuer_spki_der: Vec<u8>,
}

/// Validates a Fulcio signing certificate at time `at` (RFC 5280 §6 with `at` as "now").
///
/// `bundle_intermediates` are the certificates after the leaf in a v0.1/v0.2 bundle chain:
/// they are never trusted (issuers come only from `trusted.certificate_authorities`), but a
/// root (self-signed) certificate among them is refused, as signers must not send roots.
pub fn verify_chain(
    leaf_der: &[u8],
    bundle_intermediates: &[Vec<u8>],
    trusted: &TrustedRoot,
    at: DateTime<Utc>,
) -> Result<VerifiedCertificate, CertError> {
    for (i, der) in bundle_intermediates.iter().enumerate() {
        let cert = Cert::parse(der, &format!("certificate {} of the bundle's chain", i + 1))?;
        if cert.is_self_signed() {
            return Err(CertError::RootInBundle {
                subject: cert.subject(),
            });
        }
    }
    let leaf = Cert::parse(leaf_der, "signing certificate")?;
    let path = chain::validate(
        &leaf,
        &trusted.certificate_authorities,
        at,
        Purpose::CodeSigning,
    )?;
    let identity = SubjectAlternativeName::from_cert(&leaf)?;
    let claims = FulcioClaims::from_cert(&leaf)?;
    let public_key = PublicKey::from_spki_der(&leaf.spki_der)
        .map_err(|source| CertError::UnsupportedLeafKey { source })?;
    let issuer_spki_der = path
        .issuers
        .first()
        .map(|c| c.spki_der.clone())
        .unwrap_or_default();
    Ok(VerifiedCertificate {
        not_before: leaf.not_before(),
        not_after: leaf.not_after(),
        der: leaf.der,
        public_key,
        identity,
        claims,
        authority_uri: path.authority.uri.clone(),
        verified_at: at,
        issuers: path.issuers.into_iter().map(|c| c.der).collect(),
        issuer_spki_der,
    })
}
