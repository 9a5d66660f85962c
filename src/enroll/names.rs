//! `--subject` and `--san` syntax, as x509-cert's X.501 `Name` and RFC 5280 `GeneralName`.
//!
//! Pure; no I/O. The syntax is read here, not by x509-cert's `Name::from_str`, because each flag's
//! error must say what is wrong (unknown attribute, length over the RFC 5280 bound, wrong string
//! type) and the string type of each attribute is ours to choose; the values built are x509-cert's,
//! and `der` encodes them (sorting the SET OF of a multi-valued RDN). The subject is an RFC 4514 string: RDNs separated by `,`, most specific first
//! (`CN=host1,O=Example` encodes as `O=Example` then `CN=host1`), `+` joins the attributes of one
//! multi-valued RDN, `\` escapes a special character or starts a `\XX` hex byte.

use der::asn1::{Any, Ia5String, ObjectIdentifier, OctetString};
use der::{Decode as _, Encode as _, Tag};
use std::net::IpAddr;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use super::Error;

/// Attribute types users may name, with their RFC 5280 upper bound (characters) and string type.
const ATTRIBUTES: &[(&str, &str, StringKind, usize)] = &[
    ("CN", "2.5.4.3", StringKind::Utf8, 64),
    ("C", "2.5.4.6", StringKind::Country, 64),
    ("L", "2.5.4.7", StringKind::Utf8, 128),
    ("ST", "2.5.4.8", StringKind::Utf8, 128),
    ("STREET", "2.5.4.9", StringKind::Utf8, 128),
    ("O", "2.5.4.10", StringKind::Utf8, 64),
    ("OU", "2.5.4.11", StringKind::Utf8, 64),
    ("SERIALNUMBER", "2.5.4.5", StringKind::Printable, 64),
    ("TITLE", "2.5.4.12", StringKind::Utf8, 64),
    ("DC", "0.9.2342.19200300.100.1.25", StringKind::Ia5, 63),
    ("UID", "0.9.2342.19200300.100.1.1", StringKind::Utf8, 256),
    ("EMAILADDRESS", "1.2.840.113549.1.9.1", StringKind::Ia5, 255),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StringKind {
    Utf8,
    Printable,
    Ia5,
    /// Two-letter ISO 3166 code, PrintableString.
    Country,
}

/// A parsed subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    name: Name,
}

impl Subject {
    /// The X.501 `Name` (`SEQUENCE OF RelativeDistinguishedName`).
    pub fn name(&self) -> &Name {
        &self.name
    }
}

/// Parses an RFC 4514 distinguished name.
pub fn parse_subject(input: &str) -> Result<Subject, Error> {
    let err = |reason: String| Error::Subject {
        input: input.to_string(),
        reason,
    };
    if input.trim().is_empty() {
        return Err(err(
            "the subject is empty; give at least a common name, e.g. CN=host1".into(),
        ));
    }
    let mut rdns = Vec::new();
    for rdn_text in split_unescaped(input, b',') {
        let mut avas = Vec::new();
        for ava in split_unescaped(rdn_text, b'+') {
            avas.push(parse_ava(ava).map_err(&err)?);
        }
        // The SET OF is sorted by DER encoding here.
        let rdn = RelativeDistinguishedName::try_from(avas)
            .map_err(|e| err(format!("cannot encode a multi-valued RDN: {e}")))?;
        rdns.push(rdn);
    }
    // RFC 4514 writes the last RDN of the sequence first.
    let mut sequence = RdnSequence::default();
    for rdn in rdns.into_iter().rev() {
        sequence.push(rdn);
    }
    // x509-cert builds a `Name` only from its own string syntax or from DER; ours goes through DER.
    let name = sequence
        .to_der()
        .and_then(|der| Name::from_der(&der))
        .map_err(|e| err(format!("cannot encode the name: {e}")))?;
    Ok(Subject { name })
}

/// Splits on `sep` where it is not escaped by a backslash.
fn split_unescaped(s: &str, sep: u8) -> Vec<&str> {
    let b = s.as_bytes();
    let mut parts = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < b.len() {
        if b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == sep {
            parts.push(&s[start..i]);
            start = i + 1;
        }
        i += 1;
    }
    parts.push(&s[start.min(s.len())..]);
    parts
}

/// One `type=value` as an `AttributeTypeAndValue`.
fn parse_ava(text: &str) -> Result<AttributeTypeAndValue, String> {
    let (ty, raw) = text
        .split_once('=')
        .ok_or_else(|| format!("{:?} is not TYPE=VALUE", text.trim()))?;
    let ty = ty.trim();
    let (oid, kind, max) = attribute(ty)?;
    let value = unescape(raw)?;
    if value.is_empty() {
        return Err(format!("{ty} has an empty value"));
    }
    let chars = value.chars().count();
    if chars > max {
        return Err(format!(
            "{ty} is {chars} characters long; at most {max} are allowed (RFC 5280)"
        ));
    }
    let (tag, ok) = match kind {
        StringKind::Utf8 => (Tag::Utf8String, true),
        StringKind::Ia5 => (Tag::Ia5String, value.is_ascii()),
        StringKind::Printable => (Tag::PrintableString, value.chars().all(is_printable)),
        StringKind::Country => (
            Tag::PrintableString,
            chars == 2 && value.chars().all(|c| c.is_ascii_alphabetic()),
        ),
    };
    if !ok {
        return Err(match kind {
            StringKind::Country => format!("C must be a two-letter country code, got {value:?}"),
            StringKind::Ia5 => format!("{ty} must be ASCII"),
            _ => format!("{ty} may only hold letters, digits, spaces and '()+,-./:=?"),
        });
    }
    let value = Any::new(tag, value.as_bytes()).map_err(|e| format!("{ty}: {e}"))?;
    Ok(AttributeTypeAndValue { oid, value })
}

