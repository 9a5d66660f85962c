//! `enroll install-cert`: check an issued certificate against the device key, store it, print the profile.
//!
//! Refuses a certificate for another key and a chain that does not link up. Warns (stderr) about what
//! Roles Anywhere will refuse at CreateSession time, so the user learns it at installation instead of
//! from an `AccessDeniedException` later. Storage: a `pkcs11:` key gets a `CKO_CERTIFICATE` object
//! with its `CKA_ID` and label; a key file gets `KEY.cert.pem` beside it (0644, atomic); a `handle:` key
//! needs `--out`. Then prints the profile, with what `credential-process` needs to open the key as
//! this command did (this program's absolute path, the module or TCTI actually used, password
//! files), and with `--aws-config` writes it into the AWS config file ([`super::awsconfig`]).

use super::profile::{Profile, redact_uri};
use super::target::{self, KeySource as Target};
use super::{Error, InstallCertArgs, files};
use crate::certs::{self, Certificate};
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// Reads the first certificate of a PEM file (or of a DER file).
pub fn read_certificate(path: &Path) -> Result<Certificate, Error> {
    let data =
        crate::userfile::read(path, crate::userfile::Kind::Certificates).map_err(|source| {
            Error::Read {
                path: path.into(),
                source,
            }
        })?;
    let parsed = if data.starts_with(&[0x30]) {
        Certificate::from_der(data.to_vec())
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
    let aws_config = check_profile_args(args, &|name| std::env::var_os(name))?;
    let leaf = read_certificate(&args.certificate)?;

    // The device key first: nothing is stored, and no warning printed, for a foreign certificate.
    let device = match &target {
        Target::Pkcs11(uri) => Device::Token(Box::new(crate::signer::pkcs11::open_for_install(
            uri,
            args.device.pkcs11_lib.as_deref(),
        )?)),
        Target::TpmHandle(h) => Device::Handle(
            h.clone(),
            target::open_signer(&args.private_key, &args.device)?,
        ),
        Target::File(p) => Device::File(
            p.clone(),
            target::open_signer(&args.private_key, &args.device)?,
            crate::userfile::read(p, crate::userfile::Kind::PrivateKey)
                .is_ok_and(|d| crate::signer::identity::is_tss2_pem(&d)),
        ),
    };
    let (key, key_desc) = match &device {
        Device::Token(k) => (k.public_key(), k.uri().to_string()),
        Device::Handle(_, s) | Device::File(_, s, _) => (s.public_key(), s.describe()),
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
        program: program_path(),
        trust_anchor_arn: args.trust_anchor_arn.clone(),
        profile_arn: args.profile_arn.clone(),
        role_arn: args.role_arn.clone(),
        endpoint: args.endpoint.clone(),
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
            // The chain goes where the identity lives, not where --intermediates was read from
            // (often removable media): the signing path takes chain candidates from the token.
            let stored_chain = if chain.is_empty() {
                Ok(Vec::new())
            } else {
                k.store_ca_certificates(&chain).map_err(Error::from)
            };
            match stored_chain {
                Ok(cas) => {
                    for ca in cas {
                        let (subject, uri) = (ca.subject.escape_debug(), redact_uri(&ca.uri));
                        if ca.written {
                            eprintln!(
                                "rolesanywhere-agent: stored the intermediate CA certificate \
                                 {subject} on the token as {uri}"
                            );
                        } else {
                            eprintln!(
                                "rolesanywhere-agent: the intermediate CA certificate {subject} \
                                 is already on the token as {uri}"
                            );
                        }
                    }
                }
                // A token that cannot hold it (a YubiKey's PIV applet): the --out file has it.
                Err(e) => match &args.out {
                    Some(p) => {
                        let why = match &e {
                            Error::Pkcs11Backend(crate::signer::pkcs11::Error::Call {
                                call,
                                ..
                            }) => call.to_string(),
                            e => e.to_string(),
                        };
                        eprintln!(
                            "rolesanywhere-agent: warning: the token did not store the \
                             intermediate CA certificates ({why}); the chain stays in {}, which \
                             the profile names as --intermediates",
                            p.display()
                        );
                        profile.intermediates = Some(absolute(p));
                    }
                    None => return Err(e),
                },
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
        Device::File(key, _, _) => {
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
    profile.device_flags = device_flags(args, &device, &mut profile.notes)?;
    let written = match &aws_config {
        Some(path) => {
            write_aws_config(path, &profile)?;
            for n in &profile.notes {
                eprintln!("rolesanywhere-agent: note: {n}");
            }
            Some(path.display().to_string())
        }
        None => None,
    };
    out.write_all(profile.render(written.as_deref()).as_bytes())
        .map_err(Error::Output)
}

/// Checks the profile options before anything is opened or stored, and returns the AWS config file
/// to write (if `--aws-config` was given); `env` looks up environment variables.
fn check_profile_args(
    args: &InstallCertArgs,
    env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
) -> Result<Option<PathBuf>, Error> {
    if !super::awsconfig::is_plain_profile_name(&args.profile_name) {
        return Err(Error::Usage(format!(
            "--profile-name {:?} cannot be a config file section: use letters, digits and - _ . @ + = , : /",
            args.profile_name
        )));
    }
    let arns = [
        (&args.trust_anchor_arn, crate::arn::ArnKind::TrustAnchor),
        (&args.profile_arn, crate::arn::ArnKind::Profile),
        (&args.role_arn, crate::arn::ArnKind::Role),
    ];
    for (value, kind) in &arns {
        if let Some(v) = value {
            crate::arn::parse(v, *kind).map_err(|e| Error::Usage(e.to_string()))?;
        }
    }
    if let Some(e) = &args.endpoint {
        crate::session::Endpoint::parse(e).map_err(|e| Error::Usage(e.to_string()))?;
    }
    let Some(file) = &args.aws_config else {
        return Ok(None);
    };
    let missing: Vec<&str> = arns
        .iter()
        .filter(|(v, _)| v.is_none())
        .map(|(_, k)| k.flag())
        .collect();
    if !missing.is_empty() {
        return Err(Error::Usage(format!(
            "--aws-config writes a working profile, which needs {}",
            missing.join(", ")
        )));
    }
    let nonempty = |name: &str| env(name).filter(|v| !v.is_empty());
    let path = match file {
        Some(f) if !f.as_os_str().is_empty() => f.clone(),
        // As the SDKs find it: AWS_CONFIG_FILE (with a leading ~ expanded), else ~/.aws/config.
        _ => match (nonempty("AWS_CONFIG_FILE"), nonempty("HOME")) {
            (Some(f), home) => match (Path::new(&f).strip_prefix("~"), home) {
                (Ok(rest), Some(h)) => PathBuf::from(h).join(rest),
                _ => PathBuf::from(f),
            },
            (None, Some(h)) => PathBuf::from(h).join(".aws/config"),
            (None, None) => {
                return Err(Error::Usage(
                    "--aws-config without FILE needs AWS_CONFIG_FILE or HOME: give the file".into(),
                ));
            }
        },
    };
    Ok(Some(path))
}

/// This program's own absolute path, for `credential_process`: SDKs run it with their environment,
/// whose `PATH` need not find it (and may find another version first).
fn program_path() -> String {
    // The front when this is `rolesanywhere-agent-tpm` run for a TPM key: users call the front.
    let found = crate::cli::companion::front_program().and_then(|p| p.canonicalize());
    match found.as_ref().ok().and_then(|p| p.to_str()) {
        Some(p) => p.to_string(),
        None => {
            eprintln!(
                "rolesanywhere-agent: warning: cannot tell this program's own path; the profile \
                 runs `rolesanywhere-agent` from the PATH the SDK has"
            );
            "rolesanywhere-agent".into()
        }
    }
}

/// Writes the profile into the AWS config file `path` (see [`super::awsconfig`]): atomically, the
/// rest of the file unchanged, duplicates of the profile collapsed.
fn write_aws_config(path: &Path, profile: &Profile) -> Result<(), Error> {
    let command = profile.command();
    if command.contains(['\n', '\r']) {
        return Err(Error::Usage(
            "a path in the profile contains a line break, which a config file cannot hold".into(),
        ));
    }
    let existing = match crate::userfile::read(path, crate::userfile::Kind::Config) {
        Ok(data) => String::from_utf8(data.to_vec()).map_err(|_| {
            Error::Usage(format!(
                "{} is not UTF-8 text, which the AWS SDKs cannot read either; fix or move it first",
                path.display()
            ))
        })?,
        Err(crate::userfile::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            String::new()
        }
        Err(source) => {
            return Err(Error::Read {
                path: path.into(),
                source,
            });
        }
    };
    let merged = super::awsconfig::merge_profile(&existing, &profile.name, &command);
    let header = super::awsconfig::section_header(&profile.name);
    if !merged.removed_duplicates.is_empty() {
        eprintln!(
            "rolesanywhere-agent: {}: removed {} duplicate {header} section(s) at line(s) {} \
             (the SDKs refuse a file with duplicates); their settings that the first one lacked \
             were moved into it",
            path.display(),
            merged.removed_duplicates.len(),
            merged
                .removed_duplicates
                .iter()
                .map(|l| l.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let written = files::update_atomic(path, merged.text.as_bytes(), 0o600)?;
    let via = if written != path {
        format!(" (through the link to {})", written.display())
    } else {
        String::new()
    };
    eprintln!(
        "rolesanywhere-agent: {} {header} in {}{via}",
        if merged.updated { "updated" } else { "added" },
        path.display()
    );
    Ok(())
}

/// The opened device key.
enum Device {
    /// A token key with its read-write session (the certificate goes on the token).
    Token(Box<crate::signer::pkcs11::TokenKey>),
    /// A persistent TPM key (`handle:…`).
    Handle(String, Box<dyn crate::signer::Signer>),
    /// A key file; true for a `TSS2 PRIVATE KEY` (TPM) file.
    File(PathBuf, Box<dyn crate::signer::Signer>, bool),
}

/// The device flags `credential-process` needs to open this key as install-cert did: the module
/// actually loaded, the TCTI actually used (also when it came from the environment, which the SDK's
/// need not have), and password *files*. Secret values are never written; where one was used, a
/// note says what to add instead.
fn device_flags(
    args: &InstallCertArgs,
    device: &Device,
    notes: &mut Vec<String>,
) -> Result<Vec<(String, Option<String>)>, Error> {
    let d = &args.device;
    let env_set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    // A secret given as a value or through the environment cannot be carried into the profile.
    let secret_note = |value_given: bool, env: &str, what: &str, flag: &str| {
        if value_given {
            Some(format!(
                "the {what} was left out: add {flag} FILE (mode 0600)"
            ))
        } else if env_set(env) {
            Some(format!(
                "the {what} came from {env}, which the SDK passes on only if it is set where the \
                 SDK runs: add {flag} FILE (mode 0600) or set it there"
            ))
        } else {
            None
        }
    };
    let mut f = Vec::new();
    let tpm = match device {
        Device::Token(k) => {
            f.push(("--pkcs11-lib".into(), Some(absolute(k.module_path()))));
            if d.reuse_pin {
                f.push(("--reuse-pin".into(), None));
            }
            if let Some(p) = &d.pkcs11_context_pin_file {
                f.push(("--pkcs11-context-pin-file".into(), Some(absolute(p))));
            } else if !d.reuse_pin {
                notes.extend(secret_note(
                    false,
                    crate::signer::pkcs11::CONTEXT_PIN_ENV,
                    "context-specific PIN",
                    "--pkcs11-context-pin-file",
                ));
            }
            let uri = &args.private_key;
            let pin_env = crate::signer::pkcs11::PIN_ENV;
            if !uri.contains("pin-source=") && !uri.contains("pin-value=") && env_set(pin_env) {
                notes.push(format!(
                    "the PIN came from {pin_env}, which the SDK passes on only if it is set where \
                     the SDK runs: add pin-source=file:/PATH to the URIs or set it there"
                ));
            }
            false
        }
        Device::Handle(..) => true,
        Device::File(_, _, is_tpm) => *is_tpm,
    };
    if tpm {
        f.push(("--tpm-tcti".into(), Some(resolved_tcti(d)?)));
        if let Some(p) = &d.tpm_key_password_file {
            f.push(("--tpm-key-password-file".into(), Some(absolute(p))));
        } else if d.no_tpm_key_password {
            f.push(("--no-tpm-key-password".into(), None));
        } else {
            notes.extend(secret_note(
                d.tpm_key_password.is_some(),
                "ROLESANYWHERE_TPM_KEY_PASSWORD",
                "TPM key password",
                "--tpm-key-password-file",
            ));
        }
        if let Some(p) = &d.tpm_parent_password_file {
            f.push(("--tpm-parent-password-file".into(), Some(absolute(p))));
        } else {
            notes.extend(secret_note(
                d.tpm_parent_password.is_some(),
                "ROLESANYWHERE_TPM_PARENT_PASSWORD",
                "TPM parent password",
                "--tpm-parent-password-file",
            ));
        }
    } else if matches!(device, Device::File(..)) {
        if let Some(p) = &d.pkcs8_password_file {
            f.push(("--pkcs8-password-file".into(), Some(absolute(p))));
        } else {
            notes.extend(secret_note(
                d.pkcs8_password.is_some(),
                crate::signer::file::PASSWORD_ENV,
                "key file password",
                "--pkcs8-password-file",
            ));
        }
    }
    Ok(f)
}

/// The TCTI the key was opened with (flag, else environment, else the default), in canonical form.
#[cfg(feature = "tpm")]
fn resolved_tcti(d: &super::DeviceArgs) -> Result<String, Error> {
    Ok(crate::signer::tpm::resolved_tcti(d.tpm_tcti.as_deref())?)
}

#[cfg(not(feature = "tpm"))]
fn resolved_tcti(d: &super::DeviceArgs) -> Result<String, Error> {
    Err(Error::TpmUnsupported(
        d.tpm_tcti.clone().unwrap_or_else(|| "the TPM key".into()),
    ))
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
            endpoint: None,
            profile_name: "p".into(),
            aws_config: None,
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
            endpoint: None,
            profile_name: "host".into(),
            aws_config: None,
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
            "[profile host]\ncredential_process = {} credential-process \
             --certificate {} --private-key {} --trust-anchor-arn <TRUST_ANCHOR_ARN> \
             --profile-arn <PROFILE_ARN> --role-arn arn:aws:iam::123456789012:role/r\n",
            // This program's own absolute path (here the test binary's), not a bare name.
            std::env::current_exe()
                .unwrap()
                .canonicalize()
                .unwrap()
                .display(),
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

    #[test]
    fn aws_config_needs_every_arn_and_defaults_like_the_sdks() {
        use std::ffi::OsString;
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        let mut a = install_args(Path::new("k.pem"), Path::new("c.pem"));
        a.aws_config = Some(None);
        let e = check_profile_args(&a, &env(&[("HOME", "/home/u")])).unwrap_err();
        assert!(e.is_usage(), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("--trust-anchor-arn, --profile-arn") && !text.contains("--role-arn"),
            "{text}"
        );
        a.trust_anchor_arn =
            Some("arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/t".into());
        a.profile_arn = Some("arn:aws:rolesanywhere:us-east-1:123456789012:profile/p".into());
        let path = |a: &InstallCertArgs, vars| check_profile_args(a, &env(vars)).unwrap();
        assert_eq!(
            path(&a, &[("HOME", "/home/u")]),
            Some(PathBuf::from("/home/u/.aws/config"))
        );
        assert_eq!(
            path(&a, &[("HOME", "/home/u"), ("AWS_CONFIG_FILE", "~/cfg/aws")]),
            Some(PathBuf::from("/home/u/cfg/aws"))
        );
        assert_eq!(
            path(&a, &[("HOME", "/home/u"), ("AWS_CONFIG_FILE", "")]),
            Some(PathBuf::from("/home/u/.aws/config"))
        );
        assert!(check_profile_args(&a, &env(&[])).unwrap_err().is_usage());
        a.aws_config = Some(Some("/etc/aws.conf".into()));
        assert_eq!(path(&a, &[]), Some(PathBuf::from("/etc/aws.conf")));
        a.aws_config = None;
        assert_eq!(path(&a, &[]), None);
    }

    #[test]
    fn malformed_profile_name_arn_or_endpoint_is_a_usage_error_before_anything_is_opened() {
        let none = |_: &str| None;
        let mut a = install_args(Path::new("/nonexistent/k.pem"), Path::new("c.pem"));
        a.profile_name = "my profile".into();
        let e = check_profile_args(&a, &none).unwrap_err();
        assert!(
            e.is_usage() && e.to_string().contains("--profile-name"),
            "{e}"
        );
        let mut a = install_args(Path::new("k.pem"), Path::new("c.pem"));
        a.role_arn = Some("arn:aws:iam::123:role/r".into());
        assert!(check_profile_args(&a, &none).unwrap_err().is_usage());
        let mut a = install_args(Path::new("k.pem"), Path::new("c.pem"));
        a.endpoint = Some("127.0.0.1:8443".into());
        let e = check_profile_args(&a, &none).unwrap_err();
        assert!(e.to_string().contains("scheme"), "{e}");
    }
}
