//! The IAM Roles Anywhere control plane (REST-JSON, botocore's `rolesanywhere` 2018-05-10 model):
//! trust anchors, profiles and CRLs, authenticated with SigV4 against the `[admin]` credentials.
//!
//! Owns the resources (in memory and in the state file next to the configuration) and the
//! [`Config`] snapshot the CreateSession verifier uses, rebuilt after every change. The server
//! only hands it requests whose path it claims ([`Control::claims`]).

mod crls;
mod profiles;
pub mod sigv4;
pub mod state;
mod trust_anchors;

use std::sync::{Arc, Mutex, PoisonError, RwLock};

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::config::{AdminCredentials, Config};
use state::State;

/// Why the control plane could not start.
pub type Error = state::Error;

/// One request as received (headers with lowercase names): the verifier's HTTP request.
pub use crate::verifier::HttpRequest as Request;

/// An AWS-shaped error answer: status, `x-amzn-ErrorType` and `{"message"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Error type.
    pub kind: &'static str,
    /// Message (escaped and bounded before it is sent).
    pub message: String,
}

impl ApiError {
    fn validation(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            kind: "ValidationException",
            message: message.into(),
        }
    }

    fn not_found(what: &str, id: &str) -> ApiError {
        ApiError {
            status: 404,
            kind: "ResourceNotFoundException",
            message: format!("{what} {id} not found"),
        }
    }

    fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 500,
            kind: "InternalServerException",
            message: message.into(),
        }
    }

    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = crate::server::bounded_text(&self.message);
        let mut resp =
            (code, axum::Json(serde_json::json!({ "message": message }))).into_response();
        resp.headers_mut()
            .insert("x-amzn-errortype", HeaderValue::from_static(self.kind));
        resp
    }
}

type Answer = Result<(u16, Value), ApiError>;

/// The control plane.
pub struct Control {
    base: Config,
    admin: Option<AdminCredentials>,
    state: Mutex<State>,
    snapshot: RwLock<Arc<Config>>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control").finish_non_exhaustive()
    }
}

