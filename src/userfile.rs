//! Reading the files a user names: certificates, CA bundles, key files and secret files.
//!
//! Owns the two rules every such read follows. Only regular files are read: a FIFO, a device, a
//! socket or a directory is refused, without blocking and without reading from it. And no more than
//! the cap of the kind of file ([`Kind::max_len`]) is read, so `/dev/zero`, a multi-gigabyte file or
//! a file that keeps growing cannot exhaust memory.
//!
//! The file is opened with `O_NONBLOCK` (opening a FIFO that has no writer blocks otherwise) and then
//! checked with `fstat` on the open descriptor, so what is checked is what is read: there is no window
//! between a `stat` of the path and the `open` in which the path can be swapped. `/dev/stdin`, pipes
//! and process substitution (`<(…)`) are therefore not inputs for these flags; `/dev/stdin` works
//! only when stdin is redirected from a regular file. Parses nothing; the caller wraps the error with
//! what the file was for (the error names neither the path nor any content).

use std::fs::File;
use std::io::Read as _;
use std::path::Path;
use zeroize::Zeroizing;

/// What a file is expected to hold; decides its size cap and how it is named in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--certificate`, `--intermediates`: a PEM file of at most a hundred certificates.
    Certificates,
    /// `AWS_CA_BUNDLE` / `SSL_CERT_FILE`: trust roots (system bundles hold about 150).
    CaBundle,
    /// `--private-key`: a key file, possibly with its certificates (PEM, DER, PKCS#12, TSS2).
    PrivateKey,
    /// A PIN or password file: only its first line is used.
    Secret,
    /// Another program's configuration file read for a hint (`SOFTHSM2_CONF`).
    Config,
    /// A policy document (`doctor --trust-policy`, `--session-policy`); IAM's limits are a few
    /// thousand characters.
    Policy,
    /// A CRL (`doctor --crl`), PEM or DER.
    Crl,
}

impl Kind {
    /// Largest file of this kind that is read, in bytes.
    pub fn max_len(self) -> u64 {
        match self {
            Kind::Certificates => 2 << 20,
            Kind::CaBundle => 8 << 20,
            Kind::PrivateKey => 1 << 20,
            Kind::Secret => crate::secret::MAX_FILE_LEN,
            Kind::Config => 1 << 20,
            Kind::Policy => 1 << 20,
            Kind::Crl => 16 << 20,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Certificates => "a certificate file",
            Kind::CaBundle => "a CA bundle",
            Kind::PrivateKey => "a private key file",
            Kind::Secret => "a PIN or password file",
            Kind::Config => "a configuration file",
            Kind::Policy => "a policy document",
            Kind::Crl => "a CRL file",
        }
    }

    fn hint(self) -> &'static str {
        match self {
            Kind::Secret => "point to a file holding only the secret",
            Kind::PrivateKey => "point to the key file itself",
            Kind::Certificates | Kind::CaBundle => "point to a PEM file of certificates",
            Kind::Config => "point to the configuration file itself",
            Kind::Policy => "point to the policy's JSON file",
            Kind::Crl => "point to the CRL file (PEM or DER)",
        }
    }
}

/// Why a file was not read. The caller's error names the file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Opening or reading failed (no such file, permission denied, …).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Not a regular file.
    #[error("it is {found}, not a regular file; {}", not_regular_hint(found))]
    NotRegular {
        /// What was found: `a FIFO (named pipe)`, `a character device`, `a directory`, ….
        found: &'static str,
    },
    /// Larger than the cap of its kind.
    #[error(
        "it {}, more than the {} bytes ({}) accepted for {}; {}",
        match size { Some(s) => format!("is {s} bytes"), None => "grew while it was read".into() },
        kind.max_len(),
        mib(kind.max_len()),
        kind.name(),
        kind.hint()
    )]
    TooLarge {
        /// Its size when opened; `None` when it grew past the cap while being read.
        size: Option<u64>,
        /// What it was read as.
        kind: Kind,
    },
}

fn not_regular_hint(found: &str) -> &'static str {
    if found == "a directory" {
        "give the file in it"
    } else {
        "pipes, devices and /dev/stdin are not read here: write the data to a file and give its path"
    }
}

fn mib(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}

/// Reads the regular file at `path` (symbolic links are followed), at most `kind`'s cap. The buffer
/// is wiped on drop: key and secret files hold what must not linger in freed memory.
pub fn read(path: &Path, kind: Kind) -> Result<Zeroizing<Vec<u8>>, Error> {
    let file = open_regular(path)?;
    let size = file.metadata()?.len();
    if size > kind.max_len() {
        return Err(Error::TooLarge {
            size: Some(size),
            kind,
        });
    }
    read_capped(file, size, kind)
}

/// Checks that `path` is a regular file without reading it (for a PKCS#11 module, which the dynamic
/// loader opens by path: a FIFO would block `dlopen` forever).
pub fn check_regular(path: &Path) -> Result<(), Error> {
    open_regular(path).map(drop)
}

/// Opens `path` for reading without blocking and refuses anything but a regular file, judged by
/// `fstat` of the descriptor that is then read.
fn open_regular(path: &Path) -> Result<File, Error> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // O_NONBLOCK: opening a FIFO without a writer returns at once instead of waiting for one.
        // O_NOCTTY: naming a terminal device must not make it our controlling terminal.
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = match options.open(path) {
        Ok(f) => f,
        // A socket cannot be opened (ENXIO, "no such device or address"): say what it is instead.
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
            return Err(match std::fs::metadata(path) {
                Ok(m) if !m.is_file() => Error::NotRegular {
                    found: describe(&m.file_type()),
                },
                _ => Error::Io(e),
            });
        }
        Err(e) => return Err(Error::Io(e)),
    };
    let file_type = file.metadata()?.file_type();
    if !file_type.is_file() {
        return Err(Error::NotRegular {
            found: describe(&file_type),
        });
    }
    Ok(file)
}

