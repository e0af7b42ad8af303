//! Submitting signatures to a transparency log (Rekor v2 write API) and checking the receipt
//! before it goes into a bundle: the log must have recorded *our* signature, key and digest,
//! and the inclusion proof must lead to the root of the checkpoint it came with.

use std::time::Duration;

use anyhow::Context as _;
use custody_core::bundle::{BundleContent, TransparencyLogEntry};
use custody_core::digest::Sha256Digest;
use custody_core::dsse::Envelope;
use custody_core::encoding::base64_encode;
use custody_core::keys::PublicKey;
use custody_core::merkle;
use custody_core::note::{Checkpoint, Note};
use custody_core::rekor::{self, RekorBody, Signer};
use custody_core::verify::Artifact;
use serde_json::{Value, json};

/// Largest answer read from the log.
const MAX_RESPONSE_BYTES: u64 = 4 << 20;

/// Where to submit, and the bearer token if the log wants one.
pub struct LogTarget {
    pub url: String,
    pub token: Option<String>,
}

impl LogTarget {
    /// From `--log URL` and `--log-token-file` / `CUSTODY_LOG_TOKEN`.
    pub fn new(url: String, token_file: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let token = match token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("log token file {}", path.display()))?
                    .trim()
                    .to_owned(),
            ),
            None => std::env::var("CUSTODY_LOG_TOKEN").ok(),
        };
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            token,
        })
    }
}

fn verifier_json(key: &PublicKey) -> anyhow::Result<Value> {
    let details = key
        .sigstore_key_details()
        .ok_or_else(|| anyhow::anyhow!("key {} has no Sigstore key type", key.key_id()))?;
    Ok(json!({ "publicKey": { "rawBytes": base64_encode(key.spki_der()) }, "keyDetails": details }))
}

/// Submits a message signature over `digest` (hashedrekord 0.0.2).
pub fn submit_message_signature(
    target: &LogTarget,
    digest: &Sha256Digest,
    signature: &[u8],
    key: &PublicKey,
) -> anyhow::Result<TransparencyLogEntry> {
    let request = json!({ "hashedRekordRequestV002": {
        "digest": base64_encode(digest.as_bytes()),
        "signature": { "content": base64_encode(signature), "verifier": verifier_json(key)? },
    }});
    post(target, &request)
}

/// Submits a DSSE envelope (dsse 0.0.2).
pub fn submit_dsse(
    target: &LogTarget,
    envelope: &Envelope,
    key: &PublicKey,
) -> anyhow::Result<TransparencyLogEntry> {
    let envelope: Value = serde_json::from_str(&envelope.to_json())?;
    let request =
        json!({ "dsseRequestV002": { "envelope": envelope, "verifiers": [verifier_json(key)?] } });
    post(target, &request)
}

fn post(target: &LogTarget, request: &Value) -> anyhow::Result<TransparencyLogEntry> {
    let url = format!("{}/api/v2/log/entries", target.url);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut call = agent.post(&url).header("Content-Type", "application/json");
    if let Some(token) = &target.token {
        call = call.header("Authorization", &format!("Bearer {token}"));
    }
    let mut response = call
        .send(request.to_string())
        .map_err(|e| anyhow::anyhow!("log {url}: {e} (is the log running? check --log)"))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_RESPONSE_BYTES)
        .read_to_vec()
        .map_err(|e| anyhow::anyhow!("log {url}: reading the answer: {e}"))?;
    if !(status == 200 || status == 201) {
        let reason = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
        let hint = if status == 401 {
            " (set CUSTODY_LOG_TOKEN or --log-token-file)"
        } else {
            ""
        };
        anyhow::bail!("log {url} refused the entry: HTTP {status}: {reason}{hint}");
    }
    TransparencyLogEntry::from_json(&body)
        .map_err(|e| anyhow::anyhow!("log {url}: malformed answer: {e}"))
}

/// Checks a receipt before it is put into a bundle: the body binds to the bundle's content and
/// key, and the inclusion proof leads to the root of the checkpoint the log sent. (Who signed
/// the checkpoint is for the verifier to check against its trust root.)
pub fn check_receipt(
    entry: &TransparencyLogEntry,
    content: &BundleContent,
    key: &PublicKey,
    artifact: &Artifact<'_>,
) -> anyhow::Result<()> {
    let index = entry.log_index;
    let body = RekorBody::parse(&entry.canonicalized_body)
        .map_err(|e| anyhow::anyhow!("log entry {index}: unreadable body: {e}"))?;
    rekor::bind(&body, content, Signer::Key(key), Some(artifact))
        .map_err(|e| anyhow::anyhow!("log entry {index}: {e}"))?;
    let proof = entry
        .inclusion_proof
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("log entry {index}: no inclusion proof"))?;
    let note = Note::parse(&proof.checkpoint)
        .map_err(|e| anyhow::anyhow!("log entry {index}: checkpoint: {e}"))?;
    let checkpoint = Checkpoint::parse(note.text())
        .map_err(|e| anyhow::anyhow!("log entry {index}: checkpoint: {e}"))?;
    let hashes: Vec<merkle::Hash> = proof
        .hashes
        .iter()
        .map(|h| h.as_slice().try_into())
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow::anyhow!("log entry {index}: a proof hash is not 32 bytes"))?;
    let leaf = merkle::leaf_hash(&entry.canonicalized_body);
    let (Ok(leaf_index), Ok(size)) = (
        u64::try_from(proof.log_index),
        u64::try_from(proof.tree_size),
    ) else {
        anyhow::bail!("log entry {index}: negative index or size in the proof");
    };
    if size != checkpoint.size() || proof.root_hash.as_slice() != checkpoint.root_hash() {
        anyhow::bail!(
            "log entry {index}: the inclusion proof is for another tree than the checkpoint's"
        );
    }
    merkle::verify_inclusion(leaf_index, size, &leaf, &hashes, checkpoint.root_hash())
        .map_err(|e| anyhow::anyhow!("log entry {index}: inclusion proof: {e}"))
}
