//! The emulator's configuration: region, trust anchors (certificates and CRLs), profiles, roles,
//! injected faults, the server's connection limits and CreateSession throttling, read from TOML.
//!
//! Owns loading and validating the configuration, including reading the PEM files it names and
//! checking each CRL's signature against its anchor. It must not start servers or read the clock.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde::Deserialize;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

use crate::crypto::{self, PublicKey};
use crate::server::Limits;
use crate::throttle::{self, ThrottleSettings};

/// Everything a configuration file says: what the verifier checks ([`Config`]) and how the server
/// treats connections and what it keeps ([`Limits`], the optional `[server]` table).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Region, anchors, profiles, roles and faults.
    pub config: Config,
    /// Connection cap, timeouts and the number of decisions kept.
    pub limits: Limits,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The region this endpoint serves (credential scopes must name it).
    pub region: String,
    /// Trust anchors, looked up by ARN.
    pub trust_anchors: Vec<TrustAnchor>,
    /// Profiles, looked up by ARN.
    pub profiles: Vec<Profile>,
    /// Roles and their maximum session durations.
    pub roles: Vec<Role>,
    /// Faults applied, in order, to the first requests.
    pub faults: Vec<Fault>,
    /// Credentials that may call the control plane (the `[admin]` table); none: it refuses all.
    pub admin: Option<AdminCredentials>,
    /// The account the control plane creates resources in (`[admin] account_id`).
    pub account_id: String,
    /// Where the control plane keeps what it created: `<config file>.state.json` when the
    /// configuration came from a file, none (memory only) otherwise.
    pub state_file: Option<PathBuf>,
}

/// The control plane's admin credentials. The secret key is zeroized on drop and never printed.
#[derive(Clone)]
pub struct AdminCredentials {
    /// The access key id clients sign with.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for AdminCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// The account used when `[admin] account_id` is not set (the one `init` writes).
pub const DEFAULT_ACCOUNT_ID: &str = "123456789012";

/// A trust anchor: up to two CA certificates and up to two CRLs.
#[derive(Debug, Clone)]
pub struct TrustAnchor {
    /// The anchor's ARN.
    pub arn: String,
    /// DER of each anchor certificate.
    pub certificates: Vec<Vec<u8>>,
    /// Whether the anchor accepts sessions.
    pub enabled: bool,
    /// DER of each CRL; every one is signed by one of `certificates`.
    pub crls: Vec<Vec<u8>>,
}

/// A profile: which roles it may hand out and for how long.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The profile's ARN.
    pub arn: String,
    /// Roles the profile lists.
    pub role_arns: Vec<String>,
    /// The longest session the profile grants (900..43200).
    pub duration_seconds: u32,
    /// Whether a caller may choose `roleSessionName`.
    pub accept_role_session_name: bool,
    /// Whether the profile accepts sessions.
    pub enabled: bool,
    /// The inline session policy handed to STS with each session (recorded, not enforced).
    pub session_policy: Option<String>,
    /// Managed policies handed to STS with each session (recorded, not enforced).
    pub managed_policy_arns: Vec<String>,
    /// How principal tags are derived from the certificate.
    pub attribute_mappings: crate::mapping::AttributeMappings,
}

/// A role: its maximum session duration and trust policy.
#[derive(Debug, Clone)]
pub struct Role {
    /// The role's ARN.
    pub arn: String,
    /// The role's maximum session duration in seconds (3600..43200).
    pub max_session_duration: u32,
    /// The trust policy document (JSON); `None`: no policy is evaluated for this role.
    pub trust_policy: Option<String>,
}

impl Role {
    /// The role's name: the last part of its ARN (`arn:aws:iam::ACCOUNT:role/PATH/NAME`).
    pub fn name(&self) -> &str {
        self.arn.rsplit('/').next().unwrap_or(&self.arn)
    }
}

/// How a faulted request is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer with this HTTP status and a matching AWS error type.
    Status(u16),
    /// Accept the request and never answer.
    Hang,
    /// Answer 201 with a body that is not valid JSON.
    MalformedBody,
}

/// A fault applied to `times` consecutive requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// What the fault does.
    pub kind: FaultKind,
    /// How many requests it applies to.
    pub times: u32,
}

