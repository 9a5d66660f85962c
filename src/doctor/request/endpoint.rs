//! Check 3 with `--live`: the proxy in use, the host resolving, TLS verified with the trust store
//! the client really uses, and this machine's clock against the endpoint's `Date`. Everything goes
//! through [`crate::session::Client`] (its resolver, proxies, roots and time limits).

use super::{Check, Context, Report};
use crate::doctor::Finding;
use crate::session::{self, Client, ProbeError, Route, Stage};
use time::OffsetDateTime;

/// The objects of the findings that say the endpoint cannot be reached (check 7 is then not
/// attempted).
pub(super) const UNREACHABLE_OBJECTS: [&str; 4] = ["host ", "endpoint ", "TLS with ", "proxy "];

/// More skew than this is a warning (seconds).
const WARN_SKEW: i64 = 60;
/// More skew than this is a failure: the service refuses signatures more than 5 minutes off.
const FAIL_SKEW: i64 = 300;
/// Most addresses named in a finding.
const MAX_ADDRESSES: usize = 8;

pub(super) fn check(cx: &Context, report: &mut Report) {
    if !cx.options.live {
        report.push(Finding::skipped(
            Check::Request,
            "endpoint",
            "not contacted: offline by default; add --live to resolve the endpoint, verify its \
             TLS and compare the clocks",
        ));
        return;
    }
    let Ok(s) = &cx.subject.session else {
        report.push(Finding::skipped(
            Check::Request,
            "endpoint",
            "not contacted: the settings above are invalid",
        ));
        return;
    };
    let https = s.endpoint.display_url().starts_with("https://");
    let client = match Client::new(s.endpoint.clone(), &s.client) {
        Ok(c) => c,
        Err(e) => {
            let object = match &e {
                session::Error::CaBundle { variable, path, .. } => {
                    format!("trust store {variable} {}", crate::text::path(path))
                }
                _ => "trust store".into(),
            };
            report.push(Finding::failed(
                Check::Request,
                object,
                crate::text::error_chain(&e),
                e.hint().unwrap_or_else(|| {
                    "check AWS_CA_BUNDLE and SSL_CERT_FILE / SSL_CERT_DIR".into()
                }),
            ));
            return;
        }
    };
    let route = client.route();
    report.push(route_finding(&route, https, client.endpoint().host_name()));
    if !resolves(&client, &route, report) {
        report.push(skipped_clock("the host does not resolve"));
        return;
    }
    let store = if https && s.client.verify_tls {
        match session::trust_store(&s.client) {
            Ok(t) => Some(t),
            Err(e) => {
                report.push(Finding::failed(
                    Check::Request,
                    "trust store",
                    crate::text::error_chain(&e),
                    e.hint().unwrap_or_default(),
                ));
                return;
            }
        }
    } else {
        None
    };
    let tls_object = format!("TLS with {}", client.endpoint().host());
    match client.probe() {
        Ok(probe) => {
            if !https {
                report.push(Finding::skipped(
                    Check::Request,
                    format!("endpoint {}", client.endpoint().display_url()),
                    format!(
                        "reachable over plain http (answered HTTP {} to an unsigned GET): no TLS \
                         to verify",
                        probe.status
                    ),
                ));
            } else if let Some(store) = &store {
                report.push(Finding::passed(
                    Check::Request,
                    tls_object,
                    format!(
                        "the server's certificate verifies with {} ({} root{}); the endpoint \
                         answered HTTP {} to an unsigned GET",
                        store.source,
                        store.roots,
                        if store.roots == 1 { "" } else { "s" },
                        probe.status
                    ),
                ));
            } else {
                report.push(super::arns::no_verify_ssl().with_fix(
                    "drop --no-verify-ssl (the connection worked but the server's \
                         certificate was not checked); for a private CA or a TLS-inspecting \
                         proxy set AWS_CA_BUNDLE to its PEM file",
                ));
            }
            report.push(clock(
                probe.date.as_deref(),
                probe.sent_at,
                probe.received_at,
            ));
        }
        Err(e) => {
            report.push(probe_failure(
                &e,
                &client,
                &route,
                &tls_object,
                store.as_ref(),
            ));
            report.push(skipped_clock("the endpoint did not answer"));
        }
    }
}

