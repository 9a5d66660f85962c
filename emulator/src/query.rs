//! The AWS query protocol shared by the APIs on `POST /` (STS in [`crate::sts`], IAM in
//! [`crate::control::iam`]): which service a request is for, its form body, and the XML answers
//! and `ErrorResponse` botocore's query parser reads.
//!
//! Pure but for [`new_request_id`] (randomness) and [`log`] (stderr). Text a client chose reaches
//! an error answer only through [`crate::server::bounded_text`] and [`escape`].

use std::io::Write as _;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::server::{bounded_text, uuid_text};
use crate::verifier;

/// A query-protocol error: the HTTP status, the `Code` botocore reports and the `Message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// HTTP status.
    pub status: u16,
    /// `InvalidClientTokenId`, `NoSuchEntity`, `ValidationError`, ….
    pub code: &'static str,
    /// The message, as the service words it where known.
    pub message: String,
}

/// An [`Error`].
pub fn error(status: u16, code: &'static str, message: impl Into<String>) -> Error {
    Error {
        status,
        code,
        message: message.into(),
    }
}

/// The service a query-protocol request (`POST /`) is signed for: the fourth field of the
/// `Credential=` scope in its `Authorization` header (`sts`, `iam`, …), when there is one.
pub fn scope_service(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let (_, rest) = auth.trim().split_once(' ')?;
    let credential = rest
        .split(',')
        .find_map(|p| p.trim().strip_prefix("Credential="))?;
    credential.split('/').nth(3).map(str::to_string)
}

/// The decoded parameters of a form body, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The members of a list parameter `NAME.member.N.FIELD` (botocore's query serialization of
    /// a list of structures), in order of N: one map of FIELD to value per member.
    pub fn members(&self, name: &str) -> Result<Vec<Vec<(String, String)>>, Error> {
        let prefix = format!("{name}.member.");
        let mut members: Vec<(u32, Vec<(String, String)>)> = Vec::new();
        for (k, v) in &self.0 {
            let Some(rest) = k.strip_prefix(&prefix) else {
                continue;
            };
            let (n, field) = rest.split_once('.').unwrap_or((rest, ""));
            let n = match n.parse::<u32>() {
                Ok(n) if n >= 1 && !field.is_empty() => n,
                _ => {
                    return Err(error(
                        400,
                        "MalformedQueryString",
                        format!(
                            "parameter {} is not {name}.member.N.FIELD with N from 1",
                            bounded_text(k)
                        ),
                    ));
                }
            };
            match members.iter_mut().find(|(m, _)| *m == n) {
                Some((_, fields)) => fields.push((field.to_string(), v.clone())),
                None => members.push((n, vec![(field.to_string(), v.clone())])),
            }
        }
        members.sort_by_key(|(n, _)| *n);
        Ok(members.into_iter().map(|(_, fields)| fields).collect())
    }
}

/// The decoded form body (`+` is a space, as in HTML forms).
pub fn form(body: &[u8]) -> Result<Params, Error> {
    let text = std::str::from_utf8(body).map_err(|_| {
        error(
            400,
            "MalformedQueryString",
            "The request body is not UTF-8.",
        )
    })?;
    verifier::parse_query(&text.replace('+', "%20"))
        .map(Params)
        .map_err(|e| {
            error(
                400,
                "MalformedQueryString",
                format!("The request body is not a form: {e}"),
            )
        })
}

/// A fresh request id (UUID-shaped), for `x-amzn-RequestId` and `RequestId`.
pub fn new_request_id() -> String {
    let mut b = [0u8; 16];
    crate::ca::fill_random(&mut b);
    uuid_text(&b)
}

/// An XML answer with `x-amzn-RequestId`.
pub fn xml(status: StatusCode, request_id: &str, body: String) -> Response {
    let mut resp = (status, [("content-type", "text/xml")], body).into_response();
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}

/// XML character data: `&`, `<`, `>`, quotes escaped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The query protocol's `ErrorResponse` in the service's namespace.
pub fn error_xml(namespace: &str, code: &str, message: &str, request_id: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"{namespace}\">\n  <Error>\n    <Type>Sender</Type>\n    <Code>{}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n</ErrorResponse>\n",
        escape(code),
        escape(message),
        escape(request_id)
    )
}

/// `e` as the answer: its status and its `ErrorResponse`, the message bounded (text a request
/// chose, such as a region or a role name, is echoed only through [`bounded_text`]).
pub fn error_response(namespace: &str, e: &Error, request_id: &str) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    xml(
        status,
        request_id,
        error_xml(namespace, e.code, &bounded_text(&e.message), request_id),
    )
}

/// One JSON line on stderr.
pub fn log(v: &serde_json::Value) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{v}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_service_reads_the_credential_scope() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=ASIAX/20260301/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=00",
            ),
        );
        assert_eq!(scope_service(&h).as_deref(), Some("sts"));
        h.insert(
            "authorization",
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKIAX/20260301/us-east-1/iam/aws4_request",
            ),
        );
        assert_eq!(scope_service(&h).as_deref(), Some("iam"));
        h.insert("authorization", HeaderValue::from_static("Bearer x"));
        assert_eq!(scope_service(&h), None);
    }

    #[test]
    fn form_decodes_plus_and_percent_escapes() {
        let p = form(b"Action=CreateRole&AssumeRolePolicyDocument=%7B%22a%22%3A+1%7D&Empty=")
            .expect("form");
        assert_eq!(p.get("Action"), Some("CreateRole"));
        assert_eq!(p.get("AssumeRolePolicyDocument"), Some("{\"a\": 1}"));
        assert_eq!(p.get("Empty"), Some(""));
        assert_eq!(p.get("Missing"), None);
        assert_eq!(form(b"a=%zz").unwrap_err().code, "MalformedQueryString");
        assert_eq!(form(b"a=\xff").unwrap_err().code, "MalformedQueryString");
    }

    #[test]
    fn members_are_grouped_and_ordered_by_index() {
        let p = form(
            b"Tags.member.2.Key=b&Tags.member.1.Value=1&Tags.member.1.Key=a&Tags.member.2.Value=2&Other=x",
        )
        .expect("form");
        let tags = p.members("Tags").expect("members");
        assert_eq!(
            tags,
            vec![
                vec![("Value".into(), "1".into()), ("Key".into(), "a".into())],
                vec![("Key".into(), "b".into()), ("Value".into(), "2".into())],
            ]
        );
        assert!(p.members("None").expect("members").is_empty());
        for bad in [
            "Tags.member.0.Key=a",
            "Tags.member.x.Key=a",
            "Tags.member.1=a",
        ] {
            let p = form(bad.as_bytes()).expect("form");
            assert_eq!(
                p.members("Tags").unwrap_err().code,
                "MalformedQueryString",
                "{bad}"
            );
        }
    }

    #[test]
    fn xml_escapes_text() {
        let x = error_xml("urn:x", "SignatureDoesNotMatch", "a<b & 'c'", "r");
        assert!(
            x.contains("<Message>a&lt;b &amp; &apos;c&apos;</Message>"),
            "{x}"
        );
        assert!(x.contains("<Type>Sender</Type>") && x.contains("<RequestId>r</RequestId>"));
        assert!(x.starts_with("<ErrorResponse xmlns=\"urn:x\">"), "{x}");
    }
}
