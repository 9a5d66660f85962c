//! The raw command line: clap derive structures, exactly the flags of `aws_signing_helper` plus ours.
//!
//! Nothing here is validated beyond clap's own parsing; [`super::settings`] turns these into settings
//! the rest of the program sees. Secret flags are parsed straight into [`Secret`]s (redacted `Debug`).

use crate::secret::Secret;
use crate::signer::KeyOptions;
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
    args_override_self = true,
    // No styling escapes of clap's own, so that `render().ansi()` holds the arguments exactly as
    // given: `cli::output` can mask their `pin-value` and escape their control characters.
    styles = clap::builder::Styles::plain()
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
    #[command(
        args_override_self = true,
        mut_arg("certificate", required(CERTIFICATE_UNLESS_AGENT)),
        mut_arg("private_key", required(PRIVATE_KEY_UNLESS_AGENT)),
        mut_arg("from_agent", |a| a.conflicts_with_all(FROM_AGENT_CONFLICTS)),
        after_help = SESSION_ENVIRONMENT
    )]
    CredentialProcess(CredentialProcessArgs),
    /// Sign a fixed test string with the private key (to check the key works).
    #[command(
        args_override_self = true,
        mut_arg("private_key", required(PRIVATE_KEY_UNLESS)),
        after_help = KEY_ENVIRONMENT
    )]
    SignString(SignStringArgs),
    /// Print the certificate's key type, DER (base64), serial number and supported algorithms.
    #[command(
        args_override_self = true,
        mut_arg("certificate", required("")),
        after_help = KEY_ENVIRONMENT
    )]
    ReadCertificateData(ReadCertificateArgs),
    /// Keep a profile in the shared credentials file up to date.
    #[command(
        args_override_self = true,
        mut_arg("certificate", required(CERTIFICATE_UNLESS)),
        mut_arg("private_key", required(PRIVATE_KEY_UNLESS)),
        after_help = SESSION_ENVIRONMENT
    )]
    Update(UpdateArgs),
    /// Serve credentials to SDKs: an IMDSv2 endpoint on 127.0.0.1 and, with --container-token-file,
    /// the container credentials endpoint; refreshed in the background until SIGTERM/SIGINT.
    #[command(
        args_override_self = true,
        mut_arg("certificate", required(CERTIFICATE_UNLESS)),
        mut_arg("private_key", required(PRIVATE_KEY_UNLESS)),
        after_help = SESSION_ENVIRONMENT
    )]
    Serve(ServeArgs),
    /// Run the agent: hold the identities of a configuration file's profiles and serve their cached
    /// credentials on a Unix socket (`credential-process --from-agent NAME`) until SIGTERM/SIGINT;
    /// SIGHUP reloads the configuration.
    #[command(args_conflicts_with_subcommands = true)]
    Agent(AgentArgs),
    /// Air-gapped enrollment: generate a key on the device, make a CSR with it, install the certificate.
    #[command(subcommand)]
    Enroll(crate::enroll::EnrollCommand),
    /// Check locally what CreateSession will make of this identity: key, certificate, chain,
    /// request, principal tags, the role's trust policy and the session policy (--live adds the
    /// endpoint, TLS, clock and one real CreateSession). Exit 0 when no check failed, 1 otherwise.
    #[command(
        args_override_self = true,
        mut_arg("from_agent", |a| a.conflicts_with_all(FROM_AGENT_CONFLICTS)),
        after_help = SESSION_ENVIRONMENT
    )]
    Doctor(DoctorArgs),
    /// Print the version.
    Version,
}

