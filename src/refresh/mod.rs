//! The refresher: one identity, one background thread calling CreateSession, the last good
//! credentials for the long-running fronts (`serve`, `update`, later the agent).
//!
//! Owns the identity for the life of the process ([`LiveIdentity`]: one PKCS#11 login, one TPM key
//! load), the cached credential set and the schedule. The fronts only read: [`Refresher::current`]
//! never blocks on the network and never returns an empty or expired set; [`Refresher::wait_usable`]
//! waits (up to a deadline) for a usable one, [`Refresher::wait_newer`] for the next one;
//! [`Refresher::status`] tells what the refresher is doing (certificate, counts, last failure,
//! CreateSession latency), without secrets. Only the refresher's thread calls CreateSession, one attempt at a time
//! (single flight), when the schedule says ([`schedule`]: half-life with jitter; capped, jittered
//! backoff on failure; never more than one attempt per 2 s).
//!
//! At each attempt it first reloads the identity's sources (rotated certificate, chain and key
//! files; a `pkcs11:` certificate re-resolved on the token), keeping the previous identity when the
//! new one is incomplete or mismatched; warns once per certificate that expires within 30 days;
//! and when the device session is lost (token removed, TPM reset) closes the identity and opens it
//! again once at the next attempt, only from a non-interactive PIN source. A refused PIN or TPM
//! password stops the attempts (it is never retried). [`Refresher::shutdown`] (or dropping the
//! last handle) stops the thread and closes the identity: PKCS#11 sessions closed and the module
//! `C_Finalize`d, TPM objects flushed.
//!
//! Must not: print credentials or any secret (log lines carry error messages, times and
//! certificate names only), call CreateSession from a front's thread, or prompt for a PIN after
//! start.
//!
//! - `schedule`: the pure timing rules ([`Policy`], [`Jitter`]).
//! - `fault`: what a failure means (retry soon or later, open the device again, stop).
//! - `status`: the snapshot [`Refresher::status`] returns ([`RefreshStatus`]).

mod fault;
pub mod schedule;
mod status;

pub use schedule::{FailureKind, Jitter, Policy};
pub use status::{CertificateInfo, LATENCY_BUCKETS, LatencyHistogram, RefreshStatus};

use crate::session::{self, Credentials, SessionRequest};
use crate::signer::{self, Classify, ErrorClass, KeyOptions, LiveIdentity, Reload};
use fault::Fault;
use schedule::Plan;
use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// One credential set as handed out. `Debug` redacts the secrets (those of [`Credentials`]).
#[derive(Debug)]
pub struct Issued {
    /// The credentials.
    pub credentials: Credentials,
    /// When they arrived (UTC), for IMDS `LastUpdated`.
    pub obtained_at: OffsetDateTime,
    /// 1 for the first set, increased by one for each new set.
    pub generation: u64,
}

/// Why there is no set to hand out: a short, secret-free reason for an AWS-shaped error body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Unavailable {
    /// What is wrong (no set yet, the last one expired and why refreshing fails, shut down).
    pub reason: String,
}

/// Where log lines go: one line each, without the program-name prefix.
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// The clock the schedule reads (UTC).
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// What [`Refresher::start`] needs.
pub struct RefresherOptions {
    /// The key and certificate (opened once, reloaded at each refresh).
    pub key: KeyOptions,
    /// The CreateSession client. Build it with `max_attempts: 1`: the refresher's schedule does the
    /// retrying (the client's own retries would break the one-attempt-per-2-s bound).
    pub client: session::Client,
    /// What to ask CreateSession for.
    pub request: SessionRequest,
    /// Fetch the first set before [`Refresher::start`] returns.
    pub first_fetch_blocking: bool,
    /// The schedule's tunables.
    pub policy: Policy,
    /// A fixed jitter seed (tests); `None` seeds from the system's random source.
    pub jitter_seed: Option<u64>,
    /// The clock; `None` for the system clock.
    pub clock: Option<Clock>,
    /// Where log lines go; `None` for stderr, `rolesanywhere-agent: ` first, escaped.
    pub log: Option<Log>,
}

