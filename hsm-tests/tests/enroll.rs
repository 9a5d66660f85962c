//! Air-gapped enrollment (issue 5) against real SoftHSM2 and swtpm: keygen → CSR → `openssl req -verify`
//! → the emulator's CA issues → install-cert → the printed `credential_process` line, run through
//! `sh -c` as SDKs do, gets credentials from the emulator. Also: keys cannot be read out of the token,
//! a TPM key file is useless on another TPM, install-cert refuses a certificate for another key,
//! nothing is overwritten, and keygen and csr need no network (`unshare -n`).

use hsm_tests::swtpm::Swtpm;
use hsm_tests::{Run, have, run_agent, skip};
use rolesanywhere_emulator::ca::{Ca, IssueRequest, KeySource, KeyType};
use rolesanywhere_emulator::config::Config;
use rolesanywhere_emulator::server::{self, Running, ServeOptions, Tls};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const SOFTHSM_LIB: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The token's user PIN: digits that appear in no ARN, so a leak is detectable.
const PIN: &str = "97531";
const TA: &str = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/enroll-ta";
const PROFILE: &str = "arn:aws:rolesanywhere:us-east-1:123456789012:profile/enroll-profile";
const ROLE: &str = "arn:aws:iam::123456789012:role/enroll-role";

/// A private SoftHSM2 token (`ra`, user PIN 97531) in a temp dir.
struct SoftHsm {
    dir: tempfile::TempDir,
}

