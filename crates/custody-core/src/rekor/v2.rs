//! Rekor v2 (rekor-tiles) bodies: protobuf-JSON of `dev.sigstore.rekor.v2.Entry`
//! (`api/proto/rekor/v2/{entry,hashedrekord,dsse,verifier}.proto`): algorithm and key-details
//! enum names, bytes as standard base64.

use serde::Deserialize;

use super::{BodyError, Dsse, HashedRekord, LoggedDigest, LoggedSignature, LoggedVerifier};
use crate::bundle::HashAlgorithm;
use crate::encoding::base64_decode_strict;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct HashedRekordSpec {
    hashed_rekord_v002: HashedRekordWire,
}

#[derive(Deserialize)]
struct HashedRekordWire {
    data: HashOutputWire,
    signature: SignatureWire,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DsseSpec {
    dsse_v002: DsseWire,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DsseWire {
    payload_hash: HashOutputWire,
    signatures: Vec<SignatureWire>,
}

#[derive(Deserialize)]
struct HashOutputWire {
    algorithm: String,
    digest: String,
}

#[derive(Deserialize)]
struct SignatureWire {
    content: String,
    verifier: VerifierWire,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VerifierWire {
    key_details: String,
    public_key: Option<RawBytesWire>,
    x509_certificate: Option<RawBytesWire>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytesWire {
    raw_bytes: String,
}

pub(super) fn hashed_rekord(spec: HashedRekordSpec) -> Result<HashedRekord, BodyError> {
    let wire = spec.hashed_rekord_v002;
    Ok(HashedRekord {
        digest: digest("spec.hashedRekordV002.data", &wire.data)?,
        signature: signature("spec.hashedRekordV002.signature", &wire.signature)?,
    })
}

pub(super) fn dsse(spec: DsseSpec) -> Result<Dsse, BodyError> {
    let wire = spec.dsse_v002;
    let mut signatures = Vec::with_capacity(wire.signatures.len());
    for s in &wire.signatures {
        signatures.push(signature("spec.dsseV002.signatures[]", s)?);
    }
    Ok(Dsse {
        payload_hash: digest("spec.dsseV002.payloadHash", &wire.payload_hash)?,
        envelope_hash: None,
        signatures,
    })
}

fn digest(field: &'static str, wire: &HashOutputWire) -> Result<LoggedDigest, BodyError> {
    let algorithm =
        HashAlgorithm::from_name(&wire.algorithm).ok_or_else(|| BodyError::HashAlgorithm {
            field,
            value: wire.algorithm.chars().take(40).collect(),
        })?;
    Ok(LoggedDigest {
        algorithm,
        value: base64(field, &wire.digest)?,
    })
}

fn signature(field: &'static str, wire: &SignatureWire) -> Result<LoggedSignature, BodyError> {
    let verifier = match (&wire.verifier.public_key, &wire.verifier.x509_certificate) {
        (Some(key), None) => LoggedVerifier::PublicKey(base64(field, &key.raw_bytes)?),
        (None, Some(cert)) => LoggedVerifier::Certificate(base64(field, &cert.raw_bytes)?),
        _ => return Err(BodyError::MissingVerifier { field }),
    };
    Ok(LoggedSignature {
        signature: base64(field, &wire.content)?,
        verifier,
        key_details: Some(wire.verifier.key_details.clone()),
    })
}

fn base64(field: &'static str, text: &str) -> Result<Vec<u8>, BodyError> {
    base64_decode_strict(text).map_err(|source| BodyError::Base64 { field, source })
}
