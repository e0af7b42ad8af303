//! The Rekor v2 write request (`POST /api/v2/log/entries`, rekor-tiles `CreateEntryRequest`):
//! parse it, verify its signatures, and only then build the entry body the log records.
//!
//! ```json
//! {"hashedRekordRequestV002": {"digest": "<b64>", "signature": {"content": "<b64>",
//!   "verifier": {"publicKey": {"rawBytes": "<b64 DER SPKI>"}, "keyDetails": "PKIX_ECDSA_P256_SHA_256"}}}}
//! {"dsseRequestV002": {"envelope": {"payload": "<b64>", "payloadType": "...",
//!   "signatures": [{"sig": "<b64>", "keyid": ""}]}, "verifiers": [<Verifier>...]}}
//! ```
//! A certificate verifier is `"x509Certificate": {"rawBytes": "<b64 DER>"}`; its key verifies
//! the signature (the certificate chain is the verifier's business, as in rekor-tiles).

use custody_core::bundle::HashAlgorithm;
use custody_core::dsse::Envelope;
use custody_core::encoding::base64_decode_any;
use custody_core::keys::{KeyAlgorithm, PublicKey, SignatureError, SignedData};
use custody_core::rekor::{
    BodyError, BuildError, LoggedDigest, LoggedVerifier, dsse_v002, hashed_rekord_v002,
};
use serde::Deserialize;

