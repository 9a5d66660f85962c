//! A small blocking HTTP/1.1 client: one request per connection, over TCP or TLS (rustls), directly
//! or through an HTTP proxy (`CONNECT` for https), within one deadline, with bounded heads.
//!
//! `credential-process` makes one request and exits: this runs it on the calling thread, with no
//! runtime, connection pool or background thread (ADR 0002). Every read and write on the socket
//! first sets the socket's time limit to what is left until the current deadline (the connect
//! deadline while connecting, tunnelling and in the TLS handshake, then the attempt's), so no step
//! and no trickling peer can outlast it. Redirects are not followed (the caller sees the 3xx).
//! Response heads are limited in size and count; the body is framed by `Content-Length`, chunked
//! transfer coding or the end of the connection, and the caller bounds what it reads.
//!
//! What it must not do: log, keep a connection, or let a proxy password reach an error.

use super::proxy::Proxies;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use std::cell::Cell;
use std::io::{self, BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::{Host, Url};
use zeroize::Zeroizing;

/// Largest response head (status line and headers) read.
const MAX_HEAD: usize = 64 * 1024;
/// Most header lines read in one head.
const MAX_HEADERS: usize = 100;
/// The least time one address of several gets to connect.
const CONNECT_SHARE_FLOOR: Duration = Duration::from_millis(500);
/// Longest chunk-size line of a chunked body.
const MAX_CHUNK_LINE: usize = 4096;

/// A failed step of a request: what was being done, and the I/O error (a rustls error sits inside
/// it as the `io::Error`'s payload). The step text names hosts and ports, never user info.
#[derive(Debug, thiserror::Error)]
#[error("{step}")]
pub(super) struct HttpError {
    step: String,
    #[source]
    source: io::Error,
}

impl HttpError {
    fn new(step: impl Into<String>, source: io::Error) -> HttpError {
        HttpError {
            step: step.into(),
            source,
        }
    }

    /// The deadline ran out (a socket time limit or the deadline check itself).
    pub(super) fn is_timeout(&self) -> bool {
        is_timeout(&self.source)
    }

    /// The step that failed, from the step text every error site above writes.
    pub(super) fn stage(&self) -> Stage {
        let step = self.step.as_str();
        if step.starts_with("resolving") {
            Stage::Resolve
        } else if step.starts_with("connecting") || step.starts_with("opening a tunnel") {
            Stage::Connect
        } else if step.starts_with("TLS") {
            Stage::Tls
        } else {
            Stage::Http
        }
    }
}

/// The steps of a request, for `doctor` to say which one failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Resolving the host name (of the endpoint, or of the proxy).
    Resolve,
    /// Connecting (TCP), or the proxy's tunnel.
    Connect,
    /// The TLS handshake (the server's certificate verified).
    Tls,
    /// Sending the request or reading the answer.
    Http,
}

/// True for the errors a socket time limit produces, and for ours.
pub(super) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("{what}: the time limit ran out"),
    )
}

/// Response header fields as received (names lower-cased, values as bytes, order kept).
#[derive(Debug, Default, Clone)]
pub(crate) struct Headers(Vec<(String, Vec<u8>)>);

impl Headers {
    /// Adds a field (the name is lower-cased).
    pub(crate) fn push(&mut self, name: &str, value: &[u8]) {
        self.0.push((name.to_ascii_lowercase(), value.to_vec()));
    }

    /// The first value of `name` (lower case), as bytes.
    pub(crate) fn get(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of `name` when it is visible ASCII (spaces and tabs allowed), as text.
    pub(crate) fn get_str(&self, name: &str) -> Option<&str> {
        let v = self.get(name)?;
        if v.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b)) {
            std::str::from_utf8(v).ok()
        } else {
            None
        }
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// The connection settings shared by every request.
pub(super) struct Transport {
    pub(super) tls: Arc<ClientConfig>,
    pub(super) proxies: Proxies,
    pub(super) connect_timeout: Duration,
    pub(super) user_agent: &'static str,
}

/// A request: `POST`-style, with a body and the caller's headers (never `Host`, `Content-Length`,
/// `Connection` or `User-Agent`, which are set here).
pub(super) struct Request<'a> {
    pub(super) method: &'a str,
    pub(super) url: &'a Url,
    /// The `Host` value (the signed one).
    pub(super) host: &'a str,
    pub(super) headers: &'a [(&'a str, &'a str)],
    pub(super) body: &'a [u8],
}

