//! The answer to a write: a protobuf-JSON `dev.sigstore.rekor.v1.TransparencyLogEntry`
//! (SPECS §4.1), as rekor-tiles returns it: int64 as decimal strings, bytes as base64, no
//! `integratedTime` and no inclusion promise (Rekor v2 has neither).

use custody_core::encoding::base64_encode;
use custody_log::Receipt;
use serde_json::{Value, json};

use crate::identity::LogIdentity;
use crate::request::Admitted;

/// The entry for `admitted`, logged as `receipt` says.
pub fn transparency_log_entry(
    identity: &LogIdentity,
    admitted: &Admitted,
    receipt: &Receipt,
) -> Value {
    json!({
        "logIndex": receipt.index.to_string(),
        "logId": { "keyId": base64_encode(&identity.log_id()) },
        "kindVersion": { "kind": admitted.kind, "version": admitted.version },
        "inclusionProof": {
            "logIndex": receipt.index.to_string(),
            "rootHash": base64_encode(&receipt.root_hash),
            "treeSize": receipt.tree_size.to_string(),
            "hashes": receipt.inclusion_proof.iter().map(|h| base64_encode(h)).collect::<Vec<_>>(),
            "checkpoint": { "envelope": receipt.checkpoint },
        },
        "canonicalizedBody": base64_encode(&admitted.body),
    })
}
