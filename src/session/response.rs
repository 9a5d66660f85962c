//! CreateSession answers: the credential set of a 201, the error of anything else, and hints.
//!
//! Parsing never panics and never copies a secret into an error: a malformed body is reported by what
//! is missing, not by what is there. Service messages are untrusted text; control characters are
//! dropped and the length bounded before they reach a terminal. The expiration is normalised to the
//! one form every SDK parses.

use super::Error;
use crate::certs::LeafProblem;
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
    /// Expiry as credential_process consumers expect it: UTC, whole seconds,
    /// `YYYY-MM-DDTHH:MM:SSZ` (whatever offset and precision the service used).
    pub expiration: String,
    /// The same instant.
    pub expires_at: time::OffsetDateTime,
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
    let Ok(expires_at) =
        time::OffsetDateTime::parse(&expiration, &time::format_description::well_known::Rfc3339)
    else {
        return Err(malformed(&format!(
            "credentials.expiration {} is not an RFC 3339 time",
            quoted(&expiration)
        )));
    };
    // SDKs parse `…Z` and some nothing else (an offset like `+02:00`, fractions of a second): pass
    // the instant on in that form. Dropping the fraction makes it earlier, never later.
    let expires_at = expires_at
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(expires_at);
    Ok(Credentials {
        access_key_id,
        secret_access_key,
        session_token,
        expiration: utc_text(expires_at),
        expires_at,
    })
}

pub(super) use crate::text::utc_seconds as utc_text;

/// Builds the error for a non-success answer from `X-Amzn-ErrorType` and the JSON body.
pub(crate) fn service_error(
    url: String,
    status: u16,
    headers: &super::http::Headers,
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
    let header_type = headers.get_str("x-amzn-errortype").map(str::to_string);
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

/// Service text without control or bidirectional formatting characters (each becomes a space), at
/// most 300 characters.
fn clean(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if is_unsafe(c) { ' ' } else { c })
        .take(300)
        .collect();
    if s.chars().count() > 300 {
        out.push('…');
    }
    out.trim().to_string()
}

/// Characters that must not reach a terminal raw: controls (C0, DEL, C1: escape sequences, new
/// lines that could forge a line of our own), and the characters that reorder or break the text
/// around them (bidirectional formatting, line and paragraph separators).
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{61c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// Server text with every unsafe character (see [`is_unsafe`]) written as `\u{…}`, and backslashes
/// doubled so that an escape cannot be forged.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_unsafe(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    out
}

/// Server text for a message: escaped, at most 300 characters, in double quotes.
pub(super) fn quoted(s: &str) -> String {
    let mut short: String = s.chars().take(300).collect();
    if s.chars().count() > 300 {
        short.push('…');
    }
    format!("\"{}\"", escape(&short).replace('"', "\\\""))
}

/// The known fix for a service refusal to `url` (the request URL without query).
pub(super) fn hint(url: &str, status: u16, error_type: &str, message: &str) -> Option<String> {
    // Not found: the service says ResourceNotFoundException for an ARN it does not know. A 404
    // without it comes from something else at that URL (another server, or the service under a
    // wrong path): the endpoint is wrong, and the message, if any, is not the service's.
    if error_type == "ResourceNotFoundException" {
        return Some("check --profile-arn, --role-arn, --trust-anchor-arn and --region".into());
    }
    if status == 404 {
        return Some(if url.ends_with("/sessions/sessions") {
            format!(
                "nothing answers CreateSession at {url}: drop /sessions from --endpoint, which is \
                 the base URL (the agent appends /sessions)"
            )
        } else {
            format!(
                "nothing answers CreateSession at {url} (HTTP 404 without \
                 ResourceNotFoundException): check --endpoint, which is the base URL without \
                 /sessions, e.g. https://rolesanywhere.us-east-1.amazonaws.com"
            )
        });
    }
    message_hint(status, error_type, message).map(str::to_string)
}

fn message_hint(status: u16, error_type: &str, message: &str) -> Option<&'static str> {
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
    if m.contains("disabled") {
        return Some("enable the trust anchor and the profile");
    }
    if status >= 500 {
        return Some("the service failed; try again later");
    }
    None
}

