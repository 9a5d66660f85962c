//! TagResource, UntagResource and ListTagsForResource for trust anchors, profiles and CRLs,
//! named by ARN. Tagging merges (a key already there takes the new value); a resource holds at
//! most 200 tags, more is a TooManyTagsException.

use serde_json::{Map, Value, json};

use super::state::{State, Tag};
use super::{
    Answer, ApiError, MAX_TAGS, Query, check_tag_key, required, string_field, strings_field,
};

/// Where the resource an ARN names is.
enum Resource {
    TrustAnchor(usize),
    Profile(usize),
    Crl(usize),
}

fn locate(s: &State, arn: &str) -> Result<Resource, ApiError> {
    if arn.is_empty() || arn.len() > 1011 {
        return Err(ApiError::validation(
            "resourceArn must be 1 to 1011 characters",
        ));
    }
    if let Some(i) = s.trust_anchors.iter().position(|a| a.arn == arn) {
        return Ok(Resource::TrustAnchor(i));
    }
    if let Some(i) = s.profiles.iter().position(|p| p.arn == arn) {
        return Ok(Resource::Profile(i));
    }
    if let Some(i) = s.crls.iter().position(|c| c.arn == arn) {
        return Ok(Resource::Crl(i));
    }
    Err(ApiError::not_found(
        "resource (trust anchor, profile or CRL)",
        arn,
    ))
}

fn tags_of<'s>(s: &'s State, arn: &str) -> Result<&'s [Tag], ApiError> {
    Ok(match locate(s, arn)? {
        Resource::TrustAnchor(i) => &s.trust_anchors[i].tags,
        Resource::Profile(i) => &s.profiles[i].tags,
        Resource::Crl(i) => &s.crls[i].tags,
    })
}

fn tags_of_mut<'s>(s: &'s mut State, arn: &str) -> Result<&'s mut Vec<Tag>, ApiError> {
    Ok(match locate(s, arn)? {
        Resource::TrustAnchor(i) => &mut s.trust_anchors[i].tags,
        Resource::Profile(i) => &mut s.profiles[i].tags,
        Resource::Crl(i) => &mut s.crls[i].tags,
    })
}

/// TagResource: `{resourceArn, tags}` → 201 `{}`.
pub(super) fn tag(s: &mut State, m: &Map<String, Value>) -> Answer {
    let arn = required(string_field(m, "resourceArn")?, "resourceArn")?;
    let list = match m.get("tags") {
        None | Some(Value::Null) => return Err(ApiError::validation("tags is required")),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(ApiError::validation("tags must be a list")),
    };
    if list.len() > MAX_TAGS {
        return Err(ApiError::too_many_tags(format!(
            "{} tags in one request; a resource takes at most {MAX_TAGS}",
            list.len()
        )));
    }
    let new = list.iter().map(super::tag).collect::<Result<Vec<_>, _>>()?;
    let tags = tags_of_mut(s, &arn)?;
    let mut merged = tags.clone();
    for t in new {
        match merged.iter_mut().find(|o| o.key == t.key) {
            Some(o) => o.value = t.value,
            None => merged.push(t),
        }
    }
    if merged.len() > MAX_TAGS {
        return Err(ApiError::too_many_tags(format!(
            "{arn} would hold {} tags; a resource takes at most {MAX_TAGS} (untag some first)",
            merged.len()
        )));
    }
    *tags = merged;
    Ok((201, json!({})))
}

/// UntagResource: `{resourceArn, tagKeys}` → `{}`; keys the resource does not hold are ignored.
pub(super) fn untag(s: &mut State, m: &Map<String, Value>) -> Answer {
    let arn = required(string_field(m, "resourceArn")?, "resourceArn")?;
    let keys = required(strings_field(m, "tagKeys")?, "tagKeys")?;
    if keys.len() > MAX_TAGS {
        return Err(ApiError::validation(format!(
            "tagKeys holds {} keys; at most {MAX_TAGS}",
            keys.len()
        )));
    }
    for k in &keys {
        check_tag_key(k)?;
    }
    tags_of_mut(s, &arn)?.retain(|t| !keys.contains(&t.key));
    Ok((200, json!({})))
}

