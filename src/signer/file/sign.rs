//! The private key in memory and the one operation done with it: signing a [`Digest`].
//!
//! Owns building keys from PKCS#1 `RSAPrivateKey` and SEC1 `ECPrivateKey` DER (the inner forms every
//! other format unwraps to), the size and curve policy (RSA 2048–4096, P-256/P-384/P-521), the public
//! key report and signing. Signatures are prehash: RSASSA-PKCS1-v1_5 over the `DigestInfo` of the
//! digest's algorithm (prefix from [`encoding`]), ECDSA over the digest bytes with DER output. ML-DSA
//! keys ([`super::mldsa`]) sign the core's μ instead. The RustCrypto key types zeroize themselves on
//! drop; this module keeps no other copy of the secret.

use super::{Ctx, Error};
use crate::keys::CurveOid as _;
use crate::keys::{Curve, MlDsaSet, PublicKey};
use crate::signer::encoding;
use crate::sigv4x509::Digest;
use der::Decode as _;
use der::asn1::ObjectIdentifier;
use ecdsa::signature::hazmat::PrehashSigner;
use rolesanywhere_core::MlDsaMu;
use rsa::traits::PublicKeyParts as _;

/// Smallest and largest RSA modulus accepted, in bits.
const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 4096;

/// A private key ready to sign.
pub(super) enum PrivateKey {
    /// RSA (boxed: the key with its precomputed CRT values is large).
    Rsa(Box<rsa::RsaPrivateKey>),
    /// ECDSA on P-256.
    P256(p256::ecdsa::SigningKey),
    /// ECDSA on P-384.
    P384(p384::ecdsa::SigningKey),
    /// ECDSA on P-521.
    P521(p521::ecdsa::SigningKey),
    /// ML-DSA-44/65/87 (signs the core's μ, never a hash: [`PrivateKey::sign_ml_dsa_mu`]).
    MlDsa(super::mldsa::MlDsaKey),
}

