//! TPM key management: a signing key created inside the TPM under the standard SRK or a persistent
//! parent, encoded as a `TSS2 PRIVATE KEY` file or made persistent at a handle.
//!
//! The key is `fixedTPM|fixedParent|sensitiveDataOrigin`, sign-only and unrestricted; RSA keys have
//! scheme NULL (the signer picks it per signature), EC keys ECDSA-SHA256 (all the protocol uses). Its
//! private part only exists wrapped by the parent, so the key file is useless on any other TPM. With
//! PCRs the key gets an authPolicy of PolicyPCR over the PCR values read now (plus PolicyAuthValue
//! when it has a password) and `userWithAuth` clear, so the password alone cannot unlock it; the key
//! file lists the policy commands for the signer to replay. The key password travels to the TPM only
//! in a salted session with parameter encryption.
//!
//! One call, [`generate`], does it all; the caller (enrollment) only writes the returned key file,
//! with its own rules for files (atomic, 0600, never over an existing file). Must not: write files,
//! or put a password anywhere but into an encrypted session.

use super::Error;
use super::auth::{self, NeedsAuth};
use super::keyfile::{PolicyCommand, TpmKeyFile};
use super::parent::{self, Parent, SrkKind};
use super::policy::{CC_POLICY_AUTH_VALUE, CC_POLICY_PCR};
use super::sign;
use super::tcti::Tpm;
use crate::keys::{Curve, KeyKind, PublicKey};
use crate::secret::Secret;
use crate::signer::KeyOptions;
use sha2::{Digest as _, Sha256};
use std::path::PathBuf;
use tss_esapi::{
    attributes::{ObjectAttributesBuilder, SessionAttributesBuilder},
    handles::{ObjectHandle, PersistentTpmHandle, TpmHandle},
    interface_types::{
        algorithm::{HashingAlgorithm, PublicAlgorithm},
        dynamic_handles::Persistent,
        ecc::EccCurve,
        key_bits::RsaKeyBits,
        resource_handles::Provision,
        session_handles::AuthSession,
    },
    structures::{
        Digest, EccPoint, EccScheme, HashScheme, KeyDerivationFunctionScheme, PcrSelectionList,
        Public, PublicBuilder, PublicEccParametersBuilder, PublicKeyRsa,
        PublicRsaParametersBuilder, RsaExponent, RsaScheme,
    },
    traits::Marshall,
    tss2_esys::{TPML_PCR_SELECTION, TPMS_PCR_SELECTION},
};

/// `--tpm-pcrs`: one PCR bank and the PCRs selected in it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PcrSpec {
    /// The bank's `TPM_ALG_ID` (SHA-1 0x0004, SHA-256 0x000B, SHA-384 0x000C).
    alg: u16,
    /// PCR indexes, ascending, no duplicates, each below 24.
    pcrs: Vec<u8>,
}

/// Parses `sha256:0,7` (or `0,7`, meaning the SHA-256 bank).
fn parse_pcrs(text: &str) -> Result<PcrSpec, Error> {
    let bad = |why: &str| Error::PcrSyntax {
        text: text.to_string(),
        reason: why.to_string(),
    };
    let (bank, list) = text.split_once(':').unwrap_or(("sha256", text));
    let alg = match bank.to_ascii_lowercase().as_str() {
        "sha1" => 0x0004,
        "sha256" => 0x000b,
        "sha384" => 0x000c,
        _ => return Err(bad("unknown bank (use sha1, sha256 or sha384)")),
    };
    let mut pcrs = Vec::new();
    for p in list.split(',') {
        let n: u8 = p.trim().parse().map_err(|_| bad("not a PCR number"))?;
        if n >= 24 {
            return Err(bad("PCR numbers go from 0 to 23"));
        }
        pcrs.push(n);
    }
    pcrs.sort_unstable();
    pcrs.dedup();
    Ok(PcrSpec { alg, pcrs })
}

