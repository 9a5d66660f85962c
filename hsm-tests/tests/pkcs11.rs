//! The agent binary against real SoftHSM2 tokens and the emulator: credential-process, sign-string and
//! read-certificate-data with token keys, PIN sources, always-authenticate keys, the p11-kit proxy,
//! and PKCS#11 call counts taken with OpenSC's pkcs11-spy.
//!
//! Keys are generated on the token by pkcs11-tool; certificates come from the emulator's CA;
//! signatures are checked by openssl. Missing tools skip (or fail with HSM_TESTS_REQUIRED=1 or CI set).

use hsm_tests::emu::Emu;
use hsm_tests::softhsm::{self, PIN, SoftHsm};
use hsm_tests::{Run, run_agent};
use std::path::Path;
use std::time::{Duration, Instant};

/// Runs `command` with the emulator's endpoint and ARNs, `extra` arguments and `env`.
fn agent(command: &str, emu: &Emu, extra: &[&str], env: &[(String, String)]) -> Run {
    let mut args: Vec<String> = vec![command.to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(emu.args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    run_agent(&args, &env)
}

/// `credential-process --pkcs11-lib <SoftHSM> --certificate <cert>` then `extra` (see [`agent`]).
fn credential_process(emu: &Emu, cert: &str, extra: &[&str], env: &[(String, String)]) -> Run {
    let mut args = vec!["--pkcs11-lib", LIB, "--certificate", cert];
    args.extend(extra);
    agent("credential-process", emu, &args, env)
}

fn assert_credentials(r: &Run, what: &str) {
    assert_eq!(r.code, 0, "{what}: exit {}; stderr: {}", r.code, r.stderr);
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim())
        .unwrap_or_else(|e| panic!("{what}: stdout is not JSON ({e}): {}", r.stdout));
    assert_eq!(v["Version"], 1, "{what}");
    assert!(
        v["AccessKeyId"].as_str().is_some_and(|s| !s.is_empty()),
        "{what}: {}",
        r.stdout
    );
}

/// A token "ra" with a key of `key_type` (id 01, label `label`) and its emulator-issued certificate
/// on the token; returns the certificate PEM.
fn token_with_key(hsm: &SoftHsm, emu: &Emu, key_type: &str, label: &str, extra: &[&str]) -> String {
    let public = hsm.keygen("ra", key_type, "01", label, extra);
    let cert = emu.issue_for_public_key(&public, label);
    hsm.write_cert("ra", &cert, "01", label);
    cert
}

fn setup() -> Option<(SoftHsm, Emu)> {
    let hsm = SoftHsm::new()?;
    hsm.init_token("ra");
    Some((hsm, Emu::start()))
}

const LIB: &str = softhsm::MODULE;

#[test]
fn credential_process_with_certificate_and_key_on_the_token() {
    for (key_type, label) in [
        ("EC:prime256v1", "ec-p256"),
        ("EC:secp384r1", "ec-p384"),
        ("rsa:2048", "rsa-2048"),
    ] {
        let Some((hsm, emu)) = setup() else { return };
        token_with_key(&hsm, &emu, key_type, label, &[]);
        let cert = format!("pkcs11:token=ra;object={label}?pin-value={PIN}");
        let r = credential_process(&emu, &cert, &[], &hsm.env());
        assert_credentials(&r, label);
        assert_eq!(emu.requests(), 1, "{label}");
    }
}

#[test]
fn credential_process_with_certificate_file_and_key_on_the_token() {
    for (key_type, label) in [("EC:prime256v1", "ec"), ("rsa:2048", "rsa")] {
        let Some((hsm, emu)) = setup() else { return };
        let public = hsm.keygen("ra", key_type, "07", label, &[]);
        let cert = hsm.file(
            "leaf.pem",
            emu.issue_for_public_key(&public, label).as_bytes(),
        );
        let key = format!("pkcs11:token=ra;id=%07?pin-value={PIN}");
        let r = credential_process(&emu, &cert, &["--private-key", &key], &hsm.env());
        assert_credentials(&r, label);
    }
}

#[test]
fn credential_process_through_the_p11_kit_proxy_without_pkcs11_lib() {
    let registered = Path::new("/usr/share/p11-kit/modules/softhsm2.module").is_file();
    if softhsm::p11_kit_proxy().is_none() || !registered {
        let _ = hsm_tests::skip("p11-kit proxy or its softhsm2.module registration is missing");
        return;
    }
    let Some((hsm, emu)) = setup() else { return };
    token_with_key(&hsm, &emu, "EC:prime256v1", "ec", &[]);
    let cert = format!("pkcs11:token=ra;object=ec?pin-value={PIN}");
    let r = agent(
        "credential-process",
        &emu,
        &["--certificate", &cert],
        &hsm.env(),
    );
    assert_credentials(&r, "p11-kit proxy");
}

#[test]
fn credential_process_uses_the_named_token_of_two() {
    let Some((hsm, emu)) = setup() else { return };
    hsm.init_token("other");
    token_with_key(&hsm, &emu, "EC:prime256v1", "k", &[]);
    let decoy = hsm.keygen("other", "EC:prime256v1", "01", "k", &[]);
    hsm.write_cert(
        "other",
        &emu.issue_for_public_key(&decoy, "decoy"),
        "01",
        "k",
    );

    let ambiguous = format!("pkcs11:object=k?pin-value={PIN}");
    let r = credential_process(&emu, &ambiguous, &[], &hsm.env());
    assert_ne!(r.code, 0);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("pkcs11:token=ra;object=k;id=%01;type=cert")
            && r.stderr
                .contains("pkcs11:token=other;object=k;id=%01;type=cert"),
        "{}",
        r.stderr
    );
    assert_eq!(emu.requests(), 0);

    let named = format!("pkcs11:token=ra;object=k?pin-value={PIN}");
    let r = credential_process(&emu, &named, &[], &hsm.env());
    assert_credentials(&r, "token=ra");
}

