//! `doctor`: before the first CreateSession, say what will fail and why.
//!
//! Offline by default (an air-gapped server must be able to run it before its first connection):
//! checks 1, 2, 4, 5 and 6 and the ARN half of 3 need no network; `--live` adds the endpoint half of
//! 3 and check 7. Each check adds findings to one [`Report`]; the checks share what they learn
//! through the [`Context`] (the certificate the identity check read is the one the chain, tags and
//! trust-policy checks use). A check never stops the others: a key that does not open still leaves
//! its certificate to check.
//!
//! The trust-policy evaluation here is the client's own code; the emulator keeps its own (two
//! independent implementations that `testdata/policy-cases.json` holds to the same decisions).

pub mod chain;
pub mod identity;
pub mod policy;
pub mod report;
pub mod request;
pub mod session_policy;
pub mod tags;

use crate::certs::Certificate;
use crate::cli::Failure;
use crate::cli::args::DoctorFormat;
use crate::cli::settings::{self, DoctorOptions, DoctorSettings, DoctorTarget, SessionSettings};
use crate::signer::{Identity, KeyOptions};
pub use report::{Check, Finding, Report, Status};
use std::io::Write;

/// What is checked: the key, the ARNs as the user wrote them, and the CreateSession settings when
/// they are valid.
#[derive(Debug)]
pub struct Subject {
    /// Where it came from, for messages: `the flags` or `profile web of /etc/…/agent.toml`.
    pub source: String,
    /// Key and certificate selection.
    pub key: KeyOptions,
    /// `--trust-anchor-arn` as given.
    pub trust_anchor_arn: Option<String>,
    /// `--profile-arn` as given.
    pub profile_arn: Option<String>,
    /// `--role-arn` as given.
    pub role_arn: Option<String>,
    /// The settings `credential-process` would run with, or why it would refuse to start.
    pub session: Result<SessionSettings, settings::Error>,
}

/// What the checks share.
pub struct Context<'a> {
    /// The command's own flags (the files, `--live`, `--warn-days`).
    pub options: &'a DoctorOptions,
    /// The identity and request.
    pub subject: Subject,
    /// The time every validity is judged at (one reading of the clock for the whole run).
    pub now: time::OffsetDateTime,
    /// The leaf certificate, once the identity check has read it.
    pub leaf: Option<Certificate>,
    /// The chain candidates the identity would send (intermediates, fullchain extras, token
    /// certificates), as read; the chain check orders and verifies them.
    pub chain: Vec<Certificate>,
    /// The opened identity (key matched to the certificate), when it opened.
    pub identity: Option<Identity>,
    /// The certificates of `--trust-anchor-pem`, once the chain check has read them.
    pub anchors: Vec<Certificate>,
    /// The principal tags, once the tags check has derived them (the trust-policy check
    /// evaluates its conditions against them).
    pub tags: Option<tags::PrincipalTags>,
}

/// Runs every check for `settings` and writes the report to `out`. Exit 1 (an operational
/// failure) when any check failed; a report that cannot be written is one too.
pub fn run(settings: DoctorSettings, out: &mut dyn Write) -> Result<(), Failure> {
    let subject = subject(settings.target)?;
    let mut cx = Context {
        options: &settings.options,
        subject,
        now: time::OffsetDateTime::now_utc(),
        leaf: None,
        chain: Vec::new(),
        identity: None,
        anchors: Vec::new(),
        tags: None,
    };
    let report = check_all(&mut cx);
    let written = match settings.options.format {
        DoctorFormat::Text => report.write_text(out),
        DoctorFormat::Json => report.write_json(out),
    };
    written
        .and_then(|()| out.flush())
        .map_err(|e| Failure::operational(e).context("cannot write the doctor's report"))?;
    if report.failed() {
        return Err(Failure::operational(Failed));
    }
    Ok(())
}

/// The error of a run whose report has a failed finding (the report says what).
#[derive(Debug, thiserror::Error)]
#[error("at least one check failed: the report above names the object, the cause and the fix")]
struct Failed;

/// Every check in order.
pub fn check_all(cx: &mut Context) -> Report {
    let mut report = Report::default();
    identity::check(cx, &mut report);
    chain::check(cx, &mut report);
    request::check(cx, &mut report);
    tags::check(cx, &mut report);
    policy::check(cx, &mut report);
    session_policy::check(cx, &mut report);
    request::check_live(cx, &mut report);
    report
}

/// The subject of `target`: the flags, or the agent configuration's profile (read here; a
/// configuration that cannot be read or has no such profile is a configuration error, exit 2).
fn subject(target: DoctorTarget) -> Result<Subject, Failure> {
    match target {
        DoctorTarget::Flags(r) => Ok(Subject {
            source: "the command line".to_string(),
            key: r.key,
            trust_anchor_arn: r.trust_anchor_arn,
            profile_arn: r.profile_arn,
            role_arn: r.role_arn,
            session: r.session,
        }),
        DoctorTarget::Agent { config, profile } => {
            let env = |name: &str| std::env::var(name).ok();
            let loaded = crate::agent::config::load(&config, &env)?;
            let Some(p) = loaded.profiles.get(&profile) else {
                return Err(UnknownProfile {
                    profile,
                    known: loaded.profiles.keys().cloned().collect(),
                    config,
                }
                .into());
            };
            let s = p.session.clone();
            Ok(Subject {
                source: format!(
                    "profile {} of {}",
                    crate::text::arg(&profile),
                    crate::text::path(&config)
                ),
                key: s.key.clone(),
                trust_anchor_arn: Some(s.request.trust_anchor_arn.clone()),
                profile_arn: Some(s.request.profile_arn.clone()),
                role_arn: Some(s.request.role_arn.clone()),
                session: Ok(s),
            })
        }
    }
}

/// `--from-agent NAME` names no profile of the configuration file.
#[derive(Debug, thiserror::Error)]
#[error(
    "profile {} is not in {} (its profiles: {}); give one of them to --from-agent, or --config \
     the file that has it",
    crate::text::arg(.profile),
    crate::text::path(.config),
    if .known.is_empty() { "none".to_string() } else { .known.iter().map(|k| crate::text::arg(k)).collect::<Vec<_>>().join(", ") }
)]
pub struct UnknownProfile {
    profile: String,
    known: Vec<String>,
    config: std::path::PathBuf,
}

impl rolesanywhere_core::Classify for UnknownProfile {
    fn class(&self) -> rolesanywhere_core::ErrorClass {
        rolesanywhere_core::ErrorClass::Configuration
    }
}
