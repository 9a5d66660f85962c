//! What can go wrong with a CreateSession call, how bad it is ([`Classify`]) and what the user can do
//! about it ([`Error::hint`]).
//!
//! Every text from a server or a lower library passes [`response::escape`] before it is kept: an
//! error here reaches a terminal. No error holds a secret (the proxy and endpoint URLs come without
//! user info).

use super::MIN_REMAINING;
use super::http::HttpError;
use super::response;
use crate::certs;
use crate::sigv4x509;
use rolesanywhere_core::{Classify, ErrorClass};
use std::path::PathBuf;

/// Why an attempt failed below HTTP, for the message and the hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportFailure {
    /// Connecting, sending or receiving failed.
    Io,
    /// No complete answer within the time limit of the attempt or of the whole call.
    TimedOut,
    /// The server's certificate does not chain to a trusted root, or is refused otherwise.
    Untrusted,
    /// The server's certificate is trusted but not issued for the host connected to.
    WrongName {
        /// The host name (or address) of the endpoint.
        host: String,
        /// The names the certificate is valid for (escaped), when known.
        names: Option<Vec<String>>,
    },
}

/// CreateSession failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The endpoint URL is unusable.
    #[error("invalid endpoint {url:?}: {reason}")]
    Endpoint {
        /// What the user gave, without any user name or password.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A proxy variable holds something that is not a usable proxy URL.
    #[error("{variable}={value:?} is not a usable proxy URL: {reason}")]
    Proxy {
        /// The variable, for the user to fix.
        variable: &'static str,
        /// Its value, without any user name or password.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A CA bundle could not be read or holds no usable certificate.
    #[error("cannot load CA bundle {path} (from {variable})")]
    CaBundle {
        /// The file.
        path: PathBuf,
        /// The variable it came from, for the user to fix.
        variable: &'static str,
        /// The failure.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The TLS configuration could not be built.
    #[error("cannot configure TLS")]
    Tls(#[source] rustls::Error),
    /// The request could not be signed (device or key failure).
    #[error(transparent)]
    Sign(#[from] sigv4x509::Error),
    /// The service could not be reached, did not answer in time, or its certificate is refused.
    #[error("{}", transport_message(url, *attempts, failure))]
    Transport {
        /// The request URL without query.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// What failed.
        failure: TransportFailure,
        /// Another attempt may succeed (connection, timeout and body failures).
        transient: bool,
        /// The last failure, as escaped text ([`Cause`]).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The service answered with a redirect. CreateSession never redirects, and following one
    /// would send the signed request wherever the server says (plain http included) and take
    /// credentials from there: it is an error, not followed and not retried.
    #[error("{url} answered HTTP {status}, a redirect to {location}; redirects are not followed")]
    Redirect {
        /// The request URL without query.
        url: String,
        /// The 3xx status.
        status: u16,
        /// The `Location` header, quoted and escaped, without user info; or "nowhere".
        location: String,
    },
    /// The service answered with an error status.
    #[error(
        "CreateSession refused by {url}: HTTP {status}{}{}{}",
        if error_type.is_empty() { "" } else { " " },
        error_type,
        if message.is_empty() { String::new() } else { format!(": {message}") }
    )]
    Service {
        /// The request URL without query.
        url: String,
        /// HTTP status code.
        status: u16,
        /// `X-Amzn-ErrorType` (or the body's `__type`), without the `:…` suffix; may be empty.
        error_type: String,
        /// The service's message (control characters removed, length bounded); may be empty.
        message: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The service refused the certificate, and the leaf itself breaks a rule the service enforces:
    /// the refusal as it came, with what is wrong with the leaf for the hint (the service only says
    /// "Untrusted signing certificate", which reads like a chain problem).
    #[error("{refusal}")]
    LeafRefused {
        /// The service's answer ([`Error::Service`]).
        refusal: Box<Error>,
        /// The leaf's subject (RFC 4514, escaped for terminals).
        subject: String,
        /// What the service refuses about the leaf.
        problems: Vec<certs::LeafProblem>,
    },
    /// A success status with a body that is not the documented credential set.
    #[error("malformed CreateSession response: {reason}")]
    MalformedResponse {
        /// What is missing or wrong (never a value from the body).
        reason: String,
    },
    /// A credential set that expires before it could be used (see [`MIN_REMAINING`]).
    #[error(
        "the credentials from {url} expire at {expiration}, which is not at least {} s after now \
         ({now})", MIN_REMAINING.whole_seconds()
    )]
    ExpiredCredentials {
        /// The request URL without query.
        url: String,
        /// The credentials' expiration, UTC.
        expiration: String,
        /// The local clock when the answer arrived, UTC.
        now: String,
    },
}

impl Error {
    /// What the user can do about this error, when it is known.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Service {
                url,
                status,
                error_type,
                message,
                ..
            } => response::hint(url, *status, error_type, message),
            Error::LeafRefused {
                subject, problems, ..
            } => Some(response::leaf_hint(subject, problems)),
            Error::Transport { failure, .. } => Some(transport_hint(failure)),
            Error::Redirect { .. } => Some(
                "CreateSession never redirects: set --endpoint to the service's own base URL, with \
                 https (a redirect usually means http instead of https, a wrong host, or a proxy or \
                 gateway in the way)"
                    .into(),
            ),
            Error::ExpiredCredentials { .. } => Some(
                "a session lasts at least 15 minutes, so either this machine's clock is wrong \
                 (check it, e.g. with timedatectl) or the server at --endpoint is not the real \
                 service or sends stale answers"
                    .into(),
            ),
            Error::CaBundle { .. } => Some(
                "point AWS_CA_BUNDLE (or SSL_CERT_FILE) at a readable PEM file of CA certificates"
                    .into(),
            ),
            Error::Proxy { variable, .. } => Some(format!(
                "set {variable} to the proxy's URL, e.g. http://proxy.example:3128 (with a password \
                 percent-encoded), or unset it"
            )),
            _ => None,
        }
    }
}

