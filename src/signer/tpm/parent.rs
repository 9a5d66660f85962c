//! Parents of loadable keys: the standard storage-key (SRK) templates, a matching persistent SRK,
//! primaries created under a hierarchy, and persistent parents with a password.
//!
//! Owns: the templates (ECC P-256 as tpm2-openssl uses for parent `0x40000001`; RSA-2048 when a key
//! file says `rsaParent`), the choice between a persistent SRK at `0x81000001` and a fresh primary,
//! and the session that authorises the parent. Must not send a hierarchy or parent password except
//! inside an HMAC session.

use super::auth;
use super::error::Error;
use super::tcti::Tpm;
use crate::secret::Secret;
use tss_esapi::{
    attributes::ObjectAttributesBuilder,
    handles::{KeyHandle, ObjectHandle, TpmHandle},
    interface_types::{
        algorithm::{HashingAlgorithm, PublicAlgorithm},
        ecc::EccCurve,
        key_bits::RsaKeyBits,
        resource_handles::Hierarchy,
        session_handles::AuthSession,
    },
    structures::{
        EccPoint, Public, PublicBuilder, PublicEccParametersBuilder, PublicKeyRsa,
        PublicRsaParametersBuilder, RsaExponent, SymmetricDefinitionObject,
    },
};

/// TPM_RH_OWNER, the storage hierarchy.
pub(crate) const OWNER: u32 = 0x4000_0001;
/// TPM_RH_NULL, the ephemeral hierarchy (its seed changes at every TPM reset).
pub(crate) const NULL: u32 = 0x4000_0007;
/// TPM_RH_ENDORSEMENT.
pub(crate) const ENDORSEMENT: u32 = 0x4000_000b;
/// TPM_RH_PLATFORM.
pub(crate) const PLATFORM: u32 = 0x4000_000c;
/// Where a provisioned storage root key conventionally lives.
pub(crate) const SRK_PERSISTENT: u32 = 0x8100_0001;

/// Which storage-key template a parent uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SrkKind {
    /// ECC NIST P-256, the default of tpm2-openssl and of the key-file draft.
    EccP256,
    /// RSA-2048, for key files with `rsaParent` TRUE.
    Rsa2048,
}

/// The standard storage-key template: restricted decrypt, AES-128-CFB, no scheme, empty unique,
/// `fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|noDA`, SHA-256 name. The primary a
/// hierarchy derives depends on every bit of this, so it must equal what the key's creator used.
pub(crate) fn srk_template(kind: SrkKind) -> Result<Public, Error> {
    let attrs = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_no_da(true)
        .with_restricted(true)
        .with_decrypt(true)
        .build();
    let build = || -> tss_esapi::Result<Public> {
        let b = PublicBuilder::new()
            .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
            .with_object_attributes(attrs?);
        match kind {
            SrkKind::EccP256 => b
                .with_public_algorithm(PublicAlgorithm::Ecc)
                .with_ecc_parameters(
                    PublicEccParametersBuilder::new_restricted_decryption_key(
                        SymmetricDefinitionObject::AES_128_CFB,
                        EccCurve::NistP256,
                    )
                    .build()?,
                )
                .with_ecc_unique_identifier(EccPoint::default())
                .build(),
            SrkKind::Rsa2048 => b
                .with_public_algorithm(PublicAlgorithm::Rsa)
                .with_rsa_parameters(
                    PublicRsaParametersBuilder::new_restricted_decryption_key(
                        SymmetricDefinitionObject::AES_128_CFB,
                        RsaKeyBits::Rsa2048,
                        RsaExponent::default(),
                    )
                    .build()?,
                )
                .with_rsa_unique_identifier(PublicKeyRsa::default())
                .build(),
        }
    };
    build().map_err(|e| Error::command("building the SRK template", "the parent", &e))
}

