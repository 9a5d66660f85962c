//! End-to-end tests of the `rolesanywhere-agent` binary against the in-process emulator.
//!
//! Every test works in its own temp dir with a cleared environment and asserts exit code, stdout and
//! stderr. Failure paths must leave stdout empty.

mod common;

use common::*;
use rolesanywhere_emulator::ca::{IssueRequest, KeyType};
use rolesanywhere_emulator::server::Tls;
use std::time::Duration;

const EC_P256: &[&str] = &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
const EC_P384: &[&str] = &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"];
const RSA_2048: &[&str] = &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"];
const RSA_3072: &[&str] = &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"];

fn credentials_for_key_type(algorithm: &[&str]) {
    let env = Env::new();
    let public = env.openssl_key("leaf", algorithm);
    let serial = env.issue_with(&env.ca, "leaf", public, |_| {});
    let emu = env.emulator();
    let run = env.credential_process(&emu.url(), "leaf", &[]);
    let creds = run.credentials();
    assert!(run.stderr.is_empty(), "stderr: {}", run.stderr);
    let d = emu.decisions();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].status, 201);
    assert_eq!(d[0].serial_decimal.as_deref(), Some(serial.as_str()));
    assert!(
        creds["AccessKeyId"].as_str().unwrap().starts_with("ASIA"),
        "{creds}"
    );
}

#[test]
fn credential_process_with_rsa2048_key() {
    credentials_for_key_type(RSA_2048);
}

#[test]
fn credential_process_with_rsa3072_key() {
    credentials_for_key_type(RSA_3072);
}

#[test]
fn credential_process_with_p256_key() {
    credentials_for_key_type(EC_P256);
}

#[test]
fn credential_process_with_p384_key() {
    credentials_for_key_type(EC_P384);
}

/// Root → intermediate → leaf, with the trust anchor holding only the root.
fn intermediate_env() -> Env {
    let env = Env::new();
    let int = env
        .ca
        .intermediate(&env.path("int"), "Test Intermediate CA")
        .unwrap();
    std::fs::write(env.path("int.pem"), int.cert_pem()).unwrap();
    let public = env.openssl_key("leaf", EC_P256);
    env.issue_with(&int, "leaf", public, |_| {});
    env
}

#[test]
fn intermediate_chain_is_sent_with_intermediates_flag() {
    let env = intermediate_env();
    let emu = env.emulator();
    let int = env.p("int.pem");
    env.credential_process(&emu.url(), "leaf", &["--intermediates", &int])
        .credentials();
}

#[test]
fn missing_intermediate_is_refused_as_untrusted_with_hint() {
    let env = intermediate_env();
    let emu = env.emulator();
    let run = env.credential_process(&emu.url(), "leaf", &[]);
    run.assert_failure(1, &["HTTP 403", "hint:", "--intermediates"]);
    assert_eq!(emu.decisions().len(), 1, "403 must not be retried");
}

#[test]
fn fullchain_certificate_file_supplies_the_chain() {
    let env = intermediate_env();
    let full = format!(
        "{}{}",
        std::fs::read_to_string(env.path("leaf.pem")).unwrap(),
        std::fs::read_to_string(env.path("int.pem")).unwrap()
    );
    std::fs::write(env.path("full.pem"), full).unwrap();
    std::fs::copy(env.path("leaf.key"), env.path("full.key")).unwrap();
    let emu = env.emulator();
    env.credential_process(&emu.url(), "full", &[])
        .credentials();
}

#[test]
fn role_session_name_and_duration_reach_the_service() {
    let env = Env::new();
    env.leaf("leaf");
    let emu = env.emulator();
    env.credential_process(
        &emu.url(),
        "leaf",
        &[
            "--role-session-name",
            "my-session",
            "--session-duration",
            "1800",
        ],
    )
    .credentials();
    let d = emu.decisions();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].role_session_name.as_deref(), Some("my-session"));
    assert_eq!(d[0].duration_seconds, Some(1800));
}

