//! Signature and digest encodings shared by the core and the backends, kept in one tested place.
//!
//! - ECDSA: devices return raw `r ‖ s` (PKCS#11 `CKM_ECDSA`) or separate `r`, `s` (TPM2_Sign, possibly
//!   shorter than the field); the protocol wants DER `SEQUENCE { INTEGER r, INTEGER s }`.
//! - RSA: `CKM_RSA_PKCS` signs whatever it is given, so we hand it the DER `DigestInfo` (RFC 8017 §9.2
//!   note 1): a fixed prefix per hash followed by the digest.
//! - The two DER writers everything above needs (`INTEGER`, tag-length-value).
//!
//! The one DER structure read here (an ECDSA signature) is read by a reader of a dozen lines below:
//! this crate takes no ASN.1 dependency.

use crate::{Digest, HashAlg};

/// A device's signature could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Raw ECDSA output of the wrong length.
    #[error("raw ECDSA signature has {got} bytes, expected {expected}")]
    RawLength {
        /// Bytes received.
        got: usize,
        /// Bytes expected (twice the field size).
        expected: usize,
    },
    /// A DER ECDSA signature that does not parse.
    #[error("DER ECDSA signature does not parse")]
    Der,
}

/// Converts raw `r ‖ s` (each `field_len` bytes) to DER.
pub fn ecdsa_raw_to_der(raw: &[u8], field_len: usize) -> Result<Vec<u8>, Error> {
    if raw.len() != 2 * field_len {
        return Err(Error::RawLength {
            got: raw.len(),
            expected: 2 * field_len,
        });
    }
    Ok(ecdsa_rs_to_der(&raw[..field_len], &raw[field_len..]))
}

/// DER `SEQUENCE { r, s }` from big-endian `r` and `s` of any length (short values need no padding in
/// DER; leading zeros are stripped and a sign byte added where needed).
pub fn ecdsa_rs_to_der(r: &[u8], s: &[u8]) -> Vec<u8> {
    let mut body = der_uint(r);
    body.extend(der_uint(s));
    der_tlv(0x30, &body)
}

/// Splits a DER ECDSA signature into `r` and `s`, each left-padded to `field_len` bytes.
pub fn ecdsa_der_to_raw(der: &[u8], field_len: usize) -> Result<Vec<u8>, Error> {
    let (seq, rest) = next_tlv(der, SEQUENCE)?;
    if !rest.is_empty() {
        return Err(Error::Der);
    }
    let mut fields = seq;
    let mut out = Vec::with_capacity(2 * field_len);
    for _ in ["r", "s"] {
        let (v, rest) = next_tlv(fields, INTEGER)?;
        fields = rest;
        let first = v.iter().position(|&b| b != 0).unwrap_or(v.len());
        let v = &v[first..];
        if v.len() > field_len {
            return Err(Error::Der);
        }
        out.extend(std::iter::repeat_n(0u8, field_len - v.len()));
        out.extend_from_slice(v);
    }
    if !fields.is_empty() {
        return Err(Error::Der);
    }
    Ok(out)
}

const INTEGER: u8 = 0x02;
const SEQUENCE: u8 = 0x30;

/// One tag-length-value with tag `tag` at the start of `b`: its contents and what follows. Definite
/// lengths of at most four length bytes only (DER); every length is checked against the bytes that
/// are really there, so hostile input gives an error, never a panic.
fn next_tlv(b: &[u8], tag: u8) -> Result<(&[u8], &[u8]), Error> {
    let (&t, b) = b.split_first().ok_or(Error::Der)?;
    let (&l0, b) = b.split_first().ok_or(Error::Der)?;
    if t != tag {
        return Err(Error::Der);
    }
    let (len, b) = match l0 {
        0x00..=0x7f => (usize::from(l0), b),
        // 0x80 is BER's indefinite length, which DER forbids.
        0x80 => return Err(Error::Der),
        _ => {
            let n = usize::from(l0 & 0x7f);
            if n > 4 || b.len() < n {
                return Err(Error::Der);
            }
            let len = b[..n]
                .iter()
                .fold(0usize, |acc, &x| (acc << 8) | usize::from(x));
            (len, &b[n..])
        }
    };
    if b.len() < len {
        return Err(Error::Der);
    }
    Ok(b.split_at(len))
}

