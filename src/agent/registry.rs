//! The agent's profiles by name: one refresher each (the identity opened once, its credentials
//! cached and refreshed in the background), plus the optional IMDS/container listeners of `serve`.
//!
//! The socket server asks through [`server::Backend`]: who may read a profile is decided here
//! ([`server::allowed`] against the profile's `allow_uids`/`allow_gids`, by default the agent's own
//! uid), and a profile with no usable set yet is waited for (up to the caller's deadline), never
//! answered with an empty or expired one. [`Registry::apply`] takes a reloaded configuration
//! (SIGHUP): removed profiles stop, added ones start, changed ones restart, and unchanged ones keep
//! their identity, session and cache.
//!
//! Must not: hand a profile's credentials to a caller it does not allow, or put a secret in a log
//! line or a status report.

use super::config::{AgentConfig, ProfileConfig, ServeConfig};
use super::protocol::{
    CertificateStatus, ErrorCode, Failure, FailureStatus, ProfileStatus, StatusReport,
};
use super::server::{self, Backend, Peer};
use crate::cli::Failure as CliFailure;
use crate::refresh::{Issued, Log, RefreshStatus, Refresher, RefresherOptions};
use crate::session::Client;
use std::collections::BTreeMap;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Instant;

/// What the status report says of the agent itself.
#[derive(Debug, Clone)]
pub struct AgentInfo {
    /// The configuration file.
    pub config: String,
    /// The socket.
    pub socket: String,
}

/// One running profile.
pub struct Profile {
    config: ProfileConfig,
    /// Who may read it (`allow_uids`, `allow_gids`): replaced in place by a reload.
    allow: RwLock<(Vec<u32>, Vec<u32>)>,
    refresher: Refresher,
    endpoints: Option<Endpoints>,
}

