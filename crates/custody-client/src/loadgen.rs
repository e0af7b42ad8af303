//! A load generator for any log that speaks the Rekor v2 write API and C2SP tlog-tiles
//! (`custody bench log`).
//!
//! Writes: `entries` distinct hashedrekord requests (ECDSA P-256) are signed and serialized
//! as complete HTTP/1.1 requests *before* the clock starts, then `concurrency` keep-alive
//! connections submit them, one request in flight each (see [`http`] for what is read of the
//! answers). Latency is submit → answer; a log that answers only after the batch's durable commit
//! and the signed checkpoint (custody does) makes that submit → signed checkpoint. A 503 is
//! retried after 10 ms and counted; the latency then runs from the first attempt.
//!
//! Reads: three phases of `reads` GETs each over `read_concurrency` keep-alive connections:
//! `/checkpoint`, hash tiles (levels 0 and 1, what a client fetches to build a proof), and
//! entry bundles.

mod http;
mod requests;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use custody_log::layout::{TILE_WIDTH, TileId, TilePath};
use serde::Serialize;

use http::{Connection, Target};
pub use requests::presign;

/// What to run.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The log's URL prefix (`http://HOST:PORT[/PREFIX]`).
    pub url: String,
    pub entries: usize,
    pub concurrency: usize,
    pub token: Option<String>,
    /// GETs per read phase (0: no read phases).
    pub reads: usize,
    pub read_concurrency: usize,
}

/// The load generator could not run (the log's answers are counted, not errors, except a
/// transport failure or an unexpected status, which stop the run).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    #[error("{0:?} is not an http://HOST:PORT[/PREFIX] URL")]
    Url(String),
    #[error("cannot sign the requests: {0}")]
    Sign(#[from] custody_core::keys::KeyError),
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("connection: {0}")]
    Io(#[source] std::io::Error),
    #[error("not an HTTP/1.1 answer: {0}")]
    Protocol(String),
    #[error("{method} {path}: HTTP {status}: {body}")]
    Status {
        method: &'static str,
        path: String,
        status: u16,
        body: String,
    },
    #[error("the checkpoint is not a C2SP checkpoint")]
    Checkpoint,
    #[error("a worker task failed: {0}")]
    Task(String),
}

/// Write-phase figures.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteReport {
    pub entries: usize,
    pub concurrency: usize,
    pub sign_seconds: f64,
    pub seconds: f64,
    pub entries_per_second: f64,
    pub created: usize,
    pub duplicates: usize,
    /// 503 answers (each retried).
    pub pushed_back: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Largest tree size, longest inclusion proof and largest answer among the sampled
    /// answers (every 101st).
    pub tree_size: u64,
    pub proof_hashes: usize,
    pub answer_bytes: usize,
    /// CPU time (user + system) of the load generator's own process during the timed part
    /// (not the signing beforehand), where the OS tells it (Linux `/proc/self/stat`): what
    /// the load generator takes from a server on the same machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cpu_seconds: Option<f64>,
}

/// One read phase.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadReport {
    pub kind: &'static str,
    pub requests: usize,
    pub seconds: f64,
    pub per_second: f64,
    pub bytes: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadReport {
    pub url: String,
    pub write: Option<WriteReport>,
    pub reads: Vec<ReadReport>,
    /// All read phases together.
    pub reads_per_second: f64,
}

/// Runs the write phase (if `entries > 0`), then the read phases (if `reads > 0`).
pub async fn run(config: &LoadConfig) -> Result<LoadReport, LoadError> {
    let target = Target::parse(&config.url)?;
    let mut report = LoadReport {
        url: config.url.clone(),
        ..LoadReport::default()
    };
    if config.entries > 0 {
        report.write = Some(write_phase(&target, config).await?);
    }
    if config.reads > 0 {
        let size = tree_size(&target).await?;
        for kind in ["checkpoint", "tile", "bundle"] {
            let paths = read_paths(kind, size);
            report
                .reads
                .push(read_phase(&target, config, kind, paths).await?);
        }
        let (n, secs) = report
            .reads
            .iter()
            .fold((0, 0.0), |(n, s), r| (n + r.requests, s + r.seconds));
        report.reads_per_second = rate(n, secs);
    }
    Ok(report)
}

