//! Attribute mapping: the principal tags IAM Roles Anywhere derives from the end-entity
//! certificate, under a profile's mapping rules (`PutAttributeMapping` / `DeleteAttributeMapping`).
//!
//! Pure: certificate names and rules in, tags out; no I/O. The rules, from the IAM Roles Anywhere
//! user guide (`../shared/emulator.md`):
//!
//! - Fields `x509Subject`, `x509Issuer`, `x509SAN`. Default rules: subject `*`, issuer `*`, SAN
//!   `DNS`, `URI`, `Name/*`.
//! - Subject and issuer specifiers name an attribute (`CN`, `OU`, …); `*` maps every recognised
//!   attribute. Tag keys are `x509Subject/<attr>` and `x509Issuer/<attr>`.
//! - SAN specifiers: `DNS` and `URI` map the first name of that type (`x509SAN/DNS`,
//!   `x509SAN/URI`); `Name` and `Name/*` map every recognised attribute of the first directory
//!   name (`x509SAN/Name/<attr>`), `Name/` its first recognised attribute, `Name/<attr>` that
//!   attribute. `*` has no defined meaning for SAN and maps nothing.
//! - Values STS would refuse as session tags are not mapped: characters outside
//!   `[\p{L}\p{Z}\p{N}_.:/=+\-@]` (STS's `tagValueType` pattern), values over 256 characters,
//!   and tags past the 50-tag limit; they are listed in [`PrincipalTags::dropped`].
//!
//! Choices where AWS documents nothing (see the emulator README): the recognised attributes are
//! `CN`, `OU`, `O`, `C`, `ST`, `L` and `UID`; an attribute that occurs more than once maps its
//! values joined with `/` in certificate order (`../shared/protocol.md`); specifiers are matched exactly (case-sensitive); STS's packed-size limit on
//! session tags is not modelled.

use std::fmt;
use std::sync::LazyLock;

use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate, X509Name};

/// Most session tags STS accepts.
pub const MAX_TAGS: usize = 50;
/// Longest session tag key, in characters.
pub const MAX_KEY_CHARS: usize = 128;
/// Longest session tag value, in characters.
pub const MAX_VALUE_CHARS: usize = 256;
/// Longest specifier the `MappingRule` shape allows.
pub const MAX_SPECIFIER_CHARS: usize = 60;

/// STS's `tagValueType` pattern (`tagKeyType` is the same with at least one character).
static TAG_TEXT: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$")
        .expect("the STS tag pattern is a valid regex")
});

/// Whether `s` fits STS's (and IAM's) tag pattern `[\p{L}\p{Z}\p{N}_.:/=+\-@]*` (length aside).
pub fn is_tag_text(s: &str) -> bool {
    TAG_TEXT.is_match(s)
}

/// The attributes `*` maps, by short name and OID, in the order tags are produced.
const RECOGNISED: &[(&str, &str)] = &[
    ("CN", "2.5.4.3"),
    ("OU", "2.5.4.11"),
    ("O", "2.5.4.10"),
    ("C", "2.5.4.6"),
    ("ST", "2.5.4.8"),
    ("L", "2.5.4.7"),
    ("UID", "0.9.2342.19200300.100.1.1"),
];

/// Why mapping input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A specifier longer than the API allows.
    #[error("specifier {specifier:?} is longer than {MAX_SPECIFIER_CHARS} characters")]
    SpecifierTooLong {
        /// The specifier.
        specifier: String,
    },
    /// An unknown `certificateField`.
    #[error("certificate field {0:?} is not one of x509Subject, x509Issuer, x509SAN")]
    CertificateField(String),
    /// The certificate does not parse.
    #[error("certificate does not parse: {0}")]
    Certificate(String),
    /// The subject alternative name extension does not parse (or appears twice).
    #[error("certificate's subject alternative names do not parse: {0}")]
    SubjectAltName(String),
}

/// A certificate field that mapping rules apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CertificateField {
    /// `x509Subject`.
    Subject,
    /// `x509Issuer`.
    Issuer,
    /// `x509SAN`.
    San,
}

impl CertificateField {
    /// The API name, also the tag key prefix.
    pub fn name(self) -> &'static str {
        match self {
            CertificateField::Subject => "x509Subject",
            CertificateField::Issuer => "x509Issuer",
            CertificateField::San => "x509SAN",
        }
    }

    /// Parses the API name.
    pub fn parse(name: &str) -> Result<Self, Error> {
        match name {
            "x509Subject" => Ok(CertificateField::Subject),
            "x509Issuer" => Ok(CertificateField::Issuer),
            "x509SAN" => Ok(CertificateField::San),
            other => Err(Error::CertificateField(other.to_string())),
        }
    }
}