#[test]
fn always_authenticate_key_with_reuse_pin_context_pin_file_or_env() {
    let Some((hsm, emu)) = setup() else { return };
    token_with_key(&hsm, &emu, "EC:prime256v1", "aa", &["--always-auth"]);
    let cert = format!("pkcs11:token=ra;object=aa?pin-value={PIN}");
    let base = ["--pkcs11-lib", LIB, "--certificate", cert.as_str()];

    let r = agent("credential-process", &emu, &base, &hsm.env());
    assert_ne!(r.code, 0, "no context PIN source must fail");
    assert!(r.stderr.contains("CKA_ALWAYS_AUTHENTICATE"), "{}", r.stderr);
    assert!(r.stdout.is_empty());

    let mut reuse = base.to_vec();
    reuse.push("--reuse-pin");
    assert_credentials(
        &agent("credential-process", &emu, &reuse, &hsm.env()),
        "--reuse-pin",
    );

    let ctx = hsm.file("ctx-pin", format!("{PIN}\n").as_bytes());
    let mut file = base.to_vec();
    file.extend(["--pkcs11-context-pin-file", ctx.as_str()]);
    assert_credentials(
        &agent("credential-process", &emu, &file, &hsm.env()),
        "--pkcs11-context-pin-file",
    );

    let mut env = hsm.env();
    env.push(("ROLESANYWHERE_PKCS11_CONTEXT_PIN".into(), PIN.into()));
    assert_credentials(
        &agent("credential-process", &emu, &base, &env),
        "ROLESANYWHERE_PKCS11_CONTEXT_PIN",
    );
}

