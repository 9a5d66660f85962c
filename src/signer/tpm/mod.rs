//! TPM 2.0 keys: `TSS2 PRIVATE KEY` files and persistent handles, through any TCTI.
//!
//! STUB: filled by the TPM work (issue 4). Signatures are the contract other modules code against.

use crate::keys::PublicKey;
use crate::signer::{KeyOptions, Signer};
use crate::sigv4x509::Digest;
use std::path::Path;

/// TPM problems: our own checks, or the TPM's response code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Placeholder until implemented.
    #[error("TPM support is not implemented yet")]
    Todo,
}

/// A key loaded in a TPM.
pub struct TpmSigner {
    public: PublicKey,
}

/// Loads a `TSS2 PRIVATE KEY` file's key into the TPM named by `opts`.
pub fn open_key_file(data: &[u8], path: &Path, opts: &KeyOptions) -> Result<TpmSigner, Error> {
    let _ = (data, path, opts);
    Err(Error::Todo)
}

/// Uses the persistent key `handle:0x81……`.
pub fn open_handle(handle: &str, opts: &KeyOptions) -> Result<TpmSigner, Error> {
    let _ = (handle, opts);
    Err(Error::Todo)
}

impl Signer for TpmSigner {
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
