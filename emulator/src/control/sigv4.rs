//! SigV4 (`AWS4-HMAC-SHA256`) verification of control-plane requests, written from the SigV4
//! specification: canonical request, string to sign, derived signing key, constant-time compare.
//!
//! Pure: takes the request parts, the admin credentials, the region and "now". It never logs and
//! never puts the secret or the expected signature into an error.

use ring::{digest, hmac};
use time::OffsetDateTime;

use crate::config::AdminCredentials;

/// The service name control-plane requests are signed for.
pub const SERVICE: &str = "rolesanywhere";
/// How far `X-Amz-Date` may be from the server's clock (as the service allows).
pub const MAX_SKEW_SECONDS: i64 = 15 * 60;

/// Why a request is not authenticated; each maps to the error type AWS answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No `Authorization` header.
    #[error("Missing Authentication Token")]
    Missing,
    /// The `Authorization` header or a signed part does not parse.
    #[error("{0}")]
    Malformed(String),
    /// The access key is not the admin's (or no admin credentials are configured).
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
    /// The scope, the date or the signature is wrong.
    #[error("{0}")]
    BadSignature(String),
}

impl Error {
    /// The `x-amzn-ErrorType` AWS answers with (status 403 for all, 400 for malformed).
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::Missing => "MissingAuthenticationTokenException",
            Error::Malformed(_) => "IncompleteSignatureException",
            Error::UnknownKey => "UnrecognizedClientException",
            Error::BadSignature(_) => "InvalidSignatureException",
        }
    }

    /// The `Code` a query-protocol service (IAM, STS) answers with in its `ErrorResponse`.
    pub fn query_code(&self) -> &'static str {
        match self {
            Error::Missing => "MissingAuthenticationToken",
            Error::Malformed(_) => "IncompleteSignature",
            Error::UnknownKey => "InvalidClientTokenId",
            Error::BadSignature(_) => "SignatureDoesNotMatch",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Error::Malformed(_) => 400,
            _ => 403,
        }
    }
}

/// One request as received (headers with lowercase names): the verifier's HTTP request.
pub use crate::verifier::HttpRequest as Request;

struct Authorization<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Result<Authorization<'_>, Error> {
    let malformed = |what: &str| Error::Malformed(format!("Authorization header: {what}"));
    let rest = value
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(|| malformed("the algorithm must be AWS4-HMAC-SHA256"))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let credential = credential.ok_or_else(|| malformed("Credential= is missing"))?;
    let signed = signed.ok_or_else(|| malformed("SignedHeaders= is missing"))?;
    let signature = signature.ok_or_else(|| malformed("Signature= is missing"))?;
    let fields: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = fields[..] else {
        return Err(malformed(
            "Credential= must be KEY/DATE/REGION/SERVICE/aws4_request",
        ));
    };
    if terminator != "aws4_request" {
        return Err(malformed("the credential scope must end in aws4_request"));
    }
    Ok(Authorization {
        access_key_id,
        date,
        region,
        service,
        signed_headers: signed.split(';').collect(),
        signature,
    })
}

/// Percent-encodes everything but the unreserved characters (and `/` when `keep_slash`).
fn uri_encode(bytes: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex_at = |j: usize| b.get(j).and_then(|c| char::from(*c).to_digit(16));
        if b[i] == b'%'
            && let (Some(hi), Some(lo)) = (hex_at(i + 1), hex_at(i + 2))
        {
            // Both digits are below 16, so the byte fits.
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// The canonical query string: each name and value decoded, encoded again the one canonical way,
/// sorted by name then value.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k), false),
                uri_encode(&percent_decode(v), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Header values trimmed, inner runs of spaces collapsed, repeated headers joined with commas.
fn canonical_header_value(headers: &[(String, String)], name: &str) -> Option<String> {
    let values: Vec<String> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, b))
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
}

/// The canonical request for `req` signed over `signed_headers` with `payload_hash`.
fn canonical_request(
    req: &Request<'_>,
    signed_headers: &[&str],
    payload_hash: &str,
) -> Result<String, Error> {
    let mut headers = String::new();
    for name in signed_headers {
        let value = canonical_header_value(req.headers, name).ok_or_else(|| {
            Error::BadSignature(format!("signed header {name} is not in the request"))
        })?;
        headers.push_str(name);
        headers.push(':');
        headers.push_str(&value);
        headers.push('\n');
    }
    // Services other than S3 encode the (already encoded) path once more.
    let path = if req.path.is_empty() { "/" } else { req.path };
    Ok(format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        uri_encode(path.as_bytes(), true),
        canonical_query(req.query),
        headers,
        signed_headers.join(";"),
        payload_hash
    ))
}

