//! `GET /metrics`: Prometheus text format (version 0.0.4), no client library needed.
//!
//! Counters are atomics or small maps behind a mutex (label sets are few: decision codes,
//! environments, statement kinds); histograms have fixed buckets. Gauges that the store knows
//! (log size, incident times, reproducibility) are read when scraped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use custody_policy::Verdict;
use custody_release::service::{BoxFuture, ReleaseObserver};
use serde_json::Value as Json;

/// Upper bounds (seconds) of the latency histograms' buckets.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A fixed-bucket histogram.
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    /// Sum in nanoseconds.
    sum_ns: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.counts[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                self.counts[i].load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9
        );
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// Labelled counters: label values → count.
#[derive(Debug, Default)]
struct Family(Mutex<BTreeMap<Vec<String>, u64>>);

impl Family {
    /// Allocates only the first time a label set is seen.
    fn inc(&self, labels: &[&str]) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let known = map
            .iter_mut()
            .find(|(k, _)| k.iter().map(String::as_str).eq(labels.iter().copied()));
        match known {
            Some((_, count)) => *count += 1,
            None => {
                map.insert(labels.iter().map(|s| (*s).to_owned()).collect(), 1);
            }
        }
    }

    fn render(&self, out: &mut String, name: &str, help: &str, label_names: &[&str]) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for (values, count) in map.iter() {
            let labels: Vec<String> = label_names
                .iter()
                .zip(values)
                .map(|(n, v)| format!("{n}=\"{}\"", escape(v)))
                .collect();
            let _ = writeln!(out, "{name}{{{}}} {count}", labels.join(","));
        }
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Everything the server counts.
#[derive(Debug, Default)]
pub struct Metrics {
    allowed: AtomicU64,
    denied: AtomicU64,
    denials: Family,
    signing: Family,
    promotions: Family,
    promotions_refused: Family,
    rollbacks: Family,
    deployments: Family,
    alerts: AtomicU64,
    incidents_opened: AtomicU64,
    incidents_recovered: AtomicU64,
    log_entries: AtomicU64,
    pub gate_latency: Histogram,
    pub log_integration: Histogram,
    /// Digests decided with verified provenance → whether a verified rebuild reproduced them.
    reproduced: Mutex<BTreeMap<String, bool>>,
    /// Connections: open, shed at the limit, closed by a timeout.
    pub listener: std::sync::Arc<crate::listener::ListenerStats>,
    /// Changes received from the change feed (every replica's invalidations), by kind.
    gate_changes: Family,
    /// The gate's verification cache (its tiers' counts are read at scrape time).
    pub gate_verified: std::sync::OnceLock<std::sync::Arc<custody_policy::VerificationCache>>,
}

/// Scrape-time figures from the log and the release store.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub log_size: u64,
    /// (detected − introduced) of each incident, seconds.
    pub detect_seconds: Vec<f64>,
    /// (recovered − detected) of each recovered incident, seconds.
    pub recover_seconds: Vec<f64>,
    pub incidents_open: u64,
    pub quarantined: u64,
}

impl Metrics {
    /// A gate decision and how long it took. `fresh`: made now, not answered from the
    /// decision cache (only fresh decisions can change what is known about reproducibility,
    /// so cache hits, the hot path, touch nothing but atomics unless they deny).
    pub fn decision(&self, verdict: &Verdict, took: Duration, fresh: bool) {
        self.gate_latency.observe(took);
        let counter = if verdict.allowed {
            &self.allowed
        } else {
            &self.denied
        };
        counter.fetch_add(1, Ordering::Relaxed);
        for d in &verdict.denies {
            self.denials.inc(&[&d.code]);
        }
        if !fresh {
            return;
        }
        if let Some(digest) = &verdict.artifact.digest {
            let has = |t: &str| {
                verdict
                    .evidence
                    .iter()
                    .any(|e| e.predicate_type.as_deref() == Some(t))
            };
            if has(custody_core::intoto::SLSA_PROVENANCE_V1) {
                let reproduced = has("urn:custody:predicate:rebuild:v1");
                let mut map = self
                    .reproduced
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                match map.get_mut(digest) {
                    Some(slot) => *slot |= reproduced,
                    None => {
                        map.insert(digest.clone(), reproduced);
                    }
                }
            }
        }
    }

    /// A change received from the change feed (`evidence`, `decisions`, `all`, `release`).
    pub fn gate_change(&self, kind: &str) {
        self.gate_changes.inc(&[kind]);
    }