/// ListTagsForResource: `?resourceArn=` → `{tags}`.
pub(super) fn list(s: &State, q: &Query) -> Answer {
    let arn = required(q.get("resourceArn"), "resourceArn")?;
    let tags: Vec<Value> = tags_of(s, arn)?
        .iter()
        .map(|t| json!({"key": t.key, "value": t.value}))
        .collect();
    Ok((200, json!({ "tags": tags })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::state::Profile;

    const ARN: &str = "arn:aws:rolesanywhere:us-east-1:123456789012:profile/p";

    fn state() -> State {
        let mut s = State::default();
        s.profiles.push(Profile {
            id: "p".into(),
            arn: ARN.into(),
            name: "p".into(),
            role_arns: Vec::new(),
            managed_policy_arns: Vec::new(),
            session_policy: None,
            duration_seconds: 3600,
            accept_role_session_name: false,
            require_instance_properties: false,
            enabled: true,
            created_at: String::new(),
            updated_at: String::new(),
            tags: Vec::new(),
            attribute_mappings: Default::default(),
        });
        s
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    fn tags_json(n: usize, prefix: &str) -> Value {
        Value::Array(
            (0..n)
                .map(|i| json!({"key": format!("{prefix}{i}"), "value": "v"}))
                .collect(),
        )
    }

    fn listed(s: &State) -> Value {
        let q = Query(vec![("resourceArn".into(), ARN.into())]);
        list(s, &q).expect("list").1["tags"].clone()
    }

    #[test]
    fn tagging_merges_by_key_and_untagging_ignores_unknown_keys() {
        let mut s = state();
        let (status, _) = tag(
            &mut s,
            &obj(json!({"resourceArn": ARN, "tags": [{"key": "a", "value": "1"}, {"key": "b", "value": ""}]})),
        )
        .expect("tag");
        assert_eq!(status, 201);
        tag(
            &mut s,
            &obj(json!({"resourceArn": ARN, "tags": [{"key": "a", "value": "2"}]})),
        )
        .expect("retag");
        assert_eq!(
            listed(&s),
            json!([{"key": "a", "value": "2"}, {"key": "b", "value": ""}])
        );
        untag(
            &mut s,
            &obj(json!({"resourceArn": ARN, "tagKeys": ["b", "never-set"]})),
        )
        .expect("untag");
        assert_eq!(listed(&s), json!([{"key": "a", "value": "2"}]));
    }

    #[test]
    fn the_200_tag_limit_counts_what_the_resource_already_holds() {
        let mut s = state();
        let e = tag(
            &mut s,
            &obj(json!({"resourceArn": ARN, "tags": tags_json(201, "k")})),
        )
        .expect_err("201 in one request");
        assert_eq!((e.status, e.kind), (400, "TooManyTagsException"));
        tag(
            &mut s,
            &obj(json!({"resourceArn": ARN, "tags": tags_json(150, "k")})),
        )
        .expect("150");
        // 100 of the same keys again is still 150; 51 new ones is 201.
        tag(
            &mut s,
            &obj(json!({"resourceArn": ARN, "tags": tags_json(100, "k")})),
        )
        .expect("same keys");
        let e = tag(
            &mut s,
            &obj(json!({"resourceArn": ARN, "tags": tags_json(51, "n")})),
        )
        .expect_err("201 in all");
        assert_eq!(e.kind, "TooManyTagsException");
        assert_eq!(listed(&s).as_array().map(Vec::len), Some(150));
        tag(
            &mut s,
            &obj(json!({"resourceArn": ARN, "tags": tags_json(50, "n")})),
        )
        .expect("exactly 200");
    }

    #[test]
    fn keys_values_and_arns_outside_the_model_are_refused() {
        let mut s = state();
        let long_key = "k".repeat(129);
        let long_value = "v".repeat(257);
        for (tags, needle) in [
            (json!([{"key": "", "value": "v"}]), "1 to 128"),
            (json!([{"key": long_key, "value": "v"}]), "1 to 128"),
            (json!([{"key": "a*b", "value": "v"}]), "a*b"),
            (json!([{"key": "é", "value": "v"}]), "1 to 128"),
            (json!([{"key": "k", "value": long_value}]), "at most 256"),
            (json!([{"key": "k", "value": "semi;colon"}]), "at most 256"),
            (json!([{"key": "k"}]), "string value"),
            (json!({"key": "k", "value": "v"}), "must be a list"),
        ] {
            let e = tag(
                &mut s,
                &obj(json!({"resourceArn": ARN, "tags": tags.clone()})),
            )
            .expect_err("refused");
            assert_eq!(e.kind, "ValidationException", "{tags}");
            assert!(e.message.contains(needle), "{tags}: {}", e.message);
        }
        // The edges pass: 128-character key, 256-character value, every allowed punctuation.
        let edge = json!([{"key": "k".repeat(128), "value": "v".repeat(256)},
                          {"key": " _.:/=+@-", "value": " _.:/=+@-"}]);
        tag(&mut s, &obj(json!({"resourceArn": ARN, "tags": edge}))).expect("edges");
        let e = tag(&mut s, &obj(json!({"resourceArn": ARN}))).expect_err("no tags");
        assert!(e.message.contains("tags is required"), "{}", e.message);
        let e = untag(
            &mut s,
            &obj(json!({"resourceArn": ARN, "tagKeys": ["bad*"]})),
        )
        .expect_err("bad key");
        assert_eq!(e.kind, "ValidationException");
        let e = untag(&mut s, &obj(json!({"resourceArn": ARN}))).expect_err("no keys");
        assert!(e.message.contains("tagKeys is required"), "{}", e.message);
        let other = "arn:aws:rolesanywhere:us-east-1:123456789012:profile/other";
        let e = tag(&mut s, &obj(json!({"resourceArn": other, "tags": []}))).expect_err("unknown");
        assert_eq!((e.status, e.kind), (404, "ResourceNotFoundException"));
        let e = list(&s, &Query(vec![("resourceArn".into(), String::new())])).expect_err("empty");
        assert_eq!(e.kind, "ValidationException");
        let e = list(&s, &Query(Vec::new())).expect_err("missing");
        assert!(
            e.message.contains("resourceArn is required"),
            "{}",
            e.message
        );
    }
}
