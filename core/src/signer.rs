//! The port: what the core asks of a signing backend, and how a backend says that it failed.

use crate::{Digest, KeyKind, MlDsaMu, PublicKey};

/// A private key that can sign digests. Blocking, object safe, shareable across threads.
///
/// Output is in one canonical form: PKCS#1 v1.5 signature bytes for RSA, DER `SEQUENCE { r, s }` for
/// ECDSA (conversions from device formats: [`crate::encoding`]).
pub trait Signer: Send + Sync {
    /// The public half of the key, as the device reports it.
    fn public_key(&self) -> &PublicKey;

    /// The kind of key; the core derives the algorithm name from it.
    fn key_kind(&self) -> KeyKind {
        self.public_key().kind()
    }

    /// Signs `digest`: RSASSA-PKCS1-v1_5 over the DigestInfo for RSA, ECDSA (DER) for EC keys.
    fn sign(&self, digest: &Digest) -> Result<Vec<u8>, SignError>;

    /// Signs the μ of pure ML-DSA (deterministic, empty context) for an ML-DSA key; returns the raw
    /// FIPS 204 signature. The core calls it, and only it, for keys whose [`KeyKind`] is
    /// [`KeyKind::MlDsa`]. Backends without ML-DSA keep the default, which refuses.
    fn sign_ml_dsa_mu(&self, mu: &MlDsaMu) -> Result<Vec<u8>, SignError> {
        let _ = mu;
        Err(SignError::device(
            ErrorClass::Configuration,
            NoMlDsa {
                signer: self.describe(),
            },
        ))
    }

    /// Where the key lives, for messages (a path, a URI without PIN, a TPM handle). Never a secret.
    fn describe(&self) -> String;
}

/// A backend asked to sign ML-DSA that has no ML-DSA support.
#[derive(Debug, thiserror::Error)]
#[error(
    "{signer} cannot sign with an ML-DSA key: this key store does not support ML-DSA (use a key file or a PKCS#11 token with ML-DSA)"
)]
pub struct NoMlDsa {
    /// The signer's description.
    pub signer: String,
}

/// Whose move it is when something failed: decides the exit code (2 or 1) at the boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// A usage or configuration mistake the user fixes (a wrong flag, file, URI, PIN source):
    /// exit code 2.
    Configuration,
    /// The device, network or service failed or refused (wrong PIN, device removed, malformed
    /// answer): exit code 1.
    Operational,
}

/// An error that knows its [`ErrorClass`]: every module error the program's boundary (the CLI) may
/// meet implements it, so the exit code is the raising module's judgement, not the front's guess.
pub trait Classify {
    /// Configuration mistake or operational failure.
    fn class(&self) -> ErrorClass;
}

/// Why a [`Signer`] produced no usable signature.
#[derive(Debug)]
pub enum SignError {
    /// The backend or its device failed or refused. Displayed as its source, which the backend
    /// wrote (naming the object and the cause); `class` is the backend's judgement of whose fault
    /// it is.
    Device {
        /// Configuration mistake or operational failure.
        class: ErrorClass,
        /// The backend's error.
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The backend returned something that is not a signature of the expected form (a backend bug
    /// or a misbehaving device); sending it would only earn "Invalid signature".
    MalformedSignature {
        /// The signer's description.
        signer: String,
        /// The key kind.
        kind: KeyKind,
        /// What is wrong.
        detail: String,
    },
}

impl SignError {
    /// A backend failure of the given class.
    pub fn device(
        class: ErrorClass,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> SignError {
        SignError::Device {
            class,
            source: source.into(),
        }
    }

    /// Configuration mistake or operational failure (a malformed signature is operational).
    pub fn class(&self) -> ErrorClass {
        match self {
            SignError::Device { class, .. } => *class,
            SignError::MalformedSignature { .. } => ErrorClass::Operational,
        }
    }
}

impl Classify for SignError {
    fn class(&self) -> ErrorClass {
        SignError::class(self)
    }
}

impl std::fmt::Display for SignError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Transparent: the backend's message is the message; printing a word of our own here
            // would only repeat "cannot sign" in the chain.
            SignError::Device { source, .. } => std::fmt::Display::fmt(source, f),
            SignError::MalformedSignature {
                signer,
                kind,
                detail,
            } => write!(
                f,
                "{signer} returned a malformed {kind} signature: {detail}"
            ),
        }
    }
}

impl std::error::Error for SignError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // Transparent, as above: the chain continues with the backend error's own cause.
            SignError::Device { source, .. } => source.source(),
            SignError::MalformedSignature { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("C_Sign failed")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("CKR_DEVICE_REMOVED")]
    struct Inner;

    #[test]
    fn device_error_is_transparent_and_keeps_its_class() {
        let e = SignError::device(ErrorClass::Operational, Outer(Inner));
        assert_eq!(e.to_string(), "C_Sign failed");
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("CKR_DEVICE_REMOVED"));
        assert_eq!(e.class(), ErrorClass::Operational);
        let e = SignError::device(ErrorClass::Configuration, Inner);
        assert_eq!(e.class(), ErrorClass::Configuration);
    }

    #[test]
    fn malformed_signature_is_operational_and_names_the_signer() {
        let e = SignError::MalformedSignature {
            signer: "key.pem".into(),
            kind: KeyKind::Rsa { bits: 2048 },
            detail: "3 bytes, expected 256".into(),
        };
        assert_eq!(e.class(), ErrorClass::Operational);
        assert_eq!(
            e.to_string(),
            "key.pem returned a malformed RSA-2048 signature: 3 bytes, expected 256"
        );
    }
}
