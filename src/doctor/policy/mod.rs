//! Check 5: the role's trust policy evaluated for this certificate and this trust anchor ARN.
//!
//! The agent's own reading of IAM's rules ([`document`] parses, [`eval`] decides), written apart
//! from the emulator's engine: `testdata/policy-cases.json` holds both to the same decisions.
//! The request it evaluates is the one Roles Anywhere makes: the caller is the service principal
//! `rolesanywhere.amazonaws.com`; the keys are the certificate's principal tags
//! (`aws:PrincipalTag/…`, from the tags check), `sts:SourceIdentity` and `aws:SourceArn` (the
//! trust anchor ARN). A condition on a key whose value is not known here (no certificate, no
//! `--trust-anchor-arn`) is said to be unjudged instead of failed.

pub mod document;
pub mod eval;

#[cfg(test)]
mod cases;

use super::{Check, Context, Finding, Report};
use document::{DocError, Effect, Policy, Principal, Test};
use eval::{Judged, Miss, Outcome, Request};
use std::path::Path;

/// The Roles Anywhere service principal.
pub const SERVICE: &str = "rolesanywhere.amazonaws.com";
/// The action CreateSession needs.
pub const ASSUME_ROLE: &str = "sts:AssumeRole";
/// Needed because the session carries the certificate's attributes as session tags.
pub const TAG_SESSION: &str = "sts:TagSession";
/// Needed because the session carries a source identity.
pub const SET_SOURCE_IDENTITY: &str = "sts:SetSourceIdentity";

const TAG_PREFIX: &str = "aws:PrincipalTag/";
const SOURCE_ARN: &str = "aws:SourceArn";
const SOURCE_IDENTITY: &str = "sts:SourceIdentity";

/// Reads a policy file of at most [`crate::userfile::Kind::Policy`]'s size as UTF-8: a regular
/// file only (a FIFO or a terminal is refused, never waited on), as every file the agent reads.
pub fn read_policy_file(path: &Path) -> Result<String, String> {
    let bytes = crate::userfile::read(path, crate::userfile::Kind::Policy)
        .map_err(|e| crate::text::error_chain(&e))?;
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        format!(
            "it is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// What the request is known to carry, for the evaluation and the wording.
struct Known<'a> {
    request: Request,
    tags: Option<&'a super::tags::PrincipalTags>,
    trust_anchor_arn: Option<&'a str>,
}

impl Known<'_> {
    /// Whether the value of `key` is unknown here (so a condition on it cannot be judged).
    fn unknown(&self, key: &str) -> bool {
        let lower = key.to_ascii_lowercase();
        if lower.starts_with(&TAG_PREFIX.to_ascii_lowercase())
            || lower == SOURCE_IDENTITY.to_ascii_lowercase()
        {
            return self.tags.is_none();
        }
        if lower == SOURCE_ARN.to_ascii_lowercase() {
            return self.trust_anchor_arn.is_none();
        }
        // A key doctor does not model (aws:SourceAccount, aws:CurrentTime, …): the service may
        // well send it, so a condition on it cannot be judged here either way.
        true
    }

    /// Whether `key` is one doctor models (principal tags, source identity, source ARN).
    fn modelled(key: &str) -> bool {
        let lower = key.to_ascii_lowercase();
        lower.starts_with(&TAG_PREFIX.to_ascii_lowercase())
            || lower == SOURCE_IDENTITY.to_ascii_lowercase()
            || lower == SOURCE_ARN.to_ascii_lowercase()
    }

    /// "this certificate gives X" / "the request has no K (because …)".
    fn gives(&self, j: &Judged) -> String {
        let key = j.condition.key.as_str();
        let lower = key.to_ascii_lowercase();
        let is_tag = lower.starts_with(&TAG_PREFIX.to_ascii_lowercase());
        match &j.actual {
            Some(values) => {
                let v = values.join(", ");
                if is_tag {
                    format!("this certificate gives {v}")
                } else if lower == SOURCE_IDENTITY.to_ascii_lowercase() {
                    format!("this certificate's source identity is {v}")
                } else if lower == SOURCE_ARN.to_ascii_lowercase() {
                    format!("the trust anchor ARN is {v}")
                } else {
                    format!("the request has {v}")
                }
            }
            None if self.unknown(key) && lower == SOURCE_ARN.to_ascii_lowercase() => {
                "no --trust-anchor-arn was given, so conditions on aws:SourceArn cannot be judged"
                    .to_string()
            }
            None if !Self::modelled(key) => format!(
                "doctor does not know what the service sends for {key}, so this condition \
                 cannot be judged here"
            ),
            None if self.unknown(key) => {
                "no certificate was read, so its principal tags and source identity are unknown"
                    .to_string()
            }
            None if is_tag => {
                let tag_key = &key[TAG_PREFIX.len().min(key.len())..];
                match self.tags.and_then(|t| t.get(tag_key)) {
                    Some(t) => format!(
                        "STS drops this certificate's value {} ({}), so the request has no {key}",
                        t.value,
                        t.dropped
                            .as_ref()
                            .map(|d| d.to_string())
                            .unwrap_or_default()
                    ),
                    None => format!(
                        "this certificate has no such attribute, so the request has no {key}"
                    ),
                }
            }
            None => format!(
                "Roles Anywhere does not send {key} as far as doctor knows, so it is judged absent"
            ),
        }
    }
}

