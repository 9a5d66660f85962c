//! CreateTrustAnchor, ListTrustAnchors, Get/Update/Delete/Enable/DisableTrustAnchor.
//!
//! Only `CERTIFICATE_BUNDLE` sources exist offline: `AWS_ACM_PCA` needs AWS Private CA, and
//! `SELF_SIGNED_REPOSITORY` is the service's own, so both are refused with a ValidationException.

use serde_json::{Map, Value, json};

use super::state::{State, TrustAnchor};
use super::{
    Answer, ApiError, Ctx, Query, bool_field, check_id, check_name, new_id, page, required,
    string_field, tags_field,
};

/// Largest `x509CertificateData` the model allows.
const MAX_CERTIFICATE_DATA: usize = 204_800;

fn default_notifications() -> Vec<Value> {
    ["CA_CERTIFICATE_EXPIRY", "END_ENTITY_CERTIFICATE_EXPIRY"]
        .iter()
        .map(|event| {
            json!({"enabled": true, "event": event, "threshold": 45, "channel": "ALL",
                   "configuredBy": "rolesanywhere.amazonaws.com"})
        })
        .collect()
}

pub(super) fn detail(a: &TrustAnchor) -> Value {
    let notifications = if a.notification_settings.is_empty() {
        default_notifications()
    } else {
        a.notification_settings.clone()
    };
    json!({
        "trustAnchorId": a.id,
        "trustAnchorArn": a.arn,
        "name": a.name,
        "source": {
            "sourceType": "CERTIFICATE_BUNDLE",
            "sourceData": {"x509CertificateData": a.certificate_pem},
        },
        "enabled": a.enabled,
        "createdAt": a.created_at,
        "updatedAt": a.updated_at,
        "notificationSettings": notifications,
    })
}

fn answer(status: u16, a: &TrustAnchor) -> Answer {
    Ok((status, json!({ "trustAnchor": detail(a) })))
}

/// The PEM of a `source`, validated as a trust anchor bundle.
fn source_pem(m: &Map<String, Value>) -> Result<String, ApiError> {
    let source = required(m.get("source").and_then(Value::as_object), "source")?;
    let kind = required(string_field(source, "sourceType")?, "source.sourceType")?;
    let data = source.get("sourceData").and_then(Value::as_object);
    match kind.as_str() {
        "CERTIFICATE_BUNDLE" => {}
        "AWS_ACM_PCA" => {
            return Err(ApiError::validation(
                "sourceType AWS_ACM_PCA needs AWS Private CA, which this offline emulator does not have; use CERTIFICATE_BUNDLE with the CA certificate's PEM in sourceData.x509CertificateData",
            ));
        }
        "SELF_SIGNED_REPOSITORY" => {
            return Err(ApiError::validation(
                "sourceType SELF_SIGNED_REPOSITORY is not supported by this emulator; use CERTIFICATE_BUNDLE",
            ));
        }
        other => {
            return Err(ApiError::validation(format!(
                "sourceType {other:?} is not one of AWS_ACM_PCA, CERTIFICATE_BUNDLE, SELF_SIGNED_REPOSITORY"
            )));
        }
    }
    let pem = required(
        data.map(|d| string_field(d, "x509CertificateData"))
            .transpose()?
            .flatten(),
        "source.sourceData.x509CertificateData",
    )?;
    if pem.is_empty() || pem.len() > MAX_CERTIFICATE_DATA {
        return Err(ApiError::validation(format!(
            "x509CertificateData must be 1 to {MAX_CERTIFICATE_DATA} characters"
        )));
    }
    crate::config::anchor_certificates(&pem)
        .map_err(|e| ApiError::validation(format!("x509CertificateData: {e}")))?;
    Ok(pem)
}

fn find<'s>(s: &'s mut State, id: &str) -> Result<&'s mut TrustAnchor, ApiError> {
    check_id(id)?;
    s.trust_anchors
        .iter_mut()
        .find(|a| a.id == id)
        .ok_or_else(|| ApiError::not_found("trust anchor", id))
}

pub(super) fn create(s: &mut State, ctx: &Ctx<'_>, m: &Map<String, Value>) -> Answer {
    let name = required(string_field(m, "name")?, "name")?;
    check_name(&name)?;
    let certificate_pem = source_pem(m)?;
    let tags = tags_field(m)?;
    let notification_settings = match m.get("notificationSettings") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|n| {
                let mut n = n.clone();
                if let Some(o) = n.as_object_mut() {
                    o.entry("channel").or_insert_with(|| json!("ALL"));
                    o.entry("threshold").or_insert_with(|| json!(45));
                    o.insert("configuredBy".into(), json!(ctx.account));
                }
                n
            })
            .collect(),
        Some(_) => return Err(ApiError::validation("notificationSettings must be a list")),
    };
    let id = new_id();
    let anchor = TrustAnchor {
        arn: ctx.arn("trust-anchor", &id),
        id,
        name,
        certificate_pem,
        // The service creates trust anchors disabled unless asked.
        enabled: bool_field(m, "enabled")?.unwrap_or(false),
        created_at: ctx.now.clone(),
        updated_at: ctx.now.clone(),
        tags,
        notification_settings,
    };
    let out = answer(201, &anchor);
    s.trust_anchors.push(anchor);
    out
}

pub(super) fn list(s: &State, q: &Query) -> Answer {
    page(
        s.trust_anchors.iter().map(detail).collect(),
        "trustAnchors",
        q,
    )
}

pub(super) fn get(s: &State, id: &str) -> Answer {
    check_id(id)?;
    let a = s
        .trust_anchors
        .iter()
        .find(|a| a.id == *id)
        .ok_or_else(|| ApiError::not_found("trust anchor", id))?;
    answer(200, a)
}

pub(super) fn update(s: &mut State, ctx: &Ctx<'_>, id: &str, m: &Map<String, Value>) -> Answer {
    let name = string_field(m, "name")?;
    if let Some(n) = &name {
        check_name(n)?;
    }
    let pem = if m.get("source").is_some_and(|v| !v.is_null()) {
        Some(source_pem(m)?)
    } else {
        None
    };
    let a = find(s, id)?;
    if let Some(n) = name {
        a.name = n;
    }
    if let Some(p) = pem {
        a.certificate_pem = p;
    }
    a.updated_at = ctx.now.clone();
    answer(200, a)
}

pub(super) fn delete(s: &mut State, id: &str) -> Answer {
    find(s, id)?;
    let index = s
        .trust_anchors
        .iter()
        .position(|a| a.id == id)
        .unwrap_or_default();
    let a = s.trust_anchors.remove(index);
    // Its CRLs revoke for nothing any more.
    s.crls.retain(|c| c.trust_anchor_arn != a.arn);
    answer(200, &a)
}

pub(super) fn set_enabled(s: &mut State, ctx: &Ctx<'_>, id: &str, enabled: bool) -> Answer {
    let a = find(s, id)?;
    a.enabled = enabled;
    a.updated_at = ctx.now.clone();
    answer(200, a)
}