/// The class of each failure, beside its hint: the endpoint, proxy, CA bundle and TLS settings are the
/// user's; a signing failure is whatever the backend says; the network and the service are
/// operational.
impl Classify for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::Endpoint { .. }
            | Error::Proxy { .. }
            | Error::CaBundle { .. }
            | Error::Tls(_) => ErrorClass::Configuration,
            Error::Sign(s) => s.class(),
            _ => ErrorClass::Operational,
        }
    }
}

/// `cannot reach URL (N attempts)`, `timed out waiting for URL (N attempts)`, or `the server
/// certificate of URL is not trusted (1 attempt)`.
fn transport_message(url: &str, attempts: u32, failure: &TransportFailure) -> String {
    let attempts = format!("{attempts} attempt{}", if attempts == 1 { "" } else { "s" });
    match failure {
        TransportFailure::Io => format!("cannot reach {url} ({attempts})"),
        TransportFailure::TimedOut => {
            format!("timed out waiting for a complete answer from {url} ({attempts})")
        }
        TransportFailure::Untrusted => {
            format!("the server certificate of {url} is not trusted ({attempts})")
        }
        TransportFailure::WrongName { host, .. } => {
            format!("the server certificate of {url} is not valid for {host} ({attempts})")
        }
    }
}

fn transport_hint(failure: &TransportFailure) -> String {
    match failure {
        TransportFailure::Io => "check the endpoint, DNS, the network and HTTPS_PROXY/NO_PROXY; \
                                 for a private CA set AWS_CA_BUNDLE"
            .into(),
        TransportFailure::TimedOut => "the service did not send a complete answer in time (each \
                                       attempt is cut off after --timeout, its connection after \
                                       --connect-timeout): check the network and \
                                       HTTPS_PROXY/NO_PROXY, or raise the limits"
            .into(),
        TransportFailure::Untrusted => "the server's certificate does not chain to a trusted \
                                        root: for a private CA or a TLS-inspecting proxy set \
                                        AWS_CA_BUNDLE to its PEM file; otherwise check --endpoint"
            .into(),
        TransportFailure::WrongName { host, names } => {
            let valid = match names.as_deref() {
                Some([]) => "the certificate names no host (it has no subjectAltName)".to_string(),
                Some(names) => format!("the certificate is valid for {}", names.join(", ")),
                None => "the certificate is issued for other names".to_string(),
            };
            format!(
                "{valid}, not for {host}: use one of its names in --endpoint, or have the server \
                 (or a TLS-inspecting proxy) present a certificate for {host}"
            )
        }
    }
}

