//! ML-DSA on tokens: the PKCS#11 3.2 codepoints, the parameter sets, the public key of a `CKK_ML_DSA`
//! object, and which signing mechanism to use (a pure function over the token's mechanism list).
//!
//! Signing (docs/adr/0004-ml-dsa-mu-digest.md): `CKM_ML_DSA_EXTERNAL_MU` over the core's 64-byte μ
//! when the token offers it; else `CKM_ML_DSA` (pure ML-DSA, no parameter, so an empty context) over
//! the message itself — the one documented exception to "only a digest reaches the device", as the
//! token then computes the same μ. `CKM_HASH_ML_DSA*` (HashML-DSA) is never used: its signature is
//! not the one Roles Anywhere verifies. Must not: panic on a token's answers (unknown parameter
//! sets and wrong lengths are errors).

use super::ffi::Library;
use crate::keys::{MlDsaSet, PublicKey};
use cryptoki_sys::{CK_FLAGS, CK_MECHANISM_TYPE, CK_SLOT_ID, CK_ULONG};

/// The PKCS#11 codepoints for ML-DSA, in one place.
///
/// Sources: PKCS#11 3.2 (OASIS, `pkcs11t.h` of the 3.2 headers in github.com/oasis-tcs/pkcs11,
/// `working/headers/pkcs11t.h`): `CKK_ML_DSA` 0x4a, `CKA_PARAMETER_SET` 0x61d, `CKP_ML_DSA_44/65/87`
/// 1/2/3, `CKM_ML_DSA_KEY_PAIR_GEN` 0x1c, `CKM_ML_DSA` 0x1d, `CKM_HASH_ML_DSA` 0x1f. cryptoki-sys
/// 0.5 carries these 3.2 values (taken from it here, and checked against the spec's numbers in
/// this module's tests). `CKM_ML_DSA_EXTERNAL_MU` is **not** in 3.2: 0x403c is the value proposed
/// for PKCS#11 3.3 (OASIS PKCS#11 TC issue 58, draft `working/doc/spec/ml_dsa.md`), not ratified;
/// some tokens ship external μ under a vendor codepoint (`CKM_VENDOR_DEFINED | …`), which is not
/// recognised here (such a token falls back to `CKM_ML_DSA` when it has it).
pub(crate) mod ck {
    use cryptoki_sys::{CK_ATTRIBUTE_TYPE, CK_KEY_TYPE, CK_MECHANISM_TYPE, CK_ULONG};

    /// `CKK_ML_DSA` (3.2).
    pub const CKK_ML_DSA: CK_KEY_TYPE = cryptoki_sys::CKK_ML_DSA;
    /// `CKA_PARAMETER_SET` (3.2): a `CK_ULONG` holding a `CKP_ML_DSA_*` for ML-DSA keys.
    pub const CKA_PARAMETER_SET: CK_ATTRIBUTE_TYPE = cryptoki_sys::CKA_PARAMETER_SET;
    /// `CKP_ML_DSA_44` (3.2).
    pub const CKP_ML_DSA_44: CK_ULONG = cryptoki_sys::CKP_ML_DSA_44;
    /// `CKP_ML_DSA_65` (3.2).
    pub const CKP_ML_DSA_65: CK_ULONG = cryptoki_sys::CKP_ML_DSA_65;
    /// `CKP_ML_DSA_87` (3.2).
    pub const CKP_ML_DSA_87: CK_ULONG = cryptoki_sys::CKP_ML_DSA_87;
    /// `CKM_ML_DSA_KEY_PAIR_GEN` (3.2).
    pub const CKM_ML_DSA_KEY_PAIR_GEN: CK_MECHANISM_TYPE = cryptoki_sys::CKM_ML_DSA_KEY_PAIR_GEN;
    /// `CKM_ML_DSA` (3.2): pure ML-DSA over the message; no parameter means an empty context.
    pub const CKM_ML_DSA: CK_MECHANISM_TYPE = cryptoki_sys::CKM_ML_DSA;
    /// `CKM_HASH_ML_DSA` (3.2): HashML-DSA. Named only to be recognised and never chosen.
    pub const CKM_HASH_ML_DSA: CK_MECHANISM_TYPE = cryptoki_sys::CKM_HASH_ML_DSA;
    /// `CKM_ML_DSA_EXTERNAL_MU`: proposed for PKCS#11 3.3, **not ratified** (see the module above).
    pub const CKM_ML_DSA_EXTERNAL_MU: CK_MECHANISM_TYPE = 0x0000_403c;
}

