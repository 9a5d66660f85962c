//! Which TPM to talk to (TCTI resolution) and the one wrapper every TPM command goes through.
//!
//! Owns: parsing and checking TCTI strings, the precedence `--tpm-tcti` > `TPM2TOOLS_TCTI` > `TCTI` >
//! `TPM_DEVICE` > `device:/dev/tpmrm0`, opening the ESYS context, and counting TPM commands. Must not
//! hold or log auth values; must not send commands outside [`Tpm::run`], so the count stays exact.

use super::error::{Error, Rc};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use tss_esapi::{Context, tcti_ldr::TctiNameConf};

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

/// An open TPM: the ESYS context and the TCTI it came through. Every command goes through
/// [`Tpm::run`], which counts it and turns failures into [`Error::Command`].
pub(crate) struct Tpm {
    ctx: Context,
    tcti: TctiSpec,
    commands: u64,
}

impl std::fmt::Debug for Tpm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tpm")
            .field("tcti", &self.tcti.text)
            .finish()
    }
}

impl Tpm {
    /// Opens the TPM named by `spec`. Sends no command: a TCTI that connects (swtpm, mssim) fails
    /// here when nothing listens, a device TCTI when the device cannot be opened.
    pub(crate) fn open(spec: &TctiSpec) -> Result<Tpm, Error> {
        let open_err = |e: tss_esapi::Error| Error::TctiOpen {
            tcti: spec.text.clone(),
            origin: spec.origin.to_string(),
            cause: Rc::from_tss(&e),
        };
        let conf = TctiNameConf::from_str(&spec.text).map_err(open_err)?;
        let ctx = Context::new(conf).map_err(open_err)?;
        Ok(Tpm {
            ctx,
            tcti: spec.clone(),
            commands: 0,
        })
    }

    /// Resolves the TCTI from the flag and environment, then opens it.
    pub(crate) fn open_resolved(flag: Option<&str>) -> Result<Tpm, Error> {
        Self::open(&resolve(flag)?)
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
    /// messages). Counts it and maps a failure to [`Error::Command`] with the fitting hint.
    pub(crate) fn run<T>(
        &mut self,
        command: &'static str,
        object: &str,
        f: impl FnOnce(&mut Context) -> tss_esapi::Result<T>,
    ) -> Result<T, Error> {
        COMMANDS.fetch_add(1, Ordering::Relaxed);
        self.commands += 1;
        f(&mut self.ctx).map_err(|e| Error::command(command, object, &e))
    }

    /// Runs `f`, which sends no TPM command (ESYS-local calls such as `tr_set_auth`, `tr_close`,
    /// `tr_sess_set_attributes`).
    pub(crate) fn local<T>(
        &mut self,
        what: &'static str,
        object: &str,
        f: impl FnOnce(&mut Context) -> tss_esapi::Result<T>,
    ) -> Result<T, Error> {
        f(&mut self.ctx).map_err(|e| Error::command(what, object, &e))
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

    #[test]
    fn unreachable_simulator_error_names_the_tcti() {
        // Port 1 on loopback: nothing listens there (binding it needs root and a daemon).
        let spec = TctiSpec {
            text: "swtpm:host=127.0.0.1,port=1".into(),
            origin: "--tpm-tcti",
        };
        let e = Tpm::open(&spec).unwrap_err().to_string();
        assert!(
            e.contains("swtpm:host=127.0.0.1,port=1") && e.contains("--tpm-tcti"),
            "{e}"
        );
    }
}
