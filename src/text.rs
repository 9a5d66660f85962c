//! Text from users, devices, certificates and servers, made safe to show on a terminal or in a log.
//!
//! Two rules, each implemented once here and used by every message that quotes outside text:
//!
//! - **Redaction** ([`redact`]): an argument that contains `pin-value` (in any letter case, and with
//!   any of its characters percent-encoded, once or repeatedly: `PIN-VALUE`, `pin%2Dvalue`,
//!   `p%69n-value`) is shown only up to where `pin-value` starts; the rest becomes
//!   [`REDACTED`]. Malformed URIs (`&` for `?`, an unencoded `&`, `;` or `#` inside the PIN, `??`)
//!   leave no reliable end to the PIN, so nothing after its start is ever echoed.
//! - **Escaping** ([`escape`]): control characters (C0, DEL, C1) and the formatting characters that
//!   reorder or break lines on a terminal (bidi marks, embeddings, overrides and isolates, the
//!   Unicode line and paragraph separators) are written as Rust escapes (`\u{1b}`, `\n`), so a
//!   certificate subject, token label or server message can neither colour the terminal nor start a
//!   line of its own (a forged `hint:`).
//!
//! [`arg`] and [`path`] apply both, in that order: the form in which a user's argument, file name or
//! URI appears in any message. Pure: no I/O.

use std::borrow::Cow;
use std::path::Path;

/// What replaces an argument from the start of its `pin-value` on.
pub const REDACTED: &str = "pin-value=<redacted>";

/// The attribute whose value is a PIN (RFC 7512), as compared after decoding and case folding.
const PIN_VALUE: &[u8] = b"pin-value";

/// Layers of percent-encoding looked through. The URI parser decodes values once and attribute
/// names not at all, so this is generous; the bound keeps a megabyte of `%2525…` linear.
const DECODE_ROUNDS: usize = 8;

/// Byte offset in `s` where the first `pin-value` starts, in any case and percent-encoding.
///
/// Percent-decoding is repeated (`%2570` is `%70` is `p`) until nothing changes, up to
/// [`DECODE_ROUNDS`] layers; each decoded byte remembers where its encoding started in `s`.
pub fn pin_value_at(s: &str) -> Option<usize> {
    // (decoded byte, offset in `s` of the text it came from)
    let mut text: Vec<(u8, usize)> = s.bytes().enumerate().map(|(i, b)| (b, i)).collect();
    for _ in 0..DECODE_ROUNDS {
        let decoded = percent_decode_once(&text);
        if decoded.len() == text.len() {
            break;
        }
        text = decoded;
    }
    text.windows(PIN_VALUE.len())
        .find(|w| {
            w.iter()
                .zip(PIN_VALUE)
                .all(|((b, _), p)| b.eq_ignore_ascii_case(p))
        })
        .map(|w| w[0].1)
}

fn percent_decode_once(text: &[(u8, usize)]) -> Vec<(u8, usize)> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let (b, at) = text[i];
        let digits = text
            .get(i + 1..i + 3)
            .and_then(|h| Some(hex(h[0].0)? * 16 + hex(h[1].0)?));
        match digits {
            Some(v) if b == b'%' => {
                // `v` < 256: two hex digits.
                out.push((v as u8, at));
                i += 3;
            }
            _ => {
                out.push((b, at));
                i += 1;
            }
        }
    }
    out
}

/// `s` cut where its first `pin-value` starts, with [`REDACTED`] in place of the rest; `s` itself
/// when it holds no `pin-value`.
pub fn redact(s: &str) -> Cow<'_, str> {
    match pin_value_at(s) {
        // The match starts at an ASCII byte (`p`, `P` or `%`): a character boundary.
        Some(at) => Cow::Owned(format!("{}{REDACTED}", &s[..at])),
        None => Cow::Borrowed(s),
    }
}

/// True for characters that must not reach a terminal as they are: C0 and C1 controls, DEL, the
/// bidirectional formatting characters (U+061C, U+200E/F, U+202A..E, U+2066..9) and the line and
/// paragraph separators U+2028/9.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// `s` with every character of [`needs_escape`] written as its Rust escape (`\u{1b}`, `\n`, `\t`).
/// Backslashes are left alone: the point is that nothing acts on the terminal, not reversibility.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A user's argument (a path, URI, handle or name) as every message shows it: redacted, then escaped.
pub fn arg(s: &str) -> String {
    escape(&redact(s)).into_owned()
}

/// A path as every message shows it: [`arg`] of its lossy UTF-8 form.
pub fn path(p: &Path) -> String {
    arg(&p.to_string_lossy())
}

