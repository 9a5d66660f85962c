//! CreateSession answers: the credential set of a 201, the error of anything else, and hints.
//!
//! Parsing never panics and never copies a secret into an error: a malformed body is reported by what
//! is missing, not by what is there. Service messages are untrusted text; control characters are
//! dropped and the length bounded before they reach a terminal.

use super::Error;
use crate::secret::Secret;
use serde::Deserialize;

/// Temporary credentials from CreateSession. `Debug` redacts the secret parts.
#[derive(Debug)]
pub struct Credentials {
    /// `AccessKeyId`.
    pub access_key_id: String,
    /// `SecretAccessKey` (zeroized on drop).
    pub secret_access_key: Secret,
    /// `SessionToken` (zeroized on drop).
    pub session_token: Secret,
    /// Expiry, RFC 3339 UTC as the service sent it.
    pub expiration: String,
}

/// A string read from the body straight into a zeroizing secret.
struct SecretField(Secret);

impl<'de> Deserialize<'de> for SecretField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| SecretField(Secret::new(s)))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    credential_set: Option<Vec<CredentialSetItem>>,
}

#[derive(Deserialize)]
struct CredentialSetItem {
    credentials: Option<RawCredentials>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCredentials {
    access_key_id: Option<String>,
    secret_access_key: Option<SecretField>,
    session_token: Option<SecretField>,
    expiration: Option<String>,
}

/// Parses a success body into credentials.
pub(crate) fn parse_credentials(raw: &[u8]) -> Result<Credentials, Error> {
    let malformed = |reason: &str| Error::MalformedResponse {
        reason: reason.to_string(),
    };
    // serde_json's messages can quote values (a secret among them): keep only the position.
    let body: Body = serde_json::from_slice(raw).map_err(|e| {
        malformed(&format!(
            "the body is not the expected JSON (line {} column {})",
            e.line(),
            e.column()
        ))
    })?;
    let item = body
        .credential_set
        .ok_or_else(|| malformed("credentialSet is missing"))?
        .into_iter()
        .next()
        .ok_or_else(|| malformed("credentialSet is empty"))?;
    let c = item
        .credentials
        .ok_or_else(|| malformed("credentialSet[0].credentials is missing"))?;
    let missing = |field: &str| malformed(&format!("credentials.{field} is missing or empty"));
    let access_key_id = c
        .access_key_id
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("accessKeyId"))?;
    let secret_access_key = c
        .secret_access_key
        .map(|s| s.0)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("secretAccessKey"))?;
    let session_token = c
        .session_token
        .map(|s| s.0)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("sessionToken"))?;
    let expiration = c
        .expiration
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("expiration"))?;
    if time::OffsetDateTime::parse(&expiration, &time::format_description::well_known::Rfc3339)
        .is_err()
    {
        return Err(malformed(&format!(
            "credentials.expiration {:?} is not an RFC 3339 time",
            clean(&expiration)
        )));
    }
    Ok(Credentials {
        access_key_id,
        secret_access_key,
        session_token,
        expiration,
    })
}

/// Builds the error for a non-success answer from `X-Amzn-ErrorType` and the JSON body.
pub(crate) fn service_error(
    url: String,
    status: u16,
    headers: &reqwest::header::HeaderMap,
    raw: &[u8],
    attempts: u32,
) -> Error {
    #[derive(Deserialize)]
    struct ErrBody {
        #[serde(alias = "Message")]
        message: Option<String>,
        #[serde(rename = "__type")]
        kind: Option<String>,
    }
    let parsed: Option<ErrBody> = serde_json::from_slice(raw).ok();
    let header_type = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let error_type = header_type
        .or_else(|| parsed.as_ref().and_then(|b| b.kind.clone()))
        .unwrap_or_default();
    // `AccessDeniedException:http://internal.amazon.com/…` and `ns#Type` carry noise around the name.
    let error_type = error_type
        .split(':')
        .next()
        .unwrap_or_default()
        .rsplit('#')
        .next()
        .unwrap_or_default();
    let message = match parsed.and_then(|b| b.message) {
        Some(m) => m,
        // A non-JSON body (a proxy's HTML page, say) is still worth a short look.
        None if !raw.is_empty() && !raw.starts_with(b"{") => {
            String::from_utf8_lossy(&raw[..raw.len().min(200)]).into_owned()
        }
        None => String::new(),
    };
    Error::Service {
        url,
        status,
        error_type: clean(error_type),
        message: clean(&message),
        attempts,
    }
}

/// Service text without control characters, at most 300 characters.
fn clean(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    if s.chars().count() > 300 {
        out.push('…');
    }
    out.trim().to_string()
}

