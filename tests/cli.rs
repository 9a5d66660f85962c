//! End-to-end tests of the `rolesanywhere-agent` binary against the in-process emulator.
//!
//! Every test works in its own temp dir with a cleared environment and asserts exit code, stdout and
//! stderr. Failure paths must leave stdout empty.

mod common;
// A build without the `tpm` feature has no companion to run.
#[cfg(feature = "tpm")]
#[path = "cli/companion.rs"]
mod companion;
#[path = "cli/files.rs"]
mod files;
#[path = "cli/mldsa.rs"]
mod mldsa;

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

    // AWS_CA_BUNDLE replaces the other roots, as in botocore: with another CA in it, the server's CA
    // in SSL_CERT_FILE no longer counts (issue 9).
    let other = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/vectors/root-ca.pem");
    let run = env.credential_process_env(
        &emu.url(),
        "leaf",
        &[],
        &[("SSL_CERT_FILE", &bundle), ("AWS_CA_BUNDLE", other)],
    );
    run.assert_failure(1, &["is not trusted (1 attempt)", "UnknownIssuer"]);

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
    run.assert_failure(1, &["timed out", "3 attempts", "hint:"]);
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

/// Issue 11: `--from-agent` with no agent listening: exit 1, stdout empty, the socket named with
/// how to start the agent; the socket from the flag, else `ROLESANYWHERE_AGENT_SOCK`.
#[test]
fn from_agent_without_an_agent_names_the_socket_issue_11() {
    let env = Env::new();
    let run = env.run(
        &[
            "credential-process",
            "--from-agent",
            "x",
            "--agent-socket",
            "/nonexistent",
        ],
        &[],
    );
    run.assert_failure(
        1,
        &[
            "cannot get credentials from the agent: no agent is listening on /nonexistent",
            "start it with `rolesanywhere-agent agent`",
        ],
    );
    let run = env.run(
        &["credential-process", "--from-agent", "x"],
        &[("ROLESANYWHERE_AGENT_SOCK", "/nonexistent/env.sock")],
    );
    run.assert_failure(1, &["no agent is listening on /nonexistent/env.sock"]);
    // A closed stdout is refused first, as without --from-agent.
    let agent = env!("CARGO_BIN_EXE_rolesanywhere-agent");
    let closed = env.run_program(
        "sh",
        &[
            "-c",
            "exec \"$0\" \"$@\" >&-",
            agent,
            "credential-process",
            "--from-agent",
            "x",
            "--agent-socket",
            "/nonexistent",
        ],
        &[],
    );
    closed.assert_failure(1, &["cannot write to stdout", "closed"]);
    assert!(!closed.stderr.contains("no agent"), "{}", closed.stderr);
}

/// Issue 11: the agent holds the identity, so `--from-agent` takes no other session flag; each
/// one given is named (exit 2), and `--agent-socket` alone is refused too.
#[test]
fn from_agent_with_session_flags_is_a_usage_error_naming_them_issue_11() {
    let env = Env::new();
    let run = env.run(
        &[
            "credential-process",
            "--from-agent",
            "web",
            "--role-arn",
            ROLE,
            "--certificate",
            "c.pem",
            "--session-duration",
            "900",
        ],
        &[],
    );
    run.assert_failure(
        2,
        &[
            "--from-agent",
            "cannot be used with",
            "--role-arn",
            "--certificate",
            "--session-duration",
        ],
    );
    let run = env.run(&["credential-process", "--agent-socket", "/s"], &[]);
    run.assert_failure(2, &["--from-agent"]);
    let run = env.run(&["credential-process", "--from-agent", "../web"], &[]);
    run.assert_failure(2, &["--from-agent \"../web\" is not a profile name"]);
}