#[test]
fn pin_from_pin_source_file_or_environment_variable() {
    let Some((hsm, emu)) = setup() else { return };
    token_with_key(&hsm, &emu, "EC:prime256v1", "k", &[]);
    let pin_file = hsm.file("pin", format!("{PIN}\n").as_bytes());
    let by_file = format!("pkcs11:token=ra;object=k?pin-source=file:{pin_file}");
    assert_credentials(
        &credential_process(&emu, &by_file, &[], &hsm.env()),
        "pin-source",
    );
    let mut env = hsm.env();
    env.push(("ROLESANYWHERE_PKCS11_PIN".into(), PIN.into()));
    assert_credentials(
        &credential_process(&emu, "pkcs11:token=ra;object=k", &[], &env),
        "ROLESANYWHERE_PKCS11_PIN",
    );
    // Without any source and no terminal: a clear error naming the ways to give it.
    let r = credential_process(&emu, "pkcs11:token=ra;object=k", &[], &hsm.env());
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("ROLESANYWHERE_PKCS11_PIN"),
        "{}",
        r.stderr
    );
    assert_eq!(emu.requests(), 2);
}

fn spy() -> Option<String> {
    match softhsm::spy_module() {
        Some(p) => Some(p.display().to_string()),
        None => {
            let _ = hsm_tests::skip("OpenSC's pkcs11-spy.so is missing");
            None
        }
    }
}

#[test]
fn wrong_pin_fails_at_once_with_exactly_one_login() {
    let Some(spy) = spy() else { return };
    let Some((hsm, emu)) = setup() else { return };
    token_with_key(&hsm, &emu, "EC:prime256v1", "k", &[]);
    let log = hsm.dir().join("spy.log");
    let r = agent(
        "credential-process",
        &emu,
        &[
            "--pkcs11-lib",
            &spy,
            "--certificate",
            "pkcs11:token=ra;object=k?pin-value=0000",
        ],
        &hsm.spy_env(&log),
    );
    assert_ne!(r.code, 0);
    assert!(r.stdout.is_empty(), "stdout: {}", r.stdout);
    assert!(
        r.stderr.contains("C_Login: CKR_PIN_INCORRECT"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("token \"ra\""), "{}", r.stderr);
    assert!(!r.stderr.contains("0000"), "the PIN leaked: {}", r.stderr);
    assert_eq!(softhsm::count_calls(&log, "C_Login"), 1);
    assert_eq!(softhsm::count_calls(&log, "C_Sign"), 0);
    assert_eq!(emu.requests(), 0);
}

#[test]
fn good_run_costs_one_sign_and_one_login() {
    let Some(spy) = spy() else { return };
    for (key_type, label) in [("EC:prime256v1", "ec"), ("rsa:2048", "rsa")] {
        let Some((hsm, emu)) = setup() else { return };
        token_with_key(&hsm, &emu, key_type, label, &[]);
        let log = hsm.dir().join("spy.log");
        let cert = format!("pkcs11:token=ra;object={label}?pin-value={PIN}");
        let r = agent(
            "credential-process",
            &emu,
            &["--pkcs11-lib", &spy, "--certificate", &cert],
            &hsm.spy_env(&log),
        );
        assert_credentials(&r, label);
        let calls = |f| softhsm::count_calls(&log, f);
        assert_eq!(calls("C_Sign"), 1, "{label}");
        assert_eq!(calls("C_SignInit"), 1, "{label}");
        assert_eq!(calls("C_Login"), 1, "{label}");
        assert_eq!(calls("C_OpenSession"), 1, "{label}");
        eprintln!(
            "{label}: C_Initialize {} C_GetSlotList {} C_GetTokenInfo {} C_FindObjectsInit {} \
             C_GetAttributeValue {} C_GetMechanismInfo {} C_Login {} C_SignInit {} C_Sign {}",
            calls("C_Initialize"),
            calls("C_GetSlotList"),
            calls("C_GetTokenInfo"),
            calls("C_FindObjectsInit"),
            calls("C_GetAttributeValue"),
            calls("C_GetMechanismInfo"),
            calls("C_Login"),
            calls("C_SignInit"),
            calls("C_Sign"),
        );
    }
}

#[test]
fn always_authenticate_run_adds_exactly_one_context_login() {
    let Some(spy) = spy() else { return };
    let Some((hsm, emu)) = setup() else { return };
    token_with_key(&hsm, &emu, "EC:prime256v1", "aa", &["--always-auth"]);
    let log = hsm.dir().join("spy.log");
    let cert = format!("pkcs11:token=ra;object=aa?pin-value={PIN}");
    let r = agent(
        "credential-process",
        &emu,
        &["--pkcs11-lib", &spy, "--certificate", &cert, "--reuse-pin"],
        &hsm.spy_env(&log),
    );
    assert_credentials(&r, "always-authenticate");
    assert_eq!(softhsm::count_calls(&log, "C_Login"), 2);
    assert_eq!(softhsm::count_calls(&log, "C_Sign"), 1);
    // The context login sits between C_SignInit and C_Sign.
    let text = std::fs::read_to_string(&log).unwrap();
    let order: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_once(": ").map(|(_, f)| f.trim()))
        .filter(|f| ["C_SignInit", "C_Login", "C_Sign"].contains(f))
        .collect();
    assert_eq!(order, ["C_Login", "C_SignInit", "C_Login", "C_Sign"]);
}

