//! Every HTTP listener custody runs (`custody serve`, plain or TLS, and the witness): the
//! accept loop, per-connection timeouts and the connection limit.
//!
//! What nginx, Go's net/http and HAProxy do, with the same figures by default:
//!
//! - **header timeout** (10 s): a request head (and, over TLS, the handshake) must arrive
//!   whole within this time of its first byte; a fresh connection's clock starts at accept.
//!   A client trickling a partial header is closed.
//! - **idle timeout** (60 s): a keep-alive connection with no request in progress and no byte
//!   of the next one is closed.
//! - **body timeout** (30 s): a handler reading the request body waits at most this long for
//!   the next bytes (a gap, not a total: large uploads keep going while bytes flow); a reply
//!   the client does not read for this long is abandoned too.
//! - **connection limit**: at the limit the server still accepts, and closes the oldest
//!   connection that is not inside a handler (idle, or still sending its header) to make
//!   room, so a flood of partial headers cannot keep new clients (or `/healthz`) out. Only
//!   when every connection is inside a handler is the new one refused.
//!
//! The per-request cost is two atomic additions (handler entered, handler left) and, when
//! the answer is flushed, one clock read and one re-arm of the connection's timer (its idle
//! deadline); timers are per connection, not per request.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::response::{IntoResponse as _, Response};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, Sleep};

/// Default `--header-timeout`.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `--idle-timeout`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default `--body-timeout`.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// File descriptors kept free of connections: the databases (with their WAL and journal
/// files), artifact files, outgoing connections (witnesses, webhooks) and the runtime.
pub const MIN_FD_HEADROOM: u64 = 256;
/// Fewest connections the default limit allows, however low the descriptor limit.
const MIN_DEFAULT_CONNECTIONS: u64 = 16;
/// Shedding and refusals are logged at most this often (with the counts since).
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Timeouts and the connection limit of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// Time to receive a whole request head (and a TLS handshake) from its first byte.
    pub header_timeout: Duration,
    /// Time a keep-alive connection may wait for the first byte of its next request.
    pub idle_timeout: Duration,
    /// Longest gap while a handler reads the request body or the client reads the reply.
    pub body_timeout: Duration,
    /// Open connections; at the limit the oldest one outside a handler is closed.
    pub max_connections: usize,
}

impl Default for ListenerLimits {
    /// The default timeouts and a limit derived from the current `RLIMIT_NOFILE`.
    fn default() -> Self {
        ListenerLimits {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_connections: default_max_connections(open_files_limit()),
        }
    }
}

/// The soft `RLIMIT_NOFILE` (`u64::MAX` when unlimited).
pub fn open_files_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (as Go's runtime does at start) and
/// returns the soft limit in force afterwards. A refusal leaves the limit as it was.
pub fn raise_open_files_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::debug!(error = %e, "cannot raise RLIMIT_NOFILE to its hard limit");
        }
    }
    open_files_limit()
}

