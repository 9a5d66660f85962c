//! X.509 certificates: loading PEM bundles, the fields the protocol needs, and chain ordering.
//!
//! No network: revocation is the service's business. Chains are ordered by issuer (leaf first, then
//! the certificate that issued it, …) and checked by name and signature; at most 5 intermediates.
//!
//! STUB: filled by the core work (issue 2). Signatures are the contract other modules code against.

use crate::keys::PublicKey;
use std::path::Path;

/// Largest number of intermediates the service accepts in `X-Amz-X509-Chain`.
pub const MAX_CHAIN: usize = 5;

/// A parsed certificate with the fields the agent uses.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
}

/// Certificate problems.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Placeholder until implemented.
    #[error("not implemented")]
    Todo,
}

impl Certificate {
    /// Parses DER.
    pub fn from_der(der: Vec<u8>) -> Result<Certificate, Error> {
        let _ = der;
        todo!()
    }
    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
    /// Serial number in base 10 (as `Credential=` and `read-certificate-data` use it).
    pub fn serial_decimal(&self) -> String {
        todo!()
    }
    /// Serial number in lower-case hex, even length.
    pub fn serial_hex(&self) -> String {
        todo!()
    }
    /// The subject public key.
    pub fn public_key(&self) -> &PublicKey {
        todo!()
    }
    /// Subject DN in RFC 4514 form.
    pub fn subject(&self) -> String {
        todo!()
    }
    /// Issuer DN in RFC 4514 form.
    pub fn issuer(&self) -> String {
        todo!()
    }
    /// Start of validity.
    pub fn not_before(&self) -> time::OffsetDateTime {
        todo!()
    }
    /// End of validity.
    pub fn not_after(&self) -> time::OffsetDateTime {
        todo!()
    }
    /// True when `issuer`'s subject is this certificate's issuer and its key verifies this signature.
    pub fn is_issued_by(&self, issuer: &Certificate) -> bool {
        let _ = issuer;
        todo!()
    }
}

/// Parses every `CERTIFICATE` block of a PEM bundle; `what` names the source in errors.
pub fn parse_pem_bundle(pem: &[u8], what: &str) -> Result<Vec<Certificate>, Error> {
    let _ = (pem, what);
    todo!()
}

/// Reads a PEM file of one or more certificates (the first is the leaf for `--certificate`).
pub fn load_pem_file(path: &Path) -> Result<Vec<Certificate>, Error> {
    let _ = path;
    todo!()
}

/// Orders `candidates` into the chain above `leaf`: issuer order, leaf excluded, duplicates and
/// unrelated certificates dropped, at most [`MAX_CHAIN`].
pub fn build_chain(
    leaf: &Certificate,
    candidates: Vec<Certificate>,
) -> Result<Vec<Certificate>, Error> {
    let _ = (leaf, candidates);
    todo!()
}
