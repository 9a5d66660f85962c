//! Air-gapped enrollment: generate a key on the device, sign a CSR with it, install the certificate.
//!
//! Owns the `enroll` subcommands (`keygen`, `csr`, `install-cert`), the PKCS#10 encoder and the
//! subject/SAN syntax. Every step works on a machine without network: no enroll operation ever opens a
//! network connection (the certificate request travels on removable media, the CA signs elsewhere).
//!
//! - [`args`]: the raw clap layer; [`target`]: what `--private-key` names and opening only its signer.
//! - [`names`]: `--subject` and `--san` parsing into DER; [`csr`]: the PKCS#10 request.
//! - [`keygen`]: key generation on a token (the PKCS#11 backend's key management) or in a TPM (the
//!   TPM backend's `generate`).
//! - [`install`]: certificate checks, storage beside the key; [`profile`]: the `~/.aws/config` text;
//!   [`awsconfig`]: putting that profile into an AWS config file in place.
//! - [`files`]: atomic, no-overwrite file creation with explicit modes, and atomic in-place updates.

pub mod args;
pub mod awsconfig;
pub mod csr;
pub mod files;
pub mod install;
pub mod keygen;
pub mod names;
pub mod profile;
pub mod target;

pub use args::{CsrArgs, DeviceArgs, EnrollCommand, InstallCertArgs, KeyType, KeygenArgs};

use std::path::PathBuf;

/// Failures of the enroll commands.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--subject` could not be parsed.
    #[error("invalid --subject {:?}: {reason}", crate::text::redact(input))]
    Subject {
        /// The text given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `--san` could not be parsed.
    #[error(
        "invalid --san {:?}: {reason} (use dns:NAME, uri:URI, ip:ADDRESS or email:ADDRESS)",
        crate::text::redact(input)
    )]
    San {
        /// The text given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The options do not make sense together (a usage error).
    #[error("{0}")]
    Usage(String),
    /// The device key could not be opened.
    #[error(transparent)]
    Signer(#[from] crate::signer::Error),
    /// The device key refused to sign or returned a malformed signature.
    #[error(transparent)]
    Sign(#[from] crate::signer::SignError),
    /// A device answered with something we cannot use (a key of the wrong kind, malformed data).
    #[error("{0}")]
    Unexpected(String),
    /// The CSR we built does not verify with the device's public key: the device signed with another key
    /// or returned a malformed signature.
    #[error(
        "the certificate request signed by {key} does not verify ({reason}); the device returned a \
         signature that does not match its public key"
    )]
    CsrSelfCheck {
        /// The key.
        key: String,
        /// What the verifier said.
        reason: String,
    },
    /// A certificate file could not be read or parsed.
    #[error("cannot use certificate file {}", crate::text::path(path))]
    Certificate {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: crate::certs::Error,
    },
    /// The chain check failed.
    #[error(
        "certificate chain for {}: {source}; check --intermediates",
        crate::text::path(path)
    )]
    Chain {
        /// The leaf's file.
        path: PathBuf,
        /// Why.
        #[source]
        source: crate::certs::Error,
    },
    /// A file we must create already exists (keys and certificates are never silently replaced).
    #[error("{} already exists; {hint}", crate::text::path(path))]
    Exists {
        /// The file.
        path: PathBuf,
        /// How to proceed.
        hint: String,
    },
    /// A file could not be written.
    #[error("cannot write {}", crate::text::path(path))]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be read.
    #[error("cannot read {}", crate::text::path(path))]
    Read {
        /// The file.
        path: PathBuf,
        /// Why (missing, not a regular file, over its size cap, …).
        #[source]
        source: crate::userfile::Error,
    },
    /// Standard output could not be written.
    #[error("cannot write to standard output")]
    Output(#[source] std::io::Error),
    /// The PKCS#11 backend could not open the token.
    #[error(transparent)]
    Pkcs11Backend(#[from] crate::signer::pkcs11::Error),
    /// A TPM operation failed.
    #[cfg(feature = "tpm")]
    #[error(transparent)]
    Tpm(#[from] crate::signer::tpm::Error),
    /// TPM targets in a build without TPM support.
    #[error(
        "{0} is a TPM target, but this build has no TPM support (rebuild with the `tpm` feature)"
    )]
    TpmUnsupported(String),
}