/// A profile's mapping rules: the specifiers per certificate field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeMappings {
    subject: Vec<String>,
    issuer: Vec<String>,
    san: Vec<String>,
}

impl Default for AttributeMappings {
    /// The rules a new profile gets.
    fn default() -> Self {
        AttributeMappings {
            subject: vec!["*".into()],
            issuer: vec!["*".into()],
            san: vec!["DNS".into(), "URI".into(), "Name/*".into()],
        }
    }
}

impl AttributeMappings {
    /// No rules at all: no principal tags.
    pub fn empty() -> Self {
        AttributeMappings {
            subject: Vec::new(),
            issuer: Vec::new(),
            san: Vec::new(),
        }
    }

    fn field_mut(&mut self, field: CertificateField) -> &mut Vec<String> {
        match field {
            CertificateField::Subject => &mut self.subject,
            CertificateField::Issuer => &mut self.issuer,
            CertificateField::San => &mut self.san,
        }
    }

    /// The specifiers of one field.
    pub fn specifiers(&self, field: CertificateField) -> &[String] {
        match field {
            CertificateField::Subject => &self.subject,
            CertificateField::Issuer => &self.issuer,
            CertificateField::San => &self.san,
        }
    }

    /// `PutAttributeMapping`: replaces the field's specifiers (duplicates removed, order kept).
    pub fn put(&mut self, field: CertificateField, specifiers: &[String]) -> Result<(), Error> {
        if let Some(s) = specifiers
            .iter()
            .find(|s| s.chars().count() > MAX_SPECIFIER_CHARS)
        {
            return Err(Error::SpecifierTooLong {
                specifier: s.clone(),
            });
        }
        let rules = self.field_mut(field);
        rules.clear();
        for s in specifiers {
            if !rules.contains(s) {
                rules.push(s.clone());
            }
        }
        Ok(())
    }

    /// `DeleteAttributeMapping`: removes the given specifiers, or all of the field's when `None`.
    pub fn delete(&mut self, field: CertificateField, specifiers: Option<&[String]>) {
        let rules = self.field_mut(field);
        match specifiers {
            None => rules.clear(),
            Some(remove) => rules.retain(|s| !remove.contains(s)),
        }
    }

    /// The non-empty fields in the order the service lists them (issuer, SAN, subject).
    pub fn entries(&self) -> Vec<(CertificateField, &[String])> {
        [
            CertificateField::Issuer,
            CertificateField::San,
            CertificateField::Subject,
        ]
        .into_iter()
        .map(|f| (f, self.specifiers(f)))
        .filter(|(_, s)| !s.is_empty())
        .collect()
    }
}

/// One attribute of a distinguished name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The attribute type, dotted OID.
    pub oid: String,
    /// The value, or `None` when it is not a string type this code decodes.
    pub value: Option<String>,
}

/// One subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SanEntry {
    /// `dNSName`.
    Dns(String),
    /// `uniformResourceIdentifier`.
    Uri(String),
    /// `directoryName`, its attributes in order.
    DirectoryName(Vec<Attribute>),
    /// Any other type (email, IP, other name, …): never mapped.
    Other,
}

/// The names of a certificate that mapping reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertificateNames {
    /// Subject attributes in certificate order.
    pub subject: Vec<Attribute>,
    /// Issuer attributes in certificate order.
    pub issuer: Vec<Attribute>,
    /// Subject alternative names in certificate order.
    pub san: Vec<SanEntry>,
}

fn attributes(name: &X509Name<'_>) -> Vec<Attribute> {
    name.iter_attributes()
        .map(|a| Attribute {
            oid: a.attr_type().to_id_string(),
            value: decode_string(a.attr_value().tag(), a.attr_value().data),
        })
        .collect()
}

