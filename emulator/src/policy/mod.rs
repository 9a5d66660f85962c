//! IAM role trust policies: parsing a policy document and deciding whether IAM Roles Anywhere may
//! assume the role.
//!
//! Pure: a JSON document and a [`RequestContext`] in, a [`Decision`] out; no I/O, no clock. It is
//! the emulator's own engine (never the agent's) and covers the part of IAM's policy language a
//! trust policy for `rolesanywhere.amazonaws.com` uses:
//!
//! - `Statement` as one object or an array; `Sid`, `Effect` (`Allow` | `Deny`), `Principal`
//!   (`"*"` or `{"Service" | "AWS" | "Federated" | "CanonicalUser": string | [string]}`),
//!   `Action` / `NotAction` (string or array, `*` and `?` wildcards, case-insensitive) and
//!   `Condition`. `NotPrincipal`, `Resource` and `NotResource` are refused (IAM refuses a
//!   resource in a trust policy; `NotPrincipal` is not supported here).
//! - Condition operators `StringEquals`, `StringNotEquals`, `StringEqualsIgnoreCase`,
//!   `StringNotEqualsIgnoreCase`, `StringLike`, `StringNotLike`, `ArnEquals`, `ArnLike`,
//!   `ArnNotEquals`, `ArnNotLike` and `Null`, with the `ForAnyValue:` / `ForAllValues:` prefixes
//!   and the `IfExists` suffix. Other IAM operators (numeric, date, `Bool`, IP, binary) are
//!   refused as unsupported rather than evaluated wrongly.
//!
//! Evaluation follows the IAM policy evaluation logic: an applicable `Deny` wins, otherwise an
//! applicable `Allow` allows, otherwise the request is implicitly denied; every requested action
//! must be allowed. Condition semantics are in `eval.rs`.

mod eval;
mod glob;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

pub use eval::{
    ActionDecision, ConditionTrace, Decision, Miss, MissReason, Outcome, RequestContext,
    StatementRef,
};

/// The IAM Roles Anywhere service principal.
pub const ROLES_ANYWHERE_SERVICE: &str = "rolesanywhere.amazonaws.com";
/// The actions Roles Anywhere requests when it assumes a role.
pub const ASSUME_ROLE: &str = "sts:AssumeRole";
/// Needed when the session carries principal tags.
pub const TAG_SESSION: &str = "sts:TagSession";
/// Needed when the session carries a source identity.
pub const SET_SOURCE_IDENTITY: &str = "sts:SetSourceIdentity";