#[test]
fn token_key_that_does_not_match_the_certificate_fails_before_any_request() {
    let Some((hsm, emu)) = setup() else { return };
    hsm.keygen("ra", "EC:prime256v1", "01", "mine", &[]);
    let other = hsm.keygen("ra", "EC:prime256v1", "02", "other", &[]);
    let cert = hsm.file(
        "other.pem",
        emu.issue_for_public_key(&other, "other").as_bytes(),
    );
    let key = format!("pkcs11:token=ra;object=mine?pin-value={PIN}");
    let r = credential_process(&emu, &cert, &["--private-key", &key], &hsm.env());
    assert_ne!(r.code, 0);
    assert!(r.stdout.is_empty());
    assert!(
        r.stderr.contains("does not match certificate"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("object=mine"), "{}", r.stderr);
    assert_eq!(emu.requests(), 0);
}

/// `sign-string`'s fixed message for a public key (compat.md): the prefix, "1", then
/// SHA256("IAM RA" || PUBKEY), computed with openssl.
fn sign_string_message(hsm: &SoftHsm, public_pem: &str) -> Vec<u8> {
    let pem = hsm.file("ss.pub.pem", public_pem.as_bytes());
    let der = hsm.dir().join("ss.pub.der");
    hsm.run(
        "openssl",
        &[
            "pkey",
            "-pubin",
            "-in",
            &pem,
            "-outform",
            "DER",
            "-out",
            &der.display().to_string(),
        ],
    );
    let spki = std::fs::read(&der).unwrap();
    // P-256 SPKI ends with the 65-byte uncompressed point.
    let point = &spki[spki.len() - 65..];
    let mut tagged = b"IAM RA".to_vec();
    tagged.extend_from_slice(point);
    let t = hsm.file("ss.tagged", &tagged);
    let h = hsm.dir().join("ss.hash");
    hsm.run(
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-binary",
            "-out",
            &h.display().to_string(),
            &t,
        ],
    );
    let mut msg = b"AWS Roles Anywhere Credential Helper Signing Test1".to_vec();
    msg.extend(std::fs::read(&h).unwrap());
    msg
}

#[test]
fn sign_string_with_a_token_key_verifies_with_openssl() {
    let Some((hsm, emu)) = setup() else { return };
    token_with_key(&hsm, &emu, "EC:prime256v1", "k", &[]);
    let public = hsm.public_pem("ra", "01");
    let uri = format!("pkcs11:token=ra;object=k?pin-value={PIN}");
    let msg = hsm.file("ss.msg", &sign_string_message(&hsm, &public));
    let pub_file = hsm.file("ss.pub.pem", public.as_bytes());
    // With the certificate on the token, and with the key URI alone.
    for flag in ["--certificate", "--private-key"] {
        let r = run_agent(
            &[
                "sign-string",
                "--pkcs11-lib",
                LIB,
                flag,
                &uri,
                "--format",
                "text",
            ],
            &[("SOFTHSM2_CONF", &hsm.conf().display().to_string())],
        );
        assert_eq!(r.code, 0, "{flag}: {}", r.stderr);
        let hex = r.stdout.trim();
        let sig: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let sig_file = hsm.file("ss.sig", &sig);
        let ok = std::process::Command::new("openssl")
            .args([
                "dgst",
                "-sha256",
                "-verify",
                &pub_file,
                "-signature",
                &sig_file,
                &msg,
            ])
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{flag}: {}",
            String::from_utf8_lossy(&ok.stdout)
        );
    }
}

