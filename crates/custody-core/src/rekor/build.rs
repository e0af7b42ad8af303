//! The body bytes rekor-tiles logs for a request (`pkg/types/{hashedrekord,dsse}`): the log
//! entry as protobuf-JSON, made canonical with RFC 8785. custody's log server logs exactly
//! these bytes, so bundles carrying its entries verify in sigstore-go, -python and -js.

use serde_json::{Value, json};

use super::{BodyError, LoggedDigest, LoggedVerifier};
use crate::dsse::Envelope;
use crate::encoding::base64_encode;
use crate::keys::{KeyAlgorithm, PublicKey, SignedData};

/// Why a body could not be built (rekor-tiles would refuse the request for the same reason).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    #[error("the request has an empty {field}")]
    Empty { field: &'static str },
    #[error("key details {key_details:?} are not a Sigstore PublicKeyDetails custody can verify")]
    KeyDetails { key_details: String },
    #[error("key details {key_details:?} do not fit the verifier's {algorithm} key")]
    KeyDetailsMismatch {
        key_details: String,
        algorithm: KeyAlgorithm,
    },
    #[error("verifier {index}: {source}")]
    Verifier { index: usize, source: BodyError },
    #[error("DSSE signature {index} is not verified by any of the request's verifiers")]
    UnverifiedSignature { index: usize },
    #[error("the body has no canonical JSON form: {0}")]
    Canonical(#[from] crate::jcs::JcsError),
}

/// `hashedrekord` 0.0.2 body for a signature over `digest` by `verifier`.
///
/// For a DSSE envelope logged as hashedrekord (rekor-v2 spec §6.1.4), `digest` is
/// SHA-256(PAE(payloadType, payload)) and `signature` the envelope's signature.
pub fn hashed_rekord_v002(
    digest: &LoggedDigest,
    signature: &[u8],
    verifier: &LoggedVerifier,
    key_details: &str,
) -> Result<Vec<u8>, BuildError> {
    if digest.value.is_empty() {
        return Err(BuildError::Empty { field: "digest" });
    }
    if signature.is_empty() {
        return Err(BuildError::Empty { field: "signature" });
    }
    checked_key(verifier, key_details, 0)?;
    let spec = json!({ "hashedRekordV002": {
        "data": digest_json(digest),
        "signature": signature_json(signature, verifier, key_details),
    }});
    entry("hashedrekord", spec)
}

/// `dsse` 0.0.2 body for an envelope and the verifiers the request names. As rekor-tiles does,
/// every envelope signature must verify over PAE under one of the verifiers; signatures are
/// listed verifier by verifier, in the order given.
pub fn dsse_v002(
    envelope: &Envelope,
    verifiers: &[(LoggedVerifier, String)],
) -> Result<Vec<u8>, BuildError> {
    if verifiers.is_empty() {
        return Err(BuildError::Empty { field: "verifiers" });
    }
    if envelope.signatures.is_empty() {
        return Err(BuildError::Empty {
            field: "envelope signatures",
        });
    }
    let pae = envelope.pae();
    let mut unverified: Vec<bool> = vec![true; envelope.signatures.len()];
    let mut signatures = Vec::new();
    for (index, (verifier, key_details)) in verifiers.iter().enumerate() {
        let key = checked_key(verifier, key_details, index)?;
        for (i, sig) in envelope.signatures.iter().enumerate() {
            if unverified[i] && key.verify(SignedData::Message(&pae), &sig.sig).is_ok() {
                unverified[i] = false;
                signatures.push(signature_json(&sig.sig, verifier, key_details));
            }
        }
    }
    if let Some(index) = unverified.iter().position(|u| *u) {
        return Err(BuildError::UnverifiedSignature { index });
    }
    let payload_hash = LoggedDigest {
        algorithm: crate::bundle::HashAlgorithm::Sha2_256,
        value: crate::digest::Sha256Digest::of(&envelope.payload)
            .0
            .to_vec(),
    };
    let spec = json!({ "dsseV002": {
        "payloadHash": digest_json(&payload_hash),
        "signatures": signatures,
    }});
    entry("dsse", spec)
}

/// The verifier's key, checked against its key details (rekor-tiles `verifier.Validate`).
fn checked_key(
    verifier: &LoggedVerifier,
    key_details: &str,
    index: usize,
) -> Result<PublicKey, BuildError> {
    let algorithm = KeyAlgorithm::from_sigstore_key_details(key_details).ok_or_else(|| {
        BuildError::KeyDetails {
            key_details: key_details.to_owned(),
        }
    })?;
    let key = verifier
        .public_key()
        .map_err(|source| BuildError::Verifier { index, source })?;
    let found = key.algorithm();
    key.with_algorithm(algorithm)
        .map_err(|_| BuildError::KeyDetailsMismatch {
            key_details: key_details.to_owned(),
            algorithm: found,
        })
}

fn entry(kind: &str, spec: Value) -> Result<Vec<u8>, BuildError> {
    let entry = json!({ "apiVersion": "0.0.2", "kind": kind, "spec": spec });
    Ok(crate::jcs::canonicalize(&entry)?.into_bytes())
}

fn digest_json(digest: &LoggedDigest) -> Value {
    json!({ "algorithm": digest.algorithm.as_str(), "digest": base64_encode(&digest.value) })
}

fn signature_json(signature: &[u8], verifier: &LoggedVerifier, key_details: &str) -> Value {
    let material = match verifier {
        LoggedVerifier::PublicKey(spki) => {
            json!({ "publicKey": { "rawBytes": base64_encode(spki) } })
        }
        LoggedVerifier::Certificate(der) => {
            json!({ "x509Certificate": { "rawBytes": base64_encode(der) } })
        }
    };
    let mut verifier = material;
    if let Value::Object(map) = &mut verifier {
        map.insert(
            "keyDetails".to_owned(),
            Value::String(key_details.to_owned()),
        );
    }
    json!({ "content": base64_encode(signature), "verifier": verifier })
}