#[test]
fn role_session_name_refused_by_profile_gets_hint() {
    let env = Env::new();
    env.leaf("leaf");
    let toml = env.config_toml("", "", "").replace(
        "accept_role_session_name = true",
        "accept_role_session_name = false",
    );
    let emu = env.emulator_with(&toml, Tls::None);
    let run = env.credential_process(&emu.url(), "leaf", &["--role-session-name", "my-session"]);
    run.assert_failure(1, &["HTTP 403", "acceptRoleSessionName"]);
}

#[test]
fn https_endpoint_is_trusted_through_aws_ca_bundle() {
    let env = Env::new();
    env.leaf("leaf");
    let emu = env.emulator_with(
        &env.config_toml("", "", ""),
        Tls::SelfIssued {
            ca_out: Some(env.path("server-ca.pem")),
        },
    );
    assert!(emu.url().starts_with("https://"), "{}", emu.url());
    std::fs::write(env.path("bundle.pem"), emu.tls_ca_pem().unwrap()).unwrap();
    let bundle = env.p("bundle.pem");

    // TLS fails before HTTP, so the emulator sees nothing: the attempt count is read from stderr.
    let run = env.credential_process(&emu.url(), "leaf", &["--debug"]);
    run.assert_failure(
        1,
        &[
            "server certificate",
            "is not trusted (1 attempt)",
            "UnknownIssuer",
            "hint:",
            "AWS_CA_BUNDLE",
        ],
    );
    assert!(!run.stderr.contains("retrying"), "{}", run.stderr);
    assert_eq!(
        emu.decisions().len(),
        0,
        "an untrusted server must not see a request"
    );

    env.credential_process_env(&emu.url(), "leaf", &[], &[("AWS_CA_BUNDLE", &bundle)])
        .credentials();
    env.credential_process_env(&emu.url(), "leaf", &[], &[("SSL_CERT_FILE", &bundle)])
        .credentials();

    let run = env.credential_process(&emu.url(), "leaf", &["--no-verify-ssl"]);
    run.credentials();
    assert!(
        run.stderr.contains("WARNING") && run.stderr.contains("--no-verify-ssl"),
        "{}",
        run.stderr
    );
}

#[test]
fn key_certificate_mismatch_fails_before_any_request() {
    let env = Env::new();
    env.leaf("leaf");
    env.leaf("other");
    std::fs::copy(env.path("other.key"), env.path("leaf.key")).unwrap();
    let emu = env.emulator();
    let run = env.credential_process(&emu.url(), "leaf", &[]);
    run.assert_failure(2, &["does not match", "leaf.pem"]);
    assert!(emu.decisions().is_empty());
}

#[test]
fn certificate_from_untrusted_issuer_is_refused() {
    let env = Env::new();
    let other =
        rolesanywhere_emulator::ca::Ca::init(&env.path("other-ca"), KeyType::EcP256, "Other CA")
            .unwrap();
    let public = env.openssl_key("leaf", EC_P256);
    env.issue_with(&other, "leaf", public, |_| {});
    let emu = env.emulator();
    let run = env.credential_process(&emu.url(), "leaf", &[]);
    run.assert_failure(1, &["HTTP 403", "AccessDeniedException", "hint:"]);
    assert_eq!(emu.decisions().len(), 1);
}

fn refused_leaf(edit: impl FnOnce(&mut IssueRequest)) -> (Env, Run) {
    let env = Env::new();
    let public = env.openssl_key("leaf", EC_P256);
    env.issue_with(&env.ca, "leaf", public, edit);
    let emu = env.emulator();
    let run = env.credential_process(&emu.url(), "leaf", &[]);
    assert_eq!(emu.decisions().len(), 1, "a refusal is not retried");
    (env, run)
}

#[test]
fn expired_certificate_is_refused() {
    let now = time::OffsetDateTime::now_utc();
    let (_env, run) = refused_leaf(|r| {
        r.not_before = now - time::Duration::days(10);
        r.not_after = now - time::Duration::days(1);
    });
    run.assert_failure(1, &["HTTP 403", "validity period"]);
}