/// The parameter set a `CKA_PARAMETER_SET` value names.
pub(crate) fn parameter_set(value: CK_ULONG) -> Result<MlDsaSet, String> {
    match value {
        ck::CKP_ML_DSA_44 => Ok(MlDsaSet::MlDsa44),
        ck::CKP_ML_DSA_65 => Ok(MlDsaSet::MlDsa65),
        ck::CKP_ML_DSA_87 => Ok(MlDsaSet::MlDsa87),
        v => Err(format!(
            "the key's CKA_PARAMETER_SET {v:#x} is not CKP_ML_DSA_44, _65 or _87"
        )),
    }
}

/// The `CKA_PARAMETER_SET` value for `set`.
pub(crate) fn ckp(set: MlDsaSet) -> CK_ULONG {
    match set {
        MlDsaSet::MlDsa44 => ck::CKP_ML_DSA_44,
        MlDsaSet::MlDsa65 => ck::CKP_ML_DSA_65,
        MlDsaSet::MlDsa87 => ck::CKP_ML_DSA_87,
    }
}

/// A `CK_ULONG` attribute value as the token wrote it (native byte order, `CK_ULONG` wide).
fn read_ulong(bytes: &[u8]) -> Option<CK_ULONG> {
    Some(CK_ULONG::from_ne_bytes(bytes.try_into().ok()?))
}

/// The public key of a `CKK_ML_DSA` public key object: `CKA_VALUE` (the FIPS 204 encoded key) and
/// `CKA_PARAMETER_SET`; without the latter, the set is the one whose key length `CKA_VALUE` has.
pub(crate) fn public_key(
    parameter_set_attr: Option<&[u8]>,
    value: &[u8],
) -> Result<PublicKey, String> {
    let set = match parameter_set_attr {
        Some(p) => {
            let v = read_ulong(p).ok_or_else(|| {
                format!(
                    "the key's CKA_PARAMETER_SET is {} bytes, not a CK_ULONG",
                    p.len()
                )
            })?;
            parameter_set(v)?
        }
        None => MlDsaSet::ALL
            .into_iter()
            .find(|s| s.public_key_len() == value.len())
            .ok_or_else(|| {
                format!(
                    "the ML-DSA public key (CKA_VALUE) is {} bytes, the length of no parameter set",
                    value.len()
                )
            })?,
    };
    PublicKey::ml_dsa(set, value).map_err(|e| format!("the ML-DSA public key (CKA_VALUE): {e}"))
}

/// How a token signs with an ML-DSA key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MlDsaMechanism {
    /// `CKM_ML_DSA_EXTERNAL_MU` over the core's μ.
    ExternalMu,
    /// `CKM_ML_DSA` over the message (the token computes μ).
    Pure,
}

impl MlDsaMechanism {
    /// The mechanism's codepoint.
    pub(crate) fn ckm(self) -> CK_MECHANISM_TYPE {
        match self {
            MlDsaMechanism::ExternalMu => ck::CKM_ML_DSA_EXTERNAL_MU,
            MlDsaMechanism::Pure => ck::CKM_ML_DSA,
        }
    }
}

/// One entry of a token's mechanism list: the mechanism and its `C_GetMechanismInfo` flags
/// (`None` when the token would not describe it; such a mechanism is taken to sign, and
/// `C_SignInit` decides, as for RSA and EC).
pub(crate) type Offered = (CK_MECHANISM_TYPE, Option<CK_FLAGS>);

