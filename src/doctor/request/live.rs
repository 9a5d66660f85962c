//! Check 7 (`--live`): one real CreateSession with the subject's settings and the identity check 1
//! opened. Success shows the expiry and the access key id's first characters only (the credentials
//! are dropped, which zeroizes the secret key and the token); a refusal is mapped to the check
//! that explains it, with the hint `credential-process` would give.

use super::{Check, Context, Report};
use crate::doctor::Finding;
use crate::session::{Client, Error};

/// Characters of the access key id shown (`ASIA…`: the kind of key, not the key).
const KEY_ID_SHOWN: usize = 4;

pub(super) fn check(cx: &mut Context, report: &mut Report) {
    if !cx.options.live {
        report.push(Finding::skipped(
            Check::Live,
            "CreateSession",
            "not attempted: offline by default; add --live to make one real CreateSession",
        ));
        return;
    }
    let Ok(s) = &cx.subject.session else {
        report.push(Finding::skipped(
            Check::Live,
            "CreateSession",
            "not attempted: the settings are invalid (check 3)",
        ));
        return;
    };
    if super::endpoint_unreachable(report) {
        report.push(Finding::skipped(
            Check::Live,
            "CreateSession",
            "not attempted: the endpoint cannot be reached (check 3)",
        ));
        return;
    }
    let Some(identity) = &cx.identity else {
        report.push(Finding::skipped(
            Check::Live,
            "CreateSession",
            "not attempted: no key that opens and matches the certificate, with a chain \
             credential-process would send (checks 1 and 2)",
        ));
        return;
    };
    let object = format!("CreateSession at {}", s.endpoint.display_url());
    let client = match Client::new(s.endpoint.clone(), &s.client) {
        Ok(c) => c,
        Err(e) => {
            report.push(refused(object, &e));
            return;
        }
    };
    // `--debug`: the attempts, canonical request and string to sign on stderr, as
    // credential-process prints them (never a secret).
    let debug: Option<&dyn Fn(&str)> = if cx.options.debug {
        Some(&crate::cli::commands::debug_line)
    } else {
        None
    };
    match client.create_session(&s.request, identity, debug) {
        Ok(creds) => {
            let shown: String = creds.access_key_id.chars().take(KEY_ID_SHOWN).collect();
            let left = creds.expires_at - time::OffsetDateTime::now_utc();
            report.push(Finding::passed(
                Check::Live,
                object,
                format!(
                    "credentials issued for {}: access key id {shown}…, expiring {} (in {} min)",
                    s.request.role_arn,
                    creds.expiration,
                    left.whole_minutes()
                ),
            ));
            // The secret key and the token are zeroized here, unread.
            drop(creds);
        }
        Err(e) => report.push(refused(object, &e)),
    }
}

/// The failed finding for `e`: its text, the check that explains it, and its hint.
fn refused(object: String, e: &Error) -> Finding {
    let explained = explain(e);
    let fix = match e.hint() {
        Some(h) => format!("{explained}; {h}"),
        None => explained.to_string(),
    };
    Finding::failed(Check::Live, object, crate::text::error_chain(e), fix)
}

/// Which check explains `e`.
fn explain(e: &Error) -> &'static str {
    match e {
        Error::LeafRefused { .. } => {
            "the leaf certificate breaks the service's rules: see check 1 (identity)"
        }
        Error::Service {
            status,
            error_type,
            message,
            ..
        } => explain_refusal(*status, error_type, message),
        Error::Transport { .. } | Error::Redirect { .. } => {
            "see check 3 (request: the endpoint, the proxy, TLS)"
        }
        Error::Endpoint { .. } | Error::Proxy { .. } | Error::CaBundle { .. } | Error::Tls(_) => {
            "see check 3 (request: the settings)"
        }
        Error::ExpiredCredentials { .. } => "see check 3 (request: the clock)",
        Error::Sign(_) => "the key could not sign: see check 1 (identity)",
        Error::MalformedResponse { .. } => {
            "the endpoint does not answer like Roles Anywhere: see check 3 (request: --endpoint)"
        }
    }
}

