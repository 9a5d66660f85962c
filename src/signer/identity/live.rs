//! An identity kept open for the life of a process, and read again from its sources on rotation.
//!
//! The device session opened once stays: a PKCS#11 signer keeps its logged-in session, a TPM key stays
//! loaded. [`LiveIdentity::reload`] re-reads what may be rotated under a running process (Kubernetes
//! swaps a `..data` symlink, certbot-style tools replace files): the certificate file, the
//! intermediates, a key file (reopened only when its bytes changed) and a `pkcs11:` certificate,
//! resolved again on the token through a new session of the already logged-in module (no `C_Login`:
//! PKCS#11 shares the login state between an application's sessions). The new identity replaces the
//! old one only when it is complete and its key matches its certificate; otherwise the error is
//! returned and the old identity keeps working.

use super::{
    Error, FileCertificates, Identity, KeyOptions, KeySource, check_and_chain, file_certificates,
    open_key_file, open_tpm_handle, read_key_file, sha256,
};
use crate::certs::Certificate;
use crate::signer::{Signer, pkcs11};
use std::path::PathBuf;
use time::OffsetDateTime;

/// What a [`LiveIdentity::reload`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// Certificate, chain and key are what they were.
    Unchanged,
    /// The leaf certificate or the chain changed; the signer (and its device session) is the same.
    Certificate,
    /// The key file changed: the key was opened again (and the certificate checked against it).
    Key,
}

/// Where the key came from, and what a reload needs to know about it.
enum Key {
    /// A key file (file backend or `TSS2 PRIVATE KEY`).
    File {
        path: PathBuf,
        /// SHA-256 of the bytes it was opened from.
        digest: [u8; 32],
        /// Certificates the file carried (PKCS#12), leaf first.
        bundled: Vec<Certificate>,
    },
    /// A token key. `token_certificates`: the chain candidates the token gave at open when the
    /// certificate is a file and no `--intermediates` was given (there is no certificate URI to
    /// search the token with again).
    Pkcs11 {
        token_certificates: Vec<Certificate>,
    },
    /// A TPM persistent key.
    TpmHandle,
}

/// An open identity that remembers its sources, for long-running commands.
pub struct LiveIdentity {
    opts: KeyOptions,
    key: Key,
    identity: Identity,
}

impl LiveIdentity {
    /// Opens the key and certificate named by `opts` and checks that they belong together (what
    /// [`super::open`] does), keeping the options for [`LiveIdentity::reload`].
    pub fn open(opts: &KeyOptions) -> Result<LiveIdentity, Error> {
        let FileCertificates {
            leaf: file_leaf,
            mut candidates,
        } = file_certificates(opts)?;
        let (key, signer, leaf, cert_source): (Key, Box<dyn Signer>, Certificate, String) =
            match KeySource::from_options(opts)? {
                KeySource::Pkcs11(_) => {
                    let opened = pkcs11::open(opts, file_leaf.as_ref())?;
                    let token_certificates = if opts.intermediates.is_none() {
                        opened.token_certificates
                    } else {
                        Vec::new()
                    };
                    candidates.extend(token_certificates.iter().cloned());
                    let source = opts.certificate.clone().unwrap_or_default();
                    (
                        Key::Pkcs11 { token_certificates },
                        Box::new(opened.signer),
                        opened.leaf,
                        source,
                    )
                }
                KeySource::TpmHandle(h) => {
                    let leaf = file_leaf.ok_or(Error::NoCertificate)?;
                    let signer = open_tpm_handle(&h, opts)?;
                    (Key::TpmHandle, signer, leaf, certificate_source(opts, None))
                }
                KeySource::File(path) => {
                    let opened = open_key_file(&path, opts)?;
                    let leaf = with_bundled(file_leaf, &opened.bundled, &mut candidates)?;
                    let source = certificate_source(opts, Some(&path));
                    let key = Key::File {
                        path,
                        digest: opened.digest,
                        bundled: opened.bundled,
                    };
                    (key, opened.signer, leaf, source)
                }
            };
        let chain = check_and_chain(signer.as_ref(), &leaf, candidates, &cert_source)?;
        Ok(LiveIdentity {
            opts: opts.clone(),
            key,
            identity: Identity {
                signer,
                leaf,
                chain,
            },
        })
    }

    /// The current identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The current identity, for good.
    pub fn into_identity(self) -> Identity {
        self.identity
    }

    /// Reads the certificate, the chain and a key file again from where [`LiveIdentity::open`] found
    /// them, and takes them when they changed: a `pkcs11:` certificate is resolved again on the
    /// token (the newest certificate valid now among those the URI matches), a key file whose bytes
    /// changed is opened again. The signer's device session is kept: no new PKCS#11 login, no new TPM
    /// load unless the TPM key file itself was replaced.
    ///
    /// On any error (a file missing or half-written, a certificate for another key, a broken chain)
    /// nothing changes: the old identity stays in use and the error says what was refused.
    pub fn reload(&mut self) -> Result<Reload, Error> {
        self.reload_at(OffsetDateTime::now_utc())
    }