/// What the token in `slot` offers: the whole `C_GetMechanismList`, so that an error can say what it
/// does have, each with its `C_GetMechanismInfo` flags; a module that cannot list its mechanisms
/// is asked about the two ML-DSA signing ones alone.
pub(crate) fn offered(lib: &Library, slot: CK_SLOT_ID) -> Vec<Offered> {
    let listed = lib
        .mechanism_list(slot)
        .unwrap_or_else(|_| vec![ck::CKM_ML_DSA_EXTERNAL_MU, ck::CKM_ML_DSA]);
    listed
        .into_iter()
        .map(|m| match lib.mechanism_flags(slot, m) {
            Ok(f) => (m, Some(f.unwrap_or(0))),
            Err(_) => (m, None),
        })
        .collect()
}

/// Whether the token offers `CKM_ML_DSA_KEY_PAIR_GEN` for key pair generation.
pub(crate) fn can_generate(offered: &[Offered]) -> bool {
    offered.iter().any(|&(t, f)| {
        t == ck::CKM_ML_DSA_KEY_PAIR_GEN
            && f.is_none_or(|f| f & cryptoki_sys::CKF_GENERATE_KEY_PAIR != 0)
    })
}

/// Picks the ML-DSA signing mechanism from what the token offers: external μ first, then pure
/// ML-DSA; never HashML-DSA. The error is the reason, naming the signing mechanisms offered.
pub(crate) fn select(offered: &[Offered]) -> Result<MlDsaMechanism, String> {
    let signs = |m: CK_MECHANISM_TYPE| {
        offered
            .iter()
            .any(|&(t, f)| t == m && f.is_none_or(|f| f & cryptoki_sys::CKF_SIGN != 0))
    };
    if signs(ck::CKM_ML_DSA_EXTERNAL_MU) {
        return Ok(MlDsaMechanism::ExternalMu);
    }
    if signs(ck::CKM_ML_DSA) {
        return Ok(MlDsaMechanism::Pure);
    }
    let mut signing: Vec<String> = offered
        .iter()
        .filter(|(_, f)| f.is_none_or(|f| f & cryptoki_sys::CKF_SIGN != 0))
        .map(|&(t, _)| mechanism_name(t))
        .collect();
    signing.sort();
    signing.dedup();
    let listed = if signing.is_empty() {
        "none".to_string()
    } else {
        signing.join(", ")
    };
    let hash_only = offered
        .iter()
        .any(|&(t, _)| t == ck::CKM_HASH_ML_DSA || (0x23..=0x2c).contains(&t));
    Err(format!(
        "this token offers no ML-DSA signing mechanism (CKM_ML_DSA or CKM_ML_DSA_EXTERNAL_MU \
         {ext:#x}, the value proposed for PKCS#11 3.3){hash}; SoftHSM 2.6.1 has none (ML-DSA is \
         only on its development branch); the signing mechanisms it offers: {listed}",
        ext = ck::CKM_ML_DSA_EXTERNAL_MU,
        hash = if hash_only {
            " — it has HashML-DSA (CKM_HASH_ML_DSA*), whose signatures Roles Anywhere does not accept"
        } else {
            ""
        },
    ))
}

macro_rules! ckm_names {
    ($($name:ident),* $(,)?) => {
        const CKM_NAMES: &[(CK_MECHANISM_TYPE, &str)] =
            &[$((cryptoki_sys::$name, stringify!($name))),*];
    };
}

