//! The backends a program carries beyond the ones every build links: the seam between this library
//! and its two programs (ADR 0002, "libtss2 only for a TPM key").
//!
//! The TPM backend ([`super::tpm`]) links libtss2-esys/-sys/-mu/-tctildr and, through them,
//! libcrypto. A program that links them has the dynamic loader map and bind them at every start,
//! TPM key or not: about 4.5 M instructions, most of what a warm `credential-process --from-agent`
//! costs. So nothing in this library calls the backend by name: it asks [`tpm`] for the
//! [`TpmBackend`] the program's `main` handed to [`crate::cli::run`] (which [`install`]s it).
//!
//! - `rolesanywhere-agent` (src/main.rs) hands none ([`Backends::NONE`]): with the release profile
//!   (fat LTO, `--as-needed`) no TPM code and no libtss2 or libcrypto is left in it. A command that
//!   needs a TPM key runs the companion instead, before it does anything (`cli::companion`).
//! - `rolesanywhere-agent-tpm` (src/main_tpm.rs) hands [`super::tpm::BACKEND`].
//!
//! This crate's unit tests see that backend without installing it. Must not: be installed twice
//! (the first program-wide choice stands), or hold anything but `'static` backends.

#[cfg(feature = "tpm")]
use super::{KeyOptions, Signer, tpm};
use std::sync::OnceLock;

/// What the library needs of the TPM backend: opening a key to sign with, creating one, and the
/// command count `--debug` prints. Implemented by [`super::tpm::BACKEND`].
#[cfg(feature = "tpm")]
pub trait TpmBackend: Send + Sync {
    /// A `TSS2 PRIVATE KEY` file's key, its bytes already read from `path` (see
    /// [`super::tpm::open_key_file`]).
    fn open_key_file(
        &self,
        data: &[u8],
        path: &std::path::Path,
        opts: &KeyOptions,
    ) -> Result<Box<dyn Signer>, tpm::Error>;

    /// A persistent key, `handle:0x81……` (see [`super::tpm::open_handle`]).
    fn open_handle(&self, handle: &str, opts: &KeyOptions) -> Result<Box<dyn Signer>, tpm::Error>;

    /// A new key for enrollment (see [`super::tpm::generate`]).
    fn generate(
        &self,
        dest: &tpm::Destination,
        spec: &tpm::KeySpec,
        opts: &KeyOptions,
    ) -> Result<tpm::Generated, tpm::Error>;

    /// TPM commands this process has sent so far.
    fn command_count(&self) -> u64;
}

/// The optional backends a program hands to [`crate::cli::run`].
#[derive(Clone, Copy, Default)]
pub struct Backends {
    /// The TPM backend, in `rolesanywhere-agent-tpm`; `None` in `rolesanywhere-agent`.
    #[cfg(feature = "tpm")]
    pub tpm: Option<&'static dyn TpmBackend>,
}

impl Backends {
    /// No optional backend: `rolesanywhere-agent`.
    pub const NONE: Backends = Backends {
        #[cfg(feature = "tpm")]
        tpm: None,
    };
}

#[cfg(feature = "tpm")]
impl Backends {
    /// True when a TPM key can be opened in this process.
    pub fn has_tpm(&self) -> bool {
        self.tpm.is_some()
    }
}

#[cfg(not(feature = "tpm"))]
impl Backends {
    /// True when a TPM key can be opened in this process: never, in a build without the backend.
    pub fn has_tpm(&self) -> bool {
        false
    }
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends")
            .field("tpm", &self.has_tpm())
            .finish()
    }
}

static INSTALLED: OnceLock<Backends> = OnceLock::new();

/// Makes `backends` the program's, for every identity opened from now on. The first call decides:
/// returns false (and changes nothing) when backends were installed already.
pub fn install(backends: Backends) -> bool {
    INSTALLED.set(backends).is_ok()
}

/// The program's backends: what [`install`] was given, else none (in this crate's unit tests: the
/// TPM backend when the crate has it).
pub fn installed() -> Backends {
    INSTALLED.get().copied().unwrap_or_else(not_installed)
}

#[cfg(all(test, feature = "tpm"))]
fn not_installed() -> Backends {
    Backends {
        tpm: Some(&super::tpm::BACKEND),
    }
}

#[cfg(not(all(test, feature = "tpm")))]
fn not_installed() -> Backends {
    Backends::NONE
}

/// The TPM backend of this process, if it has one.
#[cfg(feature = "tpm")]
pub fn tpm() -> Option<&'static dyn TpmBackend> {
    installed().tpm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_front_carries_no_tpm_backend() {
        assert!(!Backends::NONE.has_tpm());
        assert_eq!(format!("{:?}", Backends::NONE), "Backends { tpm: false }");
    }

    #[cfg(feature = "tpm")]
    #[test]
    fn unit_tests_see_the_tpm_backend_of_the_crate() {
        assert!(installed().has_tpm());
    }
}
