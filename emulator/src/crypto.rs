//! Public-key signature checks for requests, certificates, CRLs and CSRs.
//!
//! Owns the mapping from X.509 algorithm identifiers to verification routines (ring for RSA and
//! ECDSA P-256/P-384 with SHA-256/384, the RustCrypto curves for P-521 and the other pairings,
//! RustCrypto `ml-dsa` for pure ML-DSA request signatures from ML-DSA-44/65/87 leaf keys).
//! Pure: no I/O, no clock. It must not accept MD5 or SHA-1 signatures.
//!
//! `ml-dsa` 0.1 has never been independently audited (its README says so). The emulator is a test
//! tool and only *verifies* with it; its answers are cross-checked against Python `cryptography`
//! in `tests/mldsa.rs`.

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
    /// An ML-DSA signature whose length is not its parameter set's (a truncated signature, or one
    /// made with another parameter set).
    #[error("an {level} signature is {expected} bytes, this one {actual}")]
    SignatureLength {
        /// The key's parameter set.
        level: MlDsaLevel,
        /// The parameter set's signature length.
        expected: usize,
        /// The length received.
        actual: usize,
    },
}

/// `id-ml-dsa-44` (FIPS 204, NIST CSOR 2.16.840.1.101.3.4.3.17).
const OID_ML_DSA_44: &str = "2.16.840.1.101.3.4.3.17";
/// `id-ml-dsa-65`.
const OID_ML_DSA_65: &str = "2.16.840.1.101.3.4.3.18";
/// `id-ml-dsa-87`.
const OID_ML_DSA_87: &str = "2.16.840.1.101.3.4.3.19";

/// An ML-DSA parameter set (FIPS 204).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MlDsaLevel {
    /// ML-DSA-44 (NIST category 2).
    MlDsa44,
    /// ML-DSA-65 (NIST category 3).
    MlDsa65,
    /// ML-DSA-87 (NIST category 5).
    MlDsa87,
}

impl MlDsaLevel {
    /// The parameter set's name, `ML-DSA-44`…
    pub fn name(self) -> &'static str {
        match self {
            MlDsaLevel::MlDsa44 => "ML-DSA-44",
            MlDsaLevel::MlDsa65 => "ML-DSA-65",
            MlDsaLevel::MlDsa87 => "ML-DSA-87",
        }
    }

    /// The SubjectPublicKeyInfo algorithm OID, dotted.
    pub fn oid(self) -> &'static str {
        match self {
            MlDsaLevel::MlDsa44 => OID_ML_DSA_44,
            MlDsaLevel::MlDsa65 => OID_ML_DSA_65,
            MlDsaLevel::MlDsa87 => OID_ML_DSA_87,
        }
    }

    /// The encoded public key's length in bytes (FIPS 204, table 2).
    pub fn public_key_len(self) -> usize {
        match self {
            MlDsaLevel::MlDsa44 => 1312,
            MlDsaLevel::MlDsa65 => 1952,
            MlDsaLevel::MlDsa87 => 2592,
        }
    }

    /// The signature's length in bytes (FIPS 204, table 2).
    pub fn signature_len(self) -> usize {
        match self {
            MlDsaLevel::MlDsa44 => 2420,
            MlDsaLevel::MlDsa65 => 3309,
            MlDsaLevel::MlDsa87 => 4627,
        }
    }

    fn from_oid(oid: &str) -> Option<MlDsaLevel> {
        [
            MlDsaLevel::MlDsa44,
            MlDsaLevel::MlDsa65,
            MlDsaLevel::MlDsa87,
        ]
        .into_iter()
        .find(|l| l.oid() == oid)
    }
}

