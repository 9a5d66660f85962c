//! CreateTrustAnchor, ListTrustAnchors, Get/Update/Delete/Enable/DisableTrustAnchor,
//! Put/ResetNotificationSettings.
//!
//! Every trust anchor reports one notification setting per event: the one customised through
//! `notificationSettings` (at creation or PutNotificationSettings; `configuredBy` the account),
//! else the service's default (enabled, 45 days, `configuredBy` rolesanywhere.amazonaws.com).
//! ResetNotificationSettings drops the customisation. A setting without `threshold` gets 45.
//!
//! Only `CERTIFICATE_BUNDLE` sources exist offline: `AWS_ACM_PCA` needs AWS Private CA, and
//! `SELF_SIGNED_REPOSITORY` is the service's own, so both are refused with a ValidationException.

use serde_json::{Map, Value, json};

use super::state::{NOTIFICATION_EVENTS, NotificationSetting, State, TrustAnchor};
use super::{
    Answer, ApiError, Ctx, Query, bool_field, check_id, check_name, new_id, page, required,
    string_field, tags_field,
};

/// Largest `x509CertificateData` the model allows.
const MAX_CERTIFICATE_DATA: usize = 204_800;

/// The threshold a setting gets when none is given, and the default settings'.
const DEFAULT_THRESHOLD: u32 = 45;
/// Most settings (and setting keys) one request carries.
const MAX_SETTINGS: usize = 50;

/// Each event's setting: the customised one, else the default.
fn notifications(a: &TrustAnchor) -> Vec<Value> {
    NOTIFICATION_EVENTS
        .iter()
        .map(
            |event| match a.notification_settings.iter().find(|n| n.event == *event) {
                Some(n) => json!({"enabled": n.enabled, "event": n.event, "threshold": n.threshold,
                                  "channel": n.channel, "configuredBy": n.configured_by}),
                None => json!({"enabled": true, "event": event, "threshold": DEFAULT_THRESHOLD,
                               "channel": "ALL", "configuredBy": "rolesanywhere.amazonaws.com"}),
            },
        )
        .collect()
}

/// `event`: one of [`NOTIFICATION_EVENTS`], required.
fn event_field(m: &Map<String, Value>, what: &str) -> Result<String, ApiError> {
    let event = required(string_field(m, "event")?, &format!("{what}.event"))?;
    if !NOTIFICATION_EVENTS.contains(&event.as_str()) {
        return Err(ApiError::validation(format!(
            "{what}.event {event:?} is not one of {}",
            NOTIFICATION_EVENTS.join(", ")
        )));
    }
    Ok(event)
}

/// `channel`: `ALL` (the only one), optional.
fn channel_field(m: &Map<String, Value>, what: &str) -> Result<String, ApiError> {
    match string_field(m, "channel")?.as_deref() {
        None | Some("ALL") => Ok("ALL".into()),
        Some(other) => Err(ApiError::validation(format!(
            "{what}.channel {other:?} is not ALL (the only channel)"
        ))),
    }
}