    /// [`LiveIdentity::reload`] with the time that decides which token certificates are valid.
    pub fn reload_at(&mut self, now: OffsetDateTime) -> Result<Reload, Error> {
        let opts = &self.opts;
        let FileCertificates {
            leaf: file_leaf,
            mut candidates,
        } = file_certificates(opts)?;
        let mut new_key: Option<(Key, Box<dyn Signer>)> = None;
        let (leaf, cert_source) = match &self.key {
            Key::Pkcs11 { token_certificates } => match token_certificate_uri(opts) {
                Some(uri) => {
                    let (leaf, on_token) = resolve_on_token(opts, uri, now)?;
                    if opts.intermediates.is_none() {
                        candidates.extend(on_token);
                    }
                    (leaf, uri.to_string())
                }
                None => {
                    candidates.extend(token_certificates.iter().cloned());
                    let leaf = file_leaf.ok_or(Error::NoCertificate)?;
                    (leaf, certificate_source(opts, None))
                }
            },
            Key::TpmHandle => (
                file_leaf.ok_or(Error::NoCertificate)?,
                certificate_source(opts, None),
            ),
            Key::File {
                path,
                digest,
                bundled,
            } => {
                let source = certificate_source(opts, Some(path));
                let current = sha256(&read_key_file(path)?);
                if current == *digest {
                    (with_bundled(file_leaf, bundled, &mut candidates)?, source)
                } else {
                    let opened = open_key_file(path, opts)?;
                    let leaf = with_bundled(file_leaf, &opened.bundled, &mut candidates)?;
                    let key = Key::File {
                        path: path.clone(),
                        digest: opened.digest,
                        bundled: opened.bundled,
                    };
                    new_key = Some((key, opened.signer));
                    (leaf, source)
                }
            }
        };
        let signer: &dyn Signer = match &new_key {
            Some((_, s)) => s.as_ref(),
            None => self.identity.signer.as_ref(),
        };
        let chain = check_and_chain(signer, &leaf, candidates, &cert_source)?;

        // Everything checked: take it.
        if let Some((key, signer)) = new_key {
            self.key = key;
            self.identity = Identity {
                signer,
                leaf,
                chain,
            };
            return Ok(Reload::Key);
        }
        let same = leaf == self.identity.leaf
            && chain.len() == self.identity.chain.len()
            && chain.iter().zip(&self.identity.chain).all(|(a, b)| a == b);
        if same {
            return Ok(Reload::Unchanged);
        }
        self.identity.leaf = leaf;
        self.identity.chain = chain;
        Ok(Reload::Certificate)
    }
}

/// The leaf: the `--certificate` file's, else the first certificate a PKCS#12 file carried (whose
/// others become chain candidates).
fn with_bundled(
    file_leaf: Option<Certificate>,
    bundled: &[Certificate],
    candidates: &mut Vec<Certificate>,
) -> Result<Certificate, Error> {
    let mut bundled = bundled.to_vec();
    let leaf = match file_leaf {
        Some(l) => l,
        None if !bundled.is_empty() => bundled.remove(0),
        None => return Err(Error::NoCertificate),
    };
    candidates.extend(bundled);
    Ok(leaf)
}

/// How messages name the certificate: `--certificate` as given, else the key file that carried it.
fn certificate_source(opts: &KeyOptions, key_file: Option<&std::path::Path>) -> String {
    match (&opts.certificate, key_file) {
        (Some(c), _) => c.clone(),
        (None, Some(p)) => crate::text::path(p),
        (None, None) => String::new(),
    }
}

/// `--certificate` when it is a `pkcs11:` URI.
fn token_certificate_uri(opts: &KeyOptions) -> Option<&str> {
    opts.certificate
        .as_deref()
        .filter(|c| pkcs11::is_pkcs11_uri(c))
}

/// The leaf `uri` selects on the token now (the newest valid among its matches), and the token's other
/// certificates as chain candidates.
fn resolve_on_token(
    opts: &KeyOptions,
    uri: &str,
    now: OffsetDateTime,
) -> Result<(Certificate, Vec<Certificate>), Error> {
    let matches: Vec<Certificate> = pkcs11::list_certificates(opts)?
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    // list_certificates fails when nothing matches, so an empty list does not reach here.
    let leaf = newest_valid(matches, now).ok_or(Error::NoCertificate)?;
    let mut on_token = Vec::new();
    if opts.intermediates.is_none() {
        let token_wide = KeyOptions {
            certificate: Some(token_wide_uri(uri)),
            ..opts.clone()
        };
        on_token = pkcs11::list_certificates(&token_wide)?
            .into_iter()
            .map(|(_, c)| c)
            .filter(|c| *c != leaf)
            .collect();
    }
    Ok((leaf, on_token))
}

/// Of several certificates, the one issued last among those valid at `now`; when none is valid, the
/// one issued last (the service then says why it refuses it).
pub(super) fn newest_valid(certs: Vec<Certificate>, now: OffsetDateTime) -> Option<Certificate> {
    let valid = |c: &Certificate| c.not_before() <= now && now <= c.not_after();
    let newest = |a: &Certificate, b: &Certificate| a.not_before().cmp(&b.not_before());
    let pick = certs
        .iter()
        .filter(|c| valid(c))
        .max_by(|a, b| newest(a, b));
    pick.or_else(|| certs.iter().max_by(|a, b| newest(a, b)))
        .cloned()
}

/// `uri` without its `object` and `id` attributes: every certificate on the same token(s).
/// RFC 7512 percent-encodes `;` and `?` inside values, so splitting on them is exact.
pub(super) fn token_wide_uri(uri: &str) -> String {
    let uri = uri.trim_start();
    let (path, query) = match uri.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (uri, None),
    };
    let (scheme, attrs) = path.split_at(path.find(':').map_or(0, |i| i + 1));
    let kept: Vec<&str> = attrs
        .split(';')
        .filter(|a| {
            let name = a.split_once('=').map_or(*a, |(n, _)| n);
            !name.eq_ignore_ascii_case("object") && !name.eq_ignore_ascii_case("id")
        })
        .collect();
    let mut out = format!("{scheme}{}", kept.join(";"));
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}
