//! What `doctor` found: one finding per line, in check order, as text or JSON.
//!
//! Every string a finding carries may hold text from a certificate, a token, a policy file or a
//! server. It is escaped (and bounded) here, in the one place output is written, so no check can
//! forget to: the checks write plain text.

use serde::Serialize;
use std::io::Write;

/// The seven checks, in the order they run and print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// 1: the key opens and matches an end-entity certificate the service accepts.
    Identity,
    /// 2: the chain is ordered, verified, reaches the trust anchor, unrevoked, in date.
    Chain,
    /// 3: the ARNs (offline); the endpoint, TLS and the clock (`--live`).
    Request,
    /// 4: the principal tags and source identity the service derives from the certificate.
    Tags,
    /// 5: the role's trust policy evaluated for this certificate and trust anchor.
    TrustPolicy,
    /// 6: the session policy's size and what it allows.
    SessionPolicy,
    /// 7: one real CreateSession (`--live`).
    Live,
}

impl Check {
    /// Its number in the documentation and the issue (1..=7).
    pub fn number(self) -> u8 {
        self as u8 + 1
    }

    /// Its name in the output.
    pub fn name(self) -> &'static str {
        match self {
            Check::Identity => "identity",
            Check::Chain => "chain",
            Check::Request => "request",
            Check::Tags => "tags",
            Check::TrustPolicy => "trust-policy",
            Check::SessionPolicy => "session-policy",
            Check::Live => "live",
        }
    }
}

/// A finding's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing wrong.
    Passed,
    /// It will work, but something needs attention (expiry soon, a missing optional action…).
    Warning,
    /// CreateSession will fail (or the check could not be made for a reason that would make it
    /// fail).
    Failed,
    /// Not checked: an input is missing (`--trust-policy` not given, `--live` not asked…); says
    /// which.
    Skipped,
}

impl Status {
    /// Its word in the text output, padded to one width.
    fn word(self) -> &'static str {
        match self {
            Status::Passed => "passed ",
            Status::Warning => "warning",
            Status::Failed => "failed ",
            Status::Skipped => "skipped",
        }
    }
}

/// One line of the report: the check, the verdict, the object it is about, the cause, the fix.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The check.
    pub check: Check,
    /// The verdict.
    pub status: Status,
    /// What it is about: `certificate leaf.pem (serial 4660, CN=web-1)`, `--role-arn`,
    /// `statement 0 ("TrustRolesAnywhere")`…
    pub object: String,
    /// What was found: for a failure, the cause; for a pass, the fact that was checked.
    pub cause: String,
    /// How to fix it (failures and warnings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    /// A finding without a fix.
    pub fn new(
        check: Check,
        status: Status,
        object: impl Into<String>,
        cause: impl Into<String>,
    ) -> Finding {
        Finding {
            check,
            status,
            object: object.into(),
            cause: cause.into(),
            fix: None,
        }
    }

    /// A passed finding.
    pub fn passed(check: Check, object: impl Into<String>, cause: impl Into<String>) -> Finding {
        Finding::new(check, Status::Passed, object, cause)
    }

    /// A warning with its fix.
    pub fn warning(
        check: Check,
        object: impl Into<String>,
        cause: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding::new(check, Status::Warning, object, cause).with_fix(fix)
    }

    /// A failure with its fix.
    pub fn failed(
        check: Check,
        object: impl Into<String>,
        cause: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding::new(check, Status::Failed, object, cause).with_fix(fix)
    }

    /// A skipped check, `cause` saying what input was missing.
    pub fn skipped(check: Check, object: impl Into<String>, cause: impl Into<String>) -> Finding {
        Finding::new(check, Status::Skipped, object, cause)
    }

    /// This finding with `fix`.
    pub fn with_fix(mut self, fix: impl Into<String>) -> Finding {
        self.fix = Some(fix.into());
        self
    }
}

/// The longest a field of a finding is printed (characters); longer text from a certificate or a
/// server is cut with `…`.
pub const FIELD_LIMIT: usize = 1024;

/// Every finding so far, in the order they were made.
#[derive(Debug, Default)]
pub struct Report {
    findings: Vec<Finding>,
}

impl Report {
    /// Adds `finding`.
    pub fn push(&mut self, finding: Finding) {
        self.findings.push(finding);
    }

