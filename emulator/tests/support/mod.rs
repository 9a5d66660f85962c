//! Test support: a small independent SigV4-X509 signer (ring/p521 keys) and a minimal HTTP/1.1
//! client over TCP or rustls, so the server tests do not reuse the emulator's own code.
#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rolesanywhere_emulator::ca::{Ca, IssueRequest, Issued, KeySource, KeyType};

pub const REGION: &str = "us-east-1";
pub const ANCHOR: &str = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/11111111-2222-4333-8444-555555555555";
pub const PROFILE: &str =
    "arn:aws:rolesanywhere:us-east-1:123456789012:profile/66666666-7777-4888-9999-aaaaaaaaaaaa";
pub const ROLE: &str = "arn:aws:iam::123456789012:role/test/EmulatorRole";

pub fn der_of(pem: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in pem.lines() {
        if line.starts_with("-----BEGIN") {
            cur = Some(String::new());
        } else if line.starts_with("-----END") {
            if let Some(b) = cur.take() {
                out.push(STANDARD.decode(b).expect("pem base64"));
            }
        } else if let Some(b) = cur.as_mut() {
            b.push_str(line.trim());
        }
    }
    out
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, b))
}

/// A client identity: certificate, intermediates and PKCS#8 key.
pub struct Identity {
    pub cert_pem: String,
    pub chain_pem: Option<String>,
    pub key_pem: String,
    pub serial_decimal: String,
}

pub fn identity(issued: Issued, chain_pem: Option<String>) -> Identity {
    Identity {
        cert_pem: issued.cert_pem,
        chain_pem,
        key_pem: issued.key_pem.expect("new key"),
        serial_decimal: issued.serial_decimal,
    }
}

pub fn leaf(ca: &Ca, kind: KeyType, cn: &str) -> Identity {
    let issued = ca
        .issue(&IssueRequest::new(
            &format!("CN={cn},O=Test"),
            KeySource::NewKey(kind),
        ))
        .expect("issue leaf");
    identity(issued, None)
}

/// Signs the string to sign: its bytes in, the signature out.
pub type Signer = Box<dyn Fn(&[u8]) -> Vec<u8>>;

/// What to put in the request.
pub struct Call {
    pub host: String,
    pub query: Vec<(String, String)>,
    pub body: String,
    pub amz_date: String,
    pub region: String,
    /// Override the serial in Credential= (None: the certificate's).
    pub serial: Option<String>,
    /// Flip a bit of the signature.
    pub corrupt_signature: bool,
    /// Claim this algorithm instead of the one that fits the key.
    pub algorithm: Option<String>,
    /// Headers sent but left out of SignedHeaders.
    pub unsigned: Vec<String>,
    /// Sign the headers in reverse order (a client bug the service refuses).
    pub reverse_signed_headers: bool,
    /// Make the signature over the string to sign with this instead of the identity's key (another
    /// implementation, or a deliberately wrong scheme).
    pub signer: Option<Signer>,
}

impl Call {
    pub fn new(host: &str, body: &str) -> Call {
        let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
        Call {
            host: host.to_string(),
            query: vec![
                ("profileArn".into(), PROFILE.into()),
                ("roleArn".into(), ROLE.into()),
                ("trustAnchorArn".into(), ANCHOR.into()),
            ],
            body: body.to_string(),
            amz_date: time::OffsetDateTime::now_utc().format(&fmt).expect("date"),
            region: REGION.into(),
            serial: None,
            corrupt_signature: false,
            algorithm: None,
            unsigned: Vec::new(),
            reverse_signed_headers: false,
            signer: None,
        }
    }
}

