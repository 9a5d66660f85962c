//! Signing backends behind one small trait.
//!
//! A backend holds a private key somewhere (a key file, a PKCS#11 token, a TPM) and signs a
//! [`Digest`](rolesanywhere_core::Digest) that only hashing can make. Output is always in one canonical
//! form: PKCS#1 v1.5 signature bytes for RSA, DER `SEQUENCE { r, s }` for ECDSA. Conversions from
//! device formats live in [`encoding`]. Construction does all I/O (loading, login, key lookup) so
//! failures surface before any network call.
//!
//! The port itself ([`Signer`], [`SignError`]) and [`encoding`] belong to the signing core
//! (`rolesanywhere-core`) and are re-exported here; this module's [`Error`] is the open-time error,
//! and a backend's signing failure reaches the core as a [`SignError`] carrying it, classified by
//! [`Error::is_configuration`].

mod asn1;
pub mod file;
pub mod identity;
pub mod pkcs11;
#[cfg(feature = "tpm")]
pub mod tpm;

pub use identity::{Identity, KeyOptions, open, open_key};
pub use rolesanywhere_core::encoding;
pub use rolesanywhere_core::{Classify, ErrorClass, SignError, Signer};

use crate::keys::PublicKey;

/// Failures of signing backends.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A key file could not be read, decrypted or understood.
    #[error(transparent)]
    File(#[from] file::Error),
    /// A PKCS#11 token failed or the objects were not found.
    #[error(transparent)]
    Pkcs11(#[from] pkcs11::Error),
    /// A TPM failed or refused.
    #[cfg(feature = "tpm")]
    #[error(transparent)]
    Tpm(#[from] tpm::Error),
    /// A `TSS2 PRIVATE KEY` or `handle:` key was given to a build without TPM support.
    #[cfg(not(feature = "tpm"))]
    #[error("{0} is a TPM key, but this build has no TPM support (rebuild with the `tpm` feature)")]
    TpmUnsupported(String),
    /// The private key is not the one the certificate was issued for.
    #[error(
        "private key {key} ({key_fp}) does not match certificate {certificate} ({cert_fp}); \
         check that --private-key and --certificate belong together"
    )]
    CertificateKeyMismatch {
        /// The key's description.
        key: String,
        /// Fingerprint of the key's public half.
        key_fp: String,
        /// The certificate's description (path or URI, subject).
        certificate: String,
        /// Fingerprint of the certificate's public key.
        cert_fp: String,
    },
    /// A certificate could not be loaded or the chain is unusable.
    #[error(transparent)]
    Certificate(#[from] crate::certs::Error),
    /// No `--private-key` was given and the certificate is not on a token.
    #[error(
        "no private key given: use --private-key with a key file, a pkcs11: URI or a TPM handle:0x81…"
    )]
    NoPrivateKey,
    /// No certificate was given (and the key source has none).
    #[error("no certificate given: use --certificate with a PEM file or a pkcs11: URI")]
    NoCertificate,
    /// A secret (PIN, password) could not be obtained.
    #[error(transparent)]
    Secret(#[from] crate::secret::Error),
    /// A signature encoding failed (a device returned something malformed).
    #[error("the signing device returned a malformed signature")]
    Encoding(#[from] encoding::Error),
}

/// As [`Error::is_configuration`] says.
impl Classify for Error {
    fn class(&self) -> ErrorClass {
        if self.is_configuration() {
            ErrorClass::Configuration
        } else {
            ErrorClass::Operational
        }
    }
}

impl Error {
    /// True for mistakes the user fixes in the configuration: files, certificates, secrets, a key
    /// that is not the certificate's, and each hardware backend's own configuration mistakes (bad
    /// URI, module or object not found, no PIN source: the backend's [`Classify`]). False when
    /// a device fails or refuses (wrong PIN, locked, removed) or returns a malformed signature.
    pub fn is_configuration(&self) -> bool {
        match self {
            Error::Pkcs11(p) => p.class() == ErrorClass::Configuration,
            #[cfg(feature = "tpm")]
            Error::Tpm(t) => t.is_configuration(),
            Error::Encoding(_) => false,
            _ => true,
        }
    }
}

/// A backend's failure while signing, for the core: transparent (the message is the backend's), classified
/// as when opening.
impl From<Error> for SignError {
    fn from(e: Error) -> SignError {
        SignError::device(Classify::class(&e), e)
    }
}

/// Fails with [`Error::CertificateKeyMismatch`] unless `signer` holds the private half of `cert_key`.
pub fn check_matches(
    signer: &dyn Signer,
    cert_key: &PublicKey,
    certificate: &str,
) -> Result<(), Error> {
    if signer.public_key() == cert_key {
        return Ok(());
    }
    Err(Error::CertificateKeyMismatch {
        key: signer.describe(),
        key_fp: signer.public_key().fingerprint(),
        certificate: certificate.to_string(),
        cert_fp: cert_key.fingerprint(),
    })
}
