//! DSSE v1 (Dead Simple Signing Envelope): PAE, the JSON envelope, and threshold verification.
//!
//! Spec: secure-systems-lab/dsse `protocol.md`, `envelope.md` (SPECS §1). The envelope is parsed
//! into an unverified [`Envelope`]; only [`Envelope::verify`] hands out a [`VerifiedPayload`],
//! which carries exactly the payload bytes that were decoded from the envelope and signed.

use serde::{Deserialize, Serialize};

use crate::encoding::{Base64Error, base64_decode_any, base64_encode};

/// The DSSE `payloadType` of in-toto Statements.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// Signs an in-toto payload (a Statement's JSON bytes) as a DSSE envelope with one signature
/// whose `keyid` is the base64 SHA-256 of the key's SubjectPublicKeyInfo: the form cosign and
/// sigstore-go write, and the same text as the bundle's public-key hint.
pub fn sign_in_toto(
    key: &crate::keys::SigningKey,
    payload: Vec<u8>,
) -> Result<Envelope, crate::keys::KeyError> {
    let sig = key.sign(crate::keys::SignedData::Message(&pae(
        IN_TOTO_PAYLOAD_TYPE,
        &payload,
    )))?;
    let keyid = base64_encode(&key.public_key().key_id().0);
    Ok(Envelope {
        payload,
        payload_type: IN_TOTO_PAYLOAD_TYPE.to_string(),
        signatures: vec![EnvelopeSignature { keyid, sig }],
    })
}

/// Pre-Authentication Encoding: the exact bytes a DSSE signature covers.
///
/// DSSE protocol.md: `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, where `LEN` is the
/// ASCII decimal **byte** length, no leading zeros.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let type_len = payload_type.len().to_string();
    let body_len = payload.len().to_string();
    let mut out = Vec::with_capacity(
        10 + type_len.len() + payload_type.len() + body_len.len() + payload.len(),
    );
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(type_len.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(body_len.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// Something that can check a signature made by one key.
///
/// The signature algorithm is out of band in DSSE: the verifier knows its key and algorithm.
pub trait SignatureVerifier {
    /// True if `signature` is a valid signature over `message` by this verifier's key.
    fn verify_signature(&self, message: &[u8], signature: &[u8]) -> bool;

    /// A stable identifier of the key (for example SHA-256 of the SPKI), used to count each key
    /// once toward a threshold. Never used to decide whether a signature is valid.
    fn key_id_hint(&self) -> Option<&str> {
        None
    }
}

/// One signature of an envelope. `keyid` is an unauthenticated hint ("" when unset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeSignature {
    pub keyid: String,
    pub sig: Vec<u8>,
}

/// A parsed, **unverified** DSSE envelope. `payload` holds the decoded payload bytes exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub payload: Vec<u8>,
    pub payload_type: String,
    pub signatures: Vec<EnvelopeSignature>,
}

/// The payload of an envelope whose signatures met the threshold.
///
/// Only [`Envelope::verify`] constructs this; the payload bytes are the ones that were signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPayload {
    pub payload_type: String,
    pub payload: Vec<u8>,
    /// Indices (into the verifier slice given to `verify`) of the keys that verified.
    verified_by: Vec<usize>,
}

impl VerifiedPayload {
    /// Indices into the verifier slice of the keys whose signature verified.
    pub fn verified_by(&self) -> &[usize] {
        &self.verified_by
    }
}

/// Why an envelope was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DsseError {
    #[error(
        "the DSSE envelope is not valid JSON: {source} (is the file truncated, or not a DSSE envelope?)"
    )]
    Json {
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "the DSSE envelope has no `{field}` field, which the DSSE spec requires (even if empty)"
    )]
    MissingField { field: &'static str },
    #[error("the DSSE envelope field `{field}` is not base64 (standard or URL-safe): {source}")]
    InvalidBase64 {
        field: String,
        #[source]
        source: Base64Error,
    },
    #[error("a threshold of 0 would accept an unsigned envelope; ask for at least 1 signature")]
    ZeroThreshold,
    #[error(
        "no trusted keys were given to verify the DSSE envelope with; pass the signer's public key"
    )]
    NoVerifiers,
    #[error("the DSSE envelope has no signatures")]
    NoSignatures,
    #[error(
        "DSSE signature threshold not met: {verified} of the {threshold} required trusted keys \
         verified ({signatures} signature(s) in the envelope); check that you passed the right public key"
    )]
    ThresholdNotMet {
        verified: usize,
        threshold: usize,
        signatures: usize,
    },
}

/// JSON shape of an envelope, used in both directions (and by the Sigstore bundle parser).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EnvelopeWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signatures: Option<Vec<SignatureWire>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SignatureWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    keyid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sig: Option<String>,
}

impl Envelope {
    /// An unsigned envelope; add signatures to `signatures`.
    pub fn new(payload_type: impl Into<String>, payload: Vec<u8>) -> Self {
        Self {
            payload,
            payload_type: payload_type.into(),
            signatures: Vec::new(),
        }
    }

