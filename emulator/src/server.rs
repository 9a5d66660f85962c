//! The HTTP(S) front: accepts `POST /sessions`, applies configured faults, asks the verifier, answers
//! like the service (201 credential set or an AWS-style error) and logs one JSON line per decision.
//!
//! Owns sockets, TLS, the runtime thread and credential minting. It must not log or record
//! credentials, and it must not make verification decisions of its own.

use std::collections::VecDeque;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use anyhow::{Context, anyhow, bail};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use time::OffsetDateTime;
use time::macros::format_description;

use crate::config::{Config, FaultKind};
use crate::verifier::{self, Accepted, HttpRequest, Refusal};

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Plain HTTP or which TLS certificate to use.
    pub tls: Tls,
}

/// TLS choice.
#[derive(Debug, Clone)]
pub enum Tls {
    /// Plain HTTP.
    None,
    /// A fresh server certificate for 127.0.0.1/localhost from a throwaway CA, whose PEM is
    /// optionally written to `ca_out`.
    SelfIssued {
        /// Where to write the throwaway CA's PEM (for `AWS_CA_BUNDLE`).
        ca_out: Option<PathBuf>,
    },
    /// A certificate chain and private key from PEM files.
    Files {
        /// PEM certificate chain, leaf first.
        cert: PathBuf,
        /// PEM private key (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
    },
}

/// What the emulator decided about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// HTTP status sent (0 when a "hang" fault never answered).
    pub status: u16,
    /// `X-Amzn-ErrorType` sent, if any.
    pub error_type: Option<String>,
    /// The error message, or "session issued".
    pub message: String,
    /// The session name granted (on success).
    pub role_session_name: Option<String>,
    /// The duration granted (on success).
    pub duration_seconds: Option<u32>,
    /// The leaf certificate's serial, base 10, when it was read.
    pub serial_decimal: Option<String>,
}

/// A running emulator; stops when dropped.
pub struct Running {
    url: String,
    tls_ca_pem: Option<String>,
    decisions: Arc<Mutex<Vec<Decision>>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Running {
    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The PEM of the CA that issued the server certificate, when self-issued.
    pub fn tls_ca_pem(&self) -> Option<String> {
        self.tls_ca_pem.clone()
    }

    /// Every request seen so far, in order.
    pub fn decisions(&self) -> Vec<Decision> {
        self.decisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct AppState {
    config: Config,
    decisions: Arc<Mutex<Vec<Decision>>>,
    faults: Mutex<VecDeque<FaultKind>>,
}

/// Starts the emulator on its own thread and tokio runtime; returns once it listens.
pub fn spawn(config: Config, opts: ServeOptions) -> anyhow::Result<Running> {
    let (acceptor, tls_ca_pem) = match &opts.tls {
        Tls::None => (None, None),
        Tls::SelfIssued { ca_out } => {
            let (cfg, ca_pem) = self_issued_tls()?;
            if let Some(path) = ca_out {
                std::fs::write(path, &ca_pem).with_context(|| {
                    format!("cannot write the TLS CA certificate to {}", path.display())
                })?;
            }
            (Some(cfg), Some(ca_pem))
        }
        Tls::Files { cert, key } => (Some(file_tls(cert, key)?), None),
    };
    let listener = std::net::TcpListener::bind(opts.listen)
        .with_context(|| format!("cannot listen on {}", opts.listen))?;
    listener
        .set_nonblocking(true)
        .context("cannot make the listening socket non-blocking")?;
    let addr = listener
        .local_addr()
        .context("cannot read the listening address")?;
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{addr}");
    let decisions = Arc::new(Mutex::new(Vec::new()));
    let faults = config
        .faults
        .iter()
        .flat_map(|f| std::iter::repeat_n(f.kind.clone(), f.times as usize))
        .collect();
    let state = Arc::new(AppState {
        config,
        decisions: decisions.clone(),
        faults: Mutex::new(faults),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("rolesanywhere-emulator".into())
        .spawn(move || {
            rt.block_on(accept_loop(listener, state, acceptor, rx));
            // Hanging connections (the "hang" fault) must not keep the process alive.
            rt.shutdown_background();
        })
        .context("cannot start the server thread")?;
    Ok(Running {
        url,
        tls_ca_pem,
        decisions,
        shutdown: Some(tx),
        thread: Some(thread),
    })
}

async fn accept_loop(
    listener: std::net::TcpListener,
    state: Arc<AppState>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            log_line(
                &serde_json::json!({"event": "error", "message": format!("cannot use the listening socket: {e}")}),
            );
            return;
        }
    };
    let app = axum::Router::new().fallback(handle).with_state(state);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of descriptors and similar: back off instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                };
                // TLS 1.3 writes a NewSessionTicket and then the response as two small segments; with
                // Nagle on, the response waits for the client's delayed ACK (~40 ms).
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let svc = hyper_util::service::TowerToHyperService::new(app);
                    let builder = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    );
                    match acceptor {
                        Some(acc) => {
                            if let Ok(tls) = acc.accept(stream).await {
                                let _ = builder
                                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                                    .await;
                            }
                        }
                        None => {
                            let _ = builder
                                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                                .await;
                        }
                    }
                });
            }
        }
    }
}

