//! From the user's options to a ready identity: a signer, its certificate and the chain.
//!
//! Dispatch: `--private-key` starting `pkcs11:` (or no key and a `pkcs11:` certificate) → PKCS#11;
//! `handle:` or a PEM file labelled `TSS2 PRIVATE KEY` → TPM; any other file → key file backend.
//! Everything that can fail locally fails here, before any network call: files, device login, key
//! lookup and the check that the key belongs to the certificate.

use super::pkcs11::redact_uri;
use super::{Error, Signer, file, pkcs11};
use crate::certs::{self, Certificate};
use crate::secret::Secret;
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
}

impl std::fmt::Debug for KeyOptions {
    // `--certificate` and `--private-key` may be `pkcs11:` URIs carrying `pin-value`: show them without it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyOptions")
            .field("certificate", &self.certificate.as_deref().map(redact_uri))
            .field("private_key", &self.private_key.as_deref().map(redact_uri))
            .field("intermediates", &self.intermediates)
            .field("pkcs11_lib", &self.pkcs11_lib)
            .field("reuse_pin", &self.reuse_pin)
            .field("tpm_tcti", &self.tpm_tcti)
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

/// What `--private-key` names.
enum KeySource<'a> {
    Pkcs11,
    TpmHandle(&'a str),
    File(&'a Path),
}

fn key_source(opts: &KeyOptions) -> Result<KeySource<'_>, Error> {
    match opts.private_key.as_deref() {
        Some(k) if k.starts_with("pkcs11:") => Ok(KeySource::Pkcs11),
        Some(k) if k.starts_with("handle:") => Ok(KeySource::TpmHandle(k)),
        Some(k) => Ok(KeySource::File(Path::new(k))),
        None if opts
            .certificate
            .as_deref()
            .is_some_and(|c| c.starts_with("pkcs11:")) =>
        {
            Ok(KeySource::Pkcs11)
        }
        None => Err(Error::NoPrivateKey),
    }
}

/// Opens the key and certificate named by `opts` and checks that they belong together.
pub fn open(opts: &KeyOptions) -> Result<Identity, Error> {
    // Certificates from files: the first is the leaf, the rest are chain candidates.
    let mut file_certs = match opts.certificate.as_deref() {
        Some(c) if !c.starts_with("pkcs11:") => certs::load_pem_file(Path::new(c))?,
        _ => Vec::new(),
    };
    let mut candidates = match &opts.intermediates {
        Some(p) => certs::load_pem_file(p)?,
        None => Vec::new(),
    };
    let file_leaf = if file_certs.is_empty() {
        None
    } else {
        Some(file_certs.remove(0))
    };
    candidates.extend(file_certs);

    let (signer, leaf, cert_desc): (Box<dyn Signer>, Certificate, String) = match key_source(opts)?
    {
        KeySource::Pkcs11 => {
            let opened = pkcs11::open(opts, file_leaf.as_ref())?;
            if opts.intermediates.is_none() {
                candidates.extend(opened.token_certificates);
            }
            let desc = opts.certificate.clone().unwrap_or_default();
            (Box::new(opened.signer), opened.leaf, desc)
        }
        KeySource::TpmHandle(h) => {
            let leaf = file_leaf.ok_or(Error::NoCertificate)?;
            (
                open_tpm_handle(h, opts)?,
                leaf,
                opts.certificate.clone().unwrap_or_default(),
            )
        }
        KeySource::File(path) => {
            let data = read_key_file(path)?;
            let signer: Box<dyn Signer>;
            let mut leaf = file_leaf;
            if is_tss2_pem(&data) {
                signer = open_tpm_file(&data, path, opts)?;
            } else {
                let key = file::open(&data, path, opts)?;
                // A PKCS#12 file may carry the certificate (and chain) too.
                let mut bundled = key
                    .certificates
                    .into_iter()
                    .map(Certificate::from_der)
                    .collect::<Result<Vec<_>, _>>()?;
                if leaf.is_none() && !bundled.is_empty() {
                    leaf = Some(bundled.remove(0));
                }
                candidates.extend(bundled);
                signer = Box::new(key.signer);
            }
            let leaf = leaf.ok_or(Error::NoCertificate)?;
            let desc = opts
                .certificate
                .clone()
                .unwrap_or_else(|| path.display().to_string());
            (signer, leaf, desc)
        }
    };

    super::check_matches(
        signer.as_ref(),
        leaf.public_key(),
        &describe_certificate(&cert_desc, &leaf),
    )?;
    let chain = certs::build_chain(&leaf, candidates)?;
    Ok(Identity {
        signer,
        leaf,
        chain,
    })
}

/// `SOURCE (SUBJECT)` for messages; a `pkcs11:` source without its `pin-value`.
fn describe_certificate(source: &str, leaf: &Certificate) -> String {
    format!("{} ({})", redact_uri(source), leaf.subject())
}

/// Opens only the key named by `--private-key`, with no certificate needed or checked: for
/// `sign-string` without `--certificate` and for enrollment (there is no certificate yet).
pub fn open_key(opts: &KeyOptions) -> Result<Box<dyn Signer>, Error> {
    match key_source(opts)? {
        KeySource::Pkcs11 => Ok(Box::new(pkcs11::open_key(opts)?)),
        KeySource::TpmHandle(h) => open_tpm_handle(h, opts),
        KeySource::File(path) => {
            let data = read_key_file(path)?;
            if is_tss2_pem(&data) {
                open_tpm_file(&data, path, opts)
            } else {
                Ok(Box::new(file::open(&data, path, opts)?.signer))
            }
        }
    }
}

/// Reads a key file into memory that is wiped on drop (it may hold an unencrypted private key).
fn read_key_file(path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>, Error> {
    let data = std::fs::read(path).map_err(|source| file::Error::Read {
        path: path.into(),
        source,
    })?;
    Ok(zeroize::Zeroizing::new(data))
}

/// True for a PEM whose first block is `TSS2 PRIVATE KEY`.
pub fn is_tss2_pem(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&data[..data.len().min(4096)]);
    text.trim_start()
        .starts_with("-----BEGIN TSS2 PRIVATE KEY-----")
}

#[cfg(feature = "tpm")]
fn open_tpm_file(data: &[u8], path: &Path, opts: &KeyOptions) -> Result<Box<dyn Signer>, Error> {
    Ok(Box::new(super::tpm::open_key_file(data, path, opts)?))
}

#[cfg(feature = "tpm")]
fn open_tpm_handle(handle: &str, opts: &KeyOptions) -> Result<Box<dyn Signer>, Error> {
    Ok(Box::new(super::tpm::open_handle(handle, opts)?))
}

#[cfg(not(feature = "tpm"))]
fn open_tpm_file(_: &[u8], path: &Path, _: &KeyOptions) -> Result<Box<dyn Signer>, Error> {
    Err(Error::TpmUnsupported(path.display().to_string()))
}

#[cfg(not(feature = "tpm"))]
fn open_tpm_handle(handle: &str, _: &KeyOptions) -> Result<Box<dyn Signer>, Error> {
    Err(Error::TpmUnsupported(handle.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_description_never_shows_pin_value() {
        let der = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/keys/leaf.crt.der"),
        )
        .unwrap();
        let leaf = Certificate::from_der(der).unwrap();
        let d = describe_certificate("pkcs11:token=a;type=cert?pin-value=hunter2", &leaf);
        assert!(
            !d.contains("hunter2") && d.contains("pin-value=<redacted>"),
            "{d}"
        );
    }

    #[test]
    fn debug_never_shows_pin_value() {
        let opts = KeyOptions {
            certificate: Some("pkcs11:token=a;object=b?pin-value=1234&module-path=/x.so".into()),
            private_key: Some("pkcs11:token=a?pin-value=98765".into()),
            ..Default::default()
        };
        let d = format!("{opts:?}");
        assert!(!d.contains("1234") && !d.contains("98765"), "{d}");
        // Cut at pin-value: what follows may be PIN (signer::pkcs11::redact_uri).
        assert!(
            d.contains("pkcs11:token=a;object=b?pin-value=<redacted>\""),
            "{d}"
        );
    }
}
