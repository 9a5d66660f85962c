//! PKCS#11 tokens (HSMs, YubiKeys, SoftHSM) addressed by RFC 7512 URIs.
//!
//! STUB: filled by the PKCS#11 work (issue 3).

/// PKCS#11 problems, keeping the C function and `CKR_` code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Placeholder until implemented.
    #[error("not implemented")]
    Todo,
}