/// Why a policy document was refused; the message is what IAM's `MalformedPolicyDocument`
/// should carry. Text taken from the document is quoted with escapes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The document is not JSON.
    #[error("policy document is not valid JSON: {0}")]
    Json(String),
    /// The document (or a statement) is not a JSON object.
    #[error("{location} must be a JSON object")]
    NotAnObject {
        /// `policy` or `Statement[i]`.
        location: String,
    },
    /// A field IAM does not define.
    #[error("{location} has unknown field {field:?}")]
    UnknownField {
        /// `policy` or `Statement[i]`.
        location: String,
        /// The field name.
        field: String,
    },
    /// `Resource` / `NotResource` in a trust policy.
    #[error("{location} has prohibited field {field} (a trust policy names no resource)")]
    ProhibitedField {
        /// `Statement[i]`.
        location: String,
        /// The field name.
        field: &'static str,
    },
    /// `Version` other than `2012-10-17` or `2008-10-17`.
    #[error("policy Version {0} is not supported (use \"2012-10-17\")")]
    Version(String),
    /// No `Statement`.
    #[error("policy has no Statement")]
    MissingStatement,
    /// A statement without `Effect`.
    #[error("{location} has no Effect (use \"Allow\" or \"Deny\")")]
    MissingEffect {
        /// `Statement[i]`.
        location: String,
    },
    /// `Effect` other than `Allow` / `Deny`.
    #[error("{location} has Effect {value}; expected \"Allow\" or \"Deny\"")]
    Effect {
        /// `Statement[i]`.
        location: String,
        /// The value as written (JSON).
        value: String,
    },
    /// A statement without `Principal`.
    #[error("{location} has no Principal (a trust policy statement names who may assume the role)")]
    MissingPrincipal {
        /// `Statement[i]`.
        location: String,
    },
    /// `NotPrincipal`.
    #[error(
        "{location} uses NotPrincipal, which trust policies here do not support; name the principal with Principal"
    )]
    NotPrincipal {
        /// `Statement[i]`.
        location: String,
    },
    /// A malformed `Principal`.
    #[error("{location} has an invalid Principal: {reason}")]
    Principal {
        /// `Statement[i]`.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// Neither `Action` nor `NotAction`.
    #[error("{location} has no Action")]
    MissingAction {
        /// `Statement[i]`.
        location: String,
    },
    /// Both `Action` and `NotAction`.
    #[error("{location} has both Action and NotAction; use one")]
    ActionAndNotAction {
        /// `Statement[i]`.
        location: String,
    },
    /// `Sid` that is not a string.
    #[error("{location} has Sid {value}, which is not a string")]
    Sid {
        /// `Statement[i]`.
        location: String,
        /// The value (JSON).
        value: String,
    },
    /// `Action` / `NotAction` that is not a string or a non-empty array of strings.
    #[error("{location} has an invalid {element}: {reason}")]
    ActionList {
        /// `Statement[i]`.
        location: String,
        /// `Action` or `NotAction`.
        element: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A malformed action.
    #[error("{location} has an invalid action {action}: {reason}")]
    Action {
        /// `Statement[i]`.
        location: String,
        /// The action (JSON).
        action: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A malformed `Condition` block.
    #[error("{location} has an invalid Condition: {reason}")]
    Condition {
        /// `Statement[i]`.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// A condition operator IAM does not define.
    #[error("{location} uses unknown condition operator {operator:?}")]
    UnknownOperator {
        /// `Statement[i]`.
        location: String,
        /// The operator as written.
        operator: String,
    },
    /// An IAM operator this engine does not evaluate.
    #[error(
        "{location} uses condition operator {operator:?}, which the emulator does not evaluate (supported: String*, Arn*, Null, with ForAnyValue:/ForAllValues: and IfExists)"
    )]
    UnsupportedOperator {
        /// `Statement[i]`.
        location: String,
        /// The operator as written.
        operator: String,
    },
    /// Two statements with the same non-empty `Sid`.
    #[error("Statement IDs (SID) in a single policy must be unique: {0:?} appears twice")]
    DuplicateSid(String),
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Grants the actions.
    Allow,
    /// Refuses the actions, whatever else allows them.
    Deny,
}

/// Who a statement applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// `"*"` or `{"AWS": "*"}`: everyone, services included.
    Any,
    /// Named principals; only `Service` entries can match Roles Anywhere.
    Named {
        /// `Service` values as written.
        services: Vec<String>,
        /// How many `AWS` / `Federated` / `CanonicalUser` entries (never Roles Anywhere).
        others: usize,
    },
}

/// `Action` or `NotAction` patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actions {
    /// `NotAction`: the statement applies to every action that matches none of the patterns.
    pub negated: bool,
    /// The patterns as written.
    pub patterns: Vec<String>,
}

/// `ForAnyValue:` or `ForAllValues:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetQualifier {
    /// At least one context value must satisfy the operator; false when the key is absent.
    ForAnyValue,
    /// Every context value must satisfy the operator; true when the key is absent or empty.
    ForAllValues,
}

/// The comparison of a condition operator, without prefix or suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// Exact, case-sensitive.
    StringEquals,
    /// Negated `StringEquals`.
    StringNotEquals,
    /// Exact, ignoring case.
    StringEqualsIgnoreCase,
    /// Negated `StringEqualsIgnoreCase`.
    StringNotEqualsIgnoreCase,
    /// Case-sensitive with `*` / `?` wildcards.
    StringLike,
    /// Negated `StringLike`.
    StringNotLike,
    /// ARN match part by part (wildcards allowed, as IAM documents for `ArnEquals` too).
    ArnEquals,
    /// Same as `ArnEquals`.
    ArnLike,
    /// Negated `ArnEquals`.
    ArnNotEquals,
    /// Negated `ArnLike`.
    ArnNotLike,
    /// Key presence: `"true"` holds when the key is absent, `"false"` when present.
    Null,
}