/// Decodes the directory string types certificates use.
fn decode_string(tag: Tag, data: &[u8]) -> Option<String> {
    match tag {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::NumericString
        | Tag::VisibleString => String::from_utf8(data.to_vec()).ok(),
        Tag::BmpString => {
            if !data.len().is_multiple_of(2) {
                return None;
            }
            let units = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
        }
        Tag::UniversalString => {
            if !data.len().is_multiple_of(4) {
                return None;
            }
            data.chunks_exact(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect()
        }
        // TeletexString is in practice Latin-1.
        Tag::T61String => Some(data.iter().map(|&b| char::from(b)).collect()),
        _ => None,
    }
}

impl CertificateNames {
    /// Reads the subject, issuer and subject alternative names of a parsed certificate.
    pub fn from_certificate(cert: &X509Certificate<'_>) -> Result<Self, Error> {
        let san = match cert.subject_alternative_name() {
            Ok(None) => Vec::new(),
            Ok(Some(ext)) => ext
                .value
                .general_names
                .iter()
                .map(|n| match n {
                    GeneralName::DNSName(s) => SanEntry::Dns(s.to_string()),
                    GeneralName::URI(s) => SanEntry::Uri(s.to_string()),
                    GeneralName::DirectoryName(name) => SanEntry::DirectoryName(attributes(name)),
                    _ => SanEntry::Other,
                })
                .collect(),
            Err(e) => return Err(Error::SubjectAltName(e.to_string())),
        };
        Ok(CertificateNames {
            subject: attributes(cert.subject()),
            issuer: attributes(cert.issuer()),
            san,
        })
    }

    /// Parses a DER certificate and reads its names.
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|e| Error::Certificate(e.to_string()))?;
        Self::from_certificate(&cert)
    }
}

/// Why a tag was not mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropReason {
    /// The value has characters STS refuses in a session tag.
    Characters,
    /// The value is longer than [`MAX_VALUE_CHARS`].
    TooLong {
        /// Its length in characters.
        chars: usize,
    },
    /// The attribute is not a string type this code decodes.
    NotAString,
    /// The session tag limit ([`MAX_TAGS`]) was already reached.
    TooManyTags {
        /// The limit.
        limit: usize,
    },
}

/// A tag the mapping produced but STS would refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// The certificate field.
    pub field: CertificateField,
    /// The tag key, e.g. `x509Subject/CN`.
    pub key: String,
    /// The value, when decodable (unescaped certificate text: print it with `{:?}`).
    pub value: Option<String>,
    /// Why it was dropped.
    pub reason: DropReason,
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.key)?;
        if let Some(v) = &self.value {
            write!(f, " = {v:?}")?;
        }
        match self.reason {
            DropReason::Characters => write!(
                f,
                " has characters STS refuses in a session tag (allowed: letters, digits, spaces, _ . : / = + - @)"
            ),
            DropReason::TooLong { chars } => write!(
                f,
                " is {chars} characters long (a session tag value holds at most {MAX_VALUE_CHARS})"
            ),
            DropReason::NotAString => write!(f, " is not a decodable string"),
            DropReason::TooManyTags { limit } => {
                write!(f, " is past the {limit}-tag session limit")
            }
        }
    }
}

/// The outcome of mapping: the session's principal tags and the attributes STS would refuse.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrincipalTags {
    /// `(key, value)` in production order (subject, issuer, SAN; rules in order); keys unique.
    pub tags: Vec<(String, String)>,
    /// Mapped attributes left out, in production order.
    pub dropped: Vec<Dropped>,
}

impl PrincipalTags {
    /// The value of a tag by key (e.g. `x509Subject/CN`).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The refusal the real service gives instead of dropping, for a strict mode: AWS answers
    /// `AccessDeniedException` with this text (as reported by users; the exact list format is not
    /// documented). `None` when nothing was dropped.
    pub fn unmappable_message(&self, role_arn: &str) -> Option<String> {
        if self.dropped.is_empty() {
            return None;
        }
        let list = |field: CertificateField| {
            let prefix = format!("{}/", field.name());
            let names: Vec<&str> = self
                .dropped
                .iter()
                .filter(|d| d.field == field)
                .map(|d| d.key.strip_prefix(&prefix).unwrap_or(&d.key))
                .collect();
            format!("[ {} ]", names.join(", "))
        };
        Some(format!(
            "Unable to assume role for {role_arn}. Some attributes failed to be mapped into session tags. Issuer: {}; Subject: {}; SAN: {}",
            list(CertificateField::Issuer),
            list(CertificateField::Subject),
            list(CertificateField::San)
        ))
    }
}

fn short_name(oid: &str) -> Option<&'static str> {
    RECOGNISED
        .iter()
        .find(|(_, o)| *o == oid)
        .map(|(name, _)| *name)
}

fn oid_of(name: &str) -> Option<&'static str> {
    RECOGNISED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, oid)| *oid)
}