fn rate(n: usize, seconds: f64) -> f64 {
    if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    }
}

async fn open_all(target: &Target, n: usize) -> Result<Vec<Connection>, LoadError> {
    let mut connections = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        connections.push(Connection::open(target).await?);
    }
    Ok(connections)
}

#[derive(Default)]
struct WorkerStats {
    latencies: Vec<Duration>,
    created: usize,
    duplicates: usize,
    pushed_back: usize,
    sample: Option<(u64, usize, usize)>,
}

async fn write_phase(target: &Target, config: &LoadConfig) -> Result<WriteReport, LoadError> {
    let signing = Instant::now();
    let (n, threads) = (config.entries, num_threads());
    let bodies = tokio::task::spawn_blocking(move || presign(n, threads))
        .await
        .map_err(|e| LoadError::Task(e.to_string()))??;
    let requests: Arc<Vec<Vec<u8>>> = Arc::new(
        bodies
            .iter()
            .map(|body| target.request(ENTRIES_PATH, Some(body), config.token.as_deref()))
            .collect(),
    );
    drop(bodies);
    let sign_seconds = signing.elapsed().as_secs_f64();
    let connections = open_all(target, config.concurrency).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    let workers: Vec<_> = connections
        .into_iter()
        .map(|connection| tokio::spawn(write_worker(connection, requests.clone(), next.clone())))
        .collect();
    let mut all = WorkerStats::default();
    for worker in workers {
        let stats = worker.await.map_err(|e| LoadError::Task(e.to_string()))??;
        all.latencies.extend(stats.latencies);
        all.created += stats.created;
        all.duplicates += stats.duplicates;
        all.pushed_back += stats.pushed_back;
        if let Some((size, hashes, bytes)) = stats.sample {
            let (s, h, b) = all.sample.unwrap_or_default();
            all.sample = Some((s.max(size), h.max(hashes), b.max(bytes)));
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let client_cpu_seconds = cpu_before
        .zip(process_cpu_seconds())
        .map(|(before, after)| after - before);
    all.latencies.sort_unstable();
    let pct = |p: f64| {
        let i = ((all.latencies.len() as f64 * p).ceil() as usize).saturating_sub(1);
        all.latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    let (tree_size, proof_hashes, answer_bytes) = all.sample.unwrap_or_default();
    Ok(WriteReport {
        entries: n,
        concurrency: config.concurrency,
        sign_seconds,
        seconds,
        entries_per_second: rate(n, seconds),
        created: all.created,
        duplicates: all.duplicates,
        pushed_back: all.pushed_back,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: pct(1.0),
        tree_size,
        proof_hashes,
        answer_bytes,
        client_cpu_seconds,
    })
}

/// User + system CPU seconds of this process so far (Linux: fields 14 and 15 of
/// `/proc/self/stat`, in USER_HZ ticks, 100 per second on every Linux ABI).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces: count fields after its closing ')'.
    let mut fields = stat.get(stat.rfind(')')? + 2..)?.split(' ');
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

fn num_threads() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

const ENTRIES_PATH: &str = "/api/v2/log/entries";

async fn write_worker(
    mut connection: Connection,
    requests: Arc<Vec<Vec<u8>>>,
    next: Arc<AtomicUsize>,
) -> Result<WorkerStats, LoadError> {
    let mut stats = WorkerStats::default();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(request) = requests.get(i) else {
            return Ok(stats);
        };
        let begin = Instant::now();
        let answer = loop {
            let (status, answer) = connection.send(request).await?;
            match status {
                201 => stats.created += 1,
                200 => stats.duplicates += 1,
                503 => {
                    stats.pushed_back += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                _ => {
                    let body = String::from_utf8_lossy(answer).into_owned();
                    return Err(LoadError::Status {
                        method: "POST",
                        path: ENTRIES_PATH.into(),
                        status,
                        body,
                    });
                }
            }
            break answer;
        };
        stats.latencies.push(begin.elapsed());
        if i % 101 == 0 {
            if let Some((size, hashes, bytes)) = proof_sample(answer) {
                let (s, h, b) = stats.sample.unwrap_or_default();
                stats.sample = Some((s.max(size), h.max(hashes), b.max(bytes)));
            }
        }
    }
}

/// (tree size, proof length, answer bytes) of a TransparencyLogEntry answer.
fn proof_sample(answer: &[u8]) -> Option<(u64, usize, usize)> {
    let doc: serde_json::Value = serde_json::from_slice(answer).ok()?;
    let proof = doc.get("inclusionProof")?;
    let size = proof.get("treeSize")?.as_str()?.parse().ok()?;
    Some((size, proof.get("hashes")?.as_array()?.len(), answer.len()))
}

async fn tree_size(target: &Target) -> Result<u64, LoadError> {
    let mut connection = Connection::open(target).await?;
    let (status, body) = connection
        .send(&target.request("/checkpoint", None, None))
        .await?;
    if status != 200 {
        let body = String::from_utf8_lossy(body).into_owned();
        return Err(LoadError::Status {
            method: "GET",
            path: "/checkpoint".into(),
            status,
            body,
        });
    }
    std::str::from_utf8(body)
        .ok()
        .and_then(|text| text.lines().nth(1)?.parse().ok())
        .ok_or(LoadError::Checkpoint)
}

/// The paths a phase cycles through: the checkpoint, every full tile of levels 0 and 1 (else
/// the partial level-0 tile), or every full entry bundle (else the partial one).
fn read_paths(kind: &str, size: u64) -> Vec<String> {
    let full = size / TILE_WIDTH;
    let partial = u16::try_from(size % TILE_WIDTH).ok().filter(|w| *w > 0);
    let tile = |level, index, width| {
        TilePath::Tile {
            level,
            index,
            width,
        }
        .to_path()
    };
    let mut paths: Vec<String> = match kind {
        "checkpoint" => vec!["checkpoint".to_owned()],
        "tile" => (0..full)
            .map(|i| tile(0, i, None))
            .chain((0..full / TILE_WIDTH).map(|i| tile(1, i, None)))
            .collect(),
        _ => (0..full)
            .map(|index| TilePath::Entries { index, width: None }.to_path())
            .collect(),
    };
    if paths.is_empty() && partial.is_some() {
        let id = TileId {
            level: 0,
            index: full,
        };
        paths.push(match kind {
            "tile" => tile(id.level, id.index, partial),
            _ => TilePath::Entries {
                index: full,
                width: partial,
            }
            .to_path(),
        });
    }
    paths.into_iter().map(|p| format!("/{p}")).collect()
}

async fn read_phase(
    target: &Target,
    config: &LoadConfig,
    kind: &'static str,
    paths: Vec<String>,
) -> Result<ReadReport, LoadError> {
    if paths.is_empty() {
        return Ok(ReadReport {
            kind,
            ..ReadReport::default()
        });
    }
    let connections = open_all(target, config.read_concurrency).await?;
    let requests: Vec<_> = paths
        .iter()
        .map(|path| target.request(path, None, None))
        .collect();
    let (paths, requests) = (Arc::new(paths), Arc::new(requests));
    let (next, total) = (Arc::new(AtomicUsize::new(0)), config.reads);
    let started = Instant::now();
    let workers: Vec<_> = connections
        .into_iter()
        .map(|mut connection| {
            let (paths, requests, next) = (paths.clone(), requests.clone(), next.clone());
            tokio::spawn(async move {
                let mut bytes = 0u64;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return Ok::<u64, LoadError>(bytes);
                    }
                    let (status, body) = connection.send(&requests[i % requests.len()]).await?;
                    if status != 200 {
                        let body = String::from_utf8_lossy(body).into_owned();
                        return Err(LoadError::Status {
                            method: "GET",
                            path: paths[i % paths.len()].clone(),
                            status,
                            body,
                        });
                    }
                    bytes += body.len() as u64;
                }
            })
        })
        .collect();
    let mut bytes = 0;
    for worker in workers {
        bytes += worker.await.map_err(|e| LoadError::Task(e.to_string()))??;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(ReadReport {
        kind,
        requests: total,
        seconds,
        per_second: rate(total, seconds),
        bytes,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn process_cpu_time_is_read_and_grows() {
        let before = process_cpu_seconds().unwrap();
        let mut x = 0u64;
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(process_cpu_seconds().unwrap() >= before);
    }
}
