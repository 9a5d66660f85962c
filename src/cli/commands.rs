//! The commands: each takes validated settings and writes its output to the given stdout.
//!
//! Owns output formats (credential_process JSON, sign-string encodings, certificate data). It must
//! write nothing but the command's output to `out`; diagnostics and warnings go to stderr, and no
//! secret is ever written anywhere but the credential JSON on `out`.

use super::Failure;
use super::args::FormatArg;
use super::failure::Context as _;
use super::settings::{Listen, ServeSettings, SessionSettings, UpdateSettings};
use crate::certs::{self, Certificate};
use crate::keys::KeyKind;
use crate::session::Client;
use crate::signer::{self, KeyOptions, Signer};
use crate::sigv4x509::{self, HashAlg};
use base64::Engine as _;
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use zeroize::Zeroizing;

/// Prints a diagnostic on stderr, one `debug:` line per line of `text` (the canonical request has
/// several), each escaped and masked by [`super::stderr_line`].
pub(crate) fn debug_line(text: &str) {
    for line in text.lines() {
        super::stderr_line(&format!("rolesanywhere-agent: debug: {line}"));
    }
}

/// `credential-process`: one CreateSession call, credentials as the credential_process JSON.
///
/// `out` is the process's stdout (see `cli::run`); a closed one is refused before anything else.
pub fn credential_process(s: &SessionSettings, out: &mut dyn Write) -> Result<(), Failure> {
    refuse_closed_stdout()?;
    transport_warnings(s);
    let identity = signer::open(&s.key).context("cannot load the signing identity")?;
    let debug: Option<&dyn Fn(&str)> = if s.debug {
        debug_line(&format!(
            "key {} ({}), certificate serial {} subject {}, {} intermediate(s), region {}",
            identity.signer.describe(),
            identity.signer.key_kind(),
            identity.leaf.serial_decimal(),
            identity.leaf.subject(),
            identity.chain.len(),
            s.request.region
        ));
        Some(&debug_line)
    } else {
        None
    };
    let client = Client::new(s.endpoint.clone(), &s.client)?;
    let creds = client.create_session(&s.request, &identity, debug)?;
    #[cfg(feature = "tpm")]
    if let Some(tpm) = signer::backends::tpm()
        && s.debug
        && tpm.command_count() > 0
    {
        debug_line(&format!(
            "TPM commands sent by this process: {} (plus the key's FlushContext at exit)",
            tpm.command_count()
        ));
    }

    let json = credential_json(&creds, b"", b"\n")
        .map_err(|e| Failure::operational(e).context("cannot encode the credentials"))?;
    write_out(out, &json)
}

/// Fails when stdout was closed at start (see [`stdout_was_closed`]): the credentials would be
/// lost. Checked before anything else, so no CreateSession (or agent request) is wasted.
pub(crate) fn refuse_closed_stdout() -> Result<(), Failure> {
    if stdout_was_closed() {
        return Err(Failure::operational(anyhow::anyhow!(
            "cannot write to stdout: it was closed when the agent started, so the credentials \
             would be lost; give credential-process a pipe or a file as its output"
        )));
    }
    Ok(())
}

/// The `credential_process` JSON object of `c`, between `prefix` and `suffix` (`credential-process`
/// adds a newline; the agent's protocol wraps the object in its answer). One encoder for both, so
/// `--from-agent` prints exactly what a direct call prints.
///
/// Keys in the order SDKs document; compact. The buffer is sized so it never reallocates (each
/// byte escapes to at most 6): no stray copies of the secrets are left in freed memory.
pub fn credential_json(
    c: &crate::session::Credentials,
    prefix: &[u8],
    suffix: &[u8],
) -> Result<Zeroizing<Vec<u8>>, serde_json::Error> {
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Output<'a> {
        version: u8,
        access_key_id: &'a str,
        secret_access_key: &'a str,
        session_token: &'a str,
        expiration: &'a str,
    }
    let fields = c.access_key_id.len()
        + c.secret_access_key.expose().len()
        + c.session_token.expose().len()
        + c.expiration.len();
    let mut json = Zeroizing::new(Vec::with_capacity(
        128 + prefix.len() + suffix.len() + 6 * fields,
    ));
    json.extend_from_slice(prefix);
    serde_json::to_writer(
        &mut *json,
        &Output {
            version: 1,
            access_key_id: &c.access_key_id,
            secret_access_key: c.secret_access_key.expose(),
            session_token: c.session_token.expose(),
            expiration: &c.expiration,
        },
    )?;
    json.extend_from_slice(suffix);
    Ok(json)
}