fn rustls_config(
    certs: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("cannot configure TLS versions")?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .context("TLS certificate and key are not usable together")?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

fn self_issued_tls() -> anyhow::Result<(tokio_rustls::TlsAcceptor, String)> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().context("cannot generate the TLS CA key")?;
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = rcgen::DistinguishedName::new();
    ca_params.distinguished_name.push(
        DnType::CommonName,
        "rolesanywhere-emulator throwaway TLS CA",
    );
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = OffsetDateTime::now_utc();
    ca_params.not_before = now - time::Duration::hours(1);
    ca_params.not_after = now + time::Duration::days(30);
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .context("cannot sign the TLS CA certificate")?;
    let ca_pem = ca_cert.pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .context("cannot prepare the TLS server certificate")?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(30);
    let key = KeyPair::generate().context("cannot generate the TLS server key")?;
    let cert = params
        .signed_by(&key, &issuer)
        .context("cannot sign the TLS server certificate")?;
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let acceptor = rustls_config(vec![cert.der().clone()], key_der)?;
    Ok((acceptor, ca_pem))
}

fn file_tls(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::{self, PemObject as _};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let cert_bytes = std::fs::read(cert)
        .with_context(|| format!("cannot read the TLS certificate {}", cert.display()))?;
    let certs = CertificateDer::pem_slice_iter(&cert_bytes)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not a PEM certificate chain", cert.display()))?;
    if certs.is_empty() {
        bail!("{} holds no CERTIFICATE block", cert.display());
    }
    let key_bytes =
        std::fs::read(key).with_context(|| format!("cannot read the TLS key {}", key.display()))?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => anyhow!("{} holds no private key block", key.display()),
        _ => anyhow!("{} is not a PEM private key", key.display()),
    })?;
    rustls_config(certs, key_der)
}

fn log_line(v: &serde_json::Value) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{v}");
}

fn record(state: &AppState, d: Decision, extra: serde_json::Value) {
    let mut line = serde_json::json!({
        "ts": OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "event": "decision",
        "status": d.status,
        "error_type": d.error_type,
        "message": d.message,
        "serial": d.serial_decimal,
        "role_session_name": d.role_session_name,
        "duration_seconds": d.duration_seconds,
    });
    if let (Some(obj), serde_json::Value::Object(more)) = (line.as_object_mut(), extra) {
        obj.extend(more);
    }
    log_line(&line);
    state
        .decisions
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(d);
}

fn error_response(status: u16, error_type: &str, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (code, axum::Json(serde_json::json!({ "message": message }))).into_response();
    if let Ok(v) = HeaderValue::from_str(error_type) {
        resp.headers_mut().insert("x-amzn-errortype", v);
    }
    resp
}

fn fault_error_type(status: u16) -> &'static str {
    match status {
        400 => "ValidationException",
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        _ => "InternalServerException",
    }
}

