//! rolesanywhere-emulator: a local IAM Roles Anywhere `CreateSession` endpoint and a small test CA.
//!
//! The emulator verifies requests with its own SigV4-X509 code ([`verifier`]) so that a client bug
//! cannot cancel out; it must never depend on the agent crate. [`server`] answers like the service,
//! [`config`] reads the TOML configuration, [`control`] is the SigV4-authenticated control plane
//! (trust anchors, profiles, CRLs), [`ca`] issues test certificates and CRLs. [`policy`]
//! evaluates IAM role trust policies and [`mapping`] derives principal tags from a certificate.
//! [`sessions`] remembers the sessions granted, [`sts`] answers `GetCallerIdentity` for them and
//! [`throttle`] limits CreateSession like the service. [`trust`] derives a session's principal
//! tags and judges the role's trust policy once the verifier accepted the request. [`query`]
//! holds the query protocol STS and the control plane's IAM API share on `POST /`.

#![deny(missing_docs, unsafe_code)]

pub mod ca;
pub mod cli;
pub mod config;
pub mod control;
pub mod crypto;
mod der;
pub mod files;
pub mod mapping;
mod path;
mod pem;
pub mod policy;
pub mod query;
pub mod server;
pub mod sessions;
pub mod sts;
pub mod throttle;
pub mod trust;
pub mod verifier;

pub use config::Config;
