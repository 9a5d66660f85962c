//! Public keys in one normalised form, so a key on a device can be compared with a certificate's.
//!
//! The value types ([`PublicKey`], [`KeyKind`], [`Curve`]) belong to the signing core
//! (`rolesanywhere-core`), which reports them through the `Signer` port; this module re-exports them
//! and adds what needs ASN.1 crates the core must not depend on: parsing SubjectPublicKeyInfo and
//! PKCS#1 keys ([`PublicKeyDer`]) and the curves' OIDs ([`CurveOid`]).

pub use rolesanywhere_core::KeyError as Error;
#[cfg(test)]
pub(crate) use rolesanywhere_core::encoding::der_tlv;
#[cfg(test)]
pub(crate) use rolesanywhere_core::encoding::der_uint;
pub use rolesanywhere_core::{Curve, KeyKind, MlDsaSet, PublicKey};

use spki::der::{Decode, asn1::ObjectIdentifier};

/// Named-curve OIDs of the supported curves.
pub trait CurveOid: Sized {
    /// The curve's named-curve OID.
    fn oid(self) -> ObjectIdentifier;
    /// The curve for a named-curve OID, if supported.
    fn from_oid(oid: &ObjectIdentifier) -> Option<Self>;
}

impl CurveOid for Curve {
    fn oid(self) -> ObjectIdentifier {
        match self {
            Curve::P256 => OID_P256,
            Curve::P384 => OID_P384,
            Curve::P521 => OID_P521,
        }
    }

    fn from_oid(oid: &ObjectIdentifier) -> Option<Curve> {
        [Curve::P256, Curve::P384, Curve::P521]
            .into_iter()
            .find(|c| c.oid() == *oid)
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

/// OIDs of ML-DSA-44, -65 and -87 (id-ml-dsa-*, NIST CSOR; RFC 9881), in SubjectPublicKeyInfo and
/// PKCS#8 alike, without parameters.
pub const OID_ML_DSA_44: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.3.17");
/// OID of ML-DSA-65.
pub const OID_ML_DSA_65: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.3.18");
/// OID of ML-DSA-87.
pub const OID_ML_DSA_87: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.3.19");

/// The OID of an ML-DSA parameter set.
pub fn ml_dsa_oid(set: MlDsaSet) -> ObjectIdentifier {
    match set {
        MlDsaSet::MlDsa44 => OID_ML_DSA_44,
        MlDsaSet::MlDsa65 => OID_ML_DSA_65,
        MlDsaSet::MlDsa87 => OID_ML_DSA_87,
    }
}

/// The ML-DSA parameter set of an OID, if it is one.
pub fn ml_dsa_set(oid: &ObjectIdentifier) -> Option<MlDsaSet> {
    MlDsaSet::ALL.into_iter().find(|s| ml_dsa_oid(*s) == *oid)
}

/// Public keys from their DER encodings.
pub trait PublicKeyDer: Sized {
    /// Parses a DER SubjectPublicKeyInfo.
    fn from_spki_der(der: &[u8]) -> Result<Self, Error>;
    /// Parses a DER PKCS#1 `RSAPublicKey`.
    fn from_pkcs1_der(der: &[u8]) -> Result<Self, Error>;
}

impl PublicKeyDer for PublicKey {
    fn from_spki_der(der: &[u8]) -> Result<PublicKey, Error> {
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
            PublicKey::ec(curve, bits)
        } else if let Some(set) = ml_dsa_set(&spki.algorithm.oid) {
            // RFC 9881: the parameters field is absent.
            if spki.algorithm.parameters.is_some() {
                return Err(Error::Malformed(format!(
                    "{} key with algorithm parameters (they must be absent)",
                    set.name()
                )));
            }
            PublicKey::ml_dsa(set, bits)
        } else {
            Err(Error::Unsupported(spki.algorithm.oid.to_string()))
        }
    }

    fn from_pkcs1_der(der: &[u8]) -> Result<PublicKey, Error> {
        let k = pkcs1::RsaPublicKey::<spki::der::asn1::UintRef<'_>>::from_der(der)
            .map_err(|e| Error::Malformed(e.to_string()))?;
        Ok(PublicKey::rsa(
            k.modulus.as_bytes(),
            k.public_exponent.as_bytes(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_kind_of_a_zero_modulus_is_zero_bits() {
        // DER INTEGER 0 as the modulus: the stored modulus is empty.
        let k =
            PublicKey::from_pkcs1_der(&[0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x03]).unwrap();
        assert_eq!(k.kind(), KeyKind::Rsa { bits: 0 });
    }

    #[test]
    fn curve_oids_round_trip() {
        for c in [Curve::P256, Curve::P384, Curve::P521] {
            assert_eq!(Curve::from_oid(&c.oid()), Some(c));
        }
        assert_eq!(Curve::from_oid(&OID_RSA), None);
    }
}