impl Comparison {
    fn parse(name: &str) -> Option<Comparison> {
        Some(match name {
            "StringEquals" => Comparison::StringEquals,
            "StringNotEquals" => Comparison::StringNotEquals,
            "StringEqualsIgnoreCase" => Comparison::StringEqualsIgnoreCase,
            "StringNotEqualsIgnoreCase" => Comparison::StringNotEqualsIgnoreCase,
            "StringLike" => Comparison::StringLike,
            "StringNotLike" => Comparison::StringNotLike,
            "ArnEquals" => Comparison::ArnEquals,
            "ArnLike" => Comparison::ArnLike,
            "ArnNotEquals" => Comparison::ArnNotEquals,
            "ArnNotLike" => Comparison::ArnNotLike,
            "Null" => Comparison::Null,
            _ => return None,
        })
    }

    /// Negated operators hold when no value matches (and when the key is absent).
    pub fn is_negated(self) -> bool {
        matches!(
            self,
            Comparison::StringNotEquals
                | Comparison::StringNotEqualsIgnoreCase
                | Comparison::StringNotLike
                | Comparison::ArnNotEquals
                | Comparison::ArnNotLike
        )
    }
}

/// IAM operators that exist but are not evaluated here; refused rather than misjudged.
const UNSUPPORTED_OPERATORS: &[&str] = &[
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "DateEquals",
    "DateNotEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
    "Bool",
    "BinaryEquals",
    "IpAddress",
    "NotIpAddress",
];

/// One (operator, key, values) test of a `Condition` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// The operator as written, e.g. `ForAnyValue:StringLikeIfExists`.
    pub operator: String,
    /// The comparison.
    pub comparison: Comparison,
    /// `ForAnyValue:` / `ForAllValues:`, if given.
    pub qualifier: Option<SetQualifier>,
    /// The `IfExists` suffix.
    pub if_exists: bool,
    /// The key as written; matched case-insensitively.
    pub key: String,
    /// The policy values (any one may match).
    pub values: Vec<String>,
}

/// One statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// `Sid`, if present (may be empty, as the IAM console writes it).
    pub sid: Option<String>,
    /// `Allow` or `Deny`.
    pub effect: Effect,
    /// Who.
    pub principal: Principal,
    /// Which actions.
    pub actions: Actions,
    /// All must hold, in document order.
    pub conditions: Vec<Condition>,
}

/// A parsed trust policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `2012-10-17` or `2008-10-17` (the default when absent).
    pub version: String,
    /// The statements in document order.
    pub statements: Vec<Statement>,
}

fn json_text(v: &Value) -> String {
    // Compact JSON is quoted and escaped, so policy text cannot inject control characters.
    serde_json::to_string(v).unwrap_or_else(|_| "<unprintable>".into())
}

fn location(i: usize) -> String {
    format!("Statement[{i}]")
}

/// A string or a non-empty array of strings, as IAM accepts for most elements.
fn string_list(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if items.is_empty() => Err("an empty array".into()),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                other => Err(format!("{} is not a string", json_text(other))),
            })
            .collect(),
        other => Err(format!(
            "{} is not a string or an array of strings",
            json_text(other)
        )),
    }
}

impl Policy {
    /// Parses and validates a trust policy document.
    pub fn parse(document: &str) -> Result<Policy, Error> {
        let value: Value =
            serde_json::from_str(document).map_err(|e| Error::Json(e.to_string()))?;
        let Value::Object(top) = value else {
            return Err(Error::NotAnObject {
                location: "policy".into(),
            });
        };
        let mut version = "2008-10-17".to_string();
        let mut statements_value = None;
        for (field, v) in &top {
            match field.as_str() {
                "Version" => match v {
                    Value::String(s) if s == "2012-10-17" || s == "2008-10-17" => {
                        version = s.clone();
                    }
                    other => return Err(Error::Version(json_text(other))),
                },
                "Id" => {}
                "Statement" => statements_value = Some(v),
                other => {
                    return Err(Error::UnknownField {
                        location: "policy".into(),
                        field: other.to_string(),
                    });
                }
            }
        }
        let raw: Vec<&Value> = match statements_value {
            None => return Err(Error::MissingStatement),
            Some(Value::Array(items)) => items.iter().collect(),
            Some(one) => vec![one],
        };
        let mut statements = Vec::with_capacity(raw.len());
        for (i, s) in raw.into_iter().enumerate() {
            statements.push(parse_statement(i, s)?);
        }
        let mut seen = std::collections::HashSet::new();
        for s in &statements {
            if let Some(sid) = s.sid.as_deref().filter(|s| !s.is_empty())
                && !seen.insert(sid)
            {
                return Err(Error::DuplicateSid(sid.to_string()));
            }
        }
        Ok(Policy {
            version,
            statements,
        })
    }
}

