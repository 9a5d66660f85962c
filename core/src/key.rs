//! Public keys in one normalised form, so a key on a device can be compared with a certificate's.
//!
//! Every backend reports its public key as a [`PublicKey`]; the agent parses certificates into the same
//! type (the parsers live there: this crate knows no ASN.1 key formats). Comparison is by value (RSA
//! modulus and exponent without leading zeros; EC curve and uncompressed point).

use crate::encoding::{der_tlv, der_uint};

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

    /// Name as users write it (`P-256`, …).
    pub fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }
}

/// The ML-DSA parameter sets (FIPS 204).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MlDsaSet {
    /// ML-DSA-44 (security category 2).
    MlDsa44,
    /// ML-DSA-65 (security category 3).
    MlDsa65,
    /// ML-DSA-87 (security category 5).
    MlDsa87,
}

impl MlDsaSet {
    /// Every parameter set, smallest first.
    pub const ALL: [MlDsaSet; 3] = [MlDsaSet::MlDsa44, MlDsaSet::MlDsa65, MlDsaSet::MlDsa87];

    /// Length of the encoded public key in bytes (FIPS 204, Table 2).
    pub fn public_key_len(self) -> usize {
        match self {
            MlDsaSet::MlDsa44 => 1312,
            MlDsaSet::MlDsa65 => 1952,
            MlDsaSet::MlDsa87 => 2592,
        }
    }

    /// Length of the encoded private ("expanded") key in bytes (FIPS 204, Table 2).
    pub fn expanded_key_len(self) -> usize {
        match self {
            MlDsaSet::MlDsa44 => 2560,
            MlDsaSet::MlDsa65 => 4032,
            MlDsaSet::MlDsa87 => 4896,
        }
    }

    /// Length of a signature in bytes (FIPS 204, Table 2).
    pub fn signature_len(self) -> usize {
        match self {
            MlDsaSet::MlDsa44 => 2420,
            MlDsaSet::MlDsa65 => 3309,
            MlDsaSet::MlDsa87 => 4627,
        }
    }

    /// Name as FIPS 204 and AWS's helper write it (`ML-DSA-65`, …).
    pub fn name(self) -> &'static str {
        match self {
            MlDsaSet::MlDsa44 => "ML-DSA-44",
            MlDsaSet::MlDsa65 => "ML-DSA-65",
            MlDsaSet::MlDsa87 => "ML-DSA-87",
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
    /// Pure ML-DSA (FIPS 204) with one of its parameter sets.
    MlDsa(MlDsaSet),
}

impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyKind::Rsa { bits } => write!(f, "RSA-{bits}"),
            KeyKind::Ec(c) => write!(f, "EC {}", c.name()),
            KeyKind::MlDsa(set) => f.write_str(set.name()),
        }
    }
}

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
    /// ML-DSA: the parameter set and the encoded public key (`pk` of FIPS 204, exactly
    /// [`MlDsaSet::public_key_len`] bytes).
    MlDsa {
        /// The parameter set.
        set: MlDsaSet,
        /// The encoded public key.
        key: Vec<u8>,
    },
}

/// Why a public key could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The SubjectPublicKeyInfo (or RSAPublicKey, or EC point) is not valid.
    #[error("malformed public key: {0}")]
    Malformed(String),
    /// The key algorithm or curve is not one Roles Anywhere accepts.
    #[error(
        "unsupported public key algorithm {0} (supported: RSA, EC P-256, P-384, P-521, ML-DSA-44, ML-DSA-65, ML-DSA-87)"
    )]
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
    pub fn ec(curve: Curve, point: &[u8]) -> Result<PublicKey, KeyError> {
        let want = 1 + 2 * curve.field_len();
        if point.len() != want || point[0] != 0x04 {
            return Err(KeyError::Malformed(format!(
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

    /// An ML-DSA key from its encoded public key, whose length must be the parameter set's.
    pub fn ml_dsa(set: MlDsaSet, key: &[u8]) -> Result<PublicKey, KeyError> {
        if key.len() != set.public_key_len() {
            return Err(KeyError::Malformed(format!(
                "{} public key must be {} bytes, got {}",
                set.name(),
                set.public_key_len(),
                key.len()
            )));
        }
        Ok(PublicKey::MlDsa {
            set,
            key: key.to_vec(),
        })
    }

    /// The kind of key (RSA size, EC curve or ML-DSA parameter set).
    pub fn kind(&self) -> KeyKind {
        match self {
            PublicKey::Rsa { modulus, .. } => KeyKind::Rsa {
                // A zero modulus (a corrupt certificate or token object) is stored empty: 0 bits.
                bits: modulus.len() * 8 - modulus.first().map_or(0, |b| b.leading_zeros() as usize),
            },
            PublicKey::Ec { curve, .. } => KeyKind::Ec(*curve),
            PublicKey::MlDsa { set, .. } => KeyKind::MlDsa(*set),
        }
    }

    /// The bytes `sign-string` hashes into its test message: the uncompressed EC point, the PKCS#1
    /// `RSAPublicKey` DER, or the encoded ML-DSA public key.
    pub fn sign_string_bytes(&self) -> Vec<u8> {
        match self {
            PublicKey::Ec { point, .. } => point.clone(),
            PublicKey::MlDsa { key, .. } => key.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn ml_dsa_key_length_is_checked_per_set() {
        for set in MlDsaSet::ALL {
            let ok = PublicKey::ml_dsa(set, &vec![7; set.public_key_len()]).unwrap();
            assert_eq!(ok.kind(), KeyKind::MlDsa(set));
            assert_eq!(ok.kind().to_string(), set.name());
            for len in [0, set.public_key_len() - 1, set.public_key_len() + 1] {
                let e = PublicKey::ml_dsa(set, &vec![7; len]).unwrap_err();
                assert!(e.to_string().contains(set.name()), "{e}");
            }
        }
    }
}