/// True when `public` is `template` apart from the unique field (the key material).
pub(crate) fn matches_template(public: &Public, template: &Public) -> bool {
    match (public, template) {
        (
            Public::Ecc {
                object_attributes: a1,
                name_hashing_algorithm: n1,
                auth_policy: p1,
                parameters: q1,
                ..
            },
            Public::Ecc {
                object_attributes: a2,
                name_hashing_algorithm: n2,
                auth_policy: p2,
                parameters: q2,
                ..
            },
        ) => a1 == a2 && n1 == n2 && p1 == p2 && q1 == q2,
        (
            Public::Rsa {
                object_attributes: a1,
                name_hashing_algorithm: n1,
                auth_policy: p1,
                parameters: q1,
                ..
            },
            Public::Rsa {
                object_attributes: a2,
                name_hashing_algorithm: n2,
                auth_policy: p2,
                parameters: q2,
                ..
            },
        ) => a1 == a2 && n1 == n2 && p1 == p2 && q1 == q2,
        _ => false,
    }
}

/// The hierarchy a permanent handle names, if it is one a parent may live under.
pub(crate) fn hierarchy(handle: u32) -> Option<Hierarchy> {
    match handle {
        OWNER => Some(Hierarchy::Owner),
        NULL => Some(Hierarchy::Null),
        ENDORSEMENT => Some(Hierarchy::Endorsement),
        PLATFORM => Some(Hierarchy::Platform),
        _ => None,
    }
}

/// True for a persistent object handle (`0x81……`).
pub(crate) fn is_persistent(handle: u32) -> bool {
    handle >> 24 == 0x81
}

/// A loaded parent and how to authorise a command that uses it.
#[derive(Debug)]
pub(crate) struct Parent {
    /// The ESYS handle of the parent.
    pub handle: KeyHandle,
    /// True when this process created it (flush it); false for a persistent object (close only).
    pub transient: bool,
    /// For messages: `persistent parent 0x81000101`, `owner hierarchy SRK (ECC P-256)`, ….
    pub desc: String,
    /// The session that authorises the parent's use: a password session with the empty auth, or a
    /// salted HMAC session when the parent has a password.
    pub session: AuthSession,
    /// True when `session` is an HMAC session this module started (the caller may reuse it for the
    /// key and must flush it).
    pub owns_session: bool,
    /// True when a persistent SRK stands in for the hierarchy primary the key file names. Its
    /// template matches, but its unique field may not (some provisioning tools fill it), in which
    /// case the key does not load under it and [`create`] must make the real primary.
    pub substitute: bool,
}

/// Brings up the parent `handle` (a hierarchy or a persistent key).
///
/// - Owner hierarchy: a persistent SRK at `0x81000001` whose public area matches `kind`'s template is
///   used as is (two ReadPublic commands); otherwise the primary is created from the template with
///   `password` as the hierarchy's auth.
/// - Other hierarchies: the primary is created from the template.
/// - A persistent handle: used with `password` as its auth, through an HMAC session salted with the
///   parent itself.
pub(crate) fn open(
    tpm: &mut Tpm,
    handle: u32,
    kind: SrkKind,
    password: &Secret,
) -> Result<Parent, Error> {
    if is_persistent(handle) {
        return open_persistent(tpm, handle, password);
    }
    let Some(h) = hierarchy(handle) else {
        return Err(Error::UnsupportedKey {
            key: format!("parent {handle:#010x}"),
            reason: "the parent is neither a persistent handle (0x81……) nor the owner, null, \
                     endorsement or platform hierarchy"
                .into(),
        });
    };
    let template = srk_template(kind)?;
    if h == Hierarchy::Owner
        && let Some(p) = persistent_srk(tpm, &template, kind)?
    {
        return Ok(p);
    }
    create_primary(tpm, h, template, kind, password)
}

