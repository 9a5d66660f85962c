//! The raw command-line layer of `rolesanywhere-agent enroll …` (clap structs only).
//!
//! The device flags are the signing commands' own [`DeviceArgs`] (module, TCTI, every PIN and
//! password source), flattened into each subcommand, so one set of options opens the key at enrollment
//! and afterwards and the two cannot drift apart. Validation happens in the command modules, not here.

pub use crate::cli::args::DeviceArgs;
use std::path::PathBuf;

/// `rolesanywhere-agent enroll …`.
#[derive(Debug, clap::Subcommand)]
pub enum EnrollCommand {
    /// Generate a key pair on a PKCS#11 token or in a TPM and print its public key (PEM)
    #[command(after_help = crate::cli::args::KEY_ENVIRONMENT)]
    Keygen(KeygenArgs),
    /// Write a PKCS#10 certificate request signed by the device key
    #[command(after_help = crate::cli::args::KEY_ENVIRONMENT)]
    Csr(CsrArgs),
    /// Check a certificate against the device key, store it with the key and print the AWS profile
    #[command(after_help = crate::cli::args::KEY_ENVIRONMENT)]
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
    /// ML-DSA-44 (FIPS 204; PKCS#11 tokens with CKM_ML_DSA_KEY_PAIR_GEN only)
    #[value(name = "ml-dsa-44")]
    MlDsa44,
    /// ML-DSA-65 (FIPS 204; PKCS#11 tokens with CKM_ML_DSA_KEY_PAIR_GEN only)
    #[value(name = "ml-dsa-65")]
    MlDsa65,
    /// ML-DSA-87 (FIPS 204; PKCS#11 tokens with CKM_ML_DSA_KEY_PAIR_GEN only)
    #[value(name = "ml-dsa-87")]
    MlDsa87,
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
    /// Trust anchor ARN to put in the profile
    #[arg(long, value_name = "ARN")]
    pub trust_anchor_arn: Option<String>,
    /// Profile ARN to put in the profile
    #[arg(long, value_name = "ARN")]
    pub profile_arn: Option<String>,
    /// Role ARN to put in the profile
    #[arg(long, value_name = "ARN")]
    pub role_arn: Option<String>,
    /// Endpoint to put in the profile (default: the trust anchor region's Roles Anywhere endpoint)
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Name of the AWS config profile to print (and write with --aws-config)
    #[arg(long, value_name = "NAME", default_value = "rolesanywhere")]
    pub profile_name: String,
    /// Also write the profile into this AWS config file, replacing that profile's credential_process
    /// in place and leaving the rest of the file as it is (without FILE: $AWS_CONFIG_FILE, else
    /// ~/.aws/config); needs the three ARNs
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    pub aws_config: Option<Option<PathBuf>>,
    /// Device options
    #[command(flatten)]
    pub device: DeviceArgs,
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
        let o = super::super::target::key_options(&c.private_key, &c.device);
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

    /// Issue 8: `enroll csr` suggested `--pkcs8-password-file` and then refused it. Every flag of
    /// `credential-process` that reaches or unlocks a key (module, TCTI, PINs, passwords) must be a
    /// flag of every enroll subcommand, whatever struct it comes from.
    #[test]
    fn every_enroll_command_takes_every_key_unlocking_flag_of_credential_process() {
        use clap::CommandFactory as _;
        let cli = crate::cli::args::Cli::command();
        let longs = |c: &clap::Command| -> Vec<String> {
            c.get_arguments()
                .filter_map(|a| a.get_long().map(str::to_string))
                .collect()
        };
        let cp = cli
            .find_subcommand("credential-process")
            .expect("credential-process");
        let unlocking: Vec<String> = longs(cp)
            .into_iter()
            .filter(|f| {
                ["pkcs8-", "pkcs11-", "tpm-", "no-tpm-", "reuse-pin"]
                    .iter()
                    .any(|p| f.starts_with(p))
            })
            .collect();
        for f in [
            "pkcs8-password",
            "pkcs8-password-file",
            "pkcs11-lib",
            "pkcs11-context-pin-file",
            "reuse-pin",
            "tpm-tcti",
            "tpm-key-password-file",
            "tpm-parent-password-file",
        ] {
            assert!(unlocking.iter().any(|u| u == f), "{f} not in {unlocking:?}");
        }
        let enroll = cli.find_subcommand("enroll").expect("enroll");
        for sub in ["keygen", "csr", "install-cert"] {
            let have = longs(enroll.find_subcommand(sub).expect(sub));
            for f in &unlocking {
                assert!(have.contains(f), "enroll {sub} lacks --{f}");
            }
        }
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
