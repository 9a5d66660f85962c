//! Handing a command that needs a TPM key to `rolesanywhere-agent-tpm`.
//!
//! `rolesanywhere-agent` carries no TPM backend (`signer::backends`; ADR 0002, "libtss2 only for a
//! TPM key"), so that its start binds no libtss2 or libcrypto symbol. A command that needs a TPM
//! key is decided up front, before it does anything (no socket bound, nothing printed, no file
//! written, no prompt), from its validated settings ([`tpm_key_of`], [`enroll_tpm_key`]): a
//! `handle:` key, a `TSS2 PRIVATE KEY` file, a keygen target that is not a token, or an agent
//! configuration with such a profile. Such a command is run by the companion program, which carries
//! the backend, in this same process (`execve`): the same arguments (`argv[0]` as the caller gave
//! it) and environment, plus [`FRONT_ENV`] (this program's path); the pid, the terminal and any
//! inherited socket (systemd's) stay, and the exit code is the companion's.
//!
//! Where the companion is ([`candidates`]): `ROLESANYWHERE_AGENT_TPM` (an absolute path) alone when
//! it is set; else next to this program (a build tree, or both binaries copied together); else
//! [`INSTALLED`], where the Debian package puts it.
//!
//! Never in a loop: the companion has the backend, so it never gets here; a front started by a
//! front ([`FRONT_ENV`] set), or that finds itself as the companion, refuses.

use super::args::AgentArgs;
use super::settings::{DoctorTarget, Settings};
use crate::enroll::EnrollCommand;
use crate::signer::identity::tpm_key;
use crate::text;
use rolesanywhere_core::{Classify, ErrorClass};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// The companion's file name.
pub const NAME: &str = "rolesanywhere-agent-tpm";
/// Where the Debian package installs the companion (scripts/package, Cargo.toml's assets).
pub const INSTALLED: &str = "/usr/libexec/rolesanywhere-agent/rolesanywhere-agent-tpm";
/// The companion's absolute path, when it is not next to this program or in [`INSTALLED`].
pub const PATH_ENV: &str = "ROLESANYWHERE_AGENT_TPM";
/// Set for the companion to this program's path: what `enroll install-cert` writes into the AWS
/// configuration (users call `rolesanywhere-agent`), and the mark of a forwarded run.
pub const FRONT_ENV: &str = "ROLESANYWHERE_AGENT_FRONT";

/// Why the companion could not be run. All are installation mistakes: exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No candidate exists.
    #[error(
        "{key} is a TPM key, which rolesanywhere-agent opens through {NAME}, but {NAME} is not \
         there (tried {})",
        tried.iter().map(|p| text::path(p)).collect::<Vec<_>>().join(", ")
    )]
    NotFound {
        /// The TPM key, as messages name it.
        key: String,
        /// The paths looked at, in order.
        tried: Vec<PathBuf>,
    },
    /// `ROLESANYWHERE_AGENT_TPM` is not an absolute path.
    #[error(
        "{PATH_ENV}={} is not an absolute path (needed for the TPM key {key})",
        text::arg(&value.to_string_lossy())
    )]
    Relative {
        /// The TPM key.
        key: String,
        /// The variable's value.
        value: OsString,
    },
    /// `execve` failed.
    #[error("cannot run {} for the TPM key {key}", text::path(path))]
    Exec {
        /// The TPM key.
        key: String,
        /// The companion.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The companion found is this program, or ran a front again.
    #[error(
        "{} is not {NAME}: it runs rolesanywhere-agent again instead of opening the TPM key {key}",
        text::path(path)
    )]
    Loop {
        /// The TPM key.
        key: String,
        /// The program that is not the companion.
        path: PathBuf,
    },
}

impl Error {
    /// How to fix it.
    pub fn hint(&self) -> String {
        match self {
            Error::Relative { .. } => format!("set {PATH_ENV} to the absolute path of {NAME}"),
            Error::Loop { .. } => format!(
                "make {PATH_ENV}, or the {NAME} next to rolesanywhere-agent, the real {NAME} (from \
                 the same build or package as rolesanywhere-agent)"
            ),
            _ => format!(
                "install the rolesanywhere-agent package again (it puts {NAME} in {}/), or copy \
                 both rolesanywhere-agent and {NAME} into one directory, or set {PATH_ENV} to the \
                 absolute path of {NAME}",
                Path::new(INSTALLED)
                    .parent()
                    .map_or_else(String::new, |d| d.display().to_string())
            ),
        }
    }
}