/// A profile's IMDS/container listeners, served on a thread of their own.
pub struct Endpoints {
    addrs: Vec<String>,
    stop: UnixStream,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// A profile's listeners, bound, and its container token: what [`Endpoints::start`] serves.
pub struct Bound {
    /// The listening sockets.
    pub listeners: Vec<crate::serve::Listener>,
    /// The container endpoint's token; `None` disables it.
    pub token: Option<crate::secret::Secret>,
}

impl Bound {
    /// Binds `serve`'s addresses and reads or creates its container token file.
    pub fn bind(serve: &ServeConfig) -> Result<Bound, CliFailure> {
        let listeners = crate::serve::bind(&serve.listen)?;
        let token = match &serve.container_token_file {
            Some(path) => Some(crate::serve::container::load_or_create(path)?.0),
            None => None,
        };
        Ok(Bound { listeners, token })
    }
}

impl Endpoints {
    /// Serves `refresher`'s credentials on `bound`'s listeners, on a thread, until
    /// [`Endpoints::stop`]. With `fatal`, a server that fails (it cannot wait for connections any
    /// more) requests the process's shutdown: `serve` has nothing else to do; an agent logs it and
    /// keeps its other profiles.
    pub fn start(
        bound: Bound,
        hop_limit: u8,
        role_arn: &str,
        refresher: &Refresher,
        log: &Log,
        fatal: bool,
    ) -> Result<Endpoints, CliFailure> {
        let role = crate::arn::parse(role_arn, crate::arn::ArnKind::Role)
            .map_err(|e| CliFailure::from(crate::cli::settings::Error::from(e)))?;
        let addrs = bound.listeners.iter().map(|l| l.addr.to_string()).collect();
        let r = refresher.clone();
        let endpoints = crate::serve::Endpoints {
            role: role.resource().rsplit('/').next().unwrap_or("").to_string(),
            account_id: role.account.clone(),
            container_token: bound.token,
            hop_limit,
            source: Arc::new(move || r.current()),
        };
        let (stop_read, stop) = UnixStream::pair()
            .map_err(|e| CliFailure::operational(e).context("cannot create a socket pair"))?;
        let log = log.clone();
        let listeners = bound.listeners;
        let thread = std::thread::Builder::new()
            .name("profile-endpoints".into())
            .spawn(move || {
                let served = crate::serve::run(
                    listeners,
                    endpoints,
                    crate::serve::Limits::default(),
                    stop_read,
                    log.clone(),
                );
                if let Err(e) = served {
                    log(&format!(
                        "the IMDS/container endpoints stopped: {}",
                        crate::text::error_chain(&e)
                    ));
                    if fatal {
                        crate::shutdown::request();
                    }
                }
            })
            .map_err(|e| CliFailure::operational(e).context("cannot start a thread"))?;
        Ok(Endpoints {
            addrs,
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Stops the listeners (requests in flight are finished) and waits for the thread.
    pub fn stop(&self) {
        use std::io::Write as _;
        let _ = (&self.stop).write_all(b"x");
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

impl Profile {
    /// Opens the identity (a PIN prompt here when the agent runs on a terminal), does the first
    /// CreateSession and starts the refresher, then binds and serves the profile's listeners if it
    /// has any.
    pub fn start(config: ProfileConfig, log: &Log) -> Result<Profile, CliFailure> {
        let bound = match &config.serve {
            Some(serve) => Some(Bound::bind(serve)?),
            None => None,
        };
        Profile::start_with(config, bound, log, false)
    }

    /// [`Profile::start`] with listeners already bound (`serve` binds them first, or takes
    /// systemd's, so that a busy port fails before any CreateSession). `fatal`: see
    /// [`Endpoints::start`].
    pub fn start_with(
        config: ProfileConfig,
        bound: Option<Bound>,
        log: &Log,
        fatal: bool,
    ) -> Result<Profile, CliFailure> {
        let s = &config.session;
        let mut client = s.client.clone();
        // The refresher's schedule does the retrying.
        client.max_attempts = 1;
        // Each secret file is read once, here: reopening the device later needs none of them.
        let key = s.key.with_secret_files_read().map_err(|e| {
            CliFailure::from(crate::signer::Error::from(e))
                .context("cannot read a secret of the identity")
        })?;
        let mut opts = RefresherOptions::new(
            key,
            Client::new(s.endpoint.clone(), &client)?,
            s.request.clone(),
        );
        // `serve`'s one profile has no name, and its lines no prefix.
        opts.log = Some(if config.name.is_empty() {
            log.clone()
        } else {
            let (name, inner) = (config.name.clone(), log.clone());
            Arc::new(move |line: &str| inner(&format!("profile {name}: {line}")))
        });
        let refresher = Refresher::start(opts)?;
        let hop_limit = config.serve.as_ref().map_or(64, |s| s.hop_limit);
        let endpoints = match bound {
            Some(bound) => {
                match Endpoints::start(
                    bound,
                    hop_limit,
                    &s.request.role_arn,
                    &refresher,
                    log,
                    fatal,
                ) {
                    Ok(e) => Some(e),
                    Err(e) => {
                        refresher.shutdown();
                        return Err(e);
                    }
                }
            }
            None => None,
        };
        Ok(Profile {
            allow: RwLock::new((config.allow_uids.clone(), config.allow_gids.clone())),
            config,
            refresher,
            endpoints,
        })
    }

    /// Stops the listeners and the refresher, closing the identity.
    pub fn stop(&self) {
        if let Some(e) = &self.endpoints {
            e.stop();
        }
        self.refresher.shutdown();
    }

    /// The profile's refresher.
    pub fn refresher(&self) -> &Refresher {
        &self.refresher
    }
}

/// What [`Registry::apply`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Profiles started.
    pub added: Vec<String>,
    /// Profiles stopped.
    pub removed: Vec<String>,
    /// Profiles restarted with their new settings.
    pub changed: Vec<String>,
    /// Profiles left as they were.
    pub unchanged: Vec<String>,
    /// Profiles whose new settings failed to start, with why (a changed one keeps running with its
    /// old settings when they start again).
    pub failed: Vec<(String, String)>,
}

/// The profiles, shared by the socket server, the metrics endpoint and the reload loop.
pub struct Registry {
    profiles: RwLock<BTreeMap<String, Arc<Profile>>>,
    info: AgentInfo,
    log: Log,
}

impl Registry {
    /// Starts every profile of `config`, in name order. The first that fails stops the ones
    /// already started and is returned with its name.
    pub fn start(
        config: AgentConfig,
        info: AgentInfo,
        log: Log,
    ) -> Result<Registry, (String, CliFailure)> {
        let mut profiles = BTreeMap::new();
        for (name, p) in config.profiles {
            match Profile::start(p, &log) {
                Ok(p) => {
                    profiles.insert(name, Arc::new(p));
                }
                Err(e) => {
                    for p in profiles.values() {
                        Profile::stop(p);
                    }
                    return Err((name, e));
                }
            }
        }
        Ok(Registry {
            profiles: RwLock::new(profiles),
            info,
            log,
        })
    }

    fn snapshot_profiles(&self) -> Vec<(String, Arc<Profile>)> {
        self.profiles
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(n, p)| (n.clone(), p.clone()))
            .collect()
    }

    /// Takes a reloaded configuration: stops removed profiles, restarts changed ones, starts added
    /// ones; unchanged ones keep their identity and cache. A profile whose new settings fail is
    /// reported in [`Applied::failed`]; a changed one is started again with its old settings.
    pub fn apply(&self, config: AgentConfig) -> Applied {
        let mut applied = Applied::default();
        let current = self.snapshot_profiles();
        let mut new = config.profiles;
        for (name, running) in &current {
            match new.remove(name) {
                None => {
                    running.stop();
                    self.remove(name);
                    applied.removed.push(name.clone());
                }
                Some(p) if p.same_as(&running.config) => {
                    *running.allow.write().unwrap_or_else(|e| e.into_inner()) =
                        (p.allow_uids, p.allow_gids);
                    applied.unchanged.push(name.clone());
                }
                Some(p) => {
                    // Out of the map first: no caller is answered under the old settings while the
                    // new ones start. Then stopped before the new one opens the device: a token or
                    // TPM may not take a second login or load of the same key.
                    self.remove(name);
                    running.stop();
                    let allow = (p.allow_uids.clone(), p.allow_gids.clone());
                    match Profile::start(p, &self.log) {
                        Ok(started) => {
                            self.insert(name, started);
                            applied.changed.push(name.clone());
                        }
                        Err(e) => {
                            applied
                                .failed
                                .push((name.clone(), crate::text::error_chain(e.error().as_ref())));
                            // The old settings again, under the new allow lists: a revocation
                            // made beside a failing change still takes effect.
                            let mut old = running.config.clone();
                            (old.allow_uids, old.allow_gids) = allow;
                            if let Ok(old) = Profile::start(old, &self.log) {
                                self.insert(name, old);
                            }
                        }
                    }
                }
            }
        }
        for (name, p) in new {
            match Profile::start(p, &self.log) {
                Ok(started) => {
                    self.insert(&name, started);
                    applied.added.push(name);
                }
                Err(e) => applied
                    .failed
                    .push((name, crate::text::error_chain(e.error().as_ref()))),
            }
        }
        applied
    }

    fn insert(&self, name: &str, p: Profile) {
        self.profiles
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), Arc::new(p));
    }

    fn remove(&self, name: &str) {
        self.profiles
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }

    /// Each profile's refresh state, for the metrics endpoint.
    pub fn refresh_status(&self) -> Vec<(String, RefreshStatus)> {
        self.snapshot_profiles()
            .into_iter()
            .map(|(n, p)| (n, p.refresher.status()))
            .collect()
    }

    /// The profile names, in order.
    pub fn names(&self) -> Vec<String> {
        self.snapshot_profiles()
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    }

    /// Stops every profile (listeners, refreshers, identities closed).
    pub fn shutdown(&self) {
        for (_, p) in self.snapshot_profiles() {
            p.stop();
        }
    }

    fn allows(&self, p: &Profile, peer: &Peer) -> bool {
        let allow = p.allow.read().unwrap_or_else(|e| e.into_inner());
        server::allowed(peer, &allow.0, &allow.1)
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    crate::text::utc_seconds(t)
}

impl Backend for Registry {
    fn credentials(
        &self,
        profile: &str,
        peer: &Peer,
        deadline: Instant,
    ) -> Result<Arc<Issued>, Failure> {
        let found = self
            .profiles
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(profile)
            .cloned();
        let Some(p) = found else {
            return Err(Failure {
                code: ErrorCode::UnknownProfile,
                message: format!("the agent has no profile {}", crate::text::escape(profile)),
            });
        };
        if !self.allows(&p, peer) {
            return Err(Failure {
                code: ErrorCode::NotAllowed,
                message: format!(
                    "uid {} may not read profile {profile}: add it to the profile's allow_uids \
                     (or a group of it to allow_gids) in {}",
                    peer.uid, self.info.config
                ),
            });
        }
        p.refresher.wait_usable(deadline).map_err(|u| Failure {
            code: ErrorCode::Unavailable,
            message: u.reason,
        })
    }

    fn status(&self, peer: &Peer) -> StatusReport {
        let profiles = self
            .snapshot_profiles()
            .into_iter()
            .filter(|(_, p)| self.allows(p, peer))
            .map(|(name, p)| {
                let s = p.refresher.status();
                ProfileStatus {
                    name,
                    certificate: s.certificate.map(|c| CertificateStatus {
                        subject: c.subject,
                        serial: c.serial,
                        not_after: rfc3339(c.not_after),
                    }),
                    credentials_expiration: s.expires_at.map(rfc3339),
                    last_refresh: s.obtained_at.map(rfc3339),
                    last_failure: s.last_failure.map(|(at, message)| FailureStatus {
                        at: rfc3339(at),
                        message,
                    }),
                    refreshes_ok: s.successes,
                    refreshes_failed: s.failures,
                    listeners: p
                        .endpoints
                        .as_ref()
                        .map(|e| e.addrs.clone())
                        .unwrap_or_default(),
                }
            })
            .collect();
        StatusReport {
            pid: std::process::id(),
            version: super::super::cli::version::text().to_string(),
            config: self.info.config.clone(),
            socket: self.info.socket.clone(),
            profiles,
        }
    }
}
