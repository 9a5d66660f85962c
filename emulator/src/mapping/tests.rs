//! Attribute-mapping tests: pure cases on certificate names, and certificates issued in-test.

use super::*;
use crate::ca::{Ca, IssueRequest, KeySource, KeyType};

const CN: &str = "2.5.4.3";
const OU: &str = "2.5.4.11";
const O: &str = "2.5.4.10";
const C: &str = "2.5.4.6";
const EMAIL: &str = "1.2.840.113549.1.9.1";
const DC: &str = "0.9.2342.19200300.100.1.25";

fn attr(oid: &str, value: &str) -> Attribute {
    Attribute {
        oid: oid.into(),
        value: Some(value.into()),
    }
}

fn names() -> CertificateNames {
    CertificateNames {
        subject: vec![
            attr(DC, "example"),
            attr(C, "DE"),
            attr(O, "Example"),
            attr(OU, "ops"),
            attr(OU, "second-ou"),
            attr(CN, "web-01.example.com"),
        ],
        issuer: vec![attr(CN, "Example Issuing CA"), attr(O, "Example")],
        san: vec![
            SanEntry::Other,
            SanEntry::Dns("web-01.example.com".into()),
            SanEntry::Dns("web.example.com".into()),
            SanEntry::Uri("spiffe://example.org/ns/prod/sa/web".into()),
            SanEntry::DirectoryName(vec![
                attr(EMAIL, "a@example.com"),
                attr(OU, "dir-ou"),
                attr(CN, "dir-cn"),
            ]),
            SanEntry::DirectoryName(vec![attr(CN, "second-dir")]),
        ],
    }
}