impl PcrSpec {
    /// Marshalled `TPML_PCR_SELECTION` with one 3-byte selection.
    fn selection_bytes(&self) -> Vec<u8> {
        let mut select = [0u8; 3];
        for &p in &self.pcrs {
            select[usize::from(p / 8)] |= 1 << (p % 8);
        }
        let mut out = 1u32.to_be_bytes().to_vec();
        out.extend(self.alg.to_be_bytes());
        out.push(3);
        out.extend(select);
        out
    }

    fn tss_selection(&self, only: Option<u8>) -> tss_esapi::Result<PcrSelectionList> {
        let mut tpml = TPML_PCR_SELECTION {
            count: 1,
            pcrSelections: [TPMS_PCR_SELECTION {
                hash: 0,
                sizeofSelect: 0,
                pcrSelect: [0; 4],
            }; 16],
        };
        let spec = PcrSpec {
            alg: self.alg,
            pcrs: only.map(|p| vec![p]).unwrap_or_else(|| self.pcrs.clone()),
        };
        let b = spec.selection_bytes();
        tpml.pcrSelections[0].hash = self.alg;
        tpml.pcrSelections[0].sizeofSelect = 3;
        tpml.pcrSelections[0].pcrSelect[..3].copy_from_slice(&b[7..10]);
        PcrSelectionList::try_from(tpml)
    }
}

/// The `TPM2_PolicyPCR` parameter area the key file records: `TPM2B_DIGEST pcrDigest ‖ TPML_PCR_SELECTION`.
fn policy_pcr_params(pcr_digest: &[u8], spec: &PcrSpec) -> Vec<u8> {
    let mut out = (pcr_digest.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(pcr_digest);
    out.extend(spec.selection_bytes());
    out
}

/// The SHA-256 policy digest the TPM will compute when `commands` run in order (TPM 2.0 Part 3):
///
/// ```text
/// start:           D = 0^32
/// PolicyPCR:       D = SHA256(D ‖ TPM_CC_PolicyPCR ‖ pcrs ‖ pcrDigest)
/// PolicyAuthValue: D = SHA256(D ‖ TPM_CC_PolicyAuthValue)
/// ```
fn policy_digest(commands: &[PolicyCommand]) -> Result<[u8; 32], Error> {
    let mut d = [0u8; 32];
    for c in commands {
        let mut h = Sha256::new();
        h.update(d);
        h.update(c.code.to_be_bytes());
        match c.code {
            CC_POLICY_PCR => {
                // The parameter area is pcrDigest (TPM2B) then pcrs; the policy hash takes them the
                // other way round and without the digest's size.
                let n = c
                    .params
                    .get(..2)
                    .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
                    .ok_or_else(|| Error::PolicyDigest("malformed PolicyPCR parameters".into()))?;
                let digest = c
                    .params
                    .get(2..2 + n)
                    .ok_or_else(|| Error::PolicyDigest("malformed PolicyPCR parameters".into()))?;
                h.update(&c.params[2 + n..]);
                h.update(digest);
            }
            CC_POLICY_AUTH_VALUE => {}
            other => {
                return Err(Error::PolicyDigest(format!(
                    "policy command {other:#x} is not supported"
                )));
            }
        }
        d = h.finalize().into();
    }
    Ok(d)
}

/// A persistent handle in the owner's range, from `0x81……` (with or without `handle:`).
fn parse_persistent(text: &str) -> Result<u32, Error> {
    let t = text.trim_start_matches("handle:");
    let v = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .filter(|v| v >> 24 == 0x81)
        .ok_or_else(|| Error::PersistentHandleSyntax(text.to_string()))?;
    Ok(v)
}

/// The key's public template.
fn template(kind: KeyKind, auth_policy: Option<[u8; 32]>) -> tss_esapi::Result<Public> {
    let attrs = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(auth_policy.is_none())
        .with_sign_encrypt(true)
        .with_decrypt(false)
        .with_restricted(false)
        .build()?;
    let b = PublicBuilder::new()
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attrs)
        .with_auth_policy(match auth_policy {
            Some(d) => Digest::try_from(d.to_vec())?,
            None => Digest::default(),
        });
    match kind {
        KeyKind::Ec(curve) => b
            .with_public_algorithm(PublicAlgorithm::Ecc)
            .with_ecc_parameters(
                PublicEccParametersBuilder::new()
                    // tss-esapi refuses a NULL scheme on ECC signing keys; every CreateSession
                    // signature is ECDSA over SHA-256, whatever the curve.
                    .with_ecc_scheme(EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256)))
                    .with_curve(match curve {
                        Curve::P256 => EccCurve::NistP256,
                        Curve::P384 => EccCurve::NistP384,
                        Curve::P521 => EccCurve::NistP521,
                    })
                    .with_key_derivation_function_scheme(KeyDerivationFunctionScheme::Null)
                    .with_is_signing_key(true)
                    .with_is_decryption_key(false)
                    .with_restricted(false)
                    .build()?,
            )
            .with_ecc_unique_identifier(EccPoint::default())
            .build(),
        KeyKind::Rsa { bits } => b
            .with_public_algorithm(PublicAlgorithm::Rsa)
            .with_rsa_parameters(
                PublicRsaParametersBuilder::new()
                    .with_scheme(RsaScheme::Null)
                    .with_key_bits(if bits == 3072 {
                        RsaKeyBits::Rsa3072
                    } else {
                        RsaKeyBits::Rsa2048
                    })
                    .with_exponent(RsaExponent::default())
                    .with_is_signing_key(true)
                    .with_is_decryption_key(false)
                    .with_restricted(false)
                    .build()?,
            )
            .with_rsa_unique_identifier(PublicKeyRsa::default())
            .build(),
        // TPM 2.0 has no ML-DSA yet (TPM_ALG_MLDSA is only in library specification 1.85).
        KeyKind::MlDsa(_) => Err(tss_esapi::Error::WrapperError(
            tss_esapi::WrapperErrorKind::UnsupportedParam,
        )),
    }
}

