//! The composition root: from the user's options to a ready identity (a signer, its certificate and
//! the chain), for every command that signs or enrolls.
//!
//! Owns the key-source dispatch ([`KeySource`]: `pkcs11:` → token, `handle:` → TPM persistent key, a
//! `TSS2 PRIVATE KEY` PEM → TPM key file, any other file → key file backend), certificate loading
//! (files, PKCS#12 bundles, token objects), chain building and the check that key and certificate
//! belong together, with one open-time [`Error`]. Everything that can fail locally fails here, before
//! any network call.
//!
//! [`open`] is for one-shot commands. [`LiveIdentity`] is for long-running ones (`serve`, `update`, the
//! agent): it keeps the device session it opened (one PKCS#11 login, one TPM key load) and
//! [`LiveIdentity::reload`] reads the certificate, the chain and the key file again (rotation), taking
//! the new identity only when it is whole and its key matches the certificate. Must not: log in or load
//! a TPM key again for a certificate change, or keep a private key's file bytes.
//!
//! - `source`: [`KeySource`], [`is_tss2_pem`] and [`tpm_key`].
//! - `live`: [`LiveIdentity`] and its reload.
//! - `error`: the open-time [`Error`].

mod error;
mod live;
mod source;
#[cfg(test)]
mod tests;

pub use error::Error;
pub use live::{LiveIdentity, Reload};
pub use source::{KeySource, is_tss2_pem, tpm_key};

use super::pkcs11::redact_uri;
use super::{Signer, file, pkcs11};
use crate::certs::{self, Certificate};
use crate::keys::{KeyKind, PublicKey};
use crate::secret::Secret;
use crate::userfile;
use std::path::{Path, PathBuf};

/// Options that select and unlock a key and its certificate (all commands share them).
#[derive(Default, Clone)]
pub struct KeyOptions {
    /// `--certificate`: a PEM file (leaf first, extra certificates are chain candidates) or `pkcs11:` URI.
    pub certificate: Option<String>,
    /// `--private-key`: a key file, `pkcs11:` URI or `handle:0x81……`.
    pub private_key: Option<String>,
    /// `--intermediates`: a PEM bundle of chain candidates.
    pub intermediates: Option<PathBuf>,
    /// `--pkcs8-password`.
    pub pkcs8_password: Option<Secret>,
    /// `--pkcs8-password-file`.
    pub pkcs8_password_file: Option<PathBuf>,
    /// `--pkcs11-lib`.
    pub pkcs11_lib: Option<PathBuf>,
    /// `--reuse-pin`: the user PIN is also the context-specific PIN.
    pub reuse_pin: bool,
    /// `--pkcs11-context-pin-file`: non-interactive context-specific PIN.
    pub pkcs11_context_pin_file: Option<PathBuf>,
    /// `--tpm-tcti`.
    pub tpm_tcti: Option<String>,
    /// `--tpm-timeout`: how long one TPM command may take (default 30 s; key generation ten times
    /// as long).
    pub tpm_timeout: Option<std::time::Duration>,
    /// `--tpm-key-password`.
    pub tpm_key_password: Option<Secret>,
    /// `--tpm-key-password-file`.
    pub tpm_key_password_file: Option<PathBuf>,
    /// `--no-tpm-key-password`.
    pub no_tpm_key_password: bool,
    /// `--tpm-parent-password`.
    pub tpm_parent_password: Option<Secret>,
    /// `--tpm-parent-password-file`.
    pub tpm_parent_password_file: Option<PathBuf>,
    /// The PKCS#11 user PIN, already read from its source (no flag: see
    /// [`KeyOptions::with_secret_files_read`]); before the URI's sources.
    pub pkcs11_pin: Option<Secret>,
    /// The context-specific PIN, already read (as [`KeyOptions::pkcs11_pin`]); after `--reuse-pin`.
    pub pkcs11_context_pin: Option<Secret>,
}