impl std::fmt::Display for MlDsaLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
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
    /// ML-DSA: the parameter set and the encoded public key (`pkEncode`, the SPKI's BIT STRING).
    MlDsa {
        /// The parameter set.
        level: MlDsaLevel,
        /// The public key, exactly [`MlDsaLevel::public_key_len`] bytes.
        key: Vec<u8>,
    },
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
        let oid = alg.to_id_string();
        if let Some(level) = MlDsaLevel::from_oid(&oid) {
            // RFC 9881: the parameters field is absent.
            if spki.algorithm.parameters.is_some() {
                return Err(CryptoError::UnsupportedKey(format!(
                    "{level} key with algorithm parameters (they must be absent)"
                )));
            }
            if data.len() != level.public_key_len() {
                return Err(CryptoError::UnsupportedKey(format!(
                    "{level} public key of {} bytes (expected {})",
                    data.len(),
                    level.public_key_len()
                )));
            }
            return Ok(PublicKey::MlDsa { level, key: data });
        }
        Err(CryptoError::UnsupportedKey(oid))
    }

    /// `"rsa"`, `"ec"` or `"ml-dsa"`.
    pub fn family(&self) -> &'static str {
        match self {
            PublicKey::Rsa { .. } => "rsa",
            PublicKey::MlDsa { .. } => "ml-dsa",
            _ => "ec",
        }
    }

    /// The key's type for messages: `rsa`, `ec`, or the ML-DSA parameter set (`ML-DSA-65`).
    pub fn describe(&self) -> &'static str {
        match self {
            PublicKey::MlDsa { level, .. } => level.name(),
            other => other.family(),
        }
    }

    /// Verifies a pure ML-DSA signature (FIPS 204 `ML-DSA.Verify`, empty context) over `msg`
    /// itself; deterministic and hedged signatures alike. A HashML-DSA signature, or one over a
    /// hash of `msg`, does not verify. Refuses a key that is not ML-DSA.
    pub fn verify_ml_dsa(&self, msg: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
        let PublicKey::MlDsa { level, key } = self else {
            return Err(CryptoError::AlgorithmKeyMismatch(
                "ML-DSA".into(),
                self.family(),
            ));
        };
        if sig.len() != level.signature_len() {
            return Err(CryptoError::SignatureLength {
                level: *level,
                expected: level.signature_len(),
                actual: sig.len(),
            });
        }
        let ok = match level {
            MlDsaLevel::MlDsa44 => verify_pure_ml_dsa::<ml_dsa::MlDsa44>(key, msg, sig),
            MlDsaLevel::MlDsa65 => verify_pure_ml_dsa::<ml_dsa::MlDsa65>(key, msg, sig),
            MlDsaLevel::MlDsa87 => verify_pure_ml_dsa::<ml_dsa::MlDsa87>(key, msg, sig),
        };
        if ok {
            Ok(())
        } else {
            Err(CryptoError::BadSignature)
        }
    }

    /// Verifies `sig` over `msg` with this key and `hash`. EC signatures are DER `SEQUENCE{r,s}`,
    /// RSA signatures PKCS#1 v1.5.
    pub fn verify(&self, hash: Hash, msg: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
        use ring::signature as rs;
        if let PublicKey::MlDsa { .. } = self {
            // ML-DSA signs the message itself ([`PublicKey::verify_ml_dsa`]), never a hash of it.
            return Err(CryptoError::AlgorithmKeyMismatch(
                format!("{hash:?} hash-then-sign"),
                self.family(),
            ));
        }
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
                PublicKey::MlDsa { .. } => return Err(CryptoError::BadSignature),
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
                PublicKey::Rsa { .. } | PublicKey::MlDsa { .. } => false,
            }
        };
        if ok {
            Ok(())
        } else {
            Err(CryptoError::BadSignature)
        }
    }
}