/// The check that explains the service's refusal, from its message.
fn explain_refusal(status: u16, error_type: &str, message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    if m.contains("failed to be mapped") {
        return "an attribute of the certificate cannot become a session tag: see check 4 (tags) \
                and check 5 (trust policy)";
    }
    if m.contains("rolesessionname") {
        return "the profile does not accept a role session name: see check 3 (request: \
                --role-session-name)";
    }
    if m.contains("revoked") {
        return "the certificate is on a CRL of the trust anchor: see check 2 (chain, with --crl)";
    }
    if m.contains("untrusted") || m.contains("certificate") {
        return "the service does not trust the certificate: see check 1 (identity) and check 2 \
                (chain: the intermediates sent, the anchor with --trust-anchor-pem, the CRLs \
                with --crl)";
    }
    if m.contains("unable to assume role") {
        return "the role's trust policy refused the session: see check 5 (trust policy, with \
                --trust-policy) and check 4 (tags)";
    }
    if m.contains("does not list role") {
        return "the profile does not list the role: see check 3 (request: --role-arn and the \
                profile's roles)";
    }
    if error_type == "ResourceNotFoundException"
        || m.contains("not found")
        || m.contains("disabled")
    {
        return "the trust anchor or profile is missing or disabled in this region and account: see \
                check 3 (request: the ARNs)";
    }
    if m.contains("expired")
        || m.contains("not yet valid")
        || m.contains("x-amz-date")
        || m.contains("skew")
        || m.contains("server time")
    {
        return "the signature's time is too far from the service's: see check 3 (request: the \
                clock)";
    }
    if m.contains("signature") {
        return "the service could not verify the signature: see check 3 (request: the clock) and \
                check 1 (identity: the key matches the certificate)";
    }
    if m.contains("duration") {
        return "--session-duration exceeds the profile's or the role's maximum: see check 3 \
                (request)";
    }
    if error_type == "AccessDeniedException" && m.contains("role") {
        return "the role refused the session: see check 5 (trust policy)";
    }
    if status == 429 || error_type == "ThrottlingException" || status >= 500 {
        return "the service is throttling or failing: try again later";
    }
    "the service's message says why"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_the_check_that_explains_them() {
        for (status, error_type, message, check) in [
            (
                403,
                "AccessDeniedException",
                "Untrusted signing certificate",
                "check 2",
            ),
            (
                403,
                "AccessDeniedException",
                "Untrusted signing certificate: x (serial 1) is revoked",
                "check 2 (chain, with --crl)",
            ),
            (
                403,
                "AccessDeniedException",
                "Unable to assume role for arn:aws:iam::1:role/r.",
                "check 5",
            ),
            (
                403,
                "AccessDeniedException",
                "profile arn:aws:rolesanywhere:us-east-1:1:profile/p is disabled",
                "check 3 (request: the ARNs)",
            ),
            (
                404,
                "ResourceNotFoundException",
                "trust anchor x not found",
                "check 3 (request: the ARNs)",
            ),
            (
                403,
                "AccessDeniedException",
                "signature expired or not yet valid: x-amz-date 20260301T120000Z is 600 s from \
                 the server time (limit 300 s)",
                "the clock",
            ),
            (403, "AccessDeniedException", "Invalid signature", "check 1"),
            (
                403,
                "AccessDeniedException",
                "profile p does not list role r",
                "--role-arn",
            ),
            (
                403,
                "AccessDeniedException",
                "Not authorized to set roleSessionName",
                "--role-session-name",
            ),
            (503, "", "", "try again"),
        ] {
            let got = explain_refusal(status, error_type, message);
            assert!(got.contains(check), "{message}: {got}");
        }
    }
}
