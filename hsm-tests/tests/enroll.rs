//! Air-gapped enrollment (issue 5) against real SoftHSM2 and swtpm: keygen → CSR → `openssl req -verify`
//! → the emulator's CA issues → install-cert → the printed `credential_process` line, run through
//! `sh -c` as SDKs do, gets credentials from the emulator. Also: keys cannot be read out of the token,
//! a TPM key file is useless on another TPM, install-cert refuses a certificate for another key,
//! nothing is overwritten, and keygen and csr need no network (`unshare -n`).

use hsm_tests::emu::{PROFILE_ARN as PROFILE, ROLE_ARN as ROLE, TRUST_ANCHOR_ARN as TA};
use hsm_tests::swtpm::Swtpm;
use hsm_tests::{Run, have, run_agent, skip};
use rolesanywhere_emulator::ca::{Ca, IssueRequest, KeySource, KeyType};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const SOFTHSM_LIB: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The token's user PIN: digits that appear in no ARN (the shared fixture's 1234 does, in the account
/// id), so a leak into stdout or stderr is detectable.
const PIN: &str = "97531";

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

/// The shared emulator fixture, with an intermediate CA under its root that issues the leaves (so
/// install-cert's chain handling is exercised too).
struct Emu {
    emu: hsm_tests::emu::Emu,
    intermediate: Ca,
    chain: PathBuf,
    url: String,
}

impl Emu {
    fn start() -> Emu {
        let emu = hsm_tests::emu::Emu::start();
        let intermediate = emu
            .ca
            .intermediate(&emu.dir.path().join("intermediate"), "Enroll Intermediate")
            .unwrap();
        let chain = emu.dir.path().join("chain.pem");
        std::fs::write(&chain, intermediate.cert_pem()).unwrap();
        let url = emu.running.url();
        Emu {
            emu,
            intermediate,
            chain,
            url,
        }
    }

    /// Issues a leaf for the CSR at `csr`, written to `out`.
    fn issue_csr(&self, csr: &Path, subject: &str, out: &Path) {
        let req = IssueRequest::new(subject, KeySource::Csr(std::fs::read(csr).unwrap()));
        let issued = self.intermediate.issue(&req).unwrap();
        std::fs::write(out, issued.cert_pem).unwrap();
    }

    /// The `install-cert` arguments for `cert` that make a full profile: this emulator's chain,
    /// the test ARNs and the emulator's endpoint.
    fn install_args<'a>(&'a self, cert: &'a Path) -> Vec<&'a str> {
        let mut args = vec!["--certificate", cert.to_str().unwrap()];
        args.extend(["--intermediates", self.chain.to_str().unwrap()]);
        args.extend(self.profile_args());
        args
    }

    /// The ARNs and endpoint install-cert puts in the profile.
    fn profile_args(&self) -> Vec<&str> {
        vec![
            "--trust-anchor-arn",
            TA,
            "--profile-arn",
            PROFILE,
            "--role-arn",
            ROLE,
            "--endpoint",
            &self.url,
        ]
    }
}