/// A TPM2B: 2-byte big-endian size, then the bytes.
fn tpm2b(bytes: &[u8]) -> Vec<u8> {
    let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// Where a new key goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A new `TSS2 PRIVATE KEY` file: [`Generated::key_file`] is its content, for the caller to write.
    File(PathBuf),
    /// A persistent handle in the owner's range, `0x81……` with or without `handle:`.
    Persistent(String),
}

/// What key to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec {
    /// Algorithm and size: EC P-256/P-384/P-521 or RSA 2048/3072.
    pub kind: KeyKind,
    /// The persistent parent (`0x81……`); `None`: the owner hierarchy's standard SRK.
    pub parent: Option<String>,
    /// A PCR policy, `BANK:LIST` such as `sha256:0,7` (key files only).
    pub pcrs: Option<String>,
}

/// A key created in the TPM.
#[derive(Debug)]
pub struct Generated {
    /// Its public key.
    pub public: PublicKey,
    /// For [`Destination::File`]: the `TSS2 PRIVATE KEY` PEM (public area and the private part
    /// wrapped by the parent; nothing secret outside this TPM).
    pub key_file: Option<String>,
}

/// Creates a signing key in the TPM for `dest`, with the TCTI and passwords of `opts` (its
/// `private_key` names the key in messages). A persistent key is in place when this returns; a key
/// file's content is returned for the caller to write.
pub fn generate(dest: &Destination, spec: &KeySpec, opts: &KeyOptions) -> Result<Generated, Error> {
    let target_text = match dest {
        Destination::File(p) => p.display().to_string(),
        Destination::Persistent(h) => h.clone(),
    };
    // Everything that can be checked without the TPM is checked first.
    let persist = match dest {
        Destination::Persistent(h) => Some(parse_persistent(h)?),
        Destination::File(_) => None,
    };
    let parent_handle = match &spec.parent {
        Some(h) => parse_persistent(h)?,
        None => parent::OWNER,
    };
    let pcrs = spec.pcrs.as_deref().map(parse_pcrs).transpose()?;
    if pcrs.is_some() && persist.is_some() {
        // The policy commands live in the key file; a persistent handle has nowhere to keep them.
        return Err(Error::PcrPolicyNeedsKeyFile);
    }
    let key_password = auth::key_password(opts, NeedsAuth::No, &target_text)?;
    auth::check_len(&key_password, "TPM key password")?;
    let parent_password = auth::parent_password(opts)?;

    let mut tpm = Tpm::open_resolved(opts)?;
    if let Some(h) = persist {
        refuse_occupied(&mut tpm, h)?;
    }
    let mut policy = Vec::new();
    if let Some(spec) = &pcrs {
        let digest = pcr_digest(&mut tpm, spec)?;
        policy.push(PolicyCommand {
            code: CC_POLICY_PCR,
            params: policy_pcr_params(&digest, spec),
        });
        if !key_password.is_empty() {
            policy.push(PolicyCommand {
                code: CC_POLICY_AUTH_VALUE,
                params: Vec::new(),
            });
        }
    }
    let auth_policy = if policy.is_empty() {
        None
    } else {
        Some(policy_digest(&policy)?)
    };
    let template = template(spec.kind, auth_policy).map_err(|e| Error::Prepare {
        what: "building the key template".into(),
        source: e,
    })?;

    let parent = parent::open(&mut tpm, parent_handle, SrkKind::EccP256, &parent_password)?;
    let result = create_and_store(
        &mut tpm,
        &parent,
        template,
        &key_password,
        dest,
        persist,
        &parent_password,
        policy,
        parent_handle,
    );
    // The key's outcome is what matters; a failure to tidy up only leaves a transient object behind,
    // which the TPM drops at the next reset.
    if parent.owns_session {
        let _ = auth::flush_session(&mut tpm, parent.session, &parent.desc);
    }
    let _ = parent.release(&mut tpm);
    result
}

