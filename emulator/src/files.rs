//! How the emulator's output files reach the disk: private keys with mode 0600, certificates,
//! CRLs and configuration with mode 0644, each written to a fresh file in the target's directory
//! and renamed over the target, so that no reader ever sees a half-written file.
//!
//! Owns file modes and replacement; it must not decide what goes into a file. A private key is
//! never written through a symbolic link or into a FIFO or device, and never into an inode that
//! existed before: an old file at the path, whatever its mode, owner or other hard links, is
//! replaced by a new 0600 file, so permissions it had cannot leak the new key.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// Mode of a file holding a private key.
pub const PRIVATE_MODE: u32 = 0o600;
/// Mode of a certificate, CRL, index or configuration file.
pub const PUBLIC_MODE: u32 = 0o644;

/// Why a file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The path of a private key is a symbolic link.
    #[error(
        "refusing to write a private key through the symbolic link {}; name the final file or remove the link",
        path.display()
    )]
    KeyThroughSymlink {
        /// The link.
        path: PathBuf,
    },
    /// The path of a private key is a FIFO, socket, device or directory.
    #[error("refusing to write a private key to {}: it is not a regular file", path.display())]
    KeyIntoSpecialFile {
        /// The path.
        path: PathBuf,
    },
    /// The path ends in `/`, `.` or `..`.
    #[error("cannot write {}: the path does not name a file", path.display())]
    NoFileName {
        /// The path.
        path: PathBuf,
    },
    /// Looking at what is at the path failed.
    #[error("cannot inspect {}", path.display())]
    Inspect {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The new file could not be created next to the target.
    #[error("cannot create a new file in the directory of {}", path.display())]
    Create {
        /// The target path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Writing, syncing or renaming failed.
    #[error("cannot write {}", path.display())]
    Write {
        /// The target path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// True when the path given is wrong (exit 2), false when the file system failed (exit 1).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::KeyThroughSymlink { .. }
                | Error::KeyIntoSpecialFile { .. }
                | Error::NoFileName { .. }
        )
    }
}

/// Writes a private key: a new 0600 file renamed over `path`. Refuses a symbolic link or a
/// non-regular file at `path`; replaces a regular file (a 0644 one included) without ever
/// writing into it.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), Error> {
    check_private_path(path)?;
    replace(path, contents, PRIVATE_MODE)
}

/// What [`write_private`] refuses, checked ahead so that a command can refuse before it creates
/// anything (a CA, a certificate) that would be orphaned without the key.
pub fn check_private_path(path: &Path) -> Result<(), Error> {
    if path.file_name().is_none() {
        return Err(Error::NoFileName {
            path: path.to_path_buf(),
        });
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(Error::KeyThroughSymlink {
            path: path.to_path_buf(),
        }),
        Ok(m) if !m.is_file() => Err(Error::KeyIntoSpecialFile {
            path: path.to_path_buf(),
        }),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Inspect {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes a public file (certificate, CRL, index, configuration) with mode 0644, replacing a
/// regular file atomically. A symbolic link or special file (`/dev/stdout`, a FIFO) is written
/// through instead, so a link keeps pointing where it did.
pub fn write_public(path: &Path, contents: &[u8]) -> Result<(), Error> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.is_file() && !m.is_dir() => {
            let write_err = |source| Error::Write {
                path: path.to_path_buf(),
                source,
            };
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(path)
                .map_err(write_err)?;
            f.write_all(contents).map_err(write_err)
        }
        Ok(_) => replace(path, contents, PUBLIC_MODE),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => replace(path, contents, PUBLIC_MODE),
        Err(source) => Err(Error::Inspect {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Creates `path` for appending if missing (mode 0644), else opens it for appending.
pub fn open_append(path: &Path) -> Result<std::fs::File, Error> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(PUBLIC_MODE)
        .open(path)
        .map_err(|source| Error::Write {
            path: path.to_path_buf(),
            source,
        })
}

/// A new file with `mode` in `path`'s directory, written, synced and renamed over `path`.
fn replace(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    let name = path.file_name().ok_or_else(|| Error::NoFileName {
        path: path.to_path_buf(),
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let write_err = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let (tmp, mut file) = create_temp(dir, name, mode).map_err(|source| Error::Create {
        path: path.to_path_buf(),
        source,
    })?;
    let written = (|| {
        // The mode given to open() is reduced by the umask; set it exactly.
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(write_err(e));
    }
    // Make the rename durable; a directory that cannot be synced loses nothing but durability.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn create_temp(
    dir: &Path,
    name: &std::ffi::OsStr,
    mode: u32,
) -> std::io::Result<(PathBuf, std::fs::File)> {
    let mut last = None;
    for _ in 0..16 {
        let mut bytes = [0u8; 8];
        crate::ca::fill_random(&mut bytes);
        let suffix = u64::from_le_bytes(bytes);
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{suffix:016x}.tmp"));
        let tmp = dir.join(tmp_name);
        // create_new is O_CREAT|O_EXCL: never an existing file, never through a link.
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free temporary name")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt as _;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("metadata").mode() & 0o7777
    }

    #[test]
    fn private_key_replaces_a_world_readable_file_with_a_new_0600_one() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("k.pem");
        std::fs::write(&path, "old").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let old_inode = std::fs::metadata(&path).expect("metadata").ino();
        write_private(&path, b"secret").expect("write_private");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read(&path).expect("read"), b"secret");
        assert_ne!(std::fs::metadata(&path).expect("metadata").ino(), old_inode);
        let left: Vec<_> = std::fs::read_dir(tmp.path()).expect("dir").collect();
        assert_eq!(left.len(), 1, "temporary files left behind: {left:?}");
    }

    #[test]
    fn private_key_is_never_written_through_a_link_or_into_a_fifo() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let target = tmp.path().join("target");
        std::fs::write(&target, "public").expect("write");
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let err = write_private(&link, b"secret").expect_err("link");
        assert!(
            err.is_usage() && err.to_string().contains("symbolic link"),
            "{err}"
        );
        assert_eq!(std::fs::read(&target).expect("read"), b"public");
        let dangling = tmp.path().join("dangling");
        std::os::unix::fs::symlink(tmp.path().join("nowhere"), &dangling).expect("symlink");
        assert!(write_private(&dangling, b"secret").is_err());
        assert!(!tmp.path().join("nowhere").exists());
        let err = write_private(tmp.path(), b"secret").expect_err("directory");
        assert!(err.is_usage(), "{err}");
    }

    #[test]
    fn public_file_gets_exactly_0644_and_a_link_is_written_through() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("c.pem");
        write_public(&path, b"cert").expect("write_public");
        assert_eq!(mode(&path), 0o644);
        let link = tmp.path().join("link.pem");
        std::os::unix::fs::symlink(&path, &link).expect("symlink");
        write_public(&link, b"cert2").expect("through link");
        assert!(
            std::fs::symlink_metadata(&link)
                .expect("link")
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&path).expect("read"), b"cert2");
    }
}
