//! Check 1: the key opens (file / PKCS#11 / TPM) and matches an end-entity certificate the service accepts.
//!
//! The certificate is read first and on its own (a file, or the token of a `pkcs11:` URI), so a key
//! that does not open still leaves the certificate to the later checks. The key is opened once,
//! through the same code `credential-process` uses, with the same PIN and password sources (a
//! prompt only on a real terminal, as there): a wrong PIN is reported, never tried again. What
//! the service refuses about a leaf is [`certs::leaf_problems`]'s to say; here each requirement
//! gets its own line, passed or not.

use super::{Check, Context, Finding, Report};
use crate::certs::{self, Certificate, LeafProblem};
use crate::signer::{self, Identity, KeyOptions, KeySource, Signer, pkcs11};
use std::path::Path;

/// Check 1: fills `cx.leaf`, `cx.chain` (the chain candidates as read) and `cx.identity`.
pub fn check(cx: &mut Context, report: &mut Report) {
    let opts = cx.subject.key.clone();
    let mut certificates = read_certificates(&opts, report);
    let key = open_key(&opts, cx.now, &mut certificates, report);
    if certificates.leaf.is_none() && !certificates.reported {
        report.push(Finding::failed(
            Check::Identity,
            "--certificate",
            "no certificate to check: none was given and the key source carries none",
            "give --certificate a PEM file (leaf first) or a pkcs11: URI",
        ));
    }
    if let (Some(signer), None) = (&key, &certificates.leaf) {
        report.push(Finding::passed(
            Check::Identity,
            format!("private key {}", signer.describe()),
            "opens (there is no certificate to match it against)",
        ));
    }
    if let Some(leaf) = &certificates.leaf {
        let name = describe(&certificates.source, leaf);
        if let Some(signer) = &key {
            key_matches(signer.as_ref(), leaf, &name, report);
        }
        leaf_findings(leaf, &name, cx.now, cx.options.warn_days, report);
    }
    cx.chain = certificates.candidates.clone();
    if let (Some(signer), Some(leaf)) = (key, certificates.leaf.clone())
        && signer.public_key() == leaf.public_key()
    {
        // The order the agent would send; the chain check says what is wrong when this fails.
        // A chain credential-process would refuse (over 5) leaves no identity: check 7 then says
        // so rather than send the leaf alone.
        if let Ok(chain) = certs::build_chain(&leaf, certificates.candidates) {
            cx.identity = Some(Identity {
                signer,
                leaf,
                chain,
            });
        }
    }
    cx.leaf = certificates.leaf;
}

/// The certificates the options name, as far as they could be read.
struct Certificates {
    /// The leaf.
    leaf: Option<Certificate>,
    /// How messages name where the leaf came from (a path, a redacted URI, a key file).
    source: String,
    /// Chain candidates: the rest of the certificate file, `--intermediates`, token or PKCS#12
    /// certificates.
    candidates: Vec<Certificate>,
    /// A failure about the certificate was already reported.
    reported: bool,
}

/// `--certificate` (when a file) and `--intermediates`, each failure a finding.
fn read_certificates(opts: &KeyOptions, report: &mut Report) -> Certificates {
    let mut out = Certificates {
        leaf: None,
        source: opts
            .certificate
            .as_deref()
            .map(|c| crate::text::redact(c).into_owned())
            .unwrap_or_default(),
        candidates: Vec::new(),
        reported: false,
    };
    if let Some(c) = opts
        .certificate
        .as_deref()
        .filter(|c| !pkcs11::is_pkcs11_uri(c))
    {
        match certs::load_pem_file(Path::new(c)) {
            Ok(found) => {
                let mut found = found.into_iter();
                out.leaf = found.next();
                out.candidates.extend(found);
            }
            Err(e) => {
                out.reported = true;
                report.push(Finding::failed(
                    Check::Identity,
                    format!("certificate {c}"),
                    crate::text::error_chain(&e),
                    "give --certificate a readable PEM file with the leaf certificate first \
                     (-----BEGIN CERTIFICATE-----)",
                ));
            }
        }
    }
    if let Some(p) = &opts.intermediates {
        match certs::load_pem_file(p) {
            Ok(found) => out.candidates.extend(found),
            Err(e) => report.push(Finding::failed(
                Check::Identity,
                format!("--intermediates {}", p.to_string_lossy()),
                crate::text::error_chain(&e),
                "give --intermediates a readable PEM bundle of the CA certificates between the \
                 leaf and the trust anchor",
            )),
        }
    }
    out
}

