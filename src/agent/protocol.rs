//! The agent's wire format: one versioned JSON request and one response per connection, bounded.
//!
//! A connection carries exactly one exchange: the client writes one JSON object on one line
//! (`\n`-terminated, at most [`MAX_REQUEST`] bytes with the newline), the agent answers with one
//! line of at most [`MAX_RESPONSE`] bytes and closes.
//!
//! ```text
//! {"version":1,"op":"credentials","profile":"web"}
//! {"version":1,"op":"status"}
//! {"version":1,"ok":true,"credentials":{"Version":1,"AccessKeyId":"…","SecretAccessKey":"…","SessionToken":"…","Expiration":"…"}}
//! {"version":1,"ok":true,"status":{…StatusReport…}}
//! {"version":1,"ok":false,"error":{"code":"unknown_profile","message":"…"}}
//! ```
//!
//! The `credentials` object is byte for byte what `credential-process` prints (one encoder,
//! [`crate::cli::commands::credential_json`]), so the client passes it on unchanged in form.
//!
//! Pure: no I/O. Decoding never panics and never quotes its input back in an error (a request
//! holds no secret, but an answer does). Secrets are encoded into a [`Zeroizing`] buffer sized so it
//! never reallocates, and decoded straight into [`Secret`]s.

use crate::refresh::Issued;
use crate::secret::Secret;
use crate::session::Credentials;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use zeroize::Zeroizing;

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;
/// Largest request line, newline included.
pub const MAX_REQUEST: usize = 4096;
/// Largest response line, newline included.
pub const MAX_RESPONSE: usize = 65536;
/// Longest profile name.
pub const MAX_PROFILE_NAME: usize = 64;

/// True for a valid profile name: 1 to 64 of `A-Z a-z 0-9 _ . -` (safe in messages, logs and
/// metric labels as it is).
pub fn valid_profile_name(name: &str) -> bool {
    (1..=MAX_PROFILE_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// The cached credentials of a profile.
    Credentials {
        /// The profile's name (checked by [`valid_profile_name`] when decoded).
        profile: String,
    },
    /// The agent's status report.
    Status,
}

impl Request {
    /// The request line, newline included.
    pub fn encode(&self) -> Vec<u8> {
        let line = match self {
            Request::Credentials { profile } => format!(
                "{{\"version\":{VERSION},\"op\":\"credentials\",\"profile\":{}}}\n",
                serde_json::Value::from(profile.as_str())
            ),
            Request::Status => format!("{{\"version\":{VERSION},\"op\":\"status\"}}\n"),
        };
        line.into_bytes()
    }
}

/// Why the agent refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// No profile of that name.
    UnknownProfile,
    /// The caller's uid and groups are not allowed to read the profile.
    NotAllowed,
    /// No usable credentials (yet, or any more): the message says why.
    Unavailable,
    /// The request was malformed.
    BadRequest,
    /// The request's protocol version is not spoken here.
    UnsupportedVersion,
    /// Too many connections at once.
    Busy,
    /// The agent is stopping.
    ShuttingDown,
}

impl ErrorCode {
    /// Every code.
    pub const ALL: [ErrorCode; 7] = [
        ErrorCode::UnknownProfile,
        ErrorCode::NotAllowed,
        ErrorCode::Unavailable,
        ErrorCode::BadRequest,
        ErrorCode::UnsupportedVersion,
        ErrorCode::Busy,
        ErrorCode::ShuttingDown,
    ];

    /// The code on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UnknownProfile => "unknown_profile",
            ErrorCode::NotAllowed => "not_allowed",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::Busy => "busy",
            ErrorCode::ShuttingDown => "shutting_down",
        }
    }

    /// The code named `s` on the wire.
    pub fn parse(s: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal: its code and a secret-free message for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What kind of refusal.
    pub code: ErrorCode,
    /// What went wrong, for a person.
    pub message: String,
}

impl Failure {
    /// A refusal with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

/// Escaped: the message comes from the other end of the socket.
impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", crate::text::escape(&self.message), self.code)
    }
}

/// The agent's state as `agent status` shows it; no secrets.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StatusReport {
    /// The agent's process id.
    pub pid: u32,
    /// The agent's version text.
    pub version: String,
    /// The configuration file it read.
    pub config: String,
    /// The socket it listens on.
    pub socket: String,
    /// The profiles the asking caller may read.
    pub profiles: Vec<ProfileStatus>,
}

