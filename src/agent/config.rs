//! The agent's configuration file (TOML): profiles, socket, metrics; validated like the flags.
//!
//! ```toml
//! socket = "/run/rolesanywhere/agent.sock"
//! [profiles.web]
//! certificate = "pkcs11:token=web;object=id"
//! trust_anchor_arn = "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/ta"
//! …
//! ```
//!
//! A profile holds what the session flags hold, under the flags' long names with `_` for `-`, and is
//! checked by the very code that checks the flags: its values are put into the clap structures
//! ([`SessionArgs`]) and handed to [`crate::cli::settings::session`]. What that reports in terms
//! of flags is reworded here in terms of keys, with the file and line of the key concerned.
//!
//! Three passes over the text, each with spans back into it: toml's spanned tree ([`DeTable`]) for
//! syntax and duplicate keys and as the index from a byte offset to a line and key path; a check of
//! that tree for what must never get further (a secret value, a `pin-value`, a bad profile name);
//! then serde (`deny_unknown_fields`) into typed raw structures.
//!
//! Must not: echo a value that could be a secret. serde's messages quote values (`invalid type:
//! string "hunter2", expected a boolean`), so every quoted part is cut out of them ([`unquoted`]);
//! toml's own `Display` prints the offending source line and its `Debug` the whole document, so only
//! the message and the span of its errors are used and the errors themselves are never kept.

mod ids;
#[cfg(test)]
mod tests;

use crate::arn::{self, ArnKind};
use crate::cli::args::SessionArgs;
use crate::cli::settings::{self, SessionSettings};
use crate::text;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The agent's configuration, validated.
#[derive(Debug)]
pub struct AgentConfig {
    /// The file read (absolute when it could be made so).
    pub path: PathBuf,
    /// Top-level `socket`.
    pub socket: Option<PathBuf>,
    /// Top-level `socket_group` (a group name or number), as a gid.
    pub socket_group: Option<u32>,
    /// Top-level `metrics_listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// The `[profiles.NAME]` tables, by name; never empty.
    pub profiles: BTreeMap<String, ProfileConfig>,
}

/// One `[profiles.NAME]` table, validated.
#[derive(Clone)]
pub struct ProfileConfig {
    /// The profile's name (`[A-Za-z0-9_.-]{1,64}`).
    pub name: String,
    /// What the same flags would give: built by the flags' own validation.
    pub session: SessionSettings,
    /// Callers allowed by uid (`allow_uids`, names resolved). When neither `allow_uids` nor
    /// `allow_gids` is given: the agent's own effective uid.
    pub allow_uids: Vec<u32>,
    /// Callers allowed by group (`allow_gids`, names resolved), primary or supplementary.
    pub allow_gids: Vec<u32>,
    /// The profile's IMDS/container listeners, as `serve` has them; `None` without `listen`.
    pub serve: Option<ServeConfig>,
    /// The table as written, for [`ProfileConfig::same_as`].
    raw: toml::Table,
}

impl ProfileConfig {
    /// The one unnamed profile of `serve`, from its validated flags: `serve` runs as an agent
    /// profile does (registry::Profile), without the socket. Readable by the agent's own uid only.
    pub fn from_flags(session: SessionSettings, serve: Option<ServeConfig>) -> ProfileConfig {
        ProfileConfig {
            name: String::new(),
            session,
            allow_uids: vec![ids::effective_uid()],
            allow_gids: Vec::new(),
            serve,
            raw: toml::Table::new(),
        }
    }

    /// True when both were read from equal tables (same keys, same values; layout, comments and
    /// key order aside), the allow lists left out: a reload keeps such a profile's identity,
    /// session and cache, and takes its allow lists from the new file in place (they are resolved
    /// on every read, so a user or group renumbered since counts as the new file says).
    pub fn same_as(&self, other: &ProfileConfig) -> bool {
        let identity = |t: &toml::Table| {
            let mut t = t.clone();
            t.remove("allow_uids");
            t.remove("allow_gids");
            t
        };
        self.name == other.name && identity(&self.raw) == identity(&other.raw)
    }
}

/// Written out by hand to leave out the raw table; [`SessionSettings`] redacts its own secrets.
impl fmt::Debug for ProfileConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileConfig")
            .field("name", &self.name)
            .field("session", &self.session)
            .field("allow_uids", &self.allow_uids)
            .field("allow_gids", &self.allow_gids)
            .field("serve", &self.serve)
            .finish_non_exhaustive()
    }
}

/// A profile's IMDS/container listeners (the `serve` command's, per profile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// `listen`: one to 32 `IP:PORT` addresses.
    pub listen: Vec<SocketAddr>,
    /// `hop_limit` (1..=255, default 64).
    pub hop_limit: u8,
    /// `container_token_file`: enables the container endpoint.
    pub container_token_file: Option<PathBuf>,
}