/// `enroll <sub> --pkcs11-lib <SoftHSM> --private-key <key>` followed by `extra`.
fn softhsm_args<'a>(sub: &'a str, key: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "enroll",
        sub,
        "--pkcs11-lib",
        SOFTHSM_LIB,
        "--private-key",
        key,
    ];
    args.extend(extra);
    args
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
/// a clean environment (PATH, `TSS2_LOG` and `env` only); returns the parsed JSON. The command must
/// name this agent binary by its absolute path: SDKs run it with their own `PATH`.
fn run_profile(profile: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let line = profile
        .lines()
        .find_map(|l| l.strip_prefix("credential_process = "))
        .unwrap_or_else(|| panic!("no credential_process line in {profile:?}"));
    let agent = std::fs::canonicalize(hsm_tests::agent_bin()).unwrap();
    assert!(
        line.starts_with(&format!("{} credential-process ", agent.display())),
        "the profile does not run {}: {line}",
        agent.display()
    );
    let mut c = Command::new("sh");
    c.arg("-c").arg(line).env_clear();
    if let Some(p) = std::env::var_os("PATH") {
        c.env("PATH", p);
    }
    c.env("TSS2_LOG", "all+none");
    c.envs(env.iter().copied());
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{line} failed: {}",
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
        .emu
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
    let r = h.agent(&softhsm_args("keygen", key, &[]));
    ok(&r, "keygen");
    let pubkey = r.stdout.clone();
    assert!(
        pubkey.starts_with("-----BEGIN PUBLIC KEY-----\n"),
        "{pubkey}"
    );
    assert!(!r.stderr.contains(PIN), "PIN in stderr: {}", r.stderr);

    let csr = h.path("host.csr");
    let r = h.agent(&softhsm_args(
        "csr",
        key,
        &[
            "--subject",
            "CN=host1.example.com,OU=servers,O=Example",
            "--san",
            "dns:host1.example.com",
            "--san",
            "uri:spiffe://example.com/host1",
            "--out",
            csr.to_str().unwrap(),
        ],
    ));
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
    let r = h.agent(&softhsm_args("install-cert", key, &emu.install_args(&cert)));
    ok(&r, "install-cert");
    assert!(!r.stdout.contains(PIN), "PIN in the profile: {}", r.stdout);
    assert!(r.stdout.contains("[profile rolesanywhere]"), "{}", r.stdout);
    // The leaf and the intermediate from --intermediates.
    let objects = h.objects();
    assert_eq!(
        objects.matches("Certificate Object").count(),
        2,
        "{objects}"
    );

    let conf = h.conf();
    let v = run_profile(
        &r.stdout,
        &[("SOFTHSM2_CONF", &conf), ("ROLESANYWHERE_PKCS11_PIN", PIN)],
    );
    assert_credentials(&v, &emu);

    // The same certificate again is accepted as installed; nothing is duplicated.
    let r = h.agent(&softhsm_args(
        "install-cert",
        key,
        &["--certificate", cert.to_str().unwrap()],
    ));
    ok(&r, "install-cert again");
    assert!(r.stderr.contains("already on the token"), "{}", r.stderr);
    assert_eq!(h.objects().matches("Certificate Object").count(), 2);

    // A renewed certificate needs --replace, and then replaces the old object.
    let renewed = h.path("renewed.pem");
    emu.issue_csr(&csr, "CN=host1.example.com", &renewed);
    let install = |extra: &[&str]| {
        let mut args = softhsm_args(
            "install-cert",
            key,
            &["--certificate", renewed.to_str().unwrap()],
        );
        args.extend(extra);
        h.agent(&args)
    };
    let r = install(&[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--replace"), "{}", r.stderr);
    ok(&install(&["--replace"]), "install-cert --replace");
    assert_eq!(h.objects().matches("Certificate Object").count(), 2);
    let o = h.pkcs11_tool(&["--read-object", "--type", "cert", "--id", "01"]);
    let on_token = h.path("on-token.der");
    std::fs::write(&on_token, &o.stdout).unwrap();
    let fingerprint = |args: &[&str], file: &Path| {
        let o = Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256"])
            .args(args)
            .arg("-in")
            .arg(file)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert_eq!(
        fingerprint(&["-inform", "DER"], &on_token),
        fingerprint(&[], &renewed)
    );
}

#[test]
fn softhsm_generated_private_key_cannot_be_read_out() {
    let Some(h) = SoftHsm::start() else { return };
    let key = "pkcs11:token=ra;object=host;id=%02?pin-value=97531";
    for key_type in ["ec-p384", "rsa-2048"] {
        let key = key.replace("%02", if key_type == "ec-p384" { "%02" } else { "%03" });
        let key = key.replace("object=host", &format!("object={key_type}"));
        let r = h.agent(&softhsm_args("keygen", &key, &["--key-type", key_type]));
        ok(&r, key_type);
    }
    // pkcs11-tool cannot even try to read a private key, so a child process asks the token directly
    // for the secret attributes (cryptoki, not our code; SoftHSM reads SOFTHSM2_CONF once per process).
    let o = h
        .cmd(&std::env::current_exe().unwrap().display().to_string())
        .args([
            "--ignored",
            "--exact",
            "probe_private_key_attributes_are_sensitive",
        ])
        .args(["--nocapture", "--test-threads", "1"])
        .env("ENROLL_PROBE_IDS", "02,03")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        text.matches("probe: secret attributes sensitive").count(),
        2,
        "{text}"
    );
    let objects = h.objects();
    assert_eq!(
        objects
            .matches("sensitive, always sensitive, never extractable")
            .count(),
        2,
        "{objects}"
    );
    // Sign-only: the private keys allow no decrypt, unwrap or derive.
    for block in objects.split("Private Key Object").skip(1) {
        let usage = block
            .lines()
            .find(|l| l.trim_start().starts_with("Usage:"))
            .unwrap_or_default();
        assert_eq!(usage.trim(), "Usage:      sign", "{objects}");
    }
}

#[test]
fn softhsm_keygen_refuses_an_existing_id_or_label() {
    let Some(h) = SoftHsm::start() else { return };
    let first = "pkcs11:token=ra;object=host;id=%01?pin-value=97531";
    let keygen = |uri: &str| h.agent(&softhsm_args("keygen", uri, &[]));
    ok(&keygen(first), "first keygen");
    let before = h.objects();
    for (uri, needle) in [
        (first, "an object with id %01"),
        (
            "pkcs11:token=ra;object=host;id=%09?pin-value=97531",
            "an object labelled \"host\"",
        ),
    ] {
        let r = keygen(uri);
        assert_eq!(r.code, 2, "{uri}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{}", r.stderr);
        assert!(r.stdout.is_empty());
    }
    assert_eq!(h.objects(), before, "a refused keygen changed the token");
}

#[test]
fn install_cert_refuses_a_certificate_for_another_key() {
    let Some(h) = SoftHsm::start() else { return };
    let emu = Emu::start();
    let key = "pkcs11:token=ra;object=host;id=%01?pin-value=97531";
    ok(&h.agent(&softhsm_args("keygen", key, &[])), "keygen");
    let other = emu
        .intermediate
        .issue(&IssueRequest::new(
            "CN=someone-else",
            KeySource::NewKey(KeyType::EcP256),
        ))
        .unwrap();
    let cert = h.path("other.pem");
    std::fs::write(&cert, other.cert_pem).unwrap();
    let r = h.agent(&softhsm_args(
        "install-cert",
        key,
        &["--certificate", cert.to_str().unwrap()],
    ));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("does not match certificate"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(!h.objects().contains("Certificate Object"));
}

/// Issue 8, point 3: `install-cert --intermediates /media/usb/chain.pem` on a token key stores the
/// intermediate on the token (a public CA certificate object), the profile names no USB path, and
/// after the stick is gone the profile still gets credentials from an emulator whose trust anchor is
/// the root only. The key is reached through the default module (the p11-kit proxy) when SoftHSM is
/// registered with it, and the profile must then name that module.
#[test]
fn softhsm_install_cert_keeps_the_chain_on_the_token_not_on_removable_media() {
    let Some(h) = SoftHsm::start() else { return };
    let emu = Emu::start();
    let proxy = hsm_tests::softhsm::p11_kit_proxy()
        .filter(|_| Path::new("/usr/share/p11-kit/modules/softhsm2.module").is_file());
    let module = proxy.clone().unwrap_or_else(|| PathBuf::from(SOFTHSM_LIB));
    let enroll = |sub: &str, extra: &[&str]| {
        let key = "pkcs11:token=ra;object=host;id=%01?pin-value=97531";
        let mut args = if proxy.is_some() {
            vec!["enroll", sub, "--private-key", key]
        } else {
            softhsm_args(sub, key, &[])
        };
        args.extend(extra);
        h.agent(&args)
    };
    ok(&enroll("keygen", &[]), "keygen");
    let csr = h.path("host.csr");
    ok(
        &enroll(
            "csr",
            &["--subject", "CN=usb-host", "--out", csr.to_str().unwrap()],
        ),
        "csr",
    );
    let usb = tempfile::tempdir().unwrap();
    let cert = usb.path().join("host.pem");
    emu.issue_csr(&csr, "CN=usb-host", &cert);
    let chain = usb.path().join("chain.pem");
    std::fs::copy(&emu.chain, &chain).unwrap();
    let usb_path = usb.path().display().to_string();

    let mut args = vec![
        "--certificate",
        cert.to_str().unwrap(),
        "--intermediates",
        chain.to_str().unwrap(),
    ];
    args.extend(emu.profile_args());
    let r = enroll("install-cert", &args);
    ok(&r, "install-cert");
    assert!(
        !r.stdout.contains(&usb_path),
        "the profile points at removable media: {}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains(&format!("--pkcs11-lib {}", module.display())),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr
            .contains("stored the intermediate CA certificate CN=Enroll Intermediate")
            && r.stderr.contains("type=cert"),
        "{}",
        r.stderr
    );
    assert_eq!(h.objects().matches("Certificate Object").count(), 2);
    // The token's own view of the new object, through cryptoki (not our code).
    let probe = h
        .cmd(&std::env::current_exe().unwrap().display().to_string())
        .args(["--ignored", "--exact", "probe_ca_certificate_object"])
        .args(["--nocapture", "--test-threads", "1"])
        .env("ENROLL_PROBE_CA_DER", hex(&pem_der(&emu.chain)))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&probe.stdout);
    assert!(
        probe.status.success() && text.contains("probe: public authority certificate"),
        "{text}{}",
        String::from_utf8_lossy(&probe.stderr)
    );

    // Installing again (a renewal, say) finds the intermediate already there and adds nothing.
    let r = enroll("install-cert", &args);
    ok(&r, "install-cert again");
    assert!(
        r.stderr.contains(
            "the intermediate CA certificate CN=Enroll Intermediate is already on the token"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(h.objects().matches("Certificate Object").count(), 2);

    // The stick is unplugged: the profile still works (the chain comes from the token).
    drop(usb);
    let v = run_profile(
        &r.stdout,
        &[
            ("SOFTHSM2_CONF", &h.conf()),
            ("ROLESANYWHERE_PKCS11_PIN", PIN),
        ],
    );
    assert_credentials(&v, &emu);
}

/// The DER of the first certificate in a PEM file (via openssl, an independent reader).
fn pem_der(pem: &Path) -> Vec<u8> {
    let o = Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(pem)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    o.stdout
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// True when this process may create a network namespace; otherwise skip-or-fail.
fn unshare_net_works() -> bool {
    let ok = have("unshare")
        && Command::new("unshare")
            .args(["-n", "true"])
            .status()
            .is_ok_and(|s| s.success());
    ok || !skip("unshare -n is not permitted here")
}

#[test]
fn softhsm_keygen_and_csr_work_without_any_network() {
    let Some(h) = SoftHsm::start() else { return };
    if !unshare_net_works() {
        return;
    }
    let key = "pkcs11:token=ra;object=offline;id=%07?pin-value=97531";
    let csr = h.path("offline.csr");
    let in_netns = |args: &[&str]| -> Run {
        let o = Command::new("unshare")
            .arg("-n")
            .arg(hsm_tests::agent_bin())
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SOFTHSM2_CONF", h.conf())
            .output()
            .unwrap();
        o.into()
    };
    // The namespace really has no network: not even loopback is up.
    let probe = Command::new("unshare")
        .args(["-n", "sh", "-c", "ip -o link show up | grep -c UP || true"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&probe.stdout).trim(), "0");
    ok(
        &in_netns(&softhsm_args("keygen", key, &[])),
        "keygen in a network namespace",
    );
    ok(
        &in_netns(&softhsm_args(
            "csr",
            key,
            &["--subject", "CN=offline", "--out", csr.to_str().unwrap()],
        )),
        "csr in a network namespace",
    );
    openssl_req_verify(&csr);
}

fn swtpm() -> Option<Swtpm> {
    match Swtpm::start() {
        Ok(t) => Some(t),
        Err(e) => {
            let _ = skip(&e.0);
            None
        }
    }
}

fn tpm_agent(tpm: &Swtpm, args: &[&str]) -> Run {
    run_agent(args, &[("TPM2TOOLS_TCTI", &tpm.tcti())])
}

#[test]
fn tpm_keygen_csr_install_then_credential_process_succeeds() {
    let Some(tpm) = swtpm() else { return };
    let emu = Emu::start();
    let key = tpm.path("host.tss2.pem");
    let pw = tpm.path("key.pw");
    std::fs::write(&pw, "s3cret-key-pw\n").unwrap();
    let key_s = key.to_str().unwrap();
    let pw_s = pw.to_str().unwrap();
    let tcti = tpm.tcti();
    // `enroll <sub> --tpm-tcti <tcti> --private-key <key>` then `extra`.
    let enroll = |sub: &str, extra: &[&str]| {
        let mut args = vec!["enroll", sub, "--tpm-tcti", &tcti, "--private-key", key_s];
        args.extend(extra);
        run_agent(&args, &[])
    };
    let r = enroll(
        "keygen",
        &["--tpm-key-password-file", pw_s, "--tpm-pcrs", "sha256:0,7"],
    );
    ok(&r, "keygen");
    let pubkey = r.stdout.clone();
    let meta = std::fs::metadata(&key).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .starts_with("-----BEGIN TSS2 PRIVATE KEY-----")
    );
    let csr = tpm.path("host.csr");
    let r = enroll(
        "csr",
        &[
            "--tpm-key-password-file",
            pw_s,
            "--subject",
            "CN=tpm-host",
            "--san",
            "ip:192.0.2.10",
            "--out",
            csr.to_str().unwrap(),
        ],
    );
    ok(&r, "csr");
    let text = openssl_req_verify(&csr);
    assert!(text.contains("IP Address:192.0.2.10"), "{text}");
    assert_eq!(csr_public_key(&csr), pubkey);

    let cert = tpm.path("issued.pem");
    emu.issue_csr(&csr, "CN=tpm-host", &cert);
    let mut args = vec!["--tpm-key-password-file", pw_s];
    args.extend(emu.install_args(&cert));
    let r = enroll("install-cert", &args);
    ok(&r, "install-cert");
    let installed = tpm.path("host.tss2.cert.pem");
    let meta = std::fs::metadata(&installed).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o644);
    // Leaf then chain, so --certificate alone carries the intermediate.
    assert_eq!(
        std::fs::read_to_string(&installed)
            .unwrap()
            .matches("BEGIN CERTIFICATE")
            .count(),
        2
    );
    assert!(!r.stdout.contains("s3cret"), "{}", r.stdout);
    let v = run_profile(&r.stdout, &[]);
    assert_credentials(&v, &emu);

    // keygen never overwrites the key file.
    let before = std::fs::read(&key).unwrap();
    let r = enroll("keygen", &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    assert_eq!(std::fs::read(&key).unwrap(), before);
}

#[test]
fn tpm_key_file_is_useless_on_another_tpm() {
    let Some(tpm) = swtpm() else { return };
    let Some(other) = swtpm() else { return };
    let key = tpm.path("k.tss2.pem");
    let key_s = key.to_str().unwrap();
    let r = tpm_agent(&tpm, &["enroll", "keygen", "--private-key", key_s]);
    ok(&r, "keygen");
    // tpm2-openssl reads our key file on its TPM and sees the same public key.
    let o = tpm.run(&Swtpm::pubout_args(key_s, &[]));
    assert_eq!(String::from_utf8_lossy(&o.stdout), r.stdout, "{o:?}");
    let csr_args = |out: &str| {
        vec![
            "enroll".to_string(),
            "csr".into(),
            "--private-key".into(),
            key_s.into(),
            "--subject".into(),
            "CN=x".into(),
            "--out".into(),
            out.into(),
        ]
    };
    let here = tpm.path("here.csr");
    let args = csr_args(here.to_str().unwrap());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&tpm_agent(&tpm, &args), "csr on the key's own TPM");

    let there = tpm.path("there.csr");
    let args = csr_args(there.to_str().unwrap());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = tpm_agent(&other, &args);
    // A key file the TPM refuses to load is a configuration mistake (issue 14, 17): exit 2.
    assert_eq!(r.code, 2, "another TPM loaded the key: {}", r.stderr);
    assert!(
        r.stderr.contains("TPM2_Load") && r.stderr.contains("another TPM"),
        "{}",
        r.stderr
    );
    assert!(!there.exists());
    // An independent tool agrees.
    let o = other.run(&Swtpm::pubout_args(key_s, &[]));
    assert!(
        !o.status.success(),
        "tpm2-openssl loaded the key on another TPM"
    );
}

#[test]
fn tpm_persistent_key_enrollment_needs_out_for_the_certificate() {
    let Some(tpm) = swtpm() else { return };
    let emu = Emu::start();
    let r = tpm_agent(
        &tpm,
        &[
            "enroll",
            "keygen",
            "--persist",
            "0x81000020",
            "--key-type",
            "rsa-2048",
        ],
    );
    ok(&r, "keygen --persist");
    let r2 = tpm_agent(&tpm, &["enroll", "keygen", "--persist", "0x81000020"]);
    assert_eq!(r2.code, 2, "{}", r2.stderr);
    assert!(r2.stderr.contains("already in use"), "{}", r2.stderr);

    let csr = tpm.path("p.csr");
    ok(
        &tpm_agent(
            &tpm,
            &[
                "enroll",
                "csr",
                "--private-key",
                "handle:0x81000020",
                "--subject",
                "CN=persistent",
                "--out",
                csr.to_str().unwrap(),
            ],
        ),
        "csr",
    );
    assert!(openssl_req_verify(&csr).contains("sha256WithRSAEncryption"));
    assert_eq!(csr_public_key(&csr), r.stdout);
    let cert = tpm.path("p.pem");
    emu.issue_csr(&csr, "CN=persistent", &cert);
    let install = |out: Option<&str>| {
        let mut args = vec![
            "enroll",
            "install-cert",
            "--private-key",
            "handle:0x81000020",
        ];
        args.extend(emu.install_args(&cert));
        if let Some(o) = out {
            args.extend(["--out", o]);
        }
        tpm_agent(&tpm, &args)
    };
    let r = install(None);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--out"), "{}", r.stderr);
    let out = tpm.path("persistent.cert.pem");
    let r = install(Some(out.to_str().unwrap()));
    ok(&r, "install-cert --out");
    assert!(
        r.stdout.contains("--private-key handle:0x81000020"),
        "{}",
        r.stdout
    );
    assert!(out.is_file());
    // Issue 8: the TCTI came from TPM2TOOLS_TCTI, which the SDK's environment need not have; the
    // profile carries it, so the line works in an environment without it.
    assert!(
        r.stdout.contains(&format!("--tpm-tcti {}", tpm.tcti())),
        "{}",
        r.stdout
    );
    assert_credentials(&run_profile(&r.stdout, &[]), &emu);
}

#[test]
#[ignore = "helper: run in a child process by softhsm_generated_private_key_cannot_be_read_out"]
fn probe_private_key_attributes_are_sensitive() {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    use cryptoki::object::{Attribute, AttributeInfo, AttributeType, ObjectClass};
    use cryptoki::session::UserType;
    let ids = std::env::var("ENROLL_PROBE_IDS").expect("run by the parent test");
    let p = Pkcs11::new(SOFTHSM_LIB).unwrap();
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = p
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| p.get_token_info(*s).is_ok_and(|t| t.label() == "ra"))
        .expect("token ra");
    let s = p.open_ro_session(slot).unwrap();
    s.login(UserType::User, Some(&PIN.to_string().into()))
        .unwrap();
    for id in ids.split(',') {
        let id = u8::from_str_radix(id, 16).unwrap();
        let keys = s
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Id(vec![id]),
            ])
            .unwrap();
        assert_eq!(keys.len(), 1, "private key {id:02x}");
        let secret = [
            AttributeType::Value,
            AttributeType::PrivateExponent,
            AttributeType::Prime1,
        ];
        let info = s.get_attribute_info(keys[0], &secret).unwrap();
        assert!(
            info.iter()
                .all(|i| matches!(i, AttributeInfo::Sensitive | AttributeInfo::TypeInvalid)),
            "{id:02x}: {info:?}"
        );
        assert!(info.iter().any(|i| matches!(i, AttributeInfo::Sensitive)));
        println!("probe: secret attributes sensitive");
    }
}