impl KeyOptions {
    /// A copy with every secret held in a file read into memory (zeroizing [`Secret`]s), the file
    /// sources then dropped: the user PIN of a `pkcs11:` URI's `pin-source`, the context-specific
    /// PIN file, the key file's password file and the TPM password files. Precedence is kept: a
    /// file is read only where it would have been the source used. The environment and prompts
    /// stay as they are.
    ///
    /// For long-running processes (the agent, `serve`): each file is read once, at start, so opening
    /// the device again later (a token re-inserted, a TPM reset, a rotated key file) needs no file
    /// that may be gone by then (a one-shot secret, systemd's `LoadCredential=`), and a file
    /// changed under the running process cannot swap its PIN.
    pub fn with_secret_files_read(&self) -> Result<KeyOptions, crate::secret::Error> {
        use crate::secret::read_file;
        let mut o = self.clone();
        if let Some(f) = o.pkcs8_password_file.take()
            && o.pkcs8_password.is_none()
        {
            o.pkcs8_password = Some(read_file(&f, "the password of the key file")?);
        }
        if let Some(f) = o.tpm_key_password_file.take()
            && o.tpm_key_password.is_none()
        {
            o.tpm_key_password = Some(read_file(&f, "the TPM key password")?);
        }
        if let Some(f) = o.tpm_parent_password_file.take()
            && o.tpm_parent_password.is_none()
        {
            o.tpm_parent_password = Some(read_file(&f, "the TPM parent password")?);
        }
        if let Some(f) = o.pkcs11_context_pin_file.take() {
            o.pkcs11_context_pin = Some(read_file(&f, "the PKCS#11 context-specific PIN")?);
        }
        if o.pkcs11_pin.is_none() {
            // The first URI that names a PIN decides, as at login: a `pin-value` needs no read.
            let uris = [&o.certificate, &o.private_key]
                .into_iter()
                .flatten()
                .filter(|s| pkcs11::is_pkcs11_uri(s))
                .filter_map(|s| pkcs11::uri::Pkcs11Uri::parse(s).ok());
            for u in uris {
                if u.pin_value().is_some() {
                    break;
                }
                if let Some(p) = &u.pin_source {
                    o.pkcs11_pin = Some(read_file(p, "the PKCS#11 user PIN")?);
                    break;
                }
            }
        }
        Ok(o)
    }
}

impl std::fmt::Debug for KeyOptions {
    // `--certificate` and `--private-key` may be `pkcs11:` URIs carrying `pin-value`: show them without it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyOptions")
            .field("certificate", &self.certificate.as_deref().map(redact_uri))
            .field("private_key", &self.private_key.as_deref().map(redact_uri))
            .field(
                "intermediates",
                &self.intermediates.as_deref().map(crate::text::path),
            )
            .field(
                "pkcs11_lib",
                &self.pkcs11_lib.as_deref().map(crate::text::path),
            )
            .field("reuse_pin", &self.reuse_pin)
            .field("tpm_tcti", &self.tpm_tcti)
            .field("tpm_timeout", &self.tpm_timeout)
            .field("no_tpm_key_password", &self.no_tpm_key_password)
            .finish_non_exhaustive()
    }
}

/// A signer with its certificate and chain, checked to belong together.
pub struct Identity {
    /// The key.
    pub signer: Box<dyn Signer>,
    /// The leaf certificate.
    pub leaf: Certificate,
    /// Intermediates in issuer order, leaf excluded, at most [`certs::MAX_CHAIN`].
    pub chain: Vec<Certificate>,
}

/// Opens the key and certificate named by `opts` and checks that they belong together.
pub fn open(opts: &KeyOptions) -> Result<Identity, Error> {
    Ok(LiveIdentity::open(opts)?.into_identity())
}

/// Opens only the key named by `--private-key`, with no certificate needed or checked: for
/// `sign-string` without `--certificate` and for enrollment (there is no certificate yet).
pub fn open_key(opts: &KeyOptions) -> Result<Box<dyn Signer>, Error> {
    match KeySource::from_options(opts)? {
        KeySource::Pkcs11(_) => Ok(Box::new(pkcs11::open_key(opts)?)),
        KeySource::TpmHandle(h) => open_tpm_handle(&h, opts),
        KeySource::File(path) => Ok(open_key_file(&path, opts)?.signer),
    }
}

/// Fails with [`Error::CertificateKeyMismatch`] unless `signer` holds the private half of `cert_key`.
pub fn check_matches(
    signer: &dyn Signer,
    cert_key: &PublicKey,
    certificate: &str,
) -> Result<(), Error> {
    if signer.public_key() == cert_key {
        return Ok(());
    }
    // A token key of another kind is a plain mismatch: tokens can hold ML-DSA keys
    // (`signer::pkcs11`). The hint is for TPM keys (no ML-DSA yet) and key files of another kind.
    if let (KeyKind::MlDsa(set), kind) = (cert_key.kind(), signer.key_kind())
        && !matches!(kind, KeyKind::MlDsa(_))
        && !pkcs11::is_pkcs11_uri(&signer.describe())
    {
        return Err(Error::MlDsaKeyElsewhere {
            key: signer.describe(),
            kind: kind.to_string(),
            certificate: certificate.to_string(),
            set: set.name(),
        });
    }
    Err(Error::CertificateKeyMismatch {
        key: signer.describe(),
        key_fp: signer.public_key().fingerprint(),
        certificate: certificate.to_string(),
        cert_fp: cert_key.fingerprint(),
    })
}

