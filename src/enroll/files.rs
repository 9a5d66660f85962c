//! Creating files atomically with an explicit mode.
//!
//! The content goes to a temporary file in the target's directory (created exclusively, with the final
//! mode from the start, so a key is never readable by others even briefly), is synced, and is then
//! moved into place. Without [`Replace::Allow`] the move is a hard link, which fails if the target
//! exists, so an existing key file is never overwritten even by a concurrent writer.
//! [`update_atomic`] replaces a file the user arranged (the AWS config file) the same way, keeping its
//! mode, owner and group, and a symbolic link to it.

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
    let path = match replace {
        Replace::Allow => match replace_target(path).map_err(werr)? {
            Target::File(p) => p,
            Target::Stream => return write_through(path, data).map_err(werr),
        },
        Replace::Refuse => path.to_path_buf(),
    };
    let path = path.as_path();
    let tmp = write_temp(path, data, mode, None).map_err(werr)?;
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
    sync_dir(path);
    Ok(())
}

/// Where replacing `path` writes.
enum Target {
    /// A regular file (new, or replaced atomically): the path of the file itself, past any
    /// symbolic links, so a link the user arranged stays a link.
    File(PathBuf),
    /// A FIFO or a character device (`/dev/stdout` on a pipe or terminal, `/dev/null`): written
    /// through, since replacing it would put a regular file where the system has a device.
    Stream,
}

/// Decides how `path` may be replaced: regular files atomically, streams by writing through, and
/// nothing else (a directory, a block device, a socket, a link to nothing) at all.
fn replace_target(path: &Path) -> std::io::Result<Target> {
    use std::os::unix::fs::FileTypeExt as _;
    // `metadata` follows links the way open(2) does, including the kernel's /proc/self/fd links.
    match fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(Target::File(resolve_links(path)?)),
        Ok(m) if m.file_type().is_fifo() || m.file_type().is_char_device() => Ok(Target::Stream),
        Ok(m) => Err(std::io::Error::other(format!(
            "it is {}, not a file to write into",
            file_kind(&m.file_type())
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if fs::symlink_metadata(path).is_ok() {
                Err(std::io::Error::other(
                    "it is a symbolic link to a file that does not exist; give the target path",
                ))
            } else {
                Ok(Target::File(path.to_path_buf()))
            }
        }
        Err(e) => Err(e),
    }
}

/// "a directory", "a block device", … for messages.
fn file_kind(t: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if t.is_dir() {
        "a directory"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Writes `data` into an existing FIFO or character device (no create, no truncate).
fn write_through(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut f = OpenOptions::new().write(true).open(path)?;
    f.write_all(data)?;
    f.flush()
}

/// Creates `dir` and its missing parents with mode 0700 (what a directory holding credentials or
/// keys gets); nothing when it exists.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    if dir.exists() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// The directory `path` is in (`.` for a bare file name).
pub(crate) fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Makes the directory entry of `path` durable; failure here loses nothing already written.
fn sync_dir(path: &Path) {
    if let Ok(d) = fs::File::open(dir_of(path)) {
        let _ = d.sync_all();
    }
}

/// Writes `data` to a new temporary file beside `path`, created exclusively with `mode` from the
/// start (and owned by `owner` = uid, gid when set), synced; returns its path. Removed again on failure.
fn write_temp(
    path: &Path,
    data: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> std::io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("the path has no file name"))?;
    let tmp = dir_of(path).join(format!(
        "{}{}-{:016x}",
        temp_prefix(name),
        std::process::id(),
        getrandom::u64().map_err(std::io::Error::other)?
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // Only a file that would not be theirs anyway is handed to the old owner and group (a
        // chown fails unless we are root or in that group, and then the file is left as it was).
        if let Some((uid, gid)) = owner {
            use std::os::unix::fs::MetadataExt as _;
            let m = f.metadata()?;
            if (m.uid(), m.gid()) != (uid, gid) {
                std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
            }
        }
        // The umask may have removed bits the caller asked for (0644 certificates); a chown may
        // have cleared set-id bits.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(data)?;
        f.sync_all()
    })();
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Follows symbolic links from `path` to the file they finally name (which need not exist).
pub(crate) fn resolve_links(path: &Path) -> std::io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    // The kernel's own limit on links followed in one lookup.
    for _ in 0..40 {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = fs::read_link(&p)?;
                p = if target.is_absolute() {
                    target
                } else {
                    dir_of(&p).join(target)
                };
            }
            _ => return Ok(p),
        }
    }
    Err(std::io::Error::other("too many levels of symbolic links"))
}

/// Replaces the content of a file the user owns and may have arranged (`~/.aws/config`) atomically,
/// changing nothing else about it: a symbolic link at `path` stays and the file it names is
/// replaced; an existing file keeps its mode, owner and group; a new file gets `new_mode` (a
/// missing parent directory is created 0700). Returns the file actually written.
pub fn update_atomic(path: &Path, data: &[u8], new_mode: u32) -> Result<PathBuf, Error> {
    replace_file(path, data, |old| old.unwrap_or(new_mode))
        .map_err(|(path, source)| Error::Write { path, source })
}