fn describe(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Reads `file` to its end, failing once more than `kind`'s cap has been read. The buffer starts at
/// the size `fstat` reported plus one byte (to see growth) and, when it must grow, is copied into a
/// new wiped-on-drop buffer: a `Vec` growing in place would leave unwiped copies behind.
fn read_capped(mut file: File, size: u64, kind: Kind) -> Result<Zeroizing<Vec<u8>>, Error> {
    let cap = kind.max_len();
    let limit = usize::try_from(cap + 1).unwrap_or(usize::MAX);
    let start = usize::try_from(size + 1).unwrap_or(limit).min(limit);
    let mut buf = Zeroizing::new(vec![0u8; start]);
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            if filled >= limit {
                return Err(Error::TooLarge { size: None, kind });
            }
            let mut bigger = Zeroizing::new(vec![0u8; (filled * 2).max(4096).min(limit)]);
            bigger[..filled].copy_from_slice(&buf[..filled]);
            buf = bigger;
        }
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Io(e)),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .expect("mkfifo (coreutils) must be installed");
        assert!(status.success());
    }

    /// Runs `f` on another thread and fails if it has not returned within two seconds (a FIFO read
    /// that blocks would otherwise hang the test run).
    fn within_2s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(2))
            .expect("blocked on a file it should have refused at once")
    }

    #[test]
    fn reads_a_regular_file_and_follows_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"hello\n").unwrap();
        assert_eq!(&read(&p, Kind::Secret).unwrap()[..], b"hello\n");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert_eq!(&read(&link, Kind::Certificates).unwrap()[..], b"hello\n");
        std::fs::write(&p, b"").unwrap();
        assert!(read(&p, Kind::PrivateKey).unwrap().is_empty());
    }

    #[test]
    fn a_fifo_is_refused_at_once_without_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fifo");
        mkfifo(&p);
        for kind in [
            Kind::Certificates,
            Kind::CaBundle,
            Kind::PrivateKey,
            Kind::Secret,
        ] {
            let q = p.clone();
            let e = within_2s(move || read(&q, kind)).unwrap_err();
            assert!(
                matches!(e, Error::NotRegular { found } if found.contains("FIFO")),
                "{e}"
            );
            assert!(e.to_string().contains("write the data to a file"), "{e}");
        }
        let q = p.clone();
        within_2s(move || check_regular(&q)).unwrap_err();
    }

    #[test]
    fn devices_directories_and_sockets_are_refused_without_reading() {
        let start = Instant::now();
        let e = read(Path::new("/dev/zero"), Kind::Certificates).unwrap_err();
        assert_eq!(
            e.to_string(),
            "it is a character device, not a regular file; pipes, devices and /dev/stdin are not \
             read here: write the data to a file and give its path"
        );
        assert!(start.elapsed() < Duration::from_secs(1));
        assert!(check_regular(Path::new("/dev/null")).is_err());

        let dir = tempfile::tempdir().unwrap();
        let e = read(dir.path(), Kind::PrivateKey).unwrap_err();
        assert_eq!(
            e.to_string(),
            "it is a directory, not a regular file; give the file in it"
        );

        let sock = dir.path().join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let e = read(&sock, Kind::Secret).unwrap_err();
        assert!(
            matches!(e, Error::NotRegular { found: "a socket" }),
            "{e:?}"
        );
    }

    #[test]
    fn files_over_the_cap_are_refused_by_size_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        for kind in [
            Kind::Certificates,
            Kind::CaBundle,
            Kind::PrivateKey,
            Kind::Secret,
            Kind::Config,
        ] {
            let f = File::create(&p).unwrap();
            // Sparse: the size is what counts, nothing is written or read.
            f.set_len(kind.max_len()).unwrap();
            assert_eq!(read(&p, kind).unwrap().len() as u64, kind.max_len());
            f.set_len(kind.max_len() + 1).unwrap();
            let e = read(&p, kind).unwrap_err();
            assert!(
                matches!(e, Error::TooLarge { size: Some(s), .. } if s == kind.max_len() + 1),
                "{e}"
            );
        }
        let f = File::create(&p).unwrap();
        f.set_len(10 << 30).unwrap();
        let e = read(&p, Kind::PrivateKey).unwrap_err();
        assert_eq!(
            e.to_string(),
            "it is 10737418240 bytes, more than the 1048576 bytes (1 MiB) accepted for a private \
             key file; point to the key file itself"
        );
    }

    #[test]
    fn a_file_that_grows_past_its_stat_size_is_read_to_the_cap_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("grown");
        // As if fstat had said 0 bytes: growth within the cap is read, past it is refused.
        std::fs::write(&p, vec![b'x'; 5000]).unwrap();
        let got = read_capped(File::open(&p).unwrap(), 0, Kind::Secret).unwrap();
        assert_eq!(got.len(), 5000);
        std::fs::write(&p, vec![b'x'; (Kind::Secret.max_len() + 1) as usize]).unwrap();
        let e = read_capped(File::open(&p).unwrap(), 0, Kind::Secret).unwrap_err();
        assert!(matches!(e, Error::TooLarge { size: None, .. }), "{e}");
        assert!(
            e.to_string()
                .starts_with("it grew while it was read, more than"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_file_is_an_io_error() {
        let e = read(Path::new("/nonexistent/x"), Kind::Secret).unwrap_err();
        assert!(
            matches!(&e, Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound),
            "{e}"
        );
    }
}