fn skipped_clock(why: &str) -> Finding {
    Finding::skipped(
        Check::Request,
        "clock",
        format!("not compared with the endpoint's Date: {why}"),
    )
}

/// The proxy the client goes through, if any.
fn route_finding(route: &Route, https: bool, host: &str) -> Finding {
    let variables = if https {
        "HTTPS_PROXY, https_proxy, ALL_PROXY and all_proxy are"
    } else {
        "HTTP_PROXY, http_proxy, ALL_PROXY and all_proxy are"
    };
    match route {
        Route::Direct => Finding::passed(
            Check::Request,
            "proxy",
            format!("none: {variables} unset, so the client connects to {host} directly"),
        ),
        Route::Exempt { variable, no_proxy } => Finding::passed(
            Check::Request,
            "proxy",
            format!(
                "none for {host}: {variable} is set but NO_PROXY={no_proxy} exempts it, so the \
                 client connects directly"
            ),
        ),
        Route::Proxy { variable, url, .. } => Finding::passed(
            Check::Request,
            format!("proxy {url}"),
            format!(
                "from {variable}: the client connects to {host} through it (CONNECT for https); \
                 the proxy resolves {host}"
            ),
        ),
    }
}

/// The host this machine resolves (the proxy's, or the endpoint's), and what it resolves to.
/// False when it does not.
fn resolves(client: &Client, route: &Route, report: &mut Report) -> bool {
    let (host, port, whose) = match route {
        Route::Proxy { host, port, .. } => (host.clone(), *port, "the proxy's host"),
        _ => (
            client.endpoint().host_name().to_string(),
            443,
            "the endpoint's host",
        ),
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<std::net::IpAddr>().is_ok() {
        report.push(Finding::passed(
            Check::Request,
            format!("host {host}"),
            format!("{whose} is an IP address: nothing to resolve"),
        ));
        return true;
    }
    match client.resolve(bare, port) {
        Ok(addrs) if !addrs.is_empty() => {
            let mut ips: Vec<String> = Vec::new();
            for a in &addrs {
                let ip = a.ip().to_string();
                if !ips.contains(&ip) {
                    ips.push(ip);
                }
            }
            let more = ips.len().saturating_sub(MAX_ADDRESSES);
            ips.truncate(MAX_ADDRESSES);
            let mut list = ips.join(", ");
            if more > 0 {
                list.push_str(&format!(" and {more} more"));
            }
            report.push(Finding::passed(
                Check::Request,
                format!("host {host}"),
                format!("{whose} resolves to {list}"),
            ));
            true
        }
        Ok(_) => {
            report.push(unresolved(&host, whose, "the name has no address"));
            false
        }
        Err(e) => {
            report.push(unresolved(&host, whose, &e.to_string()));
            false
        }
    }
}

fn unresolved(host: &str, whose: &str, why: &str) -> Finding {
    Finding::failed(
        Check::Request,
        format!("host {host}"),
        format!("{whose} does not resolve: {why}"),
        "check the host name (--endpoint, or --region for the default endpoint; the proxy \
         variable for a proxy), the DNS servers (/etc/resolv.conf) and the network",
    )
}

/// The finding for a probe that failed at `e.stage`.
fn probe_failure(
    e: &ProbeError,
    client: &Client,
    route: &Route,
    tls_object: &str,
    store: Option<&session::TrustStore>,
) -> Finding {
    let cause = crate::text::error_chain(&e.error);
    let hint = e.error.hint().unwrap_or_default();
    match e.stage {
        Stage::Tls => {
            let store = match store {
                Some(t) => format!(
                    "; the trust store used: {} ({} root{})",
                    t.source,
                    t.roots,
                    if t.roots == 1 { "" } else { "s" }
                ),
                None => String::new(),
            };
            Finding::failed(Check::Request, tls_object, format!("{cause}{store}"), hint)
        }
        Stage::Resolve => Finding::failed(
            Check::Request,
            format!("host {}", client.endpoint().host_name()),
            cause,
            hint,
        ),
        Stage::Connect => {
            let object = match route {
                Route::Proxy { url, .. } => format!("proxy {url}"),
                _ => format!("endpoint {}", client.endpoint().display_url()),
            };
            Finding::failed(Check::Request, object, cause, hint)
        }
        Stage::Http => Finding::failed(
            Check::Request,
            format!("endpoint {}", client.endpoint().display_url()),
            format!("no usable HTTP answer: {cause}"),
            hint,
        ),
    }
}

/// This machine's clock against the endpoint's `Date` (sent between `sent` and `received`, so the
/// local time it is compared with is their midpoint).
fn clock(date: Option<&str>, sent: OffsetDateTime, received: OffsetDateTime) -> Finding {
    let fix_clock = "set this machine's clock right (timedatectl set-ntp true, or chronyc makestep) \
                     and keep it synchronised";
    let Some(date) = date else {
        return Finding::warning(
            Check::Request,
            "clock",
            "the endpoint's answer has no Date header, so the clock cannot be compared with it",
            "check the clock against a time source (timedatectl status, chronyc tracking): the \
             service refuses signatures more than 5 minutes off",
        );
    };
    let Some(server) = session::parse_http_date(date) else {
        return Finding::warning(
            Check::Request,
            "clock",
            format!("the endpoint's Date header {date:?} is not an HTTP date"),
            "check the clock against a time source (timedatectl status, chronyc tracking): the \
             service refuses signatures more than 5 minutes off",
        );
    };
    let local: OffsetDateTime = sent + (received - sent) / 2;
    let skew: i64 = (local - server).whole_seconds();
    let both = format!(
        "this machine's clock reads {} and the endpoint's Date says {date}",
        crate::text::utc_seconds(local)
    );
    let apart = format!(
        "{} {}",
        span(skew.unsigned_abs()),
        if skew >= 0 { "ahead" } else { "behind" }
    );
    let abs = skew.abs();
    if abs > FAIL_SKEW {
        Finding::failed(
            Check::Request,
            "clock",
            format!(
                "{both}: {apart}, more than the 5 minutes the service allows (CreateSession \
                 fails with a signature or time error)"
            ),
            fix_clock,
        )
    } else if abs > WARN_SKEW {
        Finding::warning(
            Check::Request,
            "clock",
            format!(
                "{both}: {apart}; the service allows 5 minutes, and certificate validity is \
                 judged by the clock too"
            ),
            fix_clock,
        )
    } else {
        Finding::passed(
            Check::Request,
            "clock",
            format!("{both}: they agree within a minute ({apart})"),
        )
    }
}

/// `10 min 3 s`, `42 s`.
fn span(seconds: u64) -> String {
    match (seconds / 60, seconds % 60) {
        (0, s) => format!("{s} s"),
        (m, 0) => format!("{m} min"),
        (m, s) => format!("{m} min {s} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;
    use time::macros::datetime;

    #[test]
    fn clock_thresholds_and_both_times() {
        let t = datetime!(2026-03-01 12:00:00 UTC);
        let at = |d: &str| clock(Some(d), t, t);
        let f = at("Sun, 01 Mar 2026 12:00:30 GMT");
        assert_eq!(f.status, Status::Passed, "{f:?}");
        assert!(f.cause.contains("30 s behind"), "{f:?}");
        let f = at("Sun, 01 Mar 2026 11:58:00 GMT");
        assert_eq!(f.status, Status::Warning, "{f:?}");
        assert!(
            f.cause.contains("2026-03-01T12:00:00Z")
                && f.cause.contains("Sun, 01 Mar 2026 11:58:00 GMT")
                && f.cause.contains("2 min ahead"),
            "{f:?}"
        );
        let f = at("Sun, 01 Mar 2026 12:10:01 GMT");
        assert_eq!(f.status, Status::Failed, "{f:?}");
        assert!(f.cause.contains("10 min 1 s behind"), "{f:?}");
        // Exactly one and five minutes are still on the lenient side.
        assert_eq!(at("Sun, 01 Mar 2026 12:01:00 GMT").status, Status::Passed);
        assert_eq!(at("Sun, 01 Mar 2026 12:05:00 GMT").status, Status::Warning);
        assert_eq!(clock(None, t, t).status, Status::Warning);
        assert_eq!(at("yesterday").status, Status::Warning);
    }

    #[test]
    fn the_local_time_is_the_midpoint_of_the_exchange() {
        let sent = datetime!(2026-03-01 12:00:00 UTC);
        let received = datetime!(2026-03-01 12:00:20 UTC);
        let f = clock(Some("Sun, 01 Mar 2026 12:00:10 GMT"), sent, received);
        assert!(f.cause.contains("(0 s ahead)"), "{f:?}");
    }
}
