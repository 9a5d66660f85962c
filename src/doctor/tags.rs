//! Check 4: what Roles Anywhere will see — the principal tags derived from the certificate with the
//! default attribute mapping (values STS would drop marked as dropped), and the source identity.
//!
//! The derivation is pure ([`derive`]) and is the agent's own reading of the documented rules
//! (`../shared/protocol.md`, the Roles Anywhere user guide's "Certificate attribute mapping"):
//!
//! - `x509Subject/<RDN>` and `x509Issuer/<RDN>` for every recognised attribute of the subject and
//!   issuer; several values of one attribute joined with `/` in certificate order;
//! - `x509SAN/DNS`, `x509SAN/URI`: the first SAN of each kind; `x509SAN/Name/<RDN>`: the
//!   attributes of the first directory name;
//! - a tag whose key or value breaks STS's session-tag rules (pattern `[\p{L}\p{Z}\p{N}_.:/=+\-@]*`,
//!   key ≤ 128 and value ≤ 256 characters, at most 50 tags) is dropped: the session does not carry
//!   it and trust-policy conditions do not see it;
//! - source identity `CN=<cn>` when the subject's CN has at most 61 characters, else
//!   `ID=<serial in hex, even length>`.

use super::{Check, Context, Finding, Report};
use crate::certs::{AltNames, Certificate};

/// Longest session-tag key STS accepts (characters).
pub const MAX_KEY: usize = 128;
/// Longest session-tag value STS accepts (characters).
pub const MAX_VALUE: usize = 256;
/// Most session tags STS accepts on one session.
pub const MAX_TAGS: usize = 50;
/// Longest CN the source identity carries as `CN=<cn>` (the source identity is at most 64
/// characters).
pub const MAX_SOURCE_IDENTITY_CN: usize = 61;

/// The attributes the default mapping recognises: dotted OID → the name in the tag key.
const RECOGNISED: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

/// Why STS would drop a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dropped {
    /// The key is longer than [`MAX_KEY`] characters.
    KeyTooLong(usize),
    /// The value is longer than [`MAX_VALUE`] characters.
    ValueTooLong(usize),
    /// The value has this character outside the session-tag pattern.
    Character(char),
    /// The tag comes after the first [`MAX_TAGS`] kept ones.
    OverLimit,
}

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dropped::KeyTooLong(n) => write!(f, "the key has {n} characters, over STS's {MAX_KEY}"),
            Dropped::ValueTooLong(n) => {
                write!(f, "the value has {n} characters, over STS's {MAX_VALUE}")
            }
            Dropped::Character(c) => write!(
                f,
                "the value has {:?} (U+{:04X}), outside STS's session-tag characters \
                 (letters, digits, spaces and _ . : / = + - @)",
                c, *c as u32
            ),
            Dropped::OverLimit => write!(f, "it comes after STS's limit of {MAX_TAGS} tags"),
        }
    }
}

/// One principal tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// The key without `aws:PrincipalTag/`: `x509Subject/CN`.
    pub key: String,
    /// The value as the certificate has it.
    pub value: String,
    /// Why STS drops it, when it does.
    pub dropped: Option<Dropped>,
}

/// The principal tags and source identity of a certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrincipalTags {
    /// Every tag the mapping derives, in the order the service derives them (dropped ones
    /// included, marked).
    pub tags: Vec<Tag>,
    /// The source identity.
    pub source_identity: Option<String>,
}

impl PrincipalTags {
    /// The tags the session carries (the dropped ones left out): `(key, value)`.
    pub fn kept(&self) -> impl Iterator<Item = (&str, &str)> {
        self.tags
            .iter()
            .filter(|t| t.dropped.is_none())
            .map(|t| (t.key.as_str(), t.value.as_str()))
    }

    /// The tag `key` (compared without case, as IAM compares condition keys), kept or dropped.
    pub fn get(&self, key: &str) -> Option<&Tag> {
        self.tags.iter().find(|t| t.key.eq_ignore_ascii_case(key))
    }

    /// The principal tags of `cert` under the default mapping.
    pub fn of(cert: &Certificate) -> PrincipalTags {
        derive(
            &cert.subject_attributes(),
            &cert.issuer_attributes(),
            &cert.subject_alt_names(),
            &cert.serial_hex(),
        )
    }
}

