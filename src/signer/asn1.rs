//! Walking DER structures one element at a time, with errors that name the field: key-file
//! structures (PKCS#8 envelopes, PKCS#12) and TPM key files.
//!
//! The framing is the `der` crate's: it reads each header (strict DER: definite, minimal lengths that
//! fit the bytes really there), so a truncated or hostile file gives an error and nothing is copied.
//! This module only adds the field names for messages and the one-octet tags the callers match on.
//! BER indefinite lengths and multi-byte tags are refused: the tools we support (openssl, keytool,
//! Windows, tpm2-tss) write DER. The structures stay walked by hand, not derived, because the
//! callers accept what real writers deviate in (a TPM key's BOOLEAN `01`, unknown optional fields)
//! and say which field is wrong.

use der::asn1::ObjectIdentifier;
use der::{AnyRef, Decode as _, ErrorKind, Reader as _, SliceReader, Tag, Tagged as _};

/// Universal tags we look at.
pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const OID: u8 = 0x06;
pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const SET: u8 = 0x31;
/// `[0]` constructed (EXPLICIT), as in `content [0] EXPLICIT ANY`.
pub(crate) const CONTEXT_0: u8 = 0xa0;
/// `[0]` primitive (IMPLICIT OCTET STRING), as in `encryptedContent [0] IMPLICIT`.
pub(crate) const CONTEXT_0_PRIMITIVE: u8 = 0x80;

/// Why the bytes are not the DER we expected (no secrets: only positions and tag names).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Asn1Error(pub(crate) String);

/// One tag-length-value triple.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    /// The identifier octet.
    pub tag: u8,
    /// The contents.
    pub value: &'a [u8],
    /// The whole encoding, header included.
    pub raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// A reader over the contents of this (constructed) value.
    pub fn reader(&self) -> Reader<'a> {
        Reader::new(self.value)
    }

    /// Fails unless the tag is `tag`.
    pub fn expect(self, tag: u8, what: &str) -> Result<Tlv<'a>, Asn1Error> {
        if self.tag == tag {
            Ok(self)
        } else {
            Err(Asn1Error(format!(
                "{what}: expected {} but found {}",
                tag_name(tag),
                tag_name(self.tag)
            )))
        }
    }

    /// True if this is the object identifier `oid`.
    pub fn is_oid(&self, oid: &ObjectIdentifier) -> bool {
        self.tag == OID && self.value == oid.as_bytes()
    }

    /// The object identifier in dotted form, for messages (`?` if it does not parse).
    pub fn oid_string(&self) -> String {
        ObjectIdentifier::from_bytes(self.value).map_or_else(|_| "?".into(), |o| o.to_string())
    }

    /// A non-negative INTEGER that fits in a `u64`.
    pub fn as_u64(&self, what: &str) -> Result<u64, Asn1Error> {
        if self.tag != INTEGER {
            return Err(Asn1Error(format!("{what}: expected an INTEGER")));
        }
        let v = self.value;
        if v.is_empty() || v[0] & 0x80 != 0 {
            return Err(Asn1Error(format!("{what}: negative or empty INTEGER")));
        }
        let first = v.iter().position(|&b| b != 0).unwrap_or(v.len());
        let digits = &v[first..];
        if digits.len() > 8 {
            return Err(Asn1Error(format!("{what}: INTEGER too large")));
        }
        Ok(digits
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }
}

/// Reads consecutive TLVs from a byte slice.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { rest: bytes }
    }

    /// True when everything has been read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The tag of the next TLV, without consuming it.
    pub fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// The next TLV; `what` names it in errors.
    pub fn next(&mut self, what: &str) -> Result<Tlv<'a>, Asn1Error> {
        let b = self.rest;
        let fail = |e: der::Error| Asn1Error(format!("{what}: {}", framing_error(e.kind())));
        let mut r = SliceReader::new(b).map_err(fail)?;
        let any = AnyRef::decode(&mut r).map_err(fail)?;
        let tag = tag_octet(any.tag())
            .ok_or_else(|| Asn1Error(format!("{what}: multi-byte tags are not supported")))?;
        let end = usize::try_from(r.position()).map_err(fail)?;
        let (raw, rest) = b
            .split_at_checked(end)
            .ok_or_else(|| Asn1Error(format!("{what}: truncated")))?;
        self.rest = rest;
        Ok(Tlv {
            tag,
            value: any.value(),
            raw,
        })
    }

    /// The next TLV, which must have tag `tag`.
    pub fn expect(&mut self, tag: u8, what: &str) -> Result<Tlv<'a>, Asn1Error> {
        self.next(what)?.expect(tag, what)
    }

    /// Fails if anything is left.
    pub fn finish(&self, what: &str) -> Result<(), Asn1Error> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Asn1Error(format!("{what}: unexpected trailing data")))
        }
    }
}

