//! The IAM Roles Anywhere control plane (REST-JSON, botocore's `rolesanywhere` 2018-05-10 model):
//! trust anchors (with notification settings), profiles (with attribute mappings), CRLs, tags and
//! the subjects CreateSession has seen, authenticated with SigV4 against the `[admin]`
//! credentials; and IAM roles with their trust policies through IAM's query API ([`iam`]).
//!
//! Owns the resources (in memory and in the state file next to the configuration) and the
//! [`Config`] snapshot the CreateSession verifier uses, rebuilt after every change. The server
//! only hands it requests whose path it claims ([`Control::claims`]), and tells it about every
//! session granted ([`Control::record_subject`]).

mod crls;
pub mod iam;
mod profiles;
pub mod sigv4;
pub mod state;
mod subjects;
mod tags;
mod trust_anchors;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::config::{AdminCredentials, Config};
use state::State;
pub use subjects::SubjectSeen;

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

    fn too_many_tags(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            kind: "TooManyTagsException",
            message: message.into(),
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
    /// Subjects seen again since the state file was last written (their `lastSeenAt`).
    unsaved: AtomicBool,
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
            unsaved: AtomicBool::new(false),
        })
    }

    /// Records a session CreateSession granted under its subject (see [`SubjectSeen`]). A new
    /// subject is written to the state file at once; a subject seen again only updates its
    /// `lastSeenAt`, which the next write (any change, a new subject, or dropping the control
    /// plane) saves, so that a busy client does not rewrite the file per session.
    ///
    /// An error means the state file could not be written; the subject is still recorded in
    /// memory.
    pub fn record_subject(&self, seen: SubjectSeen) -> Result<(), Error> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let is_new = subjects::record(&mut state, &self.base.region, seen);
        if !is_new {
            self.unsaved.store(true, Ordering::SeqCst);
            return Ok(());
        }
        match &self.base.state_file {
            Some(path) => {
                let saved = state.save(path);
                self.unsaved.store(saved.is_err(), Ordering::SeqCst);
                saved
            }
            None => Ok(()),
        }
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
            "trustanchors"
                | "trustanchor"
                | "profiles"
                | "profile"
                | "crls"
                | "crl"
                | "subjects"
                | "subject"
                | "put-notifications-settings"
                | "reset-notifications-settings"
                | "TagResource"
                | "UntagResource"
                | "ListTagsForResource"
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
            ("PUT", ["profiles", id, "mappings"]) => {
                self.change(|s| profiles::put_mapping(s, &ctx, id, &body()?))
            }
            ("DELETE", ["profiles", id, "mappings"]) => {
                self.change(|s| profiles::delete_mapping(s, &ctx, id, &query))
            }
            ("PATCH", ["put-notifications-settings"]) => {
                self.change(|s| trust_anchors::put_notifications(s, &ctx, &body()?))
            }
            ("PATCH", ["reset-notifications-settings"]) => {
                self.change(|s| trust_anchors::reset_notifications(s, &ctx, &body()?))
            }
            ("POST", ["TagResource"]) => self.change(|s| tags::tag(s, &body()?)),
            ("POST", ["UntagResource"]) => self.change(|s| tags::untag(s, &body()?)),
            ("GET", ["ListTagsForResource"]) => self.read(|s| tags::list(s, &query)),
            ("GET", ["subjects"]) => self.read(|s| subjects::list(s, &query)),
            ("GET", ["subject", id]) => self.read(|s| subjects::get(s, id)),
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

    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn change(&self, f: impl FnOnce(&mut State) -> Answer) -> Answer {
        self.commit(f, ApiError::internal)
    }

    /// Applies a change to a copy, writes the copy to the state file, then makes it current (and
    /// rebuilds the snapshot): a change that cannot be saved changes nothing. `internal` shapes
    /// the save failure in the API's own error type.
    fn commit<T, E>(
        &self,
        f: impl FnOnce(&mut State) -> Result<T, E>,
        internal: impl FnOnce(String) -> E,
    ) -> Result<T, E> {
        let mut current = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = current.clone();
        let answer = f(&mut next)?;
        if let Some(path) = &self.base.state_file {
            next.save(path)
                .map_err(|e| internal(format!("{:#}", anyhow::Error::new(e))))?;
        }
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(next.config(&self.base));
        *current = next;
        if self.base.state_file.is_some() {
            self.unsaved.store(false, Ordering::SeqCst);
        }
        Ok(answer)
    }
}