#[test]
fn read_certificate_data_lists_each_token_certificate_with_its_uri() {
    let Some((hsm, emu)) = setup() else { return };
    token_with_key(&hsm, &emu, "EC:prime256v1", "ec", &[]);
    let rsa = hsm.keygen("ra", "rsa:2048", "02", "rsa", &[]);
    hsm.write_cert("ra", &emu.issue_for_public_key(&rsa, "rsa"), "02", "rsa");
    let r = run_agent(
        &[
            "read-certificate-data",
            "--pkcs11-lib",
            LIB,
            "--certificate",
            "pkcs11:token=ra",
        ],
        &[("SOFTHSM2_CONF", &hsm.conf().display().to_string())],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{}", r.stdout);
    assert_eq!(lines[0]["keyType"], "EC");
    assert_eq!(
        lines[0]["uri"],
        "pkcs11:token=ra;object=ec;id=%01;type=cert"
    );
    assert_eq!(lines[1]["keyType"], "RSA");
    assert_eq!(
        lines[1]["uri"],
        "pkcs11:token=ra;object=rsa;id=%02;type=cert"
    );
}

#[test]
fn token_key_wall_time_compared_with_a_key_file() {
    let Some((hsm, emu)) = setup() else { return };
    token_with_key(&hsm, &emu, "EC:prime256v1", "ec", &[]);
    let key = hsm.dir().join("file.key").display().to_string();
    hsm.run(
        "openssl",
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &key,
        ],
    );
    let public = hsm.run("openssl", &["pkey", "-in", &key, "-pubout"]);
    let file_cert = hsm.file(
        "file.pem",
        emu.issue_for_public_key(&public, "file").as_bytes(),
    );
    let token_cert = format!("pkcs11:token=ra;object=ec?pin-value={PIN}");
    let time = |args: &[&str]| -> Duration {
        let mut best = Duration::MAX;
        for _ in 0..3 {
            let t = Instant::now();
            assert_credentials(
                &agent("credential-process", &emu, args, &hsm.env()),
                "timing",
            );
            best = best.min(t.elapsed());
        }
        best
    };
    let file = time(&["--certificate", &file_cert, "--private-key", &key]);
    let token = time(&["--pkcs11-lib", LIB, "--certificate", &token_cert]);
    eprintln!("credential-process best of 3: key file {file:?}, SoftHSM token {token:?}");
}

#[test]
fn configuration_mistakes_exit_2_and_device_refusals_exit_1() {
    let Some((hsm, emu)) = setup() else { return };
    token_with_key(&hsm, &emu, "EC:prime256v1", "k", &[]);
    let code = |cert: &str| credential_process(&emu, cert, &[], &hsm.env()).code;
    assert_eq!(code(&format!("pkcs11:token=ra;objct=k?pin-value={PIN}")), 2);
    assert_eq!(code(&format!("pkcs11:token=absent?pin-value={PIN}")), 2);
    assert_eq!(code("pkcs11:token=ra;object=k"), 2, "no PIN source");
    assert_eq!(
        code("pkcs11:token=ra;object=k?pin-value=0000"),
        1,
        "wrong PIN"
    );
    let run = |args: &[&str]| agent("credential-process", &emu, args, &hsm.env());
    let cert = format!("pkcs11:token=ra;object=k?pin-value={PIN}");
    let r = run(&[
        "--pkcs11-lib",
        "/nonexistent/libnothing.so",
        "--certificate",
        &cert,
    ]);
    assert_eq!(r.code, 2, "module not found: {}", r.stderr);
    let no_key = format!("pkcs11:token=ra;object=absent?pin-value={PIN}");
    let r = run(&[
        "--pkcs11-lib",
        LIB,
        "--certificate",
        &cert,
        "--private-key",
        &no_key,
    ]);
    assert_eq!(r.code, 2, "no such key: {}", r.stderr);
    // sign-string goes through the same rule.
    let r = run_agent(
        &[
            "sign-string",
            "--pkcs11-lib",
            LIB,
            "--private-key",
            "pkcs11:token=ra;objct=k",
        ],
        &[],
    );
    assert_eq!(r.code, 2, "sign-string with a bad URI: {}", r.stderr);
    assert_eq!(emu.requests(), 0);
}