/// The default mapping of a certificate's subject and issuer attributes `(dotted OID, value)`,
/// its SANs and its serial number (hex).
pub fn derive(
    subject: &[(String, String)],
    issuer: &[(String, String)],
    sans: &AltNames,
    serial_hex: &str,
) -> PrincipalTags {
    let mut raw: Vec<(String, String)> = Vec::new();
    raw.extend(joined("x509Subject/", subject));
    raw.extend(joined("x509Issuer/", issuer));
    if let Some(dns) = sans.dns.first() {
        raw.push(("x509SAN/DNS".to_string(), dns.clone()));
    }
    if let Some(uri) = sans.uri.first() {
        raw.push(("x509SAN/URI".to_string(), uri.clone()));
    }
    if let Some(name) = sans.directory_names.first() {
        raw.extend(joined("x509SAN/Name/", name));
    }
    let mut kept = 0usize;
    let tags = raw
        .into_iter()
        .map(|(key, value)| {
            let mut dropped = rule_breach(&key, &value);
            if dropped.is_none() {
                kept += 1;
                if kept > MAX_TAGS {
                    dropped = Some(Dropped::OverLimit);
                }
            }
            Tag {
                key,
                value,
                dropped,
            }
        })
        .collect();
    let cn = joined("", subject)
        .into_iter()
        .find(|(k, _)| k == "CN")
        .map(|(_, v)| v);
    let source_identity = Some(match cn {
        Some(cn) if cn.chars().count() <= MAX_SOURCE_IDENTITY_CN => format!("CN={cn}"),
        _ => format!("ID={}", even_hex(serial_hex)),
    });
    PrincipalTags {
        tags,
        source_identity,
    }
}

/// `prefix<RDN>` → the values of that recognised attribute joined with `/`, in the order the
/// attributes first appear.
fn joined(prefix: &str, attributes: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (oid, value) in attributes {
        let Some((_, name)) = RECOGNISED.iter().find(|(o, _)| o == oid) else {
            continue;
        };
        let key = format!("{prefix}{name}");
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => {
                v.push('/');
                v.push_str(value);
            }
            None => out.push((key, value.clone())),
        }
    }
    out
}

/// Why STS refuses this tag on its own (the count limit aside).
fn rule_breach(key: &str, value: &str) -> Option<Dropped> {
    let key_len = key.chars().count();
    if key_len > MAX_KEY {
        return Some(Dropped::KeyTooLong(key_len));
    }
    let value_len = value.chars().count();
    if value_len > MAX_VALUE {
        return Some(Dropped::ValueTooLong(value_len));
    }
    value
        .chars()
        .find(|c| !tag_char(*c))
        .map(Dropped::Character)
}

/// `[\p{L}\p{Z}\p{N}_.:/=+\-@]`. `char::is_alphabetic` is Unicode `Alphabetic` (letters plus letter
/// numbers and a few combining marks), close enough to `\p{L}` for names in certificates;
/// `\p{Z}` is listed (space separators, line and paragraph separators) because
/// `char::is_whitespace` also takes control characters, which STS refuses.
pub fn tag_char(c: char) -> bool {
    c.is_alphabetic()
        || c.is_numeric()
        || matches!(c, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')
        || matches!(
            c,
            ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
                ..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}'
        )
}

/// `hex` with a leading zero when its length is odd.
fn even_hex(hex: &str) -> String {
    if hex.len() % 2 == 1 {
        format!("0{hex}")
    } else {
        hex.to_string()
    }
}

