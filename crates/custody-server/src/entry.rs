//! The answer to a write: a protobuf-JSON `dev.sigstore.rekor.v1.TransparencyLogEntry`
//! (SPECS §4.1), as rekor-tiles returns it: int64 as decimal strings, bytes as base64, no
//! `integratedTime` and no inclusion promise (Rekor v2 has neither).

use custody_core::encoding::{base64_encode, base64_encode_into};
use custody_log::Receipt;
use serde_json::{Value, json};

use custody_core::bundle::{InclusionProof, TransparencyLogEntry};
use custody_core::rekor::request::{Admitted, CreateEntryRequest, RequestError};
use custody_core::sign::AsyncLogAppender;
use custody_log::{Log, SubmitError};

use crate::identity::LogIdentity;

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

/// The entry a receipt stands for, as a typed value (for callers in this process).
pub fn log_entry(log_id: &[u8], admitted: &Admitted, receipt: &Receipt) -> TransparencyLogEntry {
    // Indexes and sizes of a log this process serves fit in i64 (SQLite and PostgreSQL
    // store them as such).
    let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    TransparencyLogEntry {
        log_index: int(receipt.index),
        log_id: log_id.to_vec(),
        kind: admitted.kind.to_owned(),
        version: admitted.version.to_owned(),
        integrated_time: 0,
        inclusion_promise: None,
        inclusion_proof: Some(InclusionProof {
            log_index: int(receipt.index),
            root_hash: receipt.root_hash.to_vec(),
            tree_size: int(receipt.tree_size),
            hashes: receipt.inclusion_proof.iter().map(|h| h.to_vec()).collect(),
            checkpoint: receipt.checkpoint.clone(),
        }),
        canonicalized_body: admitted.body.to_vec(),
    }
}

/// Why the in-process log did not take a request.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("the log refused the request: {0}")]
    Request(#[from] RequestError),
    #[error("the log could not append: {0}")]
    Submit(#[from] SubmitError),
}

/// This server's own log as the transport of `custody_core::sign`: the request is admitted in
/// process (verified, body built; no JSON in between), submitted, and the entry built from
/// the receipt. Used for the gate's VSAs (and the release statements).
pub struct InProcessLog<'a> {
    pub log: &'a Log,
    /// The Rekor v2 log ID ([`LogIdentity::log_id`]).
    pub log_id: Vec<u8>,
}

impl AsyncLogAppender for InProcessLog<'_> {
    type Error = AppendError;

    fn append(
        &self,
        request: &CreateEntryRequest,
    ) -> impl std::future::Future<Output = Result<TransparencyLogEntry, AppendError>> + Send {
        let admitted = request.admit();
        async move {
            let admitted = admitted?;
            let receipt = self.log.submit(admitted.body.clone()).await?;
            Ok(log_entry(&self.log_id, &admitted, &receipt))
        }
    }
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
