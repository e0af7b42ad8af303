//! `custody verify … --policy DIR --evidence-from URL`: more evidence from a custody server's
//! evidence store (`GET /api/v1/evidence/sha256:<hex>`). The server is not trusted: every
//! bundle it returns is verified like any other candidate, and one whose bytes do not hash to
//! the digest the server names is refused here.

use std::time::Duration;

use anyhow::Context as _;
use custody_core::digest::Sha256Digest;
use custody_policy::input::Candidate;
use serde::Deserialize;
use serde_json::value::RawValue;

/// Largest answer read.
const MAX_ANSWER_BYTES: u64 = 64 << 20;

#[derive(Deserialize)]
struct Listed {
    bundle_digest: String,
    bundle: Box<RawValue>,
}

/// The bundles `base` stores for `digest`, as candidates named `<url>#<bundle digest>`.
pub(crate) fn fetch(base: &str, digest: &Sha256Digest) -> anyhow::Result<Vec<Candidate>> {
    let url = format!("{}/api/v1/evidence/{digest}", base.trim_end_matches('/'));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut response = agent.get(&url).call().map_err(|e| {
        anyhow::anyhow!("--evidence-from {url}: {e} (is the custody server running?)")
    })?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_vec()
        .with_context(|| format!("--evidence-from {url}: reading the answer"))?;
    if status != 200 {
        let text = String::from_utf8_lossy(&body);
        anyhow::bail!("--evidence-from {url}: HTTP {status}: {}", text.trim());
    }
    let listed: Vec<Listed> = serde_json::from_slice(&body).with_context(|| {
        format!("--evidence-from {url}: not an evidence list (is this a custody server?)")
    })?;
    listed
        .into_iter()
        .map(|item| {
            let bytes = item.bundle.get().as_bytes().to_vec();
            let actual = Sha256Digest::of(&bytes).to_string();
            if actual != item.bundle_digest {
                anyhow::bail!(
                    "--evidence-from {url}: the bundle listed as {} hashes to {actual}",
                    item.bundle_digest
                );
            }
            Ok(Candidate {
                source: format!("{url}#{actual}"),
                bytes,
            })
        })
        .collect()
}
