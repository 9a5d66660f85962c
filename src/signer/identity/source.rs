//! What `--private-key` names: the one key-source type of every command (signing and enrollment).
//!
//! Classified by prefix only, without touching the file system: a `pkcs11:` URI (any case, leading
//! blanks ignored, as [`is_pkcs11_uri`] says), `handle:` (a TPM persistent key), or a file. Whether a
//! file is a TPM key file or a key file for the file backend is its content's to say (a PEM whose
//! first block is `TSS2 PRIVATE KEY`, see [`is_tss2_pem`]); enrollment also names files that do not
//! exist yet, so that is decided where the file is read.

use super::{Error, KeyOptions};
use crate::signer::pkcs11::{is_pkcs11_uri, redact_uri};
use std::path::PathBuf;

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

/// True for a PEM whose first block is `TSS2 PRIVATE KEY`.
pub fn is_tss2_pem(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&data[..data.len().min(4096)]);
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

    #[test]
    fn tss2_pem_is_told_by_its_first_block() {
        assert!(is_tss2_pem(
            b"\n-----BEGIN TSS2 PRIVATE KEY-----\nAA==\n-----END TSS2 PRIVATE KEY-----\n"
        ));
        assert!(!is_tss2_pem(b"-----BEGIN PRIVATE KEY-----\n"));
        assert!(!is_tss2_pem(b""));
    }
}
