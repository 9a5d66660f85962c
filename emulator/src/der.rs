//! Minimal DER framing: split a TLV, list the children of a constructed value, write a TLV.
//!
//! Owns only tag/length framing (definite lengths, single-byte tags); it must not interpret contents.
//! Parsing of certificates and CRLs belongs to x509-parser.

/// One DER element: its tag byte, the whole encoding and the content octets.
#[derive(Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub(crate) tag: u8,
    pub(crate) whole: &'a [u8],
    pub(crate) content: &'a [u8],
}

/// Reads one element from the front of `input`; returns it and what follows.
pub(crate) fn read_tlv(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, after_tag) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        // High tag numbers never occur in the structures we frame.
        return None;
    }
    let (&first, after_len0) = after_tag.split_first()?;
    let (len, after_len) = if first < 0x80 {
        (usize::from(first), after_len0)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || after_len0.len() < count {
            return None;
        }
        let mut len = 0usize;
        for &b in &after_len0[..count] {
            len = (len << 8) | usize::from(b);
        }
        (len, &after_len0[count..])
    };
    if after_len.len() < len {
        return None;
    }
    let header = input.len() - after_len.len();
    let whole = &input[..header + len];
    Some((
        Tlv {
            tag,
            whole,
            content: &after_len[..len],
        },
        &after_len[len..],
    ))
}

/// Splits the content of a constructed element into its children.
pub(crate) fn children(mut content: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (tlv, rest) = read_tlv(content)?;
        out.push(tlv);
        content = rest;
    }
    Some(out)
}

/// Encodes one element with a definite length.
pub(crate) fn write_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// A signed X.509 object (certificate, CRL, CSR): `SEQUENCE { tbs, algorithm, BIT STRING }`.
pub(crate) struct SignedParts<'a> {
    pub(crate) tbs: &'a [u8],
    pub(crate) algorithm: &'a [u8],
    pub(crate) signature: &'a [u8],
}

/// Splits a signed object; the signature is returned without the BIT STRING's unused-bits octet.
pub(crate) fn signed_parts(der: &[u8]) -> Option<SignedParts<'_>> {
    let (outer, rest) = read_tlv(der)?;
    if outer.tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let parts = children(outer.content)?;
    let [tbs, algorithm, sig] = parts.as_slice() else {
        return None;
    };
    let (&unused, signature) = sig.content.split_first()?;
    if sig.tag != 0x03 || unused != 0 {
        return None;
    }
    Some(SignedParts {
        tbs: tbs.whole,
        algorithm: algorithm.whole,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lengths_round_trip() {
        let content = vec![7u8; 300];
        let enc = write_tlv(0x30, &content);
        assert_eq!(&enc[..4], &[0x30, 0x82, 0x01, 0x2c]);
        let (tlv, rest) = read_tlv(&enc).expect("valid encoding");
        assert!(rest.is_empty());
        assert_eq!(tlv.content, &content[..]);
    }

    #[test]
    fn truncated_input_is_refused() {
        assert!(read_tlv(&[0x30, 0x05, 1, 2]).is_none());
        assert!(read_tlv(&[0x30, 0x84, 1]).is_none());
    }
}
