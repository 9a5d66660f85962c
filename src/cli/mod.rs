//! The command-line front: raw clap arguments, validated settings, commands and exit codes.
//!
//! [`run`] is the one place that prints errors and decides exit codes: 0 success, 1 operational
//! failure (device, network, service refusal), 2 usage or configuration error. Messages go to stderr
//! as `rolesanywhere-agent: <error>: <cause>: <cause>` plus hint lines; stdout carries only a
//! command's output. Nothing here prints a secret. All text leaves through [`output`]: stderr lines
//! masked and escaped, writes that never panic, a closed stdout ending the run with 1.

pub mod args;
pub mod commands;
pub mod companion;
pub mod failure;
pub mod output;
pub mod settings;
pub mod version;

pub use failure::Failure;
pub use output::stderr_line;

use crate::session;
use crate::signer::backends::Backends;
use clap::Parser;
use rolesanywhere_core::ErrorClass;
use settings::Settings;
use std::ffi::OsString;
use std::io::Write;

/// Exit code of a successful run.
pub const EXIT_OK: i32 = 0;
/// Exit code of an operational failure (device, network, service refusal).
pub const EXIT_OPERATIONAL: i32 = 1;
/// Exit code of a usage or configuration error.
pub const EXIT_USAGE: i32 = 2;

const PROGRAM: &str = "rolesanywhere-agent";

/// Runs the program with `args` and the optional `backends` its `main` carries (see
/// [`crate::signer::backends`]); returns the process exit code (0, 1 operational, 2 usage). Without
/// a TPM backend, a command that needs a TPM key is run by `rolesanywhere-agent-tpm` instead
/// ([`companion`]), in this process: then this returns only if that could not be done.
pub fn run(args: Vec<OsString>, backends: Backends) -> i32 {
    // The first and only call in a program; unit tests keep the crate's default.
    crate::signer::backends::install(backends);
    output::mask_arguments(&args);
    if let Err(e) = args::check_utf8(&args) {
        return report(&e.into());
    }
    let mut out = output::Stdout::new();
    // The warm path of the agent, before clap builds its whole command tree (see from_agent_fast).
    if let Some(a) = args::from_agent_fast(&args, &|name| std::env::var_os(name)) {
        let settings = settings::from_agent(a.profile, a.agent_socket, a.debug, &|name| {
            std::env::var(name).ok()
        });
        return finish(
            settings
                .map_err(Failure::from)
                .and_then(|s| dispatch(s, &mut out)),
            &out,
        );
    }
    let cli = match args::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => return clap_error(&e, &mut out),
    };
    let result = execute(
        cli.command,
        &Forward {
            args: &args,
            backends,
        },
        &mut out,
    );
    finish(result, &out)
}

/// What [`execute`] needs to hand a command to the TPM companion: the program's arguments as given
/// and whether it carries the TPM backend itself.
struct Forward<'a> {
    args: &'a [OsString],
    backends: Backends,
}

impl Forward<'_> {
    /// Runs the companion for `key` when this program lacks the TPM backend and `key` is one
    /// (returns only if that failed); `Ok` when this program runs the command itself. A build
    /// without the `tpm` feature has no companion: its own error names the TPM key.
    fn check(&self, key: impl FnOnce() -> Option<String>) -> Result<(), Failure> {
        if !cfg!(feature = "tpm") || self.backends.has_tpm() {
            return Ok(());
        }
        match key() {
            Some(key) => Err(companion::exec(self.args, &key).into()),
            None => Ok(()),
        }
    }
}

/// The exit code of a run, its error reported.
fn finish(result: Result<(), Failure>, out: &output::Stdout) -> i32 {
    match result {
        Ok(()) => EXIT_OK,
        // Nobody reads the output any more (`| head -1`): no message, which would go to the same
        // closed pipe or bother a terminal about a reader that left on purpose.
        Err(_) if out.is_broken() => EXIT_OPERATIONAL,
        Err(e) => report(&e),
    }
}

fn execute(command: args::Command, forward: &Forward, out: &mut dyn Write) -> Result<(), Failure> {
    // Enrollment has its own arguments and never touches the network: it needs no session settings.
    if let args::Command::Enroll(cmd) = command {
        settings::check_enroll(&cmd)?;
        forward.check(|| companion::enroll_tpm_key(&cmd))?;
        return Ok(crate::enroll::run(cmd, out)?);
    }
    let settings = settings::validate(command, &|name| std::env::var(name).ok())?;
    // Before the command does anything: the companion runs it whole.
    forward.check(|| companion::tpm_key_of(&settings))?;
    dispatch(settings, out)
}

