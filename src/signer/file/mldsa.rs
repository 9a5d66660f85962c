//! ML-DSA private keys (FIPS 204) from PKCS#8, and deterministic signing of the core's μ.
//!
//! The PKCS#8 `privateKey` OCTET STRING of an ML-DSA key holds one of three forms
//! (draft-ietf-lamps-dilithium-certificates, RFC 9881's companion for private keys):
//!
//! ```text
//! ML-DSA-PrivateKey ::= CHOICE {
//!   seed        [0] IMPLICIT OCTET STRING (SIZE (32)),   -- Python cryptography writes this
//!   expandedKey OCTET STRING,                            -- refused: no seed to derive from
//!   both        SEQUENCE { seed OCTET STRING (SIZE (32)),
//!                          expandedKey OCTET STRING }    -- OpenSSL 3.5's default
//! }
//! ```
//!
//! The key is always derived from the seed (`ML-DSA.KeyGen_internal`); in the "both" form the
//! expanded key in the file must equal the derived one (compared in constant time), else the file is
//! refused. The expanded-only form is refused because RustCrypto `ml-dsa` can only decode it without
//! validation (its decoder may panic on malformed input). Seeds and expanded keys are held in
//! zeroizing buffers; `ml-dsa`'s key types zeroize themselves on drop (its `zeroize` feature).
//!
//! Signing is `sign_mu_deterministic` over the μ the core computed (ADR 0004): the backend never sees
//! the string to sign.

use super::{Ctx, Error};
use crate::keys::{MlDsaSet, PublicKey};
use crate::signer::asn1::{self, Reader};
use rolesanywhere_core::MlDsaMu;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

/// Length of an ML-DSA seed (ξ) in bytes, for every parameter set.
const SEED_LEN: usize = 32;

/// An ML-DSA signing key (boxed: the expanded key with its NTT forms is tens of kilobytes).
pub(super) enum MlDsaKey {
    /// ML-DSA-44.
    MlDsa44(Box<ml_dsa::SigningKey<ml_dsa::MlDsa44>>),
    /// ML-DSA-65.
    MlDsa65(Box<ml_dsa::SigningKey<ml_dsa::MlDsa65>>),
    /// ML-DSA-87.
    MlDsa87(Box<ml_dsa::SigningKey<ml_dsa::MlDsa87>>),
}

/// The forms read, for messages.
const FORMS_READ: &str = "the seed-only form ([0] IMPLICIT OCTET STRING of the 32-byte seed, as \
                          Python cryptography writes) and the seed-and-expanded-key form (SEQUENCE \
                          of both, as OpenSSL 3.5 writes)";

/// An ML-DSA key of parameter set `set` from the contents of the PKCS#8 `privateKey` OCTET STRING.
pub(super) fn parse(ctx: &Ctx<'_>, set: MlDsaSet, inner: &[u8]) -> Result<MlDsaKey, Error> {
    let name = set.name();
    let bad = |what: String| ctx.malformed_msg(format!("the {name} private key {what}"));
    let (seed, expanded) = match inner.first() {
        Some(&asn1::CONTEXT_0_PRIMITIVE) => {
            let seed = asn1::single(inner, asn1::CONTEXT_0_PRIMITIVE, "seed")
                .map_err(|e| bad(format!("is not a valid seed-only form ({})", e.0)))?;
            (seed.value, None)
        }
        Some(&asn1::SEQUENCE) => {
            let both =
                asn1::single(inner, asn1::SEQUENCE, "seed and expanded key").map_err(|e| {
                    bad(format!(
                        "is not a valid seed-and-expanded-key form ({})",
                        e.0
                    ))
                })?;
            let mut r: Reader<'_> = both.reader();
            let fields = r
                .expect(asn1::OCTET_STRING, "seed")
                .and_then(|seed| Ok((seed, r.expect(asn1::OCTET_STRING, "expanded key")?)))
                .and_then(|fields| r.finish("seed and expanded key").map(|()| fields))
                .map_err(|e| {
                    bad(format!(
                        "is not a valid seed-and-expanded-key form ({})",
                        e.0
                    ))
                })?;
            (fields.0.value, Some(fields.1.value))
        }
        Some(&asn1::OCTET_STRING) => {
            return Err(ctx.malformed_msg(format!(
                "the {name} private key is in the expanded-key-only form, which is not read (it \
                 holds no seed); this program reads {FORMS_READ}. Convert it with OpenSSL 3.5 if \
                 you still have the seed, or make a new key"
            )));
        }
        _ => {
            return Err(bad(format!(
                "is in no known form; this program reads {FORMS_READ}"
            )));
        }
    };
    if seed.len() != SEED_LEN {
        return Err(bad(format!(
            "has a seed of {} bytes; ML-DSA seeds are {SEED_LEN} bytes",
            seed.len()
        )));
    }
    if let Some(expanded) = expanded
        && expanded.len() != set.expanded_key_len()
    {
        return Err(bad(format!(
            "has an expanded key of {} bytes; {name} expanded keys are {} bytes",
            expanded.len(),
            set.expanded_key_len()
        )));
    }
    let seed: Zeroizing<ml_dsa::Seed> = Zeroizing::new(
        ml_dsa::Seed::try_from(seed)
            .map_err(|_| bad(format!("has a seed that is not {SEED_LEN} bytes")))?,
    );
    let mismatch = || {
        ctx.malformed_msg(format!(
            "the {name} private key's expanded key is not the one its seed derives; the file is \
             corrupt or was assembled from two keys"
        ))
    };
    match set {
        MlDsaSet::MlDsa44 => from_seed(&seed, expanded)
            .map(MlDsaKey::MlDsa44)
            .ok_or_else(mismatch),
        MlDsaSet::MlDsa65 => from_seed(&seed, expanded)
            .map(MlDsaKey::MlDsa65)
            .ok_or_else(mismatch),
        MlDsaSet::MlDsa87 => from_seed(&seed, expanded)
            .map(MlDsaKey::MlDsa87)
            .ok_or_else(mismatch),
    }
}