/// `(attribute name, value)` pairs a distinguished-name specifier selects: `*` every recognised
/// attribute (in [`RECOGNISED`] order), a name that attribute. An attribute that occurs more than
/// once gives its values joined with `/` in certificate order (`OU=ops/eu`); `None` when one of
/// them is not a string.
fn select_dn(attrs: &[Attribute], specifier: &str) -> Vec<(&'static str, Option<String>)> {
    let joined = |oid: &str| -> Option<Option<String>> {
        let values: Vec<Option<&str>> = attrs
            .iter()
            .filter(|a| a.oid == oid)
            .map(|a| a.value.as_deref())
            .collect();
        if values.is_empty() {
            return None;
        }
        Some(
            values
                .into_iter()
                .collect::<Option<Vec<&str>>>()
                .map(|v| v.join("/")),
        )
    };
    if specifier == "*" {
        RECOGNISED
            .iter()
            .filter_map(|(name, oid)| joined(oid).map(|v| (*name, v)))
            .collect()
    } else {
        oid_of(specifier)
            .and_then(|oid| joined(oid).map(|v| (short_name(oid).unwrap_or("?"), v)))
            .into_iter()
            .collect()
    }
}

/// Applies `rules` to `names`.
pub fn map(names: &CertificateNames, rules: &AttributeMappings) -> PrincipalTags {
    map_limited(names, rules, MAX_TAGS)
}

/// [`map`] with another tag limit: the recognised attributes cannot reach STS's 50, so tests
/// exercise the limit through this.
fn map_limited(
    names: &CertificateNames,
    rules: &AttributeMappings,
    max_tags: usize,
) -> PrincipalTags {
    // (field, key, value or None when undecodable)
    let mut produced: Vec<(CertificateField, String, Option<String>)> = Vec::new();
    let mut push = |field: CertificateField, key: String, a: Option<&str>| {
        if !produced.iter().any(|(_, k, _)| *k == key) {
            produced.push((field, key, a.map(str::to_string)));
        }
    };
    for (field, attrs) in [
        (CertificateField::Subject, &names.subject),
        (CertificateField::Issuer, &names.issuer),
    ] {
        for spec in rules.specifiers(field) {
            for (name, value) in select_dn(attrs, spec) {
                push(field, format!("{}/{name}", field.name()), value.as_deref());
            }
        }
    }
    let directory = names.san.iter().find_map(|s| match s {
        SanEntry::DirectoryName(attrs) => Some(attrs.as_slice()),
        _ => None,
    });
    for spec in rules.specifiers(CertificateField::San) {
        let field = CertificateField::San;
        match spec.as_str() {
            "DNS" => {
                if let Some(v) = names.san.iter().find_map(|s| match s {
                    SanEntry::Dns(v) => Some(v.as_str()),
                    _ => None,
                }) {
                    push(field, "x509SAN/DNS".into(), Some(v));
                }
            }
            "URI" => {
                if let Some(v) = names.san.iter().find_map(|s| match s {
                    SanEntry::Uri(v) => Some(v.as_str()),
                    _ => None,
                }) {
                    push(field, "x509SAN/URI".into(), Some(v));
                }
            }
            "Name" | "Name/*" => {
                for (name, value) in select_dn(directory.unwrap_or(&[]), "*") {
                    push(field, format!("x509SAN/Name/{name}"), value.as_deref());
                }
            }
            "Name/" => {
                let first = directory
                    .unwrap_or(&[])
                    .iter()
                    .find_map(|a| short_name(&a.oid).map(|n| (n, a)));
                if let Some((name, a)) = first {
                    push(field, format!("x509SAN/Name/{name}"), a.value.as_deref());
                }
            }
            other => {
                if let Some(attr) = other.strip_prefix("Name/").filter(|a| *a != "*") {
                    for (name, value) in select_dn(directory.unwrap_or(&[]), attr) {
                        push(field, format!("x509SAN/Name/{name}"), value.as_deref());
                    }
                }
            }
        }
    }

    // Keys need no check: they are built from the fixed names above (at most 16 characters, all
    // in the STS pattern; a unit test holds them to MAX_KEY_CHARS and the pattern).
    let mut out = PrincipalTags::default();
    for (field, key, value) in produced {
        let reason = match &value {
            None => Some(DropReason::NotAString),
            Some(v) if !TAG_TEXT.is_match(v) => Some(DropReason::Characters),
            Some(v) if v.chars().count() > MAX_VALUE_CHARS => Some(DropReason::TooLong {
                chars: v.chars().count(),
            }),
            Some(_) if out.tags.len() >= max_tags => {
                Some(DropReason::TooManyTags { limit: max_tags })
            }
            Some(_) => None,
        };
        match (reason, value) {
            (None, Some(v)) => out.tags.push((key, v)),
            (Some(reason), value) => out.dropped.push(Dropped {
                field,
                key,
                value,
                reason,
            }),
            (None, None) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests;