/// Fails unless the persistent handle is free.
fn refuse_occupied(tpm: &mut Tpm, handle: u32) -> Result<(), Error> {
    let desc = format!("persistent handle {handle:#010x}");
    let th = TpmHandle::try_from(handle).map_err(|e| Error::Prepare {
        what: desc.clone(),
        source: e,
    })?;
    // TPM_RC_HANDLE is the expected answer for a free handle; any other failure is reported
    // rather than taken for "free".
    match tpm.run("TPM2_ReadPublic", &desc, move |c| {
        c.execute_without_session(|c| c.tr_from_tpm_public(th))
    }) {
        Ok(mut obj) => {
            let _ = tpm.local("Esys_TR_Close", &desc, move |c| c.tr_close(&mut obj));
            Err(Error::HandleOccupied { handle })
        }
        Err(e) if e.is_absent_handle() => Ok(()),
        Err(e) => Err(e),
    }
}

/// SHA-256 over the current values of the selected PCRs, in ascending order.
fn pcr_digest(tpm: &mut Tpm, spec: &PcrSpec) -> Result<Vec<u8>, Error> {
    let mut h = Sha256::new();
    for &p in &spec.pcrs {
        let sel = spec.tss_selection(Some(p)).map_err(|e| Error::Prepare {
            what: format!("selecting PCR {p}"),
            source: e,
        })?;
        let (_, _, values) = tpm.run("TPM2_PCR_Read", &format!("PCR {p}"), move |c| {
            c.execute_without_session(|c| c.pcr_read(sel))
        })?;
        let v = values.value().first().ok_or(Error::NoSuchPcr { pcr: p })?;
        h.update(v.value());
    }
    Ok(h.finalize().to_vec())
}