    /// The findings.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// Whether any finding failed (exit code 1).
    pub fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.status == Status::Failed)
    }

    fn count(&self, status: Status) -> usize {
        self.findings.iter().filter(|f| f.status == status).count()
    }

    /// The findings with every field escaped and bounded, sorted by check (stable: the order
    /// within a check is the order they were made).
    fn printable(&self) -> Vec<Finding> {
        let mut all: Vec<Finding> = self
            .findings
            .iter()
            .map(|f| Finding {
                check: f.check,
                status: f.status,
                object: clean(&f.object),
                cause: clean(&f.cause),
                fix: f.fix.as_deref().map(clean),
            })
            .collect();
        all.sort_by_key(|f| f.check);
        all
    }

    /// The text report: one line per finding, then a summary line.
    ///
    /// `passed  1 identity  certificate leaf.pem (…): cause; fix: …`
    pub fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        for f in self.printable() {
            let mut line = format!(
                "{} {} {:<14} {}: {}",
                f.status.word(),
                f.check.number(),
                f.check.name(),
                f.object,
                f.cause
            );
            if let Some(fix) = &f.fix {
                line.push_str("; fix: ");
                line.push_str(fix);
            }
            line.push('\n');
            out.write_all(line.as_bytes())?;
        }
        writeln!(
            out,
            "{} passed, {} warning(s), {} failed, {} skipped",
            self.count(Status::Passed),
            self.count(Status::Warning),
            self.count(Status::Failed),
            self.count(Status::Skipped)
        )
    }

    /// The JSON report: `{"findings":[{check, number, status, object, cause, fix?}…],
    /// "passed":N, "warnings":N, "failed":N, "skipped":N}`.
    pub fn write_json(&self, out: &mut dyn Write) -> std::io::Result<()> {
        #[derive(Serialize)]
        struct Line {
            check: Check,
            number: u8,
            status: Status,
            object: String,
            cause: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            fix: Option<String>,
        }
        #[derive(Serialize)]
        struct Doc {
            findings: Vec<Line>,
            passed: usize,
            warnings: usize,
            failed: usize,
            skipped: usize,
        }
        let doc = Doc {
            findings: self
                .printable()
                .into_iter()
                .map(|f| Line {
                    check: f.check,
                    number: f.check.number(),
                    status: f.status,
                    object: f.object,
                    cause: f.cause,
                    fix: f.fix,
                })
                .collect(),
            passed: self.count(Status::Passed),
            warnings: self.count(Status::Warning),
            failed: self.count(Status::Failed),
            skipped: self.count(Status::Skipped),
        };
        serde_json::to_writer(&mut *out, &doc)?;
        out.write_all(b"\n")
    }
}

/// `s` escaped for a terminal and cut to [`FIELD_LIMIT`] characters.
fn clean(s: &str) -> String {
    let escaped = crate::text::escape(s);
    match escaped.char_indices().nth(FIELD_LIMIT) {
        Some((cut, _)) => format!("{}…", &escaped[..cut]),
        None => escaped.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_escapes_and_sorts_by_check() {
        let mut r = Report::default();
        r.push(Finding::failed(
            Check::Chain,
            "certificate CN=\u{1b}[31mevil",
            "not issued by the anchor",
            "add the intermediate",
        ));
        r.push(Finding::passed(
            Check::Identity,
            "key k.pem",
            "matches the certificate",
        ));
        let mut out = Vec::new();
        r.write_text(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains('\u{1b}'), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "passed  1 identity       key k.pem: matches the certificate"
        );
        assert_eq!(
            lines[1],
            "failed  2 chain          certificate CN=\\u{1b}[31mevil: not issued by the anchor; \
             fix: add the intermediate"
        );
        assert_eq!(lines[2], "1 passed, 0 warning(s), 1 failed, 0 skipped");
        assert!(r.failed());
    }

    #[test]
    fn json_has_counts_and_no_fix_when_none() {
        let mut r = Report::default();
        r.push(Finding::skipped(Check::Live, "--live", "not asked"));
        let mut out = Vec::new();
        r.write_json(&mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["skipped"], 1);
        assert_eq!(v["findings"][0]["check"], "live");
        assert_eq!(v["findings"][0]["number"], 7);
        assert!(v["findings"][0].get("fix").is_none());
        assert!(!r.failed());
    }

    #[test]
    fn long_fields_are_cut() {
        let long = "x".repeat(FIELD_LIMIT * 2);
        assert_eq!(clean(&long).chars().count(), FIELD_LIMIT + 1);
    }
}