fn attribute(ty: &str) -> Result<(ObjectIdentifier, StringKind, usize), String> {
    if ty.starts_with(|c: char| c.is_ascii_digit()) {
        let oid = ObjectIdentifier::new(ty)
            .map_err(|_| format!("attribute type {ty:?} is not a valid OID"))?;
        if let Some(&(_, _, kind, max)) =
            ATTRIBUTES.iter().find(|a| a.1 == oid.to_string().as_str())
        {
            return Ok((oid, kind, max));
        }
        return Ok((oid, StringKind::Utf8, 1024));
    }
    let upper = ty.to_ascii_uppercase();
    let upper = match upper.as_str() {
        "E" => "EMAILADDRESS",
        "S" => "ST",
        other => other,
    };
    ATTRIBUTES
        .iter()
        .find(|a| a.0 == upper)
        .map(|&(_, oid, kind, max)| {
            let oid = ObjectIdentifier::new(oid).map_err(|e| e.to_string())?;
            Ok((oid, kind, max))
        })
        .unwrap_or_else(|| {
            Err(format!(
                "unknown attribute type {ty:?} (known: {}; or a dotted OID)",
                ATTRIBUTES
                    .iter()
                    .map(|a| a.0)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

fn is_printable(c: char) -> bool {
    c.is_ascii_alphanumeric() || " '()+,-./:=?".contains(c)
}

/// Removes RFC 4514 escapes and unescaped surrounding spaces.
fn unescape(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim_start_matches(' ');
    if trimmed.starts_with('#') {
        return Err(
            "hex-encoded BER values (#…) are not supported; write the value as text".into(),
        );
    }
    let b = trimmed.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    // Length of `out` that ends with an escaped character: escaped trailing spaces are kept.
    let mut keep = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match (b.get(i + 1), b.get(i + 2)) {
            (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                let hex = [*h, *l];
                let s = std::str::from_utf8(&hex).map_err(|e| e.to_string())?;
                out.push(u8::from_str_radix(s, 16).map_err(|e| e.to_string())?);
                i += 3;
            }
            (Some(c), _) => {
                out.push(*c);
                i += 2;
            }
            (None, _) => return Err("the value ends with a lone backslash".into()),
        }
        keep = out.len();
    }
    while out.len() > keep && out.last() == Some(&b' ') {
        out.pop();
    }
    String::from_utf8(out).map_err(|_| "a \\XX escape sequence is not valid UTF-8".into())
}

/// A subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum San {
    /// `dns:` → dNSName.
    Dns(String),
    /// `uri:` → uniformResourceIdentifier.
    Uri(String),
    /// `ip:` → iPAddress.
    Ip(IpAddr),
    /// `email:` → rfc822Name.
    Email(String),
}

/// Parses `dns:NAME`, `uri:URI`, `ip:ADDRESS` or `email:ADDRESS` (kind case-insensitive).
pub fn parse_san(input: &str) -> Result<San, Error> {
    let err = |reason: &str| Error::San {
        input: input.to_string(),
        reason: reason.to_string(),
    };
    let (kind, value) = input
        .split_once(':')
        .ok_or_else(|| err("missing KIND: prefix"))?;
    if value.is_empty() {
        return Err(err("empty value"));
    }
    let ascii_token = !value.is_ascii() || value.contains(char::is_whitespace);
    match kind.to_ascii_lowercase().as_str() {
        "dns" => {
            if ascii_token || value.starts_with('.') || value.contains("..") {
                return Err(err(
                    "not a DNS name (ASCII, no spaces; use punycode for IDNs)",
                ));
            }
            Ok(San::Dns(value.to_string()))
        }
        "uri" => {
            let scheme_ok = value.split_once(':').is_some_and(|(s, _)| {
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            });
            if ascii_token || !scheme_ok {
                return Err(err("not an absolute URI (SCHEME:…, ASCII, no spaces)"));
            }
            Ok(San::Uri(value.to_string()))
        }
        "ip" => value
            .parse::<IpAddr>()
            .map(San::Ip)
            .map_err(|_| err("not an IPv4 or IPv6 address")),
        "email" => {
            if ascii_token || !value.contains('@') {
                return Err(err("not an email address (LOCAL@DOMAIN, ASCII)"));
            }
            Ok(San::Email(value.to_string()))
        }
        _ => Err(err("unknown kind")),
    }
}

impl San {
    /// The `GeneralName` (context-specific implicit tags of RFC 5280 §4.2.1.6). Fails only for text
    /// that `parse_san` would not have accepted (non-ASCII, or over DER's length limit).
    pub fn general_name(&self) -> Result<GeneralName, der::Error> {
        Ok(match self {
            San::Email(v) => GeneralName::Rfc822Name(Ia5String::new(v)?),
            San::Dns(v) => GeneralName::DnsName(Ia5String::new(v)?),
            San::Uri(v) => GeneralName::UniformResourceIdentifier(Ia5String::new(v)?),
            San::Ip(IpAddr::V4(a)) => GeneralName::IpAddress(OctetString::new(a.octets())?),
            San::Ip(IpAddr::V6(a)) => GeneralName::IpAddress(OctetString::new(a.octets())?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject_text(input: &str) -> String {
        use x509_parser::prelude::FromDer;
        let der = parse_subject(input).unwrap().name().to_der().unwrap();
        let (_, name) = x509_parser::x509::X509Name::from_der(&der).unwrap();
        name.to_string()
    }

    #[test]
    fn subject_is_encoded_in_reverse_rfc4514_order() {
        // x509-parser prints in encoding order, first RDN first.
        assert_eq!(
            subject_text("CN=host1,O=Example Corp,C=DE"),
            "C=DE, O=Example Corp, CN=host1"
        );
    }

    #[test]
    fn subject_der_matches_hand_encoding() {
        let s = parse_subject("CN=a").unwrap();
        assert_eq!(
            s.name().to_der().unwrap(),
            [
                0x30, 0x0c, 0x31, 0x0a, 0x30, 0x08, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x01, b'a'
            ]
        );
    }

    #[test]
    fn subject_handles_escapes_spaces_and_multivalued_rdns() {
        assert_eq!(subject_text("CN=a\\,b , O = x\\2By"), "O=x+y, CN=a,b");
        let t = subject_text("CN=a+OU=b,O=c");
        assert!(t.starts_with("O=c, "), "{t}");
        assert!(t.contains("CN=a") && t.contains("OU=b"), "{t}");
        assert_eq!(subject_text("CN=\\ x\\ "), "CN= x ");
        assert_eq!(subject_text("CN=Jos\\C3\\A9"), "CN=José");
    }

    #[test]
    fn subject_accepts_oids_and_email() {
        assert_eq!(
            subject_text("2.5.4.3=h,emailAddress=a@b.c"),
            "Email=a@b.c, CN=h"
        );
    }

    #[test]
    fn subject_rejects_bad_input_with_reason() {
        for (input, needle) in [
            ("", "empty"),
            ("CN", "TYPE=VALUE"),
            ("XX=1", "unknown attribute type"),
            ("CN=", "empty value"),
            ("C=Germany", "two-letter"),
            ("CN=a\\", "lone backslash"),
            ("CN=#0403", "hex-encoded"),
            ("DC=é", "ASCII"),
            ("1.2.x=a", "OID"),
        ] {
            let e = parse_subject(input).unwrap_err().to_string();
            assert!(e.contains(needle), "{input:?}: {e}");
        }
        let long = format!("CN={}", "a".repeat(65));
        assert!(
            parse_subject(&long)
                .unwrap_err()
                .to_string()
                .contains("at most 64")
        );
    }

    fn san_der(input: &str) -> Vec<u8> {
        parse_san(input)
            .unwrap()
            .general_name()
            .unwrap()
            .to_der()
            .unwrap()
    }

    #[test]
    fn san_kinds_encode_with_rfc5280_tags() {
        assert_eq!(san_der("dns:a.b"), [0x82, 3, b'a', b'.', b'b']);
        assert_eq!(san_der("ip:10.0.0.1"), [0x87, 4, 10, 0, 0, 1]);
        assert_eq!(san_der("IP:::1")[..2], [0x87, 16]);
        assert_eq!(san_der("email:a@b")[0], 0x81);
        assert_eq!(san_der("uri:a:b")[0], 0x86);
        assert_eq!(
            parse_san("uri:spiffe://example.org/host1").unwrap(),
            San::Uri("spiffe://example.org/host1".into())
        );
    }

    #[test]
    fn san_rejects_malformed_values() {
        for input in [
            "host1",
            "dns:",
            "dns:a b",
            "dns:ä.example",
            "uri:no-scheme",
            "ip:300.1.1.1",
            "email:nobody",
            "x400:foo",
        ] {
            assert!(
                matches!(parse_san(input), Err(Error::San { .. })),
                "{input} accepted"
            );
        }
    }

    #[test]
    fn no_input_makes_the_parsers_panic() {
        let atoms = [
            "\\", ",", "+", "=", "é", " ", "#", "CN", ":", "\\2", "\\C3", "dns", "ip", "1.",
        ];
        let mut n = 0;
        for a in atoms {
            for b in atoms {
                for c in atoms {
                    for d in atoms {
                        let input = format!("{a}{b}{c}{d}");
                        let _ = parse_subject(&input);
                        let _ = parse_san(&input);
                        n += 1;
                    }
                }
            }
        }
        assert_eq!(n, atoms.len().pow(4));
    }
}