#[test]
fn serve_without_session_flags_names_every_missing_one() {
    let env = Env::new();
    let run = env.run(&["serve", "--port", "9912"], &[]);
    run.assert_failure(
        2,
        &[
            "serve needs",
            "--certificate",
            "--trust-anchor-arn",
            "--profile-arn",
            "--role-arn",
        ],
    );
    assert!(!run.stderr.contains("not supported"), "{}", run.stderr);
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
        .assert_failure(2, &["read-certificate-data needs --certificate"]);
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

/// The `hint:` line of a failed run (empty when there is none).
fn hint_line(run: &Run) -> String {
    run.stderr
        .lines()
        .find_map(|l| l.strip_prefix("rolesanywhere-agent: hint: "))
        .unwrap_or_default()
        .to_string()
}

/// Issue 8 (5): a leaf the service refuses for what it is, not for its chain, gets a hint naming the
/// leaf and the broken rule instead of the "--intermediates" hint.
#[test]
fn refused_ca_or_non_signing_leaf_gets_a_hint_naming_it_not_intermediates() {
    for (edit, needles) in [
        (
            (|r: &mut IssueRequest| r.is_ca = true) as fn(&mut IssueRequest),
            &["CN=leaf", "CA:TRUE", "end-entity"][..],
        ),
        (
            |r: &mut IssueRequest| r.digital_signature = false,
            &["CN=leaf", "keyUsage", "digitalSignature"][..],
        ),
    ] {
        let (_env, run) = refused_leaf(edit);
        run.assert_failure(1, &["HTTP 403", "Untrusted signing certificate", "hint:"]);
        let hint = hint_line(&run);
        for n in needles {
            assert!(hint.contains(n), "hint lacks {n:?}: {hint}");
        }
        assert!(!hint.contains("--intermediates"), "{hint}");
    }
}

/// Issue 8 (5): a 404 from a wrong `--endpoint` path is about the endpoint, one for an ARN the service
/// does not know (ResourceNotFoundException) is about the ARNs.
#[test]
fn not_found_tells_a_wrong_endpoint_path_from_an_unknown_arn() {
    let (env, emu) = usage_env();
    for (base, extra) in [
        (format!("{}/wrong", emu.url()), ""),
        (format!("{}/sessions", emu.url()), "drop /sessions"),
    ] {
        let run = env.credential_process(&base, "leaf", &[]);
        run.assert_failure(1, &["HTTP 404"]);
        let hint = hint_line(&run);
        for n in [&format!("{base}/sessions"), "--endpoint", extra] {
            assert!(hint.contains(n), "hint lacks {n:?}: {hint}");
        }
        assert!(!hint.contains("--profile-arn"), "{hint}");
    }
    let run = env.credential_process(
        &emu.url(),
        "leaf",
        &[
            "--profile-arn",
            "arn:aws:rolesanywhere:us-east-1:123456789012:profile/p-unknown",
        ],
    );
    run.assert_failure(1, &["HTTP 404", "ResourceNotFoundException"]);
    let hint = hint_line(&run);
    assert!(hint.contains("--profile-arn"), "{hint}");
    assert!(!hint.contains("--endpoint"), "{hint}");
}

/// Issue 8 (6): every missing required flag in one message (not one per run), exit 2, nothing on
/// stdout; `--private-key` is not needed with a `pkcs11:` certificate (the key is on its token).
#[test]
fn missing_required_flags_are_all_named_in_one_message() {
    let env = Env::new();
    let run = env.run(&["credential-process"], &[]);
    run.assert_failure(
        2,
        &[
            "credential-process needs --certificate, --private-key, --trust-anchor-arn, \
           --profile-arn and --role-arn",
        ],
    );
    let run = env.run(
        &[
            "credential-process",
            "--certificate",
            "pkcs11:token=ra",
            "--role-arn",
            ROLE,
        ],
        &[],
    );
    run.assert_failure(
        2,
        &["credential-process needs --trust-anchor-arn and --profile-arn"],
    );
    assert!(!run.stderr.contains("--private-key"), "{}", run.stderr);
    // A repeated flag still takes its last value (args_override_self), and counts as given.
    let run = env.run(
        &[
            "credential-process",
            "--private-key",
            "a.key",
            "--private-key",
            "handle:0x81000001",
            "--trust-anchor-arn",
            TRUST_ANCHOR,
            "--profile-arn",
            PROFILE,
            "--role-arn",
            ROLE,
        ],
        &[],
    );
    run.assert_failure(2, &["credential-process needs --certificate"]);
    env.run(&["read-certificate-data"], &[])
        .assert_failure(2, &["read-certificate-data needs --certificate"]);
    env.run(&["sign-string", "--digest", "SHA384"], &[])
        .assert_failure(2, &["sign-string needs --private-key"]);
}

/// Issue 8 (6): `--help` says which flags each command needs.
#[test]
fn help_marks_required_flags() {
    let env = Env::new();
    let session = &[
        "--certificate",
        "--private-key",
        "--trust-anchor-arn",
        "--profile-arn",
        "--role-arn",
    ][..];
    for (command, required) in [
        ("credential-process", session),
        ("update", session),
        ("serve", session),
        ("read-certificate-data", &["--certificate"][..]),
        ("sign-string", &["--private-key"][..]),
    ] {
        let run = env.run(&[command, "--help"], &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        // Each option: its line and its description, up to the next option.
        let mut options: Vec<(String, String)> = Vec::new();
        for line in run.stdout.lines() {
            let t = line.trim_start();
            if t.starts_with("--") && line.len() - t.len() <= 6 {
                let name: String = t.chars().take_while(|c| !c.is_whitespace()).collect();
                options.push((name, String::new()));
            } else if let Some((_, text)) = options.last_mut() {
                text.push_str(t);
                text.push(' ');
            }
        }
        for (name, text) in &options {
            let marked = text.contains("(required");
            assert_eq!(
                marked,
                required.contains(&name.as_str()),
                "{command} {name}: {text}"
            );
        }
        assert!(options.len() > required.len(), "{}", run.stdout);
    }
}

/// Issue 8, point 4: `enroll csr` with an encrypted key file takes the password flags the error
/// suggests (it used to reject them as unexpected arguments), and the request verifies with openssl.
#[test]
fn enroll_csr_with_an_encrypted_key_file_accepts_the_suggested_password_flags() {
    let env = Env::new();
    env.openssl_key("leaf", EC_P256);
    let password = "pkcs8-pass-Zq7";
    encrypt_leaf_key(&env, password);
    std::fs::write(env.path("pw"), format!("{password}\n")).unwrap();
    let key = env.p("enc.key");
    let csr = |out: &str, extra: &[&str], vars: &[(&str, &str)]| {
        let mut args = vec![
            "enroll",
            "csr",
            "--private-key",
            &key,
            "--subject",
            "CN=enc",
            "--out",
            out,
        ];
        args.extend_from_slice(extra);
        env.run(&args, vars)
    };

    // No password: exit 2, and every flag the message suggests is one this command accepts.
    let run = csr("none.csr", &[], &[]);
    run.assert_failure(2, &["enc.key", "encrypted", "--pkcs8-password-file"]);
    assert!(!env.path("none.csr").exists());
    let suggested: Vec<&str> = run
        .stderr
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--"))
        .collect();
    assert!(suggested.contains(&"--pkcs8-password"), "{}", run.stderr);
    let pw_file = env.p("pw");
    for (i, flag) in suggested.iter().enumerate() {
        let value = if flag.ends_with("-file") {
            pw_file.as_str()
        } else {
            password
        };
        let out = format!("suggested-{i}.csr");
        let r = csr(&out, &[flag, value], &[]);
        assert_eq!(r.code, 0, "{flag}: {}", r.stderr);
        assert!(!r.stderr.contains(password), "{}", r.stderr);
        let text = openssl(&["req", "-verify", "-noout", "-subject", "-in", &env.p(&out)]);
        assert!(
            String::from_utf8_lossy(&text).contains("CN = enc"),
            "{flag}: {}",
            String::from_utf8_lossy(&text)
        );
    }
    // The environment variable credential-process honours works too.
    let r = csr(
        "env.csr",
        &[],
        &[("ROLESANYWHERE_PKCS8_PASSWORD", password)],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    openssl(&["req", "-verify", "-noout", "-in", &env.p("env.csr")]);
}

/// Skips (or, when required, fails) without python3 and boto3.
fn have_boto3(test: &str) -> bool {
    let python = std::process::Command::new("python3")
        .args(["-c", "import boto3"])
        .output();
    if python.is_ok_and(|o| o.status.success()) {
        return true;
    }
    assert!(
        !hsm_tests::required(),
        "python3 with boto3 is required when HSM_TESTS_REQUIRED=1 or CI is set"
    );
    eprintln!("SKIPPED {test}: python3 boto3 missing");
    false
}

/// Issue 8, point 2: `install-cert --aws-config` run twice (the second a renewal with `--replace`) on
/// a config file with other profiles, comments and the duplicates the old `>> ~/.aws/config` advice
/// left: botocore parses the result, the other sections read as before, the profile is there once,
/// and boto3 gets credentials through it.
#[test]
fn install_cert_writes_the_aws_config_profile_in_place_and_botocore_reads_it() {
    if !have_boto3("install_cert_writes_the_aws_config_profile_in_place_and_botocore_reads_it") {
        return;
    }
    let env = Env::new();
    env.leaf("host");
    let emu = env.emulator();
    // Other profiles, comments, sso-session and services sections, CRLF line endings.
    let others = "# my settings\r\n[default]\r\nregion = eu-west-1\r\n\r\n; work account\r\n\
                  [profile work]\r\nsso_session = corp\r\ns3 =\r\n    addressing_style = path\r\n\r\n\
                  [sso-session corp]\r\nsso_start_url = https://corp.awsapps.com/start\r\n\
                  sso_region = eu-west-1\r\n\r\n[services local]\r\ns3 =\r\n  endpoint_url = http://127.0.0.1:9000\r\n";
    // What `install-cert … >> ~/.aws/config` appended, twice (botocore refuses the file).
    let appended = "# Add to ~/.aws/config:\n[profile rolesanywhere]\n\
                    credential_process = rolesanywhere-agent credential-process --certificate /old\n";
    std::fs::create_dir(env.path("dotfiles")).unwrap();
    let real = env.path("dotfiles/aws-config");
    std::fs::write(&real, format!("{others}{appended}{appended}")).unwrap();
    std::fs::set_permissions(&real, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    std::fs::create_dir(env.path(".aws")).unwrap();
    std::os::unix::fs::symlink(&real, env.path(".aws/config")).unwrap();

    let install = |extra: &[&str], vars: &[(&str, &str)]| {
        let (key, cert, url) = (env.p("host.key"), env.p("host.pem"), emu.url());
        let mut args = vec![
            "enroll",
            "install-cert",
            "--private-key",
            &key,
            "--certificate",
            &cert,
            "--trust-anchor-arn",
            TRUST_ANCHOR,
            "--profile-arn",
            PROFILE,
            "--role-arn",
            ROLE,
            "--endpoint",
            &url,
        ];
        args.extend_from_slice(extra);
        env.run(&args, vars)
    };
    let config = env.p(".aws/config");
    let first = install(&["--aws-config", &config], &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first
            .stderr
            .contains("removed 1 duplicate [profile rolesanywhere]"),
        "{}",
        first.stderr
    );
    // The renewal: --aws-config without a value is $HOME/.aws/config (HOME is the test dir).
    let second = install(&["--replace", "--aws-config"], &[]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second.stderr.contains("updated [profile rolesanywhere] in"),
        "{}",
        second.stderr
    );
    assert!(!second.stderr.contains("duplicate"), "{}", second.stderr);

    // Everything before the profile is byte for byte what it was; the link and the mode stay.
    let text = std::fs::read_to_string(&real).unwrap();
    assert!(text.starts_with(others), "{text}");
    assert_eq!(text.matches("[profile rolesanywhere]").count(), 1, "{text}");
    assert!(
        std::fs::symlink_metadata(env.path(".aws/config"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&real).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o640);
    // The line SDKs run starts with this binary's absolute path.
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_rolesanywhere-agent")).unwrap();
    assert!(
        text.contains(&format!(
            "credential_process = {} credential-process",
            exe.display()
        )),
        "{text}"
    );
    assert!(
        second.stdout.contains(&format!("# Written to {config}:")),
        "{}",
        second.stdout
    );

    // botocore's own reading, of the file before (without the profile) and after.
    std::fs::write(env.path("others"), others).unwrap();
    let script = "import sys, json\nfrom botocore import configloader\nimport boto3\n\
                  def read(p):\n    c = configloader.load_config(p)\n    \
                  return {k: c[k] for k in ('profiles', 'sso_sessions', 'services')}\n\
                  before, after = read(sys.argv[1]), read(sys.argv[2])\n\
                  c = boto3.Session(profile_name='rolesanywhere').get_credentials().get_frozen_credentials()\n\
                  print(json.dumps({'before': before, 'after': after, 'key': c.access_key}))\n";
    let run = env.run_program(
        "python3",
        &["-c", script, &env.p("others"), &config],
        &[
            ("AWS_CONFIG_FILE", &config),
            ("AWS_SHARED_CREDENTIALS_FILE", &env.p("no-credentials")),
        ],
    );
    assert_eq!(run.code, 0, "botocore/boto3 failed:\n{}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let mut after = v["after"].clone();
    let ours = after["profiles"]
        .as_object_mut()
        .unwrap()
        .remove("rolesanywhere")
        .unwrap();
    assert_eq!(after, v["before"], "other sections changed");
    assert!(
        ours["credential_process"]
            .as_str()
            .is_some_and(|c| c.starts_with(&exe.display().to_string())),
        "{ours}"
    );
    assert!(
        v["key"].as_str().is_some_and(|k| k.starts_with("ASIA")),
        "{v}"
    );
    let d = emu.decisions();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].status, 201);
}

/// Issue 8, point 3 for key files: the chain from `--intermediates` on removable media goes into the
/// certificate file written beside the key, so the printed profile still works once it is gone.
#[test]
fn install_cert_for_a_key_file_keeps_the_chain_beside_the_key_not_on_removable_media() {
    let env = intermediate_env();
    let emu = env.emulator();
    std::fs::create_dir(env.path("usb")).unwrap();
    std::fs::rename(env.path("leaf.pem"), env.path("usb/leaf.pem")).unwrap();
    std::fs::copy(env.path("int.pem"), env.path("usb/int.pem")).unwrap();
    let (key, cert, chain, url) = (
        env.p("leaf.key"),
        env.p("usb/leaf.pem"),
        env.p("usb/int.pem"),
        emu.url(),
    );
    let run = env.run(
        &[
            "enroll",
            "install-cert",
            "--private-key",
            &key,
            "--certificate",
            &cert,
            "--intermediates",
            &chain,
            "--trust-anchor-arn",
            TRUST_ANCHOR,
            "--profile-arn",
            PROFILE,
            "--role-arn",
            ROLE,
            "--endpoint",
            &url,
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.contains("usb"), "{}", run.stdout);
    assert!(
        run.stderr
            .contains(&format!("wrote {}", env.p("leaf.key.cert.pem"))),
        "{}",
        run.stderr
    );
    std::fs::remove_dir_all(env.path("usb")).unwrap();
    let line = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("credential_process = "))
        .unwrap();
    let creds = run_command({
        let mut c = std::process::Command::new("sh");
        c.args(["-c", line])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        c
    });
    creds.credentials();
    assert_eq!(emu.decisions().last().map(|d| d.status), Some(201));
}

// ---- Issue 14: hostile servers and hostile input on the network side ----

/// A scripted HTTP server on 127.0.0.1: each connection's request is read, counted, and answered by
/// `answer` (in a thread of its own, so a slow answer does not hold up the next connection).
struct Scripted {
    url: String,
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Scripted {
    fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn scripted(answer: impl Fn(&mut std::net::TcpStream) + Send + Sync + 'static) -> Scripted {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let answer = Arc::new(answer);
    let count = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else {
                return;
            };
            let (answer, count) = (answer.clone(), count.clone());
            std::thread::spawn(move || {
                if read_request(&stream) {
                    count.fetch_add(1, Ordering::SeqCst);
                    answer(&mut stream);
                }
            });
        }
    });
    Scripted { url, requests }
}

/// Reads one request (head and Content-Length body); false when the client went away first.
fn read_request(stream: &std::net::TcpStream) -> bool {
    use std::io::{BufRead, Read};
    let mut reader = std::io::BufReader::new(stream);
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => {}
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    reader.read_exact(&mut vec![0; len]).is_ok()
}

/// An answer with `status`, extra `headers` (each ending in CRLF) and `body`; the connection closes.
fn answer(status: &str, headers: &str, body: &str) -> impl Fn(&mut std::net::TcpStream) + use<> {
    let text = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    move |s| {
        let _ = std::io::Write::write_all(s, text.as_bytes());
    }
}

/// A credential set as the service sends it, expiring at `expiration`.
fn credential_body(expiration: &str) -> String {
    format!(
        r#"{{"credentialSet":[{{"credentials":{{"accessKeyId":"ASIASCRIPTED0000000A","secretAccessKey":"scripted-secret","sessionToken":"scripted-token","expiration":"{expiration}"}}}}]}}"#
    )
}

/// Issue 14 (1): a server that sends its headers and then one body byte at a time is cut off at
/// `--timeout` for each attempt, and the whole run ends within attempts × timeout plus the backoff.
#[test]
fn trickling_body_is_cut_off_at_the_timeout_issue_14() {
    let env = Env::new();
    env.leaf("leaf");
    let server = scripted(|s| {
        use std::io::Write;
        let head = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n\
                    Content-Length: 100000\r\nConnection: close\r\n\r\n{";
        if s.write_all(head.as_bytes()).is_err() {
            return;
        }
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_secs(120) {
            std::thread::sleep(Duration::from_millis(250));
            if s.write_all(b" ").and_then(|()| s.flush()).is_err() {
                return;
            }
        }
    });
    let args = env.credential_args(
        &server.url,
        "leaf",
        &["--timeout", "2", "--connect-timeout", "1"],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = run_within(env.cmd(&args, &[]), Duration::from_secs(40));
    // 3 attempts of 2 s, under a second of backoff, and a generous margin for a loaded machine.
    assert!(
        run.elapsed < Duration::from_secs(2 * 3 + 3),
        "{:?}",
        run.elapsed
    );
    run.assert_failure(
        1,
        &[
            "timed out",
            &format!("{}/sessions", server.url),
            "3 attempts",
            "hint:",
            "--timeout",
        ],
    );
    assert_eq!(server.requests(), 3);
}

/// Issue 14 (2): a redirect is not followed (whatever the target would hand out) nor retried; the
/// error names the Location, escaped and without its user info.
#[test]
fn redirect_is_refused_and_not_followed_issue_14() {
    let env = Env::new();
    env.leaf("leaf");
    let target = scripted(answer(
        "201 Created",
        "",
        &credential_body("2099-01-01T00:00:00Z"),
    ));
    let location = format!(
        "{}/sessions\u{202e}x",
        target.url.replace("http://", "http://user:Zq9w@")
    );
    let redirector = scripted(answer(
        "307 Temporary Redirect",
        &format!("Location: {location}\r\n"),
        "",
    ));
    let run = env.credential_process(&redirector.url, "leaf", &[]);
    let host = target.url.trim_start_matches("http://");
    run.assert_failure(
        1,
        &[
            &format!("{}/sessions", redirector.url),
            "HTTP 307",
            &format!("…@{host}/sessions\\u{{202e}}x\""),
            "redirects are not followed",
            "hint:",
        ],
    );
    for leaked in ["\u{202e}", "Zq9w", "scripted-secret"] {
        assert!(!run.stderr.contains(leaked), "{leaked:?}:\n{}", run.stderr);
    }
    assert_eq!(redirector.requests(), 1, "a redirect must not be retried");
    assert_eq!(target.requests(), 0, "a redirect must not be followed");
}

/// Issue 14 (13): no part of the user info of an endpoint reaches stderr, however a `#`, `?`, `/`,
/// `\` or `@` in the password splits it, with or without `--debug`.
#[test]
fn endpoint_user_info_never_reaches_stderr_issue_14() {
    let env = Env::new();
    env.leaf("leaf");
    for (endpoint, secrets) in [
        ("https://user:pa#Zq9w@host/", &["user:", "pa#", "Zq9w"][..]),
        ("https://u:p?Zq9w@h", &["u:p", "Zq9w"]),
        ("https://u:p/Zq9w@h", &["u:p", "Zq9w"]),
        ("https://u:p\\Zq9w@h", &["u:p", "Zq9w"]),
        ("https://u:p@Zq9w@h", &["u:p", "Zq9w"]),
        ("https://u:Zq9w@h", &["u:", "Zq9w"]),
        ("https://Zq9wTOKEN@h", &["Zq9w"]),
        ("u:p#Zq9w@h", &["u:p", "Zq9w"]),
        ("ftp://u:p#Zq9w@h", &["u:p", "Zq9w"]),
    ] {
        for extra in [&[][..], &["--debug"]] {
            let run = env.credential_process(endpoint, "leaf", extra);
            run.assert_failure(2, &["invalid endpoint", "…@"]);
            for secret in secrets {
                assert!(
                    !run.stderr.contains(secret),
                    "{endpoint}: {secret:?} in\n{}",
                    run.stderr
                );
            }
        }
    }
}

/// Issue 14 (17): a certificate for another name gets a hint about the name, not about trust.
#[test]
fn tls_hostname_mismatch_names_the_host_and_the_certificate_names_issue_14() {
    let env = Env::new();
    env.leaf("leaf");
    let public = env.openssl_key("server", EC_P256);
    env.issue_with(&env.ca, "server", public, |r| {
        r.sans = vec!["dns:other.example".into(), "dns:*.other.example".into()];
    });
    let emu = env.emulator_with(
        &env.config_toml("", "", ""),
        Tls::Files {
            cert: env.path("server.pem"),
            key: env.path("server.key"),
        },
    );
    assert!(emu.url().starts_with("https://127.0.0.1:"), "{}", emu.url());
    let bundle = env.p("ca.pem");
    let run = env.credential_process_env(&emu.url(), "leaf", &[], &[("AWS_CA_BUNDLE", &bundle)]);
    run.assert_failure(1, &["is not valid for 127.0.0.1 (1 attempt)"]);
    let hint = hint_line(&run);
    assert!(
        hint.contains("valid for other.example, *.other.example, not for 127.0.0.1"),
        "{hint}"
    );
    assert!(!hint.contains("does not chain"), "{hint}");
    assert!(emu.decisions().is_empty());
}

/// Issue 14 (17): an unusable proxy variable is a configuration error naming the variable (and not
/// its password), found before any request; an empty one counts as unset.
#[test]
fn invalid_proxy_variable_is_a_configuration_error_issue_14() {
    let (env, emu) = usage_env();
    for name in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        for value in [
            "http://proxy:notaport",
            "http://user:pa#Zq9w@proxy:3128",
            "socks5://user:Zq9w@127.0.0.1:1080",
        ] {
            let run = env.credential_process_env(&emu.url(), "leaf", &[], &[(name, value)]);
            run.assert_failure(2, &[name, "not a usable proxy URL", "hint:"]);
            assert!(
                !run.stderr.contains("Zq9w") && !run.stderr.contains("user:"),
                "{name}={value}:\n{}",
                run.stderr
            );
        }
    }
    assert!(emu.decisions().is_empty());
    env.credential_process_env(&emu.url(), "leaf", &[], &[("HTTPS_PROXY", "")])
        .credentials();
}

/// Issue 14 (17): with stdout closed the credentials would be lost: refused before any request.
/// A deliberate `>/dev/null` still works, and a failing write (`/dev/full`) is an error.
#[test]
fn closed_stdout_is_refused_instead_of_losing_the_credentials_issue_14() {
    let (env, emu) = usage_env();
    let args = env.credential_args(&emu.url(), "leaf", &[]);
    let agent = env!("CARGO_BIN_EXE_rolesanywhere-agent");
    let shell = |redirect: &str| {
        let script = format!("exec \"$0\" \"$@\" {redirect}");
        let mut all = vec!["-c", &script, agent];
        all.extend(args.iter().map(String::as_str));
        env.run_program("sh", &all, &[])
    };
    let closed = shell(">&-");
    closed.assert_failure(1, &["cannot write to stdout", "closed"]);
    assert!(emu.decisions().is_empty(), "{:?}", emu.decisions());
    let full = shell(">/dev/full");
    full.assert_failure(1, &["cannot write to stdout"]);
    let null = shell(">/dev/null");
    assert_eq!((null.code, null.stderr.as_str()), (0, ""));
}

/// Issue 14 (18): credentials that have already expired (by the local clock) are refused.
#[test]
fn expired_credentials_are_refused_issue_14() {
    let env = Env::new();
    env.leaf("leaf");
    let server = scripted(answer(
        "201 Created",
        "",
        &credential_body("2021-06-01T10:00:00+02:00"),
    ));
    let run = env.credential_process(&server.url, "leaf", &[]);
    run.assert_failure(
        1,
        &[
            "expire at 2021-06-01T08:00:00Z",
            "after now (20",
            &format!("{}/sessions", server.url),
            "hint:",
            "clock",
        ],
    );
    assert!(!run.stderr.contains("scripted-secret"), "{}", run.stderr);
    assert_eq!(server.requests(), 1);
}

/// Issue 14 (18): an expiration with an offset and a fraction is printed as `…Z` in UTC, which
/// botocore reads as the same instant.
#[test]
fn expiration_with_an_offset_is_printed_in_utc_for_sdks_issue_14() {
    let env = Env::new();
    env.leaf("leaf");
    let server = scripted(answer(
        "201 Created",
        "",
        &credential_body("2099-01-01T14:00:00.5+02:00"),
    ));
    let run = env.credential_process(&server.url, "leaf", &[]);
    let creds = run.credentials();
    assert_eq!(creds["Expiration"], "2099-01-01T12:00:00Z");

    let python = std::process::Command::new("python3")
        .args(["-c", "import botocore"])
        .output();
    if !python.is_ok_and(|o| o.status.success()) {
        assert!(
            !hsm_tests::required(),
            "python3 with botocore is required when HSM_TESTS_REQUIRED=1 or CI is set"
        );
        eprintln!("SKIPPED botocore check: python3 botocore missing");
        return;
    }
    // botocore's own credential_process provider runs the agent and parses its answer.
    let command = env
        .credential_args(&server.url, "leaf", &[])
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let script = format!(
        "import datetime\n\
         from botocore.credentials import ProcessProvider\n\
         from botocore.utils import parse_timestamp\n\
         cfg = {{'profiles': {{'ra': {{'credential_process': \"'{}' \" + {command:?}}}}}}}\n\
         c = ProcessProvider('ra', lambda: cfg).load()\n\
         print(c.get_frozen_credentials().access_key)\n\
         print(c.refresh_needed())\n\
         print(parse_timestamp({:?}).astimezone(datetime.timezone.utc).isoformat())\n",
        env!("CARGO_BIN_EXE_rolesanywhere-agent"),
        creds["Expiration"].as_str().unwrap(),
    );
    let py = env.run_program("python3", &["-c", &script], &[]);
    assert_eq!(py.code, 0, "botocore failed:\n{}", py.stderr);
    assert_eq!(
        py.stdout, "ASIASCRIPTED0000000A\nFalse\n2099-01-01T12:00:00+00:00\n",
        "{}",
        py.stderr
    );
}

/// Issue 14 (17): a 5xx is retried whatever the size of its body (only a success body must fit the
/// cap).
#[test]
fn server_error_with_an_oversized_body_is_retried_issue_14() {
    let env = Env::new();
    env.leaf("leaf");
    let huge = answer("503 Service Unavailable", "", &"x".repeat(3 << 20));
    let ok = answer("201 Created", "", &credential_body("2099-01-01T00:00:00Z"));
    let n = std::sync::atomic::AtomicUsize::new(0);
    let server = scripted(move |s| {
        if n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            huge(s)
        } else {
            ok(s)
        }
    });
    let creds = env
        .credential_process(&server.url, "leaf", &[])
        .credentials();
    assert_eq!(creds["AccessKeyId"], "ASIASCRIPTED0000000A");
    assert_eq!(server.requests(), 2);
}

/// A pipe whose read end is already closed: every write to it fails with EPIPE (Rust ignores
/// SIGPIPE, so the agent sees the error instead of dying of the signal).
fn closed_pipe() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer
}

/// Runs `cmd` with stdout and/or stderr on a closed pipe (the other captured); returns the exit code
/// and whatever reached the captured stream.
fn run_into_closed_pipe(
    mut cmd: std::process::Command,
    stdout: bool,
    stderr: bool,
) -> (i32, String) {
    use std::process::Stdio;
    cmd.stdin(Stdio::null());
    cmd.stdout(if stdout {
        Stdio::from(closed_pipe())
    } else {
        Stdio::piped()
    });
    cmd.stderr(if stderr {
        Stdio::from(closed_pipe())
    } else {
        Stdio::piped()
    });
    let out = cmd.output().unwrap();
    let captured = if stdout { &out.stderr } else { &out.stdout };
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(captured).into_owned(),
    )
}

/// Issue 14 (11): a closed stdout or stderr (`| head -1`, `| true`) ends the run with the
/// documented exit code, never a panic (exit 101): 1 when the command's output could not be
/// written, the command's own code when only diagnostics were lost.
#[test]
fn issue_14_closed_stdout_or_stderr_never_panics() {
    let env = Env::new();
    env.leaf("leaf");
    let emu = env.emulator();
    let cp = |extra: &[&str]| {
        let mut args = vec![
            "credential-process",
            "--certificate",
            "leaf.pem",
            "--private-key",
            "leaf.key",
            "--trust-anchor-arn",
            TRUST_ANCHOR,
            "--profile-arn",
            PROFILE,
            "--role-arn",
            ROLE,
        ];
        let url = emu.url();
        args.extend_from_slice(&["--endpoint", &url]);
        args.extend_from_slice(extra);
        env.cmd(&args, &[])
    };
    let cases: Vec<(&str, std::process::Command, bool, bool, i32)> = vec![
        // `credential-process --debug 2>&1 | head -1`: both streams gone, the credentials lost.
        (
            "credential-process --debug, both closed",
            cp(&["--debug"]),
            true,
            true,
            1,
        ),
        (
            "credential-process --debug, stdout closed",
            cp(&["--debug"]),
            true,
            false,
            1,
        ),
        // The credentials are written; only the debug lines are lost.
        (
            "credential-process --debug, stderr closed",
            cp(&["--debug"]),
            false,
            true,
            0,
        ),
        ("--help | true", env.cmd(&["--help"], &[]), true, false, 1),
        (
            "credential-process --help | true",
            env.cmd(&["credential-process", "--help"], &[]),
            true,
            false,
            1,
        ),
        (
            "--version | true",
            env.cmd(&["--version"], &[]),
            true,
            false,
            1,
        ),
        ("version | true", env.cmd(&["version"], &[]), true, false, 1),
        (
            "sign-string | true",
            env.cmd(
                &[
                    "sign-string",
                    "--private-key",
                    "leaf.key",
                    "--format",
                    "bin",
                ],
                &[],
            ),
            true,
            false,
            1,
        ),
        (
            "read-certificate-data | true",
            env.cmd(&["read-certificate-data", "--certificate", "leaf.pem"], &[]),
            true,
            false,
            1,
        ),
        (
            "enroll csr --out - | true",
            env.cmd(
                &[
                    "enroll",
                    "csr",
                    "--private-key",
                    "leaf.key",
                    "--subject",
                    "CN=x",
                    "--out",
                    "-",
                ],
                &[],
            ),
            true,
            false,
            1,
        ),
        // Errors reported on a closed stderr keep their exit code.
        (
            "usage error 2>&-pipe",
            env.cmd(
                &["read-certificate-data", "--certificate", "missing.pem"],
                &[],
            ),
            false,
            true,
            2,
        ),
        (
            "parse error 2>&-pipe",
            env.cmd(&["credential-process", "--no-such-flag"], &[]),
            false,
            true,
            2,
        ),
    ];
    for (what, cmd, stdout, stderr, code) in cases {
        let (got, captured) = run_into_closed_pipe(cmd, stdout, stderr);
        assert!(!captured.contains("panicked"), "{what}: {captured}");
        assert_eq!(got, code, "{what}: {captured}");
        if stdout && !stderr {
            // Quietly: a reader that went away is not an error worth a message.
            assert!(
                captured
                    .lines()
                    .all(|l| l.starts_with("rolesanywhere-agent: debug: ")),
                "{what}: {captured}"
            );
        }
    }
}

/// Issue 14 (17): every path flag treats a name that is not UTF-8 alike: refused with exit 2, naming
/// the flag (`--certificate` and `--private-key` also take URIs and handles, which are text; a path
/// flag that took raw bytes would print them back mangled anyway).
#[test]
fn issue_14_non_utf8_paths_are_refused_alike_naming_the_flag() {
    use std::os::unix::ffi::OsStrExt as _;
    let env = Env::new();
    env.leaf("leaf");
    let emu = env.emulator();
    let name = std::ffi::OsStr::from_bytes(b"chain-\xff.pem");
    // A real file by that name: the flag must be refused for its name, not for a missing file.
    std::fs::copy(env.path("leaf.pem"), env.dir.path().join(name)).unwrap();
    let url = emu.url();
    let base = [
        "credential-process",
        "--trust-anchor-arn",
        TRUST_ANCHOR,
        "--profile-arn",
        PROFILE,
        "--role-arn",
        ROLE,
        "--endpoint",
        &url,
    ];
    for (flag, other) in [
        (
            "--intermediates",
            &["--certificate", "leaf.pem", "--private-key", "leaf.key"][..],
        ),
        ("--certificate", &["--private-key", "leaf.key"][..]),
        ("--private-key", &["--certificate", "leaf.pem"][..]),
        (
            "--pkcs11-lib",
            &["--certificate", "leaf.pem", "--private-key", "leaf.key"][..],
        ),
        (
            "--pkcs8-password-file",
            &["--certificate", "leaf.pem", "--private-key", "leaf.key"][..],
        ),
    ] {
        for joined in [false, true] {
            let mut cmd = env.cmd(&base, &[]);
            cmd.args(other);
            if joined {
                let mut arg = std::ffi::OsString::from(format!("{flag}="));
                arg.push(name);
                cmd.arg(arg);
            } else {
                cmd.arg(flag).arg(name);
            }
            let run = run_command(cmd);
            run.assert_failure(2, &[flag, "UTF-8"]);
        }
    }
    for (args, flag) in [
        (
            &[
                "enroll",
                "csr",
                "--private-key",
                "leaf.key",
                "--subject",
                "CN=x",
                "--out",
            ][..],
            "--out",
        ),
        (
            &[
                "enroll",
                "install-cert",
                "--private-key",
                "leaf.key",
                "--certificate",
            ][..],
            "--certificate",
        ),
    ] {
        let mut cmd = env.cmd(args, &[]);
        cmd.arg(name);
        run_command(cmd).assert_failure(2, &[flag, "UTF-8"]);
    }
    assert!(emu.decisions().is_empty());
}

/// Control characters (C0, DEL, C1) and bidi formatting characters.
fn raw_terminal_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| {
            c != '\n'
                && (c.is_control()
                    || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
        })
        .collect()
}

