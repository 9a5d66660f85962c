//! What the control plane holds: trust anchors, profiles and CRLs as created through the API or
//! seeded from the TOML configuration, their JSON file (written atomically, 0600) and the
//! [`Config`] the verifier sees, rebuilt after every change.

use std::path::Path;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::config::Config;

/// Why the state file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file exists but cannot be read.
    #[error("cannot read the control-plane state file {path}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file does not hold state this emulator wrote.
    #[error(
        "the control-plane state file {path} is not valid ({reason}); move it away to start from the configuration alone"
    )]
    Parse {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The file cannot be written.
    #[error("cannot write the control-plane state file")]
    Write(#[source] crate::files::Error),
}

/// A resource tag.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tag {
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
}

/// A trust anchor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrustAnchor {
    /// UUID.
    pub id: String,
    /// ARN.
    pub arn: String,
    /// Name.
    pub name: String,
    /// The PEM bundle (1 or 2 CA certificates).
    pub certificate_pem: String,
    /// Whether it accepts sessions.
    pub enabled: bool,
    /// ISO 8601.
    pub created_at: String,
    /// ISO 8601.
    pub updated_at: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Notification settings as given (stored and returned).
    #[serde(default)]
    pub notification_settings: Vec<serde_json::Value>,
}

/// A profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    /// UUID.
    pub id: String,
    /// ARN.
    pub arn: String,
    /// Name.
    pub name: String,
    /// Roles it may hand out.
    pub role_arns: Vec<String>,
    /// Managed policies applied to sessions (stored and returned).
    #[serde(default)]
    pub managed_policy_arns: Vec<String>,
    /// Inline session policy (stored and returned).
    pub session_policy: Option<String>,
    /// The longest session it grants.
    pub duration_seconds: u32,
    /// Whether callers may choose the role session name.
    pub accept_role_session_name: bool,
    /// Stored and returned.
    pub require_instance_properties: bool,
    /// Whether it accepts sessions.
    pub enabled: bool,
    /// ISO 8601.
    pub created_at: String,
    /// ISO 8601.
    pub updated_at: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// A certificate revocation list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Crl {
    /// UUID.
    pub id: String,
    /// ARN.
    pub arn: String,
    /// Name.
    pub name: String,
    /// Whether it applies at CreateSession.
    pub enabled: bool,
    /// DER, base64 in the file.
    #[serde(with = "b64")]
    pub der: Vec<u8>,
    /// The trust anchor it revokes for.
    pub trust_anchor_arn: String,
    /// ISO 8601.
    pub created_at: String,
    /// ISO 8601.
    pub updated_at: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
}

mod b64 {
    use base64::Engine as _;
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

/// Everything the control plane holds, in creation order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// Trust anchors.
    pub trust_anchors: Vec<TrustAnchor>,
    /// Profiles.
    pub profiles: Vec<Profile>,
    /// CRLs.
    pub crls: Vec<Crl>,
}

/// The UUID-shaped tail of an ARN (`…:trust-anchor/ID`), or the whole tail after the last `/`.
fn arn_id(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or(arn).to_string()
}

/// A stable UUID-shaped id for a seeded CRL, so reseeding at each start finds it again.
fn seeded_crl_id(anchor_arn: &str, index: usize) -> String {
    let d = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{anchor_arn}#crl{index}").as_bytes(),
    );
    let mut b = [0u8; 16];
    b.copy_from_slice(&d.as_ref()[..16]);
    crate::server::uuid_text(&b)
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

impl State {
    /// Reads the state file; a missing file is empty state.
    pub fn load(path: &Path) -> Result<State, Error> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
            Err(source) => {
                return Err(Error::Read {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        serde_json::from_str(&text).map_err(|e| Error::Parse {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// Writes the state file: a new 0600 file renamed over the old one.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let text = serde_json::to_vec_pretty(self).map_err(|e| Error::Parse {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        crate::files::write_private(path, &text).map_err(Error::Write)
    }

    /// Adds the configuration's anchors (with their CRLs) and profiles that the state does not
    /// hold yet (by ARN), so the TOML keeps seeding a state file written by an earlier run.
    pub fn seed(&mut self, config: &Config, now: &str) {
        for a in &config.trust_anchors {
            if self.trust_anchors.iter().any(|t| t.arn == a.arn) {
                continue;
            }
            let id = arn_id(&a.arn);
            self.trust_anchors.push(TrustAnchor {
                name: id.clone(),
                id,
                arn: a.arn.clone(),
                certificate_pem: a
                    .certificates
                    .iter()
                    .map(|d| pem("CERTIFICATE", d))
                    .collect(),
                enabled: a.enabled,
                created_at: now.to_string(),
                updated_at: now.to_string(),
                tags: Vec::new(),
                notification_settings: Vec::new(),
            });
            for (i, der) in a.crls.iter().enumerate() {
                let id = seeded_crl_id(&a.arn, i);
                if self.crls.iter().any(|c| c.id == id) {
                    continue;
                }
                let prefix = a.arn.split(":trust-anchor/").next().unwrap_or("");
                self.crls.push(Crl {
                    arn: format!("{prefix}:crl/{id}"),
                    name: id.clone(),
                    id,
                    enabled: true,
                    der: der.clone(),
                    trust_anchor_arn: a.arn.clone(),
                    created_at: now.to_string(),
                    updated_at: now.to_string(),
                    tags: Vec::new(),
                });
            }
        }
        for p in &config.profiles {
            if self.profiles.iter().any(|q| q.arn == p.arn) {
                continue;
            }
            let id = arn_id(&p.arn);
            self.profiles.push(Profile {
                name: id.clone(),
                id,
                arn: p.arn.clone(),
                role_arns: p.role_arns.clone(),
                managed_policy_arns: Vec::new(),
                session_policy: None,
                duration_seconds: p.duration_seconds,
                accept_role_session_name: p.accept_role_session_name,
                require_instance_properties: false,
                enabled: p.enabled,
                created_at: now.to_string(),
                updated_at: now.to_string(),
                tags: Vec::new(),
            });
        }
    }

    /// The configuration the verifier checks CreateSession against: `base`'s region, roles and
    /// faults with this state's anchors (and their enabled CRLs) and profiles.
    pub fn config(&self, base: &Config) -> Config {
        let mut config = base.clone();
        config.trust_anchors = self
            .trust_anchors
            .iter()
            .map(|a| crate::config::TrustAnchor {
                arn: a.arn.clone(),
                certificates: crate::pem::decode_label(&a.certificate_pem, "CERTIFICATE")
                    .unwrap_or_default(),
                enabled: a.enabled,
                crls: self
                    .crls
                    .iter()
                    .filter(|c| c.enabled && c.trust_anchor_arn == a.arn)
                    .map(|c| c.der.clone())
                    .collect(),
            })
            .collect();
        config.profiles = self
            .profiles
            .iter()
            .map(|p| crate::config::Profile {
                arn: p.arn.clone(),
                role_arns: p.role_arns.clone(),
                duration_seconds: p.duration_seconds,
                accept_role_session_name: p.accept_role_session_name,
                enabled: p.enabled,
                session_policy: p.session_policy.clone(),
                managed_policy_arns: p.managed_policy_arns.clone(),
                attribute_mappings: crate::mapping::AttributeMappings::default(),
            })
            .collect();
        config
    }
}
