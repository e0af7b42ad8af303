//! Embedded Signed Certificate Timestamps (RFC 6962 §3.2–3.3): proof that the Fulcio
//! precertificate was submitted to a CT log the trusted root names.
//!
//! Signed data (`precert_entry`, SPECS §4.3): `version 0 ‖ signature_type 0 ‖ timestamp u64 ms ‖
//! entry_type u16 = 1 ‖ SHA-256(issuer SPKI) ‖ u24 len ‖ TBSCertificate without the SCT-list
//! extension ‖ u16 len ‖ SCT extensions`. The TBSCertificate is rebuilt from the bytes received,
//! only the one extension removed.

use chrono::{DateTime, Utc};
use der::Decode;
use der::asn1::OctetString;
use spki::AlgorithmIdentifierOwned;

use super::signature::{self, SignatureProblem};
use super::{VerifiedCertificate, cert::Cert, oids, tlv};
use crate::digest::Sha256Digest;
use crate::trust_root::TrustedRoot;

/// An SCT that verified under a trusted CT log key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSct {
    pub log_id: Vec<u8>,
    pub log_url: String,
    pub timestamp: DateTime<Utc>,
}

/// Why the certificate's SCTs did not satisfy the threshold.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SctError {
    #[error("the signing certificate has no embedded SCT list (extension 1.3.6.1.4.1.11129.2.4.2)")]
    Missing,
    #[error("the signing certificate's embedded SCT list is malformed: {reason}")]
    Malformed { reason: &'static str },
    #[error(
        "{verified} of the certificate's {total} SCT(s) verified with a CT log key of the trusted root, {required} required{}",
        detail_suffix(.details)
    )]
    Threshold {
        verified: usize,
        total: usize,
        required: usize,
        details: Vec<String>,
    },
}

fn detail_suffix(details: &[String]) -> String {
    if details.is_empty() {
        String::new()
    } else {
        format!(" ({})", details.join("; "))
    }
}

/// One parsed SCT (RFC 6962 §3.2 `SignedCertificateTimestamp`).
struct Sct<'a> {
    log_id: &'a [u8],
    timestamp_ms: u64,
    extensions: &'a [u8],
    hash_alg: u8,
    sig_alg: u8,
    signature: &'a [u8],
}

/// A cursor over TLS-encoded bytes.
struct Tls<'a>(&'a [u8]);

impl<'a> Tls<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
    fn uint(&mut self, n: usize) -> Option<u64> {
        Some(
            self.take(n)?
                .iter()
                .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
        )
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.uint(2)?).ok()?;
        self.take(len)
    }
}

fn parse_sct(bytes: &[u8]) -> Option<Sct<'_>> {
    let mut r = Tls(bytes);
    if r.uint(1)? != 0 {
        return None; // only v1 exists
    }
    let sct = Sct {
        log_id: r.take(32)?,
        timestamp_ms: r.uint(8)?,
        extensions: r.vec16()?,
        hash_alg: u8::try_from(r.uint(1)?).ok()?,
        sig_alg: u8::try_from(r.uint(1)?).ok()?,
        signature: r.vec16()?,
    };
    r.0.is_empty().then_some(sct)
}

fn parse_list(list: &[u8]) -> Option<Vec<Sct<'_>>> {
    let mut outer = Tls(list);
    let mut inner = Tls(outer.vec16()?);
    if !outer.0.is_empty() {
        return None;
    }
    let mut scts = Vec::new();
    while !inner.0.is_empty() {
        scts.push(parse_sct(inner.vec16()?)?);
    }
    Some(scts)
}

/// The TBSCertificate with the SCT-list extension removed (RFC 6962 §3.2).
fn precert_tbs(tbs: &[u8]) -> Option<Vec<u8>> {
    let sct_oid = tlv::encode(0x06, oids::CT_PRECERT_SCTS.as_bytes());
    let outer = tlv::single(tbs)?;
    let mut content = Vec::with_capacity(outer.content.len());
    for field in tlv::children(outer.content)? {
        if field.tag != 0xa3 {
            content.extend_from_slice(field.whole);
            continue;
        }
        let list = tlv::single(field.content)?;
        let mut kept = Vec::new();
        for ext in tlv::children(list.content)? {
            let (oid, _) = tlv::split(ext.content)?;
            if oid.whole != sct_oid.as_slice() {
                kept.extend_from_slice(ext.whole);
            }
        }
        content.extend(tlv::encode(0xa3, &tlv::encode(list.tag, &kept)));
    }
    Some(tlv::encode(outer.tag, &content))
}

