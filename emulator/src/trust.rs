//! What CreateSession decides after the verifier accepted a request: the principal tags the
//! profile's attribute mappings derive from the leaf certificate, the source identity, and whether
//! the role's trust policy lets IAM Roles Anywhere assume the role with them.
//!
//! Pure: an [`Accepted`] request and the configuration snapshot in, a [`Grant`] or a [`Denial`]
//! out; no I/O, no clock. The facts (`../shared/emulator.md`, the IAM Roles Anywhere user guide's
//! trust model):
//!
//! - The trust policy must grant `rolesanywhere.amazonaws.com` `sts:AssumeRole`,
//!   `sts:SetSourceIdentity` and `sts:TagSession`; all three are evaluated for every session.
//! - The request's keys: `aws:PrincipalTag/<tag>` for each mapped tag, `aws:SourceArn` (the trust
//!   anchor's ARN) and `sts:SourceIdentity`. A tag the mapping dropped is absent, so a negated
//!   operator such as `StringNotEquals` on it holds.
//! - A denied request gets the service's answer, 403 `AccessDeniedException` "Unable to assume
//!   role for <role ARN>."; which statement and condition decided goes only to the decision log.
//! - A role without a trust policy (none in the configuration, or not configured at all) is
//!   assumed without evaluation, as before trust policies were evaluated.

use serde_json::{Value, json};

use crate::config::Config;
use crate::mapping::{self, CertificateNames, PrincipalTags};
use crate::policy::{
    self, ActionDecision, ConditionTrace, MissReason, Outcome, Policy, RequestContext, StatementRef,
};
use crate::server::bounded_text;
use crate::verifier::Accepted;

/// The actions Roles Anywhere asks STS for, in the order they are evaluated and logged.
pub const ACTIONS: [&str; 3] = [
    policy::ASSUME_ROLE,
    policy::TAG_SESSION,
    policy::SET_SOURCE_IDENTITY,
];

/// Longest subject CN used as the source identity (`CN=` plus 61 characters fits STS's 64).
const MAX_SOURCE_IDENTITY_CN: usize = 61;

/// A session the trust policy allows (or a role without one).
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// The principal tags, in the order the mapping produced them (subject, issuer, SAN; rules in
    /// order), and the attributes it dropped.
    pub principal_tags: PrincipalTags,
    /// `CN=<subject CN>`, or `ID=<serial hex>` without a usable CN.
    pub source_identity: String,
    /// The profile's session policy.
    pub session_policy: Option<String>,
    /// For the decision log: `"trust_policy"` (`"none configured"`, or `result`, each action's
    /// outcome and statement in `actions`, and in `decided_by` the deciding action with its
    /// statement(s) and conditions: operator, key, policy and request values), `"principal_tags"`,
    /// `"dropped_tags"` and `"source_identity"`. Text is escaped and bounded.
    pub record: Value,
}

/// A session the trust policy refuses, or that cannot be judged.
#[derive(Debug, Clone, PartialEq)]
pub struct Denial {
    /// What the client is told: the service's wording, nothing about the policy's content.
    pub message: String,
    /// One line for the decision log naming what decided (statement, condition, values).
    pub detail: String,
    /// For the decision log, as [`Grant::record`].
    pub record: Value,
}

/// The source identity of a session: `CN=` the subject's common name when it fits STS's 64
/// characters, else `ID=` the serial in hex.
pub fn source_identity(acc: &Accepted) -> String {
    match &acc.subject_cn {
        Some(cn) if cn.chars().count() <= MAX_SOURCE_IDENTITY_CN => format!("CN={cn}"),
        _ => format!("ID={}", acc.serial_hex),
    }
}