ckm_names!(
    CKM_RSA_PKCS,
    CKM_RSA_X_509,
    CKM_RSA_PKCS_PSS,
    CKM_MD5_RSA_PKCS,
    CKM_SHA1_RSA_PKCS,
    CKM_SHA224_RSA_PKCS,
    CKM_SHA256_RSA_PKCS,
    CKM_SHA384_RSA_PKCS,
    CKM_SHA512_RSA_PKCS,
    CKM_SHA1_RSA_PKCS_PSS,
    CKM_SHA224_RSA_PKCS_PSS,
    CKM_SHA256_RSA_PKCS_PSS,
    CKM_SHA384_RSA_PKCS_PSS,
    CKM_SHA512_RSA_PKCS_PSS,
    CKM_DSA,
    CKM_DSA_SHA1,
    CKM_DSA_SHA224,
    CKM_DSA_SHA256,
    CKM_DSA_SHA384,
    CKM_DSA_SHA512,
    CKM_ECDSA,
    CKM_ECDSA_SHA1,
    CKM_ECDSA_SHA224,
    CKM_ECDSA_SHA256,
    CKM_ECDSA_SHA384,
    CKM_ECDSA_SHA512,
    CKM_EDDSA,
    CKM_GOSTR3410,
    CKM_GOSTR3410_WITH_GOSTR3411,
    CKM_MD5_HMAC,
    CKM_SHA_1_HMAC,
    CKM_SHA224_HMAC,
    CKM_SHA256_HMAC,
    CKM_SHA384_HMAC,
    CKM_SHA512_HMAC,
    CKM_AES_CMAC,
    CKM_AES_CMAC_GENERAL,
    CKM_AES_MAC,
    CKM_AES_MAC_GENERAL,
    CKM_DES3_CMAC,
    CKM_DES3_MAC,
    CKM_GOSTR3411_HMAC,
    CKM_ML_DSA,
    CKM_HASH_ML_DSA,
    CKM_HASH_ML_DSA_SHA224,
    CKM_HASH_ML_DSA_SHA256,
    CKM_HASH_ML_DSA_SHA384,
    CKM_HASH_ML_DSA_SHA512,
    CKM_HASH_ML_DSA_SHA3_224,
    CKM_HASH_ML_DSA_SHA3_256,
    CKM_HASH_ML_DSA_SHA3_384,
    CKM_HASH_ML_DSA_SHA3_512,
    CKM_HASH_ML_DSA_SHAKE128,
    CKM_HASH_ML_DSA_SHAKE256,
    CKM_SLH_DSA,
);