/// Check 4.
pub fn check(cx: &mut Context, report: &mut Report) {
    let Some(leaf) = &cx.leaf else {
        report.push(Finding::skipped(
            Check::Tags,
            "principal tags",
            "no certificate was read (see the identity check); give --certificate",
        ));
        return;
    };
    let tags = PrincipalTags::of(leaf);
    let object = format!(
        "certificate (serial {}, {})",
        leaf.serial_decimal(),
        leaf.subject()
    );
    let kept: Vec<String> = tags
        .kept()
        .map(|(k, v)| format!("aws:PrincipalTag/{k}={v}"))
        .collect();
    let source = tags
        .source_identity
        .as_deref()
        .map(|s| format!("sts:SourceIdentity={s}"))
        .unwrap_or_else(|| "no source identity".to_string());
    if kept.is_empty() {
        report.push(Finding::warning(
            Check::Tags,
            object.clone(),
            format!(
                "the default attribute mapping derives no session tag from this certificate \
                 ({source}); positive trust-policy conditions on aws:PrincipalTag/… (StringEquals, StringLike, ArnEquals…) cannot hold"
            ),
            "issue the certificate with a subject CN (and SANs) the role's trust policy can test",
        ));
    } else {
        report.push(Finding::passed(
            Check::Tags,
            object.clone(),
            format!(
                "the service will set {} session tag(s): {}; {source}",
                kept.len(),
                kept.join(", ")
            ),
        ));
    }
    for t in tags.tags.iter().filter(|t| t.dropped.is_some()) {
        let why = t
            .dropped
            .as_ref()
            .map(|d| d.to_string())
            .unwrap_or_default();
        report.push(Finding::warning(
            Check::Tags,
            format!("aws:PrincipalTag/{}", t.key),
            format!(
                "dropped: {why}; the session will not carry it, so a trust-policy StringEquals \
                 on it is false and a StringNotEquals on it is true"
            ),
            "keep certificate names within STS's session-tag rules (letters, digits, spaces, \
             _ . : / = + - @; keys up to 128 and values up to 256 characters; at most 50 tags), \
             or do not condition the trust policy on this tag",
        ));
    }
    cx.tags = Some(tags);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(name, v)| {
                let oid = RECOGNISED
                    .iter()
                    .find(|(_, n)| n == name)
                    .map(|(o, _)| o.to_string())
                    .unwrap_or_else(|| name.to_string());
                (oid, v.to_string())
            })
            .collect()
    }

    fn pairs(t: &PrincipalTags) -> Vec<(String, String)> {
        t.kept()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn default_mapping_joins_repeated_attributes_in_certificate_order() {
        let subject = attrs(&[
            ("CN", "web-1"),
            ("OU", "ops"),
            ("O", "Example"),
            ("OU", "eu"),
            // Not a recognised attribute (emailAddress): not mapped.
            ("1.2.840.113549.1.9.1", "a@example.com"),
        ]);
        let issuer = attrs(&[("C", "DE"), ("CN", "Issuing CA")]);
        let sans = AltNames {
            dns: vec!["web-1.example.com".into(), "web.example.com".into()],
            uri: vec!["spiffe://example.com/web".into()],
            directory_names: vec![
                attrs(&[("CN", "dir one"), ("O", "Dir")]),
                attrs(&[("CN", "dir two")]),
            ],
        };
        let t = derive(&subject, &issuer, &sans, "1234");
        let expect: Vec<(String, String)> = [
            ("x509Subject/CN", "web-1"),
            ("x509Subject/OU", "ops/eu"),
            ("x509Subject/O", "Example"),
            ("x509Issuer/C", "DE"),
            ("x509Issuer/CN", "Issuing CA"),
            ("x509SAN/DNS", "web-1.example.com"),
            ("x509SAN/URI", "spiffe://example.com/web"),
            ("x509SAN/Name/CN", "dir one"),
            ("x509SAN/Name/O", "Dir"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(pairs(&t), expect);
        assert_eq!(t.source_identity.as_deref(), Some("CN=web-1"));
        assert!(t.get("X509SUBJECT/cn").is_some());
    }

    #[test]
    fn values_breaking_the_session_tag_rules_are_dropped() {
        let long = "v".repeat(MAX_VALUE + 1);
        let subject = attrs(&[
            ("CN", "web,1"),
            ("OU", "Zoë Ünit 7"),
            ("O", &long),
            ("L", "a\tb"),
            ("ST", "x\u{2003}y"),
        ]);
        let t = derive(&subject, &[], &AltNames::default(), "ab");
        let dropped: Vec<(&str, Option<&Dropped>)> = t
            .tags
            .iter()
            .map(|t| (t.key.as_str(), t.dropped.as_ref()))
            .collect();
        assert_eq!(
            dropped,
            [
                ("x509Subject/CN", Some(&Dropped::Character(','))),
                ("x509Subject/OU", None),
                ("x509Subject/O", Some(&Dropped::ValueTooLong(MAX_VALUE + 1))),
                ("x509Subject/L", Some(&Dropped::Character('\t'))),
                ("x509Subject/ST", None),
            ]
        );
        // The source identity is the CN as the certificate has it, the tag's fate aside.
        assert_eq!(t.source_identity.as_deref(), Some("CN=web,1"));
    }

    /// Every recognised attribute in the subject, the issuer and a SAN directory name, plus a DNS
    /// and a URI SAN: the most the default mapping can derive, still under STS's 50 tags.
    #[test]
    fn the_fullest_default_mapping_stays_under_the_tag_limit() {
        let all: Vec<(String, String)> = RECOGNISED
            .iter()
            .map(|(o, _)| (o.to_string(), "s".to_string()))
            .collect();
        let sans = AltNames {
            dns: vec!["a.example".into()],
            uri: vec!["urn:x".into()],
            directory_names: vec![all.clone()],
        };
        let t = derive(&all, &all, &sans, "01");
        assert_eq!(t.tags.len(), 3 * RECOGNISED.len() + 2);
        assert!(t.tags.len() <= MAX_TAGS);
        assert!(t.tags.iter().all(|t| t.dropped.is_none()));
    }

    #[test]
    fn long_cn_gives_an_id_source_identity_with_even_hex() {
        let cn = "c".repeat(MAX_SOURCE_IDENTITY_CN + 1);
        let t = derive(&attrs(&[("CN", &cn)]), &[], &AltNames::default(), "abc");
        assert_eq!(t.source_identity.as_deref(), Some("ID=0abc"));
        let cn = "c".repeat(MAX_SOURCE_IDENTITY_CN);
        let t = derive(&attrs(&[("CN", &cn)]), &[], &AltNames::default(), "abc");
        assert_eq!(t.source_identity, Some(format!("CN={cn}")));
        // No CN at all: the serial.
        let t = derive(&attrs(&[("O", "x")]), &[], &AltNames::default(), "1f");
        assert_eq!(t.source_identity.as_deref(), Some("ID=1f"));
    }

    #[test]
    fn session_tag_characters() {
        for c in [
            'a', 'Z', 'ß', '7', '٣', ' ', '\u{3000}', '_', '.', ':', '/', '=', '+', '-', '@',
        ] {
            assert!(tag_char(c), "{c:?}");
        }
        for c in [
            ',', ';', '\t', '\n', '\0', '*', '"', '\\', '\u{202e}', '#', '!',
        ] {
            assert!(!tag_char(c), "{c:?}");
        }
    }
}
