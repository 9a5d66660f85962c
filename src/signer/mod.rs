//! Signing backends behind one small trait.
//!
//! A backend holds a private key somewhere (a key file, a PKCS#11 token, a TPM) and signs a
//! [`Digest`](rolesanywhere_core::Digest) that only hashing can make. Output is always in one canonical
//! form: PKCS#1 v1.5 signature bytes for RSA, DER `SEQUENCE { r, s }` for ECDSA. Conversions from
//! device formats live in [`encoding`]. Construction does all I/O (loading, login, key lookup) so
//! failures surface before any network call.
//!
//! The port itself ([`Signer`], [`SignError`]) and [`encoding`] belong to the signing core
//! (`rolesanywhere-core`) and are re-exported here. [`identity`] is the composition root: from the
//! user's options to a ready (and reloadable) identity; its open-time [`Error`] is re-exported here,
//! and a backend's signing failure reaches the core as a [`SignError`] carrying it, classified by
//! the backend. [`backends`] is how a program hands the library the optional TPM backend (which
//! links libtss2): the library never calls it by name.

mod asn1;
pub mod backends;
pub mod file;
pub mod identity;
pub mod pkcs11;
#[cfg(feature = "tpm")]
pub mod tpm;

pub use identity::{Error, Identity, KeyOptions, KeySource, LiveIdentity, Reload, open, open_key};
pub use rolesanywhere_core::encoding;
pub use rolesanywhere_core::{Classify, ErrorClass, SignError, Signer};