#[test]
#[ignore = "helper: run in a child process by softhsm_install_cert_keeps_the_chain_on_the_token_not_on_removable_media"]
fn probe_ca_certificate_object() {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    use cryptoki::object::{Attribute, AttributeType, CertificateType, ObjectClass};
    let der_hex = std::env::var("ENROLL_PROBE_CA_DER").expect("run by the parent test");
    let der: Vec<u8> = (0..der_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&der_hex[i..i + 2], 16).unwrap())
        .collect();
    let p = Pkcs11::new(SOFTHSM_LIB).unwrap();
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = p
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| p.get_token_info(*s).is_ok_and(|t| t.label() == "ra"))
        .expect("token ra");
    // No login: a CA certificate must be readable by anyone who can see the token.
    let s = p.open_ro_session(slot).unwrap();
    let found = s
        .find_objects(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::Value(der.clone()),
        ])
        .unwrap();
    assert_eq!(
        found.len(),
        1,
        "the intermediate is not on the token exactly once"
    );
    let attrs = s
        .get_attributes(
            found[0],
            &[
                AttributeType::CertificateType,
                AttributeType::Token,
                AttributeType::Private,
                AttributeType::Id,
                AttributeType::Label,
            ],
        )
        .unwrap();
    let mut checked = 0;
    for a in &attrs {
        match a {
            Attribute::CertificateType(t) => {
                assert_eq!(*t, CertificateType::X_509);
                checked += 1;
            }
            Attribute::Token(t) => {
                assert!(t);
                checked += 1;
            }
            Attribute::Private(p) => {
                assert!(!p);
                checked += 1;
            }
            Attribute::Id(id) => {
                assert!(!id.is_empty() && id != &[0x01], "id {id:02x?} is the key's");
                checked += 1;
            }
            Attribute::Label(l) => {
                assert_ne!(l.as_slice(), b"host", "the label is the key's");
                checked += 1;
            }
            _ => {}
        }
    }
    assert_eq!(checked, 5, "{attrs:?}");
    // CKA_CERTIFICATE_CATEGORY (0x87) = 2, authority. cryptoki 0.12 has no typed attribute for it
    // and cannot read it back, so the token is asked to match it (a native-endian CK_ULONG).
    let with_category = |category: u64| {
        s.find_objects(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::Value(der.clone()),
            Attribute::VendorDefined((
                AttributeType::VendorDefined(0x87),
                category.to_ne_bytes().to_vec(),
            )),
        ])
        .unwrap()
        .len()
    };
    assert_eq!(with_category(2), 1, "not of category authority");
    assert_eq!(with_category(1), 0);
    println!("probe: public authority certificate");
}