/// The default connection limit for a descriptor limit of `nofile`: all of it but a headroom
/// of an eighth (at least [`MIN_FD_HEADROOM`]). 20,000 descriptors give 17,500 connections.
pub fn default_max_connections(nofile: u64) -> usize {
    let nofile = nofile.min(1 << 24);
    let headroom = (nofile / 8).max(MIN_FD_HEADROOM);
    let n = nofile.saturating_sub(headroom).max(MIN_DEFAULT_CONNECTIONS);
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// What the listener counts (rendered by `GET /metrics`).
#[derive(Debug, Default)]
pub struct ListenerStats {
    open: AtomicU64,
    accepted: AtomicU64,
    shed: AtomicU64,
    refused: AtomicU64,
    header_timeouts: AtomicU64,
    idle_timeouts: AtomicU64,
    body_timeouts: AtomicU64,
    /// Shed/refused counts already reported in a warning, and when (ms since `epoch`).
    warned: Mutex<(u64, u64, Option<std::time::Instant>)>,
}

impl ListenerStats {
    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections closed to make room for new ones.
    pub fn shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// Prometheus text for these counters.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let name = "custody_http_connections_open";
        let _ = writeln!(
            out,
            "# HELP {name} HTTP connections open now.\n# TYPE {name} gauge\n{name} {}",
            get(&self.open)
        );
        let name = "custody_http_connections_accepted_total";
        let _ = writeln!(
            out,
            "# HELP {name} HTTP connections accepted.\n# TYPE {name} counter\n{name} {}",
            get(&self.accepted)
        );
        let name = "custody_http_connections_closed_total";
        let _ = writeln!(
            out,
            "# HELP {name} HTTP connections the server closed, by reason (shed: oldest idle or partial connection closed at --max-connections; refused: at the limit with every connection inside a handler; header/idle/body: timeouts).\n# TYPE {name} counter"
        );
        for (reason, c) in [
            ("shed", &self.shed),
            ("refused", &self.refused),
            ("header_timeout", &self.header_timeouts),
            ("idle_timeout", &self.idle_timeouts),
            ("body_timeout", &self.body_timeouts),
        ] {
            let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {}", get(c));
        }
    }

    /// A rate-limited warning about shedding and refusals (at most one per [`WARN_EVERY`]).
    fn warn_pressure(&self, max_connections: usize) {
        let mut warned = self.warned.lock().unwrap_or_else(PoisonError::into_inner);
        if warned.2.is_some_and(|at| at.elapsed() < WARN_EVERY) {
            return;
        }
        let (shed, refused) = (self.shed(), self.refused.load(Ordering::Relaxed));
        tracing::warn!(
            max_connections,
            shed = shed.saturating_sub(warned.0),
            refused = refused.saturating_sub(warned.1),
            "at the connection limit: closing the oldest idle or partial connections for new \
             ones (raise --max-connections or RLIMIT_NOFILE if these are real clients)"
        );
        *warned = (shed, refused, Some(std::time::Instant::now()));
    }
}

// --- one connection's shared state -------------------------------------------------------

/// Low 31 bits: requests inside a handler. Bit 31: shed. High 32 bits: requests started
/// (wrapping), so the reader sees that a request came and went between two reads.
const IN_HANDLER: u64 = (1 << 31) - 1;
const SHED: u64 = 1 << 31;
const STARTED: u64 = 1 << 32;

struct Conn {
    state: AtomicU64,
    shed: Notify,
}

impl Conn {
    fn started(state: u64) -> u32 {
        (state >> 32) as u32
    }