/// A salted HMAC session with parameter encryption, so the key password in TPM2_Create's
/// inSensitive is never on the bus in the clear. Reuses the parent's own session when it has one.
fn create_session(tpm: &mut Tpm, parent: &Parent) -> Result<(AuthSession, bool), Error> {
    let (session, ours) = if parent.owns_session {
        (parent.session, false)
    } else {
        (
            auth::hmac_session(tpm, Some(parent.handle), &parent.desc)?,
            true,
        )
    };
    let (attrs, mask) = SessionAttributesBuilder::new()
        .with_continue_session(true)
        .with_decrypt(true)
        .build();
    tpm.local("Esys_TRSess_SetAttributes", &parent.desc, move |c| {
        c.tr_sess_set_attributes(session, attrs, mask)
    })?;
    Ok((session, ours))
}

#[allow(clippy::too_many_arguments)]
fn create_and_store(
    tpm: &mut Tpm,
    parent: &Parent,
    template: Public,
    key_password: &Secret,
    dest: &Destination,
    persist: Option<u32>,
    owner_password: &Secret,
    policy: Vec<PolicyCommand>,
    parent_handle: u32,
) -> Result<Generated, Error> {
    let (session, ours) = create_session(tpm, parent)?;
    let key_auth = auth::auth_value(key_password, &parent.desc)?;
    let parent_key = parent.handle;
    let created = tpm.run("TPM2_Create", &parent.desc, move |c| {
        c.execute_with_session(Some(session), |c| {
            c.create(parent_key, template, Some(key_auth), None, None, None)
        })
    });
    if ours {
        let _ = auth::flush_session(tpm, session, &parent.desc);
    }
    let created = created?;
    let public = sign::key_info(&created.out_public)
        .map_err(Error::NewKeyUnusable)?
        .public;

    let mut key_file = None;
    match (dest, persist) {
        (Destination::File(_), _) => {
            let public_area = created.out_public.marshall().map_err(|e| Error::Prepare {
                what: "encoding the key's public area".into(),
                source: e,
            })?;
            let file = TpmKeyFile {
                empty_auth: key_password.is_empty(),
                policy,
                description: None,
                rsa_parent: false,
                parent: parent_handle,
                public: tpm2b(&public_area),
                private: tpm2b(created.out_private.value()),
            };
            key_file = Some(file.to_pem());
        }
        (_, Some(handle)) => {
            persist_key(tpm, parent, created, handle, owner_password, parent_handle)?
        }
        _ => {}
    }
    Ok(Generated { public, key_file })
}

