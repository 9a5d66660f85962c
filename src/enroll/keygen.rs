//! `enroll keygen`: create a key pair on the device and print its public key (PEM).
//!
//! Dispatch only: a `pkcs11:` target goes to the PKCS#11 backend's key management
//! ([`crate::signer::pkcs11::generate_key`]), a file or a persistent handle to the TPM backend
//! (`signer::tpm::generate`, reached through `signer::backends`). Nothing is ever overwritten: an
//! existing token object with the same id or label, an existing file or an occupied persistent
//! handle is an error.

use super::target::KeySource as Target;
use super::{Error, KeyType, KeygenArgs};
use crate::keys::{Curve, KeyKind, MlDsaSet};

impl KeyType {
    /// The kind of key this type creates.
    pub fn kind(self) -> KeyKind {
        match self {
            KeyType::EcP256 => KeyKind::Ec(Curve::P256),
            KeyType::EcP384 => KeyKind::Ec(Curve::P384),
            KeyType::Rsa2048 => KeyKind::Rsa { bits: 2048 },
            KeyType::Rsa3072 => KeyKind::Rsa { bits: 3072 },
            KeyType::MlDsa44 => KeyKind::MlDsa(MlDsaSet::MlDsa44),
            KeyType::MlDsa65 => KeyKind::MlDsa(MlDsaSet::MlDsa65),
            KeyType::MlDsa87 => KeyKind::MlDsa(MlDsaSet::MlDsa87),
        }
    }
}

/// The validated keygen target.
pub(crate) fn target(args: &KeygenArgs) -> Result<Target, Error> {
    let t = match (&args.private_key, &args.persist) {
        (Some(t), None) => Target::parse(t),
        (None, Some(h)) => Target::TpmHandle(format!("handle:{}", h.trim_start_matches("handle:"))),
        _ => {
            return Err(Error::Usage(
                "give either --private-key TARGET or --persist HANDLE".into(),
            ));
        }
    };
    if let Target::Pkcs11(uri) = &t {
        let tpm_only = [
            ("--tpm-parent", args.tpm_parent.is_some()),
            ("--tpm-pcrs", args.tpm_pcrs.is_some()),
            ("--tpm-key-password", args.device.tpm_key_password.is_some()),
            (
                "--tpm-key-password-file",
                args.device.tpm_key_password_file.is_some(),
            ),
        ];
        if let Some((flag, _)) = tpm_only.iter().find(|(_, given)| *given) {
            return Err(Error::Usage(format!(
                "{flag} is for TPM keys, but {} is a PKCS#11 token",
                crate::signer::pkcs11::redact_uri(uri)
            )));
        }
    } else if let KeyKind::MlDsa(set) = args.key_type.kind() {
        // Refused before any TPM is touched: TPMs do not do ML-DSA yet (docs/adr/0004).
        return Err(Error::Usage(format!(
            "--key-type {} needs a PKCS#11 token (pkcs11:… with CKM_ML_DSA_KEY_PAIR_GEN): TPMs do \
             not do ML-DSA yet",
            set.name().to_ascii_lowercase()
        )));
    }
    Ok(t)
}

/// `enroll keygen`.
pub fn run(args: &KeygenArgs, out: &mut dyn std::io::Write) -> Result<(), Error> {
    let public = match target(args)? {
        Target::Pkcs11(uri) => generate_pkcs11(&uri, args)?,
        t => generate_tpm(&t, args)?,
    };
    out.write_all(super::csr::public_key_pem(&public).as_bytes())
        .map_err(Error::Output)
}

/// The token's key management generates the pair; this front reports where it went.
fn generate_pkcs11(uri: &str, args: &KeygenArgs) -> Result<crate::keys::PublicKey, Error> {
    let key = crate::signer::pkcs11::generate_key(
        uri,
        args.device.pkcs11_lib.as_deref(),
        args.key_type.kind(),
    )?;
    crate::cli::stderr_line(&format!(
        "rolesanywhere-agent: generated {} key {}",
        key.public.kind(),
        key.uri
    ));
    Ok(key.public)
}

