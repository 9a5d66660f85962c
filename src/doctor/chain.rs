//! Check 2: the chain is ordered, at most 5, each link verified, reaches the trust anchor, unrevoked, in date.
//!
//! The chain is the one the agent would send ([`certs::build_chain`] over the candidates check 1
//! read): issuer order, each link's signature verified, at most [`certs::MAX_CHAIN`]. With
//! `--trust-anchor-pem` (read into `cx.anchors`, checked as the service checks an anchor: 1 or 2
//! CA certificates allowed to sign certificates) the chain must reach an anchor, and the missing
//! link is named when it does not. With `--crl`, each CRL ([`Crl`], PEM or DER) is verified with
//! the CA of the anchor or the chain that issued it, and a listed leaf or intermediate fails.

use super::identity::{date, days_left, describe};
use super::{Check, Context, Finding, Report};
use crate::certs::{self, Certificate};
use std::path::Path;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer as _;
use x509_parser::revocation_list::CertificateRevocationList;

/// Most certificates a trust anchor holds (the service's limit).
pub const MAX_ANCHOR_CERTIFICATES: usize = 2;

/// Check 2: reads `--trust-anchor-pem` into `cx.anchors`; checks the chain above `cx.leaf`.
pub fn check(cx: &mut Context, report: &mut Report) {
    read_anchors(cx, report);
    let Some(leaf) = cx.leaf.clone() else {
        report.push(Finding::skipped(
            Check::Chain,
            "chain",
            "no leaf certificate to build the chain from (check 1 says why)",
        ));
        return;
    };
    let leaf_source = cx
        .subject
        .key
        .certificate
        .as_deref()
        .map(|c| crate::text::redact(c).into_owned())
        .unwrap_or_default();
    let leaf_name = describe(&leaf_source, &leaf);
    let chain = match certs::build_chain(&leaf, cx.chain.clone()) {
        Ok(chain) => chain,
        Err(e) => {
            report.push(Finding::failed(
                Check::Chain,
                format!("chain above {leaf_name}"),
                crate::text::error_chain(&e),
                format!(
                    "give at most {} intermediates (--intermediates and the certificate file \
                     after the leaf): leave out the certificates the trust anchor already holds",
                    certs::MAX_CHAIN
                ),
            ));
            return;
        }
    };
    order_findings(&leaf, &leaf_name, &chain, &cx.chain, report);
    anchor_findings(cx, &leaf, &leaf_name, &chain, report);
    for c in &chain {
        validity_finding(c, &name(c), cx.now, cx.options.warn_days, report);
    }
    crl_findings(cx, &leaf, &leaf_name, &chain, report);
}

/// `certificate 'SUBJECT' (serial N)`: a chain or anchor certificate.
fn name(c: &Certificate) -> String {
    format!(
        "certificate '{}' (serial {})",
        c.subject(),
        c.serial_decimal()
    )
}

/// The encoded subject and issuer names (chain building and CRLs match these bytes).
fn raw_names(c: &Certificate) -> Option<(Vec<u8>, Vec<u8>)> {
    let (_, x) = X509Certificate::from_der(c.der()).ok()?;
    Some((x.subject().as_raw().to_vec(), x.issuer().as_raw().to_vec()))
}

