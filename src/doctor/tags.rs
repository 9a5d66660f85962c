//! Check 4: what Roles Anywhere will see — the principal tags derived from the certificate with the
//! default attribute mapping (values STS would drop marked as dropped), and the source identity.

use super::{Check, Context, Finding, Report};

/// The principal tags and source identity of a certificate.
#[derive(Debug, Clone, Default)]
pub struct PrincipalTags {
    /// `(key without "aws:PrincipalTag/", value)` in the order the service derives them.
    pub tags: Vec<(String, String)>,
    /// Keys whose values STS would drop.
    pub dropped: Vec<String>,
    /// The source identity, when one is set.
    pub source_identity: Option<String>,
}

/// Check 4.
pub fn check(cx: &mut Context, report: &mut Report) {
    let _ = cx;
    report.push(Finding::skipped(Check::Tags, "tags", "not implemented yet"));
}
