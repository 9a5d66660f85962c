//! CreateProfile, ListProfiles, Get/Update/Delete/Enable/DisableProfile, Put/DeleteAttributeMapping.
//!
//! The verifier uses roleArns, durationSeconds (the cap on a session), acceptRoleSessionName,
//! enabled and the attribute mappings; sessionPolicy, managedPolicyArns and
//! requireInstanceProperties are validated, stored and returned. The mapping rules themselves
//! are [`crate::mapping`]'s.

use serde_json::{Map, Value, json};

use crate::mapping::{AttributeMappings, CertificateField};

use super::state::{Profile, State};
use super::{
    Answer, ApiError, Ctx, Query, bool_field, check_id, check_name, new_id, page, required,
    string_field, strings_field, tags_field,
};

fn detail(p: &Profile, account: &str) -> Value {
    let mut v = json!({
        "profileId": p.id,
        "profileArn": p.arn,
        "name": p.name,
        "requireInstanceProperties": p.require_instance_properties,
        "enabled": p.enabled,
        "createdBy": account,
        "roleArns": p.role_arns,
        "managedPolicyArns": p.managed_policy_arns,
        "createdAt": p.created_at,
        "updatedAt": p.updated_at,
        "durationSeconds": p.duration_seconds,
        "acceptRoleSessionName": p.accept_role_session_name,
        "attributeMappings": mappings(&p.attribute_mappings),
    });
    if let (Some(policy), Some(o)) = (&p.session_policy, v.as_object_mut()) {
        o.insert("sessionPolicy".into(), json!(policy));
    }
    v
}

/// `[{certificateField, mappingRules: [{specifier}]}]`, the fields with rules.
fn mappings(m: &AttributeMappings) -> Value {
    m.entries()
        .into_iter()
        .map(|(field, specifiers)| {
            json!({
                "certificateField": field.name(),
                "mappingRules": specifiers
                    .iter()
                    .map(|s| json!({ "specifier": s }))
                    .collect::<Vec<_>>(),
            })
        })
        .collect()
}

fn answer(status: u16, p: &Profile, account: &str) -> Answer {
    Ok((status, json!({ "profile": detail(p, account) })))
}

/// `arn:aws(-…)?:iam::ACCOUNT:role/…`, as the model's RoleArn pattern.
fn check_role_arns(arns: &[String]) -> Result<(), ApiError> {
    if arns.len() > 250 {
        return Err(ApiError::validation("roleArns takes at most 250 roles"));
    }
    for arn in arns {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let ok = arn.len() <= 1011
            && parts.len() == 6
            && parts[0] == "arn"
            && (parts[1] == "aws" || parts[1].starts_with("aws-"))
            && parts[2] == "iam"
            && parts[5].starts_with("role");
        if !ok {
            return Err(ApiError::validation(format!(
                "roleArns: {arn:?} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"
            )));
        }
    }
    Ok(())
}

fn check_managed(arns: &[String]) -> Result<(), ApiError> {
    if arns.len() > 50 {
        return Err(ApiError::validation(
            "managedPolicyArns takes at most 50 policies",
        ));
    }
    if let Some(bad) = arns
        .iter()
        .find(|a| !a.starts_with("arn:") || !a.contains(":policy/"))
    {
        return Err(ApiError::validation(format!(
            "managedPolicyArns: {bad:?} is not a managed policy ARN"
        )));
    }
    Ok(())
}

fn check_duration(m: &Map<String, Value>) -> Result<Option<u32>, ApiError> {
    match m.get("durationSeconds") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n @ 900..=43200) => Ok(Some(n as u32)),
            _ => Err(ApiError::validation(format!(
                "durationSeconds {v} is outside 900..43200"
            ))),
        },
    }
}

/// 1 to 100000 characters of JSON object (the service refuses a policy that does not parse).
fn check_session_policy(policy: &str) -> Result<(), ApiError> {
    if policy.is_empty() || policy.chars().count() > 100_000 {
        return Err(ApiError::validation(
            "sessionPolicy must be 1 to 100000 characters",
        ));
    }
    match serde_json::from_str::<Value>(policy) {
        Ok(Value::Object(_)) => Ok(()),
        _ => Err(ApiError::validation(
            "sessionPolicy is not a JSON policy document",
        )),
    }
}

fn find<'s>(s: &'s mut State, id: &str) -> Result<&'s mut Profile, ApiError> {
    check_id(id)?;
    s.profiles
        .iter_mut()
        .find(|p| p.id == id)
        .ok_or_else(|| ApiError::not_found("profile", id))
}

