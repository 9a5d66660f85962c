//! Creating files atomically with an explicit mode.
//!
//! The content goes to a temporary file in the target's directory (created exclusively, with the final
//! mode from the start, so a key is never readable by others even briefly), is synced, and is then
//! moved into place. Without [`Replace::Allow`] the move is a hard link, which fails if the target
//! exists, so an existing key file is never overwritten even by a concurrent writer.

use super::Error;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// Whether an existing file at the target may be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// Fail with [`Error::Exists`] if the target exists.
    Refuse,
    /// Replace it atomically.
    Allow,
}

/// Writes `data` to `path` with `mode` (e.g. `0o600`), atomically.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32, replace: Replace) -> Result<(), Error> {
    let werr = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let exists = || Error::Exists {
        path: path.to_path_buf(),
        hint: "choose another file name or move the old one away first".into(),
    };
    if replace == Replace::Refuse && fs::symlink_metadata(path).is_ok() {
        return Err(exists());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| werr(std::io::Error::other("the path has no file name")))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{:016x}",
        name.to_string_lossy(),
        std::process::id(),
        rand::random::<u64>()
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have removed bits the caller asked for (0644 certificates).
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(data)?;
        f.sync_all()
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(werr(e));
    }
    let placed = match replace {
        Replace::Allow => fs::rename(&tmp, path).map_err(werr),
        Replace::Refuse => match fs::hard_link(&tmp, path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(exists()),
            // File systems without hard links (FAT on removable media): check, then rename.
            Err(_) if fs::symlink_metadata(path).is_ok() => Err(exists()),
            Err(_) => fs::rename(&tmp, path).map_err(werr),
        },
    };
    let _ = fs::remove_file(&tmp);
    placed?;
    // Make the new directory entry durable too; failure here loses nothing already written.
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn key_files_are_created_0600_and_never_overwritten() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k.pem");
        write_atomic(&p, b"one", 0o600, Replace::Refuse).unwrap();
        assert_eq!(mode(&p), 0o600);
        let e = write_atomic(&p, b"two", 0o600, Replace::Refuse).unwrap_err();
        assert!(matches!(e, Error::Exists { .. }), "{e}");
        assert_eq!(fs::read(&p).unwrap(), b"one");
        // No temporary files are left behind.
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn certificates_are_0644_and_may_be_replaced() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.pem");
        write_atomic(&p, b"one", 0o644, Replace::Allow).unwrap();
        write_atomic(&p, b"two", 0o644, Replace::Allow).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(mode(&p), 0o644);
    }

    #[test]
    fn missing_directory_is_reported_with_the_path() {
        let e = write_atomic(
            Path::new("/nonexistent-dir/k.pem"),
            b"x",
            0o600,
            Replace::Refuse,
        )
        .unwrap_err();
        assert!(e.to_string().contains("/nonexistent-dir/k.pem"), "{e}");
    }
}
