//! The CreateSession client: endpoint, HTTP (reqwest + rustls/ring), retries, time limits and error
//! hints.
//!
//! Owns the network side of the protocol: it builds the request URL and body, asks
//! [`crate::sigv4x509::sign_request`] for fresh headers on every attempt, sends, retries what is worth
//! retrying within one time limit for the whole call, and turns the answer into [`Credentials`] or
//! an [`Error`] with a hint. It must not print (diagnostics go through the caller's debug callback),
//! must never expose a secret in an error, a log line or `Debug` output, and escapes server text
//! before it can reach a terminal.

mod endpoint;
mod proxy;
pub(crate) mod response;
mod tls;

pub use endpoint::Endpoint;
pub use proxy::Proxies;
pub use response::Credentials;
pub use tls::CaBundle;

use crate::certs;
use crate::signer::Identity;
use crate::sigv4x509::{self, RequestParts, SigningInput};
use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

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
    /// The HTTP client could not be built.
    #[error("cannot create the HTTP client")]
    Client(#[source] reqwest::Error),
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

    /// True when another attempt may succeed: 5xx, throttling, connection failures and timeouts.
    fn retryable(&self) -> bool {
        match self {
            Error::Service {
                status, error_type, ..
            } => *status >= 500 || *status == 429 || error_type == "ThrottlingException",
            Error::Transport { transient, .. } => *transient,
            _ => false,
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
struct Cause(String);

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Cause {}

impl Cause {
    /// `err` and its sources joined with `: ` (a source whose text its parent already ends with is
    /// left out), escaped for a terminal.
    fn of(err: &(dyn std::error::Error + 'static)) -> Cause {
        let mut text = String::new();
        let mut cur = Some(err);
        while let Some(e) = cur {
            let part = e.to_string();
            if !text.ends_with(&part) {
                if !text.is_empty() {
                    text.push_str(": ");
                }
                text.push_str(&part);
            }
            cur = e.source();
        }
        Cause(response::escape(&text))
    }
}

/// The shortest remaining lifetime of credentials that are passed on. SDKs refresh credentials that
/// expire within a few minutes, and the service issues at least 15; less than this means a broken
/// server or a wrong clock, and the credentials would be of no use anyway.
pub const MIN_REMAINING: time::Duration = time::Duration::seconds(60);

/// The parts of a request that stay the same across attempts (only the signature changes).
struct Prepared {
    url: reqwest::Url,
    query: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A CreateSession client bound to one endpoint.
pub struct Client {
    http: reqwest::blocking::Client,
    endpoint: Endpoint,
    timeout: Duration,
    max_attempts: u32,
    backoff_base: Duration,
}

impl Client {
    /// Builds the HTTP client (TLS roots, time limits, proxies) for `endpoint`.
    pub fn new(endpoint: Endpoint, opts: &ClientOptions) -> Result<Client, Error> {
        let tls = tls::client_config(opts)?;
        let mut builder = reqwest::blocking::Client::builder()
            .tls_backend_preconfigured(tls)
            .http1_only()
            .connect_timeout(opts.connect_timeout)
            .timeout(opts.timeout)
            // CreateSession never redirects (see Error::Redirect).
            .redirect(reqwest::redirect::Policy::none())
            // Only the proxies checked by `Proxies::from_env`: left alone, the library would read
            // the variables again and skip what it cannot parse.
            .no_proxy()
            .user_agent(concat!("rolesanywhere-agent/", env!("CARGO_PKG_VERSION")));
        let p = &opts.proxies;
        let no_proxy = p
            .no_proxy
            .as_deref()
            .and_then(reqwest::NoProxy::from_string);
        if let Some(url) = &p.http {
            let proxy = reqwest::Proxy::http(url.as_str()).map_err(Error::Client)?;
            builder = builder.proxy(proxy.no_proxy(no_proxy.clone()));
        }
        if let Some(url) = &p.https {
            let proxy = reqwest::Proxy::https(url.as_str()).map_err(Error::Client)?;
            builder = builder.proxy(proxy.no_proxy(no_proxy));
        }
        let http = builder.build().map_err(Error::Client)?;
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

    /// The limit for a whole call: every attempt its full `timeout`, plus the longest the waits
    /// between them can be.
    pub fn call_limit(&self) -> Duration {
        self.timeout.saturating_mul(self.max_attempts)
            + max_total_backoff(self.backoff_base, self.max_attempts)
    }

    /// Calls CreateSession with `identity`, retrying 5xx, throttling and connection failures with
    /// jittered exponential backoff. Every attempt is signed afresh (new date, new signature).
    /// Each attempt ends after `timeout` (connect, TLS, request and the complete answer), and the
    /// whole call after [`Client::call_limit`]; a signing device that does not answer is not
    /// interrupted. `debug`, when given, receives the canonical request, the string to sign and the
    /// response status.
    pub fn create_session(
        &self,
        req: &SessionRequest,
        identity: &Identity,
        debug: Option<&dyn Fn(&str)>,
    ) -> Result<Credentials, Error> {
        let deadline = Instant::now() + self.call_limit();
        let query = vec![
            ("profileArn".to_string(), req.profile_arn.clone()),
            ("roleArn".to_string(), req.role_arn.clone()),
            ("trustAnchorArn".to_string(), req.trust_anchor_arn.clone()),
        ];
        let prepared = Prepared {
            url: self.endpoint.sessions_url(&query),
            query,
            body: request_body(req),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.attempt(req, identity, &prepared, attempt, deadline, debug);
            match result {
                Ok(c) => return Ok(c),
                Err(e) if attempt < self.max_attempts && e.retryable() => {
                    let delay = backoff(self.backoff_base, attempt);
                    if Instant::now() + delay >= deadline {
                        return Err(e);
                    }
                    if let Some(d) = debug {
                        d(&format!(
                            "attempt {attempt} failed ({e}); retrying in {} ms",
                            delay.as_millis()
                        ));
                    }
                    std::thread::sleep(delay);
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn attempt(
        &self,
        req: &SessionRequest,
        identity: &Identity,
        prepared: &Prepared,
        attempt: u32,
        call_deadline: Instant,
        debug: Option<&dyn Fn(&str)>,
    ) -> Result<Credentials, Error> {
        let parts = RequestParts {
            method: "POST",
            host: self.endpoint.host(),
            path: self.endpoint.sessions_path(),
            query: &prepared.query,
            content_type: CONTENT_TYPE,
            body: &prepared.body,
        };
        let input = SigningInput {
            region: &req.region,
            time: time::OffsetDateTime::now_utc(),
            leaf: &identity.leaf,
            chain: &identity.chain,
        };
        let signed = sigv4x509::sign_request(&parts, &input, identity.signer.as_ref())?;
        if let Some(d) = debug {
            d(&format!(
                "attempt {attempt}: POST {}\ncanonical request:\n{}\nstring to sign:\n{}",
                self.endpoint.display_url(),
                signed.canonical_request,
                signed.string_to_sign
            ));
        }
        let transport =
            |failure: TransportFailure,
             transient: bool,
             source: &(dyn std::error::Error + 'static)| Error::Transport {
                url: self.endpoint.display_url(),
                attempts: attempt,
                failure,
                transient,
                source: Box::new(Cause::of(source)),
            };
        // One deadline for everything this attempt does on the network. reqwest applies a
        // per-request timeout to the whole exchange, body included (the client-wide one of its
        // blocking API bounds each read of the body only, which a trickling server defeats).
        let now = Instant::now();
        let deadline = (now + self.timeout).min(call_deadline);
        let remaining = deadline.saturating_duration_since(now);
        if remaining.is_zero() {
            return Err(transport(
                TransportFailure::TimedOut,
                false,
                &std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the time limit of the call ran out",
                ),
            ));
        }
        let mut builder = self
            .http
            .post(prepared.url.clone())
            .timeout(remaining)
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(prepared.body.clone());
        for (name, value) in &signed.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let mut resp = builder.send().map_err(|source| {
            let failure = classify(&source, self.endpoint.host_name());
            // A certificate the client refuses now it will refuse on the next attempt too.
            let transient = matches!(failure, TransportFailure::Io | TransportFailure::TimedOut)
                && (source.is_connect()
                    || source.is_timeout()
                    || source.is_request()
                    || source.is_body());
            transport(failure, transient, &source.without_url())
        })?;
        let status = resp.status().as_u16();
        if let Some(d) = debug {
            d(&format!("attempt {attempt}: response status {status}"));
        }
        if (300..400).contains(&status) {
            let location = resp.headers().get(reqwest::header::LOCATION).map_or_else(
                || "nowhere (no Location header)".to_string(),
                |v| {
                    response::quoted(&endpoint::without_userinfo(&String::from_utf8_lossy(
                        v.as_bytes(),
                    )))
                },
            );
            return Err(Error::Redirect {
                url: self.endpoint.display_url(),
                status,
                location,
            });
        }
        let headers = resp.headers().clone();
        let body = read_body(&mut resp, deadline).map_err(|e| {
            let failure = if is_timeout(&e) {
                TransportFailure::TimedOut
            } else {
                TransportFailure::Io
            };
            transport(failure, true, &e)
        })?;
        if status == 201 || status == 200 {
            if body.truncated {
                return Err(Error::MalformedResponse {
                    reason: format!("the body is larger than {MAX_BODY} bytes"),
                });
            }
            let creds = response::parse_credentials(&body.bytes)?;
            return check_expiration(
                creds,
                time::OffsetDateTime::now_utc(),
                self.endpoint.display_url(),
            );
        }
        // An error answer is judged by its status whatever its size: the start of an oversized
        // body is enough for a message (and a 5xx stays retryable).
        let refusal = response::service_error(
            self.endpoint.display_url(),
            status,
            &headers,
            &body.bytes,
            attempt,
        );
        Err(with_leaf_problems(refusal, &identity.leaf, input.time))
    }
}

/// Passes on credentials that stay valid for at least [`MIN_REMAINING`] after `now`.
fn check_expiration(
    creds: Credentials,
    now: time::OffsetDateTime,
    url: String,
) -> Result<Credentials, Error> {
    if creds.expires_at - now >= MIN_REMAINING {
        return Ok(creds);
    }
    Err(Error::ExpiredCredentials {
        url,
        expiration: creds.expiration.clone(),
        now: response::utc_text(now),
    })
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
fn with_leaf_problems(
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

/// Largest response body read (a credential set is a few KiB). A success body beyond it is
/// malformed; of an error body only this much is read.
const MAX_BODY: usize = 1 << 20;

/// A response body, at most [`MAX_BODY`] bytes of it.
struct Body {
    bytes: Zeroizing<Vec<u8>>,
    /// There was more than [`MAX_BODY`]; the rest was not read.
    truncated: bool,
}

/// Reads the body into zeroizing memory until its end, [`MAX_BODY`] bytes, or `deadline`.
///
/// A success body holds the secret access key and session token, so the buffer never reallocates
/// in place (a `Vec` growing by itself would leave copies behind): a larger buffer is made, filled,
/// and the old one zeroized. The deadline is checked between reads as well: the reader's own time
/// limit may apply to each read only.
fn read_body(resp: &mut impl Read, deadline: Instant) -> std::io::Result<Body> {
    let mut body = Zeroizing::new(Vec::with_capacity(16 * 1024));
    let mut chunk = Zeroizing::new([0u8; 4096]);
    loop {
        if Instant::now() >= deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the answer was not complete within the time limit",
            ));
        }
        let n = match resp.read(&mut chunk[..]) {
            Ok(0) => {
                return Ok(Body {
                    bytes: body,
                    truncated: false,
                });
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let room = MAX_BODY - body.len();
        let take = n.min(room);
        if body.len() + take > body.capacity() {
            let mut bigger = Zeroizing::new(Vec::with_capacity(
                (body.capacity() * 2).max(body.len() + take).min(MAX_BODY),
            ));
            bigger.extend_from_slice(&body);
            body = bigger;
        }
        body.extend_from_slice(&chunk[..take]);
        if n > room {
            return Ok(Body {
                bytes: body,
                truncated: true,
            });
        }
    }
}

/// reqwest's blocking body reader wraps its own errors (a timeout among them) in `io::Error`.
fn is_timeout(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::TimedOut
        || e.get_ref()
            .and_then(|inner| inner.downcast_ref::<reqwest::Error>())
            .is_some_and(reqwest::Error::is_timeout)
}

/// What a failed request says about the transport: the server's certificate refused for its name
/// or otherwise, a timeout, or a plain I/O failure. `host` is the endpoint's host name.
///
/// hyper-rustls reports the rustls error inside an `io::Error` that is itself wrapped in another
/// `io::Error` (reqwest → hyper-util → io(Other) → io(InvalidData) → rustls). `io::Error::source()`
/// returns the *wrapped error's* source, skipping the wrapped error, so the plain source chain never
/// reaches rustls: step into `get_ref()` for every `io::Error` instead.
fn classify(e: &reqwest::Error, host: &str) -> TransportFailure {
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

/// Compact JSON `{"durationSeconds":N}` plus `"roleSessionName"` when given.
fn request_body(req: &SessionRequest) -> Vec<u8> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Body<'a> {
        duration_seconds: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        role_session_name: Option<&'a str>,
    }
    let body = Body {
        duration_seconds: req.duration_seconds,
        role_session_name: req.role_session_name.as_deref(),
    };
    // Serialising a struct of a number and a string cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

/// `base · 2^(attempt-1)`, jittered by ±50% so that many servers do not retry in step.
fn backoff(base: Duration, attempt: u32) -> Duration {
    // 53 random bits give a uniform fraction in [0, 1); without a random source (never on Linux
    // after boot) the nominal wait is used.
    let unit = getrandom::u64().map_or(0.5, |r| (r >> 11) as f64 / (1u64 << 53) as f64);
    let factor = 0.5 + unit;
    nominal_backoff(base, attempt).mul_f64(factor)
}

fn nominal_backoff(base: Duration, attempt: u32) -> Duration {
    base.saturating_mul(1u32 << (attempt.saturating_sub(1)).min(10))
}

/// The longest all waits between `attempts` attempts can add up to: 1.5 × (base + 2·base + …).
/// With the defaults (200 ms, 3 attempts) 900 ms.
fn max_total_backoff(base: Duration, attempts: u32) -> Duration {
    (1..attempts)
        .map(|a| nominal_backoff(base, a).mul_f64(1.5))
        .fold(Duration::ZERO, Duration::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_compact_json_with_optional_session_name() {
        let mut req = SessionRequest {
            region: "us-east-1".into(),
            profile_arn: String::new(),
            role_arn: String::new(),
            trust_anchor_arn: String::new(),
            duration_seconds: 900,
            role_session_name: None,
        };
        assert_eq!(request_body(&req), br#"{"durationSeconds":900}"#);
        req.role_session_name = Some("a \"b\"".into());
        assert_eq!(
            request_body(&req),
            br#"{"durationSeconds":900,"roleSessionName":"a \"b\""}"#
        );
    }

    #[test]
    fn backoff_doubles_within_jitter_bounds() {
        let base = Duration::from_millis(200);
        for attempt in 1..=3 {
            let nominal = 200u128 << (attempt - 1);
            for _ in 0..50 {
                let d = backoff(base, attempt).as_millis();
                assert!(d >= nominal / 2 && d <= nominal * 3 / 2, "{attempt}: {d}");
            }
        }
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(600)
    }

    #[test]
    fn body_reader_grows_without_losing_bytes_and_bounds_size() {
        let data: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let got = read_body(&mut &data[..], later()).unwrap();
        assert_eq!(&got.bytes[..], &data[..]);
        assert!(!got.truncated);
        let exact = vec![b'x'; MAX_BODY];
        let got = read_body(&mut &exact[..], later()).unwrap();
        assert_eq!((got.bytes.len(), got.truncated), (MAX_BODY, false));
        let huge = vec![b'x'; MAX_BODY + 5000];
        let got = read_body(&mut &huge[..], later()).unwrap();
        assert_eq!((got.bytes.len(), got.truncated), (MAX_BODY, true));
    }

    /// A reader that hands out one byte per call, each after `pause`, for ever.
    struct Trickle {
        pause: Duration,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            std::thread::sleep(self.pause);
            buf[0] = b'{';
            Ok(1)
        }
    }

    /// Issue 14 (1): a body that never ends is cut off at the deadline, whatever each read takes.
    #[test]
    fn body_reader_stops_at_the_deadline() {
        let start = Instant::now();
        let mut slow = Trickle {
            pause: Duration::from_millis(20),
        };
        let e = read_body(&mut slow, start + Duration::from_millis(300))
            .err()
            .unwrap();
        assert!(is_timeout(&e), "{e}");
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(5),
            "{took:?}"
        );
    }

    #[test]
    fn call_limit_is_all_attempts_plus_the_longest_backoff() {
        let base = Duration::from_millis(200);
        assert_eq!(max_total_backoff(base, 1), Duration::ZERO);
        assert_eq!(max_total_backoff(base, 3), Duration::from_millis(900));
        let c = Client::new(
            Endpoint::parse("http://127.0.0.1:9").unwrap(),
            &ClientOptions {
                timeout: Duration::from_secs(5),
                ..ClientOptions::default()
            },
        )
        .unwrap();
        assert_eq!(c.call_limit(), Duration::from_millis(15_900));
    }

    /// Issue 14 (18): credentials are passed on only when they outlive now by [`MIN_REMAINING`].
    #[test]
    fn expired_or_expiring_credentials_are_refused() {
        let creds = |exp: &str| {
            let body = format!(
                r#"{{"credentialSet":[{{"credentials":{{"accessKeyId":"A","secretAccessKey":"s","sessionToken":"t","expiration":"{exp}"}}}}]}}"#
            );
            response::parse_credentials(body.as_bytes()).unwrap()
        };
        let now = time::macros::datetime!(2026-03-01 12:00:00 UTC);
        let url = || "https://h/sessions".to_string();
        for past in [
            "2020-01-01T00:00:00Z",
            "2026-03-01T12:00:00Z",
            "2026-03-01T12:00:59Z",
            "2026-03-01T14:00:30+02:00",
        ] {
            let e = check_expiration(creds(past), now, url()).unwrap_err();
            let text = e.to_string();
            assert!(
                text.contains("expire at")
                    && text.contains("now (2026-03-01T12:00:00Z)")
                    && text.contains("https://h/sessions"),
                "{text}"
            );
            assert!(e.hint().unwrap().contains("clock"), "{:?}", e.hint());
            assert!(!e.retryable());
        }
        let ok = check_expiration(creds("2026-03-01T14:01:00+02:00"), now, url()).unwrap();
        assert_eq!(ok.expiration, "2026-03-01T12:01:00Z");
    }

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

    #[test]
    fn retry_classification_follows_status_and_error_type() {
        let svc = |status, t: &str| Error::Service {
            url: String::new(),
            status,
            error_type: t.into(),
            message: String::new(),
            attempts: 1,
        };
        assert!(svc(503, "").retryable());
        assert!(svc(500, "InternalServerException").retryable());
        assert!(svc(429, "").retryable());
        assert!(svc(400, "ThrottlingException").retryable());
        assert!(!svc(403, "AccessDeniedException").retryable());
        assert!(!svc(400, "ValidationException").retryable());
        assert!(
            !Error::MalformedResponse {
                reason: String::new()
            }
            .retryable()
        );
    }
}

#[cfg(test)]
mod client_tests {
    //! The client against a scripted local HTTP server, with a signer that counts its calls.

    use super::*;
    use crate::certs::Certificate;
    use crate::keys::PublicKey;
    use crate::signer::Signer;
    use crate::sigv4x509::Digest;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    struct CountingSigner {
        public: PublicKey,
        calls: Arc<AtomicUsize>,
    }

    impl Signer for CountingSigner {
        fn public_key(&self) -> &PublicKey {
            &self.public
        }
        fn sign(&self, _digest: &Digest) -> Result<Vec<u8>, crate::signer::SignError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(vec![0xab; 256])
        }
        fn describe(&self) -> String {
            "counting signer".into()
        }
    }

    fn identity(calls: Arc<AtomicUsize>) -> Identity {
        let pem = include_bytes!("../../testdata/vectors/create-session-rsa/leaf.pem");
        let leaf = crate::certs::parse_pem_bundle(pem, "vector leaf")
            .unwrap()
            .remove(0);
        let public = Certificate::public_key(&leaf).clone();
        Identity {
            signer: Box::new(CountingSigner { public, calls }),
            leaf,
            chain: Vec::new(),
        }
    }

    /// Serves one scripted response per connection; returns the URL and the request heads seen.
    fn serve(responses: Vec<String>) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/base", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        std::thread::spawn(move || {
            for resp in responses {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    head.push_str(&line);
                }
                let mut body = vec![0; len];
                let _ = std::io::Read::read_exact(&mut reader, &mut body);
                head.push_str(&String::from_utf8_lossy(&body));
                seen2.lock().unwrap().push(head);
                let mut stream = stream;
                let _ = stream.write_all(resp.as_bytes());
            }
        });
        (url, seen)
    }

    fn response(status: &str, headers: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    const OK_BODY: &str = r#"{"credentialSet":[{"credentials":{"accessKeyId":"ASIAEXAMPLE","secretAccessKey":"SECRETKEY-q1","sessionToken":"TOKEN-q2","expiration":"2030-01-01T00:00:00Z"}}]}"#;

    fn request() -> SessionRequest {
        SessionRequest {
            region: "us-east-1".into(),
            profile_arn: "arn:aws:rolesanywhere:us-east-1:123456789012:profile/p".into(),
            role_arn: "arn:aws:iam::123456789012:role/r".into(),
            trust_anchor_arn: "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/t".into(),
            duration_seconds: 900,
            role_session_name: Some("s1".into()),
        }
    }

    fn client(url: &str) -> Client {
        let opts = ClientOptions {
            backoff_base: Duration::from_millis(10),
            ..ClientOptions::default()
        };
        Client::new(Endpoint::parse(url).unwrap(), &opts).unwrap()
    }

    #[test]
    fn throttling_is_retried_and_every_attempt_is_signed_afresh() {
        let (url, seen) = serve(vec![
            response(
                "400 Bad Request",
                "X-Amzn-ErrorType: ThrottlingException\r\n",
                r#"{"message":"Rate exceeded"}"#,
            ),
            response("201 Created", "", OK_BODY),
        ]);
        let calls = Arc::new(AtomicUsize::new(0));
        let creds = client(&url)
            .create_session(&request(), &identity(calls.clone()), None)
            .unwrap();
        assert_eq!(creds.access_key_id, "ASIAEXAMPLE");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        let first = seen[0].to_ascii_lowercase();
        assert!(
            first.starts_with("post /base/sessions?profilearn=arn%3aaws%3arolesanywhere"),
            "{first}"
        );
        for needle in [
            "authorization: aws4-x509-rsa-sha256 credential=",
            "x-amz-x509: ",
            "content-type: application/json",
            r#"{"durationseconds":900,"rolesessionname":"s1"}"#,
        ] {
            assert!(first.contains(needle), "{needle} not in {first}");
        }
    }

    #[test]
    fn client_errors_are_not_retried_and_keep_the_service_message() {
        let (url, seen) = serve(vec![response(
            "403 Forbidden",
            "X-Amzn-ErrorType: AccessDeniedException\r\n",
            r#"{"message":"Not authorized to set roleSessionName"}"#,
        )]);
        let calls = Arc::new(AtomicUsize::new(0));
        let e = client(&url)
            .create_session(&request(), &identity(calls.clone()), None)
            .unwrap_err();
        assert!(
            e.to_string()
                .ends_with("HTTP 403 AccessDeniedException: Not authorized to set roleSessionName"),
            "{e}"
        );
        assert!(e.hint().unwrap().contains("acceptRoleSessionName"));
        assert_eq!(
            (calls.load(Ordering::SeqCst), seen.lock().unwrap().len()),
            (1, 1)
        );
    }

    #[test]
    fn connection_refused_is_retried_three_times() {
        // Bind then drop: nothing listens on the port any more.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let calls = Arc::new(AtomicUsize::new(0));
        let e = client(&format!("http://127.0.0.1:{port}"))
            .create_session(&request(), &identity(calls.clone()), None)
            .unwrap_err();
        assert!(matches!(e, Error::Transport { attempts: 3, .. }), "{e}");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn untrusted_server_certificate_fails_once_with_the_ca_bundle_hint() {
        let dir = tempfile::tempdir().unwrap();
        let config = rolesanywhere_emulator::config::Config::from_toml_str(
            "region = \"us-east-1\"\n",
            dir.path(),
        )
        .unwrap();
        let emu = rolesanywhere_emulator::server::spawn(
            config,
            rolesanywhere_emulator::server::ServeOptions {
                listen: "127.0.0.1:0".parse().unwrap(),
                tls: rolesanywhere_emulator::server::Tls::SelfIssued { ca_out: None },
            },
        )
        .unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let lines = Mutex::new(String::new());
        let sink = |s: &str| lines.lock().unwrap().push_str(s);
        let e = client(&emu.url())
            .create_session(&request(), &identity(calls.clone()), Some(&sink))
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Transport {
                    attempts: 1,
                    failure: TransportFailure::Untrusted,
                    transient: false,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("not trusted"), "{e}");
        assert!(
            e.hint().unwrap().contains("AWS_CA_BUNDLE"),
            "{:?}",
            e.hint()
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let text = lines.into_inner().unwrap();
        assert!(!text.contains("retrying"), "{text}");
    }

    #[test]
    fn debug_callback_gets_signing_steps_and_status_but_no_secret() {
        let (url, _seen) = serve(vec![response("201 Created", "", OK_BODY)]);
        let lines = Mutex::new(String::new());
        let sink = |s: &str| lines.lock().unwrap().push_str(s);
        client(&url)
            .create_session(&request(), &identity(Arc::default()), Some(&sink))
            .unwrap();
        let text = lines.into_inner().unwrap();
        assert!(
            text.contains("canonical request:\nPOST\n/base/sessions\n"),
            "{text}"
        );
        assert!(
            text.contains("string to sign:\nAWS4-X509-RSA-SHA256\n"),
            "{text}"
        );
        assert!(text.contains("response status 201"), "{text}");
        assert!(
            !text.contains("SECRETKEY-q1") && !text.contains("TOKEN-q2"),
            "{text}"
        );
    }

    /// Issue 14 (2): a redirect is an error naming the Location (escaped, without user info); it
    /// is neither followed nor retried.
    #[test]
    fn redirects_are_refused_not_followed_or_retried() {
        for status in [
            "301 Moved Permanently",
            "302 Found",
            "303 See Other",
            "307 Temporary Redirect",
            "308 Permanent Redirect",
        ] {
            // Where a followed redirect would go: a server that hands out credentials.
            let (target, target_seen) = serve(vec![response("201 Created", "", OK_BODY)]);
            let location = target.replace("http://", "http://user:Zq9w@") + "/x\u{202e}y";
            let (url, seen) = serve(vec![
                response(status, &format!("Location: {location}\r\n"), ""),
                response("201 Created", "", OK_BODY),
            ]);
            let calls = Arc::new(AtomicUsize::new(0));
            let e = client(&url)
                .create_session(&request(), &identity(calls.clone()), None)
                .unwrap_err();
            assert!(matches!(e, Error::Redirect { .. }), "{status}: {e:?}");
            let text = e.to_string();
            let code = &status[..3];
            let host = target
                .trim_start_matches("http://")
                .trim_end_matches("/base");
            assert!(
                text.contains(&format!("HTTP {code}"))
                    && text.contains(&format!("@{host}/base/x\\u{{202e}}y\""))
                    && text.contains(&format!("{url}/sessions")),
                "{text}"
            );
            assert!(
                !text.contains('\u{202e}') && !text.contains("Zq9w") && !text.contains("user"),
                "{text}"
            );
            assert!(e.hint().unwrap().contains("--endpoint"), "{:?}", e.hint());
            assert_eq!(seen.lock().unwrap().len(), 1, "{status}: retried");
            assert_eq!(calls.load(Ordering::SeqCst), 1);
            assert!(target_seen.lock().unwrap().is_empty(), "{status}: followed");
        }
        let (url, _seen) = serve(vec![response("302 Found", "", "")]);
        let e = client(&url)
            .create_session(&request(), &identity(Arc::default()), None)
            .unwrap_err();
        assert!(
            e.to_string().contains("nowhere (no Location header)"),
            "{e}"
        );
    }

    /// Issue 14 (17): an error answer is judged by its status, not its size: a 5xx with a body over
    /// the cap is retried, a 4xx with one is a refusal (only a success body must fit).
    #[test]
    fn error_answers_with_huge_bodies_keep_their_status() {
        let huge = format!("<html>{}</html>", "x".repeat(2 * MAX_BODY));
        let (url, seen) = serve(vec![
            response("503 Service Unavailable", "", &huge),
            response("201 Created", "", OK_BODY),
        ]);
        let creds = client(&url)
            .create_session(&request(), &identity(Arc::default()), None)
            .unwrap();
        assert_eq!(creds.access_key_id, "ASIAEXAMPLE");
        assert_eq!(seen.lock().unwrap().len(), 2);

        let (url, seen) = serve(vec![response(
            "403 Forbidden",
            "X-Amzn-ErrorType: AccessDeniedException\r\n",
            &huge,
        )]);
        let e = client(&url)
            .create_session(&request(), &identity(Arc::default()), None)
            .unwrap_err();
        assert!(matches!(e, Error::Service { status: 403, .. }), "{e:?}");
        assert!(e.to_string().contains("<html>xxx"), "{e}");
        assert_eq!(seen.lock().unwrap().len(), 1);

        let big_success = format!("{}{}", &OK_BODY[..OK_BODY.len() - 1], " ".repeat(MAX_BODY));
        let (url, _seen) = serve(vec![response(
            "201 Created",
            "",
            &format!("{big_success}}}"),
        )]);
        let e = client(&url)
            .create_session(&request(), &identity(Arc::default()), None)
            .unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
    }

    /// Issue 14 (18): an expiration with an offset or fractions is passed on as `…Z`; one in the
    /// past is refused.
    #[test]
    fn expiration_is_normalised_to_utc_and_a_past_one_refused() {
        let body = OK_BODY.replace("2030-01-01T00:00:00Z", "2030-01-01T02:00:00.75+02:00");
        let (url, _seen) = serve(vec![response("201 Created", "", &body)]);
        let creds = client(&url)
            .create_session(&request(), &identity(Arc::default()), None)
            .unwrap();
        assert_eq!(creds.expiration, "2030-01-01T00:00:00Z");

        let body = OK_BODY.replace("2030-01-01T00:00:00Z", "2021-06-01T00:00:00Z");
        let (url, seen) = serve(vec![response("201 Created", "", &body)]);
        let e = client(&url)
            .create_session(&request(), &identity(Arc::default()), None)
            .unwrap_err();
        assert!(matches!(e, Error::ExpiredCredentials { .. }), "{e:?}");
        assert!(
            e.to_string().contains("expire at 2021-06-01T00:00:00Z"),
            "{e}"
        );
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    /// Issue 8 (5): another server's plain 404 page at the URL is about `--endpoint`, not the ARNs.
    #[test]
    fn html_not_found_from_another_server_names_the_url_and_endpoint() {
        let (url, _seen) = serve(vec![response(
            "404 Not Found",
            "Content-Type: text/html\r\n",
            "<html><body><h1>Not Found</h1></body></html>",
        )]);
        let e = client(&url)
            .create_session(&request(), &identity(Arc::default()), None)
            .unwrap_err();
        let hint = e.hint().unwrap();
        assert!(
            hint.contains(&format!("{url}/sessions")) && hint.contains("--endpoint"),
            "{hint}"
        );
        assert!(!hint.contains("--profile-arn"), "{hint}");
    }

    /// Issue 8 (5): "Untrusted signing certificate" for a CA leaf names the leaf's problem.
    #[test]
    fn untrusted_refusal_of_a_ca_leaf_keeps_the_message_and_names_the_leaf() {
        let pem = include_bytes!("../../testdata/vectors/create-session-p384-chain/chain.pem");
        let ca = crate::certs::parse_pem_bundle(pem, "vector intermediate")
            .unwrap()
            .remove(0);
        let body = r#"{"message":"Untrusted signing certificate"}"#;
        let (url, _seen) = serve(vec![response(
            "403 Forbidden",
            "X-Amzn-ErrorType: AccessDeniedException\r\n",
            body,
        )]);
        let id = Identity {
            signer: Box::new(CountingSigner {
                public: ca.public_key().clone(),
                calls: Arc::default(),
            }),
            leaf: ca.clone(),
            chain: Vec::new(),
        };
        let e = client(&url)
            .create_session(&request(), &id, None)
            .unwrap_err();
        assert!(matches!(e, Error::LeafRefused { .. }), "{e:?}");
        assert!(
            e.to_string()
                .ends_with("HTTP 403 AccessDeniedException: Untrusted signing certificate"),
            "{e}"
        );
        let hint = e.hint().unwrap();
        assert!(
            hint.starts_with(&format!("the leaf certificate {} is a CA", ca.subject())),
            "{hint}"
        );
        assert!(!hint.contains("--intermediates"), "{hint}");
    }
}
