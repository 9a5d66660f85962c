//! PEM armour: encode one DER block, decode every block of a file.
//!
//! Owns only the text framing (RFC 7468); it must not interpret the DER inside.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Encodes `der` as a PEM block with `label`, 64-character lines, trailing newline.
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Every block in `text` as (label, DER), in order; text outside blocks is ignored.
pub(crate) fn decode_all(text: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            if current.is_some() {
                return Err(format!("BEGIN {label} inside another block"));
            }
            current = Some((label.to_string(), String::new()));
        } else if let Some(label) = line
            .strip_prefix("-----END ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            let Some((open, body)) = current.take() else {
                return Err(format!("END {label} without BEGIN"));
            };
            if open != label {
                return Err(format!("BEGIN {open} closed by END {label}"));
            }
            let der = STANDARD
                .decode(body.as_bytes())
                .map_err(|e| format!("bad base64 in {label} block: {e}"))?;
            out.push((label.to_string(), der));
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
        }
    }
    if let Some((label, _)) = current {
        return Err(format!("unterminated {label} block"));
    }
    Ok(out)
}

/// The DER of every block labelled `label`.
pub(crate) fn decode_label(text: &str, label: &str) -> Result<Vec<Vec<u8>>, String> {
    Ok(decode_all(text)?
        .into_iter()
        .filter(|(l, _)| l == label)
        .map(|(_, d)| d)
        .collect())
}
