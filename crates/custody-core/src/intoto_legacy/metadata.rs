//! The signature wrappers of in-toto legacy metadata: the classic Metablock
//! `{"signed", "signatures": [{"keyid", "sig": HEX}]}` over the canonical JSON of `signed`,
//! and a DSSE envelope (`payloadType: application/vnd.in-toto+json`, base64 signatures over
//! the PAE of the payload bytes). SPECS §2.2; python in-toto `models/metadata.py`.
//!
//! [`Metadata`] is unverified: its payload is only handed out by [`Metadata::verify`].

use serde_json::{Value, json};

use super::canonical;
use super::error::{MetadataError, VerifyError};
use super::key::SslibKey;
use crate::dsse::{self, Envelope, EnvelopeSignature, IN_TOTO_PAYLOAD_TYPE};
use crate::keys::{KeyError, SignedData, SigningKey};

/// One signature of a Metablock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetablockSignature {
    pub keyid: String,
    pub sig: Vec<u8>,
    /// A GPG signature (`signature` + `other_headers`, no `sig`): kept only to name it;
    /// custody never verifies one.
    pub gpg: bool,
}

/// A parsed, **unverified** link or layout in either wrapper.
#[derive(Debug, Clone)]
pub enum Metadata {
    /// Classic: `signed` is kept as the JSON value read, canonicalised only to verify.
    Metablock {
        signed: Value,
        signatures: Vec<MetablockSignature>,
    },
    /// DSSE: `payload` is the JSON the envelope's payload bytes decode to.
    Envelope { envelope: Envelope, payload: Value },
}

impl Metadata {
    /// Parses either wrapper, dispatching as python in-toto does: `payload` with the in-toto
    /// payload type is DSSE, else `signed` is a Metablock.
    pub fn from_json(bytes: &[u8]) -> Result<Self, MetadataError> {
        let doc: Value = serde_json::from_slice(bytes).map_err(MetadataError::Json)?;
        if doc.get("payload").is_some() {
            if doc.get("payloadType").and_then(Value::as_str) != Some(IN_TOTO_PAYLOAD_TYPE) {
                return Err(MetadataError::UnknownWrapper);
            }
            let envelope = Envelope::from_json(bytes).map_err(MetadataError::Dsse)?;
            let payload: Value =
                serde_json::from_slice(&envelope.payload).map_err(MetadataError::Json)?;
            return Ok(Self::Envelope { envelope, payload });
        }
        let Some(signed) = doc.get("signed") else {
            return Err(MetadataError::UnknownWrapper);
        };
        if !signed.is_object() {
            return Err(MetadataError::UnknownWrapper);
        }
        let list = match doc.get("signatures") {
            None => &Vec::new(),
            Some(Value::Array(list)) => list,
            Some(_) => {
                return Err(MetadataError::Signature {
                    index: 0,
                    reason: "`signatures` is not a list",
                });
            }
        };
        let mut signatures = Vec::with_capacity(list.len());
        for (index, s) in list.iter().enumerate() {
            let bad = |reason| MetadataError::Signature { index, reason };
            let keyid = s
                .get("keyid")
                .and_then(Value::as_str)
                .ok_or(bad("no `keyid` string"))?;
            if s.get("sig").is_none() && s.get("signature").is_some() {
                signatures.push(MetablockSignature {
                    keyid: keyid.to_string(),
                    sig: Vec::new(),
                    gpg: true,
                });
                continue;
            }
            let sig = s
                .get("sig")
                .and_then(Value::as_str)
                .ok_or(bad("no `sig` string"))?;
            let sig = hex::decode(sig).map_err(|_| bad("`sig` is not hex"))?;
            signatures.push(MetablockSignature {
                keyid: keyid.to_string(),
                sig,
                gpg: false,
            });
        }
        Ok(Self::Metablock {
            signed: signed.clone(),
            signatures,
        })
    }

    /// The unverified payload's `_type` (`link` or `layout`), for dispatch only.
    pub fn payload_type(&self) -> Option<&str> {
        self.unverified_payload()
            .get("_type")
            .and_then(Value::as_str)
    }