/// `--trust-anchor-pem`: 1 or 2 CA certificates with keyCertSign (as the service's
/// CreateTrustAnchor checks), each in date.
fn read_anchors(cx: &mut Context, report: &mut Report) {
    let Some(path) = cx.options.trust_anchor_pem.as_deref() else {
        return;
    };
    let object = format!("--trust-anchor-pem {}", path.to_string_lossy());
    let anchors = match certs::load_pem_file(path) {
        Ok(a) => a,
        Err(e) => {
            report.push(Finding::failed(
                Check::Chain,
                object,
                crate::text::error_chain(&e),
                "give --trust-anchor-pem the PEM bundle registered as the trust anchor \
                 (-----BEGIN CERTIFICATE-----)",
            ));
            return;
        }
    };
    if anchors.len() > MAX_ANCHOR_CERTIFICATES {
        report.push(Finding::failed(
            Check::Chain,
            &object,
            format!(
                "holds {} certificates; a trust anchor holds at most {MAX_ANCHOR_CERTIFICATES}",
                anchors.len()
            ),
            "keep only the CA certificate(s) registered as the trust anchor",
        ));
    }
    for a in &anchors {
        let key_cert_sign = match X509Certificate::from_der(a.der()) {
            Ok((_, x)) => match x.key_usage() {
                Ok(Some(ku)) => ku.value.key_cert_sign(),
                Ok(None) => true,
                Err(_) => false,
            },
            Err(_) => false,
        };
        let anchor = format!("trust anchor {}", name(a));
        if !a.is_ca() {
            report.push(Finding::failed(
                Check::Chain,
                &anchor,
                "is not a CA certificate (basicConstraints CA:TRUE missing); a trust anchor must \
                 be one",
                "register the certificate of the CA that issues the leaves (or the chain's root)",
            ));
        } else if !key_cert_sign {
            report.push(Finding::failed(
                Check::Chain,
                &anchor,
                "has a keyUsage without keyCertSign; a trust anchor must be allowed to sign \
                 certificates",
                "register a CA certificate whose keyUsage includes keyCertSign",
            ));
        } else {
            report.push(Finding::passed(
                Check::Chain,
                &anchor,
                "is a CA certificate allowed to sign certificates (CA:TRUE, keyCertSign)",
            ));
        }
        validity_finding(a, &anchor, cx.now, cx.options.warn_days, report);
    }
    cx.anchors = anchors;
}

/// The order and the links; a same-named certificate whose key did not sign the link.
fn order_findings(
    leaf: &Certificate,
    leaf_name: &str,
    chain: &[Certificate],
    candidates: &[Certificate],
    report: &mut Report,
) {
    if chain.is_empty() {
        report.push(Finding::passed(
            Check::Chain,
            "chain",
            format!(
                "no intermediate issued {leaf_name}: it is sent alone, so the trust anchor must \
                 have issued it"
            ),
        ));
    } else {
        let links: Vec<String> = std::iter::once(leaf)
            .chain(chain)
            .map(|c| format!("'{}'", c.subject()))
            .collect();
        report.push(Finding::passed(
            Check::Chain,
            "chain",
            format!(
                "{} intermediate(s) in issuer order (at most {}), each link's signature \
                 verified: {}",
                chain.len(),
                certs::MAX_CHAIN,
                links.join(" <- ")
            ),
        ));
    }
    let mut unused: Vec<&Certificate> = Vec::new();
    for c in candidates {
        if c != leaf && !chain.contains(c) && !unused.contains(&c) {
            unused.push(c);
        }
    }
    let top = chain.last().unwrap_or(leaf);
    for c in &unused {
        if c.subject() == top.issuer() && !top.is_issued_by(c) {
            report.push(Finding::failed(
                Check::Chain,
                if chain.is_empty() {
                    leaf_name.to_string()
                } else {
                    name(top)
                },
                format!(
                    "is issued by '{}', but its signature does not verify with the key of the \
                     given certificate of that name ({}): another CA with the same name",
                    top.issuer(),
                    name(c)
                ),
                "give the certificate of the CA that actually issued it (--intermediates)",
            ));
        }
    }
    let extra = unused.iter().filter(|c| !c.is_self_signed()).count();
    if extra > 0 {
        report.push(Finding::passed(
            Check::Chain,
            "chain",
            format!("{extra} other given certificate(s) did not issue this chain and are not sent"),
        ));
    }
}

