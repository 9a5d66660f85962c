//! Check 3: the request. Offline: the ARNs are well formed and follow the service's partition,
//! region and account rules. With `--live`: the endpoint resolves, TLS verifies with the trust
//! store actually used (named; proxy in use), and the clock agrees with the endpoint's `Date`.
//! Check 7 (`--live`): one real CreateSession, a refusal mapped to the checks above.

use super::{Check, Context, Finding, Report};

/// Check 3, offline half (and, with `--live`, the endpoint half).
pub fn check(cx: &mut Context, report: &mut Report) {
    let _ = cx;
    report.push(Finding::skipped(
        Check::Request,
        "request",
        "not implemented yet",
    ));
}

/// Check 7 (`--live`).
pub fn check_live(cx: &mut Context, report: &mut Report) {
    if !cx.options.live {
        report.push(Finding::skipped(
            Check::Live,
            "CreateSession",
            "not attempted: offline by default; add --live to make one real CreateSession",
        ));
        return;
    }
    report.push(Finding::skipped(
        Check::Live,
        "CreateSession",
        "not implemented yet",
    ));
}
