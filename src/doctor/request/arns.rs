//! Check 3, offline: each ARN well formed, the service's partition, region and account rules, and
//! the rest of the settings `credential-process` would refuse to start with.

use super::{Check, Context, Report, arn_object};
use crate::arn::{self, Arn, ArnKind};
use crate::cli::settings;
use crate::doctor::Finding;
use crate::text::redact;

/// The three ARNs in the order the flags are listed.
const KINDS: [ArnKind; 3] = [ArnKind::TrustAnchor, ArnKind::Profile, ArnKind::Role];

pub(super) fn check(cx: &Context, report: &mut Report) {
    let mut parsed: [Option<Arn>; 3] = [None, None, None];
    let mut arn_trouble = false;
    for (i, kind) in KINDS.into_iter().enumerate() {
        let raw = match kind {
            ArnKind::TrustAnchor => cx.subject.trust_anchor_arn.as_deref(),
            ArnKind::Profile => cx.subject.profile_arn.as_deref(),
            ArnKind::Role => cx.subject.role_arn.as_deref(),
        };
        let object = arn_object(cx, kind);
        let Some(text) = raw else {
            arn_trouble = true;
            report.push(Finding::warning(
                Check::Request,
                object,
                "not given, so the ARN rules are not checked",
                format!(
                    "give {} ({}): credential-process needs it",
                    kind.flag(),
                    kind.template()
                ),
            ));
            continue;
        };
        match arn::parse(text, kind) {
            Ok(a) => {
                let region = if a.region.is_empty() {
                    String::new()
                } else {
                    format!(", region {}", a.region)
                };
                report.push(Finding::passed(
                    Check::Request,
                    object,
                    format!(
                        "{} is well formed (partition {}{region}, account {}, {})",
                        redact(text),
                        a.partition,
                        a.account,
                        redact(a.resource())
                    ),
                ));
                parsed[i] = Some(a);
            }
            Err(e) => {
                arn_trouble = true;
                report.push(Finding::failed(
                    Check::Request,
                    object,
                    e.to_string(),
                    format!(
                        "write it as {}, as the console's resource page shows it",
                        kind.template()
                    ),
                ));
            }
        }
    }
    let [trust_anchor, profile, role] = parsed;
    arn_trouble |= !rules(
        cx,
        trust_anchor.as_ref(),
        profile.as_ref(),
        role.as_ref(),
        report,
    );
    settings_findings(cx, trust_anchor.as_ref(), arn_trouble, report);
}

/// The service's rules between the ARNs (those that parsed): trust anchor and profile in the same
/// region of the same account, the role in the same partition. False when one fails.
fn rules(
    cx: &Context,
    trust_anchor: Option<&Arn>,
    profile: Option<&Arn>,
    role: Option<&Arn>,
    report: &mut Report,
) -> bool {
    let mut ok = true;
    let mut fail = |cause: String, fix: &str| {
        ok = false;
        report.push(Finding::failed(
            Check::Request,
            "the ARNs",
            cause,
            fix.to_string(),
        ));
    };
    let ta_flag = arn_object(cx, ArnKind::TrustAnchor);
    let profile_flag = arn_object(cx, ArnKind::Profile);
    let role_flag = arn_object(cx, ArnKind::Role);
    if let (Some(ta), Some(p)) = (trust_anchor, profile) {
        if ta.region != p.region {
            fail(
                format!(
                    "the trust anchor ({ta_flag}) is in region {} but the profile ({profile_flag}) \
                     is in region {}: the service looks both up in one region",
                    ta.region, p.region
                ),
                "use a trust anchor and a profile of the same region (create the missing one \
                 there)",
            );
        }
        if ta.account != p.account {
            fail(
                format!(
                    "the trust anchor ({ta_flag}) is in account {} but the profile \
                     ({profile_flag}) is in account {}: both must be in one account",
                    ta.account, p.account
                ),
                "use a trust anchor and a profile of the same account",
            );
        }
        if ta.partition != p.partition {
            fail(
                format!(
                    "the trust anchor ({ta_flag}) is in partition {} but the profile \
                     ({profile_flag}) in partition {}",
                    ta.partition, p.partition
                ),
                "use a trust anchor and a profile of the same partition",
            );
        }
    }
    if let Some(r) = role {
        for (other, flag) in [(trust_anchor, &ta_flag), (profile, &profile_flag)] {
            if let Some(o) = other
                && o.partition != r.partition
            {
                fail(
                    format!(
                        "the role ({role_flag}) is in partition {} but {flag} is in partition {}",
                        r.partition, o.partition
                    ),
                    "use a role of the profile's partition (arn:PARTITION:iam::ACCOUNT:role/NAME)",
                );
                break;
            }
        }
    }
    if ok && let (Some(ta), Some(p), Some(_)) = (trust_anchor, profile, role) {
        report.push(Finding::passed(
            Check::Request,
            "the ARNs",
            format!(
                "the trust anchor and the profile are both in region {} of account {} (partition \
                 {}), and the role is in the same partition",
                ta.region, ta.account, p.partition
            ),
        ));
    }
    ok
}