/// A response whose head has been read; reading it yields the body.
pub(super) struct Response {
    pub(super) status: u16,
    pub(super) headers: Headers,
    body: Body,
}

impl Read for Response {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.body.read(buf)
    }
}

/// The socket under every layer, with the deadline that bounds each read and write on it.
struct Deadlined {
    tcp: TcpStream,
    deadline: Rc<Cell<Instant>>,
}

impl Deadlined {
    fn limit(&self, what: &str) -> io::Result<Duration> {
        let left = self
            .deadline
            .get()
            .saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out(what));
        }
        Ok(left)
    }
}

impl Read for Deadlined {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.limit("reading")?;
        self.tcp.set_read_timeout(Some(left))?;
        self.tcp.read(buf).map_err(timeout_kind)
    }
}

impl Write for Deadlined {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.limit("writing")?;
        self.tcp.set_write_timeout(Some(left))?;
        self.tcp.write(buf).map_err(timeout_kind)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

/// A socket time limit shows as `WouldBlock` on Unix: call it what it is.
fn timeout_kind(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::WouldBlock {
        io::Error::new(io::ErrorKind::TimedOut, "no data within the time limit")
    } else {
        e
    }
}

/// Any layer of the connection: the socket, TLS over it, or TLS inside a tunnel through a TLS
/// proxy.
trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

type Conn = Box<dyn Stream>;

/// Size of the read buffer of an answer.
const READ_BUFFER: usize = 8 * 1024;

/// A buffered reader of the answer whose buffer is wiped when dropped: a CreateSession body
/// carries the secret key and session token, and `std::io::BufReader` frees its buffer as it is.
/// (rustls keeps received plaintext in buffers of its own that it does not wipe; that copy is
/// out of reach here.)
pub(super) struct Buffered {
    inner: Conn,
    buf: Zeroizing<Vec<u8>>,
    pos: usize,
    filled: usize,
}

impl Buffered {
    fn new(inner: Conn) -> Buffered {
        Buffered {
            inner,
            buf: Zeroizing::new(vec![0; READ_BUFFER]),
            pos: 0,
            filled: 0,
        }
    }
}

impl Read for Buffered {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Buffered {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.filled {
            self.filled = self.inner.read(&mut self.buf)?;
            self.pos = 0;
        }
        Ok(&self.buf[self.pos..self.filled])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.filled);
    }
}

/// The response body's framing (RFC 9112 section 6.3).
enum Body {
    Empty,
    Length {
        conn: Buffered,
        left: u64,
    },
    Chunked {
        conn: Buffered,
        left: u64,
        done: bool,
    },
    UntilClose(Buffered),
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Body::Empty => Ok(0),
            Body::Length { conn, left } => {
                if *left == 0 || buf.is_empty() {
                    return Ok(0);
                }
                let want = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                let n = conn.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the connection closed {left} bytes before the end of the body"),
                    ));
                }
                *left -= n as u64;
                Ok(n)
            }
            Body::Chunked { conn, left, done } => {
                if *done || buf.is_empty() {
                    return Ok(0);
                }
                if *left == 0 {
                    *left = chunk_size(conn)?;
                    if *left == 0 {
                        skip_trailers(conn)?;
                        *done = true;
                        return Ok(0);
                    }
                }
                let want = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                let n = conn.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the connection closed inside a chunk of the body",
                    ));
                }
                *left -= n as u64;
                if *left == 0 {
                    let mut crlf = [0u8; 2];
                    conn.read_exact(&mut crlf)?;
                    if &crlf != b"\r\n" {
                        return Err(malformed("a chunk of the body does not end with CRLF"));
                    }
                }
                Ok(n)
            }
            Body::UntilClose(conn) => conn.read(buf),
        }
    }
}

fn malformed(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// One line ending in LF (a CR before it removed), at most `max` bytes; `None` at a clean end of
/// the stream before any byte.
fn read_line(conn: &mut Buffered, max: usize) -> io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    loop {
        let available = conn.fill_buf()?;
        if available.is_empty() {
            if line.is_empty() {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the connection closed inside the response head",
            ));
        }
        let (take, found) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if line.len() + take > max {
            return Err(malformed(format!(
                "a line of the response head is longer than {max} bytes"
            )));
        }
        line.extend_from_slice(&available[..take]);
        conn.consume(take);
        if found {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Some(line));
        }
    }
}