fn signed_data(sct: &Sct<'_>, issuer_key_hash: &[u8; 32], tbs: &[u8]) -> Option<Vec<u8>> {
    let tbs_len = u32::try_from(tbs.len()).ok().filter(|l| *l < 1 << 24)?;
    let ext_len = u16::try_from(sct.extensions.len()).ok()?;
    let mut out = vec![0u8, 0u8];
    out.extend_from_slice(&sct.timestamp_ms.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(issuer_key_hash);
    out.extend_from_slice(tbs_len.to_be_bytes().get(1..)?);
    out.extend_from_slice(tbs);
    out.extend_from_slice(&ext_len.to_be_bytes());
    out.extend_from_slice(sct.extensions);
    Some(out)
}

/// RFC 5246 `SignatureAndHashAlgorithm` (hash 4 = SHA-256) as an X.509 algorithm identifier.
fn algorithm(hash_alg: u8, sig_alg: u8) -> Option<AlgorithmIdentifierOwned> {
    let oid = match (hash_alg, sig_alg) {
        (4, 3) => "1.2.840.10045.4.3.2",
        (5, 3) => "1.2.840.10045.4.3.3",
        (4, 1) => "1.2.840.113549.1.1.11",
        (_, 7) => "1.3.101.112",
        _ => return None,
    };
    Some(AlgorithmIdentifierOwned {
        oid: der::asn1::ObjectIdentifier::new(oid).ok()?,
        parameters: None,
    })
}

/// Verifies the certificate's embedded SCTs against the trusted root's `ctlogs`; at least
/// `threshold` distinct logs must have signed (never fewer than one: 0 is read as 1). SCTs from
/// logs the root does not name, or names for another time, are skipped.
pub fn verify_embedded_scts(
    cert: &VerifiedCertificate,
    trusted: &TrustedRoot,
    threshold: usize,
) -> Result<Vec<VerifiedSct>, SctError> {
    let malformed = |reason| SctError::Malformed { reason };
    let leaf = Cert::parse(&cert.der, "signing certificate")
        .map_err(|_| malformed("unreadable certificate"))?;
    let ext = leaf
        .extension(oids::CT_PRECERT_SCTS)
        .map_err(|_| malformed("duplicate extension"))?
        .ok_or(SctError::Missing)?;
    let list = OctetString::from_der(ext.extn_value.as_bytes())
        .map_err(|_| malformed("not an OCTET STRING"))?;
    let scts = parse_list(list.as_bytes()).ok_or_else(|| malformed("bad TLS encoding"))?;
    let tbs =
        precert_tbs(&leaf.tbs).ok_or_else(|| malformed("cannot rebuild the precertificate"))?;
    let issuer_key_hash = Sha256Digest::of(&cert.issuer_spki_der).0;

    let mut verified: Vec<VerifiedSct> = Vec::new();
    let mut details = Vec::new();
    for sct in &scts {
        let id = hex::encode(sct.log_id);
        let Some(log) = trusted.ctlogs.iter().find(|l| l.log_id == sct.log_id) else {
            details.push(format!("log {id} is not in the trusted root"));
            continue;
        };
        let time = i64::try_from(sct.timestamp_ms)
            .ok()
            .and_then(DateTime::<Utc>::from_timestamp_millis);
        let Some(time) = time.filter(|t| log.public_key.valid_for.contains(*t)) else {
            details.push(format!(
                "log {} was not trusted at the SCT time",
                log.base_url
            ));
            continue;
        };
        let (Some(key), Some(alg), Some(data)) = (
            log.public_key.raw_bytes.as_deref(),
            algorithm(sct.hash_alg, sct.sig_alg),
            signed_data(sct, &issuer_key_hash, &tbs),
        ) else {
            details.push(format!(
                "SCT from {} uses an unsupported algorithm",
                log.base_url
            ));
            continue;
        };
        match signature::verify(key, &alg, None, &data, sct.signature) {
            Ok(()) if !verified.iter().any(|v| v.log_id == sct.log_id) => {
                verified.push(VerifiedSct {
                    log_id: sct.log_id.to_vec(),
                    log_url: log.base_url.clone(),
                    timestamp: time,
                })
            }
            Ok(()) => {}
            Err(SignatureProblem::Invalid) => details.push(format!(
                "SCT signature from {} does not verify",
                log.base_url
            )),
            Err(SignatureProblem::Unsupported { .. }) => details.push(format!(
                "SCT from {} uses an unsupported key or algorithm",
                log.base_url
            )),
        }
    }
    if verified.len() < threshold.max(1) {
        return Err(SctError::Threshold {
            verified: verified.len(),
            total: scts.len(),
            required: threshold.max(1),
            details,
        });
    }
    Ok(verified)
}