#[test]
fn always_authenticate_key_without_a_context_pin_source_exits_2() {
    let Some((hsm, emu)) = setup() else { return };
    token_with_key(&hsm, &emu, "EC:prime256v1", "aa", &["--always-auth"]);
    let cert = format!("pkcs11:token=ra;object=aa?pin-value={PIN}");
    let r = credential_process(&emu, &cert, &[], &hsm.env());
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(emu.requests(), 0);
}

#[test]
fn sign_string_and_read_certificate_data_debug_name_the_token_objects_but_not_the_pin() {
    let Some((hsm, emu)) = setup() else { return };
    token_with_key(&hsm, &emu, "EC:prime256v1", "k", &[]);
    let uri = format!("pkcs11:token=ra;object=k?pin-value={PIN}");
    let env = [("SOFTHSM2_CONF", hsm.conf().display().to_string())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for args in [
        vec!["sign-string", "--private-key", &uri],
        vec!["read-certificate-data", "--certificate", &uri],
    ] {
        let mut args = args.clone();
        args.extend(["--pkcs11-lib", LIB, "--debug"]);
        let r = run_agent(&args, &env);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("rolesanywhere-agent: debug: "),
            "{}",
            r.stderr
        );
        assert!(
            r.stderr.contains("pkcs11:token=ra;object=k"),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("EC P-256"), "{}", r.stderr);
        assert!(
            !r.stderr.contains(&format!("pin-value={PIN}")),
            "{}",
            r.stderr
        );
    }
}

/// `read-certificate-data` of token "ra" through SoftHSM, as `run` runs it; asserts a usage error
/// with empty stdout and returns stderr.
fn token_not_visible(run: impl FnOnce(&[&str]) -> Run) -> String {
    let r = run(&[
        "read-certificate-data",
        "--pkcs11-lib",
        LIB,
        "--certificate",
        "pkcs11:token=ra",
    ]);
    eprintln!("--- stderr (exit {}):\n{}", r.code, r.stderr);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        r.stderr
            .contains(&format!("pkcs11-tool --module {LIB} --list-token-slots")),
        "{}",
        r.stderr
    );
    r.stderr
}

/// Issue 8 (5): the token exists, but the agent's environment has no SOFTHSM2_CONF (as when an AWS
/// SDK runs the credential_process without it): the error says so.
#[test]
fn token_not_visible_without_softhsm2_conf_names_the_variable() {
    let Some((_hsm, _emu)) = setup() else { return };
    let stderr = token_not_visible(|args| run_agent(args, &[]));
    assert!(stderr.contains("SOFTHSM2_CONF is not set"), "{stderr}");
}

/// Issue 8 (5): SOFTHSM2_CONF names a configuration whose token directory does not exist.
#[test]
fn softhsm_token_directory_that_does_not_exist_is_named() {
    let Some((hsm, _emu)) = setup() else { return };
    let missing = hsm.dir().join("no-such-dir");
    let conf = hsm.file(
        "missing.conf",
        format!("directories.tokendir = {}\n", missing.display()).as_bytes(),
    );
    let stderr = token_not_visible(|args| run_agent(args, &[("SOFTHSM2_CONF", &conf)]));
    for needle in [
        format!("SOFTHSM2_CONF={conf}"),
        format!("token directory {}", missing.display()),
        "does not exist".to_string(),
    ] {
        assert!(stderr.contains(&needle), "{needle}: {stderr}");
    }
}