/// A signed request ready to send.
pub struct Signed {
    pub path_and_query: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

fn sign_bytes(key_pem: &str, msg: &[u8]) -> (Vec<u8>, &'static str) {
    let der = der_of(key_pem).remove(0);
    let rng = ring::rand::SystemRandom::new();
    if let Ok(k) = ring::signature::RsaKeyPair::from_pkcs8(&der) {
        let mut sig = vec![0u8; k.public().modulus_len()];
        k.sign(&ring::signature::RSA_PKCS1_SHA256, &rng, msg, &mut sig)
            .expect("rsa sign");
        return (sig, "AWS4-X509-RSA-SHA256");
    }
    let p256 = &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING;
    if let Ok(k) = ring::signature::EcdsaKeyPair::from_pkcs8(p256, &der, &rng) {
        let sig = k.sign(&rng, msg).expect("ecdsa sign");
        return (sig.as_ref().to_vec(), "AWS4-X509-ECDSA-SHA256");
    }
    // ML-DSA signs the string to sign itself (pure, empty context, deterministic). (The PKCS#8
    // decoder trait is the one imported for P-384 below.)
    use ml_dsa::signature::Signer as _;
    if let Ok(sk) = ml_dsa::SigningKey::<ml_dsa::MlDsa44>::from_pkcs8_der(&der) {
        return (sk.sign(msg).encode().to_vec(), "AWS4-X509-MLDSA");
    }
    if let Ok(sk) = ml_dsa::SigningKey::<ml_dsa::MlDsa65>::from_pkcs8_der(&der) {
        return (sk.sign(msg).encode().to_vec(), "AWS4-X509-MLDSA");
    }
    if let Ok(sk) = ml_dsa::SigningKey::<ml_dsa::MlDsa87>::from_pkcs8_der(&der) {
        return (sk.sign(msg).encode().to_vec(), "AWS4-X509-MLDSA");
    }
    // ring signs P-384 only with SHA-384; the protocol wants SHA-256 for every curve.
    use p384::ecdsa::signature::hazmat::PrehashSigner as _;
    use p384::pkcs8::DecodePrivateKey as _;
    let digest = ring::digest::digest(&ring::digest::SHA256, msg);
    if let Ok(sk) = p384::ecdsa::SigningKey::from_pkcs8_der(&der) {
        let sig: p384::ecdsa::Signature = sk.sign_prehash(digest.as_ref()).expect("p384 sign");
        return (sig.to_der().as_bytes().to_vec(), "AWS4-X509-ECDSA-SHA256");
    }
    let sk = p521::ecdsa::SigningKey::from_pkcs8_der(&der).expect("p521 key");
    let sig: p521::ecdsa::Signature = sk.sign_prehash(digest.as_ref()).expect("p521 sign");
    (sig.to_der().as_bytes().to_vec(), "AWS4-X509-ECDSA-SHA256")
}

/// SigV4-X509 written out longhand from protocol.md.
pub fn sign(id: &Identity, call: &Call) -> Signed {
    let mut q: Vec<(String, String)> = call.query.iter().map(|(k, v)| (enc(k), enc(v))).collect();
    q.sort();
    let query = q
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let x509 = STANDARD.encode(&der_of(&id.cert_pem)[0]);
    let mut headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("host".to_string(), call.host.clone()),
        ("x-amz-date".to_string(), call.amz_date.clone()),
        ("x-amz-x509".to_string(), x509),
    ];
    if let Some(chain) = &id.chain_pem {
        let parts: Vec<String> = der_of(chain).iter().map(|d| STANDARD.encode(d)).collect();
        headers.push(("x-amz-x509-chain".to_string(), parts.join(",")));
    }
    let signed: Vec<&(String, String)> = headers
        .iter()
        .filter(|(n, _)| !call.unsigned.contains(n))
        .collect();
    let mut signed = signed;
    if call.reverse_signed_headers {
        signed.reverse();
    }
    let signed_names = signed
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = signed.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let canonical = format!(
        "POST\n/sessions\n{query}\n{canonical_headers}\n{signed_names}\n{}",
        sha256_hex(call.body.as_bytes())
    );
    let date = &call.amz_date[..8];
    let scope = format!("{date}/{}/rolesanywhere/aws4_request", call.region);
    let (_, alg) = sign_bytes(&id.key_pem, b"probe");
    let alg = call.algorithm.clone().unwrap_or_else(|| alg.to_string());
    let sts = format!(
        "{alg}\n{}\n{scope}\n{}",
        call.amz_date,
        sha256_hex(canonical.as_bytes())
    );
    let mut sig = match &call.signer {
        Some(signer) => signer(sts.as_bytes()),
        None => sign_bytes(&id.key_pem, sts.as_bytes()).0,
    };
    if call.corrupt_signature {
        let last = sig.len() - 1;
        sig[last] ^= 1;
    }
    let serial = call
        .serial
        .clone()
        .unwrap_or_else(|| id.serial_decimal.clone());
    headers.push((
        "authorization".to_string(),
        format!(
            "{alg} Credential={serial}/{scope}, SignedHeaders={signed_names}, Signature={}",
            hex::encode(sig)
        ),
    ));
    Signed {
        path_and_query: format!("/sessions?{query}"),
        headers,
        body: call.body.clone(),
    }
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body {:?} is not JSON: {e}", self.body))
    }
}

