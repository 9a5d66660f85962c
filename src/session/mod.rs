//! The CreateSession client: endpoint, HTTP (reqwest + rustls/ring), retries and error hints.
//!
//! Owns the network side of the protocol: it builds the request URL and body, asks
//! [`crate::sigv4x509::sign_request`] for fresh headers on every attempt, sends, retries what is worth
//! retrying and turns the answer into [`Credentials`] or an [`Error`] with a hint. It must not print
//! (diagnostics go through the caller's debug callback) and must never expose a secret in an error,
//! a log line or `Debug` output.

mod endpoint;
pub(crate) mod response;
mod tls;

pub use endpoint::Endpoint;
pub use response::Credentials;
pub use tls::CaBundle;

use crate::signer::Identity;
use crate::sigv4x509::{self, RequestParts, SigningInput};
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;
use zeroize::Zeroizing;

/// Content type of the CreateSession body.
const CONTENT_TYPE: &str = "application/json";

/// How the HTTP client connects.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Limit for establishing a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Limit for one whole attempt (connect, send, receive).
    pub timeout: Duration,
    /// Verify the server's certificate (false only with `--no-verify-ssl`).
    pub verify_tls: bool,
    /// Extra trust roots, added to the system roots: the PEM bundle from `AWS_CA_BUNDLE`, or from
    /// `SSL_CERT_FILE` when that is unset or empty. (`SSL_CERT_FILE` and `SSL_CERT_DIR`, when
    /// non-empty, also *replace* the platform's store as the system roots; an empty value counts as
    /// unset. See `tls`.)
    pub ca_bundle: Option<CaBundle>,
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

/// CreateSession failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The endpoint URL is unusable.
    #[error("invalid endpoint {url:?}: {reason}")]
    Endpoint {
        /// What the user gave.
        url: String,
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
    /// The service could not be reached, did not answer in time, or its certificate is not trusted.
    #[error("{}", transport_message(url, *attempts, *tls_untrusted))]
    Transport {
        /// The request URL without query.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The failure was a timeout.
        timed_out: bool,
        /// The server's TLS certificate failed verification.
        tls_untrusted: bool,
        /// Another attempt may succeed (connection, timeout and body failures).
        transient: bool,
        /// The last failure.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
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
    /// A success status with a body that is not the documented credential set.
    #[error("malformed CreateSession response: {reason}")]
    MalformedResponse {
        /// What is missing or wrong (never a value from the body).
        reason: String,
    },
}

impl Error {
    /// What the user can do about this error, when it is known.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Error::Service {
                status,
                error_type,
                message,
                ..
            } => response::hint(*status, error_type, message),
            Error::Transport {
                timed_out: true, ..
            } => Some(
                "the service did not answer in time: check the network, HTTPS_PROXY/NO_PROXY, \
                 or raise --connect-timeout/--timeout",
            ),
            Error::Transport {
                tls_untrusted: true,
                ..
            } => Some(
                "the server's certificate does not chain to a trusted root: for a private CA or a \
                 TLS-inspecting proxy set AWS_CA_BUNDLE to its PEM file; otherwise check --endpoint",
            ),
            Error::Transport { .. } => Some(
                "check the endpoint, DNS, the network and HTTPS_PROXY/NO_PROXY; for a private CA \
                 set AWS_CA_BUNDLE",
            ),
            Error::CaBundle { .. } => Some(
                "point AWS_CA_BUNDLE (or SSL_CERT_FILE) at a readable PEM file of CA certificates",
            ),
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

/// `cannot reach URL (N attempts)`, or `the server certificate of URL is not trusted (1 attempt)`.
fn transport_message(url: &str, attempts: u32, tls_untrusted: bool) -> String {
    let attempts = format!("{attempts} attempt{}", if attempts == 1 { "" } else { "s" });
    if tls_untrusted {
        format!("the server certificate of {url} is not trusted ({attempts})")
    } else {
        format!("cannot reach {url} ({attempts})")
    }
}

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
    max_attempts: u32,
    backoff_base: Duration,
}