/// The loud warnings about a transport that exposes the credentials.
fn transport_warnings(s: &SessionSettings) {
    if !s.client.verify_tls {
        super::stderr_line(
            "rolesanywhere-agent: WARNING: --no-verify-ssl: TLS certificate verification is OFF; \
             anyone on the network path can impersonate the service and read your credentials",
        );
    }
    if s.endpoint.is_cleartext_remote() {
        super::stderr_line(&format!(
            "rolesanywhere-agent: WARNING: {} is plain http: the credentials will cross the \
             network unencrypted; use https",
            s.endpoint.display_url()
        ));
    }
}

/// `update`: writes credentials into `[PROFILE]` of the shared credentials file; with `--once` a
/// single CreateSession and write (the file untouched on any failure), else on the refresher's
/// schedule until SIGTERM or SIGINT (exit 0).
pub fn update(s: &UpdateSettings) -> Result<(), Failure> {
    transport_warnings(&s.session);
    if s.once {
        let identity = signer::open(&s.session.key).context("cannot load the signing identity")?;
        let client = Client::new(s.session.endpoint.clone(), &s.session.client)?;
        let credentials = client.create_session(&s.session.request, &identity, None)?;
        let issued = crate::refresh::Issued {
            credentials,
            obtained_at: time::OffsetDateTime::now_utc(),
            generation: 1,
        };
        crate::update::write_set(&s.file, &s.profile, &issued)?;
        return Ok(());
    }
    crate::shutdown::install()?;
    let refresher = crate::refresh::Refresher::start(refresher_options(&s.session)?)?;
    // Wakes the loop's wait at once instead of at its next deadline. Shutting the refresher down
    // may wait for an attempt in flight, so not on the signal watcher's thread.
    let r = refresher.clone();
    crate::shutdown::on_request(move || {
        let r = r.clone();
        std::thread::spawn(move || r.shutdown());
    });
    crate::update::keep_updated(&refresher, &s.file, &s.profile);
    refresher.shutdown();
    super::stderr_line("rolesanywhere-agent: update stopped (signal received)");
    Ok(())
}

/// `serve`: binds the listeners (before any CreateSession, so a busy port fails at once), reads or
/// creates the container token, starts the refresher, prints the SDK environment lines on stdout
/// and serves until SIGTERM or SIGINT (exit 0, requests in flight finished).
pub fn serve(s: &ServeSettings, out: &mut dyn Write) -> Result<(), Failure> {
    use crate::agent::config::{ProfileConfig, ServeConfig};
    use crate::agent::registry::{Bound, Profile};
    transport_warnings(&s.session);
    crate::shutdown::install()?;
    let listeners = match &s.listen {
        Listen::Addrs(addrs) => crate::serve::bind(addrs)?,
        Listen::Systemd(n) => crate::serve::from_systemd(*n)?,
    };
    let container_token = match &s.container_token_file {
        Some(path) => {
            let (token, created) = crate::serve::container::load_or_create(path)?;
            if created {
                super::stderr_line(&format!(
                    "rolesanywhere-agent: created the container token file {} (0600)",
                    crate::text::path(path)
                ));
            }
            Some(token)
        }
        None => None,
    };
    let mut lines = String::new();
    // The first loopback listener is the IMDS endpoint; the container endpoint is on the first
    // listener (any address: a pod reaches it on its link-local address).
    if let Some(l) = listeners
        .iter()
        .find(|l| l.scope == crate::serve::Scope::Local)
    {
        // With its trailing slash: AWS CLI v2 joins `latest/…` to the value as written, and the
        // server collapses the double slash other SDKs then send.
        lines.push_str(&format!(
            "AWS_EC2_METADATA_SERVICE_ENDPOINT=http://{}/\n",
            l.addr
        ));
    }
    if let (Some(path), Some(l)) = (&s.container_token_file, listeners.first()) {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        lines.push_str(&format!(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://{}{}\n\
             AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE={}\n",
            l.addr,
            crate::serve::container::PATH,
            path.display()
        ));
    }
    let mut serving = Vec::new();
    for l in &listeners {
        let what = match l.scope {
            crate::serve::Scope::Local if container_token.is_some() => {
                "IMDSv2 and the container endpoint"
            }
            crate::serve::Scope::Local => "IMDSv2",
            crate::serve::Scope::ContainerOnly => "the container endpoint only (not loopback)",
        };
        serving.push(format!("rolesanywhere-agent: serving {what} on {}", l.addr));
    }
    // `serve` is an agent profile taken from the flags, without the socket: the same refresher and
    // endpoints (agent::registry), its listeners bound above so that a busy port fails first.
    let config = ProfileConfig::from_flags(
        s.session.clone(),
        Some(ServeConfig {
            listen: listeners.iter().map(|l| l.addr).collect(),
            hop_limit: s.hop_limit,
            container_token_file: s.container_token_file.clone(),
        }),
    );
    let log: crate::refresh::Log = std::sync::Arc::new(|line: &str| {
        super::stderr_line(&format!("rolesanywhere-agent: {line}"))
    });
    let bound = Bound {
        listeners,
        token: container_token,
    };
    let profile = Profile::start_with(config, Some(bound), &log, true)?;
    for line in &serving {
        super::stderr_line(line);
    }
    if let Err(e) = write_out(out, lines.as_bytes()) {
        profile.stop();
        return Err(e);
    }
    // Until SIGTERM/SIGINT (or the endpoints failing, which requests the same).
    while !crate::shutdown::wait(std::time::Duration::from_secs(3600)) {}
    profile.stop();
    super::stderr_line("rolesanywhere-agent: serve stopped (signal received)");
    Ok(())
}

