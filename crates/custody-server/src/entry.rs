//! The answer to a write: a protobuf-JSON `dev.sigstore.rekor.v1.TransparencyLogEntry`
//! (SPECS §4.1), as rekor-tiles returns it: int64 as decimal strings, bytes as base64, no
//! `integratedTime` and no inclusion promise (Rekor v2 has neither).

use custody_core::encoding::{base64_encode, base64_encode_into};
use custody_log::Receipt;
use serde_json::{Value, json};

use crate::identity::LogIdentity;
use crate::request::Admitted;

/// The entry for `admitted`, logged as `receipt` says, as JSON text. Written directly (every
/// field but the checkpoint note is a decimal or base64 string, which need no escaping): this
/// is on the hot path of every write, and building a `serde_json::Value` tree first cost more
/// than the rest of the answer.
pub fn transparency_log_entry_json(
    identity: &LogIdentity,
    admitted: &Admitted,
    receipt: &Receipt,
) -> String {
    entry_json(&base64_encode(&identity.log_id()), admitted, receipt)
}

/// [`transparency_log_entry_json`] with the log ID already in base64 (the server keeps it).
pub(crate) fn entry_json(log_id: &str, admitted: &Admitted, receipt: &Receipt) -> String {
    use std::fmt::Write as _;
    let index = receipt.index;
    let mut out =
        String::with_capacity(512 + 48 * receipt.inclusion_proof.len() + 2 * admitted.body.len());
    let _ = write!(
        out,
        concat!(
            r#"{{"logIndex":"{index}","logId":{{"keyId":"{log_id}"}},"#,
            r#""kindVersion":{{"kind":"{kind}","version":"{version}"}},"#,
            r#""inclusionProof":{{"logIndex":"{index}","rootHash":""#
        ),
        index = index,
        log_id = log_id,
        kind = admitted.kind,
        version = admitted.version,
    );
    base64_encode_into(&receipt.root_hash, &mut out);
    let _ = write!(out, r#"","treeSize":"{}","hashes":["#, receipt.tree_size);
    for (i, hash) in receipt.inclusion_proof.iter().enumerate() {
        out.push_str(if i == 0 { "\"" } else { ",\"" });
        base64_encode_into(hash, &mut out);
        out.push('"');
    }
    out.push_str(r#"],"checkpoint":{"envelope":"#);
    match serde_json::to_string(&receipt.checkpoint) {
        Ok(note) => out.push_str(&note),
        Err(_) => out.push_str("\"\""),
    }
    out.push_str(r#"}},"canonicalizedBody":""#);
    base64_encode_into(&admitted.body, &mut out);
    out.push_str("\"}");
    out
}

/// The same entry as a JSON value.
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn written_json_equals_the_value() {
        let (_, vkey) = custody_core::note::NoteSigner::generate("log.test").unwrap();
        let identity = LogIdentity {
            origin: "log.test".into(),
            vkey,
            key_created: chrono::Utc::now(),
        };
        let admitted = Admitted {
            kind: "hashedrekord",
            version: "0.0.2",
            body: b"{\"a\":1}".as_slice().into(),
        };
        for proof in [
            vec![],
            vec![[7u8; 32]],
            vec![[1u8; 32], [2u8; 32], [3u8; 32]],
        ] {
            let receipt = Receipt {
                index: 41,
                leaf_hash: [0; 32],
                tree_size: 42,
                root_hash: [9; 32],
                checkpoint: "log.test\n42\nroot\n\n\u{2014} log.test sig\"\\\n".into(),
                inclusion_proof: proof,
                duplicate: false,
            };
            let text = transparency_log_entry_json(&identity, &admitted, &receipt);
            let parsed: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                parsed,
                transparency_log_entry(&identity, &admitted, &receipt)
            );
        }
    }
}
