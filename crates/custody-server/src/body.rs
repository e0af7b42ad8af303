//! The entry bodies rekor-tiles logs (`hashedrekord` and `dsse` 0.0.2): protobuf-JSON made
//! canonical with RFC 8785.
//!
//! Interim builder until `custody_core::rekor::{hashed_rekord_v002, dsse_v002}` lands on
//! main: every key below is ASCII and written in sorted order, every string value is base64 or
//! an enum name (no escapes), so the compact `serde_json` output *is* the RFC 8785 form.

use custody_core::digest::Sha256Digest;
use custody_core::encoding::base64_encode;
use serde_json::{Value, json};

use crate::request::Verifier;

/// The key material an entry names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Material {
    /// DER SubjectPublicKeyInfo.
    PublicKey(Vec<u8>),
    /// DER X.509 certificate.
    Certificate(Vec<u8>),
}

/// `{"apiVersion":"0.0.2","kind":"hashedrekord","spec":{"hashedRekordV002":{...}}}`.
pub fn hashed_rekord_v002(digest: &[u8; 32], signature: &[u8], verifier: &Verifier) -> Vec<u8> {
    let spec = json!({ "hashedRekordV002": {
        "data": { "algorithm": "SHA2_256", "digest": base64_encode(digest) },
        "signature": signature_json(signature, verifier),
    }});
    entry("hashedrekord", spec)
}

/// `{"apiVersion":"0.0.2","kind":"dsse","spec":{"dsseV002":{...}}}`: the payload hash and each
/// signature with the verifier that verified it, in envelope order.
pub fn dsse_v002(payload: &[u8], signatures: &[(&[u8], &Verifier)]) -> Vec<u8> {
    let payload_hash = Sha256Digest::of(payload);
    let spec = json!({ "dsseV002": {
        "payloadHash": { "algorithm": "SHA2_256", "digest": base64_encode(payload_hash.as_bytes()) },
        "signatures": signatures.iter().map(|(sig, v)| signature_json(sig, v)).collect::<Vec<_>>(),
    }});
    entry("dsse", spec)
}

fn entry(kind: &str, spec: Value) -> Vec<u8> {
    let entry = json!({ "apiVersion": "0.0.2", "kind": kind, "spec": spec });
    // Serializing a Value built from strings cannot fail.
    serde_json::to_vec(&entry).unwrap_or_default()
}

fn signature_json(signature: &[u8], verifier: &Verifier) -> Value {
    let material = match &verifier.material {
        Material::PublicKey(der) => ("publicKey", base64_encode(der)),
        Material::Certificate(der) => ("x509Certificate", base64_encode(der)),
    };
    let mut v = serde_json::Map::new();
    v.insert("keyDetails".to_owned(), Value::String(verifier.key_details.clone()));
    v.insert(material.0.to_owned(), json!({ "rawBytes": material.1 }));
    json!({ "content": base64_encode(signature), "verifier": Value::Object(v) })
}
