//! Where the agent looks by default: its configuration file and its socket.
//!
//! Root (a system service) uses the system locations, `/etc/rolesanywhere/agent.toml` and
//! `/run/rolesanywhere/agent.sock`; any other user the XDG ones, `$XDG_CONFIG_HOME` (else
//! `~/.config`) and `$XDG_RUNTIME_DIR` (the per-user runtime directory, private to that user and
//! emptied at logout). The environment is read through the caller's lookup so tests can pass
//! their own.

use std::path::PathBuf;

/// The system configuration file (root).
pub const SYSTEM_CONFIG: &str = "/etc/rolesanywhere/agent.toml";
/// The system socket (root).
pub const SYSTEM_SOCKET: &str = "/run/rolesanywhere/agent.sock";
/// The environment variable naming the socket for the clients (`credential-process
/// --from-agent`, `agent status`), after `--agent-socket`.
pub const SOCKET_ENV: &str = "ROLESANYWHERE_AGENT_SOCK";

/// A default location cannot be worked out.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not root and no `XDG_RUNTIME_DIR`.
    #[error("no default socket: XDG_RUNTIME_DIR is not set")]
    NoRuntimeDir,
    /// Not root and neither `XDG_CONFIG_HOME` nor `HOME`.
    #[error("no default configuration file: neither XDG_CONFIG_HOME nor HOME is set")]
    NoConfigDir,
}

impl Error {
    /// How to get past it.
    pub fn hint(&self) -> &'static str {
        match self {
            Error::NoRuntimeDir => {
                "give the socket with --socket (agent) or --agent-socket (clients)"
            }
            Error::NoConfigDir => "give the configuration file with --config",
        }
    }
}

impl rolesanywhere_core::Classify for Error {
    fn class(&self) -> rolesanywhere_core::ErrorClass {
        rolesanywhere_core::ErrorClass::Configuration
    }
}

fn is_root() -> bool {
    super::sys::euid() == 0
}

/// A non-empty absolute path from the environment (the XDG rules ignore relative ones).
fn absolute_var(env: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<PathBuf> {
    env(name).filter(|v| v.starts_with('/')).map(PathBuf::from)
}

/// The configuration file when `--config` is not given.
pub fn default_config(env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf, Error> {
    default_config_for(is_root(), env)
}

fn default_config_for(root: bool, env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf, Error> {
    if root {
        return Ok(PathBuf::from(SYSTEM_CONFIG));
    }
    absolute_var(env, "XDG_CONFIG_HOME")
        .or_else(|| absolute_var(env, "HOME").map(|h| h.join(".config")))
        .map(|d| d.join("rolesanywhere").join("agent.toml"))
        .ok_or(Error::NoConfigDir)
}

/// The socket when neither a flag, the environment (clients) nor the configuration names one.
pub fn default_socket(env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf, Error> {
    default_socket_for(is_root(), env)
}

fn default_socket_for(root: bool, env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf, Error> {
    if root {
        return Ok(PathBuf::from(SYSTEM_SOCKET));
    }
    absolute_var(env, "XDG_RUNTIME_DIR")
        .map(|d| d.join("rolesanywhere").join("agent.sock"))
        .ok_or(Error::NoRuntimeDir)
}

/// The clients' socket: `--agent-socket`, else [`SOCKET_ENV`], else [`default_socket`].
pub fn client_socket(
    flag: Option<PathBuf>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PathBuf, Error> {
    if let Some(p) = flag {
        return Ok(p);
    }
    if let Some(p) = env(SOCKET_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    default_socket(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn root_uses_the_system_locations_whatever_the_environment() {
        let e = env(&[
            ("XDG_RUNTIME_DIR", "/run/user/0"),
            ("XDG_CONFIG_HOME", "/x"),
        ]);
        assert_eq!(
            default_socket_for(true, &e).unwrap(),
            PathBuf::from(SYSTEM_SOCKET)
        );
        assert_eq!(
            default_config_for(true, &e).unwrap(),
            PathBuf::from(SYSTEM_CONFIG)
        );
    }

    #[test]
    fn users_follow_xdg_and_relative_values_are_ignored() {
        let e = env(&[("XDG_RUNTIME_DIR", "/run/user/1000"), ("HOME", "/home/u")]);
        assert_eq!(
            default_socket_for(false, &e).unwrap(),
            PathBuf::from("/run/user/1000/rolesanywhere/agent.sock")
        );
        assert_eq!(
            default_config_for(false, &e).unwrap(),
            PathBuf::from("/home/u/.config/rolesanywhere/agent.toml")
        );
        let e = env(&[("XDG_CONFIG_HOME", "rel"), ("XDG_RUNTIME_DIR", "rel")]);
        assert!(matches!(
            default_socket_for(false, &e),
            Err(Error::NoRuntimeDir)
        ));
        assert!(matches!(
            default_config_for(false, &e),
            Err(Error::NoConfigDir)
        ));
        let e = env(&[("XDG_CONFIG_HOME", "/cfg")]);
        assert_eq!(
            default_config_for(false, &e).unwrap(),
            PathBuf::from("/cfg/rolesanywhere/agent.toml")
        );
    }

    #[test]
    fn client_socket_prefers_the_flag_then_the_environment() {
        let e = env(&[
            (SOCKET_ENV, "/tmp/a.sock"),
            ("XDG_RUNTIME_DIR", "/run/user/1"),
        ]);
        assert_eq!(
            client_socket(Some("/f.sock".into()), &e).unwrap(),
            PathBuf::from("/f.sock")
        );
        assert_eq!(
            client_socket(None, &e).unwrap(),
            PathBuf::from("/tmp/a.sock")
        );
    }
}