#[test]
fn not_yet_valid_certificate_is_refused() {
    let now = time::OffsetDateTime::now_utc();
    let (_env, run) = refused_leaf(|r| {
        r.not_before = now + time::Duration::days(1);
        r.not_after = now + time::Duration::days(10);
    });
    run.assert_failure(1, &["HTTP 403", "validity period"]);
}

#[test]
fn revoked_certificate_is_refused() {
    let env = Env::new();
    env.leaf("leaf");
    let crl = env
        .ca
        .revoke(&std::fs::read_to_string(env.path("leaf.pem")).unwrap())
        .unwrap();
    let toml = env.config_toml("", &format!("crls = [{:?}]", path_str(&crl)), "");
    let emu = env.emulator_with(&toml, Tls::None);
    let run = env.credential_process(&emu.url(), "leaf", &[]);
    run.assert_failure(1, &["HTTP 403", "revoked"]);
}

fn usage_env() -> (Env, rolesanywhere_emulator::server::Running) {
    let env = Env::new();
    env.leaf("leaf");
    let emu = env.emulator();
    (env, emu)
}

#[test]
fn malformed_arn_is_a_usage_error_without_request() {
    let (env, emu) = usage_env();
    let run = env.credential_process(
        &emu.url(),
        "leaf",
        &["--role-arn", "arn:aws:iam::12:role/x"],
    );
    run.assert_failure(2, &["--role-arn", "arn:aws:iam::12:role/x"]);
    assert!(emu.decisions().is_empty());
}

#[test]
fn trust_anchor_and_profile_region_mismatch_is_a_usage_error() {
    let (env, emu) = usage_env();
    let run = env.credential_process(
        &emu.url(),
        "leaf",
        &[
            "--profile-arn",
            "arn:aws:rolesanywhere:eu-west-1:123456789012:profile/p-test",
        ],
    );
    run.assert_failure(2, &["us-east-1", "eu-west-1"]);
    assert!(emu.decisions().is_empty());
}

#[test]
fn session_duration_out_of_range_is_a_usage_error() {
    let (env, emu) = usage_env();
    for d in ["899", "43201"] {
        let run = env.credential_process(&emu.url(), "leaf", &["--session-duration", d]);
        run.assert_failure(2, &["--session-duration", d, "900", "43200"]);
    }
    assert!(emu.decisions().is_empty());
}

#[test]
fn unreadable_key_file_is_a_usage_error_naming_the_file() {
    let (env, emu) = usage_env();
    std::fs::remove_file(env.path("leaf.key")).unwrap();
    let run = env.credential_process(&emu.url(), "leaf", &[]);
    run.assert_failure(2, &["leaf.key", "os error 2"]);
    assert_eq!(
        run.stderr.matches("os error 2").count(),
        1,
        "cause repeated: {}",
        run.stderr
    );
    assert!(emu.decisions().is_empty());
}

fn faulty(faults: &str) -> (Env, rolesanywhere_emulator::server::Running) {
    let env = Env::new();
    env.leaf("leaf");
    let emu = env.emulator_with(&env.config_toml("", "", faults), Tls::None);
    (env, emu)
}

#[test]
fn service_unavailable_once_is_retried_and_succeeds() {
    let (env, emu) = faulty("[[faults]]\nkind = \"status\"\nstatus = 503\ntimes = 1\n");
    env.credential_process(&emu.url(), "leaf", &[])
        .credentials();
    let d = emu.decisions();
    assert_eq!(d.len(), 2, "{d:?}");
    assert_eq!((d[0].status, d[1].status), (503, 201));
}

#[test]
fn persistent_server_error_gives_up_after_three_attempts() {
    let (env, emu) = faulty("[[faults]]\nkind = \"status\"\nstatus = 500\ntimes = 100\n");
    let run = env.credential_process(&emu.url(), "leaf", &[]);
    run.assert_failure(1, &["HTTP 500"]);
    assert_eq!(emu.decisions().len(), 3);
}

