//! STS on the emulator's listener: `GetCallerIdentity` for the credentials CreateSession issued,
//! in STS's query protocol (`POST /` with a form body `Action=…&Version=2011-06-15`, SigV4 with
//! service `sts`, XML answers), so `aws sts get-caller-identity --endpoint-url …` works offline.
//!
//! The request's SigV4 (HMAC-SHA256) signature is verified here against the secret key of the
//! stored session ([`crate::sessions`]), with the emulator's own canonicalization
//! ([`crate::verifier::canonical_request`]), never the agent's. Errors answer as STS does:
//! `<ErrorResponse><Error><Type>Sender</Type><Code>…</Code><Message>…</Message></Error>
//! <RequestId>…</RequestId></ErrorResponse>` with 403 for `InvalidClientTokenId`, `ExpiredToken`
//! and `SignatureDoesNotMatch`, so botocore raises `ClientError` with those codes. Secrets never
//! reach the answer or the log line.

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use time::OffsetDateTime;

use crate::query::{self, error, escape, xml};
use crate::server::bounded_text;
use crate::sessions::{IssuedSession, SessionStore};
use crate::verifier::{self, HttpRequest};

/// The only signing algorithm STS's query API takes here.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The STS API version botocore sends.
pub const VERSION: &str = "2011-06-15";
const XML_NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// Allowed distance between X-Amz-Date and now, as STS allows.
const MAX_SKEW_SECONDS: i64 = 300;

/// `AROA` and 17 characters derived from the role ARN: the role's unique id, stable per role as
/// IAM's is, so `UserId` is the same for every session of a role.
pub fn role_id(role_arn: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest = ring::digest::digest(&ring::digest::SHA256, role_arn.as_bytes());
    let tail: String = digest.as_ref()[..17]
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) & 31]))
        .collect();
    format!("AROA{tail}")
}

/// An STS error: the HTTP status, the code botocore reports and the message.
pub type StsError = query::Error;

fn invalid_token() -> StsError {
    error(
        403,
        "InvalidClientTokenId",
        "The security token included in the request is invalid.",
    )
}

fn incomplete(message: impl Into<String>) -> StsError {
    error(400, "IncompleteSignature", message)
}

fn mismatch(message: impl Into<String>) -> StsError {
    error(403, "SignatureDoesNotMatch", message)
}

/// The parsed `AWS4-HMAC-SHA256` `Authorization` header.
struct HmacAuthorization {
    access_key_id: String,
    date: String,
    region: String,
    service: String,
    terminator: String,
    signed_headers: Vec<String>,
    signature: Vec<u8>,
}

fn parse_authorization(value: &str) -> Result<HmacAuthorization, StsError> {
    let (algorithm, rest) = value
        .trim()
        .split_once(' ')
        .ok_or_else(|| incomplete("Authorization header requires 'Credential' parameter."))?;
    if algorithm != ALGORITHM {
        return Err(incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}' (expected {ALGORITHM})"
        )));
    }
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else {
            return Err(incomplete(format!(
                "Authorization header component '{}' is not name=value",
                part.trim()
            )));
        };
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => {}
        }
    }
    let credential = credential
        .ok_or_else(|| incomplete("Authorization header requires 'Credential' parameter."))?;
    let signed = signed
        .ok_or_else(|| incomplete("Authorization header requires 'SignedHeaders' parameter."))?;
    let signature = signature
        .ok_or_else(|| incomplete("Authorization header requires 'Signature' parameter."))?;
    let fields: Vec<&str> = credential.split('/').collect();
    let [key, date, region, service, terminator] = fields.as_slice() else {
        return Err(incomplete(format!(
            "Credential should have 5 parts (key/date/region/service/aws4_request), not {}",
            fields.len()
        )));
    };
    let signature =
        hex::decode(signature).map_err(|_| incomplete("Signature is not hexadecimal."))?;
    Ok(HmacAuthorization {
        access_key_id: key.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        terminator: terminator.to_string(),
        signed_headers: signed.split(';').map(str::to_ascii_lowercase).collect(),
        signature,
    })
}

fn hmac(key: &[u8], data: &[u8]) -> ring::hmac::Tag {
    ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), data)
}

