//! `custody deploy ENV`: the deploy agent. It asks a custody server for the environment's
//! current release, lets [`custody_release::agent`] decide (verify, anti-replay, artifact
//! digest, activation), and reports the outcome back. The server is not trusted: everything it
//! says is checked against the release key before anything is activated.
//!
//! Server API used: `GET /api/v1/environments/ENV`, `GET /api/v1/environments/ENV/current-release`
//! (the signed, short-lived statement required before anything is activated),
//! `GET /api/v1/artifacts/sha256:HEX`, `POST /api/v1/deployments` (docs/deploy.md).

use std::io::Read as _;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use custody_core::digest::Sha256Digest;
use custody_core::verify::TlogStatus;
use custody_release::agent::{
    Agent, AgentError, Applied, CurrentError, ReleaseTrust, TargetSpec, VerifiedRelease,
};
use custody_release::model::{Deployment, Release};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Context;
use super::key::load_public_key;
use crate::cli::{DeployArgs, OutputFormat};
use crate::outcome::{Denied, Outcome};

/// Largest API answer read (a release record with its bundles).
const MAX_ANSWER_BYTES: u64 = 16 << 20;
/// The longest wait between retries of a release whose activation keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The custody server, as the agent uses it.
struct Server {
    base: String,
    token: Option<String>,
    /// API calls: 30 s in all.
    api: ureq::Agent,
    /// Artifact downloads: bounded connect and first-byte times, then up to an hour.
    download: ureq::Agent,
}

#[derive(Deserialize)]
struct EnvironmentAnswer {
    environment: String,
    current: Option<Release>,
}

