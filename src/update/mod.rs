//! `update`: keeps one profile of the shared credentials file filled with fresh credentials.
//!
//! [`credfile`] is the pure merge (only the three keys of one section change), [`write`] the locked,
//! atomic, durable replacement of the file, and [`keep_updated`] the loop: it writes each new set
//! the [`crate::refresh::Refresher`] obtains (on its schedule and backoff, so transient failures
//! never end the process) until shutdown is requested ([`crate::shutdown`]). `update --once` is one
//! CreateSession and one write (in `cli::commands`).

pub mod credfile;
pub mod write;

use crate::refresh::{Issued, Refresher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The shared credentials file as the SDKs find it: `AWS_SHARED_CREDENTIALS_FILE` (a leading `~/`
/// is the home directory, as botocore expands it) when set and not empty, else
/// `$HOME/.aws/credentials`. `None` when it names the home directory and `HOME` is unset.
pub fn credentials_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let home = || env("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
    match env("AWS_SHARED_CREDENTIALS_FILE").filter(|v| !v.is_empty()) {
        Some(v) if v == "~" => home(),
        Some(v) => match v.strip_prefix("~/") {
            Some(rest) => home().map(|h| h.join(rest)),
            None => Some(PathBuf::from(v)),
        },
        None => home().map(|h| h.join(".aws").join("credentials")),
    }
}

/// How long [`keep_updated`] waits before writing a set again after a failed write.
pub const WRITE_RETRY: Duration = Duration::from_secs(30);

/// Writes `issued` into `[profile]` of `file`, saying on stderr what was done (and what changed
/// besides the three keys: collapsed duplicates, a narrowed mode).
pub fn write_set(file: &Path, profile: &str, issued: &Issued) -> Result<(), write::Error> {
    let c = &issued.credentials;
    let values = credfile::NewValues([
        c.access_key_id.as_str(),
        c.secret_access_key.expose(),
        c.session_token.expose(),
    ]);
    let w = write::write_profile(file, profile, values)?;
    report(&w, profile);
    Ok(())
}

/// Stderr lines about what a write changed besides the keys.
pub fn report(w: &write::Written, profile: &str) {
    let path = crate::text::path(&w.path);
    if !w.removed_duplicates.is_empty() {
        crate::cli::stderr_line(&format!(
            "rolesanywhere-agent: {path}: collapsed {} duplicate [{profile}] section(s) at line(s) {} \
             into the first (the SDKs refuse a file with duplicates)",
            w.removed_duplicates.len(),
            w.removed_duplicates
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(old) = w.narrowed_from {
        crate::cli::stderr_line(&format!(
            "rolesanywhere-agent: {path} was mode {old:04o}, readable beyond its owner; it holds \
             credentials, so it is now {:04o}",
            old & 0o600
        ));
    }
}

/// Writes every new set from `refresher` into `[profile]` of `file` until shutdown is requested.
/// A failed write is logged and retried every [`WRITE_RETRY`] (with the newest set), never fatal.
pub fn keep_updated(refresher: &Refresher, file: &Path, profile: &str) {
    let mut seen = 0;
    let mut pending: Option<Arc<Issued>> = None;
    let mut failing = false;
    while !crate::shutdown::requested() {
        let wait = if pending.is_some() {
            WRITE_RETRY
        } else {
            Duration::from_secs(60)
        };
        if let Some(newer) = refresher.wait_newer(seen, Instant::now() + wait) {
            seen = newer.generation;
            pending = Some(newer);
        }
        let Some(issued) = pending.take() else {
            continue;
        };
        // A set kept through a long write failure may have run out meanwhile: never write one
        // that SDKs could no longer use (the refresher hands out a newer one when it has it).
        let now = time::OffsetDateTime::now_utc();
        if !crate::refresh::schedule::usable(now, issued.obtained_at, issued.credentials.expires_at)
        {
            continue;
        }
        match write_set(file, profile, &issued) {
            Ok(()) => {
                failing = false;
                crate::cli::stderr_line(&format!(
                    "rolesanywhere-agent: wrote credentials to [{profile}] in {}; they expire at {}",
                    crate::text::path(file),
                    issued.credentials.expiration
                ));
            }
            Err(e) => {
                // Once per failure streak: a full disk must not fill the journal too.
                if !failing {
                    crate::cli::stderr_line(&format!(
                        "rolesanywhere-agent: {}; retrying every {} s",
                        crate::cli::error_text(&e),
                        WRITE_RETRY.as_secs()
                    ));
                }
                failing = true;
                pending = Some(issued);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_comes_from_the_environment_like_botocore_finds_it() {
        let path = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            credentials_path(&move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
        };
        assert_eq!(
            path(&[("HOME", "/home/u")]),
            Some("/home/u/.aws/credentials".into())
        );
        assert_eq!(
            path(&[
                ("HOME", "/home/u"),
                ("AWS_SHARED_CREDENTIALS_FILE", "/etc/c")
            ]),
            Some("/etc/c".into())
        );
        assert_eq!(
            path(&[("HOME", "/h"), ("AWS_SHARED_CREDENTIALS_FILE", "~/x/c")]),
            Some("/h/x/c".into())
        );
        assert_eq!(
            path(&[("HOME", "/h"), ("AWS_SHARED_CREDENTIALS_FILE", "")]),
            Some("/h/.aws/credentials".into())
        );
        assert_eq!(path(&[]), None);
        assert_eq!(
            path(&[("AWS_SHARED_CREDENTIALS_FILE", "rel/c")]),
            Some("rel/c".into())
        );
    }
}
