//! The agent's socket on the wire: `server::bind` and `server::run` in this process on a temp
//! socket, with a small test backend holding credentials made here, spoken to by the client module,
//! by raw bytes, and by the real binary (`credential-process --from-agent`, `agent status`).
//!
//! Unit level: the agent itself (configuration, refreshers, the emulator) is exercised end to end
//! elsewhere. What is checked here is what the socket layer owns: modes, stale and live sockets,
//! peer identity as the kernel reports it, bounds, timeouts, the connection cap, stopping.

use rolesanywhere_agent::agent::client::{self, Reply};
use rolesanywhere_agent::agent::protocol::{
    self, CertificateStatus, ErrorCode, Failure, ProfileStatus, Request, StatusReport,
};
use rolesanywhere_agent::agent::server::{self, Backend, Limits, Peer};
use rolesanywhere_agent::refresh::Issued;
use rolesanywhere_agent::secret::Secret;
use rolesanywhere_agent::session::Credentials;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_rolesanywhere-agent");
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY";
const TOKEN: &str = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+EXAMPLE==";

/// Credentials as the refresher would hold them.
fn issued() -> Arc<Issued> {
    let expires_at = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap()
        + time::Duration::hours(1);
    Arc::new(Issued {
        credentials: Credentials {
            access_key_id: "ASIAWIRETEST00000001".into(),
            secret_access_key: Secret::new(SECRET_KEY.into()),
            session_token: Secret::new(TOKEN.into()),
            expiration: rolesanywhere_agent::text::utc_seconds(expires_at),
            expires_at,
        },
        obtained_at: time::OffsetDateTime::now_utc(),
        generation: 1,
    })
}

/// A gate the `slow` profile waits at, and a count of the callers waiting there.
#[derive(Default)]
struct Gate {
    state: Mutex<(bool, usize)>,
    changed: Condvar,
}

impl Gate {
    fn open(&self) {
        self.state.lock().unwrap().0 = true;
        self.changed.notify_all();
    }
    fn wait_for_callers(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut s = self.state.lock().unwrap();
        while s.1 < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "only {} of {n} callers arrived", s.1);
            s = self.changed.wait_timeout(s, left).unwrap().0;
        }
    }
}

/// Profiles: `web` (credentials), `secret` (not allowed), `down` (unavailable), `slow` (waits at
/// the gate, then credentials), anything else unknown. Records every peer.
struct TestBackend {
    issued: Arc<Issued>,
    peers: Mutex<Vec<Peer>>,
    gate: Gate,
}

impl TestBackend {
    fn new() -> Arc<TestBackend> {
        Arc::new(TestBackend {
            issued: issued(),
            peers: Mutex::new(Vec::new()),
            gate: Gate::default(),
        })
    }
}

impl Backend for TestBackend {
    fn credentials(
        &self,
        profile: &str,
        peer: &Peer,
        deadline: Instant,
    ) -> Result<Arc<Issued>, Failure> {
        self.peers.lock().unwrap().push(peer.clone());
        match profile {
            "web" => Ok(self.issued.clone()),
            "secret" => Err(Failure::new(
                ErrorCode::NotAllowed,
                format!("uid {} may not read profile secret", peer.uid),
            )),
            "down" => Err(Failure::new(
                ErrorCode::Unavailable,
                "no credentials yet: CreateSession failed",
            )),
            "slow" => {
                let mut s = self.gate.state.lock().unwrap();
                s.1 += 1;
                self.gate.changed.notify_all();
                while !s.0 {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(Failure::new(ErrorCode::Unavailable, "gate timeout"));
                    }
                    s = self.gate.changed.wait_timeout(s, left).unwrap().0;
                }
                Ok(self.issued.clone())
            }
            other => Err(Failure::new(
                ErrorCode::UnknownProfile,
                format!("no profile {other}"),
            )),
        }
    }

    fn status(&self, peer: &Peer) -> StatusReport {
        self.peers.lock().unwrap().push(peer.clone());
        StatusReport {
            pid: std::process::id(),
            version: "test".into(),
            config: "/etc/rolesanywhere/agent.toml".into(),
            socket: "/run/rolesanywhere/agent.sock".into(),
            profiles: vec![ProfileStatus {
                name: "web".into(),
                certificate: Some(CertificateStatus {
                    subject: "CN=web\u{1b}[31m".into(),
                    serial: "4242".into(),
                    not_after: "2030-01-01T00:00:00Z".into(),
                }),
                credentials_expiration: Some(self.issued.credentials.expiration.clone()),
                last_refresh: Some("2026-01-01T00:00:00Z".into()),
                last_failure: None,
                refreshes_ok: 1,
                refreshes_failed: 0,
                listeners: vec![],
            }],
        }
    }
}