impl RefresherOptions {
    /// Options with the default policy, system clock and entropy, stderr logging, and a blocking
    /// first fetch.
    pub fn new(
        key: KeyOptions,
        client: session::Client,
        request: SessionRequest,
    ) -> RefresherOptions {
        RefresherOptions {
            key,
            client,
            request,
            first_fetch_blocking: true,
            policy: Policy::default(),
            jitter_seed: None,
            clock: None,
            log: None,
        }
    }
}

/// Why the refresher could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The identity could not be opened, for a reason retrying cannot fix (a configuration mistake,
    /// a refused PIN or password).
    #[error(transparent)]
    Identity(signer::Error),
    /// The first CreateSession failed for a configuration mistake (endpoint, proxy, CA bundle).
    #[error(transparent)]
    FirstFetch(session::Error),
    /// The background thread could not be started.
    #[error("cannot start the credential refresh thread")]
    Thread(#[source] std::io::Error),
}

impl Error {
    /// What the user can do about it, when known.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::FirstFetch(e) => e.hint(),
            _ => None,
        }
    }
}

/// Configuration for mistakes in the configuration (the CLI exits 2), operational otherwise.
impl Classify for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::Identity(e) => e.class(),
            Error::FirstFetch(e) => e.class(),
            Error::Thread(_) => ErrorClass::Operational,
        }
    }
}

/// What the fronts and the thread share.
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    clock: Clock,
}

struct State {
    current: Option<Arc<Issued>>,
    generation: u64,
    stopping: bool,
    /// Attempts have ended for good (a refused PIN): no set will come until a restart.
    gave_up: bool,
    /// Why refreshing fails, when it does (secret-free), for [`Unavailable`].
    problem: Option<String>,
    /// Certificate, counts, last failure and latency; the cached set's times are filled in by
    /// [`Refresher::status`] from `current`.
    status: RefreshStatus,
}

impl State {
    fn new() -> State {
        State {
            current: None,
            generation: 0,
            stopping: false,
            gave_up: false,
            problem: None,
            status: RefreshStatus::default(),
        }
    }

    /// The current set if it is usable at `now`, else why not (the text [`Refresher::current`]
    /// gives).
    fn usable(&self, now: OffsetDateTime) -> Result<Arc<Issued>, Unavailable> {
        if let Some(c) = &self.current
            && schedule::usable(now, c.obtained_at, c.credentials.expires_at)
        {
            return Ok(c.clone());
        }
        let reason = match (&self.current, &self.problem) {
            _ if self.stopping => "the credential service is shutting down".to_string(),
            (Some(c), Some(p)) => format!(
                "the last credentials expired at {} and refreshing them fails: {p}",
                c.credentials.expiration
            ),
            (Some(c), None) => format!(
                "the last credentials expire at {} and new ones are being fetched",
                c.credentials.expiration
            ),
            (None, Some(p)) => format!("no credentials yet: {p}"),
            (None, None) => "no credentials yet: the first are being fetched".to_string(),
        };
        Err(Unavailable { reason })
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is replaced whole under the lock; a panic elsewhere cannot leave it torn.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `credentials` the current set (the next generation) and wakes the waiters.
    fn install(&self, credentials: Credentials, obtained_at: OffsetDateTime) {
        let mut state = self.lock();
        state.generation += 1;
        state.current = Some(Arc::new(Issued {
            credentials,
            obtained_at,
            generation: state.generation,
        }));
        state.problem = None;
        state.status.successes += 1;
        drop(state);
        self.changed.notify_all();
    }

    /// Records the certificate of the identity now signing.
    fn set_certificate(&self, identity: &LiveIdentity) {
        let info = CertificateInfo::of(&identity.identity().leaf);
        self.lock().status.certificate = Some(info);
    }
}

/// The handle the fronts hold. Cloning shares the one refresher; dropping the last clone shuts it
/// down.
#[derive(Clone)]
pub struct Refresher {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        stop(&self.shared, &self.thread);
    }
}

