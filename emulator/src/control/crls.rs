//! ImportCrl, ListCrls, Get/Update/Delete/Enable/DisableCrl.
//!
//! `crlData` is PEM or DER (base64 in the JSON, as botocore sends a blob); it must be a CRL signed
//! by a certificate of the trust anchor it names. An enabled CRL applies to that anchor at
//! CreateSession.

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::state::{Crl, State};
use super::{
    Answer, ApiError, Ctx, Query, bool_field, check_id, check_name, new_id, page, required,
    string_field, tags_field,
};

fn detail(c: &Crl) -> Value {
    json!({
        "crlId": c.id,
        "crlArn": c.arn,
        "name": c.name,
        "enabled": c.enabled,
        "crlData": base64::engine::general_purpose::STANDARD.encode(&c.der),
        "trustAnchorArn": c.trust_anchor_arn,
        "createdAt": c.created_at,
        "updatedAt": c.updated_at,
    })
}

fn answer(status: u16, c: &Crl) -> Answer {
    Ok((status, json!({ "crl": detail(c) })))
}

/// The DER of `crlData` (a base64 blob holding PEM or DER), checked against the anchor.
fn crl_der(m: &Map<String, Value>, s: &State, anchor_arn: &str) -> Result<Vec<u8>, ApiError> {
    let b64 = required(string_field(m, "crlData")?, "crlData")?;
    let data = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map_err(|_| ApiError::validation("crlData is not base64"))?;
    if data.is_empty() || data.len() > 300_000 {
        return Err(ApiError::validation("crlData must be 1 to 300000 bytes"));
    }
    let der = if data.starts_with(b"-----BEGIN") {
        let text = std::str::from_utf8(&data)
            .map_err(|_| ApiError::validation("crlData: PEM that is not text"))?;
        let mut blocks = crate::pem::decode_label(text, "X509 CRL")
            .map_err(|e| ApiError::validation(format!("crlData: {e}")))?;
        if blocks.len() != 1 {
            return Err(ApiError::validation(
                "crlData must hold exactly one X509 CRL block",
            ));
        }
        blocks.remove(0)
    } else {
        data
    };
    let anchor = s
        .trust_anchors
        .iter()
        .find(|a| a.arn == anchor_arn)
        .ok_or_else(|| ApiError::not_found("trust anchor", anchor_arn))?;
    let certificates = crate::pem::decode_label(&anchor.certificate_pem, "CERTIFICATE")
        .map_err(ApiError::internal)?;
    crate::config::check_crl_signer(&der, &certificates)
        .map_err(|e| ApiError::validation(format!("crlData: {e} {anchor_arn}")))?;
    Ok(der)
}

fn find<'s>(s: &'s mut State, id: &str) -> Result<&'s mut Crl, ApiError> {
    check_id(id)?;
    s.crls
        .iter_mut()
        .find(|c| c.id == id)
        .ok_or_else(|| ApiError::not_found("CRL", id))
}

pub(super) fn import(s: &mut State, ctx: &Ctx<'_>, m: &Map<String, Value>) -> Answer {
    let name = required(string_field(m, "name")?, "name")?;
    check_name(&name)?;
    let trust_anchor_arn = required(string_field(m, "trustAnchorArn")?, "trustAnchorArn")?;
    let der = crl_der(m, s, &trust_anchor_arn)?;
    let tags = tags_field(m)?;
    let id = new_id();
    let crl = Crl {
        arn: ctx.arn("crl", &id),
        id,
        name,
        enabled: bool_field(m, "enabled")?.unwrap_or(false),
        der,
        trust_anchor_arn,
        created_at: ctx.now.clone(),
        updated_at: ctx.now.clone(),
        tags,
    };
    let out = answer(201, &crl);
    s.crls.push(crl);
    out
}

pub(super) fn list(s: &State, q: &Query) -> Answer {
    page(s.crls.iter().map(detail).collect(), "crls", q)
}

pub(super) fn get(s: &State, id: &str) -> Answer {
    check_id(id)?;
    let c = s
        .crls
        .iter()
        .find(|c| c.id == *id)
        .ok_or_else(|| ApiError::not_found("CRL", id))?;
    answer(200, c)
}

pub(super) fn update(s: &mut State, ctx: &Ctx<'_>, id: &str, m: &Map<String, Value>) -> Answer {
    let name = string_field(m, "name")?;
    if let Some(n) = &name {
        check_name(n)?;
    }
    let anchor = find(s, id)?.trust_anchor_arn.clone();
    let der = if m.get("crlData").is_some_and(|v| !v.is_null()) {
        Some(crl_der(m, s, &anchor)?)
    } else {
        None
    };
    let c = find(s, id)?;
    if let Some(n) = name {
        c.name = n;
    }
    if let Some(d) = der {
        c.der = d;
    }
    c.updated_at = ctx.now.clone();
    answer(200, c)
}

pub(super) fn delete(s: &mut State, id: &str) -> Answer {
    find(s, id)?;
    let index = s.crls.iter().position(|c| c.id == id).unwrap_or_default();
    let c = s.crls.remove(index);
    answer(200, &c)
}

pub(super) fn set_enabled(s: &mut State, ctx: &Ctx<'_>, id: &str, enabled: bool) -> Answer {
    let c = find(s, id)?;
    c.enabled = enabled;
    c.updated_at = ctx.now.clone();
    answer(200, c)
}
