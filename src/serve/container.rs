//! The container credentials endpoint (the ECS / EKS Pod Identity protocol with an authorization
//! token): `GET /v1/credentials` with `Authorization` equal to the token file's content.
//!
//! The token file: read once at start (a regular file of at most 64 KiB, through
//! [`crate::userfile`]); created when absent, 0600, atomically (a temporary file linked into place,
//! so no reader ever sees it partly written and a file someone else created meanwhile is kept), with
//! 256 random bits as 64 hex digits and no trailing newline (SDKs send the file verbatim, and a
//! token with a newline is rejected by botocore and the Rust SDK). A token file the SDKs could not
//! use is refused at start. Tokens are compared in constant time. Must not log the token.
//!
//! Answer: `{"AccessKeyId","SecretAccessKey","Token","Expiration","AccountId"}`; errors are
//! `{"code","message"}` (401 without `Authorization`, 403 with a wrong one, 503 without a valid
//! set).

use super::http::{Method, Request, Response};
use super::imds::json_response;
use crate::refresh::{Issued, Unavailable};
use crate::secret::Secret;
use serde::Serialize;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use subtle::ConstantTimeEq as _;

/// The path of the endpoint.
pub const PATH: &str = "/v1/credentials";
/// Shortest token accepted from an existing file.
pub const MIN_TOKEN_LEN: usize = 32;

/// Why the token file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the existing file failed.
    #[error("cannot read the container token file {}", crate::text::path(.path))]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: crate::userfile::Error,
    },
    /// Creating the file failed.
    #[error("cannot create the container token file {}", crate::text::path(.path))]
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The system's random source failed.
    #[error("cannot draw a random container token")]
    Random,
    /// The file's content is not a token SDKs can send.
    #[error(
        "the container token file {} {problem}; SDKs send the file's content verbatim as the \
         Authorization header: write a single line of at least {MIN_TOKEN_LEN} printable characters \
         without a trailing newline, or delete the file to have a random token created",
        crate::text::path(.path)
    )]
    Unusable {
        /// The file.
        path: PathBuf,
        /// What is wrong (never the content).
        problem: &'static str,
    },
}

impl rolesanywhere_core::Classify for Error {
    fn class(&self) -> rolesanywhere_core::ErrorClass {
        match self {
            Error::Random => rolesanywhere_core::ErrorClass::Operational,
            _ => rolesanywhere_core::ErrorClass::Configuration,
        }
    }
}

/// Reads the token from `path`, or creates the file with a fresh token when it does not exist.
/// Returns the token and whether the file was created.
pub fn load_or_create(path: &Path) -> Result<(Secret, bool), Error> {
    match crate::userfile::read(path, crate::userfile::Kind::Secret) {
        Ok(bytes) => return check(path, &bytes).map(|t| (t, false)),
        Err(crate::userfile::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(Error::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    }
    let mut raw = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut raw[..]).map_err(|_| Error::Random)?;
    let token = Secret::new(hex::encode(&raw[..]));
    let create = |source| Error::Create {
        path: path.to_path_buf(),
        source,
    };
    match create_exclusive(path, token.expose().as_bytes()) {
        Ok(()) => Ok((token, true)),
        // Someone else created it in between: theirs is the token.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let bytes =
                crate::userfile::read(path, crate::userfile::Kind::Secret).map_err(|source| {
                    Error::Read {
                        path: path.to_path_buf(),
                        source,
                    }
                })?;
            check(path, &bytes).map(|t| (t, false))
        }
        Err(e) => Err(create(e)),
    }
}

