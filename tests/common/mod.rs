//! Helpers for the end-to-end CLI tests: a temp dir with a PKI, the emulator, and the binary.

#![allow(dead_code)]

use rolesanywhere_emulator::ca::{Ca, IssueRequest, KeySource, KeyType};
use rolesanywhere_emulator::config::Config;
use rolesanywhere_emulator::server::{self, Decision, Running, ServeOptions, Tls};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub const REGION: &str = "us-east-1";
pub const TRUST_ANCHOR: &str = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/ta-test";
pub const PROFILE: &str = "arn:aws:rolesanywhere:us-east-1:123456789012:profile/p-test";
pub const ROLE: &str = "arn:aws:iam::123456789012:role/test-role";

/// The result of one run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stdout_bytes: Vec<u8>,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    /// Asserts a failure: `code`, empty stdout, stderr in our format mentioning every `needle`.
    pub fn assert_failure(&self, code: i32, needles: &[&str]) {
        // Shown with --nocapture, to review the messages users get.
        eprintln!("--- stderr (exit {}):\n{}", self.code, self.stderr);
        assert_eq!(self.code, code, "exit code; stderr:\n{}", self.stderr);
        assert!(
            self.stdout.is_empty(),
            "stdout must be empty: {:?}",
            self.stdout
        );
        assert!(
            self.stderr.starts_with("rolesanywhere-agent: "),
            "stderr format: {}",
            self.stderr
        );
        for n in needles {
            assert!(
                self.stderr.contains(n),
                "stderr lacks {n:?}:\n{}",
                self.stderr
            );
        }
    }

    /// Parses stdout as credential_process JSON, asserting the exact shape.
    pub fn credentials(&self) -> serde_json::Value {
        assert_eq!(self.code, 0, "stderr:\n{}", self.stderr);
        assert!(self.stdout.ends_with('\n'), "{:?}", self.stdout);
        assert_eq!(self.stdout.matches('\n').count(), 1, "{:?}", self.stdout);
        let keys: Vec<&str> = [
            "\"Version\":1,",
            "\"AccessKeyId\":",
            "\"SecretAccessKey\":",
            "\"SessionToken\":",
            "\"Expiration\":",
        ]
        .to_vec();
        let mut at = 0;
        for k in keys {
            let pos = self.stdout[at..]
                .find(k)
                .unwrap_or_else(|| panic!("{k} missing or out of order in {}", self.stdout));
            at += pos + k.len();
        }
        let v: serde_json::Value = serde_json::from_str(&self.stdout).unwrap();
        let obj = v.as_object().unwrap();
        assert_eq!(obj.len(), 5, "{}", self.stdout);
        for k in [
            "AccessKeyId",
            "SecretAccessKey",
            "SessionToken",
            "Expiration",
        ] {
            assert!(
                obj[k].as_str().is_some_and(|s| !s.is_empty()),
                "{k} in {}",
                self.stdout
            );
        }
        v
    }
}

/// A test directory with a root CA, and helpers to issue keys and certificates.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub ca: Ca,
}