/// One profile's state.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProfileStatus {
    /// The profile's name.
    pub name: String,
    /// Its certificate, once the identity is open.
    pub certificate: Option<CertificateStatus>,
    /// Expiration of the cached set (RFC 3339 UTC).
    pub credentials_expiration: Option<String>,
    /// When the cached set arrived (RFC 3339 UTC).
    pub last_refresh: Option<String>,
    /// The last failed refresh.
    pub last_failure: Option<FailureStatus>,
    /// Successful refreshes.
    pub refreshes_ok: u64,
    /// Failed refreshes.
    pub refreshes_failed: u64,
    /// The profile's IMDS/container listener addresses.
    pub listeners: Vec<String>,
}

/// A profile's certificate.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CertificateStatus {
    /// Subject (RFC 4514).
    pub subject: String,
    /// Serial number, decimal.
    pub serial: String,
    /// End of validity (RFC 3339 UTC).
    pub not_after: String,
}

/// A failed refresh.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FailureStatus {
    /// When (RFC 3339 UTC).
    pub at: String,
    /// Why (secret-free).
    pub message: String,
}

/// An answer, as the agent encodes it.
#[derive(Debug)]
pub enum Response {
    /// A profile's credentials.
    Credentials(Arc<Issued>),
    /// The status report.
    Status(StatusReport),
    /// A refusal.
    Error(Failure),
}

/// What comes before the credentials object in a credentials answer (and `}\n` after it).
const CREDENTIALS_PREFIX: &[u8] = b"{\"version\":1,\"ok\":true,\"credentials\":";

impl Response {
    /// The response line, newline included, at most [`MAX_RESPONSE`] bytes: an answer that would
    /// be longer (a status of very many profiles) becomes an `unavailable` refusal saying so.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let encoded = match self {
            Response::Credentials(issued) => crate::cli::commands::credential_json(
                &issued.credentials,
                CREDENTIALS_PREFIX,
                b"}\n",
            )
            .map_err(|_| "cannot encode the credentials"),
            Response::Status(report) => {
                #[derive(Serialize)]
                struct Wire<'a> {
                    version: u32,
                    ok: bool,
                    status: &'a StatusReport,
                }
                line(&Wire {
                    version: VERSION,
                    ok: true,
                    status: report,
                })
                .map_err(|_| "cannot encode the status report")
            }
            Response::Error(failure) => Ok(error_line(failure)),
        };
        match encoded {
            Ok(bytes) if bytes.len() <= MAX_RESPONSE => bytes,
            Ok(bytes) => error_line(&Failure::new(
                ErrorCode::Unavailable,
                format!(
                    "the answer is {} bytes, over the protocol's limit of {MAX_RESPONSE}",
                    bytes.len()
                ),
            )),
            Err(what) => error_line(&Failure::new(ErrorCode::Unavailable, what)),
        }
    }
}

/// `value` as one JSON line.
fn line(value: &impl Serialize) -> Result<Zeroizing<Vec<u8>>, serde_json::Error> {
    let mut out = Zeroizing::new(serde_json::to_vec(value)?);
    out.push(b'\n');
    Ok(out)
}

/// A refusal line. A message that would not fit is cut (at a character boundary).
fn error_line(failure: &Failure) -> Zeroizing<Vec<u8>> {
    let mut message = failure.message.as_str();
    if message.len() > 4096 {
        let mut end = 4096;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message = &message[..end];
    }
    Zeroizing::new(
        format!(
            "{{\"version\":{VERSION},\"ok\":false,\"error\":{{\"code\":\"{}\",\"message\":{}}}}}\n",
            failure.code,
            serde_json::Value::from(message)
        )
        .into_bytes(),
    )
}

