//! Signed X.509 objects at the DER level: split one into its signed part and signature, and put a
//! certificate back together around a replaced SubjectPublicKeyInfo.
//!
//! The `der` crate does the framing (strict DER) and the derived `Signed` structure the layout; this
//! module must not interpret certificate contents, which is x509-parser's job.

use ::der::asn1::{AnyRef, BitStringRef};
use ::der::{Decode as _, Encode as _, Header, Sequence, Tag, Tagged as _};

/// `SEQUENCE { tbs, algorithm, BIT STRING }`: a certificate, CRL or CSR.
#[derive(Sequence)]
struct Signed<'a> {
    tbs: AnyRef<'a>,
    algorithm: AnyRef<'a>,
    signature: BitStringRef<'a>,
}

/// The parts of a signed object, as slices of its encoding.
pub(crate) struct SignedParts<'a> {
    /// The signed part, header included: the bytes the signature covers.
    pub(crate) tbs: &'a [u8],
    /// The signature, without the BIT STRING's unused-bits octet.
    pub(crate) signature: &'a [u8],
}

/// Splits a signed object; `None` unless it is exactly one DER `Signed` with a whole-octet signature.
pub(crate) fn signed_parts(der: &[u8]) -> Option<SignedParts<'_>> {
    let signed = Signed::from_der(der).ok()?;
    // Strict DER has one encoding per value, so the TBS sits right after the outer header with the
    // length of its own encoding.
    let start = usize::try_from(Header::from_der_partial(der).ok()?.0.encoded_len().ok()?).ok()?;
    let len = usize::try_from(signed.tbs.encoded_len().ok()?).ok()?;
    Some(SignedParts {
        tbs: der.get(start..start.checked_add(len)?)?,
        signature: signed.signature.as_bytes()?,
    })
}

/// Why a certificate could not be put back together.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SpliceError {
    /// The certificate to rework is not the layout we expect.
    #[error("unexpected certificate layout: {0}")]
    Layout(String),
    /// The public key to splice in is not one DER element.
    #[error("public key is not DER: {0}")]
    PublicKey(::der::Error),
}

/// `cert`'s TBSCertificate with its SubjectPublicKeyInfo (field 7) replaced by `spki_der`, as DER.
pub(crate) fn replace_spki(cert: &[u8], spki_der: &[u8]) -> Result<Vec<u8>, SpliceError> {
    let layout = |e: ::der::Error| SpliceError::Layout(e.to_string());
    let signed = Signed::from_der(cert).map_err(layout)?;
    // TBSCertificate: [0] version, serial, signature, issuer, validity, subject, spki, [3] extensions.
    let mut fields: Vec<AnyRef<'_>> = signed.tbs.decode_as().map_err(layout)?;
    let spki = AnyRef::from_der(spki_der).map_err(SpliceError::PublicKey)?;
    match fields.get_mut(6) {
        Some(f) if f.tag() == Tag::Sequence && spki.tag() == Tag::Sequence => *f = spki,
        _ => {
            return Err(SpliceError::Layout(
                "no SubjectPublicKeyInfo in field 7".into(),
            ));
        }
    }
    fields.to_der().map_err(layout)
}

/// The certificate `SEQUENCE { tbs, algorithm of `template`, BIT STRING signature }`.
pub(crate) fn assemble(
    template: &[u8],
    tbs: &[u8],
    signature: &[u8],
) -> Result<Vec<u8>, SpliceError> {
    let layout = |e: ::der::Error| SpliceError::Layout(e.to_string());
    let algorithm = Signed::from_der(template).map_err(layout)?.algorithm;
    Signed {
        tbs: AnyRef::from_der(tbs).map_err(layout)?,
        algorithm,
        signature: BitStringRef::from_bytes(signature).map_err(layout)?,
    }
    .to_der()
    .map_err(layout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_parts_are_slices_of_the_encoding() {
        // SEQUENCE { SEQUENCE { INTEGER 1 }, SEQUENCE { OID 1.2 }, BIT STRING 00 ab cd }
        let der = [
            0x30, 0x0f, 0x30, 0x03, 0x02, 0x01, 0x01, 0x30, 0x03, 0x06, 0x01, 0x2a, 0x03, 0x03,
            0x00, 0xab, 0xcd,
        ];
        let p = signed_parts(&der).expect("valid encoding");
        assert_eq!(p.tbs, &[0x30, 0x03, 0x02, 0x01, 0x01]);
        assert_eq!(p.signature, &[0xab, 0xcd]);
    }

    #[test]
    fn truncated_trailing_and_non_minimal_input_is_refused() {
        let der = [
            0x30, 0x0f, 0x30, 0x03, 0x02, 0x01, 0x01, 0x30, 0x03, 0x06, 0x01, 0x2a, 0x03, 0x03,
            0x00, 0xab, 0xcd,
        ];
        for n in 0..der.len() {
            assert!(signed_parts(&der[..n]).is_none(), "prefix {n}");
        }
        let mut trailing = der.to_vec();
        trailing.push(0);
        assert!(signed_parts(&trailing).is_none());
        // The same object with a long-form outer length: not DER.
        let mut long = vec![0x30, 0x81, 0x0f];
        long.extend_from_slice(&der[2..]);
        assert!(signed_parts(&long).is_none());
    }
}
