//! Check 6: the session policy's size against the STS limits, and the actions and resources it allows.

use super::{Check, Context, Finding, Report};

/// Check 6.
pub fn check(cx: &mut Context, report: &mut Report) {
    let _ = cx;
    report.push(Finding::skipped(
        Check::SessionPolicy,
        "session_policy",
        "not implemented yet",
    ));
}
