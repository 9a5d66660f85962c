//! Which TPM to talk to (TCTI resolution) and the one wrapper every TPM command goes through.
//!
//! Owns: parsing and checking TCTI strings, the precedence `--tpm-tcti` > `TPM2TOOLS_TCTI` > `TCTI` >
//! `TPM_DEVICE` > `device:/dev/tpmrm0`, opening the ESYS context, the deadline on every TPM command,
//! and counting TPM commands. Must not hold or log auth values; must not send commands outside
//! [`Tpm::run`], so the count stays exact and no command goes without a deadline.
//!
//! # Deadlines
//!
//! ESYS's synchronous calls (all tss-esapi offers) block until the TPM answers: each sets the ESYS
//! timeout to "block" before it waits, so no TCTI timeout applies, and the swtpm/mssim TCTIs do not
//! implement one anyway. A TPM that never answers (a wedged chip behind `/dev/tpmrm0`, a hung
//! simulator, a TCP endpoint that is not a TPM) would hang the caller for good. So the ESYS context
//! lives on a worker thread of its own (`tpm-io`) for its whole life, and [`Tpm::run`] hands each
//! command to it and waits at most the command's deadline ([`Timeouts`]).
//!
//! When a deadline passes, the command fails with [`Error::Timeout`] and the `Tpm` is marked
//! unusable: later commands fail at once with [`Error::Unusable`], and dropping it does not wait.
//! The worker thread stays blocked in the TCTI's read with the context; it ends (finalising the
//! context) if the answer ever comes, and otherwise when the process exits, which closes the socket
//! or device (the kernel resource manager then flushes what the process left in the TPM). A
//! long-running caller recovers by opening the key again, which starts a new worker; each stuck
//! worker costs one blocked thread and one connection until then. A malformed answer (a TCTI, SYS or
//! MU failure) also makes the `Tpm` unusable, since ESYS refuses further commands after one
//! ([`Error::Malformed`]).

use super::error::{Error, Rc, seconds};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;
use tss_esapi::{Context, tcti_ldr::TctiNameConf};

/// How long a TPM command may take when nothing else is configured (`--tpm-timeout`). Real TPMs
/// answer signing and loading in milliseconds to a few hundred; 30 s leaves room for a busy
/// resource manager and a TPM running its self tests.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Key generation (TPM2_CreatePrimary, TPM2_Create) gets this many times the command deadline: an
/// RSA key takes a hardware TPM seconds to a minute (Linux's TPM driver allows such commands 300 s,
/// the default here).
pub const KEYGEN_FACTOR: u32 = 10;

/// Deadlines for TPM commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Every command and the opening of the TCTI; key generation gets [`KEYGEN_FACTOR`] times this.
    pub command: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            command: DEFAULT_TIMEOUT,
        }
    }
}

impl Timeouts {
    /// `--tpm-timeout`, else [`DEFAULT_TIMEOUT`].
    pub fn from_option(t: Option<Duration>) -> Timeouts {
        Timeouts {
            command: t.unwrap_or(DEFAULT_TIMEOUT),
        }
    }

    /// The deadline for `command` (a `TPM2_*` name, or an ESYS-local step).
    pub fn for_command(&self, command: &str) -> Duration {
        match command {
            "TPM2_CreatePrimary" | "TPM2_Create" | "TPM2_CreateLoaded" => {
                self.command.saturating_mul(KEYGEN_FACTOR)
            }
            _ => self.command,
        }
    }
}

/// The TCTI used when nothing else is configured: the kernel's resource manager, which lets several
/// processes share the TPM and flushes what a crashed process left behind.
pub(crate) const DEFAULT_TCTI: &str = "device:/dev/tpmrm0";

/// TPM commands sent by this process (all contexts). Read with [`super::command_count`].
static COMMANDS: AtomicU64 = AtomicU64::new(0);

/// Number of TPM commands this process has sent so far.
pub(crate) fn command_count() -> u64 {
    COMMANDS.load(Ordering::Relaxed)
}