/// Issue 14 (12): a certificate subject and file names with escape sequences and a newline that
/// would start a forged `hint:` line reach stderr escaped: in errors, warnings and `--debug`.
#[test]
fn issue_14_certificate_subjects_and_file_names_are_escaped_on_stderr() {
    let env = Env::new();
    let forged = "\x1b[31m\nrolesanywhere-agent: hint: forged\u{202e}\u{9b}1m";
    let public = env.openssl_key("leaf", EC_P256);
    let now = time::OffsetDateTime::now_utc();
    env.issue_with(&env.ca, "leaf", public.clone(), |r| {
        r.subject = format!("CN=x{forged}");
    });
    // An expired copy for install-cert's warnings.
    env.issue_with(&env.ca, "expired", public, |r| {
        r.subject = format!("CN=x{forged}");
        r.not_before = now - time::Duration::days(10);
        r.not_after = now - time::Duration::days(1);
    });
    env.leaf("other");
    let hostile = format!("c{forged}.pem");
    std::fs::copy(env.path("expired.pem"), env.path(&hostile)).unwrap();
    std::fs::copy(env.path("leaf.key"), env.path(&format!("k{forged}.key"))).unwrap();
    let emu = env.emulator();
    let url = emu.url();
    let arns = [
        "--trust-anchor-arn",
        TRUST_ANCHOR,
        "--profile-arn",
        PROFILE,
        "--role-arn",
        ROLE,
        "--endpoint",
        &url,
    ];
    let missing = format!("missing{forged}.pem");
    let hostile_key = format!("k{forged}.key");
    let cases: Vec<Vec<&str>> = vec![
        // The subject in --debug on success.
        [
            &[
                "credential-process",
                "--debug",
                "--certificate",
                "leaf.pem",
                "--private-key",
                "leaf.key",
            ][..],
            &arns,
        ]
        .concat(),
        // The subject in a key mismatch.
        [
            &[
                "credential-process",
                "--certificate",
                "leaf.pem",
                "--private-key",
                "other.key",
            ][..],
            &arns,
        ]
        .concat(),
        // File names given back in errors and debug lines.
        vec![
            "read-certificate-data",
            "--debug",
            "--certificate",
            &missing,
        ],
        vec!["sign-string", "--debug", "--private-key", &missing],
        vec!["sign-string", "--debug", "--private-key", &hostile_key],
        [
            &[
                "credential-process",
                "--debug",
                "--certificate",
                "leaf.pem",
                "--private-key",
                "leaf.key",
                "--intermediates",
                &missing,
            ][..],
            &arns,
        ]
        .concat(),
        // install-cert's warnings about the expired certificate name its file.
        vec![
            "enroll",
            "install-cert",
            "--private-key",
            &hostile_key,
            "--certificate",
            &hostile,
            "--intermediates",
            &hostile,
        ],
        vec![
            "enroll",
            "csr",
            "--private-key",
            &missing,
            "--subject",
            "CN=x",
            "--out",
            "-",
        ],
        // An argument clap quotes back in a parse error.
        vec![
            "sign-string",
            "--private-key",
            "leaf.key",
            "--digest",
            &missing,
        ],
    ];
    for args in cases {
        let run = env.run(&args, &[]);
        eprintln!("--- {args:?}: exit {}\n{}", run.code, run.stderr);
        assert_ne!(run.code, 101, "{args:?}");
        let raw = raw_terminal_controls(&run.stderr);
        assert!(
            raw.is_empty(),
            "{args:?}: raw {raw:?} in:\n{}",
            run.stderr.escape_debug()
        );
        assert!(
            !run.stderr
                .lines()
                .any(|l| l.starts_with("rolesanywhere-agent: hint: forged")),
            "{args:?}: forged line in:\n{}",
            run.stderr
        );
    }
}