/// The environment variables of the commands that open a key, one help line each.
macro_rules! key_environment_lines {
    () => {
        "  ROLESANYWHERE_PKCS11_PIN           PKCS#11 user PIN (after the URI's pin-value/pin-source)
  ROLESANYWHERE_PKCS11_CONTEXT_PIN   PKCS#11 context-specific PIN
  ROLESANYWHERE_PKCS8_PASSWORD       password of an encrypted key file
  ROLESANYWHERE_TPM_KEY_PASSWORD     TPM key password
  ROLESANYWHERE_TPM_PARENT_PASSWORD  TPM parent key (or hierarchy) password
  TPM2TOOLS_TCTI, TCTI, TPM_DEVICE   the TPM when --tpm-tcti is not given, in that order
  ROLESANYWHERE_AGENT_TPM            rolesanywhere-agent-tpm, run for a TPM key (default: next to
                                     this program, else /usr/libexec/rolesanywhere-agent/)
  TSS2_LOG                           the TSS library's own logging (default: silenced)"
    };
}

/// `--help` text of the commands that open a key: the environment they read. The table in
/// docs/cli.md is the reference; tests/docs.rs holds the two together.
pub const KEY_ENVIRONMENT: &str = concat!("Environment:\n", key_environment_lines!());

/// [`KEY_ENVIRONMENT`] plus what the commands that call CreateSession read.
pub const SESSION_ENVIRONMENT: &str = concat!(
    "Environment:\n",
    key_environment_lines!(),
    "
  AWS_CA_BUNDLE                      PEM file of the CA certificates to trust, instead of the system's
  SSL_CERT_FILE, SSL_CERT_DIR        replace the system's trusted roots
  HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY (or lower case): proxy for CreateSession
  AWS_USE_FIPS_ENDPOINT              true: as --use-fips-endpoint"
);

/// When a CreateSession command can do without `--certificate`.
const CERTIFICATE_UNLESS: &str = ", unless --private-key is a PKCS#12 file that holds it";
/// When a command can do without `--private-key`.
const PRIVATE_KEY_UNLESS: &str =
    ", unless --certificate is a pkcs11: URI whose token holds the key";

/// [`CERTIFICATE_UNLESS`] for `credential-process`, which can also ask an agent.
const CERTIFICATE_UNLESS_AGENT: &str =
    ", unless --private-key is a PKCS#12 file that holds it, or with --from-agent";
/// [`PRIVATE_KEY_UNLESS`] for `credential-process`.
const PRIVATE_KEY_UNLESS_AGENT: &str =
    ", unless --certificate is a pkcs11: URI whose token holds the key, or with --from-agent";

/// The flags `--from-agent` refuses: every session flag but `--debug` (the agent holds the
/// identity and its settings). Clap ids, i.e. field names; a test holds the list to the structs.
pub const FROM_AGENT_CONFLICTS: [&str; 30] = [
    "certificate",
    "private_key",
    "intermediates",
    "pkcs11_lib",
    "reuse_pin",
    "pkcs11_context_pin_file",
    "tpm_key_password",
    "tpm_key_password_file",
    "no_tpm_key_password",
    "tpm_parent_password",
    "tpm_parent_password_file",
    "tpm_tcti",
    "tpm_timeout",
    "pkcs8_password",
    "pkcs8_password_file",
    "cert_selector",
    "system_store_name",
    "use_latest_expiring_certificate",
    "role_arn",
    "profile_arn",
    "trust_anchor_arn",
    "session_duration",
    "region",
    "endpoint",
    "no_verify_ssl",
    "with_proxy",
    "role_session_name",
    "use_fips_endpoint",
    "connect_timeout",
    "timeout",
];

/// Marks a flag's help "(required…)" for a command that needs it. Not clap's `required`: the settings
/// report every missing flag in one message, some flags are needed only in some combinations, and
/// `update`/`serve` must say they are unsupported before asking for flags.
fn required(unless: &'static str) -> impl FnOnce(clap::Arg) -> clap::Arg {
    move |arg| {
        let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        arg.help(format!("{help} (required{unless})"))
    }
}

/// Flags that select and unlock the key and certificate.
#[derive(Debug, Args, Default, Clone)]
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
    /// Module, TCTI, PINs and passwords: the flags that reach and unlock the key.
    #[command(flatten)]
    pub device: DeviceArgs,
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