/// Pure ML-DSA verification with an empty context; `false` for a key or signature that does not
/// decode (wrong length, hint out of range, `z` too large).
fn verify_pure_ml_dsa<P: ml_dsa::MlDsaParams>(key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let (Ok(key), Ok(sig)) = (
        ml_dsa::EncodedVerifyingKey::<P>::try_from(key),
        ml_dsa::Signature::<P>::try_from(sig),
    ) else {
        return false;
    };
    ml_dsa::VerifyingKey::<P>::decode(&key).verify_with_context(msg, &[], &sig)
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

#[cfg(test)]
mod tests {
    use super::*;
    use ml_dsa::pkcs8::EncodePublicKey as _;
    use ml_dsa::signature::Keypair as _;
    use x509_parser::prelude::FromDer as _;

    const MSG: &[u8] = b"AWS4-X509-MLDSA\n20260301T120000Z\n20260301/us-east-1/rolesanywhere/aws4_request\n0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    /// DER of the SHA-256 OID, as HashML-DSA puts it in M'.
    const SHA256_OID: [u8; 11] = [
        0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
    ];

    /// A signing key from a fixed seed, its SPKI read back through x509-parser.
    fn key<P>(seed: u8) -> (ml_dsa::SigningKey<P>, PublicKey)
    where
        P: ml_dsa::MlDsaParams,
        P: ml_dsa::pkcs8::spki::AssociatedAlgorithmIdentifier<
                Params = ml_dsa::pkcs8::der::AnyRef<'static>,
            >,
    {
        let sk = ml_dsa::SigningKey::<P>::from_seed(&[seed; 32].into());
        let spki = sk.verifying_key().to_public_key_der().expect("spki");
        let (rest, parsed) = SubjectPublicKeyInfo::from_der(spki.as_bytes()).expect("parses");
        assert!(rest.is_empty());
        (sk, PublicKey::from_spki(&parsed).expect("ml-dsa key"))
    }

    /// Every acceptance and refusal for one parameter set.
    fn pure_signatures_verify_and_others_do_not<P>(level: MlDsaLevel)
    where
        P: ml_dsa::MlDsaParams,
        P: ml_dsa::pkcs8::spki::AssociatedAlgorithmIdentifier<
                Params = ml_dsa::pkcs8::der::AnyRef<'static>,
            >,
    {
        let (sk, public) = key::<P>(7);
        assert!(
            matches!(&public, PublicKey::MlDsa { level: l, key } if *l == level && key.len() == level.public_key_len()),
            "{public:?}"
        );
        assert_eq!(
            (public.family(), public.describe()),
            ("ml-dsa", level.name())
        );
        let expanded = sk.expanded_key();

        let deterministic = expanded
            .sign_deterministic(MSG, &[])
            .expect("sign")
            .encode();
        assert_eq!(deterministic.len(), level.signature_len());
        assert_eq!(public.verify_ml_dsa(MSG, &deterministic), Ok(()));
        let mut rng = getrandom::rand_core::UnwrapErr(getrandom::SysRng);
        let hedged = expanded
            .sign_randomized(MSG, &[], &mut rng)
            .expect("sign")
            .encode();
        assert_ne!(
            hedged, deterministic,
            "hedged signing draws fresh randomness"
        );
        assert_eq!(public.verify_ml_dsa(MSG, &hedged), Ok(()));

        // Another message, a non-empty context, the SHA-256 of the message signed with pure
        // ML-DSA, and HashML-DSA-SHA256 (M' = 01 ‖ 00 ‖ OID ‖ SHA-256(M)): none verifies.
        let mut other = MSG.to_vec();
        other[0] ^= 1;
        let digest = ring::digest::digest(&ring::digest::SHA256, MSG);
        let refused = [
            (other.as_slice(), deterministic.to_vec()),
            (
                MSG,
                expanded
                    .sign_deterministic(MSG, b"ctx")
                    .expect("sign")
                    .encode()
                    .to_vec(),
            ),
            (
                MSG,
                expanded
                    .sign_deterministic(digest.as_ref(), &[])
                    .expect("sign")
                    .encode()
                    .to_vec(),
            ),
            (
                MSG,
                expanded
                    .sign_internal(
                        &[&[1, 0], &SHA256_OID, digest.as_ref()],
                        &Default::default(),
                    )
                    .encode()
                    .to_vec(),
            ),
            (MSG, vec![0xff; level.signature_len()]),
            (MSG, vec![0; level.signature_len()]),
        ];
        for (i, (msg, sig)) in refused.iter().enumerate() {
            assert_eq!(
                public.verify_ml_dsa(msg, sig),
                Err(CryptoError::BadSignature),
                "{level} case {i}"
            );
        }
        // A flipped bit in the challenge, in z, in the hint's indices and in its counts (the last
        // bytes, where a bad value makes the signature undecodable) is refused, never a panic.
        let n = deterministic.len();
        for i in [0, 31, 32, 33, n / 2, n - 90, n - 40, n - 12, n - 2, n - 1] {
            let mut sig = deterministic.to_vec();
            sig[i] ^= 0x80;
            assert!(public.verify_ml_dsa(MSG, &sig).is_err(), "{level} byte {i}");
        }
        for len in [0, 1, n / 2, n - 1, n + 1] {
            let mut sig = deterministic.to_vec();
            sig.resize(len, 0);
            assert_eq!(
                public.verify_ml_dsa(MSG, &sig),
                Err(CryptoError::SignatureLength {
                    level,
                    expected: n,
                    actual: len
                })
            );
        }
        // ML-DSA keys sign the message itself: a hash-then-sign check is a mismatch.
        assert!(matches!(
            public.verify(Hash::Sha256, MSG, &deterministic),
            Err(CryptoError::AlgorithmKeyMismatch(_, "ml-dsa"))
        ));
    }

    #[test]
    fn ml_dsa_44_pure_signatures_verify_and_others_do_not() {
        pure_signatures_verify_and_others_do_not::<ml_dsa::MlDsa44>(MlDsaLevel::MlDsa44);
    }

    #[test]
    fn ml_dsa_65_pure_signatures_verify_and_others_do_not() {
        pure_signatures_verify_and_others_do_not::<ml_dsa::MlDsa65>(MlDsaLevel::MlDsa65);
    }

    #[test]
    fn ml_dsa_87_pure_signatures_verify_and_others_do_not() {
        pure_signatures_verify_and_others_do_not::<ml_dsa::MlDsa87>(MlDsaLevel::MlDsa87);
    }

    #[test]
    fn a_signature_of_another_parameter_set_or_key_is_refused() {
        let (sk44, pub44) = key::<ml_dsa::MlDsa44>(1);
        let (_, pub65) = key::<ml_dsa::MlDsa65>(1);
        let (_, other44) = key::<ml_dsa::MlDsa44>(2);
        let sig = sk44
            .expanded_key()
            .sign_deterministic(MSG, &[])
            .expect("sign")
            .encode();
        assert_eq!(pub44.verify_ml_dsa(MSG, &sig), Ok(()));
        assert_eq!(
            other44.verify_ml_dsa(MSG, &sig),
            Err(CryptoError::BadSignature)
        );
        assert!(matches!(
            pub65.verify_ml_dsa(MSG, &sig),
            Err(CryptoError::SignatureLength {
                level: MlDsaLevel::MlDsa65,
                expected: 3309,
                actual: 2420
            })
        ));
    }

    #[test]
    fn an_ec_key_is_not_checked_as_ml_dsa() {
        let point = {
            let sk = p256::SecretKey::from_bytes(&[3u8; 32].into()).expect("scalar");
            sk.public_key().to_sec1_bytes().to_vec()
        };
        let ec = PublicKey::P256(point);
        assert_eq!(
            ec.verify_ml_dsa(MSG, &[0; 2420]),
            Err(CryptoError::AlgorithmKeyMismatch("ML-DSA".into(), "ec"))
        );
    }

    /// `SEQUENCE { SEQUENCE { OID, [params] }, BIT STRING key }` by hand.
    fn spki(oid: &[u8], params: &[u8], key_len: usize) -> Vec<u8> {
        fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
            let mut out = vec![tag];
            let n = body.len();
            if n < 0x80 {
                out.push(n as u8);
            } else {
                out.extend([0x82, (n >> 8) as u8, n as u8]);
            }
            out.extend_from_slice(body);
            out
        }
        let mut alg = tlv(0x06, oid);
        alg.extend_from_slice(params);
        let mut bits = vec![0u8];
        bits.resize(key_len + 1, 0x11);
        let mut body = tlv(0x30, &alg);
        body.extend(tlv(0x03, &bits));
        tlv(0x30, &body)
    }

    #[test]
    fn ml_dsa_spki_needs_absent_parameters_and_the_exact_key_length() {
        // 2.16.840.1.101.3.4.3.18 (ML-DSA-65).
        let oid = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x12];
        let read = |der: &[u8]| {
            let (_, parsed) = SubjectPublicKeyInfo::from_der(der).expect("DER");
            PublicKey::from_spki(&parsed)
        };
        assert!(matches!(
            read(&spki(&oid, &[], 1952)),
            Ok(PublicKey::MlDsa {
                level: MlDsaLevel::MlDsa65,
                ..
            })
        ));
        for (params, len, needle) in [
            (&[0x05, 0x00][..], 1952, "parameters"),
            (&[], 1951, "1951 bytes (expected 1952)"),
            (&[], 2592, "2592 bytes (expected 1952)"),
            (&[], 0, "0 bytes"),
        ] {
            let err = read(&spki(&oid, params, len))
                .expect_err("refused")
                .to_string();
            assert!(err.contains("ML-DSA-65") && err.contains(needle), "{err}");
        }
    }
}