/// ISO 8601 UTC as the service writes `createdAt`/`updatedAt`.
fn timestamp(now: OffsetDateTime) -> String {
    now.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A fresh random (version 4) UUID.
fn new_id() -> String {
    let mut b = [0u8; 16];
    crate::ca::fill_random(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    crate::server::uuid_text(&b)
}

impl Control {
    /// Loads the state file (when the configuration names one), seeds it from the configuration
    /// and builds the first snapshot.
    pub fn new(config: Config) -> Result<Control, Error> {
        let mut state = match &config.state_file {
            Some(path) => State::load(path)?,
            None => State::default(),
        };
        state.seed(&config, &timestamp(OffsetDateTime::now_utc()));
        let snapshot = Arc::new(state.config(&config));
        Ok(Control {
            admin: config.admin.clone(),
            base: config,
            state: Mutex::new(state),
            snapshot: RwLock::new(snapshot),
        })
    }

    /// What CreateSession is verified against now.
    pub fn snapshot(&self) -> Arc<Config> {
        self.snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether `path` is a control-plane path (the server hands such requests to [`handle`]).
    ///
    /// [`handle`]: Control::handle
    pub fn claims(path: &str) -> bool {
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
        matches!(
            first,
            "trustanchors" | "trustanchor" | "profiles" | "profile" | "crls" | "crl"
        )
    }

    /// Authenticates and answers one control-plane request.
    pub fn handle(&self, req: &Request<'_>, now: OffsetDateTime) -> Response {
        let signed = sigv4::Request {
            method: req.method,
            path: req.path,
            query: req.query,
            headers: req.headers,
            body: req.body,
        };
        if let Err(e) = sigv4::verify(&signed, self.admin.as_ref(), &self.base.region, now) {
            return ApiError {
                status: e.status(),
                kind: e.error_type(),
                message: e.to_string(),
            }
            .into_response();
        }
        match self.route(req, now) {
            Ok((status, body)) => {
                let code = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                (code, axum::Json(body)).into_response()
            }
            Err(e) => e.into_response(),
        }
    }

    fn route(&self, req: &Request<'_>, now: OffsetDateTime) -> Answer {
        let segments: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
        let query = Query::parse(req.query);
        let body = || parse_body(req.body);
        let ctx = Ctx {
            region: &self.base.region,
            account: &self.base.account_id,
            now: timestamp(now),
        };
        match (req.method, segments.as_slice()) {
            ("POST", ["trustanchors"]) => self.change(|s| trust_anchors::create(s, &ctx, &body()?)),
            ("GET", ["trustanchors"]) => self.read(|s| trust_anchors::list(s, &query)),
            ("GET", ["trustanchor", id]) => self.read(|s| trust_anchors::get(s, id)),
            ("PATCH", ["trustanchor", id]) => {
                self.change(|s| trust_anchors::update(s, &ctx, id, &body()?))
            }
            ("DELETE", ["trustanchor", id]) => self.change(|s| trust_anchors::delete(s, id)),
            ("POST", ["trustanchor", id, "enable"]) => {
                self.change(|s| trust_anchors::set_enabled(s, &ctx, id, true))
            }
            ("POST", ["trustanchor", id, "disable"]) => {
                self.change(|s| trust_anchors::set_enabled(s, &ctx, id, false))
            }
            ("POST", ["profiles"]) => self.change(|s| profiles::create(s, &ctx, &body()?)),
            ("GET", ["profiles"]) => self.read(|s| profiles::list(s, &query, ctx.account)),
            ("GET", ["profile", id]) => self.read(|s| profiles::get(s, id, ctx.account)),
            ("PATCH", ["profile", id]) => self.change(|s| profiles::update(s, &ctx, id, &body()?)),
            ("DELETE", ["profile", id]) => self.change(|s| profiles::delete(s, id, ctx.account)),
            ("POST", ["profile", id, "enable"]) => {
                self.change(|s| profiles::set_enabled(s, &ctx, id, true))
            }
            ("POST", ["profile", id, "disable"]) => {
                self.change(|s| profiles::set_enabled(s, &ctx, id, false))
            }
            ("POST", ["crls"]) => self.change(|s| crls::import(s, &ctx, &body()?)),
            ("GET", ["crls"]) => self.read(|s| crls::list(s, &query)),
            ("GET", ["crl", id]) => self.read(|s| crls::get(s, id)),
            ("PATCH", ["crl", id]) => self.change(|s| crls::update(s, &ctx, id, &body()?)),
            ("DELETE", ["crl", id]) => self.change(|s| crls::delete(s, id)),
            ("POST", ["crl", id, "enable"]) => {
                self.change(|s| crls::set_enabled(s, &ctx, id, true))
            }
            ("POST", ["crl", id, "disable"]) => {
                self.change(|s| crls::set_enabled(s, &ctx, id, false))
            }
            _ => Err(ApiError {
                status: 404,
                kind: "UnknownOperationException",
                message: format!(
                    "no operation {} {} in this emulator's control plane",
                    req.method, req.path
                ),
            }),
        }
    }

    fn read(&self, f: impl FnOnce(&State) -> Answer) -> Answer {
        f(&self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Applies a change to a copy, writes the copy to the state file, then makes it current (and
    /// rebuilds the snapshot): a change that cannot be saved changes nothing.
    fn change(&self, f: impl FnOnce(&mut State) -> Answer) -> Answer {
        let mut current = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = current.clone();
        let answer = f(&mut next)?;
        if let Some(path) = &self.base.state_file {
            next.save(path)
                .map_err(|e| ApiError::internal(format!("{:#}", anyhow::Error::new(e))))?;
        }
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(next.config(&self.base));
        *current = next;
        Ok(answer)
    }
}

/// What every operation may need besides the state.
struct Ctx<'a> {
    region: &'a str,
    account: &'a str,
    now: String,
}

impl Ctx<'_> {
    fn arn(&self, kind: &str, id: &str) -> String {
        format!(
            "arn:aws:rolesanywhere:{}:{}:{kind}/{id}",
            self.region, self.account
        )
    }
}

fn parse_body(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(ApiError::validation(
            "the request body is not a JSON object",
        )),
    }
}

/// Query-string parameters, decoded.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: &str) -> Query {
        let decode = |s: &str| {
            let b = s.replace('+', " ");
            let bytes = b.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < bytes.len() {
                let hex = |j: usize| bytes.get(j).and_then(|c| char::from(*c).to_digit(16));
                if bytes[i] == b'%'
                    && let (Some(h), Some(l)) = (hex(i + 1), hex(i + 2))
                {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            String::from_utf8_lossy(&out).into_owned()
        };
        Query(
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Default and largest `pageSize`.
const PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 1000;

/// One page of `items` per `nextToken`/`pageSize`; the token is the offset of the next page.
fn page(items: Vec<Value>, key: &str, query: &Query) -> Answer {
    let size = match query.get("pageSize") {
        None => PAGE_SIZE,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            _ => {
                return Err(ApiError::validation(format!(
                    "pageSize must be a number from 1 to {MAX_PAGE_SIZE}"
                )));
            }
        },
    };
    let start = match query.get("nextToken") {
        None => 0,
        Some(t) => match t.parse::<usize>() {
            Ok(n) if n <= items.len() => n,
            _ => {
                return Err(ApiError::validation(
                    "nextToken is not a token this list returned",
                ));
            }
        },
    };
    let end = (start + size).min(items.len());
    let mut out = Map::new();
    out.insert(key.into(), Value::Array(items[start..end].to_vec()));
    if end < items.len() {
        out.insert("nextToken".into(), Value::String(end.to_string()));
    }
    Ok((200, Value::Object(out)))
}

/// Checks a path id: a 36-character UUID (the model's `Uuid` shape).
fn check_id(id: &str) -> Result<(), ApiError> {
    let ok = id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError::validation(format!(
            "{id:?} is not a 36-character UUID"
        )))
    }
}

// Field readers: each names the field and what it must be.

fn string_field(m: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::validation(format!("{name} must be a string"))),
    }
}

fn bool_field(m: &Map<String, Value>, name: &str) -> Result<Option<bool>, ApiError> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::validation(format!(
            "{name} must be true or false"
        ))),
    }
}