/// Opens the key once, as `credential-process` would; a `pkcs11:` certificate (or a PKCS#12 key
/// file's) is taken from where the key opened. A failure is a finding; the certificate of a token
/// is still read when the failure was not the login's.
fn open_key(
    opts: &KeyOptions,
    now: time::OffsetDateTime,
    certificates: &mut Certificates,
    report: &mut Report,
) -> Option<Box<dyn Signer>> {
    let token_certificate = opts
        .certificate
        .as_deref()
        .is_some_and(pkcs11::is_pkcs11_uri);
    let source = match KeySource::from_options(opts) {
        Ok(s) => s,
        Err(e) => {
            report.push(key_failure(opts, &e));
            return None;
        }
    };
    let opened: Result<Box<dyn Signer>, signer::Error> = match source {
        KeySource::Pkcs11(_) if token_certificate || certificates.leaf.is_some() => {
            match pkcs11::open(opts, certificates.leaf.as_ref()) {
                Ok(o) => {
                    if certificates.leaf.is_none() {
                        certificates.leaf = Some(o.leaf);
                    }
                    certificates.candidates.extend(o.token_certificates);
                    Ok(Box::new(o.signer))
                }
                Err(e) => Err(e.into()),
            }
        }
        KeySource::File(path) if opts.certificate.is_none() => {
            // No --certificate: a PKCS#12 file carries it; open it the one way that reads it.
            match signer::open(opts) {
                Ok(identity) => {
                    certificates.source = path.to_string_lossy().into_owned();
                    certificates.leaf = Some(identity.leaf);
                    certificates.candidates.extend(identity.chain);
                    Ok(identity.signer)
                }
                Err(signer::Error::NoCertificate) => {
                    // The key itself may be fine: say so, then say the certificate is missing.
                    signer::open_key(opts)
                }
                Err(e) => Err(e),
            }
        }
        _ => signer::open_key(opts),
    };
    match opened {
        Ok(s) => Some(s),
        Err(e) => {
            report.push(key_failure(opts, &e));
            if token_certificate && certificates.leaf.is_none() {
                if is_login_failure(&e) {
                    certificates.reported = true;
                    report.push(Finding::skipped(
                        Check::Identity,
                        format!("certificate {}", certificates.source),
                        "not read: the login above failed, and it is not tried again (wrong PINs \
                         count towards locking the token); fix the PIN source and run doctor again",
                    ));
                } else {
                    token_leaf(opts, now, certificates, report);
                }
            }
            None
        }
    }
}

/// A wrong or missing PIN: the certificate is then not looked up again, as that may log in again.
fn is_login_failure(e: &signer::Error) -> bool {
    matches!(
        e,
        signer::Error::Pkcs11(pkcs11::Error::Login { .. } | pkcs11::Error::Pin(_))
            | signer::Error::Secret(_)
    )
}

/// The leaf of a `pkcs11:` certificate URI when the key did not open: the one valid now issued
/// last, else the one issued last (as the identity chooses).
fn token_leaf(
    opts: &KeyOptions,
    now: time::OffsetDateTime,
    certificates: &mut Certificates,
    report: &mut Report,
) {
    match pkcs11::list_certificates(opts) {
        Ok(found) => {
            let valid = |c: &Certificate| c.not_before() <= now && now <= c.not_after();
            let mut all: Vec<Certificate> = found.into_iter().map(|(_, c)| c).collect();
            all.sort_by_key(|c| (valid(c), c.not_before()));
            certificates.leaf = all.pop();
        }
        Err(e) => {
            certificates.reported = true;
            report.push(Finding::failed(
                Check::Identity,
                format!("certificate {}", certificates.source),
                crate::text::error_chain(&e),
                "give --certificate a pkcs11: URI that selects the certificate on the token \
                 (list them with read-certificate-data)",
            ));
        }
    }
}

/// The finding for a key that did not open. The error names the object and the cause (never a
/// secret's value); the fix depends on what failed.
fn key_failure(opts: &KeyOptions, e: &signer::Error) -> Finding {
    let object = match (opts.private_key.as_deref(), opts.certificate.as_deref()) {
        (Some(k), _) => format!("private key {}", crate::text::redact(k)),
        (None, Some(c)) => format!("private key of certificate {}", crate::text::redact(c)),
        (None, None) => "private key".to_string(),
    };
    let fix = match e {
        signer::Error::NoPrivateKey => {
            "give --private-key: a key file, a pkcs11: URI or a TPM handle:0x81…"
        }
        signer::Error::File(signer::file::Error::WrongPassword { .. })
        | signer::Error::File(signer::file::Error::Password { .. })
        | signer::Error::File(signer::file::Error::PasswordMissing { .. })
        | signer::Error::Secret(_) => {
            "give the key file's password through --pkcs8-password-file (a readable file holding \
             only the password), --pkcs8-password or its environment variable"
        }
        signer::Error::Pkcs11(pkcs11::Error::Login { .. } | pkcs11::Error::Pin(_)) => {
            "check the PIN source (the URI's pin-source file, pin-value, or the PIN environment \
             variable): the token refused it, and a few more wrong PINs lock it"
        }
        _ => "fix what the cause names: credential-process fails the same way until then",
    };
    Finding::failed(Check::Identity, object, crate::text::error_chain(e), fix)
}