/// Sends one request with `Connection: close`; `tls_ca` switches to HTTPS.
pub fn send(
    url: &str,
    tls_ca: Option<&str>,
    req: &Signed,
    timeout: Duration,
) -> std::io::Result<Response> {
    let addr = url.rsplit('/').next().expect("host:port");
    let mut raw = format!("POST {} HTTP/1.1\r\n", req.path_and_query);
    for (n, v) in &req.headers {
        raw.push_str(&format!("{n}: {v}\r\n"));
    }
    raw.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n{}",
        req.body.len(),
        req.body
    ));
    // Bounded connect too: a server that stopped accepting must fail the test, not hang it.
    let sock: std::net::SocketAddr = addr.parse().map_err(std::io::Error::other)?;
    let tcp = TcpStream::connect_timeout(&sock, timeout)?;
    tcp.set_read_timeout(Some(timeout))?;
    let mut buf = Vec::new();
    match tls_ca {
        None => {
            let mut tcp = tcp;
            tcp.write_all(raw.as_bytes())?;
            tcp.read_to_end(&mut buf)?;
        }
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for der in der_of(ca) {
                roots.add(der.into()).expect("root");
            }
            let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
            let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
            let conn = rustls::ClientConnection::new(Arc::new(cfg), name)
                .map_err(std::io::Error::other)?;
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            tls.write_all(raw.as_bytes())?;
            match tls.read_to_end(&mut buf) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !buf.is_empty() => {}
                Err(e) => return Err(e),
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(": ")
                .map(|(a, b)| (a.to_string(), b.to_string()))
        })
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A root CA and the standard config (one anchor, one profile, one role) in `dir`.
pub fn config_toml(dir: &Path, extra_profile: &str, extra: &str) -> String {
    format!(
        "region = \"{REGION}\"\n\
         [[trust_anchors]]\narn = \"{ANCHOR}\"\ncertificates = \"{}\"\n{extra}\n\
         [[profiles]]\narn = \"{PROFILE}\"\nrole_arns = [\"{ROLE}\"]\nduration_seconds = 3600\n{extra_profile}\n\
         [[roles]]\narn = \"{ROLE}\"\nmax_session_duration = 7200\n",
        dir.join("root/ca.pem").display()
    )
}

/// One HTTP/1.1 request on a kept-alive connection: writes `request`, reads the status line,
/// the headers and a `content-length` body.
pub fn exchange(
    conn: &mut std::io::BufReader<TcpStream>,
    request: &[u8],
) -> std::io::Result<(u16, String)> {
    use std::io::BufRead as _;
    conn.get_mut().write_all(request)?;
    let mut line = String::new();
    if conn.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut len = 0usize;
    loop {
        line.clear();
        if conn.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == "\r\n" {
            break;
        }
        if let Some((n, v)) = line.split_once(':')
            && n.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; len];
    conn.read_exact(&mut body)?;
    Ok((status, String::from_utf8_lossy(&body).to_string()))
}

/// Waits up to `within` for the peer to close `stream` (end of file or reset), reading and
/// discarding whatever it sends first; returns how long that took, or what it sent if it did not.
pub fn wait_closed(
    stream: &mut (impl std::io::Read + ?Sized),
    within: Duration,
) -> Result<Duration, String> {
    let started = std::time::Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < within {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(started.elapsed()),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Ok(started.elapsed()),
        }
    }
    Err(format!(
        "still open after {within:?}; received {:?}",
        String::from_utf8_lossy(&seen)
    ))
}

/// The `err(f)` helper boto3 scripts use: the exception class, the AWS error code and the HTTP
/// status of a refused call, or `None`.
pub const BOTO3_ERR: &str = r#"
def err(f):
    try:
        f()
    except botocore.exceptions.ClientError as e:
        return [type(e).__name__, e.response['Error']['Code'], e.response['ResponseMetadata']['HTTPStatusCode']]
    return None
"#;

/// Runs `python3 -c PRELUDE+SCRIPT ARGS…` (boto3 and botocore from scripts/install-deps) and
/// parses its stdout as JSON; a failing script fails the test with its stderr.
pub fn python_json(prelude: &str, script: &str, args: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!("{prelude}{BOTO3_ERR}{script}"))
        .args(args)
        .output()
        .expect("python3 with boto3 is required (scripts/install-deps)");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// CreateSession at `url` (`https://host:port` or `http://…`) for `id`, naming these ARNs and
/// asking for `duration` seconds.
pub fn create_session_at(
    url: &str,
    id: &Identity,
    anchor: &str,
    profile: &str,
    role: &str,
    duration: u32,
) -> Response {
    let host = url.rsplit('/').next().expect("host").to_string();
    let mut call = Call::new(&host, &format!("{{\"durationSeconds\":{duration}}}"));
    call.query = vec![
        ("profileArn".into(), profile.into()),
        ("roleArn".into(), role.into()),
        ("trustAnchorArn".into(), anchor.into()),
    ];
    send(url, None, &sign(id, &call), Duration::from_secs(10)).expect("request")
}