/// The refresher's options for these settings. (The one place that knows the refresher's options
/// struct, which is being written on another branch: adjust here at merge.)
fn refresher_options(s: &SessionSettings) -> Result<crate::refresh::RefresherOptions, Failure> {
    // One attempt per call: the refresher's schedule does the retrying (its bound of one attempt
    // per 2 s would not hold with the client's own retries).
    let mut client = s.client.clone();
    client.max_attempts = 1;
    Ok(crate::refresh::RefresherOptions::new(
        s.key.clone(),
        Client::new(s.endpoint.clone(), &client)?,
        s.request.clone(),
    ))
}

/// True when the process started with its stdout closed (`credential-process >&-`).
///
/// The Rust runtime opens `/dev/null` read-write in place of a closed standard descriptor, so every
/// write "succeeds" and the output is silently lost. A shell's `>/dev/null` opens it write-only: a
/// stdout that is `/dev/null` *and* readable is the runtime's stand-in. Only `/dev/null` is read,
/// and reading it has no effect.
#[cfg(unix)]
fn stdout_was_closed() -> bool {
    use std::io::Read as _;
    use std::os::fd::AsFd as _;
    use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
    let Ok(fd) = std::io::stdout().as_fd().try_clone_to_owned() else {
        return false;
    };
    let mut file = std::fs::File::from(fd);
    let (Ok(meta), Ok(null)) = (file.metadata(), std::fs::metadata("/dev/null")) else {
        return false;
    };
    if !meta.file_type().is_char_device() || meta.rdev() != null.rdev() {
        return false;
    }
    file.read(&mut [0u8; 1]).is_ok()
}

#[cfg(not(unix))]
fn stdout_was_closed() -> bool {
    false
}

/// Where a key or certificate comes from, for debug lines: a path, or a URI without its PIN.
fn source_text(source: Option<&str>) -> String {
    source.map_or_else(|| "(none)".to_string(), signer::pkcs11::redact_uri)
}

/// `sign-string`: signs the fixed test message and prints the signature.
pub fn sign_string(
    key: &KeyOptions,
    alg: HashAlg,
    format: FormatArg,
    debug: bool,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    if debug {
        debug_line(&format!(
            "sign-string: private key {}, certificate {}",
            source_text(key.private_key.as_deref()),
            source_text(key.certificate.as_deref())
        ));
    }
    let signer = open_signer(key, debug)?;
    if debug {
        let format = match format {
            FormatArg::Json => "json",
            FormatArg::Text => "text",
            FormatArg::Bin => "bin",
        };
        debug_line(&format!(
            "opened key {} ({}); signing the test message with digest {}, output {format}",
            signer.describe(),
            signer.key_kind(),
            alg.name()
        ));
    }
    let sig = sigv4x509::sign_test_string(signer.as_ref(), alg)?;
    let hex = hex::encode(&sig);
    match format {
        FormatArg::Json => write_out(out, format!("\"{hex}\"\n").as_bytes()),
        FormatArg::Text => write_out(out, format!("{hex}\n").as_bytes()),
        FormatArg::Bin => write_out(out, &sig),
    }
}

/// The signer alone: sign-string needs no certificate, but when one is given the pair is checked like
/// for credential-process.
fn open_signer(key: &KeyOptions, debug: bool) -> Result<Box<dyn Signer>, Failure> {
    if key.certificate.is_some() {
        let identity = signer::open(key).context("cannot load the signing identity")?;
        if debug {
            debug_line(&format!(
                "certificate serial {} subject {} (matches the key)",
                identity.leaf.serial_decimal(),
                identity.leaf.subject()
            ));
        }
        return Ok(identity.signer);
    }
    Ok(signer::open_key(key)?)
}

