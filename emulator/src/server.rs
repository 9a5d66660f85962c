//! The HTTP(S) front: accepts `POST /sessions`, applies configured faults and throttling
//! ([`crate::throttle`]), asks the verifier, answers like the service (201 credential set or an
//! AWS-style error), remembers the session granted ([`crate::sessions`]) and logs one JSON line per
//! decision. `POST /` signed for `sts` goes to [`crate::sts`].
//!
//! Owns sockets, TLS, the runtime thread and credential minting. It must not log or record
//! credentials, and it must not make verification decisions of its own.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use time::OffsetDateTime;
use time::macros::format_description;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::config::{Config, FaultKind};
use crate::files;
use crate::sessions::{IssuedSession, SESSIONS_KEPT, SessionStore};
use crate::sts;
use crate::throttle::{Throttle, ThrottleSettings};
use crate::verifier::{self, Accepted, HttpRequest, Refusal};

/// Largest request head (request line and headers) accepted, HTTP/1 and HTTP/2 alike. A
/// CreateSession head with five RSA-4096 intermediates is about 20 KiB.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Largest request body accepted; a CreateSession body is a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest text (message, serial, session name) kept in a [`Decision`] or logged, before the
/// short "… (N more bytes)" marker; requests choose much of that text.
pub const MAX_TEXT_BYTES: usize = 512;
/// Most concurrent HTTP/2 streams per connection.
const MAX_STREAMS: u32 = 32;
/// Descriptors kept free for the listener, the runtime, log output and one connection waiting to
/// be admitted when the cap is lowered to fit the process's open-file limit.
const FD_RESERVE: u64 = 32;
/// How long a connection accepted at the cap waits for another to close.
const ADMIT_WAIT: Duration = Duration::from_millis(250);
/// At most one "at the connection cap" log line per this interval.
const OVERLOAD_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// How the server treats connections and how much it remembers: the `[server]` table of the
/// configuration ([`crate::config::Settings`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most connections open at once (lowered to fit the open-file limit). At the cap, the
    /// connection that has waited longest without a request in flight is closed to admit the new
    /// one; when every connection has a request in flight, the new one waits briefly, then is
    /// closed.
    pub max_connections: usize,
    /// Time for a TLS handshake to complete.
    pub handshake_timeout: Duration,
    /// Time from a request's first byte until its head has arrived, and again for its body.
    pub request_timeout: Duration,
    /// Time a connection may stay open with no request in flight and nothing received.
    pub idle_timeout: Duration,
    /// How many decisions [`Running::decisions`] keeps (the most recent ones).
    pub decisions_kept: usize,
    /// When set, issued credentials expire this many seconds after issue instead of after the
    /// granted `durationSeconds` (for testing refresh with short-lived credentials; the granted
    /// duration is still checked and reported). [`Running::set_credential_seconds`] changes it
    /// while running.
    pub credential_seconds: Option<u32>,
    /// CreateSession throttling (the `[throttle]` table): by default 10 per second per
    /// (certificate, source address), as the service does.
    pub throttle: ThrottleSettings,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            handshake_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            decisions_kept: 1000,
            credential_seconds: None,
            throttle: ThrottleSettings::default(),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A TLS certificate or key file could not be read.
    #[error("cannot read the TLS {what} {}", path.display())]
    TlsRead {
        /// "certificate" or "key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A TLS certificate or key file holds something unusable.
    #[error("{}: {reason}", path.display())]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The certificate and key files do not make a TLS configuration.
    #[error("TLS certificate and key are not usable together: {0}")]
    TlsMismatch(String),
    /// The throwaway TLS CA or server certificate could not be made.
    #[error("cannot create the throwaway TLS certificate: {0}")]
    SelfIssued(String),
    /// `--tls-ca-out` could not be written.
    #[error("cannot write the TLS CA certificate")]
    TlsCaOut(#[source] files::Error),
    /// The address could not be bound.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The control plane's state file could not be loaded.
    #[error(transparent)]
    State(#[from] crate::control::Error),
    /// The listening socket, runtime or server thread could not be set up.
    #[error("cannot start the server: {what}")]
    Start {
        /// What failed.
        what: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// True when the TLS files or the output path given are wrong (exit 2); false when the system
    /// failed (exit 1).
    pub fn is_usage(&self) -> bool {
        match self {
            Error::TlsRead { .. } | Error::TlsFile { .. } | Error::TlsMismatch(_) => true,
            Error::TlsCaOut(e) => e.is_usage(),
            Error::State(e) => matches!(e, crate::control::state::Error::Parse { .. }),
            Error::SelfIssued(_) | Error::Listen { .. } | Error::Start { .. } => false,
        }
    }
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Plain HTTP or which TLS certificate to use.
    pub tls: Tls,
}

/// TLS choice.
#[derive(Debug, Clone)]
pub enum Tls {
    /// Plain HTTP.
    None,
    /// A fresh server certificate for 127.0.0.1/localhost from a throwaway CA, whose PEM is
    /// optionally written to `ca_out`.
    SelfIssued {
        /// Where to write the throwaway CA's PEM (for `AWS_CA_BUNDLE`).
        ca_out: Option<PathBuf>,
    },
    /// A certificate chain and private key from PEM files.
    Files {
        /// PEM certificate chain, leaf first.
        cert: PathBuf,
        /// PEM private key (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
    },
}

/// What the emulator decided about one request. Text that a request can choose is escaped and
/// cut to [`MAX_TEXT_BYTES`] ([`bounded_text`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// HTTP status sent (0 when a "hang" fault never answered).
    pub status: u16,
    /// `X-Amzn-ErrorType` sent, if any.
    pub error_type: Option<String>,
    /// The error message, or "session issued".
    pub message: String,
    /// The session name granted (on success).
    pub role_session_name: Option<String>,
    /// The duration granted (on success).
    pub duration_seconds: Option<u32>,
    /// The leaf certificate's serial, base 10, when it was read.
    pub serial_decimal: Option<String>,
}

impl Decision {
    /// Bytes of text this decision holds (what [`Limits::decisions_kept`] multiplies).
    pub fn text_bytes(&self) -> usize {
        self.message.len()
            + self.error_type.as_ref().map_or(0, String::len)
            + self.role_session_name.as_ref().map_or(0, String::len)
            + self.serial_decimal.as_ref().map_or(0, String::len)
    }
}

/// The last [`Limits::decisions_kept`] decisions, oldest first.
struct DecisionLog {
    kept: Mutex<VecDeque<Decision>>,
    capacity: usize,
}

impl DecisionLog {
    fn push(&self, d: Decision) {
        if self.capacity == 0 {
            return;
        }
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        while kept.len() >= self.capacity {
            kept.pop_front();
        }
        kept.push_back(d);
    }
}

/// What the server counts, for tests (also served as JSON at `GET /_emulator/stats`).
#[derive(Default)]
struct Counters {
    /// Requests answered or dropped (every decision).
    requests: AtomicU64,
    /// Credential sets issued (201 answers with credentials).
    sessions_issued: AtomicU64,
    /// [`Limits::credential_seconds`] in force; 0 for none.
    credential_seconds: AtomicU64,
    /// CreateSession requests answered 429 by the throttle.
    throttled: AtomicU64,
}

/// The path of the statistics endpoint: `GET` only, answered before fault injection, never counted
/// as a request.
pub const STATS_PATH: &str = "/_emulator/stats";
/// The debug view of one issued session: `GET /_emulator/sessions/{accessKeyId}` (no secrets).
pub const SESSIONS_PATH: &str = "/_emulator/sessions/";

/// A running emulator; stops when dropped.
pub struct Running {
    url: String,
    tls_ca_pem: Option<String>,
    decisions: Arc<DecisionLog>,
    counters: Arc<Counters>,
    sessions: Arc<SessionStore>,
    max_connections: usize,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Running {
    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The PEM of the CA that issued the server certificate, when self-issued.
    pub fn tls_ca_pem(&self) -> Option<String> {
        self.tls_ca_pem.clone()
    }

    /// The most recent decisions ([`Limits::decisions_kept`] of them at most), oldest first.
    pub fn decisions(&self) -> Vec<Decision> {
        self.decisions
            .kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// The connection cap in force: [`Limits::max_connections`], lowered if the process's
    /// open-file limit would not leave room for it.
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// Credential sets issued since start (every 201 with credentials), unbounded by
    /// [`Limits::decisions_kept`].
    pub fn sessions_issued(&self) -> u64 {
        self.counters.sessions_issued.load(Ordering::SeqCst)
    }

    /// Requests decided since start (answered, refused or hung by a fault).
    pub fn requests(&self) -> u64 {
        self.counters.requests.load(Ordering::SeqCst)
    }

    /// CreateSession requests refused 429 `ThrottlingException` by the throttle since start.
    pub fn throttled(&self) -> u64 {
        self.counters.throttled.load(Ordering::SeqCst)
    }

    /// The session issued with this access key id, while it is among the last
    /// [`SESSIONS_KEPT`].
    pub fn session(&self, access_key_id: &str) -> Option<IssuedSession> {
        self.sessions.get(access_key_id)
    }

    /// Sets (or with `None` clears) [`Limits::credential_seconds`] for the sets issued from now on.
    pub fn set_credential_seconds(&self, seconds: Option<u32>) {
        self.counters
            .credential_seconds
            .store(seconds.map_or(0, u64::from), Ordering::SeqCst);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct AppState {
    config: Config,
    limits: Limits,
    decisions: Arc<DecisionLog>,
    counters: Arc<Counters>,
    faults: Mutex<VecDeque<FaultKind>>,
    control: crate::control::Control,
    /// Every session granted (the newest [`SESSIONS_KEPT`]), for STS and the debug view.
    sessions: Arc<SessionStore>,
    throttle: Throttle,
}

/// Starts the emulator with [`Limits::default`]; see [`spawn_with`].
pub fn spawn(config: Config, opts: ServeOptions) -> Result<Running, Error> {
    spawn_with(config, Limits::default(), opts)
}

/// Starts the emulator on its own thread and tokio runtime; returns once it listens.
pub fn spawn_with(config: Config, limits: Limits, opts: ServeOptions) -> Result<Running, Error> {
    let (acceptor, tls_ca_pem) = match &opts.tls {
        Tls::None => (None, None),
        Tls::SelfIssued { ca_out } => {
            let (cfg, ca_pem) = self_issued_tls()?;
            if let Some(path) = ca_out {
                files::write_public(path, ca_pem.as_bytes()).map_err(Error::TlsCaOut)?;
            }
            (Some(cfg), Some(ca_pem))
        }
        Tls::Files { cert, key } => (Some(file_tls(cert, key)?), None),
    };
    let control = crate::control::Control::new(config.clone())?;
    let listener = std::net::TcpListener::bind(opts.listen).map_err(|source| Error::Listen {
        addr: opts.listen,
        source,
    })?;
    let start = |what| move |source| Error::Start { what, source };
    listener
        .set_nonblocking(true)
        .map_err(start("cannot make the listening socket non-blocking"))?;
    let addr = listener
        .local_addr()
        .map_err(start("cannot read the listening address"))?;
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{addr}");
    let max_connections = fit_open_file_limit(limits.max_connections);
    let decisions = Arc::new(DecisionLog {
        kept: Mutex::new(VecDeque::with_capacity(limits.decisions_kept.min(1024))),
        capacity: limits.decisions_kept,
    });
    let faults = config
        .faults
        .iter()
        .flat_map(|f| std::iter::repeat_n(f.kind.clone(), f.times as usize))
        .collect();
    let counters = Arc::new(Counters::default());
    counters.credential_seconds.store(
        limits.credential_seconds.map_or(0, u64::from),
        Ordering::SeqCst,
    );
    let sessions = Arc::new(SessionStore::new(SESSIONS_KEPT));
    let state = Arc::new(AppState {
        config,
        limits: limits.clone(),
        decisions: decisions.clone(),
        counters: counters.clone(),
        faults: Mutex::new(faults),
        control,
        sessions: sessions.clone(),
        throttle: Throttle::new(limits.throttle.clone()),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(start("cannot start the tokio runtime"))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let conns = Arc::new(Conns::new(max_connections));
    let thread = std::thread::Builder::new()
        .name("rolesanywhere-emulator".into())
        .spawn(move || {
            rt.block_on(accept_loop(listener, state, acceptor, conns, limits, rx));
            // Hanging connections (the "hang" fault) must not keep the process alive.
            rt.shutdown_background();
        })
        .map_err(start("cannot start the server thread"))?;
    Ok(Running {
        url,
        tls_ca_pem,
        decisions,
        counters,
        sessions,
        max_connections,
        shutdown: Some(tx),
        thread: Some(thread),
    })
}

/// Lowers `requested` so that the connections, plus [`FD_RESERVE`], fit the open-file limit: past
/// that limit `accept` fails and nobody, real clients included, gets in.
fn fit_open_file_limit(requested: usize) -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    let Some(soft) = soft else {
        return requested;
    };
    let room = usize::try_from(soft.saturating_sub(FD_RESERVE))
        .unwrap_or(usize::MAX)
        .max(1);
    if room < requested {
        log_line(&serde_json::json!({
            "event": "limit",
            "message": format!(
                "max_connections lowered from {requested} to {room}: the open-file limit is {soft}"
            ),
        }));
        room
    } else {
        requested
    }
}

/// One connection's progress, as the connection cap and the timeouts see it.
struct Slot {
    state: Mutex<SlotState>,
    /// Woken on every transition below and on eviction, so the connection's task re-reads its
    /// deadline.
    changed: Notify,
}

struct SlotState {
    /// Requests whose response has not been produced yet.
    in_flight: usize,
    /// When the connection last had nothing to do (accepted, handshake done, response sent).
    quiet_since: Instant,
    /// When the first byte after `quiet_since` arrived, while no request is in flight.
    reading_since: Option<Instant>,
    /// Closed to admit a newer connection at the cap.
    evicted: bool,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            state: Mutex::new(SlotState {
                in_flight: 0,
                quiet_since: Instant::now(),
                reading_since: None,
                evicted: false,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes arrived: when nothing is in flight, a request (or a TLS handshake) has started.
    fn on_bytes(&self) {
        let mut s = self.lock();
        if s.in_flight == 0 && s.reading_since.is_none() {
            s.reading_since = Some(Instant::now());
            drop(s);
            self.changed.notify_one();
        }
    }

    /// The TLS handshake is done: the connection now waits for its first request.
    fn ready(&self) {
        let mut s = self.lock();
        s.quiet_since = Instant::now();
        s.reading_since = None;
        drop(s);
        self.changed.notify_one();
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        let mut s = self.lock();
        s.in_flight += 1;
        s.reading_since = None;
        drop(s);
        self.changed.notify_one();
        InFlight(self.clone())
    }

    fn end(&self) {
        let mut s = self.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        if s.in_flight == 0 {
            s.quiet_since = Instant::now();
            s.reading_since = None;
        }
        drop(s);
        self.changed.notify_one();
    }

    /// When the connection must be closed if nothing changes; `None` while a request is in
    /// flight (its body read has its own deadline; the answer is ours to give).
    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        let s = self.lock();
        if s.evicted {
            Some(Instant::now())
        } else if s.in_flight > 0 {
            None
        } else if let Some(t) = s.reading_since {
            Some(t + limits.request_timeout)
        } else {
            Some(s.quiet_since + limits.idle_timeout)
        }
    }

    /// Since when the connection has waited for the client, or `None` while it has work.
    fn waiting_since(&self) -> Option<Instant> {
        let s = self.lock();
        (s.in_flight == 0 && !s.evicted).then(|| s.reading_since.unwrap_or(s.quiet_since))
    }

    fn evict(&self) -> bool {
        let mut s = self.lock();
        if s.in_flight > 0 || s.evicted {
            return false;
        }
        s.evicted = true;
        drop(s);
        self.changed.notify_one();
        true
    }

    fn is_evicted(&self) -> bool {
        self.lock().evicted
    }
}

/// A request in flight on a connection; ends when dropped (the response is produced, or the
/// connection went away).
struct InFlight(Arc<Slot>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// Every open connection, for the cap.
struct Conns {
    slots: Mutex<HashMap<u64, Arc<Slot>>>,
    next_id: AtomicU64,
    permits: Arc<Semaphore>,
}

impl Conns {
    fn new(cap: usize) -> Conns {
        Conns {
            slots: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            permits: Arc::new(Semaphore::new(cap)),
        }
    }

    fn register(self: &Arc<Self>) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot::new());
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, slot.clone());
        Registration {
            conns: self.clone(),
            id,
            slot,
        }
    }

    /// Closes the connection that has waited longest for its client; false when every
    /// connection has a request in flight.
    fn evict_quietest(&self) -> bool {
        let slots: Vec<Arc<Slot>> = self
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let mut candidates: Vec<(Instant, Arc<Slot>)> = slots
            .into_iter()
            .filter_map(|s| s.waiting_since().map(|t| (t, s)))
            .collect();
        candidates.sort_by_key(|(t, _)| *t);
        // A candidate may have started a request since it was looked at; try the next one.
        candidates.iter().any(|(_, s)| s.evict())
    }

    /// A permit for a new connection: at once when below the cap, else after closing the
    /// quietest connection, else none after [`ADMIT_WAIT`].
    async fn admit(&self) -> (Option<OwnedSemaphorePermit>, bool) {
        if let Ok(p) = self.permits.clone().try_acquire_owned() {
            return (Some(p), false);
        }
        let evicted = self.evict_quietest();
        let permit = tokio::time::timeout(ADMIT_WAIT, self.permits.clone().acquire_owned())
            .await
            .ok()
            .and_then(Result::ok);
        (permit, evicted)
    }
}

/// A connection's entry in [`Conns`]; removed when dropped.
struct Registration {
    conns: Arc<Conns>,
    id: u64,
    slot: Arc<Slot>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.conns
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

/// A socket that tells its [`Slot`] when bytes arrive.
struct Watched<T> {
    inner: T,
    slot: Arc<Slot>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.slot.on_bytes();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

async fn accept_loop(
    listener: std::net::TcpListener,
    state: Arc<AppState>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    conns: Arc<Conns>,
    limits: Limits,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            log_line(
                &serde_json::json!({"event": "error", "message": format!("cannot use the listening socket: {e}")}),
            );
            return;
        }
    };
    let app = axum::Router::new().fallback(handle).with_state(state);
    let mut overload = Overload::default();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else {
                    // Out of descriptors and similar: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let (permit, evicted) = conns.admit().await;
                overload.note(permit.is_some(), evicted);
                let Some(permit) = permit else {
                    // Every connection has a request in flight: this one is closed unserved.
                    continue;
                };
                // TLS 1.3 writes a NewSessionTicket and then the response as two small segments; with
                // Nagle on, the response waits for the client's delayed ACK (~40 ms).
                let _ = stream.set_nodelay(true);
                let registration = conns.register();
                tokio::spawn(serve_connection(
                    stream,
                    peer,
                    permit,
                    registration,
                    acceptor.clone(),
                    app.clone(),
                    limits.clone(),
                ));
            }
        }
    }
}

/// Counts connections closed at the cap and logs them at most once per [`OVERLOAD_LOG_INTERVAL`].
#[derive(Default)]
struct Overload {
    evicted: u64,
    refused: u64,
    last_log: Option<Instant>,
}

impl Overload {
    fn note(&mut self, admitted: bool, evicted: bool) {
        self.evicted += u64::from(evicted);
        self.refused += u64::from(!admitted);
        if self.evicted + self.refused == 0 {
            return;
        }
        let now = Instant::now();
        if self
            .last_log
            .is_some_and(|t| now.duration_since(t) < OVERLOAD_LOG_INTERVAL)
        {
            return;
        }
        log_line(&serde_json::json!({
            "event": "connections",
            "message": format!(
                "at the connection cap: closed {} idle connections to admit new ones and {} new connections while every connection was busy",
                self.evicted, self.refused
            ),
        }));
        self.evicted = 0;
        self.refused = 0;
        self.last_log = Some(now);
    }
}

fn http_builder() -> hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor> {
    let mut builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    builder.http1().max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .max_concurrent_streams(MAX_STREAMS);
    builder
}

tokio::task_local! {
    /// When the connection carrying the request being handled was accepted: the decision log
    /// gives it as `connection_accepted`, close to when the client started its attempt (the
    /// decision's own `ts` comes after the TLS handshake and the checks, late under load).
    static CONNECTION_ACCEPTED: OffsetDateTime;
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    _permit: OwnedSemaphorePermit,
    registration: Registration,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    app: axum::Router,
    limits: Limits,
) {
    let accepted_at = OffsetDateTime::now_utc();
    let slot = registration.slot.clone();
    let io = Watched {
        inner: stream,
        slot: slot.clone(),
    };
    let svc_slot = slot.clone();
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        let in_flight = svc_slot.begin();
        // The source address, for throttling per (certificate, address).
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        let app = app.clone();
        CONNECTION_ACCEPTED.scope(accepted_at, async move {
            let response = tower::ServiceExt::oneshot(app, req).await;
            drop(in_flight);
            response
        })
    });
    let builder = http_builder();
    match acceptor {
        Some(acc) => {
            let Some(tls) = handshake(acc, io, &slot, limits.handshake_timeout).await else {
                return;
            };
            slot.ready();
            let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(tls), svc);
            watch(conn, &slot, &limits).await;
        }
        None => {
            let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(io), svc);
            watch(conn, &slot, &limits).await;
        }
    }
}