/// `line` without its final `\n` (if any).
fn strip_newline(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

fn bad_request(message: &str) -> Failure {
    Failure::new(ErrorCode::BadRequest, message)
}

/// Decodes a request line (with or without its newline). The refusal never quotes the input.
pub fn decode_request(line: &[u8]) -> Result<Request, Failure> {
    use serde_json::Value;
    if line.len() > MAX_REQUEST {
        return Err(bad_request(&format!(
            "the request is longer than {MAX_REQUEST} bytes"
        )));
    }
    let body = strip_newline(line);
    if body.contains(&b'\n') {
        return Err(bad_request("the request must be a single line"));
    }
    let object: serde_json::Map<String, Value> = serde_json::from_slice(body)
        .map_err(|_| bad_request("the request is not a JSON object"))?;
    // The version first: a newer client's request is refused as such, whatever else it holds.
    match object.get("version") {
        None => return Err(bad_request("the request has no version")),
        Some(v) => match v.as_u64() {
            Some(n) if n == u64::from(VERSION) => {}
            Some(n) => {
                return Err(Failure::new(
                    ErrorCode::UnsupportedVersion,
                    format!(
                        "protocol version {n} is not supported; this agent speaks version {VERSION}"
                    ),
                ));
            }
            None => {
                return Err(Failure::new(
                    ErrorCode::UnsupportedVersion,
                    format!(
                        "the request's version is not a protocol version; this agent speaks \
                         version {VERSION}"
                    ),
                ));
            }
        },
    }
    let op = match object.get("op") {
        None => return Err(bad_request("the request has no op")),
        Some(Value::String(op)) => op.as_str(),
        Some(_) => return Err(bad_request("the request's op is not a string")),
    };
    let (request, keys): (Request, &[&str]) = match op {
        "credentials" => {
            let profile = match object.get("profile") {
                None => return Err(bad_request("a credentials request needs a profile")),
                Some(Value::String(p)) => p,
                Some(_) => return Err(bad_request("the request's profile is not a string")),
            };
            if !valid_profile_name(profile) {
                return Err(bad_request(
                    "the profile name is invalid: use 1 to 64 of A-Z a-z 0-9 _ . -",
                ));
            }
            (
                Request::Credentials {
                    profile: profile.clone(),
                },
                &["version", "op", "profile"],
            )
        }
        "status" => (Request::Status, &["version", "op"]),
        _ => return Err(bad_request("unknown op: use credentials or status")),
    };
    if object.keys().any(|k| !keys.contains(&k.as_str())) {
        return Err(bad_request(&format!(
            "the request has a field its op does not take (a {op} request takes only {})",
            keys.join(", ")
        )));
    }
    Ok(request)
}

/// A decoded answer, on the client.
#[derive(Debug)]
pub enum Answer {
    /// The credentials (secrets in [`Secret`]s).
    Credentials(Credentials),
    /// The status report.
    Status(StatusReport),
    /// A refusal.
    Refused(Failure),
}

/// Why an answer could not be decoded. Never quotes the answer (it may hold credentials).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Over [`MAX_RESPONSE`].
    #[error("the answer is longer than {MAX_RESPONSE} bytes")]
    TooLong,
    /// Not a JSON object with the fields of an answer.
    #[error("the answer is not valid: {0}")]
    Malformed(&'static str),
    /// Another protocol version.
    #[error("the agent answered in protocol version {0}; this client speaks version {VERSION}")]
    Version(u64),
}

/// A string read straight into a zeroizing secret.
struct SecretField(Secret);

impl<'de> Deserialize<'de> for SecretField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| SecretField(Secret::new(s)))
    }
}

