//! Secrets (PINs, passwords) and where they come from.
//!
//! A [`Secret`] zeroizes its memory on drop and never prints its value. Sources are tried in the order
//! the caller gives; a terminal prompt is only ever offered when stdin is a real terminal, so services
//! and CI fail fast with a message instead of hanging.

use crate::userfile;
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
    /// A secret file could not be read (missing, not a regular file, larger than any secret).
    #[error("cannot read {what} from file {path}", path = crate::text::path(path))]
    File {
        /// What the secret is for (`PKCS#11 user PIN`, …).
        what: String,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: crate::userfile::Error,
    },
    /// A secret that is not valid UTF-8.
    #[error(
        "{what} from {source_name} is not valid UTF-8; it was not used (nothing was sent to the device)"
    )]
    NotUtf8 {
        /// What the secret is for.
        what: String,
        /// The file or `$VARIABLE`.
        source_name: String,
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

/// Reads a secret from the first line of `path`, a regular file of at most [`MAX_FILE_LEN`] bytes:
/// `pin-source=file:/dev/zero`, a FIFO or a wrong path to a huge file fails at once, never hangs.
pub fn read_file(path: &Path, what: &str) -> Result<Secret, Error> {
    let raw = userfile::read(path, userfile::Kind::Secret).map_err(|source| Error::File {
        what: what.into(),
        path: path.into(),
        source,
    })?;
    let line = raw.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // Refused rather than "repaired": a PIN altered by lossy decoding would cost the token a try.
    let text = std::str::from_utf8(line).map_err(|_| Error::NotUtf8 {
        what: what.into(),
        source_name: crate::text::path(path),
    })?;
    Ok(Secret::new(text.to_string()))
}

/// The secret in environment variable `name`, if it is set. A value that is not valid UTF-8 is an
/// error, not a lossy conversion: a silently altered PIN or password would cost a try on the device.
pub fn from_env(name: &str, what: &str) -> Result<Option<Secret>, Error> {
    match std::env::var_os(name) {
        None => Ok(None),
        Some(v) => v
            .into_string()
            .map(|v| Some(Secret::new(v)))
            .map_err(|_| Error::NotUtf8 {
                what: what.into(),
                source_name: format!("${name}"),
            }),
    }
}

/// Largest secret file read: PINs and passwords are short (the cap [`userfile`] applies to secrets).
pub const MAX_FILE_LEN: u64 = 64 * 1024;

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
                if let Some(v) = from_env(name, what)? {
                    return Ok(v);
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
    fn huge_or_endless_secret_files_are_refused() {
        let e = read_file(Path::new("/dev/zero"), "PKCS#11 user PIN").unwrap_err();
        assert!(
            matches!(
                &e,
                Error::File {
                    source: userfile::Error::NotRegular { .. },
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("/dev/zero"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        std::fs::File::create(&p)
            .unwrap()
            .set_len(MAX_FILE_LEN + 1)
            .unwrap();
        let e = read_file(&p, "PKCS#11 user PIN").unwrap_err();
        assert!(
            matches!(
                &e,
                Error::File {
                    source: userfile::Error::TooLarge { .. },
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn non_utf8_secret_file_is_refused_not_altered() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pin");
        // The path is taken out before the check: a random temp name may hold any two characters.
        std::fs::write(&p, b"Qz\xffWv\n").unwrap();
        let e = read_file(&p, "PKCS#11 user PIN").unwrap_err();
        assert!(matches!(e, Error::NotUtf8 { .. }), "{e}");
        let text = e.to_string().replace(&crate::text::path(&p), "PATH");
        assert!(!text.contains("Qz") && !text.contains("Wv"), "{e}");
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