#[test]
fn tpm_every_key_type_signs_a_request_openssl_verifies() {
    let Some(tpm) = swtpm() else { return };
    for (key_type, sig) in [
        ("ec-p256", "ecdsa-with-SHA256"),
        ("ec-p384", "ecdsa-with-SHA256"),
        ("rsa-2048", "sha256WithRSAEncryption"),
        ("rsa-3072", "sha256WithRSAEncryption"),
    ] {
        let key = tpm.path(&format!("{key_type}.tss2.pem"));
        let key_s = key.to_str().unwrap();
        let r = tpm_agent(
            &tpm,
            &[
                "enroll",
                "keygen",
                "--private-key",
                key_s,
                "--key-type",
                key_type,
            ],
        );
        ok(&r, key_type);
        let csr = tpm.path(&format!("{key_type}.csr"));
        ok(
            &tpm_agent(
                &tpm,
                &[
                    "enroll",
                    "csr",
                    "--private-key",
                    key_s,
                    "--subject",
                    "CN=t",
                    "--out",
                    csr.to_str().unwrap(),
                ],
            ),
            key_type,
        );
        let text = openssl_req_verify(&csr);
        assert!(text.contains(sig), "{key_type}: {text}");
        assert_eq!(csr_public_key(&csr), r.stdout, "{key_type}");
    }
}