/// The hint for a refused leaf that breaks the service's rules: what is wrong, what the service
/// needs, and how to get it.
pub(super) fn leaf_hint(subject: &str, problems: &[LeafProblem]) -> String {
    let what: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let mut needs: Vec<&str> = Vec::new();
    for p in problems {
        if !needs.contains(&p.requirement()) {
            needs.push(p.requirement());
        }
    }
    let fix = if problems.iter().all(LeafProblem::is_validity) {
        "renew it, and check the system clock"
    } else {
        "have the CA issue a new certificate for the key"
    };
    format!(
        "the leaf certificate {subject} {}; Roles Anywhere needs {}: {fix}",
        and_list(&what),
        and_list(&needs)
    )
}

/// `a`, `a and b`, `a, b and c`.
fn and_list<S: AsRef<str>>(items: &[S]) -> String {
    match items {
        [] => String::new(),
        [one] => one.as_ref().to_string(),
        [init @ .., last] => format!(
            "{} and {}",
            init.iter()
                .map(AsRef::as_ref)
                .collect::<Vec<_>>()
                .join(", "),
            last.as_ref()
        ),
    }
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
        let mut h = super::super::http::Headers::default();
        h.push(
            "X-Amzn-ErrorType",
            b"AccessDeniedException:http://internal.amazon.com/coral/",
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
        const URL: &str = "https://h/sessions";
        assert!(
            hint(
                URL,
                403,
                "AccessDeniedException",
                "Not authorized to set roleSessionName"
            )
            .unwrap()
            .contains("acceptRoleSessionName")
        );
        assert!(
            hint(URL, 403, "AccessDeniedException", "Invalid signature")
                .unwrap()
                .contains("clock")
        );
        assert!(hint(URL, 400, "ValidationException", "bad input").is_none());
    }

    /// Issue 8 (5): a 404 is about the ARNs only when the service says ResourceNotFoundException.
    #[test]
    fn not_found_without_resource_not_found_is_about_the_endpoint() {
        // An HTML page whose words would otherwise pick the clock hint.
        let page = "<html><title>404 Not Found</title><p>Date: today, bad signature</p></html>";
        let h = hint("https://gw.example/x/sessions", 404, "", page).unwrap();
        assert!(
            h.contains("https://gw.example/x/sessions") && h.contains("--endpoint"),
            "{h}"
        );
        assert!(!h.contains("--profile-arn") && !h.contains("clock"), "{h}");
        let h = hint(
            "https://h/sessions/sessions",
            404,
            "UnknownOperationException",
            "",
        )
        .unwrap();
        assert!(h.contains("drop /sessions from --endpoint"), "{h}");
        let h = hint(
            "https://h/sessions",
            404,
            "ResourceNotFoundException",
            "Profile not found",
        )
        .unwrap();
        assert!(
            h.contains("--profile-arn") && !h.contains("--endpoint"),
            "{h}"
        );
    }

    #[test]
    fn leaf_hint_names_the_leaf_its_problems_and_what_is_needed() {
        let h = leaf_hint(
            "CN=a\\1B[31m",
            &[LeafProblem::Ca, LeafProblem::NoDigitalSignature],
        );
        assert_eq!(
            h,
            "the leaf certificate CN=a\\1B[31m is a CA certificate (basicConstraints CA:TRUE) and \
             has a keyUsage without digitalSignature; Roles Anywhere needs an end-entity \
             certificate (basicConstraints CA:FALSE) and keyUsage digitalSignature: have the CA \
             issue a new certificate for the key"
        );
        let t = time::macros::datetime!(2020-01-01 0:00 UTC);
        let h = leaf_hint("CN=b", &[LeafProblem::Expired(t)]);
        assert!(
            h.ends_with(
                "expired on 2020-01-01T00:00:00Z; Roles Anywhere needs a certificate \
                 inside its validity period: renew it, and check the system clock"
            ),
            "{h}"
        );
    }
}
