//! RFC 7512 `pkcs11:` URIs: parsing, matching against library/slot/token information, and printing.
//!
//! Owns: the grammar (path attributes separated by `;`, query attributes by `&`, percent-decoding,
//! `x-` vendor attributes ignored, unknown or repeated attributes rejected naming the bad part), and
//! [`is_pkcs11_uri`], the one test of whether an argument is a URI at all.
//! Must not: expose `pin-value` anywhere but [`Pkcs11Uri::pin_value`]; the `Display` and `Debug`
//! forms and every error message leave it out. Errors show the URI through [`crate::text::arg`]
//! (cut where `pin-value` starts) and never quote a part of it that lies after that point.

use super::Error;
use super::ffi::{LibraryInfo, SlotInfo, TokenInfo};
use crate::secret::Secret;
use std::fmt::Write as _;
use std::path::PathBuf;

/// The object class a URI's `type=` attribute selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ObjectType {
    /// `type=public`.
    Public,
    /// `type=private`.
    Private,
    /// `type=cert`.
    Cert,
    /// `type=secret-key`.
    SecretKey,
    /// `type=data`.
    Data,
}

impl ObjectType {
    fn parse(v: &str) -> Option<ObjectType> {
        Some(match v {
            "public" => ObjectType::Public,
            "private" => ObjectType::Private,
            "cert" => ObjectType::Cert,
            "secret-key" => ObjectType::SecretKey,
            "data" => ObjectType::Data,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            ObjectType::Public => "public",
            ObjectType::Private => "private",
            ObjectType::Cert => "cert",
            ObjectType::SecretKey => "secret-key",
            ObjectType::Data => "data",
        }
    }
}

/// A parsed `pkcs11:` URI. Every attribute is optional; an absent one matches anything.
#[derive(Clone, Default)]
pub(crate) struct Pkcs11Uri {
    /// `token`: the token label.
    pub token: Option<String>,
    /// `manufacturer`: the token manufacturer.
    pub manufacturer: Option<String>,
    /// `serial`: the token serial number.
    pub serial: Option<String>,
    /// `model`: the token model.
    pub model: Option<String>,
    /// `library-manufacturer`.
    pub library_manufacturer: Option<String>,
    /// `library-description`.
    pub library_description: Option<String>,
    /// `library-version`: major and optional minor.
    pub library_version: Option<(u8, Option<u8>)>,
    /// `slot-description`.
    pub slot_description: Option<String>,
    /// `slot-manufacturer`.
    pub slot_manufacturer: Option<String>,
    /// `slot-id` (decimal).
    pub slot_id: Option<u64>,
    /// `object`: the object label (`CKA_LABEL`).
    pub object: Option<String>,
    /// `id`: the object id (`CKA_ID`), raw bytes.
    pub id: Option<Vec<u8>>,
    /// `type`: the object class.
    pub object_type: Option<ObjectType>,
    /// `pin-source`: a file holding the user PIN.
    pub pin_source: Option<PathBuf>,
    /// `module-name`: a module name without directory and suffix.
    pub module_name: Option<String>,
    /// `module-path`: a module file (or a directory holding `module-name`).
    pub module_path: Option<PathBuf>,
    pin_value: Option<Secret>,
}

impl std::fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pkcs11Uri({self})")
    }
}

/// Characters left as they are in printed values; everything else is percent-encoded.
fn keep_in_path(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:@!$'()*+,".contains(&b)
}

fn keep_in_query(b: u8) -> bool {
    keep_in_path(b) || b == b'/'
}