/// `err` and its `source()` chain joined with `: `, a source whose text its parent already ends
/// with left out (some errors print their source in their own message as well as returning it).
/// Not escaped: callers that print it escape it.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    let mut cur = Some(err);
    while let Some(e) = cur {
        let part = e.to_string();
        if !out.ends_with(&part) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&part);
        }
        cur = e.source();
    }
    out
}

/// `t` in UTC as `YYYY-MM-DDTHH:MM:SSZ`, the one form every SDK parses (credential_process
/// `Expiration`, IMDS `LastUpdated`). Years beyond 9999 or before 0 are not RFC 3339; they are
/// written as they are, which no SDK accepts either way.
pub fn utc_seconds(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hostile spellings of issue 14 (3): each must be cut where `pin-value` starts.
    #[test]
    fn redact_cuts_every_spelling_of_pin_value_where_it_starts() {
        for (input, shown) in [
            ("pkcs11:token=a?pin-value=1234", "pkcs11:token=a?"),
            ("PKCS11:token=a?PIN-VALUE=1234", "PKCS11:token=a?"),
            (" pkcs11:token=a?Pin-Value=1234", " pkcs11:token=a?"),
            ("pkcs11:token=a&pin-value=1234", "pkcs11:token=a&"),
            ("pkcs11:token=a?pin%2Dvalue=1234", "pkcs11:token=a?"),
            ("pkcs11:token=a?pin%2dvalue=1234", "pkcs11:token=a?"),
            ("pkcs11:token=a?p%69n-value=1234", "pkcs11:token=a?"),
            (
                "pkcs11:token=a?%70%49%4E%2D%56%41%4C%55%45=1234",
                "pkcs11:token=a?",
            ),
            ("pkcs11:token=a?pin%252Dvalue=1234", "pkcs11:token=a?"),
            ("pkcs11:token=a??pin-value=1234", "pkcs11:token=a??"),
            ("pkcs11:token=a?pin-value=12&34;56#78", "pkcs11:token=a?"),
            ("pkcs11:token=a;pin-value=1234", "pkcs11:token=a;"),
            ("/keys/pin-value=1234.pem", "/keys/"),
            ("handle:pin-value=1", "handle:"),
        ] {
            assert_eq!(redact(input), format!("{shown}{REDACTED}"), "{input}");
            assert!(!redact(input).contains("1234"), "{input}");
        }
    }

    #[test]
    fn redact_leaves_text_without_pin_value_alone() {
        for s in [
            "/etc/key.pem",
            "pkcs11:token=a;object=b?pin-source=file:/run/pin",
            "pin-valu",
            "pin%2",
            "pin%zzvalue",
            "%",
            "",
            "Zoë\u{202e}",
        ] {
            assert!(matches!(redact(s), Cow::Borrowed(b) if b == s), "{s}");
        }
    }

    /// Multi-byte characters before or inside the match do not upset the offsets.
    #[test]
    fn redact_keeps_multibyte_prefixes_whole() {
        assert_eq!(redact("ëë%70in-value=x"), format!("ëë{REDACTED}"));
        assert_eq!(pin_value_at("ë%2570in-value"), Some(2));
    }

    #[test]
    fn escape_writes_controls_bidi_and_separators_as_escapes() {
        assert_eq!(escape("a\x1b[31mb"), "a\\u{1b}[31mb");
        assert_eq!(
            escape("x\nrolesanywhere-agent: hint: forged"),
            "x\\nrolesanywhere-agent: hint: forged"
        );
        assert_eq!(escape("\r\t\0\x7f"), "\\r\\t\\0\\u{7f}");
        assert_eq!(escape("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(escape("ab\u{202e}cd\u{2066}"), "ab\\u{202e}cd\\u{2066}");
        assert_eq!(escape("l\u{2028}p\u{2029}"), "l\\u{2028}p\\u{2029}");
        for plain in ["Zoë", "C:\\path", "token \"ra\"", "日本"] {
            assert!(matches!(escape(plain), Cow::Borrowed(_)), "{plain}");
        }
    }

    #[test]
    fn arg_and_path_redact_then_escape() {
        assert_eq!(
            arg("/k\x1b.pem?pin-value=\x1b1234"),
            format!("/k\\u{{1b}}.pem?{REDACTED}")
        );
        use std::os::unix::ffi::OsStrExt as _;
        let p = Path::new(std::ffi::OsStr::from_bytes(b"/k\xff\n/pin-value=9"));
        assert_eq!(path(p), format!("/k\u{fffd}\\n/{REDACTED}"));
    }
}
