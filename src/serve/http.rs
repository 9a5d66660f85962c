//! The server side of HTTP/1.1, as small as `serve` needs: read one request head (and a small body
//! that is discarded) from a keep-alive connection within limits and deadlines, and write one
//! response.
//!
//! Limits, so that no client can hold more than a fixed amount of memory or a thread for long:
//! a head of at most [`MAX_HEAD`] bytes (the connection's one buffer), a request line of at most
//! [`MAX_REQUEST_LINE`] bytes, at most [`MAX_HEADERS`] header lines, a body of at most
//! [`MAX_BODY`] bytes, no chunked bodies; the whole request (head and body) must arrive within
//! [`REQUEST_TIMEOUT`] of its first byte. Only the headers the endpoints use are kept; a repeated
//! one of them is refused (two tokens or two lengths are never guessed between).
//!
//! Tokens and authorization values pass through the buffer: it is zeroized as requests are
//! consumed and when the connection ends. Must not log (the caller decides what to say).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use zeroize::{Zeroize as _, Zeroizing};

/// Largest request head (request line and headers).
pub const MAX_HEAD: usize = 8 * 1024;
/// Longest request line.
pub const MAX_REQUEST_LINE: usize = 2 * 1024;
/// Most header lines in one head.
pub const MAX_HEADERS: usize = 64;
/// Largest request body accepted (and discarded): the endpoints take none.
pub const MAX_BODY: u64 = 1024;
/// Time for a whole request to arrive once its first byte has.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest value of the headers that are kept (tokens are 43 characters, TTLs 5).
const MAX_VALUE: usize = 1024;

/// The request methods the endpoints know; anything else is answered 405.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `PUT`.
    Put,
    /// Any other token.
    Other,
}

/// One parsed request: the method, the path (query removed, not decoded) and the headers the
/// endpoints use.
#[derive(Default)]
pub struct Request {
    /// The method.
    pub method: Option<Method>,
    /// The origin-form target without its query.
    pub path: String,
    /// `X-aws-ec2-metadata-token-ttl-seconds`.
    pub token_ttl: Option<String>,
    /// `X-aws-ec2-metadata-token` (a secret).
    pub token: Option<Zeroizing<Vec<u8>>>,
    /// `Authorization` (a secret).
    pub authorization: Option<Zeroizing<Vec<u8>>>,
    /// An `X-Forwarded-For` header was present.
    pub forwarded: bool,
    /// The client asked to close after this request (or speaks HTTP/1.0 without keep-alive).
    pub close: bool,
}

/// Why no request could be read. The ones with a status are answered, then the connection closes.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The client closed the connection between requests.
    Closed,
    /// The connection failed or closed in the middle of a request.
    Io,
    /// The request did not arrive within [`REQUEST_TIMEOUT`] (408).
    Timeout,
    /// The request is malformed or over a limit: the status to answer and a short reason.
    Bad(u16, &'static str),
}

/// A keep-alive connection's read side: the socket and its one buffer.
pub struct Conn {
    /// The socket (its write timeout is set once by the caller).
    pub stream: TcpStream,
    buf: Zeroizing<Vec<u8>>,
    filled: usize,
}

impl Conn {
    /// Wraps an accepted socket.
    pub fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            buf: Zeroizing::new(vec![0; MAX_HEAD]),
            filled: 0,
        }
    }

    /// True when bytes of a next request are already buffered (pipelined).
    pub fn has_buffered(&self) -> bool {
        self.filled > 0
    }

    /// Reads the next request; the first read blocks only until the caller's poll said readable.
    pub fn read_request(&mut self) -> Result<Request, ReadError> {
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let head_len = loop {
            let line_end = self.buf[..self.filled].iter().position(|&b| b == b'\n');
            if line_end.unwrap_or(self.filled) > MAX_REQUEST_LINE {
                self.consume(self.filled);
                return Err(ReadError::Bad(414, "request line too long"));
            }
            if let Some(end) = find_head_end(&self.buf[..self.filled]) {
                break end;
            }
            if self.filled == self.buf.len() {
                return Err(ReadError::Bad(431, "request head too large"));
            }
            let was_empty = self.filled == 0;
            match self.read_some(deadline)? {
                0 if was_empty => return Err(ReadError::Closed),
                0 => return Err(ReadError::Io),
                _ => {}
            }
        };
        let parsed = parse_head(&self.buf[..head_len]);
        let (request, body) = match parsed {
            Ok(v) => v,
            Err(e) => {
                self.consume(self.filled);
                return Err(e);
            }
        };
        self.consume(head_len);
        // The body is read and dropped, so the next request starts where it should.
        let mut left = body;
        while left > 0 {
            if self.filled == 0 && self.read_some(deadline)? == 0 {
                return Err(ReadError::Io);
            }
            let take = self.filled.min(usize::try_from(left).unwrap_or(usize::MAX));
            self.consume(take);
            left -= take as u64;
        }
        Ok(request)
    }

    fn read_some(&mut self, deadline: Instant) -> Result<usize, ReadError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadError::Timeout);
        }
        self.stream
            .set_read_timeout(Some(left))
            .map_err(|_| ReadError::Io)?;
        loop {
            match self.stream.read(&mut self.buf[self.filled..]) {
                Ok(n) => {
                    self.filled += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(ReadError::Timeout);
                }
                Err(_) => return Err(ReadError::Io),
            }
        }
    }

    /// Drops the first `n` buffered bytes, zeroizing what they leave behind.
    fn consume(&mut self, n: usize) {
        self.buf.copy_within(n..self.filled, 0);
        let rest = self.filled - n;
        self.buf[rest..self.filled].zeroize();
        self.filled = rest;
    }
}

