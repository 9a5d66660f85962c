//! `enroll install-cert`: check an issued certificate against the device key, store it, print the profile.
//!
//! Refuses a certificate for another key and a chain that does not link up. Warns (stderr) about what
//! Roles Anywhere will refuse at CreateSession time, so the user learns it at installation instead of
//! from an `AccessDeniedException` later. Storage: a `pkcs11:` key gets a `CKO_CERTIFICATE` object
//! with its `CKA_ID` and label; a key file gets `KEY.cert.pem` beside it (0644, atomic); a `handle:` key
//! needs `--out`.

use super::profile::{Profile, redact_uri};
use super::target::{self, Target};
use super::{Error, InstallCertArgs, files};
use crate::certs::{self, Certificate};
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// Reads the first certificate of a PEM file (or of a DER file).
pub fn read_certificate(path: &Path) -> Result<Certificate, Error> {
    let data = std::fs::read(path).map_err(|source| Error::Read {
        path: path.into(),
        source,
    })?;
    let parsed = if data.starts_with(&[0x30]) {
        Certificate::from_der(data)
    } else {
        certs::parse_pem_bundle(&data, &crate::text::path(path)).map(|mut c| c.remove(0))
    };
    parsed.map_err(|source| Error::Certificate {
        path: path.into(),
        source,
    })
}

/// What Roles Anywhere would refuse about this leaf certificate at `now` (the check lives in
/// [`certs::leaf_problems`], shared with CreateSession's refusal hints).
pub fn warnings(cert: &Certificate, now: OffsetDateTime) -> Vec<String> {
    certs::leaf_problems(cert, now)
        .iter()
        .map(|p| format!("it {p}"))
        .collect()
}

/// Where a key file's certificate goes by default: `KEY.cert.pem` (a trailing `.pem` of the key file's
/// name is dropped first, so `host.tss2.pem` gets `host.tss2.cert.pem`).
pub fn default_certificate_path(key: &Path) -> PathBuf {
    let name = key
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".pem").unwrap_or(&name);
    key.with_file_name(format!("{stem}.cert.pem"))
}

