//! Check 2: the chain is ordered, at most 5, each link verified, reaches the trust anchor, unrevoked, in date.

use super::{Check, Context, Finding, Report};

/// Check 2.
pub fn check(cx: &mut Context, report: &mut Report) {
    let _ = cx;
    report.push(Finding::skipped(
        Check::Chain,
        "chain",
        "not implemented yet",
    ));
}