fn pairs(t: &PrincipalTags) -> Vec<(&str, &str)> {
    t.tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn default_rules_map_recognised_attributes_and_first_san_values() {
    let t = map(&names(), &AttributeMappings::default());
    assert_eq!(
        pairs(&t),
        vec![
            ("x509Subject/CN", "web-01.example.com"),
            ("x509Subject/OU", "ops/second-ou"),
            ("x509Subject/O", "Example"),
            ("x509Subject/C", "DE"),
            ("x509Issuer/CN", "Example Issuing CA"),
            ("x509Issuer/O", "Example"),
            ("x509SAN/DNS", "web-01.example.com"),
            ("x509SAN/URI", "spiffe://example.org/ns/prod/sa/web"),
            ("x509SAN/Name/CN", "dir-cn"),
            ("x509SAN/Name/OU", "dir-ou"),
        ]
    );
    assert!(t.dropped.is_empty(), "{:?}", t.dropped);
    assert_eq!(t.get("x509Subject/OU"), Some("ops/second-ou"));
    assert_eq!(
        t.unmappable_message("arn:aws:iam::123456789012:role/r"),
        None
    );
}

#[test]
fn default_rules_are_the_documented_ones() {
    let d = AttributeMappings::default();
    assert_eq!(
        d.entries(),
        vec![
            (CertificateField::Issuer, &s(&["*"])[..]),
            (CertificateField::San, &s(&["DNS", "URI", "Name/*"])[..]),
            (CertificateField::Subject, &s(&["*"])[..]),
        ]
    );
}

/// (field, specifiers put on it alone, expected tags)
type SpecifierCase = (
    CertificateField,
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
);

#[test]
fn specifier_table() {
    #[rustfmt::skip]
    let cases: &[SpecifierCase] = &[
        (CertificateField::Subject, &["CN"], &[("x509Subject/CN", "web-01.example.com")]),
        (CertificateField::Subject, &["OU", "CN"], &[("x509Subject/OU", "ops/second-ou"), ("x509Subject/CN", "web-01.example.com")]),
        (CertificateField::Subject, &["cn"], &[]),
        (CertificateField::Subject, &["DC"], &[]),
        (CertificateField::Subject, &["CN", "*"], &[("x509Subject/CN", "web-01.example.com"), ("x509Subject/OU", "ops/second-ou"), ("x509Subject/O", "Example"), ("x509Subject/C", "DE")]),
        (CertificateField::Subject, &[], &[]),
        (CertificateField::Issuer, &["O"], &[("x509Issuer/O", "Example")]),
        (CertificateField::San, &["DNS"], &[("x509SAN/DNS", "web-01.example.com")]),
        (CertificateField::San, &["URI"], &[("x509SAN/URI", "spiffe://example.org/ns/prod/sa/web")]),
        (CertificateField::San, &["*"], &[]),
        (CertificateField::San, &["Name"], &[("x509SAN/Name/CN", "dir-cn"), ("x509SAN/Name/OU", "dir-ou")]),
        (CertificateField::San, &["Name/*"], &[("x509SAN/Name/CN", "dir-cn"), ("x509SAN/Name/OU", "dir-ou")]),
        // The first recognisable attribute: the directory name starts with an email address.
        (CertificateField::San, &["Name/"], &[("x509SAN/Name/OU", "dir-ou")]),
        (CertificateField::San, &["Name/CN"], &[("x509SAN/Name/CN", "dir-cn")]),
        (CertificateField::San, &["Name/O"], &[]),
    ];
    for (field, specifiers, want) in cases {
        let mut rules = AttributeMappings::empty();
        rules.put(*field, &s(specifiers)).unwrap();
        let t = map(&names(), &rules);
        assert_eq!(pairs(&t), want.to_vec(), "{field:?} {specifiers:?}");
    }
}

#[test]
fn put_replaces_one_field_and_delete_removes_specifiers() {
    let mut rules = AttributeMappings::default();
    rules
        .put(CertificateField::Subject, &s(&["CN", "CN"]))
        .unwrap();
    assert_eq!(rules.specifiers(CertificateField::Subject), &s(&["CN"])[..]);
    assert_eq!(rules.specifiers(CertificateField::Issuer), &s(&["*"])[..]);
    let t = map(&names(), &rules);
    assert_eq!(t.get("x509Subject/CN"), Some("web-01.example.com"));
    assert_eq!(t.get("x509Subject/OU"), None);
    assert_eq!(t.get("x509Issuer/CN"), Some("Example Issuing CA"));

    rules.delete(CertificateField::San, Some(&s(&["DNS", "Name/*"])));
    assert_eq!(rules.specifiers(CertificateField::San), &s(&["URI"])[..]);
    rules.delete(CertificateField::Issuer, None);
    let t = map(&names(), &rules);
    assert_eq!(
        pairs(&t),
        vec![
            ("x509Subject/CN", "web-01.example.com"),
            ("x509SAN/URI", "spiffe://example.org/ns/prod/sa/web")
        ]
    );
    assert_eq!(
        rules
            .entries()
            .iter()
            .map(|(f, _)| f.name())
            .collect::<Vec<_>>(),
        vec!["x509SAN", "x509Subject"]
    );

    let long = "A".repeat(MAX_SPECIFIER_CHARS + 1);
    assert_eq!(
        rules.put(CertificateField::Subject, std::slice::from_ref(&long)),
        Err(Error::SpecifierTooLong { specifier: long })
    );
    assert_eq!(
        rules.put(
            CertificateField::Subject,
            &s(&[&"A".repeat(MAX_SPECIFIER_CHARS)])
        ),
        Ok(())
    );
    assert_eq!(
        CertificateField::parse("x509SAN"),
        Ok(CertificateField::San)
    );
    assert_eq!(
        CertificateField::parse("x509San").unwrap_err().to_string(),
        r#"certificate field "x509San" is not one of x509Subject, x509Issuer, x509SAN"#
    );
}

#[test]
fn values_sts_refuses_are_dropped() {
    #[rustfmt::skip]
    let cases: &[(&str, Option<DropReason>)] = &[
        ("web-01.example.com", None),
        ("user@example.com", None),
        ("a_b.c:d/e=f+g-h@i", None),
        ("Zoë Ünal", None),
        ("東京 サーバー", None),
        ("٣٤٥ ½", None),                  // digits and numbers of other scripts (\p{N})
        ("no\u{a0}break", None),           // NO-BREAK SPACE is \p{Z}
        ("", None),                        // STS allows an empty value
        ("John M. Smith (EMP12345)", Some(DropReason::Characters)),
        ("Acme & Co", Some(DropReason::Characters)),
        ("a,b", Some(DropReason::Characters)),
        ("*.example.com", Some(DropReason::Characters)),
        ("tab\there", Some(DropReason::Characters)),
        ("e\u{301}", Some(DropReason::Characters)), // a combining mark is \p{M}, not a letter
        ("quote\"", Some(DropReason::Characters)),
        ("esc\u{1b}[2J", Some(DropReason::Characters)),
    ];
    for (value, want) in cases {
        let n = CertificateNames {
            subject: vec![attr(CN, value)],
            ..Default::default()
        };
        let t = map(&n, &AttributeMappings::default());
        match want {
            None => assert_eq!(
                t.get("x509Subject/CN"),
                Some(*value),
                "{value:?} should map"
            ),
            Some(reason) => {
                assert_eq!(t.get("x509Subject/CN"), None, "{value:?} should be dropped");
                assert_eq!(t.dropped.len(), 1);
                assert_eq!(t.dropped[0].reason, *reason, "{value:?}");
                assert_eq!(t.dropped[0].key, "x509Subject/CN");
            }
        }
    }
}

#[test]
fn value_length_counts_characters() {
    for (value, kept) in [
        ("a".repeat(256), true),
        ("ü".repeat(256), true), // 512 bytes, 256 characters
        ("a".repeat(257), false),
    ] {
        let n = CertificateNames {
            subject: vec![attr(OU, &value)],
            ..Default::default()
        };
        let t = map(&n, &AttributeMappings::default());
        assert_eq!(
            t.get("x509Subject/OU").is_some(),
            kept,
            "{} chars",
            value.chars().count()
        );
        if !kept {
            assert_eq!(t.dropped[0].reason, DropReason::TooLong { chars: 257 });
        }
    }
}

#[test]
fn undecodable_value_is_dropped() {
    let n = CertificateNames {
        subject: vec![
            Attribute {
                oid: CN.into(),
                value: None,
            },
            attr(OU, "ops"),
        ],
        ..Default::default()
    };
    let t = map(&n, &AttributeMappings::default());
    assert_eq!(pairs(&t), vec![("x509Subject/OU", "ops")]);
    assert_eq!(t.dropped[0].reason, DropReason::NotAString);
    assert_eq!(
        t.dropped[0].to_string(),
        "x509Subject/CN is not a decodable string"
    );
}

#[test]
fn a_dropped_first_san_does_not_fall_back_to_the_second() {
    let n = CertificateNames {
        san: vec![
            SanEntry::Dns("*.example.com".into()),
            SanEntry::Dns("web.example.com".into()),
        ],
        ..Default::default()
    };
    let t = map(&n, &AttributeMappings::default());
    assert!(t.tags.is_empty(), "{:?}", t.tags);
    assert_eq!(t.dropped.len(), 1);
    assert_eq!(
        t.dropped[0].to_string(),
        r#"x509SAN/DNS = "*.example.com" has characters STS refuses in a session tag (allowed: letters, digits, spaces, _ . : / = + - @)"#
    );
}

#[test]
fn tag_limit_drops_the_excess_in_order() {
    let n = names();
    let all = map_limited(&n, &AttributeMappings::default(), 3);
    assert_eq!(
        pairs(&all),
        vec![
            ("x509Subject/CN", "web-01.example.com"),
            ("x509Subject/OU", "ops/second-ou"),
            ("x509Subject/O", "Example"),
        ]
    );
    assert_eq!(all.dropped.len(), 7);
    assert!(
        all.dropped
            .iter()
            .all(|d| d.reason == DropReason::TooManyTags { limit: 3 })
    );
    assert_eq!(
        all.dropped[0].to_string(),
        r#"x509Subject/C = "DE" is past the 3-tag session limit"#
    );
}

#[test]
fn every_producible_key_fits_sts_limits() {
    // Every recognised attribute in every position, with every specifier: the most tags and the
    // longest keys mapping can produce.
    let full: Vec<Attribute> = RECOGNISED.iter().map(|(_, oid)| attr(oid, "v")).collect();
    let n = CertificateNames {
        subject: full.clone(),
        issuer: full.clone(),
        san: vec![
            SanEntry::Dns("d".into()),
            SanEntry::Uri("u".into()),
            SanEntry::DirectoryName(full),
        ],
    };
    let t = map(&n, &AttributeMappings::default());
    assert_eq!(t.tags.len(), 2 * RECOGNISED.len() + 2 + RECOGNISED.len());
    assert!(t.tags.len() <= MAX_TAGS);
    for (k, _) in &t.tags {
        assert!(
            k.chars().count() <= MAX_KEY_CHARS && TAG_TEXT.is_match(k),
            "{k}"
        );
    }
}

#[test]
fn unmappable_message_lists_attributes_per_field() {
    let n = CertificateNames {
        subject: vec![attr(CN, "a (b)"), attr(OU, "ok")],
        issuer: vec![attr(CN, "Issuer & Co")],
        san: vec![SanEntry::Dns("*.x".into())],
    };
    let t = map(&n, &AttributeMappings::default());
    assert_eq!(
        t.unmappable_message("arn:aws:iam::123456789012:role/r")
            .as_deref(),
        Some(
            "Unable to assume role for arn:aws:iam::123456789012:role/r. Some attributes failed to be mapped into session tags. Issuer: [ CN ]; Subject: [ CN ]; SAN: [ DNS ]"
        )
    );
}

fn issue(ca: &Ca, subject: &str, sans: &[&str]) -> CertificateNames {
    let mut req = IssueRequest::new(subject, KeySource::NewKey(KeyType::EcP256));
    req.sans = s(sans);
    let issued = ca.issue(&req).unwrap();
    let der = crate::pem::decode_label(&issued.cert_pem, "CERTIFICATE")
        .unwrap()
        .remove(0);
    CertificateNames::from_der(&der).unwrap()
}

#[test]
fn certificate_with_odd_characters() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::init(&dir.path().join("ca"), KeyType::EcP256, "Test CA (dev)").unwrap();
    let names = issue(
        &ca,
        "CN=John M. Smith (EMP12345),OU=Zoë Ünal,O=Acme & Co,C=DE,ST=Bayern,L=München",
        &[
            "dns:*.example.com",
            "dns:web.example.com",
            "uri:spiffe://example.org/ns/prod/sa/web",
            "email:a@example.com",
        ],
    );
    let t = map(&names, &AttributeMappings::default());
    assert_eq!(
        pairs(&t),
        vec![
            ("x509Subject/OU", "Zoë Ünal"),
            ("x509Subject/C", "DE"),
            ("x509Subject/ST", "Bayern"),
            ("x509Subject/L", "München"),
            ("x509SAN/URI", "spiffe://example.org/ns/prod/sa/web"),
        ]
    );
    let dropped: Vec<(&str, Option<&str>)> = t
        .dropped
        .iter()
        .map(|d| (d.key.as_str(), d.value.as_deref()))
        .collect();
    assert_eq!(
        dropped,
        vec![
            ("x509Subject/CN", Some("John M. Smith (EMP12345)")),
            ("x509Subject/O", Some("Acme & Co")),
            ("x509Issuer/CN", Some("Test CA (dev)")),
            ("x509SAN/DNS", Some("*.example.com")),
        ]
    );

    // Narrowing the mapping to the clean attributes leaves nothing to drop.
    let mut rules = AttributeMappings::default();
    rules
        .put(CertificateField::Subject, &s(&["OU", "L"]))
        .unwrap();
    rules.delete(CertificateField::Issuer, None);
    rules.put(CertificateField::San, &s(&["URI"])).unwrap();
    let t = map(&names, &rules);
    assert!(t.dropped.is_empty(), "{:?}", t.dropped);
    assert_eq!(t.tags.len(), 3);
}

