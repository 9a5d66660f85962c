//! `serve`: the local credential endpoints, IMDSv2 ([`imds`]) and the container endpoint
//! ([`container`]), over our own small HTTP/1.1 server ([`http`]), reading credentials from the
//! refresher.
//!
//! Threads: the caller's thread accepts (one `poll` over every listener and the stop socket); each
//! connection gets a thread of its own, at most [`Limits::max_connections`] at once (one over the
//! cap is answered 503 and closed). A connection is kept alive between requests for at most
//! [`Limits::idle`]; a request must arrive within [`http::REQUEST_TIMEOUT`] of its first byte, and
//! each write must progress within [`Limits::write_timeout`]. Memory per connection is its stack
//! and one 8 KiB buffer; tokens are bounded in number. So a client can hold neither unbounded memory
//! nor a thread for long.
//!
//! Scope: a listener on a loopback address serves both endpoints; one on any other address (a
//! pod's link-local address, a wildcard) serves only the token-protected container endpoint, since
//! IMDS has no secret a remote client lacks.
//!
//! Stop: when the stop socket becomes readable (SIGTERM/SIGINT, see [`crate::shutdown`]) the
//! listeners close, idle connections close, requests already being read or answered are finished
//! (with `Connection: close`), and [`run`] returns.
//!
//! Must not: call CreateSession (the refresher does), log tokens or credentials, or log per
//! request.

pub mod container;
pub mod http;
pub mod imds;
pub(crate) mod sys;

use crate::refresh::{Issued, Log, Unavailable};
use crate::secret::Secret;
use http::{Conn, ReadError, Response};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd as _;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Binding a listening address failed.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A socket passed by systemd is unusable.
    #[error("cannot use socket {index} passed by systemd (LISTEN_FDS)")]
    Activation {
        /// Its index (descriptor 3 + index).
        index: usize,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// More listeners than the accept loop polls.
    #[error("too many listening sockets ({0}); at most 32 are served")]
    TooManyListeners(usize),
    /// Waiting for connections failed.
    #[error("cannot wait for connections")]
    Poll(#[source] std::io::Error),
}

impl rolesanywhere_core::Classify for Error {
    fn class(&self) -> rolesanywhere_core::ErrorClass {
        match self {
            Error::TooManyListeners(_) => rolesanywhere_core::ErrorClass::Configuration,
            _ => rolesanywhere_core::ErrorClass::Operational,
        }
    }
}

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// IMDSv2 and the container endpoint (loopback addresses).
    Local,
    /// The container endpoint only (any other address).
    ContainerOnly,
}

impl Scope {
    /// The scope of a listener on `ip`.
    pub fn of(ip: IpAddr) -> Scope {
        let loopback = match ip {
            IpAddr::V4(v4) => v4.is_loopback(),
            IpAddr::V6(v6) => {
                v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
        };
        if loopback {
            Scope::Local
        } else {
            Scope::ContainerOnly
        }
    }
}

/// A listening socket and what it serves.
pub struct Listener {
    /// The socket.
    pub socket: TcpListener,
    /// Its address (with the port the system picked for port 0).
    pub addr: SocketAddr,
    /// What it serves.
    pub scope: Scope,
}

/// Binds `addrs`, in order.
pub fn bind(addrs: &[SocketAddr]) -> Result<Vec<Listener>, Error> {
    addrs
        .iter()
        .map(|&addr| {
            let socket = TcpListener::bind(addr).map_err(|source| Error::Bind { addr, source })?;
            listener(socket).map_err(|source| Error::Bind { addr, source })
        })
        .collect()
}

/// Takes the `count` sockets systemd passed (the caller checked `LISTEN_PID`).
pub fn from_systemd(count: usize) -> Result<Vec<Listener>, Error> {
    (0..count)
        .map(|index| {
            sys::systemd_listener(index)
                .and_then(listener)
                .map_err(|source| Error::Activation { index, source })
        })
        .collect()
}

fn listener(socket: TcpListener) -> std::io::Result<Listener> {
    // Non-blocking: the accept loop takes every pending connection after a poll, up to WouldBlock.
    socket.set_nonblocking(true)?;
    let addr = socket.local_addr()?;
    Ok(Listener {
        socket,
        addr,
        scope: Scope::of(addr.ip()),
    })
}

/// The server's bounds.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// How long a kept-alive connection may wait for its next request.
    pub idle: Duration,
    /// How long one write may block.
    pub write_timeout: Duration,
    /// How long [`run`] waits for requests in flight when stopping.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 256,
            idle: Duration::from_secs(30),
            write_timeout: Duration::from_secs(5),
            drain: Duration::from_secs(15),
        }
    }
}

/// Where the credentials come from: the refresher's `current` in the program, a stand-in in tests.
pub type Source = Arc<dyn Fn() -> Result<Arc<Issued>, Unavailable> + Send + Sync>;

/// What the endpoints answer with.
pub struct Endpoints {
    /// The role name IMDS lists (the last part of the role ARN).
    pub role: String,
    /// The role's account, for the container endpoint's `AccountId`.
    pub account_id: String,
    /// The container endpoint's token; `None` disables the endpoint.
    pub container_token: Option<Secret>,
    /// IP TTL / IPv6 hop limit set on every accepted connection.
    pub hop_limit: u8,
    /// The credentials.
    pub source: Source,
}

struct Shared {
    endpoints: Endpoints,
    tokens: imds::Tokens,
    limits: Limits,
    stop: UnixStream,
    stopping: AtomicBool,
    active: Mutex<usize>,
    idle: Condvar,
    log: Log,
}

