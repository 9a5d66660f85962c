//! Validated settings: what the commands see after the raw arguments and the environment are checked.
//!
//! Every usage and configuration mistake that can be found without a device or a network is found
//! here (ARNs, regions, duration, endpoint, timeouts, proxies, unsupported flags). Reads the
//! environment only through the lookup the caller passes, except the proxy variables (read as raw OS
//! strings, so that a value that is not UTF-8 is refused rather than skipped); opens no files and no
//! devices.

use super::args::{Command, DigestArg, FormatArg, KeyArgs, SessionArgs};
use crate::arn::{self, ArnKind};
use crate::session::{CaBundle, ClientOptions, Endpoint, Proxies, SessionRequest};
use crate::signer::KeyOptions;
use crate::signer::pkcs11::is_pkcs11_uri;
use crate::sigv4x509::HashAlg;
use std::path::Path;
use std::time::Duration;

/// Smallest and largest `--session-duration` the service accepts.
pub const DURATION_RANGE: std::ops::RangeInclusive<i64> = 900..=43200;

/// What to run.
#[derive(Debug)]
pub enum Settings {
    /// `credential-process`.
    CredentialProcess(Box<SessionSettings>),
    /// `credential-process --from-agent`.
    FromAgent {
        /// The agent's profile.
        profile: String,
        /// The agent's socket (`--agent-socket`, `ROLESANYWHERE_AGENT_SOCK`, else the default).
        socket: std::path::PathBuf,
        /// `--debug`.
        debug: bool,
    },
    /// `sign-string`.
    SignString {
        /// Key selection.
        key: KeyOptions,
        /// Digest of the test message.
        alg: HashAlg,
        /// Output format.
        format: FormatArg,
        /// `--debug`.
        debug: bool,
    },
    /// `read-certificate-data`.
    ReadCertificateData {
        /// The certificate source (a PEM file or a `pkcs11:` URI).
        certificate: String,
        /// Options to reach a token, when the source is one.
        key: KeyOptions,
        /// `--debug`.
        debug: bool,
    },
    /// `update`.
    Update(Box<UpdateSettings>),
    /// `serve`.
    Serve(Box<ServeSettings>),
    /// `agent` (the daemon or a client subcommand): its configuration file is read by the agent.
    Agent(Box<super::args::AgentArgs>),
    /// `doctor`.
    Doctor(Box<DoctorSettings>),
    /// `version`.
    Version,
}

/// `update`, validated.
#[derive(Debug)]
pub struct UpdateSettings {
    /// The CreateSession settings.
    pub session: SessionSettings,
    /// The section of the credentials file (`--profile`).
    pub profile: String,
    /// `--once`.
    pub once: bool,
    /// The credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`).
    pub file: std::path::PathBuf,
}

/// Where `serve` listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// These addresses (`127.0.0.1:--port`, or the `--listen` ones).
    Addrs(Vec<std::net::SocketAddr>),
    /// The sockets systemd passed (`LISTEN_FDS` of them, `LISTEN_PID` being this process).
    Systemd(usize),
}

/// `serve`, validated.
#[derive(Debug)]
pub struct ServeSettings {
    /// The CreateSession settings.
    pub session: SessionSettings,
    /// Where to listen.
    pub listen: Listen,
    /// `--hop-limit` (1..=255).
    pub hop_limit: u8,
    /// `--container-token-file`.
    pub container_token_file: Option<std::path::PathBuf>,
    /// The role name IMDS lists (last part of the role ARN).
    pub role_name: String,
    /// The role's account.
    pub account_id: String,
}

/// `doctor`, validated as far as it can be without failing: the request's own mistakes are
/// findings of the doctor (check 3), not usage errors.
#[derive(Debug)]
pub struct DoctorSettings {
    /// What to check.
    pub target: DoctorTarget,
    /// The rest of the flags.
    pub options: DoctorOptions,
}

/// `doctor`'s own flags.
#[derive(Debug)]
pub struct DoctorOptions {
    /// `--trust-anchor-pem`.
    pub trust_anchor_pem: Option<std::path::PathBuf>,
    /// `--crl`, in the order given.
    pub crls: Vec<std::path::PathBuf>,
    /// `--trust-policy`.
    pub trust_policy: Option<std::path::PathBuf>,
    /// `--session-policy`.
    pub session_policy: Option<std::path::PathBuf>,
    /// `--live`.
    pub live: bool,
    /// `--warn-days`.
    pub warn_days: u32,
    /// `--format`.
    pub format: super::args::DoctorFormat,
    /// `--debug`.
    pub debug: bool,
}

/// The identity and request `doctor` checks.
#[derive(Debug)]
pub enum DoctorTarget {
    /// Given by the session flags.
    Flags(Box<DoctorRequest>),
    /// Profile `profile` of the agent configuration file `config` (read by the doctor).
    Agent {
        /// The configuration file.
        config: std::path::PathBuf,
        /// The profile.
        profile: String,
    },
}

/// The session flags of `doctor`: the key, the ARNs as given, and the CreateSession settings
/// when they are valid (else why not: check 3 reports it).
#[derive(Debug)]
pub struct DoctorRequest {
    /// Key and certificate selection.
    pub key: KeyOptions,
    /// `--trust-anchor-arn` as given.
    pub trust_anchor_arn: Option<String>,
    /// `--profile-arn` as given.
    pub profile_arn: Option<String>,
    /// `--role-arn` as given.
    pub role_arn: Option<String>,
    /// The settings `credential-process` would run with these flags, or its usage error.
    pub session: Result<SessionSettings, Error>,
}