/// Where in the file a problem is: `PATH:LINE: KEY`.
#[derive(Debug, Clone)]
pub struct Location {
    /// The file.
    pub path: PathBuf,
    /// 1-based line, when the problem has one.
    pub line: Option<usize>,
    /// Key path, `profiles.web.role_arn` (empty for the file as a whole).
    pub key: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&text::path(&self.path))?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        Ok(())
    }
}

/// The configuration cannot be used. Every message is free of the file's values: a value is never
/// quoted (it might be a misplaced secret); the line and the key say where it is.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file cannot be read (missing, unreadable, not a regular file, too large).
    #[error("cannot read the agent configuration {}", text::path(path))]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: crate::userfile::Error,
    },
    /// Something in the file is wrong.
    #[error("{at}: {problem}")]
    Invalid {
        /// Where (boxed, as `problem`: errors stay small on the `Ok` path).
        at: Box<Location>,
        /// What.
        problem: Box<Problem>,
    },
}

impl Error {
    /// How to put it right.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Read { source, .. } => Some(match source {
                crate::userfile::Error::Io(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    "create it (docs/agent.md, \"Configuration file\", has an example) or give \
                     another file with --config"
                        .into()
                }
                _ => "give a readable TOML file with --config".into(),
            }),
            Error::Invalid { problem, .. } => problem.hint(),
        }
    }

    /// The problem, when it is one in the file.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Error::Invalid { problem, .. } => Some(&**problem),
            Error::Read { .. } => None,
        }
    }

    /// The line of the problem, when it has one.
    pub fn line(&self) -> Option<usize> {
        match self {
            Error::Invalid { at, .. } => at.line,
            Error::Read { .. } => None,
        }
    }
}

fn invalid(at: Location, problem: Problem) -> Error {
    Error::Invalid {
        at: Box::new(at),
        problem: Box::new(problem),
    }
}

/// Every configuration error is the user's to fix (exit code 2).
impl rolesanywhere_core::Classify for Error {
    fn class(&self) -> rolesanywhere_core::ErrorClass {
        rolesanywhere_core::ErrorClass::Configuration
    }
}

/// What is wrong at a [`Location`].
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// The file is not valid UTF-8.
    #[error("not valid UTF-8 (TOML files are)")]
    NotUtf8,
    /// Not TOML (toml's message: it describes the grammar, never quotes the text).
    #[error("{0}")]
    Syntax(String),
    /// A key this table does not have.
    #[error("unknown key")]
    UnknownKey {
        /// The nearest key it may have been meant to be.
        suggestion: Option<&'static str>,
        /// The keys of the table.
        known: &'static [&'static str],
    },
    /// A value of the wrong type (serde's message, quoted values cut out).
    #[error("{0}")]
    Type(String),
    /// A secret itself (`tpm_key_password`, `pin`, …) rather than a file holding it.
    #[error(
        "a secret is not accepted in the configuration file (the value is not shown); only the \
         file that holds it is"
    )]
    Secret {
        /// The key that names a file holding this secret instead, if there is one.
        file_key: Option<&'static str>,
    },
    /// A string holding `pin-value` (a `pkcs11:` URI with its PIN).
    #[error(
        "a pin-value is not accepted in the configuration file (the value is not shown); name a \
         file holding the PIN instead"
    )]
    PinValue,
    /// A profile name outside `[A-Za-z0-9_.-]{1,64}`.
    #[error("invalid profile name: use 1 to 64 letters, digits, '_', '.' or '-'")]
    ProfileName,
    /// No `[profiles.NAME]` table.
    #[error("no profiles: nothing to serve")]
    NoProfiles,
    /// Keys the profile needs are missing (all of them, as the flags report them).
    #[error("missing {} {}", if keys.len() == 1 { "key" } else { "keys" }, and_list(keys))]
    MissingKeys {
        /// The keys, in the flags' order.
        keys: Vec<String>,
    },
    /// A malformed ARN.
    #[error("not a {} ARN: {problem}", kind_name(*kind))]
    Arn {
        /// Which ARN.
        kind: ArnKind,
        /// What is wrong (quotes the bad part, which pin-value checks made free of secrets).
        problem: arn::ArnProblem,
    },
    /// A region that is not a region name.
    #[error("not a region name like us-east-1 (never a -fips name)")]
    Region,
    /// Trust anchor and profile in different regions, or no FIPS endpoint for the region.
    #[error("{0}")]
    Regions(String),
    /// A number outside its range.
    #[error("out of range: {0}")]
    OutOfRange(&'static str),
    /// `role_session_name` the service would refuse.
    #[error("invalid session name: use 2 to 64 characters of letters, digits and + = , . @ _ -")]
    RoleSessionName,
    /// The endpoint URL is unusable.
    #[error("invalid endpoint: {0}")]
    Endpoint(String),
    /// A file key given a `pkcs11:` URI.
    #[error("takes a file, not a pkcs11: URI (the value is not shown)")]
    UriForFile,
    /// Not `IP:PORT`.
    #[error("not an address: give IP:PORT or [IPv6]:PORT, e.g. 127.0.0.1:9911 or [::1]:9911")]
    Address,
    /// `listen` with no address or more than 32.
    #[error("{0} addresses given: give 1 to 32")]
    ListenCount(usize),
    /// `hop_limit` or `container_token_file` without `listen`.
    #[error("applies to the profile's listeners, and it has none (no listen key)")]
    NeedsListen,
    /// A user name the user database does not know.
    #[error("no such user in the system's user database")]
    UnknownUser,
    /// A group name the group database does not know.
    #[error("no such group in the system's group database")]
    UnknownGroup,
    /// The user or group database could not be read.
    #[error("cannot look the name up: {0}")]
    Lookup(std::io::Error),
    /// `allow_uids` or `allow_gids` given empty.
    #[error("the list is empty: it allows no caller")]
    NobodyAllowed,
    /// `allow_uids`/`allow_gids` with `listen`.
    #[error(
        "cannot restrict a profile that has listen: its IMDS/container listeners answer every \
         local process, whatever allow_uids and allow_gids say"
    )]
    ListenServesEveryone,
    /// Another settings error (the environment's `AWS_USE_FIPS_ENDPOINT`, a proxy variable).
    #[error("{0}")]
    Settings(String),
}