/// The TLS handshake, bounded by `timeout` and abandoned on eviction.
async fn handshake<T: AsyncRead + AsyncWrite + Unpin>(
    acceptor: tokio_rustls::TlsAcceptor,
    io: T,
    slot: &Slot,
    timeout: Duration,
) -> Option<tokio_rustls::server::TlsStream<T>> {
    let accept = acceptor.accept(io);
    tokio::pin!(accept);
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            done = &mut accept => return done.ok(),
            _ = &mut deadline => return None,
            _ = slot.changed.notified() => {
                if slot.is_evicted() {
                    return None;
                }
            }
        }
    }
}

/// Drives a connection until it ends, its deadline ([`Slot::deadline`]) passes or it is evicted;
/// dropping the connection future closes the socket.
async fn watch<F: Future>(conn: F, slot: &Slot, limits: &Limits) {
    tokio::pin!(conn);
    loop {
        let deadline = slot.deadline(limits);
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return;
        }
        let expiry = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut conn => return,
            _ = slot.changed.notified() => {}
            _ = expiry => {}
        }
    }
}

fn rustls_config(
    certs: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> Result<tokio_rustls::TlsAcceptor, String> {
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("cannot configure TLS versions: {e}"))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| e.to_string())?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

fn self_issued_tls() -> Result<(tokio_rustls::TlsAcceptor, String), Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let failed = |what: &str| {
        let what = what.to_string();
        move |e: rcgen::Error| Error::SelfIssued(format!("{what}: {e}"))
    };
    let ca_key = KeyPair::generate().map_err(failed("cannot generate the TLS CA key"))?;
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = rcgen::DistinguishedName::new();
    ca_params.distinguished_name.push(
        DnType::CommonName,
        "rolesanywhere-emulator throwaway TLS CA",
    );
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = OffsetDateTime::now_utc();
    ca_params.not_before = now - time::Duration::hours(1);
    ca_params.not_after = now + time::Duration::days(30);
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(failed("cannot sign the TLS CA certificate"))?;
    let ca_pem = ca_cert.pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .map_err(failed("cannot prepare the TLS server certificate"))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(30);
    let key = KeyPair::generate().map_err(failed("cannot generate the TLS server key"))?;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(failed("cannot sign the TLS server certificate"))?;
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let acceptor = rustls_config(vec![cert.der().clone()], key_der).map_err(Error::SelfIssued)?;
    Ok((acceptor, ca_pem))
}