    /// Marks the connection shed if no handler runs on it; the caller then notifies it.
    fn try_shed(&self) -> bool {
        let state = self.state.load(Ordering::Acquire);
        state & (IN_HANDLER | SHED) == 0
            && self
                .state
                .compare_exchange(state, state | SHED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }
}

/// Open connections by accept order.
#[derive(Default)]
struct Registry {
    conns: Mutex<BTreeMap<u64, Arc<Conn>>>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Closes the oldest connection outside a handler; false if every one is in a handler.
    fn shed_oldest(&self) -> bool {
        let mut conns = self.lock();
        let victim = conns
            .iter()
            .find(|(_, c)| c.try_shed())
            .map(|(id, c)| (*id, c.clone()));
        match victim {
            Some((id, conn)) => {
                conns.remove(&id);
                conn.shed.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Removes a connection from the registry when its task ends.
struct Registered {
    registry: Arc<Registry>,
    stats: Arc<ListenerStats>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
    }
}

// --- the accept loop ---------------------------------------------------------------------

/// Serves `app` on `listener` (over TLS when `tls` is given) until `shutdown` completes; then
/// stops accepting, lets the requests in flight finish and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: ListenerLimits,
    stats: Arc<ListenerStats>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let registry = Arc::new(Registry::default());
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a receiver; dropping them all closes the channel.
    let (done_tx, done_rx) = watch::channel(());
    let max = limits.max_connections.max(1);
    let mut next_id: u64 = 0;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (tcp, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                accept_error(&e, &registry, &stats, max).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        if registry.lock().len() >= max {
            if registry.shed_oldest() {
                stats.shed.fetch_add(1, Ordering::Relaxed);
            } else {
                stats.refused.fetch_add(1, Ordering::Relaxed);
                stats.warn_pressure(max);
                drop(tcp);
                continue;
            }
            stats.warn_pressure(max);
        }
        let conn = Arc::new(Conn {
            state: AtomicU64::new(0),
            shed: Notify::new(),
        });
        next_id += 1;
        registry.lock().insert(next_id, conn.clone());
        stats.open.fetch_add(1, Ordering::Relaxed);
        let registered = Registered {
            registry: registry.clone(),
            stats: stats.clone(),
            id: next_id,
        };
        let task = Task {
            app: app.clone(),
            conn,
            limits,
            stats: stats.clone(),
            stop: stop_rx.clone(),
        };
        let done = done_rx.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _registered = registered;
            match tls {
                None => task.run(tcp).await,
                Some(tls) => {
                    let handshake = tokio::time::timeout(limits.header_timeout, tls.accept(tcp));
                    let stream = tokio::select! {
                        s = handshake => s,
                        () = task.conn.shed.notified() => return,
                    };
                    match stream {
                        Ok(Ok(stream)) => task.run(stream).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => {
                            task.stats.header_timeouts.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(%peer, "TLS handshake timed out");
                        }
                    }
                }
            }
            drop(done);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(done_rx);
    done_tx.closed().await;
    Ok(())
}

/// `accept` failed: out of descriptors makes room by shedding; anything else is retried.
async fn accept_error(e: &io::Error, registry: &Registry, stats: &ListenerStats, max: usize) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted
    ) {
        return;
    }
    // EMFILE/ENFILE/ENOBUFS: the headroom is used up by something else; free one descriptor.
    if registry.shed_oldest() {
        stats.shed.fetch_add(1, Ordering::Relaxed);
    }
    stats.warn_pressure(max);
    tracing::warn!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_millis(10)).await;
}

struct Task {
    app: Router,
    conn: Arc<Conn>,
    limits: ListenerLimits,
    stats: Arc<ListenerStats>,
    stop: watch::Receiver<bool>,
}

impl Task {
    async fn run<Io>(mut self, io: Io)
    where
        Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let io = Guarded::new(io, self.conn.clone(), self.limits, self.stats.clone());
        let service = ConnService {
            app: self.app.clone(),
            conn: self.conn.clone(),
            body_timeout: self.limits.body_timeout,
            stats: self.stats.clone(),
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        // Timeouts are kept by `Guarded` (one timer per connection); hyper's own header
        // timer would be re-armed for every request.
        builder.keep_alive(true).header_read_timeout(None);
        let conn = builder.serve_connection(TokioIo::new(io), service);
        let mut conn = std::pin::pin!(conn);
        let mut stopping = false;
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::trace!(error = %e, "connection ended");
                    }
                    return;
                }
                // Shed: dropping the connection closes it (no handler runs on it).
                () = self.conn.shed.notified() => return,
                _ = self.stop.changed(), if !stopping => {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

// --- the service: counts requests inside handlers, guards the request body ---------------

#[derive(Clone)]
struct ConnService {
    app: Router,
    conn: Arc<Conn>,
    body_timeout: Duration,
    stats: Arc<ListenerStats>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnService {
    type Response = Response;
    type Error = Infallible;
    type Future = InHandler<<Router as tower_service::Service<hyper::Request<Body>>>::Future>;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        let before = self.conn.state.fetch_add(STARTED + 1, Ordering::AcqRel);
        let guard = Entered(self.conn.clone());
        if before & SHED != 0 {
            // The connection is being closed for a newer one; the handler must not start.
            return InHandler::Shed { guard: Some(guard) };
        }
        let request = request.map(|body| {
            Body::new(TimeoutBody {
                inner: body,
                timeout: self.body_timeout,
                sleep: None,
                waiting: false,
                stats: self.stats.clone(),
            })
        });
        let mut app = self.app.clone();
        InHandler::Run {
            inner: tower_service::Service::call(&mut app, request),
            guard,
        }
    }
}

/// A request inside a handler; leaving (answer or drop) decrements the count.
struct Entered(Arc<Conn>);

impl Drop for Entered {
    fn drop(&mut self) {
        self.0.state.fetch_sub(1, Ordering::AcqRel);
    }
}

pin_project_lite::pin_project! {
    #[project = InHandlerProj]
    enum InHandler<F> {
        Run { #[pin] inner: F, guard: Entered },
        Shed { guard: Option<Entered> },
    }
}

impl<F> Future for InHandler<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            InHandlerProj::Run { inner, .. } => inner.poll(cx),
            InHandlerProj::Shed { guard } => {
                drop(guard.take());
                Poll::Ready(Ok((
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    [(axum::http::header::CONNECTION, "close")],
                    "connection closed for a newer one (--max-connections)\n",
                )
                    .into_response()))
            }
        }
    }
}