pub(super) fn create(s: &mut State, ctx: &Ctx<'_>, m: &Map<String, Value>) -> Answer {
    let name = required(string_field(m, "name")?, "name")?;
    check_name(&name)?;
    let role_arns = required(strings_field(m, "roleArns")?, "roleArns")?;
    check_role_arns(&role_arns)?;
    let managed_policy_arns = strings_field(m, "managedPolicyArns")?.unwrap_or_default();
    check_managed(&managed_policy_arns)?;
    let session_policy = string_field(m, "sessionPolicy")?;
    if let Some(p) = &session_policy {
        check_session_policy(p)?;
    }
    let duration_seconds = check_duration(m)?.unwrap_or(3600);
    let tags = tags_field(m)?;
    let id = new_id();
    let profile = Profile {
        arn: ctx.arn("profile", &id),
        id,
        name,
        role_arns,
        managed_policy_arns,
        session_policy,
        duration_seconds,
        accept_role_session_name: bool_field(m, "acceptRoleSessionName")?.unwrap_or(false),
        require_instance_properties: bool_field(m, "requireInstanceProperties")?.unwrap_or(false),
        enabled: bool_field(m, "enabled")?.unwrap_or(false),
        created_at: ctx.now.clone(),
        updated_at: ctx.now.clone(),
        tags,
        attribute_mappings: AttributeMappings::default(),
    };
    let out = answer(201, &profile, ctx.account);
    s.profiles.push(profile);
    out
}

pub(super) fn list(s: &State, q: &Query, account: &str) -> Answer {
    page(
        s.profiles.iter().map(|p| detail(p, account)).collect(),
        "profiles",
        q,
    )
}

pub(super) fn get(s: &State, id: &str, account: &str) -> Answer {
    check_id(id)?;
    let p = s
        .profiles
        .iter()
        .find(|p| p.id == *id)
        .ok_or_else(|| ApiError::not_found("profile", id))?;
    answer(200, p, account)
}

pub(super) fn update(s: &mut State, ctx: &Ctx<'_>, id: &str, m: &Map<String, Value>) -> Answer {
    let name = string_field(m, "name")?;
    if let Some(n) = &name {
        check_name(n)?;
    }
    let role_arns = strings_field(m, "roleArns")?;
    if let Some(r) = &role_arns {
        check_role_arns(r)?;
    }
    let managed = strings_field(m, "managedPolicyArns")?;
    if let Some(a) = &managed {
        check_managed(a)?;
    }
    let policy = string_field(m, "sessionPolicy")?;
    if let Some(p) = &policy {
        check_session_policy(p)?;
    }
    let duration = check_duration(m)?;
    let accept = bool_field(m, "acceptRoleSessionName")?;
    let p = find(s, id)?;
    if let Some(v) = name {
        p.name = v;
    }
    if let Some(v) = role_arns {
        p.role_arns = v;
    }
    if let Some(v) = managed {
        p.managed_policy_arns = v;
    }
    if policy.is_some() {
        p.session_policy = policy;
    }
    if let Some(v) = duration {
        p.duration_seconds = v;
    }
    if let Some(v) = accept {
        p.accept_role_session_name = v;
    }
    p.updated_at = ctx.now.clone();
    answer(200, p, ctx.account)
}

pub(super) fn delete(s: &mut State, id: &str, account: &str) -> Answer {
    find(s, id)?;
    let index = s
        .profiles
        .iter()
        .position(|p| p.id == id)
        .unwrap_or_default();
    let p = s.profiles.remove(index);
    answer(200, &p, account)
}

pub(super) fn set_enabled(s: &mut State, ctx: &Ctx<'_>, id: &str, enabled: bool) -> Answer {
    let p = find(s, id)?;
    p.enabled = enabled;
    p.updated_at = ctx.now.clone();
    answer(200, p, ctx.account)
}

fn certificate_field(name: &str) -> Result<CertificateField, ApiError> {
    CertificateField::parse(name)
        .map_err(|e| ApiError::validation(format!("certificateField: {e}")))
}