/// Decodes a response line (with or without its newline).
pub fn decode_response(line: &[u8]) -> Result<Answer, DecodeError> {
    #[derive(Deserialize)]
    struct Head {
        version: Option<u64>,
    }
    #[derive(Deserialize)]
    struct Wire {
        ok: bool,
        credentials: Option<WireCredentials>,
        status: Option<StatusReport>,
        error: Option<WireError>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct WireCredentials {
        version: u64,
        access_key_id: String,
        secret_access_key: SecretField,
        session_token: SecretField,
        expiration: String,
    }
    #[derive(Deserialize)]
    struct WireError {
        code: String,
        message: String,
    }
    if line.len() > MAX_RESPONSE {
        return Err(DecodeError::TooLong);
    }
    let body = strip_newline(line);
    if body.contains(&b'\n') {
        return Err(DecodeError::Malformed("more than one line"));
    }
    let head: Head =
        serde_json::from_slice(body).map_err(|_| DecodeError::Malformed("not a JSON object"))?;
    match head.version {
        Some(v) if v == u64::from(VERSION) => {}
        Some(v) => return Err(DecodeError::Version(v)),
        None => return Err(DecodeError::Malformed("no version")),
    }
    let wire: Wire = serde_json::from_slice(body)
        .map_err(|_| DecodeError::Malformed("unexpected fields or types"))?;
    match wire {
        Wire {
            ok: true,
            credentials: Some(c),
            status: None,
            error: None,
        } => {
            if c.version != 1 {
                return Err(DecodeError::Malformed("credentials Version is not 1"));
            }
            let expires_at = time::OffsetDateTime::parse(
                &c.expiration,
                &time::format_description::well_known::Rfc3339,
            )
            .map_err(|_| DecodeError::Malformed("the Expiration is not an RFC 3339 time"))?
            // The instant printed (UTC, whole seconds), so both fields say the same.
            .to_offset(time::UtcOffset::UTC);
            let expires_at = expires_at.replace_nanosecond(0).unwrap_or(expires_at);
            if c.access_key_id.is_empty()
                || c.secret_access_key.0.is_empty()
                || c.session_token.0.is_empty()
            {
                return Err(DecodeError::Malformed("an empty credential"));
            }
            Ok(Answer::Credentials(Credentials {
                access_key_id: c.access_key_id,
                secret_access_key: c.secret_access_key.0,
                session_token: c.session_token.0,
                // The one form every SDK parses, whatever the agent sent.
                expiration: crate::text::utc_seconds(expires_at),
                expires_at,
            }))
        }
        Wire {
            ok: true,
            credentials: None,
            status: Some(s),
            error: None,
        } => Ok(Answer::Status(s)),
        Wire {
            ok: false,
            credentials: None,
            status: None,
            error: Some(e),
        } => {
            let code =
                ErrorCode::parse(&e.code).ok_or(DecodeError::Malformed("an unknown error code"))?;
            Ok(Answer::Refused(Failure::new(code, e.message)))
        }
        _ => Err(DecodeError::Malformed(
            "ok does not match its credentials, status or error",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLETOKEN//////////wEaCXVz";

    fn issued(expiration: &str) -> Arc<Issued> {
        let expires_at =
            time::OffsetDateTime::parse(expiration, &time::format_description::well_known::Rfc3339)
                .unwrap();
        Arc::new(Issued {
            credentials: Credentials {
                access_key_id: "ASIAEXAMPLE123".into(),
                secret_access_key: Secret::new(SECRET.into()),
                session_token: Secret::new(TOKEN.into()),
                expiration: expiration.into(),
                expires_at,
            },
            obtained_at: time::OffsetDateTime::UNIX_EPOCH,
            generation: 1,
        })
    }

    fn report() -> StatusReport {
        StatusReport {
            pid: 42,
            version: "0.1.0".into(),
            config: "/etc/rolesanywhere/agent.toml".into(),
            socket: "/run/rolesanywhere/agent.sock".into(),
            profiles: vec![
                ProfileStatus {
                    name: "web".into(),
                    certificate: Some(CertificateStatus {
                        subject: "CN=web,O=Ex\u{1b}[31m".into(),
                        serial: "1234".into(),
                        not_after: "2027-01-01T00:00:00Z".into(),
                    }),
                    credentials_expiration: Some("2026-05-01T12:00:00Z".into()),
                    last_refresh: Some("2026-05-01T11:00:00Z".into()),
                    last_failure: Some(FailureStatus {
                        at: "2026-05-01T10:00:00Z".into(),
                        message: "C_Sign: CKR_DEVICE_REMOVED".into(),
                    }),
                    refreshes_ok: 3,
                    refreshes_failed: 1,
                    listeners: vec!["127.0.0.1:9911".into()],
                },
                ProfileStatus {
                    name: "empty".into(),
                    ..ProfileStatus::default()
                },
            ],
        }
    }

    #[test]
    fn requests_round_trip() {
        for r in [
            Request::Status,
            Request::Credentials {
                profile: "web-1.prod_x".into(),
            },
        ] {
            let line = r.encode();
            assert!(line.ends_with(b"\n") && line.len() <= MAX_REQUEST);
            assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
            assert_eq!(decode_request(&line).unwrap(), r);
        }
        assert_eq!(
            Request::Credentials {
                profile: "web".into()
            }
            .encode(),
            b"{\"version\":1,\"op\":\"credentials\",\"profile\":\"web\"}\n"
        );
        // Any key order, no newline, blanks: what a hand-written client might send.
        assert_eq!(
            decode_request(b" { \"op\" : \"status\" , \"version\" : 1 } ").unwrap(),
            Request::Status
        );
    }

    #[test]
    fn credentials_round_trip_and_match_credential_process_output() {
        let i = issued("2026-05-01T12:00:00Z");
        let line = Response::Credentials(i.clone()).encode();
        let text = std::str::from_utf8(&line).unwrap();
        let printed = crate::cli::commands::credential_json(&i.credentials, b"", b"").unwrap();
        assert_eq!(
            text,
            format!(
                "{{\"version\":1,\"ok\":true,\"credentials\":{}}}\n",
                std::str::from_utf8(&printed).unwrap()
            )
        );
        let Answer::Credentials(c) = decode_response(&line).unwrap() else {
            panic!("not credentials")
        };
        assert_eq!(c.access_key_id, "ASIAEXAMPLE123");
        assert_eq!(c.secret_access_key.expose(), SECRET);
        assert_eq!(c.session_token.expose(), TOKEN);
        assert_eq!(c.expiration, "2026-05-01T12:00:00Z");
        assert_eq!(c.expires_at, i.credentials.expires_at);
        // The decoded set prints exactly as the agent's did.
        assert_eq!(
            *crate::cli::commands::credential_json(&c, b"", b"").unwrap(),
            *printed
        );
    }

    #[test]
    fn an_expiration_with_an_offset_is_printed_in_utc_seconds() {
        let line = b"{\"version\":1,\"ok\":true,\"credentials\":{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"SessionToken\":\"t\",\"Expiration\":\"2026-05-01T14:00:00.5+02:00\"}}\n";
        let Answer::Credentials(c) = decode_response(line).unwrap() else {
            panic!("not credentials")
        };
        assert_eq!(c.expiration, "2026-05-01T12:00:00Z");
        // The instant is the printed one: a set passed on again encodes and decodes unchanged
        // (found by the agent_protocol fuzz target: the fraction of a second survived).
        assert_eq!(
            c.expires_at,
            time::macros::datetime!(2026-05-01 12:00:00 UTC)
        );
        let again = Response::Credentials(Arc::new(Issued {
            credentials: c,
            obtained_at: time::OffsetDateTime::UNIX_EPOCH,
            generation: 1,
        }))
        .encode();
        let Answer::Credentials(back) = decode_response(&again).unwrap() else {
            panic!("not credentials")
        };
        assert_eq!(
            back.expires_at,
            time::macros::datetime!(2026-05-01 12:00:00 UTC)
        );
    }

    #[test]
    fn status_and_errors_round_trip() {
        let r = report();
        let line = Response::Status(r.clone()).encode();
        let Answer::Status(back) = decode_response(&line).unwrap() else {
            panic!("not a status")
        };
        assert_eq!(back, r);
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            let f = Failure::new(code, "profile \"x\"\n is \u{1b}[2J odd");
            let line = Response::Error(f.clone()).encode();
            assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
            let Answer::Refused(back) = decode_response(&line).unwrap() else {
                panic!("not a refusal")
            };
            assert_eq!(back, f);
            // Shown escaped: the message comes from the other end of a socket.
            let shown = back.to_string();
            assert!(
                !shown.contains('\u{1b}') && !shown.contains('\n'),
                "{shown}"
            );
            assert!(shown.ends_with(&format!("({})", code.as_str())), "{shown}");
        }
    }

    #[test]
    fn an_oversize_answer_becomes_an_unavailable_refusal() {
        let mut r = report();
        r.profiles = (0..2000)
            .map(|i| ProfileStatus {
                name: format!("profile-{i}"),
                ..ProfileStatus::default()
            })
            .collect();
        let line = Response::Status(r).encode();
        assert!(line.len() <= MAX_RESPONSE);
        let Answer::Refused(f) = decode_response(&line).unwrap() else {
            panic!("not a refusal")
        };
        assert_eq!(f.code, ErrorCode::Unavailable);
        assert!(f.message.contains("over the protocol's limit"), "{f}");
        let long = Failure::new(ErrorCode::Unavailable, "é".repeat(40_000));
        let line = Response::Error(long).encode();
        assert!(line.len() <= MAX_RESPONSE);
        assert!(matches!(decode_response(&line), Ok(Answer::Refused(_))));
    }

    /// Every class of malformed request, and the code it gets.
    #[test]
    fn malformed_requests_are_bad_requests_and_other_versions_unsupported() {
        let long = format!(
            "{{\"version\":1,\"op\":\"status\",\"pad\":\"{}\"}}",
            "x".repeat(MAX_REQUEST)
        );
        let long_name = format!(
            "{{\"version\":1,\"op\":\"credentials\",\"profile\":\"{}\"}}",
            "a".repeat(65)
        );
        let cases: &[(&[u8], ErrorCode)] = &[
            (b"", ErrorCode::BadRequest),
            (b"\n", ErrorCode::BadRequest),
            (b"not json", ErrorCode::BadRequest),
            (b"[1,2]", ErrorCode::BadRequest),
            (b"\"status\"", ErrorCode::BadRequest),
            (b"{\"version\":1,\"op\":\"status\"", ErrorCode::BadRequest),
            (b"\xff\xfe{}", ErrorCode::BadRequest),
            (b"{\"op\":\"status\"}", ErrorCode::BadRequest),
            (b"{\"version\":1}", ErrorCode::BadRequest),
            (b"{\"version\":1,\"op\":7}", ErrorCode::BadRequest),
            (b"{\"version\":1,\"op\":\"delete\"}", ErrorCode::BadRequest),
            (
                b"{\"version\":1,\"op\":\"credentials\"}",
                ErrorCode::BadRequest,
            ),
            (
                b"{\"version\":1,\"op\":\"credentials\",\"profile\":1}",
                ErrorCode::BadRequest,
            ),
            (
                b"{\"version\":1,\"op\":\"credentials\",\"profile\":\"\"}",
                ErrorCode::BadRequest,
            ),
            (
                b"{\"version\":1,\"op\":\"credentials\",\"profile\":\"a b\"}",
                ErrorCode::BadRequest,
            ),
            (
                b"{\"version\":1,\"op\":\"credentials\",\"profile\":\"\\u001b[2J\"}",
                ErrorCode::BadRequest,
            ),
            (long_name.as_bytes(), ErrorCode::BadRequest),
            (
                b"{\"version\":1,\"op\":\"status\",\"profile\":\"web\"}",
                ErrorCode::BadRequest,
            ),
            (
                b"{\"version\":1,\"op\":\"credentials\",\"profile\":\"web\",\"x\":1}",
                ErrorCode::BadRequest,
            ),
            (
                b"{\"version\":1,\"op\":\"status\"}\n{}",
                ErrorCode::BadRequest,
            ),
            (long.as_bytes(), ErrorCode::BadRequest),
            (
                b"{\"version\":2,\"op\":\"status\"}",
                ErrorCode::UnsupportedVersion,
            ),
            (
                b"{\"version\":0,\"op\":\"status\"}",
                ErrorCode::UnsupportedVersion,
            ),
            (
                b"{\"version\":\"1\",\"op\":\"status\"}",
                ErrorCode::UnsupportedVersion,
            ),
            (
                b"{\"version\":-1,\"op\":\"status\"}",
                ErrorCode::UnsupportedVersion,
            ),
            // A newer request is refused for its version, not for what it holds.
            (
                b"{\"version\":2,\"op\":\"frobnicate\",\"new\":[]}",
                ErrorCode::UnsupportedVersion,
            ),
        ];
        for (input, code) in cases {
            let shown = String::from_utf8_lossy(input);
            let f = decode_request(input).expect_err(&shown);
            assert_eq!(f.code, *code, "{shown}: {f}");
            // Never quoted back.
            assert!(
                !f.message.contains("delete") && !f.message.contains("a b"),
                "{f}"
            );
        }
        let f = decode_request(long.as_bytes()).unwrap_err();
        assert!(f.message.contains("longer than 4096"), "{f}");
        let f = decode_request(b"{\"version\":2,\"op\":\"status\"}").unwrap_err();
        assert_eq!(
            f.message,
            "protocol version 2 is not supported; this agent speaks version 1"
        );
    }

    #[test]
    fn malformed_answers_are_protocol_errors_that_never_quote_secrets() {
        let secret_answer = format!(
            "{{\"version\":1,\"ok\":true,\"credentials\":{{\"Version\":2,\"AccessKeyId\":\"A\",\
             \"SecretAccessKey\":\"{SECRET}\",\"SessionToken\":\"{TOKEN}\",\"Expiration\":\"x\"}}}}"
        );
        let bad_expiration = secret_answer.replace("\"Version\":2", "\"Version\":1");
        let extra = format!(
            "{{\"version\":1,\"ok\":true,\"status\":{},\"error\":{{\"code\":\"busy\",\"message\":\"\"}}}}",
            serde_json::to_string(&report()).unwrap()
        );
        let cases: Vec<(Vec<u8>, DecodeError)> =
            vec![
            (vec![b'x'; MAX_RESPONSE + 1], DecodeError::TooLong),
            (b"".to_vec(), DecodeError::Malformed("not a JSON object")),
            (b"{}".to_vec(), DecodeError::Malformed("no version")),
            (b"{\"version\":3,\"ok\":true}".to_vec(), DecodeError::Version(3)),
            (
                b"{\"version\":1,\"ok\":true}".to_vec(),
                DecodeError::Malformed("ok does not match its credentials, status or error"),
            ),
            (
                b"{\"version\":1,\"ok\":\"yes\"}".to_vec(),
                DecodeError::Malformed("unexpected fields or types"),
            ),
            (
                b"{\"version\":1,\"ok\":false,\"error\":{\"code\":\"teapot\",\"message\":\"\"}}"
                    .to_vec(),
                DecodeError::Malformed("an unknown error code"),
            ),
            (
                secret_answer.clone().into_bytes(),
                DecodeError::Malformed("credentials Version is not 1"),
            ),
            (
                bad_expiration.into_bytes(),
                DecodeError::Malformed("the Expiration is not an RFC 3339 time"),
            ),
            (
                extra.into_bytes(),
                DecodeError::Malformed("ok does not match its credentials, status or error"),
            ),
            (
                secret_answer.replace("{\"Version\"", "[{\"Version\"").into_bytes(),
                DecodeError::Malformed("not a JSON object"),
            ),
        ];
        for (input, want) in cases {
            let e = decode_response(&input).unwrap_err();
            assert_eq!(e, want);
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains(SECRET) && !shown.contains(TOKEN), "{shown}");
        }
    }

    /// A small deterministic generator (xorshift): no dependency, and a failing seed is printed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Random bytes and mutations of valid lines: decoding never panics, an accepted request is
    /// one that encodes back to the same request, and no refusal is longer than a fixed bound.
    #[test]
    fn decoding_never_panics_on_random_or_mutated_input() {
        let valid: Vec<Vec<u8>> = vec![
            Request::Status.encode(),
            Request::Credentials {
                profile: "web".into(),
            }
            .encode(),
            Response::Credentials(issued("2026-05-01T12:00:00Z"))
                .encode()
                .to_vec(),
            Response::Status(report()).encode().to_vec(),
            Response::Error(Failure::new(ErrorCode::Busy, "busy"))
                .encode()
                .to_vec(),
        ];
        let alphabet =
            b"{}[]\":,\\ 0123456789.-+eEtruefalsnl\nversionopprofilecredentialsstatusu00";
        for seed in 1..=20_000u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let input: Vec<u8> = if seed % 3 == 0 {
                let len = rng.below(200);
                (0..len).map(|_| rng.next() as u8).collect()
            } else if seed % 3 == 1 {
                let len = rng.below(120);
                (0..len)
                    .map(|_| alphabet[rng.below(alphabet.len())])
                    .collect()
            } else {
                let mut v = valid[rng.below(valid.len())].clone();
                for _ in 0..=rng.below(4) {
                    match rng.below(3) {
                        0 if !v.is_empty() => {
                            let i = rng.below(v.len());
                            v[i] = alphabet[rng.below(alphabet.len())];
                        }
                        1 if !v.is_empty() => {
                            let i = rng.below(v.len());
                            v.remove(i);
                        }
                        _ => {
                            let i = rng.below(v.len() + 1);
                            v.insert(i, rng.next() as u8);
                        }
                    }
                }
                v
            };
            match decode_request(&input) {
                Ok(r) => assert_eq!(decode_request(&r.encode()).as_ref(), Ok(&r), "seed {seed}"),
                Err(f) => assert!(f.message.len() < 200, "seed {seed}: {f}"),
            }
            let _ = decode_response(&input);
        }
    }

    #[test]
    fn profile_names_are_checked() {
        for ok in ["a", "web", "Prod_1.x-y", &"z".repeat(64)] {
            assert!(valid_profile_name(ok), "{ok}");
        }
        for bad in ["", "a b", "é", "a/b", "a\n", &"z".repeat(65)] {
            assert!(!valid_profile_name(bad), "{bad:?}");
        }
    }
}
