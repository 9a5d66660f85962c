//! An emulator with a fresh CA for one test: trust anchor, profile and role ready, HTTP on loopback.
//!
//! Owns the emulator's lifetime (stopped on drop) and the CA that issues certificates for keys the tests
//! create on SoftHSM or swtpm.

use rolesanywhere_emulator::ca::{Ca, IssueRequest, KeySource, KeyType};
use rolesanywhere_emulator::config::Config;
use rolesanywhere_emulator::server::{self, Limits, Running, ServeOptions, Tls};
use tempfile::TempDir;

/// Trust anchor ARN the fixture configures.
pub const TRUST_ANCHOR_ARN: &str = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/a1b2c3d4-0000-4000-8000-000000000001";
/// Profile ARN the fixture configures.
pub const PROFILE_ARN: &str =
    "arn:aws:rolesanywhere:us-east-1:123456789012:profile/a1b2c3d4-0000-4000-8000-000000000002";
/// Role ARN the fixture configures.
pub const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/hsm-tests";

/// A running emulator and its CA.
pub struct Emu {
    /// The CA the trust anchor holds.
    pub ca: Ca,
    /// The running server.
    pub running: Running,
    /// Where the CA and config live.
    pub dir: TempDir,
}

impl Emu {
    /// A fresh EC P-256 CA, one anchor, one profile (accepting role session names, up to 12 h) and one role.
    pub fn start() -> Emu {
        Self::start_with(Limits::default())
    }

    /// Like [`Emu::start`], issuing credentials that expire `seconds` after issue (the long-running
    /// commands' refresh tests).
    pub fn short_lived(seconds: u32) -> Emu {
        Self::start_with(Limits {
            credential_seconds: Some(seconds),
            ..Limits::default()
        })
    }

    fn start_with(limits: Limits) -> Emu {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_dir = dir.path().join("ca");
        let ca = Ca::init(&ca_dir, KeyType::EcP256, "hsm-tests CA").expect("CA init");
        std::fs::write(dir.path().join("anchor.pem"), ca.cert_pem()).expect("write anchor");
        let toml = format!(
            r#"region = "us-east-1"
[[trust_anchors]]
arn = "{TRUST_ANCHOR_ARN}"
certificates = "anchor.pem"
enabled = true
[[profiles]]
arn = "{PROFILE_ARN}"
role_arns = ["{ROLE_ARN}"]
duration_seconds = 43200
accept_role_session_name = true
enabled = true
[[roles]]
arn = "{ROLE_ARN}"
max_session_duration = 43200
"#
        );
        let config = Config::from_toml_str(&toml, dir.path()).expect("emulator config");
        let running = server::spawn_with(
            config,
            limits,
            ServeOptions {
                listen: "127.0.0.1:0".parse().expect("addr"),
                tls: Tls::None,
            },
        )
        .expect("start emulator");
        Emu { ca, running, dir }
    }

    /// Issues a certificate (PEM) for `public_key_pem` (SubjectPublicKeyInfo) with subject `CN=cn`.
    pub fn issue_for_public_key(&self, public_key_pem: &str, cn: &str) -> String {
        let req = IssueRequest::new(
            &format!("CN={cn}"),
            KeySource::PublicKeyPem(public_key_pem.to_string()),
        );
        self.ca.issue(&req).expect("issue certificate").cert_pem
    }

    /// `--endpoint URL --trust-anchor-arn … --profile-arn … --role-arn …`.
    pub fn args(&self) -> Vec<String> {
        [
            "--endpoint",
            &self.running.url(),
            "--trust-anchor-arn",
            TRUST_ANCHOR_ARN,
            "--profile-arn",
            PROFILE_ARN,
            "--role-arn",
            ROLE_ARN,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// How many CreateSession calls issued credentials.
    pub fn sessions_issued(&self) -> u64 {
        self.running.sessions_issued()
    }

    /// How many requests reached the emulator.
    pub fn requests(&self) -> usize {
        self.running.decisions().len()
    }
}
