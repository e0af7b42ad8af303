//! The Rekor v2 write request (`POST /api/v2/log/entries`, rekor-tiles `CreateEntryRequest`),
//! both sides: clients build a typed [`CreateEntryRequest`] and serialize it; the log parses a
//! request, verifies its signatures, and only then builds the entry body it records
//! ([`admit`] for JSON, [`CreateEntryRequest::admit`] in process).
//!
//! ```json
//! {"hashedRekordRequestV002": {"digest": "<b64>", "signature": {"content": "<b64>",
//!   "verifier": {"publicKey": {"rawBytes": "<b64 DER SPKI>"}, "keyDetails": "PKIX_ECDSA_P256_SHA_256"}}}}
//! {"dsseRequestV002": {"envelope": {"payload": "<b64>", "payloadType": "...",
//!   "signatures": [{"sig": "<b64>", "keyid": ""}]}, "verifiers": [<Verifier>...]}}
//! ```
//! A certificate verifier is `"x509Certificate": {"rawBytes": "<b64 DER>"}`; its key verifies
//! the signature (the certificate chain is the verifier's business, as in rekor-tiles).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{BodyError, BuildError, LoggedDigest, LoggedVerifier, dsse_v002, hashed_rekord_v002};
use crate::bundle::HashAlgorithm;
use crate::digest::Sha256Digest;
use crate::dsse::{Envelope, EnvelopeWire};
use crate::encoding::{base64_decode_any, base64_encode, base64_encode_into};
use crate::keys::{KeyAlgorithm, PublicKey, SignatureError, SignedData};

/// Why a request was refused (HTTP 400) or could not be built; nothing was logged.
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
    /// Building a request: the key has no Sigstore `PublicKeyDetails` name.
    #[error(
        "key {key_id} has no Sigstore key type (PublicKeyDetails); use an ECDSA, Ed25519 or RSA 2048-4096 key"
    )]
    KeyType { key_id: String },
    #[error("the signature does not verify over the digest with the given key: {0}")]
    Signature(#[source] SignatureError),
    #[error("DSSE envelope: {0}")]
    Envelope(#[from] crate::dsse::DsseError),
    /// The Rekor v2 body builder refused (e.g. a DSSE signature no verifier verifies).
    #[error("{0}")]
    Build(#[from] BuildError),
}

// The wire form, both directions. Parsing borrows the strings from the request where they have
// no JSON escapes (base64 never does); building owns them.
#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RequestWire<'a> {
    #[serde(
        alias = "hashed_rekord_request_v002",
        borrow,
        skip_serializing_if = "Option::is_none"
    )]
    hashed_rekord_request_v002: Option<HashedRekordWire<'a>>,
    #[serde(
        alias = "dsse_request_v002",
        borrow,
        skip_serializing_if = "Option::is_none"
    )]
    dsse_request_v002: Option<DsseWire<'a>>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct HashedRekordWire<'a> {
    #[serde(borrow)]
    digest: Cow<'a, str>,
    #[serde(borrow)]
    signature: SignatureWire<'a>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct SignatureWire<'a> {
    #[serde(borrow)]
    content: Cow<'a, str>,
    #[serde(borrow)]
    verifier: VerifierWire<'a>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct VerifierWire<'a> {
    #[serde(alias = "public_key", borrow, skip_serializing_if = "Option::is_none")]
    public_key: Option<RawBytes<'a>>,
    #[serde(
        alias = "x509_certificate",
        borrow,
        skip_serializing_if = "Option::is_none"
    )]
    x509_certificate: Option<RawBytes<'a>>,
    #[serde(alias = "key_details", borrow)]
    key_details: Cow<'a, str>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct RawBytes<'a> {
    #[serde(alias = "raw_bytes", borrow)]
    raw_bytes: Cow<'a, str>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct DsseWire<'a> {
    envelope: EnvelopeWire,
    #[serde(borrow)]
    verifiers: Vec<VerifierWire<'a>>,
}

/// A Rekor v2 `CreateEntryRequest`, decoded: what a client builds with
/// [`CreateEntryRequest::hashed_rekord`] / [`CreateEntryRequest::dsse`] and sends with
/// [`CreateEntryRequest::to_json`], and what [`CreateEntryRequest::parse`] reads back. Parsing
/// checks the form (base64, lengths, key material against key details), not the signatures:
/// [`CreateEntryRequest::admit`] and [`admit`] do that.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CreateEntryRequest {
    /// `hashedRekordRequestV002`: a signature over a SHA-256 digest.
    HashedRekord(HashedRekordRequest),
    /// `dsseRequestV002`: a DSSE envelope and the keys that signed it.
    Dsse(DsseRequest),
}

/// `hashedRekordRequestV002`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashedRekordRequest {
    pub digest: [u8; 32],
    pub signature: Vec<u8>,
    pub verifier: RequestVerifier,
}

