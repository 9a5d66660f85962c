//! A role trust policy read from JSON into statements the evaluator can decide.
//!
//! Pure: text in, [`Policy`] or a [`DocError`] naming the position out. The shape follows IAM's
//! policy grammar as far as a trust policy for `rolesanywhere.amazonaws.com` uses it: `Version`,
//! `Id`, `Statement` (one object or an array) with `Sid`, `Effect`, `Principal`, `Action` or
//! `NotAction`, and `Condition`. IAM refuses `Resource` / `NotResource` in a trust policy, and
//! so does this reader; `NotPrincipal` and the numeric, date, boolean, IP and binary operators
//! are reported as not judged rather than guessed at.
//!
//! serde_json refuses documents nested deeper than 128 levels, and this reader walks a fixed
//! shape (document → statement → condition → key → values), so no input recurses without bound.

use serde_json::Value;

/// The most bytes read from a policy file. IAM's own limits are far lower (a trust policy is at
/// most 2048 characters by default, 4096 with a raised quota); this only keeps a wrong file (a
/// log, a disk image) from being read whole.
pub const MAX_FILE: u64 = 1024 * 1024;

/// A parsed trust policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The statements in document order.
    pub statements: Vec<Statement>,
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// `"Effect": "Allow"`.
    Allow,
    /// `"Effect": "Deny"`.
    Deny,
}

/// Who a statement is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// `"*"` or `{"AWS": "*"}`: everyone.
    Anyone,
    /// `(type, value)` pairs: `("Service", "rolesanywhere.amazonaws.com")`.
    Named(Vec<(String, String)>),
}

/// `Action` (the listed patterns) or `NotAction` (everything but them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actions {
    /// `NotAction`.
    pub negated: bool,
    /// The patterns, `*` and `?` wildcards, compared without case.
    pub patterns: Vec<String>,
}

/// The comparison of a condition operator, its prefix and suffix aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    /// `StringEquals`.
    StringEquals,
    /// `StringNotEquals`.
    StringNotEquals,
    /// `StringEqualsIgnoreCase`.
    StringEqualsIgnoreCase,
    /// `StringNotEqualsIgnoreCase`.
    StringNotEqualsIgnoreCase,
    /// `StringLike`.
    StringLike,
    /// `StringNotLike`.
    StringNotLike,
    /// `ArnEquals`.
    ArnEquals,
    /// `ArnLike`.
    ArnLike,
    /// `ArnNotEquals`.
    ArnNotEquals,
    /// `ArnNotLike`.
    ArnNotLike,
    /// `Null`.
    Null,
}

impl Test {
    const ALL: [(&'static str, Test); 11] = [
        ("StringEquals", Test::StringEquals),
        ("StringNotEquals", Test::StringNotEquals),
        ("StringEqualsIgnoreCase", Test::StringEqualsIgnoreCase),
        ("StringNotEqualsIgnoreCase", Test::StringNotEqualsIgnoreCase),
        ("StringLike", Test::StringLike),
        ("StringNotLike", Test::StringNotLike),
        ("ArnEquals", Test::ArnEquals),
        ("ArnLike", Test::ArnLike),
        ("ArnNotEquals", Test::ArnNotEquals),
        ("ArnNotLike", Test::ArnNotLike),
        ("Null", Test::Null),
    ];

    /// The negated operators: they hold when no policy value matches.
    pub fn is_negated(self) -> bool {
        matches!(
            self,
            Test::StringNotEquals
                | Test::StringNotEqualsIgnoreCase
                | Test::StringNotLike
                | Test::ArnNotEquals
                | Test::ArnNotLike
        )
    }
}

/// IAM operators this reader knows but does not judge (no Roles Anywhere key they could test
/// is known offline).
const NOT_JUDGED: &[&str] = &[
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

/// `ForAnyValue:` / `ForAllValues:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Set {
    /// `ForAnyValue:`: some request value satisfies the test.
    AnyValue,
    /// `ForAllValues:`: every request value satisfies it (true when there is none).
    AllValues,
}

/// One (operator, key, values) test of a `Condition` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// The operator as written: `ForAnyValue:StringLikeIfExists`.
    pub operator: String,
    /// Its comparison.
    pub test: Test,
    /// Its set prefix.
    pub set: Option<Set>,
    /// Its `IfExists` suffix.
    pub if_exists: bool,
    /// The key as written: `aws:PrincipalTag/x509Subject/CN`.
    pub key: String,
    /// The policy's values (numbers and booleans as their JSON text).
    pub values: Vec<String>,
}

/// One statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Its position in `Statement` (0-based).
    pub index: usize,
    /// `Sid`.
    pub sid: Option<String>,
    /// `Effect`.
    pub effect: Effect,
    /// `Principal`.
    pub principal: Principal,
    /// `Action` / `NotAction`.
    pub actions: Actions,
    /// `Condition`, block by block in document order.
    pub conditions: Vec<Condition>,
}

impl Statement {
    /// `statement 0 ("TrustRolesAnywhere")`, or `statement 0` without a Sid.
    pub fn name(&self) -> String {
        match self.sid.as_deref() {
            Some(sid) if !sid.is_empty() => format!("statement {} ({sid:?})", self.index),
            _ => format!("statement {}", self.index),
        }
    }
}

