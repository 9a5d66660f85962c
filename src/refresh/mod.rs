//! STAND-IN for the refresher (issue 10, notes/issue10-contract.md), on the `update` branch only.
//!
//! The real module is written on the `refresh` branch at the same time and REPLACES THIS FILE at
//! merge. This one exists so that `update`'s loop compiles and runs against the contract's API:
//! it opens the identity once, fetches at about half-life and retries failures every few seconds,
//! with none of the real one's jitter, capped backoff, rotation, device-fault handling or
//! warnings. Do not build on it.

use crate::session::{Client, Credentials, SessionRequest};
use crate::signer::{self, Identity, KeyOptions};
use rolesanywhere_core::{Classify, ErrorClass};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// One credential set as handed out. `Debug` redacts secrets.
#[derive(Debug)]
pub struct Issued {
    /// The credentials.
    pub credentials: Credentials,
    /// When they were obtained (UTC).
    pub obtained_at: time::OffsetDateTime,
    /// 1, 2, 3 … increases with each new set.
    pub generation: u64,
}

/// What the refresher needs.
pub struct RefresherOptions {
    /// The identity to open.
    pub key: KeyOptions,
    /// The session client.
    pub client: Client,
    /// The CreateSession request.
    pub request: SessionRequest,
    /// Fetch once before [`Refresher::start`] returns.
    pub first_fetch_blocking: bool,
}

/// Opening the identity or the first fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The identity could not be opened.
    #[error("cannot load the signing identity")]
    Identity(#[source] signer::Error),
    /// The first CreateSession failed with a configuration error.
    #[error("the first CreateSession failed")]
    Session(#[source] crate::session::Error),
}

impl Classify for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::Identity(e) => e.class(),
            Error::Session(e) => e.class(),
        }
    }
}

/// No valid credentials right now.
#[derive(Debug)]
pub struct Unavailable(pub String);

struct State {
    current: Option<Arc<Issued>>,
    stopped: bool,
}

struct Inner {
    state: Mutex<State>,
    changed: Condvar,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// The refresher (stand-in).
#[derive(Clone)]
pub struct Refresher(Arc<Inner>);

const RETRY: Duration = Duration::from_secs(5);

impl Refresher {
    /// Opens the identity and starts the background thread.
    pub fn start(opts: RefresherOptions) -> Result<Refresher, Error> {
        let identity = signer::open(&opts.key).map_err(Error::Identity)?;
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                current: None,
                stopped: false,
            }),
            changed: Condvar::new(),
            thread: Mutex::new(None),
        });
        let r = Refresher(inner);
        if opts.first_fetch_blocking {
            match opts.client.create_session(&opts.request, &identity, None) {
                Ok(c) => r.store(c),
                Err(e) if e.class() == ErrorClass::Configuration => {
                    return Err(Error::Session(e));
                }
                Err(e) => log_failure(&e),
            }
        }
        let worker = r.clone();
        let handle = std::thread::spawn(move || worker.run(&opts, &identity));
        *r.0.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        Ok(r)
    }

    fn store(&self, credentials: Credentials) {
        let mut st = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        let generation = st.current.as_ref().map_or(0, |c| c.generation) + 1;
        st.current = Some(Arc::new(Issued {
            credentials,
            obtained_at: time::OffsetDateTime::now_utc(),
            generation,
        }));
        self.0.changed.notify_all();
    }

    fn run(&self, opts: &RefresherOptions, identity: &Identity) {
        loop {
            let next = {
                let st = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
                match &st.current {
                    Some(c) => {
                        let life = c.credentials.expires_at - c.obtained_at;
                        let half = Duration::try_from(life / 2).unwrap_or(RETRY);
                        let since =
                            Duration::try_from(time::OffsetDateTime::now_utc() - c.obtained_at)
                                .unwrap_or_default();
                        half.saturating_sub(since).max(RETRY)
                    }
                    None => Duration::ZERO,
                }
            };
            let deadline = Instant::now() + next;
            {
                let mut st = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
                while !st.stopped && Instant::now() < deadline {
                    let left = deadline.saturating_duration_since(Instant::now());
                    st = self
                        .0
                        .changed
                        .wait_timeout(st, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                if st.stopped {
                    return;
                }
            }
            match opts.client.create_session(&opts.request, identity, None) {
                Ok(c) => self.store(c),
                Err(e) => {
                    log_failure(&e);
                    let mut st = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
                    let until = Instant::now() + RETRY;
                    while !st.stopped && Instant::now() < until {
                        let left = until.saturating_duration_since(Instant::now());
                        st = self
                            .0
                            .changed
                            .wait_timeout(st, left)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                }
            }
        }
    }

    /// The current set if it is still valid.
    pub fn current(&self) -> Result<Arc<Issued>, Unavailable> {
        let st = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        match &st.current {
            Some(c) if c.credentials.expires_at > time::OffsetDateTime::now_utc() => Ok(c.clone()),
            _ => Err(Unavailable("no valid credentials".into())),
        }
    }

    /// Blocks until a set with generation > `after` exists, or `deadline`, or shutdown.
    pub fn wait_newer(&self, after: u64, deadline: Instant) -> Option<Arc<Issued>> {
        let mut st = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(c) = st.current.as_ref().filter(|c| c.generation > after) {
                return Some(c.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if st.stopped || left.is_zero() {
                return None;
            }
            st = self
                .0
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Stops the background thread. Idempotent.
    pub fn shutdown(&self) {
        self.0
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stopped = true;
        self.0.changed.notify_all();
        let handle = self
            .0
            .thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = handle
            && h.thread().id() != std::thread::current().id()
        {
            let _ = h.join();
        }
    }
}

fn log_failure(e: &crate::session::Error) {
    crate::cli::stderr_line(&format!(
        "rolesanywhere-agent: CreateSession failed: {}; retrying in {} s",
        crate::cli::error_text(e),
        RETRY.as_secs()
    ));
}