impl Drop for Control {
    /// Saves what [`Control::record_subject`] left unsaved (best effort: nobody is left to tell).
    fn drop(&mut self) {
        if self.unsaved.load(Ordering::SeqCst)
            && let Some(path) = &self.base.state_file
        {
            let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = state.save(path);
        }
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

    /// Every value of a repeated parameter (botocore sends a list as `name=a&name=b`).
    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
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

/// Most tags a resource holds, and most keys one UntagResource removes.
const MAX_TAGS: usize = 200;

/// Whether a tag key or value has only `[ a-zA-Z0-9_.:/=+@-]` (the model's pattern).
fn tag_text(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || " _.:/=+@-".contains(c))
}

/// A tag key: 1 to 128 characters of the tag pattern.
fn check_tag_key(key: &str) -> Result<(), ApiError> {
    if !(1..=128).contains(&key.chars().count()) || !tag_text(key) {
        return Err(ApiError::validation(format!(
            "tag key {key:?} must be 1 to 128 characters of letters, digits, spaces and _.:/=+@-"
        )));
    }
    Ok(())
}

/// One `{key, value}` tag: the key as [`check_tag_key`], the value 0 to 256 characters of the
/// same pattern.
fn tag(t: &Value) -> Result<state::Tag, ApiError> {
    let (Some(key), Some(value)) = (
        t.get("key").and_then(Value::as_str),
        t.get("value").and_then(Value::as_str),
    ) else {
        return Err(ApiError::validation(
            "each tag must be an object with a string key and a string value",
        ));
    };
    check_tag_key(key)?;
    if value.chars().count() > 256 || !tag_text(value) {
        return Err(ApiError::validation(format!(
            "the value of tag {key:?} must be at most 256 characters of letters, digits, spaces and _.:/=+@-"
        )));
    }
    Ok(state::Tag {
        key: key.into(),
        value: value.into(),
    })
}

/// `tags`: at most 200 (else TooManyTagsException), each as [`tag`]; absent is none.
fn tags_field(m: &Map<String, Value>) -> Result<Vec<state::Tag>, ApiError> {
    let Some(v) = m.get("tags").filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let Some(list) = v.as_array() else {
        return Err(ApiError::validation("tags must be a list"));
    };
    if list.len() > MAX_TAGS {
        return Err(ApiError::too_many_tags(format!(
            "{} tags; a resource takes at most {MAX_TAGS}",
            list.len()
        )));
    }
    list.iter().map(tag).collect()
}

/// An empty configuration for unit tests.
#[cfg(test)]
fn test_config() -> Config {
    Config {
        region: "us-east-1".into(),
        trust_anchors: Vec::new(),
        profiles: Vec::new(),
        roles: Vec::new(),
        faults: Vec::new(),
        admin: None,
        account_id: crate::config::DEFAULT_ACCOUNT_ID.into(),
        state_file: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_every_model_path_and_nothing_else() {
        for path in [
            "/trustanchors",
            "/profiles/00000000-0000-4000-8000-000000000000/mappings",
            "/subjects",
            "/subject/00000000-0000-4000-8000-000000000000",
            "/put-notifications-settings",
            "/reset-notifications-settings",
            "/TagResource",
            "/UntagResource",
            "/ListTagsForResource",
        ] {
            assert!(Control::claims(path), "{path}");
        }
        for path in [
            "/sessions",
            "/",
            "/tagresource",
            "/subjectsx",
            "/debug/sessions",
        ] {
            assert!(!Control::claims(path), "{path}");
        }
    }

    #[test]
    fn repeated_query_parameters_are_all_kept_in_order() {
        let q =
            Query::parse("specifiers=CN&certificateField=x509Subject&specifiers=O%55&specifiers=");
        assert_eq!(q.all("specifiers"), ["CN", "OU", ""]);
        assert_eq!(q.get("certificateField"), Some("x509Subject"));
        assert!(q.all("missing").is_empty());
    }
}