/// The SigV4 signing key: HMAC chain over date, region, service and `aws4_request`.
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> ring::hmac::Key {
    let k_secret = zeroize::Zeroizing::new(format!("AWS4{secret}"));
    let k_date = hmac(k_secret.as_bytes(), date.as_bytes());
    let k_region = hmac(k_date.as_ref(), region.as_bytes());
    let k_service = hmac(k_region.as_ref(), service.as_bytes());
    let k_signing = hmac(k_service.as_ref(), b"aws4_request");
    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, k_signing.as_ref())
}

/// Equality whose time does not depend on where the inputs differ.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn amz_format(t: OffsetDateTime) -> String {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_default()
}

/// A request to the STS query API, as it arrived.
pub struct StsRequest<'a> {
    /// The path (`/`).
    pub uri: &'a Uri,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The form body.
    pub body: &'a [u8],
}

/// Authenticates `req` against the stored sessions at `now`: the access key must be one the
/// emulator issued and still remembers, the session token must be the one issued with it, the
/// session must not have expired, and the SigV4 signature (scope `DATE/region/sts/aws4_request`,
/// X-Amz-Date within 5 minutes of now) must hold for its secret key.
pub fn authenticate(
    sessions: &SessionStore,
    region: &str,
    req: &StsRequest<'_>,
    now: OffsetDateTime,
) -> Result<IssuedSession, StsError> {
    let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
    let auth = parse_authorization(header("authorization").unwrap_or(""))?;
    let session = sessions
        .get(&auth.access_key_id)
        .ok_or_else(invalid_token)?;
    let token = header("x-amz-security-token").unwrap_or("");
    if !same_bytes(token.as_bytes(), session.session_token.as_bytes()) {
        return Err(invalid_token());
    }
    if now >= session.expiration {
        return Err(error(
            403,
            "ExpiredToken",
            "The security token included in the request is expired",
        ));
    }
    let amz_date = header("x-amz-date").ok_or_else(|| {
        incomplete(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        )
    })?;
    let signed_at = verifier::parse_amz_date(amz_date).ok_or_else(|| {
        incomplete(format!(
            "X-Amz-Date '{amz_date}' is not YYYYMMDD'T'HHMMSS'Z'"
        ))
    })?;
    let day = amz_date.get(..8).unwrap_or(amz_date);
    if auth.date != day {
        return Err(mismatch(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{day}', from '{amz_date}'.",
            auth.date
        )));
    }
    if auth.region != region {
        return Err(mismatch(format!(
            "Credential should be scoped to a valid region, not '{}'. (this endpoint serves '{region}')",
            auth.region
        )));
    }
    if auth.service != "sts" {
        return Err(mismatch(format!(
            "Credential should be scoped to correct service: 'sts'. not '{}'",
            auth.service
        )));
    }
    if auth.terminator != "aws4_request" {
        return Err(mismatch(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'.",
            auth.terminator
        )));
    }
    let skew = (now - signed_at).whole_seconds();
    if skew > MAX_SKEW_SECONDS {
        return Err(mismatch(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - 5 min.)",
            amz_format(now - time::Duration::seconds(MAX_SKEW_SECONDS)),
            amz_format(now)
        )));
    }
    if skew < -MAX_SKEW_SECONDS {
        return Err(mismatch(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 5 min.)",
            amz_format(now + time::Duration::seconds(MAX_SKEW_SECONDS)),
            amz_format(now)
        )));
    }
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(mismatch(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    let mut pairs: Vec<(String, String)> = Vec::with_capacity(req.headers.len() + 1);
    for (name, value) in req.headers {
        if let Ok(v) = value.to_str() {
            pairs.push((name.as_str().to_string(), v.to_string()));
        }
    }
    // HTTP/2 carries the host in :authority, which hyper moves into the URI.
    if !req.headers.contains_key("host")
        && let Some(authority) = req.uri.authority()
    {
        pairs.push(("host".to_string(), authority.to_string()));
    }
    let http = HttpRequest {
        method: "POST",
        path: req.uri.path(),
        query: req.uri.query().unwrap_or(""),
        headers: &pairs,
        body: req.body,
    };
    let signature_mismatch = || {
        mismatch(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        )
    };
    let canonical = verifier::canonical_request(&http, &auth.signed_headers)
        .map_err(|_| signature_mismatch())?;
    let scope = format!("{}/{}/sts/aws4_request", auth.date, auth.region);
    let string_to_sign = verifier::string_to_sign(ALGORITHM, amz_date, &scope, &canonical);
    let key = signing_key(&session.secret_access_key, &auth.date, &auth.region, "sts");
    ring::hmac::verify(&key, string_to_sign.as_bytes(), &auth.signature)
        .map_err(|_| signature_mismatch())?;
    Ok(session)
}

/// Answers one STS request: authenticates it, then runs its action. Logs one line (no secrets).
pub fn handle(
    sessions: &SessionStore,
    region: &str,
    req: &StsRequest<'_>,
    now: OffsetDateTime,
) -> Response {
    let request_id = query::new_request_id();
    let access_key_id = req
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| parse_authorization(a).ok())
        .map(|a| a.access_key_id);
    let result = query::form(req.body).and_then(|params| {
        let session = authenticate(sessions, region, req, now)?;
        let action = params
            .get("Action")
            .ok_or_else(|| error(400, "MissingAction", "Missing Action"))?;
        let version = params.get("Version").unwrap_or(VERSION);
        match (action, version) {
            ("GetCallerIdentity", VERSION) => Ok((action.to_string(), session)),
            _ => Err(error(
                400,
                "InvalidAction",
                format!("Could not find operation {action} for version {version} (the emulator answers GetCallerIdentity only)"),
            )),
        }
    });
    let (status, code, message, action) = match &result {
        Ok((action, s)) => (
            200,
            None,
            format!("caller {}", s.assumed_role_arn),
            Some(action.clone()),
        ),
        Err(e) => (e.status, Some(e.code), e.message.clone(), None),
    };
    query::log(&serde_json::json!({
        "ts": now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "event": "sts",
        "action": action,
        "status": status,
        "error_type": code,
        "message": bounded_text(&message),
        "access_key_id": access_key_id.as_deref().map(bounded_text),
        "request_id": request_id,
    }));
    match result {
        Ok((_, s)) => xml(
            StatusCode::OK,
            &request_id,
            caller_identity_xml(&s, &request_id),
        ),
        // Text a request chose (a region, a date) is echoed only through bounded_text.
        Err(e) => query::error_response(XML_NAMESPACE, &e, &request_id),
    }
}

