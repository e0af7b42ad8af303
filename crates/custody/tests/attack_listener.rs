//! Attacks on `custody serve`'s listener and its tile reader, as an unauthenticated client
//! would make them (issue 16, attacks 1 and 9): thousands of connections holding a partial
//! request header, slow headers and bodies, and tile indexes beyond any possible tree.
//!
//! Every test runs a real `custody serve` on 127.0.0.1 and stops by itself: connects have a
//! timeout, reads have a timeout, and the floods are bounded in count and time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod logd;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use custody_log::layout::encode_index;
use logd::{TOKEN, hashedrekord, p256, post_entry, scratch};

/// What a fresh client must get `/healthz` within while the flood is held.
const HEALTHZ_WITHIN: Duration = Duration::from_millis(100);
/// A partial request header: the request line and one header, never the blank line.
const PARTIAL: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: flood\r\n";

/// The timing-sensitive tests run one at a time (the machine's cores are few and shared).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `custody serve` with its stderr kept (to check what it logs); killed when dropped.
struct Server {
    child: Child,
    url: String,
    addr: SocketAddr,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// A log server on a free loopback port. `open_files`: run it under `ulimit -n` of that
    /// many descriptors (soft and hard), as a host with a low limit would.
    fn start(data: &std::path::Path, extra: &[&str], open_files: Option<u32>) -> Server {
        let token = data.with_extension("token");
        std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
        let custody = assert_cmd::cargo::cargo_bin("custody");
        let mut args: Vec<String> = [
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--origin",
            "log.test",
            "--data-dir",
            data.to_str().unwrap(),
            "--write-token-file",
            token.to_str().unwrap(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let mut command = match open_files {
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(&custody)
                    .args(&args);
                c
            }
            None => {
                let mut c = Command::new(&custody);
                c.args(&args);
                c
            }
        };
        let mut child = command
            .env_remove("CUSTODY_WRITE_TOKEN")
            .env_remove("CUSTODY_HOME")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                eprintln!("[server] {line}");
                lines.lock().unwrap().push(line);
            }
        });
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .rsplit(' ')
            .next()
            .filter(|u| u.starts_with("http://"))
            .unwrap_or_else(|| {
                panic!(
                    "no listening line: {line:?}; stderr: {:?}",
                    stderr.lock().unwrap()
                )
            })
            .to_owned();
        let addr = url.trim_start_matches("http://").parse().unwrap();
        Server {
            child,
            url,
            addr,
            stderr,
        }
    }

    fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }
}

/// `GET /healthz` on a fresh connection, raw (no client library in the timing): the time from
/// connect to the whole answer, or why it failed.
fn healthz(addr: SocketAddr) -> Result<Duration, String> {
    let started = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)
        .map_err(|e| format!("read: {e}"))?;
    let took = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    if !answer.starts_with("HTTP/1.1 200") {
        return Err(format!("answer: {answer:?}"));
    }
    Ok(took)
}

/// Opens up to `n` connections that each send a partial header and hold it, for at most
/// `budget`; returns the streams (kept open by the caller) and the connects that failed.
/// A connect waits up to 2 s (a dropped SYN is sent again after 1 s).
fn flood(addr: SocketAddr, n: usize, budget: Duration) -> (Vec<TcpStream>, Vec<String>) {
    let started = Instant::now();
    let mut held = Vec::with_capacity(n);
    let mut failed = Vec::new();
    while held.len() + failed.len() < n && started.elapsed() < budget {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(mut s) => {
                let _ = s.write_all(PARTIAL);
                held.push(s);
            }
            Err(e) => failed.push(e.to_string()),
        }
    }
    (held, failed)
}