/// The request body with a gap limit: no frame for `timeout` while the handler waits is an
/// error (the handler answers it as a bad request; the connection closes).
struct TimeoutBody {
    inner: Incoming,
    timeout: Duration,
    /// Allocated the first time the body has to wait.
    sleep: Option<Pin<Box<Sleep>>>,
    /// The last poll was pending (its deadline is armed).
    waiting: bool,
    stats: Arc<ListenerStats>,
}

/// The body timeout's error.
#[derive(Debug, thiserror::Error)]
#[error("request body: no bytes for {0:?} (--body-timeout)")]
struct BodyTimedOut(Duration);

impl http_body::Body for TimeoutBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.waiting = false;
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if !this.waiting {
            this.waiting = true;
            let deadline = Instant::now() + this.timeout;
            match &mut this.sleep {
                Some(sleep) => sleep.as_mut().reset(deadline),
                None => this.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        if let Some(sleep) = &mut this.sleep
            && sleep.as_mut().poll(cx).is_ready()
        {
            this.waiting = false;
            this.stats.body_timeouts.fetch_add(1, Ordering::Relaxed);
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut(this.timeout)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// When reading a request body failed because it stalled past the body timeout: the message
/// to answer (408) with. `None` for any other failure (too large, client gone).
pub fn body_timeout_message(error: &axum::Error) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(BodyTimedOut(after)) = e.downcast_ref::<BodyTimedOut>() {
            return Some(format!(
                "the request body stopped arriving: no bytes for {after:?} (server option \
                 --body-timeout); send the whole body without pauses"
            ));
        }
        cause = e.source();
    }
    None
}

// --- the connection's bytes: header and idle deadlines, stalled replies ------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// Receiving a request head: it must be whole by this deadline.
    Head(Instant),
    /// Between requests, no byte of the next one yet; the deadline is set when first waited.
    Idle(Option<Instant>),
    /// A handler runs: reads are the body's (its own timeout) or hyper watching for EOF.
    Busy,
}

/// The socket (or TLS stream) with the header and idle deadlines on reads and a stall
/// deadline on writes. One timer per connection, re-armed only when a wait begins.
struct Guarded<Io> {
    io: Io,
    conn: Arc<Conn>,
    limits: ListenerLimits,
    stats: Arc<ListenerStats>,
    phase: Phase,
    /// The started-requests count when `phase` was last decided.
    seen: u32,
    read_sleep: Pin<Box<Sleep>>,
    /// A write waiting for the client to read: its deadline.
    write_sleep: Option<Pin<Box<Sleep>>>,
    write_waiting: bool,
}

impl<Io> Guarded<Io> {
    fn new(io: Io, conn: Arc<Conn>, limits: ListenerLimits, stats: Arc<ListenerStats>) -> Self {
        let deadline = Instant::now() + limits.header_timeout;
        Guarded {
            io,
            conn,
            limits,
            stats,
            phase: Phase::Head(deadline),
            seen: 0,
            read_sleep: Box::pin(tokio::time::sleep_until(deadline)),
            write_sleep: None,
            write_waiting: false,
        }
    }

