//! rolesanywhere-agent: AWS IAM Roles Anywhere credentials from keys that never leave their device.
//!
//! The crate is organised as a pure core, signing backends and fronts:
//!
//! - [`sigv4x509`] (pure: no I/O, no clock, no HTTP types) builds the SigV4-X509 signed `CreateSession`
//!   request and hands only a [`sigv4x509::Digest`] to a [`signer::Signer`].
//! - [`signer`] holds the backends (key files, PKCS#11 tokens, TPM 2.0) behind that one trait.
//! - [`session`] sends `CreateSession` and turns the answer into credentials; [`refresh`] keeps them
//!   fresh for the long-running fronts; [`cli`] is the front.
//! - [`text`] is how user arguments and device, certificate and server text appear in messages:
//!   `pin-value` redacted, control and bidi characters escaped.
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod agent;
pub mod arn;
pub mod certs;
pub mod cli;
pub mod doctor;
pub mod enroll;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub(crate) mod ini;
pub mod keys;
pub(crate) mod pem;
pub mod refresh;
pub mod secret;
pub mod serve;
pub mod session;
pub mod shutdown;
pub mod signer;
pub mod sigv4x509;
pub mod text;
pub mod update;
pub mod userfile;
