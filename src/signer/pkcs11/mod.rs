//! PKCS#11 tokens (HSMs, YubiKeys, SoftHSM) addressed by RFC 7512 URIs.
//!
//! [`open`] does all the token work before any network call: load the module, pick the token, find
//! the certificate, log in once, find the key and match it to the certificate by public key (never by
//! trial signatures), check the signing mechanism and resolve the context PIN of always-authenticate
//! keys. The [`Pkcs11Signer`] it returns then costs one `C_SignInit` and one `C_Sign` per signature.
//! Key management for enrollment ([`generate_key`], [`open_for_install`]) goes through the same
//! module instance and login rules. Must not: log or format PINs, retry a login, or hand the token
//! anything but a digest (or the core's ML-DSA μ; the message itself only to a token whose only
//! ML-DSA mechanism is `CKM_ML_DSA`: docs/adr/0004-ml-dsa-mu-digest.md).
//!
//! Submodules, all private to the backend except `uri` (RFC 7512, also fuzzed): `open` (the steps
//! of [`open`]), `key_management` (generation, certificate objects), `mldsa` (ML-DSA codepoints, keys and mechanism
//! selection), `module` (loading), `find`
//! (tokens, objects, public keys), `pin` (PIN sources and login), `sign` (the signer), `ffi` (the
//! only unsafe code; why it is ours: docs/adr/0003-pkcs11-binding.md), `visibility` (why a token is
//! not seen), `error`.

mod error;
mod ffi;
mod find;
mod key_management;
mod mldsa;
mod module;
mod open;
mod pin;
mod sign;
pub(crate) mod uri;
mod visibility;

#[cfg(test)]
mod tests;

pub use crate::text::arg as redact_uri;
pub use error::{CallError, Error, ckr_name};
pub use key_management::{
    GeneratedKey, StoredCa, StoredCertificate, TokenKey, generate_key, open_for_install,
};
pub use module::finalize_unused;
pub use open::{Opened, list_certificates, open, open_key};
pub use pin::{CONTEXT_PIN_ENV, PIN_ENV};
pub use sign::Pkcs11Signer;
pub use uri::is_pkcs11_uri;