/// Issue 8 (5): the configuration is readable, the token directory is not (another user's). As
/// root (who reads everything) the agent runs as `nobody` through setpriv.
#[test]
fn softhsm_token_directory_unreadable_by_this_user_is_named() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let Some((hsm, _emu)) = setup() else { return };
    let root = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0)
        == 0;
    if root && !hsm_tests::have("setpriv") {
        let _ = hsm_tests::skip("running as root needs setpriv to test as another user");
        return;
    }
    let tokens = hsm.dir().join("tokens");
    let mode = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
    mode(hsm.dir(), 0o755).unwrap();
    mode(&hsm.conf(), 0o644).unwrap();
    mode(&tokens, 0o700).unwrap();
    if !root {
        mode(&tokens, 0o000).unwrap();
    }
    let conf = hsm.conf().display().to_string();
    let stderr = token_not_visible(|args| {
        let mut cmd = if root {
            let mut c = std::process::Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
            c.arg(hsm_tests::agent_bin());
            c
        } else {
            std::process::Command::new(hsm_tests::agent_bin())
        };
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SOFTHSM2_CONF", &conf)
            .output()
            .expect("cannot run the agent")
            .into()
    });
    let _ = mode(&tokens, 0o700);
    for needle in [
        format!("SOFTHSM2_CONF={conf}"),
        format!("token directory {}", tokens.display()),
        "cannot be read by this user".to_string(),
    ] {
        assert!(stderr.contains(&needle), "{needle}: {stderr}");
    }
}

/// Issue 14: a PIN file that is a FIFO (nobody writing) or a device is refused at once, naming it,
/// for the user PIN (`pin-source=file:`) and the context-specific PIN alike.
#[test]
fn issue_14_pin_files_must_be_regular_files() {
    let Some((hsm, emu)) = setup() else { return };
    token_with_key(&hsm, &emu, "EC:prime256v1", "aa", &["--always-auth"]);
    let fifo = hsm.dir().join("pin-fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let fifo = fifo.to_str().unwrap().to_string();
    let run = |cert: &str, extra: &[&str]| -> Run {
        let mut cmd = std::process::Command::new(hsm_tests::agent_bin());
        cmd.arg("credential-process")
            .args(["--pkcs11-lib", LIB, "--certificate", cert])
            .args(extra)
            .args(emu.args())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(hsm.env());
        hsm_tests::output_within(&mut cmd, Duration::from_secs(10)).into()
    };
    for (path, found) in [
        (fifo.as_str(), "a FIFO (named pipe), not a regular file"),
        ("/dev/zero", "a character device, not a regular file"),
    ] {
        let by_source = format!("pkcs11:token=ra;object=aa?pin-source=file:{path}");
        let r = run(&by_source, &[]);
        assert_eq!(r.code, 2, "pin-source {path}: {}", r.stderr);
        assert!(r.stdout.is_empty());
        let want = format!("the user PIN of PKCS#11 token \"ra\" from file {path}: it is {found}");
        assert!(r.stderr.contains(&want), "{want}\n{}", r.stderr);

        let by_value = format!("pkcs11:token=ra;object=aa?pin-value={PIN}");
        let r = run(&by_value, &["--pkcs11-context-pin-file", path]);
        assert_eq!(r.code, 2, "context PIN {path}: {}", r.stderr);
        assert!(r.stdout.is_empty());
        let want = format!("from file {path}: it is {found}");
        assert!(
            r.stderr.contains("context-specific PIN") && r.stderr.contains(&want),
            "{want}\n{}",
            r.stderr
        );
    }
    assert_eq!(emu.requests(), 0);
}