/// DER `INTEGER` of an unsigned big-endian value (leading zeros stripped, a sign byte added where
/// the high bit is set).
pub fn der_uint(v: &[u8]) -> Vec<u8> {
    let first = v.iter().position(|&x| x != 0).unwrap_or(v.len());
    let v = &v[first..];
    let mut content = Vec::with_capacity(v.len() + 1);
    if v.is_empty() || v[0] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(v);
    der_tlv(0x02, &content)
}

/// DER tag-length-value with definite length.
pub fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let len = n.to_be_bytes();
        let skip = len.iter().position(|&b| b != 0).unwrap_or(len.len() - 1);
        out.push(0x80 | (len.len() - skip) as u8);
        out.extend_from_slice(&len[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// DER `DigestInfo` prefix for each hash (RFC 8017 §9.2 note 1).
pub fn digest_info_prefix(alg: HashAlg) -> &'static [u8] {
    match alg {
        HashAlg::Sha256 => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        HashAlg::Sha384 => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        HashAlg::Sha512 => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
    }
}

/// The DER `DigestInfo` for `digest`: what `CKM_RSA_PKCS` must be given to produce a PKCS#1 v1.5
/// signature identical to `CKM_SHA256_RSA_PKCS` over the message.
pub fn rsa_digest_info(digest: &Digest) -> Vec<u8> {
    let mut out = digest_info_prefix(digest.alg()).to_vec();
    out.extend_from_slice(digest.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_to_der_strips_and_pads_sign() {
        let mut raw = vec![0u8; 64];
        raw[31] = 1; // r = 1
        raw[32] = 0x80; // s has the high bit set
        let der = ecdsa_raw_to_der(&raw, 32).unwrap();
        assert_eq!(&der[..5], &[0x30, 0x26, 0x02, 0x01, 0x01]);
        assert_eq!(&der[5..8], &[0x02, 0x21, 0x00]);
        assert_eq!(ecdsa_der_to_raw(&der, 32).unwrap(), raw);
    }

    #[test]
    fn raw_to_der_rejects_wrong_length() {
        assert!(matches!(
            ecdsa_raw_to_der(&[1; 63], 32),
            Err(Error::RawLength {
                got: 63,
                expected: 64
            })
        ));
    }

    #[test]
    fn der_to_raw_rejects_garbage() {
        assert!(ecdsa_der_to_raw(&[0x30, 0x05, 0x02], 32).is_err());
        assert!(ecdsa_der_to_raw(&[], 32).is_err());
    }

    #[test]
    fn der_to_raw_rejects_indefinite_lengths_trailing_data_and_wrong_tags() {
        let good = ecdsa_raw_to_der(&[1; 64], 32).unwrap();
        assert!(ecdsa_der_to_raw(&good, 32).is_ok());
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(ecdsa_der_to_raw(&trailing, 32).is_err());
        let mut indefinite = good.clone();
        indefinite[1] = 0x80;
        assert!(ecdsa_der_to_raw(&indefinite, 32).is_err());
        let mut set = good.clone();
        set[0] = 0x31;
        assert!(ecdsa_der_to_raw(&set, 32).is_err());
        // A third INTEGER inside the SEQUENCE.
        let mut body = der_uint(&[1]);
        body.extend(der_uint(&[2]));
        body.extend(der_uint(&[3]));
        assert!(ecdsa_der_to_raw(&der_tlv(0x30, &body), 32).is_err());
        // An r wider than the field.
        let mut body = der_uint(&[0x7f; 33]);
        body.extend(der_uint(&[2]));
        assert!(ecdsa_der_to_raw(&der_tlv(0x30, &body), 32).is_err());
        // A length that claims more than is there, in long form.
        assert!(ecdsa_der_to_raw(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff], 32).is_err());
    }

    #[test]
    fn der_uint_adds_sign_byte_and_strips_zeros() {
        assert_eq!(der_uint(&[0x00, 0x00, 0x7f]), vec![0x02, 0x01, 0x7f]);
        assert_eq!(der_uint(&[0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(der_uint(&[]), vec![0x02, 0x01, 0x00]);
    }

    #[test]
    fn der_tlv_long_lengths() {
        let v = vec![0u8; 300];
        let t = der_tlv(0x04, &v);
        assert_eq!(&t[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }

    #[test]
    fn digest_info_lengths_are_consistent() {
        for alg in [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
            let p = digest_info_prefix(alg);
            assert_eq!(p[1] as usize + 2, p.len() + alg.len());
            assert_eq!(p[p.len() - 1] as usize, alg.len());
        }
    }
}