/// A mechanism's `CKM_*` name for messages (hex when not a signing mechanism we name).
pub(crate) fn mechanism_name(m: CK_MECHANISM_TYPE) -> String {
    if m == ck::CKM_ML_DSA_EXTERNAL_MU {
        return "CKM_ML_DSA_EXTERNAL_MU".into();
    }
    CKM_NAMES
        .iter()
        .find(|(c, _)| *c == m)
        .map_or_else(|| format!("{m:#x}"), |(_, n)| (*n).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGN: Option<CK_FLAGS> = Some(cryptoki_sys::CKF_SIGN | cryptoki_sys::CKF_VERIFY);
    const VERIFY: Option<CK_FLAGS> = Some(cryptoki_sys::CKF_VERIFY);

    /// The numbers of the PKCS#11 3.2 header (and the 3.3 proposal), independent of cryptoki-sys.
    #[test]
    fn codepoints_are_the_specifications() {
        assert_eq!(ck::CKK_ML_DSA, 0x4a);
        assert_eq!(ck::CKA_PARAMETER_SET, 0x61d);
        assert_eq!(
            [ck::CKP_ML_DSA_44, ck::CKP_ML_DSA_65, ck::CKP_ML_DSA_87],
            [1, 2, 3]
        );
        assert_eq!(ck::CKM_ML_DSA_KEY_PAIR_GEN, 0x1c);
        assert_eq!(ck::CKM_ML_DSA, 0x1d);
        assert_eq!(ck::CKM_HASH_ML_DSA, 0x1f);
        assert_eq!(ck::CKM_ML_DSA_EXTERNAL_MU, 0x403c);
    }

    #[test]
    fn external_mu_is_preferred_then_pure_ml_dsa() {
        let both = [(ck::CKM_ML_DSA, SIGN), (ck::CKM_ML_DSA_EXTERNAL_MU, SIGN)];
        assert_eq!(select(&both), Ok(MlDsaMechanism::ExternalMu));
        let pure = [(cryptoki_sys::CKM_ECDSA, SIGN), (ck::CKM_ML_DSA, SIGN)];
        assert_eq!(select(&pure), Ok(MlDsaMechanism::Pure));
        // A mechanism the token cannot describe is tried (C_SignInit decides).
        assert_eq!(
            select(&[(ck::CKM_ML_DSA_EXTERNAL_MU, None)]),
            Ok(MlDsaMechanism::ExternalMu)
        );
        assert_eq!(MlDsaMechanism::ExternalMu.ckm(), 0x403c);
        assert_eq!(MlDsaMechanism::Pure.ckm(), 0x1d);
    }

    #[test]
    fn verify_only_external_mu_falls_back_to_pure() {
        let l = [(ck::CKM_ML_DSA_EXTERNAL_MU, VERIFY), (ck::CKM_ML_DSA, SIGN)];
        assert_eq!(select(&l), Ok(MlDsaMechanism::Pure));
        let e = select(&[(ck::CKM_ML_DSA, VERIFY)]).unwrap_err();
        assert!(e.contains("offers no ML-DSA signing mechanism"), "{e}");
    }

    #[test]
    fn hash_ml_dsa_is_never_chosen_and_named_in_the_error() {
        let l = [
            (ck::CKM_HASH_ML_DSA, SIGN),
            (cryptoki_sys::CKM_HASH_ML_DSA_SHA256, SIGN),
            (cryptoki_sys::CKM_ECDSA, SIGN),
            (0x8000_1234, SIGN),
        ];
        let e = select(&l).unwrap_err();
        for needle in [
            "CKM_ML_DSA or CKM_ML_DSA_EXTERNAL_MU 0x403c",
            "HashML-DSA",
            "SoftHSM 2.6.1 has none",
            "CKM_ECDSA",
            "CKM_HASH_ML_DSA_SHA256",
            "0x80001234",
        ] {
            assert!(e.contains(needle), "{needle:?} not in {e}");
        }
    }

    #[test]
    fn an_empty_list_says_none() {
        let e = select(&[]).unwrap_err();
        assert!(e.ends_with("the signing mechanisms it offers: none"), "{e}");
    }

    #[test]
    fn parameter_sets_map_both_ways_and_unknown_ones_are_errors() {
        for set in MlDsaSet::ALL {
            assert_eq!(parameter_set(ckp(set)), Ok(set));
        }
        assert!(parameter_set(0).unwrap_err().contains("0x0"));
        assert!(parameter_set(4).is_err());
        assert!(parameter_set(CK_ULONG::MAX).is_err());
    }

    #[test]
    fn public_key_comes_from_value_and_parameter_set() {
        let p65 = ckp(MlDsaSet::MlDsa65).to_ne_bytes();
        let k = public_key(Some(&p65), &[9; 1952]).unwrap();
        assert_eq!(k, PublicKey::ml_dsa(MlDsaSet::MlDsa65, &[9; 1952]).unwrap());
        // Without CKA_PARAMETER_SET the length decides.
        let k = public_key(None, &[9; 2592]).unwrap();
        assert_eq!(k.kind(), crate::keys::KeyKind::MlDsa(MlDsaSet::MlDsa87));
        // A length that does not fit the stated set, no set at all, a malformed attribute, an
        // unknown set: errors, never a panic.
        assert!(public_key(Some(&p65), &[9; 1312]).is_err());
        assert!(public_key(None, &[9; 1000]).is_err());
        assert!(public_key(None, &[]).is_err());
        assert!(
            public_key(Some(&[2]), &[9; 1952])
                .unwrap_err()
                .contains("1 bytes")
        );
        assert!(
            public_key(
                Some(&7u64.to_ne_bytes()[..std::mem::size_of::<CK_ULONG>()]),
                &[9; 1952]
            )
            .is_err()
        );
    }
}