/// Runs validated settings.
fn dispatch(settings: Settings, out: &mut dyn Write) -> Result<(), Failure> {
    match settings {
        Settings::CredentialProcess(s) => commands::credential_process(&s, out),
        Settings::FromAgent {
            profile,
            socket,
            debug,
        } => crate::agent::client::credential_process(&profile, &socket, debug, out),
        Settings::Update(s) => commands::update(&s),
        Settings::Serve(s) => commands::serve(&s, out),
        Settings::Agent(a) => crate::agent::main(*a, out),
        Settings::Doctor(d) => crate::doctor::run(*d, out),
        Settings::SignString {
            key,
            alg,
            format,
            debug,
        } => commands::sign_string(&key, alg, format, debug, out),
        Settings::ReadCertificateData {
            certificate,
            key,
            debug,
        } => commands::read_certificate_data(&certificate, &key, debug, out),
        Settings::Version => {
            writeln!(out, "{}", version::text()).map_err(Failure::operational)?;
            Ok(())
        }
    }
}

/// Help and version go to stdout with 0 (1 when stdout cannot take them); parse errors to stderr
/// with 2.
fn clap_error(e: &clap::Error, out: &mut dyn Write) -> i32 {
    if !e.use_stderr() {
        let text = e.render().to_string();
        return match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Ok(()) => EXIT_OK,
            Err(_) => EXIT_OPERATIONAL,
        };
    }
    // `ansi()`: the arguments clap quotes as given (`to_string()` would strip what looks like an
    // escape sequence from them, and with it the exact text `output` masks).
    let text = e.render().ansi().to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    let mut line = format!("{PROGRAM}: {text}");
    if !line.ends_with('\n') {
        line.push('\n');
    }
    output::stderr_text(&line);
    EXIT_USAGE
}

/// Prints the error chain and its hints; returns the exit code.
fn report(e: &Failure) -> i32 {
    stderr_line(&format!("{PROGRAM}: {}", chain_text(e.error())));
    if let Some(hint) = e.error().chain().find_map(hint_of) {
        stderr_line(&format!("{PROGRAM}: hint: {hint}"));
    }
    exit_code(e)
}

/// The hint of the first error in the chain that has one.
fn hint_of(cause: &(dyn std::error::Error + 'static)) -> Option<String> {
    use crate::agent::{config, paths};
    if let Some(e) = cause.downcast_ref::<session::Error>() {
        return e.hint();
    }
    if let Some(e) = cause.downcast_ref::<config::Error>() {
        return e.hint();
    }
    if let Some(e) = cause.downcast_ref::<paths::Error>() {
        return Some(e.hint().to_string());
    }
    if let Some(e) = cause.downcast_ref::<crate::agent::client::Error>() {
        return e.hint();
    }
    if let Some(e) = cause.downcast_ref::<companion::Error>() {
        return Some(e.hint());
    }
    None
}

/// `error: cause: cause`, skipping a cause whose text its parent already ends with (some errors
/// print their source in their own message as well as returning it).
fn chain_text(e: &anyhow::Error) -> String {
    error_text(e.as_ref())
}

/// [`chain_text`] for any error: the error and its `source()` chain, as the CLI prints them.
pub(crate) fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    crate::text::error_chain(e)
}

