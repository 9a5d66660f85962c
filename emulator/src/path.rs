//! RFC 5280 path validation beyond signatures, validity and revocation (which [`crate::verifier`]
//! checks): basicConstraints cA and pathLenConstraint (6.1.4 k, l, m), keyUsage keyCertSign on
//! every issuer (6.1.4 n), name constraints for dNSName, rfc822Name, iPAddress, directoryName and
//! URI (6.1.3 b, 4.2.1.10), and critical extensions the emulator does not process (4.2).
//!
//! Pure: it sees parsed certificates from the trust anchor down to the leaf and returns the first
//! rule one of them breaks, in words naming the certificate. It must not look at signatures, time
//! or configuration. Where RFC 5280 leaves a choice it takes the stricter one, because a chain the
//! emulator accepts must not be refused by the service: the anchor's own pathLenConstraint and
//! name constraints apply, emailAddress attributes of the subject are checked as rfc822Names
//! whether or not a subjectAltName exists, and policy extensions marked critical are refused
//! since certificate policies are not processed.

use std::collections::HashSet;

use x509_parser::der_parser::oid::Oid;
use x509_parser::extensions::{GeneralName, NameConstraints, ParsedExtension};
use x509_parser::oid_registry::{
    OID_PKCS9_EMAIL_ADDRESS, OID_X509_EXT_BASIC_CONSTRAINTS, OID_X509_EXT_KEY_USAGE,
    OID_X509_EXT_NAME_CONSTRAINTS, OID_X509_EXT_SUBJECT_ALT_NAME,
};
use x509_parser::prelude::{X509Certificate, X509Name};
use x509_parser::x509::{AttributeTypeAndValue, RelativeDistinguishedName};

/// Checks the path `anchor`, then `below` from the certificate the anchor issued down to the leaf
/// (last). Returns why the path is invalid.
pub(crate) fn check(
    anchor: &X509Certificate<'_>,
    below: &[&X509Certificate<'_>],
) -> Result<(), String> {
    let path: Vec<&X509Certificate<'_>> = std::iter::once(anchor)
        .chain(below.iter().copied())
        .collect();
    let last = path.len() - 1;
    for cert in &path {
        critical_extensions(cert)?;
    }
    for issuer in &path[..last] {
        issuer_may_sign(issuer)?;
    }
    path_length(&path)?;
    for (k, ca) in path[..last].iter().enumerate() {
        let Some(constraints) = name_constraints(ca)? else {
            continue;
        };
        for (j, cert) in path.iter().enumerate().skip(k + 1) {
            // 6.1.3 (b): a self-issued intermediate is exempt; the leaf never is.
            if j != last && self_issued(cert) {
                continue;
            }
            check_names(cert, constraints).map_err(|e| {
                format!(
                    "{} violates the name constraints of {}: {e}",
                    cert.subject(),
                    ca.subject()
                )
            })?;
        }
    }
    Ok(())
}

fn self_issued(cert: &X509Certificate<'_>) -> bool {
    cert.subject().as_raw() == cert.issuer().as_raw()
}

/// The extension with `oid`, parsed; an extension that appears twice or does not parse is an
/// error, never "absent" (a malformed nameConstraints must not lift the constraints).
fn extension<'c>(
    cert: &'c X509Certificate<'_>,
    oid: &Oid<'_>,
    what: &str,
) -> Result<Option<&'c ParsedExtension<'c>>, String> {
    match cert.get_extension_unique(oid) {
        Ok(None) => Ok(None),
        Ok(Some(ext)) => match ext.parsed_extension() {
            ParsedExtension::ParseError { .. }
            | ParsedExtension::UnsupportedExtension { .. }
            | ParsedExtension::Unparsed => Err(format!("{}: malformed {what}", cert.subject())),
            parsed => Ok(Some(parsed)),
        },
        Err(_) => Err(format!("{}: {what} appears more than once", cert.subject())),
    }
}