/// A list field of objects, at most [`MAX_SETTINGS`], each handed to `f` with its name.
fn objects<T>(
    m: &Map<String, Value>,
    name: &str,
    mut f: impl FnMut(&Map<String, Value>, &str) -> Result<T, ApiError>,
) -> Result<Option<Vec<T>>, ApiError> {
    let list = match m.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(ApiError::validation(format!("{name} must be a list"))),
    };
    if list.len() > MAX_SETTINGS {
        return Err(ApiError::validation(format!(
            "{name} holds {} entries; at most {MAX_SETTINGS}",
            list.len()
        )));
    }
    list.iter()
        .enumerate()
        .map(|(i, v)| {
            let what = format!("{name}[{i}]");
            let o = v
                .as_object()
                .ok_or_else(|| ApiError::validation(format!("{what} must be an object")))?;
            f(o, &what)
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// `notificationSettings`: `[{enabled, event, threshold?, channel?}]`, one per event.
fn settings_field(
    m: &Map<String, Value>,
    account: &str,
) -> Result<Option<Vec<NotificationSetting>>, ApiError> {
    let settings = objects(m, "notificationSettings", |o, what| {
        let enabled = required(bool_field(o, "enabled")?, &format!("{what}.enabled"))?;
        let event = event_field(o, what)?;
        let threshold = match o.get("threshold") {
            None | Some(Value::Null) => DEFAULT_THRESHOLD,
            Some(v) => match v.as_u64() {
                Some(n @ 1..=360) => n as u32,
                _ => {
                    return Err(ApiError::validation(format!(
                        "{what}.threshold {v} is not a number of days from 1 to 360"
                    )));
                }
            },
        };
        Ok(NotificationSetting {
            enabled,
            event,
            threshold,
            channel: channel_field(o, what)?,
            configured_by: account.to_string(),
        })
    })?;
    if let Some(list) = &settings {
        for (i, n) in list.iter().enumerate() {
            if list[..i].iter().any(|o| o.event == n.event) {
                return Err(ApiError::validation(format!(
                    "notificationSettings names event {} twice",
                    n.event
                )));
            }
        }
    }
    Ok(settings)
}

pub(super) fn detail(a: &TrustAnchor) -> Value {
    let notifications = notifications(a);
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
    let notification_settings = settings_field(m, ctx.account)?.unwrap_or_default();
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

fn find_by_body<'s>(
    s: &'s mut State,
    m: &Map<String, Value>,
) -> Result<&'s mut TrustAnchor, ApiError> {
    let id = required(string_field(m, "trustAnchorId")?, "trustAnchorId")?;
    find(s, &id)
}

/// PutNotificationSettings: `{trustAnchorId, notificationSettings}` customises each event named.
pub(super) fn put_notifications(s: &mut State, ctx: &Ctx<'_>, m: &Map<String, Value>) -> Answer {
    let settings = required(settings_field(m, ctx.account)?, "notificationSettings")?;
    let a = find_by_body(s, m)?;
    for n in settings {
        a.notification_settings.retain(|o| o.event != n.event);
        a.notification_settings.push(n);
    }
    a.updated_at = ctx.now.clone();
    answer(200, a)
}

/// ResetNotificationSettings: `{trustAnchorId, notificationSettingKeys: [{event, channel?}]}`
/// returns each event named to the default setting.
pub(super) fn reset_notifications(s: &mut State, ctx: &Ctx<'_>, m: &Map<String, Value>) -> Answer {
    let keys = required(
        objects(m, "notificationSettingKeys", |o, what| {
            channel_field(o, what)?;
            event_field(o, what)
        })?,
        "notificationSettingKeys",
    )?;
    let a = find_by_body(s, m)?;
    a.notification_settings.retain(|n| !keys.contains(&n.event));
    a.updated_at = ctx.now.clone();
    answer(200, a)
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

    fn anchor() -> (State, String) {
        let mut s = State::default();
        let id = "11111111-2222-4333-8444-555555555555".to_string();
        s.trust_anchors.push(TrustAnchor {
            arn: ctx().arn("trust-anchor", &id),
            id: id.clone(),
            name: "a".into(),
            certificate_pem: String::new(),
            enabled: true,
            created_at: "2024-01-01T00:00:00Z".into(),
            updated_at: "2024-01-01T00:00:00Z".into(),
            tags: Vec::new(),
            notification_settings: Vec::new(),
        });
        (s, id)
    }

    fn put(s: &mut State, id: &str, settings: Value) -> Answer {
        let m = json!({"trustAnchorId": id, "notificationSettings": settings});
        put_notifications(s, &ctx(), m.as_object().expect("object"))
    }

    #[test]
    fn put_customises_one_event_and_reset_restores_the_default() {
        let (mut s, id) = anchor();
        let (_, v) = put(
            &mut s,
            &id,
            json!([{"enabled": false, "event": "END_ENTITY_CERTIFICATE_EXPIRY", "threshold": 7}]),
        )
        .expect("put");
        let n = &v["trustAnchor"]["notificationSettings"];
        assert_eq!(
            n[0],
            json!({"enabled": true, "event": "CA_CERTIFICATE_EXPIRY", "threshold": 45,
                   "channel": "ALL", "configuredBy": "rolesanywhere.amazonaws.com"})
        );
        assert_eq!(
            n[1],
            json!({"enabled": false, "event": "END_ENTITY_CERTIFICATE_EXPIRY", "threshold": 7,
                   "channel": "ALL", "configuredBy": "123456789012"})
        );
        assert_eq!(v["trustAnchor"]["updatedAt"], "2025-01-01T00:00:00Z");
        // A second put of the same event replaces it; no threshold means 45.
        let (_, v) = put(
            &mut s,
            &id,
            json!([{"enabled": true, "event": "END_ENTITY_CERTIFICATE_EXPIRY"}]),
        )
        .expect("put again");
        assert_eq!(v["trustAnchor"]["notificationSettings"][1]["threshold"], 45);
        assert_eq!(s.trust_anchors[0].notification_settings.len(), 1);
        let m = json!({"trustAnchorId": id,
                       "notificationSettingKeys": [{"event": "END_ENTITY_CERTIFICATE_EXPIRY"}]});
        let (_, v) =
            reset_notifications(&mut s, &ctx(), m.as_object().expect("object")).expect("reset");
        assert_eq!(
            v["trustAnchor"]["notificationSettings"][1]["configuredBy"],
            "rolesanywhere.amazonaws.com"
        );
        assert!(s.trust_anchors[0].notification_settings.is_empty());
    }

    #[test]
    fn put_refuses_what_the_model_does_not_allow() {
        let (mut s, id) = anchor();
        for (settings, needle) in [
            (
                json!([{"enabled": true, "event": "CA_CERTIFICATE_EXPIRY", "threshold": 0}]),
                "threshold",
            ),
            (
                json!([{"enabled": true, "event": "CA_CERTIFICATE_EXPIRY", "threshold": 361}]),
                "threshold",
            ),
            (
                json!([{"enabled": true, "event": "CA_CERTIFICATE_EXPIRY", "threshold": "9"}]),
                "threshold",
            ),
            (
                json!([{"enabled": true, "event": "CRL_EXPIRY"}]),
                "CRL_EXPIRY",
            ),
            (
                json!([{"event": "CA_CERTIFICATE_EXPIRY"}]),
                "enabled is required",
            ),
            (json!([{"enabled": true}]), "event is required"),
            (
                json!([{"enabled": true, "event": "CA_CERTIFICATE_EXPIRY", "channel": "EMAIL"}]),
                "EMAIL",
            ),
            (
                json!([{"enabled": true, "event": "CA_CERTIFICATE_EXPIRY"},
                    {"enabled": false, "event": "CA_CERTIFICATE_EXPIRY"}]),
                "twice",
            ),
            (json!("ALL"), "must be a list"),
            (
                json!(vec![
                    json!({"enabled": true, "event": "CA_CERTIFICATE_EXPIRY"});
                    51
                ]),
                "at most 50",
            ),
        ] {
            let e = put(&mut s, &id, settings.clone()).expect_err("refused");
            assert_eq!(e.kind, "ValidationException", "{settings}");
            assert!(e.message.contains(needle), "{settings}: {}", e.message);
        }
        // The edges of the threshold range pass.
        for t in [1, 360] {
            put(
                &mut s,
                &id,
                json!([{"enabled": true, "event": "CA_CERTIFICATE_EXPIRY", "threshold": t}]),
            )
            .expect("in range");
        }
        let m = json!({"notificationSettings": []});
        let e =
            put_notifications(&mut s, &ctx(), m.as_object().expect("object")).expect_err("no id");
        assert!(
            e.message.contains("trustAnchorId is required"),
            "{}",
            e.message
        );
        let e =
            put(&mut s, "00000000-0000-4000-8000-000000000000", json!([])).expect_err("unknown");
        assert_eq!(e.kind, "ResourceNotFoundException");
        let m = json!({"trustAnchorId": id});
        let e = reset_notifications(&mut s, &ctx(), m.as_object().expect("object"))
            .expect_err("no keys");
        assert!(
            e.message.contains("notificationSettingKeys is required"),
            "{}",
            e.message
        );
    }
}