    fn unverified_payload(&self) -> &Value {
        match self {
            Self::Metablock { signed, .. } => signed,
            Self::Envelope { payload, .. } => payload,
        }
    }

    /// Checks the signature made with `key` and returns the payload it covers.
    ///
    /// As python in-toto (and securesystemslib for DSSE): the signature is the one whose
    /// `keyid` is one of `keyids`; none → "No signature found for key", a bad one → "Invalid
    /// signature for keyid".
    pub fn verify(&self, key: &SslibKey, keyids: &[String]) -> Result<&Value, VerifyError> {
        let mine = |keyid: &str| keyids.iter().any(|k| k == keyid);
        let (message, sigs): (Vec<u8>, Vec<&[u8]>) = match self {
            Self::Metablock { signed, signatures } => {
                let sigs: Vec<&[u8]> = signatures
                    .iter()
                    .filter(|s| !s.gpg && mine(&s.keyid))
                    .map(|s| s.sig.as_slice())
                    .collect();
                // Signed with GPG only: say so rather than "no signature for this key".
                if let (true, Some(gpg)) = (sigs.is_empty(), signatures.iter().find(|s| s.gpg)) {
                    return Err(VerifyError::Malformed {
                        file: "signatures".into(),
                        source: MetadataError::Gpg {
                            what: "the signature by key",
                            keyid: gpg.keyid.clone(),
                        },
                    });
                }
                let bytes = canonical::encode(signed).map_err(|e| VerifyError::Malformed {
                    file: "signed".into(),
                    source: MetadataError::Canonical(e),
                })?;
                (bytes, sigs)
            }
            Self::Envelope { envelope, .. } => {
                let sigs = envelope
                    .signatures
                    .iter()
                    .filter(|s| mine(&s.keyid))
                    .map(|s| s.sig.as_slice())
                    .collect();
                (envelope.pae(), sigs)
            }
        };
        if sigs.is_empty() {
            return Err(VerifyError::NoSignatureForKey {
                keyid: key.keyid.clone(),
            });
        }
        if sigs.iter().any(|sig| {
            key.public
                .verify(SignedData::Message(&message), sig)
                .is_ok()
        }) {
            Ok(self.unverified_payload())
        } else {
            Err(VerifyError::InvalidSignature {
                keyid: key.keyid.clone(),
            })
        }
    }
}

/// Signs `signed` (a link or layout value) as a classic Metablock; returns the file's JSON.
pub fn sign_metablock(signed: &Value, key: &SigningKey, keyid: &str) -> Result<String, SignError> {
    let bytes =
        canonical::encode(signed).map_err(|e| SignError::Metadata(MetadataError::Canonical(e)))?;
    let sig = key
        .sign(SignedData::Message(&bytes))
        .map_err(SignError::Key)?;
    let doc = json!({"signatures": [{"keyid": keyid, "sig": hex::encode(sig)}], "signed": signed});
    serde_json::to_string_pretty(&doc).map_err(|e| SignError::Metadata(MetadataError::Json(e)))
}

/// Signs `signed` in a DSSE envelope whose payload is its sorted, compact JSON.
pub fn sign_envelope(signed: &Value, key: &SigningKey, keyid: &str) -> Result<String, SignError> {
    let payload = canonical::encode_json(signed)
        .map_err(|e| SignError::Metadata(MetadataError::Canonical(e)))?;
    let pae = dsse::pae(IN_TOTO_PAYLOAD_TYPE, &payload);
    let sig = key
        .sign(SignedData::Message(&pae))
        .map_err(SignError::Key)?;
    let mut envelope = Envelope::new(IN_TOTO_PAYLOAD_TYPE, payload);
    envelope.signatures.push(EnvelopeSignature {
        keyid: keyid.to_string(),
        sig,
    });
    Ok(envelope.to_json())
}

/// Why metadata could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error(transparent)]
    Metadata(MetadataError),
    #[error("signing failed: {0}")]
    Key(#[source] KeyError),
}
