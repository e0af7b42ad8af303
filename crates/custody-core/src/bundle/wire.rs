//! The bundle's protobuf-JSON shape, used in both directions, and the domain → JSON direction.
//! Parsing (JSON → domain, with validation) is in `parse.rs`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::protojson;
use super::{Bundle, BundleContent, Material, TransparencyLogEntry};
use crate::dsse::EnvelopeWire;

#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BundleWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) media_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) verification_material: Option<MaterialWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) message_signature: Option<MessageSignatureWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) dsse_envelope: Option<EnvelopeWire>,
}

#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct MaterialWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) public_key: Option<PublicKeyWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) x509_certificate_chain: Option<ChainWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) certificate: Option<RawBytesWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) tlog_entries: Option<Vec<EntryWire>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) timestamp_verification_data: Option<TimestampsWire>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct PublicKeyWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) hint: Option<String>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct ChainWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) certificates: Option<Vec<RawBytesWire>>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawBytesWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) raw_bytes: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TimestampsWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) rfc3161_timestamps: Option<Vec<SignedTimestampWire>>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SignedTimestampWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) signed_timestamp: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct EntryWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) log_index: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) log_id: Option<LogIdWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) kind_version: Option<KindVersionWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) integrated_time: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) inclusion_promise: Option<PromiseWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) inclusion_proof: Option<ProofWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) canonicalized_body: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct LogIdWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) key_id: Option<String>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct KindVersionWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) version: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PromiseWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) signed_entry_timestamp: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ProofWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) log_index: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) root_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) tree_size: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) hashes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) checkpoint: Option<CheckpointWire>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct CheckpointWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) envelope: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct MessageSignatureWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) message_digest: Option<DigestWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) signature: Option<String>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct DigestWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) algorithm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) digest: Option<String>,
}

// ---- serializing --------------------------------------------------------------------------

fn b64(bytes: &[u8]) -> Option<String> {
    Some(protojson::encode_bytes(bytes))
}

fn nonempty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

pub(super) fn serialize(bundle: &Bundle) -> String {
    // Serializing strings, vectors and JSON values cannot fail.
    serde_json::to_string(&to_wire(bundle)).unwrap_or_default()
}

pub(super) fn to_value(bundle: &Bundle) -> serde_json::Value {
    serde_json::to_value(to_wire(bundle)).unwrap_or_default()
}

fn to_wire(bundle: &Bundle) -> BundleWire {
    let vm = &bundle.verification_material;
    let raw = |der: &Vec<u8>| RawBytesWire {
        raw_bytes: b64(der),
    };
    let mut material = MaterialWire::default();
    match &vm.content {
        Material::PublicKeyHint(hint) => {
            material.public_key = Some(PublicKeyWire {
                hint: nonempty(hint),
            })
        }
        Material::X509CertificateChain(chain) => {
            material.x509_certificate_chain = Some(ChainWire {
                certificates: Some(chain.iter().map(raw).collect()),
            })
        }
        Material::Certificate(der) => material.certificate = Some(raw(der)),
    }
    // proto3 JSON omits empty repeated fields.
    material.tlog_entries =
        (!vm.tlog_entries.is_empty()).then(|| vm.tlog_entries.iter().map(entry_wire).collect());
    material.timestamp_verification_data =
        (!vm.rfc3161_timestamps.is_empty()).then(|| TimestampsWire {
            rfc3161_timestamps: Some(
                vm.rfc3161_timestamps
                    .iter()
                    .map(|t| SignedTimestampWire {
                        signed_timestamp: b64(t),
                    })
                    .collect(),
            ),
        });
    let mut wire = BundleWire {
        media_type: Some(bundle.media_type.clone()),
        verification_material: Some(material),
        ..BundleWire::default()
    };
    match &bundle.content {
        BundleContent::MessageSignature {
            message_digest,
            signature,
        } => {
            wire.message_signature = Some(MessageSignatureWire {
                message_digest: message_digest.as_ref().map(|(alg, digest)| DigestWire {
                    algorithm: Some(alg.as_str().to_string()),
                    digest: b64(digest),
                }),
                signature: b64(signature),
            })
        }
        BundleContent::Dsse(envelope) => wire.dsse_envelope = Some(envelope.to_wire()),
    }
    wire
}

fn entry_wire(e: &TransparencyLogEntry) -> EntryWire {
    EntryWire {
        log_index: protojson::encode_int64(e.log_index),
        log_id: Some(LogIdWire {
            key_id: b64(&e.log_id),
        }),
        kind_version: Some(KindVersionWire {
            kind: nonempty(&e.kind),
            version: nonempty(&e.version),
        }),
        integrated_time: protojson::encode_int64(e.integrated_time),
        inclusion_promise: e.inclusion_promise.as_ref().map(|set| PromiseWire {
            signed_entry_timestamp: b64(set),
        }),
        inclusion_proof: e.inclusion_proof.as_ref().map(|p| ProofWire {
            log_index: protojson::encode_int64(p.log_index),
            root_hash: b64(&p.root_hash),
            tree_size: protojson::encode_int64(p.tree_size),
            hashes: (!p.hashes.is_empty()).then(|| {
                p.hashes
                    .iter()
                    .map(|h| protojson::encode_bytes(h))
                    .collect()
            }),
            checkpoint: Some(CheckpointWire {
                envelope: Some(p.checkpoint.clone()),
            }),
        }),
        canonicalized_body: (!e.canonicalized_body.is_empty())
            .then(|| protojson::encode_bytes(&e.canonicalized_body)),
    }
}