/// `SIZE[;extensions]` of a chunk, in hex.
fn chunk_size(conn: &mut Buffered) -> io::Result<u64> {
    let line = read_line(conn, MAX_CHUNK_LINE)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the connection closed before the last chunk",
        )
    })?;
    let text = std::str::from_utf8(&line).unwrap_or_default();
    let size = text.split(';').next().unwrap_or_default().trim();
    // Hex digits only: `from_str_radix` would also take a leading `+`.
    if size.is_empty() || size.len() > 15 || !size.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(malformed("a chunk size of the body is not a hex number"));
    }
    u64::from_str_radix(size, 16)
        .map_err(|_| malformed("a chunk size of the body is not a hex number"))
}

fn skip_trailers(conn: &mut Buffered) -> io::Result<()> {
    for _ in 0..=MAX_HEADERS {
        match read_line(conn, MAX_HEAD)? {
            None => return Ok(()),
            Some(line) if line.is_empty() => return Ok(()),
            Some(_) => {}
        }
    }
    Err(malformed(format!("more than {MAX_HEADERS} trailer fields")))
}

/// Status and header fields of one response head.
fn read_head(conn: &mut Buffered) -> io::Result<(u16, Headers)> {
    let status_line = read_line(conn, MAX_HEAD)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the connection closed without an answer",
        )
    })?;
    let status = parse_status_line(&status_line)?;
    let mut headers = Headers::default();
    let mut total = status_line.len();
    loop {
        let line = read_line(conn, MAX_HEAD)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the connection closed inside the response head",
            )
        })?;
        if line.is_empty() {
            return Ok((status, headers));
        }
        total += line.len();
        if total > MAX_HEAD || headers.0.len() >= MAX_HEADERS {
            return Err(malformed(format!(
                "the response head is larger than {MAX_HEAD} bytes or {MAX_HEADERS} fields"
            )));
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(malformed("a header line of the response has no colon"));
        };
        let name = std::str::from_utf8(&line[..colon])
            .ok()
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| malformed("a header name of the response is not a token"))?;
        headers.push(name, line[colon + 1..].trim_ascii());
    }
}

/// `HTTP/1.x NNN reason`.
fn parse_status_line(line: &[u8]) -> io::Result<u16> {
    let bad = || malformed("the answer does not start with an HTTP/1.x status line");
    let rest = line
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| line.strip_prefix(b"HTTP/1.0 "))
        .ok_or_else(bad)?;
    let code = rest.get(..3).ok_or_else(bad)?;
    if !code.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|&b| b != b' ') {
        return Err(bad());
    }
    let status = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if status < 100 {
        return Err(bad());
    }
    Ok(status)
}

/// How the body of a response to a request with a body is delimited.
fn framing(status: u16, headers: &Headers, conn: Buffered) -> io::Result<Body> {
    if status == 204 || status == 304 {
        return Ok(Body::Empty);
    }
    if let Some(te) = headers.all("transfer-encoding").last() {
        let last = te
            .rsplit(|&b| b == b',')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        if last.eq_ignore_ascii_case(b"chunked") {
            return Ok(Body::Chunked {
                conn,
                left: 0,
                done: false,
            });
        }
        return Ok(Body::UntilClose(conn));
    }
    let mut length = None;
    for v in headers.all("content-length") {
        for part in v.split(|&b| b == b',') {
            let n = std::str::from_utf8(part.trim_ascii())
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| malformed("the Content-Length of the response is not a number"))?;
            if length.is_some_and(|l| l != n) {
                return Err(malformed(
                    "the response has conflicting Content-Length values",
                ));
            }
            length = Some(n);
        }
    }
    Ok(match length {
        Some(left) => Body::Length { conn, left },
        None => Body::UntilClose(conn),
    })
}