/// "key opens and matches", or the mismatch naming both.
fn key_matches(signer: &dyn Signer, leaf: &Certificate, name: &str, report: &mut Report) {
    match signer::identity::check_matches(signer, leaf.public_key(), name) {
        Ok(()) => report.push(Finding::passed(
            Check::Identity,
            format!("private key {}", signer.describe()),
            format!(
                "opens and matches {name} ({})",
                leaf.public_key().fingerprint()
            ),
        )),
        Err(signer::Error::CertificateKeyMismatch {
            key,
            key_fp,
            certificate,
            cert_fp,
        }) => report.push(Finding::failed(
            Check::Identity,
            format!("private key {key} ({key_fp})"),
            format!("opens but does not match {certificate}, whose key is {cert_fp}"),
            "give --private-key the key this certificate was issued for, or --certificate the \
             certificate issued for this key",
        )),
        Err(e) => report.push(Finding::failed(
            Check::Identity,
            format!("private key {}", signer.describe()),
            crate::text::error_chain(&e),
            "check that --private-key and --certificate belong together",
        )),
    }
}

/// `certificate SOURCE (serial N, SUBJECT)`.
pub(super) fn describe(source: &str, cert: &Certificate) -> String {
    if source.is_empty() {
        format!(
            "certificate {} (serial {})",
            cert.subject(),
            cert.serial_decimal()
        )
    } else {
        format!(
            "certificate {source} (serial {}, {})",
            cert.serial_decimal(),
            cert.subject()
        )
    }
}

/// `t` as `YYYY-MM-DDTHH:MM:SSZ`.
pub(super) fn date(t: time::OffsetDateTime) -> String {
    crate::text::utc_seconds(t)
}

/// Whole days from `now` to `t` (0 when past).
pub(super) fn days_left(t: time::OffsetDateTime, now: time::OffsetDateTime) -> i64 {
    (t - now).whole_days().max(0)
}

/// One finding per requirement the service has of a leaf.
fn leaf_findings(
    leaf: &Certificate,
    name: &str,
    now: time::OffsetDateTime,
    warn_days: u32,
    report: &mut Report,
) {
    let problems = certs::leaf_problems(leaf, now);
    let has = |f: &dyn Fn(&LeafProblem) -> bool| problems.iter().find(|p| f(p));
    let fail = |p: &LeafProblem, fix: &str| {
        Finding::failed(
            Check::Identity,
            name,
            format!(
                "{p}; Roles Anywhere needs {} (\"Untrusted signing certificate\")",
                p.requirement()
            ),
            fix,
        )
    };
    let reissue = "issue a new leaf certificate for this key";

    match has(&|p| matches!(p, LeafProblem::NotV3(_))) {
        Some(p) => report.push(fail(
            p,
            "issue the certificate again as X.509 v3 (with extensions)",
        )),
        None => report.push(Finding::passed(
            Check::Identity,
            name,
            "is an X.509 v3 certificate",
        )),
    }
    match has(&|p| *p == LeafProblem::Ca) {
        Some(p) => report.push(fail(
            p,
            "sign with an end-entity certificate (basicConstraints CA:FALSE) issued by this CA, \
             not the CA's own certificate",
        )),
        None => report.push(Finding::passed(
            Check::Identity,
            name,
            "is an end-entity certificate (not CA:TRUE)",
        )),
    }
    match has(&|p| matches!(p, LeafProblem::NoDigitalSignature | LeafProblem::NoKeyUsage)) {
        Some(p) => report.push(fail(
            p,
            &format!("{reissue} with digitalSignature in its keyUsage"),
        )),
        None => report.push(Finding::passed(
            Check::Identity,
            name,
            "has keyUsage digitalSignature",
        )),
    }
    match has(&|p| matches!(p, LeafProblem::WeakSignature(_))) {
        Some(p) => report.push(fail(
            p,
            &format!("{reissue}, signed with SHA-256 or stronger"),
        )),
        None => report.push(Finding::passed(
            Check::Identity,
            name,
            format!(
                "is signed with {} (SHA-256 or stronger)",
                leaf.signature_algorithm_name()
            ),
        )),
    }
    let valid = format!(
        "valid from {} until {}",
        date(leaf.not_before()),
        date(leaf.not_after())
    );
    if let Some(p) = has(&|p| matches!(p, LeafProblem::NotYetValid(_))) {
        report.push(Finding::failed(
            Check::Identity,
            name,
            format!("{p} (it is {} now; {valid})", date(now)),
            "wait until it is valid, or check this host's clock",
        ));
    } else if let Some(p) = has(&|p| matches!(p, LeafProblem::Expired(_))) {
        report.push(Finding::failed(
            Check::Identity,
            name,
            format!("{p} (it is {} now; {valid})", date(now)),
            format!("{reissue} (or check this host's clock)"),
        ));
    } else if leaf.not_after() - now < time::Duration::days(i64::from(warn_days)) {
        report.push(Finding::warning(
            Check::Identity,
            name,
            format!(
                "expires on {}, in {} day(s) (under --warn-days {warn_days})",
                date(leaf.not_after()),
                days_left(leaf.not_after(), now)
            ),
            format!("renew it before {}", date(leaf.not_after())),
        ));
    } else {
        report.push(Finding::passed(Check::Identity, name, valid));
    }
}