impl Server {
    fn new(url: &str, token: Option<String>) -> anyhow::Result<Self> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            anyhow::bail!("--server {url:?}: expected an http:// or https:// URL");
        }
        let api = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let download = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_recv_body(Some(Duration::from_secs(3600)))
            .build()
            .into();
        Ok(Self {
            base: url.trim_end_matches('/').to_owned(),
            token: token.filter(|t| !t.is_empty()),
            api,
            download,
        })
    }

    fn auth<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.token {
            Some(token) => request.header("Authorization", &format!("Bearer {token}")),
            None => request,
        }
    }

    fn transport(&self, url: &str, e: &ureq::Error) -> anyhow::Error {
        anyhow::anyhow!(
            "server {url}: {e} (is the custody server running and reachable? check --server {})",
            self.base
        )
    }

    /// Why an answer other than 200 is not one: HTTP status, the server's message, a hint.
    fn status_error(&self, url: &str, status: u16, body: &[u8]) -> anyhow::Error {
        let message = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .or_else(|| v.get("error"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| {
                String::from_utf8_lossy(body)
                    .trim()
                    .chars()
                    .take(200)
                    .collect()
            });
        let hint = match status {
            401 => " (give a token with --token or CUSTODY_TOKEN)",
            403 => " (the token's principal may not do this: give it a role that may)",
            _ => "",
        };
        anyhow::anyhow!("server {url}: HTTP {status}: {message}{hint}")
    }

    /// The environment's current release; `None` before its first.
    fn current(&self, environment: &str) -> anyhow::Result<Option<Release>> {
        let url = format!("{}/api/v1/environments/{environment}", self.base);
        let mut response = self
            .auth(self.api.get(&url))
            .call()
            .map_err(|e| self.transport(&url, &e))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_vec()
            .map_err(|e| anyhow::anyhow!("server {url}: reading the answer: {e}"))?;
        if status == 404 {
            anyhow::bail!(
                "server {url}: HTTP 404: the server has no environment {environment:?} (check ENV and --server)"
            );
        }
        if status != 200 {
            return Err(self.status_error(&url, status, &body));
        }
        let answer: EnvironmentAnswer = serde_json::from_slice(&body).with_context(|| {
            format!("server {url}: not an environment answer (is this a custody server?)")
        })?;
        if answer.environment != environment {
            anyhow::bail!(
                "server {url}: answered for environment {:?}, not {environment:?}",
                answer.environment
            );
        }
        Ok(answer.current)
    }

    /// The environment's signed current-release statement (its DSSE envelope's JSON): checked
    /// by the agent. 404 and 409 are the server declining to vouch (no release, or revoked).
    fn current_release(&self, environment: &str) -> Result<Vec<u8>, CurrentError> {
        let url = format!(
            "{}/api/v1/environments/{environment}/current-release",
            self.base
        );
        let mut response = self
            .auth(self.api.get(&url))
            .call()
            .map_err(|e| CurrentError::Unavailable(self.transport(&url, &e).to_string()))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_vec()
            .map_err(|e| {
                CurrentError::Unavailable(format!("server {url}: reading the answer: {e}"))
            })?;
        match status {
            200 => {}
            404 | 409 => {
                return Err(CurrentError::Withheld(
                    self.status_error(&url, status, &body).to_string(),
                ));
            }
            _ => {
                return Err(CurrentError::Unavailable(
                    self.status_error(&url, status, &body).to_string(),
                ));
            }
        }
        serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("envelope").map(Value::to_string))
            .map(String::into_bytes)
            .ok_or_else(|| {
                CurrentError::Unavailable(format!(
                    "server {url}: not a current-release answer (no envelope; is this a custody server of this version?)"
                ))
            })
    }

    /// Streams the artifact `digest` into `out` (checked by the agent afterwards).
    fn fetch(&self, digest: &Sha256Digest, out: &mut dyn std::io::Write) -> Result<(), String> {
        let url = format!("{}/api/v1/artifacts/{digest}", self.base);
        let mut response = self
            .auth(self.download.get(&url))
            .call()
            .map_err(|e| self.transport(&url, &e).to_string())?;
        let status = response.status().as_u16();
        if status != 200 {
            let mut body = Vec::new();
            let _ = response
                .body_mut()
                .with_config()
                .limit(64 << 10)
                .reader()
                .read_to_end(&mut body);
            if status == 404 {
                return Err(format!(
                    "server {url}: HTTP 404: the server's artifact store has no {digest}"
                ));
            }
            return Err(self.status_error(&url, status, &body).to_string());
        }
        let mut reader = response.body_mut().as_reader();
        std::io::copy(&mut reader, out).map_err(|e| format!("server {url}: downloading: {e}"))?;
        Ok(())
    }

    /// Reports a deployment; failures are the caller's to log.
    fn report(&self, deployment: &Deployment) -> anyhow::Result<()> {
        let url = format!("{}/api/v1/deployments", self.base);
        let body = serde_json::to_string(deployment)?;
        let mut response = self
            .auth(self.api.post(&url))
            .header("Content-Type", "application/json")
            .send(body)
            .map_err(|e| self.transport(&url, &e))?;
        let status = response.status().as_u16();
        if status == 200 || status == 201 {
            return Ok(());
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(64 << 10)
            .read_to_vec()
            .unwrap_or_default();
        Err(self.status_error(&url, status, &body))
    }
}

/// Everything a poll needs.
struct Deployer {
    environment: String,
    server: Server,
    agent: Agent,
    agent_name: String,
    /// The last report the server accepted (status, seq, digest, detail): with --watch the
    /// same outcome is reported once, not at every poll.
    last_report: Option<(String, u64, String, Option<String>)>,
}

/// What one poll ended in.
enum Polled {
    /// The environment has no release yet.
    NoRelease,
    Applied(Box<Applied>),
}

/// Why one poll did not deploy: the agent's decision or failure, or the server's.
enum PollError {
    Agent(AgentError),
    Server(anyhow::Error),
}

impl PollError {
    fn is_refusal(&self) -> bool {
        matches!(self, PollError::Agent(AgentError::Refused(_)))
    }

    fn text(&self) -> String {
        match self {
            PollError::Agent(e) => e.to_string(),
            PollError::Server(e) => crate::outcome::one_line(e),
        }
    }
}