fn absolute(p: &Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

/// `enroll install-cert`.
pub fn run(args: &InstallCertArgs, out: &mut dyn std::io::Write) -> Result<(), Error> {
    let target = Target::parse(&args.private_key);
    if matches!(target, Target::TpmHandle(_)) && args.out.is_none() {
        return Err(Error::Usage(format!(
            "{} is a persistent TPM key with no file beside it: give --out FILE for the certificate",
            crate::text::arg(&args.private_key)
        )));
    }
    let leaf = read_certificate(&args.certificate)?;

    // The device key first: nothing is stored, and no warning printed, for a foreign certificate.
    let device = match &target {
        Target::Pkcs11(uri) => Device::Token(Box::new(super::keygen_pkcs11::open_for_install(
            uri,
            &args.device,
        )?)),
        Target::TpmHandle(h) => Device::Handle(
            h.clone(),
            target::open_signer(&args.private_key, &args.device)?,
        ),
        Target::File(p) => Device::File(
            p.clone(),
            target::open_signer(&args.private_key, &args.device)?,
        ),
    };
    let (key, key_desc) = match &device {
        Device::Token(k) => (k.public_key(), k.uri().to_string()),
        Device::Handle(_, s) | Device::File(_, s) => (s.public_key(), s.describe()),
    };
    if key != leaf.public_key() {
        return Err(crate::signer::Error::CertificateKeyMismatch {
            key: key_desc,
            key_fp: key.fingerprint(),
            certificate: format!(
                "{} ({})",
                crate::text::path(&args.certificate),
                leaf.subject()
            ),
            cert_fp: leaf.public_key().fingerprint(),
        }
        .into());
    }

    let chain = match &args.intermediates {
        Some(p) => {
            let chain_err = |source| Error::Chain {
                path: args.certificate.clone(),
                source,
            };
            let candidates = certs::load_pem_file(p).map_err(chain_err)?;
            // A root given as "intermediate" is dropped from the chain but did issue the leaf.
            let issuer_given = candidates.iter().any(|c| leaf.is_issued_by(c));
            let chain = certs::build_chain(&leaf, candidates).map_err(chain_err)?;
            if chain.is_empty() && !issuer_given {
                crate::cli::stderr_line(&format!(
                    "rolesanywhere-agent: warning: none of the certificates in {} issued {}; \
                     check --intermediates",
                    crate::text::path(p),
                    crate::text::path(&args.certificate)
                ));
            }
            chain
        }
        None => Vec::new(),
    };

    for w in warnings(&leaf, OffsetDateTime::now_utc()) {
        crate::cli::stderr_line(&format!(
            "rolesanywhere-agent: warning: {}: {w}; Roles Anywhere will refuse it",
            crate::text::path(&args.certificate)
        ));
    }

    let replace = if args.replace {
        files::Replace::Allow
    } else {
        files::Replace::Refuse
    };
    // Leaf first, then the chain: `--certificate FILE` treats the extra certificates as the chain.
    let mut pem_text = super::csr::pem("CERTIFICATE", leaf.der());
    for c in &chain {
        pem_text.push_str(&super::csr::pem("CERTIFICATE", c.der()));
    }
    let write_file = |path: &Path| -> Result<(), Error> {
        files::write_atomic(path, pem_text.as_bytes(), 0o644, replace).map_err(|e| match e {
            Error::Exists { path, .. } => Error::Exists {
                path,
                hint: "use --replace to install a renewed certificate".into(),
            },
            e => e,
        })
    };

    let mut profile = Profile {
        name: args.profile_name.clone(),
        trust_anchor_arn: args.trust_anchor_arn.clone(),
        profile_arn: args.profile_arn.clone(),
        role_arn: args.role_arn.clone(),
        ..Profile::default()
    };
    match &device {
        Device::Token(k) => {
            let stored = k.store_certificate(&leaf, args.replace)?;
            let how = if stored.written {
                "stored the certificate on the token as"
            } else {
                "the certificate is already on the token as"
            };
            crate::cli::stderr_line(&format!(
                "rolesanywhere-agent: {how} {}",
                stored.certificate_uri
            ));
            profile.certificate = redact_uri(&stored.certificate_uri);
            profile.private_key = redact_uri(&stored.private_key_uri);
            if let Some(p) = &args.out {
                write_file(p)?;
            }
            if let Some(p) = &args.intermediates
                && !chain.is_empty()
            {
                profile.intermediates = Some(absolute(p));
            }
            if crate::text::pin_value_at(&args.private_key).is_some() {
                profile.notes.push(
                    "the PIN was left out: add pin-source=file:/PATH to the URIs or set \
                     ROLESANYWHERE_PKCS11_PIN"
                        .into(),
                );
            }
        }
        Device::Handle(h, _) => {
            let p = args.out.as_deref().unwrap_or(Path::new(""));
            write_file(p)?;
            profile.certificate = absolute(p);
            profile.private_key = h.clone();
        }
        Device::File(key, _) => {
            let p = args
                .out
                .clone()
                .unwrap_or_else(|| default_certificate_path(key));
            write_file(&p)?;
            crate::cli::stderr_line(&format!(
                "rolesanywhere-agent: wrote {}",
                crate::text::path(&p)
            ));
            profile.certificate = absolute(&p);
            profile.private_key = absolute(key);
        }
    }
    profile.device_flags = device_flags(args, &mut profile.notes);
    out.write_all(profile.render().as_bytes())
        .map_err(Error::Output)
}

/// The opened device key.
enum Device {
    /// A token key with its read-write session (the certificate goes on the token).
    Token(Box<super::keygen_pkcs11::TokenKey>),
    /// A persistent TPM key (`handle:…`).
    Handle(String, Box<dyn crate::signer::Signer>),
    /// A key file (TPM or plain).
    File(PathBuf, Box<dyn crate::signer::Signer>),
}

/// The device flags the signing command needs, as given at installation (never secret values).
fn device_flags(args: &InstallCertArgs, notes: &mut Vec<String>) -> Vec<(String, Option<String>)> {
    let d = &args.device;
    let mut f = Vec::new();
    if let Some(p) = &d.pkcs11_lib {
        f.push(("--pkcs11-lib".into(), Some(absolute(p))));
    }
    if d.reuse_pin {
        f.push(("--reuse-pin".into(), None));
    }
    if let Some(t) = &d.tpm_tcti {
        f.push(("--tpm-tcti".into(), Some(t.clone())));
    }
    if let Some(p) = &d.tpm_key_password_file {
        f.push(("--tpm-key-password-file".into(), Some(absolute(p))));
    } else if d.tpm_key_password.is_some() {
        notes.push(
            "the TPM key password was left out: add --tpm-key-password-file FILE (mode 0600)"
                .into(),
        );
    } else if d.no_tpm_key_password {
        f.push(("--no-tpm-key-password".into(), None));
    }
    if let Some(p) = &d.tpm_parent_password_file {
        f.push(("--tpm-parent-password-file".into(), Some(absolute(p))));
    } else if d.tpm_parent_password.is_some() {
        notes.push(
            "the TPM parent password was left out: add --tpm-parent-password-file FILE (mode 0600)"
                .into(),
        );
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Makes a certificate with openssl: `exts` are `-addext` values, `days` may be negative-ish via
    /// explicit dates.
    fn openssl_cert(dir: &Path, extra: &[&str]) -> Certificate {
        let key = dir.join("ca.key");
        let cert = dir.join("c.pem");
        let mut cmd = Command::new("openssl");
        cmd.args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-subj", "/CN=t"])
        .args(extra);
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{o:?}");
        read_certificate(&cert).unwrap()
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    #[test]
    fn good_leaf_has_no_warnings() {
        let d = tempfile::tempdir().unwrap();
        let der = openssl_cert(
            d.path(),
            &[
                "-days",
                "30",
                "-addext",
                "basicConstraints=critical,CA:FALSE",
                "-addext",
                "keyUsage=critical,digitalSignature",
            ],
        );
        assert_eq!(warnings(&der, now()), Vec::<String>::new());
    }

    #[test]
    fn warns_about_ca_missing_digital_signature_sha1_and_validity() {
        let d = tempfile::tempdir().unwrap();
        let der = openssl_cert(
            d.path(),
            &[
                "-days",
                "1",
                "-sha1",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign",
            ],
        );
        let w = warnings(&der, now()).join("\n");
        for needle in ["CA:TRUE", "digitalSignature", "ecdsa-with-SHA1"] {
            assert!(w.contains(needle), "missing {needle}: {w}");
        }
        assert!(
            !w.contains("expired") && !w.contains("not valid before"),
            "{w}"
        );
        let w = warnings(&der, now() + time::Duration::days(3)).join("\n");
        assert!(w.contains("expired"), "{w}");
        let w = warnings(&der, now() - time::Duration::days(1)).join("\n");
        assert!(w.contains("not valid before"), "{w}");
    }

    #[test]
    fn reads_pem_with_other_blocks_first_and_der() {
        let d = tempfile::tempdir().unwrap();
        let der = openssl_cert(d.path(), &["-days", "1"]);
        let mixed = d.path().join("mixed.pem");
        let mut text = super::super::csr::pem("PUBLIC KEY", &[0x30, 0x00]);
        text.push_str(&super::super::csr::pem("CERTIFICATE", der.der()));
        std::fs::write(&mixed, text).unwrap();
        assert_eq!(read_certificate(&mixed).unwrap().der(), der.der());
        let derf = d.path().join("c.der");
        std::fs::write(&derf, der.der()).unwrap();
        assert_eq!(read_certificate(&derf).unwrap().der(), der.der());
        let junk = d.path().join("junk");
        std::fs::write(&junk, "hello").unwrap();
        let e = read_certificate(&junk).unwrap_err().to_string();
        assert!(e.contains("junk"), "{e}");
    }

    #[test]
    fn certificate_path_defaults_beside_the_key() {
        assert_eq!(
            default_certificate_path(Path::new("/etc/ra/host.tss2.pem")),
            Path::new("/etc/ra/host.tss2.cert.pem")
        );
        assert_eq!(
            default_certificate_path(Path::new("k.key")),
            Path::new("k.key.cert.pem")
        );
    }

    #[test]
    fn handle_keys_need_out() {
        let args = InstallCertArgs {
            private_key: "handle:0x81000010".into(),
            certificate: "c.pem".into(),
            intermediates: None,
            out: None,
            replace: false,
            trust_anchor_arn: None,
            profile_arn: None,
            role_arn: None,
            profile_name: "p".into(),
            device: Default::default(),
        };
        let e = run(&args, &mut Vec::new()).unwrap_err();
        assert!(e.is_usage() && e.to_string().contains("--out"), "{e}");
    }

    fn sh(cmd: &mut Command) {
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{o:?}");
    }

    /// A key file, a CSR from it through `enroll csr`, and a certificate for it signed by an openssl CA.
    fn key_file_enrollment(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
        let key = dir.join("host.key.pem");
        sh(Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
            ])
            .arg(&key));
        let csr = dir.join("host.csr");
        let args = super::super::CsrArgs {
            private_key: key.display().to_string(),
            subject: "CN=host".into(),
            san: vec!["dns:host.example".into()],
            out: csr.clone(),
            device: Default::default(),
        };
        super::super::csr::run(&args, &mut Vec::new()).unwrap();
        sh(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-subj", "/CN=Test CA", "-days", "2"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign"])
            .arg("-keyout")
            .arg(dir.join("ca.key"))
            .arg("-out")
            .arg(dir.join("ca.pem")));
        let cert = dir.join("host.pem");
        sh(Command::new("openssl")
            .args([
                "x509",
                "-req",
                "-days",
                "1",
                "-copy_extensions",
                "copy",
                "-in",
            ])
            .arg(&csr)
            .arg("-CA")
            .arg(dir.join("ca.pem"))
            .arg("-CAkey")
            .arg(dir.join("ca.key"))
            .arg("-out")
            .arg(&cert));
        (key, csr, cert)
    }

    fn install_args(key: &Path, cert: &Path) -> InstallCertArgs {
        InstallCertArgs {
            private_key: key.display().to_string(),
            certificate: cert.to_path_buf(),
            intermediates: None,
            out: None,
            replace: false,
            trust_anchor_arn: None,
            profile_arn: None,
            role_arn: Some("arn:aws:iam::123456789012:role/r".into()),
            profile_name: "host".into(),
            device: Default::default(),
        }
    }

    #[test]
    fn key_file_certificate_goes_beside_the_key_and_the_profile_names_both() {
        use std::os::unix::fs::PermissionsExt as _;
        let d = tempfile::tempdir().unwrap();
        let (key, _, cert) = key_file_enrollment(d.path());
        let mut out = Vec::new();
        run(&install_args(&key, &cert), &mut out).unwrap();
        let installed = d.path().join("host.key.cert.pem");
        let meta = std::fs::metadata(&installed).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o644);
        assert_eq!(
            read_certificate(&installed).unwrap().der(),
            read_certificate(&cert).unwrap().der()
        );
        let profile = String::from_utf8(out).unwrap();
        let want = format!(
            "[profile host]\ncredential_process = rolesanywhere-agent credential-process \
             --certificate {} --private-key {} --trust-anchor-arn <TRUST_ANCHOR_ARN> \
             --profile-arn <PROFILE_ARN> --role-arn arn:aws:iam::123456789012:role/r\n",
            installed.display(),
            key.display()
        );
        assert!(profile.ends_with(&want), "{profile}");

        // A renewal needs --replace; the file is untouched until then.
        let e = run(&install_args(&key, &cert), &mut Vec::new()).unwrap_err();
        assert!(e.is_usage() && e.to_string().contains("--replace"), "{e}");
        let mut again = install_args(&key, &cert);
        again.replace = true;
        run(&again, &mut Vec::new()).unwrap();
    }

    #[test]
    fn a_certificate_for_another_key_is_refused_and_nothing_is_written() {
        let d = tempfile::tempdir().unwrap();
        let (key, _, _) = key_file_enrollment(d.path());
        // The CA's own certificate: valid, but for the CA's key.
        let e = run(
            &install_args(&key, &d.path().join("ca.pem")),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Signer(crate::signer::Error::CertificateKeyMismatch { .. })
            ),
            "{e}"
        );
        assert!(e.is_usage());
        assert!(!d.path().join("host.key.cert.pem").exists());
    }
}