/// The key derived from `seed`; `None` when `expanded` is given and is not the derived expanded key.
fn from_seed<P: ml_dsa::MlDsaParams>(
    seed: &ml_dsa::Seed,
    expanded: Option<&[u8]>,
) -> Option<Box<ml_dsa::SigningKey<P>>> {
    let key = Box::new(ml_dsa::SigningKey::<P>::from_seed(seed));
    if let Some(expanded) = expanded {
        // `to_expanded` is deprecated in favour of seeds, which is what we keep; it is the
        // FIPS 204 skEncode we need for the comparison.
        #[allow(deprecated)]
        let derived = Zeroizing::new(key.expanded_key().to_expanded());
        if !bool::from(derived.as_slice().ct_eq(expanded)) {
            return None;
        }
    }
    Some(key)
}

impl MlDsaKey {
    /// The parameter set.
    pub(super) fn set(&self) -> MlDsaSet {
        match self {
            MlDsaKey::MlDsa44(_) => MlDsaSet::MlDsa44,
            MlDsaKey::MlDsa65(_) => MlDsaSet::MlDsa65,
            MlDsaKey::MlDsa87(_) => MlDsaSet::MlDsa87,
        }
    }

    /// The encoded public key.
    pub(super) fn public_key(&self) -> Result<PublicKey, crate::keys::Error> {
        use ml_dsa::Keypair as _;
        let encoded = match self {
            MlDsaKey::MlDsa44(k) => k.verifying_key().encode().to_vec(),
            MlDsaKey::MlDsa65(k) => k.verifying_key().encode().to_vec(),
            MlDsaKey::MlDsa87(k) => k.verifying_key().encode().to_vec(),
        };
        PublicKey::ml_dsa(self.set(), &encoded)
    }