    /// Where the connection is, from the handler count and the started-requests count.
    fn update_phase(&mut self) {
        let state = self.conn.state.load(Ordering::Acquire);
        let started = Conn::started(state);
        if state & IN_HANDLER != 0 {
            self.phase = Phase::Busy;
            self.seen = started;
        } else if started != self.seen || self.phase == Phase::Busy {
            self.seen = started;
            self.phase = Phase::Idle(None);
        }
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for Guarded<Io> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.update_phase();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before && matches!(this.phase, Phase::Idle(_)) {
                    this.phase = Phase::Head(Instant::now() + this.limits.header_timeout);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let (deadline, what) = match this.phase {
                    Phase::Busy => return Poll::Pending,
                    Phase::Head(deadline) => (deadline, "header"),
                    Phase::Idle(Some(deadline)) => (deadline, "idle"),
                    Phase::Idle(None) => {
                        let deadline = Instant::now() + this.limits.idle_timeout;
                        this.phase = Phase::Idle(Some(deadline));
                        (deadline, "idle")
                    }
                };
                if this.read_sleep.deadline() != deadline {
                    this.read_sleep.as_mut().reset(deadline);
                }
                if this.read_sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                let counter = if what == "header" {
                    &this.stats.header_timeouts
                } else {
                    &this.stats.idle_timeouts
                };
                counter.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(timeout = what, "closing a connection");
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{what} timeout"),
                )))
            }
        }
    }
}

impl<Io: AsyncWrite + Unpin> Guarded<Io> {
    /// After an answer is flushed with no handler left running, start the idle deadline and
    /// register this task with its timer: hyper reads again only when the socket wakes it,
    /// so without this an idle connection would never see its deadline pass.
    fn arm_idle(&mut self, cx: &mut Context<'_>) {
        self.update_phase();
        if let Phase::Idle(deadline) = self.phase {
            let deadline = deadline.unwrap_or_else(|| Instant::now() + self.limits.idle_timeout);
            self.phase = Phase::Idle(Some(deadline));
            if self.read_sleep.deadline() != deadline {
                self.read_sleep.as_mut().reset(deadline);
            }
            // Pending registers the waker; ready means the next read fails with the timeout.
            let _ = self.read_sleep.as_mut().poll(cx);
        }
    }

    /// A write made progress (or failed): the stall deadline is off.
    fn wrote<T>(&mut self, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        self.write_waiting = false;
        result
    }

    /// A write is pending: arm the stall deadline on the first wait, fail once it passes.
    fn write_pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        if !self.write_waiting {
            self.write_waiting = true;
            let deadline = Instant::now() + self.limits.body_timeout;
            match &mut self.write_sleep {
                Some(sleep) => sleep.as_mut().reset(deadline),
                None => self.write_sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        if let Some(sleep) = &mut self.write_sleep
            && sleep.as_mut().poll(cx).is_ready()
        {
            self.stats.body_timeouts.fetch_add(1, Ordering::Relaxed);
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read nothing of the answer within the body timeout",
            )));
        }
        Poll::Pending
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for Guarded<Io> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            Poll::Pending => this.write_pending(cx),
            done => this.wrote(done),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.write_pending(cx),
            done => this.wrote(done),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Pending => this.write_pending(cx),
            done => {
                this.arm_idle(cx);
                this.wrote(done)
            }
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn default_limit_leaves_headroom_and_allows_the_benchmark() {
        assert_eq!(default_max_connections(20_000), 17_500);
        assert!(default_max_connections(20_000) >= 1_000);
        assert_eq!(default_max_connections(1_024), 768);
        assert_eq!(
            default_max_connections(100),
            MIN_DEFAULT_CONNECTIONS as usize
        );
        assert_eq!(default_max_connections(u64::MAX), 14_680_064);
    }

    #[test]
    fn shedding_takes_the_oldest_connection_outside_a_handler() {
        let registry = Registry::default();
        let conns: Vec<Arc<Conn>> = (0..3)
            .map(|_| {
                Arc::new(Conn {
                    state: AtomicU64::new(0),
                    shed: Notify::new(),
                })
            })
            .collect();
        for (i, c) in conns.iter().enumerate() {
            registry.lock().insert(i as u64, c.clone());
        }
        // The oldest is inside a handler: the second goes.
        conns[0].state.fetch_add(STARTED + 1, Ordering::AcqRel);
        assert!(registry.shed_oldest());
        assert_eq!(conns[1].state.load(Ordering::Acquire) & SHED, SHED);
        assert_eq!(conns[0].state.load(Ordering::Acquire) & SHED, 0);
        assert!(registry.shed_oldest());
        assert_eq!(conns[2].state.load(Ordering::Acquire) & SHED, SHED);
        // Only the busy one is left: nothing to shed.
        assert!(!registry.shed_oldest());
        assert_eq!(registry.lock().len(), 1);
    }
}
