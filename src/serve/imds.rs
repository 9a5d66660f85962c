//! The IMDSv2 subset SDKs use for credentials: session tokens, the role name, the credentials.
//!
//! Wire format (as EC2 and the SDKs behave; see docs/serving.md):
//! - `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds: N`, N in 1..=21600 →
//!   the token as the body and the TTL header; missing or invalid TTL → 400; `X-Forwarded-For` →
//!   403; PUT to a versioned path (`/2021-03-23/api/token`) → 403 as on EC2.
//! - Every GET carries `X-aws-ec2-metadata-token`; missing, unknown or expired → 401.
//! - `GET /latest/meta-data/iam/security-credentials/` → the role name, without a newline.
//! - `GET /latest/meta-data/iam/security-credentials/ROLE` → the JSON below, keys in EC2's order;
//!   503 with `{"Code":…,"Message":…}` when the refresher has no valid set (never 200 with empty or
//!   expired fields).
//!
//! Paths are taken with repeated slashes collapsed and a trailing slash ignored, never redirected,
//! so `AWS_EC2_METADATA_SERVICE_ENDPOINT` works written with or without its trailing slash.
//!
//! Tokens are 256 random bits (base64url); only their SHA-256 is kept, at most [`MAX_TOKENS`]
//! (the oldest evicted first). Must not log tokens or credentials.

use super::http::{Method, Request, Response};
use crate::refresh::{Issued, Unavailable};
use crate::text::utc_seconds;
use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Most live tokens; a new one beyond it evicts the oldest.
pub const MAX_TOKENS: usize = 1024;
/// Longest token lifetime, as on EC2 (six hours).
pub const MAX_TOKEN_TTL: u64 = 21600;
const CREDENTIALS_PATH: &str = "/latest/meta-data/iam/security-credentials";

/// The live tokens, by the SHA-256 of their value.
#[derive(Default)]
pub struct Tokens {
    inner: Mutex<TokenMap>,
}

#[derive(Default)]
struct TokenMap {
    by_hash: HashMap<[u8; 32], Entry>,
    issued: u64,
}

struct Entry {
    expires: Instant,
    /// Issue order, for evicting the oldest.
    serial: u64,
}

fn hash(value: &[u8]) -> [u8; 32] {
    Sha256::digest(value).into()
}

impl Tokens {
    /// A new token valid for `ttl` from `now`; `None` when the system's random source fails.
    pub fn issue(&self, now: Instant, ttl: Duration) -> Option<Zeroizing<String>> {
        let mut raw = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut raw[..]).ok()?;
        let token =
            Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw[..]));
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if map.by_hash.len() >= MAX_TOKENS {
            map.by_hash.retain(|_, e| e.expires > now);
        }
        if map.by_hash.len() >= MAX_TOKENS
            && let Some(oldest) = map
                .by_hash
                .iter()
                .min_by_key(|(_, e)| e.serial)
                .map(|(k, _)| *k)
        {
            map.by_hash.remove(&oldest);
        }
        map.issued += 1;
        let serial = map.issued;
        map.by_hash.insert(
            hash(token.as_bytes()),
            Entry {
                expires: now + ttl,
                serial,
            },
        );
        Some(token)
    }

    /// The seconds `token` has left, if it is live at `now` (an expired one is dropped).
    pub fn check(&self, token: &[u8], now: Instant) -> Option<u64> {
        let key = hash(token);
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let expires = map.by_hash.get(&key)?.expires;
        if expires <= now {
            map.by_hash.remove(&key);
            return None;
        }
        Some(expires.duration_since(now).as_secs().max(1))
    }

    /// How many tokens are held (live or not yet purged).
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_hash
            .len()
    }

    /// True when no token is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `path` with runs of `/` collapsed into one and a trailing `/` removed (the root stays `/`).
pub fn normalize(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if c == '/' && out.ends_with('/') {
            continue;
        }
        out.push(c);
    }
    if out.len() > 1 && out.ends_with('/') {
        out.pop();
    }
    out
}

/// What the IMDS endpoint serves: the role's name and where the credentials come from.
pub struct Imds<'a> {
    /// The live tokens.
    pub tokens: &'a Tokens,
    /// The role name (last part of the role ARN).
    pub role: &'a str,
    /// The current credential set.
    pub credentials: &'a (dyn Fn() -> Result<Arc<Issued>, Unavailable> + Sync),
}

/// The body of a credentials answer, keys in EC2's order.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct CredentialsBody<'a> {
    code: &'a str,
    last_updated: &'a str,
    #[serde(rename = "Type")]
    kind: &'a str,
    access_key_id: &'a str,
    secret_access_key: &'a str,
    token: &'a str,
    expiration: &'a str,
}

/// An IMDS-shaped error body (the Rust SDK reports `Message` when `Code` is not "Success").
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
    last_updated: &'a str,
}

