//! SigV4-X509 request signing for IAM Roles Anywhere `CreateSession`.
//!
//! Pure: no I/O, no clock reads, no HTTP-client types. Callers pass the method, path, query, headers,
//! body, time, certificate and chain; this module returns the headers to add. The only thing that
//! reaches a [`crate::signer::Signer`] is a [`Digest`], which only this module can create.

mod digest;

pub use digest::{Digest, HashAlg};

use crate::certs::Certificate;
use crate::keys::KeyKind;
use crate::signer::Signer;

// STUB below: filled by the core work (issue 2). Signatures are the contract other modules code against.

/// Signing failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The backend failed to sign.
    #[error("cannot sign request")]
    Sign(#[from] crate::signer::Error),
    /// More intermediates than the service accepts.
    #[error("certificate chain has {0} intermediates; at most 5 are accepted")]
    ChainTooLong(usize),
}

/// The parts of the HTTP request that are signed.
#[derive(Debug, Clone)]
pub struct RequestParts<'a> {
    /// `POST`.
    pub method: &'a str,
    /// `Host` header value (with `:port` when not the scheme's default).
    pub host: &'a str,
    /// Path exactly as sent on the wire (already URI-encoded), e.g. `/sessions`.
    pub path: &'a str,
    /// Query parameters, not encoded.
    pub query: &'a [(String, String)],
    /// `Content-Type` header value.
    pub content_type: &'a str,
    /// The body bytes.
    pub body: &'a [u8],
}

/// Who signs, when and where.
pub struct SigningInput<'a> {
    /// Signing region (never a `-fips` name).
    pub region: &'a str,
    /// Signing time (whole seconds are used).
    pub time: time::OffsetDateTime,
    /// The leaf certificate.
    pub leaf: &'a Certificate,
    /// Intermediates in issuer order (leaf excluded).
    pub chain: &'a [Certificate],
}

/// Headers to add to the request, plus the intermediate strings for `--debug`.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    /// `X-Amz-Date`, `X-Amz-X509`, optional `X-Amz-X509-Chain`, `Authorization`, in that order.
    pub headers: Vec<(String, String)>,
    /// The canonical request that was hashed.
    pub canonical_request: String,
    /// The string to sign whose SHA-256 was signed.
    pub string_to_sign: String,
}

/// `AWS4-X509-RSA-SHA256` or `AWS4-X509-ECDSA-SHA256`.
pub fn algorithm_for(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::Rsa { .. } => "AWS4-X509-RSA-SHA256",
        KeyKind::Ec(_) => "AWS4-X509-ECDSA-SHA256",
    }
}

/// Signs a request: builds the canonical request and string to sign, hands SHA-256 of the latter to
/// `signer` and returns the headers to add.
pub fn sign_request(
    parts: &RequestParts<'_>,
    input: &SigningInput<'_>,
    signer: &dyn Signer,
) -> Result<SignedRequest, Error> {
    let _ = (parts, input, signer);
    todo!()
}

/// The `sign-string` test message: `"AWS Roles Anywhere Credential Helper Signing Test" ‖ "1" ‖
/// SHA256("IAM RA" ‖ PUBKEY)`, signed with `alg`. Returns the signature in canonical form.
pub fn sign_test_string(signer: &dyn Signer, alg: HashAlg) -> Result<Vec<u8>, Error> {
    let _ = (signer, alg);
    todo!()
}
