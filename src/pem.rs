//! The agent's one PEM reader: certificate bundles, key files and `TSS2 PRIVATE KEY` files are all
//! read through [`blocks`]. Writing PEM is `der::pem`'s job, not this module's.
//!
//! As lax as Go's `encoding/pem`, which the reference helper reads with (compat.md): any line width,
//! LF or CRLF, whitespace around and inside the base64, RFC 1421 headers (`Proc-Type: …`) before the
//! body, and any text between blocks. Strict where laxness would hide damage: a block ends only at the
//! END line of its own label, and its base64 must decode.
//!
//! One pass over the lines, and a body is decoded only when its caller asks ([`Block::decode`]), so
//! stepping over blocks costs the scan alone: time is linear in the input, whose size the callers bound
//! (`userfile`). Decoded DER lands in zeroizing buffers, because key files pass through here. Errors
//! name the block's label and line and never quote the body.

use base64::Engine as _;
use std::borrow::Cow;
use zeroize::Zeroizing;

/// A PEM block that cannot be read. The label comes from the file and is escaped for the terminal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input ended inside the block.
    #[error(
        "PEM block {} at line {line} is truncated (no END line)",
        crate::text::escape(label)
    )]
    Truncated {
        /// The BEGIN line's label.
        label: String,
        /// 1-based line of the BEGIN line.
        line: usize,
    },
    /// Another armour line (`-----BEGIN …`) came before the block's END line.
    #[error(
        "PEM block {} at line {line} has no END line (line {at} starts another armour line)",
        crate::text::escape(label)
    )]
    NoEnd {
        /// The BEGIN line's label.
        label: String,
        /// 1-based line of the BEGIN line.
        line: usize,
        /// 1-based line of the armour line found instead.
        at: usize,
    },
    /// The END line names another label.
    #[error(
        "PEM block {} at line {line} ends with another label's END line (line {at})",
        crate::text::escape(label)
    )]
    LabelsDiffer {
        /// The BEGIN line's label.
        label: String,
        /// 1-based line of the BEGIN line.
        line: usize,
        /// 1-based line of the END line.
        at: usize,
    },
    /// The body is not base64 (the offending character is not shown: it may sit among key bytes).
    #[error(
        "bad base64 in PEM block {} at line {line}",
        crate::text::escape(label)
    )]
    Base64 {
        /// The BEGIN line's label.
        label: String,
        /// 1-based line where decoding failed.
        line: usize,
    },
    /// The body is empty.
    #[error("PEM block {} at line {line} is empty", crate::text::escape(label))]
    Empty {
        /// The BEGIN line's label.
        label: String,
        /// 1-based line of the BEGIN line.
        line: usize,
    },
}

impl Error {
    /// The label of the block that failed, as the BEGIN line gave it.
    pub fn label(&self) -> &str {
        match self {
            Error::Truncated { label, .. }
            | Error::NoEnd { label, .. }
            | Error::LabelsDiffer { label, .. }
            | Error::Base64 { label, .. }
            | Error::Empty { label, .. } => label,
        }
    }

    /// The 1-based line the problem was found at.
    pub fn line(&self) -> usize {
        match self {
            Error::Truncated { line, .. }
            | Error::Base64 { line, .. }
            | Error::Empty { line, .. } => *line,
            Error::NoEnd { at, .. } | Error::LabelsDiffer { at, .. } => *at,
        }
    }
}

/// One block, borrowed from the input; nothing is decoded until [`Block::decode`].
#[derive(Debug)]
pub struct Block<'a> {
    label: Cow<'a, str>,
    line: usize,
    headers: &'a [u8],
    body: &'a [u8],
    body_line: usize,
}

impl<'a> Block<'a> {
    /// The label of the BEGIN line (`CERTIFICATE`, `PRIVATE KEY`, …).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The 1-based line of the BEGIN line.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The RFC 1421 header lines (`Proc-Type: 4,ENCRYPTED`, `DEK-Info: …`) before the body, trimmed.
    pub fn headers(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        self.headers
            .split(|&b| b == b'\n')
            .map(<[u8]>::trim_ascii)
            .filter(|l| !l.is_empty())
    }