/// Everything a CreateSession call needs, validated.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Key and certificate selection.
    pub key: KeyOptions,
    /// The request (ARNs, region, duration, session name).
    pub request: SessionRequest,
    /// Where to send it.
    pub endpoint: Endpoint,
    /// How to connect.
    pub client: ClientOptions,
    /// `--debug`.
    pub debug: bool,
}

/// Usage and configuration errors (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Flags the command needs are missing: all of them, so one run tells the whole story.
    #[error("{command} needs {}{}", and_list(missing), missing_note(missing))]
    MissingFlags {
        /// The command.
        command: &'static str,
        /// The missing flags, in the order `--help` lists them.
        missing: Vec<&'static str>,
    },
    /// An ARN or region is malformed, or the regions disagree.
    #[error(transparent)]
    Arn(#[from] arn::Error),
    /// `--session-duration` out of range.
    #[error(
        "--session-duration {0} is out of range: it must be between 900 and 43200 seconds \
         (and within the profile's and role's maximum)"
    )]
    Duration(i64),
    /// A zero timeout.
    #[error("{0} must be at least 1 second")]
    Timeout(&'static str),
    /// `AWS_USE_FIPS_ENDPOINT` is neither true nor false.
    #[error("AWS_USE_FIPS_ENDPOINT={:?} is not valid: use true or false", crate::text::redact(.0))]
    FipsEnv(String),
    /// `--role-session-name` the service would refuse.
    #[error(
        "--role-session-name {:?} is invalid: use 2 to 64 characters of letters, digits and + = , . @ _ -",
        crate::text::redact(.0)
    )]
    RoleSessionName(String),
    /// An OS certificate store flag on a platform without one.
    #[error(
        "{0} selects a certificate from the Windows or macOS certificate store, which this platform \
         does not have; use --certificate and --private-key instead"
    )]
    OsStore(&'static str),
    /// A `--certificate` that cannot hold certificates (a TPM key handle).
    #[error(
        "--certificate {} is a TPM key handle, not a certificate: read-certificate-data reads a \
         PEM file or a pkcs11: URI",
        crate::text::arg(.0)
    )]
    NotACertificate(String),
    /// `--profile` cannot be a section of the credentials file.
    #[error(transparent)]
    Profile(#[from] crate::update::credfile::Error),
    /// Neither `AWS_SHARED_CREDENTIALS_FILE` nor `HOME` says where the credentials file is.
    #[error(
        "cannot tell where the shared credentials file is: neither AWS_SHARED_CREDENTIALS_FILE nor \
         HOME is set; set AWS_SHARED_CREDENTIALS_FILE to its path"
    )]
    NoCredentialsFile,
    /// A command that exists but is not implemented yet.
    #[error("the {0} command is not supported yet; use credential-process")]
    NotSupported(&'static str),
    /// `--hop-limit 0`.
    #[error("--hop-limit 0 is out of range: give 1 to 255 (1 keeps answers on this host)")]
    HopLimit,
    /// A `--listen` value that is not an address with a port.
    #[error(
        "invalid --listen {}: give IP:PORT or [IPv6]:PORT, e.g. 127.0.0.1:9911 or [::1]:9911",
        crate::text::arg(.0)
    )]
    ListenAddr(String),
    /// Too many `--listen`.
    #[error("{0} --listen addresses given; at most 32 are served")]
    ListenCount(usize),
    /// `LISTEN_PID` names this process but `LISTEN_FDS` is not a usable count.
    #[error(
        "LISTEN_PID is this process but LISTEN_FDS={} is not a count of 1 to 32 sockets; check \
         the systemd socket unit",
        crate::text::arg(.0)
    )]
    ListenFds(String),
    /// The endpoint URL or a proxy variable is unusable. Shown as the session error, which stays
    /// in the chain (not `transparent`) so that its hint is found.
    #[error("{0}")]
    Endpoint(#[from] crate::session::Error),
    /// A flag that takes a file was given a `pkcs11:` URI or a value holding `pin-value` (which
    /// only a URI's query may hold): refused before anything prints the value.
    #[error(
        "{flag} takes a file, not a pkcs11: URI or a pin-value (the value is not shown); {hint}"
    )]
    UriForFile {
        /// The flag.
        flag: &'static str,
        /// Where the URI belongs.
        hint: &'static str,
    },
    /// `--from-agent` names no valid profile.
    #[error(
        "--from-agent {:?} is not a profile name: use 1 to 64 of A-Z a-z 0-9 _ . -",
        crate::text::redact(.0)
    )]
    AgentProfile(String),
    /// No socket given and no default one (shown as the paths error, which stays in the chain for
    /// its hint).
    #[error("{0}")]
    AgentSocket(#[from] crate::agent::paths::Error),
    /// A command-line argument is not UTF-8 (`the value of --FLAG` or `command-line argument N`).
    #[error(
        "{0} is not valid UTF-8: paths, URIs and values must be; reach a file whose name is not \
         UTF-8 through a symbolic link with a UTF-8 name"
    )]
    NotUtf8(String),
}

/// Every settings error is a usage or configuration mistake.
impl rolesanywhere_core::Classify for Error {
    fn class(&self) -> rolesanywhere_core::ErrorClass {
        rolesanywhere_core::ErrorClass::Configuration
    }
}