/// [`update_atomic`] with the mode chosen by `mode`, given the existing file's mode (`None` for a
/// new file); for callers with their own error type, the failure names the path it concerns.
/// `update` uses it to narrow a credentials file to its owner (never to widen it).
pub(crate) fn replace_file(
    path: &Path,
    data: &[u8],
    mode: impl FnOnce(Option<u32>) -> u32,
) -> Result<PathBuf, (PathBuf, std::io::Error)> {
    use std::os::unix::fs::MetadataExt as _;
    let werr = |path: &Path| {
        let path = path.to_path_buf();
        move |source| (path, source)
    };
    let target = resolve_links(path).map_err(werr(path))?;
    let (mode, owner) = match fs::metadata(&target) {
        Ok(m) if !m.is_file() => {
            return Err(werr(&target)(std::io::Error::other("not a regular file")));
        }
        Ok(m) => (mode(Some(m.mode() & 0o7777)), Some((m.uid(), m.gid()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = dir_of(&target);
            create_private_dir(&dir).map_err(werr(&dir))?;
            (mode(None), None)
        }
        Err(e) => return Err(werr(&target)(e)),
    };
    let tmp = write_temp(&target, data, mode, owner).map_err(werr(&target))?;
    if let Err(e) = fs::rename(&tmp, &target) {
        let _ = fs::remove_file(&tmp);
        return Err(werr(&target)(e));
    }
    sync_dir(&target);
    Ok(target)
}

/// The prefix of the temporary files [`write_temp`] makes beside `name` (`.NAME.tmp-`).
pub(crate) fn temp_prefix(name: &std::ffi::OsStr) -> String {
    format!(".{}.tmp-", name.to_string_lossy())
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

    /// Issue 14, item 6: replacing keeps what the user or the system put at the path: a symbolic
    /// link stays a link (its target is replaced), a FIFO or device is written through, and a
    /// directory or a dangling link is refused.
    #[test]
    fn replacing_respects_links_fifos_and_devices_issue_14() {
        use std::os::unix::fs::FileTypeExt as _;
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real.pem");
        fs::write(&real, "old").unwrap();
        let link = d.path().join("link.pem");
        std::os::unix::fs::symlink("real.pem", &link).unwrap();
        write_atomic(&link, b"new", 0o644, Replace::Allow).unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read(&real).unwrap(), b"new");

        let fifo = d.path().join("fifo");
        let st = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(st.success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || fs::read(fifo).unwrap())
        };
        write_atomic(&fifo, b"through the fifo", 0o644, Replace::Allow).unwrap();
        assert_eq!(reader.join().unwrap(), b"through the fifo");
        assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());

        write_atomic(Path::new("/dev/null"), b"x", 0o644, Replace::Allow).unwrap();
        assert!(
            fs::symlink_metadata("/dev/null")
                .unwrap()
                .file_type()
                .is_char_device()
        );

        let text = |e: Error| crate::cli::error_text(&e);
        let e = text(write_atomic(d.path(), b"x", 0o644, Replace::Allow).unwrap_err());
        assert!(e.contains("a directory"), "{e}");
        let dangling = d.path().join("dangling.pem");
        std::os::unix::fs::symlink("missing.pem", &dangling).unwrap();
        let e = text(write_atomic(&dangling, b"x", 0o644, Replace::Allow).unwrap_err());
        assert!(e.contains("does not exist"), "{e}");
        assert!(!d.path().join("missing.pem").exists());
        // Nothing left behind but what the test made.
        let mut names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["dangling.pem", "fifo", "link.pem", "real.pem"]);
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

    #[test]
    fn update_keeps_the_mode_of_an_existing_file_and_creates_new_ones_0600() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config");
        fs::write(&p, "old").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(update_atomic(&p, b"new", 0o600).unwrap(), p);
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert_eq!(mode(&p), 0o640);
        // A new file in a missing directory: the directory 0700, the file 0600.
        let fresh = d.path().join(".aws/config");
        update_atomic(&fresh, b"x", 0o600).unwrap();
        assert_eq!(mode(&fresh), 0o600);
        assert_eq!(mode(&d.path().join(".aws")), 0o700);
        assert_eq!(
            fs::read_dir(d.path()).unwrap().count(),
            2,
            "temporary files left"
        );
    }

    #[test]
    fn update_through_a_symlink_replaces_the_target_and_keeps_the_link() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("dotfiles")).unwrap();
        let real = d.path().join("dotfiles/aws-config");
        fs::write(&real, "old").unwrap();
        let link = d.path().join("config");
        std::os::unix::fs::symlink("dotfiles/aws-config", &link).unwrap();
        assert_eq!(update_atomic(&link, b"new", 0o600).unwrap(), real);
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read(&real).unwrap(), b"new");
        assert_eq!(fs::read_dir(d.path().join("dotfiles")).unwrap().count(), 1);
    }
}
