//! `agent`: one long-running process holds the hardware identities of several named profiles and
//! hands their cached credentials to local callers over a Unix socket (`credential-process
//! --from-agent NAME`), modelled on ssh-agent and gpg-agent: the key stays open in one process, the
//! PIN is given once, callers are identified by the kernel (`SO_PEERCRED`).
//!
//! - [`paths`]: default configuration file and socket.
//! - [`config`]: the TOML file, validated exactly as the flags are.
//! - [`registry`]: the profiles, one refresher each (plus optional IMDS/container listeners).
//! - [`protocol`], [`server`], [`client`]: the socket's wire format and its two ends.
//! - [`metrics`]: the opt-in Prometheus endpoint. [`harden`]: no core dumps, no ptrace, locked memory.

pub mod client;
pub mod config;
pub mod harden;
pub mod metrics;
pub mod paths;
pub mod protocol;
pub mod registry;
pub mod server;
mod sys;

use crate::cli::Failure;
use crate::cli::args::{AgentArgs, AgentCommand};
use crate::refresh::Log;
use std::io::Write;
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `agent`: runs the daemon, or the client subcommand given.
pub fn main(args: AgentArgs, out: &mut dyn Write) -> Result<(), Failure> {
    match args.command {
        Some(AgentCommand::Status(ref s)) => client::status_command(s, out),
        None => run(&args),
    }
}

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--metrics-listen` is not `IP:PORT`.
    #[error("--metrics-listen {0}: not an IP:PORT address (a name such as localhost is not taken)")]
    MetricsAddr(String),
    /// Binding the metrics address failed.
    #[error("cannot listen for metrics on {addr}")]
    MetricsBind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Creating a socket pair or a thread failed.
    #[error("cannot start the agent: {0}")]
    Start(#[source] std::io::Error),
}

impl rolesanywhere_core::Classify for Error {
    fn class(&self) -> rolesanywhere_core::ErrorClass {
        match self {
            Error::MetricsAddr(_) => rolesanywhere_core::ErrorClass::Configuration,
            _ => rolesanywhere_core::ErrorClass::Operational,
        }
    }
}

fn log_line(line: &str) {
    crate::cli::stderr_line(&format!("rolesanywhere-agent: {line}"));
}

/// The daemon: reads the configuration (every mistake exits 2 before any device is opened), takes
/// the socket (systemd's, or binds one: a live agent on it exits 1), hardens the process, opens
/// every profile's identity (PIN prompts happen here, on a terminal only) and fetches its first
/// credentials, then serves until SIGTERM/SIGINT (exit 0); SIGHUP reloads the configuration.
fn run(args: &AgentArgs) -> Result<(), Failure> {
    let env = |name: &str| std::env::var(name).ok();
    let config_path = match &args.config {
        Some(p) => p.clone(),
        None => paths::default_config(&env)?,
    };
    // Absolute for the status report, the refusal messages and SIGHUP (same file whatever the
    // working directory becomes).
    let config_path = std::path::absolute(&config_path).unwrap_or(config_path);
    let config = config::load(&config_path, &env)?;
    let metrics_addr = match &args.metrics_listen {
        Some(a) => Some(
            a.parse()
                .map_err(|_| Error::MetricsAddr(crate::text::escape(a).into()))?,
        ),
        None => config.metrics_listen,
    };
    let log: Log = Arc::new(log_line);
    let hardening = harden::harden(&*log);
    crate::shutdown::install()?;
    crate::shutdown::install_reload()?;
    let stop_main = crate::shutdown::subscribe().map_err(Error::Start)?;
    let reload = crate::shutdown::reload_subscribe().map_err(Error::Start)?;
    let (listener, socket_path, bound_here) = match server::from_systemd()? {
        Some(l) => {
            let path = l
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(Path::to_path_buf))
                .unwrap_or_else(|| PathBuf::from("(systemd socket)"));
            (l, path, false)
        }
        None => {
            let path = match args.socket.clone().or_else(|| config.socket.clone()) {
                Some(p) => p,
                None => paths::default_socket(&env)?,
            };
            (server::bind(&path, config.socket_group)?, path, true)
        }
    };
    let metrics_listener = match metrics_addr {
        Some(addr) => Some(
            std::net::TcpListener::bind(addr)
                .map_err(|source| Error::MetricsBind { addr, source })?,
        ),
        None => None,
    };
    let info = registry::AgentInfo {
        config: crate::text::path(&config_path),
        socket: crate::text::path(&socket_path),
    };
    let socket_group = config.socket_group;
    let count = config.profiles.len();
    let registry = match registry::Registry::start(config, info, log.clone()) {
        Ok(r) => Arc::new(r),
        Err((name, e)) => {
            if bound_here {
                let _ = std::fs::remove_file(&socket_path);
            }
            return Err(e.context_text(format!("profile {name}")));
        }
    };
    log(&format!(
        "serving {count} profile(s) on {} ({hardening})",
        crate::text::path(&socket_path)
    ));
    let server_stop = crate::shutdown::subscribe().map_err(Error::Start)?;
    let backend: Arc<dyn server::Backend> = registry.clone();
    let server_log = log.clone();
    let server_thread = std::thread::Builder::new()
        .name("agent-socket".into())
        .spawn(move || {
            server::run(
                listener,
                backend,
                server::Limits::default(),
                server_stop,
                server_log,
            )
        })
        .map_err(Error::Start)?;
    let metrics_thread = match metrics_listener {
        Some(l) => {
            let addr = l.local_addr().map_err(Error::Start)?;
            log(&format!("serving metrics on http://{addr}/metrics"));
            let r = registry.clone();
            let stop = crate::shutdown::subscribe().map_err(Error::Start)?;
            let mlog = log.clone();
            Some(
                std::thread::Builder::new()
                    .name("agent-metrics".into())
                    .spawn(move || {
                        metrics::run(l, Arc::new(move || r.refresh_status()), stop, mlog)
                    })
                    .map_err(Error::Start)?,
            )
        }
        None => None,
    };
    wait_and_reload(
        &stop_main,
        &reload,
        &registry,
        &config_path,
        socket_group,
        &log,
    );
    // The profiles first: callers waiting for credentials are answered `shutting down` at once
    // instead of at the end of their wait, and the server then drains quickly.
    registry.shutdown();
    if let Ok(Err(e)) = server_thread.join() {
        log(&format!(
            "the socket server failed: {}",
            crate::text::error_chain(&e)
        ));
    }
    if let Some(t) = metrics_thread
        && let Ok(Err(e)) = t.join()
    {
        log(&format!(
            "the metrics endpoint failed: {}",
            crate::text::error_chain(&e)
        ));
    }
    if bound_here {
        let _ = std::fs::remove_file(&socket_path);
    }
    log("agent stopped (signal received)");
    Ok(())
}

/// Waits for SIGTERM/SIGINT; at each SIGHUP reads the configuration again and applies it. A file
/// that no longer reads or validates is reported and the running profiles are kept.
fn wait_and_reload(
    stop: &std::os::unix::net::UnixStream,
    reload: &std::os::unix::net::UnixStream,
    registry: &registry::Registry,
    config_path: &Path,
    socket_group: Option<u32>,
    log: &Log,
) {
    use std::io::Read as _;
    let fds = [stop.as_raw_fd(), reload.as_raw_fd()];
    loop {
        let ready = match crate::serve::sys::poll_readable(&fds, None) {
            Ok(r) => r,
            Err(e) => {
                log(&format!("cannot wait for signals: {e}; stopping"));
                return;
            }
        };
        if ready & 1 != 0 {
            return;
        }
        if ready & 2 != 0 {
            let mut buf = [0u8; 64];
            let _ = (&*reload).read(&mut buf);
            let env = |name: &str| std::env::var(name).ok();
            match config::load(config_path, &env) {
                Err(e) => log(&format!(
                    "SIGHUP: the configuration was not reloaded, the running profiles are kept: {}",
                    crate::text::error_chain(&e)
                )),
                Ok(new) => {
                    if new.socket_group != socket_group {
                        log("SIGHUP: socket_group changes take effect at the next start");
                    }
                    let a = registry.apply(new);
                    log(&format!(
                        "SIGHUP: configuration reloaded: {} added, {} removed, {} changed, {} unchanged",
                        a.added.len(),
                        a.removed.len(),
                        a.changed.len(),
                        a.unchanged.len()
                    ));
                    for (name, why) in a.failed {
                        log(&format!("SIGHUP: profile {name} did not start: {why}"));
                    }
                }
            }
        }
    }
}