/// `GetCallerIdentityResponse` as STS writes it.
pub fn caller_identity_xml(s: &IssuedSession, request_id: &str) -> String {
    format!(
        "<GetCallerIdentityResponse xmlns=\"{XML_NAMESPACE}\">\n  <GetCallerIdentityResult>\n    <Arn>{}</Arn>\n    <UserId>{}</UserId>\n    <Account>{}</Account>\n  </GetCallerIdentityResult>\n  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</GetCallerIdentityResponse>\n",
        escape(&s.assumed_role_arn),
        escape(&s.user_id),
        escape(&s.account),
        escape(request_id)
    )
}

/// STS's `ErrorResponse`.
pub fn error_xml(code: &str, message: &str, request_id: &str) -> String {
    query::error_xml(XML_NAMESPACE, code, message, request_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_ids_are_stable_per_role_and_shaped_like_iams() {
        let a = role_id("arn:aws:iam::123456789012:role/a");
        assert_eq!(a, role_id("arn:aws:iam::123456789012:role/a"));
        assert_ne!(a, role_id("arn:aws:iam::123456789012:role/b"));
        assert_eq!(a.len(), 21);
        assert!(
            a.starts_with("AROA")
                && a.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        );
    }

    /// The signing key derivation against the example in the AWS SigV4 documentation
    /// ("Derive a signing key"): secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20120215,
    /// us-east-1, iam.
    #[test]
    fn signing_key_matches_the_documented_example() {
        let k_secret = "AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        let k_date = hmac(k_secret.as_bytes(), b"20120215");
        let k_region = hmac(k_date.as_ref(), b"us-east-1");
        let k_service = hmac(k_region.as_ref(), b"iam");
        let k_signing = hmac(k_service.as_ref(), b"aws4_request");
        assert_eq!(
            hex::encode(k_signing.as_ref()),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
        // signing_key builds the same chain.
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20120215",
            "us-east-1",
            "iam",
        );
        let tag = ring::hmac::sign(&key, b"x");
        assert_eq!(tag.as_ref(), hmac(k_signing.as_ref(), b"x").as_ref());
    }

    #[test]
    fn xml_escapes_text() {
        let x = error_xml("SignatureDoesNotMatch", "a<b & 'c'", "r");
        assert!(
            x.contains("<Message>a&lt;b &amp; &apos;c&apos;</Message>"),
            "{x}"
        );
        assert!(x.contains("<Type>Sender</Type>") && x.contains("<RequestId>r</RequestId>"));
    }
}