/// RFC 5280 4.2: a certificate with a critical extension the validator does not recognise or
/// cannot process must be rejected. Extensions appear at most once.
fn critical_extensions(cert: &X509Certificate<'_>) -> Result<(), String> {
    let mut seen = HashSet::new();
    for ext in cert.extensions() {
        if !seen.insert(ext.oid.to_id_string()) {
            return Err(format!(
                "{}: extension {} appears more than once",
                cert.subject(),
                extension_name(&ext.oid)
            ));
        }
        if !ext.critical {
            continue;
        }
        // What this module checks, and what is informational whatever its criticality. Policy
        // extensions are absent on purpose: policies are not processed.
        let processed = matches!(
            ext.parsed_extension(),
            ParsedExtension::BasicConstraints(_)
                | ParsedExtension::KeyUsage(_)
                | ParsedExtension::SubjectAlternativeName(_)
                | ParsedExtension::NameConstraints(_)
                | ParsedExtension::ExtendedKeyUsage(_)
                | ParsedExtension::CertificatePolicies(_)
                | ParsedExtension::SubjectKeyIdentifier(_)
                | ParsedExtension::AuthorityKeyIdentifier(_)
                | ParsedExtension::IssuerAlternativeName(_)
                | ParsedExtension::CRLDistributionPoints(_)
                | ParsedExtension::AuthorityInfoAccess(_)
                | ParsedExtension::SubjectInfoAccess(_)
        );
        if !processed {
            return Err(format!(
                "{} has a critical extension {} that is not processed (RFC 5280 requires refusing it)",
                cert.subject(),
                extension_name(&ext.oid)
            ));
        }
    }
    Ok(())
}

fn extension_name(oid: &Oid<'_>) -> String {
    match x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry()) {
        Ok(sn) => format!("{sn} ({oid})"),
        Err(_) => oid.to_id_string(),
    }
}

/// 6.1.4 (k), (n): an issuer is a CA and, when it has keyUsage, may sign certificates.
fn issuer_may_sign(cert: &X509Certificate<'_>) -> Result<(), String> {
    match extension(cert, &OID_X509_EXT_BASIC_CONSTRAINTS, "basicConstraints")? {
        Some(ParsedExtension::BasicConstraints(bc)) if bc.ca => {}
        _ => {
            return Err(format!(
                "{} issues certificates but is not a CA (basicConstraints cA is not true)",
                cert.subject()
            ));
        }
    }
    if let Some(ParsedExtension::KeyUsage(ku)) =
        extension(cert, &OID_X509_EXT_KEY_USAGE, "keyUsage")?
        && !ku.key_cert_sign()
    {
        return Err(format!(
            "{} issues certificates but its keyUsage lacks keyCertSign",
            cert.subject()
        ));
    }
    Ok(())
}

fn path_len_constraint(cert: &X509Certificate<'_>) -> Result<Option<u32>, String> {
    Ok(
        match extension(cert, &OID_X509_EXT_BASIC_CONSTRAINTS, "basicConstraints")? {
            Some(ParsedExtension::BasicConstraints(bc)) => bc.path_len_constraint,
            _ => None,
        },
    )
}