impl Problem {
    /// How to put it right.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Problem::NotUtf8 => "save the file as UTF-8".into(),
            Problem::UnknownKey {
                suggestion: Some(s),
                ..
            } => format!("did you mean {s}? (the keys are listed in docs/agent.md)"),
            Problem::UnknownKey { known, .. } => {
                format!("the keys here are {}", and_list(known))
            }
            Problem::Secret { file_key: Some(k) } => format!(
                "put the secret alone in a file only the agent's user can read (chmod 600) and give \
                 that file's path as {k}"
            ),
            Problem::Secret { file_key: None } | Problem::PinValue => {
                "put the PIN alone in a file only the agent's user can read (chmod 600) and name it \
                 in the pkcs11: URI with pin-source=file:/PATH (or, for the context-specific PIN, \
                 give it as pkcs11_context_pin_file)"
                    .into()
            }
            Problem::NoProfiles => "add a [profiles.NAME] table (docs/agent.md has an example)".into(),
            Problem::MissingKeys { keys } => {
                let key = keys.iter().any(|k| k == "private_key");
                let certificate = keys.iter().any(|k| k == "certificate");
                if key && certificate {
                    "private_key may be left out when certificate is a pkcs11: URI (the key is \
                     found on its token), certificate when private_key is a PKCS#12 file that holds \
                     it"
                    .into()
                } else if key {
                    "private_key may be left out when certificate is a pkcs11: URI (the key is found \
                     on its token)"
                        .into()
                } else {
                    return None;
                }
            }
            Problem::Arn { kind, .. } => format!("write it as {}", kind.template()),
            Problem::UriForFile => "URIs go to certificate or private_key".into(),
            Problem::UnknownUser | Problem::UnknownGroup => {
                "give an existing name (getent passwd / getent group list them) or a number".into()
            }
            Problem::NeedsListen => {
                "add listen = [\"127.0.0.1:9911\"] to serve this profile over IMDS".into()
            }
            Problem::NobodyAllowed => {
                "an empty list allows no one: leave both lists out to allow the agent's own user, \
                 or list the callers"
                    .into()
            }
            Problem::ListenServesEveryone => {
                "drop the allow lists (the socket then serves the agent's own user, the listeners \
                 every local process), or drop listen"
                    .into()
            }
            _ => return None,
        })
    }
}

