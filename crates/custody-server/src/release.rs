//! The release service's server side: the adapters that connect custody-release's
//! [`ReleaseService`] to this server's transparency log and metrics. The release rules
//! themselves live in `custody_release::service`; the HTTP routes in `release_api`.

use std::sync::Arc;

use custody_core::bundle::{Bundle, TransparencyLogEntry};
use custody_core::dsse;
use custody_core::encoding::base64_encode;
use custody_core::keys::PublicKey;
use custody_evidence::EvidenceStore;
use custody_log::Log;
use custody_release::service::{
    BoxFuture, Checkpoint, LogError, Logged, OnChange, ReleaseLog, ReleasePorts, ReleaseService,
};
use serde_json::{Value as Json, json};

use crate::metrics::{Metrics, ReleaseMetrics};

/// What `custody serve --release-config` configures: the service and where alerts go.
pub struct ReleaseSetup {
    pub service: custody_release::service::ReleaseSetup,
    /// POSTed a JSON event on every alert.
    pub alert_webhook: Option<String>,
}

impl std::fmt::Debug for ReleaseSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReleaseSetup")
            .field("service", &self.service)
            .field("alert_webhook", &self.alert_webhook.is_some())
            .finish()
    }
}

/// The release service over this server's log, evidence store and metrics.
pub(crate) fn start(
    setup: ReleaseSetup,
    log: Log,
    log_id_base64: String,
    evidence: Arc<dyn EvidenceStore>,
    metrics: Arc<Metrics>,
    on_change: OnChange,
) -> ReleaseService {
    ReleaseService::new(
        setup.service,
        ReleasePorts {
            log: Arc::new(ServerLog { log, log_id_base64 }),
            evidence,
            observer: Arc::new(ReleaseMetrics::new(metrics, setup.alert_webhook)),
            on_change,
        },
    )
}

/// [`ReleaseLog`] over the server's own log: a Rekor v2 DSSE entry, submitted in-process.
struct ServerLog {
    log: Log,
    log_id_base64: String,
}

impl ServerLog {
    async fn append_envelope(
        &self,
        envelope: dsse::Envelope,
        key: &PublicKey,
    ) -> Result<Logged, LogError> {
        let failed = |m: String| LogError::Failed(m);
        let details = key.sigstore_key_details().ok_or_else(|| {
            failed("the signing key has no Sigstore key type (use ECDSA P-256 or Ed25519)".into())
        })?;
        let envelope_json: Json = serde_json::from_str(&envelope.to_json())
            .map_err(|e| failed(format!("envelope JSON: {e}")))?;
        let request = json!({ "dsseRequestV002": {
            "envelope": envelope_json,
            "verifiers": [{ "publicKey": { "rawBytes": base64_encode(key.spki_der()) }, "keyDetails": details }],
        }});
        let admitted = crate::request::admit(request.to_string().as_bytes())
            .map_err(|e| failed(format!("the statement is not a loggable entry: {e}")))?;
        let receipt = self
            .log
            .submit(admitted.body.clone())
            .await
            .map_err(|e| LogError::Unavailable(e.to_string()))?;
        let entry_text = crate::entry::entry_json(&self.log_id_base64, &admitted, &receipt);
        let entry = TransparencyLogEntry::from_json(entry_text.as_bytes())
            .map_err(|e| failed(format!("log entry: {e}")))?;
        let hint = base64_encode(&key.key_id().0);
        let bundle = Bundle::new_dsse_v03(hint, envelope).with_tlog_entry(entry);
        Ok(Logged {
            bundle: bundle.to_json(),
            index: receipt.index,
        })
    }
}

impl ReleaseLog for ServerLog {
    fn append<'a>(
        &'a self,
        envelope: dsse::Envelope,
        key: &'a PublicKey,
    ) -> BoxFuture<'a, Result<Logged, LogError>> {
        Box::pin(self.append_envelope(envelope, key))
    }

    fn checkpoint(&self) -> BoxFuture<'_, Result<Checkpoint, LogError>> {
        Box::pin(async move {
            let note = self
                .log
                .checkpoint()
                .await
                .map_err(|e| LogError::Failed(e.to_string()))?;
            let mut lines = note.lines().skip(1);
            match (lines.next().and_then(|l| l.parse().ok()), lines.next()) {
                (Some(size), Some(root)) => Ok(Checkpoint {
                    size,
                    root: root.to_owned(),
                }),
                _ => Err(LogError::Failed(format!(
                    "the log's checkpoint has no size and root hash: {note:?}"
                ))),
            }
        })
    }
}