/// Serves `listeners` until `stop` becomes readable, then finishes the requests in flight (up to
/// [`Limits::drain`]) and returns.
pub fn run(
    listeners: Vec<Listener>,
    endpoints: Endpoints,
    limits: Limits,
    stop: UnixStream,
    log: Log,
) -> Result<(), Error> {
    if listeners.len() > 32 {
        return Err(Error::TooManyListeners(listeners.len()));
    }
    let shared = Arc::new(Shared {
        endpoints,
        tokens: imds::Tokens::default(),
        limits,
        stop,
        stopping: AtomicBool::new(false),
        active: Mutex::new(0),
        idle: Condvar::new(),
        log,
    });
    let mut fds: Vec<_> = listeners.iter().map(|l| l.socket.as_raw_fd()).collect();
    fds.push(shared.stop.as_raw_fd());
    let stop_bit = 1u64 << listeners.len();
    let mut failing = false;
    loop {
        let ready = sys::poll_readable(&fds, None).map_err(Error::Poll)?;
        if ready & stop_bit != 0 {
            break;
        }
        for (i, l) in listeners.iter().enumerate() {
            if ready & (1 << i) == 0 {
                continue;
            }
            loop {
                match l.socket.accept() {
                    Ok((stream, _)) => {
                        failing = false;
                        admit(&shared, stream, l.scope);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        // Out of descriptors or memory: said once per streak; the pause keeps a
                        // persistent failure from spinning.
                        if !failing {
                            (shared.log)(&format!("cannot accept a connection on {}: {e}", l.addr));
                            failing = true;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                        break;
                    }
                }
            }
        }
    }
    shared.stopping.store(true, Ordering::SeqCst);
    drop(listeners);
    let deadline = Instant::now() + shared.limits.drain;
    let mut active = shared.active.lock().unwrap_or_else(|e| e.into_inner());
    while *active > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            (shared.log)(&format!(
                "stopping with {active} connection(s) still busy after {} s",
                shared.limits.drain.as_secs()
            ));
            break;
        }
        active = shared
            .idle
            .wait_timeout(active, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    Ok(())
}

/// Starts a thread for `stream`, or answers 503 when at the connection cap.
fn admit(shared: &Arc<Shared>, stream: TcpStream, scope: Scope) {
    {
        let mut active = shared.active.lock().unwrap_or_else(|e| e.into_inner());
        if *active >= shared.limits.max_connections {
            drop(active);
            // Best effort and never blocking the accept loop: the answer fits the socket buffer.
            let mut stream = stream;
            if stream.set_nonblocking(true).is_ok() {
                let r = Response::text(503, "too many connections");
                let _ = http::write_response(&mut stream, &r, true);
            }
            return;
        }
        *active += 1;
    }
    let s = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("serve-connection".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            connection(&s, stream, scope);
            let mut active = s.active.lock().unwrap_or_else(|e| e.into_inner());
            *active -= 1;
            s.idle.notify_all();
        });
    if spawned.is_err() {
        let mut active = shared.active.lock().unwrap_or_else(|e| e.into_inner());
        *active -= 1;
    }
}

/// Sets the IP TTL (IPv4) or unicast hop limit (IPv6) of an accepted connection.
fn set_hop_limit(stream: &TcpStream, hops: u8) -> std::io::Result<()> {
    match stream.local_addr()? {
        SocketAddr::V4(_) => stream.set_ttl(u32::from(hops)),
        SocketAddr::V6(_) => socket2::SockRef::from(stream).set_unicast_hops_v6(u32::from(hops)),
    }
}

/// Serves one connection until it closes, idles out, fails, or the server stops.
fn connection(shared: &Shared, stream: TcpStream, scope: Scope) {
    let setup = stream
        .set_nonblocking(false)
        .and_then(|()| set_hop_limit(&stream, shared.endpoints.hop_limit))
        .and_then(|()| stream.set_write_timeout(Some(shared.limits.write_timeout)))
        .and_then(|()| stream.set_nodelay(true));
    if let Err(e) = setup {
        (shared.log)(&format!("cannot set up a connection: {e}"));
        return;
    }
    let fds = [stream.as_raw_fd(), shared.stop.as_raw_fd()];
    let mut conn = Conn::new(stream);
    loop {
        if !conn.has_buffered() {
            match sys::poll_readable(&fds, Some(shared.limits.idle)) {
                Ok(ready) if ready & 1 != 0 && ready & 2 == 0 => {}
                // Idle too long, stopping, or poll failed.
                _ => return,
            }
        }
        let (response, close) = match conn.read_request() {
            Ok(req) => {
                let r = answer(shared, scope, &req);
                (r, req.close || shared.stopping.load(Ordering::SeqCst))
            }
            Err(ReadError::Closed | ReadError::Io) => return,
            Err(ReadError::Timeout) => (Response::text(408, "request timeout"), true),
            Err(ReadError::Bad(status, reason)) => (Response::text(status, reason), true),
        };
        let written = http::write_response(&mut conn.stream, &response, close);
        if close || written.is_err() {
            return;
        }
    }
}

/// The answer to `req` on a listener of `scope`.
fn answer(shared: &Shared, scope: Scope, req: &http::Request) -> Response {
    let path = imds::normalize(&req.path);
    let e = &shared.endpoints;
    let source = &*e.source;
    if path == container::PATH
        && let Some(token) = &e.container_token
    {
        return container::Container {
            token,
            account_id: &e.account_id,
            credentials: source,
        }
        .answer(req);
    }
    match scope {
        Scope::Local => imds::Imds {
            tokens: &shared.tokens,
            role: &e.role,
            credentials: source,
        }
        .answer(req, &path, Instant::now()),
        Scope::ContainerOnly => Response::text(404, "not found"),
    }
}
