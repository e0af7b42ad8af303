//! A parsed certificate that keeps the bytes it was read from, and the RFC 5280 facts the path
//! validation and the Fulcio profile need: validity, extensions, and signature checks over the
//! exact TBSCertificate bytes received (never a re-encoding).

use chrono::{DateTime, Utc};
use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};
use x509_cert::Certificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage};
use x509_cert::time::Time;

use super::signature::{self, SignatureProblem};
use super::{CertError, oids, tlv};

/// One X.509 certificate, parsed, with its original DER.
#[derive(Debug, Clone)]
pub(crate) struct Cert {
    pub der: Vec<u8>,
    pub cert: Certificate,
    /// The exact TBSCertificate bytes (what the issuer signed).
    pub tbs: Vec<u8>,
    pub subject_der: Vec<u8>,
    pub issuer_der: Vec<u8>,
    pub spki_der: Vec<u8>,
}

impl Cert {
    /// Parses DER; `what` names the certificate in errors ("leaf certificate").
    pub fn parse(der: &[u8], what: &str) -> Result<Self, CertError> {
        let structure = |reason| CertError::MalformedStructure {
            what: what.to_string(),
            reason,
        };
        let cert = Certificate::from_der(der).map_err(|source| CertError::Malformed {
            what: what.to_string(),
            source,
        })?;
        let outer = tlv::single(der).ok_or_else(|| structure("not a single DER element"))?;
        let tbs = tlv::split(outer.content)
            .map(|(t, _)| t.whole.to_vec())
            .ok_or_else(|| structure("no TBSCertificate"))?;
        let enc = |r: der::Result<Vec<u8>>| {
            r.map_err(|source| CertError::Malformed {
                what: what.to_string(),
                source,
            })
        };
        let tbs_cert = cert.tbs_certificate();
        Ok(Self {
            subject_der: enc(tbs_cert.subject().to_der())?,
            issuer_der: enc(tbs_cert.issuer().to_der())?,
            spki_der: enc(tbs_cert.subject_public_key_info().to_der())?,
            der: der.to_vec(),
            cert,
            tbs,
        })
    }

    /// The subject as an RFC 4514 string, or `(empty subject)`.
    pub fn subject(&self) -> String {
        name_string(self.cert.tbs_certificate().subject())
    }

    pub fn issuer(&self) -> String {
        name_string(self.cert.tbs_certificate().issuer())
    }

    pub fn not_before(&self) -> DateTime<Utc> {
        to_chrono(self.cert.tbs_certificate().validity().not_before)
    }

    pub fn not_after(&self) -> DateTime<Utc> {
        to_chrono(self.cert.tbs_certificate().validity().not_after)
    }

    /// RFC 5280 §6.1.3 (a)(2): `at` within `[notBefore, notAfter]`, both inclusive.
    pub fn check_validity(&self, at: DateTime<Utc>) -> Result<(), CertError> {
        if at < self.not_before() {
            return Err(CertError::NotYetValid {
                subject: self.subject(),
                not_before: self.not_before(),
                at,
            });
        }
        if at > self.not_after() {
            return Err(CertError::Expired {
                subject: self.subject(),
                not_after: self.not_after(),
                at,
            });
        }
        Ok(())
    }

    /// Version 3 only: earlier versions have no extensions and ambiguous CA semantics.
    pub fn check_version(&self) -> Result<(), CertError> {
        let version = self.cert.tbs_certificate().version();
        if version != x509_cert::certificate::Version::V3 {
            return Err(CertError::UnsupportedVersion {
                subject: self.subject(),
                version: version as u8 + 1,
            });
        }
        Ok(())
    }

    /// All extensions; refuses duplicates (RFC 5280 §4.2: at most one instance per OID).
    pub fn extensions(&self) -> Result<&[Extension], CertError> {
        let exts = self
            .cert
            .tbs_certificate()
            .extensions()
            .map(|e| e.as_slice())
            .unwrap_or_default();
        for (i, ext) in exts.iter().enumerate() {
            if exts.iter().skip(i + 1).any(|e| e.extn_id == ext.extn_id) {
                return Err(CertError::DuplicateExtension {
                    subject: self.subject(),
                    oid: ext.extn_id.to_string(),
                });
            }
        }
        Ok(exts)
    }

