//! CreateProfile, ListProfiles, Get/Update/Delete/Enable/DisableProfile.
//!
//! The verifier uses roleArns, durationSeconds (the cap on a session), acceptRoleSessionName and
//! enabled; sessionPolicy, managedPolicyArns and requireInstanceProperties are validated, stored
//! and returned.

use serde_json::{Map, Value, json};

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
        "attributeMappings": [],
    });
    if let (Some(policy), Some(o)) = (&p.session_policy, v.as_object_mut()) {
        o.insert("sessionPolicy".into(), json!(policy));
    }
    v
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
