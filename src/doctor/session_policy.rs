//! Check 6: the session policy's size against the STS limits, and the actions and resources it
//! allows.
//!
//! A profile's session policy is passed to STS as an inline session policy: STS refuses one over
//! 2048 characters once packed (whitespace outside strings removed), and the session can then do
//! at most what the role's policies and this policy both allow. Pure apart from reading the file.

use super::policy::document::{DocError, json, kind};
use super::policy::read_policy_file;
use super::{Check, Context, Finding, Report};
use serde_json::Value;

/// STS's limit on an inline session policy, in characters after packing.
pub const MAX_PACKED: usize = 2048;

/// `text` without the whitespace outside JSON strings (how STS measures a session policy).
pub fn packed_len(text: &str) -> usize {
    let mut n = 0;
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            n += 1;
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            n += 1;
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            n += 1;
        }
    }
    n
}

/// One statement of a session policy, summarised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// `Allow` or `Deny`.
    pub effect: String,
    /// `Action` (or `NOT …` for `NotAction`).
    pub actions: Vec<String>,
    /// `Resource` (or `NOT …` for `NotResource`).
    pub resources: Vec<String>,
    /// Whether it has a `Condition`.
    pub conditional: bool,
}

/// The statements of a session policy document, or why it is not one.
pub fn summarise(doc: &Value) -> Result<Vec<Grant>, DocError> {
    let at = |a: &str, m: String| DocError::Structure {
        at: a.to_string(),
        message: m,
    };
    let Value::Object(top) = doc else {
        return Err(at(
            "the top level",
            format!("a policy is a JSON object, this is {}", kind(doc)),
        ));
    };
    let list: Vec<&Value> = match top.get("Statement") {
        Some(Value::Array(l)) if !l.is_empty() => l.iter().collect(),
        Some(s @ Value::Object(_)) => vec![s],
        Some(other) => {
            return Err(at(
                "Statement",
                format!(
                    "a non-empty array of objects or one object, not {}",
                    kind(other)
                ),
            ));
        }
        None => return Err(at("the top level", "no Statement".to_string())),
    };
    let mut grants = Vec::new();
    for (i, s) in list.iter().enumerate() {
        let here = format!("Statement[{i}]");
        let Value::Object(s) = s else {
            return Err(at(
                &here,
                format!("a statement is an object, not {}", kind(s)),
            ));
        };
        let effect = match s.get("Effect").and_then(Value::as_str) {
            Some(e @ ("Allow" | "Deny")) => e.to_string(),
            _ => {
                return Err(at(
                    &format!("{here}.Effect"),
                    "\"Allow\" or \"Deny\"".into(),
                ));
            }
        };
        let pick = |pos: &str, neg: &str| -> Result<Vec<String>, DocError> {
            let (v, prefix, name) = match (s.get(pos), s.get(neg)) {
                (Some(v), None) => (v, "", pos),
                (None, Some(v)) => (v, "NOT ", neg),
                (None, None) => return Ok(Vec::new()),
                (Some(_), Some(_)) => {
                    return Err(at(&here, format!("both {pos} and {neg}")));
                }
            };
            let items: Vec<&Value> = match v {
                Value::Array(a) => a.iter().collect(),
                one => vec![one],
            };
            items
                .into_iter()
                .enumerate()
                .map(|(j, x)| match x {
                    Value::String(x) => Ok(format!("{prefix}{x}")),
                    other => Err(at(
                        &format!("{here}.{name}[{j}]"),
                        format!("a string, not {}", kind(other)),
                    )),
                })
                .collect()
        };
        let actions = pick("Action", "NotAction")?;
        if actions.is_empty() {
            return Err(at(&here, "no Action (or NotAction)".into()));
        }
        let resources = pick("Resource", "NotResource")?;
        if resources.is_empty() {
            return Err(at(
                &here,
                "no Resource (or NotResource): a session policy names what it applies to".into(),
            ));
        }
        grants.push(Grant {
            effect,
            actions,
            resources,
            conditional: s.contains_key("Condition"),
        });
    }
    Ok(grants)
}