/// The hex signature of `req` for a secret, date, region and service.
pub fn signature(
    req: &Request<'_>,
    secret: &str,
    amz_date: &str,
    region: &str,
    service: &str,
    signed_headers: &[&str],
) -> Result<String, Error> {
    let payload_hash = match canonical_header_value(req.headers, "x-amz-content-sha256") {
        Some(h) => h,
        None => sha256_hex(req.body),
    };
    let creq = canonical_request(req, signed_headers, &payload_hash)?;
    let date = amz_date.get(..8).unwrap_or("");
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha256_hex(creq.as_bytes())
    );
    let mut k_secret = zeroize::Zeroizing::new(format!("AWS4{secret}"));
    let k_date = hmac_sha256(k_secret.as_bytes(), date.as_bytes());
    zeroize::Zeroize::zeroize(&mut *k_secret);
    let k_region = hmac_sha256(k_date.as_ref(), region.as_bytes());
    let k_service = hmac_sha256(k_region.as_ref(), service.as_bytes());
    let k_signing = hmac_sha256(k_service.as_ref(), b"aws4_request");
    Ok(hex::encode(hmac_sha256(
        k_signing.as_ref(),
        to_sign.as_bytes(),
    )))
}

/// Compares in time independent of where the strings first differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Verifies a control-plane request against the admin credentials.
pub fn verify(
    req: &Request<'_>,
    admin: Option<&AdminCredentials>,
    region: &str,
    now: OffsetDateTime,
) -> Result<(), Error> {
    verify_for(req, admin, &[region], SERVICE, now)
}

