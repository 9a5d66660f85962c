//! Check 3: the request. Offline: the ARNs are well formed and follow the service's partition,
//! region and account rules, and the settings `credential-process` would start with are valid.
//! With `--live`: the endpoint resolves, the proxy in use, TLS verifies with the trust store
//! actually used (named), and the clock agrees with the endpoint's `Date`.
//! Check 7 (`--live`): one real CreateSession, a refusal mapped to the checks above.
//!
//! `arns.rs` is the offline half, `endpoint.rs` the live half of check 3, `live.rs` check 7. The
//! network goes through the CreateSession client of `crate::session` (its resolver, proxies,
//! trust roots and time limits), never a client of its own.

mod arns;
mod endpoint;
mod live;

use super::{Check, Context, Report};

/// Check 3: the ARNs and settings, and with `--live` the endpoint.
pub fn check(cx: &mut Context, report: &mut Report) {
    arns::check(cx, report);
    endpoint::check(cx, report);
}

/// Check 7 (`--live`): one real CreateSession.
pub fn check_live(cx: &mut Context, report: &mut Report) {
    live::check(cx, report);
}

/// How a finding names an ARN: the flag on the command line, or the profile's ARN of the agent's
/// configuration.
fn arn_object(cx: &Context, kind: crate::arn::ArnKind) -> String {
    if cx.subject.source == "the command line" {
        kind.flag().to_string()
    } else {
        let what = match kind {
            crate::arn::ArnKind::TrustAnchor => "trust anchor ARN",
            crate::arn::ArnKind::Profile => "profile ARN",
            crate::arn::ArnKind::Role => "role ARN",
        };
        format!("{what} of {}", cx.subject.source)
    }
}

/// True when a finding of check 3 says the endpoint could not be reached (then check 7 is not
/// attempted: it would only wait for the same failure, up to three times).
fn endpoint_unreachable(report: &Report) -> bool {
    report.findings().iter().any(|f| {
        f.check == Check::Request
            && f.status == super::Status::Failed
            && endpoint::UNREACHABLE_OBJECTS
                .iter()
                .any(|prefix| f.object.starts_with(prefix))
    })
}