/// The maximum session duration assumed for a role without a `[[roles]]` entry (IAM's default).
pub const DEFAULT_ROLE_MAX_SESSION: u32 = 3600;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    region: String,
    #[serde(default)]
    trust_anchors: Vec<RawAnchor>,
    #[serde(default)]
    profiles: Vec<RawProfile>,
    #[serde(default)]
    roles: Vec<RawRole>,
    #[serde(default)]
    faults: Vec<RawFault>,
    server: Option<RawServer>,
    admin: Option<RawAdmin>,
    throttle: Option<RawThrottle>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    access_key_id: Option<String>,
    secret_access_key: Option<zeroize::Zeroizing<String>>,
    account_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThrottle {
    enabled: Option<bool>,
    create_session_per_second: Option<u64>,
    total_per_second: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    max_connections: Option<u64>,
    handshake_timeout_seconds: Option<f64>,
    request_timeout_seconds: Option<f64>,
    idle_timeout_seconds: Option<f64>,
    decisions_kept: Option<u64>,
    credential_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnchor {
    arn: String,
    certificates: PathBuf,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    crls: Vec<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    arn: String,
    role_arns: Vec<String>,
    #[serde(default = "default_duration")]
    duration_seconds: u32,
    #[serde(default)]
    accept_role_session_name: bool,
    #[serde(default = "yes")]
    enabled: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRole {
    arn: String,
    #[serde(default = "default_duration")]
    max_session_duration: u32,
    trust_policy: Option<String>,
    trust_policy_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFault {
    kind: String,
    status: Option<u16>,
    #[serde(default = "one")]
    times: u32,
}

fn yes() -> bool {
    true
}
fn one() -> u32 {
    1
}
fn default_duration() -> u32 {
    3600
}

impl Config {
    /// Reads and validates a configuration file; relative paths in it are relative to its folder.
    /// The `[server]` table is validated too; [`Settings::from_file`] returns it.
    pub fn from_file(path: &Path) -> anyhow::Result<Config> {
        Settings::from_file(path).map(|s| s.config)
    }

    /// Parses and validates TOML; relative paths are resolved against `base_dir`.
    pub fn from_toml_str(s: &str, base_dir: &Path) -> anyhow::Result<Config> {
        Settings::from_toml_str(s, base_dir).map(|s| s.config)
    }
}

impl Settings {
    /// Reads and validates a configuration file; relative paths in it are relative to its folder.
    pub fn from_file(path: &Path) -> anyhow::Result<Settings> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let mut settings = Settings::from_toml_str(&text, base)
            .with_context(|| format!("invalid config file {}", path.display()))?;
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".state.json");
        settings.config.state_file = Some(path.with_file_name(name));
        Ok(settings)
    }

    /// Parses and validates TOML; relative paths are resolved against `base_dir`.
    pub fn from_toml_str(s: &str, base_dir: &Path) -> anyhow::Result<Settings> {
        let raw: RawConfig =
            toml::from_str(s).map_err(|e| anyhow!("{}", e.to_string().trim_end()))?;
        if !is_region(&raw.region) {
            bail!(
                "region: {:?} is not a region name (expected e.g. \"us-east-1\")",
                raw.region
            );
        }
        let mut trust_anchors = Vec::new();
        for (i, a) in raw.trust_anchors.into_iter().enumerate() {
            let key = format!("trust_anchors[{i}]");
            check_arn(&format!("{key}.arn"), &a.arn, ":trust-anchor/")?;
            if trust_anchors.iter().any(|t: &TrustAnchor| t.arn == a.arn) {
                bail!("{key}.arn: duplicate trust anchor {}", a.arn);
            }
            let certificates = load_anchor_certificates(&key, &base_dir.join(&a.certificates))?;
            if a.crls.len() > 2 {
                bail!(
                    "{key}.crls: at most 2 CRLs per trust anchor, found {}",
                    a.crls.len()
                );
            }
            let mut crls = Vec::new();
            for (j, p) in a.crls.iter().enumerate() {
                crls.push(load_crl(
                    &format!("{key}.crls[{j}]"),
                    &base_dir.join(p),
                    &certificates,
                )?);
            }
            trust_anchors.push(TrustAnchor {
                arn: a.arn,
                certificates,
                enabled: a.enabled,
                crls,
            });
        }
        let mut profiles = Vec::new();
        for (i, p) in raw.profiles.into_iter().enumerate() {
            let key = format!("profiles[{i}]");
            check_arn(&format!("{key}.arn"), &p.arn, ":profile/")?;
            if profiles.iter().any(|q: &Profile| q.arn == p.arn) {
                bail!("{key}.arn: duplicate profile {}", p.arn);
            }
            if !(900..=43200).contains(&p.duration_seconds) {
                bail!(
                    "{key}.duration_seconds: {} is outside 900..43200",
                    p.duration_seconds
                );
            }
            for (j, r) in p.role_arns.iter().enumerate() {
                check_arn(&format!("{key}.role_arns[{j}]"), r, ":role/")?;
            }
            profiles.push(Profile {
                arn: p.arn,
                role_arns: p.role_arns,
                duration_seconds: p.duration_seconds,
                accept_role_session_name: p.accept_role_session_name,
                enabled: p.enabled,
                session_policy: None,
                managed_policy_arns: Vec::new(),
                attribute_mappings: crate::mapping::AttributeMappings::default(),
            });
        }
        let mut roles = Vec::new();
        for (i, r) in raw.roles.into_iter().enumerate() {
            let key = format!("roles[{i}]");
            let parts = crate::control::iam::RoleArn::parse(&r.arn)
                .map_err(|e| anyhow!("{key}.arn: {:?} {e}", r.arn))?;
            if let Some(other) = roles.iter().position(|q: &Role| {
                crate::control::iam::RoleArn::parse(&q.arn).is_ok_and(|o| {
                    o.account == parts.account && o.name.eq_ignore_ascii_case(parts.name)
                })
            }) {
                bail!(
                    "{key}.arn: role name {} is already used by roles[{other}] (IAM role names are unique per account, ignoring case)",
                    parts.name
                );
            }
            if !(3600..=43200).contains(&r.max_session_duration) {
                bail!(
                    "{key}.max_session_duration: {} is outside 3600..43200 (IAM's limits)",
                    r.max_session_duration
                );
            }
            let trust_policy =
                role_trust_policy(&key, r.trust_policy, r.trust_policy_file, base_dir)?;
            roles.push(Role {
                arn: r.arn,
                max_session_duration: r.max_session_duration,
                trust_policy,
            });
        }
        let mut faults = Vec::new();
        for (i, f) in raw.faults.into_iter().enumerate() {
            let key = format!("faults[{i}]");
            let kind = match (f.kind.as_str(), f.status) {
                ("status", Some(s)) if (400..=599).contains(&s) => FaultKind::Status(s),
                ("status", Some(s)) => bail!("{key}.status: {s} is not an error status (400..599)"),
                ("status", None) => bail!("{key}.status: required when kind = \"status\""),
                ("hang", None) => FaultKind::Hang,
                ("malformed-body", None) => FaultKind::MalformedBody,
                ("hang" | "malformed-body", Some(_)) => {
                    bail!("{key}.status: only allowed when kind = \"status\"")
                }
                (other, _) => bail!(
                    "{key}.kind: unknown fault {other:?} (expected \"status\", \"hang\" or \"malformed-body\")"
                ),
            };
            if f.times == 0 {
                bail!("{key}.times: must be at least 1");
            }
            faults.push(Fault {
                kind,
                times: f.times,
            });
        }
        let (admin, account_id) = admin(raw.admin)?;
        let mut limits = match raw.server {
            Some(server) => server_limits(server)?,
            None => Limits::default(),
        };
        if let Some(t) = raw.throttle {
            limits.throttle = throttle_settings(t)?;
        }
        Ok(Settings {
            config: Config {
                region: raw.region,
                trust_anchors,
                profiles,
                roles,
                faults,
                admin,
                account_id,
                state_file: None,
            },
            limits,
        })
    }
}

/// A role's trust policy: `trust_policy` (the JSON inline) or `trust_policy_file` (a path
/// relative to the configuration's folder), not both; validated as IAM's CreateRole would.
fn role_trust_policy(
    key: &str,
    inline: Option<String>,
    file: Option<PathBuf>,
    base_dir: &Path,
) -> anyhow::Result<Option<String>> {
    let (document, field) = match (inline, file) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            bail!("{key}: trust_policy and trust_policy_file are both set; keep one")
        }
        (Some(text), None) => (text, format!("{key}.trust_policy")),
        (None, Some(path)) => {
            let path = base_dir.join(path);
            let text = std::fs::read_to_string(&path).with_context(|| {
                format!("{key}.trust_policy_file: cannot read {}", path.display())
            })?;
            (text, format!("{key}.trust_policy_file: {}", path.display()))
        }
    };
    crate::policy::Policy::parse(&document)
        .map_err(|e| anyhow!("{field}: not a valid trust policy: {e}"))?;
    Ok(Some(document))
}

