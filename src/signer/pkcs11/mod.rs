//! PKCS#11 tokens (HSMs, YubiKeys, SoftHSM) addressed by RFC 7512 URIs.
//!
//! STUB: filled by the PKCS#11 work (issue 3). Signatures are the contract other modules code against.

use crate::certs::Certificate;
use crate::keys::PublicKey;
use crate::signer::{KeyOptions, Signer};
use crate::sigv4x509::Digest;

/// PKCS#11 problems, keeping the C function and `CKR_` code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Placeholder until implemented.
    #[error("PKCS#11 support is not implemented yet")]
    Todo,
}

/// A key on a token.
pub struct Pkcs11Signer {
    public: PublicKey,
}

/// What [`open`] found on the token.
pub struct Opened {
    /// The key, logged in as needed.
    pub signer: Pkcs11Signer,
    /// The leaf: from the token when `--certificate` is a URI, else the file certificate given.
    pub leaf: Certificate,
    /// Other certificates on the token (chain candidates when no `--intermediates` is given).
    pub token_certificates: Vec<Certificate>,
}

/// Opens the token named by `opts` and finds the key (and the certificate, when it is on the token).
/// `file_certificate` is the leaf when `--certificate` is a file; the key is matched to it by public key.
pub fn open(opts: &KeyOptions, file_certificate: Option<&Certificate>) -> Result<Opened, Error> {
    let _ = (opts, file_certificate);
    Err(Error::Todo)
}

impl Signer for Pkcs11Signer {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }
    fn sign(&self, digest: &Digest) -> Result<Vec<u8>, crate::signer::Error> {
        let _ = digest;
        Err(Error::Todo.into())
    }
    fn describe(&self) -> String {
        String::new()
    }
}
