//! Key files: PKCS#1, SEC1, PKCS#8, encrypted PKCS#8 and PKCS#12.
//!
//! STUB: filled by the file-key work (issue 2).

/// Key file problems.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Placeholder until implemented.
    #[error("not implemented")]
    Todo,
}
