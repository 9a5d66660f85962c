//! SigV4-X509 request signing for IAM Roles Anywhere `CreateSession`: the pure core, which lives in
//! its own crate ([`rolesanywhere_core::sigv4x509`]) so that Cargo, not review, keeps it free of I/O,
//! X.509 parsing, HTTP and devices.
//!
//! This module re-exports it under the agent's path and fixes its certificate type to
//! [`crate::certs::Certificate`]; the golden-vector tests (`testdata/vectors/`) run here, against the
//! agent's certificate parser and chain builder.

#[cfg(test)]
mod tests;

pub use rolesanywhere_core::sigv4x509::*;

/// Who signs, when and where, with the agent's parsed certificates.
pub type SigningInput<'a> =
    rolesanywhere_core::sigv4x509::SigningInput<'a, crate::certs::Certificate>;