/// With `--trust-anchor-pem`: where the chain reaches an anchor, or its missing link.
fn anchor_findings(
    cx: &Context,
    leaf: &Certificate,
    leaf_name: &str,
    chain: &[Certificate],
    report: &mut Report,
) {
    if cx.options.trust_anchor_pem.is_none() {
        report.push(Finding::skipped(
            Check::Chain,
            "trust anchor",
            "not checked whether the chain reaches the trust anchor: pass --trust-anchor-pem \
             FILE (the CA bundle registered as the trust anchor)",
        ));
        return;
    }
    if cx.anchors.is_empty() {
        // Reading it failed: already reported.
        return;
    }
    let path: Vec<&Certificate> = std::iter::once(leaf).chain(chain).collect();
    for c in &path {
        if let Some(a) = cx.anchors.iter().find(|a| *a == *c || c.is_issued_by(a)) {
            report.push(Finding::passed(
                Check::Chain,
                "trust anchor",
                format!("the chain reaches {} of --trust-anchor-pem", name(a)),
            ));
            return;
        }
    }
    let top = path.last().copied().unwrap_or(leaf);
    let top_name = if chain.is_empty() {
        leaf_name.to_string()
    } else {
        name(top)
    };
    let issuer = top.issuer();
    let fix_missing = format!(
        "add the certificate of '{issuer}' to --intermediates (or after the leaf in the \
         certificate file), or register the CA that issued it as the trust anchor"
    );
    if let Some(a) = cx.anchors.iter().find(|a| a.subject() == issuer) {
        report.push(Finding::failed(
            Check::Chain,
            top_name,
            format!(
                "is issued by '{issuer}', but its signature does not verify with the key of {} \
                 of --trust-anchor-pem: another CA with the same name",
                name(a)
            ),
            "register the CA certificate that actually issued it as the trust anchor",
        ));
    } else if let Some(root) = cx
        .chain
        .iter()
        .find(|c| c.is_self_signed() && top.is_issued_by(c))
    {
        report.push(Finding::failed(
            Check::Chain,
            top_name,
            format!(
                "is issued by root {}, which is given but is not in --trust-anchor-pem",
                name(root)
            ),
            "register that root as the trust anchor (or check --trust-anchor-pem is the right \
             bundle)",
        ));
    } else if top.is_self_signed() {
        report.push(Finding::failed(
            Check::Chain,
            top_name,
            "is self-signed and is not in --trust-anchor-pem",
            "register it as the trust anchor, or use a certificate issued under the trust anchor",
        ));
    } else {
        report.push(Finding::failed(
            Check::Chain,
            top_name,
            format!(
                "is issued by '{issuer}', which is neither in --intermediates nor in \
                 --trust-anchor-pem"
            ),
            fix_missing,
        ));
    }
}

/// A chain or anchor certificate's own validity: failed outside it, a warning within `warn_days`
/// of its end.
fn validity_finding(
    c: &Certificate,
    object: &str,
    now: time::OffsetDateTime,
    warn_days: u32,
    report: &mut Report,
) {
    let valid = format!(
        "valid from {} until {}",
        date(c.not_before()),
        date(c.not_after())
    );
    if c.not_before() > now {
        report.push(Finding::failed(
            Check::Chain,
            object,
            format!(
                "is not valid before {} (it is {} now)",
                date(c.not_before()),
                date(now)
            ),
            "wait until it is valid, or check this host's clock",
        ));
    } else if c.not_after() < now {
        report.push(Finding::failed(
            Check::Chain,
            object,
            format!(
                "expired on {} (it is {} now)",
                date(c.not_after()),
                date(now)
            ),
            "renew this CA certificate and give the new one",
        ));
    } else if c.not_after() - now < time::Duration::days(i64::from(warn_days)) {
        report.push(Finding::warning(
            Check::Chain,
            object,
            format!(
                "expires on {}, in {} day(s) (under --warn-days {warn_days})",
                date(c.not_after()),
                days_left(c.not_after(), now)
            ),
            format!("renew this CA certificate before {}", date(c.not_after())),
        ));
    } else {
        report.push(Finding::passed(Check::Chain, object, valid));
    }
}

