//! The TLS client configuration: rustls with ring and one source of trust roots.
//!
//! The roots are, in this order of precedence: the PEM bundle named by `AWS_CA_BUNDLE` *alone* (as
//! botocore's `verify` takes it); as with OpenSSL, the certificates in `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` when either is set to a non-empty value; otherwise the platform's store, which on
//! Linux is its bundle file alone (see [`platform_roots`]).
//!
//! Owns trust decisions only. `--no-verify-ssl` swaps in a verifier that accepts any server
//! certificate (the handshake signatures are still checked); the warning about it is the CLI's job.

use super::{ClientOptions, Error};
use crate::userfile;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

/// A PEM bundle of trust roots and the variable that named it.
#[derive(Debug, Clone)]
pub struct CaBundle {
    /// The file.
    pub path: PathBuf,
    /// `AWS_CA_BUNDLE` or `SSL_CERT_FILE`, for messages.
    pub variable: &'static str,
}

impl CaBundle {
    /// `AWS_CA_BUNDLE` replaces the system roots, as it does for botocore and the AWS CLI; a bundle
    /// from `SSL_CERT_FILE` joins `SSL_CERT_DIR` as OpenSSL reads them.
    fn replaces_system_roots(&self) -> bool {
        self.variable == "AWS_CA_BUNDLE"
    }
}