/// `credential-process --from-agent`: the profile name checked, the socket chosen (flag, then
/// `ROLESANYWHERE_AGENT_SOCK`, then the default). Shared by [`validate`] and the fast path of
/// [`super::args::from_agent_fast`], so both give the same settings.
pub fn from_agent(
    profile: String,
    agent_socket: Option<std::path::PathBuf>,
    debug: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, Error> {
    if !crate::agent::protocol::valid_profile_name(&profile) {
        return Err(Error::AgentProfile(profile));
    }
    Ok(Settings::FromAgent {
        profile,
        socket: crate::agent::paths::client_socket(agent_socket, env)?,
        debug,
    })
}

/// Validates `command`; `env` looks up environment variables.
pub fn validate(command: Command, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, Error> {
    match command {
        Command::CredentialProcess(a) => match a.from_agent {
            // clap refused any other session flag with it.
            Some(profile) => from_agent(profile, a.agent_socket, a.session.key.debug, env),
            None => Ok(Settings::CredentialProcess(Box::new(session(
                "credential-process",
                a.session,
                env,
            )?))),
        },
        Command::SignString(a) => {
            let debug = a.key.debug;
            let key = key_options(a.key)?;
            if private_key_missing(&key) {
                return Err(Error::MissingFlags {
                    command: "sign-string",
                    missing: vec!["--private-key"],
                });
            }
            Ok(Settings::SignString {
                debug,
                key,
                alg: match a.digest {
                    DigestArg::Sha256 => HashAlg::Sha256,
                    DigestArg::Sha384 => HashAlg::Sha384,
                    DigestArg::Sha512 => HashAlg::Sha512,
                },
                format: a.format,
            })
        }
        Command::ReadCertificateData(a) => {
            let debug = a.key.debug;
            let key = key_options(a.key)?;
            let certificate = key.certificate.clone().ok_or(Error::MissingFlags {
                command: "read-certificate-data",
                missing: vec!["--certificate"],
            })?;
            if certificate.starts_with("handle:") {
                return Err(Error::NotACertificate(certificate));
            }
            Ok(Settings::ReadCertificateData {
                certificate,
                key,
                debug,
            })
        }
        Command::Update(a) => {
            crate::update::credfile::check_profile_name(&a.profile)?;
            let session = session("update", a.session, env)?;
            let file = crate::update::credentials_path(env).ok_or(Error::NoCredentialsFile)?;
            Ok(Settings::Update(Box::new(UpdateSettings {
                session,
                profile: a.profile,
                once: a.once,
                file,
            })))
        }
        Command::Serve(a) => {
            if a.hop_limit == 0 {
                return Err(Error::HopLimit);
            }
            let listen = listen(a.port, &a.listen, env)?;
            let session = session("serve", a.session, env)?;
            let role = arn::parse(&session.request.role_arn, ArnKind::Role)?;
            let role_name = role.resource().rsplit('/').next().unwrap_or("").to_string();
            Ok(Settings::Serve(Box::new(ServeSettings {
                listen,
                hop_limit: a.hop_limit,
                container_token_file: a.container_token_file,
                role_name,
                account_id: role.account.clone(),
                session,
            })))
        }
        Command::Agent(a) => Ok(Settings::Agent(a.into())),
        Command::Doctor(a) => doctor(a, env),
        Command::Version => Ok(Settings::Version),
        // Dispatched before validation (see `cli::execute`); unreachable here.
        Command::Enroll(_) => Err(Error::NotSupported("enroll")),
    }
}

/// `doctor`: a missing certificate or key is a usage error (there is nothing to check); every
/// other mistake of the session flags is kept for the doctor to report.
fn doctor(
    a: super::args::DoctorArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, Error> {
    let debug = a.session.key.debug;
    check_file_flags(&[
        ("--trust-anchor-pem", a.trust_anchor_pem.as_deref()),
        ("--trust-policy", a.trust_policy.as_deref()),
        ("--session-policy", a.session_policy.as_deref()),
    ])?;
    for crl in &a.crl {
        check_file_flags(&[("--crl", Some(crl.as_path()))])?;
    }
    let target = match a.from_agent {
        Some(profile) => {
            if !crate::agent::protocol::valid_profile_name(&profile) {
                return Err(Error::AgentProfile(profile));
            }
            let config = match a.config {
                Some(c) => c,
                None => crate::agent::paths::default_config(env)?,
            };
            DoctorTarget::Agent { config, profile }
        }
        None => {
            let key = key_options(a.session.key.clone())?;
            let mut missing = Vec::new();
            if certificate_missing(&key) {
                missing.push("--certificate");
            }
            if private_key_missing(&key) {
                missing.push("--private-key");
            }
            if !missing.is_empty() {
                return Err(Error::MissingFlags {
                    command: "doctor",
                    missing,
                });
            }
            DoctorTarget::Flags(Box::new(DoctorRequest {
                key,
                trust_anchor_arn: a.session.trust_anchor_arn.clone(),
                profile_arn: a.session.profile_arn.clone(),
                role_arn: a.session.role_arn.clone(),
                session: session("doctor", a.session, env),
            }))
        }
    };
    Ok(Settings::Doctor(Box::new(DoctorSettings {
        target,
        options: DoctorOptions {
            trust_anchor_pem: a.trust_anchor_pem,
            crls: a.crl,
            trust_policy: a.trust_policy,
            session_policy: a.session_policy,
            live: a.live,
            warn_days: a.warn_days,
            format: a.format,
            debug,
        },
    })))
}

/// `serve`'s listeners: systemd's sockets when `LISTEN_PID` is this process, else `--listen`,
/// else 127.0.0.1:`--port`.
fn listen(
    port: u16,
    addrs: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Listen, Error> {
    if env("LISTEN_PID").is_some_and(|pid| pid.trim() == std::process::id().to_string()) {
        let count = env("LISTEN_FDS").unwrap_or_default();
        return match count.trim().parse::<usize>() {
            Ok(n) if (1..=32).contains(&n) => Ok(Listen::Systemd(n)),
            _ => Err(Error::ListenFds(count)),
        };
    }
    if addrs.is_empty() {
        return Ok(Listen::Addrs(vec![std::net::SocketAddr::from((
            [127, 0, 0, 1],
            port,
        ))]));
    }
    if addrs.len() > 32 {
        return Err(Error::ListenCount(addrs.len()));
    }
    addrs
        .iter()
        .map(|a| {
            a.parse::<std::net::SocketAddr>()
                .map_err(|_| Error::ListenAddr(a.clone()))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Listen::Addrs)
}

/// Validates the session flags of `command` (also the agent's profiles, `config.rs`, built as
/// [`SessionArgs`] so that a profile is checked exactly as the same flags are).
pub(crate) fn session(
    command: &'static str,
    a: SessionArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<SessionSettings, Error> {
    let debug = a.key.debug;
    let key = key_options(a.key)?;
    // Every missing flag at once: a user (or a `credential_process` line) should not need a run per flag.
    let mut missing = Vec::new();
    if certificate_missing(&key) {
        missing.push("--certificate");
    }
    if private_key_missing(&key) {
        missing.push("--private-key");
    }
    for (flag, value) in [
        ("--trust-anchor-arn", &a.trust_anchor_arn),
        ("--profile-arn", &a.profile_arn),
        ("--role-arn", &a.role_arn),
    ] {
        if value.is_none() {
            missing.push(flag);
        }
    }
    let (Some(trust_anchor), Some(profile), Some(role), true) = (
        a.trust_anchor_arn.as_deref(),
        a.profile_arn.as_deref(),
        a.role_arn.as_deref(),
        missing.is_empty(),
    ) else {
        return Err(Error::MissingFlags { command, missing });
    };
    let trust_anchor = arn::parse(trust_anchor, ArnKind::TrustAnchor)?;
    let profile = arn::parse(profile, ArnKind::Profile)?;
    let role = arn::parse(role, ArnKind::Role)?;
    arn::check_same_region(&trust_anchor, &profile)?;
    let region = match a.region {
        Some(r) => {
            arn::check_region(&r)?;
            r
        }
        None => trust_anchor.region.clone(),
    };
    if !DURATION_RANGE.contains(&a.session_duration) {
        return Err(Error::Duration(a.session_duration));
    }
    let duration_seconds =
        u32::try_from(a.session_duration).map_err(|_| Error::Duration(a.session_duration))?;
    if let Some(name) = &a.role_session_name {
        check_role_session_name(name)?;
    }
    let fips = a.use_fips_endpoint || fips_from_env(env)?;
    let endpoint = match a.endpoint {
        Some(e) => Endpoint::parse(&e)?,
        None => Endpoint::parse(&arn::endpoint_for(&region, fips)?)?,
    };
    if a.connect_timeout == 0 {
        return Err(Error::Timeout("--connect-timeout"));
    }
    if a.timeout == 0 {
        return Err(Error::Timeout("--timeout"));
    }
    let ca_bundle = ["AWS_CA_BUNDLE", "SSL_CERT_FILE"]
        .into_iter()
        .find_map(|variable| {
            env(variable).filter(|v| !v.is_empty()).map(|v| CaBundle {
                path: v.into(),
                variable,
            })
        });
    // Read directly rather than through `env`: a value that is not UTF-8 must be seen to be refused.
    let proxies = Proxies::from_env(&|name| std::env::var_os(name))?;
    Ok(SessionSettings {
        key,
        request: SessionRequest {
            region,
            profile_arn: profile.text,
            role_arn: role.text,
            trust_anchor_arn: trust_anchor.text,
            duration_seconds,
            role_session_name: a.role_session_name,
        },
        endpoint,
        client: ClientOptions {
            connect_timeout: Duration::from_secs(a.connect_timeout),
            timeout: Duration::from_secs(a.timeout),
            verify_tls: !a.no_verify_ssl,
            ca_bundle,
            proxies,
            ..ClientOptions::default()
        },
        debug,
    })
}

/// True when no key is named: `--private-key` is missing and `--certificate` is not a `pkcs11:` URI
/// (whose key the PKCS#11 backend finds on the certificate's token).
fn private_key_missing(key: &KeyOptions) -> bool {
    key.private_key.is_none() && !key.certificate.as_deref().is_some_and(is_pkcs11_uri)
}

/// True when a CreateSession needs `--certificate` and does not have it. A key file may be a PKCS#12
/// file carrying the certificate, which only reading it tells: that case is left to the loader.
fn certificate_missing(key: &KeyOptions) -> bool {
    key.certificate.is_none()
        && key
            .private_key
            .as_deref()
            .is_none_or(|k| is_pkcs11_uri(k) || k.starts_with("handle:"))
}

/// Refuses a `pkcs11:` URI, or any value holding `pin-value`, given to a flag that takes a file.
/// Said here rather than as "cannot read file pkcs11:…": the value (and its PIN) is never printed,
/// not even in the profile `enroll install-cert` prints.
pub fn check_file_flags(flags: &[(&'static str, Option<&Path>)]) -> Result<(), Error> {
    for &(flag, path) in flags {
        let Some(text) = path.map(Path::to_string_lossy) else {
            continue;
        };
        if !is_pkcs11_uri(&text) && crate::text::pin_value_at(&text).is_none() {
            continue;
        }
        let hint = match flag {
            "--intermediates" => {
                "with --certificate pkcs11:… the token's other certificates are chain candidates \
                 already"
            }
            "--pkcs11-lib" => "give the module's path; URIs go to --certificate or --private-key",
            f if !f.ends_with("-file") => "give the file's path",
            _ => {
                "a PIN goes into the pin-value of a pkcs11: URI given to --certificate or \
                 --private-key, or into a file named by its pin-source=file:/PATH"
            }
        };
        return Err(Error::UriForFile { flag, hint });
    }
    Ok(())
}

/// [`check_file_flags`] for the file flags of the device flags every key-opening command shares.
fn check_device_files(d: &super::args::DeviceArgs) -> Result<(), Error> {
    check_file_flags(&[
        ("--pkcs11-lib", d.pkcs11_lib.as_deref()),
        (
            "--pkcs11-context-pin-file",
            d.pkcs11_context_pin_file.as_deref(),
        ),
        (
            "--tpm-key-password-file",
            d.tpm_key_password_file.as_deref(),
        ),
        (
            "--tpm-parent-password-file",
            d.tpm_parent_password_file.as_deref(),
        ),
        ("--pkcs8-password-file", d.pkcs8_password_file.as_deref()),
    ])
}

/// [`check_file_flags`] for the file flags of an `enroll` command (which has no settings layer).
pub fn check_enroll(cmd: &crate::enroll::EnrollCommand) -> Result<(), Error> {
    use crate::enroll::EnrollCommand;
    match cmd {
        EnrollCommand::Keygen(a) => check_device_files(&a.device),
        EnrollCommand::Csr(a) => {
            check_device_files(&a.device)?;
            check_file_flags(&[("--out", Some(a.out.as_path()))])
        }
        EnrollCommand::InstallCert(a) => {
            check_device_files(&a.device)?;
            check_file_flags(&[
                ("--certificate", Some(a.certificate.as_path())),
                ("--intermediates", a.intermediates.as_deref()),
                ("--out", a.out.as_deref()),
            ])
        }
    }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// When missing flags are needed only in some combinations, which ones.
fn missing_note(missing: &[&str]) -> String {
    let key = missing.contains(&"--private-key");
    let certificate = missing.contains(&"--certificate");
    let name = |flag: &'static str| if missing.len() == 1 { "it" } else { flag };
    let mut note = String::new();
    if key {
        note = format!(
            "; {} may be left out when --certificate is a pkcs11: URI (the key is found on its token)",
            name("--private-key")
        );
    }
    // Only when no key is named either: a pkcs11: or handle: key never comes with its certificate.
    if key && certificate {
        note.push_str(", --certificate when --private-key is a PKCS#12 file that holds it");
    }
    note
}

fn fips_from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<bool, Error> {
    match env("AWS_USE_FIPS_ENDPOINT") {
        None => Ok(false),
        Some(v) if v.is_empty() || v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) => Err(Error::FipsEnv(v)),
    }
}

fn check_role_session_name(name: &str) -> Result<(), Error> {
    let ok = (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::RoleSessionName(name.to_string()))
    }
}

fn key_options(k: KeyArgs) -> Result<KeyOptions, Error> {
    if k.cert_selector.is_some() {
        return Err(Error::OsStore("--cert-selector"));
    }
    if k.system_store_name.is_some() {
        return Err(Error::OsStore("--system-store-name"));
    }
    if k.use_latest_expiring_certificate {
        return Err(Error::OsStore("--use-latest-expiring-certificate"));
    }
    check_file_flags(&[("--intermediates", k.intermediates.as_deref())])?;
    check_device_files(&k.device)?;
    Ok(KeyOptions {
        certificate: k.certificate,
        private_key: k.private_key,
        intermediates: k.intermediates,
        ..k.device.key_options()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args;
    use clap::Parser;

    const TA: &str = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/ta-1";
    const PR: &str = "arn:aws:rolesanywhere:us-east-1:123456789012:profile/p-1";
    const RO: &str = "arn:aws:iam::123456789012:role/r";

    fn parse(extra: &[&str], env: &[(&str, &str)]) -> Result<Settings, Error> {
        let mut argv = vec![
            "rolesanywhere-agent",
            "credential-process",
            "--certificate",
            "c.pem",
            "--private-key",
            "k.pem",
            "--trust-anchor-arn",
            TA,
            "--profile-arn",
            PR,
            "--role-arn",
            RO,
        ];
        argv.extend_from_slice(extra);
        let cli = args::Cli::try_parse_from(argv).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        validate(cli.command, &move |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    fn session_of(s: Settings) -> SessionSettings {
        match s {
            Settings::CredentialProcess(s) => *s,
            other => panic!("not a session: {other:?}"),
        }
    }

    #[test]
    fn region_defaults_to_trust_anchor_and_endpoint_follows() {
        let s = session_of(parse(&[], &[]).unwrap());
        assert_eq!(s.request.region, "us-east-1");
        assert_eq!(s.endpoint.host(), "rolesanywhere.us-east-1.amazonaws.com");
        assert_eq!(s.request.duration_seconds, 3600);
    }

    #[test]
    fn fips_changes_host_but_not_signing_region() {
        for (flags, env) in [
            (vec!["--use-fips-endpoint"], vec![]),
            (vec![], vec![("AWS_USE_FIPS_ENDPOINT", "TRUE")]),
        ] {
            let s = session_of(parse(&flags, &env).unwrap());
            assert_eq!(
                s.endpoint.host(),
                "rolesanywhere-fips.us-east-1.amazonaws.com"
            );
            assert_eq!(s.request.region, "us-east-1");
        }
        let e = parse(&[], &[("AWS_USE_FIPS_ENDPOINT", "yes")]).unwrap_err();
        assert!(e.to_string().contains("AWS_USE_FIPS_ENDPOINT"), "{e}");
    }

    #[test]
    fn duration_outside_service_range_is_rejected() {
        for d in ["899", "43201", "-1"] {
            let e = parse(&["--session-duration", d], &[]).unwrap_err();
            assert!(matches!(e, Error::Duration(_)), "{d}: {e}");
        }
        for d in ["900", "43200"] {
            assert!(parse(&["--session-duration", d], &[]).is_ok());
        }
    }

    #[test]
    fn ca_bundle_prefers_aws_ca_bundle() {
        let s = session_of(
            parse(
                &[],
                &[("SSL_CERT_FILE", "/b.pem"), ("AWS_CA_BUNDLE", "/a.pem")],
            )
            .unwrap(),
        );
        let b = s.client.ca_bundle.unwrap();
        assert_eq!(
            (b.path.to_str().unwrap(), b.variable),
            ("/a.pem", "AWS_CA_BUNDLE")
        );
    }

    #[test]
    fn os_store_flags_are_usage_errors_and_serve_validates_its_own() {
        let e = parse(&["--cert-selector", "x"], &[]).unwrap_err();
        assert!(e.to_string().contains("--cert-selector"), "{e}");
        let serve = |extra: &[&str], env: &[(&str, &str)]| {
            let mut argv = vec![
                "rolesanywhere-agent",
                "serve",
                "--certificate",
                "c.pem",
                "--private-key",
                "k.pem",
                "--trust-anchor-arn",
                TA,
                "--profile-arn",
                PR,
                "--role-arn",
                RO,
            ];
            argv.extend_from_slice(extra);
            let cli = args::Cli::try_parse_from(argv).unwrap();
            let env: Vec<(String, String)> = env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            validate(cli.command, &move |name| {
                env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
            })
        };
        let Ok(Settings::Serve(s)) = serve(&[], &[]) else {
            panic!("serve refused")
        };
        assert_eq!(
            s.listen,
            Listen::Addrs(vec!["127.0.0.1:9911".parse().unwrap()])
        );
        assert_eq!(s.hop_limit, 64);
        assert_eq!(s.account_id, RO.split(':').nth(4).unwrap());
        assert_eq!(Some(s.role_name.as_str()), RO.rsplit('/').next());
        let Ok(Settings::Serve(s)) =
            serve(&["--listen", "[::1]:0", "--listen", "10.0.0.1:80"], &[])
        else {
            panic!("serve refused")
        };
        assert_eq!(
            s.listen,
            Listen::Addrs(vec![
                "[::1]:0".parse().unwrap(),
                "10.0.0.1:80".parse().unwrap()
            ])
        );
        let pid = std::process::id().to_string();
        let Ok(Settings::Serve(s)) = serve(&[], &[("LISTEN_PID", &pid), ("LISTEN_FDS", "2")])
        else {
            panic!("serve refused")
        };
        assert_eq!(s.listen, Listen::Systemd(2));
        // Another process's sockets are not ours.
        let Ok(Settings::Serve(s)) = serve(&[], &[("LISTEN_PID", "1"), ("LISTEN_FDS", "2")]) else {
            panic!("serve refused")
        };
        assert!(matches!(s.listen, Listen::Addrs(_)));
        for (extra, env, needle) in [
            (&["--hop-limit", "0"][..], &[][..], "--hop-limit"),
            (&["--listen", "localhost:1"][..], &[][..], "--listen"),
            (&["--listen", "127.0.0.1"][..], &[][..], "--listen"),
            (
                &[][..],
                &[("LISTEN_PID", pid.as_str()), ("LISTEN_FDS", "0")][..],
                "LISTEN_FDS",
            ),
        ] {
            let e = serve(extra, env).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn update_checks_the_profile_and_finds_the_credentials_file() {
        let update = |extra: &[&str], env: &[(&str, &str)]| {
            let mut argv = vec![
                "rolesanywhere-agent",
                "update",
                "--certificate",
                "c.pem",
                "--private-key",
                "k.pem",
                "--trust-anchor-arn",
                TA,
                "--profile-arn",
                PR,
                "--role-arn",
                RO,
            ];
            argv.extend_from_slice(extra);
            let cli = args::Cli::try_parse_from(argv).unwrap();
            let env: Vec<(String, String)> = env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            validate(cli.command, &move |k| {
                env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
            })
        };
        match update(&["--once"], &[("HOME", "/home/u")]).unwrap() {
            Settings::Update(u) => {
                assert_eq!(u.profile, "default");
                assert!(u.once);
                assert_eq!(u.file, Path::new("/home/u/.aws/credentials"));
            }
            other => panic!("{other:?}"),
        }
        let e = update(&["--profile", "DEFAULT"], &[("HOME", "/h")]).unwrap_err();
        assert!(matches!(e, Error::Profile(_)), "{e}");
        let e = update(&[], &[]).unwrap_err();
        assert!(matches!(e, Error::NoCredentialsFile), "{e}");
        let cli = args::Cli::try_parse_from(["rolesanywhere-agent", "update"]).unwrap();
        let e = validate(cli.command, &|_| None).unwrap_err();
        assert!(e.to_string().starts_with("update needs"), "{e}");
    }

    #[test]
    fn invalid_role_session_name_is_rejected() {
        assert!(parse(&["--role-session-name", "ok-name@x"], &[]).is_ok());
        let e = parse(&["--role-session-name", "bad name"], &[]).unwrap_err();
        assert!(matches!(e, Error::RoleSessionName(_)), "{e}");
    }

    /// Which flags count as missing depends on where the key and certificate come from.
    #[test]
    fn missing_flags_follow_the_key_source() {
        let missing = |flags: &[&str]| {
            let mut argv = vec![
                "rolesanywhere-agent",
                "credential-process",
                "--role-arn",
                RO,
            ];
            argv.extend_from_slice(flags);
            let cli = args::Cli::try_parse_from(argv).unwrap();
            match validate(cli.command, &|_| None) {
                Err(Error::MissingFlags { missing, .. }) => missing,
                other => panic!("{flags:?}: {other:?}"),
            }
        };
        let arns = ["--trust-anchor-arn", "--profile-arn"];
        assert_eq!(
            missing(&[]),
            [&["--certificate", "--private-key"][..], &arns].concat()
        );
        // The key is found on the certificate's token.
        assert_eq!(missing(&["--certificate", "pkcs11:token=t"]), arns);
        // A token or TPM key never carries its certificate; a key file may (PKCS#12).
        for key in ["pkcs11:token=t;object=k", "handle:0x81000001"] {
            assert_eq!(
                missing(&["--private-key", key]),
                [&["--certificate"][..], &arns].concat()
            );
        }
        assert_eq!(missing(&["--private-key", "id.p12"]), arns);
        // A certificate file needs a key named next to it.
        assert_eq!(
            missing(&["--certificate", "c.pem"]),
            [&["--private-key"][..], &arns].concat()
        );
    }

    /// Issue 14 (3): a URI in any case, or after blanks, names the key's token like `pkcs11:` does.
    #[test]
    fn any_case_pkcs11_certificate_needs_no_private_key() {
        let cli = args::Cli::try_parse_from([
            "rolesanywhere-agent",
            "sign-string",
            "--certificate",
            " PKCS11:token=t",
        ])
        .unwrap();
        let s = validate(cli.command, &|_| None);
        assert!(matches!(s, Ok(Settings::SignString { .. })), "{s:?}");
        let key = KeyOptions {
            certificate: Some("Pkcs11:token=t".into()),
            ..KeyOptions::default()
        };
        assert!(!private_key_missing(&key));
        let key = KeyOptions {
            private_key: Some("PKCS11:token=t;object=k".into()),
            ..KeyOptions::default()
        };
        assert!(certificate_missing(&key));
    }

    /// Issue 14 (3): a URI or a pin-value given to a file flag is refused without being shown.
    #[test]
    fn file_flags_refuse_uris_and_pin_values_without_showing_them() {
        for (flag, value) in [
            ("--intermediates", "PKCS11:token=t?pin-value=Zq7Kx"),
            ("--pkcs11-lib", " pkcs11:token=t?pin-value=Zq7Kx"),
            ("--pkcs11-lib", "/lib/pin%2Dvalue=Zq7Kx.so"),
            ("--pkcs8-password-file", "/run/PIN-VALUE=Zq7Kx"),
        ] {
            let e = parse(&[flag, value], &[]).unwrap_err();
            assert!(matches!(e, Error::UriForFile { .. }), "{flag} {value}: {e}");
            let text = e.to_string();
            assert!(text.starts_with(flag) && !text.contains("Zq7Kx"), "{text}");
        }
        assert!(parse(&["--intermediates", "/etc/pkcs11/chain.pem"], &[]).is_ok());
    }

    #[test]
    fn from_agent_takes_its_socket_from_the_flag_the_environment_or_the_default() {
        let from_agent = |extra: &[&str], env: &[(&str, &str)]| {
            let mut argv = vec!["rolesanywhere-agent", "credential-process"];
            argv.extend_from_slice(extra);
            let cli = args::Cli::try_parse_from(argv).unwrap();
            let env: Vec<(String, String)> = env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            validate(cli.command, &move |k| {
                env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
            })
        };
        let sock = crate::agent::paths::SOCKET_ENV;
        let socket_of = |s: Settings| match s {
            Settings::FromAgent {
                profile, socket, ..
            } => {
                assert_eq!(profile, "web");
                socket
            }
            other => panic!("{other:?}"),
        };
        let flag = ["--from-agent", "web", "--agent-socket", "/f.sock"];
        assert_eq!(
            socket_of(from_agent(&flag, &[(sock, "/e.sock")]).unwrap()),
            Path::new("/f.sock")
        );
        assert_eq!(
            socket_of(from_agent(&["--from-agent", "web"], &[(sock, "/e.sock")]).unwrap()),
            Path::new("/e.sock")
        );
        // Neither flag nor variable: the agent's default, which a user finds under
        // XDG_RUNTIME_DIR (root under /run, whatever the environment).
        match from_agent(&["--from-agent", "web"], &[]) {
            Ok(s) => assert_eq!(socket_of(s), Path::new(crate::agent::paths::SYSTEM_SOCKET)),
            Err(e) => assert!(matches!(e, Error::AgentSocket(_)), "{e}"),
        }
        let e = from_agent(&["--from-agent", "a/../b\u{1b}"], &[]).unwrap_err();
        assert!(matches!(e, Error::AgentProfile(_)), "{e}");
    }

    /// The fast path of `--from-agent` gives what clap and `validate` give, for every argv it
    /// takes; every other argv is left to clap.
    #[test]
    fn from_agent_fast_path_agrees_with_clap_or_declines() {
        use std::ffi::OsString;
        let argv = |extra: &[&str]| -> Vec<OsString> {
            ["rolesanywhere-agent", "credential-process"]
                .iter()
                .chain(extra)
                .map(OsString::from)
                .collect()
        };
        // Both read ROLESANYWHERE_DEBUG from the process, as clap does.
        let real_env = |k: &str| {
            (k == args::DEBUG_ENV)
                .then(|| std::env::var_os(k))
                .flatten()
        };
        let no_env = |_: &str| None::<String>;
        let no_os_env = |_: &str| None::<OsString>;
        let taken: &[&[&str]] = &[
            &["--from-agent", "web"],
            &["--from-agent=web"],
            &["--from-agent", "web", "--agent-socket", "/s.sock"],
            &["--agent-socket=/a b/s=1.sock", "--from-agent", "db.prod"],
            &["--debug", "--from-agent", "web"],
            &[
                "--from-agent",
                "w-1",
                "--debug",
                "--agent-socket",
                "/s.sock",
            ],
            &["--from-agent=a=b"],
            &["--from-agent", "bad/name"],
            &["--from-agent", "web", "--agent-socket", "relative.sock"],
        ];
        for extra in taken {
            let a = argv(extra);
            let fast = args::from_agent_fast(&a, &real_env)
                .unwrap_or_else(|| panic!("{extra:?} not taken by the fast path"));
            let fast = from_agent(fast.profile, fast.agent_socket, fast.debug, &no_env);
            let cli = args::Cli::try_parse_from(&a).unwrap();
            let slow = validate(cli.command, &no_env);
            assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{extra:?}");
        }
        let declined: &[&[&str]] = &[
            &[],
            &["--from-agent"],
            &["--from-agent="],
            &["--from-agent", "-x"],
            &["--from-agent", "web", "--from-agent", "db"],
            &["--from-agent", "web", "--debug", "--debug"],
            &["--debug=true", "--from-agent", "web"],
            &["--from-agent", "web", "--agent-socket", ""],
            &["--from-agent", "web", "--agent-socket", "-s"],
            &["--agent-socket", "/s.sock"],
            &["--from-agent", "web", "--region", "eu-west-1"],
            &["--from-agent", "web", "--"],
            &["--from-agent", "web", "extra"],
            &["--from-agent", "web", "-h"],
            &["--help"],
        ];
        for extra in declined {
            assert_eq!(
                args::from_agent_fast(&argv(extra), &real_env),
                None,
                "{extra:?}"
            );
        }
        let other =
            ["rolesanywhere-agent", "sign-string", "--from-agent", "web"].map(OsString::from);
        assert_eq!(args::from_agent_fast(&other, &no_os_env), None);
        use std::os::unix::ffi::OsStringExt as _;
        let mut bad = argv(&["--from-agent"]);
        bad.push(OsString::from_vec(vec![b'w', 0xff]));
        assert_eq!(args::from_agent_fast(&bad, &no_os_env), None);
    }

    /// ROLESANYWHERE_DEBUG means what clap's FalseyValueParser makes of it on the clap path.
    #[test]
    fn from_agent_fast_path_reads_the_debug_variable_as_clap_does() {
        use clap::builder::TypedValueParser as _;
        use std::ffi::OsString;
        let a: Vec<OsString> = [
            "rolesanywhere-agent",
            "credential-process",
            "--from-agent",
            "w",
        ]
        .map(OsString::from)
        .to_vec();
        let cmd = clap::Command::new("t");
        for v in [
            "", "0", "n", "No", "F", "false", "OFF", "1", "yes", "true", "on", " ", "x", "nope",
        ] {
            let env = |k: &str| (k == args::DEBUG_ENV).then(|| OsString::from(v));
            let fast = args::from_agent_fast(&a, &env).unwrap().debug;
            let clap = clap::builder::FalseyValueParser::new()
                .parse_ref(&cmd, None, std::ffi::OsStr::new(v))
                .unwrap();
            assert_eq!(fast, clap, "{v:?}");
        }
        // Not UTF-8: clap refuses it, so the fast path leaves it to clap.
        use std::os::unix::ffi::OsStringExt as _;
        let env = |k: &str| (k == args::DEBUG_ENV).then(|| OsString::from_vec(vec![0xff]));
        assert_eq!(args::from_agent_fast(&a, &env), None);
    }

    #[test]
    fn password_flags_become_redacted_secrets() {
        let s = session_of(parse(&["--pkcs8-password", "hunter2"], &[]).unwrap());
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.key.pkcs8_password.unwrap().expose(), "hunter2");
    }
}