impl Deployer {
    fn setup(args: &DeployArgs) -> anyhow::Result<Self> {
        let environment = args.environment.clone();
        let valid = !environment.is_empty()
            && environment.len() <= 64
            && environment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !valid {
            anyhow::bail!(
                "environment {environment:?}: a name is 1-64 letters, digits, '-', '_' or '.'"
            );
        }
        let spec: TargetSpec = args
            .target
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--target: {e}"))?;
        let mut keys = Vec::new();
        for path in &args.release_keys {
            keys.push(load_public_key(path)?);
        }
        let mut trust = ReleaseTrust::new(keys);
        trust.trusted_root = args
            .trusted_root
            .as_deref()
            .map(super::trust_root::load)
            .transpose()?;
        trust.vsa_verifier_id = args.vsa_verifier_id.clone();
        let max_age = custody_release::config::parse_duration(&args.vsa_max_age)
            .map_err(|e| anyhow::anyhow!("--vsa-max-age: {e}"))?;
        trust.vsa_max_age = chrono::Duration::from_std(max_age)
            .map_err(|_| anyhow::anyhow!("--vsa-max-age {:?} is too long", args.vsa_max_age))?;
        let state_dir = match &args.state {
            Some(dir) => dir.clone(),
            None => default_state_dir(&environment)?,
        };
        let target = spec
            .open(&state_dir)
            .map_err(|e| anyhow::anyhow!("--target {spec}: {e}"))?;
        let agent = Agent::open(&environment, trust, &state_dir, target)?;
        let agent_name = args
            .agent_name
            .clone()
            .unwrap_or_else(|| format!("{} {spec}", host_name()));
        Ok(Self {
            server: Server::new(&args.server, args.token.clone())?,
            environment,
            agent,
            agent_name,
            last_report: None,
        })
    }

    /// One poll: fetch, decide, activate, report.
    fn poll(&mut self) -> Result<Polled, PollError> {
        let current = self
            .server
            .current(&self.environment)
            .map_err(PollError::Server)?;
        let Some(release) = current else {
            return Ok(Polled::NoRelease);
        };
        let server = &self.server;
        let result = self.agent.apply(
            &release,
            &mut |r: &VerifiedRelease| server.current_release(&r.environment),
            &mut |digest, out| server.fetch(digest, out),
        );
        match &result {
            Ok(Applied::Deployed {
                release: r,
                activated,
                ..
            }) => {
                for note in &activated.notes {
                    tracing::warn!("{note}");
                }
                self.report(
                    r.seq,
                    &r.digest.to_string(),
                    "active",
                    Some(activated.location.display().to_string()),
                );
            }
            Ok(Applied::Unchanged(_)) => {}
            Err(e @ (AgentError::Refused(_) | AgentError::Activation { .. })) => {
                if let Some((_, seq, digest)) = e.release() {
                    self.report(seq, digest, "failed", Some(e.to_string()));
                }
            }
            Err(_) => {}
        }
        result
            .map(|a| Polled::Applied(Box::new(a)))
            .map_err(PollError::Agent)
    }

    fn report(&mut self, seq: u64, digest: &str, status: &str, detail: Option<String>) {
        let key = (status.to_owned(), seq, digest.to_owned(), detail.clone());
        if self.last_report.as_ref() == Some(&key) {
            return;
        }
        let deployment = Deployment {
            environment: self.environment.clone(),
            seq,
            digest: digest.to_owned(),
            agent: self.agent_name.clone(),
            status: status.to_owned(),
            detail,
            at: Utc::now(),
        };
        match self.server.report(&deployment) {
            Ok(()) => self.last_report = Some(key),
            Err(e) => tracing::warn!(
                "reporting {} release {seq} as {status}: {}",
                self.environment,
                crate::outcome::one_line(&e)
            ),
        }
    }

    fn target(&self) -> String {
        self.agent.target().describe()
    }