/// Why a document is not a trust policy this reader can decide.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocError {
    /// Not JSON.
    #[error("not JSON at line {line} column {column}: {message}")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// serde_json's description.
        message: String,
    },
    /// JSON, but not a policy: `at` is the path to the offending element.
    #[error("at {at}: {message}")]
    Structure {
        /// `Statement[1].Condition.StringEquals`.
        at: String,
        /// What is wrong.
        message: String,
    },
    /// A valid element this reader does not judge.
    #[error("at {at}: {what} is not judged by doctor")]
    NotJudged {
        /// Where.
        at: String,
        /// What.
        what: String,
    },
}

impl DocError {
    fn at(at: impl Into<String>, message: impl Into<String>) -> DocError {
        DocError::Structure {
            at: at.into(),
            message: message.into(),
        }
    }
}

/// Reads `text` as a JSON value, naming the position of a syntax error.
pub fn json(text: &str) -> Result<Value, DocError> {
    serde_json::from_str(text).map_err(|e| {
        // serde_json's text ends with the position, which the error shows once already.
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        DocError::Json {
            line: e.line(),
            column: e.column(),
            message: full.strip_suffix(&suffix).unwrap_or(&full).to_string(),
        }
    })
}

/// The JSON type of `v` in words, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Policy {
    /// Parses a trust policy document.
    pub fn parse(text: &str) -> Result<Policy, DocError> {
        Policy::from_value(&json(text)?)
    }

    /// Reads a trust policy from its JSON value.
    pub fn from_value(doc: &Value) -> Result<Policy, DocError> {
        let Value::Object(top) = doc else {
            return Err(DocError::at(
                "the top level",
                format!("a policy is a JSON object, this is {}", kind(doc)),
            ));
        };
        for (k, v) in top {
            match k.as_str() {
                "Version" => match v.as_str() {
                    Some("2012-10-17" | "2008-10-17") => {}
                    _ => {
                        return Err(DocError::at(
                            "Version",
                            "IAM accepts only \"2012-10-17\" (or the old \"2008-10-17\")",
                        ));
                    }
                },
                "Id" | "Statement" => {}
                other => {
                    return Err(DocError::at(
                        other,
                        "not a policy element (Version, Id, Statement)",
                    ));
                }
            }
        }
        let statements = match top.get("Statement") {
            None => return Err(DocError::at("the top level", "no Statement")),
            Some(Value::Array(list)) => list
                .iter()
                .enumerate()
                .map(|(i, s)| statement(i, s, &format!("Statement[{i}]")))
                .collect::<Result<Vec<_>, _>>()?,
            Some(s @ Value::Object(_)) => vec![statement(0, s, "Statement")?],
            Some(other) => {
                return Err(DocError::at(
                    "Statement",
                    format!("an object or an array of objects, not {}", kind(other)),
                ));
            }
        };
        Ok(Policy { statements })
    }
}

fn statement(index: usize, v: &Value, at: &str) -> Result<Statement, DocError> {
    let Value::Object(s) = v else {
        return Err(DocError::at(
            at,
            format!("a statement is an object, this is {}", kind(v)),
        ));
    };
    for k in s.keys() {
        match k.as_str() {
            "Sid" | "Effect" | "Principal" | "Action" | "NotAction" | "Condition" => {}
            "NotPrincipal" => {
                return Err(DocError::NotJudged {
                    at: format!("{at}.NotPrincipal"),
                    what: "NotPrincipal".to_string(),
                });
            }
            "Resource" | "NotResource" => {
                return Err(DocError::at(
                    format!("{at}.{k}"),
                    "IAM refuses a Resource or NotResource in a role's trust policy \
                     (MalformedPolicyDocument: has prohibited field Resource)",
                ));
            }
            other => {
                return Err(DocError::at(
                    format!("{at}.{other}"),
                    "not a statement element (Sid, Effect, Principal, Action, NotAction, \
                     Condition)",
                ));
            }
        }
    }
    let sid = match s.get("Sid") {
        None => None,
        Some(Value::String(sid)) => Some(sid.clone()),
        Some(other) => {
            return Err(DocError::at(
                format!("{at}.Sid"),
                format!("a string, not {}", kind(other)),
            ));
        }
    };
    let effect = match s.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => {
            return Err(DocError::at(
                format!("{at}.Effect"),
                "Effect must be \"Allow\" or \"Deny\"",
            ));
        }
    };
    let principal = match s.get("Principal") {
        None => {
            return Err(DocError::at(
                at,
                "no Principal: a trust policy names who may assume the role",
            ));
        }
        Some(p) => principal(p, &format!("{at}.Principal"))?,
    };
    let actions = match (s.get("Action"), s.get("NotAction")) {
        (Some(a), None) => Actions {
            negated: false,
            patterns: strings(a, &format!("{at}.Action"))?,
        },
        (None, Some(a)) => Actions {
            negated: true,
            patterns: strings(a, &format!("{at}.NotAction"))?,
        },
        (None, None) => return Err(DocError::at(at, "no Action (or NotAction)")),
        (Some(_), Some(_)) => {
            return Err(DocError::at(at, "both Action and NotAction"));
        }
    };
    let conditions = match s.get("Condition") {
        None => Vec::new(),
        Some(c) => conditions(c, &format!("{at}.Condition"))?,
    };
    Ok(Statement {
        index,
        sid,
        effect,
        principal,
        actions,
        conditions,
    })
}