fn file_tls(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, Error> {
    use rustls::pki_types::pem::{self, PemObject as _};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |path: &std::path::Path, reason: &str| Error::TlsFile {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let cert_bytes = std::fs::read(cert).map_err(|source| Error::TlsRead {
        what: "certificate",
        path: cert.to_path_buf(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&cert_bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad(cert, "not a PEM certificate chain"))?;
    if certs.is_empty() {
        return Err(bad(cert, "holds no CERTIFICATE block"));
    }
    let key_bytes = std::fs::read(key).map_err(|source| Error::TlsRead {
        what: "key",
        path: key.to_path_buf(),
        source,
    })?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => bad(key, "holds no private key block"),
        _ => bad(key, "not a PEM private key"),
    })?;
    rustls_config(certs, key_der).map_err(Error::TlsMismatch)
}

fn log_line(v: &serde_json::Value) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{v}");
}

/// The only way text a request chose (paths, header values, ARNs, certificate names inside
/// messages) reaches the log and the kept decisions: control and bidirectional-formatting
/// characters become `\u{..}`, and the result is cut to [`MAX_TEXT_BYTES`] on a character
/// boundary, with a marker saying how much was cut.
pub fn bounded_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_TEXT_BYTES) + 32);
    for (i, c) in s.char_indices() {
        let escaped = c.is_control()
            || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        let width = if escaped { 10 } else { c.len_utf8() };
        if out.len() + width > MAX_TEXT_BYTES {
            out.push_str(&format!("… ({} more bytes)", s.len() - i));
            break;
        }
        if escaped {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

fn bounded(d: Decision) -> Decision {
    Decision {
        message: bounded_text(&d.message),
        role_session_name: d.role_session_name.as_deref().map(bounded_text),
        serial_decimal: d.serial_decimal.as_deref().map(bounded_text),
        ..d
    }
}

/// Logs and keeps a decision, its text through [`bounded`] first.
fn record(state: &AppState, d: Decision, extra: serde_json::Value) {
    let d = bounded(d);
    let requests = state.counters.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let mut line = serde_json::json!({
        "ts": OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "event": "decision",
        "status": d.status,
        "error_type": d.error_type,
        "message": d.message,
        "serial": d.serial_decimal,
        "role_session_name": d.role_session_name,
        "duration_seconds": d.duration_seconds,
        "requests": requests,
        "sessions_issued": state.counters.sessions_issued.load(Ordering::SeqCst),
    });
    if let (Ok(accepted), Some(obj)) = (CONNECTION_ACCEPTED.try_with(|t| *t), line.as_object_mut())
    {
        obj.insert(
            "connection_accepted".into(),
            accepted
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
                .into(),
        );
    }
    if let (Some(obj), serde_json::Value::Object(more)) = (line.as_object_mut(), extra) {
        obj.extend(more);
    }
    log_line(&line);
    state.decisions.push(d);
}

fn error_response(status: u16, error_type: &str, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (code, axum::Json(serde_json::json!({ "message": message }))).into_response();
    if let Ok(v) = HeaderValue::from_str(error_type) {
        resp.headers_mut().insert("x-amzn-errortype", v);
    }
    resp
}

fn fault_error_type(status: u16) -> &'static str {
    match status {
        400 => "ValidationException",
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        _ => "InternalServerException",
    }
}

async fn handle(
    State(state): State<Arc<AppState>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let refusal = |status: u16, error_type: &str, message: String, serial: Option<String>| {
        // The client gets the same bounded message that is logged: a 60 KB path is not echoed.
        let resp = error_response(status, error_type, &bounded_text(&message));
        let d = Decision {
            status,
            error_type: Some(error_type.to_string()),
            message,
            role_session_name: None,
            duration_seconds: None,
            serial_decimal: serial,
        };
        record(&state, d, serde_json::json!({}));
        resp
    };
    let limit = state.limits.request_timeout;
    let body = match tokio::time::timeout(limit, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            return refusal(
                413,
                "ValidationException",
                format!("request body is larger than {MAX_BODY_BYTES} bytes or was cut off"),
                None,
            );
        }
        Err(_) => {
            return refusal(
                408,
                "RequestTimeoutException",
                format!(
                    "request body did not arrive within {} s",
                    limit.as_secs_f64()
                ),
                None,
            );
        }
    };
    if uri.path() == STATS_PATH && method == Method::GET {
        return stats(&state);
    }
    if crate::control::Control::claims(uri.path()) {
        return control(&state, &method, &uri, &headers, &body);
    }
    if let Some(key) = uri.path().strip_prefix(SESSIONS_PATH)
        && method == Method::GET
    {
        return session_view(&state, key);
    }
    // The query-protocol APIs (STS, IAM) share `POST /`; the SigV4 scope names the service.
    if uri.path() == "/" && method == Method::POST {
        let service = crate::query::scope_service(&headers);
        if service.as_deref() == Some("sts") {
            let req = sts::StsRequest {
                uri: &uri,
                headers: &headers,
                body: &body,
            };
            return sts::handle(
                &state.sessions,
                &state.config.region,
                &req,
                OffsetDateTime::now_utc(),
            );
        }
        // IAM's query API; an unsigned request whose form names IAM's version is refused by it.
        if service.as_deref() == Some("iam")
            || (service.is_none() && crate::control::iam::is_iam_form(&body))
        {
            return iam(&state, &uri, &headers, &body);
        }
    }
    let fault = state
        .faults
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop_front();
    match fault {
        Some(FaultKind::Hang) => {
            record(
                &state,
                Decision {
                    status: 0,
                    error_type: None,
                    message: "injected fault: hang (no answer)".into(),
                    role_session_name: None,
                    duration_seconds: None,
                    serial_decimal: None,
                },
                serde_json::json!({"fault": "hang"}),
            );
            return std::future::pending().await;
        }
        Some(FaultKind::Status(s)) => {
            return refusal(
                s,
                fault_error_type(s),
                format!("injected fault: status {s}"),
                None,
            );
        }
        Some(FaultKind::MalformedBody) => {
            record(
                &state,
                Decision {
                    status: 201,
                    error_type: None,
                    message: "injected fault: malformed body".into(),
                    role_session_name: None,
                    duration_seconds: None,
                    serial_decimal: None,
                },
                serde_json::json!({"fault": "malformed-body"}),
            );
            return (
                StatusCode::CREATED,
                [("content-type", "application/json")],
                "{\"credentialSet\":[{\"credentials\":{\"accessKeyId\":",
            )
                .into_response();
        }
        None => {}
    }
    if uri.path() != "/sessions" || method != Method::POST {
        return refusal(
            404,
            "UnknownOperationException",
            format!("no operation {method} {} (only POST /sessions)", uri.path()),
            None,
        );
    }
    let claimed_serial = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| verifier::parse_authorization(v).ok())
        .map(|a| a.serial);
    if let Err(exceeded) = state.throttle.admit(
        claimed_serial.as_deref().unwrap_or(""),
        peer.ip(),
        Instant::now(),
    ) {
        state.counters.throttled.fetch_add(1, Ordering::SeqCst);
        let which = match exceeded {
            crate::throttle::Exceeded::PerCertificate => "certificate and source address",
            crate::throttle::Exceeded::Total => "all clients together",
        };
        let resp = error_response(429, "ThrottlingException", "Rate exceeded");
        let d = Decision {
            status: 429,
            error_type: Some("ThrottlingException".into()),
            message: format!("Rate exceeded (CreateSession limit for {which})"),
            role_session_name: None,
            duration_seconds: None,
            serial_decimal: claimed_serial,
        };
        record(&state, d, serde_json::json!({"throttled": which}));
        return resp;
    }
    let mut pairs = Vec::with_capacity(headers.len() + 1);
    for (name, value) in &headers {
        let Ok(v) = value.to_str() else {
            return refusal(
                400,
                "ValidationException",
                format!("header {name} is not visible ASCII"),
                None,
            );
        };
        pairs.push((name.as_str().to_string(), v.to_string()));
    }
    // HTTP/2 carries the host in :authority, which hyper moves into the URI.
    if !headers.contains_key("host")
        && let Some(authority) = uri.authority()
    {
        pairs.push(("host".to_string(), authority.to_string()));
    }
    let req = HttpRequest {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: &pairs,
        body: &body,
    };
    let now = OffsetDateTime::now_utc();
    let config = state.control.snapshot();
    match verifier::verify(&req, &config, now) {
        Ok(acc) => match crate::trust::authorize(&acc, &config) {
            Ok(grant) => success(&state, &acc, grant, now),
            Err(denial) => trust_refusal(&state, &acc, denial),
        },
        Err(Refusal {
            kind,
            message,
            serial_decimal,
        }) => refusal(kind.status(), kind.error_type(), message, serial_decimal),
    }
}