/// The `[admin]` table: both keys or neither, and the account id.
fn admin(raw: Option<RawAdmin>) -> anyhow::Result<(Option<AdminCredentials>, String)> {
    let Some(raw) = raw else {
        return Ok((None, DEFAULT_ACCOUNT_ID.to_string()));
    };
    let account_id = raw
        .account_id
        .unwrap_or_else(|| DEFAULT_ACCOUNT_ID.to_string());
    if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
        bail!("admin.account_id: {account_id:?} is not a 12-digit account id");
    }
    let creds = match (raw.access_key_id, raw.secret_access_key) {
        (Some(id), Some(secret)) => {
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                bail!("admin.access_key_id: must be letters and digits only");
            }
            // The secret is not quoted: a malformed one must not reach a log.
            if secret.is_empty() || !secret.bytes().all(|b| b.is_ascii_graphic()) {
                bail!("admin.secret_access_key: must be printable ASCII without spaces");
            }
            Some(AdminCredentials {
                access_key_id: id,
                secret_access_key: secret,
            })
        }
        (None, None) => None,
        (Some(_), None) => bail!("admin.secret_access_key: required with admin.access_key_id"),
        (None, Some(_)) => bail!("admin.access_key_id: required with admin.secret_access_key"),
    };
    Ok((creds, account_id))
}

