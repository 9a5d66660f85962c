//! TPM 2.0 keys: `TSS2 PRIVATE KEY` files and persistent handles, through any TCTI.
//!
//! STUB: filled by the TPM work (issue 4).

/// TPM problems: our own checks, or the TPM's response code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Placeholder until implemented.
    #[error("not implemented")]
    Todo,
}