/// Derives the principal tags of `acc`'s certificate under its profile's mappings, and evaluates
/// the role's trust policy for [`ACTIONS`].
pub fn authorize(acc: &Accepted, config: &Config) -> Result<Grant, Denial> {
    let role = &acc.role_arn;
    let unable = || format!("Unable to assume role for {role}.");
    // The verifier found the profile in this same snapshot; a miss here is a bug, refused anyway.
    let Some(profile) = config.profile(&acc.profile_arn) else {
        return Err(Denial {
            message: unable(),
            detail: format!(
                "profile {} vanished from the configuration",
                acc.profile_arn
            ),
            record: json!({}),
        });
    };
    let names = CertificateNames::from_der(&acc.leaf_der).map_err(|e| Denial {
        message: unable(),
        detail: format!(
            "{} principal tags cannot be derived: the leaf certificate's names do not read: {e}",
            unable()
        ),
        record: json!({}),
    })?;
    let tags = mapping::map(&names, &profile.attribute_mappings);
    let source_identity = source_identity(acc);
    let mut record = tags_record(&tags, &source_identity);

    let document = config.role(role).and_then(|r| r.trust_policy.as_deref());
    let Some(document) = document else {
        record["trust_policy"] = json!("none configured");
        return Ok(Grant {
            principal_tags: tags,
            source_identity,
            session_policy: profile.session_policy.clone(),
            record,
        });
    };
    let parsed = match Policy::parse(document) {
        Ok(p) => p,
        Err(e) => {
            record["trust_policy"] = json!({
                "result": "unusable",
                "error": bounded_text(&e.to_string()),
            });
            return Err(Denial {
                message: format!(
                    "Unable to assume role for {role}: the emulator's stored trust policy for this role does not parse ({e}); correct the role's trust policy"
                ),
                detail: format!("{} The role's trust policy does not parse: {e}", unable()),
                record,
            });
        }
    };
    let ctx = RequestContext::roles_anywhere()
        .with_principal_tags(tags.tags.iter().map(|(k, v)| (k, v.clone())))
        .with_source_arn(&acc.trust_anchor_arn)
        .with_key("sts:SourceIdentity", [source_identity.clone()]);
    let decision = parsed.evaluate(&ctx, &ACTIONS);
    let allowed = decision.is_allowed();
    // In full only the action that decided: the refused one, or `sts:AssumeRole` when allowed.
    let decided_by = decision.refusal().or(decision.actions.first());
    record["trust_policy"] = json!({
        "result": if allowed { "allowed" } else { "denied" },
        "actions": decision.actions.iter().map(action_summary).collect::<Vec<_>>(),
        "decided_by": decided_by.map(action_record),
    });
    if allowed {
        Ok(Grant {
            principal_tags: tags,
            source_identity,
            session_policy: profile.session_policy.clone(),
            record,
        })
    } else {
        Err(Denial {
            message: unable(),
            detail: format!("{} Trust policy {decision}", unable()),
            record,
        })
    }
}

/// `principal_tags` (object, mapping order), `dropped_tags` (one line each) and
/// `source_identity`, escaped and bounded: they are certificate text.
fn tags_record(tags: &PrincipalTags, source_identity: &str) -> Value {
    let kept: serde_json::Map<String, Value> = tags
        .tags
        .iter()
        .map(|(k, v)| (bounded_text(k), Value::String(bounded_text(v))))
        .collect();
    let dropped: Vec<Value> = tags
        .dropped
        .iter()
        .map(|d| Value::String(bounded_text(&d.to_string())))
        .collect();
    json!({
        "principal_tags": kept,
        "dropped_tags": dropped,
        "source_identity": bounded_text(source_identity),
    })
}

fn statement_record(s: &StatementRef) -> Value {
    json!({
        "index": s.index,
        "sid": s.sid.as_deref().map(bounded_text),
    })
}

fn condition_record(c: &ConditionTrace) -> Value {
    let texts = |v: &[String]| v.iter().map(|s| bounded_text(s)).collect::<Vec<_>>();
    json!({
        "operator": bounded_text(&c.operator),
        "key": bounded_text(&c.key),
        "policy_values": texts(&c.policy_values),
        "request_values": c.request_values.as_deref().map(texts),
        "held": c.held,
    })
}

/// One action's outcome and the statement that allowed or explicitly denied it.
fn action_summary(a: &ActionDecision) -> Value {
    match &a.outcome {
        Outcome::Allowed { statement, .. } => json!({
            "action": a.action,
            "outcome": "allowed",
            "statement": statement_record(statement),
        }),
        Outcome::ExplicitDeny { statement, .. } => json!({
            "action": a.action,
            "outcome": "explicit deny",
            "statement": statement_record(statement),
        }),
        Outcome::ImplicitDeny { .. } => json!({
            "action": a.action,
            "outcome": "implicit deny",
        }),
    }
}

/// One action's outcome in full: the statement that allowed or explicitly denied it with its conditions,
/// or, for an implicit deny, every `Allow` statement with the first thing that did not match.
fn action_record(a: &ActionDecision) -> Value {
    match &a.outcome {
        Outcome::Allowed {
            statement,
            conditions,
        } => json!({
            "action": a.action,
            "outcome": "allowed",
            "statement": statement_record(statement),
            "conditions": conditions.iter().map(condition_record).collect::<Vec<_>>(),
        }),
        Outcome::ExplicitDeny {
            statement,
            conditions,
        } => json!({
            "action": a.action,
            "outcome": "explicit deny",
            "statement": statement_record(statement),
            "conditions": conditions.iter().map(condition_record).collect::<Vec<_>>(),
        }),
        Outcome::ImplicitDeny { misses } => json!({
            "action": a.action,
            "outcome": "implicit deny",
            "misses": misses
                .iter()
                .map(|m| {
                    let mut v = json!({ "statement": statement_record(&m.statement) });
                    match &m.reason {
                        MissReason::Principal => v["reason"] = json!("principal does not match"),
                        MissReason::Action => v["reason"] = json!("action does not match"),
                        MissReason::Condition(c) => {
                            v["reason"] = json!("condition does not hold");
                            v["condition"] = condition_record(c);
                        }
                    }
                    v
                })
                .collect::<Vec<_>>(),
        }),
    }
}

#[cfg(test)]
mod tests;
