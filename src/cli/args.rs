//! The raw command line: clap derive structures, exactly the flags of `aws_signing_helper` plus ours.
//!
//! Nothing here is validated beyond clap's own parsing; [`super::settings`] turns these into settings
//! the rest of the program sees. Secret flags are parsed straight into [`Secret`]s (redacted `Debug`).

use crate::secret::Secret;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// The environment variable that has the effect of `--debug` (any value but 0, false, no, off or
/// empty turns it on).
pub const DEBUG_ENV: &str = "ROLESANYWHERE_DEBUG";

/// Top level.
#[derive(Debug, Parser)]
#[command(
    name = "rolesanywhere-agent",
    version = super::version::text(),
    about = "IAM Roles Anywhere credentials from keys in PKCS#11 tokens, TPMs or key files",
    args_override_self = true
)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands (as `aws_signing_helper`).
// `args_override_self`: a repeated flag takes its last value, as with the reference helper's flag
// parser, so wrapper scripts that append flags keep working.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Get temporary credentials and print them for `credential_process`.
    #[command(args_override_self = true)]
    CredentialProcess(SessionArgs),
    /// Sign a fixed test string with the private key (to check the key works).
    #[command(args_override_self = true)]
    SignString(SignStringArgs),
    /// Print the certificate's key type, DER (base64), serial number and supported algorithms.
    #[command(args_override_self = true)]
    ReadCertificateData(ReadCertificateArgs),
    /// Keep a profile in the shared credentials file up to date (not supported yet).
    #[command(args_override_self = true)]
    Update(UpdateArgs),
    /// Serve credentials on an IMDSv2-like local endpoint (not supported yet).
    #[command(args_override_self = true)]
    Serve(ServeArgs),
    /// Air-gapped enrollment: generate a key on the device, make a CSR with it, install the certificate.
    #[command(subcommand)]
    Enroll(crate::enroll::EnrollCommand),
    /// Print the version.
    Version,
}

/// Flags that select and unlock the key and certificate.
#[derive(Debug, Args, Default)]
pub struct KeyArgs {
    /// Certificate: a PEM file (first certificate is the leaf) or a pkcs11: URI.
    #[arg(long)]
    pub certificate: Option<String>,
    /// Private key: a key file, a pkcs11: URI or handle:0x81… (TPM persistent key).
    #[arg(long)]
    pub private_key: Option<String>,
    /// PEM bundle of intermediate certificates.
    #[arg(long)]
    pub intermediates: Option<PathBuf>,
    /// PKCS#11 module (default: p11-kit-proxy).
    #[arg(long)]
    pub pkcs11_lib: Option<PathBuf>,
    /// Use the user PIN as the context-specific PIN too.
    #[arg(long)]
    pub reuse_pin: bool,
    /// File whose first line is the PKCS#11 context-specific PIN.
    #[arg(long)]
    pub pkcs11_context_pin_file: Option<PathBuf>,
    /// TPM key password (visible in the process list: prefer --tpm-key-password-file).
    #[arg(long, value_parser = crate::secret::parse_arg, allow_hyphen_values = true)]
    pub tpm_key_password: Option<Secret>,
    /// File whose first line is the TPM key password.
    #[arg(long)]
    pub tpm_key_password_file: Option<PathBuf>,
    /// The TPM key has no password (never prompt).
    #[arg(long)]
    pub no_tpm_key_password: bool,
    /// TPM parent key password.
    #[arg(long, value_parser = crate::secret::parse_arg, allow_hyphen_values = true)]
    pub tpm_parent_password: Option<Secret>,
    /// File whose first line is the TPM parent key password.
    #[arg(long)]
    pub tpm_parent_password_file: Option<PathBuf>,
    /// TPM TCTI (e.g. device:/dev/tpmrm0, swtpm:host=127.0.0.1,port=2321).
    #[arg(long)]
    pub tpm_tcti: Option<String>,
    /// Password of an encrypted PKCS#8 key (visible in the process list: prefer the file flag).
    #[arg(long, value_parser = crate::secret::parse_arg, allow_hyphen_values = true)]
    pub pkcs8_password: Option<Secret>,
    /// File whose first line is the password of an encrypted PKCS#8 key.
    #[arg(long)]
    pub pkcs8_password_file: Option<PathBuf>,
    /// Windows/macOS certificate store selector (not available on this platform).
    #[arg(long)]
    pub cert_selector: Option<String>,
    /// Windows certificate store name (not available on this platform).
    #[arg(long)]
    pub system_store_name: Option<String>,
    /// Pick the latest-expiring matching store certificate (not available on this platform).
    #[arg(long)]
    pub use_latest_expiring_certificate: bool,
    /// Print diagnostics on stderr, never secrets (or set ROLESANYWHERE_DEBUG to any value but 0,
    /// false, no, off or empty).
    #[arg(long, env = DEBUG_ENV, value_parser = clap::builder::FalseyValueParser::new())]
    pub debug: bool,
}

