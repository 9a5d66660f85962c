//! Key files: PKCS#1, SEC1, PKCS#8, encrypted PKCS#8 and PKCS#12.
//!
//! STUB: filled by the file-key work (issue 2). Signatures are the contract other modules code against.

use crate::keys::PublicKey;
use crate::signer::{KeyOptions, Signer};
use crate::sigv4x509::Digest;
use std::path::{Path, PathBuf};

/// Key file problems.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read private key file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
}

/// A private key held in memory (zeroized on drop).
pub struct FileSigner {
    public: PublicKey,
    path: PathBuf,
}

/// A loaded key file: the signer and, for PKCS#12, the certificates it carried (DER, leaf first).
pub struct FileKey {
    /// The key.
    pub signer: FileSigner,
    /// Certificates found in the file (PKCS#12 only), leaf first.
    pub certificates: Vec<Vec<u8>>,
}

/// Parses a key file's contents (`path` is for messages; passwords come from `opts`).
pub fn open(data: &[u8], path: &Path, opts: &KeyOptions) -> Result<FileKey, Error> {
    let _ = (data, path, opts);
    todo!()
}

impl Signer for FileSigner {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }
    fn sign(&self, digest: &Digest) -> Result<Vec<u8>, crate::signer::Error> {
        let _ = digest;
        todo!()
    }
    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}