/// A checked TCTI and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TctiSpec {
    /// The TCTI in `name:config` form, as shown in messages.
    pub text: String,
    /// Where it came from: `--tpm-tcti`, an environment variable, or `default`.
    pub origin: &'static str,
}

/// Picks the TCTI: the flag, else `TPM2TOOLS_TCTI`, else `TCTI`, else `TPM_DEVICE` (a device path, as
/// the reference helper reads it), else [`DEFAULT_TCTI`]. Empty values count as unset.
pub(crate) fn resolve(flag: Option<&str>) -> Result<TctiSpec, Error> {
    resolve_with(flag, |k| std::env::var(k).ok())
}

fn resolve_with(
    flag: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<TctiSpec, Error> {
    let nonempty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let (raw, origin) = if let Some(f) = flag.filter(|f| !f.trim().is_empty()) {
        (f.to_string(), "--tpm-tcti")
    } else if let Some(v) = nonempty(env("TPM2TOOLS_TCTI")) {
        (v, "TPM2TOOLS_TCTI")
    } else if let Some(v) = nonempty(env("TCTI")) {
        (v, "TCTI")
    } else if let Some(v) = nonempty(env("TPM_DEVICE")) {
        (v, "TPM_DEVICE")
    } else {
        (DEFAULT_TCTI.to_string(), "default")
    };
    Ok(TctiSpec {
        text: normalise(raw.trim())?,
        origin,
    })
}

/// Checks a TCTI string and returns it in canonical `name:config` form. A bare path means a device.
///
/// tss-esapi 7.7 ignores unknown keys, so `swtpm:path=/run/swtpm.sock` would silently connect to
/// 127.0.0.1:2321; everything it would ignore is rejected here instead.
pub(crate) fn normalise(raw: &str) -> Result<String, Error> {
    let bad = |reason: String| Error::TctiSyntax {
        tcti: raw.to_string(),
        reason,
    };
    if raw.starts_with('/') {
        return Ok(format!("device:{raw}"));
    }
    let (name, conf) = raw.split_once(':').unwrap_or((raw, ""));
    let name = name.strip_prefix("libtss2-tcti-").unwrap_or(name);
    let name = name.strip_suffix(".so.0").unwrap_or(name);
    match name {
        "device" => {
            if !conf.is_empty() && !conf.starts_with('/') {
                return Err(bad(
                    "a device TCTI takes an absolute path (device:/dev/tpmrm0)".into(),
                ));
            }
            Ok(format!(
                "device:{}",
                if conf.is_empty() { "/dev/tpm0" } else { conf }
            ))
        }
        "swtpm" | "mssim" => {
            for kv in conf.split(',').filter(|s| !s.is_empty()) {
                match kv.split_once('=') {
                    Some(("host", h)) if !h.is_empty() => {}
                    Some(("port", p)) if p.parse::<u16>().is_ok_and(|p| p > 0) => {}
                    Some(("port", _)) => {
                        return Err(bad("port must be a number from 1 to 65535".into()));
                    }
                    Some(("path", _)) => {
                        return Err(bad(format!(
                            "{name} over a UNIX socket is not supported by this agent's TSS binding; \
                             run the simulator with --server type=tcp and use {name}:host=…,port=…"
                        )));
                    }
                    _ => {
                        return Err(bad(format!(
                            "unknown {name} option {kv:?} (use host=…,port=…)"
                        )));
                    }
                }
            }
            Ok(if conf.is_empty() {
                name.to_string()
            } else {
                format!("{name}:{conf}")
            })
        }
        "tabrmd" => {
            for kv in conf.split(',').filter(|s| !s.is_empty()) {
                match kv.split_once('=') {
                    Some(("bus_name", _)) | Some(("bus_type", "session" | "system")) => {}
                    _ => {
                        return Err(bad(format!(
                            "unknown tabrmd option {kv:?} (use bus_name=…,bus_type=system|session)"
                        )));
                    }
                }
            }
            Ok(if conf.is_empty() {
                "tabrmd".into()
            } else {
                format!("tabrmd:{conf}")
            })
        }
        _ => Err(bad(format!(
            "unknown TCTI {name:?}; use device:/dev/tpmrm0, swtpm:host=…,port=…, mssim:… or tabrmd:"
        ))),
    }
}

/// Work for the worker thread: one ESYS call and the sending of its result.
type Job = Box<dyn FnOnce(&mut Context) + Send>;

/// An open TPM: a worker thread holding the ESYS context, and the TCTI it came through. Every
/// command goes through [`Tpm::run`], which counts it, waits for it at most its deadline, and turns
/// failures into [`Error`]s. See the module documentation for what a missed deadline leaves behind.
pub(crate) struct Tpm {
    /// Jobs for the worker; `None` once dropping (the worker then finalises the context and ends).
    jobs: Option<mpsc::Sender<Job>>,
    /// Never receives: reports `Disconnected` once the worker thread has finished.
    finished: mpsc::Receiver<std::convert::Infallible>,
    tcti: TctiSpec,
    timeouts: Timeouts,
    commands: u64,
    /// Why the connection can no longer be used (a missed deadline, a malformed answer).
    broken: Option<String>,
}

impl std::fmt::Debug for Tpm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tpm")
            .field("tcti", &self.tcti.text)
            .field("broken", &self.broken)
            .finish()
    }
}