#[test]
fn access_denied_is_not_retried() {
    let (env, emu) = faulty("[[faults]]\nkind = \"status\"\nstatus = 403\ntimes = 100\n");
    let run = env.credential_process(&emu.url(), "leaf", &[]);
    run.assert_failure(1, &["HTTP 403"]);
    assert_eq!(emu.decisions().len(), 1);
}

#[test]
fn hanging_server_times_out_in_bounded_time() {
    let (env, emu) = faulty("[[faults]]\nkind = \"hang\"\ntimes = 100\n");
    let run = env.credential_process(
        &emu.url(),
        "leaf",
        &["--timeout", "1", "--connect-timeout", "1"],
    );
    run.assert_failure(1, &["cannot reach", "3 attempts", "hint:"]);
    assert!(run.elapsed < Duration::from_secs(10), "{:?}", run.elapsed);
}

#[test]
fn malformed_success_body_is_a_clear_error() {
    let (env, emu) = faulty("[[faults]]\nkind = \"malformed-body\"\ntimes = 100\n");
    let run = env.credential_process(&emu.url(), "leaf", &[]);
    run.assert_failure(1, &["malformed CreateSession response"]);
    assert_eq!(emu.decisions().len(), 1);
}

#[test]
fn proxy_from_environment_is_used_and_no_proxy_bypasses_it() {
    let (env, emu) = usage_env();
    // Port 9 (discard) on loopback has no listener: going through the proxy must fail.
    let proxy = [
        ("HTTP_PROXY", "http://127.0.0.1:9"),
        ("http_proxy", "http://127.0.0.1:9"),
    ];
    let run = env.credential_process_env(&emu.url(), "leaf", &["--with-proxy"], &proxy);
    run.assert_failure(1, &["cannot reach"]);
    assert!(emu.decisions().is_empty());
    let mut bypass = proxy.to_vec();
    bypass.push(("NO_PROXY", "127.0.0.1"));
    env.credential_process_env(&emu.url(), "leaf", &[], &bypass)
        .credentials();
}

/// Writes `enc.key`: `leaf.key` as encrypted PKCS#8 (AES-256-CBC) under `password`.
fn encrypt_leaf_key(env: &Env, password: &str) {
    openssl(&[
        "pkcs8",
        "-topk8",
        "-v2",
        "aes-256-cbc",
        "-in",
        &env.p("leaf.key"),
        "-out",
        &env.p("enc.key"),
        "-passout",
        &format!("pass:{password}"),
    ]);
}

#[test]
fn debug_shows_signing_steps_but_never_secrets() {
    let env = Env::new();
    env.leaf("leaf");
    let password = "pkcs8-pass-Zq7";
    encrypt_leaf_key(&env, password);
    std::fs::copy(env.path("leaf.pem"), env.path("enc.pem")).unwrap();
    let emu = env.emulator();
    let run = env.credential_process(
        &emu.url(),
        "enc",
        &["--debug", "--pkcs8-password", password],
    );
    let creds = run.credentials();
    for needle in [
        "canonical request",
        "string to sign",
        "AWS4-X509-ECDSA-SHA256",
        "201",
    ] {
        assert!(
            run.stderr.contains(needle),
            "stderr lacks {needle}:\n{}",
            run.stderr
        );
    }
    for secret in [
        creds["SecretAccessKey"].as_str().unwrap(),
        creds["SessionToken"].as_str().unwrap(),
        password,
    ] {
        assert!(
            !run.stderr.contains(secret),
            "secret leaked:\n{}",
            run.stderr
        );
    }
}