/// Writes `content` to a 0600 temporary file beside `path`, syncs it, and links it to `path`
/// (failing with `AlreadyExists` rather than replacing a file), then syncs the directory.
fn create_exclusive(path: &Path, content: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("the path names no file"))?;
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(std::io::Error::other)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        hex::encode(suffix)
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        std::fs::hard_link(&tmp, path)
    })();
    let _ = std::fs::remove_file(&tmp);
    result?;
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn check(path: &Path, bytes: &[u8]) -> Result<Secret, Error> {
    let unusable = |problem| Error::Unusable {
        path: path.to_path_buf(),
        problem,
    };
    if bytes.ends_with(b"\n") || bytes.ends_with(b"\r") {
        return Err(unusable("ends with a newline"));
    }
    if bytes.iter().any(|&b| !(0x21..0x7f).contains(&b)) {
        return Err(unusable(
            "holds a character other than printable ASCII (or a space, or a line break)",
        ));
    }
    if bytes.len() < MIN_TOKEN_LEN {
        return Err(unusable("holds a token that is too short"));
    }
    // Printable ASCII: valid UTF-8.
    Ok(Secret::new(String::from_utf8_lossy(bytes).into_owned()))
}

/// What the container endpoint serves.
pub struct Container<'a> {
    /// The token clients must send.
    pub token: &'a Secret,
    /// The role's account, for `AccountId`.
    pub account_id: &'a str,
    /// The current credential set.
    pub credentials: &'a (dyn Fn() -> Result<Arc<Issued>, Unavailable> + Sync),
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Body<'a> {
    access_key_id: &'a str,
    secret_access_key: &'a str,
    token: &'a str,
    expiration: &'a str,
    account_id: &'a str,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
}

fn error(status: u16, code: &str, message: &str) -> Response {
    json_response(status, &ErrorBody { code, message })
}

impl Container<'_> {
    /// The answer to a request for [`PATH`].
    pub fn answer(&self, req: &Request) -> Response {
        if req.method != Some(Method::Get) {
            let mut r = error(405, "MethodNotAllowed", "use GET");
            r.allow = Some("GET");
            return r;
        }
        let Some(given) = req.authorization.as_deref() else {
            return error(401, "Unauthorized", "the Authorization header is missing");
        };
        let expected = self.token.expose().as_bytes();
        // Lengths are not secret (every created token has 64 characters); the bytes are compared
        // in constant time.
        if given.len() != expected.len() || !bool::from(given.ct_eq(expected)) {
            return error(403, "AccessDenied", "the Authorization token is not valid");
        }
        match (self.credentials)() {
            Ok(issued) => {
                let c = &issued.credentials;
                json_response(
                    200,
                    &Body {
                        access_key_id: &c.access_key_id,
                        secret_access_key: c.secret_access_key.expose(),
                        token: c.session_token.expose(),
                        expiration: &c.expiration,
                        account_id: self.account_id,
                    },
                )
            }
            Err(u) => error(503, "CredentialsUnavailable", &u.reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn a_missing_file_is_created_0600_with_256_random_bits_and_no_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let (token, created) = load_or_create(&path).unwrap();
        assert!(created);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, token.expose());
        assert_eq!(text.len(), 64);
        assert!(text.bytes().all(|b| b.is_ascii_hexdigit()));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Only the file: the temporary one is gone.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let (again, created) = load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(again.expose(), token.expose());
        let (other, _) = load_or_create(&dir.path().join("t2")).unwrap();
        assert_ne!(other.expose(), token.expose());
    }

    #[test]
    fn tokens_sdks_cannot_send_are_refused_without_showing_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let good = "x".repeat(MIN_TOKEN_LEN);
        for (content, needle) in [
            (format!("{good}\n"), "newline"),
            (format!("{good}\r\n"), "newline"),
            (format!("a b{good}"), "printable"),
            ("short".to_string(), "too short"),
            (String::new(), "too short"),
        ] {
            std::fs::write(&path, &content).unwrap();
            let e = load_or_create(&path).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
            assert!(!e.contains(&good), "{e}");
        }
        std::fs::write(&path, &good).unwrap();
        assert_eq!(load_or_create(&path).unwrap().0.expose(), good);
    }
}
