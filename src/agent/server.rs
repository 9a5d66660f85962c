//! The agent's Unix socket: bind with private modes, systemd activation, peer credentials, accept loop.
//!
//! Binding ([`bind`]): the socket's directory is created 0700 (0750 and the socket group's with a
//! group), or, when it exists, must belong to this user and be writable by nobody else; a stale
//! socket left by an agent that died is replaced, a live one is an error, anything else at the
//! path is refused and left alone. The socket is bound, given its mode (0600, or 0660 and the
//! group) and only then listens, so it is never reachable with wider permissions.
//!
//! Serving ([`run`]): like `serve`, the caller's thread polls the listener and the stop socket;
//! each connection gets a thread, at most [`Limits::max_connections`] at once (one over the cap is
//! answered `busy` and closed). A connection carries one request, which must arrive complete within
//! [`Limits::request_timeout`] and fit [`protocol::MAX_REQUEST`]; the caller is identified by the
//! kernel (`SO_PEERCRED`, `SO_PEERGROUPS`) and the [`Backend`] decides. Each write must progress
//! within [`Limits::write_timeout`].
//!
//! Must not: log credentials, or log per connection except refusals of callers that are not
//! allowed (rate-limited: a looping caller cannot flood the log). The authorization rule itself is
//! [`allowed`], applied by the backend.