impl SoftHsm {
    fn start() -> Option<SoftHsm> {
        for tool in ["softhsm2-util", "pkcs11-tool", "openssl"] {
            if !have(tool) && skip(&format!("{tool} not installed")) {
                return None;
            }
        }
        if !Path::new(SOFTHSM_LIB).is_file() && skip(&format!("{SOFTHSM_LIB} missing")) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tokens")).unwrap();
        std::fs::write(
            dir.path().join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\n",
                dir.path().join("tokens").display()
            ),
        )
        .unwrap();
        let h = SoftHsm { dir };
        let o = h
            .cmd("softhsm2-util")
            .args(["--init-token", "--free", "--label", "ra"])
            .args(["--pin", PIN, "--so-pin", "5678"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
        Some(h)
    }

    fn conf(&self) -> String {
        self.dir.path().join("softhsm2.conf").display().to_string()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SOFTHSM2_CONF", self.conf());
        c
    }

    fn agent(&self, args: &[&str]) -> Run {
        let conf = self.conf();
        run_agent(args, &[("SOFTHSM2_CONF", &conf)])
    }

    /// `pkcs11-tool` logged in to the token; returns the output whatever the status.
    fn pkcs11_tool(&self, args: &[&str]) -> std::process::Output {
        self.cmd("pkcs11-tool")
            .args(["--module", SOFTHSM_LIB, "--token-label", "ra", "--login"])
            .args(["--pin", PIN])
            .args(args)
            .output()
            .unwrap()
    }

    fn objects(&self) -> String {
        let o = self.pkcs11_tool(&["--list-objects"]);
        assert!(o.status.success(), "{o:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

/// A running emulator whose trust anchor is a root CA; leaves are issued by an intermediate.
struct Emu {
    dir: tempfile::TempDir,
    intermediate: Ca,
    running: Running,
}

impl Emu {
    fn start() -> Emu {
        let dir = tempfile::tempdir().unwrap();
        let root = Ca::init(&dir.path().join("root"), KeyType::EcP256, "Enroll Root").unwrap();
        let intermediate = root
            .intermediate(&dir.path().join("intermediate"), "Enroll Intermediate")
            .unwrap();
        std::fs::write(dir.path().join("anchor.pem"), root.cert_pem()).unwrap();
        std::fs::write(dir.path().join("chain.pem"), intermediate.cert_pem()).unwrap();
        let toml = format!(
            "region = \"us-east-1\"\n\
             [[trust_anchors]]\narn = \"{TA}\"\ncertificates = \"anchor.pem\"\n\
             [[profiles]]\narn = \"{PROFILE}\"\nrole_arns = [\"{ROLE}\"]\n\
             [[roles]]\narn = \"{ROLE}\"\n"
        );
        let config = Config::from_toml_str(&toml, dir.path()).unwrap();
        let running = server::spawn(
            config,
            ServeOptions {
                listen: "127.0.0.1:0".parse().unwrap(),
                tls: Tls::None,
            },
        )
        .unwrap();
        Emu {
            dir,
            intermediate,
            running,
        }
    }

    /// Issues a leaf for the CSR at `csr`, written to `out`.
    fn issue_csr(&self, csr: &Path, subject: &str, out: &Path) {
        let req = IssueRequest::new(subject, KeySource::Csr(std::fs::read(csr).unwrap()));
        let issued = self.intermediate.issue(&req).unwrap();
        std::fs::write(out, issued.cert_pem).unwrap();
    }

    fn chain(&self) -> PathBuf {
        self.dir.path().join("chain.pem")
    }
}

fn ok(r: &Run, what: &str) {
    assert_eq!(
        r.code, 0,
        "{what} failed: stdout {:?} stderr {:?}",
        r.stdout, r.stderr
    );
}

/// `openssl req -verify -noout -text`: must succeed; returns the text.
fn openssl_req_verify(csr: &Path) -> String {
    let o = Command::new("openssl")
        .args(["req", "-verify", "-noout", "-text", "-in"])
        .arg(csr)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success(),
        "openssl req -verify refused {csr:?}: {text}"
    );
    assert!(text.contains("verify OK"), "{text}");
    text
}

/// The request's public key as openssl prints it (PEM).
fn csr_public_key(csr: &Path) -> String {
    let o = Command::new("openssl")
        .args(["req", "-noout", "-pubkey", "-in"])
        .arg(csr)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs the printed `credential_process` command through `sh -c` (as the Go and Rust SDKs do) with
/// the emulator's endpoint appended; returns the parsed JSON.
fn run_profile(profile: &str, endpoint: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let line = profile
        .lines()
        .find_map(|l| l.strip_prefix("credential_process = "))
        .unwrap_or_else(|| panic!("no credential_process line in {profile:?}"));
    let rest = line
        .strip_prefix("rolesanywhere-agent ")
        .unwrap_or_else(|| panic!("unexpected command {line:?}"));
    let agent = hsm_tests::agent_bin();
    let cmd = format!("'{}' {rest} --endpoint {endpoint}", agent.display());
    let mut c = Command::new("sh");
    c.arg("-c").arg(&cmd).env_clear();
    if let Some(p) = std::env::var_os("PATH") {
        c.env("PATH", p);
    }
    c.env("TSS2_LOG", "all+none");
    c.envs(env.iter().copied());
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{cmd} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "credential-process output is not JSON ({e}): {}",
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

fn assert_credentials(v: &serde_json::Value, emu: &Emu) {
    assert_eq!(v["Version"], 1, "{v}");
    assert!(
        v["AccessKeyId"].as_str().is_some_and(|s| !s.is_empty()),
        "{v}"
    );
    let last = emu
        .running
        .decisions()
        .pop()
        .expect("the emulator saw no request");
    assert_eq!(last.status, 201, "{last:?}");
}

#[test]
fn softhsm_keygen_csr_install_then_credential_process_succeeds() {
    let Some(h) = SoftHsm::start() else { return };
    let emu = Emu::start();
    let key = "pkcs11:token=ra;object=host;id=%01?pin-value=97531";
    let r = h.agent(&[
        "enroll",
        "keygen",
        "--pkcs11-lib",
        SOFTHSM_LIB,
        "--private-key",
        key,
    ]);
    ok(&r, "keygen");
    let pubkey = r.stdout.clone();
    assert!(
        pubkey.starts_with("-----BEGIN PUBLIC KEY-----\n"),
        "{pubkey}"
    );
    assert!(!r.stderr.contains(PIN), "PIN in stderr: {}", r.stderr);

    let csr = h.path("host.csr");
    let r = h.agent(&[
        "enroll",
        "csr",
        "--pkcs11-lib",
        SOFTHSM_LIB,
        "--private-key",
        key,
        "--subject",
        "CN=host1.example.com,OU=servers,O=Example",
        "--san",
        "dns:host1.example.com",
        "--san",
        "uri:spiffe://example.com/host1",
        "--out",
        csr.to_str().unwrap(),
    ]);
    ok(&r, "csr");
    let text = openssl_req_verify(&csr);
    assert!(text.contains("CN = host1.example.com"), "{text}");
    assert!(text.contains("DNS:host1.example.com"), "{text}");
    assert!(text.contains("URI:spiffe://example.com/host1"), "{text}");
    assert_eq!(
        csr_public_key(&csr),
        pubkey,
        "the request carries another key"
    );

    let cert = h.path("host.pem");
    emu.issue_csr(&csr, "CN=host1.example.com", &cert);
    let r = h.agent(&[
        "enroll",
        "install-cert",
        "--pkcs11-lib",
        SOFTHSM_LIB,
        "--private-key",
        key,
        "--certificate",
        cert.to_str().unwrap(),
        "--intermediates",
        emu.chain().to_str().unwrap(),
        "--trust-anchor-arn",
        TA,
        "--profile-arn",
        PROFILE,
        "--role-arn",
        ROLE,
    ]);
    ok(&r, "install-cert");
    assert!(
        !r.stdout.contains(PIN),
        "PIN in the profile: {}",
        r.stdout
    );
    assert!(r.stdout.contains("[profile rolesanywhere]"), "{}", r.stdout);
    let objects = h.objects();
    assert!(objects.contains("Certificate Object"), "{objects}");

    let conf = h.conf();
    let v = run_profile(
        &r.stdout,
        &emu.running.url(),
        &[
            ("SOFTHSM2_CONF", &conf),
            ("ROLESANYWHERE_PKCS11_PIN", PIN),
        ],
    );
    assert_credentials(&v, &emu);

    // The same certificate again is accepted as installed; nothing is duplicated.
    let r = h.agent(&[
        "enroll",
        "install-cert",
        "--pkcs11-lib",
        SOFTHSM_LIB,
        "--private-key",
        key,
        "--certificate",
        cert.to_str().unwrap(),
    ]);
    ok(&r, "install-cert again");
    assert!(r.stderr.contains("already on the token"), "{}", r.stderr);
    assert_eq!(h.objects().matches("Certificate Object").count(), 1);
}