impl Transport {
    /// Sends `req` and reads the response head, all before `deadline`; connecting (TCP, proxy
    /// tunnel and TLS handshake) also before the connect time limit.
    pub(super) fn send(&self, req: &Request<'_>, deadline: Instant) -> Result<Response, HttpError> {
        let connect_deadline = (Instant::now() + self.connect_timeout).min(deadline);
        let clock = Rc::new(Cell::new(connect_deadline));
        let (mut conn, via_proxy) = self.connect(req.url, &clock)?;
        clock.set(deadline);

        let target = if via_proxy {
            // Plain http through a proxy: the absolute form, without user info or fragment.
            let mut url = req.url.clone();
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_fragment(None);
            url.to_string()
        } else {
            match req.url.query() {
                Some(q) => format!("{}?{q}", req.url.path()),
                None => req.url.path().to_string(),
            }
        };
        // Sized up front: a zeroizing string that grows leaves its old buffers behind unwiped, and
        // this one may hold the proxy password.
        let fields: usize = req.headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
        let mut head = Zeroizing::new(String::with_capacity(target.len() + fields + 1024));
        head.push_str(&format!(
            "{} {target} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            req.method,
            req.host,
            self.user_agent,
            req.body.len()
        ));
        for (name, value) in req.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if via_proxy && let Some(auth) = self.proxy_for(req.url).and_then(proxy_authorization) {
            push_proxy_authorization(&mut head, &auth);
        }
        head.push_str("\r\n");
        let send = |conn: &mut Conn| -> io::Result<()> {
            conn.write_all(head.as_bytes())?;
            conn.write_all(req.body)?;
            conn.flush()
        };
        let shown = display_target(req.url);
        send(&mut conn)
            .map_err(|e| HttpError::new(format!("sending the request to {shown}"), e))?;

        let mut conn = Buffered::new(conn);
        let reading = |e| HttpError::new(format!("reading the answer from {shown}"), e);
        let (status, headers) = loop {
            let (status, headers) = read_head(&mut conn).map_err(reading)?;
            // Interim answers (100 Continue, 103 Early Hints) precede the real one.
            if (100..200).contains(&status) && status != 101 {
                continue;
            }
            break (status, headers);
        };
        let body = framing(status, &headers, conn).map_err(reading)?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// The proxy for `url`, unless `NO_PROXY` exempts its host.
    fn proxy_for(&self, url: &Url) -> Option<&Url> {
        let proxy = match url.scheme() {
            "https" => self.proxies.https.as_ref(),
            "http" => self.proxies.http.as_ref(),
            _ => None,
        }?;
        let host = url.host()?;
        if self.proxies.bypasses(&host) {
            return None;
        }
        Some(proxy)
    }

    /// A connection to `url`'s server, through its proxy if any; true when requests must use the
    /// absolute form (plain http through a proxy).
    fn connect(&self, url: &Url, clock: &Rc<Cell<Instant>>) -> Result<(Conn, bool), HttpError> {
        let host = url
            .host()
            .ok_or_else(|| HttpError::new("connecting", malformed("the URL has no host")))?
            .to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let https = url.scheme() == "https";
        let proxy = self.proxy_for(url);
        let (tcp_host, tcp_port) = match proxy {
            Some(p) => (
                p.host().map_or_else(|| host.clone(), |h| h.to_owned()),
                p.port_or_known_default().unwrap_or(80),
            ),
            None => (host.clone(), port),
        };
        let tcp = tcp_connect(&tcp_host, tcp_port, clock.get())?;
        let _ = tcp.set_nodelay(true);
        let mut conn: Conn = Box::new(Deadlined {
            tcp,
            deadline: clock.clone(),
        });
        if let Some(p) = proxy {
            let proxy_shown = format!("the proxy {}", authority(&tcp_host, tcp_port));
            if p.scheme() == "https" {
                conn = self.tls(conn, &tcp_host, &proxy_shown)?;
            }
            if !https {
                return Ok((conn, true));
            }
            tunnel(&mut conn, &host, port, p).map_err(|e| {
                HttpError::new(format!("opening a tunnel through {proxy_shown}"), e)
            })?;
        }
        if https {
            conn = self.tls(conn, &host, &authority(&host, port))?;
        }
        Ok((conn, false))
    }

    /// TLS over `conn` with the server name `host`, the handshake completed.
    fn tls(&self, conn: Conn, host: &Host<String>, shown: &str) -> Result<Conn, HttpError> {
        let name = match host {
            Host::Domain(d) => ServerName::try_from(d.clone()),
            Host::Ipv4(ip) => Ok(ServerName::from(std::net::IpAddr::V4(*ip))),
            Host::Ipv6(ip) => Ok(ServerName::from(std::net::IpAddr::V6(*ip))),
        }
        .map_err(|e| HttpError::new(format!("TLS with {shown}"), malformed(e.to_string())))?;
        let session = ClientConnection::new(self.tls.clone(), name)
            .map_err(|e| HttpError::new(format!("TLS with {shown}"), io::Error::other(e)))?;
        let mut stream = StreamOwned::new(session, conn);
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|e| HttpError::new(format!("TLS handshake with {shown}"), e))?;
        }
        Ok(Box::new(stream))
    }
}

