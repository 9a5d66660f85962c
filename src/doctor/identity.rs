//! Check 1: the key opens (file / PKCS#11 / TPM) and matches an end-entity certificate the service accepts.

use super::{Check, Context, Finding, Report};

/// Check 1.
pub fn check(cx: &mut Context, report: &mut Report) {
    let _ = cx;
    report.push(Finding::skipped(
        Check::Identity,
        "identity",
        "not implemented yet",
    ));
}