/// Creates the primary for the hierarchy `handle` from `kind`'s template, never substituting a
/// persistent SRK (used when a key did not load under the substitute).
pub(crate) fn create(
    tpm: &mut Tpm,
    handle: u32,
    kind: SrkKind,
    password: &Secret,
) -> Result<Parent, Error> {
    let Some(h) = hierarchy(handle) else {
        return Err(Error::UnsupportedKey {
            key: format!("parent {handle:#010x}"),
            reason: "the parent is not a hierarchy".into(),
        });
    };
    create_primary(tpm, h, srk_template(kind)?, kind, password)
}

fn kind_name(kind: SrkKind) -> &'static str {
    match kind {
        SrkKind::EccP256 => "ECC P-256",
        SrkKind::Rsa2048 => "RSA-2048",
    }
}

/// Uses `0x81000001` when it holds a storage key made from `template`; `None` when the handle is
/// empty or holds something else (then it is closed again).
fn persistent_srk(
    tpm: &mut Tpm,
    template: &Public,
    kind: SrkKind,
) -> Result<Option<Parent>, Error> {
    let desc = format!("persistent SRK {SRK_PERSISTENT:#010x}");
    // An absent handle (TPM_RC_HANDLE) is the common case on a fresh TPM: expected, not an error.
    // Anything else is a real failure: taking a broken connection for "no SRK" would send the next
    // command into ESYS's error state and report that instead.
    let obj = match tpm.run("TPM2_ReadPublic", &desc, |c| {
        c.execute_without_session(|c| c.tr_from_tpm_public(TpmHandle::try_from(SRK_PERSISTENT)?))
    }) {
        Ok(obj) => obj,
        Err(e) if e.is_absent_handle() => return Ok(None),
        Err(e) => return Err(e),
    };
    let key = KeyHandle::from(obj);
    let (public, _, _) = tpm.run("TPM2_ReadPublic", &desc, move |c| {
        c.execute_without_session(|c| c.read_public(key))
    })?;
    if matches_template(&public, template) {
        return Ok(Some(Parent {
            handle: key,
            transient: false,
            desc: format!("{desc} ({})", kind_name(kind)),
            session: AuthSession::Password,
            owns_session: false,
            substitute: true,
        }));
    }
    tpm.local("Esys_TR_Close", &desc, move |c| {
        let mut obj = obj;
        c.tr_close(&mut obj)
    })?;
    Ok(None)
}

fn create_primary(
    tpm: &mut Tpm,
    h: Hierarchy,
    template: Public,
    kind: SrkKind,
    password: &Secret,
) -> Result<Parent, Error> {
    let hname = match h {
        Hierarchy::Owner => "owner",
        Hierarchy::Null => "null",
        Hierarchy::Endorsement => "endorsement",
        Hierarchy::Platform => "platform",
    };
    let desc = format!("{hname} hierarchy SRK ({})", kind_name(kind));
    // A hierarchy password travels in an unsalted HMAC session: there is no key yet to salt with,
    // and the HMAC proves knowledge without sending the value.
    let session = if password.is_empty() {
        None
    } else {
        let auth = auth::auth_value(password, &desc)?;
        tpm.local("Esys_TR_SetAuth", &desc, move |c| {
            c.tr_set_auth(ObjectHandle::from(h), auth)
        })?;
        Some(auth::hmac_session(tpm, None, &desc)?)
    };
    let result = tpm.run("TPM2_CreatePrimary", &desc, move |c| {
        c.execute_with_session(Some(session.unwrap_or(AuthSession::Password)), |c| {
            c.create_primary(h, template, None, None, None, None)
        })
    });
    if let Some(s) = session {
        auth::flush_session(tpm, s, &desc)?;
    }
    Ok(Parent {
        handle: result?.key_handle,
        transient: true,
        desc,
        session: AuthSession::Password,
        owns_session: false,
        substitute: false,
    })
}

