//! The release service's server side: the adapters that connect custody-release's
//! [`ReleaseService`] to this server's transparency log and metrics. The release rules
//! themselves live in `custody_release::service`; the HTTP routes in `release_api`.

use std::sync::Arc;

use custody_core::sign::Signed;
use custody_evidence::EvidenceStore;
use custody_log::Log;
use custody_release::service::{
    BoxFuture, Checkpoint, LogError, Logged, OnChange, ReleaseLog, ReleasePorts, ReleaseService,
};

use crate::entry::InProcessLog;
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
    log_id: Vec<u8>,
    evidence: Arc<dyn EvidenceStore>,
    metrics: Arc<Metrics>,
    on_change: OnChange,
) -> ReleaseService {
    ReleaseService::new(
        setup.service,
        ReleasePorts {
            log: Arc::new(ServerLog { log, log_id }),
            evidence,
            observer: Arc::new(ReleaseMetrics::new(metrics, setup.alert_webhook)),
            on_change,
        },
    )
}

/// [`ReleaseLog`] over the server's own log: the shared sign-and-log path
/// (`custody_core::sign::Signed::log_async`) with the log as its in-process transport, so the
/// receipt is checked before the bundle is returned.
struct ServerLog {
    log: Log,
    log_id: Vec<u8>,
}

impl ReleaseLog for ServerLog {
    fn append(&self, signed: Signed) -> BoxFuture<'_, Result<Logged, LogError>> {
        Box::pin(async move {
            let appender = InProcessLog {
                log: &self.log,
                log_id: self.log_id.clone(),
            };
            let bundle = signed.log_async(&appender).await.map_err(|e| match e {
                custody_core::sign::LogError::Append(e) => LogError::Unavailable(e.to_string()),
                other => LogError::Failed(other.to_string()),
            })?;
            let index = bundle
                .verification_material
                .tlog_entries
                .first()
                .and_then(|e| u64::try_from(e.log_index).ok())
                .ok_or_else(|| LogError::Failed("the logged bundle has no log entry".into()))?;
            Ok(Logged {
                bundle: bundle.to_json(),
                index,
            })
        })
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