    /// The result document and the human line of a poll that did not fail.
    fn describe(&self, polled: &Polled) -> (Value, String) {
        let env = &self.environment;
        let target = self.target();
        match polled {
            Polled::NoRelease => (
                json!({ "ok": true, "environment": env, "decision": "no-release", "target": target }),
                format!("{env} has no release yet: nothing to deploy\n"),
            ),
            Polled::Applied(applied) => match applied.as_ref() {
                Applied::Unchanged(r) => (
                    release_json(env, "unchanged", &target, r, None, false, &[]),
                    format!(
                        "{env} release {} ({}) is active on {target}: no change\n",
                        r.seq, r.digest
                    ),
                ),
                Applied::Deployed {
                    release: r,
                    activated,
                    repaired,
                } => {
                    let location = activated.location.display().to_string();
                    let again = if *repaired { " again" } else { "" };
                    (
                        release_json(
                            env,
                            "deployed",
                            &target,
                            r,
                            Some(&location),
                            *repaired,
                            &activated.notes,
                        ),
                        format!(
                            "deployed{again} {env} release {} ({}, {} by {}) to {target}: {location}; {}\n",
                            r.seq,
                            r.digest,
                            r.kind.as_str(),
                            r.requested_by,
                            evidence(r)
                        ),
                    )
                }
            },
        }
    }
}

/// What the release was verified with, in words.
fn evidence(r: &VerifiedRelease) -> String {
    let tlog = match r.tlog {
        TlogStatus::Verified { .. } => "log entry verified",
        TlogStatus::NotChecked { .. } => "log entry NOT CHECKED (no --trusted-root)",
        TlogStatus::Absent => "no log entry",
    };
    let vsa = if r.vsa.is_some() {
        "VSA verified"
    } else {
        "no VSA"
    };
    format!("signed by key {}, {tlog}, {vsa}", r.key_id.short())
}

fn release_json(
    env: &str,
    decision: &str,
    target: &str,
    r: &VerifiedRelease,
    location: Option<&str>,
    repaired: bool,
    notes: &[String],
) -> Value {
    let tlog = match r.tlog {
        TlogStatus::Absent => json!({ "status": "absent" }),
        TlogStatus::NotChecked { entries } => {
            json!({ "status": "not_checked", "entries": entries })
        }
        TlogStatus::Verified { entries, .. } => {
            json!({ "status": "verified", "entries": entries, "logIndices": r.log_indices })
        }
    };
    let vsa = r.vsa.as_ref().map(|v| {
        json!({ "verifier": v.verifier, "timeVerified": v.time_verified,
                "policyDigest": v.policy_digest, "verifiedLevels": v.verified_levels })
    });
    json!({
        "ok": true,
        "environment": env,
        "decision": decision,
        "seq": r.seq,
        "digest": r.digest.to_string(),
        "kind": r.kind.as_str(),
        "name": r.subject_name,
        "requestedBy": r.requested_by,
        "releasedAt": r.released_at.to_rfc3339(),
        "previous": r.previous.as_ref().map(|(seq, digest)| json!({ "seq": seq, "digest": digest })),
        "keyId": r.key_id.to_string(),
        "tlog": tlog,
        "vsa": vsa,
        "target": target,
        "location": location,
        "repaired": repaired,
        "notes": notes,
    })
}

fn default_state_dir(environment: &str) -> anyhow::Result<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "custody")
        .context("no state directory for this user: give --state DIR")?;
    let base = dirs
        .state_dir()
        .unwrap_or_else(|| dirs.data_local_dir())
        .to_path_buf();
    Ok(base.join("deploy").join(environment))
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "custody-deploy".to_owned())
}

pub fn deploy(ctx: &Context, args: DeployArgs) -> anyhow::Result<Outcome> {
    let interval = if args.watch {
        let interval = custody_release::config::parse_duration(&args.interval)
            .map_err(|e| anyhow::anyhow!("--interval: {e}"))?;
        if interval < Duration::from_secs(1) {
            anyhow::bail!("--interval {:?}: poll at most once a second", args.interval);
        }
        Some(interval)
    } else {
        None
    };
    let mut deployer = Deployer::setup(&args)?;
    match interval {
        None => once(ctx, &mut deployer),
        Some(interval) => watch(ctx, &mut deployer, interval),
    }
}

