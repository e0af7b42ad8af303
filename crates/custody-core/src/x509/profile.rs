//! Whether a certificate is *marked* as a CA or a root CA, with the consistency rules of
//! sigstore-python's `cert_is_ca` / `cert_is_root_ca` (`sigstore/_utils.py`).
//!
//! A CA has both `BasicConstraints.ca` and `KeyUsage.keyCertSign`; a leaf has neither. Any other
//! combination, a non-critical BasicConstraints, or a BasicConstraints without KeyUsage is an
//! "invalid X.509 certificate": custody treats it as neither a leaf nor a CA.
//!
//! Being marked as a CA is not being a *valid* CA: that is path validation's job.

use super::CertError;
use super::cert::Cert;

/// Whether the DER certificate is marked as a CA (see the module documentation).
pub fn cert_is_ca(der: &[u8]) -> Result<bool, CertError> {
    is_ca(&Cert::parse(der, "certificate")?)
}

/// Whether the DER certificate is a root CA: a CA that issued and signed itself.
pub fn cert_is_root_ca(der: &[u8]) -> Result<bool, CertError> {
    let cert = Cert::parse(der, "certificate")?;
    Ok(is_ca(&cert)? && cert.is_self_signed())
}

pub(crate) fn is_ca(cert: &Cert) -> Result<bool, CertError> {
    cert.check_version()?;
    let Some((bc, critical)) = cert.basic_constraints()? else {
        return Ok(false);
    };
    if !critical {
        return Err(CertError::NonCriticalBasicConstraints {
            subject: cert.subject(),
        });
    }
    let key_cert_sign = cert
        .key_usage()?
        .ok_or_else(|| CertError::MissingKeyUsage {
            subject: cert.subject(),
        })?
        .key_cert_sign();
    match (bc.ca, key_cert_sign) {
        (true, true) => Ok(true),
        (false, false) => Ok(false),
        (ca, key_cert_sign) => Err(CertError::InconsistentCaState {
            subject: cert.subject(),
            key_cert_sign,
            ca,
        }),
    }
}
