//! What `--private-key` names: the one key-source type of every command (signing and enrollment).
//!
//! Classified by prefix only, without touching the file system: a `pkcs11:` URI (any case, leading
//! blanks ignored, as [`is_pkcs11_uri`] says), `handle:` (a TPM persistent key), or a file. Whether a
//! file is a TPM key file or a key file for the file backend is its content's to say (a PEM whose
//! first block is `TSS2 PRIVATE KEY`, see [`is_tss2_pem`]); enrollment also names files that do not
//! exist yet, so that is decided where the file is read. [`tpm_key`] peeks at a file to tell the
//! same ahead of time, for the program that must run another one for a TPM key.

use super::{Error, KeyOptions};
use crate::signer::pkcs11::{is_pkcs11_uri, redact_uri};
use std::path::{Path, PathBuf};

/// A parsed `--private-key` (or, for a key found through its certificate, `--certificate`) value.
/// `Debug` leaves out a URI's `pin-value`.
#[derive(Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A `pkcs11:` URI.
    Pkcs11(String),
    /// `handle:0x81……`: a TPM persistent key.
    TpmHandle(String),
    /// A file: a `TSS2 PRIVATE KEY` (TPM key file) or any key file of the file backend.
    File(PathBuf),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Pkcs11(u) => f.debug_tuple("Pkcs11").field(&redact_uri(u)).finish(),
            KeySource::TpmHandle(h) => f.debug_tuple("TpmHandle").field(h).finish(),
            KeySource::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

impl KeySource {
    /// Classifies `s` by its prefix.
    pub fn parse(s: &str) -> KeySource {
        if is_pkcs11_uri(s) {
            KeySource::Pkcs11(s.to_string())
        } else if s.starts_with("handle:") {
            KeySource::TpmHandle(s.to_string())
        } else {
            KeySource::File(PathBuf::from(s))
        }
    }

    /// The key `opts` select: `--private-key`, or without it the token of a `pkcs11:` certificate.
    pub fn from_options(opts: &KeyOptions) -> Result<KeySource, Error> {
        match (opts.private_key.as_deref(), opts.certificate.as_deref()) {
            (Some(k), _) => Ok(KeySource::parse(k)),
            (None, Some(c)) if is_pkcs11_uri(c) => Ok(KeySource::Pkcs11(c.to_string())),
            (None, _) => Err(Error::NoPrivateKey),
        }
    }
}

/// The TPM key `opts` select, named as messages name it, told without opening anything: a
/// `handle:` by its prefix, a key file by its first 4 KiB (a `TSS2 PRIVATE KEY` PEM, as
/// [`is_tss2_pem`] says of the whole file). `None` for a `pkcs11:` key, any other key file, no key,
/// or a file that cannot be read here: opening it later reports why. This is how
/// `rolesanywhere-agent` decides, before it does anything, to run `rolesanywhere-agent-tpm`.
pub fn tpm_key(opts: &KeyOptions) -> Option<String> {
    match KeySource::from_options(opts).ok()? {
        KeySource::TpmHandle(h) => Some(crate::text::arg(&h)),
        KeySource::File(p) => is_tss2_file(&p).then(|| crate::text::path(&p)),
        KeySource::Pkcs11(_) => None,
    }
}

/// True when `path` is a regular file that starts as a `TSS2 PRIVATE KEY` PEM. Opened without
/// blocking and checked to be a regular file before a byte is read: a FIFO or a device named as a
/// key must not hang or be drained here.
fn is_tss2_file(path: &Path) -> bool {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    else {
        return false;
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return false;
    }
    let mut head = Vec::with_capacity(TSS2_HEAD);
    file.take(TSS2_HEAD as u64).read_to_end(&mut head).is_ok() && is_tss2_pem(&head)
}

/// How much of a file [`is_tss2_pem`] looks at.
const TSS2_HEAD: usize = 4096;

