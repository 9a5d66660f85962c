//! Public-key signature checks for requests, certificates, CRLs and CSRs.
//!
//! Owns the mapping from X.509 algorithm identifiers to verification routines (ring for RSA and
//! ECDSA P-256/P-384 with SHA-256/384, the RustCrypto curves for P-521 and the other pairings).
//! Pure: no I/O, no clock. It must not accept MD5 or SHA-1 signatures.

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
    OID_PKCS1_MD5WITHRSAENC, OID_PKCS1_RSAENCRYPTION, OID_PKCS1_SHA1WITHRSA,
    OID_PKCS1_SHA256WITHRSA, OID_PKCS1_SHA384WITHRSA, OID_PKCS1_SHA512WITHRSA,
    OID_SIG_ECDSA_WITH_SHA256, OID_SIG_ECDSA_WITH_SHA384, OID_SIG_ECDSA_WITH_SHA512,
};
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo};

/// Why a signature or key was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// The public key algorithm or curve is not one we verify.
    #[error("unsupported public key algorithm {0}")]
    UnsupportedKey(String),
    /// The RSA modulus is outside 2048..8192 bits.
    #[error("rsa key of {0} bits is outside 2048..8192")]
    RsaKeySize(usize),
    /// The signature algorithm is unknown or too weak (MD5, SHA-1).
    #[error("signature algorithm {0} is not accepted (sha-256 or stronger is required)")]
    WeakOrUnknownAlgorithm(String),
    /// The signature algorithm does not fit the key (RSA signature from an EC key…).
    #[error("signature algorithm {0} does not match the {1} key")]
    AlgorithmKeyMismatch(String, &'static str),
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
}

/// The hash inside a signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl Hash {
    fn digest(self, msg: &[u8]) -> ring::digest::Digest {
        let alg = match self {
            Hash::Sha256 => &ring::digest::SHA256,
            Hash::Sha384 => &ring::digest::SHA384,
            Hash::Sha512 => &ring::digest::SHA512,
        };
        ring::digest::digest(alg, msg)
    }
}

/// A public key we can verify with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// RSA: the PKCS#1 `RSAPublicKey` DER and the modulus size in bits.
    Rsa {
        /// `RSAPublicKey` DER.
        der: Vec<u8>,
        /// Modulus size in bits.
        bits: usize,
    },
    /// NIST P-256, uncompressed SEC1 point.
    P256(Vec<u8>),
    /// NIST P-384, uncompressed SEC1 point.
    P384(Vec<u8>),
    /// NIST P-521, uncompressed SEC1 point.
    P521(Vec<u8>),
}

impl PublicKey {
    /// Reads a SubjectPublicKeyInfo.
    pub fn from_spki(spki: &SubjectPublicKeyInfo<'_>) -> Result<Self, CryptoError> {
        let alg = &spki.algorithm.algorithm;
        let data = spki.subject_public_key.data.to_vec();
        if *alg == OID_PKCS1_RSAENCRYPTION {
            let bits = match spki.parsed() {
                Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => rsa.key_size(),
                _ => return Err(CryptoError::UnsupportedKey("malformed rsa key".into())),
            };
            if !(2048..=8192).contains(&bits) {
                return Err(CryptoError::RsaKeySize(bits));
            }
            return Ok(PublicKey::Rsa { der: data, bits });
        }
        if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok());
            return match curve {
                Some(c) if c == OID_EC_P256 => Ok(PublicKey::P256(data)),
                Some(c) if c == OID_NIST_EC_P384 => Ok(PublicKey::P384(data)),
                Some(c) if c == OID_NIST_EC_P521 => Ok(PublicKey::P521(data)),
                Some(c) => Err(CryptoError::UnsupportedKey(format!("ec curve {c}"))),
                None => Err(CryptoError::UnsupportedKey(
                    "ec key without named curve".into(),
                )),
            };
        }
        Err(CryptoError::UnsupportedKey(alg.to_id_string()))
    }

    /// `"rsa"` or `"ec"`.
    pub fn family(&self) -> &'static str {
        match self {
            PublicKey::Rsa { .. } => "rsa",
            _ => "ec",
        }
    }

    /// Verifies `sig` over `msg` with this key and `hash`. EC signatures are DER `SEQUENCE{r,s}`,
    /// RSA signatures PKCS#1 v1.5.
    pub fn verify(&self, hash: Hash, msg: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
        use ring::signature as rs;
        let ring_alg: Option<&'static dyn rs::VerificationAlgorithm> = match (self, hash) {
            (PublicKey::Rsa { .. }, Hash::Sha256) => Some(&rs::RSA_PKCS1_2048_8192_SHA256),
            (PublicKey::Rsa { .. }, Hash::Sha384) => Some(&rs::RSA_PKCS1_2048_8192_SHA384),
            (PublicKey::Rsa { .. }, Hash::Sha512) => Some(&rs::RSA_PKCS1_2048_8192_SHA512),
            (PublicKey::P256(_), Hash::Sha256) => Some(&rs::ECDSA_P256_SHA256_ASN1),
            (PublicKey::P256(_), Hash::Sha384) => Some(&rs::ECDSA_P256_SHA384_ASN1),
            (PublicKey::P384(_), Hash::Sha256) => Some(&rs::ECDSA_P384_SHA256_ASN1),
            (PublicKey::P384(_), Hash::Sha384) => Some(&rs::ECDSA_P384_SHA384_ASN1),
            _ => None,
        };
        let ok = if let Some(alg) = ring_alg {
            let key = match self {
                PublicKey::Rsa { der, .. } => der,
                PublicKey::P256(p) | PublicKey::P384(p) | PublicKey::P521(p) => p,
            };
            rs::UnparsedPublicKey::new(alg, key)
                .verify(msg, sig)
                .is_ok()
        } else {
            // ring has no P-521 and no SHA-512 ECDSA; RustCrypto verifies those from the prehash.
            let digest = hash.digest(msg);
            let prehash = digest.as_ref();
            match self {
                PublicKey::P256(p) => verify_prehash_p256(p, prehash, sig),
                PublicKey::P384(p) => verify_prehash_p384(p, prehash, sig),
                PublicKey::P521(p) => verify_prehash_p521(p, prehash, sig),
                PublicKey::Rsa { .. } => false,
            }
        };
        if ok {
            Ok(())
        } else {
            Err(CryptoError::BadSignature)
        }
    }
}