/// Flags of the commands that call CreateSession.
#[derive(Debug, Args)]
pub struct SessionArgs {
    /// Key and certificate selection.
    #[command(flatten)]
    pub key: KeyArgs,
    /// ARN of the role to assume.
    #[arg(long)]
    pub role_arn: Option<String>,
    /// ARN of the Roles Anywhere profile.
    #[arg(long)]
    pub profile_arn: Option<String>,
    /// ARN of the trust anchor.
    #[arg(long)]
    pub trust_anchor_arn: Option<String>,
    /// Session duration in seconds (900..43200).
    #[arg(long, default_value_t = 3600, allow_negative_numbers = true)]
    pub session_duration: i64,
    /// Signing and endpoint region (default: the trust anchor's).
    #[arg(long)]
    pub region: Option<String>,
    /// Endpoint base URL (scheme required).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Skip TLS certificate verification (dangerous).
    #[arg(long)]
    pub no_verify_ssl: bool,
    /// Use HTTPS_PROXY/NO_PROXY (always done; accepted for compatibility).
    #[arg(long)]
    pub with_proxy: bool,
    /// Role session name (the profile must accept it).
    #[arg(long)]
    pub role_session_name: Option<String>,
    /// Use the FIPS endpoint (also AWS_USE_FIPS_ENDPOINT=true).
    #[arg(long)]
    pub use_fips_endpoint: bool,
    /// Seconds to wait for a connection.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub connect_timeout: u64,
    /// Seconds to wait for a whole attempt.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub timeout: u64,
}

/// `sign-string` flags.
#[derive(Debug, Args)]
pub struct SignStringArgs {
    /// Key and certificate selection.
    #[command(flatten)]
    pub key: KeyArgs,
    /// Digest of the test message.
    #[arg(long, value_enum, ignore_case = true, default_value = "SHA256")]
    pub digest: DigestArg,
    /// Output format.
    #[arg(long, value_enum, ignore_case = true, default_value = "json")]
    pub format: FormatArg,
}

/// `--digest` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DigestArg {
    /// SHA-256.
    #[value(name = "SHA256")]
    Sha256,
    /// SHA-384.
    #[value(name = "SHA384")]
    Sha384,
    /// SHA-512.
    #[value(name = "SHA512")]
    Sha512,
}

/// `--format` values.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum FormatArg {
    /// A JSON string of lower-case hex.
    Json,
    /// Lower-case hex.
    Text,
    /// Raw signature bytes.
    Bin,
}

/// `read-certificate-data` flags.
#[derive(Debug, Args)]
pub struct ReadCertificateArgs {
    /// Key and certificate selection.
    #[command(flatten)]
    pub key: KeyArgs,
}

/// `update` flags.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Session flags.
    #[command(flatten)]
    pub session: SessionArgs,
    /// Profile in the shared credentials file.
    #[arg(long, default_value = "default")]
    pub profile: String,
    /// Update once and exit.
    #[arg(long)]
    pub once: bool,
}