/// What the policy wants of a condition's key, in words.
fn wants(c: &document::Condition) -> String {
    if c.test == Test::Null {
        return if c.values.iter().any(|v| v == "true") {
            "the key absent (Null true)".to_string()
        } else {
            "the key present (Null false)".to_string()
        };
    }
    let list = c.values.join(", ");
    let body = match (c.test.is_negated(), c.values.len()) {
        (false, 1) => list,
        (false, _) => format!("one of {list}"),
        (true, 1) => format!("anything but {list}"),
        (true, _) => format!("none of {list}"),
    };
    match c.set {
        Some(document::Set::AllValues) => format!("every value to be {body}"),
        Some(document::Set::AnyValue) => format!("some value to be {body}"),
        None => body,
    }
}

/// `StringEquals aws:PrincipalTag/x509Subject/CN: the policy wants A, this certificate gives B`.
fn failed_condition(known: &Known, j: &Judged) -> String {
    format!(
        "{} {}: the policy wants {}, {}",
        j.condition.operator,
        j.condition.key,
        wants(&j.condition),
        known.gives(j)
    )
}

/// `StringEquals aws:PrincipalTag/x509Subject/CN is web-1`.
fn held_condition(j: &Judged) -> String {
    match &j.actual {
        Some(v) => format!(
            "{} {} holds ({})",
            j.condition.operator,
            j.condition.key,
            v.join(", ")
        ),
        None => format!(
            "{} {} holds (key absent)",
            j.condition.operator, j.condition.key
        ),
    }
}

/// Why each `Allow` statement did not allow `action`, and whether every reason is an unjudged
/// condition (then the outcome is not known).
fn explain_misses(
    policy: &Policy,
    known: &Known,
    action: &str,
    misses: &[(usize, Miss)],
) -> (String, bool) {
    if misses.is_empty() {
        return ("the policy has no Allow statement".to_string(), false);
    }
    let mut parts = Vec::new();
    let mut unjudged = false;
    for (index, miss) in misses {
        let name = policy
            .statements
            .get(*index)
            .map(|s| s.name())
            .unwrap_or_else(|| format!("statement {index}"));
        match miss {
            Miss::Principal => parts.push(format!(
                "{name} does not name the principal Service {SERVICE}"
            )),
            Miss::Action => parts.push(format!("{name} does not list {action}")),
            Miss::Conditions(failed) => {
                if failed.iter().all(|j| known.unknown(&j.condition.key)) {
                    unjudged = true;
                }
                let what: Vec<String> = failed.iter().map(|j| failed_condition(known, j)).collect();
                parts.push(format!("{name}: {}", what.join("; and ")));
            }
        }
    }
    (parts.join(" | "), unjudged)
}