/// One poll; a refusal exits 1, any other failure 2.
fn once(ctx: &Context, deployer: &mut Deployer) -> anyhow::Result<Outcome> {
    match deployer.poll() {
        Ok(polled) => {
            let (doc, line) = deployer.describe(&polled);
            ctx.emit(&doc, || line);
            Ok(Outcome::Done)
        }
        Err(PollError::Agent(AgentError::Refused(r))) => {
            Err(Denied::coded(r.code, r.to_string()).into())
        }
        Err(PollError::Agent(e)) => Err(e.into()),
        Err(PollError::Server(e)) => Err(e),
    }
}

/// Polls until a signal; each decision is logged once (repeats of the same one at debug
/// level), and a release whose activation keeps failing is retried with growing waits.
fn watch(ctx: &Context, deployer: &mut Deployer, interval: Duration) -> anyhow::Result<Outcome> {
    let stop = stop_signal()?;
    tracing::info!(
        "watching {} on {} every {}s, deploying to {}",
        deployer.environment,
        deployer.server.base,
        interval.as_secs(),
        deployer.target()
    );
    let mut last: Option<String> = None;
    let mut failures: u32 = 0;
    loop {
        let result = deployer.poll();
        let key = match &result {
            Ok(Polled::NoRelease) => "none".to_owned(),
            Ok(Polled::Applied(a)) => format!("active {} {}", a.release().seq, a.release().digest),
            Err(e) => e.text(),
        };
        // A deployment is always shown; "no change" after it is a repeat.
        let deployed =
            matches!(&result, Ok(Polled::Applied(a)) if matches!(**a, Applied::Deployed { .. }));
        let repeated = !deployed && last.as_deref() == Some(key.as_str());
        match &result {
            Ok(polled) => {
                failures = 0;
                let (doc, line) = deployer.describe(polled);
                if repeated {
                    tracing::debug!("{}", line.trim_end());
                } else {
                    ctx.emit(&doc, || line);
                }
            }
            Err(e) => {
                let activation = matches!(e, PollError::Agent(AgentError::Activation { .. }));
                failures = if activation && repeated {
                    failures + 1
                } else {
                    u32::from(activation)
                };
                let text = e.text();
                if repeated {
                    tracing::debug!("{text}");
                } else {
                    if ctx.output == OutputFormat::Json {
                        let code = match e {
                            PollError::Agent(a) => Some(a.code()),
                            PollError::Server(_) => None,
                        };
                        println!(
                            "{}",
                            json!({ "ok": false, "environment": deployer.environment,
                                    "denied": e.is_refusal(), "code": code, "error": text })
                        );
                    }
                    tracing::warn!("{text}");
                }
            }
        }
        last = Some(key);
        let wait = backoff(interval, failures);
        match stop.recv_timeout(wait) {
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    Ok(Outcome::Done)
}

/// The wait before the next poll: the interval, doubled for each repeated activation failure
/// (up to [`MAX_BACKOFF`], never below the interval).
fn backoff(interval: Duration, failures: u32) -> Duration {
    if failures <= 1 {
        return interval;
    }
    let factor = 1u32 << (failures - 1).min(10);
    interval
        .saturating_mul(factor)
        .min(MAX_BACKOFF.max(interval))
}

/// A channel that receives once SIGINT or SIGTERM arrives. The handlers are installed before
/// this returns.
fn stop_signal() -> anyhow::Result<mpsc::Receiver<()>> {
    let (stop_tx, stop_rx) = mpsc::channel();
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("custody-deploy-signals".into())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                let signal = super::serve::shutdown_signal();
                let _ = ready_tx.send(());
                signal.await;
            });
            let _ = stop_tx.send(());
        })
        .context("starting the signal handler")?;
    ready_rx
        .recv()
        .map_err(|_| anyhow::anyhow!("cannot install the SIGINT/SIGTERM handlers"))?;
    Ok(stop_rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let s = Duration::from_secs(2);
        assert_eq!(backoff(s, 0), s);
        assert_eq!(backoff(s, 1), s);
        assert_eq!(backoff(s, 2), Duration::from_secs(4));
        assert_eq!(backoff(s, 3), Duration::from_secs(8));
        assert_eq!(backoff(s, 40), MAX_BACKOFF);
        let long = Duration::from_secs(600);
        assert_eq!(backoff(long, 5), long);
    }
}
