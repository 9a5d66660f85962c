//! Evaluating a parsed trust policy against one request.
//!
//! Pure. The rules, as the IAM user guide states them:
//!
//! - A statement applies to an action when its principal names the caller, its `Action` matches
//!   (or its `NotAction` does not), and every condition holds (AND across operators and keys).
//! - An applicable `Deny` wins over any `Allow`; with no applicable `Allow` the action is
//!   implicitly denied. Every requested action must be allowed.
//! - One condition (operator, key, values) holds when any policy value matches (OR). Key names
//!   are case-insensitive, values case-sensitive (except `…IgnoreCase`).
//! - A key absent from the request: a positive operator is false, a negated one
//!   (`StringNotEquals`, `StringNotLike`, `ArnNotEquals`, …) is true; `…IfExists` is true;
//!   `ForAllValues:` is true; `ForAnyValue:` is false; `Null` is true for `"true"`.
//!   A principal tag the attribute mapping dropped is such an absent key.
//! - Negated operators hold when no policy value matches the request value; with
//!   `ForAllValues:` every request value must satisfy the operator, with `ForAnyValue:` one.

use std::collections::BTreeMap;
use std::fmt;

use super::{Comparison, Condition, Effect, Policy, Principal, ROLES_ANYWHERE_SERVICE, Statement};
use super::{SetQualifier, glob};

/// The request as the trust policy sees it: the calling service and the condition keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    principal_service: String,
    /// Lower-cased key name → (key as given, values).
    keys: BTreeMap<String, (String, Vec<String>)>,
}

impl RequestContext {
    /// The context of a Roles Anywhere `CreateSession`: the caller is
    /// `rolesanywhere.amazonaws.com`, with no keys yet.
    pub fn roles_anywhere() -> Self {
        Self::for_service(ROLES_ANYWHERE_SERVICE)
    }

    /// A context whose caller is another service principal.
    pub fn for_service(service: &str) -> Self {
        RequestContext {
            principal_service: service.to_string(),
            keys: BTreeMap::new(),
        }
    }

    /// Sets a condition key (replacing an earlier value of the same key in any case).
    pub fn with_key<I, S>(mut self, key: &str, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let values = values.into_iter().map(Into::into).collect();
        self.keys
            .insert(key.to_lowercase(), (key.to_string(), values));
        self
    }

    /// Adds `aws:PrincipalTag/<key>` for each tag, e.g. `x509Subject/CN`.
    pub fn with_principal_tags<I, K, V>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        for (k, v) in tags {
            self = self.with_key(&format!("aws:PrincipalTag/{}", k.as_ref()), [v.into()]);
        }
        self
    }

    /// Sets `aws:SourceArn` (for Roles Anywhere: the trust anchor's ARN).
    pub fn with_source_arn(self, arn: &str) -> Self {
        self.with_key("aws:SourceArn", [arn])
    }

    /// The values of a key, matched case-insensitively; `None` when absent or empty.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.keys
            .get(&key.to_lowercase())
            .map(|(_, v)| v.as_slice())
            .filter(|v| !v.is_empty())
    }
}

/// A statement by position (0-based) and `Sid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRef {
    /// Index in the document's `Statement` array (0 for a single object).
    pub index: usize,
    /// `Sid`, if any.
    pub sid: Option<String>,
}

impl fmt::Display for StatementRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Statement[{}]", self.index)?;
        match self.sid.as_deref() {
            Some(sid) if !sid.is_empty() => write!(f, " (Sid {sid:?})"),
            _ => Ok(()),
        }
    }
}

/// How one condition came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionTrace {
    /// The operator as written.
    pub operator: String,
    /// The key as written.
    pub key: String,
    /// The policy values.
    pub policy_values: Vec<String>,
    /// The request's values; `None` when the key was absent.
    pub request_values: Option<Vec<String>>,
    /// Whether the condition held.
    pub held: bool,
}

impl fmt::Display for ConditionTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `{:?}` quotes and escapes: certificate text never reaches a terminal raw.
        write!(
            f,
            "{} {:?} {:?} is {}",
            self.operator, self.key, self.policy_values, self.held
        )?;
        match &self.request_values {
            Some(v) => write!(f, " for request value {v:?}"),
            None => write!(f, " (key absent from the request)"),
        }
    }
}