fn encode(out: &mut String, value: &[u8], keep: fn(u8) -> bool) {
    for &b in value {
        if keep(b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

const PREFIX: &str = "pkcs11:";

/// True when `s` is meant as a `pkcs11:` URI rather than a file path or a TPM handle: the scheme in
/// any case (RFC 3986 §3.1: schemes are case-insensitive), after any leading whitespace (a quoting
/// slip in a configuration file). Every place that tells URIs from paths asks this, so a URI is
/// never mistaken for a file name and printed whole.
pub fn is_pkcs11_uri(s: &str) -> bool {
    after_scheme(s).is_some()
}

/// The text after the scheme (see [`is_pkcs11_uri`]).
fn after_scheme(s: &str) -> Option<&str> {
    let s = s.trim_start();
    s.get(..PREFIX.len())
        .filter(|p| p.eq_ignore_ascii_case(PREFIX))
        .map(|_| &s[PREFIX.len()..])
}

/// `s` split at `sep`, each part with its byte offset in the URI (`s` starts at `base`).
fn with_offsets(s: &str, base: usize, sep: char) -> impl Iterator<Item = (usize, &str)> {
    let mut next = base;
    s.split(sep).map(move |part| {
        let at = next;
        next += part.len() + sep.len_utf8();
        (at, part)
    })
}

/// `pin-value` is accepted only as written in RFC 7512's query, `?pin-value=` or `&pin-value=` after
/// the `?`, in lower case and not percent-encoded. Anywhere else (in the path, after `&` with no
/// `?`, after a second `?`, inside another attribute, in another case or encoding) the PIN would
/// become a token label, an unknown attribute or a value that messages quote, so the URI is refused
/// here, before anything quotes it. `at` is where [`crate::text::pin_value_at`] found it.
fn check_pin_value_placement(raw: &str, at: usize) -> Result<(), Error> {
    let query = raw.find('?').map(|q| q + 1);
    let starts_attribute =
        query.is_some_and(|q| at == q || (at > q && raw.as_bytes().get(at - 1) == Some(&b'&')));
    if starts_attribute && raw[at..].starts_with("pin-value=") {
        return Ok(());
    }
    Err(bad_uri(
        raw,
        "pin-value must be a query attribute written exactly `?pin-value=PIN` (lower case, after \
         '?' or '&' in the query, not percent-encoded); nothing from pin-value on is shown"
            .into(),
    ))
}

/// The error for a malformed attribute after `pin-value`: it may be a piece of the PIN (an
/// unencoded `&` inside it), so it is described, not quoted.
fn after_pin_value(raw: &str) -> Error {
    bad_uri(
        raw,
        "the query after pin-value is malformed (not shown: it may hold part of the PIN); \
         percent-encode '%', '&' and '#' in the PIN as %25, %26 and %23, or use \
         pin-source=file:/PATH"
            .into(),
    )
}

fn pct_decode(value: &str, name: &str, raw: &str) -> Result<Vec<u8>, Error> {
    let b = value.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(v) => out.push(v),
                None => {
                    // Never quote a piece of the PIN.
                    let bad: String = if name == "pin-value" {
                        String::new()
                    } else {
                        format!(" {:?}", value[i..].chars().take(3).collect::<String>())
                    };
                    return Err(bad_uri(
                        raw,
                        format!(
                            "attribute {name:?} has a bad percent-encoding{bad} (expected %XX)"
                        ),
                    ));
                }
            }
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn split_attr<'a>(attr: &'a str, raw: &str) -> Result<(&'a str, &'a str), Error> {
    match attr.split_once('=') {
        Some(("", _)) => Err(bad_uri(
            raw,
            format!("{attr:?} has an empty attribute name"),
        )),
        Some(pair) => Ok(pair),
        None => Err(bad_uri(
            raw,
            format!("attribute {attr:?} has no value (expected name=value)"),
        )),
    }
}

fn bad_uri(raw: &str, reason: String) -> Error {
    Error::Uri {
        uri: crate::text::arg(raw),
        reason,
    }
}

impl Pkcs11Uri {
    /// Parses a `pkcs11:` URI (see [`is_pkcs11_uri`] for the scheme), rejecting malformed ones with
    /// the bad part named, unless that part comes after `pin-value`.
    pub(crate) fn parse(raw: &str) -> Result<Pkcs11Uri, Error> {
        let rest = after_scheme(raw)
            .ok_or_else(|| bad_uri(raw, "it must start with \"pkcs11:\"".into()))?;
        if rest.contains('#') {
            return Err(bad_uri(
                raw,
                "a fragment (#…) is not allowed; percent-encode '#' as %23".into(),
            ));
        }
        let pin_at = crate::text::pin_value_at(raw);
        if let Some(at) = pin_at {
            check_pin_value_placement(raw, at)?;
        }
        let rest_at = raw.len() - rest.len();
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let mut uri = Pkcs11Uri::default();
        let mut seen: Vec<String> = Vec::new();
        // Path attributes are separated by ';', query attributes by '&'; names are unique across both.
        let path_attrs = with_offsets(path, rest_at, ';').map(|(at, a)| (at, a, false));
        let query_attrs = query
            .into_iter()
            .flat_map(|q| with_offsets(q, rest_at + path.len() + 1, '&'))
            .map(|(at, a)| (at, a, true));
        for (at, attr, in_query) in path_attrs.chain(query_attrs) {
            if attr.is_empty() {
                continue;
            }
            uri.add_attribute(attr, in_query, &mut seen, raw)
                .map_err(|e| match pin_at {
                    // `pin-value` itself words its errors without the PIN; what follows it may
                    // be a piece of the PIN.
                    Some(p) if at > p => after_pin_value(raw),
                    _ => e,
                })?;
        }
        if uri.pin_value.is_some() && uri.pin_source.is_some() {
            return Err(bad_uri(
                raw,
                "pin-value and pin-source are both given; keep one".into(),
            ));
        }
        Ok(uri)
    }

    /// One `name=value` attribute; `seen` holds the names so far.
    fn add_attribute(
        &mut self,
        attr: &str,
        in_query: bool,
        seen: &mut Vec<String>,
        raw: &str,
    ) -> Result<(), Error> {
        let (name, value) = split_attr(attr, raw)?;
        if name.starts_with("x-") {
            return Ok(());
        }
        if seen.iter().any(|s| s == name) {
            return Err(bad_uri(raw, format!("attribute {name:?} appears twice")));
        }
        seen.push(name.to_string());
        let bytes = pct_decode(value, name, raw)?;
        if in_query {
            self.set_query_attr(name, bytes, raw)
        } else {
            self.set_path_attr(name, bytes, raw)
        }
    }

    fn set_path_attr(&mut self, name: &str, bytes: Vec<u8>, raw: &str) -> Result<(), Error> {
        let text = |bytes: Vec<u8>| {
            String::from_utf8(bytes)
                .map_err(|_| bad_uri(raw, format!("attribute {name:?} is not valid UTF-8")))
        };
        match name {
            "token" => self.token = Some(text(bytes)?),
            "manufacturer" => self.manufacturer = Some(text(bytes)?),
            "serial" => self.serial = Some(text(bytes)?),
            "model" => self.model = Some(text(bytes)?),
            "library-manufacturer" => self.library_manufacturer = Some(text(bytes)?),
            "library-description" => self.library_description = Some(text(bytes)?),
            "slot-description" => self.slot_description = Some(text(bytes)?),
            "slot-manufacturer" => self.slot_manufacturer = Some(text(bytes)?),
            "object" => self.object = Some(text(bytes)?),
            "id" => self.id = Some(bytes),
            "library-version" => {
                let v = text(bytes)?;
                let parse = |s: &str| s.parse::<u8>().ok().filter(|_| !s.starts_with('+'));
                let parsed = match v.split_once('.') {
                    Some((a, b)) => parse(a).zip(parse(b)).map(|(a, b)| (a, Some(b))),
                    None => parse(&v).map(|a| (a, None)),
                };
                self.library_version = Some(parsed.ok_or_else(|| {
                    bad_uri(
                        raw,
                        format!("library-version {v:?} is not MAJOR or MAJOR.MINOR (0..255)"),
                    )
                })?);
            }
            "slot-id" => {
                let v = text(bytes)?;
                self.slot_id = Some(
                    v.parse::<u64>()
                        .ok()
                        .filter(|_| v.bytes().all(|b| b.is_ascii_digit()))
                        .ok_or_else(|| {
                            bad_uri(raw, format!("slot-id {v:?} is not a decimal number"))
                        })?,
                );
            }
            "type" => {
                let v = text(bytes)?;
                self.object_type = Some(ObjectType::parse(&v).ok_or_else(|| {
                    bad_uri(
                        raw,
                        format!("type {v:?} is not one of public, private, cert, secret-key, data"),
                    )
                })?);
            }
            "pin-value" | "pin-source" | "module-name" | "module-path" => {
                return Err(bad_uri(
                    raw,
                    format!("{name} is a query attribute: write it after '?'"),
                ));
            }
            other => {
                return Err(bad_uri(
                    raw,
                    format!("unknown path attribute {other:?} (vendor attributes start with x-)"),
                ));
            }
        }
        Ok(())
    }

    fn set_query_attr(&mut self, name: &str, bytes: Vec<u8>, raw: &str) -> Result<(), Error> {
        match name {
            "pin-value" => {
                let pin = zeroize::Zeroizing::new(bytes);
                let text = std::str::from_utf8(&pin)
                    .map_err(|_| bad_uri(raw, "pin-value is not valid UTF-8".into()))?;
                self.pin_value = Some(Secret::new(text.to_string()));
            }
            "pin-source" => {
                let v = String::from_utf8(bytes)
                    .map_err(|_| bad_uri(raw, "pin-source is not valid UTF-8".into()))?;
                self.pin_source = Some(pin_source_path(&v).ok_or_else(|| {
                    bad_uri(
                        raw,
                        format!("pin-source {v:?} is not supported: use pin-source=file:/PATH"),
                    )
                })?);
            }
            "module-name" => {
                let v = String::from_utf8(bytes)
                    .map_err(|_| bad_uri(raw, "module-name is not valid UTF-8".into()))?;
                if v.is_empty() || v.contains('/') {
                    return Err(bad_uri(
                        raw,
                        format!(
                            "module-name {v:?} must be a bare name (use module-path for paths)"
                        ),
                    ));
                }
                self.module_name = Some(v);
            }
            "module-path" => {
                let v = String::from_utf8(bytes)
                    .map_err(|_| bad_uri(raw, "module-path is not valid UTF-8".into()))?;
                if v.is_empty() {
                    return Err(bad_uri(raw, "module-path is empty".into()));
                }
                self.module_path = Some(PathBuf::from(v));
            }
            other => {
                return Err(bad_uri(
                    raw,
                    format!("unknown query attribute {other:?} (vendor attributes start with x-)"),
                ));
            }
        }
        Ok(())
    }

    /// The `pin-value` attribute, if any. Never print it.
    pub(crate) fn pin_value(&self) -> Option<&Secret> {
        self.pin_value.as_ref()
    }

    /// This URI with the object attributes (`object`, `id`, `type`) removed: it names a token.
    pub(crate) fn token_part(&self) -> Pkcs11Uri {
        Pkcs11Uri {
            object: None,
            id: None,
            object_type: None,
            ..self.clone()
        }
    }

    /// Whether the library information matches the `library-*` attributes.
    pub(crate) fn matches_library(&self, info: &LibraryInfo) -> bool {
        let (major, minor) = info.version;
        eq_opt(&self.library_manufacturer, &info.manufacturer)
            && eq_opt(&self.library_description, &info.description)
            && self
                .library_version
                .is_none_or(|(ma, mi)| ma == major && mi.is_none_or(|m| m == minor))
    }

    /// Whether a slot matches the `slot-*` attributes.
    pub(crate) fn matches_slot(&self, id: u64, info: &SlotInfo) -> bool {
        self.slot_id.is_none_or(|s| s == id)
            && eq_opt(&self.slot_description, &info.description)
            && eq_opt(&self.slot_manufacturer, &info.manufacturer)
    }

    /// Whether a token matches the token attributes.
    pub(crate) fn matches_token(&self, info: &TokenInfo) -> bool {
        eq_opt(&self.token, &info.label)
            && eq_opt(&self.manufacturer, &info.manufacturer)
            && eq_opt(&self.serial, &info.serial)
            && eq_opt(&self.model, &info.model)
    }
}

/// PKCS#11 pads its text fields with spaces; cryptoki trims them, but be tolerant anyway.
fn eq_opt(want: &Option<String>, have: &str) -> bool {
    want.as_deref()
        .is_none_or(|w| w.trim_end() == have.trim_end())
}

/// `file:/p`, `file:///p`, `file://localhost/p` or a plain path; `None` for other schemes.
fn pin_source_path(v: &str) -> Option<PathBuf> {
    if let Some(rest) = v.strip_prefix("file:") {
        let p = if let Some(after) = rest.strip_prefix("//") {
            // An authority follows `//`: only an empty one or `localhost` names this machine.
            let slash = after.find('/')?;
            match &after[..slash] {
                "" | "localhost" => &after[slash..],
                _ => return None,
            }
        } else {
            rest
        };
        return (!p.is_empty()).then(|| PathBuf::from(p));
    }
    if v.is_empty() || v.starts_with('|') {
        return None;
    }
    match v.split_once(':') {
        // Something like `https:…` is another scheme, not a path.
        Some((scheme, _)) if !scheme.contains('/') && scheme.len() > 1 => None,
        _ => Some(PathBuf::from(v)),
    }
}

impl std::fmt::Display for Pkcs11Uri {
    /// The URI in a canonical order, percent-encoded, without `pin-value`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut path: Vec<String> = Vec::new();
        let mut text = |name: &str, v: &Option<String>| {
            if let Some(v) = v {
                let mut s = format!("{name}=");
                encode(&mut s, v.as_bytes(), keep_in_path);
                path.push(s);
            }
        };
        text("library-manufacturer", &self.library_manufacturer);
        text("library-description", &self.library_description);
        text("slot-manufacturer", &self.slot_manufacturer);
        text("slot-description", &self.slot_description);
        text("manufacturer", &self.manufacturer);
        text("model", &self.model);
        text("serial", &self.serial);
        text("token", &self.token);
        text("object", &self.object);
        if let Some((major, minor)) = self.library_version {
            path.push(match minor {
                Some(m) => format!("library-version={major}.{m}"),
                None => format!("library-version={major}"),
            });
        }
        if let Some(s) = self.slot_id {
            path.push(format!("slot-id={s}"));
        }
        if let Some(id) = &self.id {
            let mut s = String::from("id=");
            encode(&mut s, id, |_| false);
            path.push(s);
        }
        if let Some(t) = self.object_type {
            path.push(format!("type={}", t.as_str()));
        }
        let mut query: Vec<String> = Vec::new();
        let mut q = |name: &str, v: Option<&[u8]>| {
            if let Some(v) = v {
                let mut s = format!("{name}=");
                encode(&mut s, v, keep_in_query);
                query.push(s);
            }
        };
        q(
            "module-name",
            self.module_name.as_deref().map(str::as_bytes),
        );
        q(
            "module-path",
            self.module_path
                .as_deref()
                .map(|p| p.as_os_str().as_encoded_bytes()),
        );
        let pin_source = self
            .pin_source
            .as_deref()
            .map(|p| format!("file:{}", p.display()));
        q("pin-source", pin_source.as_deref().map(str::as_bytes));
        write!(f, "pkcs11:{}", path.join(";"))?;
        if !query.is_empty() {
            write!(f, "?{}", query.join("&"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(raw: &str) -> String {
        Pkcs11Uri::parse(raw).unwrap_err().to_string()
    }

    #[test]
    fn parses_every_path_and_query_attribute() {
        let u = Pkcs11Uri::parse(
            "pkcs11:token=My%20Token;manufacturer=SoftHSM%20project;serial=abc;model=SoftHSM%20v2;\
             library-manufacturer=lm;library-description=ld;library-version=2.6;\
             slot-description=sd;slot-manufacturer=sm;slot-id=42;object=ec-key;id=%01%ff;type=private\
             ?pin-source=file:/run/pin&module-name=softhsm2&module-path=/usr/lib/softhsm/libsofthsm2.so",
        )
        .unwrap();
        assert_eq!(u.token.as_deref(), Some("My Token"));
        assert_eq!(u.manufacturer.as_deref(), Some("SoftHSM project"));
        assert_eq!(u.serial.as_deref(), Some("abc"));
        assert_eq!(u.model.as_deref(), Some("SoftHSM v2"));
        assert_eq!(u.library_manufacturer.as_deref(), Some("lm"));
        assert_eq!(u.library_description.as_deref(), Some("ld"));
        assert_eq!(u.library_version, Some((2, Some(6))));
        assert_eq!(u.slot_description.as_deref(), Some("sd"));
        assert_eq!(u.slot_manufacturer.as_deref(), Some("sm"));
        assert_eq!(u.slot_id, Some(42));
        assert_eq!(u.object.as_deref(), Some("ec-key"));
        assert_eq!(u.id, Some(vec![0x01, 0xff]));
        assert_eq!(u.object_type, Some(ObjectType::Private));
        assert_eq!(u.pin_source, Some(PathBuf::from("/run/pin")));
        assert_eq!(u.module_name.as_deref(), Some("softhsm2"));
        assert_eq!(
            u.module_path,
            Some(PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"))
        );
        assert!(u.pin_value().is_none());
    }

    #[test]
    fn display_round_trips_and_never_shows_pin_value() {
        let raw = "pkcs11:token=a%3Bb%20c;object=k%C3%A9y;id=%00%41;type=cert?pin-value=s3cr%65t";
        let u = Pkcs11Uri::parse(raw).unwrap();
        assert_eq!(u.pin_value().map(Secret::expose), Some("s3cret"));
        let shown = u.to_string();
        assert_eq!(
            shown,
            "pkcs11:token=a%3Bb%20c;object=k%C3%A9y;id=%00%41;type=cert"
        );
        assert!(!format!("{u:?}").contains("s3cr"));
        let again = Pkcs11Uri::parse(&shown).unwrap();
        assert_eq!(again.token.as_deref(), Some("a;b c"));
        assert_eq!(again.object.as_deref(), Some("kéy"));
        assert_eq!(again.id, Some(vec![0, 0x41]));
    }

    #[test]
    fn vendor_attributes_are_ignored_and_empty_uri_is_valid() {
        let u = Pkcs11Uri::parse("pkcs11:x-foo=1;token=t?x-bar=2").unwrap();
        assert_eq!(u.token.as_deref(), Some("t"));
        assert_eq!(Pkcs11Uri::parse("pkcs11:").unwrap().to_string(), "pkcs11:");
    }

    #[test]
    fn malformed_uris_name_the_bad_part() {
        assert!(err("pkcs12:token=a").contains("must start with \"pkcs11:\""));
        assert!(err("pkcs11:token=a;token=b").contains("\"token\" appears twice"));
        assert!(err("pkcs11:colour=red").contains("unknown path attribute \"colour\""));
        assert!(err("pkcs11:token=a?colour=red").contains("unknown query attribute \"colour\""));
        assert!(err("pkcs11:id=%0g").contains("\"id\" has a bad percent-encoding \"%0g\""));
        assert!(err("pkcs11:object=%4").contains("bad percent-encoding"));
        assert!(err("pkcs11:token").contains("\"token\" has no value"));
        assert!(err("pkcs11:slot-id=0x1").contains("slot-id \"0x1\""));
        assert!(err("pkcs11:library-version=1.x").contains("library-version"));
        assert!(err("pkcs11:type=key").contains("type \"key\""));
        assert!(err("pkcs11:pin-value=1").contains("query attribute"));
        assert!(err("pkcs11:token=a#frag").contains("fragment"));
        assert!(err("pkcs11:token=%FF").contains("not valid UTF-8"));
        assert!(err("pkcs11:?module-name=a/b").contains("bare name"));
        assert!(err("pkcs11:?pin-source=|cat").contains("pin-source"));
        assert!(err("pkcs11:?pin-source=https://x/pin").contains("pin-source"));
        assert!(err("pkcs11:?pin-value=1&pin-source=file:/p").contains("keep one"));
    }

    #[test]
    fn errors_do_not_repeat_the_pin_value() {
        let e = err("pkcs11:token=a?pin-value=hunter2&colour=red");
        assert!(e.contains("pin-value=<redacted>"), "{e}");
        assert!(!e.contains("hunter2") && !e.contains("colour"), "{e}");
    }

    /// Issue 14 (3): a PIN behind a `pin-value` spelled or placed wrongly, or with an unencoded
    /// separator inside, is refused without any piece of it (the halves `Zq7Kx` and `Wm9Pv`).
    #[test]
    fn errors_never_quote_anything_from_a_misplaced_or_malformed_pin_value_on() {
        for raw in [
            "pkcs11:token=a;pin-value=Zq7KxWm9Pv",
            "pkcs11:token=a&pin-value=Zq7KxWm9Pv",
            "pkcs11:token=a?PIN-VALUE=Zq7KxWm9Pv",
            "pkcs11:token=a?Pin-Value=Zq7KxWm9Pv",
            "pkcs11:token=a?pin%2Dvalue=Zq7KxWm9Pv",
            "pkcs11:token=a?p%69n-value=Zq7KxWm9Pv",
            "pkcs11:token=a??pin-value=Zq7KxWm9Pv",
            "pkcs11:token=a?x-pin-value=Zq7KxWm9Pv",
            "pkcs11:object=pin-value=Zq7KxWm9Pv",
            "pkcs11:token=a?pin-value=Zq7Kx&Wm9Pv",
            "pkcs11:token=a?pin-value=Zq7Kx&Wm9Pv=1",
            "pkcs11:token=a?pin-value=Zq7Kx&=Wm9Pv",
            "pkcs11:token=a?pin-value=Zq7Kx#Wm9Pv",
            "pkcs11:token=a?pin-value=Zq7Kx%zzWm9Pv",
            "pkcs11:token=a?pin-value=Zq7Kx%",
            "pkcs11:token=a?pin-value=Zq7KxWm9Pv&pin-value=Zq7Kx",
            "pkcs11:token=a?pin-value=Zq7Kx%FFWm9Pv",
            "pkcs11:token=a?pin-value=Zq7KxWm9Pv&module-name=Zq7Kx/Wm9Pv",
        ] {
            let e = err(raw);
            assert!(
                !e.contains("Zq7Kx") && !e.contains("Wm9Pv") && !e.contains("%zz"),
                "{raw}: {e}"
            );
        }
    }

    #[test]
    fn scheme_case_and_leading_whitespace_do_not_matter() {
        for raw in [
            "PKCS11:token=a?pin-value=1",
            "Pkcs11:token=a?pin-value=1",
            " pkcs11:token=a?pin-value=1",
            "\tPKCS11:token=a?pin-value=1",
        ] {
            assert!(is_pkcs11_uri(raw), "{raw}");
            let u = Pkcs11Uri::parse(raw).unwrap();
            assert_eq!(u.token.as_deref(), Some("a"), "{raw}");
            assert_eq!(u.pin_value().map(Secret::expose), Some("1"), "{raw}");
            assert_eq!(u.to_string(), "pkcs11:token=a");
        }
        for not_uri in [
            "/k/pkcs11:x",
            "pkcs11",
            "./pkcs11:token=a",
            "handle:0x81000001",
            "",
        ] {
            assert!(!is_pkcs11_uri(not_uri), "{not_uri}");
        }
    }

    #[test]
    fn a_well_placed_pin_value_may_hold_any_encoded_character() {
        let u = Pkcs11Uri::parse("pkcs11:token=a?pin-value=1%262%233%254;5&module-name=m").unwrap();
        assert_eq!(u.pin_value().map(Secret::expose), Some("1&2#3%4;5"));
        assert_eq!(u.module_name.as_deref(), Some("m"));
    }

    #[test]
    fn pin_source_accepts_file_uris_and_plain_paths() {
        assert_eq!(pin_source_path("file:///a/b"), Some(PathBuf::from("/a/b")));
        assert_eq!(
            pin_source_path("file://localhost/a"),
            Some(PathBuf::from("/a"))
        );
        assert_eq!(pin_source_path("file:rel/p"), Some(PathBuf::from("rel/p")));
        assert_eq!(pin_source_path("/plain"), Some(PathBuf::from("/plain")));
        assert_eq!(pin_source_path("file://host/a"), None);
        assert_eq!(pin_source_path("file:"), None);
    }

    #[test]
    fn token_part_drops_object_attributes() {
        let u = Pkcs11Uri::parse("pkcs11:token=t;object=o;id=%01;type=cert").unwrap();
        assert_eq!(u.token_part().to_string(), "pkcs11:token=t");
    }
    /// `text` percent-decoded (where `%XX` is valid) and lower-cased: a PIN found however written.
    fn decoded_lower(text: &str) -> String {
        let b = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let hex = b
                .get(i + 1..i + 3)
                .filter(|_| b[i] == b'%')
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(v) => (out.push(v), i += 3),
                None => (out.push(b[i]), i += 1),
            };
        }
        String::from_utf8_lossy(&out).to_lowercase()
    }

    /// Issue 14, item 3: arguments the `pkcs11_uri` fuzz target found printing (some of) their PIN,
    /// one file each in `testdata/fuzz-regressions/pkcs11_uri/`. Each PIN holds the marker `Zq9Kw3`.
    #[test]
    fn fuzz_regressions_never_show_the_pin() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/fuzz-regressions/pkcs11_uri");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let raw = std::fs::read_to_string(&path).unwrap();
            let mut shown = vec![crate::text::arg(&raw)];
            match Pkcs11Uri::parse(&raw) {
                Err(e) => shown.push(format!("{}\n{e:?}", crate::cli::error_text(&e))),
                Ok(u) => {
                    shown.extend([u.to_string(), format!("{u:?}"), u.token_part().to_string()])
                }
            }
            for text in shown {
                assert!(
                    !decoded_lower(&text).contains("zq9kw3"),
                    "{}: the PIN shows in {text:?}",
                    path.display()
                );
            }
            checked += 1;
        }
        assert!(
            checked >= 10,
            "regression inputs missing from {}",
            dir.display()
        );
    }
}