/// Why a request was refused (HTTP 400); nothing was logged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    #[error("the request is not valid JSON of a Rekor v2 CreateEntryRequest: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the request must hold exactly one of `hashedRekordRequestV002` and `dsseRequestV002`")]
    Kind,
    #[error("`{field}` is not valid base64")]
    Base64 { field: &'static str },
    #[error("`{field}` is empty")]
    Empty { field: &'static str },
    #[error("the digest has {len} bytes; a SHA2_256 digest has 32")]
    DigestLength { len: usize },
    #[error("verifier {index}: needs exactly one of `publicKey` and `x509Certificate`")]
    VerifierMaterial { index: usize },
    #[error("verifier {index}: key details {name:?} are not a PublicKeyDetails custody verifies")]
    KeyDetails { index: usize, name: String },
    #[error("verifier {index}: {source}")]
    Key {
        index: usize,
        #[source]
        source: BodyError,
    },
    #[error("verifier {index}: key details {name:?} do not fit its {algorithm} key")]
    KeyMismatch {
        index: usize,
        name: String,
        algorithm: KeyAlgorithm,
    },
    #[error("the signature does not verify over the digest with the given key: {0}")]
    Signature(#[source] SignatureError),
    #[error("DSSE envelope: {0}")]
    Envelope(#[from] custody_core::dsse::DsseError),
    /// The Rekor v2 body builder refused (e.g. a DSSE signature no verifier verifies).
    #[error("{0}")]
    Build(#[from] BuildError),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateEntryRequest {
    #[serde(alias = "hashed_rekord_request_v002")]
    hashed_rekord_request_v002: Option<HashedRekordRequest>,
    #[serde(alias = "dsse_request_v002")]
    dsse_request_v002: Option<DsseRequest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HashedRekordRequest {
    digest: String,
    signature: SignatureWire,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignatureWire {
    content: String,
    verifier: VerifierWire,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VerifierWire {
    #[serde(alias = "public_key")]
    public_key: Option<RawBytes>,
    #[serde(alias = "x509_certificate")]
    x509_certificate: Option<RawBytes>,
    #[serde(alias = "key_details")]
    key_details: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytes {
    #[serde(alias = "raw_bytes")]
    raw_bytes: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DsseRequest {
    envelope: serde_json::Value,
    verifiers: Vec<VerifierWire>,
}

/// A verifier from a request, with its key parsed and checked against its key details.
#[derive(Debug, Clone)]
pub struct Verifier {
    /// What the request named: a DER SPKI or a DER certificate.
    pub material: LoggedVerifier,
    /// The `PublicKeyDetails` name.
    pub key_details: String,
    /// The key that verifies.
    pub key: PublicKey,
}

/// A request whose signatures verified, and the exact body bytes the log will record.
#[derive(Debug, Clone)]
pub struct Admitted {
    /// `hashedrekord` or `dsse`.
    pub kind: &'static str,
    /// `0.0.2`.
    pub version: &'static str,
    /// The canonical entry body (RFC 8785 JSON), the leaf the log hashes.
    pub body: Vec<u8>,
}

/// Parses a request, verifies every signature in it, and builds the entry body.
pub fn admit(json: &[u8]) -> Result<Admitted, RequestError> {
    let request: CreateEntryRequest = serde_json::from_slice(json)?;
    match (
        request.hashed_rekord_request_v002,
        request.dsse_request_v002,
    ) {
        (Some(hashed), None) => admit_hashed_rekord(hashed),
        (None, Some(dsse)) => admit_dsse(dsse),
        _ => Err(RequestError::Kind),
    }
}

fn admit_hashed_rekord(request: HashedRekordRequest) -> Result<Admitted, RequestError> {
    let digest = decode(&request.digest, "hashedRekordRequestV002.digest")?;
    let digest: [u8; 32] = digest
        .as_slice()
        .try_into()
        .map_err(|_| RequestError::DigestLength { len: digest.len() })?;
    let signature = decode(
        &request.signature.content,
        "hashedRekordRequestV002.signature.content",
    )?;
    let verifier = verifier(&request.signature.verifier, 0)?;
    // Verify before anything is logged: the digest is signed directly (prehashed).
    verifier
        .key
        .verify(SignedData::Sha256Digest(&digest), &signature)
        .map_err(RequestError::Signature)?;
    let logged = LoggedDigest {
        algorithm: HashAlgorithm::Sha2_256,
        value: digest.to_vec(),
    };
    let body = hashed_rekord_v002(
        &logged,
        &signature,
        &verifier.material,
        &verifier.key_details,
    )?;
    Ok(Admitted {
        kind: "hashedrekord",
        version: "0.0.2",
        body,
    })
}

fn admit_dsse(request: DsseRequest) -> Result<Admitted, RequestError> {
    let envelope = Envelope::from_json(&serde_json::to_vec(&request.envelope)?)?;
    if envelope.signatures.is_empty() {
        return Err(RequestError::Empty {
            field: "dsseRequestV002.envelope.signatures",
        });
    }
    if request.verifiers.is_empty() {
        return Err(RequestError::Empty {
            field: "dsseRequestV002.verifiers",
        });
    }
    let verifiers = request
        .verifiers
        .iter()
        .enumerate()
        .map(|(i, v)| verifier(v, i))
        .collect::<Result<Vec<_>, _>>()?;
    // rekor-tiles: every envelope signature must verify over PAE under one of the verifiers;
    // the builder checks that before it builds the body, and refuses otherwise.
    let verifiers: Vec<(LoggedVerifier, String)> = verifiers
        .into_iter()
        .map(|v| (v.material, v.key_details))
        .collect();
    Ok(Admitted {
        kind: "dsse",
        version: "0.0.2",
        body: dsse_v002(&envelope, &verifiers)?,
    })
}

fn verifier(wire: &VerifierWire, index: usize) -> Result<Verifier, RequestError> {
    let algorithm =
        KeyAlgorithm::from_sigstore_key_details(&wire.key_details).ok_or_else(|| {
            RequestError::KeyDetails {
                index,
                name: wire.key_details.clone(),
            }
        })?;
    let material = match (&wire.public_key, &wire.x509_certificate) {
        (Some(key), None) => {
            LoggedVerifier::PublicKey(decode(&key.raw_bytes, "verifier.publicKey.rawBytes")?)
        }
        (None, Some(cert)) => LoggedVerifier::Certificate(decode(
            &cert.raw_bytes,
            "verifier.x509Certificate.rawBytes",
        )?),
        _ => return Err(RequestError::VerifierMaterial { index }),
    };
    let key = material
        .public_key()
        .map_err(|source| RequestError::Key { index, source })?;
    let found = key.algorithm();
    let key = key
        .with_algorithm(algorithm)
        .map_err(|_| RequestError::KeyMismatch {
            index,
            name: wire.key_details.clone(),
            algorithm: found,
        })?;
    Ok(Verifier {
        material,
        key_details: wire.key_details.clone(),
        key,
    })
}

fn decode(text: &str, field: &'static str) -> Result<Vec<u8>, RequestError> {
    let bytes = base64_decode_any(text).map_err(|_| RequestError::Base64 { field })?;
    if bytes.is_empty() {
        return Err(RequestError::Empty { field });
    }
    Ok(bytes)
}
