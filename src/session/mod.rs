//! The CreateSession client: endpoint, HTTP/1.1 over rustls (ring), retries, time limits and error
//! hints.
//!
//! Owns the network side of the protocol: it builds the request URL and body, asks
//! [`crate::sigv4x509::sign_request`] for fresh headers on every attempt, sends, retries what is worth
//! retrying within one time limit for the whole call, and turns the answer into [`Credentials`] or
//! an [`Error`] with a hint. It must not print (diagnostics go through the caller's debug callback),
//! must never expose a secret in an error, a log line or `Debug` output, and escapes server text
//! before it can reach a terminal.
//!
//! By phase: `mod.rs` builds the client; `retry.rs` is the retry policy and the call's time limit;
//! `attempt.rs` is one signed request and its answer; `error.rs` holds [`Error`] with its class and
//! hint; `http.rs` is the HTTP/1.1 transport. `endpoint.rs`, `proxy.rs` and `tls.rs` turn settings
//! into what the transport uses;
//! `response.rs` reads the service's answers; `probe.rs` is `doctor --live`'s look at the endpoint.

mod attempt;
#[cfg(test)]
mod client_tests;
mod endpoint;
mod error;
pub(crate) mod http;
mod probe;
mod proxy;
pub(crate) mod response;
mod retry;
mod tls;

pub use attempt::MIN_REMAINING;
pub use endpoint::Endpoint;
pub use error::{Error, TransportFailure};
pub use http::Stage;
pub use probe::{Probe, ProbeError, Route, parse_http_date};
pub use proxy::Proxies;
pub use response::Credentials;
pub use tls::{CaBundle, TrustStore, trust_store};

use std::time::Duration;

/// Content type of the CreateSession body.
const CONTENT_TYPE: &str = "application/json";

/// How the HTTP client connects.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Limit for establishing a connection (TCP and TLS), within [`ClientOptions::timeout`].
    pub connect_timeout: Duration,
    /// Limit for one whole attempt: connect, TLS, sending the request and receiving the complete
    /// answer. The whole call is limited to `max_attempts` times this plus the backoff waits.
    pub timeout: Duration,
    /// Verify the server's certificate (false only with `--no-verify-ssl`).
    pub verify_tls: bool,
    /// A PEM bundle of trust roots: from `AWS_CA_BUNDLE`, which then *replaces* the system roots (as
    /// for botocore), or from `SSL_CERT_FILE` when that is unset or empty, read with `SSL_CERT_DIR`
    /// instead of the platform's store as OpenSSL does (an empty value counts as unset). See `tls`.
    pub ca_bundle: Option<CaBundle>,
    /// The proxies to use ([`Proxies::from_env`]); the client reads no proxy variable itself.
    pub proxies: Proxies,
    /// Attempts in total for retryable failures (at least 1).
    pub max_attempts: u32,
    /// First backoff delay; doubled for every further attempt and jittered by ±50%.
    pub backoff_base: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            verify_tls: true,
            ca_bundle: None,
            proxies: Proxies::default(),
            max_attempts: 3,
            backoff_base: Duration::from_millis(200),
        }
    }
}

/// What to ask CreateSession for.
#[derive(Debug, Clone)]
pub struct SessionRequest {
    /// Signing region (never a `-fips` name).
    pub region: String,
    /// `profileArn` query parameter.
    pub profile_arn: String,
    /// `roleArn` query parameter.
    pub role_arn: String,
    /// `trustAnchorArn` query parameter.
    pub trust_anchor_arn: String,
    /// `durationSeconds` in the body.
    pub duration_seconds: u32,
    /// `roleSessionName` in the body, when asked for.
    pub role_session_name: Option<String>,
}

/// A CreateSession client bound to one endpoint.
pub struct Client {
    http: http::Transport,
    endpoint: Endpoint,
    timeout: Duration,
    max_attempts: u32,
    backoff_base: Duration,
}

impl Client {
    /// Builds the HTTP client (TLS roots, time limits, proxies) for `endpoint`. It sends only
    /// through the proxies checked by [`Proxies::from_env`] and follows no redirect (see
    /// [`Error::Redirect`]).
    pub fn new(endpoint: Endpoint, opts: &ClientOptions) -> Result<Client, Error> {
        let tls = tls::client_config(opts)?;
        let http = http::Transport {
            tls: std::sync::Arc::new(tls),
            proxies: opts.proxies.clone(),
            connect_timeout: opts.connect_timeout,
            user_agent: concat!("rolesanywhere-agent/", env!("CARGO_PKG_VERSION")),
        };
        Ok(Client {
            http,
            endpoint,
            timeout: opts.timeout,
            max_attempts: opts.max_attempts.max(1),
            backoff_base: opts.backoff_base,
        })
    }

    /// The endpoint this client talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }
}