/// `host:port`, IPv6 in brackets.
fn authority(host: &Host<String>, port: u16) -> String {
    format!("{host}:{port}")
}

/// The URL as messages show it: scheme, host, port and path, no user info or query.
fn display_target(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{}://{host}:{port}{}", url.scheme(), url.path()),
        None => format!("{}://{host}{}", url.scheme(), url.path()),
    }
}

/// A TCP connection to `host:port` before `deadline`: each address the name resolves to in turn.
fn tcp_connect(host: &Host<String>, port: u16, deadline: Instant) -> Result<TcpStream, HttpError> {
    let shown = authority(host, port);
    let addrs: Vec<SocketAddr> = match host {
        Host::Ipv4(ip) => vec![SocketAddr::from((*ip, port))],
        Host::Ipv6(ip) => vec![SocketAddr::from((*ip, port))],
        Host::Domain(name) => resolve(name, port, deadline)
            .map_err(|e| HttpError::new(format!("resolving {name}"), e))?,
    };
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the name has no address");
    let count = addrs.len();
    for (i, addr) in addrs.into_iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            last = timed_out("connecting");
            break;
        }
        // An address that drops packets (a broken IPv6 route) must not use up the whole budget:
        // each gets an equal share of what is left (at least CONNECT_SHARE_FLOOR), the last all.
        let others = u32::try_from(count - i).unwrap_or(u32::MAX);
        let share = if others > 1 {
            (left / others).max(CONNECT_SHARE_FLOOR).min(left)
        } else {
            left
        };
        match TcpStream::connect_timeout(&addr, share) {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = timeout_kind(e),
        }
    }
    Err(HttpError::new(format!("connecting to {shown}"), last))
}

/// The addresses of `name`, before `deadline`. The system resolver cannot be interrupted, so it
/// runs on a thread of its own that is left behind (and ends when the resolver does) if the
/// deadline passes first.
pub(super) fn resolve(name: &str, port: u16, deadline: Instant) -> io::Result<Vec<SocketAddr>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let query = (name.to_string(), port);
    std::thread::Builder::new()
        .name("resolve".into())
        .spawn(move || {
            let _ = tx.send(query.to_socket_addrs().map(Iterator::collect));
        })?;
    let left = deadline.saturating_duration_since(Instant::now());
    rx.recv_timeout(left)
        .unwrap_or_else(|_| Err(timed_out("resolving")))
}

/// `CONNECT host:port` through the proxy `proxy` on `conn`; the proxy must answer 2xx.
fn tunnel(conn: &mut Conn, host: &Host<String>, port: u16, proxy: &Url) -> io::Result<()> {
    let target = authority(host, port);
    let mut head = Zeroizing::new(String::with_capacity(2 * target.len() + 1024));
    head.push_str(&format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"));
    if let Some(auth) = proxy_authorization(proxy) {
        push_proxy_authorization(&mut head, &auth);
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    conn.flush()?;
    // Read the answer's head byte by byte: whatever follows it is the tunnel's (the TLS handshake),
    // and a buffered reader would swallow it.
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") && !raw.ends_with(b"\n\n") {
        if raw.len() >= MAX_HEAD {
            return Err(malformed(format!(
                "the proxy's answer head is larger than {MAX_HEAD} bytes"
            )));
        }
        if conn.read(&mut byte)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the proxy closed the connection without an answer",
            ));
        }
        raw.push(byte[0]);
    }
    let line_end = raw.iter().position(|&b| b == b'\n').unwrap_or(raw.len());
    let line = raw[..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&raw[..line_end]);
    let status = parse_status_line(line)?;
    if !(200..300).contains(&status) {
        let hint = if status == 407 {
            " (proxy authentication required: put the user and password in the proxy URL)"
        } else {
            ""
        };
        return Err(io::Error::other(format!(
            "the proxy answered HTTP {status} to CONNECT {target}{hint}"
        )));
    }
    Ok(())
}