/// With `--crl`: each CRL verified by the CA that issued it and checked for the leaf and the
/// intermediates.
fn crl_findings(
    cx: &Context,
    leaf: &Certificate,
    leaf_name: &str,
    chain: &[Certificate],
    report: &mut Report,
) {
    if cx.options.crls.is_empty() {
        report.push(Finding::skipped(
            Check::Chain,
            "revocation",
            "not checked: pass --crl FILE (the CRLs imported onto the trust anchor)",
        ));
        return;
    }
    // The CAs that may have issued a CRL: the anchors and the intermediates.
    let cas: Vec<&Certificate> = cx.anchors.iter().chain(chain).collect();
    // The certificates a CRL may revoke, with their names.
    let subjects: Vec<(&Certificate, String)> = std::iter::once((leaf, leaf_name.to_string()))
        .chain(chain.iter().map(|c| (c, name(c))))
        .collect();
    for path in &cx.options.crls {
        let object = format!("CRL {}", path.to_string_lossy());
        let crl = match read_crl(path) {
            Ok(crl) => crl,
            Err(cause) => {
                report.push(Finding::failed(
                    Check::Chain,
                    object,
                    cause,
                    "give --crl a CRL in PEM (-----BEGIN X509 CRL-----) or DER form as the CA \
                     exported it (`openssl crl -in FILE -noout -text` shows it)",
                ));
                continue;
            }
        };
        let named: Vec<&&Certificate> = cas
            .iter()
            .filter(|c| raw_names(c).is_some_and(|(s, _)| s == crl.issuer_raw))
            .collect();
        let Some(ca) = named.iter().find(|c| crl.is_signed_by(c)) else {
            if named.is_empty() {
                report.push(Finding::warning(
                    Check::Chain,
                    object,
                    format!(
                        "is issued by '{}', which is neither the trust anchor nor a CA of this \
                         chain: it revokes nothing here",
                        crl.issuer
                    ),
                    "give the CRL of the CA that issued the leaf or an intermediate (and \
                     --trust-anchor-pem, so its issuer is known)",
                ));
            } else {
                report.push(Finding::failed(
                    Check::Chain,
                    object,
                    format!(
                        "names '{}' as its issuer, but its signature does not verify with the \
                         key of {}",
                        crl.issuer,
                        name(named[0])
                    ),
                    "export the CRL again from that CA: Roles Anywhere cannot use this one",
                ));
            }
            continue;
        };
        if let Some(next) = crl.next_update
            && next < cx.now
        {
            report.push(Finding::warning(
                Check::Chain,
                &object,
                format!(
                    "is past its nextUpdate {} (it is {} now)",
                    date(next),
                    date(cx.now)
                ),
                "import a fresh CRL from the CA onto the trust anchor",
            ));
        }
        if crl.this_update > cx.now {
            report.push(Finding::warning(
                Check::Chain,
                &object,
                format!(
                    "is dated in the future: thisUpdate {} (it is {} now)",
                    date(crl.this_update),
                    date(cx.now)
                ),
                "check this machine's clock, or the CA's: a CRL is issued at its thisUpdate",
            ));
        }
        let mut applied = false;
        for (cert, cert_name) in &subjects {
            let by_this_ca =
                raw_names(cert).is_some_and(|(_, i)| i == crl.issuer_raw) && cert.is_issued_by(ca);
            if !by_this_ca {
                continue;
            }
            applied = true;
            let serial = cert.serial_decimal();
            match crl.revoked.iter().find(|r| r.serial_decimal == serial) {
                Some(r) => report.push(Finding::failed(
                    Check::Chain,
                    cert_name.as_str(),
                    format!(
                        "revoked on {}: listed by {object} of '{}'",
                        date(r.date),
                        crl.issuer
                    ),
                    "issue a new certificate (and, for a revoked intermediate, a new \
                     intermediate) and use it instead",
                )),
                None => report.push(Finding::passed(
                    Check::Chain,
                    cert_name.as_str(),
                    format!(
                        "not revoked: {object} of '{}' (thisUpdate {}, {} entr{}, signature \
                         verified) does not list serial {serial}",
                        crl.issuer,
                        date(crl.this_update),
                        crl.revoked.len(),
                        if crl.revoked.len() == 1 { "y" } else { "ies" }
                    ),
                )),
            }
        }
        if !applied {
            report.push(Finding::passed(
                Check::Chain,
                object,
                format!(
                    "signature verified with {}, but that CA issued no certificate of this chain",
                    name(ca)
                ),
            ));
        }
    }
}

/// Reads and parses one `--crl` file; the error is the finding's cause.
fn read_crl(path: &Path) -> Result<Crl, String> {
    let data = crate::userfile::read(path, crate::userfile::Kind::Crl)
        .map_err(|e| format!("cannot read it: {}", crate::text::error_chain(&e)))?;
    Crl::parse(&data).map_err(|e| e.to_string())
}

/// A certificate revocation list, read for the fields the check needs.
#[derive(Debug, Clone)]
pub struct Crl {
    der: Vec<u8>,
    /// The issuer's name as encoded (what a CA's subject must equal).
    pub issuer_raw: Vec<u8>,
    /// The issuer's name for messages.
    pub issuer: String,
    /// thisUpdate.
    pub this_update: time::OffsetDateTime,
    /// nextUpdate, when present.
    pub next_update: Option<time::OffsetDateTime>,
    /// The revoked certificates.
    pub revoked: Vec<Revoked>,
}