/// Why a statement did not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MissReason {
    /// Its principal does not name the caller.
    Principal,
    /// Its `Action` / `NotAction` does not cover the action.
    Action,
    /// This condition (the first false one) did not hold.
    Condition(ConditionTrace),
}

/// An `Allow` statement that did not apply, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Miss {
    /// The statement.
    pub statement: StatementRef,
    /// Why.
    pub reason: MissReason,
}

impl fmt::Display for Miss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            MissReason::Principal => write!(f, "{}: principal does not match", self.statement),
            MissReason::Action => write!(f, "{}: action does not match", self.statement),
            MissReason::Condition(c) => write!(f, "{}: condition {c}", self.statement),
        }
    }
}

/// The decision for one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// This `Allow` statement applied (the first that did) with these conditions, all true.
    Allowed {
        /// The statement.
        statement: StatementRef,
        /// Its conditions, all held.
        conditions: Vec<ConditionTrace>,
    },
    /// This `Deny` statement applied (the first that did).
    ExplicitDeny {
        /// The statement.
        statement: StatementRef,
        /// Its conditions, all held.
        conditions: Vec<ConditionTrace>,
    },
    /// No `Allow` applied; each `Allow` statement with the reason it did not.
    ImplicitDeny {
        /// The `Allow` statements, in document order.
        misses: Vec<Miss>,
    },
}

/// One requested action and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionDecision {
    /// The action, e.g. `sts:AssumeRole`.
    pub action: String,
    /// What decided it.
    pub outcome: Outcome,
}

impl fmt::Display for ActionDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::Allowed { statement, .. } => {
                write!(f, "{} allowed by {statement}", self.action)
            }
            Outcome::ExplicitDeny {
                statement,
                conditions,
            } => {
                write!(f, "{} explicitly denied by {statement}", self.action)?;
                for (i, c) in conditions.iter().enumerate() {
                    write!(f, "{} {c}", if i == 0 { " because" } else { " and" })?;
                }
                Ok(())
            }
            Outcome::ImplicitDeny { misses } if misses.is_empty() => {
                write!(f, "{} implicitly denied: no Allow statement", self.action)
            }
            Outcome::ImplicitDeny { misses } => {
                write!(f, "{} implicitly denied: ", self.action)?;
                for (i, m) in misses.iter().enumerate() {
                    write!(f, "{}{m}", if i == 0 { "" } else { "; " })?;
                }
                Ok(())
            }
        }
    }
}

/// The decision for a request: one entry per requested action, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Per action.
    pub actions: Vec<ActionDecision>,
}

impl Decision {
    /// Whether at least one action was requested and every one is allowed.
    pub fn is_allowed(&self) -> bool {
        !self.actions.is_empty()
            && self
                .actions
                .iter()
                .all(|a| matches!(a.outcome, Outcome::Allowed { .. }))
    }

    /// The refusal that decides: the first explicit deny, else the first implicit deny.
    pub fn refusal(&self) -> Option<&ActionDecision> {
        self.actions
            .iter()
            .find(|a| matches!(a.outcome, Outcome::ExplicitDeny { .. }))
            .or_else(|| {
                self.actions
                    .iter()
                    .find(|a| matches!(a.outcome, Outcome::ImplicitDeny { .. }))
            })
    }
}

impl fmt::Display for Decision {
    /// One line for the decision log: the deciding refusal, or every action's allowing statement.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(r) = self.refusal() {
            return write!(f, "denied: {r}");
        }
        if self.actions.is_empty() {
            return write!(f, "denied: no action requested");
        }
        write!(f, "allowed: ")?;
        for (i, a) in self.actions.iter().enumerate() {
            write!(f, "{}{a}", if i == 0 { "" } else { ", " })?;
        }
        Ok(())
    }
}

impl Policy {
    /// Decides whether the caller in `ctx` may perform each of `actions` (all must be allowed).
    pub fn evaluate(&self, ctx: &RequestContext, actions: &[&str]) -> Decision {
        Decision {
            actions: actions
                .iter()
                .map(|action| ActionDecision {
                    action: action.to_string(),
                    outcome: self.evaluate_action(ctx, action),
                })
                .collect(),
        }
    }