fn stop(shared: &Shared, thread: &Mutex<Option<JoinHandle<()>>>) {
    shared.lock().stopping = true;
    shared.changed.notify_all();
    // The guard is held while joining: a second caller (the signal callback's thread and the
    // front both shut down) waits until the worker has closed the identity instead of returning
    // at once and letting the process exit before the TPM flush or `C_Finalize`. The worker never
    // takes this mutex, so this cannot deadlock.
    let mut guard = thread.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(h) = guard.take() {
        if h.thread().id() == std::thread::current().id() {
            return;
        }
        let _ = h.join();
    }
}

impl Refresher {
    /// Opens the identity once (one login / one TPM load for the life of the process) and starts the
    /// background thread. Does the first CreateSession before returning when
    /// [`RefresherOptions::first_fetch_blocking`] is set; a configuration-class failure of the first
    /// fetch (or of opening the identity), and a refused PIN or password, are returned as `Err`; an
    /// operational one is logged and retried in the background.
    pub fn start(opts: RefresherOptions) -> Result<Refresher, Error> {
        let clock: Clock = opts
            .clock
            .unwrap_or_else(|| Arc::new(OffsetDateTime::now_utc));
        let log: Log = opts.log.unwrap_or_else(|| {
            Arc::new(|line: &str| {
                crate::cli::output::stderr_line(&format!("rolesanywhere-agent: {line}"))
            })
        });
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new()),
            changed: Condvar::new(),
            clock: clock.clone(),
        });
        let requested = Duration::from_secs(u64::from(opts.request.duration_seconds));
        if schedule::sdks_refresh_every_call(requested) {
            log(&format!(
                "warning: sessions of {} s make SDKs refresh credentials before every call \
                 (botocore refreshes credentials that expire within 15 minutes); use \
                 --session-duration 3600 or more",
                requested.as_secs()
            ));
        }
        let reopen_allowed = !crate::secret::can_prompt() || non_interactive(&opts.key);
        let opened_at = clock();
        let (identity, open_failure) = match LiveIdentity::open(&opts.key) {
            Ok(id) => {
                shared.set_certificate(&id);
                (Some(id), None)
            }
            Err(e) => match fault::of_identity(&e) {
                Fault::Fatal | Fault::Retry(FailureKind::Refused) => {
                    return Err(Error::Identity(e));
                }
                // Opening again in the background could prompt on the terminal: only at start.
                _ if !reopen_allowed => return Err(Error::Identity(e)),
                // A device that is not there yet (or fails): retried in the background.
                _ => (None, Some(e)),
            },
        };
        let mut worker = Worker {
            shared: shared.clone(),
            key: opts.key,
            client: opts.client,
            request: opts.request,
            identity,
            plan: Plan::new(opts.policy, requested),
            jitter: opts
                .jitter_seed
                .map_or_else(Jitter::from_entropy, Jitter::seeded),
            log,
            warned: HashSet::new(),
            last_reload_error: None,
            reopen_allowed,
            reopening: false,
            next: clock(),
            stopped: false,
        };
        if let Some(e) = open_failure {
            // The open was the first attempt: the next one waits its backoff.
            worker.plan.attempt(opened_at);
            worker.failed(AttemptError::Identity(e), opened_at);
        } else if opts.first_fetch_blocking {
            let now = clock();
            worker.plan.attempt(now);
            match worker.attempt() {
                Ok(()) => {}
                Err(e) => {
                    let e = match e {
                        AttemptError::Session(s)
                            if s.class() == ErrorClass::Configuration
                                || fault::of_session(&s) == Fault::Fatal =>
                        {
                            return Err(Error::FirstFetch(s));
                        }
                        AttemptError::Identity(i) if fault::of_identity(&i) == Fault::Fatal => {
                            return Err(Error::Identity(i));
                        }
                        other => other,
                    };
                    // From the failure's end, as in `run`.
                    worker.failed(e, clock());
                }
            }
        }
        let thread = std::thread::Builder::new()
            .name("credential-refresh".into())
            .spawn(move || worker.run())
            .map_err(Error::Thread)?;
        Ok(Refresher {
            inner: Arc::new(Inner {
                shared,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// The current set if it is still valid (not expired, nor within a small margin of it);
    /// otherwise [`Unavailable`] with a short, secret-free reason. Never blocks on the network;
    /// never returns an empty or expired set.
    pub fn current(&self) -> Result<Arc<Issued>, Unavailable> {
        let shared = &self.inner.shared;
        let now = (shared.clock)();
        shared.lock().usable(now)
    }

    /// The current set if it is usable, at once; otherwise waits for one until `deadline`, shutdown,
    /// or the refresher giving up for good (a refused PIN), and then gives the reason
    /// [`Refresher::current`] would. Never returns an empty or expired set; never calls
    /// CreateSession itself (the refresher's thread is already fetching).
    pub fn wait_usable(&self, deadline: Instant) -> Result<Arc<Issued>, Unavailable> {
        let shared = &self.inner.shared;
        let mut state = shared.lock();
        loop {
            let result = state.usable((shared.clock)());
            let now = Instant::now();
            if result.is_ok() || state.stopping || state.gave_up || now >= deadline {
                return result;
            }
            // Every new set, failed attempt and shutdown notifies; nothing else makes a set usable.
            state = shared
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// What the refresher is doing: the certificate signing, the cached set's times, the refresh
    /// counts, the last failure and the CreateSession latencies. No secrets.
    pub fn status(&self) -> RefreshStatus {
        let state = self.inner.shared.lock();
        let mut status = state.status.clone();
        status.expires_at = state.current.as_ref().map(|c| c.credentials.expires_at);
        status.obtained_at = state.current.as_ref().map(|c| c.obtained_at);
        status
    }

    /// Blocks until a set with a generation above `after` exists, or `deadline`, or shutdown; for
    /// `update`. The set returned is the newest.
    pub fn wait_newer(&self, after: u64, deadline: Instant) -> Option<Arc<Issued>> {
        let shared = &self.inner.shared;
        let mut state = shared.lock();
        loop {
            if let Some(c) = state.current.as_ref().filter(|c| c.generation > after) {
                return Some(c.clone());
            }
            let now = Instant::now();
            if state.stopping || now >= deadline {
                return None;
            }
            state = shared
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Stops the background thread (an attempt in flight is finished first) and closes the identity
    /// (PKCS#11 sessions closed and the module `C_Finalize`d, TPM objects flushed). Idempotent.
    pub fn shutdown(&self) {
        stop(&self.inner.shared, &self.inner.thread);
    }
}

/// A failed attempt: the identity (opening or reloading it) or CreateSession.
enum AttemptError {
    Identity(signer::Error),
    Session(session::Error),
    /// The identity is closed and opening it again could prompt on the terminal.
    NeedsPrompt,
}

impl AttemptError {
    fn fault(&self) -> Fault {
        match self {
            AttemptError::Identity(e) => fault::of_identity(e),
            AttemptError::Session(e) => fault::of_session(e),
            // Stops attempts with the hint on giving the PIN non-interactively.
            AttemptError::NeedsPrompt => Fault::DeviceLost,
        }
    }

    fn text(&self) -> String {
        match self {
            AttemptError::Identity(e) => crate::text::error_chain(e),
            AttemptError::NeedsPrompt => "the key is not open".into(),
            AttemptError::Session(e) => {
                let mut t = crate::text::error_chain(e);
                if let Some(h) = e.hint() {
                    t.push_str("; hint: ");
                    t.push_str(&h);
                }
                t
            }
        }
    }
}

/// The refresher's thread: the only owner of the identity and the only caller of CreateSession.
struct Worker {
    shared: Arc<Shared>,
    key: KeyOptions,
    client: session::Client,
    request: SessionRequest,
    /// `None` after the device was lost, until it is opened again.
    identity: Option<LiveIdentity>,
    plan: Plan,
    jitter: Jitter,
    log: Log,
    /// Certificates already warned about (issuer, serial).
    warned: HashSet<(String, String)>,
    /// The last refused reload, logged once until it changes.
    last_reload_error: Option<String>,
    /// Opening the identity again cannot prompt (no terminal, or PIN and passwords from
    /// non-interactive sources).
    reopen_allowed: bool,
    /// The identity is to be opened again after a device fault (logged when it succeeds).
    reopening: bool,
    /// When the next attempt is due.
    next: OffsetDateTime,
    /// Attempts ended for good (a refused PIN); the set held is served until it expires.
    stopped: bool,
}

impl Worker {
    fn now(&self) -> OffsetDateTime {
        (self.shared.clock)()
    }

    fn run(mut self) {
        loop {
            if !self.wait_until_due() {
                break;
            }
            let started = self.now();
            self.plan.attempt(started);
            if let Err(e) = self.attempt() {
                // The backoff runs from the failure's end, not the attempt's start: the service
                // sees at least the backoff (>= 2 s) between an answer and the next request from
                // here, however long the attempt took (a slow handshake under a fleet's burst).
                let ended = self.now();
                self.failed(e, ended);
            }
        }
        // Close the identity before the module: its sessions hold the module until dropped.
        self.identity = None;
        signer::pkcs11::finalize_unused();
    }

    /// Sleeps until the next attempt is due; false on shutdown.
    fn wait_until_due(&self) -> bool {
        let mut state = self.shared.lock();
        loop {
            if state.stopping {
                return false;
            }
            let left = self.next - self.now();
            if !self.stopped && left <= time::Duration::ZERO {
                return true;
            }
            // A stopped refresher waits for shutdown only. Otherwise re-read the clock at least
            // every minute: an injected clock, or the wall clock after a suspend, may jump.
            let wait = if self.stopped {
                Duration::from_secs(60)
            } else {
                Duration::try_from(left)
                    .unwrap_or(Duration::ZERO)
                    .min(Duration::from_secs(60))
            };
            state = self
                .shared
                .changed
                .wait_timeout(state, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// One attempt: open the identity if needed, reload its sources, call CreateSession, install
    /// the new set and plan the next refresh.
    fn attempt(&mut self) -> Result<(), AttemptError> {
        if self.identity.is_none() {
            // Opening may ask for a PIN or password: never from this background thread when it
            // could prompt on a terminal (start() refuses that case; this is the backstop).
            if !self.reopen_allowed {
                return Err(AttemptError::NeedsPrompt);
            }
            let id = LiveIdentity::open(&self.key).map_err(AttemptError::Identity)?;
            if self.reopening {
                (self.log)(&format!(
                    "opened {} again after the device fault",
                    id.identity().signer.describe()
                ));
                self.reopening = false;
            }
            self.identity = Some(id);
        }
        self.reload()?;
        self.warn_expiring();
        let Some(id) = self.identity.as_ref() else {
            return Ok(());
        };
        // After the reload: the certificate status shows is the one this request is signed with.
        self.shared.set_certificate(id);
        let started = Instant::now();
        let result = self
            .client
            .create_session(&self.request, id.identity(), None);
        self.shared.lock().status.latency.observe(started.elapsed());
        let creds = result.map_err(AttemptError::Session)?;
        let obtained_at = self.now();
        let expires = creds.expires_at;
        let failures = self.plan.failures();
        self.next = self.plan.succeeded(obtained_at, expires, &mut self.jitter);
        if failures > 0 {
            (self.log)(&format!(
                "CreateSession succeeded again after {failures} failed attempt{}; the credentials \
                 expire at {}",
                if failures == 1 { "" } else { "s" },
                creds.expiration
            ));
        }
        self.shared.install(creds, obtained_at);
        Ok(())
    }

    /// Reads the identity's sources again. A refused replacement (mismatching key, half-written
    /// file) keeps the previous identity and is logged once; a lost device is an error.
    fn reload(&mut self) -> Result<(), AttemptError> {
        let Some(id) = self.identity.as_mut() else {
            return Ok(());
        };
        match id.reload() {
            Ok(Reload::Unchanged) => {
                self.last_reload_error = None;
            }
            Ok(what) => {
                self.last_reload_error = None;
                let leaf = &id.identity().leaf;
                (self.log)(&format!(
                    "{} rotated: now {} (serial {}, valid until {})",
                    if what == Reload::Key {
                        "key and certificate"
                    } else {
                        "certificate"
                    },
                    leaf.subject(),
                    leaf.serial_hex(),
                    crate::text::utc_seconds(leaf.not_after())
                ));
            }
            Err(e) => match fault::of_identity(&e) {
                Fault::DeviceLost | Fault::Fatal => return Err(AttemptError::Identity(e)),
                Fault::Retry(_) => {
                    let text = crate::text::error_chain(&e);
                    if self.last_reload_error.as_deref() != Some(text.as_str()) {
                        (self.log)(&format!(
                            "cannot take the certificate and key again ({text}); keeping the \
                             previous ones"
                        ));
                        self.last_reload_error = Some(text);
                    }
                }
            },
        }
        Ok(())
    }

    /// Warns once per certificate (leaf or chain) that expires within 30 days.
    fn warn_expiring(&mut self) {
        let Some(id) = self.identity.as_ref() else {
            return;
        };
        let now = self.now();
        let identity = id.identity();
        let all = std::iter::once((&identity.leaf, "leaf"))
            .chain(identity.chain.iter().map(|c| (c, "chain")));
        for (cert, role) in all {
            let left = cert.not_after() - now;
            if left > time::Duration::days(30) {
                continue;
            }
            if !self.warned.insert((cert.issuer(), cert.serial_hex())) {
                continue;
            }
            let when = if left.is_negative() {
                "expired".to_string()
            } else {
                format!("expires in {} days", left.whole_days())
            };
            (self.log)(&format!(
                "warning: the {role} certificate {} (serial {}) {when}, at {}: renew it",
                cert.subject(),
                cert.serial_hex(),
                crate::text::utc_seconds(cert.not_after())
            ));
        }
    }

    /// Plans the next attempt after a failure at `now` and logs it once, with its cause, the next
    /// attempt's time and what is served meanwhile.
    fn failed(&mut self, e: AttemptError, now: OffsetDateTime) {
        let text = e.text();
        let mut action = String::new();
        match e.fault() {
            Fault::Retry(kind) => {
                self.next = self.plan.failed(now, kind, &mut self.jitter);
            }
            Fault::DeviceLost if self.reopen_allowed => {
                self.identity = None;
                // With the identity closed nobody holds the module: finalizing it lets the next
                // open initialise afresh and see a token that came back.
                signer::pkcs11::finalize_unused();
                self.reopening = true;
                action = "; the device session is lost: the key will be opened again (one new \
                          login)"
                    .into();
                self.next = self
                    .plan
                    .failed(now, FailureKind::Transient, &mut self.jitter);
            }
            Fault::DeviceLost => {
                self.stopped = true;
                action = "; the device session is lost and opening it again would prompt for the \
                          PIN: give it non-interactively (pin-source=file:… in the URI, or \
                          ROLESANYWHERE_PKCS11_PIN) and restart; no further attempts"
                    .into();
            }
            Fault::Fatal => {
                self.stopped = true;
                action = "; a refused PIN or password is never retried: fix it and restart; no \
                          further attempts"
                    .into();
            }
        }
        let failed_at = self.now();
        let mut state = self.shared.lock();
        state.problem = Some(text.clone());
        state.gave_up = self.stopped;
        state.status.failures += 1;
        // Escaped here: status goes to terminals; the log sink escapes its own lines.
        state.status.last_failure = Some((failed_at, crate::text::escape(&text).into_owned()));
        let serving = match &state.current {
            Some(c) if schedule::usable(now, c.obtained_at, c.credentials.expires_at) => {
                format!(
                    "; serving the previous credentials until {}",
                    c.credentials.expiration
                )
            }
            _ => "; no valid credentials to serve meanwhile".to_string(),
        };
        drop(state);
        self.shared.changed.notify_all();
        let next = if self.stopped {
            String::new()
        } else {
            let secs = (self.next - now).as_seconds_f64().max(0.0);
            format!(
                "; next attempt at {} (in {secs:.0} s)",
                crate::text::utc_seconds(self.next)
            )
        };
        (self.log)(&format!(
            "refreshing credentials failed (attempt {} in a row): {text}{action}{next}{serving}",
            self.plan.failures().max(1)
        ));
    }
}

/// True when opening the identity again cannot prompt: the PKCS#11 PIN comes from the URI or
/// [`signer::pkcs11::PIN_ENV`], and a TPM key's password from a flag, a file, the environment, or
/// `--no-tpm-key-password`.
fn non_interactive(key: &KeyOptions) -> bool {
    use crate::signer::pkcs11::uri::Pkcs11Uri;
    let uris: Vec<Pkcs11Uri> = [&key.certificate, &key.private_key]
        .into_iter()
        .flatten()
        .filter(|s| signer::pkcs11::is_pkcs11_uri(s))
        .filter_map(|s| Pkcs11Uri::parse(s).ok())
        .collect();
    if !uris.is_empty() {
        return uris
            .iter()
            .any(|u| u.pin_value().is_some() || u.pin_source.is_some())
            || std::env::var_os(signer::pkcs11::PIN_ENV).is_some();
    }
    key.tpm_key_password.is_some()
        || key.tpm_key_password_file.is_some()
        || key.no_tpm_key_password
        || tpm_password_in_env()
}

#[cfg(feature = "tpm")]
fn tpm_password_in_env() -> bool {
    std::env::var_os(signer::tpm::KEY_PASSWORD_ENV).is_some()
}

#[cfg(not(feature = "tpm"))]
fn tpm_password_in_env() -> bool {
    false
}

#[cfg(test)]
mod stop_tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// The signal callback's thread and the front both call `shutdown`: the one that loses the race
    /// for the join handle must still wait until the worker has ended (and closed the identity),
    /// or the process exits before the TPM flush and `C_Finalize` (review of issue 10).
    #[test]
    fn a_second_shutdown_waits_for_the_worker_to_end() {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new()),
            changed: Condvar::new(),
            clock: Arc::new(OffsetDateTime::now_utc),
        });
        let ended = Arc::new(AtomicBool::new(false));
        let worker_ended = ended.clone();
        // A worker still finishing an attempt when shutdown is asked for.
        let worker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(600));
            worker_ended.store(true, Ordering::SeqCst);
        });
        let inner = Arc::new(Inner {
            shared: shared.clone(),
            thread: Mutex::new(Some(worker)),
        });
        let first = inner.clone();
        let signal_thread = std::thread::spawn(move || stop(&first.shared, &first.thread));
        // Let the first caller take the handle and start joining.
        std::thread::sleep(Duration::from_millis(100));
        stop(&inner.shared, &inner.thread);
        assert!(
            ended.load(Ordering::SeqCst),
            "the second shutdown returned while the worker was still running"
        );
        signal_thread.join().unwrap();
    }
}

#[cfg(test)]
mod wait_tests {
    use super::*;
    use crate::secret::Secret;

    /// A clock the test moves.
    #[derive(Clone)]
    struct TestClock(Arc<Mutex<OffsetDateTime>>);

    impl TestClock {
        fn new() -> TestClock {
            TestClock(Arc::new(Mutex::new(OffsetDateTime::now_utc())))
        }
        fn now(&self) -> OffsetDateTime {
            *self.0.lock().unwrap()
        }
        fn advance(&self, by: time::Duration) {
            *self.0.lock().unwrap() += by;
        }
    }

    /// A refresher handle over shared state without a worker thread: the test plays the worker,
    /// through the same `install` and state the worker uses.
    fn refresher(clock: &TestClock) -> Refresher {
        let c = clock.clone();
        Refresher {
            inner: Arc::new(Inner {
                shared: Arc::new(Shared {
                    state: Mutex::new(State::new()),
                    changed: Condvar::new(),
                    clock: Arc::new(move || c.now()),
                }),
                thread: Mutex::new(None),
            }),
        }
    }

    fn credentials(expires_at: OffsetDateTime) -> Credentials {
        Credentials {
            access_key_id: "ASIATEST".into(),
            secret_access_key: Secret::new("secret".to_string()),
            session_token: Secret::new("token".to_string()),
            expiration: crate::text::utc_seconds(expires_at),
            expires_at,
        }
    }

    /// Installs a set valid for an hour from the clock's now.
    fn install_hour(r: &Refresher, clock: &TestClock) {
        let now = clock.now();
        r.inner
            .shared
            .install(credentials(now + time::Duration::hours(1)), now);
    }

    fn after(d: Duration) -> Instant {
        Instant::now() + d
    }

    #[test]
    fn wait_usable_returns_at_once_when_a_set_is_usable() {
        let clock = TestClock::new();
        let r = refresher(&clock);
        install_hour(&r, &clock);
        let start = Instant::now();
        let set = r.wait_usable(after(Duration::from_secs(30))).unwrap();
        assert!(start.elapsed() < Duration::from_secs(1));
        assert_eq!(set.generation, 1);
    }

    #[test]
    fn wait_usable_wakes_when_the_first_set_arrives() {
        let clock = TestClock::new();
        let r = refresher(&clock);
        let worker = {
            let (r, clock) = (r.clone(), clock.clone());
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                install_hour(&r, &clock);
            })
        };
        let start = Instant::now();
        let set = r.wait_usable(after(Duration::from_secs(30))).unwrap();
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(250) && waited < Duration::from_secs(10),
            "{waited:?}"
        );
        assert_eq!(set.generation, 1);
        worker.join().unwrap();
    }

    #[test]
    fn wait_usable_times_out_with_the_reason_current_gives() {
        let clock = TestClock::new();
        let r = refresher(&clock);
        r.inner.shared.lock().problem = Some("cannot reach the endpoint".into());
        let start = Instant::now();
        let u = r
            .wait_usable(after(Duration::from_millis(300)))
            .unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(300));
        assert_eq!(u.reason, "no credentials yet: cannot reach the endpoint");
        assert_eq!(u, r.current().unwrap_err());
    }

    /// An expired set is never handed out: the waiter keeps waiting through the worker's
    /// notifications until a fresh set is installed.
    #[test]
    fn wait_usable_never_returns_an_expired_set() {
        let clock = TestClock::new();
        let r = refresher(&clock);
        install_hour(&r, &clock);
        clock.advance(time::Duration::hours(2));
        let u = r
            .wait_usable(after(Duration::from_millis(100)))
            .unwrap_err();
        assert!(u.reason.contains("expire"), "{}", u.reason);
        let worker = {
            let (r, clock) = (r.clone(), clock.clone());
            std::thread::spawn(move || {
                // A failure notifies the waiters too; the waiter must go on waiting.
                std::thread::sleep(Duration::from_millis(100));
                r.inner.shared.lock().problem = Some("timed out".into());
                r.inner.shared.changed.notify_all();
                std::thread::sleep(Duration::from_millis(200));
                install_hour(&r, &clock);
            })
        };
        let set = r.wait_usable(after(Duration::from_secs(30))).unwrap();
        assert_eq!(set.generation, 2);
        assert!(set.credentials.expires_at > clock.now());
        worker.join().unwrap();
    }

    #[test]
    fn wait_usable_returns_on_shutdown() {
        let clock = TestClock::new();
        let r = refresher(&clock);
        let waiter = {
            let r = r.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                (
                    r.wait_usable(after(Duration::from_secs(60))),
                    start.elapsed(),
                )
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        r.shutdown();
        let (result, waited) = waiter.join().unwrap();
        assert!(waited < Duration::from_secs(10), "{waited:?}");
        assert_eq!(
            result.unwrap_err().reason,
            "the credential service is shutting down"
        );
    }

    /// After a refused PIN no set will come: callers get the reason at once instead of waiting
    /// out their deadline.
    #[test]
    fn wait_usable_returns_at_once_when_the_refresher_gave_up() {
        let clock = TestClock::new();
        let r = refresher(&clock);
        {
            let mut state = r.inner.shared.lock();
            state.problem = Some("C_Login: CKR_PIN_INCORRECT".into());
            state.gave_up = true;
        }
        let start = Instant::now();
        let u = r.wait_usable(after(Duration::from_secs(30))).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(1));
        assert!(u.reason.contains("CKR_PIN_INCORRECT"), "{}", u.reason);
    }
}