/// Loads the new key and makes it persistent at `handle` (owner authorisation).
fn persist_key(
    tpm: &mut Tpm,
    parent: &Parent,
    created: tss_esapi::structures::CreateKeyResult,
    handle: u32,
    owner_password: &Secret,
    parent_handle: u32,
) -> Result<(), Error> {
    let desc = format!("persistent handle {handle:#010x}");
    let (parent_session, parent_key) = (parent.session, parent.handle);
    let loaded = tpm.run("TPM2_Load", &parent.desc, move |c| {
        c.execute_with_session(Some(parent_session), |c| {
            c.load(parent_key, created.out_private, created.out_public)
        })
    })?;
    let persistent = PersistentTpmHandle::new(handle).map_err(|e| Error::Prepare {
        what: desc.clone(),
        source: e,
    })?;
    // The owner hierarchy's auth is the parent password only when the parent is the owner SRK.
    let owner_auth = if parent_handle == parent::OWNER {
        owner_password.clone()
    } else {
        Secret::new(String::new())
    };
    let session = if owner_auth.is_empty() {
        AuthSession::Password
    } else {
        let auth = auth::auth_value(&owner_auth, "owner hierarchy")?;
        tpm.local("Esys_TR_SetAuth", "owner hierarchy", move |c| {
            c.tr_set_auth(ObjectHandle::Owner, auth)
        })?;
        auth::hmac_session(tpm, None, "owner hierarchy")?
    };
    let result = tpm.run("TPM2_EvictControl", &desc, move |c| {
        c.execute_with_session(Some(session), |c| {
            c.evict_control(
                Provision::Owner,
                ObjectHandle::from(loaded),
                Persistent::Persistent(persistent),
            )
        })
    });
    let _ = auth::flush_session(tpm, session, "owner hierarchy");
    let _ = tpm.run("TPM2_FlushContext", &desc, move |c| {
        c.flush_context(ObjectHandle::from(loaded))
    });
    let mut obj = result?;
    let _ = tpm.local("Esys_TR_Close", &desc, move |c| c.tr_close(&mut obj));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rolesanywhere_core::{Classify as _, ErrorClass};

    #[test]
    fn pcr_list_parses_with_default_bank() {
        assert_eq!(
            parse_pcrs("sha256:7,0,7").unwrap(),
            PcrSpec {
                alg: 0x0b,
                pcrs: vec![0, 7]
            }
        );
        assert_eq!(parse_pcrs("16").unwrap().alg, 0x0b);
        assert_eq!(parse_pcrs("SHA1:1").unwrap().alg, 0x04);
        for bad in ["md5:1", "sha256:", "sha256:24", "sha256:a"] {
            let e = parse_pcrs(bad).unwrap_err();
            assert!(matches!(e, Error::PcrSyntax { .. }), "{bad}");
            assert_eq!(e.class(), ErrorClass::Configuration, "{bad}");
        }
    }

    #[test]
    fn selection_marshals_a_three_byte_bitmap() {
        let s = parse_pcrs("sha256:0,7,16").unwrap();
        assert_eq!(
            s.selection_bytes(),
            [0, 0, 0, 1, 0x00, 0x0b, 3, 0x81, 0x00, 0x01]
        );
    }

    #[test]
    fn policy_digest_follows_the_tpm_formula() {
        // PolicyAuthValue alone: SHA256(0^32 ‖ 0000016B), the well-known value tpm2_policyauthvalue
        // prints.
        let d = policy_digest(&[PolicyCommand {
            code: CC_POLICY_AUTH_VALUE,
            params: vec![],
        }])
        .unwrap();
        assert_eq!(
            hex::encode(d),
            "8fcd2169ab92694e0c633f1ab772842b8241bbc20288981fc7ac1eddc1fddb0e"
        );
        let spec = parse_pcrs("sha256:0").unwrap();
        let pcr = [0x11u8; 32];
        let d = policy_digest(&[PolicyCommand {
            code: CC_POLICY_PCR,
            params: policy_pcr_params(&pcr, &spec),
        }])
        .unwrap();
        let mut h = Sha256::new();
        h.update([0u8; 32]);
        h.update([0, 0, 1, 0x7f]);
        h.update(spec.selection_bytes());
        h.update(pcr);
        assert_eq!(d.to_vec(), h.finalize().to_vec());
    }

    #[test]
    fn pcr_policies_are_refused_for_persistent_keys() {
        let spec = KeySpec {
            kind: KeyKind::Ec(Curve::P256),
            parent: None,
            pcrs: Some("sha256:7".into()),
        };
        // No TCTI is configured: the refusal comes before any TPM is looked for.
        let e = generate(
            &Destination::Persistent("handle:0x81000010".into()),
            &spec,
            &KeyOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(e, Error::PcrPolicyNeedsKeyFile), "{e:?}");
        assert_eq!(e.class(), ErrorClass::Configuration);
        assert!(e.to_string().contains("key file"), "{e}");
    }

    #[test]
    fn persistent_handles_must_be_in_the_owner_range() {
        assert_eq!(parse_persistent("0x81000010").unwrap(), 0x8100_0010);
        assert_eq!(parse_persistent("handle:0x81000010").unwrap(), 0x8100_0010);
        for bad in ["0x80000000", "81000010", "0xzz", "0x1081000010"] {
            assert!(parse_persistent(bad).is_err(), "{bad}");
        }
    }
}