#[test]
fn softhsm_keygen_without_id_picks_one_and_names_it() {
    let Some(h) = SoftHsm::start() else { return };
    let r = h.agent(&[
        "enroll",
        "keygen",
        "--pkcs11-lib",
        SOFTHSM_LIB,
        "--private-key",
        "pkcs11:token=ra;object=rsa-host?pin-value=97531",
        "--key-type",
        "rsa-2048",
    ]);
    ok(&r, "keygen");
    // stderr names the new key with its 8-byte id, and that URI works for csr.
    let uri = r
        .stderr
        .split_whitespace()
        .find(|w| w.starts_with("pkcs11:"))
        .unwrap_or_else(|| panic!("no URI in {:?}", r.stderr));
    let id = uri
        .split(';')
        .find_map(|a| a.strip_prefix("id="))
        .unwrap_or_else(|| panic!("no id in {uri}"));
    assert_eq!(id.len(), 8 * 3, "{uri}");
    let csr = h.path("rsa.csr");
    let with_pin = format!("{uri}?pin-value=97531");
    ok(
        &h.agent(&softhsm_args(
            "csr",
            &with_pin,
            &["--subject", "CN=rsa-host", "--out", csr.to_str().unwrap()],
        )),
        "csr with the printed URI",
    );
    assert!(openssl_req_verify(&csr).contains("sha256WithRSAEncryption"));
    assert_eq!(csr_public_key(&csr), r.stdout);
}