/// A request the verifier accepted but the role's trust policy refused: the client gets the
/// service's message, the decision log what decided ([`crate::trust::Denial::detail`] and its
/// record).
fn trust_refusal(state: &AppState, acc: &Accepted, denial: crate::trust::Denial) -> Response {
    let error_type = verifier::ErrorKind::AccessDenied.error_type();
    let resp = error_response(403, error_type, &bounded_text(&denial.message));
    let mut extra = denial.record;
    if let Some(obj) = extra.as_object_mut() {
        obj.insert("profile_arn".into(), bounded_text(&acc.profile_arn).into());
        obj.insert("role_arn".into(), bounded_text(&acc.role_arn).into());
        obj.insert(
            "trust_anchor_arn".into(),
            bounded_text(&acc.trust_anchor_arn).into(),
        );
    }
    record(
        state,
        Decision {
            status: 403,
            error_type: Some(error_type.to_string()),
            message: denial.detail,
            role_session_name: None,
            duration_seconds: None,
            serial_decimal: Some(acc.serial_decimal.clone()),
        },
        extra,
    );
    resp
}

/// Hands a control-plane request (not a decision: not counted, not faulted) to [`crate::control`].
fn control(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let pairs = header_pairs(uri, headers);
    let req = crate::control::Request {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: &pairs,
        body,
    };
    let resp = state.control.handle(&req, OffsetDateTime::now_utc());
    log_line(&serde_json::json!({
        "control": format!("{method} {}", bounded_text(uri.path())),
        "status": resp.status().as_u16(),
        "error_type": resp.headers().get("x-amzn-errortype").and_then(|v| v.to_str().ok()),
    }));
    resp
}

