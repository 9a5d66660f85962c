//! Helpers shared by the fuzz targets: how an error is printed, and text normalisation for the
//! secret-leak properties.

use std::error::Error;

/// What a user could see of an error: its `Display` chain as the CLI prints it, then its `Debug`.
pub fn error_text(e: &(dyn Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out.push('\n');
    out.push_str(&format!("{e:?}"));
    out
}

/// `text` percent-decoded leniently (a `%XX` with two hex digits becomes its byte, anything else
/// stays) and lower-cased, so a secret is found however it was encoded or cased.
pub fn normalise(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .filter(|_| b[i] == b'%')
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).to_lowercase()
}

/// Number of (possibly overlapping) occurrences of `needle` in `hay`.
pub fn count(hay: &str, needle: &str) -> usize {
    hay.match_indices(needle).count()
}

/// The DER elements of a concatenation (each a whole TLV by its own length); what is left over when
/// a header does not parse becomes the last element, so every byte reaches the parser.
pub fn split_der(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let len = der_len(data)
            .filter(|&n| n <= data.len())
            .unwrap_or(data.len());
        out.push(&data[..len]);
        data = &data[len..];
    }
    out
}

/// Total length (header and content) of the DER element at the start of `d`.
fn der_len(d: &[u8]) -> Option<usize> {
    let first = *d.get(1)?;
    if first < 0x80 {
        return Some(2 + usize::from(first));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return None;
    }
    let len = d
        .get(2..2 + n)?
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    Some(2 + n + len)
}
