//! Signature and digest encodings shared by the backends, kept in one tested place.
//!
//! - ECDSA: devices return raw `r ‖ s` (PKCS#11 `CKM_ECDSA`) or separate `r`, `s` (TPM2_Sign, possibly
//!   shorter than the field); the protocol wants DER `SEQUENCE { INTEGER r, INTEGER s }`.
//! - RSA: `CKM_RSA_PKCS` signs whatever it is given, so we hand it the DER `DigestInfo` (RFC 8017 §9.2
//!   note 1): a fixed prefix per hash followed by the digest.

use super::asn1;
use crate::keys::{der_tlv, der_uint};
use crate::sigv4x509::{Digest, HashAlg};

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
    let seq = asn1::single(der, asn1::SEQUENCE, "ECDSA signature").map_err(|_| Error::Der)?;
    let mut fields = seq.reader();
    let mut out = Vec::with_capacity(2 * field_len);
    for what in ["r", "s"] {
        let v = fields
            .expect(asn1::INTEGER, what)
            .map_err(|_| Error::Der)?
            .value;
        let first = v.iter().position(|&b| b != 0).unwrap_or(v.len());
        let v = &v[first..];
        if v.len() > field_len {
            return Err(Error::Der);
        }
        out.extend(std::iter::repeat_n(0u8, field_len - v.len()));
        out.extend_from_slice(v);
    }
    fields.finish("ECDSA signature").map_err(|_| Error::Der)?;
    Ok(out)
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
    fn digest_info_lengths_are_consistent() {
        for alg in [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
            let p = digest_info_prefix(alg);
            assert_eq!(p[1] as usize + 2, p.len() + alg.len());
            assert_eq!(p[p.len() - 1] as usize, alg.len());
        }
    }
}