/// `dsseRequestV002`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsseRequest {
    pub envelope: Envelope,
    pub verifiers: Vec<RequestVerifier>,
}

/// A request's `Verifier`: key material and its `PublicKeyDetails` name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestVerifier {
    pub material: LoggedVerifier,
    pub key_details: String,
}

impl RequestVerifier {
    /// The verifier naming `key` by its DER SPKI.
    pub fn for_key(key: &PublicKey) -> Result<Self, RequestError> {
        let key_details = key
            .sigstore_key_details()
            .ok_or_else(|| RequestError::KeyType {
                key_id: key.key_id().to_string(),
            })?;
        Ok(Self {
            material: LoggedVerifier::PublicKey(key.spki_der().to_vec()),
            key_details: key_details.to_owned(),
        })
    }

    fn wire(&self) -> VerifierWire<'static> {
        let raw = |der: &[u8]| RawBytes {
            raw_bytes: Cow::Owned(base64_encode(der)),
        };
        let (public_key, x509_certificate) = match &self.material {
            LoggedVerifier::PublicKey(der) => (Some(raw(der)), None),
            LoggedVerifier::Certificate(der) => (None, Some(raw(der))),
        };
        VerifierWire {
            public_key,
            x509_certificate,
            key_details: Cow::Owned(self.key_details.clone()),
        }
    }

    fn key(&self, index: usize) -> Result<PublicKey, RequestError> {
        checked_key(&self.material, &self.key_details, index)
    }
}

impl CreateEntryRequest {
    /// A `hashedrekord` request for `signature` over `digest` by `key` (as `custody sign --log`
    /// sends it).
    pub fn hashed_rekord(
        digest: &Sha256Digest,
        signature: Vec<u8>,
        key: &PublicKey,
    ) -> Result<Self, RequestError> {
        Ok(Self::HashedRekord(HashedRekordRequest {
            digest: digest.0,
            signature,
            verifier: RequestVerifier::for_key(key)?,
        }))
    }

    /// A `dsse` request for `envelope`, signed by `key`.
    pub fn dsse(envelope: Envelope, key: &PublicKey) -> Result<Self, RequestError> {
        Ok(Self::Dsse(DsseRequest {
            envelope,
            verifiers: vec![RequestVerifier::for_key(key)?],
        }))
    }