/// True for a PEM whose first block is `TSS2 PRIVATE KEY`.
pub fn is_tss2_pem(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&data[..data.len().min(TSS2_HEAD)]);
    text.trim_start()
        .starts_with("-----BEGIN TSS2 PRIVATE KEY-----")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_leaves_out_the_pin_value() {
        let t = KeySource::parse("pkcs11:token=a?pin-value=hunter2");
        assert_eq!(
            format!("{t:?}"),
            r#"Pkcs11("pkcs11:token=a?pin-value=<redacted>")"#
        );
    }

    #[test]
    fn sources_are_classified_by_prefix() {
        assert_eq!(
            KeySource::parse("pkcs11:token=a"),
            KeySource::Pkcs11("pkcs11:token=a".into())
        );
        assert_eq!(
            KeySource::parse("  PKCS11:token=a"),
            KeySource::Pkcs11("  PKCS11:token=a".into())
        );
        assert_eq!(
            KeySource::parse("handle:0x81000001"),
            KeySource::TpmHandle("handle:0x81000001".into())
        );
        assert_eq!(KeySource::parse("k.pem"), KeySource::File("k.pem".into()));
    }

    #[test]
    fn a_token_certificate_alone_names_the_token_key() {
        let opts = KeyOptions {
            certificate: Some("pkcs11:token=a;object=c".into()),
            ..Default::default()
        };
        assert!(matches!(
            KeySource::from_options(&opts),
            Ok(KeySource::Pkcs11(_))
        ));
        let file_cert = KeyOptions {
            certificate: Some("c.pem".into()),
            ..Default::default()
        };
        assert!(matches!(
            KeySource::from_options(&file_cert),
            Err(Error::NoPrivateKey)
        ));
    }

    fn key(private_key: &str) -> KeyOptions {
        KeyOptions {
            private_key: Some(private_key.into()),
            certificate: Some("c.pem".into()),
            ..Default::default()
        }
    }

    #[test]
    fn tpm_keys_are_told_by_handle_prefix_and_file_content() {
        let dir = tempfile::tempdir().unwrap();
        let tss2 = dir.path().join("k.tss2");
        std::fs::write(
            &tss2,
            "\n\n-----BEGIN TSS2 PRIVATE KEY-----\nAA==\n-----END TSS2 PRIVATE KEY-----\n",
        )
        .unwrap();
        let pkcs8 = dir.path().join("k.pem");
        std::fs::write(&pkcs8, "-----BEGIN PRIVATE KEY-----\nAA==\n").unwrap();
        // The TSS2 block after 4 KiB of something else: not a TPM key, as when the file is opened.
        let late = dir.path().join("late.pem");
        std::fs::write(
            &late,
            format!("{}\n-----BEGIN TSS2 PRIVATE KEY-----\n", "#".repeat(4096)),
        )
        .unwrap();

        assert_eq!(
            tpm_key(&key("handle:0x81000001")).as_deref(),
            Some("handle:0x81000001")
        );
        assert_eq!(
            tpm_key(&key(tss2.to_str().unwrap())),
            Some(crate::text::path(&tss2))
        );
        for not_tpm in [
            pkcs8.to_str().unwrap(),
            late.to_str().unwrap(),
            "pkcs11:token=a;object=k?pin-value=1234",
            "/nonexistent/k.tss2",
            dir.path().to_str().unwrap(),
            "",
        ] {
            assert_eq!(tpm_key(&key(not_tpm)), None, "{not_tpm}");
        }
        let token_only = KeyOptions {
            certificate: Some("pkcs11:token=a;object=c".into()),
            ..Default::default()
        };
        assert_eq!(tpm_key(&token_only), None);
        assert_eq!(tpm_key(&KeyOptions::default()), None);
    }

    /// A FIFO named as the key is neither waited on nor read: a writer that never comes must not
    /// hang the classification, and its data belongs to whoever opens the key.
    #[test]
    fn tpm_key_does_not_block_on_a_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("key.fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        assert_eq!(tpm_key(&key(fifo.to_str().unwrap())), None);
    }

    #[test]
    fn tss2_pem_is_told_by_its_first_block() {
        assert!(is_tss2_pem(
            b"\n-----BEGIN TSS2 PRIVATE KEY-----\nAA==\n-----END TSS2 PRIVATE KEY-----\n"
        ));
        assert!(!is_tss2_pem(b"-----BEGIN PRIVATE KEY-----\n"));
        assert!(!is_tss2_pem(b""));
    }
}