    /// A statement signed (and logged) by the server or accepted from a client.
    pub fn signed(&self, kind: &str) {
        self.signing.inc(&[kind]);
    }
    pub fn promoted(&self, env: &str) {
        self.promotions.inc(&[env]);
    }
    pub fn promotion_refused(&self, env: &str) {
        self.promotions_refused.inc(&[env]);
    }
    pub fn rolled_back(&self, env: &str) {
        self.rollbacks.inc(&[env]);
    }
    pub fn deployment(&self, env: &str, status: &str) {
        self.deployments.inc(&[env, status]);
    }
    pub fn alert(&self) {
        self.alerts.fetch_add(1, Ordering::Relaxed);
    }
    pub fn incident_opened(&self) {
        self.incidents_opened.fetch_add(1, Ordering::Relaxed);
    }
    pub fn incident_recovered(&self) {
        self.incidents_recovered.fetch_add(1, Ordering::Relaxed);
    }
    /// An entry the write API logged, and how long integration took.
    pub fn logged(&self, took: Duration) {
        self.log_entries.fetch_add(1, Ordering::Relaxed);
        self.log_integration.observe(took);
    }

    /// The exposition text.
    pub fn render(&self, snap: &Snapshot) -> String {
        let mut out = String::with_capacity(4096);
        let name = "custody_verifications_total";
        let _ = writeln!(
            out,
            "# HELP {name} Gate decisions (admission, evaluate, promotion, rollback) by result.\n# TYPE {name} counter\n{name}{{result=\"allowed\"}} {}\n{name}{{result=\"denied\"}} {}",
            self.allowed.load(Ordering::Relaxed),
            self.denied.load(Ordering::Relaxed)
        );
        self.denials.render(
            &mut out,
            "custody_denials_total",
            "Denial findings by stable code (one decision may carry several).",
            &["code"],
        );
        self.signing.render(
            &mut out,
            "custody_signing_events_total",
            "Statements signed and logged by the server or accepted from clients, by kind.",
            &["kind"],
        );
        counter(
            &mut out,
            "custody_log_entries_written_total",
            "Entries logged through the write API (POST /api/v2/log/entries).",
            self.log_entries.load(Ordering::Relaxed),
        );
        self.promotions.render(
            &mut out,
            "custody_promotions_total",
            "Promotions recorded, by target environment.",
            &["environment"],
        );
        self.promotions_refused.render(
            &mut out,
            "custody_promotions_refused_total",
            "Promotions refused (policy, quarantine, not passed the previous environment).",
            &["environment"],
        );
        self.rollbacks.render(
            &mut out,
            "custody_rollbacks_total",
            "Rollbacks recorded (automatic and explicit), by environment.",
            &["environment"],
        );
        self.deployments.render(
            &mut out,
            "custody_deployments_total",
            "Deploy agent reports, by environment and status.",
            &["environment", "status"],
        );
        counter(
            &mut out,
            "custody_alerts_total",
            "Alerts raised (revocations, incidents, rollbacks, unrecoverable environments).",
            self.alerts.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "custody_incidents_opened_total",
            "Incidents opened since start.",
            self.incidents_opened.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "custody_incidents_open",
            "Incidents not yet recovered.",
            snap.incidents_open as f64,
        );
        gauge(
            &mut out,
            "custody_quarantined_artifacts",
            "Artifacts quarantined by revocations.",
            snap.quarantined as f64,
        );
        gauge(
            &mut out,
            "custody_log_size",
            "Entries in the transparency log (latest checkpoint's tree size).",
            snap.log_size as f64,
        );
        self.log_integration.render(
            &mut out,
            "custody_log_integration_seconds",
            "Time from a write request's arrival to its entry being durable and checkpointed.",
        );
        self.gate_latency.render(
            &mut out,
            "custody_gate_decision_seconds",
            "Time to decide (verify evidence and evaluate policy), cache hits included.",
        );
        if let Some(cache) = self.gate_verified.get() {
            let (memory, misses) = cache.stats();
            let shared = cache.shared_hits();
            let name = "custody_gate_bundle_verifications_total";
            let _ = writeln!(
                out,
                "# HELP {name} Evidence bundles the gate needed verified, by where the result came from: this process's cache, the store's cache shared by every replica, or a verification now.\n# TYPE {name} counter\n{name}{{tier=\"memory\"}} {memory}\n{name}{{tier=\"shared\"}} {shared}\n{name}{{tier=\"verified\"}} {}",
                misses.saturating_sub(shared)
            );
        }
        self.gate_changes.render(
            &mut out,
            "custody_gate_changes_received_total",
            "Cache invalidations received from the change feed (any replica's, this one's included), by kind.",
            &["kind"],
        );
        let (reproduced, total) = {
            let map = self
                .reproduced
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            (map.values().filter(|v| **v).count(), map.len())
        };
        gauge(
            &mut out,
            "custody_reproducibility_rate",
            "Of the artifacts decided with verified provenance, the share also reproduced by a verified rebuild attestation.",
            if total == 0 {
                0.0
            } else {
                reproduced as f64 / total as f64
            },
        );
        gauge(
            &mut out,
            "custody_mean_time_to_detect_seconds",
            "Mean over incidents of (revocation received - affected release first deployed).",
            mean(&snap.detect_seconds),
        );
        gauge(
            &mut out,
            "custody_mean_time_to_recover_seconds",
            "Mean over recovered incidents of (every affected environment back on a good release - revocation received).",
            mean(&snap.recover_seconds),
        );
        self.listener.render(&mut out);
        out
    }
}