    /// Parses the JSON envelope. Unknown fields are ignored; `payload`, `payloadType`,
    /// `signatures` and every `signatures[].sig` must be present; base64 may be standard or
    /// URL-safe (DSSE envelope.md: verifiers MUST accept both).
    pub fn from_json(bytes: &[u8]) -> Result<Self, DsseError> {
        let wire: EnvelopeWire =
            serde_json::from_slice(bytes).map_err(|source| DsseError::Json { source })?;
        Self::from_wire(wire)
    }

    pub(crate) fn from_wire(wire: EnvelopeWire) -> Result<Self, DsseError> {
        let payload_b64 = wire
            .payload
            .ok_or(DsseError::MissingField { field: "payload" })?;
        let payload =
            base64_decode_any(&payload_b64).map_err(|source| DsseError::InvalidBase64 {
                field: "payload".into(),
                source,
            })?;
        let payload_type = wire.payload_type.ok_or(DsseError::MissingField {
            field: "payloadType",
        })?;
        let wire_sigs = wire.signatures.ok_or(DsseError::MissingField {
            field: "signatures",
        })?;
        let mut signatures = Vec::with_capacity(wire_sigs.len());
        for (i, s) in wire_sigs.into_iter().enumerate() {
            let sig_b64 = s.sig.ok_or(DsseError::MissingField {
                field: "signatures[].sig",
            })?;
            let sig = base64_decode_any(&sig_b64).map_err(|source| DsseError::InvalidBase64 {
                field: format!("signatures[{i}].sig"),
                source,
            })?;
            signatures.push(EnvelopeSignature {
                keyid: s.keyid.unwrap_or_default(),
                sig,
            });
        }
        Ok(Self {
            payload,
            payload_type,
            signatures,
        })
    }

    pub(crate) fn to_wire(&self) -> EnvelopeWire {
        EnvelopeWire {
            payload: Some(base64_encode(&self.payload)),
            payload_type: Some(self.payload_type.clone()),
            signatures: Some(
                self.signatures
                    .iter()
                    .map(|s| SignatureWire {
                        keyid: (!s.keyid.is_empty()).then(|| s.keyid.clone()),
                        sig: Some(base64_encode(&s.sig)),
                    })
                    .collect(),
            ),
        }
    }

    /// Compact JSON: fields `payload`, `payloadType`, `signatures` in that order, standard
    /// base64, `keyid` omitted when empty.
    pub fn to_json(&self) -> String {
        // Serializing plain strings and vectors cannot fail.
        serde_json::to_string(&self.to_wire()).unwrap_or_default()
    }

    /// The same JSON as [`Envelope::to_json`], as a value to embed in another document.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self.to_wire()).unwrap_or_default()
    }

    /// The bytes every signature of this envelope covers.
    pub fn pae(&self) -> Vec<u8> {
        pae(&self.payload_type, &self.payload)
    }

    /// Verifies the envelope against trusted keys with a (t, n) threshold.
    ///
    /// DSSE protocol.md: count *unique* trusted keys that verify some signature over the PAE,
    /// skip signatures that fail, reject if fewer than `threshold`. Keys are told apart by
    /// identity and, when present, by [`SignatureVerifier::key_id_hint`]. The `keyid` field of a
    /// signature is never consulted: every signature is tried against every key.
    pub fn verify(
        &self,
        verifiers: &[&dyn SignatureVerifier],
        threshold: usize,
    ) -> Result<VerifiedPayload, DsseError> {
        if threshold == 0 {
            return Err(DsseError::ZeroThreshold);
        }
        if verifiers.is_empty() {
            return Err(DsseError::NoVerifiers);
        }
        if self.signatures.is_empty() {
            return Err(DsseError::NoSignatures);
        }
        let message = self.pae();
        let mut verified_by: Vec<usize> = Vec::new();
        for (i, verifier) in verifiers.iter().enumerate() {
            let duplicate = verified_by
                .iter()
                .any(|&j| same_key(verifiers[j], *verifier));
            if duplicate {
                continue;
            }
            if self
                .signatures
                .iter()
                .any(|s| verifier.verify_signature(&message, &s.sig))
            {
                verified_by.push(i);
            }
        }
        if verified_by.len() < threshold {
            return Err(DsseError::ThresholdNotMet {
                verified: verified_by.len(),
                threshold,
                signatures: self.signatures.len(),
            });
        }
        Ok(VerifiedPayload {
            payload_type: self.payload_type.clone(),
            payload: self.payload.clone(),
            verified_by,
        })
    }
}

/// Whether two verifiers stand for the same key: the same object, or the same key id.
fn same_key(a: &dyn SignatureVerifier, b: &dyn SignatureVerifier) -> bool {
    let same_object = std::ptr::addr_eq(
        a as *const dyn SignatureVerifier,
        b as *const dyn SignatureVerifier,
    );
    same_object || matches!((a.key_id_hint(), b.key_id_hint()), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests;