/// The flood got through: `n` connects tried within the budget, at most 1% failed (a
/// starved accept loop fails them by the hundred: the backlog fills and stays full).
fn assert_flood_accepted(held: &[TcpStream], failed: &[String], n: usize) {
    assert_eq!(
        held.len() + failed.len(),
        n,
        "the flood did not finish in time"
    );
    assert!(
        failed.len() * 100 <= n,
        "{} of {n} connects failed (the backlog is full: the attack works): {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
}

/// Requires `/healthz` within [`HEALTHZ_WITHIN`] on `checks` fresh connections, spaced out
/// (the first after the connects of the flood have settled: the flood is still held).
fn healthz_keeps_answering(addr: SocketAddr, checks: usize) {
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..checks {
        let took = healthz(addr).unwrap_or_else(|e| panic!("healthz check {i}: {e}"));
        eprintln!("healthz check {i}: {took:?}");
        assert!(
            took < HEALTHZ_WITHIN,
            "healthz check {i} took {took:?} while the flood was held"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The value of a Prometheus sample line `name` in `/metrics`.
fn metric(url: &str, name: &str) -> f64 {
    let (status, _, body) = logd::get(&format!("{url}/metrics"));
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
}

#[test]
fn attack_idle_connections_cannot_starve_healthz() {
    let _serial = one_at_a_time();
    // The attack of issue 16 at a twentieth of the scale: a server with 1,024 descriptors
    // and 3,000 connections holding a partial header (on a host with 20,000 descriptors it
    // takes 20,000). The client raises its own limit to hold them all.
    let limit = custody_server::listener::raise_open_files_limit();
    assert!(
        limit >= 4_000,
        "the test needs 4,000 descriptors, has {limit}"
    );
    let (_tmp, data) = scratch();
    let server = Server::start(&data, &[], Some(1024));
    healthz(server.addr).unwrap();

    let (held, failed) = flood(server.addr, 3_000, Duration::from_secs(30));
    assert_flood_accepted(&held, &failed, 3_000);
    healthz_keeps_answering(server.addr, 5);
    // The server made room by closing the oldest partial connections, and said so.
    assert!(
        metric(
            &server.url,
            "custody_http_connections_closed_total{reason=\"shed\"}"
        ) > 0.0
    );
    assert!(
        server
            .stderr()
            .iter()
            .any(|l| l.contains("at the connection limit")),
        "shedding is logged"
    );
    drop(held);
}

#[test]
fn attack_partial_headers_beyond_max_connections_are_shed_for_new_clients() {
    let _serial = one_at_a_time();
    let (_tmp, data) = scratch();
    let server = Server::start(&data, &["--max-connections", "200"], None);
    healthz(server.addr).unwrap();

    let (held, failed) = flood(server.addr, 1_000, Duration::from_secs(20));
    assert_flood_accepted(&held, &failed, 1_000);
    healthz_keeps_answering(server.addr, 5);
    let shed = metric(
        &server.url,
        "custody_http_connections_closed_total{reason=\"shed\"}",
    );
    assert!(shed >= 800.0, "shed {shed} of 1,000 partial connections");
    let open = metric(&server.url, "custody_http_connections_open");
    assert!(
        open <= 200.0,
        "{open} connections open with --max-connections 200"
    );
    // The shed connections are closed: the oldest one reads end-of-file (or a reset).
    let mut first = held.into_iter().next().unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0u8; 64];
    match first.read(&mut buf) {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!(
            "a shed connection answered: {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
    }
}

/// Reads until the server closes the connection; returns when (from `since`) and what it sent.
fn until_closed(s: &mut TcpStream, since: Instant, limit: Duration) -> (Duration, Vec<u8>) {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (since.elapsed(), got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (since.elapsed(), got);
            }
            Err(e) => panic!(
                "the server kept the connection open for {:?}: {e}",
                since.elapsed()
            ),
        }
    }
}

#[test]
fn attack_partial_header_is_closed_after_the_header_timeout() {
    let _serial = one_at_a_time();
    let (_tmp, data) = scratch();
    let server = Server::start(
        &data,
        &[
            "--header-timeout",
            "1",
            "--idle-timeout",
            "2",
            "--body-timeout",
            "1",
        ],
        None,
    );
    let window = |took: Duration, low: f64, what: &str| {
        assert!(
            took >= Duration::from_secs_f64(low) && took < Duration::from_secs_f64(low + 1.5),
            "{what}: closed after {took:?}"
        );
    };

    // A partial header, then silence: closed after the header timeout, nothing answered.
    let started = Instant::now();
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(PARTIAL).unwrap();
    let (took, got) = until_closed(&mut s, started, Duration::from_secs(5));
    window(took, 0.9, "partial header");
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));

    // Slowloris: a byte every 200 ms keeps the connection busy but not alive; the header
    // deadline counts from the first byte.
    let started = Instant::now();
    let mut s = TcpStream::connect(server.addr).unwrap();
    let trickle = std::thread::spawn({
        let mut s = s.try_clone().unwrap();
        move || {
            for b in PARTIAL.iter().cycle().take(40) {
                if s.write_all(&[*b]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    });
    let (took, _) = until_closed(&mut s, started, Duration::from_secs(5));
    window(took, 0.9, "trickled header");
    let _ = trickle.join();

    // A keep-alive client is not cut by the (shorter) header timeout between requests…
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    for _ in 0..3 {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        std::thread::sleep(Duration::from_millis(1_300));
    }
    // …and is closed after the idle timeout with no request.
    let started = Instant::now();
    let (took, got) = until_closed(&mut s, started, Duration::from_secs(6));
    assert!(got.is_empty());
    window(took, 0.6, "idle keep-alive connection"); // 2 s idle, 1.3 s of it already spent

    // A request body that stops: the handler gives up after the body timeout.
    let started = Instant::now();
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(
        format!(
            "POST /api/v2/log/entries HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"hashedRekord"
        )
        .as_bytes(),
    )
    .unwrap();
    let (took, got) = until_closed(&mut s, started, Duration::from_secs(5));
    window(took, 0.9, "stalled body");
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("--body-timeout"), "{got}");

    // The server still serves, and counted what it closed.
    healthz(server.addr).unwrap();
    assert!(
        metric(
            &server.url,
            "custody_http_connections_closed_total{reason=\"header_timeout\"}"
        ) >= 2.0
    );
    assert!(
        metric(
            &server.url,
            "custody_http_connections_closed_total{reason=\"body_timeout\"}"
        ) >= 1.0
    );
}

#[test]
fn serve_refuses_out_of_range_listener_flags() {
    let (_tmp, data) = scratch();
    for (flag, value) in [
        ("--header-timeout", "0"),
        ("--header-timeout", "3601"),
        ("--idle-timeout", "ten"),
        ("--body-timeout", "0.01"),
        ("--max-connections", "0"),
    ] {
        let out = Command::new(assert_cmd::cargo::cargo_bin("custody"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .args([flag, value])
            .env_remove("CUSTODY_WRITE_TOKEN")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag), "{flag} {value}: {err}");
    }
}

/// Tile paths whose index no tree can reach, with the answer main gave before the fix.
fn beyond_any_tree() -> Vec<String> {
    let tile = |level: u8, index: u64| format!("tile/{level}/{}", encode_index(index));
    let entries = |index: u64| format!("tile/entries/{}", encode_index(index));
    vec![
        tile(0, 1 << 55),
        tile(0, 1 << 63),
        tile(0, u64::MAX),
        format!("{}.p/255", tile(0, u64::MAX)),
        tile(1, 1 << 62),
        entries(1 << 55),
        format!("{}.p/1", entries(1 << 55)),
        format!("{}.p/255", entries((1 << 56) - 1)),
    ]
}

#[test]
fn attack_tile_index_out_of_range_answers_404_not_500() {
    let (_tmp, data) = scratch();
    let server = Server::start(&data, &[], None);
    let key = p256();
    for i in 0..3 {
        let body = hashedrekord(&key, format!("artifact {i}").as_bytes());
        assert_eq!(post_entry(&server.url, &body, Some(TOKEN)).0, 201);
    }
    for path in beyond_any_tree() {
        let (status, _, body) = logd::get(&format!("{}/{path}", server.url));
        assert_eq!(status, 404, "{path}: {}", String::from_utf8_lossy(&body));
    }
    // Malformed: 400.
    for path in [
        "tile/0/x018/x446/x744/x073/x709/x551/616",
        "tile/0/x001/x000/x000/x000/x000/x000/x000/000",
        "tile/0/000.p/0",
        "tile/0/000.p/256",
        "tile/0/000.p/99999999999999999999999",
        "tile/99999999999999999999999/000",
        "tile/entries/+00",
    ] {
        assert_eq!(
            logd::get(&format!("{}/{path}", server.url)).0,
            400,
            "{path}"
        );
    }
    // The tree's own tile still answers.
    assert_eq!(logd::get(&format!("{}/tile/0/000.p/3", server.url)).0, 200);
    let log = server.stderr();
    assert!(
        !log.iter()
            .any(|l| l.contains("ERROR") || l.contains("panicked")),
        "out-of-range tile requests logged errors: {log:#?}"
    );
}

#[test]
fn attack_tile_entries_index_near_2_pow_56_does_not_overflow() {
    // Index 2^56 - 1: its first entry is 2^64 - 256, and a full bundle's end, 2^64, does not
    // fit a u64. The addition overflowed in the tile reader (a panic in a debug build).
    let (_tmp, data) = scratch();
    let server = Server::start(&data, &[], None);
    for index in [(1u64 << 56) - 1, 1 << 56, u64::MAX] {
        let path = format!("tile/entries/{}", encode_index(index));
        let answer = logd::agent().get(&format!("{}/{path}", server.url)).call();
        let status = answer
            .map(|r| r.status().as_u16())
            .unwrap_or_else(|e| panic!("{path}: no answer: {e}"));
        assert_eq!(status, 404, "{path}");
    }
    assert_eq!(logd::get(&format!("{}/healthz", server.url)).0, 200);
    let log = server.stderr();
    assert!(
        !log.iter()
            .any(|l| l.contains("ERROR") || l.contains("panicked")),
        "{log:#?}"
    );
}