fn kind_name(kind: ArnKind) -> &'static str {
    match kind {
        ArnKind::TrustAnchor => "trust anchor",
        ArnKind::Profile => "profile",
        ArnKind::Role => "role",
    }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[impl AsRef<str>]) -> String {
    let items: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    match &items[..] {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The top-level keys.
const TOP_KEYS: &[&str] = &["socket", "socket_group", "metrics_listen", "profiles"];

/// The keys of a profile: the session flags' long names with `_`, then the agent's own.
const PROFILE_KEYS: &[&str] = &[
    "certificate",
    "private_key",
    "intermediates",
    "trust_anchor_arn",
    "profile_arn",
    "role_arn",
    "region",
    "endpoint",
    "session_duration",
    "role_session_name",
    "use_fips_endpoint",
    "no_verify_ssl",
    "connect_timeout",
    "timeout",
    "pkcs11_lib",
    "reuse_pin",
    "pkcs11_context_pin_file",
    "tpm_tcti",
    "tpm_timeout",
    "tpm_key_password_file",
    "no_tpm_key_password",
    "tpm_parent_password_file",
    "pkcs8_password_file",
    "debug",
    "allow_uids",
    "allow_gids",
    "listen",
    "hop_limit",
    "container_token_file",
];

/// A file as serde sees it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    socket: Option<PathBuf>,
    socket_group: Option<ids::IdOrName>,
    metrics_listen: Option<String>,
    profiles: Option<BTreeMap<String, RawProfile>>,
}

/// A `[profiles.NAME]` table as serde sees it. Integers are taken as `i64` and range-checked here,
/// so that the messages name the range and never the value.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    certificate: Option<String>,
    private_key: Option<String>,
    intermediates: Option<PathBuf>,
    trust_anchor_arn: Option<String>,
    profile_arn: Option<String>,
    role_arn: Option<String>,
    region: Option<String>,
    endpoint: Option<String>,
    session_duration: Option<i64>,
    role_session_name: Option<String>,
    use_fips_endpoint: Option<bool>,
    no_verify_ssl: Option<bool>,
    connect_timeout: Option<i64>,
    timeout: Option<i64>,
    pkcs11_lib: Option<PathBuf>,
    reuse_pin: Option<bool>,
    pkcs11_context_pin_file: Option<PathBuf>,
    tpm_tcti: Option<String>,
    tpm_timeout: Option<i64>,
    tpm_key_password_file: Option<PathBuf>,
    no_tpm_key_password: Option<bool>,
    tpm_parent_password_file: Option<PathBuf>,
    pkcs8_password_file: Option<PathBuf>,
    debug: Option<bool>,
    allow_uids: Option<Vec<ids::IdOrName>>,
    allow_gids: Option<Vec<ids::IdOrName>>,
    listen: Option<Vec<String>>,
    hop_limit: Option<i64>,
    container_token_file: Option<PathBuf>,
}

/// Reads and validates the configuration file `path`; `env` looks up environment variables (as
/// for the flags: `AWS_USE_FIPS_ENDPOINT`, `AWS_CA_BUNDLE`, …).
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<AgentConfig, Error> {
    let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let bytes = crate::userfile::read(path, crate::userfile::Kind::Config).map_err(|source| {
        Error::Read {
            path: shown.clone(),
            source,
        }
    })?;
    match std::str::from_utf8(&bytes) {
        Ok(text) => parse(text, &shown, env),
        Err(e) => Err(invalid(
            Location {
                path: shown,
                line: Some(line_of(&bytes[..e.valid_up_to()])),
                key: String::new(),
            },
            Problem::NotUtf8,
        )),
    }
}

/// Validates the configuration `text`, read from `path` (named in errors).
pub fn parse(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<AgentConfig, Error> {
    let doc = Doc::parse(text, path)?;
    doc.check_tree()?;
    let de = || toml::de::Deserializer::from(doc.root.clone());
    let raw = RawFile::deserialize(de()).map_err(|e| doc.serde_error(&e))?;
    // The same tree as plain values, for `same_as`: it deserialized into `RawFile`, so it does into
    // a table too.
    let mut tables = toml::Table::deserialize(de()).map_err(|e| doc.serde_error(&e))?;
    let mut raw_profiles = match tables.remove("profiles") {
        Some(toml::Value::Table(t)) => t,
        _ => toml::Table::new(),
    };
    let profiles = raw.profiles.unwrap_or_default();
    if profiles.is_empty() {
        let path: Vec<Seg> = if doc.root.get_ref().contains_key("profiles") {
            vec!["profiles".into()]
        } else {
            Vec::new()
        };
        return Err(doc.error(&path, Problem::NoProfiles));
    }
    let socket_group = raw
        .socket_group
        .map(|g| ids::group(&g).map_err(|p| doc.error(&["socket_group".into()], p)))
        .transpose()?;
    let metrics_listen = raw
        .metrics_listen
        .map(|a| {
            a.parse::<SocketAddr>()
                .map_err(|_| doc.error(&["metrics_listen".into()], Problem::Address))
        })
        .transpose()?;
    let mut out = BTreeMap::new();
    for (name, profile) in profiles {
        let table = match raw_profiles.remove(&name) {
            Some(toml::Value::Table(t)) => t,
            _ => toml::Table::new(),
        };
        let built = doc.profile(&name, profile, table, env)?;
        out.insert(name, built);
    }
    Ok(AgentConfig {
        path: path.to_path_buf(),
        socket: raw.socket,
        socket_group,
        metrics_listen,
        profiles: out,
    })
}

/// One step of a key path: a key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

impl From<&str> for Seg {
    fn from(key: &str) -> Seg {
        Seg::Key(key.to_string())
    }
}

/// `profiles.web.role_arn`, `profiles."web.prod".listen[1]`: TOML's own notation, each key escaped.
fn key_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                let bare = !k.is_empty()
                    && k.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if bare {
                    out.push_str(k);
                } else {
                    out.push_str(&format!("{:?}", text::escape(k).as_ref()));
                }
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// 1-based line of the end of `before`.
fn line_of(before: &[u8]) -> usize {
    1 + before.iter().filter(|&&b| b == b'\n').count()
}

/// The parsed text with its spans: the index from offsets to lines and key paths.
struct Doc<'a> {
    text: &'a str,
    path: &'a Path,
    root: Spanned<DeTable<'a>>,
}