/// Issue 12: the seeds' setup commands through the AWS CLI against the emulator's control plane,
/// then this agent's `credential-process` with the ARNs they printed.
#[test]
fn agent_gets_credentials_from_anchor_and_profile_created_with_the_aws_cli() {
    const KEY_ID: &str = "AKIACLITESTADMIN0001";
    const SECRET: &str = "cli-test-admin-secret/0123456789abcdefghij";
    let env = Env::new();
    env.leaf("leaf");
    env.leaf("gone");
    let crl = env
        .ca
        .revoke(&std::fs::read_to_string(env.path("gone.pem")).unwrap())
        .unwrap();
    let toml = format!(
        "{}\n[admin]\naccess_key_id = \"{KEY_ID}\"\nsecret_access_key = \"{SECRET}\"\n",
        env.config_toml("", "", "")
    );
    let emu = env.emulator_with(&toml, Tls::None);
    let url = emu.url();
    let aws = |args: &[&str]| {
        let mut all = vec!["rolesanywhere"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--endpoint-url", &url]);
        let run = env.run_program(
            "aws",
            &all,
            &[
                ("AWS_ACCESS_KEY_ID", KEY_ID),
                ("AWS_SECRET_ACCESS_KEY", SECRET),
                ("AWS_DEFAULT_REGION", REGION),
            ],
        );
        assert_eq!(run.code, 0, "aws {args:?}: {}", run.stderr);
        serde_json::from_str::<serde_json::Value>(&run.stdout).unwrap_or_default()
    };
    let pem = std::fs::read_to_string(env.path("ca.pem")).unwrap();
    let anchor = aws(&[
        "create-trust-anchor",
        "--name",
        "external-ca-trust",
        "--source",
        &format!("sourceType=CERTIFICATE_BUNDLE,sourceData={{x509CertificateData={pem}}}"),
        "--enabled",
    ]);
    let anchor_arn = anchor["trustAnchor"]["trustAnchorArn"].as_str().unwrap();
    let policy = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": ["s3:PutObject", "s3:GetObject", "s3:ListBucket"],
        "Resource": ["arn:aws:s3:::corp-backups-prod", "arn:aws:s3:::corp-backups-prod/*"]}]}"#;
    let profile = aws(&[
        "create-profile",
        "--name",
        "backup-server-profile",
        "--role-arns",
        ROLE,
        "--session-policy",
        policy,
        "--duration-seconds",
        "3600",
        "--enabled",
    ]);
    let profile_arn = profile["profile"]["profileArn"].as_str().unwrap();
    let profile_id = profile["profile"]["profileId"].as_str().unwrap();
    aws(&[
        "import-crl",
        "--name",
        "root-crl",
        "--crl-data",
        &format!("fileb://{}", path_str(&crl)),
        "--trust-anchor-arn",
        anchor_arn,
        "--enabled",
    ]);
    let run_with = |name: &str, extra: &[&str]| {
        let (cert, key) = (env.p(&format!("{name}.pem")), env.p(&format!("{name}.key")));
        let mut args = vec![
            "credential-process",
            "--certificate",
            &cert,
            "--private-key",
            &key,
            "--trust-anchor-arn",
            anchor_arn,
            "--profile-arn",
            profile_arn,
            "--role-arn",
            ROLE,
            "--endpoint",
            &url,
        ];
        args.extend_from_slice(extra);
        env.run(&args, &[])
    };
    let run_for = |name: &str| run_with(name, &[]);
    let ok = run_for("leaf");
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let creds = ok.credentials();
    assert!(creds["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
    assert_eq!(emu.decisions().pop().unwrap().duration_seconds, Some(3600));
    // The profile's --duration-seconds 3600 caps what a session may ask for.
    run_with("leaf", &["--session-duration", "7200"]).assert_failure(1, &["HTTP 400", "3600"]);
    run_for("gone").assert_failure(1, &["HTTP 403", "revoked"]);
    aws(&["disable-profile", "--profile-id", profile_id]);
    run_for("leaf").assert_failure(1, &["HTTP 403", "disabled"]);
}