/// Tells the control plane about a granted session (ListSubjects, GetSubject); a state file that
/// cannot be written is logged, the session stands.
fn record_subject(state: &AppState, acc: &Accepted, subject_id: String, now: OffsetDateTime) {
    let seen = crate::control::SubjectSeen {
        subject_id,
        trust_anchor_arn: acc.trust_anchor_arn.clone(),
        leaf_der: acc.leaf_der.clone(),
        seen_at: now,
    };
    if let Err(e) = state.control.record_subject(seen) {
        log_line(&serde_json::json!({ "subjects": format!("{:#}", anyhow::Error::new(e)) }));
    }
}

/// Hands an IAM query-API request (not a decision: not counted, not faulted) to the control
/// plane, which logs it.
fn iam(state: &AppState, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
    let pairs = header_pairs(uri, headers);
    let req = crate::control::Request {
        method: "POST",
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: &pairs,
        body,
    };
    state.control.handle_iam(&req, OffsetDateTime::now_utc())
}

/// The headers as (name, value) pairs for the SigV4 checks, with `host` from the URI's
/// authority for HTTP/2.
fn header_pairs(uri: &Uri, headers: &HeaderMap) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    if !headers.contains_key("host")
        && let Some(authority) = uri.authority()
    {
        pairs.push(("host".to_string(), authority.to_string()));
    }
    pairs
}