/// One entry of a CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// The serial number in base 10 (as [`Certificate::serial_decimal`]).
    pub serial_decimal: String,
    /// When it was revoked.
    pub date: time::OffsetDateTime,
}

/// Why a CRL cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CrlError {
    /// A PEM `X509 CRL` block that is not valid PEM.
    #[error("malformed PEM: {0}")]
    Pem(String),
    /// PEM text without an `X509 CRL` block.
    #[error("holds no X509 CRL PEM block (expected -----BEGIN X509 CRL-----)")]
    NoCrl,
    /// More than one CRL in one file.
    #[error("holds {0} X509 CRL blocks; give each CRL to its own --crl")]
    Several(usize),
    /// DER that is not a CRL.
    #[error("cannot parse it as an X.509 CRL: {0}")]
    Parse(String),
    /// Bytes after the CRL's DER.
    #[error("has {0} bytes of trailing data after the CRL")]
    TrailingData(usize),
}

impl Crl {
    /// Parses a CRL in PEM (`X509 CRL`) or DER form. Never panics.
    pub fn parse(data: &[u8]) -> Result<Crl, CrlError> {
        let der = if data.trim_ascii_start().starts_with(b"-----BEGIN") {
            let mut found = Vec::new();
            for block in crate::pem::blocks(data) {
                match block {
                    Ok(b) if b.label() == "X509 CRL" => found.push(
                        b.decode()
                            .map_err(|e| CrlError::Pem(e.to_string()))?
                            .to_vec(),
                    ),
                    Err(e) if e.label() == "X509 CRL" => {
                        return Err(CrlError::Pem(e.to_string()));
                    }
                    _ => {}
                }
            }
            match found.len() {
                0 => return Err(CrlError::NoCrl),
                1 => found.remove(0),
                n => return Err(CrlError::Several(n)),
            }
        } else {
            data.to_vec()
        };
        let (rest, crl) = CertificateRevocationList::from_der(&der).map_err(|e| {
            CrlError::Parse(match e {
                x509_parser::nom::Err::Incomplete(_) => "truncated".to_string(),
                x509_parser::nom::Err::Error(e) | x509_parser::nom::Err::Failure(e) => {
                    e.to_string()
                }
            })
        })?;
        if !rest.is_empty() {
            return Err(CrlError::TrailingData(rest.len()));
        }
        let revoked = crl
            .iter_revoked_certificates()
            .map(|r| Revoked {
                serial_decimal: r.serial().to_str_radix(10),
                date: r.revocation_date.to_datetime(),
            })
            .collect();
        Ok(Crl {
            issuer_raw: crl.issuer().as_raw().to_vec(),
            issuer: crl.issuer().to_string(),
            this_update: crl.last_update().to_datetime(),
            next_update: crl.next_update().map(|t| t.to_datetime()),
            revoked,
            der: der.clone(),
        })
    }

