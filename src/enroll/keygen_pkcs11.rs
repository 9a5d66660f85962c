//! PKCS#11 enrollment: key pair generation on a token, opening a key without a certificate, storing
//! the issued certificate as a token object.

use super::{DeviceArgs, Error, KeyType};
use crate::keys::PublicKey;
use crate::signer::Signer;

/// Generates a key pair on the token named by `uri`.
pub fn generate(uri: &str, dev: &DeviceArgs, key_type: KeyType) -> Result<PublicKey, Error> {
    let _ = (uri, dev, key_type);
    Err(crate::signer::pkcs11::Error::Todo.into())
}

/// Opens the private key named by `uri` as a signer.
pub fn open_signer(uri: &str, dev: &DeviceArgs) -> Result<Box<dyn Signer>, Error> {
    let _ = (uri, dev);
    Err(crate::signer::pkcs11::Error::Todo.into())
}

/// Where `store_certificate` put the certificate.
pub struct Stored {
    /// A URI that selects the certificate.
    pub certificate_uri: String,
    /// A URI that selects the private key.
    pub private_key_uri: String,
}

/// Stores `der` on the token beside the key named by `uri`.
pub fn store_certificate(
    uri: &str,
    dev: &DeviceArgs,
    cert: &crate::certs::Certificate,
    replace: bool,
) -> Result<Stored, Error> {
    let _ = (uri, dev, cert, replace);
    Err(crate::signer::pkcs11::Error::Todo.into())
}