/// Verifies a request signed with the admin credentials for `service` and one of `regions`.
pub fn verify_for(
    req: &Request<'_>,
    admin: Option<&AdminCredentials>,
    regions: &[&str],
    service: &str,
    now: OffsetDateTime,
) -> Result<(), Error> {
    let Some(value) = canonical_header_value(req.headers, "authorization") else {
        return Err(Error::Missing);
    };
    let auth = parse_authorization(&value)?;
    let Some(admin) = admin.filter(|a| a.access_key_id == auth.access_key_id) else {
        return Err(Error::UnknownKey);
    };
    let amz_date = canonical_header_value(req.headers, "x-amz-date")
        .ok_or_else(|| Error::Malformed("X-Amz-Date header is missing".into()))?;
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let when = time::PrimitiveDateTime::parse(&amz_date, &format)
        .map_err(|_| Error::Malformed("X-Amz-Date is not YYYYMMDDTHHMMSSZ".into()))?
        .assume_utc();
    if (now - when).whole_seconds().abs() > MAX_SKEW_SECONDS {
        return Err(Error::BadSignature(format!(
            "Signature expired: {amz_date} is more than 15 minutes from the server's time"
        )));
    }
    if auth.date != &amz_date[..8] {
        return Err(Error::BadSignature(format!(
            "Credential should be scoped to a valid date: {} is not the date of X-Amz-Date",
            auth.date
        )));
    }
    if !regions.contains(&auth.region) {
        return Err(Error::BadSignature(format!(
            "Credential should be scoped to a valid region, not '{}' (this endpoint serves '{}')",
            crate::server::bounded_text(auth.region),
            regions.join("' or '")
        )));
    }
    if auth.service != service {
        return Err(Error::BadSignature(format!(
            "Credential should be scoped to correct service: '{service}'"
        )));
    }
    for required in ["host", "x-amz-date"] {
        if !auth.signed_headers.contains(&required) {
            return Err(Error::BadSignature(format!(
                "the signed headers must include {required}"
            )));
        }
    }
    let expected = signature(
        req,
        &admin.secret_access_key,
        &amz_date,
        auth.region,
        service,
        &auth.signed_headers,
    )?;
    if !same(expected.as_bytes(), auth.signature.as_bytes()) {
        return Err(Error::BadSignature(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."
                .into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    /// The worked example of AWS's SigV4 documentation (IAM ListUsers, 2015-08-30).
    #[test]
    fn aws_documentation_example_signature() {
        let headers = h(&[
            (
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("host", "iam.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
        ]);
        let req = Request {
            method: "GET",
            path: "/",
            query: "Action=ListUsers&Version=2010-05-08",
            headers: &headers,
            body: b"",
        };
        let sig = signature(
            &req,
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20150830T123600Z",
            "us-east-1",
            "iam",
            &["content-type", "host", "x-amz-date"],
        )
        .unwrap();
        assert_eq!(
            sig,
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    #[test]
    fn query_is_decoded_sorted_and_encoded_canonically() {
        assert_eq!(canonical_query("b=2&a=x%2fy&a=%41&c"), "a=A&a=x%2Fy&b=2&c=");
        assert_eq!(
            canonical_query("resourceArn=arn:aws"),
            "resourceArn=arn%3Aaws"
        );
    }

    fn signed(secret: &str, amz_date: &str, path: &str) -> (Vec<(String, String)>, String) {
        let mut headers = h(&[("host", "127.0.0.1:1"), ("x-amz-date", amz_date)]);
        let req = Request {
            method: "GET",
            path,
            query: "pageSize=2",
            headers: &headers,
            body: b"",
        };
        let sig = signature(
            &req,
            secret,
            amz_date,
            "us-east-1",
            SERVICE,
            &["host", "x-amz-date"],
        )
        .unwrap();
        headers.push((
            "authorization".into(),
            format!(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{}/us-east-1/rolesanywhere/aws4_request, SignedHeaders=host;x-amz-date, Signature={sig}",
                &amz_date[..8]
            ),
        ));
        (headers, sig)
    }

    #[test]
    fn verify_accepts_the_right_secret_and_refuses_others() {
        let admin = AdminCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: zeroize::Zeroizing::new("s3cret".into()),
        };
        let now = time::macros::datetime!(2026-01-02 03:04:05 UTC);
        let check = |headers: &[(String, String)], path: &str| {
            verify(
                &Request {
                    method: "GET",
                    path,
                    query: "pageSize=2",
                    headers,
                    body: b"",
                },
                Some(&admin),
                "us-east-1",
                now,
            )
        };
        let (good, _) = signed("s3cret", "20260102T030000Z", "/trustanchors");
        assert_eq!(check(&good, "/trustanchors"), Ok(()));
        // Another path, another secret, a stale date, no header, no admin.
        assert!(matches!(
            check(&good, "/profiles"),
            Err(Error::BadSignature(_))
        ));
        let (wrong, _) = signed("other", "20260102T030000Z", "/trustanchors");
        let err = check(&wrong, "/trustanchors").unwrap_err();
        assert_eq!(err.error_type(), "InvalidSignatureException");
        assert!(!err.to_string().contains("s3cret"));
        let (stale, _) = signed("s3cret", "20260102T020000Z", "/trustanchors");
        assert!(
            check(&stale, "/trustanchors")
                .unwrap_err()
                .to_string()
                .contains("expired")
        );
        assert_eq!(check(&good[..2], "/trustanchors"), Err(Error::Missing));
        let req = Request {
            method: "GET",
            path: "/trustanchors",
            query: "pageSize=2",
            headers: &good,
            body: b"",
        };
        assert_eq!(verify(&req, None, "us-east-1", now), Err(Error::UnknownKey));
        // Signed for rolesanywhere: refused by a check for another service, whatever the region.
        let err =
            verify_for(&req, Some(&admin), &["eu-west-1", "us-east-1"], "iam", now).unwrap_err();
        assert!(err.to_string().contains("'iam'"), "{err}");
        assert_eq!(err.query_code(), "SignatureDoesNotMatch");
        assert_eq!(
            verify_for(
                &req,
                Some(&admin),
                &["eu-west-1", "us-east-1"],
                SERVICE,
                now
            ),
            Ok(())
        );
        assert_eq!(
            verify(&req, Some(&admin), "eu-west-1", now)
                .unwrap_err()
                .error_type(),
            "InvalidSignatureException"
        );
    }
}
