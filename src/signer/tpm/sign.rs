//! From a TPM public area to our [`PublicKey`], and from a [`Digest`] to a canonical signature.
//!
//! Owns: the checks that a TPM object can sign arbitrary digests (signing, not restricted, RSA or a
//! NIST curve, RSASSA/ECDSA or no fixed scheme), the explicit scheme handed to TPM2_Sign (keys made by
//! tpm2-openssl carry scheme NULL; a key with a fixed scheme signs only with that scheme's hash), and
//! the conversion of TPM signatures to PKCS#1 bytes or DER ECDSA. Must not hash: it only ever passes
//! the core's digest on.

use crate::keys::{Curve, PublicKey};
use crate::signer::encoding;
use crate::sigv4x509::{Digest, HashAlg};
use tss_esapi::{
    constants::tss::{TPM2_RH_NULL, TPM2_ST_HASHCHECK},
    interface_types::{algorithm::HashingAlgorithm, ecc::EccCurve},
    structures::{
        EccScheme, HashScheme, HashcheckTicket, Public, RsaScheme, Signature, SignatureScheme,
    },
    tss2_esys::TPMT_TK_HASHCHECK,
};

/// Our view of a TPM public area: the normalised key, and the attributes that matter.
#[derive(Debug, Clone)]
pub(crate) struct KeyInfo {
    /// The public key as the TPM holds it.
    pub public: PublicKey,
    /// `userWithAuth`: the auth value (HMAC or password session) may authorise use.
    pub user_with_auth: bool,
    /// The key has a non-empty authPolicy.
    pub has_policy: bool,
    /// `decrypt` with a NULL scheme: the key can salt a session.
    pub can_salt: bool,
    /// The hash of the signing scheme fixed in the public area (RSASSA or ECDSA); `None` for scheme
    /// NULL, where each TPM2_Sign names its own. The TPM refuses any other hash (TPM_RC_SCHEME).
    pub scheme_hash: Option<HashingAlgorithm>,
}

/// Checks that `public` is a key we can sign with and extracts it. The error is the reason.
pub(crate) fn key_info(public: &Public) -> Result<KeyInfo, String> {
    let attrs = public.object_attributes();
    if !attrs.sign_encrypt() {
        return Err("the key is not a signing key (sign attribute clear)".into());
    }
    if attrs.restricted() {
        return Err(
            "the key is a restricted signing key (it signs only TPM-generated data); \
             create an unrestricted signing key"
                .into(),
        );
    }
    let (pk, scheme_null, scheme_hash) = match public {
        Public::Rsa {
            parameters, unique, ..
        } => {
            // An exponent of 0 in a TPM public area means the default 65537.
            let e = match parameters.exponent().value() {
                0 => 65537u32,
                e => e,
            };
            let scheme_hash = match parameters.rsa_scheme() {
                RsaScheme::Null => None,
                RsaScheme::RsaSsa(h) => Some(h.hashing_algorithm()),
                other => return Err(wrong_scheme(&format!("{other:?}"), "RSASSA")),
            };
            (
                PublicKey::rsa(unique.value(), &e.to_be_bytes()),
                scheme_hash.is_none(),
                scheme_hash,
            )
        }
        Public::Ecc {
            parameters, unique, ..
        } => {
            let curve = match parameters.ecc_curve() {
                EccCurve::NistP256 => Curve::P256,
                EccCurve::NistP384 => Curve::P384,
                EccCurve::NistP521 => Curve::P521,
                other => {
                    return Err(format!(
                        "the key's curve {other:?} is not accepted by Roles Anywhere \
                         (use NIST P-256, P-384 or P-521)"
                    ));
                }
            };
            let n = curve.field_len();
            let (x, y) = (unique.x().value(), unique.y().value());
            if x.len() > n || y.len() > n {
                return Err("the key's EC point is larger than its curve".into());
            }
            let mut point = Vec::with_capacity(1 + 2 * n);
            point.push(0x04);
            for c in [x, y] {
                point.extend(std::iter::repeat_n(0u8, n - c.len()));
                point.extend_from_slice(c);
            }
            let scheme_hash = match parameters.ecc_scheme() {
                EccScheme::Null => None,
                EccScheme::EcDsa(h) => Some(h.hashing_algorithm()),
                other => return Err(wrong_scheme(&format!("{other:?}"), "ECDSA")),
            };
            (
                PublicKey::ec(curve, &point).map_err(|e| e.to_string())?,
                scheme_hash.is_none(),
                scheme_hash,
            )
        }
        _ => return Err("the key is neither RSA nor EC".into()),
    };
    Ok(KeyInfo {
        public: pk,
        user_with_auth: attrs.user_with_auth(),
        has_policy: !public.auth_policy().value().is_empty(),
        can_salt: attrs.decrypt() && scheme_null,
        scheme_hash,
    })
}