#[test]
fn tpm_keygen_under_a_persistent_parent_with_a_password() {
    let Some(tpm) = swtpm() else { return };
    // A storage primary with its own password, made persistent with tpm2-tools.
    tpm.persistent_primary(&["-G", "ecc", "-p", "parent-pw"], "prim.ctx", "0x81000005");
    let pw = tpm.path("parent.pw");
    std::fs::write(&pw, "parent-pw\n").unwrap();
    let pw_s = pw.to_str().unwrap();
    let key = tpm.path("child.tss2.pem");
    let key_s = key.to_str().unwrap();
    let keygen = |pw_file: &str| {
        tpm_agent(
            &tpm,
            &[
                "enroll",
                "keygen",
                "--private-key",
                key_s,
                "--tpm-parent",
                "0x81000005",
                "--tpm-parent-password-file",
                pw_file,
            ],
        )
    };
    let wrong = tpm.path("wrong.pw");
    std::fs::write(&wrong, "nope\n").unwrap();
    let r = keygen(wrong.to_str().unwrap());
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        !key.exists(),
        "a key file was written after a failed keygen"
    );
    assert!(!r.stderr.contains("nope"), "{}", r.stderr);

    let r = keygen(pw_s);
    ok(&r, "keygen under the persistent parent");
    let csr = tpm.path("child.csr");
    ok(
        &tpm_agent(
            &tpm,
            &[
                "enroll",
                "csr",
                "--private-key",
                key_s,
                "--tpm-parent-password-file",
                pw_s,
                "--subject",
                "CN=child",
                "--out",
                csr.to_str().unwrap(),
            ],
        ),
        "csr",
    );
    openssl_req_verify(&csr);
    assert_eq!(csr_public_key(&csr), r.stdout);
}