use super::protocol::{self, ErrorCode, Failure, Request, Response, StatusReport};
use super::sys;
use crate::refresh::{Issued, Log};
use std::io::{Read as _, Write as _};
use std::os::fd::{AsFd as _, AsRawFd as _};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The process at the other end of a connection, as the kernel recorded it at `connect(2)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Process id (`SO_PEERCRED`).
    pub pid: i32,
    /// Effective uid.
    pub uid: u32,
    /// Effective gid.
    pub gid: u32,
    /// Supplementary groups (`SO_PEERGROUPS`; empty on kernels before 4.13).
    pub groups: Vec<u32>,
}

impl Peer {
    /// The process connected to `stream`.
    pub fn of(stream: &UnixStream) -> std::io::Result<Peer> {
        let (pid, uid, gid) = sys::peer_credentials(stream.as_fd())?;
        let groups = sys::peer_groups(stream.as_fd())?;
        Ok(Peer {
            pid,
            uid,
            gid,
            groups,
        })
    }
}

/// Whether `peer` may read a profile that allows `uids` and `gids`: its uid is listed, or its
/// primary gid or one of its supplementary groups is. Taken literally: empty lists allow no one
/// (the configuration fills in the agent's own uid for a profile that names no one).
pub fn allowed(peer: &Peer, uids: &[u32], gids: &[u32]) -> bool {
    uids.contains(&peer.uid)
        || gids.contains(&peer.gid)
        || peer.groups.iter().any(|g| gids.contains(g))
}

/// What answers the requests: the agent's profiles (the registry), or a stand-in in tests.
pub trait Backend: Send + Sync {
    /// Credentials of `profile` for `peer`: waits (up to `deadline`) when none is usable yet.
    fn credentials(
        &self,
        profile: &str,
        peer: &Peer,
        deadline: Instant,
    ) -> Result<Arc<Issued>, Failure>;
    /// The status report, listing the profiles `peer` may read.
    fn status(&self, peer: &Peer) -> StatusReport;
}

/// Why the socket cannot be set up, or the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Unix socket path is limited to 107 bytes.
    #[error(
        "socket path {} is too long ({len} bytes; a Unix socket path has at most 107): choose a \
         shorter one",
        crate::text::path(path)
    )]
    PathTooLong {
        /// The path.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
    /// The socket's directory could not be created or given its mode.
    #[error("cannot create the socket directory {}", crate::text::path(path))]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The directory or the path could not be examined.
    #[error("cannot examine {}", crate::text::path(path))]
    Inspect {
        /// The directory or socket path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The socket's parent is not a directory.
    #[error(
        "{} is not a directory (a symbolic link is not followed); choose another socket path",
        crate::text::path(path)
    )]
    NotADirectory {
        /// The parent.
        path: PathBuf,
    },
    /// The socket's directory belongs to someone else, who could replace the socket.
    #[error(
        "socket directory {} belongs to uid {owner}, not to this user (uid {uid}): whoever owns it \
         could replace the socket; use a directory of your own",
        crate::text::path(path)
    )]
    DirectoryOwner {
        /// The directory.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// This process's effective uid.
        uid: u32,
    },
    /// The socket's directory is writable by others, who could replace the socket.
    #[error(
        "socket directory {} is writable by its group or others (mode {mode:04o}): they could \
         replace the socket; remove their write permission (chmod go-w) or use another directory",
        crate::text::path(path)
    )]
    DirectoryMode {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Something that is not a socket is at the socket path.
    #[error(
        "{} exists and is not a socket; it was left alone: remove it or choose another socket path",
        crate::text::path(path)
    )]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// Another agent answers on the socket.
    #[error(
        "another agent is listening on {}; stop it first or choose another socket path",
        crate::text::path(path)
    )]
    Live {
        /// The path.
        path: PathBuf,
    },
    /// A stale socket could not be removed.
    #[error("cannot remove the stale socket {}", crate::text::path(path))]
    RemoveStale {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Binding or listening failed.
    #[error("cannot listen on {}", crate::text::path(path))]
    Bind {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The socket's group or mode could not be set.
    #[error("cannot set the group and mode of socket {}", crate::text::path(path))]
    Permissions {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `LISTEN_PID` is this process but `LISTEN_FDS` is not 1.
    #[error(
        "LISTEN_PID is this process but LISTEN_FDS={} is not 1: the agent takes exactly one \
         socket (one ListenStream= in its socket unit)",
        crate::text::arg(.0)
    )]
    ListenFds(String),
    /// The socket systemd passed is unusable.
    #[error("cannot use the socket passed by systemd (LISTEN_FDS)")]
    Activation(#[source] std::io::Error),
    /// Waiting for connections failed.
    #[error("cannot wait for connections")]
    Poll(#[source] std::io::Error),
}

impl rolesanywhere_core::Classify for Error {
    fn class(&self) -> rolesanywhere_core::ErrorClass {
        use rolesanywhere_core::ErrorClass::{Configuration, Operational};
        match self {
            Error::PathTooLong { .. }
            | Error::NotADirectory { .. }
            | Error::DirectoryOwner { .. }
            | Error::DirectoryMode { .. }
            | Error::NotASocket { .. }
            | Error::ListenFds(_) => Configuration,
            _ => Operational,
        }
    }
}

/// Longest socket path (`sun_path` holds 108 bytes with the terminating NUL).
const MAX_PATH: usize = 107;

/// Binds the agent's socket at `path`: directory 0700 and socket 0600, or with `group` directory
/// 0750 and socket 0660 owned by that group. An existing directory is used as it is, once checked
/// to be this user's and not writable by anyone else.
pub fn bind(path: &Path, group: Option<u32>) -> Result<UnixListener, Error> {
    let len = path.as_os_str().len();
    if len > MAX_PATH {
        return Err(Error::PathTooLong {
            path: path.into(),
            len,
        });
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    prepare_directory(dir, group)?;
    clear_stale(path)?;
    let bind_err = |source| Error::Bind {
        path: path.into(),
        source,
    };
    let socket = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)
        .map_err(bind_err)?;
    socket
        .bind(&socket2::SockAddr::unix(path).map_err(bind_err)?)
        .map_err(bind_err)?;
    // Bound but not listening: a connect is refused until the modes below are in place.
    let modes = (|| {
        if let Some(g) = group {
            std::os::unix::fs::chown(path, None, Some(g))?;
        }
        let mode = if group.is_some() { 0o660 } else { 0o600 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    })();
    if let Err(source) = modes {
        let _ = std::fs::remove_file(path);
        return Err(Error::Permissions {
            path: path.into(),
            source,
        });
    }
    if let Err(source) = socket.listen(128) {
        let _ = std::fs::remove_file(path);
        return Err(bind_err(source));
    }
    Ok(socket.into())
}

/// Creates `dir` (0700, or 0750 and `group`), or checks the existing one.
fn prepare_directory(dir: &Path, group: Option<u32>) -> Result<(), Error> {
    let inspect = |source| Error::Inspect {
        path: dir.into(),
        source,
    };
    // Not followed: a symbolic link could be pointed elsewhere later by whoever owns it, moving
    // the socket (and the file removed at exit) with it.
    match std::fs::symlink_metadata(dir) {
        Ok(meta) => {
            check_directory(dir, &meta)?;
            // Made reachable by the socket's group, as a new one would be.
            if let Some(g) = group {
                let adjust = |source| Error::Permissions {
                    path: dir.into(),
                    source,
                };
                std::os::unix::fs::chown(dir, None, Some(g)).map_err(adjust)?;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750))
                    .map_err(adjust)?;
            }
            return Ok(());
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(inspect(e)),
    }
    let create = |source| Error::CreateDir {
        path: dir.into(),
        source,
    };
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(create)?;
    // Checked again: a directory someone else created in the meantime is not ours to use.
    check_directory(dir, &std::fs::symlink_metadata(dir).map_err(inspect)?)?;
    if let Some(g) = group {
        std::os::unix::fs::chown(dir, None, Some(g)).map_err(create)?;
    }
    let mode = if group.is_some() { 0o750 } else { 0o700 };
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).map_err(create)
}

/// An existing socket directory must be a directory of ours that nobody else can write to.
fn check_directory(dir: &Path, meta: &std::fs::Metadata) -> Result<(), Error> {
    if !meta.is_dir() {
        return Err(Error::NotADirectory { path: dir.into() });
    }
    let uid = sys::euid();
    if meta.uid() != uid {
        return Err(Error::DirectoryOwner {
            path: dir.into(),
            owner: meta.uid(),
            uid,
        });
    }
    if meta.mode() & 0o022 != 0 {
        return Err(Error::DirectoryMode {
            path: dir.into(),
            mode: meta.mode() & 0o7777,
        });
    }
    Ok(())
}

/// Removes a socket nobody listens on; refuses a live one and anything that is not a socket.
fn clear_stale(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::FileTypeExt as _;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(Error::Inspect {
                path: path.into(),
                source,
            });
        }
    };
    if !meta.file_type().is_socket() {
        return Err(Error::NotASocket { path: path.into() });
    }
    match probe(path) {
        Ok(()) => Err(Error::Live { path: path.into() }),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            match std::fs::remove_file(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(source) => Err(Error::RemoveStale {
                    path: path.into(),
                    source,
                }),
            }
        }
        Err(source) => Err(Error::Inspect {
            path: path.into(),
            source,
        }),
    }
}

/// Connects to `path` without blocking: `Ok` when something listens (a full backlog, which makes
/// a non-blocking connect fail with `EAGAIN`, counts as listening).
fn probe(path: &Path) -> std::io::Result<()> {
    let s = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)?;
    s.set_nonblocking(true)?;
    match s.connect(&socket2::SockAddr::unix(path)?) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e),
    }
}

/// The socket systemd passed (`LISTEN_PID` is this process, `LISTEN_FDS=1`), else `None`.
pub fn from_systemd() -> Result<Option<UnixListener>, Error> {
    if !activated(&|name| std::env::var(name).ok(), std::process::id())? {
        return Ok(None);
    }
    sys::systemd_unix_listener()
        .map(Some)
        .map_err(Error::Activation)
}

/// Whether systemd passed this process (`pid`) its socket: `LISTEN_PID` names it and
/// `LISTEN_FDS` is 1.
fn activated(env: &dyn Fn(&str) -> Option<String>, pid: u32) -> Result<bool, Error> {
    if env("LISTEN_PID").is_none_or(|p| p.trim() != pid.to_string()) {
        return Ok(false);
    }
    let fds = env("LISTEN_FDS").unwrap_or_default();
    if fds.trim() != "1" {
        return Err(Error::ListenFds(fds));
    }
    Ok(true)
}

/// The server's bounds.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Connections served at once for one uid: a caller holding connections open cannot take
    /// every place (the kernel names the uid, so it cannot pose as many).
    pub max_per_uid: usize,
    /// How long a connection may take to send its request.
    pub request_timeout: Duration,
    /// How long one write may block.
    pub write_timeout: Duration,
    /// How long a credentials request waits for a usable set.
    pub wait_max: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 128,
            max_per_uid: 16,
            request_timeout: Duration::from_secs(2),
            write_timeout: Duration::from_secs(5),
            wait_max: Duration::from_secs(30),
        }
    }
}

impl Limits {
    /// The longest a connection can take once its request is read (a wait for credentials, then
    /// the write), plus the request itself: how long [`run`] waits for connections when stopping.
    fn drain(&self) -> Duration {
        self.request_timeout + self.wait_max + self.write_timeout + Duration::from_secs(1)
    }
}

/// Refusal log lines per minute; more are counted and the count given with the next line.
const REFUSALS_PER_MINUTE: u32 = 10;

/// The rate limit of refusal log lines: at most [`REFUSALS_PER_MINUTE`] a minute.
#[derive(Debug, Default)]
struct RefusalLog {
    window_start: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

impl RefusalLog {
    /// Whether a refusal at `now` is logged: `Some(n)` with the number left unlogged before it,
    /// `None` when it is to be counted only.
    fn admit(&mut self, now: Instant) -> Option<u64> {
        let new_window = self
            .window_start
            .is_none_or(|s| now.saturating_duration_since(s) >= Duration::from_secs(60));
        if new_window {
            self.window_start = Some(now);
            self.logged = 1;
            return Some(std::mem::take(&mut self.suppressed));
        }
        if self.logged < REFUSALS_PER_MINUTE {
            self.logged += 1;
            return Some(std::mem::take(&mut self.suppressed));
        }
        self.suppressed += 1;
        None
    }
}

struct Shared {
    backend: Arc<dyn Backend>,
    limits: Limits,
    stop: UnixStream,
    active: Mutex<usize>,
    idle: Condvar,
    /// Connections open per uid (only uids with some).
    per_uid: Mutex<std::collections::HashMap<u32, usize>>,
    refusals: Mutex<RefusalLog>,
    log: Log,
}

/// Serves `listener` until `stop` becomes readable, then closes it, lets the connections in flight
/// finish (each is bounded by the limits) and returns.
pub fn run(
    listener: UnixListener,
    backend: Arc<dyn Backend>,
    limits: Limits,
    stop: UnixStream,
    log: Log,
) -> Result<(), Error> {
    // Non-blocking: the accept loop takes every pending connection after a poll, up to WouldBlock.
    listener.set_nonblocking(true).map_err(Error::Poll)?;
    let shared = Arc::new(Shared {
        backend,
        limits,
        stop,
        active: Mutex::new(0),
        idle: Condvar::new(),
        per_uid: Mutex::new(std::collections::HashMap::new()),
        refusals: Mutex::new(RefusalLog::default()),
        log,
    });
    let fds = [listener.as_raw_fd(), shared.stop.as_raw_fd()];
    let mut failing = false;
    loop {
        let ready = crate::serve::sys::poll_readable(&fds, None).map_err(Error::Poll)?;
        // Callers already queued are taken even when stopping: their threads answer the
        // requests that are complete and tell the others the agent is stopping.
        let mut pending = ready & 1 != 0;
        while pending {
            match listener.accept() {
                Ok((stream, _)) => {
                    failing = false;
                    admit(&shared, stream);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => pending = false,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of descriptors or memory: said once per streak; the pause keeps a
                    // persistent failure from spinning.
                    if !failing {
                        (shared.log)(&format!("cannot accept a connection on the socket: {e}"));
                        failing = true;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                    pending = false;
                }
            }
        }
        if ready & 2 != 0 {
            break;
        }
    }
    drop(listener);
    let drain = shared.limits.drain();
    let deadline = Instant::now() + drain;
    let mut active = shared.active.lock().unwrap_or_else(|e| e.into_inner());
    while *active > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            (shared.log)(&format!(
                "stopping with {active} connection(s) still busy after {} s",
                drain.as_secs()
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

/// One connection's place under the caps, given back when its thread ends (even by a panic in a
/// backend).
struct Slot(Arc<Shared>, Option<u32>);

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(uid) = self.1 {
            let mut per_uid = self.0.per_uid.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = per_uid.get_mut(&uid) {
                *n -= 1;
                if *n == 0 {
                    per_uid.remove(&uid);
                }
            }
        }
        let mut active = self.0.active.lock().unwrap_or_else(|e| e.into_inner());
        *active -= 1;
        self.0.idle.notify_all();
    }
}

/// Answers `busy` without blocking the accept loop (the answer fits the socket buffer). What the
/// caller already sent is read first: closing a Unix socket with unread data resets its end.
fn busy(mut stream: UnixStream, message: String) {
    if stream.set_nonblocking(true).is_ok() {
        let _ = stream.read(&mut [0u8; protocol::MAX_REQUEST]);
        let busy = Response::Error(Failure::new(ErrorCode::Busy, message));
        let _ = stream.write_all(&busy.encode());
    }
}

/// Starts a thread for `stream`, or answers `busy` when at the connection cap or at its uid's.
fn admit(shared: &Arc<Shared>, stream: UnixStream) {
    let uid = sys::peer_credentials(stream.as_fd())
        .ok()
        .map(|(_, uid, _)| uid);
    {
        let mut active = shared.active.lock().unwrap_or_else(|e| e.into_inner());
        if *active >= shared.limits.max_connections {
            drop(active);
            let max = shared.limits.max_connections;
            return busy(
                stream,
                format!("the agent is serving {max} callers at once; try again"),
            );
        }
        if let Some(uid) = uid {
            let mut per_uid = shared.per_uid.lock().unwrap_or_else(|e| e.into_inner());
            let n = per_uid.entry(uid).or_insert(0);
            if *n >= shared.limits.max_per_uid {
                drop(per_uid);
                drop(active);
                let max = shared.limits.max_per_uid;
                return busy(
                    stream,
                    format!("uid {uid} has {max} requests open at once; try again"),
                );
            }
            *n += 1;
        }
        *active += 1;
    }
    let slot = Slot(shared.clone(), uid);
    let spawned = std::thread::Builder::new()
        .name("agent-connection".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            connection(&slot.0, stream);
            drop(slot);
        });
    // On failure the closure, and with it the slot and the stream, is dropped: the count is given
    // back and the caller sees the connection close.
    drop(spawned);
}

/// How reading a request ended without one.
enum NoRequest {
    /// The caller closed without sending anything.
    Closed,
    /// The caller sent an incomplete request and stopped.
    Timeout,
    /// No newline within [`protocol::MAX_REQUEST`] bytes.
    TooLong,
    /// The agent is stopping.
    Stopping,
    /// The connection failed.
    Io,
}

/// Serves one connection: one request, one answer.
fn connection(shared: &Shared, stream: UnixStream) {
    if stream.set_nonblocking(false).is_err()
        || stream
            .set_write_timeout(Some(shared.limits.write_timeout))
            .is_err()
    {
        return;
    }
    let mut buf = [0u8; protocol::MAX_REQUEST];
    let response = match read_request(shared, &stream, &mut buf) {
        Ok(line) => match protocol::decode_request(line) {
            Ok(request) => answer(shared, &stream, request),
            Err(f) => Response::Error(f),
        },
        Err(NoRequest::Closed | NoRequest::Io) => return,
        Err(NoRequest::Timeout) => Response::Error(Failure::new(
            ErrorCode::BadRequest,
            format!(
                "no complete request within {} s",
                shared.limits.request_timeout.as_secs_f32()
            ),
        )),
        Err(NoRequest::TooLong) => Response::Error(Failure::new(
            ErrorCode::BadRequest,
            format!("the request is longer than {} bytes", protocol::MAX_REQUEST),
        )),
        Err(NoRequest::Stopping) => Response::Error(Failure::new(
            ErrorCode::ShuttingDown,
            "the agent is stopping",
        )),
    };
    let bytes = response.encode();
    drop(response);
    let mut s = &stream;
    if s.write_all(&bytes).is_ok() {
        let _ = stream.shutdown(std::net::Shutdown::Write);
        discard_unread(&stream, &mut buf);
    }
}

/// Reads and drops what the caller sent beyond its request (an oversize one, say), up to 64 KiB
/// and without waiting: closing a Unix socket with unread data resets the caller's end, which
/// would then fail reading the answer it was sent.
fn discard_unread(stream: &UnixStream, buf: &mut [u8]) {
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let mut s = stream;
    for _ in 0..(65536 / buf.len().max(1)) {
        match s.read(buf) {
            Ok(n) if n > 0 => {}
            _ => return,
        }
    }
}

/// Reads the request line (up to its newline, or up to the caller's end of sending) into `buf`
/// within the request timeout; gives up when the agent stops.
fn read_request<'a>(
    shared: &Shared,
    stream: &UnixStream,
    buf: &'a mut [u8; protocol::MAX_REQUEST],
) -> Result<&'a [u8], NoRequest> {
    let deadline = Instant::now() + shared.limits.request_timeout;
    let fds = [stream.as_raw_fd(), shared.stop.as_raw_fd()];
    let mut filled = 0;
    loop {
        if let Some(end) = buf[..filled].iter().position(|&b| b == b'\n') {
            return Ok(&buf[..=end]);
        }
        if filled == buf.len() {
            return Err(NoRequest::TooLong);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(NoRequest::Timeout);
        }
        // What the caller sent is read before the stop is looked at: a request complete when
        // the stop came is answered.
        match crate::serve::sys::poll_readable(&fds, Some(left)) {
            Ok(0) => return Err(NoRequest::Timeout),
            Ok(ready) if ready & 1 == 0 => return Err(NoRequest::Stopping),
            Ok(_) => {}
            Err(_) => return Err(NoRequest::Io),
        }
        let mut s = stream;
        match s.read(&mut buf[filled..]) {
            // The caller finished sending: what it sent is the request (a newline is optional).
            Ok(0) if filled == 0 => return Err(NoRequest::Closed),
            Ok(0) => return Ok(&buf[..filled]),
            Ok(n) => filled += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
                ) => {}
            Err(_) => return Err(NoRequest::Io),
        }
    }
}

/// The backend's answer to `request` from the caller on `stream`.
fn answer(shared: &Shared, stream: &UnixStream, request: Request) -> Response {
    let peer = match Peer::of(stream) {
        Ok(p) => p,
        Err(e) => {
            (shared.log)(&format!("cannot identify the caller of a connection: {e}"));
            return Response::Error(Failure::new(
                ErrorCode::Unavailable,
                "the agent cannot identify the caller",
            ));
        }
    };
    match request {
        Request::Status => Response::Status(shared.backend.status(&peer)),
        Request::Credentials { profile } => {
            let deadline = Instant::now() + shared.limits.wait_max;
            match shared.backend.credentials(&profile, &peer, deadline) {
                Ok(issued) => Response::Credentials(issued),
                Err(f) => {
                    if f.code == ErrorCode::NotAllowed {
                        log_refusal(shared, &peer, &profile);
                    }
                    Response::Error(f)
                }
            }
        }
    }
}

/// Logs a caller refused for not being allowed, within the rate limit.
fn log_refusal(shared: &Shared, peer: &Peer, profile: &str) {
    let admitted = shared
        .refusals
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .admit(Instant::now());
    if let Some(suppressed) = admitted {
        // The profile name passed protocol::valid_profile_name: nothing in it needs escaping.
        let mut line = format!(
            "refused profile {profile} to uid {} (pid {}): not allowed",
            peer.uid, peer.pid
        );
        if suppressed > 0 {
            line.push_str(&format!(
                " ({suppressed} more refusal(s) not logged before this one)"
            ));
        }
        (shared.log)(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32, gid: u32, groups: &[u32]) -> Peer {
        Peer {
            pid: 1,
            uid,
            gid,
            groups: groups.to_vec(),
        }
    }

    #[test]
    fn empty_lists_allow_no_one() {
        assert!(!allowed(&peer(1000, 1000, &[]), &[], &[]));
        assert!(!allowed(&peer(0, 0, &[0]), &[], &[]));
    }

    #[test]
    fn a_listed_uid_primary_gid_or_supplementary_group_is_allowed() {
        let (uids, gids) = (&[1001, 1002][..], &[50, 60][..]);
        assert!(allowed(&peer(1002, 9, &[]), uids, gids));
        assert!(allowed(&peer(7, 60, &[]), uids, gids));
        assert!(allowed(&peer(7, 9, &[3, 50]), uids, gids));
        assert!(!allowed(&peer(7, 9, &[3, 4]), uids, gids));
        // With lists, the agent's own uid is allowed only when listed.
        assert!(!allowed(&peer(1000, 1000, &[]), uids, gids));
        assert!(allowed(&peer(1000, 1000, &[]), &[], &[1000]));
        assert!(!allowed(&peer(1000, 5, &[]), &[], &[1000]));
    }

    #[test]
    fn refusal_logging_is_limited_per_minute_and_counts_the_rest() {
        let mut r = RefusalLog::default();
        let t0 = Instant::now();
        for i in 0..REFUSALS_PER_MINUTE {
            assert_eq!(r.admit(t0 + Duration::from_millis(u64::from(i))), Some(0));
        }
        for _ in 0..500 {
            assert_eq!(r.admit(t0 + Duration::from_secs(30)), None);
        }
        assert_eq!(r.admit(t0 + Duration::from_secs(60)), Some(500));
        assert_eq!(r.admit(t0 + Duration::from_secs(61)), Some(0));
    }

    #[test]
    fn systemd_activation_needs_this_pid_and_exactly_one_socket() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(!activated(&env(&[]), 77).unwrap());
        assert!(!activated(&env(&[("LISTEN_PID", "78"), ("LISTEN_FDS", "1")]), 77).unwrap());
        assert!(activated(&env(&[("LISTEN_PID", "77"), ("LISTEN_FDS", "1")]), 77).unwrap());
        for fds in ["0", "2", "x", ""] {
            let pairs: &'static [(&str, &str)] = match fds {
                "0" => &[("LISTEN_PID", "77"), ("LISTEN_FDS", "0")],
                "2" => &[("LISTEN_PID", "77"), ("LISTEN_FDS", "2")],
                "x" => &[("LISTEN_PID", "77"), ("LISTEN_FDS", "x")],
                _ => &[("LISTEN_PID", "77")],
            };
            let e = activated(&env(pairs), 77).unwrap_err();
            assert!(matches!(e, Error::ListenFds(_)), "{e}");
            assert!(e.to_string().contains("not 1"), "{e}");
        }
    }

    #[test]
    fn an_overlong_path_is_refused_before_anything_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d").join("x".repeat(120));
        let e = bind(&path, None).unwrap_err();
        assert!(matches!(e, Error::PathTooLong { .. }), "{e}");
        assert!(!dir.path().join("d").exists());
    }
}