impl Classify for Error {
    fn class(&self) -> ErrorClass {
        ErrorClass::Configuration
    }
}

/// The TPM key a validated command needs, if any (see the module documentation).
pub fn tpm_key_of(settings: &Settings) -> Option<String> {
    match settings {
        Settings::CredentialProcess(s) => tpm_key(&s.key),
        Settings::SignString { key, .. } => tpm_key(key),
        Settings::Update(u) => tpm_key(&u.session.key),
        Settings::Serve(s) => tpm_key(&s.session.key),
        Settings::Agent(a) => agent_tpm_key(a),
        Settings::Doctor(d) => match &d.target {
            DoctorTarget::Flags(r) => tpm_key(&r.key),
            DoctorTarget::Agent { config, profile } => {
                let env = |name: &str| std::env::var(name).ok();
                let config = crate::agent::config::load(config, &env).ok()?;
                tpm_key(&config.profiles.get(profile)?.session.key)
            }
        },
        // A certificate is read from a file or a token; the agent's client opens no key.
        Settings::ReadCertificateData { .. } | Settings::FromAgent { .. } | Settings::Version => {
            None
        }
    }
}

/// The first TPM key among the profiles of the configuration the agent daemon would read, by
/// profile name. A configuration that cannot be read or is not valid: `None`, and the agent
/// reports why as it always does.
fn agent_tpm_key(args: &AgentArgs) -> Option<String> {
    if args.command.is_some() {
        return None;
    }
    let env = |name: &str| std::env::var(name).ok();
    let path = match &args.config {
        Some(p) => p.clone(),
        None => crate::agent::paths::default_config(&env).ok()?,
    };
    let config = crate::agent::config::load(&path, &env).ok()?;
    config.profiles.values().find_map(|p| {
        tpm_key(&p.session.key).map(|key| format!("{key} (profile {})", text::arg(&p.name)))
    })
}

/// The TPM key an enroll command needs: a keygen target that is not a token (a new TPM key file
/// or persistent handle), a `csr` or `install-cert` key that is a TPM key.
pub fn enroll_tpm_key(cmd: &EnrollCommand) -> Option<String> {
    use crate::enroll::target::{KeySource, key_options};
    match cmd {
        EnrollCommand::Keygen(a) => match crate::enroll::keygen::target(a).ok()? {
            KeySource::Pkcs11(_) => None,
            KeySource::TpmHandle(h) => Some(text::arg(&h)),
            KeySource::File(p) => Some(text::path(&p)),
        },
        EnrollCommand::Csr(a) => tpm_key(&key_options(&a.private_key, &a.device)),
        EnrollCommand::InstallCert(a) => tpm_key(&key_options(&a.private_key, &a.device)),
    }
}

/// Where to look for the companion, in order: `ROLESANYWHERE_AGENT_TPM` alone when set (not
/// empty); else [`NAME`] next to `exe` (this program), then [`INSTALLED`].
pub fn candidates(
    key: &str,
    env: &dyn Fn(&str) -> Option<OsString>,
    exe: Option<&Path>,
) -> Result<Vec<PathBuf>, Error> {
    if let Some(value) = env(PATH_ENV).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(&value);
        if !path.is_absolute() {
            return Err(Error::Relative {
                key: key.to_string(),
                value,
            });
        }
        return Ok(vec![path]);
    }
    let mut tried: Vec<PathBuf> = exe
        .and_then(Path::parent)
        .map(|dir| dir.join(NAME))
        .into_iter()
        .collect();
    if !tried.iter().any(|p| p == Path::new(INSTALLED)) {
        tried.push(INSTALLED.into());
    }
    Ok(tried)
}