/// Checks a `credential_seconds` value (1..43200): credentials shorter than the service's 900 s
/// minimum are the point (refresh tests), longer than its 12 h maximum are not.
pub fn credential_seconds(n: u64) -> Result<u32, String> {
    match u32::try_from(n) {
        Ok(v) if (1..=43200).contains(&v) => Ok(v),
        _ => Err(format!("credential_seconds: {n} is outside 1..43200")),
    }
}

/// The `[server]` table over [`Limits::default`].
fn server_limits(raw: RawServer) -> anyhow::Result<Limits> {
    let mut limits = Limits::default();
    if let Some(n) = raw.max_connections {
        if !(1..=65536).contains(&n) {
            bail!("server.max_connections: {n} is outside 1..65536");
        }
        limits.max_connections = n as usize;
    }
    let seconds = |key: &str, v: Option<f64>, slot: &mut Duration| -> anyhow::Result<()> {
        if let Some(v) = v {
            if !(v.is_finite() && (0.05..=3600.0).contains(&v)) {
                bail!("server.{key}: {v} is outside 0.05..3600 seconds");
            }
            *slot = Duration::from_secs_f64(v);
        }
        Ok(())
    };
    seconds(
        "handshake_timeout_seconds",
        raw.handshake_timeout_seconds,
        &mut limits.handshake_timeout,
    )?;
    seconds(
        "request_timeout_seconds",
        raw.request_timeout_seconds,
        &mut limits.request_timeout,
    )?;
    seconds(
        "idle_timeout_seconds",
        raw.idle_timeout_seconds,
        &mut limits.idle_timeout,
    )?;
    if let Some(n) = raw.decisions_kept {
        if n > 1_000_000 {
            bail!("server.decisions_kept: {n} is above 1000000");
        }
        limits.decisions_kept = n as usize;
    }
    if let Some(n) = raw.credential_seconds {
        limits.credential_seconds = Some(credential_seconds(n).map_err(|e| anyhow!("server.{e}"))?);
    }
    Ok(limits)
}

/// The `[throttle]` table over [`ThrottleSettings::default`].
fn throttle_settings(raw: RawThrottle) -> anyhow::Result<ThrottleSettings> {
    let mut t = ThrottleSettings::default();
    if let Some(enabled) = raw.enabled {
        t.enabled = enabled;
    }
    if let Some(n) = raw.create_session_per_second {
        t.create_session_per_second = throttle::check_rate("throttle.create_session_per_second", n)
            .map_err(|e| anyhow!(e))?;
    }
    if let Some(n) = raw.total_per_second {
        t.total_per_second =
            Some(throttle::check_rate("throttle.total_per_second", n).map_err(|e| anyhow!(e))?);
    }
    Ok(t)
}

impl Config {
    /// The trust anchor with this ARN.
    pub fn trust_anchor(&self, arn: &str) -> Option<&TrustAnchor> {
        self.trust_anchors.iter().find(|a| a.arn == arn)
    }

