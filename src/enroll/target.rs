//! What `--private-key` names during enrollment, and opening only its signer (no certificate yet).
//!
//! The same dispatch as [`crate::signer::open`]: `pkcs11:` → token, `handle:` → TPM persistent key,
//! a `TSS2 PRIVATE KEY` PEM → TPM key file, any other file → key file backend. Unlike `signer::open` no
//! certificate is needed or checked: at enrollment there is none yet.

use super::{DeviceArgs, Error};
use crate::signer::{self, Signer};
use std::path::PathBuf;

/// A parsed `--private-key` value. `Debug` leaves out a URI's `pin-value`.
#[derive(Clone, PartialEq, Eq)]
pub enum Target {
    /// A `pkcs11:` URI.
    Pkcs11(String),
    /// `handle:0x81……`.
    TpmHandle(String),
    /// A file (a `TSS2 PRIVATE KEY` or, for csr and install-cert, any key file).
    File(PathBuf),
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Pkcs11(u) => f
                .debug_tuple("Pkcs11")
                .field(&signer::pkcs11::redact_uri(u))
                .finish(),
            Target::TpmHandle(h) => f.debug_tuple("TpmHandle").field(h).finish(),
            Target::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

impl Target {
    /// Classifies `s` by its prefix.
    pub fn parse(s: &str) -> Target {
        if signer::pkcs11::is_pkcs11_uri(s) {
            Target::Pkcs11(s.to_string())
        } else if s.starts_with("handle:") {
            Target::TpmHandle(s.to_string())
        } else {
            Target::File(PathBuf::from(s))
        }
    }
}

/// The signing layer's options for the key `target` with the device options `dev` (no certificate).
pub fn key_options(target: &str, dev: &DeviceArgs) -> signer::KeyOptions {
    signer::KeyOptions {
        private_key: Some(target.to_string()),
        ..dev.key_options()
    }
}

/// Opens the signer for `target` with the device options `dev` (see [`signer::open_key`]).
pub fn open_signer(target: &str, dev: &DeviceArgs) -> Result<Box<dyn Signer>, Error> {
    Ok(signer::open_key(&key_options(target, dev))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_leaves_out_the_pin_value() {
        let t = Target::parse("pkcs11:token=a?pin-value=hunter2");
        assert_eq!(
            format!("{t:?}"),
            r#"Pkcs11("pkcs11:token=a?pin-value=<redacted>")"#
        );
    }

    #[test]
    fn targets_are_classified_by_prefix() {
        assert_eq!(
            Target::parse("pkcs11:token=a"),
            Target::Pkcs11("pkcs11:token=a".into())
        );
        assert_eq!(
            Target::parse("handle:0x81000001"),
            Target::TpmHandle("handle:0x81000001".into())
        );
        assert_eq!(Target::parse("k.pem"), Target::File("k.pem".into()));
    }

    #[test]
    fn missing_key_file_names_the_path() {
        let e = match open_signer("/nonexistent/k.pem", &DeviceArgs::default()) {
            Err(e) => e,
            Ok(_) => panic!("opened a missing file"),
        };
        assert!(e.to_string().contains("/nonexistent/k.pem"), "{e}");
    }
}