    /// The deterministic signature of `mu` (FIPS 204 ML-DSA.Sign, deterministic variant, from μ).
    pub(super) fn sign_mu(&self, mu: &MlDsaMu) -> Vec<u8> {
        let mu = mu.as_bytes();
        match self {
            MlDsaKey::MlDsa44(k) => k
                .expanded_key()
                .sign_mu_deterministic(&(*mu).into())
                .encode()
                .to_vec(),
            MlDsaKey::MlDsa65(k) => k
                .expanded_key()
                .sign_mu_deterministic(&(*mu).into())
                .encode()
                .to_vec(),
            MlDsaKey::MlDsa87(k) => k
                .expanded_key()
                .sign_mu_deterministic(&(*mu).into())
                .encode()
                .to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::{load_der, tlv};
    use super::*;
    use crate::signer::Signer as _;
    use rolesanywhere_core::sigv4x509::test_string_message;

    /// PKCS#8 `PrivateKeyInfo` DER of an ML-DSA key with the given `privateKey` contents.
    fn pkcs8(set: MlDsaSet, private_key: &[u8]) -> Vec<u8> {
        let oid = crate::keys::ml_dsa_oid(set);
        let mut alg = vec![0x06, oid.as_bytes().len() as u8];
        alg.extend_from_slice(oid.as_bytes());
        let mut body = vec![0x02, 0x01, 0x00];
        body.extend(tlv(0x30, &alg));
        body.extend(tlv(0x04, private_key));
        tlv(0x30, &body)
    }

    fn seed_only(seed: &[u8]) -> Vec<u8> {
        tlv(0x80, seed)
    }

    fn both<P: ml_dsa::MlDsaParams>(seed: &[u8; 32]) -> Vec<u8> {
        let key = ml_dsa::SigningKey::<P>::from_seed(&(*seed).into());
        #[allow(deprecated)]
        let expanded = key.expanded_key().to_expanded();
        let mut body = tlv(0x04, seed);
        body.extend(tlv(0x04, &expanded));
        tlv(0x30, &body)
    }

    fn forms(set: MlDsaSet, seed: &[u8; 32]) -> [Vec<u8>; 2] {
        let both = match set {
            MlDsaSet::MlDsa44 => both::<ml_dsa::MlDsa44>(seed),
            MlDsaSet::MlDsa65 => both::<ml_dsa::MlDsa65>(seed),
            MlDsaSet::MlDsa87 => both::<ml_dsa::MlDsa87>(seed),
        };
        [pkcs8(set, &seed_only(seed)), pkcs8(set, &both)]
    }

    /// Our μ, signed by our backend, equals the `ml-dsa` crate's own deterministic pure ML-DSA over
    /// the message (empty context), and verifies with it: the core's μ is FIPS 204's.
    #[test]
    fn signing_our_mu_is_pure_ml_dsa_over_the_message() {
        fn check<P: ml_dsa::MlDsaParams>(set: MlDsaSet) {
            let seed = [0x42u8; 32];
            let reference = ml_dsa::SigningKey::<P>::from_seed(&seed.into());
            for der in forms(set, &seed) {
                let key = load_der(&der).expect("key loads");
                let public = key.signer.public_key().clone();
                assert_eq!(public.kind(), crate::keys::KeyKind::MlDsa(set));
                let message = test_string_message(&public);
                let mu = MlDsaMu::compute(&public, &message).unwrap();
                let ours = key.signer.sign_ml_dsa_mu(&mu).unwrap();
                let theirs = reference
                    .expanded_key()
                    .sign_deterministic(&message, &[])
                    .unwrap()
                    .encode()
                    .to_vec();
                assert_eq!(ours, theirs, "{}", set.name());
                assert_eq!(ours.len(), set.signature_len());
                use ml_dsa::Keypair as _;
                let sig = ml_dsa::Signature::<P>::try_from(ours.as_slice()).unwrap();
                assert!(
                    reference
                        .verifying_key()
                        .verify_with_context(&message, &[], &sig)
                );
                // A hash digest is refused: an ML-DSA key never signs HashML-DSA or a raw hash.
                let e = key
                    .signer
                    .sign(&crate::sigv4x509::Digest::sha256(&message))
                    .unwrap_err();
                assert!(e.to_string().contains("private key"), "{e}");
            }
        }
        check::<ml_dsa::MlDsa44>(MlDsaSet::MlDsa44);
        check::<ml_dsa::MlDsa65>(MlDsaSet::MlDsa65);
        check::<ml_dsa::MlDsa87>(MlDsaSet::MlDsa87);
    }

    #[test]
    fn every_truncation_of_a_valid_key_is_an_error_never_a_panic() {
        for set in MlDsaSet::ALL {
            for der in forms(set, &[7u8; 32]) {
                assert!(load_der(&der).is_ok());
                for len in 0..der.len() {
                    let e = load_der(&der[..len]).err().unwrap_or_else(|| {
                        panic!("{}: a key cut to {len} bytes loaded", set.name())
                    });
                    assert!(e.to_string().contains("key.der"), "{e}");
                }
            }
        }
    }

    fn refusal(der: &[u8]) -> String {
        crate::cli::error_text(&load_der(der).err().expect("refused"))
    }

    #[test]
    fn expanded_only_and_inconsistent_keys_are_refused_clearly() {
        let set = MlDsaSet::MlDsa65;
        let expanded = vec![1u8; set.expanded_key_len()];
        let text = refusal(&pkcs8(set, &tlv(0x04, &expanded)));
        assert!(
            text.contains("expanded-key-only form")
                && text.contains("seed-only form")
                && text.contains("seed-and-expanded-key form"),
            "{text}"
        );
        // The expanded key of another seed.
        let mut mixed = tlv(0x04, &[1u8; 32]);
        #[allow(deprecated)]
        let other = ml_dsa::SigningKey::<ml_dsa::MlDsa65>::from_seed(&[2u8; 32].into())
            .expanded_key()
            .to_expanded();
        mixed.extend(tlv(0x04, &other));
        let text = refusal(&pkcs8(set, &tlv(0x30, &mixed)));
        assert!(text.contains("not the one its seed derives"), "{text}");
        // Wrong seed and expanded-key lengths, parameters present, an unknown form.
        let text = refusal(&pkcs8(set, &seed_only(&[1u8; 31])));
        assert!(text.contains("seed of 31 bytes"), "{text}");
        let mut short = tlv(0x04, &[1u8; 32]);
        short.extend(tlv(0x04, &[0u8; 10]));
        let text = refusal(&pkcs8(set, &tlv(0x30, &short)));
        assert!(text.contains("expanded key of 10 bytes"), "{text}");
        let text = refusal(&pkcs8(set, &tlv(0x02, &[1])));
        assert!(text.contains("no known form"), "{text}");
    }
}