pub fn path_str(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::init(&dir.path().join("root"), KeyType::EcP256, "Test Root CA").unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
        Env { dir, ca }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn p(&self, name: &str) -> String {
        path_str(&self.path(name))
    }

    /// Generates a key with openssl (`genpkey` options), writes NAME.key, returns its public PEM.
    pub fn openssl_key(&self, name: &str, algorithm: &[&str]) -> String {
        let key = self.path(&format!("{name}.key"));
        let mut args = vec!["genpkey", "-out", key.to_str().unwrap()];
        args.extend_from_slice(algorithm);
        openssl(&args);
        let pub_path = self.path(&format!("{name}.pub.pem"));
        openssl(&[
            "pkey",
            "-in",
            key.to_str().unwrap(),
            "-pubout",
            "-out",
            pub_path.to_str().unwrap(),
        ]);
        std::fs::read_to_string(pub_path).unwrap()
    }

    /// Issues NAME.pem for NAME.key's public key from `ca` with `edit` applied to the request.
    pub fn issue_with(
        &self,
        ca: &Ca,
        name: &str,
        public_pem: String,
        edit: impl FnOnce(&mut IssueRequest),
    ) -> String {
        let mut req = IssueRequest::new(&format!("CN={name}"), KeySource::PublicKeyPem(public_pem));
        edit(&mut req);
        let issued = ca.issue(&req).unwrap();
        std::fs::write(self.path(&format!("{name}.pem")), &issued.cert_pem).unwrap();
        issued.serial_decimal
    }

    /// An EC P-256 leaf NAME.key / NAME.pem from the root CA.
    pub fn leaf(&self, name: &str) -> String {
        let public = self.openssl_key(
            name,
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        );
        self.issue_with(&self.ca, name, public, |_| {})
    }

    /// The emulator config with one trust anchor (ca.pem + `crls`), profile and role.
    pub fn config_toml(&self, profile_extra: &str, anchor_extra: &str, faults: &str) -> String {
        format!(
            r#"region = "{REGION}"

[[trust_anchors]]
arn = "{TRUST_ANCHOR}"
certificates = "ca.pem"
enabled = true
{anchor_extra}

[[profiles]]
arn = "{PROFILE}"
role_arns = ["{ROLE}"]
duration_seconds = 43200
accept_role_session_name = true
enabled = true
{profile_extra}

[[roles]]
arn = "{ROLE}"
max_session_duration = 43200

{faults}
"#
        )
    }

    /// Starts the emulator (plain HTTP) with the default configuration.
    pub fn emulator(&self) -> Running {
        self.emulator_with(&self.config_toml("", "", ""), Tls::None)
    }

    pub fn emulator_with(&self, toml: &str, tls: Tls) -> Running {
        let config = Config::from_toml_str(toml, self.dir.path()).unwrap();
        server::spawn(
            config,
            ServeOptions {
                listen: "127.0.0.1:0".parse().unwrap(),
                tls,
            },
        )
        .unwrap()
    }

    /// The binary in this dir with a cleared environment (PATH and HOME only, plus `env`).
    pub fn cmd(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        self.program(env!("CARGO_BIN_EXE_rolesanywhere-agent"), args, env)
    }

    /// `program` in this dir with a cleared environment (PATH and HOME only, plus `env`).
    fn program(&self, program: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .current_dir(self.dir.path())
            .args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        run_command(self.cmd(args, env))
    }

    /// `credential-process` for NAME.pem / NAME.key against `url`, plus `extra` flags.
    pub fn credential_process(&self, url: &str, name: &str, extra: &[&str]) -> Run {
        self.credential_process_env(url, name, extra, &[])
    }

    pub fn credential_process_env(
        &self,
        url: &str,
        name: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Run {
        let args = self.credential_args(url, name, extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&args, env)
    }

    /// The `credential-process` arguments for NAME.pem / NAME.key and the ARNs against `url`,
    /// plus `extra`.
    pub fn credential_args(&self, url: &str, name: &str, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "credential-process",
            "--certificate",
            &self.p(&format!("{name}.pem")),
            "--private-key",
            &self.p(&format!("{name}.key")),
            "--trust-anchor-arn",
            TRUST_ANCHOR,
            "--profile-arn",
            PROFILE,
            "--role-arn",
            ROLE,
            "--endpoint",
            url,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }
}

/// Runs `cmd`, killing it and failing the test if it runs longer than `limit`
/// ([`hsm_tests::output_within`]): a regression that blocks fails instead of hanging the suite.
pub fn run_within(mut cmd: Command, limit: Duration) -> Run {
    let start = Instant::now();
    let out = hsm_tests::output_within(&mut cmd, limit);
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stdout_bytes: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

pub fn run_command(mut c: Command) -> Run {
    let start = Instant::now();
    let out = c.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stdout_bytes: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

/// Runs openssl, panicking with its stderr on failure; returns stdout.
pub fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Decimal form of a hex number of any length (openssl prints serials in hex).
pub fn hex_to_decimal(hex: &str) -> String {
    let mut digits: Vec<u32> = vec![0]; // little-endian base 10
    for c in hex.chars() {
        let mut carry = c.to_digit(16).unwrap();
        for d in digits.iter_mut() {
            let v = *d * 16 + carry;
            *d = v % 10;
            carry = v / 10;
        }
        while carry > 0 {
            digits.push(carry % 10);
            carry /= 10;
        }
    }
    while digits.len() > 1 && digits.last() == Some(&0) {
        digits.pop();
    }
    digits
        .iter()
        .rev()
        .map(|d| char::from_digit(*d, 10).unwrap())
        .collect()
}

pub fn decisions(running: &Running) -> Vec<Decision> {
    running.decisions()
}

impl Env {
    /// Another program in this dir with a cleared environment (PATH and HOME only, plus `env`).
    pub fn run_program(&self, program: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        run_command(self.program(program, args, env))
    }
}
