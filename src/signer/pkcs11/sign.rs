//! The signer: one logged-in session, one key, one mechanism chosen at open time.
//!
//! Only the digest goes to the token. EC: `CKM_ECDSA` over the digest, raw `r‖s` converted to DER.
//! RSA: `CKM_RSA_PKCS` over the DER `DigestInfo`; when the token lacks it but has raw RSA
//! (`CKM_RSA_X_509`), we build the EMSA-PKCS1-v1_5 block ourselves (RFC 8017 §9.2), which gives the
//! same bytes. `CKM_SHA256_RSA_PKCS` alone cannot be used: it hashes the message itself, and a
//! backend only ever sees the digest. Each signature is `C_SignInit` (→ `C_Login(CKU_CONTEXT_SPECIFIC)`
//! for always-authenticate keys) → one `C_Sign`. ML-DSA keys sign the core's μ with
//! `CKM_ML_DSA_EXTERNAL_MU`, or the message with `CKM_ML_DSA` when that is all the token has
//! (`super::mldsa`). Must not: search, log in as user, or retry a PIN.

use super::error::Error;
use super::ffi::{Library, Session, TokenInfo};
use super::mldsa::{self, MlDsaMechanism};
use super::pin;
use crate::keys::{KeyKind, MlDsaSet, PublicKey};
use crate::secret::Secret;
use crate::signer::{Signer, encoding};
use crate::sigv4x509::Digest;
use cryptoki_sys::{CK_MECHANISM_TYPE, CK_OBJECT_HANDLE};
use rolesanywhere_core::MlDsaMu;
use std::sync::Mutex;

/// How the token is asked to sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mechanism {
    /// `CKM_ECDSA`; `field_len` bytes each for `r` and `s`.
    Ecdsa {
        /// Field size in bytes.
        field_len: usize,
    },
    /// `CKM_RSA_PKCS` over the `DigestInfo`; signatures are `len` bytes.
    RsaPkcs {
        /// Modulus size in bytes.
        len: usize,
    },
    /// `CKM_RSA_X_509` over our own EMSA-PKCS1-v1_5 block.
    RsaRaw {
        /// Modulus size in bytes.
        len: usize,
    },
    /// ML-DSA: external μ or pure ML-DSA over the message.
    MlDsa {
        /// The key's parameter set.
        set: MlDsaSet,
        /// Which mechanism.
        how: MlDsaMechanism,
    },
}

impl Mechanism {
    fn ckm(self) -> CK_MECHANISM_TYPE {
        match self {
            Mechanism::Ecdsa { .. } => cryptoki_sys::CKM_ECDSA,
            Mechanism::RsaPkcs { .. } => cryptoki_sys::CKM_RSA_PKCS,
            Mechanism::RsaRaw { .. } => cryptoki_sys::CKM_RSA_X_509,
            Mechanism::MlDsa { how, .. } => how.ckm(),
        }
    }

    fn signature_len(self) -> usize {
        match self {
            Mechanism::Ecdsa { field_len } => 2 * field_len,
            Mechanism::RsaPkcs { len } | Mechanism::RsaRaw { len } => len,
            Mechanism::MlDsa { set, .. } => set.signature_len(),
        }
    }

    /// Picks the mechanism for `public` from what the token offers (`C_GetMechanismInfo`).
    pub(crate) fn choose(
        lib: &Library,
        slot: cryptoki_sys::CK_SLOT_ID,
        public: &PublicKey,
        token: &TokenInfo,
        uri: &str,
    ) -> Result<Mechanism, Error> {
        let can_sign = |m| -> Result<bool, Error> {
            match lib.mechanism_flags(slot, m) {
                Ok(Some(flags)) => Ok(flags & cryptoki_sys::CKF_SIGN != 0),
                Ok(None) => Ok(false),
                // A module that cannot describe its mechanisms may still sign: let C_SignInit decide.
                Err(_) => Ok(true),
            }
        };
        match public.kind() {
            KeyKind::MlDsa(set) => {
                let offered = mldsa::offered(lib, slot);
                mldsa::select(&offered)
                    .map(|how| Mechanism::MlDsa { set, how })
                    .map_err(|reason| Error::NoMechanism {
                        token: token.label.clone(),
                        uri: uri.into(),
                        reason: format!("{reason}; {} keys need one", set.name()),
                    })
            }
            KeyKind::Ec(curve) => {
                if can_sign(cryptoki_sys::CKM_ECDSA)? {
                    Ok(Mechanism::Ecdsa {
                        field_len: curve.field_len(),
                    })
                } else {
                    Err(Error::NoMechanism {
                        token: token.label.clone(),
                        uri: uri.into(),
                        reason: "it does not offer CKM_ECDSA for signing (hash-and-sign \
                                 mechanisms need the whole message, which is never sent to the \
                                 token)"
                            .into(),
                    })
                }
            }
            KeyKind::Rsa { bits } => {
                let len = bits.div_ceil(8);
                if can_sign(cryptoki_sys::CKM_RSA_PKCS)? {
                    Ok(Mechanism::RsaPkcs { len })
                } else if can_sign(cryptoki_sys::CKM_RSA_X_509)? {
                    Ok(Mechanism::RsaRaw { len })
                } else {
                    Err(Error::NoMechanism {
                        token: token.label.clone(),
                        uri: uri.into(),
                        reason: "it offers neither CKM_RSA_PKCS nor CKM_RSA_X_509; \
                                 CKM_SHA256_RSA_PKCS alone cannot be used because it hashes the \
                                 message itself, and only the digest is ever given to the token"
                            .into(),
                    })
                }
            }
        }
    }

