//! `testdata/policy-cases.json`: the decisions doctor's engine and the emulator's must share.
//! The file's `about` says what each field means; the emulator reads the same file in its own
//! policy tests.

use super::document::Policy;
use super::eval::{Miss, Outcome, Request, decide};
use serde_json::{Value, json};

const CASES: &str = include_str!("../../../testdata/policy-cases.json");

/// The outcome in the table's terms.
fn observed(case: &Value) -> Result<Value, String> {
    let policy = Policy::from_value(&case["policy"]).map_err(|e| e.to_string())?;
    let service = case["principal"]
        .as_str()
        .unwrap_or("rolesanywhere.amazonaws.com");
    let mut request = Request::new(service);
    if let Some(tags) = case["tags"].as_object() {
        for (k, v) in tags {
            let v = v.as_str().ok_or("a tag value is not a string")?;
            request.set(&format!("aws:PrincipalTag/{k}"), vec![v.to_string()]);
        }
    }
    if let Some(si) = case["source_identity"].as_str() {
        request.set("sts:SourceIdentity", vec![si.to_string()]);
    }
    if let Some(arn) = case["source_arn"].as_str() {
        request.set("aws:SourceArn", vec![arn.to_string()]);
    }
    if let Some(keys) = case["keys"].as_object() {
        for (k, v) in keys {
            let values = v
                .as_array()
                .ok_or("keys values are arrays")?
                .iter()
                .map(|x| x.as_str().map(str::to_string).ok_or("not a string"))
                .collect::<Result<Vec<_>, _>>()?;
            request.set(k, values);
        }
    }
    let actions: Vec<&str> = case["actions"]
        .as_array()
        .ok_or("no actions")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let outcomes: Vec<(&str, Outcome)> = actions
        .iter()
        .map(|a| (*a, decide(&policy, &request, a)))
        .collect();
    let deciding = outcomes
        .iter()
        .find(|(_, o)| matches!(o, Outcome::Denied { .. }))
        .or_else(|| outcomes.iter().find(|(_, o)| !o.allowed()));
    Ok(match deciding {
        None => match outcomes.first() {
            Some((_, Outcome::Allowed { statement, .. })) => {
                json!({"decision": "allow", "statement": statement})
            }
            _ => return Err("no action asked".into()),
        },
        Some((action, Outcome::Denied { statement, .. })) => {
            json!({"decision": "deny", "action": action, "explicit": statement})
        }
        Some((action, Outcome::NotAllowed { misses })) => {
            let m: Vec<Value> = misses
                .iter()
                .map(|(i, miss)| match miss {
                    Miss::Principal => json!({"statement": i, "reason": "principal"}),
                    Miss::Action => json!({"statement": i, "reason": "action"}),
                    Miss::Conditions(failed) => match failed.as_slice() {
                        [one] => json!({"statement": i, "reason": "condition",
                            "operator": one.condition.operator, "key": one.condition.key}),
                        more => json!({"statement": i, "reason": "condition",
                            "failed": more.iter().map(|j| format!("{} {}", j.condition.operator, j.condition.key)).collect::<Vec<_>>()}),
                    },
                })
                .collect();
            json!({"decision": "deny", "action": action, "misses": m})
        }
        Some((_, Outcome::Allowed { .. })) => return Err("unreachable: allowed".into()),
    })
}

#[test]
fn doctor_decides_every_shared_policy_case_as_the_table_says() {
    let doc: Value = match serde_json::from_str(CASES) {
        Ok(d) => d,
        Err(e) => panic!("testdata/policy-cases.json: {e}"),
    };
    let cases = doc["cases"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    assert!(cases.len() >= 30, "the table has {} cases", cases.len());
    let mut wrong = Vec::new();
    for case in cases {
        let got = observed(case);
        if got.as_ref().ok() != Some(&case["expect"]) {
            wrong.push(format!(
                "{}: expected {}, doctor decided {:?}",
                case["name"], case["expect"], got
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