impl Tpm {
    /// Opens the TPM named by `spec` on a new worker thread, waiting at most `timeouts.command`.
    /// Sends no TPM command: a TCTI that connects (swtpm, mssim) fails here when nothing listens or
    /// the control port does not answer, a device TCTI when the device cannot be opened.
    pub(crate) fn open(spec: &TctiSpec, timeouts: Timeouts) -> Result<Tpm, Error> {
        let open_err = |e: tss_esapi::Error| Error::TctiOpen {
            tcti: spec.text.clone(),
            origin: spec.origin.to_string(),
            cause: Rc::from_tss(&e),
        };
        let conf = TctiNameConf::from_str(&spec.text).map_err(open_err)?;
        let (jobs, queue) = mpsc::channel::<Job>();
        let (opened_tx, opened) = mpsc::sync_channel::<tss_esapi::Result<()>>(1);
        let (finished_tx, finished) = mpsc::channel::<std::convert::Infallible>();
        std::thread::Builder::new()
            .name("tpm-io".into())
            .spawn(move || {
                // Dropped when this thread ends, after the context: the owner's drop waits for it.
                let _finished = finished_tx;
                let mut ctx = match Context::new(conf) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = opened_tx.send(Err(e));
                        return;
                    }
                };
                // Nobody waits any more (the open timed out): the context is finalised right away.
                if opened_tx.send(Ok(())).is_err() {
                    return;
                }
                for job in queue {
                    job(&mut ctx);
                }
            })
            .map_err(|e| Error::Worker {
                what: "starting the TPM I/O thread".into(),
                tcti: spec.text.clone(),
                reason: e.to_string(),
            })?;
        match opened.recv_timeout(timeouts.command) {
            Ok(Ok(())) => Ok(Tpm {
                jobs: Some(jobs),
                finished,
                tcti: spec.clone(),
                timeouts,
                commands: 0,
                broken: None,
            }),
            Ok(Err(e)) => Err(open_err(e)),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(Error::OpenTimeout {
                tcti: spec.text.clone(),
                origin: spec.origin.to_string(),
                after: timeouts.command,
            }),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(Error::Worker {
                what: "opening the TPM".into(),
                tcti: spec.text.clone(),
                reason: "the TSS library stopped (panicked)".into(),
            }),
        }
    }

    /// Resolves the TCTI from `--tpm-tcti` and the environment, then opens it with the deadline
    /// from `--tpm-timeout`.
    pub(crate) fn open_resolved(opts: &crate::signer::KeyOptions) -> Result<Tpm, Error> {
        Self::open(
            &resolve(opts.tpm_tcti.as_deref())?,
            Timeouts::from_option(opts.tpm_timeout),
        )
    }

    /// The TCTI this context uses, for messages.
    pub(crate) fn tcti(&self) -> &TctiSpec {
        &self.tcti
    }

    /// TPM commands sent through this context so far.
    pub(crate) fn commands(&self) -> u64 {
        self.commands
    }

    /// Runs `f`, which must send exactly one TPM command named `command`, about `object` (for
    /// messages), on the worker thread. Counts it, waits at most its deadline, and maps a failure to
    /// [`Error::Command`] with the fitting hint, [`Error::Malformed`] when the answer could not be
    /// read, or [`Error::Timeout`]. `f` owns what it uses: after a missed deadline it may still run.
    pub(crate) fn run<T: Send + 'static>(
        &mut self,
        command: &'static str,
        object: &str,
        f: impl FnOnce(&mut Context) -> tss_esapi::Result<T> + Send + 'static,
    ) -> Result<T, Error> {
        self.usable(command, object)?;
        COMMANDS.fetch_add(1, Ordering::Relaxed);
        self.commands += 1;
        match self.call(command, object, f)? {
            Ok(v) => Ok(v),
            Err(e) if Rc::from_tss(&e).is_transport() => {
                self.broken = Some(format!("{command} got a malformed answer"));
                Err(Error::Malformed {
                    command,
                    object: object.to_string(),
                    tcti: self.tcti.text.clone(),
                    rc: Rc::from_tss(&e),
                })
            }
            Err(e) => Err(Error::command(command, object, &e)),
        }
    }

    /// Runs `f`, which sends no TPM command (ESYS-local calls such as `tr_set_auth`, `tr_close`,
    /// `tr_sess_set_attributes`), on the worker thread that owns the context.
    pub(crate) fn local<T: Send + 'static>(
        &mut self,
        what: &'static str,
        object: &str,
        f: impl FnOnce(&mut Context) -> tss_esapi::Result<T> + Send + 'static,
    ) -> Result<T, Error> {
        self.usable(what, object)?;
        self.call(what, object, f)?
            .map_err(|e| Error::command(what, object, &e))
    }

    fn usable(&self, command: &'static str, object: &str) -> Result<(), Error> {
        match &self.broken {
            None => Ok(()),
            Some(reason) => Err(Error::Unusable {
                command,
                object: object.to_string(),
                tcti: self.tcti.text.clone(),
                reason: reason.clone(),
            }),
        }
    }

    /// Hands `f` to the worker and waits for its result at most the deadline of `command`.
    fn call<T: Send + 'static>(
        &mut self,
        command: &'static str,
        object: &str,
        f: impl FnOnce(&mut Context) -> tss_esapi::Result<T> + Send + 'static,
    ) -> Result<tss_esapi::Result<T>, Error> {
        let (reply, result) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |ctx: &mut Context| {
            // The receiver is gone only when the caller gave up waiting.
            let _ = reply.send(f(ctx));
        });
        let sent = self.jobs.as_ref().is_some_and(|q| q.send(job).is_ok());
        let limit = self.timeouts.for_command(command);
        let outcome = if sent {
            result.recv_timeout(limit)
        } else {
            Err(mpsc::RecvTimeoutError::Disconnected)
        };
        match outcome {
            Ok(r) => Ok(r),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                self.broken = Some(format!("{command} got no answer within {}", seconds(limit)));
                Err(Error::Timeout {
                    command,
                    object: object.to_string(),
                    tcti: self.tcti.text.clone(),
                    after: limit,
                })
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                self.broken = Some("the TSS library stopped".into());
                Err(Error::Worker {
                    what: format!("{command} for {object}"),
                    tcti: self.tcti.text.clone(),
                    reason: "the TSS library stopped (panicked) while handling it".into(),
                })
            }
        }
    }
}