fn verify_prehash_p256(point: &[u8], prehash: &[u8], sig: &[u8]) -> bool {
    let (Ok(key), Ok(sig)) = (
        p256::ecdsa::VerifyingKey::from_sec1_bytes(point),
        p256::ecdsa::Signature::from_der(sig),
    ) else {
        return false;
    };
    key.verify_prehash(prehash, &sig).is_ok()
}

fn verify_prehash_p384(point: &[u8], prehash: &[u8], sig: &[u8]) -> bool {
    let (Ok(key), Ok(sig)) = (
        p384::ecdsa::VerifyingKey::from_sec1_bytes(point),
        p384::ecdsa::Signature::from_der(sig),
    ) else {
        return false;
    };
    key.verify_prehash(prehash, &sig).is_ok()
}

fn verify_prehash_p521(point: &[u8], prehash: &[u8], sig: &[u8]) -> bool {
    let (Ok(key), Ok(sig)) = (
        p521::ecdsa::VerifyingKey::from_sec1_bytes(point),
        p521::ecdsa::Signature::from_der(sig),
    ) else {
        return false;
    };
    key.verify_prehash(prehash, &sig).is_ok()
}

/// The hash of an X.509 signature algorithm and the key family it needs; MD5, SHA-1, PSS and
/// anything unknown are refused.
pub fn signature_algorithm(
    alg: &AlgorithmIdentifier<'_>,
) -> Result<(Hash, &'static str), CryptoError> {
    let oid = &alg.algorithm;
    let found = if *oid == OID_PKCS1_SHA256WITHRSA {
        (Hash::Sha256, "rsa")
    } else if *oid == OID_PKCS1_SHA384WITHRSA {
        (Hash::Sha384, "rsa")
    } else if *oid == OID_PKCS1_SHA512WITHRSA {
        (Hash::Sha512, "rsa")
    } else if *oid == OID_SIG_ECDSA_WITH_SHA256 {
        (Hash::Sha256, "ec")
    } else if *oid == OID_SIG_ECDSA_WITH_SHA384 {
        (Hash::Sha384, "ec")
    } else if *oid == OID_SIG_ECDSA_WITH_SHA512 {
        (Hash::Sha512, "ec")
    } else {
        let name = if *oid == OID_PKCS1_SHA1WITHRSA {
            "sha1WithRSAEncryption".to_string()
        } else if *oid == OID_PKCS1_MD5WITHRSAENC {
            "md5WithRSAEncryption".to_string()
        } else {
            oid.to_id_string()
        };
        return Err(CryptoError::WeakOrUnknownAlgorithm(name));
    };
    Ok(found)
}

/// Verifies a signed X.509 object (certificate, CRL, CSR) given as DER against `issuer`.
pub fn verify_signed_object(
    der: &[u8],
    alg: &AlgorithmIdentifier<'_>,
    issuer: &PublicKey,
) -> Result<(), CryptoError> {
    let (hash, family) = signature_algorithm(alg)?;
    if family != issuer.family() {
        return Err(CryptoError::AlgorithmKeyMismatch(
            alg.algorithm.to_id_string(),
            issuer.family(),
        ));
    }
    let parts = crate::der::signed_parts(der).ok_or(CryptoError::BadSignature)?;
    issuer.verify(hash, parts.tbs, parts.signature)
}