/// `serve` flags.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Session flags.
    #[command(flatten)]
    pub session: SessionArgs,
    /// Local port.
    #[arg(long, default_value_t = 9911)]
    pub port: u16,
    /// IP TTL of the answers.
    #[arg(long, default_value_t = 64)]
    pub hop_limit: u8,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHARED: &[&str] = &[
        "--certificate=c.pem",
        "--private-key=k.pem",
        "--intermediates=i.pem",
        "--role-arn=r",
        "--profile-arn=p",
        "--trust-anchor-arn=t",
        "--session-duration=900",
        "--region=us-east-1",
        "--endpoint=https://h",
        "--no-verify-ssl",
        "--with-proxy",
        "--debug",
        "--role-session-name=s",
        "--pkcs11-lib=/m.so",
        "--reuse-pin",
        "--tpm-key-password=x",
        "--no-tpm-key-password",
        "--pkcs8-password=x",
        "--cert-selector=x",
        "--system-store-name=MY",
        "--use-latest-expiring-certificate",
        // Ours.
        "--pkcs8-password-file=f",
        "--pkcs11-context-pin-file=f",
        "--tpm-tcti=device:/dev/tpmrm0",
        "--tpm-key-password-file=f",
        "--tpm-parent-password=x",
        "--tpm-parent-password-file=f",
        "--use-fips-endpoint",
        "--connect-timeout=1",
        "--timeout=2",
    ];

    fn parses(args: &[&str]) {
        let mut argv = vec!["rolesanywhere-agent"];
        argv.extend_from_slice(args);
        if let Err(e) = Cli::try_parse_from(&argv) {
            panic!("{argv:?}: {e}");
        }
    }

    #[test]
    fn every_reference_flag_is_accepted_by_session_commands() {
        for (cmd, extra) in [
            ("credential-process", &[][..]),
            ("update", &["--profile=x", "--once"][..]),
            ("serve", &["--port=9911", "--hop-limit=1"][..]),
        ] {
            let mut args = vec![cmd];
            args.extend_from_slice(SHARED);
            args.extend_from_slice(extra);
            parses(&args);
        }
    }

    #[test]
    fn debug_of_parsed_arguments_hides_password_flags() {
        let cli = Cli::try_parse_from([
            "rolesanywhere-agent",
            "credential-process",
            "--tpm-key-password=tpm-hunter2",
            "--tpm-parent-password=parent-hunter2",
            "--pkcs8-password=pkcs8-hunter2",
        ])
        .unwrap();
        let text = format!("{cli:?}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    /// A password that starts with '-' is the flag's value (as with the reference helper), not an
    /// unknown flag that clap would quote back on stderr.
    #[test]
    fn password_flags_take_values_starting_with_a_dash() {
        let cli = Cli::try_parse_from([
            "rolesanywhere-agent",
            "credential-process",
            "--tpm-key-password",
            "--s3cret",
            "--pkcs8-password",
            "-p8",
            "--tpm-parent-password",
            "-pp",
        ])
        .unwrap();
        let Command::CredentialProcess(a) = cli.command else {
            panic!("not credential-process")
        };
        let shown = |s: Option<Secret>| s.map(|s| s.expose().to_string());
        assert_eq!(shown(a.key.tpm_key_password).as_deref(), Some("--s3cret"));
        assert_eq!(shown(a.key.pkcs8_password).as_deref(), Some("-p8"));
        assert_eq!(shown(a.key.tpm_parent_password).as_deref(), Some("-pp"));
    }

    #[test]
    fn sign_string_and_read_certificate_data_take_key_flags() {
        parses(&[
            "sign-string",
            "--private-key=k.pem",
            "--certificate=c.pem",
            "--pkcs11-lib=/m.so",
            "--reuse-pin",
            "--tpm-key-password=x",
            "--no-tpm-key-password",
            "--digest=sha384",
            "--format=bin",
        ]);
        parses(&[
            "read-certificate-data",
            "--certificate=pkcs11:token=t",
            "--pkcs11-lib=/m.so",
            "--debug",
        ]);
    }
}