/// A server running in this process on `dir/run/agent.sock`.
struct Server {
    dir: tempfile::TempDir,
    path: PathBuf,
    stop: UnixStream,
    thread: JoinHandle<Result<(), server::Error>>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(backend: Arc<dyn Backend>, limits: Limits) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run").join("agent.sock");
        let listener = server::bind(&path, None).unwrap();
        let (stop, stop_rx) = UnixStream::pair().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        let log_fn: rolesanywhere_agent::refresh::Log =
            Arc::new(move |line: &str| l.lock().unwrap().push(line.to_string()));
        let thread =
            std::thread::spawn(move || server::run(listener, backend, limits, stop_rx, log_fn));
        Server {
            dir,
            path,
            stop,
            thread,
            log,
        }
    }

    fn request(&self, req: &Request) -> Result<Reply, client::Error> {
        client::request(&self.path, req, Duration::from_secs(10))
    }

    /// Writes `bytes` on a fresh connection and reads the whole answer.
    fn raw(&self, bytes: &[u8]) -> String {
        let mut s = UnixStream::connect(&self.path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(bytes).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    /// Asks it to stop; returns when `run` did.
    fn stop(mut self) -> (tempfile::TempDir, Vec<String>) {
        self.stop.write_all(b"x").unwrap();
        self.thread.join().unwrap().unwrap();
        let log = self.log.lock().unwrap().clone();
        (self.dir, log)
    }
}

fn web() -> Request {
    Request::Credentials {
        profile: "web".into(),
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn run_bin(args: &[&str]) -> (i32, Vec<u8>, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_clear()
        .output()
        .expect("the agent binary runs");
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bind_makes_the_directory_0700_and_the_socket_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a").join("b").join("agent.sock");
    let listener = server::bind(&path, None).unwrap();
    let parent = path.parent().unwrap();
    assert_eq!(mode(parent), 0o700);
    assert_eq!(mode(&path), 0o600);
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    // SAFETY: getuid(2) takes no arguments and always succeeds.
    assert_eq!(meta.uid(), unsafe { libc::getuid() });
    // It listens: a client connects and is accepted.
    let _c = UnixStream::connect(&path).unwrap();
    listener.set_nonblocking(false).unwrap();
    listener.accept().unwrap();
}

/// A group other than this process's own, when one can be given to a file: as root any group
/// (nogroup), else a supplementary group, else the primary one.
fn some_group() -> u32 {
    // SAFETY: getuid/getgid take no arguments and always succeed.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    if uid == 0 {
        return 65534;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .and_then(|g| {
            g.split_whitespace()
                .filter_map(|n| n.parse::<u32>().ok())
                .find(|&g| g != gid)
        })
        .unwrap_or(gid)
}

#[test]
fn bind_with_a_group_makes_0750_and_0660_owned_by_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run").join("agent.sock");
    let group = some_group();
    let _listener = server::bind(&path, Some(group)).unwrap();
    let parent = path.parent().unwrap();
    assert_eq!(mode(parent), 0o750);
    assert_eq!(mode(&path), 0o660);
    assert_eq!(std::fs::metadata(parent).unwrap().gid(), group);
    assert_eq!(std::fs::symlink_metadata(&path).unwrap().gid(), group);
}

/// An existing directory of ours is given the socket's group (a 0700 one would keep the group
/// out); a symbolic link in the directory's place is not followed.
#[test]
fn an_existing_directory_gets_the_group_and_a_symlinked_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
    let group = some_group();
    let path = run.join("agent.sock");
    drop(server::bind(&path, Some(group)).unwrap());
    assert_eq!(mode(&run), 0o750);
    assert_eq!(std::fs::metadata(&run).unwrap().gid(), group);

    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let e = server::bind(&link.join("agent.sock"), None).unwrap_err();
    assert!(matches!(e, server::Error::NotADirectory { .. }), "{e:?}");
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert!(std::fs::read_dir(&real).unwrap().next().is_none());
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    // An agent that died: its socket file stays, nothing listens.
    drop(UnixListener::bind(&path).unwrap());
    assert!(UnixStream::connect(&path).is_err());
    let live = server::bind(&path, None).unwrap();
    assert_eq!(mode(&path), 0o600);
    let _c = UnixStream::connect(&path).unwrap();

    let e = server::bind(&path, None).unwrap_err();
    assert!(matches!(e, server::Error::Live { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "another agent is listening on {}; stop it first or choose another socket path",
            path.display()
        )
    );
    // The live one is untouched and still answers.
    let _c = UnixStream::connect(&path).unwrap();
    live.set_nonblocking(true).unwrap();
    assert!(live.accept().is_ok());
}

#[test]
fn something_else_at_the_socket_path_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agent.sock");
    std::fs::write(&file, b"precious").unwrap();
    let e = server::bind(&file, None).unwrap_err();
    assert!(matches!(e, server::Error::NotASocket { .. }), "{e:?}");
    assert!(
        e.to_string().contains("is not a socket; it was left alone"),
        "{e}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"precious");
    // A symbolic link, even to a socket, is not replaced either.
    let target = dir.path().join("real.sock");
    drop(UnixListener::bind(&target).unwrap());
    let link = dir.path().join("link.sock");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let e = server::bind(&link, None).unwrap_err();
    assert!(matches!(e, server::Error::NotASocket { .. }), "{e:?}");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // A directory.
    let sub = dir.path().join("sub.sock");
    std::fs::create_dir(&sub).unwrap();
    assert!(matches!(
        server::bind(&sub, None),
        Err(server::Error::NotASocket { .. })
    ));
}

#[test]
fn a_directory_others_can_write_or_own_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let e = server::bind(&shared.join("agent.sock"), None).unwrap_err();
    assert!(
        matches!(e, server::Error::DirectoryMode { mode: 0o1777, .. }),
        "{e:?}"
    );
    assert!(!shared.join("agent.sock").exists());
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o770)).unwrap();
    assert!(matches!(
        server::bind(&shared.join("agent.sock"), None),
        Err(server::Error::DirectoryMode { mode: 0o770, .. })
    ));
    // An existing private directory is used as it is.
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o711)).unwrap();
    server::bind(&shared.join("agent.sock"), None).unwrap();
    assert_eq!(mode(&shared), 0o711);
    // Only root can give a directory away to test the owner check.
    // SAFETY: getuid(2) takes no arguments and always succeeds.
    if unsafe { libc::getuid() } == 0 {
        let theirs = dir.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), None).unwrap();
        let e = server::bind(&theirs.join("agent.sock"), None).unwrap_err();
        assert!(
            matches!(
                e,
                server::Error::DirectoryOwner {
                    owner: 65534,
                    uid: 0,
                    ..
                }
            ),
            "{e:?}"
        );
    }
}

