//! The open-time error: what can go wrong between the user's options and a ready identity.
//!
//! Owns the one error type of [`identity`](super): each backend's own error (kept whole, so its
//! message and class survive), the certificate and chain failures, the key/certificate mismatch and
//! the missing-option cases. Its class (configuration vs operational) follows each backend's own
//! [`Classify`]. A backend's failure while signing reaches the core as a [`SignError`] carrying
//! this error.

use crate::signer::{Classify, ErrorClass, SignError, encoding, file, pkcs11};

/// Failures while opening (or reloading) an identity: its key, its certificate or its chain.
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
    Tpm(#[from] crate::signer::tpm::Error),
    /// A `TSS2 PRIVATE KEY` or `handle:` key reached a process without the TPM backend: one that
    /// `rolesanywhere-agent` started with no TPM key in sight (an agent whose configuration gained
    /// a TPM profile, a key file replaced by a TPM key file).
    #[cfg(feature = "tpm")]
    #[error(
        "{0} is a TPM key, but this process started without the TPM backend (rolesanywhere-agent \
         loads it, by running rolesanywhere-agent-tpm, only for a TPM key named when it starts): \
         restart it (the agent, serve or update) to use this key"
    )]
    TpmNotLoaded(String),
    /// A `TSS2 PRIVATE KEY` or `handle:` key was given to a build without TPM support.
    #[cfg(not(feature = "tpm"))]
    #[error("{0} is a TPM key, but this build has no TPM support (rebuild with the `tpm` feature)")]
    TpmUnsupported(String),
    /// The certificate is for an ML-DSA key and the private key, not on a PKCS#11 token, is of
    /// another kind: typically on a TPM (TPMs do not do ML-DSA yet). A token key of another kind
    /// is [`Error::CertificateKeyMismatch`], as tokens can hold ML-DSA keys.
    #[error(
        "certificate {certificate} is for an {set} key, but private key {key} is an {kind} key; \
         ML-DSA keys are read from key files and PKCS#11 tokens only (TPMs do not do ML-DSA yet): \
         give the ML-DSA private key (a key file or a pkcs11: URI) with --private-key"
    )]
    MlDsaKeyElsewhere {
        /// The key's description.
        key: String,
        /// The key's kind.
        kind: String,
        /// The certificate's description.
        certificate: String,
        /// The certificate's parameter set.
        set: &'static str,
    },
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

/// Configuration for mistakes the user fixes in the configuration: files, certificates, secrets, a
/// key that is not the certificate's, and each hardware backend's own configuration mistakes (bad
/// URI, module or object not found, no PIN source, bad TCTI: the backend's own class). Operational
/// when a device fails or refuses (wrong PIN, locked, removed) or returns a malformed signature.
impl Classify for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::Pkcs11(p) => p.class(),
            #[cfg(feature = "tpm")]
            Error::Tpm(t) => t.class(),
            Error::Encoding(_) => ErrorClass::Operational,
            _ => ErrorClass::Configuration,
        }
    }
}

impl Error {
    /// True when [`Classify::class`] is [`ErrorClass::Configuration`].
    pub fn is_configuration(&self) -> bool {
        self.class() == ErrorClass::Configuration
    }
}

/// A backend's failure while signing, for the core: transparent (the message is the backend's),
/// classified as when opening.
impl From<Error> for SignError {
    fn from(e: Error) -> SignError {
        SignError::device(Classify::class(&e), e)
    }
}