/// PutAttributeMapping: `{certificateField, mappingRules: [{specifier}]}` replaces the field's
/// rules (an empty list leaves the field without rules).
pub(super) fn put_mapping(
    s: &mut State,
    ctx: &Ctx<'_>,
    id: &str,
    m: &Map<String, Value>,
) -> Answer {
    let field = certificate_field(&required(
        string_field(m, "certificateField")?,
        "certificateField",
    )?)?;
    let rules = match m.get("mappingRules") {
        None | Some(Value::Null) => return Err(ApiError::validation("mappingRules is required")),
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(ApiError::validation(
                "mappingRules must be a list of {\"specifier\": …}",
            ));
        }
    };
    let specifiers = rules
        .iter()
        .map(|r| {
            r.get("specifier")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| {
                    ApiError::validation(
                        "each of mappingRules must be an object with a string specifier",
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let p = find(s, id)?;
    p.attribute_mappings
        .put(field, &specifiers)
        .map_err(|e| ApiError::validation(format!("mappingRules: {e}")))?;
    p.updated_at = ctx.now.clone();
    answer(200, p, ctx.account)
}

/// DeleteAttributeMapping: `?certificateField=…` removes the field's rules, with
/// `&specifiers=…` (repeated) only those.
pub(super) fn delete_mapping(s: &mut State, ctx: &Ctx<'_>, id: &str, q: &Query) -> Answer {
    let field = certificate_field(required(q.get("certificateField"), "certificateField")?)?;
    let listed: Vec<String> = q
        .all("specifiers")
        .into_iter()
        .map(str::to_string)
        .collect();
    let p = find(s, id)?;
    p.attribute_mappings
        .delete(field, (!listed.is_empty()).then_some(listed.as_slice()));
    p.updated_at = ctx.now.clone();
    answer(200, p, ctx.account)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx<'static> {
        Ctx {
            region: "us-east-1",
            account: "123456789012",
            now: "2025-01-01T00:00:00Z".into(),
        }
    }

    fn with_profile() -> (State, String) {
        let mut s = State::default();
        let body = json!({"name": "p", "roleArns": ["arn:aws:iam::123456789012:role/R"]});
        let (_, v) = create(&mut s, &ctx(), body.as_object().expect("object")).expect("create");
        let id = v["profile"]["profileId"].as_str().expect("id").to_string();
        (s, id)
    }

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn a_new_profile_lists_the_default_rules_in_the_services_order() {
        let (s, id) = with_profile();
        let (_, v) = get(&s, &id, "123456789012").expect("get");
        assert_eq!(
            v["profile"]["attributeMappings"],
            json!([
                {"certificateField": "x509Issuer", "mappingRules": [{"specifier": "*"}]},
                {"certificateField": "x509SAN", "mappingRules": [
                    {"specifier": "DNS"}, {"specifier": "URI"}, {"specifier": "Name/*"}]},
                {"certificateField": "x509Subject", "mappingRules": [{"specifier": "*"}]},
            ])
        );
    }

    #[test]
    fn put_mapping_refuses_bad_fields_rules_and_long_specifiers() {
        let (mut s, id) = with_profile();
        let refused =
            |s: &mut State, v: Value| put_mapping(s, &ctx(), &id, &body(v)).expect_err("refused");
        let e = refused(
            &mut s,
            json!({"certificateField": "x509Foo", "mappingRules": []}),
        );
        assert_eq!(e.kind, "ValidationException");
        assert!(e.message.contains("x509Foo"), "{}", e.message);
        let e = refused(&mut s, json!({"mappingRules": []}));
        assert!(
            e.message.contains("certificateField is required"),
            "{}",
            e.message
        );
        let e = refused(&mut s, json!({"certificateField": "x509Subject"}));
        assert!(
            e.message.contains("mappingRules is required"),
            "{}",
            e.message
        );
        let e = refused(
            &mut s,
            json!({"certificateField": "x509Subject", "mappingRules": ["CN"]}),
        );
        assert!(e.message.contains("specifier"), "{}", e.message);
        let long = "A".repeat(61);
        let e = refused(
            &mut s,
            json!({"certificateField": "x509Subject", "mappingRules": [{"specifier": long}]}),
        );
        assert!(e.message.contains("longer than 60"), "{}", e.message);
        // 60 characters is the limit, not past it.
        let ok = "A".repeat(60);
        put_mapping(
            &mut s,
            &ctx(),
            &id,
            &body(json!({"certificateField": "x509Subject", "mappingRules": [{"specifier": ok}]})),
        )
        .expect("60 characters");
        // Nothing refused changed the rules.
        assert_eq!(
            s.profiles[0]
                .attribute_mappings
                .specifiers(CertificateField::Subject),
            ["A".repeat(60)]
        );
        assert_eq!(
            s.profiles[0]
                .attribute_mappings
                .specifiers(CertificateField::Issuer),
            ["*"]
        );
    }

    #[test]
    fn mapping_an_unknown_or_malformed_profile_id_is_refused() {
        let (mut s, _) = with_profile();
        let m = body(json!({"certificateField": "x509Subject", "mappingRules": []}));
        let e = put_mapping(&mut s, &ctx(), "00000000-0000-4000-8000-000000000000", &m)
            .expect_err("unknown");
        assert_eq!((e.status, e.kind), (404, "ResourceNotFoundException"));
        let e = put_mapping(&mut s, &ctx(), "not-a-uuid", &m).expect_err("malformed");
        assert_eq!(e.kind, "ValidationException");
    }

    #[test]
    fn delete_mapping_removes_listed_specifiers_or_the_whole_field() {
        let (mut s, id) = with_profile();
        let q = Query::parse("certificateField=x509SAN&specifiers=DNS&specifiers=Name%2F%2A");
        let (_, v) = delete_mapping(&mut s, &ctx(), &id, &q).expect("delete");
        assert_eq!(
            v["profile"]["attributeMappings"][1],
            json!({"certificateField": "x509SAN", "mappingRules": [{"specifier": "URI"}]})
        );
        let (_, v) = delete_mapping(
            &mut s,
            &ctx(),
            &id,
            &Query::parse("certificateField=x509SAN"),
        )
        .expect("delete field");
        let fields: Vec<&str> = v["profile"]["attributeMappings"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|m| m["certificateField"].as_str())
            .collect();
        assert_eq!(fields, ["x509Issuer", "x509Subject"]);
        let e = delete_mapping(&mut s, &ctx(), &id, &Query::parse("specifiers=CN"))
            .expect_err("no field");
        assert_eq!(e.kind, "ValidationException");
        // The verifier's configuration follows the state.
        let config = s.config(&super::super::test_config());
        assert!(
            config.profiles[0]
                .attribute_mappings
                .specifiers(CertificateField::San)
                .is_empty()
        );
    }
}
