//! The digest handed to signing backends: the only way a backend ever sees data to sign.
//!
//! Its only constructors hash the message themselves, and there is none that takes digest bytes, so a
//! backend can never be handed a raw message, nor bytes that merely claim to be a hash (and hardware
//! never signs anything but a digest). See ADR 0001.
//!
//! The second kind, [`MlDsaMu`], is the μ of pure ML-DSA (FIPS 204): a 64-byte SHAKE256 value of the
//! public key and the message, made only here from an ML-DSA [`PublicKey`] and the message (ADR 0004).

use crate::{MlDsaSet, PublicKey};
use sha2::{Digest as _, Sha256, Sha384, Sha512};
use shake::{ExtendableOutput as _, Update as _, XofReader as _};

/// A hash algorithm a [`Digest`] was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    /// SHA-256 (every CreateSession signature, for every key type and curve).
    Sha256,
    /// SHA-384 (only `sign-string --digest SHA384`).
    Sha384,
    /// SHA-512 (only `sign-string --digest SHA512`).
    Sha512,
}

impl HashAlg {
    /// Length of the digest in bytes.
    // A hash algorithm is never "empty"; `len` is the established name for a digest size.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// Name as used on the command line and in `supportedAlgorithms` (`SHA256`, …).
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha256 => "SHA256",
            HashAlg::Sha384 => "SHA384",
            HashAlg::Sha512 => "SHA512",
        }
    }
}

/// A message digest, only ever made by hashing the message itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Digest {
    alg: HashAlg,
    bytes: Vec<u8>,
}

impl Digest {
    /// Hashes `message` with `alg`. The core calls it for what it signs; outside the core, only code
    /// that signs a structure it built itself (a CSR) and backend tests do.
    pub fn compute(alg: HashAlg, message: &[u8]) -> Self {
        let bytes = match alg {
            HashAlg::Sha256 => Sha256::digest(message).to_vec(),
            HashAlg::Sha384 => Sha384::digest(message).to_vec(),
            HashAlg::Sha512 => Sha512::digest(message).to_vec(),
        };
        Digest { alg, bytes }
    }

    /// SHA-256 of `message`.
    pub fn sha256(message: &[u8]) -> Self {
        Self::compute(HashAlg::Sha256, message)
    }

    /// The algorithm the digest was made with.
    pub fn alg(&self) -> HashAlg {
        self.alg
    }

    /// The digest bytes (32, 48 or 64 of them).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Digest({:?}, {})", self.alg, hex::encode(&self.bytes))
    }
}

/// The μ of pure ML-DSA with an empty context (FIPS 204, Algorithm 2 with Algorithm 7 line 6):
///
/// ```text
/// tr = SHAKE256(pk, 64)        μ = SHAKE256(tr ‖ 0x00 ‖ 0x00 ‖ M, 64)
/// ```
///
/// (`0x00 ‖ 0x00` is the pure-ML-DSA domain separator and the length of the empty context.) An
/// ML-DSA signature depends on the message only through μ, so signing μ ("external μ") gives the
/// signature of pure ML-DSA over `M`. HashML-DSA (domain separator `0x01` and a hash OID) is a
/// different algorithm and is never made here.
///
/// Made only by [`MlDsaMu::compute`], from an ML-DSA public key and the message: there is no
/// constructor from bytes, so a backend cannot be handed a μ the core did not compute.
#[derive(Clone, PartialEq, Eq)]
pub struct MlDsaMu {
    set: MlDsaSet,
    mu: [u8; 64],
    message: Vec<u8>,
}

impl MlDsaMu {
    /// μ of `message` for `key`; `None` when `key` is not an ML-DSA key.
    pub fn compute(key: &PublicKey, message: &[u8]) -> Option<MlDsaMu> {
        let PublicKey::MlDsa { set, key } = key else {
            return None;
        };
        let mut tr = [0u8; 64];
        let mut h = shake::Shake256::default();
        h.update(key);
        h.finalize_xof().read(&mut tr);
        let mut mu = [0u8; 64];
        let mut h = shake::Shake256::default();
        h.update(&tr);
        // Pure ML-DSA (domain separator 0), context length 0, no context bytes.
        h.update(&[0x00, 0x00]);
        h.update(message);
        h.finalize_xof().read(&mut mu);
        Some(MlDsaMu {
            set: *set,
            mu,
            message: message.to_vec(),
        })
    }

    /// The parameter set of the key μ was computed for.
    pub fn set(&self) -> MlDsaSet {
        self.set
    }

    /// The 64 bytes of μ: what a backend signs (`sign_mu`, `CKM_ML_DSA_EXTERNAL_MU`).
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.mu
    }

    /// The message μ was computed over: **the one exception to the digest-only rule** (ADR 0004).
    /// Only for a device that can do nothing but pure ML-DSA on the message itself (a PKCS#11 token
    /// with `CKM_ML_DSA` and without `CKM_ML_DSA_EXTERNAL_MU`); the signature it returns is the same
    /// as the one over μ. Every backend that can sign μ must sign μ. Only the PKCS#11 backend uses it,
    /// for such a token.
    pub fn message_for_pure_ml_dsa_device(&self) -> &[u8] {
        &self.message
    }
}

impl std::fmt::Debug for MlDsaMu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MlDsaMu({}, {})", self.set.name(), hex::encode(self.mu))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mu_is_made_only_for_ml_dsa_keys_and_depends_on_key_and_message() {
        let ec = PublicKey::ec(crate::Curve::P256, &[4; 65]).unwrap();
        assert!(MlDsaMu::compute(&ec, b"m").is_none());
        let k1 = PublicKey::ml_dsa(MlDsaSet::MlDsa44, &[1; 1312]).unwrap();
        let k2 = PublicKey::ml_dsa(MlDsaSet::MlDsa44, &[2; 1312]).unwrap();
        let a = MlDsaMu::compute(&k1, b"m").unwrap();
        assert_eq!(a.set(), MlDsaSet::MlDsa44);
        assert_eq!(a.message_for_pure_ml_dsa_device(), b"m");
        assert_ne!(
            a.as_bytes(),
            MlDsaMu::compute(&k2, b"m").unwrap().as_bytes()
        );
        assert_ne!(
            a.as_bytes(),
            MlDsaMu::compute(&k1, b"n").unwrap().as_bytes()
        );
        assert_eq!(a, MlDsaMu::compute(&k1, b"m").unwrap());
    }

    /// μ written out from its definition with the SHAKE256 of another crate's API surface (the
    /// `Digest`-style one-shot), against [`MlDsaMu::compute`]: catches a wrong separator or order.
    #[test]
    fn mu_matches_its_definition() {
        let pk = [0x5au8; 1952];
        let key = PublicKey::ml_dsa(MlDsaSet::MlDsa65, &pk).unwrap();
        let mut tr = [0u8; 64];
        shake::Shake256::digest_xof(pk, &mut tr);
        let mut input = tr.to_vec();
        input.extend_from_slice(&[0, 0]);
        input.extend_from_slice(b"AWS4-X509-MLDSA\n");
        let mut want = [0u8; 64];
        shake::Shake256::digest_xof(&input, &mut want);
        assert_eq!(
            MlDsaMu::compute(&key, b"AWS4-X509-MLDSA\n")
                .unwrap()
                .as_bytes(),
            &want
        );
    }

    #[test]
    fn digest_lengths_match_algorithm() {
        for alg in [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
            assert_eq!(Digest::compute(alg, b"abc").as_bytes().len(), alg.len());
        }
        assert_eq!(
            hex::encode(Digest::sha256(b"abc").as_bytes()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
