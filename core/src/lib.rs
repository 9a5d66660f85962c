//! rolesanywhere-core: the pure SigV4-X509 signing core of rolesanywhere-agent and the port its
//! signing backends implement.
//!
//! - [`sigv4x509`] builds the canonical request, string to sign and headers of a `CreateSession`
//!   request from plain inputs and hands SHA-256 of the string to sign to a [`Signer`].
//! - [`Signer`] is the port: a blocking, object-safe trait whose one signing method takes a
//!   [`Digest`], reports its [`KeyKind`] (the core picks the algorithm name) and fails with a
//!   [`SignError`].
//! - [`encoding`] holds the canonical signature encodings (raw `r‖s` → DER, `DigestInfo`), once.
//!
//! The crate is a leaf: it performs no I/O, reads no clock and depends on no X.509, ASN.1-parser,
//! HTTP or device crate, so that rule is kept by Cargo rather than by review. Certificates reach it
//! as DER through [`sigv4x509::CertificateDer`]; parsing them is the agent's business.
#![deny(missing_docs)]
#![deny(unsafe_code)]

mod digest;
pub mod encoding;
mod key;
mod signer;
pub mod sigv4x509;

pub use digest::{Digest, HashAlg, MlDsaMu};
pub use key::{Curve, KeyError, KeyKind, MlDsaSet, PublicKey};
pub use signer::{Classify, ErrorClass, NoMlDsa, SignError, Signer};