#[test]
fn the_peer_is_identified_by_the_kernel() {
    let backend = TestBackend::new();
    let server = Server::start(backend.clone(), Limits::default());
    let Reply::Status(report) = server.request(&Request::Status).unwrap() else {
        panic!("not a status")
    };
    assert_eq!(report.profiles[0].name, "web");
    let peers = backend.peers.lock().unwrap().clone();
    assert_eq!(peers.len(), 1);
    let p = &peers[0];
    // SAFETY: getuid/getgid take no arguments and always succeed.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    assert_eq!((p.uid, p.gid), (uid, gid));
    assert_eq!(p.pid, std::process::id() as i32);
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let mut groups: Vec<u32> = status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .unwrap()
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    groups.sort_unstable();
    let mut seen = p.groups.clone();
    seen.sort_unstable();
    assert_eq!(seen, groups);
    server.stop();
}

#[test]
fn credentials_and_refusals_reach_the_client() {
    let backend = TestBackend::new();
    let server = Server::start(backend.clone(), Limits::default());
    let Reply::Credentials(c) = server.request(&web()).unwrap() else {
        panic!("not credentials")
    };
    let want = &backend.issued.credentials;
    assert_eq!(c.access_key_id, want.access_key_id);
    assert_eq!(c.secret_access_key.expose(), SECRET_KEY);
    assert_eq!(c.session_token.expose(), TOKEN);
    assert_eq!(c.expiration, want.expiration);
    for (profile, code) in [
        ("secret", ErrorCode::NotAllowed),
        ("down", ErrorCode::Unavailable),
        ("nope", ErrorCode::UnknownProfile),
    ] {
        let e = server
            .request(&Request::Credentials {
                profile: profile.into(),
            })
            .unwrap_err();
        let client::Error::Refused(f) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(f.code, code, "{e}");
    }
    // Raw: another version, a malformed request, a request without its newline.
    let answer = server.raw(b"{\"version\":2,\"op\":\"status\"}\n");
    assert!(
        answer
            .starts_with("{\"version\":1,\"ok\":false,\"error\":{\"code\":\"unsupported_version\""),
        "{answer}"
    );
    let answer = server.raw(b"{\"version\":1,\"op\":\"credentials\",\"profile\":\"../x\"}\n");
    assert!(answer.contains("\"code\":\"bad_request\""), "{answer}");
    assert!(answer.ends_with("}\n") && answer.matches('\n').count() == 1);
    let mut s = UnixStream::connect(&server.path).unwrap();
    s.write_all(b"{\"version\":1,\"op\":\"status\"}").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("{\"version\":1,\"ok\":true,\"status\":"),
        "{answer}"
    );
    let (_, log) = server.stop();
    assert!(
        log.iter()
            .all(|l| !l.contains(SECRET_KEY) && !l.contains(TOKEN)),
        "{log:?}"
    );
}