impl Imds<'_> {
    /// The answer to `req` (already normalized `path`) at `now`.
    pub fn answer(&self, req: &Request, path: &str, now: Instant) -> Response {
        let method = req.method.unwrap_or(Method::Other);
        if path == "/latest/api/token" {
            return match method {
                Method::Put => self.put_token(req, now),
                _ => {
                    let mut r = Response::text(405, "the token is obtained with PUT");
                    r.allow = Some("PUT");
                    r
                }
            };
        }
        if method == Method::Put && path.ends_with("/api/token") && path.matches('/').count() == 3 {
            return Response::text(403, "tokens are issued at /latest/api/token");
        }
        if method != Method::Get {
            let mut r = Response::text(405, "method not allowed");
            r.allow = Some("GET");
            return r;
        }
        let Some(left) = req.token.as_deref().and_then(|t| self.tokens.check(t, now)) else {
            return Response::text(401, "a valid X-aws-ec2-metadata-token is required");
        };
        let mut r = self.get(path);
        r.token_ttl = Some(left);
        r
    }

    fn put_token(&self, req: &Request, now: Instant) -> Response {
        if req.forwarded {
            return Response::text(403, "token requests with X-Forwarded-For are refused");
        }
        let ttl = req
            .token_ttl
            .as_deref()
            .filter(|v| !v.is_empty() && v.len() <= 5 && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|n| (1..=MAX_TOKEN_TTL).contains(n));
        let Some(ttl) = ttl else {
            return Response::text(
                400,
                "X-aws-ec2-metadata-token-ttl-seconds must be a number of seconds from 1 to 21600",
            );
        };
        let Some(token) = self.tokens.issue(now, Duration::from_secs(ttl)) else {
            return Response::text(503, "cannot draw a random token");
        };
        let mut r = Response::new(200, "text/plain", Zeroizing::new(token.as_bytes().to_vec()));
        r.token_ttl = Some(ttl);
        r
    }

    fn get(&self, path: &str) -> Response {
        if path == CREDENTIALS_PATH {
            return Response::text(200, self.role);
        }
        match path
            .strip_prefix(CREDENTIALS_PATH)
            .and_then(|r| r.strip_prefix('/'))
        {
            Some(role) if role == self.role => self.credentials_answer(),
            _ => Response::text(404, "not found"),
        }
    }

    fn credentials_answer(&self) -> Response {
        match (self.credentials)() {
            Ok(issued) => {
                let c = &issued.credentials;
                let last_updated = utc_seconds(issued.obtained_at);
                json_response(
                    200,
                    &CredentialsBody {
                        code: "Success",
                        last_updated: &last_updated,
                        kind: "AWS-HMAC",
                        access_key_id: &c.access_key_id,
                        secret_access_key: c.secret_access_key.expose(),
                        token: c.session_token.expose(),
                        expiration: &c.expiration,
                    },
                )
            }
            Err(u) => json_response(
                503,
                &ErrorBody {
                    code: "CredentialsUnavailable",
                    message: &u.reason,
                    last_updated: &utc_seconds(time::OffsetDateTime::now_utc()),
                },
            ),
        }
    }
}

/// `value` as a JSON response, encoded into a zeroizing buffer sized so it never reallocates.
pub fn json_response(status: u16, value: &impl Serialize) -> Response {
    let mut body = Zeroizing::new(Vec::with_capacity(4096));
    if serde_json::to_writer(&mut *body, value).is_err() {
        return Response::text(500, "cannot encode the answer");
    }
    Response::new(status, "application/json", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_collapses_slashes_and_drops_one_trailing() {
        assert_eq!(normalize("//latest//meta-data/"), "/latest/meta-data");
        assert_eq!(normalize("/"), "/");
        assert_eq!(normalize("///"), "/");
        assert_eq!(normalize("/a/b"), "/a/b");
    }

    #[test]
    fn tokens_expire_and_the_oldest_is_evicted_at_the_bound() {
        let t = Tokens::default();
        let now = Instant::now();
        let first = t.issue(now, Duration::from_secs(10)).unwrap();
        assert_eq!(first.len(), 43);
        assert_eq!(t.check(first.as_bytes(), now), Some(10));
        assert_eq!(t.check(b"other", now), None);
        assert_eq!(
            t.check(first.as_bytes(), now + Duration::from_secs(10)),
            None
        );
        assert!(t.is_empty(), "an expired token is dropped when seen");
        let first = t.issue(now, Duration::from_secs(100)).unwrap();
        let second = t.issue(now, Duration::from_secs(100)).unwrap();
        for _ in 2..MAX_TOKENS {
            t.issue(now, Duration::from_secs(100)).unwrap();
        }
        assert_eq!(t.len(), MAX_TOKENS);
        assert!(t.check(first.as_bytes(), now).is_some());
        t.issue(now, Duration::from_secs(100)).unwrap();
        assert_eq!(t.len(), MAX_TOKENS);
        assert_eq!(
            t.check(first.as_bytes(), now),
            None,
            "the oldest is evicted"
        );
        assert!(t.check(second.as_bytes(), now).is_some());
    }

    #[test]
    fn utc_seconds_is_utc_with_z() {
        let t = time::macros::datetime!(2024-03-01 01:02:03.9 +02:00);
        assert_eq!(utc_seconds(t), "2024-02-29T23:02:03Z");
    }
}