    /// The request as JSON (protobuf-JSON field names, standard base64).
    pub fn to_json(&self) -> Vec<u8> {
        let wire = match self {
            Self::HashedRekord(h) => RequestWire {
                hashed_rekord_request_v002: Some(HashedRekordWire {
                    digest: Cow::Owned(base64_encode(&h.digest)),
                    signature: SignatureWire {
                        content: Cow::Owned(base64_encode(&h.signature)),
                        verifier: h.verifier.wire(),
                    },
                }),
                dsse_request_v002: None,
            },
            Self::Dsse(d) => RequestWire {
                hashed_rekord_request_v002: None,
                dsse_request_v002: Some(DsseWire {
                    envelope: d.envelope.to_wire(),
                    verifiers: d.verifiers.iter().map(RequestVerifier::wire).collect(),
                }),
            },
        };
        // Strings, vectors and options of them always serialize.
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    /// Parses a request and checks its form; see the type's documentation.
    pub fn parse(json: &[u8]) -> Result<Self, RequestError> {
        let wire: RequestWire = serde_json::from_slice(json)?;
        match (wire.hashed_rekord_request_v002, wire.dsse_request_v002) {
            (Some(hashed), None) => {
                let (digest, signature) = hashed_parts(&hashed)?;
                let verifier = verifier(&hashed.signature.verifier, 0)?;
                Ok(Self::HashedRekord(HashedRekordRequest {
                    digest,
                    signature,
                    verifier: RequestVerifier {
                        material: verifier.material,
                        key_details: verifier.key_details,
                    },
                }))
            }
            (None, Some(dsse)) => Ok(Self::Dsse(dsse_request(dsse)?)),
            _ => Err(RequestError::Kind),
        }
    }

    /// Verifies every signature and builds the entry body: what a log does with the JSON form
    /// in [`admit`], for a log in the same process (no JSON in between).
    pub fn admit(&self) -> Result<Admitted, RequestError> {
        match self {
            Self::HashedRekord(h) => {
                let key = h.verifier.key(0)?;
                key.verify(SignedData::Sha256Digest(&h.digest), &h.signature)
                    .map_err(RequestError::Signature)?;
                let logged = LoggedDigest {
                    algorithm: HashAlgorithm::Sha2_256,
                    value: h.digest.to_vec(),
                };
                let body = hashed_rekord_v002(
                    &logged,
                    &h.signature,
                    &h.verifier.material,
                    &h.verifier.key_details,
                )?;
                Ok(Admitted::hashed_rekord(body))
            }
            Self::Dsse(d) => admit_dsse(d),
        }
    }
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
    /// The canonical entry body (RFC 8785 JSON), the leaf the log hashes (shared with the
    /// log's queue, not copied).
    pub body: Arc<[u8]>,
}

impl Admitted {
    fn hashed_rekord(body: Vec<u8>) -> Self {
        Self {
            kind: "hashedrekord",
            version: "0.0.2",
            body: body.into(),
        }
    }
}

/// Parses a request, verifies every signature in it, and builds the entry body (the log's
/// write path: `POST /api/v2/log/entries`).
pub fn admit(json: &[u8]) -> Result<Admitted, RequestError> {
    let request: RequestWire = serde_json::from_slice(json)?;
    match (
        request.hashed_rekord_request_v002,
        request.dsse_request_v002,
    ) {
        (Some(hashed), None) => admit_hashed_rekord(&hashed),
        (None, Some(dsse)) => admit_dsse(&dsse_request(dsse)?),
        _ => Err(RequestError::Kind),
    }
}

fn hashed_parts(request: &HashedRekordWire<'_>) -> Result<([u8; 32], Vec<u8>), RequestError> {
    let digest = decode(&request.digest, "hashedRekordRequestV002.digest")?;
    let digest: [u8; 32] = digest
        .as_slice()
        .try_into()
        .map_err(|_| RequestError::DigestLength { len: digest.len() })?;
    let signature = decode(
        &request.signature.content,
        "hashedRekordRequestV002.signature.content",
    )?;
    Ok((digest, signature))
}

fn admit_hashed_rekord(request: &HashedRekordWire<'_>) -> Result<Admitted, RequestError> {
    let (digest, signature) = hashed_parts(request)?;
    let verifier = cached_verifier(&request.signature.verifier, 0)?;
    // Verify before anything is logged: the digest is signed directly (prehashed). Always:
    // only the parsed key is cached, never a verdict.
    verifier
        .verifier
        .key
        .verify(SignedData::Sha256Digest(&digest), &signature)
        .map_err(RequestError::Signature)?;
    let body = hashed_rekord_body(&digest, &signature, &verifier)?;
    Ok(Admitted::hashed_rekord(body))
}

/// The `hashedrekord` 0.0.2 body, written directly in its RFC 8785 form (keys sorted, no
/// whitespace; every value is base64 or a `PublicKeyDetails` name, which need no escaping):
/// byte for byte what [`hashed_rekord_v002`] builds (a test compares them), without parsing the
/// key again or building a JSON tree. Anything unusual goes through the builder.
fn hashed_rekord_body(
    digest: &[u8; 32],
    signature: &[u8],
    verifier: &CachedVerifier,
) -> Result<Vec<u8>, RequestError> {
    let plain = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if signature.is_empty() || !plain(&verifier.verifier.key_details) {
        let logged = LoggedDigest {
            algorithm: HashAlgorithm::Sha2_256,
            value: digest.to_vec(),
        };
        let v = &verifier.verifier;
        return Ok(hashed_rekord_v002(
            &logged,
            signature,
            &v.material,
            &v.key_details,
        )?);
    }
    let material = match verifier.verifier.material {
        LoggedVerifier::PublicKey(_) => "publicKey",
        LoggedVerifier::Certificate(_) => "x509Certificate",
    };
    let mut body = String::with_capacity(
        320 + 4 * (digest.len() + signature.len()) / 3 + verifier.material_base64.len(),
    );
    body.push_str(
        r#"{"apiVersion":"0.0.2","kind":"hashedrekord","spec":{"hashedRekordV002":{"data":{"algorithm":"SHA2_256","digest":""#,
    );
    base64_encode_into(digest, &mut body);
    body.push_str(r#""},"signature":{"content":""#);
    base64_encode_into(signature, &mut body);
    for part in [
        r#"","verifier":{"keyDetails":""#,
        &verifier.verifier.key_details,
        r#"",""#,
        material,
        r#"":{"rawBytes":""#,
        &verifier.material_base64,
        r#""}}}}}}"#,
    ] {
        body.push_str(part);
    }
    Ok(body.into_bytes())
}

/// A verifier parsed from a request, kept for the next request naming the same key.
struct CachedVerifier {
    /// Whether the material was sent as `x509Certificate` (else `publicKey`).
    certificate: bool,
    verifier: Verifier,
    /// The material as the body logs it: standard padded base64 of the DER.
    material_base64: String,
}

/// Parsed verifiers kept per admission thread (no lock). Repeated signers are the common case,
/// and parsing a key (DER, then point validation in aws-lc) is work every request would
/// repeat. A hit must match everything the parse reads: the material's base64 text exactly as
/// sent (the map key), its kind and the key details; so it is the verifier the parse would
/// give. No verification result is ever cached. Bounded: emptied when full.
const VERIFIER_CACHE_ENTRIES: usize = 1024;

thread_local! {
    static VERIFIERS: RefCell<HashMap<String, Arc<CachedVerifier>>> =
        RefCell::new(HashMap::new());
}

fn cached_verifier(
    wire: &VerifierWire<'_>,
    index: usize,
) -> Result<Arc<CachedVerifier>, RequestError> {
    let cache_key = match (&wire.public_key, &wire.x509_certificate) {
        (Some(key), None) => Some((false, &*key.raw_bytes)),
        (None, Some(cert)) => Some((true, &*cert.raw_bytes)),
        _ => None,
    };
    if let Some((certificate, text)) = cache_key {
        let hit = VERIFIERS.with(|c| {
            c.borrow()
                .get(text)
                .filter(|v| {
                    v.certificate == certificate && v.verifier.key_details == wire.key_details
                })
                .cloned()
        });
        if let Some(hit) = hit {
            return Ok(hit);
        }
    }
    let verifier = verifier(wire, index)?;
    let material_base64 = match &verifier.material {
        LoggedVerifier::PublicKey(der) | LoggedVerifier::Certificate(der) => base64_encode(der),
    };
    let parsed = Arc::new(CachedVerifier {
        certificate: matches!(verifier.material, LoggedVerifier::Certificate(_)),
        verifier,
        material_base64,
    });
    if let Some((_, text)) = cache_key {
        VERIFIERS.with(|c| {
            let mut cache = c.borrow_mut();
            if cache.len() >= VERIFIER_CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(text.to_owned(), parsed.clone());
        });
    }
    Ok(parsed)
}

fn dsse_request(wire: DsseWire<'_>) -> Result<DsseRequest, RequestError> {
    let envelope = Envelope::from_wire(wire.envelope)?;
    if envelope.signatures.is_empty() {
        return Err(RequestError::Empty {
            field: "dsseRequestV002.envelope.signatures",
        });
    }
    if wire.verifiers.is_empty() {
        return Err(RequestError::Empty {
            field: "dsseRequestV002.verifiers",
        });
    }
    let verifiers = wire
        .verifiers
        .iter()
        .enumerate()
        .map(|(i, v)| {
            verifier(v, i).map(|v| RequestVerifier {
                material: v.material,
                key_details: v.key_details,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DsseRequest {
        envelope,
        verifiers,
    })
}

fn admit_dsse(request: &DsseRequest) -> Result<Admitted, RequestError> {
    if request.envelope.signatures.is_empty() {
        return Err(RequestError::Empty {
            field: "dsseRequestV002.envelope.signatures",
        });
    }
    // rekor-tiles: every envelope signature must verify over PAE under one of the verifiers;
    // the builder checks that before it builds the body, and refuses otherwise.
    let verifiers: Vec<(LoggedVerifier, String)> = request
        .verifiers
        .iter()
        .map(|v| (v.material.clone(), v.key_details.clone()))
        .collect();
    Ok(Admitted {
        kind: "dsse",
        version: "0.0.2",
        body: dsse_v002(&request.envelope, &verifiers)?.into(),
    })
}

fn verifier(wire: &VerifierWire<'_>, index: usize) -> Result<Verifier, RequestError> {
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
    let key = checked_key(&material, &wire.key_details, index)?;
    Ok(Verifier {
        material,
        key_details: wire.key_details.to_string(),
        key,
    })
}

/// The key inside `material`, checked against the `PublicKeyDetails` name.
fn checked_key(
    material: &LoggedVerifier,
    key_details: &str,
    index: usize,
) -> Result<PublicKey, RequestError> {
    let algorithm = KeyAlgorithm::from_sigstore_key_details(key_details).ok_or_else(|| {
        RequestError::KeyDetails {
            index,
            name: key_details.to_owned(),
        }
    })?;
    let key = material
        .public_key()
        .map_err(|source| RequestError::Key { index, source })?;
    let found = key.algorithm();
    key.with_algorithm(algorithm)
        .map_err(|_| RequestError::KeyMismatch {
            index,
            name: key_details.to_owned(),
            algorithm: found,
        })
}

fn decode(text: &str, field: &'static str) -> Result<Vec<u8>, RequestError> {
    let bytes = base64_decode_any(text).map_err(|_| RequestError::Base64 { field })?;
    if bytes.is_empty() {
        return Err(RequestError::Empty { field });
    }
    Ok(bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::digest::Sha256Digest;
    use crate::keys::SigningKey;

    use super::*;

    fn request(
        digest: &[u8],
        signature: &[u8],
        material: &str,
        b64: &str,
        details: &str,
    ) -> String {
        format!(
            r#"{{"hashedRekordRequestV002":{{"digest":"{}","signature":{{"content":"{}","verifier":{{"{material}":{{"rawBytes":"{b64}"}},"keyDetails":"{details}"}}}}}}}}"#,
            base64_encode(digest),
            base64_encode(signature),
        )
    }

    /// What the body was before it was written directly: the rekor-tiles builder's bytes.
    fn built(
        digest: &[u8; 32],
        signature: &[u8],
        material: LoggedVerifier,
        details: &str,
    ) -> Vec<u8> {
        let logged = LoggedDigest {
            algorithm: HashAlgorithm::Sha2_256,
            value: digest.to_vec(),
        };
        hashed_rekord_v002(&logged, signature, &material, details).unwrap()
    }

    #[test]
    fn written_body_equals_the_builders_for_every_key_kind() {
        for algorithm in [
            KeyAlgorithm::EcdsaP256Sha256,
            KeyAlgorithm::RsaPkcs1Sha256,
            KeyAlgorithm::RsaPssSha256,
        ] {
            let key = SigningKey::generate(algorithm).unwrap();
            let spki = key.public_key().spki_der().to_vec();
            let details = key.public_key().sigstore_key_details().unwrap();
            for i in 0..3u8 {
                let digest = Sha256Digest::of(&[i]).0;
                let signature = key.sign(SignedData::Sha256Digest(&digest)).unwrap();
                let json = request(
                    &digest,
                    &signature,
                    "publicKey",
                    &base64_encode(&spki),
                    details,
                );
                let admitted = admit(json.as_bytes()).unwrap();
                let want = built(
                    &digest,
                    &signature,
                    LoggedVerifier::PublicKey(spki.clone()),
                    details,
                );
                assert_eq!(&*admitted.body, want.as_slice(), "{algorithm}");
            }
        }
        // A certificate verifier: the builder's body, with the certificate's bytes.
        let cert = include_bytes!("../../tests/fixtures/x509/san-dns-name.der").to_vec();
        let material = LoggedVerifier::Certificate(cert.clone());
        let details = material
            .public_key()
            .unwrap()
            .sigstore_key_details()
            .unwrap();
        let verifier = CachedVerifier {
            certificate: true,
            verifier: Verifier {
                key: material.public_key().unwrap(),
                material: material.clone(),
                key_details: details.to_owned(),
            },
            material_base64: base64_encode(&cert),
        };
        let digest = [7u8; 32];
        let written = hashed_rekord_body(&digest, b"sig", &verifier).unwrap();
        assert_eq!(written, built(&digest, b"sig", material, details));
    }

    #[test]
    fn a_cached_key_still_verifies_every_signature() {
        let key = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let spki = base64_encode(key.public_key().spki_der());
        let details = "PKIX_ECDSA_P256_SHA_256";
        let digest = Sha256Digest::of(b"a").0;
        let signature = key.sign(SignedData::Sha256Digest(&digest)).unwrap();
        let good = request(&digest, &signature, "publicKey", &spki, details);
        admit(good.as_bytes()).unwrap(); // the key is now cached on this thread
        // Same key, another digest: the signature does not verify.
        let other = Sha256Digest::of(b"b").0;
        let forged = request(&other, &signature, "publicKey", &spki, details);
        assert!(matches!(
            admit(forged.as_bytes()),
            Err(RequestError::Signature(_))
        ));
        // Same key text, other key details or material kind: parsed (and refused) again.
        let p384 = request(
            &digest,
            &signature,
            "publicKey",
            &spki,
            "PKIX_ECDSA_P384_SHA_384",
        );
        assert!(matches!(
            admit(p384.as_bytes()),
            Err(RequestError::KeyMismatch { .. })
        ));
        let as_cert = request(&digest, &signature, "x509Certificate", &spki, details);
        assert!(matches!(
            admit(as_cert.as_bytes()),
            Err(RequestError::Key { .. })
        ));
        // And the good request is still admitted, with the same body.
        assert_eq!(
            admit(good.as_bytes()).unwrap().body,
            admit(good.as_bytes()).unwrap().body
        );
    }

    fn signed_digest(key: &SigningKey, text: &[u8]) -> CreateEntryRequest {
        let digest = Sha256Digest::of(text);
        let signature = key.sign(SignedData::Sha256Digest(&digest.0)).unwrap();
        CreateEntryRequest::hashed_rekord(&digest, signature, &key.public_key()).unwrap()
    }

    fn signed_envelope(key: &SigningKey) -> CreateEntryRequest {
        let envelope = crate::dsse::sign_in_toto(key, b"{}".to_vec()).unwrap();
        CreateEntryRequest::dsse(envelope, &key.public_key()).unwrap()
    }

    #[test]
    fn a_built_request_parses_back_and_is_admitted() {
        for algorithm in [KeyAlgorithm::EcdsaP256Sha256, KeyAlgorithm::Ed25519] {
            let key = SigningKey::generate(algorithm).unwrap();
            let mut requests = vec![signed_envelope(&key)];
            if algorithm != KeyAlgorithm::Ed25519 {
                requests.push(signed_digest(&key, b"artifact"));
            }
            for built in requests {
                let json = built.to_json();
                assert_eq!(CreateEntryRequest::parse(&json).unwrap(), built);
                // The JSON path and the in-process path log the same bytes.
                assert_eq!(admit(&json).unwrap().body, built.admit().unwrap().body);
            }
        }
    }

    /// Every field of a built request, changed: refused by the parse or by the admission,
    /// never logged.
    #[test]
    fn each_mutated_field_is_refused() {
        let key = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let other = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let CreateEntryRequest::HashedRekord(good) = signed_digest(&key, b"a") else {
            panic!("not a hashedrekord request");
        };
        let refused = |r: HashedRekordRequest| {
            let request = CreateEntryRequest::HashedRekord(r);
            assert!(request.admit().is_err(), "admitted {request:?}");
            assert!(admit(&request.to_json()).is_err(), "admitted {request:?}");
        };
        let mut r = good.clone();
        r.digest[0] ^= 1;
        refused(r);
        let mut r = good.clone();
        r.signature[5] ^= 1;
        refused(r);
        let mut r = good.clone();
        r.signature.clear();
        refused(r);
        let mut r = good.clone();
        r.verifier = RequestVerifier::for_key(&other.public_key()).unwrap();
        refused(r);
        let mut r = good.clone();
        r.verifier.key_details = "PKIX_ECDSA_P384_SHA_384".into();
        refused(r);
        let mut r = good.clone();
        r.verifier.key_details = "NOT_A_KEY_TYPE".into();
        refused(r);
        let mut r = good.clone();
        r.verifier.material = LoggedVerifier::Certificate(key.public_key().spki_der().to_vec());
        refused(r);

        let CreateEntryRequest::Dsse(good) = signed_envelope(&key) else {
            panic!("not a dsse request");
        };
        let refused = |r: DsseRequest| {
            let request = CreateEntryRequest::Dsse(r);
            assert!(request.admit().is_err(), "admitted {request:?}");
            assert!(admit(&request.to_json()).is_err(), "admitted {request:?}");
        };
        let mut r = good.clone();
        r.envelope.payload.push(b' ');
        refused(r);
        let mut r = good.clone();
        r.envelope.payload_type.push('x');
        refused(r);
        let mut r = good.clone();
        r.envelope.signatures[0].sig[4] ^= 1;
        refused(r);
        let mut r = good.clone();
        r.envelope.signatures.clear();
        refused(r);
        let mut r = good.clone();
        r.verifiers = vec![RequestVerifier::for_key(&other.public_key()).unwrap()];
        refused(r);
        let mut r = good;
        r.verifiers.clear();
        refused(r);
    }

    #[test]
    fn requests_with_two_kinds_or_none_are_refused() {
        let key = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let hashed: serde_json::Value =
            serde_json::from_slice(&signed_digest(&key, b"a").to_json()).unwrap();
        let dsse: serde_json::Value =
            serde_json::from_slice(&signed_envelope(&key).to_json()).unwrap();
        let both = serde_json::json!({
            "hashedRekordRequestV002": hashed["hashedRekordRequestV002"],
            "dsseRequestV002": dsse["dsseRequestV002"],
        });
        let both = serde_json::to_vec(&both).unwrap();
        assert!(matches!(
            CreateEntryRequest::parse(&both),
            Err(RequestError::Kind)
        ));
        assert!(matches!(admit(b"{}"), Err(RequestError::Kind)));
    }
}