/// As [`Error::is_usage`] says.
impl rolesanywhere_core::Classify for Error {
    fn class(&self) -> rolesanywhere_core::ErrorClass {
        if self.is_usage() {
            rolesanywhere_core::ErrorClass::Configuration
        } else {
            rolesanywhere_core::ErrorClass::Operational
        }
    }
}

impl Error {
    /// True for usage and configuration errors (exit code 2: bad flags, files, certificates, a key that
    /// is not the certificate's, an object or file that already exists); false when a device, the
    /// disk or the output failed (exit code 1). Follows the signing commands' classification.
    pub fn is_usage(&self) -> bool {
        match self {
            Error::Subject { .. }
            | Error::San { .. }
            | Error::Usage(_)
            | Error::Exists { .. }
            | Error::Certificate { .. }
            | Error::Chain { .. }
            | Error::Read { .. }
            | Error::TpmUnsupported(_) => true,
            // The backends' own classification, as for the signing commands.
            Error::Pkcs11Backend(p) => {
                rolesanywhere_core::Classify::class(p)
                    == rolesanywhere_core::ErrorClass::Configuration
            }
            #[cfg(feature = "tpm")]
            Error::Tpm(t) => {
                rolesanywhere_core::Classify::class(t)
                    == rolesanywhere_core::ErrorClass::Configuration
            }
            Error::Signer(s) => s.is_configuration(),
            Error::Sign(s) => s.class() == rolesanywhere_core::ErrorClass::Configuration,
            _ => false,
        }
    }
}

/// Runs one enroll command; the command's output (public key, CSR with `--out -`, profile text) goes to
/// `out`, warnings to stderr.
pub fn run(cmd: EnrollCommand, out: &mut dyn std::io::Write) -> Result<(), Error> {
    match cmd {
        EnrollCommand::Keygen(a) => keygen::run(&a, out),
        EnrollCommand::Csr(a) => csr::run(&a, out),
        EnrollCommand::InstallCert(a) => install::run(&a, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_class_follows_the_signing_commands() {
        let usage = [
            Error::Usage("x".into()),
            Error::Subject {
                input: "x".into(),
                reason: "y".into(),
            },
            Error::Signer(crate::signer::Error::CertificateKeyMismatch {
                key: "k".into(),
                key_fp: "a".into(),
                certificate: "c".into(),
                cert_fp: "b".into(),
            }),
            Error::Exists {
                path: "k".into(),
                hint: String::new(),
            },
        ];
        for e in usage {
            assert!(e.is_usage(), "{e}");
        }
        let operational = [
            Error::Output(std::io::Error::other("closed")),
            Error::Unexpected("x".into()),
            Error::CsrSelfCheck {
                key: "k".into(),
                reason: "r".into(),
            },
        ];
        for e in operational {
            assert!(!e.is_usage(), "{e}");
        }
    }

    /// A module or token that is not there, a bad TCTI: exit 2 as for `credential-process`; a
    /// wrong PIN stays operational.
    #[test]
    fn backend_configuration_mistakes_are_usage_errors() {
        use crate::signer::pkcs11::{CallError, Error as P11};
        let no_module = || P11::NoModule {
            tried: "/nonexistent.so".into(),
            hint: "h".into(),
        };
        assert!(Error::Pkcs11Backend(no_module()).is_usage());
        assert!(Error::Signer(no_module().into()).is_usage());
        #[cfg(feature = "tpm")]
        assert!(
            Error::Tpm(crate::signer::tpm::Error::TctiSyntax {
                tcti: "bogus:x".into(),
                reason: "r".into(),
            })
            .is_usage()
        );
        let wrong_pin = P11::Login {
            token: "ra".into(),
            call: CallError {
                function: "C_Login",
                rv: cryptoki_sys::CKR_PIN_INCORRECT,
            },
            hint: String::new(),
        };
        assert!(!Error::Pkcs11Backend(wrong_pin).is_usage());
    }
}
