//! PEM armour: encode one DER block, decode every block of a file.
//!
//! Owns only the text framing; it must not interpret the DER inside. Each block is encoded and decoded
//! by `der`'s PEM (pem-rfc7468), the one PEM implementation of this crate (the TLS key of
//! `server.rs` is read by rustls' own loader); this module only finds the blocks of a bundle, which
//! RFC 7468 decoders read one at a time.

use ::der::pem::{self, LineEnding};

/// Encodes `der` as a PEM block with `label`, 64-character lines, trailing newline.
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    pem::encode_string(label, LineEnding::LF, der)
        .expect("the labels are constants of RFC 7468's grammar and in-memory data cannot overflow")
}

/// Every block in `text` as (label, DER), in order; text outside blocks is ignored.
pub(crate) fn decode_all(text: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    // The open block: its label and the byte offset of its BEGIN line.
    let mut current: Option<(&str, usize)> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let line = line.trim();
        if let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            if current.is_some() {
                return Err(format!("BEGIN {label} inside another block"));
            }
            current = Some((label, start));
        } else if let Some(label) = line
            .strip_prefix("-----END ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            let Some((open, begin)) = current.take() else {
                return Err(format!("END {label} without BEGIN"));
            };
            if open != label {
                return Err(format!("BEGIN {open} closed by END {label}"));
            }
            let mut der = Vec::new();
            pem::Decoder::new_detect_wrap(text[begin..offset].trim().as_bytes())
                .and_then(|mut d| d.decode_to_end(&mut der).map(|_| ()))
                .map_err(|e| format!("bad {label} block: {e}"))?;
            out.push((label.to_string(), der));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_round_trip_with_text_between_blocks() {
        let a = encode("CERTIFICATE", &[0x30, 0x00]);
        let b = encode("X509 CRL", &[7u8; 100]);
        let text = format!("subject=CN=x\n{a}\nsome comment\n{b}");
        let blocks = decode_all(&text).unwrap();
        assert_eq!(
            blocks,
            [
                ("CERTIFICATE".to_string(), vec![0x30, 0x00]),
                ("X509 CRL".to_string(), vec![7u8; 100])
            ]
        );
        assert_eq!(decode_label(&text, "X509 CRL").unwrap(), [vec![7u8; 100]]);
    }

    #[test]
    fn broken_framing_and_base64_are_refused() {
        let a = encode("CERTIFICATE", &[0x30, 0x00]);
        assert!(decode_all(&a.replace("MAA=", "M!A=")).is_err());
        assert!(decode_all(&a.replace("-----END CERTIFICATE-----\n", "")).is_err());
        assert!(decode_all(&a.replace("END CERTIFICATE", "END X509 CRL")).is_err());
    }
}