#[test]
fn tpm_pcr_bound_key_stops_signing_when_the_pcr_changes() {
    let Some(tpm) = swtpm() else { return };
    let key = tpm.path("pcr.tss2.pem");
    let key_s = key.to_str().unwrap();
    ok(
        &tpm_agent(
            &tpm,
            &[
                "enroll",
                "keygen",
                "--private-key",
                key_s,
                "--tpm-pcrs",
                "sha256:16",
            ],
        ),
        "keygen bound to PCR 16",
    );
    let csr = |name: &str| {
        let out = tpm.path(name);
        let r = tpm_agent(
            &tpm,
            &[
                "enroll",
                "csr",
                "--private-key",
                key_s,
                "--subject",
                "CN=pcr",
                "--out",
                out.to_str().unwrap(),
            ],
        );
        (r, out)
    };
    let (r, before) = csr("before.csr");
    ok(&r, "csr while PCR 16 is unchanged");
    openssl_req_verify(&before);
    tpm.tool(&[
        "tpm2_pcrextend",
        "16:sha256=0000000000000000000000000000000000000000000000000000000000000001",
    ]);
    let (r, after) = csr("after.csr");
    assert_eq!(
        r.code, 1,
        "the key still signed after PCR 16 changed: {}",
        r.stderr
    );
    assert!(r.stderr.contains("PolicyPCR"), "{}", r.stderr);
    assert!(!after.exists());
}