/// Flags that reach and unlock a key: the PKCS#11 module, the TPM, and every PIN and password source.
///
/// One struct for every command that opens a key (the signing commands through [`KeyArgs`], and
/// `enroll keygen`, `csr`, `install-cert`), so a secret source accepted by one cannot be missing from
/// another. No flag here conflicts with another: the backends decide precedence (documented in
/// configuration.md), as the reference helper does.
#[derive(Debug, Args, Default, Clone)]
pub struct DeviceArgs {
    /// PKCS#11 module (default: the URI's module-path/module-name, else the p11-kit proxy).
    #[arg(long, value_name = "PATH")]
    pub pkcs11_lib: Option<PathBuf>,
    /// Use the user PIN as the context-specific PIN too (keys with CKA_ALWAYS_AUTHENTICATE).
    #[arg(long)]
    pub reuse_pin: bool,
    /// File whose first line is the PKCS#11 context-specific PIN.
    #[arg(long, value_name = "FILE")]
    pub pkcs11_context_pin_file: Option<PathBuf>,
    /// TPM key password (visible in the process list: prefer --tpm-key-password-file).
    #[arg(long, value_name = "PASSWORD", value_parser = crate::secret::parse_arg, allow_hyphen_values = true)]
    pub tpm_key_password: Option<Secret>,
    /// File whose first line is the TPM key password.
    #[arg(long, value_name = "FILE")]
    pub tpm_key_password_file: Option<PathBuf>,
    /// The TPM key has no password (never prompt).
    #[arg(long)]
    pub no_tpm_key_password: bool,
    /// Password of the TPM parent key or hierarchy (visible in the process list: prefer the file flag).
    #[arg(long, value_name = "PASSWORD", value_parser = crate::secret::parse_arg, allow_hyphen_values = true)]
    pub tpm_parent_password: Option<Secret>,
    /// File whose first line is the TPM parent key (or hierarchy) password.
    #[arg(long, value_name = "FILE")]
    pub tpm_parent_password_file: Option<PathBuf>,
    /// TPM TCTI, e.g. swtpm:host=127.0.0.1,port=2321 (default: TPM2TOOLS_TCTI, TCTI, TPM_DEVICE, else
    /// device:/dev/tpmrm0).
    #[arg(long, value_name = "TCTI")]
    pub tpm_tcti: Option<String>,
    /// Seconds one TPM command may take (default 30; key generation 10 times as long).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub tpm_timeout: Option<u64>,
    /// Password of an encrypted key file, PKCS#8 or PKCS#12 (visible in the process list: prefer the
    /// file flag).
    #[arg(long, value_name = "PASSWORD", value_parser = crate::secret::parse_arg, allow_hyphen_values = true)]
    pub pkcs8_password: Option<Secret>,
    /// File whose first line is the password of an encrypted key file (PKCS#8 or PKCS#12).
    #[arg(long, value_name = "FILE")]
    pub pkcs8_password_file: Option<PathBuf>,
}