/// Reads exactly one TLV from `bytes` with tag `tag`, and nothing after it.
pub(crate) fn single<'a>(bytes: &'a [u8], tag: u8, what: &str) -> Result<Tlv<'a>, Asn1Error> {
    let mut r = Reader::new(bytes);
    let t = r.expect(tag, what)?;
    r.finish(what)?;
    Ok(t)
}

/// The identifier octet of a tag whose number fits in one octet (0..=30).
fn tag_octet(tag: Tag) -> Option<u8> {
    let number = u8::try_from(tag.number().value())
        .ok()
        .filter(|n| *n < 0x1f)?;
    let constructed = if tag.is_constructed() { 0x20 } else { 0 };
    Some(tag.class() as u8 | constructed | number)
}

/// What is wrong with an element's header, in the words the messages used before `der` read them.
fn framing_error(kind: ErrorKind) -> String {
    match kind {
        ErrorKind::Incomplete { .. } => "truncated".into(),
        ErrorKind::IndefiniteLength => {
            "indefinite length (BER) is not supported; re-export the file as DER".into()
        }
        ErrorKind::Overflow | ErrorKind::Overlength => "length field too large".into(),
        ErrorKind::TagNumberInvalid => "multi-byte tags are not supported".into(),
        other => other.to_string(),
    }
}

fn tag_name(tag: u8) -> String {
    match tag {
        0x01 => "BOOLEAN".into(),
        INTEGER => "INTEGER".into(),
        0x03 => "BIT STRING".into(),
        OCTET_STRING => "OCTET STRING".into(),
        0x05 => "NULL".into(),
        OID => "OBJECT IDENTIFIER".into(),
        SEQUENCE => "SEQUENCE".into(),
        SET => "SET".into(),
        t if t & 0xc0 == 0x80 => format!("[{}]", t & 0x1f),
        t => format!("tag 0x{t:02x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths() {
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend([7u8; 0x80]);
        long.extend([0x02, 0x01, 0x05]);
        let mut r = Reader::new(&long);
        let a = r.expect(OCTET_STRING, "a").unwrap();
        assert_eq!(a.value.len(), 0x80);
        assert_eq!(a.raw.len(), 0x83);
        assert_eq!(r.next("b").unwrap().as_u64("b").unwrap(), 5);
        assert!(r.is_empty());
    }

    #[test]
    fn refuses_truncation_indefinite_length_and_wrong_tags() {
        assert!(Reader::new(&[0x30, 0x05, 0x02]).next("x").is_err());
        assert!(Reader::new(&[0x30]).next("x").is_err());
        assert!(
            Reader::new(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff])
                .next("x")
                .is_err()
        );
        let e = Reader::new(&[0x30, 0x80, 0x00, 0x00])
            .next("pfx")
            .unwrap_err();
        assert!(e.0.contains("indefinite"), "{e}");
        let e = Reader::new(&[0x02, 0x01, 0x00])
            .expect(SEQUENCE, "pfx")
            .unwrap_err();
        assert_eq!(e.0, "pfx: expected SEQUENCE but found INTEGER");
    }

    #[test]
    fn integers_must_be_small_and_non_negative() {
        let t = |b: &'static [u8]| Reader::new(b).next("i").unwrap();
        assert_eq!(t(&[0x02, 0x02, 0x00, 0x80]).as_u64("i").unwrap(), 128);
        assert!(t(&[0x02, 0x01, 0x80]).as_u64("i").is_err());
        assert!(t(&[0x02, 0x00]).as_u64("i").is_err());
        assert!(
            t(&[0x02, 0x09, 1, 0, 0, 0, 0, 0, 0, 0, 0])
                .as_u64("i")
                .is_err()
        );
    }
}