/// Runs the companion in place of this program for `key`, with `args` (this program's arguments,
/// `argv[0]` first) and this environment plus [`FRONT_ENV`]. Returns only when it could not.
pub fn exec(args: &[OsString], key: &str) -> Error {
    use std::os::unix::process::CommandExt as _;
    let env = |name: &str| std::env::var_os(name);
    let exe = std::env::current_exe().ok();
    let tried = match candidates(key, &env, exe.as_deref()) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let found = tried.iter().find(|p| p.is_file()).cloned();
    // This front was itself run in place of the companion (by whatever is found as the companion,
    // the same lookup in the same environment), or would run itself.
    let forwarded = env(FRONT_ENV).is_some();
    let is_self = |p: &Path| exe.as_deref().is_some_and(|exe| same_file(exe, p));
    if forwarded || found.as_deref().is_some_and(is_self) {
        return Error::Loop {
            key: key.to_string(),
            path: found.or(exe).unwrap_or_else(|| PathBuf::from(NAME)),
        };
    }
    let Some(path) = found else {
        return Error::NotFound {
            key: key.to_string(),
            tried,
        };
    };
    let (arg0, rest) = match args.split_first() {
        Some((first, rest)) => (first.as_os_str(), rest),
        None => (OsStr::new("rolesanywhere-agent"), args),
    };
    let mut command = std::process::Command::new(&path);
    command.arg0(arg0).args(rest);
    if let Some(exe) = &exe {
        command.env(FRONT_ENV, exe);
    }
    let source = command.exec();
    Error::Exec {
        key: key.to_string(),
        path,
        source,
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// The program users call, for the AWS configuration `enroll install-cert` writes: the front that
/// ran this companion ([`FRONT_ENV`]), else this program.
pub fn front_program() -> std::io::Result<PathBuf> {
    match std::env::var_os(FRONT_ENV).map(PathBuf::from) {
        Some(p) if p.is_absolute() => Ok(p),
        _ => std::env::current_exe(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let vars: Vec<(String, OsString)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn the_variable_alone_decides_where_the_companion_is() {
        let env = env_of(&[(PATH_ENV, "/opt/ra/rolesanywhere-agent-tpm")]);
        let tried = candidates("k", &env, Some(Path::new("/usr/bin/rolesanywhere-agent"))).unwrap();
        assert_eq!(tried, [PathBuf::from("/opt/ra/rolesanywhere-agent-tpm")]);
    }

    #[test]
    fn without_the_variable_next_to_the_program_then_libexec() {
        for env in [env_of(&[]), env_of(&[(PATH_ENV, "")])] {
            let tried = candidates(
                "k",
                &env,
                Some(Path::new("/home/u/bin/rolesanywhere-agent")),
            )
            .unwrap();
            assert_eq!(
                tried,
                [
                    PathBuf::from("/home/u/bin/rolesanywhere-agent-tpm"),
                    PathBuf::from(INSTALLED)
                ]
            );
        }
        assert_eq!(
            candidates("k", &env_of(&[]), None).unwrap(),
            [PathBuf::from(INSTALLED)]
        );
    }

    #[test]
    fn a_relative_variable_is_refused_with_the_fix() {
        let env = env_of(&[(PATH_ENV, "bin/rolesanywhere-agent-tpm")]);
        let e = candidates("handle:0x81000001", &env, None).unwrap_err();
        assert!(matches!(e, Error::Relative { .. }), "{e}");
        assert!(e.to_string().contains("handle:0x81000001"), "{e}");
        assert!(e.hint().contains(PATH_ENV), "{}", e.hint());
        assert_eq!(e.class(), ErrorClass::Configuration);
    }

    #[test]
    fn not_found_names_the_key_every_path_tried_and_the_fix() {
        let e = Error::NotFound {
            key: "/k/key.tss2".into(),
            tried: vec!["/a/rolesanywhere-agent-tpm".into(), INSTALLED.into()],
        };
        let text = e.to_string();
        for part in ["/k/key.tss2", "/a/rolesanywhere-agent-tpm", INSTALLED] {
            assert!(text.contains(part), "{text}");
        }
        assert!(
            e.hint().contains("/usr/libexec/rolesanywhere-agent/"),
            "{}",
            e.hint()
        );
        assert!(e.hint().contains("copy both"), "{}", e.hint());
    }

    #[test]
    fn keygen_targets_other_than_a_token_are_tpm_keys() {
        use crate::enroll::KeygenArgs;
        let keygen = |private_key: Option<&str>, persist: Option<&str>| {
            EnrollCommand::Keygen(KeygenArgs {
                private_key: private_key.map(str::to_string),
                persist: persist.map(str::to_string),
                key_type: Default::default(),
                tpm_parent: None,
                tpm_pcrs: None,
                device: Default::default(),
            })
        };
        assert_eq!(
            enroll_tpm_key(&keygen(Some("/new/k.tss2"), None)).as_deref(),
            Some("/new/k.tss2")
        );
        assert_eq!(
            enroll_tpm_key(&keygen(None, Some("0x81000002"))).as_deref(),
            Some("handle:0x81000002")
        );
        assert_eq!(
            enroll_tpm_key(&keygen(Some("pkcs11:token=a;id=%01"), None)),
            None
        );
        // Both or neither: keygen reports the usage error itself.
        assert_eq!(enroll_tpm_key(&keygen(None, None)), None);
    }
}