    fn evaluate_action(&self, ctx: &RequestContext, action: &str) -> Outcome {
        let refs = |i: usize, s: &Statement| StatementRef {
            index: i,
            sid: s.sid.clone(),
        };
        for (i, s) in self.statements.iter().enumerate() {
            if s.effect == Effect::Deny
                && let Ok(conditions) = applies(s, ctx, action)
            {
                return Outcome::ExplicitDeny {
                    statement: refs(i, s),
                    conditions,
                };
            }
        }
        let mut misses = Vec::new();
        for (i, s) in self.statements.iter().enumerate() {
            if s.effect != Effect::Allow {
                continue;
            }
            match applies(s, ctx, action) {
                Ok(conditions) => {
                    return Outcome::Allowed {
                        statement: refs(i, s),
                        conditions,
                    };
                }
                Err(reason) => misses.push(Miss {
                    statement: refs(i, s),
                    reason,
                }),
            }
        }
        Outcome::ImplicitDeny { misses }
    }
}

/// Whether the statement applies; its condition traces if so, the reason if not.
fn applies(
    s: &Statement,
    ctx: &RequestContext,
    action: &str,
) -> Result<Vec<ConditionTrace>, MissReason> {
    let principal = match &s.principal {
        Principal::Any => true,
        Principal::Named { services, .. } => services.contains(&ctx.principal_service),
    };
    if !principal {
        return Err(MissReason::Principal);
    }
    // Action names are case-insensitive in IAM.
    let action_lc = action.to_lowercase();
    let listed = s
        .actions
        .patterns
        .iter()
        .any(|p| glob::matches(&p.to_lowercase(), &action_lc));
    if listed == s.actions.negated {
        return Err(MissReason::Action);
    }
    let mut traces = Vec::with_capacity(s.conditions.len());
    for c in &s.conditions {
        let t = evaluate_condition(c, ctx);
        if !t.held {
            return Err(MissReason::Condition(t));
        }
        traces.push(t);
    }
    Ok(traces)
}

/// Evaluates one (operator, key, values) condition.
pub(crate) fn evaluate_condition(c: &Condition, ctx: &RequestContext) -> ConditionTrace {
    let request = ctx.get(&c.key);
    let negated = c.comparison.is_negated();
    let held = match request {
        None => {
            if c.comparison == Comparison::Null {
                c.values.iter().any(|v| v == "true")
            } else if c.if_exists {
                true
            } else {
                match c.qualifier {
                    Some(SetQualifier::ForAllValues) => true,
                    Some(SetQualifier::ForAnyValue) => false,
                    None => negated,
                }
            }
        }
        Some(values) => {
            if c.comparison == Comparison::Null {
                c.values.iter().any(|v| v == "false")
            } else {
                let satisfies = |v: &String| {
                    let any = c.values.iter().any(|p| compare(c.comparison, p, v));
                    any != negated
                };
                match c.qualifier {
                    Some(SetQualifier::ForAllValues) => values.iter().all(satisfies),
                    Some(SetQualifier::ForAnyValue) => values.iter().any(satisfies),
                    // A negated operator on a multi-valued key: no request value may match.
                    None if negated => values.iter().all(satisfies),
                    None => values.iter().any(satisfies),
                }
            }
        }
    };
    ConditionTrace {
        operator: c.operator.clone(),
        key: c.key.clone(),
        policy_values: c.values.clone(),
        request_values: request.map(<[String]>::to_vec),
        held,
    }
}

/// Whether the policy value `p` matches the request value `v` (the positive sense).
fn compare(comparison: Comparison, p: &str, v: &str) -> bool {
    match comparison {
        Comparison::StringEquals | Comparison::StringNotEquals => p == v,
        Comparison::StringEqualsIgnoreCase | Comparison::StringNotEqualsIgnoreCase => {
            p.to_lowercase() == v.to_lowercase()
        }
        Comparison::StringLike | Comparison::StringNotLike => glob::matches(p, v),
        Comparison::ArnEquals
        | Comparison::ArnLike
        | Comparison::ArnNotEquals
        | Comparison::ArnNotLike => arn_matches(p, v),
        // Presence is decided before any value comparison.
        Comparison::Null => false,
    }
}

/// `arn:partition:service:region:account:resource`: the six parts are compared one by one, each
/// with `*` / `?` wildcards (the resource part keeps its colons). A value that is not a
/// six-part ARN matches nothing.
fn arn_matches(pattern: &str, value: &str) -> bool {
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let v: Vec<&str> = value.splitn(6, ':').collect();
    p.len() == 6 && v.len() == 6 && p.iter().zip(&v).all(|(p, v)| glob::matches(p, v))
}
