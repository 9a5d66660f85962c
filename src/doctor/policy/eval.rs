//! Deciding a trust policy for one request: IAM's evaluation logic, as far as a trust policy uses
//! it.
//!
//! Pure. For each requested action: a `Deny` statement that applies wins; otherwise the first
//! `Allow` statement that applies allows; otherwise the action is implicitly denied, and every
//! `Allow` statement says why it did not apply. A statement applies when its principal names the
//! caller, its `Action` / `NotAction` covers the action and every condition holds.
//!
//! Conditions (IAM's rules): operators AND, keys AND, a key's values OR. Key names compare without
//! case. A positive operator (`StringEquals`, `StringLike`, `ArnEquals`, `ArnLike`, …) is false
//! when the key is absent; a negated one (`StringNotEquals`, `StringNotLike`, `ArnNotEquals`,
//! `ArnNotLike`) is true then, and otherwise holds when no policy value matches. `…IfExists`
//! holds when the key is absent. `ForAnyValue:` holds when some request value satisfies the test
//! (false when there is none); `ForAllValues:` when every one does (true when there is none).
//! `Null` `true` holds when the key is absent, `false` when it is present. `StringLike` and the
//! `Arn…` operators take `*` (any run of characters) and `?` (one character); `Arn…` compare the
//! six colon-separated parts of the ARN one by one (the resource part keeps its colons).

use super::document::{Condition, Effect, Policy, Principal, Set, Statement, Test};

/// The request as the trust policy sees it: the calling service principal and the condition keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// The service principal making the call (`rolesanywhere.amazonaws.com`).
    pub service: String,
    /// `(key, values)`; a key with no values is absent.
    keys: Vec<(String, Vec<String>)>,
}

impl Request {
    /// A request from `service` with no keys.
    pub fn new(service: &str) -> Request {
        Request {
            service: service.to_string(),
            keys: Vec::new(),
        }
    }

    /// Sets `key` (replacing a key of the same name in any case).
    pub fn set(&mut self, key: &str, values: Vec<String>) {
        self.keys.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
        self.keys.push((key.to_string(), values));
    }

    /// The values of `key` (compared without case); `None` when absent or empty.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.keys
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_slice())
            .filter(|v| !v.is_empty())
    }
}

/// How one condition came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    /// The condition.
    pub condition: Condition,
    /// The request's values of its key (`None`: absent).
    pub actual: Option<Vec<String>>,
    /// Whether it held.
    pub held: bool,
}

/// Why an `Allow` statement did not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// Its principal does not name the caller.
    Principal,
    /// Its `Action` / `NotAction` does not cover the action.
    Action,
    /// These conditions (every false one, in document order) did not hold.
    Conditions(Vec<Judged>),
}

/// The decision for one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The first `Allow` statement that applies, with its conditions (all held).
    Allowed {
        /// Its index.
        statement: usize,
        /// Its conditions.
        conditions: Vec<Judged>,
    },
    /// The first `Deny` statement that applies, with its conditions (all held).
    Denied {
        /// Its index.
        statement: usize,
        /// Its conditions.
        conditions: Vec<Judged>,
    },
    /// No statement applies: each `Allow` statement, in document order, and why it did not.
    NotAllowed {
        /// `(statement index, why)`.
        misses: Vec<(usize, Miss)>,
    },
}

impl Outcome {
    /// Whether the action is allowed.
    pub fn allowed(&self) -> bool {
        matches!(self, Outcome::Allowed { .. })
    }
}

/// Decides `action` for `request`.
pub fn decide(policy: &Policy, request: &Request, action: &str) -> Outcome {
    let mut allowed = None;
    let mut misses = Vec::new();
    for s in &policy.statements {
        match applies(s, request, action) {
            Ok(conditions) if s.effect == Effect::Deny => {
                return Outcome::Denied {
                    statement: s.index,
                    conditions,
                };
            }
            Ok(conditions) => {
                if allowed.is_none() {
                    allowed = Some(Outcome::Allowed {
                        statement: s.index,
                        conditions,
                    });
                }
            }
            Err(miss) if s.effect == Effect::Allow => misses.push((s.index, miss)),
            Err(_) => {}
        }
    }
    allowed.unwrap_or(Outcome::NotAllowed { misses })
}

/// Whether `s` applies to (`request`, `action`): its judged conditions, or why not.
fn applies(s: &Statement, request: &Request, action: &str) -> Result<Vec<Judged>, Miss> {
    if !principal_matches(&s.principal, &request.service) {
        return Err(Miss::Principal);
    }
    let listed = s.actions.patterns.iter().any(|p| glob(p, action, true));
    if listed == s.actions.negated {
        return Err(Miss::Action);
    }
    let judged: Vec<Judged> = s.conditions.iter().map(|c| judge(c, request)).collect();
    let failed: Vec<Judged> = judged.iter().filter(|j| !j.held).cloned().collect();
    if failed.is_empty() {
        Ok(judged)
    } else {
        Err(Miss::Conditions(failed))
    }
}