/// `Basic …` from the user name and password in a proxy URL (percent-decoded), if it has any.
fn proxy_authorization(proxy: &Url) -> Option<Zeroizing<String>> {
    if proxy.username().is_empty() && proxy.password().is_none() {
        return None;
    }
    use base64::Engine as _;
    let user = percent_decode(proxy.username());
    let password = percent_decode(proxy.password().unwrap_or_default());
    // Every buffer sized before it is filled, so none reallocates and leaves a copy behind.
    let mut pair = Zeroizing::new(Vec::with_capacity(user.len() + 1 + password.len()));
    pair.extend_from_slice(&user);
    pair.push(b':');
    pair.extend_from_slice(&password);
    let mut out = Zeroizing::new(String::with_capacity(6 + pair.len().div_ceil(3) * 4));
    out.push_str("Basic ");
    base64::engine::general_purpose::STANDARD.encode_string(&*pair, &mut out);
    Some(out)
}

/// Appends the `Proxy-Authorization` field to `head` without a temporary copy of its value.
fn push_proxy_authorization(head: &mut Zeroizing<String>, auth: &str) {
    head.reserve(auth.len() + 32);
    head.push_str("Proxy-Authorization: ");
    head.push_str(auth);
    head.push_str("\r\n");
}

/// `%XX` sequences decoded; anything else kept as it is.
fn percent_decode(s: &str) -> Zeroizing<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len()));
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(Some(h)), Some(Some(l))) = (
                bytes.get(i + 1).map(|&b| hex(b)),
                bytes.get(i + 2).map(|&b| hex(b)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(data: &[u8]) -> Buffered {
        let conn: Conn = Box::new(io::Cursor::new(data.to_vec()));
        Buffered::new(conn)
    }

    fn body_of(raw: &[u8]) -> io::Result<(u16, Headers, Vec<u8>)> {
        let mut conn = reader(raw);
        let (status, headers) = read_head(&mut conn)?;
        let mut body = framing(status, &headers, conn)?;
        let mut out = Vec::new();
        body.read_to_end(&mut out)?;
        Ok((status, headers, out))
    }

    #[test]
    fn content_length_chunked_and_until_close_bodies() {
        let (status, headers, body) =
            body_of(b"HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-A: b \r\n\r\nhelloEXTRA")
                .unwrap();
        assert_eq!((status, body.as_slice()), (201, &b"hello"[..]));
        assert_eq!(headers.get_str("x-a"), Some("b"));
        let (_, _, body) = body_of(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nT: x\r\n\r\n",
        )
        .unwrap();
        assert_eq!(body, b"Wikipedia");
        let (_, _, body) = body_of(b"HTTP/1.0 500 Oops\r\n\r\nall of it").unwrap();
        assert_eq!(body, b"all of it");
    }

    #[test]
    fn truncated_and_malformed_answers_are_errors() {
        for raw in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab",
            // A sign is not a hex digit (from_str_radix alone would take it).
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+3\r\nabc\r\n0\r\n\r\n",
            b"SSH-2.0-OpenSSH\r\n\r\n",
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Le",
            b"",
        ] {
            assert!(body_of(raw).is_err(), "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn heads_are_bounded() {
        let mut raw = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            raw.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        assert!(body_of(&raw).unwrap_err().to_string().contains("fields"));
        let mut raw = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        raw.extend(std::iter::repeat_n(b'a', MAX_HEAD + 1));
        assert!(
            body_of(&raw)
                .unwrap_err()
                .to_string()
                .contains("longer than")
        );
    }

    #[test]
    fn header_text_is_visible_ascii_only() {
        let mut h = Headers::default();
        h.push("X-Amzn-ErrorType", b"Bad\x1b[31m");
        h.push("X-Ok", b"a\tb");
        assert_eq!(h.get("x-amzn-errortype"), Some(&b"Bad\x1b[31m"[..]));
        assert_eq!(h.get_str("x-amzn-errortype"), None);
        assert_eq!(h.get_str("x-ok"), Some("a\tb"));
    }

    #[test]
    fn proxy_authorization_is_basic_of_the_decoded_user_info() {
        let url = Url::parse("http://us%40er:p%23ss%3Aw@proxy:3128").unwrap();
        let auth = proxy_authorization(&url).unwrap();
        use base64::Engine as _;
        let expected = base64::engine::general_purpose::STANDARD.encode("us@er:p#ss:w");
        assert_eq!(auth.as_str(), format!("Basic {expected}"));
        assert!(proxy_authorization(&Url::parse("http://proxy:3128").unwrap()).is_none());
    }
}
