//! The agent's client side: one request over the socket, for `credential-process --from-agent` and
//! `agent status`.
//!
//! Connects (without blocking on a full backlog), writes one request line, reads one answer line of
//! at most [`protocol::MAX_RESPONSE`] bytes into a zeroizing buffer that never grows, all within one
//! deadline. The credentials are printed by the encoder `credential-process` uses, so the output is
//! the same byte for byte. Text from the agent (refusal messages, the status report) is escaped
//! before it reaches a terminal.

use super::protocol::{self, Answer, DecodeError, ErrorCode, Failure, Request, StatusReport};
use crate::cli::Failure as CliFailure;
use crate::cli::args::AgentStatusArgs;
use crate::cli::failure::Context as _;
use crate::session::Credentials;
use std::io::{Read as _, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// How long `credential-process --from-agent` waits: longer than the agent's own wait for a first
/// set of credentials (30 s by default), so the agent's reason is what the caller sees.
pub const CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(40);
/// How long `agent status` waits.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(10);

/// A successful answer.
#[derive(Debug)]
pub enum Reply {
    /// A profile's credentials.
    Credentials(Credentials),
    /// The agent's status report.
    Status(StatusReport),
}

/// Why a request to the agent failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Nothing listens on the socket (no such file, or connection refused).
    #[error(
        "no agent is listening on {} ({reason}); start it with `rolesanywhere-agent agent` (or \
         `systemctl start rolesanywhere-agent.socket`)",
        crate::text::path(socket)
    )]
    NotRunning {
        /// The socket.
        socket: PathBuf,
        /// The socket is missing, or nothing accepts connections on it.
        reason: &'static str,
    },
    /// The socket's permissions keep this user out.
    #[error(
        "permission denied connecting to the agent's socket {}",
        crate::text::path(socket)
    )]
    Denied {
        /// The socket.
        socket: PathBuf,
    },
    /// Connecting failed otherwise.
    #[error("cannot connect to the agent on {}", crate::text::path(socket))]
    Connect {
        /// The socket.
        socket: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No complete answer in time.
    #[error(
        "the agent on {} did not answer within {} s",
        crate::text::path(socket),
        after.as_secs()
    )]
    Timeout {
        /// The socket.
        socket: PathBuf,
        /// The time allowed.
        after: Duration,
    },
    /// Sending or receiving failed.
    #[error("the connection to the agent on {} failed", crate::text::path(socket))]
    Io {
        /// The socket.
        socket: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The answer is not one this client reads.
    #[error(
        "the agent on {} gave an answer this client cannot read",
        crate::text::path(socket)
    )]
    Protocol {
        /// The socket.
        socket: PathBuf,
        /// What is wrong with it.
        #[source]
        source: DecodeError,
    },
    /// The agent refused the request.
    #[error("the agent refused: {0}")]
    Refused(Failure),
}

impl Error {
    /// How to get past it, where known.
    pub fn hint(&self) -> Option<String> {
        let text = match self {
            Error::Denied { .. } => {
                "the socket is 0600 (0660 with the agent's socket_group): ask to be added to the \
                 agent's socket group, or run an agent of your own"
            }
            Error::Timeout { .. } => {
                "the agent may be waiting for its device; see `rolesanywhere-agent agent status`"
            }
            Error::Protocol { .. } => {
                "the agent and this client may be different versions: restart the agent after an \
                 upgrade"
            }
            Error::Refused(f) => match f.code {
                ErrorCode::UnknownProfile => {
                    "list the agent's profiles with `rolesanywhere-agent agent status`"
                }
                ErrorCode::NotAllowed => {
                    "the profile's allow_uids or allow_gids in the agent's configuration must \
                     name your uid or one of your groups"
                }
                ErrorCode::Unavailable => {
                    "see the profile's last failure with `rolesanywhere-agent agent status`"
                }
                ErrorCode::Busy => "try again in a moment",
                ErrorCode::ShuttingDown => "the agent is stopping; try again once it is back",
                ErrorCode::BadRequest | ErrorCode::UnsupportedVersion => {
                    "the agent and this client may be different versions: restart the agent \
                     after an upgrade"
                }
            },
            Error::NotRunning { .. } | Error::Connect { .. } | Error::Io { .. } => return None,
        };
        Some(text.to_string())
    }
}

