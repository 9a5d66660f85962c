//! What the control plane holds: trust anchors, profiles and CRLs as created through the API or
//! seeded from the TOML configuration, the subjects CreateSession has seen, their JSON file
//! (written atomically, 0600) and the [`Config`] the verifier sees, rebuilt after every change.
//!
//! Fields added after the first release carry serde defaults, so a state file an earlier
//! emulator wrote still loads: a profile without `attribute_mappings` gets the default rules, a
//! file without `subjects` has seen none.

use std::path::Path;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::mapping::AttributeMappings;

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
    /// The notification settings customised through the API (at most one per event); events
    /// without one use the service's defaults. Entries an earlier emulator stored unvalidated
    /// and that are not valid settings are skipped when the file is read.
    #[serde(default, deserialize_with = "valid_settings")]
    pub notification_settings: Vec<NotificationSetting>,
}

/// A customised notification setting. Its JSON keys are the API's (camelCase), as earlier
/// emulators stored the settings verbatim.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NotificationSetting {
    /// Whether notifications for the event are sent.
    pub enabled: bool,
    /// `CA_CERTIFICATE_EXPIRY` or `END_ENTITY_CERTIFICATE_EXPIRY`.
    pub event: String,
    /// Days before expiry, 1 to 360.
    pub threshold: u32,
    /// `ALL`.
    pub channel: String,
    /// The account that configured it.
    pub configured_by: String,
}

/// The notification events.
pub const NOTIFICATION_EVENTS: [&str; 2] =
    ["CA_CERTIFICATE_EXPIRY", "END_ENTITY_CERTIFICATE_EXPIRY"];

impl NotificationSetting {
    /// Whether the setting is one the API could have stored.
    pub fn is_valid(&self) -> bool {
        NOTIFICATION_EVENTS.contains(&self.event.as_str())
            && (1..=360).contains(&self.threshold)
            && self.channel == "ALL"
            && (1..=200).contains(&self.configured_by.chars().count())
    }
}

fn valid_settings<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<NotificationSetting>, D::Error> {
    let values: Vec<serde_json::Value> = Deserialize::deserialize(d)?;
    let mut out: Vec<NotificationSetting> = Vec::new();
    for v in values {
        if let Ok(n) = serde_json::from_value::<NotificationSetting>(v)
            && n.is_valid()
            && !out.iter().any(|o| o.event == n.event)
        {
            out.push(n);
        }
    }
    Ok(out)
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
    /// How principal tags are derived from the certificate (absent in older files: the
    /// defaults).
    #[serde(default, with = "mappings")]
    pub attribute_mappings: AttributeMappings,
}

/// A profile's attribute mappings in the state file: `[{certificate_field, specifiers}]`, the
/// fields with at least one rule.
mod mappings {
    use serde::{Deserialize, Serialize};

    use crate::mapping::{AttributeMappings, CertificateField};

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Entry {
        certificate_field: String,
        specifiers: Vec<String>,
    }

    pub fn serialize<S: serde::Serializer>(m: &AttributeMappings, s: S) -> Result<S::Ok, S::Error> {
        m.entries()
            .into_iter()
            .map(|(field, specifiers)| Entry {
                certificate_field: field.name().to_string(),
                specifiers: specifiers.to_vec(),
            })
            .collect::<Vec<_>>()
            .serialize(s)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<AttributeMappings, D::Error> {
        let entries: Vec<Entry> = Deserialize::deserialize(d)?;
        let mut out = AttributeMappings::empty();
        for e in entries {
            let field =
                CertificateField::parse(&e.certificate_field).map_err(serde::de::Error::custom)?;
            out.put(field, &e.specifiers)
                .map_err(serde::de::Error::custom)?;
        }
        Ok(out)
    }
}

/// A subject: one end-entity certificate CreateSession granted a session to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    /// UUID derived from the certificate's serial (as in CreateSession's `subjectArn`).
    pub id: String,
    /// ARN.
    pub arn: String,
    /// The certificate's subject name (escaped and bounded).
    pub x509_subject: String,
    /// Always true: the emulator has no operation that disables a subject.
    pub enabled: bool,
    /// ISO 8601: first seen.
    pub created_at: String,
    /// ISO 8601.
    pub updated_at: String,
    /// ISO 8601: the last session granted.
    pub last_seen_at: String,
    /// The certificates presented (one: the subject is per certificate).
    pub credentials: Vec<SubjectCredential>,
}

/// A certificate a subject presented.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectCredential {
    /// ISO 8601: the last session granted for it.
    pub seen_at: String,
    /// Serial, base 10.
    pub serial_number: String,
    /// The issuer's name (escaped and bounded).
    pub issuer: String,
    /// Always true.
    pub enabled: bool,
    /// PEM.
    pub x509_certificate_data: String,
    /// Always false: only granted sessions are recorded.
    pub failed: bool,
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