impl Drop for Tpm {
    fn drop(&mut self) {
        // Closing the queue ends the worker's loop; it then drops the context (tss-esapi flushes
        // what it still tracks, ESYS and the TCTI finalise). Wait for that, so it happens before the
        // process exits, but only as long as a command may take, and not at all when the worker is
        // stuck or the connection broken.
        self.jobs = None;
        if self.broken.is_none() {
            let _ = self.finished.recv_timeout(self.timeouts.command);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn flag_beats_every_environment_variable() {
        let env = env_of(&[
            ("TPM2TOOLS_TCTI", "swtpm:port=1"),
            ("TCTI", "swtpm:port=2"),
            ("TPM_DEVICE", "/dev/tpm9"),
        ]);
        let s = resolve_with(Some("swtpm:host=127.0.0.1,port=2321"), &env).unwrap();
        assert_eq!(s.text, "swtpm:host=127.0.0.1,port=2321");
        assert_eq!(s.origin, "--tpm-tcti");
    }

    #[test]
    fn environment_order_is_tpm2tools_tcti_then_tcti_then_tpm_device() {
        let s = resolve_with(
            None,
            env_of(&[("TCTI", "swtpm:port=2"), ("TPM2TOOLS_TCTI", "swtpm:port=1")]),
        )
        .unwrap();
        assert_eq!(
            (s.text.as_str(), s.origin),
            ("swtpm:port=1", "TPM2TOOLS_TCTI")
        );
        let s = resolve_with(
            None,
            env_of(&[("TCTI", "mssim:port=2"), ("TPM_DEVICE", "/dev/tpm9")]),
        )
        .unwrap();
        assert_eq!((s.text.as_str(), s.origin), ("mssim:port=2", "TCTI"));
        let s = resolve_with(
            None,
            env_of(&[("TPM_DEVICE", "/dev/tpm9"), ("TPM2TOOLS_TCTI", " ")]),
        )
        .unwrap();
        assert_eq!(
            (s.text.as_str(), s.origin),
            ("device:/dev/tpm9", "TPM_DEVICE")
        );
        let s = resolve_with(None, env_of(&[])).unwrap();
        assert_eq!((s.text.as_str(), s.origin), (DEFAULT_TCTI, "default"));
    }

    #[test]
    fn unix_socket_swtpm_is_rejected_instead_of_silently_using_tcp() {
        let e = normalise("swtpm:path=/run/swtpm.sock")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("swtpm:path=/run/swtpm.sock") && e.contains("type=tcp"),
            "{e}"
        );
    }

    #[test]
    fn bad_tcti_strings_name_the_problem() {
        for (t, want) in [
            ("swtpm:port=99999", "port must be"),
            ("swtpm:hots=1", "unknown swtpm option"),
            ("device:dev/tpm0", "absolute path"),
            ("bogus:x", "unknown TCTI"),
            ("tabrmd:bus_type=x", "unknown tabrmd option"),
        ] {
            let e = normalise(t).unwrap_err().to_string();
            assert!(e.contains(want), "{t}: {e}");
        }
        assert_eq!(
            normalise("libtss2-tcti-device.so.0:/dev/tpmrm0").unwrap(),
            "device:/dev/tpmrm0"
        );
        assert_eq!(normalise("mssim").unwrap(), "mssim");
    }

    use super::super::swtpm::{Behaviour, CONTROL_OK, HostileTpm};
    use rolesanywhere_core::Classify as _;
    use tss_esapi::handles::TpmHandle;

    fn spec_of(h: &HostileTpm) -> TctiSpec {
        TctiSpec {
            text: h.tcti(),
            origin: "--tpm-tcti",
        }
    }

    fn quick() -> Timeouts {
        Timeouts {
            command: Duration::from_secs(1),
        }
    }

    /// TPM2_ReadPublic of 0x81000001, as the key-file path starts.
    fn read_public(tpm: &mut Tpm) -> Result<tss_esapi::handles::ObjectHandle, Error> {
        tpm.run("TPM2_ReadPublic", "test key", |c| {
            c.execute_without_session(|c| c.tr_from_tpm_public(TpmHandle::try_from(0x8100_0001)?))
        })
    }

    #[test]
    fn key_generation_gets_ten_times_the_command_deadline() {
        let t = Timeouts::from_option(Some(Duration::from_secs(2)));
        assert_eq!(t.for_command("TPM2_Sign"), Duration::from_secs(2));
        assert_eq!(t.for_command("TPM2_CreatePrimary"), Duration::from_secs(20));
        assert_eq!(t.for_command("TPM2_Create"), Duration::from_secs(20));
        assert_eq!(Timeouts::from_option(None).command, DEFAULT_TIMEOUT);
    }

    /// Issue 14 (16): the swtpm TCTI sets the locality through the control port while it opens; a
    /// silent control port hung `Context::new` for good.
    #[test]
    fn open_gives_up_at_the_deadline_when_the_control_port_is_silent() {
        let h = HostileTpm::start(Behaviour::Silent, Behaviour::Silent);
        let start = std::time::Instant::now();
        let e = Tpm::open(&spec_of(&h), quick()).unwrap_err();
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        assert!(matches!(e, Error::OpenTimeout { .. }), "{e:?}");
        assert_eq!(e.class(), rolesanywhere_core::ErrorClass::Operational);
        let m = e.to_string();
        assert!(
            m.contains(&h.tcti()) && m.contains("within 1 s") && m.contains("--tpm-timeout"),
            "{m}"
        );
    }

    /// Issue 14 (16): a command that gets no answer fails at its deadline, and the connection is
    /// then refused at once instead of queueing behind the stuck command; dropping does not wait.
    #[test]
    fn command_without_answer_times_out_then_the_tpm_is_unusable() {
        let h = HostileTpm::start(Behaviour::Silent, CONTROL_OK);
        let mut tpm = Tpm::open(&spec_of(&h), quick()).unwrap();
        let start = std::time::Instant::now();
        let e = read_public(&mut tpm).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Timeout {
                    command: "TPM2_ReadPublic",
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains(&h.tcti()), "{e}");
        let e = read_public(&mut tpm).unwrap_err();
        assert!(matches!(e, Error::Unusable { .. }), "{e:?}");
        assert!(e.to_string().contains("got no answer within 1 s"), "{e}");
        assert_eq!(tpm.commands(), 1, "the refused command was not sent");
        drop(tpm);
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
    }

    /// Issue 14 (16): garbage from the endpoint is a malformed answer, named with the TCTI; ESYS's
    /// bad-sequence state is never reached because the connection is not used again.
    #[test]
    fn garbage_answer_is_malformed_and_the_tpm_is_unusable_afterwards() {
        let h = HostileTpm::start(
            Behaviour::Answer(&[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0, 0]),
            CONTROL_OK,
        );
        let mut tpm = Tpm::open(&spec_of(&h), quick()).unwrap();
        let e = read_public(&mut tpm).unwrap_err();
        let Error::Malformed { rc, .. } = &e else {
            panic!("{e:?}")
        };
        assert!(rc.is_transport(), "{rc}");
        assert!(
            e.to_string().contains("malformed or the connection broke"),
            "{e}"
        );
        let e = read_public(&mut tpm).unwrap_err();
        assert!(matches!(e, Error::Unusable { .. }), "{e:?}");
    }

    #[test]
    fn unreachable_simulator_error_names_the_tcti() {
        // Port 1 on loopback: nothing listens there (binding it needs root and a daemon).
        let spec = TctiSpec {
            text: "swtpm:host=127.0.0.1,port=1".into(),
            origin: "--tpm-tcti",
        };
        let e = Tpm::open(&spec, Timeouts::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("swtpm:host=127.0.0.1,port=1") && e.contains("--tpm-tcti"),
            "{e}"
        );
    }
}