/// The reason for refusing a key whose fixed scheme is not the one Roles Anywhere signs with.
fn wrong_scheme(scheme: &str, needed: &str) -> String {
    // `RsaPss(HashScheme { .. })` → `RsaPss`: the variant names the scheme.
    let name = scheme.split('(').next().unwrap_or(scheme);
    format!(
        "the key's signing scheme is {name}, but Roles Anywhere signatures are {needed}: create the \
         key with scheme NULL or {needed}"
    )
}

/// `SHA-256`, `SHA3-384`, … for messages.
pub(crate) fn hash_name(h: HashingAlgorithm) -> &'static str {
    match h {
        HashingAlgorithm::Sha1 => "SHA-1",
        HashingAlgorithm::Sha256 => "SHA-256",
        HashingAlgorithm::Sha384 => "SHA-384",
        HashingAlgorithm::Sha512 => "SHA-512",
        HashingAlgorithm::Sm3_256 => "SM3-256",
        HashingAlgorithm::Sha3_256 => "SHA3-256",
        HashingAlgorithm::Sha3_384 => "SHA3-384",
        HashingAlgorithm::Sha3_512 => "SHA3-512",
        HashingAlgorithm::Null => "no hash",
    }
}

/// Why a key whose scheme fixes `fixed` cannot sign `digest` (the TPM would answer TPM_RC_SCHEME),
/// or `None` when it can. Checked before TPM2_Sign so the message can name the scheme and the fix.
pub(crate) fn scheme_refusal(
    key: &PublicKey,
    fixed: Option<HashingAlgorithm>,
    digest: &Digest,
) -> Option<(String, String)> {
    let fixed = fixed?;
    if fixed == hashing(digest.alg()) {
        return None;
    }
    let kind = match key {
        PublicKey::Rsa { .. } => "RSASSA",
        PublicKey::Ec { .. } => "ECDSA",
        // A TPM key is never ML-DSA (TPMs do not do ML-DSA yet); the arm keeps the match whole.
        PublicKey::MlDsa { .. } => "ML-DSA",
    };
    let scheme = format!("{kind} with {}", hash_name(fixed));
    let null_keys = match key {
        PublicKey::Rsa { .. } => "`tpm2_create -G rsa2048`",
        PublicKey::Ec { .. } | PublicKey::MlDsa { .. } => "`tpm2_create -G ecc256`",
    };
    let fix = if digest.alg() == HashAlg::Sha256 {
        format!(
            "Roles Anywhere signs SHA-256 digests: use a key with scheme NULL (as `openssl genpkey \
             -provider tpm2` and {null_keys} make) or {kind} with SHA-256"
        )
    } else {
        format!(
            "use --digest SHA256 (what CreateSession signs with every key), or a key with scheme \
             NULL (as `openssl genpkey -provider tpm2` and {null_keys} make), which signs SHA-256, \
             SHA-384 and SHA-512 digests"
        )
    };
    Some((scheme, fix))
}

pub(crate) fn hashing(alg: HashAlg) -> HashingAlgorithm {
    match alg {
        HashAlg::Sha256 => HashingAlgorithm::Sha256,
        HashAlg::Sha384 => HashingAlgorithm::Sha384,
        HashAlg::Sha512 => HashingAlgorithm::Sha512,
    }
}

/// The explicit scheme for `digest` with `key`: RSASSA or ECDSA with the digest's hash. The TPM
/// checks that the digest is as long as that hash and, for ECDSA, truncates it to the curve order.
pub(crate) fn scheme(key: &PublicKey, digest: &Digest) -> SignatureScheme {
    let hash_scheme = HashScheme::new(hashing(digest.alg()));
    match key {
        PublicKey::Rsa { .. } => SignatureScheme::RsaSsa { hash_scheme },
        PublicKey::Ec { .. } => SignatureScheme::EcDsa { hash_scheme },
        // Never a TPM key; the TPM refuses a NULL scheme on a key without one.
        PublicKey::MlDsa { .. } => SignatureScheme::Null,
    }
}