    /// The bytes handed to `C_Sign` for `digest`.
    fn input(self, digest: &Digest) -> Result<Vec<u8>, Error> {
        match self {
            Mechanism::Ecdsa { .. } => Ok(digest.as_bytes().to_vec()),
            Mechanism::RsaPkcs { .. } => Ok(encoding::rsa_digest_info(digest)),
            Mechanism::RsaRaw { len } => emsa_pkcs1_v15(&encoding::rsa_digest_info(digest), len),
            // The core signs ML-DSA keys through `sign_ml_dsa_mu` only.
            Mechanism::MlDsa { set, .. } => Err(Error::UnsupportedKey {
                uri: String::new(),
                reason: format!("an {} key signs the ML-DSA μ, not a digest", set.name()),
            }),
        }
    }
}

/// EMSA-PKCS1-v1_5 (RFC 8017 §9.2 step 5): `00 01 FF…FF 00 ‖ DigestInfo`, at least 8 `FF`s.
fn emsa_pkcs1_v15(digest_info: &[u8], len: usize) -> Result<Vec<u8>, Error> {
    if len < digest_info.len() + 11 {
        return Err(Error::UnsupportedKey {
            uri: String::new(),
            reason: format!("an RSA modulus of {len} bytes is too short for the digest"),
        });
    }
    let mut em = Vec::with_capacity(len);
    em.extend([0x00, 0x01]);
    em.extend(std::iter::repeat_n(0xff, len - digest_info.len() - 3));
    em.push(0x00);
    em.extend_from_slice(digest_info);
    Ok(em)
}

/// What the signer does under its lock.
struct Inner {
    session: Session,
    key: CK_OBJECT_HANDLE,
    context_pin: Option<Secret>,
}

/// A key on a token, with its logged-in session. `Send + Sync`: the session is used under a mutex,
/// as PKCS#11 forbids concurrent use of one session.
pub struct Pkcs11Signer {
    public: PublicKey,
    uri: String,
    token: String,
    mechanism: Mechanism,
    inner: Mutex<Inner>,
}

impl Pkcs11Signer {
    /// A signer over an open (logged-in as needed) session. `context_pin` is set for keys with
    /// `CKA_ALWAYS_AUTHENTICATE`.
    pub(crate) fn new(
        session: Session,
        key: CK_OBJECT_HANDLE,
        public: PublicKey,
        mechanism: Mechanism,
        uri: String,
        token: String,
        context_pin: Option<Secret>,
    ) -> Pkcs11Signer {
        Pkcs11Signer {
            public,
            uri,
            token,
            mechanism,
            inner: Mutex::new(Inner {
                session,
                key,
                context_pin,
            }),
        }
    }

    fn sign_digest(&self, digest: &Digest) -> Result<Vec<u8>, Error> {
        let data = self.mechanism.input(digest).map_err(|e| match e {
            Error::UnsupportedKey { reason, .. } => Error::UnsupportedKey {
                uri: self.uri.clone(),
                reason,
            },
            e => e,
        })?;
        let sig = self.sign_data(&data)?;
        self.to_canonical(sig)
    }