fn open_persistent(tpm: &mut Tpm, handle: u32, password: &Secret) -> Result<Parent, Error> {
    let desc = format!("persistent parent {handle:#010x}");
    let tpm_handle =
        TpmHandle::try_from(handle).map_err(|e| Error::command("TPM2_ReadPublic", &desc, &e))?;
    let obj = tpm
        .run("TPM2_ReadPublic", &desc, move |c| {
            c.execute_without_session(|c| c.tr_from_tpm_public(tpm_handle))
        })
        .map_err(|e| {
            if let Some(rc) = e.absent_handle_rc() {
                Error::HandleNotFound {
                    role: "parent key",
                    rc,
                    handle,
                    tcti: tpm.tcti().text.clone(),
                    fix: "check that this is the TPM the key was made on and that its parent \
                          was not removed",
                }
            } else {
                e
            }
        })?;
    let key = KeyHandle::from(obj);
    if password.is_empty() {
        return Ok(Parent {
            handle: key,
            transient: false,
            desc,
            session: AuthSession::Password,
            owns_session: false,
            substitute: false,
        });
    }
    let auth = auth::auth_value(password, &desc)?;
    tpm.local("Esys_TR_SetAuth", &desc, move |c| c.tr_set_auth(obj, auth))?;
    // A storage parent is a decryption key, so it can salt the session that carries its own auth.
    let session = auth::hmac_session(tpm, Some(key), &desc)?;
    Ok(Parent {
        handle: key,
        transient: false,
        desc,
        session,
        owns_session: true,
        substitute: false,
    })
}

impl Parent {
    /// Releases the parent: flushes a primary this process created, closes the ESYS handle of a
    /// persistent one (which stays in the TPM). Does not touch `session`.
    pub(crate) fn release(self, tpm: &mut Tpm) -> Result<(), Error> {
        let obj = ObjectHandle::from(self.handle);
        if self.transient {
            tpm.run("TPM2_FlushContext", &self.desc, move |c| {
                c.flush_context(obj)
            })
        } else {
            tpm.local("Esys_TR_Close", &self.desc, move |c| {
                let mut obj = obj;
                c.tr_close(&mut obj)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecc_srk_template_has_the_storage_key_attributes() {
        let t = srk_template(SrkKind::EccP256).unwrap();
        let a = t.object_attributes();
        assert!(a.restricted() && a.decrypt() && !a.sign_encrypt());
        assert!(a.fixed_tpm() && a.fixed_parent() && a.sensitive_data_origin());
        assert!(a.user_with_auth() && a.no_da());
        assert_eq!(t.name_hashing_algorithm(), HashingAlgorithm::Sha256);
        assert_eq!(
            t.symmetric_algorithm(),
            Some(SymmetricDefinitionObject::AES_128_CFB)
        );
        assert!(matches!(t, Public::Ecc { .. }));
        assert!(matches!(
            srk_template(SrkKind::Rsa2048).unwrap(),
            Public::Rsa { .. }
        ));
    }

    #[test]
    fn template_match_ignores_unique_but_not_type() {
        let ecc = srk_template(SrkKind::EccP256).unwrap();
        let rsa = srk_template(SrkKind::Rsa2048).unwrap();
        assert!(matches_template(&ecc, &ecc));
        assert!(!matches_template(&ecc, &rsa));
        let Public::Ecc {
            object_attributes,
            name_hashing_algorithm,
            auth_policy,
            parameters,
            ..
        } = ecc.clone()
        else {
            unreachable!()
        };
        let filled = Public::Ecc {
            object_attributes,
            name_hashing_algorithm,
            auth_policy,
            parameters,
            unique: EccPoint::new(
                vec![1u8; 32].try_into().unwrap(),
                vec![2u8; 32].try_into().unwrap(),
            ),
        };
        assert!(matches_template(&filled, &ecc));
    }

    #[test]
    fn handle_classes() {
        assert!(is_persistent(0x8100_0001) && !is_persistent(0x4000_0001));
        assert_eq!(hierarchy(OWNER), Some(Hierarchy::Owner));
        assert_eq!(hierarchy(0x4000_000a), None);
    }
}