/// A refused profile or caller is a configuration matter (exit 2); everything else is operational.
impl rolesanywhere_core::Classify for Error {
    fn class(&self) -> rolesanywhere_core::ErrorClass {
        match self {
            Error::Refused(Failure {
                code: ErrorCode::UnknownProfile | ErrorCode::NotAllowed,
                ..
            }) => rolesanywhere_core::ErrorClass::Configuration,
            _ => rolesanywhere_core::ErrorClass::Operational,
        }
    }
}

/// Sends `req` to the agent on `socket` and reads its answer, all within `timeout`.
pub fn request(socket: &Path, req: &Request, timeout: Duration) -> Result<Reply, Error> {
    let deadline = Instant::now() + timeout;
    // A `busy` agent (at its connection cap, or at this uid's: many parallel callers while the
    // first credentials are fetched) is asked again after a short, jittered pause, until the
    // deadline: the caller gets its credentials a little later instead of an error.
    let mut pause = Duration::from_millis(10);
    loop {
        match attempt(socket, req, timeout, deadline) {
            Err(Error::Refused(f))
                if f.code == protocol::ErrorCode::Busy && Instant::now() + pause * 2 < deadline =>
            {
                std::thread::sleep(pause + jitter(pause));
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            other => return other,
        }
    }
}

/// Up to `max` more, from the system's random source (none when it fails).
fn jitter(max: Duration) -> Duration {
    let mut b = [0u8; 2];
    if getrandom::fill(&mut b).is_err() {
        return Duration::ZERO;
    }
    max.mul_f64(f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX))
}

/// One connection, one request, one answer.
fn attempt(
    socket: &Path,
    req: &Request,
    timeout: Duration,
    deadline: Instant,
) -> Result<Reply, Error> {
    let timed_out = || Error::Timeout {
        socket: socket.into(),
        after: timeout,
    };
    let io = |source| Error::Io {
        socket: socket.into(),
        source,
    };
    let protocol = |source| Error::Protocol {
        socket: socket.into(),
        source,
    };
    let stream = connect(socket, deadline, timeout)?;
    let left = |d: Instant| {
        let left = d.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    };
    stream
        .set_write_timeout(Some(left(deadline).ok_or_else(timed_out)?))
        .map_err(io)?;
    // A failed write is not the end: an agent at its connection cap answers `busy` and closes,
    // and that answer is waiting to be read.
    let written = (&stream).write_all(&req.encode());
    // Fixed size, never grown: no copy of the credentials is left in freed memory.
    let mut buf = Zeroizing::new(vec![0u8; protocol::MAX_RESPONSE]);
    let mut filled = 0;
    loop {
        if buf[..filled].contains(&b'\n') {
            break;
        }
        if filled == buf.len() {
            return Err(protocol(DecodeError::TooLong));
        }
        stream
            .set_read_timeout(Some(left(deadline).ok_or_else(timed_out)?))
            .map_err(io)?;
        match (&stream).read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(timed_out());
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // The agent closed with our request unread (a refusal before reading it all): its
            // answer, if any, came first.
            Err(_) if filled > 0 => break,
            Err(e) => return Err(io(e)),
        }
    }
    if filled == 0 {
        return Err(match written {
            Err(e) => io(e),
            Ok(()) => protocol(DecodeError::Malformed(
                "the agent closed the connection without answering",
            )),
        });
    }
    let answer = protocol::decode_response(&buf[..filled]).map_err(protocol)?;
    match (req, answer) {
        (_, Answer::Refused(f)) => Err(Error::Refused(f)),
        (Request::Credentials { .. }, Answer::Credentials(c)) => Ok(Reply::Credentials(c)),
        (Request::Status, Answer::Status(s)) => Ok(Reply::Status(s)),
        _ => Err(protocol(DecodeError::Malformed(
            "an answer to another request",
        ))),
    }
}

/// Connects to `socket`. A full backlog (a busy agent) is waited out until `deadline`, not
/// blocked on.
fn connect(socket: &Path, deadline: Instant, timeout: Duration) -> Result<UnixStream, Error> {
    let failed = |source: std::io::Error| match source.raw_os_error() {
        Some(libc::ENOENT) => Error::NotRunning {
            socket: socket.into(),
            reason: "no such socket",
        },
        Some(libc::ECONNREFUSED) => Error::NotRunning {
            socket: socket.into(),
            reason: "nothing accepts connections on it",
        },
        Some(libc::EACCES | libc::EPERM) => Error::Denied {
            socket: socket.into(),
        },
        _ => Error::Connect {
            socket: socket.into(),
            source,
        },
    };
    let addr = socket2::SockAddr::unix(socket).map_err(failed)?;
    loop {
        let s = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)
            .map_err(failed)?;
        s.set_nonblocking(true).map_err(failed)?;
        match s.connect(&addr) {
            Ok(()) => {
                s.set_nonblocking(false).map_err(failed)?;
                return Ok(s.into());
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(Error::Timeout {
                        socket: socket.into(),
                        after: timeout,
                    });
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(failed(e)),
        }
    }
}

