//! Rekor v1 bodies (`sigstore/rekor` `pkg/types/{hashedrekord/v0.0.1,dsse/v0.0.1,intoto/v0.0.2}`):
//! lowercase algorithm names, hex digests, base64 signatures, keys as base64 of PEM.

use serde::Deserialize;

use super::{BodyError, Dsse, HashedRekord, Intoto, LoggedDigest, LoggedSignature, LoggedVerifier};
use crate::bundle::HashAlgorithm;
use crate::encoding::base64_decode_strict;

#[derive(Deserialize)]
pub(super) struct HashWire {
    algorithm: String,
    value: String,
}

#[derive(Deserialize)]
pub(super) struct HashedRekordSpec {
    data: HashedRekordData,
    signature: HashedRekordSignature,
}

#[derive(Deserialize)]
struct HashedRekordData {
    hash: HashWire,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HashedRekordSignature {
    content: String,
    public_key: ContentWire,
}

#[derive(Deserialize)]
struct ContentWire {
    content: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DsseSpec {
    envelope_hash: Option<HashWire>,
    payload_hash: HashWire,
    signatures: Vec<DsseSignature>,
}

#[derive(Deserialize)]
struct DsseSignature {
    signature: String,
    verifier: String,
}

#[derive(Deserialize)]
pub(super) struct IntotoSpec {
    content: IntotoContent,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IntotoContent {
    envelope: IntotoEnvelope,
    hash: Option<HashWire>,
    payload_hash: HashWire,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IntotoEnvelope {
    payload: Option<String>,
    payload_type: String,
    signatures: Vec<IntotoSignature>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IntotoSignature {
    public_key: String,
    sig: String,
}

pub(super) fn hashed_rekord(spec: HashedRekordSpec) -> Result<HashedRekord, BodyError> {
    Ok(HashedRekord {
        digest: digest("spec.data.hash", &spec.data.hash)?,
        signature: LoggedSignature {
            signature: base64("spec.signature.content", &spec.signature.content)?,
            verifier: pem_verifier(
                "spec.signature.publicKey.content",
                &spec.signature.public_key.content,
            )?,
            key_details: None,
        },
    })
}

pub(super) fn dsse(spec: DsseSpec) -> Result<Dsse, BodyError> {
    let mut signatures = Vec::with_capacity(spec.signatures.len());
    for s in &spec.signatures {
        signatures.push(LoggedSignature {
            // The envelope's own base64 signature string, decoded once.
            signature: base64("spec.signatures[].signature", &s.signature)?,
            verifier: pem_verifier("spec.signatures[].verifier", &s.verifier)?,
            key_details: None,
        });
    }
    Ok(Dsse {
        payload_hash: digest("spec.payloadHash", &spec.payload_hash)?,
        envelope_hash: spec
            .envelope_hash
            .as_ref()
            .map(|h| digest("spec.envelopeHash", h))
            .transpose()?,
        signatures,
    })
}

/// intoto 0.0.2 stores the envelope's `payload` and `sig` strings base64-encoded again, so
/// each decodes twice to reach the bytes (sigstore-go `intoto_v002` does the same).
pub(super) fn intoto(spec: IntotoSpec) -> Result<Intoto, BodyError> {
    let envelope = &spec.content.envelope;
    let payload = match &envelope.payload {
        Some(text) => Some(twice("spec.content.envelope.payload", text)?),
        None => None,
    };
    let mut signatures = Vec::with_capacity(envelope.signatures.len());
    for s in &envelope.signatures {
        signatures.push(LoggedSignature {
            signature: twice("spec.content.envelope.signatures[].sig", &s.sig)?,
            verifier: pem_verifier(
                "spec.content.envelope.signatures[].publicKey",
                &s.public_key,
            )?,
            key_details: None,
        });
    }
    Ok(Intoto {
        payload_type: envelope.payload_type.clone(),
        payload,
        payload_hash: digest("spec.content.payloadHash", &spec.content.payload_hash)?,
        envelope_hash: spec
            .content
            .hash
            .as_ref()
            .map(|h| digest("spec.content.hash", h))
            .transpose()?,
        signatures,
    })
}

fn twice(field: &'static str, text: &str) -> Result<Vec<u8>, BodyError> {
    let once = base64(field, text)?;
    std::str::from_utf8(&once)
        .ok()
        .and_then(|inner| crate::encoding::base64_decode_any(inner).ok())
        .ok_or(BodyError::NotDoubleBase64 { field })
}

fn base64(field: &'static str, text: &str) -> Result<Vec<u8>, BodyError> {
    base64_decode_strict(text).map_err(|source| BodyError::Base64 { field, source })
}

fn digest(field: &'static str, hash: &HashWire) -> Result<LoggedDigest, BodyError> {
    let algorithm = match hash.algorithm.as_str() {
        "sha256" => HashAlgorithm::Sha2_256,
        "sha384" => HashAlgorithm::Sha2_384,
        "sha512" => HashAlgorithm::Sha2_512,
        other => {
            return Err(BodyError::HashAlgorithm {
                field,
                value: other.chars().take(40).collect(),
            });
        }
    };
    // Rekor writes lowercase hex; anything else is not what the log canonicalized.
    if hash.value.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(BodyError::Hex { field });
    }
    let value = hex::decode(&hash.value).map_err(|_| BodyError::Hex { field })?;
    Ok(LoggedDigest { algorithm, value })
}

/// A verifier given as base64 of a PEM `CERTIFICATE` or `PUBLIC KEY`.
fn pem_verifier(field: &'static str, text: &str) -> Result<LoggedVerifier, BodyError> {
    let pem = base64(field, text)?;
    let (label, der) = pem_decode(&pem).ok_or(BodyError::Pem { field })?;
    match label {
        "CERTIFICATE" => Ok(LoggedVerifier::Certificate(der)),
        "PUBLIC KEY" => Ok(LoggedVerifier::PublicKey(der)),
        _ => Err(BodyError::Pem { field }),
    }
}

/// One PEM block, read as Go's `encoding/pem` does for these bodies: any line length (some
/// logs wrote the base64 on one line), nothing but whitespace around the block, no headers.
fn pem_decode(pem: &[u8]) -> Option<(&str, Vec<u8>)> {
    let text = std::str::from_utf8(pem).ok()?.trim();
    let rest = text.strip_prefix("-----BEGIN ")?;
    let (label, rest) = rest.split_once("-----")?;
    let body = rest.strip_suffix(&format!("-----END {label}-----"))?;
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = base64_decode_strict(&b64).ok()?;
    (!der.is_empty()).then_some((label, der))
}