impl DeviceArgs {
    /// The signing layer's options for these device flags; key, certificate and chain left empty
    /// for the caller to fill in.
    pub fn key_options(&self) -> KeyOptions {
        KeyOptions {
            pkcs8_password: self.pkcs8_password.clone(),
            pkcs8_password_file: self.pkcs8_password_file.clone(),
            pkcs11_lib: self.pkcs11_lib.clone(),
            reuse_pin: self.reuse_pin,
            pkcs11_context_pin_file: self.pkcs11_context_pin_file.clone(),
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

/// Flags of the commands that call CreateSession.
#[derive(Debug, Args)]
pub struct SessionArgs {
    /// Key and certificate selection.
    #[command(flatten)]
    pub key: KeyArgs,
    /// ARN of the role to assume (required).
    #[arg(long)]
    pub role_arn: Option<String>,
    /// ARN of the Roles Anywhere profile (required).
    #[arg(long)]
    pub profile_arn: Option<String>,
    /// ARN of the trust anchor (required).
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

/// `credential-process` flags: the session flags, or `--from-agent` (with no other session flag).
#[derive(Debug, Args)]
pub struct CredentialProcessArgs {
    /// Session flags.
    #[command(flatten)]
    pub session: SessionArgs,
    /// Print the cached credentials of profile NAME of a running agent (`rolesanywhere-agent
    /// agent`) instead of calling CreateSession; no other session flag is taken with it.
    #[arg(long, value_name = "NAME")]
    pub from_agent: Option<String>,
    /// The agent's socket, with --from-agent (default: ROLESANYWHERE_AGENT_SOCK, else the agent's
    /// default).
    #[arg(long, value_name = "PATH", requires = "from_agent")]
    pub agent_socket: Option<PathBuf>,
}

/// `doctor` flags: the identity and request of `credential-process` (or an agent profile), and
/// the documents the service would hold.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Session flags, as for credential-process (the ARNs are checked, not required).
    #[command(flatten)]
    pub session: SessionArgs,
    /// Check profile NAME of the agent's configuration file instead of the session flags (the
    /// file is read; the running agent is not asked).
    #[arg(long, value_name = "NAME")]
    pub from_agent: Option<String>,
    /// The agent's configuration file, with --from-agent (default: /etc/rolesanywhere/agent.toml
    /// for root, $XDG_CONFIG_HOME/rolesanywhere/agent.toml otherwise).
    #[arg(long, value_name = "FILE", requires = "from_agent")]
    pub config: Option<PathBuf>,
    /// PEM bundle of the CA certificate(s) registered as the trust anchor.
    #[arg(long, value_name = "FILE")]
    pub trust_anchor_pem: Option<PathBuf>,
    /// A CRL imported onto the trust anchor (PEM or DER); repeatable.
    #[arg(long, value_name = "FILE")]
    pub crl: Vec<PathBuf>,
    /// The role's trust policy (JSON), to evaluate for this certificate and trust anchor.
    #[arg(long, value_name = "FILE")]
    pub trust_policy: Option<PathBuf>,
    /// The profile's session policy (JSON), to check against the STS limits and summarise.
    #[arg(long, value_name = "FILE")]
    pub session_policy: Option<PathBuf>,
    /// Also check the endpoint (DNS, TLS, clock) and make one real CreateSession.
    #[arg(long)]
    pub live: bool,
    /// Warn when a certificate expires within this many days.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    pub warn_days: u32,
    /// Output: one line per finding, or a JSON document for automation.
    #[arg(long, value_enum, ignore_case = true, default_value = "text")]
    pub format: DoctorFormat,
}

/// `doctor --format` values.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum DoctorFormat {
    /// One line per finding.
    Text,
    /// One JSON object.
    Json,
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
    /// Section [NAME] of the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, else
    /// ~/.aws/credentials) to write the three credential keys into.
    #[arg(long, default_value = "default")]
    pub profile: String,
    /// One CreateSession and one write, then exit (else keep refreshing until SIGTERM/SIGINT).
    #[arg(long)]
    pub once: bool,
}

/// `serve` flags.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Session flags.
    #[command(flatten)]
    pub session: SessionArgs,
    /// Port on 127.0.0.1 (0: a free port, printed at start). Ignored with --listen.
    #[arg(long, default_value_t = 9911)]
    pub port: u16,
    /// IP TTL / IPv6 hop limit of the answers (1 keeps them from leaving the host, as on EC2).
    #[arg(long, default_value_t = 64)]
    pub hop_limit: u8,
    /// Listen on ADDR (IP:PORT or [IPv6]:PORT) instead of 127.0.0.1:PORT; repeatable. A
    /// non-loopback address serves only the container endpoint.
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<String>,
    /// Enable the container endpoint (GET /v1/credentials) guarded by the token in PATH; the file
    /// is created (0600, random token) when absent.
    #[arg(long, value_name = "PATH")]
    pub container_token_file: Option<std::path::PathBuf>,
}

/// `agent` flags (the daemon), or one of its client subcommands.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// A client subcommand instead of running the agent.
    #[command(subcommand)]
    pub command: Option<AgentCommand>,
    /// Configuration file (default: /etc/rolesanywhere/agent.toml for root,
    /// $XDG_CONFIG_HOME/rolesanywhere/agent.toml otherwise).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Unix socket to listen on (default: the configuration's `socket`, else
    /// /run/rolesanywhere/agent.sock for root, $XDG_RUNTIME_DIR/rolesanywhere/agent.sock otherwise).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Serve Prometheus metrics (GET /metrics) on ADDR (IP:PORT); default: the configuration's
    /// `metrics_listen`, else off.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
}