/// `credential-process --from-agent NAME`: the profile's credentials from the agent on `socket`,
/// printed exactly as `credential-process` prints its own.
pub fn credential_process(
    profile: &str,
    socket: &Path,
    debug: bool,
    out: &mut dyn Write,
) -> Result<(), CliFailure> {
    crate::cli::commands::refuse_closed_stdout()?;
    let debug_line = |text: &str| {
        if debug {
            crate::cli::stderr_line(&format!("rolesanywhere-agent: debug: {text}"));
        }
    };
    debug_line(&format!(
        "asking the agent on {} for the credentials of profile {profile}",
        crate::text::path(socket)
    ));
    let started = Instant::now();
    let reply = request(
        socket,
        &Request::Credentials {
            profile: profile.to_string(),
        },
        CREDENTIALS_TIMEOUT,
    )
    .context("cannot get credentials from the agent")?;
    let Reply::Credentials(creds) = reply else {
        // `request` only returns credentials for a credentials request.
        return Err(CliFailure::operational(anyhow::anyhow!(
            "the agent answered with something other than credentials"
        )));
    };
    debug_line(&format!(
        "credentials {} expiring {} after {} ms",
        creds.access_key_id,
        creds.expiration,
        started.elapsed().as_millis()
    ));
    let json = crate::cli::commands::credential_json(&creds, b"", b"\n")
        .map_err(|e| CliFailure::operational(e).context("cannot encode the credentials"))?;
    crate::cli::commands::write_out(out, &json)
}

/// `agent status`: asks the agent on the socket for its report and prints it.
pub fn status_command(args: &AgentStatusArgs, out: &mut dyn Write) -> Result<(), CliFailure> {
    let socket =
        super::paths::client_socket(args.agent_socket.clone(), &|n| std::env::var(n).ok())?;
    let reply = request(&socket, &Request::Status, STATUS_TIMEOUT)
        .context("cannot get the agent's status")?;
    let Reply::Status(report) = reply else {
        // `request` only returns a status for a status request.
        return Err(CliFailure::operational(anyhow::anyhow!(
            "the agent answered with something other than its status"
        )));
    };
    let text = if args.json {
        let mut json = serde_json::to_string(&report)
            .map_err(|e| CliFailure::operational(e).context("cannot encode the status report"))?;
        json.push('\n');
        json
    } else {
        render_status(&report)
    };
    crate::cli::commands::write_out(out, text.as_bytes())
}

