//! The raw command-line layer of `rolesanywhere-agent enroll …` (clap structs only).
//!
//! Device flags keep the names the signing commands use (`--pkcs11-lib`, `--tpm-tcti`,
//! `--tpm-key-password[-file]`, `--tpm-parent-password[-file]`), so one set of options opens the key at
//! enrollment and afterwards. Validation happens in the command modules, not here.

use crate::secret::Secret;
use crate::signer::KeyOptions;
use std::path::PathBuf;

/// `rolesanywhere-agent enroll …`.
#[derive(Debug, clap::Subcommand)]
pub enum EnrollCommand {
    /// Generate a key pair on a PKCS#11 token or in a TPM and print its public key (PEM)
    Keygen(KeygenArgs),
    /// Write a PKCS#10 certificate request signed by the device key
    Csr(CsrArgs),
    /// Check a certificate against the device key, store it with the key and print the AWS profile
    InstallCert(InstallCertArgs),
}

/// Key algorithms `enroll keygen` can create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum KeyType {
    /// ECDSA on NIST P-256.
    #[default]
    #[value(name = "ec-p256")]
    EcP256,
    /// ECDSA on NIST P-384.
    #[value(name = "ec-p384")]
    EcP384,
    /// RSA with a 2048-bit modulus.
    #[value(name = "rsa-2048")]
    Rsa2048,
    /// RSA with a 3072-bit modulus.
    #[value(name = "rsa-3072")]
    Rsa3072,
}

/// Options that reach the device (shared by all enroll commands and named as for signing).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DeviceArgs {
    /// PKCS#11 module (default: p11-kit-proxy)
    #[arg(long, value_name = "PATH")]
    pub pkcs11_lib: Option<PathBuf>,
    /// Use the user PIN as the context-specific PIN (keys with CKA_ALWAYS_AUTHENTICATE)
    #[arg(long)]
    pub reuse_pin: bool,
    /// TPM TCTI (`device:/dev/tpmrm0`, `swtpm:host=127.0.0.1,port=2321`, …; default from TPM2TOOLS_TCTI)
    #[arg(long, value_name = "TCTI")]
    pub tpm_tcti: Option<String>,
    /// Seconds one TPM command may take (default 30; key generation 10 times as long)
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub tpm_timeout: Option<u64>,
    /// Auth value of the TPM key (prefer --tpm-key-password-file)
    #[arg(long, value_name = "PASSWORD", value_parser = crate::secret::parse_arg, allow_hyphen_values = true, conflicts_with = "tpm_key_password_file")]
    pub tpm_key_password: Option<Secret>,
    /// File whose first line is the TPM key's auth value
    #[arg(long, value_name = "FILE")]
    pub tpm_key_password_file: Option<PathBuf>,
    /// The TPM key has no auth value (never prompt)
    #[arg(long, conflicts_with_all = ["tpm_key_password", "tpm_key_password_file"])]
    pub no_tpm_key_password: bool,
    /// Auth value of the persistent parent key (prefer --tpm-parent-password-file)
    #[arg(long, value_name = "PASSWORD", value_parser = crate::secret::parse_arg, allow_hyphen_values = true, conflicts_with = "tpm_parent_password_file")]
    pub tpm_parent_password: Option<Secret>,
    /// File whose first line is the parent key's auth value
    #[arg(long, value_name = "FILE")]
    pub tpm_parent_password_file: Option<PathBuf>,
}