/// The known fix for a service refusal.
pub(super) fn hint(status: u16, error_type: &str, message: &str) -> Option<&'static str> {
    let m = message.to_ascii_lowercase();
    if m.contains("rolesessionname") {
        return Some("enable acceptRoleSessionName on the profile, or drop --role-session-name");
    }
    if m.contains("revoked") {
        return Some("the certificate is revoked (on a CRL of the trust anchor): issue a new one");
    }
    // The specific certificate problems first: the service words them as "Untrusted signing
    // certificate: …" too.
    if m.contains("expired") || m.contains("not yet valid") || m.contains("not valid before") {
        return Some(
            "the certificate is outside its validity period: renew it, and check the system clock",
        );
    }
    if m.contains("untrusted signing certificate") || m.contains("untrusted certificate") {
        return Some(
            "the service could not chain the certificate to the trust anchor: pass the issuing CAs \
             with --intermediates (or a full-chain --certificate) and check that the trust anchor \
             holds the root CA",
        );
    }
    if m.contains("signature") || m.contains("date") || m.contains("skew") || m.contains("clock") {
        return Some(
            "check the system clock (the service allows about 5 minutes of skew) and that the key \
             matches the certificate",
        );
    }
    if status == 429 || error_type == "ThrottlingException" {
        return Some("the service is throttling requests: call less often or retry later");
    }
    if error_type == "ResourceNotFoundException" || status == 404 {
        return Some("check --profile-arn, --role-arn, --trust-anchor-arn and --region");
    }
    if m.contains("disabled") {
        return Some("enable the trust anchor and the profile");
    }
    if status >= 500 {
        return Some("the service failed; try again later");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"{"credentialSet":[{"assumedRoleUser":{"arn":"a","assumedRoleId":"b"},
        "credentials":{"accessKeyId":"ASIAX","secretAccessKey":"s3cr3t","sessionToken":"t0k3n",
        "expiration":"2026-03-01T13:00:00Z"},"packedPolicySize":0,"roleArn":"r","sourceIdentity":"CN=x"}],
        "subjectArn":"s"}"#;

    #[test]
    fn success_body_yields_credentials_with_redacted_debug() {
        let c = parse_credentials(OK.as_bytes()).unwrap();
        assert_eq!(c.access_key_id, "ASIAX");
        assert_eq!(c.secret_access_key.expose(), "s3cr3t");
        assert_eq!(c.session_token.expose(), "t0k3n");
        assert_eq!(c.expiration, "2026-03-01T13:00:00Z");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cr3t") && !dbg.contains("t0k3n"), "{dbg}");
    }

    #[test]
    fn malformed_bodies_are_errors_that_never_echo_secrets() {
        for (body, what) in [
            ("{}", "credentialSet is missing"),
            (r#"{"credentialSet":[]}"#, "credentialSet is empty"),
            (r#"{"credentialSet":[{}]}"#, "credentials is missing"),
            (
                r#"{"credentialSet":[{"credentials":{"accessKeyId":"A","secretAccessKey":"s3cr3t","expiration":"2026-03-01T13:00:00Z"}}]}"#,
                "sessionToken",
            ),
            (
                r#"{"credentialSet":[{"credentials":{"accessKeyId":"A","secretAccessKey":"s3cr3t","sessionToken":"t","expiration":"soon"}}]}"#,
                "RFC 3339",
            ),
            ("not json s3cr3t", "not the expected JSON"),
            (r#"{"credentialSet":"s3cr3t"}"#, "not the expected JSON"),
        ] {
            let m = parse_credentials(body.as_bytes()).unwrap_err().to_string();
            assert!(m.contains(what), "{body}: {m}");
            assert!(!m.contains("s3cr3t"), "{m}");
        }
    }

    #[test]
    fn service_error_takes_type_from_header_and_message_from_body() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            "x-amzn-errortype",
            "AccessDeniedException:http://internal.amazon.com/coral/"
                .parse()
                .unwrap(),
        );
        let e = service_error(
            "https://h/sessions".into(),
            403,
            &h,
            br#"{"message":"Untrusted signing certificate\u001b[31m"}"#,
            1,
        );
        assert_eq!(
            e.to_string(),
            "CreateSession refused by https://h/sessions: HTTP 403 AccessDeniedException: \
             Untrusted signing certificate [31m"
        );
        assert!(e.hint().unwrap().contains("--intermediates"));
    }

    #[test]
    fn hints_cover_session_name_and_clock() {
        assert!(
            hint(
                403,
                "AccessDeniedException",
                "Not authorized to set roleSessionName"
            )
            .unwrap()
            .contains("acceptRoleSessionName")
        );
        assert!(
            hint(403, "AccessDeniedException", "Invalid signature")
                .unwrap()
                .contains("clock")
        );
        assert!(hint(400, "ValidationException", "bad input").is_none());
    }
}
