//! Check 5: the role's trust policy evaluated for this certificate and this trust anchor ARN.

use super::{Check, Context, Finding, Report};

/// Check 5.
pub fn check(cx: &mut Context, report: &mut Report) {
    let _ = cx;
    report.push(Finding::skipped(
        Check::TrustPolicy,
        "policy",
        "not implemented yet",
    ));
}