/// The NULL hashcheck ticket: the digest was not computed by the TPM, which an unrestricted key
/// allows.
pub(crate) fn null_ticket() -> tss_esapi::Result<HashcheckTicket> {
    HashcheckTicket::try_from(TPMT_TK_HASHCHECK {
        tag: TPM2_ST_HASHCHECK,
        hierarchy: TPM2_RH_NULL,
        digest: Default::default(),
    })
}

/// The TPM's digest type for our digest.
pub(crate) fn tpm_digest(digest: &Digest) -> tss_esapi::Result<tss_esapi::structures::Digest> {
    tss_esapi::structures::Digest::try_from(digest.as_bytes())
}

/// Converts the TPM's signature to the canonical form: PKCS#1 v1.5 bytes as long as the modulus, or
/// DER `SEQUENCE { r, s }` (the TPM may return `r`, `s` shorter than the field).
pub(crate) fn canonical(key: &PublicKey, sig: &Signature) -> Result<Vec<u8>, String> {
    match (key, sig) {
        (PublicKey::Rsa { modulus, .. }, Signature::RsaSsa(s)) => {
            let v = s.signature().value();
            if v.len() > modulus.len() {
                return Err(format!(
                    "RSA signature of {} bytes for a {}-byte modulus",
                    v.len(),
                    modulus.len()
                ));
            }
            let mut out = vec![0u8; modulus.len() - v.len()];
            out.extend_from_slice(v);
            Ok(out)
        }
        (PublicKey::Ec { curve, .. }, Signature::EcDsa(s)) => {
            let (r, sv) = (s.signature_r().value(), s.signature_s().value());
            let n = curve.field_len();
            if r.len() > n
                || sv.len() > n
                || r.iter().all(|&b| b == 0)
                || sv.iter().all(|&b| b == 0)
            {
                return Err("ECDSA signature values out of range".into());
            }
            Ok(encoding::ecdsa_rs_to_der(r, sv))
        }
        (_, other) => Err(format!(
            "the TPM answered with a {:?} signature",
            other.algorithm()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tss_esapi::{
        attributes::ObjectAttributesBuilder,
        interface_types::algorithm::PublicAlgorithm,
        structures::{
            EccParameter, EccPoint, EccScheme, EccSignature, KeyDerivationFunctionScheme,
            PublicBuilder, PublicEccParametersBuilder,
        },
    };

    fn ecc_public(restricted: bool, sign: bool, x: Vec<u8>) -> Public {
        let attrs = ObjectAttributesBuilder::new()
            .with_fixed_tpm(true)
            .with_fixed_parent(true)
            .with_sensitive_data_origin(true)
            .with_user_with_auth(true)
            .with_sign_encrypt(sign)
            .with_decrypt(!sign)
            .with_restricted(restricted)
            .build()
            .unwrap();
        let params = PublicEccParametersBuilder::new()
            .with_ecc_scheme(if sign {
                EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256))
            } else {
                EccScheme::Null
            })
            .with_curve(EccCurve::NistP256)
            .with_key_derivation_function_scheme(KeyDerivationFunctionScheme::Null)
            .with_is_signing_key(sign)
            .with_is_decryption_key(!sign)
            .with_restricted(restricted)
            .with_symmetric(if restricted {
                tss_esapi::structures::SymmetricDefinitionObject::AES_128_CFB
            } else {
                tss_esapi::structures::SymmetricDefinitionObject::Null
            })
            .build()
            .unwrap();
        PublicBuilder::new()
            .with_public_algorithm(PublicAlgorithm::Ecc)
            .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
            .with_object_attributes(attrs)
            .with_ecc_parameters(params)
            .with_ecc_unique_identifier(EccPoint::new(
                EccParameter::try_from(x).unwrap(),
                EccParameter::try_from(vec![7u8; 32]).unwrap(),
            ))
            .build()
            .unwrap()
    }

    #[test]
    fn short_ec_coordinates_are_left_padded() {
        let info = key_info(&ecc_public(false, true, vec![5u8; 31])).unwrap();
        let PublicKey::Ec { curve, point } = &info.public else {
            panic!()
        };
        assert_eq!(*curve, Curve::P256);
        assert_eq!(point.len(), 65);
        assert_eq!(&point[..3], &[0x04, 0x00, 0x05]);
        assert!(info.user_with_auth && !info.has_policy && !info.can_salt);
    }

    #[test]
    fn storage_and_restricted_keys_are_refused() {
        let e = key_info(&ecc_public(true, false, vec![1; 32])).unwrap_err();
        assert!(e.contains("not a signing key"), "{e}");
    }

    #[test]
    fn ecdsa_signature_becomes_der_with_sign_bytes() {
        let pk = key_info(&ecc_public(false, true, vec![1; 32]))
            .unwrap()
            .public;
        let mut r = vec![0x80u8; 32];
        r[0] = 0x80;
        let s = vec![0x01u8; 31]; // a short s
        let sig = Signature::EcDsa(
            EccSignature::create(
                HashingAlgorithm::Sha256,
                EccParameter::try_from(r.clone()).unwrap(),
                EccParameter::try_from(s.clone()).unwrap(),
            )
            .unwrap(),
        );
        let der = canonical(&pk, &sig).unwrap();
        assert_eq!(der, encoding::ecdsa_rs_to_der(&r, &s));
        assert_eq!(&der[2..5], &[0x02, 0x21, 0x00]);
        let raw = encoding::ecdsa_der_to_raw(&der, 32).unwrap();
        assert_eq!(&raw[32..33], &[0x00]);
    }

    #[test]
    fn scheme_follows_key_type_and_digest_hash() {
        let pk = key_info(&ecc_public(false, true, vec![1; 32]))
            .unwrap()
            .public;
        let d = Digest::compute(HashAlg::Sha384, b"x");
        assert_eq!(
            scheme(&pk, &d),
            SignatureScheme::EcDsa {
                hash_scheme: HashScheme::new(HashingAlgorithm::Sha384)
            }
        );
        let rsa = PublicKey::rsa(&[0xc1; 256], &[1, 0, 1]);
        assert!(matches!(scheme(&rsa, &d), SignatureScheme::RsaSsa { .. }));
        assert!(null_ticket().is_ok());
    }

    #[test]
    fn fixed_scheme_hash_is_read_and_other_digests_are_refused_by_name() {
        let info = key_info(&ecc_public(false, true, vec![1; 32])).unwrap();
        assert_eq!(info.scheme_hash, Some(HashingAlgorithm::Sha256));
        let pk = info.public;
        let d256 = Digest::compute(HashAlg::Sha256, b"x");
        let d384 = Digest::compute(HashAlg::Sha384, b"x");
        assert!(scheme_refusal(&pk, None, &d384).is_none());
        assert!(scheme_refusal(&pk, Some(HashingAlgorithm::Sha256), &d256).is_none());
        let (scheme, fix) = scheme_refusal(&pk, Some(HashingAlgorithm::Sha256), &d384).unwrap();
        assert_eq!(scheme, "ECDSA with SHA-256");
        assert!(
            fix.starts_with("use --digest SHA256") && fix.contains("scheme NULL"),
            "{fix}"
        );
        // A key fixed to another hash cannot sign CreateSession's SHA-256 digest at all.
        let rsa = PublicKey::rsa(&[0xc1; 256], &[1, 0, 1]);
        let (scheme, fix) = scheme_refusal(&rsa, Some(HashingAlgorithm::Sha384), &d256).unwrap();
        assert_eq!(scheme, "RSASSA with SHA-384");
        assert!(
            fix.starts_with("Roles Anywhere signs SHA-256 digests"),
            "{fix}"
        );
    }

    #[test]
    fn signing_schemes_other_than_ecdsa_are_refused_when_the_key_is_opened() {
        let Public::Ecc {
            object_attributes,
            name_hashing_algorithm,
            auth_policy,
            parameters,
            unique,
        } = ecc_public(false, true, vec![1; 32])
        else {
            panic!("not ECC")
        };
        let params = PublicEccParametersBuilder::new()
            .with_ecc_scheme(EccScheme::EcSchnorr(HashScheme::new(
                HashingAlgorithm::Sha256,
            )))
            .with_curve(parameters.ecc_curve())
            .with_key_derivation_function_scheme(KeyDerivationFunctionScheme::Null)
            .with_is_signing_key(true)
            .with_is_decryption_key(false)
            .with_restricted(false)
            .build()
            .unwrap();
        let public = Public::Ecc {
            object_attributes,
            name_hashing_algorithm,
            auth_policy,
            parameters: params,
            unique,
        };
        let e = key_info(&public).unwrap_err();
        assert!(
            e.contains("EcSchnorr") && e.contains("scheme NULL or ECDSA"),
            "{e}"
        );
    }
}