/// Check 6.
pub fn check(cx: &mut Context, report: &mut Report) {
    let Some(path) = cx.options.session_policy.as_deref() else {
        report.push(Finding::skipped(
            Check::SessionPolicy,
            "session policy",
            "no --session-policy given; give --session-policy FILE (the profile's session \
             policy JSON) to check its size and list what it allows",
        ));
        return;
    };
    let object = format!("session policy {}", path.display());
    let fix_doc = "correct the document: Roles Anywhere and STS refuse it as well";
    let text = match read_policy_file(path) {
        Ok(t) => t,
        Err(e) => {
            report.push(Finding::failed(
                Check::SessionPolicy,
                object,
                e,
                "give --session-policy the profile's session policy (aws rolesanywhere \
                 get-profile --profile-id ID --query profile.sessionPolicy --output text)",
            ));
            return;
        }
    };
    let grants = match json(&text).and_then(|doc| summarise(&doc)) {
        Ok(g) => g,
        Err(e) => {
            report.push(Finding::failed(
                Check::SessionPolicy,
                object,
                e.to_string(),
                fix_doc,
            ));
            return;
        }
    };
    let packed = packed_len(&text);
    if packed > MAX_PACKED {
        report.push(Finding::failed(
            Check::SessionPolicy,
            object.clone(),
            format!(
                "{packed} characters once packed (whitespace outside strings removed), over \
                 STS's limit of {MAX_PACKED} for an inline session policy: CreateSession will \
                 be refused"
            ),
            "shorten it (wildcards such as s3:Get*, fewer statements), or move the permissions \
             to a managed policy listed in the profile's managedPolicyArns",
        ));
    }
    let line = |g: &Grant| {
        format!(
            "{} {} on {}{}",
            g.effect,
            g.actions.join(", "),
            g.resources.join(", "),
            if g.conditional {
                " (with conditions)"
            } else {
                ""
            }
        )
    };
    let allows: Vec<String> = grants
        .iter()
        .filter(|g| g.effect == "Allow")
        .map(line)
        .collect();
    let denies: Vec<String> = grants
        .iter()
        .filter(|g| g.effect == "Deny")
        .map(line)
        .collect();
    if allows.is_empty() {
        report.push(Finding::warning(
            Check::SessionPolicy,
            object,
            format!(
                "{packed} of {MAX_PACKED} characters packed; it allows nothing, so the \
                 credentials will be able to do nothing{}",
                if denies.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", denies.join("; "))
                }
            ),
            "add an Allow statement with the actions and resources the workload needs",
        ));
        return;
    }
    if packed <= MAX_PACKED {
        let mut cause = format!(
            "{packed} of {MAX_PACKED} characters packed; the credentials can do at most: {}",
            allows.join("; ")
        );
        if !denies.is_empty() {
            cause.push_str(&format!("; never: {}", denies.join("; ")));
        }
        cause.push_str(" (and only what the role's own policies allow as well)");
        report.push(Finding::passed(Check::SessionPolicy, object, cause));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_keeps_whitespace_inside_strings_only() {
        assert_eq!(
            packed_len("{ \"a b\" : [ 1 ,\n 2 ] }"),
            "{\"a b\":[1,2]}".len()
        );
        assert_eq!(packed_len(r#"{"a\" b": "x"}"#), r#"{"a\" b":"x"}"#.len());
        assert_eq!(packed_len(r#"{"a\\": " "}"#), r#"{"a\\":" "}"#.len());
    }

    #[test]
    fn the_seeds_s3_session_policy_is_summarised() {
        let doc = json(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
              "Action":["s3:PutObject","s3:GetObject","s3:ListBucket"],
              "Resource":["arn:aws:s3:::corp-backups-prod","arn:aws:s3:::corp-backups-prod/*"]}]}"#,
        )
        .unwrap_or(Value::Null);
        let g = summarise(&doc).unwrap_or_default();
        assert_eq!(g.len(), 1);
        assert_eq!(
            g[0].actions,
            ["s3:PutObject", "s3:GetObject", "s3:ListBucket"]
        );
        assert_eq!(g[0].resources.len(), 2);
    }

    #[test]
    fn wrong_shapes_name_the_position() {
        for (doc, at) in [
            (r#"[]"#, "the top level"),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":5,"Resource":"*"}]}"#,
                "Statement[0].Action[0]",
            ),
            (
                r#"{"Statement":[{"Effect":"Maybe","Action":"s3:*","Resource":"*"}]}"#,
                "Statement[0].Effect",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"s3:*"}]}"#,
                "Statement[0]",
            ),
        ] {
            let v = json(doc).unwrap_or(Value::Null);
            match summarise(&v) {
                Err(DocError::Structure { at: a, .. }) => assert_eq!(a, at, "{doc}"),
                other => panic!("{doc}: {other:?}"),
            }
        }
    }
}