#[test]
fn not_allowed_callers_are_logged_with_uid_pid_and_profile_rate_limited() {
    let server = Server::start(TestBackend::new(), Limits::default());
    for _ in 0..30 {
        let e = server
            .request(&Request::Credentials {
                profile: "secret".into(),
            })
            .unwrap_err();
        assert!(matches!(e, client::Error::Refused(_)), "{e:?}");
    }
    server.request(&web()).unwrap();
    server
        .request(&Request::Credentials {
            profile: "nope".into(),
        })
        .unwrap_err();
    let (_, log) = server.stop();
    // SAFETY: geteuid(2) takes no arguments and always succeeds.
    let uid = unsafe { libc::geteuid() };
    let line = format!(
        "refused profile secret to uid {uid} (pid {}): not allowed",
        std::process::id()
    );
    assert_eq!(log.len(), 10, "{log:?}");
    assert!(log.iter().all(|l| *l == line), "{log:?}");
}

#[test]
fn a_connection_that_sends_nothing_is_closed_after_the_request_timeout() {
    let limits = Limits {
        request_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let server = Server::start(TestBackend::new(), limits);
    let mut s = UnixStream::connect(&server.path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(290) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert!(answer.contains("\"code\":\"bad_request\""), "{answer}");
    assert!(
        answer.contains("no complete request within 0.3 s"),
        "{answer}"
    );
    // A request trickled in but never finished: the same deadline.
    let mut s = UnixStream::connect(&server.path).unwrap();
    s.write_all(b"{\"version\":1,").unwrap();
    let started = Instant::now();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(answer.contains("no complete request"), "{answer}");
    server.stop();
}

#[test]
fn an_oversize_request_gets_bad_request() {
    let server = Server::start(TestBackend::new(), Limits::default());
    let answer = server.raw(&[b' '; 8192]);
    assert!(answer.contains("\"code\":\"bad_request\""), "{answer}");
    assert!(
        answer.contains("the request is longer than 4096 bytes"),
        "{answer}"
    );
    // Exactly at the limit is fine.
    let mut line = vec![b' '; protocol::MAX_REQUEST];
    let req = b"{\"version\":1,\"op\":\"status\"}\n";
    line[protocol::MAX_REQUEST - req.len()..].copy_from_slice(req);
    let answer = server.raw(&line);
    assert!(answer.contains("\"ok\":true"), "{answer}");
    server.stop();
}

#[test]
fn callers_over_max_connections_are_told_busy() {
    let backend = TestBackend::new();
    let limits = Limits {
        max_connections: 2,
        ..Limits::default()
    };
    let server = Arc::new(Server::start(backend.clone(), limits));
    let slow = || {
        let s = server.clone();
        std::thread::spawn(move || {
            s.request(&Request::Credentials {
                profile: "slow".into(),
            })
        })
    };
    let waiting = [slow(), slow()];
    backend.gate.wait_for_callers(2);
    // The client asks again while busy, until its deadline, then says so.
    let started = Instant::now();
    let e = client::request(&server.path, &web(), Duration::from_millis(400)).unwrap_err();
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
    let client::Error::Refused(f) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(f.code, ErrorCode::Busy, "{e}");
    assert!(f.message.contains("2 callers at once"), "{f}");
    // A caller that arrives while busy gets through when a place frees.
    let s = server.clone();
    let patient = std::thread::spawn(move || s.request(&web()));
    std::thread::sleep(Duration::from_millis(200));
    backend.gate.open();
    assert!(matches!(patient.join().unwrap(), Ok(Reply::Credentials(_))));
    for w in waiting {
        assert!(matches!(w.join().unwrap(), Ok(Reply::Credentials(_))));
    }
    // The places are given back.
    server.request(&web()).unwrap();
    let server = Arc::try_unwrap(server).ok().unwrap();
    server.stop();
}

/// One uid cannot take every place: over its own cap it is told busy while the others' places
/// stay free.
#[test]
fn one_uid_is_capped_below_the_connection_cap() {
    let backend = TestBackend::new();
    let limits = Limits {
        max_connections: 10,
        max_per_uid: 2,
        ..Limits::default()
    };
    let server = Arc::new(Server::start(backend.clone(), limits));
    let slow = || {
        let s = server.clone();
        std::thread::spawn(move || {
            s.request(&Request::Credentials {
                profile: "slow".into(),
            })
        })
    };
    let waiting = [slow(), slow()];
    backend.gate.wait_for_callers(2);
    let e = client::request(&server.path, &web(), Duration::from_millis(400)).unwrap_err();
    let client::Error::Refused(f) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(f.code, ErrorCode::Busy, "{e}");
    // The owner of /proc/self is this process's effective uid.
    let uid = std::fs::metadata("/proc/self").map(|m| {
        use std::os::unix::fs::MetadataExt as _;
        m.uid()
    });
    assert!(
        f.message
            .contains(&format!("uid {} has 2 requests open", uid.unwrap())),
        "{f}"
    );
    backend.gate.open();
    for w in waiting {
        assert!(matches!(w.join().unwrap(), Ok(Reply::Credentials(_))));
    }
    server.request(&web()).unwrap();
    let server = Arc::try_unwrap(server).ok().unwrap();
    server.stop();
}

#[test]
fn stop_lets_requests_in_flight_finish_and_closes_the_rest() {
    let backend = TestBackend::new();
    let server = Server::start(backend.clone(), Limits::default());
    let path = server.path.clone();
    let p = path.clone();
    let in_flight = std::thread::spawn(move || {
        client::request(
            &p,
            &Request::Credentials {
                profile: "slow".into(),
            },
            Duration::from_secs(20),
        )
    });
    backend.gate.wait_for_callers(1);
    // A connection still sending its request when the stop comes.
    let mut idle = UnixStream::connect(&path).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    idle.write_all(b"{\"version\":").unwrap();
    // `run` must wait for the one in flight.
    let Server {
        dir,
        mut stop,
        thread,
        ..
    } = server;
    stop.write_all(b"x").unwrap();
    let mut answer = String::new();
    idle.read_to_string(&mut answer).unwrap();
    assert!(answer.contains("\"code\":\"shutting_down\""), "{answer}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !thread.is_finished(),
        "run returned with a request in flight"
    );
    // New callers find nobody listening.
    let e = client::request(&path, &web(), Duration::from_secs(2)).unwrap_err();
    assert!(matches!(e, client::Error::NotRunning { .. }), "{e:?}");
    backend.gate.open();
    assert!(matches!(
        in_flight.join().unwrap(),
        Ok(Reply::Credentials(_))
    ));
    thread.join().unwrap().unwrap();
    drop(dir);
}

/// The real binary as the client: the same bytes as `credential-process` prints, and the exit
/// codes of each refusal, with stdout empty on any error.
#[test]
fn credential_process_from_agent_prints_the_credentials_and_exits_by_refusal() {
    let backend = TestBackend::new();
    let server = Server::start(backend.clone(), Limits::default());
    let socket = server.path.to_str().unwrap().to_string();
    let (code, stdout, stderr) = run_bin(&[
        "credential-process",
        "--from-agent",
        "web",
        "--agent-socket",
        &socket,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    let want = rolesanywhere_agent::cli::commands::credential_json(
        &backend.issued.credentials,
        b"",
        b"\n",
    )
    .unwrap();
    assert_eq!(stdout, *want);
    let v: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
    assert_eq!(v["SecretAccessKey"], SECRET_KEY);

    for (profile, code, needle) in [
        ("secret", 2, "may not read profile secret (not_allowed)"),
        ("nope", 2, "no profile nope (unknown_profile)"),
        ("down", 1, "CreateSession failed (unavailable)"),
    ] {
        let (got, stdout, stderr) = run_bin(&[
            "credential-process",
            "--from-agent",
            profile,
            "--agent-socket",
            &socket,
        ]);
        assert_eq!(got, code, "{profile}: {stderr}");
        assert!(stdout.is_empty(), "{profile}");
        assert!(
            stderr.starts_with(
                "rolesanywhere-agent: cannot get credentials from the agent: the agent refused: "
            ),
            "{stderr}"
        );
        assert!(stderr.contains(needle), "{stderr}");
        assert!(stderr.contains("rolesanywhere-agent: hint: "), "{stderr}");
    }
    server.stop();
}

#[test]
fn agent_status_prints_an_escaped_table_or_the_json_report() {
    let backend = TestBackend::new();
    let server = Server::start(backend.clone(), Limits::default());
    let socket = server.path.to_str().unwrap().to_string();
    let (code, stdout, stderr) = run_bin(&["agent", "status", "--agent-socket", &socket]);
    assert_eq!(code, 0, "{stderr}");
    let text = String::from_utf8(stdout).unwrap();
    assert!(text.starts_with(&format!("agent pid {}, version test\n", std::process::id())));
    assert!(
        text.contains("web: certificate CN=web\\u{1b}[31m, serial 4242"),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'), "{text}");
    let (code, stdout, stderr) = run_bin(&["agent", "status", "--agent-socket", &socket, "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let report: StatusReport = serde_json::from_slice(&stdout).unwrap();
    let peer = backend.peers.lock().unwrap()[0].clone();
    assert_eq!(report, backend.status(&peer));
    server.stop();
}