/// A TPM key through the backend's one generate call; a key file is written here, never over an
/// existing file (checked before the TPM is touched, and again by the no-replace write).
#[cfg(feature = "tpm")]
fn generate_tpm(t: &Target, args: &KeygenArgs) -> Result<crate::keys::PublicKey, Error> {
    use crate::signer::tpm::{Destination, KeySpec};
    let (dest, text) = match t {
        Target::File(p) => {
            if std::fs::symlink_metadata(p).is_ok() {
                return Err(Error::Exists {
                    path: p.clone(),
                    hint: "keygen never overwrites a key file; choose another name".into(),
                });
            }
            (Destination::File(p.clone()), p.display().to_string())
        }
        Target::TpmHandle(h) => (Destination::Persistent(h.clone()), h.clone()),
        Target::Pkcs11(u) => {
            return Err(Error::Usage(format!(
                "{} is not a TPM target",
                crate::signer::pkcs11::redact_uri(u)
            )));
        }
    };
    let spec = KeySpec {
        kind: args.key_type.kind(),
        parent: args.tpm_parent.clone(),
        pcrs: args.tpm_pcrs.clone(),
    };
    // The program's TPM backend (`signer::backends`): `rolesanywhere-agent` runs the companion
    // for a TPM target before it gets here.
    let Some(backend) = crate::signer::backends::tpm() else {
        return Err(crate::signer::Error::TpmNotLoaded(crate::text::arg(&text)).into());
    };
    let generated = backend.generate(
        &dest,
        &spec,
        &super::target::key_options(&text, &args.device),
    )?;
    if let (Destination::File(path), Some(pem)) = (&dest, &generated.key_file) {
        super::files::write_atomic(path, pem.as_bytes(), 0o600, super::files::Replace::Refuse)?;
    }
    Ok(generated.public)
}

#[cfg(not(feature = "tpm"))]
fn generate_tpm(t: &Target, _: &KeygenArgs) -> Result<crate::keys::PublicKey, Error> {
    Err(Error::TpmUnsupported(format!("{t:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(private_key: Option<&str>, persist: Option<&str>) -> KeygenArgs {
        KeygenArgs {
            private_key: private_key.map(str::to_string),
            persist: persist.map(str::to_string),
            key_type: KeyType::default(),
            tpm_parent: None,
            tpm_pcrs: None,
            device: Default::default(),
        }
    }

    #[test]
    fn persist_becomes_a_handle_target() {
        assert_eq!(
            target(&args(None, Some("0x81000010"))).unwrap(),
            Target::TpmHandle("handle:0x81000010".into())
        );
    }

    #[test]
    fn tpm_flags_with_a_token_target_are_usage_errors() {
        let mut a = args(Some("pkcs11:token=ra;object=k"), None);
        a.tpm_pcrs = Some("sha256:0".into());
        let e = target(&a).unwrap_err();
        assert!(e.is_usage() && e.to_string().contains("--tpm-pcrs"), "{e}");
    }

    #[test]
    fn ml_dsa_key_types_are_for_tokens_only() {
        for (kt, set) in [
            (KeyType::MlDsa44, MlDsaSet::MlDsa44),
            (KeyType::MlDsa65, MlDsaSet::MlDsa65),
            (KeyType::MlDsa87, MlDsaSet::MlDsa87),
        ] {
            assert_eq!(kt.kind(), KeyKind::MlDsa(set));
            let mut a = args(Some("pkcs11:token=ra;object=k"), None);
            a.key_type = kt;
            assert!(target(&a).is_ok());
            for tpm in [args(Some("key.tss"), None), args(None, Some("0x81000010"))] {
                let mut a = tpm;
                a.key_type = kt;
                let e = target(&a).unwrap_err();
                assert!(e.is_usage(), "{e}");
                let text = e.to_string();
                assert!(
                    text.contains(&set.name().to_ascii_lowercase())
                        && text.contains("TPMs do not do ML-DSA yet"),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn usage_errors_do_not_repeat_the_pin_value() {
        let mut a = args(Some("pkcs11:token=ra;object=k?pin-value=hunter2"), None);
        a.tpm_pcrs = Some("sha256:0".into());
        let e = target(&a).unwrap_err().to_string();
        assert!(
            !e.contains("hunter2") && e.contains("pin-value=<redacted>"),
            "{e}"
        );
    }
}