/// A lower-level failure as escaped text, with no source of its own: the error chains of the HTTP
/// and TLS libraries can quote server-supplied text (a certificate's names, say) verbatim.
#[derive(Debug)]
pub(super) struct Cause(String);

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Cause {}

impl Cause {
    /// `err` and its sources joined with `: ` (a source whose text its parent already ends with is
    /// left out), escaped for a terminal.
    pub(super) fn of(err: &(dyn std::error::Error + 'static)) -> Cause {
        Cause(response::escape(&crate::text::error_chain(err)))
    }
}

/// A name as webpki reports it (`DnsName("h")`, `IpAddress(1.2.3.4)`), as the bare name, escaped:
/// the text is the server certificate's.
fn presented_name(n: &str) -> String {
    let bare = n
        .strip_prefix("DnsName(\"")
        .and_then(|s| s.strip_suffix("\")"))
        .or_else(|| {
            n.strip_prefix("IpAddress(")
                .and_then(|s| s.strip_suffix(')'))
        })
        .unwrap_or(n);
    response::escape(bare)
}

/// A refusal of the certificate becomes [`Error::LeafRefused`] when the leaf breaks one of the
/// service's rules at `now`: then that, not the chain, is the likely cause.
pub(super) fn with_leaf_problems(
    refusal: Error,
    leaf: &certs::Certificate,
    now: time::OffsetDateTime,
) -> Error {
    let Error::Service {
        status: 403,
        message,
        ..
    } = &refusal
    else {
        return refusal;
    };
    if !message.to_ascii_lowercase().contains("untrusted") {
        return refusal;
    }
    let problems = certs::leaf_problems(leaf, now);
    if problems.is_empty() {
        return refusal;
    }
    Error::LeafRefused {
        refusal: Box::new(refusal),
        subject: leaf.subject(),
        problems,
    }
}

/// What a failed request says about the transport: the server's certificate refused for its name
/// or otherwise, a timeout, or a plain I/O failure. `host` is the endpoint's host name.
///
/// The transport reports a rustls error as the payload of an `io::Error`. `io::Error::source()`
/// returns the *payload's* source, skipping the payload itself, so the plain source chain never
/// reaches rustls: step into `get_ref()` for every `io::Error` instead.
pub(super) fn classify(e: &HttpError, host: &str) -> TransportFailure {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        match err.downcast_ref::<rustls::Error>() {
            Some(rustls::Error::InvalidCertificate(c)) => return refused_certificate(c, host),
            Some(rustls::Error::NoCertificatesPresented) => return TransportFailure::Untrusted,
            _ => {}
        }
        cur = match err
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => Some(inner),
            None => err.source(),
        };
    }
    if e.is_timeout() {
        TransportFailure::TimedOut
    } else {
        TransportFailure::Io
    }
}

/// A certificate refused for its name gets its own message and hint (the "does not chain to a
/// trusted root" advice would send the user after the wrong problem).
fn refused_certificate(c: &rustls::CertificateError, host: &str) -> TransportFailure {
    match c {
        rustls::CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => TransportFailure::WrongName {
            host: response::escape(&expected.to_str()),
            names: Some(presented.iter().map(|n| presented_name(n)).collect()),
        },
        rustls::CertificateError::NotValidForName => TransportFailure::WrongName {
            host: host.to_string(),
            names: None,
        },
        _ => TransportFailure::Untrusted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presented_names_are_bare_and_escaped() {
        assert_eq!(
            presented_name(r#"DnsName("other.example")"#),
            "other.example"
        );
        assert_eq!(presented_name("IpAddress(10.0.0.1)"), "10.0.0.1");
        assert_eq!(
            presented_name("DnsName(\"a\u{1b}[31m\u{202e}b\")"),
            "a\\u{1b}[31m\\u{202e}b"
        );
    }
}