fn parse_statement(i: usize, v: &Value) -> Result<Statement, Error> {
    let loc = || location(i);
    let Value::Object(obj) = v else {
        return Err(Error::NotAnObject { location: loc() });
    };
    for field in obj.keys() {
        match field.as_str() {
            "Sid" | "Effect" | "Principal" | "NotPrincipal" | "Action" | "NotAction"
            | "Condition" => {}
            "Resource" => {
                return Err(Error::ProhibitedField {
                    location: loc(),
                    field: "Resource",
                });
            }
            "NotResource" => {
                return Err(Error::ProhibitedField {
                    location: loc(),
                    field: "NotResource",
                });
            }
            other => {
                return Err(Error::UnknownField {
                    location: loc(),
                    field: other.to_string(),
                });
            }
        }
    }
    let sid = match obj.get("Sid") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(Error::Sid {
                location: loc(),
                value: json_text(other),
            });
        }
    };
    let effect = match obj.get("Effect") {
        None => return Err(Error::MissingEffect { location: loc() }),
        Some(Value::String(s)) if s == "Allow" => Effect::Allow,
        Some(Value::String(s)) if s == "Deny" => Effect::Deny,
        Some(other) => {
            return Err(Error::Effect {
                location: loc(),
                value: json_text(other),
            });
        }
    };
    if obj.contains_key("NotPrincipal") {
        return Err(Error::NotPrincipal { location: loc() });
    }
    let principal = match obj.get("Principal") {
        None => return Err(Error::MissingPrincipal { location: loc() }),
        Some(p) => parse_principal(p).map_err(|reason| Error::Principal {
            location: loc(),
            reason,
        })?,
    };
    let actions = match (obj.get("Action"), obj.get("NotAction")) {
        (Some(_), Some(_)) => return Err(Error::ActionAndNotAction { location: loc() }),
        (None, None) => return Err(Error::MissingAction { location: loc() }),
        (Some(a), None) => parse_actions(i, a, false)?,
        (None, Some(a)) => parse_actions(i, a, true)?,
    };
    let conditions = match obj.get("Condition") {
        None => Vec::new(),
        Some(c) => parse_conditions(i, c)?,
    };
    Ok(Statement {
        sid,
        effect,
        principal,
        actions,
        conditions,
    })
}

fn parse_principal(v: &Value) -> Result<Principal, String> {
    let obj: &Map<String, Value> = match v {
        Value::String(s) if s == "*" => return Ok(Principal::Any),
        Value::Object(obj) if !obj.is_empty() => obj,
        other => {
            return Err(format!(
                "{} (expected \"*\" or an object such as {{\"Service\": \"{ROLES_ANYWHERE_SERVICE}\"}})",
                json_text(other)
            ));
        }
    };
    let mut services = Vec::new();
    let mut others = 0;
    for (kind, ids) in obj {
        let ids = string_list(ids).map_err(|e| format!("{kind}: {e}"))?;
        match kind.as_str() {
            "Service" => services.extend(ids),
            "AWS" => {
                if ids.iter().any(|id| id == "*") {
                    return Ok(Principal::Any);
                }
                others += ids.len();
            }
            "Federated" | "CanonicalUser" => others += ids.len(),
            other => {
                return Err(format!(
                    "unknown principal type {other:?} (use Service, AWS, Federated or CanonicalUser)"
                ));
            }
        }
    }
    Ok(Principal::Named { services, others })
}