    /// The profile with this ARN.
    pub fn profile(&self, arn: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.arn == arn)
    }

    /// A role by ARN.
    pub fn role(&self, arn: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.arn == arn)
    }

    /// The maximum session duration of a role ([`DEFAULT_ROLE_MAX_SESSION`] when not configured).
    pub fn role_max_session(&self, arn: &str) -> u32 {
        self.roles
            .iter()
            .find(|r| r.arn == arn)
            .map_or(DEFAULT_ROLE_MAX_SESSION, |r| r.max_session_duration)
    }
}

fn is_region(s: &str) -> bool {
    !s.is_empty()
        && s.split('-').count() >= 3
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn check_arn(key: &str, arn: &str, kind: &str) -> anyhow::Result<()> {
    if !arn.starts_with("arn:") || !arn.contains(kind) {
        bail!("{key}: {arn:?} is not an ARN containing {kind:?}");
    }
    Ok(())
}

fn load_anchor_certificates(key: &str, path: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{key}.certificates: cannot read {}", path.display()))?;
    anchor_certificates(&text).map_err(|e| anyhow!("{key}.certificates: {}: {e}", path.display()))
}

/// The DER certificates of a trust anchor's PEM bundle: 1 or 2 CA certificates (CA:TRUE and,
/// when keyUsage is present, keyCertSign). Shared by the configuration and the control plane.
pub fn anchor_certificates(pem_text: &str) -> Result<Vec<Vec<u8>>, String> {
    let ders = crate::pem::decode_label(pem_text, "CERTIFICATE").map_err(|e| e.to_string())?;
    if ders.is_empty() || ders.len() > 2 {
        return Err(format!(
            "holds {} certificates; a trust anchor takes 1 or 2",
            ders.len()
        ));
    }
    for der in &ders {
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|e| format!("not a certificate: {e}"))?;
        let is_ca = matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
        let can_sign_certs = match cert.key_usage() {
            Ok(Some(ku)) => ku.value.key_cert_sign(),
            Ok(None) => true,
            Err(_) => false,
        };
        if !can_sign_certs {
            return Err(format!(
                "{} lacks keyUsage keyCertSign; a trust anchor must be allowed to sign certificates",
                cert.subject()
            ));
        }
        if !is_ca {
            return Err(format!(
                "{} is not a CA certificate (basicConstraints CA:TRUE is required)",
                cert.subject()
            ));
        }
    }
    Ok(ders)
}

/// Checks that `der` is a CRL signed by one of the anchor certificates; returns its issuer's
/// name on failure.
pub fn check_crl_signer(der: &[u8], anchors: &[Vec<u8>]) -> Result<(), String> {
    let (_, crl) =
        CertificateRevocationList::from_der(der).map_err(|e| format!("not a CRL: {e}"))?;
    let signed_by_anchor = anchors.iter().any(|a| {
        let Ok((_, ca)) = X509Certificate::from_der(a) else {
            return false;
        };
        ca.subject().as_raw() == crl.issuer().as_raw()
            && PublicKey::from_spki(ca.public_key())
                .and_then(|k| crypto::verify_signed_object(der, &crl.signature_algorithm, &k))
                .is_ok()
    });
    if signed_by_anchor {
        Ok(())
    } else {
        Err(format!(
            "the CRL (issuer {}) is not signed by a certificate of this trust anchor",
            crl.issuer()
        ))
    }
}

fn load_crl(key: &str, path: &Path, anchors: &[Vec<u8>]) -> anyhow::Result<Vec<u8>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{key}: cannot read {}", path.display()))?;
    let mut ders = crate::pem::decode_label(&text, "X509 CRL")
        .map_err(|e| anyhow!("{key}: {}: {e}", path.display()))?;
    if ders.len() != 1 {
        bail!(
            "{key}: {} must hold exactly one X509 CRL block",
            path.display()
        );
    }
    let der = ders.remove(0);
    let (_, crl) = CertificateRevocationList::from_der(&der)
        .map_err(|e| anyhow!("{key}: {}: not a CRL: {e}", path.display()))?;
    let signed_by_anchor = anchors.iter().any(|a| {
        let Ok((_, ca)) = X509Certificate::from_der(a) else {
            return false;
        };
        ca.subject().as_raw() == crl.issuer().as_raw()
            && PublicKey::from_spki(ca.public_key())
                .and_then(|k| crypto::verify_signed_object(&der, &crl.signature_algorithm, &k))
                .is_ok()
    });
    if !signed_by_anchor {
        bail!(
            "{key}: {} (issuer {}) is not signed by a certificate of this trust anchor",
            path.display(),
            crl.issuer()
        );
    }
    Ok(der)
}