/// The fix for a refused `sts:AssumeRole`.
fn fix_for(misses: &[(usize, Miss)]) -> String {
    let mut fixes = Vec::new();
    for (_, miss) in misses {
        match miss {
            Miss::Principal => fixes.push(format!(
                "add \"Principal\": {{\"Service\": \"{SERVICE}\"}} to the statement"
            )),
            Miss::Action => fixes.push(format!(
                "add \"{ASSUME_ROLE}\", \"{TAG_SESSION}\" and \"{SET_SOURCE_IDENTITY}\" to the \
                 statement's Action"
            )),
            Miss::Conditions(failed) => {
                for j in failed {
                    let key = j.condition.key.to_ascii_lowercase();
                    if key == SOURCE_ARN.to_ascii_lowercase() {
                        fixes.push(
                            "use the trust anchor the condition names (--trust-anchor-arn), or \
                             add this trust anchor's ARN to the condition"
                                .to_string(),
                        );
                    } else if key.starts_with(&TAG_PREFIX.to_ascii_lowercase()) {
                        fixes.push(format!(
                            "issue a certificate whose {} the condition accepts, or change the \
                             condition to accept this certificate",
                            &j.condition.key[TAG_PREFIX.len().min(j.condition.key.len())..]
                        ));
                    } else {
                        fixes.push(format!(
                            "change the condition on {} to accept this request",
                            j.condition.key
                        ));
                    }
                }
            }
        }
    }
    fixes.dedup();
    if fixes.is_empty() {
        format!(
            "add a statement that allows {ASSUME_ROLE}, {TAG_SESSION} and {SET_SOURCE_IDENTITY} \
             to the principal Service {SERVICE}"
        )
    } else {
        fixes.join("; ")
    }
}

/// Check 5.
pub fn check(cx: &mut Context, report: &mut Report) {
    let Some(path) = cx.options.trust_policy.as_deref() else {
        report.push(Finding::skipped(
            Check::TrustPolicy,
            "trust policy",
            "no --trust-policy given; give --trust-policy FILE (the role's trust policy JSON) \
             to evaluate it for this certificate",
        ));
        return;
    };
    let object = format!("trust policy {}", path.display());
    let text = match read_policy_file(path) {
        Ok(t) => t,
        Err(e) => {
            report.push(Finding::failed(
                Check::TrustPolicy,
                object,
                e,
                "give --trust-policy the role's trust policy document (aws iam get-role \
                 --role-name ROLE --query Role.AssumeRolePolicyDocument)",
            ));
            return;
        }
    };
    let policy = match Policy::parse(&text) {
        Ok(p) => p,
        Err(e @ DocError::NotJudged { .. }) => {
            report.push(Finding::warning(
                Check::TrustPolicy,
                object,
                format!("{e}, so the policy was not evaluated"),
                "check this statement by hand, or run doctor with --live",
            ));
            return;
        }
        Err(e) => {
            report.push(Finding::failed(
                Check::TrustPolicy,
                object,
                e.to_string(),
                "correct the document: IAM refuses it as well (MalformedPolicyDocument)",
            ));
            return;
        }
    };
    let tags = cx.tags.as_ref();
    let trust_anchor_arn = cx.subject.trust_anchor_arn.as_deref();
    let mut request = Request::new(SERVICE);
    if let Some(t) = tags {
        for (k, v) in t.kept() {
            request.set(&format!("{TAG_PREFIX}{k}"), vec![v.to_string()]);
        }
        if let Some(si) = &t.source_identity {
            request.set(SOURCE_IDENTITY, vec![si.clone()]);
        }
    }
    if let Some(arn) = trust_anchor_arn {
        request.set(SOURCE_ARN, vec![arn.to_string()]);
    }
    let known = Known {
        request,
        tags,
        trust_anchor_arn,
    };
    evaluate(&policy, &known, &object, report);
}