/// The one place exit codes are decided: from the class the failing module gave its error.
pub fn exit_code(e: &Failure) -> i32 {
    match e.class() {
        ErrorClass::Configuration => EXIT_USAGE,
        ErrorClass::Operational => EXIT_OPERATIONAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{signer, sigv4x509};
    use anyhow::Context as _;
    use rolesanywhere_core::Classify;

    /// The exit code of `e` under an outer message, as commands wrap them.
    fn code(e: impl Classify + std::error::Error + Send + Sync + 'static) -> i32 {
        exit_code(&failure::Context::context(Err::<(), _>(e), "outer context").unwrap_err())
    }

    #[test]
    fn usage_and_configuration_errors_exit_2() {
        assert_eq!(code(settings::Error::Duration(1)), EXIT_USAGE);
        assert_eq!(code(settings::Error::HopLimit), EXIT_USAGE);
        assert_eq!(code(signer::Error::NoPrivateKey), EXIT_USAGE);
        assert_eq!(
            code(signer::Error::CertificateKeyMismatch {
                key: "k".into(),
                key_fp: "1".into(),
                certificate: "c".into(),
                cert_fp: "2".into(),
            }),
            EXIT_USAGE
        );
        assert_eq!(
            code(session::Error::Endpoint {
                url: "x".into(),
                reason: "y".into()
            }),
            EXIT_USAGE
        );
    }

    #[test]
    fn context_keeps_the_class_of_the_module_error() {
        let f = failure::Context::context(
            Err::<(), _>(signer::Error::NoPrivateKey),
            "cannot load the signing identity",
        )
        .unwrap_err();
        assert_eq!(f.class(), ErrorClass::Configuration);
        let text = chain_text(f.error());
        assert!(
            text.starts_with("cannot load the signing identity: no private key given"),
            "{text}"
        );
        let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "broken pipe");
        let f = Failure::operational(io).context("cannot write to stdout");
        assert_eq!(f.class(), ErrorClass::Operational);
        assert_eq!(chain_text(f.error()), "cannot write to stdout: broken pipe");
    }

    #[test]
    fn operational_failures_exit_1() {
        assert_eq!(
            code(session::Error::Service {
                url: "u".into(),
                status: 403,
                error_type: "AccessDeniedException".into(),
                message: String::new(),
                attempts: 1,
            }),
            EXIT_OPERATIONAL
        );
        assert_eq!(
            code(session::Error::MalformedResponse { reason: "r".into() }),
            EXIT_OPERATIONAL
        );
        assert_eq!(
            exit_code(&Failure::operational(anyhow::anyhow!(
                "cannot write to stdout"
            ))),
            EXIT_OPERATIONAL
        );
    }

    #[test]
    fn pkcs11_configuration_mistakes_exit_2_and_device_refusals_exit_1() {
        use signer::pkcs11::{CallError, Error as P11};
        let missing_pin = || {
            P11::Pin(crate::secret::Error::Missing {
                what: "PKCS#11 user PIN".into(),
                hint: "h".into(),
            })
        };
        let device = |rv| CallError {
            function: "C_Login",
            rv,
        };
        let configuration = [
            P11::Uri {
                uri: "pkcs11:x".into(),
                reason: "r".into(),
            },
            P11::NoModule {
                tried: "t".into(),
                hint: "h".into(),
            },
            P11::KeyNotFound {
                uri: "pkcs11:x".into(),
                hint: String::new(),
            },
            missing_pin(),
        ];
        for e in configuration {
            let text = e.to_string();
            assert_eq!(code(signer::Error::from(e)), EXIT_USAGE, "{text}");
        }
        let refusals = [
            P11::Login {
                token: "ra".into(),
                call: device(cryptoki_sys::CKR_PIN_INCORRECT),
                hint: String::new(),
            },
            P11::Login {
                token: "ra".into(),
                call: device(cryptoki_sys::CKR_PIN_LOCKED),
                hint: String::new(),
            },
            signer::pkcs11::Error::Call {
                what: "key".into(),
                call: device(cryptoki_sys::CKR_DEVICE_REMOVED),
                hint: String::new(),
            },
        ];
        for e in refusals {
            let text = e.to_string();
            assert_eq!(code(signer::Error::from(e)), EXIT_OPERATIONAL, "{text}");
        }
        // The same rule when the backend fails while signing the request.
        let signing =
            |e: P11| session::Error::Sign(sigv4x509::Error::Sign(signer::Error::from(e).into()));
        assert_eq!(code(signing(missing_pin())), EXIT_USAGE);
        assert_eq!(
            code(signing(P11::Call {
                what: "key".into(),
                call: device(cryptoki_sys::CKR_DEVICE_REMOVED),
                hint: String::new(),
            })),
            EXIT_OPERATIONAL
        );
    }

    #[test]
    fn chain_text_joins_causes_and_drops_repeated_sources() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = Err::<(), _>(signer::Error::from(signer::file::Error::Read {
            path: "/k.pem".into(),
            source: io.into(),
        }))
        .context("cannot load the signing identity")
        .unwrap_err();
        let text = chain_text(&e);
        assert!(
            text.starts_with("cannot load the signing identity: "),
            "{text}"
        );
        assert_eq!(text.matches("no such file").count(), 1, "{text}");
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(chain_text(&e), "outer: inner");
    }

    #[test]
    fn help_and_version_go_to_stdout_with_success() {
        for flag in ["--help", "--version"] {
            let e = args::Cli::try_parse_from(["rolesanywhere-agent", flag]).unwrap_err();
            assert!(!e.use_stderr(), "{flag}");
        }
        let e = args::Cli::try_parse_from(["rolesanywhere-agent", "credential-process", "--x"])
            .unwrap_err();
        assert_eq!(clap_error(&e, &mut Vec::new()), EXIT_USAGE);
    }
}