/// `enroll keygen`.
#[derive(Debug, Clone, clap::Args)]
pub struct KeygenArgs {
    /// Where to create the key: `pkcs11:token=…;object=…;id=…`, a new `TSS2 PRIVATE KEY` file, or
    /// `handle:0x81……` (a persistent TPM key)
    #[arg(long, value_name = "TARGET", required_unless_present = "persist")]
    pub private_key: Option<String>,
    /// Make the TPM key persistent at this handle (0x81000000..0x81FFFFFF) instead of writing a file
    #[arg(long, value_name = "HANDLE", conflicts_with = "private_key")]
    pub persist: Option<String>,
    /// Key algorithm
    #[arg(long, value_enum, default_value_t = KeyType::EcP256)]
    pub key_type: KeyType,
    /// Persistent TPM parent key (default: the standard ECC P-256 SRK under the owner hierarchy)
    #[arg(long, value_name = "HANDLE")]
    pub tpm_parent: Option<String>,
    /// Bind the TPM key to PCR values as they are now (e.g. `sha256:0,7`)
    #[arg(long, value_name = "BANK:LIST")]
    pub tpm_pcrs: Option<String>,
    /// Device options
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// `enroll csr`.
#[derive(Debug, Clone, clap::Args)]
pub struct CsrArgs {
    /// The device key: `pkcs11:` URI, `TSS2 PRIVATE KEY` file, `handle:0x81……` or key file
    #[arg(long, value_name = "TARGET")]
    pub private_key: String,
    /// Subject in RFC 4514 form, most specific first (`CN=host1,OU=servers,O=Example`)
    #[arg(long, value_name = "DN")]
    pub subject: String,
    /// Subject alternative name: `dns:NAME`, `uri:URI`, `ip:ADDRESS` or `email:ADDRESS` (repeatable)
    #[arg(long, value_name = "KIND:VALUE")]
    pub san: Vec<String>,
    /// File to write the PEM request to (`-` for standard output)
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Device options
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// `enroll install-cert`.
#[derive(Debug, Clone, clap::Args)]
pub struct InstallCertArgs {
    /// The device key: `pkcs11:` URI, `TSS2 PRIVATE KEY` file, `handle:0x81……` or key file
    #[arg(long, value_name = "TARGET")]
    pub private_key: String,
    /// The issued certificate (PEM or DER)
    #[arg(long, value_name = "FILE")]
    pub certificate: PathBuf,
    /// PEM bundle of intermediate CA certificates
    #[arg(long, value_name = "FILE")]
    pub intermediates: Option<PathBuf>,
    /// Where to write the certificate file (required for `handle:` keys; default beside a key file)
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Replace an existing certificate (file or token object) for this key
    #[arg(long)]
    pub replace: bool,
    /// Trust anchor ARN to put in the printed profile
    #[arg(long, value_name = "ARN")]
    pub trust_anchor_arn: Option<String>,
    /// Profile ARN to put in the printed profile
    #[arg(long, value_name = "ARN")]
    pub profile_arn: Option<String>,
    /// Role ARN to put in the printed profile
    #[arg(long, value_name = "ARN")]
    pub role_arn: Option<String>,
    /// Name of the `~/.aws/config` profile to print
    #[arg(long, value_name = "NAME", default_value = "rolesanywhere")]
    pub profile_name: String,
    /// Device options
    #[command(flatten)]
    pub device: DeviceArgs,
}

impl DeviceArgs {
    /// The signing layer's options for `private_key` with these device flags (no certificate).
    pub fn key_options(&self, private_key: &str) -> KeyOptions {
        KeyOptions {
            private_key: Some(private_key.to_string()),
            pkcs11_lib: self.pkcs11_lib.clone(),
            reuse_pin: self.reuse_pin,
            tpm_tcti: self.tpm_tcti.clone(),
            tpm_timeout: self.tpm_timeout.map(std::time::Duration::from_secs),
            tpm_key_password: self.tpm_key_password.clone(),
            tpm_key_password_file: self.tpm_key_password_file.clone(),
            no_tpm_key_password: self.no_tpm_key_password,
            tpm_parent_password: self.tpm_parent_password.clone(),
            tpm_parent_password_file: self.tpm_parent_password_file.clone(),
            ..KeyOptions::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: EnrollCommand,
    }

    fn parse(args: &[&str]) -> Result<EnrollCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("enroll").chain(args.iter().copied())).map(|c| c.cmd)
    }