    /// μ to `CKM_ML_DSA_EXTERNAL_MU`, or the message to `CKM_ML_DSA` (ADR 0004's one exception to
    /// digest-only signing: the token computes the same μ). The raw FIPS 204 signature comes back
    /// as is; the core checks its length.
    fn sign_mu(&self, mu: &MlDsaMu) -> Result<Vec<u8>, Error> {
        let Mechanism::MlDsa { set, how } = self.mechanism else {
            return Err(Error::UnsupportedKey {
                uri: self.uri.clone(),
                reason: format!("a {} key cannot sign ML-DSA", self.public.kind()),
            });
        };
        if mu.set() != set {
            return Err(Error::UnsupportedKey {
                uri: self.uri.clone(),
                reason: format!(
                    "μ was computed for {}, but the key is {}",
                    mu.set().name(),
                    set.name()
                ),
            });
        }
        match how {
            MlDsaMechanism::ExternalMu => self.sign_data(mu.as_bytes()),
            MlDsaMechanism::Pure => self.sign_data(mu.message_for_pure_ml_dsa_device()),
        }
    }

    /// `C_SignInit` (context login when needed) and one `C_Sign` over `data`.
    fn sign_data(&self, data: &[u8]) -> Result<Vec<u8>, Error> {
        // A poisoned lock means a panic elsewhere mid-signature; the session itself is still valid
        // (any half-done operation is ended by the next C_SignInit's error or succeeds).
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let what = || format!("signing with {} on token {:?}", self.uri, self.token);
        inner
            .session
            .sign_init(self.mechanism.ckm(), inner.key)
            .map_err(|e| super::error::call(what(), e))?;
        if let Some(p) = &inner.context_pin {
            // PKCS#11 §5.1.6: the context-specific login comes between C_SignInit and C_Sign.
            inner
                .session
                .login(
                    cryptoki_sys::CKU_CONTEXT_SPECIFIC,
                    Some(p.expose().as_bytes()),
                )
                .map_err(|e| pin::login_error(&self.token, e))?;
        }
        let sig = inner
            .session
            .sign(data, self.mechanism.signature_len())
            .map_err(|e| super::error::call(what(), e))?;
        drop(inner);
        Ok(sig)
    }

    /// DER for ECDSA (some tokens already return DER); full-length bytes for RSA.
    fn to_canonical(&self, sig: Vec<u8>) -> Result<Vec<u8>, Error> {
        let bad = |source| Error::Signature {
            uri: self.uri.clone(),
            source,
        };
        match self.mechanism {
            Mechanism::Ecdsa { field_len } => {
                if sig.len() == 2 * field_len {
                    encoding::ecdsa_raw_to_der(&sig, field_len).map_err(bad)
                } else {
                    let raw = encoding::ecdsa_der_to_raw(&sig, field_len).map_err(bad)?;
                    encoding::ecdsa_raw_to_der(&raw, field_len).map_err(bad)
                }
            }
            Mechanism::RsaPkcs { len } | Mechanism::RsaRaw { len } => {
                if sig.len() > len {
                    return Err(bad(encoding::Error::RawLength {
                        got: sig.len(),
                        expected: len,
                    }));
                }
                // An RSA signature is an integer of the modulus size; restore stripped zeros.
                let mut out = vec![0u8; len - sig.len()];
                out.extend(sig);
                Ok(out)
            }
            Mechanism::MlDsa { .. } => Ok(sig),
        }
    }
}

impl Signer for Pkcs11Signer {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, digest: &Digest) -> Result<Vec<u8>, crate::signer::SignError> {
        Ok(self
            .sign_digest(digest)
            .map_err(crate::signer::Error::from)?)
    }

    fn sign_ml_dsa_mu(&self, mu: &MlDsaMu) -> Result<Vec<u8>, crate::signer::SignError> {
        Ok(self.sign_mu(mu).map_err(crate::signer::Error::from)?)
    }

    fn describe(&self) -> String {
        self.uri.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emsa_block_matches_rfc_8017_layout() {
        let di = [0xaa; 51];
        let em = emsa_pkcs1_v15(&di, 256).unwrap();
        assert_eq!(em.len(), 256);
        assert_eq!(&em[..2], &[0, 1]);
        assert!(em[2..256 - 52].iter().all(|&b| b == 0xff));
        assert_eq!(em[256 - 52], 0);
        assert_eq!(&em[256 - 51..], &di);
        assert!(emsa_pkcs1_v15(&di, 61).is_err());
    }

    #[test]
    fn signer_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Pkcs11Signer>();
    }
}