fn random_string(len: usize, alphabet: &[u8]) -> String {
    // Both alphabets have a power-of-two length (32, 64), so masking a random byte is uniform.
    debug_assert!(alphabet.len().is_power_of_two());
    let mut bytes = vec![0u8; len];
    crate::ca::fill_random(&mut bytes);
    bytes
        .iter()
        .map(|b| char::from(alphabet[usize::from(*b) & (alphabet.len() - 1)]))
        .collect()
}

const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// RFC 3339 UTC with whole seconds, as the service writes `expiration`.
pub fn format_expiration(t: OffsetDateTime) -> String {
    let fmt = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_default()
}

fn arn_field(arn: &str, index: usize) -> &str {
    arn.split(':').nth(index).unwrap_or("")
}

fn success(
    state: &AppState,
    acc: &Accepted,
    grant: crate::trust::Grant,
    now: OffsetDateTime,
) -> Response {
    let session = acc
        .role_session_name
        .clone()
        .unwrap_or_else(|| acc.serial_hex.clone());
    let crate::trust::Grant {
        principal_tags,
        source_identity,
        session_policy,
        record: trust_record,
    } = grant;
    let partition = arn_field(&acc.role_arn, 1);
    let account = arn_field(&acc.role_arn, 4);
    let role_name = acc.role_arn.rsplit('/').next().unwrap_or("");
    let mut token = vec![0u8; 320];
    crate::ca::fill_random(&mut token);
    let digest = ring::digest::digest(&ring::digest::SHA256, acc.serial_decimal.as_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest.as_ref()[..16]);
    let subject_id = uuid_text(&id);
    let lifetime = match state.counters.credential_seconds.load(Ordering::SeqCst) {
        0 => i64::from(acc.duration_seconds),
        n => i64::try_from(n).unwrap_or(i64::MAX),
    };
    let expires_at = now + time::Duration::seconds(lifetime);
    let expiration = format_expiration(expires_at);
    let issued = IssuedSession {
        access_key_id: format!("ASIA{}", random_string(16, UPPER_ALNUM)),
        secret_access_key: random_string(40, SECRET_CHARS).into(),
        session_token: base64::engine::general_purpose::STANDARD
            .encode(&token)
            .into(),
        role_arn: acc.role_arn.clone(),
        assumed_role_arn: format!(
            "arn:{partition}:sts::{account}:assumed-role/{role_name}/{session}"
        ),
        user_id: format!("{}:{session}", sts::role_id(&acc.role_arn)),
        account: account.to_string(),
        role_session_name: session.clone(),
        principal_tags: principal_tags.tags,
        source_identity: source_identity.clone(),
        session_policy,
        profile_arn: acc.profile_arn.clone(),
        trust_anchor_arn: acc.trust_anchor_arn.clone(),
        serial_decimal: acc.serial_decimal.clone(),
        issued_at: now,
        expiration: expires_at,
    };
    let body = serde_json::json!({
        "credentialSet": [{
            "assumedRoleUser": {
                "arn": issued.assumed_role_arn,
                "assumedRoleId": issued.user_id,
            },
            "credentials": {
                "accessKeyId": issued.access_key_id,
                "secretAccessKey": issued.secret_access_key.as_str(),
                "sessionToken": issued.session_token.as_str(),
                "expiration": expiration,
            },
            "packedPolicySize": 0,
            "roleArn": acc.role_arn,
            "sourceIdentity": source_identity,
        }],
        "subjectArn": format!(
            "arn:{partition}:rolesanywhere:{}:{}:subject/{subject_id}",
            state.config.region,
            arn_field(&acc.trust_anchor_arn, 4)
        ),
    });
    state.sessions.insert(issued);
    record_subject(state, acc, subject_id, now);
    // Counted before the decision is logged, so its line carries the new count.
    state
        .counters
        .sessions_issued
        .fetch_add(1, Ordering::SeqCst);
    record(
        state,
        Decision {
            status: 201,
            error_type: None,
            message: "session issued".into(),
            role_session_name: Some(session),
            duration_seconds: Some(acc.duration_seconds),
            serial_decimal: Some(acc.serial_decimal.clone()),
        },
        {
            let mut extra = serde_json::json!({
                "profile_arn": acc.profile_arn,
                "role_arn": acc.role_arn,
                "trust_anchor_arn": acc.trust_anchor_arn,
                "expiration": expiration,
            });
            if let (Some(obj), serde_json::Value::Object(more)) =
                (extra.as_object_mut(), trust_record)
            {
                obj.extend(more);
            }
            extra
        },
    );
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

/// `GET /_emulator/stats`: what the server counted, as JSON (not a decision; not counted).
fn stats(state: &AppState) -> Response {
    let c = &state.counters;
    let seconds = c.credential_seconds.load(Ordering::SeqCst);
    (
        StatusCode::OK,
        axum::Json(serde_json::json!({
            "requests": c.requests.load(Ordering::SeqCst),
            "sessions_issued": c.sessions_issued.load(Ordering::SeqCst),
            "credential_seconds": (seconds != 0).then_some(seconds),
            "throttled": c.throttled.load(Ordering::SeqCst),
            "throttle": {
                "enabled": state.limits.throttle.enabled,
                "create_session_per_second": state.limits.throttle.create_session_per_second,
                "total_per_second": state.limits.throttle.total_per_second,
            },
        })),
    )
        .into_response()
}

/// `GET /_emulator/sessions/{accessKeyId}`: what a granted session carries, never its secret key
/// or token (not a decision; not counted).
fn session_view(state: &AppState, access_key_id: &str) -> Response {
    match state.sessions.get(access_key_id) {
        Some(s) => (StatusCode::OK, axum::Json(s.public_view())).into_response(),
        None => error_response(
            404,
            "ResourceNotFoundException",
            &bounded_text(&format!(
                "no session with access key id {access_key_id:?} (unknown, or older than the last {SESSIONS_KEPT})"
            )),
        ),
    }
}

/// 16 bytes in the 8-4-4-4-12 hex form of a UUID.
pub fn uuid_text(b: &[u8; 16]) -> String {
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_text_escapes_controls_and_cuts_on_a_character_boundary() {
        assert_eq!(bounded_text("plain"), "plain");
        assert_eq!(
            bounded_text("a\u{1b}[31m\nb\u{202e}c"),
            "a\\u{1b}[31m\\u{a}b\\u{202e}c"
        );
        let long = "é".repeat(1000);
        let cut = bounded_text(&long);
        let (kept, marker) = cut.split_once('…').expect("marker");
        assert!(kept.len() <= MAX_TEXT_BYTES && kept.chars().all(|c| c == 'é'));
        assert_eq!(marker, format!(" ({} more bytes)", 2000 - kept.len()));
    }

    #[test]
    fn decision_log_keeps_only_the_newest() {
        let log = DecisionLog {
            kept: Mutex::new(VecDeque::new()),
            capacity: 3,
        };
        for status in 1..=5 {
            log.push(Decision {
                status,
                error_type: None,
                message: String::new(),
                role_session_name: None,
                duration_seconds: None,
                serial_decimal: None,
            });
        }
        let kept: Vec<u16> = log
            .kept
            .lock()
            .expect("lock")
            .iter()
            .map(|d| d.status)
            .collect();
        assert_eq!(kept, [3, 4, 5]);
    }
}