impl PrivateKey {
    /// An RSA key from PKCS#1 `RSAPrivateKey` DER. The size is checked before the key is built, so a
    /// hostile file cannot make us validate a huge modulus.
    pub(super) fn from_pkcs1(ctx: &Ctx<'_>, der: &[u8]) -> Result<PrivateKey, Error> {
        let parsed = pkcs1::RsaPrivateKeyRef::from_der(der)
            .map_err(|e| ctx.malformed("PKCS#1 RSAPrivateKey does not parse", e))?;
        let modulus = parsed.modulus.as_bytes();
        let first = modulus
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(modulus.len());
        let modulus = &modulus[first..];
        let bits = modulus.len() * 8 - modulus.first().map_or(0, |b| b.leading_zeros() as usize);
        if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
            return Err(Error::RsaKeySize {
                path: ctx.path.into(),
                bits,
            });
        }
        if parsed.other_prime_infos.is_some() {
            return Err(ctx.unsupported_key("multi-prime RSA"));
        }
        let key = rsa::RsaPrivateKey::try_from(parsed)
            .map_err(|e| ctx.malformed("the RSA key is not consistent", e))?;
        Ok(PrivateKey::Rsa(Box::new(key)))
    }

    /// An EC key from SEC1 `ECPrivateKey` DER. `outer_curve` is the curve named outside the SEC1
    /// structure (PKCS#8 `AlgorithmIdentifier` parameters); when both name one they must agree.
    pub(super) fn from_sec1(
        ctx: &Ctx<'_>,
        der: &[u8],
        outer_curve: Option<ObjectIdentifier>,
    ) -> Result<PrivateKey, Error> {
        let parsed = sec1::EcPrivateKey::from_der(der)
            .map_err(|e| ctx.malformed("SEC1 ECPrivateKey does not parse", e))?;
        let inner_curve = parsed
            .parameters
            .map(|sec1::EcParameters::NamedCurve(oid)| oid);
        let oid = match (outer_curve, inner_curve) {
            (Some(a), Some(b)) if a != b => {
                return Err(
                    ctx.malformed_msg(format!("the key names two different curves ({a} and {b})"))
                );
            }
            (Some(oid), _) | (None, Some(oid)) => oid,
            (None, None) => return Err(ctx.malformed_msg("the EC key does not name its curve")),
        };
        let bad = |e: der::Error| ctx.malformed("the EC private key is invalid for its curve", e);
        match Curve::from_oid(&oid) {
            Some(Curve::P256) => Ok(PrivateKey::P256(
                p256::SecretKey::try_from(parsed).map_err(bad)?.into(),
            )),
            Some(Curve::P384) => Ok(PrivateKey::P384(
                p384::SecretKey::try_from(parsed).map_err(bad)?.into(),
            )),
            Some(Curve::P521) => Ok(PrivateKey::P521(
                p521::SecretKey::try_from(parsed).map_err(bad)?.into(),
            )),
            None => Err(ctx.unsupported_key(&format!("EC {}", curve_name(&oid)))),
        }
    }

    /// The public half, in the normalised form certificates are compared in.
    pub(super) fn public_key(&self) -> Result<PublicKey, crate::keys::Error> {
        let ec = PublicKey::ec;
        match self {
            PrivateKey::Rsa(k) => Ok(PublicKey::rsa(&k.n_bytes(), &k.e_bytes())),
            PrivateKey::P256(k) => ec(
                Curve::P256,
                k.verifying_key().to_sec1_point(false).as_bytes(),
            ),
            PrivateKey::P384(k) => ec(
                Curve::P384,
                k.verifying_key().to_sec1_point(false).as_bytes(),
            ),
            PrivateKey::P521(k) => ec(
                Curve::P521,
                k.verifying_key().to_sec1_point(false).as_bytes(),
            ),
            PrivateKey::MlDsa(k) => k.public_key(),
        }
    }

    /// Signs `digest` (see the module documentation for the schemes).
    pub(super) fn sign(&self, digest: &Digest) -> Result<Vec<u8>, SignError> {
        let z = digest.as_bytes();
        match self {
            PrivateKey::Rsa(k) => {
                let scheme = rsa::Pkcs1v15Sign {
                    hash_len: Some(digest.alg().len()),
                    prefix: encoding::digest_info_prefix(digest.alg()).into(),
                };
                Ok(k.sign(scheme, z)?)
            }
            PrivateKey::P256(k) => {
                let sig: p256::ecdsa::DerSignature = k.sign_prehash(z)?;
                Ok(sig.as_bytes().to_vec())
            }
            PrivateKey::P384(k) => {
                let sig: p384::ecdsa::DerSignature = k.sign_prehash(z)?;
                Ok(sig.as_bytes().to_vec())
            }
            PrivateKey::P521(k) => {
                let sig: p521::ecdsa::DerSignature = k.sign_prehash(z)?;
                Ok(sig.as_bytes().to_vec())
            }
            PrivateKey::MlDsa(k) => Err(SignError::MlDsaGivenHash(k.set())),
        }
    }

    /// Signs the μ of pure ML-DSA with an ML-DSA key (deterministic).
    pub(super) fn sign_ml_dsa_mu(&self, mu: &MlDsaMu) -> Result<Vec<u8>, SignError> {
        match self {
            PrivateKey::MlDsa(k) if k.set() == mu.set() => Ok(k.sign_mu(mu)),
            PrivateKey::MlDsa(k) => Err(SignError::MlDsaSetMismatch {
                key: k.set(),
                mu: mu.set(),
            }),
            _ => Err(SignError::NotMlDsa),
        }
    }
}

/// Why a signature could not be made (the libraries' errors carry no secret).
#[derive(Debug, thiserror::Error)]
pub(super) enum SignError {
    /// The RSA operation failed.
    #[error("RSA signing failed: {0}")]
    Rsa(#[from] rsa::Error),
    /// The ECDSA operation failed.
    #[error("ECDSA signing failed")]
    Ecdsa(#[from] ecdsa::Error),
    /// An ML-DSA key was handed a hash digest (pure ML-DSA signs μ, never a hash).
    #[error("an {} key signs the μ of pure ML-DSA, not a hash digest (HashML-DSA is never used)", .0.name())]
    MlDsaGivenHash(MlDsaSet),
    /// μ computed for another parameter set.
    #[error("μ was computed for {} but the key is {}", .mu.name(), .key.name())]
    MlDsaSetMismatch {
        /// The key's set.
        key: MlDsaSet,
        /// μ's set.
        mu: MlDsaSet,
    },
    /// An RSA or EC key was handed an ML-DSA μ.
    #[error("the key is not an ML-DSA key and cannot sign an ML-DSA μ")]
    NotMlDsa,
}

/// A readable name for curves people do use, so the refusal is understandable.
fn curve_name(oid: &ObjectIdentifier) -> String {
    let name = match oid.to_string().as_str() {
        "1.3.132.0.33" => "P-224 (secp224r1)",
        "1.3.132.0.10" => "secp256k1",
        "1.2.840.10045.3.1.1" => "P-192 (prime192v1)",
        "1.3.36.3.3.2.8.1.1.7" => "brainpoolP256r1",
        "1.3.36.3.3.2.8.1.1.11" => "brainpoolP384r1",
        "1.3.36.3.3.2.8.1.1.13" => "brainpoolP512r1",
        other => return format!("curve {other}"),
    };
    name.into()
}