/// The settings `credential-process` would run with, or why it would refuse to start (usage
/// errors it would exit 2 with are failed findings here). `arn_trouble`: the ARN findings above
/// already say what is wrong with the ARNs, which the settings' error then repeats.
fn settings_findings(
    cx: &Context,
    trust_anchor: Option<&Arn>,
    arn_trouble: bool,
    report: &mut Report,
) {
    let s = match &cx.subject.session {
        Ok(s) => s,
        Err(settings::Error::MissingFlags { .. })
        | Err(settings::Error::Arn(arn::Error::Invalid { .. }))
        | Err(settings::Error::Arn(arn::Error::RegionMismatch { .. }))
            if arn_trouble =>
        {
            return;
        }
        Err(e) => {
            let (object, fix) = settings_error(e);
            report.push(Finding::failed(
                Check::Request,
                object,
                crate::text::error_chain(e),
                fix,
            ));
            return;
        }
    };
    let region_source = match trust_anchor {
        Some(ta) if ta.region == s.request.region => "the trust anchor's region",
        _ => "--region",
    };
    report.push(Finding::passed(
        Check::Request,
        format!("endpoint {}", s.endpoint.display_url()),
        format!(
            "signing region {} ({region_source}), session duration {} s{}",
            s.request.region,
            s.request.duration_seconds,
            match &s.request.role_session_name {
                Some(n) => format!(", role session name {n}"),
                None => String::new(),
            }
        ),
    ));
    if let Some(ta) = trust_anchor
        && ta.region != s.request.region
    {
        report.push(Finding::warning(
            Check::Request,
            "--region",
            format!(
                "the request is signed for region {} but the trust anchor and profile are in \
                 region {}: the service looks them up in its own region and will not find them",
                s.request.region, ta.region
            ),
            format!(
                "drop --region (the trust anchor's region {} is the default), or use ARNs of \
                 region {}",
                ta.region, s.request.region
            ),
        ));
    }
    if s.endpoint.is_cleartext_remote() {
        report.push(Finding::warning(
            Check::Request,
            format!("endpoint {}", s.endpoint.display_url()),
            "plain http to another host: the credentials would cross the network unencrypted",
            "use https in --endpoint",
        ));
    }
    if !s.client.verify_tls && !cx.options.live {
        report.push(no_verify_ssl());
    }
}

/// `--no-verify-ssl` in use.
pub(super) fn no_verify_ssl() -> Finding {
    Finding::warning(
        Check::Request,
        "--no-verify-ssl",
        "TLS certificate verification is off: anyone on the network path can impersonate the \
         service and read the credentials",
        "drop --no-verify-ssl; for a private CA or a TLS-inspecting proxy set AWS_CA_BUNDLE to \
         its PEM file",
    )
}

/// The object and fix of a settings error (the cause is its own text).
fn settings_error(e: &settings::Error) -> (String, String) {
    use settings::Error as E;
    let generic = "credential-process refuses to start with these settings (exit 2): correct them \
                   as the cause says"
        .to_string();
    match e {
        E::MissingFlags { missing, .. } => (
            missing.join(", "),
            "give them: credential-process needs all three ARNs".into(),
        ),
        E::Arn(arn::Error::Region(_)) => (
            "--region".into(),
            "give a region name like us-east-1 (never a -fips name), or drop --region to use the \
             trust anchor's"
                .into(),
        ),
        E::Arn(arn::Error::NoFipsEndpoint(_)) => (
            "--use-fips-endpoint / AWS_USE_FIPS_ENDPOINT".into(),
            "drop the FIPS option or give --endpoint".into(),
        ),
        E::Arn(_) => ("the ARNs".into(), generic),
        E::Duration(_) => (
            "--session-duration".into(),
            "give 900 to 43200 seconds, within the profile's and the role's maximum".into(),
        ),
        E::Timeout(flag) => ((*flag).into(), "give it 1 second or more".into()),
        E::FipsEnv(_) => (
            "AWS_USE_FIPS_ENDPOINT".into(),
            "set it to true or false, or unset it".into(),
        ),
        E::RoleSessionName(_) => (
            "--role-session-name".into(),
            "use 2 to 64 characters of letters, digits and + = , . @ _ -".into(),
        ),
        E::Endpoint(s) => {
            let object = match s {
                crate::session::Error::Proxy { variable, .. } => (*variable).to_string(),
                crate::session::Error::CaBundle { variable, .. } => (*variable).to_string(),
                _ => "--endpoint".to_string(),
            };
            (object, s.hint().unwrap_or(generic))
        }
        _ => ("the session flags".into(), generic),
    }
}