fn strings_field(m: &Map<String, Value>, name: &str) -> Result<Option<Vec<String>>, ApiError> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ApiError::validation(format!("{name} must hold strings")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(ApiError::validation(format!("{name} must be a list"))),
    }
}

fn required<T>(v: Option<T>, name: &str) -> Result<T, ApiError> {
    v.ok_or_else(|| ApiError::validation(format!("{name} is required")))
}

/// A resource name: `[ a-zA-Z0-9-_]*`, 1 to 255 characters.
fn check_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty()
        || name.len() > 255
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" -_".contains(&b))
    {
        return Err(ApiError::validation(format!(
            "name {name:?} must be 1 to 255 characters of letters, digits, spaces, '-' and '_'"
        )));
    }
    Ok(())
}

/// `tags`: at most 200, keys 1–128 and values 0–256 characters of `[ a-zA-Z0-9_.:/=+@-]`.
fn tags_field(m: &Map<String, Value>) -> Result<Vec<state::Tag>, ApiError> {
    let Some(v) = m.get("tags").filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let Some(list) = v.as_array() else {
        return Err(ApiError::validation("tags must be a list"));
    };
    if list.len() > 200 {
        return Err(ApiError {
            status: 400,
            kind: "TooManyTagsException",
            message: format!("{} tags; a resource takes at most 200", list.len()),
        });
    }
    let allowed = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || " _.:/=+@-".contains(c))
    };
    list.iter()
        .map(|t| {
            let key = t.get("key").and_then(Value::as_str);
            let value = t.get("value").and_then(Value::as_str);
            match (key, value) {
                (Some(k), Some(v))
                    if (1..=128).contains(&k.chars().count())
                        && v.chars().count() <= 256
                        && allowed(k)
                        && allowed(v) =>
                {
                    Ok(state::Tag {
                        key: k.into(),
                        value: v.into(),
                    })
                }
                _ => Err(ApiError::validation(
                    "each tag needs a key (1-128) and a value (0-256) of letters, digits, spaces and _.:/=+@-",
                )),
            }
        })
        .collect()
}
