//! Orderly shutdown on SIGTERM and SIGINT for the long-running commands (`update`, `serve`).
//!
//! [`install`] registers the handlers once per process (later calls do nothing). The handlers only
//! write a byte to a socket pair (signal-hook's self-pipe, the one thing a handler may safely do);
//! a watcher thread reads it, marks shutdown as requested, wakes every [`wait`]er and every
//! [`subscribe`]d descriptor, and runs the [`on_request`] callbacks. So the commands see a signal as
//! an ordinary event on an ordinary thread and finish what they are doing (a credentials file write,
//! in-flight requests) before exiting 0 — where the reference helper dies with status 2.
//!
//! A second SIGTERM or SIGINT while that is under way ends the process at once with 128 + the
//! signal number (143, 130), the usual "I really mean it" of a user pressing Ctrl-C twice.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The signals that request a shutdown, with the status a repeated one exits with.
const SIGNALS: [(i32, i32); 2] = [
    (
        signal_hook::consts::SIGTERM,
        128 + signal_hook::consts::SIGTERM,
    ),
    (
        signal_hook::consts::SIGINT,
        128 + signal_hook::consts::SIGINT,
    ),
];

/// The handlers could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Registering a signal handler, creating the socket pair or starting the watcher failed.
    #[error("cannot install the SIGTERM/SIGINT handlers")]
    Install(#[source] std::io::Error),
}

impl rolesanywhere_core::Classify for Error {
    fn class(&self) -> rolesanywhere_core::ErrorClass {
        rolesanywhere_core::ErrorClass::Operational
    }
}

type Callback = Box<dyn Fn() + Send + Sync>;

#[derive(Default)]
struct State {
    requested: Mutex<bool>,
    changed: Condvar,
    /// Write ends of the [`subscribe`]d socket pairs.
    subscribers: Mutex<Vec<UnixStream>>,
    callbacks: Mutex<Vec<Callback>>,
}

fn state() -> &'static State {
    static STATE: OnceLock<State> = OnceLock::new();
    STATE.get_or_init(State::default)
}

/// Installs the SIGTERM/SIGINT handlers and the watcher thread; idempotent and thread-safe.
pub fn install() -> Result<(), Error> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| install_once().map_err(|e| e.to_string()))
        .clone()
        .map_err(|e| Error::Install(std::io::Error::other(e)))
}

fn install_once() -> std::io::Result<()> {
    let (mut read, write) = UnixStream::pair()?;
    // Set by the handler itself at the first signal, so a second one finds it set even before the
    // watcher thread has run.
    let first_seen = Arc::new(AtomicBool::new(false));
    for (signal, status) in SIGNALS {
        // Order matters: the exit is checked before the flag is set, so the first signal only sets it.
        signal_hook::flag::register_conditional_shutdown(signal, status, first_seen.clone())?;
        signal_hook::flag::register(signal, first_seen.clone())?;
        signal_hook::low_level::pipe::register(signal, write.try_clone()?)?;
    }
    std::thread::Builder::new()
        .name("shutdown".into())
        .spawn(move || {
            let mut byte = [0u8; 1];
            // Any byte, or an error (which cannot happen while the write end lives in the
            // handlers), means a signal arrived.
            let _ = read.read(&mut byte);
            request();
        })?;
    Ok(())
}

/// Requests shutdown as a signal would: wakes every waiter, subscriber and callback once.
pub fn request() {
    let s = state();
    {
        let mut requested = s.requested.lock().unwrap_or_else(|e| e.into_inner());
        if *requested {
            return;
        }
        *requested = true;
    }
    s.changed.notify_all();
    for mut w in s
        .subscribers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain(..)
    {
        let _ = w.write_all(b"x");
    }
    for f in s.callbacks.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        f();
    }
}

/// True once shutdown has been requested.
pub fn requested() -> bool {
    *state().requested.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sleeps up to `timeout`, returning early with `true` when shutdown is (or already was)
/// requested; `false` when the time ran out first.
pub fn wait(timeout: Duration) -> bool {
    let s = state();
    let deadline = Instant::now() + timeout;
    let mut requested = s.requested.lock().unwrap_or_else(|e| e.into_inner());
    while !*requested {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        requested = s
            .changed
            .wait_timeout(requested, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    true
}

/// A socket that becomes readable (one byte, then end of file) when shutdown is requested: for a
/// server loop that polls its listeners and wants to be woken. Readable at once if it already was.
pub fn subscribe() -> std::io::Result<UnixStream> {
    let (read, mut write) = UnixStream::pair()?;
    let s = state();
    // Checked under the subscribers lock that `request` drains, so no request falls in between.
    let mut subscribers = s.subscribers.lock().unwrap_or_else(|e| e.into_inner());
    if requested() {
        write.write_all(b"x")?;
    } else {
        subscribers.push(write);
    }
    Ok(read)
}

/// Runs `f` on the watcher thread when shutdown is requested (at once if it already was). `f` must
/// not block: it is for nudging a loop awake (closing a listener, notifying a condvar).
pub fn on_request(f: impl Fn() + Send + Sync + 'static) {
    let s = state();
    let mut callbacks = s.callbacks.lock().unwrap_or_else(|e| e.into_inner());
    if requested() {
        drop(callbacks);
        f();
    } else {
        callbacks.push(Box::new(f));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The one test of the process-wide state: a real SIGTERM, raised once, reaches every kind of
    /// listener and does not kill the process. (Exit codes are tested through the binary.)
    #[test]
    fn a_sigterm_wakes_waiters_subscribers_and_callbacks_once() {
        install().unwrap();
        install().unwrap();
        assert!(!requested());
        let start = Instant::now();
        assert!(!wait(Duration::from_millis(50)));
        assert!(start.elapsed() >= Duration::from_millis(50));

        let mut sub = subscribe().unwrap();
        sub.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        on_request(move || {
            c.fetch_add(1, Ordering::SeqCst);
        });
        let waiter = std::thread::spawn(|| wait(Duration::from_secs(30)));

        std::thread::sleep(Duration::from_millis(50));
        signal_hook::low_level::raise(signal_hook::consts::SIGTERM).unwrap();

        assert!(waiter.join().unwrap(), "the waiter timed out");
        let mut byte = [0u8; 1];
        assert_eq!(sub.read(&mut byte).unwrap(), 1);
        assert!(requested());
        assert!(wait(Duration::from_secs(30)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Late listeners are answered at once; a repeated request changes nothing.
        request();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let mut late = subscribe().unwrap();
        late.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        assert_eq!(late.read(&mut byte).unwrap(), 1);
        let late_calls = Arc::new(AtomicUsize::new(0));
        let c = late_calls.clone();
        on_request(move || {
            c.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(late_calls.load(Ordering::SeqCst), 1);
    }
}