/// The status report as a table for a person, every text from the agent escaped.
pub fn render_status(r: &StatusReport) -> String {
    use crate::text::escape;
    let mut out = format!(
        "agent pid {}, version {}\nconfiguration {}\nsocket {}\n\n",
        r.pid,
        escape(&r.version),
        escape(&r.config),
        escape(&r.socket)
    );
    if r.profiles.is_empty() {
        out.push_str("no profile this user may read\n");
        return out;
    }
    let dash = |v: &Option<String>| v.as_deref().map_or("-".to_string(), |s| escape(s).into());
    let mut rows = vec![[
        "PROFILE".to_string(),
        "CERTIFICATE EXPIRES".to_string(),
        "CREDENTIALS EXPIRE".to_string(),
        "LAST REFRESH".to_string(),
        "REFRESHES".to_string(),
    ]];
    for p in &r.profiles {
        rows.push([
            escape(&p.name).into(),
            dash(&p.certificate.as_ref().map(|c| c.not_after.clone())),
            dash(&p.credentials_expiration),
            dash(&p.last_refresh),
            format!("{} ok, {} failed", p.refreshes_ok, p.refreshes_failed),
        ]);
    }
    let mut widths = [0usize; 5];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                line.push_str(&" ".repeat(w - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let mut details = String::new();
    for p in &r.profiles {
        let name = escape(&p.name);
        if let Some(c) = &p.certificate {
            details.push_str(&format!(
                "{name}: certificate {}, serial {}\n",
                escape(&c.subject),
                escape(&c.serial)
            ));
        }
        if let Some(f) = &p.last_failure {
            details.push_str(&format!(
                "{name}: last failure {}: {}\n",
                escape(&f.at),
                escape(&f.message)
            ));
        }
        if !p.listeners.is_empty() {
            let list: Vec<String> = p.listeners.iter().map(|l| escape(l).into()).collect();
            details.push_str(&format!("{name}: serving on {}\n", list.join(", ")));
        }
    }
    if !details.is_empty() {
        out.push('\n');
        out.push_str(&details);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::protocol::{CertificateStatus, FailureStatus, ProfileStatus};
    use rolesanywhere_core::{Classify as _, ErrorClass};

    #[test]
    fn refused_profiles_and_callers_are_configuration_errors_the_rest_operational() {
        for code in ErrorCode::ALL {
            let e = Error::Refused(Failure::new(code, "m"));
            let want = match code {
                ErrorCode::UnknownProfile | ErrorCode::NotAllowed => ErrorClass::Configuration,
                _ => ErrorClass::Operational,
            };
            assert_eq!(e.class(), want, "{code}");
            assert!(e.hint().is_some(), "{code}");
        }
        let socket = PathBuf::from("/run/x.sock");
        for e in [
            Error::NotRunning {
                socket: socket.clone(),
                reason: "no such socket",
            },
            Error::Denied {
                socket: socket.clone(),
            },
            Error::Timeout {
                socket: socket.clone(),
                after: Duration::from_secs(1),
            },
            Error::Protocol {
                socket,
                source: DecodeError::TooLong,
            },
        ] {
            assert_eq!(e.class(), ErrorClass::Operational, "{e}");
            assert!(e.to_string().contains("/run/x.sock"), "{e}");
        }
    }

    #[test]
    fn a_missing_socket_is_not_running_naming_the_socket_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.sock");
        let e = request(&path, &Request::Status, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(e, Error::NotRunning { .. }), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains(&path.display().to_string())
                && text.contains("start it with `rolesanywhere-agent agent`"),
            "{text}"
        );
        // A socket nobody listens on any more: refused.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let e = request(&path, &Request::Status, Duration::from_secs(1)).unwrap_err();
        assert!(
            matches!(
                e,
                Error::NotRunning {
                    reason: "nothing accepts connections on it",
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn the_status_table_is_aligned_and_escaped() {
        let r = StatusReport {
            pid: 7,
            version: "0.1.0".into(),
            config: "/etc/a.toml".into(),
            socket: "/run/a\u{1b}[2J.sock".into(),
            profiles: vec![
                ProfileStatus {
                    name: "web".into(),
                    certificate: Some(CertificateStatus {
                        subject: "CN=evil\u{202e}txt".into(),
                        serial: "12".into(),
                        not_after: "2027-01-01T00:00:00Z".into(),
                    }),
                    credentials_expiration: Some("2026-05-01T12:00:00Z".into()),
                    last_refresh: Some("2026-05-01T11:00:00Z".into()),
                    last_failure: Some(FailureStatus {
                        at: "2026-05-01T10:00:00Z".into(),
                        message: "line\nbreak".into(),
                    }),
                    refreshes_ok: 3,
                    refreshes_failed: 1,
                    listeners: vec!["127.0.0.1:9911".into()],
                },
                ProfileStatus {
                    name: "batch-jobs".into(),
                    ..ProfileStatus::default()
                },
            ],
        };
        let text = render_status(&r);
        assert!(
            !text
                .chars()
                .any(|c| c != '\n' && crate::text::needs_escape(c)),
            "{text}"
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "agent pid 7, version 0.1.0");
        assert_eq!(lines[2], "socket /run/a\\u{1b}[2J.sock");
        assert_eq!(
            lines[4],
            "PROFILE     CERTIFICATE EXPIRES   CREDENTIALS EXPIRE    LAST REFRESH          REFRESHES"
        );
        assert_eq!(
            lines[5],
            "web         2027-01-01T00:00:00Z  2026-05-01T12:00:00Z  2026-05-01T11:00:00Z  3 ok, 1 failed"
        );
        assert_eq!(
            lines[6],
            "batch-jobs  -                     -                     -                     0 ok, 0 failed"
        );
        assert!(
            text.contains("web: certificate CN=evil\\u{202e}txt, serial 12\n"),
            "{text}"
        );
        assert!(
            text.contains("web: last failure 2026-05-01T10:00:00Z: line\\nbreak\n"),
            "{text}"
        );
        assert!(text.contains("web: serving on 127.0.0.1:9911\n"), "{text}");
        let empty = render_status(&StatusReport::default());
        assert!(
            empty.ends_with("no profile this user may read\n"),
            "{empty}"
        );
    }
}