/// Builds the rustls configuration of the HTTP client (`http.rs`).
pub(super) fn client_config(opts: &ClientOptions) -> Result<ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(Error::Tls)?;
    let mut config = if opts.verify_tls {
        builder
            .with_root_certificates(root_store(opts.ca_bundle.as_ref(), &|name| {
                std::env::var_os(name)
            })?)
            .with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The trust roots; `env` looks up environment variables.
fn root_store(
    bundle: Option<&CaBundle>,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    let system = match bundle {
        Some(b) if b.replaces_system_roots() => Vec::new(),
        // The bundle is SSL_CERT_FILE, read (strictly) below: of OpenSSL's pair only the
        // directories are left to read, and the file is parsed once.
        Some(_) => load_paths(None, &cert_dirs(env)),
        None => system_roots(env),
    };
    roots.add_parsable_certificates(system);
    if let Some(b) = bundle {
        let fail = |source: Box<dyn std::error::Error + Send + Sync>| Error::CaBundle {
            path: b.path.clone(),
            variable: b.variable,
            source,
        };
        // Read like every file the user names: a regular file (a FIFO would block, /dev/zero would
        // grow without end) of bounded size, and a bounded number of certificates.
        let pem =
            userfile::read(&b.path, userfile::Kind::CaBundle).map_err(|e| fail(Box::new(e)))?;
        let certs = bundle_certificates(&pem).map_err(fail)?;
        if certs.is_empty() {
            return Err(fail("the file holds no CERTIFICATE block".into()));
        }
        for c in certs {
            roots.add(c).map_err(|e| fail(Box::new(e)))?;
        }
    }
    Ok(roots)
}

/// The trust roots the client verifies the server with, as `doctor` names them.
#[derive(Debug, Clone)]
pub struct TrustStore {
    /// Where the roots come from: `AWS_CA_BUNDLE file /x/ca.pem (it replaces the system roots)`,
    /// `the system store /etc/ssl/certs/ca-certificates.crt`…
    pub source: String,
    /// How many roots it holds (0 with `--no-verify-ssl`, which uses none).
    pub roots: usize,
}

/// The trust store `opts` makes the client use, read exactly as [`client_config`] reads it (the
/// same precedence, the same errors).
pub fn trust_store(opts: &ClientOptions) -> Result<TrustStore, Error> {
    if !opts.verify_tls {
        return Ok(TrustStore {
            source: "none: --no-verify-ssl accepts any server certificate".into(),
            roots: 0,
        });
    }
    let env = |name: &str| std::env::var_os(name);
    let roots = root_store(opts.ca_bundle.as_ref(), &env)?.roots.len();
    Ok(TrustStore {
        source: store_source(opts.ca_bundle.as_ref(), &env),
        roots,
    })
}

/// Where [`root_store`] takes the roots from, in words.
fn store_source(bundle: Option<&CaBundle>, env: &dyn Fn(&str) -> Option<OsString>) -> String {
    let dirs = cert_dirs(env);
    let shown_dirs = || {
        dirs.iter()
            .map(|d| crate::text::path(d))
            .collect::<Vec<_>>()
            .join(":")
    };
    match bundle {
        Some(b) if b.replaces_system_roots() => format!(
            "{} file {} (it replaces the system roots)",
            b.variable,
            crate::text::path(&b.path)
        ),
        Some(b) if dirs.is_empty() => {
            format!("{} file {}", b.variable, crate::text::path(&b.path))
        }
        Some(b) => format!(
            "{} file {} and SSL_CERT_DIR {}",
            b.variable,
            crate::text::path(&b.path),
            shown_dirs()
        ),
        None => {
            let file = env("SSL_CERT_FILE").filter(|v| !v.is_empty());
            match (file, dirs.is_empty()) {
                (Some(f), true) => format!("SSL_CERT_FILE file {}", crate::text::path(f.as_ref())),
                (Some(f), false) => format!(
                    "SSL_CERT_FILE file {} and SSL_CERT_DIR {}",
                    crate::text::path(f.as_ref()),
                    shown_dirs()
                ),
                (None, false) => format!("SSL_CERT_DIR {}", shown_dirs()),
                (None, true) => platform_source(),
            }
        }
    }
}

/// The platform's store as [`platform_roots`] reads it.
#[cfg(all(unix, not(target_os = "macos")))]
fn platform_source() -> String {
    let probe = openssl_probe::probe();
    match probe.cert_file {
        Some(file) => format!("the system store {}", crate::text::path(&file)),
        None if probe.cert_dir.is_empty() => {
            "the system store (none found: no CA bundle file or directory)".into()
        }
        None => format!(
            "the system store directories {}",
            probe
                .cert_dir
                .iter()
                .map(|d| crate::text::path(d))
                .collect::<Vec<_>>()
                .join(":")
        ),
    }
}

/// The platform's store as [`platform_roots`] reads it.
#[cfg(not(all(unix, not(target_os = "macos"))))]
fn platform_source() -> String {
    "the platform's certificate store".into()
}

/// Most certificates read from a CA bundle: system bundles hold about 150 roots.
const MAX_BUNDLE_CERTIFICATES: usize = 1000;

/// The certificates of a PEM bundle; a malformed block, or more than [`MAX_BUNDLE_CERTIFICATES`], is an
/// error.
fn bundle_certificates(
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, Box<dyn std::error::Error + Send + Sync>> {
    let mut certs = Vec::new();
    for c in CertificateDer::pem_slice_iter(pem) {
        if certs.len() == MAX_BUNDLE_CERTIFICATES {
            return Err(format!(
                "the file holds more than {MAX_BUNDLE_CERTIFICATES} certificates; a CA bundle holds \
                 trust roots, which are far fewer"
            )
            .into());
        }
        certs.push(c?);
    }
    Ok(certs)
}

/// The system's trust roots; `env` looks up environment variables.
///
/// `SSL_CERT_FILE` / `SSL_CERT_DIR` set to a non-empty value replace the platform's store. An empty
/// value counts as unset: `rustls_native_certs::load_native_certs` would take a set-but-empty
/// `SSL_CERT_FILE` as a file named "" and return no roots at all, so it is only called when neither
/// variable is set. Unreadable or odd certificates are skipped: one bad file must not break TLS.
fn system_roots(env: &dyn Fn(&str) -> Option<OsString>) -> Vec<CertificateDer<'static>> {
    let file = env("SSL_CERT_FILE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let dirs = cert_dirs(env);
    if file.is_none() && dirs.is_empty() {
        return platform_roots();
    }
    load_paths(file, &dirs)
}

/// The directories of `SSL_CERT_DIR` (a `:`-separated list; empty entries skipped).
fn cert_dirs(env: &dyn Fn(&str) -> Option<OsString>) -> Vec<PathBuf> {
    env("SSL_CERT_DIR")
        .map(|v| {
            std::env::split_paths(&v)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// The certificates in `file` and in the files of each of `dirs`, each once.
fn load_paths(file: Option<PathBuf>, dirs: &[PathBuf]) -> Vec<CertificateDer<'static>> {
    // The file is read like a CA bundle (`SSL_CERT_FILE` is also one, and reports its errors as
    // such); rustls-native-certs would block on a FIFO and read /dev/zero until memory runs out. It
    // reads only the regular files of the directories.
    let mut certs = file.map_or_else(Vec::new, |f| {
        userfile::read(&f, userfile::Kind::CaBundle).map_or_else(
            |_| Vec::new(),
            |pem| {
                CertificateDer::pem_slice_iter(&pem)
                    .map_while(Result::ok)
                    .collect()
            },
        )
    });
    for dir in dirs {
        certs.extend(rustls_native_certs::load_certs_from_paths(None, Some(dir)).certs);
    }
    certs.sort_unstable_by(|a, b| a.as_ref().cmp(b.as_ref()));
    certs.dedup();
    certs
}

/// The platform's store on Linux and other Unix systems: openssl-probe's well-known bundle file
/// (Debian: `/etc/ssl/certs/ca-certificates.crt`), found without looking at the variables.
///
/// Only the file, not also the directory next to it as rustls-native-certs reads: the distributions'
/// trust tools (update-ca-certificates, update-ca-trust) write the same roots to both, and parsing
/// every PEM file of `/etc/ssl/certs` again cost 42 % of a whole `credential-process` (bench/). The
/// directories are read only where no bundle file exists.
#[cfg(all(unix, not(target_os = "macos")))]
fn platform_roots() -> Vec<CertificateDer<'static>> {
    let probe = openssl_probe::probe();
    store_roots(probe.cert_file, &probe.cert_dir)
}

/// The roots of a store found at `file` and `dirs`: the file when there is one, else the directories.
#[cfg(all(unix, not(target_os = "macos")))]
fn store_roots(file: Option<PathBuf>, dirs: &[PathBuf]) -> Vec<CertificateDer<'static>> {
    match file {
        Some(file) => load_paths(Some(file), &[]),
        None => load_paths(None, dirs),
    }
}

/// The platform's store (Windows, macOS). A set-but-empty variable still hides it there; the
/// variables are rarely set on those systems.
#[cfg(not(all(unix, not(target_os = "macos"))))]
fn platform_roots() -> Vec<CertificateDer<'static>> {
    rustls_native_certs::load_native_certs().certs
}

/// `--no-verify-ssl`: any server certificate is accepted; handshake signatures are still verified.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_bundle_names_file_and_variable() {
        let opts = ClientOptions {
            ca_bundle: Some(CaBundle {
                path: "/nonexistent/ca.pem".into(),
                variable: "AWS_CA_BUNDLE",
            }),
            ..ClientOptions::default()
        };
        let e = client_config(&opts).unwrap_err().to_string();
        assert!(
            e.contains("/nonexistent/ca.pem") && e.contains("AWS_CA_BUNDLE"),
            "{e}"
        );
    }

    #[test]
    fn bundle_without_certificates_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("empty.pem");
        std::fs::write(&p, "nothing here\n").unwrap();
        let opts = ClientOptions {
            ca_bundle: Some(CaBundle {
                path: p,
                variable: "SSL_CERT_FILE",
            }),
            ..ClientOptions::default()
        };
        let e = client_config(&opts).unwrap_err();
        let chain = crate::cli::error_text(&e);
        assert!(chain.contains("no CERTIFICATE block"), "{chain}");
    }

    fn sorted(mut certs: Vec<CertificateDer<'static>>) -> Vec<CertificateDer<'static>> {
        certs.sort_unstable_by(|a, b| a.as_ref().cmp(b.as_ref()));
        certs.dedup();
        certs
    }

    #[test]
    fn empty_ssl_cert_file_and_dir_keep_the_system_roots() {
        let unset = system_roots(&|_| None);
        let empty = system_roots(&|name| {
            matches!(name, "SSL_CERT_FILE" | "SSL_CERT_DIR").then(OsString::new)
        });
        assert_eq!(empty.len(), unset.len());
        assert!(empty == unset, "an empty variable must count as unset");
        // Without the variables, the roots rustls-native-certs finds, read from one source only.
        if std::env::var_os("SSL_CERT_FILE").is_none() && std::env::var_os("SSL_CERT_DIR").is_none()
        {
            let native = sorted(rustls_native_certs::load_native_certs().certs);
            assert!(unset.iter().all(|c| native.contains(c)));
            if let Some(file) = openssl_probe::probe().cert_file {
                let pem = std::fs::read(file).unwrap();
                let in_file = sorted(
                    CertificateDer::pem_slice_iter(&pem)
                        .map_while(Result::ok)
                        .collect(),
                );
                assert!(
                    unset == in_file,
                    "the bundle file alone, not also the directory"
                );
            }
        }
    }

    #[test]
    fn the_store_is_its_bundle_file_not_also_its_directory() {
        let vectors = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/vectors");
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("certs");
        std::fs::create_dir(&dir).unwrap();
        std::fs::copy(
            format!("{vectors}/create-session-p256/leaf.pem"),
            dir.join("only-in-dir.pem"),
        )
        .unwrap();
        let file: PathBuf = format!("{vectors}/create-session-rsa/leaf.pem").into();
        let file_roots = store_roots(Some(file.clone()), std::slice::from_ref(&dir));
        assert_eq!(file_roots, load_paths(Some(file), &[]));
        // Without a bundle file, the directory is the store.
        assert_eq!(store_roots(None, &[dir]).len(), 1);
    }

    #[test]
    fn aws_ca_bundle_replaces_the_system_roots() {
        let path: PathBuf = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/vectors/create-session-rsa/leaf.pem"
        )
        .into();
        let bundle = |variable| CaBundle {
            path: path.clone(),
            variable,
        };
        let vectors = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/vectors");
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            format!("{vectors}/create-session-p256/leaf.pem"),
            dir.path().join("a.pem"),
        )
        .unwrap();
        let with_dir = |name: &str| (name == "SSL_CERT_DIR").then(|| dir.path().into());
        let aws = root_store(Some(&bundle("AWS_CA_BUNDLE")), &with_dir).unwrap();
        assert_eq!(aws.roots.len(), 1, "AWS_CA_BUNDLE alone is trusted");
        // SSL_CERT_FILE is read as OpenSSL does: with SSL_CERT_DIR, not instead of it, and once.
        let ssl = root_store(Some(&bundle("SSL_CERT_FILE")), &with_dir).unwrap();
        assert_eq!(ssl.roots.len(), 2);
        let ssl = root_store(Some(&bundle("SSL_CERT_FILE")), &|_| None).unwrap();
        assert_eq!(ssl.roots.len(), 1, "the file is parsed once");
    }

    #[test]
    fn ssl_cert_file_replaces_the_system_roots() {
        let path: PathBuf = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/vectors/create-session-rsa/leaf.pem"
        )
        .into();
        let roots = system_roots(&|name| (name == "SSL_CERT_FILE").then(|| path.clone().into()));
        assert_eq!(roots.len(), 1);
    }
}