fn parse_actions(i: usize, v: &Value, negated: bool) -> Result<Actions, Error> {
    let patterns = string_list(v).map_err(|reason| Error::ActionList {
        location: location(i),
        element: if negated { "NotAction" } else { "Action" },
        reason,
    })?;
    for p in &patterns {
        // IAM: "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
        let ok = p == "*"
            || matches!(p.split_once(':'), Some((vendor, rest)) if !vendor.is_empty() && !rest.is_empty());
        if !ok {
            return Err(Error::Action {
                location: location(i),
                action: json_text(&Value::String(p.clone())),
                reason: "actions are \"*\" or prefixed by a service, e.g. \"sts:AssumeRole\"",
            });
        }
    }
    Ok(Actions { negated, patterns })
}

/// Splits `ForAnyValue:StringLikeIfExists` into its parts.
fn parse_operator(
    i: usize,
    operator: &str,
) -> Result<(Option<SetQualifier>, Comparison, bool), Error> {
    let (qualifier, rest) = if let Some(r) = operator.strip_prefix("ForAnyValue:") {
        (Some(SetQualifier::ForAnyValue), r)
    } else if let Some(r) = operator.strip_prefix("ForAllValues:") {
        (Some(SetQualifier::ForAllValues), r)
    } else {
        (None, operator)
    };
    let (base, if_exists) = match rest.strip_suffix("IfExists") {
        Some(b) => (b, true),
        None => (rest, false),
    };
    let Some(comparison) = Comparison::parse(base) else {
        return Err(if UNSUPPORTED_OPERATORS.contains(&base) {
            Error::UnsupportedOperator {
                location: location(i),
                operator: operator.to_string(),
            }
        } else {
            Error::UnknownOperator {
                location: location(i),
                operator: operator.to_string(),
            }
        });
    };
    // `Null` tests presence itself: IAM defines neither `NullIfExists` nor set forms of it.
    if comparison == Comparison::Null && (if_exists || qualifier.is_some()) {
        return Err(Error::UnknownOperator {
            location: location(i),
            operator: operator.to_string(),
        });
    }
    Ok((qualifier, comparison, if_exists))
}

fn parse_conditions(i: usize, v: &Value) -> Result<Vec<Condition>, Error> {
    let bad = |reason: String| Error::Condition {
        location: location(i),
        reason,
    };
    let Value::Object(block) = v else {
        return Err(bad(format!(
            "{} is not an object of operators",
            json_text(v)
        )));
    };
    let mut out = Vec::new();
    for (operator, keys) in block {
        let (qualifier, comparison, if_exists) = parse_operator(i, operator)?;
        let Value::Object(keys) = keys else {
            return Err(bad(format!(
                "{operator:?} maps to {}, not an object of condition keys",
                json_text(keys)
            )));
        };
        if keys.is_empty() {
            return Err(bad(format!("{operator:?} names no condition key")));
        }
        for (key, values) in keys {
            if !matches!(key.split_once(':'), Some((vendor, rest)) if !vendor.is_empty() && !rest.is_empty())
            {
                return Err(bad(format!(
                    "condition key {key:?} is not prefixed by a service, e.g. \"aws:SourceArn\""
                )));
            }
            let values = condition_values(values).map_err(|e| bad(format!("{key:?}: {e}")))?;
            if comparison == Comparison::Null
                && let Some(v) = values
                    .iter()
                    .find(|v| v.as_str() != "true" && v.as_str() != "false")
            {
                return Err(bad(format!(
                    "Null on {key:?} takes \"true\" or \"false\", not {v:?}"
                )));
            }
            out.push(Condition {
                operator: operator.clone(),
                comparison,
                qualifier,
                if_exists,
                key: key.clone(),
                values,
            });
        }
    }
    Ok(out)
}

/// Condition values: a string, number or boolean, or an array of them (IAM compares the text).
fn condition_values(v: &Value) -> Result<Vec<String>, String> {
    fn scalar(v: &Value) -> Result<String, String> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Bool(b) => Ok(b.to_string()),
            Value::Number(n) => Ok(n.to_string()),
            other => Err(format!(
                "{} is not a string, number or boolean",
                json_text(other)
            )),
        }
    }
    match v {
        Value::Array(items) if items.is_empty() => Err("an empty array of values".into()),
        Value::Array(items) => items.iter().map(scalar).collect(),
        other => Ok(vec![scalar(other)?]),
    }
}
