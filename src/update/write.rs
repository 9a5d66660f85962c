//! Writing one profile into the shared credentials file, safely against crashes and other writers.
//!
//! Under an exclusive advisory lock (`flock`) on `FILE.lock` beside the file (after symbolic links,
//! so two links to one file share it): read the file, merge ([`super::credfile`]), write a
//! temporary file in the same directory created with its final mode, fsync it, rename it over the
//! file, fsync the directory. A reader — or a `kill -9` at any moment — sees the old file or the new
//! one, whole. Concurrent `update`s (one per profile, say) serialize on the lock, so none loses
//! another's section. The lock file is left in place: removing it would let a waiting writer lock a
//! file no newcomer sees. The lock is not on the credentials file itself, because the rename
//! replaces that inode and a writer waiting on the old one would then hold a lock nobody else takes.
//!
//! Modes: a new file is created 0600, a missing directory 0700. An existing file keeps its owner,
//! group and its owner's read and write bits, and loses every group and other bit: it is about to
//! hold fresh secrets, so the mode is never widened and narrowed to the owner
//! ([`Written::narrowed_from`] tells the caller, who says so). Temporary files left by a writer that
//! was killed are removed by the next one (they can only be stale while the lock is held).

use super::credfile::{self, NewValues};
use crate::enroll::files;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// Writing the credentials file failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The lock file could not be created or locked.
    #[error("cannot lock {} (the lock that keeps concurrent updates apart)", crate::text::path(.path))]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The credentials file could not be read.
    #[error("cannot read the credentials file {}", crate::text::path(.path))]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: crate::userfile::Error,
    },
    /// The credentials file is not UTF-8.
    #[error(
        "the credentials file {} is not UTF-8 text, which the AWS SDKs cannot read either; fix or \
         move it first",
        crate::text::path(.path)
    )]
    NotUtf8 {
        /// The file.
        path: PathBuf,
    },
    /// The merge was refused.
    #[error("cannot update the credentials file {}", crate::text::path(.path))]
    Merge {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: credfile::Error,
    },
    /// Writing, syncing or renaming failed (the file is unchanged).
    #[error("cannot write {}", crate::text::path(.path))]
    Write {
        /// The file or directory concerned.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl rolesanywhere_core::Classify for Error {
    fn class(&self) -> rolesanywhere_core::ErrorClass {
        use rolesanywhere_core::ErrorClass;
        match self {
            Error::Merge { source, .. } => source.class(),
            Error::NotUtf8 { .. } => ErrorClass::Configuration,
            Error::Read { source, .. } => match source {
                crate::userfile::Error::Io(_) => ErrorClass::Operational,
                _ => ErrorClass::Configuration,
            },
            Error::Lock { .. } | Error::Write { .. } => ErrorClass::Operational,
        }
    }
}

/// What [`write_profile`] did.
#[derive(Debug)]
pub struct Written {
    /// The file written (past symbolic links).
    pub path: PathBuf,
    /// True when the profile had a section already.
    pub updated: bool,
    /// 1-based lines of the duplicate `[profile]` headers that were collapsed into the first.
    pub removed_duplicates: Vec<usize>,
    /// The old mode when group or other bits were removed from it.
    pub narrowed_from: Option<u32>,
}

/// The lock file of `target` (a path past symbolic links): `target` with `.lock` appended.
pub fn lock_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    target.with_file_name(name)
}

/// Sets the three keys of `[profile]` in the credentials file at `path` (see the module docs).
pub fn write_profile(path: &Path, profile: &str, values: NewValues<'_>) -> Result<Written, Error> {
    let werr = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Write { path, source }
    };
    let target = files::resolve_links(path).map_err(werr(path))?;
    let dir = files::dir_of(&target);
    files::create_private_dir(&dir).map_err(werr(&dir))?;
    let lock_path = lock_path(&target);
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)
        .and_then(|f| f.lock().map(|()| f))
        .map_err(|source| Error::Lock {
            path: lock_path.clone(),
            source,
        })?;
    remove_stale_temp_files(&target);

    let existing = match crate::userfile::read(&target, crate::userfile::Kind::Config) {
        Ok(data) => data,
        Err(crate::userfile::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            Default::default()
        }
        Err(source) => {
            return Err(Error::Read {
                path: target,
                source,
            });
        }
    };
    let text = std::str::from_utf8(&existing).map_err(|_| Error::NotUtf8 {
        path: target.clone(),
    })?;
    let merged = credfile::merge(text, profile, values).map_err(|source| Error::Merge {
        path: target.clone(),
        source,
    })?;
    let mut narrowed_from = None;
    let written = files::replace_file(&target, merged.text.as_bytes(), |old| match old {
        None => 0o600,
        Some(m) => {
            if m & 0o077 != 0 {
                narrowed_from = Some(m);
            }
            m & 0o600
        }
    })
    .map_err(|(path, source)| Error::Write { path, source })?;
    drop(lock);
    Ok(Written {
        path: written,
        updated: merged.updated,
        removed_duplicates: merged.removed_duplicates,
        narrowed_from,
    })
}

/// Removes the temporary files a killed writer left beside `target`. Called with the lock held, when
/// no other `update` can be writing one; best effort.
fn remove_stale_temp_files(target: &Path) {
    let Some(name) = target.file_name() else {
        return;
    };
    let prefix = files::temp_prefix(name);
    let Ok(entries) = fs::read_dir(files::dir_of(target)) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = fs::remove_file(e.path());
        }
    }
}