    /// Decodes the body, whitespace anywhere ignored, into a zeroizing buffer.
    pub fn decode(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        // Both buffers are sized up front: a growing Vec would leave unzeroized copies behind.
        let mut b64 = Zeroizing::new(Vec::with_capacity(self.body.len()));
        b64.extend(self.body.iter().filter(|b| !b.is_ascii_whitespace()));
        if b64.is_empty() {
            return Err(Error::Empty {
                label: self.label.to_string(),
                line: self.line,
            });
        }
        let mut der = Zeroizing::new(vec![0; base64::decoded_len_estimate(b64.len())]);
        let len = base64::engine::general_purpose::STANDARD
            .decode_slice(&*b64, &mut der[..])
            .map_err(|e| Error::Base64 {
                label: self.label.to_string(),
                line: self.line_of_error(&e),
            })?;
        der.truncate(len);
        Ok(der)
    }

    /// The line of the character a decoding error points at (its offset counts non-whitespace
    /// characters), or the body's last line when the error is about the length or padding.
    fn line_of_error(&self, e: &base64::DecodeSliceError) -> usize {
        use base64::{DecodeError, DecodeSliceError};
        let offset = match e {
            DecodeSliceError::DecodeError(
                DecodeError::InvalidByte(offset, _) | DecodeError::InvalidLastSymbol(offset, _),
            ) => Some(*offset),
            _ => None,
        };
        let pos = offset
            .and_then(|n| {
                self.body
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| !b.is_ascii_whitespace())
                    .nth(n)
                    .map(|(i, _)| i)
            })
            .unwrap_or(self.body.trim_ascii_end().len());
        self.body_line + self.body[..pos].iter().filter(|&&b| b == b'\n').count()
    }
}

/// The blocks of `data` in order. After an error the scan goes on behind the damaged block's BEGIN
/// line (Go's `encoding/pem` does the same), so a caller may skip blocks it does not care about;
/// a truncated block ends the input.
pub fn blocks(data: &[u8]) -> Blocks<'_> {
    Blocks {
        data,
        pos: 0,
        line: 0,
    }
}

/// Iterator of [`blocks`].
pub struct Blocks<'a> {
    data: &'a [u8],
    /// Start of the next line; past the end when every line has been read.
    pos: usize,
    /// 1-based number of the last line read.
    line: usize,
}

impl<'a> Blocks<'a> {
    /// The next line, trimmed, with the offset where it starts.
    fn next_line(&mut self) -> Option<(usize, &'a [u8])> {
        let start = self.pos;
        let rest = self.data.get(start..)?;
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.data.len(), |i| start + i);
        self.pos = end + 1;
        self.line += 1;
        Some((start, rest[..end - start].trim_ascii()))
    }
}

/// `-----BEGIN LABEL-----` or `-----END LABEL-----` (already trimmed) → `LABEL`.
fn armour<'a>(line: &'a [u8], kind: &[u8]) -> Option<&'a [u8]> {
    line.strip_prefix(b"-----")?
        .strip_prefix(kind)?
        .strip_prefix(b" ")?
        .strip_suffix(b"-----")
}