impl<'a> Doc<'a> {
    fn parse(text: &'a str, path: &'a Path) -> Result<Doc<'a>, Error> {
        match DeTable::parse(text) {
            Ok(root) => Ok(Doc { text, path, root }),
            Err(e) => {
                let at = Location {
                    path: path.to_path_buf(),
                    line: e
                        .span()
                        .map(|s| line_of(&text.as_bytes()[..s.start.min(text.len())])),
                    key: String::new(),
                };
                Err(invalid(at, Problem::Syntax(e.message().to_string())))
            }
        }
    }

    fn line_at(&self, offset: usize) -> usize {
        line_of(&self.text.as_bytes()[..offset.min(self.text.len())])
    }

    /// The error `problem` at the key `path` (its line: the key's, or an array element's).
    fn error(&self, path: &[Seg], problem: Problem) -> Error {
        invalid(
            Location {
                path: self.path.to_path_buf(),
                line: self.span_of(path).map(|s| self.line_at(s.start)),
                key: key_path(path),
            },
            problem,
        )
    }

    /// Where the key at `path` is written (an array element: where the element is).
    fn span_of(&self, path: &[Seg]) -> Option<Range<usize>> {
        let mut table = self.root.get_ref();
        let mut value: Option<&Spanned<DeValue<'_>>> = None;
        let mut span = None;
        for seg in path {
            match seg {
                Seg::Key(k) => {
                    let t = match value {
                        None => table,
                        Some(v) => v.get_ref().as_table()?,
                    };
                    let (key, v) = t.get_key_value(k.as_str())?;
                    span = Some(key.span());
                    table = t;
                    value = Some(v);
                }
                Seg::Index(i) => {
                    let v = value?.get_ref().as_array()?.get(*i)?;
                    span = Some(v.span());
                    value = Some(v);
                }
            }
        }
        span
    }

    /// The key path of the innermost key or value written at `offset`.
    fn path_at(&self, offset: usize) -> Vec<Seg> {
        fn within(span: Range<usize>, offset: usize) -> bool {
            span.start <= offset && offset < span.end.max(span.start + 1)
        }
        fn in_table(t: &DeTable<'_>, offset: usize, out: &mut Vec<Seg>) -> bool {
            for (k, v) in t.iter() {
                out.push(Seg::Key(k.get_ref().to_string()));
                if within(k.span(), offset) || in_value(v, offset, out) {
                    return true;
                }
                out.pop();
            }
            false
        }
        fn in_value(v: &Spanned<DeValue<'_>>, offset: usize, out: &mut Vec<Seg>) -> bool {
            match v.get_ref() {
                DeValue::Table(t) if in_table(t, offset, out) => return true,
                DeValue::Array(a) => {
                    for (i, e) in a.iter().enumerate() {
                        out.push(Seg::Index(i));
                        if in_value(e, offset, out) {
                            return true;
                        }
                        out.pop();
                    }
                }
                _ => {}
            }
            within(v.span(), offset)
        }
        let mut out = Vec::new();
        in_table(self.root.get_ref(), offset, &mut out);
        out
    }

    /// A serde error, located by its span, its message stripped of every value it quotes.
    fn serde_error(&self, e: &toml::de::Error) -> Error {
        let offset = e.span().map_or(0, |s| s.start);
        let path = self.path_at(offset);
        let message = e.message();
        let problem = if message.starts_with("unknown field") {
            let key = match path.last() {
                Some(Seg::Key(k)) => k.as_str(),
                _ => "",
            };
            let known = if path.len() == 1 {
                TOP_KEYS
            } else {
                PROFILE_KEYS
            };
            Problem::UnknownKey {
                suggestion: nearest(key, known),
                known,
            }
        } else {
            Problem::Type(plain_types(&unquoted(message)))
        };
        invalid(
            Location {
                path: self.path.to_path_buf(),
                line: e.span().map(|s| self.line_at(s.start)),
                key: key_path(&path),
            },
            problem,
        )
    }

    /// What must not reach serde or anything later: a secret given as a value, a `pin-value`
    /// anywhere, a profile name that cannot be used in requests, logs and metric labels.
    fn check_tree(&self) -> Result<(), Error> {
        let Some((_, profiles)) = self.root.get_ref().get_key_value("profiles") else {
            return Ok(());
        };
        let Some(profiles) = profiles.get_ref().as_table() else {
            return Ok(()); // serde says it is not a table
        };
        for (name, profile) in profiles.iter() {
            let at = |key: Option<&str>| {
                let mut p = vec![Seg::from("profiles"), Seg::Key(name.get_ref().to_string())];
                p.extend(key.map(Seg::from));
                p
            };
            if !valid_profile_name(name.get_ref()) {
                return Err(self.error(&at(None), Problem::ProfileName));
            }
            let Some(table) = profile.get_ref().as_table() else {
                continue;
            };
            for (key, value) in table.iter() {
                let key = key.get_ref().as_ref();
                if let Some(file_key) = secret_key(key) {
                    return Err(self.error(&at(Some(key)), Problem::Secret { file_key }));
                }
                if holds_pin_value(value.get_ref()) {
                    return Err(self.error(&at(Some(key)), Problem::PinValue));
                }
            }
        }
        Ok(())
    }

    /// One profile: the flags' validation on its values, then who may read it and its listeners.
    fn profile(
        &self,
        name: &str,
        p: RawProfile,
        raw: toml::Table,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ProfileConfig, Error> {
        let at = |key: &str| vec![Seg::from("profiles"), Seg::from(name), Seg::from(key)];
        let err = |key: &str, problem| self.error(&at(key), problem);
        let table = vec![Seg::from("profiles"), Seg::from(name)];
        let range = |key: &str, v: Option<i64>, r: std::ops::RangeInclusive<i64>, text| {
            v.map(|v| {
                if r.contains(&v) {
                    Ok(v)
                } else {
                    Err(err(key, Problem::OutOfRange(text)))
                }
            })
            .transpose()
        };
        let as_u64 = |v: i64| u64::try_from(v).unwrap_or(0);
        let session_duration = range(
            "session_duration",
            p.session_duration,
            settings::DURATION_RANGE,
            "give 900 to 43200 seconds (and no more than the profile's and role's maximum)",
        )?;
        let connect_timeout = range(
            "connect_timeout",
            p.connect_timeout,
            1..=i64::MAX,
            "give at least 1 second",
        )?;
        let timeout = range("timeout", p.timeout, 1..=i64::MAX, "give at least 1 second")?;
        let tpm_timeout = range(
            "tpm_timeout",
            p.tpm_timeout,
            1..=3600,
            "give 1 to 3600 seconds",
        )?;
        let hop_limit = range(
            "hop_limit",
            p.hop_limit,
            1..=255,
            "give 1 to 255 (1 keeps answers on this host)",
        )?;

        let mut args = default_session_args();
        args.key.certificate = p.certificate;
        args.key.private_key = p.private_key;
        args.key.intermediates = p.intermediates;
        args.key.debug |= p.debug.unwrap_or(false);
        let d = &mut args.key.device;
        d.pkcs11_lib = p.pkcs11_lib;
        d.reuse_pin = p.reuse_pin.unwrap_or(false);
        d.pkcs11_context_pin_file = p.pkcs11_context_pin_file;
        d.tpm_tcti = p.tpm_tcti;
        d.tpm_timeout = tpm_timeout.map(as_u64);
        d.tpm_key_password_file = p.tpm_key_password_file;
        d.no_tpm_key_password = p.no_tpm_key_password.unwrap_or(false);
        d.tpm_parent_password_file = p.tpm_parent_password_file;
        d.pkcs8_password_file = p.pkcs8_password_file;
        args.trust_anchor_arn = p.trust_anchor_arn;
        args.profile_arn = p.profile_arn;
        args.role_arn = p.role_arn;
        args.region = p.region;
        args.endpoint = p.endpoint;
        if let Some(v) = session_duration {
            args.session_duration = v;
        }
        args.role_session_name = p.role_session_name;
        args.use_fips_endpoint = p.use_fips_endpoint.unwrap_or(false);
        args.no_verify_ssl = p.no_verify_ssl.unwrap_or(false);
        if let Some(v) = connect_timeout {
            args.connect_timeout = as_u64(v);
        }
        if let Some(v) = timeout {
            args.timeout = as_u64(v);
        }
        let fips_key = args.use_fips_endpoint;
        let session = settings::session("agent", args, env).map_err(|e| {
            let (key, problem) = settings_problem(e, fips_key);
            match key {
                Some(k) => err(k, problem),
                None => self.error(&table, problem),
            }
        })?;

        let resolve = |key: &str, list: Vec<ids::IdOrName>, users: bool| {
            list.iter()
                .enumerate()
                .map(|(i, v)| {
                    let found = if users { ids::user(v) } else { ids::group(v) };
                    found.map_err(|problem| {
                        let mut path = at(key);
                        path.push(Seg::Index(i));
                        self.error(&path, problem)
                    })
                })
                .collect::<Result<Vec<u32>, Error>>()
        };
        // Listeners answer any local process: allow lists could not restrict them, and a profile
        // that says who may read it must not also serve everyone.
        if p.listen.is_some() {
            for (key, given) in [
                ("allow_uids", p.allow_uids.is_some()),
                ("allow_gids", p.allow_gids.is_some()),
            ] {
                if given {
                    return Err(err(key, Problem::ListenServesEveryone));
                }
            }
        }
        let (allow_uids, allow_gids) = match (p.allow_uids, p.allow_gids) {
            (None, None) => (vec![ids::effective_uid()], Vec::new()),
            (uids, gids) => {
                // An empty list allows no one by itself: as good as a typo.
                for (key, list) in [("allow_uids", &uids), ("allow_gids", &gids)] {
                    if list.as_ref().is_some_and(Vec::is_empty) {
                        return Err(err(key, Problem::NobodyAllowed));
                    }
                }
                (
                    resolve("allow_uids", uids.unwrap_or_default(), true)?,
                    resolve("allow_gids", gids.unwrap_or_default(), false)?,
                )
            }
        };

        let serve = match p.listen {
            None => {
                for (key, given) in [
                    ("hop_limit", hop_limit.is_some()),
                    ("container_token_file", p.container_token_file.is_some()),
                ] {
                    if given {
                        return Err(err(key, Problem::NeedsListen));
                    }
                }
                None
            }
            Some(addrs) => {
                if addrs.is_empty() || addrs.len() > 32 {
                    return Err(err("listen", Problem::ListenCount(addrs.len())));
                }
                let listen = addrs
                    .iter()
                    .enumerate()
                    .map(|(i, a)| {
                        a.parse::<SocketAddr>().map_err(|_| {
                            let mut path = at("listen");
                            path.push(Seg::Index(i));
                            self.error(&path, Problem::Address)
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Some(ServeConfig {
                    listen,
                    hop_limit: hop_limit.and_then(|h| u8::try_from(h).ok()).unwrap_or(64),
                    container_token_file: p.container_token_file,
                })
            }
        };
        Ok(ProfileConfig {
            name: name.to_string(),
            session,
            allow_uids,
            allow_gids,
            serve,
            raw,
        })
    }
}

/// The session flags with nothing given: clap's own defaults (`--session-duration 3600`,
/// `--connect-timeout 5`, `--timeout 30`, `--debug` from `ROLESANYWHERE_DEBUG`), so that a key left
/// out means what the flag left out means.
fn default_session_args() -> SessionArgs {
    use clap::{Args as _, FromArgMatches as _};
    let command = SessionArgs::augment_args(clap::Command::new("agent"));
    command
        .try_get_matches_from(["agent"])
        .ok()
        .and_then(|m| SessionArgs::from_arg_matches(&m).ok())
        .expect("the session flags parse from an empty command line: none is required")
}

/// The key a settings error is about (`None`: the profile as a whole) and the problem, in terms of
/// keys rather than flags.
fn settings_problem(e: settings::Error, fips_key: bool) -> (Option<&'static str>, Problem) {
    use settings::Error as E;
    let key_of = |flag: &str| {
        PROFILE_KEYS
            .iter()
            .copied()
            .find(|k| flag.trim_start_matches('-').replace('-', "_") == *k)
    };
    match e {
        E::MissingFlags { missing, .. } => (
            None,
            Problem::MissingKeys {
                keys: missing
                    .iter()
                    .map(|f| f.trim_start_matches('-').replace('-', "_"))
                    .collect(),
            },
        ),
        E::Arn(arn::Error::Invalid { kind, problem, .. }) => {
            (key_of(kind.flag()), Problem::Arn { kind, problem })
        }
        E::Arn(arn::Error::Region(_)) => (Some("region"), Problem::Region),
        E::Arn(e @ arn::Error::RegionMismatch { .. }) => {
            (Some("profile_arn"), Problem::Regions(e.to_string()))
        }
        E::Arn(arn::Error::NoFipsEndpoint(region)) => (
            fips_key.then_some("use_fips_endpoint"),
            Problem::Regions(format!(
                "there is no FIPS endpoint for region {region}; drop use_fips_endpoint (and \
                 AWS_USE_FIPS_ENDPOINT) or set endpoint"
            )),
        ),
        E::Duration(_) => (
            Some("session_duration"),
            Problem::OutOfRange("give 900 to 43200 seconds"),
        ),
        E::Timeout(flag) => (key_of(flag), Problem::OutOfRange("give at least 1 second")),
        E::RoleSessionName(_) => (Some("role_session_name"), Problem::RoleSessionName),
        E::Endpoint(crate::session::Error::Endpoint { reason, .. }) => {
            (Some("endpoint"), Problem::Endpoint(reason))
        }
        E::UriForFile { flag, .. } => (key_of(flag), Problem::UriForFile),
        other => (None, Problem::Settings(other.to_string())),
    }
}

/// `[A-Za-z0-9_.-]{1,64}`: safe in socket requests, logs and Prometheus label values as it is.
fn valid_profile_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// For a key that would hold a secret itself: `Some(the key naming a file for it)` (`None` inside:
/// a PIN, which belongs in the URI's `pin-source`). `None` for a key that holds no secret, names a
/// file (`…_file`), or is one typo away from a key we have (an unknown key, with a "did you mean";
/// not two: `pkcs11_pin` is two from `pkcs11_lib`).
fn secret_key(key: &str) -> Option<Option<&'static str>> {
    let lower = key.to_ascii_lowercase().replace('-', "_");
    if PROFILE_KEYS.contains(&lower.as_str())
        || ["_file", "_path", "_source"]
            .iter()
            .any(|s| lower.ends_with(s))
        || PROFILE_KEYS.iter().any(|k| edit_distance(&lower, k) <= 1)
    {
        return None;
    }
    // Whole words (`pin`, not `spin`); the long ones also run together (`tpmkeypassword`).
    let words = ["pin", "password", "passphrase", "passwd", "secret", "token"];
    let secret = words
        .iter()
        .any(|w| lower.split('_').any(|part| part == *w) || (w.len() > 3 && lower.contains(w)));
    if !secret {
        return None;
    }
    let file_key = format!("{lower}_file");
    Some(match PROFILE_KEYS.iter().find(|k| **k == file_key) {
        Some(k) => Some(*k),
        None if lower.contains("context") => Some("pkcs11_context_pin_file"),
        None if lower.contains("parent") => Some("tpm_parent_password_file"),
        None if lower.contains("tpm") => Some("tpm_key_password_file"),
        None if lower.contains("pkcs8") || lower.contains("pkcs12") => Some("pkcs8_password_file"),
        None if lower.contains("token") => Some("container_token_file"),
        None => None,
    })
}

/// True when any string in `value` (nested tables and arrays included) holds a `pin-value`.
fn holds_pin_value(value: &DeValue<'_>) -> bool {
    match value {
        DeValue::String(s) => text::pin_value_at(s).is_some(),
        DeValue::Array(a) => a.iter().any(|v| holds_pin_value(v.get_ref())),
        DeValue::Table(t) => t.iter().any(|(k, v)| {
            text::pin_value_at(k.get_ref()).is_some() || holds_pin_value(v.get_ref())
        }),
        _ => false,
    }
}

/// `message` with every part serde quotes cut out: `"…"` (a string, with its escapes) and `` `…` ``
/// (a number, a character, a key). `invalid type: string "hunter2", expected a boolean` becomes
/// `invalid type: string, expected a boolean`.
fn unquoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
                trim_space(&mut out);
            }
            '`' => {
                for c in chars.by_ref() {
                    if c == '`' {
                        break;
                    }
                }
                trim_space(&mut out);
            }
            c => out.push(c),
        }
    }
    out
}

/// serde's and Rust's names of the expected types in TOML's words.
fn plain_types(message: &str) -> String {
    let mut out = message.to_string();
    for (rust, toml) in [
        (
            "expected struct RawProfile",
            "expected a table of profile keys",
        ),
        ("expected struct RawFile", "expected a table"),
        ("expected i64", "expected an integer"),
        ("expected path string", "expected a string (a path)"),
        ("expected a map", "expected a table"),
        ("expected a sequence", "expected an array"),
        ("expected a boolean", "expected true or false"),
        (" as i128,", ","),
    ] {
        out = out.replace(rust, toml);
    }
    out
}

fn trim_space(s: &mut String) {
    while s.ends_with(' ') {
        s.pop();
    }
}

/// The key in `known` nearest to `key` (at most two edits away), for "did you mean".
fn nearest(key: &str, known: &'static [&'static str]) -> Option<&'static str> {
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, _)| *d <= 2 && *d < key.len().max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance (keys are short).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(row[j + 1])
            };
            prev = cur;
        }
    }
    row[b.len()]
}
