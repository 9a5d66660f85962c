//! The TLS client configuration: rustls with ring, the system roots plus an optional PEM bundle.
//!
//! Owns trust decisions only. `--no-verify-ssl` swaps in a verifier that accepts any server
//! certificate (the handshake signatures are still checked); the warning about it is the CLI's job.

use super::{ClientOptions, Error};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::PathBuf;
use std::sync::Arc;

/// A PEM bundle of extra trust roots and the variable that named it.
#[derive(Debug, Clone)]
pub struct CaBundle {
    /// The file.
    pub path: PathBuf,
    /// `AWS_CA_BUNDLE` or `SSL_CERT_FILE`, for messages.
    pub variable: &'static str,
}

/// Builds the rustls configuration reqwest is given.
pub(super) fn client_config(opts: &ClientOptions) -> Result<ClientConfig, Error> {
    // reqwest is built without a provider of its own; "already installed" is fine to ignore.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(Error::Tls)?;
    let mut config = if opts.verify_tls {
        builder
            .with_root_certificates(root_store(opts.ca_bundle.as_ref())?)
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

fn root_store(bundle: Option<&CaBundle>) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    // Unreadable or odd system certificates are skipped: one bad file must not break TLS.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(b) = bundle {
        let fail = |source: Box<dyn std::error::Error + Send + Sync>| Error::CaBundle {
            path: b.path.clone(),
            variable: b.variable,
            source,
        };
        let certs = CertificateDer::pem_file_iter(&b.path)
            .map_err(|e| fail(Box::new(e)))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(Box::new(e)))?;
        if certs.is_empty() {
            return Err(fail("the file holds no CERTIFICATE block".into()));
        }
        for c in certs {
            roots.add(c).map_err(|e| fail(Box::new(e)))?;
        }
    }
    Ok(roots)
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
        let chain = error_chain(&e);
        assert!(chain.contains("no CERTIFICATE block"), "{chain}");
    }

    fn error_chain(e: &dyn std::error::Error) -> String {
        let mut s = e.to_string();
        let mut cur = e.source();
        while let Some(c) = cur {
            s.push_str(": ");
            s.push_str(&c.to_string());
            cur = c.source();
        }
        s
    }
}