impl Client {
    /// Builds the HTTP client (TLS roots, timeouts, environment proxies) for `endpoint`.
    pub fn new(endpoint: Endpoint, opts: &ClientOptions) -> Result<Client, Error> {
        let tls = tls::client_config(opts)?;
        // Proxies come from HTTP(S)_PROXY / NO_PROXY, which reqwest reads by default.
        let http = reqwest::blocking::Client::builder()
            .tls_backend_preconfigured(tls)
            .http1_only()
            .connect_timeout(opts.connect_timeout)
            .timeout(opts.timeout)
            .user_agent(concat!("rolesanywhere-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(Error::Client)?;
        Ok(Client {
            http,
            endpoint,
            max_attempts: opts.max_attempts.max(1),
            backoff_base: opts.backoff_base,
        })
    }

    /// The endpoint this client talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Calls CreateSession with `identity`, retrying 5xx, throttling and connection failures with
    /// jittered exponential backoff. Every attempt is signed afresh (new date, new signature).
    /// `debug`, when given, receives the canonical request, the string to sign and the response status.
    pub fn create_session(
        &self,
        req: &SessionRequest,
        identity: &Identity,
        debug: Option<&dyn Fn(&str)>,
    ) -> Result<Credentials, Error> {
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
            let result = self.attempt(req, identity, &prepared, attempt, debug);
            match result {
                Ok(c) => return Ok(c),
                Err(e) if attempt < self.max_attempts && e.retryable() => {
                    let delay = backoff(self.backoff_base, attempt);
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
        let mut builder = self
            .http
            .post(prepared.url.clone())
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(prepared.body.clone());
        for (name, value) in &signed.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let transport = |source: reqwest::Error| {
            let tls_untrusted = is_certificate_failure(&source);
            Error::Transport {
                url: self.endpoint.display_url(),
                attempts: attempt,
                timed_out: source.is_timeout(),
                tls_untrusted,
                // A certificate the client refuses now it will refuse on the next attempt too.
                transient: !tls_untrusted
                    && (source.is_connect()
                        || source.is_timeout()
                        || source.is_request()
                        || source.is_body()),
                source: Box::new(source.without_url()),
            }
        };
        let mut resp = builder.send().map_err(transport)?;
        let status = resp.status().as_u16();
        if let Some(d) = debug {
            d(&format!("attempt {attempt}: response status {status}"));
        }
        let headers = resp.headers().clone();
        let raw = read_body(&mut resp).map_err(|e| match e {
            BodyError::TooLarge => Error::MalformedResponse {
                reason: format!("the body is larger than {MAX_BODY} bytes"),
            },
            BodyError::Io(e) => Error::Transport {
                url: self.endpoint.display_url(),
                attempts: attempt,
                timed_out: is_timeout(&e),
                tls_untrusted: false,
                transient: true,
                source: Box::new(e),
            },
        })?;
        if status == 201 || status == 200 {
            return response::parse_credentials(&raw);
        }
        Err(response::service_error(
            self.endpoint.display_url(),
            status,
            &headers,
            &raw,
            attempt,
        ))
    }
}

/// Largest response body accepted (a credential set is a few KiB).
const MAX_BODY: usize = 1 << 20;

enum BodyError {
    TooLarge,
    Io(std::io::Error),
}

/// Reads the body into zeroizing memory. A success body holds the secret access key and session
/// token, so the buffer never reallocates in place (a `Vec` growing by itself would leave copies
/// behind): a larger buffer is made, filled, and the old one zeroized.
fn read_body(resp: &mut impl Read) -> Result<Zeroizing<Vec<u8>>, BodyError> {
    let mut body = Zeroizing::new(Vec::with_capacity(16 * 1024));
    let mut chunk = Zeroizing::new([0u8; 4096]);
    loop {
        let n = match resp.read(&mut chunk[..]) {
            Ok(0) => return Ok(body),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(BodyError::Io(e)),
        };
        if body.len() + n > MAX_BODY {
            return Err(BodyError::TooLarge);
        }
        if body.len() + n > body.capacity() {
            let mut bigger = Zeroizing::new(Vec::with_capacity(
                (body.capacity() * 2).max(body.len() + n),
            ));
            bigger.extend_from_slice(&body);
            body = bigger;
        }
        body.extend_from_slice(&chunk[..n]);
    }
}

/// reqwest's blocking body reader wraps its own errors (a timeout among them) in `io::Error`.
fn is_timeout(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::TimedOut
        || e.get_ref()
            .and_then(|inner| inner.downcast_ref::<reqwest::Error>())
            .is_some_and(reqwest::Error::is_timeout)
}

/// True when TLS failed because the server's certificate was refused.
///
/// hyper-rustls reports the rustls error inside an `io::Error` that is itself wrapped in another
/// `io::Error` (reqwest → hyper-util → io(Other) → io(InvalidData) → rustls). `io::Error::source()`
/// returns the *wrapped error's* source, skipping the wrapped error, so the plain source chain never
/// reaches rustls: step into `get_ref()` for every `io::Error` instead.
fn is_certificate_failure(e: &reqwest::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if matches!(
            err.downcast_ref::<rustls::Error>(),
            Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)
        ) {
            return true;
        }
        cur = match err
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => Some(inner),
            None => err.source(),
        };
    }
    false
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
    use rand::Rng;
    let exp = base.saturating_mul(1u32 << (attempt.saturating_sub(1)).min(10));
    let factor: f64 = rand::rng().random_range(0.5..1.5);
    exp.mul_f64(factor)
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

    #[test]
    fn body_reader_grows_without_losing_bytes_and_bounds_size() {
        let data: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let got = match read_body(&mut &data[..]) {
            Ok(b) => b,
            Err(_) => panic!("reading from a slice cannot fail"),
        };
        assert_eq!(&got[..], &data[..]);
        let huge = vec![b'x'; MAX_BODY + 1];
        assert!(matches!(
            read_body(&mut &huge[..]),
            Err(BodyError::TooLarge)
        ));
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
        fn sign(&self, _digest: &Digest) -> Result<Vec<u8>, crate::signer::Error> {
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
                    tls_untrusted: true,
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
}