fn evaluate(policy: &Policy, known: &Known, object: &str, report: &mut Report) {
    let trusts = policy.statements.iter().any(|s| {
        s.effect == Effect::Allow
            && match &s.principal {
                Principal::Anyone => true,
                Principal::Named(list) => list.iter().any(|(k, v)| k == "Service" && v == SERVICE),
            }
    });
    if !trusts {
        report.push(Finding::failed(
            Check::TrustPolicy,
            object,
            format!("no Allow statement names the principal Service {SERVICE}"),
            format!(
                "add \"Principal\": {{\"Service\": \"{SERVICE}\"}} to the statement that allows \
                 {ASSUME_ROLE}"
            ),
        ));
        return;
    }
    let name = |i: usize| {
        policy
            .statements
            .get(i)
            .map(|s| s.name())
            .unwrap_or_else(|| format!("statement {i}"))
    };
    let unknown_note = match (known.tags.is_none(), known.trust_anchor_arn.is_none()) {
        (true, true) => {
            " (no certificate and no --trust-anchor-arn: conditions on them were not judged)"
        }
        (true, false) => " (no certificate: conditions on its tags were not judged)",
        (false, true) => " (no --trust-anchor-arn: conditions on aws:SourceArn were not judged)",
        (false, false) => "",
    };
    let assume = eval::decide(policy, &known.request, ASSUME_ROLE);
    match &assume {
        Outcome::Allowed {
            statement,
            conditions,
        } => {
            let how = if conditions.is_empty() {
                " (no conditions)".to_string()
            } else {
                format!(
                    ": {}",
                    conditions
                        .iter()
                        .map(held_condition)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            // A condition that held only because doctor lacks the key's value (no trust anchor
            // ARN, no certificate, a key it does not model) proves nothing: a warning.
            let unjudged: Vec<&str> = conditions
                .iter()
                .filter(|j| known.unknown(&j.condition.key))
                .map(|j| j.condition.key.as_str())
                .collect();
            if unjudged.is_empty() {
                report.push(Finding::passed(
                    Check::TrustPolicy,
                    format!("{object} {}", name(*statement)),
                    format!(
                        "allows {ASSUME_ROLE} to {SERVICE} for this certificate and trust \
                         anchor{how}"
                    ),
                ));
            } else {
                report.push(Finding::warning(
                    Check::TrustPolicy,
                    format!("{object} {}", name(*statement)),
                    format!(
                        "allows {ASSUME_ROLE} to {SERVICE}{how}, but only because the value of {} \
                         is unknown here, so the service may decide otherwise",
                        unjudged.join(", ")
                    ),
                    "give doctor what it lacks (--trust-anchor-arn, a readable certificate), or \
                     check these conditions by hand",
                ));
            }
        }
        Outcome::Denied {
            statement,
            conditions,
        } => {
            let unjudged = conditions.iter().any(|j| known.unknown(&j.condition.key));
            let why = if conditions.is_empty() {
                String::new()
            } else {
                format!(
                    " because {}",
                    conditions
                        .iter()
                        .map(held_condition)
                        .collect::<Vec<_>>()
                        .join(" and ")
                )
            };
            let cause =
                format!("explicitly denies {ASSUME_ROLE}{why}; a Deny overrides every Allow");
            let fix = "remove or narrow the Deny statement, or use a certificate it does not match";
            let o = format!("{object} {}", name(*statement));
            report.push(if unjudged {
                Finding::warning(Check::TrustPolicy, o, format!("{cause}{unknown_note}"), fix)
            } else {
                Finding::failed(Check::TrustPolicy, o, cause, fix)
            });
        }
        Outcome::NotAllowed { misses } => {
            let (why, unjudged) = explain_misses(policy, known, ASSUME_ROLE, misses);
            let cause = format!("does not allow {ASSUME_ROLE} for this request: {why}");
            let fix = fix_for(misses);
            report.push(if unjudged {
                Finding::warning(
                    Check::TrustPolicy,
                    object,
                    format!("{cause}{unknown_note}"),
                    fix,
                )
            } else {
                Finding::failed(Check::TrustPolicy, object, cause, fix)
            });
        }
    }
    if !assume.allowed() {
        return;
    }
    // Roles Anywhere always asks for all three actions (the user guide: the policy "must grant"
    // them), and STS refuses session tags without sts:TagSession and a source identity without
    // sts:SetSourceIdentity: a missing one fails when the certificate gives tags (or a source
    // identity), as the emulator refuses it; it is a warning only when doctor cannot tell.
    let tag_count = known.tags.map(|t| t.kept().count());
    let source_identity = known.tags.and_then(|t| t.source_identity.as_deref());
    for (action, needed, cause) in [
        (
            TAG_SESSION,
            tag_count.map(|n| n > 0),
            format!(
                "Roles Anywhere passes the certificate's attributes as session tags{}, and STS \
                 refuses to assume a role with session tags unless its trust policy allows \
                 {TAG_SESSION}",
                tag_count
                    .map(|n| format!(" ({n} here)"))
                    .unwrap_or_default()
            ),
        ),
        (
            SET_SOURCE_IDENTITY,
            known.tags.map(|_| source_identity.is_some()),
            format!(
                "Roles Anywhere sets the session's source identity{}, which STS allows only when \
                 the trust policy allows {SET_SOURCE_IDENTITY} (the Roles Anywhere user guide lists \
                 it with {ASSUME_ROLE} and {TAG_SESSION} as required)",
                source_identity
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default()
            ),
        ),
    ] {
        let finding = |object: String, cause: String, fix: String| match needed {
            Some(true) => Finding::failed(
                Check::TrustPolicy,
                object,
                format!("{cause}: CreateSession will be refused (AccessDenied)"),
                fix,
            ),
            Some(false) => Finding::warning(
                Check::TrustPolicy,
                object,
                format!("{cause}; this certificate gives none, but the guide requires it"),
                fix,
            ),
            None => Finding::warning(
                Check::TrustPolicy,
                object,
                format!("{cause}: CreateSession will most likely be refused"),
                fix,
            ),
        };
        match eval::decide(policy, &known.request, action) {
            Outcome::Allowed { .. } => {}
            Outcome::Denied { statement, .. } => report.push(finding(
                format!("{object} {}", name(statement)),
                format!("explicitly denies {action}; {cause}"),
                format!("do not deny {action} to {SERVICE}"),
            )),
            Outcome::NotAllowed { misses } => {
                let (why, _) = explain_misses(policy, known, action, &misses);
                report.push(finding(
                    object.to_string(),
                    format!("does not allow {action} ({why}); {cause}"),
                    format!(
                        "add \"{action}\" to the Action list of the statement that allows \
                         {ASSUME_ROLE}"
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    const SEEDS: &str = include_str!("../../../emulator/testdata/seeds-trust-policy.json");

    fn run(policy: &str, cn: Option<&str>, arn: Option<&str>) -> Vec<Finding> {
        let tags = cn.map(|cn| {
            crate::doctor::tags::derive(
                &[("2.5.4.3".to_string(), cn.to_string())],
                &[],
                &crate::certs::AltNames::default(),
                "01",
            )
        });
        let mut request = Request::new(SERVICE);
        if let Some(t) = &tags {
            for (k, v) in t.kept() {
                request.set(&format!("{TAG_PREFIX}{k}"), vec![v.to_string()]);
            }
        }
        if let Some(a) = arn {
            request.set(SOURCE_ARN, vec![a.to_string()]);
        }
        let known = Known {
            request,
            tags: tags.as_ref(),
            trust_anchor_arn: arn,
        };
        let mut report = Report::default();
        match Policy::parse(policy) {
            Ok(p) => evaluate(&p, &known, "trust policy t.json", &mut report),
            Err(e) => panic!("{e}"),
        }
        report.findings().to_vec()
    }

    #[test]
    fn conditions_on_unknown_values_are_unjudged_not_failed() {
        let f = run(SEEDS, Some("backup-server.corp.example.com"), None);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].status, Status::Warning, "{f:?}");
        assert!(
            f[0].cause
                .contains("conditions on aws:SourceArn cannot be judged"),
            "{f:?}"
        );
        // A CN that does not match still fails, whatever the ARN.
        let f = run(SEEDS, Some("other"), None);
        assert_eq!(f[0].status, Status::Failed, "{f:?}");
        // No certificate: the CN condition is unjudged.
        let anchor = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/abcd1234-ef56-gh78-ij90-klmnopqrstuv";
        let f = run(SEEDS, None, Some(anchor));
        assert_eq!(f[0].status, Status::Warning, "{f:?}");
        assert!(f[0].cause.contains("no certificate was read"), "{f:?}");
    }

    #[test]
    fn an_explicit_deny_names_its_statement() {
        let doc = r#"{"Statement":[
            {"Effect":"Allow","Principal":{"Service":"rolesanywhere.amazonaws.com"},"Action":"sts:*"},
            {"Sid":"NoWeb","Effect":"Deny","Principal":"*","Action":"sts:AssumeRole",
             "Condition":{"StringLike":{"aws:PrincipalTag/x509Subject/CN":"web-*"}}}]}"#;
        let f = run(
            doc,
            Some("web-1"),
            Some("arn:aws:rolesanywhere:us-east-1:1:trust-anchor/x"),
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].status, Status::Failed);
        assert_eq!(f[0].object, "trust policy t.json statement 1 (\"NoWeb\")");
        assert!(f[0].cause.starts_with("explicitly denies sts:AssumeRole because StringLike aws:PrincipalTag/x509Subject/CN holds (web-1)"), "{f:?}");
    }

    #[test]
    fn no_statement_for_the_service_principal_fails() {
        let doc = r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        let f = run(doc, Some("web-1"), None);
        assert_eq!(f[0].status, Status::Failed);
        assert!(
            f[0].cause.contains(
                "no Allow statement names the principal Service rolesanywhere.amazonaws.com"
            ),
            "{f:?}"
        );
        let f = run(r#"{"Statement":[]}"#, Some("web-1"), None);
        assert_eq!(f[0].status, Status::Failed);
    }

    /// Wrong types anywhere are errors with a position, never panics.
    #[test]
    fn malformed_documents_are_refused_with_their_position() {
        let cases = [
            ("null", "the top level"),
            (r#"{"Statement":5}"#, "Statement"),
            (r#"{"Statement":[5]}"#, "Statement[0]"),
            (r#"{"Version":1,"Statement":[]}"#, "Version"),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":7,"Action":"x"}}"#,
                "Statement.Principal",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":{"Service":[1]},"Action":"x"}}"#,
                "Statement.Principal.Service[0]",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":[]}}"#,
                "Statement.Action",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"x","Condition":[]}}"#,
                "Statement.Condition",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"x","Condition":{"StringEquals":"v"}}}"#,
                "Statement.Condition.StringEquals",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"x","Condition":{"StringEquals":{"k":null}}}}"#,
                "Statement.Condition.StringEquals.k",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"x","Condition":{"StringEquals":{"k":[[1]]}}}}"#,
                "Statement.Condition.StringEquals.k[0]",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"x","Condition":{"Nope":{"k":"v"}}}}"#,
                "Statement.Condition.Nope",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"x","Condition":{"Null":{"k":"maybe"}}}}"#,
                "Statement.Condition.Null.k",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"x","Resource":"*"}}"#,
                "Statement.Resource",
            ),
        ];
        for (doc, at) in cases {
            match Policy::parse(doc) {
                Err(DocError::Structure { at: a, .. }) => assert_eq!(a, at, "{doc}"),
                other => panic!("{doc}: {other:?}"),
            }
        }
        assert!(matches!(
            Policy::parse(
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"x","Condition":{"Bool":{"aws:SecureTransport":"true"}}}}"#
            ),
            Err(DocError::NotJudged { .. })
        ));
    }
}