/// An IAM role: created through the IAM query API or seeded from `[[roles]]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Role {
    /// `arn:aws:iam::ACCOUNT:role` + path + name.
    pub arn: String,
    /// `/` or `/…/`.
    pub path: String,
    /// The role's name, unique (ignoring case) among the roles.
    pub name: String,
    /// The trust policy (JSON, as given); none for a `[[roles]]` entry without one.
    #[serde(default)]
    pub trust_policy: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// The longest session it grants, in seconds (3600..43200).
    pub max_session_duration: u32,
    /// ISO 8601.
    pub created_at: String,
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
    /// Subjects, least recently seen first (at most [`SUBJECTS_KEPT`]).
    #[serde(default)]
    pub subjects: Vec<Subject>,
    /// IAM roles (absent from state files written before roles were kept).
    #[serde(default)]
    pub roles: Vec<Role>,
}

/// How many subjects are kept; the least recently seen goes first.
pub const SUBJECTS_KEPT: usize = 10_000;

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

pub(super) fn pem(label: &str, der: &[u8]) -> String {
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

    /// Adds the configuration's anchors (with their CRLs), profiles and roles that the state does
    /// not hold yet (by ARN), so the TOML keeps seeding a state file written by an earlier run.
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
                attribute_mappings: p.attribute_mappings.clone(),
            });
        }
        self.seed_roles(config, now);
    }

    fn seed_roles(&mut self, config: &Config, now: &str) {
        for r in &config.roles {
            if self.roles.iter().any(|q| q.arn == r.arn) {
                continue;
            }
            // A configuration read from TOML checked the ARN; one built in code may hold any, and
            // its role still reaches the snapshot (named by the ARN's tail, path `/`).
            let (path, name) = match super::iam::RoleArn::parse(&r.arn) {
                Ok(parts) => (parts.path, parts.name),
                Err(_) => ("/", r.name()),
            };
            self.roles.push(Role {
                arn: r.arn.clone(),
                path: path.to_string(),
                name: name.to_string(),
                trust_policy: r.trust_policy.clone(),
                description: None,
                max_session_duration: r.max_session_duration,
                created_at: now.to_string(),
                tags: Vec::new(),
            });
        }
    }

    /// The configuration the verifier checks CreateSession against: `base`'s region and faults
    /// with this state's anchors (and their enabled CRLs), profiles and roles.
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
                attribute_mappings: p.attribute_mappings.clone(),
            })
            .collect();
        config.roles = self
            .roles
            .iter()
            .map(|r| crate::config::Role {
                arn: r.arn.clone(),
                max_session_duration: r.max_session_duration,
                trust_policy: r.trust_policy.clone(),
            })
            .collect();
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::CertificateField;

    /// A state file as the first control-plane release wrote it: no attribute mappings, no
    /// subjects, notification settings stored verbatim (one of them not a valid setting).
    const OLD: &str = r#"{
      "trust_anchors": [{"id": "t", "arn": "arn:t", "name": "t", "certificate_pem": "",
        "enabled": true, "created_at": "x", "updated_at": "x", "tags": [],
        "notification_settings": [
          {"enabled": false, "event": "CA_CERTIFICATE_EXPIRY", "threshold": 9, "channel": "ALL",
           "configuredBy": "123456789012"},
          {"enabled": true, "event": "SOMETHING_ELSE", "threshold": 45, "channel": "ALL",
           "configuredBy": "123456789012"}]}],
      "profiles": [{"id": "p", "arn": "arn:p", "name": "p", "role_arns": [],
        "session_policy": null, "duration_seconds": 3600, "accept_role_session_name": false,
        "require_instance_properties": false, "enabled": true, "created_at": "x",
        "updated_at": "x"}],
      "crls": []
    }"#;

    #[test]
    fn a_state_file_from_before_mappings_and_subjects_loads_with_the_defaults() {
        let s: State = serde_json::from_str(OLD).expect("old state loads");
        assert_eq!(
            s.profiles[0].attribute_mappings,
            AttributeMappings::default()
        );
        assert!(s.subjects.is_empty());
        assert_eq!(
            s.trust_anchors[0].notification_settings,
            [NotificationSetting {
                enabled: false,
                event: "CA_CERTIFICATE_EXPIRY".into(),
                threshold: 9,
                channel: "ALL".into(),
                configured_by: "123456789012".into(),
            }]
        );
    }

    #[test]
    fn mappings_round_trip_through_the_file_including_an_emptied_field() {
        let mut s: State = serde_json::from_str(OLD).expect("old state loads");
        let m = &mut s.profiles[0].attribute_mappings;
        m.put(CertificateField::Subject, &["CN".into(), "OU".into()])
            .expect("put");
        m.delete(CertificateField::San, None);
        let text = serde_json::to_string(&s).expect("save");
        let back: State = serde_json::from_str(&text).expect("load");
        assert_eq!(
            back.profiles[0].attribute_mappings,
            s.profiles[0].attribute_mappings
        );
        assert!(
            back.profiles[0]
                .attribute_mappings
                .specifiers(CertificateField::San)
                .is_empty()
        );
        // A field the API does not know is a parse error naming it, not a silent default.
        let bad = text.replace("x509Subject", "x509Foo");
        let e = serde_json::from_str::<State>(&bad).expect_err("unknown field");
        assert!(e.to_string().contains("x509Foo"), "{e}");
    }
}