/// The index just past the blank line ending the head, if it is buffered.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Parses a complete head (ending in the blank line); returns the request and its body length.
fn parse_head(head: &[u8]) -> Result<(Request, u64), ReadError> {
    let text =
        std::str::from_utf8(head).map_err(|_| ReadError::Bad(400, "request head is not UTF-8"))?;
    let mut lines = text[..text.len() - 4].split("\r\n");
    let line = lines.next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Bad(400, "malformed request line"));
    };
    let method = match method {
        "GET" => Method::Get,
        "PUT" => Method::Put,
        m if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) => Method::Other,
        _ => return Err(ReadError::Bad(400, "malformed request line")),
    };
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(ReadError::Bad(505, "only HTTP/1.1 and 1.0 are served")),
    };
    if !target.starts_with('/') || target.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
        return Err(ReadError::Bad(
            400,
            "the request target must be an absolute path",
        ));
    }
    let path = target.split('?').next().unwrap_or("").to_string();
    let mut req = Request {
        method: Some(method),
        path,
        close: http10,
        ..Request::default()
    };
    let mut body: Option<u64> = None;
    let mut count = 0;
    for line in lines {
        count += 1;
        if count > MAX_HEADERS {
            return Err(ReadError::Bad(431, "too many header lines"));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(ReadError::Bad(400, "malformed header line"));
        };
        if name.is_empty() || name.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(ReadError::Bad(400, "malformed header line"));
        }
        let value = value.trim_matches([' ', '\t']);
        if value.bytes().any(|b| b < b' ' && b != b'\t' || b == 0x7f) {
            return Err(ReadError::Bad(400, "control character in a header"));
        }
        let kept = |slot_filled: bool| {
            if slot_filled {
                Err(ReadError::Bad(400, "repeated header"))
            } else if value.len() > MAX_VALUE {
                Err(ReadError::Bad(431, "header value too long"))
            } else {
                Ok(())
            }
        };
        if name.eq_ignore_ascii_case("x-aws-ec2-metadata-token-ttl-seconds") {
            kept(req.token_ttl.is_some())?;
            req.token_ttl = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("x-aws-ec2-metadata-token") {
            kept(req.token.is_some())?;
            req.token = Some(Zeroizing::new(value.as_bytes().to_vec()));
        } else if name.eq_ignore_ascii_case("authorization") {
            kept(req.authorization.is_some())?;
            req.authorization = Some(Zeroizing::new(value.as_bytes().to_vec()));
        } else if name.eq_ignore_ascii_case("x-forwarded-for") {
            req.forwarded = true;
        } else if name.eq_ignore_ascii_case("content-length") {
            kept(body.is_some())?;
            let n = value
                .parse::<u64>()
                .ok()
                .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
                .ok_or(ReadError::Bad(400, "invalid Content-Length"))?;
            if n > MAX_BODY {
                return Err(ReadError::Bad(413, "request body too large"));
            }
            body = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(ReadError::Bad(
                501,
                "request bodies must have a Content-Length",
            ));
        } else if name.eq_ignore_ascii_case("connection") {
            for option in value.split(',').map(str::trim) {
                if option.eq_ignore_ascii_case("close") {
                    req.close = true;
                } else if option.eq_ignore_ascii_case("keep-alive") && http10 {
                    req.close = false;
                }
            }
        }
    }
    Ok((req, body.unwrap_or(0)))
}