/// `agent` client subcommands.
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Ask a running agent for its profiles: certificate subject and expiry, credential expiry,
    /// last refresh and last failure (no secrets).
    Status(AgentStatusArgs),
}

/// `agent status` flags.
#[derive(Debug, Args)]
pub struct AgentStatusArgs {
    /// The agent's socket (default: ROLESANYWHERE_AGENT_SOCK, else the agent's default).
    #[arg(long, value_name = "PATH")]
    pub agent_socket: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Refuses a command line with an argument that is not UTF-8, naming its flag (issue 14, 17).
///
/// One rule for every flag: `--certificate` and `--private-key` also take `pkcs11:` URIs and
/// `handle:` values, which are text, and every value may appear in a message; a file whose name is
/// not UTF-8 is reached through a symbolic link with a UTF-8 name. The value itself is never
/// repeated (it may be a password).
pub fn check_utf8(args: &[std::ffi::OsString]) -> Result<(), super::settings::Error> {
    use std::os::unix::ffi::OsStrExt as _;
    for (i, arg) in args.iter().enumerate().skip(1) {
        if arg.to_str().is_some() {
            continue;
        }
        let bytes = arg.as_bytes();
        let joined = bytes
            .starts_with(b"--")
            .then(|| bytes.split(|&b| b == b'=').next())
            .flatten()
            .filter(|name| name.len() < bytes.len())
            .and_then(|name| std::str::from_utf8(name).ok());
        let before = args[i - 1].to_str().filter(|p| p.starts_with('-') && i > 1);
        let what = match joined.or(before) {
            Some(flag) => format!("the value of {}", flag.split('=').next().unwrap_or(flag)),
            None => format!("command-line argument {i}"),
        };
        return Err(super::settings::Error::NotUtf8(what));
    }
    Ok(())
}

/// `credential-process --from-agent NAME [--agent-socket PATH] [--debug]`, read without clap.
///
/// The warm path of the agent (issue 11) is a process started per SDK credential request, and
/// building clap's command tree of every command and flag cost about as many instructions as the
/// request to the agent itself. This reads only that one exact shape: each flag at most once, as
/// `--flag VALUE` or `--flag=VALUE`, with a value that is not empty and (when separate) does not
/// start with `-`, and `--debug` (or [`DEBUG_ENV`] as clap reads it). Anything else (another flag,
/// a repeated one, `--`, help, a value clap would refuse or read differently, an environment value
/// that is not UTF-8) returns `None` and goes through clap, which gives the usual result or error;
/// a test holds the two to the same settings.
pub fn from_agent_fast(
    args: &[std::ffi::OsString],
    env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
) -> Option<CredentialProcessFromAgent> {
    let mut it = args.iter().skip(1);
    if it.next()?.to_str()? != "credential-process" {
        return None;
    }
    let (mut profile, mut socket, mut debug) = (None, None, false);
    while let Some(arg) = it.next() {
        let arg = arg.to_str()?;
        let (name, joined) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (arg, None),
        };
        let slot = match name {
            "--from-agent" => &mut profile,
            "--agent-socket" => &mut socket,
            "--debug" if joined.is_none() && !debug => {
                debug = true;
                continue;
            }
            _ => return None,
        };
        let value = match joined {
            Some(v) => v,
            None => it.next()?.to_str().filter(|v| !v.starts_with('-'))?,
        };
        if slot.is_some() || value.is_empty() {
            return None;
        }
        *slot = Some(value.to_string());
    }
    if !debug && let Some(v) = env(DEBUG_ENV) {
        // clap's FalseyValueParser: empty or one of its false words (any case) is false.
        let v = v.to_str()?.to_lowercase();
        debug = !(v.is_empty() || ["n", "no", "f", "false", "off", "0"].contains(&v.as_str()));
    }
    Some(CredentialProcessFromAgent {
        profile: profile?,
        agent_socket: socket.map(PathBuf::from),
        debug,
    })
}

