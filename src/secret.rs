//! Secrets (PINs, passwords) and where they come from.
//!
//! A [`Secret`] zeroizes its memory on drop and never prints its value. Sources are tried in the order
//! the caller gives; a terminal prompt is only ever offered when stdin is a real terminal, so services
//! and CI fail fast with a message instead of hanging.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// A secret string: zeroized on drop, redacted in `Debug`, never `Display`.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a value (the caller's copy should be dropped or zeroized).
    pub fn new(value: String) -> Secret {
        Secret(Zeroizing::new(value))
    }

    /// The secret value, for handing to a device. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True for the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// clap value parser for secret flags (`--tpm-key-password`, `--pkcs8-password`, …): the value goes
/// straight into a [`Secret`], so the parsed arguments never hold it in a printable `String`.
pub fn parse_arg(value: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(value.to_string()))
}

/// Where a secret comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Given directly (a flag or a URI attribute).
    Value(Secret),
    /// The first line of a file (a trailing `\n` or `\r\n` is removed).
    File(PathBuf),
    /// An environment variable, by name.
    Env(String),
    /// Ask on the terminal, with this prompt, if stdin is a terminal.
    Prompt(String),
}

/// A secret could not be obtained.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A secret file could not be read.
    #[error("cannot read {what} from file {path}")]
    File {
        /// What the secret is for (`PKCS#11 user PIN`, …).
        what: String,
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// No source produced a secret and there is no terminal to ask on.
    #[error("{what} is required but none was given and stdin is not a terminal; {hint}")]
    Missing {
        /// What the secret is for.
        what: String,
        /// How to provide it non-interactively.
        hint: String,
    },
    /// The terminal prompt failed.
    #[error("cannot read {what} from the terminal")]
    Prompt {
        /// What the secret is for.
        what: String,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
}

/// Reads a secret from the first line of `path`.
pub fn read_file(path: &Path, what: &str) -> Result<Secret, Error> {
    let raw = Zeroizing::new(std::fs::read(path).map_err(|source| Error::File {
        what: what.into(),
        path: path.into(),
        source,
    })?);
    // Not a bare `from_utf8_lossy`: for a file that is not UTF-8 it returns a fresh `String` that
    // would be freed without being zeroized.
    let text = Zeroizing::new(String::from_utf8_lossy(&raw).into_owned());
    let line = text.split('\n').next().unwrap_or("");
    let line = line.strip_suffix('\r').unwrap_or(line);
    Ok(Secret::new(line.to_string()))
}

/// True when an interactive prompt is allowed (stdin is a terminal).
pub fn can_prompt() -> bool {
    std::io::stdin().is_terminal()
}

/// Returns the secret from the first source that has one, in order. An `Env` source whose variable is
/// unset is skipped; a `Prompt` source is skipped unless stdin is a terminal. `hint` tells the user how
/// to give the secret non-interactively when nothing produced one.
pub fn resolve(sources: &[Source], what: &str, hint: &str) -> Result<Secret, Error> {
    for s in sources {
        match s {
            Source::Value(v) => return Ok(v.clone()),
            Source::File(p) => return read_file(p, what),
            Source::Env(name) => {
                if let Some(v) = std::env::var_os(name) {
                    return Ok(Secret::new(v.to_string_lossy().into_owned()));
                }
            }
            Source::Prompt(prompt) => {
                if can_prompt() {
                    let v = rpassword::prompt_password(prompt).map_err(|source| Error::Prompt {
                        what: what.into(),
                        source,
                    })?;
                    return Ok(Secret::new(v));
                }
            }
        }
    }
    Err(Error::Missing {
        what: what.into(),
        hint: hint.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new("1234".into());
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(
            format!("{:?}", Source::Value(s)),
            "Value(Secret(<redacted>))"
        );
    }

    #[test]
    fn file_source_takes_first_line_without_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pin");
        std::fs::write(&p, "12 34\r\nsecond").unwrap();
        assert_eq!(read_file(&p, "PIN").unwrap().expose(), "12 34");
    }

    #[test]
    fn missing_file_names_path_and_purpose() {
        let e = read_file(Path::new("/nonexistent/pin"), "PKCS#11 user PIN").unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("PKCS#11 user PIN") && m.contains("/nonexistent/pin"),
            "{m}"
        );
    }

    #[test]
    fn unset_env_falls_through_to_missing() {
        let e = resolve(
            &[Source::Env("RA_TEST_SURELY_UNSET_VAR".into())],
            "TPM key password",
            "use --tpm-key-password-file",
        )
        .unwrap_err();
        assert!(e.to_string().contains("use --tpm-key-password-file"));
    }
}