fn principal(v: &Value, at: &str) -> Result<Principal, DocError> {
    match v {
        Value::String(s) if s == "*" => Ok(Principal::Anyone),
        Value::Object(m) if !m.is_empty() => {
            let mut named = Vec::new();
            for (kind, values) in m {
                if !matches!(
                    kind.as_str(),
                    "AWS" | "Service" | "Federated" | "CanonicalUser"
                ) {
                    return Err(DocError::at(
                        format!("{at}.{kind}"),
                        "a principal type is AWS, Service, Federated or CanonicalUser",
                    ));
                }
                for value in strings(values, &format!("{at}.{kind}"))? {
                    if kind == "AWS" && value == "*" {
                        return Ok(Principal::Anyone);
                    }
                    named.push((kind.clone(), value));
                }
            }
            Ok(Principal::Named(named))
        }
        other => Err(DocError::at(
            at,
            format!(
                "\"*\" or an object such as {{\"Service\": \"rolesanywhere.amazonaws.com\"}}, not {}",
                kind(other)
            ),
        )),
    }
}

/// A string or a non-empty array of strings.
fn strings(v: &Value, at: &str) -> Result<Vec<String>, DocError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(list) if !list.is_empty() => list
            .iter()
            .enumerate()
            .map(|(i, x)| match x {
                Value::String(s) => Ok(s.clone()),
                other => Err(DocError::at(
                    format!("{at}[{i}]"),
                    format!("a string, not {}", kind(other)),
                )),
            })
            .collect(),
        Value::Array(_) => Err(DocError::at(at, "an empty list")),
        other => Err(DocError::at(
            at,
            format!("a string or an array of strings, not {}", kind(other)),
        )),
    }
}

fn conditions(v: &Value, at: &str) -> Result<Vec<Condition>, DocError> {
    let Value::Object(block) = v else {
        return Err(DocError::at(
            at,
            format!("a condition block is an object, not {}", kind(v)),
        ));
    };
    let mut out = Vec::new();
    for (operator, keys) in block {
        let here = format!("{at}.{operator}");
        let (set, test, if_exists) = operator_parts(operator, &here)?;
        let Value::Object(keys) = keys else {
            return Err(DocError::at(
                here,
                format!(
                    "an operator maps condition keys to values, this is {}",
                    kind(keys)
                ),
            ));
        };
        if keys.is_empty() {
            return Err(DocError::at(here, "no condition key"));
        }
        for (key, values) in keys {
            let there = format!("{here}.{key}");
            let values = condition_values(values, &there)?;
            if test == Test::Null && values.iter().any(|v| v != "true" && v != "false") {
                return Err(DocError::at(there, "Null takes true or false"));
            }
            out.push(Condition {
                operator: operator.clone(),
                test,
                set,
                if_exists,
                key: key.clone(),
                values,
            });
        }
    }
    Ok(out)
}

/// `ForAnyValue:StringLikeIfExists` → (AnyValue, StringLike, true).
fn operator_parts(operator: &str, at: &str) -> Result<(Option<Set>, Test, bool), DocError> {
    let (set, rest) = if let Some(r) = operator.strip_prefix("ForAnyValue:") {
        (Some(Set::AnyValue), r)
    } else if let Some(r) = operator.strip_prefix("ForAllValues:") {
        (Some(Set::AllValues), r)
    } else {
        (None, operator)
    };
    let (base, if_exists) = match rest.strip_suffix("IfExists") {
        Some(b) => (b, true),
        None => (rest, false),
    };
    if let Some((_, test)) = Test::ALL.iter().find(|(n, _)| *n == base) {
        if *test == Test::Null && if_exists {
            return Err(DocError::at(at, "Null takes no IfExists"));
        }
        return Ok((set, *test, if_exists));
    }
    if NOT_JUDGED.contains(&base) {
        return Err(DocError::NotJudged {
            at: at.to_string(),
            what: format!("the {base} operator"),
        });
    }
    Err(DocError::at(at, "not an IAM condition operator"))
}

/// A condition's values: a string, number or boolean, or a non-empty array of them.
fn condition_values(v: &Value, at: &str) -> Result<Vec<String>, DocError> {
    fn one(v: &Value, at: &str) -> Result<String, DocError> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            other => Err(DocError::at(
                at,
                format!(
                    "a condition value is a string, number or boolean, not {}",
                    kind(other)
                ),
            )),
        }
    }
    match v {
        Value::Array(list) if list.is_empty() => Err(DocError::at(at, "an empty list of values")),
        Value::Array(list) => list
            .iter()
            .enumerate()
            .map(|(i, x)| one(x, &format!("{at}[{i}]")))
            .collect(),
        other => Ok(vec![one(other, at)?]),
    }
}