/// What [`from_agent_fast`] read.
#[derive(Debug, PartialEq, Eq)]
pub struct CredentialProcessFromAgent {
    /// `--from-agent`.
    pub profile: String,
    /// `--agent-socket`.
    pub agent_socket: Option<PathBuf>,
    /// `--debug` or [`DEBUG_ENV`].
    pub debug: bool,
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
        let a = a.session;
        let shown = |s: Option<Secret>| s.map(|s| s.expose().to_string());
        assert_eq!(
            shown(a.key.device.tpm_key_password).as_deref(),
            Some("--s3cret")
        );
        assert_eq!(shown(a.key.device.pkcs8_password).as_deref(), Some("-p8"));
        assert_eq!(
            shown(a.key.device.tpm_parent_password).as_deref(),
            Some("-pp")
        );
    }

    /// `--from-agent` refuses every session flag but `--debug`: the list names each of them.
    #[test]
    fn from_agent_conflicts_with_every_session_flag_but_debug() {
        use clap::CommandFactory as _;
        let cli = Cli::command();
        let cmd = cli
            .find_subcommand("credential-process")
            .expect("credential-process exists");
        let mut session: Vec<&str> = cmd
            .get_arguments()
            .map(|a| a.get_id().as_str())
            .filter(|id| !["from_agent", "agent_socket", "debug", "help"].contains(id))
            .collect();
        session.sort_unstable();
        let mut listed = FROM_AGENT_CONFLICTS.to_vec();
        listed.sort_unstable();
        assert_eq!(session, listed);
        // Each of them is refused with --from-agent, and named.
        for arg in cmd
            .get_arguments()
            .filter(|a| listed.contains(&a.get_id().as_str()))
        {
            let long = format!("--{}", arg.get_long().unwrap());
            let mut argv = vec![
                "rolesanywhere-agent",
                "credential-process",
                "--from-agent=w",
            ];
            let with_value = format!("{long}=1");
            argv.push(if arg.get_action().takes_values() {
                &with_value
            } else {
                &long
            });
            let e = Cli::try_parse_from(&argv).unwrap_err();
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::ArgumentConflict,
                "{argv:?}"
            );
            assert!(e.to_string().contains(&long), "{e}");
        }
        parses(&[
            "credential-process",
            "--from-agent=w",
            "--debug",
            "--agent-socket=/s",
        ]);
        let e = Cli::try_parse_from([
            "rolesanywhere-agent",
            "credential-process",
            "--agent-socket=/s",
        ])
        .unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn non_utf8_arguments_are_refused_naming_their_flag() {
        use std::os::unix::ffi::OsStringExt as _;
        let bad = || std::ffi::OsString::from_vec(b"k\xff.pem".to_vec());
        let argv = |rest: Vec<std::ffi::OsString>| {
            let mut v = vec!["rolesanywhere-agent".into(), "credential-process".into()];
            v.extend(rest);
            v
        };
        let shown = |v: Vec<std::ffi::OsString>| check_utf8(&v).unwrap_err().to_string();
        let e = shown(argv(vec!["--intermediates".into(), bad()]));
        assert!(
            e.starts_with("the value of --intermediates is not valid UTF-8"),
            "{e}"
        );
        let mut joined = std::ffi::OsString::from("--tpm-key-password=");
        joined.push(bad());
        let e = shown(argv(vec![joined]));
        assert!(
            e.starts_with("the value of --tpm-key-password is not"),
            "{e}"
        );
        assert!(!e.contains(".pem"), "the value is never repeated: {e}");
        let e = shown(argv(vec!["--debug".into(), "x".into(), bad()]));
        assert!(e.starts_with("command-line argument 4 is not"), "{e}");
        assert!(check_utf8(&argv(vec!["--certificate".into(), "ë.pem".into()])).is_ok());
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
