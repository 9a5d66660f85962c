//! CreateSession answers as the client reads them.
//!
//! The first byte picks the case. Success bodies (status 200/201): the rest is the body, with every
//! `$S` replaced by a secret access key and every `$T` by a session token (distinctive markers).
//! Refusals: two bytes of status, a length byte and that many bytes of `X-Amzn-ErrorType`, the rest
//! is the body.
//!
//! Properties: no panic; a success body's error text, and the `Debug` of the credentials it yields,
//! never contain the secret key or token (checked when the markers only sit in `secretAccessKey` /
//! `sessionToken` values: elsewhere quoting them would be right); a refusal's message (Display and
//! hint) holds no control character and at most a bounded amount of service text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rolesanywhere_agent::fuzzing;
use rolesanywhere_fuzz::error_text;

const SECRET: &str = "SeCrEtKeY7Vq";
const TOKEN: &str = "SeSsIoNtOk4Wz";

/// True when the markers occur only in values of `secretAccessKey` or `sessionToken` fields.
fn markers_only_in_secret_fields(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    let has = |s: &str| s.contains(SECRET) || s.contains(TOKEN);
    match v {
        Value::String(s) => !has(s),
        Value::Array(a) => a.iter().all(markers_only_in_secret_fields),
        Value::Object(o) => o.iter().all(|(k, v)| {
            !has(k)
                && match (k.as_str(), v) {
                    ("secretAccessKey" | "sessionToken", Value::String(_)) => true,
                    _ => markers_only_in_secret_fields(v),
                }
        }),
        _ => true,
    }
}

fn success(rest: &[u8]) {
    let body = String::from_utf8_lossy(rest)
        .replace("$S", SECRET)
        .replace("$T", TOKEN);
    // Where the body is JSON, the markers must sit in secret fields only; where it is not, the
    // client must not quote it at all.
    let check = match serde_json::from_str::<serde_json::Value>(&body) {
        Ok(v) => markers_only_in_secret_fields(&v),
        Err(_) => true,
    };
    let shown = match fuzzing::create_session_success(body.as_bytes()) {
        Ok(c) => {
            let _ = time::OffsetDateTime::parse(
                &c.expiration,
                &time::format_description::well_known::Rfc3339,
            )
            .expect("credentials are only returned with an RFC 3339 expiration");
            format!("{c:?}")
        }
        Err(e) => error_text(&e),
    };
    if check {
        assert!(
            !shown.contains(SECRET) && !shown.contains(TOKEN),
            "a secret reached the output: {shown}\n  body: {body:?}"
        );
    }
}

fn refusal(rest: &[u8]) {
    let [s1, s2, n, rest @ ..] = rest else {
        return;
    };
    let status = u16::from_be_bytes([*s1, *s2]);
    let (header, body) = rest.split_at(usize::from(*n).min(rest.len()));
    let header = (*n != 0).then_some(header);
    let e = fuzzing::create_session_refusal(status, header, body);
    let mut shown = e.to_string();
    if let Some(h) = e.hint() {
        shown.push_str(&h);
    }
    let url_len = "https://rolesanywhere.eu-west-1.amazonaws.com/sessions".len();
    assert!(
        !shown.chars().any(char::is_control),
        "a control character reached the message: {shown:?}"
    );
    // The error type and message are each cut to 300 characters (plus an ellipsis).
    assert!(
        shown.chars().count() <= url_len + 2 * 301 + 400,
        "unbounded service text: {} characters",
        shown.chars().count()
    );
    error_text(&e);
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((&b, rest)) if b % 2 == 0 => success(rest),
        Some((_, rest)) => refusal(rest),
        None => {}
    }
});
