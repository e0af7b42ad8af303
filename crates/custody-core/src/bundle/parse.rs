//! Checked conversion of the bundle's protobuf-JSON shape into the domain types, with the
//! version rules of sigstore-go `pkg/bundle/bundle.go` `validate`.

use serde_json::Value;

use super::protojson::{self, ScalarError};
use super::wire::{BundleWire, EntryWire, MaterialWire, MessageSignatureWire, ProofWire};
use super::{
    Bundle, BundleContent, BundleError, BundleVersion, HashAlgorithm, InclusionProof, Material,
    TransparencyLogEntry, VerificationMaterial,
};
use crate::dsse::Envelope;

fn json_error(source: serde_json::Error) -> BundleError {
    use serde_json::error::Category;
    match source.classify() {
        Category::Eof => BundleError::Truncated { source },
        Category::Syntax | Category::Io => BundleError::NotJson { source },
        Category::Data => BundleError::Schema { source },
    }
}

fn missing(field: impl Into<String>) -> BundleError {
    BundleError::MissingField {
        field: field.into(),
    }
}

fn scalar_error(field: String, e: ScalarError) -> BundleError {
    match e {
        ScalarError::Base64(source) => BundleError::InvalidBase64 { field, source },
        ScalarError::Integer(value) => BundleError::InvalidInteger { field, value },
    }
}

/// A required `bytes` field.
fn bytes(field: &str, text: Option<&String>) -> Result<Vec<u8>, BundleError> {
    let text = text.ok_or_else(|| missing(field))?;
    protojson::bytes(text).map_err(|e| scalar_error(field.to_string(), e))
}

/// An `int64` field that must not be negative.
fn non_negative(field: String, value: Option<&Value>) -> Result<i64, BundleError> {
    let n = protojson::int64(value).map_err(|e| scalar_error(field.clone(), e))?;
    if n < 0 {
        return Err(BundleError::NegativeInteger { field, value: n });
    }
    Ok(n)
}

pub(super) fn parse(input: &[u8]) -> Result<Bundle, BundleError> {
    let wire: BundleWire = serde_json::from_slice(input).map_err(json_error)?;
    let media_type = wire.media_type.ok_or_else(|| missing("mediaType"))?;
    let version = BundleVersion::from_media_type(&media_type)?;
    let material = wire
        .verification_material
        .ok_or_else(|| missing("verificationMaterial"))?;
    let content = parse_material(&material, version, &media_type)?;
    let mut tlog_entries = Vec::new();
    for (i, entry) in material.tlog_entries.iter().flatten().enumerate() {
        tlog_entries.push(parse_entry(i, entry, version)?);
    }
    let mut rfc3161_timestamps = Vec::new();
    let stamps = material
        .timestamp_verification_data
        .and_then(|t| t.rfc3161_timestamps);
    for (i, stamp) in stamps.iter().flatten().enumerate() {
        let field = format!(
            "verificationMaterial.timestampVerificationData.rfc3161Timestamps[{i}].signedTimestamp"
        );
        rfc3161_timestamps.push(bytes(&field, stamp.signed_timestamp.as_ref())?);
    }
    let content_kind = match (wire.message_signature, wire.dsse_envelope) {
        (Some(sig), None) => parse_message_signature(sig)?,
        (None, Some(env)) => {
            let envelope =
                Envelope::from_wire(env).map_err(|source| BundleError::Dsse { source })?;
            if envelope.signatures.len() != 1 {
                return Err(BundleError::DsseSignatureCount {
                    count: envelope.signatures.len(),
                });
            }
            BundleContent::Dsse(envelope)
        }
        (None, None) => return Err(BundleError::MissingContent),
        (Some(_), Some(_)) => return Err(BundleError::ConflictingContent),
    };
    Ok(Bundle {
        media_type,
        version,
        verification_material: VerificationMaterial {
            content,
            tlog_entries,
            rfc3161_timestamps,
        },
        content: content_kind,
    })
}

fn parse_material(
    m: &MaterialWire,
    version: BundleVersion,
    media_type: &str,
) -> Result<Material, BundleError> {
    let set = [
        m.public_key.is_some(),
        m.x509_certificate_chain.is_some(),
        m.certificate.is_some(),
    ];
    match set.iter().filter(|s| **s).count() {
        0 => return Err(BundleError::MissingVerificationContent),
        1 => {}
        _ => return Err(BundleError::ConflictingVerificationContent),
    }
    if let Some(key) = &m.public_key {
        return Ok(Material::PublicKeyHint(
            key.hint.clone().unwrap_or_default(),
        ));
    }
    if let Some(cert) = &m.certificate {
        let field = "verificationMaterial.certificate.rawBytes";
        let der = bytes(field, cert.raw_bytes.as_ref())?;
        if der.is_empty() {
            return Err(BundleError::EmptyCertificate {
                field: field.into(),
            });
        }
        return Ok(Material::Certificate(der));
    }
    let certificates = m
        .x509_certificate_chain
        .as_ref()
        .and_then(|c| c.certificates.as_ref());
    let certificates = match certificates {
        Some(list) if !list.is_empty() => list,
        _ => return Err(BundleError::EmptyCertificateChain),
    };
    // sigstore-go validate: v0.3 bundles carry a single leaf `certificate`.
    if version >= BundleVersion::V0_3 {
        return Err(BundleError::CertificateChainNotAllowed {
            media_type: media_type.to_string(),
        });
    }
    let mut chain = Vec::with_capacity(certificates.len());
    for (i, cert) in certificates.iter().enumerate() {
        let field = format!("verificationMaterial.x509CertificateChain.certificates[{i}].rawBytes");
        let der = bytes(&field, cert.raw_bytes.as_ref())?;
        if der.is_empty() {
            return Err(BundleError::EmptyCertificate { field });
        }
        chain.push(der);
    }
    Ok(Material::X509CertificateChain(chain))
}