fn principal_matches(p: &Principal, service: &str) -> bool {
    match p {
        Principal::Anyone => true,
        Principal::Named(list) => list
            .iter()
            .any(|(kind, value)| kind == "Service" && value == service),
    }
}

/// Judges one condition against the request.
pub fn judge(c: &Condition, request: &Request) -> Judged {
    let actual = request.get(&c.key).map(<[String]>::to_vec);
    let held = holds(c, actual.as_deref());
    Judged {
        condition: c.clone(),
        actual,
        held,
    }
}

fn holds(c: &Condition, actual: Option<&[String]>) -> bool {
    if c.test == Test::Null {
        let present = actual.is_some();
        return c
            .values
            .iter()
            .any(|v| (v == "true" && !present) || (v == "false" && present));
    }
    let Some(actual) = actual else {
        return match c.set {
            _ if c.if_exists => true,
            Some(Set::AllValues) => true,
            Some(Set::AnyValue) => false,
            None => c.test.is_negated(),
        };
    };
    // A request value satisfies the test: for a positive operator, some policy value matches
    // it; for a negated one, none does.
    let satisfies = |v: &String| {
        let matched = c.values.iter().any(|p| matches(c.test, p, v));
        matched != c.test.is_negated()
    };
    match c.set {
        Some(Set::AllValues) => actual.iter().all(satisfies),
        Some(Set::AnyValue) => actual.iter().any(satisfies),
        // A single-valued key: its value. (With several values and no prefix: a positive test
        // holds when one matches, a negated one when none does.)
        None if c.test.is_negated() => actual.iter().all(satisfies),
        None => actual.iter().any(satisfies),
    }
}

/// Whether policy value `p` matches request value `v` under `test`, in the positive sense.
fn matches(test: Test, p: &str, v: &str) -> bool {
    match test {
        Test::StringEquals | Test::StringNotEquals => p == v,
        Test::StringEqualsIgnoreCase | Test::StringNotEqualsIgnoreCase => {
            p.to_lowercase() == v.to_lowercase()
        }
        Test::StringLike | Test::StringNotLike => glob(p, v, false),
        Test::ArnEquals | Test::ArnLike | Test::ArnNotEquals | Test::ArnNotLike => arn_match(p, v),
        Test::Null => false,
    }
}

/// `arn:partition:service:region:account:resource`, part by part with wildcards; a value without
/// six parts matches nothing.
fn arn_match(p: &str, v: &str) -> bool {
    let ps: Vec<&str> = p.splitn(6, ':').collect();
    let vs: Vec<&str> = v.splitn(6, ':').collect();
    ps.len() == 6 && vs.len() == 6 && ps.iter().zip(&vs).all(|(a, b)| glob(a, b, false))
}

/// `*` matches any run of characters (also none), `?` exactly one. Iterative with one
/// backtrack point, so the time is at most |pattern| × |text| whatever the input.
pub fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let fold = |s: &str| -> Vec<char> {
        if ignore_case {
            s.to_lowercase().chars().collect()
        } else {
            s.chars().collect()
        }
    };
    let (p, t) = (fold(pattern), fold(text));
    let (mut i, mut j) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while j < t.len() {
        match p.get(i) {
            Some('*') => {
                star = Some((i, j));
                i += 1;
            }
            Some(c) if *c == '?' || *c == t[j] => {
                i += 1;
                j += 1;
            }
            _ => match star {
                Some((si, sj)) => {
                    i = si + 1;
                    j = sj + 1;
                    star = Some((si, sj + 1));
                }
                None => return false,
            },
        }
    }
    p[i.min(p.len())..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_wildcards() {
        assert!(glob("web-*", "web-1", false));
        assert!(glob("web-*", "web-", false));
        assert!(!glob("web-?", "web-", false));
        assert!(glob("w?b-*.example.com", "wab-x.example.com", false));
        assert!(!glob("WEB", "web", false));
        assert!(glob("STS:assume*", "sts:AssumeRole", true));
        assert!(glob("*a*b*c", "xxaxxbxxc", false));
        assert!(!glob("*a*b*c", "xxaxxbxxcx", false));
        assert!(glob("", "", false));
        assert!(!glob("", "x", false));
        // Pathological input stays quadratic at worst.
        let text = "a".repeat(5000);
        let pattern = format!("{}b", "*a".repeat(200));
        assert!(!glob(&pattern, &text, false));
    }

    #[test]
    fn arn_parts_are_compared_one_by_one() {
        let a = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/x";
        assert!(arn_match(a, a));
        assert!(arn_match("arn:aws:rolesanywhere:*:123456789012:*", a));
        assert!(arn_match(
            "arn:aws:rolesanywhere:us-east-?:*:trust-anchor/*",
            a
        ));
        assert!(!arn_match(
            "arn:aws:rolesanywhere:us-east-1:123456789012",
            a
        ));
        assert!(!arn_match("*", a));
        assert!(arn_match(
            "arn:aws:s3:::b/k:with:colons",
            "arn:aws:s3:::b/k:with:colons"
        ));
    }
}