    /// True when `ca`'s subject is this CRL's issuer and its key verifies the CRL's signature.
    pub fn is_signed_by(&self, ca: &Certificate) -> bool {
        let (Ok((_, crl)), Ok((_, x))) = (
            CertificateRevocationList::from_der(&self.der),
            X509Certificate::from_der(ca.der()),
        ) else {
            return false;
        };
        if x.subject().as_raw() != crl.issuer().as_raw() {
            return false;
        }
        match crl.verify_signature(x.public_key()) {
            Ok(()) => true,
            // ring has no P-521 and no ECDSA with SHA-512: as for certificates (certs.rs).
            Err(x509_parser::error::X509Error::SignatureUnsupportedAlgorithm) => {
                crate::certs::verify_ecdsa_fallback(
                    &crl.signature_algorithm.algorithm.to_id_string(),
                    crl.tbs_cert_list.as_ref(),
                    &crl.signature_value.data,
                    ca.public_key(),
                )
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rolesanywhere_emulator::ca::{Ca, IssueRequest, KeySource, KeyType};

    /// A root CA, a leaf it issued (revoked) and another (not), and the CRL listing the first.
    struct Pki {
        _dir: tempfile::TempDir,
        ca: Certificate,
        revoked: Certificate,
        good: Certificate,
        crl_pem: Vec<u8>,
    }

    fn cert(pem: &str) -> Certificate {
        certs::parse_pem_bundle(pem.as_bytes(), "test")
            .unwrap()
            .remove(0)
    }

    fn pki() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::init(&dir.path().join("root"), KeyType::EcP256, "CRL Root").unwrap();
        let issue = |cn: &str| {
            ca.issue(&IssueRequest::new(
                &format!("CN={cn}"),
                KeySource::NewKey(KeyType::EcP256),
            ))
            .unwrap()
            .cert_pem
        };
        let revoked = issue("revoked");
        let good = issue("good");
        let crl_path = ca.revoke(&revoked).unwrap();
        Pki {
            crl_pem: std::fs::read(crl_path).unwrap(),
            ca: cert(&ca.cert_pem()),
            revoked: cert(&revoked),
            good: cert(&good),
            _dir: dir,
        }
    }

    fn der_of(pem: &[u8]) -> Vec<u8> {
        crate::pem::blocks(pem)
            .next()
            .unwrap()
            .unwrap()
            .decode()
            .unwrap()
            .to_vec()
    }

    #[test]
    fn parses_pem_and_der_and_verifies_with_the_issuer() {
        let p = pki();
        let crl = Crl::parse(&p.crl_pem).unwrap();
        assert_eq!(crl.issuer, "CN=CRL Root");
        assert_eq!(crl.revoked.len(), 1);
        assert_eq!(crl.revoked[0].serial_decimal, p.revoked.serial_decimal());
        assert!(crl.next_update.is_some());
        assert!(crl.is_signed_by(&p.ca));
        // A leaf has another name and key.
        assert!(!crl.is_signed_by(&p.good));

        let der = Crl::parse(&der_of(&p.crl_pem)).unwrap();
        assert_eq!(der.revoked, crl.revoked);
        assert!(der.is_signed_by(&p.ca));
    }

    #[test]
    fn an_impostor_with_the_same_name_does_not_verify() {
        let p = pki();
        let dir = tempfile::tempdir().unwrap();
        let other = Ca::init(&dir.path().join("x"), KeyType::EcP256, "CRL Root").unwrap();
        let other = cert(&other.cert_pem());
        assert_eq!(other.subject(), p.ca.subject());
        assert!(!Crl::parse(&p.crl_pem).unwrap().is_signed_by(&other));
    }

    #[test]
    fn malformed_input_is_an_error_never_a_panic() {
        let p = pki();
        let der = der_of(&p.crl_pem);
        assert!(matches!(Crl::parse(b""), Err(CrlError::Parse(_))));
        assert!(matches!(Crl::parse(b"garbage"), Err(CrlError::Parse(_))));
        assert_eq!(
            Crl::parse(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
                .unwrap_err(),
            CrlError::NoCrl
        );
        assert!(matches!(
            Crl::parse(b"-----BEGIN X509 CRL-----\n!!!!\n-----END X509 CRL-----\n"),
            Err(CrlError::Pem(_))
        ));
        assert!(matches!(
            Crl::parse(b"-----BEGIN X509 CRL-----\nAAAA\n"),
            Err(CrlError::Pem(_))
        ));
        let two = [p.crl_pem.clone(), p.crl_pem.clone()].concat();
        assert_eq!(Crl::parse(&two).unwrap_err(), CrlError::Several(2));
        let mut trailing = der.clone();
        trailing.push(0);
        assert_eq!(
            Crl::parse(&trailing).unwrap_err(),
            CrlError::TrailingData(1)
        );
        for len in 0..der.len() {
            assert!(Crl::parse(&der[..len]).is_err(), "prefix {len}");
        }
        for i in 0..der.len() {
            let mut bad = der.clone();
            bad[i] ^= 0xff;
            if let Ok(crl) = Crl::parse(&bad) {
                let _ = crl.is_signed_by(&p.ca);
            }
        }
    }

    #[test]
    fn errors_read_as_causes() {
        assert_eq!(
            CrlError::NoCrl.to_string(),
            "holds no X509 CRL PEM block (expected -----BEGIN X509 CRL-----)"
        );
        assert_eq!(
            CrlError::TrailingData(3).to_string(),
            "has 3 bytes of trailing data after the CRL"
        );
    }
}