/// SoftHSM 2.6.1 has no ML-DSA: `--key-type ml-dsa-*` is refused, naming the missing mechanisms,
/// before a PIN is used or anything is generated (the token's objects are the same before and
/// after, an existing key included).
#[test]
fn softhsm_keygen_ml_dsa_is_refused_before_anything_is_generated() {
    let Some(h) = SoftHsm::start() else { return };
    ok(
        &h.agent(&softhsm_args(
            "keygen",
            "pkcs11:token=ra;object=old;id=%01?pin-value=97531",
            &[],
        )),
        "EC keygen",
    );
    let before = h.objects();
    assert!(before.contains("old"), "{before}");
    for kt in ["ml-dsa-44", "ml-dsa-65", "ml-dsa-87"] {
        // A wrong PIN too: the refusal comes before any login, so the PIN is never tried.
        for pin in ["97531", "00000"] {
            let uri = format!("pkcs11:token=ra;object=pq;id=%02?pin-value={pin}");
            let r = h.agent(&softhsm_args("keygen", &uri, &["--key-type", kt]));
            assert_eq!(r.code, 2, "{kt}: {}", r.stderr);
            assert!(r.stdout.is_empty(), "{:?}", r.stdout);
            for needle in [
                "token \"ra\" cannot generate the ML-DSA-",
                "CKM_ML_DSA_KEY_PAIR_GEN",
                "offers no ML-DSA signing mechanism",
                "SoftHSM 2.6.1 has none",
                "CKM_ECDSA",
                "nothing was generated",
            ] {
                assert!(r.stderr.contains(needle), "{needle:?} not in {}", r.stderr);
            }
            assert!(!r.stderr.contains("CKR_PIN_INCORRECT"), "{}", r.stderr);
            assert!(!r.stderr.contains(pin), "{}", r.stderr);
        }
    }
    assert_eq!(
        h.objects(),
        before,
        "a refused ML-DSA keygen changed the token"
    );
}