impl<'a> Iterator for Blocks<'a> {
    type Item = Result<Block<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let (label, line) = loop {
            let (_, text) = self.next_line()?;
            if let Some(label) = armour(text, b"BEGIN") {
                break (label, self.line);
            }
        };
        let label_str = String::from_utf8_lossy(label);
        let headers_start = self.pos;
        // RFC 1421 headers (lines with a colon, blank lines among them) come before the body.
        let mut body_start = None;
        let mut body_line = line + 1;
        loop {
            let Some((start, text)) = self.next_line() else {
                return Some(Err(Error::Truncated {
                    label: label_str.into_owned(),
                    line,
                }));
            };
            if text.starts_with(b"-----") {
                if armour(text, b"END") == Some(label) {
                    let body_start = body_start.unwrap_or(start);
                    return Some(Ok(Block {
                        label: label_str,
                        line,
                        headers: &self.data[headers_start..body_start],
                        body: &self.data[body_start..start],
                        body_line,
                    }));
                }
                if armour(text, b"END").is_some() {
                    return Some(Err(Error::LabelsDiffer {
                        label: label_str.into_owned(),
                        line,
                        at: self.line,
                    }));
                }
                // Scanning resumes at this line: it may begin the next block.
                let at = self.line;
                self.pos = start;
                self.line -= 1;
                return Some(Err(Error::NoEnd {
                    label: label_str.into_owned(),
                    line,
                    at,
                }));
            }
            if body_start.is_none() && !text.contains(&b':') && !text.is_empty() {
                body_start = Some(start);
                body_line = self.line;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(data: &str) -> Vec<Result<(String, Vec<u8>), Error>> {
        blocks(data.as_bytes())
            .map(|b| b.and_then(|b| Ok((b.label().to_string(), b.decode()?.to_vec()))))
            .collect()
    }

    #[test]
    fn reads_any_line_width_crlf_whitespace_and_text_between_blocks() {
        let data = "subject=CN=x\r\n  -----BEGIN A-----\r\nAQ\r\nID \r\n\t-----END A-----  \r\n\
                    text\n-----BEGIN B-----\nBAUG\nBw==\n-----END B-----";
        assert_eq!(
            labels(data),
            vec![
                Ok(("A".into(), vec![1, 2, 3])),
                Ok(("B".into(), vec![4, 5, 6, 7]))
            ]
        );
    }

    #[test]
    fn headers_come_before_the_body() {
        let data = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\
                    \nAQI=\n-----END RSA PRIVATE KEY-----\n";
        let block = blocks(data.as_bytes()).next().unwrap().unwrap();
        let headers: Vec<&[u8]> = block.headers().collect();
        assert_eq!(
            headers,
            [&b"Proc-Type: 4,ENCRYPTED"[..], b"DEK-Info: AES-128-CBC,00"]
        );
        assert_eq!(*block.decode().unwrap(), [1, 2]);
        let plain = blocks(b"-----BEGIN X-----\nAQI=\n-----END X-----").next();
        assert_eq!(plain.unwrap().unwrap().headers().count(), 0);
    }

    #[test]
    fn errors_name_the_label_and_line_and_not_the_body() {
        let bad = "\n-----BEGIN PRIVATE KEY-----\nAAAA\nAA!A\n-----END PRIVATE KEY-----\n";
        let e = labels(bad).remove(0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad base64 in PEM block PRIVATE KEY at line 4"
        );
        assert_eq!((e.label(), e.line()), ("PRIVATE KEY", 4));
        // A wrong length is reported at the body's last line.
        let short = labels("-----BEGIN K-----\nAAAA\nAAA\n\n-----END K-----").remove(0);
        assert_eq!(short.unwrap_err().line(), 3);

        let truncated = labels("-----BEGIN K-----\nAAAA");
        assert_eq!(
            truncated[0].as_ref().unwrap_err().to_string(),
            "PEM block K at line 1 is truncated (no END line)"
        );
        let differ = labels("-----BEGIN K-----\nAAAA\n-----END L-----\n");
        assert!(matches!(
            differ[..],
            [Err(Error::LabelsDiffer { line: 1, at: 3, .. })]
        ));
        let empty = labels("-----BEGIN K-----\n\n-----END K-----\n");
        assert!(matches!(empty[..], [Err(Error::Empty { line: 1, .. })]));
        // Labels are escaped before they reach a terminal.
        let e = labels("-----BEGIN \x1b[31m-----\n-----END \x1b[31m-----").remove(0);
        assert!(!e.unwrap_err().to_string().contains('\x1b'));
    }

    /// Go's encoding/pem skips a damaged block and finds the next one; so does the scan.
    #[test]
    fn scan_goes_on_after_a_block_without_end_line() {
        let data = "-----BEGIN K-----\nAAAA\n-----BEGIN C-----\nAQ==\n-----END C-----\n";
        let got = labels(data);
        assert!(matches!(
            &got[..],
            [Err(Error::NoEnd { line: 1, at: 3, .. }), Ok((c, _))] if c == "C"
        ));
    }

    #[test]
    fn not_armour_lines_are_text() {
        for text in [
            "-----BEGINX-----",
            "----BEGIN X-----",
            "-----BEGIN X----",
            "x -----BEGIN X-----",
            "",
            "\n\n",
        ] {
            assert!(labels(text).is_empty(), "{text:?}");
        }
    }

    /// Many blocks and long lines cost one pass (issue 14's quadratic scans).
    #[test]
    fn scan_is_linear() {
        let data =
            "-----BEGIN X-----\nAAAA\n-----END X-----\n".repeat(100_000) + &"A".repeat(2_000_000);
        let start = std::time::Instant::now();
        assert_eq!(blocks(data.as_bytes()).count(), 100_000);
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }
}