fn parse_entry(
    i: usize,
    e: &EntryWire,
    version: BundleVersion,
) -> Result<TransparencyLogEntry, BundleError> {
    let at = |name: &str| format!("verificationMaterial.tlogEntries[{i}].{name}");
    let log_index = non_negative(at("logIndex"), e.log_index.as_ref())?;
    let log_id = bytes(
        &at("logId.keyId"),
        e.log_id.as_ref().and_then(|l| l.key_id.as_ref()),
    )?;
    let kind_version = e
        .kind_version
        .as_ref()
        .ok_or_else(|| missing(at("kindVersion")))?;
    let integrated_time = non_negative(at("integratedTime"), e.integrated_time.as_ref())?;
    let inclusion_promise = match &e.inclusion_promise {
        Some(p) => Some(bytes(
            &at("inclusionPromise.signedEntryTimestamp"),
            p.signed_entry_timestamp.as_ref(),
        )?),
        None => None,
    };
    let inclusion_proof = match &e.inclusion_proof {
        Some(p) => Some(parse_proof(i, p)?),
        None => None,
    };
    let canonicalized_body = match &e.canonicalized_body {
        Some(body) => bytes(&at("canonicalizedBody"), Some(body))?,
        None => Vec::new(),
    };
    // sigstore-go validate: v0.1 needs the promise, v0.2+ needs the proof.
    if version == BundleVersion::V0_1 && inclusion_promise.is_none() {
        return Err(BundleError::MissingInclusionPromise { entry: i });
    }
    if version >= BundleVersion::V0_2 && inclusion_proof.is_none() {
        return Err(BundleError::MissingInclusionProof { entry: i });
    }
    Ok(TransparencyLogEntry {
        log_index,
        log_id,
        kind: kind_version.kind.clone().unwrap_or_default(),
        version: kind_version.version.clone().unwrap_or_default(),
        integrated_time,
        inclusion_promise,
        inclusion_proof,
        canonicalized_body,
    })
}

fn parse_proof(i: usize, p: &ProofWire) -> Result<InclusionProof, BundleError> {
    let at = |name: &str| format!("verificationMaterial.tlogEntries[{i}].inclusionProof.{name}");
    let log_index = non_negative(at("logIndex"), p.log_index.as_ref())?;
    let root_hash = bytes(&at("rootHash"), p.root_hash.as_ref())?;
    let tree_size = non_negative(at("treeSize"), p.tree_size.as_ref())?;
    let mut hashes = Vec::new();
    for (j, h) in p.hashes.iter().flatten().enumerate() {
        hashes.push(bytes(&at(&format!("hashes[{j}]")), Some(h))?);
    }
    // protobuf-specs: InclusionProof.checkpoint is REQUIRED.
    let checkpoint = p.checkpoint.as_ref().and_then(|c| c.envelope.clone());
    let checkpoint = checkpoint
        .filter(|c| !c.is_empty())
        .ok_or(BundleError::MissingCheckpoint { entry: i })?;
    Ok(InclusionProof {
        log_index,
        root_hash,
        tree_size,
        hashes,
        checkpoint,
    })
}

fn parse_message_signature(m: MessageSignatureWire) -> Result<BundleContent, BundleError> {
    let message_digest = match m.message_digest {
        None => None,
        Some(d) => {
            let name = d
                .algorithm
                .ok_or_else(|| missing("messageSignature.messageDigest.algorithm"))?;
            let algorithm = HashAlgorithm::from_name(&name).ok_or_else(|| {
                BundleError::UnknownHashAlgorithm {
                    field: "messageSignature.messageDigest.algorithm".into(),
                    value: protojson::shorten(&name),
                }
            })?;
            Some((
                algorithm,
                bytes("messageSignature.messageDigest.digest", d.digest.as_ref())?,
            ))
        }
    };
    let signature = bytes("messageSignature.signature", m.signature.as_ref())?;
    Ok(BundleContent::MessageSignature {
        message_digest,
        signature,
    })
}

impl TransparencyLogEntry {
    /// Parses one `TransparencyLogEntry` as a Rekor v2 write API answers it (protobuf JSON).
    /// It must carry an inclusion proof with its checkpoint, as every v0.3 bundle entry does.
    pub fn from_json(bytes: &[u8]) -> Result<Self, BundleError> {
        let wire: EntryWire = serde_json::from_slice(bytes).map_err(json_error)?;
        parse_entry(0, &wire, BundleVersion::V0_3)
    }
}