/// A `credential_process` line cannot easily be edited on a fleet: ROLESANYWHERE_DEBUG turns debug
/// output on without touching it, and 0 / false / off / empty leave it off.
#[test]
fn debug_environment_variable_turns_debug_on_without_touching_stdout() {
    let env = Env::new();
    env.leaf("leaf");
    let password = "pkcs8-env-pass-Wx4";
    encrypt_leaf_key(&env, password);
    std::fs::copy(env.path("leaf.pem"), env.path("enc.pem")).unwrap();
    let emu = env.emulator();
    for on in ["1", "true", "yes"] {
        let run = env.credential_process_env(
            &emu.url(),
            "enc",
            &[],
            &[
                ("ROLESANYWHERE_DEBUG", on),
                ("ROLESANYWHERE_PKCS8_PASSWORD", password),
            ],
        );
        // `credentials` asserts stdout is exactly the one JSON line.
        let creds = run.credentials();
        assert!(
            run.stderr.contains("rolesanywhere-agent: debug: ")
                && run.stderr.contains("string to sign"),
            "ROLESANYWHERE_DEBUG={on}: no debug lines:\n{}",
            run.stderr
        );
        assert!(
            run.stderr
                .lines()
                .all(|l| l.starts_with("rolesanywhere-agent: debug: ")),
            "ROLESANYWHERE_DEBUG={on}: unexpected stderr:\n{}",
            run.stderr
        );
        for secret in [
            creds["SecretAccessKey"].as_str().unwrap(),
            creds["SessionToken"].as_str().unwrap(),
            password,
        ] {
            assert!(
                !run.stderr.contains(secret),
                "secret leaked:\n{}",
                run.stderr
            );
        }
    }
    for off in ["0", "false", "off", "no", ""] {
        let run = env.credential_process_env(
            &emu.url(),
            "enc",
            &[],
            &[
                ("ROLESANYWHERE_DEBUG", off),
                ("ROLESANYWHERE_PKCS8_PASSWORD", password),
            ],
        );
        run.credentials();
        assert_eq!(
            run.stderr, "",
            "ROLESANYWHERE_DEBUG={off:?} must leave debug off"
        );
    }
}

#[test]
fn boto3_gets_credentials_through_credential_process() {
    let python = std::process::Command::new("python3")
        .args(["-c", "import boto3"])
        .output();
    if !python.is_ok_and(|o| o.status.success()) {
        assert!(
            !hsm_tests::required(),
            "python3 with boto3 is required when HSM_TESTS_REQUIRED=1 or CI is set"
        );
        eprintln!(
            "SKIPPED boto3_gets_credentials_through_credential_process: python3 boto3 missing"
        );
        return;
    }
    let env = Env::new();
    env.leaf("leaf");
    let emu = env.emulator();
    let config = format!(
        "[profile ra]\nregion = us-east-1\ncredential_process = {} credential-process --certificate {} \
         --private-key {} --trust-anchor-arn {TRUST_ANCHOR} --profile-arn {PROFILE} --role-arn {ROLE} \
         --endpoint {}\n",
        env!("CARGO_BIN_EXE_rolesanywhere-agent"),
        env.p("leaf.pem"),
        env.p("leaf.key"),
        emu.url()
    );
    std::fs::write(env.path("aws-config"), config).unwrap();
    let script = "import boto3\nc = boto3.Session(profile_name='ra').get_credentials().get_frozen_credentials()\n\
                  print(c.access_key)\nprint(len(c.secret_key) > 0 and len(c.token) > 0)\n";
    let config_path = env.p("aws-config");
    let creds_path = env.p("no-credentials");
    let run = env.run_program(
        "python3",
        &["-c", script],
        &[
            ("AWS_CONFIG_FILE", &config_path),
            ("AWS_SHARED_CREDENTIALS_FILE", &creds_path),
        ],
    );
    assert_eq!(run.code, 0, "boto3 failed:\n{}", run.stderr);
    // One successful CreateSession, and boto3 holds an access key of the emulator's form: the key
    // can only have come from that answer (Decision does not record the issued key).
    let d = emu.decisions();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].status, 201);
    let mut lines = run.stdout.lines();
    let access_key = lines.next().unwrap_or_default();
    assert!(
        access_key.len() == 20
            && access_key.starts_with("ASIA")
            && access_key
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
        "{access_key:?}"
    );
    assert_eq!(lines.next(), Some("True"));
}