/// 6.1.4 (l), (m): each CA below a pathLenConstraint of n may be followed by at most n more
/// non-self-issued CA certificates before the leaf.
fn path_length(path: &[&X509Certificate<'_>]) -> Result<(), String> {
    let Some((anchor, rest)) = path.split_first() else {
        return Ok(());
    };
    let Some((_leaf, intermediates)) = rest.split_last() else {
        return Ok(());
    };
    let mut remaining: Option<(u32, &X509Certificate<'_>)> =
        path_len_constraint(anchor)?.map(|n| (n, *anchor));
    for cert in intermediates {
        if !self_issued(cert)
            && let Some((n, limiter)) = remaining.as_mut()
        {
            if *n == 0 {
                return Err(format!(
                    "{} is a CA certificate below {}, whose path length constraint allows no further CA",
                    cert.subject(),
                    limiter.subject()
                ));
            }
            *n -= 1;
        }
        if let Some(own) = path_len_constraint(cert)?
            && remaining.is_none_or(|(n, _)| own < n)
        {
            remaining = Some((own, cert));
        }
    }
    Ok(())
}

/// A name form of RFC 5280 4.2.1.6, as constraints and names are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Dns,
    Email,
    Ip,
    Directory,
    Uri,
    /// otherName, x400Address, ediPartyName or registeredID.
    Unprocessed,
    /// An entry that did not parse (a dNSName that is not text, say).
    Invalid,
}

impl Form {
    fn of(name: &GeneralName<'_>) -> Form {
        match name {
            GeneralName::DNSName(_) => Form::Dns,
            GeneralName::RFC822Name(_) => Form::Email,
            GeneralName::IPAddress(_) => Form::Ip,
            GeneralName::DirectoryName(_) => Form::Directory,
            GeneralName::URI(_) => Form::Uri,
            GeneralName::Invalid(..) => Form::Invalid,
            _ => Form::Unprocessed,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Form::Dns => "DNS name",
            Form::Email => "email address",
            Form::Ip => "IP address",
            Form::Directory => "directory name",
            Form::Uri => "URI",
            Form::Unprocessed | Form::Invalid => "name",
        }
    }
}

/// A name a certificate carries: from its subjectAltName or its subject.
enum Name<'a> {
    General(&'a GeneralName<'a>),
    Subject(&'a X509Name<'a>),
    SubjectEmail(&'a str),
}

impl Name<'_> {
    fn form(&self) -> Form {
        match self {
            Name::General(g) => Form::of(g),
            Name::Subject(_) => Form::Directory,
            Name::SubjectEmail(_) => Form::Email,
        }
    }

    fn shown(&self) -> String {
        match self {
            Name::General(GeneralName::DNSName(s))
            | Name::General(GeneralName::RFC822Name(s))
            | Name::General(GeneralName::URI(s))
            | Name::SubjectEmail(s) => format!("{s:?}"),
            Name::General(GeneralName::IPAddress(b)) => ip_text(b),
            Name::General(GeneralName::DirectoryName(n)) => format!("\"{n}\""),
            Name::Subject(n) => format!("\"{n}\""),
            Name::General(other) => format!("{other:?}"),
        }
    }
}

fn ip_text(b: &[u8]) -> String {
    match b.len() {
        4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(b).unwrap_or_default()).to_string(),
        16 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(b).unwrap_or_default()).to_string(),
        _ => hex::encode(b),
    }
}

fn name_constraints<'c>(
    ca: &'c X509Certificate<'_>,
) -> Result<Option<&'c NameConstraints<'c>>, String> {
    match extension(ca, &OID_X509_EXT_NAME_CONSTRAINTS, "nameConstraints")? {
        Some(ParsedExtension::NameConstraints(nc)) => Ok(Some(nc)),
        _ => Ok(None),
    }
}