async fn handle(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = state
        .faults
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop_front();
    let refusal = |status: u16, error_type: &str, message: String, serial: Option<String>| {
        let d = Decision {
            status,
            error_type: Some(error_type.to_string()),
            message: message.clone(),
            role_session_name: None,
            duration_seconds: None,
            serial_decimal: serial,
        };
        record(&state, d, serde_json::json!({}));
        error_response(status, error_type, &message)
    };
    match fault {
        Some(FaultKind::Hang) => {
            record(
                &state,
                Decision {
                    status: 0,
                    error_type: None,
                    message: "injected fault: hang (no answer)".into(),
                    role_session_name: None,
                    duration_seconds: None,
                    serial_decimal: None,
                },
                serde_json::json!({"fault": "hang"}),
            );
            return std::future::pending().await;
        }
        Some(FaultKind::Status(s)) => {
            return refusal(
                s,
                fault_error_type(s),
                format!("injected fault: status {s}"),
                None,
            );
        }
        Some(FaultKind::MalformedBody) => {
            record(
                &state,
                Decision {
                    status: 201,
                    error_type: None,
                    message: "injected fault: malformed body".into(),
                    role_session_name: None,
                    duration_seconds: None,
                    serial_decimal: None,
                },
                serde_json::json!({"fault": "malformed-body"}),
            );
            return (
                StatusCode::CREATED,
                [("content-type", "application/json")],
                "{\"credentialSet\":[{\"credentials\":{\"accessKeyId\":",
            )
                .into_response();
        }
        None => {}
    }
    if uri.path() != "/sessions" || method != Method::POST {
        return refusal(
            404,
            "UnknownOperationException",
            format!("no operation {method} {} (only POST /sessions)", uri.path()),
            None,
        );
    }
    let mut pairs = Vec::with_capacity(headers.len() + 1);
    for (name, value) in &headers {
        let Ok(v) = value.to_str() else {
            return refusal(
                400,
                "ValidationException",
                format!("header {name} is not visible ASCII"),
                None,
            );
        };
        pairs.push((name.as_str().to_string(), v.to_string()));
    }
    // HTTP/2 carries the host in :authority, which hyper moves into the URI.
    if !headers.contains_key("host")
        && let Some(authority) = uri.authority()
    {
        pairs.push(("host".to_string(), authority.to_string()));
    }
    let req = HttpRequest {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: &pairs,
        body: &body,
    };
    let now = OffsetDateTime::now_utc();
    match verifier::verify(&req, &state.config, now) {
        Ok(acc) => success(&state, &acc, now),
        Err(Refusal {
            kind,
            message,
            serial_decimal,
        }) => refusal(kind.status(), kind.error_type(), message, serial_decimal),
    }
}

fn random_string(len: usize, alphabet: &[u8]) -> String {
    // Both alphabets have a power-of-two length (32, 64), so masking a random byte is uniform.
    debug_assert!(alphabet.len().is_power_of_two());
    let mut bytes = vec![0u8; len];
    crate::ca::fill_random(&mut bytes);
    bytes
        .iter()
        .map(|b| char::from(alphabet[usize::from(*b) & (alphabet.len() - 1)]))
        .collect()
}

const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// RFC 3339 UTC with whole seconds, as the service writes `expiration`.
pub fn format_expiration(t: OffsetDateTime) -> String {
    let fmt = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_default()
}

fn arn_field(arn: &str, index: usize) -> &str {
    arn.split(':').nth(index).unwrap_or("")
}

fn success(state: &AppState, acc: &Accepted, now: OffsetDateTime) -> Response {
    let session = acc
        .role_session_name
        .clone()
        .unwrap_or_else(|| acc.serial_hex.clone());
    let source_identity = match &acc.subject_cn {
        Some(cn) if cn.chars().count() <= 61 => format!("CN={cn}"),
        _ => format!("ID={}", acc.serial_hex),
    };
    let partition = arn_field(&acc.role_arn, 1);
    let account = arn_field(&acc.role_arn, 4);
    let role_name = acc.role_arn.rsplit('/').next().unwrap_or("");
    let mut token = vec![0u8; 320];
    crate::ca::fill_random(&mut token);
    let digest = ring::digest::digest(&ring::digest::SHA256, acc.serial_decimal.as_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest.as_ref()[..16]);
    let subject_id = uuid_text(&id);
    let expiration =
        format_expiration(now + time::Duration::seconds(i64::from(acc.duration_seconds)));
    let body = serde_json::json!({
        "credentialSet": [{
            "assumedRoleUser": {
                "arn": format!("arn:{partition}:sts::{account}:assumed-role/{role_name}/{session}"),
                "assumedRoleId": format!("AROA{}:{session}", random_string(17, UPPER_ALNUM)),
            },
            "credentials": {
                "accessKeyId": format!("ASIA{}", random_string(16, UPPER_ALNUM)),
                "secretAccessKey": random_string(40, SECRET_CHARS),
                "sessionToken": base64::engine::general_purpose::STANDARD.encode(&token),
                "expiration": expiration,
            },
            "packedPolicySize": 0,
            "roleArn": acc.role_arn,
            "sourceIdentity": source_identity,
        }],
        "subjectArn": format!(
            "arn:{partition}:rolesanywhere:{}:{}:subject/{subject_id}",
            state.config.region,
            arn_field(&acc.trust_anchor_arn, 4)
        ),
    });
    record(
        state,
        Decision {
            status: 201,
            error_type: None,
            message: "session issued".into(),
            role_session_name: Some(session),
            duration_seconds: Some(acc.duration_seconds),
            serial_decimal: Some(acc.serial_decimal.clone()),
        },
        serde_json::json!({
            "profile_arn": acc.profile_arn,
            "role_arn": acc.role_arn,
            "trust_anchor_arn": acc.trust_anchor_arn,
            "expiration": expiration,
        }),
    );
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

/// 16 bytes in the 8-4-4-4-12 hex form of a UUID.
pub fn uuid_text(b: &[u8; 16]) -> String {
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}