    pub fn extension(&self, oid: ObjectIdentifier) -> Result<Option<&Extension>, CertError> {
        Ok(self.extensions()?.iter().find(|e| e.extn_id == oid))
    }

    fn decode_ext<'a, T: Decode<'a, Error = der::Error>>(
        &self,
        ext: &'a Extension,
    ) -> Result<T, CertError> {
        T::from_der(ext.extn_value.as_bytes()).map_err(|source| CertError::MalformedExtension {
            subject: self.subject(),
            oid: ext.extn_id.to_string(),
            source,
        })
    }

    /// BasicConstraints and whether it is critical.
    pub fn basic_constraints(&self) -> Result<Option<(BasicConstraints, bool)>, CertError> {
        match self.extension(oids::BASIC_CONSTRAINTS)? {
            None => Ok(None),
            Some(ext) => Ok(Some((self.decode_ext(ext)?, ext.critical))),
        }
    }

    pub fn key_usage(&self) -> Result<Option<KeyUsage>, CertError> {
        match self.extension(oids::KEY_USAGE)? {
            None => Ok(None),
            Some(ext) => self.decode_ext(ext).map(Some),
        }
    }

    pub fn extended_key_usage(&self) -> Result<Option<ExtendedKeyUsage>, CertError> {
        match self.extension(oids::EXT_KEY_USAGE)? {
            None => Ok(None),
            Some(ext) => self.decode_ext(ext).map(Some),
        }
    }

    /// RFC 5280 §4.2: a critical extension custody does not process makes the cert unusable.
    pub fn check_critical_extensions(&self) -> Result<(), CertError> {
        const HANDLED: [ObjectIdentifier; 4] = [
            oids::BASIC_CONSTRAINTS,
            oids::KEY_USAGE,
            oids::EXT_KEY_USAGE,
            oids::SUBJECT_ALT_NAME,
        ];
        match self
            .extensions()?
            .iter()
            .find(|e| e.critical && !HANDLED.contains(&e.extn_id))
        {
            Some(ext) => Err(CertError::UnhandledCriticalExtension {
                subject: self.subject(),
                oid: ext.extn_id.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// Whether `issuer`'s key made this certificate's signature (names are not compared).
    pub fn verify_signed_by(&self, issuer: &Cert) -> Result<(), CertError> {
        let inner = self.cert.tbs_certificate().signature();
        let outer = self.cert.signature_algorithm();
        if inner != outer {
            return Err(CertError::SignatureAlgorithmMismatch {
                subject: self.subject(),
            });
        }
        let sig =
            self.cert
                .signature()
                .as_bytes()
                .ok_or_else(|| CertError::MalformedStructure {
                    what: format!("certificate {}", self.subject()),
                    reason: "the signature BIT STRING has unused bits",
                })?;
        signature::verify(&issuer.spki_der, outer, None, &self.tbs, sig).map_err(|p| match p {
            SignatureProblem::Invalid => CertError::BadSignature {
                subject: self.subject(),
                issuer: issuer.subject(),
            },
            SignatureProblem::Unsupported { algorithm, key } => {
                CertError::UnsupportedSignatureAlgorithm {
                    subject: self.subject(),
                    algorithm,
                    key,
                }
            }
        })
    }

    /// Self-issued (subject = issuer) and self-signed (its own key verifies its signature).
    pub fn is_self_signed(&self) -> bool {
        self.subject_der == self.issuer_der && self.verify_signed_by(self).is_ok()
    }
}

pub(crate) fn name_string(name: &x509_cert::name::Name) -> String {
    let s = name.to_string();
    if s.is_empty() {
        "(empty subject)".to_string()
    } else {
        s
    }
}

pub(crate) fn to_chrono(time: Time) -> DateTime<Utc> {
    let secs = i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX);
    DateTime::from_timestamp(secs, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Reads a PEM certificate (tests); the first `CERTIFICATE` block.
#[cfg(test)]
pub(crate) fn pem_to_der(pem: &[u8]) -> Option<Vec<u8>> {
    let (label, der) = pem_rfc7468::decode_vec(pem).ok()?;
    (label == "CERTIFICATE").then_some(der)
}