    #[test]
    fn keygen_defaults_to_ec_p256_and_takes_device_flags() {
        let EnrollCommand::Keygen(k) = parse(&[
            "keygen",
            "--private-key",
            "k.tss2.pem",
            "--tpm-tcti",
            "swtpm:host=127.0.0.1,port=2321",
            "--tpm-key-password-file",
            "/run/pw",
            "--tpm-parent",
            "0x81000001",
            "--tpm-parent-password",
            "pp",
            "--tpm-pcrs",
            "sha256:0,7",
        ])
        .unwrap() else {
            panic!("not keygen")
        };
        assert_eq!(k.key_type, KeyType::EcP256);
        assert_eq!(
            k.device.tpm_key_password_file,
            Some(PathBuf::from("/run/pw"))
        );
        assert_eq!(k.device.tpm_parent_password.unwrap().expose(), "pp");
        assert_eq!(k.tpm_pcrs.as_deref(), Some("sha256:0,7"));
    }

    #[test]
    fn keygen_accepts_every_key_type_name() {
        for (name, want) in [
            ("ec-p256", KeyType::EcP256),
            ("ec-p384", KeyType::EcP384),
            ("rsa-2048", KeyType::Rsa2048),
            ("rsa-3072", KeyType::Rsa3072),
        ] {
            let EnrollCommand::Keygen(k) = parse(&[
                "keygen",
                "--private-key",
                "pkcs11:token=a",
                "--key-type",
                name,
            ])
            .unwrap() else {
                panic!("not keygen")
            };
            assert_eq!(k.key_type, want);
        }
        assert!(parse(&["keygen", "--private-key", "x", "--key-type", "ec-p521"]).is_err());
    }

    #[test]
    fn keygen_needs_exactly_one_of_private_key_and_persist() {
        assert!(parse(&["keygen"]).is_err());
        assert!(parse(&["keygen", "--private-key", "k", "--persist", "0x81000002"]).is_err());
        assert!(parse(&["keygen", "--persist", "0x81000002"]).is_ok());
    }

    #[test]
    fn csr_collects_repeated_sans() {
        let EnrollCommand::Csr(c) = parse(&[
            "csr",
            "--private-key",
            "pkcs11:token=ra;object=k",
            "--pkcs11-lib",
            "/usr/lib/softhsm/libsofthsm2.so",
            "--subject",
            "CN=host1",
            "--san",
            "dns:host1.example",
            "--san",
            "ip:10.0.0.1",
            "--out",
            "host1.csr",
        ])
        .unwrap() else {
            panic!("not csr")
        };
        assert_eq!(c.san, ["dns:host1.example", "ip:10.0.0.1"]);
        let o = c.device.key_options(&c.private_key);
        assert_eq!(o.private_key.as_deref(), Some("pkcs11:token=ra;object=k"));
        assert!(o.certificate.is_none());
    }

    #[test]
    fn password_flags_take_values_starting_with_a_dash() {
        let EnrollCommand::Keygen(k) = parse(&[
            "keygen",
            "--private-key",
            "k.tss2.pem",
            "--tpm-key-password",
            "--s3cret",
            "--tpm-parent-password",
            "-pp",
        ])
        .unwrap() else {
            panic!("not keygen")
        };
        assert_eq!(k.device.tpm_key_password.unwrap().expose(), "--s3cret");
        assert_eq!(k.device.tpm_parent_password.unwrap().expose(), "-pp");
    }

    #[test]
    fn key_password_flag_and_file_conflict() {
        assert!(
            parse(&[
                "csr",
                "--private-key",
                "k",
                "--subject",
                "CN=a",
                "--out",
                "o",
                "--tpm-key-password",
                "x",
                "--tpm-key-password-file",
                "f",
            ])
            .is_err()
        );
    }

    #[test]
    fn install_cert_takes_arns_and_debug_hides_passwords() {
        let EnrollCommand::InstallCert(i) = parse(&[
            "install-cert",
            "--private-key",
            "k.tss2.pem",
            "--certificate",
            "c.pem",
            "--role-arn",
            "arn:aws:iam::123456789012:role/r",
            "--tpm-key-password",
            "hunter2",
        ])
        .unwrap() else {
            panic!("not install-cert")
        };
        assert_eq!(i.profile_name, "rolesanywhere");
        assert!(i.trust_anchor_arn.is_none());
        assert!(!format!("{i:?}").contains("hunter2"));
    }
}