/// The certificates given as files: the first of `--certificate` (when a file) is the leaf, the
/// rest of it and all of `--intermediates` are chain candidates.
struct FileCertificates {
    leaf: Option<Certificate>,
    candidates: Vec<Certificate>,
}

fn file_certificates(opts: &KeyOptions) -> Result<FileCertificates, Error> {
    let mut file_certs = match opts.certificate.as_deref() {
        Some(c) if !pkcs11::is_pkcs11_uri(c) => certs::load_pem_file(Path::new(c))?,
        _ => Vec::new(),
    };
    let mut candidates = match &opts.intermediates {
        Some(p) => certs::load_pem_file(p)?,
        None => Vec::new(),
    };
    let leaf = if file_certs.is_empty() {
        None
    } else {
        Some(file_certs.remove(0))
    };
    candidates.extend(file_certs);
    Ok(FileCertificates { leaf, candidates })
}

/// A key file opened by whichever backend its content calls for.
struct OpenedKeyFile {
    signer: Box<dyn Signer>,
    /// Certificates the file carried (PKCS#12), leaf first.
    bundled: Vec<Certificate>,
    /// SHA-256 of the file's bytes: how a reload tells a replaced key file (the bytes themselves,
    /// possibly an unencrypted key, are not kept).
    digest: [u8; 32],
}

fn open_key_file(path: &Path, opts: &KeyOptions) -> Result<OpenedKeyFile, Error> {
    let data = read_key_file(path)?;
    let digest = sha256(&data);
    if is_tss2_pem(&data) {
        return Ok(OpenedKeyFile {
            signer: open_tpm_file(&data, path, opts)?,
            bundled: Vec::new(),
            digest,
        });
    }
    let key = file::open(&data, path, opts)?;
    // A PKCS#12 file may carry the certificate (and chain) too.
    let bundled = key
        .certificates
        .into_iter()
        .map(Certificate::from_der)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(OpenedKeyFile {
        signer: Box::new(key.signer),
        bundled,
        digest,
    })
}

fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(data).into()
}

/// Checks that `signer` is `leaf`'s key and orders the chain above `leaf` from `candidates`.
fn check_and_chain(
    signer: &dyn Signer,
    leaf: &Certificate,
    candidates: Vec<Certificate>,
    cert_source: &str,
) -> Result<Vec<Certificate>, Error> {
    check_matches(
        signer,
        leaf.public_key(),
        &describe_certificate(cert_source, leaf),
    )?;
    Ok(certs::build_chain(leaf, candidates)?)
}

/// `SOURCE (SUBJECT)` for messages; a `pkcs11:` source without its `pin-value`.
fn describe_certificate(source: &str, leaf: &Certificate) -> String {
    format!("{} ({})", redact_uri(source), leaf.subject())
}

/// Reads a key file (a regular file of at most 1 MiB) into memory that is wiped on drop: it may hold
/// an unencrypted private key.
fn read_key_file(path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>, Error> {
    let data =
        userfile::read(path, userfile::Kind::PrivateKey).map_err(|source| file::Error::Read {
            path: path.into(),
            source,
        })?;
    Ok(data)
}

/// Through the program's TPM backend ([`super::backends`]): `rolesanywhere-agent` has none and
/// runs `rolesanywhere-agent-tpm` for a TPM key it sees at start, so reaching this without one means
/// the key appeared later (an agent's reload, a rotated key file).
#[cfg(feature = "tpm")]
fn open_tpm_file(data: &[u8], path: &Path, opts: &KeyOptions) -> Result<Box<dyn Signer>, Error> {
    match super::backends::tpm() {
        Some(tpm) => Ok(tpm.open_key_file(data, path, opts)?),
        None => Err(Error::TpmNotLoaded(crate::text::path(path))),
    }
}

#[cfg(feature = "tpm")]
fn open_tpm_handle(handle: &str, opts: &KeyOptions) -> Result<Box<dyn Signer>, Error> {
    match super::backends::tpm() {
        Some(tpm) => Ok(tpm.open_handle(handle, opts)?),
        None => Err(Error::TpmNotLoaded(crate::text::arg(handle))),
    }
}

#[cfg(not(feature = "tpm"))]
fn open_tpm_file(_: &[u8], path: &Path, _: &KeyOptions) -> Result<Box<dyn Signer>, Error> {
    Err(Error::TpmUnsupported(crate::text::path(path)))
}

#[cfg(not(feature = "tpm"))]
fn open_tpm_handle(handle: &str, _: &KeyOptions) -> Result<Box<dyn Signer>, Error> {
    Err(Error::TpmUnsupported(crate::text::arg(handle)))
}