fn check_names(cert: &X509Certificate<'_>, nc: &NameConstraints<'_>) -> Result<(), String> {
    let permitted: Vec<&GeneralName<'_>> = nc
        .permitted_subtrees
        .iter()
        .flatten()
        .map(|s| &s.base)
        .collect();
    let excluded: Vec<&GeneralName<'_>> = nc
        .excluded_subtrees
        .iter()
        .flatten()
        .map(|s| &s.base)
        .collect();
    let mut names = Vec::new();
    if cert.subject().iter().next().is_some() {
        names.push(Name::Subject(cert.subject()));
    }
    for attr in cert.subject().iter_by_oid(&OID_PKCS9_EMAIL_ADDRESS) {
        match attr.as_str() {
            Ok(email) => names.push(Name::SubjectEmail(email)),
            Err(_) => return Err("an emailAddress in the subject is not a string".into()),
        }
    }
    let san = extension(cert, &OID_X509_EXT_SUBJECT_ALT_NAME, "subjectAltName")?;
    if let Some(ParsedExtension::SubjectAlternativeName(san)) = san {
        names.extend(san.general_names.iter().map(Name::General));
    }
    for name in &names {
        let form = name.form();
        let constrained = |list: &[&GeneralName<'_>]| list.iter().any(|c| Form::of(c) == form);
        if form == Form::Invalid {
            return Err(format!(
                "its subjectAltName entry {} does not parse, so it cannot be checked",
                name.shown()
            ));
        }
        if form == Form::Unprocessed {
            if constrained(&permitted) || constrained(&excluded) {
                return Err(format!(
                    "its subjectAltName {} is of a form whose constraints are not processed",
                    name.shown()
                ));
            }
            continue;
        }
        for c in excluded.iter().filter(|c| Form::of(c) == form) {
            if matches(name, c)? {
                return Err(format!(
                    "{} {} is within the excluded subtree {}",
                    form.label(),
                    name.shown(),
                    Name::General(c).shown()
                ));
            }
        }
        let mut of_form = permitted.iter().filter(|c| Form::of(c) == form).peekable();
        if of_form.peek().is_some() {
            let mut inside = false;
            for c in of_form {
                if matches(name, c)? {
                    inside = true;
                    break;
                }
            }
            if !inside {
                return Err(format!(
                    "{} {} is outside the permitted subtrees",
                    form.label(),
                    name.shown()
                ));
            }
        }
    }
    Ok(())
}

/// Whether `name` is within the subtree `constraint` of the same form; a name that cannot be
/// compared (an email without `@`, a URI without a host) is an error, not a silent match.
fn matches(name: &Name<'_>, constraint: &GeneralName<'_>) -> Result<bool, String> {
    match (name, constraint) {
        (Name::General(GeneralName::DNSName(n)), GeneralName::DNSName(c)) => Ok(dns_within(n, c)),
        (
            Name::General(GeneralName::RFC822Name(n)) | Name::SubjectEmail(n),
            GeneralName::RFC822Name(c),
        ) => email_within(n, c),
        (Name::General(GeneralName::IPAddress(n)), GeneralName::IPAddress(c)) => ip_within(n, c),
        (Name::General(GeneralName::DirectoryName(n)), GeneralName::DirectoryName(c)) => {
            Ok(directory_within(n, c))
        }
        (Name::Subject(n), GeneralName::DirectoryName(c)) => Ok(directory_within(n, c)),
        (Name::General(GeneralName::URI(n)), GeneralName::URI(c)) => uri_within(n, c),
        _ => Ok(false),
    }
}

/// 4.2.1.10: a DNS constraint is satisfied by the name itself and by any name with labels added
/// on the left; a leading period (common practice) restricts it to names with labels added.
fn dns_within(name: &str, constraint: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let constraint = constraint.trim_end_matches('.').to_ascii_lowercase();
    if constraint.is_empty() {
        return true;
    }
    if constraint.starts_with('.') {
        name.ends_with(&constraint)
    } else {
        name == constraint || name.ends_with(&format!(".{constraint}"))
    }
}

/// 4.2.1.10: `user@host` is one mailbox, `host` every mailbox on that host, `.domain` every
/// mailbox on a host in that domain. Local parts compare exactly, hosts without case.
fn email_within(name: &str, constraint: &str) -> Result<bool, String> {
    let Some((local, host)) = name.rsplit_once('@') else {
        return Err(format!("email address {name:?} has no @"));
    };
    Ok(
        if let Some((c_local, c_host)) = constraint.rsplit_once('@') {
            local == c_local && host.eq_ignore_ascii_case(c_host)
        } else if constraint.starts_with('.') {
            host.to_ascii_lowercase()
                .ends_with(&constraint.to_ascii_lowercase())
        } else {
            host.eq_ignore_ascii_case(constraint)
        },
    )
}

/// 4.2.1.10: an IP constraint is an address and a mask (8 octets for IPv4, 32 for IPv6); an
/// address of the other family never matches.
fn ip_within(name: &[u8], constraint: &[u8]) -> Result<bool, String> {
    if !matches!(constraint.len(), 8 | 32) {
        return Err(format!(
            "an IP address constraint has {} octets (expected 8 or 32)",
            constraint.len()
        ));
    }
    if !matches!(name.len(), 4 | 16) {
        return Err(format!(
            "an IP address has {} octets (expected 4 or 16)",
            name.len()
        ));
    }
    let (base, mask) = constraint.split_at(constraint.len() / 2);
    Ok(name.len() == base.len()
        && name
            .iter()
            .zip(base)
            .zip(mask)
            .all(|((n, b), m)| n & m == b & m))
}

/// 4.2.1.10 and 7.1: the constraint's RDNs are a prefix of the name's, attribute values compared
/// without case and with runs of spaces collapsed.
fn directory_within(name: &X509Name<'_>, constraint: &X509Name<'_>) -> bool {
    let mut names = name.iter();
    constraint
        .iter()
        .all(|c| names.next().is_some_and(|n| same_rdn(n, c)))
}

fn same_rdn(a: &RelativeDistinguishedName<'_>, b: &RelativeDistinguishedName<'_>) -> bool {
    let a: Vec<&AttributeTypeAndValue<'_>> = a.iter().collect();
    let b: Vec<&AttributeTypeAndValue<'_>> = b.iter().collect();
    a.len() == b.len()
        && b.iter().all(|y| {
            a.iter()
                .any(|x| x.attr_type() == y.attr_type() && same_value(x, y))
        })
}

fn same_value(a: &AttributeTypeAndValue<'_>, b: &AttributeTypeAndValue<'_>) -> bool {
    match (a.as_str(), b.as_str()) {
        (Ok(x), Ok(y)) => fold(x) == fold(y),
        _ => a.attr_value().tag() == b.attr_value().tag() && a.as_slice() == b.as_slice(),
    }
}

fn fold(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// 4.2.1.10: a URI constraint names a host (exactly) or, with a leading period, a domain (any
/// host inside it); it is compared with the URI's host. A URI without a host cannot satisfy it.
fn uri_within(uri: &str, constraint: &str) -> Result<bool, String> {
    let host = uri_host(uri).ok_or_else(|| format!("URI {uri:?} has no host"))?;
    let host = host.to_ascii_lowercase();
    let constraint = constraint.to_ascii_lowercase();
    Ok(if constraint.starts_with('.') {
        host.ends_with(&constraint)
    } else {
        host == constraint
    })
}

fn uri_host(uri: &str) -> Option<&str> {
    let (_, rest) = uri.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split_once(']').map(|(h, _)| h)?
    } else {
        host_port.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_constraints_match_the_domain_and_names_below_it() {
        assert!(dns_within("example.com", "example.com"));
        assert!(dns_within("Host.Example.com", "example.COM"));
        assert!(!dns_within("badexample.com", "example.com"));
        assert!(!dns_within("example.com", ".example.com"));
        assert!(dns_within("a.example.com", ".example.com"));
        assert!(dns_within("anything", ""));
    }

    #[test]
    fn email_constraints_match_mailbox_host_or_domain() {
        assert_eq!(email_within("a@example.com", "a@EXAMPLE.com"), Ok(true));
        assert_eq!(email_within("A@example.com", "a@example.com"), Ok(false));
        assert_eq!(email_within("a@example.com", "example.com"), Ok(true));
        assert_eq!(email_within("a@sub.example.com", "example.com"), Ok(false));
        assert_eq!(email_within("a@sub.example.com", ".example.com"), Ok(true));
        assert!(email_within("no-at-sign", "example.com").is_err());
    }

    #[test]
    fn ip_constraints_compare_under_the_mask_and_never_across_families() {
        let net10 = [10, 0, 0, 0, 255, 0, 0, 0];
        assert_eq!(ip_within(&[10, 1, 2, 3], &net10), Ok(true));
        assert_eq!(ip_within(&[11, 1, 2, 3], &net10), Ok(false));
        assert_eq!(ip_within(&[0; 16], &net10), Ok(false));
        assert!(ip_within(&[10, 1, 2, 3], &[10, 0, 0, 0]).is_err());
    }

    #[test]
    fn uri_constraints_compare_the_host() {
        assert_eq!(
            uri_within("https://user@Host.example.com:8443/p", "host.example.com"),
            Ok(true)
        );
        assert_eq!(
            uri_within("spiffe://a.example.com/x", ".example.com"),
            Ok(true)
        );
        assert_eq!(uri_within("https://[::1]:443/", "::1"), Ok(true));
        assert_eq!(uri_within("https://example.com", ".example.com"), Ok(false));
        assert!(uri_within("urn:uuid:1234", "example.com").is_err());
    }
}