fn sign_string_verifies_with_openssl(
    algorithm: &[&str],
    pubkey_bytes: impl Fn(&Env) -> Vec<u8>,
    digest: &str,
) {
    let env = Env::new();
    env.openssl_key("k", algorithm);
    let key = env.p("k.key");
    let run = env.run(
        &[
            "sign-string",
            "--private-key",
            &key,
            "--digest",
            digest,
            "--format",
            "bin",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    std::fs::write(env.path("sig.bin"), &run.stdout_bytes).unwrap();

    // "AWS Roles Anywhere Credential Helper Signing Test" || "1" || SHA256("IAM RA" || PUBKEY)
    let mut inner = b"IAM RA".to_vec();
    inner.extend(pubkey_bytes(&env));
    std::fs::write(env.path("inner.bin"), inner).unwrap();
    let inner_hash = openssl(&["dgst", "-sha256", "-binary", &env.p("inner.bin")]);
    let mut msg = b"AWS Roles Anywhere Credential Helper Signing Test1".to_vec();
    msg.extend(inner_hash);
    std::fs::write(env.path("msg.bin"), msg).unwrap();
    let dgst = format!("-{}", digest.to_lowercase());
    let out = openssl(&[
        "dgst",
        &dgst,
        "-verify",
        &env.p("k.pub.pem"),
        "-signature",
        &env.p("sig.bin"),
        &env.p("msg.bin"),
    ]);
    assert!(String::from_utf8_lossy(&out).contains("Verified OK"));

    let json = env.run(
        &["sign-string", "--private-key", &key, "--digest", digest],
        &[],
    );
    assert_eq!(json.code, 0, "{}", json.stderr);
    let hex: String = serde_json::from_str(&json.stdout).unwrap();
    assert!(
        hex.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "{hex}"
    );
    if algorithm.contains(&"RSA") {
        // PKCS#1 v1.5 is deterministic: every format carries the same signature.
        assert_eq!(hex, hex_encode(&run.stdout_bytes));
        let text = env.run(
            &[
                "sign-string",
                "--private-key",
                &key,
                "--digest",
                digest,
                "--format",
                "text",
            ],
            &[],
        );
        assert_eq!(text.stdout, format!("{hex}\n"));
    }
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn sign_string_rsa_signature_verifies_with_openssl() {
    sign_string_verifies_with_openssl(
        RSA_2048,
        |env| {
            openssl(&[
                "rsa",
                "-pubin",
                "-in",
                &env.p("k.pub.pem"),
                "-RSAPublicKey_out",
                "-outform",
                "DER",
            ])
        },
        "SHA256",
    );
}

#[test]
fn sign_string_ec_signature_verifies_with_openssl() {
    sign_string_verifies_with_openssl(
        EC_P256,
        |env| {
            // The SubjectPublicKeyInfo of a P-256 key ends with the 65-byte uncompressed point.
            let spki = openssl(&[
                "pkey",
                "-pubin",
                "-in",
                &env.p("k.pub.pem"),
                "-outform",
                "DER",
            ]);
            spki[spki.len() - 65..].to_vec()
        },
        "SHA384",
    );
}

#[test]
fn read_certificate_data_matches_openssl() {
    let env = Env::new();
    let public = env.openssl_key("rsa", RSA_2048);
    env.issue_with(&env.ca, "rsa", public, |_| {});
    env.leaf("ec");
    for (name, key_type) in [("rsa", "RSA"), ("ec", "EC")] {
        let cert = env.p(&format!("{name}.pem"));
        let run = env.run(&["read-certificate-data", "--certificate", &cert], &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(v["keyType"], key_type);
        let serial_hex =
            String::from_utf8(openssl(&["x509", "-in", &cert, "-noout", "-serial"])).unwrap();
        let serial_hex = serial_hex.trim().trim_start_matches("serial=");
        assert_eq!(
            v["serialNumber"].as_str().unwrap(),
            hex_to_decimal(serial_hex)
        );
        let der = openssl(&["x509", "-in", &cert, "-outform", "DER"]);
        use base64::Engine as _;
        assert_eq!(
            v["certificateData"].as_str().unwrap(),
            base64::engine::general_purpose::STANDARD.encode(der)
        );
        let algs: Vec<String> = ["SHA256", "SHA384", "SHA512"]
            .iter()
            .map(|a| format!("{key_type}{a}"))
            .collect();
        assert_eq!(v["supportedAlgorithms"], serde_json::json!(algs));
    }
}

#[test]
fn unknown_flag_is_a_usage_error_on_stderr() {
    let env = Env::new();
    let run = env.run(&["credential-process", "--no-such-flag"], &[]);
    run.assert_failure(2, &["--no-such-flag"]);
}

#[test]
fn update_and_serve_are_not_supported_yet() {
    let env = Env::new();
    let common = [
        "--trust-anchor-arn",
        TRUST_ANCHOR,
        "--profile-arn",
        PROFILE,
        "--role-arn",
        ROLE,
    ];
    for cmd in [vec!["update", "--once"], vec!["serve", "--port", "9912"]] {
        let mut args = cmd.clone();
        args.extend_from_slice(&common);
        env.run(&args, &[])
            .assert_failure(2, &[cmd[0], "not supported yet"]);
        // Without flags the answer is the same: no request to fix flags of a command that cannot run.
        let run = env.run(&cmd[..1], &[]);
        run.assert_failure(2, &[cmd[0], "not supported yet"]);
        assert!(!run.stderr.contains("is required"), "{}", run.stderr);
    }
}

#[test]
fn os_certificate_store_flags_are_refused_on_linux() {
    let env = Env::new();
    let run = env.run(&["read-certificate-data", "--cert-selector", "Key=x"], &[]);
    run.assert_failure(2, &["--cert-selector", "--certificate"]);
}

/// `version` and `--version`: the version first (as the reference helper prints it), then the git
/// revision of the build and the signing backends compiled in.
#[test]
fn version_names_the_revision_and_the_backends() {
    let env = Env::new();
    let backends = if cfg!(feature = "tpm") {
        "file, pkcs11, tpm"
    } else {
        "file, pkcs11"
    };
    for (args, prefix) in [
        (&["version"][..], ""),
        (&["--version"][..], "rolesanywhere-agent "),
    ] {
        let run = env.run(args, &[]);
        assert_eq!((run.code, run.stderr.as_str()), (0, ""), "{args:?}");
        let line = run
            .stdout
            .strip_prefix(prefix)
            .and_then(|l| l.strip_suffix('\n'))
            .unwrap_or_else(|| panic!("{args:?}: {:?}", run.stdout));
        let rest = line
            .strip_prefix(concat!(env!("CARGO_PKG_VERSION"), " (revision "))
            .unwrap_or_else(|| panic!("{args:?}: {line:?}"));
        let (revision, rest) = rest
            .split_once("; ")
            .unwrap_or_else(|| panic!("{args:?}: {line:?}"));
        assert_eq!(rest, format!("backends: {backends})"), "{args:?}");
        if option_env!("RA_BUILD_REVISION").is_none() {
            let hex = revision.strip_suffix("-dirty").unwrap_or(revision);
            assert!(
                revision == "unknown"
                    || (hex.len() == 12 && hex.bytes().all(|b| b.is_ascii_hexdigit())),
                "{args:?}: revision {revision:?}"
            );
        }
    }
}

#[test]
fn unparsable_key_and_certificate_are_usage_errors_without_request() {
    let (env, emu) = usage_env();
    std::fs::write(
        env.path("bad.key"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    std::fs::copy(env.path("leaf.pem"), env.path("bad.pem")).unwrap();
    env.credential_process(&emu.url(), "bad", &[])
        .assert_failure(2, &["bad.key"]);
    std::fs::copy(env.path("leaf.key"), env.path("bad.key")).unwrap();
    std::fs::write(env.path("bad.pem"), "not a certificate\n").unwrap();
    env.credential_process(&emu.url(), "bad", &[])
        .assert_failure(2, &["bad.pem"]);
    assert!(emu.decisions().is_empty());
}

#[test]
fn read_certificate_data_of_missing_file_is_a_usage_error() {
    let env = Env::new();
    env.run(
        &["read-certificate-data", "--certificate", "missing.pem"],
        &[],
    )
    .assert_failure(2, &["missing.pem"]);
}

#[test]
fn throttling_is_retried_and_succeeds() {
    let (env, emu) = faulty("[[faults]]\nkind = \"status\"\nstatus = 429\ntimes = 1\n");
    env.credential_process(&emu.url(), "leaf", &[])
        .credentials();
    let d = emu.decisions();
    assert_eq!(
        d.iter().map(|d| d.status).collect::<Vec<_>>(),
        vec![429, 201]
    );
}

#[test]
fn sign_string_refuses_a_certificate_of_another_key() {
    let env = Env::new();
    env.leaf("leaf");
    env.leaf("other");
    let run = env.run(
        &[
            "sign-string",
            "--private-key",
            &env.p("other.key"),
            "--certificate",
            &env.p("leaf.pem"),
        ],
        &[],
    );
    run.assert_failure(2, &["does not match"]);
}

#[test]
fn sign_string_with_a_malformed_tpm_key_file_names_it_and_exits_2() {
    let env = Env::new();
    std::fs::write(
        env.path("tpm.key"),
        "-----BEGIN TSS2 PRIVATE KEY-----\nAAAA\n-----END TSS2 PRIVATE KEY-----\n",
    )
    .unwrap();
    let tpm_file = env.p("tpm.key");
    env.run(&["sign-string", "--private-key", &tpm_file], &[])
        .assert_failure(2, &[tpm_file.as_str()]);
}

#[test]
fn read_certificate_data_usage_errors_exit_2() {
    let env = Env::new();
    env.run(&["read-certificate-data"], &[])
        .assert_failure(2, &["--certificate is required"]);
    env.run(
        &[
            "read-certificate-data",
            "--certificate",
            "handle:0x81000001",
        ],
        &[],
    )
    .assert_failure(2, &["handle:0x81000001", "PEM file or a pkcs11: URI"]);
}

#[test]
fn sign_string_and_read_certificate_data_debug_describe_key_and_certificate() {
    let env = Env::new();
    env.leaf("leaf");
    let password = "pkcs8-pass-Zq7";
    encrypt_leaf_key(&env, password);
    let (key, cert) = (env.p("enc.key"), env.p("leaf.pem"));
    let base = [
        "sign-string",
        "--private-key",
        &key,
        "--pkcs8-password",
        password,
    ];
    let run = env.run(
        &[&base[..], &["--digest", "SHA384", "--debug"]].concat(),
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let quiet = env.run(&base, &[]);
    assert!(quiet.stderr.is_empty(), "{}", quiet.stderr);
    for needle in [
        "rolesanywhere-agent: debug: ",
        "enc.key",
        "EC P-256",
        "SHA384",
    ] {
        assert!(run.stderr.contains(needle), "{needle}:\n{}", run.stderr);
    }
    let with_cert = env.run(
        &[&base[..], &["--certificate", &cert, "--debug"]].concat(),
        &[],
    );
    assert_eq!(with_cert.code, 0, "{}", with_cert.stderr);
    assert!(with_cert.stderr.contains("CN=leaf"), "{}", with_cert.stderr);
    let read = env.run(
        &["read-certificate-data", "--certificate", &cert, "--debug"],
        &[],
    );
    assert_eq!(read.code, 0, "{}", read.stderr);
    for needle in ["leaf.pem", "CN=leaf", "EC P-256"] {
        assert!(read.stderr.contains(needle), "{needle}:\n{}", read.stderr);
    }
    for r in [&run, &with_cert, &read] {
        assert!(!r.stderr.contains(password), "{}", r.stderr);
    }
}
