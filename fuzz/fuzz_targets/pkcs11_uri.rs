//! `pkcs11:` URIs and the redaction of arguments that may hold one, with the property that the PIN
//! never shows.
//!
//! Input: one flags byte, then a template and (after a NUL) filler. The argument is the template
//! with `NAME=PIN` put at its first `\x01` (or at its end), where NAME is `pin-value` written in one
//! of several cases and encodings (flags bits 0-2) and PIN is `TOKEN FILLER TOKEN`, written raw or
//! percent-encoded (bits 3-4). The filler may hold `&`, `;`, `#`, `%`, `?`: a PIN typed without
//! encoding them. TOKEN appears nowhere else (inputs where it would are skipped).
//!
//! Properties (TOKEN searched case-insensitively and after percent-decoding):
//! - `redact_uri` of the argument never contains TOKEN;
//! - a parse error (Display chain and Debug) never contains TOKEN;
//! - a parsed URI's Display, Debug and token part never contain TOKEN, unless the URI's own
//!   `pin-value` is a different, shorter PIN (an unencoded `&` in the PIN is, by RFC 7512, the start
//!   of the next attribute, and nothing can tell it from one);
//! - when the parsed `pin-value` is the whole PIN, the enrollment profile's `redact_uri` hides it too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rolesanywhere_agent::{enroll, fuzzing, signer::pkcs11};
use rolesanywhere_fuzz::{count, error_text, normalise};

const TOKEN: &str = "Zq9Kw3";

const NAMES: [&str; 8] = [
    "pin-value",
    "PIN-VALUE",
    "Pin-Value",
    "pin%2Dvalue",
    "pin%2dvalue",
    "%70in-value",
    "pin-valu%65",
    "%70%69%6E%2D%76%61%6C%75%65",
];

fn encode(pin: &str, keep: impl Fn(u8) -> bool, lower: bool) -> String {
    let mut out = String::new();
    for &b in pin.as_bytes() {
        if keep(b) {
            out.push(char::from(b));
        } else if lower {
            out.push_str(&format!("%{b:02x}"));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn assert_hidden(what: &str, text: &str, input: &str) {
    assert!(
        !normalise(text).contains(&TOKEN.to_lowercase()),
        "the PIN shows in {what}\n  argument: {input:?}\n  output: {text}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let (template, filler) = text.split_once('\0').unwrap_or((&text, ""));
    let name = NAMES[usize::from(flags & 7)];
    let pin = format!("{TOKEN}{filler}{TOKEN}");
    let written = match (flags >> 3) & 3 {
        0 => pin.clone(),
        1 => encode(&pin, |_| false, false),
        2 => encode(&pin, |_| false, true),
        _ => encode(&pin, |b| b.is_ascii_alphanumeric(), false),
    };
    let attr = format!("{name}={written}");
    let input = match template.split_once('\x01') {
        Some((a, b)) => format!("{a}{attr}{b}"),
        None => format!("{template}{attr}"),
    };
    // TOKEN must come only from the PIN, or a correct message quoting other text would look like a
    // leak.
    if count(&normalise(&input), &TOKEN.to_lowercase()) != 2 {
        return;
    }

    assert_hidden("redact_uri", &pkcs11::redact_uri(&input), &input);
    match fuzzing::pkcs11_uri(&input) {
        Err(e) => assert_hidden("the parse error", &error_text(&e), &input),
        Ok(uri) => {
            let whole_pin = uri.pin_value.as_ref().map(|p| p.expose() == pin);
            if whole_pin != Some(false) {
                assert_hidden("Display", &uri.display, &input);
                assert_hidden("Debug", &uri.debug, &input);
                assert_hidden("the token part", &uri.token_display, &input);
            }
            if whole_pin == Some(true) {
                assert_hidden(
                    "the enrollment profile",
                    &enroll::profile::redact_uri(&input),
                    &input,
                );
            }
        }
    }
});