/// One response. The body may hold credentials: it is zeroized when dropped.
pub struct Response {
    /// The status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Zeroizing<Vec<u8>>,
    /// `X-aws-ec2-metadata-token-ttl-seconds`, on IMDS answers that concern a token.
    pub token_ttl: Option<u64>,
    /// `Allow`, on 405 answers.
    pub allow: Option<&'static str>,
}

impl Response {
    /// A response with a body.
    pub fn new(status: u16, content_type: &'static str, body: Zeroizing<Vec<u8>>) -> Response {
        Response {
            status,
            content_type,
            body,
            token_ttl: None,
            allow: None,
        }
    }

    /// A short plain-text answer (errors).
    pub fn text(status: u16, text: &str) -> Response {
        Response::new(
            status,
            "text/plain",
            Zeroizing::new(text.as_bytes().to_vec()),
        )
    }
}

/// The reason phrase of the statuses the server uses.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Writes `r` (head and body in one write); `close` adds `Connection: close`.
pub fn write_response(stream: &mut TcpStream, r: &Response, close: bool) -> io::Result<()> {
    let mut out = Zeroizing::new(Vec::with_capacity(256 + r.body.len()));
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len()
    );
    if let Some(ttl) = r.token_ttl {
        let _ = write!(out, "X-aws-ec2-metadata-token-ttl-seconds: {ttl}\r\n");
    }
    if let Some(allow) = r.allow {
        let _ = write!(out, "Allow: {allow}\r\n");
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&r.body);
    stream.write_all(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<(Request, u64), ReadError> {
        parse_head(text.as_bytes())
    }

    #[test]
    fn parses_the_headers_the_endpoints_use() {
        let (r, body) = parse(
            "PUT /latest/api/token?x=1 HTTP/1.1\r\nHost: a\r\nx-aws-ec2-metadata-token-ttl-seconds:  21600 \r\n\
             X-Forwarded-For: 1.2.3.4\r\nContent-Length: 3\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.method, Some(Method::Put));
        assert_eq!(r.path, "/latest/api/token");
        assert_eq!(r.token_ttl.as_deref(), Some("21600"));
        assert!(r.forwarded && !r.close);
        assert_eq!(body, 3);
        let (r, _) = parse("GET / HTTP/1.0\r\nAuthorization: abc\r\n\r\n").unwrap();
        assert!(r.close);
        assert_eq!(
            r.authorization.as_deref().map(|v| &v[..]),
            Some(&b"abc"[..])
        );
        let (r, _) = parse("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n").unwrap();
        assert!(r.close);
        let (r, _) = parse("DELETE / HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(r.method, Some(Method::Other));
    }

    #[test]
    fn refuses_malformed_repeated_and_oversized_heads() {
        for (text, status) in [
            ("GET /\r\n\r\n", 400),
            ("GET  / HTTP/1.1\r\n\r\n", 400),
            ("get / HTTP/1.1\r\n\r\n", 400),
            ("GET http://a/ HTTP/1.1\r\n\r\n", 400),
            ("GET / HTTP/2.0\r\n\r\n", 505),
            ("GET / HTTP/1.1\r\nno colon\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nA b: c\r\n\r\n", 400),
            (
                "GET / HTTP/1.1\r\nX-aws-ec2-metadata-token: a\r\nx-aws-ec2-metadata-token: b\r\n\r\n",
                400,
            ),
            (
                "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
                400,
            ),
            ("GET / HTTP/1.1\r\nContent-Length: +1\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nContent-Length: 1025\r\n\r\n", 413),
            ("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
        ] {
            match parse(text) {
                Err(ReadError::Bad(s, _)) => assert_eq!(s, status, "{text:?}"),
                Err(e) => panic!("{text:?}: {e:?}"),
                Ok(_) => panic!("{text:?} accepted"),
            }
        }
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "A: b\r\n".repeat(MAX_HEADERS + 1)
        );
        assert!(matches!(parse(&many), Err(ReadError::Bad(431, _))));
        let long = format!(
            "GET / HTTP/1.1\r\nAuthorization: {}\r\n\r\n",
            "a".repeat(MAX_VALUE + 1)
        );
        assert!(matches!(parse(&long), Err(ReadError::Bad(431, _))));
    }
}
