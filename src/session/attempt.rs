//! One attempt of a CreateSession call: sign the request afresh, send it within the attempt's
//! deadline, read a bounded body into zeroizing memory, and turn the answer into [`Credentials`] or an
//! [`Error`].

use super::error::{Cause, classify, with_leaf_problems};
use super::http::{self, is_timeout};
use super::{
    CONTENT_TYPE, Client, Credentials, Error, SessionRequest, TransportFailure, endpoint, response,
};
use crate::signer::Identity;
use crate::sigv4x509::{self, RequestParts, SigningInput};
use std::io::Read;
use std::time::Instant;
use zeroize::Zeroizing;

/// The shortest remaining lifetime of credentials that are passed on. SDKs refresh credentials that
/// expire within a few minutes, and the service issues at least 15; less than this means a broken
/// server or a wrong clock, and the credentials would be of no use anyway.
pub const MIN_REMAINING: time::Duration = time::Duration::seconds(60);

/// The parts of a request that stay the same across attempts (only the signature changes).
pub(super) struct Prepared {
    pub(super) url: url::Url,
    pub(super) query: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

impl Client {
    pub(super) fn attempt(
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
        // One deadline for everything this attempt does on the network: the transport bounds
        // every read and write by it (connecting also by the connect limit), and `read_body`
        // checks it between reads.
        let now = Instant::now();
        let deadline = (now + self.timeout).min(call_deadline);
        if deadline <= now {
            return Err(transport(
                TransportFailure::TimedOut,
                false,
                &std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the time limit of the call ran out",
                ),
            ));
        }
        let mut headers: Vec<(&str, &str)> = vec![("Content-Type", CONTENT_TYPE)];
        headers.extend(
            signed
                .headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
        );
        let request = http::Request {
            method: "POST",
            url: &prepared.url,
            host: self.endpoint.host(),
            headers: &headers,
            body: &prepared.body,
        };
        let mut resp = self.http.send(&request, deadline).map_err(|source| {
            let failure = classify(&source, self.endpoint.host_name());
            // A certificate the client refuses now it will refuse on the next attempt too; any
            // other failure to connect, send or receive may pass.
            let transient = matches!(failure, TransportFailure::Io | TransportFailure::TimedOut);
            transport(failure, transient, &source)
        })?;
        let status = resp.status;
        if let Some(d) = debug {
            d(&format!("attempt {attempt}: response status {status}"));
        }
        if (300..400).contains(&status) {
            let location = resp.headers.get("location").map_or_else(
                || "nowhere (no Location header)".to_string(),
                |v| response::quoted(&endpoint::without_userinfo(&String::from_utf8_lossy(v))),
            );
            return Err(Error::Redirect {
                url: self.endpoint.display_url(),
                status,
                location,
            });
        }
        let headers = std::mem::take(&mut resp.headers);
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
/// Largest response body read (a credential set is a few KiB). A success body beyond it is
/// malformed; of an error body only this much is read.
pub(super) const MAX_BODY: usize = 1 << 20;

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

/// Compact JSON `{"durationSeconds":N}` plus `"roleSessionName"` when given.
pub(super) fn request_body(req: &SessionRequest) -> Vec<u8> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
}