/// One certificate as `read-certificate-data` prints it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateData {
    /// `RSA`, `EC`, or the ML-DSA parameter set (`ML-DSA-65`, …).
    pub key_type: &'static str,
    /// Standard base64 of the DER.
    pub certificate_data: String,
    /// Serial number in base 10.
    pub serial_number: String,
    /// `RSASHA256`… or `ECSHA256`…; for ML-DSA the parameter set alone (pure ML-DSA has no hash
    /// choice).
    pub supported_algorithms: Vec<String>,
    /// For certificates on a token: a URI that selects this certificate alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

impl CertificateData {
    /// The fields of `cert`; `uri` for certificates that live on a token.
    pub fn of(cert: &Certificate, uri: Option<String>) -> CertificateData {
        let (key_type, supported_algorithms) = match cert.public_key().kind() {
            KeyKind::Rsa { .. } => ("RSA", with_hashes("RSA")),
            KeyKind::Ec(_) => ("EC", with_hashes("EC")),
            KeyKind::MlDsa(set) => (set.name(), vec![set.name().to_string()]),
        };
        CertificateData {
            key_type,
            certificate_data: base64::engine::general_purpose::STANDARD.encode(cert.der()),
            serial_number: cert.serial_decimal(),
            supported_algorithms,
            uri,
        }
    }
}

/// `RSASHA256`, `RSASHA384`, `RSASHA512` (or `EC…`).
fn with_hashes(key_type: &str) -> Vec<String> {
    [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512]
        .iter()
        .map(|a| format!("{key_type}{}", a.name()))
        .collect()
}

/// The certificates named by `source` (a PEM file, or later a `pkcs11:` URI listing every match).
///
/// This is the seam for token certificates: a `pkcs11:` source is resolved with `key` (module, PIN)
/// and yields one entry per matching certificate, each with its own URI.
pub fn certificate_data(source: &str, key: &KeyOptions) -> Result<Vec<CertificateData>, Failure> {
    Ok(certificates(source, key)?
        .iter()
        .map(|(cert, uri)| CertificateData::of(cert, uri.clone()))
        .collect())
}

/// The certificates named by `source`, each with its URI when it lives on a token.
fn certificates(
    source: &str,
    key: &KeyOptions,
) -> Result<Vec<(Certificate, Option<String>)>, Failure> {
    if signer::pkcs11::is_pkcs11_uri(source) {
        let opts = KeyOptions {
            certificate: Some(source.to_string()),
            ..key.clone()
        };
        let found = signer::pkcs11::list_certificates(&opts).map_err(signer::Error::from)?;
        return Ok(found
            .into_iter()
            .map(|(uri, cert)| (cert, Some(uri)))
            .collect());
    }
    let mut all = certs::load_pem_file(Path::new(source)).map_err(signer::Error::from)?;
    if all.is_empty() {
        return Err(signer::Error::NoCertificate.into());
    }
    Ok(vec![(all.remove(0), None)])
}

/// `read-certificate-data`: one JSON object per certificate, one per line.
pub fn read_certificate_data(
    source: &str,
    key: &KeyOptions,
    debug: bool,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    if debug {
        let from = if signer::pkcs11::is_pkcs11_uri(source) {
            format!(
                "PKCS#11 module {}",
                key.pkcs11_lib
                    .as_deref()
                    .map_or_else(|| "(default)".into(), crate::text::path)
            )
        } else {
            "PEM file (first certificate only)".to_string()
        };
        debug_line(&format!(
            "read-certificate-data: certificate source {}, from {from}",
            source_text(Some(source))
        ));
    }
    let found = certificates(source, key)?;
    if debug {
        debug_line(&format!("{} certificate(s) found", found.len()));
        for (cert, uri) in &found {
            debug_line(&format!(
                "certificate serial {} subject {} key {}{}",
                cert.serial_decimal(),
                cert.subject(),
                cert.public_key().kind(),
                uri.as_deref()
                    .map(|u| format!(" at {}", signer::pkcs11::redact_uri(u)))
                    .unwrap_or_default()
            ));
        }
    }
    let mut text = String::new();
    for c in found
        .iter()
        .map(|(cert, uri)| CertificateData::of(cert, uri.clone()))
    {
        let json = serde_json::to_string(&c)
            .map_err(|e| Failure::operational(e).context("cannot encode certificate data"))?;
        text.push_str(&json);
        text.push('\n');
    }
    write_out(out, text.as_bytes())
}

pub(crate) fn write_out(out: &mut dyn Write, bytes: &[u8]) -> Result<(), Failure> {
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Failure::operational(e).context("cannot write to stdout"))
}