/// The release service's observer: counts what it reports in [`Metrics`], logs its alerts and
/// posts them to the alert webhook (`--alert-webhook`).
#[derive(Debug)]
pub struct ReleaseMetrics {
    metrics: std::sync::Arc<Metrics>,
    alert_webhook: Option<String>,
}

impl ReleaseMetrics {
    pub fn new(metrics: std::sync::Arc<Metrics>, alert_webhook: Option<String>) -> Self {
        Self {
            metrics,
            alert_webhook,
        }
    }
}

impl ReleaseObserver for ReleaseMetrics {
    fn signed(&self, kind: &str) {
        self.metrics.signed(kind);
    }
    fn promoted(&self, environment: &str) {
        self.metrics.promoted(environment);
    }
    fn promotion_refused(&self, environment: &str) {
        self.metrics.promotion_refused(environment);
    }
    fn rolled_back(&self, environment: &str) {
        self.metrics.rolled_back(environment);
    }
    fn deployment(&self, environment: &str, status: &str) {
        self.metrics.deployment(environment, status);
    }
    fn incident_opened(&self) {
        self.metrics.incident_opened();
    }
    fn incident_recovered(&self) {
        self.metrics.incident_recovered();
    }
    fn decision(&self, verdict: &Verdict, took: Duration) {
        self.metrics.decision(verdict, took, true);
    }
    fn alert(&self, event: Json) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            tracing::warn!(target: "custody::alert", "{event}");
            self.metrics.alert();
            let Some(url) = self.alert_webhook.clone() else {
                return;
            };
            let body = event.to_string();
            let posted = tokio::task::spawn_blocking(move || {
                custody_client::tiles::agent()
                    .post(&url)
                    .header("content-type", "application/json")
                    .send(body.as_bytes())
                    .map(|_| ())
            })
            .await;
            if !matches!(posted, Ok(Ok(()))) {
                tracing::warn!("the alert webhook did not take the alert");
            }
        })
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn counter(out: &mut String, name: &str, help: &str, v: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
    );
}

fn gauge(out: &mut String, name: &str, help: &str, v: f64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn exposition_is_well_formed() {
        let m = Metrics::default();
        m.gate_latency.observe(Duration::from_micros(300));
        m.gate_latency.observe(Duration::from_millis(30));
        m.promoted("prod");
        m.promoted("prod");
        m.rolled_back("prod");
        m.deployment("prod", "active");
        m.signed("release");
        m.signed("release");
        let text = m.render(&Snapshot {
            log_size: 7,
            detect_seconds: vec![10.0, 20.0],
            recover_seconds: vec![3.0],
            incidents_open: 0,
            quarantined: 1,
        });
        assert!(text.contains("custody_promotions_total{environment=\"prod\"} 2"));
        assert!(text.contains("custody_signing_events_total{kind=\"release\"} 2"));
        assert!(text.contains("custody_verifications_total{result=\"allowed\"} 0"));
        assert!(text.contains("custody_rollbacks_total{environment=\"prod\"} 1"));
        assert!(text.contains("custody_gate_decision_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(text.contains("custody_gate_decision_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("custody_gate_decision_seconds_count 2"));
        assert!(text.contains("custody_mean_time_to_detect_seconds 15"));
        assert!(text.contains("custody_mean_time_to_recover_seconds 3"));
        assert!(text.contains("custody_log_size 7"));
        // Every sample line has a HELP and TYPE for its family.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "no TYPE for {name}"
            );
        }
    }
}
