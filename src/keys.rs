//! Public keys in one normalised form, so a key on a device can be compared with a certificate's.
//!
//! Every backend reports its public key as a [`PublicKey`]; certificates are parsed into the same type.
//! Comparison is by value (RSA modulus and exponent without leading zeros; EC curve and uncompressed point).

use spki::der::{Decode, asn1::ObjectIdentifier};

/// Elliptic curves the protocol supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Curve {
    /// NIST P-256 (secp256r1, prime256v1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
    /// NIST P-521 (secp521r1).
    P521,
}

impl Curve {
    /// Size of one field element (and of `r` and `s` in a raw signature) in bytes.
    pub fn field_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    /// The curve's named-curve OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Curve::P256 => OID_P256,
            Curve::P384 => OID_P384,
            Curve::P521 => OID_P521,
        }
    }

    /// The curve for a named-curve OID, if supported.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Curve> {
        [Curve::P256, Curve::P384, Curve::P521]
            .into_iter()
            .find(|c| c.oid() == *oid)
    }

    /// Name as users write it (`P-256`, …).
    pub fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }
}

/// What kind of key a signer holds; the core picks the signing algorithm from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA with a modulus of `bits` bits.
    Rsa {
        /// Modulus size in bits.
        bits: usize,
    },
    /// ECDSA on a NIST curve.
    Ec(Curve),
}

impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyKind::Rsa { bits } => write!(f, "RSA-{bits}"),
            KeyKind::Ec(c) => write!(f, "EC {}", c.name()),
        }
    }
}

/// OID of rsaEncryption.
pub const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// OID of id-ecPublicKey.
pub const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// OID of prime256v1.
pub const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// OID of secp384r1.
pub const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// OID of secp521r1.
pub const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");

/// A public key in normalised form.
#[derive(Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// RSA: big-endian modulus and public exponent, without leading zero bytes.
    Rsa {
        /// Modulus `n`.
        modulus: Vec<u8>,
        /// Public exponent `e`.
        exponent: Vec<u8>,
    },
    /// EC: the curve and the uncompressed SEC1 point `04 ‖ X ‖ Y`.
    Ec {
        /// The curve.
        curve: Curve,
        /// Uncompressed point.
        point: Vec<u8>,
    },
}

/// Why a public key could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The SubjectPublicKeyInfo (or RSAPublicKey) is not valid DER.
    #[error("malformed public key: {0}")]
    Malformed(String),
    /// The key algorithm or curve is not one Roles Anywhere accepts.
    #[error("unsupported public key algorithm {0} (supported: RSA, EC P-256, P-384, P-521)")]
    Unsupported(String),
}

fn strip_zeros(b: &[u8]) -> Vec<u8> {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b[first..].to_vec()
}

impl PublicKey {
    /// An RSA key from its modulus and exponent (leading zeros are stripped).
    pub fn rsa(modulus: &[u8], exponent: &[u8]) -> PublicKey {
        PublicKey::Rsa {
            modulus: strip_zeros(modulus),
            exponent: strip_zeros(exponent),
        }
    }

    /// An EC key from a SEC1 point (compressed points are rejected: no backend produces them).
    pub fn ec(curve: Curve, point: &[u8]) -> Result<PublicKey, Error> {
        let want = 1 + 2 * curve.field_len();
        if point.len() != want || point[0] != 0x04 {
            return Err(Error::Malformed(format!(
                "{} point must be uncompressed ({} bytes starting 04), got {} bytes",
                curve.name(),
                want,
                point.len()
            )));
        }
        Ok(PublicKey::Ec {
            curve,
            point: point.to_vec(),
        })
    }

    /// Parses a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, Error> {
        let spki = spki::SubjectPublicKeyInfoRef::from_der(der)
            .map_err(|e| Error::Malformed(e.to_string()))?;
        let bits = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| Error::Malformed("public key bit string has unused bits".into()))?;
        if spki.algorithm.oid == OID_RSA {
            Self::from_pkcs1_der(bits)
        } else if spki.algorithm.oid == OID_EC {
            let params = spki
                .algorithm
                .parameters
                .ok_or_else(|| Error::Malformed("EC key without curve parameters".into()))?;
            let oid: ObjectIdentifier = params.decode_as().map_err(|_| {
                Error::Unsupported(
                    "EC key with explicit curve parameters (use a named curve)".into(),
                )
            })?;
            let curve = Curve::from_oid(&oid)
                .ok_or_else(|| Error::Unsupported(format!("EC curve {oid}")))?;
            Self::ec(curve, bits)
        } else {
            Err(Error::Unsupported(spki.algorithm.oid.to_string()))
        }
    }

    /// Parses a DER PKCS#1 `RSAPublicKey`.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<PublicKey, Error> {
        let k = pkcs1::RsaPublicKey::<spki::der::asn1::UintRef<'_>>::from_der(der)
            .map_err(|e| Error::Malformed(e.to_string()))?;
        Ok(Self::rsa(
            k.modulus.as_bytes(),
            k.public_exponent.as_bytes(),
        ))
    }

    /// The kind of key (RSA size or EC curve).
    pub fn kind(&self) -> KeyKind {
        match self {
            PublicKey::Rsa { modulus, .. } => KeyKind::Rsa {
                // A zero modulus (a corrupt certificate or token object) is stored empty: 0 bits.
                bits: modulus.len() * 8 - modulus.first().map_or(0, |b| b.leading_zeros() as usize),
            },
            PublicKey::Ec { curve, .. } => KeyKind::Ec(*curve),
        }
    }

    /// The bytes `sign-string` hashes into its test message: the uncompressed EC point, or the PKCS#1
    /// `RSAPublicKey` DER.
    pub fn sign_string_bytes(&self) -> Vec<u8> {
        match self {
            PublicKey::Ec { point, .. } => point.clone(),
            PublicKey::Rsa { modulus, exponent } => rsa_public_key_der(modulus, exponent),
        }
    }

    /// A short fingerprint for messages: SHA-256 of [`Self::sign_string_bytes`], first 8 bytes in hex.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest as _;
        let d = sha2::Sha256::digest(self.sign_string_bytes());
        hex::encode(&d[..8])
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({}, {})", self.kind(), self.fingerprint())
    }
}

/// DER of a PKCS#1 `RSAPublicKey { modulus INTEGER, publicExponent INTEGER }`.
fn rsa_public_key_der(modulus: &[u8], exponent: &[u8]) -> Vec<u8> {
    let mut body = der_uint(modulus);
    body.extend(der_uint(exponent));
    der_tlv(0x30, &body)
}

/// DER `INTEGER` of an unsigned big-endian value.
pub(crate) fn der_uint(v: &[u8]) -> Vec<u8> {
    let v = strip_zeros(v);
    let mut content = Vec::with_capacity(v.len() + 1);
    if v.is_empty() || v[0] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(&v);
    der_tlv(0x02, &content)
}

/// DER tag-length-value with definite length.
pub(crate) fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn rsa_kind_counts_bits() {
        let mut m = vec![0xffu8; 256];
        m[0] = 0x7f;
        assert_eq!(
            PublicKey::rsa(&m, &[1, 0, 1]).kind(),
            KeyKind::Rsa { bits: 2047 }
        );
    }

    #[test]
    fn rsa_kind_of_a_zero_modulus_is_zero_bits() {
        // DER INTEGER 0 as the modulus: the stored modulus is empty.
        let k =
            PublicKey::from_pkcs1_der(&[0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x03]).unwrap();
        assert_eq!(k.kind(), KeyKind::Rsa { bits: 0 });
    }
}