#[test]
fn certificate_with_clean_names_maps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::init(&dir.path().join("ca"), KeyType::EcP256, "Example Root CA").unwrap();
    let names = issue(
        &ca,
        "CN=backup-server.corp.example.com,O=Corp,OU=Backup",
        &["dns:backup-server.corp.example.com"],
    );
    let t = map(&names, &AttributeMappings::default());
    assert_eq!(
        pairs(&t),
        vec![
            ("x509Subject/CN", "backup-server.corp.example.com"),
            ("x509Subject/OU", "Backup"),
            ("x509Subject/O", "Corp"),
            ("x509Issuer/CN", "Example Root CA"),
            ("x509SAN/DNS", "backup-server.corp.example.com"),
        ]
    );
    assert!(t.dropped.is_empty());
}

/// DER TLV with a short or long length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match content.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n < 0x100 => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(content);
    out
}

/// One RDN (SET of one AttributeTypeAndValue) with a DER-encoded OID and a string of `tag`.
fn rdn(oid_der: &[u8], tag: u8, value: &[u8]) -> Vec<u8> {
    let atv = [tlv(0x06, oid_der), tlv(tag, value)].concat();
    tlv(0x31, &tlv(0x30, &atv))
}

#[test]
fn directory_name_san_and_bmp_strings_from_a_certificate() {
    // rcgen has no directoryName SAN: the extension is written by hand.
    let bmp: Vec<u8> = "Øps".encode_utf16().flat_map(u16::to_be_bytes).collect();
    let email_oid = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];
    let name = tlv(
        0x30,
        &[
            rdn(&email_oid, 0x16, b"dir@example.com"),
            rdn(&[0x55, 0x04, 0x0b], 0x1e, &bmp),
            rdn(&[0x55, 0x04, 0x03], 0x0c, "dir-cn".as_bytes()),
        ]
        .concat(),
    );
    let general_names = tlv(
        0x30,
        &[
            tlv(0x82, b"web.example.com"),
            tlv(0xa4, &name),
            tlv(0x86, b"urn:example:web"),
        ]
        .concat(),
    );
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "dirname-test");
    params.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
        &[2, 5, 29, 17],
        general_names,
    )];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let names = CertificateNames::from_der(cert.der()).unwrap();
    assert_eq!(
        names.san[1],
        SanEntry::DirectoryName(vec![
            attr(EMAIL, "dir@example.com"),
            attr(OU, "Øps"),
            attr(CN, "dir-cn"),
        ])
    );
    let t = map(&names, &AttributeMappings::default());
    assert_eq!(
        pairs(&t),
        vec![
            ("x509Subject/CN", "dirname-test"),
            ("x509Issuer/CN", "dirname-test"),
            ("x509SAN/DNS", "web.example.com"),
            ("x509SAN/URI", "urn:example:web"),
            ("x509SAN/Name/CN", "dir-cn"),
            ("x509SAN/Name/OU", "Øps"),
        ]
    );
    let mut first = AttributeMappings::empty();
    first.put(CertificateField::San, &s(&["Name/"])).unwrap();
    assert_eq!(
        pairs(&map(&names, &first)),
        vec![("x509SAN/Name/OU", "Øps")]
    );
}

#[test]
fn garbage_is_not_a_certificate() {
    let e = CertificateNames::from_der(b"not a certificate").unwrap_err();
    assert!(
        e.to_string().starts_with("certificate does not parse: "),
        "{e}"
    );
}
